"""NBP's real answers (the digest's captures) as PublishedRates: exact Decimals, the table numbers as NBP wrote
them, and the rate of the last day before a tax point."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

import pytest

from connectors.nbp.mapping import TABLE_A_CODES, NbpFormatError, last_before, loads, published_rates
from hub.kernel.ports.invoicing import PublishedRate

# rates/a/usd/2026-09-28/2026-09-30 (OpenUrzednik.NET, tests/.../Nbp/Fixtures/rates-a-range.json)
RANGE = """{"table":"A","currency":"dolar amerykański","code":"USD","rates":[
 {"no":"188/A/NBP/2026","effectiveDate":"2026-09-28","mid":3.8478},
 {"no":"189/A/NBP/2026","effectiveDate":"2026-09-29","mid":3.8537},
 {"no":"190/A/NBP/2026","effectiveDate":"2026-09-30","mid":3.8449}]}"""
# a single date answers the same shape with one rate [obs, several repos]
SINGLE = ('{"table":"A","currency":"dolar amerykański","code":"USD",'
          '"rates":[{"no":"156/A/NBP/2023","effectiveDate":"2023-08-14","mid":4.0525}]}')


def series(code: str, *rates: tuple[str, str, str], table: str = "A") -> str:
    items = ",".join(f'{{"no":"{no}","effectiveDate":"{day}","mid":{mid}}}' for no, day, mid in rates)
    return f'{{"table":"{table}","currency":"x","code":"{code}","rates":[{items}]}}'


def test_the_captured_range_reads_exactly() -> None:
    rates = published_rates(loads(RANGE), code="usd", table="a")
    assert rates == [
        PublishedRate("USD", date(2026, 9, 28), Decimal("3.8478"), "188/A/NBP/2026"),
        PublishedRate("USD", date(2026, 9, 29), Decimal("3.8537"), "189/A/NBP/2026"),
        PublishedRate("USD", date(2026, 9, 30), Decimal("3.8449"), "190/A/NBP/2026"),
    ]
    assert all(type(r.mid) is Decimal for r in rates)
    assert [str(r.mid) for r in rates] == ["3.8478", "3.8537", "3.8449"]


def test_a_single_date_reads_the_same_way() -> None:
    (rate,) = published_rates(loads(SINGLE.encode()))
    assert rate == PublishedRate("USD", date(2023, 8, 14), Decimal("4.0525"), "156/A/NBP/2023")


@pytest.mark.parametrize(("code", "mid"), [
    ("GBP", "4.9790"),  # trailing zeros are kept in the text: they stay
    ("EUR", "4.2537"),
    ("HUF", "0.011937"),  # six decimals, PLN for ONE forint
    ("JPY", "0.022848"),
    ("IDR", "0.00020367"),  # eight decimals
    ("AUD", "2.6818"),
])
def test_every_digit_nbp_wrote_is_kept(code: str, mid: str) -> None:
    (rate,) = published_rates(loads(series(code, ("001/A/NBP/2026", "2026-01-02", mid))))
    assert str(rate.mid) == mid and rate.mid == Decimal(mid)


def test_early_table_numbers_are_kept_as_written() -> None:
    body = '{"table":"A","code":"USD","rates":[{"no":"1/A/NBP/2002","effectiveDate":"2002-01-02","mid":3.9480}]}'
    (rate,) = published_rates(loads(body))  # no "currency" in the earliest series: not needed
    assert rate.table_no == "1/A/NBP/2002" and str(rate.mid) == "3.9480"


def test_an_integer_mid_is_a_decimal_too() -> None:
    (rate,) = published_rates(loads(series("XDR", ("001/A/NBP/2026", "2026-01-02", "5"))))
    assert rate.mid == Decimal(5) and type(rate.mid) is Decimal


def test_last_before_never_takes_the_day_itself() -> None:
    rates = published_rates(loads(RANGE))
    assert last_before(rates, date(2026, 9, 30)).effective_date == date(2026, 9, 29)  # type: ignore[union-attr]
    assert last_before(rates, date(2026, 10, 1)).table_no == "190/A/NBP/2026"  # type: ignore[union-attr]
    assert last_before(rates, date(2026, 9, 28)) is None
    assert last_before([], date(2026, 10, 1)) is None


def test_rates_are_ordered_whatever_order_they_came_in() -> None:
    body = series("USD", ("190/A/NBP/2026", "2026-09-30", "3.8449"), ("188/A/NBP/2026", "2026-09-28", "3.8478"))
    rates = published_rates(loads(body))
    assert [r.table_no for r in rates] == ["188/A/NBP/2026", "190/A/NBP/2026"]
    assert last_before(reversed(rates), date(2026, 10, 1)).table_no == "190/A/NBP/2026"  # type: ignore[union-attr]


@pytest.mark.parametrize(("body", "message"), [
    ([], "not an object with rates"),
    ({"table": "A", "rates": []}, "no currency code"),
    ({"table": "A", "code": "USD"}, "has no rates list"),
    ({"table": "A", "code": "USD", "rates": [1]}, r"rates\[0\] is 1, not an object"),
    ({"table": "A", "code": "USD", "rates": [{"effectiveDate": "2026-01-02", "mid": Decimal(1)}]},
     r"rates\[0\].no is None"),
    ({"table": "A", "code": "USD", "rates": [{"no": "1/A/NBP/2026", "effectiveDate": "2.1.2026",
                                              "mid": Decimal(1)}]}, "not a YYYY-MM-DD date"),
    ({"table": "A", "code": "USD", "rates": [{"no": "1/A/NBP/2026", "effectiveDate": "2026-01-02",
                                              "mid": "4.1"}]}, "not a decimal number"),
    ({"table": "A", "code": "USD", "rates": [{"no": "1/A/NBP/2026", "effectiveDate": "2026-01-02",
                                              "mid": Decimal("-1")}]}, "not a positive rate"),
    # a float means the body was parsed without loads(): its digits may already be lost
    ({"table": "A", "code": "USD", "rates": [{"no": "1/A/NBP/2026", "effectiveDate": "2026-01-02",
                                              "mid": 3.8449}]}, "not a decimal number"),
])
def test_what_cannot_be_read_names_the_field(body: Any, message: str) -> None:
    with pytest.raises(NbpFormatError, match=message):
        published_rates(body)


def test_the_table_and_code_must_be_the_ones_asked_for() -> None:
    body = loads(RANGE)
    with pytest.raises(NbpFormatError, match="answered table 'A' when asked for table B"):
        published_rates(body, code="USD", table="B")
    with pytest.raises(NbpFormatError, match="answered the rates of USD when asked for EUR"):
        published_rates(body, code="eur")


@pytest.mark.parametrize("text", ["<html>", '{"mid": NaN}', '{"mid": Infinity}', b"\xff\xfe{"])
def test_loads_refuses_what_is_not_json_or_no_number(text: str | bytes) -> None:
    with pytest.raises(NbpFormatError, match="not JSON"):
        loads(text)


def test_table_a_of_2026_has_32_currencies() -> None:
    assert len(TABLE_A_CODES) == len(set(TABLE_A_CODES)) == 32
    assert "BGN" not in TABLE_A_CODES and "EUR" in TABLE_A_CODES
