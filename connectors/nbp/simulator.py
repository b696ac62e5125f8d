"""An in-memory NBP Web API (api.nbp.pl): exchange rates of tables A and B, with faults on demand.

A WSGI app: tests use it in-process through ``sim.transport()`` (httpx.WSGITransport plus the transport-level
faults); the demo and benchmarks serve it on loopback with ``serve()``, which returns the address to give the
connector as ``api_url`` (``http://127.0.0.1:PORT/api``), and ``stop()``. Every request is logged (``sim.log``).

Built from the digest of NBP's API kept with the connector's brief ([NBP]: api.nbp.pl/en.html; [obs]: answers
captured from the live API in public repositories; (u): what no source states, chosen here):

- Paths under ``/api/exchangerates/``: ``rates/{table}/{code}/`` (current), ``.../today/``, ``.../last/{n}/``,
  ``.../{date}/``, ``.../{startDate}/{endDate}/``, and the same five under ``tables/{table}/`` [NBP]. Either
  case, with or without the trailing slash [obs]; ``table`` and ``code`` are answered in upper case [obs].
- Format: ``?format=json|xml`` or ``Accept: application/json|application/xml``; "If the format has not been
  determined, JSON is returned" [NBP]. The query wins over the header (u). XML as in the captured fixtures
  (``ExchangeRatesSeries``, ``ArrayOfExchangeRatesTable``, PascalCase elements) [obs].
- ``rates/...``: one object ``{table, currency, code, rates: [{no, effectiveDate, mid}]}`` in ascending date
  order; ``tables/...``: an array of ``{table, no, effectiveDate, rates: [{currency, code, mid}]}`` [obs].
  ``mid`` is a bare JSON number with the currency's decimals and trailing zeros kept (4 for most, 6 for HUF,
  JPY, INR, CLP, 8 for IDR) [obs]; KRW's 6 and the Polish names beyond USD, THB and AUD are (u).
- Table numbers ``NNN/A/NBP/YYYY``, counted per year from 1, zero-padded to 3 digits; the 2002 and 2004 tables
  were unpadded (``1/A/NBP/2002``) [obs]: unpadded here before 2005 (u: the year padding began).
- Table A on working days (Monday to Friday except Polish public holidays: the ustawa o dniach wolnych od pracy,
  24 December from 2025), table B on Wednesdays that are working days [NBP: "Tabela B ... w środy"]; today's table
  only from ``publish_at`` Warsaw time (NBP: between 11:45 and 12:15). Rates from 2 January 2002 [NBP].
  ``days_off`` adds days NBP did not publish (u: e.g. the one-off holiday of 12 November 2018).
- Errors are text/plain with NBP's reason phrase [obs]: no table in the range, a currency the table does not
  quote, ``today`` before publication: 404 ``404 NotFound - Not Found - Brak danych``; start after end or a date in
  the future: 400 ``400 BadRequest - Błędny zakres dat / Invalid date range`` (also for a malformed date, u);
  a range over 367 days (rates) or 93 days (tables), checked as ``end - start > limit``: 400 ``Przekroczony limit
  ...``; ``last/{n}`` over 255 (rates) or 67 (tables): 400 ``Przekroczony limit ... wyników``. A path the API does
  not have: 404 ``404 NotFound`` without "Brak danych" (u). Table C: 404 Brak danych (u: not simulated); a letter
  that is no table, a bad ``last/{n}``: 400 ``400 BadRequest`` (u). The reason phrases lose their Polish letters
  here (WSGI status lines are Latin-1).
- Rates are deterministic per currency and day (a hash around a base rate), or set with ``set_rate``.

Faults, queued one by one (``inject``) or drawn per request from the seeded generator (``faults``): a 5xx
(503), a timeout (in-process: httpx.ConnectTimeout before the request reaches NBP; served: the answer comes
after ``seconds``, past the client's timeout) and a slow answer.
"""

from __future__ import annotations

import hashlib
import json
import random
import re
import threading
import time as time_module
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qs
from xml.sax.saxutils import escape
from zoneinfo import ZoneInfo

import httpx

from connectors.simserver import LoopbackServer
from hub.kernel.calendar import polish_holidays

