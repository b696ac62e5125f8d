"""Golden tests for mapping.py: exact batch bodies, chunking at 100, variations per parent, answers -> results."""

from __future__ import annotations

from decimal import Decimal

import pytest
from woocommerce_testkit import check

from connectors.shops.woocommerce import mapping
from connectors.shops.woocommerce.schema import BATCH_REQUEST, PRODUCT, PRODUCTS_BATCH_RESPONSE, VARIATION
from hub.kernel.ports.channel import ChangeResult, Listing, ListingChange


def change(external_id: str, quantity: int | None = None, price: str | None = None, **kw: object) -> ListingChange:
    return ListingChange(external_id, sku=f"SKU-{external_id}", quantity=quantity,
                         price_gross=Decimal(price) if price is not None else None, **kw)  # type: ignore[arg-type]


NO_SALE = {"sale_price": "", "date_on_sale_from": "", "date_on_sale_to": ""}  # what ends a sale set in the shop


# --- requests --------------------------------------------------------------------------------


def test_simple_products_become_one_products_batch_with_absolute_values() -> None:
    plan = mapping.plan_push([change("801", 7, "19.99"), change("802", quantity=0), change("803", price="5")])
    assert [(b.path, b.body) for b in plan.batches] == [
        ("/products/batch", {"update": [
            {"id": 801, "manage_stock": True, "stock_quantity": 7, "regular_price": "19.99", **NO_SALE},
            {"id": 802, "manage_stock": True, "stock_quantity": 0},
            {"id": 803, "regular_price": "5.00", **NO_SALE},
        ]}),
    ]
    assert [i.index for i in plan.batches[0].items] == [0, 1, 2]
    check(BATCH_REQUEST, plan.batches[0].body, "products batch")


def test_variations_are_grouped_per_parent_after_the_products() -> None:
    plan = mapping.plan_push([
        change("22/731", 1, "9.00"),
        change("801", 2),
        change("40/41", price="129.90"),
        change("22/732", 0),
    ])
    assert [(b.path, b.body) for b in plan.batches] == [
        ("/products/batch", {"update": [{"id": 801, "manage_stock": True, "stock_quantity": 2}]}),
        ("/products/22/variations/batch", {"update": [
            {"id": 731, "manage_stock": True, "stock_quantity": 1, "regular_price": "9.00", **NO_SALE},
            {"id": 732, "manage_stock": True, "stock_quantity": 0},
        ]}),
        ("/products/40/variations/batch", {"update": [{"id": 41, "regular_price": "129.90", **NO_SALE}]}),
    ]
    assert [[i.index for i in b.items] for b in plan.batches] == [[1], [0, 3], [2]]
    for batch in plan.batches:
        check(BATCH_REQUEST, batch.body, batch.path)


def test_chunks_at_100_per_endpoint() -> None:
    products = [change(str(1000 + n), n) for n in range(250)]
    variations = [change(f"7/{2000 + n}", n) for n in range(101)]
    plan = mapping.plan_push(products + variations)
    assert [(b.path, len(b.body["update"])) for b in plan.batches] == [
        ("/products/batch", 100), ("/products/batch", 100), ("/products/batch", 50),
        ("/products/7/variations/batch", 100), ("/products/7/variations/batch", 1),
    ]
    assert plan.batches[2].body["update"][-1] == {"id": 1249, "manage_stock": True, "stock_quantity": 249}
    assert plan.batches[4].body == {"update": [{"id": 2100, "manage_stock": True, "stock_quantity": 100}]}
    assert sorted(i.index for b in plan.batches for i in b.items) == list(range(351))
    for batch in plan.batches:
        check(BATCH_REQUEST, batch.body, batch.path)


def test_smaller_batch_size_and_limits() -> None:
    plan = mapping.plan_push([change(str(n), 1) for n in range(1, 6)], batch_size=2)
    assert [len(b.items) for b in plan.batches] == [2, 2, 1]
    with pytest.raises(ValueError):
        mapping.plan_push([], batch_size=101)


@pytest.mark.parametrize(("amount", "text"), [
    ("19.99", "19.99"), ("20", "20.00"), ("0", "0.00"), ("19.9", "19.90"), ("1E+1", "10.00"), ("12.345", "12.345"),
])
def test_money_is_sent_as_a_decimal_string_never_rounded(amount: str, text: str) -> None:
    assert mapping.format_money(Decimal(amount)) == text


