"""A read of the whole ERP catalogue applied set-based: staged in temporary tables, compared with the
stored catalogue in the database, only what changed written.

A 1,000,000-row feed is neither held in memory nor written a row at a time (issue 12). Every part of a
streamed read goes into temporary tables on one connection (on SQLite they live in a file of their own,
so staging takes no lock on the hub's tables); when the complete part has arrived, one short transaction
applies the rules across rows, writes the products and stock that differ, zeroes what the snapshot no
longer lists, quarantines and releases, marks the changed SKUs dirty and moves the cursor, each step one
statement over the stage. A row the source did not parse (a KnownRow: its fingerprint is stored with the
stock row it was read into) counts as read and unchanged.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from itertools import groupby
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    Connection,
    Integer,
    MetaData,
    Numeric,
    String,
    Table,
    Text,
    and_,
    exists,
    func,
    literal,
    or_,
    select,
    true,
    union_all,
    update,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from hub.catalog.feed_rules import FeedRules, ParsedRow
from hub.catalog.ingest import IngestResult
from hub.catalog.models import DirtySku, ErpCursor, ErpReject, Product, StockLevel
from hub.kernel.ports.erp import (
    ErpBatch,
    FeedRow,
    KnownRow,
    PriceRecord,
    ProductRecord,
    RejectedRecord,
    StockRecord,
)
from hub.platform.db import insert_for
from hub.platform.schema import UTCDateTime

_meta = MetaData()
ROWS = Table(  # the rows the source parsed (columns in FeedRow's order)
    "hub_stage_rows", _meta,
    Column("pos", BigInteger), Column("source", Text), Column("fp", BigInteger),
    Column("sku", String(100)), Column("warehouse", String(100)), Column("quantity", Integer),
    Column("name", Text), Column("ean", String(14)), Column("vat_rate", String(3)),
    Column("weight_kg", Numeric(10, 3)), Column("price_gross", Numeric(14, 2)), Column("currency", String(3)),
    Column("cost_net", Numeric(14, 4)),
    prefixes=["TEMPORARY"],
)
KNOWN = Table(  # the rows it did not parse: their fingerprints are stored (columns in KnownRow's order)
    "hub_stage_known", _meta, Column("fp", BigInteger), Column("source", Text), Column("pos", BigInteger),
    prefixes=["TEMPORARY"],
)
REJECTS = Table(
    "hub_stage_rejects", _meta,
    Column("n", BigInteger), Column("record_key", String(200)), Column("source", Text), Column("sku", String(100)),
    Column("field", String(100)), Column("value", Text), Column("reason", Text),
    prefixes=["TEMPORARY"],
)
CHECK = Table("hub_stage_check", _meta, Column("sku", String(100), primary_key=True), prefixes=["TEMPORARY"])
CHANGED = Table("hub_stage_changed", _meta, Column("sku", String(100), primary_key=True), prefixes=["TEMPORARY"])
DROPPED = Table("hub_stage_dropped", _meta, Column("pos", BigInteger, primary_key=True), prefixes=["TEMPORARY"])
# created once the rows are in: building an index at the end is cheaper than keeping it up per insert
_INDEXES = ("hub_stage_rows_sku ON hub_stage_rows (sku, pos)",
            "hub_stage_rejects_key ON hub_stage_rejects (record_key, field)",
            "hub_stage_rejects_sku ON hub_stage_rejects (sku)")

_PRODUCT = ("name", "ean", "vat_rate", "weight_kg", "price_gross", "currency", "cost_net")
_PRICING = ("price_gross", "cost_net", "vat_rate", "currency", "ean")  # what a channel's price depends on
_LOAD_CHUNK = 5000


class Stale(Exception):
    """Another read of the same ERP was applied after this one loaded the fingerprints it skipped rows
    by: the rows it skipped may no longer be the stored ones, so the read starts over."""


@dataclass(frozen=True)
class Known:
    """The fingerprints of the rows an ERP's last snapshots stored, and the generation they are of."""

    fingerprints: frozenset[int]
    generation: int


