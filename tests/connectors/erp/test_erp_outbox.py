"""The file-feed ERPs' outbox: sales documents and restocks as JSON and EDI++ files, written
atomically and exactly once (golden files in golden/; UPDATE_GOLDEN=1 rewrites them)."""

from __future__ import annotations

import csv
import io
import json
import os
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from pydantic import ValidationError

from connectors.erp import documents, epp, outbox
from connectors.erp.filefeed import CSV_SPEC, JSONL_SPEC, CsvOptions, FileFeed, JsonlOptions
from hub.kernel.errors import PermanentError, RetryableError
from hub.kernel.ports.capability import Capability
from hub.kernel.ports.channel import OrderLine, ReturnLine
from hub.kernel.ports.erp import ErpSalesSink, RestockDocument, SalesDocument
from hub.orders.sales_documents import sales_document

GOLDEN = Path(__file__).parent / "golden"
RESTOCK_AT = datetime(2025, 7, 3, 9, 15, tzinfo=UTC)
SENDER = {"name": "Sklep Łąka Sp. z o.o.", "short_name": "Sklep Łąka", "nip": "525-000-00-00",
          "street": "ul. Polna 1", "postal_code": "00-950", "city": "Warszawa"}


def feed(folder: Path, *, fmt: str = "csv", **options: Any) -> FileFeed:
    options.setdefault("outbox", folder)
    options.setdefault("epp", {"sender": SENDER, "warehouse": "MAG", "place": "Warszawa", "issuer": "Hub"})
    model = CsvOptions if fmt == "csv" else JsonlOptions
    erp = FileFeed("subiekt", model.model_validate({"path": folder / f"feed.{fmt}", **options}), fmt=fmt)  # type: ignore[arg-type]
    if erp._outbox is not None:
        erp._outbox.clock = lambda: RESTOCK_AT
    return erp


def golden(name: str, data: bytes) -> None:
    path = GOLDEN / name
    if os.environ.get("UPDATE_GOLDEN"):
        path.parent.mkdir(exist_ok=True)
        path.write_bytes(data)
    assert data == path.read_bytes(), f"{name} differs from the golden file (UPDATE_GOLDEN=1 rewrites it)"


def files(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())


def epp_records(data: bytes) -> dict[str, list[list[str]]]:
    """Sections of an EDI++ file, each a list of parsed records (repeated labels get a suffix)."""
    text = data.decode("windows-1250")
    assert "\r\n" in text and "\n" not in text.replace("\r\n", "")  # CRLF only
    assert text.endswith("\r\n\r\n") and not text.endswith("\r\n\r\n\r\n")  # one empty last line
    sections: dict[str, list[list[str]]] = {}
    current = ""
    for line in text.split("\r\n"):
        if line.startswith("["):
            current = line
            while current in sections:
                current += "'"
            sections[current] = []
        elif line:
            sections[current].append(next(csv.reader(io.StringIO(line))))
    return sections


# --- golden files ---------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_invoice_with_nip_golden_json_and_epp(tmp_path: Path, invoice_document: SalesDocument, fmt: str) -> None:
    erp = feed(tmp_path, fmt=fmt)
    erp_id = erp.post_sales_document(invoice_document)
    assert erp_id == "allegro-main_7d1e5c2a-1b2c-4d5e-8f90-a1b2c3d4e5f6"
    assert files(tmp_path) == [f"{erp_id}.epp", f"{erp_id}.json"]
    golden("invoice.json", (tmp_path / f"{erp_id}.json").read_bytes())
    golden("invoice.epp", (tmp_path / f"{erp_id}.epp").read_bytes())


def test_receipt_with_cash_on_delivery_golden_json_and_epp(tmp_path: Path,
                                                           receipt_document: SalesDocument) -> None:
    erp_id = feed(tmp_path).post_sales_document(receipt_document)
    assert erp_id == "shop-main_1234567890"
    golden("receipt.json", (tmp_path / f"{erp_id}.json").read_bytes())
    golden("receipt.epp", (tmp_path / f"{erp_id}.epp").read_bytes())


