"""What the accountant loads, for one month of issued invoices (``hub invoices export``):

- ``fa3``: each invoice's FA(3) document as stored (the one sent to KSeF), one file per invoice;
- ``jpk_fa``: JPK_FA(4), validated against its schema before it is written;
- ``csv``: the sales register, a row per invoice: number, dates, buyer, net and VAT per rate, currency
  and rate, VAT in PLN, the KSeF number or the marker of a document outside KSeF (``BFK``);
- ``epp`` (and any other accounting program's format): written by the export connector of that kind;
- ``pdf``: the buyer's invoice, one file per invoice (hub.invoicing.pdf).

Every format reads the month in pages of ``PAGE`` invoices (never the whole month in memory) and writes
as it reads; a file is written under a temporary name and renamed when whole.
"""

from __future__ import annotations

import csv
import os
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal

from lxml import etree
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from hub.invoicing.fa3 import amount, plain
from hub.invoicing.models import Invoice, InvoiceLine
from hub.invoicing.rates import RATES
from hub.invoicing.schemas import jpk_fa4, problems
from hub.kernel.errors import HubError
from hub.kernel.ports.invoicing import ExportSeller, InvoiceExport, RegisterInvoice, RegisterLine, RegisterRate
from hub.platform.config import InvoicingSettings
from hub.platform.db import transaction

Format = Literal["fa3", "jpk_fa", "csv", "epp", "pdf"]
FORMATS: tuple[Format, ...] = ("fa3", "jpk_fa", "csv", "epp", "pdf")
CONNECTOR_FORMATS = ("epp",)  # written by an export connector of that kind (hub.kernel.ports.invoicing)
PAGE = 500
OUTSIDE_KSEF = "BFK"  # JPK_V7's marker of an invoice issued outside KSeF
JPK_NS = "http://jpk.mf.gov.pl/wzor/2022/02/17/02171/"
JPK_ETD = "http://crd.gov.pl/xml/schematy/dziedzinowe/mf/2018/08/24/eD/DefinicjeTypy/"
_JPK_NSMAP = {"tns": JPK_NS, "etd": JPK_ETD}
EXPORTED_STATES = ("issued", "sending", "sent", "accepted", "outside_ksef")  # a rejected one is not issued


@dataclass(frozen=True)
class Exported:
    files: list[Path]
    invoices: int


