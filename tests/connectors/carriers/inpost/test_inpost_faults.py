"""Exactly once under faults: crashes between ShipX's answer and our commit, lost answers, 5xx before and after
the change, timeouts, slow answers, a ShipX that ignores the reference filter. The job queue calls again with the
same reference whenever a RetryableError comes out; these tests do the same in a loop."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import date
from decimal import Decimal
from typing import Any, TypeVar

import httpx
import pytest
import structlog
import structlog.testing
from inpost_testkit import SENDER, Wired, courier_request, locker_request, wire

from connectors.carriers.inpost import mapping
from connectors.carriers.inpost.simulator import Faults, ShipXSimulator
from hub.kernel.errors import PermanentError, RetryableError
from hub.kernel.ports.carrier import PickupRequest

Wire = Callable[..., Wired]
T = TypeVar("T")


def like_the_queue(call: Callable[[], T], max_calls: int = 40) -> tuple[T, list[RetryableError]]:
    """Call until it returns, as the queue does on RetryableError (without the backoff)."""
    failures: list[RetryableError] = []
    for _ in range(max_calls):
        try:
            return call(), failures
        except RetryableError as exc:
            failures.append(exc)
    raise AssertionError(f"never succeeded in {max_calls} calls: {failures[-1]}")


def test_crash_after_booking_books_nothing_twice(sim: ShipXSimulator, wired: Wire) -> None:
    """book, the worker dies before committing (the result is lost), book again with the same reference."""
    first = wired().carrier.book(courier_request())
    del first  # never committed
    again = wired().carrier.book(courier_request())  # a fresh worker process
    assert len(sim.by_reference("ORD-2002")) == 1 and len(sim.shipments) == 1
    (shipment,) = sim.shipments.values()
    assert [p.tracking_number for p in again.parcels] == [p["tracking_number"] for p in shipment["parcels"]]
    assert again.external_id == str(shipment["id"])
    assert len(sim.exchanges("POST", r"/shipments$")) == 1


def test_crash_test_is_not_a_tautology_without_the_lookup(sim: ShipXSimulator, wired: Wire,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """With the lookup switched off, the same two calls do book twice: the test above can fail."""
    carrier = wired().carrier
    monkeypatch.setattr(carrier, "_find_shipment", lambda reference: None)
    carrier.book(courier_request())
    carrier.book(courier_request())
    assert len(sim.by_reference("ORD-2002")) == 2


def test_a_first_call_books_without_the_lookup_and_a_retry_finds_it(sim: ShipXSimulator, wired: Wire) -> None:
    """The hub marks a call that no earlier call can have preceded: no list is read for it. The next
    call (its answer lost, the worker killed) is not marked, and finds the first booking."""
    first = wired().carrier.book(replace(courier_request(), first_call=True))
    assert sim.exchanges("GET", r"/organizations/[^/]+/shipments$") == []
    again = wired().carrier.book(courier_request())
    assert len(sim.exchanges("GET", r"/organizations/[^/]+/shipments$")) >= 1
    assert len(sim.by_reference("ORD-2002")) == 1 and again.external_id == first.external_id


@pytest.mark.parametrize("fault", ["lost", "5xx_after", "5xx", "timeout"])
def test_a_create_whose_answer_never_came_is_found_not_repeated(sim: ShipXSimulator, wired: Wire, fault: str) -> None:
    carrier = wired().carrier
    sim.inject(fault, method="POST", path=r"/shipments$")
    with pytest.raises(RetryableError, match="not retried: the request may have landed"):
        carrier.book(locker_request())
    applied = fault in ("lost", "5xx_after")
    assert len(sim.by_reference("ORD-1001")) == (1 if applied else 0)
    booking = carrier.book(locker_request())
    (shipment,) = sim.by_reference("ORD-1001")
    assert booking.parcels[0].tracking_number == shipment["tracking_number"]
    assert len([e for e in sim.exchanges("POST", r"/shipments$") if e.applied]) == 1


def test_reads_are_retried_within_one_call(sim: ShipXSimulator, wired: Wire) -> None:
    carrier = wired(attempts=3).carrier
    sim.inject("timeout", method="GET", path=r"/shipments$")
    sim.inject("5xx", method="GET", path=r"/shipments$")
    booking = carrier.book(locker_request())
    assert booking.external_id == str(sim.by_reference("ORD-1001")[0]["id"])
    assert [e.fault for e in sim.exchanges("GET", r"/shipments$")] == ["timeout", "5xx", None]


def test_a_shipx_that_ignores_the_reference_filter_is_searched_through(sim: ShipXSimulator, wired: Wire) -> None:
    sim.filters_by_reference = False
    carrier = wired().carrier
    for n in range(250):
        sim.add_shipment(_body(f"OTHER-{n:03d}"))
        sim.advance(60)
    sim.inject("lost", method="POST", path=r"/shipments$")
    with pytest.raises(RetryableError):
        carrier.book(locker_request("ORD-1001"))
    for n in range(30):
        sim.advance(60)
        sim.add_shipment(_body(f"LATER-{n:03d}"))
    booking = carrier.book(locker_request("ORD-1001"))
    assert len(sim.by_reference("ORD-1001")) == 1
    assert booking.external_id == str(sim.by_reference("ORD-1001")[0]["id"])
    pages = [e.query["page"] for e in sim.exchanges("GET", r"/shipments$")]
    assert pages[-3:] == ["1", "2", "3"]  # the whole recent list was read: 281 shipments


def _body(reference: str) -> dict[str, Any]:
    return mapping.shipment_payload(locker_request(reference), mapping.ShipmentRules())


def test_an_inconclusive_lookup_refuses_rather_than_risk_a_second_booking(sim: ShipXSimulator, wired: Wire) -> None:
    sim.filters_by_reference = False
    carrier = wired(lookup_max_pages=1).carrier
    for n in range(101):
        sim.add_shipment(_body(f"OTHER-{n:03d}"))
    with pytest.raises(PermanentError, match="cannot tell whether ShipX holds a shipment under this reference"):
        carrier.book(locker_request("ORD-1001"))
    assert sim.by_reference("ORD-1001") == []


def test_a_shipment_older_than_the_lookup_window_is_out_of_sight(sim: ShipXSimulator, wired: Wire) -> None:
    """The lookup's bound, on purpose: a reference is retried within days, not months (lookup_days)."""
    carrier = wired(lookup_days=7).carrier
    carrier.book(locker_request())
    sim.advance(8 * 86400)
    carrier.book(locker_request())
    assert len(sim.by_reference("ORD-1001")) == 2
    (query,) = {e.query["created_at_gteq"] for e in sim.exchanges("GET", r"/shipments$")[-1:]}
    assert query == "2024-06-12T10:00:00+02:00"


