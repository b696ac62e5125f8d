"""An in-memory WooCommerce shop speaking the REST API v3 subset the connector uses.

A WSGI app: use it in-process with ``sim.transport()`` (httpx.WSGITransport
plus the transport-level faults), or on a loopback port with ``serve()`` /
``stop()``. It keeps products, variations, orders and refunds in memory,
checks HTTP Basic auth against one consumer key and secret, logs every
exchange, and injects faults on demand from a seeded generator, so a run is
reproducible:

- a fraction of 5xx answers, some before and some after the change was applied
  (a gateway that gave up while WordPress finished);
- bursts of 429 with Retry-After;
- timeouts before the request reaches the shop, and the nastier kind where the
  shop applies the request and the response is lost (``LossyTransport`` raises
  httpx.ReadTimeout after forwarding);
- a per-item error for chosen ids, besides the real ones (unknown id, stock on
  an external product, a duplicate SKU).

Response shapes follow the official REST API v3 reference: lists with
X-WP-Total / X-WP-TotalPages and a Link header, batch answers ``{"update": [...]}``
holding the updated object or ``{"id", "error": {"code", "message", "data": {"status"}}}``,
more than 100 objects in one batch refused whole (413
``woocommerce_rest_request_entity_too_large``, as WooCommerce's check_batch_limit answers;
the reference only says "limited to up to 100 objects"). Money is a string, ids are integers,
``stock_quantity`` an integer or null. A product's read-only ``price`` is its sale price while
a sale is on (``set_sale``: a sale price, optionally from/to dates, by the shop's clock) and its
regular price otherwise; an update clears a sale date with "" and ignores null, like the API.

Orders live on the simulator's own clock (``clock``, moved by ``advance``):
``add_order`` places one, ``set_status`` / ``modify_order`` / ``refund_by_hand``
change it the way the shop's admin would, and every change stamps
``date_modified`` with the clock's second, so tests decide which orders share
a second. Like WooCommerce, the site-local date fields are the shop's time
(UTC+2 here) and the ``*_gmt`` ones UTC; ``modified_after`` is exclusive and
compares against the GMT field only with ``dates_are_gmt=true``; orders with
the same ``date_modified`` come in id order; creating a refund stamps its
order's ``date_modified``, a full refund turns the order ``refunded``, and
setting ``refunded`` by hand creates the refund of what is left.

Orders move stock the way WooCommerce's own hooks do (``_reduce_stock`` / ``_restore_stock``):
reaching processing, completed or on-hold takes the ordered quantities off the products (and
variations) that manage stock, once per order (the ``_order_stock_reduced`` order meta the
reference's order examples show); cancelled or pending puts back what was taken; a refund created
with ``api_restock`` (default true) puts back its lines' quantities. Refunded and failed do not
touch stock.

Order notes follow _order-notes.md: ``POST /orders/<id>/notes`` (``note`` mandatory, ``customer_note`` and
``added_by_user`` default false), ``GET /orders/<id>/notes`` (``type`` any, customer or internal; newest first,
as the reference's list example), ``GET`` and ``DELETE`` (``force=true`` required) of one note. A note is a
comment on the order, not a change of the order: it leaves ``date_modified`` alone. Every customer note is
counted in ``customer_emails`` ("they will be notified"). ``PUT /orders/<id>`` takes ``meta_data`` entries
({key, value}, or with the id of an entry to change): an entry without an id sets the key's value, replacing
the entries of that key (WooCommerce's update_meta_data; the reference documents only the properties).
"""

from __future__ import annotations

import base64
import binascii
import copy
import json
import math
import random
import re
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any
from urllib.parse import parse_qs, urlencode

import httpx

from connectors.simserver import LoopbackServer

API_PREFIX = "/wp-json/wc/v3"
BATCH_LIMIT = 100
_PRICE = re.compile(r"^\d+(\.\d+)?$")
_SALE_DATES = ("date_on_sale_from", "date_on_sale_from_gmt", "date_on_sale_to", "date_on_sale_to_gmt")
_PRODUCT_FIELDS = ("id", "name", "slug", "sku", "global_unique_id", "type", "status", "price", "regular_price",
                   "sale_price", *_SALE_DATES, "on_sale", "manage_stock", "stock_quantity", "stock_status",
                   "backorders", "parent_id", "variations")
_VARIATION_FIELDS = ("id", "sku", "global_unique_id", "status", "price", "regular_price", "sale_price", *_SALE_DATES,
                     "on_sale", "manage_stock", "stock_quantity", "stock_status", "backorders", "parent_id",
                     "attributes")
_NO_SALE: dict[str, Any] = {"sale_price": "", **dict.fromkeys(_SALE_DATES)}

ORDER_STATUSES = ("pending", "processing", "on-hold", "completed", "cancelled", "refunded", "failed",
                  "checkout-draft")
_NOT_LISTED = frozenset({"checkout-draft", "trash"})  # what status=any leaves out
_PAID = frozenset({"processing", "completed"})  # WooCommerce stamps date_paid on reaching one of these
# The reference says only that set_paid "will set the status to processing and reduce stock items" (_orders.md,
# Order properties) and shows "_order_stock_reduced": "yes" in its order examples; which statuses move stock is
# WooCommerce's own hooks (includes/wc-stock-functions.php): wc_maybe_reduce_stock_levels runs on
# woocommerce_order_status_completed / _processing / _on-hold (and payment_complete),
# wc_maybe_increase_stock_levels on woocommerce_order_status_cancelled / _pending. Nothing runs on refunded (its
# refund of what is left has no lines to restock) or failed.
STOCK_REDUCING = frozenset({"processing", "completed", "on-hold"})
STOCK_RESTORING = frozenset({"cancelled", "pending"})
START = datetime(2024, 6, 11, 10, 0, 0, tzinfo=UTC)
SHOP_OFFSET = timedelta(hours=2)  # the shop's timezone, for the site-local date fields
GATEWAYS = {  # id -> (title, refunds through the gateway's API)
    # WooCommerce's offline gateways keep WC_Payment_Gateway's default supports = ['products'], no 'refunds'
    "bacs": ("Przelew bankowy", False),
    "cheque": ("Czek", False),
    "cod": ("Płatność przy odbiorze", False),
    "przelewy24": ("Przelewy24", True),
    "stripe": ("Karta płatnicza", True),
}
TAX_RATE_IDS = {23: 1, 8: 2, 5: 3, 0: 4}  # VAT % -> the shop's tax rate id
_CENT = Decimal("0.01")
_MODIFIED_AFTER = re.compile(r"^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(Z|\+00:00)?$")
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}:\d{2})?$")
_STAMP = "%Y-%m-%dT%H:%M:%S"
DEFAULT_BILLING = {"first_name": "Jan", "last_name": "Kowalski", "company": "", "address_1": "ul. Długa 5",
                   "address_2": "m. 3", "city": "Kraków", "state": "", "postcode": "30-001", "country": "PL",
                   "email": "jan.kowalski@example.pl", "phone": "+48 600 100 200"}
_EMPTY_ADDRESS = {"first_name": "", "last_name": "", "company": "", "address_1": "", "address_2": "", "city": "",
                  "state": "", "postcode": "", "country": "", "phone": ""}

StartResponse = Callable[[str, list[tuple[str, str]]], Any]


@dataclass(frozen=True)
class Faults:
    """What goes wrong, drawn per request from the simulator's seeded generator."""

    error_rate: float = 0.0  # share of requests answered 5xx
    error_after_apply: float = 0.5  # of those, the share answered after the change was applied
    burst_rate: float = 0.0  # chance that a request starts a burst of 429s
    burst_length: int = 3
    retry_after: int = 1  # seconds, sent as Retry-After with every 429
    timeout_rate: float = 0.0  # transport: the request never reaches the shop
    lost_response_rate: float = 0.0  # transport: the shop applies the request, the response is lost
    delay_rate: float = 0.0  # served mode: the shop applies the request, then answers late
    delay_seconds: float = 0.0


