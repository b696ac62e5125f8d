"""The seams invoicing needs from outside: a central bank's exchange rates, and the national
e-invoicing system (KSeF) that gives each invoice its number and official receipt.

Sending is idempotent by the invoice's hash: the hub records the session and the hash before it sends,
and after a crash reads the session's invoices back (``find_sent``) before it sends anything again.
Money is Decimal; times are timezone-aware UTC.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import BinaryIO, Literal, Protocol, runtime_checkable

from hub.kernel.errors import PermanentError, RetryableError


@dataclass(frozen=True)
class PublishedRate:
    """A central bank's average rate: PLN for one unit of ``currency``, as published on ``effective_date``
    in table ``table_no`` (NBP: ``233/A/NBP/2026``)."""

    currency: str
    effective_date: date
    mid: Decimal
    table_no: str


@runtime_checkable
class ExchangeRateSource(Protocol):
    name: str

    def rate_before(self, currency: str, day: date) -> PublishedRate:
        """The average rate of the last day before ``day`` on which one was published (art. 31a ust. 1
        of the VAT act: the last working day before the tax point). PermanentError for a currency the
        bank does not publish."""
        ...


class SystemUnavailable(RetryableError):
    """The e-invoicing system cannot be reached (timeouts, broken connections, 5xx after the last attempt):
    invoices due to go are issued in its offline mode instead (hub.invoicing.offline)."""


class SessionUnusable(PermanentError):
    """The session takes no more invoices (closed, full, or its key died with another process): read it
    back with ``find_sent`` and open another. The invoices themselves are fine."""


@dataclass(frozen=True)
class OutgoingInvoice:
    """One invoice for an online session: its FA(3) XML and its SHA-256 (base64), which identifies it."""

    key: str  # the hub's id of the invoice (its number): logs and errors name it
    xml: bytes
    sha256: str
    offline: bool = False  # issued in KSeF's offline mode (hub.invoicing.offline)
    # a technical correction: the SHA-256 of the rejected offline document it replaces (online sessions only)
    corrects_sha256: str | None = None


InvoiceStatusKind = Literal["processing", "accepted", "rejected"]


@dataclass(frozen=True)
class SentInvoice:
    """What KSeF says of an invoice sent in a session."""

    sha256: str  # invoiceHash, base64
    reference: str  # KSeF's reference number of the invoice in the session
    status: InvoiceStatusKind
    code: int  # KSeF's status code (200 accepted; 100/150 in progress; 4xx refused)
    description: str
    details: Sequence[str] = ()
    ksef_number: str | None = None
    invoice_number: str | None = None
    acquired_at: datetime | None = None  # KSeF's acquisitionDate (UTC)


@runtime_checkable
class EInvoicing(Protocol):
    name: str

    def open_session(self) -> str:
        """Open an online session for FA(3) invoices; its reference number."""
        ...

    def send(self, session: str, invoice: OutgoingInvoice) -> str:
        """Send one invoice in an open session; KSeF's reference number of it. Verification is
        asynchronous: ``invoice_status`` tells the outcome."""
        ...

    def find_sent(self, session: str) -> Sequence[SentInvoice]:
        """Every invoice KSeF has of the session (after a crash: what reached it)."""
        ...

    def invoice_status(self, session: str, reference: str) -> SentInvoice:
        ...

    def upo(self, session: str, reference: str) -> bytes:
        """The official receipt (UPO XML) of an accepted invoice."""
        ...

    def close_session(self, session: str) -> None:
        ...


SessionPhase = Literal["open", "processing", "done", "failed"]


@runtime_checkable
class EInvoicingBatch(Protocol):
    """A batch session for a backlog (KSeF allows 30 online sends a minute): the invoices go as one encrypted
    archive, KSeF verifies each on its own, and ``find_sent`` reads them afterwards."""

    def open_batch(self, invoices: Sequence[OutgoingInvoice]) -> str:
        """Open a batch session for these invoices (their archive kept in this process); its reference.
        One attempt: a session opened unseen is never closed, so KSeF cancels it and processes nothing."""
        ...

    def finish_batch(self, session: str) -> None:
        """Upload the batch's parts and close the session, in the process that opened it (SessionUnusable
        when it cannot: its invoices are then sent again)."""
        ...

    def session_phase(self, session: str) -> SessionPhase:
        """open (never closed), processing (closed, being verified), done, or failed (nothing processed)."""
        ...


@dataclass(frozen=True)
class RegisterRate:
    """An invoice's total at one rate; ``rate`` is FA(3)'s code (``23``, ``0 KR``, ``zw``, ``np I``...)."""

    rate: str
    net: Decimal
    vat: Decimal
    gross: Decimal


@dataclass(frozen=True)
class RegisterLine:
    line_no: int
    name: str
    sku: str | None
    unit: str
    quantity: Decimal  # negative on a correction: returned units
    rate: str
    unit_net: Decimal
    unit_gross: Decimal
    net: Decimal
    vat: Decimal
    gross: Decimal


@dataclass(frozen=True)
class RegisterInvoice:
    """An issued invoice as an accounting program imports it: what an export connector writes."""

    number: str
    kind: Literal["VAT", "KOR"]
    issue_date: date
    sale_date: date
    buyer_name: str
    buyer_tax_id: str  # a Polish NIP, an EU VAT number with its prefix, another id, or ""
    buyer_country: str
    buyer_street: str
    buyer_city: str
    buyer_postal_code: str
    currency: str
    exchange_rate: Decimal | None
    rates: Sequence[RegisterRate]
    lines: Sequence[RegisterLine]
    net: Decimal
    vat: Decimal
    gross: Decimal
    payment_form: str  # cash | card | transfer | ...
    due: date | None
    ksef_number: str | None
    corrected_number: str | None = None
    corrected_issue_date: date | None = None
    reason: str | None = None


@dataclass(frozen=True)
class ExportSeller:
    name: str
    nip: str
    street: str
    city: str
    postal_code: str


@runtime_checkable
class InvoiceExport(Protocol):
    """An accounting program's import format (its connector knows it): one file of many invoices."""

    name: str
    suffix: str  # the file's extension, with its dot

    def write(self, handle: BinaryIO, seller: ExportSeller, invoices: Iterable[RegisterInvoice], *,
              now: datetime) -> int:
        """Write the invoices as they come (never all in memory); how many were written."""
        ...
