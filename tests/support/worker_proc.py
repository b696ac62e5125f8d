"""A separate OS process for the PostgreSQL concurrency tests (test_pg_concurrency.py).

The tests start it with ``subprocess.Popen([sys.executable, __file__, MODE, ...])`` so that every
process has its own interpreter, connection pool and pid, as real hub processes do.

Modes:

``effect``     run a real WorkerPool whose handler for ``test.effect`` inserts one row into the
               test-only ``effects`` table, until SIGTERM.
``block``      run a real WorkerPool whose handler for ``test.effect`` writes a ``started`` marker
               and then blocks, so the test can SIGKILL the process mid-job.
``ratelimit``  wait for a go-file, then take N tokens from the shared PostgreSQL bucket, sleeping
               off each returned delay; print one JSON line with the first and last timestamps.

Each worker mode prints ``ready <process name>`` on stdout once its pool is running.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
import time
from pathlib import Path
from types import FrameType
from typing import Any

from sqlalchemy import text

from hub.jobs.handlers import HandlerRegistry, JobContext
from hub.jobs.worker import WorkerPool, process_name
from hub.platform import db
from hub.platform.config import LogSettings, WorkerSettings
from hub.platform.logs import configure as configure_logging
from hub.platform.ratelimit import PostgresRateLimiter

KIND = "test.effect"


def _effect(name: str) -> Any:
    def handler(ctx: JobContext) -> None:
        # Its own transaction, not the settle's: a job run twice leaves two rows.
        with ctx.session() as session:
            session.execute(text("INSERT INTO effects (job_id, worker) VALUES (:j, :w)"),
                            {"j": ctx.job.id, "w": name})

    return handler


def _block(name: str) -> Any:
    def handler(ctx: JobContext) -> None:
        with ctx.session() as session:
            session.execute(text("INSERT INTO markers (job_id, worker, what) VALUES (:j, :w, 'started')"),
                            {"j": ctx.job.id, "w": name})
        time.sleep(600)  # the test SIGKILLs us long before this ends

    return handler


def run_pool(args: argparse.Namespace) -> int:
    configure_logging(LogSettings(level="info", format="json"))
    engine = db.make_engine(args.url)
    name = process_name()
    handlers = HandlerRegistry()
    handlers.register(KIND, (_effect if args.mode == "effect" else _block)(name))
    settings = WorkerSettings(
        concurrency=args.concurrency, batch_size=args.batch, lease=args.lease, poll_interval=args.poll,
        shutdown_timeout=5.0,
    )
    pool = WorkerPool(engine, handlers, settings, name=name)
    stop = threading.Event()

    def on_term(_signum: int, _frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_term)
    pool.start()
    sys.stdout.write(f"ready {name}\n")
    sys.stdout.flush()
    while not stop.wait(0.2):
        if not pool.healthy():
            sys.stderr.write("worker_proc: a pool thread died\n")
            pool.stop()
            return 3
    pool.stop()
    sys.stdout.write(f"stopped {name} processed={pool.processed} loop_errors={pool.errors_in_loop}\n")
    sys.stdout.flush()
    engine.dispose()
    return 0


def run_ratelimit(args: argparse.Namespace) -> int:
    engine = db.make_engine(args.url)
    limiter = PostgresRateLimiter(engine)
    with engine.connect() as conn:  # open the pool's connection before the start line
        conn.execute(text("SELECT 1"))
    sys.stdout.write("ready\n")
    sys.stdout.flush()
    go = Path(args.go)
    deadline = time.monotonic() + 30
    while not go.exists():
        if time.monotonic() > deadline:
            sys.stderr.write(f"worker_proc: go file {go} never appeared\n")
            return 4
        time.sleep(0.005)
    first = time.time()
    delays = []
    for _ in range(args.count):
        delay = limiter.reserve(args.key, args.per_second, args.burst)
        delays.append(delay)
        if delay > 0:
            time.sleep(delay)
    last = time.time()
    sys.stdout.write(json.dumps({"pid": os.getpid(), "first": first, "last": last, "delays": delays}) + "\n")
    sys.stdout.flush()
    engine.dispose()
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("mode", choices=["effect", "block", "ratelimit"])
    parser.add_argument("url")
    parser.add_argument("--concurrency", type=int, default=2)
    parser.add_argument("--batch", type=int, default=5)
    parser.add_argument("--lease", type=float, default=30.0)
    parser.add_argument("--poll", type=float, default=0.1)
    parser.add_argument("--go", default="")
    parser.add_argument("--key", default="test:shared")
    parser.add_argument("--count", type=int, default=20)
    parser.add_argument("--per-second", type=float, default=20.0)
    parser.add_argument("--burst", type=float, default=5.0)
    args = parser.parse_args(argv)
    if args.mode == "ratelimit":
        return run_ratelimit(args)
    return run_pool(args)


if __name__ == "__main__":
    raise SystemExit(main())
