"""The Carrier port over Elektroniczny Nadawca (EN WebAPI, SOAP).

How EN works (vendored en.wsdl; /work/shared/notes/carriers.md "Poczta Polska"): parcels go into a
buffer (bufor) with addShipment under a guid the CLIENT makes; EN answers each parcel's numerNadania
(the tracking number). Labels come by guid. The day's close, sendEnvelope, hands the buffer to the
posting office; until then clearEnvelopeByGuids removes parcels, after it nothing does.

Exactly once: our guid is derived from our reference (mapping.guid_for), so ``book`` called again
computes the same guid and, before adding anything, looks for it in the buffer (getEnvelopeBufor) and in
the envelopes sent lately (getEnvelopeList + getEnvelopeContentShort); only a guid found nowhere is
added. The buffer itself is found by its description (``bufor_opis``) before one is created.

Not in EN: tracking (the Sledzenie service has its own WSDL, not vendored: ``track`` refuses, and the
connector does not announce TRACKING), pickup windows (configured), a courier order's number, lookup or
cancellation (zamowKuriera answers only errors).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

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
from .client import ENClient, ENUnavailable
from .mapping import CARRIER
from .options import PocztaPolskaOptions

WARSAW = ZoneInfo("Europe/Warsaw")  # EN's dates (dataNadania, oczekiwanaDataOdbioru) are Polish local dates
_ENVELOPE_CACHE = 256  # sent envelopes whose contents we keep (they no longer change)


@dataclass(frozen=True)
class SentEnvelope:
    """The day's close: the envelope EN made of the buffer."""

    id_envelope: int
    status: str | None
    id_bufor: int | None


@dataclass(frozen=True)
class _Found:
    numbers: dict[str, str | None]
    handles: dict[str, str]


