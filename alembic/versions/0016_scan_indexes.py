"""Indexes for queries that scanned whole tables: listings and competitor prices by SKU alone,
reservations by order, orders by their ERP booking time, invoices by state (issue 12;
tests/platform/test_query_plans.py keeps them indexed)

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-02 14:40:00
"""

from __future__ import annotations

import sqlalchemy as sa

from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None

UNSENT = sa.text("state IN ('issued', 'sending', 'sent')")


def upgrade() -> None:
    op.create_index("ix_listings_sku", "listings", ["sku"])
    op.create_index("ix_competitor_prices_sku", "competitor_prices", ["sku"])
    op.create_index("ix_reservations_order", "reservations", ["order_id"])
    op.drop_index("ix_invoices_unsent", table_name="invoices")
    op.create_index("ix_invoices_state", "invoices", ["state", "id"])
    op.create_index("ix_orders_erp_booked", "orders", ["erp_booked_at"],
                    postgresql_where=sa.text("erp_booked_at IS NOT NULL"),
                    sqlite_where=sa.text("erp_booked_at IS NOT NULL"))


def downgrade() -> None:
    op.drop_index("ix_invoices_state", table_name="invoices")
    op.create_index("ix_invoices_unsent", "invoices", ["state"], postgresql_where=UNSENT, sqlite_where=UNSENT)
    op.drop_index("ix_orders_erp_booked", table_name="orders")
    op.drop_index("ix_reservations_order", table_name="reservations")
    op.drop_index("ix_competitor_prices_sku", table_name="competitor_prices")
    op.drop_index("ix_listings_sku", table_name="listings")
