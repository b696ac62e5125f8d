"""`hub demo`, part 4: invoices. Business orders on the demo's channels get their invoices from the shipped
automation rule, numbered, checked against FA(3) and sent to the KSeF simulator, which gives them their KSeF
numbers; a return is corrected by a corrective invoice sent after its original; the month's exports for the
accountant are written (FA(3) files, JPK_FA(4), the sales register, the buyers' PDFs). With the KSeF simulator
made unavailable for a moment, one invoice is issued in KSeF's offline mode with its deadline and sent once
KSeF is back (its PDF carries both QR codes).

The KSeF and NBP connectors offer demo hooks (``ConnectorSpec.extra["demo"]`` of an ``einvoicing`` or
``rates`` connector): ``name``, ``label``, ``start() -> options``, ``requests()`` and ``stop()``.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select

from hub.platform import db, registry

BUYER_NIP = "7740001454"  # a valid NIP of a business buyer
SELLER = """
[invoicing]
enabled = true
ksef = "{ksef}"
qr_host = "https://qr-test.ksef.mf.gov.pl"   # the simulator stands for KSeF's test environment

[invoicing.seller]
name = "Demo Sp. z o.o."
nip = "{nip}"
street = "ul. Magazynowa 5"
city = "Poznań"
postal_code = "60-001"
email = "faktury@example.pl"
bank_account = "PL61109010140000071219812874"
place = "Poznań"
tax_office = "3021"
voivodeship = "wielkopolskie"
county = "Poznań"
commune = "Poznań"
building = "5"
"""


def invoicing_hooks() -> list[tuple[str, Any]]:
    hooks = []
    for kind, spec in sorted(registry.specs().items()):
        factory = spec.extra.get("demo")
        if spec.role in ("einvoicing", "rates") and callable(factory):
            hooks.append((kind, factory()))
    return hooks


def config_sections(hooks: list[tuple[str, Any]], started: list[Any], base: Path | None = None) -> str:
    """The KSeF and NBP connectors' sections and [invoicing], for the demo's hub.toml (with the seller's
    certificate of type Offline in ``base`` when the KSeF hook issues one)."""
    from demo.channels import _toml_value

    sections: list[str] = []
    ksef = next((hook for kind, hook in hooks if registry.get(kind).role == "einvoicing"), None)  # type: ignore[union-attr]
    for kind, hook in hooks:
        options = hook.start()
        started.append(hook)
        lines = [f"[connectors.{hook.name}]", f'kind = "{kind}"']
        lines += [f"{k} = {_toml_value(v)}" for k, v in options.items()]
        sections.append("\n".join(lines) + "\n")
    if ksef is not None:
        sections.append(SELLER.format(ksef=ksef.name, nip=ksef.seller_nip))
        if base is not None and hasattr(ksef, "offline_certificate"):
            options = ksef.offline_certificate(base / "ksef")
            sections.append("[invoicing.offline_certificate]\n" + "".join(
                f'{key} = "{value}"\n' for key, value in options.items()))
    return "\n".join(sections)


def _wait(predicate: Any, timeout: float, tick: float = 0.1) -> float | None:
    import time

    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if predicate():
            return time.monotonic() - start
        time.sleep(tick)
    return None


def _invoice_of(engine: Any, origin: str) -> Any:
    from hub.invoicing.models import Invoice

    with db.transaction(engine) as session:
        return session.execute(select(Invoice).where(Invoice.origin == origin)).scalar_one_or_none()


def _order_id(engine: Any, channel: str, external_id: str) -> int | None:
    from hub.orders.models import Order

    with db.transaction(engine) as session:
        return session.execute(select(Order.id).where(Order.channel == channel, Order.external_id == external_id)
                               ).scalar_one_or_none()


def run_invoicing(engine: Any, loaded: Any, base: Path, hooks: list[tuple[str, Any]], sellers: list[Any],
                  skus: list[str]) -> bool:
    from hub.app.wiring import invoice_exporter, order_rules
    from hub.invoicing.exports import CONNECTOR_FORMATS, FORMATS, export
    from hub.kernel.clock import utcnow
    from hub.orders.returns import accept_return

    out = sys.stdout.write
    ksef = next((hook for kind, hook in hooks if registry.get(kind).role == "einvoicing"), None)  # type: ignore[union-attr]
    if ksef is None or not sellers:
        out("\n== Part 4: invoices: no KSeF connector with a simulator is installed; skipped\n")
        return True
    out(f"\n== Part 4: invoices through {ksef.label}\n")
    placed = [(hook, hook.place_order(sku, 2, nip=BUYER_NIP)) for hook, sku in zip(sellers, skus, strict=False)]
    out(f"1. business orders (NIP {BUYER_NIP}) on {', '.join(h.name for h, _ in placed)}; the shipped rule "
        "\"business orders get their invoice when paid\" issues them\n")
    ok = True
    for hook, external_id in placed:
        _wait(lambda h=hook, e=external_id: _order_id(engine, h.name, e) is not None, 20)
        order_id = _order_id(engine, hook.name, external_id)
        done = order_id is not None and _wait(
            lambda o=order_id: (_invoice_of(engine, f"order:{o}") or _Missing).state in ("accepted", "rejected"), 30)
        invoice = _invoice_of(engine, f"order:{order_id}") if order_id is not None else None
        if not done or invoice is None or invoice.state != "accepted":
            out(f"   {hook.name:14} order {external_id}: no accepted invoice "
                f"({getattr(invoice, 'state', None)}: {getattr(invoice, 'problem', None)})\n")
            ok = False
            continue
        out(f"   {hook.name:14} order {external_id}: invoice {invoice.number}, {invoice.gross} {invoice.currency}, "
            f"KSeF number {invoice.ksef_number} (UPO kept)\n")

    returner = next((hook for hook, _ in placed if getattr(hook, "returns", False)), None)
    if returner is not None:
        external_id = next(e for h, e in placed if h is returner)
        sku = skus[[h for h, _ in placed].index(returner)]
        return_id = returner.add_return(external_id, sku, 1)
        _wait(lambda: _return(engine, returner.name, return_id) is not None, 20)
        rma = _return(engine, returner.name, return_id)
        if rma is None:
            out("   the return did not arrive\n")
            return False
        with db.transaction(engine) as session:
            accept_return(session, order_rules(loaded), rma.id)
        _wait(lambda: (_invoice_of(engine, f"return:{rma.id}") or _Missing).state in ("accepted", "rejected"), 30)
        correction = _invoice_of(engine, f"return:{rma.id}")
        if correction is None or correction.state != "accepted":
            out(f"2. the return's corrective invoice is not accepted: {getattr(correction, 'problem', None)}\n")
            ok = False
        else:
            out(f"2. return of 1 x {sku} accepted: corrective invoice {correction.number}, {correction.gross} "
                f"{correction.currency}, KSeF number {correction.ksef_number}\n")
    if hasattr(ksef, "unavailable") and loaded.settings.invoicing.offline_certificate is not None:
        ok = _offline(engine, ksef, sellers[0], skus[0]) and ok
    period = utcnow().astimezone(ZoneInfo(loaded.settings.invoicing.timezone)).strftime("%Y-%m")
    folder = base / "exports" / period
    out(f"4. the month's exports for the accountant (hub invoices export --period {period} --format ...):\n")
    for fmt in FORMATS:
        exporter = invoice_exporter(loaded, engine, fmt) if fmt in CONNECTOR_FORMATS else None
        result = export(engine, loaded.settings.invoicing, period, fmt, folder / fmt, exporter=exporter)
        where = result.files[0] if len(result.files) == 1 else folder / fmt
        out(f"   {fmt:7} {result.invoices} invoice(s): {where}\n")
    out(f"   KSeF received {ksef.requests()} requests and holds {ksef.accepted()} invoice(s)\n")
    return ok


def _offline(engine: Any, ksef: Any, seller: Any, sku: str) -> bool:
    """KSeF unreachable while an invoice is due: it is issued in offline mode with its deadline, and sent
    with offlineMode once KSeF answers again; its PDF carries KOD II."""
    out = sys.stdout.write
    ksef.unavailable(True)
    try:
        external_id = seller.place_order(sku, 1, nip=BUYER_NIP)
        _wait(lambda: _order_id(engine, seller.name, external_id) is not None, 20)
        order_id = _order_id(engine, seller.name, external_id)
        went = order_id is not None and _wait(
            lambda: bool(getattr(_invoice_of(engine, f"order:{order_id}"), "offline", False)), 30)
        invoice = _invoice_of(engine, f"order:{order_id}") if order_id is not None else None
        if not went or invoice is None:
            out(f"3. KSeF unavailable: the invoice of order {external_id} did not go into offline mode\n")
            return False
        out(f"3. KSeF unavailable (the simulator answers 503): order {external_id}'s invoice {invoice.number} is "
            f"issued in KSeF's offline mode, due in KSeF by {invoice.ksef_deadline} (hub status, hub invoices list "
            "--offline)\n")
    finally:
        ksef.unavailable(False)
    _wait(lambda: (_invoice_of(engine, f"order:{order_id}") or _Missing).state in ("accepted", "rejected"), 30)
    invoice = _invoice_of(engine, f"order:{order_id}")
    if invoice is None or invoice.state != "accepted":
        out(f"   KSeF back: the offline invoice is not accepted ({getattr(invoice, 'state', None)})\n")
        return False
    out(f"   KSeF back: sent with offlineMode, KSeF number {invoice.ksef_number}; its PDF carries KOD I and KOD II "
        "(signed with the seller's KSeF Offline certificate)\n")
    return True


class _Missing:
    state = None


def _return(engine: Any, channel: str, external_id: str) -> Any:
    from hub.orders.models import ReturnRow

    with db.transaction(engine) as session:
        return session.execute(select(ReturnRow).where(ReturnRow.channel == channel,
                                                       ReturnRow.external_id == external_id)).scalar_one_or_none()
