"""The worker pool: threads that claim jobs, run their handlers and settle the outcomes.

One heartbeat thread renews the leases of every job this process holds and
requeues jobs whose lease expired elsewhere (a crashed process). On stop the
pool claims nothing more, lets running handlers finish within the timeout, and
gives back what is left.
"""

from __future__ import annotations

import os
import socket
import threading
import time
import traceback
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import structlog
from sqlalchemy import Engine

from hub.jobs import queue
from hub.jobs.handlers import HandlerRegistry, JobContext
from hub.jobs.metrics import JOB_DURATION
from hub.jobs.queue import ClaimedJob, Outcome
from hub.kernel.errors import Deferred, LoginNeeded, PermanentError, RetryableError
from hub.platform import malloc
from hub.platform.config import WorkerSettings
from hub.platform.logs import get_logger
from hub.platform.ratelimit import Throttle

log = get_logger("hub.jobs.worker")

FLUSH_AFTER = 0.05  # seconds: completions wait at most this long to be written in one batch
# seconds: a job that ran longer (a whole-catalogue one) hands its freed memory back (hub.platform.malloc.trim).
# Not lower: a trim holds malloc's locks for 40-140 ms, and threads allocating under the GIL wait that
# long; at 1 s it followed busy ERP polls too and the soak's job wait tripled
TRIM_AFTER = 5.0
IDLE_FALLBACK_POLLS = 10  # an idle thread not polling looks itself after this many poll intervals


def process_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


@dataclass
class _Held:
    """Jobs a worker thread holds a lease on, and which of them it has started."""

    jobs: dict[int, ClaimedJob] = field(default_factory=dict)
    started: set[int] = field(default_factory=set)


