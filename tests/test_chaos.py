"""The chaos benchmark's short version on every run: two real `hub run` processes on the suite's
PostgreSQL, the simulators' faults on, a handful of SIGKILLs, and every invariant of bench/chaos.py
(orders, reservations, ERP documents, refunds, listings, dead jobs) must hold at zero."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

BENCH = Path(__file__).resolve().parents[1] / "bench" / "chaos.py"


def _bench() -> ModuleType:
    """bench/ is no package (its queue.py would shadow the standard library's): load the file itself."""
    name = "bench_chaos"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, BENCH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up while the file runs
    spec.loader.exec_module(module)
    return module


def test_two_hub_processes_killed_at_random_lose_nothing(pg_url: str, tmp_path: Path) -> None:
    chaos = _bench()
    options = chaos.QUICK
    lines: list[str] = []
    result = chaos.run(options, pg_url, tmp_path / "chaos")
    chaos.report(result, lines.append)
    shown = "\n".join(lines) + f"\n(work dir {tmp_path / 'chaos'}, hub logs in its logs/)"

    # the run did what it says: every kill, real traffic on both channels, the ERP booking documents
    assert result.counts["kills"] == options.kills, shown
    assert result.counts["orders"] >= 15, shown
    assert result.counts["ERP documents"] >= 10, shown
    assert result.counts["returns accepted"] >= 1, shown
    assert result.figures == dict.fromkeys(chaos.FIGURES, 0), shown
    assert result.counts["settled"] == 1, shown  # zero, and still zero a moment later
