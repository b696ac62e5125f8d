"""Channel prices: the rules of ``mappings/pricing.toml`` and the pure function that applies them.

Every amount is a Decimal; nothing here touches the database or a channel, so ``hub prices
explain`` and the push run show exactly the same computation.

The file has a ``[defaults]`` table and ``[channels.NAME]`` tables (NAME = the connector's name
in the config, e.g. ``marketplace``) that override the defaults key by key (``repricing`` too,
key by key). Money and percentages are written as strings (``"10"``, ``"1.50"``): a float is
refused, because 0.1 is not a price. ``"none"`` clears an inherited ``ceiling``,
``ceiling_pct`` or ``max_changes_per_run``.

The computation (``decide``), in order:

1. ``enabled = false`` (the kill switch): no price is decided, nothing is pushed.
2. VAT: the SKU's code gives the rate (``hub.kernel.vat``); ``zw``, ``np`` and ``oo`` count as 0 % for the
   net amount.
3. Floor (needs the ERP's net cost; a cost of 0 or less counts as missing, because ERPs write 0
   when the purchase price is unknown). With P the gross price the buyer pays, v the VAT rate,
   c the channel's commission (charged on P), F the fixed fee per unit and m the minimum margin,
   what the seller keeps must cover the cost plus the margin::

       P / (1 + v)  -  c * P  -  F   >=   cost_net * (1 + m)

   so::

       floor = (cost_net * (1 + m) + F) * (1 + v) / (1 - c * (1 + v))

   computed exactly (integer arithmetic on the Decimals' exact ratios) and rounded UP to the
   cent, so the floor itself satisfies the inequality and one cent less does not. ``fixed_fee``
   and the commission are the gross amounts the channel bills and are counted in full: the VAT
   on the channel's invoice, which a VAT payer deducts, is not credited, so the floor errs on
   the safe side. If c * (1 + v) >= 1 no price covers the commission: the SKU is refused.
4. Base: ``erp_gross`` = the ERP's gross price; ``cost_plus`` = cost_net * (1 + v) (refused
   without a cost). List price = base * (1 + markup), to the cent (half up).
5. Ceiling (optional): ``ceiling`` (absolute, gross) and ``ceiling_pct`` (over the ERP's gross
   price, rounded down to the cent); both set: the lower one. A ceiling is the seller's explicit
   maximum, so a price above it is capped at it (and says so); a ceiling under the floor is a
   contradiction and the SKU is refused.
6. Repricing (optional, needs a competitor price and a floor): target = lowest competitor price
   - ``beat_by`` (``beat``) or = it (``match``). A target under the floor is REFUSED, never
   clamped: the listing keeps its last price and the refusal is recorded. A target above the
   list price is followed only up to the ceiling; without a ceiling repricing never raises the
   price above the list price. While repricing, the price never exceeds the target.
7. The candidate (list price, ceiling or repricing target) under the floor is refused.
8. Rounding: to the NEAREST allowed price (ties up). If that lands above the ceiling or the
   repricing target, the highest allowed price at or below it is taken; if it lands under the
   floor, the lowest allowed price at or above the floor. No allowed price between the floor
   and the upper limit: refused. So the pushed price always ends as configured, never exceeds
   the ceiling and is never under the floor.

Rounding values: ``"none"`` (to the cent); ``"end:E"`` or just ``"E"`` (the price ends in E:
``"0.99"`` gives 12.99, 13.99; ``"0.09"`` gives 12.49, 12.59; ``"9.99"`` gives 19.99, 29.99; the
pattern repeats every power of ten above E); ``"step:S"`` (a multiple of S: ``"step:0.05"``
gives 12.35, 12.40).
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from decimal import ROUND_CEILING, ROUND_FLOOR, ROUND_HALF_UP, Context, Decimal, Inexact, getcontext, localcontext
from functools import lru_cache
from typing import Annotated, Any, Literal, NamedTuple

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, field_validator, model_validator

from hub.kernel.money import GROSZ
from hub.kernel.vat import NO_VAT_CODES, VAT_PERCENT, percent_for_net
from hub.platform.mappings import register_schema

CENT = GROSZ
HUNDRED = Decimal(100)

_CLEARABLE = ("ceiling", "ceiling_pct", "max_changes_per_run")
VAT_PERCENT_VALUES = tuple(p for p in VAT_PERCENT.values() if p is not None)


# --- rounding ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Rounding:
    """Allowed prices are ``offset + k * modulus`` for whole k >= 0 (all multiples of a cent)."""

    text: str
    offset: Decimal
    modulus: Decimal

    def describe(self) -> str:
        if self.text == "none":
            return "to the cent"
        if self.offset == 0:
            return f"a multiple of {self.modulus}"
        return f"ending in {self.offset} (every {self.modulus})"

    def _k(self, price: Decimal, mode: str) -> Decimal:
        return ((price - self.offset) / self.modulus).to_integral_value(rounding=mode)

    def _at(self, k: Decimal) -> Decimal:
        return (self.offset + max(k, Decimal(0)) * self.modulus).quantize(CENT)

    def nearest(self, price: Decimal) -> Decimal:
        return self._at(self._k(price, ROUND_HALF_UP))

    def at_or_above(self, price: Decimal) -> Decimal:
        return self._at(self._k(price, ROUND_CEILING))

    def at_or_below(self, price: Decimal) -> Decimal | None:
        k = self._k(price, ROUND_FLOOR)
        return None if k < 0 else self._at(k)



@lru_cache(maxsize=64)
def parse_rounding(text: str) -> Rounding:
    """Parse a ``rounding`` value; ValueError names the accepted forms."""
    usage = 'rounding is "none", "end:E" (or just "E", e.g. "0.99", "0.09", "9.99") or "step:S" (e.g. "step:0.05")'
    if text == "none":
        return Rounding(text, Decimal(0), CENT)
    kind, _, amount = text.partition(":") if ":" in text else ("end", ":", text)
    try:
        value = Decimal(amount)
    except ArithmeticError:
        raise ValueError(usage) from None
    if kind not in ("end", "step") or not value.is_finite() or not 0 < value <= 10000 or value != value.quantize(CENT):
        raise ValueError(usage)
    if kind == "step":
        return Rounding(text, Decimal(0), value.quantize(CENT))
    modulus = Decimal(1).scaleb(value.adjusted() + 1)  # the power of ten just above E
    return Rounding(text, value.quantize(CENT), modulus)


# --- the file -------------------------------------------------------------------------------


def _no_float(value: Any) -> Any:
    if isinstance(value, bool):
        raise ValueError('write the amount as a string, e.g. "10" (a yes/no is not an amount)')
    if isinstance(value, float):
        raise ValueError(f'write the amount as a string, e.g. "{value}" (money and rates are never floats)')
    return value


# a fee, ceiling or step beyond a billion zloty is a typo (and would print the floor in exponent form)
_MONEY_MAX = Decimal(10) ** 9
Money = Annotated[Decimal, Field(ge=0, le=_MONEY_MAX, decimal_places=2, allow_inf_nan=False)]
PositiveMoney = Annotated[Decimal, Field(gt=0, le=_MONEY_MAX, decimal_places=2, allow_inf_nan=False)]
Markup = Annotated[Decimal, Field(gt=-100, le=1000, decimal_places=4, allow_inf_nan=False)]
Commission = Annotated[Decimal, Field(ge=0, lt=100, decimal_places=4, allow_inf_nan=False)]
Margin = Annotated[Decimal, Field(ge=0, le=1000, decimal_places=4, allow_inf_nan=False)]
CeilingPct = Annotated[Decimal, Field(ge=0, le=1000, decimal_places=4, allow_inf_nan=False)]
ChangeCap = Annotated[StrictInt, Field(ge=1)]
Strategy = Literal["off", "beat", "match"]
Base = Literal["erp_gross", "cost_plus"]


class _Fields(BaseModel):
    """Validators shared by the full rules and the per-channel overrides."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    @field_validator("*", mode="before")
    @classmethod
    def _amounts_not_floats(cls, value: Any, info: Any) -> Any:
        if info.field_name in _CLEARABLE and value == "none":
            return None
        if info.field_name in ("enabled", "strategy", "base", "rounding", "repricing", "max_changes_per_run"):
            return value
        return _no_float(value)

    @field_validator("rounding", mode="after", check_fields=False)
    @classmethod
    def _rounding(cls, value: str | None) -> str | None:
        if value is not None:
            parse_rounding(value)
        return value


