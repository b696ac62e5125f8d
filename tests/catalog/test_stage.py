"""A read of the whole catalogue applied in the database (hub.catalog.stage): the rules across rows over
the whole read, only changed rows written, unchanged rows skipped by fingerprint, absent stock zeroed,
and a read that breaks off or goes stale leaving nothing behind."""

from __future__ import annotations

import os
import time
from collections.abc import Container, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, select, update

from connectors.erp.filefeed import CsvOptions, FileFeed
from hub.catalog import stage
from hub.catalog.models import DirtySku, ErpCursor, ErpReject, Product, StockLevel
from hub.catalog.poll import poll_erp
from hub.catalog.stage import KNOWN, ROWS, Stage
from hub.kernel.errors import RetryableError
from hub.kernel.ports.erp import ErpBatch, FeedRow, KnownRow
from hub.platform import db
from hub.platform.db import transaction

HEADER = "sku,name,stock,price_gross,vat_rate,ean,warehouse\n"


def write(path: Path, content: str, *, age: float = 60.0) -> Path:
    path.write_text(content, encoding="utf-8")
    stamp = time.time() - age
    os.utime(path, (stamp, stamp))
    return path


def feed(path: Path) -> FileFeed:
    return FileFeed("erp", CsvOptions(path=path, settle=0), fmt="csv")


def stock(engine: Engine) -> dict[tuple[str, str], int]:
    with transaction(engine) as s:
        return {(r.sku, r.warehouse): r.quantity for r in s.execute(select(StockLevel)).scalars()}


def quarantine(engine: Engine) -> list[tuple[str, str | None, str]]:
    with transaction(engine) as s:
        return sorted((r.source, r.sku, r.field) for r in s.execute(select(ErpReject)).scalars())


def clear_dirty(engine: Engine) -> None:
    with transaction(engine) as s:
        s.execute(DirtySku.__table__.delete())


def dirty(engine: Engine) -> set[str]:
    with transaction(engine) as s:
        return set(s.execute(select(DirtySku.sku)).scalars())


def test_duplicates_and_disagreeing_rows_across_files_keep_the_first(engine: Engine, tmp_path: Path) -> None:
    write(tmp_path / "a.csv", HEADER + "A1,x,5,10,23,,\nA1,x,3,10,23,,W2\nA1,x,9,10,23,,default\n")
    write(tmp_path / "b.csv", HEADER + "A1,x,1,10,23,,W2\nA1,x,1,12,23,,W3\n")
    result = poll_erp(engine, feed(tmp_path), "erp")
    assert stock(engine) == {("A1", "default"): 5, ("A1", "W2"): 3}
    assert (result.products, result.rejected, result.new) == (2, 3, 1)
    # three rows refused (a.csv:4 and b.csv:2 as duplicates); the quarantine keeps one entry per SKU and
    # field, the last
    assert quarantine(engine) == [("b.csv:2", "A1", "sku"), ("b.csv:3", "A1", "price_gross")]
    with transaction(engine) as s:
        reasons = {r.source: r.reason for r in s.execute(select(ErpReject)).scalars()}
    assert "a.csv:3 has it already" in reasons["b.csv:2"] and "differs from a.csv:2" in reasons["b.csv:3"]


