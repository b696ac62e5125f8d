"""Pricing: the floor holds after every step, rounding holds, refusals are never clamped, Decimal only;
the cap on price changes per run (through plan(), on SQLite and PostgreSQL)."""

from __future__ import annotations

import dataclasses
from decimal import Decimal
from fractions import Fraction
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine

from hub.kernel.clock import utcnow
from hub.kernel.errors import ConfigError
from hub.kernel.vat import VAT_CODES, percent_for_net
from hub.listings.models import Listing
from hub.listings.plan import plan
from hub.listings.pricing import (
    PriceDecision,
    PriceInputs,
    PriceRule,
    PricingFile,
    Repricing,
    Rounding,
    decide,
    format_explanation,
    parse_rounding,
)
from hub.listings.rules import Rules
from hub.listings.stock_rules import StockFile
from hub.platform.db import transaction
from hub.platform.mappings import load_all

D = Decimal
FAST = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _holds(rounding: Rounding, price: Decimal) -> bool:
    """``price`` is one the rounding allows: offset + a whole, non-negative number of steps."""
    k = (price - rounding.offset) / rounding.modulus
    return k >= 0 and k == k.to_integral_value()


def rule(**kwargs: Any) -> PriceRule:
    return PriceRule.model_validate(kwargs)


def inputs(price: str = "99.00", cost: str | None = "50.00", vat: str = "23",
           competitor: str | None = None) -> PriceInputs:
    return PriceInputs("SKU-1", D(price), None if cost is None else D(cost), vat,
                       None if competitor is None else D(competitor), channel="marketplace")


def keeps(price: Decimal, cost: Decimal, vat: str, r: PriceRule) -> Fraction:
    """What the seller keeps over cost * (1 + margin), in exact rationals (independent of the module)."""
    v = Fraction(percent_for_net(vat) or 0) / 100
    p = Fraction(price)
    kept = p / (1 + v) - p * Fraction(r.commission_pct) / 100 - Fraction(r.fixed_fee)
    return kept - Fraction(cost) * (1 + Fraction(r.min_margin_pct) / 100)


def no_floats(decision: PriceDecision) -> None:
    for f in dataclasses.fields(decision):
        value = getattr(decision, f.name)
        assert not isinstance(value, float), f.name
        if f.name in ("price", "floor", "ceiling", "proposed"):
            assert value is None or type(value) is Decimal, f.name
    for step in decision.steps:
        assert step.value is None or type(step.value) in (Decimal, str), step


# --- the floor, by hand ---------------------------------------------------------------------


def test_floor_hand_computed_23_percent() -> None:
    # cost 50.00 net, VAT 23 %, commission 10 % of the gross price, fee 1.00 gross, margin 10 %:
    #   needed      = 50.00 * 1.10 + 1.00            = 56.00
    #   numerator   = 56.00 * 1.23                    = 68.88
    #   denominator = 1 - 0.10 * 1.23                 = 0.877
    #   68.88 / 0.877 = 78.5404...  -> up to the cent = 78.55
    # check 78.55: 78.55 / 1.23 = 63.8618 - 7.855 - 1.00 = 55.0068 >= 55.00 (cost * 1.10)
    #       78.54: 78.54 / 1.23 = 63.8537 - 7.854 - 1.00 = 54.9997 <  55.00
    r = rule(commission_pct="10", fixed_fee="1.00", min_margin_pct="10")
    d = decide(r, inputs())
    assert d.floor == D("78.55")
    assert keeps(D("78.55"), D("50.00"), "23", r) >= 0 > keeps(D("78.54"), D("50.00"), "23", r)


def test_floor_hand_computed_8_percent() -> None:
    # cost 10.00, VAT 8 %, commission 5 %, fee 0.50, margin 20 %:
    #   (10.00 * 1.20 + 0.50) * 1.08 = 13.50;  1 - 0.05 * 1.08 = 0.946;  13.50 / 0.946 = 14.2706... -> 14.28
    # check 14.28: 13.2222 - 0.7140 - 0.50 = 12.0082 >= 12.00;  14.27: 13.2130 - 0.7135 - 0.50 = 11.9995 < 12.00
    r = rule(commission_pct="5", fixed_fee="0.50", min_margin_pct="20")
    assert decide(r, inputs(price="20.00", cost="10.00", vat="8")).floor == D("14.28")


