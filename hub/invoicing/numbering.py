"""Invoice numbers: gapless and unique per series and period, with any number of processes.

The number is taken by one insert-or-update of the series' counter row in the transaction that stores
the invoice: the row stays locked until that transaction ends (PostgreSQL's row lock; SQLite's database
lock), so a concurrent issuer waits and then takes the next number, and a transaction that rolls back
gives its number back with it. Nothing else may take a number: an invoice that fails its checks is
stored without one (hub.invoicing.issue).
"""

from __future__ import annotations

import re
from datetime import date

from sqlalchemy import text
from sqlalchemy.orm import Session

_FIELD = re.compile(r"{(seq|MM|YYYY|YY)}")


def period_of(pattern: str, day: date) -> str:
    """The period a number's sequence runs in: the month when the pattern shows it, else the year when it
    shows that, else one period for ever."""
    if "{MM}" in pattern:
        return f"{day.year:04d}-{day.month:02d}"
    if "{YYYY}" in pattern or "{YY}" in pattern:
        return f"{day.year:04d}"
    return "-"


def format_number(pattern: str, seq: int, day: date) -> str:
    values = {"seq": str(seq), "MM": f"{day.month:02d}", "YYYY": f"{day.year:04d}", "YY": f"{day.year % 100:02d}"}
    return _FIELD.sub(lambda match: values[match.group(1)], pattern)


_NEXT = text(
    "INSERT INTO invoice_counters (series, period, last_seq) VALUES (:series, :period, 1) "
    "ON CONFLICT (series, period) DO UPDATE SET last_seq = invoice_counters.last_seq + 1 RETURNING last_seq")


def take_number(session: Session, series: str, pattern: str, day: date) -> tuple[str, str, int]:
    """The next number of ``series`` for an invoice issued on ``day``: (number, period, seq). Call it in
    the transaction that stores the invoice, as late as possible (the counter row stays locked)."""
    period = period_of(pattern, day)
    seq = session.execute(_NEXT, {"series": series, "period": period}).scalar_one()
    return format_number(pattern, seq, day), period, seq


_NEXT_MANY = text(
    "INSERT INTO invoice_counters (series, period, last_seq) VALUES (:series, :period, :count) "
    "ON CONFLICT (series, period) DO UPDATE SET last_seq = invoice_counters.last_seq + :count RETURNING last_seq")


def take_numbers(session: Session, series: str, pattern: str, day: date, count: int) -> list[tuple[str, str, int]]:
    """``count`` consecutive numbers of ``series`` for invoices issued on ``day``, by one update of its
    counter row (take_number's rules: in the storing transaction, as late as possible)."""
    period = period_of(pattern, day)
    last = session.execute(_NEXT_MANY, {"series": series, "period": period, "count": count}).scalar_one()
    return [(format_number(pattern, seq, day), period, seq) for seq in range(last - count + 1, last + 1)]
