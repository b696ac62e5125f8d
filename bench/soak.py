"""Soak: the daemon (`hub run`) under steady load for 25 minutes, on SQLite and on PostgreSQL.

The load (defaults; the main figures are flags):

* a catalogue of 5,000 SKUs in an ERP CSV feed (semicolons, decimal comma, windows-1250), offered on
  the Allegro and WooCommerce simulators on loopback (real HTTP; Allegro logs in with the device flow
  against its simulator, as `hub allegro login` does). The simulators start with what the hub wants
  them to show (the ERP's stock, the pricing rules' prices), as after a first sync, so the run measures
  steady state, not the initial catch-up;
* an order every 2 s on each channel (one or two units of a SKU the channel shows in stock);
* every 5 s, 1% of the SKUs get a new stock and a new price in the feed;
* the ERP importing the sales documents every 10 s: it takes the JSON documents the hub wrote into
  its outbox (connectors/erp/outbox.py), takes the sold units off the feed's stock, and moves each
  document's files (JSON and EDI++) into ``outbox/processed/``, where the outbox still finds them.

`hub run` is a separate process with the production settings of deploy/hub.example.toml (4 worker
threads, batches of 10, 1 s poll) and a busier schedule (ERP every 2 s, orders every 5 s, reconcile
every 5 min). Every 5 s the bench samples that process (RSS from /proc/PID/status, open file
descriptors, threads, CPU) and the database (its size: the SQLite file with its -wal, or
pg_database_size; the queue depth: open jobs; the wait of every job finished since the last sample:
started_at - run_at, started_at being when a worker thread began the job).

After the load: the ERP keeps importing until the hub has settled (everything ordered is in, booked,
imported, ingested and pushed, twice in a row 2 s apart), and the bench checks that every order placed
on a simulator is in the hub's orders table exactly once, that the ERP imported every sales document
once, that the hub's stock is the feed's and its desired quantity the ERP's stock less the open
reservations, and that every bound offer on each simulator shows the quantity and price the hub wants
(converged). The simulators never lower a quantity by themselves, so a listing the hub holds as a sale
is reported too.

Goals (from the issue): no upward slope of queue depth or RSS after the warm-up (the first third of
the load; least-squares slope per minute, "upward" when its lower 95% bound is above a tolerance; the
Theil-Sen slope beside it is robust to the spikes a periodic reconcile leaves), median job wait
<= 5 s; the database's growth in MiB per 1,000 orders is printed (growth during the load, all tables).

Run: .venv/bin/python bench/soak.py [--minutes 25] [--backends sqlite,postgresql] [--skus 5000]
     [--order-every 2] [--feed-every 5] [--import-every 10] [--seed 1] [--quick] [--keep]
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import io
import json
import math
import os
import random
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field, replace
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
# bench/queue.py would shadow the standard library's queue module: run from the repo root instead
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != ROOT / "bench"]
sys.path.insert(0, str(ROOT))

from sqlalchemy import case, func, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session
from stdnum import ean as gtin

from hub.catalog.models import DirtySku, StockLevel
from hub.jobs.models import OPEN_STATES, Job, JobFailure
from hub.jobs.scheduler import TICK_THREADS
from hub.kernel.clock import utcnow
from hub.listings.models import Listing
from hub.listings.plan import differences
from hub.listings.pricing import PriceInputs, decide
from hub.listings.rules import load_rules
from hub.orders.models import Order, Reservation
from hub.platform import db
from hub.platform.config import LogSettings, load
from hub.platform.logs import configure as configure_logging

MIB = 1024 * 1024
WAIT_GOAL = 5.0  # seconds, median job wait
# "upward" = the slope's lower 95% bound is above this (per minute): 3 MiB or 3 open jobs an hour
RSS_TOLERANCE = 0.05  # MiB/min
DEPTH_TOLERANCE = 0.05  # jobs/min
WAREHOUSE = "MAG"
HEADER = ["sku", "name", "ean", "stock", "price_gross", "vat_rate", "cost_net", "warehouse"]
# the schedule's kinds: at most one open job each by construction (one run at a time); the rest
# (pushes, ERP bookings, status pushes) must be drained when the hub has settled
PERIODIC = {"erp.poll", "sync.plan", "sync.reconcile", "orders.poll", "orders.reconcile", "returns.poll",
            "hub.prune_jobs"}


@dataclass(frozen=True)
class Params:
    minutes: float = 25.0
    skus: int = 5000
    order_every: float = 2.0  # seconds between orders, on each channel
    feed_every: float = 5.0  # seconds between changes of the feed
    change_fraction: float = 0.01  # of the SKUs, per feed change: new stock and new price
    import_every: float = 10.0  # seconds between the ERP's imports of the outbox
    sample_every: float = 5.0
    grace: str = "1m"  # [orders] erp_stock_grace: the ERP imports within seconds, not minutes
    erp_every: str = "2s"
    orders_every: str = "5s"
    plan_every: str = "1m"
    reconcile_every: str = "5m"
    orders_reconcile_every: str = "10m"
    returns_every: str = "1m"
    poll_interval: str = "1s"  # [worker] poll_interval
    startup_timeout: float = 480.0  # more than the reconcile interval: see _wait_initial
    settle_timeout: float = 180.0
    report_every: float = 60.0  # a progress line
    seed: int = 1


# the test's preset: a small catalogue, 30 s of load on a busier clock
QUICK = Params(minutes=0.5, skus=500, order_every=1.0, feed_every=2.0, import_every=3.0, sample_every=1.0,
               grace="10s", erp_every="1s", orders_every="2s", plan_every="20s", reconcile_every="20s",
               orders_reconcile_every="1m", returns_every="20s", poll_interval="500ms", startup_timeout=90.0,
               settle_timeout=60.0, report_every=10.0)


# --- the ERP: the feed and the import of the outbox -------------------------------------------------


@dataclass
class Item:
    sku: str
    name: str
    ean: str
    stock: int
    price: Decimal  # gross
    base: Decimal  # the price it started at (changes stay within -15%..+20% of it: above the floor)
    vat: str
    cost: Decimal  # net


def _money(value: Decimal) -> str:
    return f"{value:.2f}".replace(".", ",")


class Erp:
    """The seller's ERP: a CSV export it rewrites when stock or prices change, and an import of the
    hub's sales documents from the outbox."""

    def __init__(self, base: Path, skus: int, rng: random.Random):
        self.feed = base / "erp" / "feed.csv"
        self.outbox = base / "erp" / "outbox"
        self.processed = self.outbox / "processed"
        self.processed.mkdir(parents=True, exist_ok=True)
        self.rng = rng
        self.items: dict[str, Item] = {}
        for i in range(1, skus + 1):
            price = Decimal(rng.randrange(1999, 49999)) / 100
            code = f"591{i:09d}"
            self.items[f"SOAK-{i:05d}"] = Item(
                sku=f"SOAK-{i:05d}", name=f"Produkt {i} - zażółć gęślą jaźń", ean=code + gtin.calc_check_digit(code),
                stock=rng.randrange(20, 200), price=price, base=price, vat=rng.choice(["23", "23", "23", "8", "5"]),
                cost=(price / Decimal("1.23") * Decimal("0.55")).quantize(Decimal("0.01")))
        self.imported: Counter[str] = Counter()  # sales document reference -> times imported
        self.units_sold = 0
        self.writes = 0
        self.write()

    def write(self) -> None:
        """Written under a temporary name and renamed, as the ERP's export should."""
        buffer = io.StringIO()
        writer = csv.writer(buffer, delimiter=";", lineterminator="\r\n")
        writer.writerow(HEADER)
        for r in self.items.values():
            writer.writerow([r.sku, r.name, r.ean, r.stock, _money(r.price), r.vat, _money(r.cost), WAREHOUSE])
        tmp = self.feed.with_name(".feed.csv.tmp")
        tmp.write_bytes(buffer.getvalue().encode("windows-1250"))
        os.replace(tmp, self.feed)
        self.writes += 1

    def change(self, fraction: float) -> int:
        """New stock and a new price for ``fraction`` of the SKUs (some sell out: stock 0)."""
        chosen = self.rng.sample(list(self.items.values()), max(1, round(len(self.items) * fraction)))
        for item in chosen:
            item.stock = 0 if self.rng.random() < 0.05 else self.rng.randrange(5, 200)
            factor = Decimal(self.rng.randrange(85, 121)) / 100
            item.price = (item.base * factor).quantize(Decimal("0.01"))
        self.write()
        return len(chosen)

    def import_documents(self) -> int:
        """Take every sales document (and restock) of the outbox into the stock, then move its files
        away; a file the hub is still writing has a temporary name (.NAME.RANDOM.tmp) and is not taken."""
        taken = 0
        for path in sorted(self.outbox.glob("*.json")):
            try:
                data = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                continue
            kind = data.get("format")
            if kind == "hub.sales_document":
                self.imported[data["reference"]] += 1
                for line in data["lines"]:
                    item = self.items.get(line.get("sku") or "")
                    if item is not None:  # a shipping or fee line has no SKU
                        item.stock = max(0, item.stock - int(line["quantity"]))
                        self.units_sold += int(line["quantity"])
            elif kind == "hub.restock":
                for line in data["lines"]:
                    item = self.items.get(line.get("sku") or "")
                    if item is not None:
                        item.stock += int(line["quantity"])
            os.replace(path, self.processed / path.name)
            taken += 1
        for path in self.outbox.glob("*.epp"):  # the EDI++ twin (written after the JSON, maybe later)
            if (self.processed / path.with_suffix(".json").name).exists():
                os.replace(path, self.processed / path.name)
        if taken:
            self.write()
        return taken

    def waiting(self) -> int:
        return sum(1 for p in self.outbox.iterdir() if p.is_file() and p.suffix in (".json", ".epp"))


