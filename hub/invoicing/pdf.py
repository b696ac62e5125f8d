"""The buyer's invoice as a PDF (reportlab): Polish labels in a font with Polish letters (DejaVu Sans, shipped
in ``fonts/``), the seller and the buyer, the lines, the totals per rate, payment, and the KSeF QR code.

The QR codes (hub.invoicing.qr, kody-qr.md): KOD I labelled with the KSeF number, or ``OFFLINE`` while the
invoice has none; an invoice issued in offline mode also KOD II, labelled ``CERTYFIKAT``, signed with the
seller's KSeF certificate of type Offline. An invoice outside KSeF (a consumer's) carries no code.
"""

from __future__ import annotations

import functools
import io
from collections.abc import Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

from reportlab.graphics import renderPDF
from reportlab.graphics.barcode.qr import QrCodeWidget
from reportlab.graphics.shapes import Drawing
from reportlab.lib.pagesizes import A4
from reportlab.lib.units import mm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont
from reportlab.pdfgen.canvas import Canvas

from hub.invoicing.fa3 import amount, plain
from hub.invoicing.qr import (
    KOD_II_LABEL,
    OFFLINE_LABEL,
    OfflineSigner,
    certificate_link,
    file_hash,
    invoice_link,
)
from hub.kernel.errors import ConfigError

FONTS = Path(__file__).parent / "fonts"
QR_HOST = "https://qr.ksef.mf.gov.pl"  # the production KSeF's verification page (srodowiska.md)
TITLES = {"VAT": "Faktura VAT", "KOR": "Faktura korygująca"}
PAYMENT_FORMS = {"cash": "gotówka", "card": "karta", "voucher": "bon", "cheque": "czek", "credit": "kredyt",
                 "transfer": "przelew", "mobile": "płatność mobilna"}


@functools.cache
def _fonts() -> tuple[str, str]:
    pdfmetrics.registerFont(TTFont("HubSans", str(FONTS / "DejaVuSans.ttf")))
    pdfmetrics.registerFont(TTFont("HubSans-Bold", str(FONTS / "DejaVuSans-Bold.ttf")))
    return "HubSans", "HubSans-Bold"


def qr_url(invoice: Any, host: str = QR_HOST) -> str:
    """KOD I of an invoice: its seller, issue date and the hash of its FA(3) file (hub.invoicing.qr)."""
    return invoice_link(host, invoice.seller["nip"], invoice.issue_date, (invoice.xml or "").encode("utf-8"))


def kod_ii_url(invoice: Any, host: str, signer: OfflineSigner | None) -> str:
    """KOD II of an invoice issued in offline mode; a ConfigError without the seller's Offline certificate."""
    if signer is None:
        raise ConfigError([f"invoice {invoice.number} was issued in KSeF's offline mode: its printout needs the second "
                          "QR code (KOD II), signed with the seller's KSeF certificate of type Offline: set "
                          "[invoicing.offline_certificate] certificate and private_key"])
    return certificate_link(host, signer, invoice.seller["nip"], file_hash((invoice.xml or "").encode("utf-8")))


def _qr(page: Canvas, url: str, label: str, x_right: float, font: str) -> None:
    size = 32 * mm
    widget = QrCodeWidget(url)
    x0, y0, x1, y1 = widget.getBounds()
    drawing = Drawing(size, size, transform=[size / (x1 - x0), 0, 0, size / (y1 - y0), 0, 0])
    drawing.add(widget)
    renderPDF.draw(drawing, page, x_right - size, 18 * mm)
    page.setFont(font, 7)
    page.drawCentredString(x_right - size / 2, 15 * mm, label)


def _party(buyer: dict[str, Any]) -> list[str]:
    lines = [buyer.get("name") or ""]
    address = buyer.get("address") or buyer
    street = address.get("street")
    place = address.get("line2") or " ".join(p for p in (address.get("postal_code"), address.get("city")) if p)
    lines += [part for part in (street, place) if part]
    if buyer.get("nip"):
        lines.append(f"NIP: {buyer['nip']}")
    elif buyer.get("eu_vat"):
        lines.append(f"VAT UE: {buyer.get('eu_code', '')}{buyer['eu_vat']}")
    elif buyer.get("tax_id"):
        lines.append(f"Nr identyfikacyjny: {buyer['tax_id']}")
    return lines


