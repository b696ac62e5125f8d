"""schema.py: the schemas are valid JSON Schema and say what the REST API v3 reference says."""

from __future__ import annotations

from typing import Any

import jsonschema
import pytest
from woocommerce_testkit import check

from connectors.shops.woocommerce import schema


@pytest.mark.parametrize("name", ["PRODUCT", "VARIATION", "ERROR", "BATCH_ITEM_ERROR", "BATCH_UPDATE_ITEM",
                                  "BATCH_REQUEST", "PRODUCTS_BATCH_RESPONSE", "VARIATIONS_BATCH_RESPONSE",
                                  "PRODUCT_LIST", "VARIATION_LIST", "LIST_QUERY", "ORDER", "ORDER_LIST", "REFUND",
                                  "REFUND_LIST", "ORDERS_QUERY", "NO_QUERY", "ORDER_UPDATE", "REFUND_REQUEST"])
def test_each_schema_is_valid_draft_2020_12(name: str) -> None:
    jsonschema.Draft202012Validator.check_schema(getattr(schema, name))


def test_endpoints_we_use_have_schemas_and_others_do_not() -> None:
    assert schema.schema_for("GET", "/products") == (schema.LIST_QUERY, schema.PRODUCT_LIST)
    assert schema.schema_for("GET", "/products/22/variations") == (schema.LIST_QUERY, schema.VARIATION_LIST)
    assert schema.schema_for("post", "/products/batch") == (schema.BATCH_REQUEST, schema.PRODUCTS_BATCH_RESPONSE)
    assert schema.schema_for("POST", "/products/22/variations/batch")[1] is schema.VARIATIONS_BATCH_RESPONSE  # type: ignore[index]
    assert schema.schema_for("GET", "/orders") == (schema.ORDERS_QUERY, schema.ORDER_LIST)
    assert schema.schema_for("GET", "/orders/723") == (schema.NO_QUERY, schema.ORDER)
    assert schema.schema_for("PUT", "/orders/723") == (schema.ORDER_UPDATE, schema.ORDER)
    assert schema.schema_for("GET", "/orders/723/refunds") == (schema.LIST_QUERY, schema.REFUND_LIST)
    assert schema.schema_for("POST", "/orders/723/refunds") == (schema.REFUND_REQUEST, schema.REFUND)
    assert schema.schema_for("POST", "/orders/723") is None  # updates go by PUT
    assert schema.schema_for("GET", "/coupons") is None
    assert schema.schema_for("DELETE", "/products/22") is None


def _invalid(instance_schema: dict[str, Any], instance: Any) -> bool:
    return not jsonschema.Draft202012Validator(instance_schema).is_valid(instance)


def test_requests_we_must_never_send() -> None:
    assert _invalid(schema.BATCH_REQUEST, {})
    assert _invalid(schema.BATCH_REQUEST, {"update": [{"id": n, "regular_price": "1.00"} for n in range(1, 102)]})
    assert _invalid(schema.BATCH_REQUEST, {"update": [{"id": 1}]})  # nothing to set
    assert _invalid(schema.BATCH_REQUEST, {"update": [{"id": 1, "stock_quantity": 3}]})  # without manage_stock
    assert _invalid(schema.BATCH_REQUEST, {"update": [{"id": 1, "regular_price": 19.99}]})  # a float, not a string
    assert _invalid(schema.BATCH_REQUEST, {"update": [{"id": 1, "regular_price": "19,99"}]})
    assert _invalid(schema.BATCH_REQUEST, {"update": [{"id": 1, "price": "19.99"}]})  # price is read-only
    assert _invalid(schema.BATCH_REQUEST, {"modify": []})
    ended = {"id": 1, "regular_price": "10.00", "sale_price": "", "date_on_sale_from": "", "date_on_sale_to": ""}
    check(schema.BATCH_REQUEST, {"update": [ended]}, "a price that ends the shop's sale")
    assert _invalid(schema.BATCH_REQUEST, {"update": [{**ended, "sale_price": "8.00"}]})  # the hub never sets a sale
    assert _invalid(schema.BATCH_REQUEST, {"update": [{**ended, "date_on_sale_to": None}]})  # null would be ignored
    assert _invalid(schema.BATCH_REQUEST, {"update": [{k: v for k, v in ended.items() if k != "regular_price"}]})
    assert _invalid(schema.BATCH_REQUEST, {"update": [{k: v for k, v in ended.items() if k != "date_on_sale_to"}]})
    assert _invalid(schema.BATCH_REQUEST, {"update": [{"id": 1, "regular_price": "1.00", "date_on_sale_from": ""}]})
    check(schema.BATCH_REQUEST, {"update": [{"id": 799, "manage_stock": True, "stock_quantity": 0,
                                             "regular_price": "24.54"}]}, "a request we send")