def test_restock_golden_json_and_epp(tmp_path: Path, restock_document: RestockDocument) -> None:
    erp_id = feed(tmp_path).restock(restock_document)
    assert erp_id == "return_allegro-main_ret-55"
    golden("restock.json", (tmp_path / f"{erp_id}.json").read_bytes())
    golden("restock.epp", (tmp_path / f"{erp_id}.epp").read_bytes())
    sections = epp_records((tmp_path / f"{erp_id}.epp").read_bytes())
    (header,) = sections["[NAGLOWEK]"]
    assert len(header) == 62 and header[:2] == ["PW", "0"]  # put aside for the operator to confirm
    assert sections["[INFO]"][0][11] == "MAG" and header[48] == "return/allegro-main/ret-55"
    assert [(p[2], p[10]) for p in sections["[ZAWARTOSC]"]] == [("KUB-001", "2.0000"), ("KAW-250", "1.0000")]


def test_invoice_json_content(tmp_path: Path, invoice_document: SalesDocument) -> None:
    erp_id = feed(tmp_path, outbox_formats=["json"]).post_sales_document(invoice_document)
    assert files(tmp_path) == [f"{erp_id}.json"]
    data = json.loads((tmp_path / f"{erp_id}.json").read_text(encoding="utf-8"))
    assert (data["format"], data["version"], data["kind"]) == ("hub.sales_document", 1, "invoice")
    assert data["issued_at"] == "2025-06-30T22:30:05Z" and data["channel"] == "allegro-main"
    assert data["invoice"]["nip"] == "7251234561" and data["payment"]["cod_amount"] is None
    assert data["totals"] == {"net": "118.52", "vat": "20.45", "gross": "138.97", "by_vat_rate": [
        {"vat_rate": "23", "net": "73.15", "vat": "16.82", "gross": "89.97"},
        {"vat_rate": "8", "net": "45.37", "vat": "3.63", "gross": "49.00"}]}
    assert [(line["sku"], line["quantity"], line["unit_price_gross"], line["gross"]) for line in data["lines"]] == [
        ("KUB-001", 3, "29.99", "89.97"), ("KAW-250", 2, "24.50", "49.00")]


def test_receipt_epp_structure(tmp_path: Path, receipt_document: SalesDocument) -> None:
    erp_id = feed(tmp_path).post_sales_document(receipt_document)
    sections = epp_records((tmp_path / f"{erp_id}.epp").read_bytes())
    assert list(sections) == ["[INFO]", "[NAGLOWEK]", "[ZAWARTOSC]"]  # no buyer card for a receipt
    (info,) = sections["[INFO]"]
    (header,) = sections["[NAGLOWEK]"]
    assert (len(info), len(header)) == (24, 62)
    assert info[:3] == ["1.11", "3", "1250"] and info[5:11] == [
        "Sklep Łąka", "Sklep Łąka Sp. z o.o.", "Warszawa", "00-950", "ul. Polna 1", "5250000000"]
    assert info[19] == "20250701003005"  # Polish local time
    assert header[0] == "PA" and header[6] == "PA shop-main_1234567890" and header[9] == "1234567890"
    assert header[11:18] == [""] * 7  # an anonymous retail buyer
    assert header[21] == "20250701000000"  # the Polish date of 22:30 UTC on 30 June
    # 23 %: 44.98 gross, 8.41 VAT; 8 %: 73.50 gross, 5.44 VAT
    assert header[24] == "3" and header[27:30] == ["104.6300", "13.8500", "118.4800"]
    assert header[33] == "Pobranie" and header[36] == "118.4800" and header[48] == "shop-main/1234567890"
    positions = sections["[ZAWARTOSC]"]
    assert all(len(p) == 22 for p in positions)
    assert [(p[1], p[2], p[10], p[14], p[15], p[18]) for p in positions] == [
        ("1", "KUB-001", "1.0000", "29.9900", "23.0000", "29.9900"),
        ("1", "KAW-250", "3.0000", "24.5000", "8.0000", "73.5000"),
        ("2", "", "1.0000", "14.9900", "23.0000", "14.9900")]  # the fee: a one-time service under its name
    assert positions[2][20:] == ["Dostawa: paczkomat, pobranie"] * 2


