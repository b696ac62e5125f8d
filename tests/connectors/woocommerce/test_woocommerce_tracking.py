"""Tracking numbers on WooCommerce orders (TrackingChannel): a customer note (the shop e-mails it) and the
hub's order meta, each number exactly once under retries, lost answers and notes the seller wrote by hand.

The notes endpoints and a meta-only order update are not in connectors.shops.woocommerce.schema (which this
change may not edit): their schemas, written from _order-notes.md and the Orders reference's meta data
properties, live here, and this module's own fixtures check every request and answer against them and
schema_for, as conftest does for the rest.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from tenacity import wait_none
from woocommerce_testkit import BASE_URL, KEY, SECRET, Sleeps, check, services

from connectors.shops.woocommerce import SPEC, WooCommerceOptions, build_channel
from connectors.shops.woocommerce import order_mapping as om
from connectors.shops.woocommerce.channel import WooCommerceChannel
from connectors.shops.woocommerce.client import API_PREFIX
from connectors.shops.woocommerce.schema import ERROR, schema_for
from connectors.shops.woocommerce.simulator import Faults, WooSimulator
from hub.kernel.errors import PermanentError, RetryableError
from hub.kernel.ports.capability import Capability
from hub.kernel.ports.channel import TrackingChannel, TrackingNotice
from hub.platform.ratelimit import LocalRateLimiter, Throttle

_ID = {"type": "integer", "minimum": 1}
_DATETIME = {"type": "string", "pattern": r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}$"}
# _order-notes.md, "Order note properties"
NOTE: dict[str, Any] = {
    "type": "object",
    "required": ["id", "author", "date_created", "date_created_gmt", "note", "customer_note"],
    "properties": {"id": _ID, "author": {"type": "string"}, "date_created": _DATETIME,
                   "date_created_gmt": _DATETIME, "note": {"type": "string"}, "customer_note": {"type": "boolean"}},
}
NOTE_LIST: dict[str, Any] = {"type": "array", "items": NOTE}
# what the connector sends: a customer note, nothing else
NOTE_REQUEST: dict[str, Any] = {
    "type": "object", "additionalProperties": False, "required": ["note", "customer_note"],
    "properties": {"note": {"type": "string", "minLength": 1}, "customer_note": {"const": True}},
}
NOTES_QUERY: dict[str, Any] = {"type": "object", "additionalProperties": False, "required": ["type"],
                               "properties": {"type": {"const": "customer"}}}
# PUT /orders/{id} with the hub's tracking meta alone ("Order - Meta data properties": key, value a string)
META_UPDATE: dict[str, Any] = {
    "type": "object", "additionalProperties": False, "required": ["meta_data"],
    "properties": {"meta_data": {"type": "array", "minItems": 1, "maxItems": 1, "items": {
        "type": "object", "additionalProperties": False, "required": ["key", "value"],
        "properties": {"key": {"const": om.TRACKING_META_KEY}, "value": {"type": "string"}}}}},
}
SIM_ONLY: dict[str, Any] = {"type": "object"}  # requests only the tests send to the simulator directly


def schemas(method: str, path: str, body: Any = None) -> tuple[dict[str, Any], dict[str, Any]] | None:
    if path.endswith("/notes") and path.startswith("/orders/"):
        return {"GET": (NOTES_QUERY, NOTE_LIST), "POST": (NOTE_REQUEST, NOTE)}.get(method)
    if "/notes/" in path:
        return SIM_ONLY, NOTE
    if method == "PUT" and path.startswith("/orders/") and isinstance(body, dict) and "meta_data" in body:
        found = schema_for(method, path)
        return (META_UPDATE, found[1]) if found else None
    return schema_for(method, path)


class Checking(httpx.BaseTransport):
    """Validates every request the connector sends, as woocommerce_testkit.CheckingTransport does."""

    def __init__(self, inner: httpx.BaseTransport):
        self.inner = inner
        self.sent: list[httpx.Request] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path.removeprefix(API_PREFIX)
        body = json.loads(request.content) if request.content else None
        found = schemas(request.method, path, body)
        assert found is not None, f"the connector called an endpoint without a schema: {request.method} {path}"
        check(found[0], dict(request.url.params) if request.method == "GET" else body,
              f"{request.method} {path}")
        self.sent.append(request)
        return self.inner.handle_request(request)


@pytest.fixture
def shop() -> Iterator[WooSimulator]:
    sim = WooSimulator(KEY, SECRET, seed=20240611)
    yield sim
    for exchange in sim.log:
        if exchange.status == 0:
            continue
        if 200 <= exchange.status < 300:
            found = schemas(exchange.method, exchange.path, exchange.body)
            assert found is not None, f"simulator answered an unknown endpoint {exchange.path}"
            check(found[1], exchange.response, f"simulator answer to {exchange.method} {exchange.path}")
        else:
            check(ERROR, exchange.response, f"simulator error {exchange.status} for {exchange.path}")


Wrap = Callable[[httpx.BaseTransport], httpx.BaseTransport]


@pytest.fixture
def wire(shop: WooSimulator) -> Callable[..., tuple[WooCommerceChannel, Checking]]:
    def make(wrap: Wrap | None = None) -> tuple[WooCommerceChannel, Checking]:
        inner: httpx.BaseTransport = shop.transport()
        checking = Checking(wrap(inner) if wrap else inner)
        throttle = Throttle(LocalRateLimiter(), "woocommerce:sklep", per_minute=300.0, burst=5.0, sleep=Sleeps(),
                            max_sleep=float("inf"))  # sleeps recorded, never paid off: no deferring
        options = WooCommerceOptions.model_validate({"base_url": BASE_URL, "consumer_key": KEY,
                                                     "consumer_secret": SECRET, "attempts": 3})
        return build_channel("sklep", options, services("sklep", throttle, checking), retry_wait=wait_none()), checking

    return make


def order(shop: WooSimulator) -> int:
    mug = shop.add_simple(f"KUB-{len(shop.products)}", 50, "24.60")
    return shop.add_order([(mug, 1)])


def notice(order_id: int, *numbers: str, operator: str = "inpost", booked_by_channel: bool = False) -> TrackingNotice:
    return TrackingNotice(order_external_id=str(order_id), operator=operator, tracking_numbers=numbers,
                          booked_by_channel=booked_by_channel)


def meta(shop: WooSimulator, order_id: int) -> list[dict[str, str]] | None:
    found = [m for m in shop.order(order_id)["meta_data"] if m["key"] == om.TRACKING_META_KEY]
    assert len(found) <= 1
    return json.loads(found[0]["value"]) if found else None


def customer_notes(shop: WooSimulator, order_id: int) -> list[str]:
    return [n["note"] for n in shop.order_notes(order_id) if n["customer_note"]]


# --- mapping --------------------------------------------------------------------------------------------


def test_spec_declares_tracking_push() -> None:
    assert Capability.TRACKING_PUSH in SPEC.capabilities


def test_golden_note_bodies() -> None:
    one = om.tracking_note("inpost", ["620000000000000000000123"])
    assert json.dumps(one, ensure_ascii=False, separators=(",", ":")) == (
        '{"note":"Twoja przesyłka została nadana.\\nPrzewoźnik: InPost\\nNumer przesyłki:\\n'
        '620000000000000000000123","customer_note":true}')
    assert om.tracking_note("poczta-polska", ["RR1PL", "RR2PL"]) == {
        "note": "Twoja przesyłka została nadana.\nPrzewoźnik: Poczta Polska\nNumery przesyłek:\nRR1PL\nRR2PL",
        "customer_note": True}
    assert om.tracking_note("other", ["X1"])["note"] == "Twoja przesyłka została nadana.\nNumer przesyłki:\nX1"
    assert om.tracking_note("raben", ["X1"])["note"].splitlines()[1] == "Przewoźnik: raben"
    check(NOTE_REQUEST, one, "note")


def test_golden_meta_update() -> None:
    update = om.tracking_meta_update([], "dpd", ["DPD1", "DPD2"])
    assert update == {"meta_data": [{"key": "_hub_tracking", "value": (
        '[{"number":"DPD1","operator":"dpd","carrier":"DPD"},{"number":"DPD2","operator":"dpd","carrier":"DPD"}]')}]}
    existing = json.loads(update["meta_data"][0]["value"])
    assert om.tracking_meta_update(existing, "dpd", ["dpd 1"]) is None  # shown already (blanks, case)
    more = om.tracking_meta_update(existing, "gls", ["GL9"])
    assert more is not None and json.loads(more["meta_data"][0]["value"])[2] == {
        "number": "GL9", "operator": "gls", "carrier": "GLS"}
    check(META_UPDATE, update, "meta update")


def test_numbers_shown_in_notes_and_meta() -> None:
    notes = [{"note": "Paczka: 620000123, druga: AB-9", "customer_note": True},
             {"note": "prywatnie: 777", "customer_note": False}]
    assert om.numbers_in_notes(notes, ["620000123", "62000012", "ab-9", "777"]) == {"620000123", "AB-9"}
    order = {"meta_data": [{"id": 1, "key": om.TRACKING_META_KEY, "value": "not json"}]}
    assert om.tracking_meta(order) == []
    assert om.tracking_numbers([" A1 ", "a1", "B2"]) == ["A1", "B2"]
    with pytest.raises(ValueError):
        om.tracking_numbers([""])


# --- the channel against the simulator -------------------------------------------------------------------


def test_channel_is_a_tracking_channel(wire) -> None:
    channel, _ = wire()
    assert isinstance(channel, TrackingChannel)


def test_golden_requests_and_the_calls_made(wire, shop: WooSimulator) -> None:
    order_id = order(shop)
    channel, checking = wire()
    channel.add_tracking(notice(order_id, "620000000000000000000123"), idempotency_key="track:1")
    assert [(r.method, r.url.path.removeprefix(API_PREFIX), r.url.query.decode()) for r in checking.sent] == [
        ("GET", f"/orders/{order_id}/notes", "type=customer"), ("GET", f"/orders/{order_id}", ""),
        ("POST", f"/orders/{order_id}/notes", ""), ("PUT", f"/orders/{order_id}", "")]
    post, put = json.loads(checking.sent[2].content), json.loads(checking.sent[3].content)
    assert post == {"note": "Twoja przesyłka została nadana.\nPrzewoźnik: InPost\nNumer przesyłki:\n"
                            "620000000000000000000123", "customer_note": True}
    assert put == {"meta_data": [{"key": "_hub_tracking", "value": '[{"number":"620000000000000000000123",'
                                                                   '"operator":"inpost","carrier":"InPost"}]'}]}
    assert customer_notes(shop, order_id) == [post["note"]] and len(shop.customer_emails) == 1
    assert meta(shop, order_id) == [{"number": "620000000000000000000123", "operator": "inpost",
                                     "carrier": "InPost"}]


def test_add_again_adds_nothing(wire, shop: WooSimulator) -> None:
    order_id = order(shop)
    channel, checking = wire()
    channel.add_tracking(notice(order_id, "DPD1", "DPD2", operator="dpd"), idempotency_key="k")
    modified = shop.order(order_id)["date_modified_gmt"]
    shop.advance(5)
    checking.sent.clear()
    channel.add_tracking(notice(order_id, "DPD1", "DPD2", operator="dpd"), idempotency_key="k")
    assert [r.method for r in checking.sent] == ["GET", "GET"]
    assert len(customer_notes(shop, order_id)) == 1 and len(shop.customer_emails) == 1
    assert [e["number"] for e in meta(shop, order_id) or []] == ["DPD1", "DPD2"]
    assert shop.order(order_id)["date_modified_gmt"] == modified  # nothing written: no new revision


def test_only_new_numbers_are_noted_and_the_meta_holds_all(wire, shop: WooSimulator) -> None:
    order_id = order(shop)
    channel, _ = wire()
    channel.add_tracking(notice(order_id, "GL1", operator="gls"), idempotency_key="a")
    channel.add_tracking(notice(order_id, "GL1", "GL2", operator="gls"), idempotency_key="b")  # a second parcel
    notes = customer_notes(shop, order_id)
    assert len(notes) == 2 and notes[1].splitlines()[-2:] == ["Numer przesyłki:", "GL2"]
    assert [e["number"] for e in meta(shop, order_id) or []] == ["GL1", "GL2"]


def test_a_number_the_seller_noted_by_hand_is_not_noted_again(wire, shop: WooSimulator) -> None:
    seller, private = order(shop), order(shop)
    shop.add_note(seller, "Wysłaliśmy paczkę kurierem DPD, nr 0000123456789W", customer_note=True,
                  author="Anna Sprzedawca")
    shop.add_note(private, "Nadane, nr 0000123456789W (do sprawdzenia)")  # a private note: the buyer cannot see it
    channel, _ = wire()
    channel.add_tracking(notice(seller, "0000123456789W", operator="dpd"), idempotency_key="a")
    channel.add_tracking(notice(private, "0000123456789W", operator="dpd"), idempotency_key="b")
    assert len(customer_notes(shop, seller)) == 1 and [e["number"] for e in meta(shop, seller) or []] == [
        "0000123456789W"]  # the note is the seller's; the meta is recorded all the same
    assert len(customer_notes(shop, private)) == 1 and "0000123456789W" in customer_notes(shop, private)[0]


def test_booked_by_channel_changes_nothing_on_a_shop(wire, shop: WooSimulator) -> None:
    order_id = order(shop)
    channel, _ = wire()
    channel.add_tracking(notice(order_id, "X1", operator="other", booked_by_channel=True), idempotency_key="a")
    assert customer_notes(shop, order_id) == ["Twoja przesyłka została nadana.\nNumer przesyłki:\nX1"]


def test_refusals_are_permanent(wire, shop: WooSimulator) -> None:
    order_id = order(shop)
    channel, checking = wire()
    with pytest.raises(PermanentError):
        channel.add_tracking(notice(999_999, "1"), idempotency_key="a")
    with pytest.raises(PermanentError, match="empty"):
        channel.add_tracking(notice(order_id, "1", " "), idempotency_key="b")
    with pytest.raises(PermanentError, match="not a WooCommerce order id"):
        channel.add_tracking(notice(0, "1"), idempotency_key="c")
    assert [r.method for r in checking.sent] == ["GET"]  # only the unknown order's notes were asked for


class FailNotePosts(httpx.BaseTransport):
    """POSTs of notes: the first ``fail`` are answered 503 without reaching the shop, or (``lose``) reach it,
    are applied, and their answer is lost."""

    def __init__(self, inner: httpx.BaseTransport, *, fail: int = 0, lose: int = 0):
        self.inner, self.fail, self.lose, self.posts = inner, fail, lose, 0

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if request.method == "POST" and request.url.path.endswith("/notes"):
            self.posts += 1
            if self.fail > 0:
                self.fail -= 1
                return httpx.Response(503, json={"code": "service_unavailable", "message": "down",
                                                 "data": {"status": 503}})
            if self.lose > 0:
                self.lose -= 1
                self.inner.handle_request(request).read()
                raise httpx.ReadTimeout("answer lost", request=request)
        return self.inner.handle_request(request)


def failing(wire, **faults: int) -> tuple[WooCommerceChannel, FailNotePosts]:
    made: list[FailNotePosts] = []

    def wrap(inner: httpx.BaseTransport) -> httpx.BaseTransport:
        made.append(FailNotePosts(inner, **faults))
        return made[0]

    channel, _ = wire(wrap)
    return channel, made[0]


def test_a_5xx_on_the_note_is_retryable_and_sent_once(wire, shop: WooSimulator) -> None:
    order_id = order(shop)
    channel, posts = failing(wire, fail=1)
    with pytest.raises(RetryableError):
        channel.add_tracking(notice(order_id, "UPS1", operator="ups"), idempotency_key="k")
    assert posts.posts == 1 and customer_notes(shop, order_id) == [] and meta(shop, order_id) is None
    channel.add_tracking(notice(order_id, "UPS1", operator="ups"), idempotency_key="k")  # the queue's retry
    assert posts.posts == 2 and len(customer_notes(shop, order_id)) == 1
    assert [e["number"] for e in meta(shop, order_id) or []] == ["UPS1"]


def test_a_lost_answer_is_found_by_the_retry_not_noted_twice(wire, shop: WooSimulator) -> None:
    order_id = order(shop)
    channel, posts = failing(wire, lose=1)
    with pytest.raises(RetryableError):
        channel.add_tracking(notice(order_id, "FX1", operator="fedex"), idempotency_key="k")
    assert len(customer_notes(shop, order_id)) == 1 and meta(shop, order_id) is None  # applied, answer lost
    channel.add_tracking(notice(order_id, "FX1", operator="fedex"), idempotency_key="k")
    assert posts.posts == 1 and len(customer_notes(shop, order_id)) == 1 and len(shop.customer_emails) == 1
    assert [e["number"] for e in meta(shop, order_id) or []] == ["FX1"]


def test_exactly_one_note_per_number_under_faults(wire, shop: WooSimulator) -> None:
    """5xx (before and after applying), 429 bursts, timeouts and lost answers on every request; each job is
    called again (as the queue does) until it returns."""
    orders = [order(shop) for _ in range(12)]
    shop.faults = Faults(error_rate=0.2, burst_rate=0.04, burst_length=2, retry_after=1, timeout_rate=0.05,
                         lost_response_rate=0.15)
    channel, _ = wire()
    for n, order_id in enumerate(orders):
        for _retry in range(60):
            try:
                channel.add_tracking(notice(order_id, f"N{n}-1", f"N{n}-2", operator="dhl"), idempotency_key=str(n))
                break
            except RetryableError:
                continue
        else:
            raise AssertionError("add_tracking never succeeded")
        notes = customer_notes(shop, order_id)
        assert len(notes) == 1 and notes[0].splitlines()[-2:] == [f"N{n}-1", f"N{n}-2"]
        assert [e["number"] for e in meta(shop, order_id) or []] == [f"N{n}-1", f"N{n}-2"]
    assert any(e.fault == "lost_response" and e.method == "POST" for e in shop.log)


# --- the simulator's notes and meta -------------------------------------------------------------------


def test_simulator_notes_and_meta(shop: WooSimulator) -> None:
    order_id = order(shop)
    modified = shop.order(order_id)["date_modified_gmt"]
    shop.advance(3)
    api = httpx.Client(transport=shop.transport(), base_url=BASE_URL + API_PREFIX, auth=(KEY, SECRET))
    first = api.post(f"/orders/{order_id}/notes", json={"note": "Order ok!!!"})
    assert first.status_code == 201 and first.json()["customer_note"] is False and first.json()["author"] == "system"
    second = api.post(f"/orders/{order_id}/notes", json={"note": "Do klienta", "customer_note": True})
    listed = api.get(f"/orders/{order_id}/notes").json()
    assert [n["id"] for n in listed] == [second.json()["id"], first.json()["id"]]  # newest first
    assert [n["note"] for n in api.get(f"/orders/{order_id}/notes", params={"type": "customer"}).json()] == [
        "Do klienta"]
    assert [n["note"] for n in api.get(f"/orders/{order_id}/notes", params={"type": "internal"}).json()] == [
        "Order ok!!!"]
    assert api.get(f"/orders/{order_id}/notes", params={"type": "all"}).status_code == 400
    assert api.post(f"/orders/{order_id}/notes", json={"customer_note": True}).json()["code"] == (
        "rest_missing_callback_param")
    assert api.get("/orders/999999/notes").status_code == 404
    one = f"/orders/{order_id}/notes/{first.json()['id']}"
    assert api.get(one).json()["note"] == "Order ok!!!"
    assert api.delete(one).status_code == 501  # no trash: force=true is required
    assert api.delete(one, params={"force": "true"}).status_code == 200 and api.get(one).status_code == 404
    assert shop.customer_emails == [(order_id, "Do klienta")]
    assert shop.order(order_id)["date_modified_gmt"] == modified  # notes leave the order alone
    api.put(f"/orders/{order_id}", json={"meta_data": [{"key": "k", "value": "1"}]})
    api.put(f"/orders/{order_id}", json={"meta_data": [{"key": "k", "value": "2"}]})
    entries = [m for m in shop.order(order_id)["meta_data"] if m["key"] == "k"]
    assert [m["value"] for m in entries] == ["2"]  # a key without an id: its value replaced
    assert shop.order(order_id)["date_modified_gmt"] > modified
    assert api.put(f"/orders/{order_id}", json={"meta_data": [{"value": "x"}]}).status_code == 400
