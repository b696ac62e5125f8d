"""Job handlers by kind, and the context a handler runs with."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.orm import Session

from hub.jobs.queue import ClaimedJob
from hub.platform.db import transaction
from hub.platform.ratelimit import Throttle


@dataclass
class JobContext:
    job: ClaimedJob
    engine: Engine
    log: Any
    throttles: dict[str, Throttle] = field(default_factory=dict)
    stopping: threading.Event = field(default_factory=threading.Event)

    @property
    def payload(self) -> dict[str, Any]:
        return self.job.payload

    @property
    def attempt(self) -> int:
        return self.job.attempts

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A transaction for the handler's own writes (and any jobs it enqueues)."""
        with transaction(self.engine) as session:
            yield session

    def throttle(self, connector: str | None = None) -> Throttle | None:
        name = connector or self.job.connector
        return self.throttles.get(name) if name else None


Handler = Callable[[JobContext], Any]


class HandlerRegistry:
    def __init__(self) -> None:
        self._handlers: dict[str, Handler] = {}

    def register(self, kind: str, handler: Handler) -> None:
        if kind in self._handlers and self._handlers[kind] is not handler:
            raise ValueError(f"a handler for job kind {kind!r} is already registered")
        self._handlers[kind] = handler

    def handler(self, kind: str) -> Callable[[Handler], Handler]:
        def decorate(fn: Handler) -> Handler:
            self.register(kind, fn)
            return fn

        return decorate

    def get(self, kind: str) -> Handler | None:
        return self._handlers.get(kind)

    def kinds(self) -> frozenset[str]:
        return frozenset(self._handlers)

    def __contains__(self, kind: object) -> bool:
        return kind in self._handlers
