"""Connector health as ``hub status`` shows it: ok, failing, login-needed."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import exists, literal, or_, select, update
from sqlalchemy.orm import Session

from hub.platform.db import insert_for, upsert
from hub.platform.logs import redact_text
from hub.platform.schema import ConnectorHealth

# (database, connector) -> when this process last wrote "ok": within OK_FRESH it writes nothing at all
_NOTED: dict[tuple[int, str], datetime] = {}


def set_health(session: Session, name: str, status: str, error: str | None, now: datetime) -> None:
    """The connector's latest outcome; an error is stored masked like the logs (no secret in `hub status`)."""
    if status != "ok":
        _NOTED.pop((id(session.get_bind()), name), None)
    values: dict[str, Any] = {"name": name, "status": status, "updated_at": now}
    if status == "ok":
        values["last_ok_at"] = now
    if error:
        values.update(last_error=redact_text(error), last_error_at=now)
    upsert(session, ConnectorHealth, values, ["name"])


OK_FRESH = timedelta(seconds=5)


def note_ok(session: Session, name: str, now: datetime) -> None:
    """A job of the connector succeeded. Under load every settle says so: the row is written at most
    every ``OK_FRESH`` (at once after a failure), with statements that take no lock on a row already
    fresh, so that the settles of many workers do not queue behind one another for it. Within
    ``OK_FRESH`` of its own last write a process sends no statement (another process's failure is
    then corrected up to ``OK_FRESH`` later)."""
    key = (id(session.get_bind()), name)
    last = _NOTED.get(key)
    if last is not None and timedelta(0) <= now - last < OK_FRESH:
        return
    _NOTED[key] = now
    row = ConnectorHealth.__table__
    stale = or_(row.c.status != "ok", row.c.updated_at < now - OK_FRESH)
    hit = session.execute(update(row).where(row.c.name == name, stale)
                          .values(status="ok", last_ok_at=now, updated_at=now)).rowcount
    if hit:
        return
    missing = select(literal(name), literal("ok"), literal(now, row.c.last_ok_at.type),
                     literal(now, row.c.updated_at.type)).where(~exists().where(row.c.name == name))
    session.execute(insert_for(session)(row).from_select(["name", "status", "last_ok_at", "updated_at"], missing)
                    .on_conflict_do_nothing(index_elements=["name"]))
