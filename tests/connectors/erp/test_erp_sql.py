"""The sql ERP against a real ERP database (SQLite and PostgreSQL): incremental paging with ties,
snapshots, cursors that survive a restart, and the queries file's validation."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from pydantic import ValidationError
from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Engine,
    Integer,
    MetaData,
    Numeric,
    String,
    Table,
    Text,
    insert,
    update,
)

from connectors.erp import sql
from connectors.erp.sql import SPEC, ErpSqlQueries, SqlErp, SqlOptions
from hub.kernel.errors import PermanentError, RetryableError
from hub.kernel.ports.capability import Capability
from hub.kernel.ports.erp import ErpBatch, ErpSource
from hub.platform import db, registry
from hub.platform.config import Secret, load
from hub.platform.mappings import SCHEMAS, validate_file

EXAMPLES = Path(sql.__file__).parent / "examples"
COLUMNS = "sku, name, stock, price_gross, vat_rate, ean, cost_net, currency, weight_kg, warehouse"
T0 = datetime(2025, 3, 1, 8, 0, tzinfo=UTC)

metadata = MetaData()
items = Table(
    "erp_items", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("sku", String(100)), Column("name", Text), Column("stock", Integer),
    Column("price_gross", Numeric(12, 2)), Column("vat_rate", String(3)), Column("ean", String(14)),
    Column("cost_net", Numeric(14, 4)), Column("currency", String(3)), Column("weight_kg", Numeric(10, 3)),
    Column("warehouse", String(100)),
    Column("rowver", BigInteger),  # SQL Server's rowversion, cast to bigint in the seller's view
    Column("changed_at", DateTime(timezone=True)),
)


@pytest.fixture
def erp_url(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An ERP database (not the hub's): SQLite file, or a PostgreSQL database of the test server."""
    if backend == "sqlite":
        return f"sqlite:///{tmp_path / 'erp.db'}"
    url: str = request.getfixturevalue("pg_url")
    return url


@pytest.fixture
def erp_db(erp_url: str) -> Iterator[Engine]:
    engine = db.make_engine(erp_url)
    metadata.create_all(engine)
    yield engine
    engine.dispose()


def queries_file(tmp_path: Path, change_column: str = "rowver", *, select: str | None = None,
                 snapshot: str | None = None) -> Path:
    select = select or f"SELECT {COLUMNS}, rowver, changed_at FROM erp_items"
    body = f'change_column = "{change_column}"\nchanges = """{select}"""\n'
    if snapshot:
        body += f'snapshot = """{snapshot}"""\n'
    path = tmp_path / "erp_sql.toml"
    path.write_text(body, encoding="utf-8")
    return path


def connector(url: str, queries: Path) -> SqlErp:
    return SqlErp("erp", SqlOptions.model_validate({"url": url, "queries": str(queries)}))


def add(engine: Engine, sku: str, change: int, *, warehouse: str | None = "default", stock: int = 1,
        price: str = "10.00", **extra: Any) -> None:
    with engine.begin() as conn:
        conn.execute(insert(items).values(
            sku=sku, name=f"Produkt {sku}", stock=stock, price_gross=Decimal(price), vat_rate="23",
            warehouse=warehouse, rowver=change, changed_at=T0 + timedelta(seconds=change), **extra))


def drain(erp: SqlErp, cursor: str | None, limit: int) -> tuple[list[ErpBatch], str | None]:
    batches: list[ErpBatch] = []
    while True:
        batch = erp.changes(cursor, limit=limit)
        batches.append(batch)
        cursor = batch.cursor_after
        if batch.complete:
            return batches, cursor


def keys(batches: list[ErpBatch]) -> list[tuple[str, str]]:
    return [(s.sku, s.warehouse) for b in batches for s in b.stock]


