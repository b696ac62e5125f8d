"""In-memory ERP and channel connectors for the sync tests (registered as kinds fake-erp / fake-channel)."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from decimal import Decimal
from typing import Any

import pytest

from hub import registry
from hub.ports import (
    Capability,
    ChangeResult,
    ErpBatch,
    ListingChange,
    PriceRecord,
    ProductRecord,
    RejectedRecord,
    StockRecord,
)
from hub.ports import Listing as Offer

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

    def changes(self, cursor: str | None, *, limit: int) -> ErpBatch:
        if cursor == str(self.version):
            return ErpBatch([], [], [], [], cursor_after=cursor)
        return self._batch()

    def snapshot(self) -> Iterator[ErpBatch]:
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

    def listings(self) -> Iterator[Offer]:
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
