"""The catalogue: what the ERP says (products, stock, prices), read and validated, with bad records
quarantined; and the changed-SKU signal the listings subscribe to.

Other capabilities import only the names below (an import contract test holds them to it)."""

from hub.catalog.changes import PLAN_KIND, mark_dirty, stock_changed
from hub.catalog.feed_rules import parse_decimal
from hub.catalog.ingest import IngestResult, ingest, load_cursor, save_cursor
from hub.catalog.models import DirtySku, ErpReject, Product, StockLevel
from hub.catalog.poll import StockRead, poll_erp

__all__ = [
    "PLAN_KIND", "DirtySku", "ErpReject", "IngestResult", "Product", "StockLevel", "StockRead", "ingest",
    "load_cursor", "mark_dirty", "parse_decimal", "poll_erp", "save_cursor", "stock_changed",
]
