"""JSON Schemas for the WooCommerce REST API v3 bodies this connector sends and reads.

WooCommerce publishes no OpenAPI file, so these are written from the official
REST API v3 reference (Products, Product variations, batch endpoints, Orders,
Order refunds, Authentication) and cover only the properties the connector
relies on.
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
# date-time values as the API prints them: site-local or GMT, never with an offset
_DATETIME = {"type": "string", "pattern": r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}$"}
_DATETIME_OR_NULL = {"anyOf": [_DATETIME, {"type": "null"}]}
# what a product or variation says of its price: price is read-only, the current price (the sale price while
# on_sale); a sale may be limited to dates (null when not)
_PRICES = {
    "regular_price": _PRICE_READ,
    "sale_price": _PRICE_READ,
    "price": _PRICE_READ,
    "on_sale": {"type": "boolean"},
    **{key: _DATETIME_OR_NULL for key in ("date_on_sale_from", "date_on_sale_from_gmt", "date_on_sale_to",
                                          "date_on_sale_to_gmt")},
}

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
        **_PRICES,
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
        **_PRICES,
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

# One item of the "update" list we send: absolute values only, so re-sending it is harmless. A sale price is
# only ever cleared, with its dates ("" clears them; the API ignores null), and only along with a regular price.
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
        "sale_price": {"const": ""},
        "date_on_sale_from": {"const": ""},
        "date_on_sale_to": {"const": ""},
    },
    "dependentRequired": {"stock_quantity": ["manage_stock"],
                          "sale_price": ["regular_price", "date_on_sale_from", "date_on_sale_to"],
                          "date_on_sale_from": ["sale_price"], "date_on_sale_to": ["sale_price"]},
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

# --- orders and refunds ------------------------------------------------------------------

_MONEY = {"type": "string", "pattern": r"^-?\d+(\.\d+)?$"}  # totals; refunds print negative ones
# the core statuses are pending, processing, on-hold, completed, cancelled, refunded, failed, trash and
# checkout-draft; plugins register more (e.g. "shipped"), so only the slug's shape is checked
_ORDER_STATUS = {"type": "string", "pattern": r"^[a-z0-9_-]{1,20}$"}
_META = {
    "type": "array",
    "items": {"type": "object", "required": ["key"], "properties": {"id": {"type": "integer"},
                                                                    "key": {"type": "string"}}},
}
_TAXES = {
    "type": "array",
    "items": {"type": "object", "required": ["id", "total"],
              # shipping and fee lines print an empty subtotal
              "properties": {"id": {"type": "integer"}, "total": _MONEY,
                             "subtotal": {"type": "string", "pattern": r"^(-?\d+(\.\d+)?)?$"}}},
}
_ADDRESS = {
    "type": "object",
    "required": ["first_name", "last_name", "company", "address_1", "address_2", "city", "postcode", "country"],
    "properties": {key: {"type": "string"} for key in (
        "first_name", "last_name", "company", "address_1", "address_2", "city", "state", "postcode", "country",
        "email", "phone")},
}
_LINE_ITEM = {
    "type": "object",
    "required": ["id", "name", "product_id", "variation_id", "quantity", "total", "total_tax", "taxes", "sku"],
    "properties": {
        "id": _ID,
        "name": {"type": "string"},
        "product_id": {"type": "integer", "minimum": 0},  # 0 once the product was deleted
        "variation_id": {"type": "integer", "minimum": 0},
        "quantity": {"type": "integer"},
        "subtotal": _MONEY,
        "subtotal_tax": _MONEY,
        "total": _MONEY,  # after discounts, always without tax
        "total_tax": _MONEY,
        "taxes": _TAXES,
        "meta_data": _META,
        "sku": {"type": ["string", "null"]},
        "price": {"type": "number"},  # net unit price; a number, unlike every other amount
    },
}
_SHIPPING_LINE = {
    "type": "object",
    "required": ["id", "method_title", "method_id", "total", "total_tax"],
    "properties": {"id": _ID, "method_title": {"type": "string"}, "method_id": {"type": "string"},
                   "instance_id": {"type": "string"}, "total": _MONEY, "total_tax": _MONEY, "taxes": _TAXES},
}
_FEE_LINE = {
    "type": "object",
    "required": ["id", "name", "total", "total_tax"],
    "properties": {"id": _ID, "name": {"type": "string"}, "tax_class": {"type": "string"},
                   "tax_status": {"enum": ["taxable", "none"]}, "total": _MONEY,  # negative for a discount fee
                   "total_tax": _MONEY, "taxes": _TAXES, "meta_data": _META},
}
# what a coupon took: already deducted from the lines' totals (every line total is after discounts)
_COUPON_LINE = {
    "type": "object",
    "required": ["id", "code", "discount", "discount_tax"],
    "properties": {"id": _ID, "code": {"type": "string"}, "discount": _MONEY, "discount_tax": _MONEY,
                   "meta_data": _META},
}
_TAX_LINE = {
    "type": "object",
    "required": ["id", "rate_id", "tax_total"],
    "properties": {"id": _ID, "rate_code": {"type": "string"}, "rate_id": {"type": "integer"},
                   "label": {"type": "string"}, "compound": {"type": "boolean"}, "tax_total": _MONEY,
                   "shipping_tax_total": _MONEY, "rate_percent": {"type": "number"}},
}

ORDER: dict[str, Any] = {
    "type": "object",
    "required": ["id", "status", "currency", "date_created_gmt", "date_modified_gmt", "total", "total_tax",
                 "prices_include_tax", "billing", "shipping", "payment_method", "transaction_id", "date_paid_gmt",
                 "line_items", "shipping_lines", "meta_data", "refunds"],
    "properties": {
        "id": _ID,
        "parent_id": {"type": "integer", "minimum": 0},
        "number": {"type": "string"},
        "status": _ORDER_STATUS,
        "currency": {"type": "string", "pattern": r"^[A-Z]{3}$"},
        "date_created": _DATETIME,
        "date_created_gmt": _DATETIME,
        "date_modified": _DATETIME,
        "date_modified_gmt": _DATETIME,
        "date_paid_gmt": _DATETIME_OR_NULL,
        "date_completed_gmt": _DATETIME_OR_NULL,
        "discount_total": _MONEY,
        "shipping_total": _MONEY,
        "total": _MONEY,
        "total_tax": _MONEY,
        "prices_include_tax": {"type": "boolean"},
        "customer_id": {"type": "integer", "minimum": 0},
        "billing": _ADDRESS,
        "shipping": _ADDRESS,
        "payment_method": {"type": "string"},
        "payment_method_title": {"type": "string"},
        "transaction_id": {"type": "string"},
        "meta_data": _META,
        "line_items": {"type": "array", "items": _LINE_ITEM},
        "tax_lines": {"type": "array", "items": _TAX_LINE},
        "shipping_lines": {"type": "array", "items": _SHIPPING_LINE},
        "fee_lines": {"type": "array", "items": _FEE_LINE},
        "coupon_lines": {"type": "array", "items": _COUPON_LINE},
        # a summary of the order's refunds: total is negative
        "refunds": {"type": "array", "items": {"type": "object", "required": ["id", "reason", "total"],
                                               "properties": {"id": _ID, "reason": {"type": "string"},
                                                              "total": _MONEY}}},
    },
}

REFUND: dict[str, Any] = {
    "type": "object",
    "required": ["id", "date_created_gmt", "amount", "reason", "refunded_payment", "line_items"],
    "properties": {
        "id": _ID,
        "date_created": _DATETIME,
        "date_created_gmt": _DATETIME,
        "amount": _DECIMAL,
        "reason": {"type": "string"},
        "refunded_by": {"type": "integer", "minimum": 0},
        "refunded_payment": {"type": "boolean"},
        "meta_data": _META,
        # copies of the refunded order lines: negative quantity and totals, and the order line's id in the
        # _refunded_item_id meta entry
        "line_items": {"type": "array", "items": _LINE_ITEM},
    },
}

ORDER_LIST: dict[str, Any] = {"type": "array", "items": ORDER}
REFUND_LIST: dict[str, Any] = {"type": "array", "items": REFUND}

# GET /orders as the poller asks for it: orders modified after a GMT instant, oldest change first
ORDERS_QUERY: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["per_page", "orderby", "order", "dates_are_gmt"],
    "properties": {
        "page": LIST_QUERY["properties"]["page"],
        "per_page": LIST_QUERY["properties"]["per_page"],
        "orderby": {"enum": ["date", "id", "include", "title", "slug", "modified"]},
        "order": {"enum": ["asc", "desc"]},
        "modified_after": _DATETIME,
        "dates_are_gmt": {"const": "true"},
    },
}

NO_QUERY: dict[str, Any] = {"type": "object", "additionalProperties": False, "maxProperties": 0}

# PUT /orders/{id}: only the status, so nothing else the seller edited in the shop is overwritten
ORDER_UPDATE: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["status"],
    # the slug without the database's "wc-" prefix, which the API would refuse
    "properties": {"status": {"type": "string", "pattern": r"^(?!wc-)[a-z0-9_-]{1,20}$"}},
}

# "number" in the docs; WordPress's REST layer takes a numeric string for a number (rest_validate_value_from_schema
# checks is_numeric), and a string is what the hub sends: money is never a float on the wire
_REFUND_AMOUNT = {"anyOf": [{"type": "number", "minimum": 0}, {"type": "string", "pattern": r"^\d+(\.\d+)?$"}]}
REFUND_REQUEST: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["amount", "reason", "api_refund", "api_restock"],
    "properties": {
        "amount": {"type": "string", "pattern": r"^\d+(\.\d+)?$"},  # the gross total to give back
        "reason": {"type": "string", "minLength": 1},
        "api_refund": {"type": "boolean"},  # true: the payment gateway sends the money back
        "api_restock": {"type": "boolean"},  # true: the shop puts the goods back into its own stock
        "line_items": {
            "type": "array",
            "items": {
                "type": "object",
                "additionalProperties": False,
                "required": ["id", "quantity", "refund_total"],
                "properties": {
                    "id": _ID,  # the order line's id
                    "quantity": {"type": "integer", "minimum": 1},
                    "refund_total": _REFUND_AMOUNT,  # without tax
                    "refund_tax": {"type": "array", "items": {
                        "type": "object", "additionalProperties": False, "required": ["id", "refund_total"],
                        "properties": {"id": _ID, "refund_total": _REFUND_AMOUNT}}},  # id: the tax rate
                },
            },
        },
    },
}

# (method, path under /wp-json/wc/v3) -> (request schema, 2xx response schema)
_ENDPOINTS: list[tuple[str, re.Pattern[str], dict[str, Any], dict[str, Any]]] = [
    ("GET", re.compile(r"^/products$"), LIST_QUERY, PRODUCT_LIST),
    ("GET", re.compile(r"^/products/\d+/variations$"), LIST_QUERY, VARIATION_LIST),
    ("POST", re.compile(r"^/products/batch$"), BATCH_REQUEST, PRODUCTS_BATCH_RESPONSE),
    ("POST", re.compile(r"^/products/\d+/variations/batch$"), BATCH_REQUEST, VARIATIONS_BATCH_RESPONSE),
    ("GET", re.compile(r"^/orders$"), ORDERS_QUERY, ORDER_LIST),
    ("GET", re.compile(r"^/orders/\d+$"), NO_QUERY, ORDER),
    ("PUT", re.compile(r"^/orders/\d+$"), ORDER_UPDATE, ORDER),
    ("GET", re.compile(r"^/orders/\d+/refunds$"), LIST_QUERY, REFUND_LIST),
    ("POST", re.compile(r"^/orders/\d+/refunds$"), REFUND_REQUEST, REFUND),
]


def schema_for(method: str, path: str) -> tuple[dict[str, Any], dict[str, Any]] | None:
    """(request, response) schemas for an endpoint the connector uses; ``path`` is below ``/wc/v3``.

    GET request schemas describe the query string, POST and PUT ones the JSON body. Non-2xx
    responses are ``ERROR`` bodies.
    """
    for verb, pattern, request, response in _ENDPOINTS:
        if verb == method.upper() and pattern.match(path):
            return request, response
    return None
