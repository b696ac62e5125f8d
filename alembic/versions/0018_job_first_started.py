"""Jobs keep their first attempt's start: a push retried after its process died between the channel's
answer and our commit records the channel's state as known from when the first attempt sent it, not
from the retry (a sale in between is then explained by its order, not held for minutes).

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-02 19:00:00
"""

from __future__ import annotations

import sqlalchemy as sa

from alembic import op

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(sa.Column("first_started_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.drop_column("first_started_at")
