"""EDI++ (InsERT's "EPP") files: the text format Subiekt GT and Rewizor GT import documents from.

Written after InsERT's published "Komunikacja EDI++" structure: its 1.05 tables, which 1.11 files
keep as far as the public material shows (a 24-field [INFO], a 62-field document header, a 22-field
position for Subiekt-to-Subiekt communication, an 18-field VAT-table row for the accounting office,
i.e. Rewizor; 1.11 appends the ISO country code to a contractor's card):

- sections start with a label line (``[INFO]``, ``[NAGLOWEK]``, ``[ZAWARTOSC]``), records follow one
  per line, fields separated by commas; an empty line follows each section, so the file ends with an
  empty line (its last bytes are CRLF CRLF);
- text is in double quotes (a quote inside doubled), amounts have a dot and 4 decimals, dates are
  ``yyyymmddhhnnss``, logical values 0/1;
- the file is windows-1250 with CRLF line ends (InsERT reads it with the Jet text driver,
  ``CharacterSet=ANSI``). A character windows-1250 lacks becomes ``?``; line breaks inside a text
  become spaces.

Dates are the ERP's local dates (Europe/Warsaw unless configured): an order issued at 23:30 UTC on
31 December is a document of 1 January in Poland, and of its VAT period.
"""

from __future__ import annotations

import csv
import io
import unicodedata
from collections.abc import Iterable, Sequence
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, field_validator

from connectors.erp.documents import reference_hash
from hub.kernel.errors import PermanentError
from hub.kernel.ports.erp import DocumentBuyer, RestockDocument, SalesDocument
from hub.kernel.ports.invoicing import RegisterInvoice
from hub.kernel.vat import VAT_PERCENT, VatRate, normalize_nip

VERSION = "1.11"
ENCODING = "windows-1250"
CRLF = "\r\n"
# "Cel komunikacji" of [INFO]: 0 = the accounting office (Rewizor: VAT table), 3 = another purpose
# (Subiekt: document positions)
_PURPOSE = {"subiekt": 3, "rewizor": 0}
# EDI++ VAT symbol and percentage: a rate with a percentage as it is (hub.kernel.vat); the structure's
# own symbols and negative codes for the codes without VAT
_NO_VAT_CODES: dict[VatRate, tuple[str, Decimal]] = {
    "zw": ("zw", Decimal(-1)), "np": ("npo", Decimal(-4)), "oo": ("oo", Decimal(-5)),
}
_VAT_CODES: dict[VatRate, tuple[str, Decimal]] = {
    code: (code, percent) if percent is not None else _NO_VAT_CODES[code] for code, percent in VAT_PERCENT.items()
}
_DOCUMENT_TYPE = {"invoice": "FS", "receipt": "PA"}
MAX_SYMBOL = 20  # a product symbol (Subiekt's "Kod identyfikacyjny towaru")


class EppSender(BaseModel):
    """The seller, as the [INFO] section names the file's sender (Rewizor checks the NIP against
    the company it imports into)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = ""
    short_name: str = ""  # default: name
    nip: str = ""
    street: str = ""
    postal_code: str = ""
    city: str = ""
    code: str = ""  # "Kod identyfikacyjny nadawcy", if the ERP wants one


class EppOptions(BaseModel):
    """``[connectors.NAME.epp]``: how EDI++ files are filled."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    # subiekt: documents with positions (stock moves in Subiekt); rewizor: VAT tables for the books
    target: Literal["subiekt", "rewizor"] = "subiekt"
    sender: EppSender = EppSender()
    warehouse: str = ""  # the warehouse symbol in the ERP ("MAG"); empty: the ERP's default
    unit: str = Field("szt.", max_length=10)  # unit of measure of the positions
    place: str = ""  # "Miejsce wystawienia"
    issuer: str = ""  # "Wystawił"
    category: str = ""  # the ERP's document category, e.g. "Sprzedaż internetowa"
    # the ERP's payment form names: by the channel's payment method (lower case), then "cod" for
    # cash on delivery, then "default"
    payment_forms: dict[str, str] = Field(default_factory=lambda: {"cod": "Pobranie", "default": "Przelew"})
    timezone: str = "Europe/Warsaw"

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError("not a time zone name (e.g. Europe/Warsaw)") from None
        return value

    @field_validator("payment_forms")
    @classmethod
    def _lower_keys(cls, value: dict[str, str]) -> dict[str, str]:
        return {k.strip().lower(): v for k, v in value.items()}

    def payment_form(self, method: str | None, cod: bool) -> str:
        keys = ([method.strip().lower()] if method else []) + (["cod"] if cod else []) + ["default"]
        return next((self.payment_forms[k] for k in keys if k in self.payment_forms), "")


