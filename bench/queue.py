"""Job queue throughput: enqueue, and claim+complete with worker processes, on SQLite and PostgreSQL.

Why: every effect the hub has on another system goes through the job queue, so
the queue's throughput caps the whole hub. The goal from the issue is at least
2,000 jobs/s claim+complete with 4 workers on PostgreSQL on a 2-core machine.

What it measures (figures only, nothing is asserted about timing):

* enqueue, bulk: ``hub.jobs.queue.enqueue_many`` in transactions of 500 jobs;
* enqueue, one job per transaction: ``hub.jobs.queue.enqueue`` inside
  ``hub.db.transaction`` (the outbox pattern: one business change, one job);
* claim+complete: N pre-filled jobs drained by W worker processes, each running
  the real ``hub.jobs.worker.WorkerPool`` (one thread) with a no-op handler. The clock
  starts when every worker has imported, connected and been told to go, and stops
  when the parent sees all N jobs done. Every job must end done with exactly one
  attempt. After the pre-fill the jobs table is ANALYZEd, as autovacuum would do
  within a minute of such a burst: on a never-analyzed table PostgreSQL's planner
  takes the claim through ix_jobs_state_kind and sorts every runnable row on each
  claim (``--no-analyze`` measures that case).

PostgreSQL runs in a throwaway server (``tests.support.pgtemp``) with durable settings
(fsync on, synchronous_commit on); SQLite uses a fresh WAL file per measurement.

    .venv/bin/python bench/queue.py [--jobs 20000] [--backends sqlite,postgresql] [--workers 1,4] [--batch-size 50]
"""

from __future__ import annotations

import argparse
import json
import os
import select
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
# Run as a script, this file's directory comes first on sys.path, and this file
# (queue.py) would shadow the standard library's queue module: put the repo there instead.
HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != HERE]
sys.path.insert(0, str(ROOT))

from sqlalchemy import Engine, text

from hub.jobs.queue import NewJob, enqueue, enqueue_many
from hub.platform import db
from tests.support import pgtemp

KIND = "bench.noop"
ENQUEUE_TX = 500  # jobs per transaction in the bulk enqueue
GOAL = 2000.0  # jobs/s claim+complete, 4 workers, PostgreSQL
READY_TIMEOUT = 60.0
PG_SETTINGS = (
    "server_version", "fsync", "synchronous_commit", "full_page_writes", "wal_sync_method",
    "shared_buffers", "max_connections",
)


@dataclass
class Row:
    backend: str
    workers: int | None
    operation: str
    jobs: int
    seconds: float
    note: str = ""

    @property
    def rate(self) -> float:
        return self.jobs / self.seconds if self.seconds > 0 else float("inf")


# --- databases -------------------------------------------------------------------


class Databases:
    """Fresh, migrated databases, one per measurement."""

    def __init__(self, backend: str, tmp: Path, pg: pgtemp.PgServer | None):
        self.backend = backend
        self.tmp = tmp
        self.pg = pg
        self.count = 0

    @contextmanager
    def fresh(self) -> Iterator[tuple[str, Engine]]:
        self.count += 1
        name = f"bench{self.count}"
        path = self.tmp / f"{name}.db"
        if self.backend == "sqlite":
            url = f"sqlite:///{path}"
        else:
            assert self.pg is not None
            url = self.pg.create_database(name)
        engine = db.make_engine(url)
        try:
            db.upgrade(engine)
            yield url, engine
        finally:
            engine.dispose()
            # drop it, so autovacuum does not clean up after this measurement during the next one
            if self.pg is not None:
                self.pg.drop_database(name)
            for leftover in self.tmp.glob(f"{name}.db*"):
                leftover.unlink()


def new_jobs(start: int, count: int, connector: str | None) -> list[NewJob]:
    return [
        NewJob(KIND, {"order": i, "sku": f"SKU-{i % 997:04d}"}, key=f"bench-{i}", connector=connector)
        for i in range(start, start + count)
    ]


def fill(engine: Engine, jobs: int, connector: str | None) -> None:
    for start in range(0, jobs, ENQUEUE_TX):
        with db.transaction(engine) as session:
            enqueue_many(session, new_jobs(start, min(ENQUEUE_TX, jobs - start), connector))


