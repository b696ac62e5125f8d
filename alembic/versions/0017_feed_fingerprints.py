"""ERP snapshots compared in the database: each stock row keeps the fingerprint of the feed row it was
last read from (a file feed skips parsing a row whose fingerprint is stored), and each ERP's cursor a
generation that every snapshot bumps (a read whose stored fingerprints went stale meanwhile starts over)
(issue 12)

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-02 16:00:00
"""

from __future__ import annotations

import sqlalchemy as sa

from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("stock_levels") as batch:
        batch.add_column(sa.Column("fingerprint", sa.BigInteger(), nullable=True))
    with op.batch_alter_table("erp_cursors") as batch:
        batch.add_column(sa.Column("generation", sa.Integer(), nullable=False, server_default="0"))


def downgrade() -> None:
    with op.batch_alter_table("erp_cursors") as batch:
        batch.drop_column("generation")
    with op.batch_alter_table("stock_levels") as batch:
        batch.drop_column("fingerprint")