def test_invoice_epp_has_the_buyer_and_its_card(tmp_path: Path, invoice_document: SalesDocument) -> None:
    erp_id = feed(tmp_path).post_sales_document(invoice_document)
    sections = epp_records((tmp_path / f"{erp_id}.epp").read_bytes())
    (header,) = sections["[NAGLOWEK]"]
    assert len(header) == 62 and all(len(p) == 22 for p in sections["[ZAWARTOSC]"])
    assert header[0] == "FS" and header[6] == "FS HUB-825E60C61BCB"  # the stem is too long for 30 characters
    assert header[11:18] == ["7251234561", 'Kawiarnia "Łąka" Sp. z o.o.', 'Kawiarnia "Łąka" Sp. z o.o.', "Łódź",
                             "90-004", "ul. Piotrkowska 100 lok. 2", "7251234561"]
    assert header[33] == "Przelew" and header[59:62] == ["Polska", "PL", "0"]
    assert sections["[NAGLOWEK]'"] == [["KONTRAHENCI"]]
    (card,) = sections["[ZAWARTOSC]'"]
    assert len(card) == 31 and card[1] == "7251234561" and card[12] == "jan.kowalski@example.com"


@pytest.mark.parametrize(("country", "fields"), [
    ("de", ["DE", "DE", "1"]), ("GR", ["GR", "EL", "1"]), ("US", ["US", "", "0"]), ("PL", ["Polska", "PL", "0"])])
def test_the_buyers_country_as_the_hub_decided_it(tmp_path: Path, invoice_document: SalesDocument, country: str,
                                                  fields: list[str]) -> None:
    """Header fields 60-62 and the card's last four: country, EU VAT prefix, intra-EU buyer (and ISO code)."""
    invoice = invoice_document.order.invoice
    assert invoice is not None
    order = replace(invoice_document.order, invoice=replace(invoice, address=replace(invoice.address, country=country)))
    document = sales_document(invoice_document.reference, order, issued_at=invoice_document.issued_at)
    erp_id = feed(tmp_path, outbox_formats=["epp"]).post_sales_document(document)
    sections = epp_records((tmp_path / f"{erp_id}.epp").read_bytes())
    assert sections["[NAGLOWEK]"][0][59:62] == fields
    assert sections["[ZAWARTOSC]'"][0][27:] == [*fields, country.upper()]


def test_rewizor_target_writes_the_vat_table(tmp_path: Path, receipt_document: SalesDocument,
                                             restock_document: RestockDocument) -> None:
    erp = feed(tmp_path, epp={"target": "rewizor", "sender": SENDER})
    erp_id = erp.post_sales_document(receipt_document)
    sections = epp_records((tmp_path / f"{erp_id}.epp").read_bytes())
    assert sections["[INFO]"][0][1] == "0"  # for the accounting office
    assert [row[:5] for row in sections["[ZAWARTOSC]"]] == [
        ["23", "23.0000", "36.5700", "8.4100", "44.9800"],
        ["8", "8.0000", "68.0600", "5.4400", "73.5000"]]
    assert all(len(row) == 18 for row in sections["[ZAWARTOSC]"])
    # a PW has no VAT table and nothing to book: restocks go as JSON only
    restock_id = erp.restock(restock_document)
    assert files(tmp_path) == sorted([f"{erp_id}.epp", f"{erp_id}.json", f"{restock_id}.json"])


def test_vat_codes_dates_and_windows_1250(tmp_path: Path, receipt_document: SalesDocument) -> None:
    lines = [OrderLine("A", None, "Usługa zwolniona ✓ \"x\"\nłamana", 1, Decimal("10.00"), "zw"),
             OrderLine("B", None, "Poza kraj", 1, Decimal("5.00"), "np"),
             OrderLine("C", None, "Odwrotne obciążenie", 2, Decimal("7.50"), "oo"),
             OrderLine("D", None, "Eksport", 1, Decimal("1.00"), "0")]
    document = sales_document(receipt_document.reference, replace(receipt_document.order, lines=lines),
                              issued_at=datetime(2025, 1, 15, 12, 0, tzinfo=UTC))
    erp = feed(tmp_path, outbox_formats=["epp"], epp={"target": "rewizor", "timezone": "UTC"})
    erp_id = erp.post_sales_document(document)
    sections = epp_records((tmp_path / f"{erp_id}.epp").read_bytes())
    assert [row[:3] for row in sections["[ZAWARTOSC]"]] == [
        ["0", "0.0000", "1.0000"], ["zw", "-1.0000", "10.0000"], ["npo", "-4.0000", "5.0000"],
        ["oo", "-5.0000", "15.0000"]]
    assert sections["[NAGLOWEK]"][0][21] == "20250115000000" and sections["[INFO]"][0][19] == "20250115120000"
    subiekt = feed(tmp_path / "s", outbox=tmp_path, outbox_formats=["epp"])
    subiekt.post_sales_document(replace(document, reference="x/1"))
    positions = epp_records((tmp_path / "x_1.epp").read_bytes())["[ZAWARTOSC]"]
    assert [p[15] for p in positions] == ["-1.0000", "-4.0000", "-5.0000", "0.0000"]
    # no line breaks inside a text; a character windows-1250 lacks becomes "?"; quotes doubled
    raw = (tmp_path / "x_1.epp").read_bytes().decode("windows-1250")
    assert raw.count("\r\n") == len(raw.splitlines())


