"""The simulator itself, spoken to directly (through the spec-validating transport where the request is a
valid one): error bodies in both of KSeF's shapes, 401 without a bearer, the auth steps' refusals, the sizes
and hashes of a send, paging, the session's states, and the whole flow over a real loopback socket."""

from __future__ import annotations

import base64
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from ksef_testkit import API_URL, PROBLEM, SPEC_PATH, Wired, invoice_xml, outgoing, wire
from openapi_core.exceptions import OpenAPIError

from connectors.ksef import crypto, mapping
from connectors.ksef.simulator import DEFAULT_TOKEN, KsefSimulator
from hub.kernel.ports.invoicing import OutgoingInvoice

Wire = Callable[..., Wired]


@pytest.fixture
def raw(sim: KsefSimulator) -> Iterator[httpx.Client]:
    """Unvalidated: for requests the spec would refuse before they reach KSeF."""
    with httpx.Client(base_url=API_URL, transport=sim.transport()) as client:
        yield client


def _bearer(token: str) -> dict[str, str]:
    return {**PROBLEM, "Authorization": f"Bearer {token}"}


def _access(wired: Wire) -> tuple[Wired, str]:
    w = wired()
    return w, w.port._client.access_token()


def test_401_without_a_bearer_and_with_a_bad_one(api: httpx.Client, raw: httpx.Client) -> None:
    answer = raw.get("/sessions/20261202-SO-0000000001-0000000000-00")
    assert answer.status_code == 401 and answer.headers["content-type"].startswith("application/problem+json")
    assert answer.json()["title"] == "Unauthorized"
    answer = api.get("/sessions/20261202-SO-0000000001-0000000000-00", headers=_bearer("eyJ.bad.token"))
    assert answer.status_code == 401 and answer.json()["detail"] == "Nieprawidłowy token."


def test_400_in_both_shapes(api: httpx.Client, raw: httpx.Client) -> None:
    body = {"challenge": "20261202-CR-0000000000-0000000000-00", "contextIdentifier": {"type": "Nip",
            "value": "5260250274"}, "encryptedToken": base64.b64encode(b"x").decode()}
    problem = api.post("/auth/ksef-token", json=body)
    assert problem.status_code == 400 and problem.headers["content-type"].startswith("application/problem+json")
    assert problem.json()["errors"][0]["code"] == 21111
    legacy = raw.post("/auth/ksef-token", json=body)  # no X-Error-Format: the deprecated ExceptionResponse
    assert legacy.status_code == 400 and legacy.headers["content-type"].startswith("application/json")
    (detail,) = legacy.json()["exception"]["exceptionDetailList"]
    assert detail["exceptionCode"] == 21111
    assert detail["exceptionDescription"] == "Nieprawidłowe wyzwanie autoryzacyjne."


def _authenticate(api: httpx.Client, sim: KsefSimulator, *, token: str = DEFAULT_TOKEN, shift_ms: int = 0
                  ) -> dict[str, Any]:
    challenge = api.post("/auth/challenge").json()
    key = crypto.load_public_key(api.get("/security/public-key-certificates").json()[0]["certificate"])
    encrypted = crypto.encrypt_token(key, token, challenge["timestampMs"] + shift_ms)
    init = api.post("/auth/ksef-token", json=mapping.token_request(challenge["challenge"], "5260250274", encrypted,
                                                                   crypto.public_key_id(key)))
    assert init.status_code == 202, init.text
    body: dict[str, Any] = init.json()
    return body


def test_the_auth_steps(api: httpx.Client, sim: KsefSimulator) -> None:
    init = _authenticate(api, sim)
    auth = _bearer(init["authenticationToken"]["token"])
    early = api.post("/auth/token/redeem", headers=auth)
    assert early.status_code == 400 and "(100)" in early.json()["errors"][0]["details"][0]
    statuses = [api.get(f"/auth/{init['referenceNumber']}", headers=auth).json()["status"]["code"] for _ in range(2)]
    assert statuses == [100, 200]
    tokens = api.post("/auth/token/redeem", headers=auth)
    assert tokens.status_code == 200 and set(tokens.json()) == {"accessToken", "refreshToken"}
    again = api.post("/auth/token/redeem", headers=auth)
    assert again.status_code == 400 and again.json()["errors"][0]["code"] == 21301
    refreshed = api.post("/auth/token/refresh", headers=_bearer(tokens.json()["refreshToken"]["token"]))
    assert refreshed.status_code == 200
    access = refreshed.json()["accessToken"]["token"]
    assert api.post("/auth/token/refresh", headers=_bearer(access)).status_code == 401  # not a refresh token


