"""hub.catalog.feed_rules: the spellings ERP exports really use are accepted, every bad field is reported."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from stdnum import ean as gtin

from hub.catalog import feed_rules
from hub.catalog.feed_rules import (
    COLUMNS,
    REQUIRED_COLUMNS,
    FeedRules,
    ParsedRow,
    check_header,
    missing_columns,
    parse_decimal,
    parse_feed_row,
    parse_row,
    records,
)
from hub.kernel.ports.erp import FeedRow, PriceRecord, ProductRecord, RejectedRecord, StockRecord
from hub.kernel.vat import CATALOGUE_CODES, VAT_CODES

SRC = "feed.csv:2"
GOOD: dict[str, Any] = {
    "sku": "KUB-001", "name": "Kubek „Żółć”", "stock": "5", "price_gross": "19,99", "vat_rate": "23",
}


def parse(**overrides: Any) -> ParsedRow | list[RejectedRecord]:
    return parse_row({**GOOD, **overrides}, erp="erp", source=SRC)


def ok(**overrides: Any) -> ParsedRow:
    result = parse(**overrides)
    assert isinstance(result, ParsedRow), result
    return result


def rejected(**overrides: Any) -> dict[str, RejectedRecord]:
    result = parse(**overrides)
    assert isinstance(result, list), result
    return {r.field: r for r in result}


def test_a_good_row_gives_the_three_records() -> None:
    row = ok(sku="  KUB-001 ", ean="5901234123457", cost_net="12,5", weight_kg="0,35", warehouse=" Sklep ")
    assert row.product == ProductRecord("KUB-001", "Kubek „Żółć”", "23", "5901234123457", Decimal("0.35"))
    assert row.stock == StockRecord("KUB-001", "Sklep", 5)
    assert row.price == PriceRecord("KUB-001", Decimal("19.99"), "PLN", Decimal("12.5"))
    assert row.erp == "erp" and row.source == SRC and row.key == ("KUB-001", "Sklep")


def test_defaults_for_optional_columns() -> None:
    row = ok(ean="", cost_net=" ", currency="", weight_kg=None, warehouse="")
    assert (row.product.ean, row.product.weight_kg, row.price.cost_net) == (None, None, None)
    assert row.price.currency == "PLN" and row.stock.warehouse == "default"


@pytest.mark.parametrize(("raw", "expected"), [
    ("5", 5), ("5,0", 5), ("5.0", 5), (" 1 200 ", 1200), ("1\u00a0200", 1200), (7, 7), (Decimal("3.000"), 3),
    ("0", 0), ("-0", 0),
])
def test_stock_spellings(raw: Any, expected: int) -> None:
    assert ok(stock=raw).stock.quantity == expected


@pytest.mark.parametrize(("raw", "reason"), [
    ("2.5", "whole number"), ("2,5", "whole number"), ("-1", "negative"), ("abc", "not a number"),
    ("", "required"), (True, "true/false"), ("1e3", "not a number"), ("NaN", "not a number"),
    ("99999999999", "too large"),
])
def test_bad_stock(raw: Any, reason: str) -> None:
    bad = rejected(stock=raw)["stock"]
    assert reason in bad.reason and bad.value == ("" if raw == "" else str(raw)) and bad.sku == "KUB-001"


@pytest.mark.parametrize(("raw", "expected"), [
    ("19,99", "19.99"), ("19.99", "19.99"), ("1 299,00", "1299.00"), ("1\u00a0299,00", "1299.00"),
    ("1\u202f299,5", "1299.50"), ("1.299,00", "1299.00"), ("1,299.00", "1299.00"), ("19.9900", "19.99"),
    (Decimal("7"), "7.00"), (25, "25.00"), (19.99, "19.99"), ("+5", "5.00"), (",5", "0.50"),
])
def test_price_spellings(raw: Any, expected: str) -> None:
    price = ok(price_gross=raw).price.price_gross
    assert price == Decimal(expected) and str(price) == expected


@pytest.mark.parametrize(("raw", "reason"), [
    ("0", "greater than zero"), ("-1,00", "greater than zero"), ("19,999", "2 decimal places"),
    ("1.299", "2 decimal places"),  # ambiguous: read as 1.299, refused rather than misread
    ("19,99 zł", "not a number"), ("1 29,00", "not a number"), ("1,2,3", "not a number"), ("\u0663", "not a number"),
    (float("inf"), "finite"), ("1e12", "not a number"), ("1000000000000", "too large"),
])
def test_bad_price(raw: Any, reason: str) -> None:
    assert reason in rejected(price_gross=raw)["price_gross"].reason


@pytest.mark.parametrize(("raw", "code"), [
    ("23", "23"), ("23%", "23"), (" 23 % ", "23"), ("23.00", "23"), ("23,0", "23"), (23, "23"), ("8", "8"),
    ("5%", "5"), ("0", "0"), ("0%", "0"), (Decimal("8.00"), "8"), (23.0, "23"), ("ZW", "zw"), ("zw", "zw"),
    ("zw.", "zw"), ("NP", "np"), ("np", "np"),
])
def test_vat_spellings(raw: Any, code: str) -> None:
    assert ok(vat_rate=raw).product.vat_rate == code


def test_the_feed_takes_the_catalogue_codes_of_hub_kernel_vat() -> None:
    for code in VAT_CODES:
        if code in CATALOGUE_CODES:
            assert ok(vat_rate=code).product.vat_rate == code
        else:  # "oo": an invoice's, never a product's
            assert "not a Polish VAT rate (23, 8, 5, 0, zw, np)" in rejected(vat_rate=code)["vat_rate"].reason


@pytest.mark.parametrize(("raw", "reason"), [
    ("22", "not a Polish VAT rate"), ("oo", "not a Polish VAT rate"), ("7%", "not a Polish VAT rate"),
    ("23.5", "not a Polish VAT rate"), ("0.23", "fraction; write the percentage (23)"), ("VAT", "not a Polish"),
    (True, "not a Polish"), ("0,08", "percentage (8)"), ("0.5", "not a Polish VAT rate"),
])
def test_bad_vat(raw: str, reason: str) -> None:
    assert reason in rejected(vat_rate=raw)["vat_rate"].reason


@pytest.mark.parametrize("raw", ["5901234123457", "96385074", "036000291452", "10012345678902", " 5901234-123457 "])
def test_ean_lengths_and_spacing(raw: str) -> None:
    assert ok(ean=raw).product.ean == raw.strip().replace("-", "")


@pytest.mark.parametrize(("raw", "reason"), [
    ("5901234123458", "check digit"), ("59012341234", "8, 12, 13 or 14 digits"),
    ("5,90123E+12", "scientific notation"), ("ABCDEFGH", "digits only"), (Decimal("5901234123457.0"), "as digits"),
])
def test_bad_ean(raw: Any, reason: str) -> None:
    assert reason in rejected(ean=raw)["ean"].reason


def test_other_optional_fields() -> None:
    row = ok(currency=" eur ", cost_net="0", weight_kg="0,001")
    assert row.price.currency == "EUR" and row.price.cost_net == 0 and row.product.weight_kg == Decimal("0.001")
    bad = rejected(currency="zł", cost_net="-1", weight_kg="0,0001", warehouse="x" * 101)
    assert set(bad) == {"currency", "cost_net", "weight_kg", "warehouse"}
    assert "ISO 4217" in bad["currency"].reason and "negative" in bad["cost_net"].reason
    assert "3 decimal places" in bad["weight_kg"].reason and "100 characters" in bad["warehouse"].reason
    assert "4 decimal places" in rejected(cost_net="1,12345")["cost_net"].reason


def test_every_bad_field_is_reported_with_its_raw_value() -> None:
    result = parse_row({"sku": "A1", "name": " ", "stock": "-3", "price_gross": "abc", "vat_rate": "7",
                        "ean": "123", "currency": "PL", "weight_kg": "-1", "cost_net": "x"}, erp="e", source=SRC)
    assert isinstance(result, list)
    assert [(r.field, r.value) for r in result] == [
        ("name", " "), ("stock", "-3"), ("price_gross", "abc"), ("vat_rate", "7"), ("ean", "123"),
        ("cost_net", "x"), ("currency", "PL"), ("weight_kg", "-1")]
    assert all(r.sku == "A1" and r.source == SRC and r.reason.startswith(r.field) for r in result)


@pytest.mark.parametrize("name", ["Kubek\x00", "Kubek\tbiały", "Ku\x1bbek", "Kubek \x96 biały"])
def test_a_name_with_nul_or_control_characters_is_rejected_with_the_row(name: str) -> None:
    """A NUL, a tab or an escape in a name, or a C1 character (a windows-1250 dash read as latin-1):
    a damaged export, never stored."""
    bad = rejected(name=name)["name"]
    assert bad.sku == GOOD["sku"] and bad.value == name and "contains a control character" in bad.reason


def test_a_row_without_a_usable_sku_is_rejected_without_one() -> None:
    assert rejected(sku="")["sku"].sku is None
    bad = rejected(sku="x" * 101, stock="-1")
    assert bad["sku"].sku is None and bad["stock"].sku is None and "100 characters" in bad["sku"].reason
    assert "control character" in rejected(sku="A\nB")["sku"].reason
    assert "control character" in rejected(sku="A\x85B")["sku"].reason
    assert rejected(sku=None)["sku"].reason == "sku is required but empty"


def test_column_names_are_matched_loosely_and_unknown_ones_ignored() -> None:
    raw = {"\ufeffSKU": "A", " Name ": "x", "STOCK": "1", "Price_Gross": "2", "VAT_RATE": "8", "Opis": "..."}
    assert isinstance(parse_row(raw, erp="e", source=SRC), ParsedRow)


def test_nested_json_values_are_rejected_not_crashed_on() -> None:
    bad = rejected(sku={"a": 1}, name=["x"], stock=[1], price_gross={"v": 1}, vat_rate=None)
    assert set(bad) == set(REQUIRED_COLUMNS)


def test_check_header() -> None:
    assert missing_columns(["SKU", "name ", "\ufeffstock"]) == ["price_gross", "vat_rate"]
    assert check_header(["sku", "name", "stock", "price_gross", "vat_rate", "extra"], source="f.csv:1") == []
    problems = check_header(["sku", "nazwa", "stock", "stock", "price_gross"], source="f.csv:1")
    assert [(p.field, p.value, p.reason) for p in problems] == [
        ("name", "", "required column missing"), ("vat_rate", "", "required column missing"),
        ("stock", "", "column appears more than once")]
    assert all(p.source == "f.csv:1" and p.sku is None for p in problems)


def _row(source: str, **overrides: Any) -> ParsedRow:
    result = parse_row({**GOOD, **overrides}, erp="erp", source=source)
    assert isinstance(result, ParsedRow)
    return result


def test_feed_rules_reject_duplicates_and_disagreeing_warehouse_rows() -> None:
    rules = FeedRules()
    first = _row("f.csv:2", warehouse="A")
    assert rules.check(first) == []
    assert rules.check(_row("f.csv:3", warehouse="B", stock="9")) == []  # another warehouse: fine
    duplicate = rules.check(_row("f.csv:4", warehouse="A", stock="1"))
    assert [(r.field, r.sku, r.source) for r in duplicate] == [("sku", "KUB-001", "f.csv:4")]
    assert "f.csv:2" in duplicate[0].reason and "warehouse 'A'" in duplicate[0].reason
    differing = rules.check(_row("f.csv:5", warehouse="C", price_gross="20,00", name="Inny"))
    assert {r.field: r.value for r in differing} == {"name": "Inny", "price_gross": "20.00"}
    assert "f.csv:2" in differing[0].reason
    assert rules.check(_row("f.csv:6", warehouse="C")) == []  # the rejected row did not claim C


def test_records_one_product_and_price_per_sku() -> None:
    rows = [_row("a", warehouse="A"), _row("b", warehouse="B"), _row("c", sku="OTHER")]
    products, stock, prices = records(rows)
    assert [p.sku for p in products] == [p.sku for p in prices] == ["KUB-001", "OTHER"]
    assert [(s.sku, s.warehouse) for s in stock] == [("KUB-001", "A"), ("KUB-001", "B"), ("OTHER", "default")]


# --- properties ------------------------------------------------------------------------

# no deadline: the suite runs beside other work, and a slow machine is not a failing rule
relaxed = settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])
money = st.decimals(min_value=Decimal("0.01"), max_value=Decimal("99999999.99"), places=2)
sku_text = st.text(st.characters(min_codepoint=33, max_codepoint=0x17F, categories=("L", "N", "P", "S")),
                   min_size=1, max_size=100)
eans = st.one_of(
    st.just(""),
    st.sampled_from([7, 11, 12, 13]).flatmap(
        lambda n: st.text("0123456789", min_size=n, max_size=n).map(lambda b: b + gtin.calc_check_digit(b))),
)


def polish(value: Decimal, style: str) -> str:
    """The ways exports write an amount: 1 299,00 / 1\u00a0299,00 / 1.299,00 / 1,299.00 / 1299.00 / 1299,00."""
    plain = f"{value:.2f}"
    grouped = f"{value:,.2f}"
    return {
        "space": grouped.replace(",", " ").replace(".", ","),
        "nbsp": grouped.replace(",", "\u00a0").replace(".", ","),
        "dots": grouped.replace(",", "_").replace(".", ",").replace("_", "."),
        "english": grouped,
        "plain": plain,
        "comma": plain.replace(".", ","),
    }[style]


styles = st.sampled_from(["space", "nbsp", "dots", "english", "plain", "comma"])


@relaxed
@given(value=money, style=styles)
def test_amounts_round_trip_in_every_spelling(value: Decimal, style: str) -> None:
    assert parse_decimal(polish(value, style)) == value


@relaxed
@given(value=money, style=st.sampled_from(["space", "nbsp", "dots", "comma"]))
def test_decimal_comma_forced(value: Decimal, style: str) -> None:
    assert parse_decimal(polish(value, style), decimal_comma=True) == value


@settings(relaxed, max_examples=150)
@given(sku=sku_text, quantity=st.integers(0, 10**6), price=money, style=styles,
       vat=st.sampled_from(["23", "23%", "23.00", "8", "5 %", "0", "ZW", "zw", "NP", "np"]), ean=eans,
       weight=st.decimals(min_value=0, max_value=1000, places=3), whole=st.sampled_from(["", ",0", ".0", ",00"]))
def test_valid_rows_parse_to_the_values_written(sku: str, quantity: int, price: Decimal, style: str, vat: str,
                                                ean: str, weight: Decimal, whole: str) -> None:
    raw = {"sku": f" {sku} ", "name": "Produkt", "stock": f"{quantity}{whole}", "price_gross": polish(price, style),
           "vat_rate": vat, "ean": ean, "weight_kg": str(weight).replace(".", ",")}
    row = parse_row(raw, erp="e", source=SRC)
    assert isinstance(row, ParsedRow), row
    assert row.stock.quantity == quantity and row.stock.sku == sku.strip()
    assert row.price.price_gross == price and row.price.price_gross.as_tuple().exponent == -2
    assert row.product.vat_rate in CATALOGUE_CODES and row.product.vat_rate == vat.strip(" %").lower().split(".")[0]
    assert row.product.ean == (ean or None) and row.product.weight_kg == weight
    assert not any(isinstance(v, float) for v in (row.price.price_gross, row.product.weight_kg))


BAD_VALUES: dict[str, list[Any]] = {
    "sku": ["", "   ", "x" * 101, "a\tb"],
    "name": ["", "  "],
    "stock": ["-1", "2.5", "x", "1,5"],
    "price_gross": ["0", "-5", "1,999", "abc", "12 34"],
    "vat_rate": ["22", "oo", "abc", "0.5"],
    "ean": ["5901234123458", "12345", "59O1234123457"],
    "cost_net": ["-0,01", "x", "1,23456"],
    "currency": ["PL", "złoty", "12A", "XYZ", "PLX"],
    "weight_kg": ["-1", "1,2345", "kg"],
    "warehouse": ["x" * 101, "a\nb"],
}


@settings(relaxed, max_examples=150)
@given(st.sets(st.sampled_from(sorted(BAD_VALUES)), min_size=1).flatmap(
    lambda fields: st.fixed_dictionaries({f: st.sampled_from(BAD_VALUES[f]) for f in fields})))
def test_every_corrupted_field_and_only_those_are_reported(bad: dict[str, Any]) -> None:
    raw = {**GOOD, "ean": "5901234123457", "cost_net": "1", "currency": "PLN", "weight_kg": "1", "warehouse": "W"}
    raw.update(bad)
    result = parse_row(raw, erp="e", source=SRC)
    assert isinstance(result, list)
    assert {r.field for r in result} == set(bad)
    for record in result:
        assert record.value == str(bad[record.field]) and record.source == SRC and record.reason
        assert record.sku == (None if "sku" in bad else "KUB-001")


@relaxed
@given(st.dictionaries(st.sampled_from([*COLUMNS, "other"]),
                       st.one_of(st.none(), st.text(max_size=20), st.integers(), st.booleans(),
                                 st.decimals(allow_nan=True), st.floats())))
def test_any_input_gives_a_row_or_distinct_rejects_never_an_exception(raw: dict[str, Any]) -> None:
    result = parse_row(raw, erp="e", source=SRC)
    if isinstance(result, list):
        fields = [r.field for r in result]
        assert fields and len(fields) == len(set(fields)) and set(fields) <= set(COLUMNS)
    else:
        assert result.stock.quantity >= 0 and result.price.price_gross > 0


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(negative=st.booleans(), whole=st.integers(0, 10**9), fraction=st.text("0123456789", max_size=5),
       mode=st.sampled_from([None, True, False]))
def test_plain_numbers_read_as_their_value_whatever_the_path(negative: bool, whole: int, fraction: str,
                                                             mode: bool | None) -> None:
    """The quick reading of plain numbers (digits with one dot or one comma) gives what the decimal rules
    say, computed here from the parts: the dot is decimal unless the feed says commas are (then a dot
    groups thousands), a comma is decimal unless the feed says dots are."""
    sign = "-" if negative else ""
    value = Decimal(whole) + (Decimal(int(fraction)) / Decimal(10) ** len(fraction) if fraction else 0)
    expected = -value if negative else value
    if not fraction:
        assert parse_decimal(f"{sign}{whole}", decimal_comma=mode) == expected
    else:
        for separator, decimal_here in ((".", mode is not True), (",", mode is not False)):
            text = f"{sign}{whole}{separator}{fraction}"
            if decimal_here:
                assert parse_decimal(text, decimal_comma=mode) == expected, (text, mode)
            else:  # the separator groups thousands: only groups of three digits are a number
                try:
                    grouped = parse_decimal(text, decimal_comma=mode)
                except ValueError:
                    continue
                assert len(fraction) == 3 and grouped == Decimal(f"{sign}{whole}{fraction}"), (text, mode)


# --- the common row at once gives what the general rules give -------------------------------------

_CELLS = {
    "sku": st.sampled_from(["A1", " A1 ", "", "x" * 101, "A\t1", "ŻÓŁW-1"]),
    "name": st.sampled_from(["Kubek", " Kubek ", "", "a\nb", "Łyżka „Żółć”"]),
    "stock": st.sampled_from(["0", "5", "007", "-1", "1.5", "2,0", "1 000", "999999999", "9999999999", "", "x"]),
    "price_gross": st.sampled_from(["10", "10.5", "10,50", "0", "0.00", "10.500", "1.299,00", "1,299.00", "1 299,00",
                                    "999999999999.99", "1000000000000", "-5", "", "1e3", "NaN"]),
    "vat_rate": st.sampled_from(["23", "8", "5", "0", "zw", "ZW", "np", "NP", "23%", "0.23", "22", "", " 23 "]),
    "ean": st.sampled_from(["", "5901234123457", "5901234123458", " 5901234123457", "590123412345", "96385074",
                            "5,90123E+12", "abc"]),
    "cost_net": st.sampled_from(["", "0", "6.1234", "6,12345", "9999999999.9999", "10000000000", "-1", "1,299"]),
    "weight_kg": st.sampled_from(["", "0.5", "0,500", "1.2345", "9999999.999", "10000000"]),
    "currency": st.sampled_from(["", "PLN", "eur", " EUR ", "zł", "PLX"]),
    "warehouse": st.sampled_from(["", "MAG", " MAG ", "W\t2"]),
}


_PLAIN = {"sku": "A1", "name": "Kubek", "stock": "5", "price_gross": "10.50", "vat_rate": "23", "ean": "5901234123457",
          "cost_net": "6.1", "weight_kg": "0.5", "currency": "PLN", "warehouse": "MAG"}


@settings(max_examples=800, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data(), st.sampled_from([None, True, False]))
def test_the_common_row_at_once_reads_as_the_general_rules(data: st.DataObject, decimal_comma: bool | None) -> None:
    """A plain row with up to three fields spelt another way, or left out."""
    changed = data.draw(st.lists(st.sampled_from(sorted(_CELLS)), max_size=3, unique=True))
    row = dict(_PLAIN)
    for column in changed:
        value = data.draw(st.one_of(_CELLS[column], st.none()))
        if value is None:
            row.pop(column)
        else:
            row[column] = value
    fast = feed_rules._plain_row(row, "erp", "feed.csv:2", decimal_comma)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(feed_rules, "_plain_row", lambda *a: None)
        general = parse_row(row, erp="erp", source="feed.csv:2", decimal_comma=decimal_comma)
    if fast is not None:
        assert fast == general
        assert [str(v) for v in (fast.price.price_gross, fast.price.cost_net, fast.product.weight_kg)] == [
            str(v) for v in (general.price.price_gross, general.price.cost_net, general.product.weight_kg)]
    assert parse_row(row, erp="erp", source="feed.csv:2", decimal_comma=decimal_comma) == general
    # a whole catalogue's read takes a plain row straight into its FeedRow: the same values
    staged = parse_feed_row(row, erp="erp", source="feed.csv:2", position=7, fingerprint=-3,
                            decimal_comma=decimal_comma)
    if isinstance(general, ParsedRow):
        assert staged == FeedRow.of(general.product, general.stock, general.price, "feed.csv:2", 7, -3)
        assert [str(v) for v in (staged.price_gross, staged.cost_net, staged.weight_kg)] == [
            str(v) for v in (general.price.price_gross, general.price.cost_net, general.product.weight_kg)]
    else:
        assert staged == general


@settings(max_examples=1000, deadline=None)
@given(st.text(alphabet="0123456789", min_size=5, max_size=15), st.text(alphabet="0123456789٣", max_size=1),
       st.booleans())
def test_the_plain_ean_check_is_python_stdnums(body: str, other: str, right: bool) -> None:
    """Every length, the right check digit or another one, and digits that are not ASCII: the shortcut
    accepts exactly what stdnum's EAN check accepts."""
    text = body + (gtin.calc_check_digit(body) if right else other)
    assert feed_rules._plain_ean(text) == gtin.is_valid(text), text