def test_file_names_are_safe_everywhere() -> None:
    assert documents.file_stem("allegro-main/7d1e") == "allegro-main_7d1e"
    assert documents.file_stem("../etc/passwd") == "_etc_passwd"
    assert documents.file_stem(".hidden") == "hidden" and documents.file_stem("~x") == "_x"
    assert documents.file_stem("a:b*c?\"<>|\\d") == "a_b_c______d"
    assert documents.file_stem("CON") == "_CON" and documents.file_stem("nul.txt") == "_nul.txt"
    assert documents.file_stem("zamówienie 1.") == "zam_wienie_1"
    long = documents.file_stem("x" * 300)
    assert len(long) == 100 and long.endswith("-" + documents.reference_hash("x" * 300))
    assert documents.file_stem("") == "document"


# --- exactly once ---------------------------------------------------------------------


def test_posting_twice_writes_once_and_returns_the_same_id(tmp_path: Path, invoice_document: SalesDocument) -> None:
    erp = feed(tmp_path)
    first = erp.post_sales_document(invoice_document)
    stats = {name: (tmp_path / name).stat().st_mtime_ns for name in files(tmp_path)}
    assert erp.post_sales_document(invoice_document) == first
    assert {name: (tmp_path / name).stat().st_mtime_ns for name in files(tmp_path)} == stats


def test_a_retry_after_a_crash_before_recording_finds_the_first_write(
        tmp_path: Path, invoice_document: SalesDocument) -> None:
    first = feed(tmp_path).post_sales_document(invoice_document)
    before = {name: (tmp_path / name).read_bytes() for name in files(tmp_path)}
    # a new process retries the job: the hub rebuilds the document with a new issued_at
    retry = replace(invoice_document, issued_at=invoice_document.issued_at + timedelta(minutes=7))
    assert feed(tmp_path).post_sales_document(retry) == first
    assert {name: (tmp_path / name).read_bytes() for name in files(tmp_path)} == before  # the first write wins


def test_a_crash_between_the_formats_writes_the_missing_one(tmp_path: Path, invoice_document: SalesDocument) -> None:
    erp_id = feed(tmp_path).post_sales_document(invoice_document)
    (tmp_path / f"{erp_id}.epp").unlink()  # as if the process died after the JSON
    assert feed(tmp_path).post_sales_document(invoice_document) == erp_id
    assert files(tmp_path) == [f"{erp_id}.epp", f"{erp_id}.json"]


def test_a_crash_before_the_rename_leaves_a_temporary_file_that_is_ignored(
        tmp_path: Path, invoice_document: SalesDocument, monkeypatch: pytest.MonkeyPatch) -> None:
    def crash(*_: Any) -> None:
        raise KeyboardInterrupt("power cut")

    monkeypatch.setattr(outbox.os, "link", crash)
    with pytest.raises(KeyboardInterrupt):
        feed(tmp_path).post_sales_document(invoice_document)
    monkeypatch.undo()
    assert files(tmp_path) == []  # the temporary file went with the crash's cleanup; a hard kill leaves it:
    leftover = tmp_path / ".allegro-main_7d1e5c2a-1b2c-4d5e-8f90-a1b2c3d4e5f6.json.0badf00d.tmp"
    leftover.write_bytes(b'{"reference": "allegro-main/7d1e5c2a-1b2c-4d5e-8f90-a1b2c3d4e5f6", "trunc')
    erp_id = feed(tmp_path).post_sales_document(invoice_document)
    assert json.loads((tmp_path / f"{erp_id}.json").read_text(encoding="utf-8"))["totals"]["gross"] == "138.97"
    assert leftover.exists()  # young: perhaps another writer's, left alone
    old = time.time() - outbox.STALE_TEMPORARY - 5
    os.utime(leftover, (old, old))
    (tmp_path / f"{erp_id}.json").unlink()
    feed(tmp_path).post_sales_document(invoice_document)
    assert not leftover.exists()  # stale: removed
    assert files(tmp_path) == [f"{erp_id}.epp", f"{erp_id}.json"]


