"""schema.py: the schemas are valid JSON Schema and say what the REST API v3 reference says."""

from __future__ import annotations

from typing import Any

import jsonschema
import pytest
from woocommerce_testkit import check

from connectors.shops.woocommerce import schema


@pytest.mark.parametrize("name", ["PRODUCT", "VARIATION", "ERROR", "BATCH_ITEM_ERROR", "BATCH_UPDATE_ITEM",
                                  "BATCH_REQUEST", "PRODUCTS_BATCH_RESPONSE", "VARIATIONS_BATCH_RESPONSE",
                                  "PRODUCT_LIST", "VARIATION_LIST", "LIST_QUERY"])
def test_each_schema_is_valid_draft_2020_12(name: str) -> None:
    jsonschema.Draft202012Validator.check_schema(getattr(schema, name))


def test_endpoints_we_use_have_schemas_and_others_do_not() -> None:
    assert schema.schema_for("GET", "/products") == (schema.LIST_QUERY, schema.PRODUCT_LIST)
    assert schema.schema_for("GET", "/products/22/variations") == (schema.LIST_QUERY, schema.VARIATION_LIST)
    assert schema.schema_for("post", "/products/batch") == (schema.BATCH_REQUEST, schema.PRODUCTS_BATCH_RESPONSE)
    assert schema.schema_for("POST", "/products/22/variations/batch")[1] is schema.VARIATIONS_BATCH_RESPONSE  # type: ignore[index]
    assert schema.schema_for("GET", "/orders") is None
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
