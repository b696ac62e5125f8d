"""Test kit for the NBP connector: the rates wired to a simulator (or a mock) the way the runtime wires them
(the shared HTTP layer, a throttle that never sleeps, retries without waiting)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import httpx
import structlog
from tenacity import wait_none

from connectors.nbp import NbpOptions, build_rates
from connectors.nbp.rates import NbpRates
from connectors.nbp.simulator import NbpSimulator
from hub.platform.ratelimit import LocalRateLimiter, Throttle

API_URL = "https://nbp.test/api"
NOW = datetime(2026, 11, 2, 13, 0, tzinfo=UTC)  # a Monday afternoon: every day the tests ask for is past


def throttle() -> Throttle:
    return Throttle(LocalRateLimiter(), "nbp:test", 60_000.0, 1000.0, sleep=lambda s: None)


def rates_on(transport: httpx.BaseTransport | None, *, clock: Callable[[], datetime] | None = None,
             **options: Any) -> NbpRates:
    validated = NbpOptions.model_validate({"api_url": API_URL, **options})
    services = {"throttle": throttle(), "transport": transport, "log": structlog.get_logger()}
    return build_rates("nbp-test", validated, services, retry_wait=wait_none(), sleep=lambda s: None,
                       clock=clock or (lambda: NOW))


def wired(sim: NbpSimulator, **options: Any) -> NbpRates:
    """The port on the simulator in-process, on the simulator's clock."""
    return rates_on(sim.transport(), clock=sim.now, **options)