@pytest.mark.parametrize("subfolder", ["processed", "imported", "archiwum/2025-07"])
def test_a_file_the_erp_moved_into_a_subfolder_counts_as_written(
        tmp_path: Path, invoice_document: SalesDocument, subfolder: str) -> None:
    erp_id = feed(tmp_path).post_sales_document(invoice_document)
    (tmp_path / subfolder).mkdir(parents=True)
    for ext in ("json", "epp"):
        (tmp_path / f"{erp_id}.{ext}").rename(tmp_path / subfolder / f"{erp_id}.{ext}")
    assert feed(tmp_path).post_sales_document(invoice_document) == erp_id
    assert files(tmp_path) == [f"{subfolder}/{erp_id}.epp", f"{subfolder}/{erp_id}.json"]


def test_a_name_taken_by_another_reference_gets_a_hashed_one(tmp_path: Path, receipt_document: SalesDocument) -> None:
    erp = feed(tmp_path)
    first = erp.post_sales_document(replace(receipt_document, reference="shop/1"))
    second = erp.post_sales_document(replace(receipt_document, reference="shop_1"))
    assert first == "shop_1" and second == f"shop_1-{documents.reference_hash('shop_1')}"
    assert erp.post_sales_document(replace(receipt_document, reference="shop_1")) == second
    assert erp.post_sales_document(replace(receipt_document, reference="shop/1")) == first
    assert len(files(tmp_path)) == 4