@dataclass
class Exchange:
    """One request as the shop saw it (status 0: it never got there)."""

    method: str
    path: str  # below /wp-json/wc/v3 when under it, else the full path
    query: dict[str, str]
    body: Any
    status: int = 0
    response: Any = None
    fault: str | None = None
    applied: bool = False
    url: str = ""  # the request's address without its query (what a Link header names)


class _Reply(Exception):
    def __init__(self, status: int, code: str, message: str, headers: Iterable[tuple[str, str]] = ()):
        super().__init__(message)
        self.status, self.code, self.message, self.headers = status, code, message, list(headers)


def _wp_error(code: str, message: str, status: int) -> dict[str, Any]:
    return {"code": code, "message": message, "data": {"status": status}}


class WooSimulator:
    """The shop. Seed it with ``add_simple`` / ``add_variable``; read it back with ``product`` / ``variation``."""

    def __init__(self, consumer_key: str = "ck_test", consumer_secret: str = "cs_test", *, seed: int = 0):
        self.consumer_key = consumer_key
        self.consumer_secret = consumer_secret
        self.products: dict[int, dict[str, Any]] = {}
        self.variations: dict[int, dict[int, dict[str, Any]]] = {}  # parent id -> variation id -> variation
        self.log: list[Exchange] = []
        self.faults = Faults()
        self.item_errors: dict[int, tuple[str, str, int]] = {}  # id -> (code, message, status)
        self._rng = random.Random(seed)
        self._next_id = 100  # products, variations, orders and refunds share WordPress's post ids
        self.orders: dict[int, dict[str, Any]] = {}
        self.refunds: dict[int, list[dict[str, Any]]] = {}  # order id -> its refunds, oldest first
        self.custom_statuses: set[str] = set()  # statuses a plugin registered (e.g. "shipped")
        # the statuses whose reaching takes / puts back an order's stock; a test can emulate a plugin that
        # hooks more (e.g. one restoring stock on refunded) by adding to them
        self.stock_reducing_statuses: set[str] = set(STOCK_REDUCING)
        self.stock_restoring_statuses: set[str] = set(STOCK_RESTORING)
        # order id -> order item id -> units its stock was reduced by (WooCommerce's _reduced_stock item meta)
        self._reduced_stock: dict[int, dict[int, int]] = {}
        self.clock = START
        self._next_item_id = 500  # order items have their own table
        self._next_meta_id = 9000
        self.notes: dict[int, list[dict[str, Any]]] = {}  # order id -> its notes, oldest first
        self._next_note_id = 270  # notes are comments: their own table
        self.customer_emails: list[tuple[int, str]] = []  # (order id, note) of every customer note e-mailed
        self._burst_left = 0
        self._lock = threading.RLock()
        self._loopback = LoopbackServer(self, "woo-simulator")

    # --- seeding and inspection ---------------------------------------------------------

    def _new_id(self) -> int:
        self._next_id += 1
        return self._next_id

    def add_simple(self, sku: str, quantity: int | None = 0, price: str = "10.00", *, product_type: str = "simple",
                   status: str = "publish", manage_stock: bool = True, ean: str = "") -> int:
        with self._lock:
            pid = self._new_id()
            self.products[pid] = _stock_status({
                "id": pid, "name": f"Product {sku}", "slug": sku.lower(), "sku": sku, "global_unique_id": ean,
                "type": product_type, "status": status, "regular_price": price, **_NO_SALE,
                "manage_stock": manage_stock, "stock_quantity": quantity if manage_stock else None,
                "stock_status": "instock", "backorders": "no", "parent_id": 0, "variations": [],
            })
            return pid

    def add_variable(self, sku: str, variations: Iterable[tuple[str, int | None, str]], *,
                     status: str = "publish") -> tuple[int, list[int]]:
        """A variable product with (sku, quantity, price) variations; returns (product id, variation ids)."""
        with self._lock:
            pid = self._new_id()
            self.products[pid] = {
                "id": pid, "name": f"Product {sku}", "slug": sku.lower(), "sku": sku, "global_unique_id": "",
                "type": "variable", "status": status, "regular_price": "", **_NO_SALE, "price": "",
                "on_sale": False, "manage_stock": False, "stock_quantity": None, "stock_status": "instock",
                "backorders": "no", "parent_id": 0, "variations": [],
            }
            self.variations[pid] = {}
            ids = [self._add_variation(pid, v_sku, qty, price) for v_sku, qty, price in variations]
            return pid, ids

    def _add_variation(self, pid: int, sku: str, quantity: int | None, price: str) -> int:
        vid = self._new_id()
        self.variations[pid][vid] = _stock_status({
            "id": vid, "sku": sku, "global_unique_id": "", "status": "publish", "regular_price": price,
            **_NO_SALE, "manage_stock": quantity is not None, "stock_quantity": quantity,
            "stock_status": "instock", "backorders": "no", "parent_id": pid,
            "attributes": [{"id": 0, "name": "Wariant", "option": sku}],
        })
        self.products[pid]["variations"].append(vid)
        return vid

    def product(self, pid: int) -> dict[str, Any]:
        with self._lock:
            return dict(self._priced(self.products[pid]))

    def variation(self, pid: int, vid: int) -> dict[str, Any]:
        with self._lock:
            return dict(self._priced(self.variations[pid][vid]))

    def set_sale(self, pid: int, sale_price: str, vid: int | None = None, *, start: datetime | None = None,
                 end: datetime | None = None) -> None:
        """The seller puts the product (or variation) on sale in the admin, from ``start`` to ``end``
        (UTC, either may be open); ``sale_price=""`` ends the sale."""
        with self._lock:
            target = self.products[pid] if vid is None else self.variations[pid][vid]
            target["sale_price"] = sale_price
            for key, moment in (("date_on_sale_from", start), ("date_on_sale_to", end)):
                target[key] = None if moment is None else (moment + SHOP_OFFSET).strftime(_STAMP)
                target[f"{key}_gmt"] = None if moment is None else moment.strftime(_STAMP)

    def _priced(self, item: dict[str, Any]) -> dict[str, Any]:
        """WooCommerce's read-only price and on_sale, by the shop's clock: the sale price while a sale is
        on (a sale price set, and the clock within its dates), the regular price otherwise."""
        now = self.clock.strftime(_STAMP)
        start, end = item.get("date_on_sale_from_gmt"), item.get("date_on_sale_to_gmt")
        on_sale = bool(item.get("sale_price")) and (start is None or start <= now) and (end is None or now <= end)
        item["on_sale"] = on_sale
        item["price"] = item["sale_price"] if on_sale else item.get("regular_price", "")
        return item

    def _show(self, item: dict[str, Any], fields: tuple[str, ...]) -> dict[str, Any]:
        return _public(self._priced(item), fields)

    def delete_product(self, pid: int) -> None:
        with self._lock:
            self.products.pop(pid, None)
            self.variations.pop(pid, None)

    # --- orders ----------------------------------------------------------------------------

    def advance(self, seconds: float = 1) -> datetime:
        """Move the shop's clock on; changes stamp ``date_modified`` with its whole second."""
        with self._lock:
            self.clock += timedelta(seconds=seconds)
            return self.clock

    def _stamp(self) -> tuple[str, str]:
        moment = self.clock.replace(microsecond=0)
        return (moment + SHOP_OFFSET).strftime("%Y-%m-%dT%H:%M:%S"), moment.strftime("%Y-%m-%dT%H:%M:%S")

    def _item_id(self) -> int:
        self._next_item_id += 1
        return self._next_item_id

    def _meta(self, key: str, value: Any) -> dict[str, Any]:
        self._next_meta_id += 1
        return {"id": self._next_meta_id, "key": key, "value": value}

    def add_order(
        self, lines: Iterable[tuple[int | tuple[int, int], int]], *, status: str = "processing",
        payment_method: str = "przelewy24", billing: Mapping[str, str] | None = None,
        shipping: Mapping[str, str] | None = None, nip: str | None = None, nip_key: str = "_billing_nip",
        prices_include_tax: bool = True, vat: int = 23, shipping_total: str = "15.00",
        shipping_method: tuple[str, str] | None = ("flat_rate", "Kurier DPD"), transaction_id: str = "",
        currency: str = "PLN", customer_note: str = "", meta: Mapping[str, Any] | None = None,
        fees: Iterable[tuple[str, str]] = (), coupon: tuple[str, str] | None = None,
    ) -> int:
        """Place an order now (``clock``), as the checkout would; returns its id.

        ``lines`` are (product id or (product id, variation id), quantity), priced at the
        product's current price, which is gross when ``prices_include_tax`` and net otherwise.
        ``shipping=None`` ships to the billing address (what the checkout saves when the buyer
        does not ask for another one); pass ``{}`` for an order without a shipping address.
        ``shipping_method=None`` ships nothing (no shipping line, no shipping cost). ``fees`` are
        (name, net amount) charged on top, taxed at ``vat`` (a negative one is a discount);
        ``coupon`` is (code, percent) off every line: like WooCommerce, each line's ``total`` and
        ``total_tax`` are after the discount (``subtotal`` before it), and the coupon line only
        says what it took.
        """
        with self._lock:
            oid = self._new_id()
            rate_id, rate = TAX_RATE_IDS[vat], Decimal(vat)
            off = Decimal(coupon[1]) if coupon else Decimal(0)
            items = [self._line_item(target, quantity, rate, rate_id, prices_include_tax, off)
                     for target, quantity in lines]
            ship_net = Decimal(shipping_total) if shipping_method else Decimal(0)
            ship_tax = (ship_net * rate / 100).quantize(_CENT, ROUND_HALF_UP)  # shipping costs are entered net
            fee_lines = []
            for name, amount in fees:
                fee_net = Decimal(amount)
                fee_tax = (fee_net * rate / 100).quantize(_CENT, ROUND_HALF_UP)
                fee_lines.append({"id": self._item_id(), "name": name, "tax_class": "", "tax_status": "taxable",
                                  "total": _fmt(fee_net), "total_tax": _fmt(fee_tax),
                                  "taxes": [{"id": rate_id, "total": _fmt(fee_tax), "subtotal": ""}],
                                  "meta_data": []})
            charged = items + fee_lines  # the cart's taxes: the products' and the fees'
            cart_tax = sum((Decimal(i["total_tax"]) for i in charged), Decimal(0))
            net = sum((Decimal(i["total"]) for i in charged), Decimal(0))
            discount = sum((Decimal(i["subtotal"]) - Decimal(i["total"]) for i in items), Decimal(0))
            discount_tax = sum((Decimal(i["subtotal_tax"]) - Decimal(i["total_tax"]) for i in items), Decimal(0))
            billing_part = {**DEFAULT_BILLING, **(billing or {})}
            if shipping is None:
                shipping_part = {k: billing_part.get(k, "") for k in _EMPTY_ADDRESS}
            else:
                shipping_part = {**_EMPTY_ADDRESS, **shipping}
            local, gmt = self._stamp()
            title, _refunds = GATEWAYS.get(payment_method, (payment_method, False))
            meta_data = [self._meta("_wc_order_attribution_source_type", "typein")]
            if nip is not None:
                meta_data.append(self._meta(nip_key, nip))
            meta_data += [self._meta(key, value) for key, value in (meta or {}).items()]
            order: dict[str, Any] = {
                "id": oid, "parent_id": 0, "number": str(oid), "order_key": f"wc_order_{oid:x}sim",
                "created_via": "checkout", "version": "9.1.0", "status": "pending", "currency": currency,
                "date_created": local, "date_created_gmt": gmt, "date_modified": local, "date_modified_gmt": gmt,
                "discount_total": _fmt(discount), "discount_tax": _fmt(discount_tax), "shipping_total": _fmt(ship_net),
                "shipping_tax": _fmt(ship_tax), "cart_tax": _fmt(cart_tax), "total": _fmt(net + cart_tax + ship_net
                                                                                         + ship_tax),
                "total_tax": _fmt(cart_tax + ship_tax), "prices_include_tax": prices_include_tax, "customer_id": 0,
                "customer_ip_address": "203.0.113.7", "customer_user_agent": "Mozilla/5.0",
                "customer_note": customer_note, "billing": billing_part, "shipping": shipping_part,
                "payment_method": payment_method, "payment_method_title": title, "transaction_id": transaction_id,
                "date_paid": None, "date_paid_gmt": None, "date_completed": None, "date_completed_gmt": None,
                "cart_hash": "", "meta_data": meta_data, "line_items": items,
                "tax_lines": [{"id": self._item_id(), "rate_code": f"PL-VAT {vat}%-1", "rate_id": rate_id,
                               "label": f"VAT {vat}%", "compound": False, "tax_total": _fmt(cart_tax),
                               "shipping_tax_total": _fmt(ship_tax), "rate_percent": vat, "meta_data": []}],
                "shipping_lines": [] if not shipping_method else [{
                    "id": self._item_id(), "method_title": shipping_method[1], "method_id": shipping_method[0],
                    "instance_id": "1", "total": _fmt(ship_net), "total_tax": _fmt(ship_tax),
                    "taxes": [{"id": rate_id, "total": _fmt(ship_tax), "subtotal": ""}], "meta_data": []}],
                "fee_lines": fee_lines, "refunds": [], "currency_symbol": "zł",
                "coupon_lines": [] if not coupon else [{
                    "id": self._item_id(), "code": coupon[0], "discount": _fmt(discount),
                    "discount_tax": _fmt(discount_tax), "meta_data": []}],
            }
            self.orders[oid] = order
            self.refunds[oid] = []
            if status != "pending":
                self._apply_status(order, status)
            return oid

    def _line_item(self, target: int | tuple[int, int], quantity: int, rate: Decimal, rate_id: int,
                   prices_include_tax: bool, off: Decimal = Decimal(0)) -> dict[str, Any]:
        """A product line; ``off`` percent of it is discounted by a coupon (subtotal before, total after)."""
        pid, vid = target if isinstance(target, tuple) else (target, 0)
        product = self.products[pid]
        source = self.variations[pid][vid] if vid else product
        price = Decimal(self._priced(source)["price"] or "0")  # what the buyer pays now, a sale included

        def split(amount: Decimal) -> tuple[Decimal, Decimal]:  # (net, tax) of a line amount at the shop's prices
            if prices_include_tax:
                tax = (amount * rate / (100 + rate)).quantize(_CENT, ROUND_HALF_UP)
                return amount - tax, tax
            return amount, (amount * rate / 100).quantize(_CENT, ROUND_HALF_UP)

        before = price * quantity
        sub_net, sub_tax = split(before)
        net, tax = split(before - (before * off / 100).quantize(_CENT, ROUND_HALF_UP))
        name = product["name"] + (f" - {source['attributes'][0]['option']}" if vid else "")
        return {
            "id": self._item_id(), "name": name, "product_id": pid, "variation_id": vid, "quantity": quantity,
            "tax_class": "", "subtotal": _fmt(sub_net), "subtotal_tax": _fmt(sub_tax), "total": _fmt(net),
            "total_tax": _fmt(tax), "taxes": [{"id": rate_id, "total": _fmt(tax), "subtotal": _fmt(sub_tax)}],
            "meta_data": [], "sku": source.get("sku", ""), "price": float(net / quantity),
            "parent_name": product["name"] if vid else None,
        }

    def order(self, oid: int) -> dict[str, Any]:
        with self._lock:
            return copy.deepcopy(self.orders[oid])

    def order_refunds(self, oid: int) -> list[dict[str, Any]]:
        with self._lock:
            return copy.deepcopy(self.refunds.get(oid, []))

    def _touch(self, order: dict[str, Any]) -> None:
        order["date_modified"], order["date_modified_gmt"] = self._stamp()

    def _apply_status(self, order: dict[str, Any], status: str) -> None:
        """A status transition with WooCommerce's side effects: date_paid on processing/completed
        (cash on delivery included), date_completed on completed, the order's stock taken on
        processing/completed/on-hold and put back on cancelled/pending (STOCK_REDUCING,
        STOCK_RESTORING), the refund of what is left when an order is set refunded."""
        if order["status"] == status:
            return
        order["status"] = status
        local, gmt = self._stamp()
        if status in _PAID and order["date_paid_gmt"] is None:
            order["date_paid"], order["date_paid_gmt"] = local, gmt
        if status == "completed":
            order["date_completed"], order["date_completed_gmt"] = local, gmt
        if status in self.stock_reducing_statuses:
            self._reduce_stock(order)
        elif status in self.stock_restoring_statuses:
            self._restore_stock(order)
        if status == "refunded":
            left = Decimal(order["total"]) - self._refunded(order["id"])
            if left > 0:
                self._create_refund(order, left, "Order fully refunded.", [], api_refund=False)
        self._touch(order)

    # --- stock moved by orders (WooCommerce's wc-stock-functions.php) ---------------------------

    def stock_reduced(self, oid: int) -> bool:
        """Whether the order holds stock now (its ``_order_stock_reduced`` meta is "yes")."""
        with self._lock:
            return any(m["key"] == "_order_stock_reduced" and m["value"] == "yes"
                       for m in self.orders[oid]["meta_data"])

    def _mark_stock_reduced(self, order: dict[str, Any], reduced: bool) -> None:
        """The order meta WooCommerce keeps with wc_bool_to_string: "yes" once the stock is taken, "no"
        once it is put back (the reference's order examples show ``"_order_stock_reduced": "yes"``)."""
        value = "yes" if reduced else "no"
        for meta in order["meta_data"]:
            if meta["key"] == "_order_stock_reduced":
                meta["value"] = value
                return
        order["meta_data"].append(self._meta("_order_stock_reduced", value))

    def _stock_holder(self, item: Mapping[str, Any]) -> dict[str, Any] | None:
        """The product or variation whose ``stock_quantity`` an order line moves, or None when nothing
        manages its stock: a variation with ``manage_stock`` "parent" counts on its parent's stock (the
        reference: manage_stock "Stock management at product level"; variations take "parent")."""
        product = self.products.get(item.get("product_id") or 0)
        if product is None:
            return None  # deleted: WooCommerce skips lines without a product
        vid = item.get("variation_id") or 0
        if vid:
            variation = self.variations.get(product["id"], {}).get(vid)
            if variation is None:
                return None
            if variation.get("manage_stock") is True:
                return variation
            if variation.get("manage_stock") != "parent":
                return None
        return product if product.get("manage_stock") is True else None

    def _move_stock(self, holder: dict[str, Any], delta: int) -> None:
        """Stock can go below zero (an order for more than is left); stock_status follows the quantity as
        the reference's product fields describe it: outofstock at zero or less without backorders,
        onbackorder with them, instock above zero (_stock_status)."""
        holder["stock_quantity"] = (holder.get("stock_quantity") or 0) + delta
        _stock_status(holder)

    def _reduce_stock(self, order: dict[str, Any]) -> None:
        """wc_maybe_reduce_stock_levels: nothing when the order's stock is taken already; otherwise each
        product line whose stock is managed loses its quantity, once per line (the line remembers how much,
        WooCommerce's _reduced_stock item meta), and the order is marked reduced even when no line was."""
        if self.stock_reduced(order["id"]):
            return
        reduced = self._reduced_stock.setdefault(order["id"], {})
        for item in order["line_items"]:
            holder = self._stock_holder(item)
            if reduced.get(item["id"]) or holder is None:
                continue
            self._move_stock(holder, -int(item["quantity"]))
            reduced[item["id"]] = int(item["quantity"])
        self._mark_stock_reduced(order, True)

    def _restore_stock(self, order: dict[str, Any]) -> None:
        """wc_maybe_increase_stock_levels: only an order whose stock was taken; each line gets back what it
        still holds (less what refunds restocked), and the order is marked not reduced, so the next
        processing takes it again."""
        if not self.stock_reduced(order["id"]):
            return
        reduced = self._reduced_stock.get(order["id"], {})
        for item in order["line_items"]:
            holder = self._stock_holder(item)
            held = reduced.get(item["id"], 0)
            if held <= 0 or holder is None:
                continue
            self._move_stock(holder, held)
            del reduced[item["id"]]
        self._mark_stock_reduced(order, False)

    def _restock_refunded(self, order: dict[str, Any], lines: list[Mapping[str, Any]]) -> None:
        """wc_restock_refunded_items, for a refund made with ``api_restock`` (the reference: "When true, the
        selected line items are restocked Default is true"): each refunded line's quantity goes back, but
        only for a line whose stock was taken, and the line then holds that much less."""
        reduced = self._reduced_stock.get(order["id"], {})
        items = {item["id"]: item for item in order["line_items"]}
        for line in lines:
            item = items.get(line.get("id"))
            quantity = int(line.get("quantity") or 0)
            if item is None or quantity <= 0 or not reduced.get(item["id"]):
                continue
            holder = self._stock_holder(item)
            if holder is None:
                continue
            self._move_stock(holder, quantity)
            reduced[item["id"]] -= quantity

    def set_status(self, oid: int, status: str) -> None:
        """The seller changes the status in the shop's admin."""
        with self._lock:
            self._apply_status(self.orders[oid], status)

    def modify_order(self, oid: int, **changes: Any) -> None:
        """The seller edits the order (top-level fields, e.g. ``billing=...``, ``customer_note=...``)."""
        with self._lock:
            order = self.orders[oid]
            for key, value in changes.items():
                order[key] = {**order[key], **value} if isinstance(order.get(key), dict) else value
            self._touch(order)

    def set_meta(self, oid: int, key: str, value: Any) -> None:
        with self._lock:
            order = self.orders[oid]
            order["meta_data"] = [m for m in order["meta_data"] if m["key"] != key] + [self._meta(key, value)]
            self._touch(order)

    def add_note(self, oid: int, note: str, *, customer_note: bool = False, author: str = "system") -> int:
        """A note on the order as the admin (or a plugin) adds it; returns its id."""
        with self._lock:
            return self._new_note(oid, note, customer_note, author)["id"]

    def order_notes(self, oid: int) -> list[dict[str, Any]]:
        """The order's notes, oldest first."""
        with self._lock:
            return copy.deepcopy(self.notes.get(oid, []))

    def _new_note(self, oid: int, note: str, customer_note: bool, author: str) -> dict[str, Any]:
        self._next_note_id += 1
        local, gmt = self._stamp()
        created = {"id": self._next_note_id, "author": author, "date_created": local, "date_created_gmt": gmt,
                   "note": note, "customer_note": customer_note}
        self.notes.setdefault(oid, []).append(created)
        if customer_note:
            self.customer_emails.append((oid, note))
        return created

    def _note_dto(self, oid: int, note: Mapping[str, Any]) -> dict[str, Any]:
        """An order note with the reference's _links."""
        base = f"https://example.com{API_PREFIX}/orders/{oid}"
        return {**note, "_links": {"self": [{"href": f"{base}/notes/{note['id']}"}],
                                   "collection": [{"href": f"{base}/notes"}], "up": [{"href": base}]}}

    def refund_by_hand(self, oid: int, amount: str, reason: str = "",
                       lines: Iterable[tuple[int, int]] = ()) -> int:
        """The seller refunds in the admin ("Refund manually"): ``lines`` are (order item id, quantity),
        each refunded at its full gross share. Returns the refund's id."""
        with self._lock:
            order = self.orders[oid]
            items = {item["id"]: item for item in order["line_items"]}
            requested = []
            for item_id, quantity in lines:
                item = items[item_id]
                share = Decimal(quantity) / item["quantity"]
                requested.append({"id": item_id, "quantity": quantity,
                                  "refund_total": str((Decimal(item["total"]) * share).quantize(_CENT)),
                                  "refund_tax": [{"id": t["id"], "refund_total": str(
                                      (Decimal(t["total"]) * share).quantize(_CENT))} for t in item["taxes"]]})
            return self._create_refund(order, Decimal(amount), reason, requested, api_refund=False)["id"]

    def register_status(self, slug: str) -> None:
        """A plugin's custom order status, accepted by PUT /orders/{id} from now on."""
        self.custom_statuses.add(slug)

    def _refunded(self, oid: int) -> Decimal:
        return sum((Decimal(r["amount"]) for r in self.refunds.get(oid, [])), Decimal(0))

    def _create_refund(self, order: dict[str, Any], amount: Decimal, reason: str, lines: list[Mapping[str, Any]],
                       *, api_refund: bool, restock: bool = False) -> dict[str, Any]:
        items = {item["id"]: item for item in order["line_items"]}
        refund_lines = []
        for line in lines:
            item = items.get(line.get("id"))
            if item is None:
                continue  # WooCommerce skips ids that are not lines of the order
            quantity = int(line.get("quantity") or 0)
            net = Decimal(str(line.get("refund_total") or 0))
            taxes = [(int(t["id"]), Decimal(str(t.get("refund_total") or 0))) for t in line.get("refund_tax") or []]
            tax = sum((part for _, part in taxes), Decimal(0))
            refund_lines.append({
                "id": self._item_id(), "name": item["name"], "product_id": item["product_id"],
                "variation_id": item["variation_id"], "quantity": -quantity, "tax_class": item["tax_class"],
                "subtotal": _fmt(-net), "subtotal_tax": _fmt(-tax), "total": _fmt(-net), "total_tax": _fmt(-tax),
                "taxes": [{"id": rid, "total": _fmt(-part), "subtotal": _fmt(-part)} for rid, part in taxes],
                "meta_data": [self._meta("_refunded_item_id", str(item["id"]))], "sku": item["sku"],
                "price": float(-net / quantity) if quantity else 0.0,
            })
        local, gmt = self._stamp()
        refund = {
            "id": self._new_id(), "date_created": local, "date_created_gmt": gmt, "amount": _fmt(amount),
            "reason": reason, "refunded_by": 1, "refunded_payment": api_refund, "meta_data": [],
            "line_items": refund_lines, "shipping_lines": [], "tax_lines": [], "fee_lines": [],
        }
        self.refunds[order["id"]].append(refund)
        order["refunds"].insert(0, {"id": refund["id"], "reason": reason, "total": _fmt(-amount)})
        if restock:  # wc_create_refund restocks before it turns a fully refunded order refunded
            self._restock_refunded(order, lines)
        if order["status"] != "refunded" and self._refunded(order["id"]) >= Decimal(order["total"]):
            self._apply_status(order, "refunded")
        self._touch(order)
        return refund

    def fail_item(self, woo_id: int, code: str = "woocommerce_rest_cannot_edit",
                  message: str = "Sorry, you are not allowed to edit this resource.", status: int = 400) -> None:
        """From now on, batch updates of ``woo_id`` answer this per-item error."""
        self.item_errors[woo_id] = (code, message, status)

    def burst_429(self, count: int) -> None:
        """The next ``count`` requests are answered 429 with Retry-After ``faults.retry_after``."""
        with self._lock:
            self._burst_left = count

    def clear_faults(self) -> None:
        with self._lock:
            self.faults = Faults()
            self._burst_left = 0

    def requests(self, method: str | None = None, path: str | None = None) -> list[Exchange]:
        """Logged exchanges, filtered by method and a regular expression on the path."""
        with self._lock:
            return [e for e in self.log if (method is None or e.method == method)
                    and (path is None or re.search(path, e.path))]

    # --- in-process and served use ------------------------------------------------------

    def transport(self) -> LossyTransport:
        """An httpx transport into this app that also injects the transport-level faults."""
        return LossyTransport(httpx.WSGITransport(app=self), self)

    def serve(self, host: str = "127.0.0.1") -> str:
        """Serve on a loopback port in a background thread; returns the base URL."""
        return self._loopback.start(host)

    def stop(self) -> None:
        self._loopback.stop()

    # --- fault draws ----------------------------------------------------------------------

    def _draw(self, rate: float) -> bool:
        with self._lock:
            return rate > 0 and self._rng.random() < rate

    def _record_transport_fault(self, request: httpx.Request, fault: str) -> None:
        with self._lock:
            if fault == "lost_response" and self.log:
                self.log[-1].fault = fault
                return
            try:
                body = json.loads(request.content) if request.content else None
            except ValueError:
                body = None
            path = request.url.path.removeprefix(API_PREFIX)
            self.log.append(Exchange(request.method, path, dict(request.url.params), body, fault=fault))

    # --- WSGI -----------------------------------------------------------------------------

    def __call__(self, environ: Mapping[str, Any], start_response: StartResponse) -> Iterator[bytes]:
        method = environ["REQUEST_METHOD"].upper()
        full_path = environ.get("PATH_INFO", "") or "/"
        query = {k: v[-1] for k, v in parse_qs(environ.get("QUERY_STRING", ""), keep_blank_values=True).items()}
        raw = _read_body(environ)
        try:
            body: Any = json.loads(raw) if raw else None
        except ValueError:
            body = _INVALID_JSON
        path = full_path.removeprefix(API_PREFIX) if full_path.startswith(API_PREFIX + "/") else full_path
        host = environ.get("HTTP_HOST") or f"{environ.get('SERVER_NAME', 'localhost')}:{environ.get('SERVER_PORT')}"
        exchange = Exchange(method, path, query, None if body is _INVALID_JSON else body,
                            url=f"{environ.get('wsgi.url_scheme', 'http')}://{host}{full_path}")
        with self._lock:
            self.log.append(exchange)
        status, payload, headers = self._handle(exchange, full_path, environ, body)
        exchange.status, exchange.response = status, payload
        data = json.dumps(payload).encode()
        start_response(f"{status} {_REASONS.get(status, 'Status')}", [
            ("Content-Type", "application/json; charset=UTF-8"), ("Content-Length", str(len(data))), *headers,
        ])
        return iter([data])

    def _handle(self, exchange: Exchange, full_path: str, environ: Mapping[str, Any],
                body: Any) -> tuple[int, Any, list[tuple[str, str]]]:
        faults = self.faults
        with self._lock:
            if self._burst_left == 0 and self._draw(faults.burst_rate):
                self._burst_left = faults.burst_length
            if self._burst_left > 0:
                self._burst_left -= 1
                exchange.fault = "429"
                return 429, _wp_error("rate_limited", "Too many requests, slow down.", 429), [
                    ("Retry-After", str(faults.retry_after))]
        failing = self._draw(faults.error_rate)
        after = failing and self._draw(faults.error_after_apply)
        if failing and not after:
            exchange.fault = "503"
            return 503, _wp_error("service_unavailable", "The shop is temporarily unavailable.", 503), []
        try:
            self._authenticate(environ, exchange.query)
            if not full_path.startswith(API_PREFIX + "/"):
                raise _Reply(404, "rest_no_route", "No route was found matching the URL and request method.")
            status, payload, headers = self._route(exchange, body)
        except _Reply as reply:
            return reply.status, _wp_error(reply.code, reply.message, reply.status), reply.headers
        if after:
            exchange.fault = "502-after-apply"
            return 502, _wp_error("bad_gateway", "Upstream answered too late.", 502), []
        if self._draw(faults.delay_rate):
            exchange.fault = "delayed"
            time.sleep(faults.delay_seconds)
        return status, payload, headers

    def _authenticate(self, environ: Mapping[str, Any], query: Mapping[str, str]) -> None:
        key = secret = None
        header = environ.get("HTTP_AUTHORIZATION", "")
        if header.lower().startswith("basic "):
            try:
                key, _, secret = base64.b64decode(header[6:].strip()).decode().partition(":")
            except (binascii.Error, UnicodeDecodeError):
                key = secret = None
        elif "consumer_key" in query:
            key, secret = query.get("consumer_key"), query.get("consumer_secret")
        if not key:
            raise _Reply(401, "woocommerce_rest_cannot_view", "Sorry, you cannot list resources.")
        if key != self.consumer_key:
            raise _Reply(401, "woocommerce_rest_authentication_error", "Consumer key is invalid.")
        if secret != self.consumer_secret:
            raise _Reply(401, "woocommerce_rest_authentication_error", "Consumer secret is invalid.")

    def _route(self, exchange: Exchange, body: Any) -> tuple[int, Any, list[tuple[str, str]]]:
        method, path = exchange.method, exchange.path
        if method == "GET" and path == "/products":
            with self._lock:
                items = [p for p in self.products.values() if p["status"] != "trash"]
                if sku := exchange.query.get("sku"):
                    wanted = {s.strip() for s in sku.split(",")}
                    items = [p for p in items if p["sku"] in wanted]
                items = [self._show(p, _PRODUCT_FIELDS) for p in items]
            return self._page(items, exchange)
        if method == "GET" and (m := re.fullmatch(r"/products/(\d+)/variations", path)):
            with self._lock:
                items = [self._show(v, _VARIATION_FIELDS) for v in self.variations.get(int(m.group(1)), {}).values()]
            return self._page(items, exchange)
        if method == "GET" and path == "/orders":
            return self._list_orders(exchange)
        if m := re.fullmatch(r"/orders/(\d+)/refunds", path):
            oid = int(m.group(1))
            if method == "GET":
                with self._lock:
                    self._order_or_404(oid, "woocommerce_rest_invalid_order_id", "Invalid order ID.")
                    items = copy.deepcopy(self.refunds[oid])
                return self._page(items, exchange)
            if method == "POST":
                return 201, self._refund(oid, body), []
        if m := re.fullmatch(r"/orders/(\d+)/notes(?:/(\d+))?", path):
            return self._notes(method, int(m.group(1)), int(m.group(2)) if m.group(2) else None, exchange, body)
        if m := re.fullmatch(r"/orders/(\d+)", path):
            oid = int(m.group(1))
            if method == "GET":
                with self._lock:
                    return 200, copy.deepcopy(self._order_or_404(oid)), []
            if method in ("POST", "PUT", "PATCH"):
                return 200, self._update_order(oid, body), []
        if method in ("POST", "PUT", "PATCH") and path == "/products/batch":
            return 200, self._batch(body, None), []
        if method in ("POST", "PUT", "PATCH") and (m := re.fullmatch(r"/products/(\d+)/variations/batch", path)):
            return 200, self._batch(body, int(m.group(1))), []
        raise _Reply(404, "rest_no_route", "No route was found matching the URL and request method.")

    def _page(self, items: list[dict[str, Any]], exchange: Exchange,
              key: Callable[[dict[str, Any]], Any] | None = None) -> tuple[int, Any, list[tuple[str, str]]]:
        """One page of a collection with the documented paging headers: X-WP-Total, X-WP-TotalPages,
        and a Link header naming the first, previous, next and last pages where there are such."""
        query = exchange.query
        try:
            page = int(query.get("page", "1"))
            per_page = int(query.get("per_page", "10"))
        except ValueError:
            raise _Reply(400, "rest_invalid_param", "Invalid parameter(s): page, per_page") from None
        if page < 1 or not 1 <= per_page <= 100:
            raise _Reply(400, "rest_invalid_param", "Invalid parameter(s): per_page (must be between 1 and 100)")
        reverse = query.get("order", "desc") == "desc"  # the API's default order is newest first
        items.sort(key=key or (lambda item: item["id"]), reverse=reverse)
        total = len(items)
        pages = math.ceil(total / per_page)
        if total and page > pages:
            raise _Reply(400, "rest_post_invalid_page_number",
                         "The page number requested is larger than the number of pages available.")
        chunk = items[(page - 1) * per_page: page * per_page]
        headers = [("X-WP-Total", str(total)), ("X-WP-TotalPages", str(pages))]
        rels = ([("first", 1), ("prev", page - 1)] if page > 1 else []) + (
            [("next", page + 1), ("last", pages)] if page < pages else [])
        if rels and exchange.url:
            kept = {k: v for k, v in query.items() if k not in ("consumer_key", "consumer_secret")}
            headers.append(("Link", ", ".join(f'<{exchange.url}?{urlencode({**kept, "page": str(number)})}>; '
                                              f'rel="{rel}"' for rel, number in rels)))
        return 200, chunk, headers

    # --- orders ---------------------------------------------------------------------------------

    def _order_or_404(self, oid: int, code: str = "woocommerce_rest_shop_order_invalid_id",
                      message: str = "Invalid ID.") -> dict[str, Any]:
        order = self.orders.get(oid)
        if order is None or order["status"] == "trash":
            raise _Reply(404, code, message)
        return order

    def _list_orders(self, exchange: Exchange) -> tuple[int, Any, list[tuple[str, str]]]:
        query = exchange.query
        orderby = query.get("orderby", "date")
        keys: dict[str, Callable[[dict[str, Any]], Any]] = {
            "date": lambda o: (o["date_created_gmt"], o["id"]),
            "modified": lambda o: (o["date_modified_gmt"], o["id"]),  # ties: whatever the database does
            "id": lambda o: o["id"], "include": lambda o: o["id"], "title": lambda o: o["id"],
            "slug": lambda o: o["id"],
        }
        if orderby not in keys:
            raise _Reply(400, "rest_invalid_param", "Invalid parameter(s): orderby")
        gmt = query.get("dates_are_gmt", "false").lower() in ("true", "1")
        after = None
        if "modified_after" in query:
            match = _MODIFIED_AFTER.match(query["modified_after"])
            if not match:
                raise _Reply(400, "rest_invalid_param", "Invalid parameter(s): modified_after")
            after = match.group(1)
        wanted = {s.strip() for s in query.get("status", "any").split(",")}
        with self._lock:
            items = [o for o in self.orders.values()
                     if (o["status"] in wanted or ("any" in wanted and o["status"] not in _NOT_LISTED))
                     and (after is None or (o["date_modified_gmt"] if gmt else o["date_modified"]) > after)]
            items = copy.deepcopy(items)
        return self._page(items, exchange, keys[orderby])

    def _update_order(self, oid: int, body: Any) -> dict[str, Any]:
        if body is _INVALID_JSON:
            raise _Reply(400, "rest_invalid_json", "Invalid JSON body passed.")
        body = body if isinstance(body, Mapping) else {}
        with self._lock:
            order = self._order_or_404(oid)
            if "status" in body:
                status = body["status"]
                if status not in ORDER_STATUSES and status not in self.custom_statuses:
                    raise _Reply(400, "rest_invalid_param", "Invalid parameter(s): status")
                self._apply_status(order, status)
            if isinstance(body.get("customer_note"), str) and body["customer_note"] != order["customer_note"]:
                order["customer_note"] = body["customer_note"]
                self._touch(order)
            if "meta_data" in body and self._update_meta(order, body["meta_data"]):
                self._touch(order)
            return copy.deepcopy(order)

    def _update_meta(self, order: dict[str, Any], entries: Any) -> bool:
        """Apply ``meta_data`` entries; whether anything changed."""
        if not isinstance(entries, list) or not all(isinstance(e, Mapping) and isinstance(e.get("key"), str)
                                                    and e["key"] for e in entries):
            raise _Reply(400, "rest_invalid_param", "Invalid parameter(s): meta_data")
        before = copy.deepcopy(order["meta_data"])
        for entry in entries:
            key, value, meta_id = entry["key"], entry.get("value"), entry.get("id")
            same_id = [m for m in order["meta_data"] if meta_id is not None and m["id"] == meta_id]
            if same_id:
                same_id[0].update(key=key, value=value)
                continue
            same_key = [m for m in order["meta_data"] if m["key"] == key]
            if same_key:  # the first entry of the key keeps its id and takes the value; the others go
                same_key[0]["value"] = value
                order["meta_data"] = [m for m in order["meta_data"] if m["key"] != key or m is same_key[0]]
            else:
                order["meta_data"].append(self._meta(key, value))
        return order["meta_data"] != before

    def _notes(self, method: str, oid: int, note_id: int | None, exchange: Exchange,
               body: Any) -> tuple[int, Any, list[tuple[str, str]]]:
        """/orders/<id>/notes[/<note_id>] as _order-notes.md describes them."""
        with self._lock:
            self._order_or_404(oid, "woocommerce_rest_invalid_order_id", "Invalid order ID.")
            notes = self.notes.setdefault(oid, [])
            if note_id is None and method == "GET":
                kind = exchange.query.get("type", "any")
                if kind not in ("any", "customer", "internal"):
                    raise _Reply(400, "rest_invalid_param", "Invalid parameter(s): type")
                shown = [n for n in notes if kind == "any" or n["customer_note"] == (kind == "customer")]
                return 200, [self._note_dto(oid, n) for n in sorted(shown, key=lambda n: -n["id"])], []
            if note_id is None and method == "POST":
                if body is _INVALID_JSON:
                    raise _Reply(400, "rest_invalid_json", "Invalid JSON body passed.")
                body = body if isinstance(body, Mapping) else {}
                if not isinstance(body.get("note"), str) or not body["note"]:
                    raise _Reply(400, "rest_missing_callback_param", "Missing parameter(s): note")
                for flag in ("customer_note", "added_by_user"):
                    if not isinstance(body.get(flag, False), bool):
                        raise _Reply(400, "rest_invalid_param", f"Invalid parameter(s): {flag}")
                author = "shop manager" if body.get("added_by_user") else "system"
                created = self._new_note(oid, body["note"], body.get("customer_note", False), author)
                return 201, self._note_dto(oid, created), []
            if note_id is None:
                raise _Reply(404, "rest_no_route", "No route was found matching the URL and request method.")
            found = next((n for n in notes if n["id"] == note_id), None)
            if found is None:
                raise _Reply(404, "woocommerce_rest_invalid_id", "Invalid resource ID.")
            if method == "GET":
                return 200, self._note_dto(oid, found), []
            if method == "DELETE":
                if exchange.query.get("force") != "true":  # "Required to be true, as resource does not support
                    raise _Reply(501, "woocommerce_rest_trash_not_supported",  # trashing."
                                 "The order note does not support trashing.")
                notes.remove(found)
                return 200, self._note_dto(oid, found), []
            raise _Reply(404, "rest_no_route", "No route was found matching the URL and request method.")

    def _refund(self, oid: int, body: Any) -> dict[str, Any]:
        if body is _INVALID_JSON:
            raise _Reply(400, "rest_invalid_json", "Invalid JSON body passed.")
        body = body if isinstance(body, Mapping) else {}
        with self._lock:
            order = self._order_or_404(oid, "woocommerce_rest_invalid_order_id", "Invalid order ID.")
            lines = [line for line in body.get("line_items") or [] if isinstance(line, Mapping)]
            try:
                if body.get("amount") not in (None, ""):
                    amount = Decimal(str(body["amount"]))
                else:  # without an amount, the lines' totals and taxes make it
                    amount = sum((_line_refund(line) for line in lines), Decimal(0))
            except (InvalidOperation, TypeError, AttributeError):
                raise _Reply(400, "rest_invalid_param", "Invalid parameter(s): amount") from None
            if amount < 0:
                raise _Reply(400, "woocommerce_rest_invalid_order_refund", "Refund amount must be greater than zero.")
            if amount > Decimal(order["total"]) - self._refunded(oid):
                raise _Reply(500, "woocommerce_rest_cannot_create_order_refund", "Invalid refund amount.")
            # _order-refunds.md: api_refund "When true, the payment gateway API is used to generate the refund.
            # Default is `true`."; api_restock "When true, the selected line items are restocked Default is `true`."
            api_refund = body.get("api_refund", True) is not False
            api_restock = body.get("api_restock", True) is not False
            if api_refund:
                # The reference names no error for a gateway that cannot refund. WooCommerce's refunds controller
                # answers any failure of wc_create_refund as 500 woocommerce_rest_cannot_create_order_refund with
                # the message of wc_refund_payment, and deletes the refund it had saved: nothing is left behind.
                # With api_refund false the refund is only recorded ("Refund manually" in the admin).
                gateway = GATEWAYS.get(order["payment_method"])
                if gateway is None:
                    raise _Reply(500, "woocommerce_rest_cannot_create_order_refund",
                                 "The payment gateway for this order does not exist.")
                if not gateway[1]:
                    raise _Reply(500, "woocommerce_rest_cannot_create_order_refund",
                                 "The payment gateway for this order does not support automatic refunds.")
            refund = self._create_refund(order, amount, str(body.get("reason") or ""), lines, api_refund=api_refund,
                                         restock=api_restock)
            return copy.deepcopy(refund)

    # --- batch ------------------------------------------------------------------------------

    def _batch(self, body: Any, parent_id: int | None) -> dict[str, list[Any]]:
        if body is _INVALID_JSON:
            raise _Reply(400, "rest_invalid_json", "Invalid JSON body passed.")
        if not isinstance(body, Mapping):
            body = {}
        total = sum(len(body[k]) for k in ("create", "update", "delete") if isinstance(body.get(k), list))
        if total > BATCH_LIMIT:
            raise _Reply(413, "woocommerce_rest_request_entity_too_large",
                         f"Unable to accept more than {BATCH_LIMIT} items for this request.")
        post_type = "product" if parent_id is None else "product_variation"
        out: dict[str, list[Any]] = {}
        with self._lock:
            for item in body.get("create") or []:
                out.setdefault("create", []).append(self._guard(0, lambda item=item: self._create(item, parent_id)))
            for item in body.get("update") or []:
                woo_id = item.get("id") if isinstance(item, Mapping) else None
                woo_id = woo_id if isinstance(woo_id, int) and not isinstance(woo_id, bool) else 0
                out.setdefault("update", []).append(
                    self._guard(woo_id, lambda item=item, woo_id=woo_id: self._update(woo_id, item, parent_id,
                                                                                      post_type)))
            for raw_id in body.get("delete") or []:
                woo_id = raw_id if isinstance(raw_id, int) else 0
                if woo_id:
                    out.setdefault("delete", []).append(
                        self._guard(woo_id, lambda woo_id=woo_id: self._delete(woo_id, parent_id, post_type)))
        return out

    @staticmethod
    def _guard(woo_id: int, action: Callable[[], dict[str, Any]]) -> dict[str, Any]:
        try:
            return action()
        except _Reply as reply:
            return {"id": woo_id, "error": _wp_error(reply.code, reply.message, reply.status)}

    def _target(self, woo_id: int, parent_id: int | None, post_type: str) -> dict[str, Any]:
        found = self.products.get(woo_id) if parent_id is None else self.variations.get(parent_id, {}).get(woo_id)
        if found is None:
            raise _Reply(400, f"woocommerce_rest_{post_type}_invalid_id", "Invalid ID.")
        return found

    def _update(self, woo_id: int, item: Mapping[str, Any], parent_id: int | None, post_type: str) -> dict[str, Any]:
        target = self._target(woo_id, parent_id, post_type)
        if woo_id in self.item_errors:
            code, message, status = self.item_errors[woo_id]
            raise _Reply(status, code, message)
        changes: dict[str, Any] = {}
        if "manage_stock" in item:
            manage = item["manage_stock"]
            if manage not in (True, False, "parent") or (manage == "parent" and parent_id is None):
                raise _Reply(400, "rest_invalid_param", "Invalid parameter(s): manage_stock")
            if manage is True and target.get("type") in ("external", "grouped"):
                raise _Reply(400, f"product_{target['type']}_invalid_manage_stock",
                             f"{target['type'].capitalize()} products cannot be stock managed.")
            changes["manage_stock"] = manage
        if "stock_quantity" in item:
            qty = item["stock_quantity"]
            if not isinstance(qty, int) or isinstance(qty, bool):
                raise _Reply(400, "rest_invalid_param", "Invalid parameter(s): stock_quantity is not of type integer.")
            changes["stock_quantity"] = qty
        for key in ("regular_price", "sale_price"):
            if key in item:
                price = item[key]
                if not isinstance(price, str) or (price and not _PRICE.match(price)):
                    raise _Reply(400, "rest_invalid_param", f"Invalid parameter(s): {key} is not of type string.")
                changes[key] = price
        changes.update(_sale_dates(item))
        if "sku" in item:
            self._check_sku(item["sku"], woo_id)
            changes["sku"] = item["sku"]
        target.update(changes)
        if target.get("manage_stock") is not True:
            target["stock_quantity"] = None  # the quantity only exists while the shop manages stock
        _stock_status(target)
        return self._show(target, _PRODUCT_FIELDS if parent_id is None else _VARIATION_FIELDS)

    def _check_sku(self, sku: Any, own_id: int) -> None:
        if not isinstance(sku, str):
            raise _Reply(400, "rest_invalid_param", "Invalid parameter(s): sku")
        if not sku:
            return
        taken = [p["id"] for p in self.products.values() if p["sku"] == sku]
        taken += [v["id"] for vs in self.variations.values() for v in vs.values() if v["sku"] == sku]
        if any(i != own_id for i in taken):
            raise _Reply(400, "product_invalid_sku", "Invalid or duplicated SKU.")

    def _create(self, item: Any, parent_id: int | None) -> dict[str, Any]:
        if not isinstance(item, Mapping):
            raise _Reply(400, "rest_invalid_param", "Invalid parameter(s): create")
        sku = item.get("sku", "")
        self._check_sku(sku, 0)
        qty = item.get("stock_quantity") if item.get("manage_stock") is True else None
        if qty is not None and (not isinstance(qty, int) or isinstance(qty, bool)):
            raise _Reply(400, "rest_invalid_param", "Invalid parameter(s): stock_quantity is not of type integer.")
        price = item.get("regular_price", "")
        if not isinstance(price, str) or (price and not _PRICE.match(price)):
            raise _Reply(400, "rest_invalid_param", "Invalid parameter(s): regular_price is not of type string.")
        if parent_id is None:
            pid = self.add_simple(sku, qty, price, manage_stock=item.get("manage_stock") is True)
            return self._show(self.products[pid], _PRODUCT_FIELDS)
        if parent_id not in self.variations:
            raise _Reply(400, "woocommerce_rest_product_invalid_id", "Invalid ID.")
        vid = self._add_variation(parent_id, sku, qty, price)
        return self._show(self.variations[parent_id][vid], _VARIATION_FIELDS)

    def _delete(self, woo_id: int, parent_id: int | None, post_type: str) -> dict[str, Any]:
        target = self._target(woo_id, parent_id, post_type)
        if parent_id is None:
            self.delete_product(woo_id)
            return self._show(target, _PRODUCT_FIELDS)
        del self.variations[parent_id][woo_id]
        self.products[parent_id]["variations"].remove(woo_id)
        return self._show(target, _VARIATION_FIELDS)


