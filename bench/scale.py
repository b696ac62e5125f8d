"""The whole catalogue at scale (issue 12): ERP snapshots read by the hub against raw baselines in the same run.

Steps (each measured in a child process of its own, so its peak RSS is its own):
(a) first read: a CSV feed of N SKUs (one row each: name, stock, gross price, VAT rate, a valid EAN-13,
    net cost, currency, weight) read by the hub into an empty catalogue (`hub.catalog.poll.poll_erp`, a
    full snapshot through the csv connector, as `hub sync --full` reads it), against the raw baseline:
    the csv module, the same validation (EAN with python-stdnum, Decimal prices, integer stock) and a bulk
    insert of the rows into a plain table (sqlite3 / psycopg executemany) in one transaction.
    Goal: <= 3x the baseline.
(b) 1% changed: the same feed with the stock or the price of every hundredth SKU changed, read by the hub
    into the catalogue of (a), against parsing and validating the file alone. Goal: <= 2x the baseline.
(c) a pricing-rule change: every SKU listed on two channels (their desired state computed under the shipped
    defaults first, untimed), then a 10 % markup that moves every price, applied as the daemon does
    (`apply_rules_change` and `recompute` in one transaction), against one raw SQL UPDATE computing the
    same prices (price x 1.10 rounded to the grosz) over a copy of the listings with their indexes.
    Goal: <= 3x the baseline.
Peak memory of every step (its process's peak RSS): goal <= 1 GiB.

(d) reconciliation: N offers (signed with the catalogue's SKUs) on the Allegro simulator, served on
    loopback by this process; the hub reads every page and reconciles them as a reconcile job does
    (spooled to disk, then `reconcile` in one transaction): the first time, when every offer is new and
    bound, and again with nothing changed. Against the raw baseline: the same pages fetched with httpx,
    decoded with json and inserted into a plain table with executemany. Goal: memory (no ratio is set).

Run: .venv/bin/python bench/scale.py [--skus 1000000] [--backend sqlite|postgresql|both] [--only a,b,c]
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
# bench/queue.py would shadow the standard library's queue module: run from the repo root instead
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != ROOT / "bench"]
sys.path.insert(0, str(ROOT))

GOALS = {"a": 3.0, "b": 2.0, "c": 3.0}
SIM_CLIENT = ("bench", "bench-secret")
CHANNELS = ("marketplace", "shop")
MEMORY_GOAL_MIB = 1024.0
HEADER = ["sku", "name", "stock", "price_gross", "vat_rate", "ean", "cost_net", "currency", "weight_kg"]
RATES = ("23", "8", "5", "0")


def ean13(n: int) -> str:
    body = f"590{n:09d}"
    check = (10 - sum(int(d) * (3 if i % 2 else 1) for i, d in enumerate(body)) % 10) % 10
    return body + str(check)


def write_feed(path: Path, skus: int, changed_every: int = 0) -> None:
    """N rows; with ``changed_every``, every such SKU's stock (odd ones) or price (even ones) moved."""
    with path.open("w", newline="", encoding="utf-8") as handle:
        out = csv.writer(handle)
        out.writerow(HEADER)
        for n in range(skus):
            stock, price = n % 50, Decimal(1000 + n % 9000) / 100
            if changed_every and n % changed_every == 0:
                if (n // changed_every) % 2:
                    stock += 7
                else:
                    price += Decimal("1.00")
            out.writerow([f"SKU-{n:07d}", f"Produkt {n}", stock, f"{price:.2f}", RATES[n % 4], ean13(n),
                          f"{price * Decimal('0.6'):.2f}", "PLN", f"{0.1 + n % 30 / 10:.2f}"])
    old = time.time() - 3600  # settled long ago: the connector reads it at once
    os.utime(path, (old, old))


def peak_rss_mib() -> float:
    """This process's peak RSS: VmHWM, which starts again at exec (ru_maxrss may carry the parent's)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# --- the children ------------------------------------------------------------------------------------

def _validated(path: Path) -> Any:
    """The raw baseline's reading: the csv module and the same checks as the feed's rules."""
    from stdnum import ean

    with path.open(newline="", encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            if not ean.is_valid(row["ean"]):
                raise ValueError(row["ean"])
            yield (row["sku"], row["name"], int(row["stock"]), Decimal(row["price_gross"]), row["vat_rate"],
                   row["ean"], Decimal(row["cost_net"]), row["currency"], Decimal(row["weight_kg"]))


def child_raw_insert(url: str, feed: Path) -> dict[str, Any]:
    start = time.perf_counter()
    create = ("CREATE TABLE raw_products (sku varchar(100) primary key, name text, stock integer, price numeric(14,2),"
              " vat varchar(6), ean varchar(14), cost numeric(14,2), currency varchar(3), weight numeric(10,3))")
    insert = "INSERT INTO raw_products VALUES ({})".format(", ".join(["{p}"] * 9))
    rows = _validated(feed)
    if url.startswith("sqlite"):
        import sqlite3

        conn = sqlite3.connect(url.removeprefix("sqlite:///"))
        conn.execute(create)
        conn.executemany(insert.format(p="?"), ((*r[:3], str(r[3]), r[4], r[5], str(r[6]), r[7], str(r[8]))
                                                for r in rows))
        conn.commit()
        conn.close()
    else:
        import psycopg

        with psycopg.connect(url.replace("postgresql+psycopg", "postgresql")) as conn, conn.cursor() as cur:
            cur.execute(create)
            batch: list[Any] = []
            for row in rows:
                batch.append(row)
                if len(batch) == 5000:
                    cur.executemany(insert.format(p="%s"), batch)
                    batch = []
            if batch:
                cur.executemany(insert.format(p="%s"), batch)
    return {"seconds": time.perf_counter() - start, "peak_rss_mib": peak_rss_mib()}


def child_raw_parse(feed: Path) -> dict[str, Any]:
    start = time.perf_counter()
    count = sum(1 for _ in _validated(feed))
    return {"seconds": time.perf_counter() - start, "peak_rss_mib": peak_rss_mib(), "rows": count}


def _connector(config: Path, name: str) -> tuple[Any, Any]:
    """(engine, connector) of the hub configured by ``config``, quietly (a child's setup, untimed)."""
    import logging

    from hub.platform import db
    from hub.platform.config import load
    from hub.platform.connectors import Connectors

    logging.disable(logging.WARNING)
    loaded = load(config, environ={})
    engine = db.make_engine(loaded.settings.database)
    return engine, Connectors(loaded, engine).get(name)


def child_hub_read(config: Path) -> dict[str, Any]:
    from hub.catalog.poll import poll_erp

    engine, source = _connector(config, "erp")
    start = time.perf_counter()
    result = poll_erp(engine, source, "erp", full=True)
    seconds = time.perf_counter() - start
    return {"seconds": seconds, "peak_rss_mib": peak_rss_mib(), "products": result.products,
            "changed": result.changed, "rejected": result.rejected}


def child_hub_rules(config: Path, markup: str) -> dict[str, Any]:
    """The listings' desired state recomputed after the pricing rule changed to ``markup`` %."""
    import logging

    from hub.listings.desired import apply_rules_change, recompute
    from hub.listings.pricing import PriceRule, PricingFile
    from hub.listings.rules import Rules
    from hub.listings.stock_rules import StockFile
    from hub.platform import db
    from hub.platform.config import load

    logging.disable(logging.WARNING)
    loaded = load(config, environ={})
    engine = db.make_engine(loaded.settings.database)
    rules = Rules(pricing=PricingFile(defaults=PriceRule(markup_pct=Decimal(markup))), stock=StockFile())
    start = time.perf_counter()
    with db.transaction(engine) as session:
        apply_rules_change(session, rules)
        result = recompute(session, rules)
    return {"seconds": time.perf_counter() - start, "peak_rss_mib": peak_rss_mib(),
            "changed": result.listings_changed, "refused": result.refused}


def child_list_everything(url: str) -> dict[str, Any]:
    """Every SKU listed on both channels, and a copy of the listings for the raw baseline (untimed)."""
    from sqlalchemy import literal, select, text

    from hub.catalog import Product
    from hub.listings.models import Listing
    from hub.platform import db

    engine = db.make_engine(url)
    with db.transaction(engine) as session:
        for channel in CHANNELS:
            session.execute(Listing.__table__.insert().from_select(
                ["channel", "external_id", "sku", "currency", "active", "error_retryable", "updated_at"],
                select(literal(channel), literal(f"{channel}-") + Product.sku, Product.sku, literal("PLN"),
                       literal(True), literal(False), Product.updated_at)))
        # the copy has the listings' columns and indexes: an UPDATE pays for the indexes it must keep
        # (PostgreSQL writes a new row version into each), and the baseline pays the same
        if session.get_bind().dialect.name == "postgresql":
            session.execute(text("CREATE TABLE raw_listings (LIKE listings INCLUDING ALL)"))
            session.execute(text("INSERT INTO raw_listings SELECT * FROM listings"))
            session.execute(text("ANALYZE raw_listings"))
        else:
            session.execute(text("CREATE TABLE raw_listings AS SELECT * FROM listings"))
            for (sql,) in session.execute(text("SELECT sql FROM sqlite_master WHERE type = 'index' "
                                               "AND tbl_name = 'listings' AND sql IS NOT NULL")):
                session.execute(text(sql.replace(" ON listings", " ON raw_listings", 1)
                                     .replace("INDEX ix_", "INDEX raw_ix_", 1).replace("INDEX uq_", "INDEX raw_uq_", 1)
                                     .replace("listings.", "raw_listings.")))
    return {"seconds": 0.0, "peak_rss_mib": peak_rss_mib()}


def child_raw_rules(url: str) -> dict[str, Any]:
    """One plain UPDATE computing the new prices over the copy of the listings (their indexes too)."""
    from sqlalchemy import text

    from hub.platform import db

    engine = db.make_engine(url)
    start = time.perf_counter()
    with engine.begin() as conn:
        conn.execute(text("UPDATE raw_listings SET desired_price = ROUND(p.price_gross * 1.10, 2) "
                          "FROM products p WHERE p.sku = raw_listings.sku"))
    return {"seconds": time.perf_counter() - start, "peak_rss_mib": peak_rss_mib()}


def child_hub_reconcile(config: Path) -> dict[str, Any]:
    """Every offer of the simulator read and reconciled, as a reconcile job does (without the plan)."""
    from hub.kernel.clock import utcnow
    from hub.listings.reconcile import reconcile
    from hub.platform import db
    from hub.platform.spool import Spool

    engine, port = _connector(config, "allegro")
    start = time.perf_counter()
    read_started = utcnow()
    with Spool.spool(port.listings()) as offers, db.transaction(engine) as session:
        result = reconcile(session, "allegro", offers, read_started)
    return {"seconds": time.perf_counter() - start, "peak_rss_mib": peak_rss_mib(), "seen": result.seen,
            "bound": result.new_bindings}


def child_raw_reconcile(url: str, api: str, token: str) -> dict[str, Any]:
    """The same pages with httpx and json, into a plain table with executemany."""
    import httpx
    from sqlalchemy import text

    from hub.platform import db

    engine = db.make_engine(url)
    start = time.perf_counter()
    with httpx.Client(base_url=api, headers={"Authorization": f"Bearer {token}",
                                             "Accept": "application/vnd.allegro.public.v1+json"}) as client, \
            engine.begin() as conn:
        conn.execute(text("CREATE TABLE raw_offers (id varchar(100) primary key, sku varchar(100), "
                          "quantity integer, price numeric(14,2))"))
        offset = 0
        while True:
            page = client.get("/sale/offers", params={"limit": 1000, "offset": offset}).json()["offers"]
            if page:
                conn.execute(text("INSERT INTO raw_offers VALUES (:id, :sku, :quantity, :price)"), [
                    {"id": o["id"], "sku": (o.get("external") or {}).get("id"), "quantity": o["stock"]["available"],
                     "price": str(o["sellingMode"]["price"]["amount"])} for o in page])
            offset += len(page)
            if len(page) < 1000:
                break
    return {"seconds": time.perf_counter() - start, "peak_rss_mib": peak_rss_mib(), "offers": offset}


def _simulator(skus: int) -> tuple[Any, str]:
    from connectors.allegro.simulator import AllegroSimulator

    sim = AllegroSimulator(clients=dict([SIM_CLIENT]), command_delay=0.0)
    for n in range(skus):
        sim.add_offer(str(7_000_000_000 + n), external_id=f"SKU-{n:07d}", quantity=n % 50,
                      price=f"{Decimal(1000 + n % 9000) / 100:.2f}")
    return sim, sim.serve()


def _child(*args: str) -> dict[str, Any]:
    done = subprocess.run([sys.executable, __file__, "--child", *args], capture_output=True, text=True,
                          cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})
    if done.returncode != 0:
        raise SystemExit(f"child {args[0]} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


# --- the run ------------------------------------------------------------------------------------------

def write_config(path: Path, url: str, feed: Path) -> Path:
    path.write_text(f"""
[database]
url = "{url}"
[log]
level = "warning"
[connectors.erp]
kind = "csv"
path = "{feed}"
settle = 0
""", encoding="utf-8")
    return path


def run_backend(backend: str, base: Path, full: Path, changed: Path, only: set[str], skus: int) -> list[str]:
    from hub.platform import db
    from tests.support import pgtemp

    server = pgtemp.start() if backend == "postgresql" else None
    lines: list[str] = []
    try:
        def database(name: str) -> str:
            return server.create_database(name) if server is not None else f"sqlite:///{base / (name + '.db')}"

        hub_url, raw_url = database(f"scale_hub_{backend}"), database(f"scale_raw_{backend}")
        db.upgrade(db.make_engine(hub_url))
        config = write_config(base / f"hub-{backend}.toml", hub_url, full)
        if only & {"a", "b", "c"}:
            raw = _child("raw-insert", raw_url, str(full))
            hub = _child("hub-read", str(config))
            ratio = hub["seconds"] / raw["seconds"]
            lines.append(f"[{backend}] (a) first read of {skus:,} SKUs: hub {hub['seconds']:.1f} s, peak "
                         f"{hub['peak_rss_mib']:.0f} MiB ({hub['products']:,} products, {hub['rejected']} "
                         f"rejected); raw csv + validation + bulk insert {raw['seconds']:.1f} s, peak "
                         f"{raw['peak_rss_mib']:.0f} MiB -> {ratio:.1f}x (goal <= {GOALS['a']:.0f}x): "
                         f"{'met' if ratio <= GOALS['a'] else 'MISSED'}; memory "
                         f"{'met' if hub['peak_rss_mib'] <= MEMORY_GOAL_MIB else 'MISSED'}")
        if "b" in only:
            write_config(config, hub_url, changed)
            raw = _child("raw-parse", str(changed))
            hub = _child("hub-read", str(config))
            ratio = hub["seconds"] / raw["seconds"]
            lines.append(f"[{backend}] (b) 1% changed: hub {hub['seconds']:.1f} s, peak {hub['peak_rss_mib']:.0f} MiB "
                         f"({hub['changed']:,} SKUs changed); raw parse + validation {raw['seconds']:.1f} s -> "
                         f"{ratio:.1f}x (goal <= {GOALS['b']:.0f}x): {'met' if ratio <= GOALS['b'] else 'MISSED'}; "
                         f"memory {'met' if hub['peak_rss_mib'] <= MEMORY_GOAL_MIB else 'MISSED'}")
        if "c" in only:
            listings = len(CHANNELS) * skus
            _child("list-everything", hub_url)
            _child("hub-rules", str(config), "0")  # the desired state under the defaults, untimed
            raw = _child("raw-rules", hub_url)
            hub = _child("hub-rules", str(config), "10")
            ratio = hub["seconds"] / raw["seconds"]
            lines.append(f"[{backend}] (c) a pricing-rule change over {listings:,} listings: hub "
                         f"{hub['seconds']:.1f} s, peak {hub['peak_rss_mib']:.0f} MiB ({hub['changed']:,} changed, "
                         f"{hub['refused']} refused); "
                         f"raw UPDATE {raw['seconds']:.1f} s -> {ratio:.1f}x (goal <= {GOALS['c']:.0f}x): "
                         f"{'met' if ratio <= GOALS['c'] else 'MISSED'}; memory "
                         f"{'met' if hub['peak_rss_mib'] <= MEMORY_GOAL_MIB else 'MISSED'}")
        if "d" in only:
            lines += _reconcile_step(backend, base, hub_url, raw_url if "a" not in only else database(
                f"scale_rawd_{backend}"), full, skus, config, only)
    finally:
        if server is not None:
            server.stop()
    return lines


def _reconcile_step(backend: str, base: Path, hub_url: str, raw_url: str, full: Path, skus: int, config: Path,
                    only: set[str]) -> list[str]:
    from datetime import timedelta

    from hub.kernel.clock import utcnow
    from hub.platform import db
    from hub.platform.credentials import TokenSet, TokenStore

    if not only & {"a", "b", "c"}:
        _child("hub-read", str(config))  # the catalogue the offers bind to, untimed
    sim, api = _simulator(skus)
    pair = sim.issue_tokens(SIM_CLIENT[0])
    TokenStore(db.make_engine(hub_url)).save("allegro", TokenSet(
        pair["access_token"], pair["refresh_token"], utcnow() + timedelta(seconds=pair["expires_in"])))
    reconcile_config = base / f"hub-{backend}-allegro.toml"
    reconcile_config.write_text(write_config(config, hub_url, full).read_text() + f"""
[connectors.allegro]
kind = "allegro"
api_url = "{api}"
auth_url = "{api}"
client_id = "{SIM_CLIENT[0]}"
client_secret = "{SIM_CLIENT[1]}"
""", encoding="utf-8")
    raw = _child("raw-reconcile", raw_url, api, pair["access_token"])
    first = _child("hub-reconcile", str(reconcile_config))
    again = _child("hub-reconcile", str(reconcile_config))
    memory = max(first["peak_rss_mib"], again["peak_rss_mib"])
    return [f"[{backend}] (d) reconciliation of {first['seen']:,} offers from the Allegro simulator: first "
            f"{first['seconds']:.1f} s ({first['bound']:,} bound), again unchanged {again['seconds']:.1f} s, peak "
            f"{memory:.0f} MiB; raw pages + json + executemany {raw['seconds']:.1f} s, peak "
            f"{raw['peak_rss_mib']:.0f} MiB -> {first['seconds'] / raw['seconds']:.1f}x / "
            f"{again['seconds'] / raw['seconds']:.1f}x; memory {'met' if memory <= MEMORY_GOAL_MIB else 'MISSED'}"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--skus", type=int, default=1_000_000)
    parser.add_argument("--backend", choices=("sqlite", "postgresql", "both"), default="both")
    parser.add_argument("--only", default="a,b,c,d", help="steps: a,b,c,d")
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        step, *rest = args.child
        result = {"raw-insert": lambda: child_raw_insert(rest[0], Path(rest[1])),
                  "raw-parse": lambda: child_raw_parse(Path(rest[0])),
                  "hub-read": lambda: child_hub_read(Path(rest[0])),
                  "hub-rules": lambda: child_hub_rules(Path(rest[0]), rest[1]),
                  "list-everything": lambda: child_list_everything(rest[0]),
                  "raw-rules": lambda: child_raw_rules(rest[0]),
                  "hub-reconcile": lambda: child_hub_reconcile(Path(rest[0])),
                  "raw-reconcile": lambda: child_raw_reconcile(*rest)}[step]()
        print(json.dumps(result))
        return 0
    only = set(args.only.split(","))
    base = Path(tempfile.mkdtemp(prefix="hub-scale-"))
    full, changed = base / "feed.csv", base / "feed-changed" / "feed.csv"
    changed.parent.mkdir()
    start = time.perf_counter()
    write_feed(full, args.skus)
    write_feed(changed, args.skus, changed_every=100)
    print(f"machine: {len(os.sched_getaffinity(0))} cores; feeds of {args.skus:,} SKUs written in "
          f"{time.perf_counter() - start:.1f} s ({full.stat().st_size / 2**20:.0f} MiB each) in {base}", flush=True)
    backends = ("sqlite", "postgresql") if args.backend == "both" else (args.backend,)
    for backend in backends:
        for line in run_backend(backend, base, full, changed, only, args.skus):
            print(line, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