class _Text(str):
    """A text field: always quoted."""


def _clean(value: str, limit: int) -> str:
    text = unicodedata.normalize("NFC", value)
    text = " ".join(text.replace("\r", " ").replace("\n", " ").replace("\t", " ").split())
    return text[:limit]


def T(value: str | None, limit: int = 255) -> _Text:  # a text field, named as the structure's tables type it
    return _Text(_clean(value or "", limit))


def _field(value: Any) -> str:
    if isinstance(value, _Text):
        return '"' + value.replace('"', '""') + '"'
    if value is None:
        return ""
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, Decimal):
        return str(value.quantize(Decimal("0.0001"), rounding=ROUND_HALF_UP))
    if isinstance(value, datetime):
        return value.strftime("%Y%m%d%H%M%S")
    if isinstance(value, int):
        return str(value)
    raise TypeError(f"no EDI++ form for {type(value).__name__}")


def _record(fields: Sequence[Any]) -> str:
    return ",".join(_field(f) for f in fields)


def _encode(sections: Sequence[tuple[str, Sequence[Sequence[Any]]]]) -> bytes:
    """Every line, the last one included, ends with CRLF; an empty line follows each section, so the
    file ends with one (CRLF CRLF), as the structure wants."""
    out: list[str] = []
    for label, records in sections:
        out.append(f"[{label}]")
        out.extend(_record(r) for r in records)
        out.append("")
    return "".join(line + CRLF for line in out).encode(ENCODING, errors="replace")


def _day(moment: datetime) -> datetime:
    return moment.replace(hour=0, minute=0, second=0, microsecond=0)


def _country_name(code: str) -> str:
    return "Polska" if code.upper() == "PL" else code.upper()


def _info(options: EppOptions, moment: datetime) -> list[Any]:
    sender = options.sender
    nip = normalize_nip(sender.nip)
    day = _day(moment)
    return [
        T(VERSION, 50), _PURPOSE[options.target], 1250, T("hub", 255), T(sender.code, 20),
        T(sender.short_name or sender.name, 40), T(sender.name, 80), T(sender.city, 30), T(sender.postal_code, 6),
        T(sender.street, 50), T(nip, 13),
        T(options.warehouse, 20), T("", 40), T("", 255), T("", 5),
        True, day, day,  # the data are of the document's day
        T(options.issuer or "hub", 35), moment.replace(microsecond=0),
        T("Polska", 50), T("PL", 2), T(f"PL{nip}" if nip.isdigit() else nip, 20), False,
    ]


def _number(reference: str, doc_type: str, stem: str) -> str:
    """The document's full number (30 characters at most, the type's mnemonic first): the file's
    stem when it fits, else a stable ``HUB-`` and a hash of the reference. Unique per reference, so
    the ERP's own check for an already imported number also refuses a second copy."""
    full = f"{doc_type} {stem}"
    return full if len(full) <= 30 else f"{doc_type} HUB-{reference_hash(reference, 12).upper()}"


