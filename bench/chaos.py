"""Chaos benchmark: two `hub run` processes on one PostgreSQL through a busy hour compressed into minutes,
with the simulators' faults on, while a random process is SIGKILLed at a random moment and restarted.

What runs where:

* this process is the outside world and never dies: the Allegro and WooCommerce simulators served on
  loopback ports, the ERP (it writes the CSV feed, imports the sales, cancellation and restock
  documents from the hub's outbox, lowers and raises its stock accordingly and moves the imported
  files into ``processed/<date>/``, as an ERP import does), the buyers and the seller's operator;
* two ``python -m hub run`` subprocesses with one hub.toml (PostgreSQL, worker leases of 10 s,
  every schedule compressed: ERP every second, order journals every second, returns every 2 s...),
  logged in to Allegro with ``hub allegro login`` against the simulator (device flow).

The load: ERP deliveries and price changes every few seconds; orders for shared SKUs on both
channels (one or two lines, a few cash on delivery, a few paid later or never, some cancelled by
the buyer or the shop a moment after they were placed: the race with the ERP booking); Allegro
returns of orders paid online accepted by the operator with ``hub returns accept`` (a cash-on-delivery
payment cannot be refunded through Allegro's API); refunds made by hand in the shop; oversold orders
cancelled by the operator. The faults: Allegro 503s, 429 blocks, slow commands,
duplicate and out-of-order journal entries, and responses lost after the request was applied (the
request outlives the hub's timeout); WooCommerce 503s, 502s after applying, 429 bursts and responses
lost after applying.

The killer: ``--kills`` times, at a uniformly random moment within each ``--interval`` seconds, one of
the two processes chosen at random gets SIGKILL and is started again at once. After the last kill
the load stops, the faults go off, both processes run, and the world settles (at most ``--settle``
seconds). Then the invariants are read from the database, the simulators and the outbox:

* orders lost / duplicated: every order placed on a channel is in the hub exactly once, with the
  quantities placed (an order the hub has that no buyer placed counts as duplicated);
* reservations wrong: an order cancelled on the channel holds no open reservation (and is cancelled
  in the hub); every other order that is not oversold holds exactly its goods quantities (open plus
  consumed); and the ERP never had to book more than it had (a sales document that took a SKU's
  stock below zero: the hub reserved beyond the ERP's stock);
* ERP documents missing / duplicated: every paid order that is not cancelled has exactly one sales
  document (the file named by ``orders.erp_ref``); a cancelled order with a sales document has
  exactly one cancellation; every accepted return exactly one restock; no document of any
  reference twice, none for an oversold or unknown order, no cancellation without a sale;
* refunds duplicated (and missing): every accepted return refunded exactly once on Allegro; no refund
  made by the hub in the shop (its returns are refunds by hand already);
* listings not converged: every offer shows the quantity and price the hub wants, the hub's product
  has the ERP's price, and the wanted quantity is the ERP's stock less the open reservations;
* jobs dead.

Each figure is printed with the cases behind it (an order's history in the hub); the exit code is 1 if
any is not zero, and then the work dir is kept with forensics/: a pg_dump of the database and every
request each simulator answered. ``--kills 0`` is the baseline: the same load without a crash, for
``--minutes`` (default as long as the default run).

``--shipments``: paid orders are also shipped with the carriers that ship a simulator (InPost, Furgonetka,
Poczta Polska), and four more figures are checked: shipments missing (an order in processing without
one, unless cancelled), bookings duplicated (a carrier holding more bookings than the hub has shipments),
labels missing or wrong (a shipment never labelled, or a label file that differs from its checksum),
parcels of cancelled orders (one not cancelled: the packer would ship it). A carrier that will not cancel
(InPost after confirming) leaves a problem on the order; the seller keeps the parcel and says so
(``hub shipments cancel ID --withheld``), as the seller's step of the run does.

``--invoices``: a third of the orders are a business's (a NIP for the invoice); the shipped rule issues their
invoices when paid, which go to the KSeF simulator (served here) under its faults: sends answered 503 before
they apply, sends and session openings whose answers are lost after KSeF applied them, session listings
that fail. Four more figures: invoices missing (a paid business order without its invoice accepted by KSeF,
a cancelled one whose invoice is not corrected to nothing, an accepted return of an invoiced order without
its correction), invoice numbers wrong (a gap or a number twice in a series' month), invoices sent twice
(KSeF holding one invoice number more than once, or refusing one as a duplicate), invoices not accepted
(numbered but not accepted by KSeF once the world settled).

Run: .venv/bin/python bench/chaos.py [--kills 100] [--interval 10] [--seed 1] [--minutes M] [--quick]
     [--keep-dir] [--database-url URL] [--shipments] [--invoices]
"""

from __future__ import annotations

import argparse
import contextlib
import heapq
import itertools
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
# bench/queue.py would shadow the standard library's queue module: run from the repo root instead
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != ROOT / "bench"]
sys.path.insert(0, str(ROOT))

from sqlalchemy import Engine, and_, func, or_, select
from stdnum import ean as gtin

from connectors.allegro.demo import AllegroDemo
from connectors.allegro.simulator import AllegroSimulator
from connectors.allegro.simulator import Faults as AllegroFaults
from connectors.ksef.simulator import DEFAULT_NIP as KSEF_NIP
from connectors.ksef.simulator import DEFAULT_TOKEN as KSEF_TOKEN
from connectors.ksef.simulator import KsefSimulator
from connectors.shops.woocommerce.demo import WooDemo
from connectors.shops.woocommerce.simulator import Faults as WooFaults
from connectors.shops.woocommerce.simulator import WooSimulator
from connectors.simserver import LoopbackServer
from demo.channels import FeedRow, _toml_value, write_feed
from demo.shipping import carrier_hooks
from hub.catalog.models import Product, StockLevel
from hub.jobs.models import Job
from hub.listings.desired import price_inputs
from hub.listings.models import Listing
from hub.listings.pricing import decide
from hub.listings.rules import load_rules
from hub.orders.models import ChannelCursor, Order, OrderHistory, OrderLineRow, Reservation, ReturnRow
from hub.platform import db
from hub.platform.config import LogSettings, load
from hub.platform.logs import configure as configure_logging
from hub.shipping.models import Shipment
from tests.support import pgtemp

ALLEGRO = "allegro-main"
SHOP = "shop"
# problems put on an order after its sale was rightly booked (a parcel's exception, a channel reopening a
# cancelled order): a sales document of such an order is no duplicate
AFTER_THE_SALE = ("shipping", "reopened")
CHANNELS = (ALLEGRO, SHOP)
CLIENT_ID, CLIENT_SECRET = "chaos-client", "chaos-secret"
WOO_KEY, WOO_SECRET = "ck_chaos", "cs_chaos"
EFFECT_KINDS = ("sync.push", "orders.to_erp", "orders.erp_cancel", "orders.push_status", "returns.refund",
                "returns.restock", "returns.reject", "shipping.create", "shipping.book", "shipping.label",
                "shipping.push_tracking", "shipping.withdraw", "shipping.cancel", "invoicing.issue",
                "invoicing.correct")  # sends to KSeF also run on a schedule: "invoices not accepted" waits for them
OPEN = ("pending", "running", "failed-retrying")
REQUEST_TIMEOUT = 4.0  # the hub's per-request timeout towards both channels (hub.toml)
CARRIER_QUOTA = 1200  # requests a minute per carrier account with --shipments (see write_config)
LOST_AFTER = REQUEST_TIMEOUT + 1.5  # a "lost" response is held back this long: the hub gave up before it
FIGURES = ("orders lost", "orders duplicated", "reservations wrong", "ERP documents missing",
           "ERP documents duplicated", "refunds duplicated", "refunds missing", "listings not converged",
           "shipments missing", "bookings duplicated", "labels missing or wrong", "parcels of cancelled orders",
           "invoices missing", "invoice numbers wrong", "invoices sent twice", "invoices not accepted", "jobs dead")
BUSINESS_SHARE = 1 / 3  # with --invoices: orders of a business buyer, with a NIP for the invoice
BUYER_NIP = "7740001454"


@dataclass(frozen=True)
class Options:
    kills: int = 100
    interval: float = 10.0  # one kill at a uniformly random moment within each interval
    seed: int = 1
    skus: int = 40
    order_rate: float = 1.0  # orders per second, both channels together
    erp_every: float = 3.0  # seconds between ERP feed changes (deliveries, prices)
    return_every: float = 8.0  # seconds between Allegro returns (and, at twice that, shop refunds by hand)
    cancel_share: float = 0.12  # orders the buyer or the shop cancels a moment after placing them
    grace: float = 20.0  # [orders] erp_stock_grace
    settle: float = 180.0  # seconds the world may take to settle after the last kill
    faults: bool = True
    keep_dir: bool = False
    token_ttl: int = 900  # Allegro access tokens: refreshed (single-use refresh tokens) during a long run
    minutes: float | None = None  # the chaos phase's length (default kills x interval)
    # paid orders are shipped with the carriers' simulators (InPost, Furgonetka, Poczta Polska); off by default
    # (the suite's quick run keeps to channels and the ERP)
    shipments: bool = False
    invoices: bool = False  # business orders' invoices through the KSeF simulator


