"""The mapping alone: the exact JSON we send for a request, what we read back, statuses, pickup windows."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, date, datetime, time
from decimal import Decimal
from typing import Any

import pytest
from inpost_testkit import BUYER, SENDER, courier_request, locker_request, wire

from connectors.carriers.inpost import mapping
from connectors.carriers.inpost.mapping import PickupPolicy, ShipmentRules, ShipXFormatError
from connectors.carriers.inpost.simulator import ShipXSimulator
from hub.kernel.errors import PermanentError
from hub.kernel.ports.carrier import TRACKING_STATUSES, Parcel, PickupRequest, PickupWindow
from hub.kernel.types import PickupPoint

RULES = ShipmentRules(insurance_required=frozenset({"inpost_courier_standard"}))

SENDER_JSON = {
    "company_name": "Sklep Rowerowy Sp. z o.o.", "first_name": "Anna", "last_name": "Nowak",
    "email": "sklep@example.pl", "phone": "121323123",
    "address": {"street": "ul. Zawiła", "building_number": "65L", "city": "Kraków", "post_code": "30-390",
                "country_code": "PL"},
}
BUYER_JSON = {
    "first_name": "Jan Maria", "last_name": "Kowalski", "email": "jan.kowalski@example.pl", "phone": "600100200",
    "address": {"street": "ul. Długa", "building_number": "5/3", "city": "Warszawa", "post_code": "00-001",
                "country_code": "PL"},
}
LOCKER_GOLDEN: dict[str, Any] = {
    "receiver": BUYER_JSON,
    "sender": SENDER_JSON,
    "parcels": [{"template": "small", "weight": {"amount": "2.5", "unit": "kg"}}],
    "service": "inpost_locker_standard",
    "reference": "ORD-1001",
    "custom_attributes": {"target_point": "KRA010", "sending_method": "dispatch_order"},
    "cod": {"amount": "199.90", "currency": "PLN"},
}
COURIER_GOLDEN: dict[str, Any] = {
    "receiver": BUYER_JSON,
    "sender": SENDER_JSON,
    "parcels": [
        {"dimensions": {"length": "600", "width": "400", "height": "300", "unit": "mm"},
         "weight": {"amount": "12.345", "unit": "kg"}, "is_non_standard": False},
        {"dimensions": {"length": "300", "width": "200", "height": "100", "unit": "mm"},
         "weight": {"amount": "3", "unit": "kg"}, "is_non_standard": False},
    ],
    "service": "inpost_courier_standard",
    "reference": "ORD-2002",
    "custom_attributes": {"sending_method": "dispatch_order"},
    "cod": {"amount": "1234.50", "currency": "PLN"},
    "insurance": {"amount": "1500.00", "currency": "PLN"},
}


def test_locker_shipment_golden_body() -> None:
    assert mapping.shipment_payload(locker_request(), RULES) == LOCKER_GOLDEN


def test_courier_shipment_golden_body() -> None:
    assert mapping.shipment_payload(courier_request(), RULES) == COURIER_GOLDEN


def test_the_body_on_the_wire_is_the_golden_one_with_money_as_strings() -> None:
    """What the carrier really sends (read back from the simulator's log), byte for byte as JSON."""
    sim = ShipXSimulator(seed=1)
    wire(sim).carrier.book(courier_request())
    (post,) = sim.exchanges("POST", r"/shipments$")
    assert post.body == COURIER_GOLDEN
    text = json.dumps(post.body)
    assert '"amount": "1234.50"' in text and '"amount": "1500.00"' in text
    assert not any(isinstance(v, float) for v in _leaves(post.body))


def _leaves(value: Any) -> list[Any]:
    if isinstance(value, dict):
        return [leaf for v in value.values() for leaf in _leaves(v)]
    if isinstance(value, list):
        return [leaf for v in value for leaf in _leaves(v)]
    return [value]


def test_request_options_override_the_sending_method_and_name_a_dropoff_locker() -> None:
    request = locker_request(options={"sending_method": "parcel_locker", "dropoff_point": "KRA01M"})
    body = mapping.shipment_payload(request, RULES)
    assert body["custom_attributes"] == {"target_point": "KRA010", "sending_method": "parcel_locker",
                                         "dropoff_point": "KRA01M"}


def test_insurance_defaults_where_the_service_requires_it() -> None:
    request = courier_request(insurance=None)
    with pytest.raises(PermanentError, match="inpost_courier_standard requires insurance"):
        mapping.shipment_payload(request, RULES)
    body = mapping.shipment_payload(request, replace(RULES, default_insurance=Decimal("500")))
    assert body["insurance"] == {"amount": "500.00", "currency": "PLN"}


@pytest.mark.parametrize(("street", "expected"), [
    ("ul. Długa 5/3", ("ul. Długa", "5/3")),
    ("Zawiła 65L", ("Zawiła", "65L")),
    ("al. Jana Pawła II 12 m. 4", ("al. Jana Pawła II", "12 m. 4")),
    ("ul. 3 Maja 10", ("ul. 3 Maja", "10")),
    ("Rynek Główny", ("Rynek Główny", None)),
    ("  ul.   Krótka   7 ", ("ul. Krótka", "7")),
])
def test_street_and_building_number(street: str, expected: tuple[str, str | None]) -> None:
    assert mapping.split_street(street) == expected


@pytest.mark.parametrize(("phone", "expected"), [
    ("+48 600 100 200", "600100200"), ("0048600100200", "600100200"), ("600-100-200", "600100200"),
    ("48600100200", "600100200"), (None, None), ("", None),
])
def test_phone_numbers_lose_the_polish_prefix(phone: str | None, expected: str | None) -> None:
    assert mapping.phone_number(phone, "PL") == expected


def test_a_locker_template_is_chosen_from_the_dimensions_or_the_letter() -> None:
    def body(parcel: Parcel) -> dict[str, Any]:
        return mapping.shipment_payload(locker_request(parcels=[parcel]), RULES)["parcels"][0]

    assert body(Parcel(Decimal(1), 60, 30, 15))["template"] == "medium"
    assert body(Parcel(Decimal(1), 8, 64, 38))["template"] == "small"
    assert body(Parcel(Decimal(1), template="C"))["template"] == "large"
    with pytest.raises(PermanentError, match="fits no locker template"):
        body(Parcel(Decimal(1), 70, 38, 8))
    with pytest.raises(PermanentError, match="over the 25 kg"):
        body(Parcel(Decimal("25.5"), template="small"))


@pytest.mark.parametrize(("change", "message"), [
    ({"pickup_point": None}, "needs the locker the buyer chose"),
    ({"parcels": [Parcel(Decimal(1), template="small")] * 2}, "takes one parcel per shipment"),
    ({"reference": "AB"}, "3 to 100 characters"),
    ({"receiver": replace(BUYER, email=None)}, "receiver's phone and e-mail"),
    ({"parcels": [Parcel(Decimal(0), template="small")]}, "must be more than 0"),
    ({"parcels": [Parcel(Decimal(1), template="huge")]}, "template 'huge' is not one of"),
])
def test_requests_shipx_would_refuse_are_refused_before_any_call(change: dict[str, Any], message: str) -> None:
    with pytest.raises(PermanentError, match=message) as caught:
        mapping.shipment_payload(locker_request(**change), RULES)
    assert str(caught.value).startswith("InPost book ")


def test_a_courier_parcel_needs_its_dimensions() -> None:
    with pytest.raises(PermanentError, match="needs the parcel's length, width and height"):
        mapping.shipment_payload(courier_request(parcels=[Parcel(Decimal(1), template="small")]), RULES)


def test_every_listed_status_maps_to_a_hub_status_and_unknown_ones_to_exception() -> None:
    assert set(mapping.STATUS_MAP.values()) <= set(TRACKING_STATUSES)
    assert mapping.hub_status("confirmed") == "pending"
    assert mapping.hub_status("adopted_at_source_branch") == "in_transit"
    assert mapping.hub_status("out_for_delivery") == "out_for_delivery"
    assert mapping.hub_status("ready_to_pickup") == "ready_for_pickup"
    assert mapping.hub_status("delivered") == "delivered"
    assert mapping.hub_status("returned_to_sender") == "returned"
    assert mapping.hub_status("pickup_time_expired") == "exception"
    assert mapping.hub_status("teleported") == "exception"


def test_tracking_events_come_oldest_first_in_utc() -> None:
    body = {"tracking_details": [
        {"status": "delivered", "origin_status": "DOR", "agency": "WAW", "datetime": "2024-06-13T10:15:00.000+02:00"},
        {"status": "out_for_delivery", "origin_status": "WDO", "agency": None,
         "datetime": "2024-06-13T07:00:00.000+02:00"},
        {"status": "taken_by_courier", "origin_status": "PWP", "agency": "KRA", "datetime": "2024-01-12T18:30:00"},
    ]}
    events = mapping.tracking_events("6001", body, {"delivered": "Dostarczona"})
    assert [(e.code, e.status, e.occurred_at, e.location, e.description) for e in events] == [
        ("taken_by_courier", "in_transit", datetime(2024, 1, 12, 17, 30, tzinfo=UTC), "KRA", None),
        ("out_for_delivery", "out_for_delivery", datetime(2024, 6, 13, 5, 0, tzinfo=UTC), None, None),
        ("delivered", "delivered", datetime(2024, 6, 13, 8, 15, tzinfo=UTC), "WAW", "Dostarczona"),
    ]
    assert mapping.tracking_events("6001", {"tracking_details": []}) == []


def test_a_tracking_answer_without_a_time_names_the_call_and_the_field() -> None:
    with pytest.raises(ShipXFormatError, match=r"GET /v1/tracking/6001 tracking_details\[0\]: the answer has no "
                                               r"'datetime'"):
        mapping.tracking_events("6001", {"tracking_details": [{"status": "delivered"}]})


def test_a_confirmed_shipment_without_tracking_numbers_is_retryable_and_named() -> None:
    shipment = {"id": 5, "status": "confirmed", "tracking_number": None, "parcels": [{"id": 1}]}
    with pytest.raises(ShipXFormatError, match="shipment 5 is confirmed but has no tracking number"):
        mapping.booking("R-1", shipment, 1, "GET /v1/shipments/5")


def test_dispatch_order_golden_body_and_our_reference_read_back() -> None:
    window = PickupWindow(date(2024, 6, 12), time(10), time(16))
    request = PickupRequest("PK-77", SENDER, window, [], parcels=3, weight_kg=Decimal("7.5"))
    body = mapping.dispatch_order_payload(request, [11, 12], phone=None, email=None)
    assert body == {
        "shipments": [11, 12],
        "comment": "hub:PK-77 2024-06-12 10:00-16:00",
        "name": "Sklep Rowerowy Sp. z o.o.",
        "phone": "121323123",
        "email": "sklep@example.pl",
        "address": SENDER_JSON["address"],
    }
    assert mapping.dispatch_references({"comments": [{"id": 1, "comment": body["comment"]}]}) == {"PK-77"}
    assert mapping.dispatch_references({"comment": "courier: ring twice hub:PK-78"}) == {"PK-78"}
    assert mapping.dispatch_references({"comment": "nothub:PK-79"}) == set()


def test_a_dispatch_order_needs_a_contact_phone() -> None:
    request = PickupRequest("PK-78", replace(SENDER, phone=None), PickupWindow(date(2024, 6, 12), time(10), time(16)),
                            [], 1, Decimal(1))
    with pytest.raises(PermanentError, match="pickup_contact_phone"):
        mapping.dispatch_order_payload(request, [1], phone=None, email=None)
    assert mapping.dispatch_order_payload(request, [1], phone="+48 500 000 001", email=None)["phone"] == "500000001"


POLICY = PickupPolicy(start=time(10), end=time(16), weekdays=(0, 1, 2, 3, 4), same_day_cutoff=time(12),
                      skip_holidays=True)


@pytest.mark.parametrize(("day", "now", "windows"), [
    (date(2024, 6, 12), datetime(2024, 6, 11, 8, tzinfo=UTC), 1),   # a Wednesday
    (date(2024, 6, 15), datetime(2024, 6, 11, 8, tzinfo=UTC), 0),   # a Saturday
    (date(2024, 11, 1), datetime(2024, 10, 30, 8, tzinfo=UTC), 0),  # All Saints' Day, a Friday
    (date(2024, 5, 30), datetime(2024, 5, 27, 8, tzinfo=UTC), 0),   # Corpus Christi 2024
    (date(2025, 12, 24), datetime(2025, 12, 22, 8, tzinfo=UTC), 0),  # Christmas Eve, free from 2025
    (date(2024, 12, 24), datetime(2024, 12, 22, 8, tzinfo=UTC), 1),  # ... but not in 2024
    (date(2024, 6, 11), datetime(2024, 6, 11, 9, 59, tzinfo=UTC), 1),   # today, 11:59 in Warsaw
    (date(2024, 6, 11), datetime(2024, 6, 11, 10, 0, tzinfo=UTC), 0),   # today, 12:00 in Warsaw: too late
    (date(2024, 6, 10), datetime(2024, 6, 11, 8, tzinfo=UTC), 0),   # yesterday
])
def test_pickup_windows_follow_the_configured_policy(day: date, now: datetime, windows: int) -> None:
    found = mapping.pickup_windows(day, now, POLICY)
    assert len(found) == windows
    if found:
        assert found[0] == PickupWindow(day, time(10), time(16))


def test_easter() -> None:
    from hub.kernel.calendar import easter

    assert [easter(y) for y in (2024, 2025, 2026, 2038)] == [
        date(2024, 3, 31), date(2025, 4, 20), date(2026, 4, 5), date(2038, 4, 25)]


def test_the_target_point_is_the_buyers_locker() -> None:
    body = mapping.shipment_payload(locker_request(pickup_point=PickupPoint("WAW22A", "Paczkomat")), RULES)
    assert body["custom_attributes"]["target_point"] == "WAW22A"
