"""The shipment state machine: only these moves happen, each recorded with its time and source.

    draft -> booking -> booked -> label_ready -> handed_over -> in_transit -> out_for_delivery -> delivered
    a shipment not yet handed over -> cancelled;  booking -> failed (the carrier refused it) -> booking again
    or cancelled;
    on the way -> returned_to_sender

Tracking may skip steps (a parcel seen first in transit): the move walks the path forward, recording each
step, and never goes back (an old tracking event after a newer one changes nothing).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import insert
from sqlalchemy.orm import Session

from hub.shipping.models import SHIPMENT_STATES, Shipment, ShipmentHistory

TRANSITIONS: dict[str, frozenset[str]] = {
    "draft": frozenset({"booking", "cancelled"}),
    "booking": frozenset({"booked", "failed", "cancelled"}),
    "booked": frozenset({"label_ready", "cancelled", "handed_over"}),
    "label_ready": frozenset({"handed_over", "cancelled"}),
    "handed_over": frozenset({"in_transit", "returned_to_sender"}),
    "in_transit": frozenset({"out_for_delivery", "delivered", "returned_to_sender"}),
    "out_for_delivery": frozenset({"in_transit", "delivered", "returned_to_sender"}),
    "delivered": frozenset(),
    "returned_to_sender": frozenset(),
    "cancelled": frozenset(),
    "failed": frozenset({"booking", "cancelled"}),  # booked again after the operator fixed what the carrier refused
}
FINAL = frozenset(s for s, onward in TRANSITIONS.items() if not onward)
ON_THE_WAY = ("handed_over", "in_transit", "out_for_delivery")
assert set(TRANSITIONS) == set(SHIPMENT_STATES)


class ShipmentStateError(ValueError):
    pass


def check_move(current: str, target: str) -> None:
    if target not in TRANSITIONS:
        raise ShipmentStateError(f"unknown shipment state {target!r} (states: {', '.join(SHIPMENT_STATES)})")
    if target not in TRANSITIONS[current]:
        allowed = ", ".join(sorted(TRANSITIONS[current])) or "none: it is final"
        raise ShipmentStateError(f"a shipment cannot go from {current} to {target} (from {current}: {allowed})")


def move(session: Session, shipment: Shipment, target: str, source: str, now: datetime,
         note: str | None = None) -> None:
    """One allowed move, recorded."""
    check_move(shipment.state, target)
    session.add(ShipmentHistory(shipment_id=shipment.id, from_state=shipment.state, to_state=target,
                                source=source[:60], note=note, at=now))
    shipment.state = target
    shipment.updated_at = now


def record(session: Session, shipment_id: int, current: str, target: str, source: str, now: datetime,
           note: str | None = None) -> None:
    """The history row of a move a fenced Core update made (``WHERE state = current``): the same check
    and record as ``move``, for the hot paths that write without loading the shipment."""
    check_move(current, target)
    session.execute(insert(ShipmentHistory.__table__), {"shipment_id": shipment_id, "from_state": current,
                                                        "to_state": target, "source": source[:60], "note": note,
                                                        "at": now})


def advance(session: Session, shipment: Shipment, target: str, source: str, now: datetime,
            note: str | None = None) -> bool:
    """Move forward to ``target`` as tracking reports it, through the steps it implies (a parcel in
    transit was handed over); False when ``target`` is not ahead (tracking repeating itself, or an
    event older than what we know). Never invents a label or an out-for-delivery the carrier did not report."""
    rank = {"booked": 0, "label_ready": 0, "handed_over": 1, "in_transit": 2, "out_for_delivery": 3, "delivered": 4}
    if target == "returned_to_sender":
        if shipment.state in ON_THE_WAY:
            move(session, shipment, target, source, now, note)
            return True
        return False
    if shipment.state not in rank or target not in rank or rank[target] <= rank[shipment.state]:
        return False
    path = []
    if rank[shipment.state] < 1 and target != "handed_over":
        path.append("handed_over")
    if rank[shipment.state] < 2 and rank[target] > 2:
        path.append("in_transit")
    for step in [*path, target]:
        move(session, shipment, step, source, now, note if step == target else None)
    return True
