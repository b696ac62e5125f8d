"""A short soak (bench/soak.py --quick): `hub run` under orders on both channels, a changing ERP feed and
the ERP importing the sales documents, for 30 s on each backend.

Thirty seconds cannot show a slope, so this asserts what is robust at that length: every order taken
once, the ERP fed each sales document once, the channels converged, the median job wait within the
goal and no job waiting long, the queue bounded during the load and drained after it, and the process
not accumulating file descriptors or threads (its pools held to their sizes, every other fd to the
start's count). bench/soak.py (25 minutes by default) measures slopes.
"""

from __future__ import annotations

import importlib.util
import statistics
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
MAX_WAIT = 30.0  # seconds: no job waits this long for a worker (the median goal is 5 s)
MAX_DEPTH = 100  # open jobs at any sample of the load (a quick run sees about 10)


def _soak() -> Any:
    """bench/soak.py as a module (bench/ is no package)."""
    if "bench_soak" not in sys.modules:
        spec = importlib.util.spec_from_file_location("bench_soak", ROOT / "bench" / "soak.py")
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules["bench_soak"] = module  # dataclasses look their module up
        spec.loader.exec_module(module)
    return sys.modules["bench_soak"]


@pytest.mark.slow
def test_a_short_soak_takes_every_order_once_and_converges(
    backend: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    soak = _soak()
    server = request.getfixturevalue("pg_server") if backend == "postgresql" else None
    said: list[str] = []
    result = soak.run(backend, soak.QUICK, server=server, base=tmp_path / "soak", say=said.append)
    report = "\n".join(said + soak.report(result)) + f"\n(hub log: {tmp_path / 'soak' / 'hub.log'})"
    params = soak.QUICK
    print(report)  # the figures: pytest -rP

    expected = params.minutes * 60 / params.order_every
    assert all(n >= 0.8 * expected for n in result.orders_placed.values()), report
    assert result.every_order_once, report
    assert result.order_summary["orders"] == result.orders_total, report
    booked = result.order_summary["booked"]
    assert result.documents_imported == booked and result.documents_twice == 0, report
    assert booked >= result.orders_total - result.order_summary["oversold"] - result.order_summary["problems"], report

    assert result.settle_s is not None, report
    assert result.stock_mismatch == 0, report
    assert all(n == params.skus for n in result.bound.values()), report
    assert not result.not_converged, report
    assert result.desired_wrong == 0, report
    assert result.converged, report

    waits = result.waits()
    assert len(waits) > 100, report
    assert statistics.median(waits) <= soak.WAIT_GOAL, report
    assert max(waits) <= MAX_WAIT, report
    # started_at is the claim of a batch that runs one job after the other: also from run_at to the real start
    delays = list(result.start_delays().values())
    assert statistics.median(delays) <= soak.WAIT_GOAL and max(delays) <= MAX_WAIT, report

    load = result.load_samples()
    assert max(s.open_jobs for s in load) <= MAX_DEPTH, report
    assert not {k: n for k, n in result.open_end.items() if n and k not in soak.PERIODIC}, report
    # not accumulating: the pools open what they need up to their sizes (the database's connections, the
    # tick threads), so those are held to their ceilings; every other fd (files, the channels' sockets: one
    # per worker and channel at most) to the start's count and a little
    assert max(s.db_connections for s in load) <= 2 * soak.POOL_SIZE, report
    assert all(s.db_connections > 0 for s in load), report  # the count sees the connections at all
    assert load[-1].other_fds <= load[0].other_fds + 8, report
    assert max(s.threads for s in load) <= soak.THREAD_CEILING, report

    assert result.dead == 0, report
    assert result.hub_exit == 0, report
