"""Sync benchmarks: how fast the diff is, how few requests a push costs, how fast a change travels.

1. diff: 1,000,000 SKUs x 2 channels with 1% changed. The hub's diff (hub.sync.plan: the
   set-based selection plus building the push items, dry run; and the full plan that
   enqueues the push jobs and marks them in flight) against a raw SQL join over the same
   tables in the same run (psycopg / sqlite3 cursor, no ORM). Goal: hub <= 2x raw. Peak RSS
   of this process. Goal: <= 1 GiB.
2. requests: HTTP requests the Allegro simulator receives for 10,000 changed offers pushed
   through the hub. Goal: <= 30 (per-offer PATCH would be 10,000).
3. propagation: a stock change written to the ERP feed file reaches the Allegro simulator,
   with a 1 s ERP poll interval, 100 samples. Goal: p50 <= 1 s, p99 <= 2 s.

Run: .venv/bin/python bench/sync.py [--only diff,requests,propagation] [--skus N] [--samples N]
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
# bench/queue.py would shadow the standard library's queue module: run from the repo root instead
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != ROOT / "bench"]
sys.path.insert(0, str(ROOT))

from hub import db, pgtemp  # noqa: E402
from hub.config import LogSettings, load  # noqa: E402
from hub.logs import configure as configure_logging  # noqa: E402

CHANNELS = ("marketplace", "shop")


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def timed(fn: Callable[[], Any], repeat: int = 3) -> tuple[float, Any]:
    best = float("inf")
    result = None
    for _ in range(repeat):
        start = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - start)
    return best, result


# --- 1. diff ---------------------------------------------------------------------------------------

RAW_DIFF = """
SELECT l.id, l.external_id, l.sku, l.currency, l.desired_quantity, l.ack_quantity, l.desired_price, l.ack_price
FROM listings l LEFT JOIN jobs j ON j.id = l.inflight_job_id
WHERE l.channel = {p} AND l.sku IS NOT NULL AND l.active
  AND ((l.desired_quantity IS NOT NULL AND (l.ack_quantity IS NULL OR l.desired_quantity <> l.ack_quantity))
    OR (l.desired_price IS NOT NULL AND (l.ack_price IS NULL OR l.desired_price <> l.ack_price)))
  AND (l.inflight_job_id IS NULL OR j.id IS NULL OR j.state NOT IN ('pending', 'running', 'failed-retrying'))
