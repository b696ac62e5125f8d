"""`hub demo` hook: the ShipX simulator served on loopback, reached by the connector over real HTTP (its
``api_url`` points there), exactly as the hub builds it.

The simulator runs on the wall clock, as ShipX does: the connector finds a shipment again by its reference
among those created in the last ``lookup_days`` (by its own clock), so a retried booking goes on with the
first shipment instead of booking a second one. ``deliver`` writes a parcel's in-transit and delivered
events after its last one.

The connector's options make the demo's forced pickup find a window at any hour on any day (ShipX has no
window API: the window is configuration), and fill in the declared value that ShipX requires for
inpost_courier_standard when an order carries none (the hub sends insurance only for cash on delivery).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from connectors.carriers.inpost.simulator import ShipXSimulator

TOKEN = "inpost-demo-shipx-token"  # a demo value; distinctive, since the log redactor masks every secret's value
ORGANIZATION_ID = 4321
TICK = timedelta(milliseconds=1)  # ShipX's times are to the millisecond


class _WallClockShipX(ShipXSimulator):
    """ShipX on the wall clock, never earlier than what ``clock`` was last set to (``advance`` and
    ``deliver`` move it on)."""

    _floor: datetime = datetime.min.replace(tzinfo=UTC)

    @property
    def clock(self) -> datetime:
        return max(datetime.now(UTC), self._floor)

    @clock.setter
    def clock(self, value: datetime) -> None:
        self._floor = value


class InPostDemo:
    name = "inpost"
    label = "InPost ShipX (simulator)"
    services = {"courier": "inpost_courier_standard", "locker": "inpost_locker_standard"}
    tracks = True
    note = ("courier parcels need length, width and height; lockers need the buyer's locker id, phone "
            "and e-mail")

    def __init__(self) -> None:
        self.sim = _WallClockShipX(TOKEN, ORGANIZATION_ID, seed=2026)

    def start(self, latency: float = 0.0) -> dict[str, Any]:
        url = self.sim.serve(latency=latency)
        return {
            "api_url": url, "token": TOKEN, "organization_id": ORGANIZATION_ID,
            # ShipX requires a declared value for inpost_courier_standard; the hub sends one only with COD
            "default_insurance": 500,
            # the simulator buys the offer by the first read: ask again soon
            "confirm_poll_interval": "200ms",
            # the demo books its pickup "now", whatever the day and hour (the defaults: Monday to Friday,
            # 10:00-16:00, nothing the same day after 12:00, none on Polish public holidays)
            "pickup_weekdays": ["mon", "tue", "wed", "thu", "fri", "sat", "sun"],
            "pickup_window_start": "08:00:00", "pickup_window_end": "23:59:00",
            "pickup_same_day_cutoff": "23:59:00", "pickup_skip_holidays": False,
        }

    def deliver(self, tracking_number: str) -> None:
        """The courier collects the parcel (taken_by_courier, in transit), then delivers it; a parcel
        delivered already stays as it is."""
        with self.sim._lock:
            details = self.sim.tracking.get(tracking_number)
            if details is None:
                raise KeyError(f"the ShipX simulator booked no parcel {tracking_number}")
            for status in ("taken_by_courier", "delivered"):
                latest = details[0]
                if latest["status"] == "delivered" or latest["status"] == status:
                    continue
                # strictly after the parcel's last event, so the events keep their order
                self.sim.clock = datetime.fromisoformat(latest["datetime"]) + TICK
                self.sim.add_tracking(tracking_number, status)

    def bookings(self) -> int:
        with self.sim._lock:
            return len(self.sim.shipments)

    def pickups(self) -> int:
        with self.sim._lock:
            return len(self.sim.dispatch_orders)

    def requests(self) -> int:
        return len(self.sim.log)

    def stop(self) -> None:
        self.sim.stop()
