"""OAuth token pairs per connector account, refreshed by exactly one caller at a time.

Refresh tokens are single-use at some vendors: two workers refreshing at once,
or a new pair used before it is saved, locks the seller out. ``refresh`` takes
a row lock (PostgreSQL ``FOR UPDATE``; SQLite's BEGIN IMMEDIATE), re-reads the
pair, calls the vendor only if the stored pair still needs it, and commits the
new pair before anyone uses it.

Tokens are stored in the hub's database; protect it like the credentials it holds.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Engine, select, update
from sqlalchemy.orm import Session

from hub.kernel.clock import utcnow
from hub.kernel.errors import LoginNeeded
from hub.platform.db import transaction, upsert
from hub.platform.health import set_health
from hub.platform.schema import ConnectorToken


@dataclass(frozen=True)
class TokenSet:
    access_token: str
    refresh_token: str | None
    expires_at: datetime
    scope: str | None = None

    def expires_within(self, margin: timedelta) -> bool:
        return self.expires_at - margin <= utcnow()

    def __repr__(self) -> str:
        return f"TokenSet(expires_at={self.expires_at.isoformat()}, scope={self.scope!r})"


# What a fresh login sets going, in the transaction that stores it: the job queue registers the
# release of the jobs it held for the login (the platform does not import the queue).
LoginHook = Callable[[Session, str, datetime], None]
_LOGIN_HOOKS: list[LoginHook] = []


def on_login(hook: LoginHook) -> LoginHook:
    _LOGIN_HOOKS.append(hook)
    return hook


class TokenStore:
    def __init__(self, engine: Engine):
        self.engine = engine
        self._locks: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()

    def _lock(self, name: str) -> threading.Lock:
        with self._guard:
            return self._locks.setdefault(name, threading.Lock())

    def load(self, name: str) -> TokenSet | None:
        with transaction(self.engine) as session:
            row = session.get(ConnectorToken, name)
            if row is None or row.status != "ok":
                return None
            return TokenSet(row.access_token, row.refresh_token, row.expires_at, row.scope)

    def status(self, name: str) -> str | None:
        with transaction(self.engine) as session:
            row = session.get(ConnectorToken, name)
            return row.status if row else None

    def save(self, name: str, tokens: TokenSet) -> None:
        """Store a pair from a fresh login; clears login-needed and releases the held jobs."""
        now = utcnow()
        with transaction(self.engine) as session:
            values = {
                "name": name, "access_token": tokens.access_token, "refresh_token": tokens.refresh_token,
                "expires_at": tokens.expires_at, "scope": tokens.scope, "status": "ok", "updated_at": now,
            }
            upsert(session, ConnectorToken, values, ["name"])
            set_health(session, name, "ok", None, now)
            for hook in _LOGIN_HOOKS:
                hook(session, name, now)

    def valid(
        self, name: str, refresher: Callable[[TokenSet], TokenSet], *, margin: timedelta = timedelta(minutes=5)
    ) -> TokenSet:
        """A token pair good for at least ``margin``; refreshes (once, under a lock) when needed.

        ``refresher`` calls the vendor; it raises LoginNeeded when the refresh token is dead.
        """
        current = self.load(name)
        if current is None:
            raise LoginNeeded(f"connector {name} has no valid login: run its login command")
        if not current.expires_within(margin):
            return current
        try:
            return self._refresh(name, refresher, margin)
        except LoginNeeded as exc:
            # in its own transaction: the refresh transaction above was rolled back with the error
            self.mark_login_needed(name, str(exc))
            raise

    def _refresh(self, name: str, refresher: Callable[[TokenSet], TokenSet], margin: timedelta) -> TokenSet:
        with self._lock(name), transaction(self.engine) as session:
            query = select(ConnectorToken).where(ConnectorToken.name == name)
            if self.engine.dialect.name == "postgresql":
                query = query.with_for_update()
            row = session.execute(query).scalar_one_or_none()
            if row is None or row.status != "ok":
                raise LoginNeeded(f"connector {name} has no valid login: run its login command")
            stored = TokenSet(row.access_token, row.refresh_token, row.expires_at, row.scope)
            if not stored.expires_within(margin):
                return stored  # someone else refreshed while we waited for the lock
            fresh = refresher(stored)
            row.access_token = fresh.access_token
            row.refresh_token = fresh.refresh_token
            row.expires_at = fresh.expires_at
            row.scope = fresh.scope
            row.updated_at = utcnow()
            return fresh

    def mark_login_needed(self, name: str, reason: str) -> None:
        now = utcnow()
        with transaction(self.engine) as session:
            session.execute(
                update(ConnectorToken).where(ConnectorToken.name == name).values(status="login-needed", updated_at=now)
            )
            set_health(session, name, "login-needed", reason, now)
