"""HTTP I/O with InPost ShipX: Bearer auth, throttling, retries and ShipX's error bodies; no mapping.

``ShipXClient`` is the shared HTTP layer (``connectors.http``) with ShipX's rules. Reads, PUTs and DELETEs are
retried on 5xx/timeouts; a POST (a shipment, a dispatch order) gets one attempt, because a lost answer may mean
ShipX created it: the carrier looks it up by our reference before sending again.

ShipX answers errors as ``{"status", "error", "message", "details"}`` (e.g. ``invalid_action`` with
``details.shipment_status``, docs.inpost24.com/pages/viewpage.action?pageId=12091523); some pages show
``description`` in place of ``message`` (the Statuses page), so both are read.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping
from typing import Any

import httpx
from tenacity import wait_random_exponential
from tenacity.wait import WaitBaseT

from connectors.http import HttpClient, Params, RequestRefused, Unavailable
from hub.kernel.errors import LoginNeeded, PermanentError, RetryableError
from hub.platform.config import Secret
from hub.platform.ratelimit import Throttle

TITLE = "InPost ShipX"
DEFAULT_RETRY_WAIT: WaitBaseT = wait_random_exponential(multiplier=0.5, max=8.0)


class ShipXRefused(RequestRefused):
    """A 4xx ShipX will answer again the same way; ``code`` is ShipX's ``error`` key (validation_failed,
    invalid_action, resource_not_found, ...) and ``details`` its details object."""

    def __init__(self, message: str, *, status: int, code: str | None, details: Any = None):
        super().__init__(message, status=status, code=code)
        self.details = details


class ShipXUnavailable(Unavailable):
    """5xx, timeouts and broken connections after the last attempt (the request may have been applied)."""


def error_body(response: httpx.Response) -> dict[str, Any]:
    """ShipX's error object; a proxy's HTML page becomes a short text message."""
    try:
        body = response.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        return {"error": None, "message": response.text[:200].strip() or None, "details": None}
    if not isinstance(body, Mapping):
        return {"error": None, "message": str(body)[:200], "details": None}
    message = body.get("message") or body.get("description")
    return {"error": body.get("error"), "message": message, "details": body.get("details")}


def flatten_details(details: Any, prefix: str = "") -> list[str]:
    """``{"receiver": {"phone": ["required"]}}`` as ``["receiver.phone: required"]`` (nested lists by index)."""
    if isinstance(details, Mapping):
        out: list[str] = []
        for key, value in details.items():
            out.extend(flatten_details(value, f"{prefix}.{key}" if prefix else str(key)))
        return out
    if isinstance(details, list):
        if all(not isinstance(v, Mapping | list) for v in details):
            return [f"{prefix}: {', '.join(str(v) for v in details)}"] if details else []
        out = []
        for n, value in enumerate(details):
            out.extend(flatten_details(value, f"{prefix}[{n}]"))
        return out
    if details is None:
        return []
    return [f"{prefix}: {details}" if prefix else str(details)]


def describe(status: int, body: Mapping[str, Any]) -> str:
    parts = [f"HTTP {status}"]
    if body.get("error"):
        parts.append(str(body["error"]))
    if body.get("message"):
        parts.append(str(body["message"]).strip())
    text = ": ".join(parts)
    details = flatten_details(body.get("details"))
    if details:
        text += " (" + "; ".join(details[:8]) + (", ..." if len(details) > 8 else "") + ")"
    return text


class ShipXClient(HttpClient):
    """One ShipX account (a token); paths are below the API's address (``/v1/...``)."""

    log_prefix = "inpost"
    title = TITLE
    retry_statuses = frozenset({408})
    auth_statuses = frozenset({401, 403})
    redirects_are_errors = True
    unavailable_class = ShipXUnavailable

    def __init__(
        self,
        connector: str,
        base_url: str,
        token: Secret,
        *,
        throttle: Throttle,
        log: Any,
        transport: httpx.BaseTransport | None = None,
        timeout: float = 30.0,
        connect_timeout: float = 10.0,
        attempts: int = 3,
        retry_wait: WaitBaseT | None = None,
    ):
        super().__init__(
            connector=connector, throttle=throttle, log=log, timeout=httpx.Timeout(timeout, connect=connect_timeout),
            attempts=attempts, wait=retry_wait if retry_wait is not None else DEFAULT_RETRY_WAIT,
            retry_after_default=30.0, base_url=base_url.rstrip("/"),
            headers={"Authorization": f"Bearer {token.get()}", "Accept": "application/json",
                     "X-User-Agent": "hub", "X-User-Agent-Version": "1"},
            transport=transport,
        )

    def error_code(self, response: httpx.Response) -> str | None:
        code = error_body(response).get("error")
        return str(code) if code else None

    def answer_reason(self, answer: Any) -> str:
        return describe(answer.status, error_body(answer.response))

    def request(
        self, method: str, path: str, *, params: Params | None = None, json_body: Any = None,
        retry: bool | None = None, expected: Collection[int] = (),
    ) -> httpx.Response:
        """The response of a 2xx (or an ``expected`` status); any other 4xx raises ShipXRefused, a 401
        LoginNeeded, a 3xx PermanentError."""
        response = self.send(method, path, params=params, json=json_body, retry=retry, expected=expected)
        status = response.status_code
        if status < 300 or status in expected:
            return response
        body = error_body(response)
        if status == 401:
            raise LoginNeeded(f"{TITLE} rejected the API token ({describe(status, body)}): generate a new token "
                              "in Manager Paczek (My account > API) and update the connector's token")
        if 300 <= status < 400:
            raise PermanentError(f"{TITLE} {method} {path}: redirected to {response.headers.get('Location')!r}; "
                                 "check the connector's api_url")
        raise ShipXRefused(f"{TITLE} {method} {path}: {describe(status, body)}", status=status,
                           code=str(body["error"]) if body.get("error") else None, details=body.get("details"))

    def json(
        self, method: str, path: str, *, params: Params | None = None, json_body: Any = None,
        retry: bool | None = None,
    ) -> Any:
        """The JSON of a 2xx answer (see ``decode``)."""
        return self.decode(self.request(method, path, params=params, json_body=json_body, retry=retry), method, path)

    def decode(self, response: httpx.Response, method: str, path: str) -> Any:
        """An answer's JSON; one that is not JSON is a RetryableError naming the call."""
        try:
            return response.json()
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            self.log.warning("inpost.not_json", method=method, path=path, status=response.status_code,
                             body=response.text[:200])
            raise RetryableError(f"{TITLE} {method} {path}: HTTP {response.status_code} without a JSON body") from exc