QUICK = Options(kills=5, interval=6.0, skus=16, order_rate=1.2, erp_every=2.5, return_every=5.0, grace=8.0,
                settle=45.0)


def log(message: str) -> None:
    sys.stdout.write(message + "\n")
    sys.stdout.flush()


# --- the ERP: truth about stock and prices, the feed, the import of the outbox ------------------------


class Erp:
    """The seller's ERP, as far as the hub can tell: a CSV export it rewrites after every change, and an
    import that books the hub's documents from the outbox and moves them away."""

    def __init__(self, base: Path, rows: list[FeedRow], offer_skus: dict[str, str]):
        self.feed = base / "erp" / "feed.csv"
        self.outbox = base / "erp" / "outbox"
        self.outbox.mkdir(parents=True, exist_ok=True)
        self.feed.parent.mkdir(parents=True, exist_ok=True)
        self.rows = {r.sku: r for r in rows}
        self.offer_skus = offer_skus  # Allegro offer id -> SKU, for a restock line without a SKU
        self.lock = threading.RLock()
        self.sales: dict[str, list[tuple[str, int]]] = {}  # reference -> (sku, quantity) booked
        self.imported: Counter[tuple[str, str]] = Counter()  # (format, reference) -> files imported
        self.pending_cancels: dict[str, Path] = {}  # cancellations whose sale the ERP has not booked (yet)
        self.negative: list[str] = []  # a sale that took a SKU below zero: sold what was not there
        self.changes = 0
        self.write()

    def write(self) -> None:
        with self.lock:
            shown = [replace(r, stock=max(r.stock, 0)) for r in self.rows.values()]
            write_feed(self.feed, shown)
            self.changes += 1

    def stock(self, sku: str) -> int:
        with self.lock:
            return self.rows[sku].stock

    def price(self, sku: str) -> Decimal:
        with self.lock:
            return self.rows[sku].price

    def change(self, rng: random.Random) -> None:
        """A delivery to a SKU running low, now and then a price change."""
        with self.lock:
            low = [r for r in self.rows.values() if r.stock < 4]
            for row in rng.sample(low, min(len(low), 2)):
                row.stock += rng.randint(3, 9)
            if rng.random() < 0.5:
                row = rng.choice(list(self.rows.values()))
                row.price = (row.price * Decimal(rng.choice(["0.95", "1.05", "1.10", "0.90"]))).quantize(
                    Decimal("0.01"))
            self.write()

    def import_outbox(self) -> int:
        """Book every document the hub put into the outbox, then move it into processed/<date>/ (two
        levels down: the outbox finds a document there and does not write it again)."""
        done = 0
        with self.lock:
            files = sorted((p for p in self.outbox.iterdir() if p.is_file() and not p.name.startswith(".")),
                           key=lambda p: (p.stat().st_mtime_ns, p.name))
            changed = False
            for path in files:
                if path.suffix == ".json":
                    try:
                        doc = json.loads(path.read_text(encoding="utf-8"))
                    except (OSError, ValueError):
                        continue
                    if not self._book(doc, path):
                        continue  # a cancellation of a sale not booked yet: next round
                    changed = True
                    done += 1
                elif path.suffix != ".epp" or time.time() - path.stat().st_mtime < 1.0:
                    continue  # an EDI++ file goes with its JSON; a lone one waits a moment for it
                self._move(path)
            if changed:
                self.write()
        return done

    def _book(self, doc: dict[str, Any], path: Path) -> bool:
        fmt, reference = doc.get("format"), str(doc.get("reference"))
        if fmt == "hub.sales_document_cancellation":
            sale = self.sales.get(str(doc.get("document_reference")))
            if sale is None:
                self.pending_cancels[reference] = path
                return False
            self.pending_cancels.pop(reference, None)
            for sku, quantity in sale:
                self.rows[sku].stock += quantity
        elif fmt == "hub.sales_document":
            lines = [(line["sku"], int(line["quantity"])) for line in doc.get("lines") or []
                     if line.get("sku") in self.rows]
            self.sales.setdefault(reference, lines)
            for sku, quantity in lines:
                self.rows[sku].stock -= quantity
                if self.rows[sku].stock < 0:
                    self.negative.append(f"{reference}: {sku} at {self.rows[sku].stock} after booking {quantity}")
        elif fmt == "hub.restock":
            for line in doc.get("lines") or []:
                sku = line.get("sku") or self.offer_skus.get(str(line.get("offer_id")))
                if sku in self.rows:
                    self.rows[sku].stock += int(line["quantity"])
        self.imported[(str(fmt), reference)] += 1
        return True

    def _move(self, path: Path) -> None:
        target = self.outbox / "processed" / datetime.now(UTC).strftime("%Y-%m-%d")
        target.mkdir(parents=True, exist_ok=True)
        destination = target / path.name
        n = 1
        while destination.exists():  # the same name twice: keep both, the check counts them
            destination = target / f"{path.name}.again{n}"
            n += 1
        with contextlib.suppress(FileNotFoundError):  # the hub's outbox search may race us: harmless
            os.rename(path, destination)


# --- the channels ----------------------------------------------------------------------------------


class LossyApp:
    """Allegro over real HTTP with lost responses: a share of the REST requests (never OAuth) is applied
    and then answered only after the hub's request timeout ran out."""

    def __init__(self, app: Any, seed: int):
        self.app = app
        self.rate = 0.0
        self.lost = 0
        self._rng = random.Random(seed)
        self._lock = threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        lose = False
        if self.rate and not (environ.get("PATH_INFO") or "").startswith("/auth/"):
            with self._lock:
                lose = self._rng.random() < self.rate
        answer = self.app(environ, start_response)  # applied now
        if not lose:
            return answer
        data = b"".join(answer)
        with self._lock:
            self.lost += 1
        time.sleep(LOST_AFTER)  # nothing is sent before this returns: the hub times out first
        return [data]


