"""Desired state: each listing's quantity (available-to-sell) and price (pricing rules, never under the
floor: a refused price leaves the desired price where it was).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import bindparam, delete, literal, select, update
from sqlalchemy.orm import Session

from hub.catalog import DirtySku, Product, StockLevel
from hub.kernel.clock import utcnow
from hub.listings.models import CompetitorPrice, Listing, PriceRefusal
from hub.listings.plan import serialize
from hub.listings.pricing import PriceInputs, decide
from hub.listings.rules import Rules
from hub.listings.stock_rules import available_to_sell
from hub.orders import reserved_by_sku
from hub.platform.db import insert_for
from hub.platform.logs import get_logger
from hub.platform.schema import HubState

log = get_logger("hub.listings.desired")


RECOMPUTE_CHUNK = 2000


@dataclass
class RecomputeResult:
    skus: int = 0
    listings_changed: int = 0
    refused: int = 0


def _stock_by_sku(session: Session, skus: Sequence[str]) -> dict[str, dict[str, int]]:
    out: dict[str, dict[str, int]] = defaultdict(dict)
    for sku, warehouse, qty in session.execute(
        select(StockLevel.sku, StockLevel.warehouse, StockLevel.quantity).where(StockLevel.sku.in_(skus))
    ).all():
        out[sku][warehouse] = qty
    return out


def recompute(session: Session, rules: Rules, skus: Sequence[str] | None = None) -> RecomputeResult:
    """Desired quantity and price for every listing of the given (default: dirty) SKUs."""
    serialize(session)
    now = utcnow()
    result = RecomputeResult()
    if skus is None:
        # row locks: an ingest that marks one of these SKUs dirty again waits for us and re-inserts after
        dirty = select(DirtySku.sku).order_by(DirtySku.sku)
        if session.get_bind().dialect.name == "postgresql":
            dirty = dirty.with_for_update()
        skus = list(session.execute(dirty).scalars())
        consume = True
    else:
        consume = False
    for start in range(0, len(skus), RECOMPUTE_CHUNK):
        chunk = list(skus[start:start + RECOMPUTE_CHUNK])
        _recompute_chunk(session, rules, chunk, now, result)
        if consume:
            session.execute(delete(DirtySku).where(DirtySku.sku.in_(chunk)))
    result.skus = len(skus)
    return result


def _recompute_chunk(
    session: Session, rules: Rules, skus: list[str], now: datetime, result: RecomputeResult
) -> None:
    # plain rows, not ORM objects, in and out: building, tracking and flushing an object per product and
    # per listing was about half of a rules change's time (bench/scale.py step c)
    products = {p.sku: p for p in session.execute(_PRICING_FIELDS.where(Product.sku.in_(skus)))}
    stock = _stock_by_sku(session, skus)
    reserved = reserved_by_sku(session, skus)
    competitor = {
        (c.channel, c.sku): c.price
        for c in session.execute(select(CompetitorPrice).where(CompetitorPrice.sku.in_(skus))).scalars()
    }
    listings = session.execute(
        select(Listing.id, Listing.channel, Listing.sku, Listing.desired_quantity, Listing.desired_price)
        .where(Listing.sku.in_(skus))
    ).all()
    updates = []
    refusals: list[dict[str, Any]] = []
    accepted: dict[str, list[str]] = defaultdict(list)  # channel -> SKUs whose price went through
    for row in listings:
        product = products.get(row.sku)
        quantity = 0
        price = row.desired_price
        if product is not None:
            quantity = available_to_sell(stock.get(row.sku, {}), reserved.get(row.sku, 0),
                                         rules.stock_rule(row.channel)).quantity
            rule = rules.price_rule(row.channel)
            if rule.enabled:
                decision = decide(rule, price_inputs(product, competitor.get((row.channel, row.sku)), row.channel))
                if decision.refused or decision.price is None:
                    refusals.append(_refusal(row.channel, row.sku, decision, now))
                    result.refused += 1
                else:
                    price = decision.price
                    accepted[row.channel].append(row.sku)
        if quantity != row.desired_quantity or price != row.desired_price:
            updates.append({"b_id": row.id, "b_quantity": quantity, "b_price": price, "b_now": now})
    # refusals in bulk: a price that goes through ends its SKU's refusal, per channel (by the key's first
    # column, then its SKUs); a refused one is inserted or updated, its first time kept. One statement per
    # listing here made a rules change of 100,000 listings take about a minute
    for channel, accepted_skus in accepted.items():
        session.execute(delete(PriceRefusal).where(PriceRefusal.channel == channel,
                                                   PriceRefusal.sku.in_(accepted_skus)))
    if refusals:
        table = PriceRefusal.__table__
        stmt = insert_for(session)(table)
        session.connection().execute(stmt.on_conflict_do_update(
            index_elements=["channel", "sku"],
            set_={k: getattr(stmt.excluded, k) for k in ("price", "floor", "reason", "last_at")}), refusals)
    if updates:
        session.connection().execute(_SET_DESIRED, updates)
        result.listings_changed += len(updates)


_PRICING_FIELDS = select(Product.sku, Product.price_gross, Product.cost_net, Product.vat_rate, Product.currency)
_LISTINGS = Listing.__table__
_SET_DESIRED = (update(_LISTINGS).where(_LISTINGS.c.id == bindparam("b_id"))
                .values(desired_quantity=bindparam("b_quantity"), desired_price=bindparam("b_price"),
                        desired_at=bindparam("b_now"), updated_at=bindparam("b_now")))


def price_inputs(product: Any, competitor_price: Decimal | None, channel: str = "") -> PriceInputs:
    """What pricing reads of a product (a Product, or a row with its sku, price, cost, VAT and currency)."""
    return PriceInputs(
        sku=product.sku, price_gross=product.price_gross, cost_net=product.cost_net, vat_rate=product.vat_rate,
        currency=product.currency, competitor_price=competitor_price, channel=channel,
    )


def _refusal(channel: str, sku: str, decision: Any, now: datetime) -> dict[str, Any]:
    return {"channel": channel, "sku": sku, "price": decision.proposed, "floor": decision.floor,
            "reason": decision.reason or "refused", "first_at": now, "last_at": now}


RULES_KEY = "rules.fingerprint"


def mark_all_dirty(session: Session) -> None:
    """Every SKU is recomputed (rules changed, or a full sync): one set-based statement."""
    now = utcnow()
    # the WHERE is for SQLite, whose parser needs one before ON CONFLICT in an INSERT ... SELECT
    everything = select(Product.sku, literal(now)).where(Product.sku.is_not(None))
    stmt = insert_for(session)(DirtySku).from_select(["sku", "since"], everything)
    session.execute(stmt.on_conflict_do_nothing(index_elements=["sku"]))


def apply_rules_change(session: Session, rules: Rules) -> bool:
    """When the seller edited the pricing or stock rules, every SKU's desired state is recomputed."""
    fingerprint = rules.fingerprint()
    stored = session.get(HubState, RULES_KEY)
    if stored is not None and stored.value == fingerprint:
        return False
    now = utcnow()
    if stored is None:
        session.add(HubState(key=RULES_KEY, value=fingerprint, updated_at=now))
    else:
        stored.value, stored.updated_at = fingerprint, now
    mark_all_dirty(session)
    log.info("pricing or stock rules changed; recomputing every SKU")
    return True
