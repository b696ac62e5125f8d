"""The channel against the simulator: listings, pushes, per-item errors, request budget, wiring."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal

import httpx
import pytest
from tenacity import wait_none
from woocommerce_testkit import BASE_URL, KEY, SECRET, CheckingTransport, Sleeps, Wired, services

from connectors.shops.woocommerce import SPEC, WooCommerceChannel, WooCommerceOptions, build_channel
from connectors.shops.woocommerce.simulator import WooSimulator
from hub.kernel.errors import LoginNeeded
from hub.kernel.ports.capability import Capability
from hub.kernel.ports.channel import Listing, ListingChange, OrderChannel, ReturnsChannel, SalesChannel
from hub.platform import registry
from hub.platform.ratelimit import LocalRateLimiter, Throttle

Wire = Callable[..., Wired]


def test_listings_cover_simple_products_and_variations(sim: WooSimulator, wire: Wire) -> None:
    mug = sim.add_simple("KUB-01", 12, "24.54", ean="5901234123457")
    shirt, (s, m) = sim.add_variable("KOSZ", [("KOSZ-S", 3, "49.00"), ("KOSZ-M", 0, "49.00")])
    sim.add_simple("LINK", None, "10.00", product_type="external", manage_stock=False)
    draft = sim.add_simple("SZKIC", 1, "1.00", status="draft")
    sim.add_variable("PUSTY", [])
    listings = list(wire().channel.listings())
    assert listings == [
        Listing(str(mug), "KUB-01", "5901234123457", 12, Decimal("24.54")),
        Listing(f"{shirt}/{s}", "KOSZ-S", None, 3, Decimal("49.00")),
        Listing(f"{shirt}/{m}", "KOSZ-M", None, 0, Decimal("49.00")),
        Listing(str(draft), "SZKIC", None, 1, Decimal("1.00"), active=False),
    ]
    # one page of products, one of variations; the variable product without variations costs nothing
    assert [(e.method, e.path) for e in sim.log] == [("GET", "/products"), ("GET", f"/products/{shirt}/variations")]


def test_listings_page_through_products_and_variations(sim: WooSimulator, wire: Wire) -> None:
    for n in range(230):
        sim.add_simple(f"P-{n:03d}", n, "5.00")
    parent, _ = sim.add_variable("V", [(f"V-{n:03d}", n, "7.00") for n in range(120)])
    listings = list(wire().channel.listings())
    assert len(listings) == 350
    assert [item.sku for item in listings[:2]] == ["P-000", "P-001"]
    assert listings[-1].external_id.startswith(f"{parent}/") and listings[-1].sku == "V-119"
    pages = [(e.path, e.query["page"]) for e in sim.log]
    assert pages == [("/products", "1"), ("/products", "2"), ("/products", "3"),
                     (f"/products/{parent}/variations", "1"), (f"/products/{parent}/variations", "2")]
    assert all(e.query["per_page"] == "100" for e in sim.log)


def test_push_ends_with_the_shop_showing_the_values(sim: WooSimulator, wire: Wire) -> None:
    mug = sim.add_simple("KUB-01", 12, "24.54")
    shirt, (s, m) = sim.add_variable("KOSZ", [("KOSZ-S", 3, "49.00"), ("KOSZ-M", 0, "49.00")])
    changes = [
        ListingChange(str(mug), "KUB-01", quantity=0, price_gross=Decimal("19.99")),
        ListingChange(f"{shirt}/{s}", "KOSZ-S", quantity=8),
        ListingChange(f"{shirt}/{m}", "KOSZ-M", quantity=2, price_gross=Decimal("45")),
    ]
    results = wire().channel.push(changes, idempotency_key="push:1")
    assert [(r.external_id, r.ok) for r in results] == [(c.external_id, True) for c in changes]
    shown = sim.product(mug)
    assert (shown["stock_quantity"], shown["stock_status"], shown["regular_price"]) == (0, "outofstock", "19.99")
    assert sim.variation(shirt, s)["stock_quantity"] == 8
    assert (sim.variation(shirt, m)["stock_quantity"], sim.variation(shirt, m)["regular_price"]) == (2, "45.00")
    assert [(e.method, e.path) for e in sim.log] == [
        ("POST", "/products/batch"), ("POST", f"/products/{shirt}/variations/batch")]


def test_push_turns_on_stock_management(sim: WooSimulator, wire: Wire) -> None:
    loose = sim.add_simple("LUZ", None, "3.00", manage_stock=False)
    (result,) = wire().channel.push([ListingChange(str(loose), "LUZ", quantity=4)], idempotency_key="k")
    assert result.ok
    assert (sim.product(loose)["manage_stock"], sim.product(loose)["stock_quantity"]) == (True, 4)


def test_per_item_errors_fail_only_their_changes(sim: WooSimulator, wire: Wire) -> None:
    good = [sim.add_simple(f"OK-{n}", 1, "1.00") for n in range(3)]
    external = sim.add_simple("LINK", None, "10.00", product_type="external", manage_stock=False)
    locked = sim.add_simple("LOCKED", 1, "1.00")
    sim.fail_item(locked)
    gone = sim.add_simple("GONE", 1, "1.00")
    sim.delete_product(gone)
    shirt, (s,) = sim.add_variable("KOSZ", [("KOSZ-S", 3, "49.00")])
    changes = [
        ListingChange(str(good[0]), "OK-0", quantity=10),
        ListingChange(str(gone), "GONE", quantity=10),
        ListingChange(str(good[1]), "OK-1", quantity=11),
        ListingChange(str(external), "LINK", quantity=5),
        ListingChange(str(locked), "LOCKED", quantity=5),
        ListingChange(f"{shirt}/999999", "KOSZ-X", quantity=1),  # not a variation of this product
        ListingChange(f"{shirt}/{s}", "KOSZ-S", quantity=7),
        ListingChange(str(good[2]), "OK-2", price_gross=Decimal("2.50")),
        ListingChange("not-an-id", "BAD", quantity=1),
    ]
    results = wire().channel.push(changes, idempotency_key="push:2")
    assert [r.external_id for r in results] == [c.external_id for c in changes]
    assert [r.ok for r in results] == [True, False, True, False, False, False, True, True, False]
    errors = {r.external_id: r.error for r in results if not r.ok}
    assert errors[str(gone)] == "woocommerce_rest_product_invalid_id: Invalid ID."
    assert errors[str(external)] == "product_external_invalid_manage_stock: External products cannot be stock managed."
    assert errors[str(locked)] == "woocommerce_rest_cannot_edit: Sorry, you are not allowed to edit this resource."
    assert errors[f"{shirt}/999999"] == "woocommerce_rest_product_variation_invalid_id: Invalid ID."
    assert "not a WooCommerce id" in (errors["not-an-id"] or "")
    assert not any(r.retryable for r in results)
    assert [sim.product(p)["stock_quantity"] for p in good[:2]] == [10, 11]
    assert sim.product(good[2])["regular_price"] == "2.50"
    assert sim.variation(shirt, s)["stock_quantity"] == 7


class VirtualTime(Sleeps):
    """The throttle's clock and sleep: time moves only when the throttle sleeps, so what it asks for
    depends on the requests it paced, never on how fast the machine is."""

    now: float = 0.0

    def __call__(self, seconds: float) -> None:
        super().__call__(seconds)
        self.now += seconds

    def clock(self) -> float:
        return self.now


class SentAt(httpx.BaseTransport):
    """Notes the virtual time at which each request went out."""

    def __init__(self, inner: httpx.BaseTransport, time: VirtualTime):
        self.inner, self.time = inner, time
        self.times: list[float] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.times.append(self.time.now)
        return self.inner.handle_request(request)


def wire_on_virtual_time(sim: WooSimulator) -> tuple[Wired, SentAt]:
    """As the ``wire`` fixture wires a channel (300 requests a minute, a burst of 5), on virtual time."""
    time = VirtualTime()
    sent_at = SentAt(sim.transport(), time)
    checking = CheckingTransport(sent_at)
    limiter = LocalRateLimiter(clock=time.clock)
    throttle = Throttle(limiter, "woocommerce:sklep", per_minute=300.0, burst=5.0, sleep=time)
    options = WooCommerceOptions.model_validate({"base_url": BASE_URL, "consumer_key": KEY, "consumer_secret": SECRET})
    channel = build_channel("sklep", options, services("sklep", throttle, checking), retry_wait=wait_none())
    return Wired(channel, checking, throttle, time, limiter), sent_at


def test_a_thousand_changes_take_ten_batch_requests(sim: WooSimulator) -> None:
    ids = [sim.add_simple(f"SKU-{n:04d}", 0, "1.00") for n in range(1000)]
    wired, sent_at = wire_on_virtual_time(sim)
    changes = [ListingChange(str(pid), f"SKU-{n:04d}", quantity=n, price_gross=Decimal(n) / 4)
               for n, pid in enumerate(ids)]
    results = wired.channel.push(changes, idempotency_key="push:big")
    assert all(r.ok for r in results) and len(results) == 1000
    assert len(wired.transport.sent) == len(sim.requests("POST", r"/batch$")) == len(sim.log) == 10
    assert all(len(e.body["update"]) == 100 for e in sim.log)
    assert sim.product(ids[999])["stock_quantity"] == 999 and sim.product(ids[999])["regular_price"] == "249.75"
    # every request took a token first: 5 at once (the burst), then one every 0.2 s (300 a minute)
    assert wired.sleeps.calls == pytest.approx([0.2] * 5)
    assert sent_at.times == pytest.approx([0.0] * 5 + [0.2, 0.4, 0.6, 0.8, 1.0])


def test_variations_of_many_parents_stay_within_one_request_per_parent(sim: WooSimulator, wire: Wire) -> None:
    parents = [sim.add_variable(f"V{p}", [(f"V{p}-{n}", 0, "1.00") for n in range(150)]) for p in range(3)]
    changes = [ListingChange(f"{pid}/{vid}", f"V{p}-{n}", quantity=1)
               for p, (pid, vids) in enumerate(parents) for n, vid in enumerate(vids)]
    results = wire().channel.push(changes, idempotency_key="push:variations")
    assert all(r.ok for r in results)
    assert [(e.path, len(e.body["update"])) for e in sim.log] == [
        (f"/products/{pid}/variations/batch", size) for pid, _ in parents for size in (100, 50)]


def test_bad_keys_need_a_login(sim: WooSimulator, wire: Wire) -> None:
    sim.add_simple("KUB-01", 1, "1.00")
    with pytest.raises(LoginNeeded, match="Consumer secret is invalid"):
        list(wire(secret="cs_wrong").channel.listings())
    with pytest.raises(LoginNeeded, match="Consumer key is invalid"):
        wire(key="ck_revoked").channel.push([ListingChange("101", "KUB-01", quantity=1)], idempotency_key="k")
    assert len(sim.log) == 2  # no retries on 401


def test_registered_through_the_entry_point_and_built_by_the_factory(sim: WooSimulator) -> None:
    assert registry.get("woocommerce") is SPEC
    assert (SPEC.role, SPEC.push_batch_size, SPEC.default_rate_limit_per_minute) == ("channel", 100, 300)
    assert SPEC.capabilities == {Capability.LISTINGS_READ, Capability.BATCH_STOCK, Capability.BATCH_PRICE,
                                 Capability.ORDERS, Capability.ORDER_STATUS, Capability.TRACKING_PUSH,
                                 Capability.RETURNS, Capability.REFUNDS}
    options = SPEC.options_model.model_validate(  # type: ignore[union-attr]
        {"base_url": BASE_URL + "/", "consumer_key": KEY, "consumer_secret": SECRET})
    throttle = Throttle(LocalRateLimiter(), "woocommerce:sklep", 300.0, 5.0, sleep=lambda _s: None)
    channel = SPEC.factory("sklep", options, services("sklep", throttle, sim.transport()))
    try:
        assert isinstance(channel, WooCommerceChannel) and isinstance(channel, SalesChannel)
        assert isinstance(channel, OrderChannel) and isinstance(channel, ReturnsChannel)
        sim.add_simple("KUB-01", 3, "2.00")
        assert [listing.quantity for listing in channel.listings()] == [3]
    finally:
        channel.close()


class StripPagingHeaders(httpx.BaseTransport):
    """A caching proxy that drops WordPress's paging headers."""

    def __init__(self, inner: httpx.BaseTransport):
        self.inner = inner

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = self.inner.handle_request(request)
        response.read()
        headers = [(k, v) for k, v in response.headers.items() if not k.lower().startswith("x-wp-")]
        return httpx.Response(response.status_code, headers=headers, content=response.content)


def test_listings_without_paging_headers_stop_at_a_short_or_missing_page(sim: WooSimulator, wire: Wire) -> None:
    for n in range(200):
        sim.add_simple(f"P-{n:03d}", n, "5.00")
    assert len(list(wire(transport=StripPagingHeaders(sim.transport())).channel.listings())) == 200
    assert [(e.query["page"], e.status) for e in sim.log] == [("1", 200), ("2", 200), ("3", 400)]
    sim.add_simple("P-200", 1, "5.00")
    sim.log.clear()
    assert len(list(wire(transport=StripPagingHeaders(sim.transport())).channel.listings())) == 201
    assert [e.query["page"] for e in sim.log] == ["1", "2", "3"]


def test_an_empty_push_sends_nothing(sim: WooSimulator, wire: Wire) -> None:
    assert wire().channel.push([], idempotency_key="empty") == []
    assert sim.log == []
