"""Job handlers by kind, and the context a handler runs with."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError
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
# jobs of one kind claimed together, run as one: a result or the exception per job, in the jobs' order
ManyHandler = Callable[[list[JobContext]], list[Any]]


class SchedulePayload(BaseModel):
    """What a ``[schedule.NAME] payload`` may hold for a periodic kind: nothing unless a subclass says."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class ChannelPayload(SchedulePayload):
    channel: str = Field(min_length=1)


# a kind the hub enqueues itself, never on a schedule (a push, a booking of one order)
NOT_PERIODIC = "not periodic"


class HandlerRegistry:
    def __init__(self) -> None:
        self._handlers: dict[str, Handler] = {}
        self._many: dict[str, ManyHandler] = {}
        self._payloads: dict[str, type[SchedulePayload] | str] = {}
        self._warmups: list[Callable[[Engine], None]] = []

    def on_start(self, warm: Callable[[Engine], None]) -> None:
        """Work a daemon does before it says it is ready (building what its first jobs need)."""
        self._warmups.append(warm)

    def warm(self, engine: Engine) -> None:
        for warm in self._warmups:
            warm(engine)

    def register(self, kind: str, handler: Handler,
                 payload: type[SchedulePayload] | str | None = None, *, many: ManyHandler | None = None) -> None:
        """``payload``: the schedule payload model of a periodic kind, NOT_PERIODIC, or None (unchecked:
        a connector's own kinds). ``many``: the kind's jobs a worker claimed together, run at once (one
        transaction for the lot instead of one each); ``handler`` still runs a job alone, and runs each of
        a lot whose ``many`` raised."""
        if kind in self._handlers and self._handlers[kind] is not handler:
            raise ValueError(f"a handler for job kind {kind!r} is already registered")
        self._handlers[kind] = handler
        if many is not None:
            self._many[kind] = many
        if payload is not None:
            self._payloads[kind] = payload

    def schedule_problems(self, kind: str, payload: dict[str, Any]) -> list[tuple[str, str]]:
        """(key, why) for a schedule entry of this kind with this payload; [] when it is fine."""
        model = self._payloads.get(kind)
        if model == NOT_PERIODIC:
            periodic = ", ".join(sorted(k for k, m in self._payloads.items() if m != NOT_PERIODIC))
            return [("job", f"the hub enqueues {kind} itself; it cannot be scheduled (periodic kinds: {periodic})")]
        if not isinstance(model, type):
            return []
        try:
            model.model_validate(payload)
        except ValidationError as exc:
            out = []
            for err in exc.errors():
                key = ".".join(["payload", *(str(p) for p in err["loc"])])
                why = {"extra_forbidden": "unknown key", "missing": "missing (required)"}.get(
                    err["type"], str(err["msg"]).removeprefix("Value error, "))
                out.append((key, why))
            return out
        return []

    def handler(self, kind: str) -> Callable[[Handler], Handler]:
        def decorate(fn: Handler) -> Handler:
            self.register(kind, fn)
            return fn

        return decorate

    def get(self, kind: str) -> Handler | None:
        return self._handlers.get(kind)

    def many(self, kind: str) -> ManyHandler | None:
        return self._many.get(kind)

    def kinds(self) -> frozenset[str]:
        return frozenset(self._handlers)

    def __contains__(self, kind: object) -> bool:
        return kind in self._handlers