class World:
    """Both simulators on loopback ports, with the catalogue offered on each."""

    def __init__(self, rows: list[FeedRow], seed: int, token_ttl: int, shipments: bool = False,
                 invoices: bool = False):
        self.allegro = AllegroSimulator(seed=seed, clients={CLIENT_ID: CLIENT_SECRET}, command_delay=0.05,
                                        block_scale=0.05, retry_after_header=True, device_interval=1,
                                        auto_approve_after=1, token_ttl=token_ttl)
        self.woo = WooSimulator(WOO_KEY, WOO_SECRET, seed=seed)
        self.woo.clock = datetime.now(UTC).replace(microsecond=0)
        self.offer_ids: dict[str, str] = {}
        self.product_ids: dict[str, int] = {}
        for i, row in enumerate(rows, start=1):
            offer_id = str(18_000_000_000 + i)
            self.allegro.add_offer(offer_id, external_id=row.sku, quantity=1, price=row.price - 1, status="ENDED",
                                   name=f"Oferta {row.sku}")
            self.offer_ids[row.sku] = offer_id
            self.product_ids[row.sku] = self.woo.add_simple(row.sku, 0, str(row.price - 1), ean=row.ean)
        self.sku_of_offer = {v: k for k, v in self.offer_ids.items()}
        self.sku_of_product = {v: k for k, v in self.product_ids.items()}
        self.lossy = LossyApp(self.allegro, seed + 7)
        self._server = LoopbackServer(self.lossy, "allegro-chaos")
        self.allegro_url = self._server.start()
        self.woo_url = self.woo.serve()
        # the carriers that ship a demo hook (InPost, Furgonetka, Poczta Polska), on loopback
        self.carriers: list[tuple[str, Any, dict[str, Any]]] = [
            (kind, hook, hook.start()) for kind, hook in (carrier_hooks() if shipments else [])]
        # KSeF, on loopback: its faults are planned one by one (ksef_fault)
        self.ksef = KsefSimulator() if invoices else None
        self.ksef_url = self.ksef.serve() + "/v2" if self.ksef is not None else ""
        self.ksef_faults = 0
        self._stop = threading.Event()
        self._ticker = threading.Thread(target=self._tick_loop, name="woo-clock", daemon=True)
        self._ticker.start()

    def stop(self) -> None:
        self._stop.set()
        self._server.stop()
        self.woo.stop()
        for _, hook, _ in self.carriers:
            hook.stop()
        if self.ksef is not None:
            self.ksef.stop()

    def ksef_fault(self, rng: random.Random) -> None:
        """One of KSeF's faults, planned for the next matching request."""
        assert self.ksef is not None
        self.ksef_faults += 1
        roll = rng.random()
        if roll < 0.35:
            self.ksef.fail_next(r"/sessions/online/[^/]+/invoices$", 503, method="POST")
        elif roll < 0.7:
            self.ksef.lose_next(r"/sessions/online/[^/]+/invoices$", method="POST")  # applied, answer lost
        elif roll < 0.85:
            self.ksef.lose_next(r"/sessions/online$", method="POST")  # a session opened, its answer lost
        else:
            self.ksef.fail_next(r"/sessions/[^/]+/invoices", 503, method="GET")

    def tick(self) -> None:
        """The shop's clock follows the wall clock (its orders' dates are what the hub polls by)."""
        with self.woo._lock:
            now = datetime.now(UTC)
            if now > self.woo.clock:
                self.woo.clock = now

    def _tick_loop(self) -> None:
        while not self._stop.wait(0.1):
            self.tick()

    def faults(self, on: bool) -> None:
        self.allegro.faults = AllegroFaults(error_5xx_rate=0.02, burst_429_rate=0.002, slow_command_rate=0.05,
                                            slow_command_delay=2.0) if on else AllegroFaults()
        self.allegro.duplicate_event_rate = 0.05 if on else 0.0
        self.allegro.out_of_order_rate = 0.05 if on else 0.0
        self.lossy.rate = 0.01 if on else 0.0
        if on:
            self.woo.faults = WooFaults(error_rate=0.03, error_after_apply=0.5, burst_rate=0.004, burst_length=2,
                                        retry_after=1, delay_rate=0.01, delay_seconds=LOST_AFTER)
        else:
            self.woo.clear_faults()

    def fault_counts(self) -> str:
        a = Counter(r.status for r in list(self.allegro.requests))
        w = Counter(e.fault for e in list(self.woo.log) if e.fault)
        events = len(self.allegro.journal())
        return (f"allegro: {a[503]} x 503, {self.allegro.rate_limited} x 429, {self.lossy.lost} responses lost "
                f"after applying, {len(self.allegro.requests)} requests, {events} journal events; "
                f"shop: {w['503']} x 503, {w['502-after-apply']} x 502 after applying, {w['429']} x 429, "
                f"{w['delayed']} responses lost after applying, {len(self.woo.log)} requests")

    # what a buyer sees
    def shows(self, channel: str, sku: str) -> tuple[int, Decimal | None]:
        if channel == ALLEGRO:
            offer = self.allegro.offer(self.offer_ids[sku])
            return (offer.quantity if offer.status == "ACTIVE" else 0), offer.price
        product = self.woo.product(self.product_ids[sku])
        price = product.get("price")
        return int(product.get("stock_quantity") or 0), Decimal(price) if price else None

    def place(self, channel: str, lines: dict[str, int], rng: random.Random, *, paid: bool, cod: bool,
              buyer: str, nip: str | None = None) -> str:
        if channel == ALLEGRO:
            return self.allegro.place_order([(self.offer_ids[s], q) for s, q in lines.items()], buyer_login=buyer,
                                            cod=cod, paid=paid, invoice_nip=nip)
        self.tick()
        method, status = ("cod", "processing") if cod else (("przelewy24", "processing") if paid else
                                                            ("bacs", "on-hold"))
        return str(self.woo.add_order([(self.product_ids[s], q) for s, q in lines.items()], status=status,
                                      payment_method=method, nip=nip,
                                      billing={"company": "Hurtownia Chaos Sp. z o.o."} if nip else None,
                                      transaction_id=f"p24-{rng.randrange(10**9)}" if method == "przelewy24" else ""))

    def pay(self, channel: str, external_id: str) -> None:
        if channel == ALLEGRO:
            self.allegro.pay_order(external_id)
        else:
            self.tick()
            self.woo.set_status(int(external_id), "processing")

    def cancel(self, channel: str, external_id: str) -> None:
        if channel == ALLEGRO:
            self.allegro.cancel_order(external_id)
        else:
            self.tick()
            self.woo.set_status(int(external_id), "cancelled")

    def cancelled(self, channel: str, external_id: str) -> bool:
        if channel == ALLEGRO:
            return self.allegro.checkout_form(external_id)["status"] == "CANCELLED"
        return self.woo.order(int(external_id))["status"] == "cancelled"

    def paid(self, channel: str, external_id: str) -> bool:
        """Paid, or cash on delivery: what the shipped automation books in the ERP."""
        if channel == ALLEGRO:
            return self.allegro.checkout_form(external_id)["status"] == "READY_FOR_PROCESSING"
        return self.woo.order(int(external_id))["status"] in ("processing", "completed", "refunded")


# --- the hub processes -------------------------------------------------------------------------------


def commit() -> str:
    """The checked-out commit (and whether the tree differs from it): every `hub run` restart loads the
    code as it is then, so a run is only about one version if this is the same at its start and end."""
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True,
                              timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT,
                               capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return (head or "unknown") + (" with uncommitted changes" if dirty else "")


def child_env() -> dict[str, str]:
    # HUB_* variables of the caller's shell would override the config
    env = {k: v for k, v in os.environ.items() if not k.startswith("HUB_")}
    env["PYTHONUNBUFFERED"] = "1"
    env["PYTHONPATH"] = str(ROOT)
    return env


def hub_command(config: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "hub", "--config", str(config), *args]


class HubProcess:
    def __init__(self, label: str, config: Path, logs: Path):
        self.label = label
        self.config = config
        self.logfile = logs / f"{label}.log"
        self.popen: subprocess.Popen[bytes] | None = None
        self.started_at = 0.0
        self.starts = 0

    def start(self) -> None:
        with self.logfile.open("ab") as out:
            out.write(f"=== {self.label} start {self.starts + 1} at {datetime.now(UTC).isoformat()}\n".encode())
            out.flush()
            self.popen = subprocess.Popen(hub_command(self.config, "run"), stdout=out, stderr=out,
                                          stdin=subprocess.DEVNULL, env=child_env(), cwd=self.config.parent)
        self.started_at = time.monotonic()
        self.starts += 1

    @property
    def pid(self) -> int:
        return self.popen.pid if self.popen else 0

    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def kill(self) -> None:
        if self.alive():
            assert self.popen is not None
            os.kill(self.popen.pid, signal.SIGKILL)
            self.popen.wait(30)

    def stop(self) -> None:
        if self.alive():
            assert self.popen is not None
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(20)
            except subprocess.TimeoutExpired:
                self.kill()


# --- what the buyers and the operator did ------------------------------------------------------------


@dataclass
class Placed:
    channel: str
    external_id: str
    lines: dict[str, int]
    paid: bool
    cod: bool
    at: float
    cancel_planned: bool = False
    returned: bool = False
    refunded_by_hand: int = 0


@dataclass
class Ledger:
    orders: dict[tuple[str, str], Placed] = field(default_factory=dict)
    returns: dict[str, str] = field(default_factory=dict)  # Allegro return id -> order id
    accepted: set[int] = field(default_factory=set)  # hub return ids the operator accepted
    accept_failures: list[str] = field(default_factory=list)
    operator_cancelled: set[tuple[str, str]] = field(default_factory=set)  # oversold orders cancelled
    withheld: set[int] = field(default_factory=set)  # parcels of cancelled orders a carrier would not cancel
    cancelled: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)


