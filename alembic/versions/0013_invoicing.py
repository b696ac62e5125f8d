"""invoicing: invoices and their lines, numbering counters, exchange rates, KSeF sessions

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-02 10:45:00
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from alembic import op

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
Ts = sa.DateTime(timezone=True)
Json = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
Money = sa.Numeric(14, 2)
UNSENT = sa.text("state IN ('issued', 'sending', 'sent')")

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "invoice_counters",
        sa.Column("series", sa.String(50), nullable=False),
        sa.Column("period", sa.String(10), nullable=False),
        sa.Column("last_seq", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("series", "period", name=op.f("pk_invoice_counters")),
    )
    op.create_table(
        "invoices",
        sa.Column("id", Id, autoincrement=True, nullable=False),
        sa.Column("origin", sa.String(200), nullable=False),
        sa.Column("kind", sa.String(10), nullable=False),
        sa.Column("series", sa.String(50), nullable=False),
        sa.Column("period", sa.String(10), nullable=True),
        sa.Column("seq", sa.Integer(), nullable=True),
        sa.Column("number", sa.String(256), nullable=True),
        sa.Column("state", sa.String(20), nullable=False),
        sa.Column("problem", sa.Text(), nullable=True),
        sa.Column("order_id", Id, nullable=True),
        sa.Column("corrects_id", Id, nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("business", sa.Boolean(), nullable=False),
        sa.Column("buyer", Json, nullable=False),
        sa.Column("seller", Json, nullable=False),
        sa.Column("issue_date", sa.Date(), nullable=True),
        sa.Column("sale_date", sa.Date(), nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("exchange_rate", sa.Numeric(12, 6), nullable=True),
        sa.Column("exchange_rate_date", sa.Date(), nullable=True),
        sa.Column("exchange_rate_table", sa.String(40), nullable=True),
        sa.Column("basis", sa.String(5), nullable=False),
        sa.Column("net", Money, nullable=False),
        sa.Column("vat", Money, nullable=False),
        sa.Column("gross", Money, nullable=False),
        sa.Column("rates", Json, nullable=False),
        sa.Column("payment", Json, nullable=False),
        sa.Column("split_payment", sa.Boolean(), nullable=False),
        sa.Column("xml", sa.Text(), nullable=True),
        sa.Column("xml_sha256", sa.String(64), nullable=True),
        sa.Column("ksef_session", sa.String(100), nullable=True),
        sa.Column("ksef_reference", sa.String(100), nullable=True),
        sa.Column("ksef_number", sa.String(40), nullable=True),
        sa.Column("ksef_code", sa.Integer(), nullable=True),
        sa.Column("ksef_at", Ts, nullable=True),
        sa.Column("upo", sa.Text(), nullable=True),
        sa.Column("send_calls", sa.Integer(), server_default="0", nullable=False),
        sa.Column("created_at", Ts, nullable=False),
        sa.Column("updated_at", Ts, nullable=False),
        sa.ForeignKeyConstraint(["corrects_id"], ["invoices.id"], name=op.f("fk_invoices_corrects_id_invoices")),
        sa.ForeignKeyConstraint(["order_id"], ["orders.id"], name=op.f("fk_invoices_order_id_orders")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_invoices")),
        sa.UniqueConstraint("number", name=op.f("uq_invoices_number")),
        sa.UniqueConstraint("origin", name=op.f("uq_invoices_origin")),
        sa.UniqueConstraint("series", "period", "seq", name=op.f("uq_invoices_series_period_seq")),
    )
    with op.batch_alter_table("invoices") as batch:
        batch.create_index("ix_invoices_order", ["order_id"])
        batch.create_index("ix_invoices_issue_date", ["issue_date"])
        batch.create_index("ix_invoices_unsent", ["state"], postgresql_where=UNSENT, sqlite_where=UNSENT)
    op.create_table(
        "invoice_lines",
        sa.Column("id", Id, autoincrement=True, nullable=False),
        sa.Column("invoice_id", Id, nullable=False),
        sa.Column("line_no", sa.Integer(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("sku", sa.String(100), nullable=True),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("unit", sa.String(20), nullable=False),
        sa.Column("quantity", sa.Numeric(22, 6), nullable=False),
        sa.Column("rate", sa.String(6), nullable=False),
        sa.Column("unit_net", sa.Numeric(22, 8), nullable=False),
        sa.Column("unit_gross", sa.Numeric(22, 8), nullable=False),
        sa.Column("net", Money, nullable=False),
        sa.Column("vat", Money, nullable=False),
        sa.Column("gross", Money, nullable=False),
        sa.Column("annex15", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(["invoice_id"], ["invoices.id"], name=op.f("fk_invoice_lines_invoice_id_invoices"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_invoice_lines")),
        sa.UniqueConstraint("invoice_id", "line_no", name=op.f("uq_invoice_lines_invoice_id_line_no")),
    )
    op.create_table(
        "exchange_rates",
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("tax_point", sa.Date(), nullable=False),
        sa.Column("effective_date", sa.Date(), nullable=False),
        sa.Column("mid", sa.Numeric(12, 6), nullable=False),
        sa.Column("table_no", sa.String(40), nullable=False),
        sa.Column("source", sa.String(100), nullable=False),
        sa.Column("fetched_at", Ts, nullable=False),
        sa.PrimaryKeyConstraint("currency", "tax_point", name=op.f("pk_exchange_rates")),
    )
    op.create_table(
        "ksef_sessions",
        sa.Column("reference", sa.String(100), nullable=False),
        sa.Column("connector", sa.String(100), nullable=False),
        sa.Column("state", sa.String(20), nullable=False),
        sa.Column("opened_at", Ts, nullable=False),
        sa.Column("closed_at", Ts, nullable=True),
        sa.Column("invoices", sa.Integer(), nullable=False),
        sa.Column("upo", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("reference", name=op.f("pk_ksef_sessions")),
    )


def downgrade() -> None:
    op.drop_table("ksef_sessions")
    op.drop_table("exchange_rates")
    op.drop_table("invoice_lines")
    with op.batch_alter_table("invoices") as batch:
        batch.drop_index("ix_invoices_unsent")
        batch.drop_index("ix_invoices_issue_date")
        batch.drop_index("ix_invoices_order")
    op.drop_table("invoices")
    op.drop_table("invoice_counters")
