"""Orders written straight into the database, and the invoicing settings and service the tests use."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Engine

from hub.invoicing.goods import InvoicingFile
from hub.invoicing.service import InvoicingService
from hub.kernel.ports.invoicing import PublishedRate
from hub.orders.models import Order, OrderHistory, OrderLineRow
from hub.platform.config import InvoicingSettings
from hub.platform.db import transaction

SELLER = {"name": "Sklep Test sp. z o.o.", "nip": "5260250274", "street": "ul. Magazynowa 5", "city": "Poznań",
          "postal_code": "60-001", "email": "faktury@example.pl", "bank_account": "PL61109010140000071219812874",
          "place": "Poznań"}
BUYER_NIP = "7740001454"  # a valid NIP (PKN Orlen's)
NOW = datetime(2026, 12, 2, 10, 0, tzinfo=UTC)


def settings(**overrides: Any) -> InvoicingSettings:
    return InvoicingSettings.model_validate({"enabled": True, "seller": SELLER, **overrides})


class FakeRates:
    """An exchange-rate source that answers a fixed rate and counts its calls."""

    name = "nbp"

    def __init__(self, mid: str = "4.2537") -> None:
        self.mid = Decimal(mid)
        self.calls: list[tuple[str, date]] = []

    def rate_before(self, currency: str, day: date) -> PublishedRate:
        self.calls.append((currency, day))
        return PublishedRate(currency, date(day.year, day.month, max(day.day - 1, 1)), self.mid, "233/A/NBP/2026")


class Connectors:
    """Just enough of hub.platform.connectors.Connectors: instances by name and role."""

    def __init__(self, **by_role: dict[str, Any]) -> None:
        self.by_role = by_role

    def names(self, role: str | None = None) -> list[str]:
        return sorted(self.by_role.get(role or "", {}))

    def get(self, name: str) -> Any:
        for instances in self.by_role.values():
            if name in instances:
                return instances[name]
        raise KeyError(name)


def service(settings_: InvoicingSettings | None = None, goods: InvoicingFile | None = None, **instances: Any,
            ) -> InvoicingService:
    by_role: dict[str, dict[str, Any]] = {}
    for name, instance in instances.items():
        by_role.setdefault("rates" if hasattr(instance, "rate_before") else "einvoicing", {})[name] = instance
    return InvoicingService(Connectors(**by_role), settings_ or settings(), goods or InvoicingFile())


def add_order(engine: Engine, external_id: str, lines: Sequence[tuple[str | None, int, str, str | None, str]], *,
              nip: str | None = BUYER_NIP, country: str = "PL", currency: str = "PLN", paid: bool = True,
              cod: bool = False, status: str = "processing", channel: str = "shop",
              paid_at: datetime = NOW) -> int:
    """An order with lines (sku, quantity, unit gross, VAT rate, kind) and, when paid, its 'paid' history."""
    address = {"name": "Jan Kowalski", "street": "ul. Polna 1", "city": "Warszawa", "postal_code": "00-001",
               "country": country}
    total = sum((Decimal(price) * quantity for _, quantity, price, _, _ in lines), Decimal("0"))
    with transaction(engine) as session:
        order = Order(channel=channel, external_id=external_id, revision="r1", status=status,
                      channel_status="READY", buyer_email="jan@example.pl", buyer_login="jan",
                      delivery_method="courier", delivery={"address": address},
                      payment={"status": "paid" if paid else "unpaid", "amount": str(total), "currency": currency,
                               "method": "cod" if cod else "online", "cash_on_delivery": cod},
                      invoice={"company": "Firma Kupująca Sp. z o.o.", "nip": nip, "address": address} if nip else None,
                      currency=currency, total_gross=total, tags=[], placed_at=paid_at, channel_updated_at=paid_at,
                      created_at=paid_at, updated_at=paid_at)
        session.add(order)
        session.flush()
        for number, (sku, quantity, price, rate, kind) in enumerate(lines, 1):
            session.add(OrderLineRow(order_id=order.id, line_no=number, line_id=f"{external_id}-{number}", sku=sku,
                                     name=f"Towar {sku}" if sku else "Dostawa kurierem", quantity=quantity,
                                     unit_price_gross=Decimal(price), vat_rate=rate, kind=kind))
        if paid:
            session.add(OrderHistory(order_id=order.id, from_status="new", to_status="paid", source="channel",
                                     at=paid_at))
        return order.id
