"""Tracking numbers on Allegro orders (TrackingChannel): the carrier mapping, the exact bodies sent, and
exactly one shipment per waybill under retries, lost answers and Allegro's own shipping attaching parcels.

Every exchange with the simulator goes through ValidatingTransport (conftest): each request the connector
sends and each answer the simulator gives is checked against the vendor's swagger.yaml.
"""

from __future__ import annotations

import json

import httpx
import pytest

from connectors.allegro import SPEC
from connectors.allegro.order_mapping import (
    OPERATOR_CARRIERS,
    carrier_for,
    notice_waybills,
    shipment_body,
    shown_waybills,
    waybill_key,
)
from connectors.allegro.simulator import AllegroSimulator, Faults, LossyTransport
from connectors.allegro.simulator_orders import CARRIERS
from hub.kernel.errors import PermanentError, RetryableError
from hub.kernel.ports.capability import Capability
from hub.kernel.ports.channel import TrackingChannel, TrackingNotice

PUBLIC = "application/vnd.allegro.public.v1+json"
SIM_CARRIERS = [{"id": i} if n is None else {"id": i, "name": n} for i, n in CARRIERS]
# the spec's own example answer of GET /order/carriers
SPEC_EXAMPLE = [{"id": "POCZTA_POLSKA", "name": "Poczta Polska"}, {"id": "DHL", "name": "DHL"},
                {"id": "YUN_EXPRESS", "name": "Yun Express"}, {"id": "OTHER"}]
SHIPMENTS = "/order/checkout-forms/{}/shipments"


def order(sim: AllegroSimulator, lines: int = 2) -> str:
    for n in range(1, 4):
        sim.add_offer(f"700000000{n}", external_id=f"SKU-{n}", price="19.99", name=f"Offer {n}", quantity=100)
    return sim.place_order([(f"700000000{n}", 1) for n in range(1, lines + 1)])


def notice(order_id: str, *numbers: str, operator: str = "inpost", booked_by_channel: bool = False) -> TrackingNotice:
    return TrackingNotice(order_external_id=order_id, operator=operator, tracking_numbers=numbers,
                          booked_by_channel=booked_by_channel)


def calls(sim: AllegroSimulator, order_id: str | None = None) -> list[tuple[str, str]]:
    """The REST calls the simulator saw (method, path), the order's id shown as {id}."""
    return [(r.method, r.path.replace(order_id, "{id}") if order_id else r.path) for r in sim.requests
            if not r.path.startswith("/auth/")]


# --- mapping ---------------------------------------------------------------------------------------


def test_spec_declares_tracking_push() -> None:
    assert Capability.TRACKING_PUSH in SPEC.capabilities


def test_every_hub_operator_maps_to_a_carrier_of_the_list() -> None:
    """The simulator's list holds the ids the spec names; GLS and FedEx are not among them (OTHER, named)."""
    got = {op: carrier_for(op, SIM_CARRIERS) for op in ("inpost", "dpd", "poczta-polska", "dhl", "ups", "gls",
                                                         "fedex", "orlen", "allegro-one", "other")}
    assert got == {
        "inpost": ("INPOST", None), "dpd": ("DPD", None), "poczta-polska": ("POCZTA_POLSKA", None),
        "dhl": ("DHL", None), "ups": ("UPS", None), "gls": ("OTHER", "GLS"), "fedex": ("OTHER", "FedEx"),
        "orlen": ("ORLEN", None), "allegro-one": ("ALLEGRO", None), "other": ("OTHER", "other"),
    }
    assert set(OPERATOR_CARRIERS) == set(got) - {"other"}


