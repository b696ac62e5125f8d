"""The spine's tables. Uniqueness and idempotency live here, as database constraints."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    Numeric,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

from hub.clock import as_utc

NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator[datetime]):
    """Stores UTC, always returns timezone-aware UTC (SQLite would return naive values)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: the hub stores timezone-aware UTC only")
        return as_utc(value)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        return as_utc(value)


Id = BigInteger().with_variant(Integer, "sqlite")
Json = JSON().with_variant(JSONB(), "postgresql")


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


JOB_STATES = ("pending", "running", "failed-retrying", "done", "dead", "cancelled")
RUNNABLE_STATES = ("pending", "failed-retrying")
OPEN_STATES = ("pending", "running", "failed-retrying")


class Job(Base):
    """One effect on another system (or one unit of internal work), written in the
    same transaction as the state change that caused it."""

    __tablename__ = "jobs"

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(100))
    payload: Mapped[dict[str, Any]] = mapped_column(Json)
    idempotency_key: Mapped[str] = mapped_column(String(255), unique=True)
    connector: Mapped[str | None] = mapped_column(String(100))
    state: Mapped[str] = mapped_column(String(20), default="pending")
    priority: Mapped[int] = mapped_column(Integer, default=0)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    # NULL: the worker's configured max_attempts applies
    max_attempts: Mapped[int | None] = mapped_column(Integer)
    run_at: Mapped[datetime] = mapped_column(UTCDateTime)
    lease_owner: Mapped[str | None] = mapped_column(String(200))
    lease_token: Mapped[str | None] = mapped_column(String(36))
    lease_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_error: Mapped[str | None] = mapped_column(Text)
    result: Mapped[dict[str, Any] | None] = mapped_column(Json)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    __table_args__ = (
        CheckConstraint(
            "state IN ('pending', 'running', 'failed-retrying', 'done', 'dead', 'cancelled')",
            name="state",
        ),
        CheckConstraint("attempts >= 0", name="attempts"),
        # The claim query's index: only runnable rows, in claim order.
        Index(
            "ix_jobs_due",
            text("priority DESC"),
            "run_at",
            "id",
            postgresql_where=text("state IN ('pending', 'failed-retrying')"),
            sqlite_where=text("state IN ('pending', 'failed-retrying')"),
        ),
        Index(
            "ix_jobs_lease",
            "lease_expires_at",
            postgresql_where=text("state = 'running'"),
            sqlite_where=text("state = 'running'"),
        ),
        Index("ix_jobs_state_kind", "state", "kind"),
    )


class JobFailure(Base):
    """Error history: one row per failed attempt (successes are on the job itself)."""

    __tablename__ = "job_failures"

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    job_id: Mapped[int] = mapped_column(Id, ForeignKey("jobs.id", ondelete="CASCADE"), index=True)
    attempt: Mapped[int] = mapped_column(Integer)
    outcome: Mapped[str] = mapped_column(String(20))  # retry | dead | lease-expired
    error: Mapped[str] = mapped_column(Text)
    worker: Mapped[str | None] = mapped_column(String(200))
    at: Mapped[datetime] = mapped_column(UTCDateTime)


class ScheduleRun(Base):
    """Last time each periodic job from the config was enqueued, and which job that was."""

    __tablename__ = "schedule_runs"

    name: Mapped[str] = mapped_column(String(100), primary_key=True)
    last_fired_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_job_id: Mapped[int | None] = mapped_column(Id)
    fired_by: Mapped[str | None] = mapped_column(String(200))


class ConnectorHealth(Base):
    """What the hub last saw of each configured connector, for ``hub status``."""

    __tablename__ = "connector_health"

    name: Mapped[str] = mapped_column(String(100), primary_key=True)
    status: Mapped[str] = mapped_column(String(30))  # ok | failing | login-needed | disabled
    last_ok_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_error_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_error: Mapped[str | None] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class RateBucket(Base):
    """Token bucket shared by every process on one database (used on PostgreSQL).

    ``tokens`` may go negative: that is debt, the time callers already reserved.
    """

    __tablename__ = "rate_buckets"

    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    tokens: Mapped[float] = mapped_column(Float)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


Money = Numeric(14, 2, asdecimal=True)
Cost = Numeric(14, 4, asdecimal=True)


class ConnectorToken(Base):
    """A connector account's OAuth pair; see hub.credentials for the single-refresher rule."""

    __tablename__ = "connector_tokens"

    name: Mapped[str] = mapped_column(String(100), primary_key=True)
    access_token: Mapped[str] = mapped_column(Text)
    refresh_token: Mapped[str | None] = mapped_column(Text)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    scope: Mapped[str | None] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(20))  # ok | login-needed
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


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
    )


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


class HubState(Base):
    """Small facts the hub keeps about itself, e.g. the fingerprint of the rules it last applied."""

    __tablename__ = "hub_state"

    key: Mapped[str] = mapped_column(String(100), primary_key=True)
    value: Mapped[str] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


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

    __table_args__ = (UniqueConstraint("order_id", "line_no"),)


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


RMA_STATES = ("requested", "in_transit", "received", "accepted", "rejected", "refunded")


class ReturnRow(Base):
    """A buyer's return (RMA): requested -> in transit -> received -> accepted | rejected -> refunded."""

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
