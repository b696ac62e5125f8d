"""The channel against the simulator: listings, pushes, zero stock, failures, faults and request counts.

Every exchange goes through ValidatingTransport (conftest), so each request the connector sends and
each answer the simulator gives is checked against the vendor's swagger.yaml.
"""

from __future__ import annotations

import time
from datetime import timedelta
from decimal import Decimal

import httpx
import pytest

from connectors.allegro.mapping import price_commands, publication_commands, quantity_commands
from connectors.allegro.simulator import AllegroSimulator, Faults, LossyTransport
from hub.kernel.clock import utcnow
from hub.kernel.errors import RetryableError
from hub.kernel.ports.channel import ChangeResult, ListingChange, SalesChannel
from hub.platform.credentials import TokenSet
from hub.platform.ratelimit import LocalRateLimiter


def qty(offer_id: str, quantity: int) -> ListingChange:
    return ListingChange(offer_id, f"SKU-{offer_id}", quantity=quantity)


def is_put(record: object) -> bool:
    return getattr(record, "method", None) == "PUT"


def test_channel_is_a_sales_channel(make_channel) -> None:
    channel, _ = make_channel()
    assert isinstance(channel, SalesChannel)


def test_listings_pages_through_every_offer(make_channel, sim: AllegroSimulator) -> None:
    ids = sim.add_offers(2345, quantity=3, price="19.99")
    sim.add_offer("9000000001", external_id=None, quantity=8, status="ENDED")
    channel, validating = make_channel()
    listings = list(channel.listings())
    assert [lst.external_id for lst in listings] == [*ids, "9000000001"]
    assert listings[0].sku == "SKU-000001" and listings[0].quantity == 3
    assert listings[0].price_gross == Decimal("19.99") and listings[0].active
    assert (listings[-1].sku, listings[-1].quantity, listings[-1].active) == (None, 0, False)
    pages = [r for r in sim.requests if r.path == "/sale/offers"]
    assert len(pages) == 3
    assert all("limit=1000" in r.query for r in pages)
    # the one unsigned offer is the only one whose EAN is looked up (it has no product: none)
    assert listings[-1].ean is None
    assert [(m, p) for m, p, _ in validating.checked if p != "/sale/offers"] == [
        ("GET", "/sale/product-offers/9000000001")]
    assert [m for m, *_ in validating.checked] == ["GET"] * 4


def test_push_price_and_quantity(make_channel, sim: AllegroSimulator) -> None:
    ids = sim.add_offers(6, quantity=1, price="10.00")
    channel, validating = make_channel()
    changes = [ListingChange(o, f"SKU-{o}", quantity=4 + i % 2, price_gross=Decimal("24.90") if i < 3 else
                             Decimal("31.00")) for i, o in enumerate(ids)]
    results = channel.push(changes, idempotency_key="push:1")
    assert results == [ChangeResult(o, ok=True) for o in ids]
    for i, offer_id in enumerate(ids):
        offer = sim.offer(offer_id)
        assert offer.quantity == 4 + i % 2
        assert offer.price == (Decimal("24.90") if i < 3 else Decimal("31.00"))
        assert offer.status == "ACTIVE"
    kinds = sorted(c.kind for c in sim.commands())
    assert kinds == ["price", "price", "quantity", "quantity"]
    assert all(c.applied == 1 for c in sim.commands())
    assert not any(r.path.endswith("/tasks") for r in sim.requests)  # nothing failed: no task reads
    assert len(validating.checked) == len(sim.requests)


def test_same_key_again_sends_nothing_twice(make_channel, sim: AllegroSimulator) -> None:
    ids = sim.add_offers(3)
    channel, _ = make_channel()
    changes = [ListingChange(o, "x", quantity=9, price_gross=Decimal("5.00")) for o in ids]
    first = channel.push(changes, idempotency_key="push:again")
    puts = sim.request_count(is_put)
    # a new process (empty caches) retrying the job after a crash
    other, _ = make_channel()
    assert other.push(changes, idempotency_key="push:again") == first
    assert sim.request_count(is_put) == puts
    assert all(c.applied == 1 for c in sim.commands()) and len(sim.commands()) == 2


