"""Test kit for the InPost ShipX connector: requests as the hub sends them, and a carrier wired to the simulator
the way the runtime wires it (the shared HTTP layer, a throttle that never sleeps)."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import httpx
import structlog
from tenacity import wait_none

from connectors.carriers.inpost import InPostOptions, build_carrier
from connectors.carriers.inpost.carrier import InPostCarrier
from connectors.carriers.inpost.simulator import ShipXSimulator
from hub.kernel.ports.carrier import CashOnDelivery, Parcel, ShipmentRequest
from hub.kernel.types import Address, PickupPoint
from hub.platform.ratelimit import LocalRateLimiter, Throttle

API_URL = "https://shipx.example.pl"
IBAN = "PL61109010140000071219812874"

SENDER = Address(name="Anna Nowak", street="ul. Zawiła 65L", city="Kraków", postal_code="30-390",
                 company="Sklep Rowerowy Sp. z o.o.", phone="+48 121 323 123", email="sklep@example.pl")
BUYER = Address(name="Jan Maria Kowalski", street="ul. Długa 5/3", city="Warszawa", postal_code="00001",
                phone="600 100 200", email="jan.kowalski@example.pl")


def locker_request(reference: str = "ORD-1001", **more: Any) -> ShipmentRequest:
    fields: dict[str, Any] = {
        "reference": reference, "service": "inpost_locker_standard", "sender": SENDER, "receiver": BUYER,
        "parcels": [Parcel(weight_kg=Decimal("2.5"), template="small", reference=f"{reference}-1")],
        "pickup_point": PickupPoint("KRA010"),
        "cod": CashOnDelivery(Decimal("199.9"), "PLN", IBAN),
    }
    fields.update(more)
    return ShipmentRequest(**fields)


def courier_request(reference: str = "ORD-2002", **more: Any) -> ShipmentRequest:
    fields: dict[str, Any] = {
        "reference": reference, "service": "inpost_courier_standard", "sender": SENDER, "receiver": BUYER,
        "parcels": [Parcel(Decimal("12.345"), 60, 40, 30, reference=f"{reference}-1"),
                    Parcel(Decimal("3"), 30, 20, 10, reference=f"{reference}-2")],
        "insurance": Decimal("1500"),
        "cod": CashOnDelivery(Decimal("1234.5"), "PLN", IBAN),
    }
    fields.update(more)
    return ShipmentRequest(**fields)


@dataclass
class Sleeps:
    """Stands in for time.sleep: records instead of waiting."""

    calls: list[float] = field(default_factory=list)

    def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)


@dataclass
class Wired:
    carrier: InPostCarrier
    sleeps: Sleeps
    options: InPostOptions


def wire(sim: ShipXSimulator, *, transport: httpx.BaseTransport | None = None, **options: Any) -> Wired:
    """A carrier on the simulator; ``options`` are further connector keys."""
    sleeps = Sleeps()
    throttle = Throttle(LocalRateLimiter(), "inpost:test", per_minute=60_000.0, burst=1000.0, sleep=sleeps)
    validated = InPostOptions.model_validate({"api_url": API_URL, "token": sim.token,
                                              "organization_id": sim.organization_id, **options})
    services = {"throttle": throttle, "transport": transport or sim.transport(),
                "log": structlog.get_logger("connectors.inpost").bind(connector="inpost-test")}
    carrier = build_carrier("inpost-test", validated, services, retry_wait=wait_none(), sleep=sleeps, clock=sim.now)
    return Wired(carrier, sleeps, validated)