class WorkerPool:
    def __init__(
        self,
        engine: Engine,
        registry: HandlerRegistry,
        settings: WorkerSettings,
        *,
        name: str | None = None,
        throttles: dict[str, Throttle] | None = None,
        on_settled: Callable[[list[Outcome]], None] | None = None,
    ):
        self.engine = engine
        self.registry = registry
        self.settings = settings
        self.name = name or process_name()
        self.throttles = throttles or {}
        self.on_settled = on_settled
        self._stopping = threading.Event()
        self._heartbeat_stop = threading.Event()
        self._wake = threading.Event()
        self._poller = threading.Lock()  # held by the one idle thread that polls for the others
        self._work_found = threading.Condition()
        self._threads: list[threading.Thread] = []
        self._heartbeat: threading.Thread | None = None
        self._held: dict[str, _Held] = {}
        self._held_lock = threading.Lock()
        self.processed = 0
        self.errors_in_loop = 0

    # --- lifecycle -------------------------------------------------------------

    def start(self) -> None:
        for i in range(self.settings.concurrency):
            worker = f"{self.name}/w{i}"
            with self._held_lock:
                self._held[worker] = _Held()
            thread = threading.Thread(target=self._loop, args=(worker,), name=f"hub-worker-{i}", daemon=True)
            thread.start()
            self._threads.append(thread)
        self._heartbeat = threading.Thread(target=self._heartbeat_loop, name="hub-heartbeat", daemon=True)
        self._heartbeat.start()
        log.info("worker pool started", worker=self.name, threads=self.settings.concurrency,
                 kinds=sorted(self.registry.kinds()))

    def wake(self) -> None:
        """New work is waiting: skip the rest of the poll interval."""
        self._wake.set()
        with self._work_found:
            self._work_found.notify_all()

    def healthy(self) -> bool:
        threads = [*self._threads, *([self._heartbeat] if self._heartbeat else [])]
        return bool(threads) and all(t.is_alive() for t in threads)

    def stop(self, timeout: float | None = None) -> None:
        """Stop claiming; wait for running handlers; give back every lease still held."""
        timeout = self.settings.shutdown_timeout if timeout is None else timeout
        self._stopping.set()
        self.wake()
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        with self._held_lock:
            leftovers = {w: (list(h.jobs.values()), set(h.started)) for w, h in self._held.items()}
        for worker, (jobs, started) in leftovers.items():
            unstarted = [j for j in jobs if j.id not in started]
            running = [j for j in jobs if j.id in started]
            queue.release(self.engine, unstarted, started=False, reason="worker stopping", worker=worker)
            if running:
                queue.release(
                    self.engine, running, started=True, worker=worker,
                    reason=f"worker stopped after {timeout:.0f}s shutdown timeout while the job ran",
                )
                log.warning("released running jobs at shutdown", worker=worker, jobs=[j.id for j in running])
        self._heartbeat_stop.set()
        if self._heartbeat:
            self._heartbeat.join(5.0)
        log.info("worker pool stopped", worker=self.name, processed=self.processed)

    # --- the claim loop ---------------------------------------------------------

    def _loop(self, worker: str) -> None:
        kinds = self.registry.kinds()
        while not self._stopping.is_set():
            try:
                jobs = queue.claim(
                    self.engine, worker, limit=self.settings.batch_size,
                    lease=self.settings.lease, kinds=kinds,
                )
            except Exception as exc:
                self.errors_in_loop += 1
                log.error("claim failed; retrying", worker=worker, error=str(exc))
                self._stopping.wait(min(5.0, self.settings.poll_interval * 2))
                continue
            if not jobs:
                self._idle()
                continue
            with self._work_found:  # a full batch: more may be due, every idle thread looks; else one
                if len(jobs) >= self.settings.batch_size:  # takes over the polling this thread leaves
                    self._work_found.notify_all()
                else:
                    self._work_found.notify()
            self._run_batch(worker, jobs)

    def _idle(self) -> None:
        """Nothing was due. One idle thread polls the queue every poll interval (or at a wake); the other
        idle threads wait until it finds a full batch. Every idle thread polling on its own made dozens
        of empty claims a second for nothing, each a transaction on both sides."""
        if self._poller.acquire(blocking=False):
            try:
                self._wake.wait(self.settings.poll_interval)
                self._wake.clear()
            finally:
                self._poller.release()
            return
        with self._work_found:
            if not self._stopping.is_set():
                self._work_found.wait(self.settings.poll_interval * IDLE_FALLBACK_POLLS)

    def _run_batch(self, worker: str, jobs: list[ClaimedJob]) -> None:
        held = self._held[worker]
        with self._held_lock:
            held.jobs.update({j.id: j for j in jobs})
        pending: list[Outcome] = []
        last_flush = time.monotonic()
        try:
            at = 0
            while at < len(jobs):
                if self._stopping.is_set():
                    break
                # a run of one kind whose handler takes many at once; else the job alone
                group = [jobs[at]]
                if self.registry.many(jobs[at].kind) is not None:
                    while at + len(group) < len(jobs) and jobs[at + len(group)].kind == jobs[at].kind:
                        group.append(jobs[at + len(group)])
                at += len(group)
                try:
                    begun = queue.begin_many(self.engine, group)
                except Exception as exc:  # the database blinked: what is left of the batch goes back
                    self.errors_in_loop += 1
                    log.error("could not start a claimed job; giving the batch back", worker=worker,
                              job=group[0].id, error=str(exc))
                    break
                ours = {b.id: b for b in begun}
                with self._held_lock:
                    for job in group:
                        if job.id in ours:
                            held.jobs[job.id] = ours[job.id]
                            held.started.add(job.id)
                        else:
                            held.jobs.pop(job.id, None)
                lost = [job.id for job in group if job.id not in ours]
                if lost:
                    log.warning("lease lost before the job started; another worker owns it now",
                                worker=worker, jobs=lost)
                if not begun:
                    continue
                outcomes = self._run_many(worker, begun) if len(begun) > 1 else [self._run_one(worker, begun[0])]
                failed = [outcome for outcome in outcomes if not outcome.ok]
                if failed:
                    self._settle(worker, failed)
                pending.extend(outcome for outcome in outcomes if outcome.ok)
                if pending and time.monotonic() - last_flush > FLUSH_AFTER:
                    self._settle(worker, pending)
                    pending = []
                    last_flush = time.monotonic()
        finally:
            if pending:
                self._settle(worker, pending)
            with self._held_lock:
                # what was never started stays in held.jobs for stop() to release
                for jid in list(held.started):
                    held.jobs.pop(jid, None)
                held.started.clear()
            if not self._stopping.is_set() and held.jobs:
                leftover = list(held.jobs.values())
                with self._held_lock:
                    held.jobs.clear()
                queue.release(self.engine, leftover, started=False, reason="batch cut short", worker=worker)

    def _settle(self, worker: str, outcomes: list[Outcome]) -> None:
        for attempt in range(5):
            try:
                settled = queue.settle(self.engine, outcomes, self.settings, worker)
                break
            except Exception as exc:  # the database blinked: try again, the leases still hold
                log.error("could not record job outcomes; retrying", worker=worker, error=str(exc))
                time.sleep(0.2 * (attempt + 1))
        else:
            log.error("gave up recording outcomes; leases will expire and the jobs rerun",
                      jobs=[o.job.id for o in outcomes])
            return
        with self._held_lock:  # recorded: no longer ours to renew (the batch may still be running)
            held = self._held.get(worker)
            if held is not None:
                for outcome in outcomes:
                    held.jobs.pop(outcome.job.id, None)
        lost = [o.job.id for o in outcomes if o.job.id not in settled]
        if lost:
            log.warning("lease lost before the outcome was recorded; another worker owns these jobs now",
                        worker=worker, jobs=lost)
        self.processed += len(settled)
        if self.on_settled:
            self.on_settled(outcomes)

    def _run_many(self, worker: str, jobs: list[ClaimedJob]) -> list[Outcome]:
        """Jobs of one kind through its many-handler at once: an outcome each from its own result or
        exception. If the lot fails as a whole, each job runs alone, so one bad job fails by itself."""
        many = self.registry.many(jobs[0].kind)
        assert many is not None
        started = time.perf_counter()
        contexts = [JobContext(job=job, engine=self.engine, log=get_logger("hub.job").bind(
            job_id=job.id, kind=job.kind, connector=job.connector, attempt=job.attempts),
            throttles=self.throttles, stopping=self._stopping) for job in jobs]
        try:
            results = many(contexts)
            if len(results) != len(jobs):
                raise RuntimeError(f"{jobs[0].kind}: {len(results)} results for {len(jobs)} jobs")
        except Exception as exc:
            log.warning("jobs taken together failed as a lot; running each alone", kind=jobs[0].kind,
                        jobs=[job.id for job in jobs], error=str(exc))
            return [self._run_one(worker, job) for job in jobs]
        share = (time.perf_counter() - started) / len(jobs)
        outcomes = []
        for ctx, result in zip(contexts, results, strict=True):
            outcome = _outcome(ctx.job, ctx.log, result)
            JOB_DURATION.labels(ctx.job.kind, "done" if outcome.ok else "failed").observe(share)
            outcomes.append(outcome)
        return outcomes

    def _run_one(self, worker: str, job: ClaimedJob) -> Outcome:
        handler = self.registry.get(job.kind)
        started = time.perf_counter()
        with structlog.contextvars.bound_contextvars(
            job_id=job.id, kind=job.kind, connector=job.connector, attempt=job.attempts
        ):
            jlog = get_logger("hub.job")
            if handler is None:  # claim filters by kind, so only a registry changed under us
                return Outcome(job, ok=False, error=f"no handler registered for job kind {job.kind!r}",
                               retryable=False)
            ctx = JobContext(job=job, engine=self.engine, log=jlog, throttles=self.throttles,
                             stopping=self._stopping)
            result: Any
            try:
                result = handler(ctx)
            except Exception as exc:
                result = exc
            outcome = _outcome(job, jlog, result)
        elapsed = time.perf_counter() - started
        JOB_DURATION.labels(job.kind, "done" if outcome.ok else "failed").observe(elapsed)
        if elapsed > TRIM_AFTER:  # a long job has just let go of much (a catalogue): its free pages go back
            malloc.trim()
        return outcome

    # --- leases ---------------------------------------------------------------------

    def _heartbeat_loop(self) -> None:
        interval = max(0.2, self.settings.lease / 3)
        # keeps renewing while stop() waits for running handlers; stop() ends it last
        while not self._heartbeat_stop.wait(interval):
            with self._held_lock:
                jobs = [j for h in self._held.values() for j in h.jobs.values()]
            try:
                if jobs:
                    kept = queue.renew(self.engine, jobs, self.settings.lease)
                    with self._held_lock:  # a job settled since the snapshot is not lost
                        still = {jid for h in self._held.values() for jid in h.jobs}
                    lost = [j.id for j in jobs if j.id not in kept and j.id in still]
                    if lost:
                        log.warning("lease renewal found jobs no longer ours", jobs=lost)
                if not self._stopping.is_set():
                    requeued = queue.requeue_expired(self.engine, self.settings)
                    if requeued:
                        log.warning("requeued jobs whose lease expired", jobs=requeued)
                        self.wake()
            except Exception as exc:
                log.error("lease heartbeat failed", error=str(exc))


