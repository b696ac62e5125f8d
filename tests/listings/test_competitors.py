"""Competitor prices: the ERP feed's number rules, a bad row rejected with its line, the rest imported."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import Engine, select

from hub.catalog import Product
from hub.kernel.clock import utcnow
from hub.kernel.errors import HubError
from hub.listings.competitors import import_csv
from hub.listings.models import CompetitorPrice
from hub.platform.db import transaction


def _catalogue(engine: Engine, *skus: str) -> None:
    with transaction(engine) as s:
        for sku in skus:
            s.add(Product(sku=sku, erp="erp", name=sku, vat_rate="23", price_gross=Decimal("10.00"), currency="PLN",
                          updated_at=utcnow()))


def test_bad_rows_are_rejected_with_their_line_and_the_rest_imported(engine: Engine, tmp_path: Path) -> None:
    _catalogue(engine, "A", "B", "C", "D", "E", "F", "G")
    feed = tmp_path / "competitors.csv"
    feed.write_text("channel;sku;price\n"
                    "shop;A;1 299,50\n"       # decimal comma and a thousands space, as the ERP feed
                    "shop;B;NaN\n"
                    "shop;C;Infinity\n"
                    "shop;D;1e3\n"            # no exponents
                    "shop;E;12,345\n"         # more than 2 decimals
                    "nowhere;F;10,00\n"       # a channel the config does not define
                    "shop;NOPE;10,00\n"       # a SKU the catalogue does not hold
                    "shop;G;0\n"
                    "marketplace;G;19.99\n", encoding="utf-8")
    with transaction(engine) as s:
        result = import_csv(s, feed, ["shop", "marketplace"])
    assert result.imported == 2
    assert result.problems == [
        f"{feed}:3: price = 'NaN': must be an amount > 0 with at most 2 decimals (e.g. 19,99 or 1 299.00)",
        f"{feed}:4: price = 'Infinity': must be an amount > 0 with at most 2 decimals (e.g. 19,99 or 1 299.00)",
        f"{feed}:5: price = '1e3': must be an amount > 0 with at most 2 decimals (e.g. 19,99 or 1 299.00)",
        f"{feed}:6: price = '12,345': must be an amount > 0 with at most 2 decimals (e.g. 19,99 or 1 299.00)",
        f"{feed}:7: channel = 'nowhere': no such channel (configured: marketplace, shop)",
        f"{feed}:8: sku = 'NOPE': not in the catalogue",
        f"{feed}:9: price = '0': must be an amount > 0 with at most 2 decimals (e.g. 19,99 or 1 299.00)",
    ]
    with transaction(engine) as s:
        stored = {(c.channel, c.sku): c.price for c in s.execute(select(CompetitorPrice)).scalars()}
    assert stored == {("shop", "A"): Decimal("1299.50"), ("marketplace", "G"): Decimal("19.99")}


@pytest.mark.parametrize(("content", "message"), [
    (None, "is a folder, not a CSV file"),
    (b"channel,sku,price\nshop,A,\xff9,99\n", "not utf-8 text (byte 0xff at offset 25): save it as UTF-8"),
])
def test_a_file_that_is_no_csv_text_is_one_clear_error(engine: Engine, tmp_path: Path, content: bytes | None,
                                                        message: str) -> None:
    feed = tmp_path / "competitors.csv"
    if content is None:
        feed.mkdir()
    else:
        feed.write_bytes(content)
    with transaction(engine) as s, pytest.raises(HubError) as caught:
        import_csv(s, feed, ["shop"])
    assert str(caught.value) == f"{feed}: {message}"
