"""PostgreSQL proofs that need several real OS processes: the queue, leases, idempotency,
scheduler leadership, clean shutdown and the shared rate limit.

Every process is a subprocess (tests/support/worker_proc.py or ``python -m hub run``), never
a fork, so each has its own interpreter, connection pool and pid. Every wait has a deadline and
fails with the stderr of the processes involved; every process is killed in ``finally``.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.exc import IntegrityError

from hub.jobs.queue import Enqueued, NewJob, enqueue, enqueue_many
from hub.platform import db

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

HERE = Path(__file__).resolve().parent
WORKER = HERE.parent / "support" / "worker_proc.py"
HUB_CLI = HERE.parent / "support" / "hub_cli.py"  # hub with the test-shop kind
KIND = "test.effect"  # worker_proc.KIND


# --- subprocess plumbing -------------------------------------------------------------------


@dataclass
class Proc:
    """One child process with its stdout and stderr in files (pipes could fill up and block it)."""

    label: str
    popen: subprocess.Popen[bytes]
    out: Path
    err: Path

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def stdout(self) -> str:
        return self.out.read_text(errors="replace") if self.out.exists() else ""

    def stderr(self) -> str:
        return self.err.read_text(errors="replace") if self.err.exists() else ""

    def tail(self, lines: int = 25) -> str:
        rc = self.popen.poll()
        state = "running" if rc is None else f"exited {rc}"
        err = "\n".join(self.stderr().splitlines()[-lines:])
        return f"--- {self.label} (pid {self.pid}, {state}) stderr tail:\n{err or '(empty)'}"

    def log_events(self) -> list[dict[str, Any]]:
        """The JSON log lines the process wrote to stderr."""
        events = []
        for line in self.stderr().splitlines():
            if line.startswith("{"):
                try:
                    events.append(json.loads(line))
                except ValueError:
                    continue
        return events


def _child_env() -> dict[str, str]:
    # HUB_* variables of the developer's shell would override the test config
    env = {k: v for k, v in os.environ.items() if not k.startswith("HUB_")}
    env["PYTHONUNBUFFERED"] = "1"
    return env


def spawn(args: Sequence[str], tmp_path: Path, label: str) -> Proc:
    out, err = tmp_path / f"{label}.out", tmp_path / f"{label}.err"
    with out.open("wb") as fo, err.open("wb") as fe:
        popen = subprocess.Popen([sys.executable, *args], stdout=fo, stderr=fe, stdin=subprocess.DEVNULL,
                                 env=_child_env(), cwd=tmp_path)
    return Proc(label, popen, out, err)


def spawn_worker(mode: str, url: str, tmp_path: Path, label: str, *extra: str) -> Proc:
    return spawn([str(WORKER), mode, url, *extra], tmp_path, label)


def spawn_hub(config: Path, tmp_path: Path, label: str) -> Proc:
    return spawn([str(HUB_CLI), "--config", str(config), "run"], tmp_path, label)


def tails(procs: Sequence[Proc]) -> str:
    return "\n".join(p.tail() for p in procs)


def wait_for(
    what: str, predicate: Callable[[], Any], timeout: float, procs: Sequence[Proc] = (),
    *, alive: Sequence[Proc] = (), interval: float = 0.1,
) -> Any:
    """Poll until ``predicate`` returns something truthy; fail on the deadline or if a process
    that must stay alive exits."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        dead = [p for p in alive if not p.alive()]
        if dead:
            pytest.fail(f"{', '.join(p.label for p in dead)} exited while waiting for {what}\n"
                        f"{tails(procs)}", pytrace=False)
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:.0f}s waiting for {what}\n{tails(procs)}", pytrace=False)
        time.sleep(interval)


def wait_exit(proc: Proc, timeout: float, procs: Sequence[Proc] = ()) -> int:
    try:
        return proc.popen.wait(timeout)
    except subprocess.TimeoutExpired:
        pytest.fail(f"{proc.label} did not exit within {timeout:.0f}s\n{tails(procs or [proc])}", pytrace=False)


