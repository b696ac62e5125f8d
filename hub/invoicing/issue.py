"""Issuing an invoice for an order: what it says (a draft, pure of numbers), then storing it once with
the next number of its series.

- Once per origin (``order:ID``, ``return:ID``...): the invoice row is inserted or nothing, in the
  database's unique key, before a number is taken; a second issuer finds the first one's invoice.
- The FA(3) document is checked against the schema with a stand-in number first: an invoice that fails
  is stored with its problem and no number (a failed issue never burns one); ``hub invoices retry``
  issues it again once the cause is fixed.
- The number is taken last, in the transaction that stores the invoice (hub.invoicing.numbering).
- Dates are the seller's calendar days (InvoicingSettings.timezone): the issue date is today there; the
  date of the sale (P_6) is the day the order was paid, or shipped if that came first, and the tax point
  for a foreign currency's rate.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any, Literal
from xml.sax.saxutils import escape
from zoneinfo import ZoneInfo

from sqlalchemy import bindparam, func, insert, select, update
from sqlalchemy.orm import Session

from hub.catalog import Product
from hub.invoicing.amounts import Amounts, LineIn, compute
from hub.invoicing.fa3 import render
from hub.invoicing.goods import InvoicingFile
from hub.invoicing.models import Invoice, InvoiceLine
from hub.invoicing.numbering import take_number, take_numbers
from hub.invoicing.rates import InvoiceRate, invoice_rate
from hub.invoicing.schemas import fa3, problems
from hub.kernel.errors import PermanentError
from hub.kernel.ports.channel import OrderLine
from hub.kernel.ports.invoicing import PublishedRate
from hub.kernel.vat import HOME_COUNTRY, eu_vat_prefix, normalize_nip
from hub.orders import Order, OrderHistory, OrderLineRow, nip_problem, with_charge_rates
from hub.platform.config import InvoicingSettings
from hub.platform.db import insert_for

STAND_IN_NUMBER = "FV/0/00/0000"
_STAND_IN_P2 = f"<P_2>{STAND_IN_NUMBER}</P_2>".encode()


class InvoiceProblem(PermanentError):
    """What keeps an invoice from being issued, in words the seller can act on."""


class OnRequestOnly(InvoiceProblem):
    """A consumer's order: the sale is on a fiscal receipt, and an invoice is issued only when asked for."""


class NothingSold(OnRequestOnly):
    """A cancelled order: there is nothing to invoice (and nothing to fix)."""


@dataclass(frozen=True)
class Draft:
    """Everything an invoice says except its number and issue-time facts."""

    origin: str
    kind: Literal["VAT", "KOR"]
    series: str
    business: bool
    buyer: dict[str, Any]
    seller: dict[str, Any]
    issue_date: date
    sale_date: date
    currency: str
    basis: Literal["gross", "net"]
    lines: Sequence[LineIn]
    payment: dict[str, Any]
    order_id: int | None = None
    corrects_id: int | None = None
    reason: str | None = None
    exchange: PublishedRate | None = None


def local_day(moment: datetime, settings: InvoicingSettings) -> date:
    return moment.astimezone(ZoneInfo(settings.timezone)).date()


def seller_of(settings: InvoicingSettings) -> dict[str, Any]:
    if settings.seller is None:
        raise InvoiceProblem("[invoicing.seller] is not configured: the seller's name, NIP and address")
    seller = settings.seller.model_dump(mode="json")
    seller["exemption_basis"] = settings.exemption_basis
    return seller


def _buyer(order: Order) -> tuple[bool, dict[str, Any]]:
    """(business, the buyer as the invoice names them); a tax id that is not one is an InvoiceProblem."""
    request = order.invoice or {}
    delivery = (order.delivery or {}).get("address") or {}
    address = request.get("address") or delivery or None
    country = ((address or {}).get("country") or HOME_COUNTRY).upper()
    nip = request.get("nip")
    name = request.get("company") or (address or {}).get("company") or (address or {}).get("name") \
        or order.buyer_login or order.buyer_email or "Klient"
    buyer: dict[str, Any] = {"name": name, "country": country, "email": order.buyer_email}
    if address:
        buyer["address"] = {key: address.get(key) for key in ("street", "city", "postal_code", "country")}
    if not nip:
        return False, buyer
    problem = nip_problem(nip, country)
    if problem is not None:
        raise InvoiceProblem(f"order {order.channel}/{order.external_id}: the buyer's NIP {nip!r} is {problem}")
    normalized = normalize_nip(nip)
    if normalized.isdigit() and len(normalized) == 10:
        buyer["nip"] = normalized
    elif eu_vat_prefix(country) is not None:
        prefix = normalized[:2] if normalized[:2].isalpha() else eu_vat_prefix(country)
        buyer["eu_code"] = prefix
        buyer["eu_vat"] = normalized[2:] if normalized[:2].isalpha() else normalized
    else:
        buyer["tax_id"] = normalized
    return True, buyer


