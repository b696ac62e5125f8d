"""Keeping channels in step with the ERP: desired state, set-based diff, pushes, reconciliation.

- Ingest marks SKUs dirty; ``recompute`` turns dirty SKUs into each listing's
  desired quantity (available-to-sell) and price (pricing rules, never under
  the floor: a refused price leaves the desired price where it was).
- ``plan`` is the diff: one SQL query selects listings whose desired state
  differs from what the channel acknowledged and that have no push in flight;
  only those become push jobs, batched to the connector's limit. One push in
  flight per listing keeps changes in order: a newer value waits for the
  running push, and the push's completion plans again.
- The push job records what the channel acknowledged per offer.
- ``reconcile`` reads the channel's real listings, binds offers to SKUs
  (signature, then EAN) and treats what it finds as acknowledged, so drift (an
  offer edited by hand, a lost push) becomes a difference the next plan fixes.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import Engine, and_, bindparam, delete, func, literal, or_, select, text, update
from sqlalchemy.orm import Session

from hub import catalog, queue
from hub.clock import utcnow
from hub.db import insert_for, transaction, upsert
from hub.errors import RetryableError
from hub.handlers import JobContext
from hub.logs import get_logger
from hub.models import (
    OPEN_STATES,
    CompetitorPrice,
    DirtySku,
    HubState,
    Job,
    Listing,
    PriceHistory,
    PriceRefusal,
    Product,
    Reservation,
    StockLevel,
)
from hub.orders import consume_reflected
from hub.ports import ListingChange
from hub.pricing import PriceInputs, decide
from hub.stock import available_to_sell

log = get_logger("hub.sync")

PUSH_KIND = "sync.push"
POLL_KIND = "erp.poll"
RECONCILE_KIND = "sync.reconcile"
RETRYABLE_OFFER_ERROR_PAUSE = timedelta(seconds=30)
RECOMPUTE_CHUNK = 2000


@dataclass
class Rules:
    """The seller's pricing and stock rules, per channel (from mappings/).

    Merging a channel's overrides into the defaults builds a model; recompute asks once per
    listing, so each channel's merged rule is built once."""

    pricing: Any
    stock: Any
    _price_rules: dict[str, Any] = field(default_factory=dict, repr=False)
    _stock_rules: dict[str, Any] = field(default_factory=dict, repr=False)

    def fingerprint(self) -> str:
        import hashlib

        text = self.pricing.model_dump_json() + self.stock.model_dump_json()
        return hashlib.sha256(text.encode()).hexdigest()

    def price_rule(self, channel: str) -> Any:
        if channel not in self._price_rules:
            self._price_rules[channel] = self.pricing.rule_for(channel)
        return self._price_rules[channel]

    def stock_rule(self, channel: str) -> Any:
        if channel not in self._stock_rules:
            self._stock_rules[channel] = self.stock.rule_for(channel)
        return self._stock_rules[channel]


@dataclass
class PlannedPush:
    channel: str
    items: list[dict[str, Any]]
    job_id: int | None = None


@dataclass
class RecomputeResult:
    skus: int = 0
    listings_changed: int = 0
    refused: int = 0


# --- desired state ----------------------------------------------------------------


def _stock_by_sku(session: Session, skus: Sequence[str]) -> dict[str, dict[str, int]]:
    out: dict[str, dict[str, int]] = defaultdict(dict)
    for sku, warehouse, qty in session.execute(
        select(StockLevel.sku, StockLevel.warehouse, StockLevel.quantity).where(StockLevel.sku.in_(skus))
    ).all():
        out[sku][warehouse] = qty
    return out


def _reserved_by_sku(session: Session, skus: Sequence[str]) -> dict[str, int]:
    return {
        sku: int(total)
        for sku, total in session.execute(
            select(Reservation.sku, func.sum(Reservation.quantity))
            .where(Reservation.sku.in_(skus), Reservation.state == "open")
            .group_by(Reservation.sku)
        ).all()
    }


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
    products = {p.sku: p for p in session.execute(select(Product).where(Product.sku.in_(skus))).scalars()}
    stock = _stock_by_sku(session, skus)
    reserved = _reserved_by_sku(session, skus)
    competitor = {
        (c.channel, c.sku): c.price
        for c in session.execute(select(CompetitorPrice).where(CompetitorPrice.sku.in_(skus))).scalars()
    }
    listings = session.execute(
        select(Listing.id, Listing.channel, Listing.sku, Listing.desired_quantity, Listing.desired_price)
        .where(Listing.sku.in_(skus))
    ).all()
    updates = []
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
                    _refuse(session, row.channel, row.sku, decision, now)
                    result.refused += 1
                else:
                    price = decision.price
                    session.execute(delete(PriceRefusal).where(
                        PriceRefusal.channel == row.channel, PriceRefusal.sku == row.sku))
        if quantity != row.desired_quantity or price != row.desired_price:
            updates.append({"id": row.id, "desired_quantity": quantity, "desired_price": price,
                            "desired_at": now, "updated_at": now})
    if updates:
        session.execute(update(Listing), updates)
        result.listings_changed += len(updates)


