"""The shipping tables: shipments with their parcels and state history, and courier pickups.

A shipment's ``reference`` is ours and unique: it is written before any carrier call, and every
carrier connector finds a booking by it, so a crash between the carrier's answer and our commit never
books twice.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import CheckConstraint, Date, ForeignKey, Index, Integer, Numeric, String, Text, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from hub.platform.schema import Base, Id, Json, Money, UTCDateTime

SHIPMENT_STATES = ("draft", "booking", "booked", "label_ready", "handed_over", "in_transit", "out_for_delivery",
                   "delivered", "returned_to_sender", "cancelled", "failed")


class Shipment(Base):
    __tablename__ = "shipments"

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    order_id: Mapped[int] = mapped_column(Id, ForeignKey("orders.id"))
    reference: Mapped[str] = mapped_column(String(64), unique=True)  # ours; the carriers find a booking by it
    carrier: Mapped[str] = mapped_column(String(100))  # the carrier connector (account) name in the config
    service: Mapped[str] = mapped_column(String(100))
    sender: Mapped[str] = mapped_column(String(100))  # the [shipping.senders] key
    state: Mapped[str] = mapped_column(String(20))
    receiver: Mapped[dict[str, Any]] = mapped_column(Json)  # an address (name, street, city, ...)
    pickup_point: Mapped[str | None] = mapped_column(String(100))  # the locker or point the buyer chose
    cod_amount: Mapped[Decimal | None] = mapped_column(Money)
    cod_currency: Mapped[str | None] = mapped_column(String(3))
    insurance: Mapped[Decimal | None] = mapped_column(Money)
    currency: Mapped[str] = mapped_column(String(3), default="PLN")
    label_format: Mapped[str] = mapped_column(String(3), default="pdf")  # pdf | zpl
    external_id: Mapped[str | None] = mapped_column(String(200))  # the carrier's shipment id
    operator: Mapped[str | None] = mapped_column(String(30))  # who delivers (a broker books with one)
    handles: Mapped[dict[str, Any]] = mapped_column(Json, default=dict)  # what the carrier needs to cancel
    # booking calls set out on, each counted (committed) before the call: at 0 none can have reached the
    # carrier, so the connector need not look for an earlier booking first
    book_calls: Mapped[int] = mapped_column(Integer, default=0, server_default="1")
    label_path: Mapped[str | None] = mapped_column(Text)  # under [shipping] label_dir
    label_sha256: Mapped[str | None] = mapped_column(String(64))
    label_printed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    pickup_id: Mapped[int | None] = mapped_column(Id, ForeignKey("pickups.id"))
    tracking_status: Mapped[str | None] = mapped_column(String(20))  # the hub's normalized status
    tracking_pushed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    tracked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # the last poll of its tracking
    moved_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # the last new tracking event
    problem: Mapped[str | None] = mapped_column(Text)  # why it cannot go on (the carrier's words)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)

    __table_args__ = (
        Index("ix_shipments_order", "order_id"),
        Index("ix_shipments_state", "state"),
        Index("ix_shipments_carrier_created", "carrier", "created_at"),
    )


class ShipmentParcel(Base):
    __tablename__ = "shipment_parcels"

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    shipment_id: Mapped[int] = mapped_column(Id, ForeignKey("shipments.id"))
    seq: Mapped[int] = mapped_column(Integer)  # 1, 2, ... in the request's order
    weight_kg: Mapped[Decimal] = mapped_column(Numeric(10, 3, asdecimal=True))
    length_cm: Mapped[int | None] = mapped_column(Integer)
    width_cm: Mapped[int | None] = mapped_column(Integer)
    height_cm: Mapped[int | None] = mapped_column(Integer)
    template: Mapped[str | None] = mapped_column(String(20))  # a locker size
    tracking_number: Mapped[str | None] = mapped_column(String(100))
    external_id: Mapped[str | None] = mapped_column(String(100))

    __table_args__ = (
        UniqueConstraint("shipment_id", "seq"),
        CheckConstraint("weight_kg > 0", name="weight"),
        Index("ix_shipment_parcels_tracking", "tracking_number"),
    )


class ShipmentHistory(Base):
    __tablename__ = "shipment_history"

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    shipment_id: Mapped[int] = mapped_column(Id, ForeignKey("shipments.id"))
    from_state: Mapped[str | None] = mapped_column(String(20))
    to_state: Mapped[str] = mapped_column(String(20))
    source: Mapped[str] = mapped_column(String(60))  # cli | rule:NAME | carrier | tracking | job
    note: Mapped[str | None] = mapped_column(Text)
    at: Mapped[datetime] = mapped_column(UTCDateTime)

    __table_args__ = (Index("ix_shipment_history_shipment", "shipment_id"),)


class Pickup(Base):
    """A courier pickup for one carrier account on one day; a booked one stands for that day."""

    __tablename__ = "pickups"

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    carrier: Mapped[str] = mapped_column(String(100))
    day: Mapped[date] = mapped_column(Date)
    reference: Mapped[str] = mapped_column(String(64), unique=True)
    state: Mapped[str] = mapped_column(String(20))  # booking | booked | cancelled | failed
    external_id: Mapped[str | None] = mapped_column(String(200))
    window_start: Mapped[str | None] = mapped_column(String(5))  # "HH:MM", local time at the address
    window_end: Mapped[str | None] = mapped_column(String(5))
    handles: Mapped[dict[str, Any]] = mapped_column(Json, default=dict)
    parcels: Mapped[int] = mapped_column(Integer, default=0)
    problem: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)

    __table_args__ = (
        # one live pickup per carrier account and day, whichever process books it first
        Index("ux_pickups_live", "carrier", "day", unique=True,
              postgresql_where=text("state IN ('booking', 'booked')"),
              sqlite_where=text("state IN ('booking', 'booked')")),
    )
