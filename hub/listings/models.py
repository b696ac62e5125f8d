"""The listings' tables: each channel offer bound to a SKU (desired and acknowledged state), refused
prices, price history and competitor prices.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlalchemy import (
    Boolean,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from hub.platform.schema import Base, Id, Money, UTCDateTime

LISTING_DIFFERS = text(
    "(desired_quantity IS NOT NULL AND (ack_quantity IS NULL OR desired_quantity <> ack_quantity))"
    " OR (desired_price IS NOT NULL AND (ack_price IS NULL OR desired_price <> ack_price))"
)


class Listing(Base):
    """The binding of one channel offer to one SKU: what we want it to show, and what it last acknowledged."""

    __tablename__ = "listings"

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    channel: Mapped[str] = mapped_column(String(100))
    external_id: Mapped[str] = mapped_column(String(100))
    sku: Mapped[str | None] = mapped_column(String(100))
    signature: Mapped[str | None] = mapped_column(String(100))  # the seller's SKU as the channel holds it
    ean: Mapped[str | None] = mapped_column(String(14))
    matched_by: Mapped[str | None] = mapped_column(String(20))  # signature | ean | sku
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    seen_quantity: Mapped[int | None] = mapped_column(Integer)  # as last read from the channel
    seen_price: Mapped[Decimal | None] = mapped_column(Money)
    ack_quantity: Mapped[int | None] = mapped_column(Integer)
    ack_price: Mapped[Decimal | None] = mapped_column(Money)
    acked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # the channel showed fewer units than we sent: a sale whose order is not in yet; until then no
    # push raises the quantity again (the sold unit must not go back on sale)
    sale_hold_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # the hold's units (what the channel sold that the hub has not seen as orders) and since when the
    # channel's orders count towards them (our last acknowledged push): once they cover it, it ends
    sale_hold_since: Mapped[datetime | None] = mapped_column(UTCDateTime)
    sale_hold_units: Mapped[int | None] = mapped_column(Integer)
    # sale_hold_since rounded down to the channel's order-time resolution: an order stamped in that same
    # second, imported after the hold began, may be the sale (it cannot be told from one placed before)
    sale_hold_from: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # the last moment the hub knew what the channel showed: a push's start (the channel applies it later)
    # or a reconcile's read start; a sale found later happened after it, so its order counts from there
    known_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    desired_quantity: Mapped[int | None] = mapped_column(Integer)
    desired_price: Mapped[Decimal | None] = mapped_column(Money)
    currency: Mapped[str] = mapped_column(String(3), default="PLN")
    desired_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    inflight_job_id: Mapped[int | None] = mapped_column(Id)
    last_error: Mapped[str | None] = mapped_column(Text)
    last_error_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    error_retryable: Mapped[bool] = mapped_column(Boolean, default=False)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)

    __table_args__ = (
        UniqueConstraint("channel", "external_id"),
        Index("ix_listings_differs", "channel", "id", postgresql_where=LISTING_DIFFERS,
              sqlite_where=LISTING_DIFFERS),
        Index("uq_listings_channel_sku", "channel", "sku", unique=True,
              postgresql_where=text("sku IS NOT NULL"), sqlite_where=text("sku IS NOT NULL")),
        # a SKU's listings on every channel (its desired state recomputed, reconciliation): (channel, sku)
        # cannot serve a lookup by SKU alone
        Index("ix_listings_sku", "sku"),
    )


class PriceRefusal(Base):
    """A computed price under the floor: refused (the listing keeps its price), never clamped."""

    __tablename__ = "price_refusals"

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    channel: Mapped[str] = mapped_column(String(100))
    sku: Mapped[str] = mapped_column(String(100))
    price: Mapped[Decimal | None] = mapped_column(Money)  # None: no price could be proposed at all
    floor: Mapped[Decimal | None] = mapped_column(Money)  # None: no floor (e.g. no cost known)
    reason: Mapped[str] = mapped_column(Text)
    first_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_at: Mapped[datetime] = mapped_column(UTCDateTime)

    __table_args__ = (UniqueConstraint("channel", "sku"),)


class PriceHistory(Base):
    """Append-only audit of every price the hub asked a channel to show."""

    __tablename__ = "price_history"

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    channel: Mapped[str] = mapped_column(String(100))
    sku: Mapped[str] = mapped_column(String(100))
    external_id: Mapped[str] = mapped_column(String(100))
    old_price: Mapped[Decimal | None] = mapped_column(Money)
    new_price: Mapped[Decimal] = mapped_column(Money)
    job_id: Mapped[int | None] = mapped_column(Id)
    at: Mapped[datetime] = mapped_column(UTCDateTime)


class CompetitorPrice(Base):
    __tablename__ = "competitor_prices"

    channel: Mapped[str] = mapped_column(String(100), primary_key=True)
    sku: Mapped[str] = mapped_column(String(100), primary_key=True)
    price: Mapped[Decimal] = mapped_column(Money)
    seen_at: Mapped[datetime] = mapped_column(UTCDateTime)

    __table_args__ = (Index("ix_competitor_prices_sku", "sku"),)  # by SKU alone when desired state is computed
