"""InPost ShipX as the hub's Carrier: shipments (lockers and courier), labels, dispatch orders, tracking.

Exactly once:
- ``book``: ShipX stores our reference on the shipment (``reference``, 3-100 characters) and lists an
  organization's shipments with filters; every call first looks for a shipment under our reference
  (``_find_shipment``) and creates one only when none exists, so a retry after a lost answer or a crash goes on
  with the first one. ShipX confirms asynchronously (created -> offers_prepared -> confirmed with a tracking
  number): ``book`` reads the shipment a few times and otherwise answers RetryableError; the next call finds the
  shipment by its reference and goes on polling.
- ``book_pickup``: a dispatch order has no reference field, so ours goes into its comment ("hub:<reference>");
  a retry lists the organization's dispatch orders for the first shipment and takes the one carrying our
  reference, or failing that an active one for exactly the same shipments (a courier already ordered for them).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import date, datetime, timedelta
from typing import Any
from urllib.parse import quote

from hub.kernel.clock import utcnow
from hub.kernel.errors import PermanentError, RetryableError
from hub.kernel.ports.carrier import (
    BookedPickup,
    Booking,
    CancelRefused,
    Label,
    LabelFormat,
    LabelSize,
    PickupRequest,
    PickupWindow,
    ShipmentRequest,
    TrackingEvent,
)
from hub.kernel.types import Address

from . import mapping
from .client import TITLE, ShipXClient, ShipXRefused
from .options import InPostOptions

PER_PAGE = 100
# "dpi300 - available only for zpl format and services: ..." (Shipment label download, pages/18153509)
DPI300_SERVICES = frozenset({"inpost_locker_standard", "inpost_locker_allegro", "inpost_locker_pass_thru",
                             "inpost_letter_allegro", "inpost_courier_allegro", "inpost_courier_c2c"})
# dispatch order statuses in which the courier is (still) coming ("Dispatch Order", pages/18153482)
ACTIVE_DISPATCH = frozenset({"new", "sent", "accepted", "done"})


class InPostCarrier:
    """One ShipX organization."""

    def __init__(
        self,
        name: str,
        client: ShipXClient,
        options: InPostOptions,
        *,
        log: Any,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], datetime] = utcnow,
    ):
        self.name = name
        self.tracking_batch_size = options.tracking_batch_size
        self._client = client
        self._options = options
        self._org = options.organization_id
        self._log = log
        self._sleep = sleep
        self._clock = clock
        self._rules = mapping.ShipmentRules(
            sending_method=options.sending_method, dropoff_point=options.dropoff_point,
            insurance_required=frozenset(options.insurance_required_services),
            default_insurance=options.default_insurance)
        self._policy = mapping.PickupPolicy(
            start=options.pickup_window_start, end=options.pickup_window_end, weekdays=options.pickup_weekdays,
            same_day_cutoff=options.pickup_same_day_cutoff, skip_holidays=options.pickup_skip_holidays)
        self._titles: dict[str, str] | None = None

    def close(self) -> None:
        self._client.close()

    def services(self) -> Sequence[str]:
        return list(self._options.services)

    # --- shipments -----------------------------------------------------------------------------------

    def book(self, request: ShipmentRequest) -> Booking:
        ref = request.reference
        if request.service not in self._options.services:
            raise PermanentError(f"InPost book {ref}: service {request.service!r} is not one of the connector's "
                                 f"services ({', '.join(self._options.services)})")
        payload = mapping.shipment_payload(request, self._rules)  # refuses a bad request before any call
        shipment = None if request.first_call else self._find_shipment(ref)  # a first call finds nothing
        if shipment is None:
            shipment = self._create(ref, payload)
        else:
            found = shipment.get("parcels")
            if isinstance(found, list) and len(found) != len(request.parcels):
                raise PermanentError(f"InPost book {ref}: ShipX holds shipment {shipment.get('id')} under this "
                                     f"reference with {len(found)} parcel(s), the request has {len(request.parcels)}; "
                                     "book the changed shipment under a new reference")
        return self._confirmed(request, shipment)

    def _pages(self, path: str, params: dict[str, Any]) -> tuple[list[Mapping[str, Any]], bool]:
        """Every item of a ShipX list up to ``lookup_max_pages`` pages, and whether the list ended."""
        call = f"GET {path}"
        found: list[Mapping[str, Any]] = []
        for page in range(1, self._options.lookup_max_pages + 1):
            body = self._client.json("GET", path, params={**params, "page": page, "per_page": PER_PAGE})
            batch = mapping.items(body, call)
            found.extend(batch)
            per_page = body.get("per_page") if isinstance(body.get("per_page"), int) else PER_PAGE
            count = body.get("count")
            if not batch or len(batch) < per_page or (isinstance(count, int) and page >= math.ceil(count / per_page)):
                return found, True
        return found, False

    def _since(self) -> str:
        return mapping.shipx_time(self._clock() - timedelta(days=self._options.lookup_days))

    def _find_shipment(self, reference: str) -> Mapping[str, Any] | None:
        """The shipment ShipX holds under our reference. The list is asked for by ``reference`` and recent
        creation, sorted newest first; every item's reference is compared here as well, so the answer holds
        even where ShipX does not filter by reference (the published filter list does not name it)."""
        path = f"/v1/organizations/{self._org}/shipments"
        listed, complete = self._pages(path, {"reference": reference, "created_at_gteq": self._since(),
                                              "sort_by": "created_at", "sort_order": "desc"})
        mine = [s for s in listed if s.get("reference") == reference]
        if not mine and not complete:
            raise PermanentError(
                f"InPost book {reference}: cannot tell whether ShipX holds a shipment under this reference: "
                f"{len(listed)} shipments of the last {self._options.lookup_days} days were read without reaching "
                "the end; raise the connector's lookup_max_pages (booking now could book twice)")
        live = [s for s in mine if s.get("status") != mapping.CANCELED]
        if mine and not live:
            raise PermanentError(f"InPost book {reference}: the shipment booked under this reference "
                                 f"({mine[0].get('id')}) was cancelled; book again under a new reference")
        if not live:
            return None
        if len(live) > 1:
            self._log.warning("inpost.duplicate_reference", reference=reference,
                              shipments=[s.get("id") for s in live])
        return min(live, key=lambda s: mapping.shipment_id(s, f"GET {path}"))

    def _create(self, reference: str, payload: Mapping[str, Any]) -> Mapping[str, Any]:
        path = f"/v1/organizations/{self._org}/shipments"
        try:
            body = self._client.json("POST", path, json_body=payload, retry=False)
        except ShipXRefused as exc:
            raise PermanentError(f"InPost book {reference}: ShipX refused the shipment: {exc}") from exc
        sid = mapping.shipment_id(body, f"POST {path}")
        self._log.info("inpost.shipment_created", reference=reference, shipment=sid, status=body.get("status"))
        return body

    def _confirmed(self, request: ShipmentRequest, shipment: Mapping[str, Any]) -> Booking:
        """Poll the shipment until ShipX has bought the offer (status confirmed, a tracking number)."""
        sid = mapping.shipment_id(shipment, "shipment")
        call = f"GET /v1/shipments/{sid}"
        polls = self._options.confirm_polls
        for attempt in range(polls + 1):
            status = mapping.shipment_status(shipment, call)
            if status == mapping.CANCELED:
                raise PermanentError(f"InPost book {request.reference}: shipment {sid} was cancelled in ShipX; "
                                     "book again under a new reference")
            if mapping.is_confirmed(status):
                return mapping.booking(request.reference, shipment, len(request.parcels), call)
            if attempt == polls:
                break
            self._sleep(self._options.confirm_poll_interval)
            shipment = self._client.json("GET", f"/v1/shipments/{sid}")
        raise RetryableError(f"InPost book {request.reference}: shipment {sid} not confirmed yet (status {status}); "
                             "ShipX buys the offer asynchronously", retry_after=self._options.confirm_retry_after)

    def label(self, booking: Booking, fmt: LabelFormat, size: LabelSize) -> Label:
        sid = booking.external_id
        path = f"/v1/shipments/{sid}/label"
        kind = "A6" if size == "A6" else "normal"
        if fmt == "zpl" and self._options.zpl_dpi300 and booking.handles.get("service") in DPI300_SERVICES:
            kind = "dpi300"
        try:
            response = self._client.request("GET", path, params={"format": fmt, "type": kind})
        except ShipXRefused as exc:
            if exc.code == "invalid_action":
                raise RetryableError(f"InPost label {booking.reference}: shipment {sid} has no label yet "
                                     "(ShipX gives one from status confirmed on)") from exc
            if exc.code == "label_generation_failed":
                raise RetryableError(f"InPost label {booking.reference}: ShipX could not generate the label "
                                     f"of shipment {sid} yet: {exc}") from exc
            raise
        content = response.content
        if fmt == "pdf" and not content.startswith(b"%PDF"):
            raise mapping.ShipXFormatError(f"{TITLE} GET {path}: the answer is not a PDF "
                                           f"({response.headers.get('Content-Type')}, {len(content)} bytes)")
        if fmt == "zpl" and b"^XA" not in content:
            raise mapping.ShipXFormatError(f"{TITLE} GET {path}: the answer is not ZPL "
                                           f"({response.headers.get('Content-Type')}, {len(content)} bytes)")
        return Label(content=content, format=fmt)

    def cancel(self, booking: Booking) -> None:
        sid = booking.external_id
        path = f"/v1/shipments/{sid}"
        try:
            response = self._client.request("DELETE", path, expected=(404,))
        except ShipXRefused as exc:
            if exc.code != "invalid_action":
                raise
            details = exc.details if isinstance(exc.details, Mapping) else {}
            status = details.get("shipment_status")
            if not isinstance(status, str):
                status = mapping.shipment_status(self._client.json("GET", path), f"GET {path}")
            if status == mapping.CANCELED:
                return  # cancelled already (a retry)
            raise CancelRefused(
                f"InPost will not cancel shipment {sid} ({booking.reference}): it is {status}; ShipX cancels only "
                "shipments it has not confirmed yet (created, offers_prepared). Do not hand the parcel over, or "
                "settle it with InPost in Manager Paczek") from exc
        if response.status_code == 404:
            self._log.warning("inpost.cancel_unknown", shipment=sid, reference=booking.reference)

    # --- pickups: dispatch orders ---------------------------------------------------------------------

    def pickup_windows(self, address: Address, day: date, bookings: Sequence[Booking] = ()) -> Sequence[PickupWindow]:
        """ShipX has no window API (a dispatch order takes no date): the configured window, on working days."""
        return mapping.pickup_windows(day, self._clock(), self._policy)

    def book_pickup(self, request: PickupRequest) -> BookedPickup:
        ref = request.reference
        ids: list[int] = []
        for booking in request.bookings:
            try:
                ids.append(int(booking.external_id))
            except ValueError:
                raise PermanentError(f"InPost pickup {ref}: {booking.external_id!r} ({booking.reference}) is not a "
                                     "ShipX shipment id") from None
        if not ids:
            raise PermanentError(f"InPost pickup {ref}: no shipments to collect")
        payload = mapping.dispatch_order_payload(request, ids, phone=self._options.pickup_contact_phone,
                                                 email=self._options.pickup_contact_email)
        order = self._find_dispatch_order(ref, ids)
        if order is None:
            path = f"/v1/organizations/{self._org}/dispatch_orders"
            try:
                order = self._client.json("POST", path, json_body=payload, retry=False)
            except ShipXRefused as exc:
                raise PermanentError(f"InPost pickup {ref}: ShipX refused the dispatch order: {exc}") from exc
            self._log.info("inpost.dispatch_order_created", reference=ref, order=order.get("id"), shipments=ids)
        oid = mapping.field(order, "id", "dispatch order", (int, str))
        status = order.get("status")
        return BookedPickup(reference=ref, external_id=str(oid), window=request.window,
                            handles={"status": status} if isinstance(status, str) else {})

    def _find_dispatch_order(self, reference: str, ids: Sequence[int]) -> Mapping[str, Any] | None:
        path = f"/v1/organizations/{self._org}/dispatch_orders"
        listed, complete = self._pages(path, {"shipment_id": ids[0], "created_at_gteq": self._since(),
                                              "sort_by": "created_at", "sort_order": "desc"})
        mine = [o for o in listed if reference in mapping.dispatch_references(o)]
        active = [o for o in mine if o.get("status") in ACTIVE_DISPATCH]
        if active:
            return active[0]
        if mine:
            raise PermanentError(f"InPost pickup {reference}: the dispatch order booked under this reference "
                                 f"({mine[0].get('id')}) is {mine[0].get('status')}; book again under a new reference")
        wanted = set(ids)
        for order in listed:
            if order.get("status") in ACTIVE_DISPATCH and _order_shipments(order) == wanted:
                self._log.warning("inpost.dispatch_order_by_shipments", reference=reference, order=order.get("id"))
                return order
        if not complete:
            raise PermanentError(
                f"InPost pickup {reference}: cannot tell whether a courier is ordered already: {len(listed)} "
                "dispatch orders were read without reaching the end; raise the connector's lookup_max_pages")
        return None

    def cancel_pickup(self, pickup: BookedPickup) -> None:
        path = f"/v1/dispatch_orders/{pickup.external_id}"
        try:
            response = self._client.request("DELETE", path, expected=(404,))
        except ShipXRefused as exc:
            if exc.code != "invalid_action":
                raise
            status = mapping.field(self._client.json("GET", path), "status", f"GET {path}", str)
            if status == "canceled":
                return
            raise CancelRefused(f"InPost will not cancel dispatch order {pickup.external_id} ({pickup.reference}): "
                                f"it is {status}; the courier has it already: call InPost to call it off") from exc
        if response.status_code == 404:
            self._log.warning("inpost.cancel_pickup_unknown", order=pickup.external_id, reference=pickup.reference)

    # --- tracking ---------------------------------------------------------------------------------------

    def track(self, tracking_numbers: Sequence[str]) -> Sequence[TrackingEvent]:
        """GET /v1/tracking/{number}, one call per number (the endpoint takes one); a number ShipX does not
        know (404) has no events."""
        titles = self._status_titles()
        events: list[TrackingEvent] = []
        for number in tracking_numbers:
            path = f"/v1/tracking/{quote(number, safe='')}"
            response = self._client.request("GET", path, expected=(404,))
            if response.status_code == 404:
                continue
            found = mapping.tracking_events(number, self._client.decode(response, "GET", path), titles)
            for event in found:
                if not mapping.is_known_status(event.code):
                    self._log.warning("inpost.unknown_status", tracking_number=number, code=event.code)
            events.extend(found)
        return events

    def _status_titles(self) -> dict[str, str]:
        """ShipX's status titles (GET /v1/statuses), read once: shown with events, never needed for them."""
        if self._titles is None:
            try:
                body = self._client.json("GET", "/v1/statuses", params={"lang": self._options.status_language})
            except (RetryableError, PermanentError) as exc:
                self._log.warning("inpost.statuses_unavailable", error=str(exc))
                return {}
            self._titles = mapping.status_titles(body)
        return self._titles


def _order_shipments(order: Mapping[str, Any]) -> set[int]:
    out: set[int] = set()
    for item in order.get("shipments") or []:
        value = item.get("id") if isinstance(item, Mapping) else item
        try:
            out.add(int(value))
        except (TypeError, ValueError):
            continue
    return out
