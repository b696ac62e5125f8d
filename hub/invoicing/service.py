"""The invoicing job handlers: issue an order's invoice, correct it for a return, send issued invoices
to KSeF, and record what KSeF made of them (KSeF numbers, official receipts, rejections).

Sending is exactly once per invoice:
- One sender runs at a time: a send job that finds another one running (its lease alive) is deferred,
  spending no attempt; so an invoice marked ``sending`` at the start of a run belongs to a run that died.
- Before a batch is sent, its invoices are marked ``sending`` with the session in a committed
  transaction; after the calls, KSeF's references are recorded.
- A run first reads back the sessions of invoices left ``sending`` (``find_sent``, matched by the
  invoice's SHA-256): found ones are ``sent``, the others never reached KSeF and are sent again.
- Should an invoice reach KSeF twice anyway, KSeF refuses the second as a duplicate (440) naming the
  first one's KSeF number, which the invoice takes.
"""

from __future__ import annotations

import contextlib
import random
import re
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import date, datetime
from decimal import Decimal
from types import SimpleNamespace
from typing import Any
from xml.sax.saxutils import escape

from sqlalchemy import Engine, bindparam, func, select, update
from sqlalchemy.orm import Session

from hub.invoicing.amounts import LineIn
from hub.invoicing.goods import InvoicingFile
from hub.invoicing.issue import (
    Draft,
    InvoiceProblem,
    Issued,
    NothingSold,
    OnRequestOnly,
    draft_for_order,
    draft_from,
    history_days,
    local_day,
    order_lines,
    seller_of,
    sha256_b64,
    store,
    store_many,
)
from hub.invoicing.kinds import SEND, STATUS
from hub.invoicing.models import NOT_YET_IN_KSEF, ExchangeRate, Invoice, InvoiceLine, KsefOutage, KsefSession
from hub.invoicing.offline import Outage, deadline
from hub.invoicing.schemas import fa3, problems
from hub.jobs import queue
from hub.jobs.handlers import JobContext
from hub.jobs.models import Job
from hub.kernel.clock import utcnow
from hub.kernel.errors import Deferred, NotFoundError, PermanentError, RetryableError
from hub.kernel.ports.invoicing import (
    EInvoicing,
    EInvoicingBatch,
    ExchangeRateSource,
    OutgoingInvoice,
    PublishedRate,
    SentInvoice,
    SessionUnusable,
    SystemUnavailable,
)
from hub.orders import CORRECT_INVOICE, ISSUE_INVOICE, Order, ReturnRow
from hub.platform.config import InvoicingSettings
from hub.platform.db import insert_for, transaction
from hub.platform.logs import get_logger

log = get_logger("hub.invoicing")

SEND_BATCH = 100  # invoices marked sending per commit
BATCH_FROM = 200  # a backlog this large goes in a batch session, when the connector has them
BATCH_SIZE = 5_000  # invoices per batch session (its archive is held in memory while it uploads)
SESSION_INVOICES = 9_000  # a session takes up to 10,000 invoices (limity/)
STATUS_POLL = 0.5  # seconds between reads of KSeF's verdicts while it verifies
# sends and verdicts go before the issuing behind them: an invoice is in KSeF soon after it is numbered
KSEF_PRIORITY = 10
OUTAGE_RETRY = 15.0  # seconds between a sender's tries while KSeF cannot be reached
SESSION_REUSE_SECONDS = 3600.0  # an online session lives 12 h; a fresh one every hour bounds what one holds
KSEF_NUMBER = re.compile(r"\b\d{10}-\d{8}-[0-9A-F]{6}-?[0-9A-F]{6}-[0-9A-F]{2}\b")
_INVOICES = Invoice.__table__
_MARK_SENDING = (update(_INVOICES).where(_INVOICES.c.id == bindparam("invoice_id"), _INVOICES.c.state == "issued")
                 .values(state="sending", ksef_session=bindparam("session_ref"),
                         send_calls=_INVOICES.c.send_calls + 1, updated_at=bindparam("now")))
_ACCEPTED = (update(_INVOICES).where(_INVOICES.c.id == bindparam("invoice_id"), _INVOICES.c.state == "sent")
             .values(state="accepted", ksef_number=bindparam("ksef_no"), ksef_code=bindparam("verdict_code"),
                     ksef_at=bindparam("acquired"), upo=bindparam("upo_xml"), problem=None,
                     updated_at=bindparam("now")))
_REJECTED = (update(_INVOICES).where(_INVOICES.c.id == bindparam("invoice_id"), _INVOICES.c.state == "sent")
             .values(state="rejected", ksef_code=bindparam("verdict_code"), problem=bindparam("problem_text"),
                     updated_at=bindparam("now")))
_MARK_SENT = (update(_INVOICES).where(_INVOICES.c.id == bindparam("invoice_id"), _INVOICES.c.state == "sending")
              .values(state="sent", ksef_reference=bindparam("reference"), updated_at=bindparam("now")))