def test_a_slow_answer_past_the_timeout_is_looked_up_on_the_loopback_server(sim: ShipXSimulator) -> None:
    """Served for real: ShipX applies the create and answers after the client gave up."""
    url = sim.serve()
    wired = wire(sim, transport=httpx.HTTPTransport(), api_url=url, request_timeout=0.2, attempts=1)
    sim.inject("slow", method="POST", path=r"/shipments$", seconds=0.6)
    with pytest.raises(RetryableError, match="timed out"):
        wired.carrier.book(locker_request())
    booking = wired.carrier.book(locker_request())
    (shipment,) = sim.by_reference("ORD-1001")
    assert booking.external_id == str(shipment["id"])


def test_crash_after_a_pickup_books_no_second_courier(sim: ShipXSimulator, wired: Wire) -> None:
    carrier = wired().carrier
    booking = carrier.book(courier_request())
    (window,) = carrier.pickup_windows(SENDER, date(2024, 6, 12))
    request = PickupRequest("PK-9", SENDER, window, [booking], 2, Decimal("15.345"))
    first = carrier.book_pickup(request)
    with structlog.testing.capture_logs() as logs:
        again = wired().carrier.book_pickup(request)
    assert len(sim.dispatch_orders) == 1 and again.external_id == first.external_id
    # found by the reference in its comment, not by the fallback on its shipments
    assert not [e for e in logs if e["event"] == "inpost.dispatch_order_by_shipments"]


