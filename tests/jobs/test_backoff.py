from hub.jobs.backoff import retry_delay


def test_grows_exponentially_with_bounded_jitter() -> None:
    for attempt in range(1, 8):
        delay = retry_delay(attempt, initial=1.0, maximum=1000.0)
        base = 2 ** (attempt - 1)
        assert base <= delay <= base + 1.0


def test_capped_at_maximum() -> None:
    assert retry_delay(30, initial=1.0, maximum=60.0) == 60.0


def test_retry_after_is_a_floor_even_past_the_cap() -> None:
    assert retry_delay(1, initial=1.0, maximum=30.0, retry_after=120.0) == 120.0
    assert retry_delay(6, initial=1.0, maximum=1000.0, retry_after=0.5) >= 32.0


def test_jitter_spreads_retries() -> None:
    assert len({retry_delay(3, 1.0, 100.0) for _ in range(20)}) > 1
