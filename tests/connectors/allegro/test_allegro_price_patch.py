"""Prices by whichever costs fewer requests: a price several offers share goes as a batch command, a price
one offer alone has goes by PATCH /sale/product-offers/{offerId}. Against the simulator, every exchange
checked against the vendor's swagger.yaml (conftest's ValidatingTransport)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from connectors.allegro.mapping import (
    COMMAND_REQUESTS,
    PricePatch,
    price_plan,
    price_request_floor,
)
from connectors.allegro.simulator import AllegroSimulator, Faults
from hub.kernel.errors import RetryableError
from hub.kernel.ports.channel import ChangeResult, ListingChange


def price(offer_id: str, amount: str) -> ListingChange:
    return ListingChange(offer_id, f"SKU-{offer_id}", price_gross=Decimal(amount))


def test_golden_patch_body_and_the_plan() -> None:
    changes = [price("1", "12.30"), price("2", "12.30"), price("3", "7"), price("4", "19.99"), price("3", "8.00")]
    commands, patches = price_plan(changes)
    assert [(c.group, c.offer_ids) for c in commands] == [("PLN 12.30", ("1", "2"))]
    assert patches == [PricePatch("3", Decimal("8.00"), "PLN"), PricePatch("4", Decimal("19.99"), "PLN")]
    assert patches[0].body() == {"sellingMode": {"price": {"amount": "8.00", "currency": "PLN"}}}
    assert price_request_floor(changes) == 3  # 12.30, 8.00 and 19.99: no request carries two prices
    # 1,001 offers at one price: a command of 1,000 and the last one alone by PATCH
    commands, patches = price_plan([price(str(i), "5.00") for i in range(1001)])
    assert [len(c.offer_ids) for c in commands] == [1000] and len(patches) == 1


def test_distinct_prices_go_by_patch_and_shared_ones_by_command(make_channel, sim: AllegroSimulator) -> None:
    ids = sim.add_offers(8, quantity=1, price="10.00")
    channel, validating = make_channel()
    changes = [price(o, f"{20 + i}.99") for i, o in enumerate(ids[:5])] + [price(o, "9.90") for o in ids[5:]]
    before = len(sim.requests)
    assert channel.push(changes, idempotency_key="push:patch") == [ChangeResult(o, ok=True) for o in ids]
    assert [sim.offer(o).price for o in ids] == [Decimal(f"{20 + i}.99") for i in range(5)] + [Decimal("9.90")] * 3
    assert sim.patches == 5
    assert [(c.kind, c.offer_ids) for c in sim.commands()] == [("price", ids[5:])]
    requests = sim.requests[before:]
    # five PATCHes, and the one command's check, PUT and status read: fewer than six commands' twelve
    assert len([r for r in requests if r.method == "PATCH"]) == 5
    assert len(requests) <= 5 + 1 + COMMAND_REQUESTS < 6 * COMMAND_REQUESTS
    assert len(validating.checked) == len(sim.requests)


def test_an_edit_allegro_finishes_later_is_polled_until_done(make_channel, sim: AllegroSimulator) -> None:
    sim.faults = Faults(patch_async_rate=1.0, patch_async_delay=0.2)
    (offer_id,) = sim.add_offers(1, price="10.00")
    channel, _ = make_channel(command_poll_interval="50ms")
    assert channel.push([price(offer_id, "11.11")], idempotency_key="push:async") == [ChangeResult(offer_id, ok=True)]
    assert sim.offer(offer_id).price == Decimal("11.11")
    polls = [r for r in sim.requests if "/operations/" in r.path]
    assert polls and polls[-1].status == 303 and {r.status for r in polls[:-1]} <= {202}


def test_an_edit_still_processing_is_a_retryable_failure_and_an_endless_one_retries_the_job(
        make_channel, sim: AllegroSimulator) -> None:
    sim.faults = Faults(patch_async_rate=1.0, patch_async_delay=60)
    (first,) = sim.add_offers(1, price="10.00")
    channel, _ = make_channel(command_timeout="0.3s", command_poll_interval="50ms")
    with pytest.raises(RetryableError, match="still processing"):
        channel.push([price(first, "11.11")], idempotency_key="push:slow")
    (result,) = channel.push([price(first, "12.12")], idempotency_key="push:busy")  # the edit still runs
    assert result.ok is False and result.retryable and "409" in (result.error or "")
