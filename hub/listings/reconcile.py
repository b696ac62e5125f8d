"""Reconciliation: what the channel really shows becomes the acknowledged state, offers are bound to
SKUs (signature, then EAN), and drift becomes a difference the next plan fixes.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any

from sqlalchemy import Column, MetaData, String, Table, bindparam, exists, insert, select, text, update
from sqlalchemy.orm import Session

from hub import catalog
from hub.catalog import Product
from hub.jobs.models import OPEN_STATES, Job
from hub.kernel.clock import round_down, utcnow
from hub.listings.models import Listing
from hub.listings.plan import serialize
from hub.platform.db import insert_for
from hub.platform.spool import batched


@dataclass
class ReconcileResult:
    seen: int = 0
    new_bindings: int = 0
    drift: int = 0
    deactivated: int = 0
    unmatched: int = 0
    sales_held: int = 0  # offers showing fewer units than we sent: held as sales, not overwritten
    inserted: int = 0  # offers the hub had no listing for
    conflicts: list[str] = field(default_factory=list)


# how long a channel's lower quantity counts as a sale whose order is coming (the orders journal is
# read every 15-30 s): if no order explains it by then, it was drift, and the plan corrects it. The
# channel's orders for the SKU imported since our last acknowledged push end it sooner (hub.listings.plan)
SALE_HOLD = timedelta(minutes=5)


PAGE = 2000  # offers per page: what is held at once, whatever the channel's size


def reconcile(session: Session, channel: str, listings: Iterable[Any],
              read_started: datetime | None = None, *,
              order_time_resolution: timedelta = timedelta(0)) -> ReconcileResult:
    """Store what the channel really shows, bind offers to SKUs, and turn drift into differences.

    ``read_started``: when the read of ``listings`` began. A listing acknowledged since then (a push
    that completed while the channel was being read) is newer than what was read: its acknowledged
    state stands, and the older read is neither a sale nor drift. ``order_time_resolution``: how
    finely the channel stamps its orders (a sale hold counts orders from its start rounded down to it).

    The offers are taken a page at a time (PAGE): each page's listings, candidate SKUs and in-flight
    jobs are read for that page alone, written, and let go; the offers seen are kept in a temporary
    table, so the listings the channel no longer shows are deactivated by one statement at the end."""
    serialize(session)
    now = utcnow()
    result = ReconcileResult()
    conn = session.connection()
    _SEEN.drop(conn, checkfirst=True)
    _SEEN.create(conn)
    analyzed_at = 0
    for page in batched(listings, PAGE):
        _reconcile_page(session, channel, page, read_started, order_time_resolution, now, result)
        if conn.dialect.name == "postgresql" and result.inserted >= max(2 * analyzed_at, PAGE):
            # the rows this transaction inserted are not in the planner's statistics: a channel's first
            # reconciliation turned each page's lookups into scans of every listing (a million offers:
            # minutes); ANALYZE samples the table and sees them
            conn.execute(text("ANALYZE listings"))
            analyzed_at = result.inserted
    listings_table = Listing.__table__
    result.deactivated = conn.execute(
        update(listings_table).where(listings_table.c.channel == channel, listings_table.c.active.is_(True),
                                     ~exists().where(_SEEN.c.external_id == listings_table.c.external_id))
        .values(active=False, updated_at=now)).rowcount or 0
    _SEEN.drop(conn, checkfirst=True)
    return result


# the external ids of the offers one reconciliation has seen (on the session's connection)
_SEEN = Table("hub_reconcile_seen", MetaData(), Column("external_id", String(100), primary_key=True),
              prefixes=["TEMPORARY"])


def _reconcile_page(session: Session, channel: str, batch: Sequence[Any], read_started: datetime | None,
                    order_time_resolution: timedelta, now: datetime, result: ReconcileResult) -> None:
    ids = list(dict.fromkeys(offer.external_id for offer in batch))
    session.connection().execute(insert_for(session)(_SEEN).on_conflict_do_nothing(),
                                 [{"external_id": i} for i in ids])
    table = Listing.__table__
    read = [_Row(row._mapping) for row in session.connection().execute(
        select(table).where(table.c.channel == channel, table.c.external_id.in_(ids)))]
    before = {row.id: dict(row.__dict__) for row in read}
    existing = {row.external_id: row for row in read}
    signatures = {offer.sku for offer in batch if offer.sku}
    eans = {offer.ean for offer in batch if offer.ean}
    known_skus = set(session.execute(select(Product.sku).where(Product.sku.in_(signatures))).scalars()) \
        if signatures else set()
    by_ean: dict[str, list[str]] = defaultdict(list)
    if eans:
        for sku, ean in session.execute(select(Product.sku, Product.ean).where(Product.ean.in_(eans))).all():
            by_ean[ean].append(sku)
    # the SKUs these offers could bind that the channel has bound already (one offer per SKU)
    candidates = known_skus | {skus[0] for skus in by_ean.values() if len(skus) == 1}
    bound_skus = set(session.execute(select(Listing.sku).where(
        Listing.channel == channel, Listing.sku.in_(candidates))).scalars()) if candidates else set()
    inflight_ids = [row.inflight_job_id for row in existing.values() if row.inflight_job_id is not None]
    open_jobs = set(session.execute(
        select(Job.id).where(Job.id.in_(inflight_ids), Job.state.in_(OPEN_STATES))).scalars()) \
        if inflight_ids else set()
    newly_bound: set[str] = set()
    new_rows: list[_Row] = []
    for offer in batch:
        result.seen += 1
        row = existing.get(offer.external_id)
        if row is None:
            row = _Row({**_NEW, "channel": channel, "external_id": offer.external_id, "currency": offer.currency,
                        "updated_at": now})
            new_rows.append(row)  # inserted in bulk after the page (no object tracked, no id read back)
            result.inserted += 1
            existing[offer.external_id] = row
        row.signature = offer.sku
        row.ean = offer.ean
        # present on the channel, even if ended at zero stock: a restock must reach it (the connector
        # re-activates ended offers); only an offer gone from the channel is inactive
        row.active = True
        row.seen_quantity = offer.quantity
        row.seen_price = offer.price_gross  # what a buyer pays
        price = offer.list_price if getattr(offer, "list_price", None) is not None else offer.price_gross
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
        newer = read_started is not None and row.acked_at is not None and row.acked_at >= read_started
        # an offer not on sale shows 0; what it stores tells how many units it sold (our last quantity
        # applied to an offer a buyer had just ended is not six units sold)
        remaining = offer.stock if not getattr(offer, "active", True) and getattr(offer, "stock", None) is not None \
            else offer.quantity
        if not inflight and not newer and (row.ack_quantity != offer.quantity or row.ack_price != price):
            if row.ack_quantity is not None and remaining < row.ack_quantity:
                # fewer units than we sent: the channel sold some, and the order is on its way to the
                # journal; raising the quantity back now would put the sold unit on sale again
                sold = row.ack_quantity - remaining
                if row.sale_hold_until is not None and row.sale_hold_until > now and row.sale_hold_since:
                    row.sale_hold_units = (row.sale_hold_units or 0) + sold  # another sale in the same hold
                else:  # the sale came after the last moment the hub knew the channel's quantity
                    row.sale_hold_units, row.sale_hold_since = sold, row.known_at or row.acked_at or now
                    row.sale_hold_from = round_down(row.sale_hold_since, order_time_resolution)
                row.sale_hold_until = now + SALE_HOLD
                result.sales_held += 1
            elif row.ack_quantity is not None or row.ack_price is not None:
                result.drift += 1
            row.ack_quantity = offer.quantity
            row.ack_price = price
            row.acked_at = now
        if not inflight and not newer:
            row.known_at = read_started or now
    _write(session, read, before, new_rows)
    catalog.mark_dirty(session, newly_bound, now)


class _Row:
    """A listing's columns as plain attributes: a page's listings are read, changed and written as
    rows, not ORM objects (building, tracking and flushing an object per offer was half of a
    reconciliation's time)."""

    def __init__(self, values: Any) -> None:
        self.__dict__.update(values)


_COLUMNS = tuple(c.key for c in Listing.__table__.columns if c.key != "id")
# a new listing: what the offer sets, the rest empty (active, never in error)
_NEW = {**dict.fromkeys(_COLUMNS), "active": True, "error_retryable": False}
# what reconciliation may change of a listing it has (never the desired state, the in-flight job or
# the last error: those are the plan's and the push's)
_RECONCILED = ("signature", "ean", "active", "seen_quantity", "seen_price", "updated_at", "sku", "matched_by",
               "ack_quantity", "ack_price", "acked_at", "known_at", "sale_hold_until", "sale_hold_since",
               "sale_hold_units", "sale_hold_from")


def _write(session: Session, read: Sequence[_Row], before: dict[int, dict[str, Any]], new_rows: Sequence[_Row]
           ) -> None:
    """The page's changes in bulk: each listing's changed columns only (a column it left alone is not
    written back from what was read), one executemany per set of changed columns; new listings in one
    insert."""
    conn = session.connection()
    changes: dict[tuple[str, ...], list[dict[str, Any]]] = defaultdict(list)
    for row in read:
        was = before[row.id]
        changed = tuple(key for key in _RECONCILED if row.__dict__[key] != was[key])
        if changed:
            changes[changed].append({"b_id": row.id, **{f"b_{key}": row.__dict__[key] for key in changed}})
    for changed, params in changes.items():
        conn.execute(_update(changed), params)
    if new_rows:
        conn.execute(insert(Listing.__table__), [{key: row.__dict__[key] for key in _COLUMNS} for row in new_rows])
    # listings this session holds as objects are read again when next used (they were written around them)
    for obj in list(session.identity_map.values()):
        if isinstance(obj, Listing):
            session.expire(obj)


@lru_cache(maxsize=64)
def _update(columns: tuple[str, ...]) -> Any:
    table = Listing.__table__
    return update(table).where(table.c.id == bindparam("b_id")).values({key: bindparam(f"b_{key}") for key in columns})


def bind_waiting(session: Session) -> set[str]:
    """Offers a channel showed before the ERP had their SKU (a fresh database: the first reconcile ran
    before the first ERP read landed) are bound as soon as the SKU exists, by signature, then by a
    unique EAN, never to a SKU the channel has bound already. Returns the SKUs newly bound (marked
    dirty, so the next plan pushes them without waiting for the next reconcile). A page of waiting
    offers at a time (by id): a whole channel can be waiting, and its rows are never all held at once."""
    newly: set[str] = set()
    after = 0
    now = utcnow()
    while True:
        waiting = session.execute(
            select(Listing).where(Listing.sku.is_(None), Listing.active.is_(True), Listing.id > after)
            .order_by(Listing.id).limit(PAGE)).scalars().all()
        if not waiting:
            return newly
        after = waiting[-1].id
        bound_now = _bind_page(session, waiting, now)
        session.flush()  # the page's bindings are in the database: the next page's lookups see them
        catalog.mark_dirty(session, bound_now, now)
        newly |= bound_now


def _bind_page(session: Session, waiting: Sequence[Listing], now: datetime) -> set[str]:
    signatures = sorted({row.signature for row in waiting if row.signature})
    eans = sorted({row.ean for row in waiting if row.ean})
    known = set(session.execute(select(Product.sku).where(Product.sku.in_(signatures))).scalars()) \
        if signatures else set()
    by_ean: dict[str, list[str]] = defaultdict(list)
    if eans:
        for sku, ean in session.execute(select(Product.sku, Product.ean).where(Product.ean.in_(eans))).all():
            by_ean[ean].append(sku)
    wanted = {row.id: (row.signature if row.signature in known else
                       by_ean[row.ean][0] if row.ean and len(by_ean.get(row.ean, [])) == 1 else None,
                       "signature" if row.signature in known else "ean")
              for row in waiting}
    skus = sorted({sku for sku, _ in wanted.values() if sku})
    bound = {(channel, sku) for channel, sku in session.execute(
        select(Listing.channel, Listing.sku).where(Listing.sku.in_(skus))).all()} if skus else set()
    newly: set[str] = set()
    for row in waiting:
        sku, how = wanted[row.id]
        if sku is None or (row.channel, sku) in bound:
            continue
        row.sku, row.matched_by, row.updated_at = sku, how, now
        bound.add((row.channel, sku))
        newly.add(sku)
    return newly


