"""The catalogue's changed-SKU signal: one direction, owned here, heard by the listings.

Whatever changes what a SKU may show on a channel (an ERP reading, a reservation, a new offer
binding, a competitor price) marks the SKU in ``dirty_skus``; the listings recompute the
marked SKUs' desired state and push the differences. ``stock_changed`` also asks for that at
once, ahead of routine work, with a coalesced job of the kind ``PLAN_KIND``, whose handler the
listings register. So orders never import listings, and listings learn of every change.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sqlalchemy.orm import Session

from hub.catalog.models import DirtySku
from hub.jobs import queue
from hub.platform.db import insert_for

PLAN_KIND = "sync.plan"  # stored in the jobs table: never rename
CHUNK = 500


def mark_dirty(session: Session, skus: Iterable[str], now: datetime) -> None:
    """Upsert (not insert-or-ignore): a mark made again moves its ``since``, and a recompute running
    meanwhile deletes only the marks as it read them (hub.listings.desired), so a change made during a
    recompute is never lost, and never waits for it."""
    rows = [{"sku": s, "since": now} for s in sorted(set(skus))]
    if not rows:
        return
    # one statement executed for many rows on the connection (not a VALUES list compiled per chunk, not
    # the ORM's bulk path): bench/scale.py spent a fifth of a feed's first read here
    table = DirtySku.__table__
    stmt = insert_for(session)(table)
    upsert = stmt.on_conflict_do_update(index_elements=["sku"], set_={"since": stmt.excluded.since})
    connection = session.connection()
    for start in range(0, len(rows), CHUNK * 10):
        connection.execute(upsert, rows[start:start + CHUNK * 10])


def stock_changed(session: Session, skus: Iterable[str], now: datetime, *, reason: str) -> None:
    """Mark the SKUs and have every channel hear of their new available-to-sell at once (high
    priority, coalesced: a burst of orders makes one pending plan job, not one per order)."""
    mark_dirty(session, skus, now)
    queue.enqueue_coalesced(session, PLAN_KIND, {"reason": reason}, group=f"plan:{reason}", priority=20)
