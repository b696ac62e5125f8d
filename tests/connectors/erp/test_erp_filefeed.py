"""The csv and jsonl ERP file feeds: formats, change detection by fingerprint, quarantine, safety."""

from __future__ import annotations

import os
import time
from decimal import Decimal
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from pydantic import ValidationError

from connectors.erp import filefeed
from connectors.erp.filefeed import CSV_SPEC, JSONL_SPEC, CsvOptions, FileFeed, JsonlOptions
from hub.kernel.errors import RetryableError
from hub.kernel.ports.capability import Capability
from hub.kernel.ports.erp import ErpBatch, ErpSource
from tests.support.feeds import read_whole as read

EXAMPLES = Path(filefeed.__file__).parent / "examples"
HEADER = "sku,name,stock,price_gross,vat_rate,ean,warehouse\n"


def write(path: Path, content: str | bytes, *, encoding: str = "utf-8", age: float = 60.0) -> Path:
    """Write a feed file as an ERP would, finished ``age`` seconds ago (so it has settled)."""
    path.write_bytes(content if isinstance(content, bytes) else content.encode(encoding))
    stamp = time.time() - age
    os.utime(path, (stamp, stamp))
    return path


def csv_feed(path: Path, **options: Any) -> FileFeed:
    return FileFeed("erp", CsvOptions(path=path, **options), fmt="csv")


def jsonl_feed(path: Path, **options: Any) -> FileFeed:
    return FileFeed("erp", JsonlOptions(path=path, **options), fmt="jsonl")


def stock_of(batch: ErpBatch) -> dict[tuple[str, str], int]:
    return {(s.sku, s.warehouse): s.quantity for s in batch.stock}


def test_example_csv_semicolon_decimal_comma_windows_1250() -> None:
    batch = read(csv_feed(EXAMPLES / "feed.csv", encoding="windows-1250"), None, limit=1000)
    assert batch.snapshot and batch.complete and batch.rejected == []
    products = {p.sku: p for p in batch.products}
    prices = {p.sku: p for p in batch.prices}
    assert products["KUB-001"].name == "Kubek ceramiczny „Żółć” 300 ml"
    assert products["ROW-500"].name == 'Rower trekkingowy 28" Łoś'
    assert prices["ROW-500"].price_gross == Decimal("1299.00") and prices["KUB-001"].cost_net == Decimal("12.50")
    assert {p.vat_rate for p in products.values()} == {"23", "8", "5", "np", "zw"}
    assert stock_of(batch)[("KUB-001", "Sklep Kraków")] == 3
    assert len(batch.stock) == 7 and len(batch.products) == len(batch.prices) == 6


def test_example_jsonl_matches_example_csv() -> None:
    from_csv = read(csv_feed(EXAMPLES / "feed.csv", encoding="cp1250"), None, limit=1000)
    from_jsonl = read(jsonl_feed(EXAMPLES / "feed.jsonl"), None, limit=1000)
    assert from_jsonl.rejected == []
    assert (list(from_jsonl.products), list(from_jsonl.stock), list(from_jsonl.prices)) == (
        list(from_csv.products), list(from_csv.stock), list(from_csv.prices))


def test_comma_delimited_utf8_with_dot_decimals(tmp_path: Path) -> None:
    path = write(tmp_path / "feed.csv", HEADER + 'A1,"Kubek, duży",5,"1,299.00",23%,,\nB2,Łyżka,0,9.5,8,,W2\n')
    batch = read(csv_feed(path), None, limit=100)
    assert batch.rejected == []
    assert [(p.sku, p.name) for p in batch.products] == [("A1", "Kubek, duży"), ("B2", "Łyżka")]
    assert [p.price_gross for p in batch.prices] == [Decimal("1299.00"), Decimal("9.50")]
    assert stock_of(batch) == {("A1", "default"): 5, ("B2", "W2"): 0}


@pytest.mark.parametrize("delimiter", ["auto", ";"])
def test_semicolon_feed_whose_values_contain_commas(tmp_path: Path, delimiter: str) -> None:
    path = write(tmp_path / "feed.csv", "sku;name;stock;price_gross;vat_rate\nA1;Kubek, duży;5,0;19,99;23\n")
    batch = read(csv_feed(path, delimiter=delimiter), None, limit=100)
    assert batch.rejected == [] and batch.products[0].name == "Kubek, duży"
    assert batch.prices[0].price_gross == Decimal("19.99") and batch.stock[0].quantity == 5


