"""Every kind of bad input in the catalogue (tests/cli/bad_input.py) gets its answer: the exit code,
one line on stderr naming what is wrong (never a traceback), or the row quarantined while the rest is read."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.cli.bad_input import CASES, Case, run_case


def _id(case: Case) -> str:
    return f"{case.area}-" + re.sub(r"[^a-z0-9]+", "-", case.what.lower()).strip("-")[:60]


def test_the_catalogue_is_wide_and_its_entries_distinct() -> None:
    assert len(CASES) >= 60
    assert len({(c.area, c.what) for c in CASES}) == len(CASES)
    assert {c.area for c in CASES} >= {"config", "mappings", "feed", "competitors", "cli", "database", "vendor"}


@pytest.mark.parametrize("case", CASES, ids=_id)
def test_bad_input(case: Case, tmp_path: Path) -> None:
    result = run_case(case, tmp_path)
    assert "Traceback" not in result.stderr, result.stderr
    assert (result.exit, case.expect in result.line) == (case.exit, True), result.line
    lines = result.stderr.strip().splitlines()
    if case.exit != 0:
        assert len(lines) == 1 and lines[0].startswith("hub"), result.stderr  # one line, and only one
    elif not case.quarantine:
        assert all(line.startswith("warning: ") for line in lines), result.stderr
