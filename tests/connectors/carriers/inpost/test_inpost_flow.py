"""The carrier against the simulator: book -> label -> track -> pickup -> cancel, and what each refuses."""

from __future__ import annotations

import io
from collections.abc import Callable
from datetime import date
from decimal import Decimal

import pypdf
import pytest
from inpost_testkit import SENDER, Wired, courier_request, locker_request

from connectors.carriers.inpost import SPEC
from connectors.carriers.inpost.simulator import ShipXSimulator
from hub.kernel.errors import LoginNeeded, PermanentError, RetryableError
from hub.kernel.ports.capability import Capability
from hub.kernel.ports.carrier import Booking, CancelRefused, Carrier, PickupRequest

Wire = Callable[..., Wired]


def test_the_carrier_fits_the_port_and_announces_its_capabilities(wired: Wire) -> None:
    carrier = wired().carrier
    assert isinstance(carrier, Carrier)
    assert carrier.tracking_batch_size == 1
    assert "inpost_locker_standard" in carrier.services()
    assert wired(services=["inpost_locker_standard"]).carrier.services() == ["inpost_locker_standard"]
    assert SPEC.role == "carrier" and SPEC.kind == "inpost"
    assert {Capability.LABEL_PDF, Capability.LABEL_ZPL, Capability.PICKUP, Capability.TRACKING,
            Capability.CASH_ON_DELIVERY, Capability.PICKUP_POINTS, Capability.LOOKUP_BY_REFERENCE} == SPEC.capabilities


def test_locker_flow_book_label_track_pickup_cancel(sim: ShipXSimulator, wired: Wire) -> None:
    carrier = wired().carrier
    booking = carrier.book(locker_request())
    (shipment,) = sim.by_reference("ORD-1001")
    assert booking.external_id == str(shipment["id"]) and booking.operator == "inpost"
    assert [p.tracking_number for p in booking.parcels] == [shipment["tracking_number"]]
    assert booking.parcels[0].external_id == str(shipment["parcels"][0]["id"])

    label = carrier.label(booking, "pdf", "A6")
    reader = pypdf.PdfReader(io.BytesIO(label.content))
    assert label.format == "pdf" and len(reader.pages) == 1
    assert booking.parcels[0].tracking_number in reader.pages[0].extract_text()
    assert reader.pages[0].mediabox.width == 298  # A6
    (label_call,) = sim.exchanges("GET", r"/label$")
    assert label_call.query == {"format": "pdf", "type": "A6"}

    number = booking.parcels[0].tracking_number
    sim.advance(3600)
    sim.add_tracking(number, "taken_by_courier", agency="KRA")
    sim.advance(86400)
    sim.add_tracking(number, "ready_to_pickup", agency="WAW")
    events = carrier.track([number])
    assert [(e.code, e.status, e.location) for e in events] == [
        ("confirmed", "pending", None), ("taken_by_courier", "in_transit", "KRA"),
        ("ready_to_pickup", "ready_for_pickup", "WAW")]
    assert events[2].description == "[pl_PL] Ready to pickup"
    assert events[1].occurred_at.tzinfo is not None and events[0].occurred_at < events[1].occurred_at

    with pytest.raises(CancelRefused, match="it is ready_to_pickup"):
        carrier.cancel(booking)


def test_courier_flow_with_two_parcels_a_pickup_and_its_cancel(sim: ShipXSimulator, wired: Wire) -> None:
    carrier = wired().carrier
    booking = carrier.book(courier_request())
    (shipment,) = sim.by_reference("ORD-2002")
    assert [p.tracking_number for p in booking.parcels] == [p["tracking_number"] for p in shipment["parcels"]]
    assert len({p.tracking_number for p in booking.parcels}) == 2

    label = carrier.label(booking, "zpl", "A6")
    assert label.format == "zpl" and label.content.count(b"^XA") == 2
    assert all(p.tracking_number.encode() in label.content for p in booking.parcels)

    day = date(2024, 6, 12)
    (window,) = carrier.pickup_windows(SENDER, day)
    assert carrier.pickup_windows(SENDER, date(2024, 6, 15)) == []  # a Saturday
    pickup = carrier.book_pickup(PickupRequest("PK-1", SENDER, window, [booking], 2, Decimal("15.345")))
    (order,) = sim.dispatch_orders.values()
    assert pickup.external_id == str(order["id"]) and pickup.window == window
    assert [s["id"] for s in order["shipments"]] == [int(booking.external_id)]
    assert order["comments"][0]["comment"] == "hub:PK-1 2024-06-12 10:00-16:00"
    assert order["address"]["building_number"] == "65L" and order["phone"] == "121323123"

    carrier.cancel_pickup(pickup)
    assert order["status"] == "canceled"
    carrier.cancel_pickup(pickup)  # cancelled already: a retry succeeds


def test_a_pickup_the_courier_accepted_cannot_be_cancelled(sim: ShipXSimulator, wired: Wire) -> None:
    carrier = wired().carrier
    booking = carrier.book(courier_request())
    (window,) = carrier.pickup_windows(SENDER, date(2024, 6, 12))
    pickup = carrier.book_pickup(PickupRequest("PK-2", SENDER, window, [booking], 2, Decimal(15)))
    sim.set_dispatch_status(int(pickup.external_id), "accepted")
    with pytest.raises(CancelRefused, match=f"dispatch order {pickup.external_id} .*it is accepted"):
        carrier.cancel_pickup(pickup)