def test_floor_exempt_vat_is_cost_plus_margin() -> None:
    # zw: 0 % for the net amount; no commission, no fee: floor = cost * (1 + margin) = 100.00 * 1.05
    r = rule(min_margin_pct="5")
    assert decide(r, inputs(price="200.00", cost="100.00", vat="zw")).floor == D("105.00")


def test_floor_exact_when_the_quotient_is_a_whole_cent() -> None:
    # 100.00 * 1.23 / (1 - 0.1 * 1.23) = 123 / 0.877 is not whole; but 87.70 * 1.23 / 0.877 = 123.00 exactly:
    # an exact quotient must not be pushed up a cent.
    r = rule(commission_pct="10")
    assert decide(r, inputs(price="200.00", cost="87.70")).floor == D("123.00")


def test_commission_that_eats_the_net_price_refuses() -> None:
    # 90 % * 1.23 >= 1: no gross price leaves anything after commission
    d = decide(rule(commission_pct="90"), inputs())
    assert d.refused and d.price is None and d.floor is None
    assert "commission" in d.reason


def _pricing_problems(tmp_path: Path, text: str) -> list[str]:
    (tmp_path / "pricing.toml").write_text(text)
    with pytest.raises(ConfigError) as caught:
        load_all(tmp_path)
    return caught.value.problems


def test_a_commission_no_price_survives_is_refused_at_load(tmp_path: Path) -> None:
    """"85" meant 8.5: at 23 % VAT it takes more than the whole net price, so every such SKU would be
    refused; the file is refused instead, naming the key (the channel's own or the inherited default)."""
    problems = _pricing_problems(tmp_path, '[defaults]\ncommission_pct = "85"\n[channels.allegro]\nmarkup_pct = "1"\n'
                                 '[channels.shop]\ncommission_pct = "5"\n')
    assert problems == [f"{tmp_path / 'pricing.toml'}: defaults.commission_pct = '85': at 23% VAT the commission "
                        "takes 104.55% of the net price, so no price of a 23% VAT product can clear the floor "
                        '(a percentage: "12.3" is 12.3 %)']
    problems = _pricing_problems(tmp_path, '[channels.allegro]\ncommission_pct = "81.31"\n')
    assert "channels.allegro.commission_pct = '81.31'" in problems[0]
    # just under the line: 81.3 % * 1.23 = 99.999 %, a (very high) floor still exists
    (tmp_path / "pricing.toml").write_text('[channels.allegro]\ncommission_pct = "81.3"\n')
    load_all(tmp_path)


def test_a_fee_over_the_ceiling_is_refused_at_load(tmp_path: Path) -> None:
    problems = _pricing_problems(tmp_path, '[defaults]\nfixed_fee = "50"\n'
                                 '[channels.shop]\ncommission_pct = "10"\nceiling = "55.55"\n')
    assert problems == [f"{tmp_path / 'pricing.toml'}: channels.shop (with defaults.fixed_fee) = '50': with the "
                        "commission of 10% the fee alone puts the floor at 55.56, over the ceiling of 55.55: no price "
                        "can clear the floor"]
    (tmp_path / "pricing.toml").write_text('[defaults]\nfixed_fee = "50"\n[channels.shop]\ncommission_pct = "10"\n'
                                           'ceiling = "55.56"\n')
    load_all(tmp_path)


# --- properties -------------------------------------------------------------------------------

money = st.decimals(min_value=D("0.01"), max_value=D("20000"), places=2)
costs = st.decimals(min_value=D("0.0001"), max_value=D("15000"), places=4)
pct = st.decimals(min_value=D("0"), max_value=D("60"), places=2)
roundings = st.sampled_from(["none", "0.99", "0.09", "end:9.99", "0.49", "step:0.05", "step:0.10", "step:1.00",
                             "step:5.00"])


@st.composite
def rules(draw: st.DrawFn) -> PriceRule:
    return PriceRule(
        base=draw(st.sampled_from(["erp_gross", "erp_gross", "cost_plus"])),
        markup_pct=draw(st.decimals(min_value=D("-50"), max_value=D("200"), places=2)),
        commission_pct=draw(st.sampled_from([D(0), D("8"), D("12.5")]) | pct),
        fixed_fee=draw(st.decimals(min_value=D("0"), max_value=D("30"), places=2)),
        rounding=draw(roundings),
        min_margin_pct=draw(st.decimals(min_value=D("0"), max_value=D("40"), places=2)),
        ceiling=draw(st.none() | st.none() | money),
        ceiling_pct=draw(st.none() | st.none() | st.decimals(min_value=D("0"), max_value=D("100"), places=2)),
        repricing=Repricing(strategy=draw(st.sampled_from(["off", "beat", "match"])),
                            beat_by=draw(st.decimals(min_value=D("0.01"), max_value=D("10"), places=2))),
    )