# --- the channels ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Offer:
    sku: str
    ean: str | None
    quantity: int
    price: Decimal


class Channels:
    """The demo hooks of Allegro and WooCommerce (their simulators on loopback), seeded with the
    catalogue as the hub would show it."""

    def __init__(self) -> None:
        from connectors.allegro.demo import AllegroDemo
        from connectors.shops.woocommerce.demo import WooDemo

        self.hooks = [AllegroDemo(), WooDemo()]
        self.placed: dict[str, list[str]] = {h.name: [] for h in self.hooks}
        self.requests: Counter[str] = Counter()

    @property
    def names(self) -> list[str]:
        return [h.name for h in self.hooks]

    def hook(self, name: str) -> Any:
        return next(h for h in self.hooks if h.name == name)

    def start(self, offers: dict[str, list[Offer]]) -> list[str]:
        sections = []
        for hook in self.hooks:
            options = hook.start(offers[hook.name])
            lines = [f"[connectors.{hook.name}]", f'kind = "{_kind(hook)}"']
            lines += [f"{k} = {_toml(v)}" for k, v in options.items()]
            sections.append("\n".join(lines) + "\n")
        return sections

    def place_order(self, name: str, skus: list[str], rng: random.Random) -> str | None:
        """One buyer buys one or two units of a SKU the channel shows in stock."""
        hook = self.hook(name)
        for _ in range(50):
            sku = rng.choice(skus)
            shown = hook.shows(sku)
            if shown and shown[0]:
                quantity = 2 if shown[0] > 1 and rng.random() < 0.2 else 1
                order_id = str(hook.place_order(sku, quantity))
                self.placed[name].append(order_id)
                return order_id
        return None

    def housekeeping(self) -> None:
        """Keep the simulators' own bookkeeping from growing with the run (they are test doubles: every
        request is logged, every Allegro command is rescanned on each request), so that a slope the bench
        sees is the hub's, not the simulators'."""
        for hook in self.hooks:
            sim = hook.sim
            log = sim.requests if hasattr(sim, "requests") and isinstance(sim.requests, list) else sim.log
            n = len(log)
            self.requests[hook.name] += n
            del log[:n]
            if hasattr(sim, "_order"):  # Allegro: applied commands stay readable by id (sim._commands)
                with sim._lock:
                    sim._order[:] = [c for c in sim._order if c.tasks is None]

    def stop(self) -> None:
        for hook in self.hooks:
            with contextlib.suppress(Exception):
                hook.stop()


def _kind(hook: Any) -> str:
    return "allegro" if type(hook).__module__.startswith("connectors.allegro") else "woocommerce"


