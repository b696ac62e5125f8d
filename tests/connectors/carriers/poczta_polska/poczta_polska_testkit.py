"""Test kit for the Poczta Polska (EN) connector: the vendor's schema, requests, wiring helpers."""

from __future__ import annotations

import functools
from copy import deepcopy
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from decimal import Decimal
from pathlib import Path
from typing import Any

import structlog
from lxml import etree

from connectors.carriers.poczta_polska import PocztaPolskaOptions, build_carrier
from connectors.carriers.poczta_polska.carrier import PocztaPolskaCarrier
from connectors.carriers.poczta_polska.simulator import ENSimulator, Exchange
from hub.kernel.ports.carrier import (
    CashOnDelivery,
    Parcel,
    PickupRequest,
    PickupWindow,
    ShipmentRequest,
)
from hub.kernel.types import Address, PickupPoint
from hub.platform.config import ConnectorSettings
from hub.platform.connectors import Services

SHARED_WSDL = Path("/work/shared/specs/carriers/poczta_polska/en.wsdl")
VENDORED_WSDL = Path(__file__).resolve().parents[4] / "connectors" / "carriers" / "poczta_polska" / "wsdl" / "en.wsdl"
NS = "http://e-nadawca.poczta-polska.pl"
SOAP_ENV = "http://schemas.xmlsoap.org/soap/envelope/"
LOGIN, PASSWORD = "en-webapi-user", "Sekret-123"
URL = "https://en-testwebapi.poczta-polska.pl/websrv/en.php"
NOW = datetime(2025, 3, 3, 8, 30, tzinfo=UTC)  # a Monday, 09:30 in Warsaw
TODAY = date(2025, 3, 3)
URZAD = 263165

SENDER = Address(name="Sklep Ania", street="Długa 5", city="Kraków", postal_code="30-001", company="Ania sp. z o.o.",
                 phone="+48 12 345 67 89", email="sklep@ania.pl")
RECEIVER = Address(name="Jan Kowalski", street="ul. Marszałkowska 10/3", city="Warszawa", postal_code="00-001",
                   phone="+48 600 200 300", email="jan.kowalski@example.pl")


@functools.cache
def vendor_schema() -> etree.XMLSchema:
    """The inline xsd:schema of the vendor's WSDL (the shared copy when present), built independently of
    the simulator's own loader."""
    source = SHARED_WSDL if SHARED_WSDL.exists() else VENDORED_WSDL
    tree = etree.parse(str(source), etree.XMLParser(resolve_entities=False, no_network=True))
    xsd = "http://www.w3.org/2001/XMLSchema"
    inline = tree.getroot().find(f"{{http://schemas.xmlsoap.org/wsdl/}}types/{{{xsd}}}schema")
    assert inline is not None
    standalone = etree.Element(f"{{{xsd}}}schema", nsmap=inline.nsmap, attrib=dict(inline.attrib))
    standalone.extend(deepcopy(child) for child in inline)
    return etree.XMLSchema(standalone)


def body_of(payload: bytes) -> etree._Element:
    root = etree.fromstring(payload, etree.XMLParser(resolve_entities=False, no_network=True))
    body = root.find(f"{{{SOAP_ENV}}}Body")
    assert body is not None, payload[:200]
    return body[0]


def check_answer(exchange: Exchange) -> None:
    """A simulator answer that should be well-formed: a SOAP Fault with faultcode/faultstring, or the
    operation's response element valid against the vendor's schema."""
    element = body_of(exchange.response)
    if element.tag == f"{{{SOAP_ENV}}}Fault":
        assert element.findtext("faultcode") and element.findtext("faultstring"), exchange.response
        return
    assert element.tag == f"{{{NS}}}{exchange.operation}Response", element.tag
    schema = vendor_schema()
    assert schema.validate(element), f"{exchange.operation} answer breaks en.wsdl: {schema.error_log}"


@dataclass
class Sleeps:
    calls: list[float] = field(default_factory=list)

    def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)


@dataclass
class CountingThrottle:
    waits: int = 0

    def wait(self) -> float:
        self.waits += 1
        return 0.0


@dataclass
class Wired:
    carrier: PocztaPolskaCarrier
    sim: ENSimulator
    sleeps: Sleeps
    throttle: CountingThrottle


def options(**more: Any) -> PocztaPolskaOptions:
    return PocztaPolskaOptions.model_validate({"login": LOGIN, "password": PASSWORD, "service_url": URL,
                                               "urzad_nadania": URZAD, **more})


def wire(sim: ENSimulator, *, adapter: Any = None, now: datetime = NOW, **more: Any) -> Wired:
    sleeps, throttle = Sleeps(), CountingThrottle()
    services = Services(name="poczta", engine=None, tokens=None, throttle=throttle,  # type: ignore[arg-type]
                        settings=ConnectorSettings(kind="poczta-polska"),
                        transport=adapter if adapter is not None else sim.adapter(),
                        log=structlog.get_logger("connectors.poczta_polska").bind(connector="poczta"))
    carrier = build_carrier("poczta", options(**more), services, sleep=sleeps, now=lambda: now)
    return Wired(carrier, sim, sleeps, throttle)


def shipment(reference: str = "SH-2025-0001", service: str = "pocztex_kurier", *, weights: tuple[str, ...] = ("1.5",),
             cod: str | None = None, insurance: str | None = None, pickup_point: str | None = None,
             content: str | None = "order 7731", **more: Any) -> ShipmentRequest:
    return ShipmentRequest(
        reference=reference, service=service, sender=SENDER, receiver=RECEIVER,
        parcels=[Parcel(weight_kg=Decimal(w), reference=f"{reference}-{n}") for n, w in enumerate(weights, 1)],
        pickup_point=PickupPoint(id=pickup_point) if pickup_point else None,
        cod=CashOnDelivery(Decimal(cod), "PLN", "PL61 1090 1014 0000 0712 1981 2874") if cod else None,
        insurance=Decimal(insurance) if insurance else None, content=content, **more)


def pickup(reference: str = "PU-2025-03-04", day: date = date(2025, 3, 4)) -> PickupRequest:
    return PickupRequest(reference=reference, address=SENDER,
                         window=PickupWindow(day=day, start=time(9, 0), end=time(12, 0)), bookings=[],
                         parcels=3, weight_kg=Decimal("7.250"))
