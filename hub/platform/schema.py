"""The database's shared column types and the platform's own tables (connector health, logins, rate
buckets, hub state).

Each capability declares its tables on this ``Base`` in its own ``models`` module; uniqueness and
idempotency live there as database constraints.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    DateTime,
    Float,
    Integer,
    MetaData,
    Numeric,
    String,
    Text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

from hub.kernel.clock import as_utc

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
    """A connector account's OAuth pair; see hub.platform.credentials for the single-refresher rule."""

    __tablename__ = "connector_tokens"

    name: Mapped[str] = mapped_column(String(100), primary_key=True)
    access_token: Mapped[str] = mapped_column(Text)
    refresh_token: Mapped[str | None] = mapped_column(Text)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    scope: Mapped[str | None] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(20))  # ok | login-needed
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class ConnectorMemory(Base):
    """What a connector learnt from its vendor (hub.platform.memory), kept across restarts."""

    __tablename__ = "connector_memory"

    connector: Mapped[str] = mapped_column(String(100), primary_key=True)
    topic: Mapped[str] = mapped_column(String(50), primary_key=True)
    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    value: Mapped[Any] = mapped_column(Json, nullable=True)
    learnt_at: Mapped[datetime] = mapped_column(UTCDateTime)


class HubState(Base):
    """Small facts the hub keeps about itself, e.g. the fingerprint of the rules it last applied."""

    __tablename__ = "hub_state"

    key: Mapped[str] = mapped_column(String(100), primary_key=True)
    value: Mapped[str] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
