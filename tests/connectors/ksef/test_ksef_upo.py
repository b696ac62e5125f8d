"""The UPO: the vendored v4-3 schema against the Ministry's own examples, the simulator's UPOs, and hostile
documents refused (an entity bomb, an external entity, something that is no UPO)."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest
from ksef_testkit import SHARED, Wired, outgoing, wire
from lxml import etree

from connectors.ksef import upo
from connectors.ksef.simulator import KsefSimulator
from hub.kernel.errors import PermanentError, RetryableError

Wire = Callable[..., Wired]
EXAMPLES = SHARED / "ksef" / "faktury" / "upo" / "przyklady" / "v4-3" / "kontekst-nip"
BOMB = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
<!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">]>
<Potwierdzenie xmlns="http://upo.schematy.mf.gov.pl/KSeF/v4-3"><NazwaPodmiotuPrzyjmujacego>&lol4;</NazwaPodmiotuPrzyjmujacego>
</Potwierdzenie>"""
EXTERNAL = b"""<?xml version="1.0"?>
<!DOCTYPE p [<!ENTITY secret SYSTEM "file:///etc/passwd">]>
<Potwierdzenie xmlns="http://upo.schematy.mf.gov.pl/KSeF/v4-3"><NazwaPodmiotuPrzyjmujacego>&secret;</NazwaPodmiotuPrzyjmujacego>
</Potwierdzenie>"""


def test_the_vendored_schema_is_the_ministrys() -> None:
    vendored = (upo.XSD).read_bytes()
    assert vendored == (SHARED / "ksef" / "faktury" / "upo" / "schemy" / "upo-v4-3.xsd").read_bytes()


@pytest.mark.parametrize("name", ["upo-faktura-kontekst-id-nip.xml", "upo-sesja-kontekst-id-nip.xml"])
def test_the_ministrys_examples_fail_their_own_schema_on_one_point_only(name: str) -> None:
    content = (EXAMPLES / name).read_bytes()
    raw = etree.fromstring(content)
    schema = upo.schema()
    assert not schema.validate(raw)
    errors = [e.message for e in schema.error_log]
    assert len(errors) == 1 and "NazwaPodmiotuPrzyjmujacego" in errors[0] and "fixed" in errors[0], errors
    assert upo.schema_problems(raw) == []  # the misprint set aside, the rest is valid
    upo.check(content)


def test_a_signature_is_set_aside() -> None:
    content = (EXAMPLES / "upo-faktura-kontekst-id-nip.xml").read_bytes()
    root = etree.fromstring(content)
    root.append(etree.Element("{http://www.w3.org/2000/09/xmldsig#}Signature"))
    assert upo.schema_problems(root) == []


@pytest.mark.parametrize(("content", "words"), [
    (BOMB, "DOCTYPE"),
    (EXTERNAL, "DOCTYPE"),
    (b"<Potwierdzenie", "not well-formed"),
    (b'<Faktura xmlns="http://crd.gov.pl/wzor/2025/06/25/13775/"/>', "not a UPO"),
    (b'<Potwierdzenie xmlns="http://upo.schematy.mf.gov.pl/KSeF/v4-3"/>', "v4-3 schema"),
])
def test_what_is_refused(content: bytes, words: str) -> None:
    with pytest.raises(upo.InvalidUpo, match=words) as caught:
        upo.check(content)
    assert isinstance(caught.value, PermanentError)


def test_a_newer_schema_is_checked_for_form_only() -> None:
    upo.check(b'<Potwierdzenie xmlns="http://upo.schematy.mf.gov.pl/KSeF/v4-4"/>')
    upo.check(b'<Potwierdzenie xmlns="http://upo.schematy.mf.gov.pl/KSeF/v4-3"/>', validate=False)


@pytest.mark.parametrize("hostile", [BOMB, EXTERNAL])
def test_the_port_refuses_a_hostile_upo(sim: KsefSimulator, wired: Wire, hostile: bytes) -> None:
    port = wired().port
    session = port.open_session()
    reference = port.send(session, outgoing("FV/1/12/2026"))
    assert port.invoice_status(session, reference).status == "accepted"
    sim.replace_upo(reference, hostile)
    with pytest.raises(upo.InvalidUpo, match="DOCTYPE"):
        port.upo(session, reference)


def test_a_upo_off_the_schema_is_refused_unless_told(sim: KsefSimulator, wired: Wire) -> None:
    port = wired().port
    session = port.open_session()
    reference = port.send(session, outgoing("FV/2/12/2026"))
    port.invoice_status(session, reference)
    off = b'<Potwierdzenie xmlns="http://upo.schematy.mf.gov.pl/KSeF/v4-3"><KodFormularza>FA</KodFormularza></Potwierdzenie>'
    sim.replace_upo(reference, off)
    with pytest.raises(upo.InvalidUpo):
        port.upo(session, reference)
    assert wired(validate_upo=False).port.upo(session, reference) == off


def test_no_upo_before_the_verdict(sim: KsefSimulator, wired: Wire) -> None:
    sim.hold_verification = True
    port = wired().port
    session = port.open_session()
    reference = port.send(session, outgoing("FV/3/12/2026"))
    with pytest.raises(RetryableError, match="still being verified"):
        port.upo(session, reference)


def test_the_simulators_session_upo_is_valid(sim: KsefSimulator, wired: Wire) -> None:
    port = wired().port
    session = port.open_session()
    for n in (1, 2):
        port.invoice_status(session, port.send(session, outgoing(f"FV/{n}/12/2026")))
    port.close_session(session)
    (page,) = port.session_status(session).upo_pages
    with httpx.Client(transport=sim.transport()) as client:  # a pre-signed address: no bearer
        answer = client.get(page.download_url)
    assert answer.status_code == 200, answer.text
    root = upo.check(answer.content)
    assert len(upo.documents(root)) == 2
    forged = page.download_url.replace("sig=", "sig=x")
    with httpx.Client(transport=sim.transport()) as client:
        assert client.get(forged).status_code == 403


class _Tampering(httpx.BaseTransport):
    """A UPO damaged on its way: one byte of the body changed, KSeF's x-ms-meta-hash left as it was."""

    def __init__(self, inner: httpx.BaseTransport):
        self.inner = inner

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = self.inner.handle_request(request)
        if not request.url.path.endswith("/upo"):
            return response
        body = response.read().replace(b"FA (3)", b"FA (2)")
        return httpx.Response(response.status_code, headers=response.headers, content=body)


def test_a_upo_whose_hash_is_not_ksefs_is_not_kept(sim: KsefSimulator) -> None:
    port = wire(sim, _Tampering(sim.transport())).port
    session = port.open_session()
    reference = port.send(session, outgoing("FV/4/12/2026"))
    port.invoice_status(session, reference)
    with pytest.raises(RetryableError, match="x-ms-meta-hash"):
        port.upo(session, reference)