def test_changes_that_cannot_be_sent_are_rejected_without_a_request() -> None:
    changes = [
        change("abc", 1),
        change("12/", 1),
        change("0", 1),
        change("5", -1),
        change("6", price="-1"),
        change("7", price="NaN"),
        ListingChange("8", "SKU-8", price_gross=Decimal("10"), currency="EUR"),
        change("9"),  # nothing to set
        change("10", 3),
    ]
    plan = mapping.plan_push(changes)
    assert [i.index for b in plan.batches for i in b.items] == [8]
    assert set(plan.rejected) == {0, 1, 2, 3, 4, 5, 6}
    assert all(not r.ok and not r.retryable for r in plan.rejected.values())
    assert "not a WooCommerce id" in (plan.rejected[0].error or "")
    assert "EUR" in (plan.rejected[6].error or "")
    assert plan.unchanged == {7: ChangeResult("9", ok=True)}


def test_external_ids() -> None:
    assert mapping.parse_external_id("123") == (123, None)
    assert mapping.parse_external_id("123/456") == (123, 456)
    for bad in ("", "x", "1/2/3", "-1", "01", "1/0"):
        assert mapping.parse_external_id(bad) is None


# --- listings ----------------------------------------------------------------------------------

SIMPLE = {"id": 794, "sku": "KUB-01", "global_unique_id": "5901234123457", "type": "simple", "status": "publish",
          "manage_stock": True, "stock_quantity": 12, "stock_status": "instock", "regular_price": "24.54",
          "price": "21.99", "sale_price": "21.99", "variations": [], "parent_id": 0}
VARIABLE = {"id": 22, "sku": "KOSZ", "type": "variable", "status": "publish", "manage_stock": False,
            "stock_quantity": None, "stock_status": "instock", "regular_price": "", "price": "9.00",
            "variations": [732], "parent_id": 0}
VARIANT = {"id": 732, "sku": "KOSZ-M", "status": "publish", "manage_stock": True, "stock_quantity": 3,
           "stock_status": "instock", "regular_price": "9.00", "price": "9.00", "parent_id": 22}


def test_product_and_variation_listings() -> None:
    check(PRODUCT, SIMPLE, "simple product")
    check(PRODUCT, VARIABLE, "variable product")
    check(VARIATION, VARIANT, "variation")
    # on sale: the listing's price is what a buyer pays (price, 21.99), not the regular price (24.54)
    assert mapping.product_listing(SIMPLE) == Listing(
        external_id="794", sku="KUB-01", ean="5901234123457", quantity=12, price_gross=Decimal("21.99"))
    assert mapping.variation_listing(VARIABLE, VARIANT) == Listing(
        external_id="22/732", sku="KOSZ-M", ean=None, quantity=3, price_gross=Decimal("9.00"))


def test_listing_edge_cases() -> None:
    unmanaged = {**SIMPLE, "manage_stock": False, "stock_quantity": None, "regular_price": "", "sale_price": "",
                 "price": "", "sku": "", "status": "draft"}
    listing = mapping.product_listing(unmanaged)
    assert (listing.quantity, listing.price_gross, listing.sku, listing.active) == (0, None, None, False)
    draft_parent = {**VARIABLE, "status": "draft"}
    assert mapping.variation_listing(draft_parent, VARIANT).active is False
    assert mapping.parse_money("12,50") is None
    assert mapping.parse_money("Infinity") is None
    assert not mapping.has_own_stock({"type": "external"}) and not mapping.has_own_stock({"type": "grouped"})
    assert mapping.has_own_stock({"type": "simple"}) and mapping.has_own_stock({})


# --- batch answers -------------------------------------------------------------------------------


def _answer(woo_id: int, quantity: int | None, price: str) -> dict[str, object]:
    return {"id": woo_id, "sku": f"S{woo_id}", "type": "simple", "manage_stock": quantity is not None,
            "stock_quantity": quantity, "stock_status": "instock", "regular_price": price, "price": price}


def test_batch_answers_map_to_one_result_per_change() -> None:
    changes = [change("801", 7, "19.99"), change("802", 1), change("803", 2), change("804", price="3.50")]
    (batch,) = mapping.plan_push(changes).batches
    response = {"update": [
        _answer(801, 7, "19.99"),
        {"id": 802, "error": {"code": "woocommerce_rest_product_invalid_id", "message": "Invalid ID.",
                              "data": {"status": 400}}},
        {"id": 803, "error": {"code": "db_error", "message": "Deadlock found", "data": {"status": 500}}},
        _answer(804, None, "3.50"),
    ]}
    check(PRODUCTS_BATCH_RESPONSE, response, "batch answer")
    assert mapping.batch_results(batch, response) == [
        (0, ChangeResult("801", ok=True)),
        (1, ChangeResult("802", ok=False, error="woocommerce_rest_product_invalid_id: Invalid ID.")),
        (2, ChangeResult("803", ok=False, error="db_error: Deadlock found", retryable=True)),
        (3, ChangeResult("804", ok=True)),
    ]


