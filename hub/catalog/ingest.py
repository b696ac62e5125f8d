"""ERP ingest: validated records into the catalogue, bad ones into quarantine, in one transaction.

The cursor moves in the same transaction as the records it covers, so a crash
mid-batch never skips a record. Every SKU whose stock or price changed is
marked dirty in that transaction too; recomputing the channels' desired state
consumes the dirty set.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import bindparam, delete, select
from sqlalchemy.orm import Session

from hub.catalog.changes import mark_dirty
from hub.catalog.models import ErpCursor, ErpReject, Product, StockLevel
from hub.kernel.clock import utcnow
from hub.kernel.ports.erp import ErpBatch, PriceRecord, ProductRecord, RejectedRecord, StockRecord
from hub.platform.db import insert_for, upsert

CHUNK = 500


@dataclass
class IngestResult:
    products: int = 0  # rows read (a snapshot's unchanged rows included)
    stock_rows: int = 0
    changed: int = 0  # SKUs marked dirty by the read
    rejected: int = 0
    released: int = 0  # quarantined records that are valid now
    zeroed: int = 0  # stock rows absent from a snapshot
    new: int = 0  # products the catalogue did not have
    bound: int = 0  # offers bound to a SKU that arrived with the read

    def add(self, other: IngestResult) -> None:
        self.products += other.products
        self.stock_rows += other.stock_rows
        self.changed += other.changed
        self.rejected += other.rejected
        self.released += other.released
        self.zeroed += other.zeroed
        self.new += other.new
        self.bound += other.bound


def load_cursor(session: Session, erp: str) -> str | None:
    row = session.get(ErpCursor, erp)
    return row.cursor if row else None


def save_cursor(session: Session, erp: str, cursor: str | None, now: datetime) -> None:
    upsert(session, ErpCursor, {"erp": erp, "cursor": cursor, "updated_at": now}, ["erp"])


def _merged(products: Sequence[ProductRecord], prices: Sequence[PriceRecord]) -> dict[str, dict]:
    by_sku: dict[str, dict] = {}
    price_by_sku = {p.sku: p for p in prices}
    for product in products:
        price = price_by_sku.get(product.sku)
        if price is None:
            continue
        by_sku[product.sku] = {
            "sku": product.sku, "name": product.name, "ean": product.ean, "vat_rate": product.vat_rate,
            "weight_kg": product.weight_kg, "price_gross": price.price_gross, "currency": price.currency,
            "cost_net": price.cost_net,
        }
    return by_sku


_PRICING = ("price_gross", "cost_net", "vat_rate", "currency", "ean")  # what a channel's price depends on


def _upsert_products(session: Session, erp: str, rows: dict[str, dict], now: datetime,
                     new: set[str] | None = None) -> set[str]:
    """Insert or update products in bulk; returns the SKUs whose price, cost, VAT, currency or EAN changed.

    The read only finds what changed; the write is one INSERT ... ON CONFLICT per chunk, so two readers
    of the same feed never collide on a product one of them inserted meanwhile."""
    changed: set[str] = set()
    skus = sorted(rows)
    for start in range(0, len(skus), CHUNK):
        chunk = skus[start:start + CHUNK]
        # plain rows, not ORM objects: building and tracking an object per product cost more than the read
        existing = {row[0]: row for row in session.execute(_STORED, {"skus": chunk})}
        writes = []
        for sku in chunk:
            row = rows[sku]
            old = existing.get(sku)
            if old is None or old[1] != erp or any(old[i] != row[k] for i, k in _COMPARED):
                writes.append({**row, "erp": erp, "updated_at": now})
                if old is None or any(old[i] != row[k] for i, k in _COMPARED if k in _PRICING):
                    changed.add(sku)
                if old is None and new is not None:
                    new.add(sku)
        _bulk_upsert(session, Product, writes, ["sku"])
    session.expire_all()  # a caller's products in the identity map are what was there before the writes
    return changed


_STORED_COLUMNS = ("sku", "erp", "name", "ean", "vat_rate", "weight_kg", "price_gross", "currency", "cost_net")
_COMPARED = tuple((i, k) for i, k in enumerate(_STORED_COLUMNS) if k not in ("sku", "erp"))
_STORED = (select(*(getattr(Product.__table__.c, k) for k in _STORED_COLUMNS))
           .where(Product.__table__.c.sku.in_(bindparam("skus", expanding=True))))


def _upsert_stock(session: Session, stock: Sequence[StockRecord], now: datetime) -> set[str]:
    """As _upsert_products, for (sku, warehouse) quantities; returns the SKUs whose stock changed."""
    changed: set[str] = set()
    wanted = {(s.sku, s.warehouse): s.quantity for s in stock}
    keys = sorted(wanted)
    for start in range(0, len(keys), CHUNK):
        chunk = keys[start:start + CHUNK]
        # by SKU, the key's first column: SQLite scanned the whole table for a row-value IN of (sku,
        # warehouse) pairs, once per chunk (bench/scale.py: a 1,000,000-SKU feed never finished)
        existing = {(sku, warehouse): quantity for sku, warehouse, quantity in session.execute(
            _STOCK_OF, {"skus": sorted({sku for sku, _ in chunk})})}
        # no fingerprint: a row of changes is not a snapshot's row (hub.catalog.stage)
        writes = [{"sku": key[0], "warehouse": key[1], "quantity": wanted[key], "fingerprint": None,
                   "updated_at": now}
                  for key in chunk if existing.get(key) != wanted[key]]
        changed.update(w["sku"] for w in writes)
        _bulk_upsert(session, StockLevel, writes, ["sku", "warehouse"])
    return changed


_STOCK_OF = (select(StockLevel.__table__.c.sku, StockLevel.__table__.c.warehouse, StockLevel.__table__.c.quantity)
             .where(StockLevel.__table__.c.sku.in_(bindparam("skus", expanding=True))))


def _bulk_upsert(session: Session, model: type, rows: list[dict], keys: list[str]) -> None:
    if not rows:
        return
    insert = insert_for(session)(model.__table__)  # type: ignore[attr-defined]
    columns = [k for k in rows[0] if k not in keys]
    # executemany on the connection: the driver sends the rows in batches, no statement compiled per chunk,
    # and no ORM bulk path in between
    session.connection().execute(insert.on_conflict_do_update(
        index_elements=keys, set_={k: getattr(insert.excluded, k) for k in columns}), rows)


def quarantine(session: Session, erp: str, rejected: Sequence[RejectedRecord], now: datetime) -> int:
    """Insert or update the rejects in bulk (first_seen stays from the first time a record was refused)."""
    by_key: dict[tuple[str, str], dict] = {}
    for record in rejected:
        key = (record.sku or record.source)[:200]
        by_key[(key, record.field)] = {
            "erp": erp, "record_key": key, "sku": record.sku, "source": record.source,
            "field": record.field, "value": record.value, "reason": record.reason,
            "first_seen": now, "last_seen": now,
        }
    if by_key:
        insert = insert_for(session)(ErpReject)
        session.execute(insert.on_conflict_do_update(
            index_elements=["erp", "record_key", "field"],
            set_={k: getattr(insert.excluded, k) for k in ("source", "sku", "value", "reason", "last_seen")}),
            list(by_key.values()))
    return len(rejected)


def _release(session: Session, erp: str, valid_skus: set[str], rejected_skus: set[str]) -> int:
    """Records that are valid now leave quarantine by themselves."""
    leaving = sorted(valid_skus - rejected_skus)
    released = 0
    for start in range(0, len(leaving), CHUNK):
        result = session.execute(
            delete(ErpReject).where(ErpReject.erp == erp, ErpReject.sku.in_(leaving[start:start + CHUNK]))
        )
        released += result.rowcount or 0
    return released


def ingest(session: Session, erp: str, batch: ErpBatch) -> IngestResult:
    """Apply one batch of changes (not a snapshot: hub.catalog.stage applies those) in the caller's
    transaction (the caller saves the cursor with it)."""
    now = utcnow()
    result = IngestResult()
    rejected_skus = {r.sku for r in batch.rejected if r.sku}
    rows = _merged(batch.products, batch.prices)
    new: set[str] = set()
    changed = _upsert_products(session, erp, rows, now, new)
    stock = [s for s in batch.stock if s.sku in rows]
    changed |= _upsert_stock(session, stock, now)
    result.products = len(rows)
    result.stock_rows = len(stock)
    result.new = len(new)
    result.rejected = quarantine(session, erp, batch.rejected, now)
    result.released = _release(session, erp, set(rows), rejected_skus)
    mark_dirty(session, changed, now)
    result.changed = len(changed)
    return result
