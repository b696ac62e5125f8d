"""The simulator itself: response shapes, paging, auth, batch limits, and serving on loopback."""

from __future__ import annotations

import httpx
import pytest
from tenacity import wait_none
from woocommerce_testkit import KEY, SECRET, services

from connectors.shops.woocommerce import WooCommerceOptions, build_channel
from connectors.shops.woocommerce.simulator import Faults, WooSimulator
from hub.kernel.errors import RetryableError
from hub.kernel.ports.channel import ListingChange
from hub.platform.ratelimit import LocalRateLimiter, Throttle


def http(sim: WooSimulator, auth: tuple[str, str] | None = (KEY, SECRET)) -> httpx.Client:
    return httpx.Client(transport=sim.transport(), base_url="https://sklep.example.pl/wp-json/wc/v3", auth=auth)


def test_list_paging_headers_sku_filter_and_page_errors(sim: WooSimulator) -> None:
    ids = [sim.add_simple(f"S-{n}", n, "1.00") for n in range(25)]
    with http(sim) as client:
        first = client.get("/products", params={"per_page": 10, "page": 1})
        assert (first.headers["X-WP-Total"], first.headers["X-WP-TotalPages"]) == ("25", "3")
        assert [p["id"] for p in first.json()] == sorted(ids, reverse=True)[:10]  # newest first by default
        asc = client.get("/products", params={"per_page": 10, "page": 3, "orderby": "id", "order": "asc"})
        assert [p["id"] for p in asc.json()] == ids[20:]
        assert [p["id"] for p in client.get("/products", params={"sku": "S-3,S-7"}).json()] == [ids[7], ids[3]]
        beyond = client.get("/products", params={"per_page": 10, "page": 4})
        assert (beyond.status_code, beyond.json()["code"]) == (400, "rest_post_invalid_page_number")
        too_big = client.get("/products", params={"per_page": 101})
        assert (too_big.status_code, too_big.json()["code"]) == (400, "rest_invalid_param")
        empty = client.get("/products/999/variations")
        assert (empty.json(), empty.headers["X-WP-TotalPages"]) == ([], "0")


def test_auth_basic_or_query_string(sim: WooSimulator) -> None:
    with http(sim, auth=None) as client:
        assert client.get("/products").json()["code"] == "woocommerce_rest_cannot_view"
        assert client.get("/products", params={"consumer_key": KEY, "consumer_secret": SECRET}).status_code == 200
    with http(sim, auth=("ck_x", SECRET)) as client:
        answer = client.get("/products")
        assert (answer.status_code, answer.json()["message"]) == (401, "Consumer key is invalid.")


def test_batch_shapes_limits_and_routes(sim: WooSimulator) -> None:
    parent, (vid,) = sim.add_variable("V", [("V-1", 1, "2.00")])
    with http(sim) as client:
        too_many = client.post("/products/batch", json={"update": [{"id": n, "stock_quantity": 1}
                                                                    for n in range(1, 102)]})
        assert (too_many.status_code, too_many.json()["code"]) == (413, "woocommerce_rest_request_entity_too_large")
        created = client.post("/products/batch", json={"create": [
            {"sku": "NEW", "regular_price": "3.00", "manage_stock": True, "stock_quantity": 2}, {"sku": "V-1"}]})
        new, duplicate = created.json()["create"]
        assert (new["sku"], new["stock_quantity"], new["price"]) == ("NEW", 2, "3.00")
        assert duplicate == {"id": 0, "error": {"code": "product_invalid_sku", "message": "Invalid or duplicated SKU.",
                                                "data": {"status": 400}}}
        deleted = client.post("/products/batch", json={"delete": [new["id"], 424242]}).json()["delete"]
        assert deleted[0]["id"] == new["id"] and deleted[1]["error"]["code"] == "woocommerce_rest_product_invalid_id"
        updated = client.post(f"/products/{parent}/variations/batch",
                              json={"update": [{"id": vid, "manage_stock": True, "stock_quantity": 0}]})
        assert updated.json()["update"][0] | {"stock_status": "outofstock", "parent_id": parent} == \
            updated.json()["update"][0]
        assert client.get("/coupons").json()["code"] == "rest_no_route"
        assert client.post("/products/batch", content=b"{nope").json()["code"] == "rest_invalid_json"
    assert len(sim.requests("POST", r"/batch$")) == 5


def test_served_on_loopback_including_a_late_answer_after_the_change_landed(sim: WooSimulator) -> None:
    pid = sim.add_simple("KUB-01", 10, "5.00")
    base_url = sim.serve()
    try:
        assert base_url.startswith("http://127.0.0.1:")
        options = WooCommerceOptions.model_validate({"base_url": base_url, "consumer_key": KEY,
                                                     "consumer_secret": SECRET, "timeout": "300ms", "attempts": 2})
        throttle = Throttle(LocalRateLimiter(), "woocommerce:served", 300.0, 5.0, sleep=lambda _s: None)
        channel = build_channel("served", options, services("served", throttle, None), retry_wait=wait_none())
        try:
            assert [listing.quantity for listing in channel.listings()] == [10]
            change = ListingChange(str(pid), "KUB-01", quantity=4)
            sim.faults = Faults(delay_rate=1.0, delay_seconds=0.6)
            with pytest.raises(RetryableError, match="ReadTimeout"):
                channel.push([change], idempotency_key="served")
            assert sim.product(pid)["stock_quantity"] == 4  # the shop applied it; the answer came too late
            sim.clear_faults()
            assert [r.ok for r in channel.push([change], idempotency_key="served")] == [True]
        finally:
            channel.close()
    finally:
        sim.stop()


