"""jobs.exclusive: at most one open job per value (one run per periodic kind and connector at a time)

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01 16:30:00
"""

from __future__ import annotations

import sqlalchemy as sa

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

OPEN = sa.text("state IN ('pending', 'running', 'failed-retrying')")


def upgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(sa.Column("exclusive", sa.String(length=200), nullable=True))
    op.create_index("ux_jobs_exclusive_open", "jobs", ["exclusive"], unique=True,
                    postgresql_where=OPEN, sqlite_where=OPEN)


def downgrade() -> None:
    op.drop_index("ux_jobs_exclusive_open", table_name="jobs")
    with op.batch_alter_table("jobs") as batch:
        batch.drop_column("exclusive")
