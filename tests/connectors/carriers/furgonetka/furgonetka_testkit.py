"""Test kit for the Furgonetka connector: a clock both sides share, wiring, and sample requests."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import httpx
import structlog

from connectors.carriers.furgonetka import FurgonetkaOptions
from connectors.carriers.furgonetka.carrier import FurgonetkaCarrier
from connectors.carriers.furgonetka.simulator import FurgonetkaSimulator
from hub.kernel.ports.carrier import CashOnDelivery, Parcel, ShipmentRequest
from hub.kernel.types import Address, PickupPoint

CLIENT_ID, CLIENT_SECRET = "app-7f3c", "app-secret-91b2"
USERNAME, PASSWORD = "magazyn@sklep.example.pl", "Haslo-2024!"
BASE_URL = "https://api.sandbox.furgonetka.pl"
START = 1_780_000_000.0  # 2026-05-28, a Thursday


@dataclass
class Clock:
    """Seconds since the epoch, moved by hand; the simulator and the client read the same one."""

    now: float = START

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@dataclass
class Sleeps:
    calls: list[float] = field(default_factory=list)

    def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)


@dataclass
class Wired:
    carrier: FurgonetkaCarrier
    sim: FurgonetkaSimulator
    sleeps: Sleeps
    sent: list[httpx.Request]


class Recording(httpx.BaseTransport):
    """Outermost transport: keeps what the connector sent."""

    def __init__(self, inner: httpx.BaseTransport):
        self.inner = inner
        self.sent: list[httpx.Request] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        request.read()
        self.sent.append(request)
        return self.inner.handle_request(request)


def options(**more: Any) -> FurgonetkaOptions:
    return FurgonetkaOptions.model_validate({
        "api_url": BASE_URL, "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET, "username": USERNAME,
        "password": PASSWORD, "confirm_interval": "2s", **more})


def services(transport: httpx.BaseTransport | None, throttle: Any) -> dict[str, Any]:
    return {"transport": transport, "throttle": throttle, "memory": None,
            "log": structlog.get_logger("connectors.furgonetka").bind(connector="furgonetka")}


SENDER = Address(name="Anna Magazynowa", street="ul. Składowa 12", city="Poznań", postal_code="61-897",
                 company="Sklep Przykład sp. z o.o.", phone="+48 600 100 200", email="magazyn@sklep.example.pl")
RECEIVER = Address(name="Jan Kowalski", street="ul. Długa 5 m. 3", city="Kraków", postal_code="30-001",
                   phone="+48 501 214 771", email="jan.kowalski@example.pl")


def shipment(reference: str = "SHP-1001", service: str = "dpd", *, parcels: int = 1, cod: str | None = None,
             insurance: str | None = None, point: str | None = None, **more: Any) -> ShipmentRequest:
    return ShipmentRequest(
        reference=reference, service=service, sender=SENDER, receiver=RECEIVER,
        parcels=[Parcel(weight_kg=Decimal("1.5") + n, length_cm=30, width_cm=20, height_cm=10 + n,
                        reference=f"{reference}-{n + 1}") for n in range(parcels)],
        pickup_point=PickupPoint(point) if point else None,
        cod=CashOnDelivery(Decimal(cod), "PLN", "PL61109010140000071219812874") if cod else None,
        insurance=Decimal(insurance) if insurance else None, content="Kubki ceramiczne", **more)