class Repricing(_Fields):
    strategy: Strategy = "off"
    beat_by: PositiveMoney = Decimal("0.01")


class RepricingOverride(_Fields):
    strategy: Strategy | None = None
    beat_by: PositiveMoney | None = None


class PriceRule(_Fields):
    """One channel's complete pricing rule (the defaults with the channel's overrides applied)."""

    enabled: StrictBool = True
    base: Base = "erp_gross"
    markup_pct: Markup = Decimal(0)
    commission_pct: Commission = Decimal(0)
    fixed_fee: Money = Decimal(0)
    rounding: str = "none"
    min_margin_pct: Margin = Decimal(0)
    ceiling: PositiveMoney | None = None
    ceiling_pct: CeilingPct | None = None
    max_changes_per_run: ChangeCap | None = None
    repricing: Repricing = Repricing()

    @property
    def rounding_rule(self) -> Rounding:
        return parse_rounding(self.rounding)


class PriceRuleOverride(_Fields):
    """A ``[channels.NAME]`` table: only the keys it sets replace the defaults."""

    enabled: StrictBool | None = None
    base: Base | None = None
    markup_pct: Markup | None = None
    commission_pct: Commission | None = None
    fixed_fee: Money | None = None
    rounding: str | None = None
    min_margin_pct: Margin | None = None
    ceiling: PositiveMoney | None = None
    ceiling_pct: CeilingPct | None = None
    max_changes_per_run: ChangeCap | None = None
    repricing: RepricingOverride | None = None


