"""listings.sale_hold_since / sale_hold_units: a sale hold ends as soon as the channel's orders explain it

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-01 19:45:00
"""

from __future__ import annotations

import sqlalchemy as sa

from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("listings") as batch:
        batch.add_column(sa.Column("sale_hold_since", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("sale_hold_units", sa.Integer(), nullable=True))
    op.create_index("ix_order_lines_sku", "order_lines", ["sku"])


def downgrade() -> None:
    op.drop_index("ix_order_lines_sku", table_name="order_lines")
    with op.batch_alter_table("listings") as batch:
        batch.drop_column("sale_hold_units")
        batch.drop_column("sale_hold_since")