ratios = st.decimals(min_value=D("0.05"), max_value=D("1.6"), places=3)


@st.composite
def price_inputs(draw: st.DrawFn) -> PriceInputs:
    """Mostly realistic (cost and competitor near the price), sometimes anything at all."""
    price = draw(money)
    near_cost = st.builds(lambda r: max((price * r / 2).quantize(D("0.0001")), D("0.0001")), ratios)
    near_competitor = st.builds(lambda r: max((price * r).quantize(D("0.01")), D("0.01")), ratios)
    return PriceInputs(
        sku="S", price_gross=price, cost_net=draw(near_cost | near_cost | st.none() | costs),
        vat_rate=draw(st.sampled_from(sorted(VAT_CODES))),
        competitor_price=draw(near_competitor | st.none() | money), channel="c",
    )


@FAST
@given(rules(), price_inputs())
def test_pushed_price_is_never_under_the_floor_and_rounding_holds(r: PriceRule, i: PriceInputs) -> None:
    d = decide(r, i)
    no_floats(d)
    assert d.refused != (d.price is not None)
    if d.price is None:
        assert d.reason
        return
    assert d.price > 0 and d.price.as_tuple().exponent == -2
    assert _holds(parse_rounding(r.rounding), d.price)
    if d.floor is not None:
        assert d.price >= d.floor
        assert keeps(d.price, i.cost_net, i.vat_rate, r) >= 0  # type: ignore[arg-type]
        margin = next(s.value for s in d.steps if s.label == "margin")
        assert D(str(margin).rstrip("%")) >= r.min_margin_pct  # what explain shows agrees
    if d.ceiling is not None:
        assert d.price <= d.ceiling
    if r.repricing.strategy != "off" and i.competitor_price is not None:
        target = i.competitor_price - (r.repricing.beat_by if r.repricing.strategy == "beat" else 0)
        assert d.floor is not None  # repricing never runs without a floor
        assert d.price <= target  # beating or matching never ends above the competitor


@FAST
@given(rules(), costs, st.sampled_from(sorted(VAT_CODES)))
def test_floor_is_the_lowest_cent_that_keeps_the_margin(r: PriceRule, cost: Decimal, vat: str) -> None:
    d = decide(r.model_copy(update={"base": "erp_gross"}), PriceInputs("S", D("1.00"), cost, vat))
    if d.floor is None:
        assert d.refused and "commission" in d.reason
        return
    assert d.floor.as_tuple().exponent == -2
    assert keeps(d.floor, cost, vat, r) >= 0
    assert keeps(d.floor - D("0.01"), cost, vat, r) < 0


@FAST
@given(rules(), costs, st.sampled_from(sorted(VAT_CODES)), st.decimals(min_value=D(0), max_value=D(6),
                                                                                 places=2))
def test_list_price_at_the_floor_is_rounded_up_never_refused(r: PriceRule, cost: Decimal, vat: str,
                                                             above: Decimal) -> None:
    """Just above the floor, rounding to the nearest ending would often go under it: it moves up instead."""
    r = r.model_copy(update={"base": "erp_gross", "markup_pct": D(0), "ceiling": None, "ceiling_pct": None,
                             "repricing": Repricing()})
    floor = decide(r, PriceInputs("S", D("1.00"), cost, vat)).floor
    if floor is None:
        return
    d = decide(r, PriceInputs("S", floor + above, cost, vat))
    assert not d.refused and d.price is not None
    assert d.price >= floor and _holds(parse_rounding(r.rounding), d.price)
    assert d.price < floor + above + parse_rounding(r.rounding).modulus  # moved by less than one step


@FAST
@given(rules(), price_inputs())
def test_repricing_under_the_floor_is_refused_not_clamped(r: PriceRule, i: PriceInputs) -> None:
    r = r.model_copy(update={"repricing": Repricing(strategy="beat", beat_by=D("0.01"))})
    probe = decide(r, dataclasses.replace(i, competitor_price=None))
    if probe.floor is None:
        return
    d = decide(r, dataclasses.replace(i, competitor_price=probe.floor))  # beat: floor - 0.01
    if d.ceiling is not None and d.ceiling < d.floor:  # type: ignore[operator]
        assert d.refused and "ceiling" in d.reason
        return
    assert d.refused and d.price is None
    assert d.proposed == probe.floor - D("0.01")
    assert "under the floor" in d.reason and "keeps its last price" in d.steps[-1].explanation


