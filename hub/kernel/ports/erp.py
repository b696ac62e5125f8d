"""The ERP seam: reading products, stock and prices, and booking sales documents."""

from __future__ import annotations

from collections.abc import Container, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Literal, NamedTuple, Protocol, runtime_checkable

from hub.kernel.ports.channel import ChannelOrder, ReturnLine
from hub.kernel.types import Address
from hub.kernel.vat import VatRate


# slots: a whole catalogue's records are held at once while a feed is read (bench/scale.py: a third of
# a parsed row's memory was these objects' dictionaries)
@dataclass(frozen=True, slots=True)
class ProductRecord:
    sku: str
    name: str
    vat_rate: VatRate
    ean: str | None = None
    weight_kg: Decimal | None = None


@dataclass(frozen=True, slots=True)
class StockRecord:
    sku: str
    warehouse: str
    quantity: int


@dataclass(frozen=True, slots=True)
class PriceRecord:
    sku: str
    price_gross: Decimal
    currency: str = "PLN"
    cost_net: Decimal | None = None


@dataclass(frozen=True, slots=True)
class RejectedRecord:
    """A source row that failed validation: quarantined, never silently dropped."""

    source: str  # file name and line, query name and key...
    sku: str | None
    field: str
    value: str
    reason: str


class FeedRow(NamedTuple):
    """One row of a read of the whole catalogue, valid on its own: a SKU's product and price and its
    stock in one warehouse. The rules across rows (a SKU and warehouse once, a SKU's rows agreeing)
    are the hub's, applied to the whole read in the database (hub.catalog.stage).

    A plain tuple in the stage's column order, its SKU once: a first read of 1,000,000 rows makes a
    million of them, and the hub stages them as they are (three records and a wrapper per row, then a
    tuple built from them, were a sixth of bench/scale.py's first read). ``of`` builds one from records."""

    position: int  # the row's place in the read: the earlier of two clashing rows wins
    source: str  # file and line, query and key
    fingerprint: int | None  # a signed 64-bit hash of the raw row and the parsing options
    sku: str
    warehouse: str
    quantity: int
    name: str
    ean: str | None
    vat_rate: VatRate
    weight_kg: Decimal | None
    price_gross: Decimal
    currency: str
    cost_net: Decimal | None

    @classmethod
    def of(cls, product: ProductRecord, stock: StockRecord, price: PriceRecord, source: str, position: int,
           fingerprint: int | None = None) -> FeedRow:
        """The row of one SKU's records (they name the same SKU)."""
        if not product.sku == stock.sku == price.sku:
            raise ValueError(f"{source}: the records name different SKUs ({product.sku!r}, {stock.sku!r}, "
                             f"{price.sku!r})")
        return cls(position, source, fingerprint, stock.sku, stock.warehouse, stock.quantity, product.name,
                   product.ean, product.vat_rate, product.weight_kg, price.price_gross, price.currency,
                   price.cost_net)

    @property
    def product(self) -> ProductRecord:
        return ProductRecord(self.sku, self.name, self.vat_rate, self.ean, self.weight_kg)

    @property
    def stock(self) -> StockRecord:
        return StockRecord(self.sku, self.warehouse, self.quantity)

    @property
    def price(self) -> PriceRecord:
        return PriceRecord(self.sku, self.price_gross, self.currency, self.cost_net)


class KnownRow(NamedTuple):
    """A row the source did not parse: its fingerprint is among those the hub passed as ``known``
    (the row is byte for byte the one the hub stored). A plain tuple: a read of an unchanged
    1,000,000-row feed makes a million of them, and the hub stages them as they are."""

    fingerprint: int
    source: str
    position: int


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
    # True when the batch starts a new read of the whole source (a feed file that changed): the
    # rejects without a SKU of earlier reads (a bad encoding, a missing column) are over unless this
    # batch reports them again
    fresh_read: bool = False
    # A part of one streamed read of the whole catalogue (``rows`` not None): the hub stages every part
    # and applies them together when the complete one arrives, with its ``snapshot`` flag (a file found
    # unreadable late in the read clears it). ``products``, ``stock`` and ``prices`` are then empty.
    rows: Sequence[FeedRow] | None = None
    unchanged: Sequence[KnownRow] = ()


DocumentKind = Literal["invoice", "receipt"]


@dataclass(frozen=True)
class DocumentLine:
    """One line of a sales document with its amounts as the hub computed them (2 decimals, Polish
    rounding): ``gross`` = unit gross price x quantity; ``net`` and ``vat`` are the line's own,
    for information (the document's VAT is its rates' VAT, ``SalesDocument.rates``)."""

    line_no: int  # 1-based, in the order's line order
    sku: str | None  # None: sold without one (a delivery fee): a one-time service under its name
    offer_id: str | None
    line_id: str | None
    name: str
    quantity: int
    unit_price_gross: Decimal  # as the channel gave it
    unit_price_net: Decimal  # to 4 decimals, informative: documents are priced gross
    vat_rate: VatRate
    net: Decimal
    vat: Decimal
    gross: Decimal


@dataclass(frozen=True)
class RateTotal:
    """A document's amounts at one VAT rate: what the ERP's VAT table shows, and what counts."""

    vat_rate: VatRate
    net: Decimal
    vat: Decimal
    gross: Decimal


@dataclass(frozen=True)
class DocumentBuyer:
    """The buyer's invoice details as the order asks for them, decided by the hub: the NIP normalised
    (``""``: none given), the buyer's country and its place in the EU's VAT."""

    company: str
    nip: str  # a Polish NIP as its 10 digits; another VAT id upper-case, compact; "" for none
    address: Address | None
    country: str  # ISO code, upper-case; "PL" when the address gives none
    eu_vat_prefix: str  # the VAT-number prefix of an EU member state ("EL" for Greece); "" outside the EU
    intra_eu: bool  # a buyer in another EU member state (not Poland)


@dataclass(frozen=True)
class SalesDocument:
    """An accepted order as the ERP should book it (one per order, keyed by reference): the order as
    the channel gave it and what the hub decided for the document (hub.orders.sales_documents builds
    it): its kind, its buyer, its lines and amounts. An ERP connector renders these values in its
    formats; it computes no VAT and decides nothing."""

    reference: str  # "<channel>/<order id>": unique, and what the ERP is searched by before a retry
    order: ChannelOrder  # the channel's facts (buyer's e-mail and login, delivery, payment, currency...)
    issued_at: datetime  # UTC
    kind: DocumentKind  # "invoice" to ``buyer`` (who gave a NIP); "receipt": the anonymous retail buyer
    buyer: DocumentBuyer | None  # None: no invoice asked for
    lines: Sequence[DocumentLine]
    rates: Sequence[RateTotal]  # in hub.kernel.vat.VAT_CODES order, only the rates the document uses
    net: Decimal  # the sums over ``rates``
    vat: Decimal
    gross: Decimal


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
    the cursor to store with them; an unchanged source returns an empty batch and the same cursor.
    ``known``: fingerprints of rows the hub has stored; a source that fingerprints its rows reports a
    row whose fingerprint is known as a KnownRow instead of parsing it."""

    name: str

    def changes(self, cursor: str | None, *, limit: int, known: Container[int] = frozenset()) -> ErpBatch: ...

    def snapshot(self, *, known: Container[int] = frozenset()) -> Iterator[ErpBatch]: ...


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
