"""The port against the simulator: the rate of the last working day before a tax point (art. 31a ust. 1),
across weekends, Easter, holidays and New Year; currencies NBP does not publish; faults; the window widened;
today's table before it is out; and the simulator served on loopback."""

from __future__ import annotations

import threading
from datetime import date, datetime, timedelta
from decimal import Decimal

import httpx
import pytest
from nbp_testkit import rates_on, wired

from connectors.nbp.client import NbpUnavailable
from connectors.nbp.rates import RateNotPublishedYet
from connectors.nbp.simulator import WARSAW, NbpSimulator
from hub.kernel.errors import PermanentError, RetryableError
from hub.kernel.ports.invoicing import PublishedRate

LATER = datetime(2027, 2, 1, 14, 0, tzinfo=WARSAW)  # every day these tests ask about is past


def warsaw(year: int, month: int, day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=WARSAW)


@pytest.mark.parametrize(("tax_point", "rate_of", "why"), [
    (date(2026, 9, 28), date(2026, 9, 25), "a Monday takes Friday's"),
    (date(2026, 9, 27), date(2026, 9, 25), "a Sunday takes Friday's"),
    (date(2026, 9, 30), date(2026, 9, 29), "a working day takes the day before, never its own"),
    (date(2026, 4, 7), date(2026, 4, 3), "the day after Easter Monday takes Good Friday's (a working day)"),
    (date(2026, 4, 6), date(2026, 4, 3), "Easter Monday"),
    (date(2026, 6, 5), date(2026, 6, 3), "the day after Corpus Christi"),
    (date(2026, 11, 12), date(2026, 11, 10), "the day after Independence Day"),
    (date(2026, 1, 7), date(2026, 1, 5), "the day after Epiphany"),
    (date(2026, 1, 1), date(2025, 12, 31), "1 January takes the last day of the old year"),
    (date(2026, 1, 2), date(2025, 12, 31), "2 January: 1 January is a holiday"),
    (date(2027, 1, 1), date(2026, 12, 31), "1 January 2027"),
    (date(2025, 12, 29), date(2025, 12, 23), "after Christmas: 24 December is a day off from 2025"),
])
def test_the_rate_of_the_last_working_day_before(sim: NbpSimulator, tax_point: date, rate_of: date, why: str) -> None:
    sim.set_now(LATER)
    rate = wired(sim).rate_before("EUR", tax_point)
    assert rate == PublishedRate("EUR", rate_of, sim.rate("EUR", rate_of), sim.table_no("A", rate_of)), why
    (request,) = sim.requests()
    assert request.path == (f"/api/exchangerates/rates/a/eur/{(tax_point - timedelta(days=14)).isoformat()}/"
                            f"{(tax_point - timedelta(days=1)).isoformat()}/")
    assert request.query == {"format": "json"} and request.accept == "application/json"


def test_the_rate_is_the_exact_decimal_nbp_published(sim: NbpSimulator) -> None:
    sim.set_rate("GBP", date(2026, 9, 25), "4.9790")
    rate = wired(sim).rate_before("gbp", date(2026, 9, 28))
    assert str(rate.mid) == "4.9790" and rate.table_no == "187/A/NBP/2026" and rate.currency == "GBP"


def test_six_and_eight_decimal_currencies(sim: NbpSimulator) -> None:
    rates = wired(sim)
    assert rates.rate_before("HUF", date(2026, 9, 28)).mid.as_tuple().exponent == -6
    assert rates.rate_before("IDR", date(2026, 9, 28)).mid.as_tuple().exponent == -8


def test_a_currency_table_a_does_not_publish(sim: NbpSimulator) -> None:
    with pytest.raises(PermanentError) as caught:
        wired(sim).rate_before("AFN", date(2026, 9, 28))
    assert str(caught.value).startswith("NBP published no rate for AFN in table A in the 31 days before 2026-09-28: "
                                        "AFN is not among the 32 currencies of table A in 2026")
    assert [e.status for e in sim.requests()] == [404, 404]