class LossyTransport(httpx.BaseTransport):
    """Wraps the app's transport: a request may time out before it arrives, or arrive, be
    applied, and have its response lost (httpx.ReadTimeout after forwarding)."""

    def __init__(self, inner: httpx.BaseTransport, sim: WooSimulator):
        self.inner = inner
        self.sim = sim

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        faults = self.sim.faults
        if self.sim._draw(faults.timeout_rate):
            self.sim._record_transport_fault(request, "timeout")
            raise httpx.ConnectTimeout("simulated: the shop did not accept the connection in time", request=request)
        response = self.inner.handle_request(request)
        if self.sim._draw(faults.lost_response_rate):
            response.read()
            response.close()
            self.sim._record_transport_fault(request, "lost_response")
            raise httpx.ReadTimeout("simulated: the shop applied the request but the response was lost",
                                    request=request)
        return response

    def close(self) -> None:
        self.inner.close()


_INVALID_JSON = object()
_REASONS = {200: "OK", 201: "Created", 400: "Bad Request", 401: "Unauthorized", 404: "Not Found",
            413: "Payload Too Large", 429: "Too Many Requests", 500: "Internal Server Error", 501: "Not Implemented",
            502: "Bad Gateway", 503: "Service Unavailable"}


def _read_body(environ: Mapping[str, Any]) -> bytes:
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    return environ["wsgi.input"].read(length) if length > 0 else b""