def test_a_shipment_not_confirmed_yet_can_be_cancelled_and_cancelling_again_succeeds(
        sim: ShipXSimulator, wired: Wire) -> None:
    carrier = wired(confirm_polls=0).carrier
    sim.hold_confirmation = True
    with pytest.raises(RetryableError, match="not confirmed yet"):
        carrier.book(locker_request())
    (shipment,) = sim.by_reference("ORD-1001")
    pending = Booking("ORD-1001", str(shipment["id"]), [], "inpost")
    carrier.cancel(pending)
    assert shipment["status"] == "canceled"
    carrier.cancel(pending)  # a retry of a cancel that landed
    with pytest.raises(PermanentError, match="was cancelled; book again under a new reference"):
        carrier.book(locker_request())
    assert len(sim.by_reference("ORD-1001")) == 1


def test_asynchronous_confirmation_polls_then_hands_back_and_goes_on_later(sim: ShipXSimulator, wired: Wire) -> None:
    wired_carrier = wired(confirm_polls=3, confirm_poll_interval=2.0, confirm_retry_after=45.0)
    sim.hold_confirmation = True
    with pytest.raises(RetryableError, match=r"shipment \d+ not confirmed yet \(status created\)") as caught:
        wired_carrier.carrier.book(locker_request())
    assert caught.value.retry_after == 45.0
    assert wired_carrier.sleeps.calls.count(2.0) == 3
    assert len(sim.exchanges("GET", r"^/v1/shipments/\d+$")) == 3

    sim.hold_confirmation = False
    sim.confirm_after_reads = 2
    booking = wired_carrier.carrier.book(locker_request())
    (shipment,) = sim.by_reference("ORD-1001")
    assert booking.parcels[0].tracking_number == shipment["tracking_number"]
    assert len(sim.exchanges("POST", r"/shipments$")) == 1


def test_a_label_before_confirmation_and_a_label_not_generated_yet_are_retryable(
        sim: ShipXSimulator, wired: Wire) -> None:
    carrier = wired(confirm_polls=0).carrier
    sim.hold_confirmation = True
    with pytest.raises(RetryableError):
        carrier.book(locker_request())
    (shipment,) = sim.by_reference("ORD-1001")
    early = Booking("ORD-1001", str(shipment["id"]), [], "inpost")
    with pytest.raises(RetryableError, match="has no label yet"):
        carrier.label(early, "pdf", "A6")
    sim.confirm(shipment["id"])
    sim.label_failures = 1
    with pytest.raises(RetryableError, match="could not generate the label"):
        carrier.label(early, "pdf", "A4")
    label = carrier.label(early, "pdf", "A4")
    assert pypdf.PdfReader(io.BytesIO(label.content)).pages[0].mediabox.width == 595
    assert sim.exchanges("GET", r"/label$")[-1].query == {"format": "pdf", "type": "normal"}


def test_zpl_at_300_dpi_where_shipx_offers_it(sim: ShipXSimulator, wired: Wire) -> None:
    carrier = wired(zpl_dpi300=True).carrier
    locker = carrier.book(locker_request())
    assert b"dpi 300" in carrier.label(locker, "zpl", "A6").content
    courier = carrier.book(courier_request())
    assert b"dpi 203" in carrier.label(courier, "zpl", "A6").content  # not offered for inpost_courier_standard
    assert [e.query["type"] for e in sim.exchanges("GET", r"/label$")] == ["dpi300", "A6"]


def test_shipx_validation_errors_are_permanent_and_say_what_is_wrong(sim: ShipXSimulator, wired: Wire) -> None:
    sim.services = frozenset({"inpost_courier_standard"})
    with pytest.raises(PermanentError, match=r"InPost book ORD-1001: ShipX refused the shipment: .*HTTP 400: "
                                             r"validation_failed.*\(service: invalid\)"):
        wired().carrier.book(locker_request())


def test_a_service_the_connector_does_not_list_is_refused_before_any_call(sim: ShipXSimulator, wired: Wire) -> None:
    with pytest.raises(PermanentError, match="'inpost_courier_palette' is not one of the connector's services"):
        wired().carrier.book(locker_request(service="inpost_courier_palette"))
    assert sim.log == []


def test_a_wrong_token_needs_an_operator(sim: ShipXSimulator, wired: Wire) -> None:
    carrier = wired().carrier
    sim.token = "rotated"  # revoked in Manager Paczek
    with pytest.raises(LoginNeeded, match="rejected the API token"):
        carrier.book(locker_request())


def test_tracking_a_number_shipx_does_not_know_has_no_events(sim: ShipXSimulator, wired: Wire) -> None:
    carrier = wired().carrier
    assert carrier.track(["600000000000000000000000"]) == []
    booking = carrier.book(locker_request())
    sim.add_tracking(booking.parcels[0].tracking_number, "teleported")
    events = carrier.track(["600000000000000000000000", booking.parcels[0].tracking_number])
    assert [(e.code, e.status) for e in events] == [("confirmed", "pending"), ("teleported", "exception")]
    assert len(sim.exchanges("GET", "^/v1/statuses$")) == 1  # the dictionary is read once


def test_tracking_goes_on_without_the_status_dictionary(sim: ShipXSimulator, wired: Wire) -> None:
    carrier = wired(attempts=1).carrier
    booking = carrier.book(locker_request())
    sim.inject("5xx", method="GET", path="^/v1/statuses$")
    events = carrier.track([booking.parcels[0].tracking_number])
    assert [(e.code, e.description) for e in events] == [("confirmed", None)]
