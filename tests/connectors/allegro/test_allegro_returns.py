"""Customer returns (beta resources), their rejection, and refunds exactly once under lost answers.

Every exchange goes through ValidatingTransport (conftest), checked against the vendor's swagger.yaml,
including the beta media type the /order/customer-returns* resources demand.
"""

from __future__ import annotations

import json
import uuid
from decimal import Decimal

import httpx
import pytest

from connectors.allegro.order_mapping import (
    FormLine,
    channel_return,
    refund_command_id,
    refund_line_items,
)
from connectors.allegro.simulator import AllegroSimulator, Faults, LossyTransport
from hub.kernel.errors import PermanentError, RefundNotPossible, RetryableError
from hub.kernel.ports.channel import RefundRequest, ReturnLine, ReturnsChannel

PUBLIC = "application/vnd.allegro.public.v1+json"
BETA = "application/vnd.allegro.beta.v1+json"


def shop(sim: AllegroSimulator) -> None:
    sim.add_offer("7000000001", external_id="SKU-KUBEK", price="19.99", name="Kubek")
    sim.add_offer("7000000002", external_id="SKU-TALERZ", price="35.00", name="Talerz")
    sim.add_offer("7000000003", external_id=None, price="5.00", name="Serwetki")


def request_for(order: dict, lines: list[ReturnLine], amount: str | None = None) -> RefundRequest:
    return RefundRequest(order_external_id=order["id"], payment_id=order["payment"]["id"], lines=lines,
                         amount=Decimal(amount) if amount else Decimal("0"), currency="PLN", reason="REFUND")


def test_channel_is_a_returns_channel(make_channel) -> None:
    channel, _ = make_channel()
    assert isinstance(channel, ReturnsChannel)


def test_returns_mapping_cursor_and_status_changes(make_channel, sim: AllegroSimulator) -> None:
    shop(sim)
    channel, validating = make_channel()
    order_id = sim.place_order([("7000000001", 2), ("7000000002", 1), ("7000000003", 4)])
    form = sim.checkout_form(order_id)
    assert channel.returns(None) == ([], None)  # nothing yet: the next poll starts over
    first = sim.add_return(order_id, [("7000000001", 1), ("7000000003", 4)], reason="DAMAGED",
                           comment="Pęknięty uchwyt")
    returns, cursor = channel.returns(None)
    assert cursor == first
    (got,) = returns
    assert (got.external_id, got.order_external_id, got.status, got.refunded) == (first, order_id, "CREATED", False)
    assert got.reason == "DAMAGED: Pęknięty uchwyt"
    assert got.lines == [  # the items name the offer only: the order's line items give the rest
        ReturnLine(sku="SKU-KUBEK", offer_id="7000000001", quantity=1, line_id=form["lineItems"][0]["id"]),
        ReturnLine(sku=None, offer_id="7000000003", quantity=4, line_id=form["lineItems"][2]["id"]),
    ]
    assert got.created_at.tzinfo is not None

    sim.set_return_status(first, "DISPATCHED")
    second = sim.add_return(order_id, [("7000000002", 1)], reason="DONT_LIKE_IT")
    sim.reset_requests()
    returns, cursor = channel.returns(cursor)
    assert cursor == second
    assert [(r.external_id, r.status) for r in returns] == [(first, "DISPATCHED"), (second, "CREATED")]
    assert returns[0].updated_at > returns[0].created_at  # the parcel's time
    reads = [r for r in sim.requests if r.path == "/order/customer-returns"]
    assert f"from={first}" in reads[0].query and "limit=1000" in reads[0].query
    assert "createdAt.gte=" in reads[1].query  # the window re-read that sees status changes
    # the order's lines were read once: remembered for the next return of the same order
    assert sim.request_count(lambda r: r.path.startswith("/order/checkout-forms/")) == 0
    assert ("GET", "/order/customer-returns", 200) in validating.checked

    sim.set_return_status(second, "FINISHED")  # the money went back (e.g. the seller refunded by hand)
    returns, cursor = channel.returns(cursor)
    assert cursor == second and [(r.external_id, r.refunded) for r in returns] == [(first, False), (second, True)]


