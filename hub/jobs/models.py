"""The job queue's tables: jobs, their failed attempts, and the periodic slots already fired."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from hub.platform.schema import Base, Id, Json, UTCDateTime

JOB_STATES = ("pending", "running", "failed-retrying", "done", "dead", "cancelled")


RUNNABLE_STATES = ("pending", "failed-retrying")


OPEN_STATES = ("pending", "running", "failed-retrying")


class Job(Base):
    """One effect on another system (or one unit of internal work), written in the
    same transaction as the state change that caused it."""

    __tablename__ = "jobs"

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(100))
    payload: Mapped[dict[str, Any]] = mapped_column(Json)
    idempotency_key: Mapped[str] = mapped_column(String(255), unique=True)
    connector: Mapped[str | None] = mapped_column(String(100))
    state: Mapped[str] = mapped_column(String(20), default="pending")
    priority: Mapped[int] = mapped_column(Integer, default=0)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    # NULL: the worker's configured max_attempts applies
    max_attempts: Mapped[int | None] = mapped_column(Integer)
    run_at: Mapped[datetime] = mapped_column(UTCDateTime)
    lease_owner: Mapped[str | None] = mapped_column(String(200))
    lease_token: Mapped[str | None] = mapped_column(String(36))
    lease_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_error: Mapped[str | None] = mapped_column(Text)
    result: Mapped[dict[str, Any] | None] = mapped_column(Json)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # the latest attempt's start
    # the first attempt's start: what any attempt sent went out no earlier (a push's known_at on a retry)
    first_started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # at most one open (pending, running or retrying) job per value: a periodic kind on one connector
    # runs once at a time, and a slot whose previous run is still open is skipped, not queued
    exclusive: Mapped[str | None] = mapped_column(String(200))

    __table_args__ = (
        CheckConstraint(
            "state IN ('pending', 'running', 'failed-retrying', 'done', 'dead', 'cancelled')",
            name="state",
        ),
        CheckConstraint("attempts >= 0", name="attempts"),
        # The claim query's index: only runnable rows, in claim order.
        Index(
            "ix_jobs_due",
            text("priority DESC"),
            "run_at",
            "id",
            postgresql_where=text("state IN ('pending', 'failed-retrying')"),
            sqlite_where=text("state IN ('pending', 'failed-retrying')"),
        ),
        Index(
            "ix_jobs_lease",
            "lease_expires_at",
            postgresql_where=text("state = 'running'"),
            sqlite_where=text("state = 'running'"),
        ),
        Index("ix_jobs_state_kind", "state", "kind"),
        Index(
            "ux_jobs_exclusive_open",
            "exclusive",
            unique=True,
            postgresql_where=text("state IN ('pending', 'running', 'failed-retrying')"),
            sqlite_where=text("state IN ('pending', 'running', 'failed-retrying')"),
        ),
    )


class JobFailure(Base):
    """Error history: one row per failed attempt (successes are on the job itself)."""

    __tablename__ = "job_failures"

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    job_id: Mapped[int] = mapped_column(Id, ForeignKey("jobs.id", ondelete="CASCADE"), index=True)
    attempt: Mapped[int] = mapped_column(Integer)
    outcome: Mapped[str] = mapped_column(String(20))  # retry | dead | lease-expired
    error: Mapped[str] = mapped_column(Text)
    worker: Mapped[str | None] = mapped_column(String(200))
    at: Mapped[datetime] = mapped_column(UTCDateTime)


class ScheduleRun(Base):
    """Last time each periodic job from the config was enqueued, and which job that was."""

    __tablename__ = "schedule_runs"

    name: Mapped[str] = mapped_column(String(100), primary_key=True)
    last_fired_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_job_id: Mapped[int | None] = mapped_column(Id)
    fired_by: Mapped[str | None] = mapped_column(String(200))
