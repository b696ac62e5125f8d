"""A bank-transfer order the seller holds and then completes never passes through the channel's "paid"
status: it is paid by the time it ships, so the hub moves it through "paid" once, the shipped rules
book it in the ERP (and its reservation can end), and "set processing" on an order already past it is
satisfied, not a failed rule. A cash-on-delivery order is not "paid" by shipping."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from sqlalchemy import Engine, select

from hub.app.wiring import order_rules
from hub.catalog.models import Product, StockLevel
from hub.jobs.models import Job
from hub.kernel.clock import utcnow
from hub.orders import intake
from hub.orders.models import Order, OrderHistory, RuleRun
from hub.orders.service import OrderService
from hub.orders.status import move
from hub.platform.db import transaction
from tests.orders.test_orders_flow import config
from tests.support.fake_connectors import make_order


def _rules(tmp_path: Path, db_url: str, engine: Engine):  # type: ignore[no-untyped-def]
    with transaction(engine) as s:
        now = utcnow()
        s.add(Product(sku="A", erp="erp", name="A", vat_rate="23", price_gross=Decimal("10.00"), currency="PLN",
                      cost_net=None, updated_at=now))
        s.add(StockLevel(sku="A", warehouse="MAIN", quantity=5, updated_at=now))
    loaded = config(tmp_path, db_url)
    status_map = tmp_path / "maps" / "order_status.toml"
    status_map.write_text(status_map.read_text().replace('CANCELLED = "cancelled"\n',
                                                         'CANCELLED = "cancelled"\nSENT = "shipped"\n', 1))
    return order_rules(loaded)


def _steps(engine: Engine, external_id: str) -> tuple[list[str], list[str], list[str]]:
    with transaction(engine) as s:
        order = s.execute(select(Order).where(Order.external_id == external_id)).scalar_one()
        history = [h.to_status for h in s.execute(select(OrderHistory).where(OrderHistory.order_id == order.id)
                                                  .order_by(OrderHistory.id)).scalars()]
        jobs = sorted(s.execute(select(Job.kind).where(Job.payload["order_id"].as_integer() == order.id)).scalars())
        failed = [r.rule for r in s.execute(select(RuleRun).where(RuleRun.order_id == order.id,
                                                                  RuleRun.outcome != "done")).scalars()]
    return history, jobs, failed


def test_a_held_bank_transfer_completed_by_the_seller_is_booked_once(order_fakes: None, db_url: str, engine: Engine,
                                                                    tmp_path: Path) -> None:
    rules = _rules(tmp_path, db_url, engine)
    with transaction(engine) as s:
        intake.accept(s, rules, make_order("shop", "T1", [("A", None, 1, "10.00")], status="BOUGHT", paid=False))
    with transaction(engine) as s:
        intake.accept(s, rules, make_order("shop", "T1", [("A", None, 1, "10.00")], status="SENT", paid=False,
                                           revision="r2"))
    history, jobs, failed = _steps(engine, "T1")
    assert history == ["new", "paid", "processing", "ready_to_ship", "shipped"]
    assert jobs.count("orders.to_erp") == 1 and failed == []
    with transaction(engine) as s:  # a later revision books nothing again
        intake.accept(s, rules, make_order("shop", "T1", [("A", None, 1, "10.00")], status="SENT", revision="r3"))
    assert _steps(engine, "T1")[1].count("orders.to_erp") == 1


def test_cash_on_delivery_is_not_made_paid_by_shipping(order_fakes: None, db_url: str, engine: Engine,
                                                       tmp_path: Path) -> None:
    rules = _rules(tmp_path, db_url, engine)
    with transaction(engine) as s:
        intake.accept(s, rules, make_order("shop", "C1", [("A", None, 1, "10.00")], status="BOUGHT", paid=False,
                                           cod=True))
        intake.accept(s, rules, make_order("shop", "C1", [("A", None, 1, "10.00")], status="SENT", paid=False,
                                           cod=True, revision="r2"))
    history, jobs, _ = _steps(engine, "C1")
    assert "paid" not in history and history[-1] == "shipped"
    assert jobs.count("orders.to_erp") == 1  # booked at creation, as the shipped COD rule says


class _Channel:
    """Records the status values the hub sends."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    def set_order_status(self, external_id: str, status: str, *, revision: str | None) -> None:
        self.calls.append(status)


def _pusher(rules: Any, engine: Engine, order_id: int) -> tuple[OrderService, _Channel, SimpleNamespace]:
    """The status-push handler on a recording channel, and a context pushing "processing" for the order."""
    channel = _Channel()
    service = OrderService(SimpleNamespace(get=lambda name: channel), rules, None)  # type: ignore[arg-type]
    ctx = SimpleNamespace(payload={"order_id": order_id, "status": "processing"}, session=lambda: transaction(engine))
    return service, channel, ctx


def test_a_status_the_channel_shows_already_is_not_sent(order_fakes: None, db_url: str, engine: Engine,
                                                        tmp_path: Path) -> None:
    rules = _rules(tmp_path, db_url, engine)
    with transaction(engine) as s:
        order_id = intake.accept(s, rules, make_order("shop", "P1", [("A", None, 1, "10.00")])).order_id
        s.get(Order, order_id).channel_status = "processing"

    service, channel, ctx = _pusher(rules, engine, order_id)
    assert service.handle_push_status(ctx) == {"sent": False, "reason": "shop shows processing already"}
    with transaction(engine) as s:
        move(s, s.get(Order, order_id), "cancelled", "operator", utcnow(), push=False)
    assert service.handle_push_status(ctx) == {"sent": False, "reason": "the order is cancelled now, not processing"}
    ctx.payload["status"] = "cancelled"
    assert service.handle_push_status(ctx)["sent"] == "cancelled" and channel.calls == ["cancelled"]


def test_a_push_goes_for_the_latest_status_the_channel_has_a_value_for(order_fakes: None, db_url: str,
                                                                       engine: Engine, tmp_path: Path) -> None:
    """The order moved on from processing to ready_to_ship, which the shop has no value for: the queued
    processing push is still the latest the shop can show, so it goes; once the order is shipped (mapped),
    it is stale and skipped."""
    rules = _rules(tmp_path, db_url, engine)
    with transaction(engine) as s:
        order = s.get(Order, intake.accept(s, rules, make_order("shop", "P2", [("A", None, 1, "10.00")])).order_id)
        assert order.status == "processing"
        move(s, order, "ready_to_ship", "operator", utcnow(), push=False)
        order_id = order.id

    service, channel, ctx = _pusher(rules, engine, order_id)
    assert service.handle_push_status(ctx)["sent"] == "processing" and channel.calls == ["processing"]
    with transaction(engine) as s:
        s.get(Order, order_id).channel_status = None
        move(s, s.get(Order, order_id), "shipped", "operator", utcnow(), push=False)
    assert service.handle_push_status(ctx) == {"sent": False, "reason": "the order is shipped now, not processing"}
    assert channel.calls == ["processing"]
