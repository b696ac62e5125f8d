"""connectors/http.py, the HTTP layer every connector client shares: retries, Retry-After, 429, timeouts,
requests that must not be repeated, error classes, metrics and logs. No network: httpx.MockTransport."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from itertools import count
from typing import Any

import httpx
import pytest
from tenacity import wait_fixed, wait_none

from connectors.http import (
    Answer,
    HttpClient,
    RateLimited,
    RequestRefused,
    Unavailable,
    retry_after_seconds,
)
from hub.kernel.errors import Deferred, PermanentError, RetryableError
from hub.platform.metrics import REGISTRY
from tests.support.http_doubles import RecordingLog, SpyThrottle

Handler = Callable[[httpx.Request], httpx.Response]
_names = count()


class Script:
    """A MockTransport handler answering with ``steps`` in turn (the last one again when they run out)."""

    def __init__(self, *steps: Handler):
        self.steps = steps
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        step = self.steps[min(len(self.requests), len(self.steps) - 1)]
        self.requests.append(request)
        return step(request)


def answer(status: int, **kwargs: Any) -> Handler:
    return lambda _request: httpx.Response(status, **kwargs)


def fail(error: type[httpx.TransportError]) -> Handler:
    def raise_(request: httpx.Request) -> httpx.Response:
        raise error("boom", request=request)

    return raise_


def make(script: Script, cls: type[HttpClient] = HttpClient, **kwargs: Any) -> tuple[HttpClient, RecordingLog]:
    log = RecordingLog()
    kwargs.setdefault("wait", wait_none())
    kwargs.setdefault("sleep", lambda _s: None)
    http = cls(connector=f"http-test-{next(_names)}", throttle=SpyThrottle(), log=log,
               transport=httpx.MockTransport(script), **kwargs)
    return http, log


def requests_total(http: HttpClient, outcome: str) -> float:
    labels = {"connector": http.connector, "outcome": outcome}
    return REGISTRY.get_sample_value("hub_connector_requests_total", labels) or 0.0


def errors_total(http: HttpClient, error: str) -> float:
    return REGISTRY.get_sample_value("hub_connector_errors_total", {"connector": http.connector, "error": error}) or 0.0


def throttle(http: HttpClient) -> SpyThrottle:
    assert isinstance(http.throttle, SpyThrottle)
    return http.throttle


# --- retries ---------------------------------------------------------------------------


def test_a_5xx_is_retried_with_the_wait_and_a_throttle_token_per_attempt() -> None:
    script = Script(answer(503), answer(502), answer(200, json={"ok": True}))
    slept: list[float] = []
    http, log = make(script, wait=wait_fixed(0.25), sleep=slept.append)
    response = http.send("GET", "https://vendor.example/items", params={"page": 2})
    assert response.json() == {"ok": True} and len(script.requests) == 3
    assert slept == [0.25, 0.25] and throttle(http).waits == 3
    assert (requests_total(http, "5xx"), requests_total(http, "2xx"), errors_total(http, "5xx")) == (2, 1, 2)
    assert log.names() == ["http.http_error", "http.http_error", "http.request"]


def test_every_attempt_failing_raises_unavailable_with_the_last_status() -> None:
    script = Script(answer(500, text="oops"))
    http, log = make(script, attempts=4)
    with pytest.raises(Unavailable, match=r"^HTTP PUT /items/7: HTTP 500 \(after 4 attempts\)$") as caught:
        http.send("PUT", "https://vendor.example/items/7", json={"quantity": 3})
    assert isinstance(caught.value, RetryableError) and caught.value.retry_after is None
    assert (caught.value.status, caught.value.code) == (500, None)
    assert len(script.requests) == 4 and errors_total(http, "5xx") == 4
    assert log.events[0] == ("warning", "http.http_error", {
        "error": "5xx", "method": "PUT", "path": "/items/7", "status": 500,
        "elapsed_ms": log.events[0][2]["elapsed_ms"]})


def test_timeouts_are_retried_counted_and_logged() -> None:
    script = Script(fail(httpx.ReadTimeout))
    http, log = make(script, attempts=2)
    with pytest.raises(Unavailable, match=r"timed out \(ReadTimeout\) \(after 2 attempts\)") as caught:
        http.send("GET", "https://vendor.example/slow")
    assert caught.value.status is None and isinstance(caught.value.__cause__.__cause__, httpx.ReadTimeout)
    assert len(script.requests) == 2
    assert (requests_total(http, "timeout"), errors_total(http, "timeout")) == (2, 2)
    assert log.events == [("warning", "http.timeout", {"method": "GET", "path": "/slow", "error": "ReadTimeout"})] * 2


def test_a_broken_connection_is_retried_and_counted_as_network() -> None:
    script = Script(fail(httpx.ConnectError), answer(204))
    http, log = make(script)
    assert http.send("DELETE", "https://vendor.example/items/7").status_code == 204
    assert (requests_total(http, "network"), errors_total(http, "network"), requests_total(http, "2xx")) == (1, 1, 1)
    assert log.events[0] == ("warning", "http.network_error", {"method": "DELETE", "path": "/items/7",
                                                               "error": "boom"})


def test_statuses_the_vendor_retries_like_a_5xx() -> None:
    class Vendor(HttpClient):
        retry_statuses = frozenset({408})

    script = Script(answer(408), answer(200, json=[]))
    http, _ = make(script, Vendor)
    assert http.send("GET", "https://vendor.example/items").status_code == 200
    assert (requests_total(http, "4xx"), errors_total(http, "timeout")) == (1, 1)
    plain, _ = make(Script(answer(408)))  # not a retry status by default: the answer goes back
    assert plain.send("GET", "https://vendor.example/items").status_code == 408
    assert errors_total(plain, "4xx") == 1


# --- requests that must not be repeated -------------------------------------------------


@pytest.mark.parametrize("lost", [fail(httpx.ReadTimeout), fail(httpx.RemoteProtocolError), answer(502)])
def test_a_post_whose_answer_was_lost_is_not_retried_blindly(lost: Handler) -> None:
    for method in ("POST", "PATCH"):
        script = Script(lost, answer(201, json={"id": 1}))
        http, _ = make(script)
        with pytest.raises(Unavailable, match=r"\(not retried: the request may have landed\)$"):
            http.send(method, "https://vendor.example/shipments", json={"parcel": 1})
        assert len(script.requests) == 1  # the caller looks it up before sending again


def test_a_write_is_retried_only_when_its_caller_or_vendor_says_a_repeat_is_harmless() -> None:
    script = Script(answer(500), answer(200, json={"id": 1}))
    http, _ = make(script)
    assert http.send("POST", "https://vendor.example/batch", json={}, retry=True).status_code == 200
    assert len(script.requests) == 2

    class Dedupes(HttpClient):
        repeat_writes = True

    script = Script(answer(500), answer(200, json={"id": 1}))
    http, _ = make(script, Dedupes)
    assert http.send("POST", "https://vendor.example/commands", json={}).status_code == 200
    assert len(script.requests) == 2
    script = Script(answer(500), answer(200, json={"id": 1}))
    http, _ = make(script, Dedupes)
    with pytest.raises(Unavailable, match="not retried"):
        http.send("POST", "https://vendor.example/refunds", json={}, retry=False)
    assert len(script.requests) == 1


def test_attempts_overrides_the_configured_number() -> None:
    script = Script(answer(503))
    http, _ = make(script, attempts=3)
    with pytest.raises(Unavailable, match=r"after 5 attempts"):
        http.send("GET", "https://vendor.example/items", attempts=5)
    with pytest.raises(Unavailable, match=r"\(one attempt\)$"):  # a read: nothing "may have landed"
        http.send("GET", "https://vendor.example/items", attempts=1)
    assert len(script.requests) == 6


# --- 429 and Retry-After ----------------------------------------------------------------


def test_a_429_blocks_the_whole_throttle_for_retry_after_seconds_and_is_not_retried() -> None:
    script = Script(answer(429, headers={"Retry-After": "12"}), answer(200, json={}))
    http, log = make(script)
    with pytest.raises(RateLimited, match=r"^HTTP GET /items: HTTP 429$") as caught:
        http.send("GET", "https://vendor.example/items")
    assert caught.value.retry_after == 12.0 and isinstance(caught.value, RetryableError)
    assert len(script.requests) == 1 and throttle(http).blocks == [12.0]
    assert (requests_total(http, "4xx"), errors_total(http, "429")) == (1, 1)
    assert log.events[0][1] == "http.rate_limited" and log.events[0][2]["block_seconds"] == 12.0
    # the next request does not go out, and its worker thread does not sleep 12 s on it either: the job
    # goes back to the queue until the block is over
    with pytest.raises(Deferred) as deferred:
        http.send("GET", "https://vendor.example/items")
    assert deferred.value.retry_after == pytest.approx(12.0, abs=0.2)
    assert len(script.requests) == 1 and not throttle(http).slept


def test_a_429_with_retry_after_as_an_http_date() -> None:
    when = datetime.now(UTC) + timedelta(seconds=90)
    http, _ = make(Script(answer(429, headers={"Retry-After": format_datetime(when, usegmt=True)})))
    with pytest.raises(RateLimited) as caught:
        http.send("GET", "https://vendor.example/items")
    assert caught.value.retry_after == pytest.approx(90.0, abs=2.0)
    assert throttle(http).blocks == [caught.value.retry_after]


@pytest.mark.parametrize("headers", [{}, {"Retry-After": "soon"}])
def test_a_429_without_a_usable_retry_after_blocks_for_the_default(headers: dict[str, str]) -> None:
    http, _ = make(Script(answer(429, headers=headers)), retry_after_default=45.0)
    with pytest.raises(RateLimited) as caught:
        http.send("POST", "https://vendor.example/items", json={}, retry=True)
    assert caught.value.retry_after == 45.0 and throttle(http).blocks == [45.0]


def test_retry_after_forms() -> None:
    now = datetime(2025, 3, 1, 12, 0, 0, tzinfo=UTC)
    assert retry_after_seconds("30") == 30.0 and retry_after_seconds(" 1.5 ") == 1.5
    assert retry_after_seconds("-3") == 0.0
    assert retry_after_seconds("Sat, 01 Mar 2025 12:01:00 GMT", now=now) == 60.0
    assert retry_after_seconds("Sat, 01 Mar 2025 11:00:00 GMT", now=now) == 0.0  # already past
    assert retry_after_seconds("Sat, 01 Mar 2025 12:01:00 GMT", now=now, dates=False) is None
    assert retry_after_seconds("soon") is None and retry_after_seconds(None) is None
    assert retry_after_seconds("") is None


# --- answers that go back to the vendor's client ------------------------------------------


@pytest.mark.parametrize(("status", "expected", "error"), [
    (200, (), None), (201, (), None), (302, (), "redirect"), (400, (), "4xx"), (401, (), "auth"),
    (403, (), "auth"), (404, (), "4xx"), (404, (404,), None), (409, (409, 422), None),
])
def test_other_answers_go_back_counted_by_class_and_error(status: int, expected: tuple[int, ...],
                                                          error: str | None) -> None:
    script = Script(answer(status, headers={"Location": "https://elsewhere.example/"}))
    http, log = make(script)
    response = http.send("GET", "https://vendor.example/items?code=secret", expected=expected)
    assert response.status_code == status and len(script.requests) == 1  # never followed, never retried
    assert requests_total(http, f"{status // 100}xx") == 1
    for label in ("redirect", "4xx", "auth"):
        assert errors_total(http, label) == (1 if label == error else 0)
    level, event, fields = log.events[0]
    assert (level, event) == (("debug", "http.request") if error is None else ("warning", "http.http_error"))
    assert fields["path"] == "/items"  # never the query: it may carry codes


def test_what_the_vendor_counts_as_auth_and_redirect_errors() -> None:
    class Vendor(HttpClient):
        auth_statuses = frozenset({401})
        redirects_are_errors = False

    http, _ = make(Script(answer(403), answer(301), answer(401)), Vendor)
    assert [http.send("GET", "https://vendor.example/x").status_code for _ in range(3)] == [403, 301, 401]
    assert (errors_total(http, "4xx"), errors_total(http, "redirect"), errors_total(http, "auth")) == (1, 0, 1)
    assert requests_total(http, "3xx") == 1


def test_base_url_auth_headers_and_the_body_reach_the_vendor() -> None:
    script = Script(answer(200, json={}))
    log = RecordingLog()
    http = HttpClient(connector=f"http-test-{next(_names)}", throttle=SpyThrottle(), log=log,
                      base_url="https://vendor.example/api/v2", auth=httpx.BasicAuth("user", "pass"),
                      headers={"User-Agent": "hub-test/1"}, timeout=httpx.Timeout(20.0, connect=5.0),
                      transport=httpx.MockTransport(script))
    http.send("PUT", "/items/7", params=[("a", "1"), ("a", "2")], headers={"X-Extra": "y"},
              content=b"<xml/>")
    sent = script.requests[0]
    assert str(sent.url) == "https://vendor.example/api/v2/items/7?a=1&a=2"
    assert sent.headers["authorization"].startswith("Basic ") and sent.headers["user-agent"] == "hub-test/1"
    assert sent.headers["x-extra"] == "y" and sent.content == b"<xml/>"
    assert sent.extensions["timeout"] == {"connect": 5.0, "read": 20.0, "write": 20.0, "pool": 20.0}
    assert log.events[0][2]["path"] == "/items/7"
    http.close()


# --- the vendor's hooks and error classes ---------------------------------------------------


def test_a_vendor_keeps_its_own_names_messages_codes_and_error_classes() -> None:
    class CarrierDown(Unavailable):
        pass

    class Carrier(HttpClient):
        log_prefix = "carrier"
        title = "Carrier"
        unavailable_class = CarrierDown

        def error_code(self, response: httpx.Response) -> str | None:
            return response.json().get("code")

        def answer_reason(self, answer: Answer) -> str:
            return f"HTTP {answer.status}: {answer.response.json()['message']}"

    body = {"code": "E42", "message": "maintenance"}
    http, log = make(Script(answer(503, json=body), fail(httpx.ConnectTimeout)), Carrier, attempts=2)
    with pytest.raises(CarrierDown, match=r"^Carrier GET /labels: timed out \(ConnectTimeout\)") as caught:
        http.send("GET", "https://carrier.example/labels")
    assert (caught.value.status, caught.value.code) == (None, None)  # the last attempt's
    assert log.names() == ["carrier.http_error", "carrier.timeout"]
    http, _ = make(Script(answer(503, json=body)), Carrier, attempts=2)
    with pytest.raises(CarrierDown, match=r"^Carrier GET /labels: HTTP 503: maintenance \(after 2") as caught:
        http.send("GET", "https://carrier.example/labels")
    assert (caught.value.status, caught.value.code) == (503, "E42")
    http, _ = make(Script(answer(429, json={"code": "E29", "message": "slow down"})), Carrier)
    with pytest.raises(RateLimited, match=r"^Carrier GET /labels: HTTP 429: slow down$"):
        http.send("GET", "https://carrier.example/labels")


def test_error_classes() -> None:
    assert issubclass(Unavailable, RetryableError) and issubclass(RateLimited, RetryableError)
    assert issubclass(RequestRefused, PermanentError)
    refused = RequestRefused("HTTP 404", status=404, code="not_found")
    assert (refused.status, refused.code, str(refused)) == (404, "not_found", "HTTP 404")
    down = Unavailable("down")
    assert (down.status, down.code, down.retry_after) == (None, None, None)