def _header(doc_type: str, *, status: int, number: str, order_number: str, buyer: list[Any], options: EppOptions,
            moment: datetime, positions: int, net: Decimal, vat: Decimal, gross: Decimal, payment: str,
            remarks: str, comment: str, basis: str, currency: str, country: list[Any], sold: datetime | None = None,
            corrected: tuple[str, datetime] | None = None, rate: Decimal = Decimal(1),
            due: datetime | None = None) -> list[Any]:
    """The 62 fields of a document header (table 3 of the structure); a correction (KFS) names the document it
    corrects and its date (fields 8 and 9)."""
    day = _day(moment)
    zero = Decimal(0)
    return [
        T(doc_type, 3), status, 0, 0, T("", 20), T("", 10), T(number, 30),
        T(corrected[0] if corrected else "", 30), _day(corrected[1]) if corrected else None,
        T(order_number, 30), T("", 3),
        *buyer,  # 12-18: code, short name, full name, city, postal code, street, NIP
        T(options.category, 30), T("", 50), T(options.place, 30),
        day, _day(sold) if sold else day, day,  # issued, sold, received
        positions, False, T("", 20),  # positions; priced gross, not net; active price
        net, vat, gross, zero,  # value net, VAT, gross; cost
        T("", 30), zero, T(payment, 30), _day(due) if due else day,  # discount name and percent; payment, due
        zero, gross,  # paid on receipt of the document; to pay
        0, 0, True, 0,  # rounding of the amount to pay and of VAT to 1 grosz; VAT table recomputed; no special status
        T(options.issuer, 35), T("", 35), T(basis, 35), zero, zero,  # issuer, receiver, basis; packaging
        T(currency, 3), rate,
        T(remarks, 255), T(comment, 50), T("", 50), T("", 50), 0, False, 0,  # ... import flag; export; domestic
        T("", 50), zero, T("", 50), zero,  # card and credit payments
        *country,  # 60-62: the buyer's country, EU prefix, EU buyer
    ]


def _buyer(buyer: DocumentBuyer | None) -> tuple[list[Any], list[Any]]:
    """Header fields 12-18 and 60-62 for an invoice's buyer (empty for None: a receipt's anonymous one)."""
    if buyer is None:
        return [T("")] * 7, [T(""), T(""), False]
    nip, company, address = buyer.nip, buyer.company, buyer.address
    street, city, postal = ("", "", "") if address is None else (address.street, address.city, address.postal_code)
    return ([T(nip, 20), T(company, 40), T(company, 255), T(city, 30), T(postal, 6), T(street, 50), T(nip, 20)],
            [T(_country_name(buyer.country), 50), T(buyer.eu_vat_prefix, 2), buyer.intra_eu])


def _contractor(buyer: DocumentBuyer, email: str | None) -> list[Any]:
    """A KONTRAHENCI record (table 10, and the ISO country code 1.11 appends), so that the ERP can
    create or update the invoice's buyer."""
    nip, company, address = buyer.nip, buyer.company, buyer.address
    street, city, postal, phone = ("", "", "", None) if address is None else (
        address.street, address.city, address.postal_code, address.phone)
    return [
        2, T(nip, 40), T(company, 40), T(company, 80), T(city, 30), T(postal, 6), T(street, 50), T(nip, 20),
        T("", 20), T(phone, 50), T("", 50), T("", 50), T(email, 50), T("", 50), T("", 50), T("", 5), T("", 5),
        *[T("", 50)] * 8, T("", 50), T("", 50),
        T(_country_name(buyer.country), 50), T(buyer.eu_vat_prefix, 2), buyer.intra_eu, T(buyer.country, 2),
    ]


def sales_epp(document: SalesDocument, options: EppOptions, *, stem: str) -> bytes:
    """One sales document as the hub decided it: a receipt (PA) or an invoice (FS) naming its buyer;
    with Subiekt positions or a Rewizor VAT table as ``options.target`` says."""
    order = document.order
    doc_type = _DOCUMENT_TYPE[document.kind]
    if order.currency.upper() != "PLN":
        raise PermanentError(
            f"sales document {document.reference}: EDI++ documents in {order.currency} need the NBP exchange "
            "rate, which the hub does not have; book it by hand or leave \"epp\" out of outbox_formats")
    moment = document.issued_at.astimezone(ZoneInfo(options.timezone)).replace(tzinfo=None)
    named = document.buyer if document.kind == "invoice" else None  # a receipt's buyer is the anonymous one
    buyer, country = _buyer(named)
    payment = options.payment_form(order.payment.method, order.payment.cash_on_delivery)
    header = _header(
        doc_type, status=1, number=_number(document.reference, doc_type, stem), order_number=order.external_id,
        buyer=buyer, options=options, moment=moment, positions=len(document.lines), net=document.net,
        vat=document.vat, gross=document.gross, payment=payment, remarks=document.reference,
        comment=f"{order.channel_account} {order.external_id}", basis="", currency="PLN", country=country)
    if options.target == "rewizor":
        content = [_vat_row(r.vat_rate, r.net, r.vat, r.gross) for r in document.rates]
    else:
        content = [_position(line.line_no, line.sku, line.name, line.quantity, line.unit_price_net,
                             line.unit_price_gross, line.vat_rate, line.net, line.vat, line.gross, options.unit,
                             document.reference)
                   for line in document.lines]
    sections: list[tuple[str, Sequence[Sequence[Any]]]] = [
        ("INFO", [_info(options, moment)]), ("NAGLOWEK", [header]), ("ZAWARTOSC", content)]
    if named is not None and options.target == "subiekt":
        sections += [("NAGLOWEK", [[T("KONTRAHENCI")]]), ("ZAWARTOSC", [_contractor(named, order.buyer_email)])]
    return _encode(sections)


