"""``hub run``: the worker pool, the scheduler, metrics and the systemd protocol, wired together."""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from types import FrameType
from typing import Any

from pydantic import Field, StrictInt
from sqlalchemy import Engine, func, select

from hub.jobs import queue
from hub.jobs.handlers import HandlerRegistry, JobContext, SchedulePayload
from hub.jobs.metrics import serve_with_queue_depth
from hub.jobs.models import Job
from hub.jobs.scheduler import Scheduler, fire_all_once
from hub.jobs.worker import WorkerPool, process_name
from hub.kernel.clock import utcnow
from hub.kernel.errors import ConfigError
from hub.platform import registry, systemd
from hub.platform.config import LoadedConfig
from hub.platform.db import transaction
from hub.platform.logs import get_logger
from hub.platform.ratelimit import Throttle, make_rate_limiter, throttle_for

log = get_logger("hub.daemon")


PRUNE_KIND = "hub.prune_jobs"


class PrunePayload(SchedulePayload):
    # done effects (a push, an ERP booking, a refund) are kept this long (dead jobs stay until an
    # operator handles them); routine runs (periodic polls, plans) only ``keep_routine_seconds``
    keep_seconds: StrictInt = Field(14 * 86400, ge=3600, le=366 * 86400)
    keep_routine_seconds: StrictInt = Field(86400, ge=600, le=366 * 86400)
    # the audit of every price the hub asked a channel to show
    keep_price_history_seconds: StrictInt = Field(180 * 86400, ge=86400, le=5 * 366 * 86400)


def prune_jobs(ctx: JobContext) -> dict[str, Any]:
    keep = PrunePayload.model_validate(ctx.payload)
    removed = queue.prune_done(ctx.engine, timedelta(seconds=keep.keep_seconds),
                               timedelta(seconds=keep.keep_routine_seconds))
    pruned = {"removed": removed}
    for prune in _PRUNERS:
        pruned.update(prune(ctx.engine, keep))
    return pruned


# capabilities add their own retention (the listings: price history) without the queue knowing them
_PRUNERS: list[Callable[[Engine, PrunePayload], dict[str, int]]] = []


def add_pruner(prune: Callable[[Engine, PrunePayload], dict[str, int]]) -> None:
    _PRUNERS.append(prune)


def schedule_problems(loaded: LoadedConfig, handlers: HandlerRegistry) -> list[str]:
    known = ", ".join(sorted(handlers.kinds()))
    problems = []
    for name, entry in sorted(loaded.settings.schedule.items()):
        if entry.job not in handlers:
            problems.append(f"{loaded.source_label}: schedule.{name}.job = {entry.job!r}: no handler for this job "
                            f"kind (known: {known})")
            continue
        for key, why in handlers.schedule_problems(entry.job, entry.payload):
            value = entry.job if key == "job" else _at(entry.payload, key.split(".")[1:])
            shown = "" if value is _MISSING else f" = {value!r}"
            problems.append(f"{loaded.source_label}: schedule.{name}.{key}{shown}: {why}")
    return problems


_MISSING = object()


def _at(payload: dict[str, Any], keys: list[str]) -> Any:
    value: Any = payload
    for key in keys:
        if not isinstance(value, dict) or key not in value:
            return _MISSING
        value = value[key]
    return value


def build_throttles(engine: Engine, loaded: LoadedConfig) -> dict[str, Throttle]:
    limiter = make_rate_limiter(engine)
    throttles = {}
    for name, conn in loaded.settings.connectors.items():
        spec = registry.get(conn.kind)
        default = spec.default_rate_limit_per_minute if spec else 600
        throttles[name] = throttle_for(limiter, name, conn, default)
    return throttles


@dataclass
class RunSummary:
    """What one ``hub run --once`` did: periodic jobs fired, jobs settled by kind and state."""

    fired: int = 0
    finished: dict[str, dict[str, int]] = field(default_factory=dict)  # state -> kind -> count
    open: int = 0  # still pending, running or retrying when the timeout ran out

    def lines(self) -> list[str]:
        out = [f"fired {self.fired} periodic job(s)"]
        for state in ("done", "dead"):
            kinds = self.finished.get(state, {})
            detail = ", ".join(f"{kind} {n}" for kind, n in sorted(kinds.items()))
            out.append(f"{state} {sum(kinds.values())}" + (f" ({detail})" if detail else ""))
        if self.open:
            out.append(f"still open when the timeout ran out: {self.open}")
        return out


