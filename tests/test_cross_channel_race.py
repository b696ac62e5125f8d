"""The same SKU's last unit ordered on Allegro and in the shop at once, with two `hub run` processes on
one PostgreSQL and both simulators' faults on: exactly one order reserves the unit, the other is
flagged oversold, and no channel offers the unit again at any moment in between (watched as a buyer
sees it, and checked in every request the hub sent), while reconciliations and plans run right after
the sales, before the orders are in."""

from __future__ import annotations

import importlib.util
import random
import subprocess
import sys
import threading
import time
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from sqlalchemy import select

from hub.jobs import queue
from hub.jobs.models import Job
from hub.orders.models import Order, OrderLineRow, Reservation
from hub.platform import db

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

BENCH = Path(__file__).resolve().parents[1] / "bench" / "chaos.py"
EFFECTS = ("sync.push", "sync.plan", "sync.reconcile", "orders.to_erp", "orders.push_status")


def _bench() -> ModuleType:
    """bench/chaos.py's world (simulators on loopback, the ERP, the hub processes); bench/ is no package."""
    name = "bench_chaos"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, BENCH)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


class Watch(threading.Thread):
    """What a buyer sees of the SKU on each channel, every 10 ms: any unit on sale is a violation."""

    def __init__(self, world: Any, sku: str):
        super().__init__(name="buyer", daemon=True)
        self.world, self.sku = world, sku
        self.stop = threading.Event()
        self.seen: list[tuple[float, str, int]] = []

    def run(self) -> None:
        start = time.monotonic()
        while not self.stop.wait(0.01):
            for channel in ("allegro-main", "shop"):
                quantity = self.world.shows(channel, self.sku)[0]
                if quantity > 0:
                    self.seen.append((round(time.monotonic() - start, 3), channel, quantity))


def _offered_again(world: Any, sku: str, allegro_mark: int, woo_mark: int) -> list[str]:
    """Every request the hub sent after the sales that would put the unit on sale again."""
    offer_id, product_id = world.offer_ids[sku], world.product_ids[sku]
    found = []
    for command in world.allegro.commands()[allegro_mark:]:
        if offer_id not in command.offer_ids:
            continue
        body = command.body
        if command.kind == "quantity" and (body.get("modification") or {}).get("value", 0) > 0:
            found.append(f"allegro quantity {body['modification']}")
        if command.kind == "publication" and (body.get("publication") or {}).get("action") == "ACTIVATE":
            found.append("allegro ACTIVATE")
    for exchange in list(world.woo.log)[woo_mark:]:
        body = exchange.body if isinstance(exchange.body, dict) else {}
        items = body.get("update", []) if exchange.path.endswith("/products/batch") else [
            {**body, "id": product_id}] if exchange.path.endswith(f"/products/{product_id}") else []
        for item in items:
            if item.get("id") == product_id and int(item.get("stock_quantity") or 0) > 0:
                found.append(f"shop {exchange.method} {exchange.path} stock_quantity {item['stock_quantity']}")
    return found


def test_the_last_unit_sold_on_both_channels_at_once(pg_url: str, tmp_path: Path) -> None:
    chaos = _bench()
    rng = random.Random(7)
    rows = chaos.catalogue(rng, 4)
    sku = rows[0].sku
    rows[0].stock = 1  # the last unit
    world = chaos.World(rows, seed=7, token_ttl=900)
    erp = chaos.Erp(tmp_path, rows, world.sku_of_offer)
    engine = db.make_engine(pg_url)
    procs: list[Any] = []
    watch = Watch(world, sku)
    erp_stop = threading.Event()
    try:
        config = chaos.write_config(tmp_path, pg_url, erp, world, 5.0)
        login = subprocess.run(chaos.hub_command(config, "allegro", "login", "allegro-main"), env=chaos.child_env(),
                               capture_output=True, text=True, timeout=120, cwd=tmp_path)
        assert login.returncode == 0, login.stderr
        logs = tmp_path / "logs"
        logs.mkdir()
        procs = [chaos.HubProcess(label, config, logs) for label in ("hub-a", "hub-b")]
        for proc in procs:
            proc.start()

        def erp_loop() -> None:  # the ERP books the hub's documents from the outbox
            while not erp_stop.wait(0.3):
                erp.import_outbox()

        threading.Thread(target=erp_loop, name="erp", daemon=True).start()
        skus = [r.sku for r in rows]
        chaos.wait("the first sync", lambda: chaos.ready(engine, world, erp, skus), 120, procs)
        assert world.shows("allegro-main", sku)[0] == world.shows("shop", sku)[0] == 1

        world.faults(True)
        allegro_mark, woo_mark = len(world.allegro.commands()), len(world.woo.log)
        buyers = [threading.Thread(target=world.place, args=(channel, {sku: 1}, rng),
                                   kwargs={"paid": True, "cod": False, "buyer": f"buyer-{channel}"})
                  for channel in ("allegro-main", "shop")]
        for buyer in buyers:
            buyer.start()
        for buyer in buyers:
            buyer.join(10)
        watch.start()
        # both channels' stock is 0 now; what could raise it again runs at once, before the orders are in
        with db.transaction(engine) as session:
            for channel in ("allegro-main", "shop"):
                queue.enqueue(session, "sync.reconcile", {"channel": channel}, key=f"race-reconcile-{channel}",
                              connector=channel)
            queue.enqueue(session, "sync.plan", {}, key="race-plan")
        erp.write()  # and the ERP export is rewritten (unchanged): the feed is read again

        def settled() -> bool:
            with db.transaction(engine) as session:
                orders = session.execute(select(Order).join(OrderLineRow, OrderLineRow.order_id == Order.id)
                                         .where(OrderLineRow.sku == sku)).scalars().all()
                busy = session.execute(select(Job.id).where(Job.kind.in_(EFFECTS),
                                                            Job.state.in_(chaos.OPEN))).first()
            return len(orders) == 2 and busy is None and sum(erp.imported.values()) >= 1

        chaos.wait("both orders in the hub and the queue quiet", settled, 120, procs)
        time.sleep(2.0)  # a moment more of watching: a late push would show now
        watch.stop.set()
        watch.join(5)
        world.faults(False)

        with db.transaction(engine) as session:
            orders = session.execute(select(Order).join(OrderLineRow, OrderLineRow.order_id == Order.id)
                                     .where(OrderLineRow.sku == sku)).scalars().all()
            reservations = session.execute(select(Reservation).where(
                Reservation.sku == sku, Reservation.state.in_(("open", "consumed")))).scalars().all()
            shown = {o.channel: (o.oversold, o.problem_kind) for o in orders}
        assert sorted(o.channel for o in orders) == ["allegro-main", "shop"]
        assert [r.quantity for r in reservations] == [1], reservations  # exactly one order holds the unit
        assert sorted(shown.values(), key=str) == sorted([(False, None), (True, "oversold")], key=str), shown
        assert watch.seen == [], f"the unit was on sale again: {watch.seen[:10]}"
        assert _offered_again(world, sku, allegro_mark, woo_mark) == []
        assert world.shows("allegro-main", sku)[0] == world.shows("shop", sku)[0] == 0
    finally:
        watch.stop.set()
        erp_stop.set()
        for proc in procs:
            proc.stop()
        world.stop()
        engine.dispose()