def _toml(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'


# --- the hub's config ----------------------------------------------------------------------------------


POOL_SIZE = 10  # the hub's database pool: up to twice this many connections (pool and overflow)
WORKERS = 4
# the hub run's threads at most: main, the workers, their heartbeat, APScheduler's and its tick threads
THREAD_CEILING = 1 + WORKERS + 1 + 1 + TICK_THREADS

CONFIG = """\
# Written by bench/soak.py: the production settings of deploy/hub.example.toml, a busier schedule.
[database]
url = "{db}"
pool_size = {pool_size}

[worker]
concurrency = {workers}
batch_size = 10
lease = "60s"
poll_interval = "{p.poll_interval}"
backoff_initial = "2s"
backoff_max = "1m"
shutdown_timeout = "30s"

[scheduler]
leader_poll = "5s"

[schedule.erp]
job = "erp.poll"
every = "{p.erp_every}"
payload = {{ erp = "erp" }}

[schedule.plan]
job = "sync.plan"
every = "{p.plan_every}"

[schedule.reconcile-allegro]
job = "sync.reconcile"
every = "{p.reconcile_every}"
payload = {{ channel = "allegro-main" }}

[schedule.reconcile-shop]
job = "sync.reconcile"
every = "{p.reconcile_every}"
payload = {{ channel = "shop" }}

[schedule.orders-allegro]
job = "orders.poll"
every = "{p.orders_every}"
payload = {{ channel = "allegro-main" }}

[schedule.orders-shop]
job = "orders.poll"
every = "{p.orders_every}"
payload = {{ channel = "shop" }}

[schedule.orders-reconcile-allegro]
job = "orders.reconcile"
every = "{p.orders_reconcile_every}"
payload = {{ channel = "allegro-main" }}

[schedule.returns-allegro]
job = "returns.poll"
every = "{p.returns_every}"
payload = {{ channel = "allegro-main" }}

[schedule.housekeeping]
job = "hub.prune_jobs"
every = "1h"

[log]
level = "info"
format = "json"

[orders]
erp_stock_grace = "{p.grace}"

[mappings]
dir = "mappings"

[connectors.erp]
kind = "csv"
path = "{feed}"
encoding = "windows-1250"
settle = 0
outbox = "{outbox}"

{channels}"""


def _pricing(channels: Channels) -> str:
    return "# Written by bench/soak.py (the demo's rules)\n[defaults]\n\n" + "\n".join(
        f"[channels.{h.name}]\n" + "".join(f"{k} = {_toml(v)}\n" for k, v in h.pricing.items())
        for h in channels.hooks)


def _initial_offers(base: Path, erp: Erp, channels: Channels) -> dict[str, list[Offer]]:
    """What the hub will want each channel to show: the feed's stock and the channel's price rule
    (hub.listings.pricing.decide, the hub's own code), so the run starts converged."""
    (base / "rules.toml").write_text('[mappings]\ndir = "mappings"\n', encoding="utf-8")
    rules = load_rules(load(base / "rules.toml", environ={}))
    offers: dict[str, list[Offer]] = {}
    for name in channels.names:
        rule = rules.price_rule(name)
        offers[name] = []
        for item in erp.items.values():
            decision = decide(rule, PriceInputs(sku=item.sku, price_gross=item.price, cost_net=item.cost,
                                                vat_rate=item.vat, channel=name))
            offers[name].append(Offer(item.sku, item.ean, item.stock, decision.price or item.price))
    return offers


# --- what the bench reads from the database -----------------------------------------------------------


@dataclass
class FinishedJob:
    id: int
    kind: str
    state: str
    priority: int
    run_at: datetime
    started_at: datetime  # when a worker thread began the job (hub.jobs.queue.begin)
    finished_at: datetime  # when its outcome was settled
    at: float  # bench clock when the bench saw it finished

    @property
    def wait(self) -> float:
        return (self.started_at - self.run_at).total_seconds()

    @property
    def duration(self) -> float:
        return (self.finished_at - self.started_at).total_seconds()


def start_delays(jobs: Iterable[FinishedJob]) -> dict[int, float]:
    """Per job: run_at until it really began (hub.jobs.queue.begin stamps started_at when a worker
    thread starts the job, not when it claimed the job's batch)."""
    return {job.id: job.wait for job in jobs}


class Probe:
    """Read-only access to the hub's database (SQLite: deferred transactions, so the bench never takes
    the write lock the hub's workers queue for)."""

    def __init__(self, url: str):
        self.engine = db.make_engine(url)
        self.ro = self.engine.execution_options(sqlite_begin="DEFERRED")
        self.backend = self.engine.dialect.name
        self.path = Path(make_url(url).database or "") if self.backend == "sqlite" else None
        self.target = DbTarget.of(url)
        self._watermark = 0
        self._counted: set[int] = set()
        self._snapshot: Session | None = None

    def close(self) -> None:
        self.engine.dispose()

    def session(self) -> Session:
        return Session(self.ro)

    @contextlib.contextmanager
    def snapshot(self) -> Iterator[None]:
        """The reads inside see one moment of the database (PostgreSQL: REPEATABLE READ; SQLite: a
        deferred transaction holds its snapshot from its first read), so a check never combines the
        state before a job's commit with the state after it."""
        engine = self.ro if self.backend == "sqlite" else self.engine.execution_options(
            isolation_level="REPEATABLE READ")
        with Session(engine) as s, s.begin():
            self._snapshot = s
            try:
                yield
            finally:
                self._snapshot = None

    @contextlib.contextmanager
    def _read(self) -> Iterator[Session]:
        if self._snapshot is not None:
            yield self._snapshot
            return
        with self.session() as s, s.begin():
            yield s

    def size(self) -> int:
        if self.path is not None:
            return sum(p.stat().st_size for p in (self.path, Path(f"{self.path}-wal")) if p.exists())
        with self.ro.connect() as conn:
            return int(conn.execute(text("SELECT pg_database_size(current_database())")).scalar_one())

    def main_size(self) -> int:
        """SQLite: the database file without its -wal (which checkpoints keep at a few MiB)."""
        return self.path.stat().st_size if self.path is not None else self.size()

    def connections(self) -> int | None:
        if self.backend != "postgresql":
            return None
        with self.ro.connect() as conn:
            return int(conn.execute(text(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )).scalar_one())

    def open_jobs(self) -> Counter[str]:
        with self._read() as conn:
            rows = conn.execute(select(Job.kind, func.count()).where(Job.state.in_(OPEN_STATES)).group_by(Job.kind))
            return Counter({kind: int(n) for kind, n in rows})

    def finished_since(self, now: float) -> list[FinishedJob]:
        """Jobs that finished since the last call, each once: every job below the watermark is closed."""
        with self.ro.connect() as conn:
            rows = conn.execute(select(Job.id, Job.kind, Job.state, Job.priority, Job.run_at, Job.started_at,
                                       Job.finished_at).where(Job.id >= self._watermark).order_by(Job.id)).all()
        found, still_open = [], []
        for r in rows:
            if r.state in OPEN_STATES:
                still_open.append(r.id)
            elif r.id not in self._counted:
                self._counted.add(r.id)
                if r.started_at is not None and r.finished_at is not None:
                    found.append(FinishedJob(r.id, r.kind, r.state, r.priority, r.run_at, r.started_at,
                                             r.finished_at, now))
        if rows:
            self._watermark = min(still_open) if still_open else rows[-1].id + 1
            self._counted = {i for i in self._counted if i >= self._watermark}
        return found

    def stock(self) -> dict[str, int]:
        with self._read() as s:
            return {sku: q for sku, q in s.execute(select(StockLevel.sku, StockLevel.quantity)
                                                   .where(StockLevel.warehouse == WAREHOUSE))}

    def reserved(self) -> dict[str, int]:
        with self._read() as s:
            return {sku: int(q) for sku, q in s.execute(
                select(Reservation.sku, func.sum(Reservation.quantity)).where(Reservation.state == "open")
                .group_by(Reservation.sku))}

    def dirty(self) -> int:
        with self._read() as s:
            return int(s.execute(select(func.count()).select_from(DirtySku)).scalar_one())

    def differing(self, channels: Iterable[str], *, held: bool = False) -> int:
        """Listings the plan would push (held: those of them held as a sale, which no push raises)."""
        now = utcnow()
        with self._read() as s:
            return sum(1 for ch in channels for row in differences(s, ch, now=now)
                       if not held or (row.sale_hold_until is not None and row.sale_hold_until > now))

    def bound(self, channel: str) -> list[Any]:
        """The bound offers: sku, external_id, desired_quantity, desired_price, ack_quantity, ack_price,
        sale_hold_until."""
        with self._read() as s:
            return list(s.execute(
                select(Listing.sku, Listing.external_id, Listing.desired_quantity, Listing.desired_price,
                       Listing.ack_quantity, Listing.ack_price, Listing.sale_hold_until)
                .where(Listing.channel == channel, Listing.sku.is_not(None), Listing.active.is_(True))))

    def sale_holds(self) -> int:
        """Listings ever held as a sale (the channel showed fewer units than the hub had sent)."""
        with self._read() as s:
            return int(s.execute(select(func.count()).select_from(Listing)
                                 .where(Listing.sale_hold_until.is_not(None))).scalar_one())

    def listed(self) -> dict[str, int]:
        """Active listings per channel, bound or not."""
        with self._read() as s:
            return {ch: int(n) for ch, n in s.execute(select(Listing.channel, func.count())
                                                      .where(Listing.active.is_(True)).group_by(Listing.channel))}

    def orders(self) -> dict[tuple[str, str], int]:
        with self._read() as s:
            return {(ch, ext): int(n) for ch, ext, n in s.execute(
                select(Order.channel, Order.external_id, func.count()).group_by(Order.channel, Order.external_id))}

    def order_summary(self) -> dict[str, int]:
        with self.session() as s, s.begin():
            total, booked, oversold, problems = s.execute(select(
                func.count(), func.count(Order.erp_ref), func.sum(case((Order.oversold.is_(True), 1), else_=0)),
                func.count(Order.problem))).one()
        return {"orders": int(total), "booked": int(booked), "oversold": int(oversold or 0),
                "problems": int(problems)}

    def table_rows(self) -> dict[str, int]:
        names = ["jobs", "job_failures", "orders", "order_lines", "order_history", "rule_runs", "reservations",
                 "price_history", "listings", "products", "stock_levels", "schedule_runs"]
        with self.ro.connect() as conn:
            return {n: int(conn.execute(text(f"SELECT count(*) FROM {n}")).scalar_one()) for n in names}

    def table_sizes(self) -> dict[str, int] | None:
        if self.backend != "postgresql":
            return None
        with self.ro.connect() as conn:
            return {name: int(size) for name, size in conn.execute(text(
                "SELECT relname, pg_total_relation_size(c.oid) FROM pg_class c "
                "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'public' AND c.relkind = 'r' "
                "ORDER BY 2 DESC LIMIT 8"))}

    def dead_and_failures(self) -> tuple[int, int]:
        with self.ro.connect() as conn:
            dead = conn.execute(select(func.count()).select_from(Job).where(Job.state == "dead")).scalar_one()
            failures = conn.execute(select(func.count()).select_from(JobFailure)).scalar_one()
        return int(dead), int(failures)


# --- the hub process -----------------------------------------------------------------------------------


@dataclass
class ProcStats:
    rss_kib: int
    threads: int
    fds: int
    db_fds: int  # of the fds, the database's: SQLite's file, -wal, -shm, temporary files; PostgreSQL's sockets
    db_connections: int  # the connections those are (the pool opens them as it needs, up to its size)
    cpu_ticks: int


SQLITE_TEMP_PREFIX = "etilqs_"  # SQLite's name for its temporary files (SQLITE_TEMP_FILE_PREFIX)


@dataclass(frozen=True)
class DbTarget:
    """How a database connection shows among a process's fds: SQLite's file (each connection opens it once;
    its -wal, -shm and the leader's lock file are not counted) or a TCP socket to PostgreSQL's port. A SQLite
    connection's temporary files (unlinked, etilqs_*) are the database's fds too."""

    sqlite_file: Path | None = None
    pg_port: int | None = None

    @classmethod
    def of(cls, url: str) -> DbTarget:
        parsed = make_url(url)
        if parsed.get_backend_name() == "sqlite":
            return cls(sqlite_file=Path(parsed.database or "").resolve())
        return cls(pg_port=parsed.port or 5432)


def _sockets_to(pid: int, port: int) -> set[str]:
    """Inodes of the process's network namespace's TCP sockets whose remote end is ``port``."""
    inodes: set[str] = set()
    for table in ("tcp", "tcp6"):
        with contextlib.suppress(FileNotFoundError):
            for line in Path(f"/proc/{pid}/net/{table}").read_text().splitlines()[1:]:
                fields = line.split()
                if len(fields) > 9 and int(fields[2].rsplit(":", 1)[1], 16) == port:
                    inodes.add(fields[9])
    return inodes


def proc_stats(pid: int, database: DbTarget) -> ProcStats:
    status = Path(f"/proc/{pid}/status").read_text()
    rss = re.search(r"^VmRSS:\s+(\d+)", status, re.M)
    threads = re.search(r"^Threads:\s+(\d+)", status, re.M)
    stat = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    links = []
    for fd in os.listdir(f"/proc/{pid}/fd"):
        with contextlib.suppress(FileNotFoundError):  # closed meanwhile
            links.append(os.readlink(f"/proc/{pid}/fd/{fd}"))
    if database.sqlite_file is not None:  # each connection opens the file and its -wal; -shm is shared
        file = str(database.sqlite_file)
        connections = sum(1 for link in links if link == file)
        fds = sum(1 for link in links if link == file or link.startswith(file + "-")
                  or Path(link).name.startswith(SQLITE_TEMP_PREFIX))
    else:
        ours = {f"socket:[{inode}]" for inode in _sockets_to(pid, database.pg_port or 0)}
        connections = fds = sum(1 for link in links if link in ours)
    return ProcStats(int(rss[1]) if rss else 0, int(threads[1]) if threads else 0,
                     len(links), fds, connections, int(stat[11]) + int(stat[12]))


def start_hub(base: Path, config: Path) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HUB_")}  # the config file decides
    env["PYTHONUNBUFFERED"] = "1"
    env["PYTHONPATH"] = str(ROOT)
    with (base / "hub.log").open("ab") as log:
        return subprocess.Popen([sys.executable, "-m", "hub", "run", "--config", str(config)], cwd=base,
                                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, env=env)


def stop_hub(proc: subprocess.Popen[bytes], timeout: float = 60.0) -> int:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    return int(proc.returncode)


# --- one run -------------------------------------------------------------------------------------------


@dataclass
class Sample:
    t: float  # seconds since the load started (negative: warm-up of the process before the load)
    phase: str  # load | settle
    rss_mib: float
    threads: int
    fds: int
    db_fds: int  # of the fds, the database's (SQLite: its file, -wal and -shm; PostgreSQL: sockets to it)
    db_connections: int  # the connections those fds are
    cpu_pct: float
    db_mib: float
    open_jobs: int
    connections: int | None
    waits: list[float]
    orders: int
    loadavg: float  # the machine's 1-minute load average (other processes share the cores)

    @property
    def other_fds(self) -> int:
        """The fds that are not database connections: files, pipes, the channels' sockets."""
        return self.fds - self.db_fds


@dataclass
class Fit:
    slope: float  # per minute
    low: float  # 95% bounds of the slope
    high: float
    first: float  # fitted value at the start and end of the window
    last: float

    def upward(self, tolerance: float) -> bool:
        return self.low > tolerance


@dataclass
class Result:
    backend: str
    params: Params
    base: Path
    samples: list[Sample] = field(default_factory=list)
    finished: list[FinishedJob] = field(default_factory=list)
    startup_s: float = 0.0
    startup_unbound: dict[str, int] = field(default_factory=dict)  # offers left unbound after the ERP ingest
    startup_unbound_seen: float = 0.0
    load_s: float = 0.0
    settle_s: float | None = None  # None: did not settle in time
    orders_placed: dict[str, int] = field(default_factory=dict)
    orders_missing: list[tuple[str, str]] = field(default_factory=list)
    orders_duplicated: list[tuple[str, str]] = field(default_factory=list)
    orders_unknown: int = 0  # in the hub's table but never placed
    order_summary: dict[str, int] = field(default_factory=dict)
    documents_imported: int = 0
    documents_twice: int = 0
    units_sold: int = 0
    feed_changes: int = 0
    stock_mismatch: int = 0  # hub stock != the feed's
    not_converged: list[str] = field(default_factory=list)  # offers that do not show what the hub wants
    # the simulators never lower a quantity by themselves (an order does not touch their stock), so every
    # listing the hub held as a sale is a reconcile that took a stale reading for one
    sale_holds: int = 0
    desired_wrong: int = 0  # desired quantity != the ERP's stock - open reservations
    bound: dict[str, int] = field(default_factory=dict)
    open_end: Counter[str] = field(default_factory=Counter)
    db_start_mib: float = 0.0
    db_end_mib: float = 0.0
    db_start_main_mib: float = 0.0  # SQLite: without the -wal
    db_end_main_mib: float = 0.0
    table_rows: dict[str, int] = field(default_factory=dict)
    table_sizes: dict[str, int] | None = None
    dead: int = 0
    failures: int = 0
    log_errors: int = 0
    hub_exit: int | None = None
    stop_s: float = 0.0  # SIGTERM until hub run exited
    requests: dict[str, int] = field(default_factory=dict)

    # --- figures ---

    def load_samples(self) -> list[Sample]:
        return [s for s in self.samples if s.phase == "load"]

    def after_warmup(self) -> list[Sample]:
        return [s for s in self.load_samples() if s.t >= self.load_s / 3]

    def fit(self, what: Callable[[Sample], float]) -> Fit | None:
        points = [(s.t / 60, what(s)) for s in self.after_warmup()]
        return fit(points)

    def waits(self, after_warmup: bool = False) -> list[float]:
        """started_at - run_at of the jobs finished during the load (or after its warm-up)."""
        rows = self.load_samples() if not after_warmup else self.after_warmup()
        return sorted(w for s in rows for w in s.waits)

    def start_delays(self) -> dict[int, float]:
        """run_at until the job really began (see start_delays), for the jobs finished during the load."""
        delays = start_delays(self.finished)
        return {f.id: delays[f.id] for f in self.finished if f.at <= self.load_s}

    @property
    def orders_total(self) -> int:
        return sum(self.orders_placed.values())

    @property
    def mib_per_1000_orders(self) -> float | None:
        if not self.orders_total:
            return None
        return (self.db_end_mib - self.db_start_mib) / self.orders_total * 1000

    @property
    def converged(self) -> bool:
        return not self.not_converged and not self.stock_mismatch and self.settle_s is not None

    @property
    def every_order_once(self) -> bool:
        return not self.orders_missing and not self.orders_duplicated and not self.orders_unknown


def fit(points: list[tuple[float, float]]) -> Fit | None:
    """Least squares y = a + b x, with the 95% interval of b (normal approximation)."""
    n = len(points)
    if n < 3:
        return None
    mx = sum(x for x, _ in points) / n
    my = sum(y for _, y in points) / n
    sxx = sum((x - mx) ** 2 for x, _ in points)
    if sxx == 0:
        return None
    slope = sum((x - mx) * (y - my) for x, y in points) / sxx
    intercept = my - slope * mx
    residual = sum((y - intercept - slope * x) ** 2 for x, y in points)
    se = math.sqrt(residual / (n - 2) / sxx)
    xs = [x for x, _ in points]
    return Fit(slope, slope - 1.96 * se, slope + 1.96 * se, intercept + slope * min(xs), intercept + slope * max(xs))


def theil_sen(points: list[tuple[float, float]]) -> float | None:
    """The median of the pairwise slopes: robust to the spikes a periodic job leaves (a reconcile)."""
    if len(points) > 400:  # every k-th point keeps it at ~80,000 pairs
        points = points[::math.ceil(len(points) / 400)]
    slopes = [(y2 - y1) / (x2 - x1) for i, (x1, y1) in enumerate(points) for x2, y2 in points[i + 1:] if x2 != x1]
    return statistics.median(slopes) if slopes else None


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]


