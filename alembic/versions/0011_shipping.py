"""shipping: shipments, parcels, history, pickups

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-01 21:47:31.979947
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from alembic import op

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
Ts = sa.DateTime(timezone=True)
Json = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
LIVE = sa.text("state IN ('booking', 'booked')")

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('pickups',
    sa.Column('id', Id, autoincrement=True, nullable=False),
    sa.Column('carrier', sa.String(length=100), nullable=False),
    sa.Column('day', sa.Date(), nullable=False),
    sa.Column('reference', sa.String(length=64), nullable=False),
    sa.Column('state', sa.String(length=20), nullable=False),
    sa.Column('external_id', sa.String(length=200), nullable=True),
    sa.Column('window_start', sa.String(length=5), nullable=True),
    sa.Column('window_end', sa.String(length=5), nullable=True),
    sa.Column('handles', Json, nullable=False),
    sa.Column('parcels', sa.Integer(), nullable=False),
    sa.Column('problem', sa.Text(), nullable=True),
    sa.Column('created_at', Ts, nullable=False),
    sa.Column('updated_at', Ts, nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_pickups')),
    sa.UniqueConstraint('reference', name=op.f('uq_pickups_reference'))
    )
    with op.batch_alter_table('pickups') as batch_op:
        batch_op.create_index("ux_pickups_live", ["carrier", "day"], unique=True, postgresql_where=LIVE,
                              sqlite_where=LIVE)

    op.create_table('shipments',
    sa.Column('id', Id, autoincrement=True, nullable=False),
    sa.Column('order_id', Id, nullable=False),
    sa.Column('reference', sa.String(length=64), nullable=False),
    sa.Column('carrier', sa.String(length=100), nullable=False),
    sa.Column('service', sa.String(length=100), nullable=False),
    sa.Column('sender', sa.String(length=100), nullable=False),
    sa.Column('state', sa.String(length=20), nullable=False),
    sa.Column('receiver', Json, nullable=False),
    sa.Column('pickup_point', sa.String(length=100), nullable=True),
    sa.Column('cod_amount', sa.Numeric(precision=14, scale=2), nullable=True),
    sa.Column('cod_currency', sa.String(length=3), nullable=True),
    sa.Column('insurance', sa.Numeric(precision=14, scale=2), nullable=True),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('label_format', sa.String(length=3), nullable=False),
    sa.Column('external_id', sa.String(length=200), nullable=True),
    sa.Column('operator', sa.String(length=30), nullable=True),
    sa.Column('handles', Json, nullable=False),
    sa.Column('label_path', sa.Text(), nullable=True),
    sa.Column('label_sha256', sa.String(length=64), nullable=True),
    sa.Column('label_printed_at', Ts, nullable=True),
    sa.Column('pickup_id', Id, nullable=True),
    sa.Column('tracking_status', sa.String(length=20), nullable=True),
    sa.Column('tracking_pushed_at', Ts, nullable=True),
    sa.Column('tracked_at', Ts, nullable=True),
    sa.Column('moved_at', Ts, nullable=True),
    sa.Column('problem', sa.Text(), nullable=True),
    sa.Column('created_at', Ts, nullable=False),
    sa.Column('updated_at', Ts, nullable=False),
    sa.ForeignKeyConstraint(['order_id'], ['orders.id'], name=op.f('fk_shipments_order_id_orders')),
    sa.ForeignKeyConstraint(['pickup_id'], ['pickups.id'], name=op.f('fk_shipments_pickup_id_pickups')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_shipments')),
    sa.UniqueConstraint('reference', name=op.f('uq_shipments_reference'))
    )
    with op.batch_alter_table('shipments') as batch_op:
        batch_op.create_index('ix_shipments_carrier_created', ['carrier', 'created_at'], unique=False)
        batch_op.create_index('ix_shipments_order', ['order_id'], unique=False)
        batch_op.create_index('ix_shipments_state', ['state'], unique=False)

    op.create_table('shipment_history',
    sa.Column('id', Id, autoincrement=True, nullable=False),
    sa.Column('shipment_id', Id, nullable=False),
    sa.Column('from_state', sa.String(length=20), nullable=True),
    sa.Column('to_state', sa.String(length=20), nullable=False),
    sa.Column('source', sa.String(length=60), nullable=False),
    sa.Column('note', sa.Text(), nullable=True),
    sa.Column('at', Ts, nullable=False),
    sa.ForeignKeyConstraint(['shipment_id'], ['shipments.id'], name=op.f('fk_shipment_history_shipment_id_shipments')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_shipment_history'))
    )
    with op.batch_alter_table('shipment_history') as batch_op:
        batch_op.create_index('ix_shipment_history_shipment', ['shipment_id'], unique=False)

    op.create_table('shipment_parcels',
    sa.Column('id', Id, autoincrement=True, nullable=False),
    sa.Column('shipment_id', Id, nullable=False),
    sa.Column('seq', sa.Integer(), nullable=False),
    sa.Column('weight_kg', sa.Numeric(precision=10, scale=3), nullable=False),
    sa.Column('length_cm', sa.Integer(), nullable=True),
    sa.Column('width_cm', sa.Integer(), nullable=True),
    sa.Column('height_cm', sa.Integer(), nullable=True),
    sa.Column('template', sa.String(length=20), nullable=True),
    sa.Column('tracking_number', sa.String(length=100), nullable=True),
    sa.Column('external_id', sa.String(length=100), nullable=True),
    sa.CheckConstraint('weight_kg > 0', name=op.f('ck_shipment_parcels_weight')),
    sa.ForeignKeyConstraint(['shipment_id'], ['shipments.id'], name=op.f('fk_shipment_parcels_shipment_id_shipments')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_shipment_parcels')),
    sa.UniqueConstraint('shipment_id', 'seq', name=op.f('uq_shipment_parcels_shipment_id_seq'))
    )
    with op.batch_alter_table('shipment_parcels') as batch_op:
        batch_op.create_index('ix_shipment_parcels_tracking', ['tracking_number'], unique=False)

def downgrade() -> None:
    with op.batch_alter_table('shipment_parcels') as batch_op:
        batch_op.drop_index('ix_shipment_parcels_tracking')

    op.drop_table('shipment_parcels')
    with op.batch_alter_table('shipment_history') as batch_op:
        batch_op.drop_index('ix_shipment_history_shipment')

    op.drop_table('shipment_history')
    with op.batch_alter_table('shipments') as batch_op:
        batch_op.drop_index('ix_shipments_state')
        batch_op.drop_index('ix_shipments_order')
        batch_op.drop_index('ix_shipments_carrier_created')

    op.drop_table('shipments')
    with op.batch_alter_table('pickups') as batch_op:
        batch_op.drop_index("ux_pickups_live", postgresql_where=LIVE, sqlite_where=LIVE)

    op.drop_table('pickups')
