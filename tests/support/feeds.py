"""Reading an ERP source's streamed read whole, as the hub stages it: for tests of what a connector
delivers (the rules across rows are the hub's, tested in tests/catalog)."""

from __future__ import annotations

from collections.abc import Container, Sequence
from dataclasses import dataclass, field

from hub.catalog.feed_rules import records
from hub.kernel.ports.erp import (
    ErpBatch,
    ErpSource,
    FeedRow,
    KnownRow,
    PriceRecord,
    ProductRecord,
    RejectedRecord,
    StockRecord,
)


@dataclass
class Read:
    """Every part of one read, together."""

    products: list[ProductRecord]
    stock: list[StockRecord]
    prices: list[PriceRecord]
    rejected: list[RejectedRecord]
    snapshot: bool
    complete: bool
    cursor_after: str | None
    rows: list[FeedRow] = field(default_factory=list)
    unchanged: list[KnownRow] = field(default_factory=list)
    parts: int = 1


def read_whole(source: ErpSource, cursor: str | None, *, limit: int = 100, known: Container[int] = frozenset()) -> Read:
    """changes() from ``cursor`` and, while it delivers a read in parts, the parts that follow."""
    parts = [source.changes(cursor, limit=limit, known=known)]
    while parts[-1].rows is not None and not parts[-1].complete:
        parts.append(source.changes(parts[-1].cursor_after, limit=limit, known=known))
    return _together(parts)


def read_snapshot_whole(source: ErpSource, known: Container[int] = frozenset()) -> Read:
    return _together(list(source.snapshot(known=known)))


def _together(parts: Sequence[ErpBatch]) -> Read:
    rows = [r for p in parts for r in (p.rows or ())]
    products, stock, prices = records(rows)  # type: ignore[arg-type]
    if not rows:
        products, stock, prices = [p for b in parts for p in b.products], [s for b in parts for s in b.stock], [
            p for b in parts for p in b.prices]
    return Read(products, stock, prices, [r for p in parts for r in p.rejected], parts[-1].snapshot,
                parts[-1].complete, parts[-1].cursor_after, rows, [k for p in parts for k in p.unchanged], len(parts))
