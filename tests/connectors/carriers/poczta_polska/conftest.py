"""Fixtures: an EN simulator whose every answer is checked against the vendor's schema when the test ends,
and carriers wired to it in-process (a requests adapter), the way the runtime wires a transport."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from poczta_polska_testkit import LOGIN, PASSWORD, TODAY, URZAD, Wired, check_answer, wire

from connectors.carriers.poczta_polska.simulator import ENSimulator

_UNPARSABLE = {"malformed", "entity_bomb", "external_entity", "http_500", "http_502_after_apply"}


@pytest.fixture
def sim() -> Iterator[ENSimulator]:
    en = ENSimulator(LOGIN, PASSWORD, today=TODAY, urzedy=[(URZAD, "UP Kraków 1")])
    yield en
    for exchange in en.log:
        if exchange.fault not in _UNPARSABLE:
            check_answer(exchange)


@pytest.fixture
def wired(sim: ENSimulator) -> Callable[..., Wired]:
    def make(**more: Any) -> Wired:
        return wire(sim, **more)

    return make
