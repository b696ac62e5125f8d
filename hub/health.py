"""Connector health as ``hub status`` shows it: ok, failing, login-needed."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from hub.db import insert_for
from hub.models import ConnectorHealth


def set_health(session: Session, name: str, status: str, error: str | None, now: datetime) -> None:
    values: dict[str, Any] = {"name": name, "status": status, "updated_at": now}
    if status == "ok":
        values["last_ok_at"] = now
    if error:
        values.update(last_error=error, last_error_at=now)
    stmt = insert_for(session)(ConnectorHealth).values(**values)
    session.execute(stmt.on_conflict_do_update(
        index_elements=["name"], set_={k: v for k, v in values.items() if k != "name"}
    ))
