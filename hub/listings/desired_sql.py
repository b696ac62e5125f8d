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

from sqlalchemy import (
    BigInteger,
    Column,
    Integer,
    MetaData,
    Numeric,
    String,
    Table,
    and_,
    case,
    cast,
    exists,
    func,
    literal,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from hub.catalog import Product, StockLevel
from hub.listings.models import Listing, PriceRefusal
from hub.listings.pricing import PriceRule, parse_rounding
from hub.listings.stock_rules import ALL_WAREHOUSES, StockRule
from hub.orders import reserved_units_of

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
    """The steps of ``decide`` as SQL expressions, in grosz: over a product row (the list price, the
    floor), then over the stored list price and floor (the rounding)."""

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
        self.off, self.mod = _scaled(rounding.offset, 2), _scaled(rounding.modulus, 2)

    def rounded(self, list_c: Any, floor_c: Any) -> Any:
        """The nearest allowed price to the list price (ties up); under the floor (or a grosz), the
        lowest allowed price at or above it."""
        off, mod, idiv = self.off, self.mod, self._idiv
        nearest = off + case((list_c >= off, idiv(2 * (list_c - off) + mod, 2 * mod)), else_=0) * mod
        floor_or_cent = func.coalesce(floor_c, 1)
        lowest = func.max(floor_or_cent, 1) if self.dialect == "sqlite" else func.greatest(floor_or_cent, 1)
        raised = off + case((lowest > off, idiv(lowest - off + mod - 1, mod)), else_=0) * mod
        return case((nearest < lowest, raised), else_=nearest)

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


# The dirty SKUs' desired state as SQL computes it, each step's result stored once (an expression repeated
# inside one UPDATE was computed again at every use: seven times the time on PostgreSQL): the list price and
# the floor, the rounded price, and the units free to sell in the stock rule's warehouses. One table serves
# every channel with the same price rule and warehouses (the shipped defaults: all of them)
COMPUTED = Table("hub_recompute_desired", MetaData(), Column("sku", String(100), primary_key=True),
                 Column("list_c", BigInteger), Column("floor_c", BigInteger), Column("price_c", BigInteger),
                 Column("free", BigInteger), prefixes=["TEMPORARY"])


def computed_for(price_rule: PriceRule, stock_rule: StockRule) -> tuple[str | None, tuple[str, ...]]:
    """What ``compute`` depends on: channels with equal keys share one COMPUTED."""
    return (price_rule.model_dump_json() if price_rule.enabled else None, tuple(sorted(stock_rule.warehouses)))


def _free(rule: StockRule, sku: Any) -> Any:
    """On hand in the rule's warehouses less the open reservations, of ``sku`` (a column): correlated
    sums by the stock's and the reservations' SKU indexes, one lookup each per SKU."""
    stock = StockLevel.__table__
    where = [stock.c.sku == sku]
    if ALL_WAREHOUSES not in rule.warehouses:
        where.append(stock.c.warehouse.in_(rule.warehouses))
    on_hand = select(func.coalesce(func.sum(stock.c.quantity), 0)).where(*where).scalar_subquery()
    return on_hand - reserved_units_of(sku)


def _quantity(rule: StockRule, free: Any) -> ColumnElement[Any]:
    """available_to_sell from the free units: less the safety buffer (not under 0), the channel's
    percent (rounded down), capped."""
    left = free - rule.safety_buffer
    share = cast(case((left > 0, left), else_=0), Integer) * rule.percent // 100
    if rule.max_quantity is None:
        return share
    return case((share > rule.max_quantity, rule.max_quantity), else_=share)


def compute(session: Session, price_rule: PriceRule, stock_rule: StockRule, dirty: Any) -> int:
    """COMPUTED for the dirty SKUs of the catalogue that the formula covers (with the price rule off,
    all of them); returns how many SKUs it holds."""
    dialect = session.get_bind().dialect.name
    conn = session.connection()
    products = Product.__table__
    COMPUTED.drop(conn, checkfirst=True)
    COMPUTED.create(conn)
    marked = exists().where(dirty.c.sku == products.c.sku)
    free = _free(stock_rule, products.c.sku).label("free")
    if price_rule.enabled:
        prices = _Prices(price_rule, dialect)
        # each step stored once (the list price and floor, then the rounding over their columns): one
        # INSERT repeating the expressions was slower on both databases (SQLite 12.0 -> 15.4 s at 2,000,000
        # listings)
        conn.execute(COMPUTED.insert().from_select(
            ["sku", "list_c", "floor_c", "free"],
            select(products.c.sku, prices.list_c, prices.floor_c, free).where(marked, prices.eligible())))
        # a list price under the floor is refused: decide records why
        conn.execute(COMPUTED.delete().where(COMPUTED.c.floor_c.is_not(None), COMPUTED.c.list_c < COMPUTED.c.floor_c))
        conn.execute(update(COMPUTED).values(price_c=prices.rounded(COMPUTED.c.list_c, COMPUTED.c.floor_c)))
    else:
        conn.execute(COMPUTED.insert().from_select(["sku", "free"], select(products.c.sku, free).where(marked)))
    if dialect == "postgresql":
        conn.execute(text("ANALYZE hub_recompute_desired"))  # its size, for the plans that join it
    # counted, not summed from rowcounts: psycopg gives none for an INSERT ... SELECT
    return int(conn.execute(select(func.count()).select_from(COMPUTED)).scalar() or 0)


def apply(session: Session, channel: str, price_rule: PriceRule, stock_rule: StockRule, now: datetime) -> int:
    """One UPDATE of the channel's listings of the SKUs in COMPUTED (their refusals of earlier runs
    end); returns how many listings changed. The caller computes the rest with ``decide`` (``pending``,
    while COMPUTED holds these) before the dirty marks go."""
    conn = session.connection()
    listings = Listing.__table__
    if not price_rule.enabled:
        price: Any = listings.c.desired_price
    elif session.get_bind().dialect.name == "sqlite":
        price = COMPUTED.c.price_c / 100.0
    else:
        price = cast(COMPUTED.c.price_c, Numeric(20, 2)) / 100
    quantity = _quantity(stock_rule, COMPUTED.c.free)
    changed = conn.execute(
        update(listings)
        .where(listings.c.channel == channel, listings.c.sku == COMPUTED.c.sku,
               or_(listings.c.desired_quantity.is_distinct_from(quantity),
                   listings.c.desired_price.is_distinct_from(price)))
        .values(desired_quantity=quantity, desired_price=price, desired_at=now, updated_at=now)).rowcount or 0
    if price_rule.enabled:
        refusals = PriceRefusal.__table__
        conn.execute(refusals.delete().where(refusals.c.channel == channel,
                                             refusals.c.sku.in_(select(COMPUTED.c.sku))))
    return changed


def pending(channel: str, price_rule: PriceRule) -> ColumnElement[bool]:
    """The channel's listings of dirty SKUs that ``apply`` left to ``decide``: a SKU gone from the
    catalogue, a row out of the formula's bounds, a price the floor refuses, another rule."""
    if not rule_allows(price_rule):
        return literal(True)
    return ~exists().where(COMPUTED.c.sku == Listing.__table__.c.sku)


def drop(session: Session) -> None:
    COMPUTED.drop(session.connection(), checkfirst=True)
