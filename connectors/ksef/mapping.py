"""KSeF's JSON and the port's types, both ways; no I/O.

Field names and codes are open-api.json's (KSeF API 2.0, "Wersja API 2.6.0"): ``InitTokenAuthenticationRequest``,
``OpenOnlineSessionRequest``, ``SendInvoiceRequest``, ``SessionInvoiceStatusResponse`` with its ``InvoiceStatusInfo``
(100 accepted for processing, 150 processing, 200 success, 4xx/5xx refused; 440 a duplicate whose ``extensions``
carry ``originalKsefNumber`` and ``originalSessionReferenceNumber``), ``SessionStatusResponse``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal
from zoneinfo import ZoneInfo

from hub.kernel.ports.invoicing import InvoiceStatusKind, SentInvoice

from .crypto import b64, sha256_b64

WARSAW = ZoneInfo("Europe/Warsaw")
# open-api.json, OpenOnlineSessionRequest.formCode: "FA (3)" with its space, schema 1-0E, value FA
FORM_CODE_FA3: dict[str, str] = {"systemCode": "FA (3)", "schemaVersion": "1-0E", "value": "FA"}
ACCEPTED = 200
PROCESSING = frozenset({100, 150})
DUPLICATE = 440
ORIGINAL_KSEF_NUMBER = "originalKsefNumber"  # InvoiceStatusInfo.extensions of a 440
TOKEN_USAGE = "KsefTokenEncryption"
KEY_USAGE = "SymmetricKeyEncryption"


def token_request(challenge: str, nip: str, encrypted_token: str, public_key_id: str | None) -> dict[str, Any]:
    """``POST /auth/ksef-token``: the challenge, the seller's NIP as the context, the encrypted token."""
    body: dict[str, Any] = {
        "challenge": challenge,
        "contextIdentifier": {"type": "Nip", "value": nip},
        "encryptedToken": encrypted_token,
    }
    if public_key_id:
        body["publicKeyId"] = public_key_id
    return body


def open_session_request(encrypted_key: str, iv: bytes, public_key_id: str | None) -> dict[str, Any]:
    """``POST /sessions/online`` for FA(3) invoices."""
    encryption: dict[str, Any] = {"encryptedSymmetricKey": encrypted_key, "initializationVector": b64(iv)}
    if public_key_id:
        encryption["publicKeyId"] = public_key_id
    return {"formCode": dict(FORM_CODE_FA3), "encryption": encryption}


def open_batch_request(encrypted_key: str, iv: bytes, public_key_id: str | None, *, archive_size: int,
                       archive_sha256: str, parts: Iterable[tuple[int, int, str]], offline: bool = False,
                       ) -> dict[str, Any]:
    """``POST /sessions/batch`` for FA(3) invoices: ``batchFile`` declares the whole UNENCRYPTED archive's size
    and hash and each ENCRYPTED part's (``parts``: ordinal, size, base64 SHA-256); the key as for an online
    session. ``compressionType`` Zip (the default, said outright); ``offlineMode`` for the whole batch (its
    invoices were issued in offline mode, tryby-offline.md)."""
    encryption: dict[str, Any] = {"encryptedSymmetricKey": encrypted_key, "initializationVector": b64(iv)}
    if public_key_id:
        encryption["publicKeyId"] = public_key_id
    return {
        "formCode": dict(FORM_CODE_FA3),
        "batchFile": {
            "fileSize": archive_size,
            "fileHash": archive_sha256,
            "compressionType": "Zip",
            "fileParts": [{"ordinalNumber": n, "fileSize": size, "fileHash": sha256} for n, size, sha256 in parts],
        },
        "encryption": encryption,
        "offlineMode": offline,
    }