def test_quantity_zero_ends_and_restock_reactivates(make_channel, sim: AllegroSimulator) -> None:
    ids = sim.add_offers(3, quantity=5)
    channel, _ = make_channel()
    results = channel.push([qty(ids[0], 0), qty(ids[1], 0), qty(ids[2], 7)], idempotency_key="push:zero")
    assert all(r.ok for r in results)
    assert [sim.offer(o).status for o in ids] == ["ENDED", "ENDED", "ACTIVE"]
    assert sim.offer(ids[2]).quantity == 7
    end = [c for c in sim.commands() if c.kind == "publication"]
    assert [(c.body["publication"]["action"], c.offer_ids) for c in end] == [("END", ids[:2])]
    assert not any(c.kind == "quantity" and c.body["modification"]["value"] == 0 for c in sim.commands())

    listings = {lst.external_id: lst for lst in channel.listings()}
    assert (listings[ids[0]].quantity, listings[ids[0]].active) == (0, False)

    results = channel.push([qty(ids[0], 3), qty(ids[1], 0)], idempotency_key="push:restock")
    assert all(r.ok for r in results)
    assert (sim.offer(ids[0]).status, sim.offer(ids[0]).quantity) == ("ACTIVE", 3)
    assert sim.offer(ids[1]).status == "ENDED"
    activate = [c for c in sim.commands() if c.kind == "publication" and c.body["publication"]["action"] == "ACTIVATE"]
    assert [c.offer_ids for c in activate] == [[ids[0]]]
    quantity_cmd = next(c for c in sim.commands() if c.kind == "quantity" and ids[0] in c.offer_ids)
    assert sim.commands().index(quantity_cmd) < sim.commands().index(activate[0])  # stock first, then activate


def test_sold_out_offer_is_reactivated_on_restock(make_channel, sim: AllegroSimulator) -> None:
    (offer_id,) = sim.add_offers(1, quantity=1)
    sim.add_offer("7100000000", quantity=2, status="INACTIVE")
    sim.sell(offer_id)  # the vendor ended it when the last unit sold
    channel, _ = make_channel()  # never listed: the push reads the offers that are not on sale
    results = channel.push([qty(offer_id, 6), qty("7100000000", 4)], idempotency_key="push:restock-2")
    assert results[0] == ChangeResult(offer_id, ok=True)
    assert (sim.offer(offer_id).status, sim.offer(offer_id).quantity) == ("ACTIVE", 6)
    assert results[1].ok is False and "draft" in (results[1].error or "")  # drafts are the seller's to publish
    assert sim.offer("7100000000").quantity == 4 and sim.offer("7100000000").status == "INACTIVE"
    scans = [r for r in sim.requests if r.path == "/sale/offers"]
    assert len(scans) == 1 and "publication.status=ENDED" in scans[0].query


def test_an_offer_one_process_ended_is_activated_by_another_process_restocking_it(
        make_channel, sim: AllegroSimulator) -> None:
    """Two hub processes push to one account: what one knows of the offers not on sale (it ended one)
    the other knows before its next push, through the database, not after its own status read ages."""
    (offer_id,) = sim.add_offers(1, quantity=5)
    first, _ = make_channel()
    second, _ = make_channel()
    assert second.push([qty(offer_id, 5)], idempotency_key="push:b1")[0].ok  # its status read is fresh now
    assert first.push([qty(offer_id, 0)], idempotency_key="push:a1")[0].ok
    assert sim.offer(offer_id).status == "ENDED"
    assert second.push([qty(offer_id, 7)], idempotency_key="push:b2")[0].ok
    assert (sim.offer(offer_id).status, sim.offer(offer_id).quantity) == ("ACTIVE", 7)
    # and an older status read cannot put back the ENDED the other process has since undone
    assert first.push([qty(offer_id, 2)], idempotency_key="push:a2")[0].ok
    actions = [c.body["publication"]["action"] for c in sim.commands() if c.kind == "publication"]
    assert actions == ["END", "ACTIVATE"]