@pytest.mark.parametrize("change_column", ["rowver", "changed_at"])
def test_incremental_pages_through_ties_exactly_once(erp_db: Engine, erp_url: str, tmp_path: Path,
                                                     change_column: str, backend: str) -> None:
    # five rows share change value 1 (one SKU in two warehouses, one with no warehouse), three share 2
    for sku, warehouse in [("C", "default"), ("A", "W2"), ("A", "default"), ("B", None), ("D", "W1")]:
        add(erp_db, sku, 1, warehouse=warehouse)
    for sku in ("E", "F", "G"):
        add(erp_db, sku, 2)
    add(erp_db, "H", 3)
    erp = connector(erp_url, queries_file(tmp_path, change_column))
    batches, cursor = drain(erp, None, limit=2)
    assert sorted(keys(batches)) == sorted([
        ("A", "W2"), ("A", "default"), ("B", "default"), ("C", "default"), ("D", "W1"),
        ("E", "default"), ("F", "default"), ("G", "default"), ("H", "default")])
    assert len(keys(batches)) == 9 and [b.complete for b in batches] == [False] * 4 + [True]
    assert not any(b.snapshot or b.rejected for b in batches)
    assert all({p.sku for p in b.products} == {s.sku for s in b.stock} for b in batches)

    assert erp.changes(cursor, limit=2) == ErpBatch((), (), (), (), cursor)  # nothing new
    # the cursor keeps the change value's type: SQLite hands timestamps back as text
    expected_tag = {"rowver": "int", "changed_at": "dt" if backend == "postgresql" else "str"}[change_column]
    assert cursor is not None and json.loads(cursor)[0] == expected_tag

    with erp_db.begin() as conn:  # the ERP changes one row of the tie group
        conn.execute(update(items).where(items.c.sku == "C").values(
            stock=7, rowver=4, changed_at=T0 + timedelta(seconds=4)))
    batch = erp.changes(cursor, limit=2)
    assert [(s.sku, s.quantity) for s in batch.stock] == [("C", 7)] and batch.complete
    erp.close()


def test_a_page_boundary_inside_a_tie_and_a_restart_between_pages(erp_db: Engine, erp_url: str,
                                                                    tmp_path: Path) -> None:
    for i in range(7):
        add(erp_db, f"S{i}", 5, warehouse="W1")
        add(erp_db, f"S{i}", 5, warehouse="W2")
    path = queries_file(tmp_path)
    first = connector(erp_url, path).changes(None, limit=3)
    assert not first.complete and first.cursor_after is not None
    tag, value, sku, warehouse = json.loads(first.cursor_after)  # a plain, typed JSON cursor
    assert (tag, value, sku, warehouse) == ("int", "5", "S1", "W1")
    # a new process (new engine, no state) carries on from the stored cursor
    rest, _ = drain(connector(erp_url, path), first.cursor_after, limit=4)
    assert sorted(keys([first, *rest])) == sorted((f"S{i}", w) for i in range(7) for w in ("W1", "W2"))
    assert len(keys([first, *rest])) == 14


def test_integer_skus_and_a_query_without_warehouse(erp_db: Engine, erp_url: str, tmp_path: Path) -> None:
    for number in (10, 2, 33, 4):
        add(erp_db, str(number), 1)
    # comments before and after the SELECT: the hub's wrapping must survive them
    select = "-- ids as SKUs\nSELECT id AS sku, name, stock, price_gross, vat_rate, rowver FROM erp_items -- ids"
    batches, _ = drain(connector(erp_url, queries_file(tmp_path, select=select)), None, limit=1)
    assert sorted(keys(batches)) == sorted((str(i), "default") for i in (1, 2, 3, 4))
    assert len(batches) == 4


def test_snapshot_streams_everything_and_hands_over_to_incremental(
        erp_db: Engine, erp_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sql, "SNAPSHOT_BATCH", 3)
    for i in range(7):
        add(erp_db, f"S{i}", 1 + i % 3, stock=i)
    add(erp_db, "LAST", 3)
    erp = connector(erp_url, queries_file(tmp_path, snapshot=f"SELECT {COLUMNS} FROM erp_items"))
    batches = list(erp.snapshot())
    assert [len(b.rows or ()) for b in batches] == [3, 3, 2]
    assert [b.complete for b in batches] == [False, False, True] and all(b.snapshot for b in batches)
    assert keys(batches) == sorted(keys(batches))  # ordered by sku, warehouse
    assert {b.cursor_after for b in batches} == {json.dumps(["int", "3", None, None], separators=(",", ":"))}
    # incremental reads resume from the largest change value seen when the snapshot began
    after = erp.changes(batches[0].cursor_after, limit=100)
    assert sorted(keys([after])) == [("LAST", "default"), ("S2", "default"), ("S5", "default")]


def test_bad_rows_are_quarantined_with_their_sku(erp_db: Engine, erp_url: str, tmp_path: Path) -> None:
    add(erp_db, "GOOD", 1, ean="5901234123457", cost_net=Decimal("4.5"), weight_kg=Decimal("0.25"))
    add(erp_db, "BAD", 2, stock=-1, price="0")
    add(erp_db, "GOOD", 3, warehouse="default")  # the same SKU and warehouse twice in one page
    batch = connector(erp_url, queries_file(tmp_path)).changes(None, limit=100)
    assert [(s.sku, s.quantity) for s in batch.stock] == [("GOOD", 1)]
    assert batch.prices[0].price_gross == Decimal("10.00") and batch.prices[0].cost_net == Decimal("4.5")
    assert batch.products[0].ean == "5901234123457" and batch.products[0].weight_kg == Decimal("0.25")
    assert [(r.sku, r.field) for r in batch.rejected] == [("BAD", "stock"), ("BAD", "price_gross"), ("GOOD", "sku")]
    assert batch.rejected[0].source == "erp_sql.toml:changes sku='BAD' warehouse='default'"


