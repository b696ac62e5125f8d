"""`hub demo`, part 2: a demo ERP feed flowing into every channel that ships a simulator.

Vendor-free: each channel connector that offers a demo hook (``ConnectorSpec.extra["demo"]``)
starts its simulator on loopback, seeded with the channel's offers. The demo writes the ERP
feed (a few hundred products, some invalid rows, some priced under the floor), runs the
daemon until the channels show what the ERP and the pricing rules say, then changes stock
and prices in the feed and times their arrival in every channel.

A demo hook provides: ``name`` (the connector's name in hub.toml), ``label``, ``pricing``
(the channel's pricing rules for mappings/pricing.toml), ``start(catalogue) -> options``,
``login(name, config_path, engine)``, ``shows(sku) -> (quantity, price) | None``,
``requests() -> int`` and ``stop()``; for orders ``place_order(sku, quantity) -> id``,
``order_status(id)``, ``refunds() -> int``, and with ``returns = True`` ``add_return(id, sku, quantity)``.
"""

from __future__ import annotations

import csv
import io
import os
import random
import sys
import time
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from stdnum import ean as gtin

from demo.invoicing import config_sections as invoicing_sections
from demo.invoicing import invoicing_hooks, run_invoicing
from demo.shipping import carrier_hooks, config_sections, delivery_toml, run_shipping
from hub.app.wiring import build_handlers
from hub.catalog.models import DirtySku, ErpReject
from hub.jobs.daemon import Daemon
from hub.jobs.models import Job
from hub.listings.models import Listing, PriceRefusal
from hub.listings.plan import differences
from hub.platform import db, registry
from hub.platform.config import LogSettings, load
from hub.platform.logs import configure as configure_logging

PRODUCTS = 300
WITHOUT_OFFER = 20  # SKUs the channels do not list (hub listings unmatched shows them)
UNDER_FLOOR = 5
LAST_UNIT = 40
HEADER = ["sku", "name", "ean", "stock", "price_gross", "vat_rate", "cost_net", "warehouse", "weight_kg"]


@dataclass(frozen=True)
class DemoItem:
    """One offer a demo channel starts with."""

    sku: str
    ean: str | None
    quantity: int
    price: Decimal


@dataclass
class FeedRow:
    sku: str
    name: str
    ean: str
    stock: int
    price: Decimal
    vat: str
    cost: Decimal
    weight: Decimal = Decimal("0.500")


def _catalogue(rng: random.Random) -> list[FeedRow]:
    rows = []
    for i in range(1, PRODUCTS + 1):
        price = Decimal(rng.randrange(1999, 49999)) / 100
        code = f"590{i:09d}"
        rows.append(FeedRow(
            sku=f"DEMO-{i:03d}", name=f"Produkt demo {i} - zażółć gęślą jaźń", ean=code + gtin.calc_check_digit(code),
            stock=rng.randrange(0, 25), price=price, vat=rng.choice(["23", "23", "23", "8", "5"]),
            cost=(price / Decimal("1.23") * Decimal("0.55")).quantize(Decimal("0.01")),
            weight=Decimal(100 + i * 137 % 3900) / 1000,  # kg, without drawing from rng (the rows stay as they were)
        ))
    for row in rows[10:10 + UNDER_FLOOR]:  # the cost went up in the ERP, the price did not
        row.cost = (row.price * Decimal("0.95")).quantize(Decimal("0.01"))
    rows[LAST_UNIT].stock = 1  # the last unit: the demo sells it on every channel at once
    rows[LAST_UNIT + 1].stock = max(rows[LAST_UNIT + 1].stock, 5)
    return rows


BAD_ROWS = [
    ["BAD-EAN", "Zły kod EAN", "5901234123450", "3", "19,99", "23", "10,00", "MAG", "1,0"],
    ["BAD-VAT", "Stawka 17%", "", "3", "19,99", "17", "10,00", "MAG", "1,0"],
    ["BAD-STOCK", "Ujemny stan", "", "-2", "19,99", "23", "10,00", "MAG", "1,0"],
    ["BAD-PRICE", "Cena tekstem", "", "3", "abc", "23", "10,00", "MAG", "1,0"],
    ["BAD-ZERO", "Cena zero", "", "3", "0,00", "23", "10,00", "MAG", "1,0"],
    ["BAD-NAME", "", "", "3", "9,99", "23", "5,00", "MAG", "1,0"],
]


def _money(value: Decimal) -> str:
    return f"{value:.2f}".replace(".", ",")