@FAST
@given(roundings, money)
def test_rounding_helpers(text: str, price: Decimal) -> None:
    rounding = parse_rounding(text)
    near, up, down = rounding.nearest(price), rounding.at_or_above(price), rounding.at_or_below(price)
    assert _holds(rounding, near) and _holds(rounding, up)
    assert up >= price and (down is None or (_holds(rounding, down) and down <= price))
    assert down is None or up - down <= rounding.modulus
    assert near in (up, down) or (down is None and near == up)


# --- examples --------------------------------------------------------------------------------


def test_rounding_examples() -> None:
    assert parse_rounding("0.99").nearest(D("100.00")) == D("99.99")
    assert parse_rounding("0.99").nearest(D("123.50")) == D("123.99")  # tie goes up
    assert parse_rounding("0.09").nearest(D("12.43")) == D("12.39")
    assert parse_rounding("end:9.99").nearest(D("26.00")) == D("29.99")
    assert parse_rounding("step:0.05").nearest(D("12.33")) == D("12.35")
    assert parse_rounding("none").nearest(D("12.33")) == D("12.33")
    with pytest.raises(ValueError, match="rounding is"):
        parse_rounding("0.999")


def test_rounding_moves_up_to_the_floor_rather_than_under_it() -> None:
    # floor 78.55; candidate 79.20 would round to 78.99 ... fine; candidate 79.40 with "step:1.00" -> 79.00 >= 78.55.
    # with ending 0.49: candidate 78.60 -> nearest 78.49 < floor 78.55 -> up to 79.49
    r = rule(commission_pct="10", fixed_fee="1.00", min_margin_pct="10", rounding="0.49")
    d = decide(r, inputs(price="78.60"))
    assert d.price == D("79.49")
    assert "moved up to 79.49" in format_explanation(d)


def test_list_price_under_the_floor_is_refused() -> None:
    d = decide(rule(commission_pct="10", fixed_fee="1.00", min_margin_pct="10"), inputs(price="70.00"))
    assert d.refused and d.price is None and d.proposed == D("70.00") and d.floor == D("78.55")
    assert "under the floor 78.55" in d.reason


def test_repricing_beat_and_match() -> None:
    r = rule(commission_pct="10", fixed_fee="1.00", min_margin_pct="10", rounding="none",
             repricing={"strategy": "beat", "beat_by": "0.50"})
    assert decide(r, inputs(competitor="90.00")).price == D("89.50")
    matched = r.model_copy(update={"repricing": Repricing(strategy="match")})
    assert decide(matched, inputs(competitor="90.00")).price == D("90.00")
    # above the list price and no ceiling: the list price stands
    assert decide(r, inputs(competitor="150.00")).price == D("99.00")
    # with a ceiling: up to the ceiling
    assert decide(r.model_copy(update={"ceiling": D("120.00")}), inputs(competitor="150.00")).price == D("120.00")
    # no competitor: the list price
    assert decide(r, inputs()).price == D("99.00")


def test_repricing_with_rounding_stays_at_or_under_the_target() -> None:
    r = rule(rounding="0.99", repricing={"strategy": "beat", "beat_by": "0.01"})
    assert decide(r, inputs(competitor="90.50")).price == D("89.99")  # target 90.49 -> 89.99, not 90.99
    # target 78.90, floor 78.55, ending .99: 77.99 is under the floor, 78.99 over the target -> refused
    tight = r.model_copy(update={"commission_pct": D("10"), "fixed_fee": D("1.00"), "min_margin_pct": D("10")})
    d = decide(tight, inputs(competitor="78.91"))
    assert d.refused and "between the floor 78.55 and the limit 78.90" in d.reason


def test_repricing_without_cost_is_refused() -> None:
    d = decide(rule(repricing={"strategy": "match"}), inputs(cost=None, competitor="50.00"))
    assert d.refused and d.floor is None and "no cost" in d.reason


def test_no_cost_means_no_floor_but_a_price() -> None:
    d = decide(rule(commission_pct="10"), inputs(cost=None))
    assert d.price == D("99.00") and d.floor is None
    text = format_explanation(d)
    assert "no floor can be computed" in text
    # cost 0 is what ERPs write when they do not know: treated as unknown, not as free goods
    assert decide(rule(), inputs(cost="0")).floor is None


def test_kill_switch() -> None:
    d = decide(rule(enabled=False), inputs())
    assert d.disabled and not d.refused and d.price is None
    assert "kill switch" in format_explanation(d)


