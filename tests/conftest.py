"""Fixtures: every database test runs on SQLite and on a real PostgreSQL server.

The PostgreSQL server is started once per test process from the machine's
binaries (tests.support.pgtemp). If it cannot start, every PostgreSQL test fails with
the reason; nothing is skipped.
"""

from __future__ import annotations

import itertools
import os
import sys
from collections.abc import Iterator
from pathlib import Path

# pytest puts tests/ first on sys.path, where tests/connectors/ would pass for the `connectors`
# package (as a namespace package); the repository root goes before it.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import pytest
from sqlalchemy import Engine

from hub.platform import db
from tests.support import pgtemp, test_connector
from tests.support.fake_carrier import shipping_fakes  # noqa: F401  (fixture: the fake carrier kinds)
from tests.support.fake_connectors import fakes, order_fakes  # noqa: F401  (fixtures: the fake connector kinds)

test_connector.register()  # the daemon's tests use the test-shop kind

BACKENDS = ["sqlite", "postgresql"]
_counter = itertools.count()


@pytest.fixture(scope="session")
def pg_server() -> Iterator[pgtemp.PgServer]:
    try:
        server = pgtemp.start()
    except pgtemp.PgStartError as exc:
        pytest.fail(f"PostgreSQL could not start, so the PostgreSQL half of the suite cannot run: {exc}",
                    pytrace=False)
    try:
        url = server.create_database("hub_template")
        engine = db.make_engine(url)
        db.upgrade(engine)
        engine.dispose()
        yield server
    finally:
        server.stop()


def _pg_database(server: pgtemp.PgServer, template: str) -> tuple[str, str]:
    name = f"t_{os.getpid()}_{next(_counter)}"
    return name, server.create_database(name, template=template)


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    if request.param == "postgresql":
        request.applymarker(pytest.mark.postgres)
    return request.param


@pytest.fixture
def db_url(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A migrated, empty hub database."""
    if backend == "sqlite":
        url = f"sqlite:///{tmp_path / 'hub.db'}"
        engine = db.make_engine(url)
        db.upgrade(engine)
        engine.dispose()
        yield url
        return
    server = request.getfixturevalue("pg_server")
    name, url = _pg_database(server, "hub_template")
    yield url
    server.drop_database(name)


@pytest.fixture
def empty_db_url(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A database without the hub schema."""
    if backend == "sqlite":
        yield f"sqlite:///{tmp_path / 'empty.db'}"
        return
    server = request.getfixturevalue("pg_server")
    name, url = _pg_database(server, "template1")
    yield url
    server.drop_database(name)


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    engine = db.make_engine(db_url)
    yield engine
    engine.dispose()


@pytest.fixture
def pg_url(request: pytest.FixtureRequest) -> Iterator[str]:
    """A migrated PostgreSQL database, for the tests that only make sense there."""
    server = request.getfixturevalue("pg_server")
    name, url = _pg_database(server, "hub_template")
    yield url
    server.drop_database(name)
