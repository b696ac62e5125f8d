"""An invoice as the FA(3) XML KSeF takes (schema ``xsd/FA3``): built from the stored invoice and its
lines, so the document sent, exported and shown is always the one that was validated.

Field by field (art. 106e; the schema's annotations): P_1 issue date, P_1M place, P_2 number, P_6 the
date of the sale when it differs, P_13_x/P_14_x per rate (hub.invoicing.rates.TOTAL_FIELDS) with
P_14_xW in PLN for a foreign currency, P_15 the total due, Adnotacje (P_18 reverse charge, P_18A split
payment, P_19 exemption with its basis), lines priced gross (P_9B, P_11A) or net (P_9A, P_11), and for a
correction its reason, type and the corrected invoice's number, date and KSeF number.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any, Protocol

from lxml import etree

from hub.invoicing.rates import PERCENT, TOTAL_FIELDS
from hub.invoicing.schemas import ETD_NS, FA3_NS

SYSTEM_INFO = "hub"
_NSMAP = {None: FA3_NS, "etd": ETD_NS}
PAYMENT_FORMS = {"cash": 1, "card": 2, "voucher": 3, "cheque": 4, "credit": 5, "transfer": 6, "mobile": 7}


class InvoiceLike(Protocol):
    kind: str
    number: str | None
    issue_date: Any
    sale_date: Any
    currency: str
    exchange_rate: Decimal | None
    basis: str
    gross: Decimal
    rates: list[dict[str, Any]]
    buyer: dict[str, Any]
    seller: dict[str, Any]
    payment: dict[str, Any]
    split_payment: bool
    reason: str | None


class LineLike(Protocol):
    line_no: int
    name: str
    sku: str | None
    unit: str
    quantity: Decimal
    rate: str
    unit_net: Decimal
    unit_gross: Decimal
    net: Decimal
    gross: Decimal


def amount(value: Decimal) -> str:
    """TKwotowy: up to 2 decimals, no exponent, ``-0`` never."""
    text = f"{value.quantize(Decimal('0.01')):f}"
    return "0.00" if text == "-0.00" else text


def plain(value: Decimal) -> str:
    """A quantity or unit price without trailing zeros or an exponent (TIlosci, TKwotowy2)."""
    text = f"{value.normalize():f}"
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def _sub(parent: etree._Element, tag: str, text: str | None = None) -> etree._Element:
    element = etree.SubElement(parent, f"{{{FA3_NS}}}{tag}")
    if text is not None:
        element.text = text
    return element


def _address(parent: etree._Element, address: dict[str, Any]) -> None:
    node = _sub(parent, "Adres")
    _sub(node, "KodKraju", address.get("country") or "PL")
    _sub(node, "AdresL1", address.get("street") or address.get("line1") or "-")
    second = address.get("line2") or " ".join(part for part in (address.get("postal_code"), address.get("city"))
                                              if part)
    if second:
        _sub(node, "AdresL2", second)


def _seller(root: etree._Element, seller: dict[str, Any]) -> None:
    node = _sub(root, "Podmiot1")
    ident = _sub(node, "DaneIdentyfikacyjne")
    _sub(ident, "NIP", seller["nip"])
    _sub(ident, "Nazwa", seller["name"])
    _address(node, seller)
    if seller.get("email") or seller.get("phone"):
        contact = _sub(node, "DaneKontaktowe")
        if seller.get("email"):
            _sub(contact, "Email", seller["email"])
        if seller.get("phone"):
            _sub(contact, "Telefon", seller["phone"])


def _buyer(root: etree._Element, buyer: dict[str, Any]) -> None:
    node = _sub(root, "Podmiot2")
    ident = _sub(node, "DaneIdentyfikacyjne")
    if buyer.get("nip"):
        _sub(ident, "NIP", buyer["nip"])
    elif buyer.get("eu_vat"):
        _sub(ident, "KodUE", buyer["eu_code"])
        _sub(ident, "NrVatUE", buyer["eu_vat"])
    elif buyer.get("tax_id"):
        if buyer.get("country"):
            _sub(ident, "KodKraju", buyer["country"])
        _sub(ident, "NrID", buyer["tax_id"])
    else:
        _sub(ident, "BrakID", "1")
    _sub(ident, "Nazwa", buyer.get("name") or "Klient")
    if buyer.get("address"):
        _address(node, buyer["address"])
    if buyer.get("email"):
        _sub(_sub(node, "DaneKontaktowe"), "Email", buyer["email"])
    _sub(node, "JST", "2")
    _sub(node, "GV", "2")


def _annotations(fa: etree._Element, invoice: InvoiceLike, rates: set[str]) -> None:
    node = _sub(fa, "Adnotacje")
    _sub(node, "P_16", "2")  # cash accounting method: no
    _sub(node, "P_17", "2")  # self-billing: no
    _sub(node, "P_18", "1" if "oo" in rates else "2")  # reverse charge
    _sub(node, "P_18A", "1" if invoice.split_payment else "2")
    exemption = _sub(node, "Zwolnienie")
    if "zw" in rates:
        _sub(exemption, "P_19", "1")
        _sub(exemption, "P_19A", invoice.seller.get("exemption_basis") or "-")
    else:
        _sub(exemption, "P_19N", "1")
    _sub(_sub(node, "NoweSrodkiTransportu"), "P_22N", "1")
    _sub(node, "P_23", "2")  # simplified triangular procedure: no
    _sub(_sub(node, "PMarzy"), "P_PMarzyN", "1")


def _payment(fa: etree._Element, invoice: InvoiceLike) -> None:
    payment = invoice.payment
    node = _sub(fa, "Platnosc")
    if payment.get("paid_at"):
        _sub(node, "Zaplacono", "1")
        _sub(node, "DataZaplaty", payment["paid_at"])
    elif payment.get("due"):
        _sub(_sub(node, "TerminPlatnosci"), "Termin", payment["due"])
    if payment.get("form", "transfer") is not None:
        _sub(node, "FormaPlatnosci", str(PAYMENT_FORMS.get(payment.get("form", "transfer"), 6)))
    account = payment.get("bank_account")
    if account:
        _sub(_sub(node, "RachunekBankowy"), "NrRB", account.removeprefix("PL"))


def render(invoice: InvoiceLike, lines: Sequence[LineLike], *, corrected: InvoiceLike | None = None,
           corrected_ksef: str | None = None, created_at: datetime, number: str | None = None) -> bytes:
    """The FA(3) document (UTF-8 bytes). ``number`` stands in for the invoice's own (checking a document
    before a number is taken); ``corrected`` is the invoice a correction corrects."""
    root = etree.Element(f"{{{FA3_NS}}}Faktura", nsmap=_NSMAP)
    header = _sub(root, "Naglowek")
    form = _sub(header, "KodFormularza", "FA")
    form.set("kodSystemowy", "FA (3)")
    form.set("wersjaSchemy", "1-0E")
    _sub(header, "WariantFormularza", "3")
    _sub(header, "DataWytworzeniaFa", created_at.strftime("%Y-%m-%dT%H:%M:%SZ"))
    _sub(header, "SystemInfo", SYSTEM_INFO)
    _seller(root, invoice.seller)
    _buyer(root, invoice.buyer)

    fa = _sub(root, "Fa")
    _sub(fa, "KodWaluty", invoice.currency)
    _sub(fa, "P_1", invoice.issue_date.isoformat())
    if invoice.seller.get("place"):
        _sub(fa, "P_1M", invoice.seller["place"])
    _sub(fa, "P_2", number or invoice.number or "-")
    if invoice.sale_date != invoice.issue_date:
        _sub(fa, "P_6", invoice.sale_date.isoformat())
    used = {total["rate"] for total in invoice.rates}
    for rate, (net_field, vat_field, pln_field) in TOTAL_FIELDS.items():
        total = next((t for t in invoice.rates if t["rate"] == rate), None)
        if total is None:
            continue
        _sub(fa, net_field, amount(Decimal(total["net"])))
        if vat_field is not None:
            _sub(fa, vat_field, amount(Decimal(total["vat"])))
            if pln_field is not None and total.get("vat_pln") is not None:
                _sub(fa, pln_field, amount(Decimal(total["vat_pln"])))
    _sub(fa, "P_15", amount(invoice.gross))
    _annotations(fa, invoice, used)
    _sub(fa, "RodzajFaktury", invoice.kind)
    if invoice.kind == "KOR" and corrected is not None:
        _sub(fa, "PrzyczynaKorekty", invoice.reason or "korekta")
        # 2: in the period of the correction (a return, a later price cut)
        _sub(fa, "TypKorekty", str(getattr(invoice, "correction_type", None) or 2))
        data = _sub(fa, "DaneFaKorygowanej")
        _sub(data, "DataWystFaKorygowanej", corrected.issue_date.isoformat())
        _sub(data, "NrFaKorygowanej", corrected.number or "-")
        if corrected_ksef:
            _sub(data, "NrKSeF", "1")
            _sub(data, "NrKSeFFaKorygowanej", corrected_ksef)
        else:
            _sub(data, "NrKSeFN", "1")
    if invoice.payment.get("receipt"):
        _sub(fa, "FP", "1")  # an invoice to a fiscal receipt (art. 109 ust. 3d)
    gross = invoice.basis == "gross"
    for line in lines:
        row = _sub(fa, "FaWiersz")
        _sub(row, "NrWierszaFa", str(line.line_no))
        line_sale = getattr(line, "sale_date", None)
        if line_sale is not None:
            _sub(row, "P_6A", line_sale.isoformat())
        _sub(row, "P_7", line.name)
        if line.sku:
            _sub(row, "Indeks", line.sku)
        _sub(row, "P_8A", line.unit)
        _sub(row, "P_8B", plain(line.quantity))
        if gross:
            _sub(row, "P_9B", plain(line.unit_gross))
            _sub(row, "P_11A", amount(line.gross))
        else:
            _sub(row, "P_9A", plain(line.unit_net))
            _sub(row, "P_11", amount(line.net))
        _sub(row, "P_12", line.rate)
        if invoice.exchange_rate is not None and PERCENT.get(line.rate) is not None:  # type: ignore[call-overload]
            _sub(row, "KursWaluty", plain(invoice.exchange_rate))
    _payment(fa, invoice)
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")