def _zero_rate(buyer: dict[str, Any], settings: InvoicingSettings) -> Literal["WDT", "EX"] | None:
    country = buyer.get("country", HOME_COUNTRY)
    if country == HOME_COUNTRY:
        return None
    if buyer.get("eu_vat") and settings.zero_rate_intra_eu:
        return "WDT"
    if eu_vat_prefix(country) is None and settings.zero_rate_export:
        return "EX"
    return None


def history_days(session: Session, order_ids: Sequence[int], settings: InvoicingSettings,
                 ) -> dict[int, dict[str, date]]:
    """The first day (the seller's calendar) each order was paid and shipped, as far as it was: one read."""
    out: dict[int, dict[str, date]] = {order_id: {} for order_id in order_ids}
    for order_id, status, at in session.execute(
            select(OrderHistory.order_id, OrderHistory.to_status, func.min(OrderHistory.at)).where(
                OrderHistory.order_id.in_(order_ids), OrderHistory.to_status.in_(("paid", "shipped")))
            .group_by(OrderHistory.order_id, OrderHistory.to_status)):
        out[order_id][status] = local_day(at, settings)
    return out


def order_lines(session: Session, order_ids: Sequence[int]) -> dict[int, list[OrderLine]]:
    """Each order's lines, a line without a rate of its own taking its SKU's from the catalogue: two reads."""
    rows = session.execute(select(OrderLineRow).where(OrderLineRow.order_id.in_(order_ids))
                           .order_by(OrderLineRow.order_id, OrderLineRow.line_no)).scalars().all()
    skus = sorted({row.sku for row in rows if row.sku and not row.vat_rate})
    catalogue = dict(session.execute(select(Product.sku, Product.vat_rate).where(Product.sku.in_(skus))).all()) \
        if skus else {}
    out: dict[int, list[OrderLine]] = {order_id: [] for order_id in order_ids}
    for row in rows:
        out[row.order_id].append(OrderLine(
            sku=row.sku, offer_id=row.offer_id, name=row.name, quantity=row.quantity,
            unit_price_gross=row.unit_price_gross, vat_rate=row.vat_rate or catalogue.get(row.sku),  # type: ignore[arg-type]
            line_id=row.line_id, kind=row.kind))  # type: ignore[arg-type]
    return out


def invoice_lines(order: Order, lines: Sequence[OrderLine], goods: InvoicingFile,
                  zero_rate: Literal["WDT", "EX"] | None) -> list[LineIn]:
    """The order's lines as the invoice carries them, priced gross; a charge without a rate follows its
    goods (hub.orders.with_charge_rates). A line without a known rate is an InvoiceProblem."""
    out: list[LineIn] = []
    for number, line in enumerate(with_charge_rates(lines), 1):
        if line.vat_rate is None:
            raise InvoiceProblem(f"order {order.channel}/{order.external_id}, line {number} "
                                 f"({line.sku or line.name!r}): no VAT rate (not in the ERP's catalogue)")
        try:
            rate: InvoiceRate = invoice_rate(line.vat_rate, zero_rate=zero_rate)
        except ValueError as exc:
            raise InvoiceProblem(f"order {order.channel}/{order.external_id}, line {number}: {exc}") from exc
        out.append(LineIn(name=line.name, quantity=Decimal(line.quantity), unit_price=line.unit_price_gross,
                          rate=rate, unit=goods.unit(line.sku), sku=line.sku, kind=line.kind,
                          annex15=goods.annex15(line.sku)))
    return out


def payment_of(order: Order, settings: InvoicingSettings, issue_date: date, paid_day: date | None,
               ) -> dict[str, Any]:
    payment = order.payment or {}
    bank = settings.seller.bank_account if settings.seller else None
    if payment.get("cash_on_delivery"):
        return {"form": "cash", "cash_on_delivery": True, "paid_at": None, "due": None, "bank_account": None}
    if payment.get("status") in ("paid", "refunded", "partially_refunded"):
        return {"form": "transfer", "cash_on_delivery": False, "paid_at": (paid_day or issue_date).isoformat(),
                "due": None, "bank_account": None}
    return {"form": "transfer", "cash_on_delivery": False, "paid_at": None,
            "due": (issue_date + timedelta(days=settings.payment_days)).isoformat(), "bank_account": bank}