class InvoicingService:
    def __init__(self, connectors: Any, settings: InvoicingSettings, goods: InvoicingFile):
        self.connectors = connectors
        self.settings = settings
        self.goods = goods
        self._session_lock = threading.Lock()
        self._live: tuple[str, float, int] | None = None  # (reference, opened at (monotonic), invoices sent)

    # connectors

    def ksef(self) -> EInvoicing:
        name = self.settings.ksef
        names = self.connectors.names(role="einvoicing")
        if name is None or name not in names:
            raise PermanentError(f"invoicing.ksef = {name!r} is not a KSeF connector "
                                 f"(e-invoicing connectors: {', '.join(names) or 'none'})")
        return self.connectors.get(name)  # type: ignore[no-any-return]

    def rates_source(self) -> ExchangeRateSource:
        names = self.connectors.names(role="rates")
        name = self.settings.rates or (names[0] if len(names) == 1 else None)
        if name is None or name not in names:
            raise PermanentError(f"an invoice in a foreign currency needs the central bank's rate: invoicing.rates "
                                 f"= {name!r} is not an exchange-rate connector "
                                 f"(connectors: {', '.join(names) or 'none'})")
        return self.connectors.get(name)  # type: ignore[no-any-return]

    def sends(self, business: bool) -> bool:
        """Whether an invoice goes to KSeF: a business buyer's always when KSeF is configured, a
        consumer's when the seller says so."""
        return self.settings.ksef is not None and (business or self.settings.send_consumer_invoices)

    # exchange rates

    def exchange_rate(self, engine: Engine, currency: str, tax_point: date) -> PublishedRate:
        """The rate for a tax point: stored once per currency and day, read from the bank the first time
        (outside any transaction)."""
        with transaction(engine) as session:
            row = session.get(ExchangeRate, (currency, tax_point))
            if row is not None:
                return _published(row)
        source = self.rates_source()
        rate = source.rate_before(currency, tax_point)
        with transaction(engine) as session:
            session.execute(insert_for(session)(ExchangeRate).values(
                currency=currency, tax_point=tax_point, effective_date=rate.effective_date, mid=rate.mid,
                table_no=rate.table_no, source=source.name, fetched_at=utcnow())
                .on_conflict_do_nothing(index_elements=["currency", "tax_point"]))
            row = session.get(ExchangeRate, (currency, tax_point))
            assert row is not None
            return _published(row)

    def _with_rate(self, engine: Engine, draft: Draft) -> Draft:
        if draft.currency == "PLN":
            return draft
        return replace(draft, exchange=self.exchange_rate(engine, draft.currency, draft.sale_date))

    # issuing

    def issue_order(self, engine: Engine, order_id: int, *, on_request: bool = False,
                    now: datetime | None = None) -> Issued:
        """The order's invoice, issued once. A problem that keeps it from being issued is stored on the
        invoice (no number taken) and raised as an InvoiceProblem."""
        now = now or utcnow()
        problem: InvoiceProblem | None = None
        issued: Issued | None = None
        with transaction(engine) as session:
            # the order locked first: a cancellation's correction locks it too, so it either waits for this
            # invoice (and finds it) or this one sees the cancellation and issues nothing
            order = _order(session, order_id, lock=True)
            try:
                draft = draft_for_order(session, self.settings, self.goods, order, now=now, on_request=on_request)
            except OnRequestOnly as exc:
                problem = exc  # nothing to fix: no invoice until the buyer asks
            except InvoiceProblem as exc:
                record_problem(session, self.settings, f"order:{order_id}", order, str(exc), now)
                problem = exc
            if problem is None:
                rate = self._cached_rate(session, draft)
                if rate is not None or draft.currency == "PLN":  # all at hand: issued in this transaction
                    issued = self._store(session, replace(draft, exchange=rate), now)
        if problem is not None:
            raise problem
        if issued is None:  # the bank's rate first (read outside any transaction), then the order again
            draft = self._with_rate(engine, draft)
            with transaction(engine) as session:
                if _order(session, order_id, lock=True).status == "cancelled":
                    raise NothingSold(f"order {order_id} was cancelled meanwhile: nothing was sold")
                issued = self._store(session, draft, now)
        if issued.invoice.state == "problem":
            raise InvoiceProblem(f"invoice for order {order_id}: {issued.invoice.problem}")
        return issued

    def issue_orders(self, engine: Engine, order_ids: Sequence[int], *, now: datetime | None = None,
                     ) -> list[Issued | Exception]:
        """issue_order for many orders in one transaction (the job queue's lot of invoicing.issue jobs):
        the orders locked in id order, their histories and lines read at once, numbers taken together
        (hub.invoicing.issue.store_many). An order whose currency's rate is not cached yet goes through
        issue_order alone after the lot, which reads the bank's rate outside any transaction. What an
        order gives is its Issued or its exception, in the order_ids' order."""
        now = now or utcnow()
        results: dict[int, Issued | Exception] = {}
        alone: list[int] = []
        with transaction(engine) as session:
            orders = {order.id: order for order in session.execute(
                select(Order).where(Order.id.in_(order_ids)).order_by(Order.id).with_for_update()).scalars()}
            for order_id in order_ids:
                if order_id not in orders:
                    results[order_id] = NotFoundError(f"no order with id {order_id}")
            days = history_days(session, list(orders), self.settings)
            lines = order_lines(session, list(orders))
            drafts: list[Draft] = []
            for order in orders.values():
                try:
                    drafts.append(draft_from(self.settings, self.goods, order, days[order.id], lines[order.id],
                                             now=now))
                except OnRequestOnly as exc:
                    results[order.id] = exc
                except InvoiceProblem as exc:
                    record_problem(session, self.settings, f"order:{order.id}", order, str(exc), now)
                    results[order.id] = exc
            foreign = {(d.currency, d.sale_date) for d in drafts if d.currency != "PLN"}
            cached = {(row.currency, row.tax_point): _published(row)
                      for row in session.execute(select(ExchangeRate).where(
                          ExchangeRate.currency.in_({c for c, _ in foreign}),
                          ExchangeRate.tax_point.in_({d for _, d in foreign}))).scalars()} if foreign else {}
            ready: list[tuple[Draft, bool]] = []
            for draft in drafts:
                if draft.currency == "PLN":
                    ready.append((draft, self.sends(draft.business)))
                elif (draft.currency, draft.sale_date) in cached:
                    ready.append((replace(draft, exchange=cached[(draft.currency, draft.sale_date)]),
                                  self.sends(draft.business)))
                else:
                    alone.append(draft.order_id)  # type: ignore[arg-type]
            if any(send for _, send in ready):  # queued before the numbers are taken (see _store)
                self._queue_send(session)
            for (draft, _), stored in zip(ready, store_many(session, self.settings, ready, now=now), strict=True):
                assert draft.order_id is not None
                if isinstance(stored, Issued) and stored.invoice.state == "problem":
                    results[draft.order_id] = InvoiceProblem(
                        f"invoice for order {draft.order_id}: {stored.invoice.problem}")
                else:
                    results[draft.order_id] = stored
        for order_id in alone:
            try:
                results[order_id] = self.issue_order(engine, order_id, now=now)
            except Exception as exc:  # its own outcome; the others stand
                results[order_id] = exc
        return [results[order_id] for order_id in order_ids]

    def _store(self, session: Session, draft: Draft, now: datetime) -> Issued:
        send = self.sends(draft.business)
        if send:  # queued before the number is taken: the counter row is held until the commit
            self._queue_send(session)
        return store(session, self.settings, draft, now=now, send=send)

    def _cached_rate(self, session: Session, draft: Draft) -> PublishedRate | None:
        if draft.currency == "PLN":
            return None
        row = session.get(ExchangeRate, (draft.currency, draft.sale_date))
        return None if row is None else _published(row)

    def _queue_send(self, session: Session) -> None:
        queue.enqueue_coalesced(session, SEND, {}, group=f"ksef-send:{self.settings.ksef}", priority=KSEF_PRIORITY)

    def handle_issue(self, ctx: JobContext) -> dict[str, Any]:
        if not self.settings.enabled:
            return {"skipped": "invoicing is not enabled ([invoicing] enabled = false)"}
        try:
            issued: Issued | Exception = self.issue_order(ctx.engine, int(ctx.payload["order_id"]))
        except InvoiceProblem as exc:
            issued = exc
        return _issue_result(issued)

    def handle_issue_many(self, contexts: list[JobContext]) -> list[Any]:
        """invoicing.issue jobs a worker claimed together, issued in one transaction (issue_orders);
        each job's result as handle_issue gives it, or its exception."""
        if not self.settings.enabled:
            return [{"skipped": "invoicing is not enabled ([invoicing] enabled = false)"} for _ in contexts]
        order_ids = [int(ctx.payload["order_id"]) for ctx in contexts]
        if len(set(order_ids)) != len(order_ids):
            raise ValueError("the same order twice in one lot")  # the worker runs each alone
        return [_issue_result(result) for result in self.issue_orders(contexts[0].engine, order_ids)]

    # corrections

    def correct(self, engine: Engine, invoice_id: int, reason: str, changes: Sequence[LineIn], *, origin: str,
                now: datetime | None = None) -> Issued:
        """A corrective invoice of ``invoice_id`` with difference lines (a returned unit: a negative
        quantity). KSeF takes it only once the original has its KSeF number: until then it waits issued."""
        now = now or utcnow()
        if not changes:
            raise InvoiceProblem(f"the correction of invoice {invoice_id} changes nothing")
        with transaction(engine) as session:
            original = session.get(Invoice, invoice_id)
            if original is None:
                raise NotFoundError(f"no invoice with id {invoice_id}")
            if original.kind != "VAT" or original.number is None:
                raise InvoiceProblem(f"invoice {invoice_id} is {original.kind} {original.state}: only an issued VAT "
                                     "invoice can be corrected")
            draft = Draft(origin=origin, kind="KOR", series=self.settings.correction_series,
                          business=original.business, buyer=original.buyer, seller=seller_of(self.settings),
                          issue_date=local_day(now, self.settings), sale_date=original.sale_date,
                          currency=original.currency, basis=original.basis,  # type: ignore[arg-type]
                          lines=list(changes), payment={"form": original.payment.get("form", "transfer")},
                          order_id=original.order_id, corrects_id=original.id, reason=reason,
                          exchange=PublishedRate(original.currency, original.exchange_rate_date,
                                                 original.exchange_rate, original.exchange_rate_table or "")
                          if original.exchange_rate is not None and original.exchange_rate_date is not None else None)
            send = self.sends(original.business)
            if send:
                self._queue_send(session)
            issued = store(session, self.settings, draft, now=now, corrected=original, send=send)
        if issued.invoice.state == "problem":
            raise InvoiceProblem(f"correction of invoice {original.number}: {issued.invoice.problem}")
        return issued

    def return_changes(self, session: Session, rma: ReturnRow, original: Invoice) -> list[LineIn]:
        """The returned goods as difference lines of the original invoice: each returned unit at the price
        it was invoiced at (or the amount the channel named), with its line's rate."""
        lines = list(session.execute(select(InvoiceLine).where(InvoiceLine.invoice_id == original.id,
                                                               InvoiceLine.kind == "goods")
                                     .order_by(InvoiceLine.line_no)).scalars())
        changes: list[LineIn] = []
        for returned in rma.lines:
            match = next((line for line in lines if returned.get("sku") and line.sku == returned.get("sku")), None)
            if match is None:
                raise InvoiceProblem(f"return {rma.channel}/{rma.external_id}: SKU {returned.get('sku')!r} is on no "
                                     f"line of invoice {original.number}")
            quantity = Decimal(returned["quantity"])
            unit = match.unit_gross if original.basis == "gross" else match.unit_net
            if returned.get("amount_gross") and original.basis == "gross":
                unit = Decimal(returned["amount_gross"]) / quantity
            changes.append(LineIn(name=match.name, quantity=-quantity, unit_price=unit,
                                  rate=match.rate,  # type: ignore[arg-type]
                                  unit=match.unit, sku=match.sku, kind="goods", annex15=match.annex15))
        return changes

    def correct_return(self, engine: Engine, return_id: int) -> Issued | None:
        """The corrective invoice of an accepted return: None when its order has no invoice to correct."""
        with transaction(engine) as session:
            rma = session.get(ReturnRow, return_id)
            if rma is None:
                raise NotFoundError(f"no return with id {return_id}")
            if rma.order_id is None:
                return None
            original = session.execute(select(Invoice).where(Invoice.origin == f"order:{rma.order_id}")).scalar()
            if original is None or original.number is None:
                return None
            changes = self.return_changes(session, rma, original)
            reason = f"zwrot towaru ({rma.reason})" if rma.reason else "zwrot towaru"
            original_id = original.id
        return self.correct(engine, original_id, reason, changes, origin=f"return:{return_id}")

    def correct_cancelled(self, engine: Engine, order_id: int, origin: str, reason: str) -> Issued | None:
        """A cancelled order's invoice corrected to nothing: every unit not yet taken back by an earlier
        correction (a return) comes off. None when the order has no invoice or nothing is left on it."""
        with transaction(engine) as session:
            # the order locked first, as issuing locks it: an invoice committed meanwhile is seen here
            session.execute(select(Order.id).where(Order.id == order_id).with_for_update())
            original = session.execute(select(Invoice).where(Invoice.origin == f"order:{order_id}")).scalar()
            if original is None or original.number is None:
                return None
            remaining: dict[tuple[Any, ...], list[Any]] = {}
            corrections = select(Invoice.id).where(Invoice.corrects_id == original.id, Invoice.number.is_not(None))
            for line in session.execute(select(InvoiceLine).where(
                    (InvoiceLine.invoice_id == original.id) | InvoiceLine.invoice_id.in_(corrections))
                    .order_by(InvoiceLine.invoice_id, InvoiceLine.line_no)).scalars():
                unit = line.unit_gross if original.basis == "gross" else line.unit_net
                key = (line.name, line.sku, line.rate, unit.normalize(), line.unit)
                entry = remaining.setdefault(key, [Decimal(0), line])
                entry[0] += line.quantity
            changes = [LineIn(line.name, -quantity, key[3], line.rate, line.unit, line.sku, line.kind, line.annex15)
                       for key, (quantity, line) in remaining.items() if quantity > 0]
            original_id = original.id
        if not changes:
            return None
        return self.correct(engine, original_id, reason, changes, origin=origin)

    def handle_correct(self, ctx: JobContext) -> dict[str, Any]:
        if not self.settings.enabled:
            return {"skipped": "invoicing is not enabled ([invoicing] enabled = false)"}
        try:
            if "return_id" in ctx.payload:
                issued = self.correct_return(ctx.engine, int(ctx.payload["return_id"]))
            else:
                issued = self.correct_cancelled(ctx.engine, int(ctx.payload["order_id"]),
                                                f"cancel:{ctx.job.idempotency_key}"[:200],
                                                str(ctx.payload.get("reason") or "anulowanie"))
        except InvoiceProblem as exc:
            return {"problem": str(exc)}
        if issued is None:
            return {"skipped": "nothing invoiced to correct"}
        return {"invoice": issued.invoice.number, "created": issued.created}

    # KSeF

    def _another_running(self, engine: Engine, job_id: int, kind: str) -> bool:
        """Another job of ``kind`` holds a live lease: one KSeF sender, and one reader of verdicts (two would
        fetch each UPO twice), at a time."""
        with transaction(engine) as session:
            return bool(session.execute(select(func.count()).select_from(Job).where(
                Job.kind == kind, Job.state == "running", Job.id != job_id,
                Job.lease_expires_at > utcnow())).scalar())

    def _session(self, engine: Engine, port: EInvoicing) -> str:
        """The process's open session, reused across runs (KSeF allows 120 session openings an hour and
        10,000 invoices a session); a new one once it is an hour old or nearly full."""
        with self._session_lock:
            live = self._live
            if live is not None and time.monotonic() - live[1] < SESSION_REUSE_SECONDS and live[2] < SESSION_INVOICES:
                return live[0]
            if live is not None:
                self._close(engine, port, live[0])
            reference = port.open_session()
            with transaction(engine) as session:
                session.add(KsefSession(reference=reference, connector=port.name, state="open", opened_at=utcnow(),
                                        invoices=0))
            self._live = (reference, time.monotonic(), 0)
            return reference

    def _counted(self, reference: str, sent: int) -> None:
        with self._session_lock:
            if self._live is not None and self._live[0] == reference:
                self._live = (reference, self._live[1], self._live[2] + sent)

    def _close(self, engine: Engine, port: EInvoicing, reference: str) -> None:
        with contextlib.suppress(PermanentError):  # KSeF closes an idle session by itself
            port.close_session(reference)
        with transaction(engine) as session:
            session.execute(update(KsefSession).where(KsefSession.reference == reference)
                            .values(state="closed", closed_at=utcnow()))

    def handle_send(self, ctx: JobContext) -> dict[str, Any]:
        if self._another_running(ctx.engine, ctx.job.id, SEND):
            raise Deferred("another KSeF sender is running", retry_after=random.uniform(1.0, 3.0))
        port = self.ksef()
        with transaction(ctx.engine) as session:  # a day of issue gone by unsent: offline (KSeF would say so)
            mark_offline(session, issued_before=local_day(utcnow(), self.settings))
        try:
            return self._send_all(ctx, port)
        except SystemUnavailable as exc:
            with transaction(ctx.engine) as session:
                marked = mark_offline(session, issued_before=None)
            if marked:
                log.warning("ksef.unavailable_offline_mode", invoices=marked, error=str(exc)[:300],
                            hint="issued in KSeF's offline mode; sent once KSeF answers, by their ksef_deadline")
            # tried again for as long as KSeF is down, spending no attempt: an outage must not leave the
            # sender dead with offline invoices waiting for their deadline
            raise Deferred(f"KSeF unavailable: {exc}", retry_after=exc.retry_after or OUTAGE_RETRY) from exc

    def _send_all(self, ctx: JobContext, port: EInvoicing) -> dict[str, Any]:
        recovered = self.recover(ctx.engine, port)
        sent = 0
        session_ref: str | None = None
        while not ctx.stopping.is_set():
            if isinstance(port, EInvoicingBatch):
                backlog = self._send_batch(ctx.engine, port)
                if backlog:
                    sent += backlog
                    continue
            with transaction(ctx.engine) as session:
                batch = _with_original_numbers(session, session.execute(_ready_rows().limit(SEND_BATCH)).all())
            if not batch:
                break
            session_ref = self._session(ctx.engine, port)
            now = utcnow()
            with transaction(ctx.engine) as session:
                session.execute(_MARK_SENDING, [{"invoice_id": row.id, "session_ref": session_ref, "now": now}
                                                for row in batch])
            references: dict[int, str] = {}
            try:
                for row in batch:
                    references[row.id] = port.send(session_ref, _outgoing(row))
            except SessionUnusable as exc:  # the next run reads the session back and opens another
                with self._session_lock:
                    self._live = None
                raise RetryableError(f"KSeF session {session_ref}: {exc}") from exc
            finally:
                if references:
                    with transaction(ctx.engine) as session:
                        session.execute(_MARK_SENT, [{"invoice_id": i, "reference": r, "now": utcnow()}
                                                     for i, r in references.items()])
                        session.execute(update(KsefSession).where(KsefSession.reference == session_ref)
                                        .values(invoices=KsefSession.invoices + len(references)))
                        # the verdicts are read while the next batch goes
                        queue.enqueue_coalesced(session, STATUS, {}, group=f"ksef-status:{port.name}",
                                                priority=KSEF_PRIORITY)
                    self._counted(session_ref, len(references))
            sent += len(references)
        if recovered:
            with transaction(ctx.engine) as session:
                queue.enqueue_coalesced(session, STATUS, {}, group=f"ksef-status:{port.name}", priority=KSEF_PRIORITY)
        return {"sent": sent, "recovered": recovered, "session": session_ref}

    def _send_batch(self, engine: Engine, port: EInvoicingBatch) -> int:
        """A backlog of at least BATCH_FROM ready invoices goes as one batch session (up to BATCH_SIZE): opened,
        its invoices marked sending with it in a committed transaction, uploaded and closed. KSeF lists them
        once it has verified them (handle_status matches them by hash). 0 when there is no such backlog."""
        with transaction(engine) as session:
            # counted on ids first: the online path (fewer than BATCH_FROM) reads its own page of documents;
            # offlineMode is a batch's own, and a technical correction goes in an online session only
            for offline in (True, False):
                batchable = _ready_rows().where(Invoice.offline.is_(offline), Invoice.corrects_sha256.is_(None))
                backlog = session.execute(select(func.count()).select_from(
                    batchable.with_only_columns(Invoice.id).limit(BATCH_FROM).subquery())).scalar_one()
                if backlog >= BATCH_FROM:
                    break
            else:
                return 0
            rows = _with_original_numbers(session, session.execute(batchable.limit(BATCH_SIZE)).all())
        reference = port.open_batch([_outgoing(row) for row in rows])
        now = utcnow()
        with transaction(engine) as session:
            session.add(KsefSession(reference=reference, connector=self.settings.ksef or "", kind="batch",
                                    state="open", opened_at=now, invoices=len(rows)))
            session.flush()
            session.execute(_MARK_SENDING, [{"invoice_id": row.id, "session_ref": reference, "now": now}
                                            for row in rows])
        try:
            port.finish_batch(reference)
        except SessionUnusable as exc:  # nothing of it will be processed: its invoices go again
            with transaction(engine) as session:
                _reissue(session, [row.id for row in rows])
            raise RetryableError(f"KSeF batch session {reference}: {exc}") from exc
        with transaction(engine) as session:
            session.execute(_MARK_SENT, [{"invoice_id": row.id, "reference": None, "now": utcnow()} for row in rows])
            session.execute(update(KsefSession).where(KsefSession.reference == reference)
                            .values(state="closed", closed_at=utcnow()))
            queue.enqueue_coalesced(session, STATUS, {}, group=f"ksef-status:{self.settings.ksef}",
                                    priority=KSEF_PRIORITY)
        return len(rows)

    def recover(self, engine: Engine, port: EInvoicing) -> int:
        """Invoices a dead run left ``sending``: found in their session (by hash) they are sent, else
        they never reached KSeF and are issued again (sent by this run)."""
        with transaction(engine) as session:
            left = session.execute(select(Invoice.id, Invoice.ksef_session, Invoice.xml_sha256)
                                   .where(Invoice.state == "sending")).all()
        by_session: dict[str, list[Any]] = defaultdict(list)
        for row in left:
            by_session[row.ksef_session].append(row)
        found_total = 0
        for session_ref, rows in by_session.items():
            with transaction(engine) as session:
                record = session.get(KsefSession, session_ref)
                kind = record.kind if record is not None else "online"
            if kind == "batch" and isinstance(port, EInvoicingBatch):
                phase = port.session_phase(session_ref)
                if phase == "processing":  # closed before the run died: wait for KSeF's verdicts
                    raise Deferred(f"KSeF is still processing batch session {session_ref}", retry_after=STATUS_POLL)
                if phase in ("open", "failed"):  # never closed (its parts died with the run) or refused whole
                    with transaction(engine) as session:
                        _reissue(session, [row.id for row in rows])
                    continue
            found = {sent.sha256: sent for sent in port.find_sent(session_ref)}
            now = utcnow()
            with transaction(engine) as session:
                for row in rows:
                    hit = found.get(row.xml_sha256)
                    if hit is not None:
                        found_total += 1
                        session.execute(_MARK_SENT, {"invoice_id": row.id, "reference": hit.reference, "now": now})
                    else:
                        session.execute(update(Invoice).where(Invoice.id == row.id, Invoice.state == "sending")
                                        .values(state="issued", ksef_session=None, updated_at=now))
            with transaction(engine) as session:
                open_session = session.get(KsefSession, session_ref)
                still_open = open_session is not None and open_session.state == "open"
            live = self._live is not None and self._live[0] == session_ref
            if still_open and not live:  # a dead run's session: its key died with it, nothing more goes in
                self._close(engine, port, session_ref)
        return found_total

    def handle_status(self, ctx: JobContext) -> dict[str, Any]:
        if self._another_running(ctx.engine, ctx.job.id, STATUS):
            raise Deferred("another reader of KSeF's verdicts is running", retry_after=random.uniform(0.5, 1.5))
        port = self.ksef()
        with transaction(ctx.engine) as session:
            rows = session.execute(select(Invoice.id, Invoice.ksef_session, Invoice.ksef_reference,
                                          Invoice.xml_sha256).where(Invoice.state == "sent")).all()
        by_session: dict[str, list[Any]] = defaultdict(list)
        for row in rows:
            by_session[row.ksef_session].append(row)
        accepted = rejected = waiting = 0
        for session_ref, members in by_session.items():
            listed = port.find_sent(session_ref)
            by_reference = {sent.reference: sent for sent in listed}
            by_hash = {sent.sha256: sent for sent in listed}
            verdicts = []
            unlisted = []
            for row in members:  # a batch's invoices are known by their hash until KSeF lists them
                sent = by_reference.get(row.ksef_reference) if row.ksef_reference else by_hash.get(row.xml_sha256)
                if sent is None and row.ksef_reference is None:
                    unlisted.append(row.id)
                elif sent is None or sent.status == "processing":
                    waiting += 1
                else:
                    verdicts.append((row.id, sent))
            if unlisted and isinstance(port, EInvoicingBatch) and port.session_phase(session_ref) in ("failed", "done"):
                with transaction(ctx.engine) as session:  # KSeF processed nothing of them: they go again
                    _reissue(session, unlisted)
                    queue.enqueue_coalesced(session, SEND, {}, group=f"ksef-send:{self.settings.ksef}",
                                            priority=KSEF_PRIORITY)
            else:
                waiting += len(unlisted)
            for start in range(0, len(verdicts), SEND_BATCH):
                outcomes = self._settle(ctx.engine, port, session_ref, verdicts[start:start + SEND_BATCH])
                accepted += outcomes.count("accepted")
                rejected += outcomes.count("rejected")
        if waiting:
            raise Deferred(f"{waiting} invoice(s) still being verified by KSeF", retry_after=STATUS_POLL)
        return {"accepted": accepted, "rejected": rejected}

    def _settle(self, engine: Engine, port: EInvoicing, session_ref: str,
                verdicts: Sequence[tuple[int, SentInvoice]]) -> list[str]:
        """KSeF's verdicts on a batch of invoices, with the accepted ones' UPOs, in one transaction."""
        accepted: list[dict[str, Any]] = []
        refused: list[dict[str, Any]] = []
        now = utcnow()
        for invoice_id, sent in verdicts:
            number = sent.ksef_number
            if sent.status == "rejected" and sent.code == 440:
                found = KSEF_NUMBER.search(" ".join([sent.description, *sent.details]))
                number = found.group(0) if found else None  # a duplicate: the first send's number is ours
            if number is None:
                details = f" ({'; '.join(sent.details)})" if sent.details else ""
                refused.append({"invoice_id": invoice_id, "verdict_code": sent.code, "now": now,
                                "problem_text": f"KSeF {sent.code}: {sent.description}{details}"})
                continue
            upo = port.upo(session_ref, sent.reference) if sent.status == "accepted" else None
            accepted.append({"invoice_id": invoice_id, "ksef_no": number, "verdict_code": sent.code,
                             "acquired": sent.acquired_at or now, "upo_xml": upo.decode("utf-8") if upo else None,
                             "now": now})
        with transaction(engine) as session:
            if accepted:
                session.execute(_ACCEPTED, accepted)
            if refused:
                session.execute(_REJECTED, refused)
        return ["accepted"] * len(accepted) + ["rejected"] * len(refused)


