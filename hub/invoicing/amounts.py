"""An invoice's amounts: pure Decimal arithmetic, written down once and tested against an independent
recomputation (tests/invoicing/test_amounts_property.py).

The rules:
- Money rounds to the grosz the Polish way (hub.kernel.money.to_grosz: half a grosz and more up).
- A line's value is its unit price times its quantity, rounded once.
- Marketplace prices are gross (what the buyer paid), so a channel order's invoice is priced gross
  (art. 106e ust. 7-8: P_9B unit gross price, P_11A gross value). Per rate, the VAT is computed on the
  rate's gross sum, ``vat = round(gross * p / (100 + p))``, and the net is ``gross - vat``; the buyer's
  total is then exactly what was paid.
- An invoice priced net (P_9A, P_11) computes the VAT on each rate's net sum (art. 106e ust. 1 pkt 14):
  ``vat = round(net * p / 100)``, ``gross = net + vat``.
- Each line's own net and VAT are shown for information; the rate's total is the one that counts.
- Rates without VAT (zw, np, oo) and the zero rates have VAT 0.00.
- In a foreign currency each rate's VAT is also stated in PLN (P_14_xW): ``round(vat * exchange rate)``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import Literal

from hub.invoicing.rates import PERCENT, RATES, InvoiceRate, rate_percent
from hub.kernel.money import to_grosz

Basis = Literal["gross", "net"]
ZERO = Decimal("0.00")
UNIT_PLACES = Decimal("0.00000001")  # FA(3)'s unit prices carry up to 8 decimals (TKwotowy2)


@dataclass(frozen=True)
class LineIn:
    """A line as the invoice is asked to carry it: the unit price is gross or net as the basis says."""

    name: str
    quantity: Decimal
    unit_price: Decimal
    rate: InvoiceRate
    unit: str = "szt."
    sku: str | None = None
    kind: str = "goods"  # goods | shipping | fee
    annex15: bool = False  # goods of Annex 15 (split payment)


@dataclass(frozen=True)
class Line:
    name: str
    quantity: Decimal
    unit: str
    rate: InvoiceRate
    unit_net: Decimal
    unit_gross: Decimal
    net: Decimal
    vat: Decimal
    gross: Decimal
    sku: str | None
    kind: str
    annex15: bool


@dataclass(frozen=True)
class RateTotal:
    rate: InvoiceRate
    net: Decimal
    vat: Decimal
    gross: Decimal
    vat_pln: Decimal | None  # only in a foreign currency


@dataclass(frozen=True)
class Amounts:
    basis: Basis
    lines: list[Line]
    rates: list[RateTotal]
    net: Decimal
    vat: Decimal
    gross: Decimal


def vat_of_gross(gross: Decimal, rate: InvoiceRate) -> Decimal:
    percent = rate_percent(rate)
    return to_grosz(gross * percent / (100 + percent)) if percent else ZERO


def vat_of_net(net: Decimal, rate: InvoiceRate) -> Decimal:
    percent = rate_percent(rate)
    return to_grosz(net * percent / 100) if percent else ZERO


def _unit(value: Decimal) -> Decimal:
    return value.quantize(UNIT_PLACES, rounding=ROUND_HALF_UP).normalize()


def line_amounts(line: LineIn, basis: Basis) -> Line:
    value = to_grosz(line.unit_price * line.quantity)
    percent = rate_percent(line.rate)
    if basis == "gross":
        vat = vat_of_gross(value, line.rate)
        net, gross = value - vat, value
        unit_gross, unit_net = line.unit_price, line.unit_price * 100 / (100 + percent)
    else:
        vat = vat_of_net(value, line.rate)
        net, gross = value, value + vat
        unit_net, unit_gross = line.unit_price, line.unit_price * (100 + percent) / 100
    return Line(name=line.name, quantity=line.quantity, unit=line.unit, rate=line.rate, unit_net=_unit(unit_net),
                unit_gross=_unit(unit_gross), net=net, vat=vat, gross=gross, sku=line.sku, kind=line.kind,
                annex15=line.annex15)


def compute(lines: Sequence[LineIn], basis: Basis, exchange_rate: Decimal | None = None) -> Amounts:
    """The invoice's lines and totals. A correction's lines are differences: a returned unit is a
    negative quantity, so its values and the totals are negative."""
    computed = [line_amounts(line, basis) for line in lines]
    rates: list[RateTotal] = []
    for rate in RATES:
        members = [line for line in computed if line.rate == rate]
        if not members:
            continue
        if basis == "gross":
            gross = sum((line.gross for line in members), ZERO)
            vat = vat_of_gross(gross, rate)
            net = gross - vat
        else:
            net = sum((line.net for line in members), ZERO)
            vat = vat_of_net(net, rate)
            gross = net + vat
        vat_pln = None
        if exchange_rate is not None and PERCENT[rate]:
            vat_pln = to_grosz(vat * exchange_rate)
        rates.append(RateTotal(rate, net, vat, gross, vat_pln))
    return Amounts(basis=basis, lines=computed, rates=rates, net=sum((r.net for r in rates), ZERO),
                   vat=sum((r.vat for r in rates), ZERO), gross=sum((r.gross for r in rates), ZERO))
