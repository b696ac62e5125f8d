"""The `hub demo` hook: the EN simulator on loopback, the carrier built as the hub builds it (no test
adapter: real HTTP to 127.0.0.1), one shipment booked and labelled; and the simulator's PDF labels open
with pypdf (the demo merges the day's labels with it)."""

from __future__ import annotations

import io
import tomllib
from collections.abc import Callable
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
import structlog
from poczta_polska_testkit import SENDER, CountingThrottle, Wired, shipment
from pypdf import PdfReader, PdfWriter

from connectors.carriers.poczta_polska import SPEC
from connectors.carriers.poczta_polska.carrier import WARSAW, PocztaPolskaCarrier
from hub.kernel.errors import PermanentError
from hub.kernel.ports.capability import Capability
from hub.kernel.ports.carrier import PickupRequest, PickupWindow
from hub.platform import registry
from hub.platform.config import ConnectorSettings
from hub.platform.connectors import Services


def _toml(options: dict[str, Any]) -> str:
    """The section as the demo writes it (demo.channels._toml_value: str, int, bool and lists of them)."""
    from demo.channels import _toml_value

    return "\n".join(f"{k} = {_toml_value(v)}" for k, v in options.items())


def _pdf_text(content: bytes) -> str:
    reader = PdfReader(io.BytesIO(content))
    return "".join(page.extract_text() for page in reader.pages)


def test_the_demo_hook_books_and_labels_over_loopback_http() -> None:
    spec = registry.get("poczta-polska")
    assert spec is SPEC and spec.role == "carrier"
    hook = spec.extra["demo"]()
    assert hook.name == "poczta-polska" and hook.services == {"courier": "pocztex_kurier", "locker": ""}
    assert hook.tracks is False and Capability.TRACKING not in SPEC.capabilities
    assert hook.note and "\n" not in hook.note
    options = hook.start()
    carrier: PocztaPolskaCarrier | None = None
    try:
        assert options["service_url"].startswith("http://127.0.0.1:")
        table = tomllib.loads(_toml(options))
        assert table == options
        conn = ConnectorSettings(kind=SPEC.kind, **table)
        services = Services(name=hook.name, engine=None, tokens=None,  # type: ignore[arg-type]
                            throttle=CountingThrottle(), settings=conn, transport=None,
                            log=structlog.get_logger("connectors.poczta-polska").bind(connector=hook.name))
        carrier = SPEC.factory(hook.name, SPEC.options_model(**conn.options()), services)
        assert hook.services["courier"] in carrier.services()

        booking = carrier.book(shipment("SO-DEMO-1", hook.services["courier"], cod="59.90"))
        number = booking.parcels[0].tracking_number
        assert number and hook.bookings() == 1
        label = carrier.label(booking, "pdf", "A6")
        assert label.format == "pdf" and number in _pdf_text(label.content)

        day = next_weekday(datetime.now(WARSAW).date())  # the default pickup_weekdays are Monday to Friday
        window: PickupWindow = carrier.pickup_windows(SENDER, day)[0]
        carrier.book_pickup(PickupRequest(reference="PK-DEMO-1", address=SENDER, window=window, bookings=[booking],
                                          parcels=1, weight_kg=Decimal("1.5")))
        assert hook.pickups() == 1

        hook.deliver(number)  # no tracking: nothing to move
        with pytest.raises(PermanentError, match="tracking is not available"):
            carrier.track([number])
        assert hook.bookings() == 1  # booked once
        assert hook.requests() >= 4
    finally:
        if carrier is not None:
            carrier.close()
        hook.stop()


def next_weekday(day: date) -> date:
    while day.isoweekday() > 5:
        day += timedelta(days=1)
    return day


def test_the_simulators_pdf_labels_open_with_pypdf(wired: Callable[..., Wired]) -> None:
    w = wired()
    single = w.carrier.label(w.carrier.book(shipment("SO-1", "paczka_pocztowa", weights=("0.7",))), "pdf", "A6")
    multi_booking = w.carrier.book(shipment("SO-2", weights=("1", "2")))
    compact = w.carrier.label(multi_booking, "pdf", "A6")  # getAddresLabelByGuidCompact: one PDF for both
    merged = PdfWriter()
    for label in (single, compact):
        reader = PdfReader(io.BytesIO(label.content))
        assert len(reader.pages) == 1
        merged.append(reader)
    out = io.BytesIO()
    merged.write(out)
    text = _pdf_text(out.getvalue())
    assert all(p.tracking_number in text for p in multi_booking.parcels)
