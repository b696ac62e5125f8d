"""HTTP I/O with Allegro: media types, rate limit, retries, metrics and error logging. No mapping.

``AllegroHttp`` is the shared HTTP layer (``connectors.http``) with Allegro's rules: it waits for the shared
per-client-id bucket before every attempt, turns a 429 into a block of the whole bucket (the vendor blocks the
client id for a minute and lengthens the block for every call made during it, so nobody may keep calling),
retries 5xx and timeouts a few times, and reports every attempt to the metrics. Every status below 500 but 429
goes back to the caller. ``AllegroClient`` adds the bearer token and the REST resources the port uses.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, NoReturn, Protocol
from urllib.parse import quote

import httpx
from tenacity import wait_exponential_jitter

from connectors.allegro.mapping import (
    BETA_MEDIA_TYPE,
    COMMAND_PATHS,
    MAX_OFFERS_PAGE,
    MAX_TASKS_PAGE,
    PUBLIC_MEDIA_TYPE,
    CommandKind,
)
from connectors.http import Answer, AttemptFailed, HttpClient, RateLimited, Unavailable, retry_after_seconds
from hub.kernel.errors import LoginNeeded, PermanentError, RetryableError
from hub.platform.ratelimit import Throttle


class TransientError(Unavailable):
    """5xx or timeouts on every attempt: the request may or may not have been applied (a lost answer)."""


class CommandRejected(Exception):
    """The vendor refused a command body (400/422): its offers fail, the other commands go on."""


def _json(response: httpx.Response) -> Any:
    if not response.content:
        return None
    try:
        return response.json()
    except ValueError:
        return None


def errors_of(response: httpx.Response) -> list[Any] | None:
    body = _json(response)
    if isinstance(body, dict) and isinstance(body.get("errors"), list):
        return body["errors"]
    return None


class AllegroHttp(HttpClient):
    """Every request the connector makes (REST and OAuth) goes through ``send``; it retries every method (the
    writes it repeats are idempotent by ``commandId`` or absolute; a POST that must not land twice passes
    ``attempts=1``) and returns every answer below 500 but 429, which 403 and 401 count as auth errors."""

    log_prefix = "allegro"
    title = "Allegro"
    auth_statuses = frozenset({401, 403})
    redirects_are_errors = False
    repeat_writes = True

    def __init__(
        self,
        *,
        connector: str,
        throttle: Throttle,
        log: Any,
        timeout: float = 30.0,
        attempts: int = 3,
        backoff: float = 0.5,
        block_seconds: float = 60.0,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ):
        super().__init__(
            connector=connector, throttle=throttle, log=log, timeout=timeout, attempts=attempts,
            wait=wait_exponential_jitter(multiplier=backoff, max=max(backoff, 30.0), jitter=backoff),
            sleep=sleep, retry_after_default=block_seconds, transport=transport,
        )
        self.backoff = backoff
        self.block_seconds = block_seconds

    def retry_after(self, response: httpx.Response) -> float | None:
        # seconds only, and 0 means none: an HTTP date is rare enough to fall back to the configured block
        return retry_after_seconds(response.headers.get("retry-after"), dates=False) or None

    def timeout_reason(self, method: str, path: str, exc: httpx.TimeoutException) -> str:
        return f"{method} {path} timed out"

    def network_reason(self, method: str, path: str, exc: httpx.TransportError) -> str:
        return f"{method} {path} failed: {exc}"

    def answer_reason(self, answer: Answer) -> str:
        trace_id = answer.response.headers.get("trace-id")
        return f"{answer.method} {answer.path} answered {answer.status} (trace-id {trace_id})"

    def rate_limited(self, answer: Answer) -> RetryableError:
        return RateLimited(f"Allegro answered 429 to {answer.method} {answer.path}: client id blocked for "
                           f"{answer.block_seconds:g}s", retry_after=answer.block_seconds)

    def give_up(self, failure: AttemptFailed, attempts: int) -> NoReturn:
        raise TransientError(f"Allegro {failure} (after {attempts} attempt{'s' if attempts > 1 else ''})",
                             status=failure.status, code=failure.code) from None

    def log_answer(self, answer: Answer) -> None:
        response = answer.response
        trace_id = response.headers.get("trace-id")
        took_ms = round(answer.elapsed * 1000, 1)
        if answer.kind == "rate_limited":
            self.log.warning("allegro.rate_limited", method=answer.method, path=answer.path,
                             block_seconds=answer.block_seconds, trace_id=trace_id, errors=errors_of(response))
        elif answer.kind == "retry":
            self.log.warning("allegro.server_error", method=answer.method, path=answer.path, status=answer.status,
                             trace_id=trace_id, errors=errors_of(response), took_ms=took_ms)
        elif answer.kind == "error":
            self.log.warning("allegro.http_error", method=answer.method, path=answer.path, status=answer.status,
                             trace_id=trace_id, errors=errors_of(response) or response.text[:500])
        else:
            self.log.debug("allegro.request", method=answer.method, path=answer.path, status=answer.status,
                           trace_id=trace_id, took_ms=took_ms)


class TokenSource(Protocol):
    def access_token(self) -> str: ...

    def refresh_rejected(self, rejected: str) -> str: ...

    def login_needed(self, reason: str) -> None: ...


class AllegroClient:
    """The REST resources the channel uses, with the public media type and a bearer token."""

    def __init__(self, http: AllegroHttp, tokens: TokenSource, api_base: str):
        self.http = http
        self.tokens = tokens
        self.api_base = api_base.rstrip("/")
        self.sent = 0  # API calls made (a push reports its requests against the fewest it could take)

    def request(
        self,
        method: str,
        path: str,
        *,
        params: Sequence[tuple[str, str]] | None = None,
        body: Any = None,
        expected: Sequence[int] = (),
        media_type: str = PUBLIC_MEDIA_TYPE,
        attempts: int | None = None,
    ) -> httpx.Response:
        """One API call. A 401 gets one refreshed-token retry (the token may have been revoked or
        expired early); a second 401 means the login is gone."""
        content = None if body is None else json.dumps(body, separators=(",", ":")).encode()
        token = self.tokens.access_token()
        for retried in (False, True):
            headers = {"Accept": media_type, "Authorization": f"Bearer {token}"}
            if content is not None:
                headers["Content-Type"] = media_type
            self.sent += 1
            response = self.http.send(method, self.api_base + path, headers=headers, params=params,
                                      content=content, expected=expected, attempts=attempts)
            if response.status_code != 401 or 401 in expected:
                break
            if retried:
                reason = f"Allegro rejected a freshly refreshed token on {method} {path}"
                self.tokens.login_needed(reason)
                raise LoginNeeded(reason)
            token = self.tokens.refresh_rejected(token)
        if response.status_code == 403 and 403 not in expected:
            raise PermanentError(f"Allegro refused {method} {path} (403): {errors_of(response) or 'forbidden'}; "
                                 "check the application's scopes and that the offers belong to this account")
        return response

    # --- offers ------------------------------------------------------------------------

    def offers_page(self, *, offset: int, limit: int = MAX_OFFERS_PAGE,
                    statuses: Sequence[str] = (), offer_ids: Sequence[str] = ()) -> dict[str, Any]:
        params = [("limit", str(limit)), ("offset", str(offset))]
        params += [("publication.status", s) for s in statuses]
        params += [("offer.id", o) for o in offer_ids]
        response = self.request("GET", "/sale/offers", params=params)
        return self._ok(response, "GET /sale/offers")

    def product_offer(self, offer_id: str) -> dict[str, Any] | None:
        """GET /sale/product-offers/{offerId} (SaleProductOfferResponseV1); None when the offer is gone."""
        return self._get_or_none(f"/sale/product-offers/{quote(offer_id, safe='')}")

    def product(self, product_id: str) -> dict[str, Any] | None:
        """GET /sale/products/{productId} (SaleProductDto); None when the product is not found."""
        return self._get_or_none(f"/sale/products/{quote(product_id, safe='')}")

    def _get_or_none(self, path: str) -> dict[str, Any] | None:
        response = self.request("GET", path, expected=(404,))
        if response.status_code == 404:
            return None
        return self._ok(response, f"GET {path}")

    def patch_offer(self, offer_id: str, body: Mapping[str, Any]) -> httpx.Response:
        """PATCH /sale/product-offers/{offerId}: 200 done, 202 accepted (Location to poll), 409 an
        earlier edit still processing, 400/404/422 refused; the caller reads which."""
        return self.request("PATCH", f"/sale/product-offers/{offer_id}", body=body,
                            expected=(202, 400, 404, 409, 422))

    def operation(self, location: str) -> httpx.Response:
        """GET the Location of an accepted PATCH: 202 still processing, 303 done."""
        path = location.removeprefix(self.api_base)
        return self.request("GET", path, expected=(202, 303, 404))

    # --- batch commands ----------------------------------------------------------------

    def get_command(self, kind: CommandKind, command_id: str) -> dict[str, Any] | None:
        """The command's GeneralReport, or None when the vendor never registered it."""
        path = f"{COMMAND_PATHS[kind]}/{command_id}"
        response = self.request("GET", path, expected=(404,))
        if response.status_code == 404:
            return None
        return self._ok(response, f"GET {path}")

    def put_command(self, kind: CommandKind, command_id: str, body: Mapping[str, Any]) -> dict[str, Any] | None:
        """Register a command; None when the id was already used (an earlier attempt sent it)."""
        path = f"{COMMAND_PATHS[kind]}/{command_id}"
        response = self.request("PUT", path, body=body, expected=(409, 400, 422))
        if response.status_code == 409:
            return None
        if response.status_code in (400, 422):
            raise CommandRejected(f"Allegro rejected {kind} command {command_id} ({response.status_code}): "
                                  f"{errors_of(response) or response.text[:300]}")
        return self._ok(response, f"PUT {path}")

    def command_tasks(self, kind: CommandKind, command_id: str) -> dict[str, Any]:
        path = f"{COMMAND_PATHS[kind]}/{command_id}/tasks"
        response = self.request("GET", path, params=[("limit", str(MAX_TASKS_PAGE)), ("offset", "0")])
        return self._ok(response, f"GET {path}")

    # --- orders ------------------------------------------------------------------------

    def order_event_stats(self) -> dict[str, Any]:
        """GET /order/event-stats (OrderEventStats): the journal's latest event, if any."""
        return self._ok(self.request("GET", "/order/event-stats"), "GET /order/event-stats")

    def order_events(self, *, after: str | None, limit: int, types: Sequence[str]) -> dict[str, Any]:
        """GET /order/events (OrderEventsList): events after ``after`` (None: from the journal's start)."""
        params = [("from", after)] if after else []
        params += [("type", t) for t in types]
        params.append(("limit", str(limit)))
        return self._ok(self.request("GET", "/order/events", params=params), "GET /order/events")

    def checkout_form(self, form_id: str) -> dict[str, Any] | None:
        """GET /order/checkout-forms/{id} (CheckoutForm); None when the order is not found."""
        return self._get_or_none(f"/order/checkout-forms/{quote(form_id, safe='')}")

    def checkout_forms_page(self, *, updated_gte: str, offset: int, limit: int) -> dict[str, Any]:
        """GET /order/checkout-forms (CheckoutForms) changed at or after ``updated_gte``, oldest change first."""
        params = [("updatedAt.gte", updated_gte), ("sort", "updatedAt"), ("limit", str(limit)),
                  ("offset", str(offset))]
        return self._ok(self.request("GET", "/order/checkout-forms", params=params), "GET /order/checkout-forms")

    def set_fulfillment(self, form_id: str, status: str, revision: str | None) -> httpx.Response:
        """PUT /order/checkout-forms/{id}/fulfillment: 204, or 409 (stale revision), 404, 400/422 for the caller."""
        params = [("checkoutForm.revision", revision)] if revision else []
        return self.request("PUT", f"/order/checkout-forms/{quote(form_id, safe='')}/fulfillment", params=params,
                            body={"status": status}, expected=(400, 404, 409, 422))

    # --- customer returns (beta media type) and refunds -------------------------------

    def customer_returns_page(self, params: Sequence[tuple[str, str]]) -> dict[str, Any]:
        """GET /order/customer-returns (CustomerReturnResponse)."""
        response = self.request("GET", "/order/customer-returns", params=params, media_type=BETA_MEDIA_TYPE)
        return self._ok(response, "GET /order/customer-returns")

    def customer_return(self, return_id: str) -> dict[str, Any] | None:
        """GET /order/customer-returns/{customerReturnId} (CustomerReturn); None when not found."""
        path = f"/order/customer-returns/{quote(return_id, safe='')}"
        response = self.request("GET", path, expected=(404,), media_type=BETA_MEDIA_TYPE)
        return None if response.status_code == 404 else self._ok(response, f"GET {path}")

    def reject_customer_return(self, return_id: str, body: Mapping[str, Any]) -> httpx.Response:
        """POST /order/customer-returns/{id}/rejection: 200 (CustomerReturn), or 400/404/422 for the caller."""
        return self.request("POST", f"/order/customer-returns/{quote(return_id, safe='')}/rejection", body=body,
                            expected=(400, 404, 422), media_type=BETA_MEDIA_TYPE)

    def refunds_page(self, *, order_id: str, offset: int, limit: int) -> dict[str, Any]:
        """GET /payments/refunds?order.id= (the refunds made for one order)."""
        params = [("order.id", order_id), ("limit", str(limit)), ("offset", str(offset))]
        return self._ok(self.request("GET", "/payments/refunds", params=params), "GET /payments/refunds")

    def create_refund(self, body: Mapping[str, Any]) -> httpx.Response:
        """POST /payments/refunds, ONE attempt: a lost answer is resolved by the caller's look-up, never by
        a blind resend. 200 (RefundDetails), or 400/404/409/422 for the caller."""
        return self.request("POST", "/payments/refunds", body=body, expected=(400, 404, 409, 422), attempts=1)

    @staticmethod
    def _ok(response: httpx.Response, what: str) -> dict[str, Any]:
        if response.status_code >= 400:
            raise PermanentError(f"Allegro {what} answered {response.status_code}: "
                                 f"{errors_of(response) or response.text[:300]}")
        body = _json(response)
        if not isinstance(body, dict):
            raise RetryableError(f"Allegro {what} answered {response.status_code} without a JSON object")
        return body