class PocztaPolskaCarrier:
    """One EN account as a Carrier; ``send_envelope`` closes the day (not part of the port)."""

    tracking_batch_size = 1

    def __init__(self, name: str, client: ENClient, options: PocztaPolskaOptions, *,
                 now: Callable[[], datetime] = utcnow):
        self.name = name
        self.client = client
        self.options = options
        self.now = now
        self._lock = threading.Lock()
        self._envelopes: dict[int, dict[str, str | None]] = {}  # idEnvelope -> guid -> numerNadania
        self._pickups: dict[str, BookedPickup] = {}

    def close(self) -> None:
        self.client.close()

    def today(self) -> date:
        return self.now().astimezone(WARSAW).date()

    def services(self) -> Sequence[str]:
        return self.options.services

    # --- shipments ----------------------------------------------------------------------------

    def book(self, request: ShipmentRequest) -> Booking:
        if request.service not in self.options.services:
            raise PermanentError(f"{CARRIER} addShipment: service {request.service!r} is not enabled for "
                                 f"{self.name} (services: {', '.join(self.options.services)})")
        type_name, fields = mapping.przesylka(request)  # refuses bad data before any call
        guids = mapping.guids_for(request.reference, len(request.parcels))
        bufor = self._bufor(request.options.get("idBufor"))
        found = None if request.first_call else self._find(guids, bufor)  # a first call finds nothing
        if found is not None:
            return mapping.booking(request.reference, guids, found.numbers, found.handles)
        retval = self.client.add_shipment([self.client.new(type_name, fields)], bufor)
        number, errors = mapping.added_number(retval, guids[0])
        if errors:
            raise PermanentError(f"{CARRIER} addShipment: EN refused shipment {request.reference}: {errors}")
        if not number:
            raise RetryableError(f"{CARRIER} addShipment: no numerNadania for guid {guids[0]} in the answer; the "
                                 "next attempt looks the parcel up in the buffer")
        numbers: dict[str, str | None] = {guids[0]: number}
        if len(guids) > 1:  # the sub-parcels' numbers are in the buffer, not in addShipment's answer
            numbers = self._buffer_numbers(bufor)
        return mapping.booking(request.reference, guids, numbers, {"idBufor": str(bufor)})

    def _bufor(self, wanted: str | None) -> int:
        """The buffer to use: the request's idBufor, the configured one, or the active one described
        ``bufor_opis`` (created when EN has none: looked up first, so a lost answer creates no second)."""
        if wanted is not None:
            try:
                return int(wanted)
            except ValueError:
                raise PermanentError(f"{CARRIER} addShipment: option idBufor={wanted!r} is not a number") from None
        if self.options.bufor_id is not None:
            return self.options.bufor_id
        existing = self._own_buffer()
        if existing is not None:
            return existing
        answer = self.client.create_envelope_bufor(self.options.bufor_opis, self.today(), self.options.urzad_nadania)
        if answer.get("error"):
            raise PermanentError(f"{CARRIER} createEnvelopeBufor: EN refused the buffer "
                                 f"{self.options.bufor_opis!r}: {mapping.errors_text(answer['error'])}")
        created = [b.get("idBufor") for b in answer.get("createdBufor") or () if b.get("idBufor") is not None]
        if not created:
            raise RetryableError(f"{CARRIER} createEnvelopeBufor: the answer has no createdBufor/idBufor; the next "
                                 "attempt looks the buffer up")
        return int(created[0])

    def _own_buffer(self) -> int | None:
        answer = self.client.get_envelope_bufor_list()
        if answer.get("error"):
            raise PermanentError(f"{CARRIER} getEnvelopeBuforList: {mapping.errors_text(answer['error'])}")
        ours = [b for b in answer.get("bufor") or ()
                if b.get("opis") == self.options.bufor_opis and b.get("active") is not False
                and b.get("idBufor") is not None]
        return min(int(b["idBufor"]) for b in ours) if ours else None

    def _read_buffer(self, bufor: int) -> list[dict[str, Any]]:
        answer = self.client.get_envelope_bufor(bufor)
        if answer.get("error"):
            raise PermanentError(f"{CARRIER} getEnvelopeBufor: buffer {bufor}: {mapping.errors_text(answer['error'])}")
        return list(answer.get("przesylka") or ())

    def _buffer_numbers(self, bufor: int) -> dict[str, str | None]:
        return mapping.numbers_in_buffer(self._read_buffer(bufor))

    def _find(self, guids: list[str], bufor: int) -> _Found | None:
        """Where EN holds our guid: the buffer, or an envelope sent lately; None: nowhere. The buffer is
        asked for our guids only (getAddresLabelByGuid answers each parcel it holds with its guid and
        nrNadania), not read whole: a day's buffer of hundreds of parcels read on every booking made
        booking slower with every parcel booked."""
        guid = guids[0]
        answer = self.client.get_addres_label_by_guid([guid], bufor)
        numbers = {str(c["guid"]): c.get("nrNadania") for c in answer.get("content") or () if c.get("guid")}
        if guid in numbers:
            if len(guids) > 1:  # the sub-parcels' numbers: read from the buffer (rare: several parcels)
                numbers = self._buffer_numbers(bufor)
            return _Found(numbers, {"idBufor": str(bufor)})
        sent = self._sent_with(guid)
        if sent is not None:
            id_envelope, numbers = sent
            return _Found(numbers, {"idEnvelope": str(id_envelope)})  # no longer in any buffer
        return None

    def _sent_with(self, guid: str) -> tuple[int, dict[str, str | None]] | None:
        """The envelope (sent in the last ``envelope_lookup_days``) holding ``guid``, with its numbers."""
        if self.options.envelope_lookup_days == 0:
            return None
        today = self.today()
        listing = self.client.get_envelope_list(today - timedelta(days=self.options.envelope_lookup_days), today)
        for envelope in listing.get("envelopes") or ():
            id_envelope = envelope.get("idEnvelope")
            if id_envelope is None:
                raise RetryableError(f"{CARRIER} getEnvelopeList: an envelope without idEnvelope")
            numbers = self._envelope_numbers(int(id_envelope))
            if guid in numbers:
                return int(id_envelope), numbers
        return None

    def _envelope_numbers(self, id_envelope: int) -> dict[str, str | None]:
        with self._lock:
            cached = self._envelopes.get(id_envelope)
        if cached is not None:
            return cached
        answer = self.client.get_envelope_content_short(id_envelope)
        numbers = mapping.numbers_in_envelope(answer.get("przesylka") or ())
        with self._lock:
            if len(self._envelopes) >= _ENVELOPE_CACHE:
                self._envelopes.pop(next(iter(self._envelopes)))
            self._envelopes[id_envelope] = numbers
        return numbers

    def label(self, booking: Booking, fmt: LabelFormat, size: LabelSize) -> Label:
        """EN prints at the size set in the EN account (getAddresLabelByGuid takes none): ``size`` is not
        sent. ZPL comes from getPrintForParcel (ADDRESS_LABEL_BY_GUID, ZPL_FORMAT)."""
        guids = mapping.booking_guids(booking)
        bufor = int(booking.handles["idBufor"]) if booking.handles.get("idBufor") else None
        if fmt == "pdf":
            return Label(self._pdf(guids, bufor), "pdf")
        if fmt == "zpl":
            return Label(self._zpl(guids), "zpl")
        raise PermanentError(f"{CARRIER}: label format {fmt!r} is not pdf or zpl")

    def _pdf(self, guids: list[str], bufor: int | None) -> bytes:
        if len(guids) == 1:
            operation = "getAddresLabelByGuid"
            answer = self.client.get_addres_label_by_guid(guids, bufor)
            contents = [c.get("pdfContent") for c in answer.get("content") or ()]
            pdf = contents[0] if contents else None
        else:  # every parcel's label in one PDF, merged by EN
            operation = "getAddresLabelByGuidCompact"
            answer = self.client.get_addres_label_by_guid_compact(guids, bufor)
            pdf = answer.get("pdfContent")
        if answer.get("error"):
            raise PermanentError(f"{CARRIER} {operation}: {mapping.errors_text(answer['error'])}")
        if not pdf:
            raise RetryableError(f"{CARRIER} {operation}: no label yet for guid {guids[0]}")
        if not bytes(pdf).startswith(b"%PDF"):
            raise RetryableError(f"{CARRIER} {operation}: pdfContent is not a PDF")
        return bytes(pdf)

    def _zpl(self, guids: list[str]) -> bytes:
        answer = self.client.get_print_for_parcel(guids, fmt="ZPL_FORMAT", resolution=self.options.label_resolution)
        if answer.get("error"):
            raise PermanentError(f"{CARRIER} getPrintForParcel: {mapping.errors_text(answer['error'])}")
        data = b"".join(bytes(r["print"]) for r in answer.get("printResult") or () if r.get("print"))
        if not data:
            raise RetryableError(f"{CARRIER} getPrintForParcel: no label yet for guid {guids[0]}")
        if b"^XA" not in data:
            raise RetryableError(f"{CARRIER} getPrintForParcel: print is not ZPL (no ^XA)")
        return data

    def cancel(self, booking: Booking) -> None:
        """clearEnvelopeByGuids while the parcel is in the buffer; after sendEnvelope, CancelRefused; a
        parcel EN holds nowhere (cleared by an earlier attempt) is cancelled already."""
        guid = mapping.booking_guids(booking)[0]
        bufor: int | None = int(booking.handles["idBufor"]) if booking.handles.get("idBufor") else None
        if bufor is None:
            bufor = self.options.bufor_id if self.options.bufor_id is not None else self._own_buffer()
        held = {p.get("guid") for p in self._read_buffer_if_any(bufor)} if bufor is not None else set()
        if bufor is not None and guid in held:
            cleared = self.client.clear_envelope_by_guids([guid], bufor)
            if cleared.get("error"):
                raise CancelRefused(f"{CARRIER} clearEnvelopeByGuids: EN refused to remove shipment "
                                    f"{booking.reference}: {mapping.errors_text(cleared['error'])}")
            return
        sent = self._sent_with(guid)
        if sent is not None:
            raise CancelRefused(f"{CARRIER}: shipment {booking.reference} was handed to the posting office in "
                                f"envelope {sent[0]} (sendEnvelope): EN removes parcels only from a buffer not "
                                "sent yet; ask the posting office to hold it or have it returned")

    def send_envelope(self, urzad_nadania: int | None = None) -> SentEnvelope:
        """Close the day: sendEnvelope hands our buffer to the posting office (``urzad_nadania``, default
        the configured one). Called again after a lost answer, it returns today's envelope."""
        office = urzad_nadania or self.options.urzad_nadania
        if office is None:
            raise PermanentError(f"{CARRIER} sendEnvelope: no posting office: set urzad_nadania (an id from "
                                 "getUrzedyNadania) in the connector's config")
        bufor = self.options.bufor_id if self.options.bufor_id is not None else self._own_buffer()
        if bufor is None or not self._read_buffer_if_any(bufor):
            already = self._sent_today()
            if already is not None:
                return already
            raise PermanentError(f"{CARRIER} sendEnvelope: nothing to send (buffer {self.options.bufor_opis!r} "
                                 "is empty or missing)")
        answer = self.client.send_envelope(office, bufor)
        if answer.get("error"):
            raise PermanentError(f"{CARRIER} sendEnvelope: EN refused buffer {bufor}: "
                                 f"{mapping.errors_text(answer['error'])}")
        if answer.get("idEnvelope") is None:
            raise RetryableError(f"{CARRIER} sendEnvelope: the answer has no idEnvelope; the next attempt looks "
                                 "for today's envelope")
        return SentEnvelope(int(answer["idEnvelope"]), answer.get("envelopeStatus"), bufor)

    def _read_buffer_if_any(self, bufor: int) -> list[dict[str, Any]]:
        answer = self.client.get_envelope_bufor(bufor)
        return [] if answer.get("error") else list(answer.get("przesylka") or ())

    def _sent_today(self) -> SentEnvelope | None:
        today = self.today()
        envelopes = self.client.get_envelope_list(today, today).get("envelopes") or ()
        ids = [(int(e["idEnvelope"]), e.get("envelopeStatus")) for e in envelopes if e.get("idEnvelope") is not None]
        if not ids:
            return None
        id_envelope, status = max(ids)
        return SentEnvelope(id_envelope, status, None)

    # --- pickups ------------------------------------------------------------------------------

    def pickup_windows(self, address: Address, day: date, bookings: Sequence[Booking] = ()) -> Sequence[PickupWindow]:
        """EN has no call that lists windows: the configured ones (``pickup_windows``/``pickup_weekdays``)."""
        return mapping.windows_for(day, self.today(), self.options.pickup_windows, self.options.pickup_weekdays)

    def book_pickup(self, request: PickupRequest) -> BookedPickup:
        """zamowKuriera. EN answers no order number and has no call to find or cancel an order, so a retry
        cannot look the first one up: an answer lost after it may have been applied is NOT resent (a
        PermanentError asks an operator to check the confirmation e-mail); a retry in this process returns
        the first result."""
        with self._lock:
            done = self._pickups.get(request.reference)
        if done is not None:
            return done
        fields = mapping.zamow_kuriera(request, self.options.pickup_email)
        try:
            answer = self.client.zamow_kuriera(fields)
        except ENUnavailable as exc:
            if not exc.maybe_applied:
                raise
            email = fields.get("potwierdzenieZamowieniaEmail", "none set")
            raise PermanentError(f"{exc}. EN has no call to look a courier order up, so the hub does not order "
                                 f"again: check the confirmation e-mail ({email}) or EN's panel, and order by "
                                 "hand if none came") from None
        if answer.get("error"):
            raise PermanentError(f"{CARRIER} zamowKuriera: EN refused pickup {request.reference}: "
                                 f"{mapping.errors_text(answer['error'])}")
        booked = BookedPickup(reference=request.reference, external_id=request.reference, window=request.window,
                              handles={"email": fields.get("potwierdzenieZamowieniaEmail", "")})
        with self._lock:
            self._pickups[request.reference] = booked
        return booked

    def cancel_pickup(self, pickup: BookedPickup) -> None:
        raise CancelRefused(f"{CARRIER}: EN WebAPI has no call to cancel a courier order (en.wsdl has only "
                            f"zamowKuriera): cancel pickup {pickup.reference} with Poczta Polska by phone or e-mail")

    # --- tracking -----------------------------------------------------------------------------

    def track(self, tracking_numbers: Sequence[str]) -> Sequence[TrackingEvent]:
        raise PermanentError(f"{CARRIER}: tracking is not available: EN WebAPI has no tracking call; Poczta "
                             "Polska's tracking is the separate Sledzenie service, whose WSDL is not vendored, so "
                             "this connector does not speak it (it does not announce the tracking capability)")
