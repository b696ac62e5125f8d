"""The shipping job handlers: create, book (exactly once), label, tracking to the channel, tracking
from the carrier, cancel.

Every carrier call happens outside a transaction and its outcome is committed after it. A worker that
dies between the carrier's answer and our commit leaves the job to be run again, and the carrier
connector finds the first booking by our reference (hub.kernel.ports.carrier): one booking, one label.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import and_, bindparam, or_, select, update
from sqlalchemy.orm import Session

from hub.jobs import queue
from hub.jobs.handlers import JobContext
from hub.jobs.queue import NewJob
from hub.kernel.clock import utcnow
from hub.kernel.errors import PermanentError
from hub.kernel.ports.capability import Capability
from hub.kernel.ports.carrier import (
    Booking,
    CancelRefused,
    CashOnDelivery,
    Parcel,
    ShipmentRequest,
    TrackingEvent,
)
from hub.kernel.ports.channel import TrackingNotice
from hub.kernel.types import Address, PickupPoint
from hub.orders import Order, OrderRules, can_move, move, path_to, run_rules
from hub.platform.config import LoadedConfig
from hub.shipping.create import ShippingProblem, create_shipment
from hub.shipping.delivery_map import DeliveryFile
from hub.shipping.kinds import (
    BOOK,
    BOOK_PICKUP,
    CANCEL,
    CANCEL_PICKUP,
    CREATE_SHIPMENT,
    LABEL,
    PICKUPS,
    PUSH_TRACKING,
    TRACK,
    WITHDRAW_SHIPMENTS,
)
from hub.shipping.labels import store_label
from hub.shipping.models import Shipment, ShipmentParcel
from hub.shipping.pickups import PickupPlanner
from hub.shipping.states import ON_THE_WAY, advance, record
from hub.shipping.states import move as move_shipment
from hub.shipping.wire import booking_of, sender_address
from hub.shipping.withdraw import cancelled, flag_order, stop, wants_withdrawal, withdraw

# The statements every booking runs, built once: a statement memoizes its cache key, so SQLAlchemy
# neither rebuilds nor re-keys them per shipment (bench/labels)
_SHIPMENTS, _PARCELS = Shipment.__table__, ShipmentParcel.__table__
_ORDER_STATUS_LOCKED = (select(Order.__table__.c.status).where(Order.__table__.c.id == bindparam("order_id"))
                        .with_for_update())
_SHIPMENT = select(Shipment).where(Shipment.id == bindparam("sid"))
# the shipment locked, with what the booking needs of its order (one round trip, not two)
_BOOKING_LOCKED = (select(Shipment, Order.__table__.c.status, Order.__table__.c.channel,
                          Order.__table__.c.external_id)
                   .join(Order.__table__, Order.__table__.c.id == Shipment.order_id)
                   .where(Shipment.id == bindparam("sid")).with_for_update(of=Shipment))
_STATE = select(_SHIPMENTS.c.state).where(_SHIPMENTS.c.id == bindparam("sid"))
_PARCELS_OF = select(ShipmentParcel).where(ShipmentParcel.shipment_id == bindparam("sid")).order_by(ShipmentParcel.seq)
_COUNT_CALL = (update(_SHIPMENTS).where(_SHIPMENTS.c.id == bindparam("sid"), _SHIPMENTS.c.state == "booking")
               .values(book_calls=_SHIPMENTS.c.book_calls + 1).returning(_SHIPMENTS.c.book_calls))
# the carrier's answer recorded (booking -> booked) unless another run did
_BOOKED = (update(_SHIPMENTS).where(_SHIPMENTS.c.id == bindparam("sid"), _SHIPMENTS.c.state == "booking")
           .values(external_id=bindparam("carrier_id"), operator=bindparam("carrier_operator"),
                   handles=bindparam("carrier_handles", type_=_SHIPMENTS.c.handles.type), problem=None,
                   state="booked", updated_at=bindparam("now"))
           .returning(_SHIPMENTS.c.order_id, _SHIPMENTS.c.reference, _SHIPMENTS.c.label_format,
                      _SHIPMENTS.c.created_at))
_PARCEL_BOOKED = (update(_PARCELS).where(_PARCELS.c.shipment_id == bindparam("sid"),
                                         _PARCELS.c.seq == bindparam("parcel_seq"))
                  .values(tracking_number=bindparam("number"), external_id=bindparam("parcel_id")))
# the label recorded (booked -> label_ready) unless another run did
_LABEL_RECORDED = (update(_SHIPMENTS)
                   .where(_SHIPMENTS.c.id == bindparam("sid"), _SHIPMENTS.c.state == "booked",
                          _SHIPMENTS.c.label_sha256.is_(None))
                   .values(label_path=bindparam("label_file"), label_sha256=bindparam("checksum"),
                           label_format=bindparam("label_kind"), state="label_ready", updated_at=bindparam("now"))
                   .returning(_SHIPMENTS.c.id))
# a booking's label and tracking jobs wait this long for the booking's own fetch and push (hub.shipping.service)
LABEL_SAFETY_NET = timedelta(seconds=60)
LIVE = ("draft", "booking", "booked", "label_ready", "handed_over", "in_transit", "out_for_delivery")
TRACKED = ("booked", "label_ready", "handed_over", "in_transit", "out_for_delivery")
TRACK_BATCHES_PER_RUN = 50  # per carrier account; the next run goes on where this one stopped
# a run stops asking after this long, the next goes on: a periodic job that runs for minutes is killed with
# its worker over and over (chaos: one died after 10 attempts), and blocks the next slot meanwhile
TRACK_RUN_SECONDS = 10.0
# a tracking status -> the shipment state it means (ready_for_pickup: waiting at the locker or point)
STATE_OF = {"in_transit": "in_transit", "out_for_delivery": "out_for_delivery",
            "ready_for_pickup": "out_for_delivery", "delivered": "delivered", "returned": "returned_to_sender"}


def record_booking(session: Session, sid: int, booking: Booking, now: datetime, seqs: Sequence[int]) -> Any:
    """The carrier's answer on the shipment (booking -> booked), its parcels' numbers (``seqs``: the
    parcels' numbers in the order the request listed them) and the history row, in the prebuilt
    statements (every booking commits through here); None when another run did it. Returns the
    shipment's order id, reference, label format and creation time."""
    recorded = session.execute(_BOOKED, {"sid": sid, "carrier_id": booking.external_id,
                                         "carrier_operator": booking.operator,
                                         "carrier_handles": dict(booking.handles), "now": now}).one_or_none()
    if recorded is None:
        return None
    session.execute(_PARCEL_BOOKED, [{"sid": sid, "parcel_seq": seq, "number": booked.tracking_number,
                                      "parcel_id": booked.external_id}
                                     for seq, booked in zip(seqs, booking.parcels, strict=True)])
    record(session, sid, "booking", "booked", "carrier", now)
    return recorded


class ShippingService:
    def __init__(self, connectors: Any, rules: OrderRules, delivery: DeliveryFile, loaded: LoadedConfig):
        self.connectors = connectors
        self.rules = rules
        self.delivery = delivery
        self.settings = loaded.settings.shipping
        self.label_dir = loaded.label_dir
        self.pickups = PickupPlanner(connectors, self.settings)

    def carrier(self, name: str) -> Any:
        if name not in self.connectors.names(role="carrier"):
            raise PermanentError(f"no carrier connector named {name!r} "
                                 f"(carriers: {', '.join(self.connectors.names(role='carrier')) or 'none'})")
        return self.connectors.get(name)

    # creating and booking

    def handle_create(self, ctx: JobContext) -> dict[str, Any]:
        payload = ctx.payload
        if payload.get("carrier") is None and not self.delivery.configured:
            return {"shipment": None, "skipped": "mappings/delivery.toml routes nothing (shipping not set up)"}
        now = utcnow()
        with ctx.session() as session:
            order = session.get(Order, payload["order_id"])
            if order is None:
                raise PermanentError(f"order {payload['order_id']} does not exist")
            if order.status == "cancelled":
                return {"shipment": None, "skipped": "the order is cancelled"}
            live = session.execute(select(Shipment.id).where(Shipment.order_id == order.id,
                                                             Shipment.state.in_(LIVE))).first()
            if live is not None and not payload.get("another"):
                return {"shipment": live[0], "skipped": "the order has a shipment already"}
            try:
                shipment = create_shipment(session, order, self.delivery, self.settings,
                                           payload.get("source") or "job", now, carrier=payload.get("carrier"),
                                           service=payload.get("service"), reference=payload.get("reference"))
            except ShippingProblem as exc:
                flag_order(session, self.rules, order, str(exc), now)
                return {"shipment": None, "problem": str(exc)}
            return {"shipment": None if shipment is None else shipment.id}

    def _request(self, session: Session, shipment: Shipment, channel: str, order_external_id: str
                 ) -> tuple[ShipmentRequest, list[int]]:
        """What the carrier is asked, and the parcels' seqs in the order the request lists them (a
        shipment's parcels do not change while it is booked)."""
        sender = self.settings.senders[shipment.sender]
        parcels = session.execute(_PARCELS_OF, {"sid": shipment.id}).scalars().all()
        receiver = shipment.receiver or {}
        cod = None
        if shipment.cod_amount is not None:
            cod = CashOnDelivery(amount=Decimal(shipment.cod_amount), currency=shipment.cod_currency or "PLN",
                                 bank_account=sender.bank_account or "")
        request = ShipmentRequest(
            reference=shipment.reference, service=shipment.service, sender=sender_address(sender),
            receiver=Address(name=receiver.get("name") or "", street=receiver.get("street") or "",
                             city=receiver.get("city") or "", postal_code=receiver.get("postal_code") or "",
                             country=receiver.get("country") or "PL", company=receiver.get("company"),
                             phone=receiver.get("phone"), email=receiver.get("email")),
            parcels=[Parcel(weight_kg=Decimal(p.weight_kg), length_cm=p.length_cm, width_cm=p.width_cm,
                            height_cm=p.height_cm, template=p.template, reference=f"{shipment.reference}-{p.seq}")
                     for p in parcels],
            pickup_point=PickupPoint(id=shipment.pickup_point) if shipment.pickup_point else None,
            cod=cod, insurance=None if shipment.insurance is None else Decimal(shipment.insurance),
            currency=shipment.currency, label_format="zpl" if shipment.label_format == "zpl" else "pdf",
            content=f"order {order_external_id}"[:100], order_channel=channel,
            order_external_id=order_external_id)
        return request, [p.seq for p in parcels]

    def handle_book(self, ctx: JobContext) -> dict[str, Any]:
        with ctx.session() as session:
            # locked: a withdrawal (hub.shipping.withdraw) and this job never both cancel it
            found = session.execute(_BOOKING_LOCKED, {"sid": ctx.payload["shipment_id"]}).one_or_none()
            if found is None:
                raise PermanentError(f"shipment {ctx.payload['shipment_id']} does not exist")
            shipment, order_status, channel, order_external_id = found
            if shipment.state != "booking":
                return {"shipment": shipment.id, "recorded_already": shipment.state}
            if order_status == "cancelled" and not shipment.book_calls:  # the carrier was never asked
                move_shipment(session, shipment, "cancelled", "order cancelled", utcnow())
                return {"shipment": shipment.id, "cancelled": True, "carrier": False}
            # counted and committed before the call: the first call books without a lookup, any later one
            # (a crash, a lost answer, a lease that ran out) makes the connector look for it first. Only
            # while booking: a withdrawal that cancelled it meanwhile (row locked) leaves no row to count
            calls = session.execute(_COUNT_CALL, {"sid": shipment.id}).scalar_one_or_none()
            if calls is None:
                return {"shipment": shipment.id, "recorded_already": "cancelled"}
            request, seqs = self._request(session, shipment, channel, order_external_id)
            request = replace(request, first_call=calls == 1)
            carrier_name = shipment.carrier
        carrier = self.carrier(carrier_name)
        try:
            booking = carrier.book(request)
        except PermanentError as exc:
            now = utcnow()
            with ctx.session() as session:
                shipment = session.get(Shipment, ctx.payload["shipment_id"])
                assert shipment is not None
                if shipment.state != "booking":
                    return {"shipment": shipment.id, "recorded_already": shipment.state}
                shipment.problem = f"{carrier_name} refused the booking: {exc}"
                move_shipment(session, shipment, "failed", "carrier", now, str(exc)[:500])
                order = session.get(Order, shipment.order_id)
                assert order is not None
                flag_order(session, self.rules, order, shipment.problem, now, "shipment.exception")
            return {"shipment": request.reference, "failed": str(exc)}
        if len(booking.parcels) != len(request.parcels):
            raise PermanentError(f"{carrier_name} booked {len(booking.parcels)} parcels for "
                                 f"{request.reference}, which has {len(request.parcels)}")
        now, sid = utcnow(), ctx.payload["shipment_id"]
        with ctx.session() as session:
            recorded = record_booking(session, sid, booking, now, seqs)
            if recorded is None:  # another run recorded it (a lease that ran out)
                return {"shipment": sid, "recorded_already": str(session.execute(_STATE, {"sid": sid}).scalar())}
            order_id, reference, fmt, created_at = recorded
            # locked: an order cancelled while the carrier booked is seen here, or its withdrawal sees
            # this booking (hub.shipping.withdraw)
            if session.execute(_ORDER_STATUS_LOCKED, {"order_id": order_id}).scalar() == "cancelled":
                stop(session, sid, reference, carrier_name)
                return {"shipment": request.reference, "external_id": booking.external_id,
                        "cancelling": "the order was cancelled while the carrier booked it"}
            # the label is fetched and the tracking numbers told right below; their jobs are the safety net
            # of a worker that dies first
            label_key, tracking_key = f"ship-label:{reference}", f"ship-tracking:{reference}"
            queue.enqueue_many(session, [  # one statement for both
                NewJob(LABEL, {"shipment_id": sid}, label_key, carrier_name, run_at=now + LABEL_SAFETY_NET),
                NewJob(PUSH_TRACKING, {"shipment_id": sid}, tracking_key, run_at=now + LABEL_SAFETY_NET)])
            if self.rules.automation.for_event("shipment.booked"):
                order = session.get(Order, order_id)
                assert order is not None
                run_rules(session, self.rules, order, "shipment.booked", now)
            day = created_at.date()
        result = {"shipment": request.reference, "external_id": booking.external_id,
                  "tracking": [p.tracking_number for p in booking.parcels]}
        label = self._label_at_once(ctx, carrier, booking, fmt, day, label_key)
        pushed = self._push_at_once(ctx, sid, tracking_key)
        return {**result, "label": label, "tracking_pushed": pushed is not None}

    def _label_at_once(self, ctx: JobContext, carrier: Any, booking: Booking, fmt: str, day: date,
                       label_key: str) -> str | None:
        """The label of a parcel just booked, in the booking's job: a job of its own per label cost as much
        as the booking (claim, reads, settle). Anything short of a stored label (not ready yet, a fault)
        leaves it to the label job, made due at once; a worker dying here leaves that job due later."""
        try:
            stored = self._store_label(ctx, carrier, booking, fmt, day, done_key=label_key)
        except Exception as exc:  # the label job repeats the call, with the queue's handling of errors
            ctx.log.info("label not fetched with the booking; its job will", reference=booking.reference,
                         error=str(exc)[:300])
            with ctx.session() as session:
                queue.run_now(session, label_key)
            return None
        return None if isinstance(stored, str) else stored[0]

    def _store_label(self, ctx: JobContext, carrier: Any, booking: Booking, fmt: str, day: date, *,
                     done_key: str | None = None) -> tuple[str, str] | str:
        """Fetch the label, store its file and record it on the shipment (label_ready): its path and
        checksum, or the shipment's state when another run recorded it first. ``done_key``: the label job
        whose work this is, marked done in the same transaction."""
        label = carrier.label(booking, "zpl" if fmt == "zpl" else "pdf", "A6")
        path, digest = store_label(self.label_dir, day, booking.reference, label)
        now, sid = utcnow(), ctx.payload["shipment_id"]
        with ctx.session() as session:
            if session.execute(_LABEL_RECORDED, {"sid": sid, "label_file": str(path), "checksum": digest,
                                                 "label_kind": label.format, "now": now}).scalar() is None:
                return str(session.execute(_STATE, {"sid": sid}).scalar())
            record(session, sid, "booked", "label_ready", "carrier", now)
            if done_key is not None:
                queue.done_without_running(session, done_key, {"shipment": booking.reference, "label": str(path),
                                                               "sha256": digest, "with_the_booking": True})
        return str(path), digest

    def handle_label(self, ctx: JobContext) -> dict[str, Any]:
        with ctx.session() as session:
            shipment = session.get(Shipment, ctx.payload["shipment_id"])
            if shipment is None:
                raise PermanentError(f"shipment {ctx.payload['shipment_id']} does not exist")
            if shipment.state != "booked" or shipment.label_sha256:
                return {"shipment": shipment.id, "recorded_already": shipment.state}
            parcels = list(session.execute(select(ShipmentParcel).where(ShipmentParcel.shipment_id == shipment.id)
                                           .order_by(ShipmentParcel.seq)).scalars())
            booking, fmt, name = booking_of(shipment, parcels), shipment.label_format, shipment.carrier
            day, shipment_id = shipment.created_at.date(), shipment.id
        stored = self._store_label(ctx, self.carrier(name), booking, fmt, day)
        if isinstance(stored, str):
            return {"shipment": shipment_id, "recorded_already": stored}
        return {"shipment": booking.reference, "label": stored[0], "sha256": stored[1]}

    # the channel hears of the parcel

    def handle_push_tracking(self, ctx: JobContext) -> dict[str, Any]:
        return self._push_tracking(ctx, ctx.payload["shipment_id"], ctx.job.idempotency_key)

    def _push_at_once(self, ctx: JobContext, sid: int, key: str) -> dict[str, Any] | None:
        """The tracking numbers told to the channel in the booking's job, as its label is fetched: a job of
        its own per shipment cost as much again (claim, reads, settle; bench/labels). Anything short of
        done leaves it to the tracking job (key ``key``), made due at once."""
        try:
            return self._push_tracking(ctx, sid, key, inline=True)
        except Exception as exc:  # the job repeats it, with the queue's handling of errors
            ctx.log.info("tracking not pushed with the booking; its job will", shipment=sid, error=str(exc)[:300])
            with ctx.session() as session:
                queue.run_now(session, key)
            return None

    def _push_tracking(self, ctx: JobContext, sid: int, key: str, *, inline: bool = False) -> dict[str, Any]:
        """Tell the order's channel the shipment's tracking numbers once (``key``: the tracking job's, the
        channel's idempotency key); ``inline``: in the booking's job, which marks the tracking job done in
        the transaction that records the outcome."""

        def settled(session: Session, result: dict[str, Any]) -> dict[str, Any]:
            if inline:
                queue.done_without_running(session, key, {**result, "with_the_booking": True})
            return result

        with ctx.session() as session:
            shipment = session.execute(_SHIPMENT, {"sid": sid}).scalar_one_or_none()
            if shipment is None:
                raise PermanentError(f"shipment {sid} does not exist")
            if shipment.tracking_pushed_at is not None or shipment.state in ("cancelled", "failed"):
                return settled(session, {"shipment": shipment.id, "recorded_already": True})
            order = session.get(Order, shipment.order_id)
            assert order is not None
            if order.status == "cancelled":  # its parcels are being withdrawn: no tracking number to tell
                return settled(session, {"shipment": shipment.id, "skipped": "the order is cancelled"})
            numbers = [n for (n,) in session.execute(
                select(ShipmentParcel.tracking_number).where(ShipmentParcel.shipment_id == shipment.id)
                .order_by(ShipmentParcel.seq)) if n]
            channel, carrier_name = order.channel, shipment.carrier
            notice = TrackingNotice(order_external_id=order.external_id, operator=shipment.operator or "other",
                                    tracking_numbers=numbers,
                                    booked_by_channel=self._books_for(carrier_name) == channel)
        if channel not in self.connectors.names(role="channel"):
            raise PermanentError(f"order {notice.order_external_id} came from channel {channel!r}, which is not "
                                 f"configured or is disabled (channels: "
                                 f"{', '.join(self.connectors.names(role='channel')) or 'none'}): its tracking "
                                 "numbers were not sent; `hub jobs retry` once the channel is back")
        sent = False
        if Capability.TRACKING_PUSH in self.connectors.spec(channel).capabilities:
            self.connectors.get(channel).add_tracking(notice, idempotency_key=key)
            sent = True
        now = utcnow()
        with ctx.session() as session:
            shipment = session.get(Shipment, sid)
            order = session.get(Order, shipment.order_id) if shipment is not None else None
            assert shipment is not None and order is not None
            shipment.tracking_pushed_at = now
            moved = self._order_to(session, order, "shipped", now)
            if moved:
                run_rules(session, self.rules, order, "shipment.shipped", now)
            return settled(session, {"shipment": shipment.reference, "tracking": numbers, "sent_to_channel": sent})

    def _books_for(self, carrier_name: str) -> str | None:
        """The channel account a carrier books for (a marketplace's own shipping): that channel attaches
        the parcel to its order by itself."""
        return getattr(self.connectors.get(carrier_name), "channel_account", None)

    @staticmethod
    def _order_to(session: Session, order: Order, target: str, now: datetime) -> bool:
        steps = path_to(order.status, target)
        if not steps:
            return False
        for step in steps:
            if not can_move(order.status, step):
                return False
            move(session, order, step, "shipping", now)
        return True

    # cancelling

    def handle_cancel(self, ctx: JobContext) -> dict[str, Any]:
        with ctx.session() as session:
            shipment = session.get(Shipment, ctx.payload["shipment_id"])
            if shipment is None:
                raise PermanentError(f"shipment {ctx.payload['shipment_id']} does not exist")
            if shipment.state == "cancelled":
                return {"shipment": shipment.id, "recorded_already": "cancelled"}
            if shipment.state in ("draft", "failed"):  # the carrier has nothing: ours alone
                move_shipment(session, shipment, "cancelled", ctx.payload.get("source") or "job", utcnow())
                return {"shipment": shipment.id, "cancelled": True, "carrier": False}
            if shipment.state not in ("booking", "booked", "label_ready"):
                shipment.problem = f"cannot cancel: the parcel is {shipment.state.replace('_', ' ')}"
                return {"shipment": shipment.id, "refused": shipment.problem}
            parcels = list(session.execute(select(ShipmentParcel).where(ShipmentParcel.shipment_id == shipment.id)
                                           .order_by(ShipmentParcel.seq)).scalars())
            booking, name = booking_of(shipment, parcels), shipment.carrier
        try:
            self.carrier(name).cancel(booking)
        except CancelRefused as exc:
            now = utcnow()
            with ctx.session() as session:
                shipment = session.get(Shipment, ctx.payload["shipment_id"])
                assert shipment is not None
                shipment.problem, shipment.updated_at = f"{name} refused to cancel: {exc}", now
                order = session.get(Order, shipment.order_id, with_for_update=True)
                assert order is not None
                if wants_withdrawal(self.rules, order):  # a cancelled order's parcel is still live: say so
                    flag_order(session, self.rules, order, f"the order is cancelled but {name} refused to cancel "
                               f"parcel {booking.reference}: {exc}. Keep the parcel, then record it: hub shipments "
                               f"cancel {shipment.id} --withheld", now, "shipment.exception")
            return {"shipment": booking.reference, "refused": str(exc)}
        with ctx.session() as session:
            shipment = session.get(Shipment, ctx.payload["shipment_id"])
            assert shipment is not None
            cancelled(session, self.rules, shipment, ctx.payload.get("source") or "job", utcnow())
        return {"shipment": booking.reference, "cancelled": True, "carrier": True}

    def handle_withdraw(self, ctx: JobContext) -> dict[str, Any]:
        """A cancelled order's parcels: stopped here when the carrier has none of them yet, through a cancel
        job each when it has; the order recalled or flagged once the outcome is known (withdraw.settle)."""
        now = utcnow()
        with ctx.session() as session:
            order = session.get(Order, ctx.payload["order_id"], with_for_update=True)
            if order is None:
                raise PermanentError(f"order {ctx.payload['order_id']} does not exist")
            if not wants_withdrawal(self.rules, order):
                return {"order": order.id, "skipped": f"the order is {order.status}, not cancelled"}
            return {"order": order.id, **withdraw(session, self.rules, order, now)}

    # tracking

    def handle_track(self, ctx: JobContext) -> dict[str, Any]:
        """Every parcel on its way whose turn has come, per carrier account in its batch size; a parcel
        that has not moved for a day is asked less often."""
        now = utcnow()
        busy = now - timedelta(seconds=self.settings.tracking_every)
        quiet = now - timedelta(seconds=self.settings.tracking_quiet_every)
        still = now - timedelta(days=1)
        asked = moved = 0
        names = [name for name in self.connectors.names(role="carrier")
                 if Capability.TRACKING in self.connectors.spec(name).capabilities]
        late = []
        for name in names:  # each account its share of the run's time: a slow one never starves the rest
            deadline = time.monotonic() + TRACK_RUN_SECONDS / len(names)
            carrier = self.connectors.get(name)
            size = max(1, int(getattr(carrier, "tracking_batch_size", 1)))
            for _ in range(TRACK_BATCHES_PER_RUN):
                with ctx.session() as session:
                    due = session.execute(
                        select(ShipmentParcel.tracking_number, Shipment.id)
                        .join(Shipment, Shipment.id == ShipmentParcel.shipment_id)
                        .where(Shipment.carrier == name, Shipment.state.in_(TRACKED),
                               ShipmentParcel.tracking_number.is_not(None),
                               or_(Shipment.tracked_at.is_(None),
                                   and_(Shipment.tracked_at < busy,
                                        or_(Shipment.moved_at.is_(None), Shipment.moved_at >= still)),
                                   Shipment.tracked_at < quiet))
                        .order_by(Shipment.tracked_at.is_not(None), Shipment.tracked_at, Shipment.id)
                        .limit(size)).all()
                if not due:
                    break
                events = carrier.track([number for number, _ in due])
                asked += len(due)
                with ctx.session() as session:
                    moved += self._apply(session, {sid for _, sid in due}, events, now)
                if time.monotonic() > deadline:
                    late.append(name)  # the next run goes on where this one stopped
                    break
        return {"asked": asked, "moved": moved, **({"time_up": late} if late else {})}

    def _apply(self, session: Session, shipment_ids: set[int], events: list[TrackingEvent] | Any,
               now: datetime) -> int:
        by_number: dict[str, list[TrackingEvent]] = {}
        for event in events:
            by_number.setdefault(event.tracking_number, []).append(event)
        moved = 0
        for shipment in session.execute(select(Shipment).where(Shipment.id.in_(shipment_ids))
                                        .with_for_update()).scalars():
            numbers = [n for (n,) in session.execute(select(ShipmentParcel.tracking_number)
                                                     .where(ShipmentParcel.shipment_id == shipment.id))]
            latest = sorted((e for n in numbers for e in by_number.get(n or "", [])), key=lambda e: e.occurred_at)
            if shipment.state not in TRACKED:  # cancelled (or delivered) since this run picked it: its
                continue  # carrier's word on a cancelled parcel is no exception of an order
            shipment.tracked_at = now
            if not latest:
                continue
            last = latest[-1]
            if shipment.moved_at is None or last.occurred_at > shipment.moved_at:
                shipment.moved_at = last.occurred_at
            shipment.tracking_status = last.status
            order = session.get(Order, shipment.order_id)
            assert order is not None
            if last.status == "exception":
                problem = f"parcel {last.tracking_number}: {last.description or last.code}"
                if shipment.problem != problem:
                    shipment.problem = problem
                    flag_order(session, self.rules, order, problem, now, "shipment.exception")
                continue
            target = STATE_OF.get(last.status)
            if target is None:
                continue
            if advance(session, shipment, target, "tracking", now, last.description):
                moved += 1
                if shipment.state == "delivered":
                    self._order_to(session, order, "delivered", now)
                    run_rules(session, self.rules, order, "shipment.delivered", now)
                elif shipment.state in ON_THE_WAY and self._order_to(session, order, "shipped", now):
                    run_rules(session, self.rules, order, "shipment.shipped", now)
        return moved


HANDLERS: dict[str, Callable[[ShippingService, JobContext], dict[str, Any]]] = {
    CREATE_SHIPMENT: ShippingService.handle_create,
    BOOK: ShippingService.handle_book,
    LABEL: ShippingService.handle_label,
    PUSH_TRACKING: ShippingService.handle_push_tracking,
    CANCEL: ShippingService.handle_cancel,
    WITHDRAW_SHIPMENTS: ShippingService.handle_withdraw,
    TRACK: ShippingService.handle_track,
    PICKUPS: lambda service, ctx: service.pickups.handle_pickups(ctx),
    BOOK_PICKUP: lambda service, ctx: service.pickups.handle_book_pickup(ctx),
    CANCEL_PICKUP: lambda service, ctx: service.pickups.handle_cancel_pickup(ctx),
}
