"""shipments.book_calls: how many times the hub has set out to call the carrier to book the shipment,
counted in a committed transaction before each call. Zero before a call means no earlier call can have
reached the carrier, so the connector books without first looking for an earlier booking.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-02 01:00:00
"""

from __future__ import annotations

import sqlalchemy as sa

from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("shipments") as batch:
        # existing rows count as called: their connector looks before it books
        batch.add_column(sa.Column("book_calls", sa.Integer(), nullable=False, server_default="1"))


def downgrade() -> None:
    with op.batch_alter_table("shipments") as batch:
        batch.drop_column("book_calls")
