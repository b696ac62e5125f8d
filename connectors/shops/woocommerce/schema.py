"""JSON Schemas for the WooCommerce REST API v3 bodies this connector sends and reads.

WooCommerce publishes no OpenAPI file, so these are written from the official
REST API v3 reference (Products, Product variations, batch endpoints,
Authentication) and cover only the properties the connector relies on.
Response objects allow extra properties (the real ones carry dozens more);
what we send does not, so a typo in a request body fails the tests.

Plain data only: the daemon never imports jsonschema. The tests validate every
request the connector sends and every response the simulator gives against
``schema_for``.
"""

from __future__ import annotations

import re
from typing import Any

DIALECT = "https://json-schema.org/draft/2020-12/schema"
BATCH_LIMIT = 100  # woocommerce_rest_batch_items_limit: create + update + delete per request

_ID = {"type": "integer", "minimum": 1}
_DECIMAL = {"type": "string", "pattern": r"^\d+(\.\d+)?$"}  # what regular_price looks like once set
_PRICE_READ = {"type": "string", "pattern": r"^(\d+(\.\d+)?)?$"}  # "" when no price is set
_STOCK_STATUS = {"enum": ["instock", "outofstock", "onbackorder"]}

PRODUCT: dict[str, Any] = {
    "type": "object",
    "required": ["id", "sku", "type", "manage_stock", "stock_quantity", "stock_status", "regular_price", "price"],
    "properties": {
        "id": _ID,
        "sku": {"type": "string"},
        "global_unique_id": {"type": "string"},  # GTIN/EAN, WooCommerce 9.2+
        "type": {"enum": ["simple", "grouped", "external", "variable"]},
        "status": {"enum": ["draft", "pending", "private", "publish", "future", "trash"]},
        "manage_stock": {"type": "boolean"},
        "stock_quantity": {"type": ["integer", "null"]},
        "stock_status": _STOCK_STATUS,
        "regular_price": _PRICE_READ,
        "price": _PRICE_READ,
        "variations": {"type": "array", "items": _ID},
        "parent_id": {"type": "integer", "minimum": 0},
    },
}

VARIATION: dict[str, Any] = {
    "type": "object",
    "required": ["id", "sku", "manage_stock", "stock_quantity", "stock_status", "regular_price", "price"],
    "properties": {
        "id": _ID,
        "sku": {"type": "string"},
        "global_unique_id": {"type": "string"},
        "status": {"enum": ["draft", "pending", "private", "publish"]},
        # true, false, or "parent" when the stock is kept on the variable product
        "manage_stock": {"anyOf": [{"type": "boolean"}, {"const": "parent"}]},
        "stock_quantity": {"type": ["integer", "null"]},
        "stock_status": _STOCK_STATUS,
        "regular_price": _PRICE_READ,
        "price": _PRICE_READ,
        "parent_id": {"type": "integer", "minimum": 0},
    },
}

# {code, message, data}: a WP_Error, as a whole-request error body and inside batch items
ERROR: dict[str, Any] = {
    "type": "object",
    "required": ["code", "message"],
    "properties": {
        "code": {"type": "string", "minLength": 1},
        "message": {"type": "string"},
        "data": {"anyOf": [{"type": "object", "properties": {"status": {"type": "integer"}}}, {"type": "null"}]},
    },
}

BATCH_ITEM_ERROR: dict[str, Any] = {
    "type": "object",
    "required": ["id", "error"],
    "properties": {"id": {"type": "integer", "minimum": 0}, "error": ERROR},
}

# One item of the "update" list we send: absolute values only, so re-sending it is harmless.
BATCH_UPDATE_ITEM: dict[str, Any] = {
    "type": "object",
    "required": ["id"],
    "minProperties": 2,
    "additionalProperties": False,
    "properties": {
        "id": _ID,
        "manage_stock": {"const": True},
        "stock_quantity": {"type": "integer", "minimum": 0},
        "regular_price": _DECIMAL,
    },
    "dependentRequired": {"stock_quantity": ["manage_stock"]},
}

BATCH_REQUEST: dict[str, Any] = {
    "type": "object",
    "minProperties": 1,
    "additionalProperties": False,
    "properties": {
        "create": {"type": "array", "maxItems": BATCH_LIMIT, "items": {"type": "object"}},
        "update": {"type": "array", "minItems": 1, "maxItems": BATCH_LIMIT, "items": BATCH_UPDATE_ITEM},
        "delete": {"type": "array", "maxItems": BATCH_LIMIT, "items": _ID},
    },
}


def _batch_response(item: dict[str, Any]) -> dict[str, Any]:
    entry = {"anyOf": [BATCH_ITEM_ERROR, item]}
    return {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "create": {"type": "array", "items": entry},
            "update": {"type": "array", "items": entry},
            "delete": {"type": "array", "items": entry},
        },
    }


PRODUCTS_BATCH_RESPONSE = _batch_response(PRODUCT)
VARIATIONS_BATCH_RESPONSE = _batch_response(VARIATION)
PRODUCT_LIST: dict[str, Any] = {"type": "array", "items": PRODUCT}
VARIATION_LIST: dict[str, Any] = {"type": "array", "items": VARIATION}

# Query strings arrive as text; these are the list parameters we use.
LIST_QUERY: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "page": {"type": "string", "pattern": r"^[1-9]\d*$"},
        "per_page": {"type": "string", "pattern": r"^([1-9]|[1-9]\d|100)$"},
        "orderby": {"enum": ["id", "date", "modified", "title", "slug", "include", "menu_order"]},
        "order": {"enum": ["asc", "desc"]},
        "sku": {"type": "string"},
    },
}

# (method, path under /wp-json/wc/v3) -> (request schema, 2xx response schema)
_ENDPOINTS: list[tuple[str, re.Pattern[str], dict[str, Any], dict[str, Any]]] = [
    ("GET", re.compile(r"^/products$"), LIST_QUERY, PRODUCT_LIST),
    ("GET", re.compile(r"^/products/\d+/variations$"), LIST_QUERY, VARIATION_LIST),
    ("POST", re.compile(r"^/products/batch$"), BATCH_REQUEST, PRODUCTS_BATCH_RESPONSE),
    ("POST", re.compile(r"^/products/\d+/variations/batch$"), BATCH_REQUEST, VARIATIONS_BATCH_RESPONSE),
]


def schema_for(method: str, path: str) -> tuple[dict[str, Any], dict[str, Any]] | None:
    """(request, response) schemas for an endpoint the connector uses; ``path`` is below ``/wc/v3``.

    GET request schemas describe the query string, POST ones the JSON body. Non-2xx
    responses are ``ERROR`` bodies.
    """
    for verb, pattern, request, response in _ENDPOINTS:
        if verb == method.upper() and pattern.match(path):
            return request, response
    return None
