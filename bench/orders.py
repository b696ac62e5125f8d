"""Orders benchmark: 10,000 orders from the Allegro simulator's event journal ingested, reserved and their
available-to-sell pushed back to the channel. Goal: <= 30 s on 2 cores on PostgreSQL; SQLite reported too.

The clock runs from the moment the poll job is enqueued until every order is stored, every
reservation is taken and the simulator's offers show the reduced quantities. The simulator serves
on loopback (real HTTP), the worker pool runs 4 threads. The automation rules are switched off
here (an empty automation.toml): with the shipped rules every order would also be booked in the
ERP and have its status pushed, which is separate work measured by neither goal.

Run: .venv/bin/python bench/orders.py [--orders N] [--skus N] [--backends postgresql,sqlite]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
# bench/queue.py would shadow the standard library's queue module: run from the repo root instead
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != ROOT / "bench"]
sys.path.insert(0, str(ROOT))

from connectors.allegro.simulator import AllegroSimulator
from hub import catalog
from hub.app.wiring import build_handlers
from hub.jobs.queue import enqueue, open_jobs
from hub.jobs.worker import WorkerPool
from hub.kernel.clock import utcnow
from hub.kernel.ports.erp import ErpBatch, PriceRecord, ProductRecord, StockRecord
from hub.listings.reconcile import reconcile
from hub.listings.rules import load_rules
from hub.listings.service import SyncService
from hub.platform import db
from hub.platform.config import LogSettings, WorkerSettings, load
from hub.platform.connectors import Connectors
from hub.platform.credentials import TokenSet, TokenStore
from hub.platform.logs import configure as configure_logging
from tests.support import pgtemp

STOCK = 100


def run(backend: str, server: Any, orders: int, skus: int) -> str:
    from sqlalchemy import func, select

    from hub.orders.models import Order, Reservation

    base = Path(tempfile.mkdtemp(prefix="hub-bench-orders-"))
    sim = AllegroSimulator(clients={"bench": "bench-secret"})
    offer_ids = [str(8_000_000_000 + i) for i in range(1, skus + 1)]
    for i, offer_id in enumerate(offer_ids, start=1):
        sim.add_offer(offer_id, external_id=f"SKU-{i}", quantity=STOCK, price="50.00")
    url = sim.serve()
    database = server.create_database(f"bench_orders_{os.getpid()}") if backend == "postgresql" \
        else f"sqlite:///{base / 'hub.db'}"
    (base / "maps").mkdir()
    (base / "maps" / "automation.toml").write_text("rules = []\n")
    (base / "hub.toml").write_text(f"""
[database]
url = "{database}"
[mappings]
dir = "maps"
[connectors.allegro]
kind = "allegro"
api_url = "{url}"
auth_url = "{url}"
client_id = "bench"
client_secret = "bench-secret"
command_poll_interval = "50ms"
""")
    loaded = load(base / "hub.toml", environ={})
    engine = db.make_engine(loaded.settings.database)
    db.upgrade(engine)
    pair = sim.issue_tokens("bench")
    TokenStore(engine).save("allegro", TokenSet(pair["access_token"], pair["refresh_token"],
                                                utcnow() + timedelta(seconds=pair["expires_in"])))
    service = SyncService(Connectors(loaded, engine), load_rules(loaded))
    offers = list(service.connectors.get("allegro").listings())
    skus_list = [f"SKU-{i}" for i in range(1, skus + 1)]
    with db.transaction(engine) as session:
        catalog.ingest(session, "erp", ErpBatch(
            [ProductRecord(s, s, "23") for s in skus_list], [StockRecord(s, "MAIN", STOCK) for s in skus_list],
            [PriceRecord(s, Decimal("50.00"), cost_net=Decimal("10.00")) for s in skus_list], [], cursor_after="1"))
        reconcile(session, "allegro", offers)
        service.plan_all(session)
    settings = WorkerSettings(concurrency=4, batch_size=10, poll_interval=0.02, lease=120)
    pool = WorkerPool(engine, build_handlers(loaded), settings, name="bench")
    pool.start()
    try:
        with db.transaction(engine) as session:
            enqueue(session, "orders.poll", {"channel": "allegro"}, key="start", connector="allegro")
        while open_jobs(engine):
            time.sleep(0.05)
        sim.place_orders_bulk(orders, offer_ids=offer_ids)
        per_offer = {offer_id: 0 for offer_id in offer_ids}
        for i in range(orders):
            per_offer[offer_ids[i % len(offer_ids)]] += 1
        start = time.perf_counter()
        with db.transaction(engine) as session:
            enqueue(session, "orders.poll", {"channel": "allegro"}, key="bench", connector="allegro")
        deadline = start + 600
        while time.perf_counter() < deadline:
            if not open_jobs(engine) and all(sim.offer(o).quantity == STOCK - n for o, n in per_offer.items()):
                break
            time.sleep(0.05)
        elapsed = time.perf_counter() - start
    finally:
        pool.stop()
    with db.transaction(engine) as session:
        stored = session.execute(select(func.count()).select_from(Order)).scalar_one()
        held = session.execute(select(func.coalesce(func.sum(Reservation.quantity), 0))
                               .where(Reservation.state == "open")).scalar_one()
        oversold = session.execute(select(func.count()).select_from(Order).where(Order.oversold.is_(True))
                                   ).scalar_one()
    wrong = sum(1 for o, n in per_offer.items() if sim.offer(o).quantity != STOCK - n)
    requests = sim.request_count()
    engine.dispose()
    sim.stop()
    return (f"{backend}: {orders:,} orders over {skus:,} SKUs ingested, reserved and ATS pushed in {elapsed:.1f} s "
            f"({orders / elapsed:,.0f} orders/s; goal <= 30 s) - stored {stored:,}, reserved {held:,} units, "
            f"oversold {oversold}, offers not at their new quantity {wrong}, {requests:,} HTTP requests in all")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--orders", type=int, default=10_000)
    parser.add_argument("--skus", type=int, default=1_000)
    parser.add_argument("--backends", default="postgresql,sqlite")
    args = parser.parse_args()
    configure_logging(LogSettings(level="error"))
    print(f"machine: {os.cpu_count()} cores")
    backends = args.backends.split(",")
    server = pgtemp.start(fsync=True) if "postgresql" in backends else None
    try:
        for backend in backends:
            print(run(backend, server, args.orders, args.skus), flush=True)
    finally:
        if server is not None:
            server.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