@pytest.mark.parametrize("limit", [stage.KNOWN_LIMIT, 5])
def test_a_second_read_parses_only_changed_rows_and_writes_only_what_changed(
    engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, limit: int
) -> None:
    """Beyond KNOWN_LIMIT stored fingerprints (6 here against 5) no row is skipped: every row is parsed and
    compared in the database, with the same outcome."""
    monkeypatch.setattr(stage, "KNOWN_LIMIT", limit)
    path = write(tmp_path / "feed.csv", HEADER + "".join(f"S{i},x,{i},10,23,,\n" for i in range(6)))
    source = feed(path)
    first = poll_erp(engine, source, "erp")
    assert (first.products, first.changed, first.new) == (6, 6, 6)
    clear_dirty(engine)
    with transaction(engine) as s:  # a mark on every stock row: a row written again loses it
        s.execute(update(StockLevel).values(updated_at=StockLevel.updated_at))
        before = {r.sku: r.updated_at for r in s.execute(select(StockLevel)).scalars()}
    # S1's stock and S2's price change, S5 leaves the feed, S6 is new
    write(path, HEADER + "S0,x,0,10,23,,\nS1,x,7,10,23,,\nS2,x,2,11,23,,\nS3,x,3,10,23,,\nS4,x,4,10,23,,\n"
          "S6,x,6,10,23,,\n", age=30)
    asked: list[int] = []

    class Spy(FileFeed):
        def _row(self, raw, source, position, fingerprint, **options):  # type: ignore[no-untyped-def]
            asked.append(position)
            return super()._row(raw, source, position, fingerprint, **options)

    second = poll_erp(engine, Spy("erp", CsvOptions(path=path, settle=0), fmt="csv"), "erp")
    if limit >= 6:
        assert sorted(asked) == [1, 2, 5]  # S1, S2 and S6 parsed; S0, S3, S4 known by their fingerprints
    else:
        assert sorted(asked) == [0, 1, 2, 3, 4, 5]  # too many fingerprints to hold: every row parsed
    assert stock(engine) == {("S0", "default"): 0, ("S1", "default"): 7, ("S2", "default"): 2,
                             ("S3", "default"): 3, ("S4", "default"): 4, ("S5", "default"): 0,
                             ("S6", "default"): 6}
    assert (second.products, second.zeroed, second.new, second.changed) == (6, 1, 1, 4)
    assert dirty(engine) == {"S1", "S2", "S5", "S6"}
    with transaction(engine) as s:
        after = {r.sku: r.updated_at for r in s.execute(select(StockLevel)).scalars()}
        assert s.get(Product, "S2").price_gross == 11
    assert [sku for sku in ("S0", "S3", "S4") if after[sku] != before[sku]] == []  # not written again


def test_a_zeroed_row_listed_again_is_read_not_skipped(engine: Engine, tmp_path: Path) -> None:
    path = write(tmp_path / "feed.csv", HEADER + "A1,x,5,10,23,,\nB2,y,3,10,23,,\n")
    poll_erp(engine, feed(path), "erp")
    write(path, HEADER + "A1,x,5,10,23,,\n", age=40)
    poll_erp(engine, feed(path), "erp")
    assert stock(engine)[("B2", "default")] == 0
    write(path, HEADER + "A1,x,5,10,23,,\nB2,y,3,10,23,,\n", age=20)  # the same line as the first time
    poll_erp(engine, feed(path), "erp")
    assert stock(engine)[("B2", "default")] == 3


def test_a_new_row_before_an_unchanged_one_of_its_key_wins(engine: Engine, tmp_path: Path) -> None:
    path = write(tmp_path / "feed.csv", HEADER + "A1,x,5,10,23,,\nB2,y,3,10,23,,\n")
    poll_erp(engine, feed(path), "erp")
    write(path, HEADER + "B2,y,9,10,23,,\nA1,x,5,10,23,,\nB2,y,3,10,23,,\n", age=30)
    result = poll_erp(engine, feed(path), "erp")
    assert stock(engine) == {("A1", "default"): 5, ("B2", "default"): 9}
    assert quarantine(engine) == [("feed.csv:4", "B2", "sku")] and result.rejected == 1
    # the row the quarantine refused is no longer the stored one: the next read parses it again
    write(path, HEADER + "A1,x,5,10,23,,\nB2,y,3,10,23,,\n", age=20)
    poll_erp(engine, feed(path), "erp")
    assert stock(engine)[("B2", "default")] == 3 and quarantine(engine) == []


