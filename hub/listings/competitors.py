"""Competitor prices per SKU and channel, from a CSV feed (channel, sku, price), for repricing."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path

from sqlalchemy.orm import Session

from hub.catalog import mark_dirty
from hub.kernel.clock import utcnow
from hub.listings.models import CompetitorPrice
from hub.platform.db import upsert

REQUIRED = ("channel", "sku", "price")


@dataclass
class CompetitorImport:
    imported: int = 0
    problems: list[str] = field(default_factory=list)


def import_csv(session: Session, path: Path, encoding: str = "utf-8") -> CompetitorImport:
    """Upsert the feed's prices; a bad row is reported (file, line, field, value) and skipped."""
    text = path.read_text(encoding=encoding).lstrip("\ufeff")
    dialect = csv.Sniffer().sniff(text.splitlines()[0] if text else ",", delimiters=",;")
    reader = csv.DictReader(io.StringIO(text), dialect=dialect)
    out = CompetitorImport()
    missing = [c for c in REQUIRED if c not in (reader.fieldnames or [])]
    if missing:
        out.problems.append(f"{path}: required column(s) missing: {', '.join(missing)}")
        return out
    now = utcnow()
    dirty: set[str] = set()
    for line, row in enumerate(reader, start=2):
        channel, sku, raw = ((row.get(c) or "").strip() for c in REQUIRED)
        try:
            price = Decimal(raw.replace(" ", "").replace(",", "."))
        except InvalidOperation:
            price = Decimal(-1)
        if not channel or not sku or price <= 0 or price.as_tuple().exponent < -2:
            field_name = "channel" if not channel else "sku" if not sku else "price"
            value = {"channel": channel, "sku": sku, "price": raw}[field_name]
            out.problems.append(f"{path}:{line}: {field_name} = {value!r}: must be a non-empty value"
                                if field_name != "price" else
                                f"{path}:{line}: price = {raw!r}: must be an amount > 0 with at most 2 decimals")
            continue
        values = {"channel": channel, "sku": sku, "price": price, "seen_at": now}
        upsert(session, CompetitorPrice, values, ["channel", "sku"])
        dirty.add(sku)
        out.imported += 1
    mark_dirty(session, dirty, now)
    return out
