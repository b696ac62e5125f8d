"""CLI commands of the invoicing capability: invoices, corrections, sending to KSeF. Issuing is the hub's
own work (numbered in the database, checked against FA(3)) and runs here; KSeF is only ever called by
the job queue (send queues a job)."""

from __future__ import annotations

import argparse
import sys
from datetime import date
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from sqlalchemy import select, update

from hub.app.wiring import ProcessServices, invoice_exporter
from hub.cli.context import positive_int, runtime
from hub.cli.output import emit_json, table
from hub.cli.output import say as _say
from hub.invoicing.amounts import LineIn
from hub.invoicing.exports import CONNECTOR_FORMATS, FORMATS, export, month
from hub.invoicing.fa3 import plain
from hub.invoicing.issue import InvoiceProblem
from hub.invoicing.kinds import SEND
from hub.invoicing.models import INVOICE_STATES, NOT_YET_IN_KSEF, Invoice, InvoiceLine, KsefOutage
from hub.invoicing.service import KSEF_PRIORITY, InvoicingService, refresh_deadlines
from hub.jobs import queue
from hub.kernel.clock import utcnow
from hub.kernel.errors import HubError, NotFoundError, PermanentError
from hub.platform import db


def add_parsers(sub: Any, common: argparse.ArgumentParser, listing: argparse.ArgumentParser,
                parser_class: type[argparse.ArgumentParser]) -> None:
    invoices = sub.add_parser("invoices", parents=[common], help="invoices, corrections, KSeF")
    isub = invoices.add_subparsers(dest="invoices_command", required=True, parser_class=parser_class,
                                   metavar="ACTION")
    il = isub.add_parser("list", parents=[common, listing], help="invoices, newest first")
    il.add_argument("--state", choices=INVOICE_STATES)
    il.add_argument("--period", type=_period, metavar="YYYY-MM", help="issued in this month")
    il.add_argument("--order", type=positive_int, metavar="ID", help="of this order")
    il.add_argument("--offline", action="store_true",
                    help="issued in KSeF's offline mode and not yet in KSeF, soonest deadline first")
    il.add_argument("--limit", type=positive_int, default=100)
    il.set_defaults(func=cmd_list)
    show = isub.add_parser("show", parents=[common, listing], help="an invoice: lines, totals, KSeF")
    show.add_argument("id", type=positive_int)
    show.add_argument("--xml", action="store_true", help="print its FA(3) document")
    show.set_defaults(func=cmd_show)
    issue = isub.add_parser("issue", parents=[common, listing],
                            help="the invoice of an order (a consumer's too: on request, within the legal window)")
    issue.add_argument("order", type=positive_int, help="the hub's order id")
    issue.set_defaults(func=cmd_issue)
    correct = isub.add_parser("correct", parents=[common, listing],
                              help="a corrective invoice: returned units or a lower price on lines of an invoice")
    correct.add_argument("invoice", type=positive_int, help="the invoice's id")
    correct.add_argument("--reason", required=True, help="why (PrzyczynaKorekty), e.g. 'rabat posprzedażowy'")
    correct.add_argument("--price", action="append", default=[], metavar="LINE=PRICE", type=_line_value,
                         help="line LINE's new unit price (gross on a gross invoice); repeatable")
    correct.add_argument("--returned", action="append", default=[], metavar="LINE=QTY", type=_line_value,
                         help="QTY units of line LINE came back; repeatable")
    correct.set_defaults(func=cmd_correct)
    send = isub.add_parser("send", parents=[common, listing], help="send issued invoices to KSeF now (queued)")
    send.set_defaults(func=cmd_send)
    export = isub.add_parser("export", parents=[common, listing],
                             help="a month's invoices for the accountant: FA(3) files, JPK_FA(4), the sales register "
                                  "(CSV), EDI++ (epp), or the buyers' PDFs")
    export.add_argument("--period", required=True, type=_period, metavar="YYYY-MM")
    export.add_argument("--format", required=True, choices=FORMATS)
    export.add_argument("--out", required=True, type=Path, metavar="DIR")
    export.set_defaults(func=cmd_export)
    retry = isub.add_parser("retry", parents=[common, listing],
                            help="issue again an invoice with a problem, or send again one KSeF rejected")
    retry.add_argument("id", type=positive_int)
    retry.set_defaults(func=cmd_retry)
    outage = isub.add_parser("outage", parents=[common, listing],
                             help="record a KSeF outage the Ministry announced (it moves offline invoices' "
                                  "deadlines), or list them")
    outage.add_argument("--kind", choices=("unavailable", "failure"),
                        help="unavailable: KSeF said unavailable; failure: a failure (awaria) was announced")
    outage.add_argument("--from", dest="started_on", type=_day, metavar="YYYY-MM-DD", help="its first day")
    outage.add_argument("--to", dest="ended_on", type=_day, metavar="YYYY-MM-DD",
                        help="its last day (left out: still going on; give it again with --to once it ends)")
    outage.add_argument("--note", help="e.g. the announcement's address")
    outage.set_defaults(func=cmd_outage)


