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


def test_a_process_sends_nothing_while_its_own_ok_is_fresh(engine: Engine) -> None:
    """Every settle of a busy worker notes its connector ok: within OK_FRESH of its own write a process
    sends no statement at all (bench/labels: two statements a settle were a fifteenth of a booking's CPU).
    Another process's failure is corrected once that is over."""
    from sqlalchemy import event, update

    t0 = utcnow()
    with transaction(engine) as s:
        note_ok(s, "furgonetka", t0)
    sent: list[str] = []

    def count(conn: object, cursor: object, statement: str, *rest: object) -> None:
        sent.append(statement)

    event.listen(engine, "before_cursor_execute", count)
    try:
        with transaction(engine) as s:
            note_ok(s, "furgonetka", t0 + timedelta(seconds=1))
        assert not [q for q in sent if "connector_health" in q]
        with transaction(engine) as s:  # another process's worker saw a failure
            s.execute(update(ConnectorHealth).where(ConnectorHealth.name == "furgonetka").values(status="failing"))
            note_ok(s, "furgonetka", t0 + timedelta(seconds=2))
        assert health(engine, "furgonetka")[0] == "failing"  # type: ignore[index]
        with transaction(engine) as s:
            note_ok(s, "furgonetka", t0 + OK_FRESH + timedelta(seconds=1))
        assert health(engine, "furgonetka")[0] == "ok"  # type: ignore[index]
    finally:
        event.remove(engine, "before_cursor_execute", count)
