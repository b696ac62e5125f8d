"""Fault injection: 5xx, 429 bursts and timeouts (including lost responses) while the queue retries.

The job queue calls ``push`` again with the same idempotency key whenever it raises
RetryableError; these tests do the same in a loop and check that the shop ends at
the final values, whatever was applied twice on the way.
"""

from __future__ import annotations

import contextlib
from collections import Counter
from collections.abc import Callable
from decimal import Decimal

import httpx
import pytest
from woocommerce_testkit import Wired

from connectors.shops.woocommerce.simulator import Faults, WooSimulator
from hub.kernel.errors import RetryableError
from hub.kernel.ports.channel import ChangeResult, ListingChange

Wire = Callable[..., Wired]
FAULTY = Faults(error_rate=0.2, burst_rate=0.04, burst_length=3, retry_after=2, timeout_rate=0.05,
                lost_response_rate=0.05)


def push_like_the_queue(wired: Wired, changes: list[ListingChange], key: str,
                        max_calls: int = 60) -> tuple[list[ChangeResult], list[RetryableError]]:
    """Call push until it returns, as the queue does on RetryableError (without the backoff)."""
    failures: list[RetryableError] = []
    for _ in range(max_calls):
        try:
            return list(wired.channel.push(changes, idempotency_key=key)), failures
        except RetryableError as exc:
            failures.append(exc)
    raise AssertionError(f"push never succeeded in {max_calls} calls: {failures[-1]}")


def catalogue(sim: WooSimulator) -> tuple[list[int], list[tuple[int, int]]]:
    simple = [sim.add_simple(f"S-{n:03d}", 5, "10.00") for n in range(260)]
    variations: list[tuple[int, int]] = []
    for p in range(2):
        pid, vids = sim.add_variable(f"V{p}", [(f"V{p}-{n:03d}", 5, "20.00") for n in range(70)])
        variations += [(pid, vid) for vid in vids]
    return simple, variations


def changes_for(simple: list[int], variations: list[tuple[int, int]], round_: int) -> list[ListingChange]:
    out = [ListingChange(str(pid), f"S-{n:03d}", quantity=(n * 7 + round_) % 50,
                         price_gross=Decimal(100 + n + round_) / 10) for n, pid in enumerate(simple)]
    out += [ListingChange(f"{pid}/{vid}", f"V-{n}", quantity=(n + round_) % 9,
                          price_gross=Decimal(200 + n * round_) / 4) for n, (pid, vid) in enumerate(variations)]
    return out


def assert_shop_shows(sim: WooSimulator, changes: list[ListingChange]) -> None:
    for change in changes:
        product_id, _, variation_id = change.external_id.partition("/")
        shown = sim.variation(int(product_id), int(variation_id)) if variation_id else sim.product(int(product_id))
        assert (shown["stock_quantity"], Decimal(shown["regular_price"])) == (change.quantity, change.price_gross), \
            change.external_id


def test_repeated_pushes_converge_on_the_final_values_under_faults(sim: WooSimulator, wire: Wire) -> None:
    simple, variations = catalogue(sim)
    sim.faults = FAULTY
    wired = wire()
    rounds = [changes_for(simple, variations, round_=n) for n in range(1, 11)]
    final = rounds[-1]
    all_failures: list[RetryableError] = []
    for n, changes in enumerate(rounds, start=1):
        results, failures = push_like_the_queue(wired, changes, f"push:round-{n}")
        all_failures += failures
        assert [r.external_id for r in results] == [c.external_id for c in changes]
        assert all(r.ok for r in results), [r for r in results if not r.ok][:3]
    sim.clear_faults()
    assert_shop_shows(sim, final)
    listed = {listing.external_id: listing for listing in wired.channel.listings()}
    assert all(listed[c.external_id].quantity == c.quantity for c in final)
    assert all(listed[c.external_id].price_gross == c.price_gross for c in final)

    # every kind of fault really happened, and some writes really landed twice
    faults = Counter(e.fault for e in sim.log if e.fault)
    assert {"503", "502-after-apply", "429", "timeout", "lost_response"} <= set(faults), faults
    assert any(f.retry_after == 2 for f in all_failures)  # a 429 hands its Retry-After to the queue
    assert any(seconds >= 1.5 for seconds in wired.sleeps.calls)  # ...and blocks the throttle for it
    bodies = Counter(repr(e.body) for e in sim.requests("POST") if e.status == 200 or e.fault == "502-after-apply")
    assert max(bodies.values()) >= 2


def test_a_lost_response_is_re_sent_and_nothing_doubles(sim: WooSimulator, wire: Wire) -> None:
    pid = sim.add_simple("KUB-01", 10, "5.00")
    change = ListingChange(str(pid), "KUB-01", quantity=3, price_gross=Decimal("6.00"))
    sim.faults = Faults(lost_response_rate=1.0)
    wired = wire(attempts=2)
    with pytest.raises(RetryableError, match="ReadTimeout"):
        wired.channel.push([change], idempotency_key="push:lost")
    assert sim.product(pid)["stock_quantity"] == 3  # applied, though we never heard back
    assert [e.fault for e in sim.log] == ["lost_response", "lost_response"]
    sim.clear_faults()
    (result,) = wired.channel.push([change], idempotency_key="push:lost")
    assert result.ok and sim.product(pid)["stock_quantity"] == 3 and len(sim.log) == 3


def test_5xx_is_retried_inside_one_call_before_the_queue_hears_of_it(sim: WooSimulator, wire: Wire) -> None:
    pid = sim.add_simple("KUB-01", 10, "5.00")
    sim.faults = Faults(error_rate=1.0, error_after_apply=0.0)
    wired = wire(attempts=3)
    with pytest.raises(RetryableError, match=r"HTTP 503.*after 3 attempts"):
        wired.channel.push([ListingChange(str(pid), "KUB-01", quantity=1)], idempotency_key="k")
    assert [e.status for e in sim.log] == [503, 503, 503]
    assert sim.product(pid)["stock_quantity"] == 10


def test_a_429_burst_blocks_the_throttle_and_hands_retry_after_to_the_queue(sim: WooSimulator, wire: Wire) -> None:
    pid = sim.add_simple("KUB-01", 10, "5.00")
    sim.faults = Faults(retry_after=7)
    sim.burst_429(2)
    wired = wire()
    change = ListingChange(str(pid), "KUB-01", quantity=4)
    for _ in range(2):
        with pytest.raises(RetryableError) as caught:
            wired.channel.push([change], idempotency_key="k")
        assert caught.value.retry_after == 7
    assert len(sim.log) == 2  # a 429 is not retried in-process: the queue waits it out
    (result,) = wired.channel.push([change], idempotency_key="k")
    assert result.ok
    assert wired.sleeps.calls and max(wired.sleeps.calls) >= 6.5  # the next request waited for the block


def test_faults_are_deterministic_for_a_seed() -> None:
    def run(seed: int) -> list[str | None]:
        shop = WooSimulator(seed=seed)
        shop.faults = FAULTY
        transport = shop.transport()
        with httpx.Client(transport=transport, base_url="https://shop.test/wp-json/wc/v3",
                          auth=("ck_test", "cs_test")) as client:
            for _ in range(60):
                with contextlib.suppress(httpx.TimeoutException):
                    client.get("/products", params={"per_page": 1})
        return [e.fault for e in shop.log]

    assert run(3) == run(3)
    assert run(3) != run(4)