class PricingFile(BaseModel):
    """Schema of ``mappings/pricing.toml``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    defaults: PriceRule = PriceRule()
    channels: dict[str, PriceRuleOverride] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _a_price_can_clear_the_floor(self) -> PricingFile:
        """A commission or fee that refuses every SKU is a typo ("95" for "9.5"), not a rule: said at load."""
        problems = [f"defaults.{key} = {value!r}: {why}" for key, value, why in _unsellable(self.defaults)]
        for name, override in sorted(self.channels.items()):
            for key, value, why in _unsellable(self.rule_for(name)):
                where = f"channels.{name}.{key}" if key in override.model_fields_set else (
                    f"channels.{name} (with defaults.{key})")
                if where.startswith(f"channels.{name}.") or f"defaults.{key} = {value!r}: {why}" not in problems:
                    problems.append(f"{where} = {value!r}: {why}")
        if problems:
            raise ValueError("; ".join(problems))
        return self

    def rule_for(self, channel: str) -> PriceRule:
        """The defaults overridden key by key by ``[channels.<channel>]`` (if there is one)."""
        override = self.channels.get(channel)
        if override is None:
            return self.defaults
        merged = self.defaults.model_dump()
        for key in override.model_fields_set:
            if key == "repricing" and override.repricing is not None:
                merged["repricing"].update(override.repricing.model_dump(exclude_unset=True))
            else:
                merged[key] = getattr(override, key)
        return PriceRule.model_validate(merged)


def _unsellable(rule: PriceRule) -> list[tuple[str, str, str]]:
    """(key, value, why) for each setting under which no price of some VAT rate can clear the floor."""
    out: list[tuple[str, str, str]] = []
    top = max(VAT_PERCENT_VALUES)
    taken = rule.commission_pct * (1 + top / HUNDRED)
    if taken >= HUNDRED:
        out.append(("commission_pct", str(rule.commission_pct),
                    f"at {_pct(top)} VAT the commission takes {_pct(taken.quantize(CENT))} of the net price, so no "
                    f"price of a {_pct(top)} VAT product can clear the floor (a percentage: \"12.3\" is 12.3 %)"))
    elif rule.ceiling is not None:
        # the lowest floor there is: no cost, no margin, no VAT -- the fee and the commission alone
        lowest = _ceil_div_to_cent(rule.fixed_fee, 1 - rule.commission_pct / HUNDRED)
        if lowest > rule.ceiling:
            out.append(("fixed_fee", str(rule.fixed_fee),
                        f"with the commission of {_pct(rule.commission_pct)} the fee alone puts the floor at "
                        f"{lowest}, over the ceiling of {rule.ceiling}: no price can clear the floor"))
    return out


register_schema("pricing.toml", PricingFile)


# --- the decision -------------------------------------------------------------------------


class Step(NamedTuple):
    label: str
    value: Decimal | str | None
    explanation: str


@dataclass(frozen=True)
class PriceInputs:
    """What the hub knows about one SKU on one channel."""

    sku: str
    price_gross: Decimal  # the ERP's gross price
    cost_net: Decimal | None  # the ERP's net purchase cost; None: unknown
    vat_rate: str  # "23", "8", "5", "0", "zw", "np", "oo"
    competitor_price: Decimal | None = None  # lowest competitor's gross price on this channel
    channel: str = ""
    currency: str = "PLN"  # of price_gross; the rules' fees and ceilings are PLN


@dataclass(frozen=True)
class PriceDecision:
    sku: str
    channel: str
    price: Decimal | None  # what to push (2 dp); None: refused or disabled
    floor: Decimal | None
    ceiling: Decimal | None
    refused: bool
    disabled: bool
    reason: str
    proposed: Decimal | None  # the refused price (for the refusal record), else the pushed one
    steps: tuple[Step, ...] = field(default=())


def _num(value: Decimal) -> str:
    return f"{value.normalize():f}"


def _pct(value: Decimal) -> str:
    return f"{_num(value)}%"


def _exact() -> AbstractContextManager[Context]:
    """A context in which the floor's sums and products are exact (Inexact raises, never rounds)."""
    ctx = getcontext().copy()
    ctx.prec = 200
    ctx.traps[Inexact] = True
    return localcontext(ctx)


