"""A cancelled order ships nothing.

Its parcels are stopped before they leave: cancelled here when the carrier has none of them yet,
through a cancel job each when it has. An order the channel cancelled after the hub shipped it (the
tracking number was sent, the parcel not yet handed over) is recalled to cancelled once every parcel is
stopped; a parcel already on its way, a carrier that refuses, or a shipped order with no parcel in the
hub is a problem on the order for the seller, never silence.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from hub.jobs import queue
from hub.orders import Order, OrderRules, recall, run_rules
from hub.shipping.kinds import CANCEL
from hub.shipping.models import Shipment
from hub.shipping.states import FINAL
from hub.shipping.states import move as move_shipment

AT_THE_CARRIER = ("booked", "label_ready")  # the carrier has them: a cancel job asks it to drop them
NOT_YET_STOPPED = ("draft", "booking", *AT_THE_CARRIER)  # still ours to stop (or being stopped)
STOPPED = ("cancelled", "failed")  # nothing of these leaves the warehouse


def flag_order(session: Session, rules: OrderRules, order: Order, problem: str, now: datetime,
               event: str = "order.problem") -> None:
    """A shipping problem on the order (kept beside any problem it has), and the rules hear of it."""
    text = f"shipping: {problem}"
    if order.problem is None:
        order.problem, order.problem_kind = text, "shipping"
    elif text not in order.problem:
        order.problem = f"{order.problem}; {text}"
    order.updated_at = now
    run_rules(session, rules, order, event, now)


def channel_cancelled(rules: OrderRules, order: Order) -> bool:
    return rules.status_map(order.channel).inbound.get(order.channel_status or "") == "cancelled"


def wants_withdrawal(rules: OrderRules, order: Order) -> bool:
    """Cancelled in the hub, or cancelled on the channel after the hub shipped it."""
    return order.status == "cancelled" or (order.status in ("shipped", "delivered") and channel_cancelled(rules, order))


def stop(session: Session, shipment_id: int, reference: str, carrier: str) -> None:
    """Ask the carrier to drop a booked parcel, once (the key)."""
    queue.enqueue(session, CANCEL, {"shipment_id": shipment_id, "source": "order cancelled"},
                  key=f"ship-cancel:{reference}", connector=carrier)


def _live(session: Session, order: Order) -> list[Shipment]:
    return list(session.execute(select(Shipment).where(Shipment.order_id == order.id, Shipment.state.not_in(FINAL))
                                .order_by(Shipment.id).with_for_update()).scalars())


def withdraw(session: Session, rules: OrderRules, order: Order, now: datetime) -> dict[str, Any]:
    """Stop what can be stopped now, queue the carrier's cancels, then settle the order (locked by the caller)."""
    cancelled, asked, booking = [], [], []
    for shipment in _live(session, order):
        if shipment.state in ("draft", "failed") or (shipment.state == "booking" and not shipment.book_calls):
            move_shipment(session, shipment, "cancelled", "order cancelled", now)  # the carrier has nothing
            cancelled.append(shipment.reference)
        elif shipment.state == "booking":
            booking.append(shipment.reference)  # its booking job, seeing the order cancelled, stops it
        elif shipment.state in AT_THE_CARRIER:
            stop(session, shipment.id, shipment.reference, shipment.carrier)
            asked.append(shipment.reference)
    session.flush()
    return {"cancelled": cancelled, "asked_the_carrier": asked, "booking": booking,
            "order": settle(session, rules, order, now)}


def cancelled(session: Session, rules: OrderRules, shipment: Shipment, source: str, now: datetime,
              note: str | None = None) -> str | None:
    """A parcel cancelled with its carrier, or kept by the seller after a refusal: recorded, and its order
    settled if it is being withdrawn. The order's outcome, or None when the order is not cancelled."""
    if shipment.state != "cancelled":
        move_shipment(session, shipment, "cancelled", source, now, note)
    order = session.get(Order, shipment.order_id, with_for_update=True)
    assert order is not None
    return settle(session, rules, order, now) if wants_withdrawal(rules, order) else None


def settle(session: Session, rules: OrderRules, order: Order, now: datetime) -> str:
    """What the order's parcels mean for it now: nothing yet (a cancel or a booking still out), recalled
    (shipped, every parcel stopped), or a problem naming what left."""
    shipments = list(session.execute(select(Shipment).where(Shipment.order_id == order.id)
                                     .order_by(Shipment.id)).scalars())
    gone = [s for s in shipments if s.state not in STOPPED and s.state not in NOT_YET_STOPPED]
    pending = [s for s in shipments if s.state in NOT_YET_STOPPED]
    where = f"cancelled on {order.channel} ({order.channel_status})" if order.status != "cancelled" else "cancelled"
    if gone:
        names = ", ".join(f"{s.reference} ({s.carrier}, {s.state.replace('_', ' ')})" for s in gone)
        flag_order(session, rules, order, f"the order is {where} but parcel {names} has left: ask the carrier "
                   "to return it, or take it back as a return", now, "shipment.exception")
        return "problem: a parcel has left"
    if pending:
        return "waiting for the carrier"
    if order.status == "cancelled" or (order.status == "shipped" and shipments):
        if order.problem_kind == "shipping":  # what it said (a refusal, a parcel to keep) is settled now
            order.problem = order.problem_kind = None
        if order.status == "cancelled":
            return "cancelled"
        recall(session, order, "shipping", now, note=f"{where}: every parcel stopped before it left")
        run_rules(session, rules, order, "order.cancelled", now)
        return "recalled"
    flag_order(session, rules, order, f"the order is {where} after it was {order.status}, with no parcel in the "
               "hub to stop: stop it with the carrier, or take it back as a return", now)
    return "problem: no parcel to stop"