def run(backend: str, params: Params, *, server: Any = None, base: Path | None = None,
        say: Callable[[str], None] = print) -> Result:
    """One soak on one backend. ``server``: a tests.support.pgtemp server for PostgreSQL."""
    base = base or Path(tempfile.mkdtemp(prefix=f"hub-soak-{backend}-"))
    base.mkdir(parents=True, exist_ok=True)
    result = Result(backend, params, base)
    rng = random.Random(params.seed)
    erp = Erp(base, params.skus, rng)
    channels = Channels()
    pg_name = None
    probe = proc = None
    try:
        (base / "mappings").mkdir(exist_ok=True)
        (base / "mappings" / "pricing.toml").write_text(_pricing(channels), encoding="utf-8")
        sections = channels.start(_initial_offers(base, erp, channels))
        if backend == "postgresql":
            pg_name = f"soak_{os.getpid()}_{int(time.time() * 1000) % 10**8}"
            url = server.create_database(pg_name)
        else:
            url = f"sqlite:///{base / 'hub.db'}"
        config = base / "hub.toml"
        config.write_text(CONFIG.format(db=url, pool_size=POOL_SIZE, workers=WORKERS, p=params, feed=erp.feed,
                                        outbox=erp.outbox, channels="\n".join(sections)), encoding="utf-8")
        engine = db.make_engine(url)
        db.upgrade(engine)
        with contextlib.redirect_stdout(io.StringIO()):
            for hook in channels.hooks:  # Allegro: the device flow, as `hub allegro login allegro-main`
                hook.login(hook.name, config, engine)
        engine.dispose()
        probe = Probe(url)
        clock = time.monotonic()
        proc = start_hub(base, config)
        say(f"{backend}: hub run (pid {proc.pid}) in {base}; {params.skus:,} SKUs on {', '.join(channels.names)}")
        if not _wait_initial(result, probe, channels, params, proc, say):
            raise RuntimeError(f"{backend}: the hub did not bind and sync the catalogue within "
                               f"{params.startup_timeout:.0f} s (see {base / 'hub.log'})")
        result.startup_s = time.monotonic() - clock
        say(f"{backend}: catalogue bound and in sync after {result.startup_s:.1f} s; load for "
            f"{params.minutes:g} min")
        probe.finished_since(0.0)  # the start-up's jobs are not the soak's
        result.db_start_mib, result.db_start_main_mib = probe.size() / MIB, probe.main_size() / MIB
        _load(result, probe, proc, erp, channels, params, say)
        _settle(result, probe, proc, erp, channels, params, say)
        _check(result, probe, erp, channels)
        result.open_end = probe.open_jobs()
        result.db_end_mib, result.db_end_main_mib = probe.size() / MIB, probe.main_size() / MIB
        result.table_rows = probe.table_rows()
        result.table_sizes = probe.table_sizes()
        result.order_summary = probe.order_summary()
        result.dead, result.failures = probe.dead_and_failures()
    finally:
        if proc is not None:
            stopping = time.monotonic()
            result.hub_exit = stop_hub(proc)
            result.stop_s = time.monotonic() - stopping
        channels.housekeeping()
        result.requests = dict(channels.requests)
        channels.stop()
        if probe is not None:
            probe.close()
        if pg_name is not None:
            with contextlib.suppress(Exception):
                server.drop_database(pg_name)
    _write_samples(base / "samples.csv", result.samples)
    log = base / "hub.log"
    if log.exists():
        with log.open(encoding="utf-8", errors="replace") as lines:
            result.log_errors = sum(1 for line in lines if '"level": "error"' in line or '"level":"error"' in line)
    result.units_sold = erp.units_sold
    return result