WARSAW = ZoneInfo("Europe/Warsaw")
FIRST_DAY = date(2002, 1, 2)
PADDED_FROM = 2005
START = datetime(2026, 10, 1, 14, 0, tzinfo=WARSAW)  # a Thursday afternoon: the day's table is out

NO_DATA = "404 NotFound - Not Found - Brak danych"
NO_DATA_REASON = "Not Found - Brak danych"
NOT_FOUND = "404 NotFound"
INVALID_RANGE = "400 BadRequest - Błędny zakres dat / Invalid date range"
INVALID_RANGE_REASON = "Bledny zakres dat / Invalid date range"
RATES_DAYS, TABLES_DAYS = 367, 93
RATES_TOP, TABLES_TOP = 255, 67
FAULT_KINDS = ("5xx", "timeout", "slow")

# simulated base rates (PLN for one unit); the ones the digest shows are real captures (USD, THB, AUD, HUF, JPY,
# IDR, BGN, AFN), the rest are round figures of the right size and decimals
BASE_RATES: dict[str, str] = {
    "THB": "0.1146", "USD": "3.8449", "AUD": "2.6818", "HKD": "0.4940", "CAD": "2.7600", "NZD": "2.2000",
    "SGD": "2.9800", "EUR": "4.2537", "HUF": "0.011937", "CHF": "4.5500", "GBP": "4.9790", "UAH": "0.0920",
    "JPY": "0.022848", "CZK": "0.1720", "DKK": "0.5700", "ISK": "0.0300", "NOK": "0.3600", "SEK": "0.3900",
    "RON": "0.8400", "TRY": "0.0930", "ILS": "1.1000", "CLP": "0.004100", "PHP": "0.0650", "MXN": "0.2100",
    "ZAR": "0.2100", "BRL": "0.7000", "MYR": "0.9000", "IDR": "0.00020367", "INR": "0.043500", "KRW": "0.002600",
    "CNY": "0.5300", "XDR": "5.2000", "BGN": "2.1795",
    "AFN": "0.058988", "MGA": "0.000850", "PAB": "3.8449",
}
NAMES: dict[str, str] = {
    "THB": "bat (Tajlandia)", "USD": "dolar amerykański", "AUD": "dolar australijski", "EUR": "euro",
    "CHF": "frank szwajcarski", "GBP": "funt szterling", "HUF": "forint (Węgry)", "JPY": "jen (Japonia)",
    "CZK": "korona czeska", "BGN": "lew (Bułgaria)", "XDR": "SDR (MFW)",
}
TABLE_A: tuple[str, ...] = (
    "THB", "USD", "AUD", "HKD", "CAD", "NZD", "SGD", "EUR", "HUF", "CHF", "GBP", "UAH", "JPY", "CZK", "DKK", "ISK",
    "NOK", "SEK", "RON", "TRY", "ILS", "CLP", "PHP", "MXN", "ZAR", "BRL", "MYR", "IDR", "INR", "KRW", "CNY", "XDR",
    "BGN",
)
TABLE_B: tuple[str, ...] = ("AFN", "MGA", "PAB")
# BGN left table A when Bulgaria adopted the euro (absent from the 2026 tables)
QUOTED_UNTIL: dict[str, date] = {"BGN": date(2025, 12, 31)}

StartResponse = Callable[..., Any]


def table_number(table: str, ordinal: int, year: int) -> str:
    """``190/A/NBP/2026`` (unpadded in the early years: ``1/A/NBP/2002``)."""
    number = f"{ordinal:03d}" if year >= PADDED_FROM else str(ordinal)
    return f"{number}/{table}/NBP/{year}"


@dataclass(frozen=True)
class Faults:
    """What goes wrong, drawn per request from the simulator's seeded generator."""

    error_rate: float = 0.0  # share of requests answered 503
    timeout_rate: float = 0.0  # share that time out
    delay_rate: float = 0.0  # share answered after ``delay_seconds``
    delay_seconds: float = 0.0


@dataclass
class _Planned:
    kind: str
    path: re.Pattern[str] | None
    remaining: int
    seconds: float


@dataclass
class Exchange:
    """One request as NBP saw it (status 0: it never got there)."""

    path: str
    query: dict[str, str]
    accept: str | None
    status: int = 0
    body: str = ""
    fault: str | None = None