def draft_for_order(session: Session, settings: InvoicingSettings, goods: InvoicingFile, order: Order, *,
                    now: datetime, on_request: bool = False) -> Draft:
    """The invoice an order gets (see draft_from), its history and lines read here."""
    return draft_from(settings, goods, order, history_days(session, [order.id], settings)[order.id],
                      order_lines(session, [order.id])[order.id], now=now, on_request=on_request)


def draft_from(settings: InvoicingSettings, goods: InvoicingFile, order: Order, days: dict[str, date],
               lines: Sequence[OrderLine], *, now: datetime, on_request: bool = False) -> Draft:
    """The invoice an order gets, from its first paid and shipped days and its lines. A consumer (no tax
    id) gets one only on request, within the window the law gives (InvoicingSettings.consumer_window_days
    from the end of the month of the sale)."""
    where = f"order {order.channel}/{order.external_id}"
    if order.status == "cancelled":
        raise NothingSold(f"{where} is cancelled: nothing was sold")
    if order.problem:
        raise InvoiceProblem(f"{where} is quarantined ({order.problem_kind}): fix it first")
    business, buyer = _buyer(order)
    issue_date = local_day(now, settings)
    paid_day, shipped_day = days.get("paid"), days.get("shipped")
    known = [day for day in (paid_day, shipped_day) if day is not None]
    sale_date = min(known) if known else issue_date
    if not business:
        if not on_request:
            raise OnRequestOnly(f"{where}: the buyer is a consumer (no NIP); a consumer's invoice is issued on "
                                 "request (hub invoices issue ORDER)")
        month_end = (sale_date.replace(day=28) + timedelta(days=4)).replace(day=1) - timedelta(days=1)
        if issue_date > month_end + timedelta(days=settings.consumer_window_days):
            raise InvoiceProblem(f"{where}: a consumer may ask for an invoice until {settings.consumer_window_days} "
                                 f"days after the month of the sale ({sale_date.isoformat()}); that time is over")
    if not lines:
        raise InvoiceProblem(f"{where} has no lines")
    items = invoice_lines(order, lines, goods, _zero_rate(buyer, settings))
    if any(item.rate == "zw" for item in items) and not settings.exemption_basis:
        raise InvoiceProblem(f"{where}: an exempt (zw) line needs its legal basis: set invoicing.exemption_basis")
    payment = payment_of(order, settings, issue_date, paid_day)
    if not business and order.erp_ref:
        payment["receipt"] = True  # the sale was recorded on a fiscal receipt: the invoice says so (FP)
    return Draft(origin=f"order:{order.id}", kind="VAT", series=settings.invoice_series, business=business,
                 buyer=buyer, seller=seller_of(settings), issue_date=issue_date, sale_date=sale_date,
                 currency=order.currency, basis="gross", lines=items, payment=payment, order_id=order.id)


def split_payment(draft: Draft, amounts: Amounts, settings: InvoicingSettings) -> bool:
    """Split payment applies to a business buyer's invoice over the threshold (in PLN) with Annex 15 goods."""
    if not draft.business or not any(line.annex15 for line in draft.lines):
        return False
    gross_pln = amounts.gross * (draft.exchange.mid if draft.exchange else Decimal(1))
    return gross_pln > settings.split_payment_threshold


def _rates_json(amounts: Amounts) -> list[dict[str, Any]]:
    return [{"rate": r.rate, "net": str(r.net), "vat": str(r.vat), "gross": str(r.gross),
             "vat_pln": None if r.vat_pln is None else str(r.vat_pln)} for r in amounts.rates]


def sha256_b64(data: bytes) -> str:
    return base64.b64encode(hashlib.sha256(data).digest()).decode("ascii")


@dataclass(frozen=True)
class Issued:
    invoice: Invoice
    created: bool  # False: the origin had its invoice already


