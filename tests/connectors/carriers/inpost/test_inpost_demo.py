"""The `hub demo` hook: the ShipX simulator on loopback, the carrier built as the hub builds it (no test
transport: real HTTP to 127.0.0.1); a demo shop order booked by courier and another to a locker, their PDF
labels opened with pypdf (the demo merges the day's labels with it), a pickup, and a parcel delivered."""

from __future__ import annotations

import io
import tomllib
from datetime import datetime
from decimal import Decimal
from typing import Any

import pytest
import structlog
from pypdf import PdfReader

from connectors.carriers.inpost import SPEC, InPostOptions
from connectors.carriers.inpost.carrier import InPostCarrier
from connectors.carriers.inpost.mapping import WARSAW
from hub.kernel.ports.capability import Capability
from hub.kernel.ports.carrier import Parcel, PickupRequest, ShipmentRequest
from hub.kernel.types import Address, PickupPoint
from hub.platform import registry
from hub.platform.config import ConnectorSettings
from hub.platform.connectors import Services
from hub.platform.ratelimit import LocalRateLimiter, Throttle

# as demo/shipping.py's [shipping.senders.magazyn] and a shop order's buyer in Poznań
SENDER = Address(name="Sklep Demo", street="Magazynowa 5", city="Poznań", postal_code="60-001",
                 company="Demo Sp. z o.o.", phone="600700800", email="magazyn@example.pl")
BUYER = Address(name="Jan Kowalski", street="Grunwaldzka 182", city="Poznań", postal_code="60-166",
                phone="500600700", email="jan.kowalski@example.pl")


def _toml(options: dict[str, Any]) -> str:
    """The section as the demo writes it (str, int, bool, list of str)."""
    def value(v: Any) -> str:
        if isinstance(v, list):
            assert all(isinstance(i, str) for i in v), f"{v!r} is not TOML-writable by the demo"
            return "[" + ", ".join(value(i) for i in v) + "]"
        assert isinstance(v, str | int | bool), f"{v!r} is not TOML-writable by the demo"
        if isinstance(v, bool):
            return "true" if v else "false"
        return str(v) if isinstance(v, int) else '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return "\n".join(f"{k} = {value(v)}" for k, v in options.items())


def _order(reference: str, service: str, weight: str, **more: Any) -> ShipmentRequest:
    """A paid shop order as the hub books it: the demo's "box" template (30 x 20 x 15 cm), no insurance."""
    return ShipmentRequest(reference=reference, service=service, sender=SENDER, receiver=BUYER,
                           parcels=[Parcel(Decimal(weight), 30, 20, 15, reference=f"{reference}-1")],
                           content=f"order {reference}", **more)


def _pdf_text(content: bytes) -> str:
    reader = PdfReader(io.BytesIO(content))
    assert len(reader.pages) >= 1
    return "".join(page.extract_text() for page in reader.pages)


def test_the_demo_hook_books_labels_picks_up_and_delivers_over_loopback_http() -> None:
    spec = registry.get("inpost")
    assert spec is SPEC and spec.role == "carrier" and Capability.TRACKING in SPEC.capabilities
    hook = spec.extra["demo"]()
    assert hook.name == "inpost" and hook.label
    assert hook.services == {"courier": "inpost_courier_standard", "locker": "inpost_locker_standard"}
    assert hook.tracks is True and "\n" not in hook.note
    options = hook.start()
    carrier: InPostCarrier | None = None
    try:
        assert options["api_url"].startswith("http://127.0.0.1:")
        table = tomllib.loads(_toml(options))
        assert table == options
        conn = ConnectorSettings(kind=SPEC.kind, **table)
        assert registry.options_for(hook.name, conn) == SPEC.options_model(**table)
        throttle = Throttle(LocalRateLimiter(), f"inpost:{hook.name}", per_minute=60_000.0, burst=1000.0)
        services = Services(name=hook.name, engine=None, tokens=None,  # type: ignore[arg-type]
                            throttle=throttle, settings=conn, transport=None,
                            log=structlog.get_logger("connectors.inpost").bind(connector=hook.name))
        carrier = SPEC.factory(hook.name, SPEC.options_model(**table), services)
        assert set(hook.services.values()) <= set(carrier.services())

        courier = carrier.book(_order("HUB-1-1", hook.services["courier"], "1.3"))
        assert carrier.book(_order("HUB-1-1", hook.services["courier"], "1.3")) == courier  # a retry: no new one
        locker = carrier.book(_order("HUB-2-1", hook.services["locker"], "0.6",
                                     pickup_point=PickupPoint("POZ08M")))
        assert hook.bookings() == 2
        (shipment,) = hook.sim.by_reference("HUB-1-1")
        assert shipment["insurance"]["amount"] == "500.00"  # the demo's default_insurance
        assert shipment["receiver"]["phone"] == "500600700"

        for booking in (courier, locker):
            label = carrier.label(booking, "pdf", "A6")
            assert label.format == "pdf"
            assert booking.parcels[0].tracking_number in _pdf_text(label.content)

        today = datetime.now(WARSAW).date()
        (window,) = carrier.pickup_windows(SENDER, today)  # any day, any hour (the demo's options)
        pickup = carrier.book_pickup(PickupRequest("PK-demo-1", SENDER, window, [courier, locker], 2,
                                                   Decimal("1.9")))
        assert pickup.external_id and hook.pickups() == 1

        number = courier.parcels[0].tracking_number
        assert [e.status for e in carrier.track([number])] == ["pending"]
        hook.deliver(number)
        hook.deliver(number)  # delivered already: nothing more
        events = carrier.track([number])
        assert [(e.code, e.status) for e in events] == [
            ("confirmed", "pending"), ("taken_by_courier", "in_transit"), ("delivered", "delivered")]
        assert events[0].occurred_at < events[1].occurred_at < events[2].occurred_at
        with pytest.raises(KeyError):
            hook.deliver("000")
        assert hook.requests() == len(hook.sim.log) > 0
    finally:
        if carrier is not None:
            carrier.close()
        hook.stop()


def test_pickup_weekdays_take_the_days_names() -> None:
    options = InPostOptions.model_validate({"token": "t", "organization_id": 1,
                                            "pickup_weekdays": ["Mon", "wednesday", "sun", 4]})
    assert options.pickup_weekdays == (0, 2, 4, 6)
    with pytest.raises(ValueError, match="'monkey' is not a weekday"):
        InPostOptions.model_validate({"token": "t", "organization_id": 1, "pickup_weekdays": ["monkey"]})
