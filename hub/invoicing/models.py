"""The invoicing tables: invoices with their lines, the numbering counters, the exchange rates read
from the central bank, and the KSeF sessions the invoices were sent in."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Boolean, Date, ForeignKey, Index, Integer, Numeric, String, Text, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from hub.platform.schema import Base, Id, Json, Money, UTCDateTime

Quantity = Numeric(22, 6, asdecimal=True)  # FA(3)'s TIlosci: up to 6 decimals
UnitPrice = Numeric(22, 8, asdecimal=True)  # TKwotowy2: up to 8 decimals
Rate = Numeric(12, 6, asdecimal=True)  # an exchange rate (NBP publishes 4 decimals)

# issued: numbered, its FA(3) valid and stored; sending: handed to KSeF in a session (the call may or may
# not have reached it); sent: KSeF took it, its verification pending; accepted: it has its KSeF number;
# rejected: KSeF refused it (problem says why); outside_ksef: not for KSeF (a consumer's invoice by
# default); problem: not issued (no number taken), problem says why
INVOICE_STATES = ("problem", "issued", "sending", "sent", "accepted", "rejected", "outside_ksef")
# an invoice meant for KSeF that is not there yet (an offline one keeps its deadline in these states)
NOT_YET_IN_KSEF = ("issued", "sending", "sent", "rejected", "problem")


class InvoiceCounter(Base):
    """The last number of a series in a period, taken in the transaction that stores the invoice."""

    __tablename__ = "invoice_counters"

    series: Mapped[str] = mapped_column(String(50), primary_key=True)
    period: Mapped[str] = mapped_column(String(10), primary_key=True)  # 2026-12 | 2026 | "-"
    last_seq: Mapped[int] = mapped_column(Integer)


class Invoice(Base):
    """A VAT invoice or a corrective invoice, once per origin (the order, the return, the operator's
    request) whatever runs it again."""

    __tablename__ = "invoices"

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    origin: Mapped[str] = mapped_column(String(200))  # order:ID | return:ID | correct:ID:TOKEN
    kind: Mapped[str] = mapped_column(String(10))  # VAT | KOR
    series: Mapped[str] = mapped_column(String(50))
    period: Mapped[str | None] = mapped_column(String(10))
    seq: Mapped[int | None] = mapped_column(Integer)
    number: Mapped[str | None] = mapped_column(String(256))  # None while not issued (state problem)
    state: Mapped[str] = mapped_column(String(20))
    problem: Mapped[str | None] = mapped_column(Text)
    order_id: Mapped[int | None] = mapped_column(Id, ForeignKey("orders.id"))
    corrects_id: Mapped[int | None] = mapped_column(Id, ForeignKey("invoices.id"))
    reason: Mapped[str | None] = mapped_column(Text)  # a correction's reason (PrzyczynaKorekty)
    business: Mapped[bool] = mapped_column(Boolean)  # the buyer has a tax id (B2B)
    buyer: Mapped[dict[str, Any]] = mapped_column(Json)
    seller: Mapped[dict[str, Any]] = mapped_column(Json)
    issue_date: Mapped[date | None] = mapped_column(Date)
    sale_date: Mapped[date] = mapped_column(Date)
    currency: Mapped[str] = mapped_column(String(3))
    exchange_rate: Mapped[Decimal | None] = mapped_column(Rate)
    exchange_rate_date: Mapped[date | None] = mapped_column(Date)
    exchange_rate_table: Mapped[str | None] = mapped_column(String(40))
    basis: Mapped[str] = mapped_column(String(5))  # gross | net
    net: Mapped[Decimal] = mapped_column(Money)
    vat: Mapped[Decimal] = mapped_column(Money)
    gross: Mapped[Decimal] = mapped_column(Money)
    rates: Mapped[list[dict[str, Any]]] = mapped_column(Json)  # per rate: net, vat, gross, vat_pln
    payment: Mapped[dict[str, Any]] = mapped_column(Json)
    split_payment: Mapped[bool] = mapped_column(Boolean, default=False)
    xml: Mapped[str | None] = mapped_column(Text)  # the FA(3) document, valid against the schema
    xml_sha256: Mapped[str | None] = mapped_column(String(64))  # base64 of SHA-256 (KSeF's invoiceHash)
    ksef_session: Mapped[str | None] = mapped_column(String(100))
    ksef_reference: Mapped[str | None] = mapped_column(String(100))
    ksef_number: Mapped[str | None] = mapped_column(String(40))
    ksef_code: Mapped[int | None] = mapped_column(Integer)  # KSeF's status code of the invoice
    ksef_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # when KSeF received it
    upo: Mapped[str | None] = mapped_column(Text)  # the official receipt (UPO XML)
    # issued in KSeF's offline mode (offline24: KSeF was unavailable when it was due, or it was not sent on
    # its day of issue): sent with offlineMode, printed with both QR codes, due in KSeF by ksef_deadline
    offline: Mapped[bool] = mapped_column(Boolean, default=False, server_default=text("false"))
    ksef_deadline: Mapped[date | None] = mapped_column(Date)
    # a technical correction (offline/korekta-techniczna.md): the SHA-256 of the offline document KSeF
    # rejected, which this one replaces under the same number and content
    corrects_sha256: Mapped[str | None] = mapped_column(String(64))
    send_calls: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)

    __table_args__ = (
        UniqueConstraint("origin"),
        UniqueConstraint("number"),
        UniqueConstraint("series", "period", "seq"),
        Index("ix_invoices_order", "order_id"),
        Index("ix_invoices_issue_date", "issue_date"),
        # the invoices in one state, oldest first (those ready for KSeF, those awaiting its verdict): a partial
        # index on the unsent states was never used by SQLite for "state = 'issued'", which scanned them all
        Index("ix_invoices_state", "state", "id"),
    )


class InvoiceLine(Base):
    __tablename__ = "invoice_lines"

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    invoice_id: Mapped[int] = mapped_column(Id, ForeignKey("invoices.id", ondelete="CASCADE"))
    line_no: Mapped[int] = mapped_column(Integer)
    name: Mapped[str] = mapped_column(Text)
    sku: Mapped[str | None] = mapped_column(String(100))
    kind: Mapped[str] = mapped_column(String(20))  # goods | shipping | fee
    unit: Mapped[str] = mapped_column(String(20))
    quantity: Mapped[Decimal] = mapped_column(Quantity)
    rate: Mapped[str] = mapped_column(String(6))
    unit_net: Mapped[Decimal] = mapped_column(UnitPrice)
    unit_gross: Mapped[Decimal] = mapped_column(UnitPrice)
    net: Mapped[Decimal] = mapped_column(Money)
    vat: Mapped[Decimal] = mapped_column(Money)
    gross: Mapped[Decimal] = mapped_column(Money)
    annex15: Mapped[bool] = mapped_column(Boolean, default=False)

    __table_args__ = (UniqueConstraint("invoice_id", "line_no"),)


class ExchangeRate(Base):
    """The central bank's average rate that applies to a tax point: the one published on the last working
    day before it (art. 31a ust. 1). One row per currency and tax point day, so every invoice of that
    day uses the same rate and the bank is asked once."""

    __tablename__ = "exchange_rates"

    currency: Mapped[str] = mapped_column(String(3), primary_key=True)
    tax_point: Mapped[date] = mapped_column(Date, primary_key=True)
    effective_date: Mapped[date] = mapped_column(Date)  # the day the bank published it
    mid: Mapped[Decimal] = mapped_column(Rate)
    table_no: Mapped[str] = mapped_column(String(40))
    source: Mapped[str] = mapped_column(String(100))  # the connector that read it
    fetched_at: Mapped[datetime] = mapped_column(UTCDateTime)


class KsefSession(Base):
    """An online session with KSeF: invoices sent in it are found again by their hash after a crash."""

    __tablename__ = "ksef_sessions"

    reference: Mapped[str] = mapped_column(String(100), primary_key=True)
    connector: Mapped[str] = mapped_column(String(100))
    kind: Mapped[str] = mapped_column(String(10), default="online", server_default="online")  # online | batch
    state: Mapped[str] = mapped_column(String(20))  # open | closing | closed
    opened_at: Mapped[datetime] = mapped_column(UTCDateTime)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    invoices: Mapped[int] = mapped_column(Integer, default=0)
    upo: Mapped[str | None] = mapped_column(Text)


class KsefOutage(Base):
    """A KSeF unavailability or failure the Ministry announced (BIP, the API), as the operator records it:
    it moves the deadline of offline invoices (tryby-offline.md). Open while ``ended_on`` is None."""

    __tablename__ = "ksef_outages"

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(20))  # unavailable | failure
    started_on: Mapped[date] = mapped_column(Date)
    ended_on: Mapped[date | None] = mapped_column(Date)
    note: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)

    __table_args__ = (UniqueConstraint("kind", "started_on"),)
