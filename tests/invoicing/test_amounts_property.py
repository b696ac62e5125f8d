"""The invoice's totals against an independent recomputation (exact fractions, integer grosze) for random
baskets: mixed rates, quantities, discounts as negative charges, gross and net prices, foreign currency;
and every such invoice's FA(3) document is valid against the Ministry's schema."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from fractions import Fraction
from types import SimpleNamespace

from hypothesis import given, settings
from hypothesis import strategies as st

from hub.invoicing.amounts import LineIn, compute
from hub.invoicing.fa3 import render
from hub.invoicing.rates import RATES
from hub.invoicing.schemas import fa3, problems

PERCENTS = {"23": 23, "8": 8, "5": 5}


def half_up(value: Fraction) -> int:
    """To whole grosze, half a grosz and more away from zero (the Polish rule, negatives mirrored)."""
    sign = -1 if value < 0 else 1
    magnitude = abs(value)
    whole = int(magnitude)
    return sign * (whole + (1 if magnitude - whole >= Fraction(1, 2) else 0))


def expected(lines: list[LineIn], basis: str, rate: Decimal | None) -> dict[str, tuple[int, int, int, int | None]]:
    """Per rate: (net, vat, gross, vat in PLN) in grosze, computed without Decimal or the hub's code."""
    sums: dict[str, int] = {}
    for line in lines:
        value = half_up(Fraction(line.unit_price) * Fraction(line.quantity) * 100)
        sums[line.rate] = sums.get(line.rate, 0) + value
    out: dict[str, tuple[int, int, int, int | None]] = {}
    for code, total in sums.items():
        percent = PERCENTS.get(code, 0)
        if basis == "gross":
            vat = half_up(Fraction(total * percent, 100 + percent))
            net, gross = total - vat, total
        else:
            vat = half_up(Fraction(total * percent, 100))
            net, gross = total, total + vat
        pln = half_up(Fraction(vat) * Fraction(rate)) if rate is not None and code in PERCENTS else None
        out[code] = (net, vat, gross, pln)
    return out


def grosze(value: Decimal) -> int:
    return int(value * 100)


prices = st.decimals(min_value=Decimal("0.01"), max_value=Decimal("99999.99"), places=2)
unit_prices = st.one_of(prices, st.decimals(min_value=Decimal("0.0001"), max_value=Decimal("999.9999"), places=4))
quantities = st.one_of(st.integers(1, 500).map(Decimal),
                       st.decimals(min_value=Decimal("0.001"), max_value=Decimal("50"), places=3))
goods = st.builds(lambda price, quantity, rate: LineIn("towar", quantity, price, rate),
                  unit_prices, quantities, st.sampled_from(["23", "8", "5", "0 KR", "zw", "np I"]))
discounts = st.builds(lambda price, rate: LineIn("rabat", Decimal(1), -price, rate, kind="fee"),
                      st.decimals(min_value=Decimal("0.01"), max_value=Decimal("50.00"), places=2),
                      st.sampled_from(["23", "8", "5"]))
baskets = st.tuples(st.lists(goods, min_size=1, max_size=12), st.lists(discounts, max_size=2)).map(
    lambda pair: pair[0] + pair[1])
exchange = st.one_of(st.none(), st.decimals(min_value=Decimal("0.0100"), max_value=Decimal("20.0000"), places=4))


@settings(max_examples=300, deadline=None)
@given(baskets, st.sampled_from(["gross", "net"]), exchange)
def test_totals_per_rate_equal_an_independent_recomputation(lines: list[LineIn], basis: str,
                                                            rate: Decimal | None) -> None:
    amounts = compute(lines, basis, rate)  # type: ignore[arg-type]
    want = expected(lines, basis, rate)
    got = {r.rate: (grosze(r.net), grosze(r.vat), grosze(r.gross), None if r.vat_pln is None else grosze(r.vat_pln))
           for r in amounts.rates}
    assert got == want
    assert [r.rate for r in amounts.rates] == [code for code in RATES if code in want]  # FA(3)'s order
    assert amounts.gross == sum((r.gross for r in amounts.rates), Decimal(0))
    assert amounts.net + amounts.vat == amounts.gross
    if basis == "gross":  # priced gross: the buyer pays exactly the lines' sum
        assert amounts.gross == sum((line.gross for line in amounts.lines), Decimal(0))


SELLER = {"name": "Sklep", "nip": "5260250274", "street": "ul. A 1", "city": "Poznań", "postal_code": "60-001"}


@settings(max_examples=60, deadline=None)
@given(baskets, st.sampled_from(["gross", "net"]), exchange, st.sampled_from(["PLN", "EUR", "USD"]))
def test_every_random_invoice_is_valid_fa3(lines: list[LineIn], basis: str, rate: Decimal | None,
                                           currency: str) -> None:
    if currency == "PLN":
        rate = None
    amounts = compute(lines, basis, rate)  # type: ignore[arg-type]
    invoice = SimpleNamespace(
        kind="VAT", number="FV/1/12/2026", issue_date=date(2026, 12, 2), sale_date=date(2026, 12, 1),
        currency=currency, exchange_rate=rate, basis=basis, gross=amounts.gross, split_payment=False, reason=None,
        rates=[{"rate": r.rate, "net": str(r.net), "vat": str(r.vat), "gross": str(r.gross),
                "vat_pln": None if r.vat_pln is None else str(r.vat_pln)} for r in amounts.rates],
        buyer={"name": "Firma", "nip": "7740001454", "country": "PL"},
        seller={**SELLER, "exemption_basis": "art. 43 ust. 1 pkt 1"},
        payment={"form": "transfer", "paid_at": "2026-12-01"})
    rows = [SimpleNamespace(line_no=n, name=line.name, sku=None, unit=line.unit, quantity=line.quantity,
                            rate=line.rate, unit_net=line.unit_net, unit_gross=line.unit_gross, net=line.net,
                            gross=line.gross) for n, line in enumerate(amounts.lines, 1)]
    xml = render(invoice, rows, created_at=datetime(2026, 12, 2, 10, 0, tzinfo=UTC))  # type: ignore[arg-type]
    assert problems(fa3(), xml) == []