# the most fingerprints a read holds (a set of Python integers: about 90 MB per 1,000,000, measured by
# bench/scale.py (b)); an ERP with more has every row parsed and compared in the database instead, so a
# read's memory stays bounded whatever the catalogue's size (at about a first read's speed)
KNOWN_LIMIT = 4_000_000


def known_rows(connection: Connection, erp: str) -> Known:
    """Loaded once per read, so that the source can skip parsing every row it finds among them; none
    beyond KNOWN_LIMIT."""
    generation = connection.execute(select(ErpCursor.generation).where(ErpCursor.erp == erp)).scalar() or 0
    stock, product = StockLevel.__table__, Product.__table__
    fingerprints = frozenset(connection.execute(
        select(stock.c.fingerprint).join(product, product.c.sku == stock.c.sku)
        .where(product.c.erp == erp, stock.c.fingerprint.is_not(None)).limit(KNOWN_LIMIT + 1)).scalars())
    if len(fingerprints) > KNOWN_LIMIT:
        return Known(frozenset(), generation)
    return Known(fingerprints, generation)


class Stage:
    """The temporary tables of one read, on one connection (temporary tables are the connection's)."""

    def __init__(self, connection: Connection) -> None:
        self.connection = connection
        self._postgres = connection.dialect.name == "postgresql"
        self._rejects = 0
        self.rows = 0
        self.known = 0
        self.sku_less: list[tuple[str, str]] = []  # (source, field) of the rejects without a SKU
        self._known_twice = True  # until prepare finds every unchanged row's fingerprint once
        _meta.drop_all(connection, checkfirst=True)  # a read that broke off on this pooled connection
        _meta.create_all(connection, tables=list(_meta.tables.values()), checkfirst=False)

    # --- staging -----------------------------------------------------------------------

    def add(self, batch: ErpBatch, position: int) -> int:
        """Stage one part; returns the next free position (a records-mode part's rows get theirs here)."""
        rows: Sequence[FeedRow]
        if batch.rows is not None:
            rows = batch.rows
        else:
            rows, position = _as_rows(batch, position)
        self.rows += len(rows)
        # FeedRows are tuples in the table's column order, staged as they are (Decimals too: COPY writes
        # them, hub.platform.db adapts them for SQLite)
        self._load(ROWS, rows)
        self._load(KNOWN, list(batch.unchanged))  # KnownRows are tuples in the table's column order
        self.known += len(batch.unchanged)
        self.reject(batch.rejected)
        return position

    def reject(self, rejected: Sequence[RejectedRecord]) -> None:
        def rows() -> Iterator[tuple[Any, ...]]:
            for record in rejected:
                self._rejects += 1
                if record.sku is None:
                    self.sku_less.append((record.source, record.field))
                yield (self._rejects, (record.sku or record.source)[:200], record.source, record.sku, record.field,
                       record.value, record.reason)
        self._load(REJECTS, rows())

    def _load(self, table: Table, rows: Iterable[tuple[Any, ...]]) -> None:
        """In bulk: COPY on PostgreSQL, executemany of plain tuples on SQLite (no ORM, no per-row SQL)."""
        if isinstance(rows, list) and len(rows) <= _LOAD_CHUNK:
            if rows:
                self._write(table, rows)
            return
        chunk: list[tuple[Any, ...]] = []
        for row in rows:
            chunk.append(row)
            if len(chunk) >= _LOAD_CHUNK:
                self._write(table, chunk)
                chunk = []
        if chunk:
            self._write(table, chunk)

    def _write(self, table: Table, rows: list[tuple[Any, ...]]) -> None:
        columns = [c.name for c in table.columns]
        if self._postgres:
            dbapi = self.connection.connection.driver_connection
            with dbapi.cursor() as cursor, cursor.copy(f"COPY {table.name} ({', '.join(columns)}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
        else:
            self.connection.exec_driver_sql(
                f"INSERT INTO {table.name} ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})",  # noqa: S608 (our tables)
                rows)

    def drop(self) -> None:
        _meta.drop_all(self.connection, checkfirst=True)

    # --- applying ------------------------------------------------------------------------

    def prepare(self, erp: str) -> None:
        """Index the stage and apply the rules across rows, still outside the transaction that writes
        the hub's tables (what it reads of them is checked by the generation when applying)."""
        for index in _INDEXES:
            self.connection.exec_driver_sql(f"CREATE INDEX {index}")
        # unique when no unchanged row came twice (nearly always): the rules across rows then need not
        # look for one (a GROUP BY over every unchanged row: 1.5 s of a 1,000,000-row read on PostgreSQL)
        try:
            with self.connection.begin_nested():
                self.connection.exec_driver_sql("CREATE UNIQUE INDEX hub_stage_known_fp ON hub_stage_known (fp)")
            self._known_twice = False
        except IntegrityError:
            self.connection.exec_driver_sql("CREATE INDEX hub_stage_known_fp ON hub_stage_known (fp)")
            self._known_twice = True
        if self._postgres:  # no autovacuum analyzes a temporary table: without its size the joins are guessed
            self.connection.exec_driver_sql("ANALYZE hub_stage_rows, hub_stage_known, hub_stage_rejects")
        self._cross_row_rules(erp)

    def apply(self, session: Session, erp: str, last: ErpBatch, *, now: datetime, fresh_read: bool,
              generation: int | None) -> IngestResult:
        """Apply the staged read in the session's transaction (on the stage's connection)."""
        conn = self.connection
        if generation is not None and self.known:
            stored = conn.execute(select(ErpCursor.generation).where(ErpCursor.erp == erp)
                                  .with_for_update()).scalar() or 0
            if stored != generation:
                raise Stale(f"{erp}: another read was applied meanwhile")
        result = IngestResult()
        product = Product.__table__
        # nothing of this ERP's can be absent when it had no product before (a first read)
        had_products = conn.execute(select(product.c.sku).where(product.c.erp == erp).limit(1)).first() is not None
        result.products = _count(conn, ROWS) + _count(conn, KNOWN)
        result.stock_rows = result.products
        result.new = self._write_products(erp, now)
        self._write_stock(now)
        trustworthy = last.snapshot and not (self.sku_less and not result.products)
        if trustworthy and had_products:
            result.zeroed = self._zero_absent(erp, now)
        result.changed = _count(conn, CHANGED)
        dirty = insert_for(session)(DirtySku.__table__)
        conn.execute(dirty.from_select(["sku", "since"], select(CHANGED.c.sku, _at(now)).where(true()))
                     .on_conflict_do_update(index_elements=["sku"], set_={"since": dirty.excluded.since}))
        result.rejected = self._rejects
        result.released = self._quarantine(session, erp, now, fresh_read=fresh_read,
                                           sku_less_clear=last.snapshot and result.products > 0)
        cursors = insert_for(session)(ErpCursor.__table__)
        conn.execute(cursors.values(erp=erp, cursor=last.cursor_after, updated_at=now, generation=1)
                     .on_conflict_do_update(index_elements=["erp"], set_={
                         "cursor": cursors.excluded.cursor, "updated_at": cursors.excluded.updated_at,
                         "generation": ErpCursor.__table__.c.generation + 1}))
        return result

    def skus_read(self) -> StagedSkus:
        return StagedSkus(self.connection)

    def _cross_row_rules(self, erp: str) -> None:
        """FeedRules over every SKU that could break them: SKUs with several parsed rows, parsed SKUs
        that also have rows read unchanged, and unchanged rows read twice. Rows of other SKUs are
        alone in the read. The rejected rows leave the stage."""
        conn = self.connection
        stock = StockLevel.__table__
        check = insert_for(conn)(CHECK)
        conn.execute(check.from_select(["sku"], select(ROWS.c.sku).group_by(ROWS.c.sku)
                                       .having(func.count() > 1)).on_conflict_do_nothing())
        if self.known:
            conn.execute(check.from_select(["sku"], select(ROWS.c.sku).distinct().select_from(
                ROWS.join(stock, stock.c.sku == ROWS.c.sku).join(KNOWN, KNOWN.c.fp == stock.c.fingerprint))
                .where(true())).on_conflict_do_nothing())
        if self._known_twice:
            twice = select(KNOWN.c.fp).group_by(KNOWN.c.fp).having(func.count() > 1).subquery()
            conn.execute(check.from_select(["sku"], select(stock.c.sku).distinct().select_from(
                twice.join(stock, stock.c.fingerprint == twice.c.fp)).where(true())).on_conflict_do_nothing())
        if not _count(conn, CHECK):
            return
        product = Product.__table__
        parsed = select(ROWS.c.pos, ROWS.c.source, literal(False).label("known"), ROWS.c.sku, ROWS.c.warehouse,
                        ROWS.c.quantity, *(ROWS.c[k] for k in _PRODUCT)
                        ).join(CHECK, CHECK.c.sku == ROWS.c.sku)
        unchanged = select(KNOWN.c.pos, KNOWN.c.source, literal(True).label("known"), stock.c.sku,
                           stock.c.warehouse, stock.c.quantity, *(product.c[k] for k in _PRODUCT)
                           ).select_from(CHECK.join(stock, stock.c.sku == CHECK.c.sku)
                                         .join(KNOWN, KNOWN.c.fp == stock.c.fingerprint)
                                         .join(product, product.c.sku == stock.c.sku)
                                         ).where(product.c.erp == erp)
        both = union_all(parsed, unchanged).subquery()
        ordered = select(both).order_by(both.c.sku, both.c.pos)
        dropped: list[tuple[int]] = []
        rejected: list[RejectedRecord] = []
        rows = conn.execute(ordered.execution_options(yield_per=_LOAD_CHUNK))
        for _sku, group in groupby(rows, key=lambda r: r.sku):
            rules = FeedRules()
            for r in group:
                broken = rules.check(_parsed(erp, r))
                if broken:
                    rejected.extend(broken)
                    dropped.append((r.pos,))
            if len(dropped) >= _LOAD_CHUNK:
                self._drop(dropped, rejected)
                dropped, rejected = [], []
        self._drop(dropped, rejected)
        conn.execute(ROWS.delete().where(ROWS.c.pos.in_(select(DROPPED.c.pos))))
        conn.execute(KNOWN.delete().where(KNOWN.c.pos.in_(select(DROPPED.c.pos))))

    def _drop(self, dropped: list[tuple[int]], rejected: list[RejectedRecord]) -> None:
        self._load(DROPPED, dropped)
        self.reject(rejected)

    def _write_products(self, erp: str, now: datetime) -> int:
        """Mark the SKUs whose price inputs changed (or that are new), then write the products that
        differ in any stored column; returns how many SKUs are new to the catalogue."""
        conn = self.connection
        product = Product.__table__
        head = ~exists().where(_OTHER.c.sku == ROWS.c.sku, _OTHER.c.pos < ROWS.c.pos)  # a SKU's first row
        joined = ROWS.outerjoin(product, product.c.sku == ROWS.c.sku)
        new = conn.execute(select(func.count()).select_from(joined).where(head, product.c.sku.is_(None))).scalar()
        pricing = or_(product.c.sku.is_(None), *(product.c[k].is_distinct_from(ROWS.c[k]) for k in _PRICING))
        conn.execute(insert_for(conn)(CHANGED).from_select(
            ["sku"], select(ROWS.c.sku).select_from(joined).where(head, pricing)).on_conflict_do_nothing())
        differs = or_(product.c.sku.is_(None), product.c.erp.is_distinct_from(erp),
                      *(product.c[k].is_distinct_from(ROWS.c[k]) for k in _PRODUCT))
        upsert = insert_for(conn)(product)
        columns = ["sku", "erp", *_PRODUCT, "updated_at"]
        conn.execute(upsert.from_select(columns, select(
            ROWS.c.sku, literal(erp, String(100)), *(ROWS.c[k] for k in _PRODUCT), _at(now)
        ).select_from(joined).where(head, differs).order_by(ROWS.c.sku)).on_conflict_do_update(
            index_elements=["sku"], set_={k: upsert.excluded[k] for k in columns if k != "sku"}))
        return int(new or 0)

    def _write_stock(self, now: datetime) -> None:
        conn = self.connection
        stock = StockLevel.__table__
        joined = ROWS.outerjoin(stock, and_(stock.c.sku == ROWS.c.sku, stock.c.warehouse == ROWS.c.warehouse))
        moved = or_(stock.c.sku.is_(None), stock.c.quantity != ROWS.c.quantity)
        conn.execute(insert_for(conn)(CHANGED).from_select(
            ["sku"], select(ROWS.c.sku).distinct().select_from(joined).where(moved)).on_conflict_do_nothing())
        upsert = insert_for(conn)(stock)
        columns = ["sku", "warehouse", "quantity", "fingerprint", "updated_at"]
        conn.execute(upsert.from_select(columns, select(
            ROWS.c.sku, ROWS.c.warehouse, ROWS.c.quantity, ROWS.c.fp, _at(now)
        ).select_from(joined).where(or_(moved, stock.c.fingerprint.is_distinct_from(ROWS.c.fp)))
            .order_by(ROWS.c.sku, ROWS.c.warehouse)).on_conflict_do_update(
            index_elements=["sku", "warehouse"], set_={k: upsert.excluded[k] for k in columns[2:]}))

    def _zero_absent(self, erp: str, now: datetime) -> int:
        """A snapshot is the whole catalogue: stock it no longer lists is zero (and backed by no row).
        A SKU quarantined in this read keeps its last good stock."""
        conn = self.connection
        stock, product = StockLevel.__table__, Product.__table__
        absent = and_(  # the row read unchanged first: it rules out nearly every row
            stock.c.quantity > 0,
            # (a row without a fingerprint matches none: no OR, so PostgreSQL joins KNOWN once, hashed,
            # instead of probing its index per stock row, 2 s of a 1,000,000-row read)
            ~exists().where(KNOWN.c.fp == stock.c.fingerprint),
            ~exists().where(ROWS.c.sku == stock.c.sku, ROWS.c.warehouse == stock.c.warehouse),
            exists().where(product.c.sku == stock.c.sku, product.c.erp == erp),
            ~exists().where(REJECTS.c.sku == stock.c.sku),
        )
        # one pass over the stock (the predicate probes every row): the zeroed rows' SKUs come back
        zeroed = [sku for (sku,) in conn.execute(
            update(stock).where(absent).values(quantity=0, fingerprint=None, updated_at=now).returning(stock.c.sku))]
        if zeroed:
            conn.execute(insert_for(conn)(CHANGED).on_conflict_do_nothing(), [{"sku": sku} for sku in set(zeroed)])
        return len(zeroed)

    def _quarantine(self, session: Session, erp: str, now: datetime, *, fresh_read: bool,
                    sku_less_clear: bool) -> int:
        """Insert or update the read's rejects (first_seen stays from the first time a record was refused;
        of two rejects of one record and field, the later one), then release: records of SKUs read valid
        now, and with a fresh read every record this read did not report again. Returns how many left."""
        conn = self.connection
        rejects = ErpReject.__table__
        upsert = insert_for(conn)(rejects)
        last = select(func.max(REJECTS.c.n)).group_by(REJECTS.c.record_key, REJECTS.c.field)
        conn.execute(upsert.from_select(
            ["erp", "record_key", "sku", "source", "field", "value", "reason", "first_seen", "last_seen"],
            select(literal(erp, String(100)), REJECTS.c.record_key, REJECTS.c.sku, REJECTS.c.source,
                   REJECTS.c.field, REJECTS.c.value, REJECTS.c.reason, _at(now), _at(now)
                   ).where(REJECTS.c.n.in_(last)).order_by(REJECTS.c.record_key, REJECTS.c.field)
        ).on_conflict_do_update(index_elements=["erp", "record_key", "field"], set_={
            k: upsert.excluded[k] for k in ("source", "sku", "value", "reason", "last_seen")}))
        released = conn.execute(rejects.delete().where(
            rejects.c.erp == erp, rejects.c.sku.in_(select(ROWS.c.sku)),
            ~exists().where(REJECTS.c.sku == rejects.c.sku))).rowcount or 0
        if fresh_read:
            # the whole source was read anew and the stage holds every problem of that read: the
            # quarantine is exactly those (a row fixed, or now wrong in another way, leaves its old entry)
            released += conn.execute(rejects.delete().where(rejects.c.erp == erp, ~exists().where(
                REJECTS.c.record_key == rejects.c.record_key, REJECTS.c.field == rejects.c.field))).rowcount or 0
        elif sku_less_clear:
            # a readable snapshot: problems without a SKU (a missing column, a bad encoding, a row
            # without one) are over unless this read reports them again
            released += conn.execute(rejects.delete().where(
                rejects.c.erp == erp, rejects.c.sku.is_(None), ~exists().where(
                    REJECTS.c.sku.is_(None), REJECTS.c.source == rejects.c.source,
                    REJECTS.c.field == rejects.c.field))).rowcount or 0
        return released


class StagedSkus:
    """The SKUs of the applied read, as a container asked a few SKUs (the reservations it may end)."""

    def __init__(self, connection: Connection) -> None:
        self.connection = connection

    def __contains__(self, sku: object) -> bool:
        stock = StockLevel.__table__
        return bool(self.connection.execute(select(
            exists().where(ROWS.c.sku == sku) | exists().where(stock.c.sku == sku, KNOWN.c.fp == stock.c.fingerprint)
        )).scalar())

    def __bool__(self) -> bool:
        return bool(_count(self.connection, ROWS) or _count(self.connection, KNOWN))


_OTHER = ROWS.alias("other")


def _at(now: datetime) -> Any:
    return literal(now, UTCDateTime())


def _count(conn: Connection, table: Table) -> int:
    return int(conn.execute(select(func.count()).select_from(table)).scalar() or 0)


def _parsed(erp: str, r: Any) -> ParsedRow:
    """A staged row as the feed rules read it."""
    return ParsedRow(erp, r.source,
                     ProductRecord(r.sku, r.name, r.vat_rate, ean=r.ean, weight_kg=r.weight_kg),
                     StockRecord(r.sku, r.warehouse, r.quantity),
                     PriceRecord(r.sku, r.price_gross, r.currency, cost_net=r.cost_net))


def _as_rows(batch: ErpBatch, position: int) -> tuple[list[FeedRow], int]:
    """A records-mode part (products, stock and prices apart) as rows: one per stock record whose SKU
    has its product and price in the part."""
    products = {p.sku: p for p in batch.products}
    prices = {p.sku: p for p in batch.prices}
    rows = []
    for s in batch.stock:
        product, price = products.get(s.sku), prices.get(s.sku)
        if product is not None and price is not None:
            rows.append(FeedRow.of(product, s, price, f"{s.sku}/{s.warehouse}", position))
            position += 1
    return rows, position


__all__ = ["Known", "KnownRow", "Stage", "StagedSkus", "Stale", "known_rows"]
