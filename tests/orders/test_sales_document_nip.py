"""How a bad NIP still reaches the sales document, and that the document refuses it there.

The intake quarantines a new order whose invoice NIP is invalid, but a later revision of an
accepted order replaces its invoice details without that check: the buyer adds or corrects the
invoice data after paying, and the ERP job (queued when the order was paid) builds the document
from what the hub holds then. The document builder is the last gate before the ERP."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, select

from hub.app.wiring import order_rules
from hub.catalog.models import Product, StockLevel
from hub.jobs.models import Job
from hub.kernel.errors import PermanentError
from hub.kernel.ports.channel import InvoiceRequest
from hub.kernel.ports.erp import SalesDocument
from hub.orders.documents import stored_order
from hub.orders.intake import accept
from hub.orders.kinds import TO_ERP
from hub.orders.models import Order
from hub.orders.sales_documents import sales_document
from hub.platform.config import load
from hub.platform.db import transaction
from tests.orders.test_orders_flow import STATUS_MAP
from tests.support.fake_connectors import ADDRESS, make_order


def rules(tmp_path: Path, url: str) -> Any:
    (tmp_path / "maps").mkdir()
    (tmp_path / "maps" / "order_status.toml").write_text(STATUS_MAP)
    path = tmp_path / "hub.toml"
    path.write_text(f'[mappings]\ndir = "maps"\n[database]\nurl = "{url}"\n'
                    '[connectors.erp]\nkind = "fake-erp"\n[connectors.shop]\nkind = "fake-channel"\n')
    return order_rules(load(path, environ={}))


def document(engine: Engine) -> SalesDocument:
    """The document as hub.orders.service's ERP job builds it."""
    with transaction(engine) as s:
        order = s.execute(select(Order).where(Order.channel == "shop", Order.external_id == "S1")).scalar_one()
        return sales_document(f"{order.channel}/{order.external_id}", stored_order(s, order),
                              issued_at=order.created_at)


@pytest.fixture
def accepted(order_fakes: None, db_url: str, engine: Engine, tmp_path: Path) -> Any:
    """A paid order accepted with a good NIP, its ERP job queued; returns a function that brings a
    later revision of it with another NIP (and address)."""
    order_rules_ = rules(tmp_path, db_url)
    with transaction(engine) as s:
        s.add(Product(sku="A", erp="erp", name="item A", vat_rate="23", price_gross=Decimal("100.00"),
                      currency="PLN", updated_at=datetime(2026, 11, 1, tzinfo=UTC)))
        s.add(StockLevel(sku="A", warehouse="default", quantity=5, updated_at=datetime(2026, 11, 1, tzinfo=UTC)))
    with transaction(engine) as s:
        accept(s, order_rules_, make_order("shop", "S1", [("A", None, 1, "100.00")], nip="PL 526-000-12-46"))
    with transaction(engine) as s:
        assert TO_ERP in [j.kind for j in s.execute(select(Job)).scalars()]  # paid: to the ERP
    assert document(engine).buyer.nip == "5260001246"  # type: ignore[union-attr]

    def revise(nip: str, country: str = "PL") -> None:
        revision = make_order("shop", "S1", [("A", None, 1, "100.00")], nip=nip, revision="r2")
        revision = replace(revision, invoice=InvoiceRequest("Firma", nip, replace(ADDRESS, country=country)))
        with transaction(engine) as s:
            assert accept(s, order_rules_, revision).changed

    return revise


def test_a_nip_changed_by_a_later_revision_is_refused_by_the_document(accepted: Any, engine: Engine) -> None:
    accepted("526-000-12-47")  # a typo in the check digit
    with transaction(engine) as s:  # intake quarantines the revision, as it would a new order
        order = s.execute(select(Order).where(Order.external_id == "S1")).scalar_one()
        assert order.problem_kind == "invalid_nip" and "'526-000-12-47'" in (order.problem or "")
    # and the ERP job queued before the revision cannot book it either
    with pytest.raises(PermanentError) as caught:
        document(engine)
    assert str(caught.value).startswith(
        "sales document shop/S1 (order S1 of shop): the invoice's NIP '526-000-12-47' is not a valid Polish NIP "
        "(wrong check digit)")


def test_a_valid_eu_vat_number_from_a_later_revision_is_written_as_such(accepted: Any, engine: Engine) -> None:
    accepted("DE 136 695 976", "DE")
    buyer = document(engine).buyer
    assert buyer is not None and (buyer.nip, buyer.country, buyer.eu_vat_prefix, buyer.intra_eu) == (
        "DE136695976", "DE", "DE", True)