def test_carrier_for_the_spec_example_list_by_name_and_unknown() -> None:
    assert carrier_for("poczta-polska", SPEC_EXAMPLE) == ("POCZTA_POLSKA", None)
    assert carrier_for("inpost", SPEC_EXAMPLE) == ("OTHER", "InPost")  # not in that list: named, as OTHER
    # a carrier Allegro adds later under an id the hub does not know, found by its name
    assert carrier_for("gls", [*SPEC_EXAMPLE, {"id": "GLS_PL", "name": "GLS"}]) == ("GLS_PL", None)
    assert carrier_for("fedex", [*SPEC_EXAMPLE, {"id": "FEDEX", "name": "FedEx Poland"}]) == ("FEDEX", None)
    assert carrier_for("raben-logistics-polska-sp-z-oo-oddzial", SPEC_EXAMPLE) == (
        "OTHER", "raben-logistics-polska-sp-z-oo")  # carrierName: at most 30 characters


def test_golden_shipment_bodies(allegro_spec) -> None:
    schema = {"$ref": "#/components/schemas/CheckoutFormAddWaybillRequest"}
    known = shipment_body("INPOST", None, "620000000000000000000123", ["line-1", "line-2"])
    assert json.dumps(known, separators=(",", ":")) == (
        '{"carrierId":"INPOST","waybill":"620000000000000000000123","lineItems":[{"id":"line-1"},{"id":"line-2"}]}')
    other = shipment_body("OTHER", "GLS", "GL123456789", ["line-1"])
    assert json.dumps(other, separators=(",", ":")) == (
        '{"carrierId":"OTHER","waybill":"GL123456789","carrierName":"GLS","lineItems":[{"id":"line-1"}]}')
    assert shipment_body("DHL", "ignored", "1", ["x"]) == {"carrierId": "DHL", "waybill": "1",
                                                          "lineItems": [{"id": "x"}]}
    assert not allegro_spec.strict(schema, known) and not allegro_spec.strict(schema, other)


def test_waybills_of_a_notice_and_of_an_answer() -> None:
    assert notice_waybills([" AD000R28X72 ", "ad000r28x72", "123"]) == ["AD000R28X72", "123"]
    with pytest.raises(ValueError, match="empty"):
        notice_waybills(["123", " "])
    with pytest.raises(ValueError, match="64"):
        notice_waybills(["9" * 65])
    with pytest.raises(ValueError, match="no tracking number"):
        notice_waybills([])
    answer = {"shipments": [{"id": "x", "waybill": "AD 000 R28X72", "carrierId": "ALLEGRO"}, {"id": "y"}]}
    assert shown_waybills(answer) == {waybill_key("ad000r28x72")}


# --- the channel against the simulator -------------------------------------------------------------------


def test_channel_is_a_tracking_channel(make_channel) -> None:
    channel, _ = make_channel()
    assert isinstance(channel, TrackingChannel)


def test_golden_request_and_the_calls_made(make_channel, sim: AllegroSimulator) -> None:
    order_id = order(sim)
    form = sim.checkout_form(order_id)
    channel, validating = make_channel()
    sim.reset_requests()
    channel.add_tracking(notice(order_id, "620000000000000000000123"), idempotency_key="track:1")
    assert calls(sim, order_id) == [("GET", "/order/checkout-forms/{id}/shipments"),
                                    ("GET", "/order/checkout-forms/{id}"), ("GET", "/order/carriers"),
                                    ("POST", "/order/checkout-forms/{id}/shipments")]
    (post,) = [r for r in sim.requests if r.method == "POST"]
    lines = [line["id"] for line in form["lineItems"]]
    assert json.loads(post.body) == {"carrierId": "INPOST", "waybill": "620000000000000000000123",
                                     "lineItems": [{"id": lines[0]}, {"id": lines[1]}]}
    (shipment,) = sim.shipments(order_id)
    assert (shipment["carrierId"], shipment["waybill"]) == ("INPOST", "620000000000000000000123")
    assert sim.checkout_form(order_id)["fulfillment"]["shipmentSummary"]["lineItemsSent"] == "ALL"
    assert ("POST", SHIPMENTS.format(order_id), 201) in validating.checked


