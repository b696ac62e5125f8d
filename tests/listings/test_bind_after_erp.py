"""A fresh database: the first reconcile reads the channel before the first ERP read has stored a
product, so no offer can be bound. When the ERP data lands, the offers that waited are bound and
planned in that same poll, not 15 minutes later at the next reconcile."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import Engine, select

from hub.listings import reconcile as reconcile_module
from hub.listings.models import Listing
from hub.listings.reconcile import reconcile
from hub.listings.rules import load_rules
from hub.listings.service import SyncService
from hub.platform.connectors import Connectors
from hub.platform.db import transaction
from tests.listings.test_sync_flow import config, drain
from tests.support.fake_connectors import FakeChannel, FakeErp


@pytest.mark.parametrize("page", [reconcile_module.PAGE, 1])
def test_offers_read_before_the_erp_are_bound_when_its_data_lands(fakes: None, db_url: str, engine: Engine,
                                                                 tmp_path: Path, page: int,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """Also a page of one offer: the waiting offers are bound a page at a time, and a SKU an earlier
    page bound is not bound again by a later one."""
    monkeypatch.setattr(reconcile_module, "PAGE", page)
    loaded = config(tmp_path, db_url)
    service = SyncService(Connectors(loaded, engine), load_rules(loaded))
    erp: FakeErp = service.connectors.get("erp")
    shop: FakeChannel = service.connectors.get("shop")
    shop.offers = {
        "o1": {"signature": "A", "quantity": 0, "price": Decimal("90.00")},
        "o2": {"ean": "5901234123457", "quantity": 0, "price": Decimal("12.00")},
        "o3": {"signature": "A", "quantity": 0, "price": Decimal("90.00")},  # a second offer of A
    }
    with transaction(engine) as s:
        assert reconcile(s, "shop", shop.listings()).new_bindings == 0  # the catalogue is empty yet
    erp.set("A", 5, "100.00", cost="50.00")
    erp.set("C", 3, "20.00", cost="9.00", ean="5901234123457")
    result = service.poll_erp("erp")
    assert (result.changed, result.new, result.bound) == (2, 2, 2)
    with transaction(engine) as s:
        bound = {row.external_id: (row.sku, row.matched_by) for row in s.execute(select(Listing)).scalars()}
        planned = service.plan_all(s)
    assert bound == {"o1": ("A", "signature"), "o2": ("C", "ean"), "o3": (None, None)}  # one offer per SKU
    assert sum(len(p.items) for p in planned) == 2
    drain(engine, loaded)
    assert shop.offers["o1"]["quantity"] == 5 and shop.offers["o2"]["quantity"] == 3
