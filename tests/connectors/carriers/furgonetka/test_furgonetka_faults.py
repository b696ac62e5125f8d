"""Exactly once under faults: crashes between Furgonetka's answer and our commit, lost answers, 5xx,
timeouts, slow confirmation. The job queue calls again on RetryableError; these tests do the same."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable
from datetime import date
from decimal import Decimal

import pytest
from furgonetka_testkit import SENDER, Wired, shipment
from tenacity import wait_none

from connectors.carriers.furgonetka import build_carrier
from connectors.carriers.furgonetka.simulator import Faults, FurgonetkaSimulator
from hub.kernel.errors import RetryableError
from hub.kernel.ports.carrier import Booking, PickupRequest, ShipmentRequest
from hub.platform.ratelimit import LocalRateLimiter, Throttle

Wire = Callable[..., Wired]


def like_the_queue(call: Callable[[], object], max_calls: int = 40) -> tuple[object, list[RetryableError]]:
    failures: list[RetryableError] = []
    for _ in range(max_calls):
        try:
            return call(), failures
        except RetryableError as exc:
            failures.append(exc)
    raise AssertionError(f"never succeeded in {max_calls} calls: {failures[-1]}")


def numbers(booking: Booking) -> list[str]:
    return [p.tracking_number for p in booking.parcels]


def test_crash_after_booking_then_book_again_finds_the_first(wire: Wire, sim: FurgonetkaSimulator) -> None:
    request = shipment("SHP-CRASH", "inpost", parcels=2, point="KRA01M")
    first = wire().carrier.book(request)  # ...and the worker dies before committing it
    again = wire().carrier.book(request)  # a new process, knowing nothing
    assert len(sim.with_reference("SHP-CRASH")) == 1
    assert numbers(again) == numbers(first) and again.external_id == first.external_id
    assert len(sim.requests("POST", "^/packages$")) == 1
    assert len(sim.requests("PUT", "^/order-commands/")) == 1


def test_a_first_call_books_without_the_lookups_and_a_retry_finds_it(wire: Wire, sim: FurgonetkaSimulator) -> None:
    """Marked first by the hub: no GET of the order command before its PUT, no page of the package list
    (thousands in a busy account). Called again unmarked, it finds the first booking."""
    first = wire().carrier.book(shipment("SHP-FIRST", first_call=True))
    assert sim.requests("GET", "^/packages$") == []
    assert [e.method for e in sim.requests(None, "^/order-commands/")][:1] == ["PUT"]
    again = wire().carrier.book(shipment("SHP-FIRST"))
    assert again.external_id == first.external_id and len(sim.with_reference("SHP-FIRST")) == 1
    assert len(sim.requests("POST", "^/packages$")) == 1 and len(sim.requests("PUT", "^/order-commands/")) == 1


def test_crash_between_the_draft_and_the_order_reuses_the_draft(wire: Wire, sim: FurgonetkaSimulator) -> None:
    sim.script("PUT", "^/order-commands/", "timeout", "timeout")  # the draft exists, the order never arrived
    timed_out = r"PUT /order-commands/\S+: timed out \(ConnectTimeout\) \(after 2 attempts\)"
    with pytest.raises(RetryableError, match=timed_out):
        wire(attempts=2).carrier.book(shipment("SHP-DRAFT"))
    assert [p["state"] for p in sim.with_reference("SHP-DRAFT")] == ["waiting"]
    booking = wire().carrier.book(shipment("SHP-DRAFT"))
    (package,) = sim.with_reference("SHP-DRAFT")
    assert package["state"] == "ordered" and booking.external_id == str(package["package_id"])
    assert len(sim.requests("POST", "^/packages$")) == 1


def test_a_lost_answer_to_the_draft_is_looked_up_in_the_same_call(wire: Wire, sim: FurgonetkaSimulator) -> None:
    sim.script("POST", "^/packages$", "lost")
    booking = wire().carrier.book(shipment("SHP-LOST"))
    assert len(sim.with_reference("SHP-LOST")) == 1
    assert [e.fault for e in sim.requests("POST", "^/packages$")] == ["lost"]  # never sent twice
    assert booking.parcels


def test_a_502_after_the_draft_was_saved_is_not_resent(wire: Wire, sim: FurgonetkaSimulator) -> None:
    sim.script("POST", "^/packages$", "502-after-apply")
    wire().carrier.book(shipment("SHP-502"))
    assert len(sim.with_reference("SHP-502")) == 1 and len(sim.requests("POST", "^/packages$")) == 1


def test_a_draft_that_never_arrived_is_created_on_the_next_call(wire: Wire, sim: FurgonetkaSimulator) -> None:
    sim.script("POST", "^/packages$", "timeout")
    with pytest.raises(RetryableError, match=r"POST /packages: timed out .*not retried: the request may have landed"):
        wire().carrier.book(shipment("SHP-TO"))
    assert sim.with_reference("SHP-TO") == []
    wire().carrier.book(shipment("SHP-TO"))
    assert len(sim.with_reference("SHP-TO")) == 1


def test_order_command_put_is_repeated_safely(wire: Wire, sim: FurgonetkaSimulator) -> None:
    sim.script("PUT", "^/order-commands/", "lost", "503", "502-after-apply")
    booking = wire(attempts=4).carrier.book(shipment("SHP-PUT"))
    puts = sim.requests("PUT", "^/order-commands/")
    assert [e.fault for e in puts] == ["lost", "503", "502-after-apply", None]
    assert len({e.path for e in puts}) == 1 and len(sim.commands) == 1  # one UUID, one command
    assert sim.package(int(booking.external_id))["state"] == "ordered"


def test_slow_confirmation_hands_back_to_the_queue_and_goes_on(wire: Wire, sim: FurgonetkaSimulator) -> None:
    sim.faults = Faults(confirm_polls=7)
    wired = wire(confirm_polls=3)
    slow = r"order command \S+ for shipment SHP-SLOW not confirmed yet \(status running\)"
    with pytest.raises(RetryableError, match=slow):
        wired.carrier.book(shipment("SHP-SLOW"))
    assert wired.sleeps.calls == [2.0, 2.0, 2.0]  # polled 3 times, each confirm_interval after the last call
    booking, failures = like_the_queue(lambda: wire(confirm_polls=3).carrier.book(shipment("SHP-SLOW")))
    assert len(failures) == 1 and isinstance(booking, Booking)
    assert len(sim.requests("POST", "^/packages$")) == 1 and len(sim.requests("PUT", "^/order-commands/")) == 1


def test_pickup_and_cancel_are_exactly_once_too(wire: Wire, sim: FurgonetkaSimulator) -> None:
    carrier = wire().carrier
    booking = carrier.book(shipment("SHP-PU"))
    day = date(2026, 6, 1)
    (window, _) = carrier.pickup_windows(SENDER, day, [booking])
    request = PickupRequest("PU-1", SENDER, window, [booking], 1, Decimal("1.5"))
    sim.script("PUT", "^/pickup-commands/", "lost")
    sim.script("GET", "^/pickup-commands/", "503", "503", "503")
    with pytest.raises(RetryableError, match=r"GET /pickup-commands/\S+: HTTP 503"):
        carrier.book_pickup(request)
    first = wire().carrier.book_pickup(request)  # crash: the pickup is booked again from scratch
    second = wire().carrier.book_pickup(request)
    assert first == second and len(sim.commands) == 2  # the order and ONE pickup command
    assert len(sim.requests("PUT", "^/pickup-commands/")) == 2  # the lost one was retried with the same UUID

    sim.faults = Faults(confirm_polls=3)
    sim.script("PUT", "^/cancel-command/", "lost")
    with pytest.raises(RetryableError, match=r"cancel command \S+ for shipment SHP-PU not confirmed yet"):
        wire(confirm_polls=2).carrier.cancel(booking)
    assert sim.package(int(booking.external_id))["state"] == "ordered"  # still running at Furgonetka
    wire().carrier.cancel(booking)  # the queue's retry goes on polling the same command
    assert sim.package(int(booking.external_id))["state"] == "canceled"
    wire().carrier.cancel(booking)  # and once more: cancelled already, nothing sent
    assert [e.fault for e in sim.requests("PUT", "^/cancel-command/")] == ["lost", None]
    assert len([k for k in sim.commands if k[0] == "cancel-command"]) == 1


def test_many_bookings_under_random_faults_each_land_once(wire: Wire, sim: FurgonetkaSimulator) -> None:
    sim.faults = Faults(error_rate=0.15, timeout_rate=0.05, lost_response_rate=0.08, confirm_polls=2)
    requests = [shipment(f"SHP-R{n:02d}", ("dpd", "inpost", "poczta")[n % 3], parcels=1 + n % 2) for n in range(15)]
    bookings: dict[str, Booking] = {}
    for request in requests:
        # a new process for every call: nothing survives a crash but the reference
        result, _ = like_the_queue(lambda r=request: wire(confirm_polls=2).carrier.book(r))
        assert isinstance(result, Booking)
        bookings[request.reference] = result
    sim.clear_faults()
    for request in requests:
        (package,) = sim.with_reference(request.reference)
        assert numbers(bookings[request.reference]) == [p["package_no"] for p in package["parcels"]]
        assert numbers(wire().carrier.book(request)) == numbers(bookings[request.reference])
    faults = Counter(e.fault for e in sim.log if e.fault)
    assert {"503", "502-after-apply", "timeout", "lost"} <= set(faults), faults
    assert len(sim.packages) == len(requests)


def test_a_slow_answer_on_a_real_socket_is_a_lost_answer(sim: FurgonetkaSimulator, clock: object) -> None:
    """Served on loopback: the draft is saved, the answer comes after the client's timeout."""
    base = sim.serve()
    try:
        sim.faults = Faults(delay_seconds=0.6)
        sim.script("POST", "^/packages$", "slow")
        throttle = Throttle(LocalRateLimiter(), "furgonetka:served", per_minute=60000.0, burst=100.0)
        options = build_options(base, timeout="0.25s")
        carrier = build_carrier("furgonetka", options, {"throttle": throttle, "transport": None},
                                sleep=lambda _s: None, retry_wait=wait_none(), clock=clock)  # type: ignore[arg-type]
        booking = carrier.book(shipment("SHP-SERVED"))
        assert len(sim.with_reference("SHP-SERVED")) == 1 and booking.parcels
        assert [e.fault for e in sim.requests("POST", "^/packages$")] == ["slow"]
    finally:
        sim.stop()


