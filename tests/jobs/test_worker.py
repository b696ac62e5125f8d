"""The worker pool and the daemon's --once mode, on SQLite and PostgreSQL."""

from __future__ import annotations

import threading
import time
from pathlib import Path

from sqlalchemy import Engine, select

from hub.app.wiring import build_handlers
from hub.jobs import queue
from hub.jobs.daemon import Daemon
from hub.jobs.handlers import HandlerRegistry, JobContext
from hub.jobs.models import Job, ScheduleRun
from hub.jobs.queue import NewJob
from hub.jobs.scheduler import FileLeadership, fire, slot_key
from hub.jobs.worker import WorkerPool
from hub.kernel.errors import PermanentError, RetryableError
from hub.platform.config import LoadedConfig, ScheduleEntry, Settings, WorkerSettings, load
from hub.platform.db import transaction

FAST = WorkerSettings(concurrency=3, batch_size=4, lease=5, poll_interval=0.05, max_attempts=3,
                      backoff_initial=0.05, backoff_max=0.2, shutdown_timeout=5)


def wait_until(predicate, timeout: float = 20.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError("condition not reached in time")


def drain(engine: Engine, handlers: HandlerRegistry, jobs: list[NewJob]) -> None:
    """Queue the jobs and run a pool until none is open."""
    with transaction(engine) as s:
        queue.enqueue_many(s, jobs)
    pool = WorkerPool(engine, handlers, FAST, name="t")
    pool.start()
    try:
        wait_until(lambda: queue.open_jobs(engine) == 0)
    finally:
        pool.stop()


def states(engine: Engine) -> dict[str, str]:
    with transaction(engine) as s:
        return {k: st for k, st in s.execute(select(Job.idempotency_key, Job.state)).all()}


def test_pool_drains_and_one_failing_job_blocks_nothing(engine: Engine) -> None:
    handlers = HandlerRegistry()
    seen: list[str] = []
    lock = threading.Lock()

    @handlers.handler("ok")
    def ok(ctx: JobContext) -> None:
        with lock:
            seen.append(ctx.job.idempotency_key)

    @handlers.handler("broken")
    def broken(ctx: JobContext) -> None:
        raise RuntimeError("always broken")

    @handlers.handler("flaky")
    def flaky(ctx: JobContext) -> dict[str, int]:
        if ctx.attempt < 2:
            raise RetryableError("try again")
        return {"attempt": ctx.attempt}

    @handlers.handler("poison")
    def poison(ctx: JobContext) -> None:
        raise PermanentError("bad payload")

    drain(engine, handlers, [NewJob("broken", {}, "broken", priority=5), NewJob("poison", {}, "poison"),
                             NewJob("flaky", {}, "flaky")] + [NewJob("ok", {}, f"ok{i}") for i in range(60)])
    final = states(engine)
    assert sorted(seen) == sorted(f"ok{i}" for i in range(60))  # each exactly once
    assert {k: v for k, v in final.items() if not k.startswith("ok")} == {
        "broken": "dead", "poison": "dead", "flaky": "done"}
    with transaction(engine) as s:
        broken_job = s.execute(select(Job).where(Job.idempotency_key == "broken")).scalar_one()
    assert broken_job.attempts == 3 and "RuntimeError: always broken" in (broken_job.last_error or "")


def test_jobs_claimed_together_run_as_a_lot_each_with_its_own_outcome(engine: Engine) -> None:
    """A kind with a many-handler gets the jobs of a claimed batch at once; each job settles from its own
    result or exception; a lot that fails whole runs each job alone, so only the bad one fails."""
    handlers = HandlerRegistry()
    lots: list[list[str]] = []
    alone: list[str] = []
    lock = threading.Lock()

    def verdict(ctx: JobContext, how: str) -> object:
        if ctx.payload.get("refuse") or ctx.payload.get("poison"):
            return PermanentError("refused")
        if ctx.payload.get("flaky") and ctx.attempt < 2:
            return RetryableError("later")
        return {how: ctx.job.idempotency_key}

    def one(ctx: JobContext) -> object:
        with lock:
            alone.append(ctx.job.idempotency_key)
        result = verdict(ctx, "alone")
        if isinstance(result, Exception):
            raise result
        return result

    def many(contexts: list[JobContext]) -> list[object]:
        with lock:
            lots.append([ctx.job.idempotency_key for ctx in contexts])
        if any(ctx.payload.get("poison") for ctx in contexts):
            raise RuntimeError("the lot breaks")
        return [verdict(ctx, "lot") for ctx in contexts]

    handlers.register("many", one, many=many)
    jobs = [NewJob("many", {"refuse": i == 3, "flaky": i == 5, "poison": i == 9}, f"m{i}") for i in range(12)]
    drain(engine, handlers, jobs)
    assert states(engine) == {f"m{i}": "dead" if i in (3, 9) else "done" for i in range(12)}
    assert any(len(lot) > 1 for lot in lots)  # FAST claims four at a time
    for lot in lots:
        if "m9" in lot:  # the lot broke: each of it ran alone
            assert set(lot) <= set(alone)
        else:  # a lot's own outcomes stand: none of it ran again alone (but a retried job)
            assert not (set(lot) - {"m5"}) & set(alone), (lot, alone)
    with transaction(engine) as s:
        results = {k: r for k, r in s.execute(select(Job.idempotency_key, Job.result))}
        flaky = s.execute(select(Job).where(Job.idempotency_key == "m5")).scalar_one()
    assert flaky.attempts == 2
    assert all(results[f"m{i}"] in ({"lot": f"m{i}"}, {"alone": f"m{i}"}) for i in range(12) if i not in (3, 9))


def test_stop_waits_for_running_job_and_gives_back_the_rest(engine: Engine) -> None:
    handlers = HandlerRegistry()
    started = threading.Event()
    finished: list[int] = []

    @handlers.handler("slow")
    def slow(ctx: JobContext) -> None:
        started.set()
        time.sleep(0.5)
        finished.append(ctx.job.id)

    with transaction(engine) as s:
        queue.enqueue_many(s, [NewJob("slow", {}, f"s{i}") for i in range(5)])
    pool = WorkerPool(engine, handlers, WorkerSettings(concurrency=1, batch_size=5, poll_interval=0.05), name="t")
    pool.start()
    assert started.wait(10)
    pool.stop(timeout=5)
    counts = queue.depth_by_state(engine)
    assert counts.get("running", 0) == 0
    assert counts.get("done", 0) == len(finished) >= 1
    assert counts.get("pending", 0) == 5 - len(finished)
    with transaction(engine) as s:  # given back without spending an attempt
        attempts = s.execute(select(Job.attempts).where(Job.state == "pending")).scalars().all()
    assert set(attempts) <= {0}


def _config(tmp_path: Path, url: str, extra: str = "") -> LoadedConfig:
    path = tmp_path / "hub.toml"
    path.write_text(f"""
[database]
url = "{url}"
[worker]
concurrency = 2
poll_interval = "50ms"
backoff_initial = "50ms"
backoff_max = "100ms"
max_attempts = 2
[connectors.test-shop]
kind = "test-shop"
[schedule.heartbeat]
job = "test.heartbeat"
every = "1h"
{extra}
""")
    return load(path, environ={})


def test_run_once_fires_schedule_drains_and_reports_dead(db_url: str, engine: Engine, tmp_path: Path) -> None:
    loaded = _config(tmp_path, db_url)
    daemon = Daemon(loaded, engine, build_handlers(loaded), name="once")
    assert daemon.run_once(timeout=60) == 0
    assert daemon.last_run.lines() == ["fired 1 periodic job(s)", "done 1 (test.heartbeat 1)", "dead 0"]
    with transaction(engine) as s:
        run = s.get(ScheduleRun, "heartbeat")
        assert run is not None and run.fired_by == "once"
        assert s.get(Job, run.last_job_id).state == "done"  # type: ignore[union-attr]
    with transaction(engine) as s:
        queue.enqueue(s, "test.poison", {"offer": "1"}, key="poison")
    daemon = Daemon(loaded, engine, build_handlers(loaded), name="once-2")
    assert daemon.run_once(timeout=60) == 1
    assert daemon.last_run.lines() == ["fired 1 periodic job(s)", "done 1 (test.heartbeat 1)",
                                       "dead 1 (test.poison 1)"]


def test_schedule_fires_once_per_slot(engine: Engine) -> None:
    entry = ScheduleEntry(job="hub.prune_jobs", every=3600)
    first = fire(engine, "prune", entry, by="a")
    second = fire(engine, "prune", entry, by="b")  # a second leader in the same slot
    assert first == second
    with transaction(engine) as s:
        assert s.execute(select(Job).where(Job.kind == "hub.prune_jobs")).scalars().all()[0].idempotency_key \
            .startswith("schedule:prune:")
    from hub.kernel.clock import utcnow

    assert slot_key("x", 60, utcnow()) != slot_key("x", 60, utcnow().replace(year=2000))


def test_a_slot_whose_previous_run_is_open_is_skipped_not_queued(engine: Engine) -> None:
    """erp.poll every 2 s and a slow run: one open run per kind and connector, whichever schedule fired
    it (the incremental and the full read of one ERP share its feed); the next slot after it ends runs."""
    poll = ScheduleEntry(job="erp.poll", every=2, payload={"erp": "erp"})
    full = ScheduleEntry(job="erp.poll", every=3600, payload={"erp": "erp", "full": True})
    other = ScheduleEntry(job="erp.poll", every=2, payload={"erp": "other"})
    first = fire(engine, "erp", poll, by="a", key="schedule:erp:1")
    assert fire(engine, "erp", poll, by="a", key="schedule:erp:2") == first  # still pending: skipped
    assert fire(engine, "erp-full", full, by="a", key="schedule:erp-full:1") == first
    assert fire(engine, "other", other, by="a", key="schedule:other:1") != first  # another connector
    (claimed,) = [j for j in queue.claim(engine, "w", limit=10, lease=30) if j.id == first] or [None]
    assert claimed is not None
    assert fire(engine, "erp", poll, by="a", key="schedule:erp:3") == first  # running: skipped too
    with transaction(engine) as s:
        assert s.execute(select(Job.idempotency_key).where(Job.payload["erp"].as_string() == "erp")
                         ).scalars().all() == ["schedule:erp:1"]
    queue.settle(engine, [queue.Outcome(claimed, ok=True)], WorkerSettings(), "w")
    assert fire(engine, "erp", poll, by="a", key="schedule:erp:4") != first  # finished: the next slot runs


def test_file_leadership_is_exclusive(tmp_path: Path) -> None:
    a, b = FileLeadership(tmp_path / "db.leader"), FileLeadership(tmp_path / "db.leader")
    assert a.poll() and not b.poll()
    a.release()
    assert b.poll() and b.is_leader
    b.release()


def test_schedule_kind_without_handler_is_a_config_error(tmp_path: Path) -> None:
    import pytest

    from hub.kernel.errors import ConfigError

    loaded = _config(tmp_path, f"sqlite:///{tmp_path / 'x.db'}",
                     '[schedule.typo]\njob = "demo.hartbeat"\nevery = "1s"\n')
    with pytest.raises(ConfigError) as info:
        Daemon(loaded, None, build_handlers(loaded))  # type: ignore[arg-type]
    assert "schedule.typo.job = 'demo.hartbeat': no handler for this job kind" in info.value.problems[0]


def test_settings_defaults_are_sane() -> None:
    s = Settings()
    assert s.worker.lease > s.worker.poll_interval and s.scheduler.enabled


class _Recorder:
    """Stands in for a module's logger: keeps every event by level."""

    def __init__(self) -> None:
        self.events: list[tuple[str, str]] = []

    def __getattr__(self, level: str):  # type: ignore[no-untyped-def]
        return lambda event, **_: self.events.append((level, event))


def test_the_heartbeat_does_not_call_jobs_it_has_finished_lost(engine: Engine, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """A job settled early in a batch (a failure is recorded at once) is no longer renewed while the
    batch's slow job runs on: no "lease renewal found jobs no longer ours" for it."""
    import hub.jobs.worker as worker_module

    recorder = _Recorder()
    monkeypatch.setattr(worker_module, "log", recorder)
    handlers = HandlerRegistry()

    @handlers.handler("fails")
    def fails(ctx: JobContext) -> None:
        raise PermanentError("refused")

    @handlers.handler("slow")
    def slow(ctx: JobContext) -> None:
        time.sleep(1.6)  # several heartbeats (every lease / 3 = 0.33 s)

    with transaction(engine) as s:
        queue.enqueue_many(s, [NewJob("fails", {}, "f1", priority=1), NewJob("slow", {}, "s1")])
    settings = WorkerSettings(concurrency=1, batch_size=4, lease=1, poll_interval=0.05, max_attempts=1,
                              backoff_initial=0.05, backoff_max=0.2, shutdown_timeout=5)
    pool = WorkerPool(engine, handlers, settings)
    pool.start()
    try:
        wait_until(lambda: states(engine) == {"f1": "dead", "s1": "done"})
    finally:
        pool.stop(timeout=5)
    assert ("warning", "lease renewal found jobs no longer ours") not in recorder.events


def test_idle_threads_leave_the_polling_to_one_of_them(engine: Engine, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """Eight idle threads polling every 50 ms on their own made 160 empty claims a second (a transaction
    each on both sides); one polls for all, and a job that comes in is still taken within a poll."""
    claims: list[float] = []
    real_claim = queue.claim

    def counted(*args, **kwargs):  # type: ignore[no-untyped-def]
        claims.append(time.monotonic())
        return real_claim(*args, **kwargs)

    monkeypatch.setattr(queue, "claim", counted)
    handlers = HandlerRegistry()
    ran: list[float] = []
    handlers.register("quick", lambda ctx: ran.append(time.monotonic()))
    settings = WorkerSettings(concurrency=8, batch_size=4, lease=5, poll_interval=0.05, max_attempts=3)
    pool = WorkerPool(engine, handlers, settings)
    pool.start()
    try:
        time.sleep(0.3)  # everyone idle by now
        claims.clear()
        time.sleep(1.0)
        idle_claims = len(claims)
        with transaction(engine) as s:
            queue.enqueue(s, "quick", {}, key="quick-1")
        added = time.monotonic()
        wait_until(lambda: bool(ran))
    finally:
        pool.stop(timeout=5)
    assert idle_claims < 60, f"{idle_claims} claims in an idle second"
    assert ran[0] - added < 0.5


def test_a_long_job_hands_its_freed_memory_back(engine: Engine, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """A whole-catalogue job leaves its freed pages inside the heap unless told (soak: RSS rose a step at
    each reconcile): the worker trims after a job that ran longer than TRIM_AFTER, not after a short one."""
    from hub.jobs import worker
    from hub.platform import malloc

    trims: list[int] = []
    monkeypatch.setattr(malloc, "trim", lambda: trims.append(1) or True)
    monkeypatch.setattr(worker, "TRIM_AFTER", 0.2)
    handlers = HandlerRegistry()

    @handlers.handler("long")
    def long(ctx: JobContext) -> None:
        time.sleep(0.3)

    @handlers.handler("short")
    def short(ctx: JobContext) -> None:
        pass

    drain(engine, handlers, [NewJob("short", {}, f"short{i}") for i in range(5)] + [NewJob("long", {}, "long")])
    assert trims == [1]


def test_the_daemon_builds_its_connectors_before_the_first_job(db_url: str, engine: Engine, tmp_path: Path,
                                                                monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """A carrier's WSDL parsed by the first booking held its thread and the GIL while the other
    threads queued behind it; a connector that cannot be built is left to its jobs."""
    from hub.platform.connectors import Connectors

    built: list[str] = []
    real_get = Connectors.get

    def get(self: Connectors, name: str) -> object:
        if name == "test-shop":
            raise RuntimeError("secret missing")
        built.append(name)
        return real_get(self, name)

    monkeypatch.setattr(Connectors, "get", get)
    loaded = _config(tmp_path, db_url, '[connectors.other-shop]\nkind = "test-shop"\n')
    handlers = build_handlers(loaded)
    seen_by_first_job: list[list[str]] = []
    handlers.register("probe", lambda ctx: seen_by_first_job.append(list(built)))
    with transaction(engine) as s:
        queue.enqueue(s, "probe", {}, key="probe")
    daemon = Daemon(loaded, engine, handlers, name="warm")
    daemon.start(schedule=False)
    try:
        wait_until(lambda: bool(seen_by_first_job))
    finally:
        daemon.stop()
    assert seen_by_first_job == [["other-shop"]]  # built at start; test-shop's failure stopped nothing