def write_feed(path: Path, rows: list[FeedRow]) -> None:
    """The way a small seller's ERP exports: semicolons, decimal comma, windows-1250. Written to a
    temporary name and renamed, so the hub never reads half a file."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=";", lineterminator="\r\n")
    writer.writerow(HEADER)
    for r in rows:
        writer.writerow([r.sku, r.name, r.ean, r.stock, _money(r.price), r.vat, _money(r.cost), "MAG",
                         f"{r.weight:.3f}".replace(".", ",")])
    writer.writerows(BAD_ROWS)
    tmp = path.with_suffix(".tmp")
    tmp.write_bytes(buffer.getvalue().encode("windows-1250"))
    os.replace(tmp, path)


CONFIG = """\
# Written by `hub demo`. Try: hub --config {path} status | sync --dry-run | prices refused | erp rejects
[database]
url = "sqlite:///{db}"

[worker]
concurrency = 4
batch_size = 5
poll_interval = "100ms"
backoff_initial = "500ms"
backoff_max = "5s"

[scheduler]
leader_poll = "1s"

[schedule.erp]
job = "erp.poll"
every = "1s"
payload = {{ erp = "erp" }}

[schedule.plan]
job = "sync.plan"
every = "10s"

{reconcile}
[log]
level = "info"
format = "json"

[mappings]
dir = "mappings"

[orders]
erp_stock_grace = "1h"

[connectors.erp]
kind = "csv"
path = "{feed}"
encoding = "windows-1250"
# the demo renames complete files into place, so a change is read at once
settle = 0
# accepted orders become sales documents here (JSON and EDI++ files for the ERP to import)
outbox = "{outbox}"

