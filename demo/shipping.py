"""`hub demo`, part 3: the orders of part 2 (and a few more) shipped with the carriers' simulators.

Each carrier connector that offers a demo hook (``ConnectorSpec.extra["demo"]`` of a carrier) starts its
simulator on loopback. Paid orders are booked by the shipped automation rule through
mappings/delivery.toml (Allegro's "Kurier DPD" through one carrier, the shop's orders through another);
an operator books one more with a third carrier from the command line. Then the day's labels go into one
PDF, the tracking numbers are on the channels, the pickups are booked, and the parcels are followed
until delivered.

A carrier hook provides ``name``, ``label``, ``services`` ({"courier": code, "locker": code or ""}),
``tracks``, ``note``, ``start() -> options``, ``deliver(tracking_number)``, ``bookings()``, ``pickups()``,
``requests()`` and ``stop()``.
"""

from __future__ import annotations

import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from hub.platform import db, registry

SENDER = """
[shipping]
label_dir = "labels"
default_sender = "magazyn"
tracking_every = "2s"
tracking_quiet_every = "2s"

[shipping.senders.magazyn]
name = "Sklep Demo"
company = "Demo Sp. z o.o."
street = "Magazynowa 5"
city = "Poznań"
postal_code = "60-001"
phone = "600700800"
email = "magazyn@example.pl"
bank_account = "PL61109010140000071219812874"

[schedule.tracking]
job = "shipping.track"
every = "2s"
"""


def carrier_hooks() -> list[tuple[str, Any]]:
    hooks = []
    for kind, spec in sorted(registry.specs().items()):
        factory = spec.extra.get("demo")
        if spec.role == "carrier" and callable(factory):
            hooks.append((kind, factory()))
    return hooks


def config_sections(hooks: list[tuple[str, Any]], started: list[Any]) -> str:
    """The carriers' connector sections and [shipping], for the demo's hub.toml."""
    from demo.channels import _toml_value

    sections = [SENDER]
    for kind, hook in hooks:
        options = hook.start()
        started.append(hook)
        lines = [f"[connectors.{hook.name}]", f'kind = "{kind}"']
        lines += [f"{k} = {_toml_value(v)}" for k, v in options.items()]
        sections.append("\n".join(lines) + "\n")
    return "\n".join(sections)


def delivery_toml(hooks: list[tuple[str, Any]], allegro: str | None) -> str:
    """Allegro's courier orders through the first carrier, everything else through the second; the third
    is left for the operator's own booking."""
    names = [hook for _, hook in hooks]
    default = names[1] if len(names) > 1 else names[0]
    text = ("# Written by `hub demo`\n[templates.box]\npackaging_kg = \"0.30\"\nlength_cm = 30\nwidth_cm = 20\n"
            "height_cm = 15\n\n"
            f"[default]\ncarrier = \"{default.name}\"\nservice = \"{default.services['courier']}\"\n"
            "template = \"box\"\n")
    if allegro is not None and len(names) > 1:
        text += (f"\n[[methods]]\nchannel = \"{allegro}\"\nmethod = \"Allegro Kurier DPD\"\n"
                 f"carrier = \"{names[0].name}\"\nservice = \"{names[0].services['courier']}\"\ntemplate = \"box\"\n")
    return text


def _wait(predicate: Any, timeout: float, tick: float = 0.1) -> float | None:
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if predicate():
            return time.monotonic() - start
        time.sleep(tick)
    return None