def test_decimal_comma_option(tmp_path: Path) -> None:
    path = write(tmp_path / "feed.csv", "sku;name;stock;price_gross;vat_rate\nA1;x;1;1.299;23\n")
    auto = read(csv_feed(path), None, limit=10)
    assert [r.field for r in auto.rejected] == ["price_gross"]  # 1.299 is ambiguous: refused, not misread
    forced = read(csv_feed(path, decimal_comma=True), None, limit=10)
    assert forced.rejected == [] and forced.prices[0].price_gross == Decimal("1299.00")


def test_utf8_bom_wins_over_the_configured_encoding(tmp_path: Path) -> None:
    body = "sku;name;stock;price_gross;vat_rate\nA1;Żółw;1;2,50;5\n"
    path = write(tmp_path / "feed.csv", b"\xef\xbb\xbf" + body.encode("utf-8"))
    for encoding in ("utf-8", "windows-1250"):
        batch = read(csv_feed(path, encoding=encoding), None, limit=10)
        assert batch.rejected == [] and batch.products[0].name == "Żółw"


def test_a_windows_1250_file_read_as_utf8_is_rejected_whole_with_a_hint(tmp_path: Path) -> None:
    body = "sku;name;stock;price_gross;vat_rate\nA1;ok;1;2,50;5\nB2;Żółw;1;2,50;5\n"
    path = write(tmp_path / "feed.csv", body, encoding="windows-1250")
    batch = read(csv_feed(path), None, limit=10)
    assert batch.products == [] and batch.stock == [] and not batch.snapshot
    (reject,) = batch.rejected
    assert (reject.source, reject.field, reject.sku) == ("feed.csv:3", "encoding", None)
    assert 'the file looks like windows-1250, as Subiekt and Optima export: set encoding = "windows-1250"' in (
        reject.reason)
    assert batch.cursor_after is not None  # the broken file is not read again until it changes


def test_a_utf8_file_read_as_windows_1250_is_named_not_stored_as_mojibake(tmp_path: Path) -> None:
    """Windows-1250 decodes UTF-8's bytes without an error: "Żółw" would be stored as mojibake."""
    body = "sku;name;stock;price_gross;vat_rate\nA1;ok;1;2,50;5\nB2;Żółw;1;2,50;5\n"
    path = write(tmp_path / "feed.csv", body, encoding="utf-8")
    batch = read(csv_feed(path, encoding="windows-1250"), None, limit=10)
    assert batch.products == [] and batch.stock == [] and not batch.snapshot
    (reject,) = batch.rejected
    assert (reject.source, reject.field, reject.sku, reject.value) == ("feed.csv:3", "encoding", None, "windows-1250")
    assert reject.reason == ("the file is UTF-8 (bytes c5 bb at offset 54 are 'Ż' in UTF-8), not windows-1250: "
                             'set encoding = "utf-8" for this feed, or export it as windows-1250; the whole file is '
                             "ignored")
    # the same text in windows-1250 is read as configured, and plain ASCII in either
    assert read(csv_feed(write(path, body, encoding="windows-1250"), encoding="windows-1250"),
        None, limit=10).products[1].name == "Żółw"
    ascii_body = body.replace("Żółw", "Zolw")
    assert read(csv_feed(write(path, ascii_body), encoding="windows-1250"), None, limit=10).rejected == []
    # JSON lines too
    line = '{"sku": "B2", "name": "Żółw", "stock": 1, "price_gross": "2.50", "vat_rate": "5"}\n'
    jsonl = write(tmp_path / "feed.jsonl", line)
    assert [r.field for r in read(jsonl_feed(jsonl, encoding="windows-1250"), None, limit=10).rejected] == [
        "encoding"]


def test_a_file_in_neither_encoding_gets_no_windows_1250_hint(tmp_path: Path) -> None:
    path = write(tmp_path / "feed.csv", b"sku;name;stock;price_gross;vat_rate\nA1;\x81\x98;1;2,50;5\n")
    (reject,) = read(csv_feed(path), None, limit=10).rejected
    assert reject.reason == "byte 0x81 at offset 39 is not valid utf-8; the whole file is ignored"