_NO_KSEF = b"<NrKSeFN>1</NrKSeFN>"


def _with_original_numbers(session: Session, rows: Sequence[Any]) -> list[Any]:
    """A correction issued while its original waited for KSeF says the original has no KSeF number
    (NrKSeFN); by the time it is sent the original has one (_ready_to_send): its document names it now
    (NrKSeF, NrKSeFFaKorygowanej), is checked again, and its hash is the new document's."""
    out = []
    for row in rows:
        xml = row.xml.encode("utf-8")
        if row.corrects_id is None or _NO_KSEF not in xml:
            out.append(row)
            continue
        original = session.execute(select(Invoice.ksef_number).where(Invoice.id == row.corrects_id)).scalar()
        if original is None:  # the original stays outside KSeF: the correction says so rightly
            out.append(row)
            continue
        named = xml.replace(_NO_KSEF, b"<NrKSeF>1</NrKSeF><NrKSeFFaKorygowanej>" + escape(original).encode()
                            + b"</NrKSeFFaKorygowanej>", 1)
        found = problems(fa3(), named)
        if found:
            raise PermanentError(f"correction {row.number}: naming its original's KSeF number made its document "
                                 f"invalid: {'; '.join(found[:3])}")
        text, digest = named.decode("utf-8"), sha256_b64(named)
        session.execute(update(Invoice).where(Invoice.id == row.id).values(xml=text, xml_sha256=digest))
        out.append(SimpleNamespace(**{**row._asdict(), "xml": text, "xml_sha256": digest}))
    return out


