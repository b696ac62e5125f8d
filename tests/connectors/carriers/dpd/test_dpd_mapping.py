"""Golden requests (the exact XML the connector sends for a given request) and the pure mapping rules."""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from decimal import Decimal
from typing import Any

import pytest
from dpd_testkit import RECEIVER, SENDER, shipment, wire
from lxml import etree

from connectors.carriers.dpd import mapping
from connectors.carriers.dpd.simulator import SOAP, DpdSimulator
from hub.kernel.errors import PermanentError, RetryableError
from hub.kernel.ports.carrier import Booking, Parcel, PickupRequest, PickupWindow
from hub.kernel.types import Address, PickupPoint

AUTH = "<authDataV1><login>test</login><masterFid>1495</masterFid><password>thetu4Ee</password></authDataV1>"


def shape(node: etree._Element) -> tuple[Any, ...]:
    """Element names (with namespace), their text and children, in order: what the golden files fix."""
    return (node.tag, (node.text or "").strip(), [shape(child) for child in node])


def sent(operation: str, body: dict[str, Any]) -> tuple[Any, ...]:
    carrier = wire(DpdSimulator())
    envelope = carrier.client.message(operation, body)
    assert envelope.tag == f"{{{SOAP}}}Envelope"
    return shape(envelope.find(f"{{{SOAP}}}Body")[0])


def golden(xml: str) -> tuple[Any, ...]:
    return shape(etree.fromstring(xml, parser=etree.XMLParser(remove_blank_text=True)))


def test_golden_generate_packages_numbers_v4() -> None:
    request = shipment(cod=Decimal("123.4"), insurance=Decimal("1500"), order_external_id="1234567890")
    body = mapping.generation_request(request, sender_fid=1495, payer_type="SENDER", master_fid=1495)
    assert sent("generatePackagesNumbersV4", body) == golden(f"""
    <ns2:generatePackagesNumbersV4 xmlns:ns2="http://dpdservices.dpd.com.pl/">
      <openUMLFeV3><packages>
        <parcels><content>książki</content><customerData1>ORD-1001</customerData1><reference>ORD-1001-1</reference>
          <sizeX>30</sizeX><sizeY>20</sizeY><sizeZ>10</sizeZ><weight>1.5</weight></parcels>
        <parcels><content>książki</content><customerData1>ORD-1001</customerData1><reference>ORD-1001-2</reference>
          <weight>0.3</weight></parcels>
        <payerType>SENDER</payerType>
        <receiver><address>ul. Polna 200</address><city>Radom</city><countryCode>PL</countryCode>
          <email>anna.nowak@example.pl</email><name>Anna Nowak</name><phone>600100200</phone>
          <postalCode>26605</postalCode></receiver>
        <ref1>ORD-1001</ref1><ref2>1234567890</ref2><reference>ORD-1001</reference>
        <sender><address>ul. Mineralna 15</address><city>Warszawa</city><company>Sklep ABC</company>
          <countryCode>PL</countryCode><email>sklep@example.pl</email><fid>1495</fid><name>Jan Kowalski</name>
          <phone>225775500</phone><postalCode>02274</postalCode></sender>
        <services><cod><amount>123.40</amount><currency>PLN</currency></cod>
          <declaredValue><amount>1500.00</amount><currency>PLN</currency></declaredValue></services>
      </packages></openUMLFeV3>
      <pkgNumsGenerationPolicyV1>ALL_OR_NOTHING</pkgNumsGenerationPolicyV1><langCode>PL</langCode>{AUTH}
    </ns2:generatePackagesNumbersV4>""")


def test_golden_dpd_pickup_point_and_third_party_payer() -> None:
    request = shipment("ORD-7", service="dpd-pickup", pickup_point=PickupPoint(id="PL11805"),
                       parcels=[Parcel(weight_kg=Decimal("2"))])
    package = mapping.package(request, sender_fid=2001, payer_type="THIRD_PARTY", master_fid=1495)
    assert package["services"] == {"dpdPickup": {"pudo": "PL11805"}}
    assert package["thirdPartyFID"] == 1495 and package["sender"]["fid"] == 2001
    assert package["parcels"] == [{"reference": "ORD-7-1", "customerData1": "ORD-7", "weight": Decimal("2"),
                                   "content": "książki"}]