def test_a_currency_that_left_table_a(sim: NbpSimulator) -> None:
    sim.set_now(LATER)
    rates = wired(sim)
    assert rates.rate_before("BGN", date(2025, 12, 15)).effective_date == date(2025, 12, 12)
    with pytest.raises(PermanentError, match="NBP published no rate for BGN in table A in the 31 days before"):
        rates.rate_before("BGN", date(2026, 3, 2))


def test_table_b_is_published_on_wednesdays(sim: NbpSimulator) -> None:
    rate = wired(sim, table="B").rate_before("AFN", date(2026, 9, 28))
    assert rate.effective_date == date(2026, 9, 23) and rate.table_no == sim.table_no("B", date(2026, 9, 23))
    assert rate.table_no.endswith("/B/NBP/2026")


def test_5xx_then_success_is_retried(sim: NbpSimulator) -> None:
    sim.inject("5xx", times=2)
    rate = wired(sim, attempts=3).rate_before("USD", date(2026, 9, 28))
    assert rate.effective_date == date(2026, 9, 25)
    assert [(e.status, e.fault) for e in sim.requests()] == [(503, "5xx"), (503, "5xx"), (200, None)]


def test_a_timeout_then_success_is_retried(sim: NbpSimulator) -> None:
    sim.inject("timeout", path=r"/rates/a/usd/")
    assert wired(sim).rate_before("USD", date(2026, 9, 28)).effective_date == date(2026, 9, 25)
    assert [(e.status, e.fault) for e in sim.requests()] == [(0, "timeout"), (200, None)]


def test_5xx_on_every_attempt_is_retryable(sim: NbpSimulator) -> None:
    sim.inject("5xx", times=5)
    with pytest.raises(NbpUnavailable, match=r"HTTP 503 .* \(after 2 attempts\)") as caught:
        wired(sim, attempts=2).rate_before("USD", date(2026, 9, 28))
    assert isinstance(caught.value, RetryableError) and len(sim.requests()) == 2


def test_a_window_without_any_table_is_widened_once() -> None:
    tax_point = date(2026, 9, 28)
    quiet = [tax_point - timedelta(days=n) for n in range(1, 21)]  # 20 days without a table
    sim = NbpSimulator(days_off=quiet)
    rate = wired(sim).rate_before("EUR", tax_point)
    assert rate.effective_date == date(2026, 9, 7)  # the Monday 21 days before
    assert [(e.path, e.status) for e in sim.requests()] == [
        ("/api/exchangerates/rates/a/eur/2026-09-14/2026-09-27/", 404),
        ("/api/exchangerates/rates/a/eur/2026-08-28/2026-09-27/", 200),
    ]


def test_a_widened_window_without_a_table_is_no_rate() -> None:
    tax_point = date(2026, 9, 28)
    sim = NbpSimulator(days_off=[tax_point - timedelta(days=n) for n in range(1, 40)])
    with pytest.raises(PermanentError, match=r"^NBP published no rate for EUR in table A in the 31 days before "
                                             r"2026-09-28$"):
        wired(sim).rate_before("EUR", tax_point)
    assert len(sim.requests()) == 2


def test_a_past_days_rate_is_asked_for_once(sim: NbpSimulator) -> None:
    rates = wired(sim)
    first = rates.rate_before("EUR", date(2026, 9, 28))
    assert rates.rate_before("eur", date(2026, 9, 28)) is first
    rates.rate_before("USD", date(2026, 9, 28))
    assert len(sim.requests()) == 2


def test_tomorrows_tax_point_waits_for_todays_table(sim: NbpSimulator) -> None:
    rates = wired(sim)
    sim.set_now(warsaw(2026, 10, 1, 10, 0))  # a Thursday morning: its table comes at noon
    with pytest.raises(RateNotPublishedYet) as caught:
        rates.rate_before("EUR", date(2026, 10, 2))
    assert caught.value.retry_after == 2.5 * 3600  # until published_by, 12:30 Warsaw
    assert "may be today's (2026-10-01)" in str(caught.value)
    sim.set_now(warsaw(2026, 10, 1, 12, 5))  # out (the simulator publishes at 12:00)
    assert rates.rate_before("EUR", date(2026, 10, 2)).effective_date == date(2026, 10, 1)
    sim.set_now(warsaw(2026, 10, 1, 12, 45))
    assert rates.rate_before("EUR", date(2026, 10, 2)).table_no == "191/A/NBP/2026"
    assert len(sim.requests()) == 3  # a window reaching today is never kept