def month(period: str) -> tuple[date, date]:
    """The first and the last day of ``YYYY-MM``."""
    year, number = (int(part) for part in period.split("-"))
    first = date(year, number, 1)
    following = date(year + number // 12, number % 12 + 1, 1)
    return first, date.fromordinal(following.toordinal() - 1)


def pages(engine: Engine, first: date, last: date) -> Iterator[list[tuple[Invoice, list[InvoiceLine]]]]:
    """The month's issued invoices by series and number, a page at a time, each with its lines."""
    after: tuple[str, str, int] = ("", "", 0)
    while True:
        with transaction(engine) as session:
            invoices = list(session.execute(
                select(Invoice).where(Invoice.issue_date >= first, Invoice.issue_date <= last,
                                      Invoice.number.is_not(None), Invoice.state.in_(EXPORTED_STATES),
                                      _after(after))
                .order_by(Invoice.series, Invoice.period, Invoice.seq).limit(PAGE)).scalars())
            if not invoices:
                return
            lines: dict[int, list[InvoiceLine]] = {invoice.id: [] for invoice in invoices}
            for line in session.execute(select(InvoiceLine).where(InvoiceLine.invoice_id.in_(list(lines)))
                                        .order_by(InvoiceLine.invoice_id, InvoiceLine.line_no)).scalars():
                lines[line.invoice_id].append(line)
            corrected = _corrected(session, invoices)
        for invoice in invoices:
            number, issued = corrected.get(invoice.corrects_id, (None, None))
            invoice.corrected_number = number  # type: ignore[attr-defined]
            invoice.corrected_issue_date = issued  # type: ignore[attr-defined]
        last_one = invoices[-1]
        after = (last_one.series, last_one.period or "", last_one.seq or 0)
        yield [(invoice, lines[invoice.id]) for invoice in invoices]


def _after(after: tuple[str, str, int]) -> Any:
    from sqlalchemy import tuple_

    return tuple_(Invoice.series, Invoice.period, Invoice.seq) > after


def _corrected(session: Session, invoices: list[Invoice]) -> dict[int | None, tuple[str | None, date | None]]:
    ids = {invoice.corrects_id for invoice in invoices if invoice.corrects_id is not None}
    if not ids:
        return {}
    return {row.id: (row.number, row.issue_date) for row in session.execute(
        select(Invoice.id, Invoice.number, Invoice.issue_date).where(Invoice.id.in_(ids)))}


def file_name(number: str, suffix: str) -> str:
    """A number as a file name: ``FV/12/03/2026`` -> ``FV_12_03_2026.xml``."""
    return re.sub(r"[^0-9A-Za-z.-]+", "_", number).strip("_") + suffix


class _Atomic:
    """A file written under a temporary name and renamed when whole."""

    def __init__(self, path: Path, mode: str = "wb", **kwargs: Any) -> None:
        self.path = path
        self.partial = path.with_name(path.name + ".partial")
        self.handle = open(self.partial, mode, **kwargs)  # noqa: SIM115

    def __enter__(self) -> Any:
        return self.handle

    def __exit__(self, kind: Any, *_: Any) -> None:
        self.handle.close()
        if kind is None:
            os.replace(self.partial, self.path)
        else:
            self.partial.unlink(missing_ok=True)


def export(engine: Engine, settings: InvoicingSettings, period: str, fmt: Format, out: Path,
           progress: Callable[[int], None] | None = None, *, now: datetime | None = None,
           exporter: InvoiceExport | None = None) -> Exported:
    """Write the month's invoices in ``fmt`` under ``out`` (made if missing); ``progress`` hears the count
    of invoices written so far, page by page. ``exporter`` writes the formats of CONNECTOR_FORMATS."""
    first, last = month(period)
    with transaction(engine) as session:
        issued = session.execute(select(func.count()).select_from(Invoice).where(
            Invoice.issue_date >= first, Invoice.issue_date <= last, Invoice.number.is_not(None),
            Invoice.state.in_(EXPORTED_STATES))).scalar_one()
    if not issued:
        raise HubError(f"no invoices issued in {period}: nothing to export")
    out.mkdir(parents=True, exist_ok=True)
    if fmt in CONNECTOR_FORMATS:
        if exporter is None:
            raise HubError(f"the {fmt} export is written by a connector: none was given")
        files, count = _through(exporter, engine, settings, period, first, last, out, progress or (lambda _: None),
                                now or datetime.now(UTC))
        return Exported(files, count)
    writer = {"fa3": _fa3_files, "csv": _register, "jpk_fa": _jpk_fa, "pdf": _pdf}[fmt]
    files, count = writer(engine, settings, period, first, last, out, progress or (lambda _: None),
                          now or datetime.now(UTC))
    return Exported(files, count)


def _fa3_files(engine: Engine, settings: InvoicingSettings, period: str, first: date, last: date, out: Path,
               progress: Callable[[int], None], now: datetime) -> tuple[list[Path], int]:
    files: list[Path] = []
    for page in pages(engine, first, last):
        for invoice, _ in page:
            path = out / file_name(invoice.number or "", ".xml")
            with _Atomic(path) as handle:
                handle.write((invoice.xml or "").encode("utf-8"))
            files.append(path)
        progress(len(files))
    return files, len(files)


def buyer_tax_id(buyer: dict[str, Any]) -> str:
    """The buyer's tax id as registers write it: a NIP, an EU VAT number with its prefix, another id, or ""."""
    return buyer.get("nip") or ((buyer.get("eu_code") or "") + (buyer.get("eu_vat") or "")) or \
        buyer.get("tax_id") or ""


def register_header() -> list[str]:
    columns = ["number", "kind", "corrected_number", "issue_date", "sale_date", "buyer", "buyer_tax_id",
               "buyer_country", "currency", "exchange_rate", "exchange_rate_date"]
    for rate in RATES:
        key = rate.replace(" ", "_").lower()
        columns += [f"net_{key}", f"vat_{key}"]
    return [*columns, "net", "vat", "gross", "vat_pln", "ksef_number", "state"]


def register_row(invoice: Invoice) -> list[str]:
    buyer = invoice.buyer
    tax_id = buyer_tax_id(buyer)
    row = [invoice.number or "", invoice.kind, getattr(invoice, "corrected_number", None) or "",
           invoice.issue_date.isoformat() if invoice.issue_date else "", invoice.sale_date.isoformat(),
           buyer.get("name") or "", tax_id, buyer.get("country") or "", invoice.currency,
           plain(invoice.exchange_rate) if invoice.exchange_rate is not None else "",
           invoice.exchange_rate_date.isoformat() if invoice.exchange_rate_date else ""]
    by_rate = {r["rate"]: r for r in invoice.rates}
    for rate in RATES:
        total = by_rate.get(rate)
        row += [total["net"], total["vat"]] if total else ["", ""]
    vat_pln = sum((Decimal(r["vat_pln"]) for r in invoice.rates if r.get("vat_pln")), Decimal("0.00"))
    if invoice.currency == "PLN":
        vat_pln = invoice.vat
    marker = invoice.ksef_number or (OUTSIDE_KSEF if invoice.state == "outside_ksef" else "")
    return [*row, amount(invoice.net), amount(invoice.vat), amount(invoice.gross), amount(vat_pln), marker,
            invoice.state]


def _register(engine: Engine, settings: InvoicingSettings, period: str, first: date, last: date, out: Path,
              progress: Callable[[int], None], now: datetime) -> tuple[list[Path], int]:
    path = out / f"rejestr_sprzedazy_{period}.csv"
    count = 0
    with _Atomic(path, "w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(register_header())
        for page in pages(engine, first, last):
            writer.writerows(register_row(invoice) for invoice, _ in page)
            count += len(page)
            progress(count)
    return [path], count


_JPK_RATE = {"23": "23", "8": "8", "5": "5", "0 KR": "0", "0 WDT": "0", "0 EX": "0", "zw": "zw", "np I": "np",
             "np II": "np", "oo": "oo"}
_JPK_TOTALS = (("23", "P_13_1", "P_14_1", "P_14_1W"), ("8", "P_13_2", "P_14_2", "P_14_2W"),
               ("5", "P_13_3", "P_14_3", "P_14_3W"))


def _jpk_seller(settings: InvoicingSettings) -> dict[str, str]:
    seller = settings.seller
    if seller is None:
        raise HubError("[invoicing.seller] is not configured")
    missing = [key for key in ("tax_office", "voivodeship", "county", "commune", "building")
               if not getattr(seller, key)]
    if missing:
        raise HubError(f"JPK_FA needs the seller's {', '.join(missing)}: set them in [invoicing.seller] "
                       "(tax_office is the 4-digit code of the tax office)")
    return seller.model_dump()


def _jpk_fa(engine: Engine, settings: InvoicingSettings, period: str, first: date, last: date, out: Path,
            progress: Callable[[int], None], now: datetime) -> tuple[list[Path], int]:
    seller = _jpk_seller(settings)
    path = out / f"JPK_FA_{period}.xml"
    tns, etd = f"{{{JPK_NS}}}", f"{{{JPK_ETD}}}"
    count = lines_count = 0
    total = lines_total = Decimal("0.00")
    with _Atomic(path) as handle, etree.xmlfile(handle, encoding="UTF-8") as xml:
        xml.write_declaration()
        with xml.element(f"{tns}JPK", nsmap=_JPK_NSMAP):
            header = etree.Element(f"{tns}Naglowek", nsmap=_JPK_NSMAP)
            form = etree.SubElement(header, f"{tns}KodFormularza", kodSystemowy="JPK_FA (4)", wersjaSchemy="1-0")
            form.text = "JPK_FA"
            for tag, text in (("WariantFormularza", "4"), ("CelZlozenia", "1"),
                              ("DataWytworzeniaJPK", now.strftime("%Y-%m-%dT%H:%M:%SZ")),
                              ("DataOd", first.isoformat()), ("DataDo", last.isoformat()),
                              ("KodUrzedu", seller["tax_office"])):
                etree.SubElement(header, f"{tns}{tag}").text = text
            xml.write(header)
            entity = etree.Element(f"{tns}Podmiot1", nsmap=_JPK_NSMAP)
            ident = etree.SubElement(entity, f"{tns}IdentyfikatorPodmiotu")
            etree.SubElement(ident, f"{tns}NIP").text = seller["nip"]
            etree.SubElement(ident, f"{tns}PelnaNazwa").text = seller["name"][:240]
            address = etree.SubElement(entity, f"{tns}AdresPodmiotu")
            for tag, value in (("KodKraju", "PL"), ("Wojewodztwo", seller["voivodeship"]),
                               ("Powiat", seller["county"]), ("Gmina", seller["commune"]),
                               ("Ulica", seller["street"]), ("NrDomu", seller["building"]),
                               ("NrLokalu", seller.get("flat")), ("Miejscowosc", seller["city"]),
                               ("KodPocztowy", seller["postal_code"])):
                if value:
                    etree.SubElement(address, f"{etd}{tag}").text = value
            xml.write(entity)
            # the lines follow all the invoices in JPK_FA: spooled to disk as they are read, copied after
            spool = out / f".JPK_FA_{period}.lines.partial"
            with open(spool, "wb") as lines_file:
                lines_file.write(b"<lines>")
                for page in pages(engine, first, last):
                    for invoice, lines in page:
                        xml.write(_jpk_invoice(tns, invoice, seller))
                        count += 1
                        total += invoice.gross
                        for line in lines:
                            row = _jpk_line(tns, invoice, line)
                            lines_file.write(etree.tostring(row))
                            lines_count += 1
                            lines_total += line.net
                    progress(count)
                lines_file.write(b"</lines>")
            control = etree.Element(f"{tns}FakturaCtrl", nsmap=_JPK_NSMAP)
            etree.SubElement(control, f"{tns}LiczbaFaktur").text = str(count)
            etree.SubElement(control, f"{tns}WartoscFaktur").text = amount(total)
            xml.write(control)
            with open(spool, "rb") as lines_file:
                for chunk in _elements(lines_file, tns):
                    xml.write(chunk)
            spool.unlink()
            line_control = etree.Element(f"{tns}FakturaWierszCtrl", nsmap=_JPK_NSMAP)
            etree.SubElement(line_control, f"{tns}LiczbaWierszyFaktur").text = str(lines_count)
            etree.SubElement(line_control, f"{tns}WartoscWierszyFaktur").text = amount(lines_total)
            xml.write(line_control)
    found = problems(jpk_fa4(), path.read_bytes())
    if found:
        path.unlink()
        raise HubError(f"{path.name}: not valid against the JPK_FA(4) schema: {'; '.join(found[:3])}")
    return [path], count


def _elements(handle: Any, tns: str) -> Iterator[etree._Element]:
    """The line elements spooled to disk, one by one (the invoices come first in JPK_FA)."""
    for _, element in etree.iterparse(handle, events=("end",), tag=f"{tns}FakturaWiersz", resolve_entities=False,
                                      no_network=True):
        yield element
        element.clear()


def _jpk_invoice(tns: str, invoice: Invoice, seller: dict[str, Any]) -> etree._Element:
    node = etree.Element(f"{tns}Faktura", nsmap=_JPK_NSMAP)

    def add(tag: str, text: str | None) -> None:
        if text is not None:
            etree.SubElement(node, f"{tns}{tag}").text = text

    buyer = invoice.buyer
    address = buyer.get("address") or {}
    add("KodWaluty", invoice.currency)
    add("P_1", invoice.issue_date.isoformat() if invoice.issue_date else None)
    add("P_2A", invoice.number)
    add("P_3A", (buyer.get("name") or "Klient")[:256])
    add("P_3B", ", ".join(p for p in (address.get("street"), address.get("postal_code"), address.get("city")) if p)
        or None)
    add("P_3C", seller["name"][:256])
    add("P_3D", f"{seller['street']}, {seller['postal_code']} {seller['city']}")
    add("P_4A", "PL")
    add("P_4B", seller["nip"])
    if buyer.get("eu_vat"):
        add("P_5A", buyer.get("eu_code"))
        add("P_5B", buyer["eu_vat"])
    elif buyer.get("nip") or buyer.get("tax_id"):
        add("P_5B", buyer.get("nip") or buyer.get("tax_id"))
    if invoice.sale_date != invoice.issue_date:
        add("P_6", invoice.sale_date.isoformat())
    by_rate = {r["rate"]: r for r in invoice.rates}
    for rate, net_tag, vat_tag, pln_tag in _JPK_TOTALS:
        total = by_rate.get(rate)
        if total:
            add(net_tag, amount(Decimal(total["net"])))
            add(vat_tag, amount(Decimal(total["vat"])))
            if total.get("vat_pln"):
                add(pln_tag, amount(Decimal(total["vat_pln"])))
    zero = [Decimal(by_rate[r]["net"]) for r in ("0 KR", "0 WDT", "0 EX") if r in by_rate]
    if zero:
        add("P_13_6", amount(sum(zero, Decimal(0))))
    if "zw" in by_rate:
        add("P_13_7", amount(Decimal(by_rate["zw"]["net"])))
    add("P_15", amount(invoice.gross))
    add("P_16", "false")
    add("P_17", "false")
    add("P_18", "true" if "oo" in by_rate else "false")
    add("P_18A", "true" if invoice.split_payment else "false")
    add("P_19", "true" if "zw" in by_rate else "false")
    if "zw" in by_rate:
        add("P_19A", invoice.seller.get("exemption_basis") or "-")
    for tag in ("P_20", "P_21", "P_22", "P_23", "P_106E_2", "P_106E_3"):
        add(tag, "false")
    add("RodzajFaktury", "KOREKTA" if invoice.kind == "KOR" else "VAT")
    if invoice.kind == "KOR":
        add("PrzyczynaKorekty", invoice.reason)
        add("NrFaKorygowanej", getattr(invoice, "corrected_number", None) or "-")
    return node


def _jpk_line(tns: str, invoice: Invoice, line: InvoiceLine) -> etree._Element:
    node = etree.Element(f"{tns}FakturaWiersz", nsmap=_JPK_NSMAP)
    for tag, text in (("P_2B", invoice.number), ("P_7", line.name[:256]), ("P_8A", line.unit),
                      ("P_8B", plain(line.quantity)), ("P_9A", amount(line.unit_net)),
                      ("P_9B", amount(line.unit_gross)),
                      ("P_11", amount(line.net)), ("P_11A", amount(line.gross)), ("P_12", _JPK_RATE[line.rate])):
        etree.SubElement(node, f"{tns}{tag}").text = text
    return node


def register_invoice(invoice: Invoice, lines: list[InvoiceLine]) -> RegisterInvoice:
    """The stored invoice in the export port's type."""
    buyer = invoice.buyer
    address = buyer.get("address") or {}
    tax_id = buyer_tax_id(buyer)
    corrected_issue_date = getattr(invoice, "corrected_issue_date", None)
    return RegisterInvoice(
        number=invoice.number or "", kind=invoice.kind,  # type: ignore[arg-type]
        issue_date=invoice.issue_date, sale_date=invoice.sale_date,  # type: ignore[arg-type]
        buyer_name=buyer.get("name") or "", buyer_tax_id=tax_id, buyer_country=buyer.get("country") or "PL",
        buyer_street=address.get("street") or "", buyer_city=address.get("city") or "",
        buyer_postal_code=address.get("postal_code") or "", currency=invoice.currency,
        exchange_rate=invoice.exchange_rate,
        rates=[RegisterRate(r["rate"], Decimal(r["net"]), Decimal(r["vat"]), Decimal(r["gross"]))
               for r in invoice.rates],
        lines=[RegisterLine(line.line_no, line.name, line.sku, line.unit, line.quantity, line.rate, line.unit_net,
                            line.unit_gross, line.net, line.vat, line.gross) for line in lines],
        net=invoice.net, vat=invoice.vat, gross=invoice.gross, payment_form=invoice.payment.get("form") or "transfer",
        due=date.fromisoformat(invoice.payment["due"]) if invoice.payment.get("due") else None,
        ksef_number=invoice.ksef_number, corrected_number=getattr(invoice, "corrected_number", None),
        corrected_issue_date=corrected_issue_date, reason=invoice.reason)


def _through(exporter: InvoiceExport, engine: Engine, settings: InvoicingSettings, period: str, first: date,
             last: date, out: Path, progress: Callable[[int], None], now: datetime) -> tuple[list[Path], int]:
    seller = settings.seller
    if seller is None:
        raise HubError("[invoicing.seller] is not configured")
    path = out / f"faktury_{period}{exporter.suffix}"
    done = [0]

    def invoices() -> Iterator[RegisterInvoice]:
        for page in pages(engine, first, last):
            for invoice, lines in page:
                yield register_invoice(invoice, lines)
            done[0] += len(page)
            progress(done[0])

    with _Atomic(path) as handle:
        count = exporter.write(handle, ExportSeller(seller.name, seller.nip, seller.street, seller.city,
                                                    seller.postal_code), invoices(), now=now)
    return [path], count


def _pdf(engine: Engine, settings: InvoicingSettings, period: str, first: date, last: date, out: Path,
         progress: Callable[[int], None], now: datetime) -> tuple[list[Path], int]:
    from hub.invoicing.pdf import render_pdf
    from hub.invoicing.qr import signer_from

    signer = signer_from(settings)  # a broken certificate is said before any file is written
    files: list[Path] = []
    for page in pages(engine, first, last):
        for invoice, lines in page:
            path = out / file_name(invoice.number or "", ".pdf")
            with _Atomic(path) as handle:
                handle.write(render_pdf(invoice, lines, qr_host=settings.qr_host, signer=signer))
            files.append(path)
        progress(len(files))
    return files, len(files)