def _values(settings: InvoicingSettings, draft: Draft, now: datetime) -> tuple[dict[str, Any], Amounts]:
    """The invoice row a draft makes (state problem until numbered), and its amounts."""
    amounts = compute(draft.lines, draft.basis, draft.exchange.mid if draft.exchange else None)
    split = split_payment(draft, amounts, settings)
    payment = dict(draft.payment)
    if split:
        payment.update(form="transfer", bank_account=settings.seller.bank_account if settings.seller else None)
        if not payment.get("bank_account"):
            raise InvoiceProblem("split payment applies but the seller has no bank_account in [invoicing.seller]")
    values: dict[str, Any] = dict(
        origin=draft.origin, kind=draft.kind, series=draft.series, state="problem", order_id=draft.order_id,
        corrects_id=draft.corrects_id, reason=draft.reason, business=draft.business, buyer=draft.buyer,
        seller=draft.seller, issue_date=draft.issue_date, sale_date=draft.sale_date, currency=draft.currency,
        exchange_rate=draft.exchange.mid if draft.exchange else None,
        exchange_rate_date=draft.exchange.effective_date if draft.exchange else None,
        exchange_rate_table=draft.exchange.table_no if draft.exchange else None, basis=draft.basis,
        net=amounts.net, vat=amounts.vat, gross=amounts.gross, rates=_rates_json(amounts), payment=payment,
        split_payment=split, offline=False, created_at=now, updated_at=now)
    return values, amounts


def _line_values(invoice_id: int, amounts: Amounts) -> list[dict[str, Any]]:
    return [dict(invoice_id=invoice_id, line_no=index, name=line.name, sku=line.sku, kind=line.kind, unit=line.unit,
                 quantity=line.quantity, rate=line.rate, unit_net=line.unit_net, unit_gross=line.unit_gross,
                 net=line.net, vat=line.vat, gross=line.gross, annex15=line.annex15)
            for index, line in enumerate(amounts.lines, 1)]


def _trial(invoice: Invoice, lines: list[dict[str, Any]], corrected: Invoice | None, now: datetime,
           ) -> tuple[bytes, str | None]:
    """The FA(3) document with the stand-in number, and the schema's problem with it (None: valid)."""
    trial = render(invoice, [InvoiceLine(**line) for line in lines], corrected=corrected,
                   corrected_ksef=corrected.ksef_number if corrected is not None else None, created_at=now,
                   number=STAND_IN_NUMBER)
    found = problems(fa3(), trial)
    return trial, ("FA(3) schema: " + "; ".join(found[:5])) if found else None


def _numbered(invoice: Invoice, trial: bytes, number: tuple[str, str | None, int | None], send: bool) -> None:
    """The checked document with its number in place of the stand-in: nothing is rendered while the
    counter row is locked (P_2 is the stand-in's only place; a number is a short token, escaped)."""
    invoice.number, invoice.period, invoice.seq = number
    assert trial.count(_STAND_IN_P2) == 1, "the stand-in number is not in P_2 alone"
    xml = trial.replace(_STAND_IN_P2, b"<P_2>" + escape(number[0]).encode("utf-8") + b"</P_2>", 1)
    invoice.xml = xml.decode("utf-8")
    invoice.xml_sha256 = sha256_b64(xml)
    invoice.state = "issued" if send else "outside_ksef"
    invoice.problem = None


def store(session: Session, settings: InvoicingSettings, draft: Draft, *, now: datetime,
          corrected: Invoice | None = None, send: bool) -> Issued:
    """Store the draft as an invoice once per origin, numbered if its document is valid. ``send``: the
    invoice goes to KSeF (state issued) or not (outside_ksef)."""
    values, amounts = _values(settings, draft, now)
    new_id = session.execute(insert_for(session)(Invoice).values(**values)
                             .on_conflict_do_nothing(index_elements=["origin"]).returning(Invoice.id)).scalar()
    number: tuple[str, str | None, int | None] | None = None
    if new_id is None:
        existing = session.execute(select(Invoice).where(Invoice.origin == draft.origin)
                                   .with_for_update()).scalar_one()
        if existing.state != "problem":
            return Issued(existing, False)
        kept = ("origin", "created_at", "offline") if existing.number is None else \
            ("origin", "created_at", "offline", "issue_date")
        values["offline"], values["ksef_deadline"] = existing.offline, existing.ksef_deadline
        session.execute(update(Invoice).where(Invoice.id == existing.id).values(
            **{k: v for k, v in values.items() if k not in kept}))
        session.execute(InvoiceLine.__table__.delete().where(InvoiceLine.invoice_id == existing.id))
        new_id = existing.id
        if existing.number is not None:  # an invoice KSeF rejected keeps the number it was sent under
            number = (existing.number, existing.period, existing.seq)
            values["issue_date"] = existing.issue_date
            if existing.offline:  # the buyer may hold it already: a technical correction of that document
                values["corrects_sha256"] = existing.corrects_sha256 or existing.xml_sha256
                session.execute(update(Invoice).where(Invoice.id == existing.id)
                                .values(corrects_sha256=values["corrects_sha256"]))
        session.expunge(existing)
    # the invoice as stored, built here rather than read back (the counter row is locked from the number on)
    invoice = Invoice(id=new_id, **values)
    lines = _line_values(new_id, amounts)
    trial, problem = _trial(invoice, lines, corrected, now)
    if problem:
        invoice.problem = problem
        session.execute(update(Invoice).where(Invoice.id == new_id).values(problem=invoice.problem))
        return Issued(invoice, True)
    session.execute(insert(InvoiceLine), lines)
    if number is None:  # taken last: the counter row stays locked until the commit
        number = take_number(session, draft.series, settings.series[draft.series].pattern, draft.issue_date)
    _numbered(invoice, trial, number, send)
    session.execute(update(Invoice).where(Invoice.id == new_id).values(
        number=invoice.number, period=invoice.period, seq=invoice.seq, xml=invoice.xml,
        xml_sha256=invoice.xml_sha256, state=invoice.state, problem=None))
    return Issued(invoice, True)


