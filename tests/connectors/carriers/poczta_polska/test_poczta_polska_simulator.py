"""The simulator speaks en.wsdl: requests are validated against the vendor's schema (a missing required
element gets a SOAP Client fault), answers are valid against it (the conftest checks every answer when a
test ends; here a few are checked on the spot), business refusals are errorType elements."""

from __future__ import annotations

import base64

import pytest
import requests
from lxml import etree
from poczta_polska_testkit import LOGIN, NS, PASSWORD, SOAP_ENV, URL, body_of, vendor_schema

from connectors.carriers.poczta_polska.simulator import WSDL_PATH, ENSimulator

GUID_A, GUID_B = "A" * 32, "B" * 32


def post(sim: ENSimulator, inner: str, *, password: str = PASSWORD) -> requests.Response:
    session = requests.Session()
    session.mount("https://", sim.adapter())
    body = (f'<soap-env:Envelope xmlns:soap-env="{SOAP_ENV}"><soap-env:Body>{inner}</soap-env:Body>'
            "</soap-env:Envelope>")
    return session.post(URL, data=body.encode(), auth=(LOGIN, password), headers={"Content-Type": "text/xml"})


def answer(response: requests.Response) -> etree._Element:
    element = body_of(response.content)
    assert vendor_schema().validate(element), vendor_schema().error_log
    return element


def fault_of(response: requests.Response) -> tuple[str, str]:
    fault = body_of(response.content)
    assert fault.tag == f"{{{SOAP_ENV}}}Fault" and response.status_code == 500
    return fault.findtext("faultcode") or "", fault.findtext("faultstring") or ""


PACZKA = ('<przesylki xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xsi:type="en:paczkaPocztowaType" '
          'guid="{guid}" kategoria="EKONOMICZNA" gabaryt="GABARYT_A" masa="1000">'
          '<adres nazwa="Jan" ulica="Długa" numerDomu="5" miejscowosc="Kraków" kodPocztowy="30001"/></przesylki>')


def add(sim: ENSimulator, guid: str, bufor: int | None = None) -> etree._Element:
    extra = f"<idBufor>{bufor}</idBufor>" if bufor is not None else ""
    return answer(post(sim, f'<en:addShipment xmlns:en="{NS}">{PACZKA.format(guid=guid)}{extra}</en:addShipment>'))


def test_a_request_missing_a_required_element_gets_a_client_fault(sim: ENSimulator) -> None:
    code, text = fault_of(post(sim, f'<en:addShipment xmlns:en="{NS}"><idBufor>1</idBufor></en:addShipment>'))
    assert code == "SOAP-ENV:Client" and "przesylki" in text
    code, text = fault_of(post(sim, f'<en:getEnvelopeStatus xmlns:en="{NS}"/>'))
    assert code == "SOAP-ENV:Client" and "idEnvelope" in text
    assert sim.parcels() == {} and [x.status for x in sim.log] == [500, 500]


def test_an_abstract_przesylka_without_its_subtype_is_refused(sim: ENSimulator) -> None:
    code, text = fault_of(post(sim, f'<en:addShipment xmlns:en="{NS}"><przesylki guid="{GUID_A}"/></en:addShipment>'))
    assert code == "SOAP-ENV:Client" and "abstract" in text


def test_a_request_with_a_dtd_is_refused(sim: ENSimulator) -> None:
    session = requests.Session()
    session.mount("https://", sim.adapter())
    body = (f'<!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]><soap-env:Envelope xmlns:soap-env="{SOAP_ENV}">'
            f'<soap-env:Body><en:hello xmlns:en="{NS}"><in>&e;</in></en:hello></soap-env:Body></soap-env:Envelope>')
    code, text = fault_of(session.post(URL, data=body.encode(), auth=(LOGIN, PASSWORD)))
    assert code == "SOAP-ENV:Client" and "DTD" in text


def test_auth_wsdl_and_unknown_operations(sim: ENSimulator) -> None:
    assert post(sim, f'<en:hello xmlns:en="{NS}"><in>x</in></en:hello>', password="wrong").status_code == 401
    session = requests.Session()
    session.mount("https://", sim.adapter())
    assert session.get(URL + "?wsdl").content == WSDL_PATH.read_bytes()
    code, text = fault_of(post(sim, f'<en:getKarty xmlns:en="{NS}"/>'))
    assert code == "SOAP-ENV:Server" and "not implemented" in text


