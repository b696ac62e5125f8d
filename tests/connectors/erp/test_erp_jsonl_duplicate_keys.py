"""A JSON-lines row naming a key twice is rejected, not read with whichever value json keeps (the last):
like a CSV header naming a column twice, it leaves open which value the ERP meant."""

from __future__ import annotations

import os
import time
from pathlib import Path

from connectors.erp.filefeed import FileFeed, JsonlOptions
from tests.support.feeds import Read, read_whole

ROW = '"name": "Kubek", "stock": 5, "price_gross": "19.99", "vat_rate": 23'


def read(tmp_path: Path, *lines: str) -> Read:
    path = tmp_path / "feed.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    past = time.time() - 60  # settled
    os.utime(path, (past, past))
    return read_whole(FileFeed("erp", JsonlOptions(path=path), fmt="jsonl"), None)


def test_a_sku_given_twice_rejects_the_line_under_both_skus(tmp_path: Path) -> None:
    batch = read(tmp_path, f'{{"sku": "A1", {ROW}, "sku": "A9"}}', f'{{"sku": "B2", {ROW}}}')
    assert [s.sku for s in batch.stock] == ["B2"]  # neither A1 nor A9 imported
    assert [(r.source, r.sku, r.field) for r in batch.rejected] == [
        ("feed.jsonl:1", "A1", "sku"), ("feed.jsonl:1", "A9", "sku")]  # both keep their last good stock
    assert {r.reason for r in batch.rejected} == {
        "the key 'sku' appears more than once in the line (which value is meant?)"}
    assert batch.rejected[0].value.startswith('{"sku": "A1"')
    assert batch.snapshot  # a per-row reject, as a line that is not valid JSON


def test_another_key_given_twice(tmp_path: Path) -> None:
    batch = read(tmp_path, f'{{"sku": "A1", {ROW}, "stock": 500}}', f'{{"sku": "B2", {ROW}}}')
    assert [s.sku for s in batch.stock] == ["B2"]
    assert [(r.sku, r.field, r.reason) for r in batch.rejected] == [
        ("A1", "stock", "the key 'stock' appears more than once in the line (which value is meant?)")]


def test_one_column_under_two_spellings(tmp_path: Path) -> None:
    batch = read(tmp_path, f'{{"sku": "A1", {ROW}, "Stock ": 500}}', f'{{"sku": "B2", {ROW}}}')
    assert [s.sku for s in batch.stock] == ["B2"]
    assert [(r.sku, r.field, r.reason) for r in batch.rejected] == [
        ("A1", "stock", "the keys 'stock' and 'Stock ' are the same column stock (which value is meant?)")]


def test_a_nested_key_given_twice_and_unknown_keys_in_two_spellings(tmp_path: Path) -> None:
    batch = read(tmp_path, f'{{"sku": "A1", {ROW}, "extra": {{"k": 1, "k": 2}}}}',
                 f'{{"sku": "B2", {ROW}, "Note": "x", "note": "y"}}')
    assert [s.sku for s in batch.stock] == ["B2"]  # unknown columns are ignored, whatever their spelling
    assert [(r.source, r.sku, r.field, r.reason) for r in batch.rejected] == [
        ("feed.jsonl:1", "A1", "line", "the key 'k' appears more than once in the line (which value is meant?)")]


def test_distinct_keys_are_read_as_before(tmp_path: Path) -> None:
    batch = read(tmp_path, f'{{"sku": "A1", {ROW}}}', '["A1"]', '{"sku": "C3", "sku"')
    assert [s.sku for s in batch.stock] == ["A1"]
    assert [(r.source, r.field) for r in batch.rejected] == [("feed.jsonl:2", "line"), ("feed.jsonl:3", "line")]
    assert batch.rejected[0].reason == "the line is not a JSON object"
    assert batch.rejected[1].reason.startswith("the line is not valid JSON")
