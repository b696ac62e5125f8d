"""Fixtures: a seeded ShipX simulator, and carriers wired to it."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from inpost_testkit import Wired, wire

from connectors.carriers.inpost.simulator import ShipXSimulator


@pytest.fixture
def sim() -> Iterator[ShipXSimulator]:
    simulator = ShipXSimulator(seed=20240611)
    yield simulator
    simulator.stop()


@pytest.fixture
def wired(sim: ShipXSimulator) -> Callable[..., Wired]:
    def make(**options: Any) -> Wired:
        return wire(sim, **options)

    return make
