"""An FA(3) document read back into the hub's invoice model, for what the hub issues: VAT invoices and
corrections by difference lines, priced net or gross, in any currency, with the buyer identified by a
NIP, an EU VAT number, another tax id or none.

What the hub does not issue is refused with the reason (``Unsupported``): advance and settlement
invoices (ZAL, ROZ and their corrections), simplified ones (UPR), a period instead of a date of sale,
third parties (Podmiot3), corrections by before/after line pairs (StanPrzed), margin schemes, orders
(Zamowienie), settlements (Rozliczenie), partial payments. Data that changes no amount and that the hub
does not keep (footer, extra descriptions, line ids, CN/GTIN/GTU codes, transport terms) is dropped and
listed in ``ignored``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Any

from lxml import etree

from hub.invoicing.fa3 import PAYMENT_FORMS
from hub.invoicing.rates import TOTAL_FIELDS
from hub.invoicing.schemas import FA3_NS, SAFE_PARSER

NS = {"f": FA3_NS}
# elements whose meaning the hub's model cannot carry
UNSUPPORTED = {
    "Podmiot3": "third parties (Podmiot3)", "OkresFa": "a period of sale instead of a date (OkresFa)",
    "StanPrzed": "corrections by before/after line pairs (StanPrzed)", "P_13_11": "the margin scheme",
    "P_PMarzy": "the margin scheme", "Zamowienie": "an order's lines (Zamowienie, advance invoices)",
    "Rozliczenie": "settlements (Rozliczenie: charges and deductions)", "Podmiot2K": "a corrected buyer",
    "FakturaZaliczkowa": "advance invoices settled", "ZnacznikZaplatyCzesciowej": "partial payments",
    "OkresFaKorygowanej": "a rebate for a period (OkresFaKorygowanej)", "P_13_5": "OSS procedure totals",
    "P_12_XII": "the OSS rate", "P_13_4": "the taxi flat rate",
}
SUPPORTED_KINDS = ("VAT", "KOR")


class Unsupported(ValueError):
    """The document uses what the hub does not issue; the message says what."""


@dataclass
class ReadLine:
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
    sale_date: date | None = None  # a line's own date of sale (P_6A), when lines differ


@dataclass
class ReadInvoice:
    kind: str
    number: str | None
    issue_date: date
    sale_date: date
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
    lines: list[ReadLine] = field(default_factory=list)
    corrected_number: str | None = None
    corrected_date: date | None = None
    corrected_ksef: str | None = None
    correction_type: int | None = None
    ignored: set[str] = field(default_factory=set)


def _text(node: etree._Element, path: str) -> str | None:
    found = node.find(path, NS)
    return None if found is None or found.text is None else found.text.strip()


def _decimal(node: etree._Element, path: str) -> Decimal | None:
    text = _text(node, path)
    return None if text is None else Decimal(text)


def _address(node: etree._Element | None) -> dict[str, Any] | None:
    if node is None:
        return None
    return {"country": _text(node, "f:KodKraju"), "street": _text(node, "f:AdresL1"), "line2": _text(node, "f:AdresL2")}


_PAYMENT_FORMS = {str(code): form for form, code in PAYMENT_FORMS.items()}
_KNOWN = {"Naglowek", "KodFormularza", "WariantFormularza", "DataWytworzeniaFa", "SystemInfo", "Podmiot1",
          "Podmiot2", "DaneIdentyfikacyjne", "NIP", "Nazwa", "Adres", "KodKraju", "AdresL1", "AdresL2",
          "DaneKontaktowe", "Email", "Telefon", "JST", "GV", "KodUE", "NrVatUE", "NrID", "BrakID", "Fa", "KodWaluty",
          "P_1", "P_1M", "P_2", "P_6", "P_6A", "P_15", "Adnotacje", "P_16", "P_17", "P_18", "P_18A", "Zwolnienie",
          "P_19", "P_19A", "P_19B", "P_19C", "P_19N", "NoweSrodkiTransportu", "P_22N", "P_23", "PMarzy",
          "P_PMarzyN", "RodzajFaktury", "PrzyczynaKorekty", "TypKorekty", "DaneFaKorygowanej",
          "DataWystFaKorygowanej", "NrFaKorygowanej", "NrKSeF", "NrKSeFFaKorygowanej", "NrKSeFN", "FP", "FaWiersz",
          "NrWierszaFa", "P_7", "Indeks", "P_8A", "P_8B", "P_9A", "P_9B", "P_11", "P_11A", "P_12", "KursWaluty",
          "Platnosc", "Zaplacono", "DataZaplaty", "TerminPlatnosci", "Termin", "FormaPlatnosci", "RachunekBankowy",
          "NrRB", "Faktura"} | {name for fields in TOTAL_FIELDS.values() for name in fields if name}


def read(xml: bytes) -> ReadInvoice:
    """The document in the hub's model; Unsupported names the first thing the hub does not issue."""
    root = etree.fromstring(xml, SAFE_PARSER)
    names = {etree.QName(element).localname for element in root.iter() if isinstance(element.tag, str)}
    for name, what in UNSUPPORTED.items():
        if name in names:
            raise Unsupported(what)
    fa = root.find("f:Fa", NS)
    assert fa is not None
    kind = _text(fa, "f:RodzajFaktury") or ""
    if kind not in SUPPORTED_KINDS:
        raise Unsupported(f"invoices of kind {kind} (the hub issues VAT and KOR)")
    rows = fa.findall("f:FaWiersz", NS)
    if not rows:
        raise Unsupported("a correction without lines (a change of the buyer's data)")
    gross_priced = any(row.find("f:P_11A", NS) is not None for row in rows)
    if gross_priced and any(row.find("f:P_11", NS) is not None for row in rows):
        raise Unsupported("lines priced net and gross in one invoice")
    issue_date = date.fromisoformat(_text(fa, "f:P_1") or "")
    line_dates = {_text(row, "f:P_6A") for row in rows} - {None}
    per_line = len(line_dates) > 1  # each line says its own date of sale (P_6A)
    sale = _text(fa, "f:P_6") or (line_dates.pop() if len(line_dates) == 1 else None)
    lines: list[ReadLine] = []
    rate: Decimal | None = None
    for row in rows:
        quantity = _decimal(row, "f:P_8B")
        value = _decimal(row, "f:P_11A" if gross_priced else "f:P_11")
        unit_price = _decimal(row, "f:P_9B" if gross_priced else "f:P_9A")
        code = _text(row, "f:P_12")
        if quantity is None or value is None or unit_price is None or code is None:
            raise Unsupported("a line without its quantity, unit price, value or rate")
        rate = _decimal(row, "f:KursWaluty") or rate
        lines.append(ReadLine(line_no=int(_text(row, "f:NrWierszaFa") or 0), name=_text(row, "f:P_7") or "",
                              sku=_text(row, "f:Indeks"), unit=_text(row, "f:P_8A") or "szt.", quantity=quantity,
                              rate=code, unit_net=unit_price, unit_gross=unit_price, net=value, gross=value,
                              sale_date=date.fromisoformat(_text(row, "f:P_6A") or "") if per_line else None))
    totals: list[dict[str, Any]] = []
    for code, (net_field, vat_field, pln_field) in TOTAL_FIELDS.items():
        net = _decimal(fa, f"f:{net_field}")
        if net is None:
            continue
        vat = _decimal(fa, f"f:{vat_field}") if vat_field else Decimal(0)
        pln = _decimal(fa, f"f:{pln_field}") if pln_field else None
        totals.append({"rate": code, "net": str(net), "vat": str(vat or 0), "gross": str(net + (vat or 0)),
                       "vat_pln": None if pln is None else str(pln)})
    seller_node = root.find("f:Podmiot1", NS)
    buyer_node = root.find("f:Podmiot2", NS)
    assert seller_node is not None and buyer_node is not None
    seller = {"nip": _text(seller_node, "f:DaneIdentyfikacyjne/f:NIP"),
              "name": _text(seller_node, "f:DaneIdentyfikacyjne/f:Nazwa"),
              **(_address(seller_node.find("f:Adres", NS)) or {}),
              "email": _text(seller_node, "f:DaneKontaktowe/f:Email"),
              "phone": _text(seller_node, "f:DaneKontaktowe/f:Telefon"), "place": _text(fa, "f:P_1M"),
              "exemption_basis": _text(fa, "f:Adnotacje/f:Zwolnienie/f:P_19A")
              or _text(fa, "f:Adnotacje/f:Zwolnienie/f:P_19B") or _text(fa, "f:Adnotacje/f:Zwolnienie/f:P_19C")}
    ident = buyer_node.find("f:DaneIdentyfikacyjne", NS)
    assert ident is not None
    buyer: dict[str, Any] = {"name": _text(ident, "f:Nazwa"), "nip": _text(ident, "f:NIP"),
                             "eu_code": _text(ident, "f:KodUE"), "eu_vat": _text(ident, "f:NrVatUE"),
                             "country": _text(ident, "f:KodKraju"), "tax_id": _text(ident, "f:NrID"),
                             "address": _address(buyer_node.find("f:Adres", NS)),
                             "email": _text(buyer_node, "f:DaneKontaktowe/f:Email")}
    payment: dict[str, Any] = {"form": _PAYMENT_FORMS.get(_text(fa, "f:Platnosc/f:FormaPlatnosci") or "", "transfer"),
                               "paid_at": _text(fa, "f:Platnosc/f:DataZaplaty"),
                               "due": _text(fa, "f:Platnosc/f:TerminPlatnosci/f:Termin"),
                               "bank_account": _text(fa, "f:Platnosc/f:RachunekBankowy/f:NrRB"),
                               "receipt": _text(fa, "f:FP") == "1"}
    if fa.find("f:Platnosc/f:FormaPlatnosci", NS) is None:
        payment["form"] = None
    invoice = ReadInvoice(
        kind=kind, number=_text(fa, "f:P_2"), issue_date=issue_date,
        sale_date=date.fromisoformat(sale) if sale else issue_date, currency=_text(fa, "f:KodWaluty") or "PLN",
        exchange_rate=rate, basis="gross" if gross_priced else "net", gross=_decimal(fa, "f:P_15") or Decimal(0),
        rates=totals, buyer=buyer, seller=seller, payment=payment,
        split_payment=_text(fa, "f:Adnotacje/f:P_18A") == "1", reason=_text(fa, "f:PrzyczynaKorekty"), lines=lines,
        corrected_number=_text(fa, "f:DaneFaKorygowanej/f:NrFaKorygowanej"),
        corrected_date=date.fromisoformat(_text(fa, "f:DaneFaKorygowanej/f:DataWystFaKorygowanej") or "2000-01-01")
        if kind == "KOR" else None,
        corrected_ksef=_text(fa, "f:DaneFaKorygowanej/f:NrKSeFFaKorygowanej"),
        correction_type=int(_text(fa, "f:TypKorekty") or 2) if kind == "KOR" else None,
        ignored=names - _KNOWN)
    return invoice
