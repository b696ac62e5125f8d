"""The sync pipeline end to end with in-memory connectors, on SQLite and PostgreSQL:
binding discovery, quarantine, desired state, set-based diff, pushes through the queue,
refused prices, drift correction, and one push in flight per offer."""

from __future__ import annotations

import time
from decimal import Decimal
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, select

from hub.app.wiring import build_handlers
from hub.catalog.models import ErpReject
from hub.jobs.models import Job
from hub.jobs.queue import open_jobs
from hub.jobs.worker import WorkerPool
from hub.kernel.ports.erp import RejectedRecord
from hub.listings.models import Listing, PriceRefusal
from hub.listings.reconcile import reconcile
from hub.listings.rules import load_rules
from hub.listings.service import SyncService
from hub.platform.config import load
from hub.platform.connectors import Connectors
from hub.platform.db import transaction
from tests.support.fake_connectors import FakeChannel, FakeErp


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
