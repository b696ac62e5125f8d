"""orders: orders and lines, status history, rule runs, channel cursors, returns

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23 23:47:38.462801
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from alembic import op

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
Ts = sa.DateTime(timezone=True)
Json = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "channel_cursors",
        sa.Column("channel", sa.String(length=100), nullable=False),
        sa.Column("stream", sa.String(length=30), nullable=False),
        sa.Column("cursor", sa.Text(), nullable=True),
        sa.Column("updated_at", Ts, nullable=False),
        sa.PrimaryKeyConstraint("channel", "stream", name=op.f("pk_channel_cursors")),
    )
    op.create_table(
        "orders",
        sa.Column("id", Id, autoincrement=True, nullable=False),
        sa.Column("channel", sa.String(length=100), nullable=False),
        sa.Column("external_id", sa.String(length=100), nullable=False),
        sa.Column("revision", sa.String(length=100), nullable=True),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("channel_status", sa.String(length=50), nullable=True),
        sa.Column("problem", sa.Text(), nullable=True),
        sa.Column("problem_kind", sa.String(length=30), nullable=True),
        sa.Column("oversold", sa.Boolean(), nullable=False),
        sa.Column("buyer_email", sa.String(length=320), nullable=True),
        sa.Column("buyer_login", sa.String(length=200), nullable=True),
        sa.Column("delivery_method", sa.String(length=200), nullable=True),
        sa.Column("delivery", Json, nullable=True),
        sa.Column("payment", Json, nullable=False),
        sa.Column("invoice", Json, nullable=True),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("total_gross", sa.Numeric(precision=14, scale=2), nullable=False),
        sa.Column("tags", Json, nullable=False),
        sa.Column("erp_ref", sa.String(length=200), nullable=True),
        sa.Column("erp_booked_at", Ts, nullable=True),
        sa.Column("placed_at", Ts, nullable=False),
        sa.Column("channel_updated_at", Ts, nullable=False),
        sa.Column("created_at", Ts, nullable=False),
        sa.Column("updated_at", Ts, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_orders")),
        sa.UniqueConstraint("channel", "external_id", name=op.f("uq_orders_channel_external_id")),
    )
    with op.batch_alter_table("orders") as batch_op:
        batch_op.create_index(
            "ix_orders_problem",
            ["channel"],
            unique=False,
            postgresql_where=sa.text("problem IS NOT NULL OR oversold"),
            sqlite_where=sa.text("problem IS NOT NULL OR oversold"),
        )
        batch_op.create_index("ix_orders_status", ["status"], unique=False)

    op.create_table(
        "order_history",
        sa.Column("id", Id, autoincrement=True, nullable=False),
        sa.Column("order_id", Id, nullable=False),
        sa.Column("from_status", sa.String(length=20), nullable=True),
        sa.Column("to_status", sa.String(length=20), nullable=False),
        sa.Column("source", sa.String(length=30), nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("at", Ts, nullable=False),
        sa.ForeignKeyConstraint(
            ["order_id"], ["orders.id"], name=op.f("fk_order_history_order_id_orders"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_order_history")),
    )
    with op.batch_alter_table("order_history") as batch_op:
        batch_op.create_index(batch_op.f("ix_order_history_order_id"), ["order_id"], unique=False)

    op.create_table(
        "order_lines",
        sa.Column("id", Id, autoincrement=True, nullable=False),
        sa.Column("order_id", Id, nullable=False),
        sa.Column("line_no", sa.Integer(), nullable=False),
        sa.Column("line_id", sa.String(length=100), nullable=True),
        sa.Column("sku", sa.String(length=100), nullable=True),
        sa.Column("signature", sa.String(length=100), nullable=True),
        sa.Column("offer_id", sa.String(length=100), nullable=True),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("quantity", sa.Integer(), nullable=False),
        sa.Column("unit_price_gross", sa.Numeric(precision=14, scale=2), nullable=False),
        sa.Column("vat_rate", sa.String(length=3), nullable=True),
        sa.ForeignKeyConstraint(
            ["order_id"], ["orders.id"], name=op.f("fk_order_lines_order_id_orders"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_order_lines")),
        sa.UniqueConstraint("order_id", "line_no", name=op.f("uq_order_lines_order_id_line_no")),
    )
    op.create_table(
        "returns",
        sa.Column("id", Id, autoincrement=True, nullable=False),
        sa.Column("channel", sa.String(length=100), nullable=False),
        sa.Column("external_id", sa.String(length=100), nullable=False),
        sa.Column("order_id", Id, nullable=True),
        sa.Column("order_external_id", sa.String(length=100), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("channel_status", sa.String(length=50), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("lines", Json, nullable=False),
        sa.Column("refund_amount", sa.Numeric(precision=14, scale=2), nullable=True),
        sa.Column("refund_ref", sa.String(length=200), nullable=True),
        sa.Column("restock_ref", sa.String(length=200), nullable=True),
        sa.Column("rejection_reason", sa.Text(), nullable=True),
        sa.Column("created_at", Ts, nullable=False),
        sa.Column("updated_at", Ts, nullable=False),
        sa.ForeignKeyConstraint(["order_id"], ["orders.id"], name=op.f("fk_returns_order_id_orders")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_returns")),
        sa.UniqueConstraint("channel", "external_id", name=op.f("uq_returns_channel_external_id")),
    )
    op.create_table(
        "rule_runs",
        sa.Column("id", Id, autoincrement=True, nullable=False),
        sa.Column("order_id", Id, nullable=False),
        sa.Column("rule", sa.String(length=200), nullable=False),
        sa.Column("event", sa.String(length=50), nullable=False),
        sa.Column("outcome", sa.String(length=20), nullable=False),
        sa.Column("detail", sa.Text(), nullable=True),
        sa.Column("at", Ts, nullable=False),
        sa.ForeignKeyConstraint(
            ["order_id"], ["orders.id"], name=op.f("fk_rule_runs_order_id_orders"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_rule_runs")),
    )
    with op.batch_alter_table("rule_runs") as batch_op:
        batch_op.create_index(batch_op.f("ix_rule_runs_order_id"), ["order_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("rule_runs") as batch_op:
        batch_op.drop_index(batch_op.f("ix_rule_runs_order_id"))

    op.drop_table("rule_runs")
    op.drop_table("returns")
    op.drop_table("order_lines")
    with op.batch_alter_table("order_history") as batch_op:
        batch_op.drop_index(batch_op.f("ix_order_history_order_id"))

    op.drop_table("order_history")
    with op.batch_alter_table("orders") as batch_op:
        batch_op.drop_index("ix_orders_status")
        batch_op.drop_index(
            "ix_orders_problem",
            postgresql_where=sa.text("problem IS NOT NULL OR oversold"),
            sqlite_where=sa.text("problem IS NOT NULL OR oversold"),
        )

    op.drop_table("orders")
    op.drop_table("channel_cursors")