class Load:
    """Buyers and the shop's admin on timers (one thread, ``run``), and the seller's operator (another,
    ``run_operator``: ``hub returns accept`` takes a process start)."""

    def __init__(self, options: Options, world: World, erp: Erp, engine: Engine, config: Path, rng: random.Random):
        self.o = options
        self.world = world
        self.erp = erp
        self.engine = engine
        self.config = config
        self.rng = rng
        self.ledger = Ledger()
        self._timers: list[tuple[float, int, Callable[[], None]]] = []
        self._seq = itertools.count()
        self.stop = threading.Event()
        self.errors: list[str] = []
        self._buyers = itertools.count(1)

    def at(self, delay: float, action: Callable[[], None]) -> None:
        heapq.heappush(self._timers, (time.monotonic() + delay, next(self._seq), action))

    def run(self) -> None:
        next_order = time.monotonic()
        next_erp = time.monotonic() + self.o.erp_every
        next_return = time.monotonic() + self.o.return_every
        next_refund = time.monotonic() + 2 * self.o.return_every
        next_ksef_fault = time.monotonic() + 3.0
        while not self.stop.is_set():
            now = time.monotonic()
            try:
                self._due(now)
                if now >= next_order:
                    self.order()
                    next_order = now + self.rng.expovariate(self.o.order_rate)
                if now >= next_erp:
                    self.erp.change(self.rng)
                    next_erp = now + self.o.erp_every
                if now >= next_return:
                    self.allegro_return()
                    next_return = now + self.o.return_every
                if now >= next_refund:
                    self.shop_refund()
                    next_refund = now + 2 * self.o.return_every
                if self.world.ksef is not None and self.o.faults and now >= next_ksef_fault:
                    self.world.ksef_fault(self.rng)
                    next_ksef_fault = now + self.rng.uniform(1.0, 5.0)
            except Exception as exc:  # the bench must not stop on one odd action; reported at the end
                self.errors.append(f"{type(exc).__name__}: {exc}")
            self.stop.wait(0.02)

    def run_operator(self) -> None:
        while not self.stop.wait(2.0):
            try:
                self.operator()
            except Exception as exc:
                self.errors.append(f"operator: {type(exc).__name__}: {exc}")

    def _due(self, now: float) -> None:
        while self._timers and self._timers[0][0] <= now:
            _, _, action = heapq.heappop(self._timers)
            action()

    def finish(self) -> None:
        """The end of the hour: what was still to happen happens now (payments, cancellations)."""
        while self._timers:
            _, _, action = heapq.heappop(self._timers)
            action()

    def order(self) -> None:
        channel = self.rng.choice(CHANNELS)
        buyable = [s for s in self.world.offer_ids if self.world.shows(channel, s)[0] > 0]
        if not buyable:
            return
        lines = {}
        for sku in self.rng.sample(buyable, min(len(buyable), 2 if self.rng.random() < 0.2 else 1)):
            lines[sku] = self.rng.randint(1, min(2, self.world.shows(channel, sku)[0]))
        roll = self.rng.random()
        cod, paid = roll < 0.1, roll >= 0.2  # 10% cash on delivery, 10% paid later (or never)
        business = self.o.invoices and self.rng.random() < BUSINESS_SHARE
        external_id = self.world.place(channel, lines, self.rng, paid=paid, cod=cod,
                                       buyer=f"kupujacy{next(self._buyers)}", nip=BUYER_NIP if business else None)
        placed = Placed(channel, external_id, lines, paid or cod, cod, time.monotonic())
        with self.ledger.lock:
            self.ledger.orders[(channel, external_id)] = placed
        if not paid and not cod:
            if self.rng.random() < 0.7:
                self.at(self.rng.uniform(1, 8), lambda: self._pay(placed))
            else:
                placed.cancel_planned = True
                self.at(self.rng.uniform(1, 8), lambda: self._cancel(placed))
        elif self.rng.random() < self.o.cancel_share:
            placed.cancel_planned = True  # the buyer changes their mind, or the shop cancels: soon after
            self.at(self.rng.uniform(0.3, 8), lambda: self._cancel(placed))

    def _pay(self, placed: Placed) -> None:
        self.world.pay(placed.channel, placed.external_id)
        placed.paid = True

    def _cancel(self, placed: Placed) -> None:
        if not self.world.cancelled(placed.channel, placed.external_id):
            self.world.cancel(placed.channel, placed.external_id)
            with self.ledger.lock:
                self.ledger.cancelled += 1

    def _booked(self, channel: str) -> list[Placed]:
        """Orders of the channel the ERP has a document of, paid online, not cancelled and not to be (the
        money of a cash-on-delivery order goes back by bank transfer, not through the channel)."""
        with db.transaction(self.engine) as session:
            booked = set(session.execute(select(Order.external_id).where(
                Order.channel == channel, Order.erp_ref.is_not(None), Order.status != "cancelled")).scalars())
        with self.ledger.lock:
            return [p for (c, e), p in self.ledger.orders.items()
                    if c == channel and e in booked and not p.cod and not p.cancel_planned and not p.returned
                    and not p.refunded_by_hand]

    def allegro_return(self) -> None:
        """A buyer sends one unit back; the parcel arrives (DELIVERED)."""
        candidates = self._booked(ALLEGRO)
        if not candidates:
            return
        placed = self.rng.choice(candidates)
        sku = next(iter(placed.lines))
        return_id = self.world.allegro.add_return(placed.external_id, [(self.world.offer_ids[sku], 1)],
                                                  status="DELIVERED")
        placed.returned = True
        with self.ledger.lock:
            self.ledger.returns[return_id] = placed.external_id

    def shop_refund(self) -> None:
        """The shop's admin refunds one unit by hand ("Refund manually")."""
        candidates = self._booked(SHOP)
        if not candidates:
            return
        placed = self.rng.choice(candidates)
        order = self.world.woo.order(int(placed.external_id))
        item = order["line_items"][0]
        unit = ((Decimal(item["total"]) + Decimal(item["total_tax"])) / item["quantity"]).quantize(Decimal("0.01"))
        self.world.tick()
        self.world.woo.refund_by_hand(int(placed.external_id), str(unit), reason="zwrot towaru",
                                      lines=[(item["id"], 1)])
        placed.refunded_by_hand += 1

    def operator(self) -> None:
        """The seller accepts the returns that arrived (hub returns accept ID) and cancels oversold
        orders on their channel."""
        with db.transaction(self.engine) as session:
            arrived = session.execute(select(ReturnRow.id).where(
                ReturnRow.channel == ALLEGRO, ReturnRow.status.in_(("requested", "in_transit", "received")))
            ).scalars().all()
            # oversold, or reopened by its channel after the hub cancelled it (a payment arriving late)
            # when the hub could not take it up again: the seller cancels it on its channel
            oversold = session.execute(select(Order.channel, Order.external_id).where(or_(
                and_(Order.oversold.is_(True), Order.status != "cancelled"), Order.problem_kind == "reopened"))).all()
            withheld = [sid for sid, problem in session.execute(
                select(Shipment.id, Order.problem).join(Order, Order.id == Shipment.order_id).where(
                    Order.problem.like("%--withheld%"), Shipment.state.in_(("booked", "label_ready"))))
                if f"cancel {sid} --withheld" in (problem or "")]
        for return_id in arrived:
            if return_id in self.ledger.accepted:
                continue
            done = subprocess.run(hub_command(self.config, "returns", "accept", str(return_id)), env=child_env(),
                                  capture_output=True, text=True, timeout=60, cwd=self.config.parent)
            if done.returncode == 0:
                self.ledger.accepted.add(return_id)
            else:
                self.ledger.accept_failures.append(f"return {return_id}: {done.stderr.strip()}")
        for channel, external_id in oversold:
            key = (channel, external_id)
            if not self.world.cancelled(channel, external_id):  # again if its channel reopened it
                self.world.cancel(channel, external_id)
                self.ledger.operator_cancelled.add(key)
        for shipment_id in withheld:  # a carrier would not cancel a cancelled order's parcel: the seller keeps it
            done = subprocess.run(hub_command(self.config, "shipments", "cancel", str(shipment_id), "--withheld"),
                                  env=child_env(), capture_output=True, text=True, timeout=60, cwd=self.config.parent)
            if done.returncode == 0:
                self.ledger.withheld.add(shipment_id)
            else:
                self.ledger.accept_failures.append(f"shipment {shipment_id} --withheld: {done.stderr.strip()}")


# --- the killer --------------------------------------------------------------------------------------


class Killer:
    def __init__(self, procs: list[HubProcess], engine: Engine, options: Options, rng: random.Random):
        self.procs = procs
        self.engine = engine
        self.o = options
        self.rng = rng
        self.kills: list[str] = []
        self.stop = threading.Event()

    def _running(self, pid: int) -> str:
        with db.transaction(self.engine) as session:
            jobs = session.execute(select(Job.id, Job.kind).where(
                Job.state == "running", Job.lease_owner.like(f"%:{pid}:%")).order_by(Job.id)).all()
        return ", ".join(f"{kind}#{job_id}" for job_id, kind in jobs) or "nothing"

    def run(self, started: float) -> None:
        if self.o.kills == 0:  # the baseline: the same load, no crash
            self.stop.wait(self.o.minutes * 60 if self.o.minutes else Options.kills * self.o.interval)
            return
        for n in range(1, self.o.kills + 1):
            window_end = time.monotonic() + self.o.interval
            if self.stop.wait(self.rng.uniform(0, self.o.interval)):
                return
            up = [p for p in self.procs if p.alive() and time.monotonic() - p.started_at > 3] or self.procs
            victim = self.rng.choice(up)
            try:
                running = self._running(victim.pid)
            except Exception as exc:
                running = f"? ({type(exc).__name__})"
            pid = victim.pid
            victim.kill()
            line = (f"kill {n}/{self.o.kills} at t={time.monotonic() - started:6.1f}s: {victim.label} "
                    f"(pid {pid}) running {running}")
            self.kills.append(line)
            log("  " + line)
            victim.start()
            if self.stop.wait(max(0.0, window_end - time.monotonic())):
                return


# --- setup -------------------------------------------------------------------------------------------


def catalogue(rng: random.Random, count: int) -> list[FeedRow]:
    rows = []
    for i in range(1, count + 1):
        price = Decimal(rng.randrange(2999, 19999)) / 100
        code = f"591{i:09d}"
        rows.append(FeedRow(
            sku=f"CH-{i:03d}", name=f"Produkt {i} - zażółć gęślą jaźń", ean=code + gtin.calc_check_digit(code),
            stock=rng.randrange(1, 8), price=price, vat="23",
            cost=(price / Decimal("1.23") * Decimal("0.5")).quantize(Decimal("0.01"))))
    return rows


