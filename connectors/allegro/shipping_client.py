"""I/O for Ship with Allegro: the ``/shipment-management`` resources and the parcel tracking history, on the
Allegro connector's HTTP layer (``AllegroHttp``: the account's rate-limit bucket, 5xx retries, 429 blocks)
and its OAuth (``AllegroAuth``: the account's tokens). No mapping.

Differences from ``AllegroClient``: every call sends ``Accept-Language`` (an enum here, notes), the label
and protocol answer ``application/octet-stream`` (so Accept differs from Content-Type), and the command
POSTs go out ONCE (``attempts=1``): a lost answer is settled by GETting our command id, never by a blind
resend.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any
from urllib.parse import quote

import httpx

from connectors.allegro.client import AllegroHttp, TokenSource, errors_of
from connectors.allegro.shipping_mapping import BINARY_MEDIA_TYPE, PUBLIC_MEDIA_TYPE, error_text
from connectors.http import retry_after_seconds
from hub.kernel.errors import LoginNeeded, PermanentError, RetryableError

SM = "/shipment-management"
COMMAND_PATHS = {
    "create": f"{SM}/shipments/create-commands",
    "cancel": f"{SM}/shipments/cancel-commands",
    "pickup": f"{SM}/pickups/create-commands",
}


class CommandRefused(PermanentError):
    """Allegro answered 400 to a command POST (the body broke its schema); ``errors`` as it sent them."""

    def __init__(self, message: str, errors: Any):
        super().__init__(message)
        self.errors = errors


def _json(response: httpx.Response) -> Any:
    if not response.content:
        return None
    try:
        return response.json()
    except ValueError:
        return None


class ShipmentClient:
    def __init__(self, http: AllegroHttp, tokens: TokenSource, api_base: str, language: str):
        self.http = http
        self.tokens = tokens
        self.api_base = api_base.rstrip("/")
        self.language = language

    def call(
        self,
        method: str,
        path: str,
        *,
        params: Sequence[tuple[str, str]] | None = None,
        body: Any = None,
        accept: str = PUBLIC_MEDIA_TYPE,
        expected: Sequence[int] = (),
        attempts: int | None = None,
    ) -> httpx.Response:
        """One API call with the account's bearer token. A 401 gets one refreshed-token retry (revoked or
        expired early); a second 401 means the account's login is gone (``hub allegro login ACCOUNT``)."""
        content = None if body is None else json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()
        token = self.tokens.access_token()
        for retried in (False, True):
            headers = {"Accept": accept, "Authorization": f"Bearer {token}", "Accept-Language": self.language}
            if content is not None:
                headers["Content-Type"] = PUBLIC_MEDIA_TYPE
            response = self.http.send(method, self.api_base + path, headers=headers, params=params,
                                      content=content, expected=expected, attempts=attempts)
            if response.status_code != 401:
                break
            if retried:
                reason = f"Allegro rejected a freshly refreshed token on {method} {path}"
                self.tokens.login_needed(reason)
                raise LoginNeeded(reason)
            token = self.tokens.refresh_rejected(token)
        if response.status_code == 403:
            raise PermanentError(f"Allegro refused {method} {path} (403): {error_text(errors_of(response))}; check "
                                 "that the application has the allegro:api:shipments scopes and the account uses "
                                 "Ship with Allegro")
        return response

    @staticmethod
    def ok(response: httpx.Response, what: str) -> Any:
        """The JSON of a 2xx answer; a 4xx is PermanentError with Allegro's reasons; no JSON is retryable."""
        if response.status_code >= 400:
            raise PermanentError(f"Allegro {what} answered {response.status_code}: {error_text(errors_of(response))}")
        body = _json(response)
        if body is None:
            raise RetryableError(f"Allegro {what} answered {response.status_code} without JSON")
        return body

    def _get_or_none(self, path: str, what: str) -> dict[str, Any] | None:
        response = self.call("GET", path, expected=(404,))
        if response.status_code == 404:
            return None
        body = self.ok(response, what)
        if not isinstance(body, dict):
            raise RetryableError(f"Allegro {what} answered without a JSON object")
        return body

    # --- commands (create, cancel, pickup) ------------------------------------------------

    def command(self, kind: str, command_id: str) -> dict[str, Any] | None:
        """The command's status (Create/Cancel/CreatePickup CommandStatusDto); None: Allegro does not know it."""
        return self._get_or_none(f"{COMMAND_PATHS[kind]}/{quote(command_id, safe='')}",
                                 f"GET {COMMAND_PATHS[kind]}/{{commandId}}")

    def post_command(self, kind: str, body: dict[str, Any]) -> float | None:
        """Send a command ONCE; its Retry-After (seconds), if any. A 400 is CommandRefused; a lost answer
        (Unavailable) goes to the caller, who GETs the command id before sending anything again."""
        path = COMMAND_PATHS[kind]
        response = self.call("POST", path, body=body, expected=(400,), attempts=1)
        if response.status_code == 400:
            errors = errors_of(response)
            raise CommandRefused(f"Allegro refused POST {path} ({response.status_code}): {error_text(errors)}", errors)
        self.ok(response, f"POST {path}")
        return retry_after_seconds(response.headers.get("retry-after"), dates=False)

    # --- shipments ---------------------------------------------------------------------------

    def shipment(self, shipment_id: str) -> dict[str, Any] | None:
        """GET /shipment-management/shipments/{shipmentId} (ShipmentDto); None when not found."""
        return self._get_or_none(f"{SM}/shipments/{quote(shipment_id, safe='')}",
                                 f"GET {SM}/shipments/{{shipmentId}}")

    def delivery_services(self) -> dict[str, Any]:
        """GET /shipment-management/delivery-services (DeliveryServicesDto; deprecated, Q1 2027)."""
        body = self.ok(self.call("GET", f"{SM}/delivery-services"), f"GET {SM}/delivery-services")
        if not isinstance(body, dict):
            raise RetryableError(f"Allegro GET {SM}/delivery-services answered without a JSON object")
        return body

    def _binary(self, path: str, body: dict[str, Any]) -> bytes | None:
        """A POST answered with a file (200, application/octet-stream) or 204 (none): label, protocol."""
        response = self.call("POST", path, body=body, accept=BINARY_MEDIA_TYPE, expected=(400, 404))
        if response.status_code == 204:
            return None
        if response.status_code in (400, 404):
            raise PermanentError(f"Allegro POST {path} answered {response.status_code}: "
                                 f"{error_text(errors_of(response))}")
        if response.status_code != 200 or not response.content:
            raise RetryableError(f"Allegro POST {path} answered {response.status_code} without a file")
        return response.content

    def label(self, body: dict[str, Any]) -> bytes | None:
        """POST /shipment-management/label (LabelRequestDto): the file, or None (204: no label yet)."""
        return self._binary(f"{SM}/label", body)

    def protocol(self, shipment_ids: Sequence[str]) -> bytes | None:
        """POST /shipment-management/protocol (ShipmentIdsDto): the handover protocol, or None (204)."""
        return self._binary(f"{SM}/protocol", {"shipmentIds": list(shipment_ids)})

    # --- pickups -----------------------------------------------------------------------------

    def pickup_proposals(self, body: dict[str, Any]) -> Any:
        """POST /shipment-management/pickup-proposals (a read: repeating it is harmless)."""
        response = self.call("POST", f"{SM}/pickup-proposals", body=body, expected=(400,))
        return self.ok(response, f"POST {SM}/pickup-proposals")

    def pickup(self, pickup_id: str) -> dict[str, Any] | None:
        """GET /shipment-management/pickups/{pickupId} (PickupDto); None when not found."""
        return self._get_or_none(f"{SM}/pickups/{quote(pickup_id, safe='')}", f"GET {SM}/pickups/{{pickupId}}")

    # --- tracking ------------------------------------------------------------------------------

    def tracking(self, carrier_id: str, waybills: Sequence[str]) -> Any:
        """GET /order/carriers/{carrierId}/tracking?waybill=...: up to 20 waybills of one carrier."""
        path = f"/order/carriers/{quote(carrier_id, safe='')}/tracking"
        response = self.call("GET", path, params=[("waybill", w) for w in waybills], expected=(400,))
        return self.ok(response, f"GET {path}")
