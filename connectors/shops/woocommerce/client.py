"""HTTP I/O with one shop's REST API v3: auth, throttling, retries and error classes; no mapping.

``WooClient`` is the shared HTTP layer (``connectors.http``) with WooCommerce's rules. Every attempt first
takes a token from the connector's throttle. A 429 blocks the throttle for the shop's Retry-After (seconds
or an HTTP date) and hands the job back to the queue; 5xx answers, 408, timeouts and dropped connections are
retried here a few times (the calls we make are reads or absolute-value writes, so a repeat is safe) before
the queue gets a RetryableError; 401 means the keys are wrong or were revoked, which only an operator can fix
(LoginNeeded). A write that is not safe to repeat (a refund) is sent with ``retry=False``: one attempt, and
the caller looks for what it did before trying again.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import httpx
from tenacity import wait_random_exponential
from tenacity.wait import WaitBaseT

from connectors.http import Answer, HttpClient, RequestRefused, Unavailable
from connectors.http import retry_after_seconds as retry_after_seconds
from hub.kernel.errors import LoginNeeded, PermanentError, RetryableError
from hub.platform.config import Secret
from hub.platform.ratelimit import Throttle

API_PREFIX = "/wp-json/wc/v3"
DEFAULT_RETRY_AFTER = 30.0  # seconds, when a 429 carries no usable Retry-After
DEFAULT_RETRY_WAIT: WaitBaseT = wait_random_exponential(multiplier=0.5, max=8.0)  # full jitter


class WooRequestError(RequestRefused):
    """A 4xx the shop will answer again the same way; ``code`` is WooCommerce's error code."""

    def __init__(self, message: str, *, status: int, code: str | None):
        super().__init__(message, status=status, code=code)


class WooUnavailable(Unavailable):
    """5xx, timeouts and broken connections after the last attempt; ``status`` and ``code`` (WooCommerce's
    error code) are set when the shop answered, so a caller can tell a WordPress error from a gateway's."""


def error_body(response: httpx.Response) -> dict[str, Any]:
    """The shop's ``{code, message, data}``; a proxy's HTML page becomes a short text message."""
    try:
        body = response.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        return {"code": None, "message": response.text[:200].strip(), "data": None}
    if isinstance(body, Mapping):
        return {"code": body.get("code"), "message": body.get("message"), "data": body.get("data")}
    return {"code": None, "message": str(body)[:200], "data": None}


def _describe(status: int, body: Mapping[str, Any]) -> str:
    parts = [f"HTTP {status}"]
    if body.get("code"):
        parts.append(str(body["code"]))
    if body.get("message"):
        parts.append(str(body["message"]))
    return ": ".join(parts)


class WooClient(HttpClient):
    """Thin client over one shop; ``get``/``post``/``put`` take paths below ``/wp-json/wc/v3``."""

    log_prefix = "woocommerce"
    title = "WooCommerce"
    retry_statuses = frozenset({408})
    auth_statuses = frozenset({401})
    redirects_are_errors = True
    unavailable_class = WooUnavailable

    def __init__(
        self,
        connector: str,
        base_url: str,
        consumer_key: str,
        consumer_secret: Secret,
        *,
        throttle: Throttle,
        log: Any,
        transport: httpx.BaseTransport | None = None,
        timeout: float = 60.0,
        connect_timeout: float = 10.0,
        attempts: int = 3,
        retry_wait: WaitBaseT | None = None,
    ):
        super().__init__(
            connector=connector, throttle=throttle, log=log, timeout=httpx.Timeout(timeout, connect=connect_timeout),
            attempts=attempts, wait=retry_wait if retry_wait is not None else DEFAULT_RETRY_WAIT,
            retry_after_default=DEFAULT_RETRY_AFTER, base_url=base_url.rstrip("/") + API_PREFIX,
            auth=httpx.BasicAuth(consumer_key, consumer_secret.get()),
            headers={"Accept": "application/json", "User-Agent": "hub-woocommerce/1"}, transport=transport,
        )
        self.retry_wait = self.wait

    def get(self, path: str, params: Mapping[str, str | int] | None = None) -> tuple[Any, httpx.Headers]:
        return self._call("GET", path, params=params)

    def post(self, path: str, body: Mapping[str, Any], *, retry: bool = True) -> Any:
        """``retry=False`` for a write that must not land twice: one attempt, whatever happens."""
        data, _headers = self._call("POST", path, json_body=body, retry=retry)
        return data

    def put(self, path: str, body: Mapping[str, Any]) -> Any:
        data, _headers = self._call("PUT", path, json_body=body)
        return data

    def _call(
        self, method: str, path: str, *, params: Mapping[str, str | int] | None = None,
        json_body: Mapping[str, Any] | None = None, retry: bool = True,
    ) -> tuple[Any, httpx.Headers]:
        response = self.send(method, path, params=params, json=json_body, retry=retry)
        status = response.status_code
        if status < 300:
            try:
                return response.json(), response.headers
            except (json.JSONDecodeError, UnicodeDecodeError) as exc:
                # WordPress plugins and caches sometimes answer 200 with an HTML page
                self.log.warning("woocommerce.not_json", method=method, path=path, status=status,
                                 body=response.text[:200])
                raise RetryableError(f"WooCommerce {method} {path}: HTTP {status} without a JSON body") from exc
        body = error_body(response)
        if status == 401:
            raise LoginNeeded(f"WooCommerce rejected the consumer key/secret ({_describe(status, body)}): "
                              "generate new REST API keys with read/write access and update the config")
        if 300 <= status < 400:
            where = response.headers.get("Location")
            raise PermanentError(f"WooCommerce {method} {path}: redirected "
                                 + (f"to {where}" if where else "without saying where (no Location header)")
                                 + "; set base_url to the shop's final address")
        hint = ""
        if body.get("code") == "rest_no_route" and path in ("/products", "/orders"):
            hint = (" (is WooCommerce active at base_url, with pretty permalinks on? the REST API lives under "
                    "/wp-json/wc/v3)")
        raise WooRequestError(f"WooCommerce {method} {path}: {_describe(status, body)}{hint}", status=status,
                              code=body.get("code"))

    # --- the shared layer's hooks ------------------------------------------------------

    def error_code(self, response: httpx.Response) -> str | None:
        return error_body(response).get("code")

    def answer_reason(self, answer: Answer) -> str:
        return _describe(answer.status, error_body(answer.response))

    def log_answer(self, answer: Answer) -> None:
        if answer.kind == "ok":
            return
        self.log.warning("woocommerce.error", method=answer.method, path=answer.path, status=answer.status,
                         elapsed_ms=round(answer.elapsed * 1000), error=error_body(answer.response))
