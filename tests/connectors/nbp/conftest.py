"""Fixtures: an NBP simulator on a fixed clock."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from connectors.nbp.simulator import NbpSimulator


@pytest.fixture
def sim() -> Iterator[NbpSimulator]:
    simulator = NbpSimulator(seed=2026)
    yield simulator
    simulator.stop()