def build_options(base: str, **more: object) -> object:
    from furgonetka_testkit import options

    return options(api_url=base, **more)


def test_what_we_sent_is_what_furgonetka_documents(wire: Wire, sim: FurgonetkaSimulator) -> None:
    wired = wire()
    request: ShipmentRequest = shipment("SHP-HDR", cod="10.00")
    wired.carrier.book(request)
    for sent in wired.sent:
        if sent.url.path == "/oauth/token":
            assert sent.headers["Authorization"].startswith("Basic ")
            assert sent.headers["Content-Type"] == "application/x-www-form-urlencoded"
            continue
        assert sent.headers["Accept"] == "application/vnd.furgonetka.v1+json"
        assert sent.headers["Authorization"].startswith("Bearer at-")
        if sent.content:
            assert sent.headers["Content-Type"] == "application/vnd.furgonetka.v1+json"
    post = next(s for s in wired.sent if s.method == "POST" and s.url.path == "/packages")
    assert b'"amount":10.00' in post.content and json.loads(post.content)["user_reference_number"] == "SHP-HDR"


def test_malformed_answers_are_one_line_retryable_errors(wire: Wire, sim: FurgonetkaSimulator) -> None:
    sim.script("GET", "^/order-commands/", "html")
    with pytest.raises(RetryableError, match=r"^Furgonetka GET /order-commands/\S+: HTTP 200 without a JSON body "
                                             r"\('<html><body>Przerwa"):
        wire().carrier.book(shipment("SHP-BAD"))
    sim.script("GET", "^/order-commands/", "empty")
    with pytest.raises(RetryableError, match=r"^Furgonetka GET /order-commands/\S+: the answer has no status$"):
        wire().carrier.book(shipment("SHP-BAD"))
    booking = wire().carrier.book(shipment("SHP-BAD"))
    sim.script("GET", r"^/packages/\d+/tracking$", "empty")
    assert wire().carrier.track([booking.parcels[0].tracking_number]) == []  # {}: no events yet
    sim.script("GET", r"^/packages/\d+$", "html")
    with pytest.raises(RetryableError, match=r"GET /packages/\d+: HTTP 200 without a JSON body"):
        wire().carrier.cancel(booking)
    assert len(sim.with_reference("SHP-BAD")) == 1
