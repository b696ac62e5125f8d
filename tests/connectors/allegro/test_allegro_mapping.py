"""Golden requests: the exact command bodies mapping.py builds, chunking, ids, and report mapping."""

from __future__ import annotations

import uuid
from decimal import Decimal

import pytest

from connectors.allegro import SPEC, AllegroOptions
from connectors.allegro.mapping import (
    CommandKind,
    api_error_text,
    format_amount,
    listing_from_offer,
    price_commands,
    publication_commands,
    quantity_commands,
    report_done,
    task_failures,
)
from hub.kernel.ports.capability import Capability
from hub.kernel.ports.channel import Listing, ListingChange


def change(offer_id: str, quantity: int | None = None, price: str | None = None,
           currency: str = "PLN") -> ListingChange:
    return ListingChange(offer_id, f"SKU-{offer_id}", quantity=quantity,
                         price_gross=None if price is None else Decimal(price), currency=currency)


def test_price_commands_golden_bodies_grouped_by_amount() -> None:
    commands = price_commands([change("3", price="19.90"), change("1", price="12.30"), change("2", price="12.30"),
                               change("4", quantity=5)])
    assert [(c.kind, c.group, c.chunk, c.offer_ids) for c in commands] == [
        (CommandKind.PRICE, "PLN 12.30", 0, ("1", "2")),
        (CommandKind.PRICE, "PLN 19.90", 0, ("3",)),
    ]
    assert commands[0].path == "/sale/offer-price-change-commands"
    assert commands[0].body == {
        "modification": {"type": "FIXED_PRICE", "price": {"amount": "12.30", "currency": "PLN"}},
        "offerCriteria": [{"type": "CONTAINS_OFFERS", "offers": [{"id": "1"}, {"id": "2"}]}],
    }


def test_price_amounts_are_strings_with_two_decimals() -> None:
    (command,) = price_commands([change("1", price="7")])
    assert command.body["modification"]["price"] == {"amount": "7.00", "currency": "PLN"}
    assert format_amount(Decimal("1234.5")) == "1234.50"
    for bad in ("12.345", "0", "-1", "NaN"):
        with pytest.raises(ValueError):
            format_amount(Decimal(bad))


def test_quantity_commands_golden_bodies_and_zero_left_out() -> None:
    commands = quantity_commands([change("1", quantity=5), change("2", quantity=0), change("3", quantity=5),
                                  change("4", quantity=12), change("5", price="1.00")])
    assert [c.body for c in commands] == [
        {"modification": {"changeType": "FIXED", "value": 5},
         "offerCriteria": [{"type": "CONTAINS_OFFERS", "offers": [{"id": "1"}, {"id": "3"}]}]},
        {"modification": {"changeType": "FIXED", "value": 12},
         "offerCriteria": [{"type": "CONTAINS_OFFERS", "offers": [{"id": "4"}]}]},
    ]
    assert commands[0].path == "/sale/offer-quantity-change-commands"


def test_publication_commands_golden_bodies() -> None:
    (end,) = publication_commands(["9", "8", "9"], "END")
    assert end.path == "/sale/offer-publication-commands"
    assert end.body == {"publication": {"action": "END"},
                        "offerCriteria": [{"type": "CONTAINS_OFFERS", "offers": [{"id": "8"}, {"id": "9"}]}]}
    (activate,) = publication_commands(["8"], "ACTIVATE")
    assert activate.body["publication"] == {"action": "ACTIVATE"}
    assert publication_commands([], "END") == []
    with pytest.raises(ValueError):
        publication_commands(["1"], "DELETE")


def test_commands_hold_at_most_1000_offers() -> None:
    ids = [f"{i:05d}" for i in range(2500)]
    commands = quantity_commands([change(i, quantity=3) for i in ids])
    assert [len(c.offer_ids) for c in commands] == [1000, 1000, 500]
    assert [c.chunk for c in commands] == [0, 1, 2]
    assert [len(c.body["offerCriteria"][0]["offers"]) for c in commands] == [1000, 1000, 500]
    assert sum((c.offer_ids for c in commands), ()) == tuple(ids)
    assert [len(c.offer_ids) for c in price_commands([change(i, price="5.00") for i in ids[:1001]])] == [1000, 1]
    assert [len(c.offer_ids) for c in publication_commands(ids[:1000], "END")] == [1000]


def test_one_change_per_offer_the_last_wins() -> None:
    commands = quantity_commands([change("1", quantity=2), change("1", quantity=3)])
    assert [(c.group, c.offer_ids) for c in commands] == [("3", ("1",))]