def test_unchanged_file_gives_an_empty_batch_and_the_same_cursor(tmp_path: Path) -> None:
    path = write(tmp_path / "feed.csv", HEADER + "A1,x,5,10,23,,\n")
    feed = csv_feed(path)
    first = read(feed, None, limit=100)
    again = read(feed, first.cursor_after, limit=100)
    assert (again.stock, again.rejected, again.cursor_after, again.rows) == ([], [], first.cursor_after, [])
    # a fresh process (no cache) agrees: the cursor alone carries the state
    assert read(csv_feed(path), first.cursor_after, limit=100) == again


def test_touched_file_with_the_same_bytes_is_not_delivered_again(tmp_path: Path) -> None:
    path = write(tmp_path / "feed.csv", HEADER + "A1,x,5,10,23,,\n")
    feed = csv_feed(path)
    first = read(feed, None, limit=100)
    write(path, path.read_bytes(), age=30)  # re-exported, identical
    touched = read(feed, first.cursor_after, limit=100)
    assert touched.stock == [] and touched.cursor_after != first.cursor_after
    assert read(feed, touched.cursor_after, limit=100).cursor_after == touched.cursor_after


def test_changed_file_is_delivered_whole_as_a_snapshot(tmp_path: Path) -> None:
    path = write(tmp_path / "feed.csv", HEADER + "A1,x,5,10,23,,\nB2,y,1,10,23,,\n")
    feed = csv_feed(path)
    first = read(feed, None, limit=100)
    write(path, HEADER + "A1,x,4,10,23,,\n", age=30)
    changed = read(feed, first.cursor_after, limit=100)
    assert changed.snapshot and changed.complete and stock_of(changed) == {("A1", "default"): 4}
    assert changed.cursor_after != first.cursor_after


def test_cursor_is_a_compact_fingerprint(tmp_path: Path) -> None:
    path = write(tmp_path / "feed.csv", HEADER + "A1,x,5,10,23,,\n")
    cursor = read(csv_feed(path), None, limit=100).cursor_after
    assert cursor is not None
    version, file_token = cursor.split(";")
    name, size, mtime_ns, sha = file_token.split(":")
    st = path.stat()
    assert (name, int(size), int(mtime_ns)) == ("feed.csv", st.st_size, st.st_mtime_ns) and len(sha) == 64
    assert version.startswith("f1.")
    # another parsing option is another version: the feed is read anew under it
    assert read(csv_feed(path, decimal_comma=True), cursor, limit=100).stock != ()
    assert read(csv_feed(path), "garbage", limit=100).stock != ()


def test_folder_reads_every_feed_file_and_notices_a_new_one(tmp_path: Path) -> None:
    folder = tmp_path / "export"
    folder.mkdir()
    write(folder / "a.csv", HEADER + "A1,x,5,10,23,,\n")
    write(folder / "notes.txt", "not a feed")
    write(folder / "~$a.csv", "an office lock file")
    write(folder / ".partial.csv", "a hidden temporary file")
    feed = csv_feed(folder)
    first = read(feed, None, limit=100)
    assert stock_of(first) == {("A1", "default"): 5} and first.rejected == []
    assert read(feed, first.cursor_after, limit=100).stock == []
    write(folder / "B.CSV", "sku;name;stock;price_gross;vat_rate\nB2;y;7;1,5;8\n")
    second = read(feed, first.cursor_after, limit=100)
    assert second.snapshot and stock_of(second) == {("A1", "default"): 5, ("B2", "default"): 7}
    (folder / "a.csv").unlink()
    third = read(feed, second.cursor_after, limit=100)
    assert third.snapshot and stock_of(third) == {("B2", "default"): 7}