CONFIG = """\
# Written by bench/chaos.py
[database]
url = "{database}"
pool_size = 10

[worker]
concurrency = 4
batch_size = 5
lease = "10s"
poll_interval = "200ms"
max_attempts = 10
backoff_initial = "500ms"
backoff_max = "5s"
shutdown_timeout = "5s"

[scheduler]
leader_poll = "1s"

[schedule.erp]
job = "erp.poll"
every = "1s"
payload = {{ erp = "erp" }}

[schedule.plan]
job = "sync.plan"
every = "10s"

[schedule.housekeeping]
job = "hub.prune_jobs"
every = "1m"
payload = {{ keep_seconds = 3600, keep_routine_seconds = 600 }}

{channels}
[log]
level = "info"
format = "json"

[mappings]
dir = "mappings"

[orders]
erp_stock_grace = "{grace}s"

[connectors.erp]
kind = "csv"
path = "{feed}"
encoding = "windows-1250"
settle = 0
outbox = "{outbox}"

[connectors.{allegro}]
kind = "allegro"
api_url = "{allegro_url}"
auth_url = "{allegro_url}"
client_id = "{client_id}"
client_secret = "{client_secret}"
command_poll_interval = "100ms"
request_timeout = "{timeout}s"
retry_backoff = "200ms"
rate_limit_block = "3s"

[connectors.{shop}]
kind = "woocommerce"
base_url = "{woo_url}"
consumer_key = "{woo_key}"
consumer_secret = "{woo_secret}"
timeout = "{timeout}s"
connect_timeout = "2s"
"""

SCHEDULES = """\
[schedule.reconcile-{name}]
job = "sync.reconcile"
every = "30s"
payload = {{ channel = "{name}" }}

[schedule.orders-{name}]
job = "orders.poll"
every = "1s"
payload = {{ channel = "{name}" }}

[schedule.orders-reconcile-{name}]
job = "orders.reconcile"
every = "20s"
payload = {{ channel = "{name}" }}

[schedule.returns-{name}]
job = "returns.poll"
every = "2s"
payload = {{ channel = "{name}" }}
"""


INVOICING = """
[connectors.ksef]
kind = "ksef"
api_url = "{ksef_url}"
nip = "{nip}"
token = "{token}"
rate_limit_per_minute = 6000  # the simulator's: the run checks exactly-once across kills, not KSeF's quota

[invoicing]
enabled = true
ksef = "ksef"

[invoicing.seller]
name = "Sklep Chaos Sp. z o.o."
nip = "{nip}"
street = "ul. Magazynowa 5"
city = "Poznań"
postal_code = "60-001"

# safety nets: sends and status reads are also queued by the invoices themselves
[schedule.ksef-send]
job = "invoicing.send"
every = "5s"

[schedule.ksef-status]
job = "invoicing.ksef_status"
every = "5s"
"""


def write_config(base: Path, database: str, erp: Erp, world: World, grace: float) -> Path:
    (base / "mappings").mkdir(exist_ok=True)
    pricing = ["# Written by bench/chaos.py: the demo's per-channel rules", "[defaults]", ""]
    for name, rules in ((ALLEGRO, AllegroDemo.pricing), (SHOP, WooDemo.pricing)):
        pricing.append(f"[channels.{name}]")
        pricing += [f'{k} = "{v}"' for k, v in rules.items()]
        pricing.append("")
    (base / "mappings" / "pricing.toml").write_text("\n".join(pricing), encoding="utf-8")
    carriers = ""
    if world.carriers:
        from demo.shipping import SENDER, delivery_toml

        hooks = [(kind, hook) for kind, hook, _ in world.carriers]
        (base / "mappings" / "delivery.toml").write_text(delivery_toml(hooks, ALLEGRO), encoding="utf-8")
        # one order a second, a third of them through each carrier, each booking about five calls plus
        # tracking: more than Furgonetka's default quota of 120 a minute. The run checks exactly-once
        # across kills, not a vendor's quota (bench/labels.py lifts them too), so they are raised to fit
        carriers = SENDER + "\n".join(
            f'[connectors.{hook.name}]\nkind = "{kind}"\nrate_limit_per_minute = {CARRIER_QUOTA}\n'
            + "".join(f"{k} = {_toml_value(v)}\n" for k, v in options.items())
            for kind, hook, options in world.carriers)
    invoicing = ""
    if world.ksef is not None:
        invoicing = INVOICING.format(ksef_url=world.ksef_url, token=KSEF_TOKEN, nip=KSEF_NIP)
    config = base / "hub.toml"
    config.write_text(CONFIG.format(
        database=database, channels="\n".join(SCHEDULES.format(name=n) for n in CHANNELS), grace=grace,
        feed=erp.feed, outbox=erp.outbox, allegro=ALLEGRO, allegro_url=world.allegro_url, client_id=CLIENT_ID,
        client_secret=CLIENT_SECRET, timeout=REQUEST_TIMEOUT, shop=SHOP, woo_url=world.woo_url, woo_key=WOO_KEY,
        woo_secret=WOO_SECRET) + carriers + invoicing, encoding="utf-8")
    return config


def wait(what: str, predicate: Callable[[], Any], timeout: float, procs: list[HubProcess], tick: float = 0.25) -> float:
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if predicate():
            return time.monotonic() - start
        dead = [p for p in procs if not p.alive()]
        if dead:
            raise RuntimeError(f"{dead[0].label} exited while waiting for {what}: see {dead[0].logfile}")
        time.sleep(tick)
    raise RuntimeError(f"timed out after {timeout:.0f}s waiting for {what} (logs: {procs[0].logfile.parent})")


def ready(engine: Engine, world: World, erp: Erp, skus: list[str]) -> bool:
    """Every offer bound and showing what the ERP says, and every journal's cursor set."""
    with db.transaction(engine) as session:
        cursors = {(c.channel, c.stream) for c in session.execute(select(ChannelCursor)).scalars()}
        if not all((ch, stream) in cursors for ch in CHANNELS for stream in ("orders", "returns")):
            return False
        bound = session.execute(select(func.count()).select_from(Listing).where(
            Listing.sku.is_not(None), Listing.desired_price.is_not(None))).scalar_one()
        if bound < 2 * len(skus):
            return False
    return all(world.shows(ch, s)[0] == erp.stock(s) for ch in CHANNELS for s in skus)


# --- the invariants ----------------------------------------------------------------------------------


@dataclass
class Result:
    figures: dict[str, int]
    details: dict[str, list[str]]
    info: list[str]
    counts: dict[str, int] = field(default_factory=dict)  # what the run did (kills, orders, ...)

    @property
    def ok(self) -> bool:
        return not any(self.figures.values())


