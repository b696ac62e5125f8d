"""Available-to-sell: never negative, never above the maximum, only the channel's warehouses, same in SQL."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, Integer, create_engine, literal, select

from hub.kernel.errors import ConfigError
from hub.listings.stock_rules import AtsParams, StockFile, StockRule, ats_params, ats_sql, available_to_sell, format_ats
from hub.platform.mappings import load_all

WAREHOUSES = ["MAG1", "MAG2", "MAG3", "SKLEP"]
FAST = settings(max_examples=300, deadline=None)


def rule(**kwargs: Any) -> StockRule:
    return StockRule.model_validate(kwargs)


stocks = st.dictionaries(st.sampled_from(WAREHOUSES), st.integers(min_value=-20, max_value=5000))
reservations = st.integers(min_value=0, max_value=3000)


@st.composite
def rules(draw: st.DrawFn) -> StockRule:
    chosen = draw(st.just(["*"]) | st.lists(st.sampled_from([*WAREHOUSES, "GONE"]), min_size=1, max_size=3,
                                            unique=True))
    return StockRule(warehouses=chosen, safety_buffer=draw(st.integers(0, 50)),
                     max_quantity=draw(st.none() | st.integers(0, 2000)), percent=draw(st.integers(1, 100)))


def reference(stock: dict[str, int], reserved: int, r: StockRule) -> int:
    """The issue's words, written independently: sum of the channel's warehouses - reservations - buffer,
    floored at 0, times percent (down), capped at the maximum."""
    counted = stock.values() if r.warehouses == ["*"] else [stock.get(w, 0) for w in r.warehouses]
    free = max(0, sum(counted) - reserved - r.safety_buffer)
    share = free * r.percent // 100
    return share if r.max_quantity is None else min(share, r.max_quantity)


@FAST
@given(stocks, reservations, rules())
def test_ats_properties(stock: dict[str, int], reserved: int, r: StockRule) -> None:
    d = available_to_sell(stock, reserved, r)
    assert type(d.quantity) is int and d.quantity >= 0
    assert r.max_quantity is None or d.quantity <= r.max_quantity
    assert d.quantity == reference(stock, reserved, r)
    assert all(type(s.value) is int for s in d.steps)
    # more reservations or a bigger buffer never offer more
    assert available_to_sell(stock, reserved + 1, r).quantity <= d.quantity
    bigger = r.model_copy(update={"safety_buffer": r.safety_buffer + 1})
    assert available_to_sell(stock, reserved, bigger).quantity <= d.quantity


@FAST
@given(stocks, reservations, rules(), st.integers(min_value=-20, max_value=5000))
def test_only_the_channels_warehouses_count(stock: dict[str, int], reserved: int, r: StockRule, extra: int) -> None:
    if r.warehouses == ["*"]:
        return
    others = [w for w in WAREHOUSES if w not in r.warehouses]
    if not others:
        return
    changed = {**stock, others[0]: extra}
    assert available_to_sell(changed, reserved, r) == available_to_sell(stock, reserved, r)


def test_example_with_every_step() -> None:
    # MAG1 10 + MAG2 5 = 15 (SKLEP not counted); 15 - 3 reserved - 2 buffer = 10; 10 * 55 % = 5.5 -> 5; max 4 -> 4
    r = rule(warehouses=["MAG1", "MAG2"], safety_buffer=2, percent=55, max_quantity=4)
    d = available_to_sell({"MAG1": 10, "MAG2": 5, "SKLEP": 100}, 3, r)
    assert [(s.label, s.value) for s in d.steps] == [("on hand", 15), ("free", 10), ("share", 5), ("quantity", 4)]
    assert d.quantity == 4
    text = format_ats("SKU-1", "shop", d)
    assert text.splitlines()[0] == "SKU-1 on shop"
    assert "MAG1 10 + MAG2 5" in text and "(capped)" in text


def test_oversold_is_zero_not_negative() -> None:
    d = available_to_sell({"MAG1": 2}, 5, rule(safety_buffer=1))
    assert d.quantity == 0 and "floored at 0" in d.steps[1].explanation
    # a negative warehouse owes goods the others must cover
    assert available_to_sell({"MAG1": 10, "MAG2": -4}, 0, rule()).quantity == 6
    assert available_to_sell({}, 0, rule()).quantity == 0
    with pytest.raises(ValueError, match="negative"):
        available_to_sell({"MAG1": 1}, -1, rule())


def test_percent_and_max_zero() -> None:
    assert available_to_sell({"A": 3}, 0, rule(percent=50)).quantity == 1  # 1.5 rounds down
    assert available_to_sell({"A": 100}, 0, rule(max_quantity=0)).quantity == 0


# --- the same in SQL ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def engine() -> Iterator[Engine]:
    eng = create_engine("sqlite://")
    yield eng
    eng.dispose()


def test_ats_params() -> None:
    assert ats_params(rule()) == AtsParams(None, 0, 100, None)
    assert ats_params(rule(warehouses=["A", "B"], safety_buffer=1, percent=50, max_quantity=9)) == AtsParams(
        ("A", "B"), 1, 50, 9)


@settings(max_examples=60, deadline=None)
@given(stocks, reservations, rules())
def test_sql_matches_python(engine: Engine, stock: dict[str, int], reserved: int, r: StockRule) -> None:
    params = ats_params(r)
    on_hand = sum(q for w, q in stock.items() if params.warehouses is None or w in params.warehouses)
    with engine.connect() as conn:
        got = conn.execute(select(ats_sql(literal(on_hand, Integer), literal(reserved, Integer), params))).scalar()
    assert got == available_to_sell(stock, reserved, r).quantity


def test_sql_counts_null_sums_as_zero(engine: Engine) -> None:
    params = ats_params(rule(max_quantity=5))
    null = literal(None, Integer)
    with engine.connect() as conn:
        assert conn.execute(select(ats_sql(null, null, params))).scalar() == 0
        assert conn.execute(select(ats_sql(literal(9, Integer), null, params))).scalar() == 5


# --- the file -------------------------------------------------------------------------------


def test_channel_overrides_defaults_key_by_key() -> None:
    f = StockFile.model_validate({"defaults": {"safety_buffer": 2, "max_quantity": 10},
                                  "channels": {"shop": {"warehouses": ["MAG1"], "max_quantity": "none"}}})
    assert f.rule_for("shop") == StockRule(warehouses=["MAG1"], safety_buffer=2, max_quantity=None, percent=100)
    assert f.rule_for("other") == f.defaults


def test_shipped_stock_toml_is_valid() -> None:
    loaded = load_all(None)["stock.toml"].data
    assert isinstance(loaded, StockFile) and loaded.defaults == StockRule()


def test_load_all_reports_file_key_and_value(tmp_path: Path) -> None:
    (tmp_path / "stock.toml").write_text(
        '[defaults]\nwarehouses = ["*", "MAG1"]\npercent = 0\n'
        '[channels.shop]\nsafety_buffer = -1\nmax_quantity = 2.5\nwarehouses = []\nshare = 3\n', encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_all(tmp_path)
    problems = "\n".join(info.value.problems)
    path = tmp_path / "stock.toml"
    assert f"{path}: defaults.warehouses = ['*', 'MAG1']: \"*\" means every warehouse and stands alone" in problems
    assert f"{path}: defaults.percent = 0:" in problems
    assert f"{path}: channels.shop.safety_buffer = -1:" in problems
    assert f"{path}: channels.shop.max_quantity = 2.5:" in problems
    assert f"{path}: channels.shop.warehouses = []: list at least one warehouse" in problems
    assert f"{path}: channels.shop.share = 3: unknown key" in problems
