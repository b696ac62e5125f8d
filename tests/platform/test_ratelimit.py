from __future__ import annotations

from hub.platform.config import ConnectorSettings
from hub.platform.ratelimit import LocalRateLimiter, throttle_for


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_burst_then_paced_in_arrival_order() -> None:
    clock = FakeClock()
    limiter = LocalRateLimiter(clock)
    waits = [limiter.reserve("k", per_second=10, burst=3) for _ in range(6)]
    assert waits[:3] == [0.0, 0.0, 0.0]
    assert [round(w, 3) for w in waits[3:]] == [0.1, 0.2, 0.3]


def test_refills_over_time_up_to_burst() -> None:
    clock = FakeClock()
    limiter = LocalRateLimiter(clock)
    for _ in range(3):
        limiter.reserve("k", 10, 3)
    clock.now = 100.0
    assert [limiter.reserve("k", 10, 3) for _ in range(3)] == [0.0, 0.0, 0.0]
    assert limiter.reserve("k", 10, 3) > 0


def test_block_stops_everyone_for_the_window() -> None:
    clock = FakeClock()
    limiter = LocalRateLimiter(clock)
    limiter.block("client-1", seconds=60, per_second=150)
    assert limiter.reserve("client-1", 150, 150) >= 60
    assert limiter.reserve("other", 150, 150) == 0.0


def test_throttle_defaults_and_shared_key() -> None:
    limiter = LocalRateLimiter(FakeClock())
    slept: list[float] = []
    a = throttle_for(limiter, "acc-a", ConnectorSettings(kind="x", rate_limit_key="client-1",
                                                          rate_limit_per_minute=60, rate_limit_burst=1), 600)
    b = throttle_for(limiter, "acc-b", ConnectorSettings(kind="x", rate_limit_key="client-1",
                                                          rate_limit_per_minute=60, rate_limit_burst=1), 600)
    a = a.__class__(a.limiter, a.key, a.per_minute, a.burst, sleep=slept.append)
    b = b.__class__(b.limiter, b.key, b.per_minute, b.burst, sleep=slept.append)
    a.wait()
    b.wait()
    assert slept == [1.0]  # the second account of the same client waited for the first
    c = throttle_for(limiter, "acc-c", ConnectorSettings(kind="x"), 600)
    assert (c.key, c.per_minute, c.burst) == ("x:acc-c", 600.0, 10.0)


def test_a_wait_longer_than_a_worker_should_sleep_defers_the_job_and_gives_the_token_back() -> None:
    """A thread asleep for a minute on one vendor's quota serves nobody: past max_sleep the token goes
    back to the bucket and the job is handed back to the queue (Deferred) with the time to wait."""
    import pytest

    from hub.kernel.errors import Deferred
    from hub.platform.ratelimit import Throttle

    clock = FakeClock()
    limiter = LocalRateLimiter(clock)
    slept: list[float] = []
    throttle = Throttle(limiter, "furgonetka:main", per_minute=60, burst=2, sleep=slept.append, max_sleep=2.0)
    assert [throttle.wait(), throttle.wait(), throttle.wait(), throttle.wait()] == [0.0, 0.0, 1.0, 2.0]
    with pytest.raises(Deferred, match=r"furgonetka:main: the request quota \(60/min\) is spent for the next 3.0 s") \
            as deferred:
        throttle.wait()
    assert deferred.value.retry_after == 3.0 and slept == [1.0, 2.0]
    clock.now = 3.0  # the debt of the two sleepers is paid off: the token given back is there
    assert throttle.wait() == 0.0