def test_small_operations_answer_by_the_schema(sim: ENSimulator) -> None:
    assert answer(post(sim, f'<en:hello xmlns:en="{NS}"><in>EN</in></en:hello>')).findtext("out") == "Hello EN"
    guids = answer(post(sim, f'<en:getGuid xmlns:en="{NS}"><ilosc>3</ilosc></en:getGuid>')).findall("guid")
    assert len({g.text for g in guids}) == 3 and all(len(g.text or "") == 32 for g in guids)
    (urzad,) = answer(post(sim, f'<en:getUrzedyNadania xmlns:en="{NS}"/>'))
    assert urzad.get("urzadNadania") == "263165"


def test_buffer_envelope_and_their_errors(sim: ENSimulator) -> None:
    (retval,) = add(sim, GUID_A)
    number = retval.get("numerNadania") or ""
    assert retval.get("guid") == GUID_A and 10 <= len(number) <= 20 and retval.find("error") is None
    (duplicate,) = add(sim, GUID_A)
    assert duplicate.find("error").get("errorNumber") == "102" and duplicate.get("numerNadania") is None
    (unknown_buffer,) = add(sim, GUID_B, bufor=4242)
    assert "4242" in (unknown_buffer.find("error").get("errorDesc") or "")

    (przesylka,) = answer(post(sim, f'<en:getEnvelopeBufor xmlns:en="{NS}"/>'))
    assert przesylka.get("guid") == GUID_A and przesylka.get("numerNadania") == number
    assert przesylka.get("{http://www.w3.org/2001/XMLSchema-instance}type") == "en:paczkaPocztowaType"

    print_each = (f'<en:getPrintForParcel xmlns:en="{NS}"><guid>{GUID_A}</guid><type><kind>ADDRESS_LABEL_BY_GUID'
                  '</kind><method>EACH_PARCEL_SEPARATELY</method><format>ZPL_FORMAT</format></type>'
                  '</en:getPrintForParcel>')
    (result,) = answer(post(sim, print_each))
    assert result.findtext("guid") == GUID_A and base64.b64decode(result.findtext("print") or "").startswith(b"^XA")

    sent = answer(post(sim, f'<en:sendEnvelope xmlns:en="{NS}"><urzadNadania>263165</urzadNadania></en:sendEnvelope>'))
    id_envelope = sent.findtext("idEnvelope")
    assert sent.findtext("envelopeStatus") == "WYSLANY" and sim.buffers == {}
    cleared = answer(post(sim, f'<en:clearEnvelopeByGuids xmlns:en="{NS}"><guid>{GUID_A}</guid>'
                               "</en:clearEnvelopeByGuids>"))
    assert cleared.find("error").get("errorNumber") == "107" and f"koperta {id_envelope}" in cleared.find(
        "error").get("errorDesc")
    empty = answer(post(sim, f'<en:sendEnvelope xmlns:en="{NS}"><urzadNadania>263165</urzadNadania></en:sendEnvelope>'))
    assert empty.find("error").get("errorDesc") == "Bufor jest pusty"
    listing = answer(post(sim, f'<en:getEnvelopeList xmlns:en="{NS}"><startDate>2025-03-01</startDate>'
                               "<endDate>2025-03-03</endDate></en:getEnvelopeList>"))
    assert [e.get("idEnvelope") for e in listing] == [id_envelope]
    (short,) = answer(post(sim, f'<en:getEnvelopeContentShort xmlns:en="{NS}"><idEnvelope>{id_envelope}</idEnvelope>'
                                "</en:getEnvelopeContentShort>"))
    assert (short.get("guid"), short.get("numerNadania")) == (GUID_A, number)
    status = answer(post(sim, f'<en:getEnvelopeStatus xmlns:en="{NS}"><idEnvelope>{id_envelope}</idEnvelope>'
                              "</en:getEnvelopeStatus>"))
    assert status.findtext("envelopeStatus") == "WYSLANY"


def test_unknown_fault_names_are_refused(sim: ENSimulator) -> None:
    with pytest.raises(ValueError, match="unknown fault"):
        sim.inject("addShipment", "gremlins")
