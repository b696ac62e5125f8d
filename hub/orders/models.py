"""The orders' tables: orders and lines, status history, rule runs, journal cursors, returns, and the
reservations that hold stock for them.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from hub.platform.schema import Base, Id, Json, Money, UTCDateTime


class Reservation(Base):
    """Stock held for an order until the ERP's own stock reflects it (orders capability)."""

    __tablename__ = "reservations"

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    sku: Mapped[str] = mapped_column(String(100))
    quantity: Mapped[int] = mapped_column(Integer)
    order_ref: Mapped[str] = mapped_column(String(200))
    order_id: Mapped[int | None] = mapped_column(Id)  # orders.id (the orders capability)
    state: Mapped[str] = mapped_column(String(20))  # open | released | consumed
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)

    __table_args__ = (
        CheckConstraint("quantity > 0", name="quantity"),
        UniqueConstraint("order_ref", "sku"),
        Index("ix_reservations_open_sku", "sku", postgresql_where=text("state = 'open'"),
              sqlite_where=text("state = 'open'")),
        Index("ix_reservations_order", "order_id"),  # an order's holds, released or taken up again
    )


ORDER_STATES = ("new", "paid", "processing", "ready_to_ship", "shipped", "delivered", "cancelled", "returned")


class Order(Base):
    """A channel order, once per (channel, external id) whatever the journal repeats."""

    __tablename__ = "orders"

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    channel: Mapped[str] = mapped_column(String(100))
    external_id: Mapped[str] = mapped_column(String(100))
    revision: Mapped[str | None] = mapped_column(String(100))
    status: Mapped[str] = mapped_column(String(20))
    channel_status: Mapped[str | None] = mapped_column(String(50))
    problem: Mapped[str | None] = mapped_column(Text)  # quarantined: the reason; None when fine
    problem_kind: Mapped[str | None] = mapped_column(String(30))  # unknown_sku | missing_address | invalid_nip
    oversold: Mapped[bool] = mapped_column(Boolean, default=False)
    buyer_email: Mapped[str | None] = mapped_column(String(320))
    buyer_login: Mapped[str | None] = mapped_column(String(200))
    delivery_method: Mapped[str | None] = mapped_column(String(200))
    delivery: Mapped[dict[str, Any] | None] = mapped_column(Json)  # address and/or pickup point
    payment: Mapped[dict[str, Any]] = mapped_column(Json)
    invoice: Mapped[dict[str, Any] | None] = mapped_column(Json)
    currency: Mapped[str] = mapped_column(String(3))
    total_gross: Mapped[Decimal] = mapped_column(Money)
    tags: Mapped[list[str]] = mapped_column(Json, default=list)
    erp_ref: Mapped[str | None] = mapped_column(String(200))
    erp_booked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    placed_at: Mapped[datetime] = mapped_column(UTCDateTime)
    channel_updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)

    __table_args__ = (
        UniqueConstraint("channel", "external_id"),
        Index("ix_orders_status", "status"),
        Index("ix_orders_problem", "channel", postgresql_where=text("problem IS NOT NULL OR oversold"),
              sqlite_where=text("problem IS NOT NULL OR oversold")),
        # orders the ERP booked, by when: their reservations end once the ERP's stock reflects them
        Index("ix_orders_erp_booked", "erp_booked_at", postgresql_where=text("erp_booked_at IS NOT NULL"),
              sqlite_where=text("erp_booked_at IS NOT NULL")),
    )


class OrderLineRow(Base):
    __tablename__ = "order_lines"

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    order_id: Mapped[int] = mapped_column(Id, ForeignKey("orders.id", ondelete="CASCADE"))
    line_no: Mapped[int] = mapped_column(Integer)
    line_id: Mapped[str | None] = mapped_column(String(100))
    sku: Mapped[str | None] = mapped_column(String(100))  # resolved SKU (None while unknown)
    signature: Mapped[str | None] = mapped_column(String(100))  # what the channel said
    offer_id: Mapped[str | None] = mapped_column(String(100))
    name: Mapped[str] = mapped_column(Text)
    quantity: Mapped[int] = mapped_column(Integer)
    unit_price_gross: Mapped[Decimal] = mapped_column(Money)
    vat_rate: Mapped[str | None] = mapped_column(String(3))
    kind: Mapped[str] = mapped_column(String(20), default="goods", server_default="goods")  # goods | shipping | fee

    __table_args__ = (UniqueConstraint("order_id", "line_no"), Index("ix_order_lines_sku", "sku"))


class OrderHistory(Base):
    """Every status change of an order: from where to where, who did it."""

    __tablename__ = "order_history"

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    order_id: Mapped[int] = mapped_column(Id, ForeignKey("orders.id", ondelete="CASCADE"), index=True)
    from_status: Mapped[str | None] = mapped_column(String(20))
    to_status: Mapped[str] = mapped_column(String(20))
    source: Mapped[str] = mapped_column(String(30))  # channel | rule:NAME | operator | hub
    note: Mapped[str | None] = mapped_column(Text)
    at: Mapped[datetime] = mapped_column(UTCDateTime)


class RuleRun(Base):
    """One run of an automation rule on an order: what matched, what it did, what failed."""

    __tablename__ = "rule_runs"

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    order_id: Mapped[int] = mapped_column(Id, ForeignKey("orders.id", ondelete="CASCADE"), index=True)
    rule: Mapped[str] = mapped_column(String(200))
    event: Mapped[str] = mapped_column(String(50))
    outcome: Mapped[str] = mapped_column(String(20))  # done | failed | stopped
    detail: Mapped[str | None] = mapped_column(Text)
    at: Mapped[datetime] = mapped_column(UTCDateTime)


class ChannelCursor(Base):
    """How far a channel's journal (orders, returns) has been read; saved with what it produced."""

    __tablename__ = "channel_cursors"

    channel: Mapped[str] = mapped_column(String(100), primary_key=True)
    stream: Mapped[str] = mapped_column(String(30), primary_key=True)
    cursor: Mapped[str | None] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


RMA_STATES = ("requested", "in_transit", "received", "accepted", "rejected", "refund_by_hand", "refunded")


class ReturnRow(Base):
    """A buyer's return (RMA): requested -> in transit -> received -> accepted | rejected -> refunded;
    accepted -> refund_by_hand -> refunded when the channel cannot return the payment (cash on delivery)."""

    __tablename__ = "returns"

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    channel: Mapped[str] = mapped_column(String(100))
    external_id: Mapped[str] = mapped_column(String(100))
    order_id: Mapped[int | None] = mapped_column(Id, ForeignKey("orders.id"))
    order_external_id: Mapped[str] = mapped_column(String(100))
    status: Mapped[str] = mapped_column(String(20))
    channel_status: Mapped[str | None] = mapped_column(String(50))
    reason: Mapped[str | None] = mapped_column(Text)
    lines: Mapped[list[dict[str, Any]]] = mapped_column(Json)
    refund_amount: Mapped[Decimal | None] = mapped_column(Money)
    refund_ref: Mapped[str | None] = mapped_column(String(200))
    restock_ref: Mapped[str | None] = mapped_column(String(200))
    rejection_reason: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)

    __table_args__ = (UniqueConstraint("channel", "external_id"),)
