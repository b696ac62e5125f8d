"""Furgonetka (a broker) as the hub's Carrier: packages booked with the carrier the service names.

Exactly once, per our reference:

- ``book``: the order command's UUID is uuid5(our namespace, "order:<reference>"). Called again, book()
  first asks for that command (GET /order-commands/{uuid}); if Furgonetka knows it, it only goes on
  polling. If not, it looks for the draft package whose ``user_reference_number`` is our reference
  (paging GET /packages, newest first) before it ever POSTs a new draft, and POSTs once (no automatic
  repeat; a lost answer is followed by the same lookup). The PUT of the order command is idempotent by
  design: the same UUID can never order twice. A request marked ``first_call`` (the hub knows no call
  for this reference was ever set out on) skips both lookups: nothing can be found.
- ``book_pickup``: the pickup command's UUID is uuid5(.., "pickup:<reference>"), same pattern.
- ``cancel``: the cancel command's UUID is uuid5(.., "cancel:<booking reference>"); a package already in
  state ``canceled`` is not sent again.

Commands run asynchronously at Furgonetka: a call polls ``confirm_polls`` times, ``confirm_interval``
apart, then raises RetryableError("... not confirmed yet") and the job queue calls again later.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import UTC, date, datetime
from typing import Any

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
from hub.platform.memory import Learnt

from . import mapping
from .client import FurgonetkaClient, FurgonetkaUnavailable
from .options import FurgonetkaOptions

PAGE_SIZE = 100  # packages per GET /packages page (u: Kwarcek PackageRequest::getPackagesList's limit)
MEMORY_TOPIC = "package_of_number"  # tracking number -> package id, for track()
_RECENT = 200  # packages remembered per pickup address for pickup_windows() without bookings


def _address_key(address: Address) -> tuple[str, str, str]:
    return (address.street.strip().lower(), address.postal_code.strip(), address.city.strip().lower())


class FurgonetkaCarrier:
    """One Furgonetka account; ``client`` does the I/O, ``mapping`` the payloads."""

    def __init__(self, name: str, client: FurgonetkaClient, options: FurgonetkaOptions, *, log: Any,
                 memory: Any | None = None, sleep: Callable[[float], None] = time.sleep):
        self.name = name
        self.client = client
        self.options = options
        self.tracking_batch_size = options.tracking_batch_size
        self.log = log
        self.memory = memory
        self.sleep = sleep
        self._lock = threading.Lock()
        self._service_ids: dict[str, int] | None = None
        self._package_of: dict[str, str] = {}  # tracking number -> package id
        self._recent: dict[tuple[str, str, str], deque[str]] = {}  # pickup address -> package ids

    def services(self) -> Sequence[str]:
        return self.options.services

    # --- book ----------------------------------------------------------------------------

    def book(self, request: ShipmentRequest) -> Booking:
        if request.service not in self.options.services:
            raise PermanentError(f"Furgonetka connector {self.name}: service {request.service!r} is not one of "
                                 f"its services ({', '.join(self.options.services)})")
        command = mapping.command_uuid("order", request.reference)
        report = None if request.first_call else self.client.get_command("order-commands", command)
        package_id: str | None = None
        if report is None:
            package = self._draft(request)
            package_id = mapping.package_id(package, "POST /packages")
            if mapping.state(package) == mapping.CANCELLED_STATE:
                raise PermanentError(f"Furgonetka package {package_id} holding shipment {request.reference} was "
                                     "cancelled: book it again under a new reference")
            if mapping.state(package) not in (None, mapping.DRAFT_STATE) and mapping.tracking_numbers(
                    package, f"GET /packages/{package_id}"):
                # ordered already (by hand in the panel, or by a command we no longer know of)
                return self._booked(request, package, command, f"GET /packages/{package_id}")
            self.client.put_command("order-commands", command, mapping.order_command_body(
                package_id, request.label_format, request.label_size))
        return self._confirm_order(request, command, package_id, report)

    def _draft(self, request: ShipmentRequest) -> Any:
        """Our draft package: the one holding our reference, else a new one (POSTed once)."""
        found = None if request.first_call else self._find_package(
            lambda p: p.get("user_reference_number") == request.reference)
        if found is not None:
            self.log.info("furgonetka.draft_found", reference=request.reference,
                          package_id=found.get("package_id"))
            return found
        body = mapping.package_body(request, self._service_id(request.service))
        try:
            return self.client.create_package(body)
        except FurgonetkaUnavailable:
            # the answer was lost, the draft may exist: look before the queue sends it again
            found = self._find_package(lambda p: p.get("user_reference_number") == request.reference)
            if found is not None:
                return found
            raise

    def _confirm_order(self, request: ShipmentRequest, command: str, package_id: str | None,
                       report: Any) -> Booking:
        call = f"GET /order-commands/{command}"
        report, status = self._poll("order-commands", command, report)
        if report is None:
            raise self._not_confirmed("order", command, f"shipment {request.reference}", status)
        if status in mapping.COMMAND_FAILED:
            raise PermanentError(f"Furgonetka did not order shipment {request.reference}: "
                                 + ("; ".join(mapping.command_errors(report)) or "no reason given"))
        ordered = mapping.ordered_package_ids(report, call)
        pid = package_id or (ordered[0] if ordered else None) or self._package_id_by_reference(request)
        if ordered and pid not in ordered:
            raise PermanentError(f"Furgonetka did not order shipment {request.reference} (package {pid}): "
                                 + ("; ".join(mapping.command_errors(report)) or "no reason given"))
        return self._booked(request, self.client.package(pid), command, f"GET /packages/{pid}")

    def _poll(self, kind: str, command: str, report: Any) -> tuple[Any, str]:
        """The command's report once it has ended (successful, partial_success or error), asking up to
        ``confirm_polls`` times, ``confirm_interval`` apart; (None, its last status) while it is still
        running. A command just sent (no report yet) is first asked after an interval: Furgonetka runs it
        asynchronously, and an immediate GET only ever says it is running."""
        status = "not visible yet"
        for attempt in range(self.options.confirm_polls):
            if attempt > 0 or report is None:
                self.sleep(self.options.confirm_interval)
                report = self.client.get_command(kind, command)
            if report is None:
                continue
            status = mapping.command_status(report, f"GET /{kind}/{command}")
            if status in mapping.COMMAND_DONE or status in mapping.COMMAND_FAILED:
                return report, status
        return None, status

    def _not_confirmed(self, what: str, command: str, subject: str, status: str) -> RetryableError:
        return RetryableError(f"Furgonetka {what} command {command} for {subject} not confirmed yet (status {status})",
                              retry_after=max(2.0, self.options.confirm_interval * 4))

    def _package_id_by_reference(self, request: ShipmentRequest) -> str:
        found = self._find_package(lambda p: p.get("user_reference_number") == request.reference)
        if found is None:
            raise RetryableError(f"Furgonetka order command for shipment {request.reference} succeeded, but no "
                                 "package with that user_reference_number is listed yet")
        return mapping.package_id(found, "GET /packages")

    def _booked(self, request: ShipmentRequest, package: Any, command: str, call: str) -> Booking:
        booking = mapping.booking(request.reference, package, command, call)
        self._learn(booking, request.sender)
        return booking

    def _learn(self, booking: Booking, pickup: Address | None) -> None:
        """Remember which package each tracking number belongs to (track() asks by package), and the
        package under its pickup address (pickup_windows() asks by package)."""
        numbers = {p.tracking_number: booking.external_id for p in booking.parcels}
        with self._lock:
            self._package_of.update(numbers)
            if pickup is not None:
                recent = self._recent.setdefault(_address_key(pickup), deque(maxlen=_RECENT))
                if booking.external_id not in recent:
                    recent.append(booking.external_id)
        if self.memory is not None:
            now = datetime.now(UTC)
            self.memory.remember(MEMORY_TOPIC, {n: Learnt(pid, now) for n, pid in numbers.items()})

    def _service_id(self, code: str) -> int:
        if code in self.options.service_ids:
            return self.options.service_ids[code]
        with self._lock:
            known = self._service_ids
        if known is None or code not in known:
            known = {}
            for service, service_id in mapping.service_ids(self.client.account_services(), "GET /account/services"):
                known.setdefault(service, service_id)  # the first contract of a carrier, unless configured
            with self._lock:
                self._service_ids = known
        if code not in known:
            raise PermanentError(f"Furgonetka account of connector {self.name} has no {code!r} service "
                                 f"(it has: {', '.join(sorted(known)) or 'none'}); set service_ids or fix the "
                                 "delivery mapping")
        return known[code]

    def _packages(self) -> Iterator[Mapping[str, Any]]:
        """The account's packages, newest first, at most ``lookup_pages`` pages (u: list_type, limit and
        last_package_id are Kwarcek's PackageRequest::getPackagesList parameters)."""
        last: str | None = None
        for _ in range(self.options.lookup_pages):
            params: dict[str, Any] = {"list_type": "all", "limit": PAGE_SIZE}
            if last is not None:
                params["last_package_id"] = last
            page = mapping.items(self.client.packages(params), "packages", "GET /packages")
            for package in page:
                if isinstance(package, Mapping):
                    yield package
            if len(page) < PAGE_SIZE:
                return
            last = mapping.package_id(page[-1], "GET /packages")

    def _find_package(self, wanted: Callable[[Mapping[str, Any]], bool]) -> Mapping[str, Any] | None:
        return next((p for p in self._packages() if wanted(p)), None)

    # --- label -----------------------------------------------------------------------------

    def label(self, booking: Booking, fmt: LabelFormat, size: LabelSize) -> Label:
        package_id = booking.handles.get("package_id") or booking.external_id
        call = f"GET /packages/{package_id}/label"
        answer = self.client.label(package_id, mapping.label_settings(fmt, size))
        if answer is None:
            raise RetryableError(f"Furgonetka {call}: no label for shipment {booking.reference} yet", retry_after=30)
        content, content_type = answer
        if fmt == "pdf" and not content.startswith(b"%PDF"):
            raise RetryableError(f"Furgonetka {call}: expected a PDF, got {content_type or 'no content type'} "
                                 f"starting {content[:8]!r}")
        if fmt == "zpl" and b"^XA" not in content:
            raise RetryableError(f"Furgonetka {call}: expected ZPL (^XA...), got {content_type or 'no content type'}")
        return Label(content=content, format=fmt)

    # --- cancel ----------------------------------------------------------------------------

    def cancel(self, booking: Booking) -> None:
        package_id = booking.handles.get("package_id") or booking.external_id
        if mapping.state(self.client.package(package_id)) == mapping.CANCELLED_STATE:
            return  # cancelled already: a retry, or by hand in the panel
        command = mapping.command_uuid("cancel", booking.reference)
        call = f"GET /cancel-command/{command}"
        report = self.client.get_command("cancel-command", command)
        if report is None:
            self.client.put_command("cancel-command", command, mapping.cancel_command_body(package_id))
        report, status = self._poll("cancel-command", command, report)
        if report is None:
            raise self._not_confirmed("cancel", command, f"shipment {booking.reference}", status)
        if mapping.cancel_result(report, package_id, call):
            return
        raise CancelRefused(f"Furgonetka will not cancel shipment {booking.reference} (package {package_id}): "
                            + ("; ".join(mapping.command_errors(report)) or "no reason given"))

    # --- pickups ---------------------------------------------------------------------------

    def pickup_windows(self, address: Address, day: date, bookings: Sequence[Booking] = ()) -> Sequence[PickupWindow]:
        """Furgonetka proposes pickup dates per package, not per address: the windows of ``bookings`` when
        given (an extension of the port), else of the packages this connector booked from ``address``
        since it started; none known: no window."""
        if bookings:
            ids = [b.handles.get("package_id") or b.external_id for b in bookings]
        else:
            with self._lock:
                ids = list(self._recent.get(_address_key(address), ()))[-10:]
        if not ids:
            return []
        answer = self.client.pickup_proposals(mapping.proposals_body(ids, day))
        return mapping.windows(answer, day, "POST /packages/pickup-date-proposals")

    def book_pickup(self, request: PickupRequest) -> BookedPickup:
        command = mapping.command_uuid("pickup", request.reference)
        call = f"GET /pickup-commands/{command}"
        report = self.client.get_command("pickup-commands", command)
        if report is None:
            ids = [b.handles.get("package_id") or b.external_id for b in request.bookings]
            if not ids:
                raise PermanentError(f"Furgonetka pickup {request.reference}: no shipments to collect")
            hash_ = request.window.proposal_id or self._proposal_hash(ids, request)
            self.client.put_command("pickup-commands", command,
                                    mapping.pickup_command_body(ids, request.window, hash_))
        report, status = self._poll("pickup-commands", command, report)
        if report is None:
            raise self._not_confirmed("pickup", command, f"pickup {request.reference}", status)
        if status in mapping.COMMAND_FAILED:
            raise PermanentError(f"Furgonetka did not order the pickup {request.reference}: "
                                 + ("; ".join(mapping.command_errors(report)) or "no reason given"))
        return mapping.booked_pickup(request.reference, request.window, report, command, call)

    def _proposal_hash(self, ids: Sequence[str], request: PickupRequest) -> str:
        """The hash of Furgonetka's proposal matching the requested window (a window not taken from
        pickup_windows() carries none)."""
        window = request.window
        offered = mapping.windows(self.client.pickup_proposals(mapping.proposals_body(ids, window.day)),
                                  window.day, "POST /packages/pickup-date-proposals")
        for proposal in offered:
            if (proposal.start, proposal.end) == (window.start, window.end) and proposal.proposal_id:
                return proposal.proposal_id
        choices = ", ".join(f"{w.start:%H:%M}-{w.end:%H:%M}" for w in offered) or "none"
        raise PermanentError(f"Furgonetka offers no pickup {window.day} {window.start:%H:%M}-{window.end:%H:%M} "
                             f"for pickup {request.reference} (offered that day: {choices})")

    def cancel_pickup(self, pickup: BookedPickup) -> None:
        raise CancelRefused(f"Furgonetka's API has no pickup cancellation: cancel pickup {pickup.external_id} "
                            f"({pickup.window.day} {pickup.window.start:%H:%M}-{pickup.window.end:%H:%M}) in the "
                            "Furgonetka panel or with the carrier")

    # --- tracking --------------------------------------------------------------------------

    def track(self, tracking_numbers: Sequence[str]) -> Sequence[TrackingEvent]:
        numbers = list(dict.fromkeys(tracking_numbers))[: self.tracking_batch_size]
        by_package: dict[str, list[str]] = {}
        unknown = []
        for number in numbers:
            package_id = self._known_package(number)
            if package_id is None:
                unknown.append(number)
            else:
                by_package.setdefault(package_id, []).append(number)
        if unknown:
            for number, package_id in self._scan_numbers(set(unknown)).items():
                by_package.setdefault(package_id, []).append(number)
        events: list[TrackingEvent] = []
        for package_id, mine in by_package.items():
            events += mapping.tracking_events(mine, self.client.tracking(package_id),
                                              f"GET /packages/{package_id}/tracking")
        return sorted(events, key=lambda e: e.occurred_at)

    def _known_package(self, number: str) -> str | None:
        with self._lock:
            known = self._package_of.get(number)
        if known is None and self.memory is not None:
            learnt = self.memory.recall(MEMORY_TOPIC, [number]).get(number)
            if learnt is not None:
                known = str(learnt.value)
                with self._lock:
                    self._package_of[number] = known
        return known

    def _scan_numbers(self, wanted: set[str]) -> dict[str, str]:
        """Package ids of tracking numbers this connector did not book (or forgot), from the listing."""
        found: dict[str, str] = {}
        for package in self._packages():
            for number in mapping.tracking_numbers(package, "GET /packages"):
                if number in wanted:
                    found[number] = mapping.package_id(package, "GET /packages")
            if len(found) == len(wanted):
                break
        with self._lock:
            self._package_of.update(found)
        return found