@dataclass(frozen=True)
class _Answer:
    status: int
    reason: str
    body: str
    content_type: str = "text/plain; charset=utf-8"


@dataclass
class _Calendar:
    """Publication days of one table and year, and their table numbers."""

    days: list[date] = field(default_factory=list)
    numbers: dict[date, str] = field(default_factory=dict)


class _Refused(Exception):
    def __init__(self, answer: _Answer):
        super().__init__(answer.body)
        self.answer = answer


def _no_data() -> _Refused:
    return _Refused(_Answer(404, NO_DATA_REASON, NO_DATA))


def _invalid_range() -> _Refused:
    return _Refused(_Answer(400, INVALID_RANGE_REASON, INVALID_RANGE))


def _days_limit(days: int) -> _Refused:
    text = f"Przekroczony limit {days} dni / Limit of {days} days has been exceeded"
    return _Refused(_Answer(400, text, f"400 BadRequest - {text}"))


def _top_limit(count: int) -> _Refused:
    text = f"Przekroczony limit {count} wyników / Maximum size of {count} data series has been exceeded"
    reason = f"Przekroczony limit {count} wynikow / Maximum size of {count} data series has been exceeded"
    return _Refused(_Answer(400, reason, f"400 BadRequest - {text}"))


def _json(value: Any) -> str:
    """JSON with Decimal written as its exact text (``4.9790``, never a float's digits)."""
    if isinstance(value, Mapping):
        return "{" + ",".join(f"{_json(str(k))}:{_json(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ",".join(_json(v) for v in value) + "]"
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    raise TypeError(type(value).__name__)


