"""`hub demo` hook: the KSeF simulator served on loopback, reached by the connector over real HTTP (its
``api_url`` points there), exactly as the hub builds it; the demo's seller holds the simulator's token."""

from __future__ import annotations

from typing import Any

from connectors.ksef.simulator import DEFAULT_NIP, DEFAULT_TOKEN, KsefSimulator


class KsefDemo:
    name = "ksef"
    label = "KSeF (simulator)"
    seller_nip = DEFAULT_NIP

    def __init__(self) -> None:
        self.sim = KsefSimulator()

    def start(self) -> dict[str, Any]:
        url = self.sim.serve()
        # the simulator's own limits: the demo does not wait out KSeF's production quota
        return {"api_url": url + "/v2", "nip": DEFAULT_NIP, "token": DEFAULT_TOKEN, "rate_limit_per_minute": 6000}

    def accepted(self) -> int:
        return len(self.sim.accepted)

    def requests(self) -> int:
        return len(self.sim.log)

    def stop(self) -> None:
        self.sim.stop()
