"""The hub's own order handlers (hub.orders.service.OrderService) on the Allegro channel and simulator:
journal intake with a duplicate and an out-of-order entry, the shipped order_status.toml, a status
pushed back, reconciliation, a return polled, accepted and refunded exactly once. Validated against
the spec like every other Allegro test."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from decimal import Decimal
from types import SimpleNamespace
from typing import Any

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from connectors.allegro.channel import AllegroChannel
from connectors.allegro.simulator import AllegroSimulator
from hub.catalog.models import Product, StockLevel
from hub.kernel.clock import utcnow
from hub.kernel.errors import HubError
from hub.listings.bindings import offer_skus
from hub.orders.models import Order, OrderLineRow, ReturnRow
from hub.orders.returns import accept_return, record_refund_by_hand
from hub.orders.rules import OrderRules
from hub.orders.service import OrderService
from hub.platform.db import transaction
from hub.platform.logs import get_logger
from hub.platform.mappings import load_all

NAME = "allegro-main"


class Ctx:
    """The part of hub.jobs.handlers.JobContext the order handlers use."""

    def __init__(self, engine: Engine, payload: dict[str, Any], key: str = "job-key"):
        self.engine = engine
        self.payload = payload
        self.job = SimpleNamespace(idempotency_key=key, payload=payload, connector=NAME, attempts=0)
        self.log = get_logger("test")

    @contextmanager
    def session(self) -> Iterator[Session]:
        with transaction(self.engine) as session:
            yield session


def rules() -> OrderRules:
    files = load_all(None)  # the shipped mappings, order_status.toml [kinds.allegro] included
    return OrderRules(automation=files["automation.toml"].data, status_maps=files["order_status.toml"].data,
                      kinds={NAME: "allegro"}, offer_skus=offer_skus)


def catalogue(engine: Engine, skus: dict[str, int]) -> None:
    now = utcnow()
    with transaction(engine) as s:
        for sku, stock in skus.items():
            s.add(Product(sku=sku, erp="erp", name=sku, vat_rate="23", price_gross=Decimal("10.00"), currency="PLN",
                          updated_at=now))
            s.add(StockLevel(sku=sku, warehouse="MAIN", quantity=stock, updated_at=now))


def test_hub_takes_allegro_orders_returns_and_refunds(make_channel, sim: AllegroSimulator, engine: Engine) -> None:
    sim.add_offer("7000000001", external_id="SKU-KUBEK", price="19.99", name="Kubek")
    sim.add_offer("7000000002", external_id="SKU-TALERZ", price="35.00", name="Talerz")
    catalogue(engine, {"SKU-KUBEK": 10, "SKU-TALERZ": 10})
    channel, validating = make_channel(NAME)
    service = OrderService(SimpleNamespace(get=lambda name: channel), rules(), timedelta(seconds=60))
    assert isinstance(channel, AllegroChannel)

    assert service.handle_poll(Ctx(engine, {"channel": NAME}))["started_at"] == ""  # empty journal
    paid = sim.place_order([("7000000001", 2), ("7000000002", 1)], invoice_nip="5260250274", duplicate=True)
    cod = sim.place_order([("7000000002", 1)], cod=True, pickup_point="POZ08A", out_of_order=True)
    unpaid = sim.place_order([("7000000001", 1)], paid=False)
    result = service.handle_poll(Ctx(engine, {"channel": NAME}))
    assert (result["events"], result["orders"], result["created"]) == (7, 3, 3)
    with transaction(engine) as s:
        orders = {o.external_id: o for o in s.execute(select(Order).where(Order.channel == NAME)).scalars()}
        # READY_FOR_PROCESSING is "paid" (order_status.toml), and the shipped automation moves paid and
        # cash-on-delivery orders on to processing (and queues that status for Allegro)
        assert {k: (o.status, o.problem) for k, o in orders.items()} == {
            paid: ("processing", None), cod: ("processing", None), unpaid: ("new", None)}
        assert orders[paid].invoice["nip"] == "5260250274" and orders[paid].total_gross == Decimal("74.98")
        assert orders[cod].payment["cash_on_delivery"] is True
        assert orders[cod].delivery["pickup_point"]["id"] == "POZ08A"
        lines = s.execute(select(OrderLineRow).where(OrderLineRow.order_id == orders[paid].id)
                          .order_by(OrderLineRow.line_no)).scalars().all()
        assert [(line.sku, line.quantity, line.line_id) for line in lines] == [
            ("SKU-KUBEK", 2, sim.checkout_form(paid)["lineItems"][0]["id"]),
            ("SKU-TALERZ", 1, sim.checkout_form(paid)["lineItems"][1]["id"])]
        order_id = orders[paid].id

    # the buyer pays the third order; the journal says so and the hub moves it
    sim.pay_order(unpaid)
    service.handle_poll(Ctx(engine, {"channel": NAME}))
    with transaction(engine) as s:
        assert s.execute(select(Order.status).where(Order.external_id == unpaid)).scalar_one() == "processing"

    # the queued push of "processing", after the buyer changed the order (a stale revision on the hub's side)
    with transaction(engine) as s:
        held = s.get(Order, order_id).revision
    sim.modify_order(paid)
    pushed = service.handle_push_status(Ctx(engine, {"order_id": order_id, "status": "processing"}))
    assert pushed == {"sent": "PROCESSING", "revision": None}
    assert sim.checkout_form(paid)["fulfillment"]["status"] == "PROCESSING"
    with transaction(engine) as s:  # the buyer's change is not masked: the intake still applies it
        assert s.get(Order, order_id).revision == held

    # reconciliation sees every order changed in the window
    assert service.handle_reconcile(Ctx(engine, {"channel": NAME, "hours": 1}))["seen"] == 3

    # a return: polled (beta resource), accepted by the operator, refunded once even when run twice
    return_id = sim.add_return(paid, [("7000000001", 1)])
    assert service.handle_returns_poll(Ctx(engine, {"channel": NAME}))["returns"] == 1
    with transaction(engine) as s:
        rma = s.execute(select(ReturnRow).where(ReturnRow.external_id == return_id)).scalar_one()
        assert (rma.status, rma.lines[0]["sku"], rma.lines[0]["line_id"]) == (
            "requested", "SKU-KUBEK", sim.checkout_form(paid)["lineItems"][0]["id"])
        rma = accept_return(s, rules(), rma.id)
        assert rma.refund_amount == Decimal("19.99")
        rma_id = rma.id
    for _ in range(2):  # the second run: a retry after a crash that lost the first run's bookkeeping
        done = service.handle_refund(Ctx(engine, {"return_id": rma_id}, key=f"refund:{NAME}/{return_id}"))
    (refund,) = sim.refunds(paid)
    assert done == {"refund": refund.id, "status": "SUCCESS"} and refund.total == Decimal("19.99")
    assert refund.line_items == [{"id": sim.checkout_form(paid)["lineItems"][0]["id"], "type": "QUANTITY",
                                  "quantity": 1}]
    assert {p for _, p, _ in validating.checked} >= {"/order/events", "/order/customer-returns", "/payments/refunds"}


def test_a_status_push_queued_before_the_buyer_cancelled_leaves_the_cancellation_to_the_hub(
        make_channel, sim: AllegroSimulator, engine: Engine) -> None:
    """The push of "processing" meets a form the buyer cancelled (409): no PUT over it, the hub reads the
    form and cancels the order, and the journal's cancellation is not masked by a stored revision."""
    sim.add_offer("7000000001", external_id="SKU-KUBEK", price="19.99", name="Kubek")
    catalogue(engine, {"SKU-KUBEK": 10})
    channel, _ = make_channel(NAME)
    service = OrderService(SimpleNamespace(get=lambda name: channel), rules(), timedelta(seconds=60))
    service.handle_poll(Ctx(engine, {"channel": NAME}))
    form_id = sim.place_order([("7000000001", 1)])
    service.handle_poll(Ctx(engine, {"channel": NAME}))
    with transaction(engine) as s:
        order = s.execute(select(Order).where(Order.external_id == form_id)).scalar_one()
        assert order.status == "processing"
        order_id = order.id
    sim.cancel_order(form_id)
    pushed = service.handle_push_status(Ctx(engine, {"order_id": order_id, "status": "processing"}))
    assert pushed["sent"] is False and "cancelled" in pushed["reason"]
    form = sim.checkout_form(form_id)
    assert (form["status"], form["fulfillment"]["status"]) == ("CANCELLED", "NEW")
    with transaction(engine) as s:
        order = s.get(Order, order_id)
        assert (order.status, order.revision) == ("cancelled", form["revision"])