def count_done(engine: Engine) -> int:
    with engine.connect().execution_options(sqlite_begin="DEFERRED") as conn:
        return int(conn.execute(text("SELECT count(*) FROM jobs WHERE state = 'done'")).scalar_one())


def verify(engine: Engine, jobs: int) -> tuple[bool, str]:
    """Every job done exactly once: N rows, all done, all with one attempt, no failure history."""
    with engine.connect().execution_options(sqlite_begin="DEFERRED") as conn:
        total, done_once, failures = conn.execute(text(
            "SELECT count(*),"
            " sum(CASE WHEN state = 'done' AND attempts = 1 THEN 1 ELSE 0 END),"
            " (SELECT count(*) FROM job_failures)"
            " FROM jobs"
        )).one()
    done_once = int(done_once or 0)
    ok = total == jobs and done_once == jobs and failures == 0
    return ok, f"{done_once}/{jobs} done with attempts=1, {total} rows, {failures} failure rows"


def pg_settings(pg: pgtemp.PgServer) -> dict[str, str]:
    engine = db.make_engine(pg.url())
    try:
        with engine.connect() as conn:
            return {name: str(conn.execute(text(f"SHOW {name}")).scalar_one()) for name in PG_SETTINGS}
    finally:
        engine.dispose()


# --- measurements -------------------------------------------------------------------


def timed(fn: Callable[[], None]) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def bench_enqueue_bulk(dbs: Databases, jobs: int, connector: str | None) -> Row:
    with dbs.fresh() as (_url, engine):
        seconds = timed(lambda: fill(engine, jobs, connector))
    return Row(dbs.backend, None, f"enqueue bulk ({ENQUEUE_TX}/tx)", jobs, seconds)


def bench_enqueue_single(dbs: Databases, jobs: int, connector: str | None) -> Row:
    specs = new_jobs(0, jobs, connector)

    def run(engine: Engine) -> None:
        for job in specs:
            with db.transaction(engine) as session:
                enqueue(session, job.kind, job.payload, key=job.key, connector=job.connector)

    with dbs.fresh() as (_url, engine):
        seconds = timed(lambda: run(engine))
    return Row(dbs.backend, None, "enqueue (1/tx)", jobs, seconds)


def _read_line(proc: subprocess.Popen[str], deadline: float) -> str:
    assert proc.stdout is not None
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError(f"worker {proc.pid} said nothing in time")
        ready, _, _ = select.select([proc.stdout], [], [], remaining)
        if ready:
            line = proc.stdout.readline()
            if not line:
                raise RuntimeError(f"worker {proc.pid} exited early (code {proc.wait()})")
            return line.strip()


def _tell(proc: subprocess.Popen[str], word: str) -> None:
    assert proc.stdin is not None
    try:
        proc.stdin.write(word + "\n")
        proc.stdin.flush()
    except BrokenPipeError:
        pass


def analyze(engine: Engine) -> None:
    """Refresh planner statistics, as autovacuum would within a minute of a burst of enqueues."""
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("ANALYZE jobs"))


def bench_claim_complete(
    dbs: Databases, jobs: int, workers: int, batch_size: int, connector: str | None, profile_dir: Path | None,
    fresh_stats: bool,
) -> tuple[Row, bool, str]:
    with dbs.fresh() as (url, engine):
        fill(engine, jobs, connector)
        if fresh_stats:
            analyze(engine)
        cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", url, "--batch-size", str(batch_size)]
        procs: list[subprocess.Popen[str]] = []
        try:
            for i in range(workers):
                extra = ["--profile", str(profile_dir / f"{dbs.backend}-w{workers}-{i}.prof")] if profile_dir else []
                procs.append(subprocess.Popen(
                    [*cmd, *extra], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=ROOT,
                ))
            deadline = time.monotonic() + READY_TIMEOUT
            for proc in procs:
                if (said := _read_line(proc, deadline)) != "ready":
                    raise RuntimeError(f"worker {proc.pid} said {said!r}, expected 'ready'")
            started = time.perf_counter()
            for proc in procs:
                _tell(proc, "go")
            while (done := count_done(engine)) < jobs:
                if any(p.poll() is not None for p in procs):
                    raise RuntimeError(f"a worker exited while {jobs - done} jobs were still open")
                time.sleep(0.02)
            seconds = time.perf_counter() - started
            processed = 0
            for proc in procs:
                _tell(proc, "stop")
            deadline = time.monotonic() + 30
            for proc in procs:
                said = _read_line(proc, deadline)
                processed += int(json.loads(said)["processed"])
                proc.wait(max(0.1, deadline - time.monotonic()))
        finally:
            for proc in procs:
                if proc.poll() is None:
                    proc.terminate()
                    try:
                        proc.wait(10)
                    except subprocess.TimeoutExpired:
                        proc.kill()
                        proc.wait()
        ok, detail = verify(engine, jobs)
        if processed != jobs:
            ok = False
        detail += f", workers reported {processed} settled"
    row = Row(dbs.backend, workers, f"claim+complete (batch {batch_size})", jobs, seconds)
    return row, ok, detail


