"""The ports connectors implement, and the value types they exchange with the spine.

The spine talks to every ERP, sales channel and carrier through these
Protocols only. Values are plain frozen dataclasses: money is Decimal, times
are timezone-aware UTC, quantities are whole units. A connector maps its
vendor's payloads to and from these types in its own ``mapping`` module.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any, Literal, Protocol, runtime_checkable

VatRate = Literal["23", "8", "5", "0", "zw", "np", "oo"]


class Capability(StrEnum):
    """What a connector can do; the spine checks capabilities, never connector types."""

    # ERP
    ERP_INCREMENTAL = "erp.incremental"  # changes since a cursor
    ERP_SNAPSHOT = "erp.snapshot"  # full snapshot on demand
    ERP_SALES_DOCUMENTS = "erp.sales_documents"  # accepts orders as sales documents
    ERP_RESTOCK = "erp.restock"  # accepts returned goods
    # channels
    LISTINGS_READ = "channel.listings_read"
    BATCH_STOCK = "channel.batch_stock"
    BATCH_PRICE = "channel.batch_price"
    ORDERS = "channel.orders"
    ORDER_STATUS = "channel.order_status"
    TRACKING_PUSH = "channel.tracking_push"
    RETURNS = "channel.returns"
    REFUNDS = "channel.refunds"
    # carriers
    LABEL_PDF = "carrier.label_pdf"
    LABEL_ZPL = "carrier.label_zpl"
    PICKUP = "carrier.pickup"
    TRACKING = "carrier.tracking"
    CASH_ON_DELIVERY = "carrier.cod"
    PICKUP_POINTS = "carrier.pickup_points"
    LOOKUP_BY_REFERENCE = "carrier.lookup_by_reference"


# --- ERP ------------------------------------------------------------------------


@dataclass(frozen=True)
class ProductRecord:
    sku: str
    name: str
    vat_rate: VatRate
    ean: str | None = None
    weight_kg: Decimal | None = None
    attributes: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class StockRecord:
    sku: str
    warehouse: str
    quantity: int


@dataclass(frozen=True)
class PriceRecord:
    sku: str
    price_gross: Decimal
    currency: str = "PLN"
    cost_net: Decimal | None = None


@dataclass(frozen=True)
class RejectedRecord:
    """A source row that failed validation: quarantined, never silently dropped."""

    source: str  # file name and line, query name and key...
    sku: str | None
    field: str
    value: str
    reason: str


@dataclass(frozen=True)
class ErpBatch:
    """Records changed since ``cursor_before``; the spine stores ``cursor_after`` in the same
    transaction as the records, so a crash mid-batch never skips one."""

    products: Sequence[ProductRecord]
    stock: Sequence[StockRecord]
    prices: Sequence[PriceRecord]
    rejected: Sequence[RejectedRecord]
    cursor_after: str | None
    complete: bool = True  # False: more batches follow for the same run
    # True when the batch (with the others of the same run) is the ERP's whole catalogue:
    # stock of SKUs and warehouses absent from it is zero.
    snapshot: bool = False


@dataclass(frozen=True)
class SalesDocument:
    """An accepted order as the ERP should book it (one per order, keyed by reference)."""

    reference: str  # "<channel>/<order id>": unique, and what the ERP is searched by before a retry
    order: ChannelOrder
    issued_at: datetime | None = None


@dataclass(frozen=True)
class RestockDocument:
    """Goods a buyer returned, back into the ERP's stock (one per accepted return)."""

    reference: str
    order_reference: str
    lines: Sequence[ReturnLine]
    warehouse: str | None = None


@runtime_checkable
class ErpSource(Protocol):
    """Reads the ERP. ``changes`` returns records after ``cursor`` (None: from the start) and
    the cursor to store with them; an unchanged source returns an empty batch and the same cursor."""

    name: str

    def changes(self, cursor: str | None, *, limit: int) -> ErpBatch: ...

    def snapshot(self) -> Iterator[ErpBatch]: ...


@runtime_checkable
class ErpSalesSink(Protocol):
    """Takes accepted orders as sales documents, and returned goods back into stock."""

    def post_sales_document(self, document: SalesDocument) -> str:
        """Book the document; idempotent by ``document.reference`` (a retry after a crash between
        writing and recording finds the first write); returns the ERP's id for it."""
        ...

    def restock(self, document: RestockDocument) -> str:
        """Book returned goods back into stock; idempotent by ``document.reference``."""
        ...

    def cancel_sales_document(self, reference: str, reason: str) -> str:
        """The order behind a booked document was cancelled: the ERP reverses the sale (and takes the
        goods back into its stock). Idempotent by ``reference``."""
        ...


# --- sales channels -----------------------------------------------------------------


@dataclass(frozen=True)
class Listing:
    """What a channel really shows for one offer. ``sku`` is the seller's signature on the
    offer (a marketplace offer's external id, a shop product's SKU), used to bind the offer to a SKU."""

    external_id: str
    sku: str | None
    ean: str | None
    quantity: int
    price_gross: Decimal | None
    currency: str = "PLN"
    active: bool = True
    content_hash: str | None = None


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


@dataclass(frozen=True)
class Address:
    name: str
    street: str
    city: str
    postal_code: str
    country: str = "PL"
    company: str | None = None
    phone: str | None = None
    email: str | None = None


@dataclass(frozen=True)
class PickupPoint:
    id: str
    name: str | None = None
    address: Address | None = None


@dataclass(frozen=True)
class OrderLine:
    sku: str | None  # the seller's signature on the offer / the shop's SKU; None when the channel has none
    offer_id: str | None
    name: str
    quantity: int
    unit_price_gross: Decimal
    vat_rate: VatRate | None = None
    line_id: str | None = None  # the channel's id of the line (refunds name lines by it)


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


@runtime_checkable
class SalesChannel(Protocol):
    name: str

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


# --- carriers ------------------------------------------------------------------------


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
