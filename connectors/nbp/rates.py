"""The ExchangeRateSource port on NBP: the average rate (table A) of the last day before a tax point.

Art. 31a ust. 1 of the VAT act: amounts in a foreign currency are converted "według kursu średniego danej waluty
obcej ogłoszonego przez Narodowy Bank Polski na ostatni dzień roboczy poprzedzający dzień powstania obowiązku
podatkowego". The last working day is read from NBP's data, not from a calendar of ours (NBP's days off are
its own, and the statutory holidays change): one request for the ``lookback_days`` before the day, the last
table in it; a window without any table is widened once to ``widened_days``; then NBP published no rate.

A table is fixed once out, so an answer whose window lies wholly in the past is kept for good (one request per
currency and day, however many invoices share them). A window reaching today (a tax point tomorrow) is not:
today's table may still come (NBP publishes between 11:45 and 12:15 Warsaw time), and until ``published_by``
a weekday without it is answered with a RetryableError rather than yesterday's rate.
"""

from __future__ import annotations

import re
import threading
from collections import OrderedDict
from collections.abc import Callable
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from hub.kernel.clock import utcnow
from hub.kernel.errors import PermanentError, RetryableError
from hub.kernel.ports.invoicing import PublishedRate

from . import mapping
from .client import NbpClient
from .options import NbpOptions

WARSAW = ZoneInfo("Europe/Warsaw")
FIRST_DAY = date(2002, 1, 2)  # "Historic data are available ... for currency exchange rates - since 2 January 2002"
CACHE_SIZE = 4096  # (table, currency, day) answers kept; a seller's year of invoices in a few currencies


class RateNotPublishedYet(RetryableError):
    """The rate a day needs is not out yet (today's table before noon, a tax point days ahead)."""


class NbpRates:
    """The NBP rates of one connector; thread-safe (worker threads share it)."""

    def __init__(self, name: str, client: NbpClient, options: NbpOptions, *, log: Any = None,
                 clock: Callable[[], datetime] = utcnow):
        self.name = name
        self.client = client
        self.options = options
        self.log = log if log is not None else client.log
        self.clock = clock
        self._cache: OrderedDict[tuple[str, str, date], PublishedRate] = OrderedDict()
        self._lock = threading.Lock()

    def close(self) -> None:
        self.client.close()

    def rate_before(self, currency: str, day: date) -> PublishedRate:
        """The average rate of the last day before ``day`` on which NBP published one (see the module)."""
        code = self._code(currency)
        table = self.options.table
        if day <= FIRST_DAY:
            raise PermanentError(f"NBP has no rate for {code} before {day.isoformat()}: its rates begin on "
                                 f"{FIRST_DAY.isoformat()}")
        key = (table, code, day)
        with self._lock:
            cached = self._cache.get(key)
            if cached is not None:
                self._cache.move_to_end(key)
                return cached
        now = self.clock().astimezone(WARSAW)
        today = now.date()
        end = day - timedelta(days=1)
        if end > today:
            raise RateNotPublishedYet(
                f"NBP: the rate of {code} before {day.isoformat()} is not known yet: NBP publishes the table of "
                f"{end.isoformat()} on that day", retry_after=self._seconds_until(end, now))
        found: PublishedRate | None = None
        windows = dict.fromkeys((self.options.lookback_days, self.options.widened_days))  # once each, in order
        for days in windows:
            body = self.client.rates(table, code, max(day - timedelta(days=days), FIRST_DAY), end)
            if body is None:
                self.log.info("nbp.no_table_in_window", currency=code, day=day.isoformat(), days=days)
                continue
            found = mapping.last_before(mapping.published_rates(body, code=code, table=table), day)
            if found is not None:
                break
        if found is None:
            raise PermanentError(self._none_published(code, day, max(windows)))
        if end < today:  # the whole window is in the past: NBP will never answer otherwise
            self._keep(key, found)
        elif found.effective_date < today and self._may_publish(now) and now.time() < self.options.published_by:
            # a publication day whose table may still come: yesterday's rate would be the wrong one
            raise RateNotPublishedYet(
                f"NBP: the rate of {code} before {day.isoformat()} may be today's ({today.isoformat()}), which NBP "
                f"publishes between 11:45 and 12:15 Warsaw time; asking again then",
                retry_after=self._seconds_until(today, now))
        self.log.debug("nbp.rate", currency=code, day=day.isoformat(), effective_date=found.effective_date.isoformat(),
                       mid=str(found.mid), table_no=found.table_no)
        return found

    def _code(self, currency: str) -> str:
        code = currency.strip().upper()
        if code == "PLN":
            raise PermanentError("NBP: PLN needs no exchange rate (amounts in PLN are not converted)")
        # the format only: NBP says which codes it quotes (BGN until 2025, XDR, codes ISO has withdrawn)
        if not re.fullmatch(r"[A-Z]{3}", code):
            raise PermanentError(f"NBP: {currency!r} is not a currency code (three letters, e.g. EUR, USD)")
        return code

    def _may_publish(self, now: datetime) -> bool:
        """Whether NBP may publish the table today: A on working days, B on Wednesdays (a holiday is learnt
        from the data once ``published_by`` has passed)."""
        return now.weekday() == 2 if self.options.table == "B" else now.weekday() < 5

    def _none_published(self, code: str, day: date, days: int) -> str:
        table = self.options.table
        text = f"NBP published no rate for {code} in table {table} in the {days} days before {day.isoformat()}"
        if table == "A" and code not in mapping.TABLE_A_CODES:
            text += (f": {code} is not among the {len(mapping.TABLE_A_CODES)} currencies of table A in 2026 "
                     f"({' '.join(mapping.TABLE_A_CODES)}); the less traded ones are in table B (table = \"B\")")
        return text

    def _seconds_until(self, day: date, now: datetime) -> float:
        """Seconds from ``now`` until ``published_by`` (Warsaw) on ``day``: when that day's table is out."""
        moment = datetime.combine(day, self.options.published_by, tzinfo=WARSAW)
        return max(60.0, (moment - now).total_seconds())

    def _keep(self, key: tuple[str, str, date], rate: PublishedRate) -> None:
        with self._lock:
            self._cache[key] = rate
            self._cache.move_to_end(key)
            while len(self._cache) > CACHE_SIZE:
                self._cache.popitem(last=False)