def test_ceiling_caps_and_ceiling_under_floor_refuses() -> None:
    d = decide(rule(ceiling="80.00"), inputs())
    assert d.price == D("80.00") and d.ceiling == D("80.00")
    assert "capped at the ceiling" in format_explanation(d)
    d = decide(rule(ceiling_pct="10", markup_pct="50"), inputs())  # 148.50 capped at 99.00 * 1.10 = 108.90
    assert d.price == D("108.90")
    d = decide(rule(ceiling="150.00", ceiling_pct="10"), inputs())
    assert d.ceiling == D("108.90")  # the lower one
    d = decide(rule(ceiling="70.00", commission_pct="10", fixed_fee="1.00", min_margin_pct="10"), inputs())
    assert d.refused and d.reason == "the ceiling 70.00 is under the floor 78.55"
    # rounding never pushes over the ceiling: 80.00 -> nearest .99 is 79.99 (under) -- and 80.50 -> 79.99, not 80.99
    assert decide(rule(ceiling="80.50", rounding="0.99"), inputs()).price == D("79.99")


def test_cost_plus() -> None:
    # 40.00 net * 1.23 = 49.20 gross cost; + 25 % = 61.50
    d = decide(rule(base="cost_plus", markup_pct="25"), inputs(cost="40.00"))
    assert d.price == D("61.50")
    d = decide(rule(base="cost_plus", markup_pct="25"), inputs(cost=None))
    assert d.refused and "cost_plus" in d.reason


def test_unknown_vat_code_and_foreign_currency_are_refused() -> None:
    assert decide(rule(), inputs(vat="17")).refused
    d = decide(rule(), dataclasses.replace(inputs(), currency="EUR"))
    assert d.refused and "EUR" in d.reason


VAT_FLOORS = {  # cost 100.00, margin 5 %: 105.00 * (1 + the code's percentage for the net amount)
    "23": ("23%", "129.15"), "8": ("8%", "113.40"), "5": ("5%", "110.25"), "0": ("0%", "105.00"),
    "zw": ("0%", "105.00"), "np": ("0%", "105.00"), "oo": ("0%", "105.00"),
}


@pytest.mark.parametrize("code", VAT_CODES)
def test_every_polish_vat_code_gives_its_percentage(code: str) -> None:
    percent, floor = VAT_FLOORS[code]
    d = decide(rule(min_margin_pct="5"), inputs(cost="100.00", vat=code))
    assert d.floor == D(floor)
    vat = next(s for s in d.steps if s.label == "VAT")
    assert vat.value == percent
    assert vat.explanation.endswith("(0% for the net amount)") == (code in ("zw", "np", "oo"))


def test_vat_floors_cover_every_code() -> None:
    assert set(VAT_FLOORS) == set(VAT_CODES)


def test_explain_lists_every_step_including_the_floor() -> None:
    r = rule(commission_pct="10", fixed_fee="1.00", min_margin_pct="10", rounding="0.99", ceiling_pct="50",
             repricing={"strategy": "beat"})
    d = decide(r, inputs(competitor="95.00"))
    text = format_explanation(d)
    lines = text.splitlines()
    assert lines[0] == "SKU-1 on marketplace"
    labels = [s.label for s in d.steps]
    assert labels == ["channel", "VAT", "cost (net)", "floor", "base", "list price", "ceiling", "repricing",
                      "candidate", "floor check", "rounding", "margin", "price"]
    for number, step in enumerate(d.steps, 1):
        assert f"{number:>3}. {step.label}" in lines[number]
    assert "78.55" in lines[4] and "rounded up to the cent" in lines[4]
    assert lines[-1].split()[2] == "94.99" and d.price == D("94.99")
    # the explanations start in one column
    starts = {line.index(step.explanation) for line, step in zip(lines[1:], d.steps, strict=True)}
    assert len(starts) == 1


def test_decide_is_pure() -> None:
    r, i = rule(commission_pct="10", rounding="0.99"), inputs(competitor="90.00")
    assert decide(r, i) == decide(r, i)


# --- the cap on price changes per run, through plan() ----------------------------------------


Planned = list[tuple[str, str | None, int | None]]


def _planned(engine: Engine, pricing: dict[str, Any], *, dry_run: bool = True) -> Planned:
    """What plan() puts in the push jobs for channel shop: (offer, price, quantity), in listing order."""
    rules = Rules(pricing=PricingFile.model_validate(pricing), stock=StockFile())
    with transaction(engine) as s:
        pushes = plan(s, rules, "shop", batch_size=100, dry_run=dry_run)
    return [(i["external_id"], i.get("price"), i.get("quantity")) for p in pushes for i in p.items]


