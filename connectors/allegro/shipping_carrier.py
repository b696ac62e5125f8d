"""The Carrier port on Ship with Allegro (``/shipment-management``), for one Allegro account.

Allegro books asynchronously: POST .../create-commands answers 200 at once and the outcome (SUCCESS with
a shipmentId, or ERROR with the reasons) shows only in GET .../create-commands/{commandId}; a 200 does not
mean the shipment was created (notes, "Ship with Allegro"). The command id is OURS, derived from our
reference (uuid5), so every call of ``book`` first GETs it: Allegro knowing it means an earlier attempt sent
it, and the call only goes on polling; a 404 means nothing was sent and the POST goes out, once (a lost
answer is settled by the next GET, never by a blind resend). Cancels (keyed by the shipment id) and
courier pickups (keyed by our pickup reference) work the same way. While a command is IN_PROGRESS past
``confirm_timeout`` the call raises RetryableError("... not confirmed yet") and the job queue calls again.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from datetime import date, timedelta
from typing import TYPE_CHECKING, Any

from connectors.allegro.auth import AllegroAuth
from connectors.allegro.client import AllegroHttp
from connectors.allegro.shipping_client import COMMAND_PATHS, CommandRefused, ShipmentClient
from connectors.allegro.shipping_mapping import (
    MAX_PROPOSAL_SHIPMENTS,
    MAX_TRACKING_WAYBILLS,
    address_dto,
    booking_from_shipment,
    command_id,
    command_status,
    create_command,
    error_text,
    label_format_code,
    label_request,
    pickup_windows,
    required_str,
    service_code,
    tracking_events,
)
from connectors.http import Unavailable
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
from hub.platform.memory import Learnt

if TYPE_CHECKING:
    from connectors.allegro.shipping import AllegroShippingOptions
    from hub.platform.connectors import Services

_WAYBILL_TOPIC = "waybill-carrier"  # waybill -> the carrier id Allegro tracks it under (ShipmentDto.carrier)


class AllegroShippingCarrier:
    """hub.kernel.ports.Carrier for Ship with Allegro, on the login (tokens) of the Allegro connector named
    by ``options.account``."""

    tracking_batch_size = MAX_TRACKING_WAYBILLS

    def __init__(
        self,
        name: str,
        options: AllegroShippingOptions,
        services: Services,
        *,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.name = name
        # the channel account this carrier books for: Allegro attaches the parcel to that account's order
        # by itself (hub.shipping reads it, and does not post the tracking number again)
        self.channel_account = options.account
        self.options = options
        self.log = services.log
        self._sleep = sleep
        self._clock = clock
        self._memory = services.memory
        self.http = AllegroHttp(
            connector=name, throttle=services.throttle, log=services.log, timeout=options.request_timeout,
            attempts=options.http_attempts, backoff=options.retry_backoff, block_seconds=options.rate_limit_block,
            transport=services.transport, sleep=sleep,
        )
        # the account's tokens: TokenStore rows are keyed by the Allegro connector's name, so this refreshes
        # (and marks login-needed) the very pair the channel uses
        self.auth = AllegroAuth(
            account=options.account, http=self.http, tokens=services.tokens, auth_base=options.auth_base,
            client_id=options.client_id, client_secret=options.client_secret.get(), sleep=sleep,
        )
        self.client = ShipmentClient(self.http, self.auth, options.api_base, options.language)

    def close(self) -> None:
        self.http.close()

    # --- services ------------------------------------------------------------------------

    def services(self) -> Sequence[str]:
        """The configured codes, else the account's delivery services from GET delivery-services (each
        ``deliveryMethodId``, with ``:credentialsId`` for a method on the seller's own contract)."""
        if self.options.services is not None:
            return list(self.options.services)
        answer = self.client.delivery_services()
        listed = answer.get("services")
        if not isinstance(listed, list):
            raise RetryableError("Allegro GET /shipment-management/delivery-services: the answer has no services")
        return list(dict.fromkeys(service_code(s) for s in listed if isinstance(s, dict)))

    # --- commands ------------------------------------------------------------------------

    def _send(self, kind: str, command: str, body: dict[str, Any] | Callable[[], dict[str, Any]], what: str,
              *, look: bool = True) -> tuple[dict[str, Any] | None, float]:
        """Look the command up; POST it only when Allegro does not know it (``body`` may be built only then).
        ``look=False``: the caller knows the command was never sent (no lookup).
        Returns (the command's status, or None when just sent; the delay Allegro asked for)."""
        status = self.client.command(kind, command) if look else None
        if status is not None:
            return status, 0.0
        try:
            retry_after = self.client.post_command(kind, body() if callable(body) else body)
        except Unavailable as exc:
            # the POST may have landed (a lost answer): the id tells, and nothing is sent twice
            status = self.client.command(kind, command)
            if status is None:
                raise RetryableError(f"Allegro {what}: the command {command} got no answer ({exc}); the retry "
                                     "looks it up before sending it again") from exc
            return status, 0.0
        except CommandRefused:
            # an id Allegro registered meanwhile (an earlier attempt's answer lost) is refused as a duplicate
            status = self.client.command(kind, command)
            if status is None:
                raise
            return status, 0.0
        self.log.info("allegro_shipping.command_sent", kind=kind, command_id=command, what=what)
        return None, retry_after or 0.0

    def _settle(self, kind: str, command: str, status: dict[str, Any] | None, delay: float, what: str
                ) -> dict[str, Any]:
        """Poll the command until it is SUCCESS or ERROR; past ``confirm_timeout``, RetryableError."""
        call = f"GET {COMMAND_PATHS[kind]}/{{commandId}}"
        deadline = self._clock() + self.options.confirm_timeout
        while status is None or command_status(status, call) == "IN_PROGRESS":
            remaining = deadline - self._clock()
            if remaining <= 0:
                state = "not visible yet" if status is None else "IN_PROGRESS"
                raise RetryableError(
                    f"Allegro {what} not confirmed yet: command {command} {state} after "
                    f"{self.options.confirm_timeout:g}s; the retry polls the same command",
                    retry_after=max(self.options.poll_interval, delay) * 5)
            self._sleep(min(max(delay, self.options.poll_interval), remaining))
            delay = 0.0
            status = self.client.command(kind, command)
        return status

    # --- book ----------------------------------------------------------------------------

    def book(self, request: ShipmentRequest) -> Booking:
        command = command_id("create", request.reference)
        # a request Allegro cannot take fails before any call
        body = create_command(request, command, self.options.template_sizes)
        what = f"shipment {request.reference}"
        status, delay = self._send("create", command, body, what, look=not request.first_call)
        status = self._settle("create", command, status, delay, what)
        call = "GET /shipment-management/shipments/create-commands/{commandId}"
        if command_status(status, call) == "ERROR":
            raise PermanentError(f"Allegro refused shipment {request.reference}: {error_text(status.get('errors'))}")
        shipment_id = required_str(status, "shipmentId", call)
        shipment = self.client.shipment(shipment_id)
        if shipment is None:
            raise RetryableError(f"Allegro GET /shipment-management/shipments/{shipment_id}: not found yet "
                                 f"(created by command {command})")
        booking = booking_from_shipment(request.reference, command, shipment, len(request.parcels))
        self._remember_carriers(booking)
        self.log.info("allegro_shipping.booked", reference=request.reference, shipment_id=booking.external_id,
                      waybills=[p.tracking_number for p in booking.parcels], operator=booking.operator)
        return booking

    def _remember_carriers(self, booking: Booking) -> None:
        """Which carrier Allegro tracks each waybill under (track() gets bare numbers); old facts go."""
        if self._memory is None:
            return
        carrier = booking.handles.get("carrier_id") or self.options.tracking_carrier
        now = utcnow()
        self._memory.remember(_WAYBILL_TOPIC, {p.tracking_number: Learnt(carrier, now) for p in booking.parcels})
        self._memory.forget_except(_WAYBILL_TOPIC, (),
                                   learnt_before=now - timedelta(seconds=self.options.waybill_memory))

    # --- label ---------------------------------------------------------------------------

    def label(self, booking: Booking, fmt: LabelFormat, size: LabelSize) -> Label:
        """The shipment's label. Its format was fixed at booking (labelFormat): Allegro prints no other."""
        booked_format = booking.handles.get("label_format")
        if booked_format is not None and booked_format.upper() != label_format_code(fmt):
            raise PermanentError(f"Allegro shipping: shipment {booking.external_id} was booked with "
                                 f"{booked_format} labels; Allegro prints no {fmt} label for it")
        try:
            content = self.client.label(label_request([booking.external_id], fmt, size))
        except Unavailable as exc:  # e.g. ANOTHER_SERVICE_NOT_AVAILABLE from the carrier behind Allegro
            raise RetryableError(f"Allegro has no label for shipment {booking.external_id} yet: {exc}",
                                 retry_after=60.0) from exc
        if content is None:
            raise RetryableError(f"Allegro has no label for shipment {booking.external_id} yet (204)",
                                 retry_after=60.0)
        if label_format_code(fmt) == "PDF" and not content.startswith(b"%PDF"):
            raise RetryableError(f"Allegro POST /shipment-management/label: the label of shipment "
                                 f"{booking.external_id} is not a PDF")
        return Label(content=content, format=fmt)

    def protocol(self, bookings: Sequence[Booking]) -> bytes | None:
        """The handover protocol for these shipments (POST /shipment-management/protocol); None when the
        carrier has none (204: "Protocol availability depends on Carrier"). Not in the port yet."""
        return self.client.protocol([b.external_id for b in bookings])

    # --- cancel --------------------------------------------------------------------------

    def cancel(self, booking: Booking) -> None:
        shipment_id = booking.external_id
        shipment = self.client.shipment(shipment_id)
        if shipment is None:
            raise PermanentError(f"Allegro shipping: shipment {shipment_id} ({booking.reference}) not found")
        if shipment.get("canceledDate"):
            return  # cancelled already (by an earlier attempt, or in Allegro's own pages)
        command = command_id("cancel", shipment_id)
        what = f"cancel of shipment {shipment_id}"
        body = {"commandId": command, "input": {"shipmentId": shipment_id}}
        status, delay = self._send("cancel", command, body, what)
        status = self._settle("cancel", command, status, delay, what)
        if command_status(status, "GET /shipment-management/shipments/cancel-commands/{commandId}") == "SUCCESS":
            self.log.info("allegro_shipping.cancelled", reference=booking.reference, shipment_id=shipment_id)
            return
        again = self.client.shipment(shipment_id)
        if again is not None and again.get("canceledDate"):
            return
        raise CancelRefused(f"Allegro will not cancel shipment {shipment_id} ({booking.reference}): "
                            f"{error_text(status.get('errors'))}")

    # --- pickups -------------------------------------------------------------------------

    def pickup_windows(self, address: Address, day: date, bookings: Sequence[Booking] = ()) -> Sequence[PickupWindow]:
        """The windows every one of ``bookings`` is offered on ``day``. Allegro proposes pickup dates per
        shipment (PickupProposalsRequestDto.shipmentIds, 1..100, required): without bookings there is
        nothing to ask it, which the port's signature cannot express (see the report)."""
        if not bookings:
            raise PermanentError("Allegro shipping: Allegro proposes courier pickup windows per shipment; "
                                 "ask with the shipments to collect (pickup_windows(address, day, bookings))")
        ids = [b.external_id for b in bookings]
        if len(ids) > MAX_PROPOSAL_SHIPMENTS:
            raise PermanentError(f"Allegro shipping: at most {MAX_PROPOSAL_SHIPMENTS} shipments per pickup "
                                 f"proposal, {len(ids)} given")
        body = {"shipmentIds": ids, "readyDate": day.isoformat(), "address": address_dto(address, "pickup address")}
        return pickup_windows(self.client.pickup_proposals(body), ids, day)

    def book_pickup(self, request: PickupRequest) -> BookedPickup:
        """Order a courier for the bookings in the window. Allegro still requires pickupDateProposalId
        (notes): a window without one is matched against the proposals for these shipments."""
        command = command_id("pickup", request.reference)
        what = f"pickup {request.reference}"
        address = address_dto(request.address, "pickup address")
        if not request.bookings:
            raise PermanentError(f"Allegro shipping: pickup {request.reference} names no shipments")

        def body() -> dict[str, Any]:
            proposal = request.window.proposal_id or self._proposal_for(request)
            return {"commandId": command, "input": {"shipmentIds": [b.external_id for b in request.bookings],
                                                    "pickupDateProposalId": proposal, "address": address}}

        status, delay = self._send("pickup", command, body, what)
        status = self._settle("pickup", command, status, delay, what)
        call = "GET /shipment-management/pickups/create-commands/{commandId}"
        if command_status(status, call) == "ERROR":
            raise PermanentError(f"Allegro refused pickup {request.reference}: {error_text(status.get('errors'))}")
        pickup_id = required_str(status, "pickupId", call)
        handles = {"command_id": command}
        carrier_pickup_id = status.get("carrierPickupId")
        if not isinstance(carrier_pickup_id, str) or not carrier_pickup_id:
            # the number the courier knows: the status should carry it, PickupDto does too
            carrier_pickup_id = (self.client.pickup(pickup_id) or {}).get("carrierPickupId")
        if isinstance(carrier_pickup_id, str) and carrier_pickup_id:
            handles["carrier_pickup_id"] = carrier_pickup_id
        self.log.info("allegro_shipping.pickup_booked", reference=request.reference, pickup_id=pickup_id,
                      carrier_pickup_id=handles.get("carrier_pickup_id"))
        return BookedPickup(reference=request.reference, external_id=pickup_id, window=request.window,
                            handles=handles)

    def _proposal_for(self, request: PickupRequest) -> str:
        window = request.window
        offered = self.pickup_windows(request.address, window.day, request.bookings)
        for candidate in offered:
            if (candidate.start, candidate.end) == (window.start, window.end) and candidate.proposal_id:
                return candidate.proposal_id
        choices = ", ".join(f"{w.start:%H:%M}-{w.end:%H:%M}" for w in offered) or "none"
        raise PermanentError(f"Allegro offers no pickup window {window.day} {window.start:%H:%M}-{window.end:%H:%M} "
                             f"for these shipments (offered that day: {choices})")

    def cancel_pickup(self, pickup: BookedPickup) -> None:
        """``/shipment-management`` has no operation that cancels a pickup (pickups: create-commands and a
        GET only), so the operator cancels it with the carrier or in Allegro's Sales Center."""
        carrier_id = pickup.handles.get("carrier_pickup_id")
        raise CancelRefused(f"Allegro's API cannot cancel courier pickup {pickup.external_id}"
                            + (f" (carrier's number {carrier_id})" if carrier_id else "")
                            + ": cancel it in Allegro's Sales Center (Wysyłam z Allegro) or with the carrier")

    # --- tracking ------------------------------------------------------------------------

    def track(self, tracking_numbers: Sequence[str]) -> Sequence[TrackingEvent]:
        """Every event of these waybills, oldest first, asked under the carrier Allegro tracks each one with
        (learnt at booking; ``tracking_carrier`` otherwise), one request per carrier."""
        numbers = list(dict.fromkeys(tracking_numbers))
        if len(numbers) > self.tracking_batch_size:
            raise PermanentError(f"Allegro shipping: at most {self.tracking_batch_size} waybills per tracking call, "
                                 f"{len(numbers)} given")
        if not numbers:
            return []
        known = self._memory.recall(_WAYBILL_TOPIC, numbers) if self._memory is not None else {}
        by_carrier: dict[str, list[str]] = {}
        for number in numbers:
            fact = known.get(number)
            carrier = fact.value if fact is not None and isinstance(fact.value, str) else self.options.tracking_carrier
            by_carrier.setdefault(carrier, []).append(number)
        events: list[TrackingEvent] = []
        for carrier, waybills in by_carrier.items():
            events += [e for e in tracking_events(self.client.tracking(carrier, waybills), carrier)
                       if e.tracking_number in waybills]
        return sorted(events, key=lambda e: e.occurred_at)