def test_add_again_makes_no_second_shipment(make_channel, sim: AllegroSimulator) -> None:
    order_id = order(sim)
    channel, _ = make_channel()
    tracking = notice(order_id, "GL123456789", operator="gls")
    channel.add_tracking(tracking, idempotency_key="track:gls")
    sim.reset_requests()
    channel.add_tracking(tracking, idempotency_key="track:gls")  # the queue's retry, or a second job
    assert calls(sim, order_id) == [("GET", "/order/checkout-forms/{id}/shipments")]
    (shipment,) = sim.shipments(order_id)
    assert (shipment["carrierId"], shipment["carrierName"], shipment["waybill"]) == ("OTHER", "GLS", "GL123456789")
    assert sim.shipment_posts[order_id] == 1


def test_only_the_waybills_not_shown_are_posted(make_channel, sim: AllegroSimulator) -> None:
    order_id = order(sim)
    sim.attach_waybill(order_id, "dpd 0000 1111", carrier_id="DPD")  # keyed by the seller in Moje Allegro
    channel, _ = make_channel()
    channel.add_tracking(notice(order_id, "DPD00001111", "DPD00002222", "DPD00002222", operator="dpd"),
                         idempotency_key="track:2")
    assert [(s["carrierId"], s["waybill"]) for s in sim.shipments(order_id)] == [
        ("DPD", "dpd 0000 1111"), ("DPD", "DPD00002222")]
    assert sim.shipment_posts[order_id] == 1


def test_a_parcel_of_allegros_own_shipping_is_never_posted(make_channel, sim: AllegroSimulator) -> None:
    order_id = order(sim)
    channel, _ = make_channel()
    # not attached yet: only checked; posting it would make a duplicate when Allegro attaches it
    channel.add_tracking(notice(order_id, "A000DKM79X", operator="allegro-one", booked_by_channel=True),
                         idempotency_key="track:one")
    assert sim.shipments(order_id) == [] and sim.shipment_posts[order_id] == 0
    sim.attach_waybill(order_id, "A000DKM79X")  # Allegro attaches it by itself
    channel.add_tracking(notice(order_id, "A000DKM79X", operator="allegro-one", booked_by_channel=True),
                         idempotency_key="track:one")
    # the same waybill sent as a parcel the hub booked with InPost directly: it is there, nothing is posted
    channel.add_tracking(notice(order_id, "A000DKM79X", operator="inpost"), idempotency_key="track:one-again")
    assert [(s["carrierId"], s["waybill"]) for s in sim.shipments(order_id)] == [("ALLEGRO", "A000DKM79X")]
    assert sim.shipment_posts[order_id] == 0


def test_the_carrier_list_is_cached(make_channel, sim: AllegroSimulator) -> None:
    first, second, third = order(sim), order(sim), order(sim)
    channel, _ = make_channel()
    now = [1000.0]
    channel._clock = lambda: now[0]
    channel.add_tracking(notice(first, "1"), idempotency_key="a")
    now[0] += 3000
    channel.add_tracking(notice(second, "2"), idempotency_key="b")
    assert sum(1 for r in sim.requests if r.path == "/order/carriers") == 1
    now[0] += 700  # over an hour since the list was read
    sim.carriers_cache_control = "public, max-age=60"
    sim.carriers.insert(0, {"id": "GLS", "name": "GLS"})
    channel.add_tracking(notice(third, "3", operator="gls"), idempotency_key="c")
    assert sum(1 for r in sim.requests if r.path == "/order/carriers") == 2
    assert [s["carrierId"] for s in sim.shipments(third)] == ["GLS"]  # the fresh list has it
    now[0] += 61  # the answer allowed 60 seconds
    channel.add_tracking(notice(first, "4"), idempotency_key="d")
    assert sum(1 for r in sim.requests if r.path == "/order/carriers") == 3