class NbpSimulator:
    """NBP's exchange-rate API. ``currencies`` (table A) and ``table_b`` are codes or code → base rate."""

    def __init__(self, currencies: Iterable[str] | Mapping[str, str | Decimal] = TABLE_A, *,
                 table_b: Iterable[str] | Mapping[str, str | Decimal] = TABLE_B, now: datetime | None = START,
                 publish_at: time = time(12, 0), days_off: Iterable[date] = (),
                 quoted_until: Mapping[str, date] | None = None, seed: int = 0,
                 rates_days_limit: int = RATES_DAYS, tables_days_limit: int = TABLES_DAYS):
        if now is not None and now.tzinfo is None:
            raise ValueError("give the simulator an aware datetime (Europe/Warsaw or UTC)")
        self.tables: dict[str, dict[str, Decimal]] = {"A": self._bases(currencies), "B": self._bases(table_b)}
        self.fixed_now = now  # None: the real time
        self.publish_at = publish_at
        self.days_off = frozenset(days_off)
        self.quoted_until = dict(QUOTED_UNTIL if quoted_until is None else quoted_until)
        self.limits = {"rates": rates_days_limit, "tables": tables_days_limit}
        self.faults = Faults()
        self.log: list[Exchange] = []
        self._overrides: dict[tuple[str, date], Decimal] = {}
        self._calendars: dict[tuple[str, int], _Calendar] = {}
        self._planned: list[_Planned] = []
        self._rng = random.Random(seed)
        self._lock = threading.RLock()
        self._loopback = LoopbackServer(self, "nbp-simulator")

    @staticmethod
    def _bases(codes: Iterable[str] | Mapping[str, str | Decimal]) -> dict[str, Decimal]:
        if isinstance(codes, Mapping):
            return {c.upper(): Decimal(str(v)) for c, v in codes.items()}
        return {c.upper(): Decimal(BASE_RATES.get(c.upper(), "1.0000")) for c in codes}

    # --- the test's handles ------------------------------------------------------------------------------

    def now(self) -> datetime:
        """The simulator's time in Warsaw."""
        with self._lock:
            moment = self.fixed_now
        return (moment or datetime.now(WARSAW)).astimezone(WARSAW)

    def set_now(self, moment: datetime) -> None:
        if moment.tzinfo is None:
            raise ValueError("give the simulator an aware datetime (Europe/Warsaw or UTC)")
        with self._lock:
            self.fixed_now = moment

    def set_rate(self, code: str, day: date, mid: str | Decimal) -> None:
        """The mid rate of ``code`` on ``day`` (as text or Decimal: its decimals are kept)."""
        with self._lock:
            self._overrides[(code.upper(), day)] = Decimal(str(mid))

    def inject(self, kind: str, *, path: str | None = None, times: int = 1, seconds: float = 0.0) -> None:
        """The next ``times`` requests whose path matches the ``path`` regex get the fault: ``5xx`` (503),
        ``timeout`` (served: answered after ``seconds``, default 10) or ``slow`` (answered after ``seconds``)."""
        if kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault {kind!r} (one of {', '.join(FAULT_KINDS)})")
        with self._lock:
            self._planned.append(_Planned(kind, re.compile(path) if path else None, times, seconds))

    def clear_faults(self) -> None:
        with self._lock:
            self.faults = Faults()
            self._planned.clear()

    def requests(self, path: str = "") -> list[Exchange]:
        """The logged requests whose path matches the regex."""
        pattern = re.compile(path)
        with self._lock:
            return [e for e in self.log if pattern.search(e.path)]

    def published(self, table: str, day: date) -> bool:
        """Whether ``table`` was (or will be, for a day to come) published on ``day``."""
        return day in self._calendar(table.upper(), day.year).numbers

    def table_no(self, table: str, day: date) -> str | None:
        return self._calendar(table.upper(), day.year).numbers.get(day)

    def rate(self, code: str, day: date, table: str = "A") -> Decimal | None:
        """What the simulator publishes for ``code`` on ``day`` (None: nothing), whatever the time of day."""
        table, code = table.upper(), code.upper()
        if code not in self.tables.get(table, {}) or not self.published(table, day):
            return None
        until = self.quoted_until.get(code)
        if until is not None and day > until:
            return None
        with self._lock:
            override = self._overrides.get((code, day))
        if override is not None:
            return override
        base = self.tables[table][code]
        digest = hashlib.sha256(f"{table}:{code}:{day.isoformat()}".encode()).digest()
        swing = Decimal(int.from_bytes(digest[:4], "big")) / Decimal(2**32) - Decimal("0.5")  # -0.5 .. 0.5
        mid = (base * (1 + swing * Decimal("0.04"))).quantize(base)  # within 2 %, the base's decimals
        return mid if mid > 0 else base

    def transport(self) -> httpx.BaseTransport:
        return _SimTransport(self)

    def serve(self, host: str = "127.0.0.1", port: int = 0, *, latency: float = 0.0) -> str:
        """Serve on loopback; returns the connector's ``api_url`` (``http://127.0.0.1:PORT/api``)."""
        return self._loopback.start(host, port, latency=latency) + "/api"

    def stop(self) -> None:
        self._loopback.stop()

    # --- the calendar ------------------------------------------------------------------------------------

    def _calendar(self, table: str, year: int) -> _Calendar:
        with self._lock:
            found = self._calendars.get((table, year))
            if found is not None:
                return found
            calendar = _Calendar()
            if table in self.tables:
                holidays = polish_holidays(year)
                day = max(date(year, 1, 1), FIRST_DAY)
                while day.year == year:
                    weekday_ok = day.weekday() < 5 if table == "A" else day.weekday() == 2
                    if weekday_ok and day not in holidays and day not in self.days_off:
                        calendar.days.append(day)
                        calendar.numbers[day] = table_number(table, len(calendar.days), year)
                    day += timedelta(days=1)
            self._calendars[(table, year)] = calendar
            return calendar

    def _out(self, table: str, day: date, now: datetime) -> bool:
        """Whether the table of ``day`` is out at ``now``."""
        if day > now.date() or (day == now.date() and now.time() < self.publish_at):
            return False
        return self.published(table, day)

    def _days(self, table: str, start: date, end: date, now: datetime) -> list[date]:
        out = []
        day = max(start, FIRST_DAY)
        while day <= end:
            if self._out(table, day, now):
                out.append(day)
            day += timedelta(days=1)
        return out

    def _latest(self, table: str, count: int, now: datetime, code: str | None = None) -> list[date]:
        """The ``count`` latest days out at ``now`` (quoting ``code``), ascending."""
        out: list[date] = []
        day = now.date()
        while day >= FIRST_DAY and len(out) < count:
            if self._out(table, day, now) and (code is None or self.rate(code, day, table) is not None):
                out.append(day)
            day -= timedelta(days=1)
        return out[::-1]

    # --- faults ------------------------------------------------------------------------------------------

    def _planned_fault(self, path: str, kinds: tuple[str, ...]) -> _Planned | None:
        with self._lock:
            for planned in self._planned:
                if planned.kind in kinds and planned.remaining > 0 and (
                        planned.path is None or planned.path.search(path)):
                    planned.remaining -= 1
                    if planned.remaining == 0:
                        self._planned.remove(planned)
                    return planned
        return None

    def _transport_timeout(self, path: str) -> bool:
        if self._planned_fault(path, ("timeout",)) is not None:
            return True
        with self._lock:
            return self._rng.random() < self.faults.timeout_rate

    def _app_fault(self, path: str) -> tuple[str | None, float]:
        planned = self._planned_fault(path, FAULT_KINDS)  # in-process the transport took the timeouts already
        if planned is not None:
            default = 10.0 if planned.kind == "timeout" else self.faults.delay_seconds
            return planned.kind, planned.seconds or default
        with self._lock:
            roll, slow = self._rng.random(), self._rng.random()
        if roll < self.faults.error_rate:
            return "5xx", 0.0
        if slow < self.faults.delay_rate:
            return "slow", self.faults.delay_seconds
        return None, 0.0

    # --- WSGI --------------------------------------------------------------------------------------------

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        query = {k.lower(): v[-1] for k, v in
                 parse_qs(environ.get("QUERY_STRING", ""), keep_blank_values=True).items()}
        accept = environ.get("HTTP_ACCEPT")
        exchange = Exchange(path, query, accept)
        with self._lock:
            self.log.append(exchange)
        fault, delay = self._app_fault(path)
        exchange.fault = fault
        if fault == "5xx":
            answer = _Answer(503, "Service Unavailable", "503 Service Unavailable")
        else:
            if fault in ("slow", "timeout") and delay > 0:
                time_module.sleep(delay)
            if environ.get("REQUEST_METHOD") not in ("GET", "HEAD"):
                answer = _Answer(405, "Method Not Allowed", "405 Method Not Allowed")
            else:
                try:
                    answer = self._route(path, query, accept)
                except _Refused as refused:
                    answer = refused.answer
        exchange.status, exchange.body = answer.status, answer.body
        headers = [("Content-Type", answer.content_type), ("Cache-Control", "no-cache"), ("Pragma", "no-cache"),
                   ("Expires", "-1")]
        start_response(f"{answer.status} {answer.reason}", headers)
        return [answer.body.encode("utf-8")]

    def _route(self, path: str, query: Mapping[str, str], accept: str | None) -> _Answer:
        parts = [p for p in path.lower().split("/") if p]
        if len(parts) < 4 or parts[:2] != ["api", "exchangerates"] or parts[2] not in ("rates", "tables"):
            raise _Refused(_Answer(404, "Not Found", NOT_FOUND))
        kind, table, rest = parts[2], parts[3].upper(), parts[4:]
        if len(table) != 1 or table not in "ABC":
            raise _Refused(_Answer(400, "Bad Request", "400 BadRequest"))
        xml = self._wants_xml(query, accept)
        now = self.now()
        if kind == "rates":
            if not rest:
                raise _Refused(_Answer(404, "Not Found", NOT_FOUND))
            code, rest = rest[0].upper(), rest[1:]
            if code not in self.tables.get(table, {}):
                self._select(kind, table, rest, now, None)  # a bad range is a 400 whatever the currency
                raise _no_data()
            days = self._select(kind, table, rest, now, code)
            days = [d for d in days if self.rate(code, d, table) is not None]
            if not days:
                raise _no_data()
            return self._series(table, code, days, xml)
        days = self._select(kind, table, rest, now, None)
        if not days:
            raise _no_data()
        return self._tables(table, days, xml)

    def _select(self, kind: str, table: str, rest: list[str], now: datetime, code: str | None) -> list[date]:
        if table not in self.tables:
            raise _no_data()
        if not rest:
            return self._latest(table, 1, now, code)
        if rest == ["today"]:
            return self._days(table, now.date(), now.date(), now)
        if len(rest) == 2 and rest[0] == "last":
            if not rest[1].isdigit() or int(rest[1]) < 1:
                raise _Refused(_Answer(400, "Bad Request", "400 BadRequest"))
            top = RATES_TOP if kind == "rates" else TABLES_TOP
            if int(rest[1]) > top:
                raise _top_limit(top)
            return self._latest(table, int(rest[1]), now, code)
        if len(rest) in (1, 2):
            try:
                start, end = date.fromisoformat(rest[0]), date.fromisoformat(rest[-1])
            except ValueError:
                raise _invalid_range() from None
            if start > end or end > now.date():
                raise _invalid_range()
            limit = self.limits[kind]
            if (end - start).days > limit:
                raise _days_limit(limit)
            return self._days(table, start, end, now)
        raise _Refused(_Answer(404, "Not Found", NOT_FOUND))

    @staticmethod
    def _wants_xml(query: Mapping[str, str], accept: str | None) -> bool:
        wanted = query.get("format", "").strip().lower()
        if wanted in ("json", "xml"):
            return wanted == "xml"
        for item in (accept or "").split(","):
            media = item.split(";")[0].strip().lower()
            if media in ("application/json", "text/json"):
                return False
            if media in ("application/xml", "text/xml"):
                return True
        return False

    def _series(self, table: str, code: str, days: list[date], xml: bool) -> _Answer:
        name = NAMES.get(code, code)
        rates = [(self.table_no(table, d) or "", d, self.rate(code, d, table)) for d in days]
        if xml:
            items = "".join(f"<Rate><No>{no}</No><EffectiveDate>{d.isoformat()}</EffectiveDate><Mid>{mid}</Mid></Rate>"
                            for no, d, mid in rates)
            body = ('<?xml version="1.0" encoding="utf-8"?><ExchangeRatesSeries xmlns:xsd="http://www.w3.org/2001/'
                    'XMLSchema" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">'
                    f"<Table>{table}</Table><Currency>{escape(name)}</Currency><Code>{code}</Code>"
                    f"<Rates>{items}</Rates></ExchangeRatesSeries>")
            return _Answer(200, "OK", body, "application/xml; charset=utf-8")
        payload = {"table": table, "currency": name, "code": code,
                   "rates": [{"no": no, "effectiveDate": d.isoformat(), "mid": mid} for no, d, mid in rates]}
        return _Answer(200, "OK", _json(payload), "application/json; charset=utf-8")

    def _tables(self, table: str, days: list[date], xml: bool) -> _Answer:
        found = []
        for day in days:
            rates = [(code, mid) for code in self.tables[table] if (mid := self.rate(code, day, table)) is not None]
            found.append((self.table_no(table, day) or "", day, rates))
        if xml:
            tables = "".join(
                f"<ExchangeRatesTable><Table>{table}</Table><No>{no}</No><EffectiveDate>{day.isoformat()}"
                "</EffectiveDate><Rates>" + "".join(
                    f"<Rate><Currency>{escape(NAMES.get(c, c))}</Currency><Code>{c}</Code><Mid>{m}</Mid></Rate>"
                    for c, m in rates) + "</Rates></ExchangeRatesTable>"
                for no, day, rates in found)
            body = ('<?xml version="1.0" encoding="utf-8"?><ArrayOfExchangeRatesTable xmlns:xsd="http://www.w3.org/'
                    '2001/XMLSchema" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">'
                    f"{tables}</ArrayOfExchangeRatesTable>")
            return _Answer(200, "OK", body, "application/xml; charset=utf-8")
        payload = [{"table": table, "no": no, "effectiveDate": day.isoformat(),
                    "rates": [{"currency": NAMES.get(c, c), "code": c, "mid": m} for c, m in rates]}
                   for no, day, rates in found]
        return _Answer(200, "OK", _json(payload), "application/json; charset=utf-8")


class _SimTransport(httpx.BaseTransport):
    """httpx → the WSGI app, with the timeout fault before the request reaches NBP."""

    def __init__(self, sim: NbpSimulator):
        self._sim = sim
        self._inner = httpx.WSGITransport(app=sim)

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if self._sim._transport_timeout(path):
            with self._sim._lock:
                self._sim.log.append(Exchange(path, dict(request.url.params), request.headers.get("Accept"),
                                              fault="timeout"))
            raise httpx.ConnectTimeout("simulated: NBP did not answer", request=request)
        return self._inner.handle_request(request)


__all__ = ["FAULT_KINDS", "NO_DATA", "Exchange", "Faults", "NbpSimulator",
           "table_number"]