def test_per_offer_failures_are_reported(make_channel, sim: AllegroSimulator) -> None:
    ids = sim.add_offers(4)
    sim.fail_offer(ids[1], code="VALIDATION_ERROR", message="Offer is locked by a pending edit.", kinds=["price"])
    channel, _ = make_channel()
    changes = [ListingChange(o, "x", quantity=2, price_gross=Decimal("9.99")) for o in ids]
    changes.append(ListingChange("7999999999", "missing", price_gross=Decimal("9.99")))
    changes.append(ListingChange(ids[2], "x", price_gross=Decimal("1.001")))
    results = channel.push(changes, idempotency_key="push:fail")
    by_id = {r.external_id: r for r in results[:5]}
    assert by_id[ids[0]].ok and by_id[ids[3]].ok
    assert by_id[ids[1]].ok is False and "locked" in (by_id[ids[1]].error or "")
    assert by_id[ids[1]].retryable is False
    assert sim.offer(ids[1]).quantity == 2  # its quantity went through
    assert by_id["7999999999"].ok is False and "does not exist" in (by_id["7999999999"].error or "")
    assert results[5].ok is False and "two decimal places" in (results[5].error or "")
    task_reads = [r for r in sim.requests if r.path.endswith("/tasks")]
    assert len(task_reads) == 1 and "price" in task_reads[0].path  # only the command with failures


def test_slow_command_times_out_and_the_retry_resumes_polling(make_channel, sim: AllegroSimulator) -> None:
    ids = sim.add_offers(3)
    sim.command_delay = 3600.0
    channel, _ = make_channel(command_timeout=0.2, command_poll_interval=0.05)
    changes = [qty(o, 11) for o in ids]
    with pytest.raises(RetryableError, match="still processing"):
        channel.push(changes, idempotency_key="push:slow")
    assert sim.offer(ids[0]).quantity == 1
    puts = sim.request_count(is_put)
    sim.process_all()
    assert all(r.ok for r in channel.push(changes, idempotency_key="push:slow"))
    assert sim.request_count(is_put) == puts  # the same command was polled, not sent again
    assert [c.applied for c in sim.commands()] == [1]
    assert sim.offer(ids[0]).quantity == 11


def test_faults_5xx_429_and_timeouts_converge_with_each_command_applied_once(
    make_channel, sim: AllegroSimulator
) -> None:
    ids = sim.add_offers(40, quantity=5, price="10.00")
    sim.block_scale = 0.001  # the one-minute block lasts 60 ms here
    sim.faults = Faults(error_5xx_rate=0.2, burst_429_rate=0.04, slow_command_rate=0.3, slow_command_delay=0.05)
    lossy: list[LossyTransport] = []

    def wrap(inner: httpx.BaseTransport) -> httpx.BaseTransport:
        lossy.append(LossyTransport(inner, lost_response_rate=0.1, timeout_rate=0.05, seed=3))
        return lossy[0]

    channel, _ = make_channel(wrap=wrap, rate_limit_block=0.08, http_attempts=3)
    changes = [ListingChange(o, "x", quantity=(0 if i % 10 == 0 else 1 + i % 4),
                             price_gross=Decimal("19.99") if i % 2 else Decimal("24.50")) for i, o in enumerate(ids)]
    retries = 0
    while True:
        try:
            results = channel.push(changes, idempotency_key="push:faults")
            break
        except RetryableError:  # what the job queue does: run the job again with the same key
            retries += 1
            assert retries < 60
    assert all(r.ok for r in results), [r for r in results if not r.ok]
    for i, offer_id in enumerate(ids):
        offer = sim.offer(offer_id)
        if i % 10 == 0:
            assert offer.status == "ENDED"
        else:
            assert (offer.quantity, offer.status) == (1 + i % 4, "ACTIVE")
        assert offer.price == (Decimal("19.99") if i % 2 else Decimal("24.50"))
    expected = (price_commands(changes) + quantity_commands(changes)
                + publication_commands([o for i, o in enumerate(ids) if i % 10 == 0], "END"))
    commands = sim.commands()
    assert sorted(c.id for c in commands) == sorted(c.command_id("push:faults") for c in expected)
    assert all(c.applied == 1 for c in commands)
    assert sim.block_violations == 0  # nobody called while the client id was blocked
    assert retries > 0 and sim.rate_limited > 0 and lossy[0].lost > 0 and lossy[0].timed_out > 0
    assert any(r.status == 503 for r in sim.requests)


class LoseFirstPutAnswer(httpx.BaseTransport):
    """The nasty timeout, on purpose: the first PUT reaches the vendor, its answer never comes back."""

    def __init__(self, inner: httpx.BaseTransport):
        self.inner = inner
        self.lost = False

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = self.inner.handle_request(request)
        if request.method == "PUT" and not self.lost:
            self.lost = True
            raise httpx.ReadTimeout("answer lost", request=request)
        return response


