"""``hub demo``: the daemon on an embedded SQLite database, end to end, in under a minute.

It writes a real hub.toml into the demo directory, migrates the database,
enqueues work (rate-limited pushes to a demo connector, a job that fails twice
and then succeeds, one that fails permanently, one that exhausts its
attempts), runs the daemon with its schedule until everything settles, and
prints what happened. Later capabilities extend it with simulators.
"""

from __future__ import annotations

import random
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict
from sqlalchemy import func, select

from hub.app.status import status
from hub.app.wiring import build_handlers
from hub.jobs.daemon import Daemon
from hub.jobs.handlers import HandlerRegistry, JobContext
from hub.jobs.models import Job, JobFailure, ScheduleRun
from hub.jobs.queue import NewJob, depth_by_state, enqueue_many
from hub.kernel.clock import utcnow
from hub.kernel.errors import HubError, PermanentError, RetryableError
from hub.kernel.ports.capability import Capability
from hub.platform import db, registry
from hub.platform.config import LoadedConfig, load
from hub.platform.logs import configure as configure_logging

DEMO_KIND = "demo"
PUSHES = 40

CONFIG = """\
# Written by `hub demo` for its in-process daemon: the connector kind "demo" exists only there.
[database]
url = "sqlite:///{db}"

[worker]
concurrency = 4
batch_size = 5
lease = "10s"
poll_interval = "200ms"
max_attempts = 4
backoff_initial = "300ms"
backoff_max = "2s"
shutdown_timeout = "5s"

[scheduler]
leader_poll = "1s"

[schedule.heartbeat]
job = "demo.heartbeat"
every = "1s"

[schedule.housekeeping]
job = "hub.prune_jobs"
every = "1h"

[log]
level = "info"
format = "json"

[connectors.demo-shop]
kind = "demo"
rate_limit_per_minute = 600
rate_limit_burst = 5
"""


class _NoOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")


def _demo_handlers(_name: str, _options: Any, handlers: HandlerRegistry) -> None:
    if "demo.push_stock" in handlers:  # two demo connectors share one set of handlers
        return

    @handlers.handler("demo.push_stock")
    def push_stock(ctx: JobContext) -> dict[str, Any]:
        throttle = ctx.throttle()
        waited = throttle.wait() if throttle else 0.0
        time.sleep(random.uniform(0.005, 0.02))  # the remote call
        return {"sku": ctx.payload["sku"], "quantity": ctx.payload["quantity"], "throttled_s": round(waited, 3)}

    @handlers.handler("demo.flaky")
    def flaky(ctx: JobContext) -> dict[str, Any]:
        if ctx.attempt < 3:
            raise RetryableError(f"remote answered 503 Service Unavailable (attempt {ctx.attempt})")
        return {"succeeded_on_attempt": ctx.attempt}

    @handlers.handler("demo.poison")
    def poison(ctx: JobContext) -> None:
        raise PermanentError(
            f"offer {ctx.payload['offer']} does not exist on the channel (404); not retrying"
        )

    @handlers.handler("demo.always_down")
    def always_down(ctx: JobContext) -> None:
        raise RetryableError("connection timed out after 10s")

    @handlers.handler("demo.heartbeat")
    def heartbeat(ctx: JobContext) -> dict[str, str]:
        return {"at": utcnow().isoformat()}


# Registered by run_demo in its own process only: no entry point, so no production config can select it.
DEMO_CONNECTOR = registry.ConnectorSpec(
    kind=DEMO_KIND, role="channel", description="in-process demo channel for `hub demo`",
    capabilities=frozenset({Capability.BATCH_STOCK}), factory=lambda *_: None,
    options_model=_NoOptions, default_rate_limit_per_minute=600, handlers=_demo_handlers,
)


def _seed() -> list[NewJob]:
    jobs = [
        NewJob("demo.push_stock", {"sku": f"SKU-{i:03d}", "quantity": random.randint(0, 50)},
               key=f"demo:push:SKU-{i:03d}:v1", connector="demo-shop")
        for i in range(PUSHES)
    ]
    jobs += [
        NewJob("demo.flaky", {"what": "price change batch"}, key="demo:flaky:1", connector="demo-shop"),
        NewJob("demo.poison", {"offer": "7712345678"}, key="demo:poison:1", connector="demo-shop"),
        NewJob("demo.always_down", {"what": "courier pickup"}, key="demo:down:1", max_attempts=4),
    ]
    return jobs


def _progress(counts: dict[str, int], elapsed: float, tty: bool) -> None:
    line = (f"  t={elapsed:4.1f}s  pending {counts.get('pending', 0):3}  running {counts.get('running', 0):2}"
            f"  retrying {counts.get('failed-retrying', 0):2}  done {counts.get('done', 0):3}"
            f"  dead {counts.get('dead', 0)}")
    sys.stdout.write(("\r" + line) if tty else (line + "\n"))
    sys.stdout.flush()


