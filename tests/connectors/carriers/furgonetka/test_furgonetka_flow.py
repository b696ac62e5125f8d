"""The whole life of a shipment against the simulator: book, label, track, pickup, cancel; the token;
the refusals an operator must read."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import date, time

import pytest
from furgonetka_testkit import RECEIVER, SENDER, Clock, Wired, shipment

from connectors.carriers.furgonetka import SPEC, FurgonetkaOptions
from connectors.carriers.furgonetka.simulator import Faults, FurgonetkaSimulator
from hub.kernel.errors import LoginNeeded, PermanentError, RetryableError
from hub.kernel.ports.carrier import CancelRefused, Carrier, PickupRequest, PickupWindow

Wire = Callable[..., Wired]
MONDAY = date(2026, 6, 1)


def test_spec_is_a_lazy_carrier_entry_with_the_brokers_capabilities() -> None:
    assert SPEC.kind == "furgonetka" and SPEC.role == "carrier"
    assert {c.value for c in SPEC.capabilities} == {
        "carrier.label_pdf", "carrier.label_zpl", "carrier.pickup", "carrier.tracking", "carrier.cod",
        "carrier.pickup_points", "carrier.lookup_by_reference"}
    with pytest.raises(ValueError, match="https is required"):
        FurgonetkaOptions.model_validate({"api_url": "http://api.furgonetka.pl", "client_id": "a",
                                          "client_secret": "b", "username": "c", "password": "d"})


def test_book_label_track_pickup_and_cancel(wire: Wire, sim: FurgonetkaSimulator, clock: Clock) -> None:
    wired = wire()
    carrier = wired.carrier
    assert isinstance(carrier, Carrier)
    assert list(carrier.services()) == ["inpost", "dpd", "poczta", "dhl", "ups", "gls", "fedex", "orlen"]

    booking = carrier.book(shipment("SHP-1001", "poczta", parcels=2, cod="149.90"))
    (package,) = sim.with_reference("SHP-1001")
    assert booking.external_id == str(package["package_id"]) and booking.operator == "poczta-polska"
    assert [p.tracking_number for p in booking.parcels] == [p["package_no"] for p in package["parcels"]]
    assert package["state"] == "ordered" and package["service_id"] == 11906592  # the account's poczta service
    assert package["additional_services"]["cod"]["amount"] == 149.9

    pdf = carrier.label(booking, "pdf", "A6")
    assert pdf.format == "pdf" and pdf.content.startswith(b"%PDF") and b" a6 " in pdf.content
    zpl = carrier.label(booking, "zpl", "A4")
    assert zpl.content.count(b"^XA") == 2  # one label per parcel
    assert booking.parcels[1].tracking_number.encode() in zpl.content

    pid = package["package_id"]
    clock.advance(3600)
    sim.advance_package(pid, "collected", "Przesyłka odebrana przez kuriera")
    clock.advance(86400)
    sim.advance_package(pid, "delivered", "Przesyłka doręczona")
    numbers = [p.tracking_number for p in booking.parcels]
    events = carrier.track(numbers)
    assert [(e.tracking_number, e.status) for e in events if e.tracking_number == numbers[0]] == [
        (numbers[0], "pending"), (numbers[0], "in_transit"), (numbers[0], "delivered")]
    assert {e.tracking_number for e in events} == set(numbers)
    assert all(e.occurred_at.tzinfo is not None for e in events)
    assert carrier.track(["99999999999999"]) == []

    other = carrier.book(shipment("SHP-1002", "poczta"))
    windows = carrier.pickup_windows(SENDER, MONDAY)  # the packages booked from this address
    assert [(w.start, w.end) for w in windows] == [(time(9), time(12)), (time(12), time(16))]
    assert carrier.pickup_windows(RECEIVER, MONDAY) == []  # nothing booked from there
    pickup = carrier.book_pickup(PickupRequest("PU-2026-06-01", SENDER, windows[1], [other], 1, other_weight()))
    assert pickup.external_id == sim.package(int(other.external_id))["pickup_number"]
    assert pickup.window == windows[1]
    with pytest.raises(CancelRefused, match="no pickup cancellation"):
        carrier.cancel_pickup(pickup)

    carrier.cancel(other)
    assert sim.package(int(other.external_id))["state"] == "canceled"
    carrier.cancel(other)  # already cancelled: succeeds, sends nothing
    assert len(sim.requests("PUT", "^/cancel-command/")) == 1
    with pytest.raises(CancelRefused, match="już nadana"):
        carrier.cancel(booking)  # delivered


def other_weight() -> object:
    from decimal import Decimal

    return Decimal("2.5")


def test_a_pickup_window_typed_by_hand_is_matched_to_furgonetkas_proposal(wire: Wire, sim: FurgonetkaSimulator) -> None:
    carrier = wire().carrier
    booking = carrier.book(shipment("SHP-7", "dpd"))
    pickup = carrier.book_pickup(PickupRequest("PU-7", SENDER, PickupWindow(MONDAY, time(9), time(12)), [booking],
                                               1, other_weight()))
    assert pickup.handles["package_ids"] == booking.external_id
    (put,) = sim.requests("PUT", "^/pickup-commands/")
    assert json.loads(put.body)["pickup_date"]["hash"]  # the hash of Furgonetka's own proposal
    with pytest.raises(PermanentError, match=r"offers no pickup 2026-06-01 07:00-08:00 .*09:00-12:00, 12:00-16:00"):
        carrier.book_pickup(PickupRequest("PU-8", SENDER, PickupWindow(MONDAY, time(7), time(8)), [booking], 1,
                                          other_weight()))
    sim.unavailable_days.add(date(2026, 6, 2))
    assert carrier.pickup_windows(SENDER, date(2026, 6, 2), [booking]) == []


def test_the_token_is_cached_renewed_before_expiry_and_after_a_401(wire: Wire, sim: FurgonetkaSimulator,
                                                                  clock: Clock) -> None:
    carrier = wire(token_margin="1h").carrier
    for n in range(3):
        carrier.book(shipment(f"SHP-{n}"))
    assert sim.grants == ["password"]
    clock.advance(sim.token_lifetime - 1800)  # within the margin: renewed with the refresh token first
    carrier.track(["1"])
    assert sim.grants == ["password", "refresh_token"]
    sim.refresh_tokens.clear()  # another process rotated it away
    clock.advance(sim.token_lifetime)
    carrier.track(["1"])
    assert sim.grants == ["password", "refresh_token", "password"]
    sim.expire_tokens()  # revoked early: the 401 renews it, the call goes through
    assert carrier.book(shipment("SHP-9")).reference == "SHP-9"
    assert sim.grants[-1] == "refresh_token"
    (token_call,) = [e for e in sim.requests("POST", "^/oauth/token$")][:1]
    assert "scope=api" in token_call.body and "grant_type=password" in token_call.body


def test_wrong_credentials_need_an_operator(wire: Wire, sim: FurgonetkaSimulator) -> None:
    sim.password = "changed"
    with pytest.raises(LoginNeeded, match="check client_id, client_secret, username and password"):
        wire().carrier.book(shipment())


def test_refusals_an_operator_can_act_on(wire: Wire, sim: FurgonetkaSimulator) -> None:
    carrier = wire(services=["dpd", "meest"]).carrier
    with pytest.raises(PermanentError, match=r"service 'inpost' is not one of its services \(dpd, meest\)"):
        carrier.book(shipment(service="inpost"))
    with pytest.raises(PermanentError, match=r"has no 'meest' service \(it has: dhl, dpd, fedex, gls, inpost"):
        carrier.book(shipment(service="meest"))
    bad = shipment("SHP-PC")
    bad = type(bad)(**{**bad.__dict__, "receiver": type(RECEIVER)(**{**RECEIVER.__dict__, "postal_code": "30001"})})
    refused = r"POST /packages: HTTP 400: Nieprawidłowy kod pocztowy. \(receiver.postcode\)"
    with pytest.raises(PermanentError, match=refused):
        carrier.book(bad)
    sim.refuse_order("SHP-X", "Przekroczona maksymalna waga dla usługi.")
    for _ in range(2):  # the same answer every time, and never a second package
        with pytest.raises(PermanentError, match="did not order shipment SHP-X: Przekroczona maksymalna waga"):
            carrier.book(shipment("SHP-X"))
    assert len(sim.with_reference("SHP-X")) == 1


def test_label_not_ready_yet_is_retried_later(wire: Wire, sim: FurgonetkaSimulator) -> None:
    sim.faults = Faults(label_pending_polls=2)
    carrier = wire().carrier
    booking = carrier.book(shipment())
    for _ in range(2):
        with pytest.raises(RetryableError, match="no label for shipment SHP-1001 yet"):
            carrier.label(booking, "pdf", "A4")
    assert carrier.label(booking, "pdf", "A4").content.startswith(b"%PDF")


def test_numbers_booked_elsewhere_are_found_in_the_package_list(wire: Wire, sim: FurgonetkaSimulator) -> None:
    first = wire().carrier
    bookings = [first.book(shipment(f"SHP-{n}")) for n in range(3)]
    for _ in range(120):  # push them past the first page of the listing
        sim._next_package += 1
        sim.packages[sim._next_package] = {**sim.package(int(bookings[2].external_id)),
                                           "package_id": sim._next_package, "parcels": []}
    fresh = wire(lookup_pages=3).carrier  # another process: knows nothing of them
    number = bookings[0].parcels[0].tracking_number
    listed = len(sim.requests("GET", "^/packages$"))
    assert [e.code for e in fresh.track([number])] == ["ordered"]
    pages = sim.requests("GET", "^/packages$")[listed:]
    assert [p.query.get("last_package_id") for p in pages] == [None, str(sim._next_package - 99)]
    assert wire(lookup_pages=1).carrier.track([number]) == []  # beyond the pages it may read: not found
