"""An order's lines add up to what the buyer paid: shipping and fee lines are order lines without a SKU,
coupons are in the line totals already (never a line of their own), and a line whose gross does not split
into whole grosze per unit is split in two. Golden tests on the REST API v3 reference's example, then the
simulator's orders through the channel and into the hub's sales document."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from decimal import Decimal
from typing import Any

import pytest
from woocommerce_testkit import Wired, check

from connectors.shops.woocommerce import order_mapping as om
from connectors.shops.woocommerce.schema import ORDER
from connectors.shops.woocommerce.simulator import WooSimulator
from hub.kernel.ports.channel import ChannelOrder, OrderLine
from hub.orders.sales_documents import sales_document

Wire = Callable[..., Wired]


def gross(lines: Sequence[OrderLine]) -> Decimal:
    return sum((line.unit_price_gross * line.quantity for line in lines), Decimal("0.00"))


def documented_order() -> dict[str, Any]:
    """The reference's "Create an order" response (_orders.md), without _links: 2 x 3.00 + 12.00 net,
    1.35 tax, 10.00 flat rate shipping; total 29.35."""
    address = {"first_name": "John", "last_name": "Doe", "address_1": "969 Market", "address_2": "",
               "city": "San Francisco", "state": "CA", "postcode": "94103", "country": "US"}
    return {
        "id": 727, "parent_id": 0, "number": "727", "order_key": "wc_order_58d2d042d1d", "created_via": "rest-api",
        "version": "3.0.0", "status": "processing", "currency": "USD", "date_created": "2017-03-22T16:28:02",
        "date_created_gmt": "2017-03-22T19:28:02", "date_modified": "2017-03-22T16:28:08",
        "date_modified_gmt": "2017-03-22T19:28:08", "discount_total": "0.00", "discount_tax": "0.00",
        "shipping_total": "10.00", "shipping_tax": "0.00", "cart_tax": "1.35", "total": "29.35", "total_tax": "1.35",
        "prices_include_tax": False, "customer_id": 0, "customer_ip_address": "", "customer_user_agent": "",
        "customer_note": "",
        "billing": {**address, "company": "", "email": "john.doe@example.com", "phone": "(555) 555-5555"},
        "shipping": {**address, "company": ""},
        "payment_method": "bacs", "payment_method_title": "Direct Bank Transfer", "transaction_id": "",
        "date_paid": "2017-03-22T16:28:08", "date_paid_gmt": "2017-03-22T19:28:08", "date_completed": None,
        "date_completed_gmt": None, "cart_hash": "",
        "meta_data": [{"id": 13106, "key": "_download_permissions_granted", "value": "yes"}],
        "line_items": [
            {"id": 315, "name": "Woo Single #1", "product_id": 93, "variation_id": 0, "quantity": 2, "tax_class": "",
             "subtotal": "6.00", "subtotal_tax": "0.45", "total": "6.00", "total_tax": "0.45",
             "taxes": [{"id": 75, "total": "0.45", "subtotal": "0.45"}], "meta_data": [], "sku": "", "price": 3},
            {"id": 316, "name": "Ship Your Idea &ndash; Color: Black, Size: M Test", "product_id": 22,
             "variation_id": 23, "quantity": 1, "tax_class": "", "subtotal": "12.00", "subtotal_tax": "0.90",
             "total": "12.00", "total_tax": "0.90", "taxes": [{"id": 75, "total": "0.9", "subtotal": "0.9"}],
             "meta_data": [{"id": 2095, "key": "pa_color", "value": "black"},
                           {"id": 2096, "key": "size", "value": "M Test"}],
             "sku": "Bar3", "price": 12},
        ],
        "tax_lines": [{"id": 318, "rate_code": "US-CA-STATE TAX", "rate_id": 75, "label": "State Tax",
                       "compound": False, "tax_total": "1.35", "shipping_tax_total": "0.00", "meta_data": []}],
        "shipping_lines": [{"id": 317, "method_title": "Flat Rate", "method_id": "flat_rate", "total": "10.00",
                            "total_tax": "0.00", "taxes": [], "meta_data": []}],
        "fee_lines": [], "coupon_lines": [], "refunds": [],
    }


# --- golden ------------------------------------------------------------------------------------------


def test_the_reference_example_books_what_was_paid() -> None:
    order = documented_order()
    check(ORDER, order, "the reference's order example")
    lines = om.channel_order(order, "sklep").lines
    assert lines == [
        # 6.00 + 0.45 for two units is 3.225 each: one at 3.22 and one at 3.23, the same order line
        OrderLine(sku=None, offer_id="93", name="Woo Single #1", quantity=1, unit_price_gross=Decimal("3.22"),
                  line_id="315"),
        OrderLine(sku=None, offer_id="93", name="Woo Single #1", quantity=1, unit_price_gross=Decimal("3.23"),
                  line_id="315"),
        OrderLine(sku="Bar3", offer_id="22/23", name="Ship Your Idea &ndash; Color: Black, Size: M Test", quantity=1,
                  unit_price_gross=Decimal("12.90"), line_id="316"),
        OrderLine(sku=None, offer_id=None, name="Flat Rate", quantity=1, unit_price_gross=Decimal("10.00"),
                  line_id="317", kind="shipping"),
    ]
    assert gross(lines) == Decimal(order["total"]) == Decimal("29.35")


def test_fees_and_shipping_are_lines_and_coupons_are_in_the_line_totals_already() -> None:
    order = documented_order()
    # a 10% coupon on the first line (subtotal before, total after it), a taxed fee and a discount fee
    order["line_items"][0] |= {"total": "5.40", "total_tax": "0.41", "taxes": [{"id": 75, "total": "0.41",
                                                                                  "subtotal": "0.45"}]}
    order["coupon_lines"] = [{"id": 319, "code": "lato10", "discount": "0.60", "discount_tax": "0.04",
                              "meta_data": []}]
    order["fee_lines"] = [
        {"id": 320, "name": "Gift wrap", "tax_class": "", "tax_status": "taxable", "total": "5.00",
         "total_tax": "0.38", "taxes": [{"id": 75, "total": "0.38", "subtotal": ""}], "meta_data": []},
        {"id": 321, "name": "", "tax_class": "", "tax_status": "none", "total": "-2.00", "total_tax": "0.00",
         "taxes": [], "meta_data": []},
    ]
    order["shipping_lines"][0] |= {"method_title": " ", "method_id": "flat_rate", "total": "12.00",
                                   "total_tax": "0.90", "taxes": [{"id": 75, "total": "0.90", "subtotal": ""}]}
    order["shipping_lines"].append({"id": 322, "method_title": "Free shipping", "method_id": "free_shipping",
                                    "total": "0.00", "total_tax": "0.00", "taxes": [], "meta_data": []})
    # 5.40 + 12.00 + 12.00 + 5.00 - 2.00 net, 0.41 + 0.90 + 0.90 + 0.38 tax
    order |= {"discount_total": "0.60", "discount_tax": "0.04", "total": "34.99", "total_tax": "2.59"}
    check(ORDER, order, "an order with a coupon, fees and two shipping lines")
    lines = om.order_lines(order)
    assert [(line.name, line.quantity, line.unit_price_gross, line.sku, line.offer_id, line.line_id)
            for line in lines] == [
        ("Woo Single #1", 1, Decimal("2.90"), None, "93", "315"),  # 5.81 for two
        ("Woo Single #1", 1, Decimal("2.91"), None, "93", "315"),
        ("Ship Your Idea &ndash; Color: Black, Size: M Test", 1, Decimal("12.90"), "Bar3", "22/23", "316"),
        ("flat_rate", 1, Decimal("12.90"), None, None, "317"),  # no title: the method's id
        ("Gift wrap", 1, Decimal("5.38"), None, None, "320"),
        (om.FEE_NAME, 1, Decimal("-2.00"), None, None, "321"),  # a discount given as a negative fee
    ]  # the free shipping line charged nothing: no line; the coupon is no line (it is in 5.40 already)
    assert gross(lines) == Decimal(order["total"])


@pytest.mark.parametrize(("amount", "quantity", "split"), [
    ("31.98", 3, [(3, "10.66")]),
    ("68.63", 3, [(1, "22.87"), (2, "22.88")]),
    ("10.00", 3, [(2, "3.33"), (1, "3.34")]),
    ("0.01", 2, [(1, "0.00"), (1, "0.01")]),
    ("0.00", 4, [(4, "0.00")]),
    ("99.99", 1, [(1, "99.99")]),
])
def test_unit_prices_add_up_to_the_line(amount: str, quantity: int, split: list[tuple[int, str]]) -> None:
    parts = om.unit_prices(Decimal(amount), quantity)
    assert parts == [(units, Decimal(price)) for units, price in split]
    assert sum(units * price for units, price in parts) == Decimal(amount)
    assert sum(units for units, _ in parts) == quantity


# --- through the channel -------------------------------------------------------------------------------


def check_books(co: ChannelOrder, order: dict[str, Any]) -> None:
    """The lines, the payment and the sales document the hub makes of them all say what the buyer paid.

    A discount given as a negative fee is a line with a negative price, which the hub's sales documents
    refuse today (hub.orders.sales_documents.document_line): those orders are checked up to the lines."""
    paid = Decimal(order["total"])
    assert gross(co.lines) == co.payment.amount == paid, (co.lines, paid)
    if all(line.unit_price_gross >= 0 for line in co.lines):
        assert sales_document(f"WOO/{co.external_id}", co).gross == paid


def test_orders_with_shipping_fees_and_coupons_book_what_was_paid(sim: WooSimulator, wire: Wire) -> None:
    book = sim.add_simple("KSIAZKA", 50, "104.30")
    mug = sim.add_simple("KUB-01", 50, "24.60")
    shirt, (small, _m) = sim.add_variable("KOSZ", [("KOSZ-S", 30, "49.20"), ("KOSZ-M", 30, "49.20")])
    channel = wire().channel
    _, cursor = channel.order_events(None)
    placed = [
        sim.add_order([(book, 3)]),  # 312.90 of goods, 15.00 + 3.45 courier: 331.35 paid
        sim.add_order([(mug, 3), ((shirt, small), 1)], coupon=("lato7", "7"), fees=[("Opłata za pobranie", "5.00")],
                      payment_method="cod"),
        sim.add_order([(mug, 7)], coupon=("minus3", "3"), prices_include_tax=False, vat=8,
                      shipping_method=("flexible_shipping", "Paczkomaty InPost"), shipping_total="12.19"),
        sim.add_order([((shirt, small), 2)], fees=[("Rabat stałego klienta", "-10.00")], shipping_method=None),
    ]
    events, _ = channel.order_events(cursor)
    assert [e.external_id for e in events] == [str(o) for o in placed]
    assert sim.order(placed[0])["total"] == "331.35"  # the demo's order: 312.90 of goods was all it booked
    first = channel.order(str(placed[0]))
    assert [(line.name, line.quantity, line.unit_price_gross, line.sku) for line in first.lines] == [
        ("Product KSIAZKA", 3, Decimal("104.30"), "KSIAZKA"), ("Kurier DPD", 1, Decimal("18.45"), None)]
    for oid in placed:
        check_books(channel.order(str(oid)), sim.order(oid))
    coupon = sim.order(placed[1])
    assert coupon["coupon_lines"][0]["discount"] == coupon["discount_total"] != "0.00"
    assert [line.quantity for line in channel.order(str(placed[1])).lines if line.sku == "KUB-01"] == [1, 2]
    # the same again as orders_updated_since reads them (the hub's reconciliation)
    for co in channel.orders_updated_since(sim.clock):
        check_books(co, sim.order(int(co.external_id)))
