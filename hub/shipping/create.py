"""A shipment for an order: the route from the delivery mapping (or the operator's choice), the parcel,
the receiver or the buyer's locker, cash on delivery, and our reference, all written before any carrier
is called. Then it moves to ``booking`` and one booking job goes out (its key is the reference)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from hub.jobs import queue
from hub.orders import Order
from hub.platform.config import ShippingSettings
from hub.platform.db import insert_for
from hub.shipping.delivery_map import DeliveryFile, Route
from hub.shipping.kinds import BOOK
from hub.shipping.models import Shipment, ShipmentHistory, ShipmentParcel
from hub.shipping.parcels import ParcelProblem, goods_weight, plan_parcel
from hub.shipping.states import move


class ShippingProblem(ValueError):
    """Why an order cannot be shipped as it is (a weight missing, no route, no address)."""


@dataclass(frozen=True)
class Choice:
    carrier: str
    service: str
    template: str
    sender: str


def choose(order: Order, delivery: DeliveryFile, settings: ShippingSettings, *, carrier: str | None = None,
           service: str | None = None) -> Choice:
    route: Route | None = delivery.route_for(order.channel, order.delivery_method)
    if route is None:
        raise ShippingProblem(f"no route in mappings/delivery.toml for {order.channel} delivery method "
                              f"{order.delivery_method!r} and no [default]")
    template = delivery.templates[route.template]
    sender = route.sender or template.sender or settings.default_sender
    if sender is None:
        raise ShippingProblem("no sender: set [shipping] default_sender or a sender on the route")
    if sender not in settings.senders:
        raise ShippingProblem(f"sender {sender!r} is not in [shipping.senders]")
    return Choice(carrier=carrier or route.carrier, service=service or route.service, template=route.template,
                  sender=sender)


def _receiver(order: Order) -> tuple[dict[str, Any], str | None]:
    delivery = order.delivery or {}
    point = delivery.get("pickup_point") or None
    address = dict(delivery.get("address") or (point or {}).get("address") or {})
    if not address.get("name"):
        raise ShippingProblem("the order has no delivery address or receiver name")
    address.setdefault("email", order.buyer_email)
    if not address.get("email"):
        address["email"] = order.buyer_email
    return address, (point or {}).get("id")


def next_reference(session: Session, order: Order) -> str:
    """HUB-<order id>-<n>: ours, short enough for every carrier's reference field."""
    count = session.execute(select(func.count()).select_from(Shipment).where(Shipment.order_id == order.id)).scalar()
    return f"HUB-{order.id}-{(count or 0) + 1}"


def create_shipment(session: Session, order: Order, delivery: DeliveryFile, settings: ShippingSettings,
                    source: str, now: datetime, *, carrier: str | None = None, service: str | None = None,
                    reference: str | None = None) -> Shipment | None:
    """The shipment, in ``booking`` with its job queued; None when ``reference`` exists already (a
    second process or a replayed job created it: insert-or-nothing on the reference)."""
    choice = choose(order, delivery, settings, carrier=carrier, service=service)
    receiver, point = _receiver(order)
    template = delivery.templates[choice.template]
    try:
        parcel = plan_parcel(goods_weight(session, order), template)
    except ParcelProblem as exc:
        raise ShippingProblem(str(exc)) from None
    payment = order.payment or {}
    cod = Decimal(str(order.total_gross)) if payment.get("cash_on_delivery") else None
    if cod is not None and not settings.senders[choice.sender].bank_account:
        raise ShippingProblem(f"cash on delivery needs a bank_account on sender {choice.sender!r}")
    reference = reference or next_reference(session, order)
    values = {"order_id": order.id, "reference": reference, "carrier": choice.carrier, "service": choice.service,
              "sender": choice.sender, "state": "draft", "receiver": receiver, "pickup_point": point,
              "cod_amount": cod, "cod_currency": order.currency if cod is not None else None,
              "insurance": cod, "currency": order.currency, "label_format": settings.label_format, "handles": {},
              "created_at": now, "updated_at": now}
    stmt = insert_for(session)(Shipment).values(values).on_conflict_do_nothing(index_elements=["reference"])
    inserted = session.execute(stmt.returning(Shipment.id)).scalar()
    if inserted is None:
        return None
    shipment = session.get(Shipment, inserted)
    assert shipment is not None
    session.add(ShipmentParcel(shipment_id=shipment.id, seq=1, weight_kg=parcel.weight_kg, length_cm=parcel.length_cm,
                               width_cm=parcel.width_cm, height_cm=parcel.height_cm, template=parcel.template))
    session.add(ShipmentHistory(shipment_id=shipment.id, from_state=None, to_state="draft", source=source[:60],
                                at=now))
    move(session, shipment, "booking", source, now)
    queue.enqueue(session, BOOK, {"shipment_id": shipment.id}, key=f"ship-book:{reference}",
                  connector=choice.carrier)
    return shipment