def test_refusals_are_permanent(make_channel, sim: AllegroSimulator) -> None:
    order_id, other_id = order(sim), order(sim)
    channel, _ = make_channel()
    with pytest.raises(PermanentError, match="no order"):
        channel.add_tracking(notice("29738e61-7f6a-11e8-ac45-09db60ede9d6", "1"), idempotency_key="x")
    with pytest.raises(PermanentError, match="64"):
        channel.add_tracking(notice(order_id, "9" * 65), idempotency_key="x")
    assert sim.shipment_posts[order_id] == 0  # refused before anything was sent
    sim.waybill_orders_limit = 1
    channel.add_tracking(notice(order_id, "SHARED1"), idempotency_key="y")
    with pytest.raises(PermanentError, match="used too many times"):
        channel.add_tracking(notice(other_id, "SHARED1"), idempotency_key="z")
    assert sim.shipments(other_id) == []


class FailPosts(httpx.BaseTransport):
    """POSTs of shipments: the first ``fail`` are answered 503 without reaching the vendor (a gateway error),
    or (``lose``) reach it, are applied, and their answer is lost."""

    def __init__(self, inner: httpx.BaseTransport, *, fail: int = 0, lose: int = 0):
        self.inner, self.fail, self.lose, self.posts = inner, fail, lose, 0

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if request.method == "POST" and request.url.path.endswith("/shipments"):
            self.posts += 1
            if self.fail > 0:
                self.fail -= 1
                return httpx.Response(503, headers={"content-type": PUBLIC, "trace-id": "t"},
                                      json={"errors": [{"code": "ServiceUnavailableException", "message": "down"}]})
            if self.lose > 0:
                self.lose -= 1
                self.inner.handle_request(request).read()
                raise httpx.ReadTimeout("answer lost", request=request)
        return self.inner.handle_request(request)


def with_failing_posts(make_channel, *, fail: int = 0, lose: int = 0) -> tuple[TrackingChannel, FailPosts]:
    made: list[FailPosts] = []

    def wrap(inner: httpx.BaseTransport) -> httpx.BaseTransport:
        made.append(FailPosts(inner, fail=fail, lose=lose))
        return made[0]

    channel, _ = make_channel(wrap=wrap, http_attempts=3)
    return channel, made[0]


def test_a_5xx_on_the_post_is_retryable_and_sent_once(make_channel, sim: AllegroSimulator) -> None:
    order_id = order(sim)
    channel, failing = with_failing_posts(make_channel, fail=1)
    with pytest.raises(RetryableError):
        channel.add_tracking(notice(order_id, "00340434161234567890"), idempotency_key="k")
    assert failing.posts == 1  # one attempt: the HTTP layer never repeats the POST blindly
    assert sim.shipments(order_id) == []
    channel.add_tracking(notice(order_id, "00340434161234567890"), idempotency_key="k")  # the queue's retry
    assert len(sim.shipments(order_id)) == 1 and failing.posts == 2


def test_a_lost_answer_is_found_by_the_retry_not_posted_twice(make_channel, sim: AllegroSimulator) -> None:
    order_id = order(sim)
    channel, failing = with_failing_posts(make_channel, lose=1)
    tracking = notice(order_id, "RR123456785PL", "RR123456799PL", operator="poczta-polska")
    with pytest.raises(RetryableError):
        channel.add_tracking(tracking, idempotency_key="k")
    assert [s["waybill"] for s in sim.shipments(order_id)] == ["RR123456785PL"]  # applied, answer lost
    sim.reset_requests()
    channel.add_tracking(tracking, idempotency_key="k")
    assert [(s["carrierId"], s["waybill"]) for s in sim.shipments(order_id)] == [
        ("POCZTA_POLSKA", "RR123456785PL"), ("POCZTA_POLSKA", "RR123456799PL")]
    assert [json.loads(r.body)["waybill"] for r in sim.requests if r.method == "POST"] == ["RR123456799PL"]
    assert sim.shipment_posts[order_id] == 2 and failing.posts == 2