{channels}
{carriers}"""


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'


def _demo_hooks() -> list[tuple[str, Any]]:
    hooks = []
    for kind, spec in sorted(registry.specs().items()):
        factory = spec.extra.get("demo")
        if spec.role == "channel" and callable(factory):
            hooks.append((kind, factory()))
    return hooks


def _settled(engine: Any, channels: list[str]) -> bool:
    with db.transaction(engine) as session:
        if session.execute(select(func.count()).select_from(DirtySku)).scalar_one():
            return False
        open_pushes = session.execute(select(func.count()).select_from(Job).where(
            Job.kind == "sync.push", Job.state.in_(("pending", "running", "failed-retrying")))).scalar_one()
        if open_pushes:
            return False
        for channel in channels:  # every channel has read its offers and bound them
            bound = session.execute(select(func.count()).select_from(Listing).where(
                Listing.channel == channel, Listing.sku.is_not(None),
                Listing.desired_quantity.is_not(None))).scalar_one()
            if not bound:
                return False
        return all(not differences(session, ch).first() for ch in channels)


def _wait(predicate: Any, timeout: float, tick: float = 0.05) -> float | None:
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if predicate():
            return time.monotonic() - start
        time.sleep(tick)
    return None


def run_channels_demo(base: Path, timeout: float = 90.0) -> bool:
    out = sys.stdout.write
    hooks = _demo_hooks()
    if not hooks:
        out("   no channel connector with a simulator is installed; skipped\n")
        return True
    rng = random.Random(7)
    rows = _catalogue(rng)
    feed = base / "erp" / "feed.csv"
    feed.parent.mkdir(parents=True, exist_ok=True)
    write_feed(feed, rows)
    offered = rows[:-WITHOUT_OFFER]
    catalogue = [DemoItem(r.sku, r.ean, 0, (r.price - 1).quantize(Decimal("0.01"))) for r in offered]
    catalogue += [DemoItem("OLD-OFFER-1", None, 2, Decimal("9.99")), DemoItem("OLD-OFFER-2", None, 1, Decimal("5.00"))]

    channel_sections, pricing_sections, reconcile_sections = [], [], []
    started: list[Any] = []
    carriers = carrier_hooks()
    try:
        for kind, hook in hooks:
            options = hook.start(catalogue)
            started.append(hook)
            lines = [f"[connectors.{hook.name}]", f'kind = "{kind}"']
            lines += [f"{k} = {_toml_value(v)}" for k, v in options.items()]
            channel_sections.append("\n".join(lines) + "\n")
            pricing_sections.append(f"[channels.{hook.name}]\n" + "".join(
                f"{k} = {_toml_value(v)}\n" for k, v in hook.pricing.items()))
            reconcile_sections.append(
                f'[schedule.reconcile-{hook.name}]\njob = "sync.reconcile"\nevery = "1m"\n'
                f'payload = {{ channel = "{hook.name}" }}\n'
                f'[schedule.orders-{hook.name}]\njob = "orders.poll"\nevery = "1s"\n'
                f'payload = {{ channel = "{hook.name}" }}\n'
                f'[schedule.returns-{hook.name}]\njob = "returns.poll"\nevery = "1s"\n'
                f'payload = {{ channel = "{hook.name}" }}\n')
            out(f"1. {hook.label}: {len(catalogue)} offers on {options.get('api_url') or options.get('base_url')}\n"
                if len(started) == 1 else
                f"   {hook.label}: {len(catalogue)} offers on {options.get('api_url') or options.get('base_url')}\n")
        carrier_config = config_sections(carriers, started) if carriers else ""
        invoicing = invoicing_hooks()
        carrier_config += "\n" + invoicing_sections(invoicing, started, base)
        (base / "mappings").mkdir(exist_ok=True)
        if carriers:
            allegro = next((hook.name for kind, hook in hooks if kind == "allegro"), None)
            (base / "mappings" / "delivery.toml").write_text(delivery_toml(carriers, allegro), encoding="utf-8")
        (base / "mappings" / "pricing.toml").write_text(
            "# Written by `hub demo`: per-channel rules over the shipped defaults\n[defaults]\n\n"
            + "\n".join(pricing_sections), encoding="utf-8")
        config_path = base / "hub.toml"
        database = base / "hub.db"
        for stale in base.glob("hub.db*"):
            stale.unlink()
        outbox = base / "erp" / "outbox"
        outbox.mkdir(parents=True, exist_ok=True)
        for old in outbox.glob("*"):
            if old.is_file():
                old.unlink()
        config_path.write_text(CONFIG.format(
            path=config_path, db=database, feed=feed, outbox=outbox, reconcile="\n".join(reconcile_sections),
            channels="\n".join(channel_sections), carriers=carrier_config), encoding="utf-8")
        loaded = load(config_path, environ={})
        log_file = (base / "hub.log").open("a", encoding="utf-8")
        configure_logging(LogSettings(level="info", format="json"), stream=log_file)
        engine = db.make_engine(loaded.settings.database)
        db.upgrade(engine)
        for _, hook in hooks:
            hook.login(hook.name, config_path, engine)
        out(f"2. ERP feed {feed.name}: {PRODUCTS} products (semicolons, decimal comma, windows-1250), "
            f"{len(BAD_ROWS)} invalid rows, {UNDER_FLOOR} priced under the floor\n")
        channels = [hook.name for _, hook in hooks]
        daemon = Daemon(loaded, engine, build_handlers(loaded), name="demo-sync")
        clock = time.monotonic()
        daemon.start()
        try:
            took = _wait(lambda: _settled(engine, channels), timeout, tick=0.25)
            if took is None:
                out(f"   channels did not settle within {timeout:.0f}s\n")
                return False
            out(f"3. first sync: every channel shows the ERP's stock and the pricing rules' prices after "
                f"{time.monotonic() - clock:.1f}s\n")
            _report_channels(engine, hooks, rows)
            ok = _change_and_watch(feed, rows, hooks, rng)
            ok = _orders(engine, hooks, rows, outbox, loaded) and ok
            if carriers:
                sellers = [hook for _, hook in hooks if hasattr(hook, "place_order")]
                ok = run_shipping(engine, loaded, config_path, carriers, sellers,
                                  [r.sku for r in rows[50:53]]) and ok
            sellers = [hook for _, hook in hooks if hasattr(hook, "place_order")]
            ok = run_invoicing(engine, loaded, base, invoicing, sellers, [r.sku for r in rows[54:56]]) and ok
        finally:
            daemon.stop(timeout=10)
        _summary(engine, hooks, config_path)
        engine.dispose()
        return ok
    finally:
        for hook in started:
            hook.stop()


def _report_channels(engine: Any, hooks: list[tuple[str, Any]], rows: list[FeedRow]) -> None:
    out = sys.stdout.write
    with db.transaction(engine) as session:
        for _, hook in hooks:
            bound = session.execute(select(func.count()).select_from(Listing).where(
                Listing.channel == hook.name, Listing.sku.is_not(None))).scalar_one()
            unmatched = session.execute(select(func.count()).select_from(Listing).where(
                Listing.channel == hook.name, Listing.sku.is_(None))).scalar_one()
            pushes = session.execute(select(func.count()).select_from(Job).where(
                Job.kind == "sync.push", Job.connector == hook.name)).scalar_one()
            out(f"   {hook.name}: {bound} offers bound to SKUs, {unmatched} unmatched, {pushes} push jobs, "
                f"{hook.requests()} HTTP requests so far\n")
    sample = rows[0]
    shown = ", ".join(f"{hook.name} {hook.shows(sample.sku)[0]} pcs at {hook.shows(sample.sku)[1]}"
                      for _, hook in hooks)
    sys.stdout.write(f"   e.g. {sample.sku}: ERP {sample.stock} pcs at {sample.price} -> {shown}\n")


def _change_and_watch(feed: Path, rows: list[FeedRow], hooks: list[tuple[str, Any]], rng: random.Random) -> bool:
    out = sys.stdout.write
    stock_changes = [r for r in rows[20:25]]
    price_changes = [r for r in rows[30:33]]
    for r in stock_changes:
        r.stock = r.stock + rng.randrange(5, 20)
    for r in price_changes:
        r.price = (r.price * Decimal("1.10")).quantize(Decimal("0.01"))
    expected: dict[tuple[str, str], Any] = {}
    for _, hook in hooks:
        for r in stock_changes:
            expected[(hook.name, r.sku)] = ("quantity", r.stock)
        for r in price_changes:
            expected[(hook.name, r.sku)] = ("price", hook.shows(r.sku)[1])  # must move away from this
    write_feed(feed, rows)
    start = time.monotonic()
    arrived: dict[tuple[str, str], float] = {}
    hook_by_name = {hook.name: hook for _, hook in hooks}
    while time.monotonic() - start < 30 and len(arrived) < len(expected):
        for key, (what, value) in expected.items():
            if key in arrived:
                continue
            quantity, price = hook_by_name[key[0]].shows(key[1]) or (None, None)
            if (what == "quantity" and quantity == value) or (what == "price" and price != value):
                arrived[key] = time.monotonic() - start
        time.sleep(0.02)
    out(f"4. changed the feed: stock of {len(stock_changes)} SKUs, price of {len(price_changes)} SKUs (+10%)\n")
    for (channel, sku), (what, _) in sorted(expected.items()):
        shown = hook_by_name[channel].shows(sku)
        took = arrived.get((channel, sku))
        arrival = f"arrived after {took:.2f}s" if took is not None else "NOT arrived"
        out(f"   {channel:14} {sku}  {what:8} now {shown[0] if what == 'quantity' else shown[1]!s:>8}  {arrival}\n")
    if arrived:
        times = sorted(arrived.values())
        out(f"   feed-to-channel: median {times[len(times) // 2]:.2f}s, slowest {times[-1]:.2f}s\n")
    return len(arrived) == len(expected)


def _order_of(engine: Any, channel: str, external_id: str) -> Any:
    from hub.orders.models import Order

    with db.transaction(engine) as session:
        return session.execute(select(Order).where(Order.channel == channel, Order.external_id == external_id)
                               ).scalar_one_or_none()


def _orders(engine: Any, hooks: list[tuple[str, Any]], rows: list[FeedRow], outbox: Path, loaded: Any) -> bool:
    """The same last unit sold on every channel at once; reservations, the oversold flag, the status
    going back to the channel, the ERP outbox, and a return refunded."""
    from hub.app.wiring import order_rules
    from hub.orders.models import Reservation
    from hub.orders.returns import accept_return

    out = sys.stdout.write
    sellers = [hook for _, hook in hooks if hasattr(hook, "place_order")]
    if not sellers:
        return True
    last = rows[LAST_UNIT]
    placed = [(hook, hook.place_order(last.sku, 1)) for hook in sellers]  # the same moment on every channel
    out(f"5. orders: the last unit of {last.sku} sold on {', '.join(h.name for h, _ in placed)} at once\n")
    if _wait(lambda: all(_order_of(engine, h.name, oid) for h, oid in placed), 30) is None:
        out("   the orders did not arrive\n")
        return False
    ok = True
    for hook, oid in placed:
        _wait(lambda h=hook, o=oid: (_order_of(engine, h.name, o).oversold
                                     or _order_of(engine, h.name, o).status == "processing"), 15)
        order = _order_of(engine, hook.name, oid)
        flag = f"OVERSOLD ({order.problem})" if order.oversold else f"reserved, {order.status}"
        out(f"   {hook.name:14} order {oid}: {flag}\n")
    with db.transaction(engine) as session:
        held = session.execute(select(func.coalesce(func.sum(Reservation.quantity), 0)).where(
            Reservation.sku == last.sku, Reservation.state == "open")).scalar_one()
    flagged = sum(1 for h, o in placed if _order_of(engine, h.name, o).oversold)
    out(f"   open reservations of {last.sku}: {held} (stock 1); oversold orders: {flagged}\n")
    ok = ok and held == 1 and flagged == len(placed) - 1
    took = _wait(lambda: all((h.shows(last.sku) or (0, None))[0] == 0 for _, h in hooks), 15)
    out(f"   {last.sku} now shows 0 on every channel" + (f" ({took:.2f}s)\n" if took is not None else " - NOT\n"))
    good = [(h, o) for h, o in placed if not _order_of(engine, h.name, o).oversold]
    for hook, oid in good:
        _wait(lambda h=hook, o=oid: h.order_status(o).lower() == "processing", 15)
        out(f"   {hook.name:14} order {oid}: the channel's status is {hook.order_status(oid)}\n")
    _wait(lambda: any(outbox.glob("*.epp")), 15)
    files = sorted(p.name for p in outbox.iterdir() if p.is_file())
    out(f"   ERP outbox {outbox}: {', '.join(files) or 'empty'}\n")
    ok = ok and bool(files)

    returner = next((h for h in sellers if getattr(h, "returns", False)), None)
    if returner is None:
        return ok
    other = rows[LAST_UNIT + 1]
    oid = returner.place_order(other.sku, 2)
    _wait(lambda: _order_of(engine, returner.name, oid) is not None
          and _order_of(engine, returner.name, oid).status == "processing", 20)
    _wait(lambda: returner.order_status(oid).upper() == "PROCESSING", 15)
    out(f"   {returner.name:14} order {oid}: paid, booked in the ERP, and its status on the channel is now "
        f"{returner.order_status(oid)} (pushed by the hub)\n")
    return_id = returner.add_return(oid, other.sku, 1)
    found = _wait(lambda: _return_row(engine, returner.name, return_id) is not None, 20)
    if found is None:
        out("   the return did not arrive\n")
        return False
    rma = _return_row(engine, returner.name, return_id)
    out(f"6. return {return_id[:8]}... of 1 x {other.sku} on {returner.name}: {rma.status}; accepting it\n")
    with db.transaction(engine) as session:
        accept_return(session, order_rules(loaded), rma.id)
    refunded = _wait(lambda: _return_row(engine, returner.name, return_id).status == "refunded"
                     and returner.refunds() >= 1, 20)
    rma = _return_row(engine, returner.name, return_id)
    out(f"   refunded {rma.refund_amount} PLN through the channel (refund {rma.refund_ref}); "
        f"restock document {rma.restock_ref} in the ERP outbox\n")
    return ok and refunded is not None


def _return_row(engine: Any, channel: str, external_id: str) -> Any:
    from hub.orders.models import ReturnRow

    with db.transaction(engine) as session:
        return session.execute(select(ReturnRow).where(ReturnRow.channel == channel,
                                                       ReturnRow.external_id == external_id)).scalar_one_or_none()


def _summary(engine: Any, hooks: list[tuple[str, Any]], config_path: Path) -> None:
    from hub.listings.desired import price_inputs
    from hub.listings.pricing import decide, format_explanation
    from hub.listings.rules import load_rules

    out = sys.stdout.write
    with db.transaction(engine) as session:
        refused = session.execute(select(PriceRefusal).order_by(PriceRefusal.channel, PriceRefusal.sku)).scalars().all()
        rejects = session.execute(select(ErpReject).order_by(ErpReject.record_key)).scalars().all()
        out(f"7. prices refused under the floor ({len(refused)}; the offers keep their last price):\n")
        for r in refused:
            out(f"   {r.channel:14} {r.sku}  wanted {r.price}  floor {r.floor}\n")
        out(f"   quarantined ERP rows ({len(rejects)}; the rest synced):\n")
        for r in rejects:
            out(f"   {r.source:22} {r.field:12} {r.value!r:18} {r.reason}\n")
        if refused:
            from hub.catalog.models import Product

            first = refused[0]
            product = session.get(Product, first.sku)
            loaded = load(config_path, environ={})
            rule = load_rules(loaded).price_rule(first.channel)
            out(f"\n   hub prices explain {first.sku} --channel {first.channel}:\n")
            for line in format_explanation(decide(rule, price_inputs(product, None, first.channel))).splitlines():
                out(f"     {line}\n")
    total = ", ".join(f"{hook.name} {hook.requests()}" for _, hook in hooks)
    out(f"\n   HTTP requests the simulators received in all: {total}\n")
    out(f"   inspect: hub --config {config_path} status | stock show DEMO-021 | listings unmatched\n")
