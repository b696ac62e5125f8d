"""Refunds and the order's payment gateway.

The reference (_order-refunds.md): ``api_refund`` "When true, the payment gateway API is used to
generate the refund. Default is `true`."; ``refunded_payment`` "If the payment was refunded via the API".
It names no error for a gateway that cannot refund; WooCommerce's refunds controller answers 500
``woocommerce_rest_cannot_create_order_refund`` with the gateway's message and keeps no refund. Bank
transfer, cheque and cash on delivery never refund through the API: the connector sends nothing for
them and raises RefundNotPossible (a PermanentError), and the seller pays back by hand.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from decimal import Decimal
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session
from woocommerce_testkit import BASE_URL, KEY, SECRET, Wired

from connectors.shops.woocommerce import order_mapping as om
from connectors.shops.woocommerce.simulator import WooSimulator
from hub.kernel.clock import utcnow
from hub.kernel.errors import PermanentError, RefundNotPossible
from hub.kernel.ports.channel import RefundRequest, ReturnLine
from hub.orders.models import ReturnRow
from hub.orders.returns import record_refund_by_hand
from hub.orders.rules import OrderRules
from hub.orders.service import OrderService
from hub.platform.db import transaction
from hub.platform.logs import get_logger
from hub.platform.mappings import load_all

Wire = Callable[..., Wired]


def http(sim: WooSimulator) -> httpx.Client:
    return httpx.Client(transport=sim.transport(), base_url=f"{BASE_URL}/wp-json/wc/v3", auth=(KEY, SECRET))


def request(order: int, amount: str = "24.60", lines: tuple[ReturnLine, ...] = ()) -> RefundRequest:
    return RefundRequest(order_external_id=str(order), payment_id=None, lines=list(lines), amount=Decimal(amount),
                         currency="PLN", reason="REFUND")


def refund_posts(sim: WooSimulator) -> int:
    return len(sim.requests("POST", "/refunds$"))


# --- the simulator answers as WooCommerce does --------------------------------------------------------


def test_the_shop_refuses_a_gateway_refund_it_cannot_make_and_records_a_manual_one(sim: WooSimulator) -> None:
    mug = sim.add_simple("KUB-01", 10, "24.60")
    cod, card = sim.add_order([(mug, 1)], payment_method="cod"), sim.add_order([(mug, 1)], payment_method="stripe")
    unknown = sim.add_order([(mug, 1)], payment_method="")  # an order the seller made in the admin, unpaid
    with http(sim) as client:
        for body in ({"amount": "5.00"}, {"amount": "5.00", "api_refund": True}):  # api_refund defaults to true
            refused = client.post(f"/orders/{cod}/refunds", json=body)
            assert (refused.status_code, refused.json()["code"], refused.json()["message"]) == (
                500, "woocommerce_rest_cannot_create_order_refund",
                "The payment gateway for this order does not support automatic refunds.")
        missing = client.post(f"/orders/{unknown}/refunds", json={"amount": "5.00"})
        assert (missing.status_code, missing.json()["message"]) == (
            500, "The payment gateway for this order does not exist.")
        assert sim.order_refunds(cod) == sim.order_refunds(unknown) == []  # Woo deletes the refund it had saved
        manual = client.post(f"/orders/{cod}/refunds", json={"amount": "5.00", "api_refund": False})
        assert manual.status_code == 201 and manual.json()["refunded_payment"] is False
        paid_back = client.post(f"/orders/{card}/refunds", json={"amount": "5.00"})
        assert paid_back.status_code == 201 and paid_back.json()["refunded_payment"] is True
    assert [len(sim.order_refunds(o)) for o in (cod, card, unknown)] == [1, 1, 0]


# --- the connector ----------------------------------------------------------------------------------


def test_a_card_payment_is_refunded_through_the_gateway_once(sim: WooSimulator, wire: Wire) -> None:
    mug = sim.add_simple("KUB-01", 10, "24.60")
    order = sim.add_order([(mug, 2)], payment_method="stripe", transaction_id="ch_3PQ")
    channel = wire(api_refund=True).channel
    refund = request(order, lines=(ReturnLine("KUB-01", str(mug), 1),))
    result = channel.refund(refund, idempotency_key="refund:sklep/R-1")
    (made,) = sim.order_refunds(order)
    assert (result.external_id, result.status) == (str(made["id"]), "REFUNDED")
    assert made["refunded_payment"] is True and made["amount"] == "24.60"
    assert sim.requests("POST", "/refunds$")[0].body["api_refund"] is True
    again = channel.refund(refund, idempotency_key="refund:sklep/R-1")  # the queue's retry after a lost ack
    assert again == result and len(sim.order_refunds(order)) == 1 and refund_posts(sim) == 1


@pytest.mark.parametrize("method", ["bacs", "cod", "cheque"])
@pytest.mark.parametrize("api_refund", [True, False])
def test_an_offline_payment_is_a_refund_by_hand_and_nothing_is_sent(sim: WooSimulator, wire: Wire, method: str,
                                                                   api_refund: bool) -> None:
    mug = sim.add_simple("KUB-01", 10, "24.60")
    order = sim.add_order([(mug, 2)], payment_method=method, status="on-hold" if method == "bacs" else "processing")
    title = sim.order(order)["payment_method_title"]
    channel = wire(api_refund=api_refund).channel
    for _attempt in range(2):  # the job, and a retry of it: the same answer, nothing made twice
        with pytest.raises(RefundNotPossible) as raised:
            channel.refund(request(order), idempotency_key="refund:sklep/R-2")
        assert isinstance(raised.value, PermanentError)
        message = str(raised.value)
        assert "\n" not in message
        assert f"WooCommerce order {order} was paid with {title} ({method}), which cannot refund through the API" \
            in message
        assert "return 24.60 PLN to the buyer by hand, then mark the return refunded" in message
        assert om.hub_mark("refund:sklep/R-2") in message
        assert sim.order_refunds(order) == [] and refund_posts(sim) == 0


def test_a_refund_the_seller_records_in_the_shop_with_the_mark_is_found_by_the_retry(sim: WooSimulator,
                                                                                     wire: Wire) -> None:
    mug = sim.add_simple("KUB-01", 10, "24.60")
    order = sim.add_order([(mug, 2)], payment_method="cod")
    channel = wire(api_refund=True).channel
    cursor = channel.returns(None)[1]
    with pytest.raises(RefundNotPossible):
        channel.refund(request(order), idempotency_key="refund:sklep/R-3")
    sim.advance()
    by_hand = sim.refund_by_hand(order, "24.60", f"Zwrot przelewem {om.hub_mark('refund:sklep/R-3')}")
    result = channel.refund(request(order), idempotency_key="refund:sklep/R-3")
    assert (result.external_id, result.status) == (str(by_hand), "RECORDED")
    assert len(sim.order_refunds(order)) == 1 and refund_posts(sim) == 0
    assert channel.returns(cursor)[0] == []  # the hub's own refund: not reported back as another return


def test_a_gateway_the_shop_says_cannot_refund_is_a_refund_by_hand(sim: WooSimulator, wire: Wire) -> None:
    mug = sim.add_simple("KUB-01", 10, "24.60")
    order = sim.add_order([(mug, 1)], payment_method="payu_blik")  # a plugin's gateway the shop no longer has
    channel = wire(api_refund=True).channel
    with pytest.raises(RefundNotPossible, match=r"paid with payu_blik, which cannot refund through the API \(the "
                                                r"shop answered: .*does not exist\.\): return 24\.60 PLN"):
        channel.refund(request(order), idempotency_key="refund:sklep/R-4")
    with pytest.raises(RefundNotPossible):
        channel.refund(request(order), idempotency_key="refund:sklep/R-4")
    assert sim.order_refunds(order) == [] and refund_posts(sim) == 2  # each sent once, no in-call retry


def test_a_refused_amount_is_not_a_refund_by_hand(sim: WooSimulator, wire: Wire) -> None:
    mug = sim.add_simple("KUB-01", 10, "24.60")
    order = sim.add_order([(mug, 1)], payment_method="cod")
    with pytest.raises(PermanentError, match=r"exceeds the 43\.05 PLN left to refund") as raised:
        wire(api_refund=True).channel.refund(request(order, amount="50.00"), idempotency_key="refund:sklep/R-5")
    assert not isinstance(raised.value, RefundNotPossible) and refund_posts(sim) == 0


# --- through the hub's refund job -----------------------------------------------------------------------


class Ctx:
    """The part of hub.jobs.handlers.JobContext that OrderService.handle_refund uses."""

    def __init__(self, engine: Engine, payload: dict[str, Any], key: str):
        self.engine, self.payload = engine, payload
        self.job = SimpleNamespace(idempotency_key=key, payload=payload, connector="sklep", attempts=0)
        self.log = get_logger("test")

    @contextmanager
    def session(self) -> Iterator[Session]:
        with transaction(self.engine) as session:
            yield session


def accepted_return(engine: Engine, order: int, sku: str, offer: str) -> int:
    now = utcnow()
    with transaction(engine) as session:
        rma = ReturnRow(channel="sklep", external_id=f"R-{order}", order_id=None, order_external_id=str(order),
                        status="accepted", lines=[{"sku": sku, "offer_id": offer, "quantity": 1, "line_id": None,
                                                   "amount_gross": None}],
                        refund_amount=Decimal("24.60"), created_at=now, updated_at=now)
        session.add(rma)
        session.flush()
        return rma.id


def test_the_refund_job_waits_for_a_refund_by_hand_and_refunds_a_card_once(engine: Engine, sim: WooSimulator,
                                                                           wire: Wire) -> None:
    mug = sim.add_simple("KUB-01", 10, "24.60")
    card, cod = sim.add_order([(mug, 1)], payment_method="stripe"), sim.add_order([(mug, 1)], payment_method="cod")
    channel = wire(api_refund=True).channel
    files = load_all(None)
    rules = OrderRules(automation=files["automation.toml"].data, status_maps=files["order_status.toml"].data,
                       kinds={"sklep": "woocommerce"}, offer_skus=lambda *_: {})
    service = OrderService(SimpleNamespace(get=lambda name: channel), rules, timedelta(seconds=60))
    jobs = {oid: (accepted_return(engine, oid, "KUB-01", str(mug)), f"refund:sklep/R-{oid}") for oid in (card, cod)}

    for _run in range(2):  # the job, and the queue running it again
        rma_id, key = jobs[card]
        done = service.handle_refund(Ctx(engine, {"return_id": rma_id}, key))
        (made,) = sim.order_refunds(card)
        assert done == {"refund": str(made["id"]), "status": "REFUNDED"}

    rma_id, key = jobs[cod]
    done = service.handle_refund(Ctx(engine, {"return_id": rma_id}, key))
    assert (done["refund"], done["status"]) == (None, "refund_by_hand") and "(cod)" in done["reason"]
    assert sim.order_refunds(cod) == [] and refund_posts(sim) == 1  # the card's only
    with transaction(engine) as session:
        assert session.get(ReturnRow, rma_id).status == "refund_by_hand"
        rma = record_refund_by_hand(session, rma_id, "przelew 2024-06-12")
        assert (rma.status, rma.refund_ref) == ("refunded", "by hand: przelew 2024-06-12")
    with transaction(engine) as session:
        assert session.get(ReturnRow, jobs[card][0]).status == "refunded"
