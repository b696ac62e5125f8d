"""The shared PostgreSQL bucket: blocks of tokens while there is room, one token at a time near the
limit, and the limit holds for several processes drawing at once (each limiter here is one process)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest
from sqlalchemy import Engine

from hub.platform import db
from hub.platform.ratelimit import PostgresRateLimiter


@pytest.fixture
def pg_engine(pg_url: str) -> Iterator[Engine]:
    engine = db.make_engine(pg_url)
    yield engine
    engine.dispose()


def test_with_room_to_spare_a_process_takes_a_block_per_statement(pg_engine: Engine) -> None:
    limiter = PostgresRateLimiter(pg_engine)
    assert limiter.block_size(per_second=10000, burst=1000) == 50
    waits = [limiter.reserve("k", per_second=10000, burst=1000) for _ in range(500)]
    assert set(waits) == {0.0}
    # the first request creates the row (one token), then one statement per block of 50
    assert limiter.statements <= 2 + 500 // 50 + 2


def test_near_the_limit_every_request_takes_its_own_token(pg_engine: Engine) -> None:
    limiter = PostgresRateLimiter(pg_engine)
    assert limiter.block_size(per_second=20, burst=5) == 1  # a small bucket: never blocks
    waits = [limiter.reserve("small", per_second=20, burst=5) for _ in range(8)]
    assert waits[:5] == [0.0] * 5 and all(w > 0 for w in waits[5:])


def test_processes_taking_blocks_together_stay_within_the_shared_limit(pg_engine: Engine) -> None:
    """Two processes (two limiters) draw 300 tokens at 200/s with a burst of 100 (blocks of 25): that
    cannot take less than (300 - 100) / 200 = 1 s, blocks or not."""
    limiters = [PostgresRateLimiter(pg_engine) for _ in range(2)]
    assert limiters[0].block_size(200, 100) == 25
    go = threading.Event()
    ends: list[float] = []

    def draw(limiter: PostgresRateLimiter) -> None:
        go.wait()
        for _ in range(150):
            delay = limiter.reserve("shared", 200, 100)
            if delay > 0:
                time.sleep(delay)
        ends.append(time.monotonic())

    threads = [threading.Thread(target=draw, args=(limiter,)) for limiter in limiters]
    for thread in threads:
        thread.start()
    start = time.monotonic()
    go.set()
    for thread in threads:
        thread.join(30)
    elapsed = max(ends) - start
    assert elapsed >= 1.0 - 0.05, f"300 tokens in {elapsed:.2f}s: the shared bucket allows 1 s"
    assert sum(limiter.blocks_taken for limiter in limiters) >= 2  # while the burst lasted: blocks
