"""listings.sale_hold_until: a channel quantity under what the hub sent is a sale until its order is in

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01 17:45:00
"""

from __future__ import annotations

import sqlalchemy as sa

from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("listings") as batch:
        batch.add_column(sa.Column("sale_hold_until", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("listings") as batch:
        batch.drop_column("sale_hold_until")