def test_golden_label_zpl_on_the_label_printer() -> None:
    body = {"dpdServicesParamsV1": mapping.services_params("DOMESTIC", package_ids=["640601"]),
            "outputDocFormatV1": "ZPL", "outputDocPageFormatV1": "LBL_PRINTER", "outputLabelType": "BIC3"}
    assert sent("generateSpedLabelsV4", body) == golden(f"""
    <ns2:generateSpedLabelsV4 xmlns:ns2="http://dpdservices.dpd.com.pl/">
      <dpdServicesParamsV1><policy>STOP_ON_FIRST_ERROR</policy>
        <session><packages><packageId>640601</packageId></packages><sessionType>DOMESTIC</sessionType></session>
      </dpdServicesParamsV1>
      <outputDocFormatV1>ZPL</outputDocFormatV1><outputDocPageFormatV1>LBL_PRINTER</outputDocPageFormatV1>
      <outputLabelType>BIC3</outputLabelType>{AUTH}
    </ns2:generateSpedLabelsV4>""")


def _pickup_request() -> PickupRequest:
    booking = Booking(reference="ORD-1001", external_id="640601", parcels=[], operator="dpd",
                      handles={"session_type": "DOMESTIC", "package_id": "640601"})
    return PickupRequest(reference="PU-1", address=SENDER, window=PickupWindow(date(2030, 1, 7), time(14), time(16)),
                         bookings=[booking], parcels=3, weight_kg=Decimal("4.25"))


def test_golden_pickup_insert_and_cancel() -> None:
    insert = mapping.pickup_insert(_pickup_request(), payer_fid=1495, payer_name=None, customer_name=None)
    assert sent("packagesPickupCallV4", {"dpdPickupParamsV3": insert}) == golden(f"""
    <ns2:packagesPickupCallV4 xmlns:ns2="http://dpdservices.dpd.com.pl/"><dpdPickupParamsV3>
      <operationType>INSERT</operationType><orderType>DOMESTIC</orderType>
      <pickupCallSimplifiedDetails>
        <packagesParams><dox>false</dox><doxCount>0</doxCount><pallet>false</pallet><palletsCount>0</palletsCount>
          <parcelsCount>3</parcelsCount><parcelsWeight>4.25</parcelsWeight><standardParcel>true</standardParcel>
        </packagesParams>
        <pickupCustomer><customerFullName>Jan Kowalski</customerFullName><customerName>Jan Kowalski</customerName>
          <customerPhone>225775500</customerPhone></pickupCustomer>
        <pickupPayer><payerName>Sklep ABC</payerName><payerNumber>1495</payerNumber></pickupPayer>
        <pickupSender><senderAddress>ul. Mineralna 15</senderAddress><senderCity>Warszawa</senderCity>
          <senderFullName>Jan Kowalski</senderFullName><senderName>Sklep ABC</senderName>
          <senderPhone>225775500</senderPhone><senderPostalCode>02274</senderPostalCode></pickupSender>
      </pickupCallSimplifiedDetails>
      <pickupDate>2030-01-07</pickupDate><pickupTimeFrom>14:00</pickupTimeFrom><pickupTimeTo>16:00</pickupTimeTo>
      <waybillsReady>true</waybillsReady>
    </dpdPickupParamsV3>{AUTH}</ns2:packagesPickupCallV4>""")
    cancel = mapping.pickup_cancel("20300107002", 61706749)
    assert sent("packagesPickupCallV4", {"dpdPickupParamsV3": cancel}) == golden(f"""
    <ns2:packagesPickupCallV4 xmlns:ns2="http://dpdservices.dpd.com.pl/"><dpdPickupParamsV3>
      <checkSum>61706749</checkSum><operationType>CANCEL</operationType><orderNumber>20300107002</orderNumber>
    </dpdPickupParamsV3>{AUTH}</ns2:packagesPickupCallV4>""")


@pytest.mark.parametrize(("raw", "wire_form"), [("02-274", "02274"), ("02274", "02274"), (" 26-605 ", "26605"),
                                                ("SW1A 1AA", "SW1A1AA")])
