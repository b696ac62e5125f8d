"""What ``hub status`` and ``hub jobs`` show, as plain data (the CLI renders tables or JSON)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, func, or_, select
from sqlalchemy.orm import Session

from hub.catalog.models import ErpReject
from hub.invoicing.issue import local_day
from hub.invoicing.models import NOT_YET_IN_KSEF, Invoice
from hub.jobs.models import JOB_STATES, Job, JobFailure, ScheduleRun
from hub.jobs.queue import depth_by_state
from hub.kernel.clock import utcnow
from hub.kernel.errors import NotFoundError
from hub.orders.models import Order
from hub.platform.config import LoadedConfig
from hub.platform.schema import ConnectorHealth
from hub.shipping.models import Pickup, Shipment


def _iso(value: Any) -> Any:
    return value.isoformat() if value is not None else None


def job_summary(job: Job) -> dict[str, Any]:
    return {
        "id": job.id,
        "kind": job.kind,
        "state": job.state,
        "attempts": job.attempts,
        "connector": job.connector,
        "priority": job.priority,
        "run_at": _iso(job.run_at),
        "updated_at": _iso(job.updated_at),
        "last_error": job.last_error,
    }


def job_detail(session: Session, job_id: int) -> dict[str, Any]:
    job = session.get(Job, job_id)
    if job is None:
        raise NotFoundError(f"no job with id {job_id}")
    failures = session.execute(
        select(JobFailure).where(JobFailure.job_id == job_id).order_by(JobFailure.id)
    ).scalars()
    return {
        **job_summary(job),
        "idempotency_key": job.idempotency_key,
        "payload": job.payload,
        "max_attempts": job.max_attempts,
        "lease_owner": job.lease_owner,
        "lease_expires_at": _iso(job.lease_expires_at),
        "result": job.result,
        "created_at": _iso(job.created_at),
        "started_at": _iso(job.started_at),
        "finished_at": _iso(job.finished_at),
        "errors": [
            {"attempt": f.attempt, "outcome": f.outcome, "at": _iso(f.at), "worker": f.worker, "error": f.error}
            for f in failures
        ],
    }


def list_jobs(
    session: Session, *, state: str | None = None, kind: str | None = None, limit: int = 50
) -> list[dict[str, Any]]:
    query = select(Job).order_by(Job.id.desc()).limit(limit)
    if state:
        query = query.where(Job.state == state)
    if kind:
        query = query.where(Job.kind == kind)
    return [job_summary(j) for j in session.execute(query).scalars()]


def _periodic_outcomes(session: Session, names: list[str]) -> dict[str, tuple[Any, Any, str | None]]:
    """Per schedule: when one of its jobs last succeeded, when one last failed, and that failure's error.
    A periodic job's key starts with ``schedule:NAME:`` (hub.jobs.scheduler)."""
    out: dict[str, tuple[Any, Any, str | None]] = {}
    for name in names:
        mine = Job.idempotency_key.like(f"schedule:{name}:%")
        success = session.execute(select(func.max(Job.finished_at)).where(mine, Job.state == "done")).scalar()
        failure = session.execute(
            select(JobFailure.at, JobFailure.error).join(Job, Job.id == JobFailure.job_id).where(mine)
            .order_by(JobFailure.at.desc(), JobFailure.id.desc()).limit(1)).first()
        out[name] = (success, failure.at if failure else None, failure.error if failure else None)
    return out