def test_the_reference_examples_fit() -> None:
    # shaped like the reference's "Retrieve a product variation" and batch examples (trimmed)
    variation = {"id": 732, "sku": "", "price": "9.00", "regular_price": "9.00", "sale_price": "", "status": "publish",
                 "manage_stock": False, "stock_quantity": None, "stock_status": "instock", "backorders": "no"}
    check(schema.VARIATION, variation, "variation example")
    check(schema.VARIATION, {**variation, "manage_stock": "parent"}, "variation with parent stock")
    product = {"id": 799, "sku": "", "type": "variable", "status": "publish", "price": "", "regular_price": "",
               "manage_stock": False, "stock_quantity": None, "stock_status": "instock", "variations": [732, 733],
               "parent_id": 0, "name": "Ship Your Idea", "on_sale": False}
    check(schema.PRODUCTS_BATCH_RESPONSE, {"update": [product], "delete": [
        {"id": 794, "error": {"code": "woocommerce_rest_product_invalid_id", "message": "Invalid ID.",
                              "data": {"status": 400}}}]}, "batch example")
    assert _invalid(schema.PRODUCT, {**product, "stock_status": "available"})
    assert _invalid(schema.PRODUCTS_BATCH_RESPONSE, {"updated": []})


def test_order_requests_we_must_never_send() -> None:
    poll = {"modified_after": "2024-06-11T09:59:59", "dates_are_gmt": "true", "orderby": "modified", "order": "asc",
            "per_page": "100", "page": "1"}
    check(schema.ORDERS_QUERY, poll, "the poll's query")
    assert _invalid(schema.ORDERS_QUERY, {k: v for k, v in poll.items() if k != "dates_are_gmt"})  # local time!
    assert _invalid(schema.ORDERS_QUERY, {**poll, "modified_after": "2024-06-11T09:59:59+02:00"})
    assert _invalid(schema.ORDERS_QUERY, {**poll, "orderby": "date_modified"})
    assert _invalid(schema.NO_QUERY, {"context": "edit"})
    check(schema.ORDER_UPDATE, {"status": "completed"}, "a status update")
    assert _invalid(schema.ORDER_UPDATE, {"status": "completed", "billing": {}})  # would overwrite the seller's edits
    assert _invalid(schema.ORDER_UPDATE, {"status": "wc-completed"})
    refund = {"amount": "24.60", "reason": "REFUND [hub:k]", "api_refund": False, "api_restock": False,
              "line_items": [{"id": 311, "quantity": 1, "refund_total": 20.0,
                              "refund_tax": [{"id": 1, "refund_total": 4.6}]}]}
    check(schema.REFUND_REQUEST, refund, "a refund")
    assert _invalid(schema.REFUND_REQUEST, {**refund, "amount": 24.6})  # the amount is a string
    # left out, api_refund would default to true and send money through the gateway
    assert _invalid(schema.REFUND_REQUEST, {k: v for k, v in refund.items() if k != "api_refund"})
    assert _invalid(schema.REFUND_REQUEST, {k: v for k, v in refund.items() if k != "api_restock"})
    assert _invalid(schema.REFUND_REQUEST, {**refund, "line_items": [{"id": 311, "quantity": 0, "refund_total": 0}]})
    assert _invalid(schema.REFUND_REQUEST, {**refund, "line_items": [{"id": 311, "qty": 1, "refund_total": 1}]})


def test_the_refund_reference_example_fits() -> None:
    # shaped like the reference's "List all refunds" example (trimmed)
    refund = {"id": 724, "date_created": "2017-03-21T16:55:37", "date_created_gmt": "2017-03-21T19:55:37",
              "amount": "9.00", "reason": "", "refunded_by": 1, "refunded_payment": False, "meta_data": [],
              "line_items": [{"id": 314, "name": "Woo Album #2", "product_id": 87, "variation_id": 0, "quantity": -1,
                              "tax_class": "", "subtotal": "-9.00", "subtotal_tax": "0.00", "total": "-9.00",
                              "total_tax": "0.00", "taxes": [],
                              "meta_data": [{"id": 2076, "key": "_refunded_item_id", "value": "311"}], "sku": "",
                              "price": -9}]}
    check(schema.REFUND_LIST, [refund], "refund example")
    assert _invalid(schema.REFUND, {**refund, "amount": "-9.00"})
