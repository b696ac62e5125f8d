"""Reading the ERP: every batch since the stored cursor (or a whole snapshot), each ingested in its
own transaction together with the cursor that covers it, so a crash never skips a record."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from sqlalchemy import Engine
from sqlalchemy.orm import Session

from hub.catalog.ingest import IngestResult, ingest, load_cursor, save_cursor
from hub.kernel.clock import utcnow
from hub.kernel.ports.erp import ErpSource
from hub.platform.db import within
from hub.platform.logs import get_logger

log = get_logger("hub.catalog.poll")

# Called in each batch's transaction with the SKUs whose stock the ERP just reported: a subscriber
# (the orders' reservations) learns that the ERP's stock now reflects what it booked.
StockRead = Callable[[Session, set[str], datetime], None]


def poll_erp(engine: Engine, source: ErpSource, erp: str, *, full: bool = False, limit: int = 5000,
             on_stock_read: StockRead | None = None, session: Session | None = None) -> IngestResult:
    """Every batch since the stored cursor, each in its own transaction; with ``session``, all of them
    in the caller's transaction instead (``hub sync --dry-run`` rolls it back: nothing stays, the
    cursor does not move)."""
    total = IngestResult()
    seen: set[tuple[str, str]] = set()
    batches = source.snapshot() if full else None
    with within(engine, session) as s:
        cursor = load_cursor(s, erp)
    while True:
        batch = next(batches, None) if batches is not None else source.changes(cursor, limit=limit)
        if batch is None:
            break
        with within(engine, session) as s:
            total.add(ingest(s, erp, batch, seen=seen if batch.snapshot else None))
            save_cursor(s, erp, batch.cursor_after, utcnow())
            if on_stock_read is not None:
                on_stock_read(s, {r.sku for r in batch.stock}, utcnow())
        cursor = batch.cursor_after
        if batch.complete and batches is None:
            break
    if total.rejected:
        log.warning("ERP records quarantined", erp=erp, rejected=total.rejected)
    return total

