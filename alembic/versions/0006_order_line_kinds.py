"""order_lines.kind: goods, or a charge (shipping, fee) that reserves nothing and needs no SKU

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01 17:20:00
"""

from __future__ import annotations

import sqlalchemy as sa

from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("order_lines") as batch:
        batch.add_column(sa.Column("kind", sa.String(length=20), server_default="goods", nullable=False))


def downgrade() -> None:
    with op.batch_alter_table("order_lines") as batch:
        batch.drop_column("kind")