def check(engine: Engine, world: World, erp: Erp, load_: Load, config: Path) -> Result:
    figures = dict.fromkeys(FIGURES, 0)
    details: dict[str, list[str]] = defaultdict(list)

    def bad(figure: str, detail: str, n: int = 1) -> None:
        figures[figure] += n
        details[figure].append(detail)

    ledger = load_.ledger
    with ledger.lock:
        placed = dict(ledger.orders)
    with db.transaction(engine) as session:
        orders = session.execute(select(Order)).scalars().all()
        lines: dict[int, Counter[str]] = defaultdict(Counter)
        for order_id, sku, quantity in session.execute(select(
                OrderLineRow.order_id, OrderLineRow.sku, OrderLineRow.quantity).where(OrderLineRow.kind == "goods")):
            lines[order_id][sku] += quantity
        held: dict[int, dict[str, Counter[str]]] = defaultdict(lambda: defaultdict(Counter))
        for order_id, sku, quantity, state in session.execute(select(
                Reservation.order_id, Reservation.sku, Reservation.quantity, Reservation.state)):
            held[order_id][state][sku] += quantity
        returns = session.execute(select(ReturnRow)).scalars().all()
        listings = session.execute(select(Listing).where(Listing.sku.is_not(None))).scalars().all()
        products = {p.sku: p for p in session.execute(select(Product)).scalars()}
        stock_read = dict(session.execute(select(StockLevel.sku, func.sum(StockLevel.quantity))
                                          .group_by(StockLevel.sku)).all())
        dead = session.execute(select(Job.id, Job.kind, Job.attempts, Job.last_error).where(Job.state == "dead")
                               .order_by(Job.id)).all()
        history: dict[int, list[str]] = defaultdict(list)
        for h in session.execute(select(OrderHistory).order_by(OrderHistory.id)).scalars():
            history[h.order_id].append(f"{h.at:%H:%M:%S} {h.from_status}>{h.to_status} ({h.source}: {h.note})")

    def story(order: Order) -> str:
        return f" [hub #{order.id}: " + "; ".join(history[order.id]) + "]"

    open_by_sku: Counter[str] = Counter()
    for order_states in held.values():
        open_by_sku.update(order_states["open"])

    # orders lost / duplicated
    by_key: dict[tuple[str, str], list[Order]] = defaultdict(list)
    for order in orders:
        by_key[(order.channel, order.external_id)].append(order)
    for key, p in placed.items():
        found = by_key.get(key, [])
        if not found:
            bad("orders lost", f"{key[0]} {key[1]} (placed {p.lines}) is not in the hub")
            continue
        if len(found) > 1:
            bad("orders duplicated", f"{key[0]} {key[1]} is in the hub {len(found)} times", len(found) - 1)
        got = lines[found[0].id]
        if got != Counter(p.lines):
            figure = "orders lost" if sum(got.values()) < sum(p.lines.values()) else "orders duplicated"
            bad(figure, f"{key[0]} {key[1]}: placed {dict(p.lines)}, the hub has {dict(got)}")
    for key in by_key.keys() - placed.keys():
        bad("orders duplicated", f"{key[0]} {key[1]} is in the hub but no buyer placed it")

    # reservations
    for key in placed.keys() & by_key.keys():
        order = by_key[key][0]
        channel_cancelled = world.cancelled(*key)
        states = held[order.id]
        if channel_cancelled:
            if order.status != "cancelled":
                bad("reservations wrong", f"{key[0]} {key[1]} is cancelled on the channel, {order.status} in the hub"
                                          + story(order))
            if states["open"]:
                bad("reservations wrong", f"{key[0]} {key[1]} is cancelled and still holds {dict(states['open'])}")
            continue
        if order.status == "cancelled":
            bad("reservations wrong", f"{key[0]} {key[1]} is cancelled in the hub but not on the channel"
                                      + story(order))
            continue
        if order.oversold or order.problem:
            continue
        holding = states["open"] + states["consumed"]
        if holding != lines[order.id]:
            bad("reservations wrong", f"{key[0]} {key[1]} ({order.status}) holds {dict(holding)} for "
                                      f"{dict(lines[order.id])} (released {dict(states['released'])})")
    for problem in erp.negative:
        bad("reservations wrong", f"the ERP booked more than it had: {problem}")

    # ERP documents: every file in the outbox tree (the ERP moved the imported ones into processed/)
    files: dict[tuple[str, str], list[Path]] = defaultdict(list)
    for path in erp.outbox.rglob("*"):
        if path.is_file() and not path.name.startswith(".") and ".json" in path.name:
            try:
                doc = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                bad("ERP documents duplicated", f"{path.name}: not a readable JSON document")
                continue
            files[(doc.get("format"), doc.get("reference"))].append(path)
    for (fmt, reference), found in files.items():
        if len(found) > 1:
            bad("ERP documents duplicated", f"{fmt} {reference}: {len(found)} files "
                                            f"({', '.join(p.name for p in found)})", len(found) - 1)
    sales = {ref for fmt, ref in files if fmt == "hub.sales_document"}
    cancels = {ref.removesuffix("#cancel") for fmt, ref in files if fmt == "hub.sales_document_cancellation"}
    restocks = {ref for fmt, ref in files if fmt == "hub.restock"}
    known_refs = set()
    for key in placed.keys() & by_key.keys():
        order = by_key[key][0]
        ref = f"{key[0]}/{key[1]}"
        known_refs.add(ref)
        cancelled, paid = world.cancelled(*key), world.paid(*key)
        if order.oversold or (order.problem and order.problem_kind not in AFTER_THE_SALE):
            if ref in sales:
                bad("ERP documents duplicated", f"{ref}: a sales document for an order the hub flagged "
                                                f"({order.problem_kind})")
        elif cancelled:
            if ref in sales and ref not in cancels:
                bad("ERP documents missing", f"{ref}: cancelled ({order.status} in the hub), its sale is in the "
                                             f"ERP (erp_ref {order.erp_ref}) and no cancellation is" + story(order))
        elif paid and ref not in sales:
            bad("ERP documents missing", f"{ref}: paid, {order.status} in the hub, no sales document" + story(order))
        if ref in sales and order.erp_ref and not any(p.name.startswith(f"{order.erp_ref}.json")
                                                      for p in files[("hub.sales_document", ref)]):
            bad("ERP documents missing", f"{ref}: erp_ref {order.erp_ref} names no file of this document")
        if ref in cancels and ref not in sales:
            bad("ERP documents duplicated", f"{ref}: a cancellation of a sale the ERP never got")
    for ref in sales - known_refs:
        bad("ERP documents duplicated", f"{ref}: a sales document of an order no buyer placed")
    accepted = [r for r in returns if r.channel == ALLEGRO and r.status in ("accepted", "refunded")]
    for rma in accepted:
        ref = f"return/{rma.channel}/{rma.external_id}"
        if ref not in restocks:
            bad("ERP documents missing", f"{ref}: accepted, no restock document")
    for ref in erp.pending_cancels:
        bad("ERP documents duplicated", f"{ref}: a cancellation the ERP cannot book (no such sale)")

    # refunds
    refunds_by_order = Counter(r.order_id for r in world.allegro.refunds())
    returned = {rma.order_external_id for rma in accepted}
    for rma in accepted:
        n = refunds_by_order.get(rma.order_external_id, 0)
        if n == 0 or rma.status != "refunded":
            bad("refunds missing", f"allegro return {rma.external_id} of order {rma.order_external_id}: "
                                   f"{rma.status} in the hub, {n} refunds on Allegro")
        if n > 1:
            bad("refunds duplicated", f"allegro order {rma.order_external_id}: refunded {n} times", n - 1)
    for order_id, n in refunds_by_order.items():
        if order_id not in returned:
            bad("refunds duplicated", f"allegro order {order_id}: {n} refunds and no accepted return", n)
    for (channel, external_id), p in placed.items():
        if channel != SHOP:
            continue
        made = world.woo.order_refunds(int(external_id))
        by_hub = [r for r in made if "[hub:" in str(r.get("reason") or "")]
        if by_hub:
            bad("refunds duplicated", f"shop order {external_id}: {len(by_hub)} refunds made by the hub", len(by_hub))
        if len(made) - len(by_hub) != p.refunded_by_hand:
            bad("refunds duplicated", f"shop order {external_id}: {len(made)} refunds, {p.refunded_by_hand} by hand")

    # listings
    rules = load_rules(load(config, environ={}))
    for listing in listings:
        sku = listing.sku
        assert sku is not None
        if sku not in world.offer_ids:
            continue
        shown_qty, shown_price = world.shows(listing.channel, sku)
        truth = erp.stock(sku)
        product = products.get(sku)
        want_qty = max(0, max(truth, 0) - open_by_sku[sku])
        problems = []
        if not listing.active:
            problems.append("inactive")
        if product is None or product.price_gross != erp.price(sku):
            problems.append(f"hub price {product.price_gross if product else None} != ERP {erp.price(sku)}")
        if stock_read.get(sku) != max(truth, 0):
            problems.append(f"hub stock {stock_read.get(sku)} != ERP {truth}")
        if listing.desired_quantity != want_qty:
            problems.append(f"wants {listing.desired_quantity} != ERP {truth} - open {open_by_sku[sku]}")
        if shown_qty != listing.desired_quantity:
            problems.append(f"shows {shown_qty} != wanted {listing.desired_quantity}")
        if shown_price != listing.desired_price:
            problems.append(f"shows price {shown_price} != wanted {listing.desired_price}")
        if product is not None:
            decision = decide(rules.price_rule(listing.channel), price_inputs(product, None, listing.channel))
            if not decision.refused and decision.price is not None and decision.price != listing.desired_price:
                problems.append(f"wanted price {listing.desired_price} != the rules' {decision.price}")
        if problems:
            bad("listings not converged", f"{listing.channel} {sku}: " + "; ".join(problems))
    bound = {(li.channel, li.sku) for li in listings}
    for channel in CHANNELS:
        for sku in world.offer_ids:
            if (channel, sku) not in bound:
                bad("listings not converged", f"{channel} {sku}: the offer is not bound")

    check_shipments(engine, world, orders, history, bad)
    check_invoices(engine, world, orders, returns, history, bad)

    for job_id, kind, attempts, error in dead:
        bad("jobs dead", f"#{job_id} {kind} after {attempts} attempts: {(error or '')[:200]}")

    info = [f"orders placed {len(placed)} ({', '.join(f'{c} {n}' for c, n in Counter(k[0] for k in placed).items())}),"
            f" cancelled on the channel {ledger.cancelled}, oversold {sum(1 for o in orders if o.oversold)} "
            f"(cancelled by the operator {len(ledger.operator_cancelled)}), parcels withheld {len(ledger.withheld)}, "
            f"returns accepted {len(accepted)}, "
            f"shop refunds by hand {sum(p.refunded_by_hand for p in placed.values())}, ERP feed writes {erp.changes}, "
            f"ERP documents imported {sum(erp.imported.values())}"]
    if world.ksef is not None:
        from hub.invoicing.models import Invoice

        with db.transaction(engine) as session:
            kinds = Counter(kind for (kind,) in session.execute(select(Invoice.kind).where(
                Invoice.number.is_not(None))))
        info.append(f"invoices {kinds['VAT']} and corrections {kinds['KOR']} issued; KSeF: "
                    f"{len(world.ksef.sessions)} sessions, {len(world.ksef.accepted)} invoices accepted, "
                    f"{world.ksef_faults} faults planned (503 before applying, answers lost after applying)")
    counts = {"orders": len(placed), "cancelled": ledger.cancelled, "oversold": sum(1 for o in orders if o.oversold),
              "returns accepted": len(accepted), "refunds by hand": sum(p.refunded_by_hand for p in placed.values()),
              "ERP documents": sum(erp.imported.values())}
    return Result(figures, dict(details), info, counts)


