"""Returns (RMAs): accepting restocks and refunds, rejecting tells the channel."""

from __future__ import annotations

import uuid
from collections import defaultdict
from decimal import Decimal
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from hub.jobs import queue
from hub.kernel.clock import utcnow
from hub.kernel.money import GROSZ
from hub.orders.actions import run_rules
from hub.orders.kinds import CORRECT_INVOICE, REFUND, REJECT, RESTOCK
from hub.orders.models import Order, OrderLineRow, ReturnRow
from hub.orders.rules import OrderRules
from hub.orders.status import move


def accept_return(session: Session, rules: OrderRules, return_id: int) -> ReturnRow:
    """Operator accepts a return: restock in the ERP, refund through the channel, event return.accepted."""
    from hub.kernel.errors import HubError, NotFoundError

    rma = session.get(ReturnRow, return_id)
    if rma is None:
        raise NotFoundError(f"no return with id {return_id}")
    if rma.status not in ("requested", "in_transit", "received"):
        raise HubError(f"return {return_id} is {rma.status}; only requested, in-transit or received returns "
                       "can be accepted")
    now = utcnow()
    order = session.get(Order, rma.order_id) if rma.order_id else None
    if rma.refund_amount is None:
        rma.refund_amount = _refund_amount(session, rma, order)
    rma.status = "accepted"
    rma.updated_at = now
    queue.enqueue(session, RESTOCK, {"return_id": rma.id}, key=f"restock:{rma.channel}/{rma.external_id}")
    queue.enqueue(session, REFUND, {"return_id": rma.id}, key=f"refund:{rma.channel}/{rma.external_id}",
                  connector=rma.channel)
    if order is not None:
        correct_returned(session, rma.id, rma.channel, rma.external_id)
        if order.status in ("shipped", "delivered"):
            move(session, order, "returned", "operator", now, note=f"return {rma.external_id} accepted")
        run_rules(session, rules, order, "return.accepted", now)
    return rma


def correct_returned(session: Session, return_id: int, channel: str, external_id: str) -> None:
    """The order's invoice, if it has one, corrected by the returned lines (hub.invoicing), once per return:
    whether the operator accepted it or the channel refunded it on its own."""
    queue.enqueue(session, CORRECT_INVOICE, {"return_id": return_id}, key=f"invoice-return:{channel}/{external_id}")


def reject_return(session: Session, return_id: int, reason: str) -> ReturnRow:
    from hub.kernel.errors import HubError, NotFoundError

    rma = session.get(ReturnRow, return_id)
    if rma is None:
        raise NotFoundError(f"no return with id {return_id}")
    if rma.status not in ("requested", "in_transit", "received"):
        raise HubError(f"return {return_id} is {rma.status}; it cannot be rejected now")
    queue.enqueue(session, REJECT, {"return_id": rma.id, "reason": reason},
                  key=f"reject:{rma.channel}/{rma.external_id}:{uuid.uuid4().hex[:6]}", connector=rma.channel)
    return rma


def record_refund_by_hand(session: Session, return_id: int, reference: str) -> ReturnRow:
    """The seller paid the buyer back outside the channel (the channel could not): the return is
    refunded, with the seller's reference (a bank transfer's title). One conditional UPDATE, so two
    operators recording it at once record it once."""
    from hub.kernel.errors import HubError, NotFoundError

    rma = session.get(ReturnRow, return_id)
    if rma is None:
        raise NotFoundError(f"no return with id {return_id}")
    if not reference.strip():
        raise HubError(f"return {return_id}: --ref is empty; give the transfer's reference")
    done = session.execute(update(ReturnRow).where(ReturnRow.id == return_id, ReturnRow.status == "refund_by_hand")
                           .values(status="refunded", refund_ref=f"by hand: {reference.strip()}"[:200],
                                   updated_at=utcnow())).rowcount
    session.refresh(rma)
    if not done:
        raise HubError(f"return {return_id} is {rma.status}; only a return waiting for a refund by hand "
                       "(refund_by_hand) can be recorded as refunded by hand")
    return rma


def _refund_amount(session: Session, rma: ReturnRow, order: Order | None) -> Decimal:
    """Each returned line at the price it was bought for, unless the channel named an amount."""
    if order is None:
        return sum((Decimal(x["amount_gross"]) for x in rma.lines if x.get("amount_gross")), Decimal("0"))
    # a channel line can be stored as two rows (units whose prices differ by a grosz after a coupon):
    # a returned unit costs their average; charges (delivery, fees) are no goods to return
    by_line: dict[str | None, list[OrderLineRow]] = defaultdict(list)
    by_sku: dict[str, list[OrderLineRow]] = defaultdict(list)
    for line in session.execute(select(OrderLineRow).where(OrderLineRow.order_id == order.id,
                                                           OrderLineRow.kind == "goods")).scalars():
        by_line[line.line_id].append(line)
        if line.sku is not None:
            by_sku[line.sku].append(line)
    total = Decimal("0")
    for x in rma.lines:
        if x.get("amount_gross"):
            total += Decimal(x["amount_gross"])
            continue
        rows = (by_line.get(x.get("line_id")) if x.get("line_id") else None) or by_sku.get(x.get("sku") or "")
        if rows:
            units = sum(row.quantity for row in rows)
            total += sum((row.unit_price_gross * row.quantity for row in rows), Decimal("0")) * x["quantity"] / units
    return total.quantize(GROSZ)


def _parse(value: str) -> Any:
    from datetime import datetime

    return datetime.fromisoformat(value)
