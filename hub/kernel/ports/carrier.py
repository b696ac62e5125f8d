"""The carrier seam: shipments, labels, pickups and tracking."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Literal, Protocol, runtime_checkable

from hub.kernel.types import Address, PickupPoint


@dataclass(frozen=True)
class Parcel:
    weight_kg: Decimal
    length_cm: int | None = None
    width_cm: int | None = None
    height_cm: int | None = None
    template: str | None = None  # e.g. a locker size


@dataclass(frozen=True)
class ShipmentRequest:
    reference: str  # our idempotency reference; carriers are searched by it before rebooking
    service: str
    sender: Address
    receiver: Address
    parcels: Sequence[Parcel]
    pickup_point: PickupPoint | None = None
    cod_amount: Decimal | None = None
    insurance_amount: Decimal | None = None
    currency: str = "PLN"


@dataclass(frozen=True)
class Shipment:
    carrier: str
    reference: str
    external_id: str
    tracking_numbers: Sequence[str]
    label: bytes | None
    label_format: Literal["pdf", "zpl", "epl"] | None


@dataclass(frozen=True)
class PickupRequest:
    reference: str
    address: Address
    ready_from: datetime
    ready_to: datetime
    shipments: Sequence[str]


@dataclass(frozen=True)
class Pickup:
    carrier: str
    reference: str
    external_id: str
    ready_from: datetime
    ready_to: datetime


@dataclass(frozen=True)
class TrackingEvent:
    tracking_number: str
    status: Literal["created", "in_transit", "out_for_delivery", "ready_for_pickup", "delivered",
                    "returned", "exception"]
    occurred_at: datetime
    description: str | None = None


@runtime_checkable
class Carrier(Protocol):
    name: str

    def book(self, request: ShipmentRequest) -> Shipment: ...

    def find(self, reference: str) -> Shipment | None:
        """The shipment booked under our reference, if any (so a retry never books twice)."""
        ...

    def order_pickup(self, request: PickupRequest) -> Pickup: ...

    def track(self, tracking_numbers: Iterable[str]) -> Sequence[TrackingEvent]: ...