def _jsonable_result(result: Any) -> Any:
    if result is None or isinstance(result, dict):
        return result
    return {"value": result}


def _outcome(job: ClaimedJob, jlog: Any, result: Any) -> Outcome:
    """A job's outcome from what its handler returned or raised (an exception instance)."""
    if isinstance(result, PermanentError):
        outcome = Outcome(job, ok=False, error=str(result) or type(result).__name__, retryable=False)
        jlog.error("job failed permanently", error=outcome.error)
    elif isinstance(result, Deferred):
        outcome = Outcome(job, ok=False, error=str(result), deferred=True, retry_after=result.retry_after)
        jlog.info("job deferred", error=outcome.error, retry_after=result.retry_after)
    elif isinstance(result, LoginNeeded):
        outcome = Outcome(job, ok=False, error=str(result), hold=True, retry_after=result.retry_after)
        jlog.warning("connector needs a login; job held", error=outcome.error)
    elif isinstance(result, RetryableError):
        outcome = Outcome(job, ok=False, error=str(result) or type(result).__name__, retryable=True,
                          retry_after=result.retry_after)
        jlog.warning("job attempt failed", error=outcome.error, retry_after=result.retry_after)
    elif isinstance(result, BaseException):
        detail = "".join(traceback.format_exception_only(type(result), result)).strip()
        outcome = Outcome(job, ok=False, error=detail, retryable=True)
        jlog.error("job attempt raised", error=detail, exc_info=result)
    else:
        outcome = Outcome(job, ok=True, result=_jsonable_result(result))
        jlog.debug("job done")
    return outcome
