"""Fixtures: a seeded shop simulator, and channels wired to it the way the runtime wires them.

Every request a channel sends is checked against connectors.shops.woocommerce.schema
as it goes out, and every answer the simulator gave is checked when the test ends,
so neither side can drift from the documented shapes unnoticed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import httpx
import pytest
from tenacity import wait_none
from woocommerce_testkit import BASE_URL, KEY, SECRET, CheckingTransport, Sleeps, Wired, check, services

from connectors.shops.woocommerce import WooCommerceOptions, build_channel
from connectors.shops.woocommerce.schema import ERROR, schema_for
from connectors.shops.woocommerce.simulator import WooSimulator
from hub.platform.ratelimit import LocalRateLimiter, Throttle


@pytest.fixture
def sim() -> Iterator[WooSimulator]:
    shop = WooSimulator(KEY, SECRET, seed=20240611)
    yield shop
    for exchange in shop.log:
        if exchange.status == 0:
            continue  # never reached the shop
        schemas = schema_for(exchange.method, exchange.path)
        if 200 <= exchange.status < 300:
            assert schemas is not None, f"simulator answered an unknown endpoint {exchange.path}"
            check(schemas[1], exchange.response, f"simulator answer to {exchange.method} {exchange.path}")
        else:
            check(ERROR, exchange.response, f"simulator error {exchange.status} for {exchange.path}")


@pytest.fixture
def wire(sim: WooSimulator) -> Callable[..., Wired]:
    def make(*, key: str = KEY, secret: str = SECRET, attempts: int = 3, name: str = "sklep",
             transport: httpx.BaseTransport | None = None, **more: object) -> Wired:
        """``more``: further connector options (e.g. ``allow_shop_sales=True``)."""
        checking = CheckingTransport(transport or sim.transport())
        sleeps = Sleeps()
        limiter = LocalRateLimiter()
        # sleeps are recorded, not slept, so the bucket's clock never pays a debt off: no deferring here
        # (tests/platform/test_ratelimit.py and test_http.py hold the Deferred path)
        throttle = Throttle(limiter, f"woocommerce:{name}", per_minute=300.0, burst=5.0, sleep=sleeps,
                            max_sleep=float("inf"))
        options = WooCommerceOptions.model_validate(
            {"base_url": BASE_URL, "consumer_key": key, "consumer_secret": secret, "attempts": attempts, **more})
        channel = build_channel(name, options, services(name, throttle, checking), retry_wait=wait_none())
        return Wired(channel, checking, throttle, sleeps, limiter)

    return make
