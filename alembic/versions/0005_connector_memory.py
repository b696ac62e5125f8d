"""connector_memory: what a connector learnt from its vendor (Allegro offers' EANs), kept across restarts

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01 17:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from alembic import op

Ts = sa.DateTime(timezone=True)
Json = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "connector_memory",
        sa.Column("connector", sa.String(length=100), nullable=False),
        sa.Column("topic", sa.String(length=50), nullable=False),
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("value", Json, nullable=True),
        sa.Column("learnt_at", Ts, nullable=False),
        sa.PrimaryKeyConstraint("connector", "topic", "key", name=op.f("pk_connector_memory")),
    )


def downgrade() -> None:
    op.drop_table("connector_memory")
