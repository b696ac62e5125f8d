"""The sales-channel seam: offers (listings), orders, returns and refunds."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any, Literal, Protocol, runtime_checkable

from hub.kernel.types import Address, PickupPoint
from hub.kernel.vat import VatRate


@dataclass(frozen=True)
class Listing:
    """What a channel really shows for one offer. ``sku`` is the seller's signature on the
    offer (a marketplace offer's external id, a shop product's SKU), used to bind the offer to a SKU."""

    external_id: str
    sku: str | None
    ean: str | None
    quantity: int
    price_gross: Decimal | None  # what a buyer pays now
    currency: str = "PLN"
    active: bool = True
    # an offer not on sale (``active`` False) that keeps a stock of its own (an ended marketplace offer
    # shows 0 but stores what was last set): tells a sale (the stock went down) from an offer that
    # stopped being offered with its units still there
    stock: int | None = None
    content_hash: str | None = None
    # the price the hub sets, when a buyer pays another (a sale the seller runs in the shop, by their
    # configured choice): the hub acknowledges and corrects this one, and keeps price_gross as seen
    list_price: Decimal | None = None


@dataclass(frozen=True)
class ListingChange:
    external_id: str
    sku: str
    quantity: int | None = None
    price_gross: Decimal | None = None
    currency: str = "PLN"


@dataclass(frozen=True)
class ChangeResult:
    """Per offer: ``ok`` means the channel now shows the change's quantity and price."""

    external_id: str
    ok: bool
    error: str | None = None
    retryable: bool = False


LineKind = Literal["goods", "shipping", "fee"]


@dataclass(frozen=True)
class OrderLine:
    sku: str | None  # the seller's signature on the offer / the shop's SKU; None when the channel has none
    offer_id: str | None
    name: str
    quantity: int
    unit_price_gross: Decimal
    vat_rate: VatRate | None = None
    line_id: str | None = None  # the channel's id of the line (refunds name lines by it)
    # goods reserve stock and need a SKU; a charge (delivery, a fee, a discount as a negative fee) is a
    # service line of the document: no SKU, no reservation
    kind: LineKind = "goods"


@dataclass(frozen=True)
class Payment:
    status: Literal["unpaid", "paid", "refunded", "partially_refunded"]
    amount: Decimal
    currency: str
    method: str | None = None
    cash_on_delivery: bool = False
    payment_id: str | None = None  # the channel's payment id (refunds name it)


@dataclass(frozen=True)
class InvoiceRequest:
    company: str
    nip: str
    address: Address


@dataclass(frozen=True)
class ChannelOrder:
    channel_account: str
    external_id: str
    revision: str
    status: str  # the channel's own status; mappings/order_status.toml translates it
    lines: Sequence[OrderLine]
    buyer_email: str | None
    buyer_login: str | None
    delivery_address: Address | None
    pickup_point: PickupPoint | None
    delivery_method: str | None
    payment: Payment
    invoice: InvoiceRequest | None
    currency: str
    created_at: datetime
    updated_at: datetime
    raw: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)


@dataclass(frozen=True)
class OrderEvent:
    """One entry of a channel's order journal. Duplicates and out-of-order entries happen: the
    hub dedupes by (channel, external id) and the order's revision decides."""

    cursor: str
    kind: Literal["created", "updated", "cancelled"]
    external_id: str
    occurred_at: datetime
    revision: str | None = None


@dataclass(frozen=True)
class ReturnLine:
    sku: str | None
    offer_id: str | None
    quantity: int
    line_id: str | None = None  # the order line it returns
    amount_gross: Decimal | None = None


@dataclass(frozen=True)
class ChannelReturn:
    """A buyer's return as the channel reports it; the hub keeps the RMA state."""

    channel_account: str
    external_id: str
    order_external_id: str
    status: str  # the channel's own status (e.g. CREATED, DISPATCHED, DELIVERED)
    lines: Sequence[ReturnLine]
    reason: str | None
    created_at: datetime
    updated_at: datetime
    refunded: bool = False  # the channel already shows the money back (a shop refund made by hand)


@dataclass(frozen=True)
class RefundRequest:
    order_external_id: str
    payment_id: str | None
    lines: Sequence[ReturnLine]
    amount: Decimal
    currency: str
    reason: str


@dataclass(frozen=True)
class RefundResult:
    external_id: str
    status: str  # the channel's status of the refund (e.g. NEW, SUCCESS)


@dataclass(frozen=True)
class TrackingNotice:
    """Tracking numbers for the buyer, on the channel's order."""

    order_external_id: str
    operator: str  # who delivers, as the hub names carriers (hub.kernel.ports.carrier.Booking.operator)
    tracking_numbers: Sequence[str]
    # True: the parcel was booked through the channel's own shipping, which attaches it by itself
    booked_by_channel: bool = False


@runtime_checkable
class SalesChannel(Protocol):
    name: str
    # optional: ``order_time_resolution`` (a timedelta), how finely the channel stamps its orders'
    # times, when coarser than a microsecond (e.g. a second); read with getattr

    def listings(self) -> Iterator[Listing]:
        """Every offer as the channel shows it now (for reconciliation and binding discovery)."""
        ...

    def push(self, changes: Sequence[ListingChange], *, idempotency_key: str) -> Sequence[ChangeResult]:
        """Apply quantity and price changes in as few requests as the vendor allows.

        Idempotent per ``idempotency_key``: called again with the same key after a crash or a
        timeout, it finds what the first call did (e.g. reads back vendor commands whose ids
        derive from the key) instead of doing it twice. Returns one result per change; raises
        RetryableError / LoginNeeded / PermanentError for the batch as a whole.
        """
        ...


@runtime_checkable
class OrderChannel(Protocol):
    """Orders, their status and returns (the orders capability)."""

    name: str

    def order_events(self, cursor: str | None) -> tuple[Sequence[OrderEvent], str | None]:
        """Events after ``cursor`` and the cursor to store with what they produced. ``None``: the
        channel's latest position (the hub starts there; reconciliation covers the rest)."""
        ...

    def order(self, external_id: str) -> ChannelOrder: ...

    def orders_updated_since(self, since: datetime) -> Iterator[ChannelOrder]:
        """Every order changed at or after ``since``: the reconciliation that catches what the
        journal missed (and the polling itself for channels without a journal)."""
        ...

    def set_order_status(self, external_id: str, status: str, *, revision: str | None) -> str | None:
        """Push the channel's own status value (mapped by mappings/order_status.toml); returns the
        order's new revision. A stale ``revision`` is the connector's to resolve (refetch, retry)."""
        ...


@runtime_checkable
class TrackingChannel(Protocol):
    """Channels that show the buyer a parcel's tracking numbers (Capability.TRACKING_PUSH)."""

    name: str

    def add_tracking(self, notice: TrackingNotice, *, idempotency_key: str) -> None:
        """Show the tracking numbers on the order. Idempotent: a number the order shows already is not
        added again (a retry; a parcel the channel's own shipping attached by itself)."""
        ...


@runtime_checkable
class ReturnsChannel(Protocol):
    """Buyers' returns and refunds (the returns capability)."""

    name: str

    def returns(self, cursor: str | None) -> tuple[Sequence[ChannelReturn], str | None]:
        """Returns created or changed after ``cursor``, and the new cursor."""
        ...

    def reject_return(self, external_id: str, reason: str) -> None: ...

    def refund(self, request: RefundRequest, *, idempotency_key: str) -> RefundResult:
        """Money back through the channel, exactly once per ``idempotency_key`` (the vendor's
        command id derives from it, or the refund is looked up by it before a retry)."""
        ...
