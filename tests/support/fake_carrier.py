"""An in-memory carrier (kind fake-carrier), a channel that shows tracking numbers, and an ERP with
weights, for the shipping tests. The carrier keeps every booking by our reference, as the real ones
are asked to: a second book() with a reference it knows returns the first booking, unless the request
says it is the first call."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, time
from decimal import Decimal
from typing import Any

import pytest

from hub.kernel.errors import PermanentError, RetryableError
from hub.kernel.ports.capability import Capability
from hub.kernel.ports.carrier import (
    BookedParcel,
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
from hub.kernel.ports.channel import TrackingNotice
from hub.kernel.ports.erp import ErpBatch, PriceRecord, ProductRecord, StockRecord
from hub.kernel.types import Address
from hub.platform import registry
from tests.support.fake_connectors import INSTANCES, FakeOrderChannel, FakeSalesErp


def tiny_pdf(text: str) -> bytes:
    """A one-page PDF (as a carrier's label is), made with pypdf so the merge can read it."""
    import io

    from pypdf import PdfWriter
    from pypdf.generic import NameObject, TextStringObject

    writer = PdfWriter()
    page = writer.add_blank_page(width=298, height=420)  # A6 in points
    page[NameObject("/HubLabel")] = TextStringObject(text)
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


@dataclass
class FakeCarrier:
    name: str
    tracking_batch_size: int = 2
    bookings: dict[str, Booking] = field(default_factory=dict)
    requests: list[ShipmentRequest] = field(default_factory=list)  # every book() call
    pending_polls: int = 0  # book() answers "not confirmed yet" this many times first
    refuse: str | None = None  # book() refuses with this reason
    label_not_ready: int = 0
    label_calls: list[str] = field(default_factory=list)  # every label() call, by reference
    cancelled: set[str] = field(default_factory=set)
    events: dict[str, list[TrackingEvent]] = field(default_factory=dict)
    pickups: dict[str, BookedPickup] = field(default_factory=dict)
    pickup_requests: list[PickupRequest] = field(default_factory=list)
    handed_over: set[str] = field(default_factory=set)
    on_book: Callable[[ShipmentRequest], None] | None = None  # what happens while the carrier books

    def services(self) -> Sequence[str]:
        return ["courier", "locker"]

    def book(self, request: ShipmentRequest) -> Booking:
        self.requests.append(request)
        if self.on_book is not None:
            self.on_book(request)
        if request.reference in self.bookings and not request.first_call:
            return self.bookings[request.reference]
        if self.refuse:
            raise PermanentError(self.refuse)
        if self.pending_polls > 0:
            self.pending_polls -= 1
            raise RetryableError(f"{self.name}: {request.reference} not confirmed yet")
        n = len(self.bookings) + 1
        booking = Booking(reference=request.reference, external_id=f"{self.name}-{n}",
                          parcels=[BookedParcel(tracking_number=f"{self.name.upper()}{n:04d}{i}")
                                   for i, _ in enumerate(request.parcels, start=1)], operator="inpost")
        # a first call is trusted, as the real connectors trust it: no lookup, so a hub that marked a
        # retry as a first call books twice (a second booking under the reference + "#n")
        key = request.reference if request.reference not in self.bookings else f"{request.reference}#{n}"
        self.bookings[key] = booking
        return booking

    def label(self, booking: Booking, fmt: LabelFormat, size: LabelSize) -> Label:
        self.label_calls.append(booking.reference)
        if self.label_not_ready > 0:
            self.label_not_ready -= 1
            raise RetryableError(f"{self.name}: label of {booking.reference} not ready yet")
        if fmt == "zpl":
            return Label(f"^XA^FD{booking.reference}^FS^XZ".encode(), "zpl")
        return Label(tiny_pdf(booking.reference), "pdf")

    def cancel(self, booking: Booking) -> None:
        if booking.reference in self.handed_over:
            raise CancelRefused("the parcel was handed over to the courier")
        self.cancelled.add(booking.reference)

    def pickup_windows(self, address: Address, day: date, bookings: Sequence[Booking] = ()) -> Sequence[PickupWindow]:
        return [PickupWindow(day=day, start=time(0, 0), end=time(23, 59), proposal_id="w1")]

    def book_pickup(self, request: PickupRequest) -> BookedPickup:
        self.pickup_requests.append(request)
        return self.pickups.setdefault(request.reference, BookedPickup(
            reference=request.reference, external_id=f"P{len(self.pickups) + 1}", window=request.window,
            handles={"checksum": "x"}))

    def cancel_pickup(self, pickup: BookedPickup) -> None:
        self.pickups.pop(pickup.reference, None)

    def track(self, tracking_numbers: Sequence[str]) -> Sequence[TrackingEvent]:
        assert len(tracking_numbers) <= self.tracking_batch_size
        return [e for n in tracking_numbers for e in self.events.get(n, [])]


class FakeTrackingChannel(FakeOrderChannel):
    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.notices: list[TrackingNotice] = []
        self.tracking_keys: list[str] = []
        self.tracking_failures = 0  # the next N calls fail (the channel is down)

    def add_tracking(self, notice: TrackingNotice, *, idempotency_key: str) -> None:
        self.tracking_keys.append(idempotency_key)
        if self.tracking_failures:
            self.tracking_failures -= 1
            raise RetryableError("the shop did not answer (fake)")
        shown = {n for x in self.notices for n in x.tracking_numbers}
        if not set(notice.tracking_numbers) <= shown:
            self.notices.append(notice)


class WeightedErp(FakeSalesErp):
    """The fake ERP with product weights (the feed's weight_kg)."""

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.weights: dict[str, Decimal | None] = {}

    def _batch(self) -> ErpBatch:
        products = [ProductRecord(sku, f"Product {sku}", "23", ean=r["ean"], weight_kg=self.weights.get(sku))
                    for sku, r in self.rows.items()]
        prices = [PriceRecord(sku, r["price"], cost_net=r["cost"]) for sku, r in self.rows.items()]
        stock = [StockRecord(sku, "MAIN", r["stock"]) for sku, r in self.rows.items()]
        return ErpBatch(products, stock, prices, [], cursor_after=str(self.version), snapshot=True)


@pytest.fixture
def shipping_fakes() -> Iterator[None]:
    def factory(cls: type) -> Any:
        def make(name: str, options: Any, services: Any) -> Any:
            return INSTANCES.setdefault(name, cls(name))
        return make

    registry.register(registry.ConnectorSpec(
        kind="fake-erp", role="erp", description="test ERP", factory=factory(WeightedErp),
        capabilities=frozenset({Capability.ERP_INCREMENTAL, Capability.ERP_SNAPSHOT,
                                Capability.ERP_SALES_DOCUMENTS, Capability.ERP_RESTOCK})))
    registry.register(registry.ConnectorSpec(
        kind="fake-channel", role="channel", description="test channel", factory=factory(FakeTrackingChannel),
        capabilities=frozenset({Capability.BATCH_STOCK, Capability.ORDERS, Capability.ORDER_STATUS,
                                Capability.TRACKING_PUSH}), push_batch_size=100))
    registry.register(registry.ConnectorSpec(
        kind="fake-carrier", role="carrier", description="test carrier", factory=factory(FakeCarrier),
        capabilities=frozenset({Capability.LABEL_PDF, Capability.LABEL_ZPL, Capability.PICKUP,
                                Capability.TRACKING, Capability.LOOKUP_BY_REFERENCE})))
    INSTANCES.clear()
    yield
    for kind in ("fake-erp", "fake-channel", "fake-carrier"):
        registry.unregister(kind)
    INSTANCES.clear()
