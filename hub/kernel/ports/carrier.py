"""The carrier seam: shipments, labels, pickups and tracking, for carriers and brokers alike.

Every call that books or cancels something is idempotent per our reference: the hub stores the
reference before the call, and a carrier connector called again with it (after a crash between the
carrier's answer and our commit, or a timeout) finds what the first call did (the carrier's lookup by
our reference, our command id, our guid) instead of booking twice. Asynchronous carriers (a create
command confirmed later) answer ``RetryableError`` while the booking is not confirmed yet; the job
queue calls again, and the connector goes on from what it finds.

Money is Decimal; times are timezone-aware UTC; weights in kilograms, sizes in centimetres.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time
from decimal import Decimal
from typing import Literal, Protocol, runtime_checkable

from hub.kernel.errors import PermanentError
from hub.kernel.types import Address, PickupPoint

LabelFormat = Literal["pdf", "zpl"]
LabelSize = Literal["A4", "A6"]
# the hub's tracking statuses; each connector maps its carrier's codes onto these
TrackingStatus = Literal["pending", "in_transit", "out_for_delivery", "ready_for_pickup", "delivered",
                         "returned", "exception"]
TRACKING_STATUSES: tuple[str, ...] = ("pending", "in_transit", "out_for_delivery", "ready_for_pickup",
                                      "delivered", "returned", "exception")


class CancelRefused(PermanentError):
    """The carrier will not cancel this shipment or pickup any more (confirmed, handed over, the
    envelope sent); the message says why, in words an operator can act on."""


@dataclass(frozen=True)
class Parcel:
    weight_kg: Decimal
    length_cm: int | None = None
    width_cm: int | None = None
    height_cm: int | None = None
    template: str | None = None  # a locker size: "small" | "medium" | "large" (each connector maps its own)
    reference: str | None = None  # our parcel reference (the shipment's reference + "-1", "-2", ...)


@dataclass(frozen=True)
class CashOnDelivery:
    amount: Decimal
    currency: str
    bank_account: str  # the IBAN (PL + 26 digits) the carrier pays the collected money to


@dataclass(frozen=True)
class ShipmentRequest:
    reference: str  # ours, unique per shipment: a retry with it finds the first booking
    service: str  # the carrier's service code, as configured in mappings/delivery.toml
    sender: Address
    receiver: Address  # with phone and e-mail: lockers and couriers notify the buyer
    parcels: Sequence[Parcel]
    pickup_point: PickupPoint | None = None  # the locker or point the buyer chose
    cod: CashOnDelivery | None = None
    insurance: Decimal | None = None  # declared value, in ``currency``
    currency: str = "PLN"
    label_format: LabelFormat = "pdf"
    label_size: LabelSize = "A6"
    content: str | None = None  # what is in the parcel, for the waybill
    # the channel's order, for carriers that tie a parcel to it (a marketplace's own shipping)
    order_channel: str | None = None
    order_external_id: str | None = None
    # carrier-specific extras from the delivery mapping (a posting office id, a sending method)
    options: dict[str, str] = field(default_factory=dict)
    # True only when the caller knows no earlier call with this reference was ever set out on (it counts
    # them in a committed transaction before each call): the connector may then book without looking
    # for an earlier booking first. False (unknown) always looks.
    first_call: bool = False


@dataclass(frozen=True)
class BookedParcel:
    tracking_number: str
    external_id: str | None = None  # the carrier's parcel/package id where it has one


@dataclass(frozen=True)
class Booking:
    """A shipment the carrier has confirmed: its ids and a tracking number per parcel (in the order
    of the request's parcels)."""

    reference: str
    external_id: str  # the carrier's own id of the shipment
    parcels: Sequence[BookedParcel]
    # who delivers, as a lower-case carrier code that carrier and channel connectors share (a broker or a
    # marketplace books with some carrier; the channels map the code to their own list); "other" if unknown
    operator: str
    # what the connector needs later to cancel or print (a session id, a buffer id)
    handles: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Label:
    content: bytes
    format: LabelFormat


@dataclass(frozen=True)
class PickupWindow:
    day: date
    start: time  # local time at the pickup address (Europe/Warsaw for these carriers)
    end: time
    proposal_id: str | None = None  # the carrier's id for this window, where booking needs it


@dataclass(frozen=True)
class PickupRequest:
    reference: str  # ours, unique per pickup: a retry finds the first booking
    address: Address
    window: PickupWindow
    bookings: Sequence[Booking]  # the shipments the courier collects
    parcels: int
    weight_kg: Decimal


@dataclass(frozen=True)
class BookedPickup:
    reference: str
    external_id: str  # the carrier's order number
    window: PickupWindow
    handles: dict[str, str] = field(default_factory=dict)  # e.g. a checksum the carrier needs to cancel


@dataclass(frozen=True)
class TrackingEvent:
    tracking_number: str
    status: TrackingStatus
    occurred_at: datetime
    code: str  # the carrier's own status code, kept for the operator
    description: str | None = None
    location: str | None = None


@runtime_checkable
class Carrier(Protocol):
    name: str
    # most tracking numbers one ``track`` call takes; the hub batches by it
    tracking_batch_size: int

    def services(self) -> Sequence[str]:
        """The service codes this account can book (checked when mappings/delivery.toml loads)."""
        ...

    def book(self, request: ShipmentRequest) -> Booking:
        """Book the shipment, or find the one booked under ``request.reference`` already.

        Raises RetryableError while an asynchronous booking is not confirmed yet (called again, it
        goes on polling), PermanentError with the carrier's reasons when it refuses the shipment."""
        ...

    def label(self, booking: Booking, fmt: LabelFormat, size: LabelSize) -> Label:
        """The shipment's label (every parcel's). RetryableError while the carrier has none yet."""
        ...

    def cancel(self, booking: Booking) -> None:
        """Cancel the shipment; CancelRefused when the carrier no longer allows it. Cancelling a
        shipment already cancelled succeeds (a retry)."""
        ...

    def pickup_windows(self, address: Address, day: date, bookings: Sequence[Booking] = ()) -> Sequence[PickupWindow]:
        """The windows a courier can come on ``day`` for these shipments (none: no pickup that day).
        Some carriers propose windows per shipment, others per address."""
        ...

    def book_pickup(self, request: PickupRequest) -> BookedPickup:
        """Order a courier, or find the pickup booked under ``request.reference`` already."""
        ...

    def cancel_pickup(self, pickup: BookedPickup) -> None:
        """Cancel a booked pickup; CancelRefused when the carrier no longer allows it."""
        ...

    def track(self, tracking_numbers: Sequence[str]) -> Sequence[TrackingEvent]:
        """Every event the carrier has for these numbers (at most ``tracking_batch_size``), oldest
        first; a number the carrier does not know yet has no events."""
        ...
