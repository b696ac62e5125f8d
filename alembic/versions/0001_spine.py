"""spine: jobs and their failures, schedule runs, connector health, rate buckets

Revision ID: 0001
Revises:
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
Json = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
Ts = sa.DateTime(timezone=True)
RUNNABLE = sa.text("state IN ('pending', 'failed-retrying')")
RUNNING = sa.text("state = 'running'")


def upgrade() -> None:
    op.create_table(
        "jobs",
        sa.Column("id", Id, autoincrement=True, nullable=False),
        sa.Column("kind", sa.String(100), nullable=False),
        sa.Column("payload", Json, nullable=False),
        sa.Column("idempotency_key", sa.String(255), nullable=False),
        sa.Column("connector", sa.String(100), nullable=True),
        sa.Column("state", sa.String(20), nullable=False),
        sa.Column("priority", sa.Integer(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("max_attempts", sa.Integer(), nullable=True),
        sa.Column("run_at", Ts, nullable=False),
        sa.Column("lease_owner", sa.String(200), nullable=True),
        sa.Column("lease_token", sa.String(36), nullable=True),
        sa.Column("lease_expires_at", Ts, nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("result", Json, nullable=True),
        sa.Column("created_at", Ts, nullable=False),
        sa.Column("updated_at", Ts, nullable=False),
        sa.Column("started_at", Ts, nullable=True),
        sa.Column("finished_at", Ts, nullable=True),
        sa.CheckConstraint(
            "state IN ('pending', 'running', 'failed-retrying', 'done', 'dead', 'cancelled')",
            name=op.f("ck_jobs_state"),
        ),
        sa.CheckConstraint("attempts >= 0", name=op.f("ck_jobs_attempts")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_jobs")),
        sa.UniqueConstraint("idempotency_key", name=op.f("uq_jobs_idempotency_key")),
    )
    op.create_index(
        "ix_jobs_due", "jobs", [sa.text("priority DESC"), "run_at", "id"],
        postgresql_where=RUNNABLE, sqlite_where=RUNNABLE,
    )
    op.create_index(
        "ix_jobs_lease", "jobs", ["lease_expires_at"], postgresql_where=RUNNING, sqlite_where=RUNNING
    )
    op.create_index("ix_jobs_state_kind", "jobs", ["state", "kind"])

    op.create_table(
        "job_failures",
        sa.Column("id", Id, autoincrement=True, nullable=False),
        sa.Column("job_id", Id, nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("outcome", sa.String(20), nullable=False),
        sa.Column("error", sa.Text(), nullable=False),
        sa.Column("worker", sa.String(200), nullable=True),
        sa.Column("at", Ts, nullable=False),
        sa.ForeignKeyConstraint(
            ["job_id"], ["jobs.id"], name=op.f("fk_job_failures_job_id_jobs"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_job_failures")),
    )
    op.create_index("ix_job_failures_job_id", "job_failures", ["job_id"])

    op.create_table(
        "schedule_runs",
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("last_fired_at", Ts, nullable=False),
        sa.Column("last_job_id", Id, nullable=True),
        sa.Column("fired_by", sa.String(200), nullable=True),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_schedule_runs")),
    )
    op.create_table(
        "connector_health",
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("status", sa.String(30), nullable=False),
        sa.Column("last_ok_at", Ts, nullable=True),
        sa.Column("last_error_at", Ts, nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("updated_at", Ts, nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_connector_health")),
    )
    op.create_table(
        "rate_buckets",
        sa.Column("key", sa.String(200), nullable=False),
        sa.Column("tokens", sa.Float(), nullable=False),
        sa.Column("updated_at", Ts, nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_rate_buckets")),
    )


def downgrade() -> None:
    op.drop_table("rate_buckets")
    op.drop_table("connector_health")
    op.drop_table("schedule_runs")
    op.drop_index("ix_job_failures_job_id", table_name="job_failures")
    op.drop_table("job_failures")
    op.drop_index("ix_jobs_state_kind", table_name="jobs")
    op.drop_index("ix_jobs_lease", table_name="jobs")
    op.drop_index("ix_jobs_due", table_name="jobs")
    op.drop_table("jobs")