def _write_samples(path: Path, samples: list[Sample]) -> None:
    """Every sample, for a plot (kept with --keep)."""
    with path.open("w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out)
        writer.writerow(["t_s", "phase", "rss_mib", "threads", "fds", "db_fds", "db_connections_fds", "cpu_pct",
                         "db_mib", "open_jobs", "db_connections", "orders", "loadavg", "jobs_finished",
                         "wait_median_s"])
        for x in samples:
            writer.writerow([f"{x.t:.1f}", x.phase, f"{x.rss_mib:.2f}", x.threads, x.fds, x.db_fds, x.db_connections,
                             f"{x.cpu_pct:.0f}",
                             f"{x.db_mib:.3f}", x.open_jobs, "" if x.connections is None else x.connections,
                             x.orders, f"{x.loadavg:.2f}", len(x.waits),
                             f"{statistics.median(x.waits):.3f}" if x.waits else ""])


def _wait_initial(result: Result, probe: Probe, channels: Channels, params: Params,
                  proc: subprocess.Popen[bytes], say: Callable[[str], None]) -> bool:
    """Every offer bound to its SKU with a desired state, nothing to push: the hub is where the
    simulators started. Offers a channel listed but the hub left unbound once the ERP's catalogue was
    in and no reconcile was running are reported (they wait for the next reconcile)."""
    deadline = time.monotonic() + params.startup_timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"hub run exited with {proc.returncode} during start-up")
        try:
            with probe.snapshot():
                bound = {ch: probe.bound(ch) for ch in channels.names}
                listed = probe.listed()
                ingested = len(probe.stock()) >= params.skus
                open_jobs = probe.open_jobs()
                ready = all(sum(1 for b in rows if b[2] is not None) >= params.skus for rows in bound.values())
                if ready and not probe.dirty() and not probe.differing(channels.names) \
                        and not sum(n for k, n in open_jobs.items() if k not in PERIODIC):
                    if result.startup_unbound:
                        say(f"{result.backend}: the unbound offers were bound "
                            f"{time.monotonic() - result.startup_unbound_seen:.0f} s after they were first seen")
                    return True
            if ingested and not open_jobs.get("sync.reconcile") and not open_jobs.get("erp.poll"):
                unbound = {ch: listed.get(ch, 0) - len(rows) for ch, rows in bound.items()
                           if listed.get(ch, 0) > len(rows)}
                if unbound and not result.startup_unbound:
                    result.startup_unbound, result.startup_unbound_seen = unbound, time.monotonic()
                    say(f"{result.backend}: start-up: the ERP's catalogue is in, no reconcile or ERP poll is "
                        f"running, and offers are still unbound: {unbound} (they wait for the next reconcile, "
                        f"every {params.reconcile_every})")
        except Exception:  # the hub may still be creating its first rows
            pass
        time.sleep(0.5)
    return False


