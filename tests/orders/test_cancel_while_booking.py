"""A cancellation and the ERP booking racing: an order cancelled before its document is booked is not
booked; one cancelled while the document is being booked is booked and reversed, once (found by the
chaos bench: a cancelled order's sale stayed in the ERP without its reversal)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

from sqlalchemy import Engine, select

from hub.jobs.models import Job
from hub.orders import intake
from hub.orders.kinds import ERP_CANCEL
from hub.orders.models import Order
from hub.orders.service import OrderService
from hub.platform.config import load
from hub.platform.connectors import Connectors
from hub.platform.db import transaction
from tests.orders.test_paid_by_shipping import _rules
from tests.support.fake_connectors import INSTANCES, FakeSalesErp, make_order


def _setup(tmp_path: Path, db_url: str, engine: Engine):  # type: ignore[no-untyped-def]
    rules = _rules(tmp_path, db_url, engine)  # writes tmp_path/hub.toml and the catalogue's SKU A
    return rules, OrderService(Connectors(load(tmp_path / "hub.toml", environ={}), engine), rules, None)


def _ctx(engine: Engine, order_id: int) -> SimpleNamespace:
    return SimpleNamespace(payload={"order_id": order_id}, session=lambda: transaction(engine))


def _shipped(engine: Engine, rules, order) -> int:  # type: ignore[no-untyped-def]
    """The order accepted and moved to shipped, as the booking's tracking push does."""
    from hub.kernel.clock import utcnow
    from hub.orders.status import move

    with transaction(engine) as s:
        order_id = intake.accept(s, rules, order).order_id
        placed = s.get(Order, order_id)
        for step in ("processing", "ready_to_ship", "shipped"):
            if placed.status != step:
                move(s, placed, step, "shipping", utcnow(), push=False)
    return order_id


def _cancel_jobs(engine: Engine) -> list[str]:
    with transaction(engine) as s:
        return list(s.execute(select(Job.idempotency_key).where(Job.kind == ERP_CANCEL)).scalars())


def test_cancelled_before_booking_is_not_booked(order_fakes: None, db_url: str, engine: Engine,
                                                tmp_path: Path) -> None:
    rules, service = _setup(tmp_path, db_url, engine)
    erp = INSTANCES.setdefault("erp", FakeSalesErp("erp"))
    order = make_order("shop", "C1", [("A", None, 1, "10.00")])
    with transaction(engine) as s:
        order_id = intake.accept(s, rules, order).order_id
        intake.accept(s, rules, replace(order, status="CANCELLED", revision="r2"))
    assert service.handle_to_erp(_ctx(engine, order_id))["booked"] is False
    assert erp.documents == {} and _cancel_jobs(engine) == []


def test_cancelled_while_booking_is_booked_and_reversed(order_fakes: None, db_url: str, engine: Engine,
                                                        tmp_path: Path) -> None:
    rules, service = _setup(tmp_path, db_url, engine)
    erp = INSTANCES.setdefault("erp", FakeSalesErp("erp"))
    order = make_order("shop", "C2", [("A", None, 1, "10.00")])
    with transaction(engine) as s:
        order_id = intake.accept(s, rules, order).order_id
    post = erp.post_sales_document

    def post_while_the_channel_cancels(document):  # type: ignore[no-untyped-def]
        ref = post(document)
        with transaction(engine) as s:  # the order poll commits the cancellation meanwhile
            intake.accept(s, rules, replace(order, status="CANCELLED", revision="r2"))
        return ref

    erp.post_sales_document = post_while_the_channel_cancels  # type: ignore[method-assign]
    assert service.handle_to_erp(_ctx(engine, order_id))["erp_ref"]
    with transaction(engine) as s:
        assert s.get(Order, order_id).status == "cancelled"
    assert _cancel_jobs(engine) == ["erp-cancel:shop/C2"]


def test_a_status_push_never_writes_over_a_cancellation_the_channel_reported_meanwhile(
        order_fakes: None, db_url: str, engine: Engine, tmp_path: Path) -> None:
    """Found by chaos with shipments: the channel cancelled a shipped order while the hub pushed "sent";
    the push's commit then stored "sent" over the intake's CANCELLED, so the parcel's withdrawal read an
    order the channel had not cancelled and left it shipped."""
    rules, service = _setup(tmp_path, db_url, engine)
    order = make_order("shop", "C4", [("A", None, 1, "10.00")])
    order_id = _shipped(engine, rules, order)
    shop = service.connectors.get("shop")
    pushed = shop.set_order_status

    def push_while_the_channel_cancels(external_id, status, *, revision):  # type: ignore[no-untyped-def]
        answer = pushed(external_id, status, revision=revision)
        with transaction(engine) as s:  # the order poll commits the cancellation meanwhile
            intake.accept(s, rules, replace(order, status="CANCELLED", revision="r2"))
        return answer

    shop.set_order_status = push_while_the_channel_cancels  # type: ignore[method-assign]
    assert service.handle_push_status(SimpleNamespace(payload={"order_id": order_id, "status": "shipped"},
                                                      session=lambda: transaction(engine)))["sent"] == "sent"
    with transaction(engine) as s:
        stored = s.get(Order, order_id)
        assert (stored.status, stored.channel_status, stored.revision) == ("shipped", "CANCELLED", "r2")
        assert s.execute(select(Job.idempotency_key).where(Job.kind == "shipping.withdraw")).scalars().all() == [
            "ship-withdraw:shop/C4"]


def test_no_status_is_pushed_to_an_order_its_channel_cancelled(order_fakes: None, db_url: str, engine: Engine,
                                                               tmp_path: Path) -> None:
    """Chaos with shipments: the intake stored the channel's CANCELLED on a shipped order, then a push of
    "sent" read that, sent it, and stored "sent" over CANCELLED (the revision had not changed since its
    read): the withdrawal found the order not cancelled, skipped, and used up its once-per-order key."""
    rules, service = _setup(tmp_path, db_url, engine)
    order = make_order("shop", "C5", [("A", None, 1, "10.00")])
    order_id = _shipped(engine, rules, order)
    with transaction(engine) as s:
        intake.accept(s, rules, replace(order, status="CANCELLED", revision="r2"))
    shop = service.connectors.get("shop")
    sent: list[str] = []
    shop.set_order_status = lambda external_id, status, *, revision: sent.append(status)  # type: ignore[method-assign]
    result = service.handle_push_status(SimpleNamespace(payload={"order_id": order_id, "status": "shipped"},
                                                        session=lambda: transaction(engine)))
    assert result == {"sent": False, "reason": "shop cancelled the order (CANCELLED)"} and sent == []
    with transaction(engine) as s:
        assert s.get(Order, order_id).channel_status == "CANCELLED"