def _vat_row(rate: VatRate, net: Decimal, vat: Decimal, gross: Decimal) -> list[Any]:
    """A VAT-table row for the accounting office (table 6B: 18 fields; no advances, no margin)."""
    symbol, percent = _VAT_CODES[rate]
    zero = Decimal(0)
    return [T(symbol, 6), percent, net, vat, gross, net, vat, gross, *[zero] * 10]


def _position(number: int, sku: str | None, name: str, quantity: int, unit_net: Decimal, unit_gross: Decimal,
              rate: VatRate, net: Decimal, vat: Decimal, gross: Decimal, unit: str, reference: str) -> list[Any]:
    """A document position (table 7: 22 fields). A line without a SKU is a one-time service under its name."""
    if sku is not None and len(sku) > MAX_SYMBOL:
        raise PermanentError(f"{reference}, line {number}: SKU {sku!r} is longer than the {MAX_SYMBOL} characters "
                             "of an EDI++ product symbol; shorten it in the ERP or leave \"epp\" out of "
                             "outbox_formats")
    zero = Decimal(0)
    percent = _VAT_CODES[rate][1]
    qty = Decimal(quantity)
    service = sku is None
    return [
        number, 2 if service else 1, T(sku or "", MAX_SYMBOL),
        True, True, False, False, zero, zero,  # no discount
        T(unit, 10), qty, qty,
        zero, unit_net, unit_gross,  # stock price (the ERP's), net and gross unit price
        percent, net, vat, gross, zero,
        T(name if service else "", 250), T(name if service else "", 50),
    ]


def restock_epp(document: RestockDocument, options: EppOptions, *, stem: str, now: datetime) -> bytes | None:
    """Returned goods as an internal receipt (PW) put aside (status "odłożony") for the operator to
    check and confirm: a PW puts goods back into stock without touching sales or VAT (the correction
    of the sale, KFS or ZW, names the ERP's own sales document, so it stays the operator's). None for
    ``target = "rewizor"``: warehouse documents have no VAT table and nothing to book."""
    if options.target == "rewizor":
        return None
    moment = now.astimezone(ZoneInfo(options.timezone)).replace(tzinfo=None)
    positions = []
    zero = Decimal(0)
    for number, line in enumerate(document.lines, 1):
        if line.sku is None:
            raise PermanentError(f"restock {document.reference}, line {number}: no SKU, so nothing the ERP "
                                 "could put back into stock; restock it by hand")
        positions.append(_position(number, line.sku, "", line.quantity, zero, zero, "0", zero, zero, zero,
                                   options.unit, document.reference))
    warehouse_options = options.model_copy(update={"warehouse": document.warehouse or options.warehouse})
    buyer, country = _buyer(None)
    header = _header(
        "PW", status=0, number=_number(document.reference, "PW", stem), order_number=document.order_reference,
        buyer=buyer, options=warehouse_options, moment=moment, positions=len(positions), net=zero, vat=zero,
        gross=zero, payment="", remarks=document.reference, comment=f"zwrot {document.order_reference}",
        basis=f"zwrot {document.order_reference}", currency="PLN", country=country)
    return _encode([("INFO", [_info(warehouse_options, moment)]), ("NAGLOWEK", [header]), ("ZAWARTOSC", positions)])


def stored_reference(reference: str) -> str:
    """The reference as an EDI++ file carries it in the remarks (cleaned, cut, through windows-1250)."""
    return _clean(reference, 255).encode(ENCODING, errors="replace").decode(ENCODING)


