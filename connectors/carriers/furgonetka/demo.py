"""`hub demo` hook: the Furgonetka simulator on loopback, one broker account booking DPD and InPost.

The demo books Allegro's "Kurier DPD" orders through Furgonetka as DPD packages (service ``dpd``); the
locker service is InPost (``inpost``), whose shipments name the locker as their pickup point. The
simulator proposes pickups every day of the week, 08:00-16:00 and 16:00-23:59, so the demo's forced
pickup finds a window still open whatever the hour (the real Furgonetka offers working days only).
"""

from __future__ import annotations

import threading
import time
from datetime import datetime
from typing import Any

from connectors.carriers.furgonetka.simulator import FurgonetkaSimulator

CLIENT_ID, CLIENT_SECRET = "demo-app", "demo-app-secret"
USERNAME, PASSWORD = "demo@sklep.example.pl", "demo-haslo"
PICKUP_HOURS = (("08:00", "16:00"), ("16:00", "23:59"))


class _Clock:
    """The wall clock, never earlier than ``floor``: deliver() writes a package's events whole seconds
    apart (Furgonetka's times are to the second, and two events in one second would have no order)."""

    def __init__(self) -> None:
        self.floor = 0.0
        self._lock = threading.Lock()

    def __call__(self) -> float:
        with self._lock:
            return max(time.time(), self.floor)

    def after(self, moment: float) -> None:
        """The next reading is at least one second after ``moment``."""
        with self._lock:
            self.floor = max(self.floor, moment + 1.0)


class FurgonetkaDemo:
    name = "furgonetka"
    label = "Furgonetka broker (simulator)"
    services = {"courier": "dpd", "locker": "inpost"}
    tracks = True
    note = "a broker: DPD and InPost packages on one Furgonetka account; InPost lockers need a point id"

    def __init__(self) -> None:
        self.clock = _Clock()
        self.sim = FurgonetkaSimulator(CLIENT_ID, CLIENT_SECRET, USERNAME, PASSWORD, seed=2026, clock=self.clock)
        self.sim.pickup_hours = PICKUP_HOURS
        self.sim.weekend_pickups = True

    def start(self, latency: float = 0.0) -> dict[str, Any]:
        url = self.sim.serve(latency=latency)
        return {
            "api_url": url, "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET, "username": USERNAME,
            "password": PASSWORD, "services": [self.services["courier"], self.services["locker"]],
            # the simulator confirms a command on its second poll: ask again soon
            "confirm_interval": "200ms",
        }

    def _package_of(self, tracking_number: str) -> int | None:
        with self.sim._lock:
            for pid, package in self.sim.packages.items():
                if any(p.get("package_no") == tracking_number for p in package["parcels"]):
                    return pid
        return None

    def deliver(self, tracking_number: str) -> None:
        """The courier collects the package (in transit), then delivers it; a package delivered already
        (another parcel's number of it) stays as it is."""
        pid = self._package_of(tracking_number)
        if pid is None:
            raise KeyError(f"the Furgonetka simulator booked no parcel {tracking_number}")
        for state, status in (("collected", "Przesyłka odebrana przez kuriera"),
                              ("delivered", "Przesyłka doręczona")):
            with self.sim._lock:
                package = self.sim.packages[pid]
                if package["state"] in ("delivered", "canceled") or (
                        state == "collected" and package["state"] == "collected"):
                    continue
                events = self.sim.tracking.get(pid)
                if events:
                    self.clock.after(datetime.fromisoformat(events[-1]["datetime"]).timestamp())
                self.sim.advance_package(pid, state, status)

    def bookings(self) -> int:
        """Packages ordered (drafts never ordered are not bookings)."""
        with self.sim._lock:
            return sum(1 for p in self.sim.packages.values() if p.get("datetime_order"))

    def pickups(self) -> int:
        with self.sim._lock:
            return len({p["pickup_number"] for p in self.sim.packages.values() if p.get("pickup_number")})

    def requests(self) -> int:
        return len(self.sim.log)

    def stop(self) -> None:
        self.sim.stop()
