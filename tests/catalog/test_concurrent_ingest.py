"""Two reads of the same feed at once (the daemon's erp.poll and an operator's hub sync, or two
processes): both store the catalogue, neither fails on a product the other inserted meanwhile."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from decimal import Decimal

from sqlalchemy import Engine, func, select

from hub.catalog.models import Product, StockLevel
from hub.catalog.poll import poll_erp
from hub.kernel.ports.erp import ErpBatch, PriceRecord, ProductRecord, StockRecord
from hub.platform.db import transaction


class _Feed:
    """An ERP whose snapshot is the batch given (both readers stage it and apply it)."""

    name = "erp"

    def __init__(self, batch: ErpBatch) -> None:
        self.batch = batch

    def changes(self, cursor: str | None, *, limit: int, known: object = frozenset()) -> ErpBatch:
        return self.batch

    def snapshot(self, *, known: object = frozenset()) -> Iterator[ErpBatch]:
        yield self.batch


def _batch(n: int) -> ErpBatch:
    skus = [f"S{i:05d}" for i in range(n)]
    return ErpBatch(products=[ProductRecord(sku=s, name=s, ean=None, vat_rate="23", weight_kg=None) for s in skus],
                    stock=[StockRecord(sku=s, warehouse="default", quantity=3) for s in skus],
                    prices=[PriceRecord(sku=s, price_gross=Decimal("9.99"), currency="PLN", cost_net=None)
                            for s in skus],
                    rejected=[], cursor_after="c", snapshot=True)


def test_two_readers_of_one_feed_at_once(engine: Engine) -> None:
    batch = _batch(3000)
    start = threading.Barrier(2)
    errors: list[BaseException] = []

    def read() -> None:
        try:
            start.wait(10)
            poll_erp(engine, _Feed(batch), "erp", full=True)
        except BaseException as exc:  # the test's verdict, not a crash
            errors.append(exc)

    threads = [threading.Thread(target=read) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == []
    with transaction(engine) as session:
        assert session.execute(select(func.count()).select_from(Product)).scalar_one() == 3000
        assert session.execute(select(func.sum(StockLevel.quantity))).scalar_one() == 9000