def test_return_of_an_unknown_order_keeps_its_own_prices(allegro_spec) -> None:
    raw = {"id": "a3405c27-b01c-4357-9bea-e13925708b46", "createdAt": "2020-01-11T09:36:57.00Z",
           "orderId": "b3405c27-b01c-4357-9bea-e13925708b46", "status": "DELIVERED",
           "items": [{"offerId": "7678887152", "quantity": 2, "name": "Kubek",
                      "price": {"amount": "19.99", "currency": "PLN"}, "reason": {"type": "MISTAKE"}}],
           "parcels": [{"createdAt": "2020-01-12T09:36:57.663+01:00", "waybill": "AD00R28X72"}]}
    assert not allegro_spec.strict({"$ref": "#/components/schemas/CustomerReturn"}, raw)
    got = channel_return("allegro-main", raw, None)
    assert got.lines == [ReturnLine(sku=None, offer_id="7678887152", quantity=2, amount_gross=Decimal("39.98"))]
    assert got.updated_at.isoformat() == "2020-01-12T08:36:57.663000+00:00"
    known = [FormLine("62ae358b-8f65-4fc4-9c77-bedf604a2e2b", "7678887152", "SKU-1", 3, Decimal("19.99"), "PLN")]
    assert channel_return("allegro-main", raw, known).lines == [
        ReturnLine(sku="SKU-1", offer_id="7678887152", quantity=2, line_id="62ae358b-8f65-4fc4-9c77-bedf604a2e2b")]


def test_reject_return_body_and_repeat(make_channel, sim: AllegroSimulator) -> None:
    shop(sim)
    channel, validating = make_channel()
    order_id = sim.place_order([("7000000001", 1)])
    return_id = sim.add_return(order_id)
    sim.reset_requests()
    channel.reject_return(return_id, "  Zwrócony towar nosi ślady użytkowania.  ")
    (post,) = sim.requests
    assert (post.method, post.path, post.status) == ("POST", f"/order/customer-returns/{return_id}/rejection", 200)
    assert json.loads(post.body) == {"rejection": {"code": "REFUND_REJECTED",
                                                   "reason": "Zwrócony towar nosi ślady użytkowania."}}
    rejected = sim.customer_return(return_id)
    assert rejected["status"] == "REJECTED" and rejected["rejection"]["code"] == "REFUND_REJECTED"
    channel.reject_return(return_id, "again")  # a retry after a lost answer: 422 "already", and it shows
    assert [r.status for r in sim.requests[1:]] == [422, 200]
    with pytest.raises(PermanentError, match="reason"):
        channel.reject_return(return_id, "   ")
    finished = sim.add_return(order_id)
    sim.set_return_status(finished, "FINISHED")
    with pytest.raises(PermanentError, match="refunded"):
        channel.reject_return(finished, "too late")
    assert ("POST", f"/order/customer-returns/{return_id}/rejection", 422) in validating.checked


def test_refund_line_items() -> None:
    lines = [FormLine("l1", "o1", "SKU-1", 2, Decimal("19.99"), "PLN"),
             FormLine("l2", "o2", None, 1, Decimal("35.00"), "PLN")]
    request = RefundRequest("order", "pay", [ReturnLine("SKU-1", None, 2), ReturnLine(None, "o2", 1)],
                            Decimal("74.98"), "PLN", "REFUND")
    assert refund_line_items(request, lines) == [{"id": "l1", "type": "QUANTITY", "quantity": 2},
                                                 {"id": "l2", "type": "QUANTITY", "quantity": 1}]
    partial = RefundRequest("order", "pay", request.lines, Decimal("50.00"), "PLN", "REFUND")
    assert refund_line_items(partial, lines) == [  # less than the lines are worth: by amount, in line order
        {"id": "l1", "type": "AMOUNT", "value": {"amount": "39.98", "currency": "PLN"}},
        {"id": "l2", "type": "AMOUNT", "value": {"amount": "10.02", "currency": "PLN"}}]
    by_amount = RefundRequest("order", "pay", [ReturnLine(None, None, 0, "l2", Decimal("5.00"))], Decimal("5.00"),
                              "PLN", "REFUND")
    assert refund_line_items(by_amount, lines) == [
        {"id": "l2", "type": "AMOUNT", "value": {"amount": "5.00", "currency": "PLN"}}]
    for bad, message in (
        (RefundRequest("order", "pay", request.lines, Decimal("80.00"), "PLN", "REFUND"), "more than"),
        (RefundRequest("order", "pay", [ReturnLine("SKU-9", "o9", 1)], Decimal("0"), "PLN", "REFUND"), "not in"),
        (RefundRequest("order", "pay", [ReturnLine("SKU-1", None, 3)], Decimal("0"), "PLN", "REFUND"), "bought"),
        (RefundRequest("order", "pay", request.lines, Decimal("74.98"), "EUR", "REFUND"), "EUR"),
        (RefundRequest("order", "pay", [], Decimal("1.00"), "PLN", "REFUND"), "at least one"),
    ):
        with pytest.raises(ValueError, match=message):
            refund_line_items(bad, lines)
    assert refund_command_id("refund:allegro-main/r1") == str(
        uuid.uuid5(uuid.UUID("8c0f2a5e-61d4-4b7a-9e3c-2f5d7a1b9c40"), "refund:refund:allegro-main/r1"))


