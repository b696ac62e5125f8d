"""An in-memory KSeF (API 2.0) speaking what the connector uses, built from the Ministry's documents, with
faults on demand.

A WSGI app: tests use it in-process through ``sim.transport()`` (httpx.WSGITransport plus a dropped connection);
the demo and benchmarks serve it on loopback with ``serve()`` / ``stop()`` (the client's ``api_url`` is the
address ``serve()`` returns, with or without the real API's ``/v2``: both are answered). Every exchange is
logged (``sim.log``).

Sources (shared/specs/ksef/, "Wersja API 2.6.0"): open-api.json (every shape and error code below),
uwierzytelnianie.md, bezpieczenstwo/klucze-publiczne-do-szyfrowania.md, sesja-interaktywna.md,
faktury/weryfikacja-faktury.md, faktury/numer-ksef.md, faktury/sesje/sesja-sprawdzenie-stanu-i-pobranie-upo.md,
faktury/upo/schemy/upo-v4-3.xsd, offline/automatyczne-okreslanie-trybu-offline.md, limity/limity.md.

What it follows ("(u)": what no document states, decided here):

- Keys: its own RSA-2048 key and a self-signed X.509 certificate (CN=Ministerstwo Finansów) listed by
  ``GET /security/public-key-certificates`` with both usages (``certificate`` DER base64, ``certificateId`` and
  ``publicKeyId`` base64 SHA-256 of the certificate and of its SubjectPublicKeyInfo). ``rotate_keys`` makes new
  ones: an emergency rotation withdraws the old key (a ``publicKeyId`` naming it: 400 21470), a planned one
  lists both. ``bare_public_key`` lists the SubjectPublicKeyInfo in place of the certificate, as the spec's
  own example does.
- Authentication: ``POST /auth/challenge`` (a challenge lives 10 minutes and serves once: else 400 21111),
  ``POST /auth/ksef-token`` (202; the token is NOT checked there: the RSA-OAEP plaintext must be
  ``{token}|{timestampMs}`` of that challenge, else the operation ends in status 450 "Nieprawidłowy czas
  tokena"/"Nieprawidłowy token"; a token of another NIP or revoked: 415/450), ``GET /auth/{ref}`` with the
  authenticationToken (100 for ``auth_polls`` reads, then the outcome), ``POST /auth/token/redeem`` once
  (again: 400 21301), ``POST /auth/token/refresh`` with the refresh token. Tokens are JWT-shaped and opaque;
  an access token lives ``access_ttl`` seconds (the docs: "kilkanaście minut"), a refresh token
  ``refresh_ttl`` (7 days). Any other call needs a live access token: else 401 (UnauthorizedProblemDetails).
- ``POST /sessions/online`` (201): formCode FA (3)/1-0E/FA only (u: the others are listed by the spec but
  not simulated: 400 21405); the RSA-OAEP encrypted key must decrypt to 32 bytes, else the session is opened in
  status 415 and refuses invoices (21180); a 16-byte IV; 12 hours' life.
- ``POST /sessions/online/{ref}/invoices`` (202): 21173 (no such session of this context), 21180 (the session
  is not open), 21155 (``max_invoices`` reached), 21405 (the body), 21402/21403 (the size/hash of the
  ciphertext, then of the decrypted XML). Then, decided at once and shown after ``verification_polls`` status
  reads and ``verification_seconds`` (``hold_verification`` holds all): 435 the ciphertext does not decrypt;
  430 (weryfikacja-faktury.md "Weryfikacja XML") a BOM, XML that is not well-formed, a DOCTYPE, a processing
  instruction, an encoding other than UTF-8 declared, a discouraged character, or FA(3) schema problems
  (hub.invoicing.schemas) as details; 410 a seller (Podmiot1 NIP) other than the session's NIP (u); 450 a NIP
  with a wrong check digit (``check_nip_checksums``, production's rule) or P_1 later than the day of
  acceptance; a forced rejection (``reject_invoice``); 440 a duplicate: the seller's NIP, RodzajFaktury and
  P_2 of an invoice already accepted, with ``extensions.originalKsefNumber`` and
  ``originalSessionReferenceNumber``; else 200 with a KSeF number ``NIP-YYYYMMDD-12HEX-CRC8``. ``invoicingMode``
  is Offline when P_1 is an earlier day than the acceptance (automatyczne-okreslanie-trybu-offline.md).
- ``GET /sessions/{ref}`` (100 open, 170 closed with invoices still verifying, 200, 415, 440 "Nie przesłano
  faktur", 445 none valid; ``upo.pages`` once processed), ``GET /sessions/{ref}/invoices`` and ``.../failed``
  (``pageSize`` 10..1000, ``x-continuation-token``: 21418 when unknown), ``GET
  /sessions/{ref}/invoices/{invoiceRef}``, ``.../upo`` and ``.../ksef/{ksefNumber}/upo`` (application/xml with
  ``x-ms-meta-hash``; an invoice without a UPO: 400 21178), ``GET /sessions/{ref}/upo/{upoRef}``, ``POST
  /sessions/online/{ref}/close`` (204; a session not open: 21180). The pre-signed download addresses are served
  under ``/storage/`` without a bearer. UPOs are UPO v4-3 documents valid against its schema (u: unsigned;
  ``ZakresDokumentowDo`` written as the Ministry's example does, the last document's number).
- Batch sessions (sesja-wsadowa.md, open-api.json ``/sessions/batch``): ``POST /sessions/batch`` (201) checks
  the formCode (FA (3) only, as online), ``batchFile`` (``fileSize`` 1..5 GB, ``fileHash`` a base64 SHA-256,
  ``compressionType`` Zip or TarGz, 1..50 ``fileParts`` with distinct ordinals, else 21405; over 50: 21161; an
  encrypted part's size not a whole number of AES blocks or over 100 MB and its padding: 21157 (u)) and the
  encryption as online (21470), and answers one ``partUploadRequests`` entry a part: ``PUT`` to
  ``/storage/batch-parts/{ref}/{ordinal}?se=..&sp=w&sig=..`` on its own host (not under /v2, no bearer: an
  Authorization header is 401 (u); a bad signature or an address past its time, or a session closed or
  cancelled: 403), header ``x-ms-blob-type: BlockBlob`` required (400 without it, as the spec's example
  gives it); the storage keeps the bytes (again: replaced) and answers 201, or 400 when their size or hash is
  not the declared one (``check_part_uploads``; off, it keeps anything, as a plain blob store would). The
  time to upload and close is 20 minutes a declared part (``batch_part_minutes``), from the opening (u: the
  docs give it for the uploads; the close's limit, 21208, is not quantified). ``POST
  /sessions/batch/{ref}/close`` (204): 21208 past that time or after ``expire_session``, 21180 not open,
  21205 a declared part never uploaded, 21157 a part's size not the declared one; then the package is
  processed (statuses of the spec's batch table, shown at once): 415 the key did not decrypt, 405 a part's
  hash or the whole archive's size or hash is not the declared one (u), 435 a part does not decrypt, 430 the
  archive does not unpack, 420 more files than ``max_invoices``; else each file is an invoice
  (``invoiceFileName``), verified exactly as an online send (a file over ``max_invoice_bytes``: 430 (u)),
  its ``invoicingDate`` the session's opening (automatyczne-okreslanie-trybu-offline.md), its verdict shown
  as an online one's. ``GET /sessions/{ref}`` of a batch: 100 "Sesja wsadowa rozpoczęta" until closed, 150
  while its invoices are verified, then 200 or 445 (no valid invoice; 440 "Nie przesłano faktur" for an
  empty archive), or 440 "Przekroczono czas wysyłki" once its time is up unclosed; ``validUntil`` is that time
  (u). An online route on a batch session or the batch close on an online one: 21173 (u).
- Errors: 400 as ``ExceptionResponse`` (exceptionCode/exceptionDescription/details), or as
  BadRequestProblemDetails when the request says ``X-Error-Format: problem-details``; 429 likewise, with
  ``Retry-After``; a 5xx as problem details (u: the spec shows none).

Faults (``fail_next``, ``lose_next``, ``slow_next``, ``delay``), on the API's paths and the storage's alike: an
answer of any status before the request is applied, a 5xx after it was applied (a gateway that gave up), a
request applied and its connection dropped (in-process: httpx.RemoteProtocolError; served: the server drops the
connection and prints the traceback), a slow answer. ``expire_session`` ends a session's time now. Seed data:
``tokens`` (KSeF token -> the NIP it is for).
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import io
import json
import re
import secrets
import tarfile
import threading
import time
import zipfile
import zlib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, quote

import httpx
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from lxml import etree
from lxml.builder import ElementMaker
from stdnum.pl import nip as pl_nip

from connectors.simserver import LoopbackServer
from hub.invoicing import schemas

from . import crypto
from .mapping import WARSAW

DEFAULT_NIP = "5260250274"
# a KSeF token as POST /tokens answers one: "{referenceNumber}|{context}|{secret}" (open-api.json example)
_TOKEN_REF = "20261202-EC-0123456789-ABCDEF0123"
DEFAULT_TOKEN = (f"{_TOKEN_REF}-{crypto.crc8_hex(_TOKEN_REF)}|nip-{DEFAULT_NIP}|"
                 "5f0c6a1e9d2b4c7e8a3f1b2d4e6c8a0f1e3d5c7b9a2f4e6d8c0b1a3f5e7d9c2b")
UPO_NS = "http://upo.schematy.mf.gov.pl/KSeF/v4-3"
FA3_FORM = {"systemCode": "FA (3)", "schemaVersion": "1-0E", "value": "FA"}
CHALLENGE_LIFE = timedelta(minutes=10)
SESSION_LIFE = timedelta(hours=12)
AUTH_STATUS_LIFE = timedelta(days=7)
MAX_INVOICE_BYTES = 1_000_000
MAX_BATCH_PARTS = 50  # BatchFileInfo.fileParts maxItems
MAX_BATCH_BYTES = 5_000_000_000  # BatchFileInfo.fileSize maximum
MAX_PART_BYTES = 100_000_000  # a part before encryption; encrypted, PKCS#7 adds up to one block
BLOB_HEADERS = {"x-ms-blob-type": "BlockBlob"}  # the spec's example partUploadRequests[].headers
DISCOURAGED = re.compile(
    "[\x7f-\x84\x86-\x9f\ufdd0-\ufdef"
    + "".join(f"{chr(plane * 0x10000 + 0xFFFE)}{chr(plane * 0x10000 + 0xFFFF)}" for plane in range(1, 17))
    + "]")

StartResponse = Callable[..., Any]
_Answer = tuple[int, Any, list[tuple[str, str]]]  # status, JSON (or bytes), headers

# open-api.json texts
DESCRIPTIONS = {
    21111: "Nieprawidłowe wyzwanie autoryzacyjne.",
    21155: "Przekroczono dozwoloną liczbę faktur w sesji.",
    21157: "Nieprawidłowy rozmiar części pakietu.",
    21161: "Przekroczono dozwoloną liczbę części pakietu.",
    21173: "Brak sesji o wskazanym numerze referencyjnym.",
    21178: "Nie znaleziono UPO dla podanych kryteriów.",
    21180: "Status sesji nie pozwala na wykonanie operacji.",
    21205: "Pakiet nie może być pusty.",
    21208: "Czas oczekiwania na requesty upload lub finish został przekroczony.",
    21301: "Brak autoryzacji.",
    21304: "Brak uwierzytelnienia.",
    21402: "Nieprawidłowy rozmiar pliku.",
    21403: "Nieprawidłowy skrót pliku.",
    21405: "Błąd walidacji danych wejściowych.",
    21418: "Przekazany token kontynuacji ma nieprawidłowy format.",
    21470: "Przesłany identyfikator klucza jest nieznany lub wskazuje na wycofany klucz.",
}
INVOICE_STATUS = {
    100: "Faktura przyjęta do dalszego przetwarzania",
    150: "Trwa przetwarzanie",
    200: "Sukces",
    405: "Przetwarzanie anulowane z powodu błędu sesji",
    410: "Nieprawidłowy zakres uprawnień",
    415: "Brak możliwości wysyłania faktury z załącznikiem",
    430: "Błąd weryfikacji pliku faktury",
    435: "Błąd odszyfrowania pliku",
    440: "Duplikat faktury",
    450: "Błąd weryfikacji semantyki dokumentu faktury",
    500: "Nieznany błąd (500)",
    550: "Operacja została anulowana przez system",
}
SESSION_STATUS = {
    100: "Sesja interaktywna otwarta",
    170: "Sesja interaktywna zamknięta",
    200: "Sesja interaktywna przetworzona pomyślnie",
    415: "Błąd odszyfrowania dostarczonego klucza",
    440: "Sesja anulowana",
    445: "Błąd weryfikacji, brak poprawnych faktur",
}
BATCH_SESSION_STATUS = {
    100: "Sesja wsadowa rozpoczęta",
    150: "Trwa przetwarzanie",
    200: "Sesja wsadowa przetworzona pomyślnie",
    405: "Błąd weryfikacji poprawności dostarczonych elementów paczki",
    415: "Błąd odszyfrowania dostarczonego klucza",
    420: "Przekroczony limit faktur w sesji",
    430: "Błąd dekompresji pierwotnego archiwum",
    435: "Błąd odszyfrowania zaszyfrowanych części archiwum",
    440: "Sesja anulowana",
    445: "Błąd weryfikacji, brak poprawnych faktur",
    500: "Nieznany błąd (500)",
}
TIMED_OUT = "Przekroczono czas wysyłki"
NOTHING_SENT = "Nie przesłano faktur"
REASONS = {200: "OK", 201: "Created", 202: "Accepted", 204: "No Content", 400: "Bad Request", 401: "Unauthorized",
           403: "Forbidden", 404: "Not Found", 405: "Method Not Allowed", 410: "Gone", 429: "Too Many Requests",
           500: "Internal Server Error", 502: "Bad Gateway", 503: "Service Unavailable", 504: "Gateway Timeout"}


@functools.cache
def _private_key(index: int) -> rsa.RSAPrivateKey:
    """RSA-2048 keys, made once per process (a key takes a noticeable moment to make)."""
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _ts(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds")


def _warsaw_ts(moment: datetime) -> str:
    return moment.astimezone(WARSAW).isoformat(timespec="milliseconds")


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


class _Reply(Exception):
    """An error answer: 400 with KSeF codes, 401, 404, 410, 429 or a 5xx."""

    def __init__(self, status: int, code: int | None = None, details: Iterable[str] = (), *,
                 detail: str | None = None, headers: Iterable[tuple[str, str]] = ()):
        if status == 400 and code is None:  # a 400 always names its code (an injected one: validation)
            code = 21405
        super().__init__(detail or DESCRIPTIONS.get(code or 0, ""))
        self.status, self.code, self.details = status, code, list(details)
        self.detail = detail
        self.headers = list(headers)


class _Dropped(Exception):
    """The request was applied and its connection is closed without an answer."""


@dataclass
class _Planned:
    path: re.Pattern[str]
    method: str | None
    remaining: int
    status: int = 503
    after_apply: bool = False
    drop: bool = False
    seconds: float = 0.0
    retry_after: int | None = None

    def matches(self, method: str, path: str) -> bool:
        return (self.method is None or self.method == method) and bool(self.path.search(path))


@dataclass
class Exchange:
    """One request as KSeF saw it (``applied``: it changed KSeF's state)."""

    method: str
    path: str
    query: dict[str, str]
    body: Any
    status: int = 0
    response: Any = None
    fault: str | None = None
    applied: bool = False


@dataclass
class _PublishedKey:
    private: rsa.RSAPrivateKey
    certificate: bytes  # DER
    usage: tuple[str, ...]
    valid_from: datetime
    valid_to: datetime
    withdrawn: bool = False

    @property
    def spki(self) -> bytes:
        return self.private.public_key().public_bytes(serialization.Encoding.DER,
                                                       serialization.PublicFormat.SubjectPublicKeyInfo)

    @property
    def key_id(self) -> str:
        return crypto.sha256_b64(self.spki)


@dataclass
class KsefToken:
    """A KSeF token as the Ministry keeps it: the NIP it acts for and its own reference number."""

    nip: str
    reference: str
    revoked: bool = False


@dataclass
class _AuthOperation:
    reference: str
    nip: str
    token: KsefToken | None
    started: datetime
    outcome: tuple[int, str, list[str]]
    reads_left: int
    redeemed: bool = False


@dataclass
class _Grant:
    kind: str  # "auth" | "access" | "refresh"
    nip: str
    valid_until: datetime
    operation: str
    token_reference: str | None


@dataclass(frozen=True)
class _Call:
    """What a session route reads of its request."""

    environ: Mapping[str, Any]
    grant: _Grant
    query: Mapping[str, str]
    body: Any


@dataclass
class SimInvoice:
    ordinal: int
    reference: str
    session: str
    sha256: str
    size: int
    invoicing_date: datetime
    outcome: tuple[int, list[str], dict[str, str]]  # code, details, extensions (what verification decided)
    invoice_number: str | None = None
    issue_date: date | None = None
    seller_nip: str | None = None
    kind: str | None = None
    mode: str = "Online"
    ksef_number: str | None = None
    acquired_at: datetime | None = None
    reads: int = 0
    ready_at: datetime | None = None
    revealed: bool = False
    upo_override: bytes | None = None
    file_name: str | None = None  # a batch's: the file's name in the archive
    corrects: str | None = None  # a technical correction: hashOfCorrectedInvoice

    @property
    def code(self) -> int:
        return self.outcome[0]


@dataclass
class SimBatch:
    """A batch session's declared package, what reached the storage, and what its processing decided."""

    file_size: int
    file_hash: str
    compression: str  # "Zip" | "TarGz"
    parts: dict[int, tuple[int, str]]  # ordinal -> the declared size and hash of the encrypted part
    offline: bool
    uploads: dict[int, bytes] = field(default_factory=dict)
    cancelled: bool = False  # expire_session
    failure: tuple[int, str] | None = None  # the session's own failure code after the close, and why


@dataclass
class SimSession:
    reference: str
    nip: str
    token_reference: str | None
    key: crypto.SessionKey | None
    created: datetime
    updated: datetime
    valid_until: datetime
    closed_at: datetime | None = None
    invoices: list[SimInvoice] = field(default_factory=list)
    upo_reference: str | None = None
    batch: SimBatch | None = None  # None: an online session


class KsefSimulator:
    """One KSeF environment. Read its state from ``sessions``, ``tokens`` and ``accepted``."""

    def __init__(
        self,
        tokens: Mapping[str, str] | None = None,
        *,
        clock: Callable[[], datetime] | None = None,
        verification_polls: int = 1,
        verification_seconds: float = 0.0,
        auth_polls: int = 1,
        access_ttl: float = 900.0,
        refresh_ttl: float = 7 * 24 * 3600.0,
        check_nip_checksums: bool = True,
        max_invoices: int = 10_000,
    ):
        self.tokens: dict[str, KsefToken] = {}
        self.sessions: dict[str, SimSession] = {}
        # (seller NIP, RodzajFaktury, P_2) -> (KSeF number, session) of the accepted invoice
        self.accepted: dict[tuple[str, str, str], tuple[str, str]] = {}
        self.log: list[Exchange] = []
        self.verification_polls = verification_polls
        self.verification_seconds = verification_seconds
        self.hold_verification = False
        self.auth_polls = auth_polls
        self.access_ttl = access_ttl
        self.refresh_ttl = refresh_ttl
        self.check_nip_checksums = check_nip_checksums
        self.max_invoices = max_invoices
        self.max_invoice_bytes = MAX_INVOICE_BYTES
        self.batch_part_minutes = 20.0  # sesja-wsadowa.md: the upload time is 20 minutes per declared part
        self.check_part_uploads = True  # the storage refuses a part whose size or hash is not the declared one
        self.bare_public_key = False
        self.delay = 0.0  # seconds every answer waits
        self._clock = clock
        self._offset = timedelta(0)
        self._lock = threading.RLock()
        self._secret = secrets.token_bytes(32)
        self._counter = 0
        self._key_index = 0
        self._keys: list[_PublishedKey] = []
        self._challenges: dict[str, tuple[int, datetime]] = {}
        self._operations: dict[str, _AuthOperation] = {}
        self._grants: dict[str, _Grant] = {}
        self._continuations: dict[str, tuple[str, bool, int]] = {}
        self._rejections: dict[str, tuple[int, str | None, list[str]]] = {}
        self._planned: list[_Planned] = []
        for token, nip in (tokens or {DEFAULT_TOKEN: DEFAULT_NIP}).items():
            self.add_token(token, nip)
        self._publish_key(("KsefTokenEncryption", "SymmetricKeyEncryption"))
        self._loopback = LoopbackServer(self, "ksef-simulator")

    # --- the test's handles ------------------------------------------------------------------------------

    def now(self) -> datetime:
        base = self._clock() if self._clock is not None else datetime.now(UTC)
        return base + self._offset

    def advance(self, seconds: float) -> None:
        """KSeF's clock moves on (token lifetimes, verification_seconds, session lives)."""
        with self._lock:
            self._offset += timedelta(seconds=seconds)

    def add_token(self, token: str, nip: str) -> KsefToken:
        """A KSeF token for ``nip``; its reference is the token's own first part when it has one."""
        with self._lock:
            head = token.split("|", 1)[0]
            entry = KsefToken(nip, head if len(head) == 36 else self._reference("EC"))
            self.tokens[token] = entry
            return entry

    def revoke_token(self, token: str) -> None:
        """The owner revokes the KSeF token: new authentications with it end in 450."""
        with self._lock:
            self.tokens[token].revoked = True

    def revoke_access_tokens(self) -> None:
        """Every access token stops working (401); refresh tokens still do."""
        with self._lock:
            self._grants = {k: g for k, g in self._grants.items() if g.kind != "access"}

    def revoke_refresh_tokens(self) -> None:
        with self._lock:
            self._grants = {k: g for k, g in self._grants.items() if g.kind != "refresh"}

    def rotate_keys(self, *, emergency: bool = True, separate: bool = False) -> None:
        """A new key pair; an emergency rotation withdraws the old keys at once (their publicKeyId: 21470), a
        planned one keeps listing them. ``separate``: one key per usage."""
        with self._lock:
            for key in self._keys:
                key.withdrawn = key.withdrawn or emergency
            usages = (("KsefTokenEncryption",), ("SymmetricKeyEncryption",)) if separate else (
                ("KsefTokenEncryption", "SymmetricKeyEncryption"),)
            for usage in usages:
                self._publish_key(usage)

    def reject_invoice(self, invoice_number: str, code: int = 450, description: str | None = None,
                       details: Iterable[str] = ("Odrzucona na żądanie testu.",)) -> None:
        """The next invoice numbered ``invoice_number`` (P_2) is refused with ``code``."""
        with self._lock:
            self._rejections[invoice_number] = (code, description, list(details))

    def replace_upo(self, invoice_reference: str, content: bytes) -> None:
        """Serve ``content`` as that invoice's UPO (a damaged or hostile one)."""
        with self._lock:
            self._invoice_by_reference(invoice_reference).upo_override = content

    def expire_session(self, reference: str) -> None:
        """The session's time is up now: a batch not closed yet is cancelled (440 "Przekroczono czas wysyłki",
        its uploads 403, its close 21208); an online session is closed by KSeF, as at its validUntil."""
        with self._lock:
            session = self.sessions[reference]
            if session.batch is not None:
                session.batch.cancelled = session.closed_at is None
            else:
                session.valid_until = min(session.valid_until, self.now())

    def finish_verification(self) -> None:
        """Every invoice gets its verdict now."""
        with self._lock:
            self.hold_verification = False
            for session in self.sessions.values():
                for invoice in session.invoices:
                    self._reveal(invoice)

    def fail_next(self, path: str, status: int = 503, times: int = 1, *, method: str | None = None,
                  after_apply: bool = False, retry_after: int | None = None) -> None:
        """The next ``times`` requests whose path (below /v2; a part's upload: "/storage/batch-parts/{ref}/{n}")
        matches the regex ``path`` (searched: a plain prefix like "/sessions/online" works) are answered
        ``status``: before KSeF applies them, or after (``after_apply``, a gateway that gave up). A 429 carries
        ``Retry-After``."""
        self._plan(_Planned(re.compile(path), method, times, status=status, after_apply=after_apply,
                            retry_after=retry_after))

    def lose_next(self, path: str, times: int = 1, *, method: str | None = None, drop: bool = False) -> None:
        """Lose the answer: KSeF applies the request, then answers 500 (or, ``drop``, closes the connection)."""
        self._plan(_Planned(re.compile(path), method, times, status=500, after_apply=True, drop=drop))

    def slow_next(self, path: str, seconds: float, times: int = 1, *, method: str | None = None) -> None:
        self._plan(_Planned(re.compile(path), method, times, status=0, seconds=seconds))

    def clear_faults(self) -> None:
        with self._lock:
            self._planned.clear()
            self.delay = 0.0

    def exchanges(self, method: str, path: str) -> list[Exchange]:
        """The logged exchanges of ``method`` whose path matches the regex ``path``."""
        pattern = re.compile(path)
        with self._lock:
            return [e for e in self.log if e.method == method and pattern.search(e.path)]

    def invoice(self, reference: str) -> SimInvoice:
        with self._lock:
            return self._invoice_by_reference(reference)

    def private_key(self, usage: str = "SymmetricKeyEncryption") -> rsa.RSAPrivateKey:
        """The private key behind the newest listed certificate for ``usage`` (tests decrypt with it)."""
        with self._lock:
            return [k for k in self._keys if usage in k.usage and not k.withdrawn][-1].private

    def transport(self) -> httpx.BaseTransport:
        return _SimTransport(self)

    def serve(self, host: str = "127.0.0.1", port: int = 0, *, latency: float = 0.0) -> str:
        """Serve on loopback; the base URL for the client's ``api_url``."""
        return self._loopback.start(host, port, latency=latency)

    def stop(self) -> None:
        self._loopback.stop()

    # --- plumbing ----------------------------------------------------------------------------------------

    def _plan(self, planned: _Planned) -> None:
        with self._lock:
            self._planned.append(planned)

    def _take_fault(self, method: str, path: str) -> _Planned | None:
        with self._lock:
            for planned in self._planned:
                if planned.remaining > 0 and planned.matches(method, path):
                    planned.remaining -= 1
                    if planned.remaining == 0:
                        self._planned.remove(planned)
                    return planned
        return None

    def _reference(self, kind: str) -> str:
        """``YYYYMMDD-KK-HHHHHHHHHH-HHHHHHHHHH-CC``: the shape of every reference in the spec (the last two
        digits the CRC-8 of the rest, as in six of the spec's seven examples)."""
        self._counter += 1
        head = f"{self.now().astimezone(WARSAW):%Y%m%d}-{kind}-{self._counter:010X}-{secrets.token_hex(5).upper()}"
        return f"{head}-{crypto.crc8_hex(head)}"

    def _jwt(self, claims: Mapping[str, Any]) -> str:
        header = _b64url(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
        payload = _b64url(json.dumps({**claims, "jti": secrets.token_hex(8)}).encode())
        signature = _b64url(hmac.new(self._secret, f"{header}.{payload}".encode(), hashlib.sha256).digest())
        return f"{header}.{payload}.{signature}"

    def _publish_key(self, usage: tuple[str, ...]) -> None:
        private = _private_key(self._key_index)
        self._key_index += 1
        now = self.now()
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Ministerstwo Finansów"),
                          x509.NameAttribute(NameOID.COUNTRY_NAME, "PL")])
        certificate = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
                       .public_key(private.public_key()).serial_number(x509.random_serial_number())
                       .not_valid_before(now - timedelta(days=1)).not_valid_after(now + timedelta(days=730))
                       .sign(private, hashes.SHA256()))
        self._keys.append(_PublishedKey(private, certificate.public_bytes(serialization.Encoding.DER), usage,
                                        now - timedelta(days=1) + timedelta(seconds=len(self._keys)),
                                        now + timedelta(days=730)))

    def _decrypt(self, usage: str, ciphertext: bytes, key_id: str | None) -> bytes | None:
        """The plaintext under the key ``key_id`` names (21470 when it names none or a withdrawn one), or
        under any listed key for ``usage``; None when none decrypts it."""
        if key_id is not None:
            keys = [k for k in self._keys if k.key_id == key_id and usage in k.usage and not k.withdrawn]
            if not keys:
                raise _Reply(400, 21470, [f"Klucz o identyfikatorze {key_id} nie jest wspierany."])
        else:
            keys = [k for k in self._keys if usage in k.usage and not k.withdrawn]
        for key in keys:
            try:
                return crypto.rsa_decrypt(key.private, ciphertext)
            except ValueError:
                continue
        return None

    # --- WSGI --------------------------------------------------------------------------------------------

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        method = environ["REQUEST_METHOD"]
        path = environ.get("PATH_INFO", "") or "/"
        if path == "/v2" or path.startswith("/v2/"):
            path = path[3:] or "/"
        query = {k: v[-1] for k, v in parse_qs(environ.get("QUERY_STRING", ""), keep_blank_values=True).items()}
        length = int(environ.get("CONTENT_LENGTH") or 0)
        raw = environ["wsgi.input"].read(length) if length else b""
        try:
            body: Any = json.loads(raw) if raw else None
        except (json.JSONDecodeError, UnicodeDecodeError):
            body = raw
        exchange = Exchange(method, path, query, body)
        with self._lock:
            self.log.append(exchange)
        problem = environ.get("HTTP_X_ERROR_FORMAT", "").strip().lower() == "problem-details"
        fault = self._take_fault(method, path)
        seconds = self.delay + (fault.seconds if fault else 0.0)
        if fault is not None and fault.status and not fault.after_apply:
            exchange.fault = f"{fault.status}"
            return self._error(start_response, exchange, _Reply(
                fault.status, detail="Simulated failure", headers=[("Retry-After", str(fault.retry_after))]
                if fault.retry_after is not None else ()), problem)
        try:
            with self._lock:
                status, payload, headers = self._route(environ, method, path, query, body, raw)
            exchange.applied = method != "GET"
        except _Reply as reply:
            if seconds > 0:
                time.sleep(seconds)
            return self._error(start_response, exchange, reply, problem)
        if seconds > 0:
            time.sleep(seconds)
        if fault is not None and fault.drop:
            exchange.fault = "drop"
            raise _Dropped(f"{method} {path}: applied, connection dropped")
        if fault is not None and fault.after_apply:
            exchange.fault = f"{fault.status} after"
            return self._error(start_response, exchange, _Reply(fault.status, detail="Simulated failure after "
                                                                "the request was applied"), problem)
        exchange.status, exchange.response = status, payload
        return self._send(start_response, status, payload, headers)

    def _send(self, start_response: StartResponse, status: int, payload: Any,
              headers: Iterable[tuple[str, str]] = ()) -> list[bytes]:
        reason = REASONS.get(status, "Status")
        if status == 204:
            start_response(f"{status} {reason}", list(headers))
            return [b""]
        if isinstance(payload, bytes):
            start_response(f"{status} {reason}", list(headers))
            return [payload]
        data = json.dumps(payload, ensure_ascii=False).encode()
        start_response(f"{status} {reason}", [("Content-Type", "application/json; charset=utf-8"), *headers])
        return [data]

    def _error(self, start_response: StartResponse, exchange: Exchange, reply: _Reply, problem: bool) -> list[bytes]:
        now = _ts(self.now())
        trace = secrets.token_hex(8)
        headers = list(reply.headers)
        media = "application/problem+json"
        body: dict[str, Any]
        if reply.status == 400 and not problem:
            media = "application/json"
            body = {"exception": {
                "exceptionDetailList": [{"exceptionCode": reply.code, "exceptionDescription": str(reply),
                                         "details": reply.details or None}],
                "referenceNumber": f"{secrets.token_hex(4)}-{secrets.token_hex(2)}-4{secrets.token_hex(2)[1:]}-"
                                   f"a{secrets.token_hex(2)[1:]}-{secrets.token_hex(6)}",
                "serviceCode": f"00-{trace}-00", "serviceCtx": "srvSIMUL", "serviceName": "KSeF simulator",
                "timestamp": now}}
        elif reply.status == 400:
            body = {"title": "Bad Request", "status": 400, "instance": exchange.path, "detail": str(reply),
                    "errors": [{"code": reply.code, "description": str(reply), "details": reply.details or None}],
                    "timestamp": now, "traceId": trace}
        elif reply.status == 401:
            body = {"title": "Unauthorized", "status": 401, "detail": reply.detail or "Brak uwierzytelnienia.",
                    "instance": exchange.path, "traceId": trace, "timestamp": now}
        elif reply.status == 429 and not problem:
            media = "application/json"
            body = {"status": {"code": 429, "description": "Too Many Requests", "details": [
                "Przekroczono limit żądań. Spróbuj ponownie po kilku sekundach."]}}
        elif reply.status == 429:
            body = {"title": "Too Many Requests", "status": 429, "instance": exchange.path,
                    "detail": "Przekroczono limit żądań.", "timestamp": now, "traceId": trace}
        else:
            body = {"title": REASONS.get(reply.status, "Error"), "status": reply.status, "instance": exchange.path,
                    "detail": reply.detail or str(reply), "timestamp": now, "traceId": trace}
        if reply.status == 429 and not any(k.lower() == "retry-after" for k, _ in headers):
            headers.append(("Retry-After", "1"))
        exchange.status, exchange.response = reply.status, body
        data = json.dumps(body, ensure_ascii=False).encode()
        start_response(f"{reply.status} {REASONS.get(reply.status, 'Error')}",
                       [("Content-Type", f"{media}; charset=utf-8"), *headers])
        return [data]

    def _grant(self, environ: Mapping[str, Any], kind: str) -> _Grant:
        header = str(environ.get("HTTP_AUTHORIZATION") or "")
        if not header.startswith("Bearer "):
            raise _Reply(401, detail="Brak tokena uwierzytelniającego (nagłówek Authorization: Bearer).")
        grant = self._grants.get(header[7:].strip())
        if grant is None or grant.kind != kind:
            raise _Reply(401, detail="Nieprawidłowy token.")
        if grant.valid_until <= self.now():
            raise _Reply(401, detail="Token wygasł.")
        return grant

    def _route(self, environ: Mapping[str, Any], method: str, path: str, query: Mapping[str, str], body: Any,
               raw: bytes) -> _Answer:
        if path.startswith("/storage/") and method == "GET":
            return self._storage(path, query)
        if path.startswith("/storage/") and method == "PUT":
            return self._storage_put(environ, path, query, raw)
        if method == "POST" and path == "/auth/challenge":
            return self._challenge(environ)
        if method == "POST" and path == "/auth/ksef-token":
            return self._ksef_token(self._json_body(environ, body))
        if method == "POST" and path == "/auth/token/redeem":
            return self._redeem(self._grant(environ, "auth"))
        if method == "POST" and path == "/auth/token/refresh":
            return self._refresh(self._grant(environ, "refresh"))
        if method == "GET" and path == "/security/public-key-certificates":
            return 200, self._certificates(), []
        if method == "GET" and (match := re.fullmatch(r"/auth/([^/]+)", path)):
            return self._auth_status(self._grant(environ, "auth"), match.group(1))
        route = self._session_routes(method, path)
        if route is None:
            raise _Reply(404, detail=f"No route {method} {path}")
        grant = self._grant(environ, "access")
        handler, args = route
        if method == "POST" and handler not in (self._close_session, self._close_batch):
            body = self._json_body(environ, body)
        return handler(_Call(environ, grant, query, body), *args)

    def _session_routes(self, method: str, path: str) -> tuple[Callable[..., Any], tuple[Any, ...]] | None:
        ref = r"([^/]+)"
        table: list[tuple[str, str, Callable[..., Any]]] = [
            ("POST", r"/sessions/online", self._open_session),
            ("POST", rf"/sessions/online/{ref}/invoices", self._send_invoice),
            ("POST", rf"/sessions/online/{ref}/close", self._close_session),
            ("POST", r"/sessions/batch", self._open_batch),
            ("POST", rf"/sessions/batch/{ref}/close", self._close_batch),
            ("GET", rf"/sessions/{ref}/invoices/failed", self._list_failed),
            ("GET", rf"/sessions/{ref}/invoices/ksef/{ref}/upo", self._upo_by_ksef_number),
            ("GET", rf"/sessions/{ref}/invoices/{ref}/upo", self._upo_route),
            ("GET", rf"/sessions/{ref}/invoices/{ref}", self._invoice_status_route),
            ("GET", rf"/sessions/{ref}/invoices", self._list_invoices),
            ("GET", rf"/sessions/{ref}/upo/{ref}", self._session_upo_route),
            ("GET", rf"/sessions/{ref}", self._session_status),
        ]
        for verb, pattern, handler in table:
            if verb == method and (match := re.fullmatch(pattern, path)):
                return handler, match.groups()
        return None

    @staticmethod
    def _json_body(environ: Mapping[str, Any], body: Any) -> Mapping[str, Any]:
        if not str(environ.get("CONTENT_TYPE") or "").startswith("application/json"):
            raise _Reply(400, 21405, ["Oczekiwano treści application/json."])
        if not isinstance(body, Mapping):
            raise _Reply(400, 21405, ["Treść żądania nie jest obiektem JSON."])
        return body

    # --- keys and authentication -------------------------------------------------------------------------

    def _certificates(self) -> list[dict[str, Any]]:
        out = []
        for key in self._keys:
            if key.withdrawn:
                continue
            shown = key.spki if self.bare_public_key else key.certificate
            out.append({"certificate": crypto.b64(shown), "certificateId": crypto.sha256_b64(key.certificate),
                        "publicKeyId": key.key_id, "validFrom": _ts(key.valid_from), "validTo": _ts(key.valid_to),
                        "usage": list(key.usage)})
        return out

    def _challenge(self, environ: Mapping[str, Any]) -> _Answer:
        now = self.now()
        challenge = self._reference("CR")
        millis = int(now.timestamp() * 1000)
        self._challenges[challenge] = (millis, now)
        return 200, {"challenge": challenge, "timestamp": _ts(datetime.fromtimestamp(millis / 1000, UTC)),
                     "timestampMs": millis, "clientIp": str(environ.get("REMOTE_ADDR") or "127.0.0.1")}, []

    def _ksef_token(self, body: Mapping[str, Any]) -> _Answer:
        challenge, context, encrypted = body.get("challenge"), body.get("contextIdentifier"), body.get("encryptedToken")
        problems = [f"{name} is required" for name, value in
                    (("challenge", challenge), ("contextIdentifier", context), ("encryptedToken", encrypted))
                    if not value]
        if not isinstance(context, Mapping) or context.get("type") != "Nip" or not re.fullmatch(
                r"[1-9]((\d[1-9])|([1-9]\d))\d{7}", str(context.get("value") or "")):
            problems.append("contextIdentifier: the simulator authenticates in a NIP context only (type Nip, "
                            "a 10-digit value)")
        if problems:
            raise _Reply(400, 21405, problems)
        now = self.now()
        issued = self._challenges.pop(str(challenge), None)
        if issued is None or now - issued[1] > CHALLENGE_LIFE:
            raise _Reply(400, 21111, [f"Wyzwanie {challenge} jest nieznane, wykorzystane lub wygasło."])
        try:
            ciphertext = crypto.unb64(str(encrypted))
        except ValueError:
            raise _Reply(400, 21405, ["encryptedToken nie jest poprawnym Base64."]) from None
        key_id = body.get("publicKeyId")
        plaintext = self._decrypt("KsefTokenEncryption", ciphertext, str(key_id) if key_id else None)
        nip = str(context["value"])  # type: ignore[index]
        token: KsefToken | None = None
        failure = "Nieprawidłowy token"
        if plaintext is not None:
            secret, _, millis = plaintext.decode("utf-8", "replace").rpartition("|")
            token = self.tokens.get(secret)
            if millis != str(issued[0]):
                failure, token = "Nieprawidłowy czas tokena", None
            elif token is not None and token.revoked:
                failure, token = "Token unieważniony", None
        if token is None:
            outcome = (450, "Uwierzytelnianie zakończone niepowodzeniem z powodu błędnego tokenu", [failure])
        elif token.nip != nip:
            outcome = (415, "Uwierzytelnianie zakończone niepowodzeniem", ["Brak przypisanych uprawnień"])
        else:
            outcome = (200, "Uwierzytelnianie zakończone sukcesem", [])
        reference = self._reference("AU")
        self._operations[reference] = _AuthOperation(reference, nip, token, now, outcome, self.auth_polls)
        auth_token = self._jwt({"sub": reference, "typ": "auth"})
        valid_until = now + AUTH_STATUS_LIFE
        self._grants[auth_token] = _Grant("auth", nip, valid_until, reference, token.reference if token else None)
        return 202, {"referenceNumber": reference,
                     "authenticationToken": {"token": auth_token, "validUntil": _ts(valid_until)}}, []

    def _auth_status(self, grant: _Grant, reference: str) -> _Answer:
        operation = self._operations.get(reference)
        if operation is None or grant.operation != reference:
            raise _Reply(400, 21304, [f"Operacja uwierzytelniania o numerze referencyjnym {reference} nie została "
                                      "odnaleziona."])
        if self.now() - operation.started > AUTH_STATUS_LIFE:
            raise _Reply(410, detail="Operacja wygasła i nie jest już dostępna.")
        if operation.reads_left > 0:
            operation.reads_left -= 1
            status: dict[str, Any] = {"code": 100, "description": "Uwierzytelnianie w toku"}
        else:
            code, description, details = operation.outcome
            status = {"code": code, "description": description, **({"details": details} if details else {})}
        return 200, {"startDate": _ts(operation.started), "authenticationMethod": "Token",
                     "authenticationMethodInfo": {"category": "Token", "code": "token", "displayName": "Token KSeF"},
                     "status": status, "isTokenRedeemed": operation.redeemed}, []

    def _redeem(self, grant: _Grant) -> _Answer:
        operation = self._operations[grant.operation]
        if operation.redeemed:
            raise _Reply(400, 21301, [f"Tokeny dla operacji uwierzytelniania {operation.reference} zostały już "
                                      "pobrane."])
        if operation.reads_left > 0 or operation.outcome[0] != 200:
            code = 100 if operation.reads_left > 0 else operation.outcome[0]
            raise _Reply(400, 21301, [f"Status uwierzytelniania ({code}) nie pozwala na pobranie tokenów."])
        operation.redeemed = True
        now = self.now()
        access = self._issue("access", operation, now)
        refresh_until = now + timedelta(seconds=self.refresh_ttl)
        refresh = self._jwt({"sub": operation.reference, "typ": "refresh"})
        self._grants[refresh] = _Grant("refresh", operation.nip, refresh_until, operation.reference,
                                       operation.token.reference if operation.token else None)
        return 200, {"accessToken": access, "refreshToken": {"token": refresh, "validUntil": _ts(refresh_until)}}, []

    def _issue(self, kind: str, operation: _AuthOperation, now: datetime) -> dict[str, str]:
        valid_until = now + timedelta(seconds=self.access_ttl)
        token = self._jwt({"sub": operation.reference, "typ": kind, "ctx": operation.nip,
                           "exp": int(valid_until.timestamp())})
        self._grants[token] = _Grant(kind, operation.nip, valid_until, operation.reference,
                                     operation.token.reference if operation.token else None)
        return {"token": token, "validUntil": _ts(valid_until)}

    def _refresh(self, grant: _Grant) -> _Answer:
        operation = self._operations[grant.operation]
        if operation.token is not None and operation.token.revoked:
            raise _Reply(400, 21301, ["Token KSeF został unieważniony."])
        return 200, {"accessToken": self._issue("access", operation, self.now())}, []

    # --- sessions ----------------------------------------------------------------------------------------

    def _session(self, grant: _Grant, reference: str, kind: str | None = None) -> SimSession:
        """The context's session (of ``kind``, "online" or "batch", when a route is for one kind only)."""
        session = self.sessions.get(reference)
        if session is None or session.nip != grant.nip or (
                kind is not None and (session.batch is not None) != (kind == "batch")):
            raise _Reply(400, 21173, [f"Sesja o numerze referencyjnym {reference} nie została odnaleziona."])
        return session

    def _open_session(self, call: _Call) -> _Answer:
        grant, body = call.grant, call.body
        form, encryption = body.get("formCode"), body.get("encryption")
        if not isinstance(form, Mapping) or not isinstance(encryption, Mapping):
            raise _Reply(400, 21405, ["formCode i encryption są wymagane."])
        self._check_form(form)
        key = self._session_key(encryption)
        now = self.now()
        reference = self._reference("SO")
        self.sessions[reference] = SimSession(reference, grant.nip, grant.token_reference, key, now, now,
                                              now + SESSION_LIFE)
        return 201, {"referenceNumber": reference, "validUntil": _ts(now + SESSION_LIFE)}, []

    @staticmethod
    def _check_form(form: Mapping[str, Any]) -> None:
        if {k: form.get(k) for k in FA3_FORM} != FA3_FORM:
            raise _Reply(400, 21405, [f"formCode {dict(form)} nie jest obsługiwany przez symulator (tylko FA (3) "
                                      "1-0E FA)."])

    def _session_key(self, encryption: Mapping[str, Any]) -> crypto.SessionKey | None:
        """The session's AES key and IV from ``encryption`` (21405 for bad Base64 or an IV not of 16 bytes,
        21470 for an unknown ``publicKeyId``); None when the wrapped key does not decrypt to 32 bytes."""
        try:
            wrapped = crypto.unb64(str(encryption.get("encryptedSymmetricKey") or ""))
            iv = crypto.unb64(str(encryption.get("initializationVector") or ""))
        except ValueError:
            raise _Reply(400, 21405, ["encryptedSymmetricKey i initializationVector muszą być w Base64."]) from None
        if len(iv) != crypto.IV_BYTES:
            raise _Reply(400, 21405, [f"initializationVector ma {len(iv)} bajtów zamiast 16."])
        key_id = encryption.get("publicKeyId")
        plain = self._decrypt("SymmetricKeyEncryption", wrapped, str(key_id) if key_id else None) if wrapped else None
        return crypto.SessionKey(plain, iv) if plain is not None and len(plain) == crypto.KEY_BYTES else None

    def _closed_at(self, session: SimSession) -> datetime | None:
        if session.closed_at is not None:
            return session.closed_at
        return session.valid_until if self.now() >= session.valid_until else None

    def _session_code(self, session: SimSession) -> int:
        return self._session_state(session)[0]

    def _session_state(self, session: SimSession) -> tuple[int, str, list[str]]:
        """The session's status code, description and details (SessionStatusResponse's tables)."""
        if session.batch is not None:
            code, details = self._batch_code(session)
            return code, BATCH_SESSION_STATUS[code], details
        code = self._online_code(session)
        return code, SESSION_STATUS[code], [NOTHING_SENT] if code == 440 else []

    def _online_code(self, session: SimSession) -> int:
        if session.key is None:
            return 415
        if self._closed_at(session) is None:
            return 100
        if not session.invoices:
            return 440
        for invoice in session.invoices:
            self._observe(invoice)
        if not all(i.revealed for i in session.invoices):
            return 170
        return 200 if any(i.code == 200 for i in session.invoices) else 445

    def _send_invoice(self, call: _Call, reference: str) -> _Answer:
        body = call.body
        session = self._session(call.grant, reference, "online")
        code = self._session_code(session)
        if code != 100:
            raise _Reply(400, 21180, [f"Status sesji {code} uniemożliwia wysyłkę faktur."])
        if len(session.invoices) >= self.max_invoices:
            raise _Reply(400, 21155, [f"Sesja o numerze referencyjnym {reference} osiągnęła dozwolony limit liczby "
                                      f"faktur {self.max_invoices}."])
        problems = []
        for name in ("invoiceHash", "encryptedInvoiceHash"):
            if not isinstance(body.get(name), str) or len(body[name]) != 44:
                problems.append(f"{name}: wymagany skrót SHA-256 w Base64 (44 znaki).")
        for name in ("invoiceSize", "encryptedInvoiceSize"):
            if not isinstance(body.get(name), int) or isinstance(body.get(name), bool) or body[name] < 1:
                problems.append(f"{name}: wymagana liczba całkowita >= 1.")
        if not isinstance(body.get("encryptedInvoiceContent"), str):
            problems.append("encryptedInvoiceContent: wymagana treść w Base64.")
        if body.get("offlineMode") is not None and not isinstance(body.get("offlineMode"), bool):
            problems.append("offlineMode: wymagana wartość logiczna.")
        corrected = body.get("hashOfCorrectedInvoice")
        if corrected is not None and (not isinstance(corrected, str) or len(corrected) != 44):
            problems.append("hashOfCorrectedInvoice: wymagany skrót SHA-256 w Base64 (44 znaki).")
        elif corrected is not None and body.get("offlineMode") is not True:
            problems.append("hashOfCorrectedInvoice: korekta techniczna dotyczy faktury offline (offlineMode: true).")
        if problems:
            raise _Reply(400, 21405, problems)
        if corrected is not None:
            self._check_technical_correction(session, corrected)
        if body["invoiceSize"] > self.max_invoice_bytes:
            raise _Reply(400, 21405, [f"invoiceSize {body['invoiceSize']} przekracza limit {self.max_invoice_bytes} "
                                      "bajtów dla faktury bez załączników."])
        try:
            ciphertext = crypto.unb64(body["encryptedInvoiceContent"])
        except ValueError:
            raise _Reply(400, 21405, ["encryptedInvoiceContent nie jest poprawnym Base64."]) from None
        if len(ciphertext) != body["encryptedInvoiceSize"]:
            raise _Reply(400, 21402, ["Długość treści nie zgadza się z rozmiarem pliku."])
        if crypto.sha256_b64(ciphertext) != body["encryptedInvoiceHash"]:
            raise _Reply(400, 21403, ["Skrót treści nie zgadza się ze skrótem pliku."])
        assert session.key is not None
        now = self.now()
        try:
            xml: bytes | None = crypto.aes_decrypt(session.key, ciphertext)
        except ValueError:
            xml = None
        if xml is not None:
            if len(xml) != body["invoiceSize"]:
                raise _Reply(400, 21402, ["Długość treści nie zgadza się z rozmiarem pliku."])
            if crypto.sha256_b64(xml) != body["invoiceHash"]:
                raise _Reply(400, 21403, ["Skrót treści nie zgadza się ze skrótem pliku."])
        invoice = SimInvoice(len(session.invoices) + 1, self._reference("EE"), session.reference, body["invoiceHash"],
                             body["invoiceSize"], now, (435, ["Nie udało się odszyfrować faktury."], {}))
        invoice.corrects = corrected
        if xml is not None:
            self._verify(session, invoice, xml, offline=bool(body.get("offlineMode")))
        invoice.reads = 0
        invoice.ready_at = now + timedelta(seconds=self.verification_seconds)
        session.invoices.append(invoice)
        session.updated = now
        return 202, {"referenceNumber": invoice.reference}, []

    def _check_technical_correction(self, session: SimSession, corrected: str) -> None:
        """korekta-techniczna.md: the corrected document is an offline invoice of the context KSeF rejected
        (21167 when it was processed properly or was not offline), and none of its technical corrections
        has been accepted (21166)."""
        ours = [i for s in self.sessions.values() if s.nip == session.nip for i in s.invoices]
        originals = [i for i in ours if i.sha256 == corrected]
        if not originals:
            raise _Reply(400, 21405, [f"hashOfCorrectedInvoice: brak faktury o skrócie {corrected} w kontekście "
                                      f"{session.nip}."])
        if any(i.code == 200 or i.mode != "Offline" for i in originals):
            raise _Reply(400, 21167, ["Nie można wysłać korekty technicznej do prawidłowo przetworzonej faktury."])
        if any(i.corrects == corrected and i.code == 200 for i in ours):
            raise _Reply(400, 21166, ["Faktura posiada już przetworzoną prawidłowo korektę techniczną."])

    def _verify(self, session: SimSession, invoice: SimInvoice, xml: bytes, *, offline: bool) -> None:
        """weryfikacja-faktury.md, in its order; the verdict is kept and shown later (``_observe``)."""
        invoice.mode = "Offline" if offline else "Online"  # a document refused unread keeps what it declared
        problems, root = _xml_problems(xml)
        if root is None:
            invoice.outcome = (430, problems, {})
            return
        schema_problems = schemas.problems(schemas.fa3(), root)
        if schema_problems:
            invoice.outcome = (430, schema_problems[:20], {})
            return
        ns = {"fa": schemas.FA3_NS}
        seller = root.findtext("fa:Podmiot1/fa:DaneIdentyfikacyjne/fa:NIP", namespaces=ns) or ""
        invoice.seller_nip = seller
        invoice.invoice_number = root.findtext("fa:Fa/fa:P_2", namespaces=ns)
        invoice.kind = root.findtext("fa:Fa/fa:RodzajFaktury", namespaces=ns)
        invoice.issue_date = date.fromisoformat(root.findtext("fa:Fa/fa:P_1", namespaces=ns) or "2000-01-01")
        accepted_on = invoice.invoicing_date.astimezone(WARSAW).date()
        invoice.mode = "Offline" if offline or invoice.issue_date < accepted_on else "Online"
        if seller != session.nip:
            invoice.outcome = (410, [f"Podmiot uwierzytelniony w kontekście {session.nip} nie ma uprawnień do "
                                     f"wystawienia faktury sprzedawcy {seller}."], {})
            return
        if self.check_nip_checksums:
            for where in ("Podmiot1", "Podmiot2", "Podmiot3"):
                for nip in root.findall(f"fa:{where}/fa:DaneIdentyfikacyjne/fa:NIP", namespaces=ns):
                    if not pl_nip.is_valid(nip.text or ""):
                        invoice.outcome = (450, [f"Nieprawidłowa suma kontrolna NIP {nip.text} ({where})."], {})
                        return
        if invoice.issue_date > accepted_on:
            invoice.outcome = (450, [f"Data wystawienia faktury (P_1 {invoice.issue_date}) jest późniejsza niż data "
                                     f"przyjęcia {accepted_on}."], {})
            return
        forced = self._rejections.pop(invoice.invoice_number or "", None)
        if forced is not None:
            code, description, details = forced
            invoice.outcome = (code, details, {"description": description} if description else {})
            return
        key = (seller, invoice.kind or "", invoice.invoice_number or "")
        original = self.accepted.get(key)
        if original is not None:
            number, original_session = original
            invoice.outcome = (440, [f"Duplikat faktury. Faktura o numerze KSeF: {number} została już prawidłowo "
                                     f"przesłana do systemu w sesji: {original_session}"],
                               {"originalSessionReferenceNumber": original_session, "originalKsefNumber": number})
            return
        self._counter += 1
        technical = f"{self._counter:06X}{secrets.token_hex(3).upper()}"
        invoice.ksef_number = crypto.build_ksef_number(seller, accepted_on, technical)
        invoice.outcome = (200, [], {})
        self.accepted[key] = (invoice.ksef_number, session.reference)

    def _observe(self, invoice: SimInvoice) -> None:
        """A status read: the verdict shows after ``verification_polls`` reads and ``verification_seconds``."""
        if invoice.revealed or self.hold_verification:
            invoice.reads += 1
            return
        ready = invoice.ready_at is None or self.now() >= invoice.ready_at
        if invoice.reads >= self.verification_polls and ready:
            self._reveal(invoice)
        invoice.reads += 1

    def _reveal(self, invoice: SimInvoice) -> None:
        if not invoice.revealed:
            invoice.revealed = True
            if invoice.code == 200:
                invoice.acquired_at = max(self.now(), invoice.invoicing_date + timedelta(milliseconds=200))

    def _invoice_by_reference(self, reference: str) -> SimInvoice:
        for session in self.sessions.values():
            for invoice in session.invoices:
                if invoice.reference == reference:
                    return invoice
        raise KeyError(reference)

    def _download_url(self, environ: Mapping[str, Any], kind: str, *parts: str) -> tuple[str, str]:
        expires = self.now() + timedelta(days=3)
        stamp = str(int(expires.timestamp()))
        path = f"/storage/{kind}/" + "/".join(quote(p, safe="") for p in parts)
        signature = _b64url(hmac.new(self._secret, f"{path}|{stamp}".encode(), hashlib.sha256).digest())
        host = environ.get("HTTP_HOST") or f"{environ.get('SERVER_NAME', 'localhost')}:{environ.get('SERVER_PORT')}"
        return f"{environ.get('wsgi.url_scheme', 'http')}://{host}{path}?se={stamp}&sig={signature}", _ts(expires)

    def _invoice_json(self, invoice: SimInvoice, environ: Mapping[str, Any] | None) -> dict[str, Any]:
        entry: dict[str, Any] = {"ordinalNumber": invoice.ordinal, "referenceNumber": invoice.reference,
                                 "invoiceHash": invoice.sha256, "invoicingDate": _ts(invoice.invoicing_date)}
        if invoice.invoice_number:
            entry["invoiceNumber"] = invoice.invoice_number
        if invoice.file_name:
            entry["invoiceFileName"] = invoice.file_name[:128]
        if not invoice.revealed:
            code = 100 if invoice.reads <= 1 else 150
            entry["status"] = {"code": code, "description": INVOICE_STATUS[code]}
            return entry
        code, details, extensions = invoice.outcome
        description = extensions.get("description") if code not in (200, 440) else None
        status: dict[str, Any] = {"code": code, "description": description or INVOICE_STATUS.get(code, f"Błąd {code}")}
        if details:
            status["details"] = details
        extra = {k: v for k, v in extensions.items() if k != "description"}
        if extra:
            status["extensions"] = extra
        entry["status"] = status
        entry["invoicingMode"] = invoice.mode
        if code == 200 and invoice.acquired_at is not None:
            entry["ksefNumber"] = invoice.ksef_number
            entry["acquisitionDate"] = _ts(invoice.acquired_at)
            entry["permanentStorageDate"] = _ts(invoice.acquired_at + timedelta(seconds=1))
            if environ is not None:
                url, expires = self._download_url(environ, "invoice-upo", invoice.session, invoice.reference)
                entry["upoDownloadUrl"], entry["upoDownloadUrlExpirationDate"] = url, expires
        return entry

    def _invoice_status_route(self, call: _Call, reference: str, invoice_ref: str) -> _Answer:
        invoice = self._session_invoice(call.grant, reference, invoice_ref)
        self._observe(invoice)
        return 200, self._invoice_json(invoice, call.environ), []

    def _session_invoice(self, grant: _Grant, reference: str, invoice_ref: str) -> SimInvoice:
        session = self.sessions.get(reference)
        mine = session is not None and session.nip == grant.nip
        found = [i for i in session.invoices if i.reference == invoice_ref] if session and mine else []
        if not found:
            raise _Reply(400, 21405, [f"Faktura o numerze referencyjnym {invoice_ref} nie została odnaleziona w sesji "
                                      f"{reference}."])
        return found[0]

    def _list(self, grant: _Grant, query: Mapping[str, str], continuation: str | None, reference: str, failed: bool
              ) -> _Answer:
        session = self._session(grant, reference)
        try:
            size = int(query.get("pageSize", "10"))
        except ValueError:
            size = 0
        if not 10 <= size <= 1000:
            raise _Reply(400, 21405, ["pageSize: wartość od 10 do 1000."])
        offset = 0
        if continuation:
            known = self._continuations.get(continuation)
            if known is None or known[:2] != (reference, failed):
                raise _Reply(400, 21418, [f"Token kontynuacji {continuation[:40]} jest nieznany."])
            offset = known[2]
        for invoice in session.invoices:
            self._observe(invoice)
        chosen = [i for i in session.invoices if not failed or (i.revealed and i.code != 200)]
        page = chosen[offset:offset + size]
        body: dict[str, Any] = {"invoices": [self._invoice_json(i, None) for i in page]}
        if offset + size < len(chosen):
            token = secrets.token_urlsafe(24)
            self._continuations[token] = (reference, failed, offset + size)
            body["continuationToken"] = token
        return 200, body, []

    def _list_invoices(self, call: _Call, reference: str) -> _Answer:
        return self._list(call.grant, call.query, call.environ.get("HTTP_X_CONTINUATION_TOKEN"), reference, False)

    def _list_failed(self, call: _Call, reference: str) -> _Answer:
        return self._list(call.grant, call.query, call.environ.get("HTTP_X_CONTINUATION_TOKEN"), reference, True)

    def _session_status(self, call: _Call, reference: str) -> _Answer:
        environ = call.environ
        session = self._session(call.grant, reference)
        code, description, details = self._session_state(session)
        status: dict[str, Any] = {"code": code, "description": description}
        if details:
            status["details"] = details
        successful = sum(1 for i in session.invoices if i.revealed and i.code == 200)
        failed = sum(1 for i in session.invoices if i.revealed and i.code != 200)
        body: dict[str, Any] = {"status": status, "dateCreated": _ts(session.created),
                                "dateUpdated": _ts(session.updated), "validUntil": _ts(session.valid_until),
                                "invoiceCount": len(session.invoices), "successfulInvoiceCount": successful,
                                "failedInvoiceCount": failed}
        if code == 200:
            if session.upo_reference is None:
                session.upo_reference = self._reference("EU")
            url, expires = self._download_url(environ, "session-upo", session.reference, session.upo_reference)
            body["upo"] = {"pages": [{"referenceNumber": session.upo_reference, "downloadUrl": url,
                                      "downloadUrlExpirationDate": expires}]}
        return 200, body, []

    def _close_session(self, call: _Call, reference: str) -> _Answer:
        session = self._session(call.grant, reference, "online")
        code = self._session_code(session)
        if code != 100:
            raise _Reply(400, 21180, [f"Status sesji {code} uniemożliwia jej zamknięcie."])
        session.closed_at = session.updated = self.now()
        return 204, None, []

    # --- batch sessions ----------------------------------------------------------------------------------

    def _open_batch(self, call: _Call) -> _Answer:
        grant, body = call.grant, call.body
        form, package, encryption = body.get("formCode"), body.get("batchFile"), body.get("encryption")
        if not isinstance(form, Mapping) or not isinstance(package, Mapping) or not isinstance(encryption, Mapping):
            raise _Reply(400, 21405, ["formCode, batchFile i encryption są wymagane."])
        self._check_form(form)
        problems: list[str] = []
        size, digest = package.get("fileSize"), package.get("fileHash")
        if not _whole(size) or not 1 <= size <= MAX_BATCH_BYTES:
            problems.append(f"batchFile.fileSize: wymagana liczba całkowita od 1 do {MAX_BATCH_BYTES}.")
        if not _is_sha256(digest):
            problems.append("batchFile.fileHash: wymagany skrót SHA-256 w Base64 (44 znaki).")
        compression = package.get("compressionType") or "Zip"
        if compression not in ("Zip", "TarGz"):
            problems.append("batchFile.compressionType: dozwolone wartości Zip, TarGz.")
        if body.get("offlineMode") is not None and not isinstance(body.get("offlineMode"), bool):
            problems.append("offlineMode: wymagana wartość logiczna.")
        declared = package.get("fileParts")
        if not isinstance(declared, list) or not declared:
            problems.append("batchFile.fileParts: wymagana co najmniej jedna część.")
            declared = []
        if len(declared) > MAX_BATCH_PARTS:
            raise _Reply(400, 21161, [f"Zadeklarowano {len(declared)} części, dozwolone {MAX_BATCH_PARTS}."])
        parts: dict[int, tuple[int, str]] = {}
        for n, part in enumerate(declared):
            ordinal = part.get("ordinalNumber") if isinstance(part, Mapping) else None
            part_size = part.get("fileSize") if isinstance(part, Mapping) else None
            part_hash = part.get("fileHash") if isinstance(part, Mapping) else None
            if not _whole(ordinal) or ordinal < 1 or ordinal in parts:
                problems.append(f"batchFile.fileParts[{n}].ordinalNumber: wymagana liczba całkowita >= 1, "
                                "niepowtarzalna.")
            elif not _whole(part_size) or part_size < 1:
                problems.append(f"batchFile.fileParts[{n}].fileSize: wymagana liczba całkowita >= 1.")
            elif not _is_sha256(part_hash):
                problems.append(f"batchFile.fileParts[{n}].fileHash: wymagany skrót SHA-256 w Base64 (44 znaki).")
            else:
                parts[ordinal] = (part_size, part_hash)
        if problems:
            raise _Reply(400, 21405, problems)
        padded_limit = (MAX_PART_BYTES // crypto.IV_BYTES + 1) * crypto.IV_BYTES
        for ordinal, (part_size, _) in sorted(parts.items()):
            if part_size % crypto.IV_BYTES or part_size > padded_limit:
                raise _Reply(400, 21157, [f"Część {ordinal}: {part_size} bajtów to nie zaszyfrowana (AES-256-CBC, "
                                          f"PKCS#7) część o rozmiarze do {MAX_PART_BYTES} bajtów."])
        key = self._session_key(encryption)
        now = self.now()
        deadline = now + timedelta(minutes=self.batch_part_minutes * len(parts))
        reference = self._reference("SB")
        self.sessions[reference] = SimSession(
            reference, grant.nip, grant.token_reference, key, now, now, deadline,
            batch=SimBatch(size, digest, compression, parts, bool(body.get("offlineMode"))))
        uploads = [{"ordinalNumber": ordinal, "method": "PUT",
                    "url": self._part_url(call.environ, reference, ordinal, deadline), "headers": dict(BLOB_HEADERS)}
                   for ordinal in sorted(parts)]
        return 201, {"referenceNumber": reference, "partUploadRequests": uploads}, []

    def _part_signature(self, path: str, stamp: str) -> str:
        return _b64url(hmac.new(self._secret, f"PUT|{path}|{stamp}".encode(), hashlib.sha256).digest())

    def _part_url(self, environ: Mapping[str, Any], reference: str, ordinal: int, deadline: datetime) -> str:
        """A pre-signed write address on the simulator's own host, outside /v2, valid until ``deadline``."""
        path = f"/storage/batch-parts/{quote(reference, safe='')}/{ordinal}"
        stamp = str(int(deadline.timestamp()))
        host = environ.get("HTTP_HOST") or f"{environ.get('SERVER_NAME', 'localhost')}:{environ.get('SERVER_PORT')}"
        return (f"{environ.get('wsgi.url_scheme', 'http')}://{host}{path}?se={stamp}&sp=w"
                f"&sig={self._part_signature(path, stamp)}")

    def _storage_put(self, environ: Mapping[str, Any], path: str, query: Mapping[str, str], raw: bytes) -> _Answer:
        """A part's upload (sesja-wsadowa.md §5): 201 stored; 400 bad data; 401 an Authorization header (the
        address is the credential); 403 a bad signature, or its time is up, or the session is no longer open."""
        if environ.get("HTTP_AUTHORIZATION"):
            raise _Reply(401, detail="Adres części jest podpisany: nagłówek Authorization jest niedozwolony.")
        stamp, signature = query.get("se", ""), query.get("sig", "")
        if not stamp.isdigit() or not hmac.compare_digest(self._part_signature(path, stamp), signature):
            raise _Reply(403, detail="Signature not valid.")
        parts = path.split("/")
        session = self.sessions.get(parts[3]) if len(parts) == 5 and parts[2] == "batch-parts" else None
        if session is None or session.batch is None or not parts[4].isdigit():
            raise _Reply(404, detail="No such blob.")
        batch, ordinal = session.batch, int(parts[4])
        if int(stamp) <= self.now().timestamp() or batch.cancelled or session.closed_at is not None:
            raise _Reply(403, detail="Upłynął czas na zapis części (lub sesja nie jest już otwarta).")
        if environ.get("HTTP_X_MS_BLOB_TYPE") != BLOB_HEADERS["x-ms-blob-type"]:
            raise _Reply(400, detail="Brak wymaganego nagłówka x-ms-blob-type: BlockBlob.")
        declared_size, declared_hash = batch.parts[ordinal]
        if self.check_part_uploads and (len(raw) != declared_size or crypto.sha256_b64(raw) != declared_hash):
            raise _Reply(400, detail=f"Część {ordinal}: rozmiar lub skrót nie zgadza się z zadeklarowanym.")
        batch.uploads[ordinal] = raw
        session.updated = self.now()
        return 201, b"", []

    def _batch_code(self, session: SimSession) -> tuple[int, list[str]]:
        batch = session.batch
        assert batch is not None
        if session.closed_at is None:
            if batch.cancelled or self.now() >= session.valid_until:
                return 440, [TIMED_OUT]
            return 100, []
        if batch.failure is not None:
            return batch.failure[0], []
        if not session.invoices:
            return 440, [NOTHING_SENT]
        for invoice in session.invoices:
            self._observe(invoice)
        if not all(i.revealed for i in session.invoices):
            return 150, []
        return (200 if any(i.code == 200 for i in session.invoices) else 445), []

    def _close_batch(self, call: _Call, reference: str) -> _Answer:
        session = self._session(call.grant, reference, "batch")
        batch = session.batch
        assert batch is not None
        if session.closed_at is None and (batch.cancelled or self.now() >= session.valid_until):
            raise _Reply(400, 21208, ["Sesja anulowana, przekroczony czas wysyłki."])
        code = self._session_code(session)
        if code != 100:
            raise _Reply(400, 21180, [f"Status sesji {code} uniemożliwia jej zamknięcie."])
        for ordinal in sorted(batch.parts):
            if ordinal not in batch.uploads:
                raise _Reply(400, 21205, [f"Nie przesłano zadeklarowanej '{ordinal}' części pliku."])
        for ordinal, (declared_size, _) in sorted(batch.parts.items()):
            if len(batch.uploads[ordinal]) != declared_size:
                raise _Reply(400, 21157, [f"Zadeklarowany rozmiar części '{ordinal}' nie zgadza się z rzeczywistym."])
        session.closed_at = session.updated = self.now()
        self._process_batch(session)
        return 204, None, []

    def _process_batch(self, session: SimSession) -> None:
        """The closed package: decrypted, checked, unpacked, each file verified as an online invoice."""
        batch = session.batch
        assert batch is not None
        if session.key is None:
            batch.failure = (415, "the wrapped key does not decrypt to an AES-256 key")
            return
        chunks: list[bytes] = []
        for ordinal in sorted(batch.parts):
            encrypted = batch.uploads[ordinal]
            if crypto.sha256_b64(encrypted) != batch.parts[ordinal][1]:
                batch.failure = (405, f"part {ordinal}: its hash is not the declared one")
                return
            try:
                chunks.append(crypto.aes_decrypt(session.key, encrypted))
            except ValueError:
                batch.failure = (435, f"part {ordinal} does not decrypt")
                return
        archive = b"".join(chunks)
        if len(archive) != batch.file_size or crypto.sha256_b64(archive) != batch.file_hash:
            batch.failure = (405, "the archive's size or hash is not the declared one")
            return
        try:
            files = _unpack(archive, batch.compression)
        except (zipfile.BadZipFile, tarfile.TarError, zlib.error, EOFError, OSError, ValueError) as exc:
            batch.failure = (430, f"the archive does not unpack: {exc}")
            return
        if len(files) > self.max_invoices:
            batch.failure = (420, f"{len(files)} invoices, over {self.max_invoices}")
            return
        now = self.now()
        for name, xml in files:
            invoice = SimInvoice(len(session.invoices) + 1, self._reference("EE"), session.reference,
                                 crypto.sha256_b64(xml), len(xml), session.created, (430, [], {}), file_name=name)
            if len(xml) > self.max_invoice_bytes:
                invoice.outcome = (430, [f"Plik faktury ma {len(xml)} bajtów, ponad limit {self.max_invoice_bytes}."],
                                   {})
            else:
                self._verify(session, invoice, xml, offline=batch.offline)
            invoice.ready_at = now + timedelta(seconds=self.verification_seconds)
            session.invoices.append(invoice)

    # --- UPO ---------------------------------------------------------------------------------------------

    def _upo_answer(self, content: bytes) -> _Answer:
        return 200, content, [("Content-Type", "application/xml"), ("x-ms-meta-hash", crypto.sha256_b64(content))]

    def _invoice_upo(self, invoice: SimInvoice) -> bytes:
        if not invoice.revealed or invoice.code != 200:
            raise _Reply(400, 21178, [f"UPO dla faktury {invoice.reference} nie zostało znalezione."])
        if invoice.upo_override is not None:
            return invoice.upo_override
        return self.upo_document(self.sessions[invoice.session], [invoice], paged=False)

    def _upo_route(self, call: _Call, reference: str, invoice_ref: str) -> _Answer:
        return self._upo_answer(self._invoice_upo(self._session_invoice(call.grant, reference, invoice_ref)))

    def _upo_by_ksef_number(self, call: _Call, reference: str, number: str) -> _Answer:
        session = self._session(call.grant, reference)
        found = [i for i in session.invoices if i.ksef_number == number and i.revealed]
        if not found:
            raise _Reply(400, 21178, [f"UPO o numerze KSeF {number} i numerze referencyjnym sesji {reference} nie "
                                      "zostało znalezione."])
        return self._upo_answer(self._invoice_upo(found[0]))

    def _session_upo(self, session: SimSession, upo_reference: str) -> bytes:
        if session.upo_reference != upo_reference:
            raise _Reply(400, 21178, [f"UPO {upo_reference} sesji {session.reference} nie zostało znalezione."])
        return self.upo_document(session, [i for i in session.invoices if i.revealed and i.code == 200], paged=True)

    def _session_upo_route(self, call: _Call, reference: str, upo_reference: str) -> _Answer:
        return self._upo_answer(self._session_upo(self._session(call.grant, reference), upo_reference))

    def _storage(self, path: str, query: Mapping[str, str]) -> _Answer:
        """The pre-signed download addresses: no bearer, a signature and an expiry instead."""
        stamp, signature = query.get("se", ""), query.get("sig", "")
        expected = _b64url(hmac.new(self._secret, f"{path}|{stamp}".encode(), hashlib.sha256).digest())
        if not hmac.compare_digest(expected, signature) or not stamp.isdigit() or int(stamp) < self.now().timestamp():
            raise _Reply(403, detail="Signature not valid or expired.")
        parts = path.split("/")
        if len(parts) == 5 and parts[2] == "invoice-upo":
            return self._upo_answer(self._invoice_upo(self._invoice_by_reference(parts[4])))
        if len(parts) == 5 and parts[2] == "session-upo":
            return self._upo_answer(self._session_upo(self.sessions[parts[3]], parts[4]))
        raise _Reply(404, detail="No such blob.")

    def upo_document(self, session: SimSession, invoices: list[SimInvoice], *, paged: bool) -> bytes:
        """A UPO v4-3: one invoice's, or a session's (``paged``: with OpisPotwierdzenia)."""
        e = ElementMaker(namespace=UPO_NS, nsmap={None: UPO_NS})
        context = e.Uwierzytelnienie(e.IdKontekstu(e.Nip(session.nip)),
                                     e.NumerReferencyjnyTokenaKSeF(session.token_reference or self._reference("EC")))
        children = [e.NazwaPodmiotuPrzyjmujacego("Ministerstwo Finansów"), e.NumerReferencyjnySesji(session.reference),
                    context]
        if paged:
            count = str(max(1, len(invoices)))
            children.append(e.OpisPotwierdzenia(e.Strona("1"), e.LiczbaStron("1"), e.ZakresDokumentowOd("1"),
                                                e.ZakresDokumentowDo(count), e.CalkowitaLiczbaDokumentow(count)))
        children += [e.NazwaStrukturyLogicznej("Schemat_FA(3)_v1-0E.xsd"), e.KodFormularza("FA (3)")]
        for invoice in invoices:
            assert invoice.ksef_number and invoice.acquired_at and invoice.issue_date
            children.append(e.Dokument(
                e.NipSprzedawcy(invoice.seller_nip or session.nip), e.NumerKSeFDokumentu(invoice.ksef_number),
                e.NumerFaktury(invoice.invoice_number or ""),
                e.DataWystawieniaFaktury(invoice.issue_date.isoformat()),
                e.DataPrzeslaniaDokumentu(_warsaw_ts(invoice.invoicing_date)),
                e.DataNadaniaNumeruKSeF(_warsaw_ts(invoice.acquired_at)), e.SkrotDokumentu(invoice.sha256),
                e.TrybWysylki(invoice.mode)))
        return etree.tostring(e.Potwierdzenie(*children), xml_declaration=True, encoding="utf-8")


def _whole(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_sha256(value: Any) -> bool:
    """Sha256HashBase64: 44 characters of standard Base64 holding 32 bytes."""
    if not isinstance(value, str) or len(value) != 44:
        return False
    try:
        return len(crypto.unb64(value)) == 32
    except ValueError:
        return False


def _unpack(archive: bytes, compression: str) -> list[tuple[str, bytes]]:
    """The files of a batch's archive (ZIP or tar.gz) in its order; directories skipped."""
    if compression == "TarGz":
        out = []
        with tarfile.open(fileobj=io.BytesIO(archive), mode="r:gz") as tar:
            for member in tar.getmembers():
                handle = tar.extractfile(member) if member.isfile() else None
                if handle is not None:
                    out.append((member.name, handle.read()))
        return out
    with zipfile.ZipFile(io.BytesIO(archive)) as zipped:
        return [(info.filename, zipped.read(info)) for info in zipped.infolist() if not info.is_dir()]


def _xml_problems(xml: bytes) -> tuple[list[str], etree._Element | None]:
    """weryfikacja-faktury.md "Weryfikacja XML" before the schema: UTF-8 without a BOM, well-formed, no DOCTYPE
    (the parser loads none), no processing instruction, no encoding but UTF-8 declared, no discouraged
    characters. The parsed root when there is nothing to say (a parser of its own: lxml's are not shared
    between threads)."""
    if xml.startswith(b"\xef\xbb\xbf"):
        return ["Plik faktury zawiera znacznik BOM."], None
    try:
        text = xml.decode("utf-8")
    except UnicodeDecodeError as exc:
        return [f"Plik faktury nie jest zakodowany w UTF-8 ({exc.reason})."], None
    declared = re.match(r"<\?xml[^>]*encoding\s*=\s*[\"']([^\"']+)[\"']", text)
    if declared and declared.group(1).lower() not in ("utf-8", "utf8"):
        return [f"Prolog XML wskazuje kodowanie {declared.group(1)} zamiast UTF-8."], None
    if DISCOURAGED.search(text):
        return ["Plik faktury zawiera niezalecane znaki Unicode."], None
    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False,
                             remove_pis=False)
    try:
        root = etree.fromstring(xml, parser)
    except etree.XMLSyntaxError as exc:
        return [f"Plik faktury nie jest poprawnym dokumentem XML: {exc}"], None
    tree = root.getroottree()
    if tree.docinfo.doctype:
        return ["Plik faktury zawiera deklarację DOCTYPE."], None
    if tree.xpath("//processing-instruction()") or any(
            isinstance(node, etree._ProcessingInstruction) for node in root.itersiblings(preceding=True)):
        return ["Plik faktury zawiera instrukcje przetwarzania XML."], None
    return [], root


class _SimTransport(httpx.BaseTransport):
    """httpx -> the WSGI app; a dropped connection (``lose_next(drop=True)``) as httpx sees one."""

    def __init__(self, sim: KsefSimulator):
        self._sim = sim
        self._inner = httpx.WSGITransport(app=sim)

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        try:
            return self._inner.handle_request(request)
        except _Dropped as exc:
            raise httpx.RemoteProtocolError("Server disconnected without sending a response.",
                                            request=request) from exc


__all__ = ["DEFAULT_NIP", "DEFAULT_TOKEN", "Exchange", "KsefSimulator", "KsefToken", "SimBatch", "SimInvoice",
           "SimSession"]
