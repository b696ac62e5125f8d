"""Fixtures: a DPD simulator whose every answer is checked against the vendored XSD when the test ends,
and a migrated SQLite database for the connector's memory (the pickup journal)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from dpd_testkit import Checks, check_answer
from sqlalchemy import Engine

from connectors.carriers.dpd.simulator import DpdSimulator
from hub.platform import db
from hub.platform.memory import Memory

# answers the simulator replaced on purpose (not DPD's shapes): not checked against the XSD
_REPLACED = frozenset({"503", "502-after-apply", "malformed", "entity-bomb", "external-entity", "timeout"})


@pytest.fixture
def checks() -> Checks:
    return Checks()


@pytest.fixture
def sim(checks: Checks) -> Iterator[DpdSimulator]:
    simulator = DpdSimulator(seed=20240611)
    yield simulator
    for number, exchange in enumerate(simulator.log):
        if exchange.status == 0 or exchange.fault in _REPLACED or not exchange.response:
            continue
        where = f"answer {number} ({exchange.operation}, HTTP {exchange.status})"
        if exchange.status in (404, 405):
            continue
        check_answer(exchange.response, exchange.status, where)
        if not checks.client_faults_ok:
            assert b"<faultcode>S:Client</faultcode>" not in exchange.response, (
                f"{where}: the connector sent a request the simulator refused: {exchange.response[:400]!r}")


@pytest.fixture(scope="session")
def dpd_engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    """One migrated SQLite database for the session; each test's memory has its own connector name."""
    path: Path = tmp_path_factory.mktemp("dpd") / "hub.db"
    engine = db.make_engine(f"sqlite:///{path}")
    db.upgrade(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def memory(dpd_engine: Engine) -> Memory:
    return Memory(dpd_engine, f"dpd-{uuid.uuid4().hex[:8]}")