def stop_all(procs: Sequence[Proc], timeout: float, expect: int = 0) -> None:
    """SIGTERM every process; each must exit with ``expect`` in time."""
    for p in procs:
        if p.alive():
            p.popen.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + timeout
    for p in procs:
        rc = wait_exit(p, max(0.1, deadline - time.monotonic()), procs)
        assert rc == expect, f"{p.label} exited {rc}, expected {expect}\n{p.tail()}"


def kill_all(procs: Sequence[Proc]) -> None:
    for p in procs:
        if p.alive():
            p.popen.kill()
    for p in procs:
        with contextlib.suppress(subprocess.TimeoutExpired):
            p.popen.wait(10)


def ready_name(proc: Proc) -> str | None:
    """The process name a worker_proc printed once its pool runs."""
    for line in proc.stdout().splitlines():
        if line.startswith("ready"):
            return line.partition(" ")[2] or "ready"
    return None


def pid_of(process_name: str) -> int:
    """hub.jobs.worker.process_name() is host:pid:random."""
    return int(process_name.rsplit(":", 2)[1])


@pytest.fixture
def pg_engine(pg_url: str) -> Iterator[Engine]:
    engine = db.make_engine(pg_url)
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE effects (job_id bigint NOT NULL, worker text NOT NULL)"))
        conn.execute(text("CREATE TABLE markers (job_id bigint NOT NULL, worker text NOT NULL, what text)"))
    yield engine
    engine.dispose()


def scalar(engine: Engine, sql: str, **params: Any) -> Any:
    with engine.connect() as conn:
        return conn.execute(text(sql), params).scalar()


def rows(engine: Engine, sql: str, **params: Any) -> list[Any]:
    with engine.connect() as conn:
        return list(conn.execute(text(sql), params).all())


HUB_CONFIG = """\
[database]
url = "{url}"

[worker]
concurrency = 2
batch_size = 5
lease = "5s"
poll_interval = "200ms"
shutdown_timeout = "{shutdown}s"

[scheduler]
leader_poll = "300ms"

[schedule.tick]
job = "test.heartbeat"
every = "1s"

[log]
level = "info"
format = "json"

[connectors.test-shop]
kind = "test-shop"
rate_limit_per_minute = 600
rate_limit_burst = 5
"""


def write_config(tmp_path: Path, url: str, shutdown: float = 5.0) -> Path:
    path = tmp_path / "hub.toml"
    path.write_text(HUB_CONFIG.format(url=url, shutdown=shutdown), encoding="utf-8")
    return path


# --- 1. many workers, each job exactly once ---------------------------------------------------


def test_four_worker_processes_run_each_of_2000_jobs_exactly_once(
    pg_url: str, pg_engine: Engine, tmp_path: Path
) -> None:
    """SKIP LOCKED claims plus lease fencing: no job is lost and none runs twice, even with
    eight claiming threads in four processes racing over one table."""
    total = 2000
    procs = [
        spawn_worker("effect", pg_url, tmp_path, f"worker{i}", "--concurrency", "2", "--batch", "5")
        for i in range(4)
    ]
    try:
        wait_for("4 worker processes to start", lambda: all(ready_name(p) for p in procs), 30, procs, alive=procs)
        with db.transaction(pg_engine) as session:
            created = enqueue_many(session, [NewJob(KIND, {"n": i}, key=f"drain:{i}") for i in range(total)])
        assert created == total
        wait_for(
            f"{total} jobs done",
            lambda: scalar(pg_engine, "SELECT count(*) FROM jobs WHERE state = 'done'") == total,
            60, procs, alive=procs, interval=0.25,
        )
        stop_all(procs, 15)
    finally:
        kill_all(procs)

    assert scalar(pg_engine, "SELECT count(*) FROM effects") == total, "some job ran more than once (or never)"
    assert scalar(pg_engine, "SELECT count(DISTINCT job_id) FROM effects") == total
    assert scalar(pg_engine, "SELECT count(*) FROM effects e LEFT JOIN jobs j ON j.id = e.job_id "
                             "WHERE j.id IS NULL OR j.kind <> :k", k=KIND) == 0
    states = dict(rows(pg_engine, "SELECT state || '/' || attempts, count(*) FROM jobs GROUP BY 1"))
    assert states == {"done/1": total}, f"every job done on its first attempt, got {states}"
    assert scalar(pg_engine, "SELECT count(*) FROM job_failures") == 0
    by_worker = dict(rows(pg_engine, "SELECT worker, count(*) FROM effects GROUP BY worker"))
    names = {ready_name(p) for p in procs}
    assert set(by_worker) <= names, f"effects by unknown workers: {set(by_worker) - names}"
    assert len(by_worker) > 1, f"all work went to one process: {by_worker}"