def price_inputs(product: Product, competitor_price: Decimal | None, channel: str = "") -> PriceInputs:
    return PriceInputs(
        sku=product.sku, price_gross=product.price_gross, cost_net=product.cost_net, vat_rate=product.vat_rate,
        currency=product.currency, competitor_price=competitor_price, channel=channel,
    )


def _refuse(session: Session, channel: str, sku: str, decision: Any, now: datetime) -> None:
    values = {
        "channel": channel, "sku": sku, "price": decision.proposed, "floor": decision.floor,
        "reason": decision.reason or "refused", "first_at": now, "last_at": now,
    }
    upsert(session, PriceRefusal, values, ["channel", "sku"], update=["price", "floor", "reason", "last_at"])


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


# --- the diff -----------------------------------------------------------------------


def serialize(session: Session) -> None:
    """Recompute, plan, reconcile and push bookkeeping touch the same listing rows: across processes
    they take turns (a transaction-scoped advisory lock), so they neither deadlock nor plan one
    difference twice. SQLite transactions are serialized already."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(hashtext('hub.sync'))"))


# Written exactly as the predicate of the partial index ix_listings_differs, so both databases
# answer the diff from the index (only the differing rows) instead of scanning every listing.
DIFFERS = text(
    "((listings.desired_quantity IS NOT NULL AND (listings.ack_quantity IS NULL"
    " OR listings.desired_quantity <> listings.ack_quantity))"
    " OR (listings.desired_price IS NOT NULL AND (listings.ack_price IS NULL"
    " OR listings.desired_price <> listings.ack_price)))"
)


def _differences_statement() -> Any:
    inflight = Job.__table__.alias("inflight")
    blocked = and_(
        Listing.last_error.is_not(None),
        or_(
            and_(Listing.error_retryable.is_(False), Listing.last_error_at >= Listing.desired_at),
            and_(Listing.error_retryable.is_(True), Listing.last_error_at > bindparam("retry_before")),
        ),
    )
    return (
        select(
            Listing.id, Listing.external_id, Listing.sku, Listing.currency,
            Listing.desired_quantity, Listing.ack_quantity, Listing.desired_price, Listing.ack_price,
        )
        .outerjoin(inflight, inflight.c.id == Listing.inflight_job_id)
        .where(
            Listing.channel == bindparam("channel"),
            Listing.sku.is_not(None),
            Listing.active.is_(True),
            DIFFERS,
            or_(Listing.inflight_job_id.is_(None), inflight.c.id.is_(None), inflight.c.state.not_in(OPEN_STATES)),
            ~blocked,
        )
        .order_by(Listing.id)
    )


_DIFFERENCES = _differences_statement()


def differences(session: Session, channel: str, *, now: datetime | None = None) -> Any:
    """The set-based diff: listings whose desired state the channel has not acknowledged and that
    have no push in flight. Core rows (no ORM loading): this runs on every ERP poll."""
    now = now or utcnow()
    return session.connection().execute(
        _DIFFERENCES, {"channel": channel, "retry_before": now - RETRYABLE_OFFER_ERROR_PAUSE}
    )


def plan(
    session: Session,
    rules: Rules,
    channel: str,
    *,
    batch_size: int,
    dry_run: bool = False,
) -> list[PlannedPush]:
    """Turn differences into push jobs (in the caller's transaction); returns what was planned."""
    serialize(session)
    price_rule = rules.price_rule(channel)
    max_price_changes = price_rule.max_changes_per_run if price_rule.enabled else 0
    items: list[dict[str, Any]] = []
    price_changes = 0
    for listing_id, external_id, sku, currency, want_qty, ack_qty, want_price, ack_price in differences(
        session, channel
    ):
        item: dict[str, Any] = {"listing_id": listing_id, "external_id": external_id, "sku": sku,
                                "currency": currency}
        if want_qty is not None and want_qty != ack_qty:
            item["quantity"] = want_qty
        if want_price is not None and want_price != ack_price and (
            max_price_changes is None or price_changes < max_price_changes
        ):
            item["price"] = str(want_price)
            item["old_price"] = None if ack_price is None else str(ack_price)
            price_changes += 1
        if len(item) > 4:
            items.append(item)
    if max_price_changes is not None and price_changes >= max_price_changes and price_rule.enabled:
        log.warning("price change cap reached for this run", channel=channel, cap=max_price_changes)
    pushes = [PlannedPush(channel, items[i:i + batch_size]) for i in range(0, len(items), batch_size)]
    if dry_run:
        return pushes
    for push in pushes:
        has_quantity = any("quantity" in i for i in push.items)
        job = queue.enqueue(
            session, PUSH_KIND, {"channel": channel, "items": push.items},
            key=f"push:{channel}:{uuid.uuid4().hex}", connector=channel, priority=10 if has_quantity else 0,
        )
        push.job_id = job.id
        session.execute(
            update(Listing)
            .where(Listing.id.in_([i["listing_id"] for i in push.items]))
            .values(inflight_job_id=job.id)
        )
    return pushes


# --- push results ---------------------------------------------------------------------


def record_results(session: Session, job_id: int, channel: str, items: Sequence[dict[str, Any]],
                   results: Iterable[Any]) -> tuple[int, int]:
    now = utcnow()
    by_external = {r.external_id: r for r in results}
    ok = failed = 0
    for item in items:
        mine = and_(Listing.id == item["listing_id"], Listing.inflight_job_id == job_id)
        result = by_external.get(item["external_id"])
        if result is not None and result.ok:
            values: dict[str, Any] = {"acked_at": now, "last_error": None, "last_error_at": None,
                                      "error_retryable": False, "inflight_job_id": None, "updated_at": now}
            if "quantity" in item:
                values["ack_quantity"] = item["quantity"]
            if "price" in item:
                values["ack_price"] = Decimal(item["price"])
                session.add(PriceHistory(
                    channel=channel, sku=item["sku"], external_id=item["external_id"],
                    old_price=None if item.get("old_price") is None else Decimal(item["old_price"]),
                    new_price=Decimal(item["price"]), job_id=job_id, at=now,
                ))
            ok += 1
        else:
            error = result.error if result is not None else "the channel returned no result for this offer"
            retryable = result.retryable if result is not None else True
            values = {"last_error": error, "last_error_at": now, "error_retryable": retryable,
                      "inflight_job_id": None, "updated_at": now}
            failed += 1
        session.execute(update(Listing).where(mine).values(**values))
    return ok, failed


# --- reconciliation and binding discovery -------------------------------------------------


@dataclass
class ReconcileResult:
    seen: int = 0
    new_bindings: int = 0
    drift: int = 0
    deactivated: int = 0
    unmatched: int = 0
    conflicts: list[str] = field(default_factory=list)


def reconcile(session: Session, channel: str, listings: Iterable[Any]) -> ReconcileResult:
    """Store what the channel really shows, bind offers to SKUs, and turn drift into differences."""
    serialize(session)
    now = utcnow()
    result = ReconcileResult()
    existing = {
        row.external_id: row for row in session.execute(select(Listing).where(Listing.channel == channel)).scalars()
    }
    bound_skus = {row.sku for row in existing.values() if row.sku}
    seen_ids: set[str] = set()
    newly_bound: set[str] = set()
    batch = list(listings)
    signatures = {offer.sku for offer in batch if offer.sku}
    eans = {offer.ean for offer in batch if offer.ean}
    known_skus = set(session.execute(select(Product.sku).where(Product.sku.in_(signatures))).scalars()) \
        if signatures else set()
    by_ean: dict[str, list[str]] = defaultdict(list)
    if eans:
        for sku, ean in session.execute(select(Product.sku, Product.ean).where(Product.ean.in_(eans))).all():
            by_ean[ean].append(sku)
    inflight_ids = [row.inflight_job_id for row in existing.values() if row.inflight_job_id is not None]
    open_jobs: set[int] = set()
    for start in range(0, len(inflight_ids), 1000):
        open_jobs |= set(session.execute(
            select(Job.id).where(Job.id.in_(inflight_ids[start:start + 1000]), Job.state.in_(OPEN_STATES))
        ).scalars())
    for offer in batch:
        result.seen += 1
        seen_ids.add(offer.external_id)
        row = existing.get(offer.external_id)
        if row is None:
            row = Listing(channel=channel, external_id=offer.external_id, active=True, currency=offer.currency,
                          error_retryable=False, updated_at=now)
            session.add(row)
            existing[offer.external_id] = row
        row.signature = offer.sku
        row.ean = offer.ean
        # present on the channel, even if ended at zero stock: a restock must reach it (the connector
        # re-activates ended offers); only an offer gone from the channel is inactive
        row.active = True
        row.seen_quantity = offer.quantity
        row.seen_price = offer.price_gross
        row.updated_at = now
        if row.sku is None:
            sku, how = None, None
            if offer.sku and offer.sku in known_skus:
                sku, how = offer.sku, "signature"
            elif offer.ean and len(by_ean.get(offer.ean, [])) == 1:
                sku, how = by_ean[offer.ean][0], "ean"
            if sku is not None and sku in bound_skus:
                result.conflicts.append(f"offer {offer.external_id} matches {sku}, already bound to another offer")
                sku = None
            if sku is not None:
                row.sku, row.matched_by = sku, how
                bound_skus.add(sku)
                newly_bound.add(sku)
                result.new_bindings += 1
        if row.sku is None:
            result.unmatched += 1
        inflight = row.inflight_job_id in open_jobs
        if not inflight and (row.ack_quantity != offer.quantity or row.ack_price != offer.price_gross):
            if row.ack_quantity is not None or row.ack_price is not None:
                result.drift += 1
            row.ack_quantity = offer.quantity
            row.ack_price = offer.price_gross
            row.acked_at = now
    for external_id, row in existing.items():
        if external_id not in seen_ids and row.active:
            row.active = False
            row.updated_at = now
            result.deactivated += 1
    session.flush()
    catalog.mark_dirty(session, newly_bound, now)
    return result


# --- runtime: the job handlers ------------------------------------------------------------


class SyncService:
    """Wires connectors, rules and the database for the sync job handlers and CLI commands."""

    def __init__(self, connectors: Any, rules: Rules, erp_stock_grace: timedelta = timedelta(minutes=10)):
        self.connectors = connectors
        self.rules = rules
        self.erp_stock_grace = erp_stock_grace

    @property
    def engine(self) -> Engine:
        return self.connectors.engine

    def channels(self) -> list[str]:
        return self.connectors.names(role="channel")

    def erps(self) -> list[str]:
        return self.connectors.names(role="erp")

    def batch_size(self, channel: str) -> int:
        return self.connectors.spec(channel).push_batch_size

    def plan_all(self, session: Session, *, dry_run: bool = False, only: str | None = None) -> list[PlannedPush]:
        apply_rules_change(session, self.rules)
        recompute(session, self.rules)
        planned: list[PlannedPush] = []
        for channel in self.channels():
            if only is None or channel == only:
                planned += plan(session, self.rules, channel, batch_size=self.batch_size(channel), dry_run=dry_run)
        return planned

    def poll_erp(self, erp: str, *, full: bool = False, limit: int = 5000) -> catalog.IngestResult:
        source = self.connectors.get(erp)
        total = catalog.IngestResult()
        seen: set[tuple[str, str]] = set()
        batches = source.snapshot() if full else None
        with transaction(self.engine) as session:
            cursor = catalog.load_cursor(session, erp)
        while True:
            batch = next(batches, None) if batches is not None else source.changes(cursor, limit=limit)
            if batch is None:
                break
            with transaction(self.engine) as session:
                total.add(catalog.ingest(session, erp, batch, seen=seen if batch.snapshot else None))
                catalog.save_cursor(session, erp, batch.cursor_after, utcnow())
                # this reading of the ERP's stock reflects the orders the ERP booked a while ago
                consumed = consume_reflected(session, {s.sku for s in batch.stock}, self.erp_stock_grace, utcnow())
                if consumed:
                    catalog.mark_dirty(session, {s.sku for s in batch.stock}, utcnow())
            cursor = batch.cursor_after
            if batch.complete and batches is None:
                break
        if total.rejected:
            log.warning("ERP records quarantined", erp=erp, rejected=total.rejected)
        return total

    # handlers

    def handle_poll(self, ctx: JobContext) -> dict[str, Any]:
        erp = ctx.payload["erp"]
        result = self.poll_erp(erp, full=bool(ctx.payload.get("full")))
        planned: list[PlannedPush] = []
        if result.changed_skus:
            with ctx.session() as session:
                planned = self.plan_all(session)
        return {"products": result.products, "changed": len(result.changed_skus), "rejected": result.rejected,
                "released": result.released, "pushes": len(planned)}

    def handle_push(self, ctx: JobContext) -> dict[str, Any]:
        channel = ctx.payload["channel"]
        items = ctx.payload["items"]
        port = self.connectors.get(channel)
        changes = [
            ListingChange(
                external_id=i["external_id"], sku=i["sku"], quantity=i.get("quantity"),
                price_gross=Decimal(i["price"]) if i.get("price") is not None else None, currency=i["currency"],
            )
            for i in items
        ]
        results = port.push(changes, idempotency_key=ctx.job.idempotency_key)
        with ctx.session() as session:
            serialize(session)
            ok, failed = record_results(session, ctx.job.id, channel, items, results)
            follow_up = plan(session, self.rules, channel, batch_size=self.batch_size(channel))
        if failed:
            ctx.log.warning("offers refused the change", ok=ok, failed=failed)
        return {"ok": ok, "failed": failed, "follow_up_pushes": len(follow_up)}

    def handle_reconcile(self, ctx: JobContext) -> dict[str, Any]:
        channel = ctx.payload["channel"]
        port = self.connectors.get(channel)
        try:
            offers = list(port.listings())
        except RetryableError:
            raise
        with ctx.session() as session:
            result = reconcile(session, channel, offers)
            planned = self.plan_all(session, only=channel)
        return {"seen": result.seen, "new_bindings": result.new_bindings, "drift": result.drift,
                "unmatched": result.unmatched, "deactivated": result.deactivated, "pushes": len(planned)}


PLAN_KIND = "sync.plan"


def load_rules(loaded: Any) -> Rules:
    from hub.mappings import load_all

    files = load_all(loaded.settings.mappings.dir)
    return Rules(pricing=files["pricing.toml"].data, stock=files["stock.toml"].data)


class LazySync:
    """One SyncService per process, built on first use (the engine arrives with the first job)."""

    def __init__(self, loaded: Any, transports: dict[str, Any] | None = None):
        self.loaded = loaded
        self.transports = transports or {}
        self._service: SyncService | None = None
        self._orders: Any = None
        import threading

        self._lock = threading.Lock()

    def get(self, engine: Engine) -> SyncService:
        with self._lock:
            if self._service is None:
                from hub.runtime import Connectors

                connectors = Connectors(self.loaded, engine, transports=self.transports)
                grace = timedelta(seconds=self.loaded.settings.orders.erp_stock_grace)
                self._service = SyncService(connectors, load_rules(self.loaded), grace)
            return self._service

    def orders(self, engine: Engine) -> Any:
        from hub.order_jobs import OrderService, order_rules

        service = self.get(engine)
        with self._lock:
            if self._orders is None:
                self._orders = OrderService(service.connectors, order_rules(self.loaded), service.erp_stock_grace)
            return self._orders

    def register(self, handlers: Any) -> None:
        from hub import order_jobs as oj

        handlers.register(POLL_KIND, lambda ctx: self.get(ctx.engine).handle_poll(ctx))
        handlers.register(PUSH_KIND, lambda ctx: self.get(ctx.engine).handle_push(ctx))
        handlers.register(RECONCILE_KIND, lambda ctx: self.get(ctx.engine).handle_reconcile(ctx))
        handlers.register(PLAN_KIND, lambda ctx: self._plan(ctx))
        for kind, method in ((oj.ORDERS_POLL, "handle_poll"), (oj.ORDERS_RECONCILE, "handle_reconcile"),
                             (oj.TO_ERP, "handle_to_erp"), (oj.ERP_CANCEL, "handle_erp_cancel"),
                             (oj.PUSH_STATUS, "handle_push_status"),
                             (oj.RETURNS_POLL, "handle_returns_poll"), (oj.REFUND, "handle_refund"),
                             (oj.RESTOCK, "handle_restock"), (oj.REJECT, "handle_reject")):
            handlers.register(kind, lambda ctx, m=method: getattr(self.orders(ctx.engine), m)(ctx))

    def _plan(self, ctx: JobContext) -> dict[str, Any]:
        service = self.get(ctx.engine)
        with ctx.session() as session:
            planned = service.plan_all(session)
        return {"pushes": len(planned)}