def send_invoice_request(xml: bytes, ciphertext: bytes, *, offline: bool = False,
                         corrects_sha256: str | None = None) -> dict[str, Any]:
    """``POST /sessions/online/{ref}/invoices``: size and hash of the XML and of the raw ciphertext (not of its
    base64 text), the ciphertext in base64; ``offlineMode`` for an invoice issued in offline mode. A technical
    correction (offline/korekta-techniczna.md) is offline and names the rejected document's hash in
    ``hashOfCorrectedInvoice``."""
    body: dict[str, Any] = {
        "invoiceHash": sha256_b64(xml),
        "invoiceSize": len(xml),
        "encryptedInvoiceHash": sha256_b64(ciphertext),
        "encryptedInvoiceSize": len(ciphertext),
        "encryptedInvoiceContent": b64(ciphertext),
        "offlineMode": offline or corrects_sha256 is not None,
    }
    if corrects_sha256 is not None:
        body["hashOfCorrectedInvoice"] = corrects_sha256
    return body


def parse_time(value: str | None) -> datetime | None:
    """A KSeF date-time as UTC. KSeF writes seven fractional digits (``12:23:56.0154302+00:00``), more than
    Python reads, so they are cut to six; a time without an offset is Polish time (the one rule the documents
    give for offset-less times, InvoiceQueryDateRange)."""
    if not value:
        return None
    text = value.strip().replace("Z", "+00:00").replace("z", "+00:00")
    head, dot, rest = text.partition(".")
    if dot:
        digits = len(rest) - len(rest.lstrip("0123456789"))
        text = f"{head}.{rest[:min(digits, 6)]}{rest[digits:]}" if digits else head + rest
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=WARSAW)
    return moment.astimezone(UTC)


def status_kind(code: int) -> InvoiceStatusKind:
    """200 accepted; 100 and 150 still being verified; any other code a refusal (4xx, and 500/550 whose
    invoice never got a number: it may be sent again)."""
    if code == ACCEPTED:
        return "accepted"
    if code in PROCESSING:
        return "processing"
    return "rejected"


def _details(status: Mapping[str, Any]) -> tuple[str, ...]:
    details = [str(d) for d in status.get("details") or () if d is not None]
    extensions = status.get("extensions") or {}
    if isinstance(extensions, Mapping):
        details += [f"{key}: {value}" for key, value in extensions.items() if value is not None]
    return tuple(details)


def sent_invoice(entry: Mapping[str, Any]) -> SentInvoice:
    """One ``SessionInvoiceStatusResponse``. A duplicate (440) keeps the original's KSeF number and session in
    ``details`` as ``originalKsefNumber: ...`` (``original_ksef_number`` reads it back); its own
    ``ksef_number`` stays None: this send got none."""
    status = entry.get("status") or {}
    code = int(status.get("code", 0))
    kind = status_kind(code)
    return SentInvoice(
        sha256=str(entry["invoiceHash"]),
        reference=str(entry["referenceNumber"]),
        status=kind,
        code=code,
        description=str(status.get("description") or ""),
        details=_details(status),
        ksef_number=entry.get("ksefNumber") if kind == "accepted" else None,
        invoice_number=entry.get("invoiceNumber"),
        acquired_at=parse_time(entry.get("acquisitionDate")),
    )


def original_ksef_number(invoice: SentInvoice) -> str | None:
    """The KSeF number of the invoice a duplicate (440) repeats, when KSeF named it."""
    if invoice.code != DUPLICATE:
        return None
    prefix = f"{ORIGINAL_KSEF_NUMBER}: "
    for detail in invoice.details:
        if detail.startswith(prefix):
            return detail[len(prefix):]
    return None


@dataclass(frozen=True)
class UpoPage:
    reference: str
    download_url: str
    expires_at: datetime | None


SessionPhase = Literal["open", "processing", "done", "failed"]
SESSION_OPEN = 100  # online: "Sesja interaktywna otwarta"; batch: "Sesja wsadowa rozpoczęta" (not closed yet)
SESSION_PROCESSING = frozenset({150, 170})  # batch 150 "Trwa przetwarzanie"; online 170 closed, still verifying
# 200 processed; 445 "Błąd weryfikacji, brak poprawnych faktur": processed too, every invoice has its own
# (refusing) verdict, which sending it again would not change
SESSION_DONE = frozenset({200, 445})