def test_bad_rows_are_quarantined_while_the_rest_parse(tmp_path: Path) -> None:
    path = write(tmp_path / "feed.csv", HEADER
                 + "A1,ok,5,10,23,,\n"
                 + "B2,bad,-1,0,22,5901234123458,\n"
                 + "\n"
                 + ",no sku,1,10,23,,\n"
                 + '"C3","multi\nline",2,10,23,,\n'
                 + "D4,ok too,1,10,zw,,\n")
    batch = read(csv_feed(path), None, limit=100)
    assert stock_of(batch) == {("A1", "default"): 5, ("D4", "default"): 1}
    assert batch.snapshot  # the file was read whole; the hub keeps the quarantined SKUs' last good stock
    assert [(r.source, r.sku, r.field, r.value) for r in batch.rejected] == [
        ("feed.csv:3", "B2", "stock", "-1"), ("feed.csv:3", "B2", "price_gross", "0"),
        ("feed.csv:3", "B2", "vat_rate", "22"), ("feed.csv:3", "B2", "ean", "5901234123458"),
        ("feed.csv:5", None, "sku", ""),
        # a quoted value may span lines in CSV, but a line break has no place in a product's name
        ("feed.csv:6", "C3", "name", "multi\nline"),
    ]
    assert all(r.reason for r in batch.rejected)


def test_a_row_with_more_values_than_columns_is_rejected(tmp_path: Path) -> None:
    path = write(tmp_path / "feed.csv", "sku;name;stock;price_gross;vat_rate\n"
                 "A1;Kubek; czerwony;5;10,00;23\n"  # an unquoted delimiter shifts every column
                 "B2;ok;1;2,00;23;\n"  # a trailing delimiter is harmless
                 "C3;cut\n")
    batch = read(csv_feed(path), None, limit=100)
    assert stock_of(batch) == {("B2", "default"): 1}
    assert [(r.source, r.sku, r.field) for r in batch.rejected] == [
        ("feed.csv:2", "A1", "row"), ("feed.csv:4", "C3", "row")]
    assert "unquoted ';'" in batch.rejected[0].reason and "cut-off" in batch.rejected[1].reason


def test_missing_required_column_rejects_the_whole_file(tmp_path: Path) -> None:
    path = write(tmp_path / "feed.csv", "sku;nazwa;stock;price_gross\nA1;x;5;10\n")
    batch = read(csv_feed(path), None, limit=100)
    assert (batch.products, batch.stock, batch.prices) == ([], [], [])
    assert not batch.snapshot  # so the hub zeroes nothing
    assert [(r.source, r.sku, r.field, r.value, r.reason) for r in batch.rejected] == [
        ("feed.csv:1", None, "name", "", "required column missing"),
        ("feed.csv:1", None, "vat_rate", "", "required column missing"),
    ]


def test_a_broken_file_in_a_folder_turns_the_run_into_a_plain_update(tmp_path: Path) -> None:
    write(tmp_path / "a.csv", HEADER + "A1,x,5,10,23,,\n")
    write(tmp_path / "b.csv", "sku,name,stock\nB2,y,1\n")
    batch = read(csv_feed(tmp_path), None, limit=100)
    assert stock_of(batch) == {("A1", "default"): 5}
    assert not batch.snapshot and {r.field for r in batch.rejected} == {"price_gross", "vat_rate"}


@pytest.mark.parametrize("content", ["", HEADER, "\n\n"])
def test_an_empty_export_never_zeroes_the_catalogue(tmp_path: Path, content: str) -> None:
    batch = read(csv_feed(write(tmp_path / "feed.csv", content)), None, limit=100)
    assert batch.stock == [] and not batch.snapshot and batch.rejected


def test_rows_come_in_file_order_and_the_rules_across_rows_are_left_to_the_hub(tmp_path: Path) -> None:
    write(tmp_path / "a.csv", HEADER + "A1,x,5,10,23,,\nA1,x,3,10,23,,W2\nA1,x,9,10,23,,default\n")
    write(tmp_path / "b.csv", HEADER + "A1,x,1,10,23,,W2\n")
    got = read(csv_feed(tmp_path), None, limit=100)
    # a duplicate (a.csv:4, b.csv:2) is the hub's to refuse over the whole read (tests/catalog/test_stage.py)
    assert [(r.source, r.position, r.stock.warehouse, r.stock.quantity) for r in got.rows] == [
        ("a.csv:2", 0, "default", 5), ("a.csv:3", 1, "W2", 3), ("a.csv:4", 2, "default", 9), ("b.csv:2", 3, "W2", 1)]
    assert got.snapshot and got.rejected == []
    assert len({r.fingerprint for r in got.rows}) == 4  # one per distinct raw row


