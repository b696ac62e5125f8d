"""Competitor prices per SKU and channel, from a CSV feed (channel, sku, price), for repricing.

Read with the ERP feed's number rules (comma or semicolon columns, decimal comma, no exponents,
no NaN or Infinity). A row naming a channel the config does not define, or a SKU the catalogue
does not hold, is rejected with its line; one bad row never stops the rest.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Collection
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from hub.catalog import Product, mark_dirty, parse_decimal
from hub.kernel.clock import utcnow
from hub.kernel.errors import HubError
from hub.listings.models import CompetitorPrice
from hub.platform.db import upsert

REQUIRED = ("channel", "sku", "price")
CHUNK = 500


@dataclass
class CompetitorImport:
    imported: int = 0
    problems: list[str] = field(default_factory=list)


def read_text(path: Path, encoding: str = "utf-8") -> str:
    """The file's text; a folder, an unreadable file or text in another encoding is one clear error."""
    if path.is_dir():
        raise HubError(f"{path}: is a folder, not a CSV file")
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise HubError(f"{path}: file not found") from None
    try:
        return raw.decode(encoding).lstrip("\ufeff")
    except UnicodeDecodeError as exc:
        raise HubError(f"{path}: not {encoding} text (byte 0x{raw[exc.start]:02x} at offset {exc.start}): "
                       f"save it as {encoding.upper()}") from None


def _price(raw: str) -> Decimal | None:
    try:
        price = parse_decimal(raw)
    except ValueError:
        return None
    if price <= 0 or -price.as_tuple().exponent > 2:  # type: ignore[operator]  # finite: parse_decimal
        return None
    return price


def _known_skus(session: Session, skus: set[str]) -> set[str]:
    ordered = sorted(skus)
    known: set[str] = set()
    for start in range(0, len(ordered), CHUNK):
        known |= set(session.execute(
            select(Product.sku).where(Product.sku.in_(ordered[start:start + CHUNK]))).scalars())
    return known


def import_csv(session: Session, path: Path, channels: Collection[str], encoding: str = "utf-8") -> CompetitorImport:
    """Upsert the feed's prices; a bad row is reported (file, line, field, value) and skipped."""
    text = read_text(path, encoding)
    dialect = csv.Sniffer().sniff(text.splitlines()[0] if text else ",", delimiters=",;")
    rows = list(enumerate(csv.DictReader(io.StringIO(text), dialect=dialect), start=2))
    out = CompetitorImport()
    header = csv.DictReader(io.StringIO(text), dialect=dialect).fieldnames or []
    missing = [c for c in REQUIRED if c not in header]
    if missing:
        out.problems.append(f"{path}: required column(s) missing: {', '.join(missing)}")
        return out
    known = _known_skus(session, {(row.get("sku") or "").strip() for _, row in rows} - {""})
    now = utcnow()
    dirty: set[str] = set()
    for line, row in rows:
        channel, sku, raw = ((row.get(c) or "").strip() for c in REQUIRED)
        price = _price(raw)
        if not channel or not sku:
            name = "channel" if not channel else "sku"
            out.problems.append(f"{path}:{line}: {name} = '': must be a non-empty value")
        elif channel not in channels:
            out.problems.append(f"{path}:{line}: channel = {channel!r}: no such channel (configured: "
                                f"{', '.join(sorted(channels)) or 'none'})")
        elif sku not in known:
            out.problems.append(f"{path}:{line}: sku = {sku!r}: not in the catalogue")
        elif price is None:
            out.problems.append(f"{path}:{line}: price = {raw!r}: must be an amount > 0 with at most 2 decimals "
                                "(e.g. 19,99 or 1 299.00)")
        else:
            upsert(session, CompetitorPrice, {"channel": channel, "sku": sku, "price": price, "seen_at": now},
                   ["channel", "sku"])
            dirty.add(sku)
            out.imported += 1
    mark_dirty(session, dirty, now)
    return out
