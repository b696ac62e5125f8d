"""Engines, sessions and migrations for SQLite (the embedded default) and PostgreSQL.

SQLite: WAL, a busy timeout, foreign keys, and every transaction opened with
``BEGIN IMMEDIATE`` so writers serialize up front instead of failing with
"database is locked" when a read transaction later tries to write.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.orm import Session, sessionmaker

from hub.kernel.errors import EnvironmentFailure, HubError, NotMigratedError
from hub.platform.config import DatabaseSettings


def json_default(value: Any) -> Any:
    """Decimal travels as a string so no amount is ever turned into a float."""
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, set | frozenset | tuple):
        return list(value)
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def dumps(value: Any) -> str:
    return json.dumps(value, default=json_default, separators=(",", ":"), ensure_ascii=False)


def insert_for(session_or_engine: Session | Engine) -> Any:
    """The dialect's INSERT, which has ON CONFLICT on both SQLite and PostgreSQL."""
    bind = session_or_engine.get_bind() if isinstance(session_or_engine, Session) else session_or_engine
    return pg_insert if bind.dialect.name == "postgresql" else sqlite_insert


def upsert(
    session: Session, model: Any, values: dict[str, Any], keys: Sequence[str], *,
    update: Sequence[str] | None = None,
) -> None:
    """INSERT, or on a conflict of ``keys`` UPDATE the other given columns (or just ``update``): one
    statement, so two writers never race a read-then-insert."""
    columns = update if update is not None else [k for k in values if k not in keys]
    stmt = insert_for(session)(model).values(**values)
    session.execute(stmt.on_conflict_do_update(index_elements=list(keys), set_={k: values[k] for k in columns}))


def make_engine(settings: DatabaseSettings | str, **overrides: Any) -> Engine:
    if isinstance(settings, str):
        settings = DatabaseSettings(url=settings)
    url = make_url(settings.url)
    if url.drivername in ("postgresql", "postgres"):
        url = url.set(drivername="postgresql+psycopg")
    if settings.password is not None and url.get_backend_name() == "postgresql":
        url = url.set(password=settings.password.get())
    kwargs: dict[str, Any] = {"json_serializer": dumps, "future": True}
    if url.get_backend_name() == "sqlite":
        database = url.database or ""
        if database and database != ":memory:" and not database.startswith("file:"):
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        kwargs["connect_args"] = {"timeout": settings.sqlite_busy_timeout, "check_same_thread": False}
        if database and database != ":memory:" and not database.startswith("file:"):
            # connections are kept, not opened and closed past a pool of 5 (each new one's page cache
            # was allocated and freed again, and the process grew with the churn)
            kwargs["pool_size"] = settings.pool_size
            kwargs["max_overflow"] = settings.pool_size
    else:
        kwargs["pool_size"] = settings.pool_size
        kwargs["max_overflow"] = settings.pool_size
    kwargs.update(overrides)
    engine = create_engine(url, **kwargs)
    if url.get_backend_name() == "sqlite":
        _configure_sqlite(engine, busy_ms=int(settings.sqlite_busy_timeout * 1000))
    elif not kwargs.get("pool_pre_ping"):
        _ping_when_idle(engine)
    return engine


PING_IDLE_AFTER = 2.0  # seconds a pooled PostgreSQL connection may sit unused before its checkout pings it


