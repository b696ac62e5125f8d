"""listings.known_at: the last moment the hub knew what the channel showed (a push's start, a read's start)

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-01 20:50:00
"""

from __future__ import annotations

import sqlalchemy as sa

from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("listings") as batch:
        batch.add_column(sa.Column("known_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("listings") as batch:
        batch.drop_column("known_at")
