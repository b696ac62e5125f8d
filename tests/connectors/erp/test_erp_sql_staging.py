"""The sql ERP's staging tables on SQLite and PostgreSQL: sales documents and restocks inserted once,
also when two posts race, in one transaction on the ERP database."""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator
from dataclasses import replace
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError
from sqlalchemy import Engine, text

from connectors.erp import sql
from connectors.erp.sql import SPEC, ErpSqlQueries, SqlErp, SqlOptions
from hub.kernel.errors import PermanentError
from hub.kernel.ports.capability import Capability
from hub.kernel.ports.erp import ErpSalesSink, RestockDocument, SalesDocument
from hub.platform import db
from hub.platform.mappings import validate_file

EXAMPLES = Path(sql.__file__).parent / "examples"
STAGING_TOML = EXAMPLES / "erp_sql_staging.toml"
FEED = 'change_column = "changed"\nchanges = "SELECT sku, name, stock, price_gross, vat_rate, changed FROM hub_feed"\n'


@pytest.fixture
def erp_url(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if backend == "sqlite":
        return f"sqlite:///{tmp_path / 'erp.db'}"
    url: str = request.getfixturevalue("pg_url")
    return url


def create_staging(url: str) -> Engine:
    """The example's staging tables in the ERP database."""
    engine = db.make_engine(url)
    ddl = re.sub(r"--[^\n]*", "", (EXAMPLES / "erp_staging.sql").read_text(encoding="utf-8"))
    with engine.begin() as conn:
        for statement in filter(str.strip, ddl.split(";")):
            conn.execute(text(statement))
    return engine


@pytest.fixture
def erp_db(erp_url: str) -> Iterator[Engine]:
    engine = create_staging(erp_url)
    yield engine
    engine.dispose()


def connector(url: str, queries: Path = STAGING_TOML) -> SqlErp:
    return SqlErp("erp", SqlOptions.model_validate({"url": url, "queries": str(queries)}))


def rows(engine: Engine, table: str) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        return [dict(r) for r in conn.execute(text(f"SELECT * FROM {table} ORDER BY reference")).mappings()]


def test_a_sales_document_is_staged_once(erp_db: Engine, erp_url: str, invoice_document: SalesDocument,
                                         receipt_document: SalesDocument) -> None:
    erp = connector(erp_url)
    assert isinstance(erp, ErpSalesSink)
    assert erp.post_sales_document(invoice_document) == invoice_document.reference
    assert erp.post_sales_document(invoice_document) == invoice_document.reference  # the retry finds it
    assert connector(erp_url).post_sales_document(receipt_document) == receipt_document.reference
    headers = rows(erp_db, "hub_sales_documents")
    assert [h["reference"] for h in headers] == [invoice_document.reference, receipt_document.reference]
    invoice, receipt = headers
    assert (invoice["kind"], invoice["nip"], invoice["company"], invoice["channel"], invoice["order_id"]) == (
        "invoice", "7251234561", 'Kawiarnia "Łąka" Sp. z o.o.', "allegro-main", "7d1e5c2a-1b2c-4d5e-8f90-a1b2c3d4e5f6")
    assert [Decimal(str(invoice[k])) for k in ("total_net", "total_vat", "total_gross")] == [
        Decimal("118.52"), Decimal("20.45"), Decimal("138.97")]
    assert not invoice["cod"] and invoice["cod_amount"] is None and invoice["payment_method"] == "ONLINE"
    assert str(invoice["issued_date"]) == str(date(2025, 7, 1))  # 22:30 UTC on 30 June, in Poland
    assert json.loads(invoice["document"])["reference"] == invoice_document.reference
    assert (receipt["kind"], receipt["nip"], bool(receipt["cod"]), Decimal(str(receipt["cod_amount"]))) == (
        "receipt", None, True, Decimal("118.48"))
    lines = rows(erp_db, "hub_sales_document_lines")
    assert [(line["reference"], line["line_no"], line["sku"], line["quantity"], Decimal(str(line["gross"])))
            for line in lines] == [
        (invoice_document.reference, 1, "KUB-001", 3, Decimal("89.97")),
        (invoice_document.reference, 2, "KAW-250", 2, Decimal("49.00")),
        (receipt_document.reference, 1, "KUB-001", 1, Decimal("29.99")),
        (receipt_document.reference, 2, "KAW-250", 3, Decimal("73.50")),
        (receipt_document.reference, 3, None, 1, Decimal("14.99"))]
    erp.close()


def test_two_posts_racing_insert_once(erp_db: Engine, erp_url: str, invoice_document: SalesDocument,
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """Both workers find nothing, both insert: the unique constraint lets one through and the other
    reads its unique violation as "already there"."""
    barrier = threading.Barrier(2, timeout=20)
    seen = threading.local()
    real_exists = SqlErp._exists

    def exists_then_wait(self: SqlErp, *args: Any) -> str | None:
        found = real_exists(self, *args)
        if not getattr(seen, "waited", False):
            seen.waited = True
            barrier.wait()  # both have looked before either inserts
        return found

    monkeypatch.setattr(SqlErp, "_exists", exists_then_wait)
    results: list[str] = []
    errors: list[BaseException] = []

    def post() -> None:
        erp = connector(erp_url)
        try:
            results.append(erp.post_sales_document(invoice_document))
        except BaseException as exc:  # reported by the assertion below
            errors.append(exc)
        finally:
            erp.close()

    threads = [threading.Thread(target=post) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert errors == [] and results == [invoice_document.reference] * 2
    assert len(rows(erp_db, "hub_sales_documents")) == 1 and len(rows(erp_db, "hub_sales_document_lines")) == 2


def test_a_lost_race_is_already_there(erp_db: Engine, erp_url: str, invoice_document: SalesDocument,
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    connector(erp_url).post_sales_document(invoice_document)
    late = connector(erp_url)
    calls: list[str] = []
    real_exists = SqlErp._exists

    def blind_first(self: SqlErp, *args: Any) -> str | None:
        calls.append("exists")
        return None if len(calls) == 1 else real_exists(self, *args)  # the other post had not committed yet

    monkeypatch.setattr(SqlErp, "_exists", blind_first)
    assert late.post_sales_document(invoice_document) == invoice_document.reference
    assert len(calls) == 2 and len(rows(erp_db, "hub_sales_documents")) == 1


def test_restock_is_staged_once(erp_db: Engine, erp_url: str, restock_document: RestockDocument) -> None:
    erp = connector(erp_url)
    assert erp.restock(restock_document) == restock_document.reference
    assert connector(erp_url).restock(restock_document) == restock_document.reference
    (header,) = rows(erp_db, "hub_restocks")
    assert (header["order_reference"], header["warehouse"]) == (restock_document.order_reference, "MAG")
    assert header["created_at"] is not None
    assert [(r["line_no"], r["sku"], r["quantity"], r["amount_gross"] and Decimal(str(r["amount_gross"])))
            for r in rows(erp_db, "hub_restock_lines")] == [
        (1, "KUB-001", 2, Decimal("59.98")), (2, "KAW-250", 1, None)]


def test_the_id_is_the_first_column_of_exists(erp_db: Engine, erp_url: str, tmp_path: Path,
                                              invoice_document: SalesDocument) -> None:
    body = STAGING_TOML.read_text(encoding="utf-8").replace(
        'exists = "SELECT reference FROM hub_sales_documents WHERE reference = :reference"',
        "exists = \"SELECT 'ZK ' || order_id, reference FROM hub_sales_documents WHERE reference = :reference\"")
    queries = tmp_path / "erp_sql.toml"
    queries.write_text(body, encoding="utf-8")
    erp_id = connector(erp_url, queries).post_sales_document(invoice_document)
    assert erp_id == "ZK 7d1e5c2a-1b2c-4d5e-8f90-a1b2c3d4e5f6"


def test_a_document_the_database_refuses_is_permanent_and_leaves_nothing(
        erp_db: Engine, erp_url: str, tmp_path: Path, invoice_document: SalesDocument) -> None:
    queries = tmp_path / "erp_sql.toml"
    # a header missing a NOT NULL column: not a unique violation, and exists finds nothing
    queries.write_text(FEED + '[sales_document]\nexists = "SELECT reference FROM hub_sales_documents WHERE '
                       'reference = :reference"\nheader = "INSERT INTO hub_sales_documents (reference) VALUES '
                       '(:reference)"\nlines = "INSERT INTO hub_sales_document_lines (reference) VALUES '
                       '(:reference)"\n', encoding="utf-8")
    with pytest.raises(PermanentError, match="refused the document"):
        connector(erp_url, queries).post_sales_document(invoice_document)
    # an exists query that cannot see what the header inserted: rolled back
    queries.write_text(STAGING_TOML.read_text(encoding="utf-8").replace(
        "WHERE reference = :reference", "WHERE reference = :reference AND 1 = 0", 1), encoding="utf-8")
    with pytest.raises(PermanentError, match="the exists query does not find"):
        connector(erp_url, queries).post_sales_document(invoice_document)
    assert rows(erp_db, "hub_sales_documents") == [] and rows(erp_db, "hub_sales_document_lines") == []


@pytest.mark.postgres
def test_on_postgresql_only_the_staging_writes_are_read_write(pg_url: str, invoice_document: SalesDocument) -> None:
    create_staging(pg_url).dispose()
    erp = connector(pg_url)
    erp.post_sales_document(invoice_document)
    with erp._connection("changes") as conn:
        assert conn.execute(text("SHOW transaction_read_only")).scalar() == "on"
    erp.close()


def test_without_sections_no_capability_and_a_permanent_error(tmp_path: Path, invoice_document: SalesDocument,
                                                               restock_document: RestockDocument) -> None:
    queries = tmp_path / "erp_sql.toml"
    queries.write_text(FEED, encoding="utf-8")
    erp = connector(f"sqlite:///{tmp_path / 'erp.db'}", queries)
    assert erp.capabilities == {Capability.ERP_INCREMENTAL, Capability.ERP_SNAPSHOT}
    with pytest.raises(PermanentError, match=r"add a \[sales_document\] section"):
        erp.post_sales_document(invoice_document)
    with pytest.raises(PermanentError, match=r"add a \[restock\] section"):
        erp.restock(restock_document)
    assert connector(f"sqlite:///{tmp_path / 'erp.db'}").capabilities == {
        Capability.ERP_INCREMENTAL, Capability.ERP_SNAPSHOT, Capability.ERP_SALES_DOCUMENTS, Capability.ERP_RESTOCK}
    assert {Capability.ERP_SALES_DOCUMENTS, Capability.ERP_RESTOCK} <= SPEC.capabilities


def test_the_examples_are_valid() -> None:
    data, problems = validate_file(STAGING_TOML, ErpSqlQueries)
    assert problems == [] and isinstance(data, ErpSqlQueries)
    assert data.sales_document is not None and data.restock is not None


@pytest.mark.parametrize(("section", "problem"), [
    ('exists = "DELETE FROM t"', "exists = 'DELETE FROM t': must be one SELECT"),
    ('exists = "SELECT 1 FROM t WHERE order_id = :order_id"', "must select by :reference"),
    ('header = "UPDATE t SET x = 1"', "must be one INSERT"),
    ('header = "INSERT INTO t (a) VALUES (:kind)"', "'INSERT INTO t (a) VALUES (:kind)': must insert :reference"),
    ('header = "INSERT INTO t (a, b) VALUES (:reference, :totals)"', "unknown parameter :totals (known: :buyer_email"),
    ('lines = "INSERT INTO l (a) VALUES (:reference, :sku, :colour)"', "lines = 'INSERT INTO l (a) VALUES (:reference, "
                                                                       ":sku, :colour)': unknown parameter :colour"),
])
def test_staging_sections_are_validated(tmp_path: Path, section: str, problem: str) -> None:
    good = {"exists": '"SELECT 1 FROM t WHERE reference = :reference"',
            "header": '"INSERT INTO t (a) VALUES (:reference)"', "lines": '"INSERT INTO l (a) VALUES (:sku)"'}
    key = section.split(" = ")[0]
    body = FEED + "[sales_document]\n" + "".join(
        (section if k == key else f"{k} = {v}") + "\n" for k, v in good.items())
    path = tmp_path / "erp_sql.toml"
    path.write_text(body, encoding="utf-8")
    with pytest.raises(ValidationError) as caught:
        SqlOptions.model_validate({"url": "sqlite:///erp.db", "queries": str(path)})
    assert problem in str(caught.value)


def test_parameters_are_found_like_sqlalchemy_binds_them() -> None:
    statement = "INSERT INTO t VALUES (:a, CAST(:b AS text), ':not', x::text, \\:esc) -- :comment\n /* :c */"
    assert sql.parameters(statement) == {"a", "b"}


def test_the_restock_needs_lines(erp_db: Engine, erp_url: str, restock_document: RestockDocument) -> None:
    with pytest.raises(PermanentError, match="no lines"):
        connector(erp_url).restock(replace(restock_document, lines=[]))
