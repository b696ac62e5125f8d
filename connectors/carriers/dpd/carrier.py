"""DPD Polska (DPDServices, object interface) as the hub's Carrier.

Exactly once, by what DPD's own material offers (the vendored WSDL's 20 operations and DPD's client
documentation v2.87 that ships with it):

* None of the 20 operations is a search: there is no "find package by reference". But the package's
  ``reference`` is DPD's unique search key: "the reference field can be used only once ... will not be
  accepted in the repeated call" (1.4 Good practice), answered with DUPLICATED_PACKAGE_REFERENCE
  (generatePackagesNumbersV2 "Query results"); and generateSpedLabelsV4 takes a package by that reference
  ("reference(String) - parcel key", generateSpedLabelsV1 "Parameters") and answers with its packageId,
  parcels and waybills. So ``book`` sends our reference as the package's reference, once, with
  ALL_OR_NOTHING; called again after a crash or a lost answer, DPD refuses the duplicate (DPD itself holds
  the lock: no second package can exist) and ``book`` reads the first package's numbers through the label
  call by reference.
* A courier order (packagesPickupCallV4) has no field for our reference and no operation finds one. So
  ``book_pickup`` writes an intent to the connector's memory (the database) before INSERT and the order
  number and checksum right after DPD's answer; a call that finds an intent without an answer (a lost
  answer, or a crash between DPD's answer and that write) refuses with a PermanentError for an operator
  to check DPD's panel, instead of ordering a second courier. Without a memory (no database) the intents
  live only as long as the process.
* DPD has no operation to delete a parcel: ``cancel`` raises CancelRefused.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import date, datetime, time, timedelta
from typing import Any

from connectors.carriers.dpd import mapping
from connectors.carriers.dpd.client import DpdClient, DpdFault, DpdRequestInvalid, DpdUnavailable
from connectors.carriers.dpd.options import DpdOptions
from hub.kernel.clock import utcnow
from hub.kernel.errors import LoginNeeded, PermanentError, RetryableError
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
from hub.platform.memory import Learnt, Memory

PICKUP_TOPIC = "dpd.pickups"
PICKUP_JOURNAL_DAYS = 90  # intents and answers older than this are forgotten (a pickup is long done by then)
# a CANCEL of an order DPD no longer has (cancelled already: our retry after a lost answer) (u): DPD's
# documentation names no status for it; NOT_FOUND is statusPCREnumV1's "object not found"
GONE_STATUSES = frozenset({"NOT_FOUND"})


class PickupJournal:
    """What ``book_pickup`` sent and what DPD answered, per our pickup reference, kept across restarts in
    the connector's memory (hub.platform.memory), or in this process only when there is none."""

    def __init__(self, memory: Memory | None, clock: Callable[[], datetime]):
        self.memory = memory
        self.clock = clock
        self._local: dict[str, dict[str, Any]] = {}

    def get(self, reference: str) -> dict[str, Any] | None:
        if self.memory is None:
            entry = self._local.get(reference)
        else:
            fact = self.memory.recall(PICKUP_TOPIC, [reference]).get(reference)
            entry = fact.value if fact is not None else None
        if not isinstance(entry, dict) or entry.get("state") == "not-sent":
            return None
        return entry

    def put(self, reference: str, entry: dict[str, Any]) -> None:
        if self.memory is None:
            self._local[reference] = entry
        else:
            self.memory.remember(PICKUP_TOPIC, {reference: Learnt(entry, self.clock())})

    def prune(self) -> None:
        if self.memory is not None:
            cutoff = self.clock() - timedelta(days=PICKUP_JOURNAL_DAYS)
            self.memory.forget_except(PICKUP_TOPIC, (), learnt_before=cutoff)


