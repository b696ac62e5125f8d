"""Available-to-sell: never negative, never above the maximum, only the channel's warehouses, same in a run
(recompute over the database's stock rows and reservations, on SQLite and PostgreSQL)."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, select, update

from hub.catalog import Product, StockLevel
from hub.kernel.clock import utcnow
from hub.kernel.errors import ConfigError
from hub.listings.desired import recompute
from hub.listings.models import Listing
from hub.listings.pricing import PricingFile
from hub.listings.rules import Rules
from hub.listings.stock_rules import StockFile, StockRule, available_to_sell
from hub.orders.models import Reservation
from hub.platform.db import transaction
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
    # what `hub stock show` prints for each step
    assert [s.explanation for s in d.steps] == [
        "MAG1, MAG2: MAG1 10 + MAG2 5", "15 - reserved 3 - safety buffer 2", "10 * 55%, rounded down",
        "at most 4 (capped)"]


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


# --- the same in a run: recompute over the database ------------------------------------------


def test_recompute_offers_the_ats_of_the_stored_stock_and_reservations(engine: Engine) -> None:
    """The desired quantity of each listing is the ATS of the SKU's stock rows and open reservations;
    a SKU without stock rows or reservations counts them as 0."""
    stock = StockFile.model_validate({
        "defaults": {"warehouses": ["MAG1", "MAG2"], "safety_buffer": 1, "percent": 50, "max_quantity": 8},
        "channels": {"all": {"warehouses": ["*"], "safety_buffer": 0, "percent": 100, "max_quantity": "none"}},
    })
    rows = {  # SKU: (stock by warehouse, open reservations)
        "A": ({"MAG1": 10, "MAG2": 4, "SKLEP": 100}, [2]),
        "B": ({"MAG1": 40}, []),
        "C": ({}, []),
        "D": ({"SKLEP": 50}, []),
        "E": ({"MAG2": 3}, [1, 4]),
    }
    now = utcnow()
    with transaction(engine) as s:
        for sku, (by_warehouse, reservations) in rows.items():
            s.add(Product(sku=sku, erp="erp", name=sku, vat_rate="23", price_gross=Decimal("10.00"), currency="PLN",
                          cost_net=None, updated_at=now))
            s.add_all(StockLevel(sku=sku, warehouse=w, quantity=q, updated_at=now) for w, q in by_warehouse.items())
            s.add_all(Reservation(sku=sku, quantity=q, order_ref=f"{sku}-{n}", state="open", created_at=now,
                                  updated_at=now) for n, q in enumerate(reservations))
            s.add(Reservation(sku=sku, quantity=7, order_ref=f"{sku}-done", state="consumed", created_at=now,
                              updated_at=now))  # no longer held: not counted
            for channel in ("shop", "all"):
                s.add(Listing(channel=channel, external_id=f"{channel}-{sku}", sku=sku, updated_at=now))
    with transaction(engine) as s:
        recompute(s, Rules(pricing=PricingFile(), stock=stock), list(rows))
    with transaction(engine) as s:
        got = {(row.channel, row.sku): row.desired_quantity for row in s.execute(select(Listing)).scalars()}
    assert got == {
        # MAG1 + MAG2 - reserved - buffer 1, * 50 % rounded down, at most 8
        ("shop", "A"): 5,  # 14 - 2 - 1 = 11 -> 5
        ("shop", "B"): 8,  # 40 - 1 = 39 -> 19 -> 8
        ("shop", "C"): 0,  # no rows at all
        ("shop", "D"): 0,  # only a warehouse the channel does not draw from
        ("shop", "E"): 0,  # 3 - 5 - 1 < 0
        # every warehouse - reserved
        ("all", "A"): 112, ("all", "B"): 40, ("all", "C"): 0, ("all", "D"): 50, ("all", "E"): 0,
    }
    for (channel, sku), quantity in got.items():  # the same as the pure function
        by_warehouse, reservations = rows[sku]
        assert quantity == available_to_sell(by_warehouse, sum(reservations), stock.rule_for(channel)).quantity


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


def test_price_refusals_are_kept_per_channel_and_end_when_a_price_goes_through(engine: Engine) -> None:
    """A recompute writes its refusals and ends them in bulk: a SKU refused on one channel (a 20 %
    minimum margin there) and priced on the other; refused again, its first time is kept; once its cost
    drops, the refusal ends and the price goes through."""
    from hub.listings.models import PriceRefusal
    from hub.listings.pricing import PriceRuleOverride

    pricing = PricingFile(channels={"strict": PriceRuleOverride(min_margin_pct=Decimal(20))})
    rules = Rules(pricing=pricing, stock=StockFile())
    now = utcnow()
    with transaction(engine) as s:
        for n, cost in enumerate(("9.00", "5.00", "9.50")):
            sku = f"P{n}"
            s.add(Product(sku=sku, erp="erp", name=sku, vat_rate="23", price_gross=Decimal("12.30"), currency="PLN",
                          cost_net=Decimal(cost), updated_at=now))
            for channel in ("strict", "loose"):
                s.add(Listing(channel=channel, external_id=f"{channel}-{sku}", sku=sku, updated_at=now))

    def refusals() -> dict[tuple[str, str], tuple[object, object]]:
        with transaction(engine) as s:
            return {(r.channel, r.sku): (r.first_at, r.last_at) for r in s.execute(select(PriceRefusal)).scalars()}

    with transaction(engine) as s:
        first = recompute(s, rules, ["P0", "P1", "P2"])
    # 12.30 gross is 10.00 net: a cost of 9.00 or 9.50 leaves less than a 20 % margin on "strict"
    assert first.refused == 2 and set(refusals()) == {("strict", "P0"), ("strict", "P2")}
    earlier = refusals()
    with transaction(engine) as s:
        recompute(s, rules, ["P0", "P1", "P2"])
        s.execute(update(Product).where(Product.sku == "P0").values(cost_net=Decimal("4.00")))
    again = refusals()
    assert again[("strict", "P2")][0] == earlier[("strict", "P2")][0]  # first seen kept
    with transaction(engine) as s:
        recompute(s, rules, ["P0", "P1", "P2"])
        prices = {(row.channel, row.sku): row.desired_price for row in s.execute(select(Listing)).scalars()}
    assert set(refusals()) == {("strict", "P2")}  # P0 goes through now
    assert prices[("strict", "P0")] == Decimal("12.30") and prices[("strict", "P2")] is None
    assert prices[("loose", "P2")] == Decimal("12.30")
