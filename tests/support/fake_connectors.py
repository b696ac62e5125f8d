"""In-memory ERP and channel connectors for the sync tests (registered as kinds fake-erp / fake-channel)."""

from __future__ import annotations

import threading
from collections.abc import Container, Iterator, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from hub.kernel.ports.capability import Capability
from hub.kernel.ports.channel import (
    ChangeResult,
    ChannelOrder,
    ChannelReturn,
    InvoiceRequest,
    ListingChange,
    OrderEvent,
    OrderLine,
    Payment,
    RefundResult,
)
from hub.kernel.ports.channel import Listing as Offer
from hub.kernel.ports.erp import ErpBatch, PriceRecord, ProductRecord, RejectedRecord, StockRecord
from hub.kernel.types import Address
from hub.platform import registry

INSTANCES: dict[str, Any] = {}


class FakeErp:
    def __init__(self, name: str) -> None:
        self.name = name
        self.rows: dict[str, dict[str, Any]] = {}
        self.rejected: list[RejectedRecord] = []
        self.version = 0

    def set(self, sku: str, stock: int, price: str, cost: str | None = None, ean: str | None = None) -> None:
        self.rows[sku] = {"stock": stock, "price": Decimal(price), "cost": Decimal(cost) if cost else None, "ean": ean}
        self.version += 1

    def _batch(self) -> ErpBatch:
        products = [ProductRecord(sku, f"Product {sku}", "23", ean=r["ean"]) for sku, r in self.rows.items()]
        prices = [PriceRecord(sku, r["price"], cost_net=r["cost"]) for sku, r in self.rows.items()]
        stock = [StockRecord(sku, "MAIN", r["stock"]) for sku, r in self.rows.items()]
        return ErpBatch(products, stock, prices, list(self.rejected), cursor_after=str(self.version), snapshot=True)

    def changes(self, cursor: str | None, *, limit: int, known: Container[int] = frozenset()) -> ErpBatch:
        if cursor == str(self.version):
            return ErpBatch([], [], [], [], cursor_after=cursor)
        return self._batch()

    def snapshot(self, *, known: Container[int] = frozenset()) -> Iterator[ErpBatch]:
        yield self._batch()


class FakeChannel:
    def __init__(self, name: str) -> None:
        self.name = name
        self.offers: dict[str, dict[str, Any]] = {}
        self.applied: list[tuple[str, int | None, Decimal | None]] = []
        self.keys: list[str] = []
        self.gate = threading.Event()
        self.gate.set()
        self.entered = threading.Event()
        self.listings_error: Exception | None = None  # raised by listings(): the channel is down

    def listings(self) -> Iterator[Offer]:
        if self.listings_error is not None:
            raise self.listings_error
        for oid, o in self.offers.items():
            yield Offer(oid, o.get("signature"), o.get("ean"), o["quantity"], o["price"])

    def push(self, changes: Sequence[ListingChange], *, idempotency_key: str) -> Sequence[ChangeResult]:
        self.entered.set()
        assert self.gate.wait(20)
        if idempotency_key in self.keys:  # the vendor's idempotency: a retried key is not applied twice
            return [ChangeResult(c.external_id, ok=True) for c in changes]
        self.keys.append(idempotency_key)
        out = []
        for c in changes:
            offer = self.offers[c.external_id]
            if c.quantity is not None:
                offer["quantity"] = c.quantity
            if c.price_gross is not None:
                offer["price"] = c.price_gross
            self.applied.append((c.external_id, c.quantity, c.price_gross))
            out.append(ChangeResult(c.external_id, ok=True))
        return out


@pytest.fixture
def fakes() -> Iterator[None]:
    def factory(cls: type) -> Any:
        def make(name: str, options: Any, services: Any) -> Any:
            return INSTANCES.setdefault(name, cls(name))
        return make

    registry.register(registry.ConnectorSpec(
        kind="fake-erp", role="erp", description="test ERP", factory=factory(FakeErp),
        capabilities=frozenset({Capability.ERP_INCREMENTAL, Capability.ERP_SNAPSHOT})))
    registry.register(registry.ConnectorSpec(
        kind="fake-channel", role="channel", description="test channel", factory=factory(FakeChannel),
        capabilities=frozenset({Capability.BATCH_STOCK, Capability.BATCH_PRICE}), push_batch_size=2))
    INSTANCES.clear()
    yield
    registry.unregister("fake-erp")
    registry.unregister("fake-channel")
    INSTANCES.clear()


# --- orders, returns, ERP documents ------------------------------------------------------------

ADDRESS = Address("Jan Kowalski", "Prosta 1", "Warszawa", "00-001", "PL", phone="600100200")


