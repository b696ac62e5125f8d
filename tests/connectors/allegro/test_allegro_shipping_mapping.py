"""Ship with Allegro mapping: the exact bodies we send (golden), what we read back, and refusals of what
Allegro cannot take, all without I/O."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, time
from decimal import Decimal
from typing import Any

import pytest

from connectors.allegro.shipping_mapping import (
    OPERATORS,
    TRACKING_STATUS,
    booking_from_shipment,
    command_id,
    create_command,
    error_text,
    label_request,
    operator_of,
    pickup_windows,
    service_code,
    split_service,
    tracking_events,
)
from hub.kernel.errors import PermanentError, RetryableError
from hub.kernel.ports.carrier import TRACKING_STATUSES, CashOnDelivery, Parcel, ShipmentRequest
from hub.kernel.types import Address, PickupPoint

SENDER = Address(name="Anna Nowak", company="Sklep Nowak sp. z o.o.", street="Prosta 1", city="Warszawa",
                 postal_code="00-001", phone="500 600 700", email="sklep@example.com")
BUYER = Address(name="Jan Kowalski", street="Długa 2/4", city="Kraków", postal_code="30-001",
                phone="+48 600-700-800", email="hamu7udk3p+17454c1b6@allegromail.pl")
METHOD = "c3066682-97a3-42fe-9eb5-3beeccab840c"
CREDENTIALS = "c9e6f40a-3d25-48fc-838c-055ceb1c5bc0"


def request(**overrides: Any) -> ShipmentRequest:
    values: dict[str, Any] = {
        "reference": "SHP-1001", "service": METHOD, "sender": SENDER, "receiver": BUYER,
        "parcels": [Parcel(Decimal("1.25"), 64, 38, 8)], "pickup_point": PickupPoint("KRA01M"),
    }
    values.update(overrides)
    return ShipmentRequest(**values)


def wire(body: dict[str, Any]) -> str:
    """As the client puts it on the wire."""
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False)


def test_golden_locker_shipment_with_cod_and_insurance(allegro_spec: Any) -> None:
    cid = command_id("create", "SHP-1001")
    body = create_command(request(cod=CashOnDelivery(Decimal("149.90"), "PLN", "PL61 1090 1014 0000 0712 1981 2874"),
                                  insurance=Decimal("150.00"), content="Książki"), cid)
    assert wire(body) == (
        '{"commandId":"' + cid + '","input":{"deliveryMethodId":"c3066682-97a3-42fe-9eb5-3beeccab840c",'
        '"sender":{"name":"Anna Nowak","company":"Sklep Nowak sp. z o.o.","street":"Prosta 1","postalCode":"00-001",'
        '"city":"Warszawa","countryCode":"PL","email":"sklep@example.com","phone":"500600700"},'
        '"receiver":{"name":"Jan Kowalski","street":"Długa 2/4","postalCode":"30-001","city":"Kraków",'
        '"countryCode":"PL","email":"hamu7udk3p+17454c1b6@allegromail.pl","phone":"+48600700800","point":"KRA01M"},'
        '"referenceNumber":"SHP-1001","packages":[{"type":"PACKAGE","length":{"value":64,"unit":"CENTIMETER"},'
        '"width":{"value":38,"unit":"CENTIMETER"},"height":{"value":8,"unit":"CENTIMETER"},'
        '"weight":{"value":1.25,"unit":"KILOGRAMS"},"textOnLabel":"Książki"}],'
        '"insurance":{"amount":"150.00","currency":"PLN"},"cashOnDelivery":{"amount":"149.90","currency":"PLN",'
        '"ownerName":"Sklep Nowak sp. z o.o.","iban":"PL61109010140000071219812874"},"labelFormat":"PDF"}}'
    )
    schema = {"$ref": "#/components/schemas/ShipmentCreateCommandDto"}
    assert allegro_spec.strict(schema, body) == []


def test_golden_courier_on_own_contract_two_parcels_zpl(allegro_spec: Any) -> None:
    cid = command_id("create", "SHP-2")
    body = create_command(request(
        reference="SHP-2", service=f"{METHOD}:{CREDENTIALS}", pickup_point=None, label_format="zpl",
        parcels=[Parcel(Decimal("2"), 40, 30, 20), Parcel(Decimal("0.5"), 20, 15, 10)],
        options={"sender_point": "WAW22A", "package_type": "other", "additional_services": "ADDITIONAL_HANDLING, "},
    ), cid)
    data = body["input"]
    assert (data["deliveryMethodId"], data["credentialsId"]) == (METHOD, CREDENTIALS)
    assert data["sender"]["point"] == "WAW22A" and "point" not in data["receiver"]
    assert [p["weight"] for p in data["packages"]] == [{"value": 2, "unit": "KILOGRAMS"},
                                                      {"value": 0.5, "unit": "KILOGRAMS"}]
    assert wire(data["packages"][0]["weight"]) == '{"value":2,"unit":"KILOGRAMS"}'  # a number, never "2"
    assert {p["type"] for p in data["packages"]} == {"OTHER"}
    assert data["labelFormat"] == "ZPL" and data["additionalServices"] == ["ADDITIONAL_HANDLING"]
    assert "cashOnDelivery" not in data and "insurance" not in data
    assert allegro_spec.strict({"$ref": "#/components/schemas/ShipmentCreateCommandDto"}, body) == []


def test_a_locker_template_takes_the_configured_sizes() -> None:
    locker = request(parcels=[Parcel(Decimal("3"), template="medium")])
    body = create_command(locker, "c", {"medium": (64, 38, 19)})
    package = body["input"]["packages"][0]
    assert (package["length"]["value"], package["width"]["value"], package["height"]["value"]) == (64, 38, 19)
    with pytest.raises(PermanentError, match=r"parcel 1 \(template 'medium': map it in the connector's "
                                             r"template_sizes\)\.length_cm is missing"):
        create_command(locker, "c", {"small": (64, 38, 8)})


def test_command_ids_are_ours_and_stable() -> None:
    assert command_id("create", "SHP-1") == command_id("create", "SHP-1")
    assert len({command_id("create", "SHP-1"), command_id("create", "SHP-2"), command_id("pickup", "SHP-1")}) == 3
    # pinned: a changed namespace or key would make every retry after an upgrade book a second shipment
    assert command_id("create", "SHP-1") == "0f1bce89-6c3d-5a67-a5d7-94e4258e191f"


@pytest.mark.parametrize(("change", "words"), [
    ({"receiver": Address("Jan", "Długa 2", "Kraków", "30-001", phone="600700800")}, "receiver's email missing"),
    ({"sender": Address("", "Prosta 1", "Warszawa", "00-001", phone="1", email="a@b.pl")}, "name or company"),
    ({"parcels": [Parcel(Decimal("1"), 10, None, 10)]}, "parcel 1.width_cm is missing"),
    ({"parcels": [Parcel(Decimal("0"), 10, 10, 10)]}, "must be greater than 0"),
    ({"parcels": [Parcel(Decimal("1.0001"), 10, 10, 10)]}, "finer than a gram"),
    ({"parcels": []}, "has no parcels"),
    ({"insurance": Decimal("10.005")}, "more than two decimals"),
    ({"cod": CashOnDelivery(Decimal("10"), "PLN", " ")}, "IBAN"),
    ({"service": ":x"}, "names no delivery method id"),
    ({"options": {"package_type": "BOX"}}, "options.package_type"),
])
def test_requests_allegro_cannot_take_fail_before_any_call(change: dict[str, Any], words: str) -> None:
    with pytest.raises(PermanentError, match=words.replace(".", r"\.").replace("'", ".")):
        create_command(request(**change), command_id("create", "x"))


def test_service_codes() -> None:
    assert split_service(f" {METHOD}:{CREDENTIALS} ") == (METHOD, CREDENTIALS)
    assert split_service(METHOD) == (METHOD, None)
    assert service_code({"id": {"deliveryMethodId": METHOD, "credentialsId": None}}) == METHOD
    assert service_code({"id": {"deliveryMethodId": METHOD, "credentialsId": CREDENTIALS}}) == f"{METHOD}:{CREDENTIALS}"
    with pytest.raises(RetryableError, match=r"id\.deliveryMethodId"):
        service_code({"name": "no id"})


def test_label_request() -> None:
    assert label_request(["s1"], "pdf", "A6") == {"shipmentIds": ["s1"], "pageSize": "A6"}
    assert label_request(["s1", "s2"], "zpl", "A4") == {"shipmentIds": ["s1", "s2"]}  # pageSize: "Only for PDF"


def shipment(**overrides: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"id": "ship-1", "carrier": "ALLEGRO", "labelFormat": "PDF", "transport": ["InPost"],
                           "packages": [{"waybill": "620000000001", "transportingInfo": [{"carrierId": "INPOST"}]}]}
    out.update(overrides)
    return out


def test_booking_from_a_shipment() -> None:
    booking = booking_from_shipment("SHP-1", "cid", shipment(), 1)
    assert booking.external_id == "ship-1" and [p.tracking_number for p in booking.parcels] == ["620000000001"]
    assert booking.operator == "inpost"
    assert booking.handles == {"command_id": "cid", "label_format": "PDF", "carrier_id": "ALLEGRO"}
    with pytest.raises(RetryableError, match="package 1 of shipment ship-1 has no waybill"):
        booking_from_shipment("SHP-1", "cid", shipment(packages=[{"waybill": None}]), 1)
    with pytest.raises(RetryableError, match="has no packages"):
        booking_from_shipment("SHP-1", "cid", shipment(packages=None), 1)
    with pytest.raises(RetryableError, match="has no id"):
        booking_from_shipment("SHP-1", "cid", shipment(id=5), 1)
    with pytest.raises(PermanentError, match="1 packages for 2 parcels"):
        booking_from_shipment("SHP-1", "cid", shipment(), 2)


@pytest.mark.parametrize(("dto", "operator"), [
    (shipment(), "inpost"),  # the transporting carrier wins over carrier ALLEGRO
    (shipment(packages=[{"waybill": "1"}], transport=["ORLEN Paczka"]), "orlen"),
    (shipment(packages=[{"waybill": "1"}], transport=["Poczta Polska"]), "poczta-polska"),
    (shipment(packages=[{"waybill": "1"}], transport=[], carrier="DPD"), "dpd"),
    (shipment(packages=[{"waybill": "1"}], transport=None, carrier="ALLEGRO"), "allegro-one"),
    (shipment(packages=[{"waybill": "1", "transportingInfo": [{"carrierId": "ALLEGRO_ONE_KURIER"}]}]),
     "allegro-one"),
    (shipment(packages=[{"waybill": "1"}], transport=["Packeta"], carrier="PACKETA"), "other"),
])
def test_operator(dto: dict[str, Any], operator: str) -> None:
    assert operator_of(dto) == operator


def test_operators_are_the_hubs_names() -> None:
    hub = {"inpost", "dpd", "poczta-polska", "dhl", "ups", "gls", "fedex", "orlen", "allegro-one", "other"}
    assert set(OPERATORS.values()) <= hub


def test_every_tracking_code_of_the_spec_is_mapped(allegro_spec: Any) -> None:
    codes = allegro_spec.raw["components"]["schemas"]["ParcelTrackingStatus"]["properties"]["code"]["enum"]
    assert set(TRACKING_STATUS) == set(codes)
    assert set(TRACKING_STATUS.values()) <= set(TRACKING_STATUSES)
    assert TRACKING_STATUS["RELEASED_FOR_DELIVERY"] == "out_for_delivery"
    assert TRACKING_STATUS["AVAILABLE_FOR_PICKUP"] == "ready_for_pickup"


def test_tracking_events() -> None:
    answer = {"carrierId": "ALLEGRO", "waybills": [
        {"waybill": "A1", "trackingDetails": {"createdAt": "x", "updatedAt": "x", "statuses": [
            {"occurredAt": "2026-12-01T10:00:00.000Z", "code": "PENDING"},
            {"occurredAt": "2026-12-02T08:30:00+01:00", "code": "DELIVERED", "description": "Odebrana"},
            {"occurredAt": "2026-12-01T12:00:00Z", "code": "SOMETHING_NEW"},
        ]}},
        {"waybill": "B2"},  # not known yet: no events
    ]}
    events = tracking_events(answer, "ALLEGRO")
    assert [(e.tracking_number, e.status, e.code) for e in events] == [
        ("A1", "pending", "PENDING"), ("A1", "delivered", "DELIVERED"), ("A1", "exception", "SOMETHING_NEW")]
    assert events[1].occurred_at == datetime(2026, 12, 2, 7, 30, tzinfo=UTC)
    assert events[1].description == "Odebrana"
    with pytest.raises(RetryableError, match=r"tracking: the answer has no waybills list"):
        tracking_events({"carrierId": "ALLEGRO"}, "ALLEGRO")
    with pytest.raises(RetryableError, match=r"waybill A1 statuses.occurredAt 'yesterday'"):
        tracking_events({"waybills": [{"waybill": "A1", "trackingDetails": {"statuses": [
            {"occurredAt": "yesterday", "code": "PENDING"}]}}]}, "ALLEGRO")
    with pytest.raises(RetryableError, match="has no code"):
        tracking_events({"waybills": [{"waybill": "A1", "trackingDetails": {"statuses": [
            {"occurredAt": "2026-12-01T10:00:00Z"}]}}]}, "ALLEGRO")


def test_pickup_windows_common_to_every_shipment() -> None:
    def items(*slots: str) -> list[dict[str, str]]:
        return [{"id": s.replace("-", "").replace(":", "").replace(" ", ""), "name": s} for s in slots]

    answer = [{"proposals": [
        {"shipmentId": "s1", "proposalItems": items("2026-12-07 09:00-12:00", "2026-12-07 12:00-15:00",
                                                    "2026-12-08 09:00-12:00")},
        {"shipmentId": "s2", "proposalItems": items("2026-12-07 12:00-15:00")},
    ]}]
    windows = pickup_windows(answer, ["s1", "s2"], date(2026, 12, 7))
    assert [(w.start, w.end, w.proposal_id) for w in windows] == [(time(12), time(15), "202612071200" + "1500")]
    assert pickup_windows(answer, ["s1"], date(2026, 12, 9)) == []
    # an item named otherwise is read from its id, as in the spec's example '2023071210001300'
    odd = [{"proposals": [{"shipmentId": "s1", "proposalItems": [{"id": "2023071210001300", "name": "Odbiór A"}]}]}]
    (window,) = pickup_windows(odd, ["s1"], date(2023, 7, 12))
    assert (window.start, window.end) == (time(10), time(13))
    with pytest.raises(RetryableError, match="pickup-proposals: the answer is not a list"):
        pickup_windows({"proposals": []}, ["s1"], date(2023, 7, 12))


def test_error_text_keeps_allegros_words() -> None:
    errors = [{"code": "VALIDATION_ERROR", "message": "May not be null", "userMessage": "Podaj e-mail",
               "path": "receiver.email"}, {"message": "Other"}]
    assert error_text(errors) == "Podaj e-mail [VALIDATION_ERROR] (field receiver.email); Other"
    assert error_text(None) == "no reason given"
