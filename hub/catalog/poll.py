"""Reading the ERP: every batch since the stored cursor, or one read of the whole catalogue, applied with
the cursor that covers it in the same transaction, so a crash never skips a record.

Batches of changes are applied one transaction each (hub.catalog.ingest). A read of the whole catalogue
(a snapshot, or a file feed's streamed parts) is staged part by part in temporary tables on one
connection, outside any lock on the hub's tables, and applied in one short transaction when its last part
arrives (hub.catalog.stage); a read that breaks off leaves nothing and does not move the cursor.
"""

from __future__ import annotations

from collections.abc import Callable, Container, Iterator
from contextlib import contextmanager
from datetime import datetime

from sqlalchemy import Connection, Engine
from sqlalchemy.orm import Session

from hub.catalog.ingest import IngestResult, ingest, load_cursor, save_cursor
from hub.catalog.stage import Known, Stage, Stale, known_rows
from hub.kernel.clock import utcnow
from hub.kernel.errors import RetryableError
from hub.kernel.ports.erp import ErpBatch, ErpSource
from hub.platform.logs import get_logger

log = get_logger("hub.catalog.poll")

# Called in the transaction that applies a read with the SKUs whose stock the ERP just reported (a
# container: a snapshot's are in the database, asked one by one): a subscriber (the orders'
# reservations) learns that the ERP's stock now reflects what it booked.
StockRead = Callable[[Session, Container[str], datetime], None]

_STALE_RETRIES = 2  # then a read without skipping: it cannot go stale
_SQLITE_READ_CACHE_KIB = 64 * 1024  # a read's page cache on SQLite
# its stage's, in a temporary file the operating system caches too (bench/scale.py (a): 16 MiB or 128 MiB
# read as fast, within the runs' spread)
_SQLITE_STAGE_CACHE_KIB = 16 * 1024


def poll_erp(engine: Engine, source: ErpSource, erp: str, *, full: bool = False, limit: int = 5000,
             on_stock_read: StockRead | None = None, session: Session | None = None) -> IngestResult:
    """Every batch since the stored cursor (``full``: the whole catalogue); with ``session``, all of it
    in the caller's transaction instead (``hub sync --dry-run`` rolls it back: nothing stays, the
    cursor does not move)."""
    for attempt in range(_STALE_RETRIES + 1):
        try:
            result = _poll(engine, source, erp, full=full, limit=limit, on_stock_read=on_stock_read,
                           session=session, skip=attempt < _STALE_RETRIES)
            break
        except Stale as exc:
            log.info("ERP read went stale, reading again", erp=erp, reason=str(exc))
    if result.rejected:
        log.warning("ERP records quarantined", erp=erp, rejected=result.rejected)
    return result


def _poll(engine: Engine, source: ErpSource, erp: str, *, full: bool, limit: int,
          on_stock_read: StockRead | None, session: Session | None, skip: bool) -> IngestResult:
    """Everything on one connection (a read's temporary tables are the connection's)."""
    total = IngestResult()
    with _connection(engine, session) as conn:
        with _applying(conn, session) as s:
            cursor = load_cursor(s, erp)
        known = _LazyKnown(conn, erp) if skip else None
        fingerprints = known if known is not None else frozenset()
        parts = source.snapshot(known=fingerprints) if full else None
        while True:
            batch = next(parts, None) if parts is not None else source.changes(cursor, limit=limit, known=fingerprints)
            if batch is None:
                break
            if batch.rows is not None or batch.snapshot:
                following = parts if parts is not None else _following(source, batch, limit, fingerprints)
                total.add(_apply_read(conn, session, erp, batch, following, known, on_stock_read))
                break
            with _applying(conn, session) as s:
                total.add(ingest(s, erp, batch))
                save_cursor(s, erp, batch.cursor_after, utcnow())
                if on_stock_read is not None:
                    on_stock_read(s, {r.sku for r in batch.stock}, utcnow())
            cursor = batch.cursor_after
            if batch.complete and parts is None:
                break
    return total


def _following(source: ErpSource, first: ErpBatch, limit: int, known: Container[int]) -> Iterator[ErpBatch]:
    """The parts after ``first`` of a read that changes() delivers in parts."""
    batch = first
    while not batch.complete:
        batch = source.changes(batch.cursor_after, limit=limit, known=known)
        yield batch


