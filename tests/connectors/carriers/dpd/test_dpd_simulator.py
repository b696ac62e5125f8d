"""The simulator on its own, driven with raw SOAP: DPD's documented faults for missing required elements,
its validation answers, and answers that fit the vendored XSD (checked for every answer by conftest.sim)."""

from __future__ import annotations

import pytest
import requests
from dpd_testkit import Checks, check_answer
from lxml import etree

from connectors.carriers.dpd.simulator import LOGIN, NS, PASSWORD, PATH, SOAP, DpdSimulator, minimal_pdf

URL = "https://dpd.sim.example" + PATH
AUTH = f"<authDataV1><login>{LOGIN}</login><masterFid>1495</masterFid><password>{PASSWORD}</password></authDataV1>"
PACKAGE = """<packages>
  <parcels><reference>{ref}-1</reference><weight>1.2</weight></parcels>
  <payerType>SENDER</payerType>
  <receiver><address>Ul. Polna 200</address><city>Radom</city><countryCode>PL</countryCode><name>Antoni Nowak</name>
    <postalCode>26605</postalCode></receiver>
  <reference>{ref}</reference>
  <sender><address>Ul. Lesna 100</address><city>Warszawa</city><company>Sklep ABC</company><countryCode>PL</countryCode>
    <fid>1495</fid><postalCode>02274</postalCode></sender>
</packages>"""


def post(sim: DpdSimulator, operation: str, inner: str) -> tuple[int, etree._Element]:
    envelope = (f'<S:Envelope xmlns:S="{SOAP}"><S:Header/><S:Body><ns2:{operation} xmlns:ns2="{NS}">{inner}'
                f"</ns2:{operation}></S:Body></S:Envelope>")
    session = requests.Session()
    session.mount(URL, sim.adapter())
    response = session.post(URL, data=envelope.encode(), headers={"Content-Type": "text/xml; charset=utf-8"})
    check_answer(response.content, response.status_code, operation)
    return response.status_code, etree.fromstring(response.content)


def fault_of(root: etree._Element) -> tuple[str | None, str | None]:
    fault = root.find(f"{{{SOAP}}}Body/{{{SOAP}}}Fault")
    assert fault is not None
    return fault.findtext("faultstring"), fault.findtext(f"detail/{{{NS}}}DPDServiceException/message")


@pytest.mark.parametrize(("operation", "inner", "message"), [
    ("generatePackagesNumbersV4", "<langCode>PL</langCode>", "AuthData is null"),
    ("generatePackagesNumbersV4", "<langCode>PL</langCode><authDataV1><login>x</login><password>y</password>"
                                  "</authDataV1>", "Login failed"),
    ("generatePackagesNumbersV4", f"<langCode>PL</langCode>{AUTH}", "Parameter openUMLV cannot be null"),
    ("generatePackagesNumbersV4", f"<openUMLFeV3/><langCode>PL</langCode>{AUTH}", "One of '(Package)' is expected."),
    ("generateSpedLabelsV4", f"<outputDocFormatV1>PDF</outputDocFormatV1>{AUTH}",
     "Parameter dpdServicesParamsV1 cannot be null"),
    ("generateProtocolV2", AUTH, "Parameter dpdServicesParamsV1 cannot be null"),
    ("packagesPickupCallV4", AUTH, "Parameter dpdPickupCallParamsV3 cannot be null"),
    ("getCourierOrderAvailabilityV1", AUTH, "Parameter senderPlaceV1 cannot be null"),
    ("findPostalCodeV1", AUTH, "operation findPostalCodeV1 not simulated"),
])
def test_missing_required_elements_get_dpds_fault(sim: DpdSimulator, operation: str, inner: str,
                                                  message: str) -> None:
    status, root = post(sim, operation, inner)
    assert status == 500
    assert fault_of(root) == (message, message)
    assert sim.packages == {} and sim.orders == {}


def test_a_request_breaking_the_xsd_is_a_client_fault(sim: DpdSimulator, checks: Checks) -> None:
    checks.client_faults_ok = True
    status, root = post(sim, "generatePackagesNumbersV4", f"<openUMLFeV3><bogus/></openUMLFeV3>{AUTH}")
    assert status == 500
    faultstring, _ = fault_of(root)
    assert faultstring is not None and faultstring.startswith("Schema validation failed")
    assert root.findtext(f".//{{{SOAP}}}Fault/faultcode") == "S:Client"


