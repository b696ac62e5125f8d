"""ksef_sessions.kind: online or batch (a backlog sent as one archive; its invoices are known by their hash
until KSeF lists them)

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-02 11:30:00
"""

from __future__ import annotations

import sqlalchemy as sa

from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("ksef_sessions") as batch:
        batch.add_column(sa.Column("kind", sa.String(10), nullable=False, server_default="online"))


def downgrade() -> None:
    with op.batch_alter_table("ksef_sessions") as batch:
        batch.drop_column("kind")
