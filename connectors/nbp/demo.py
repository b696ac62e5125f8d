"""`hub demo` hook: NBP's exchange-rate API simulated on loopback, on the wall clock."""

from __future__ import annotations

from typing import Any

from connectors.nbp.simulator import NbpSimulator


class NbpDemo:
    name = "nbp"
    label = "NBP exchange rates (simulator)"

    def __init__(self) -> None:
        self.sim = NbpSimulator(now=None)

    def start(self) -> dict[str, Any]:
        return {"api_url": self.sim.serve()}

    def requests(self) -> int:
        return len(self.sim.log)

    def stop(self) -> None:
        self.sim.stop()
