"""Test doubles for HTTP clients: a log that records its events, a throttle that records its waits."""

from __future__ import annotations

from typing import Any

from hub.platform.ratelimit import LocalRateLimiter, Throttle


class RecordingLog:
    def __init__(self) -> None:
        self.events: list[tuple[str, str, dict[str, Any]]] = []

    def warning(self, event: str, **fields: Any) -> None:
        self.events.append(("warning", event, fields))

    def debug(self, event: str, **fields: Any) -> None:
        self.events.append(("debug", event, fields))

    def names(self) -> list[str]:
        return [event for _level, event, _fields in self.events]


class SpyThrottle(Throttle):
    """A real bucket on a fake clock; records the waits it makes callers sleep and the blocks."""

    def __init__(self) -> None:
        self.now = 0.0
        self.slept: list[float] = []
        self.waits = 0
        self.blocks: list[float] = []
        super().__init__(LocalRateLimiter(clock=lambda: self.now), "test:http", 600.0, 10.0, sleep=self.slept.append)

    def wait(self) -> float:
        self.waits += 1
        return super().wait()

    def block(self, seconds: float) -> None:
        self.blocks.append(seconds)
        super().block(seconds)