def test_answers_are_matched_by_id_when_out_of_order_or_missing() -> None:
    (batch,) = mapping.plan_push([change("1", 1), change("2", 2), change("3", 3)]).batches
    response = {"update": [_answer(3, 3, "1.00"), _answer(1, 1, "1.00")]}
    results = dict(mapping.batch_results(batch, response))
    assert results[0].ok and results[2].ok
    assert not results[1].ok and results[1].retryable and "no entry" in (results[1].error or "")
    assert all(not r.ok and r.retryable for _, r in mapping.batch_results(batch, {}))


def test_an_answer_that_does_not_show_the_change_is_a_failure() -> None:
    (batch,) = mapping.plan_push([change("1", 5), change("2", price="10.00")]).batches
    response = {"update": [_answer(1, None, "1.00"), _answer(2, None, "9.99")]}
    (_, stock), (_, price) = mapping.batch_results(batch, response)
    assert not stock.ok and "stock_quantity=None" in (stock.error or "")
    assert not price.ok and "'9.99'" in (price.error or "")


# --- sale prices ------------------------------------------------------------------------------------


def test_the_listing_price_is_what_a_buyer_pays() -> None:
    scheduled = {**SIMPLE, "price": "24.54", "on_sale": False, "date_on_sale_from": "2099-01-01T00:00:00"}
    check(PRODUCT, scheduled, "a sale to come")
    assert mapping.product_listing(scheduled).price_gross == Decimal("24.54")  # not on sale yet
    on_sale_variant = {**VARIANT, "regular_price": "9.00", "sale_price": "7.50", "price": "7.50", "on_sale": True}
    check(VARIATION, on_sale_variant, "a variation on sale")
    assert mapping.variation_listing(VARIABLE, on_sale_variant).price_gross == Decimal("7.50")
    # an answer a plugin trimmed of price: the sale price while on_sale, else the regular price
    trimmed = {k: v for k, v in SIMPLE.items() if k != "price"}
    assert mapping.product_listing({**trimmed, "on_sale": True}).price_gross == Decimal("21.99")
    assert mapping.product_listing({**trimmed, "on_sale": False}).price_gross == Decimal("24.54")
    with pytest.raises(mapping.UnreadableAnswer, match=r"price = 21\.99: expected a price as a string"):
        mapping.product_listing({**SIMPLE, "price": 21.99})


def test_a_price_ends_a_sale_set_in_the_shop_unless_the_seller_runs_shop_sales() -> None:
    changes = [change("801", 7, "19.99"), change("802", quantity=1), change("22/731", price="9.00")]
    ends = mapping.plan_push(changes)
    assert [b.body for b in ends.batches] == [
        {"update": [{"id": 801, "manage_stock": True, "stock_quantity": 7, "regular_price": "19.99",
                     "sale_price": "", "date_on_sale_from": "", "date_on_sale_to": ""},
                    {"id": 802, "manage_stock": True, "stock_quantity": 1}]},
        {"update": [{"id": 731, "regular_price": "9.00", "sale_price": "", "date_on_sale_from": "",
                     "date_on_sale_to": ""}]},
    ]
    keeps = mapping.plan_push(changes, allow_shop_sales=True)
    assert [b.body for b in keeps.batches] == [
        {"update": [{"id": 801, "manage_stock": True, "stock_quantity": 7, "regular_price": "19.99"},
                    {"id": 802, "manage_stock": True, "stock_quantity": 1}]},
        {"update": [{"id": 731, "regular_price": "9.00"}]},
    ]
    for batch in ends.batches + keeps.batches:
        check(BATCH_REQUEST, batch.body, batch.path)


def test_the_answer_must_show_the_buyer_paying_the_hubs_price() -> None:
    (batch,) = mapping.plan_push([change("1", price="10.00"), change("2", 3, "20.00")]).batches
    still_on_sale = {**_answer(1, None, "10.00"), "sale_price": "8.00", "price": "8.00", "on_sale": True}
    response = {"update": [still_on_sale, _answer(2, 3, "20.00")]}
    check(PRODUCTS_BATCH_RESPONSE, response, "batch answer")
    (_, kept), (_, ended) = mapping.batch_results(batch, response)
    assert not kept.ok and not kept.retryable
    assert kept.error == ("shop answered price='8.00' (what a buyer pays; sale_price='8.00') after setting 10.00 "
                          "and clearing the sale price")
    assert ended.ok
    (shop_sales,) = mapping.plan_push([change("1", price="10.00")], allow_shop_sales=True).batches
    # the seller runs the sale: the regular price is what the hub set, and that is all it checks
    assert mapping.batch_results(shop_sales, {"update": [still_on_sale]}) == [(0, ChangeResult("1", ok=True))]