@pytest.mark.parametrize("filters", [True, False])
@pytest.mark.parametrize("fault", ["lost", "5xx_after"])
def test_a_dispatch_order_whose_answer_was_lost_is_found(sim: ShipXSimulator, wired: Wire, fault: str,
                                                         filters: bool) -> None:
    sim.filters_by_shipment = filters
    carrier = wired().carrier
    other = carrier.book(locker_request("ORD-OTHER"))
    booking = carrier.book(courier_request())
    (window,) = carrier.pickup_windows(SENDER, date(2024, 6, 12))
    carrier.book_pickup(PickupRequest("PK-OTHER", SENDER, window, [other], 1, Decimal(1)))
    sim.inject(fault, method="POST", path=r"/dispatch_orders$")
    request = PickupRequest("PK-10", SENDER, window, [booking], 2, Decimal(15))
    with pytest.raises(RetryableError):
        carrier.book_pickup(request)
    pickup = carrier.book_pickup(request)
    mine = [o for o in sim.dispatch_orders.values() if any(s["id"] == int(booking.external_id) for s in o["shipments"])]
    assert len(mine) == 1 and pickup.external_id == str(mine[0]["id"])


def test_a_courier_ordered_by_hand_for_the_same_shipments_is_not_ordered_again(sim: ShipXSimulator,
                                                                               wired: Wire) -> None:
    carrier = wired().carrier
    booking = carrier.book(courier_request())
    (window,) = carrier.pickup_windows(SENDER, date(2024, 6, 12))
    by_hand = carrier.book_pickup(PickupRequest("MANAGER-PACZEK", SENDER, window, [booking], 2, Decimal(15)))
    with structlog.testing.capture_logs() as logs:
        ours = wired().carrier.book_pickup(PickupRequest("PK-11", SENDER, window, [booking], 2, Decimal(15)))
    assert ours.external_id == by_hand.external_id and len(sim.dispatch_orders) == 1
    fallback = [str(e["order"]) for e in logs if e["event"] == "inpost.dispatch_order_by_shipments"]
    assert fallback == [by_hand.external_id]


def test_random_faults_end_in_one_booking_and_one_pickup_per_reference(sim: ShipXSimulator) -> None:
    sim.faults = Faults(error_rate=0.2, error_after_apply=0.5, timeout_rate=0.1, lost_response_rate=0.1)
    sim.confirm_after_reads = 2
    carrier = wire(sim, attempts=2).carrier
    bookings = []
    failures = 0
    for n in range(12):
        request = courier_request(f"ORD-{n:03d}") if n % 2 else locker_request(f"ORD-{n:03d}")
        booking, failed = like_the_queue(lambda r=request: carrier.book(r))  # type: ignore[misc]
        failures += len(failed)
        bookings.append(booking)
        labels, failed = like_the_queue(lambda b=booking: carrier.label(b, "pdf", "A6"))  # type: ignore[misc]
        assert labels.content.startswith(b"%PDF")
    assert failures > 0  # the faults did happen
    for n, booking in enumerate(bookings):
        (shipment,) = sim.by_reference(f"ORD-{n:03d}")
        assert [p.tracking_number for p in booking.parcels] == [p["tracking_number"] for p in shipment["parcels"]]
    (window,) = carrier.pickup_windows(SENDER, date(2024, 6, 12))
    request = PickupRequest("PK-ALL", SENDER, window, bookings, 18, Decimal(40))
    pickup, _ = like_the_queue(lambda: carrier.book_pickup(request))
    assert len(sim.dispatch_orders) == 1 and pickup.external_id == str(next(iter(sim.dispatch_orders)))
    like_the_queue(lambda: carrier.cancel_pickup(pickup))
    sim.clear_faults()
    carrier.cancel_pickup(pickup)  # and once more, calmly: cancelled already
    assert sim.dispatch_orders[int(pickup.external_id)]["status"] == "canceled"


def test_a_changed_request_under_a_booked_reference_is_refused(sim: ShipXSimulator, wired: Wire) -> None:
    carrier = wired().carrier
    carrier.book(courier_request())
    one_parcel = courier_request(parcels=courier_request().parcels[:1])
    with pytest.raises(PermanentError, match="with 2 parcel\\(s\\), the request has 1"):
        carrier.book(one_parcel)
    assert len(sim.shipments) == 1
