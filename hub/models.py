"""The spine's tables. Uniqueness and idempotency live here, as database constraints."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    CheckConstraint,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

from hub.clock import as_utc

NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator[datetime]):
    """Stores UTC, always returns timezone-aware UTC (SQLite would return naive values)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: the hub stores timezone-aware UTC only")
        return as_utc(value)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        return as_utc(value)


Id = BigInteger().with_variant(Integer, "sqlite")
Json = JSON().with_variant(JSONB(), "postgresql")


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


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
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

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


class ConnectorHealth(Base):
    """What the hub last saw of each configured connector, for ``hub status``."""

    __tablename__ = "connector_health"

    name: Mapped[str] = mapped_column(String(100), primary_key=True)
    status: Mapped[str] = mapped_column(String(30))  # ok | failing | login-needed | disabled
    last_ok_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_error_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_error: Mapped[str | None] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class RateBucket(Base):
    """Token bucket shared by every process on one database (used on PostgreSQL).

    ``tokens`` may go negative: that is debt, the time callers already reserved.
    """

    __tablename__ = "rate_buckets"

    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    tokens: Mapped[float] = mapped_column(Float)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
