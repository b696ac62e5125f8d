"""Retry delays: exponential backoff with jitter (tenacity's wait strategy), honouring Retry-After."""

from __future__ import annotations

from tenacity import RetryCallState, wait_exponential, wait_random


def retry_delay(attempt: int, initial: float, maximum: float, retry_after: float | None = None) -> float:
    """Seconds to wait before attempt ``attempt + 1``.

    ``initial * 2**(attempt-1)`` plus up to ``initial`` of jitter, capped at
    ``maximum``; a vendor's Retry-After is a floor we never undercut, even past
    the cap (sending during a vendor's block can lengthen the block).
    """
    state = RetryCallState(retry_object=None, fn=None, args=(), kwargs={})  # type: ignore[arg-type]
    state.attempt_number = max(1, attempt)
    strategy = wait_exponential(multiplier=initial, max=maximum) + wait_random(0, initial)
    delay = float(strategy(state))
    delay = min(delay, maximum)
    if retry_after is not None and retry_after > delay:
        delay = float(retry_after)
    return delay