def _reissue(session: Session, ids: Sequence[int]) -> None:
    """Invoices KSeF never took (a batch never closed or refused whole): issued again, to be sent again."""
    session.execute(update(Invoice).where(Invoice.id.in_(list(ids)), Invoice.state.in_(("sending", "sent")))
                    .values(state="issued", ksef_session=None, ksef_reference=None, updated_at=utcnow()))


def _ready_rows() -> Any:
    """Issued invoices ready for KSeF, oldest first, with what sending them needs."""
    return (select(Invoice.id, Invoice.number, Invoice.xml, Invoice.xml_sha256, Invoice.corrects_id,
                   Invoice.offline, Invoice.corrects_sha256)
            .where(Invoice.state == "issued", _ready_to_send()).order_by(Invoice.id))


def _outgoing(row: Any) -> OutgoingInvoice:
    return OutgoingInvoice(row.number, row.xml.encode("utf-8"), row.xml_sha256, offline=bool(row.offline),
                           corrects_sha256=row.corrects_sha256)


def mark_offline(session: Session, *, issued_before: date | None) -> int:
    """Invoices waiting for KSeF (issued, or handed to a call that failed) go into offline mode with their
    deadline (hub.invoicing.offline): those issued before ``issued_before`` (they missed their day of
    issue), or all of them when it is None (KSeF cannot be reached). How many."""
    waiting = Invoice.state.in_(("issued", "sending")) & Invoice.offline.is_(False)
    if issued_before is not None:
        waiting &= Invoice.issue_date < issued_before
    return _set_deadlines(session, waiting, offline=True, updated_at=utcnow())


