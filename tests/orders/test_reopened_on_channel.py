"""A cancelled order its channel takes up again (WooCommerce completes a payment that arrives after the
cancellation; the chaos bench: an oversold bank-transfer order the seller cancelled, then paid, stayed
cancelled in the hub and processing in the shop). It is new again and reserves its goods as when it
arrived (or is oversold): no unit is sold twice. An old read arriving late reopens nothing; an order
whose cancellation reached another system stays cancelled with a problem for the seller."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

from sqlalchemy import Engine, select

from hub.catalog.models import Product, StockLevel
from hub.jobs.models import Job
from hub.kernel.clock import utcnow
from hub.kernel.ports.channel import ChannelOrder
from hub.orders import intake
from hub.orders.kinds import WITHDRAW_SHIPMENTS
from hub.orders.models import Order, OrderHistory, Reservation
from hub.platform.db import transaction
from tests.orders.test_paid_by_shipping import _rules
from tests.support.fake_connectors import make_order


def _later(co: ChannelOrder, minutes: int, status: str, revision: str, *, paid: bool = False) -> ChannelOrder:
    """The same order as the channel has it ``minutes`` later."""
    again = make_order(co.channel_account, co.external_id, [(line.sku, line.offer_id, line.quantity,
                                                              str(line.unit_price_gross)) for line in co.lines],
                       status=status, paid=paid, revision=revision)
    return replace(again, updated_at=co.updated_at + timedelta(minutes=minutes))


def _state(engine: Engine, external_id: str) -> tuple[Order, list[str], dict[str, int]]:
    with transaction(engine) as s:
        order = s.execute(select(Order).where(Order.external_id == external_id)).scalar_one()
        history = [h.to_status for h in s.execute(select(OrderHistory).where(OrderHistory.order_id == order.id)
                                                  .order_by(OrderHistory.id)).scalars()]
        held = {r.sku: r.quantity for r in s.execute(select(Reservation).where(
            Reservation.order_id == order.id, Reservation.state == "open")).scalars()}
    return order, history, held


def _jobs(engine: Engine, kind: str) -> list[str]:
    with transaction(engine) as s:
        return sorted(s.execute(select(Job.idempotency_key).where(Job.kind == kind)).scalars())


def test_a_cancelled_order_paid_later_is_reopened_and_reserved(order_fakes: None, db_url: str, engine: Engine,
                                                              tmp_path: Path) -> None:
    rules = _rules(tmp_path, db_url, engine)
    placed = make_order("shop", "R1", [("A", None, 2, "10.00")], status="BOUGHT", paid=False)
    with transaction(engine) as s:
        intake.accept(s, rules, placed)
        intake.accept(s, rules, _later(placed, 1, "CANCELLED", "r2"))
    assert _state(engine, "R1")[2] == {}
    with transaction(engine) as s:  # the buyer's payment arrives: the shop completes it
        intake.accept(s, rules, _later(placed, 2, "READY_FOR_PROCESSING", "r3", paid=True))
    order, history, held = _state(engine, "R1")
    assert (order.status, order.problem) == ("processing", None)  # the shipped rules take it on from paid
    assert history == ["new", "cancelled", "new", "paid", "processing"] and held == {"A": 2}
    assert len(_jobs(engine, "orders.to_erp")) == 1  # its sale goes to the ERP once, as for any paid order
    with transaction(engine) as s:  # cancelled again: this life's parcels are withdrawn by a job of its own
        intake.accept(s, rules, _later(placed, 3, "CANCELLED", "r4"))
    assert _state(engine, "R1")[2] == {}
    assert _jobs(engine, WITHDRAW_SHIPMENTS) == ["ship-withdraw:shop/R1", "ship-withdraw:shop/R1#1"]


def test_a_reopened_order_whose_units_were_sold_meanwhile_is_oversold(order_fakes: None, db_url: str,
                                                                     engine: Engine, tmp_path: Path) -> None:
    rules = _rules(tmp_path, db_url, engine)  # A: 5 in stock
    placed = make_order("shop", "R2", [("A", None, 2, "10.00")], status="BOUGHT", paid=False)
    with transaction(engine) as s:
        intake.accept(s, rules, placed)
        intake.accept(s, rules, _later(placed, 1, "CANCELLED", "r2"))
        intake.accept(s, rules, make_order("market", "M1", [("A", None, 4, "10.00")]))  # 1 left
        intake.accept(s, rules, _later(placed, 2, "READY_FOR_PROCESSING", "r3", paid=True))
    order, history, held = _state(engine, "R2")
    assert history[-3:] == ["cancelled", "new", "paid"]
    assert order.status == "paid" and order.oversold and order.problem == "oversold: A: ordered 2, only 1 left"
    assert held == {}
    with transaction(engine) as s:
        total = sum(s.execute(select(Reservation.quantity).where(Reservation.sku == "A",
                                                                 Reservation.state == "open")).scalars())
    assert total == 4  # never more than the stock


def test_an_old_read_arriving_late_reopens_nothing(order_fakes: None, db_url: str, engine: Engine,
                                                  tmp_path: Path) -> None:
    rules = _rules(tmp_path, db_url, engine)
    placed = make_order("shop", "R3", [("A", None, 1, "10.00")], status="BOUGHT", paid=False)
    with transaction(engine) as s:
        intake.accept(s, rules, placed)
        intake.accept(s, rules, _later(placed, 5, "CANCELLED", "r2"))
        # a poll that read the order before its cancellation commits after it
        intake.accept(s, rules, _later(placed, 1, "READY_FOR_PROCESSING", "r1b", paid=True))
    order, history, held = _state(engine, "R3")
    assert (order.status, order.problem, held) == ("cancelled", None, {})
    assert history == ["new", "cancelled"]


def test_a_reopened_order_whose_sale_reached_the_erp_stays_cancelled_with_a_problem(
        order_fakes: None, db_url: str, engine: Engine, tmp_path: Path) -> None:
    rules = _rules(tmp_path, db_url, engine)
    placed = make_order("shop", "R4", [("A", None, 1, "10.00")])  # paid: its sale is queued for the ERP
    with transaction(engine) as s:
        intake.accept(s, rules, placed)
        intake.accept(s, rules, _later(placed, 1, "CANCELLED", "r2"))
        intake.accept(s, rules, _later(placed, 2, "READY_FOR_PROCESSING", "r3", paid=True))
    order, history, held = _state(engine, "R4")
    assert (order.status, order.problem_kind, held) == ("cancelled", "reopened", {})
    assert order.problem == ("the channel reopened this order (READY_FOR_PROCESSING) after the hub cancelled it, "
                             "and its sale was sent to the ERP: cancel it on the channel again and settle with the "
                             "buyer, or have the buyer order anew")
    assert history == ["new", "paid", "processing", "cancelled"]


def test_a_retried_oversold_order_holds_what_it_had_reserved_again(order_fakes: None, db_url: str, engine: Engine,
                                                                   tmp_path: Path) -> None:
    """Its SKUs that were in stock were reserved at arrival; the retry releases and reserves them all
    again (the unique key made that a silent no-op, and the retried order held nothing of them)."""
    rules = _rules(tmp_path, db_url, engine)
    with transaction(engine) as s:
        s.add(Product(sku="B", erp="erp", name="B", vat_rate="23", price_gross=Decimal("10.00"), currency="PLN",
                      cost_net=None, updated_at=utcnow()))
        order_id = intake.accept(s, rules, make_order("shop", "O1", [("A", None, 1, "10.00"),
                                                                     ("B", None, 1, "10.00")])).order_id
    assert _state(engine, "O1")[2] == {"A": 1}
    with transaction(engine) as s:
        s.add(StockLevel(sku="B", warehouse="MAIN", quantity=3, updated_at=utcnow()))
    with transaction(engine) as s:
        intake.retry(s, rules, order_id)
    order, _, held = _state(engine, "O1")
    assert (order.oversold, order.problem, held) == (False, None, {"A": 1, "B": 1})
