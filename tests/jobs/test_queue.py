"""The job queue's contract, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import Engine, select, update
from sqlalchemy.exc import IntegrityError

from hub.jobs import queue
from hub.jobs.models import Job, JobFailure
from hub.jobs.queue import NewJob, Outcome
from hub.kernel.clock import utcnow
from hub.platform.config import WorkerSettings
from hub.platform.db import transaction
from hub.platform.schema import ConnectorHealth

SETTINGS = WorkerSettings(max_attempts=3, backoff_initial=10, backoff_max=100)


def add(engine: Engine, key: str, kind: str = "k", **kw: object) -> int:
    with transaction(engine) as s:
        return queue.enqueue(s, kind, {"key": key}, key=key, **kw).id  # type: ignore[arg-type]


def job(engine: Engine, job_id: int) -> Job:
    with transaction(engine) as s:
        found = s.get(Job, job_id)
        assert found is not None
        return found


def test_enqueue_returns_existing_job_for_same_key(engine: Engine) -> None:
    with transaction(engine) as s:
        first = queue.enqueue(s, "k", {"a": 1}, key="same")
    with transaction(engine) as s:
        second = queue.enqueue(s, "k", {"a": 2}, key="same")
    assert first.created and not second.created
    assert first.id == second.id
    assert job(engine, first.id).payload == {"a": 1}


def test_same_key_for_another_kind_is_refused(engine: Engine) -> None:
    add(engine, "key-1", kind="a")
    with pytest.raises(ValueError, match="already belongs to job"), transaction(engine) as s:
        queue.enqueue(s, "b", {}, key="key-1")


def test_unique_key_is_enforced_by_the_database(engine: Engine) -> None:
    add(engine, "dup")
    now = utcnow()
    with pytest.raises(IntegrityError), transaction(engine) as s:
        s.add(Job(kind="k", payload={}, idempotency_key="dup", state="pending", priority=0, attempts=0,
                  run_at=now, created_at=now, updated_at=now))


def test_job_commits_with_the_callers_transaction_or_not_at_all(engine: Engine) -> None:
    class Boom(Exception):
        pass

    with pytest.raises(Boom), transaction(engine) as s:
        queue.enqueue(s, "k", {}, key="rolled-back")
        raise Boom
    with transaction(engine) as s:
        assert s.execute(select(Job).where(Job.idempotency_key == "rolled-back")).first() is None


def test_enqueue_many_skips_existing_keys(engine: Engine) -> None:
    with transaction(engine) as s:
        assert queue.enqueue_many(s, [NewJob("k", {}, f"m{i}") for i in range(1200)]) == 1200
    with transaction(engine) as s:
        assert queue.enqueue_many(s, [NewJob("k", {}, f"m{i}") for i in range(1190, 1210)]) == 10


def test_claim_order_priority_then_age_and_only_due_and_known_kinds(engine: Engine) -> None:
    low = add(engine, "low")
    high = add(engine, "high", priority=10)
    later = add(engine, "later", run_at=utcnow() + timedelta(hours=1))
    other = add(engine, "other", kind="unknown")
    claimed = queue.claim(engine, "w", limit=10, lease=30, kinds={"k"})
    assert [j.id for j in claimed] == [high, low]
    assert [(j.attempts, j.begun) for j in claimed] == [(1, True), (0, False)]  # the first runs at once
    assert queue.claim(engine, "w", limit=10, lease=30, kinds={"k"}) == []
    assert job(engine, later).state == "pending"
    assert job(engine, other).state == "pending"
    assert queue.claim(engine, "w", limit=10, lease=30, kinds=set()) == []


def begun(engine: Engine, claimed: list[queue.ClaimedJob]) -> dict[int, queue.ClaimedJob]:
    started = {j.id: queue.begin(engine, j) for j in claimed}
    assert all(started.values())
    return {jid: j for jid, j in started.items() if j is not None}


def test_success_failure_backoff_and_dead(engine: Engine) -> None:
    ok, flaky, bad = add(engine, "ok"), add(engine, "flaky"), add(engine, "bad")
    claimed = begun(engine, queue.claim(engine, "w", limit=10, lease=30))
    before = utcnow()
    settled = queue.settle(engine, [
        Outcome(claimed[ok], ok=True, result={"done": 1}),
        Outcome(claimed[flaky], ok=False, error="503", retry_after=50),
        Outcome(claimed[bad], ok=False, error="404 no such offer", retryable=False),
    ], SETTINGS, "w")
    assert settled == {ok, flaky, bad}
    assert job(engine, ok).state == "done" and job(engine, ok).result == {"done": 1}
    retrying = job(engine, flaky)
    assert retrying.state == "failed-retrying" and retrying.last_error == "503"
    assert retrying.run_at >= before + timedelta(seconds=50)  # Retry-After honoured
    dead = job(engine, bad)
    assert dead.state == "dead" and dead.finished_at is not None and dead.last_error == "404 no such offer"
    with transaction(engine) as s:
        history = s.execute(select(JobFailure.job_id, JobFailure.outcome).order_by(JobFailure.id)).all()
    assert [tuple(h) for h in history] == [(flaky, "retry"), (bad, "dead")]


def test_attempts_run_out(engine: Engine) -> None:
    jid = add(engine, "x")
    for attempt in range(1, 4):
        with transaction(engine) as s:
            s.execute(update(Job).where(Job.id == jid).values(run_at=utcnow()))
        (claimed,) = queue.claim(engine, "w", limit=1, lease=30)
        assert claimed.attempts == attempt
        queue.settle(engine, [Outcome(claimed, ok=False, error=f"fail {attempt}")], SETTINGS, "w")
    final = job(engine, jid)
    assert final.state == "dead" and final.attempts == 3 and final.last_error == "fail 3"


def test_a_deferred_job_goes_back_pending_without_spending_an_attempt_or_a_failure(engine: Engine) -> None:
    jid = add(engine, "quota", connector="furgonetka")
    (claimed,) = queue.claim(engine, "w", limit=1, lease=30)
    before = utcnow()
    queue.settle(engine, [Outcome(claimed, ok=False, error="quota spent for 40 s", deferred=True, retry_after=40)],
                 SETTINGS, "w")
    deferred = job(engine, jid)
    assert (deferred.state, deferred.attempts, deferred.lease_token) == ("pending", 0, None)
    assert deferred.run_at >= before + timedelta(seconds=40)
    with transaction(engine) as s:
        assert s.execute(select(JobFailure)).first() is None
        assert s.execute(select(ConnectorHealth)).first() is None  # not a failure of the connector


def test_stale_lease_cannot_settle(engine: Engine) -> None:
    jid = add(engine, "x")
    (first,) = queue.claim(engine, "a", limit=1, lease=30)
    with transaction(engine) as s:  # lease expires
        s.execute(update(Job).where(Job.id == jid).values(lease_expires_at=utcnow() - timedelta(seconds=1)))
    assert queue.requeue_expired(engine, SETTINGS) == [jid]
    (second,) = queue.claim(engine, "b", limit=1, lease=30)
    assert second.attempts == 2 and second.lease_token != first.lease_token
    assert queue.settle(engine, [Outcome(first, ok=True)], SETTINGS, "a") == set()
    assert queue.renew(engine, [first], 30) == set()
    assert queue.renew(engine, [second], 30) == {jid}
    assert queue.settle(engine, [Outcome(second, ok=True)], SETTINGS, "b") == {jid}
    with transaction(engine) as s:
        outcomes = s.execute(select(JobFailure.outcome).where(JobFailure.job_id == jid)).scalars().all()
    assert outcomes == ["lease-expired"]


def test_a_job_keeps_its_first_attempts_start_through_its_retries(engine: Engine) -> None:
    """What an attempt that died sent went out no earlier than the first attempt's start: the retries
    see that moment (a push's acknowledgement dates the channel's state from it), in a batch too."""
    jid, other = add(engine, "x"), add(engine, "y")
    (first, waiting) = queue.claim(engine, "a", limit=2, lease=30)
    assert first.first_started_at is not None and waiting.first_started_at is None
    began = job(engine, jid).first_started_at
    assert began == first.first_started_at == job(engine, jid).started_at
    begun = queue.begin(engine, waiting)
    assert begun is not None and begun.first_started_at == job(engine, other).first_started_at is not None
    with transaction(engine) as s:  # the process dies; the lease runs out
        s.execute(update(Job).values(lease_expires_at=utcnow() - timedelta(seconds=1)))
    queue.requeue_expired(engine, SETTINGS)
    with transaction(engine) as s:
        s.execute(update(Job).values(run_at=utcnow()))
    retried = {j.id: j for j in queue.claim(engine, "b", limit=2, lease=30)}
    again = queue.begin(engine, retried[other])
    assert retried[jid].attempts == 2 and retried[jid].first_started_at == began
    assert again is not None and again.attempts == 2 and again.first_started_at == begun.first_started_at
    assert job(engine, jid).started_at > began  # the latest attempt's start moves on; the first stays


def test_expired_lease_on_last_attempt_goes_dead(engine: Engine) -> None:
    jid = add(engine, "x", max_attempts=1)
    queue.claim(engine, "a", limit=1, lease=30)
    with transaction(engine) as s:
        s.execute(update(Job).where(Job.id == jid).values(lease_expires_at=utcnow() - timedelta(seconds=1)))
    queue.requeue_expired(engine, SETTINGS)
    assert job(engine, jid).state == "dead"


def test_a_job_waiting_in_its_batch_spends_no_attempt_when_its_worker_dies(engine: Engine) -> None:
    """A batch's jobs run one after another: when the process dies during the first (a slow booking),
    the ones still waiting behind it did not run, so crashes must not use up their attempts."""
    ids = [add(engine, f"b{i}", max_attempts=2) for i in range(3)]
    firsts = []
    for _ in range(3):  # three crashes, each during its batch's first job
        first, *waiting = queue.claim(engine, "w", limit=3, lease=30)
        firsts.append(first.id)
        assert first.begun and not any(j.begun for j in waiting)
        with transaction(engine) as s:
            expired = utcnow() - timedelta(seconds=1)
            s.execute(update(Job).where(Job.state == "running").values(lease_expires_at=expired))
        queue.requeue_expired(engine, SETTINGS)
    assert firsts == [ids[0], ids[0], ids[1]]
    assert [(job(engine, i).state, job(engine, i).attempts) for i in ids] == [
        ("dead", 2), ("failed-retrying", 1), ("failed-retrying", 0)]


def test_begin_counts_the_attempt_and_is_fenced_by_the_lease(engine: Engine) -> None:
    a, b = add(engine, "a"), add(engine, "b")
    first, second = queue.claim(engine, "w", limit=2, lease=30)
    assert queue.begin(engine, first) is first  # counted by the claim already
    started = queue.begin(engine, second)
    assert started is not None and started.begun and started.attempts == 1 == job(engine, b).attempts
    assert queue.release(engine, [started], started=False, reason="stopping", worker="w") == 1
    assert (job(engine, b).state, job(engine, b).attempts) == ("pending", 0)
    assert queue.begin(engine, second) is None  # released: the lease is gone
    assert job(engine, a).attempts == 1


def test_release_unstarted_does_not_use_an_attempt(engine: Engine) -> None:
    a, b = add(engine, "a"), add(engine, "b")
    claimed = queue.claim(engine, "w", limit=2, lease=30)
    by_id = {j.id: j for j in claimed}
    assert by_id[a].begun and not by_id[b].begun
    by_id[b] = queue.begin(engine, by_id[b]) or by_id[b]
    assert queue.release(engine, [by_id[a]], started=False, reason="stopping", worker="w") == 1
    assert queue.release(engine, [by_id[b]], started=True, reason="timeout", worker="w") == 1
    assert (job(engine, a).state, job(engine, a).attempts) == ("pending", 0)
    assert (job(engine, b).state, job(engine, b).attempts) == ("failed-retrying", 1)


def test_operator_retry_and_cancel(engine: Engine) -> None:
    dead = add(engine, "dead", max_attempts=1)
    pending = add(engine, "pending")
    (claimed,) = queue.claim(engine, "w", limit=1, lease=30, kinds=None)
    queue.settle(engine, [Outcome(claimed, ok=False, error="x", retryable=False)], SETTINGS, "w")
    with transaction(engine) as s:
        assert queue.retry_dead(s) == [dead]
        assert queue.retry(s, [pending]) == []  # pending is not retryable by hand
        assert queue.cancel(s, pending)
        assert not queue.cancel(s, pending)  # already cancelled
    assert (job(engine, dead).state, job(engine, dead).attempts) == ("pending", 0)
    assert job(engine, pending).state == "cancelled"


def test_depth_and_prune(engine: Engine) -> None:
    ids = [add(engine, f"p{i}") for i in range(3)]
    claimed = queue.claim(engine, "w", limit=2, lease=30)
    queue.settle(engine, [Outcome(c, ok=True) for c in claimed], SETTINGS, "w")
    assert queue.depth_by_state(engine) == {"done": 2, "pending": 1}
    assert queue.open_jobs(engine) == 1
    with transaction(engine) as s:
        s.execute(update(Job).where(Job.id.in_(ids)).values(finished_at=utcnow() - timedelta(days=30)))
    assert queue.prune_done(engine, timedelta(days=14)) == 2


def test_connector_health_follows_outcomes(engine: Engine) -> None:
    from hub.platform.schema import ConnectorHealth

    a, b = add(engine, "a", connector="shop"), add(engine, "b", connector="shop")
    claimed = {j.id: j for j in queue.claim(engine, "w", limit=2, lease=30)}
    queue.settle(engine, [Outcome(claimed[a], ok=False, error="timeout")], SETTINGS, "w")
    with transaction(engine) as s:
        health = s.get(ConnectorHealth, "shop")
        assert health is not None and (health.status, health.last_error) == ("failing", "timeout")
    queue.settle(engine, [Outcome(claimed[b], ok=True)], SETTINGS, "w")
    with transaction(engine) as s:
        health = s.get(ConnectorHealth, "shop")
        assert health is not None and health.status == "ok" and health.last_ok_at is not None


def test_coalesced_jobs_join_only_a_pending_one(engine: Engine) -> None:
    with transaction(engine) as s:
        first = queue.enqueue_coalesced(s, "plan", {}, group="plan:x")
        again = queue.enqueue_coalesced(s, "plan", {}, group="plan:x")
        other = queue.enqueue_coalesced(s, "plan", {}, group="plan:y")
    assert first.created and not again.created and again.id == first.id
    assert other.id != first.id
    queue.claim(engine, "w", limit=10, lease=30, kinds={"plan"})  # both start running
    with transaction(engine) as s:
        after = queue.enqueue_coalesced(s, "plan", {}, group="plan:x")
    assert after.created and after.id not in (first.id, other.id)  # a running job may have read already


def test_error_texts_are_stored_masked_like_the_logs(engine: Engine) -> None:
    """No token, password or credential in a URL reaches the jobs table (and so `hub jobs show`)."""
    held, dead = add(engine, "held"), add(engine, "dead")
    claimed = {j.id: j for j in queue.claim(engine, "w", limit=10, lease=30)}
    queue.settle(engine, [
        Outcome(claimed[held], ok=False, hold=True, error="refresh refused for Authorization: Bearer abcdEFGH1234xyz"),
        Outcome(claimed[dead], ok=False, retryable=False,
                error="POST https://ck_user:cs_secret_9f8e7d@shop.example.pl/wp-json/wc/v3?consumer_secret=s3cr3tvalue"
                      " failed"),
    ], SETTINGS, "w")
    with transaction(engine) as s:
        stored = [j.last_error for j in s.execute(select(Job).order_by(Job.id)).scalars()]
        stored += [f.error for f in s.execute(select(JobFailure).order_by(JobFailure.id)).scalars()]
    for text in stored:
        assert "abcdEFGH1234xyz" not in text and "cs_secret_9f8e7d" not in text and "s3cr3tvalue" not in text, text
    assert stored[1].startswith("POST https://") and "shop.example.pl/wp-json/wc/v3" in stored[1]


def test_renewal_skips_a_row_a_settle_holds_and_still_counts_it_ours(engine: Engine) -> None:
    """A settle locks its jobs' rows in its own order; a renewal that waited for them deadlocked with it
    on PostgreSQL (soak). The renewal skips a locked row (no wait), extends the others, and reports
    both as ours, so the heartbeat never calls a job being finished lost."""
    import threading

    from sqlalchemy import text

    a, b = add(engine, "a"), add(engine, "b")
    first, second = queue.claim(engine, "w", limit=2, lease=30)
    before = {j: job(engine, j).lease_expires_at for j in (a, b)}
    if engine.dialect.name == "postgresql":
        holding, release = threading.Event(), threading.Event()

        def settle_in_progress() -> None:
            with engine.begin() as conn:
                conn.execute(text("SELECT id FROM jobs WHERE id = :id FOR UPDATE"), {"id": a})
                holding.set()
                release.wait(10)

        holder = threading.Thread(target=settle_in_progress)
        holder.start()
        assert holding.wait(10)
        try:  # had it waited, the lock would go at the holder's 10 s timeout and the row be renewed
            kept = queue.renew(engine, [first, second], lease=300)
        finally:
            release.set()
            holder.join()
        assert kept == {a, b}
        assert job(engine, a).lease_expires_at == before[a]  # the locked row was left alone
        assert job(engine, b).lease_expires_at > before[b]
    else:  # SQLite serializes transactions: nothing can hold a row, both are renewed
        assert queue.renew(engine, [first, second], lease=300) == {a, b}
        assert all(job(engine, j).lease_expires_at > before[j] for j in (a, b))
