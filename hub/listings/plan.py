"""The diff: listings whose desired state the channel has not acknowledged become push jobs.

One SQL query selects listings whose desired state differs from what the channel acknowledged and
that have no push in flight; only those become push jobs, batched to the connector's limit. One push
in flight per listing keeps changes in order: a newer value waits for the running push, and the
push's completion plans again.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, bindparam, case, exists, or_, select, text, update
from sqlalchemy.orm import Session

from hub.catalog import DirtySku
from hub.jobs import queue
from hub.jobs.models import OPEN_STATES, Job
from hub.kernel.clock import utcnow
from hub.listings.kinds import PUSH_KIND
from hub.listings.models import Listing
from hub.listings.rules import Rules
from hub.orders import units_ordered_since
from hub.platform.logs import get_logger

log = get_logger("hub.listings.plan")


RETRYABLE_OFFER_ERROR_PAUSE = timedelta(seconds=30)


@dataclass
class PlannedPush:
    channel: str
    items: list[dict[str, Any]]
    job_id: int | None = None


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


def _explained() -> Any:
    """Units of the listing's SKU in the channel's orders placed since its sale hold's start (our last
    acknowledgement before the sale): they explain the hold's units (only computed for a listing held
    now). The units they do not explain yet are kept off sale by every quantity the plan sends."""
    sold = units_ordered_since(Listing.sku, Listing.channel, Listing.sale_hold_since, Listing.sale_hold_from)
    return case((and_(Listing.sale_hold_until > bindparam("now"), Listing.sale_hold_since.is_not(None)), sold),
                else_=None)


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
            Listing.sale_hold_until, Listing.sale_hold_units, _explained(),
        )
        .outerjoin(inflight, inflight.c.id == Listing.inflight_job_id)
        .where(
            Listing.channel == bindparam("channel"),
            Listing.sku.is_not(None),
            Listing.active.is_(True),
            DIFFERS,
            or_(Listing.inflight_job_id.is_(None), inflight.c.id.is_(None), inflight.c.state.not_in(OPEN_STATES)),
            ~blocked,
            # a SKU marked for recompute has a desired state older than what the orders say now: an
            # order committed after the last recompute counts for the sale hold (explained) but is not
            # in desired yet, so sending desired would offer its unit again; the recompute queued with
            # the mark plans it
            ~exists().where(DirtySku.sku == Listing.sku),
        )
        .order_by(Listing.id)
    )


_DIFFERENCES = _differences_statement()


def differences(session: Session, channel: str, *, now: datetime | None = None) -> Any:
    """The set-based diff: listings whose desired state the channel has not acknowledged and that
    have no push in flight. Core rows (no ORM loading): this runs on every ERP poll."""
    now = now or utcnow()
    return session.connection().execute(
        _DIFFERENCES, {"channel": channel, "retry_before": now - RETRYABLE_OFFER_ERROR_PAUSE, "now": now}
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
    now = utcnow()
    for (listing_id, external_id, sku, currency, want_qty, ack_qty, want_price, ack_price, held, held_units,
         explained) in differences(session, channel, now=now):
        item: dict[str, Any] = {"listing_id": listing_id, "external_id": external_id, "sku": sku,
                                "currency": currency}
        if want_qty is not None:
            # units the channel sold whose orders are not in yet: not on sale again, whatever else changed
            unexplained = max(0, (held_units or 0) - (explained or 0)) if held is not None and held > now else 0
            quantity = max(0, want_qty - unexplained)
            if quantity != ack_qty:
                item["quantity"] = quantity
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