def test_lost_put_answer_is_found_by_its_id_not_sent_twice(make_channel, sim: AllegroSimulator) -> None:
    ids = sim.add_offers(2)
    channel, _ = make_channel(wrap=LoseFirstPutAnswer)
    assert all(r.ok for r in channel.push([qty(o, 8) for o in ids], idempotency_key="push:lost"))
    assert [r.status for r in sim.requests if r.method == "PUT"] == [201, 409]  # the retry hit "already used"
    (command,) = sim.commands()
    assert command.applied == 1 and sim.offer(ids[0]).quantity == 8


def test_429_blocks_everyone_on_the_client_id(make_channel, sim: AllegroSimulator) -> None:
    sim.add_offers(2)
    shared = LocalRateLimiter()  # two seller accounts of one application share one bucket
    first, _ = make_channel("shop-a", limiter=shared, key="allegro:hub-client", rate_limit_block=0.3)
    second, _ = make_channel("shop-b", limiter=shared, key="allegro:hub-client", rate_limit_block=0.3)
    sim.block_scale = 0.004  # the vendor's minute lasts 240 ms here
    sim.start_429_burst()
    with pytest.raises(RetryableError) as caught:
        list(first.listings())
    assert caught.value.retry_after == pytest.approx(0.3)
    started = time.monotonic()
    assert len(list(second.listings())) == 2  # it waited the block out instead of calling into it
    assert time.monotonic() - started >= 0.2
    assert sim.block_violations == 0 and sim.rate_limited == 1


def test_10000_quantity_changes_cost_at_most_30_requests(make_channel, sim: AllegroSimulator) -> None:
    ids = sim.add_offers(10_000, quantity=1)
    sim.command_delay = 0.01
    channel, _ = make_channel(command_poll_interval=0.05)
    changes = [qty(o, 2 + i % 5) for i, o in enumerate(ids)]  # a restock: five target quantities
    sim.reset_requests()
    results = channel.push(changes, idempotency_key="push:bench")
    assert all(r.ok for r in results) and len(results) == 10_000
    count = sim.request_count()
    print(f"\n10,000 quantity changes: {count} HTTP requests "
          f"({sim.request_count(is_put)} PUT, {count - sim.request_count(is_put)} GET)")
    assert count <= 30
    assert len(sim.commands()) == 10
    assert sim.offer(ids[0]).quantity == 2 and sim.offer(ids[-1]).quantity == 2 + 9_999 % 5


def test_built_by_the_runtime_from_a_config(engine, tmp_path, monkeypatch, sim: AllegroSimulator, validated) -> None:
    from connectors.allegro.channel import AllegroChannel
    from hub.platform import registry
    from hub.platform.config import load
    from hub.platform.connectors import Connectors

    config = tmp_path / "hub.toml"
    config.write_text("""
[connectors.shop-a]
kind = "allegro"
api_url = "https://allegro.sim"
auth_url = "https://allegro.sim"
client_id = "hub-client"
client_secret = { env = "ALLEGRO_SECRET" }
command_poll_interval = "10ms"
[connectors.shop-b]
kind = "allegro"
client_id = "hub-client"
client_secret = "x"
""")
    monkeypatch.setenv("ALLEGRO_SECRET", "hub-secret")  # connector options resolve secrets from os.environ
    loaded = load(config)
    assert registry.validate_connectors(loaded) == []
    connectors = Connectors(loaded, engine, transports={"shop-a": validated(sim.transport())})
    try:
        assert connectors.throttle("shop-a").key == connectors.throttle("shop-b").key == "allegro:hub-client"
        assert connectors.throttle("shop-a").per_minute == 9000
        channel = connectors.get("shop-a")
        assert isinstance(channel, AllegroChannel)
        pair = sim.issue_tokens()
        connectors.tokens.save("shop-a", TokenSet(pair["access_token"], pair["refresh_token"],
                                                  utcnow() + timedelta(seconds=pair["expires_in"])))
        (offer_id,) = sim.add_offers(1)
        assert channel.push([qty(offer_id, 3)], idempotency_key="k") == [ChangeResult(offer_id, ok=True)]
        assert sim.offer(offer_id).quantity == 3
    finally:
        connectors.close()
