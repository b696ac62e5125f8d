"""The catalogue's tables: what the ERP says (products, stock), its cursors and quarantine, and the
SKUs changed since the channels were last planned.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Integer,
    Numeric,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from hub.platform.schema import Base, Cost, Id, Money, UTCDateTime


class Product(Base):
    """The ERP's view of a SKU: the source of truth for every channel."""

    __tablename__ = "products"

    sku: Mapped[str] = mapped_column(String(100), primary_key=True)
    erp: Mapped[str] = mapped_column(String(100))
    name: Mapped[str] = mapped_column(Text)
    ean: Mapped[str | None] = mapped_column(String(14), index=True)
    vat_rate: Mapped[str] = mapped_column(String(3))
    price_gross: Mapped[Decimal] = mapped_column(Money)
    currency: Mapped[str] = mapped_column(String(3))
    cost_net: Mapped[Decimal | None] = mapped_column(Cost)
    weight_kg: Mapped[Decimal | None] = mapped_column(Numeric(10, 3, asdecimal=True))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class StockLevel(Base):
    __tablename__ = "stock_levels"

    sku: Mapped[str] = mapped_column(String(100), primary_key=True)
    warehouse: Mapped[str] = mapped_column(String(100), primary_key=True)
    quantity: Mapped[int] = mapped_column(Integer)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # the fingerprint of the feed row this quantity was read from (a file feed's hash of the raw row):
    # a snapshot skips parsing a row whose fingerprint is stored (hub.catalog.stage); None when no
    # row backs it (zeroed as absent, or written by an ERP that gives none)
    fingerprint: Mapped[int | None] = mapped_column(BigInteger)

    __table_args__ = (CheckConstraint("quantity >= 0", name="quantity"),)


class DirtySku(Base):
    """SKUs whose desired channel state must be recomputed; written with the change itself."""

    __tablename__ = "dirty_skus"

    sku: Mapped[str] = mapped_column(String(100), primary_key=True)
    since: Mapped[datetime] = mapped_column(UTCDateTime)


class ErpCursor(Base):
    """How far each ERP connector has been read; moves in the same transaction as the records."""

    __tablename__ = "erp_cursors"

    erp: Mapped[str] = mapped_column(String(100), primary_key=True)
    cursor: Mapped[str | None] = mapped_column(Text)
    # bumped by every snapshot applied: a read that skipped rows by the fingerprints stored before
    # another read of the same ERP committed starts over (hub.catalog.stage)
    generation: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class ErpReject(Base):
    """A quarantined ERP record: which, which field, what value, why. Leaves by itself when fixed."""

    __tablename__ = "erp_rejects"

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    erp: Mapped[str] = mapped_column(String(100))
    record_key: Mapped[str] = mapped_column(String(200))
    sku: Mapped[str | None] = mapped_column(String(100))
    source: Mapped[str] = mapped_column(Text)
    field: Mapped[str] = mapped_column(String(100))
    value: Mapped[str] = mapped_column(Text)
    reason: Mapped[str] = mapped_column(Text)
    first_seen: Mapped[datetime] = mapped_column(UTCDateTime)
    last_seen: Mapped[datetime] = mapped_column(UTCDateTime)

    __table_args__ = (UniqueConstraint("erp", "record_key", "field"),)