def test_refund_body_and_result(make_channel, sim: AllegroSimulator) -> None:
    shop(sim)
    channel, validating = make_channel()
    order_id = sim.place_order([("7000000001", 2), ("7000000002", 1)])
    form = sim.checkout_form(order_id)
    result = channel.refund(request_for(form, [ReturnLine("SKU-KUBEK", "7000000001", 2)], "39.98"),
                            idempotency_key="refund:allegro-main/r1")
    (refund,) = sim.refunds(order_id)
    command_id = refund_command_id("refund:allegro-main/r1")
    assert (result.external_id, result.status) == (refund.id, "SUCCESS")
    assert refund.command_id == command_id and refund.total == Decimal("39.98")
    (post,) = [r for r in sim.requests if r.method == "POST"]
    assert json.loads(post.body) == {
        "payment": {"id": form["payment"]["id"]}, "order": {"id": order_id}, "commandId": command_id,
        "reason": "REFUND", "lineItems": [{"id": form["lineItems"][0]["id"], "type": "QUANTITY", "quantity": 2}],
        "sellerComment": f"ref. {command_id}"}
    assert [m for m, p, _ in validating.checked if p == "/payments/refunds"] == ["GET", "POST"]  # looked up first
    # the same job again (a crash after the POST): found, not sent
    again = channel.refund(request_for(form, [ReturnLine("SKU-KUBEK", "7000000001", 2)], "39.98"),
                           idempotency_key="refund:allegro-main/r1")
    assert again == result and sim.refund_posts[command_id] == 1 and len(sim.refunds(order_id)) == 1
    # another return of the same order is another refund
    other = channel.refund(request_for(form, [ReturnLine(None, "7000000002", 1)]),
                           idempotency_key="refund:allegro-main/r2")
    assert other.external_id != result.external_id and len(sim.refunds(order_id)) == 2


def test_refund_refusals_are_permanent(make_channel, sim: AllegroSimulator) -> None:
    shop(sim)
    channel, _ = make_channel()
    cod = sim.checkout_form(sim.place_order([("7000000001", 1)], cod=True))
    with pytest.raises(RefundNotPossible, match="cash on delivery"):  # asked before anything is sent
        channel.refund(request_for(cod, [ReturnLine("SKU-KUBEK", "7000000001", 1)]), idempotency_key="k1")
    assert refund_command_id("k1") not in sim.refund_posts
    unpaid = sim.checkout_form(sim.place_order([("7000000001", 1)], paid=False))
    with pytest.raises(RefundNotPossible, match="cannot be refunded"):  # the vendor's 422 PAYMENT_NOT_REFUNDABLE
        channel.refund(request_for(unpaid, [ReturnLine("SKU-KUBEK", "7000000001", 1)]), idempotency_key="k0")
    paid = sim.checkout_form(sim.place_order([("7000000001", 1)]))
    with pytest.raises(PermanentError, match="not in order"):
        channel.refund(request_for(paid, [ReturnLine("SKU-X", "7999999999", 1)]), idempotency_key="k2")
    assert refund_command_id("k2") not in sim.refund_posts  # nothing sent for a line that is not in the order
    channel.refund(request_for(paid, [ReturnLine("SKU-KUBEK", "7000000001", 1)]), idempotency_key="k3")
    with pytest.raises(PermanentError, match="more than"):  # the vendor refuses a second full refund
        channel.refund(request_for(paid, [ReturnLine("SKU-KUBEK", "7000000001", 1)]), idempotency_key="k4")


class LoseRefundAnswers(httpx.BaseTransport):
    """Every POST /payments/refunds reaches the vendor and is applied; its first ``lose`` answers never come back."""

    def __init__(self, inner: httpx.BaseTransport, lose: int):
        self.inner, self.lose, self.lost = inner, lose, 0

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = self.inner.handle_request(request)
        if request.method == "POST" and request.url.path == "/payments/refunds" and self.lost < self.lose:
            self.lost += 1
            raise httpx.ReadTimeout("answer lost", request=request)
        return response


