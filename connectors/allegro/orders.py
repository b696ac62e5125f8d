"""The OrderChannel and ReturnsChannel ports for one Allegro account (mixed into AllegroChannel).

Orders come from the event journal (GET /order/events): the connector returns every event,
duplicates and out-of-order entries included, and the hub dedupes them by checkout-form id and
reads each order. Reading 10,000 orders one GET at a time would take over a minute at the
vendor's 9,000 requests a minute, so a journal read that names many orders also lists the
changed checkout forms (100 a request, GET /order/checkout-forms?updatedAt.gte&sort=updatedAt)
and ``order()`` answers from that prefetch when the listed form is at least as new as the
order's latest event; anything else is read with GET /order/checkout-forms/{id}.

Customer returns have no journal (#12460): new ones are read after the last seen id (``from``),
and a window of recent ones is re-read for their status changes. Their items name only the
offer, so the line id and the offer's signature come from the order's line items.

Refunds go out exactly once per job key: the commandId derives from the key, the body carries it
in ``sellerComment`` (RefundDetails has no commandId), and the POST is sent one attempt at a time,
each preceded by a look-up of the order's refunds, so a lost answer is found, never resent blind.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from connectors.allegro.client import AllegroClient, TransientError, errors_of
from connectors.allegro.mapping import api_error_text
from connectors.allegro.options import AllegroOptions
from connectors.allegro.order_mapping import (
    EVENT_TYPES,
    FULFILLMENT_RANK,
    MAX_EVENTS_PAGE,
    MAX_FORMS_PAGE,
    MAX_REFUNDS_PAGE,
    MAX_RETURNS_PAGE,
    SETTABLE_FULFILLMENT,
    FormLine,
    channel_order,
    channel_return,
    form_lines,
    format_time,
    fulfillment_status,
    is_our_refund,
    order_event,
    parse_time,
    refund_body,
    refund_command_id,
    refund_line_items,
    rejection_body,
)
from hub.kernel.clock import utcnow
from hub.kernel.errors import OrderChangedOnChannel, PermanentError, RefundNotPossible, RetryableError
from hub.kernel.ports.channel import ChannelOrder, ChannelReturn, OrderEvent, RefundRequest, RefundResult

STATUS_ATTEMPTS = 3  # PUTs per set_order_status: the first, then up to two after a stale-revision refetch
PREFETCH_TTL = 300.0  # seconds a prefetched checkout form may answer order()
LINES_CACHE = 5000  # orders whose line items are remembered for mapping returns


class AllegroOrders:
    """Orders, fulfillment status, customer returns and refunds; expects the attributes AllegroChannel sets."""

    name: str
    options: AllegroOptions
    client: AllegroClient
    log: Any
    _sleep: Callable[[float], None]
    _clock: Callable[[], float]

    def _init_orders(self) -> None:
        self._prefetched: dict[str, tuple[dict[str, Any], float]] = {}
        self._prefetch_lock = threading.Lock()
        self._lines: OrderedDict[str, list[FormLine] | None] = OrderedDict()
        self._lines_lock = threading.Lock()

    # --- the journal -------------------------------------------------------------------------------

    def order_events(self, cursor: str | None) -> tuple[Sequence[OrderEvent], str | None]:
        """Events after ``cursor``, oldest first, as the journal has them (duplicates included: the hub
        dedupes). ``None`` starts at the journal's latest event; ``""`` (an empty journal at the start)
        reads from the journal's beginning."""
        if cursor is None:
            latest = (self.client.order_event_stats().get("latestEvent") or {}).get("id")
            return [], str(latest) if latest else ""
        raws: list[Mapping[str, Any]] = []
        last = cursor
        while len(raws) < self.options.order_events_max:
            page = self.client.order_events(after=last or None, limit=MAX_EVENTS_PAGE, types=EVENT_TYPES)
            batch = [e for e in page.get("events") or [] if isinstance(e, Mapping)]
            raws += batch
            if batch:
                last = str(batch[-1]["id"])
            if len(batch) < MAX_EVENTS_PAGE:
                break
        events = [e for e in (order_event(r) for r in raws) if e is not None]
        self._prefetch(events)
        if events:
            self.log.info("allegro.order_events", events=len(events), orders=len({e.external_id for e in events}),
                          cursor=last)
        return events, last

    def _prefetch(self, events: Sequence[OrderEvent]) -> None:
        """List the checkout forms changed since the batch's first event, keeping those the batch names
        that are at least as new as their latest event (the rest are read one by one)."""
        latest: dict[str, datetime] = {}
        for event in events:
            known = latest.get(event.external_id)
            latest[event.external_id] = event.occurred_at if known is None else max(known, event.occurred_at)
        with self._prefetch_lock:
            self._prefetched.clear()
        wanted = self.options.order_prefetch_min
        if not wanted or len(latest) < wanted:
            return
        found: dict[str, dict[str, Any]] = {}
        budget = 2 * len(latest) + 2 * MAX_FORMS_PAGE  # the listing also holds orders changed after the read
        for form in self._forms_since(min(latest.values())):
            form_id = str(form.get("id"))
            if form_id in latest:
                found[form_id] = form  # a form listed twice (it changed meanwhile): the later one wins
            budget -= 1
            if len(found) == len(latest) or budget <= 0:
                break
        now = self._clock()
        fresh = {}
        for form_id, form in found.items():
            updated = parse_time(form.get("updatedAt"))
            if updated is not None and updated >= latest[form_id]:
                fresh[form_id] = (form, now)
        with self._prefetch_lock:
            self._prefetched = fresh
        self.log.debug("allegro.orders_prefetched", orders=len(latest), listed=len(found), fresh=len(fresh))

    def order(self, external_id: str) -> ChannelOrder:
        with self._prefetch_lock:
            hit = self._prefetched.pop(external_id, None)
        if hit is not None and self._clock() - hit[1] <= PREFETCH_TTL:
            form: dict[str, Any] | None = hit[0]
        else:
            form = self.client.checkout_form(external_id)
        if form is None:
            raise PermanentError(f"Allegro has no order {external_id} for {self.name} (GET /order/checkout-forms/"
                                 f"{external_id} answered 404)")
        return self._channel_order(form)

    def _channel_order(self, form: Mapping[str, Any]) -> ChannelOrder:
        try:
            return channel_order(self.name, form)
        except (KeyError, TypeError, ValueError) as exc:
            raise PermanentError(f"Allegro order {form.get('id')} cannot be read: {exc}") from exc

    def orders_updated_since(self, since: datetime) -> Iterator[ChannelOrder]:
        """Every checkout form changed at or after ``since`` (a form changed during the read may come twice,
        the newer revision last)."""
        seen: set[tuple[str, str]] = set()
        for form in self._forms_since(since):
            key = (str(form.get("id")), str(form.get("revision")))
            if key not in seen:
                seen.add(key)
                yield self._channel_order(form)

    def _forms_since(self, since: datetime) -> Iterator[dict[str, Any]]:
        """Checkout forms by ascending updatedAt, paged by key (updatedAt.gte = the last one seen, skipping
        the forms already read at exactly that time) rather than by a growing offset: a form that changes
        during the read moves to the end instead of shifting an unread one into a page already read."""
        gte = format_time(since)
        gte_at = parse_time(gte)
        skip = 0
        while True:
            page = self.client.checkout_forms_page(updated_gte=gte, offset=skip, limit=MAX_FORMS_PAGE)
            forms = [f for f in page.get("checkoutForms") or [] if isinstance(f, Mapping)]
            yield from forms
            if len(forms) < MAX_FORMS_PAGE:
                return
            last = forms[-1].get("updatedAt")
            last_at = parse_time(last)
            if last_at is None or gte_at is None or last_at <= gte_at:
                skip += len(forms)
            else:
                gte, gte_at = str(last), last_at
                skip = sum(1 for f in forms if parse_time(f.get("updatedAt")) == last_at)

    # --- fulfillment status --------------------------------------------------------------------------

    def set_order_status(self, external_id: str, status: str, *, revision: str | None) -> str | None:
        """PUT the fulfillment status with the revision the hub holds. A 409 (stale revision) means the
        form changed since the hub read it: a cancelled form, or one whose fulfillment is further along
        than ``status`` (Allegro sets SENT itself when a tracking number is added), is left alone
        (``OrderChangedOnChannel``, the hub reads it again); one that shows the status already is done
        (an earlier attempt's PUT that landed); otherwise the PUT is tried again at the form's revision (twice at most).

        Returns the form's revision after the change only when nothing but our PUT changed it; after a
        409 it returns ``None``, so the hub keeps its older revision and its intake applies the form."""
        if status not in SETTABLE_FULFILLMENT:
            raise PermanentError(f"{status!r} is not a fulfillment status the seller can set on Allegro "
                                 f"({', '.join(sorted(SETTABLE_FULFILLMENT))})")
        current = revision or None
        for attempt in range(1, STATUS_ATTEMPTS + 1):
            response = self.client.set_fulfillment(external_id, status, current)
            code = response.status_code
            if code in (200, 204):
                if attempt > 1:
                    return None
                form = self._form(external_id)
                if form.get("status") == "CANCELLED" or fulfillment_status(form) != status:
                    return None  # changed again right after our PUT: the intake applies it
                return str(form.get("revision") or "") or None
            if code == 409:
                form = self._form(external_id)
                self.log.info("allegro.fulfillment_stale_revision", order=external_id, sent=current,
                              current=form.get("revision"), attempt=attempt)
                if form.get("status") == "CANCELLED":
                    raise OrderChangedOnChannel(f"Allegro order {external_id} was cancelled; "
                                                f"{status} not sent")
                shown = fulfillment_status(form)
                if shown == status:
                    return None
                if FULFILLMENT_RANK.get(shown or "", -1) > FULFILLMENT_RANK.get(status, 99):
                    raise OrderChangedOnChannel(f"Allegro order {external_id} is {shown} already; "
                                                f"{status} not sent")
                current = str(form.get("revision") or "") or None
                continue
            if code == 404:
                raise PermanentError(f"Allegro has no order {external_id} for {self.name}")
            raise PermanentError(f"Allegro refused fulfillment status {status} for order {external_id} ({code}): "
                                 f"{api_error_text(errors_holder(response)) or response.text[:300]}")
        raise RetryableError(f"order {external_id}: the revision kept changing over {STATUS_ATTEMPTS} attempts "
                             f"to set {status}; the retry reads it again")

    def _form(self, external_id: str) -> dict[str, Any]:
        form = self.client.checkout_form(external_id)
        if form is None:
            raise PermanentError(f"Allegro has no order {external_id} for {self.name}")
        return form

    # --- customer returns ----------------------------------------------------------------------------

    def returns(self, cursor: str | None) -> tuple[Sequence[ChannelReturn], str | None]:
        """Returns created after ``cursor`` (the last return id seen), plus every return of the last
        ``returns_window`` for its status changes (the hub keeps the lines it stored first). ``None``:
        the window is the start. The new cursor is the id of the latest return created."""
        found: dict[str, dict[str, Any]] = {}
        new: set[str] = set()
        new_cursor = cursor
        if cursor:
            after = cursor
            while True:
                page = self.client.customer_returns_page([("from", after), ("limit", str(MAX_RETURNS_PAGE))])
                items = [r for r in page.get("customerReturns") or [] if isinstance(r, Mapping) and r.get("id")]
                for item in items:
                    found[str(item["id"])] = item
                    new.add(str(item["id"]))
                if items:
                    after = new_cursor = str(items[-1]["id"])
                if len(items) < MAX_RETURNS_PAGE:
                    break
        since = format_time(utcnow() - timedelta(seconds=self.options.returns_window))
        offset = 0
        while True:
            page = self.client.customer_returns_page([("createdAt.gte", since), ("limit", str(MAX_RETURNS_PAGE)),
                                                      ("offset", str(offset))])
            items = [r for r in page.get("customerReturns") or [] if isinstance(r, Mapping) and r.get("id")]
            for item in items:
                found[str(item["id"])] = item  # read after the ``from`` pages: the fresher copy
            offset += len(items)
            if len(items) < MAX_RETURNS_PAGE:
                break
        # lines matter only the first time the hub sees a return: those are the new ones, and on the
        # first poll (or a window that holds returns newer than the cursor's) all of them
        cutoff = parse_time(found[cursor].get("createdAt")) if cursor and cursor in found else None
        out: list[ChannelReturn] = []
        for return_id, raw in found.items():
            created = parse_time(raw.get("createdAt"))
            first_time = not cursor or return_id in new or cutoff is None or created is None or created > cutoff
            lines = self._order_lines(str(raw.get("orderId") or "")) if first_time else None
            try:
                out.append(channel_return(self.name, raw, lines))
            except (KeyError, TypeError, ValueError) as exc:
                self.log.warning("allegro.return_unreadable", return_id=return_id, error=str(exc))
        if not cursor and out:
            new_cursor = max(out, key=lambda r: r.created_at).external_id
        out.sort(key=lambda r: r.created_at)
        self.log.info("allegro.returns", returns=len(out), new=len(new), cursor=new_cursor)
        return out, new_cursor

    def _order_lines(self, order_id: str) -> list[FormLine] | None:
        """The order's line items (remembered: they never change); None when the order cannot be read."""
        if not order_id:
            return None
        with self._lines_lock:
            if order_id in self._lines:
                self._lines.move_to_end(order_id)
                return self._lines[order_id]
        try:
            form = self.client.checkout_form(order_id)
        except PermanentError as exc:  # e.g. a malformed id: the return still goes to the hub, unresolved
            self.log.warning("allegro.return_order_unreadable", order=order_id, error=str(exc))
            form = None
        lines = form_lines(form) if form is not None else None
        with self._lines_lock:
            self._lines[order_id] = lines
            while len(self._lines) > LINES_CACHE:
                self._lines.popitem(last=False)
        return lines

    def reject_return(self, external_id: str, reason: str) -> None:
        """Reject the refund (REFUND_REJECTED with the operator's reason). A 422 on a return that already
        shows a rejection is an earlier attempt's success (its answer was lost)."""
        try:
            body = rejection_body(reason)
        except ValueError as exc:
            raise PermanentError(str(exc)) from exc
        response = self.client.reject_customer_return(external_id, body)
        if response.status_code == 200:
            return
        if response.status_code == 422:
            current = self.client.customer_return(external_id)
            if current is not None and (current.get("status") == "REJECTED" or current.get("rejection")):
                self.log.info("allegro.return_already_rejected", return_id=external_id)
                return
        raise PermanentError(f"Allegro refused to reject return {external_id} ({response.status_code}): "
                             f"{api_error_text(errors_holder(response)) or response.text[:300]}")

    # --- refunds --------------------------------------------------------------------------------------

    def refund(self, request: RefundRequest, *, idempotency_key: str) -> RefundResult:
        """Money back for returned lines, exactly once per ``idempotency_key``."""
        command_id = refund_command_id(idempotency_key)
        form = self._form(request.order_external_id)
        payment = form.get("payment") or {}
        payment_id = request.payment_id or payment.get("id")
        if payment.get("type") == "CASH_ON_DELIVERY":  # the courier took the money, not Allegro
            raise RefundNotPossible(f"Allegro order {request.order_external_id} was paid cash on delivery: "
                                    "Allegro cannot refund it; return the money to the buyer by hand")
        if not payment_id:
            raise PermanentError(f"order {request.order_external_id} has no payment to refund")
        try:
            body = refund_body(request, command_id=command_id, payment_id=str(payment_id),
                               line_items=refund_line_items(request, form_lines(form)))
        except ValueError as exc:
            raise PermanentError(f"refund for order {request.order_external_id}: {exc}") from exc
        attempts = max(1, self.options.http_attempts)
        last_error: Exception | None = None
        for attempt in range(attempts):
            found = self._find_refund(request.order_external_id, command_id)
            if found is not None:
                self.log.info("allegro.refund_found", order=request.order_external_id, refund=found.get("id"),
                              command_id=command_id)
                return RefundResult(external_id=str(found["id"]), status=str(found.get("status") or ""))
            if attempt:
                self._sleep(self.options.retry_backoff * 2 ** (attempt - 1))
            try:
                response = self.client.create_refund(body)
            except TransientError as exc:  # lost or refused in transit: look it up before sending again
                last_error = exc
                self.log.warning("allegro.refund_uncertain", order=request.order_external_id, command_id=command_id,
                                 error=str(exc))
                continue
            if response.status_code == 200:
                details = response.json()
                self.log.info("allegro.refunded", order=request.order_external_id, refund=details.get("id"),
                              command_id=command_id, status=details.get("status"))
                return RefundResult(external_id=str(details["id"]), status=str(details.get("status") or ""))
            if attempt and (found := self._find_refund(request.order_external_id, command_id)) is not None:
                return RefundResult(external_id=str(found["id"]), status=str(found.get("status") or ""))
            if response.status_code == 422 and "PAYMENT_NOT_REFUNDABLE" in response.text:
                raise RefundNotPossible(f"Allegro cannot refund order {request.order_external_id}'s payment "
                                        f"({api_error_text(errors_holder(response))}); return the money by hand")
            raise PermanentError(f"Allegro refused the refund for order {request.order_external_id} "
                                 f"({response.status_code}): "
                                 f"{api_error_text(errors_holder(response)) or response.text[:300]}")
        raise RetryableError(f"refund for order {request.order_external_id} (command {command_id}) unconfirmed after "
                             f"{attempts} attempts ({last_error}); the retry looks it up before sending again")

    def _find_refund(self, order_id: str, command_id: str) -> dict[str, Any] | None:
        offset = 0
        while True:
            page = self.client.refunds_page(order_id=order_id, offset=offset, limit=MAX_REFUNDS_PAGE)
            refunds = [r for r in page.get("refunds") or [] if isinstance(r, Mapping)]
            for refund in refunds:
                if is_our_refund(refund, command_id) and refund.get("id"):
                    return dict(refund)
            offset += len(refunds)
            if len(refunds) < MAX_REFUNDS_PAGE:
                return None


def errors_holder(response: Any) -> dict[str, Any] | None:
    errors = errors_of(response)
    return {"errors": errors} if errors is not None else None
