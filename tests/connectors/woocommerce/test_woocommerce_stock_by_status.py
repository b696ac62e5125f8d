"""The simulator moves product stock with order statuses, as WooCommerce's own stock hooks do.

The reference says only that ``set_paid`` "will set the status to processing and reduce stock items"
(_orders.md) and shows ``"_order_stock_reduced": "yes"`` in its order examples; the statuses are
WooCommerce's (includes/wc-stock-functions.php): processing, completed and on-hold take the stock once
per order, cancelled and pending put it back, refunded and failed leave it. A refund created with
``api_restock`` (default true, _order-refunds.md) puts its lines back.
"""

from __future__ import annotations

from collections.abc import Callable

import httpx
from woocommerce_testkit import BASE_URL, KEY, SECRET, Wired

from connectors.shops.woocommerce.simulator import WooSimulator

Wire = Callable[..., Wired]


def http(sim: WooSimulator) -> httpx.Client:
    return httpx.Client(transport=sim.transport(), base_url=f"{BASE_URL}/wp-json/wc/v3", auth=(KEY, SECRET))


def stock(sim: WooSimulator, pid: int) -> tuple[int | None, str]:
    product = sim.product(pid)
    return product["stock_quantity"], product["stock_status"]


def reduced_meta(sim: WooSimulator, oid: int) -> list[str]:
    return [m["value"] for m in sim.order(oid)["meta_data"] if m["key"] == "_order_stock_reduced"]


def test_an_order_placed_as_paid_lowers_the_stock_once(sim: WooSimulator) -> None:
    mug = sim.add_simple("KUB-01", 5, "24.60")
    order = sim.add_order([(mug, 2)])  # the checkout's paid order: processing
    assert stock(sim, mug) == (3, "instock")
    assert sim.stock_reduced(order) and reduced_meta(sim, order) == ["yes"]
    for status in ("on-hold", "completed", "processing"):  # every one of them reduces, but only the first did
        sim.set_status(order, status)
        assert stock(sim, mug) == (3, "instock"), status
    assert reduced_meta(sim, order) == ["yes"]  # one meta entry, not one per transition


def test_a_pending_order_takes_no_stock_until_it_is_paid(sim: WooSimulator) -> None:
    mug = sim.add_simple("KUB-01", 5, "24.60")
    order = sim.add_order([(mug, 2)], status="pending", payment_method="bacs")
    assert stock(sim, mug) == (5, "instock") and not sim.stock_reduced(order) and reduced_meta(sim, order) == []
    with http(sim) as client:
        answer = client.put(f"/orders/{order}", json={"status": "on-hold"}).json()  # awaiting the transfer
        assert answer["status"] == "on-hold"
        assert {"key": "_order_stock_reduced", "value": "yes"} in [
            {"key": m["key"], "value": m["value"]} for m in answer["meta_data"]]
        (shown,) = client.get("/products", params={"sku": "KUB-01"}).json()
    assert (shown["stock_quantity"], shown["stock_status"]) == (3, "instock")


def test_status_changes_back_and_forth_do_not_count_twice(sim: WooSimulator) -> None:
    mug = sim.add_simple("KUB-01", 5, "24.60")
    order = sim.add_order([(mug, 2)], status="pending")
    steps = [("processing", 3), ("on-hold", 3), ("completed", 3), ("cancelled", 5), ("cancelled", 5),
             ("pending", 5), ("processing", 3), ("pending", 5), ("on-hold", 3), ("failed", 3), ("processing", 3),
             ("cancelled", 5)]
    with http(sim) as client:
        for status, left in steps:
            assert client.put(f"/orders/{order}", json={"status": status}).json()["status"] == status
            assert sim.product(mug)["stock_quantity"] == left, f"after {status}"
    assert reduced_meta(sim, order) == ["no"]  # put back: the next paid status would take it again