def test_lost_refund_answer_is_found_not_resent(make_channel, sim: AllegroSimulator) -> None:
    shop(sim)
    channel, _ = make_channel(wrap=lambda inner: LoseRefundAnswers(inner, lose=5))
    form = sim.checkout_form(sim.place_order([("7000000002", 1)]))
    result = channel.refund(request_for(form, [ReturnLine(None, "7000000002", 1)]), idempotency_key="refund:lost")
    command_id = refund_command_id("refund:lost")
    (refund,) = sim.refunds(form["id"])
    assert result.external_id == refund.id and sim.refund_posts[command_id] == 1  # one POST: then the look-up
    assert [(r.method, r.status) for r in sim.requests if r.path == "/payments/refunds"] == [
        ("GET", 200), ("POST", 200), ("GET", 200)]


def test_resent_command_answers_the_same_refund(sim: AllegroSimulator, validated) -> None:
    """The vendor's own idempotency (commandId): a resend makes no second refund; a reused id with
    another body is refused."""
    shop(sim)
    form = sim.checkout_form(sim.place_order([("7000000001", 2)]))
    token = sim.issue_tokens()["access_token"]
    api = httpx.Client(transport=validated(sim.transport()), base_url="http://sim",
                       headers={"Accept": PUBLIC, "Authorization": f"Bearer {token}"})
    post = {"Content-Type": PUBLIC}
    body = {"payment": {"id": form["payment"]["id"]}, "order": {"id": form["id"]},
            "commandId": str(uuid.uuid4()), "reason": "REFUND",
            "lineItems": [{"id": form["lineItems"][0]["id"], "type": "QUANTITY", "quantity": 1}]}
    first = api.post("/payments/refunds", json=body, headers=post)
    second = api.post("/payments/refunds", json=body, headers=post)
    assert first.status_code == second.status_code == 200 and first.json() == second.json()
    assert len(sim.refunds(form["id"])) == 1
    body["lineItems"][0]["quantity"] = 2
    assert api.post("/payments/refunds", json=body, headers=post).status_code == 422
    listed = api.get("/payments/refunds", params={"order.id": form["id"]}).json()
    assert listed["count"] == 1 and listed["refunds"][0]["id"] == first.json()["id"]
    mixed = {**body, "commandId": str(uuid.uuid4()), "lineItems": [
        {"id": form["lineItems"][0]["id"], "type": "AMOUNT", "value": {"amount": "1.00", "currency": "PLN"}}]}
    # QUANTITY, then AMOUNT on the same line (#5896)
    assert api.post("/payments/refunds", json=mixed, headers=post).status_code == 422


def test_returns_demand_the_beta_media_type(sim: AllegroSimulator) -> None:
    token = sim.issue_tokens()["access_token"]
    raw = httpx.Client(transport=sim.transport(), base_url="http://sim",
                       headers={"Authorization": f"Bearer {token}"})
    assert raw.get("/order/customer-returns", headers={"Accept": PUBLIC}).status_code == 406  # #4780
    answer = raw.get("/order/customer-returns", headers={"Accept": BETA})
    assert answer.status_code == 200 and answer.headers["content-type"] == BETA
    assert raw.get("/order/events", headers={"Accept": BETA}).status_code == 406


def test_refunds_exactly_once_under_faults(make_channel, sim: AllegroSimulator) -> None:
    """Lost answers, timeouts, 5xx and 429 blocks on every resource: each job is retried with its key
    (as the queue does) until it succeeds, and every order ends with exactly one refund."""
    shop(sim)
    orders = [sim.checkout_form(sim.place_order([("7000000001", 1), ("7000000002", 1)])) for _ in range(12)]
    sim.block_scale = 0.001
    sim.faults = Faults(error_5xx_rate=0.15, burst_429_rate=0.03)
    lossy: list[LossyTransport] = []

    def wrap(inner: httpx.BaseTransport) -> httpx.BaseTransport:
        lossy.append(LossyTransport(inner, lost_response_rate=0.25, timeout_rate=0.1, seed=11))
        return lossy[0]

    channel, _ = make_channel(wrap=wrap, rate_limit_block=0.08, http_attempts=3)
    for n, form in enumerate(orders):
        request = request_for(form, [ReturnLine("SKU-KUBEK", "7000000001", 1), ReturnLine(None, "7000000002", 1)])
        retries = 0
        while True:
            try:
                result = channel.refund(request, idempotency_key=f"refund:faults/{n}")
                break
            except RetryableError:
                retries += 1
                assert retries < 50
        (refund,) = sim.refunds(form["id"])
        assert result.external_id == refund.id and refund.total == Decimal("54.99")
    assert lossy[0].lost > 0 and sim.block_violations == 0
    assert sum(sim.refund_posts.values()) >= len(orders)