def _line_refund(line: Mapping[str, Any]) -> Decimal:
    """A refund line's total with its taxes."""
    taxes = [t for t in line.get("refund_tax") or [] if isinstance(t, Mapping)]
    return Decimal(str(line.get("refund_total") or 0)) + sum(
        (Decimal(str(t.get("refund_total") or 0)) for t in taxes), Decimal(0))


def _fmt(amount: Decimal) -> str:
    """Woo prints amounts with the shop's two decimals."""
    return f"{amount.quantize(_CENT, ROUND_HALF_UP):f}"


def _sale_dates(item: Mapping[str, Any]) -> dict[str, Any]:
    """The sale dates an update sets, both forms of each: "" clears one, null leaves it as it is (the API
    only applies a field that is set), the site-local form is the shop's time and the _gmt one UTC."""
    changes: dict[str, Any] = {}
    for key in ("date_on_sale_from", "date_on_sale_to"):
        for field, offset in ((key, SHOP_OFFSET), (f"{key}_gmt", timedelta(0))):
            value = item.get(field)
            if value is None:
                continue
            if not isinstance(value, str) or (value and not _DATE.match(value)):
                raise _Reply(400, "rest_invalid_param", f"Invalid parameter(s): {field}")
            if not value:
                changes[key] = changes[f"{key}_gmt"] = None
                continue
            moment = datetime.fromisoformat(value) - offset
            changes[key], changes[f"{key}_gmt"] = (moment + SHOP_OFFSET).strftime(_STAMP), moment.strftime(_STAMP)
    return changes


def _stock_status(item: dict[str, Any]) -> dict[str, Any]:
    """WooCommerce derives stock_status when it saves a product (and price and on_sale: WooSimulator._priced)."""
    if item.get("manage_stock") is True:
        qty = item.get("stock_quantity") or 0
        item["stock_status"] = "instock" if qty > 0 else ("outofstock" if item["backorders"] == "no" else
                                                          "onbackorder")
    return item


def _public(item: Mapping[str, Any], fields: tuple[str, ...]) -> dict[str, Any]:
    out = {key: item[key] for key in fields if key in item}
    for key in ("variations", "attributes"):
        if key in out:
            out[key] = list(out[key])
    return out


__all__ = ["Exchange", "Faults", "LossyTransport", "WooSimulator"]