class _Sampler:
    def __init__(self, result: Result, probe: Probe, proc: subprocess.Popen[bytes], channels: Channels):
        self.result, self.probe, self.proc, self.channels = result, probe, proc, channels
        self.hz = os.sysconf("SC_CLK_TCK")
        self.last_cpu: tuple[float, int] | None = None

    def __call__(self, t: float, phase: str) -> Sample:
        if self.proc.poll() is not None:
            raise RuntimeError(f"hub run exited with {self.proc.returncode}")
        now = time.monotonic()
        stats = proc_stats(self.proc.pid, self.probe.target)
        cpu = 0.0
        if self.last_cpu is not None and now > self.last_cpu[0]:
            cpu = (stats.cpu_ticks - self.last_cpu[1]) / self.hz / (now - self.last_cpu[0]) * 100
        self.last_cpu = (now, stats.cpu_ticks)
        finished = self.probe.finished_since(t)
        self.result.finished += finished
        sample = Sample(t, phase, stats.rss_kib / 1024, stats.threads, stats.fds, stats.db_fds, stats.db_connections,
                        cpu,
                        self.probe.size() / MIB, sum(self.probe.open_jobs().values()), self.probe.connections(),
                        [f.wait for f in finished], sum(len(v) for v in self.channels.placed.values()),
                        os.getloadavg()[0])
        self.result.samples.append(sample)
        return sample


def _load(result: Result, probe: Probe, proc: subprocess.Popen[bytes], erp: Erp, channels: Channels,
          params: Params, say: Callable[[str], None]) -> None:
    sample = _Sampler(result, probe, proc, channels)
    skus = list(erp.items)
    duration = params.minutes * 60
    start = time.monotonic()
    names = channels.names
    # each channel's orders are spread over the interval; everything else on its own clock
    due = {f"order:{n}": start + params.order_every * i / len(names) for i, n in enumerate(names)}
    due |= {"feed": start + params.feed_every, "import": start + params.import_every,
            "sample": start, "report": start + params.report_every, "housekeeping": start + 30}
    window: list[Sample] = []
    while True:
        now = time.monotonic()
        t = now - start
        if t >= duration:
            break
        for name in names:
            if now >= due[f"order:{name}"]:
                channels.place_order(name, skus, erp.rng)
                due[f"order:{name}"] += params.order_every
        if now >= due["feed"]:
            erp.change(params.change_fraction)
            result.feed_changes += 1
            due["feed"] += params.feed_every
        if now >= due["import"]:
            erp.import_documents()
            due["import"] += params.import_every
        if now >= due["housekeeping"]:
            channels.housekeeping()
            due["housekeeping"] += 30
        if now >= due["sample"]:
            window.append(sample(t, "load"))
            due["sample"] += params.sample_every
        if now >= due["report"]:
            _progress(window, result, say)
            window = []
            due["report"] += params.report_every
        time.sleep(max(0.0, min(*due.values(), start + duration) - time.monotonic()))
    result.load_s = time.monotonic() - start
    result.orders_placed = {n: len(ids) for n, ids in channels.placed.items()}


def _progress(window: list[Sample], result: Result, say: Callable[[str], None]) -> None:
    if not window:
        return
    last = window[-1]
    waits = [w for s in window for w in s.waits]
    median = f"{statistics.median(waits):.2f}" if waits else "-"
    depth = max(s.open_jobs for s in window)
    conns = f", {last.connections} db connections" if last.connections is not None else ""
    say(f"  {result.backend} t={last.t / 60:5.1f} min  RSS {last.rss_mib:6.1f} MiB  fds {last.fds:3}  "
        f"threads {last.threads:2}  cpu {statistics.mean(s.cpu_pct for s in window):3.0f}%  db {last.db_mib:7.1f} MiB"
        f"  open jobs {last.open_jobs:3} (max {depth})  wait median {median} s of {len(waits)} jobs  "
        f"orders {last.orders}{conns}")