def _ceil_div_to_cent(numerator: Decimal, denominator: Decimal) -> Decimal:
    """ceil(numerator / denominator) to the cent, exactly (no division rounding): denominator > 0."""
    a, b = numerator.as_integer_ratio()
    c, d = denominator.as_integer_ratio()
    num, den = 100 * a * d, b * c
    return Decimal(-(-num // den)).scaleb(-2)


def floor_price(cost_net: Decimal, vat_percent: Decimal, rule: PriceRule) -> tuple[Decimal | None, str]:
    """The lowest gross price that keeps the minimum margin (None: no price can), and the arithmetic."""
    with _exact():
        one_v = 1 + vat_percent / HUNDRED
        needed = cost_net * (1 + rule.min_margin_pct / HUNDRED) + rule.fixed_fee
        numerator = needed * one_v
        denominator = 1 - rule.commission_pct / HUNDRED * one_v
    formula = (f"(cost {cost_net} * (1 + margin {_pct(rule.min_margin_pct)}) + fee {rule.fixed_fee}) * {one_v} VAT"
               f" / (1 - commission {_pct(rule.commission_pct)} * {one_v})")
    if denominator <= 0:
        return None, f"{formula}: the commission takes the whole net price, no price covers the cost"
    value = _ceil_div_to_cent(numerator, denominator)
    return value, f"{formula} = {_num(numerator)} / {_num(denominator)}, rounded up to the cent"


class _Refusal(Exception):
    """Raised by a step of ``decide`` that refuses the SKU (``candidate``: the price it refused, if any)."""

    def __init__(self, reason: str, candidate: Decimal | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.candidate = candidate


@dataclass
class _Trace:
    """What ``decide`` has found so far: the steps ``hub prices explain`` prints, the floor and the ceiling."""

    sku: str
    channel: str
    steps: list[Step] = field(default_factory=list)
    floor: Decimal | None = None
    ceiling: Decimal | None = None

    def add(self, label: str, value: Decimal | str | None, explanation: str) -> None:
        self.steps.append(Step(label, value, explanation))

    def decision(self, price: Decimal | None, reason: str, *, candidate: Decimal | None = None,
                 disabled: bool = False) -> PriceDecision:
        """The last step (the price, the refusal or the kill switch's result) and the decision."""
        refused = price is None and not disabled
        if refused:
            self.add("refused", candidate, reason + "; the listing keeps its last price")
        else:
            self.add("result" if disabled else "price", price, reason)
        return PriceDecision(self.sku, self.channel, price, self.floor, self.ceiling, refused, disabled, reason,
                             price if price is not None else candidate, tuple(self.steps))


class _Candidate(NamedTuple):
    price: Decimal  # before rounding
    source: str  # what it is: the list price, the ceiling or the repricing target
    upper: Decimal | None  # the limit rounding must keep: the ceiling or the repricing target


def decide(rule: PriceRule, inputs: PriceInputs) -> PriceDecision:
    """Apply ``rule`` to one SKU, step by step (the module's docstring explains each one).

    Pure: the same inputs always give the same decision and steps.
    """
    trace = _Trace(inputs.sku, inputs.channel)
    try:
        if not _channel_enabled(trace, rule, inputs.currency):
            return trace.decision(None, "pricing is switched off for this channel: no price is pushed", disabled=True)
        vat = _vat(trace, inputs.vat_rate)
        cost = _cost(trace, inputs.cost_net)
        _floor(trace, rule, cost, vat)
        base = _base(trace, rule, inputs.price_gross, cost, vat)
        list_price = _list_price(trace, rule, base)
        _ceiling(trace, rule, inputs.price_gross)
        target = _repricing_target(trace, rule, inputs.competitor_price)
        candidate = _candidate(trace, list_price, target)
        _floor_check(trace, candidate)
        price = _round(trace, rule.rounding_rule, candidate)
        _margin(trace, rule, price, cost, vat)
    except _Refusal as refusal:
        return trace.decision(None, refusal.reason, candidate=refusal.candidate)
    return trace.decision(price, "pushed to the channel")


def _channel_enabled(trace: _Trace, rule: PriceRule, currency: str) -> bool:
    """1. The kill switch (False: switched off); an ERP price in another currency than PLN is refused."""
    if not rule.enabled:
        trace.add("channel", "disabled", "enabled = false in pricing.toml (the kill switch)")
        return False
    trace.add("channel", "enabled", f"rule: base {rule.base}, rounding {rule.rounding!r}")
    if currency != "PLN":
        trace.add("currency", currency, "the rules' fees, ceilings and beat_by are PLN")
        raise _Refusal(f"the ERP price is in {currency}, the pricing rules are in PLN")
    return True


def _vat(trace: _Trace, code: str) -> Decimal:
    """2. The VAT percentage for the net amount; an unknown code is refused."""
    percent = percent_for_net(code)
    if percent is None:
        trace.add("VAT", None, f"unknown VAT code {code!r}")
        raise _Refusal(f"unknown VAT code {code!r}: neither net price nor floor can be computed")
    trace.add("VAT", _pct(percent), f"code {code!r}" + (" (0% for the net amount)" if code in NO_VAT_CODES else ""))
    return percent


def _cost(trace: _Trace, cost_net: Decimal | None) -> Decimal | None:
    """3a. The ERP's net cost; 0 or less counts as unknown (None)."""
    if cost_net is not None and cost_net > 0:
        trace.add("cost (net)", cost_net, "from the ERP")
        return cost_net
    what = "no cost" if cost_net is None else f"cost {cost_net} (0 or less counts as unknown)"
    trace.add("cost (net)", None, f"the ERP gives {what}")
    return None


def _floor(trace: _Trace, rule: PriceRule, cost: Decimal | None, vat: Decimal) -> None:
    """3b. The floor, into ``trace.floor`` (none without a cost); refused when no price can reach the margin."""
    if cost is None:
        trace.add("floor", None, "no floor can be computed without the cost")
        return
    trace.floor, arithmetic = floor_price(cost, vat, rule)
    trace.add("floor", trace.floor, arithmetic)
    if trace.floor is None:
        raise _Refusal("the commission leaves nothing of the net price: no price can reach the margin")


def _base(trace: _Trace, rule: PriceRule, price_gross: Decimal, cost: Decimal | None, vat: Decimal) -> Decimal:
    """4a. The base: the ERP's gross price, or the cost plus VAT; refused when it cannot be had."""
    if rule.base == "cost_plus":
        if cost is None:
            raise _Refusal("base = cost_plus needs the ERP's cost, and this SKU has none")
        base = (cost * (1 + vat / HUNDRED)).quantize(CENT, ROUND_HALF_UP)
        trace.add("base", base, f"cost_plus: cost {cost} * (1 + VAT {_pct(vat)}), to the cent")
        return base
    trace.add("base", price_gross, "erp_gross: the ERP's gross price")
    if price_gross <= 0:
        raise _Refusal(f"the ERP's gross price {price_gross} is not positive")
    return price_gross


def _list_price(trace: _Trace, rule: PriceRule, base: Decimal) -> Decimal:
    """4b. The base with the markup, to the cent."""
    list_price = (base * (1 + rule.markup_pct / HUNDRED)).quantize(CENT, ROUND_HALF_UP)
    trace.add("list price", list_price, f"base {base} * (1 + markup {_pct(rule.markup_pct)}), to the cent")
    return list_price


def _ceiling(trace: _Trace, rule: PriceRule, price_gross: Decimal) -> None:
    """5. The lower of the configured ceilings, into ``trace.ceiling``; a ceiling under the floor is refused."""
    limits: list[tuple[Decimal, str]] = []
    if rule.ceiling is not None:
        limits.append((rule.ceiling, f"ceiling {rule.ceiling}"))
    if rule.ceiling_pct is not None:
        by_pct = (price_gross * (1 + rule.ceiling_pct / HUNDRED)).quantize(CENT, ROUND_FLOOR)
        limits.append((by_pct, f"ERP price {price_gross} * (1 + {_pct(rule.ceiling_pct)}), rounded down"))
    if not limits:
        trace.add("ceiling", None, "none configured")
        return
    trace.ceiling, why = min(limits)
    trace.add("ceiling", trace.ceiling, why + (" (the lower of the two)" if len(limits) > 1 else ""))
    if trace.floor is not None and trace.ceiling < trace.floor:
        raise _Refusal(f"the ceiling {trace.ceiling} is under the floor {trace.floor}", trace.ceiling)


def _repricing_target(trace: _Trace, rule: PriceRule, competitor: Decimal | None) -> Decimal | None:
    """6. The target against the lowest competitor (None: no repricing); refused without a floor or under it."""
    strategy = rule.repricing.strategy
    if strategy == "off":
        trace.add("repricing", "off", "strategy off")
        return None
    if competitor is None or competitor <= 0:
        trace.add("repricing", None, "no competitor price for this SKU and channel: the list price stands"
                  if competitor is None else f"competitor price {competitor} ignored (not positive)")
        return None
    target = competitor - rule.repricing.beat_by if strategy == "beat" else competitor
    how = (f"beat the lowest competitor {competitor} by {rule.repricing.beat_by}" if strategy == "beat"
           else f"match the lowest competitor {competitor}")
    trace.add("repricing", target, how)
    if trace.floor is None:
        raise _Refusal("repricing without a floor is refused: the ERP gives no cost for this SKU", target)
    if target < trace.floor:
        raise _Refusal(f"repricing target {target} ({how}) is under the floor {trace.floor}", target)
    return target


def _candidate(trace: _Trace, list_price: Decimal, target: Decimal | None) -> _Candidate:
    """7a. The price to round: the list price capped at the ceiling, or the repricing target."""
    ceiling = trace.ceiling
    if target is None:
        price = list_price if ceiling is None else min(list_price, ceiling)
        candidate = _Candidate(price, "list price" if price == list_price else "capped at the ceiling", ceiling)
    else:
        upper = target if ceiling is None else min(target, ceiling)
        if target <= list_price:
            candidate = _Candidate(min(target, upper), "repricing target", upper)
        elif ceiling is not None:
            candidate = _Candidate(upper, "repricing target, up to the ceiling", upper)
        else:
            candidate = _Candidate(list_price, "repricing target is above the list price and no ceiling allows more",
                                   upper)
    trace.add("candidate", candidate.price, candidate.source)
    return candidate


def _floor_check(trace: _Trace, candidate: _Candidate) -> None:
    """7b. A candidate under the floor is refused, never clamped."""
    if trace.floor is None:
        trace.add("floor check", "skipped", "no floor (no cost)")
        return
    if candidate.price < trace.floor:
        raise _Refusal(f"{candidate.source} {candidate.price} is under the floor {trace.floor}", candidate.price)
    trace.add("floor check", "ok", f"{candidate.price} ≥ floor {trace.floor}")


def _round(trace: _Trace, rounding: Rounding, candidate: _Candidate) -> Decimal:
    """8. The nearest allowed price, kept under the upper limit and at or above the floor (or a cent)."""
    upper = candidate.upper
    price: Decimal | None = rounding.nearest(candidate.price)
    notes = [f"nearest price {rounding.describe()}: {price}"]
    if upper is not None and price is not None and price > upper:
        price = rounding.at_or_below(upper)
        notes.append(f"above the limit {upper}: {price if price is not None else 'no allowed price below it'}")
    lowest = max(trace.floor if trace.floor is not None else CENT, CENT)
    if price is None or price < lowest:
        raised = rounding.at_or_above(lowest)
        notes.append(f"under the {'floor' if trace.floor is not None else 'minimum'} {lowest}: moved up to {raised}")
        if upper is not None and raised > upper:
            trace.add("rounding", None, "; ".join(notes))
            raise _Refusal(f"no price {rounding.describe()} lies between the floor {lowest} and the limit {upper}",
                           candidate.price)
        price = raised
    trace.add("rounding", price, "; ".join(notes))
    return price


def _margin(trace: _Trace, rule: PriceRule, price: Decimal, cost: Decimal | None, vat: Decimal) -> None:
    """What the seller keeps of ``price`` over the cost (shown when there is a cost)."""
    if cost is None:
        return
    kept = price / (1 + vat / HUNDRED) - price * rule.commission_pct / HUNDRED - rule.fixed_fee
    margin = ((kept - cost) / cost * HUNDRED).quantize(CENT, ROUND_FLOOR)
    trace.add("margin", _pct(margin), f"net {_num(kept.quantize(CENT, ROUND_FLOOR))} after VAT, "
              f"commission and fee, over cost {cost} (minimum {_pct(rule.min_margin_pct)})")


# --- for the CLI ----------------------------------------------------------------------------


def format_explanation(decision: PriceDecision) -> str:
    """The decision's steps as aligned lines, for ``hub prices explain``."""
    where = f" on {decision.channel}" if decision.channel else ""
    lines = [f"{decision.sku}{where}"]
    shown = [(s.label, "—" if s.value is None else str(s.value), s.explanation) for s in decision.steps]
    label_w = max((len(label) for label, _, _ in shown), default=0)
    value_w = max((len(value) for _, value, _ in shown), default=0)
    for number, (label, value, explanation) in enumerate(shown, 1):
        lines.append(f"{number:>3}. {label:<{label_w}}  {value:>{value_w}}  {explanation}".rstrip())
    return "\n".join(lines)