def test_an_unchanged_row_listed_twice_is_a_duplicate(engine: Engine, tmp_path: Path) -> None:
    """Both copies are known by their fingerprint, neither is parsed: the read still finds the second
    (the stage's unique index on the unchanged rows' fingerprints fails, and the rules look for it)."""
    path = write(tmp_path / "feed.csv", HEADER + "A1,x,5,10,23,,\nB2,y,3,10,23,,\n")
    poll_erp(engine, feed(path), "erp")
    write(path, HEADER + "A1,x,5,10,23,,\nB2,y,3,10,23,,\nA1,x,5,10,23,,\n", age=30)
    result = poll_erp(engine, feed(path), "erp")
    assert quarantine(engine) == [("feed.csv:4", "A1", "sku")] and result.rejected == 1
    assert stock(engine) == {("A1", "default"): 5, ("B2", "default"): 3}
    write(path, HEADER + "A1,x,5,10,23,,\nB2,y,3,10,23,,\n", age=20)  # once again: released
    assert poll_erp(engine, feed(path), "erp").rejected == 0 and quarantine(engine) == []


def test_an_unchanged_row_disagreeing_with_an_earlier_changed_one_is_refused(engine: Engine, tmp_path: Path) -> None:
    path = write(tmp_path / "feed.csv", HEADER + "A1,x,5,10,23,,W1\nA1,x,3,10,23,,W2\n")
    poll_erp(engine, feed(path), "erp")
    write(path, HEADER + "A1,x,5,12,23,,W1\nA1,x,3,10,23,,W2\n", age=30)  # W1's price moves, W2 says 10
    poll_erp(engine, feed(path), "erp")
    assert quarantine(engine) == [("feed.csv:3", "A1", "price_gross")]
    with transaction(engine) as s:
        assert s.get(Product, "A1").price_gross == 12
    assert stock(engine) == {("A1", "W1"): 5, ("A1", "W2"): 3}  # a quarantined SKU keeps its last stock


class _Parts:
    """A source whose read breaks off after its first part."""

    name = "erp"

    def __init__(self, first: ErpBatch) -> None:
        self.first = first

    def changes(self, cursor: str | None, *, limit: int, known: Container[int] = frozenset()) -> ErpBatch:
        raise AssertionError("not used")

    def snapshot(self, *, known: Container[int] = frozenset()) -> Iterator[ErpBatch]:
        yield self.first
        raise RetryableError("the ERP's database went away")


def test_a_read_that_breaks_off_leaves_nothing_and_keeps_the_cursor(engine: Engine, tmp_path: Path) -> None:
    path = write(tmp_path / "feed.csv", HEADER + "A1,x,5,10,23,,\nB2,y,3,10,23,,\n")
    poll_erp(engine, feed(path), "erp")
    with transaction(engine) as s:
        cursor = s.get(ErpCursor, "erp").cursor
    write(path, HEADER + "A1,x,1,10,23,,\n", age=30)
    first = next(iter(feed(path).snapshot()))
    broken = ErpBatch((), (), (), (), "other", complete=False, snapshot=True, rows=first.rows)
    with pytest.raises(RetryableError):
        poll_erp(engine, _Parts(broken), "erp", full=True)
    assert stock(engine) == {("A1", "default"): 5, ("B2", "default"): 3}
    with transaction(engine) as s:
        assert s.get(ErpCursor, "erp").cursor == cursor
    poll_erp(engine, feed(path), "erp")  # the temporary tables of the broken read are gone or replaced
    assert stock(engine) == {("A1", "default"): 1, ("B2", "default"): 0}


def test_a_read_gone_stale_is_read_again(engine: Engine, tmp_path: Path) -> None:
    """Another process applied a read of the same ERP after this one loaded the fingerprints it skips
    rows by: this read starts over instead of trusting rows that may no longer be the stored ones."""
    path = write(tmp_path / "feed.csv", HEADER + "A1,x,5,10,23,,\nB2,y,3,10,23,,\n")
    poll_erp(engine, feed(path), "erp")
    write(path, HEADER + "A1,x,5,10,23,,\nB2,y,4,10,23,,\n", age=30)
    reads: list[int] = []

    class Racing(FileFeed):
        def snapshot(self, *, known: Container[int] = frozenset()) -> Iterator[ErpBatch]:
            reads.append(len(reads))
            parts = list(super().snapshot(known=known))
            if len(reads) == 1:  # meanwhile, another process applies its own read
                poll_erp(engine, feed(path), "erp", full=True)
            return iter(parts)

    result = poll_erp(engine, Racing("erp", CsvOptions(path=path, settle=0), fmt="csv"), "erp", full=True)
    assert len(reads) == 2 and result.products == 2
    assert stock(engine) == {("A1", "default"): 5, ("B2", "default"): 4}
    with transaction(engine) as s:
        assert s.get(ErpCursor, "erp").generation == 3