INVOICES = Invoice.__table__
_SET_NUMBERED = (update(INVOICES).where(INVOICES.c.id == bindparam("b_id")).values(
    number=bindparam("b_number"), period=bindparam("b_period"), seq=bindparam("b_seq"), xml=bindparam("b_xml"),
    xml_sha256=bindparam("b_sha"), state=bindparam("b_state"), problem=None))


def store_many(session: Session, settings: InvoicingSettings, drafts: Sequence[tuple[Draft, bool]], *,
               now: datetime) -> list[Issued | InvoiceProblem]:
    """``store`` for many first invoices of their origins at once (draft, send): one insert of the rows,
    one of the lines, the numbers of a series and period taken together by one counter update, one update
    of the numbered rows; an issued or problem row already there goes through ``store`` alone. What a
    draft cannot be stored for is its InvoiceProblem, in the drafts' order."""
    out: list[Issued | InvoiceProblem | None] = [None] * len(drafts)
    rows: dict[str, tuple[int, dict[str, Any], Amounts]] = {}
    for index, (draft, _) in enumerate(drafts):
        try:
            values, amounts = _values(settings, draft, now)
        except InvoiceProblem as exc:
            out[index] = exc
            continue
        rows[draft.origin] = (index, values, amounts)
    inserted: dict[str, int] = {}
    if rows:
        inserted = {origin: invoice_id for invoice_id, origin in session.execute(
            insert_for(session)(INVOICES).values([values for _, values, _ in rows.values()])
            .on_conflict_do_nothing(index_elements=["origin"]).returning(INVOICES.c.id, INVOICES.c.origin))}
    valid: list[tuple[int, Invoice, bytes, bool]] = []
    lines: list[dict[str, Any]] = []
    for origin, (index, values, amounts) in rows.items():
        draft, send = drafts[index]
        if origin not in inserted:  # issued before, or a problem issued again: the careful path
            out[index] = store(session, settings, draft, now=now, send=send)
            continue
        invoice = Invoice(id=inserted[origin], **values)
        invoice_lines_ = _line_values(invoice.id, amounts)
        trial, problem = _trial(invoice, invoice_lines_, None, now)
        if problem:
            invoice.problem = problem
            session.execute(update(INVOICES).where(INVOICES.c.id == invoice.id).values(problem=problem))
            out[index] = Issued(invoice, True)
            continue
        lines.extend(invoice_lines_)
        valid.append((index, invoice, trial, send))
    if lines:
        session.execute(insert(InvoiceLine.__table__), lines)
    by_period: dict[tuple[str, date], list[tuple[int, Invoice, bytes, bool]]] = {}
    for item in valid:
        by_period.setdefault((item[1].series, item[1].issue_date), []).append(item)  # type: ignore[arg-type]
    updates: list[dict[str, Any]] = []
    for (series, day), items in by_period.items():  # taken last: the counter rows stay locked until the commit
        numbers = take_numbers(session, series, settings.series[series].pattern, day, len(items))
        for (index, invoice, trial, send), number in zip(items, numbers, strict=True):
            _numbered(invoice, trial, number, send)
            updates.append({"b_id": invoice.id, "b_number": invoice.number, "b_period": invoice.period,
                            "b_seq": invoice.seq, "b_xml": invoice.xml, "b_sha": invoice.xml_sha256,
                            "b_state": invoice.state})
            out[index] = Issued(invoice, True)
    if updates:
        session.connection().execute(_SET_NUMBERED, updates)
    return out  # type: ignore[return-value]