def test_postal_codes_go_without_the_dash(raw: str, wire_form: str) -> None:
    assert mapping.postal_code(raw) == wire_form


def test_amounts_are_strings_with_two_decimals_from_decimals() -> None:
    assert mapping.amount(Decimal("123.4"), what="COD") == "123.40"
    assert mapping.amount(Decimal("0.005"), what="COD") == "0.01"
    with pytest.raises(PermanentError, match="must be positive"):
        mapping.amount(Decimal("0"), what="COD")


def test_requests_dpd_cannot_take_are_refused_before_sending() -> None:
    with pytest.raises(PermanentError, match=r"DPD's minimum of 0\.01 kg"):
        mapping.package(shipment(parcels=[Parcel(weight_kg=Decimal("0.001"))]), sender_fid=1, payer_type="SENDER",
                        master_fid=1)
    with pytest.raises(PermanentError, match="needs the buyer's DPD Pickup point"):
        mapping.package(shipment(service="dpd-pickup"), sender_fid=1, payer_type="SENDER", master_fid=1)
    with pytest.raises(PermanentError, match="at most 50"):  # the label call could never find it again
        mapping.package(shipment("R" * 51), sender_fid=1, payer_type="SENDER", master_fid=1)
    with pytest.raises(PermanentError, match="must be unique"):
        mapping.package(shipment(parcels=[Parcel(Decimal(1), reference="X"), Parcel(Decimal(1), reference="X")]),
                        sender_fid=1, payer_type="SENDER", master_fid=1)
    long_city = Address(name="A", street="B", city="C" * 51, postal_code="00-001")
    with pytest.raises(PermanentError, match=r"receiver\.city is 51 characters long"):
        mapping.package(shipment(receiver=long_city), sender_fid=1, payer_type="SENDER", master_fid=1)