def _offers(engine: Engine) -> None:
    """Five offers on shop: o1-o4 with a new price (o3 also with a new quantity), o5 with a new quantity only."""
    now = utcnow()
    with transaction(engine) as s:
        for n in range(1, 6):
            price = D(f"{n}0.00") if n < 5 else D("9.00")
            s.add(Listing(channel="shop", external_id=f"o{n}", sku=f"S{n}", desired_price=price, ack_price=D("9.00"),
                          desired_quantity=5 if n in (3, 5) else 4, ack_quantity=4, desired_at=now,
                          updated_at=now))


@pytest.mark.parametrize(("pricing", "expected"), [
    ({"defaults": {"max_changes_per_run": 2}},  # the first two price changes, in listing order
     [("o1", "10.00", None), ("o2", "20.00", None), ("o3", None, 5), ("o5", None, 5)]),
    ({"defaults": {"max_changes_per_run": 2}, "channels": {"shop": {"max_changes_per_run": "none"}}},
     [("o1", "10.00", None), ("o2", "20.00", None), ("o3", "30.00", 5), ("o4", "40.00", None), ("o5", None, 5)]),
    ({"channels": {"shop": {"enabled": False}}},  # the kill switch: no price at all, stock still flows
     [("o3", None, 5), ("o5", None, 5)]),
], ids=["cap", "no-cap", "kill-switch"])
def test_price_changes_per_run_are_capped(engine: Engine, pricing: dict[str, Any], expected: Planned) -> None:
    _offers(engine)
    assert _planned(engine, pricing) == expected


def test_price_changes_over_the_cap_wait_for_the_next_run(engine: Engine) -> None:
    _offers(engine)
    capped = {"defaults": {"max_changes_per_run": 1}}
    assert _planned(engine, capped, dry_run=False) == [("o1", "10.00", None), ("o3", None, 5), ("o5", None, 5)]
    # o1, o3 and o5 have a push in flight; the next run takes the next price change
    assert _planned(engine, capped, dry_run=False) == [("o2", "20.00", None)]
    assert _planned(engine, capped, dry_run=False) == [("o4", "40.00", None)]
    assert _planned(engine, capped, dry_run=False) == []


# --- the file -------------------------------------------------------------------------------


def test_channel_overrides_defaults_key_by_key() -> None:
    f = PricingFile.model_validate({
        "defaults": {"commission_pct": "10", "ceiling_pct": "20", "rounding": "0.99",
                     "repricing": {"strategy": "beat", "beat_by": "0.05"}},
        "channels": {"shop": {"commission_pct": "0", "ceiling_pct": "none", "repricing": {"strategy": "match"}}},
    })
    shop = f.rule_for("shop")
    assert shop.commission_pct == D(0) and shop.ceiling_pct is None and shop.rounding == "0.99"
    assert shop.repricing == Repricing(strategy="match", beat_by=D("0.05"))
    assert f.rule_for("other") == f.defaults


def test_shipped_pricing_toml_is_valid() -> None:
    loaded = load_all(None)["pricing.toml"].data
    assert isinstance(loaded, PricingFile)
    assert loaded.defaults.enabled and loaded.defaults.repricing.strategy == "off"


def test_load_all_reports_file_key_and_value(tmp_path: Path) -> None:
    (tmp_path / "pricing.toml").write_text(
        '[defaults]\nmarkup_pct = 10.5\nrounding = "0.999"\n'
        '[channels.shop]\ncommission_pct = "120"\nfixed_fee = "1.234"\nenabled = "no"\nbogus = "1"\n'
        '[channels.shop.repricing]\nstrategy = "undercut"\n', encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_all(tmp_path)
    problems = "\n".join(info.value.problems)
    path = tmp_path / "pricing.toml"
    assert f"{path}: defaults.markup_pct = 10.5: write the amount as a string" in problems
    assert f"{path}: defaults.rounding = '0.999': rounding is" in problems
    assert f"{path}: channels.shop.commission_pct = '120':" in problems
    assert f"{path}: channels.shop.fixed_fee = '1.234':" in problems
    assert f"{path}: channels.shop.enabled = 'no':" in problems
    assert f"{path}: channels.shop.bogus = '1': unknown key" in problems
    assert f"{path}: channels.shop.repricing.strategy = 'undercut':" in problems