def reference_of(data: bytes) -> str | None:
    """The hub reference an EDI++ file of ours carries (the remarks of its first document), or None."""
    try:
        text = data.decode(ENCODING)
    except UnicodeDecodeError:
        return None
    lines = text.split(CRLF)
    try:
        record = lines[lines.index("[NAGLOWEK]") + 1]
        fields = next(csv.reader(io.StringIO(record)))
    except (ValueError, StopIteration, csv.Error):
        return None
    return fields[48] if len(fields) == 62 else None


# FA(3)'s rates as EDI++ knows them: one 0 %, one "not subject"
_FA3_RATE: dict[str, VatRate] = {"23": "23", "8": "8", "5": "5", "0 KR": "0", "0 WDT": "0", "0 EX": "0", "zw": "zw",
                                 "np I": "np", "np II": "np", "oo": "oo"}
_INVOICE_TYPE = {"VAT": "FS", "KOR": "KFS"}
_CASH = {"cash": "Gotówka", "card": "Karta"}


def _at(day: Any) -> datetime:
    """A calendar day of the invoice (already the seller's) as the naive midnight EDI++ dates are written from."""
    return datetime.combine(day, datetime.min.time())


def invoice_sections(invoice: RegisterInvoice, options: EppOptions) -> bytes:
    """One issued invoice (FS) or correction (KFS): its header, then positions for Subiekt or the VAT table
    for Rewizor. The number is the invoice's own (the hub's numbering is the legal one); a foreign currency
    carries its NBP rate."""
    doc_type = _INVOICE_TYPE[invoice.kind]
    tax_id = invoice.buyer_tax_id
    country_code = (invoice.buyer_country or "PL").upper()
    buyer = [T(tax_id, 20), T(invoice.buyer_name, 40), T(invoice.buyer_name, 255), T(invoice.buyer_city, 30),
             T(invoice.buyer_postal_code, 6), T(invoice.buyer_street, 50), T(tax_id, 20)]
    prefix = tax_id[:2] if tax_id[:2].isalpha() else ""
    country = [T(_country_name(country_code), 50), T(prefix, 2), country_code != "PL" and bool(prefix)]
    payment = _CASH.get(invoice.payment_form) or options.payment_form(invoice.payment_form, False)
    header = _header(
        doc_type, status=1, number=invoice.number, order_number="", buyer=buyer, options=options,
        moment=_at(invoice.issue_date), positions=len(invoice.lines), net=invoice.net, vat=invoice.vat,
        gross=invoice.gross, payment=payment, remarks=invoice.ksef_number or "", comment=invoice.reason or "",
        basis=invoice.reason or "", currency=invoice.currency, country=country, sold=_at(invoice.sale_date),
        corrected=(invoice.corrected_number or "", _at(invoice.corrected_issue_date))
        if invoice.kind == "KOR" and invoice.corrected_issue_date else None,
        rate=invoice.exchange_rate or Decimal(1), due=_at(invoice.due) if invoice.due else None)
    if options.target == "rewizor":
        content = [_vat_row(_FA3_RATE[r.rate], r.net, r.vat, r.gross) for r in invoice.rates]
    else:
        content = [_position(line.line_no, line.sku if line.sku and len(line.sku) <= MAX_SYMBOL else None, line.name,
                             line.quantity, line.unit_net, line.unit_gross,  # type: ignore[arg-type]
                             _FA3_RATE[line.rate], line.net, line.vat, line.gross, line.unit or options.unit,
                             invoice.number)
                   for line in invoice.lines]
    return _encode([("NAGLOWEK", [header]), ("ZAWARTOSC", content)])


def write_invoices(handle: Any, options: EppOptions, invoices: Iterable[RegisterInvoice], now: datetime) -> int:
    """An EDI++ file of many invoices, written as they come: [INFO] once, then each document."""
    moment = now.astimezone(ZoneInfo(options.timezone)).replace(tzinfo=None)
    handle.write(_encode([("INFO", [_info(options, moment)])]))
    count = 0
    for invoice in invoices:
        handle.write(invoice_sections(invoice, options))
        count += 1
    return count
