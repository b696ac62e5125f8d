"""The simulator behaves as the digest says NBP does: its calendar and table numbers (checked against real
captures), its error bodies and limits, its formats, today's table, and its faults."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import date, datetime
from decimal import Decimal

import httpx
import pytest

from connectors.nbp.mapping import loads, published_rates
from connectors.nbp.simulator import NO_DATA, WARSAW, NbpSimulator, table_number
from hub.kernel.calendar import easter, polish_holidays

INVALID_RANGE = "400 BadRequest - Błędny zakres dat / Invalid date range"


@pytest.fixture
def api(sim: NbpSimulator) -> Iterator[httpx.Client]:
    with httpx.Client(transport=sim.transport(), base_url="https://nbp.test/api") as client:
        yield client


def test_easter_and_the_holidays_moving_with_it() -> None:
    assert [easter(y) for y in (2024, 2025, 2026, 2027)] == [date(2024, 3, 31), date(2025, 4, 20), date(2026, 4, 5),
                                                            date(2027, 3, 28)]
    days = polish_holidays(2026)
    assert {date(2026, 4, 6), date(2026, 6, 4)} <= days  # Easter Monday, Corpus Christi
    assert {date(2026, 1, 1), date(2026, 1, 6), date(2026, 5, 1), date(2026, 5, 3), date(2026, 8, 15),
            date(2026, 11, 1), date(2026, 11, 11), date(2026, 12, 24), date(2026, 12, 25), date(2026, 12, 26)} <= days
    assert date(2024, 12, 24) not in polish_holidays(2024)  # a day off only from 2025
    assert date(2026, 4, 3) not in days  # Good Friday is a working day


@pytest.mark.parametrize(("day", "number"), [  # the table numbers of the digest's real captures
    (date(2026, 9, 28), "188/A/NBP/2026"),
    (date(2026, 9, 30), "190/A/NBP/2026"),
    (date(2026, 5, 29), "103/A/NBP/2026"),
    (date(2025, 12, 12), "241/A/NBP/2025"),
    (date(2023, 8, 14), "156/A/NBP/2023"),
    (date(2023, 6, 7), "109/A/NBP/2023"),
    (date(2002, 1, 2), "1/A/NBP/2002"),
])
def test_table_numbers_count_working_days_as_nbps_did(sim: NbpSimulator, day: date, number: str) -> None:
    assert sim.table_no("A", day) == number


def test_table_numbers_restart_each_year_and_skip_days_off(sim: NbpSimulator) -> None:
    assert sim.table_no("A", date(2026, 1, 2)) == "001/A/NBP/2026"
    assert sim.table_no("A", date(2026, 1, 1)) is None and sim.table_no("A", date(2026, 1, 3)) is None
    assert sim.table_no("A", date(2026, 4, 6)) is None  # Easter Monday
    assert sim.table_no("B", date(2026, 1, 7)) == "001/B/NBP/2026"  # the first Wednesday
    assert sim.table_no("B", date(2026, 1, 8)) is None
    assert table_number("A", 7, 2004) == "7/A/NBP/2004" and table_number("C", 7, 2026) == "007/C/NBP/2026"
    shifted = NbpSimulator(days_off=[date(2026, 1, 2)])
    assert shifted.table_no("A", date(2026, 1, 5)) == "001/A/NBP/2026"


def test_a_range_answers_the_published_days_in_order(sim: NbpSimulator, api: httpx.Client) -> None:
    answer = api.get("/exchangerates/rates/a/usd/2026-09-25/2026-09-30/", params={"format": "json"})
    assert answer.status_code == 200 and answer.headers["Content-Type"] == "application/json; charset=utf-8"
    assert answer.headers["Cache-Control"] == "no-cache"
    body = loads(answer.content)
    assert (body["table"], body["code"], body["currency"]) == ("A", "USD", "dolar amerykański")
    assert [(r["no"], r["effectiveDate"]) for r in body["rates"]] == [
        ("187/A/NBP/2026", "2026-09-25"), ("188/A/NBP/2026", "2026-09-28"), ("189/A/NBP/2026", "2026-09-29"),
        ("190/A/NBP/2026", "2026-09-30")]
    assert all(r["mid"] == sim.rate("USD", date.fromisoformat(r["effectiveDate"])) for r in body["rates"])


def test_mid_is_a_bare_number_with_its_trailing_zeros(sim: NbpSimulator, api: httpx.Client) -> None:
    sim.set_rate("EUR", date(2026, 9, 25), "4.2500")
    answer = api.get("/exchangerates/rates/A/EUR/2026-09-25")  # upper case, no slash: NBP takes both
    assert '"mid":4.2500}' in answer.text
    assert str(published_rates(loads(answer.content))[0].mid) == "4.2500"


@pytest.mark.parametrize("path", [
    "/exchangerates/rates/a/eur/2026-09-27/",  # a Sunday
    "/exchangerates/rates/a/eur/2026-09-26/2026-09-27/",  # a weekend
    "/exchangerates/rates/a/eur/2026-04-06/",  # Easter Monday
    "/exchangerates/rates/a/afn/2026-09-01/2026-09-30/",  # not in table A
    "/exchangerates/tables/a/2025-11-11/",  # Independence Day (a Tuesday)
    "/exchangerates/rates/a/eur/2001-12-01/2001-12-31/",  # before 2 January 2002
    "/exchangerates/rates/c/usd/2026-09-30/",  # table C is not simulated
])
def test_no_data_is_nbps_404(api: httpx.Client, path: str) -> None:
    answer = api.get(path)
    assert (answer.status_code, answer.text) == (404, NO_DATA)
    assert answer.headers["Content-Type"] == "text/plain; charset=utf-8"


@pytest.mark.parametrize(("path", "body"), [
    ("/exchangerates/rates/a/eur/2026-09-30/2026-09-01/", INVALID_RANGE),  # start after end
    ("/exchangerates/rates/a/eur/2026-10-02/", INVALID_RANGE),  # tomorrow
    ("/exchangerates/rates/a/eur/2026-09-01/2026-10-02/", INVALID_RANGE),  # ends tomorrow
    ("/exchangerates/rates/a/xyz/2026-09-30/2026-09-01/", INVALID_RANGE),  # whatever the currency
    ("/exchangerates/rates/a/eur/2026-13-01/", INVALID_RANGE),
    ("/exchangerates/rates/a/eur/2025-09-27/2026-09-30/",
     "400 BadRequest - Przekroczony limit 367 dni / Limit of 367 days has been exceeded"),
    ("/exchangerates/tables/a/2026-06-28/2026-09-30/",
     "400 BadRequest - Przekroczony limit 93 dni / Limit of 93 days has been exceeded"),
    ("/exchangerates/rates/a/eur/last/256/",
     "400 BadRequest - Przekroczony limit 255 wyników / Maximum size of 255 data series has been exceeded"),
    ("/exchangerates/tables/a/last/68/",
     "400 BadRequest - Przekroczony limit 67 wyników / Maximum size of 67 data series has been exceeded"),
])
def test_bad_requests_are_nbps_400(api: httpx.Client, path: str, body: str) -> None:
    answer = api.get(path)
    assert (answer.status_code, answer.text) == (400, body)


def test_the_range_limits_are_end_minus_start(api: httpx.Client) -> None:
    assert api.get("/exchangerates/rates/a/eur/2025-09-29/2026-10-01/").status_code == 200  # 367 days apart
    assert api.get("/exchangerates/rates/a/eur/2025-09-28/2026-10-01/").status_code == 400  # 368
    assert api.get("/exchangerates/tables/a/2026-06-30/2026-10-01/").status_code == 200  # 93
    assert api.get("/exchangerates/tables/a/2026-06-29/2026-10-01/").status_code == 400  # 94
    assert len(loads(api.get("/exchangerates/rates/a/eur/last/255/").content)["rates"]) == 255
    assert len(loads(api.get("/exchangerates/tables/a/last/67/").content)) == 67


def test_tables_answer_an_array_even_for_one_day(sim: NbpSimulator, api: httpx.Client) -> None:
    (table,) = loads(api.get("/exchangerates/tables/a/2026-09-30/").content)
    assert (table["table"], table["no"], table["effectiveDate"]) == ("A", "190/A/NBP/2026", "2026-09-30")
    assert [r["code"] for r in table["rates"]][:3] == ["THB", "USD", "AUD"]
    assert "BGN" not in [r["code"] for r in table["rates"]]  # gone from table A in 2026
    (old,) = loads(api.get("/exchangerates/tables/a/2025-12-31/").content)
    assert "BGN" in [r["code"] for r in old["rates"]]


def test_todays_table_comes_at_publication_time(sim: NbpSimulator, api: httpx.Client) -> None:
    sim.set_now(datetime(2026, 10, 1, 11, 50, tzinfo=WARSAW))
    assert api.get("/exchangerates/rates/a/eur/today/").status_code == 404
    assert loads(api.get("/exchangerates/rates/a/eur/").content)["rates"][0]["effectiveDate"] == "2026-09-30"
    sim.set_now(datetime(2026, 10, 1, 12, 0, tzinfo=WARSAW))
    assert loads(api.get("/exchangerates/rates/a/eur/today/").content)["rates"][0]["no"] == "191/A/NBP/2026"
    body = loads(api.get("/exchangerates/rates/a/eur/last/3/").content)
    assert [r["effectiveDate"] for r in body["rates"]] == ["2026-09-29", "2026-09-30", "2026-10-01"]


def test_xml_by_query_or_accept_header(sim: NbpSimulator, api: httpx.Client) -> None:
    by_query = api.get("/exchangerates/rates/a/usd/2026-09-30/", params={"format": "xml"})
    by_header = api.get("/exchangerates/rates/a/usd/2026-09-30/", headers={"Accept": "application/xml"})
    assert by_query.text == by_header.text
    assert by_query.headers["Content-Type"] == "application/xml; charset=utf-8"
    mid = sim.rate("USD", date(2026, 9, 30))
    assert by_query.text == (
        '<?xml version="1.0" encoding="utf-8"?><ExchangeRatesSeries xmlns:xsd="http://www.w3.org/2001/XMLSchema" '
        'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><Table>A</Table><Currency>dolar amerykański'
        '</Currency><Code>USD</Code><Rates><Rate><No>190/A/NBP/2026</No><EffectiveDate>2026-09-30</EffectiveDate>'
        f"<Mid>{mid}</Mid></Rate></Rates></ExchangeRatesSeries>")
    tables = api.get("/exchangerates/tables/a/2026-09-30/", headers={"Accept": "application/xml"}).text
    assert tables.startswith('<?xml version="1.0" encoding="utf-8"?><ArrayOfExchangeRatesTable')
    assert "<No>190/A/NBP/2026</No>" in tables
    # the query wins over the header; no format at all is JSON
    assert api.get("/exchangerates/rates/a/usd/2026-09-30/", params={"format": "json"},
                   headers={"Accept": "application/xml"}).text.startswith("{")
    assert api.get("/exchangerates/rates/a/usd/2026-09-30/", headers={"Accept": "*/*"}).text.startswith("{")


def test_a_path_nbp_does_not_have_is_a_plain_404(api: httpx.Client) -> None:
    answer = api.get("/exchangerates/rate/a/usd/")
    assert answer.status_code == 404 and "Brak danych" not in answer.text


def test_faults_on_demand(sim: NbpSimulator, api: httpx.Client) -> None:
    sim.inject("5xx", path="/usd/", times=2)
    assert [api.get("/exchangerates/rates/a/usd/2026-09-30/").status_code for _ in range(3)] == [503, 503, 200]
    assert api.get("/exchangerates/rates/a/eur/2026-09-30/").status_code == 200
    sim.inject("timeout")
    with pytest.raises(httpx.ConnectTimeout):
        api.get("/exchangerates/rates/a/eur/2026-09-30/")
    with pytest.raises(ValueError, match="unknown fault"):
        sim.inject("lost")
    sim.inject("5xx", times=9)
    sim.clear_faults()
    assert api.get("/exchangerates/rates/a/eur/2026-09-30/").status_code == 200
    assert [e.fault for e in sim.requests()] == ["5xx", "5xx", None, None, "timeout", None]


def test_random_faults_are_seeded() -> None:
    from connectors.nbp.simulator import Faults

    def statuses(seed: int) -> list[int]:
        sim = NbpSimulator(seed=seed)
        sim.faults = Faults(error_rate=0.5)
        with httpx.Client(transport=sim.transport(), base_url="https://nbp.test/api") as client:
            return [client.get("/exchangerates/rates/a/usd/2026-09-30/").status_code for _ in range(20)]

    first = statuses(7)
    assert first == statuses(7) and {200, 503} == set(first)


def test_the_rates_are_deterministic_and_near_the_base() -> None:
    one, two = NbpSimulator(), NbpSimulator({"EUR": "4.3000"})
    day = date(2026, 9, 30)
    assert one.rate("EUR", day) == NbpSimulator().rate("EUR", day)
    assert abs(two.rate("EUR", day) - Decimal("4.3000")) <= Decimal("0.0860")  # type: ignore[operator]
    assert two.rate("USD", day) is None  # not among its currencies
    assert one.rate("EUR", date(2026, 10, 5)) is not None  # a day to come: what it will publish


def test_concurrent_requests(sim: NbpSimulator) -> None:
    sim.inject("5xx", times=10)
    statuses: list[int] = []
    lock = threading.Lock()

    def hammer() -> None:
        with httpx.Client(transport=sim.transport(), base_url="https://nbp.test/api") as client:
            for _ in range(10):
                status = client.get("/exchangerates/rates/a/usd/2026-09-01/2026-09-30/").status_code
                with lock:
                    statuses.append(status)

    threads = [threading.Thread(target=hammer) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)
    assert len(statuses) == len(sim.requests()) == 60
    assert statuses.count(503) == 10 and statuses.count(200) == 50