def _apply_read(conn: Connection, session: Session | None, erp: str, first: ErpBatch,
                following: Iterator[ErpBatch], known: _LazyKnown | None,
                on_stock_read: StockRead | None) -> IngestResult:
    """Stage every part of one read, then apply it in one transaction."""
    stage = None
    if session is None and conn.dialect.name == "sqlite":
        # larger page caches for this read's joins over the catalogue and for its stage (in a temporary
        # file, as the pool keeps temporary tables: the pool's connections cache 1 MiB and 2 MiB; this
        # one is closed when the read is done)
        conn.exec_driver_sql(f"PRAGMA cache_size=-{_SQLITE_READ_CACHE_KIB}")
        conn.exec_driver_sql(f"PRAGMA temp.cache_size=-{_SQLITE_STAGE_CACHE_KIB}")
        conn.commit()
    try:
        with _staging(conn, session):
            stage = Stage(conn)
            position = stage.add(first, 0)
            last = first
            fresh = first.fresh_read
            while not last.complete:
                batch = next(following, None)
                if batch is None:
                    raise RetryableError(f"ERP {erp}: the read ended before its last part")
                position = stage.add(batch, position)
                last = batch
            stage.prepare(erp)
        with _applying(conn, session) as s:
            now = utcnow()
            generation = known.generation if known is not None and known.loaded else None
            result = stage.apply(s, erp, last, now=now, fresh_read=fresh, generation=generation)
            if on_stock_read is not None:
                on_stock_read(s, stage.skus_read(), now)
            stage.drop()
        stage = None
        if session is None and conn.dialect.name == "postgresql" and _rewrote_much(result):
            # the planner's statistics of tables a read has just rewritten a large part of stay stale
            # until autovacuum comes round: the next read's joins over them were planned for a hundredth
            # of their rows (nested-loop probes per stock row, 3.5 s instead of a hash join)
            conn.exec_driver_sql("ANALYZE products, stock_levels")
            conn.commit()
        return result
    finally:
        if session is None:
            # not back into the pool: the connection's larger page cache (SQLite) and temporary schema
            # (PostgreSQL) go with it
            conn.invalidate()
        elif stage is not None and not conn.in_transaction():
            stage.drop()  # the temporary tables of a read that broke off (a rollback took them otherwise)


def _rewrote_much(result: IngestResult) -> bool:
    """Whether a read changed as many rows as PostgreSQL's autovacuum waits for before it analyzes a
    table again (a tenth of it), and enough to matter."""
    return result.changed + result.zeroed >= max(10_000, result.products // 10)


class _LazyKnown:
    """The stored fingerprints, loaded when the source first asks (a source without fingerprints, or
    with nothing changed, never does)."""

    def __init__(self, conn: Connection, erp: str) -> None:
        self.conn = conn
        self.erp = erp
        self._known: Known | None = None

    @property
    def loaded(self) -> bool:
        return self._known is not None

    @property
    def generation(self) -> int | None:
        return None if self._known is None else self._known.generation

    def __contains__(self, fingerprint: object) -> bool:
        if self._known is None:
            self._load()
        assert self._known is not None
        return fingerprint in self._known.fingerprints

    def _load(self) -> None:
        if self.conn.in_transaction():
            self._known = known_rows(self.conn, self.erp)
        else:
            with self.conn.begin():
                self._known = known_rows(self.conn, self.erp)


@contextmanager
def _connection(engine: Engine, session: Session | None) -> Iterator[Connection]:
    """One connection for a whole read: its temporary tables are that connection's."""
    if session is not None:
        yield session.connection()
        return
    with engine.connect() as conn:
        yield conn


@contextmanager
def _staging(conn: Connection, session: Session | None) -> Iterator[None]:
    """Staging writes only temporary tables: on SQLite a deferred transaction, so the hub's writers
    (orders, reservations) are not held off while a large feed is parsed."""
    if session is not None:
        yield
        return
    if conn.in_transaction():
        conn.commit()
    conn.execution_options(sqlite_begin="DEFERRED")
    try:
        with conn.begin():
            yield
    finally:
        conn.execution_options(sqlite_begin="IMMEDIATE")


@contextmanager
def _applying(conn: Connection, session: Session | None) -> Iterator[Session]:
    if session is not None:
        yield session
        return
    # the connection's own transaction (BEGIN IMMEDIATE on SQLite: the write lock for the moment the
    # read is applied); the session joins it, and flushes before it commits
    with conn.begin(), Session(bind=conn, expire_on_commit=False) as s:
        yield s
        s.flush()