def run_demo(directory: str | None = None, timeout: float = 90.0) -> int:
    base = Path(directory) if directory else Path(tempfile.mkdtemp(prefix="hub-demo-"))
    if base.exists() and not base.is_dir():
        raise HubError(f"--dir {base}: exists and is not a folder; name a folder (it is created if missing)")
    base.mkdir(parents=True, exist_ok=True)
    registry.register(DEMO_CONNECTOR)  # for this run only
    try:
        sys.stdout.write(f"hub demo in {base}\n\n== Part 1: the job queue\n")
        queue_ok = _queue_demo(base / "queue", timeout)
        from demo.channels import run_channels_demo

        sys.stdout.write("\n== Part 2: ERP feed to the sales channels\n")
        channels_ok = run_channels_demo(base, timeout=timeout)
    finally:
        registry.unregister(DEMO_KIND)
    return 0 if queue_ok and channels_ok else 1


def _queue_demo(base: Path, timeout: float) -> bool:
    base.mkdir(parents=True, exist_ok=True)
    config_path = base / "hub.toml"
    db_path = base / "hub.db"
    for stale in base.glob("hub.db*"):
        stale.unlink()
    config_path.write_text(CONFIG.format(path=config_path, db=db_path), encoding="utf-8")
    loaded: LoadedConfig = load(config_path, environ={})
    log_path = base / "hub.log"
    log_file = log_path.open("w", encoding="utf-8")
    configure_logging(loaded.settings.log, stream=log_file)
    out = sys.stdout.write
    tty = sys.stdout.isatty()

    engine = db.make_engine(loaded.settings.database)
    db.upgrade(engine)
    out(f"1. database migrated to revision {db.schema_state(engine).current} (SQLite, WAL)\n")

    seed = _seed()
    with db.transaction(engine) as session:
        created = enqueue_many(session, seed)
    with db.transaction(engine) as session:
        again = enqueue_many(session, seed)
    out(f"2. enqueued {created} jobs; enqueuing the same idempotency keys again created {again}\n")

    handlers = build_handlers(loaded)
    daemon = Daemon(loaded, engine, handlers, name="demo")
    out("3. daemon running: 4 worker threads, schedule (heartbeat every 1s), demo-shop limited to 10 req/s\n")
    started = time.monotonic()
    daemon.start()
    seeded_kinds = {j.kind for j in seed}
    settled = False
    try:
        while time.monotonic() - started < timeout:
            counts = depth_by_state(engine, seeded_kinds)
            _progress(counts, time.monotonic() - started, tty)
            open_ = sum(counts.get(s, 0) for s in ("pending", "running", "failed-retrying"))
            if open_ == 0:
                settled = True
                break
            time.sleep(0.5 if tty else 1.0)
    finally:
        daemon.stop(timeout=5)
    elapsed = time.monotonic() - started
    out(("\n" if tty else "") + f"   {'settled' if settled else 'NOT settled'} after {elapsed:.1f}s\n\n")

    with db.transaction(engine) as session:
        by_kind: dict[str, Counter[str]] = {}
        for kind, state, count in session.execute(
            select(Job.kind, Job.state, func.count()).group_by(Job.kind, Job.state)
        ).all():
            by_kind.setdefault(kind, Counter())[state] = count
        failures = session.execute(
            select(Job.kind, func.count()).join(JobFailure, JobFailure.job_id == Job.id).group_by(Job.kind)
        ).all()
        pushes = session.execute(select(Job).where(Job.kind == "demo.push_stock")).scalars().all()
        flaky = session.execute(select(Job).where(Job.kind == "demo.flaky")).scalar_one()
        heartbeat = session.get(ScheduleRun, "heartbeat")
        snapshot = status(engine, session, loaded)

    out("4. summary\n")
    out("   jobs by kind:\n")
    for kind in sorted(by_kind):
        states = ", ".join(f"{s} {n}" for s, n in sorted(by_kind[kind].items()))
        out(f"     {kind:20} {states}\n")
    out("   failed attempts recorded: " + ", ".join(f"{k} {n}" for k, n in sorted(failures)) + "\n")
    if pushes:
        first = min(j.started_at for j in pushes if j.started_at)
        last = max(j.finished_at for j in pushes if j.finished_at)
        span = (last - first).total_seconds()
        out(f"   {len(pushes)} rate-limited pushes took {span:.1f}s "
            f"(limit 10/s with a burst of 5: at least {(len(pushes) - 5) / 10:.1f}s)\n")
    out(f"   flaky job: {flaky.state} on attempt {flaky.attempts} after {flaky.attempts - 1} retries with backoff\n")
    if heartbeat:
        out(f"   schedule: heartbeat last fired {heartbeat.last_fired_at:%H:%M:%S} UTC by {heartbeat.fired_by}\n")
    out("   dead jobs (kept for an operator: hub jobs show ID, hub jobs retry ID):\n")
    for job in snapshot["dead_jobs"]:
        out(f"     #{job['id']} {job['kind']} after {job['attempts']} attempt(s): {job['last_error']}\n")
    for conn in snapshot["connectors"]:
        out(f"   connector {conn['name']}: {conn['health']}"
            + (f" (last error: {conn['last_error']})" if conn["last_error"] else "") + "\n")
    out(f"\n   logs (JSON lines): {log_path}\n")
    log_file.flush()
    engine.dispose()
    return settled and by_kind.get("demo.push_stock", Counter()).get("done") == PUSHES and flaky.state == "done"
