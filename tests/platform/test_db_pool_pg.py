"""PostgreSQL's pool: a connection that sat idle is pinged before use and replaced if its server side
is gone; one used a moment ago is not pinged (a round trip before every transaction of a busy worker),
and if its server side died meanwhile the pool recovers after the one statement that finds out."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import Engine
from sqlalchemy.exc import DBAPIError

from hub.platform import db


@pytest.fixture
def pg_engine(pg_url: str) -> Iterator[Engine]:
    engine = db.make_engine(pg_url)
    yield engine
    engine.dispose()


def _backend_pid(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.exec_driver_sql("SELECT pg_backend_pid()").scalar_one())


def _terminate(url: str, pid: int) -> None:
    other = db.make_engine(url)
    try:
        with other.connect() as conn:
            assert conn.exec_driver_sql(f"SELECT pg_terminate_backend({pid})").scalar_one() is True
    finally:
        other.dispose()


def _counting_pings(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    pings: list[int] = []
    real = engine.dialect.do_ping

    def ping(dbapi_conn: Any) -> bool:
        pings.append(1)
        return real(dbapi_conn)

    monkeypatch.setattr(engine.dialect, "do_ping", ping)
    return pings


def test_a_connection_used_a_moment_ago_is_not_pinged(pg_engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    pings = _counting_pings(pg_engine, monkeypatch)
    pids = {_backend_pid(pg_engine) for _ in range(20)}
    assert len(pids) == 1 and pings == []


def test_an_idle_connection_whose_server_side_is_gone_is_replaced_before_use(
        pg_url: str, pg_engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    pings = _counting_pings(pg_engine, monkeypatch)
    first = _backend_pid(pg_engine)
    _terminate(pg_url, first)
    monkeypatch.setattr(db, "PING_IDLE_AFTER", 0.0)  # it has been idle long enough
    second = _backend_pid(pg_engine)  # no error reaches the caller
    assert second != first and pings == [1]


def test_a_busy_connection_whose_server_side_died_fails_once_then_the_pool_recovers(
        pg_url: str, pg_engine: Engine) -> None:
    first = _backend_pid(pg_engine)
    _terminate(pg_url, first)
    with pytest.raises(DBAPIError) as failed:  # the job queue retries the job this statement belonged to
        _backend_pid(pg_engine)
    assert failed.value.connection_invalidated
    assert _backend_pid(pg_engine) != first
