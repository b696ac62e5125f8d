"""KSeF as the hub's EInvoicing port: FA(3) invoices in online (interactive) sessions.

Exactly once (hub.kernel.ports.invoicing): the hub records the session and the invoice's hash before
``send``; after a lost answer or a crash it reads the session back (``find_sent``, every invoice KSeF has of
it with its ``invoiceHash``) before it sends anything again. ``send`` itself is one POST, never repeated here.

Each session has its own AES-256 key and IV (sesja-interaktywna.md recommends a new key per session), made in
``open_session`` and kept in this process's memory only: neither a log nor the database ever holds it. A
session whose key this process does not have (it was opened before a restart) takes no more invoices:
``send`` raises SessionKeyUnknown (a SessionUnusable), and the hub reads the session back with ``find_sent``
and opens a new one. ``close_session`` forgets the key.

Batch sessions (sesja-wsadowa.md), for a backlog: production takes 30 online sends a minute and 180 an hour,
a batch takes up to 10 000 invoices in one POST, the parts' uploads and one close. ``open_batch`` builds the
ZIP of the invoices, cuts and encrypts it (batch.py) and opens the session (one POST: the hub records the
reference first); ``finish_batch`` uploads the parts and closes it; KSeF then verifies each invoice on its own,
read back as for an online session (``find_sent``, ``invoice_status``, ``upo``; ``session_status(..).phase``
tells open / processing / done / failed). A batch is all or nothing until its close: KSeF looks at no invoice
of a session never closed, and cancels it once its time is up (440, "Przekroczono czas wysyłki"). So a batch
whose parts this process does not hold (opened before a restart) is simply lost: ``finish_batch`` raises
SessionKeyUnknown and the hub sends its invoices again in a new session.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from hub.kernel.errors import PermanentError, RetryableError
from hub.kernel.ports import invoicing as ports
from hub.kernel.ports.invoicing import OutgoingInvoice, SentInvoice

from . import batch, crypto, mapping, upo
from .client import UNKNOWN_KEY, KsefClient, KsefRefused
from .options import KsefOptions

NO_SESSION = 21173  # "Brak sesji o wskazanym numerze referencyjnym."
SESSION_STATUS = 21180  # "Status sesji nie pozwala na wykonanie operacji."
SESSION_FULL = 21155  # "Przekroczono dozwoloną liczbę faktur w sesji."
PART_SIZE = 21157  # "Nieprawidłowy rozmiar części pakietu." (close: a part's size is not the declared one)
PART_MISSING = 21205  # "Pakiet nie może być pusty." (close: a declared part was never uploaded)
BATCH_TIMED_OUT = 21208  # "Czas oczekiwania na requesty upload lub finish został przekroczony."
BATCH_LOST = frozenset({NO_SESSION, PART_SIZE, PART_MISSING, BATCH_TIMED_OUT})


class SessionUnusable(ports.SessionUnusable):
    """The session takes no more invoices (closed, unknown, full, or its key is not in this process): read it
    back with ``find_sent`` and send the rest in a new session."""


class SessionKeyUnknown(SessionUnusable):
    """The session was opened by another process or before a restart: its AES key is gone with it."""


@dataclass(frozen=True)
class _Upload:
    """One ``partUploadRequests`` entry: where a part goes and how."""

    method: str
    url: str  # pre-signed: its query is a credential, never logged
    headers: Mapping[str, str | None]

    def __repr__(self) -> str:
        return f"_Upload({self.method}, <url hidden>)"


@dataclass
class _Batch:
    """A batch this process opened and has not closed: its encrypted parts (memory only, like a session key)
    and which of them are uploaded already (a repeated ``finish_batch`` skips those)."""

    parts: dict[int, bytes]
    uploads: dict[int, _Upload]
    uploaded: set[int] = field(default_factory=set)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __repr__(self) -> str:
        return f"_Batch(parts={sorted(self.parts)}, uploaded={sorted(self.uploaded)})"


class KsefEInvoicing:
    """One seller's KSeF (its NIP and KSeF token); safe to share between worker threads."""

    def __init__(
        self,
        name: str,
        client: KsefClient,
        options: KsefOptions,
        *,
        log: Any,
        sleep: Callable[[float], None] = time.sleep,
        key_factory: Callable[[], crypto.SessionKey] = crypto.new_session_key,
    ):
        self.name = name
        self._client = client
        self._options = options
        self._log = log
        self._sleep = sleep
        self._key_factory = key_factory
        self._keys: dict[str, crypto.SessionKey] = {}
        self._batches: dict[str, _Batch] = {}
        self._lock = threading.Lock()

    def close(self) -> None:
        self._client.close()

    # --- the port --------------------------------------------------------------------------------------------

    def _open(self, session_key: crypto.SessionKey, body: Callable[[str, str | None], Mapping[str, Any]],
              post: Callable[[Mapping[str, Any]], Mapping[str, Any]]) -> Mapping[str, Any]:
        """Open a session whose AES key goes wrapped with the Ministry's key; a 21470 (the Ministry rotated its
        key at once) fetches the keys again and tries once more (KSeF refused it: nothing was opened)."""
        for attempt in (1, 2):
            key = self._client.encryption_key(mapping.KEY_USAGE)
            try:
                return post(body(crypto.encrypt_symmetric_key(key.key, session_key.key), key.key_id))
            except KsefRefused as refused:
                if UNKNOWN_KEY in refused.codes and attempt == 1:
                    self._log.warning("ksef.public_key_unknown", usage=mapping.KEY_USAGE)
                    self._client.forget_keys()
                    continue
                raise
        raise AssertionError("unreachable")  # pragma: no cover

    def open_session(self) -> str:
        """A new online session for FA(3) with a new AES key."""
        session_key = self._key_factory()
        answer = self._open(session_key, lambda wrapped, key_id: mapping.open_session_request(
            wrapped, session_key.iv, key_id), self._client.open_online_session)
        reference = str(answer.get("referenceNumber") or "")
        if not reference:
            raise RetryableError("KSeF POST /sessions/online: the answer names no session")
        with self._lock:
            self._keys[reference] = session_key
        self._log.info("ksef.session_opened", session=reference, valid_until=answer.get("validUntil"))
        return reference

    def send(self, session: str, invoice: OutgoingInvoice) -> str:
        """Encrypt the invoice with the session's key and send it once; KSeF's reference number of it."""
        with self._lock:
            session_key = self._keys.get(session)
        if session_key is None:
            raise SessionKeyUnknown(f"KSeF session {session}: its key is not in this process (opened before a "
                                    "restart?): read it back with find_sent and open a new session")
        self._check(invoice)
        ciphertext = crypto.aes_encrypt(session_key, invoice.xml)
        body = mapping.send_invoice_request(invoice.xml, ciphertext, offline=invoice.offline,
                                            corrects_sha256=invoice.corrects_sha256)
        try:
            answer = self._client.send_invoice(session, body)
        except KsefRefused as refused:
            if {NO_SESSION, SESSION_STATUS, SESSION_FULL} & set(refused.codes):
                raise SessionUnusable(f"invoice {invoice.key}: {refused}") from refused
            raise
        reference = str(answer.get("referenceNumber") or "")
        if not reference:
            raise RetryableError(f"KSeF: the answer to invoice {invoice.key} names no reference (read the session "
                                 "back before sending again)")
        self._log.info("ksef.invoice_sent", session=session, invoice=invoice.key, reference=reference,
                       sha256=invoice.sha256)
        return reference

    def _check(self, invoice: OutgoingInvoice) -> None:
        actual = crypto.sha256_b64(invoice.xml)
        if actual != invoice.sha256:
            raise PermanentError(f"invoice {invoice.key}: its sha256 {invoice.sha256} is not that of its XML "
                                 f"({actual}): the hub would not find it again by its hash")
        if len(invoice.xml) > self._options.max_invoice_bytes:
            raise PermanentError(f"invoice {invoice.key}: {len(invoice.xml)} bytes, over KSeF's limit of "
                                 f"{self._options.max_invoice_bytes} bytes for one invoice without attachments")

    def find_sent(self, session: str) -> Sequence[SentInvoice]:
        """Every invoice KSeF has of the session, online or batch (a batch's appear once it is closed)."""
        entries = self._client.session_invoices(session, page_size=self._options.list_page_size,
                                                max_pages=self._options.list_max_pages)
        return mapping.sent_invoices(entries)

    def invoice_status(self, session: str, reference: str) -> SentInvoice:
        """KSeF's verdict; while it is still verifying (100/150), asked again every
        ``verification_poll_interval`` for up to ``verification_timeout``, then "processing"."""
        interval = self._options.verification_poll_interval
        polls = math.floor(self._options.verification_timeout / interval) if interval > 0 else 0
        for n in range(polls + 1):
            sent = mapping.sent_invoice(self._client.invoice_status(session, reference))
            if sent.status != "processing" or n == polls:
                return sent
            self._sleep(interval)
        raise AssertionError("unreachable")  # pragma: no cover

    def upo(self, session: str, reference: str) -> bytes:
        """The invoice's UPO, checked (upo.check) and matched against KSeF's ``x-ms-meta-hash``."""
        try:
            content, meta_hash = self._client.invoice_upo(session, reference)
        except KsefRefused as refused:
            sent = mapping.sent_invoice(self._client.invoice_status(session, reference))
            if sent.status == "processing":
                raise RetryableError(f"KSeF invoice {reference}: no UPO yet, still being verified "
                                     f"({sent.code})") from refused
            if sent.status == "rejected":
                raise PermanentError(f"KSeF invoice {reference}: no UPO, KSeF refused the invoice ({sent.code} "
                                     f"{sent.description})") from refused
            raise
        if meta_hash and meta_hash != crypto.sha256_b64(content):
            raise RetryableError(f"KSeF invoice {reference}: the UPO's SHA-256 is not its x-ms-meta-hash "
                                 "(damaged on the way)")
        upo.check(content, validate=self._options.validate_upo)
        return content

    def close_session(self, session: str) -> None:
        """Close the session (KSeF then makes the session's collective UPO); a session KSeF says is no longer
        open (closed already: a lost answer to our own close) counts as closed."""
        try:
            self._client.close_online_session(session)
        except KsefRefused as refused:
            if SESSION_STATUS not in refused.codes:
                raise
            self._log.info("ksef.session_not_open", session=session, error=str(refused)[:300])
        with self._lock:
            self._keys.pop(session, None)
        self._log.info("ksef.session_closed", session=session)

    # --- batch sessions --------------------------------------------------------------------------------------

    def open_batch(self, invoices: Sequence[OutgoingInvoice]) -> str:
        """Open a batch session of ``invoices`` (FA(3)); its reference number. The ZIP of their XML files is
        built, cut into parts of at most ``batch_part_bytes`` and each part encrypted under a new AES key, all
        in memory; ``POST /sessions/batch`` declares the archive and the parts and is sent once (it may have
        been applied: a lost answer leaves a session nobody closes, which KSeF cancels). PermanentError, before
        anything is sent, for an empty batch, one over ``batch_max_invoices``, 50 parts or 5 GB, an invoice
        whose sha256 is not its XML's or over ``max_invoice_bytes``, or the same invoice twice (the hub tells
        the invoices of a session apart by their hashes), for online and offline invoices together (offlineMode
        is the batch's) and for a technical correction (online sessions only)."""
        if not invoices:
            raise PermanentError("KSeF batch: no invoices")
        if len(invoices) > self._options.batch_max_invoices:
            raise PermanentError(f"KSeF batch: {len(invoices)} invoices, over the {self._options.batch_max_invoices} "
                                 "one session takes")
        if len({invoice.offline for invoice in invoices}) > 1:
            raise PermanentError("KSeF batch: online and offline invoices together (offlineMode is the batch's)")
        corrections = [invoice.key for invoice in invoices if invoice.corrects_sha256]
        if corrections:
            raise PermanentError(f"KSeF batch: technical corrections go in an online session only "
                                 f"(korekta-techniczna.md): {', '.join(corrections[:5])}")
        seen: dict[str, str] = {}
        for invoice in invoices:
            self._check(invoice)
            if invoice.sha256 in seen:
                raise PermanentError(f"KSeF batch: invoice {invoice.key} is the same document as invoice "
                                     f"{seen[invoice.sha256]} (sha256 {invoice.sha256})")
            seen[invoice.sha256] = invoice.key
        names = batch.file_names([invoice.key for invoice in invoices])
        session_key = self._key_factory()
        try:
            package = batch.package([(name, invoice.xml) for name, invoice in zip(names, invoices, strict=True)],
                                    session_key, self._options.batch_part_bytes)
        except batch.BatchTooLarge as exc:
            raise PermanentError(f"KSeF batch of {len(invoices)} invoices: {exc}: send fewer at once") from exc
        declared = [(part.ordinal, part.size, part.sha256) for part in package.parts]
        answer = self._open(session_key, lambda wrapped, key_id: mapping.open_batch_request(
            wrapped, session_key.iv, key_id, archive_size=package.size, archive_sha256=package.sha256,
            parts=declared, offline=invoices[0].offline), self._client.open_batch_session)
        reference = str(answer.get("referenceNumber") or "")
        if not reference:
            raise RetryableError("KSeF POST /sessions/batch: the answer names no session (KSeF cancels it unclosed)")
        uploads = self._uploads(reference, answer.get("partUploadRequests"), {part.ordinal for part in package.parts})
        with self._lock:
            self._batches[reference] = _Batch({part.ordinal: part.content for part in package.parts}, uploads)
        self._log.info("ksef.batch_opened", session=reference, invoices=len(invoices), parts=len(package.parts),
                       archive_bytes=package.size, archive_sha256=package.sha256)
        return reference

    @staticmethod
    def _uploads(reference: str, entries: Any, ordinals: set[int]) -> dict[int, _Upload]:
        """``partUploadRequests`` by ``ordinalNumber``, one for each declared part; RetryableError otherwise
        (the session is then left unclosed: KSeF cancels it, and nothing of it is ever processed)."""
        uploads: dict[int, _Upload] = {}
        for entry in entries if isinstance(entries, list) else ():
            if not isinstance(entry, Mapping):
                continue
            ordinal, method, url, headers = (entry.get(k) for k in ("ordinalNumber", "method", "url", "headers"))
            if isinstance(ordinal, int) and isinstance(method, str) and isinstance(url, str) and method and url:
                uploads[ordinal] = _Upload(method, url, {str(k): None if v is None else str(v)
                                                         for k, v in (headers or {}).items()})
        missing = sorted(ordinals - set(uploads))
        if missing:
            raise RetryableError(f"KSeF POST /sessions/batch {reference}: the answer gives no upload address for "
                                 f"part(s) {missing} (the session is left unclosed: KSeF cancels it)")
        return uploads

    def finish_batch(self, session: str) -> None:
        """Upload the batch's parts (those not uploaded yet) exactly as ``partUploadRequests`` said, then
        ``POST /sessions/batch/{ref}/close``; the parts are forgotten afterwards. A part's upload is retried on
        5xx and timeouts (KsefUnavailable after the last attempt: call again, the uploaded parts are kept); a
        close KSeF says the session's status forbids (21180: our own close whose answer was lost) counts as
        closed. SessionUnusable when the batch cannot be completed any more (a part refused or its address
        expired, KSeF's 21173/21157/21205/21208): its invoices go in a new session. SessionKeyUnknown when this
        process does not hold its parts (opened before a restart), unless KSeF says it is closed already (a
        close that landed before the restart): then there is nothing left to do."""
        with self._lock:
            record = self._batches.get(session)
        if record is None:
            self._batch_not_here(session)
            return
        with record.lock:
            with self._lock:
                finished_meanwhile = self._batches.get(session) is not record  # by another thread
            if finished_meanwhile:
                self._batch_not_here(session)
                return
            for ordinal in sorted(record.parts):
                if ordinal in record.uploaded:
                    continue
                upload = record.uploads[ordinal]
                try:
                    self._client.upload_part(upload.method, upload.url, upload.headers, record.parts[ordinal])
                except KsefRefused as refused:
                    self._forget_batch(session)
                    raise SessionUnusable(f"KSeF batch {session}: part {ordinal} was refused ({refused}): the batch "
                                          "is lost, send its invoices in a new session") from refused
                record.uploaded.add(ordinal)
                self._log.debug("ksef.batch_part_uploaded", session=session, part=ordinal,
                                bytes=len(record.parts[ordinal]))
            try:
                self._client.close_batch_session(session)
            except KsefRefused as refused:
                if BATCH_LOST & set(refused.codes):
                    self._forget_batch(session)
                    raise SessionUnusable(f"KSeF batch {session}: {refused}: the batch is lost, send its invoices "
                                          "in a new session") from refused
                if SESSION_STATUS not in refused.codes:
                    raise
                self._log.info("ksef.session_not_open", session=session, error=str(refused)[:300])
            self._forget_batch(session)
        self._log.info("ksef.batch_closed", session=session, parts=len(record.parts))

    def _batch_not_here(self, session: str) -> None:
        """A batch whose parts this process does not hold: fine if KSeF has it closed, else SessionKeyUnknown."""
        try:
            status = self.session_status(session)
        except KsefRefused as refused:
            if NO_SESSION not in refused.codes:
                raise
            raise SessionKeyUnknown(f"KSeF batch {session}: unknown to KSeF and its parts are not in this process: "
                                    "send its invoices in a new session") from refused
        if status.phase in ("processing", "done"):
            self._log.info("ksef.batch_closed_already", session=session, status=status.code)
            return
        raise SessionKeyUnknown(f"KSeF batch {session}: its parts are not in this process (opened before a "
                                f"restart?) and KSeF has it in status {status.code} {status.description}: the "
                                "batch is lost (KSeF processes no invoice of an unclosed batch), send its invoices "
                                "in a new session")

    def _forget_batch(self, session: str) -> None:
        with self._lock:
            self._batches.pop(session, None)

    def has_batch(self, session: str) -> bool:
        """Whether this process holds the batch's parts (``finish_batch`` can complete it)."""
        with self._lock:
            return session in self._batches

    # --- more than the port ----------------------------------------------------------------------------------

    def has_session_key(self, session: str) -> bool:
        """Whether this process can still send into ``session``."""
        with self._lock:
            return session in self._keys

    def session_status(self, session: str) -> mapping.SessionStatus:
        """``GET /sessions/{ref}`` of an online or a batch session; ``.phase`` says what it means for the hub:
        "open" (100), "processing" (150 batch, 170 online), "done" (200, 445), "failed" (405, 415, 420, 430,
        435, 440, 500...)."""
        return mapping.session_status(self._client.session_status(session))

    def session_phase(self, session: str) -> mapping.SessionPhase:
        """``session_status(session).phase`` as a plain string for the hub, which knows no connector type:
        "open", "processing", "done" or "failed" (mapping.SessionStatus.phase says what each asks of it)."""
        return self.session_status(session).phase