def test_cancelling_puts_the_stock_back_once_and_stock_status_follows(sim: WooSimulator) -> None:
    mug = sim.add_simple("KUB-01", 2, "24.60")
    cup = sim.add_simple("KUB-02", 1, "12.30")
    order = sim.add_order([(mug, 2), (cup, 3)])  # more cups than there are: stock goes below zero
    assert (stock(sim, mug), stock(sim, cup)) == ((0, "outofstock"), (-2, "outofstock"))
    sim.set_status(order, "cancelled")
    assert (stock(sim, mug), stock(sim, cup)) == ((2, "instock"), (1, "instock"))
    sim.set_status(order, "pending")  # pending restores too, but there is nothing left to restore
    sim.set_status(order, "cancelled")
    assert (stock(sim, mug), stock(sim, cup)) == ((2, "instock"), (1, "instock"))


def test_refunded_and_failed_leave_the_stock_taken(sim: WooSimulator) -> None:
    mug = sim.add_simple("KUB-01", 5, "24.60")
    refunded, failed = sim.add_order([(mug, 1)]), sim.add_order([(mug, 1)])
    assert stock(sim, mug) == (3, "instock")
    sim.set_status(refunded, "refunded")  # the refund of what is left has no lines: nothing is restocked
    sim.set_status(failed, "failed")
    assert stock(sim, mug) == (3, "instock") and sim.order_refunds(refunded)[0]["line_items"] == []
    sim.set_status(refunded, "cancelled")  # cancelling afterwards gives the unit back, once
    sim.set_status(failed, "cancelled")
    assert stock(sim, mug) == (5, "instock")


def test_a_refund_with_api_restock_puts_its_lines_back_and_only_the_rest_on_cancel(sim: WooSimulator) -> None:
    mug = sim.add_simple("KUB-01", 5, "24.60")
    order = sim.add_order([(mug, 3)], payment_method="przelewy24")
    line = sim.order(order)["line_items"][0]
    with http(sim) as client:
        kept = client.post(f"/orders/{order}/refunds", json={  # the hub's refunds: api_restock false
            "amount": "24.60", "api_restock": False, "line_items": [{"id": line["id"], "quantity": 1}]})
        assert kept.status_code == 201 and sim.product(mug)["stock_quantity"] == 2
        back = client.post(f"/orders/{order}/refunds", json={  # api_restock left out: "Default is true"
            "amount": "24.60", "line_items": [{"id": line["id"], "quantity": 1}]})
        assert back.status_code == 201 and sim.product(mug)["stock_quantity"] == 3
    sim.set_status(order, "cancelled")  # the order holds 2 units now, not 3
    assert sim.product(mug)["stock_quantity"] == 5


def test_variations_parents_and_products_without_stock_management(sim: WooSimulator) -> None:
    loose = sim.add_simple("LUZ-01", None, "9.99", manage_stock=False)
    shirt, (small, medium) = sim.add_variable("KOSZ", [("KOSZ-S", 4, "49.20"), ("KOSZ-M", 6, "49.20")])
    with http(sim) as client:  # the medium shirt counts on the parent's stock
        client.post("/products/batch", json={"update": [{"id": shirt, "manage_stock": True, "stock_quantity": 10}]})
        client.post(f"/products/{shirt}/variations/batch", json={"update": [{"id": medium, "manage_stock": "parent"}]})
    order = sim.add_order([(loose, 3), ((shirt, small), 1), ((shirt, medium), 2)])
    assert stock(sim, loose) == (None, "instock")
    assert sim.variation(shirt, small)["stock_quantity"] == 3
    assert (sim.product(shirt)["stock_quantity"], sim.variation(shirt, medium)["stock_quantity"]) == (8, None)
    sim.set_status(order, "cancelled")
    assert (sim.variation(shirt, small)["stock_quantity"], sim.product(shirt)["stock_quantity"]) == (4, 10)


def test_the_channel_lists_the_stock_an_order_took(sim: WooSimulator, wire: Wire) -> None:
    mug = sim.add_simple("KUB-01", 5, "24.60")
    order = sim.add_order([(mug, 5)])
    channel = wire().channel
    assert [(x.sku, x.quantity) for x in channel.listings()] == [("KUB-01", 0)]
    sim.set_status(order, "cancelled")
    assert [(x.sku, x.quantity) for x in channel.listings()] == [("KUB-01", 5)]