def _day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a day as YYYY-MM-DD, got {text!r}") from None


def _period(text: str) -> str:
    parts = text.split("-")
    if len(parts) != 2 or len(parts[0]) != 4 or not all(p.isdigit() for p in parts) or not 1 <= int(parts[1]) <= 12:
        raise argparse.ArgumentTypeError(f"expected a month as YYYY-MM, got {text!r}")
    return text


def _line_value(text: str) -> tuple[int, Decimal]:
    line, _, value = text.partition("=")
    try:
        number, amount = int(line), Decimal(value)
    except (ValueError, InvalidOperation):
        raise argparse.ArgumentTypeError(f"expected LINE=VALUE (e.g. 2=79.99), got {text!r}") from None
    if number <= 0 or not amount.is_finite() or amount < 0:
        raise argparse.ArgumentTypeError(f"expected a line number above 0 and a value of 0 or more, got {text!r}")
    return number, amount


def _service(args: argparse.Namespace) -> tuple[Any, Any, InvoicingService]:
    loaded, engine = runtime(args)
    if not loaded.settings.invoicing.enabled:
        raise HubError("invoicing is not enabled: set [invoicing] enabled = true and [invoicing.seller] in the config")
    return loaded, engine, ProcessServices(loaded).invoicing(engine)


def _iso(value: Any) -> Any:
    return value.isoformat() if value is not None else None


def _row(invoice: Invoice) -> dict[str, Any]:
    return {"id": invoice.id, "number": invoice.number, "kind": invoice.kind, "state": invoice.state,
            "order_id": invoice.order_id, "corrects_id": invoice.corrects_id, "issue_date": _iso(invoice.issue_date),
            "sale_date": _iso(invoice.sale_date), "buyer": invoice.buyer.get("name"),
            "buyer_tax_id": invoice.buyer.get("nip") or invoice.buyer.get("eu_vat") or invoice.buyer.get("tax_id"),
            "currency": invoice.currency, "net": str(invoice.net), "vat": str(invoice.vat),
            "gross": str(invoice.gross), "ksef_number": invoice.ksef_number, "offline": invoice.offline,
            "ksef_deadline": _iso(invoice.ksef_deadline), "corrects_sha256": invoice.corrects_sha256,
            "problem": invoice.problem}


def cmd_list(args: argparse.Namespace) -> int:
    _, engine = runtime(args)
    query = select(Invoice).order_by(Invoice.id.desc()).limit(args.limit)
    if args.state:
        query = query.where(Invoice.state == args.state)
    if args.offline:
        query = query.where(Invoice.offline.is_(True), Invoice.state.in_(NOT_YET_IN_KSEF)).order_by(None).order_by(
            Invoice.ksef_deadline.is_(None), Invoice.ksef_deadline, Invoice.id)
    if args.order:
        query = query.where(Invoice.order_id == args.order)
    if args.period:
        first, last = month(args.period)
        query = query.where(Invoice.number.is_not(None), Invoice.issue_date >= first, Invoice.issue_date <= last)
    with db.transaction(engine) as session:
        rows = [_row(invoice) for invoice in session.execute(query).scalars()]
    if args.json:
        emit_json(rows)
    else:
        columns = ["id", "number", "kind", "state", "order_id", "issue_date", "buyer", "gross", "currency",
                   "ksef_number", "problem"]
        if args.offline:
            columns[4:4] = ["ksef_deadline"]
        table(rows, columns, empty="(no invoices)")
    return 0


def _invoice(session: Any, invoice_id: int) -> Invoice:
    invoice = session.get(Invoice, invoice_id)
    if invoice is None:
        raise NotFoundError(f"no invoice with id {invoice_id}")
    return invoice


