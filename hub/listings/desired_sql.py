"""Desired state computed in the database, for the rules and rows whose arithmetic SQL can do exactly.

A pricing-rule change moves every price of the catalogue: a million SKUs on two channels through
``pricing.decide`` one listing at a time took minutes (bench/scale.py step c). For a channel whose rule
has no ceiling, no repricing and prices from the ERP's gross price, ``decide`` is a fixed formula:
the list price, the floor, the rounding. Here it is written as one UPDATE per channel over the dirty
SKUs, in integer grosz (prices below 1,000,000 PLN, costs below 100,000 PLN, so every product stays
within 64 bits on SQLite; PostgreSQL computes in NUMERIC anyway), and the available-to-sell with it.
What SQL does not do stays with ``decide`` (hub.listings.desired): other rules, rows out of those
bounds, and every price the floor refuses (its refusal is recorded with the reason ``decide`` gives).
tests/listings/test_desired_sql.py checks the two against each other on generated rules and rows.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import BigInteger, Integer, Numeric, and_, case, cast, exists, func, literal, or_, select, update
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from hub.catalog import Product, StockLevel
from hub.listings.models import Listing, PriceRefusal
from hub.listings.pricing import PriceRule, parse_rounding
from hub.listings.stock_rules import ALL_WAREHOUSES, StockRule
from hub.orders.models import Reservation

_PRICE_LIMIT = Decimal(10) ** 6  # PLN: grosz x (1 + markup) stays within 64 bits
_COST_LIMIT = Decimal(10) ** 5  # PLN: the floor's numerator stays within 64 bits
_FEE_LIMIT = Decimal(10) ** 4


def _vat_percents() -> dict[str, int]:
    from hub.kernel.vat import VAT_PERCENT, percent_for_net

    out = {}
    for code in VAT_PERCENT:
        percent = percent_for_net(code)
        if percent is not None and percent == percent.to_integral_value():
            out[code] = int(percent)
    return out


VAT_PERCENTS = _vat_percents()


def rule_allows(rule: PriceRule) -> bool:
    """Whether a channel's price rule is the fixed formula computed here."""
    if not rule.enabled:
        return True  # the price stays as it is; only the quantity moves
    return (rule.base == "erp_gross" and rule.ceiling is None and rule.ceiling_pct is None
            and rule.repricing.strategy == "off" and rule.fixed_fee < _FEE_LIMIT)


def _scaled(value: Decimal, places: int) -> int:
    scaled = value.scaleb(places)
    assert scaled == scaled.to_integral_value(), value
    return int(scaled)


class _Prices:
    """The price of ``decide`` as SQL expressions over a product row, in grosz."""

    def __init__(self, rule: PriceRule, dialect: str) -> None:
        self.rule = rule
        self.dialect = dialect
        p = Product.__table__.c
        idiv = self._idiv
        # whole numbers typed so that no product is computed in 32 bits (psycopg sends a small int as
        # int4): NUMERIC on PostgreSQL
        def whole(value: int) -> Any:
            return literal(value, BigInteger()) if dialect == "sqlite" else cast(literal(value), Numeric())

        vat = case(*((p.vat_rate == code, whole(percent)) for code, percent in VAT_PERCENTS.items()), else_=None)
        price_c = self._whole(p.price_gross * 100)
        markup = 10**6 + _scaled(rule.markup_pct, 4)
        # base x (1 + markup), to the grosz half up: (2n + d) div 2d for n >= 0
        self.list_c = idiv(2 * price_c * markup + 10**6, 2 * 10**6)
        cost_i = self._whole(p.cost_net * 10000)
        margin = 10**6 + _scaled(rule.min_margin_pct, 4)
        fee_c = _scaled(rule.fixed_fee, 2)
        commission = _scaled(rule.commission_pct, 4)
        numerator = (cost_i * margin + whole(fee_c * 10**8)) * (100 + vat)
        self.denominator = 100 * (whole(10**8) - commission * (100 + vat))
        # the floor: no cost (or 0 or less), none; else rounded up to the grosz
        self.floor_c = case((p.cost_net > 0, idiv(numerator + self.denominator - 1, self.denominator)), else_=None)
        rounding = parse_rounding(rule.rounding)
        off, mod = _scaled(rounding.offset, 2), _scaled(rounding.modulus, 2)
        nearest = off + case((self.list_c >= off, idiv(2 * (self.list_c - off) + mod, 2 * mod)), else_=0) * mod
        floor_or_cent = func.coalesce(self.floor_c, 1)
        lowest = func.max(floor_or_cent, 1) if self.dialect == "sqlite" else func.greatest(floor_or_cent, 1)
        raised = off + case((lowest > off, idiv(lowest - off + mod - 1, mod)), else_=0) * mod
        self.price_c = case((nearest < lowest, raised), else_=nearest)

    def _whole(self, value: Any) -> Any:
        """A whole number of grosz (or ten-thousandths): an INTEGER on SQLite, whose NUMERIC columns are
        REAL (below 2**53, so exact); PostgreSQL's NUMERIC is exact and cannot overflow."""
        rounded = func.round(value)
        return cast(rounded, BigInteger) if self.dialect == "sqlite" else rounded

    def _idiv(self, numerator: Any, denominator: Any) -> Any:
        """Integer division of non-negative whole numbers."""
        if self.dialect == "sqlite":
            return cast(numerator, BigInteger) // cast(denominator, BigInteger)
        return func.div(numerator, denominator)

    def eligible(self) -> ColumnElement[bool]:
        """Rows the formula covers exactly: PLN, a known integral VAT rate, a positive price and cost
        within the bounds, a commission that leaves something."""
        p = Product.__table__.c
        return and_(p.currency == "PLN", p.vat_rate.in_(sorted(VAT_PERCENTS)), p.price_gross > 0,
                    p.price_gross < _PRICE_LIMIT, or_(p.cost_net.is_(None), p.cost_net < _COST_LIMIT),
                    self.denominator > 0)

    def accepted(self) -> ColumnElement[bool]:
        """Not refused by the floor (the list price at or above it)."""
        return or_(self.floor_c.is_(None), self.list_c >= self.floor_c)

    def price(self) -> ColumnElement[Any]:
        if self.dialect == "sqlite":
            return self.price_c / 100.0
        return cast(self.price_c, Numeric(20, 2)) / 100


