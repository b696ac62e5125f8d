"""Courier pickups: once per carrier account per working day, at the configured cut-off, for the
parcels no booked pickup covers yet, inside a window the carrier offers; none for an account with a
standing daily pickup. One live pickup per account and day is a unique index, so two processes at the
cut-off book one."""

from __future__ import annotations

from collections import Counter
from datetime import datetime, time
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from hub.jobs import queue
from hub.jobs.handlers import JobContext
from hub.kernel.clock import utcnow
from hub.kernel.errors import PermanentError
from hub.kernel.ports.capability import Capability
from hub.kernel.ports.carrier import BookedPickup, Booking, CancelRefused, PickupRequest, PickupWindow
from hub.platform.config import SenderSettings, ShippingSettings
from hub.platform.db import insert_for
from hub.shipping.kinds import BOOK_PICKUP
from hub.shipping.models import Pickup, Shipment, ShipmentParcel
from hub.shipping.wire import booking_of, sender_address

WAITING = ("booked", "label_ready")  # booked with the carrier, not yet handed over


def _hhmm(value: time) -> str:
    return value.strftime("%H:%M")


def local_now(settings: ShippingSettings, now: datetime) -> datetime:
    return now.astimezone(ZoneInfo(settings.timezone))


class PickupPlanner:
    def __init__(self, connectors: Any, settings: ShippingSettings):
        self.connectors = connectors
        self.settings = settings

    def carriers(self) -> list[str]:
        return [name for name in self.connectors.names(role="carrier")
                if Capability.PICKUP in self.connectors.spec(name).capabilities
                and name not in self.settings.standing_pickups]

    def plan(self, session: Session, now: datetime, *, force: bool = False,
             only: str | None = None) -> list[int]:
        """Pickups to book now (in the caller's transaction): at or after the cut-off on a working day
        (``force``: now, whatever the hour), one per carrier account with parcels waiting uncovered."""
        here = local_now(self.settings, now)
        cutoff = time.fromisoformat(self.settings.pickup_cutoff)
        if not force and (here.weekday() >= 5 or here.time() < cutoff):
            return []
        day = here.date()
        planned = []
        for name in self.carriers():
            if only is not None and name != only:
                continue
            waiting = select(Shipment.id).where(Shipment.carrier == name, Shipment.state.in_(WAITING),
                                                Shipment.pickup_id.is_(None))
            if session.execute(waiting.limit(1)).first() is None:
                continue
            count = session.execute(select(func.count()).select_from(Pickup)
                                    .where(Pickup.carrier == name, Pickup.day == day)).scalar() or 0
            reference = f"PK-{day:%Y%m%d}-{count + 1}-{name}"[:64]
            stmt = insert_for(session)(Pickup).values(
                carrier=name, day=day, reference=reference, state="booking", handles={}, parcels=0,
                created_at=now, updated_at=now).on_conflict_do_nothing()
            pickup_id = session.execute(stmt.returning(Pickup.id)).scalar()
            if pickup_id is None:  # a live pickup for the day exists (another process, or earlier)
                continue
            # the parcels this pickup covers, fixed now: a retry of its booking asks for the same ones
            covered = session.execute(update(Shipment).where(Shipment.id.in_(waiting.scalar_subquery()))
                                      .values(pickup_id=pickup_id, updated_at=now)).rowcount
            session.execute(update(Pickup).where(Pickup.id == pickup_id).values(parcels=covered))
            queue.enqueue(session, BOOK_PICKUP, {"pickup_id": pickup_id}, key=f"pickup-book:{reference}",
                          connector=name)
            planned.append(pickup_id)
        return planned

    def handle_pickups(self, ctx: JobContext) -> dict[str, Any]:
        with ctx.session() as session:
            planned = self.plan(session, utcnow(), force=bool(ctx.payload.get("force")),
                                only=ctx.payload.get("carrier"))
        return {"pickups": planned}

    def _sender(self, shipments: list[Shipment]) -> SenderSettings:
        name = Counter(s.sender for s in shipments).most_common(1)[0][0] if shipments \
            else self.settings.default_sender
        if name is None or name not in self.settings.senders:
            raise PermanentError("no sender to collect from: set [shipping] default_sender")
        return self.settings.senders[name]

    def handle_book_pickup(self, ctx: JobContext) -> dict[str, Any]:
        with ctx.session() as session:
            pickup = session.get(Pickup, ctx.payload["pickup_id"])
            if pickup is None:
                raise PermanentError(f"pickup {ctx.payload['pickup_id']} does not exist")
            if pickup.state != "booking":
                return {"pickup": pickup.id, "recorded_already": pickup.state}
            shipments = list(session.execute(select(Shipment).where(Shipment.pickup_id == pickup.id)
                                             .order_by(Shipment.id)).scalars())
            bookings: list[Booking] = []
            weight = Decimal("0")
            parcels = 0
            for shipment in shipments:
                rows = list(session.execute(select(ShipmentParcel).where(ShipmentParcel.shipment_id == shipment.id)
                                            .order_by(ShipmentParcel.seq)).scalars())
                bookings.append(booking_of(shipment, rows))
                weight += sum((Decimal(r.weight_kg) for r in rows), Decimal("0"))
                parcels += len(rows)
            address = sender_address(self._sender(shipments))
            name, day, reference = pickup.carrier, pickup.day, pickup.reference
        carrier = self.connectors.get(name)
        windows = [w for w in carrier.pickup_windows(address, day, bookings) if self._still_open(w)]
        if not windows:
            with ctx.session() as session:
                self._fail(session, ctx.payload["pickup_id"], f"{name} offers no pickup window on {day} any more")
            return {"pickup": reference, "failed": "no window"}
        request = PickupRequest(reference=reference, address=address, window=windows[0], bookings=bookings,
                                parcels=parcels, weight_kg=weight)
        try:
            booked = carrier.book_pickup(request)
        except PermanentError as exc:
            with ctx.session() as session:
                self._fail(session, ctx.payload["pickup_id"], f"{name} refused the pickup: {exc}")
            return {"pickup": reference, "failed": str(exc)}
        with ctx.session() as session:
            pickup = session.get(Pickup, ctx.payload["pickup_id"])
            assert pickup is not None
            if pickup.state != "booking":
                return {"pickup": pickup.id, "recorded_already": pickup.state}
            pickup.state, pickup.external_id, pickup.handles = "booked", booked.external_id, dict(booked.handles)
            pickup.window_start, pickup.window_end = _hhmm(booked.window.start), _hhmm(booked.window.end)
            pickup.updated_at = utcnow()
        return {"pickup": reference, "external_id": booked.external_id,
                "window": f"{_hhmm(booked.window.start)}-{_hhmm(booked.window.end)}"}

    def _still_open(self, window: PickupWindow) -> bool:
        here = local_now(self.settings, utcnow())
        return window.day > here.date() or (window.day == here.date() and window.end > here.time())

    @staticmethod
    def _fail(session: Session, pickup_id: int, problem: str) -> None:
        """The pickup failed: its parcels are free for the next one."""
        now = utcnow()
        session.execute(update(Pickup).where(Pickup.id == pickup_id, Pickup.state == "booking")
                        .values(state="failed", problem=problem, updated_at=now))
        session.execute(update(Shipment).where(Shipment.pickup_id == pickup_id).values(pickup_id=None,
                                                                                        updated_at=now))

    def handle_cancel_pickup(self, ctx: JobContext) -> dict[str, Any]:
        with ctx.session() as session:
            pickup = session.get(Pickup, ctx.payload["pickup_id"])
            if pickup is None:
                raise PermanentError(f"pickup {ctx.payload['pickup_id']} does not exist")
            if pickup.state in ("cancelled", "failed"):
                return {"pickup": pickup.id, "recorded_already": pickup.state}
            if pickup.state != "booked":
                raise PermanentError(f"pickup {pickup.id} is {pickup.state}: wait for its booking to finish")
            booked = BookedPickup(reference=pickup.reference, external_id=pickup.external_id or "",
                                  window=PickupWindow(day=pickup.day, start=time.fromisoformat(pickup.window_start or
                                                                                               "00:00"),
                                                      end=time.fromisoformat(pickup.window_end or "23:59")),
                                  handles=dict(pickup.handles or {}))
            name = pickup.carrier
        try:
            self.connectors.get(name).cancel_pickup(booked)
        except CancelRefused as exc:
            with ctx.session() as session:
                session.execute(update(Pickup).where(Pickup.id == ctx.payload["pickup_id"])
                                .values(problem=f"{name} refused to cancel: {exc}", updated_at=utcnow()))
            return {"pickup": booked.reference, "refused": str(exc)}
        now = utcnow()
        with ctx.session() as session:
            session.execute(update(Pickup).where(Pickup.id == ctx.payload["pickup_id"])
                            .values(state="cancelled", updated_at=now))
            session.execute(update(Shipment).where(Shipment.pickup_id == ctx.payload["pickup_id"],
                                                   Shipment.state.in_(WAITING)).values(pickup_id=None, updated_at=now))
        return {"pickup": booked.reference, "cancelled": True}