def cmd_show(args: argparse.Namespace) -> int:
    _, engine = runtime(args)
    with db.transaction(engine) as session:
        invoice = _invoice(session, args.id)
        lines = session.execute(select(InvoiceLine).where(InvoiceLine.invoice_id == invoice.id)
                                .order_by(InvoiceLine.line_no)).scalars().all()
        data = {**_row(invoice), "seller": invoice.seller.get("name"), "payment": invoice.payment,
                "exchange_rate": None if invoice.exchange_rate is None else
                {"mid": str(invoice.exchange_rate), "date": _iso(invoice.exchange_rate_date),
                 "table": invoice.exchange_rate_table},
                "split_payment": invoice.split_payment, "reason": invoice.reason, "rates": invoice.rates,
                "ksef": {"session": invoice.ksef_session, "reference": invoice.ksef_reference,
                         "number": invoice.ksef_number, "code": invoice.ksef_code, "at": _iso(invoice.ksef_at),
                         "upo": invoice.upo is not None},
                "lines": [{"no": line.line_no, "name": line.name, "sku": line.sku, "quantity": str(line.quantity),
                           "unit": line.unit, "rate": line.rate, "unit_gross": str(line.unit_gross),
                           "net": str(line.net), "vat": str(line.vat), "gross": str(line.gross)} for line in lines],
                "xml_sha256": invoice.xml_sha256}
        xml = invoice.xml
    if args.xml:
        if xml is None:
            raise HubError(f"invoice {args.id} has no document: {data['problem']}")
        _say(xml)
        return 0
    if args.json:
        emit_json(data)
        return 0
    _say(f"invoice {data['id']} {data['number'] or '(not issued)'} ({data['kind']}) {data['state']}: "
         f"{data['buyer']} {data['buyer_tax_id'] or ''}".rstrip())
    for key in ("order_id", "corrects_id", "reason", "issue_date", "sale_date", "exchange_rate", "split_payment",
                "offline", "ksef_deadline", "corrects_sha256", "ksef_number", "problem"):
        if data[key]:
            _say(f"  {key}: {data[key]}")
    for line in data["lines"]:
        _say(f"  {line['no']}. {line['name']}  {line['quantity']} {line['unit']} x {line['unit_gross']}  "
             f"{line['rate']}  {line['gross']}")
    for rate in data["rates"]:
        _say(f"  VAT {rate['rate']}: net {rate['net']} VAT {rate['vat']} gross {rate['gross']}")
    _say(f"  total: {data['gross']} {data['currency']}")
    return 0


def _emit_issued(args: argparse.Namespace, invoice: Invoice, created: bool) -> None:
    data = {**_row(invoice), "created": created}
    if args.json:
        emit_json(data)
        return
    where = "queued for KSeF" if invoice.state == "issued" else invoice.state.replace("_", " ")
    _say(f"invoice {invoice.number} (id {invoice.id}): {invoice.gross} {invoice.currency}, {where}"
         + ("" if created else " (issued before)"))


def cmd_issue(args: argparse.Namespace) -> int:
    _, engine, service = _service(args)
    try:
        issued = service.issue_order(engine, args.order, on_request=True)
    except InvoiceProblem as exc:
        raise HubError(str(exc)) from None
    _emit_issued(args, issued.invoice, issued.created)
    return 0


def cmd_correct(args: argparse.Namespace) -> int:
    _, engine, service = _service(args)
    if not args.price and not args.returned:
        raise HubError("say what changes: --price LINE=PRICE and/or --returned LINE=QTY")
    with db.transaction(engine) as session:
        original = _invoice(session, args.invoice)
        lines = {line.line_no: line for line in session.execute(
            select(InvoiceLine).where(InvoiceLine.invoice_id == original.id)).scalars()}
        gross = original.basis == "gross"
        changes: list[LineIn] = []
        for number, value in args.returned:
            line = _line(lines, original, number)
            if value > line.quantity:
                raise HubError(f"invoice {original.number}, line {number}: --returned {value} is more than the "
                               f"{plain(line.quantity)} invoiced")
            changes.append(LineIn(line.name, -value, line.unit_gross if gross else line.unit_net,
                                  line.rate, line.unit, line.sku, line.kind, line.annex15))  # type: ignore[arg-type]
        for number, value in args.price:
            line = _line(lines, original, number)
            old = line.unit_gross if gross else line.unit_net
            if value >= old:
                raise HubError(f"invoice {original.number}, line {number}: --price {value} is not below the "
                               f"invoiced {plain(old)} (a price rise is a new invoice)")
            changes.append(LineIn(line.name, line.quantity, value - old, line.rate, line.unit, line.sku,
                                  line.kind, line.annex15))  # type: ignore[arg-type]
    origin = f"correct:{args.invoice}:{utcnow().strftime('%Y%m%d%H%M%S%f')}"
    try:
        issued = service.correct(engine, args.invoice, args.reason, changes, origin=origin)
    except InvoiceProblem as exc:
        raise HubError(str(exc)) from None
    _emit_issued(args, issued.invoice, issued.created)
    return 0


def _line(lines: dict[int, InvoiceLine], invoice: Invoice, number: int) -> InvoiceLine:
    if number not in lines:
        raise HubError(f"invoice {invoice.number} has no line {number} (lines 1..{len(lines)})")
    return lines[number]


