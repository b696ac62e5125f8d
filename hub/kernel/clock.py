"""Timezone-aware UTC time, the only kind used inside the hub."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta


def utcnow() -> datetime:
    return datetime.now(UTC)


def as_utc(value: datetime | None) -> datetime | None:
    """SQLite hands back naive datetimes; they were written as UTC."""
    if value is None:
        return None
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def round_down(value: datetime, resolution: timedelta) -> datetime:
    """``value`` to the start of its ``resolution`` step (counted from the epoch): the earliest moment a
    time stamped that coarsely may stand for."""
    if resolution <= timedelta(0):
        return value
    epoch = datetime(1970, 1, 1, tzinfo=value.tzinfo or UTC)
    return value - (value - epoch) % resolution
