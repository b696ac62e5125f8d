"""The mapping between KSeF's JSON and the port's types: golden requests (the exact bodies), the statuses of
SessionInvoiceStatusResponse as SentInvoice, times, the choice of certificate, error bodies."""

from __future__ import annotations

from datetime import UTC, datetime

import httpx
import pytest

from connectors.ksef import crypto, mapping
from connectors.ksef.client import KsefError, describe, error_body


def test_token_request_golden() -> None:
    body = mapping.token_request("20250625-CR-2FDC223000-C2BFC98A9C-4E", "5265877635", "ZW5jcnlwdGVk",
                                 "QIoAK/Yc3s27Z4t3SZY4Mhp8JNLH7Vl4N3lNlJAEig8=")
    assert body == {  # open-api.json's example of POST /auth/ksef-token, our values
        "challenge": "20250625-CR-2FDC223000-C2BFC98A9C-4E",
        "contextIdentifier": {"type": "Nip", "value": "5265877635"},
        "encryptedToken": "ZW5jcnlwdGVk",
        "publicKeyId": "QIoAK/Yc3s27Z4t3SZY4Mhp8JNLH7Vl4N3lNlJAEig8=",
    }
    assert "publicKeyId" not in mapping.token_request("c", "5265877635", "e", None)


def test_open_session_request_golden() -> None:
    iv = bytes(range(16))
    assert mapping.open_session_request("a2V5", iv, "tmtCidSRzR4fvNpLU5hMOM6FzamxJf0BBR8IkXIAwsY=") == {
        "formCode": {"systemCode": "FA (3)", "schemaVersion": "1-0E", "value": "FA"},
        "encryption": {"encryptedSymmetricKey": "a2V5", "initializationVector": "AAECAwQFBgcICQoLDA0ODw==",
                       "publicKeyId": "tmtCidSRzR4fvNpLU5hMOM6FzamxJf0BBR8IkXIAwsY="},
    }


def test_send_invoice_request_golden() -> None:
    xml = b"<Faktura/>"
    ciphertext = bytes(16)
    assert mapping.send_invoice_request(xml, ciphertext) == {
        "invoiceHash": crypto.sha256_b64(xml),
        "invoiceSize": 10,
        "encryptedInvoiceHash": "N0cI//dxndWXnsh11WzSKG9tPPfsMXo7JWMqqyjsN7s=",  # of the raw bytes, not the base64
        "encryptedInvoiceSize": 16,
        "encryptedInvoiceContent": "AAAAAAAAAAAAAAAAAAAAAA==",
        "offlineMode": False,
    }
    assert crypto.sha256_b64(ciphertext) == "N0cI//dxndWXnsh11WzSKG9tPPfsMXo7JWMqqyjsN7s="
    # not the hash of the base64 text
    assert crypto.sha256_b64(b"AAAAAAAAAAAAAAAAAAAAAA==") == "Kna9obaAfwic73jRCQYc2YeBUtwrF4uhDvVfAcn2zgE="


SUCCESS = {  # open-api.json's example of SessionInvoiceStatusResponse
    "ordinalNumber": 1, "invoiceNumber": "FA/XPWIC-7900685789/06/2025",
    "ksefNumber": "5265877635-20250626-010080DD2B5E-26", "referenceNumber": "20250918-EE-2F15D39000-242207E5C4-1B",
    "invoiceHash": "mkht+3m5trnfxlTYhq3QFn74LkEO69MFNlsMAkCDSPA=",
    "acquisitionDate": "2025-09-18T12:24:16.0154302+00:00", "invoicingDate": "2025-09-18T12:23:56.0154302+00:00",
    "permanentStorageDate": "2025-09-18T12:24:01.015432+00:00",
    "upoDownloadUrl": "https://api-test.ksef.mf.gov.pl/storage/01/x/invoice-upo/upo.xml?sv=1",
    "upoDownloadUrlExpirationDate": "2025-09-21T14:54:20+00:00", "status": {"code": 200, "description": "Sukces"},
}


