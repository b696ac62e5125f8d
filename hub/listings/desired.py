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

from sqlalchemy import Column, MetaData, String, Table, bindparam, delete, exists, func, literal, select, text, update
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from hub.catalog import DirtySku, Product, StockLevel
from hub.kernel.clock import utcnow
from hub.listings import desired_sql
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
SET_BASED_FROM = 100  # dirty SKUs from which a recompute goes set-based (hub.listings.desired_sql)


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
    """Desired quantity and price for every listing of the given (default: dirty) SKUs.

    The dirty SKUs are computed set-based: per channel one UPDATE for what SQL computes exactly
    (hub.listings.desired_sql), then ``decide`` in chunks for the rest, paged by SKU; memory stays that
    of one chunk whatever the catalogue's size."""
    serialize(session)
    now = utcnow()
    result = RecomputeResult()
    if skus is not None:
        for start in range(0, len(skus), RECOMPUTE_CHUNK):
            _recompute_chunk(session, rules, list(skus[start:start + RECOMPUTE_CHUNK]), now, result)
        result.skus = len(skus)
        return result
    dialect = session.get_bind().dialect.name
    # a handful of dirty SKUs (a plan after an order, every few seconds) in one chunk, as they are: the
    # set-based way's temporary tables are for whole-catalogue work
    marked = session.execute(select(DirtySku.sku, DirtySku.since).order_by(DirtySku.sku)
                             .limit(SET_BASED_FROM)).all()
    if len(marked) < SET_BASED_FROM:
        _recompute_chunk(session, rules, [sku for sku, _ in marked], now, result)
        if marked:
            # only the marks as read: one an ERP read or an order made again meanwhile (a later since,
            # upserted) stays for the next run; on SQLite this transaction is the only writer anyway
            session.connection().execute(_CONSUME_MARK, [{"b_sku": sku, "b_since": since} for sku, since in marked])
        result.skus = len(marked)
        return result
    if dialect == "postgresql":
        # the marks being consumed, as they are now, without locking them: an ERP read or an order that
        # marks one of these SKUs again meanwhile (its upsert moves ``since``) is not held up by this
        # recompute, however long a whole catalogue takes, and its mark survives the delete at the end
        session.execute(text("DROP TABLE IF EXISTS hub_recompute_skus"))  # an earlier recompute of this transaction
        session.execute(text("CREATE TEMPORARY TABLE hub_recompute_skus ON COMMIT DROP AS "
                             "SELECT sku, since FROM dirty_skus"))
        session.execute(text("ALTER TABLE hub_recompute_skus ADD PRIMARY KEY (sku)"))
        session.execute(text("ANALYZE hub_recompute_skus"))  # its size, for the plans that join it
        consumed = _CONSUMED
    else:
        consumed = _DIRTY  # SQLite: this transaction is the only writer
    result.skus = int(session.execute(select(func.count()).select_from(consumed)).scalar() or 0)
    if not result.skus:
        return result
    shared: dict[Any, list[str]] = defaultdict(list)  # channels computed in SQL, by what they share
    by_decide: list[str] = []
    for channel in session.execute(select(Listing.channel).distinct().order_by(Listing.channel)).scalars():
        price_rule, stock_rule = rules.price_rule(channel), rules.stock_rule(channel)
        if desired_sql.rule_allows(price_rule):
            shared[desired_sql.computed_for(price_rule, stock_rule)].append(channel)
        else:
            by_decide.append(channel)
    for channels in shared.values():
        covered = desired_sql.compute(session, rules.price_rule(channels[0]), rules.stock_rule(channels[0]),
                                      consumed)
        for channel in channels:
            price_rule = rules.price_rule(channel)
            result.listings_changed += desired_sql.apply(session, channel, price_rule, rules.stock_rule(channel),
                                                         now)
            if covered < result.skus:  # every dirty SKU computed: nothing is left to decide
                _decide_rest(session, rules, channel, consumed, desired_sql.pending(channel, price_rule), now,
                             result)
    for channel in by_decide:
        _decide_rest(session, rules, channel, consumed, literal(True), now, result)
    desired_sql.drop(session)
    if consumed is _DIRTY:
        session.execute(delete(_DIRTY))
    else:
        session.execute(text("DELETE FROM dirty_skus USING hub_recompute_skus c "
                             "WHERE dirty_skus.sku = c.sku AND dirty_skus.since = c.since"))
    return result


def _decide_rest(session: Session, rules: Rules, channel: str, consumed: Any, rest: ColumnElement[bool],
                 now: datetime, result: RecomputeResult) -> None:
    """The channel's listings of the consumed dirty SKUs that ``rest`` selects, with ``decide``, a chunk
    of SKUs at a time (by the listings' SKU index)."""
    after = ""
    while True:
        chunk = list(session.execute(
            select(Listing.sku).distinct()
            .where(Listing.channel == channel, Listing.sku > after, exists().where(consumed.c.sku == Listing.sku),
                   rest)
            .order_by(Listing.sku).limit(RECOMPUTE_CHUNK)).scalars())
        if not chunk:
            return
        _recompute_chunk(session, rules, chunk, now, result, channel=channel)
        after = chunk[-1]


_DIRTY = DirtySku.__table__
_CONSUME_MARK = delete(_DIRTY).where(_DIRTY.c.sku == bindparam("b_sku"), _DIRTY.c.since == bindparam("b_since"))
_CONSUMED = Table("hub_recompute_skus", MetaData(), Column("sku", String(100), primary_key=True))


def _recompute_chunk(
    session: Session, rules: Rules, skus: list[str], now: datetime, result: RecomputeResult, *,
    channel: str | None = None,
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
        .where(Listing.sku.in_(skus), *([Listing.channel == channel] if channel is not None else []))
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
