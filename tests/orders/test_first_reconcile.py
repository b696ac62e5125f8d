"""The first orders reconciliation looks back a day only to correct orders the hub has: an order older
than the hub is the seller's past, not a new order that reserves stock. Later runs add what the journal
missed."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from pathlib import Path

from sqlalchemy import Engine, select

from hub.kernel.clock import utcnow
from hub.orders.models import Order
from hub.platform.db import transaction
from tests.orders.test_orders_flow import Hub, config
from tests.support.fake_connectors import INSTANCES, FakeOrderChannel, make_order


def test_the_first_reconcile_imports_no_order_older_than_the_hub(order_fakes: None, db_url: str, engine: Engine,
                                                                 tmp_path: Path) -> None:
    loaded = config(tmp_path, db_url)
    hub = Hub(engine, loaded)
    hub.pool.start()
    try:
        shop = INSTANCES.setdefault("shop", FakeOrderChannel("shop"))
        now = utcnow()
        old = replace(make_order("shop", "OLD", [("A", None, 1, "10.00")]), updated_at=now - timedelta(hours=1))
        shop.orders["OLD"] = old  # in the shop before the hub: never in the hub's journal
        hub.run("orders.reconcile", {"channel": "shop"}, "reconcile-1", "shop")
        with transaction(engine) as s:
            assert s.execute(select(Order.external_id)).scalars().all() == []
        missed = replace(make_order("shop", "MISSED", [("A", None, 1, "10.00")]), updated_at=utcnow())
        shop.orders["MISSED"] = missed  # a new order the journal did not deliver
        hub.run("orders.reconcile", {"channel": "shop"}, "reconcile-2", "shop")
        with transaction(engine) as s:
            assert s.execute(select(Order.external_id)).scalars().all() == ["MISSED"]
    finally:
        hub.pool.stop()
