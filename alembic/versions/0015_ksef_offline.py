"""KSeF's offline mode: invoices.offline, ksef_deadline and corrects_sha256 (a technical correction), and
the KSeF outages the operator records (they move offline invoices' deadlines)

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-02 13:40:00
"""

from __future__ import annotations

import sqlalchemy as sa

from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
Ts = sa.DateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("invoices") as batch:
        batch.add_column(sa.Column("offline", sa.Boolean(), nullable=False, server_default=sa.text("false")))
        batch.add_column(sa.Column("ksef_deadline", sa.Date(), nullable=True))
        batch.add_column(sa.Column("corrects_sha256", sa.String(64), nullable=True))
    op.create_table(
        "ksef_outages",
        sa.Column("id", Id, autoincrement=True, nullable=False),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("started_on", sa.Date(), nullable=False),
        sa.Column("ended_on", sa.Date(), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("created_at", Ts, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ksef_outages")),
        sa.UniqueConstraint("kind", "started_on", name=op.f("uq_ksef_outages_kind_started_on")),
    )


def downgrade() -> None:
    op.drop_table("ksef_outages")
    with op.batch_alter_table("invoices") as batch:
        batch.drop_column("corrects_sha256")
        batch.drop_column("ksef_deadline")
        batch.drop_column("offline")