def test_a_cash_on_delivery_return_waits_for_a_refund_by_hand(make_channel, sim: AllegroSimulator,
                                                               engine: Engine) -> None:
    """Allegro cannot refund what the courier collected: the refund job ends (not dead, not retried) with
    the return in refund_by_hand, and the seller records the transfer they made."""
    sim.add_offer("7000000001", external_id="SKU-KUBEK", price="19.99", name="Kubek")
    catalogue(engine, {"SKU-KUBEK": 10})
    channel, _ = make_channel(NAME)
    service = OrderService(SimpleNamespace(get=lambda name: channel), rules(), timedelta(seconds=60))
    service.handle_poll(Ctx(engine, {"channel": NAME}))
    cod = sim.place_order([("7000000001", 1)], cod=True)
    service.handle_poll(Ctx(engine, {"channel": NAME}))
    return_id = sim.add_return(cod, [("7000000001", 1)])
    service.handle_returns_poll(Ctx(engine, {"channel": NAME}))
    with transaction(engine) as s:
        rma_id = s.execute(select(ReturnRow.id).where(ReturnRow.external_id == return_id)).scalar_one()
        accept_return(s, rules(), rma_id)
    done = service.handle_refund(Ctx(engine, {"return_id": rma_id}, key=f"refund:{NAME}/{return_id}"))
    assert done["status"] == "refund_by_hand" and "cash on delivery" in done["reason"]
    assert sim.refunds(cod) == []
    with transaction(engine) as s:
        assert s.get(ReturnRow, rma_id).status == "refund_by_hand"
        rma = record_refund_by_hand(s, rma_id, " przelew 2026-12-01 ")
        assert (rma.status, rma.refund_ref) == ("refunded", "by hand: przelew 2026-12-01")
    with transaction(engine) as s, pytest.raises(HubError, match="is refunded; only a return waiting"):
        record_refund_by_hand(s, rma_id, "again")
