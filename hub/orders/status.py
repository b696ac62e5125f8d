"""The order state machine, and the per-channel status maps of mappings/order_status.toml.

    new -> paid -> processing -> ready_to_ship -> shipped -> delivered
    any state before shipped -> cancelled;  shipped / delivered -> returned
    shipped -> cancelled only by recall(): the channel cancelled it and no parcel of it left
    cancelled -> new only by reopen(): the channel took the order up again (a payment arriving after
    the cancellation: a shop completes the payment of a cancelled order)

Only these transitions happen; a channel reporting a status behind the hub's (an old
event, a journal out of order) never moves an order backwards.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field, field_validator
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from hub.jobs import queue
from hub.orders.kinds import CORRECT_INVOICE, ERP_CANCEL, PUSH_STATUS, WITHDRAW_SHIPMENTS
from hub.orders.models import ORDER_STATES, RMA_STATES, Order, OrderHistory
from hub.orders.reservations import release
from hub.platform.mappings import register_schema

TRANSITIONS: dict[str, frozenset[str]] = {
    "new": frozenset({"paid", "processing", "cancelled"}),  # COD orders go to processing unpaid
    "paid": frozenset({"processing", "cancelled"}),
    "processing": frozenset({"ready_to_ship", "cancelled"}),
    "ready_to_ship": frozenset({"processing", "shipped", "cancelled"}),
    "shipped": frozenset({"delivered", "returned"}),
    "delivered": frozenset({"returned"}),
    "cancelled": frozenset(),
    "returned": frozenset(),
}
RANK = {state: i for i, state in enumerate(ORDER_STATES)}
FINAL = frozenset(state for state, onward in TRANSITIONS.items() if not onward)  # cancelled, returned


class TransitionError(ValueError):
    pass


def can_move(current: str, target: str) -> bool:
    return target in TRANSITIONS[current]


def check_move(current: str, target: str) -> None:
    if target not in TRANSITIONS:
        raise TransitionError(f"unknown order status {target!r} (statuses: {', '.join(ORDER_STATES)})")
    if not can_move(current, target):
        allowed = ", ".join(sorted(TRANSITIONS[current])) or "none: it is final"
        raise TransitionError(f"an order cannot go from {current} to {target} (from {current}: {allowed})")


def path_to(current: str, target: str) -> list[str]:
    """The steps from ``current`` forward to ``target`` (e.g. new -> shipped), or [] if none exist."""
    if current == target:
        return []
    frontier = [[current]]
    seen = {current}
    while frontier:
        path = frontier.pop(0)
        for nxt in sorted(TRANSITIONS[path[-1]], key=RANK.__getitem__):
            if nxt in seen or (RANK[nxt] < RANK[path[-1]] and nxt != "cancelled"):
                continue
            if nxt == target:
                return [*path[1:], nxt]
            seen.add(nxt)
            frontier.append([*path, nxt])
    return []


def _check_states(values: dict[str, str], allowed: tuple[str, ...], what: str) -> dict[str, str]:
    bad = {k: v for k, v in values.items() if v not in allowed}
    if bad:
        key, value = next(iter(bad.items()))
        raise ValueError(f"{what} {key} = {value!r} is not one of {', '.join(allowed)}")
    return values


class StatusMap(BaseModel):
    """One channel kind's (or account's) statuses: inbound channel -> hub, outbound hub -> channel."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    inbound: dict[str, str] = Field(default_factory=dict)
    outbound: dict[str, str] = Field(default_factory=dict)
    returns: dict[str, str] = Field(default_factory=dict)  # channel return status -> RMA state

    @field_validator("inbound")
    @classmethod
    def _inbound(cls, v: dict[str, str]) -> dict[str, str]:
        return _check_states(v, ORDER_STATES, "inbound")

    @field_validator("outbound")
    @classmethod
    def _outbound(cls, v: dict[str, str]) -> dict[str, str]:
        unknown = [k for k in v if k not in ORDER_STATES]
        if unknown:
            raise ValueError(f"outbound key {unknown[0]!r} is not a hub status ({', '.join(ORDER_STATES)})")
        empty = [k for k, status in v.items() if not status.strip()]
        if empty:
            raise ValueError(f"outbound {empty[0]} = '': name the channel's status (or leave the key out to send "
                             "none)")
        return v

    @field_validator("returns")
    @classmethod
    def _returns(cls, v: dict[str, str]) -> dict[str, str]:
        return _check_states(v, RMA_STATES, "returns")