def test_accepted_invoice() -> None:
    sent = mapping.sent_invoice(SUCCESS)
    assert (sent.status, sent.code, sent.description) == ("accepted", 200, "Sukces")
    assert sent.ksef_number == "5265877635-20250626-010080DD2B5E-26"
    assert sent.sha256 == SUCCESS["invoiceHash"] and sent.reference == SUCCESS["referenceNumber"]
    assert sent.invoice_number == "FA/XPWIC-7900685789/06/2025"
    assert sent.acquired_at == datetime(2025, 9, 18, 12, 24, 16, 15430, tzinfo=UTC)
    assert sent.details == ()


@pytest.mark.parametrize("code", [100, 150])
def test_processing(code: int) -> None:
    entry = {**SUCCESS, "status": {"code": code, "description": "Trwa przetwarzanie"}}
    del entry["ksefNumber"], entry["acquisitionDate"]
    sent = mapping.sent_invoice(entry)
    assert sent.status == "processing" and sent.ksef_number is None and sent.acquired_at is None


@pytest.mark.parametrize("code", [405, 410, 415, 430, 435, 450, 500, 550])
def test_refusals(code: int) -> None:
    entry = {**SUCCESS, "ksefNumber": None, "status": {"code": code, "description": "Błąd", "details": ["line 3: x"]}}
    sent = mapping.sent_invoice(entry)
    assert (sent.status, sent.code, sent.details, sent.ksef_number) == ("rejected", code, ("line 3: x",), None)


def test_duplicate_keeps_the_original_number_in_details() -> None:
    entry = {**SUCCESS, "ksefNumber": None, "acquisitionDate": None, "status": {
        "code": 440, "description": "Duplikat faktury",
        "details": ["Duplikat faktury. Faktura o numerze KSeF: 5265877635-20250626-010080DD2B5E-26 została już "
                    "prawidłowo przesłana do systemu w sesji: 20250626-SO-2F14610000-242991F8C9-B4"],
        "extensions": {"originalSessionReferenceNumber": "20250626-SO-2F14610000-242991F8C9-B4",
                       "originalKsefNumber": "5265877635-20250626-010080DD2B5E-26"}}}
    sent = mapping.sent_invoice(entry)
    assert sent.status == "rejected" and sent.code == 440 and sent.ksef_number is None
    assert "originalKsefNumber: 5265877635-20250626-010080DD2B5E-26" in sent.details
    assert "originalSessionReferenceNumber: 20250626-SO-2F14610000-242991F8C9-B4" in sent.details
    assert mapping.original_ksef_number(sent) == "5265877635-20250626-010080DD2B5E-26"
    assert mapping.original_ksef_number(mapping.sent_invoice(SUCCESS)) is None


@pytest.mark.parametrize(("text", "expected"), [
    ("2025-07-11T12:23:56.0154302+00:00", datetime(2025, 7, 11, 12, 23, 56, 15430, tzinfo=UTC)),
    ("2025-09-16T11:05:40.841+02:00", datetime(2025, 9, 16, 9, 5, 40, 841000, tzinfo=UTC)),
    ("2025-09-21T14:54:20Z", datetime(2025, 9, 21, 14, 54, 20, tzinfo=UTC)),
    ("2025-10-11T12:23:56.0154302", datetime(2025, 10, 11, 10, 23, 56, 15430, tzinfo=UTC)),  # Polish time (CEST)
    ("2025-01-11T12:00:00", datetime(2025, 1, 11, 11, 0, tzinfo=UTC)),  # Polish time (CET)
])
def test_times(text: str, expected: datetime) -> None:
    assert mapping.parse_time(text) == expected
    assert mapping.parse_time(None) is None


