"""File-level rejects (a bad encoding, a missing column) last exactly as long as the file that caused
them: once the ERP writes the file anew, the old problem leaves the quarantine, and the new read's own
problems (if any) take its place."""

from __future__ import annotations

import os
import time
from pathlib import Path

from sqlalchemy import Engine, select

from connectors.erp.filefeed import CsvOptions, FileFeed
from hub.catalog import poll_erp
from hub.catalog.models import ErpReject, StockLevel
from hub.platform.db import transaction

HEADER = "sku;name;stock;price_gross;vat_rate\n"


def _write(path: Path, data: bytes, age: float) -> None:
    path.write_bytes(data)
    stamp = time.time() - age
    os.utime(path, (stamp, stamp))


def _quarantine(engine: Engine) -> list[tuple[str, str | None, str]]:
    with transaction(engine) as session:
        return sorted((r.source, r.sku, r.field) for r in session.execute(select(ErpReject)).scalars())


def test_file_level_rejects_are_cleared_once_the_file_changes(engine: Engine, tmp_path: Path) -> None:
    feed_path = tmp_path / "feed.csv"
    feed = FileFeed("erp", CsvOptions(path=feed_path, encoding="utf-8", settle=0), fmt="csv")
    good = HEADER + "A1;Zolw;4;2,50;5\nB2;Kot;1;3,00;23\n"
    _write(feed_path, good.encode(), age=300)
    poll_erp(engine, feed, "erp")
    assert _quarantine(engine) == []

    # the ERP switches to windows-1250: the whole file is refused, stock stays as it was
    _write(feed_path, (HEADER + "A1;Żółw;3;2,50;5\nB2;Kot;1;3,00;23\n").encode("windows-1250"), age=200)
    result = poll_erp(engine, feed, "erp")
    assert (result.rejected, result.zeroed) == (1, 0)
    assert _quarantine(engine) == [("feed.csv:2", None, "encoding")]

    # read again unchanged: the same problem, nothing new
    poll_erp(engine, feed, "erp")
    assert _quarantine(engine) == [("feed.csv:2", None, "encoding")]

    # written anew, broken another way (a column missing): only the new problem is listed
    _write(feed_path, b"sku;name;price_gross;vat_rate\nA1;Zolw;2,50;5\n", age=100)
    poll_erp(engine, feed, "erp")
    assert _quarantine(engine) == [("feed.csv:1", None, "stock")]

    # and a row-level problem of a new read replaces it too; the good rows are read
    _write(feed_path, (HEADER + "A1;Zolw;2;2,50;5\n;no sku;1;3,00;23\n").encode(), age=50)
    poll_erp(engine, feed, "erp")
    assert _quarantine(engine) == [("feed.csv:3", None, "sku")]
    with transaction(engine) as session:
        assert session.get(StockLevel, ("A1", "default")).quantity == 2

    # fixed: the quarantine is empty
    _write(feed_path, good.encode(), age=10)
    poll_erp(engine, feed, "erp")
    assert _quarantine(engine) == []


def test_a_rows_old_problem_leaves_when_the_new_read_finds_another(engine: Engine, tmp_path: Path) -> None:
    """A1's stock was -1; in the next file A1 is listed twice (stock 10, then 5): the quarantine shows
    the duplicate, not the stock of a file that is gone."""
    feed_path = tmp_path / "feed.csv"
    feed = FileFeed("erp", CsvOptions(path=feed_path, settle=0), fmt="csv")
    _write(feed_path, (HEADER + "A1;Mug;-1;29,99;23\nB2;Kot;1;3,00;23\n").encode(), age=300)
    poll_erp(engine, feed, "erp")
    assert _quarantine(engine) == [("feed.csv:2", "A1", "stock")]
    _write(feed_path, (HEADER + "A1;Mug;10;29,99;23\nA1;Mug;5;29,99;23\nB2;Kot;1;3,00;23\n").encode(), age=100)
    poll_erp(engine, feed, "erp")
    assert _quarantine(engine) == [("feed.csv:3", "A1", "sku")]
    with transaction(engine) as session:
        assert session.get(StockLevel, ("A1", "default")).quantity == 10  # the first row wins
