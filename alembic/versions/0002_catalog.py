"""catalog: products, stock, ERP cursors and rejects, reservations, listings, pricing audit, tokens

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23 23:08:23.436827
"""

from __future__ import annotations

import sqlalchemy as sa

from alembic import op

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
Ts = sa.DateTime(timezone=True)
# the diff's predicate (hub.listings.plan.DIFFERS): the index holds only listings that differ
LISTING_DIFFERS = sa.text(
    "(desired_quantity IS NOT NULL AND (ack_quantity IS NULL OR desired_quantity <> ack_quantity))"
    " OR (desired_price IS NOT NULL AND (ack_price IS NULL OR desired_price <> ack_price))"
)


revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "hub_state",
        sa.Column("key", sa.String(length=100), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.Column("updated_at", Ts, nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_hub_state")),
    )
    op.create_table(
        "competitor_prices",
        sa.Column("channel", sa.String(length=100), nullable=False),
        sa.Column("sku", sa.String(length=100), nullable=False),
        sa.Column("price", sa.Numeric(precision=14, scale=2), nullable=False),
        sa.Column("seen_at", Ts, nullable=False),
        sa.PrimaryKeyConstraint("channel", "sku", name=op.f("pk_competitor_prices")),
    )
    op.create_table(
        "connector_tokens",
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("access_token", sa.Text(), nullable=False),
        sa.Column("refresh_token", sa.Text(), nullable=True),
        sa.Column("expires_at", Ts, nullable=False),
        sa.Column("scope", sa.Text(), nullable=True),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("updated_at", Ts, nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_connector_tokens")),
    )
    op.create_table(
        "dirty_skus",
        sa.Column("sku", sa.String(length=100), nullable=False),
        sa.Column("since", Ts, nullable=False),
        sa.PrimaryKeyConstraint("sku", name=op.f("pk_dirty_skus")),
    )
    op.create_table(
        "erp_cursors",
        sa.Column("erp", sa.String(length=100), nullable=False),
        sa.Column("cursor", sa.Text(), nullable=True),
        sa.Column("updated_at", Ts, nullable=False),
        sa.PrimaryKeyConstraint("erp", name=op.f("pk_erp_cursors")),
    )
    op.create_table(
        "erp_rejects",
        sa.Column("id", Id, autoincrement=True, nullable=False),
        sa.Column("erp", sa.String(length=100), nullable=False),
        sa.Column("record_key", sa.String(length=200), nullable=False),
        sa.Column("sku", sa.String(length=100), nullable=True),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("field", sa.String(length=100), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("first_seen", Ts, nullable=False),
        sa.Column("last_seen", Ts, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_erp_rejects")),
        sa.UniqueConstraint("erp", "record_key", "field", name=op.f("uq_erp_rejects_erp_record_key_field")),
    )
    op.create_table(
        "listings",
        sa.Column("id", Id, autoincrement=True, nullable=False),
        sa.Column("channel", sa.String(length=100), nullable=False),
        sa.Column("external_id", sa.String(length=100), nullable=False),
        sa.Column("sku", sa.String(length=100), nullable=True),
        sa.Column("signature", sa.String(length=100), nullable=True),
        sa.Column("ean", sa.String(length=14), nullable=True),
        sa.Column("matched_by", sa.String(length=20), nullable=True),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("seen_quantity", sa.Integer(), nullable=True),
        sa.Column("seen_price", sa.Numeric(precision=14, scale=2), nullable=True),
        sa.Column("ack_quantity", sa.Integer(), nullable=True),
        sa.Column("ack_price", sa.Numeric(precision=14, scale=2), nullable=True),
        sa.Column("acked_at", Ts, nullable=True),
        sa.Column("desired_quantity", sa.Integer(), nullable=True),
        sa.Column("desired_price", sa.Numeric(precision=14, scale=2), nullable=True),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("desired_at", Ts, nullable=True),
        sa.Column("inflight_job_id", Id, nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("last_error_at", Ts, nullable=True),
        sa.Column("error_retryable", sa.Boolean(), nullable=False),
        sa.Column("updated_at", Ts, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_listings")),
        sa.UniqueConstraint("channel", "external_id", name=op.f("uq_listings_channel_external_id")),
    )
    op.create_index(
        "ix_listings_differs", "listings", ["channel", "id"],
        postgresql_where=LISTING_DIFFERS, sqlite_where=LISTING_DIFFERS,
    )
    with op.batch_alter_table("listings") as batch_op:
        batch_op.create_index(
            "uq_listings_channel_sku",
            ["channel", "sku"],
            unique=True,
            postgresql_where=sa.text("sku IS NOT NULL"),
            sqlite_where=sa.text("sku IS NOT NULL"),
        )

    op.create_table(
        "price_history",
        sa.Column("id", Id, autoincrement=True, nullable=False),
        sa.Column("channel", sa.String(length=100), nullable=False),
        sa.Column("sku", sa.String(length=100), nullable=False),
        sa.Column("external_id", sa.String(length=100), nullable=False),
        sa.Column("old_price", sa.Numeric(precision=14, scale=2), nullable=True),
        sa.Column("new_price", sa.Numeric(precision=14, scale=2), nullable=False),
        sa.Column("job_id", Id, nullable=True),
        sa.Column("at", Ts, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_price_history")),
    )
    op.create_table(
        "price_refusals",
        sa.Column("id", Id, autoincrement=True, nullable=False),
        sa.Column("channel", sa.String(length=100), nullable=False),
        sa.Column("sku", sa.String(length=100), nullable=False),
        sa.Column("price", sa.Numeric(precision=14, scale=2), nullable=True),
        sa.Column("floor", sa.Numeric(precision=14, scale=2), nullable=True),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("first_at", Ts, nullable=False),
        sa.Column("last_at", Ts, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_price_refusals")),
        sa.UniqueConstraint("channel", "sku", name=op.f("uq_price_refusals_channel_sku")),
    )
    op.create_table(
        "products",
        sa.Column("sku", sa.String(length=100), nullable=False),
        sa.Column("erp", sa.String(length=100), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("ean", sa.String(length=14), nullable=True),
        sa.Column("vat_rate", sa.String(length=3), nullable=False),
        sa.Column("price_gross", sa.Numeric(precision=14, scale=2), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("cost_net", sa.Numeric(precision=14, scale=4), nullable=True),
        sa.Column("weight_kg", sa.Numeric(precision=10, scale=3), nullable=True),
        sa.Column("updated_at", Ts, nullable=False),
        sa.PrimaryKeyConstraint("sku", name=op.f("pk_products")),
    )
    with op.batch_alter_table("products") as batch_op:
        batch_op.create_index(batch_op.f("ix_products_ean"), ["ean"], unique=False)

    op.create_table(
        "reservations",
        sa.Column("id", Id, autoincrement=True, nullable=False),
        sa.Column("sku", sa.String(length=100), nullable=False),
        sa.Column("quantity", sa.Integer(), nullable=False),
        sa.Column("order_ref", sa.String(length=200), nullable=False),
        sa.Column("order_id", Id, nullable=True),
        sa.Column("state", sa.String(length=20), nullable=False),
        sa.Column("created_at", Ts, nullable=False),
        sa.Column("updated_at", Ts, nullable=False),
        sa.CheckConstraint("quantity > 0", name=op.f("ck_reservations_quantity")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_reservations")),
        sa.UniqueConstraint("order_ref", "sku", name=op.f("uq_reservations_order_ref_sku")),
    )
    with op.batch_alter_table("reservations") as batch_op:
        batch_op.create_index(
            "ix_reservations_open_sku",
            ["sku"],
            unique=False,
            postgresql_where=sa.text("state = 'open'"),
            sqlite_where=sa.text("state = 'open'"),
        )

    op.create_table(
        "stock_levels",
        sa.Column("sku", sa.String(length=100), nullable=False),
        sa.Column("warehouse", sa.String(length=100), nullable=False),
        sa.Column("quantity", sa.Integer(), nullable=False),
        sa.Column("updated_at", Ts, nullable=False),
        sa.CheckConstraint("quantity >= 0", name=op.f("ck_stock_levels_quantity")),
        sa.PrimaryKeyConstraint("sku", "warehouse", name=op.f("pk_stock_levels")),
    )


def downgrade() -> None:
    op.drop_table("hub_state")
    op.drop_table("stock_levels")
    with op.batch_alter_table("reservations") as batch_op:
        batch_op.drop_index(
            "ix_reservations_open_sku",
            postgresql_where=sa.text("state = 'open'"),
            sqlite_where=sa.text("state = 'open'"),
        )

    op.drop_table("reservations")
    with op.batch_alter_table("products") as batch_op:
        batch_op.drop_index(batch_op.f("ix_products_ean"))

    op.drop_table("products")
    op.drop_table("price_refusals")
    op.drop_table("price_history")
    with op.batch_alter_table("listings") as batch_op:
        batch_op.drop_index(
            "uq_listings_channel_sku",
            postgresql_where=sa.text("sku IS NOT NULL"),
            sqlite_where=sa.text("sku IS NOT NULL"),
        )

    op.drop_index("ix_listings_differs", table_name="listings")
    op.drop_table("listings")
    op.drop_table("erp_rejects")
    op.drop_table("erp_cursors")
    op.drop_table("dirty_skus")
    op.drop_table("connector_tokens")
    op.drop_table("competitor_prices")
