"""client.py: error classes, Retry-After, metrics and error logging; the options model."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

import httpx
import pytest
from pydantic import ValidationError
from tenacity import wait_none
from woocommerce_testkit import KEY, SECRET

from connectors.http import RateLimited, RequestRefused, Unavailable
from connectors.shops.woocommerce import WooCommerceOptions
from connectors.shops.woocommerce.client import WooClient, WooRequestError, WooUnavailable, retry_after_seconds
from connectors.shops.woocommerce.simulator import Faults, WooSimulator
from hub.kernel.errors import LoginNeeded, PermanentError, RetryableError
from hub.platform.config import Secret
from hub.platform.metrics import REGISTRY
from hub.platform.ratelimit import LocalRateLimiter, Throttle


class RecordingLog:
    def __init__(self) -> None:
        self.events: list[tuple[str, dict[str, Any]]] = []

    def warning(self, event: str, **fields: Any) -> None:
        self.events.append((event, fields))


def client(transport: httpx.BaseTransport, name: str, *, attempts: int = 3) -> tuple[WooClient, RecordingLog]:
    log = RecordingLog()
    throttle = Throttle(LocalRateLimiter(), f"woocommerce:{name}", 300.0, 5.0, sleep=lambda _s: None)
    return WooClient(name, "https://sklep.example.pl", KEY, Secret(SECRET, "test"), throttle=throttle, log=log,
                     transport=transport, attempts=attempts, retry_wait=wait_none()), log


def requests_total(name: str, outcome: str) -> float:
    return REGISTRY.get_sample_value("hub_connector_requests_total", {"connector": name, "outcome": outcome}) or 0.0


def errors_total(name: str, error: str) -> float:
    return REGISTRY.get_sample_value("hub_connector_errors_total", {"connector": name, "error": error}) or 0.0


def test_every_request_is_throttled_and_counted() -> None:
    sim = WooSimulator(KEY, SECRET)
    sim.add_simple("A", 1, "1.00")
    waits: list[float] = []

    class CountingLimiter(LocalRateLimiter):
        def reserve(self, key: str, per_second: float, burst: float) -> float:
            waits.append(per_second)
            return super().reserve(key, per_second, burst)

    woo = WooClient("woo-count", "https://sklep.example.pl", KEY, Secret(SECRET, "test"),
                    throttle=Throttle(CountingLimiter(), "k", 300.0, 5.0, sleep=lambda _s: None),
                    log=RecordingLog(), transport=sim.transport(), retry_wait=wait_none())
    sim.faults = Faults(error_rate=1.0, error_after_apply=0.0)
    with pytest.raises(RetryableError):
        woo.get("/products")
    sim.clear_faults()
    items, headers = woo.get("/products", {"per_page": 100})
    assert [p["sku"] for p in items] == ["A"] and headers["X-WP-TotalPages"] == "1"
    assert len(waits) == 4 == len(sim.log)  # a token before each attempt, retries included
    assert requests_total("woo-count", "5xx") == 3 and requests_total("woo-count", "2xx") == 1
    assert errors_total("woo-count", "5xx") == 3


def test_401_is_login_needed_and_logged_with_the_error_body() -> None:
    sim = WooSimulator(KEY, "cs_other")
    woo, log = client(sim.transport(), "woo-401")
    with pytest.raises(LoginNeeded, match="Consumer secret is invalid") as caught:
        woo.get("/products")
    assert caught.value.retry_after == 300.0  # held for an operator, no attempt spent
    assert log.events == [("woocommerce.error", {
        "method": "GET", "path": "/products", "status": 401, "elapsed_ms": log.events[0][1]["elapsed_ms"],
        "error": {"code": "woocommerce_rest_authentication_error", "message": "Consumer secret is invalid.",
                  "data": {"status": 401}}})]
    assert errors_total("woo-401", "auth") == 1


def test_429_blocks_the_throttle_for_retry_after() -> None:
    blocked: list[float] = []

    class Spy(Throttle):
        def block(self, seconds: float) -> None:
            blocked.append(seconds)

    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(429, headers={"Retry-After": "12"}, json={"code": "too_many", "message": "slow"})

    woo = WooClient("woo-429", "https://sklep.example.pl", KEY, Secret(SECRET, "test"),
                    throttle=Spy(LocalRateLimiter(), "k", 300.0, 5.0, sleep=lambda _s: None), log=RecordingLog(),
                    transport=httpx.MockTransport(answer), retry_wait=wait_none())
    with pytest.raises(RetryableError) as caught:
        woo.post("/products/batch", {"update": [{"id": 1, "regular_price": "1.00"}]})
    assert (caught.value.retry_after, blocked) == (12.0, [12.0])
    assert errors_total("woo-429", "429") == 1


@pytest.mark.parametrize(("status", "body", "error", "match"), [
    (400, {"code": "rest_invalid_param", "message": "Invalid parameter(s): per_page", "data": {"status": 400}},
     PermanentError, "rest_invalid_param"),
    (404, {"code": "rest_no_route", "message": "No route was found", "data": {"status": 404}},
     PermanentError, "rest_no_route"),
    (413, {"code": "woocommerce_rest_request_entity_too_large", "message": "Unable to accept more than 100 items",
           "data": {"status": 413}}, PermanentError, "entity_too_large"),
    (301, None, PermanentError, "redirected to https://www.sklep.example.pl/"),
])
def test_other_answers_are_permanent(status: int, body: Any, error: type[Exception], match: str) -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        if body is None:
            return httpx.Response(status, headers={"Location": "https://www.sklep.example.pl/"})
        return httpx.Response(status, json=body)

    woo, log = client(httpx.MockTransport(answer), f"woo-{status}")
    with pytest.raises(error, match=match):
        woo.get("/products")
    assert len(log.events) == 1


def test_html_instead_of_json_and_timeouts_are_retryable() -> None:
    calls: list[int] = []

    def html(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, text="<html>Maintenance</html>")

    woo, _ = client(httpx.MockTransport(html), "woo-html")
    with pytest.raises(RetryableError, match="without a JSON body"):
        woo.get("/products")

    def slow(request: httpx.Request) -> httpx.Response:
        calls.append(1)
        raise httpx.ReadTimeout("slow", request=request)

    woo, log = client(httpx.MockTransport(slow), "woo-timeout", attempts=2)
    with pytest.raises(RetryableError, match="timed out"):
        woo.post("/products/batch", {"update": [{"id": 1, "regular_price": "1.00"}]})
    assert len(calls) == 2 and requests_total("woo-timeout", "timeout") == 2
    assert [event for event, _ in log.events] == ["woocommerce.timeout", "woocommerce.timeout"]


def test_a_write_sent_without_retry_gets_one_attempt_and_keeps_the_shops_code() -> None:
    calls: list[int] = []

    def refused(request: httpx.Request) -> httpx.Response:
        calls.append(1)
        return httpx.Response(500, json={"code": "woocommerce_rest_cannot_create_order_refund",
                                         "message": "Invalid refund amount.", "data": {"status": 500}})

    woo, _ = client(httpx.MockTransport(refused), "woo-once")
    with pytest.raises(WooUnavailable, match="not retried: the request may have landed") as caught:
        woo.post("/orders/7/refunds", {"amount": "1.00"}, retry=False)
    assert len(calls) == 1
    assert (caught.value.status, caught.value.code) == (500, "woocommerce_rest_cannot_create_order_refund")
    with pytest.raises(WooUnavailable, match="after 3 attempts") as again:
        woo.put("/orders/7", {"status": "completed"})  # absolute: retried
    assert len(calls) == 4 and isinstance(again.value, RetryableError)


def test_retry_after_forms() -> None:
    now = datetime(2025, 3, 1, 12, 0, 0, tzinfo=UTC)
    assert retry_after_seconds("30") == 30.0
    assert retry_after_seconds("Sat, 01 Mar 2025 12:01:00 GMT", now=now) == 60.0
    assert retry_after_seconds("Sat, 01 Mar 2025 11:00:00 GMT", now=now) == 0.0
    assert retry_after_seconds("soon") is None and retry_after_seconds(None) is None


def test_429_with_retry_after_as_an_http_date_and_without_one() -> None:
    when = format_datetime(datetime.now(UTC) + timedelta(seconds=120), usegmt=True)
    for headers, blocked in (({"Retry-After": when}, pytest.approx(120.0, abs=2.0)), ({}, 30.0)):
        def answer(request: httpx.Request, headers: dict[str, str] = headers) -> httpx.Response:
            return httpx.Response(429, headers=headers, json={"code": "too_many", "message": "slow"})

        woo, log = client(httpx.MockTransport(answer), "woo-429-date")
        with pytest.raises(RateLimited, match="HTTP 429: too_many: slow") as caught:
            woo.get("/products")
        assert caught.value.retry_after == blocked
        assert [event for event, _ in log.events] == ["woocommerce.error"]


def test_408_is_retried_like_a_5xx_and_counted_as_a_timeout() -> None:
    calls: list[int] = []

    def answer(request: httpx.Request) -> httpx.Response:
        calls.append(1)
        if len(calls) == 1:
            return httpx.Response(408, json={"code": "timeout", "message": "Request Timeout"})
        return httpx.Response(200, json=[])

    woo, log = client(httpx.MockTransport(answer), "woo-408")
    assert woo.get("/orders")[0] == [] and len(calls) == 2
    assert (requests_total("woo-408", "4xx"), errors_total("woo-408", "timeout")) == (1, 1)
    assert [event for event, _ in log.events] == ["woocommerce.error"]


def test_a_dropped_connection_is_retried_and_logged() -> None:
    def dropped(request: httpx.Request) -> httpx.Response:
        raise httpx.RemoteProtocolError("Server disconnected", request=request)

    woo, log = client(httpx.MockTransport(dropped), "woo-dropped", attempts=2)
    with pytest.raises(WooUnavailable, match="network error: Server disconnected \\(after 2 attempts\\)"):
        woo.put("/orders/7", {"status": "completed"})
    assert log.events == [("woocommerce.network_error", {"method": "PUT", "path": "/orders/7",
                                                         "error": "Server disconnected"})] * 2
    assert errors_total("woo-dropped", "network") == 2


def test_error_classes_are_the_shared_ones() -> None:
    assert issubclass(WooUnavailable, Unavailable) and issubclass(WooUnavailable, RetryableError)
    assert issubclass(WooRequestError, RequestRefused) and issubclass(WooRequestError, PermanentError)
    refused = WooRequestError("HTTP 400", status=400, code="rest_invalid_param")
    assert (refused.status, refused.code) == (400, "rest_invalid_param")


def test_options() -> None:
    ok = WooCommerceOptions.model_validate({"base_url": "https://sklep.example.pl/", "consumer_key": KEY,
                                            "consumer_secret": {"env": "WOO_SECRET"}, "timeout": "90s"},
                                           context={"environ": {"WOO_SECRET": SECRET}})
    assert (ok.base_url, ok.consumer_secret.get(), ok.timeout, ok.attempts) == (
        "https://sklep.example.pl", SECRET, 90.0, 3)
    assert SECRET not in repr(ok)
    assert (ok.api_refund, ok.nip_meta_keys[:2]) == (False, ("_billing_nip", "billing_nip"))
    keys = WooCommerceOptions.model_validate({"base_url": "https://sklep.example.pl", "consumer_key": KEY,
                                              "consumer_secret": SECRET, "api_refund": True,
                                              "nip_meta_keys": [" _wc_billing/firma/nip ", "nip"]})
    assert (keys.api_refund, keys.nip_meta_keys) == (True, ("_wc_billing/firma/nip", "nip"))
    assert WooCommerceOptions.model_validate({"base_url": "http://127.0.0.1:8080", "consumer_key": KEY,
                                              "consumer_secret": SECRET}).base_url == "http://127.0.0.1:8080"
    bad = [
        ({"base_url": "http://sklep.example.pl"}, "https is required"),
        ({"base_url": "https://sklep.example.pl/wp-json/wc/v3"}, "without /wp-json"),
        ({"base_url": "sklep.example.pl"}, "shop's address"),
        ({"currency": "zł"}, "currency"),
        ({"batch_size": 50}, "Extra inputs are not permitted"),
        ({"nip_meta_keys": []}, "at least 1 item"),
        ({"nip_meta_keys": ["nip", " "]}, "a NIP meta key cannot be empty"),
    ]
    for override, match in bad:
        with pytest.raises(ValidationError, match=match):
            WooCommerceOptions.model_validate({"base_url": "https://sklep.example.pl", "consumer_key": KEY,
                                               "consumer_secret": SECRET, **override})
