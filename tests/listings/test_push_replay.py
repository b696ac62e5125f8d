"""A push whose handler committed its results (the shop took the values, the listing left its slot) but
whose process died before the worker settled the job: the lease runs out and the job runs again. The
replay must not send its old values over the newer push that ran meanwhile."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

from sqlalchemy import Engine, select

from connectors.shops.woocommerce.simulator import WooSimulator
from hub import catalog
from hub.app.wiring import build_handlers
from hub.jobs import queue
from hub.jobs.daemon import Daemon
from hub.jobs.handlers import JobContext
from hub.jobs.models import Job
from hub.kernel.ports.erp import ErpBatch, PriceRecord, ProductRecord, StockRecord
from hub.listings.models import Listing
from hub.listings.rules import load_rules
from hub.listings.service import SyncService
from hub.platform.config import load
from hub.platform.connectors import Connectors
from hub.platform.db import transaction
from hub.platform.logs import get_logger


def test_a_push_replayed_after_its_results_were_committed_sends_nothing(db_url: str, engine: Engine,
                                                                        tmp_path: Path) -> None:
    woo = WooSimulator()
    product = woo.add_simple("SKU1", 0, "50.00")
    (tmp_path / "feed.csv").write_text("sku;name;stock;price_gross;vat_rate\n")
    (tmp_path / "hub.toml").write_text(f"""
[database]
url = "{db_url}"
[worker]
concurrency = 1
poll_interval = "20ms"
lease = "1s"
[schedule.reconcile]
job = "sync.reconcile"
every = "1h"
payload = {{ channel = "shop" }}
[connectors.erp]
kind = "csv"
path = "{tmp_path / 'feed.csv'}"
[connectors.shop]
kind = "woocommerce"
base_url = "https://shop.test"
consumer_key = "ck_test"
consumer_secret = "cs_test"
""")
    loaded = load(tmp_path / "hub.toml", environ={})
    transports = {"shop": woo.transport()}
    service = SyncService(Connectors(loaded, engine, transports=transports), load_rules(loaded))

    def erp_stock(quantity: int, cursor: str) -> None:
        with transaction(engine) as s:
            catalog.ingest(s, "erp", ErpBatch(
                [ProductRecord("SKU1", "Kubek", "23")], [StockRecord("SKU1", "MAG", quantity)],
                [PriceRecord("SKU1", Decimal("50.00"))], [], cursor_after=cursor))
            service.plan_all(s)

    def drain() -> None:
        Daemon(loaded, engine, build_handlers(loaded, transports=transports)).run_once(timeout=30)

    erp_stock(50, "1")
    drain()  # bound by the reconcile, 50 pushed
    erp_stock(7, "2")  # push P1: 7
    (first,) = queue.claim(engine, "hub-a:1:dead", limit=1, lease=0.5, kinds={"sync.push"})
    build_handlers(loaded, transports=transports).get("sync.push")(JobContext(first, engine, get_logger("test")))
    assert woo.product(product)["stock_quantity"] == 7  # committed; the process dies before settling the job
    erp_stock(3, "3")  # push P2: 3
    drain()  # P2 runs; P1's lease runs out, it is claimed again and runs again
    with transaction(engine) as s:
        listing = s.execute(select(Listing).where(Listing.channel == "shop")).scalar_one()
        assert (listing.desired_quantity, listing.ack_quantity) == (3, 3)
    assert woo.product(product)["stock_quantity"] == 3
    sent = [item["stock_quantity"] for e in woo.requests("POST", "/products/batch")
            for item in e.body.get("update", []) if "stock_quantity" in item]
    assert sent == [50, 7, 3]
    with transaction(engine) as s:
        replayed = s.get(Job, first.id)
        assert replayed.state == "done" and replayed.result["recorded_already"] == 1
