"""The simulator's field types and headers against the REST API v3 reference (_introduction.md, _products.md,
_product-variations.md, _orders.md, _order-refunds.md): money as strings (orders' amounts with two decimals),
ids as integers, stock_quantity an integer or null, sale prices and their dates, the paging headers, and the
batch limit of 100 objects."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import httpx
import pytest
from woocommerce_testkit import KEY, SECRET

from connectors.shops.woocommerce.simulator import START, WooSimulator

TWO_PLACES = re.compile(r"^-?\d+\.\d{2}$")  # "returned as strings with two decimal places"
PRICE = re.compile(r"^(\d+(\.\d+)?)?$")  # a product's price fields: a decimal string, "" when not set
ORDER_MONEY = ("discount_total", "discount_tax", "shipping_total", "shipping_tax", "cart_tax", "total", "total_tax")
LINE_MONEY = ("subtotal", "subtotal_tax", "total", "total_tax")


def http(sim: WooSimulator) -> httpx.Client:
    return httpx.Client(transport=sim.transport(), base_url="https://sklep.example.pl/wp-json/wc/v3",
                        auth=(KEY, SECRET))


def is_id(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


def order_amounts(order: dict[str, Any]) -> Iterator[tuple[str, Any]]:
    yield from ((key, order[key]) for key in ORDER_MONEY)
    for kind in ("line_items", "shipping_lines", "fee_lines"):
        for line in order[kind]:
            yield from ((f"{kind}.{key}", line[key]) for key in LINE_MONEY if key in line)
            yield from ((f"{kind}.taxes.total", tax["total"]) for tax in line["taxes"])
    for coupon in order["coupon_lines"]:
        yield from ((f"coupon_lines.{key}", coupon[key]) for key in ("discount", "discount_tax"))
    for tax in order["tax_lines"]:
        yield from ((f"tax_lines.{key}", tax[key]) for key in ("tax_total", "shipping_tax_total"))
    yield from (("refunds.total", refund["total"]) for refund in order["refunds"])


def test_products_and_variations_have_the_documented_types(sim: WooSimulator) -> None:
    sim.add_simple("KUB-01", 12, "24.54")
    sim.add_simple("LUZ", None, "3.00", manage_stock=False)
    parent, (small, _m) = sim.add_variable("KOSZ", [("KOSZ-S", 3, "49.00"), ("KOSZ-M", None, "49.00")])
    sim.set_sale(parent, "39.00", small, start=START - timedelta(days=1), end=START + timedelta(days=1))
    with http(sim) as client:
        items = client.get("/products").json() + client.get(f"/products/{parent}/variations").json()
    assert len(items) == 5
    for item in items:
        assert is_id(item["id"]) and isinstance(item["parent_id"], int)
        assert item["stock_quantity"] is None or type(item["stock_quantity"]) is int
        assert all(isinstance(item[key], str) and PRICE.match(item[key])
                   for key in ("price", "regular_price", "sale_price")), item
        assert isinstance(item["on_sale"], bool)
        for key in ("date_on_sale_from", "date_on_sale_from_gmt", "date_on_sale_to", "date_on_sale_to_gmt"):
            assert item[key] is None or re.fullmatch(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}", item[key]), item
        assert all(is_id(v) for v in item.get("variations", []))
    on_sale = next(item for item in items if item["id"] == small)
    assert (on_sale["price"], on_sale["on_sale"], on_sale["date_on_sale_from_gmt"], on_sale["date_on_sale_to"]) == (
        "39.00", True, "2024-06-10T10:00:00", "2024-06-12T12:00:00")  # _gmt is UTC, the other the shop's time


def test_sale_dates_set_by_a_batch_follow_the_api(sim: WooSimulator) -> None:
    pid = sim.add_simple("KUB-01", 1, "100.00")
    with http(sim) as client:
        def update(**fields: Any) -> dict[str, Any]:
            answer = client.post("/products/batch", json={"update": [{"id": pid, **fields}]})
            return dict(answer.json()["update"][0])

        later = update(sale_price="80.00", date_on_sale_from="2024-06-20T00:00:00")  # site-local
        assert (later["on_sale"], later["price"], later["date_on_sale_from_gmt"]) == (False, "100.00",
                                                                                      "2024-06-19T22:00:00")
        now = update(date_on_sale_from_gmt="2024-06-11T09:00:00")
        assert (now["on_sale"], now["price"], now["date_on_sale_from"]) == (True, "80.00", "2024-06-11T11:00:00")
        assert update(date_on_sale_from=None)["date_on_sale_from"] == "2024-06-11T11:00:00"  # null: left alone
        ended = update(sale_price="", date_on_sale_from="", date_on_sale_to="")
        assert (ended["on_sale"], ended["price"], ended["sale_price"], ended["date_on_sale_from_gmt"]) == (
            False, "100.00", "", None)
        bad = update(date_on_sale_to="tomorrow")
        assert bad["error"]["code"] == "rest_invalid_param"


def test_orders_and_refunds_have_the_documented_types(sim: WooSimulator) -> None:
    mug = sim.add_simple("KUB-01", 50, "24.60")
    shirt, (small,) = sim.add_variable("KOSZ", [("KOSZ-S", 30, "49.20")])
    first = sim.add_order([(mug, 3), ((shirt, small), 1)], coupon=("lato7", "7"), fees=[("Opłata", "5.00")])
    second = sim.add_order([(mug, 1)], prices_include_tax=False, vat=8, fees=[("Rabat", "-2.00")],
                           shipping_method=None)
    sim.refund_by_hand(first, "10.00", "Rabat")
    with http(sim) as client:
        orders = client.get("/orders").json()
        refunds = client.get(f"/orders/{first}/refunds").json()
    assert {o["id"] for o in orders} == {first, second}
    for order in orders:
        assert is_id(order["id"]) and isinstance(order["customer_id"], int) and isinstance(order["number"], str)
        for where, amount in order_amounts(order):
            assert isinstance(amount, str) and TWO_PLACES.match(amount), (order["id"], where, amount)
        for kind in ("line_items", "shipping_lines", "fee_lines", "coupon_lines", "tax_lines", "meta_data"):
            assert all(is_id(line["id"]) for line in order[kind]), kind
        for line in order["line_items"]:
            assert is_id(line["product_id"]) and type(line["variation_id"]) is int and type(line["quantity"]) is int
        for line in order["shipping_lines"] + order["fee_lines"]:
            assert all(tax["subtotal"] == "" for tax in line["taxes"])  # shipping and fee lines print no subtotal
    placed = {o["id"]: o for o in orders}
    for order in placed.values():  # the grand total is the lines' totals and taxes (coupons are in them already)
        lines = order["line_items"] + order["shipping_lines"] + order["fee_lines"]
        assert sum(float(x["total"]) + float(x["total_tax"]) for x in lines) == pytest.approx(float(order["total"]))
    assert placed[second]["shipping_lines"] == [] and placed[second]["shipping_total"] == "0.00"
    assert placed[first]["coupon_lines"][0]["discount"] == placed[first]["discount_total"]
    (refund,) = refunds
    assert is_id(refund["id"]) and refund["amount"] == "10.00" and isinstance(refund["refunded_payment"], bool)


def test_every_list_carries_the_paging_headers(sim: WooSimulator) -> None:
    for n in range(25):
        sim.add_simple(f"S-{n}", n, "1.00")
    pid = sim.add_simple("KUB-01", 5, "2.00")
    parent, _ = sim.add_variable("V", [("V-1", 1, "2.00")])
    order = sim.add_order([(pid, 1)])
    sim.refund_by_hand(order, "1.00")
    with http(sim) as client:
        for path in ("/products", f"/products/{parent}/variations", "/orders", f"/orders/{order}/refunds"):
            answer = client.get(path)
            total = len(answer.json()) if path != "/products" else 27
            assert (answer.headers["X-WP-Total"], answer.headers["X-WP-TotalPages"]) == (
                str(total), "3" if path == "/products" else "1"), path
        middle = client.get("/products", params={"per_page": 10, "page": 2, "consumer_key": KEY,
                                                 "consumer_secret": SECRET})
        base = "https://sklep.example.pl/wp-json/wc/v3/products?per_page=10&page="
        assert middle.headers["Link"] == (f'<{base}1>; rel="first", <{base}1>; rel="prev", <{base}3>; rel="next", '
                                          f'<{base}3>; rel="last"')  # the keys are not repeated in links
        assert "Link" not in client.get("/orders").headers  # one page: nowhere to go
        assert client.get(f"/orders/{order}").headers.get("X-WP-Total") is None  # not a list


def test_a_batch_over_100_objects_is_refused_whole(sim: WooSimulator) -> None:
    ids = [sim.add_simple(f"S-{n}", 1, "1.00") for n in range(101)]
    with http(sim) as client:
        full = client.post("/products/batch", json={"update": [{"id": i, "stock_quantity": 2} for i in ids[:100]]})
        assert full.status_code == 200 and len(full.json()["update"]) == 100
        # create, update and delete count together
        mixed = client.post("/products/batch", json={"update": [{"id": i, "stock_quantity": 3} for i in ids[:60]],
                                                     "delete": ids[60:]})
        assert (mixed.status_code, mixed.json()) == (413, {
            "code": "woocommerce_rest_request_entity_too_large",
            "message": "Unable to accept more than 100 items for this request.", "data": {"status": 413}})
        assert sim.product(ids[0])["stock_quantity"] == 2 and len(sim.products) == 101  # nothing applied


def test_a_batch_create_keeps_the_documented_types(sim: WooSimulator) -> None:
    with http(sim) as client:
        created = client.post("/products/batch", json={"create": [
            {"sku": "A", "manage_stock": True, "stock_quantity": "5", "regular_price": "1.00"},
            {"sku": "B", "manage_stock": True, "stock_quantity": 5, "regular_price": None},
            {"sku": "C", "manage_stock": True, "stock_quantity": 5, "regular_price": 2.5},
            {"sku": "D", "manage_stock": True, "stock_quantity": 5},
        ]}).json()["create"]
    assert [c.get("error", {}).get("message") for c in created] == [
        "Invalid parameter(s): stock_quantity is not of type integer.",
        "Invalid parameter(s): regular_price is not of type string.",
        "Invalid parameter(s): regular_price is not of type string.", None]
    assert (created[3]["stock_quantity"], created[3]["regular_price"], created[3]["price"]) == (5, "", "")