# --- the worker process -----------------------------------------------------------------


def _profile_loop(pool: Any, path: str) -> None:
    """cProfile the pool's claim loop (one thread with concurrency=1) into ``path``."""
    import cProfile

    loop = pool._loop

    def profiled(worker: str) -> None:
        profiler = cProfile.Profile()
        try:
            profiler.runcall(loop, worker)
        finally:
            profiler.dump_stats(path)

    pool._loop = profiled


def worker_main(url: str, batch_size: int, profile: str | None) -> int:
    """One worker process: connect, say 'ready', start the pool on 'go', stop it on 'stop' or EOF."""
    from hub.jobs.handlers import HandlerRegistry
    from hub.jobs.worker import WorkerPool
    from hub.platform.config import LogSettings, WorkerSettings
    from hub.platform.logs import configure

    configure(LogSettings(level="warning"))
    engine = db.make_engine(url)
    with engine.connect() as conn:  # open the connection now, not on the clock
        conn.execute(text("SELECT 1"))
    registry = HandlerRegistry()
    registry.register(KIND, lambda ctx: None)
    settings = WorkerSettings(concurrency=1, batch_size=batch_size, poll_interval=0.05, lease=60)
    pool = WorkerPool(engine, registry, settings)
    print("ready", flush=True)
    if sys.stdin.readline().strip() != "go":
        return 1
    if profile:
        _profile_loop(pool, profile)
    pool.start()
    try:
        sys.stdin.readline()  # "stop", or EOF when the parent went away
    finally:
        pool.stop(timeout=10)
        engine.dispose()
    print(json.dumps({"processed": pool.processed}), flush=True)
    return 0


# --- main ----------------------------------------------------------------------------------


