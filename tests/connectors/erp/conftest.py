"""ERP connector test fixtures: the documents the sales sinks are given (built by the hub, as
hub.orders.service builds them: the connectors only render them)."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from hub.kernel.ports.channel import ChannelOrder, InvoiceRequest, OrderLine, Payment, ReturnLine
from hub.kernel.ports.erp import RestockDocument, SalesDocument
from hub.kernel.types import Address, PickupPoint
from hub.orders.sales_documents import sales_document

# --- documents the sales sinks are given (tests of outbox.py, epp.py, the sql staging) ---

# 22:30 UTC on 30 June is 00:30 on 1 July in Poland: the EDI++ dates are the Polish ones
ISSUED = datetime(2025, 6, 30, 22, 30, 5, tzinfo=UTC)


def _order(external_id: str, lines: list[OrderLine], payment: Payment, invoice: InvoiceRequest | None,
           **extra: object) -> ChannelOrder:
    values: dict[str, object] = dict(
        channel_account="allegro-main", external_id=external_id, revision="r3", status="READY_FOR_PROCESSING",
        lines=lines, buyer_email="jan.kowalski@example.com", buyer_login="janek_k",
        delivery_address=Address(name="Jan Kowalski", street="ul. Długa 5/7", city="Łódź", postal_code="90-001",
                                 phone="+48 600 100 200"),
        pickup_point=None, delivery_method="Kurier DPD", payment=payment, invoice=invoice, currency="PLN",
        created_at=datetime(2025, 6, 30, 21, 50, tzinfo=UTC), updated_at=datetime(2025, 6, 30, 22, 0, tzinfo=UTC))
    values.update(extra)
    return ChannelOrder(**values)  # type: ignore[arg-type]


@pytest.fixture
def invoice_document() -> SalesDocument:
    """A company's order with a NIP, paid online, 23 % and 8 % goods."""
    lines = [
        OrderLine("KUB-001", "7700001", "Kubek ceramiczny „Żółć” 300 ml", 3, Decimal("29.99"), "23", "L1"),
        OrderLine("KAW-250", "7700002", 'Kawa ziarnista "Poranek" 250 g', 2, Decimal("24.50"), "8", "L2"),
    ]
    payment = Payment("paid", Decimal("138.97"), "PLN", "ONLINE", False, "pay-71")
    invoice = InvoiceRequest('Kawiarnia "Łąka" Sp. z o.o.', "PL 725-123-45-61",
                             Address(name='Kawiarnia "Łąka" Sp. z o.o.', street="ul. Piotrkowska 100 lok. 2",
                                     city="Łódź", postal_code="90-004"))
    order = _order("7d1e5c2a-1b2c-4d5e-8f90-a1b2c3d4e5f6", lines, payment, invoice)
    return sales_document("allegro-main/7d1e5c2a-1b2c-4d5e-8f90-a1b2c3d4e5f6", order, issued_at=ISSUED)


@pytest.fixture
def receipt_document() -> SalesDocument:
    """A consumer's order, cash on delivery to a pickup point, 23 % and 8 % goods and the delivery
    fee as a line without a SKU."""
    lines = [
        OrderLine("KUB-001", "7700001", "Kubek ceramiczny „Żółć” 300 ml", 1, Decimal("29.99"), "23", "L1"),
        OrderLine("KAW-250", "7700002", 'Kawa ziarnista "Poranek" 250 g', 3, Decimal("24.50"), "8", "L2"),
        OrderLine(None, None, "Dostawa: paczkomat, pobranie", 1, Decimal("14.99"), "23", "L3"),
    ]
    payment = Payment("unpaid", Decimal("118.48"), "PLN", "CASH_ON_DELIVERY", True)
    point = PickupPoint("WAW01M", "Paczkomat WAW01M",
                        Address(name="Paczkomat WAW01M", street="ul. Marszałkowska 1", city="Warszawa",
                                postal_code="00-001"))
    order = _order("1234567890", lines, payment, None, channel_account="shop-main", pickup_point=point,
                   delivery_method="InPost Paczkomat pobranie", delivery_address=None)
    return sales_document("shop-main/1234567890", order, issued_at=ISSUED)


@pytest.fixture
def restock_document() -> RestockDocument:
    return RestockDocument("return/allegro-main/ret-55", "allegro-main/7d1e5c2a-1b2c-4d5e-8f90-a1b2c3d4e5f6",
                           [ReturnLine("KUB-001", "7700001", 2, "L1", Decimal("59.98")),
                            ReturnLine("KAW-250", "7700002", 1, "L2", None)],
                           warehouse="MAG")
