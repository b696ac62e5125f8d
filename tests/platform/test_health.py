"""Connector health under load: a success is written at most every few seconds, a failure at once."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import Engine, select

from hub.kernel.clock import utcnow
from hub.platform.db import transaction
from hub.platform.health import OK_FRESH, note_ok, set_health
from hub.platform.schema import ConnectorHealth


def health(engine: Engine, name: str) -> tuple[str, object, object] | None:
    with transaction(engine) as s:
        row = s.execute(select(ConnectorHealth.status, ConnectorHealth.last_ok_at, ConnectorHealth.updated_at)
                        .where(ConnectorHealth.name == name)).one_or_none()
    return None if row is None else tuple(row)


def test_a_success_is_written_when_new_stale_or_after_a_failure_and_not_again_while_fresh(engine: Engine) -> None:
    t0 = utcnow()
    with transaction(engine) as s:
        note_ok(s, "inpost", t0)  # no row yet: inserted
    assert health(engine, "inpost") == ("ok", t0, t0)
    with transaction(engine) as s:
        note_ok(s, "inpost", t0 + timedelta(seconds=1))  # fresh: left alone (no lock taken)
    assert health(engine, "inpost") == ("ok", t0, t0)
    later = t0 + OK_FRESH + timedelta(seconds=1)
    with transaction(engine) as s:
        note_ok(s, "inpost", later)  # stale: written
    assert health(engine, "inpost") == ("ok", later, later)
    failed = later + timedelta(seconds=1)
    with transaction(engine) as s:
        set_health(s, "inpost", "failing", "503", failed)
        note_ok(s, "inpost", failed + timedelta(seconds=1))  # right after a failure: ok at once
    assert health(engine, "inpost") == ("ok", failed + timedelta(seconds=1), failed + timedelta(seconds=1))
    with transaction(engine) as s:
        note_ok(s, "dpd", t0)  # another connector has its own row
    assert health(engine, "dpd") == ("ok", t0, t0)