def render_pdf(invoice: Any, lines: Sequence[Any], *, qr_host: str = QR_HOST,
               signer: OfflineSigner | None = None) -> bytes:
    """The invoice's PDF. One issued in offline mode carries KOD II too, which needs ``signer``."""
    kod_ii = kod_ii_url(invoice, qr_host, signer) \
        if getattr(invoice, "offline", False) and invoice.state != "outside_ksef" and invoice.xml else None
    regular, bold = _fonts()
    buffer = io.BytesIO()
    page = Canvas(buffer, pagesize=A4, pageCompression=1)
    page.setTitle(f"{TITLES.get(invoice.kind, 'Faktura')} {invoice.number}")
    width, height = A4
    left, right = 15 * mm, width - 15 * mm
    y = height - 20 * mm

    def text(x: float, value: str, size: float = 9, font: str = regular, align: str = "left") -> None:
        page.setFont(font, size)
        if align == "right":
            page.drawRightString(x, y, value)
        else:
            page.drawString(x, y, value)

    text(left, f"{TITLES.get(invoice.kind, 'Faktura')} nr {invoice.number}", 15, bold)
    y -= 7 * mm
    text(left, f"Data wystawienia: {invoice.issue_date.isoformat()}"
         + (f"   Miejsce: {invoice.seller['place']}" if invoice.seller.get("place") else ""))
    y -= 5 * mm
    text(left, f"Data sprzedaży: {invoice.sale_date.isoformat()}")
    if invoice.kind == "KOR":
        y -= 5 * mm
        text(left, f"Korygowana faktura: {getattr(invoice, 'corrected_number', None) or '-'}   "
                   f"Przyczyna: {invoice.reason or '-'}")
    y -= 10 * mm
    top = y
    text(left, "Sprzedawca", 10, bold)
    for line in _party({**invoice.seller, "address": None}):
        y -= 5 * mm
        text(left, line)
    y = top
    text(width / 2, "Nabywca", 10, bold)
    for line in _party(invoice.buyer):
        y -= 5 * mm
        text(width / 2, line)
    y = min(y, top - 25 * mm) - 8 * mm

    gross = invoice.basis == "gross"
    columns = [(left, "Lp.", "left"), (left + 10 * mm, "Nazwa", "left"), (right - 85 * mm, "Ilość", "right"),
               (right - 70 * mm, "J.m.", "right"),
               (right - 48 * mm, "Cena brutto" if gross else "Cena netto", "right"),
               (right - 33 * mm, "Stawka", "right"), (right, "Wartość brutto" if gross else "Wartość netto", "right")]
    for x, label, align in columns:
        text(x, label, 8, bold, align)
    page.line(left, y - 1.5 * mm, right, y - 1.5 * mm)
    for line in lines:
        y -= 5.5 * mm
        if y < 40 * mm:
            page.showPage()
            y = height - 20 * mm
        values = [str(line.line_no), line.name[:60], plain(line.quantity), line.unit,
                  amount(line.unit_gross if gross else line.unit_net), line.rate,
                  amount(line.gross if gross else line.net)]
        for (x, _, align), value in zip(columns, values, strict=True):
            text(x, value, 8, regular, align)
    y -= 10 * mm
    text(left, "Podsumowanie według stawek VAT", 9, bold)
    for total in invoice.rates:
        y -= 5 * mm
        text(left, f"{total['rate']}: netto {total['net']}  VAT {total['vat']}  brutto {total['gross']}"
                   + (f"  VAT w PLN {total['vat_pln']}" if total.get("vat_pln") else ""))
    y -= 8 * mm
    label = "Do zwrotu" if invoice.gross < Decimal(0) else "Do zapłaty"
    text(left, f"{label}: {amount(abs(invoice.gross))} {invoice.currency}", 12, bold)
    if invoice.exchange_rate is not None:
        y -= 5 * mm
        text(left, f"Kurs NBP {plain(invoice.exchange_rate)} z {invoice.exchange_rate_date} "
                   f"(tabela {invoice.exchange_rate_table})")
    payment = invoice.payment or {}
    y -= 6 * mm
    form = PAYMENT_FORMS.get(payment.get("form") or "", "")
    if payment.get("paid_at"):
        text(left, f"Zapłacono {payment['paid_at']}" + (f" ({form})" if form else ""))
    elif payment.get("cash_on_delivery"):
        text(left, "Płatność za pobraniem")
    elif payment.get("due"):
        text(left, f"Termin płatności: {payment['due']}" + (f" ({form})" if form else ""))
    if payment.get("bank_account"):
        y -= 5 * mm
        text(left, f"Rachunek: {payment['bank_account']}")
    if invoice.split_payment:
        y -= 5 * mm
        text(left, "mechanizm podzielonej płatności", 9, bold)
    if invoice.state != "outside_ksef" and invoice.xml:
        if kod_ii is not None:  # offline: KOD II beside KOD I
            _qr(page, kod_ii, KOD_II_LABEL, right, regular)
            right_of_kod_i = right - 36 * mm
        else:
            right_of_kod_i = right
        _qr(page, qr_url(invoice, qr_host), invoice.ksef_number or OFFLINE_LABEL, right_of_kod_i, regular)
    page.setFont(regular, 7)
    page.drawString(left, 12 * mm, "Wystawiono w systemie hub" + (f"; numer KSeF: {invoice.ksef_number}"
                                                                 if invoice.ksef_number else ""))
    page.showPage()
    page.save()
    return buffer.getvalue()