def test_a_timestamp_other_than_the_challenges_fails_the_token(api: httpx.Client, sim: KsefSimulator) -> None:
    sim.auth_polls = 0
    init = _authenticate(api, sim, shift_ms=1)
    status = api.get(f"/auth/{init['referenceNumber']}", headers=_bearer(init["authenticationToken"]["token"]))
    assert status.json()["status"] == {"code": 450, "description": "Uwierzytelnianie zakończone niepowodzeniem z "
                                       "powodu błędnego tokenu", "details": ["Nieprawidłowy czas tokena"]}
    unknown = _authenticate(api, sim, token="20261202-EC-0000000000-0000000000-00|nip-5260250274|nope")
    status = api.get(f"/auth/{unknown['referenceNumber']}", headers=_bearer(unknown["authenticationToken"]["token"]))
    assert status.json()["status"]["details"] == ["Nieprawidłowy token"]


def test_a_challenge_serves_once(api: httpx.Client, sim: KsefSimulator) -> None:
    challenge = api.post("/auth/challenge").json()
    key = crypto.load_public_key(api.get("/security/public-key-certificates").json()[0]["certificate"])
    body = mapping.token_request(challenge["challenge"], "5260250274",
                                 crypto.encrypt_token(key, DEFAULT_TOKEN, challenge["timestampMs"]), None)
    assert api.post("/auth/ksef-token", json=body).status_code == 202
    assert api.post("/auth/ksef-token", json=body).json()["errors"][0]["code"] == 21111
    sim.advance(11 * 60)
    late = api.post("/auth/challenge").json()
    sim.advance(11 * 60)
    body = mapping.token_request(late["challenge"], "5260250274",
                                 crypto.encrypt_token(key, DEFAULT_TOKEN, late["timestampMs"]), None)
    assert api.post("/auth/ksef-token", json=body).json()["errors"][0]["code"] == 21111


def test_sizes_and_hashes_of_a_send(api: httpx.Client, wired: Wire, sim: KsefSimulator) -> None:
    w, token = _access(wired)
    session = w.port.open_session()
    key = sim.sessions[session].key
    assert key is not None
    xml = invoice_xml("FV/1/12/2026")
    good = mapping.send_invoice_request(xml, crypto.aes_encrypt(key, xml))
    path = f"/sessions/online/{session}/invoices"
    cases = [
        ({"encryptedInvoiceSize": good["encryptedInvoiceSize"] + 16}, 21402),
        ({"encryptedInvoiceHash": crypto.sha256_b64(b"other")}, 21403),
        ({"invoiceSize": len(xml) + 1}, 21402),
        ({"invoiceHash": crypto.sha256_b64(b"other")}, 21403),
        ({"invoiceSize": 2_000_000}, 21405),
    ]
    for change, code in cases:
        answer = api.post(path, json={**good, **change}, headers=_bearer(token))
        assert answer.status_code == 400 and answer.json()["errors"][0]["code"] == code, (change, answer.text)
    undecryptable = bytes(range(17))  # not a whole number of AES blocks
    answer = api.post(path, json=mapping.send_invoice_request(xml, undecryptable), headers=_bearer(token))
    assert answer.status_code == 202  # a ciphertext that does not decrypt is refused later, as 435
    sent = w.port.invoice_status(session, answer.json()["referenceNumber"])
    assert (sent.status, sent.code) == ("rejected", 435)
    assert api.post(path, json=good, headers=_bearer(token)).status_code == 202


def test_invoices_with_xml_faults_are_refused_as_430(wired: Wire, sim: KsefSimulator) -> None:
    w = wired()
    session = w.port.open_session()
    xml = invoice_xml("FV/2/12/2026")
    faults = [
        b"\xef\xbb\xbf" + xml,  # a BOM
        xml.replace(b"?>", b"?><?hub note?>", 1),  # a processing instruction
        xml.replace(b"UTF-8", b"ISO-8859-2", 1),  # another encoding declared
        xml.replace(b"Warszawa", "Warszawa\u0086".encode(), 1),  # a discouraged character
        xml.replace(b"?>", b"?><!DOCTYPE Faktura>", 1),  # a DOCTYPE
        xml[:-20],  # cut short
    ]
    for content in faults:
        reference = w.port.send(session, OutgoingInvoice("bad", content, crypto.sha256_b64(content)))
        sent = w.port.invoice_status(session, reference)
        assert (sent.status, sent.code) == ("rejected", 430), (content[:60], sent)