def run_shipping(engine: Any, loaded: Any, config_path: Path, hooks: list[tuple[str, Any]],
                 sellers: list[Any], skus: list[str]) -> bool:
    from hub.cli.main import main as hub_cli
    from hub.jobs.queue import enqueue
    from hub.orders.models import Order
    from hub.shipping.models import Pickup, Shipment, ShipmentParcel

    out = sys.stdout.write
    out("\n== Part 3: shipping\n")
    for _, hook in hooks:
        out(f"   {hook.label}: {hook.name}" + (f" ({hook.note})" if hook.note else "") + "\n")
    placed = [(seller, seller.place_order(sku, 1)) for seller in sellers for sku in skus]
    out(f"1. {len(placed)} more paid orders on {', '.join(sorted({s.name for s, _ in placed}))}\n")

    def orders() -> list[Any]:
        with db.transaction(engine) as session:
            return list(session.execute(select(Order).where(Order.oversold.is_(False),
                                                            Order.problem.is_(None))).scalars())

    def shipments() -> list[Any]:
        with db.transaction(engine) as session:
            return list(session.execute(select(Shipment).order_by(Shipment.id)).scalars())

    # the operator books one order with the third carrier by hand (the delivery mapping routes none to it)
    third = hooks[2][1] if len(hooks) > 2 else None
    if _wait(lambda: len(orders()) >= len(placed) and all(
            o.status in ("processing", "shipped") for o in orders()), 60) is None:
        out("   the orders did not reach processing\n")
        return False
    if third is not None:
        target = orders()[-1]
        hub_cli(["--config", str(config_path), "shipments", "create", str(target.id), "--carrier", third.name,
                 "--service", third.services["courier"]])
    ready = _wait(lambda: (lambda s: bool(s) and all(x.state in ("label_ready", "delivered", "in_transit",
                                                                  "handed_over", "out_for_delivery")
                                                      and x.tracking_pushed_at for x in s))(shipments()), 90)
    all_shipments = shipments()
    by_carrier = Counter(s.carrier for s in all_shipments)
    out(f"2. {len(all_shipments)} shipments booked: " + ", ".join(f"{c} {n}" for c, n in sorted(by_carrier.items()))
        + ("" if ready is not None else "  (NOT all labelled and pushed in time)") + "\n")
    with db.transaction(engine) as session:
        for s in all_shipments[:6]:
            number = session.execute(select(ShipmentParcel.tracking_number)
                                     .where(ShipmentParcel.shipment_id == s.id)).scalar()
            order = session.get(Order, s.order_id)
            out(f"   {s.reference:12} {order.channel:13} -> {s.carrier:14} {s.service:26} {number or '-':26} "
                f"{s.state}\n")
    booked_twice = [h.name for _, h in hooks if h.bookings() > by_carrier.get(h.name, 0)]
    out(f"   carriers hold {sum(h.bookings() for _, h in hooks)} bookings for {len(all_shipments)} shipments"
        + (f" (MORE at {', '.join(booked_twice)})" if booked_twice else ": each booked once") + "\n")

    labels = config_path.parent / "labels-today.pdf"
    out("3. the packer's labels: hub labels print --out " + str(labels) + "\n   ")
    sys.stdout.flush()
    printed = hub_cli(["--config", str(config_path), "labels", "print", "--out", str(labels)]) == 0
    if printed:
        from pypdf import PdfReader

        out(f"   {labels}: {len(PdfReader(str(labels)).pages)} pages\n")

    shipped = [o for o in orders() if o.status in ("shipped", "delivered")]
    out(f"4. tracking numbers on the channels: {len(shipped)} orders shipped\n")

    with db.transaction(engine) as session:
        enqueue(session, "shipping.pickups", {"force": True}, key=f"demo-pickups:{time.time()}")
    _wait(lambda: _count(engine, select(func.count()).select_from(Pickup).where(
        Pickup.state.in_(("booked", "failed")))) >= len(by_carrier), 30)
    with db.transaction(engine) as session:
        pickups = list(session.execute(select(Pickup).order_by(Pickup.id)).scalars())
    out("5. courier pickups: " + ", ".join(f"{p.carrier} {p.state} {p.window_start or ''}-{p.window_end or ''} "
                                           f"({p.parcels} parcels)" + (f" [{p.problem}]" if p.problem else "")
                                           for p in pickups) + "\n")

    hook_by_name = {h.name: h for _, h in hooks}
    with db.transaction(engine) as session:
        numbers = session.execute(select(Shipment.carrier, ShipmentParcel.tracking_number)
                                  .join(ShipmentParcel, ShipmentParcel.shipment_id == Shipment.id)
                                  .where(Shipment.state != "cancelled")).all()
    for carrier, number in numbers:
        if number and hook_by_name[carrier].tracks:
            hook_by_name[carrier].deliver(number)
    tracked = {h.name for _, h in hooks if h.tracks}
    expect = sum(n for c, n in by_carrier.items() if c in tracked)
    took = _wait(lambda: _count(engine, select(func.count()).select_from(Shipment).where(
        Shipment.state == "delivered")) >= expect, 60)
    delivered = _count(engine, select(func.count()).select_from(Shipment).where(Shipment.state == "delivered"))
    orders_delivered = _count(engine, select(func.count()).select_from(Order).where(Order.status == "delivered"))
    out(f"6. tracking: {delivered} of {expect} tracked parcels delivered"
        + (f" after {took:.1f}s" if took is not None else " (NOT all)") + f"; {orders_delivered} orders delivered\n")
    out("   inspect: hub --config " + str(config_path) + " shipments list | shipments show 1 | pickups list\n")
    return ready is not None and printed and not booked_twice and took is not None


def _count(engine: Any, statement: Any) -> int:
    with db.transaction(engine) as session:
        return int(session.execute(statement).scalar_one())