def _answer(status: str = "OK", packages: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    if packages is None:
        packages = [{"Status": "OK", "PackageId": 640601, "Reference": "ORD-1001", "ValidationDetails": None,
                     "Parcels": {"Parcel": [
                         {"Status": "OK", "ParcelId": 2, "Reference": "ORD-1001-2", "Waybill": "W2"},
                         {"Status": "OK", "ParcelId": 1, "Reference": "ORD-1001-1", "Waybill": "W1"}]}}]
    return {"Status": status, "SessionId": 610401, "BeginTime": None, "EndTime": None,
            "Packages": {"Package": packages}}


def test_generation_answer_in_the_requests_parcel_order() -> None:
    booking = mapping.read_generation(_answer(), shipment(), {"session_type": "DOMESTIC"})
    assert isinstance(booking, Booking)
    assert [p.tracking_number for p in booking.parcels] == ["W1", "W2"]  # matched by our parcel references
    assert booking.external_id == "640601" and booking.operator == "dpd"
    assert booking.handles == {"session_type": "DOMESTIC", "package_id": "640601"}


def test_generation_answer_duplicate_refusal_and_missing_fields() -> None:
    duplicate = _answer("DUPLICATED_PACKAGE_REFERENCE", [{"Status": "DUPLICATED_PACKAGE_REFERENCE"}])
    assert mapping.read_generation(duplicate, shipment(), {}) == mapping.Duplicate("DUPLICATED_PACKAGE_REFERENCE")
    refused = _answer("INCORRECT_DATA", [{"Status": "INCORRECT_DATA", "ValidationDetails": {"ValidationInfo": [
        {"ErrorId": 1502, "ErrorCode": "INCORRECT_RECEIVER_POSTAL_CODE", "FieldNames": "ReceiverPostalCode",
         "Info": "Incorrect recipient post code format(055s00)"}]}}])
    with pytest.raises(PermanentError) as refusal:
        mapping.read_generation(refused, shipment(), {})
    assert str(refusal.value) == (
        "DPD generatePackagesNumbersV4 for ORD-1001: DPD answered INCORRECT_DATA: INCORRECT_RECEIVER_POSTAL_CODE "
        "(ReceiverPostalCode): Incorrect recipient post code format(055s00)")
    with pytest.raises(RetryableError, match="DB_ERROR"):
        mapping.read_generation(_answer("DB_ERROR", [{"Status": "DB_ERROR"}]), shipment(), {})
    no_id = _answer()
    no_id["Packages"]["Package"][0]["PackageId"] = None
    with pytest.raises(RetryableError, match=r"lacks Packages\.Package\.PackageId; the next attempt finds"):
        mapping.read_generation(no_id, shipment(), {})
    with pytest.raises(RetryableError, match="no return element"):
        mapping.read_generation(None, shipment(), {})


def test_page_formats_and_zpl_needs_the_label_printer() -> None:
    assert mapping.page_format("pdf", "A4") == ("PDF", "A4")
    assert mapping.page_format("pdf", "A6") == ("PDF", "LBL_PRINTER")
    assert mapping.page_format("zpl", "A6") == ("ZPL", "LBL_PRINTER")
    with pytest.raises(PermanentError, match="ZPL only for label printers"):
        mapping.page_format("zpl", "A4")


def test_documents_must_be_what_was_asked_for() -> None:
    assert mapping.check_document(b"%PDF-1.4 ...", "pdf", "op") == b"%PDF-1.4 ..."
    with pytest.raises(PermanentError, match="not a PDF"):
        mapping.check_document(b"<html>", "pdf", "op")
    with pytest.raises(PermanentError, match="not ZPL"):
        mapping.check_document(b"%PDF-1.4", "zpl", "op")


def test_pickup_windows_from_ranges_with_the_lead_time() -> None:
    answer = {"status": "OK", "ranges": [None, {"offset": None, "range": None},
                                         {"offset": 120, "range": "14:00-16:00"},
                                         {"offset": 120, "range": "15:00-17:00"},
                                         {"offset": 60, "range": "9:00-11:00"}]}
    day = date(2030, 1, 7)
    windows = mapping.read_windows(answer, day, datetime(2030, 1, 1, tzinfo=UTC))
    assert [(w.start, w.end) for w in windows] == [(time(9), time(11)), (time(14), time(16)), (time(15), time(17))]
    # 12:30 UTC is 13:30 in Warsaw (CET): 14:00 starts in 30 minutes, less than the 120 DPD needs; 15:00
    # is 90 minutes away, still too close; 17:00 would do but is not offered here
    at_1330 = datetime(2030, 1, 7, 12, 30, tzinfo=UTC)
    assert mapping.read_windows(answer, day, at_1330) == []
    at_1130 = datetime(2030, 1, 7, 10, 30, tzinfo=UTC)  # 11:30 local: 14:00 is 150 minutes away
    assert [w.start for w in mapping.read_windows(answer, day, at_1130)] == [time(14), time(15)]
    assert mapping.read_windows(answer, date(2029, 12, 31), datetime(2030, 1, 1, tzinfo=UTC)) == []
    with pytest.raises(PermanentError, match="not hh:mm-hh:mm"):
        mapping.read_windows({"status": "OK", "ranges": [{"offset": 0, "range": "rano"}]}, day,
                             datetime(2030, 1, 1, tzinfo=UTC))
    with pytest.raises(PermanentError, match="status 'WRONG_POSTAL_PATTERN'"):
        mapping.read_windows({"status": "WRONG_POSTAL_PATTERN", "ranges": []}, day, datetime(2030, 1, 1, tzinfo=UTC))


def test_pickup_needs_a_phone_and_one_kind_of_session() -> None:
    request = _pickup_request()
    no_phone = Address(name="A", street="B", city="C", postal_code="00-001")
    with pytest.raises(PermanentError, match="has no phone"):
        mapping.pickup_insert(PickupRequest(request.reference, no_phone, request.window, request.bookings, 1,
                                            Decimal(1)), payer_fid=1, payer_name=None, customer_name=None)
    abroad = Booking("X", "1", [], "dpd", {"session_type": "INTERNATIONAL"})
    mixed = PickupRequest("PU-2", SENDER, request.window, [*request.bookings, abroad], 2, Decimal(2))
    with pytest.raises(PermanentError, match="separate courier orders"):
        mapping.pickup_insert(mixed, payer_fid=1, payer_name=None, customer_name=None)


def test_session_type_by_destination() -> None:
    assert mapping.session_type(RECEIVER.country) == "DOMESTIC"
    assert mapping.session_type("de") == "INTERNATIONAL"