def check_shipments(engine: Engine, world: World, orders: list[Order], history: dict[int, list[str]],
                    bad: Callable[..., None]) -> None:
    """Every order that went into processing without a problem has its shipment, booked once with its
    carrier (the simulator holds one booking per shipment) and its label stored as recorded."""
    if not world.carriers:
        return
    from hub.shipping.labels import LabelFileError, read_checked
    from hub.shipping.models import Shipment

    with db.transaction(engine) as session:
        shipments = session.execute(select(Shipment)).scalars().all()
    shipped = {s.order_id for s in shipments}
    for order in orders:
        processed = any(">processing" in step for step in history[order.id])
        cancelled = order.status == "cancelled"  # a cancelled order ships nothing (hub.shipping.withdraw)
        if processed and not cancelled and not order.oversold and order.problem is None and order.id not in shipped:
            bad("shipments missing", f"{order.channel} {order.external_id}: in processing, no shipment")
    per_carrier = Counter(s.carrier for s in shipments if s.state not in ("draft", "failed"))
    for _, hook, _ in world.carriers:
        held = hook.bookings()
        if held > per_carrier[hook.name]:
            bad("bookings duplicated", f"{hook.name}: the carrier holds {held} bookings for "
                                       f"{per_carrier[hook.name]} shipments", held - per_carrier[hook.name])
    cancelled = {o.id: o for o in orders if o.status == "cancelled"}
    for s in shipments:
        if s.order_id in cancelled and s.state not in ("cancelled", "failed"):
            order = cancelled[s.order_id]
            bad("parcels of cancelled orders", f"{s.reference} ({s.carrier}) is {s.state}, its order "
                                               f"{order.channel} {order.external_id} cancelled: {order.problem or ''}")
            continue
        if s.state in ("booking", "booked", "draft"):
            bad("labels missing or wrong", f"{s.reference} ({s.carrier}) still {s.state}: {s.problem or ''}")
        elif s.label_path and s.label_sha256:
            try:
                read_checked(s.label_path, s.label_sha256)
            except LabelFileError as exc:
                bad("labels missing or wrong", f"{s.reference}: {exc}")


def check_invoices(engine: Engine, world: World, orders: list[Order], returns: list[ReturnRow],
                   history: dict[int, list[str]], bad: Callable[..., None]) -> None:
    """Every paid business order's invoice accepted by KSeF once (and corrected to nothing if the order was
    cancelled, and for each accepted return), numbers without a gap or a repeat, nothing sent twice."""
    if world.ksef is None:
        return
    from hub.invoicing.models import Invoice

    with db.transaction(engine) as session:
        invoices = session.execute(select(Invoice)).scalars().all()
    by_origin = {i.origin: i for i in invoices}
    corrections: dict[int, list[Invoice]] = defaultdict(list)
    for invoice in invoices:
        if invoice.corrects_id is not None and invoice.number is not None:
            corrections[invoice.corrects_id].append(invoice)

    def story(order: Order) -> str:
        return f" [hub #{order.id}: " + "; ".join(history[order.id]) + "]"

    for order in orders:
        business = bool((order.invoice or {}).get("nip"))
        invoice = by_origin.get(f"order:{order.id}")
        cod = bool((order.payment or {}).get("cash_on_delivery"))
        paid_in_hub = any(">paid" in step for step in history[order.id])
        if not business or order.oversold or (order.problem and order.problem_kind not in AFTER_THE_SALE):
            continue
        if order.status == "cancelled":
            if invoice is not None and invoice.number is not None:
                left = invoice.gross + sum((c.gross for c in corrections[invoice.id]), Decimal(0))
                if left != 0:
                    bad("invoices missing", f"{order.channel} {order.external_id}: cancelled, invoice "
                                            f"{invoice.number} corrected to {left}, not to nothing" + story(order))
            continue
        if cod or not paid_in_hub:
            continue  # a cash-on-delivery business order is invoiced when shipped (not in this run)
        if invoice is None or invoice.number is None:
            bad("invoices missing", f"{order.channel} {order.external_id}: paid, {order.status}, no invoice "
                                    f"({invoice.problem if invoice else 'none issued'})" + story(order))
    for rma in returns:
        if rma.status not in ("accepted", "refunded") or rma.order_id is None:
            continue
        original = by_origin.get(f"order:{rma.order_id}")
        if original is not None and original.number is not None and f"return:{rma.id}" not in by_origin:
            bad("invoices missing", f"return {rma.channel}/{rma.external_id} accepted: invoice {original.number} "
                                    "has no correction")
    by_period: dict[tuple[str, str | None], list[int]] = defaultdict(list)
    for invoice in invoices:
        if invoice.seq is not None:
            by_period[(invoice.series, invoice.period)].append(invoice.seq)
    for (series, period), seqs in sorted(by_period.items()):
        if sorted(seqs) != list(range(1, len(seqs) + 1)):
            missing = sorted(set(range(1, max(seqs) + 1)) - set(seqs))[:10]
            bad("invoice numbers wrong", f"{series} {period}: {len(seqs)} numbers up to {max(seqs)}, missing "
                                         f"{missing}, twice {[n for n, c in Counter(seqs).items() if c > 1][:10]}")
    held: Counter[str] = Counter()
    duplicates: list[str] = []
    for ksef_session in list(world.ksef.sessions.values()):
        for sent in list(ksef_session.invoices):
            held[sent.invoice_number or sent.sha256] += 1
            if sent.outcome[0] == 440:
                duplicates.append(sent.invoice_number or sent.sha256)
    for number, count in held.items():
        if count > 1:
            bad("invoices sent twice", f"{number}: KSeF holds it {count} times", count - 1)
    for number in duplicates:
        bad("invoices sent twice", f"{number}: KSeF refused a second copy as a duplicate (440)")
    for invoice in invoices:
        if invoice.number is not None and invoice.state != "accepted":
            bad("invoices not accepted", f"{invoice.number} ({invoice.origin}): {invoice.state} "
                                         f"{invoice.problem or ''}")


def forensics(base: Path, database_url: str, world: World) -> list[str]:
    """What a failure needs looking into, kept in the work dir: the database (pg_dump), every request each
    simulator answered, Allegro's batch commands."""
    folder = base / "forensics"
    folder.mkdir(exist_ok=True)
    notes = []
    url = database_url.replace("postgresql+psycopg://", "postgresql://")
    try:
        dump = subprocess.run([str(pgtemp.find_bindir() / "pg_dump"), "--no-owner", f"--dbname={url}", "-f",
                               str(folder / "hub.sql")], capture_output=True, text=True, timeout=300)
        notes.append(f"database: {folder / 'hub.sql'}" if dump.returncode == 0 else f"pg_dump failed: {dump.stderr}")
    except (OSError, subprocess.SubprocessError, pgtemp.PgStartError) as exc:
        notes.append(f"pg_dump failed: {exc}")
    with (folder / "allegro-requests.jsonl").open("w", encoding="utf-8") as out:
        for r in list(world.allegro.requests):
            out.write(json.dumps({"method": r.method, "path": r.path, "query": r.query, "status": r.status,
                                  "body": r.body.decode("utf-8", "replace")}) + "\n")
    with (folder / "allegro-commands.jsonl").open("w", encoding="utf-8") as out:
        for c in world.allegro.commands():
            out.write(json.dumps({"kind": c.kind, "id": c.id, "offers": c.offer_ids, "body": c.body,
                                  "created_at": c.created_at.isoformat(), "applied": c.applied}, default=str) + "\n")
    with (folder / "shop-requests.jsonl").open("w", encoding="utf-8") as out:
        for e in list(world.woo.log):
            out.write(json.dumps({"method": e.method, "path": e.path, "query": e.query, "body": e.body,
                                  "status": e.status, "fault": e.fault}, default=str) + "\n")
    notes.append(f"simulators' requests: {folder}")
    return notes


