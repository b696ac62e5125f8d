"""The sync pipeline end to end with in-memory connectors, on SQLite and PostgreSQL:
binding discovery, quarantine, desired state, set-based diff, pushes through the queue,
refused prices, drift correction, and one push in flight per offer."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, select

from hub import registry
from hub.config import load
from hub.daemon import build_handlers
from hub.db import transaction
from hub.models import ErpReject, Job, Listing, PriceRefusal
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
from hub.ports import (
    Listing as Offer,
)
from hub.queue import open_jobs
from hub.runtime import Connectors
from hub.sync import SyncService, load_rules, reconcile
from hub.worker import WorkerPool

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


def config(tmp_path: Path, url: str) -> Any:
    path = tmp_path / "hub.toml"
    path.write_text(f"""
[database]
url = "{url}"
[worker]
concurrency = 2
poll_interval = "50ms"
backoff_initial = "50ms"
backoff_max = "200ms"
[connectors.erp]
kind = "fake-erp"
[connectors.shop]
kind = "fake-channel"
""")
    return load(path, environ={})


def drain(engine: Engine, loaded: Any) -> None:
    pool = WorkerPool(engine, build_handlers(loaded), loaded.settings.worker, name="t")
    pool.start()
    try:
        deadline = time.monotonic() + 30
        while open_jobs(engine) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert open_jobs(engine) == 0
    finally:
        pool.stop()


def test_sync_flow(fakes: None, db_url: str, engine: Engine, tmp_path: Path) -> None:
    loaded = config(tmp_path, db_url)
    service = SyncService(Connectors(loaded, engine), load_rules(loaded))
    erp: FakeErp = service.connectors.get("erp")
    shop: FakeChannel = service.connectors.get("shop")
    erp.set("A", 5, "100.00", cost="50.00")
    erp.set("B", 0, "20.00", cost="5.00")
    erp.set("C", 3, "10.00", cost="9.00", ean="5901234123457")  # floor 9*1.23 = 11.07 > 10: refused
    erp.rejected = [RejectedRecord("feed.csv:5", "D", "vat_rate", "17", "not a Polish VAT rate")]
    shop.offers = {
        "o1": {"signature": "A", "quantity": 0, "price": Decimal("90.00")},
        "o2": {"signature": "B", "quantity": 4, "price": Decimal("20.00")},
        "o3": {"ean": "5901234123457", "quantity": 0, "price": Decimal("12.00")},
        "o4": {"signature": "ZZZ", "quantity": 1, "price": Decimal("1.00")},
    }

    service.poll_erp("erp")
    with transaction(engine) as s:
        r = reconcile(s, "shop", shop.listings())
        assert (r.new_bindings, r.unmatched) == (3, 1)
        bound = {row.external_id: (row.sku, row.matched_by) for row in s.execute(select(Listing)).scalars()}
    assert bound == {"o1": ("A", "signature"), "o2": ("B", "signature"), "o3": ("C", "ean"), "o4": (None, None)}
    with transaction(engine) as s:
        planned = service.plan_all(s)
    assert sum(len(p.items) for p in planned) == 3 and len(planned) == 2  # batches of 2
    drain(engine, loaded)
    assert shop.offers["o1"] == {"signature": "A", "quantity": 5, "price": Decimal("100.00")}
    assert shop.offers["o2"]["quantity"] == 0
    assert shop.offers["o3"] == {"ean": "5901234123457", "quantity": 3, "price": Decimal("12.00")}  # price kept
    assert shop.offers["o4"]["quantity"] == 1  # unmatched offers are never touched
    with transaction(engine) as s:
        refusal = s.execute(select(PriceRefusal)).scalar_one()
        assert (refusal.sku, refusal.floor) == ("C", Decimal("11.07"))
        assert s.execute(select(ErpReject.sku)).scalars().all() == ["D"]

    # nothing changed: the diff is empty and costs no push
    with transaction(engine) as s:
        assert service.plan_all(s) == []

    # a stock change arrives once; the fixed row leaves quarantine by itself
    applied_before = len(shop.applied)
    erp.set("A", 2, "100.00", cost="50.00")
    erp.rejected = []
    erp.set("D", 1, "30.00", cost="10.00")
    service.poll_erp("erp")
    with transaction(engine) as s:
        service.plan_all(s)
        assert s.execute(select(ErpReject)).first() is None
    drain(engine, loaded)
    assert shop.offers["o1"]["quantity"] == 2
    assert shop.applied[applied_before:] == [("o1", 2, None)]

    # drift: the offer was edited by hand; reconciliation puts it back
    shop.offers["o1"]["quantity"] = 99
    with transaction(engine) as s:
        assert reconcile(s, "shop", shop.listings()).drift == 1
        service.plan_all(s)
    drain(engine, loaded)
    assert shop.offers["o1"]["quantity"] == 2

    # one push in flight per offer: a newer value waits, then follows; nothing stale wins
    shop.gate.clear()
    shop.entered.clear()
    erp.set("A", 7, "100.00", cost="50.00")
    service.poll_erp("erp")
    with transaction(engine) as s:
        first = service.plan_all(s)
    assert [i["quantity"] for p in first for i in p.items] == [7]
    pool = WorkerPool(engine, build_handlers(loaded), loaded.settings.worker, name="t2")
    pool.start()
    try:
        assert shop.entered.wait(10)
        erp.set("A", 8, "100.00", cost="50.00")
        service.poll_erp("erp")
        with transaction(engine) as s:
            assert service.plan_all(s) == []  # o1 has a push in flight: no second one
        shop.gate.set()
        deadline = time.monotonic() + 20
        while (shop.offers["o1"]["quantity"] != 8 or open_jobs(engine)) and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        pool.stop()
    assert shop.offers["o1"]["quantity"] == 8
    assert [q for oid, q, _ in shop.applied if oid == "o1"][-2:] == [7, 8]
    with transaction(engine) as s:
        listing = s.execute(select(Listing).where(Listing.external_id == "o1")).scalar_one()
        assert (listing.ack_quantity, listing.desired_quantity, listing.inflight_job_id) == (8, 8, None)
        assert s.execute(select(Job).where(Job.state == "dead")).first() is None