def csv_list(value: str) -> list[str]:
    return [v.strip() for v in value.split(",") if v.strip()]


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--jobs", type=int, default=20000, help="jobs per measurement (default 20000)")
    parser.add_argument("--single-jobs", type=int, default=2000,
                        help="jobs for the one-job-per-transaction enqueue (default 2000)")
    parser.add_argument("--backends", type=csv_list, default=["sqlite", "postgresql"],
                        help="comma-separated: sqlite,postgresql")
    parser.add_argument("--workers", type=lambda v: [int(w) for w in csv_list(v)], default=[1, 4],
                        help="comma-separated worker process counts (default 1,4)")
    parser.add_argument("--batch-size", type=int, default=50, help="jobs per claim (default 50)")
    parser.add_argument("--repeat", type=int, default=1,
                        help="runs per claim+complete figure; the table shows the median (default 1)")
    parser.add_argument("--connector", default="bench",
                        help="connector name on every job (its health row is upserted on settle); '' for none")
    parser.add_argument("--analyze", action=argparse.BooleanOptionalAction, default=True,
                        help="ANALYZE jobs after the pre-fill (default on; --no-analyze measures stale statistics)")
    parser.add_argument("--profile-dir", type=Path, default=None,
                        help="write a cProfile file per worker process here")
    parser.add_argument("--worker", metavar="URL", help=argparse.SUPPRESS)
    parser.add_argument("--profile", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.jobs < 1 or args.single_jobs < 1 or args.batch_size < 1 or args.repeat < 1 or min(args.workers) < 1:
        parser.error("--jobs, --single-jobs, --batch-size, --repeat and --workers must be positive")
    unknown = set(args.backends) - {"sqlite", "postgresql"}
    if unknown:
        parser.error(f"unknown backend(s): {', '.join(sorted(unknown))}")
    return args


def median_row(runs: list[Row]) -> Row:
    """The run with the median rate; the note gives the range when there were several."""
    ordered = sorted(runs, key=lambda r: r.rate)
    row = ordered[len(ordered) // 2]
    if len(runs) > 1:
        row.note = f"median of {len(runs)}: {ordered[0].rate:,.0f}..{ordered[-1].rate:,.0f}"
    return row


def print_table(rows: list[Row]) -> None:
    header = f"{'backend':<11} {'workers':>7}  {'operation':<26} {'jobs':>7} {'seconds':>8} {'jobs/s':>9}  note"
    print(header)
    print("-" * len(header))
    for r in rows:
        workers = "-" if r.workers is None else str(r.workers)
        line = f"{r.backend:<11} {workers:>7}  {r.operation:<26} {r.jobs:>7} {r.seconds:>8.2f} {r.rate:>9,.0f}"
        print(f"{line}  {r.note}".rstrip())


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.worker:
        return worker_main(args.worker, args.batch_size, args.profile)
    connector = args.connector or None
    print(f"hub queue benchmark: cpu_count={os.cpu_count()}, jobs={args.jobs}, "
          f"single-tx enqueue jobs={args.single_jobs}, workers={args.workers}, claim batch={args.batch_size}, "
          f"connector={connector!r}, python {sys.version.split()[0]}")
    rows: list[Row] = []
    checks: list[tuple[str, bool, str]] = []
    with tempfile.TemporaryDirectory(prefix="hub-bench-") as tmp:
        if args.profile_dir:
            args.profile_dir.mkdir(parents=True, exist_ok=True)
        for backend in args.backends:
            pg = pgtemp.start(fsync=True) if backend == "postgresql" else None
            try:
                if pg is not None:
                    settings = ", ".join(f"{k}={v}" for k, v in pg_settings(pg).items())
                    print(f"postgresql settings: {settings}")
                else:
                    print("sqlite settings: journal_mode=WAL, synchronous=NORMAL, BEGIN IMMEDIATE (hub.platform.db)")
                dbs = Databases(backend, Path(tmp), pg)
                for row in (bench_enqueue_bulk(dbs, args.jobs, connector),
                            bench_enqueue_single(dbs, args.single_jobs, connector)):
                    rows.append(row)
                    print(f"  {backend}: {row.operation}: {row.rate:,.0f} jobs/s", flush=True)
                for workers in args.workers:
                    runs: list[Row] = []
                    for attempt in range(args.repeat):
                        row, ok, detail = bench_claim_complete(
                            dbs, args.jobs, workers, args.batch_size, connector, args.profile_dir, args.analyze,
                        )
                        runs.append(row)
                        run = f" run {attempt + 1}/{args.repeat}" if args.repeat > 1 else ""
                        checks.append((f"{backend} {workers} worker(s){run}", ok, detail))
                        print(f"  {backend}: {workers} worker(s) {row.operation}{run}: {row.rate:,.0f} jobs/s "
                              f"[{'OK' if ok else 'FAILED'}: {detail}]", flush=True)
                    rows.append(median_row(runs))
            finally:
                if pg is not None:
                    pg.stop()
    print()
    print_table(rows)
    print()
    for label, ok, detail in checks:
        print(f"exactly-once check, {label}: {'OK' if ok else 'FAILED'} ({detail})")
    goal_rows = [r for r in rows if r.backend == "postgresql" and r.workers == 4 and r.operation.startswith("claim")]
    if goal_rows:
        rate = goal_rows[0].rate
        verdict = "meets" if rate >= GOAL else "MISSES"
        print(f"goal: PostgreSQL claim+complete with 4 workers = {rate:,.0f} jobs/s on {os.cpu_count()} CPU(s); "
              f"{verdict} the {GOAL:,.0f} jobs/s goal ({rate / GOAL:.0%} of it)")
    else:
        print("goal: not measured (needs --backends including postgresql and --workers including 4)")
    return 0 if all(ok for _l, ok, _d in checks) else 1


if __name__ == "__main__":
    sys.exit(main())
