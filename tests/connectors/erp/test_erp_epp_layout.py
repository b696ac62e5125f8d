"""The layout of an EDI++ file as InsERT's "Komunikacja EDI++" structure has it, read independently of
connectors/erp/epp.py: windows-1250, CRLF line ends, sections of a label and its records, one empty
line after each section, so that the file ends with an empty line (CRLF CRLF)."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest

from connectors.erp import epp
from hub.kernel.ports.erp import RestockDocument, SalesDocument

OPTIONS = epp.EppOptions.model_validate({"sender": {"name": "Sklep", "nip": "5260001246"}, "warehouse": "MAG"})
NOW = datetime(2025, 7, 3, 9, 15, tzinfo=UTC)
LABEL = re.compile(r"\[(INFO|NAGLOWEK|ZAWARTOSC)\]")


def layout(data: bytes) -> list[tuple[str, int]]:
    """The file's sections as (label, number of records); fails on anything the structure does not allow."""
    text = data.decode("windows-1250")
    assert "\n" not in text.replace("\r\n", "") and "\r" not in text.replace("\r\n", ""), "CRLF only"
    assert text.endswith("\r\n\r\n"), f"no empty line at the end: ...{text[-40:]!r}"
    assert not text.endswith("\r\n\r\n\r\n"), "more than one empty line at the end"
    lines = text.split("\r\n")[:-1]  # what follows the last CRLF is nothing
    sections: list[tuple[str, int]] = []
    records = 0
    for number, line in enumerate(lines):
        if LABEL.fullmatch(line):
            assert number == 0 or lines[number - 1] == "", f"line {number + 1}: a section not after an empty line"
            sections.append((line, 0))
            records = 0
        elif line:
            assert sections, "a record before the first label"
            records += 1
            sections[-1] = (sections[-1][0], records)
        else:
            assert number + 1 == len(lines) or LABEL.fullmatch(lines[number + 1]), \
                f"line {number + 1}: an empty line inside a section"
    assert lines[0] == "[INFO]"
    return sections


@pytest.mark.parametrize("target", ["subiekt", "rewizor"])
def test_a_sales_document_ends_with_an_empty_line(invoice_document: SalesDocument, receipt_document: SalesDocument,
                                                  target: str) -> None:
    options = OPTIONS.model_copy(update={"target": target})
    invoice = layout(epp.sales_epp(invoice_document, options, stem="x_1"))
    receipt = layout(epp.sales_epp(receipt_document, options, stem="x_2"))
    if target == "subiekt":
        assert invoice == [("[INFO]", 1), ("[NAGLOWEK]", 1), ("[ZAWARTOSC]", 2), ("[NAGLOWEK]", 1),
                           ("[ZAWARTOSC]", 1)]  # the document, then the buyer's card
        assert receipt == [("[INFO]", 1), ("[NAGLOWEK]", 1), ("[ZAWARTOSC]", 3)]
    else:
        assert invoice == receipt == [("[INFO]", 1), ("[NAGLOWEK]", 1), ("[ZAWARTOSC]", 2)]  # VAT rows


def test_a_restock_ends_with_an_empty_line(restock_document: RestockDocument) -> None:
    data = epp.restock_epp(restock_document, OPTIONS, stem="r_1", now=NOW)
    assert data is not None
    assert layout(data) == [("[INFO]", 1), ("[NAGLOWEK]", 1), ("[ZAWARTOSC]", 2)]


def test_the_reference_is_still_found_in_a_file_with_the_empty_last_line(invoice_document: SalesDocument) -> None:
    data = epp.sales_epp(invoice_document, OPTIONS, stem="x_1")
    assert epp.reference_of(data) == epp.stored_reference(invoice_document.reference)


def _register_invoice(kind: str, number: str, quantity: str, **more: object) -> object:
    from datetime import date
    from decimal import Decimal

    from hub.kernel.ports.invoicing import RegisterInvoice, RegisterLine, RegisterRate

    q = Decimal(quantity)
    gross, vat = Decimal("123.00") * q, Decimal("23.00") * q
    return RegisterInvoice(
        number=number, kind=kind, issue_date=date(2026, 12, 2), sale_date=date(2026, 12, 1),  # type: ignore[arg-type]
        buyer_name="Firma Kupująca Sp. z o.o.", buyer_tax_id="7740001454", buyer_country="PL",
        buyer_street="ul. Polna 1", buyer_city="Warszawa", buyer_postal_code="00-001", currency="PLN",
        exchange_rate=None, rates=[RegisterRate("23", gross - vat, vat, gross)],
        lines=[RegisterLine(1, "Towar A", "A", "szt.", q, "23", Decimal("100"), Decimal("123"), gross - vat, vat,
                            gross)],
        net=gross - vat, vat=vat, gross=gross, payment_form="transfer", due=None, ksef_number=None, **more)


@pytest.mark.parametrize("target", ["subiekt", "rewizor"])
def test_a_file_of_invoices_and_a_correction(target: str) -> None:
    import csv
    import io
    from datetime import date

    options = OPTIONS.model_copy(update={"target": target})
    out = io.BytesIO()
    count = epp.write_invoices(out, options, [
        _register_invoice("VAT", "FV/1/12/2026", "2"),
        _register_invoice("KOR", "FK/1/12/2026", "-1", corrected_number="FV/1/12/2026",
                          corrected_issue_date=date(2026, 12, 2), reason="zwrot"),
    ], NOW)
    data = out.getvalue()
    assert count == 2
    assert layout(data) == [("[INFO]", 1), ("[NAGLOWEK]", 1), ("[ZAWARTOSC]", 1), ("[NAGLOWEK]", 1),
                            ("[ZAWARTOSC]", 1)]
    headers = [next(csv.reader([line])) for line in data.decode("windows-1250").split("\r\n")
               if line.startswith(('"FS"', '"KFS"'))]
    assert [len(h) for h in headers] == [62, 62]
    invoice, correction = headers
    assert invoice[0] == "FS" and invoice[6] == "FV/1/12/2026" and invoice[7] == ""
    assert invoice[21] == "20261202000000" and invoice[22] == "20261201000000"  # issued, sold
    assert correction[0] == "KFS" and correction[7] == "FV/1/12/2026" and correction[8] == "20261202000000"
    assert correction[27:30] == ["-100.0000", "-23.0000", "-123.0000"]  # net, VAT, gross: a unit back