ORDER BY l.id
"""


def fill(engine: Any, skus: int, changed_every: int) -> None:
    """Products and listings generated in the database itself (fast, no Python loop)."""
    if engine.dialect.name == "postgresql":
        series = f"SELECT g FROM generate_series(1, {skus}) g"
        now = "now()"
        true = "true"
        false = "false"
        concat = "{a} || {b}"
    else:
        series = f"WITH RECURSIVE s(g) AS (SELECT 1 UNION ALL SELECT g + 1 FROM s WHERE g < {skus}) SELECT g FROM s"
        now = "'2026-11-23 00:00:00+00:00'"
        true = "1"
        false = "0"
        concat = "{a} || {b}"
    sku = concat.format(a="'SKU-'", b="g")
    with engine.begin() as conn:
        conn.exec_driver_sql(
            f"INSERT INTO products (sku, erp, name, vat_rate, price_gross, currency, cost_net, updated_at) "
            f"SELECT {sku}, 'erp', 'Product ' || g, '23', 100.00, 'PLN', 50.0, {now} FROM ({series}) t"
        )
        for channel in CHANNELS:
            conn.exec_driver_sql(
                "INSERT INTO listings (channel, external_id, sku, signature, matched_by, active, seen_quantity, "
                "seen_price, ack_quantity, ack_price, acked_at, desired_quantity, desired_price, currency, "
                "desired_at, error_retryable, updated_at) "
                f"SELECT '{channel}', '{channel}-' || g, {sku}, {sku}, 'signature', {true}, 5, 100.00, 5, 100.00, "
                f"{now}, CASE WHEN mod(g, {changed_every}) = 0 THEN 6 ELSE 5 END, 100.00, 'PLN', {now}, {false}, {now} "
                f"FROM ({series}) t"
            )
        conn.exec_driver_sql("ANALYZE")


def bench_diff(backend: str, skus: int, server: Any | None) -> list[str]:
    from sqlalchemy.orm import Session

    from hub.sync import load_rules, plan

    lines = []
    if backend == "postgresql":
        url = server.create_database(f"bench_diff_{os.getpid()}")
    else:
        url = f"sqlite:///{tempfile.mkdtemp(prefix='hub-bench-')}/bench.db"
    engine = db.make_engine(url)
    db.upgrade(engine)
    start = time.perf_counter()
    fill(engine, skus, changed_every=100)
    lines.append(f"{backend}: generated {skus:,} SKUs x {len(CHANNELS)} channels in {time.perf_counter() - start:.1f}s")
    rules = load_rules(_defaults())

    raw_conn = engine.raw_connection()
    placeholder = "%s" if backend == "postgresql" else "?"

    def raw() -> int:
        cur = raw_conn.cursor()
        total = 0
        for channel in CHANNELS:
            cur.execute(RAW_DIFF.format(p=placeholder), (channel,))
            total += len(cur.fetchall())
        cur.close()
        raw_conn.rollback()
        return total

    def hub_dry() -> int:
        with Session(engine) as session, session.begin():
            return sum(len(p.items) for ch in CHANNELS
                       for p in plan(session, rules, ch, batch_size=1000, dry_run=True))

    def hub_enqueue() -> int:
        session = Session(engine)
        try:
            session.begin()
            count = sum(len(p.items) for ch in CHANNELS for p in plan(session, rules, ch, batch_size=1000))
            session.flush()
            return count
        finally:
            session.rollback()  # measure the same work every round
            session.close()

    raw_s, raw_rows = timed(raw)
    dry_s, dry_rows = timed(hub_dry)
    enq_s, enq_rows = timed(hub_enqueue)
    raw_conn.close()
    assert raw_rows == dry_rows == enq_rows, (raw_rows, dry_rows, enq_rows)
    lines.append(f"{backend}: differences found: {raw_rows:,} of {skus * len(CHANNELS):,} listings")
    lines.append(f"{backend}: raw SQL join                 {raw_s * 1000:8.1f} ms")
    lines.append(f"{backend}: hub diff (plan, dry run)     {dry_s * 1000:8.1f} ms  = {dry_s / raw_s:4.2f}x raw"
                 f"  (goal <= 2x)")
    lines.append(f"{backend}: hub plan + enqueue push jobs {enq_s * 1000:8.1f} ms  = {enq_s / raw_s:4.2f}x raw"
                 f"  ({(enq_rows + 999) // 1000} jobs, rolled back each round)")
    engine.dispose()
    return lines


def _defaults() -> Any:
    """A config with only the defaults (rules come from the shipped mappings)."""
    directory = Path(tempfile.mkdtemp(prefix="hub-bench-cfg-"))
    (directory / "hub.toml").write_text("")
    return load(directory / "hub.toml", environ={})


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", default="diff,requests,propagation")
    parser.add_argument("--skus", type=int, default=1_000_000)
    parser.add_argument("--backends", default="postgresql,sqlite")
    parser.add_argument("--samples", type=int, default=100)
    args = parser.parse_args()
    configure_logging(LogSettings(level="error"))
    parts = set(args.only.split(","))
    print(f"machine: {os.cpu_count()} cores")
    server = None
    try:
        if "diff" in parts:
            backends = args.backends.split(",")
            if "postgresql" in backends:
                server = pgtemp.start(fsync=True)
            for backend in backends:
                for line in bench_diff(backend, args.skus, server):
                    print(line, flush=True)
            print(f"peak RSS of this process: {peak_rss_mib():.0f} MiB (goal <= 1024 MiB)", flush=True)
        if "requests" in parts:
            for line in bench_requests():
                print(line, flush=True)
        if "propagation" in parts:
            for line in bench_propagation(args.samples):
                print(line, flush=True)
    finally:
        if server is not None:
            server.stop()
    return 0


def bench_requests() -> list[str]:
    return ["requests: not measured yet"]


def bench_propagation(samples: int) -> list[str]:
    return [f"propagation: not measured yet ({samples} samples)"]


if __name__ == "__main__":
    raise SystemExit(main())

