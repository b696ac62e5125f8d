"""Token buckets per connector account, which connectors call before each request.

A bucket is keyed by what the vendor limits (a marketplace that limits per client id makes
every account of one client id share one key). Tokens may go negative: a
caller takes its token at once and sleeps off the debt, which keeps callers in
arrival order. ``block`` pushes the bucket into debt for a vendor's block
window (a 429 with a one-minute ban), so nobody sends until it is over.

On PostgreSQL the bucket is a row updated with one atomic statement on the
database's clock, so it holds across processes and machines; with room to spare a
process takes a block of tokens at once (PostgresRateLimiter). On SQLite (one
machine, usually one process) it lives in memory.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from sqlalchemy import Engine, text

from hub.kernel.errors import Deferred
from hub.platform.config import ConnectorSettings


class RateLimiter(Protocol):
    def reserve(self, key: str, per_second: float, burst: float) -> float:
        """Take one token; return the seconds the caller must wait before sending."""

    def give_back(self, key: str, per_second: float, burst: float) -> None:
        """Return a token taken by ``reserve`` that will not be used (the caller will not wait for it)."""

    def block(self, key: str, seconds: float, per_second: float) -> None:
        """Nobody sends on ``key`` for ``seconds``."""


class LocalRateLimiter:
    def __init__(self, clock: Callable[[], float] = time.monotonic):
        self._clock = clock
        self._lock = threading.Lock()
        self._buckets: dict[str, tuple[float, float]] = {}

    def _refilled(self, key: str, per_second: float, burst: float, now: float) -> float:
        tokens, at = self._buckets.get(key, (burst, now))
        return min(burst, tokens + max(0.0, now - at) * per_second)

    def reserve(self, key: str, per_second: float, burst: float) -> float:
        with self._lock:
            now = self._clock()
            tokens = self._refilled(key, per_second, burst, now) - 1
            self._buckets[key] = (tokens, now)
        return 0.0 if tokens >= 0 else -tokens / per_second

    def give_back(self, key: str, per_second: float, burst: float) -> None:
        with self._lock:
            now = self._clock()
            self._buckets[key] = (min(burst, self._refilled(key, per_second, burst, now) + 1), now)

    def block(self, key: str, seconds: float, per_second: float) -> None:
        with self._lock:
            now = self._clock()
            tokens = self._refilled(key, per_second, float("inf"), now)
            self._buckets[key] = (min(tokens, -seconds * per_second), now)


_PG_RESERVE = text(
    """
    INSERT INTO rate_buckets (key, tokens, updated_at)
    VALUES (:key, :burst - 1, clock_timestamp())
    ON CONFLICT (key) DO UPDATE SET
        tokens = LEAST(
            :burst,
            rate_buckets.tokens
            + GREATEST(0, EXTRACT(EPOCH FROM clock_timestamp() - rate_buckets.updated_at)) * :rate
        ) - 1,
        updated_at = clock_timestamp()
    RETURNING tokens
    """
)

_PG_BLOCK = text(
    """
    INSERT INTO rate_buckets (key, tokens, updated_at)
    VALUES (:key, -(:seconds * :rate), clock_timestamp())
    ON CONFLICT (key) DO UPDATE SET
        tokens = LEAST(
            rate_buckets.tokens
            + GREATEST(0, EXTRACT(EPOCH FROM clock_timestamp() - rate_buckets.updated_at)) * :rate,
            -(:seconds * :rate)
        ),
        updated_at = clock_timestamp()
    """
)


# a block of tokens is taken only while the bucket holds at least twice the block after its refill, so
# near the limit every request still takes its own token (and waits its turn in the shared debt)
_PG_TAKE_BLOCK = text(
    """
    UPDATE rate_buckets SET
        tokens = LEAST(
            :burst,
            tokens + GREATEST(0, EXTRACT(EPOCH FROM clock_timestamp() - updated_at)) * :rate
        ) - :block,
        updated_at = clock_timestamp()
    WHERE key = :key
      AND LEAST(:burst, tokens + GREATEST(0, EXTRACT(EPOCH FROM clock_timestamp() - updated_at)) * :rate)
          >= 2 * :block
    RETURNING tokens
    """
)

_PG_GIVE_BACK = text("UPDATE rate_buckets SET tokens = LEAST(:burst, tokens + 1) WHERE key = :key")

BLOCK_SECONDS = 0.25  # a process's block is at most what the bucket refills in this time, and expires then
MAX_BLOCK = 50


class PostgresRateLimiter:
    """The bucket is a row every process shares. Each call is one statement in autocommit: the row is
    locked only while the server runs it (in a transaction the lock was held until the client's COMMIT
    came, and every request of every worker queued behind a client waiting for its turn on the GIL).
    While the bucket has room to spare, a process takes a block of tokens at once and hands them to its
    threads from memory: one statement per block, not per request. A block's unused tokens lapse after
    ``BLOCK_SECONDS``, so a process never holds more than the bucket refills in that time."""

    def __init__(self, engine: Engine, clock: Callable[[], float] = time.monotonic):
        self._engine = engine.execution_options(isolation_level="AUTOCOMMIT")
        self._clock = clock
        self._lock = threading.Lock()
        self._blocks: dict[str, tuple[int, float]] = {}  # key -> (tokens left, usable until)
        self._no_room_until: dict[str, float] = {}  # key -> no block asked for before then
        self.statements = 0
        self.blocks_taken = 0

    @staticmethod
    def block_size(per_second: float, burst: float) -> int:
        return max(1, min(MAX_BLOCK, int(burst // 4), int(per_second * BLOCK_SECONDS)))

    def reserve(self, key: str, per_second: float, burst: float) -> float:
        block = self.block_size(per_second, burst)
        if block > 1:
            with self._lock:
                left, until = self._blocks.get(key, (0, 0.0))
                now = self._clock()
                if left > 0 and now < until:
                    self._blocks[key] = (left - 1, until)
                    return 0.0
                room = now >= self._no_room_until.get(key, 0.0)
            if room:
                got = self._run(_PG_TAKE_BLOCK, key=key, burst=burst, rate=per_second, block=block).first()
                if got is not None:
                    with self._lock:
                        self.blocks_taken += 1
                        self._blocks[key] = (block - 1, self._clock() + BLOCK_SECONDS)
                    return 0.0
        tokens = float(self._run(_PG_RESERVE, key=key, burst=burst, rate=per_second).scalar_one())
        if block > 1 and tokens < 2 * block:  # near the limit: single tokens for a while, one statement each
            with self._lock:
                self._no_room_until[key] = self._clock() + BLOCK_SECONDS
        return 0.0 if tokens >= 0 else -tokens / per_second

    def give_back(self, key: str, per_second: float, burst: float) -> None:
        self._run(_PG_GIVE_BACK, key=key, burst=burst)

    def _run(self, statement: Any, **params: Any) -> Any:
        """One statement on its own autocommit connection, its result read before the connection goes back."""
        with self._engine.connect() as conn:
            self.statements += 1
            return conn.execute(statement, params).freeze()()

    def block(self, key: str, seconds: float, per_second: float) -> None:
        with self._lock:  # what this process holds goes too: nobody sends
            self._blocks.pop(key, None)
        self._run(_PG_BLOCK, key=key, seconds=seconds, rate=per_second)


def make_rate_limiter(engine: Engine) -> RateLimiter:
    if engine.dialect.name == "postgresql":
        return PostgresRateLimiter(engine)
    return LocalRateLimiter()


MAX_SLEEP = 2.0


@dataclass(frozen=True)
class Throttle:
    """One connector account's view of its bucket: ``wait()`` before every request."""

    limiter: RateLimiter
    key: str
    per_minute: float
    burst: float
    sleep: Callable[[float], None] = time.sleep
    # a worker thread sleeps off at most this much of the debt; a longer wait gives the token back and
    # hands the job back to the queue (Deferred) so the thread serves other connectors meanwhile
    max_sleep: float = MAX_SLEEP

    @property
    def per_second(self) -> float:
        return self.per_minute / 60.0

    def wait(self) -> float:
        delay = self.limiter.reserve(self.key, self.per_second, self.burst)
        if delay > self.max_sleep:
            self.limiter.give_back(self.key, self.per_second, self.burst)
            raise Deferred(f"{self.key}: the request quota ({self.per_minute:g}/min) is spent for the next "
                           f"{delay:.1f} s; the job runs again then", retry_after=delay)
        if delay > 0:
            self.sleep(delay)
        return delay

    def block(self, seconds: float) -> None:
        self.limiter.block(self.key, seconds, self.per_second)


def throttle_for(limiter: RateLimiter, name: str, settings: ConnectorSettings, default_per_minute: int) -> Throttle:
    per_minute = settings.rate_limit_per_minute or default_per_minute
    burst = settings.rate_limit_burst or max(1, per_minute // 60)
    key = settings.rate_limit_key or f"{settings.kind}:{name}"
    return Throttle(limiter, key, float(per_minute), float(burst))