def in_flight(engine: Engine) -> dict[str, int]:
    """Effects still on their way (pending, running or retrying), by kind and state."""
    with db.transaction(engine) as session:
        return {f"{kind} {state}": n for kind, state, n in session.execute(
            select(Job.kind, Job.state, func.count()).where(Job.kind.in_(EFFECT_KINDS), Job.state.in_(OPEN))
            .group_by(Job.kind, Job.state)).all()}


# --- the run -----------------------------------------------------------------------------------------


def run(options: Options, database_url: str, base: Path) -> Result:
    """One chaos run in ``base`` against an empty or migrated PostgreSQL database; prints as it goes."""
    rng = random.Random(options.seed)
    base.mkdir(parents=True, exist_ok=True)
    logs = base / "logs"
    logs.mkdir(exist_ok=True)
    rows = catalogue(rng, options.skus)
    skus = [r.sku for r in rows]
    world = World(rows, options.seed, options.token_ttl, options.shipments, options.invoices)
    erp = Erp(base, rows, world.sku_of_offer)
    engine = db.make_engine(database_url)
    procs: list[HubProcess] = []
    load_: Load | None = None
    killer: Killer | None = None
    threads: list[threading.Thread] = []
    erp_stop = threading.Event()
    try:
        db.upgrade(engine)
        config = write_config(base, database_url, erp, world, options.grace)
        login = subprocess.run(hub_command(config, "allegro", "login", ALLEGRO), env=child_env(), capture_output=True,
                               text=True, timeout=120, cwd=base)
        if login.returncode != 0:
            raise RuntimeError(f"hub allegro login failed ({login.returncode}): {login.stderr.strip()}")
        at_start = commit()
        log(f"hub code: {at_start}; work dir {base}; {options.skus} SKUs on Allegro ({world.allegro_url}) and "
            f"WooCommerce ({world.woo_url}); `hub allegro login {ALLEGRO}` done")

        def erp_loop() -> None:
            while not erp_stop.wait(0.3):
                try:
                    erp.import_outbox()
                except Exception as exc:
                    log(f"  ERP import failed: {type(exc).__name__}: {exc}")

        threads.append(threading.Thread(target=erp_loop, name="erp", daemon=True))
        threads[-1].start()
        procs = [HubProcess(label, config, logs) for label in ("hub-a", "hub-b")]
        for proc in procs:
            proc.start()
        took = wait("the first sync (offers bound, every channel showing the ERP's stock)",
                    lambda: ready(engine, world, erp, skus), 120, procs)
        log(f"first sync after {took:.1f}s; chaos: {options.kills} kills, one within every {options.interval:g}s, "
            f"faults {'on' if options.faults else 'off'}, {options.order_rate:g} orders/s, seed {options.seed}")

        world.faults(options.faults)
        load_ = Load(options, world, erp, engine, config, rng)
        killer = Killer(procs, engine, options, random.Random(options.seed + 1))
        started = time.monotonic()
        workers = [threading.Thread(target=load_.run, name="load", daemon=True),
                   threading.Thread(target=load_.run_operator, name="operator", daemon=True)]
        for thread in workers:
            thread.start()
        threads += workers
        killer_thread = threading.Thread(target=killer.run, args=(started,), name="killer", daemon=True)
        killer_thread.start()
        next_report = started + 60
        while killer_thread.is_alive():
            killer_thread.join(1.0)
            if time.monotonic() >= next_report:
                next_report += 60
                log(f"  t={time.monotonic() - started:.0f}s: {len(killer.kills)} kills, "
                    f"{len(load_.ledger.orders)} orders, {sum(erp.imported.values())} ERP documents imported")
        chaos_s = time.monotonic() - started

        # settle: no more load, no faults, both processes up
        load_.stop.set()
        for thread in workers:
            thread.join(60)
        load_.finish()
        world.faults(False)
        for proc in procs:
            if not proc.alive():
                proc.start()
        log(f"chaos over after {chaos_s:.0f}s ({len(killer.kills)} kills); load stopped, faults off, settling "
            f"(at most {options.settle:g}s)")
        settle_start = time.monotonic()
        clean = 0
        next_note = settle_start + 10
        while time.monotonic() - settle_start < options.settle and clean < 2:
            time.sleep(2.0)
            load_.operator()
            flying = in_flight(engine)
            found = None if flying else check(engine, world, erp, load_, config)
            clean = clean + 1 if found is not None and found.ok else 0  # twice in a row: nothing on its way
            if time.monotonic() >= next_note and clean == 0:
                next_note += 10
                why = flying or {k: v for k, v in (found.figures if found else {}).items() if v}
                log(f"  settling, t+{time.monotonic() - settle_start:.0f}s: {why}")
        settle_s = time.monotonic() - settle_start
        result = check(engine, world, erp, load_, config)
        result.counts.update(kills=len(killer.kills), settled=int(clean >= 2))
        for proc in procs:
            if not proc.alive():
                result.info.append(f"{proc.label} is not running at the end: see {proc.logfile}")
        result.info.insert(0, f"{len(killer.kills)} kills in {chaos_s:.0f}s, then settled for {settle_s:.0f}s "
                              f"({'settled' if clean >= 2 else 'NOT settled'}); hub processes started "
                              f"{sum(p.starts for p in procs)} times")
        result.info.append("faults injected: " + world.fault_counts())
        if commit() != at_start:
            result.info.append(f"the hub's code changed during the run: {at_start} at the start, {commit()} at the end")
        problems = load_.errors + load_.ledger.accept_failures
        if problems:
            result.info.append(f"load errors ({len(problems)}): " + "; ".join(problems[:5]))
        if options.keep_dir or not result.ok:
            result.info += forensics(base, database_url, world)
        return result
    finally:
        if killer is not None:
            killer.stop.set()
        if load_ is not None:
            load_.stop.set()
        for proc in procs:
            proc.stop()
        erp_stop.set()
        for thread in threads:
            thread.join(10)
        world.stop()
        engine.dispose()


def report(result: Result, out: Callable[[str], None] = log) -> None:
    for line in result.info:
        out(line)
    width = max(len(f) for f in FIGURES)
    for figure in FIGURES:
        out(f"{figure:<{width}}  {result.figures[figure]:>5}")
    for figure, lines in result.details.items():
        out(f"{figure}:")
        for line in lines[:15]:
            out(f"  {line}")
        if len(lines) > 15:
            out(f"  ... and {len(lines) - 15} more")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="the test suite's short version (5 kills)")
    parser.add_argument("--kills", type=int, help=f"SIGKILLs (default {Options.kills}; --quick {QUICK.kills})")
    parser.add_argument("--interval", type=float, help=f"seconds per kill (default {Options.interval:g})")
    parser.add_argument("--minutes", type=float, help="length of the chaos phase (sets --interval to fit the kills)")
    parser.add_argument("--seed", type=int, help="random seed of the load, the faults and the kills")
    parser.add_argument("--skus", type=int, help=f"SKUs, each on both channels (default {Options.skus})")
    parser.add_argument("--order-rate", type=float, help=f"orders per second (default {Options.order_rate:g})")
    parser.add_argument("--settle", type=float, help=f"seconds allowed to settle (default {Options.settle:g})")
    parser.add_argument("--no-faults", action="store_true", help="simulators without faults (only the kills)")
    parser.add_argument("--invoices", action="store_true",
                        help="a third of the orders a business's: their invoices through the KSeF simulator")
    parser.add_argument("--shipments", action="store_true",
                        help="ship paid orders with the carriers' simulators, and check no booking or label is lost "
                             "or made twice")
    parser.add_argument("--keep-dir", action="store_true", help="keep the work dir (config, logs, outbox)")
    parser.add_argument("--database-url", help="an existing PostgreSQL database (default: a throwaway server)")
    args = parser.parse_args(argv)
    options = QUICK if args.quick else Options()
    for name in ("kills", "interval", "seed", "skus", "order_rate", "settle"):
        if getattr(args, name) is not None:
            options = replace(options, **{name: getattr(args, name)})
    if args.minutes:
        options = replace(options, minutes=args.minutes, interval=args.minutes * 60 / max(options.kills, 1))
    options = replace(options, faults=not args.no_faults, keep_dir=args.keep_dir, shipments=args.shipments,
                      invoices=args.invoices)
    configure_logging(LogSettings(level="error"))
    # SIGTERM ends the run like Ctrl-C: the hub processes and the throwaway PostgreSQL are stopped
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    print(f"machine: {os.cpu_count()} cores", flush=True)
    base = Path(tempfile.mkdtemp(prefix="hub-chaos-"))
    server = None
    try:
        if args.database_url:
            url = args.database_url
        else:
            server = pgtemp.start()
            url = server.create_database("chaos")
        result = run(options, url, base)
    finally:
        if server is not None:
            server.stop()
    report(result)
    if options.keep_dir or not result.ok:
        print(f"work dir kept: {base}", flush=True)
    else:
        shutil.rmtree(base, ignore_errors=True)
    return 0 if result.ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
