"""HTTP I/O with one shop's REST API v3: auth, throttling, retries and error classes; no mapping.

Every attempt first takes a token from the connector's throttle. A 429 blocks
the throttle for the shop's Retry-After and hands the job back to the queue;
5xx answers, timeouts and dropped connections are retried here a few times
(the calls we make are reads or absolute-value writes, so a repeat is safe)
before the queue gets a RetryableError; 401 means the keys are wrong or were
revoked, which only an operator can fix (LoginNeeded). A write that is not
safe to repeat (a refund) is sent with ``retry=False``: one attempt, and the
caller looks for what it did before trying again.
"""

from __future__ import annotations

import email.utils
import json
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import httpx
from tenacity import Retrying, retry_if_exception_type, stop_after_attempt, wait_random_exponential
from tenacity.wait import WaitBaseT

from hub.kernel.errors import LoginNeeded, PermanentError, RetryableError
from hub.platform.config import Secret
from hub.platform.metrics import connector_request
from hub.platform.ratelimit import Throttle

API_PREFIX = "/wp-json/wc/v3"
DEFAULT_RETRY_AFTER = 30.0  # seconds, when a 429 carries no usable Retry-After
DEFAULT_RETRY_WAIT: WaitBaseT = wait_random_exponential(multiplier=0.5, max=8.0)  # full jitter


class WooRequestError(PermanentError):
    """A 4xx the shop will answer again the same way; ``code`` is WooCommerce's error code."""

    def __init__(self, message: str, *, status: int, code: str | None):
        super().__init__(message)
        self.status = status
        self.code = code


class WooUnavailable(RetryableError):
    """5xx, timeouts and broken connections after the last attempt; ``status`` and ``code`` (WooCommerce's
    error code) are set when the shop answered, so a caller can tell a WordPress error from a gateway's."""

    def __init__(self, message: str, *, status: int | None = None, code: str | None = None):
        super().__init__(message)
        self.status = status
        self.code = code


class _Transient(Exception):
    """A failure worth another attempt within this call (5xx, timeout, broken connection)."""

    def __init__(self, message: str, *, status: int | None = None, code: str | None = None):
        super().__init__(message)
        self.status = status
        self.code = code


def retry_after_seconds(value: str | None, *, now: datetime | None = None) -> float | None:
    """Retry-After as seconds: either delta-seconds or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


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


class WooClient:
    """Thin client over one shop; ``get``/``post`` take paths below ``/wp-json/wc/v3``."""

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
        self.connector = connector
        self.throttle = throttle
        self.log = log
        self.attempts = attempts
        self.retry_wait = retry_wait if retry_wait is not None else DEFAULT_RETRY_WAIT
        self._http = httpx.Client(
            base_url=base_url.rstrip("/") + API_PREFIX,
            auth=httpx.BasicAuth(consumer_key, consumer_secret.get()),
            transport=transport,
            timeout=httpx.Timeout(timeout, connect=connect_timeout),
            headers={"Accept": "application/json", "User-Agent": "hub-woocommerce/1"},
            follow_redirects=False,  # a redirected POST would silently turn into a GET
        )

    def close(self) -> None:
        self._http.close()

    def get(self, path: str, params: Mapping[str, str | int] | None = None) -> tuple[Any, httpx.Headers]:
        return self._call("GET", path, params=params)

    def post(self, path: str, body: Mapping[str, Any], *, retry: bool = True) -> Any:
        """``retry=False`` for a write that must not land twice: one attempt, whatever happens."""
        data, _headers = self._call("POST", path, json_body=body, attempts=None if retry else 1)
        return data

    def put(self, path: str, body: Mapping[str, Any]) -> Any:
        data, _headers = self._call("PUT", path, json_body=body)
        return data

    def _call(
        self, method: str, path: str, *, params: Mapping[str, str | int] | None = None,
        json_body: Mapping[str, Any] | None = None, attempts: int | None = None,
    ) -> tuple[Any, httpx.Headers]:
        attempts = attempts or self.attempts
        retrying = Retrying(
            stop=stop_after_attempt(attempts), wait=self.retry_wait,
            retry=retry_if_exception_type(_Transient), reraise=True,
        )
        try:
            for attempt in retrying:
                with attempt:
                    return self._once(method, path, params, json_body)
        except _Transient as exc:
            tries = f"after {attempts} attempts" if attempts > 1 else "not retried: the request may have landed"
            raise WooUnavailable(f"WooCommerce {method} {path}: {exc} ({tries})", status=exc.status,
                                 code=exc.code) from exc
        raise AssertionError("unreachable")  # pragma: no cover

    def _once(
        self, method: str, path: str, params: Mapping[str, str | int] | None, json_body: Mapping[str, Any] | None,
    ) -> tuple[Any, httpx.Headers]:
        self.throttle.wait()
        started = time.monotonic()
        try:
            response = self._http.request(method, path, params=params, json=json_body)
        except httpx.TimeoutException as exc:
            connector_request(self.connector, "timeout", "timeout")
            self.log.warning("woocommerce.timeout", method=method, path=path, error=type(exc).__name__)
            raise _Transient(f"timed out ({type(exc).__name__})") from exc
        except httpx.TransportError as exc:
            connector_request(self.connector, "network", "network")
            self.log.warning("woocommerce.network_error", method=method, path=path, error=str(exc))
            raise _Transient(f"network error: {exc}") from exc
        status = response.status_code
        elapsed_ms = round((time.monotonic() - started) * 1000)
        if status < 300:
            connector_request(self.connector, "2xx")
            try:
                return response.json(), response.headers
            except (json.JSONDecodeError, UnicodeDecodeError) as exc:
                # WordPress plugins and caches sometimes answer 200 with an HTML page
                self.log.warning("woocommerce.not_json", method=method, path=path, status=status,
                                 body=response.text[:200])
                raise RetryableError(f"WooCommerce {method} {path}: HTTP {status} without a JSON body") from exc
        body = error_body(response)
        self.log.warning("woocommerce.error", method=method, path=path, status=status, elapsed_ms=elapsed_ms,
                         error=body)
        if status == 429:
            connector_request(self.connector, "4xx", "429")
            seconds = retry_after_seconds(response.headers.get("Retry-After"))
            seconds = DEFAULT_RETRY_AFTER if seconds is None else seconds
            self.throttle.block(seconds)
            raise RetryableError(f"WooCommerce {method} {path}: {_describe(status, body)}", retry_after=seconds)
        if status >= 500 or status == 408:
            connector_request(self.connector, "5xx" if status >= 500 else "4xx", "5xx" if status >= 500 else "timeout")
            raise _Transient(_describe(status, body), status=status, code=body.get("code"))
        if status == 401:
            connector_request(self.connector, "4xx", "auth")
            raise LoginNeeded(f"WooCommerce rejected the consumer key/secret ({_describe(status, body)}): "
                              "generate new REST API keys with read/write access and update the config")
        if 300 <= status < 400:
            connector_request(self.connector, "3xx", "redirect")
            raise PermanentError(f"WooCommerce {method} {path}: redirected to {response.headers.get('Location')}; "
                                 "set base_url to the shop's final address")
        connector_request(self.connector, "4xx", "4xx")
        raise WooRequestError(f"WooCommerce {method} {path}: {_describe(status, body)}", status=status,
                              code=body.get("code"))