def status(engine: Engine, session: Session, loaded: LoadedConfig, dead_limit: int = 20) -> dict[str, Any]:
    counts = depth_by_state(engine)
    dead = session.execute(
        select(Job).where(Job.state == "dead").order_by(Job.updated_at.desc()).limit(dead_limit)
    ).scalars()
    runs = {r.name: r for r in session.execute(select(ScheduleRun)).scalars()}
    outcomes = _periodic_outcomes(session, list(loaded.settings.schedule))
    schedule = []
    for name, entry in sorted(loaded.settings.schedule.items()):
        run = runs.get(name)
        last_job = session.get(Job, run.last_job_id) if run and run.last_job_id else None
        schedule.append({
            "name": name,
            "job": entry.job,
            "every_seconds": entry.every,
            "enabled": entry.enabled,
            "last_fired_at": _iso(run.last_fired_at) if run else None,
            "last_job_id": run.last_job_id if run else None,
            "last_job_state": last_job.state if last_job else None,
            "fired_by": run.fired_by if run else None,
            "last_success_at": _iso(outcomes[name][0]),
            "last_failure_at": _iso(outcomes[name][1]),
            "last_failure": outcomes[name][2],
        })
    health = {h.name: h for h in session.execute(select(ConnectorHealth)).scalars()}
    connectors = []
    for name in sorted(set(loaded.settings.connectors) | set(health)):
        conf = loaded.settings.connectors.get(name)
        h = health.get(name)
        if conf is not None and not conf.enabled:
            state = "disabled"
        elif h is None:
            state = "no activity yet"
        else:
            state = h.status
        connectors.append({
            "name": name,
            "kind": conf.kind if conf else None,
            "health": state,
            "last_ok_at": _iso(h.last_ok_at) if h else None,
            "last_error_at": _iso(h.last_error_at) if h else None,
            "last_error": h.last_error if h else None,
        })
    problems = session.execute(select(func.count()).select_from(Order).where(
        or_(Order.problem.is_not(None), Order.oversold.is_(True)))).scalar_one()
    oversold = session.execute(select(func.count()).select_from(Order).where(Order.oversold.is_(True))).scalar_one()
    quarantine = [{"erp": erp, "records": count, "since": _iso(since)} for erp, count, since in session.execute(
        select(ErpReject.erp, func.count(), func.min(ErpReject.first_seen)).group_by(ErpReject.erp)
        .order_by(ErpReject.erp)).all()]
    shipment_problems = [
        {"id": s.id, "order_id": s.order_id, "carrier": s.carrier, "state": s.state, "problem": s.problem}
        for s in session.execute(select(Shipment).where(Shipment.problem.is_not(None))
                                 .order_by(Shipment.updated_at.desc()).limit(dead_limit)).scalars()]
    shipment_problem_count = session.execute(select(func.count()).select_from(Shipment).where(
        Shipment.problem.is_not(None))).scalar_one()
    failed_pickups = session.execute(select(func.count()).select_from(Pickup).where(
        Pickup.state == "failed")).scalar_one()
    troubled = Invoice.state.in_(("problem", "rejected"))
    invoice_problems = [
        {"id": i.id, "number": i.number, "order_id": i.order_id, "state": i.state, "problem": i.problem}
        for i in session.execute(select(Invoice).where(troubled).order_by(Invoice.updated_at.desc())
                                 .limit(dead_limit)).scalars()]
    invoice_counts = dict(session.execute(select(Invoice.state, func.count()).where(
        Invoice.state.in_(("problem", "rejected", "issued", "sending", "sent"))).group_by(Invoice.state)).all())
    # offline invoices not yet in KSeF, by the day they must be there (None: an outage still going on)
    today = local_day(utcnow(), loaded.settings.invoicing)
    offline_due = [{"deadline": None if day is None else day.isoformat(), "invoices": count,
                    "overdue": day is not None and day < today}
                   for day, count in session.execute(select(Invoice.ksef_deadline, func.count()).where(
                       Invoice.offline.is_(True), Invoice.state.in_(NOT_YET_IN_KSEF))
                       .group_by(Invoice.ksef_deadline).order_by(Invoice.ksef_deadline))]
    return {
        "orders": {"problems": problems, "oversold": oversold},
        "shipments": {"problems": shipment_problem_count, "failed_pickups": failed_pickups,
                      "with_problems": shipment_problems},
        "invoices": {"problems": invoice_counts.get("problem", 0), "rejected": invoice_counts.get("rejected", 0),
                     "waiting_for_ksef": sum(invoice_counts.get(k, 0) for k in ("issued", "sending", "sent")),
                     "with_problems": invoice_problems, "offline_waiting": offline_due},
        "erp_quarantine": quarantine,
        "queue": {s: counts.get(s, 0) for s in JOB_STATES},
        "dead_jobs": [job_summary(j) for j in dead],
        "schedule": schedule,
        "connectors": connectors,
    }