def _settle(result: Result, probe: Probe, proc: subprocess.Popen[bytes], erp: Erp, channels: Channels,
            params: Params, say: Callable[[str], None]) -> None:
    """The load stops; the ERP goes on importing until the hub has taken every order, booked it,
    ingested the feed and pushed what follows."""
    sample = _Sampler(result, probe, proc, channels)
    sample.last_cpu = None
    placed = {(n, oid) for n, ids in channels.placed.items() for oid in ids}
    start = time.monotonic()
    next_import = start
    next_say = start + 10
    waiting = ""
    quiet_since: float | None = None
    while time.monotonic() - start < params.settle_timeout:
        if time.monotonic() >= next_import:
            erp.import_documents()
            next_import += min(params.import_every, 2.0)
        sample(result.load_s + time.monotonic() - start, "settle")
        with probe.snapshot():
            waiting = _unsettled(probe, erp, channels, placed)
        if waiting:
            quiet_since = None
        elif quiet_since is None:
            quiet_since = time.monotonic()
        elif time.monotonic() - quiet_since >= 2.0:  # and still so a moment later
            result.settle_s = quiet_since - start
            break
        if waiting and time.monotonic() >= next_say:
            say(f"  {result.backend} settling for {time.monotonic() - start:.0f} s: {waiting}")
            next_say += 10
        time.sleep(0.5)
    if result.settle_s is None:
        say(f"{result.backend}: NOT settled within {params.settle_timeout:.0f} s after the load: {waiting}")


def _unsettled(probe: Probe, erp: Erp, channels: Channels, placed: set[tuple[str, str]]) -> str:
    """What the hub has still to do ('' when nothing)."""
    missing = len(placed - set(probe.orders()))
    open_jobs = {k: n for k, n in probe.open_jobs().items() if k not in PERIODIC and n}
    parts = [f"{missing} orders not in" if missing else "", f"{erp.waiting()} outbox files" if erp.waiting() else "",
             f"open {open_jobs}" if open_jobs else ""]
    if not any(parts):
        stock = _stock_mismatch(probe, erp)
        dirty = probe.dirty()
        differing = probe.differing(channels.names) if not stock and not dirty else 0
        parts += [f"{stock} SKUs' stock not ingested" if stock else "", f"{dirty} dirty SKUs" if dirty else "",
                  f"{differing} offers differing ({probe.differing(channels.names, held=True)} held as a sale)"
                  if differing else ""]
    return ", ".join(p for p in parts if p)


def _stock_mismatch(probe: Probe, erp: Erp) -> int:
    stock = probe.stock()
    return sum(1 for item in erp.items.values() if stock.get(item.sku) != item.stock)


def _check(result: Result, probe: Probe, erp: Erp, channels: Channels) -> None:
    stored = probe.orders()
    placed = {(n, oid) for n, ids in channels.placed.items() for oid in ids}
    result.orders_missing = sorted(k for k in placed if k not in stored)
    result.orders_duplicated = sorted(k for k, n in stored.items() if n > 1)
    result.orders_unknown = sum(1 for k in stored if k not in placed)
    result.documents_imported = len(erp.imported)
    result.documents_twice = sum(1 for n in erp.imported.values() if n > 1)
    result.stock_mismatch = _stock_mismatch(probe, erp)
    reserved = probe.reserved()
    for name in channels.names:
        hook = channels.hook(name)
        rows = probe.bound(name)
        result.bound[name] = len(rows)
        for sku, _external_id, want_qty, want_price, ack_qty, ack_price, hold in rows:
            shown = hook.shows(sku)
            if shown is None:
                result.not_converged.append(f"{name} {sku}: not on the simulator")
                continue
            quantity, price = shown
            held = f", held as a sale until {hold:%H:%M:%S}" if hold is not None and hold > utcnow() else ""
            if want_qty is not None and quantity != want_qty:
                result.not_converged.append(f"{name} {sku}: quantity {quantity}, the hub wants {want_qty} "
                                            f"(acknowledged {ack_qty}{held})")
            if want_price is not None and price != want_price:
                result.not_converged.append(f"{name} {sku}: price {price}, the hub wants {want_price} "
                                            f"(acknowledged {ack_price})")
            item = erp.items.get(sku)
            if item is not None and want_qty != max(0, item.stock - reserved.get(sku, 0)):
                result.desired_wrong += 1
    result.sale_holds = probe.sale_holds()


# --- the report ----------------------------------------------------------------------------------------


def _verdict(ok: bool) -> str:
    return "meets" if ok else "MISSES"