def test_concurrent_writers_of_one_document_write_it_once(tmp_path: Path, invoice_document: SalesDocument,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """The other writer's file appears between the search and the link: the link refuses to replace it."""
    erp = feed(tmp_path, outbox_formats=["json"])
    real_link = os.link

    def racing_link(source: Any, target: Any) -> None:
        other = feed(tmp_path / "other", outbox=tmp_path, outbox_formats=["json"])
        monkeypatch.setattr(outbox.os, "link", real_link)
        other.post_sales_document(replace(invoice_document, issued_at=RESTOCK_AT))
        real_link(source, target)

    monkeypatch.setattr(outbox.os, "link", racing_link)
    erp_id = erp.post_sales_document(invoice_document)
    assert files(tmp_path) == [f"{erp_id}.json"]
    assert json.loads((tmp_path / f"{erp_id}.json").read_text(encoding="utf-8"))["issued_at"] == "2025-07-03T09:15:00Z"


def test_without_hard_links_the_file_is_renamed_into_place(tmp_path: Path, invoice_document: SalesDocument,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    def no_links(*_: Any) -> None:
        raise OSError(outbox.errno.EPERM, "Operation not permitted")

    monkeypatch.setattr(outbox.os, "link", no_links)
    erp_id = feed(tmp_path).post_sales_document(invoice_document)
    assert files(tmp_path) == [f"{erp_id}.epp", f"{erp_id}.json"]


def test_restock_is_idempotent_too(tmp_path: Path, restock_document: RestockDocument) -> None:
    first = feed(tmp_path).restock(restock_document)
    erp = feed(tmp_path)
    assert erp._outbox is not None
    erp._outbox.clock = lambda: RESTOCK_AT + timedelta(hours=1)  # the retry renders another date
    before = {name: (tmp_path / name).read_bytes() for name in files(tmp_path)}
    assert erp.restock(restock_document) == first
    assert {name: (tmp_path / name).read_bytes() for name in files(tmp_path)} == before


# --- what cannot be written --------------------------------------------------------------


def test_without_an_outbox_no_sales_capability_and_a_permanent_error(tmp_path: Path,
                                                                      invoice_document: SalesDocument) -> None:
    erp = FileFeed("subiekt", CsvOptions(path=tmp_path / "feed.csv"), fmt="csv")
    assert erp.capabilities == {Capability.ERP_INCREMENTAL, Capability.ERP_SNAPSHOT}
    with pytest.raises(PermanentError, match=r'no outbox.*outbox = "/path/to/folder" under \[connectors.subiekt\]'):
        erp.post_sales_document(invoice_document)
    with pytest.raises(PermanentError, match="no outbox"):
        erp.restock(RestockDocument("r", "o", [ReturnLine("A", None, 1)]))
    with_outbox = feed(tmp_path)
    assert isinstance(with_outbox, ErpSalesSink)
    assert with_outbox.capabilities == {Capability.ERP_INCREMENTAL, Capability.ERP_SNAPSHOT,
                                        Capability.ERP_SALES_DOCUMENTS, Capability.ERP_RESTOCK}
    for spec in (CSV_SPEC, JSONL_SPEC):  # what the kind can do once configured
        assert {Capability.ERP_SALES_DOCUMENTS, Capability.ERP_RESTOCK} <= spec.capabilities
        built = spec.factory("x", spec.options_model.model_validate({"path": str(tmp_path)}),  # type: ignore[union-attr]
                             SimpleNamespace(log=None))
        assert Capability.ERP_SALES_DOCUMENTS not in built.capabilities


def test_a_missing_outbox_folder_is_retried_not_created(tmp_path: Path, invoice_document: SalesDocument) -> None:
    erp = feed(tmp_path, outbox=tmp_path / "share")
    with pytest.raises(RetryableError, match="no such folder"):
        erp.post_sales_document(invoice_document)
    assert not (tmp_path / "share").exists()


def test_documents_that_cannot_be_booked_write_nothing(tmp_path: Path, invoice_document: SalesDocument) -> None:
    """What EDI++ cannot carry (the VAT rules' refusals, e.g. a line without a rate, are the hub's:
    tests/orders/test_sales_documents.py)."""
    order = invoice_document.order
    erp = feed(tmp_path)
    with pytest.raises(PermanentError, match="EUR need the NBP exchange rate"):
        erp.post_sales_document(replace(invoice_document, order=replace(order, currency="EUR")))
    long_sku = replace(order, lines=[OrderLine("X" * 21, None, "a", 1, Decimal("1.00"), "23")])
    with pytest.raises(PermanentError, match="longer than the 20 characters"):
        erp.post_sales_document(sales_document(invoice_document.reference, long_sku))
    assert files(tmp_path) == []
    # JSON alone takes all of them
    eur = replace(invoice_document, order=replace(order, currency="EUR"))
    assert feed(tmp_path, outbox_formats=["json"]).post_sales_document(eur)


def test_options_are_validated(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="each format at most once"):
        CsvOptions.model_validate({"path": str(tmp_path), "outbox": str(tmp_path), "outbox_formats": ["json", "json"]})
    with pytest.raises(ValidationError):
        CsvOptions.model_validate({"path": str(tmp_path), "outbox_formats": ["xml"]})
    with pytest.raises(ValidationError, match="not a time zone"):
        CsvOptions.model_validate({"path": str(tmp_path), "epp": {"timezone": "Mars/Base"}})
    with pytest.raises(ValidationError, match="extra"):
        CsvOptions.model_validate({"path": str(tmp_path), "epp": {"targt": "rewizor"}})
    options = epp.EppOptions(payment_forms={"P24": "Przelewy24", "cod": "Za pobraniem", "default": "Przelew"})
    assert options.payment_form("p24", False) == "Przelewy24"
    assert options.payment_form("CASH_ON_DELIVERY", True) == "Za pobraniem"
    assert options.payment_form(None, False) == "Przelew"


def test_cancellation_is_written_once(tmp_path: Path, invoice_document: SalesDocument) -> None:
    """A booked order cancelled: one JSON cancellation beside the document; a retry (also after the ERP
    moved the file into a subfolder) finds it and writes nothing."""
    import json

    erp = feed(tmp_path)
    outbox = tmp_path  # feed() makes the test folder the outbox
    erp.post_sales_document(invoice_document)
    first = erp.cancel_sales_document(invoice_document.reference, "order cancelled by the buyer")
    cancellation = outbox / f"{first}.json"
    data = json.loads(cancellation.read_text(encoding="utf-8"))
    assert data["format"] == "hub.sales_document_cancellation"
    assert data["document_reference"] == invoice_document.reference
    (outbox / "processed").mkdir()
    cancellation.rename(outbox / "processed" / cancellation.name)
    assert erp.cancel_sales_document(invoice_document.reference, "again") == first
    assert not cancellation.exists()  # not written again
