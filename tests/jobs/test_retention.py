"""What the hub keeps and for how long: effects on other systems 14 days, routine runs (periodic polls,
coalesced plans) a day, dead jobs until an operator acts, the price audit 180 days."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from types import SimpleNamespace

from sqlalchemy import Engine, select, update

import hub.listings.service  # noqa: F401  (registers the listings' pruner, as the daemon's wiring does)
from hub.jobs import queue
from hub.jobs.daemon import prune_jobs
from hub.jobs.models import Job, JobFailure
from hub.kernel.clock import utcnow
from hub.listings.models import PriceHistory
from hub.platform.db import transaction


def test_routine_runs_go_after_a_day_effects_after_two_weeks(engine: Engine) -> None:
    now = utcnow()
    ages = {  # key: (state, days since it finished, exclusive)
        "schedule:erp:1": ("done", 2, "erp.poll:erp"),
        "schedule:erp:2": ("done", 0.5, "erp.poll:other"),
        "push:1": ("done", 2, None),
        "push:2": ("done", 20, None),
        "refund:1": ("dead", 30, None),
        "cancelled:1": ("cancelled", 15, None),
    }
    with transaction(engine) as s:
        for key, (_, _, exclusive) in ages.items():
            queue.enqueue(s, "k", {}, key=key, exclusive=exclusive)
        coalesced = queue.enqueue_coalesced(s, "sync.plan", {}, group="plan").id
        s.add(JobFailure(job_id=queue.enqueue(s, "k", {}, key="push:1").id, attempt=1, outcome="retry",
                         error="timeout", at=now))
        for key, (state, days, _) in ages.items():
            s.execute(update(Job).where(Job.idempotency_key == key).values(
                state=state, finished_at=now - timedelta(days=days)))
        s.execute(update(Job).where(Job.id == coalesced).values(state="done", finished_at=now - timedelta(days=2)))
        for days in (200, 10):
            s.add(PriceHistory(channel="shop", sku="A", external_id="1", old_price=None, new_price=Decimal("9.99"),
                               job_id=None, at=now - timedelta(days=days)))
    result = prune_jobs(SimpleNamespace(engine=engine, payload={}))  # type: ignore[arg-type]
    assert result == {"removed": 4, "price_history_removed": 1}
    with transaction(engine) as s:
        assert sorted(s.execute(select(Job.idempotency_key)).scalars()) == ["push:1", "refund:1", "schedule:erp:2"]
        assert s.execute(select(JobFailure.error)).scalars().all() == ["timeout"]
        assert [p.at > now - timedelta(days=11) for p in s.execute(select(PriceHistory)).scalars()] == [True]