def test_generation_then_labels_by_session_and_duplicates(sim: DpdSimulator) -> None:
    body = f"<openUMLFeV3>{PACKAGE.format(ref='R-1')}</openUMLFeV3>" \
           f"<pkgNumsGenerationPolicyV1>ALL_OR_NOTHING</pkgNumsGenerationPolicyV1><langCode>PL</langCode>{AUTH}"
    status, root = post(sim, "generatePackagesNumbersV4", body)
    ret = root.find(f".//{{{NS}}}generatePackagesNumbersV4Response/return")
    assert status == 200 and ret is not None
    assert [child.tag for child in ret] == ["Status", "SessionId", "Packages"]
    waybill = ret.findtext("Packages/Package/Parcels/Parcel/Waybill")
    assert waybill is not None and len(waybill) == 14 and waybill.endswith("S")  # like the demo's 0000001052539S
    session_id = ret.findtext("SessionId")

    # the documentation's own way: labels for a whole session
    labels = (f"<dpdServicesParamsV1><policy>IGNORE_ERRORS</policy><session><sessionId>{session_id}</sessionId>"
              "<sessionType>DOMESTIC</sessionType></session></dpdServicesParamsV1>"
              f"<outputDocFormatV1>PDF</outputDocFormatV1><outputDocPageFormatV1>A4</outputDocPageFormatV1>{AUTH}")
    status, root = post(sim, "generateSpedLabelsV4", labels)
    assert status == 200
    assert root.findtext(".//session/packages/parcels/waybill") == waybill
    assert root.findtext(".//session/statusInfo/status") == "OK"

    status, root = post(sim, "generatePackagesNumbersV4", body)  # the same reference again
    assert root.findtext(".//return/Status") == "DUPLICATED_PACKAGE_REFERENCE"
    assert root.find(".//return/SessionId") is None and len(sim.packages) == 1
    other_parcel_ref = body.replace("<reference>R-1</reference>", "<reference>R-2</reference>")
    status, root = post(sim, "generatePackagesNumbersV4", other_parcel_ref)
    assert root.findtext(".//return/Status") == "DUPLICATED_PARCEL_REFERENCE" and len(sim.packages) == 1


def test_validation_answers_follow_dpds_error_codes(sim: DpdSimulator) -> None:
    package = PACKAGE.format(ref="R-9").replace("<postalCode>26605</postalCode>", "<postalCode>26-605</postalCode>")
    body = (f"<openUMLFeV3>{package}</openUMLFeV3><pkgNumsGenerationPolicyV1>ALL_OR_NOTHING"
            f"</pkgNumsGenerationPolicyV1><langCode>PL</langCode>{AUTH}")
    _, root = post(sim, "generatePackagesNumbersV4", body)
    info = root.find(".//ValidationDetails/ValidationInfo")
    assert root.findtext(".//return/Status") == "INCORRECT_DATA" and info is not None
    assert (info.findtext("ErrorId"), info.findtext("ErrorCode"), info.findtext("FieldNames")) == (
        "1502", "INCORRECT_RECEIVER_POSTAL_CODE", "ReceiverPostalCode")
    _, root = post(sim, "generatePackagesNumbersV4", body.replace("<langCode>PL", "<langCode>EN"))
    assert root.findtext(".//return/Status") == "UNSUPPORTED_LANG_CODE"
    assert sim.packages == {}


def test_availability_answers_like_the_documentations_example(sim: DpdSimulator) -> None:
    _, root = post(sim, "getCourierOrderAvailabilityV1",
                   f"<senderPlaceV1><countryCode>PL</countryCode><zipCode>02275</zipCode></senderPlaceV1>{AUTH}")
    ranges = root.findall(".//return/ranges")
    assert [r.findtext("range") for r in ranges] == [None, "14:00-16:00", "15:00-17:00", "17:00-19:00"]
    assert root.findtext(".//return/status") == "OK"
    _, root = post(sim, "getCourierOrderAvailabilityV1",
                   f"<senderPlaceV1><countryCode>PL</countryCode><zipCode>02-275</zipCode></senderPlaceV1>{AUTH}")
    assert root.findtext(".//return/status") == "WRONG_POSTAL_PATTERN"


def test_pickup_insert_requires_the_documented_fields(sim: DpdSimulator) -> None:
    inner = ("<dpdPickupParamsV3><operationType>INSERT</operationType><orderType>DOMESTIC</orderType>"
             "<pickupDate>2030-01-07</pickupDate><pickupTimeFrom>14:00</pickupTimeFrom>"
             f"<pickupTimeTo>16:00</pickupTimeTo><waybillsReady>true</waybillsReady></dpdPickupParamsV3>{AUTH}")
    _, root = post(sim, "packagesPickupCallV4", inner)
    assert root.findtext(".//return/statusInfo/status") == "INCORRECT_DATA"
    fields = root.findtext(".//return/statusInfo/errorDetails/fields") or ""
    assert "pickupPayer/payerNumber" in fields and "pickupSender/senderPhone" in fields
    assert sim.orders == {}


def test_faults_on_demand_are_one_shot_and_per_operation(sim: DpdSimulator) -> None:
    sim.inject("getCourierOrderAvailabilityV1", "503")
    body = f"<senderPlaceV1><countryCode>PL</countryCode><zipCode>02275</zipCode></senderPlaceV1>{AUTH}"
    session = requests.Session()
    session.mount(URL, sim.adapter())
    envelope = (f'<S:Envelope xmlns:S="{SOAP}"><S:Body><ns2:getCourierOrderAvailabilityV1 xmlns:ns2="{NS}">'
                f"{body}</ns2:getCourierOrderAvailabilityV1></S:Body></S:Envelope>").encode()
    assert session.post(URL, data=envelope).status_code == 503
    assert session.post(URL, data=envelope).status_code == 200
    with pytest.raises(ValueError, match="unknown fault"):
        sim.inject("*", "gremlins")


def test_minimal_pdf_is_a_real_pdf() -> None:
    import io

    import pypdf

    reader = pypdf.PdfReader(io.BytesIO(minimal_pdf([["a (b)"], ["c"]])))
    assert len(reader.pages) == 2 and "a (b)" in reader.pages[0].extract_text()
