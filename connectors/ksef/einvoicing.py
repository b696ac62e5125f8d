"""KSeF as the hub's EInvoicing port: FA(3) invoices in online (interactive) sessions.

Exactly once (hub.kernel.ports.invoicing): the hub records the session and the invoice's hash before
``send``; after a lost answer or a crash it reads the session back (``find_sent``, every invoice KSeF has of
it with its ``invoiceHash``) before it sends anything again. ``send`` itself is one POST, never repeated here.

Each session has its own AES-256 key and IV (sesja-interaktywna.md recommends a new key per session), made in
``open_session`` and kept in this process's memory only: neither a log nor the database ever holds it. A
session whose key this process does not have (it was opened before a restart) takes no more invoices:
``send`` raises SessionKeyUnknown (a SessionUnusable), and the hub reads the session back with ``find_sent``
and opens a new one. ``close_session`` forgets the key.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from hub.kernel.errors import PermanentError, RetryableError
from hub.kernel.ports import invoicing as ports
from hub.kernel.ports.invoicing import OutgoingInvoice, SentInvoice

from . import crypto, mapping, upo
from .client import UNKNOWN_KEY, KsefClient, KsefRefused
from .options import KsefOptions

NO_SESSION = 21173  # "Brak sesji o wskazanym numerze referencyjnym."
SESSION_STATUS = 21180  # "Status sesji nie pozwala na wykonanie operacji."
SESSION_FULL = 21155  # "Przekroczono dozwoloną liczbę faktur w sesji."


class SessionUnusable(ports.SessionUnusable):
    """The session takes no more invoices (closed, unknown, full, or its key is not in this process): read it
    back with ``find_sent`` and send the rest in a new session."""


class SessionKeyUnknown(SessionUnusable):
    """The session was opened by another process or before a restart: its AES key is gone with it."""


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
        self._lock = threading.Lock()

    def close(self) -> None:
        self._client.close()

    # --- the port --------------------------------------------------------------------------------------------

    def open_session(self) -> str:
        """A new online session for FA(3) with a new AES key; a 21470 (the Ministry rotated its key at once)
        fetches the keys again and tries once more."""
        session_key = self._key_factory()
        for attempt in (1, 2):
            key = self._client.encryption_key(mapping.KEY_USAGE)
            body = mapping.open_session_request(crypto.encrypt_symmetric_key(key.key, session_key.key),
                                                session_key.iv, key.key_id)
            try:
                answer = self._client.open_online_session(body)
            except KsefRefused as refused:
                if UNKNOWN_KEY in refused.codes and attempt == 1:
                    self._log.warning("ksef.public_key_unknown", usage=mapping.KEY_USAGE)
                    self._client.forget_keys()
                    continue
                raise
            break
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
        actual = crypto.sha256_b64(invoice.xml)
        if actual != invoice.sha256:
            raise PermanentError(f"invoice {invoice.key}: its sha256 {invoice.sha256} is not that of its XML "
                                 f"({actual}): the hub would not find it again by its hash")
        if len(invoice.xml) > self._options.max_invoice_bytes:
            raise PermanentError(f"invoice {invoice.key}: {len(invoice.xml)} bytes, over KSeF's limit of "
                                 f"{self._options.max_invoice_bytes} bytes for one invoice without attachments")
        ciphertext = crypto.aes_encrypt(session_key, invoice.xml)
        body = mapping.send_invoice_request(invoice.xml, ciphertext)
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

    def find_sent(self, session: str) -> Sequence[SentInvoice]:
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

    # --- more than the port ----------------------------------------------------------------------------------

    def has_session_key(self, session: str) -> bool:
        """Whether this process can still send into ``session``."""
        with self._lock:
            return session in self._keys

    def session_status(self, session: str) -> mapping.SessionStatus:
        return mapping.session_status(self._client.session_status(session))
