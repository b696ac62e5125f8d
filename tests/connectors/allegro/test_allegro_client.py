"""client.py's AllegroHttp: Allegro's rules on the shared HTTP layer (connectors/http.py): what it retries,
how a 429 blocks the client id, the errors, messages, log lines and metrics. No network: httpx.MockTransport."""

from __future__ import annotations

from itertools import count
from typing import Any

import httpx
import pytest

from connectors.allegro.client import AllegroHttp, TransientError
from connectors.http import RateLimited, Unavailable
from hub.kernel.errors import RetryableError
from hub.platform.metrics import REGISTRY
from tests.support.http_doubles import RecordingLog, SpyThrottle

URL = "http://allegro.sim/sale/offers"
ERRORS = {"errors": [{"code": "NotAvailable", "message": "try later", "details": None, "path": None,
                      "userMessage": "try later"}]}
_names = count()


def make(*answers: Any, attempts: int = 3) -> tuple[AllegroHttp, RecordingLog, list[httpx.Request]]:
    sent: list[httpx.Request] = []

    def handle(request: httpx.Request) -> httpx.Response:
        step = answers[min(len(sent), len(answers) - 1)]
        sent.append(request)
        if isinstance(step, type):
            raise step("boom", request=request)
        return step

    log = RecordingLog()
    slept: list[float] = []
    http = AllegroHttp(connector=f"allegro-http-{next(_names)}", throttle=SpyThrottle(), log=log, attempts=attempts,
                       backoff=0.001, block_seconds=60.0, transport=httpx.MockTransport(handle), sleep=slept.append)
    return http, log, sent


def metric(http: AllegroHttp, family: str, label: str, value: str) -> float:
    return REGISTRY.get_sample_value(f"hub_connector_{family}_total", {"connector": http.connector, label: value}) or 0


def test_5xx_is_retried_then_a_transient_error_names_the_trace_id() -> None:
    http, log, sent = make(httpx.Response(503, json=ERRORS, headers={"trace-id": "t-1"}))
    with pytest.raises(TransientError) as caught:
        http.send("GET", URL + "?offer.id=1", headers={"Accept": "application/vnd.allegro.public.v1+json"})
    assert str(caught.value) == "Allegro GET /sale/offers answered 503 (trace-id t-1) (after 3 attempts)"
    assert isinstance(caught.value, Unavailable) and isinstance(caught.value, RetryableError)
    assert caught.value.__cause__ is None and caught.value.__suppress_context__
    assert len(sent) == 3 == http.throttle.waits  # type: ignore[attr-defined]
    assert (metric(http, "requests", "outcome", "5xx"), metric(http, "errors", "error", "5xx")) == (3, 3)
    level, event, fields = log.events[0]
    assert (level, event) == ("warning", "allegro.server_error")
    assert {k: v for k, v in fields.items() if k != "took_ms"} == {
        "method": "GET", "path": "/sale/offers", "status": 503, "trace_id": "t-1", "errors": ERRORS["errors"]}


def test_timeouts_and_broken_connections() -> None:
    http, log, sent = make(httpx.ReadTimeout, httpx.ConnectError, httpx.Response(200, json={}))
    assert http.send("GET", URL, headers={}).status_code == 200 and len(sent) == 3
    assert [(e, f) for _l, e, f in log.events[:2]] == [
        ("allegro.timeout", {"method": "GET", "path": "/sale/offers", "error": "ReadTimeout"}),
        ("allegro.network_error", {"method": "GET", "path": "/sale/offers", "error": "boom"})]
    assert log.events[2][:2] == ("debug", "allegro.request") and log.events[2][2]["status"] == 200
    http, _, _ = make(httpx.ReadTimeout, attempts=2)
    with pytest.raises(TransientError, match=r"^Allegro GET /sale/offers timed out \(after 2 attempts\)$"):
        http.send("GET", URL, headers={})


def test_every_method_is_retried_but_a_single_attempt_is_one() -> None:
    http, _, sent = make(httpx.Response(500, json=ERRORS), httpx.Response(200, json={}))
    assert http.send("POST", "http://allegro.sim/auth/oauth/token", headers={}, data={"a": "b"}).status_code == 200
    assert len(sent) == 2  # the OAuth endpoint and Allegro's writes are repeated as before
    http, _, sent = make(httpx.ReadTimeout, httpx.Response(200, json={}))
    with pytest.raises(TransientError, match=r"^Allegro POST /payments/refunds timed out \(after 1 attempt\)$"):
        http.send("POST", "http://allegro.sim/payments/refunds", headers={}, content=b"{}", attempts=1)
    assert len(sent) == 1


@pytest.mark.parametrize(("header", "blocked"), [
    ("12", 12.0), (None, 60.0), ("0", 60.0), ("soon", 60.0),
    ("Wed, 21 Oct 2037 07:28:00 GMT", 60.0),  # a date (fixed: test ids must not change): the configured block
])
def test_429_blocks_the_client_id(header: str | None, blocked: float) -> None:
    headers = {"trace-id": "t-9"} | ({"Retry-After": header} if header else {})
    http, log, sent = make(httpx.Response(429, json=ERRORS, headers=headers), httpx.Response(200, json={}))
    with pytest.raises(RateLimited) as caught:
        http.send("PUT", URL, headers={})
    assert str(caught.value) == f"Allegro answered 429 to PUT /sale/offers: client id blocked for {blocked:g}s"
    assert caught.value.retry_after == blocked and http.throttle.blocks == [blocked]  # type: ignore[attr-defined]
    assert len(sent) == 1 and metric(http, "errors", "error", "429") == 1
    assert log.events == [("warning", "allegro.rate_limited", {
        "method": "PUT", "path": "/sale/offers", "block_seconds": blocked, "trace_id": "t-9",
        "errors": ERRORS["errors"]})]


@pytest.mark.parametrize(("status", "expected", "error"), [
    (200, (), None), (301, (), None), (400, (), "4xx"), (401, (), "auth"), (403, (), "auth"), (404, (404,), None),
    (408, (), "4xx"), (409, (409,), None),
])
def test_answers_below_500_go_back_to_the_caller(status: int, expected: tuple[int, ...], error: str | None) -> None:
    http, log, sent = make(httpx.Response(status, json=ERRORS, headers={"trace-id": "t-2"}))
    assert http.send("GET", URL, headers={}, expected=expected).status_code == status and len(sent) == 1
    assert metric(http, "requests", "outcome", f"{status // 100}xx") == 1
    assert sum(metric(http, "errors", "error", e) for e in ("4xx", "auth", "redirect")) == (error is not None)
    if error:
        assert metric(http, "errors", "error", error) == 1
        assert log.events == [("warning", "allegro.http_error", {"method": "GET", "path": "/sale/offers",
                                                                 "status": status, "trace_id": "t-2",
                                                                 "errors": ERRORS["errors"]})]
    else:
        assert log.events[0][:2] == ("debug", "allegro.request")