class Daemon:
    def __init__(
        self,
        loaded: LoadedConfig,
        engine: Engine,
        handlers: HandlerRegistry,
        *,
        name: str | None = None,
    ):
        problems = schedule_problems(loaded, handlers)
        if problems:
            raise ConfigError(problems)
        self.loaded = loaded
        self.settings = loaded.settings
        self.engine = engine
        self.handlers = handlers
        self.name = name or process_name()
        self.pool = WorkerPool(
            engine, handlers, self.settings.worker, name=self.name, throttles=build_throttles(engine, loaded)
        )
        self.scheduler = Scheduler(
            engine, self.settings.schedule, self.settings.scheduler, name=self.name, on_fired=self.pool.wake
        )
        self._stop = threading.Event()
        self.last_run = RunSummary()
        self._started = False

    def start(self, *, schedule: bool = True) -> None:
        serve_with_queue_depth(self.settings.metrics, self.engine)
        self.handlers.warm(self.engine)
        self.pool.start()
        if schedule and self.settings.scheduler.enabled and self.scheduler.schedule:
            self.scheduler.start()
        self._started = True

    def stop(self, timeout: float | None = None) -> None:
        if not self._started:
            return
        self._started = False
        self.scheduler.stop()
        self.pool.stop(timeout)

    def request_stop(self, signum: int | None = None, _frame: FrameType | None = None) -> None:
        if signum is not None:
            log.info("stop requested", signal=signal.Signals(signum).name)
        self._stop.set()

    def serve(self) -> int:
        """Run until SIGTERM or SIGINT; speak the systemd notify protocol."""
        previous = {s: signal.signal(s, self.request_stop) for s in (signal.SIGTERM, signal.SIGINT)}
        try:
            self.start()
            systemd.notify(f"READY=1\nSTATUS=processing jobs as {self.name}\nMAINPID={os.getpid()}")
            log.info("hub running", process=self.name, schedule=sorted(self.scheduler.schedule),
                     database=self.engine.url.render_as_string(hide_password=True))
            watchdog = systemd.watchdog_interval()
            while not self._stop.wait(watchdog or 1.0):
                if watchdog and self.pool.healthy():
                    systemd.notify("WATCHDOG=1")
                elif not self.pool.healthy():
                    log.error("a worker thread died; withholding the watchdog ping so systemd restarts us")
        finally:
            systemd.notify("STOPPING=1")
            self.stop()
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        return 0

    def run_once(self, timeout: float = 600.0, *, progress: Callable[[dict[str, int]], None] | None = None) -> int:
        """Fire every periodic job once, drain the queue, and exit: 0, or 1 if a job went dead."""
        started_at = utcnow()
        fired = fire_all_once(self.engine, self.settings.schedule, by=self.name)
        self.last_run = RunSummary(fired=len(fired))
        self.start(schedule=False)
        kinds = self.handlers.kinds()
        deadline = time.monotonic() + timeout
        try:
            while True:
                counts = queue.depth_by_state(self.engine, kinds)
                if progress:
                    progress(counts)
                if sum(counts.get(s, 0) for s in ("pending", "running", "failed-retrying")) == 0:
                    break
                if time.monotonic() > deadline or self._stop.is_set():
                    log.error("queue not drained in time", timeout=timeout, counts=counts)
                    self.last_run.open = sum(counts.get(s, 0) for s in ("pending", "running", "failed-retrying"))
                    self._summarize(started_at)
                    return 1
                self._stop.wait(0.1)
        finally:
            self.stop()
        dead = self._summarize(started_at)
        if dead:
            log.error("jobs went dead during this run", dead=dead)
            return 1
        return 0

    def _summarize(self, since: Any) -> int:
        """Fill last_run with the jobs settled since ``since``; returns how many went dead."""
        with transaction(self.engine) as session:
            rows = session.execute(
                select(Job.state, Job.kind, func.count()).where(Job.state.in_(("done", "dead")),
                                                                Job.updated_at >= since)
                .group_by(Job.state, Job.kind)).all()
        for state, kind, count in rows:
            self.last_run.finished.setdefault(state, {})[kind] = count
        return sum(self.last_run.finished.get("dead", {}).values())
