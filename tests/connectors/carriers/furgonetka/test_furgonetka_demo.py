"""The `hub demo` hook: the simulator served on loopback, the carrier built as the hub builds it, a
shipment booked, labelled (a PDF pypdf reads), collected in a pickup, and delivered."""

from __future__ import annotations

import io
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import pypdf
from furgonetka_testkit import SENDER, shipment

from connectors.carriers.furgonetka import SPEC
from connectors.carriers.furgonetka.simulator import label_pdf
from hub.kernel.ports.carrier import Carrier, PickupRequest
from hub.platform import db
from hub.platform.config import ConnectorSettings
from hub.platform.connectors import Services
from hub.platform.credentials import TokenStore
from hub.platform.logs import get_logger
from hub.platform.memory import Memory
from hub.platform.ratelimit import LocalRateLimiter, Throttle

WARSAW = ZoneInfo("Europe/Warsaw")


def test_the_simulators_pdf_labels_open_with_pypdf() -> None:
    reader = pypdf.PdfReader(io.BytesIO(label_pdf([["label (1) a\\b", "Łódź"], ["second"]], (298, 420))))
    assert len(reader.pages) == 2
    assert "label (1) a\\b" in reader.pages[0].extract_text()
    assert [float(x) for x in reader.pages[1].mediabox] == [0, 0, 298, 420]


def test_demo_hook_books_labels_collects_and_delivers(tmp_path: Path) -> None:
    hook = SPEC.extra["demo"]()
    assert (hook.name, hook.services, hook.tracks) == ("furgonetka", {"courier": "dpd", "locker": "inpost"}, True)
    assert hook.label and isinstance(hook.note, str)
    options = hook.start()
    engine = db.make_engine(f"sqlite:///{tmp_path / 'hub.db'}")
    try:
        assert options["api_url"].startswith("http://127.0.0.1:")
        assert all(isinstance(v, str | int | bool) or (isinstance(v, list) and all(isinstance(x, str) for x in v))
                   for v in options.values())  # TOML-writable
        db.upgrade(engine)
        services = Services(
            name=hook.name, engine=engine, tokens=TokenStore(engine),
            throttle=Throttle(LocalRateLimiter(), f"furgonetka:{hook.name}", per_minute=6000.0, burst=100.0),
            settings=ConnectorSettings(kind="furgonetka"), transport=None,
            log=get_logger("connectors.furgonetka").bind(connector=hook.name), memory=Memory(engine, hook.name))
        carrier = SPEC.factory(hook.name, SPEC.options_model(**options), services)
        assert isinstance(carrier, Carrier)
        assert list(carrier.services()) == ["dpd", "inpost"]

        booking = carrier.book(shipment("DEMO-1", hook.services["courier"]))
        assert booking.operator == "dpd"
        locker = carrier.book(shipment("DEMO-2", hook.services["locker"], point="KRA010"))
        assert locker.operator == "inpost"
        assert carrier.book(shipment("DEMO-1", hook.services["courier"])) == booking  # once per reference
        assert hook.bookings() == 2

        label = carrier.label(booking, "pdf", "A6")
        reader = pypdf.PdfReader(io.BytesIO(label.content))
        assert len(reader.pages) == 1
        assert booking.parcels[0].tracking_number in reader.pages[0].extract_text()

        # the hub's pickup: today's windows for the shipments waiting (the courier's), the first one still
        # open whatever the hour and weekday, as the demo forces its pickups
        now = datetime.now(WARSAW)
        windows = [w for w in carrier.pickup_windows(SENDER, now.date(), [booking]) if w.end > now.time()]
        assert windows
        pickup = carrier.book_pickup(PickupRequest("PK-DEMO-1", SENDER, windows[0], [booking], 1, Decimal("1.5")))
        assert pickup.external_id and hook.pickups() == 1

        number = booking.parcels[0].tracking_number
        hook.deliver(number)
        hook.deliver(number)  # delivered already: nothing more happens
        events = carrier.track([number])
        assert [e.status for e in events] == ["pending", "in_transit", "delivered"]
        assert events[0].occurred_at < events[1].occurred_at < events[2].occurred_at
        assert hook.requests() > 0
    finally:
        hook.stop()
        engine.dispose()
