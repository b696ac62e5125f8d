"""The hot queries of whole-catalogue work read through an index, on SQLite and PostgreSQL: the plan of
each is asked of the database, and a full scan of the table it reads fails the test (SQLite: a "SCAN
<table>" step; PostgreSQL, with sequential scans priced out: a "Seq Scan on <table>"). A query that
turns into a full scan at 1,000,000 SKUs is minutes of work per ERP read or rule change. A full scan of an
index ("SCAN t USING COVERING INDEX i") counts as one: it reads every entry."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import Engine, func, select, text, update

from hub.catalog.ingest import _STOCK_OF, _STORED
from hub.catalog.models import Product, StockLevel
from hub.invoicing.service import _ready_rows
from hub.listings.desired_sql import _free
from hub.listings.models import CompetitorPrice, Listing
from hub.listings.stock_rules import StockRule
from hub.orders.models import Order, Reservation

SKUS = ["SKU-1", "SKU-2", "SKU-3"]
NOW = datetime(2026, 12, 2, tzinfo=UTC)

# a recompute's units free to sell: a correlated sum over stock and one over reservations per dirty SKU
# (a million SKUs: a million lookups each, or a million scans)
_FREE_UNITS = select(Product.sku, _free(StockRule(), Product.sku)).where(Product.sku.in_(SKUS))
_FREE_IN_SOME = select(Product.sku, _free(StockRule(warehouses=["MAIN", "B"]), Product.sku)).where(
    Product.sku.in_(SKUS))

HOT: dict[str, tuple[str, Any]] = {
    # table read, statement
    "ingest: stored products of a chunk": ("products", _STORED.params(skus=SKUS)),
    "ingest: stored stock of a chunk": ("stock_levels", _STOCK_OF.params(skus=SKUS)),
    "desired: the SKUs' listings on every channel": ("listings", select(
        Listing.id, Listing.channel, Listing.sku).where(Listing.sku.in_(SKUS))),
    "desired: the SKUs' competitor prices": ("competitor_prices", select(CompetitorPrice).where(
        CompetitorPrice.sku.in_(SKUS))),
    "desired: the SKUs' stock": ("stock_levels", select(StockLevel.sku, StockLevel.quantity).where(
        StockLevel.sku.in_(SKUS))),
    "desired: units reserved per SKU": ("reservations", select(Reservation.sku, func.sum(Reservation.quantity))
                                        .where(Reservation.sku.in_(SKUS), Reservation.state == "open")
                                        .group_by(Reservation.sku)),
    "desired_sql: the free units' stock, per SKU": ("stock_levels", _FREE_UNITS),
    "desired_sql: the free units' reservations, per SKU": ("reservations", _FREE_UNITS),
    "desired_sql: the free units' stock in some warehouses": ("stock_levels", _FREE_IN_SOME),
    "orders: an order's reservations released": ("reservations", update(Reservation).where(
        Reservation.order_id == 7, Reservation.state == "open").values(state="released")),
    "orders: booked orders whose reservations end": ("orders", select(Order.id).where(
        Order.erp_booked_at.is_not(None), Order.erp_booked_at <= NOW)),
    "invoicing: invoices ready for KSeF": ("invoices", _ready_rows().limit(100)),
    "reconcile: a page's listings": ("listings", select(Listing).where(
        Listing.channel == "allegro", Listing.external_id.in_(["1", "2"]))),
    "reconcile: the page's SKUs bound already": ("listings", select(Listing.sku).where(
        Listing.channel == "allegro", Listing.sku.in_(SKUS))),
}


def _plan(engine: Engine, statement: Any) -> str:
    sql = str(statement.compile(dialect=engine.dialect, compile_kwargs={"literal_binds": True}))
    with engine.connect() as conn:
        if engine.dialect.name == "postgresql":
            conn.execute(text("SET enable_seqscan = off"))
            rows = conn.execute(text("EXPLAIN " + sql)).scalars().all()
        else:
            rows = [row[-1] for row in conn.execute(text("EXPLAIN QUERY PLAN " + sql)).all()]
        conn.rollback()
    return "\n".join(rows)


def _full_scan(engine: Engine, plan: str, table: str) -> bool:
    if engine.dialect.name == "postgresql":
        return f"Seq Scan on {table}" in plan
    # "SCAN t" and "SCAN t USING [COVERING] INDEX i" both read every row (of the table or of an index);
    # "SEARCH t USING INDEX i (...)" looks the rows up
    return any(line.strip() == f"SCAN {table}" or line.strip().startswith((f"SCAN {table} ", f"SCAN TABLE {table}"))
               for line in plan.splitlines())


@pytest.mark.parametrize("name", sorted(HOT))
def test_a_hot_query_reads_through_an_index(engine: Engine, name: str) -> None:
    table, statement = HOT[name]
    plan = _plan(engine, statement)
    assert not _full_scan(engine, plan, table), f"{name}: a full scan of {table}\n{plan}"


def test_the_check_sees_a_full_scan(engine: Engine) -> None:
    """The test above can fail: a query on a column without an index is caught."""
    plan = _plan(engine, select(Listing.id).where(Listing.signature == "x"))
    assert _full_scan(engine, plan, "listings"), plan
