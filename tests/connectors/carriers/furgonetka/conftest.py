"""Fixtures: a seeded Furgonetka simulator on a hand-moved clock, and carriers wired to it in-process
the way the runtime wires them (throttle, transport, log), retrying without sleeping."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from furgonetka_testkit import Clock, Recording, Sleeps, Wired, options, services
from tenacity import wait_none

from connectors.carriers.furgonetka import build_carrier
from connectors.carriers.furgonetka.simulator import FurgonetkaSimulator
from hub.platform.ratelimit import LocalRateLimiter, Throttle


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def sim(clock: Clock) -> FurgonetkaSimulator:
    from furgonetka_testkit import CLIENT_ID, CLIENT_SECRET, PASSWORD, USERNAME

    return FurgonetkaSimulator(CLIENT_ID, CLIENT_SECRET, USERNAME, PASSWORD, seed=20260528, clock=clock)


@pytest.fixture
def wire(sim: FurgonetkaSimulator, clock: Clock) -> Callable[..., Wired]:
    def make(**more: object) -> Wired:
        """``more``: connector options (e.g. ``confirm_polls=2``); each call is a fresh process."""
        sleeps = Sleeps()
        recording = Recording(sim.transport())
        throttle = Throttle(LocalRateLimiter(), "furgonetka:test", per_minute=60000.0, burst=1000.0, sleep=sleeps)
        carrier = build_carrier("furgonetka", options(**more), services(recording, throttle), sleep=sleeps,
                                retry_wait=wait_none(), clock=clock)
        return Wired(carrier, sim, sleeps, recording.sent)

    return make
