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
from hub.platform.db import insert_for

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


_PRICE_LIMIT = Decimal(10) ** 12  # the column's bound (Numeric(14, 2))


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


def _delimiter(header_line: str) -> str | None:
    """The delimiter under which the header names every required column (None: neither does)."""
    for delimiter in (";", ","):
        names = {c.strip().lower() for c in next(csv.reader([header_line], delimiter=delimiter), [])}
        if set(REQUIRED) <= names:
            return delimiter
    return None


def import_csv(session: Session, path: Path, channels: Collection[str], encoding: str = "utf-8") -> CompetitorImport:
    """Upsert the feed's prices in bulk; a bad row is reported (file, line, field, value) and skipped."""
    text = read_text(path, encoding)
    out = CompetitorImport()
    header_line = text.partition("\n")[0].rstrip("\r")
    delimiter = _delimiter(header_line)
    if delimiter is None:
        out.problems.append(f"{path}:1: the header {header_line[:200]!r} does not name the columns "
                            f"{', '.join(REQUIRED)} (separated by ; or ,)")
        return out
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    columns = [c.strip().lower() for c in next(reader)]
    at = {name: columns.index(name) for name in REQUIRED}
    rows: list[tuple[int, list[str]]] = []
    try:
        line = reader.line_num
        for cells in reader:
            start, line = line + 1, reader.line_num
            if any(c.strip() for c in cells):
                rows.append((start, cells))
    except csv.Error as exc:
        out.problems.append(f"{path}:{reader.line_num}: cannot be read as CSV ({exc})")
        return out
    if not rows and not out.problems:
        out.problems.append(f"{path}: no rows under the header")
    known = _known_skus(session, {cells[at["sku"]].strip() for _, cells in rows if len(cells) > at["sku"]} - {""})
    seen: dict[tuple[str, str], int] = {}
    good: list[dict[str, object]] = []
    now = utcnow()
    for line, cells in rows:
        problem, value = _check_row(cells, columns, at, channels, known, seen, line)
        if problem is not None:
            out.problems.append(f"{path}:{line}: {problem}")
        else:
            good.append({**value, "seen_at": now})
    if good:
        insert = insert_for(session)(CompetitorPrice)
        session.execute(insert.on_conflict_do_update(index_elements=["channel", "sku"], set_={
            "price": insert.excluded.price, "seen_at": insert.excluded.seen_at}), good)
    out.imported = len(good)
    mark_dirty(session, {str(v["sku"]) for v in good}, now)
    return out


def _check_row(cells: list[str], columns: list[str], at: dict[str, int], channels: Collection[str],
               known: set[str], seen: dict[tuple[str, str], int], line: int) -> tuple[str | None, dict[str, object]]:
    """(what is wrong, or None) and the row's values."""
    if len(cells) != len(columns):
        return (f"the row has {len(cells)} values but the header has {len(columns)} columns "
                f"({'a value with an unquoted separator?' if len(cells) > len(columns) else 'a cut-off line?'})"), {}
    channel, sku, raw = (cells[at[name]].strip() for name in REQUIRED)
    if not channel or not sku:
        return f"{'channel' if not channel else 'sku'} = '': must be a non-empty value", {}
    if channel not in channels:
        return (f"channel = {channel!r}: no such channel (configured: {', '.join(sorted(channels)) or 'none'})"), {}
    if sku not in known:
        return f"sku = {sku!r}: not in the catalogue", {}
    price = _price(raw)
    if price is None:
        return f"price = {raw!r}: must be an amount > 0 with at most 2 decimals (e.g. 19,99 or 1 299.00)", {}
    if price >= _PRICE_LIMIT:
        return f"price = {raw!r}: must be under 1,000,000,000,000", {}
    first = seen.setdefault((channel, sku), line)
    if first != line:
        return f"sku = {sku!r}: channel {channel} has a price for it on line {first} already (one row each)", {}
    return None, {"channel": channel, "sku": sku, "price": price}
