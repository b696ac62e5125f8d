"""The job queue (outbox): enqueue in the caller's transaction, claim with a lease, settle.

Every state change on a claimed job is fenced by the claim's lease token: a
worker whose lease expired (and whose job another worker took over) cannot
complete or fail the job any more.
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine, and_, bindparam, delete, func, or_, select, update
from sqlalchemy.orm import Session

from hub.jobs.backoff import retry_delay
from hub.jobs.models import OPEN_STATES, RUNNABLE_STATES, Job, JobFailure
from hub.kernel.clock import utcnow
from hub.platform import credentials
from hub.platform.config import WorkerSettings
from hub.platform.db import insert_for, standalone, transaction
from hub.platform.health import note_ok, set_health
from hub.platform.logs import redact_text

MAX_ERROR_CHARS = 4000
# statements run in a caller's ORM session name the table, not the entity: the ORM's bulk update path
# (identity-map sync, per-statement compile) cost more than the statement itself
JOBS = Job.__table__

# The statements every job runs, built once: a statement object memoizes its cache key, so SQLAlchemy
# neither rebuilds nor re-keys them per job (bench/labels: building and keying them per call was a
# tenth of a booking's CPU)
_RUNNING = and_(JOBS.c.id == bindparam("job_id"), JOBS.c.lease_token == bindparam("token"),
                JOBS.c.state == "running")
# the first attempt's start is kept: what an earlier attempt sent (a push whose process died before
# its results were recorded) went out no earlier than that
_FIRST_STARTED = func.coalesce(JOBS.c.first_started_at, bindparam("now"))
_BEGIN = (update(JOBS).where(_RUNNING)
          .values(attempts=JOBS.c.attempts + 1, started_at=bindparam("now"), first_started_at=_FIRST_STARTED)
          .returning(JOBS.c.attempts, JOBS.c.first_started_at))
_DONE = (update(JOBS).where(_RUNNING)
         .values(state="done", result=bindparam("result_value", type_=JOBS.c.result.type), last_error=None,
                 lease_owner=None, lease_token=None, lease_expires_at=None, updated_at=bindparam("now"),
                 finished_at=bindparam("now"))
         .returning(JOBS.c.id))
_PENDING = and_(JOBS.c.idempotency_key == bindparam("key"), JOBS.c.state == "pending")
_RUN_NOW = update(JOBS).where(_PENDING).values(run_at=bindparam("now"), updated_at=bindparam("now"))
_DONE_WITHOUT_RUNNING = update(JOBS).where(_PENDING).values(
    state="done", result=bindparam("result_value", type_=JOBS.c.result.type), updated_at=bindparam("now"),
    finished_at=bindparam("now"))


@dataclass(frozen=True)
class Enqueued:
    id: int
    created: bool


@dataclass(frozen=True)
class NewJob:
    kind: str
    payload: dict[str, Any]
    key: str
    connector: str | None = None
    priority: int = 0
    run_at: datetime | None = None
    max_attempts: int | None = None


@dataclass(frozen=True)
class ClaimedJob:
    id: int
    kind: str
    payload: dict[str, Any]
    idempotency_key: str
    connector: str | None
    attempts: int
    max_attempts: int | None
    priority: int
    lease_token: str
    # the attempt is counted when the job starts (``begin``), not when it is claimed: a job waiting in
    # a batch behind a slow one spends nothing if its process dies first
    begun: bool = False
    # when its first attempt began (set once begun): the earliest an effect of any attempt can date from
    first_started_at: datetime | None = None


@dataclass
class Outcome:
    """What a worker reports for one job."""

    job: ClaimedJob
    ok: bool
    result: Any = None
    error: str | None = None
    retryable: bool = True
    retry_after: float | None = None
    hold: bool = False  # the connector needs an operator (login): wait without spending an attempt
    deferred: bool = False  # the connector's quota is spent: run again at retry_after, no attempt spent


def _row(job: NewJob, now: datetime) -> dict[str, Any]:
    if not job.key:
        raise ValueError(f"job {job.kind!r} needs an idempotency key")
    return {
        "kind": job.kind,
        "payload": job.payload,
        "idempotency_key": job.key,
        "connector": job.connector,
        "state": "pending",
        "priority": job.priority,
        "attempts": 0,
        "max_attempts": job.max_attempts,
        "run_at": job.run_at or now,
        "created_at": now,
        "updated_at": now,
    }


@functools.cache
def _insert_statement(dialect_insert: Any, exclusive: bool) -> Any:
    """One statement per dialect, values bound at execution: compiled once, not per job (a Core insert,
    so the ORM's bulk machinery stays out of the hot path)."""
    insert = dialect_insert(Job.__table__)
    if exclusive:
        insert = insert.on_conflict_do_nothing()  # the key, or an open job of the same exclusive value
    else:
        insert = insert.on_conflict_do_nothing(index_elements=["idempotency_key"])
    return insert.returning(Job.__table__.c.id)


def enqueue(
    session: Session,
    kind: str,
    payload: dict[str, Any],
    *,
    key: str,
    connector: str | None = None,
    priority: int = 0,
    run_at: datetime | None = None,
    max_attempts: int | None = None,
    exclusive: str | None = None,
) -> Enqueued:
    """Add a job in the caller's transaction; an existing idempotency key returns the existing job.

    The database's unique key decides, not a read-then-insert: two transactions
    racing with one key end with one job. With ``exclusive``, a job with that value still open
    (pending, running, retrying) also wins: its id comes back and nothing is added.
    """
    job = NewJob(kind, payload, key, connector, priority, run_at, max_attempts)
    insert = _insert_statement(insert_for(session), exclusive is not None)
    row = {**_row(job, utcnow()), "exclusive": exclusive}
    for _ in range(3):  # the open job may finish between our insert and our look: insert again
        new_id = session.execute(insert, row).scalar()
        if new_id is not None:
            return Enqueued(new_id, True)
        existing = session.execute(select(Job.id, Job.kind).where(Job.idempotency_key == key)).one_or_none()
        if existing is not None or exclusive is None:
            break
        open_id = session.execute(select(Job.id).where(Job.exclusive == exclusive, Job.state.in_(OPEN_STATES))
                                  ).scalar()
        if open_id is not None:
            return Enqueued(open_id, False)
    if existing is None:
        raise RuntimeError(f"job {kind!r} with key {key!r} was neither added nor found")
    if existing.kind != kind:
        raise ValueError(
            f"idempotency key {key!r} already belongs to job {existing.id} of kind {existing.kind!r}, not {kind!r}"
        )
    return Enqueued(existing.id, False)


def run_now(session: Session, key: str) -> bool:
    """Make a pending job (queued to run later) due now; False if it is no longer pending."""
    return session.execute(_RUN_NOW, {"key": key, "now": utcnow()}).rowcount > 0


def done_without_running(session: Session, key: str, result: dict[str, Any]) -> bool:
    """A pending job whose work its caller did itself (in this transaction): done, never run. False if a
    worker has it already (it will find the work done)."""
    return session.execute(_DONE_WITHOUT_RUNNING, {"key": key, "result_value": result, "now": utcnow()}
                           ).rowcount > 0


def enqueue_coalesced(
    session: Session, kind: str, payload: dict[str, Any], *, group: str, priority: int = 0
) -> Enqueued:
    """For work that reads shared state when it runs (e.g. "push what is dirty"): join a job of the
    group that has not started yet, else add one. A running job may have read the state already, so
    only a pending one is joined. A race adds a second job, which is harmless for such work."""
    pending = session.execute(
        select(Job.id).where(Job.kind == kind, Job.state == "pending",
                             Job.idempotency_key.like(f"{COALESCED}{group}:%"))
        .limit(1)
    ).scalar()
    if pending is not None:
        return Enqueued(pending, False)
    return enqueue(session, kind, payload, key=f"{COALESCED}{group}:{uuid.uuid4().hex}", priority=priority)


def enqueue_many(session: Session, jobs: Iterable[NewJob]) -> int:
    """Bulk enqueue; existing keys are skipped. Returns how many jobs were created."""
    now = utcnow()
    rows = [_row(j, now) for j in jobs]
    if not rows:
        return 0
    created = 0
    for start in range(0, len(rows), 500):
        stmt = (
            insert_for(session)(Job)
            .values(rows[start:start + 500])
            .on_conflict_do_nothing(index_elements=["idempotency_key"])
            .returning(Job.id)
        )
        created += len(session.execute(stmt).all())
    return created


def claim(
    engine: Engine,
    worker: str,
    *,
    limit: int,
    lease: float,
    kinds: Collection[str] | None = None,
) -> list[ClaimedJob]:
    """Take up to ``limit`` due jobs, highest priority and oldest first.

    PostgreSQL: ``FOR UPDATE SKIP LOCKED``, so workers never wait on each
    other's rows. SQLite: the transaction starts with BEGIN IMMEDIATE, which
    serializes claims across threads and processes.

    Only the first job of the batch (the one the worker runs at once) has its attempt counted here;
    the others count theirs in ``begin`` when their turn comes.
    """
    if kinds is not None and not kinds:
        return []
    now = utcnow()
    token = uuid.uuid4().hex
    params = {"now": now, "limit": limit, "worker": worker, "token": token,
              "expires": now + timedelta(seconds=lease)}
    postgres = engine.dialect.name == "postgresql"
    stmt = _claim_statement(postgres, None if kinds is None else tuple(sorted(kinds)))
    # PostgreSQL: the claim is one statement and the first job's count another, each its own commit (a
    # crash between them has run nothing); SQLite: one BEGIN IMMEDIATE transaction serializes claimers
    with standalone(engine).begin() as conn:
        rows = conn.execute(stmt, params).all()
        jobs = sorted((ClaimedJob(*row[:-1], lease_token=token, first_started_at=row[-1]) for row in rows),
                      key=lambda j: (-j.priority, j.id))
        if jobs:
            conn.execute(_COUNT_FIRST, {"job_id": jobs[0].id, "now": now})
            jobs[0] = replace(jobs[0], attempts=jobs[0].attempts + 1, begun=True,
                              first_started_at=jobs[0].first_started_at or now)
    return jobs


_CLAIMED = (JOBS.c.id, JOBS.c.kind, JOBS.c.payload, JOBS.c.idempotency_key, JOBS.c.connector, JOBS.c.attempts,
            JOBS.c.max_attempts, JOBS.c.priority, JOBS.c.first_started_at)
_COUNT_FIRST = (update(JOBS).where(JOBS.c.id == bindparam("job_id"))
                .values(attempts=JOBS.c.attempts + 1, started_at=bindparam("now"), first_started_at=_FIRST_STARTED))


@functools.cache
def _claim_statement(postgres: bool, kinds: tuple[str, ...] | None) -> Any:
    """The claim for one registry's kinds, built once (its kinds are fixed for the process's life)."""
    due = select(JOBS.c.id).where(JOBS.c.state.in_(sorted(RUNNABLE_STATES)), JOBS.c.run_at <= bindparam("now"))
    if kinds is not None:
        due = due.where(JOBS.c.kind.in_(kinds))
    due = due.order_by(JOBS.c.priority.desc(), JOBS.c.run_at, JOBS.c.id).limit(bindparam("limit"))
    values = {"state": "running", "lease_owner": bindparam("worker"), "lease_token": bindparam("token"),
              "lease_expires_at": bindparam("expires"), "updated_at": bindparam("now")}
    if postgres:
        picked = due.with_for_update(skip_locked=True).cte("picked")
        return update(JOBS).where(JOBS.c.id == picked.c.id).values(**values).returning(*_CLAIMED)
    return update(JOBS).where(JOBS.c.id.in_(due.scalar_subquery())).values(**values).returning(*_CLAIMED)


def begin(engine: Engine, job: ClaimedJob) -> ClaimedJob | None:
    """Count the attempt of a claimed job about to run; None if its lease is no longer ours."""
    begun = begin_many(engine, [job])
    return begun[0] if begun else None


def begin_many(engine: Engine, jobs: Sequence[ClaimedJob]) -> list[ClaimedJob]:
    """Count the attempts of claimed jobs about to run (one, or a run a handler takes together), in one
    transaction: those whose lease is still ours (one already begun keeps its count, and costs no
    statement)."""
    if all(job.begun for job in jobs):
        return list(jobs)
    now = utcnow()
    out: list[ClaimedJob] = []
    with standalone(engine).begin() as conn:
        for job in jobs:
            if job.begun:
                out.append(job)
                continue
            row = conn.execute(_BEGIN, {"job_id": job.id, "token": job.lease_token, "now": now}).first()
            if row is not None:
                out.append(replace(job, attempts=row.attempts, begun=True, first_started_at=row.first_started_at))
    return out


def renew(engine: Engine, jobs: Sequence[ClaimedJob], lease: float) -> set[int]:
    """Extend the leases still held; returns the ids still ours: renewed, or locked by a transaction that
    is finishing them (a settle), which the renewal skips rather than waits for."""
    if not jobs:
        return set()
    now = utcnow()
    held: set[int] = set()
    by_token: dict[str, list[int]] = {}
    for job in jobs:
        by_token.setdefault(job.lease_token, []).append(job.id)
    with engine.begin() as conn:
        for token, ids in by_token.items():
            # rows another transaction holds (a settle finishing them, in its own order) are skipped, not
            # waited for: waiting deadlocked with a settle on PostgreSQL (soak); the next beat renews
            # what is still running
            ours = select(JOBS.c.id).where(JOBS.c.lease_token == token, JOBS.c.id.in_(ids),
                                           JOBS.c.state == "running")
            held.update(conn.execute(ours).scalars())
            stmt = (update(JOBS).where(JOBS.c.id.in_(ours.with_for_update(skip_locked=True).scalar_subquery()))
                    .values(lease_expires_at=now + timedelta(seconds=lease), updated_at=now))
            conn.execute(stmt)
    return held


def _effective_max(job: ClaimedJob, settings: WorkerSettings) -> int:
    return job.max_attempts or settings.max_attempts


def settle(engine: Engine, outcomes: Sequence[Outcome], settings: WorkerSettings, worker: str) -> set[int]:
    """Record outcomes in one transaction; returns the ids whose lease was still ours.

    Successes become done; failures go to failed-retrying with backoff, or dead
    when permanent or out of attempts, with a row in the error history. Every update is
    fenced by the claim's lease token: a worker that lost its lease changes nothing.
    """
    if not outcomes:
        return set()
    now = utcnow()
    # successes are one fenced update each, in autocommit on PostgreSQL (no BEGIN and COMMIT round trips);
    # a failure's update and its history row commit together
    with transaction(standalone(engine) if all(o.ok for o in outcomes) else engine) as session:
        plain = [o for o in outcomes if o.ok and o.result is None]
        settled = _settle_plain_successes(session, plain, now)
        for outcome in outcomes:
            if not (outcome.ok and outcome.result is None):
                settled |= _settle_one(session, outcome, settings, worker, now)
        _record_health(session, outcomes, settled, now)
    return settled


def _settle_plain_successes(session: Session, outcomes: Sequence[Outcome], now: datetime) -> set[int]:
    """Jobs done with nothing to store: one statement per lease token."""
    by_token: dict[str, list[int]] = {}
    for outcome in outcomes:
        by_token.setdefault(outcome.job.lease_token, []).append(outcome.job.id)
    settled: set[int] = set()
    for token, ids in by_token.items():
        stmt = (
            update(JOBS)
            .where(JOBS.c.lease_token == token, JOBS.c.id.in_(ids), JOBS.c.state == "running")
            .values(state="done", last_error=None, lease_owner=None, lease_token=None, lease_expires_at=None,
                    updated_at=now, finished_at=now)
            .returning(JOBS.c.id)
        )
        settled.update(session.execute(stmt).scalars())
    return settled


def _stored(error: str) -> str:
    """An error text as the jobs table keeps it: masked like the logs (no token, password or secret of
    the config reaches `hub jobs show`), then cut to size."""
    return redact_text(error)[:MAX_ERROR_CHARS]


def _outcome_values(outcome: Outcome, settings: WorkerSettings, now: datetime) -> dict[str, Any]:
    """The job's new state: done with its result, held for an operator (no attempt spent), retrying
    after a backoff (never sooner than the vendor's Retry-After), or dead."""
    job = outcome.job
    if outcome.ok:
        return {"state": "done", "result": outcome.result, "last_error": None}
    if outcome.deferred:  # not a failure: back in the queue as it was, due when the quota allows
        return {"last_error": _stored(outcome.error or "deferred"), "state": "pending",
                "attempts": JOBS.c.attempts - 1, "run_at": now + timedelta(seconds=outcome.retry_after or 1.0)}
    if outcome.hold:
        return {"last_error": _stored(outcome.error or "held"), "state": "failed-retrying",
                "attempts": JOBS.c.attempts - 1,
                "run_at": now + timedelta(seconds=outcome.retry_after or settings.backoff_max)}
    error = _stored(outcome.error or "unknown error")
    if not outcome.retryable or job.attempts >= _effective_max(job, settings):
        return {"last_error": error, "state": "dead"}
    delay = retry_delay(job.attempts, settings.backoff_initial, settings.backoff_max, outcome.retry_after)
    return {"last_error": error, "state": "failed-retrying", "run_at": now + timedelta(seconds=delay)}


def _settle_one(session: Session, outcome: Outcome, settings: WorkerSettings, worker: str, now: datetime
                ) -> set[int]:
    job = outcome.job
    if outcome.ok:  # the common case, one prebuilt statement
        hit = session.execute(_DONE, {"job_id": job.id, "token": job.lease_token, "result_value": outcome.result,
                                      "now": now}).scalar()
        return set() if hit is None else {hit}
    values = _outcome_values(outcome, settings, now)
    values.update(lease_owner=None, lease_token=None, lease_expires_at=None, updated_at=now,
                  finished_at=now if values["state"] in ("done", "dead") else None)
    fence = and_(JOBS.c.id == job.id, JOBS.c.lease_token == job.lease_token, JOBS.c.state == "running")
    hit = session.execute(update(JOBS).where(fence).values(**values).returning(JOBS.c.id)).scalar()
    if hit is None:
        return set()
    if not outcome.ok and not outcome.deferred:
        kind = "held" if outcome.hold else "dead" if values["state"] == "dead" else "retry"
        session.add(JobFailure(job_id=job.id, attempt=job.attempts, outcome=kind, error=values["last_error"],
                               worker=worker, at=now))
    return {hit}


def _record_health(session: Session, outcomes: Sequence[Outcome], settled: set[int], now: datetime) -> None:
    """Each connector's health from its jobs' latest outcome in this batch."""
    health: dict[str, tuple[str, str | None]] = {}
    for outcome in outcomes:
        if outcome.job.connector and outcome.job.id in settled and not outcome.deferred:
            status = "ok" if outcome.ok else "login-needed" if outcome.hold else "failing"
            health[outcome.job.connector] = (status, outcome.error)
    for connector, (status, error) in sorted(health.items()):
        if status == "ok":
            note_ok(session, connector, now)
        else:
            set_health(session, connector, status, error, now)


def release(engine: Engine, jobs: Sequence[ClaimedJob], *, started: bool, reason: str, worker: str) -> int:
    """Give claimed jobs back: unstarted ones without using an attempt (a begun one gets it back),
    started ones as a failed attempt."""
    if not jobs:
        return 0
    now = utcnow()
    count = 0
    with transaction(engine) as session:
        for job in jobs:
            values: dict[str, Any] = {
                "lease_owner": None, "lease_token": None, "lease_expires_at": None,
                "updated_at": now, "run_at": now,
            }
            if started:
                values.update(state="failed-retrying", last_error=reason)
            else:
                values.update(state="pending", attempts=Job.attempts - (1 if job.begun else 0))
            stmt = (
                update(Job)
                .where(Job.id == job.id, Job.lease_token == job.lease_token, Job.state == "running")
                .values(**values)
                .returning(Job.id)
            )
            if session.execute(stmt).scalar() is not None:
                count += 1
                if started:
                    session.add(JobFailure(
                        job_id=job.id, attempt=job.attempts, outcome="released", error=reason,
                        worker=worker, at=now,
                    ))
    return count


def requeue_expired(engine: Engine, settings: WorkerSettings) -> list[int]:
    """Jobs whose worker stopped renewing its lease (it crashed) go back to the queue, or dead
    if that was their last attempt. Safe to run from every process at once."""
    now = utcnow()
    with transaction(engine) as session:
        expired = (
            select(Job.id, Job.attempts, Job.max_attempts, Job.lease_owner)
            .where(Job.state == "running", Job.lease_expires_at < now)
            .order_by(Job.id)
            .limit(1000)
        )
        if engine.dialect.name == "postgresql":
            expired = expired.with_for_update(skip_locked=True)
        rows = session.execute(expired).all()
        requeued = []
        for row in rows:
            last = row.attempts >= (row.max_attempts or settings.max_attempts)
            error = f"lease expired: worker {row.lease_owner} stopped renewing it (crashed or hung)"
            session.execute(
                update(Job)
                .where(Job.id == row.id, Job.state == "running")
                .values(
                    state="dead" if last else "failed-retrying",
                    last_error=error, lease_owner=None, lease_token=None, lease_expires_at=None,
                    run_at=now, updated_at=now, finished_at=now if last else None,
                )
            )
            session.add(JobFailure(
                job_id=row.id, attempt=row.attempts, outcome="dead" if last else "lease-expired",
                error=error, worker=row.lease_owner, at=now,
            ))
            requeued.append(row.id)
    return requeued


# --- operator actions ---------------------------------------------------------

RETRYABLE_BY_OPERATOR = ("dead", "failed-retrying", "cancelled")
CANCELLABLE = ("pending", "failed-retrying", "dead")


def retry(session: Session, job_ids: Iterable[int]) -> list[int]:
    """Put jobs back to pending now, with a fresh set of attempts (history stays)."""
    now = utcnow()
    ids = list(job_ids)
    if not ids:
        return []
    stmt = (
        update(Job)
        .where(Job.id.in_(ids), Job.state.in_(RETRYABLE_BY_OPERATOR))
        .values(state="pending", attempts=0, run_at=now, updated_at=now, finished_at=None)
        .returning(Job.id)
    )
    return sorted(session.execute(stmt).scalars())


def retry_dead(session: Session, kind: str | None = None) -> list[int]:
    query = select(Job.id).where(Job.state == "dead")
    if kind:
        query = query.where(Job.kind == kind)
    return retry(session, session.execute(query).scalars().all())


def cancel(session: Session, job_id: int) -> bool:
    now = utcnow()
    stmt = (
        update(Job)
        .where(Job.id == job_id, Job.state.in_(CANCELLABLE))
        .values(state="cancelled", updated_at=now, finished_at=now)
        .returning(Job.id)
    )
    return session.execute(stmt).scalar() is not None


def depth_by_state(engine: Engine, kinds: Collection[str] | None = None) -> dict[str, int]:
    query = select(Job.state, func.count()).group_by(Job.state)
    if kinds is not None:
        query = query.where(Job.kind.in_(sorted(kinds)))
    with engine.connect().execution_options(sqlite_begin="DEFERRED") as conn:
        return {state: count for state, count in conn.execute(query).all()}


def open_jobs(engine: Engine, kinds: Collection[str] | None = None) -> int:
    counts = depth_by_state(engine, kinds)
    return sum(counts.get(s, 0) for s in OPEN_STATES)


COALESCED = "coalesced:"  # the key prefix of enqueue_coalesced's jobs: routine work, not an effect


def prune_done(engine: Engine, older_than: timedelta, routine_older_than: timedelta | None = None) -> int:
    """Housekeeping: done and cancelled jobs past retention go (their error history with them); dead
    ones stay until an operator acts. Routine runs (periodic jobs, coalesced plans: most of them
    changed nothing) go after ``routine_older_than``; effects on other systems after ``older_than``."""
    now = utcnow()
    finished = Job.state.in_(("done", "cancelled"))
    routine = or_(Job.exclusive.is_not(None), Job.idempotency_key.like(f"{COALESCED}%"))
    removed = 0
    with transaction(engine) as session:
        if routine_older_than is not None:
            removed += session.execute(delete(Job).where(finished, routine, Job.finished_at < now - routine_older_than)
                                       ).rowcount or 0
        removed += session.execute(delete(Job).where(finished, Job.finished_at < now - older_than)).rowcount or 0
    return removed


@credentials.on_login
def release_held(session: Session, connector: str, now: datetime) -> None:
    """A fresh login of ``connector``: the jobs held for it run now, without waiting out their hold."""
    session.execute(update(Job).where(Job.connector == connector, Job.state == "failed-retrying").values(run_at=now))