def test_paging_tokens_and_page_sizes(api: httpx.Client, wired: Wire) -> None:
    w, token = _access(wired)
    session = w.port.open_session()
    for n in range(12):
        w.port.send(session, outgoing(f"FV/{n}/12/2026"))
    first = api.get(f"/sessions/{session}/invoices", params={"pageSize": 10}, headers=_bearer(token)).json()
    assert len(first["invoices"]) == 10 and first["continuationToken"]
    second = api.get(f"/sessions/{session}/invoices", params={"pageSize": 10},
                     headers={**_bearer(token), "x-continuation-token": first["continuationToken"]}).json()
    assert [i["ordinalNumber"] for i in second["invoices"]] == [11, 12] and "continuationToken" not in second
    bad = api.get(f"/sessions/{session}/invoices", headers={**_bearer(token), "x-continuation-token": "nope"})
    assert bad.status_code == 400 and bad.json()["errors"][0]["code"] == 21418


def test_the_states_of_a_session(api: httpx.Client, wired: Wire, sim: KsefSimulator) -> None:
    w, token = _access(wired)
    port = w.port
    empty = port.open_session()
    port.close_session(empty)
    assert (port.session_status(empty).code, port.session_status(empty).details) == (440, ("Nie przesłano faktur",))
    session = port.open_session()
    assert port.session_status(session).code == 100
    sim.hold_verification = True
    reference = port.send(session, outgoing("FV/1/12/2026"))
    port.close_session(session)
    assert port.session_status(session).code == 170
    sim.finish_verification()
    assert port.session_status(session).code == 200
    failing = port.open_session()
    port.invoice_status(failing, port.send(failing, outgoing("FV/2/12/2026", total="x")))
    port.close_session(failing)
    assert port.session_status(failing).code == 445
    failed = api.get(f"/sessions/{failing}/invoices/failed", headers=_bearer(token)).json()["invoices"]
    assert [i["status"]["code"] for i in failed] == [430]
    by_number = port.invoice_status(session, reference).ksef_number
    upo = api.get(f"/sessions/{session}/invoices/ksef/{by_number}/upo", headers=_bearer(token))
    assert upo.status_code == 200 and upo.headers["x-ms-meta-hash"] == crypto.sha256_b64(upo.content)
    forgotten = port.open_session()
    sim.advance(13 * 3600)  # an open session lives 12 hours, then KSeF closes it
    assert port.session_status(forgotten).code == 440


def test_a_session_key_that_does_not_decrypt(api: httpx.Client, wired: Wire) -> None:
    w, token = _access(wired)
    body = mapping.open_session_request(base64.b64encode(b"\x00" * 256).decode(), bytes(16), None)
    answer = api.post("/sessions/online", json=body, headers=_bearer(token))
    assert answer.status_code == 201
    session = answer.json()["referenceNumber"]
    assert w.port.session_status(session).code == 415


def test_served_on_loopback(sim: KsefSimulator) -> None:
    """The demo's and the benchmarks' way: a real socket, the client without a transport."""
    base = sim.serve()
    try:
        w = wire(sim, None, api_url=f"{base}/v2")  # type: ignore[arg-type]
        session = w.port.open_session()
        invoice = outgoing("FV/1/12/2026")
        reference = w.port.send(session, invoice)
        sent = w.port.invoice_status(session, reference)
        assert sent.status == "accepted" and sent.sha256 == invoice.sha256
        assert w.port.upo(session, reference).startswith(b"<?xml")
        w.port.close_session(session)
        w.port.close()
        bare = wire(sim, None, api_url=base)  # type: ignore[arg-type]
        assert [s.reference for s in bare.port.find_sent(session)] == [reference]
        bare.port.close()
    finally:
        sim.stop()


def test_the_validating_transport_is_no_tautology(validated: Callable[[httpx.BaseTransport], httpx.BaseTransport],
                                                  sim: KsefSimulator) -> None:
    """A stray field, a hash of the wrong length and an answer missing a required field all fail the check."""
    assert SPEC_PATH.is_file() and SPEC_PATH.parts[-4:] == ("shared", "specs", "ksef", "open-api.json")
    with httpx.Client(base_url=API_URL, transport=validated(sim.transport()), headers=PROBLEM) as client:
        body = {"challenge": "20261202-CR-0000000000-0000000000-00", "encryptedToken": "eA==",
                "contextIdentifier": {"type": "Nip", "value": "5260250274"}}
        with pytest.raises(AssertionError, match="not declared"):
            client.post("/auth/ksef-token", json={**body, "nonce": 1})
        with pytest.raises(OpenAPIError) as caught:
            client.post("/auth/ksef-token", json={**body, "publicKeyId": "c2hvcnQ="})
        assert "is too short" in repr(caught.value.__cause__)  # publicKeyId: 44 characters

    def lying(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"challenge": "20261202-CR-0000000000-0000000000-00",
                                         "timestamp": "2026-12-02T10:00:00+00:00", "timestampMs": 1})

    with (httpx.Client(base_url=API_URL, transport=validated(httpx.MockTransport(lying)), headers=PROBLEM) as client,
          pytest.raises(OpenAPIError)):
        client.post("/auth/challenge")