def known_outages(session: Session) -> list[Outage]:
    return [Outage(row.kind, row.started_on, row.ended_on) for row in session.execute(select(KsefOutage)).scalars()]


def refresh_deadlines(session: Session) -> int:
    """The deadlines of offline invoices not yet in KSeF, again (an outage recorded or ended)."""
    return _set_deadlines(session, Invoice.offline.is_(True) & Invoice.state.in_(NOT_YET_IN_KSEF))


def _set_deadlines(session: Session, where: Any, **values: Any) -> int:
    """Each invoice ``where`` selects gets the deadline of its issue date (one update per date, a handful),
    and ``values``. How many."""
    outages = known_outages(session)
    changed = 0
    for day in session.execute(select(Invoice.issue_date).where(where).distinct()).scalars().all():
        changed += session.execute(update(Invoice).where(where, Invoice.issue_date == day).values(
            ksef_deadline=deadline(day, outages), **values)).rowcount or 0
    return changed


def _ready_to_send() -> Any:
    """A correction goes to KSeF once the invoice it corrects has its KSeF number (or never goes there)."""
    original = Invoice.__table__.alias("original")
    return (Invoice.corrects_id.is_(None)
            | select(original.c.id).where(original.c.id == Invoice.corrects_id,
                                          original.c.state.in_(("accepted", "outside_ksef"))).exists())