# --- 2. a killed worker's job is requeued and done once ----------------------------------------


def test_job_of_a_sigkilled_worker_is_requeued_after_its_lease_and_done_once(
    pg_url: str, pg_engine: Engine, tmp_path: Path
) -> None:
    """A crashed process never settles its job: the lease must expire, another process's heartbeat
    must requeue it (recording why), and the job must then complete exactly once."""
    a = spawn_worker("block", pg_url, tmp_path, "worker-a", "--concurrency", "1", "--lease", "2")
    procs = [a]
    try:
        wait_for("worker A to start", lambda: ready_name(a), 30, procs, alive=[a])
        a_name = ready_name(a)
        with db.transaction(pg_engine) as session:
            job = enqueue(session, KIND, {"what": "crash test"}, key="crash:1")
        wait_for("worker A to start the job", lambda: scalar(
            pg_engine, "SELECT count(*) FROM markers WHERE job_id = :j", j=job.id), 20, procs, alive=[a])
        owner = scalar(pg_engine, "SELECT lease_owner FROM jobs WHERE id = :j AND state = 'running'", j=job.id)
        assert owner is not None and owner.startswith(f"{a_name}/"), owner
        a.popen.kill()
        assert wait_exit(a, 10) == -signal.SIGKILL

        b = spawn_worker("effect", pg_url, tmp_path, "worker-b", "--concurrency", "1", "--lease", "2")
        procs.append(b)
        wait_for("the job to be requeued and done by worker B", lambda: scalar(
            pg_engine, "SELECT state FROM jobs WHERE id = :j", j=job.id) == "done", 30, procs, alive=[b])
        b_name = ready_name(b)
        stop_all([b], 15)
    finally:
        kill_all(procs)

    assert rows(pg_engine, "SELECT worker FROM effects WHERE job_id = :j", j=job.id) == [(b_name,)], \
        "the job must be completed exactly once, by worker B"
    assert scalar(pg_engine, "SELECT count(*) FROM effects") == 1
    assert rows(pg_engine, "SELECT worker FROM markers") == [(a_name,)]
    assert scalar(pg_engine, "SELECT attempts FROM jobs WHERE id = :j", j=job.id) == 2
    failures = rows(pg_engine, "SELECT outcome, attempt, worker FROM job_failures WHERE job_id = :j", j=job.id)
    assert [(f.outcome, f.attempt) for f in failures] == [("lease-expired", 1)], failures
    assert failures[0].worker == owner


# --- 3. one idempotency key, one job, under concurrent enqueue --------------------------------


