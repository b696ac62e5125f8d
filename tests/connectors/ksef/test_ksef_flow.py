"""The port against the simulator, every exchange validated against open-api.json: authentication, a session
with three invoices to their KSeF numbers and UPOs, refusals (schema, duplicate, forced), the Ministry's key
rotation, tokens that expire or are revoked."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import Any

import pytest
from ksef_testkit import SELLER, Wired, outgoing

from connectors.ksef import crypto, mapping, upo
from connectors.ksef.einvoicing import SessionKeyUnknown, SessionUnusable
from connectors.ksef.simulator import KsefSimulator
from hub.kernel.errors import LoginNeeded, PermanentError
from hub.kernel.ports.invoicing import EInvoicing, OutgoingInvoice

Wire = Callable[..., Wired]


def test_three_invoices_to_their_numbers_and_upos(sim: KsefSimulator, wired: Wire) -> None:
    w = wired()
    port = w.port
    assert isinstance(port, EInvoicing)
    session = port.open_session()
    invoices = [outgoing(f"FV/{n}/12/2026") for n in (1, 2, 3)]
    references = [port.send(session, invoice) for invoice in invoices]
    assert len(set(references)) == 3
    statuses = [port.invoice_status(session, reference) for reference in references]
    assert w.sleeps.calls.count(w.options.verification_poll_interval) == 3  # each was 100 once, then 200
    for invoice, reference, sent in zip(invoices, references, statuses, strict=True):
        assert (sent.status, sent.code, sent.reference, sent.sha256) == ("accepted", 200, reference, invoice.sha256)
        assert sent.invoice_number == invoice.key and sent.acquired_at is not None
        assert sent.ksef_number is not None and crypto.ksef_number_valid(sent.ksef_number)
        assert sent.ksef_number.startswith(f"{SELLER}-{sim.now().astimezone(mapping.WARSAW):%Y%m%d}-")
        receipt = port.upo(session, reference)
        (document,) = upo.documents(upo.check(receipt))
        assert document["NumerKSeFDokumentu"] == sent.ksef_number and document["SkrotDokumentu"] == invoice.sha256
        assert document["NumerFaktury"] == invoice.key and document["NipSprzedawcy"] == SELLER
        assert document["TrybWysylki"] == "Offline"  # P_1 (2026-02-15) is an earlier day than the acceptance
    found = port.find_sent(session)
    assert [f.sha256 for f in found] == [i.sha256 for i in invoices]
    assert all(f.status == "accepted" for f in found)
    port.close_session(session)
    assert not port.has_session_key(session)
    status = port.session_status(session)
    assert (status.code, status.invoice_count, status.successful, status.failed) == (200, 3, 3, 0)
    assert len(status.upo_pages) == 1
    # one authentication for the whole flow, the keys read once, and every exchange checked against the spec
    assert len(sim.exchanges("POST", r"^/auth/ksef-token$")) == 1
    assert len(sim.exchanges("GET", r"^/security/public-key-certificates$")) == 1
    operations = {(method, path.split("/")[2]) for method, path, _ in w.checked}
    assert {("POST", "auth"), ("GET", "auth"), ("GET", "security"), ("POST", "sessions"),
            ("GET", "sessions")} <= operations


def test_the_simulator_decrypted_exactly_what_was_sent(sim: KsefSimulator, wired: Wire) -> None:
    port = wired().port
    session = port.open_session()
    invoice = outgoing("FV/9/12/2026")
    port.send(session, invoice)
    (exchange,) = sim.exchanges("POST", r"/invoices$")
    body = exchange.body
    assert (body["invoiceHash"], body["invoiceSize"]) == (invoice.sha256, len(invoice.xml))
    ciphertext = crypto.unb64(body["encryptedInvoiceContent"])
    assert crypto.aes_decrypt(sim.sessions[session].key, ciphertext) == invoice.xml  # type: ignore[arg-type]


def test_an_invoice_invalid_against_fa3_is_rejected_with_the_schemas_words(wired: Wire) -> None:
    port = wired().port
    session = port.open_session()
    reference = port.send(session, outgoing("FV/4/12/2026", total="dużo"))
    sent = port.invoice_status(session, reference)
    assert (sent.status, sent.code, sent.ksef_number) == ("rejected", 430, None)
    assert sent.description == "Błąd weryfikacji pliku faktury"
    assert any("P_15" in detail for detail in sent.details), sent.details
    with pytest.raises(PermanentError, match="refused the invoice"):
        port.upo(session, reference)


def test_a_duplicate_names_the_original(sim: KsefSimulator, wired: Wire) -> None:
    port = wired().port
    first_session = port.open_session()
    first = port.invoice_status(first_session, port.send(first_session, outgoing("FV/5/12/2026")))
    assert first.status == "accepted"
    second_session = port.open_session()
    # another XML (another P_1) with the same seller, RodzajFaktury and P_2: a duplicate all the same
    again = outgoing("FV/5/12/2026", issue_date=date(2026, 3, 1))
    assert again.sha256 != outgoing("FV/5/12/2026").sha256
    duplicate = port.invoice_status(second_session, port.send(second_session, again))
    assert (duplicate.status, duplicate.code, duplicate.ksef_number) == ("rejected", 440, None)
    assert mapping.original_ksef_number(duplicate) == first.ksef_number
    assert f"originalSessionReferenceNumber: {first_session}" in duplicate.details


def test_a_forced_rejection_and_a_slow_verification(sim: KsefSimulator, wired: Wire) -> None:
    sim.reject_invoice("FV/6/12/2026", code=450, details=["P_1 późniejsza niż data przyjęcia."])
    sim.verification_polls = 3
    w = wired(verification_timeout=1.0, verification_poll_interval=0.5, auth_poll_interval=0.1)
    session = w.port.open_session()
    reference = w.port.send(session, outgoing("FV/6/12/2026"))
    first = w.port.invoice_status(session, reference)  # 3 reads: 100, 150, 150, and no more time to wait
    assert (first.status, first.code) == ("processing", 150) and w.sleeps.calls.count(0.5) == 2
    final = w.port.invoice_status(session, reference)
    assert (final.status, final.code, final.details) == ("rejected", 450, ("P_1 późniejsza niż data przyjęcia.",))
    sim.hold_verification = True
    held = w.port.send(session, outgoing("FV/7/12/2026"))
    assert w.port.invoice_status(session, held).status == "processing"
    sim.finish_verification()
    assert w.port.invoice_status(session, held).status == "accepted"


def test_a_seller_other_than_the_context_is_refused(wired: Wire) -> None:
    port = wired().port
    session = port.open_session()
    sent = port.invoice_status(session, port.send(session, outgoing("FV/8/12/2026", seller="1111111111")))
    assert (sent.status, sent.code) == ("rejected", 410)


def test_a_hash_that_is_not_the_xmls_is_refused_before_sending(sim: KsefSimulator, wired: Wire) -> None:
    port = wired().port
    session = port.open_session()
    invoice = outgoing("FV/10/12/2026")
    with pytest.raises(PermanentError, match="not that of its XML"):
        port.send(session, type(invoice)(invoice.key, invoice.xml + b" ", invoice.sha256))
    assert not sim.exchanges("POST", r"/invoices$")


def test_a_session_from_another_process_takes_no_invoice(sim: KsefSimulator, wired: Wire) -> None:
    first = wired().port
    session = first.open_session()
    first.send(session, outgoing("FV/11/12/2026"))
    restarted = wired().port
    assert not restarted.has_session_key(session)
    with pytest.raises(SessionKeyUnknown, match="find_sent"):
        restarted.send(session, outgoing("FV/12/12/2026"))
    assert [s.invoice_number for s in restarted.find_sent(session)] == ["FV/11/12/2026"]
    fresh = restarted.open_session()
    assert restarted.send(fresh, outgoing("FV/12/12/2026"))


def test_a_closed_session_takes_no_invoice(wired: Wire) -> None:
    port = wired().port
    session = port.open_session()
    port.send(session, outgoing("FV/13/12/2026"))
    port.close_session(session)
    port.close_session(session)  # closed already: nothing to do
    port._keys[session] = crypto.new_session_key()  # even with a key, KSeF refuses (21180)
    with pytest.raises(SessionUnusable, match="21180"):
        port.send(session, outgoing("FV/14/12/2026"))


def test_the_access_token_is_refreshed_before_it_expires(sim: KsefSimulator, wired: Wire) -> None:
    sim.access_ttl = 300.0
    port = wired().port
    session = port.open_session()
    sim.advance(250)  # within token_refresh_margin (60 s) of its validUntil
    port.send(session, outgoing("FV/15/12/2026"))
    assert len(sim.exchanges("POST", r"^/auth/token/refresh$")) == 1
    assert len(sim.exchanges("POST", r"^/auth/ksef-token$")) == 1
    sim.advance(8 * 24 * 3600)  # the refresh token (7 days) has expired too: authenticate again
    port.find_sent(session)
    assert len(sim.exchanges("POST", r"^/auth/ksef-token$")) == 2
    assert len(sim.exchanges("POST", r"^/auth/token/refresh$")) == 1


def test_a_401_renews_the_token_and_sends_once_more(sim: KsefSimulator, wired: Wire) -> None:
    port = wired().port
    session = port.open_session()
    sim.revoke_access_tokens()
    reference = port.send(session, outgoing("FV/16/12/2026"))
    sends = sim.exchanges("POST", r"/invoices$")
    assert [e.status for e in sends] == [401, 202]
    assert len(sim.exchanges("POST", r"^/auth/token/refresh$")) == 1
    assert [s.reference for s in port.find_sent(session)] == [reference]
    # the refresh token revoked as well: a new authentication
    sim.revoke_access_tokens()
    sim.revoke_refresh_tokens()
    port.find_sent(session)
    assert len(sim.exchanges("POST", r"^/auth/ksef-token$")) == 2


def test_a_revoked_ksef_token_needs_the_operator(sim: KsefSimulator, wired: Wire) -> None:
    w = wired()
    w.port.open_session()
    sim.revoke_token(w.options.token.get())
    sim.revoke_access_tokens()
    sim.revoke_refresh_tokens()
    with pytest.raises(LoginNeeded, match="Token unieważniony"):
        w.port.open_session()


def test_a_token_of_another_nip(sim: KsefSimulator, wired: Wire) -> None:
    sim.add_token("20261202-EC-00000000AA-00000000BB-00|nip-1111111111|x", "1111111111")
    w = wired(token="20261202-EC-00000000AA-00000000BB-00|nip-1111111111|x")  # but the connector's nip is ours
    with pytest.raises(LoginNeeded, match="no permission in the context of NIP 5260250274"):
        w.port.open_session()


def test_authentication_in_progress_is_awaited(sim: KsefSimulator, wired: Wire) -> None:
    sim.auth_polls = 3
    w = wired(auth_poll_interval=0.25)
    w.port.open_session()
    assert len(sim.exchanges("GET", r"^/auth/[^/]+$")) == 4 and w.sleeps.calls == [0.25, 0.25, 0.25]


def test_an_emergency_key_rotation(sim: KsefSimulator, wired: Wire) -> None:
    port = wired().port
    port.open_session()
    sim.rotate_keys(emergency=True, separate=True)
    session = port.open_session()  # the cached key is withdrawn: 21470, the keys read again, one more try
    opens = sim.exchanges("POST", r"^/sessions/online$")
    assert [e.status for e in opens] == [201, 400, 201]
    assert len(sim.exchanges("GET", r"^/security/public-key-certificates$")) == 2
    port.send(session, outgoing("FV/17/12/2026"))
    assert sim.sessions[session].key is not None


def test_a_bare_public_key_in_place_of_a_certificate(sim: KsefSimulator, wired: Wire) -> None:
    sim.bare_public_key = True
    port = wired().port
    session = port.open_session()
    assert port.invoice_status(session, port.send(session, outgoing("FV/18/12/2026"))).status == "accepted"


def test_paging_through_a_session(sim: KsefSimulator, wired: Wire) -> None:
    port = wired(list_page_size=10).port
    session = port.open_session()
    invoices = [outgoing(f"FV/{100 + n}/12/2026") for n in range(23)]
    for invoice in invoices:
        port.send(session, invoice)
    found = port.find_sent(session)
    assert [f.sha256 for f in found] == [i.sha256 for i in invoices]
    pages = sim.exchanges("GET", r"/invoices$")
    assert len(pages) == 3 and [e.query["pageSize"] for e in pages] == ["10"] * 3


def test_a_technical_correction_of_a_rejected_offline_invoice(sim: KsefSimulator, wired: Wire) -> None:
    """korekta-techniczna.md: the offline document KSeF rejected is replaced by one naming its hash
    (hashOfCorrectedInvoice, offlineMode true); a second correction of it, or one of an invoice KSeF took,
    is refused (21166, 21167); an unknown hash and a correction not declared offline are bad input (21405)."""
    from dataclasses import replace

    sim.reject_invoice("FV/8/12/2026", code=430, details=["Błąd schematu."])
    w = wired()
    session = w.port.open_session()
    bad = replace(outgoing("FV/8/12/2026"), offline=True)
    w.port.invoice_status(session, w.port.send(session, bad))
    fixed = _regenerated(bad, b"\n", corrects_sha256=bad.sha256)  # the same content, another file
    assert fixed.sha256 != bad.sha256
    sent = w.port.invoice_status(session, w.port.send(session, fixed))
    assert sent.status == "accepted" and sent.ksef_number
    (body,) = [e.body for e in sim.exchanges("POST", "/invoices$") if e.body.get("hashOfCorrectedInvoice")]
    assert body["offlineMode"] is True and body["hashOfCorrectedInvoice"] == bad.sha256
    assert sim.invoice(sent.reference).corrects == bad.sha256
    again = _regenerated(bad, b"\n\n", corrects_sha256=bad.sha256)
    with pytest.raises(PermanentError, match="21166"):
        w.port.send(session, again)
    with pytest.raises(PermanentError, match="21167"):  # the accepted correction is not for correcting
        w.port.send(session, replace(again, corrects_sha256=fixed.sha256))
    with pytest.raises(PermanentError, match="21405"):
        w.port.send(session, replace(again, corrects_sha256=outgoing("FV/99/12/2026").sha256))
    with pytest.raises(PermanentError, match="batch"):  # corrections go in an online session only
        w.port.open_batch([again])


def _regenerated(invoice: OutgoingInvoice, tail: bytes, **changes: Any) -> OutgoingInvoice:
    """The same document written out again (a trailing newline more): another file, another hash."""
    from dataclasses import replace

    xml = invoice.xml + tail
    return replace(invoice, xml=xml, sha256=crypto.sha256_b64(xml), **changes)