def test_command_ids_are_derived_from_the_job_key_and_the_content() -> None:
    first = quantity_commands([change("1", quantity=2), change("2", quantity=2)])[0]
    again = quantity_commands([change("2", quantity=2), change("1", quantity=2)])[0]
    key = "push:allegro-main:42"
    assert first.command_id(key) == again.command_id(key)  # a retry rebuilds the same id
    assert uuid.UUID(first.command_id(key)).version == 5
    assert first.command_id(key) != first.command_id("push:allegro-main:43")
    other = quantity_commands([change("1", quantity=2)])[0]
    assert other.command_id(key) != first.command_id(key)  # other content, other command
    price = price_commands([change("1", price="2.00"), change("2", price="2.00")])[0]
    assert price.command_id(key) != first.command_id(key)


def test_listing_from_offer() -> None:
    offer = {"id": "7712", "name": "Kubek", "external": {"id": "SKU-1"},
             "sellingMode": {"format": "BUY_NOW", "price": {"amount": "49.99", "currency": "PLN"}},
             "stock": {"available": 4, "sold": 1}, "publication": {"status": "ACTIVE"}}
    assert listing_from_offer(offer) == Listing("7712", "SKU-1", None, 4, Decimal("49.99"), "PLN", True)
    ended = {**offer, "publication": {"status": "ENDED"}}
    assert listing_from_offer(ended).quantity == 0  # not on sale: what the hub pushed as 0
    assert listing_from_offer(ended).active is False
    assert listing_from_offer(ended).stock == 4  # what the ended offer keeps: no sale took it down to 0
    bare = {"id": "1", "publication": {"status": "INACTIVE"}}
    assert listing_from_offer(bare) == Listing("1", None, None, 0, None, "PLN", False, stock=0)


def test_report_done_needs_scheduled_tasks() -> None:
    assert not report_done({"taskCount": {"failed": 0, "success": 0, "total": 0}})  # right after PUT
    assert not report_done({"taskCount": {"failed": 1, "success": 3, "total": 10}})
    assert report_done({"taskCount": {"failed": 1, "success": 9, "total": 10}})
    assert not report_done({})


def test_task_failures() -> None:
    report = {"tasks": [
        {"offer": {"id": "1"}, "status": "SUCCESS", "errors": []},
        {"offer": {"id": "2"}, "status": "FAIL", "message": "The offer does not exist.",
         "errors": [{"code": "OFFER_NOT_FOUND", "message": "The offer does not exist.",
                     "userMessage": "Oferta nie istnieje."}]},
        {"offer": {"id": "3"}, "status": "FAIL", "errors": [{"code": "INTERNAL_SERVER_ERROR", "message": "boom"}]},
    ]}
    failures = task_failures(report)
    assert set(failures) == {"2", "3"}
    assert failures["2"].error == "The offer does not exist. (OFFER_NOT_FOUND: Oferta nie istnieje.)"
    assert failures["2"].retryable is False
    assert failures["3"].retryable is True
    assert api_error_text({"errors": [{"code": "X", "message": "y"}]}) == "X: y"
    assert api_error_text({"error": "invalid_grant"}) is None


def test_spec_declaration() -> None:
    assert SPEC.kind == "allegro" and SPEC.role == "channel"
    assert SPEC.capabilities == {Capability.LISTINGS_READ, Capability.BATCH_STOCK, Capability.BATCH_PRICE,
                                 Capability.ORDERS, Capability.ORDER_STATUS, Capability.TRACKING_PUSH,
                                 Capability.RETURNS, Capability.REFUNDS}
    assert SPEC.default_rate_limit_per_minute == 9000
    assert SPEC.push_batch_size == 10_000  # the channel cuts commands of 1,000 per target value itself
    assert SPEC.options_model is AllegroOptions
    assert SPEC.extra["rate_limit_key"]("shop-a", {"client_id": "abc"}) == "allegro:abc"
    assert SPEC.extra["rate_limit_key"]("shop-b", {"client_id": "abc"}) == "allegro:abc"


def test_options() -> None:
    opts = AllegroOptions.model_validate({"client_id": "c", "client_secret": "s"})
    assert (opts.api_base, opts.auth_base) == ("https://api.allegro.pl", "https://allegro.pl")
    sandbox = AllegroOptions.model_validate({"client_id": "c", "client_secret": "s", "environment": "sandbox"})
    assert sandbox.api_base == "https://api.allegro.pl.allegrosandbox.pl"
    assert sandbox.auth_base == "https://allegro.pl.allegrosandbox.pl"
    custom = AllegroOptions.model_validate({"client_id": "c", "client_secret": "hunter2",
                                            "api_url": "http://127.0.0.1:9/", "command_timeout": "2m"})
    assert custom.api_base == "http://127.0.0.1:9" and custom.command_timeout == 120
    assert "hunter2" not in repr(custom) and custom.client_secret.get() == "hunter2"
    with pytest.raises(ValueError, match="extra"):
        AllegroOptions.model_validate({"client_id": "c", "client_secret": "s", "clientid": "typo"})
    with pytest.raises(ValueError):
        AllegroOptions.model_validate({"client_id": "c", "client_secret": "s", "api_url": "api.allegro.pl"})
