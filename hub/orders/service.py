"""The orders' job handlers: journal intake, reconciliation, ERP documents, status pushes, returns and
refunds.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from hub.jobs import queue
from hub.jobs.handlers import JobContext
from hub.kernel.clock import utcnow
from hub.kernel.errors import OrderChangedOnChannel, PermanentError, RefundNotPossible
from hub.kernel.ports.channel import ChannelOrder, RefundRequest, ReturnLine
from hub.kernel.ports.erp import RestockDocument
from hub.orders.documents import stored_order
from hub.orders.intake import accept_many
from hub.orders.kinds import (
    ERP_CANCEL,
    ORDERS_POLL,
    ORDERS_RECONCILE,
    PUSH_STATUS,
    REFUND,
    REJECT,
    RESTOCK,
    RETURNS_POLL,
    TO_ERP,
)
from hub.orders.models import ChannelCursor, Order, OrderHistory, ReturnRow
from hub.orders.returns import _parse, correct_returned
from hub.orders.rules import OrderRules
from hub.orders.sales_documents import sales_document
from hub.orders.status import enqueue_erp_cancel
from hub.platform.db import insert_for, upsert

FETCH_CHUNK = 100


def load_channel_cursor(session: Session, channel: str, stream: str) -> str | None:
    row = session.get(ChannelCursor, (channel, stream))
    return row.cursor if row else None


def save_channel_cursor(session: Session, channel: str, stream: str, cursor: str | None) -> None:
    now = utcnow()
    upsert(session, ChannelCursor, {"channel": channel, "stream": stream, "cursor": cursor, "updated_at": now},
           ["channel", "stream"])


class OrderService:
    """The orders' job handlers, on the process's connectors and the seller's order rules."""


    def __init__(self, connectors: Any, rules: OrderRules, erp_stock_grace: timedelta):
        self.connectors = connectors
        self.rules = rules
        self.erp_stock_grace = erp_stock_grace

    def _erp_sink(self) -> Any:
        from hub.kernel.ports.capability import Capability

        for name in self.connectors.names(role="erp"):
            instance = self.connectors.get(name)
            # an instance knows whether it is configured for documents (an outbox, staging tables)
            capabilities = getattr(instance, "capabilities", self.connectors.spec(name).capabilities)
            if Capability.ERP_SALES_DOCUMENTS in capabilities:
                return instance
        raise PermanentError("no configured ERP connector accepts sales documents (configure its outbox or "
                             "staging tables)")

    # intake

    def handle_poll(self, ctx: JobContext) -> dict[str, Any]:
        channel = ctx.payload["channel"]
        port = self.connectors.get(channel)
        with ctx.session() as session:
            cursor = load_channel_cursor(session, channel, "orders")
        events, new_cursor = port.order_events(cursor)
        if cursor is None:  # the first run starts at the journal's end; reconciliation covers the past
            with ctx.session() as session:
                save_channel_cursor(session, channel, "orders", new_cursor)
            return {"started_at": new_cursor}
        created = changed = fetched = 0
        # chunks, each stored with the cursor of its last event: a crash repeats one chunk at most
        for start in range(0, max(len(events), 1), FETCH_CHUNK):
            chunk = events[start:start + FETCH_CHUNK]
            latest: dict[str, Any] = {}
            for event in chunk:
                latest[event.external_id] = event  # duplicates and out-of-order entries collapse here
            # connectors answer these from the pages their journal read fetched (one request per
            # 100 orders, not one each: a rate limit of 150 requests/s makes single reads slow)
            orders = [port.order(external_id) for external_id in latest]
            fetched += len(orders)
            last = start + FETCH_CHUNK >= len(events)
            with ctx.session() as session:
                for result in accept_many(session, self.rules, orders):
                    created += result.created
                    changed += result.changed
                save_channel_cursor(session, channel, "orders", new_cursor if last else chunk[-1].cursor)
        return {"events": len(events), "orders": fetched, "created": created, "changed": changed}

    def handle_reconcile(self, ctx: JobContext) -> dict[str, Any]:
        channel = ctx.payload["channel"]
        port = self.connectors.get(channel)
        with ctx.session() as session:
            last = load_channel_cursor(session, channel, "orders-reconciled")
        started = utcnow()
        since = (started - timedelta(hours=float(ctx.payload.get("hours", 24)))) if last is None \
            else min(started - timedelta(minutes=10), _parse(last))
        # the first run looks back a day only for orders the hub has: one older than the hub's orders
        # journal is the seller's past, not a new order to reserve stock for
        known_only = last is None
        seen = changed = 0
        batch: list[ChannelOrder] = []
        for co in port.orders_updated_since(since):
            batch.append(co)
            if len(batch) >= FETCH_CHUNK:
                changed += self._accept_all(ctx, batch, known_only=known_only)
                seen += len(batch)
                batch = []
        changed += self._accept_all(ctx, batch, known_only=known_only)
        seen += len(batch)
        with ctx.session() as session:
            save_channel_cursor(session, channel, "orders-reconciled", started.isoformat())
        return {"seen": seen, "changed": changed}

    def _accept_all(self, ctx: JobContext, orders: list[ChannelOrder], *, known_only: bool = False) -> int:
        if not orders:
            return 0
        with ctx.session() as session:
            if known_only:
                channels = {co.channel_account for co in orders}
                known = set(session.execute(select(Order.channel, Order.external_id).where(
                    Order.channel.in_(channels), Order.external_id.in_([co.external_id for co in orders]))).all())
                orders = [co for co in orders if (co.channel_account, co.external_id) in known]
            return sum(result.changed for result in accept_many(session, self.rules, orders)) if orders else 0

    # ERP and status

    def handle_to_erp(self, ctx: JobContext) -> dict[str, Any]:
        with ctx.session() as session:
            order = session.get(Order, ctx.payload["order_id"])
            if order is None:
                raise PermanentError(f"order {ctx.payload['order_id']} no longer exists")
            if order.erp_ref:
                return {"erp_ref": order.erp_ref, "already": True}
            if order.status == "cancelled":  # cancelled before it was booked: nothing to book or reverse
                return {"booked": False, "reason": "the order was cancelled before it was booked"}
            # the order's acceptance time, not now: a retried document is identical to the first
            document = sales_document(f"{order.channel}/{order.external_id}", stored_order(session, order),
                                      issued_at=order.created_at)
        erp_ref = self._erp_sink().post_sales_document(document)
        with ctx.session() as session:
            # locked: a cancellation committing meanwhile is seen here, or sees this booking (status.move)
            order = session.get(Order, ctx.payload["order_id"], with_for_update=True, populate_existing=True)
            assert order is not None
            order.erp_ref = erp_ref
            order.erp_booked_at = utcnow()
            session.add(OrderHistory(order_id=order.id, from_status=order.status, to_status=order.status,
                                     source="hub", note=f"sales document {erp_ref} in the ERP", at=utcnow()))
            if order.status == "cancelled":  # cancelled while the document was being booked: reverse it
                enqueue_erp_cancel(session, order)
        return {"erp_ref": erp_ref}

    def handle_erp_cancel(self, ctx: JobContext) -> dict[str, Any]:
        with ctx.session() as session:
            order = session.get(Order, ctx.payload["order_id"])
            if order is None:
                raise PermanentError(f"order {ctx.payload['order_id']} no longer exists")
            reference = f"{order.channel}/{order.external_id}"
            reason = f"order cancelled on {order.channel} ({order.channel_status or 'cancelled'})"
        sink = self._erp_sink()
        cancel = getattr(sink, "cancel_sales_document", None)
        if cancel is None:
            raise PermanentError(f"the ERP connector cannot take cancellations: reverse the sale of {reference} "
                                 "in the ERP by hand")
        erp_ref = cancel(reference, reason)
        with ctx.session() as session:
            order = session.get(Order, ctx.payload["order_id"])
            assert order is not None
            session.add(OrderHistory(order_id=order.id, from_status=order.status, to_status=order.status,
                                     source="hub", note=f"cancellation {erp_ref} sent to the ERP", at=utcnow()))
        return {"erp_ref": erp_ref}

    def handle_push_status(self, ctx: JobContext) -> dict[str, Any]:
        """Tell the channel the status the hub set, unless the order has moved on since (a later push
        carries the newer status; a cancelled order is never reopened by an older push)."""
        status = ctx.payload["status"]
        with ctx.session() as session:
            order = session.get(Order, ctx.payload["order_id"])
            if order is None:
                raise PermanentError(f"order {ctx.payload['order_id']} no longer exists")
            channel, external_id, revision = order.channel, order.external_id, order.revision
            shown, now_status = order.channel_status, order.status
            outbound = self.rules.status_map(channel).outbound
            # the latest status the order reached that this channel has a value for: a push for an older
            # one is stale (a later push carries the newer one, or the channel told us); one for a status
            # the order has only passed on to unmapped ones still goes
            latest = now_status if now_status in outbound else next(
                (to for to in session.execute(select(OrderHistory.to_status).where(
                    OrderHistory.order_id == order.id).order_by(OrderHistory.id.desc())).scalars() if to in outbound),
                None)
        if now_status != status and (latest != status or now_status == "cancelled"):
            return {"sent": False, "reason": f"the order is {now_status} now, not {status}"}
        if self.rules.status_map(channel).inbound.get(shown or "") == "cancelled":
            # the channel cancelled it (a shipped order's parcels are being withdrawn): no status of ours
            # goes to it, nor over the cancellation the withdrawal reads
            return {"sent": False, "reason": f"{channel} cancelled the order ({shown})"}
        value = outbound.get(status)
        if value is None:
            return {"sent": False, "reason": f"no outbound mapping for {status} on {channel}"}
        if shown == value:  # the channel shows it already (it told us, or we set it): nothing to send
            return {"sent": False, "reason": f"{channel} shows {value} already"}
        port = self.connectors.get(channel)
        try:
            new_revision = port.set_order_status(external_id, value, revision=revision)
        except OrderChangedOnChannel as changed:
            fresh = port.order(external_id)
            with ctx.session() as session:
                accept_many(session, self.rules, [fresh])
            return {"sent": False, "reason": str(changed)}
        with ctx.session() as session:
            # locked: an intake committing the channel's own change meanwhile is seen here (or waits and
            # writes over ours, being newer)
            order = session.get(Order, ctx.payload["order_id"], with_for_update=True)
            assert order is not None
            if order.revision != revision:
                # the channel changed the order since we read it (a cancellation, say): what it reported
                # is newer than our push, so neither our revision nor our status goes over it
                return {"sent": value, "revision": None, "channel_changed_meanwhile": order.channel_status}
            if new_revision:
                # only a revision that holds nothing but our change: one that also holds a change the
                # channel made meanwhile would make the intake skip that change as seen
                order.revision = new_revision
            if order.status == status or order.status not in outbound:
                order.channel_status = value
        return {"sent": value, "revision": new_revision}

    # returns

    def handle_returns_poll(self, ctx: JobContext) -> dict[str, Any]:
        channel = ctx.payload["channel"]
        port = self.connectors.get(channel)
        with ctx.session() as session:
            cursor = load_channel_cursor(session, channel, "returns")
        returns, new_cursor = port.returns(cursor)
        status_map = self.rules.status_map(channel).returns
        now = utcnow()
        with ctx.session() as session:
            for r in returns:
                state = "refunded" if r.refunded else status_map.get(r.status, "requested")
                order = session.execute(select(Order).where(
                    Order.channel == channel, Order.external_id == r.order_external_id)).scalar_one_or_none()
                lines = [{"sku": line.sku, "offer_id": line.offer_id, "quantity": line.quantity,
                          "line_id": line.line_id,
                          "amount_gross": None if line.amount_gross is None else str(line.amount_gross)}
                         for line in r.lines]
                existing = session.execute(select(ReturnRow).where(
                    ReturnRow.channel == channel, ReturnRow.external_id == r.external_id)).scalar_one_or_none()
                if existing is None:
                    stmt = insert_for(session)(ReturnRow).values(
                        channel=channel, external_id=r.external_id, order_id=order.id if order else None,
                        order_external_id=r.order_external_id, status=state, channel_status=r.status,
                        reason=r.reason, lines=lines, created_at=now, updated_at=now).returning(ReturnRow.id)
                    new_id = session.execute(stmt.on_conflict_do_nothing(
                        index_elements=["channel", "external_id"])).scalar()
                    if new_id is not None and r.refunded and status_map.get(r.status) == "received":
                        # the channel refunded on its own and the goods came back: they go back to stock
                        queue.enqueue(session, RESTOCK, {"return_id": new_id},
                                      key=f"restock:{channel}/{r.external_id}")
                    if new_id is not None and r.refunded and order is not None:
                        correct_returned(session, new_id, channel, r.external_id)
                elif existing.status in ("requested", "in_transit", "received") and state != existing.status:
                    existing.status, existing.channel_status, existing.updated_at = state, r.status, now
                    if state == "refunded" and existing.order_id is not None:
                        correct_returned(session, existing.id, channel, r.external_id)
            save_channel_cursor(session, channel, "returns", new_cursor)
        return {"returns": len(returns)}

    def _return(self, session: Session, return_id: int) -> ReturnRow:
        row = session.get(ReturnRow, return_id)
        if row is None:
            raise PermanentError(f"return {return_id} no longer exists")
        return row

    def handle_refund(self, ctx: JobContext) -> dict[str, Any]:
        with ctx.session() as session:
            rma = self._return(session, ctx.payload["return_id"])
            order = session.get(Order, rma.order_id) if rma.order_id else None
            lines = [ReturnLine(sku=x["sku"], offer_id=x["offer_id"], quantity=x["quantity"], line_id=x["line_id"],
                                amount_gross=Decimal(x["amount_gross"]) if x.get("amount_gross") else None)
                     for x in rma.lines]
            amount = rma.refund_amount or Decimal("0")
            request = RefundRequest(order_external_id=rma.order_external_id,
                                    payment_id=(order.payment or {}).get("payment_id") if order else None,
                                    lines=lines, amount=amount, currency=order.currency if order else "PLN",
                                    reason="REFUND")
            channel = rma.channel
        try:
            result = self.connectors.get(channel).refund(request, idempotency_key=ctx.job.idempotency_key)
        except RefundNotPossible as exc:
            # not a failure to retry: the seller pays the buyer back outside the channel, then records it
            # (hub returns refunded ID --ref ...); the return waits in refund_by_hand until then
            with ctx.session() as session:  # from accepted only: a replay never undoes a recorded refund
                session.execute(update(ReturnRow).where(ReturnRow.id == ctx.payload["return_id"],
                                                        ReturnRow.status == "accepted")
                                .values(status="refund_by_hand", updated_at=utcnow()))
            ctx.log.warning("refund by hand", return_id=ctx.payload["return_id"], reason=str(exc))
            return {"refund": None, "status": "refund_by_hand", "reason": str(exc)}
        with ctx.session() as session:
            rma = self._return(session, ctx.payload["return_id"])
            rma.refund_ref = result.external_id
            rma.status = "refunded"
            rma.updated_at = utcnow()
        return {"refund": result.external_id, "status": result.status}

    def handle_restock(self, ctx: JobContext) -> dict[str, Any]:
        with ctx.session() as session:
            rma = self._return(session, ctx.payload["return_id"])
            lines = [ReturnLine(sku=x["sku"], offer_id=x["offer_id"], quantity=x["quantity"], line_id=x["line_id"])
                     for x in rma.lines]
            document = RestockDocument(reference=f"return/{rma.channel}/{rma.external_id}",
                                       order_reference=f"{rma.channel}/{rma.order_external_id}", lines=lines)
        ref = self._erp_sink().restock(document)
        with ctx.session() as session:
            rma = self._return(session, ctx.payload["return_id"])
            rma.restock_ref = ref
            rma.updated_at = utcnow()
        return {"restock": ref}

    def handle_reject(self, ctx: JobContext) -> dict[str, Any]:
        with ctx.session() as session:
            rma = self._return(session, ctx.payload["return_id"])
            channel, external_id = rma.channel, rma.external_id
        self.connectors.get(channel).reject_return(external_id, ctx.payload["reason"])
        with ctx.session() as session:
            rma = self._return(session, ctx.payload["return_id"])
            rma.status = "rejected"
            rma.rejection_reason = ctx.payload["reason"]
            rma.updated_at = utcnow()
        return {"rejected": external_id}


# job kind -> the handler that runs it (hub.app.wiring registers them)
HANDLERS: dict[str, Callable[[OrderService, JobContext], dict[str, Any]]] = {
    ORDERS_POLL: OrderService.handle_poll,
    ORDERS_RECONCILE: OrderService.handle_reconcile,
    TO_ERP: OrderService.handle_to_erp,
    ERP_CANCEL: OrderService.handle_erp_cancel,
    PUSH_STATUS: OrderService.handle_push_status,
    RETURNS_POLL: OrderService.handle_returns_poll,
    REFUND: OrderService.handle_refund,
    RESTOCK: OrderService.handle_restock,
    REJECT: OrderService.handle_reject,
}