def _quantity(rule: StockRule) -> ColumnElement[Any]:
    """available_to_sell over the listing's SKU: its stock in the channel's warehouses, less the open
    reservations and the safety buffer (not under 0), the channel's percent (rounded down), capped."""
    listings, stock, held = Listing.__table__, StockLevel.__table__, Reservation.__table__
    where = [stock.c.sku == listings.c.sku]
    if ALL_WAREHOUSES not in rule.warehouses:
        where.append(stock.c.warehouse.in_(rule.warehouses))
    on_hand = select(func.coalesce(func.sum(stock.c.quantity), 0)).where(*where).scalar_subquery()
    reserved = (select(func.coalesce(func.sum(held.c.quantity), 0))
                .where(held.c.sku == listings.c.sku, held.c.state == "open").scalar_subquery())
    free = on_hand - reserved - rule.safety_buffer
    share = cast(case((free > 0, free), else_=0), Integer) * rule.percent // 100
    if rule.max_quantity is None:
        return share
    return case((share > rule.max_quantity, rule.max_quantity), else_=share)


def recompute_channel(session: Session, channel: str, price_rule: PriceRule, stock_rule: StockRule,
                      now: datetime, dirty: Any) -> int:
    """One UPDATE of the channel's listings of dirty SKUs that the formula covers (their refusals of
    earlier runs end); returns how many listings changed. The caller computes the rest with ``decide``
    (``pending``) before the dirty marks go."""
    dialect = session.get_bind().dialect.name
    listings, products = Listing.__table__, Product.__table__
    quantity = _quantity(stock_rule)
    marked = exists().where(dirty.c.sku == listings.c.sku)
    if price_rule.enabled:
        prices = _Prices(price_rule, dialect)
        covered = and_(prices.eligible(), prices.accepted())
        price: Any = prices.price()
    else:
        covered, price = literal(True), listings.c.desired_price
    changed = session.execute(
        update(listings)
        .where(listings.c.channel == channel, listings.c.sku == products.c.sku, marked, covered,
               or_(listings.c.desired_quantity.is_distinct_from(quantity),
                   listings.c.desired_price.is_distinct_from(price)))
        .values(desired_quantity=quantity, desired_price=price, desired_at=now, updated_at=now)
        .execution_options(synchronize_session=False)).rowcount or 0
    if price_rule.enabled:
        refusals = PriceRefusal.__table__
        session.execute(refusals.delete().where(
            refusals.c.channel == channel, exists().where(dirty.c.sku == refusals.c.sku),
            exists().where(products.c.sku == refusals.c.sku, covered)))
    return changed


def pending(channel: str, price_rule: PriceRule, dialect: str) -> ColumnElement[bool]:
    """The channel's listings of dirty SKUs that ``recompute_channel`` left to ``decide``: a SKU gone
    from the catalogue, a row out of the formula's bounds, a price the floor refuses, another rule."""
    listings, products = Listing.__table__, Product.__table__
    if price_rule.enabled and not rule_allows(price_rule):
        return literal(True)
    if not price_rule.enabled:
        return ~exists().where(products.c.sku == listings.c.sku)
    prices = _Prices(price_rule, dialect)
    return ~exists().where(products.c.sku == listings.c.sku, prices.eligible(), prices.accepted())
