"""Hostile and broken answers: an entity bomb or an external entity is refused unread, bad XML and
faults become one-line errors naming the carrier and the call; a real loopback server with a slow answer
shows the transport's timeouts are set."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import pytest
import requests
import zeep
from poczta_polska_testkit import LOGIN, PASSWORD, TODAY, URZAD, Wired, shipment, wire

from connectors.carriers.poczta_polska.simulator import ENSimulator
from hub.kernel.errors import LoginNeeded, PermanentError, RetryableError


def _one_line(exc: BaseException) -> str:
    message = str(exc)
    assert "\n" not in message and "Traceback" not in message
    assert exc.__cause__ is None and exc.__suppress_context__  # raised "from None": no chained traceback
    return message


@pytest.mark.parametrize("fault", ["entity_bomb", "external_entity"])
def test_an_answer_with_entities_is_refused_unread(fault: str, wired: Callable[..., Wired],
                                                   sim: ENSimulator) -> None:
    w = wired()
    sim.inject("getEnvelopeBuforList", fault)
    started = time.monotonic()
    with pytest.raises(PermanentError) as caught:
        w.carrier.book(shipment())
    message = _one_line(caught.value)
    assert message.startswith("Poczta Polska (EN) getEnvelopeBuforList: refused the answer")
    assert "Document Type Declaration" in message and time.monotonic() - started < 2
    assert b"<!ENTITY" in sim.calls("getEnvelopeBuforList")[0].response  # the simulator did send one
    assert len(sim.calls("getEnvelopeBuforList")) == 1  # a hostile answer is not retried


def test_malformed_xml_is_retryable_after_the_attempts(wired: Callable[..., Wired], sim: ENSimulator) -> None:
    w = wired(attempts=2)
    sim.inject("getEnvelopeBuforList", "malformed", times=2)
    with pytest.raises(RetryableError) as caught:
        w.carrier.book(shipment())
    assert _one_line(caught.value) == ("Poczta Polska (EN) getEnvelopeBuforList: an answer that is not XML "
                                       "(after 2 attempts)")


def test_wrong_password_is_login_needed(sim: ENSimulator) -> None:
    w = wire(ENSimulator(LOGIN, "another", today=TODAY))
    with pytest.raises(LoginNeeded) as caught:
        w.carrier.book(shipment())
    assert "HTTP 401" in _one_line(caught.value) and "login and password" in str(caught.value)


def test_a_request_zeep_cannot_build_is_permanent(wired: Callable[..., Wired], sim: ENSimulator) -> None:
    with pytest.raises(PermanentError) as caught:
        wired().carrier.client.call("getEnvelopeStatus", write=False)  # idEnvelope is required (minOccurs=1)
    assert _one_line(caught.value) == ("Poczta Polska (EN) getEnvelopeStatus: our request does not fit en.wsdl: "
                                       "Missing element idEnvelope (getEnvelopeStatus.idEnvelope)")
    assert sim.log == []


def test_a_soap_client_fault_is_permanent(wired: Callable[..., Wired], sim: ENSimulator) -> None:
    """zeep does not check facets; EN (here the simulator) refuses a guid that is not 32 characters."""
    with pytest.raises(PermanentError) as caught:
        wired().carrier.client.clear_envelope_by_guids(["TOO-SHORT"], None)
    message = _one_line(caught.value)
    assert message.startswith("Poczta Polska (EN) clearEnvelopeByGuids: EN refused the request (SOAP fault "
                              "SOAP-ENV:Client): Invalid request:")
    assert "allowed length of '32'" in message and len(sim.calls("clearEnvelopeByGuids")) == 1


@pytest.fixture
def served() -> Iterator[tuple[ENSimulator, str]]:
    en = ENSimulator(LOGIN, PASSWORD, today=TODAY, urzedy=[(URZAD, "UP Kraków 1")])
    url = en.serve()
    yield en, url
    en.stop()


def test_over_real_http_a_slow_answer_times_out(served: tuple[ENSimulator, str]) -> None:
    en, url = served
    w = wire(en, adapter=requests.adapters.HTTPAdapter(), service_url=url, timeout=0.3, attempts=1)
    booking = w.carrier.book(shipment())
    assert booking.parcels[0].tracking_number == en.parcels()[booking.external_id]
    en.inject("getEnvelopeBuforList", "slow", delay=1.0)
    started = time.monotonic()
    with pytest.raises(RetryableError) as caught:
        w.carrier.book(shipment("SH-SLOW"))
    assert time.monotonic() - started < 0.9
    assert _one_line(caught.value) == ("Poczta Polska (EN) getEnvelopeBuforList: no answer within 0.3 s "
                                       "(one attempt)")


@pytest.mark.parametrize("fault", ["entity_bomb", "external_entity"])
def test_zeep_itself_refuses_the_same_answers(fault: str, sim: ENSimulator) -> None:
    """The second line behind the transport's DOCTYPE check: zeep's parser with the hardened settings."""
    from zeep.exceptions import DTDForbidden, XMLSyntaxError
    from zeep.loader import parse_xml

    from connectors.carriers.poczta_polska.client import hardened_settings

    w = wire(sim)
    sim.inject("hello", fault)
    with pytest.raises(PermanentError):
        w.carrier.client.call("hello", write=False, **{"in": "x"})
    payload = sim.calls("hello")[0].response
    with pytest.raises((DTDForbidden, XMLSyntaxError)) as caught:
        parse_xml(payload, None, settings=hardened_settings())
    if fault == "external_entity":
        assert isinstance(caught.value, DTDForbidden)
        # without the hardening the same bytes would be read: the settings are what refuses them
        assert parse_xml(payload, None, settings=zeep.Settings(forbid_entities=False)) is not None
