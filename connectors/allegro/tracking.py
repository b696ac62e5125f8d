"""The TrackingChannel port for one Allegro account (mixed into AllegroChannel): a parcel's tracking
numbers on the buyer's order, ``POST /order/checkout-forms/{id}/shipments``.

Exactly once per waybill, whatever the retries: every call first reads the order's shipments
(``GET`` on the same path) and posts only the waybills it does not show. That list also holds what
others attached: the seller in Moje Allegro, the carrier, and Allegro itself, which attaches the
parcels of its own shipping ("Wysyłam z Allegro") and makes a duplicate when the same waybill is
posted again (allegro-api #11643, shared/notes/allegro.md). A notice for such a parcel
(``booked_by_channel``) is therefore only checked, never posted.

The POST goes out one attempt at a time (the HTTP layer would otherwise repeat it on a 5xx or a
timeout): a lost answer becomes a RetryableError, and the queue's next call finds the waybill in
the list if the first POST landed.

The carrier id comes from ``GET /order/carriers`` (the resource may be cached, says the spec),
kept for ``CARRIERS_TTL`` seconds or what the answer's ``Cache-Control: max-age`` allows.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import quote

from connectors.allegro.client import AllegroClient, errors_of
from connectors.allegro.mapping import api_error_text
from connectors.allegro.options import AllegroOptions
from connectors.allegro.order_mapping import (
    carrier_for,
    line_item_ids,
    notice_waybills,
    shipment_body,
    shown_waybills,
    waybill_key,
)
from hub.kernel.errors import PermanentError, RetryableError
from hub.kernel.ports.channel import TrackingNotice

CARRIERS_TTL = 3600.0  # seconds the carrier list is trusted when its answer names no max-age
_MAX_AGE = re.compile(r"(?:^|[,\s])max-age\s*=\s*(\d+)", re.IGNORECASE)


def _max_age(cache_control: str | None) -> float | None:
    found = _MAX_AGE.search(cache_control or "")
    return float(found.group(1)) if found else None


class AllegroTracking:
    """add_tracking; expects the attributes AllegroChannel sets."""

    name: str
    options: AllegroOptions
    client: AllegroClient
    log: Any
    _clock: Callable[[], float]

    def _init_tracking(self) -> None:
        self._carriers: tuple[list[dict[str, Any]], float] | None = None  # (carriers, valid until)
        self._carriers_lock = threading.Lock()

    def add_tracking(self, notice: TrackingNotice, *, idempotency_key: str) -> None:
        """Attach the notice's waybills the order does not show yet, each to every line of the order."""
        order_id = notice.order_external_id
        try:
            waybills = notice_waybills(notice.tracking_numbers)
        except ValueError as exc:
            raise PermanentError(f"Allegro order {order_id}: {exc}") from exc
        shown = self._shown_waybills(order_id)
        missing = [w for w in waybills if waybill_key(w) not in shown]
        if not missing:
            self.log.info("allegro.tracking_shown", order=order_id, waybills=waybills, key=idempotency_key)
            return
        if notice.booked_by_channel:
            # Allegro attaches its own shipping's parcels; posting them would make duplicates
            self.log.warning("allegro.tracking_not_attached_yet", order=order_id, waybills=missing,
                             operator=notice.operator, key=idempotency_key)
            return
        form = self.client.checkout_form(order_id)
        if form is None:
            raise PermanentError(f"Allegro has no order {order_id} for {self.name}")
        lines = line_item_ids(form)
        if not lines:
            raise PermanentError(f"Allegro order {order_id} has no line items to attach a parcel to")
        carrier_id, carrier_name = carrier_for(notice.operator, self._carrier_list())
        for waybill in missing:
            self._post_shipment(order_id, shipment_body(carrier_id, carrier_name, waybill, lines))
        self.log.info("allegro.tracking_added", order=order_id, waybills=missing, carrier=carrier_id,
                      carrier_name=carrier_name, already=len(waybills) - len(missing), key=idempotency_key)

    def _shown_waybills(self, order_id: str) -> set[str]:
        path = f"/order/checkout-forms/{quote(order_id, safe='')}/shipments"
        response = self.client.request("GET", path, expected=(404,))
        if response.status_code == 404:
            raise PermanentError(f"Allegro has no order {order_id} for {self.name} (GET {path} answered 404)")
        answer = self.client._ok(response, f"GET {path}")
        shipments = answer.get("shipments")
        if shipments is not None and not isinstance(shipments, list):
            raise RetryableError(f"Allegro GET {path}: shipments is not a list")
        return shown_waybills(answer)

    def _carrier_list(self) -> list[dict[str, Any]]:
        """GET /order/carriers, cached (one list for every order of the account)."""
        now = self._clock()
        with self._carriers_lock:
            if self._carriers is not None and now < self._carriers[1]:
                return self._carriers[0]
        response = self.client.request("GET", "/order/carriers")
        answer = self.client._ok(response, "GET /order/carriers")
        carriers = answer.get("carriers")
        if not isinstance(carriers, list):
            raise RetryableError("Allegro GET /order/carriers: the answer has no carriers list")
        listed = [dict(c) for c in carriers if isinstance(c, Mapping)]
        ttl = _max_age(response.headers.get("cache-control"))
        with self._carriers_lock:
            self._carriers = (listed, now + (CARRIERS_TTL if ttl is None else ttl))
        return listed

    def _post_shipment(self, order_id: str, body: dict[str, Any]) -> None:
        """One attempt: a 5xx or a timeout propagates (TransientError, a RetryableError) and the next call
        looks the waybill up before posting again."""
        path = f"/order/checkout-forms/{quote(order_id, safe='')}/shipments"
        response = self.client.request("POST", path, body=body, expected=(400, 404, 409, 422), attempts=1)
        status = response.status_code
        if status in (200, 201):
            return
        errors = errors_of(response)
        detail = api_error_text({"errors": errors} if errors is not None else None) or response.text[:300]
        if status == 404:
            raise PermanentError(f"Allegro has no order {order_id} for {self.name} (POST {path} answered 404)")
        if status == 409:
            raise PermanentError(f"Allegro refused waybill {body['waybill']} for order {order_id}: used too many "
                                 f"times (409: {detail})")
        raise PermanentError(f"Allegro refused waybill {body['waybill']} ({body['carrierId']}) for order "
                             f"{order_id} ({status}): {detail}")