class OrderStatusFile(BaseModel):
    """Schema of ``mappings/order_status.toml``: maps per connector kind, overridable per account."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kinds: dict[str, StatusMap] = Field(default_factory=dict)
    accounts: dict[str, StatusMap] = Field(default_factory=dict)

    def for_channel(self, name: str, kind: str) -> StatusMap:
        base = self.kinds.get(kind, StatusMap())
        override = self.accounts.get(name)
        if override is None:
            return base
        return StatusMap(
            inbound={**base.inbound, **override.inbound},
            outbound={**base.outbound, **override.outbound},
            returns={**base.returns, **override.returns},
        )


register_schema("order_status.toml", OrderStatusFile)




def _life(session: Session, order: Order) -> str:
    """The part of a per-order job key that tells an order's lives apart: '' until its channel reopens it
    after a cancellation, then '#1', '#2'... (a second cancellation must withdraw what the second life
    booked, not find the first one's job done)."""
    reopened = session.execute(select(func.count()).select_from(OrderHistory).where(
        OrderHistory.order_id == order.id, OrderHistory.from_status == "cancelled",
        OrderHistory.to_status != "cancelled")).scalar() or 0
    return f"#{reopened}" if reopened else ""


def enqueue_erp_cancel(session: Session, order: Order) -> None:
    """The reversal of a booked sale, once per order's life (the key), whoever notices the cancellation
    first."""
    queue.enqueue(session, ERP_CANCEL, {"order_id": order.id},
                  key=f"erp-cancel:{order.channel}/{order.external_id}{_life(session, order)}")


def withdraw_shipments(session: Session, order: Order) -> None:
    """Ask hub.shipping to stop the order's parcels, once per order's life (the key), whoever asks first:
    an order with no shipment makes a job that finds nothing to do."""
    queue.enqueue(session, WITHDRAW_SHIPMENTS, {"order_id": order.id},
                  key=f"ship-withdraw:{order.channel}/{order.external_id}{_life(session, order)}")


def correct_invoice(session: Session, order: Order) -> None:
    """Ask hub.invoicing to correct the order's invoice to nothing, once per order's life: an order never
    invoiced makes a job that finds nothing to do (and an invoice not issued yet is never issued)."""
    queue.enqueue(session, CORRECT_INVOICE, {"order_id": order.id, "reason": "anulowanie zamówienia"},
                  key=f"invoice-cancel:{order.channel}/{order.external_id}{_life(session, order)}")


def _cancelled(session: Session, order: Order, now: datetime) -> None:
    """What a cancellation undoes: the reservations, the ERP's sale (if booked), the parcels, the invoice."""
    release(session, order, now)
    # already booked: the ERP reverses the sale and its stock takes the goods back. A locking read,
    # not the loaded value: a booking committing at this moment is seen (or it sees this status)
    booked = session.execute(select(Order.erp_ref).where(Order.id == order.id).with_for_update()).scalar()
    if booked:
        enqueue_erp_cancel(session, order)
    withdraw_shipments(session, order)
    correct_invoice(session, order)


def move(session: Session, order: Order, target: str, source: str, now: datetime, note: str | None = None,
         *, push: bool = True) -> None:
    """One allowed transition, recorded; the channel hears of it through a job (unless it told us)."""
    check_move(order.status, target)
    session.add(OrderHistory(order_id=order.id, from_status=order.status, to_status=target, source=source,
                             note=note, at=now))
    order.status = target
    order.updated_at = now
    if target == "cancelled":
        _cancelled(session, order, now)
    if push:
        queue.enqueue(session, PUSH_STATUS, {"order_id": order.id, "status": target},
                      key=f"status:{order.id}:{target}:{uuid.uuid4().hex[:8]}", connector=order.channel)


def recall(session: Session, order: Order, source: str, now: datetime, note: str | None = None) -> None:
    """A shipped order the channel cancelled, once hub.shipping stopped every parcel of it before it left:
    cancelled after all (the one move back from shipped, outside TRANSITIONS so no rule or operator
    makes it). The channel told us, so nothing is pushed."""
    if order.status != "shipped":
        raise TransitionError(f"only a shipped order is recalled, not a {order.status} one")
    session.add(OrderHistory(order_id=order.id, from_status=order.status, to_status="cancelled", source=source,
                             note=note, at=now))
    order.status = "cancelled"
    order.updated_at = now
    _cancelled(session, order, now)


def reopen(session: Session, order: Order, source: str, now: datetime, note: str | None = None) -> None:
    """A cancelled order its channel took up again: new once more (outside TRANSITIONS, so no rule or
    operator makes it). Only for an order whose cancellation undid nothing outside the hub (see
    hub.orders.intake); the caller reserves its goods again. The channel told us, so nothing is pushed."""
    if order.status != "cancelled":
        raise TransitionError(f"only a cancelled order is reopened, not a {order.status} one")
    session.add(OrderHistory(order_id=order.id, from_status="cancelled", to_status="new", source=source,
                             note=note, at=now))
    order.status = "new"
    order.updated_at = now
    session.flush()  # the history row counts in the keys of this life's jobs (_life)