class DpdCarrier:
    """The Carrier port over one DPDServices account."""

    tracking_batch_size = 1  # getEventsForWaybillV1 takes one waybill (notes); tracking is not offered anyway

    def __init__(self, name: str, client: DpdClient, options: DpdOptions, *, memory: Memory | None = None,
                 clock: Callable[[], datetime] = utcnow):
        self.name = name
        self.client = client
        self.options = options
        self.clock = clock
        self.journal = PickupJournal(memory, clock)

    def close(self) -> None:
        self.client.close()

    def services(self) -> Sequence[str]:
        return self.options.services

    # --- shipments -------------------------------------------------------------------------------------

    def book(self, request: ShipmentRequest) -> Booking:
        """Generate the package's numbers under our reference, or find the package DPD already holds under
        it (see the module docstring)."""
        if request.service not in self.options.services:
            raise PermanentError(f"DPD booking {request.reference}: service {request.service!r} is not enabled "
                                 f"for this connector (services: {', '.join(self.options.services)})")
        handles = {"session_type": mapping.session_type(request.receiver.country), "reference": request.reference}
        body = mapping.generation_request(request, sender_fid=self.options.fid, payer_type=self.options.payer_type,
                                          master_fid=self.options.master_fid)
        try:
            answer = self.client.call("generatePackagesNumbersV4", body)
        except DpdUnavailable as exc:
            if exc.landed is False:
                raise RetryableError(f"{exc}; nothing reached DPD, the next attempt books") from None
            raise RetryableError(f"{exc}; DPD may have created the package: the next attempt finds it by its "
                                 f"reference {request.reference}") from None
        outcome = mapping.read_generation(answer, request, handles)
        if isinstance(outcome, mapping.Duplicate):
            return self._recover(request, handles, outcome.status)
        return outcome

    def _recover(self, request: ShipmentRequest, handles: dict[str, str], duplicate: str) -> Booking:
        """The package DPD holds under our reference, read through the label call by reference."""
        op = f"DPD generateSpedLabelsV4 by reference {request.reference} (after {duplicate})"
        body = {"dpdServicesParamsV1": mapping.services_params(handles["session_type"], reference=request.reference),
                "outputDocFormatV1": "PDF", "outputDocPageFormatV1": "A4",
                "outputLabelType": self.options.label_type}
        answer = self.client.call("generateSpedLabelsV4", body, repeat=True)
        try:
            document = mapping.read_document(answer, op, not_ready=frozenset({"NOT_FOUND"}))
        except RetryableError as exc:
            if "PARCEL" in duplicate and "NOT_FOUND" in str(exc):
                # a parcel reference of ours is taken, but no package has our reference: another shipment
                # used it, and calling again will not change that
                raise PermanentError(f"{exc}: a parcel reference of {request.reference} belongs to another DPD "
                                     "package; give the parcels other references") from None
            raise
        return mapping.read_recovered(document, request, handles)

    def label(self, booking: Booking, fmt: LabelFormat, size: LabelSize) -> Label:
        """Every parcel's label: PDF on A4 or the label printer (A6), ZPL on the label printer only."""
        package_id = self._package_id(booking)
        op = f"DPD generateSpedLabelsV4 for {booking.reference} (package {package_id})"
        doc_format, page = mapping.page_format(fmt, size)
        body: dict[str, Any] = {
            "dpdServicesParamsV1": mapping.services_params(self._session_type([booking]), package_ids=[package_id]),
            "outputDocFormatV1": doc_format, "outputDocPageFormatV1": page,
            "outputLabelType": self.options.label_type,
        }
        if self.options.label_variant:
            body["labelVariant"] = self.options.label_variant
        answer = self.client.call("generateSpedLabelsV4", body, repeat=True)
        document = mapping.read_document(answer, op, not_ready=frozenset({"NOT_FOUND"}))
        return Label(content=mapping.check_document(document.content, fmt, op), format=fmt)

    def protocol(self, bookings: Sequence[Booking]) -> bytes:
        """The handover protocol (PDF, A4: "in current version only A4 is available") the courier signs for
        these packages: generateProtocolV2, after the labels and before the pickup. The pickup address is
        the sender's FID, the one the packages were generated with (generateProtocolV1, "Validation")."""
        if not bookings:
            raise PermanentError("DPD generateProtocolV2: no shipments")
        ids = [self._package_id(b) for b in bookings]
        op = f"DPD generateProtocolV2 for packages {', '.join(ids)}"
        body = {"dpdServicesParamsV1": mapping.services_params(self._session_type(bookings), package_ids=ids,
                                                              pickup_fid=self.options.fid),
                "outputDocFormatV1": "PDF", "outputDocPageFormatV1": "A4"}
        answer = self.client.call("generateProtocolV2", body, repeat=True)
        document = mapping.read_document(answer, op)
        return mapping.check_document(document.content, "pdf", op)

    def cancel(self, booking: Booking) -> None:
        """DPDServices has no operation to delete or cancel a parcel (none of the WSDL's 20 operations)."""
        raise CancelRefused(
            f"DPD cannot cancel a parcel by API (package {booking.external_id}, {booking.reference}): DPDServices "
            "has no such operation. Leave it out of the handover protocol and the courier pickup; a parcel never "
            "handed over is not billed, as far as we know (unconfirmed: ask DPD's customer service to be sure).")

    def track(self, tracking_numbers: Sequence[str]) -> Sequence[TrackingEvent]:
        """Not offered (no Capability.TRACKING): DPD's events come from getEventsForWaybillV1 in the separate
        InfoServices WSDL, which is not vendored, and its schema is not guessed here."""
        raise PermanentError("DPD tracking needs DPD InfoServices, whose WSDL is not vendored")

    # --- pickups ---------------------------------------------------------------------------------------

    def pickup_windows(self, address: Address, day: date, bookings: Sequence[Booking] = ()) -> Sequence[PickupWindow]:
        body = {"senderPlaceV1": {"countryCode": address.country.upper(),
                                  "zipCode": mapping.postal_code(address.postal_code)}}
        answer = self.client.call("getCourierOrderAvailabilityV1", body, repeat=True)
        return mapping.read_windows(answer, day, self.clock())

    def book_pickup(self, request: PickupRequest) -> BookedPickup:
        """Order a courier once per our reference (see the module docstring on the journal)."""
        op = f"DPD packagesPickupCallV4 INSERT for pickup {request.reference}"
        entry = self.journal.get(request.reference)
        if entry is not None:
            return self._from_journal(request, entry, op)
        params = mapping.pickup_insert(request, payer_fid=self.options.master_fid,
                                       payer_name=self.options.pickup_payer_name,
                                       customer_name=self.options.pickup_customer_name)
        self.journal.prune()
        self.journal.put(request.reference, {"state": "sending", "at": self.clock().isoformat()})
        try:
            answer = self.client.call("packagesPickupCallV4", {"dpdPickupParamsV3": params})
        except DpdUnavailable as exc:
            if exc.landed is False:
                self.journal.put(request.reference, {"state": "not-sent"})
                raise RetryableError(f"{exc}; nothing reached DPD, the next attempt orders the courier") from None
            raise PermanentError(f"{exc}; DPD may have ordered the courier and offers no way to look a courier "
                                 "order up: check DPD's panel before ordering again under a new reference") from None
        except (DpdFault, DpdRequestInvalid, LoginNeeded):  # DPD refused, or nothing was sent: no order
            self.journal.put(request.reference, {"state": "not-sent"})
            raise
        except PermanentError as exc:  # an answer we could not read: the intent stays, no second courier
            raise PermanentError(f"{exc}; DPD may have ordered the courier: check DPD's panel before ordering "
                                 "again under a new reference") from None
        result = mapping.read_pickup(answer, op)
        if result.status != "OK":
            self.journal.put(request.reference, {"state": "not-sent"})
            text = f"{op}: DPD answered {result.status or 'no status'}" + (
                f": {'; '.join(result.errors)}" if result.errors else "")
            if result.status in mapping.TRANSIENT_STATUSES:
                raise RetryableError(text)
            raise PermanentError(text)
        if not result.order_number or result.check_sum is None:
            missing = "orderNumber" if not result.order_number else "checkSum"
            # the intent stays "sending": DPD took the order, a retry must not order a second courier
            raise PermanentError(f"{op}: DPD confirmed the order but its answer lacks {missing}, needed to cancel "
                                 "it: check the order in DPD's panel")
        window = request.window
        self.journal.put(request.reference, {
            "state": "booked", "order_number": result.order_number, "check_sum": result.check_sum,
            "day": window.day.isoformat(), "start": window.start.strftime("%H:%M"),
            "end": window.end.strftime("%H:%M"), "order_type": params["orderType"]})
        return BookedPickup(reference=request.reference, external_id=result.order_number, window=window,
                            handles={"check_sum": str(result.check_sum), "order_type": params["orderType"]})

    def _from_journal(self, request: PickupRequest, entry: dict[str, Any], op: str) -> BookedPickup:
        state = entry.get("state")
        if state == "booked":
            window = PickupWindow(day=date.fromisoformat(entry["day"]), start=time.fromisoformat(entry["start"]),
                                  end=time.fromisoformat(entry["end"]))
            return BookedPickup(reference=request.reference, external_id=str(entry["order_number"]), window=window,
                                handles={"check_sum": str(entry["check_sum"]),
                                         "order_type": str(entry.get("order_type", "DOMESTIC"))})
        if state == "cancelled":
            raise PermanentError(f"{op}: the courier order {entry.get('order_number')} under this reference was "
                                 "cancelled; book a new pickup under a new reference")
        raise PermanentError(f"{op}: an earlier attempt (at {entry.get('at', '?')}) reached DPD but its answer was "
                             "lost, and DPD offers no way to look a courier order up: check DPD's panel, then book "
                             "again under a new reference if no courier is ordered")

    def cancel_pickup(self, pickup: BookedPickup) -> None:
        """CANCEL with the order number and checksum INSERT answered; cancelling twice succeeds."""
        entry = self.journal.get(pickup.reference)
        if entry is not None and entry.get("state") == "cancelled":
            return
        op = f"DPD packagesPickupCallV4 CANCEL for courier order {pickup.external_id}"
        raw = pickup.handles.get("check_sum")
        try:
            check_sum = int(raw) if raw is not None else None
        except ValueError:
            check_sum = None
        if check_sum is None:
            raise PermanentError(f"{op}: the pickup has no valid check_sum handle ({raw!r}), which DPD requires")
        answer = self.client.call("packagesPickupCallV4",
                                  {"dpdPickupParamsV3": mapping.pickup_cancel(pickup.external_id, check_sum)})
        result = mapping.read_pickup(answer, op)
        if result.status != "OK" and result.status not in GONE_STATUSES:
            detail = f": {'; '.join(result.errors)}" if result.errors else ""
            if result.status in mapping.TRANSIENT_STATUSES:
                raise RetryableError(f"{op}: DPD answered {result.status}{detail}")
            raise CancelRefused(f"{op}: DPD refused to cancel ({result.status or 'no status'}{detail}); the courier "
                                "may be on the way already: call DPD")
        self.journal.put(pickup.reference, {"state": "cancelled", "order_number": pickup.external_id})

    # --- helpers ---------------------------------------------------------------------------------------

    def _package_id(self, booking: Booking) -> str:
        if booking.operator != mapping.OPERATOR:
            raise PermanentError(f"DPD: booking {booking.reference} was made with {booking.operator}, not DPD")
        package_id = booking.handles.get("package_id") or booking.external_id
        if not package_id or not package_id.isdigit():
            raise PermanentError(f"DPD: booking {booking.reference} has no DPD packageId ({package_id!r})")
        return package_id

    @staticmethod
    def _session_type(bookings: Sequence[Booking]) -> mapping.SessionType:
        kinds = {b.handles.get("session_type", "DOMESTIC") for b in bookings}
        if len(kinds) != 1 or not kinds <= {"DOMESTIC", "INTERNATIONAL"}:
            raise PermanentError("DPD: domestic and international packages go into separate sessions "
                                 f"({', '.join(sorted(kinds))})")
        return kinds.pop()  # type: ignore[return-value]
