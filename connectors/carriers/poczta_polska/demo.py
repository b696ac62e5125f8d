"""`hub demo` hook: the EN simulator served on loopback, reached by the connector over real HTTP (its
``service_url`` points there), exactly as the hub builds it (no test adapter).

EN WebAPI has no tracking call (Poczta Polska's tracking is the separate Sledzenie service, whose WSDL is
not vendored), so the connector does not track and ``deliver`` has nothing to move."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from connectors.carriers.poczta_polska.carrier import WARSAW
from connectors.carriers.poczta_polska.simulator import ENSimulator

LOGIN = "en-demo"
PASSWORD = "en-demo-Haslo-1"  # a demo value; distinctive, since the log redactor masks every secret's value
URZAD = 263165  # the posting office the day's buffer is created for (getUrzedyNadania)


class PocztaPolskaDemo:
    name = "poczta-polska"
    label = "Poczta Polska Elektroniczny Nadawca (simulator)"
    services = {"courier": "pocztex_kurier", "locker": ""}
    tracks = False
    note = "no tracking: EN WebAPI has none (the Sledzenie service's WSDL is not vendored)"

    def __init__(self) -> None:
        self.sim: ENSimulator | None = None

    def start(self, latency: float = 0.0) -> dict[str, Any]:
        if self.sim is not None:
            raise RuntimeError("the EN simulator is already serving")
        # EN's date is the Warsaw date: the carrier creates today's buffer and orders couriers from it on
        self.sim = ENSimulator(LOGIN, PASSWORD, today=datetime.now(WARSAW).date(), urzedy=[(URZAD, "UP Poznań 1")])
        url = self.sim.serve(latency=latency)
        # the demo books its pickup "now", whatever the day and hour (the defaults: 09:00-16:00, Monday to Friday)
        return {"service_url": url, "login": LOGIN, "password": PASSWORD, "urzad_nadania": URZAD,
                "pickup_windows": ["00:00-23:59"], "pickup_weekdays": [1, 2, 3, 4, 5, 6, 7]}

    def deliver(self, tracking_number: str) -> None:
        """No tracking (see ``note``): nothing to report delivered."""

    def bookings(self) -> int:
        return len(self.sim.parcels()) if self.sim is not None else 0

    def pickups(self) -> int:
        return len(self.sim.courier_orders) if self.sim is not None else 0

    def requests(self) -> int:
        return len(self.sim.log) if self.sim is not None else 0

    def stop(self) -> None:
        if self.sim is not None:
            self.sim.stop()
