"""Test kit for the DPD connector: requests, addresses and the wiring the runtime uses."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import structlog
from lxml import etree

from connectors.carriers.dpd import DpdOptions, build_carrier
from connectors.carriers.dpd.carrier import DpdCarrier
from connectors.carriers.dpd.simulator import (
    LOGIN,
    MASTER_FID,
    NS,
    PASSWORD,
    PATH,
    SOAP,
    DpdSimulator,
    validate_element,
)
from hub.kernel.ports.carrier import CashOnDelivery, Parcel, ShipmentRequest
from hub.kernel.types import Address
from hub.platform.config import ConnectorSettings
from hub.platform.connectors import Services
from hub.platform.memory import Memory
from hub.platform.ratelimit import LocalRateLimiter, Throttle

SERVICE_URL = "https://dpdservicesdemo.dpd.com.pl" + PATH
SENDER = Address(name="Jan Kowalski", street="ul. Mineralna 15", city="Warszawa", postal_code="02-274",
                 company="Sklep ABC", phone="225775500", email="sklep@example.pl")
RECEIVER = Address(name="Anna Nowak", street="ul. Polna 200", city="Radom", postal_code="26-605",
                   phone="600100200", email="anna.nowak@example.pl")


def shipment(reference: str = "ORD-1001", *, service: str = "classic", parcels: Sequence[Parcel] | None = None,
             cod: Decimal | None = None, insurance: Decimal | None = None, receiver: Address = RECEIVER,
             **more: Any) -> ShipmentRequest:
    if parcels is None:
        parcels = [Parcel(weight_kg=Decimal("1.5"), length_cm=30, width_cm=20, height_cm=10,
                          reference=f"{reference}-1"),
                   Parcel(weight_kg=Decimal("0.3"), reference=f"{reference}-2")]
    return ShipmentRequest(
        reference=reference, service=service, sender=SENDER, receiver=receiver, parcels=parcels,
        cod=None if cod is None else CashOnDelivery(cod, "PLN", "PL61109010140000071219812874"),
        insurance=insurance, content="książki", **more)


@dataclass
class Sleeps:
    """Stands in for time.sleep: records instead of waiting."""

    calls: list[float] = field(default_factory=list)

    def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)


def options(**overrides: Any) -> DpdOptions:
    values: dict[str, Any] = {"login": LOGIN, "password": PASSWORD, "master_fid": MASTER_FID,
                              "service_url": SERVICE_URL, "attempts": 3}
    values.update(overrides)
    return DpdOptions.model_validate(values)


def wire(sim: DpdSimulator, *, memory: Memory | None = None, name: str = "dpd", transport: Any = "sim",
         sleeps: Sleeps | None = None, **overrides: Any) -> DpdCarrier:
    """The carrier as the runtime builds it (registry options, Services), routed to ``sim`` in-process."""
    throttle = Throttle(LocalRateLimiter(), f"dpd:{name}", per_minute=6000.0, burst=100.0, sleep=lambda s: None)
    services = Services(name=name, engine=None, tokens=None, throttle=throttle,  # type: ignore[arg-type]
                        settings=ConnectorSettings(kind="dpd"),
                        transport=sim.adapter() if transport == "sim" else transport,
                        log=structlog.get_logger("connectors.dpd").bind(connector=name), memory=memory)
    return build_carrier(name, options(**overrides), services, sleep=sleeps or Sleeps())


_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)


@dataclass
class Checks:
    """What the end-of-test check of the simulator's log tolerates."""

    client_faults_ok: bool = False  # the test sends requests that break the XSD on purpose


def check_answer(raw: bytes, status: int, where: str) -> None:
    """A 200 answer's body element, or a 500 fault's detail, fits the XSD."""
    root = etree.fromstring(raw, parser=_PARSER)
    assert root.tag == f"{{{SOAP}}}Envelope", f"{where}: not a SOAP 1.1 envelope"
    body = root.find(f"{{{SOAP}}}Body")
    assert body is not None and len(body) == 1, f"{where}: the body must hold one element"
    if status == 200:
        assert etree.QName(body[0]).namespace == NS, f"{where}: answer element outside DPD's namespace"
        errors = validate_element(body[0])
        assert not errors, f"{where}: the answer breaks the XSD: {errors}"
        return
    fault = body.find(f"{{{SOAP}}}Fault")
    assert status == 500 and fault is not None, f"{where}: HTTP {status} without a SOAP fault"
    assert [child.tag for child in fault] == ["faultcode", "faultstring", "detail"], f"{where}: fault shape"
    detail = fault.find("detail")
    assert detail is not None and len(detail) == 1
    errors = validate_element(detail[0])
    assert not errors, f"{where}: the fault detail breaks the XSD: {errors}"