def test_certificate_choice() -> None:
    now = datetime(2026, 12, 2, tzinfo=UTC)
    certs = [
        {"certificate": "old", "usage": ["KsefTokenEncryption"], "validFrom": "2025-09-29T06:03:19+00:00",
         "validTo": "2027-09-29T06:03:18+00:00"},
        {"certificate": "new", "usage": ["KsefTokenEncryption"], "validFrom": "2026-11-29T06:03:19+00:00",
         "validTo": "2028-09-29T06:03:18+00:00"},
        {"certificate": "future", "usage": ["KsefTokenEncryption"], "validFrom": "2027-01-01T00:00:00+00:00",
         "validTo": "2029-01-01T00:00:00+00:00"},
        {"certificate": "sym", "usage": ["SymmetricKeyEncryption"], "validFrom": "2025-09-29T06:17:45+00:00",
         "validTo": "2026-12-01T00:00:00+00:00"},
    ]
    assert mapping.select_certificate(certs, "KsefTokenEncryption", now)["certificate"] == "new"
    with pytest.raises(LookupError):  # the only one has expired
        mapping.select_certificate(certs, "SymmetricKeyEncryption", now)


def test_session_status() -> None:
    status = mapping.session_status({  # open-api.json's example
        "status": {"code": 200, "description": "Sesja interaktywna przetworzona pomyślnie"},
        "dateCreated": "2025-09-18T15:00:30+00:00", "dateUpdated": "2025-09-18T15:01:20+00:00",
        "upo": {"pages": [{"referenceNumber": "20250918-EU-2EBD6FA000-242EB9B66D-43",
                           "downloadUrl": "https://api-test.ksef.mf.gov.pl/storage/01/x/session-upo/upo_00.xml",
                           "downloadUrlExpirationDate": "2025-09-21T15:00:50+00:00"}]},
        "invoiceCount": 10, "successfulInvoiceCount": 8, "failedInvoiceCount": 2})
    assert (status.code, status.invoice_count, status.successful, status.failed) == (200, 10, 8, 2)
    assert not status.is_open and status.upo_pages[0].reference == "20250918-EU-2EBD6FA000-242EB9B66D-43"


def _response(status: int, body: object, media: str = "application/json") -> httpx.Response:
    return httpx.Response(status, json=body, headers={"Content-Type": media})


def test_error_bodies_both_shapes() -> None:
    legacy = error_body(_response(400, {"exception": {"exceptionDetailList": [{
        "exceptionCode": 21405, "exceptionDescription": "Błąd walidacji danych wejściowych.",
        "details": ["invoiceHash is required"]}], "referenceNumber": "a1b2c3d4-e5f6-4789-ab12-cd34ef567890",
        "serviceCode": "00-c02c-00", "serviceCtx": "srvABCDA", "serviceName": "Undefined",
        "timestamp": "2025-10-11T12:23:56.0154302"}}))
    assert legacy == KsefError((21405,), "Błąd walidacji danych wejściowych.", ("invoiceHash is required",))
    problem = error_body(_response(400, {
        "title": "Bad Request", "status": 400, "instance": "/v2/sessions/online", "detail": "x",
        "errors": [{"code": 21470, "description": "Przesłany identyfikator klucza jest nieznany.",
                    "details": ["Klucz o identyfikatorze K nie jest wspierany."]}],
        "timestamp": "2025-10-11T12:23:56Z", "traceId": "t"}, "application/problem+json"))
    assert problem.codes == (21470,) and problem.details == ("Klucz o identyfikatorze K nie jest wspierany.",)
    forbidden = error_body(_response(403, {"title": "Forbidden", "status": 403, "detail": "Brak uprawnień.",
                                           "reasonCode": "missing-permissions", "timestamp": "2025-10-11T12:00:00Z"}))
    assert forbidden.description == "Forbidden; Brak uprawnień." and forbidden.details == (
        "reasonCode: missing-permissions",)
    too_many = error_body(_response(429, {"status": {"code": 429, "description": "Too Many Requests",
                                                     "details": ["Spróbuj ponownie po 30 sekundach."]}}))
    assert too_many.description == "Too Many Requests" and too_many.details == ("Spróbuj ponownie po 30 sekundach.",)
    html = error_body(httpx.Response(502, text="<html>Bad Gateway</html>"))
    assert html.codes == () and html.description == "<html>Bad Gateway</html>"
    assert describe(400, legacy) == ("HTTP 400: 21405 Błąd walidacji danych wejściowych. "
                                     "(invoiceHash is required)")