def test_on_a_weekend_or_a_holiday_no_table_is_waited_for(sim: NbpSimulator) -> None:
    rates = wired(sim)
    sim.set_now(warsaw(2026, 10, 3, 9, 0))  # Saturday morning
    assert rates.rate_before("EUR", date(2026, 10, 4)).effective_date == date(2026, 10, 2)
    sim.set_now(warsaw(2026, 11, 11, 10, 0))  # Independence Day, a Wednesday: before 12:30 nobody knows
    with pytest.raises(RateNotPublishedYet):
        rates.rate_before("EUR", date(2026, 11, 12))
    sim.set_now(warsaw(2026, 11, 11, 13, 0))  # none came: the last working day was Tuesday
    assert rates.rate_before("EUR", date(2026, 11, 12)).effective_date == date(2026, 11, 10)


def test_a_tax_point_days_ahead_is_not_known_yet(sim: NbpSimulator) -> None:
    with pytest.raises(RateNotPublishedYet, match="the rate of EUR before 2026-10-10 is not known yet") as caught:
        wired(sim).rate_before("EUR", date(2026, 10, 10))
    assert caught.value.retry_after == (warsaw(2026, 10, 9, 12, 30) - warsaw(2026, 10, 1, 14, 0)).total_seconds()
    assert sim.requests() == []


def test_worker_threads_share_one_port(sim: NbpSimulator) -> None:
    rates = wired(sim)
    codes = ["EUR", "USD", "GBP", "CHF", "CZK", "JPY", "HUF", "SEK"]
    found: dict[str, PublishedRate] = {}
    errors: list[BaseException] = []

    def ask(code: str) -> None:
        try:
            for _ in range(3):
                found[code] = rates.rate_before(code, date(2026, 9, 28))
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=ask, args=(code,)) for code in codes]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)
    assert errors == []
    assert {c: r.mid for c, r in found.items()} == {c: sim.rate(c, date(2026, 9, 25)) for c in codes}
    assert 8 <= len(sim.requests()) <= 24


def test_served_on_loopback(sim: NbpSimulator) -> None:
    api_url = sim.serve()
    assert api_url.startswith("http://127.0.0.1:") and api_url.endswith("/api")
    rates = rates_on(None, api_url=api_url, request_timeout=0.3, clock=sim.now)
    try:
        assert rates.rate_before("EUR", date(2026, 9, 28)).table_no == "187/A/NBP/2026"
        sim.inject("timeout", seconds=0.8)  # served: the answer comes after the client gave up
        assert rates.rate_before("USD", date(2026, 9, 28)).mid == sim.rate("USD", date(2026, 9, 25))
        assert [e.fault for e in sim.requests(r"/usd/")] == ["timeout", None]
        answer = httpx.get(f"{api_url}/exchangerates/rates/a/eur/2026-09-27/")
        assert (answer.status_code, answer.reason_phrase, answer.text) == (
            404, "Not Found - Brak danych", "404 NotFound - Not Found - Brak danych")
    finally:
        rates.close()
        sim.stop()


def test_the_simulators_rates_are_decimals_with_the_currencys_decimals(sim: NbpSimulator) -> None:
    assert sim.rate("EUR", date(2026, 9, 25)) == wired(sim).rate_before("EUR", date(2026, 9, 28)).mid
    assert isinstance(sim.rate("EUR", date(2026, 9, 25)), Decimal)
    assert sim.rate("EUR", date(2026, 9, 26)) is None  # a Saturday


def test_table_b_waits_only_on_wednesdays(sim: NbpSimulator) -> None:
    rates = wired(sim, table="B")
    sim.set_now(warsaw(2026, 10, 1, 10, 0))  # Thursday morning: no table B comes today
    assert rates.rate_before("AFN", date(2026, 10, 2)).effective_date == date(2026, 9, 30)
    sim.set_now(warsaw(2026, 9, 30, 10, 0))  # Wednesday morning: it does
    with pytest.raises(RateNotPublishedYet):
        rates.rate_before("AFN", date(2026, 10, 1))
