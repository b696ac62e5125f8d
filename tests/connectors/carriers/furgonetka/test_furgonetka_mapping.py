"""Golden requests and the answers' mapping: exactly what goes on the wire, and what comes back."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, date, datetime, time
from decimal import Decimal

import pytest
from furgonetka_testkit import shipment

from connectors.carriers.furgonetka import mapping
from hub.kernel.errors import PermanentError, RetryableError
from hub.kernel.ports.carrier import Parcel, PickupWindow

GOLDEN_PACKAGE = (
    '{"pickup":{"name":"Anna Magazynowa","company":"Sklep Przykład sp. z o.o.","street":"ul. Składowa 12",'
    '"postcode":"61-897","city":"Poznań","country_code":"PL","email":"magazyn@sklep.example.pl",'
    '"phone":"+48 600 100 200","point":""},'
    '"sender":{"name":"Anna Magazynowa","company":"Sklep Przykład sp. z o.o.","street":"ul. Składowa 12",'
    '"postcode":"61-897","city":"Poznań","country_code":"PL","email":"magazyn@sklep.example.pl",'
    '"phone":"+48 600 100 200","point":""},'
    '"receiver":{"name":"Jan Kowalski","company":"","street":"ul. Długa 5 m. 3","postcode":"30-001",'
    '"city":"Kraków","country_code":"PL","email":"jan.kowalski@example.pl","phone":"+48 501 214 771",'
    '"point":"KRA01M"},'
    '"service_id":11906590,"type":"package","user_reference_number":"SHP-1001",'
    '"parcels":[{"width":20,"depth":30,"height":10,"weight":1.5,"value":150.01,"description":"Kubki ceramiczne"},'
    '{"width":20,"depth":30,"height":11,"weight":2.5,"value":150.00,"description":"Kubki ceramiczne"}],'
    '"additional_services":{"cod":{"amount":149.90,"express":false,"iban":"PL61109010140000071219812874",'
    '"name":"Sklep Przykład sp. z o.o."}}}'
)


def test_golden_package_with_cod_insurance_and_a_locker() -> None:
    request = shipment("SHP-1001", "inpost", parcels=2, cod="149.90", insurance="300.01", point="KRA01M")
    assert mapping.to_json(mapping.package_body(request, 11906590)).decode() == GOLDEN_PACKAGE


def test_golden_package_without_extras_sends_empty_services_and_no_value() -> None:
    body = json.loads(mapping.to_json(mapping.package_body(shipment("SHP-2", "dpd"), 7)))
    assert body["additional_services"] == {}
    assert body["parcels"] == [{"width": 20, "depth": 30, "height": 10, "weight": 1.5, "value": 0.00,
                                "description": "Kubki ceramiczne"}]
    assert body["receiver"]["point"] == "" and body["service_id"] == 7


def test_golden_commands() -> None:
    assert mapping.to_json(mapping.order_command_body("21480001", "zpl", "A6")) == (
        b'{"packages":[{"id":21480001}],"label":{"page_format":"a6","file_format":"zpl"}}')
    assert mapping.to_json(mapping.cancel_command_body("21480001")) == b'{"packages":[{"id":21480001}]}'
    window = PickupWindow(date(2026, 6, 1), time(9), time(12), "ab12")
    assert mapping.to_json(mapping.pickup_command_body(["21480001", "21480002"], window, "ab12")) == (
        b'{"packages":[{"id":21480001},{"id":21480002}],'
        b'"pickup_date":{"date":"2026-06-01","min_time":"09:00","max_time":"12:00","hash":"ab12"}}')
    assert mapping.to_json(mapping.proposals_body(["21480001"], date(2026, 6, 1))) == (
        b'{"packages":[{"id":21480001}],"ready_date":"2026-06-01","days_ahead":1}')


def test_money_keeps_its_digits_on_the_wire() -> None:
    assert mapping.to_json({"a": Decimal("0.10"), "b": [Decimal("1234567.89")], "c": None}) == (
        b'{"a":0.10,"b":[1234567.89],"c":null}')
    with pytest.raises(ValueError, match="finite"):
        mapping.to_json({"a": Decimal("NaN")})


def test_command_uuids_are_stable_uuid5_per_kind_and_reference() -> None:
    order = mapping.command_uuid("order", "SHP-1001")
    assert order == "c6eb27f5-c652-5a9a-9e9d-5d1227ec8ea6"  # must never change: a retry finds the command by it
    assert uuid.UUID(order).version == 5
    assert len({order, mapping.command_uuid("cancel", "SHP-1001"), mapping.command_uuid("order", "SHP-1002")}) == 3


def test_refusals_before_anything_is_sent() -> None:
    request = shipment()
    no_size = type(request)(**{**request.__dict__, "parcels": [Parcel(Decimal("1"), template="small")]})
    with pytest.raises(PermanentError, match=r"parcel 1 has no length_cm, width_cm, height_cm"):
        mapping.package_body(no_size, 1)
    euro = shipment(cod="10.00")
    euro = type(euro)(**{**euro.__dict__, "cod": type(euro.cod)(Decimal("10"), "EUR", "PL61109010140000071219812874")})
    with pytest.raises(PermanentError, match="EUR"):
        mapping.package_body(euro, 1)


def test_booking_from_an_ordered_package() -> None:
    package = {"package_id": 21480003, "service": "poczta", "state": "ordered",
               "parcels": [{"package_no": "00259007738910000001"}, {"package_no": "00259007738910000002"}]}
    booking = mapping.booking("SHP-9", package, "cmd", "GET /packages/21480003")
    assert booking.operator == "poczta-polska" and booking.external_id == "21480003"
    assert [p.tracking_number for p in booking.parcels] == ["00259007738910000001", "00259007738910000002"]
    assert booking.handles == {"package_id": "21480003", "order_command": "cmd", "service": "poczta"}
    assert mapping.booking("S", {**package, "service": "meest"}, "c", "x").operator == "other"


def test_bad_answers_name_the_call_and_the_field() -> None:
    with pytest.raises(RetryableError, match=r"GET /packages/5: the answer has no service"):
        mapping.booking("S", {"package_id": 5, "parcels": [{"package_no": "1"}]}, "c", "GET /packages/5")
    with pytest.raises(RetryableError, match=r"package 5 is ordered but parcels\[\].package_no is not assigned"):
        mapping.booking("S", {"package_id": 5, "service": "dpd", "parcels": [{"package_no": None}]}, "c", "x")
    with pytest.raises(RetryableError, match=r"GET /t: the answer has no tracking\[1\].datetime"):
        mapping.tracking_events(["N"], {"tracking": [{"state": "ordered", "datetime": "2026-06-01T10:00:00+02:00"},
                                                     {"state": "collected"}]}, "GET /t")
    with pytest.raises(RetryableError, match=r"GET /c: expected a JSON object, got list"):
        mapping.command_status([], "GET /c")
    with pytest.raises(RetryableError, match=r"services\[0\].id 'x' is not a number"):
        mapping.service_ids({"services": [{"id": "x", "service": "dpd"}]}, "GET /account/services")


def test_tracking_events_in_utc_oldest_first_with_unknown_states_kept() -> None:
    answer = {"tracking": [
        {"state": "delivered", "status": "Doręczona", "datetime": "2026-06-02T09:15:00+02:00"},
        {"state": "sorting-hub", "status": "W sortowni", "datetime": "2026-06-01 22:00:00"},  # no offset: Warsaw
        {"state": "collected", "status": "Odebrana przez kuriera", "datetime": "2026-06-01T14:03:00+02:00"},
    ]}
    events = mapping.tracking_events(["N1"], answer, "GET /packages/1/tracking")
    assert [(e.code, e.status) for e in events] == [
        ("collected", "in_transit"), ("sorting-hub", "in_transit"), ("delivered", "delivered")]
    assert events[0].occurred_at == datetime(2026, 6, 1, 12, 3, tzinfo=UTC)
    assert events[1].occurred_at == datetime(2026, 6, 1, 20, 0, tzinfo=UTC)
    assert events[2].description == "Doręczona"
    assert mapping.status_of("collect-problem") == "exception" and mapping.status_of("ordered") == "pending"


def test_windows_common_to_every_package_on_the_day() -> None:
    def proposal(day: str, start: str, end: str, hash_: str, available: bool = True) -> dict[str, object]:
        return {"date": day, "min_time": start, "max_time": end, "available": available, "hash": hash_}

    answer = {"packages": [
        {"package_id": 1, "proposals": [proposal("2026-06-01", "12:00", "16:00", "b"),
                                        proposal("2026-06-01", "09:00", "12:00", "a"),
                                        proposal("2026-06-01", "16:00", "18:00", "c", available=False),
                                        proposal("2026-06-02", "09:00", "12:00", "d")]},
        {"package_id": 2, "proposals": [proposal("2026-06-01", "09:00", "12:00", "a"),
                                        proposal("2026-06-01", "12:00", "16:00", "b"),
                                        proposal("2026-06-01", "16:00", "18:00", "c")]},
    ]}
    windows = mapping.windows(answer, date(2026, 6, 1), "POST /p")
    assert [(w.start, w.end, w.proposal_id) for w in windows] == [(time(9), time(12), "a"), (time(12), time(16), "b")]
    assert [w.proposal_id for w in mapping.windows(answer, None, "POST /p")] == ["a", "b"]
    with pytest.raises(RetryableError, match=r"packages\[0\].proposals\[0\].min_time '9' is not a time"):
        mapping.windows({"packages": [{"proposals": [proposal("2026-06-01", "9", "12:00", "a")]}]}, None, "POST /p")