def report(r: Result) -> list[str]:
    p = r.params
    lines = [f"{r.backend}: {r.load_s / 60:.1f} min of load, {p.skus:,} SKUs, an order every {p.order_every:g} s on "
             f"each of {len(r.orders_placed)} channels, {p.change_fraction:.0%} of the feed changed every "
             f"{p.feed_every:g} s, the ERP importing every {p.import_every:g} s; start-up {r.startup_s:.1f} s, "
             + (f"settled {r.settle_s:.1f} s after the load" if r.settle_s is not None else "NOT settled")
             + (f"; the start-up left offers unbound after the ERP ingest: {r.startup_unbound}"
                if r.startup_unbound else "")]
    load = r.load_samples()
    if load:
        lines.append(f"{r.backend}: hub run: RSS {load[0].rss_mib:.1f} -> {load[-1].rss_mib:.1f} MiB "
                     f"(max {max(s.rss_mib for s in load):.1f}), fds {load[0].fds} -> {load[-1].fds} "
                     f"(max {max(s.fds for s in load)}; the database's {load[0].db_fds} -> {load[-1].db_fds} for "
                     f"{load[0].db_connections} -> {load[-1].db_connections} connections, max "
                     f"{max(s.db_connections for s in load)}; the rest {load[0].other_fds} -> "
                     f"{load[-1].other_fds}), threads {load[0].threads} -> {load[-1].threads} "
                     f"(max {max(s.threads for s in load)}), cpu "
                     f"{statistics.mean(s.cpu_pct for s in load[1:] or load):.0f}% of one core; "
                     f"open jobs mean {statistics.mean(s.open_jobs for s in load):.1f}, "
                     f"max {max(s.open_jobs for s in load)}; machine load average "
                     f"{statistics.mean(s.loadavg for s in load):.1f} on {os.cpu_count()} cores"
                     + (f"; db connections {load[0].connections} -> {load[-1].connections} "
                        f"(max {max(s.connections or 0 for s in load)})" if load[0].connections is not None else ""))
    warm = r.load_s / 3 / 60
    for label, what, unit, tolerance in (("queue depth", lambda s: s.open_jobs, "jobs", DEPTH_TOLERANCE),
                                         ("RSS", lambda s: s.rss_mib, "MiB", RSS_TOLERANCE)):
        f = r.fit(what)
        robust = theil_sen([(s.t / 60, what(s)) for s in r.after_warmup()])
        if f is None:
            lines.append(f"{r.backend}: {label}: too few samples after the warm-up for a slope")
            continue
        lines.append(f"{r.backend}: {label} after the warm-up ({warm:.1f} min): slope {f.slope:+.4f} {unit}/min "
                     f"(95% {f.low:+.4f}..{f.high:+.4f}; Theil-Sen {robust or 0:+.4f}), fitted {f.first:.1f} -> "
                     f"{f.last:.1f} {unit}; "
                     f"{_verdict(not f.upward(tolerance))} the goal of no upward slope "
                     f"(upward: the lower bound above {tolerance} {unit}/min)")
    waits, late = r.waits(), r.waits(after_warmup=True)
    if waits:
        meets = statistics.median(waits) <= WAIT_GOAL and (not late or statistics.median(late) <= WAIT_GOAL)
        lines.append(f"{r.backend}: job wait (started_at - run_at) of {len(waits):,} jobs: median "
                     f"{statistics.median(waits):.2f} s, p95 {percentile(waits, 0.95):.2f} s, max {waits[-1]:.2f} s; "
                     f"after the warm-up median {statistics.median(late) if late else float('nan'):.2f} s; "
                     f"{_verdict(meets)} the goal of a median <= {WAIT_GOAL:g} s")
    lines += _by_kind(r)
    per_1000 = r.mib_per_1000_orders
    main_per_1000 = (r.db_end_main_mib - r.db_start_main_mib) / max(1, r.orders_total) * 1000
    lines.append(f"{r.backend}: database {r.db_start_mib:.1f} MiB at the start of the load, {r.db_end_mib:.1f} MiB "
                 f"after it: {r.db_end_mib - r.db_start_mib:+.1f} MiB for {r.orders_total:,} orders = "
                 + (f"{per_1000:.2f} MiB per 1,000 orders" if per_1000 is not None else "n/a")
                 + (f" (SQLite file with its -wal; the file alone {r.db_start_main_mib:.1f} -> "
                    f"{r.db_end_main_mib:.1f} MiB = {main_per_1000:.2f} MiB per 1,000 orders)"
                    if r.backend == "sqlite" and r.orders_total else " (pg_database_size)"))
    lines.append(f"{r.backend}: rows: " + ", ".join(f"{k} {v:,}" for k, v in r.table_rows.items()))
    if r.table_sizes:
        lines.append(f"{r.backend}: largest tables: " + ", ".join(f"{k} {v / MIB:.1f} MiB"
                                                                  for k, v in r.table_sizes.items()))
    s = r.order_summary
    lines.append(f"{r.backend}: orders placed {r.orders_placed}; in the hub {s.get('orders', 0):,} "
                 f"(booked in the ERP {s.get('booked', 0):,}, oversold {s.get('oversold', 0)}, with a problem "
                 f"{s.get('problems', 0)}); missing {len(r.orders_missing)}, twice {len(r.orders_duplicated)}, "
                 f"never placed {r.orders_unknown} -> {'every order once' if r.every_order_once else 'FAILED'}")
    lines.append(f"{r.backend}: ERP: {r.documents_imported:,} sales documents imported ({r.documents_twice} twice), "
                 f"{r.units_sold:,} units taken off the feed, {r.feed_changes} feed changes; hub stock differing "
                 f"from the feed: {r.stock_mismatch}")
    shown = "; ".join(r.not_converged[:5]) + (" ..." if len(r.not_converged) > 5 else "")
    lines.append(f"{r.backend}: channels: bound offers {r.bound}; not showing what the hub wants: "
                 f"{len(r.not_converged)}{' (' + shown + ')' if shown else ''}; desired quantity != ERP stock - open "
                 f"reservations: {r.desired_wrong}; listings ever held as a sale (a purchase lowers the channel's "
                 f"stock before its order is in) {r.sale_holds} -> "
                 f"{'converged' if r.converged else 'NOT converged'}")
    open_end = {k: v for k, v in r.open_end.items() if v}
    lines.append(f"{r.backend}: after settling: open jobs {sum(open_end.values())} {open_end or ''} "
                 f"(non-periodic {sum(v for k, v in open_end.items() if k not in PERIODIC)}), dead {r.dead}, "
                 f"failed attempts {r.failures}, error log lines {r.log_errors}, hub exit code {r.hub_exit} after "
                 f"{r.stop_s:.1f} s; "
                 f"HTTP requests {r.requests}")
    return lines


def _by_kind(r: Result) -> list[str]:
    """Per job kind: count, wait, and run time early against late in the load (a growing cost shows here)."""
    load_end = r.load_s
    third = load_end / 3
    kinds: dict[str, list[FinishedJob]] = defaultdict(list)
    for f in r.finished:
        if f.at <= load_end:
            kinds[f.kind].append(f)
    delays = start_delays(r.finished)

    def ran(f: FinishedJob) -> float:  # from when it began to its settle
        return (f.finished_at - f.run_at).total_seconds() - delays[f.id]

    lines = [f"{r.backend}: per kind (jobs; wait = started_at - run_at: median/p95/max s; time to start: median/p95/"
             "max s; run time median s in the 2nd third -> the last third):"]
    for kind, rows in sorted(kinds.items(), key=lambda kv: -len(kv[1])):
        waits = sorted(f.wait for f in rows)
        starts = sorted(delays[f.id] for f in rows)
        mid = [ran(f) for f in rows if third <= f.at < 2 * third]
        last = [ran(f) for f in rows if f.at >= 2 * third]
        runs = (f"{statistics.median(mid):.3f} -> {statistics.median(last):.3f}" if mid and last else
                f"{statistics.median(ran(f) for f in rows):.3f}")
        states = Counter(f.state for f in rows)
        lines.append(f"    {kind:18} {len(rows):6,}  wait {statistics.median(waits):6.2f} "
                     f"{percentile(waits, 0.95):6.2f} {waits[-1]:6.2f}  start {statistics.median(starts):6.2f} "
                     f"{percentile(starts, 0.95):6.2f} {starts[-1]:6.2f}  run {runs}"
                     + (f"  {dict(states)}" if set(states) != {"done"} else ""))
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="the test's preset: 500 SKUs, 30 s, a busier clock")
    parser.add_argument("--minutes", type=float)
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument("--skus", type=int)
    parser.add_argument("--order-every", type=float, help="seconds between orders on each channel (default 2)")
    parser.add_argument("--feed-every", type=float, help="seconds between feed changes (default 5)")
    parser.add_argument("--import-every", type=float, help="seconds between the ERP's imports (default 10)")
    parser.add_argument("--seed", type=int)
    parser.add_argument("--keep", action="store_true", help="keep each run's folder (hub.log, hub.toml, feed)")
    args = parser.parse_args(argv)
    params = QUICK if args.quick else Params()
    for flag, key in (("minutes", "minutes"), ("skus", "skus"), ("order_every", "order_every"),
                      ("feed_every", "feed_every"), ("import_every", "import_every"), ("seed", "seed")):
        if getattr(args, flag) is not None:
            params = replace(params, **{key: getattr(args, flag)})
    backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    if set(backends) - {"sqlite", "postgresql"}:
        parser.error(f"unknown backend(s): {', '.join(sorted(set(backends) - {'sqlite', 'postgresql'}))}")
    configure_logging(LogSettings(level="error"))
    from tests.support import pgtemp

    load_avg = os.getloadavg()[0]
    print(f"machine: {os.cpu_count()} cores, load average {load_avg:.2f} at the start; python "
          f"{sys.version.split()[0]}", flush=True)
    server = pgtemp.start(fsync=True) if "postgresql" in backends else None
    ok = True
    try:
        for backend in backends:
            base = Path(tempfile.mkdtemp(prefix=f"hub-soak-{backend}-"))
            try:
                result = run(backend, params, server=server, base=base, say=lambda s: print(s, flush=True))
            finally:
                if not args.keep:
                    shutil.rmtree(base, ignore_errors=True)
            for line in report(result):
                print(line, flush=True)
            ok = ok and result.every_order_once and result.converged and result.hub_exit == 0
            print(flush=True)
    finally:
        if server is not None:
            server.stop()
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