def cmd_send(args: argparse.Namespace) -> int:
    loaded, engine, service = _service(args)
    try:
        service.ksef()  # a missing KSeF connector is an error here, not in a job
    except PermanentError as exc:
        raise HubError(str(exc)) from None
    with db.transaction(engine) as session:
        job = queue.enqueue_coalesced(session, SEND, {}, group=f"ksef-send:{loaded.settings.invoicing.ksef}",
                                      priority=KSEF_PRIORITY)
        waiting = session.execute(select(Invoice.id).where(Invoice.state == "issued")).all()
    if args.json:
        emit_json({"job": job.id, "issued": len(waiting)})
    else:
        _say(f"{len(waiting)} issued invoice(s): sending queued (job {job.id}); hub invoices list tells")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    loaded, engine = runtime(args)
    if args.out.exists() and not args.out.is_dir():
        raise HubError(f"--out {args.out}: not a directory")
    shown = [0]

    def progress(count: int) -> None:
        if not args.json and count - shown[0] >= 1000:
            shown[0] = count
            print(f"  {count} invoices...", file=sys.stderr, flush=True)

    exporter = invoice_exporter(loaded, engine, args.format) if args.format in CONNECTOR_FORMATS else None
    result = export(engine, loaded.settings.invoicing, args.period, args.format, args.out, progress,
                    exporter=exporter)
    data = {"period": args.period, "format": args.format, "invoices": result.invoices,
            "files": [str(path) for path in result.files]}
    if args.json:
        emit_json(data)
    else:
        where = result.files[0] if len(result.files) == 1 else args.out
        _say(f"{result.invoices} invoice(s) of {args.period} as {args.format}: {where}")
    return 0


def cmd_retry(args: argparse.Namespace) -> int:
    _, engine, service = _service(args)
    with db.transaction(engine) as session:
        invoice = _invoice(session, args.id)
        state, origin, order_id = invoice.state, invoice.origin, invoice.order_id
        if state == "rejected":
            # KSeF refused the document: issue it again under its number from today's data and send it
            session.execute(update(Invoice).where(Invoice.id == invoice.id, Invoice.state == "rejected")
                            .values(state="problem", problem=f"resent after KSeF rejected it: {invoice.problem}"))
    if state not in ("problem", "rejected"):
        raise HubError(f"invoice {args.id} is {state}: only an invoice with a problem or one KSeF rejected is retried")
    try:
        if origin.startswith("order:") and order_id is not None:
            issued = service.issue_order(engine, order_id, on_request=True)
        elif origin.startswith("return:"):
            corrected = service.correct_return(engine, int(origin.split(":")[1]))
            if corrected is None:
                raise HubError(f"invoice {args.id}: the returned order has no invoice to correct")
            issued = corrected
        else:
            raise HubError(f"invoice {args.id} ({origin}) was asked for by hand: issue a new correction "
                           "(hub invoices correct)")
    except InvoiceProblem as exc:
        raise HubError(str(exc)) from None
    _emit_issued(args, issued.invoice, issued.created)
    return 0


def cmd_outage(args: argparse.Namespace) -> int:
    """Record (or end) an announced KSeF outage and move the deadlines of offline invoices; without --kind,
    list the outages recorded."""
    _, engine = runtime(args)
    moved = None
    if args.kind is not None:
        if args.started_on is None:
            raise HubError("hub invoices outage: --from YYYY-MM-DD is needed with --kind")
        if args.ended_on is not None and args.ended_on < args.started_on:
            raise HubError(f"hub invoices outage: --to {args.ended_on} is before --from {args.started_on}")
        with db.transaction(engine) as session:
            db.upsert(session, KsefOutage, {"kind": args.kind, "started_on": args.started_on,
                                            "ended_on": args.ended_on, "note": args.note, "created_at": utcnow()},
                      ["kind", "started_on"], update=["ended_on", "note"])
            moved = refresh_deadlines(session)
    elif args.started_on or args.ended_on:
        raise HubError("hub invoices outage: --from and --to go with --kind unavailable|failure")
    with db.transaction(engine) as session:
        rows = [{"kind": o.kind, "from": _iso(o.started_on), "to": _iso(o.ended_on), "note": o.note}
                for o in session.execute(select(KsefOutage).order_by(KsefOutage.started_on)).scalars()]
    if args.json:
        emit_json({"outages": rows, "deadlines_refreshed": moved})
        return 0
    table(rows, ["kind", "from", "to", "note"], empty="(no KSeF outages recorded)")
    if moved is not None:
        _say(f"deadlines of {moved} offline invoice(s) not yet in KSeF computed again - hub invoices list --offline")
    return 0