def test_an_empty_snapshot_never_zeroes_the_catalogue(erp_db: Engine, erp_url: str, tmp_path: Path) -> None:
    (batch,) = list(connector(erp_url, queries_file(tmp_path)).snapshot())
    assert not batch.snapshot and batch.stock == () and batch.rejected and batch.cursor_after is None


def test_a_query_missing_a_column_is_a_permanent_error(erp_db: Engine, erp_url: str, tmp_path: Path) -> None:
    path = queries_file(tmp_path, select="SELECT sku, name, price_gross, vat_rate, rowver FROM erp_items")
    with pytest.raises(PermanentError, match=r"erp_sql\.toml: changes: the query returns no column stock"):
        connector(erp_url, path).changes(None, limit=10)
    path = queries_file(tmp_path, "version", select=f"SELECT {COLUMNS} FROM erp_items")
    with pytest.raises(PermanentError, match="no column version"):
        connector(erp_url, path).changes(None, limit=10)


def test_database_errors_are_retryable_or_permanent(tmp_path: Path) -> None:
    unreachable = connector(f"sqlite:///{tmp_path / 'missing' / 'erp.db'}", queries_file(tmp_path))
    with pytest.raises(RetryableError, match="ERP database"):
        unreachable.changes(None, limit=10)


def test_queries_file_schema_is_registered_and_the_example_is_valid() -> None:
    assert SCHEMAS["erp_sql.toml"] is ErpSqlQueries
    data, problems = validate_file(EXAMPLES / "erp_sql.toml", ErpSqlQueries)
    assert problems == [] and isinstance(data, ErpSqlQueries) and data.change_column == "changed"


def test_queries_file_problems_name_file_key_and_value(tmp_path: Path) -> None:
    path = tmp_path / "queries.toml"
    path.write_text('change_column = "updated at"\nchanges = "DELETE FROM towary"\nsnapshots = "x"\n')
    with pytest.raises(ValidationError) as caught:
        SqlOptions.model_validate({"url": "sqlite:///erp.db", "queries": str(path)})
    message = str(caught.value)
    assert f"{path}: change_column = 'updated at': must be a plain column name" in message
    assert f"{path}: changes = 'DELETE FROM towary': must be one SELECT" in message
    assert f"{path}: snapshots = 'x': unknown key" in message

    config = tmp_path / "hub.toml"
    config.write_text(f'[connectors.subiekt]\nkind = "sql"\nurl = "sqlite:///erp.db"\nqueries = "{path}"\n'
                      f'[connectors.other]\nkind = "sql"\nurl = "nonsense"\nqueries = "{tmp_path / "none.toml"}"\n')
    problems = registry.validate_connectors(load(config, environ={}))
    assert any(p.startswith(f"{config}: connectors.subiekt.queries = ") and "'updated at'" in p for p in problems)
    assert any("connectors.other.url = 'nonsense': not a SQLAlchemy database URL" in p for p in problems)
    assert any("connectors.other.queries" in p and "cannot read" in p for p in problems)


def test_spec_factory_and_password(tmp_path: Path) -> None:
    assert SPEC.kind == "sql" and SPEC.role == "erp" and SPEC.options_model is SqlOptions
    # sales documents and restocks once the queries file has their sections (the instance's capabilities say)
    assert SPEC.capabilities == {Capability.ERP_INCREMENTAL, Capability.ERP_SNAPSHOT,
                                 Capability.ERP_SALES_DOCUMENTS, Capability.ERP_RESTOCK}
    options = SqlOptions.model_validate({"url": "postgresql://hub@erp.local/subiekt", "password": "s3cret",
                                         "queries": str(EXAMPLES / "erp_sql.toml")})
    assert isinstance(options.password, Secret) and "s3cret" not in repr(options)
    erp = SPEC.factory("subiekt", options, SimpleNamespace(log=None))
    assert isinstance(erp, ErpSource) and erp.name == "subiekt"
    assert erp.engine.url.password == "s3cret" and erp.engine.url.drivername == "postgresql+psycopg"
    assert "s3cret" not in str(erp.engine.url)
    erp.close()