def test_a_dry_run_stages_and_applies_in_the_callers_transaction(engine: Engine, tmp_path: Path) -> None:
    path = write(tmp_path / "feed.csv", HEADER + "A1,x,5,10,23,,\n")
    with transaction(engine) as s:
        result = poll_erp(engine, feed(path), "erp", session=s)
        assert result.new == 1 and s.get(StockLevel, ("A1", "default")).quantity == 5
        s.rollback()
    assert stock(engine) == {}


@pytest.mark.postgres
def test_a_read_that_rewrote_much_of_the_catalogue_refreshes_the_planner_statistics(pg_url: str,
                                                                                     tmp_path: Path) -> None:
    """PostgreSQL plans the next read's joins from its statistics: after a read that rewrote a tenth of
    the catalogue (and at least 10,000 rows) they are taken again at once, not when autovacuum comes
    round; a read that changed little leaves them."""
    from hub.platform.db import make_engine

    engine = make_engine(pg_url)

    def analyzed() -> Any:
        with engine.connect() as conn:
            return conn.exec_driver_sql("SELECT last_analyze FROM pg_stat_user_tables WHERE relname = 'products'"
                                        ).scalar()

    try:
        path = write(tmp_path / "feed.csv", HEADER + "".join(f"S{i},x,{i % 7},10,23,,\n" for i in range(10_000)))
        assert analyzed() is None
        assert poll_erp(engine, feed(path), "erp").changed == 10_000
        first = analyzed()
        assert first is not None
        write(path, HEADER + "".join(f"S{i},x,{i % 7 + (i < 50)},10,23,,\n" for i in range(10_000)), age=30)
        assert poll_erp(engine, feed(path), "erp").changed == 50
        assert analyzed() == first
    finally:
        engine.dispose()


def test_rows_and_known_rows_are_staged_as_they_are() -> None:
    """The stage writes a part's FeedRows and KnownRows as the tuples they are: their fields are its tables'
    columns, in order."""
    short = {"position": "pos", "fingerprint": "fp"}
    assert [short.get(f, f) for f in FeedRow._fields] == [c.name for c in ROWS.columns]
    assert [short.get(f, f) for f in KnownRow._fields] == [c.name for c in KNOWN.columns]


def test_sqlite_keeps_temporary_tables_in_a_file_not_in_memory(tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """A snapshot's stage is as large as the feed, a whole-catalogue recompute's computed table as the
    catalogue: in SQLite's memory they grew with it (bench/scale.py (a): 490 MiB at 1,000,000 SKUs; (c):
    389 MiB at 1,000,000, 705 MiB at 2,000,000). In a file: (a) 175 MiB at 1,000,000 and 177 MiB at
    2,000,000, (c) 76 MiB. Every connection keeps them in a file, a read's own one too."""
    engine = db.make_engine(f"sqlite:///{tmp_path / 'hub.db'}")
    db.upgrade(engine)
    seen: list[int] = []
    prepare = Stage.prepare

    def watching(self: Stage, erp: str) -> None:
        seen.append(self.connection.exec_driver_sql("PRAGMA temp_store").scalar())
        prepare(self, erp)

    monkeypatch.setattr(Stage, "prepare", watching)
    write(tmp_path / "feed.csv", HEADER + "A1,Kubek,5,10.00,23,,MAG\n")
    assert poll_erp(engine, feed(tmp_path / "feed.csv"), "erp", full=True).products == 1
    with engine.connect() as conn:
        pooled = conn.exec_driver_sql("PRAGMA temp_store").scalar()
    engine.dispose()
    assert seen == [1] and pooled == 1  # 1: FILE (2 would be MEMORY)