def test_exactly_one_shipment_per_waybill_under_faults(make_channel, sim: AllegroSimulator) -> None:
    """Lost answers, timeouts, 5xx and 429 blocks on every resource; each job is called again with its key
    (as the queue does) until it returns, and every order ends with each waybill exactly once."""
    orders = [order(sim) for _ in range(8)]
    sim.block_scale = 0.001
    sim.faults = Faults(error_5xx_rate=0.15, burst_429_rate=0.03)
    lossy: list[LossyTransport] = []

    def wrap(inner: httpx.BaseTransport) -> httpx.BaseTransport:
        lossy.append(LossyTransport(inner, lost_response_rate=0.25, timeout_rate=0.1, seed=5))
        return lossy[0]

    channel, _ = make_channel(wrap=wrap, rate_limit_block=0.08, http_attempts=3)
    for n, order_id in enumerate(orders):
        tracking = notice(order_id, f"P{n}-1", f"P{n}-2", operator=("inpost", "gls")[n % 2])
        for _retry in range(60):
            try:
                channel.add_tracking(tracking, idempotency_key=f"track:{n}")
                break
            except RetryableError:
                continue
        else:
            raise AssertionError("add_tracking never succeeded")
        assert sorted(s["waybill"] for s in sim.shipments(order_id)) == [f"P{n}-1", f"P{n}-2"]
    assert lossy[0].lost > 0 and sim.block_violations == 0


# --- the simulator's own rules ----------------------------------------------------------------------


def test_simulator_shipments_resource(sim: AllegroSimulator, validated) -> None:
    """As the vendor: no deduplication (the same waybill twice is two shipments), the spec's 400/404/422, the
    lineItemsSent summary, and SENT on a tracking number when the seller's setting says so."""
    order_id = order(sim, lines=2)
    form = sim.checkout_form(order_id)
    token = sim.issue_tokens()["access_token"]
    api = httpx.Client(transport=validated(sim.transport()), base_url="http://sim",
                       headers={"Accept": PUBLIC, "Authorization": f"Bearer {token}"})
    post = {"Content-Type": PUBLIC}
    path = SHIPMENTS.format(order_id)
    carriers = api.get("/order/carriers").json()["carriers"]
    assert {"id": "OTHER"} in carriers and {"id": "INPOST", "name": "InPost"} in carriers
    first_line = {"id": form["lineItems"][0]["id"]}
    body = {"carrierId": "DHL", "waybill": "12345678910", "lineItems": [first_line]}
    created = api.post(path, json=body, headers=post)
    assert created.status_code == 201 and created.json()["lineItems"] == [first_line]
    assert sim.checkout_form(order_id)["fulfillment"]["shipmentSummary"]["lineItemsSent"] == "SOME"
    assert api.post(path, json=body, headers=post).status_code == 201
    assert len(api.get(path).json()["shipments"]) == 2  # a duplicate, as the vendor makes
    # bodies the spec itself forbids go around the validating transport
    raw = httpx.Client(transport=sim.transport(), base_url="http://sim", headers=api.headers)
    assert raw.post(path, json={**body, "carrierId": "NOPE"}, headers=post).status_code == 400
    assert raw.post(path, json={**body, "waybill": ""}, headers=post).status_code == 400
    assert raw.post(path, json={**body, "waybill": "1" * 65}, headers=post).status_code == 400
    assert raw.post(path, json={**body, "carrierId": "OTHER", "carrierName": "x" * 31}, headers=post).status_code == 400
    assert api.post(path, json={**body, "lineItems": [{"id": "not-a-line"}]}, headers=post).status_code == 422
    assert api.get(SHIPMENTS.format("29738e61-7f6a-11e8-ac45-09db60ede9d6")).status_code == 404
    sim.sent_on_tracking = True
    everything = api.post(path, json={"carrierId": "OTHER", "carrierName": "Raben", "waybill": "R1"}, headers=post)
    assert everything.json()["lineItems"] == [{"id": line["id"]} for line in form["lineItems"]]  # none: all
    shown = sim.checkout_form(order_id)["fulfillment"]
    assert shown["status"] == "SENT" and shown["shipmentSummary"]["lineItemsSent"] == "ALL"
    assert sim.checkout_form(order_id)["revision"] != form["revision"]