def _ping_when_idle(engine: Engine) -> None:
    """A connection that sat in the pool longer than ``PING_IDLE_AFTER`` is pinged before use, and one
    that fails the ping is replaced (the server restarted, a proxy cut it). One used a moment ago is
    not: a ping on every checkout was a round trip before each of a busy worker's transactions (eight
    per shipment booked). Should the server go away within that moment, the first statement fails,
    SQLAlchemy sees the disconnect and renews the pool, and the job queue retries that one job."""

    @event.listens_for(engine, "checkin")
    def _checked_in(_dbapi_conn: Any, record: Any) -> None:
        record.info["idle_since"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _checked_out(dbapi_conn: Any, record: Any, _proxy: Any) -> None:
        since = record.info.pop("idle_since", None)
        if since is None or time.monotonic() - since < PING_IDLE_AFTER:
            return
        try:
            alive = engine.dialect.do_ping(dbapi_conn)
        except Exception as exc:  # the pool catches this, drops the connection and opens another
            raise DisconnectionError(f"pooled connection failed its ping: {exc}") from exc
        if not alive:
            raise DisconnectionError("pooled connection failed its ping")


# Decimals handed to the driver itself (a read of the whole catalogue staged with executemany, no
# SQLAlchemy type in between) are stored as their text, which a NUMERIC column turns into the number;
# without an adapter sqlite3 refuses them. SQLAlchemy's own Numeric binds are unaffected.
sqlite3.register_adapter(Decimal, str)


def _configure_sqlite(engine: Engine, busy_ms: int) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # we emit BEGIN ourselves
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute(f"PRAGMA busy_timeout={busy_ms}")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA synchronous=NORMAL")
        # each connection's page cache is capped at 1 MiB (SQLite's default is 2): the pool keeps up to
        # twice pool_size connections, and the operating system caches the file for all of them
        cur.execute("PRAGMA cache_size=-1024")
        # temporary tables (a snapshot's stage, a recompute's or a reconciliation's working sets, the work
        # tables of an UPDATE ... FROM) in a file, as large as the catalogue is: in memory a rules change
        # held 389 MiB at 1,000,000 SKUs and 705 MiB at 2,000,000 (bench/scale.py (c); 76 MiB in a file,
        # as fast). A connection whose temporary data outgrew its cache keeps the file open for its life
        # (unlinked, /var/tmp/etilqs_*: one or two descriptors per pooled connection at most)
        cur.execute("PRAGMA temp_store=FILE")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        mode = conn.get_execution_options().get("sqlite_begin", "IMMEDIATE")
        conn.exec_driver_sql(f"BEGIN {mode}")


def standalone(engine: Engine) -> Engine:
    """The engine for statements that stand alone, on PostgreSQL in autocommit: with psycopg a
    transaction's BEGIN and COMMIT are a round trip each, which tripled a one-statement update (counting
    a job's attempt, claiming a batch). SQLite keeps its BEGIN IMMEDIATE."""
    if engine.dialect.name != "postgresql":
        return engine
    found = engine.__dict__.get("_hub_standalone")  # kept on the engine: it lives and goes with it
    if found is None:
        found = engine.__dict__["_hub_standalone"] = engine.execution_options(isolation_level="AUTOCOMMIT")
    return found


def session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


@contextmanager
def transaction(engine: Engine) -> Iterator[Session]:
    """A session whose work commits on success and rolls back on error."""
    with Session(engine, expire_on_commit=False) as session, session.begin():
        yield session


@contextmanager
def within(engine: Engine, session: Session | None) -> Iterator[Session]:
    """The caller's session when there is one (its transaction decides what stays), else a transaction
    of its own."""
    if session is not None:
        yield session
        return
    with transaction(engine) as own:
        yield own


# --- migrations -------------------------------------------------------------

def migrations_dir() -> Path:
    """The Alembic scripts: the repo's alembic/, shipped in the package as hub/_migrations."""
    path = Path(__file__).resolve().parents[1] / "_migrations"
    if (path / "env.py").exists():
        return path
    raise HubError(f"the hub's migration scripts are missing from this installation ({path})")


def alembic_config(engine: Engine) -> Any:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(migrations_dir()))
    cfg.attributes["engine"] = engine
    return cfg


@dataclass(frozen=True)
class SchemaState:
    current: str | None
    head: str
    # False when the database is at a revision none of this hub's migrations names (a newer hub's)
    known: bool = True

    @property
    def up_to_date(self) -> bool:
        return self.current == self.head


def schema_state(engine: Engine) -> SchemaState:
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory
    from alembic.script.revision import RevisionError
    from alembic.util import CommandError

    scripts = ScriptDirectory.from_config(alembic_config(engine))
    head = scripts.get_current_head()
    assert head is not None
    with engine.connect() as conn:
        current = MigrationContext.configure(conn).get_current_revision()
    known = True
    if current is not None:
        try:
            known = scripts.get_revision(current) is not None
        except (CommandError, RevisionError):  # no script of this hub has that revision
            known = False
    return SchemaState(current=current, head=head, known=known)


def _require_known(engine: Engine, state: SchemaState) -> None:
    if not state.known:
        where = engine.url.render_as_string(hide_password=True)
        raise EnvironmentFailure(
            f"database {where} is at revision {state.current}, which this version of the hub does not know "
            "(written by a newer hub?): upgrade the hub or point database.url elsewhere"
        )


def upgrade(engine: Engine, revision: str = "head") -> None:
    from alembic import command

    _require_known(engine, schema_state(engine))
    command.upgrade(alembic_config(engine), revision)


def downgrade(engine: Engine, revision: str = "base") -> None:
    from alembic import command

    _require_known(engine, schema_state(engine))
    command.downgrade(alembic_config(engine), revision)


def require_migrated(engine: Engine) -> None:
    state = schema_state(engine)
    if state.up_to_date:
        return
    _require_known(engine, state)
    where = engine.url.render_as_string(hide_password=True)
    if state.current is None:
        detail = "has no hub schema"
    else:
        detail = f"is at revision {state.current}, the code needs {state.head}"
    raise NotMigratedError(
        f"database {where} {detail}: run `hub init` (or `hub run --migrate`) to migrate it"
    )