@dataclass(frozen=True)
class SessionStatus:
    """``GET /sessions/{ref}`` (SessionStatusResponse's table, online and batch): 100 open (a batch: opened,
    not closed); 150 (batch) / 170 (online) closed, still processing; 200 processed; 445 processed, no invoice
    valid; the rest failures of the whole session: 405 the package's elements did not verify, 415 its key did
    not decrypt, 420 too many invoices, 430 the archive did not decompress, 435 a part did not decrypt, 440
    cancelled ("Przekroczono czas wysyłki": a batch never closed in time; "Nie przesłano faktur": nothing
    sent), 500 unknown."""

    code: int
    description: str
    details: tuple[str, ...]
    created_at: datetime | None
    updated_at: datetime | None
    valid_until: datetime | None
    invoice_count: int | None
    successful: int | None
    failed: int | None
    upo_pages: tuple[UpoPage, ...]

    @property
    def is_open(self) -> bool:
        return self.code == SESSION_OPEN

    @property
    def phase(self) -> SessionPhase:
        """What the hub does next: "open" (a batch not closed: finish it, or, its parts gone with a restart,
        wait for it to be cancelled or send its invoices again elsewhere: an unclosed batch never yields an
        invoice); "processing" (closed: ask again later); "done" (each invoice's verdict is in ``find_sent``);
        "failed" (the session as a whole: cancelled, expired, or its package unreadable: read ``find_sent``,
        normally empty, and send every invoice without a KSeF number again in a new session). An unlisted code:
        "processing" below 300, else "failed"."""
        if self.code == SESSION_OPEN:
            return "open"
        if self.code in SESSION_DONE:
            return "done"
        if self.code in SESSION_PROCESSING or self.code < 300:
            return "processing"
        return "failed"


def session_status(body: Mapping[str, Any]) -> SessionStatus:
    status = body.get("status") or {}
    upo = body.get("upo") or {}
    pages = tuple(UpoPage(str(p["referenceNumber"]), str(p["downloadUrl"]),
                          parse_time(p.get("downloadUrlExpirationDate"))) for p in upo.get("pages") or ())
    return SessionStatus(
        code=int(status.get("code", 0)), description=str(status.get("description") or ""),
        details=tuple(str(d) for d in status.get("details") or ()),
        created_at=parse_time(body.get("dateCreated")), updated_at=parse_time(body.get("dateUpdated")),
        valid_until=parse_time(body.get("validUntil")), invoice_count=body.get("invoiceCount"),
        successful=body.get("successfulInvoiceCount"), failed=body.get("failedInvoiceCount"), upo_pages=pages)


def select_certificate(certificates: Iterable[Mapping[str, Any]], usage: str, now: datetime) -> Mapping[str, Any]:
    """The certificate for ``usage`` valid now; of several, the latest ``validFrom``
    (klucze-publiczne-do-szyfrowania.md §4.1). LookupError when none fits."""
    fitting: list[tuple[datetime, Mapping[str, Any]]] = []
    for cert in certificates:
        if usage not in (cert.get("usage") or ()):
            continue
        valid_from, valid_to = parse_time(cert.get("validFrom")), parse_time(cert.get("validTo"))
        if (valid_from is not None and valid_from > now) or (valid_to is not None and valid_to <= now):
            continue
        fitting.append((valid_from or datetime.min.replace(tzinfo=UTC), cert))
    if not fitting:
        raise LookupError(f"KSeF lists no valid public key certificate for {usage}")
    return max(fitting, key=lambda pair: pair[0])[1]


def sent_invoices(entries: Sequence[Mapping[str, Any]]) -> list[SentInvoice]:
    return [sent_invoice(entry) for entry in entries]
