"""Ship with Allegro end to end on the simulator: book -> label -> track -> pickup -> cancel, exactly-once
under lost answers and crashes, the asynchronous outcomes, and the Allegro account's shared login.

Every exchange is validated against swagger.yaml (the conftest's ValidatingTransport; the file answers of
label and protocol, which it reads as JSON, by ``Checked`` below)."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date, time, timedelta
from decimal import Decimal
from io import BytesIO
from pathlib import Path
from typing import Any

import httpx
import pytest
from pypdf import PdfReader
from sqlalchemy import Engine

from connectors.allegro.shipping import SPEC, AllegroShippingOptions
from connectors.allegro.shipping_carrier import AllegroShippingCarrier
from connectors.allegro.shipping_mapping import command_id
from connectors.allegro.simulator import AllegroSimulator
from connectors.allegro.simulator_shipping import DPD_COURIER, INPOST_LOCKER, UPS_OWN, DropAnswers
from hub.kernel.clock import utcnow
from hub.kernel.errors import LoginNeeded, PermanentError, RetryableError
from hub.kernel.ports.carrier import (
    Booking,
    CancelRefused,
    Carrier,
    CashOnDelivery,
    Parcel,
    PickupRequest,
    PickupWindow,
    ShipmentRequest,
)
from hub.kernel.types import Address, PickupPoint
from hub.platform import db
from hub.platform.config import ConnectorSettings
from hub.platform.connectors import Services
from hub.platform.credentials import TokenSet, TokenStore
from hub.platform.logs import get_logger
from hub.platform.memory import Memory
from hub.platform.ratelimit import LocalRateLimiter, Throttle
from tests.support.openapi import Req, Resp

BINARY_PATHS = ("/shipment-management/label", "/shipment-management/protocol")
SM = "/shipment-management"
SENDER = Address(name="Anna Nowak", company="Sklep Nowak", street="Prosta 1", city="Warszawa", postal_code="00-001",
                 phone="500600700", email="sklep@example.com")
BUYER = Address(name="Jan Kowalski", street="Długa 2", city="Kraków", postal_code="30-001", phone="600700800",
                email="hamu7udk3p+17454c1b6@allegromail.pl")
MONDAY = date(2026, 12, 7)
_names = itertools.count()


class Checked(httpx.BaseTransport):
    """The conftest's ValidatingTransport for every exchange, and for the label and protocol files (which
    it would parse as JSON) the same request checks plus openapi-core on the octet-stream answer."""

    def __init__(self, validating: Any):
        self.validating = validating

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.path not in BINARY_PATHS:
            return self.validating.handle_request(request)
        self.validating._check_request(request)
        response = self.validating.inner.handle_request(request)
        response.read()
        assert response.headers.get("trace-id")
        if response.headers.get("content-type") == "application/octet-stream":
            assert response.status_code == 200 and response.content
            # the spec's server of the module that defines the transport (not sys.modules["conftest"]: several
            # conftest modules share that name, and under xdist another one may hold it)
            server = type(self.validating).handle_request.__globals__["SPEC_SERVER"]
            self.validating.spec.api.validate_response(Req(request, server), Resp(response))
        else:
            self.validating._check_response(request, response)
        self.validating.checked.append((request.method, request.url.path, response.status_code))
        return response

    def close(self) -> None:
        self.validating.close()


@dataclass
class FakeTime:
    now: float = 0.0
    slept: list[float] = field(default_factory=list)

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds

    def clock(self) -> float:
        return self.now


@pytest.fixture(scope="module")
def ship_engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    """One migrated SQLite database for the module (migrating costs most of a second per test); each test
    uses connector names of its own."""
    engine = db.make_engine(f"sqlite:///{tmp_path_factory.mktemp('shipping') / 'hub.db'}")
    db.upgrade(engine)
    yield engine
    engine.dispose()


@dataclass
class Rig:
    sim: AllegroSimulator
    carrier: AllegroShippingCarrier
    drops: DropAnswers
    checked: Any  # the ValidatingTransport
    tokens: TokenStore
    account: str
    time: FakeTime
    build: Callable[..., AllegroShippingCarrier]

    def posts(self, kind: str = "create") -> int:
        return sum(n for (k, _), n in self.sim.command_posts.items() if k == kind)


def shipping_options(account: str, **overrides: Any) -> AllegroShippingOptions:
    values: dict[str, Any] = {
        "account": account, "api_url": "https://allegro.sim", "auth_url": "https://allegro.sim",
        "client_id": "hub-client", "client_secret": "hub-secret", "confirm_timeout": 5, "poll_interval": 0.5,
        "retry_backoff": 0.001, "template_sizes": {"medium": [64, 38, 19]},
    }
    values.update(overrides)
    return AllegroShippingOptions.model_validate(values)


@pytest.fixture
def rig(ship_engine: Engine, sim: AllegroSimulator, validated: Callable[[httpx.BaseTransport], Any]) -> Iterator[Rig]:
    n = next(_names)
    account = f"allegro-main-{n}"
    tokens = TokenStore(ship_engine)
    pair = sim.issue_tokens(account=account)
    tokens.save(account, TokenSet(pair["access_token"], pair["refresh_token"], utcnow() + timedelta(hours=12)))
    checked = validated(sim.transport())
    drops = DropAnswers(Checked(checked))
    clock = FakeTime()
    built: list[AllegroShippingCarrier] = []

    def build(name: str = f"allegro-shipping-{n}", **overrides: Any) -> AllegroShippingCarrier:
        services = Services(name=name, engine=ship_engine, tokens=tokens,
                            throttle=Throttle(LocalRateLimiter(), "allegro:hub-client", 9000.0, 150.0),
                            settings=ConnectorSettings(kind="allegro-shipping"), transport=drops,
                            log=get_logger("connectors.allegro-shipping").bind(connector=name),
                            memory=Memory(ship_engine, name))
        carrier = AllegroShippingCarrier(name, shipping_options(account, **overrides), services,
                                         sleep=clock.sleep, clock=clock.clock)
        built.append(carrier)
        return carrier

    yield Rig(sim, build(), drops, checked, tokens, account, clock, build)
    for carrier in built:
        carrier.close()


def shipment_request(reference: str = "SHP-1", **overrides: Any) -> ShipmentRequest:
    values: dict[str, Any] = {
        "reference": reference, "service": DPD_COURIER.method_id, "sender": SENDER, "receiver": BUYER,
        "parcels": [Parcel(Decimal("1.5"), 30, 20, 10)],
    }
    values.update(overrides)
    return ShipmentRequest(**values)


def locker_request(reference: str = "SHP-L") -> ShipmentRequest:
    """A locker parcel as hub.shipping builds it: a template, no dimensions (the options' template_sizes)."""
    return shipment_request(reference, service=INPOST_LOCKER.method_id, pickup_point=PickupPoint("KRA01M"),
                            parcels=[Parcel(Decimal("2"), template="medium")])


# --- the whole flow ------------------------------------------------------------------------------


def test_book_label_track_pickup_cancel(rig: Rig) -> None:
    carrier = rig.carrier
    assert isinstance(carrier, Carrier) and carrier.tracking_batch_size == 20
    request = shipment_request(parcels=[Parcel(Decimal("1.5"), 30, 20, 10), Parcel(Decimal("3"), 40, 30, 20)],
                               cod=CashOnDelivery(Decimal("120.00"), "PLN", "PL61109010140000071219812874"))
    booking = carrier.book(request)
    (shipment,) = rig.sim.booked_shipments()
    assert booking.external_id == shipment.id and [p.tracking_number for p in booking.parcels] == shipment.waybills
    assert booking.operator == "dpd" and booking.handles["carrier_id"] == "DPD"
    assert shipment.command_id == command_id("create", "SHP-1")  # OUR command id, derived from the reference
    assert shipment.input["cashOnDelivery"]["amount"] == "120.00"

    label = carrier.label(booking, "pdf", "A6")
    pdf = PdfReader(BytesIO(label.content))
    assert label.format == "pdf" and len(pdf.pages) == 2 and pdf.metadata.subject == " ".join(shipment.waybills)
    assert round(float(pdf.pages[0].mediabox.width)) == 298  # A6
    assert len(PdfReader(BytesIO(carrier.label(booking, "pdf", "A4").content)).pages) == 1

    first, second = shipment.waybills
    rig.sim.add_tracking(first, "IN_TRANSIT", description="Przyjęta w oddziale")
    rig.sim.add_tracking(first, "DELIVERED")
    events = carrier.track([first, second])
    assert [(e.tracking_number, e.status) for e in events if e.tracking_number == first] == [
        (first, "pending"), (first, "in_transit"), (first, "delivered")]
    assert [e.status for e in events if e.tracking_number == second] == ["pending"]
    assert [e.occurred_at for e in events] == sorted(e.occurred_at for e in events)
    assert all(e.occurred_at.tzinfo is not None for e in events)

    windows = carrier.pickup_windows(SENDER, MONDAY, [booking])
    assert [(w.start, w.end) for w in windows] == [(time(9), time(12)), (time(12), time(15)), (time(15), time(18))]
    pickup = carrier.book_pickup(PickupRequest("PCK-1", SENDER, windows[1], [booking], 2, Decimal("4.5")))
    (sim_pickup,) = rig.sim.booked_pickups()
    assert pickup.external_id == sim_pickup.id and pickup.handles["carrier_pickup_id"] == sim_pickup.carrier_pickup_id
    assert sim_pickup.proposal_id == windows[1].proposal_id == "202612071200" + "1500"
    with pytest.raises(CancelRefused, match="cannot cancel courier pickup"):
        carrier.cancel_pickup(pickup)

    assert carrier.protocol([booking]) is not None  # DPD hands over with a protocol
    carrier.cancel(booking)
    assert rig.sim.booked_shipments()[0].canceled_at is not None
    carrier.cancel(booking)  # cancelled already: succeeds, and sends no second command
    assert rig.posts("cancel") == 1
    assert ("POST", f"{SM}/label", 200) in rig.checked.checked  # the files went through the spec check too


def test_locker_shipment_through_allegro_is_tracked_under_allegro(rig: Rig) -> None:
    booking = rig.carrier.book(locker_request())
    assert booking.operator == "inpost" and booking.handles["carrier_id"] == "ALLEGRO"
    assert rig.sim.booked_shipments()[0].input["packages"][0]["height"] == {"value": 19, "unit": "CENTIMETER"}
    assert rig.carrier.channel_account == rig.account  # hub.shipping: Allegro attaches the waybill itself
    dpd = rig.carrier.book(shipment_request("SHP-D"))
    waybills = [booking.parcels[0].tracking_number, dpd.parcels[0].tracking_number]
    rig.sim.reset_requests()
    events = rig.carrier.track(waybills)
    assert {e.tracking_number for e in events} == set(waybills)
    asked = sorted(r.path for r in rig.sim.requests)
    assert asked == ["/order/carriers/ALLEGRO/tracking", "/order/carriers/DPD/tracking"]
    assert rig.carrier.protocol([booking]) is None  # 204: lockers have no handover protocol
    with pytest.raises(PermanentError, match="at most 20 waybills"):
        rig.carrier.track([str(i) for i in range(21)])


def test_a_waybill_booked_elsewhere_is_tracked_under_the_configured_carrier(rig: Rig) -> None:
    booking = rig.carrier.book(locker_request())
    other = rig.build(name=f"{rig.carrier.name}-other")  # another connector: it never learnt the waybill
    rig.sim.reset_requests()
    assert [e.code for e in other.track([booking.parcels[0].tracking_number])] == ["PENDING"]
    assert [r.path for r in rig.sim.requests] == ["/order/carriers/ALLEGRO/tracking"]


# --- exactly once ---------------------------------------------------------------------------------


def test_crash_after_booking_books_nothing_twice(rig: Rig) -> None:
    """The worker dies between Allegro's answer and our commit: book() again finds the first shipment."""
    first = rig.carrier.book(shipment_request(parcels=[Parcel(Decimal("1"), 10, 10, 10)] * 2))
    del first  # thrown away, as if never committed
    restarted = rig.build()  # a new process: nothing in memory
    again = restarted.book(shipment_request(parcels=[Parcel(Decimal("1"), 10, 10, 10)] * 2))
    assert len(rig.sim.booked_shipments()) == 1 and rig.posts() == 1
    assert [p.tracking_number for p in again.parcels] == rig.sim.booked_shipments()[0].waybills
    assert again.external_id == rig.sim.booked_shipments()[0].id


def test_a_first_call_posts_without_looking_and_a_retry_finds_it(rig: Rig, monkeypatch: pytest.MonkeyPatch) -> None:
    """Marked first by the hub, book() POSTs the create-command at once (then polls it); unmarked, it
    looks the command up first and finds it."""
    calls: list[str] = []
    client = rig.carrier.client
    command, post = client.command, client.post_command
    monkeypatch.setattr(client, "command", lambda kind, cid: calls.append(f"GET {kind}") or command(kind, cid))
    monkeypatch.setattr(client, "post_command", lambda kind, body: calls.append(f"POST {kind}") or post(kind, body))
    first = rig.carrier.book(shipment_request(first_call=True))
    assert calls[0] == "POST create" and rig.posts() == 1
    again = rig.build().book(shipment_request())
    assert rig.posts() == 1 and again.external_id == first.external_id


def test_answer_lost_after_allegro_applied_the_post(rig: Rig) -> None:
    rig.drops.lose("POST", f"{SM}/shipments/create-commands")
    booking = rig.carrier.book(shipment_request())  # the GET after the lost answer finds the command
    assert rig.drops.dropped == 1 and rig.posts() == 1 and len(rig.sim.booked_shipments()) == 1
    assert booking.external_id == rig.sim.booked_shipments()[0].id


def test_gateway_error_after_applying_is_settled_by_the_command_id(rig: Rig) -> None:
    rig.sim.fail_next("POST", f"{SM}/shipments/create-commands", status=504, code="UPSTREAM_SERVICE_TIMEOUT",
                      applied=True)
    booking = rig.carrier.book(shipment_request())
    assert rig.posts() == 1 and [s.id for s in rig.sim.booked_shipments()] == [booking.external_id]


def test_post_that_never_arrived_is_sent_by_the_retry(rig: Rig) -> None:
    rig.drops.timeout("POST", f"{SM}/shipments/create-commands")
    with pytest.raises(RetryableError, match="got no answer"):
        rig.carrier.book(shipment_request())
    assert rig.posts() == 0 and rig.sim.booked_shipments() == []
    rig.carrier.book(shipment_request())
    assert rig.posts() == 1 and len(rig.sim.booked_shipments()) == 1


def test_5xx_before_applying_then_the_retry_books_once(rig: Rig) -> None:
    rig.sim.fail_next("POST", f"{SM}/shipments/create-commands", status=503)
    with pytest.raises(RetryableError):
        rig.carrier.book(shipment_request())
    assert rig.sim.booked_shipments() == []
    rig.sim.fail_next("GET", f"{SM}/shipments/create-commands/", status=500, times=2)  # retried by the HTTP layer
    rig.carrier.book(shipment_request())
    posts = [r for r in rig.sim.requests if r.method == "POST"]
    assert [r.status for r in posts] == [503, 200]  # the 503 was answered before anything was done
    assert len(rig.sim.booked_shipments()) == 1 and rig.posts() == 1


def test_slow_confirmation_is_retryable_and_the_retry_only_polls(rig: Rig) -> None:
    rig.sim.slow_confirmation(1000)
    carrier = rig.build(confirm_timeout=1.5)
    with pytest.raises(RetryableError, match=r"not confirmed yet.*IN_PROGRESS"):
        carrier.book(shipment_request())
    assert rig.posts() == 1 and rig.sim.booked_shipments() == []
    assert 1.5 <= rig.time.now < 3  # it polled for confirm_timeout, no longer
    with pytest.raises(RetryableError, match="not confirmed yet"):
        carrier.book(shipment_request())
    for command in rig.sim.shipping_commands():
        command.polls_left = 0  # Allegro finishes it
    booking = carrier.book(shipment_request())
    assert rig.posts() == 1 and [s.id for s in rig.sim.booked_shipments()] == [booking.external_id]
    (command,) = rig.sim.shipping_commands()
    assert command.applied == 1


def test_error_outcome_after_a_200(rig: Rig) -> None:
    """A 200 on POST does not mean created (notes): Allegro's reasons come with the status."""
    not_allegro = Address("Jan", "Długa 2", "Kraków", "30-001", phone="600700800", email="jan@example.com")
    with pytest.raises(PermanentError, match=r"Allegro refused shipment SHP-1: .*wygenerowanym przez Allegro"
                                             r".*\(field receiver\.email\)"):
        rig.carrier.book(shipment_request(receiver=not_allegro))
    with pytest.raises(PermanentError, match="wygenerowanym przez Allegro"):
        rig.carrier.book(shipment_request(receiver=not_allegro))  # the same outcome; nothing sent again
    assert rig.posts() == 1 and rig.sim.booked_shipments() == []

    rig.sim.refuse_next_shipment("Przewoźnik odrzucił przesyłkę.", code="CARRIER_ERROR")
    with pytest.raises(PermanentError, match=r"Przewoźnik odrzucił przesyłkę\. \[CARRIER_ERROR\]"):
        rig.carrier.book(shipment_request("SHP-2"))
    with pytest.raises(PermanentError, match=r"receiver\.point"):
        rig.carrier.book(shipment_request("SHP-3", service=INPOST_LOCKER.method_id))


def test_bad_requests_fail_before_any_call(rig: Rig) -> None:
    rig.sim.reset_requests()
    with pytest.raises(PermanentError, match="length_cm is missing"):
        rig.carrier.book(shipment_request(parcels=[Parcel(Decimal("1"))]))
    assert rig.sim.requests == []


# --- labels ---------------------------------------------------------------------------------------


def test_label_not_ready(rig: Rig) -> None:
    booking = rig.carrier.book(shipment_request())
    rig.sim.label_not_ready(1, status=204)
    with pytest.raises(RetryableError, match=r"no label for shipment .* yet \(204\)"):
        rig.carrier.label(booking, "pdf", "A6")
    rig.sim.label_not_ready(3, status=503)  # every attempt of the HTTP layer
    with pytest.raises(RetryableError, match=r"no label for shipment .* yet: .*answered 503"):
        rig.carrier.label(booking, "pdf", "A6")
    assert rig.carrier.label(booking, "pdf", "A6").content.startswith(b"%PDF")


def test_zpl_label_and_format_fixed_at_booking(rig: Rig) -> None:
    booking = rig.carrier.book(shipment_request(label_format="zpl"))
    label = rig.carrier.label(booking, "zpl", "A6")
    assert label.format == "zpl" and label.content.startswith(b"^XA") and booking.parcels[0].tracking_number.encode() \
        in label.content
    with pytest.raises(PermanentError, match="booked with ZPL labels"):
        rig.carrier.label(booking, "pdf", "A6")


# --- cancel ---------------------------------------------------------------------------------------


def test_cancel_refused_once_handed_over(rig: Rig) -> None:
    booking = rig.carrier.book(shipment_request())
    rig.sim.hand_over(booking.external_id)
    with pytest.raises(CancelRefused, match="nadana"):
        rig.carrier.cancel(booking)
    assert rig.sim.booked_shipments()[0].canceled_at is None


def test_cancel_answer_lost_then_retry(rig: Rig) -> None:
    booking = rig.carrier.book(shipment_request())
    rig.sim.slow_confirmation(1000)
    rig.drops.lose("POST", f"{SM}/shipments/cancel-commands")
    carrier = rig.build(confirm_timeout=1)
    with pytest.raises(RetryableError, match=r"cancel of shipment .* not confirmed yet"):
        carrier.cancel(booking)
    for command in rig.sim.shipping_commands():
        command.polls_left = 0
    carrier.cancel(booking)
    assert rig.posts("cancel") == 1 and rig.sim.booked_shipments()[0].canceled_at is not None


def test_cancel_of_an_unknown_shipment(rig: Rig) -> None:
    ghost = Booking(reference="X", external_id="00000000-0000-0000-0000-000000000000", parcels=[], operator="dpd")
    with pytest.raises(PermanentError, match="not found"):
        rig.carrier.cancel(ghost)


# --- pickups --------------------------------------------------------------------------------------


def test_pickup_exactly_once_and_a_window_without_proposal_id(rig: Rig) -> None:
    bookings = [rig.carrier.book(shipment_request("A")), rig.carrier.book(shipment_request("B"))]
    window = PickupWindow(MONDAY, time(15), time(18))  # chosen without Allegro's proposal id
    request = PickupRequest("PCK-2", SENDER, window, bookings, 2, Decimal("3"))
    rig.drops.lose("POST", f"{SM}/pickups/create-commands")
    first = rig.carrier.book_pickup(request)
    again = rig.build().book_pickup(request)  # after a crash: the command id finds it
    assert first == again and rig.posts("pickup") == 1 and len(rig.sim.booked_pickups()) == 1
    for command in rig.sim.shipping_commands():
        command.carrier_pickup_id = None  # a status without the carrier's number: PickupDto has it
    assert rig.build().book_pickup(request).handles == first.handles
    assert rig.sim.booked_pickups()[0].proposal_id == "202612071500" + "1800"
    assert set(rig.sim.booked_pickups()[0].shipment_ids) == {b.external_id for b in bookings}


def test_pickup_window_not_offered(rig: Rig) -> None:
    booking = rig.carrier.book(shipment_request())
    with pytest.raises(PermanentError, match=r"no pickup window 2026-12-07 07:00-08:00.*09:00-12:00"):
        rig.carrier.book_pickup(PickupRequest("P", SENDER, PickupWindow(MONDAY, time(7), time(8)), [booking], 1,
                                              Decimal("1")))
    with pytest.raises(PermanentError, match="per shipment"):
        rig.carrier.pickup_windows(SENDER, MONDAY)
    assert rig.carrier.pickup_windows(SENDER, date(2026, 12, 5), [booking]) == []  # a Saturday
    stale = PickupWindow(MONDAY, time(9), time(12), proposal_id="2026010109001200")
    with pytest.raises(PermanentError, match="Allegro refused pickup P2: Nieprawidłowy termin"):
        rig.carrier.book_pickup(PickupRequest("P2", SENDER, stale, [booking], 1, Decimal("1")))


def test_locker_shipments_have_no_courier_pickup(rig: Rig) -> None:
    booking = rig.carrier.book(locker_request())
    assert rig.carrier.pickup_windows(SENDER, MONDAY, [booking]) == []


# --- services, options, the account's login ---------------------------------------------------------


def test_services_from_the_api_or_the_options(rig: Rig) -> None:
    codes = rig.carrier.services()
    assert DPD_COURIER.method_id in codes and f"{UPS_OWN.method_id}:{UPS_OWN.credentials_id}" in codes
    configured = rig.build(services=[DPD_COURIER.method_id])
    rig.sim.reset_requests()
    assert configured.services() == [DPD_COURIER.method_id] and rig.sim.requests == []


def test_own_contract_service_books_with_its_credentials(rig: Rig) -> None:
    booking = rig.carrier.book(shipment_request(service=f"{UPS_OWN.method_id}:{UPS_OWN.credentials_id}"))
    assert booking.operator == "ups"
    assert rig.sim.booked_shipments()[0].input["credentialsId"] == UPS_OWN.credentials_id


def test_uses_the_accounts_tokens_and_refreshes_them_in_place(rig: Rig) -> None:
    """The tokens live under the Allegro connector's name; the shipping connector keeps none of its own."""
    assert rig.tokens.load(rig.carrier.name) is None
    stored = rig.tokens.load(rig.account)
    assert stored is not None
    rig.sim.expire_access_tokens()
    rig.tokens.save(rig.account, TokenSet(stored.access_token, stored.refresh_token, utcnow() + timedelta(seconds=60)))
    rig.carrier.book(shipment_request())  # the stored pair is about to expire: refreshed first
    fresh = rig.tokens.load(rig.account)
    assert fresh is not None and fresh.refresh_token != stored.refresh_token and rig.sim.refreshes == 1
    assert rig.tokens.load(rig.carrier.name) is None


def test_no_login_for_the_account(rig: Rig, ship_engine: Engine) -> None:
    lonely = AllegroShippingCarrier(
        "ship-x", shipping_options("allegro-nobody"),
        Services(name="ship-x", engine=ship_engine, tokens=TokenStore(ship_engine),
                 throttle=Throttle(LocalRateLimiter(), "k", 9000.0, 150.0), settings=ConnectorSettings(kind="x"),
                 transport=rig.sim.transport(), log=get_logger("t"), memory=None))
    with pytest.raises(LoginNeeded, match="allegro-nobody"):
        lonely.book(shipment_request())
    lonely.close()


def test_spec_options_and_rate_limit_bucket(tmp_path: Path) -> None:
    assert SPEC.kind == "allegro-shipping" and SPEC.role == "carrier"
    key = SPEC.extra["rate_limit_key"]
    assert key("allegro-shipping", {"client_id": "abc"}) == "allegro:abc"  # the account's bucket (allegro's key)
    from connectors.allegro import SPEC as ALLEGRO

    assert ALLEGRO.extra["rate_limit_key"]("allegro-main", {"client_id": "abc"}) == "allegro:abc"
    with pytest.raises(ValueError, match="account"):
        AllegroShippingOptions.model_validate({"client_id": "a", "client_secret": "b"})
    with pytest.raises(ValueError, match="language"):
        shipping_options("a", language="pl")  # the enum: a bare "pl" is invalid
    with pytest.raises(ValueError, match="https is required"):
        shipping_options("a", api_url="http://allegro.example")
    assert shipping_options("a", environment="sandbox", api_url=None).api_base == \
        "https://api.allegro.pl.allegrosandbox.pl"
