"""Connector health as ``hub status`` shows it: ok, failing, login-needed."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from hub.platform.db import upsert
from hub.platform.logs import redact_text
from hub.platform.schema import ConnectorHealth


def set_health(session: Session, name: str, status: str, error: str | None, now: datetime) -> None:
    """The connector's latest outcome; an error is stored masked like the logs (no secret in `hub status`)."""
    values: dict[str, Any] = {"name": name, "status": status, "updated_at": now}
    if status == "ok":
        values["last_ok_at"] = now
    if error:
        values.update(last_error=redact_text(error), last_error_at=now)
    upsert(session, ConnectorHealth, values, ["name"])