def test_a_row_whose_fingerprint_is_known_is_not_parsed(tmp_path: Path) -> None:
    path = write(tmp_path / "feed.csv", HEADER + "A1,x,5,10,23,,\nB2,y,1,10,23,,\n")
    first = read(csv_feed(path), None, limit=100)
    write(path, HEADER + "A1,x,5,10,23,,\nB2,y,2,10,23,,\n")
    known = {r.fingerprint for r in first.rows}
    second = read(csv_feed(path), first.cursor_after, limit=100, known=known)
    assert [(k.source, k.position, k.fingerprint) for k in second.unchanged] == [
        ("feed.csv:2", 0, first.rows[0].fingerprint)]
    assert [(r.source, r.position, r.stock.quantity) for r in second.rows] == [("feed.csv:3", 1, 2)]
    # another option (here the decimal comma) fingerprints every row anew: none is known
    assert read(csv_feed(path, decimal_comma=True), None, limit=100, known=known).unchanged == []


def test_a_big_feed_comes_in_parts_and_a_broken_off_read_starts_over(tmp_path: Path) -> None:
    rows = "".join(f"S{i:03d},x,{i},10,23,,\n" for i in range(7))
    path = write(tmp_path / "feed.csv", HEADER + rows + "BAD,x,-1,10,23,,\n")
    feed = csv_feed(path)
    parts = [feed.changes(None, limit=3)]
    while not parts[-1].complete:
        parts.append(feed.changes(parts[-1].cursor_after, limit=3))
    assert [len(p.rows or ()) for p in parts] == [3, 3, 1] and all(p.snapshot for p in parts)
    assert [len(p.rejected) for p in parts] == [0, 0, 1] and [p.fresh_read for p in parts] == [True, False, False]
    assert parts[0].cursor_after is not None and parts[0].cursor_after.endswith(";@3")
    assert parts[-1].cursor_after == read(feed, None, limit=100).cursor_after
    # another process resuming from a mid-read cursor delivers the whole feed again (the hub applies
    # a read only whole)
    resumed = csv_feed(path).changes(parts[0].cursor_after, limit=100)
    assert len(resumed.rows or ()) == 7 and resumed.complete and resumed.rejected


def test_snapshot_ignores_the_cursor_and_comes_in_parts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(filefeed, "SNAPSHOT_BATCH", 2)
    path = write(tmp_path / "feed.csv", HEADER + "".join(f"S{i},x,{i},10,23,,\n" for i in range(5)))
    feed = csv_feed(path)
    read(feed, None, limit=100)
    parts = list(feed.snapshot())
    assert [len(p.rows or ()) for p in parts] == [2, 2, 1]
    assert [p.complete for p in parts] == [False, False, True] and all(p.snapshot for p in parts)


def test_a_file_changed_between_the_two_passes_breaks_the_read_off(tmp_path: Path) -> None:
    path = write(tmp_path / "feed.csv", HEADER + "".join(f"S{i},x,{i},10,23,,\n" for i in range(5)))
    feed = csv_feed(path)
    parts = feed.snapshot()
    write(path, HEADER + "S0,x,1,10,23,,\n")  # the ERP exported again after the first pass
    with pytest.raises(RetryableError, match="changed while it was read"):
        list(parts)


def test_a_file_still_being_written_is_left_for_the_next_run(tmp_path: Path) -> None:
    path = write(tmp_path / "feed.csv", HEADER + "A1,x,5,10,23,,\n", age=0)
    feed = csv_feed(path, settle="30s")
    assert feed.changes("f1.x;old", limit=100) == ErpBatch((), (), (), (), "f1.x;old")
    with pytest.raises(RetryableError, match="modified"):
        list(feed.snapshot())
    write(path, path.read_bytes(), age=31)
    assert read(feed, None, limit=100).stock != ()


def test_a_missing_feed_is_an_error_not_an_empty_catalogue(tmp_path: Path) -> None:
    with pytest.raises(RetryableError, match="no such file or folder"):
        read(csv_feed(tmp_path / "nowhere.csv"), None, limit=10)
    with pytest.raises(RetryableError, match=r"no \*\.csv file"):
        read(csv_feed(tmp_path), None, limit=10)