def _published(row: ExchangeRate) -> PublishedRate:
    return PublishedRate(row.currency, row.effective_date, row.mid, row.table_no)


def _issue_result(result: Issued | Exception) -> Any:
    """What an invoicing.issue job returns (or raises, as an exception instance) for its order's outcome."""
    if isinstance(result, OnRequestOnly):
        return {"skipped": str(result)}
    if isinstance(result, InvoiceProblem):
        return {"problem": str(result)}  # on the invoice: hub invoices retry ID once fixed
    if isinstance(result, Exception):
        return result
    return {"invoice": result.invoice.number, "created": result.created}


def _order(session: Session, order_id: int, *, lock: bool = False) -> Order:
    order = session.get(Order, order_id, with_for_update=lock)
    if order is None:
        raise NotFoundError(f"no order with id {order_id}")
    return order


def record_problem(session: Session, settings: InvoicingSettings, origin: str, order: Order, message: str,
                   now: datetime) -> None:
    """An invoice that could not even be drafted: stored with its problem and no number, so the seller
    sees it (hub invoices list --state problem) and retries it once fixed."""
    values = dict(origin=origin, kind="VAT", series=settings.invoice_series, state="problem", problem=message,
                  order_id=order.id, business=bool((order.invoice or {}).get("nip")), buyer={}, seller={},
                  sale_date=local_day(now, settings), currency=order.currency, basis="gross", net=Decimal(0),
                  vat=Decimal(0), gross=Decimal(0), rates=[], payment={}, split_payment=False, created_at=now,
                  updated_at=now)
    session.execute(insert_for(session)(Invoice).values(**values).on_conflict_do_update(
        index_elements=["origin"], set_={"problem": message, "updated_at": now},
        where=Invoice.__table__.c.state == "problem"))


# kinds whose jobs claimed together run as one lot (HandlerRegistry.register's ``many``)
MANY_HANDLERS: dict[str, Callable[[InvoicingService, list[JobContext]], list[Any]]] = {
    ISSUE_INVOICE: InvoicingService.handle_issue_many,
}

HANDLERS: dict[str, Callable[[InvoicingService, JobContext], dict[str, Any]]] = {
    ISSUE_INVOICE: InvoicingService.handle_issue,
    CORRECT_INVOICE: InvoicingService.handle_correct,
    SEND: InvoicingService.handle_send,
    STATUS: InvoicingService.handle_status,
}