# --- orders and refunds -----------------------------------------------------------------------------


def test_orders_list_filters_by_modification_time_like_woocommerce(sim: WooSimulator) -> None:
    pid = sim.add_simple("KUB-01", 10, "24.60")
    first = sim.add_order([(pid, 1)])
    sim.advance(10)
    second = sim.add_order([(pid, 1)])
    sim.add_order([(pid, 1)], status="checkout-draft")  # a block checkout cart: not listed
    sim.advance(10)
    sim.set_status(first, "completed")
    with http(sim) as client:
        everything = client.get("/orders")
        assert [o["id"] for o in everything.json()] == [second, first]  # newest first by default (date desc)
        assert (everything.headers["X-WP-Total"], everything.headers["X-WP-TotalPages"]) == ("2", "1")
        query = {"orderby": "modified", "order": "asc", "dates_are_gmt": "true", "per_page": 100}
        asc = client.get("/orders", params=query | {"modified_after": "2024-06-11T10:00:09"}).json()
        assert [o["id"] for o in asc] == [second, first]
        exclusive = client.get("/orders", params=query | {"modified_after": "2024-06-11T10:00:10"}).json()
        assert [o["id"] for o in exclusive] == [first]  # modified_after is strictly after
        # without dates_are_gmt the value is the shop's local time (UTC+2): every order is "after" it
        local = client.get("/orders", params={"modified_after": "2024-06-11T10:00:10", "orderby": "modified"}).json()
        assert len(local) == 2
        assert [o["id"] for o in client.get("/orders", params={"status": "checkout-draft"}).json()] == [second + 1]
        order = client.get(f"/orders/{first}").json()
        assert (order["date_modified_gmt"], order["date_modified"]) == ("2024-06-11T10:00:20", "2024-06-11T12:00:20")
        assert order["date_completed_gmt"] == "2024-06-11T10:00:20" and order["date_paid_gmt"] == "2024-06-11T10:00:00"
        for bad in ({"orderby": "price"}, {"modified_after": "yesterday"}):
            answer = client.get("/orders", params=bad)
            assert (answer.status_code, answer.json()["code"]) == (400, "rest_invalid_param")
        missing = client.get("/orders/999999")
        assert (missing.status_code, missing.json()["code"]) == (404, "woocommerce_rest_shop_order_invalid_id")


def test_order_updates_and_refunds_behave_like_woocommerce(sim: WooSimulator) -> None:
    pid = sim.add_simple("KUB-01", 10, "24.60")
    cod = sim.add_order([(pid, 2)], payment_method="cod", status="pending")
    assert sim.order(cod)["date_paid_gmt"] is None
    with http(sim) as client:
        bad = client.put(f"/orders/{cod}", json={"status": "sent"})
        assert (bad.status_code, bad.json()["code"]) == (400, "rest_invalid_param")
        sim.advance()
        updated = client.put(f"/orders/{cod}", json={"status": "processing"}).json()
        assert updated["status"] == "processing" and updated["date_paid_gmt"] == "2024-06-11T10:00:01"  # even COD
        total = sim.order(cod)["total"]
        assert total == "67.65"  # 2 x 24.60 + 15.00 shipping + 3.45 its VAT
        negative = client.post(f"/orders/{cod}/refunds", json={"amount": "-1", "api_refund": False})
        assert (negative.status_code, negative.json()["code"]) == (400, "woocommerce_rest_invalid_order_refund")
        gateway = client.post(f"/orders/{cod}/refunds", json={"amount": "1.00"})  # api_refund defaults to true
        assert (gateway.status_code, gateway.json()["message"]) == (
            500, "The payment gateway for this order does not support automatic refunds.")
        too_much = client.post(f"/orders/{cod}/refunds", json={"amount": "70.00", "api_refund": False})
        assert (too_much.status_code, too_much.json()["code"]) == (500, "woocommerce_rest_cannot_create_order_refund")
        sim.advance()
        line = sim.order(cod)["line_items"][0]
        created = client.post(f"/orders/{cod}/refunds", json={
            "amount": "24.60", "reason": "Zwrot", "api_refund": False, "api_restock": False,
            "line_items": [{"id": line["id"], "quantity": 1, "refund_total": 20.0,
                            "refund_tax": [{"id": 1, "refund_total": 4.6}]}]})
        assert created.status_code == 201
        refund = created.json()
        assert (refund["amount"], refund["refunded_payment"], refund["line_items"][0]["quantity"]) == ("24.60", False,
                                                                                                       -1)
        assert refund["line_items"][0]["meta_data"][0] | {"id": 0} == {"id": 0, "key": "_refunded_item_id",
                                                                        "value": str(line["id"])}
        order = client.get(f"/orders/{cod}").json()
        assert order["refunds"] == [{"id": refund["id"], "reason": "Zwrot", "total": "-24.60"}]
        assert order["date_modified_gmt"] == "2024-06-11T10:00:02"  # a refund stamps its order
        assert [r["id"] for r in client.get(f"/orders/{cod}/refunds").json()] == [refund["id"]]
        sim.set_status(cod, "refunded")  # by hand: Woo refunds what is left
        rest = sim.order_refunds(cod)[-1]
        assert (rest["amount"], rest["reason"], rest["line_items"]) == ("43.05", "Order fully refunded.", [])
    assert len(sim.order_refunds(cod)) == 2