def make_order(channel: str, external_id: str, lines: list[tuple[str | None, str | None, int, str]], *,
               status: str = "READY_FOR_PROCESSING", paid: bool = True, revision: str = "r1",
               address: Address | None = ADDRESS, nip: str | None = None, cod: bool = False,
               placed_at: datetime | None = None) -> ChannelOrder:
    order_lines = [OrderLine(sku=sku, offer_id=offer, name=f"item {sku or offer}", quantity=qty,
                             unit_price_gross=Decimal(price), vat_rate="23", line_id=f"{external_id}-{n}")
                   for n, (sku, offer, qty, price) in enumerate(lines, start=1)]
    total = sum((line.unit_price_gross * line.quantity for line in order_lines), Decimal("0"))
    now = placed_at or datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
    return ChannelOrder(
        channel_account=channel, external_id=external_id, revision=revision, status=status, lines=order_lines,
        buyer_email="jan@example.pl", buyer_login="jan", delivery_address=address, pickup_point=None,
        delivery_method="courier", payment=Payment("paid" if paid else "unpaid", total, "PLN",
                                                   method="cod" if cod else "online", cash_on_delivery=cod,
                                                   payment_id=f"pay-{external_id}"),
        invoice=InvoiceRequest("Firma Sp. z o.o.", nip, ADDRESS) if nip else None, currency="PLN",
        created_at=now, updated_at=now)


class FakeOrderChannel(FakeChannel):
    """A channel with an order journal, status updates, returns and refunds."""

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.orders: dict[str, ChannelOrder] = {}
        self.journal: list[OrderEvent] = []
        self.statuses: list[tuple[str, str, str | None]] = []
        self.channel_returns: list[ChannelReturn] = []
        self.refunds: dict[str, RefundResult] = {}
        self.rejected: list[tuple[str, str]] = []

    def place(self, order: ChannelOrder, *, kind: str = "created", duplicate: bool = False) -> None:
        self.orders[order.external_id] = order
        event = OrderEvent(str(len(self.journal) + 1), kind, order.external_id, order.updated_at, order.revision)
        self.journal.append(event)
        if duplicate:
            self.journal.append(OrderEvent(str(len(self.journal) + 1), kind, order.external_id, order.updated_at,
                                           order.revision))

    def order_events(self, cursor: str | None) -> tuple[list[OrderEvent], str | None]:
        if cursor is None:
            return [], str(len(self.journal))
        return self.journal[int(cursor):], str(len(self.journal))

    def order(self, external_id: str) -> ChannelOrder:
        return self.orders[external_id]

    def orders_updated_since(self, since: datetime) -> Iterator[ChannelOrder]:
        yield from (o for o in self.orders.values() if o.updated_at >= since)

    def set_order_status(self, external_id: str, status: str, *, revision: str | None) -> str | None:
        self.statuses.append((external_id, status, revision))
        return f"{revision}+{status}"

    def returns(self, cursor: str | None) -> tuple[list[ChannelReturn], str | None]:
        start = int(cursor or 0)
        return self.channel_returns[start:], str(len(self.channel_returns))

    def reject_return(self, external_id: str, reason: str) -> None:
        self.rejected.append((external_id, reason))

    def refund(self, request: Any, *, idempotency_key: str) -> RefundResult:
        if idempotency_key not in self.refunds:
            self.refunds[idempotency_key] = RefundResult(f"refund-{len(self.refunds) + 1}", "SUCCESS")
        return self.refunds[idempotency_key]


class FakeSalesErp(FakeErp):
    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.documents: dict[str, Any] = {}
        self.restocks: dict[str, Any] = {}
        self.cancellations: dict[str, str] = {}

    def post_sales_document(self, document: Any) -> str:
        """Like a real ERP: booking the sale takes the goods out of its stock (once per reference)."""
        if document.reference not in self.documents:
            self.documents[document.reference] = document
            for line in document.order.lines:
                if line.sku in self.rows:
                    self.rows[line.sku]["stock"] -= line.quantity
            self.version += 1
        return f"FS/{list(self.documents).index(document.reference) + 1}"

    def restock(self, document: Any) -> str:
        self.restocks.setdefault(document.reference, document)
        return f"PZ/{len(self.restocks)}"

    def cancel_sales_document(self, reference: str, reason: str) -> str:
        """Like a real ERP: the cancelled sale's goods are back in stock (once per reference)."""
        if reference not in self.cancellations:
            self.cancellations[reference] = reason
            for line in self.documents[reference].order.lines:
                if line.sku in self.rows:
                    self.rows[line.sku]["stock"] += line.quantity
            self.version += 1
        return f"KOR/{list(self.cancellations).index(reference) + 1}"


@pytest.fixture
def order_fakes() -> Iterator[None]:
    def factory(cls: type) -> Any:
        def make(name: str, options: Any, services: Any) -> Any:
            return INSTANCES.setdefault(name, cls(name))
        return make

    registry.register(registry.ConnectorSpec(
        kind="fake-erp", role="erp", description="test ERP", factory=factory(FakeSalesErp),
        capabilities=frozenset({Capability.ERP_INCREMENTAL, Capability.ERP_SNAPSHOT,
                                Capability.ERP_SALES_DOCUMENTS, Capability.ERP_RESTOCK})))
    registry.register(registry.ConnectorSpec(
        kind="fake-channel", role="channel", description="test channel", factory=factory(FakeOrderChannel),
        capabilities=frozenset({Capability.BATCH_STOCK, Capability.ORDERS, Capability.ORDER_STATUS,
                                Capability.RETURNS, Capability.REFUNDS}), push_batch_size=100))
    INSTANCES.clear()
    yield
    registry.unregister("fake-erp")
    registry.unregister("fake-channel")
    INSTANCES.clear()