def test_concurrent_enqueue_with_one_idempotency_key_creates_one_job(pg_engine: Engine) -> None:
    """The unique key decides, not a read-then-insert: callers racing in open transactions must end
    with one job, one creator, and every caller holding that job's id."""
    callers = 8
    for round_ in range(5):
        key = f"dup:{round_}"
        barrier = threading.Barrier(callers)
        results: list[Enqueued | None] = [None] * callers
        errors: list[BaseException] = []

        def call(i: int, key: str = key, barrier: threading.Barrier = barrier,
                 results: list[Enqueued | None] = results, errors: list[BaseException] = errors) -> None:
            try:
                with db.transaction(pg_engine) as session:
                    session.connection()  # hold a connection before the start line
                    barrier.wait(timeout=20)
                    results[i] = enqueue(session, "test.dup", {"caller": i}, key=key)
                    time.sleep(0.05)  # keep the row uncommitted so the others must wait on it
            except BaseException as exc:
                errors.append(exc)

        threads = [threading.Thread(target=call, args=(i,), daemon=True) for i in range(callers)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        assert not any(t.is_alive() for t in threads), "an enqueue call hung"
        assert not errors, errors
        done = [r for r in results if r is not None]
        assert len(done) == callers
        assert sum(r.created for r in done) == 1, f"round {round_}: {done}"
        ids = {r.id for r in done}
        assert len(ids) == 1, f"round {round_}: callers got different ids {ids}"
        assert rows(pg_engine, "SELECT id FROM jobs WHERE idempotency_key = :k", k=key) == [(ids.pop(),)]
    assert scalar(pg_engine, "SELECT count(*) FROM jobs") == 5

    insert = text(
        "INSERT INTO jobs (kind, payload, idempotency_key, state, priority, attempts, run_at, created_at, "
        "updated_at) VALUES ('test.dup', '{}', :k, 'pending', 0, 0, now(), now(), now())"
    )
    with pg_engine.begin() as conn:  # the statement itself is valid...
        conn.execute(insert, {"k": "dup:fresh"})
    with pytest.raises(IntegrityError) as info, pg_engine.begin() as conn:  # ...a duplicate key is not
        conn.execute(insert, {"k": "dup:0"})
    assert "uq_jobs_idempotency_key" in str(info.value)


# --- 4. scheduler leadership moves when the leader dies ------------------------------------------


def _schedule_run(engine: Engine) -> Any:
    found = rows(engine, "SELECT fired_by, last_fired_at FROM schedule_runs WHERE name = 'tick'")
    return found[0] if found else None


def _took_lead(proc: Proc) -> bool:
    return any(e.get("event") == "this process now runs the schedule" for e in proc.log_events())


def test_scheduler_leadership_moves_to_another_process_when_the_leader_is_killed(
    pg_url: str, pg_engine: Engine, tmp_path: Path
) -> None:
    """One advisory lock, one leader: of three `hub run` processes only one fires the schedule, and
    when it is SIGKILLed another live process takes over and the periodic jobs keep running."""
    config = write_config(tmp_path, pg_url)
    procs = [spawn_hub(config, tmp_path, f"hub{i}") for i in range(3)]
    by_pid = {p.pid: p for p in procs}
    try:
        first = wait_for("the schedule to fire", lambda: _schedule_run(pg_engine), 30, procs, alive=procs)
        leader = by_pid.get(pid_of(first.fired_by))
        assert leader is not None, f"fired_by {first.fired_by!r} is none of {sorted(by_pid)}"

        seen, fired_at = set(), set()
        end = time.monotonic() + 2.5
        while time.monotonic() < end:
            run = _schedule_run(pg_engine)
            seen.add(run.fired_by)
            fired_at.add(run.last_fired_at)
            time.sleep(0.1)
        assert seen == {first.fired_by}, f"more than one process fired the schedule: {seen}\n{tails(procs)}"
        assert len(fired_at) >= 2, f"the leader stopped firing: {fired_at}"
        assert [p.label for p in procs if _took_lead(p)] == [leader.label], tails(procs)

        leader.popen.kill()
        assert wait_exit(leader, 10) == -signal.SIGKILL
        survivors = [p for p in procs if p is not leader]
        with pg_engine.connect() as conn:
            last_id = conn.execute(text("SELECT coalesce(max(id), 0) FROM jobs")).scalar()

        def new_leader() -> Any:
            run = _schedule_run(pg_engine)
            return run if pid_of(run.fired_by) != leader.pid else None

        moved = wait_for("another process to take the schedule over", new_leader, 15, procs, alive=survivors)
        successor = by_pid.get(pid_of(moved.fired_by))
        assert successor in survivors and successor is not None and successor.alive(), moved.fired_by
        wait_for(
            "heartbeat jobs to be done after the takeover",
            lambda: scalar(pg_engine, "SELECT count(*) FROM jobs WHERE kind = 'test.heartbeat' "
                                      "AND state = 'done' AND id > :i", i=last_id) >= 2,
            15, procs, alive=survivors,
        )
        assert {_schedule_run(pg_engine).fired_by} == {moved.fired_by}
        assert [p.label for p in survivors if _took_lead(p)] == [successor.label], tails(procs)
        stop_all(survivors, 20)
    finally:
        kill_all(procs)
    assert scalar(pg_engine, "SELECT count(*) FROM jobs WHERE kind = 'test.heartbeat' AND state = 'dead'") == 0


# --- 5. clean stop on SIGTERM ------------------------------------------------------------------


def test_hub_run_stops_cleanly_on_sigterm_mid_work(pg_url: str, pg_engine: Engine, tmp_path: Path) -> None:
    """systemd stops the daemon with SIGTERM: it must exit 0 within the shutdown timeout, leave no job
    'running', and give back claimed-but-unstarted jobs without spending an attempt."""
    shutdown = 5.0
    config = write_config(tmp_path, pg_url, shutdown=shutdown)
    pushes = 300  # 10 per second through test-shop's limit: far more than the test waits for
    with db.transaction(pg_engine) as session:
        enqueue_many(session, [
            NewJob("test.push_stock", {"sku": f"SKU-{i}", "quantity": i}, key=f"push:{i}", connector="test-shop")
            for i in range(pushes)
        ])
    proc = spawn_hub(config, tmp_path, "hub")
    try:
        wait_for("the daemon to process jobs", lambda: scalar(
            pg_engine, "SELECT count(*) FROM jobs WHERE kind = 'test.push_stock' AND state = 'done'") >= 10,
            30, [proc], alive=[proc])
        assert scalar(pg_engine, "SELECT count(*) FROM jobs WHERE state = 'running'") > 0, \
            "nothing was running at SIGTERM, so the test proves nothing"
        proc.popen.send_signal(signal.SIGTERM)
        started = time.monotonic()
        rc = wait_exit(proc, shutdown + 10)
        took = time.monotonic() - started
    finally:
        kill_all([proc])
    assert rc == 0, proc.tail()
    assert took < shutdown + 3, f"stopping took {took:.1f}s, the shutdown timeout is {shutdown}s"
    events = [e.get("event") for e in proc.log_events()]
    assert "worker pool stopped" in events, proc.tail()
    states = dict(rows(pg_engine, "SELECT state, count(*) FROM jobs WHERE kind = 'test.push_stock' GROUP BY 1"))
    assert "running" not in states and scalar(pg_engine, "SELECT count(*) FROM jobs WHERE state = 'running'") == 0
    assert states.get("pending", 0) > 0, f"the queue drained before SIGTERM: {states}"
    assert states.get("done", 0) + states.get("pending", 0) == pushes, states
    spent = scalar(pg_engine, "SELECT count(*) FROM jobs WHERE state = 'pending' AND attempts <> 0")
    assert spent == 0, "a job given back at shutdown lost an attempt"
    assert scalar(pg_engine, "SELECT count(*) FROM job_failures") == 0


# --- 6. the rate limit holds across processes ----------------------------------------------------


def test_postgres_rate_limit_is_shared_by_processes(pg_url: str, pg_engine: Engine, tmp_path: Path) -> None:
    """Three processes drawing on one key must together respect one bucket: 60 tokens at 20/s with a
    burst of 5 cannot be handed out in less than (60 - 5) / 20 = 2.75 s. Per-process buckets would
    finish in about 0.75 s."""
    count, per_second, burst = 20, 20.0, 5.0
    go = tmp_path / "go"
    procs = [
        spawn_worker("ratelimit", pg_url, tmp_path, f"limiter{i}", "--go", str(go), "--count", str(count),
                     "--per-second", str(per_second), "--burst", str(burst), "--key", "test:shared")
        for i in range(3)
    ]
    try:
        wait_for("3 processes to connect", lambda: all(ready_name(p) for p in procs), 30, procs, alive=procs)
        go.touch()
        for p in procs:
            rc = wait_exit(p, 30, procs)
            assert rc == 0, p.tail()
    finally:
        kill_all(procs)
    reports = [json.loads(p.stdout().splitlines()[-1]) for p in procs]
    assert sum(len(r["delays"]) for r in reports) == 3 * count
    starts = [r["first"] for r in reports]
    assert max(starts) - min(starts) < 1.0, "the processes did not draw on the bucket at the same time"
    elapsed = max(r["last"] for r in reports) - min(starts)
    floor = (3 * count - burst) / per_second
    assert elapsed >= floor - 0.1, f"60 tokens handed out in {elapsed:.2f}s, the shared bucket allows {floor:.2f}s"
