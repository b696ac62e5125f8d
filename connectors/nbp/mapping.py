"""Pure functions between NBP's JSON and the port's ``PublishedRate``; no I/O.

Sources (the digest of api.nbp.pl kept with the connector's brief):
- ``exchangerates/rates/{table}/{code}/{startDate}/{endDate}/`` answers ONE object
  ``{"table", "currency", "code", "rates": [{"no", "effectiveDate", "mid"}, ...]}``, ``rates`` in ascending date
  order; ``effectiveDate`` is the publication date, the day the rate is in force; ``mid`` is PLN for ONE unit
  (HUF 0.011937, not per 100 as the website shows).
- ``mid`` is a bare JSON number with 4 to 8 decimals and its trailing zeros kept (``4.9790``): the text is parsed
  straight into Decimal (``parse_float=Decimal``), so no binary float ever holds a rate.
- ``no`` is the table's number (``190/A/NBP/2026``; early years unpadded, ``1/A/NBP/2002``): kept as it is, as
  evidence for the invoice, never parsed.
- ``currency`` is missing from the earliest series: not read.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from datetime import date
from decimal import Decimal
from typing import Any

from hub.kernel.errors import RetryableError
from hub.kernel.ports.invoicing import PublishedRate

# Table A of 2026 in NBP's order (table 103/A/NBP/2026): a hint for messages and the simulator's default,
# never a whitelist (the set changes: BGN left it on 1 January 2026, HRK in 2023)
TABLE_A_CODES: tuple[str, ...] = (
    "THB", "USD", "AUD", "HKD", "CAD", "NZD", "SGD", "EUR", "HUF", "CHF", "GBP", "UAH", "JPY", "CZK", "DKK", "ISK",
    "NOK", "SEK", "RON", "TRY", "ILS", "CLP", "PHP", "MXN", "ZAR", "BRL", "MYR", "IDR", "INR", "KRW", "CNY", "XDR",
)


class NbpFormatError(RetryableError):
    """NBP answered something the connector cannot read (a missing or mistyped field): the queue tries again
    later; the message names the field."""


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a rate")


def loads(content: bytes | str) -> Any:
    """NBP's JSON with every number that has a decimal point as Decimal, exactly as written."""
    try:
        return json.loads(content, parse_float=Decimal, parse_constant=_no_constant)
    except (ValueError, UnicodeDecodeError) as exc:  # JSONDecodeError is a ValueError
        raise NbpFormatError(f"NBP answered something that is not JSON ({exc})") from exc


def _mid(value: Any, where: str) -> Decimal:
    # a float here means someone parsed the body without ``loads``: its digits are already lost
    if isinstance(value, bool) or not isinstance(value, Decimal | int):
        raise NbpFormatError(f"NBP's {where}.mid is {value!r}, not a decimal number")
    mid = Decimal(value)
    if not mid.is_finite() or mid <= 0:
        raise NbpFormatError(f"NBP's {where}.mid is {value!r}, not a positive rate")
    return mid


def _day(value: Any, where: str) -> date:
    if not isinstance(value, str):
        raise NbpFormatError(f"NBP's {where}.effectiveDate is {value!r}, not a date")
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise NbpFormatError(f"NBP's {where}.effectiveDate is {value!r}, not a YYYY-MM-DD date") from None


def published_rates(body: Any, *, code: str | None = None, table: str | None = None) -> list[PublishedRate]:
    """A ``rates/...`` answer as PublishedRates in ascending date order. ``code`` and ``table``, when given,
    must be what NBP says it answered (a proxy or a wrong path must not hand over another currency's rates)."""
    if not isinstance(body, Mapping):
        raise NbpFormatError(f"NBP's answer is {type(body).__name__}, not an object with rates")
    answered = body.get("code")
    if not isinstance(answered, str) or not answered:
        raise NbpFormatError(f"NBP's answer has no currency code (code = {answered!r})")
    answered = answered.upper()
    if code is not None and answered != code.upper():
        raise NbpFormatError(f"NBP answered the rates of {answered} when asked for {code.upper()}")
    if table is not None and str(body.get("table", "")).upper() != table.upper():
        raise NbpFormatError(f"NBP answered table {body.get('table')!r} when asked for table {table.upper()}")
    entries = body.get("rates")
    if not isinstance(entries, list):
        raise NbpFormatError(f"NBP's answer for {answered} has no rates list (rates = {entries!r})")
    out: list[PublishedRate] = []
    for n, entry in enumerate(entries):
        where = f"rates[{n}]"
        if not isinstance(entry, Mapping):
            raise NbpFormatError(f"NBP's {where} is {entry!r}, not an object")
        number = entry.get("no")
        if not isinstance(number, str) or not number.strip():
            raise NbpFormatError(f"NBP's {where}.no is {number!r}, not a table number")
        out.append(PublishedRate(currency=answered, effective_date=_day(entry.get("effectiveDate"), where),
                                 mid=_mid(entry.get("mid"), where), table_no=number.strip()))
    out.sort(key=lambda rate: rate.effective_date)
    return out


def last_before(rates: Iterable[PublishedRate], day: date) -> PublishedRate | None:
    """The rate of the last day before ``day`` (never ``day`` itself, even when its table is out: art. 31a
    ust. 1 takes the last working day *preceding* the tax point)."""
    found: PublishedRate | None = None
    for rate in rates:
        if rate.effective_date < day and (found is None or rate.effective_date >= found.effective_date):
            found = rate
    return found