def test_jsonl_values_as_numbers_or_text_and_bad_lines(tmp_path: Path) -> None:
    path = write(tmp_path / "feed.jsonl", "\n".join([
        '{"sku": "A1", "name": "Kubek", "stock": 5, "price_gross": 19.99, "vat_rate": 23, "ean": "5901234123457"}',
        '{"sku": "B2", "name": "Łyżka", "stock": "2,0", "price_gross": "1 299,00", "vat_rate": "ZW", "cost_net": 0.1}',
        '{"sku": "C3", "name": "x", "stock": 1.5, "price_gross": NaN, "vat_rate": "23"}',
        '{"sku": "D4", "name": "x"',
        '["E5"]',
        '{"SKU": "F6", "Name": "no price"}',
        "",
    ]))
    batch = read(jsonl_feed(path), None, limit=100)
    assert stock_of(batch) == {("A1", "default"): 5, ("B2", "default"): 2}
    assert [p.price_gross for p in batch.prices] == [Decimal("19.99"), Decimal("1299.00")]
    assert batch.prices[1].cost_net == Decimal("0.1") and batch.products[1].vat_rate == "zw"
    assert [(r.source, r.sku, r.field) for r in batch.rejected] == [
        ("feed.jsonl:3", None, "line"), ("feed.jsonl:4", None, "line"), ("feed.jsonl:5", None, "line"),
        ("feed.jsonl:6", "F6", "stock"), ("feed.jsonl:6", "F6", "price_gross"), ("feed.jsonl:6", "F6", "vat_rate"),
    ]
    assert batch.snapshot


def test_jsonl_a_key_absent_from_every_line_is_a_missing_column(tmp_path: Path) -> None:
    path = write(tmp_path / "feed.jsonl", '{"sku": "A1", "name": "x", "qty": 5, "price_gross": 1, "vat_rate": 23}\n')
    batch = read(jsonl_feed(path), None, limit=100)
    assert batch.stock == [] and not batch.snapshot
    assert [(r.source, r.field, r.value, r.reason) for r in batch.rejected] == [
        ("feed.jsonl", "stock", "", "required column missing")]


def test_jsonl_folder_reads_only_jsonl_files(tmp_path: Path) -> None:
    write(tmp_path / "a.jsonl", '{"sku": "A1", "name": "x", "stock": 5, "price_gross": 1, "vat_rate": 23}\n')
    write(tmp_path / "b.csv", HEADER + "B2,y,1,10,23,,\n")
    assert stock_of(read(jsonl_feed(tmp_path), None, limit=100)) == {("A1", "default"): 5}


def test_specs_options_and_factory(tmp_path: Path) -> None:
    assert (CSV_SPEC.kind, JSONL_SPEC.kind) == ("csv", "jsonl")
    for spec in (CSV_SPEC, JSONL_SPEC):
        assert spec.role == "erp" and spec.options_model is not None
        # sales documents and restocks once an outbox is configured (the instance's capabilities say)
        assert spec.capabilities == {Capability.ERP_INCREMENTAL, Capability.ERP_SNAPSHOT,
                                     Capability.ERP_SALES_DOCUMENTS, Capability.ERP_RESTOCK}
    options = CsvOptions.model_validate({"path": str(tmp_path), "encoding": "CP1250", "settle": "0",
                                         "delimiter": ";", "decimal_comma": True})
    assert (options.encoding, options.settle, options.decimal_comma_flag) == ("windows-1250", 0.0, True)
    assert CsvOptions(path=tmp_path).decimal_comma_flag is None and CsvOptions(path=tmp_path).settle == 2.0
    for bad in ({"delimiter": "\t"}, {"encoding": "latin-2"}, {"colour": "red"}, {"settle": "-1s"}):
        with pytest.raises(ValidationError):
            CsvOptions.model_validate({"path": str(tmp_path), **bad})
    with pytest.raises(ValidationError):
        JsonlOptions.model_validate({"path": str(tmp_path), "delimiter": ";"})
    source = CSV_SPEC.factory("shop-erp", options, SimpleNamespace(log=None))
    assert isinstance(source, ErpSource) and source.name == "shop-erp"
    assert JSONL_SPEC.factory("j", JsonlOptions(path=tmp_path), SimpleNamespace(log=None)).fmt == "jsonl"
