"""Golden tests for order_mapping.py: a Woo order -> ChannelOrder, revisions, the polling position,
refund requests -> refund bodies, and refunds -> returns. The payloads are shaped like the REST API
v3 reference's examples and are checked against schema.py first."""

from __future__ import annotations

import copy
import hashlib
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from woocommerce_testkit import check

from connectors.shops.woocommerce import order_mapping as om
from connectors.shops.woocommerce.schema import ORDER, REFUND, REFUND_REQUEST
from hub.kernel.ports.channel import ChannelReturn, InvoiceRequest, OrderLine, Payment, RefundRequest, ReturnLine
from hub.kernel.types import Address


def golden_order() -> dict[str, Any]:
    """Prices entered without tax, a simple and a variation line, cash on delivery, a company with a NIP."""
    return {
        "id": 727, "parent_id": 0, "number": "727", "status": "processing", "currency": "PLN",
        "date_created": "2024-06-11T12:00:05", "date_created_gmt": "2024-06-11T10:00:05",
        "date_modified": "2024-06-11T12:03:10", "date_modified_gmt": "2024-06-11T10:03:10",
        "discount_total": "4.00", "discount_tax": "0.92", "shipping_total": "12.00", "shipping_tax": "2.76",
        # total: 40.00 + 26.00 net, 12.00 shipping, 5.00 fee, 19.09 tax (the coupon's 4.00 is off the lines already)
        "cart_tax": "15.18", "total": "102.09", "total_tax": "19.09", "prices_include_tax": False,
        "customer_id": 0, "customer_note": "",
        "billing": {"first_name": "Anna", "last_name": "Nowak", "company": "Nowak Meble sp. z o.o.",
                    "address_1": "ul. Polna 12", "address_2": "", "city": "Poznań", "state": "",
                    "postcode": "60-101", "country": "PL", "email": "anna@nowakmeble.pl", "phone": "601 202 303"},
        "shipping": {"first_name": "Anna", "last_name": "Nowak", "company": "", "address_1": "ul. Leśna 3",
                     "address_2": "lok. 4", "city": "Gniezno", "state": "", "postcode": "62-200", "country": "PL",
                     "phone": ""},
        "payment_method": "cod", "payment_method_title": "Płatność przy odbiorze", "transaction_id": "",
        # WooCommerce stamps date_paid when a COD order goes to processing, though no money has moved
        "date_paid": "2024-06-11T12:00:06", "date_paid_gmt": "2024-06-11T10:00:06",
        "date_completed": None, "date_completed_gmt": None,
        "meta_data": [{"id": 4501, "key": "_wc_order_attribution_source_type", "value": "typein"},
                      {"id": 4502, "key": "_billing_nip", "value": "PL 526-000-12-46"}],
        "line_items": [
            {"id": 311, "name": "Kubek", "product_id": 93, "variation_id": 0, "quantity": 2, "tax_class": "",
             "subtotal": "40.00", "subtotal_tax": "9.20", "total": "40.00", "total_tax": "9.20",
             "taxes": [{"id": 1, "total": "9.20", "subtotal": "9.20"}], "meta_data": [], "sku": "KUB-01",
             "price": 20.0},
            # a 4.00 coupon on this line: total is after it, subtotal before; price is net
            {"id": 312, "name": "Koszulka - M", "product_id": 22, "variation_id": 23, "quantity": 3,
             "tax_class": "", "subtotal": "30.00", "subtotal_tax": "6.90", "total": "26.00", "total_tax": "5.98",
             "taxes": [{"id": 1, "total": "5.98", "subtotal": "6.90"}], "meta_data": [{"id": 4503, "key": "rozmiar",
                                                                                      "value": "M"}],
             "sku": "KOSZ-M", "price": 8.666667},
        ],
        "tax_lines": [{"id": 320, "rate_code": "PL-VAT-1", "rate_id": 1, "label": "VAT", "compound": False,
                       "tax_total": "15.18", "shipping_tax_total": "2.76", "rate_percent": 23, "meta_data": []}],
        "shipping_lines": [{"id": 313, "method_title": "Kurier DPD pobranie", "method_id": "flat_rate",
                            "instance_id": "3", "total": "12.00", "total_tax": "2.76",
                            "taxes": [{"id": 1, "total": "2.76", "subtotal": ""}], "meta_data": []}],
        "fee_lines": [{"id": 314, "name": "Opłata za pobranie", "tax_class": "", "tax_status": "taxable",
                       "total": "5.00", "total_tax": "1.15", "taxes": [{"id": 1, "total": "1.15", "subtotal": ""}]}],
        "coupon_lines": [{"id": 315, "code": "lato", "discount": "4.00", "discount_tax": "0.92"}],
        "refunds": [],
    }


def test_the_golden_order_fits_the_schema() -> None:
    check(ORDER, golden_order(), "golden order")


def test_a_cod_order_with_a_variation_and_a_company_nip() -> None:
    order = golden_order()
    co = om.channel_order(order, "sklep")
    assert co.lines == [
        OrderLine(sku="KUB-01", offer_id="93", name="Kubek", quantity=2, unit_price_gross=Decimal("24.60"),
                  vat_rate="23", line_id="311"),
        # (26.00 + 5.98) / 3 = 10.66: the price actually charged, coupon and tax included
        OrderLine(sku="KOSZ-M", offer_id="22/23", name="Koszulka - M", quantity=3, unit_price_gross=Decimal("10.66"),
                  vat_rate="23", line_id="312"),
        # the courier (12.00 + 2.76) and the cash-on-delivery fee (5.00 + 1.15): lines without a SKU
        OrderLine(sku=None, offer_id=None, name="Kurier DPD pobranie", quantity=1, unit_price_gross=Decimal("14.76"),
                  vat_rate="23", line_id="313", kind="shipping"),
        OrderLine(sku=None, offer_id=None, name="Opłata za pobranie", quantity=1, unit_price_gross=Decimal("6.15"),
                  vat_rate="23", line_id="314", kind="fee"),
    ]
    assert co.delivery_address == Address(name="Anna Nowak", street="ul. Leśna 3 lok. 4", city="Gniezno",
                                          postal_code="62-200", country="PL", company=None, phone="601 202 303",
                                          email="anna@nowakmeble.pl")
    assert co.payment == Payment(status="unpaid", amount=Decimal("102.09"), currency="PLN", method="cod",
                                 cash_on_delivery=True, payment_id="727")
    assert co.invoice == InvoiceRequest(
        company="Nowak Meble sp. z o.o.", nip="5260001246",
        address=Address(name="Anna Nowak", street="ul. Polna 12", city="Poznań", postal_code="60-101", country="PL",
                        company="Nowak Meble sp. z o.o.", phone="601 202 303", email="anna@nowakmeble.pl"))
    assert (co.channel_account, co.external_id, co.status, co.currency) == ("sklep", "727", "processing", "PLN")
    assert (co.buyer_email, co.buyer_login, co.pickup_point) == ("anna@nowakmeble.pl", None, None)
    assert co.delivery_method == "Kurier DPD pobranie"
    assert co.created_at == datetime(2024, 6, 11, 10, 0, 5, tzinfo=UTC)
    assert co.updated_at == datetime(2024, 6, 11, 10, 3, 10, tzinfo=UTC)
    assert co.revision == f"2024-06-11T10:03:10/{om.fingerprint(order)}" and len(co.revision) == 30
    assert co.raw == order and co.raw is not order


def test_cash_on_delivery_is_paid_once_completed_and_other_methods_once_paid() -> None:
    order = golden_order()
    assert om.payment({**order, "status": "completed"}).status == "paid"
    bank = {**order, "payment_method": "bacs", "status": "on-hold", "date_paid_gmt": None}
    assert om.payment(bank) == Payment("unpaid", Decimal("102.09"), "PLN", "bacs", False, "727")
    assert om.payment({**bank, "status": "processing"}).status == "paid"  # the seller saw the transfer
    online = {**bank, "payment_method": "przelewy24", "status": "pending", "date_paid_gmt": "2024-06-11T10:00:06",
              "transaction_id": "P24-88231"}
    assert (om.payment(online).status, om.payment(online).payment_id) == ("paid", "P24-88231")
    partly = {**online, "refunds": [{"id": 801, "reason": "", "total": "-10.00"}]}
    assert om.payment(partly).status == "partially_refunded"
    assert om.payment({**partly, "refunds": [{"id": 801, "reason": "", "total": "-102.09"}]}).status == "refunded"
    assert om.payment({**online, "status": "refunded"}).status == "refunded"


def test_prices_with_tax_give_the_same_gross_and_vat_rates_come_from_the_tax_lines() -> None:
    order = golden_order()
    order["prices_include_tax"] = True
    order["line_items"][0] |= {"total": "40.00", "total_tax": "9.20", "price": 20.0}  # Woo stores lines net anyway
    order["line_items"][1] |= {"taxes": [{"id": 2, "total": "2.08", "subtotal": "2.08"}], "total_tax": "2.08"}
    order["tax_lines"].append({"id": 321, "rate_code": "PL-VAT-8", "rate_id": 2, "label": "VAT 8%", "compound": False,
                               "tax_total": "2.08", "shipping_tax_total": "0.00", "rate_percent": 8})
    lines = om.order_lines(order)
    assert [(line.unit_price_gross, line.vat_rate) for line in lines if line.offer_id] == [(Decimal("24.60"), "23"),
                                                                                           (Decimal("9.36"), "8")]
    order["line_items"][1]["taxes"] = []  # no tax charged: the rate is the ERP's to know
    order["line_items"][0]["taxes"].append({"id": 2, "total": "0.10", "subtotal": "0.10"})  # two rates at once
    order["fee_lines"][0] |= {"taxes": [], "total_tax": "0.00", "tax_status": "none"}
    assert [line.vat_rate for line in om.order_lines(order)] == [None, None, "23", None]


def test_lines_of_deleted_products_and_empty_lines() -> None:
    order = golden_order()
    order["line_items"][0] |= {"product_id": 0, "sku": ""}  # the product was deleted after the sale
    order["line_items"][1]["quantity"] = 0
    line, *charges = om.order_lines(order)
    assert (line.sku, line.offer_id, line.name, line.line_id) == (None, None, "Kubek", "311")
    assert [charge.line_id for charge in charges] == ["313", "314"]


def test_addresses_fall_back_to_billing_and_vanish_for_virtual_orders() -> None:
    order = golden_order()
    order["shipping"] = {key: "" for key in order["shipping"]}  # local pickup: the checkout saved no address
    assert om.delivery_address(order) == Address(
        name="Anna Nowak", street="ul. Polna 12", city="Poznań", postal_code="60-101", country="PL",
        company="Nowak Meble sp. z o.o.", phone="601 202 303", email="anna@nowakmeble.pl")
    order["billing"] |= {"address_1": "", "city": ""}
    assert om.delivery_address(order) is None
    assert om.delivery_method({**order, "shipping_lines": []}) is None
    assert om.delivery_method({**order, "shipping_lines": [{"method_id": "local_pickup", "method_title": " "}]}) == \
        "local_pickup"


@pytest.mark.parametrize(("meta", "company", "expected"), [
    ([{"key": "_billing_nip", "value": "526-000-12-46"}], "ACME", ("ACME", "5260001246")),
    ([{"key": "NIP", "value": " 5260001246 "}], "", ("Anna Nowak", "5260001246")),  # a sole trader without a company
    ([{"key": "_billing_vat_number", "value": "DE123456789"}], "GmbH", ("GmbH", "DE123456789")),  # the hub judges it
    ([{"key": "_billing_nip", "value": ""}, {"key": "vat_number", "value": "5260001246"}], "X", ("X", "5260001246")),
    ([{"key": "_billing_company_id", "value": "5260001246"}], "ACME", None),  # a key we were not told about
    ([], "ACME sp. z o.o.", None),  # a company name alone asks for no invoice
])
def test_invoice_requests_need_a_nip_in_the_meta_data(meta: list[dict[str, Any]], company: str,
                                                      expected: tuple[str, str] | None) -> None:
    order = golden_order()
    order["meta_data"] = meta
    order["billing"]["company"] = company
    request = om.invoice(order)
    assert (None if request is None else (request.company, request.nip)) == expected


def test_nip_meta_keys_can_be_configured() -> None:
    order = golden_order()
    order["meta_data"] = [{"key": "_wc_billing/firma/nip", "value": "5260001246"}]  # a block checkout field
    assert om.invoice(order) is None
    request = om.invoice(order, ("_wc_billing/firma/nip",))
    assert request is not None and request.nip == "5260001246"


def test_the_revision_changes_with_what_the_hub_maps_and_only_with_that() -> None:
    order = golden_order()
    same_second = copy.deepcopy(order)
    same_second["status"] = "completed"  # a second change within date_modified's second
    assert om.revision(same_second) != om.revision(order)
    assert om.revision({**order, "billing": {**order["billing"], "city": "Gniezno"}}) != om.revision(order)
    assert om.revision({**order, "refunds": [{"id": 801, "reason": "", "total": "-1.00"}]}) != om.revision(order)
    noisy = {**order, "_links": {"self": [{"href": "x"}]}, "currency_symbol": "zł", "version": "9.2.0",
             "meta_data": order["meta_data"] + [{"id": 1, "key": "_edit_lock", "value": "1718100190:1"}]}
    assert om.revision(noisy) == om.revision(order)


def test_positions_round_trip_and_refuse_garbage() -> None:
    at = datetime(2024, 6, 11, 10, 0, 5, tzinfo=UTC)
    position = om.Position(at, {"1001": "aaaaaaaaaa", "99": "bbbbbbbbbb"})
    assert position.encode() == "woo1|2024-06-11T10:00:05|99=bbbbbbbbbb,1001=aaaaaaaaaa"
    assert om.Position.decode(position.encode()) == position
    assert om.Position.decode("woo1|2024-06-11T10:00:05|") == om.Position(at)
    assert position.is_new(at, "1001", "changed!!!") and not position.is_new(at, "1001", "aaaaaaaaaa")
    assert position.is_new(at, "1002", "cccccccccc") and not position.is_new(at.replace(second=4), "5", "x")
    assert position.after(at, "1002", "c") == om.Position(at, {"1001": "aaaaaaaaaa", "99": "bbbbbbbbbb", "1002": "c"})
    later = at.replace(second=6)
    assert position.after(later, "7", "d") == om.Position(later, {"7": "d"})
    for garbage in ("", "42", "woo2|2024-06-11T10:00:05|", "woo1|yesterday|", "woo1|2024-06-11T10:00:05|x=1",
                    "woo1|2024-06-11T10:00:05|12="):
        with pytest.raises(ValueError, match="not a WooCommerce order cursor"):
            om.Position.decode(garbage)


def test_event_kinds() -> None:
    order = golden_order()  # created 10:00:05
    before = om.Position(datetime(2024, 6, 11, 10, 0, 0, tzinfo=UTC))
    assert om.event_kind(order, before) == "created"
    assert om.event_kind(order, om.Position(datetime(2024, 6, 11, 10, 1, tzinfo=UTC))) == "updated"
    same = om.Position(datetime(2024, 6, 11, 10, 0, 5, tzinfo=UTC))
    assert om.event_kind(order, same) == "created"
    assert om.event_kind(order, om.Position(same.at, {"727": "x"})) == "updated"  # seen at that second already
    assert om.event_kind({**order, "status": "cancelled"}, before) == "cancelled"


def test_checkout_drafts_are_not_orders_and_status_slugs() -> None:
    assert om.is_order(golden_order()) and not om.is_order({**golden_order(), "status": "checkout-draft"})
    assert [om.status_slug(s) for s in ("completed", "wc-completed", " On-Hold ", "shipped", "no such!", "")] == [
        "completed", "completed", "on-hold", "shipped", None, None]


# --- refunds -------------------------------------------------------------------------------------


def refund(request_lines: list[ReturnLine], amount: str = "0", currency: str = "PLN") -> RefundRequest:
    return RefundRequest(order_external_id="727", payment_id=None, lines=request_lines, amount=Decimal(amount),
                         currency=currency, reason="REFUND")


def test_a_refund_of_lines_splits_net_and_tax_like_the_order() -> None:
    body = om.refund_body(golden_order(), [], refund([ReturnLine("KOSZ-M", "22/23", 1, line_id="312"),
                                                      ReturnLine("KUB-01", "93", 2)]),
                          idempotency_key="refund:sklep/R-1", api_refund=False)
    assert body == {
        "amount": "59.86",  # 10.66 + 2 * 24.60, the gross given back
        "reason": "REFUND [hub:refund:sklep/R-1]",
        "api_refund": False,
        "api_restock": False,
        "line_items": [
            {"id": 312, "quantity": 1, "refund_total": "8.67", "refund_tax": [{"id": 1, "refund_total": "1.99"}]},
            {"id": 311, "quantity": 2, "refund_total": "40.00", "refund_tax": [{"id": 1, "refund_total": "9.20"}]},
        ],
    }
    check(REFUND_REQUEST, body, "refund body")


def test_a_refund_amount_wins_and_line_amounts_are_split_too() -> None:
    body = om.refund_body(golden_order(), [], refund([ReturnLine(None, None, 1, line_id="311", amount_gross=Decimal(
        "12.30"))], amount="27.30"), idempotency_key="k", api_refund=True)
    assert (body["amount"], body["api_refund"], body["line_items"]) == ("27.30", True, [
        {"id": 311, "quantity": 1, "refund_total": "10.00", "refund_tax": [{"id": 1, "refund_total": "2.30"}]}])
    assert om.refund_body(golden_order(), [], refund([], amount="15.00"), idempotency_key="k", api_refund=False) == {
        "amount": "15.00", "reason": "REFUND [hub:k]", "api_refund": False, "api_restock": False}


def woo_refund(refund_id: int, amount: str, reason: str, lines: list[tuple[int, int, str, str]]) -> dict[str, Any]:
    """A refund as GET /orders/{id}/refunds shows it: (order line, quantity, net, tax) per line, negative."""
    order_lines = {item["id"]: item for item in golden_order()["line_items"]}
    return {
        "id": refund_id, "date_created": "2024-06-12T09:30:00", "date_created_gmt": "2024-06-12T07:30:00",
        "amount": amount, "reason": reason, "refunded_by": 1, "refunded_payment": False, "meta_data": [],
        "line_items": [{
            "id": 900 + n, "name": order_lines[line]["name"], "product_id": order_lines[line]["product_id"],
            "variation_id": order_lines[line]["variation_id"], "quantity": -quantity, "tax_class": "",
            "subtotal": f"-{net}", "subtotal_tax": f"-{tax}", "total": f"-{net}", "total_tax": f"-{tax}",
            "taxes": [{"id": 1, "total": f"-{tax}", "subtotal": f"-{tax}"}],
            "meta_data": [{"id": 7000 + n, "key": "_refunded_item_id", "value": str(line)}],
            "sku": order_lines[line]["sku"], "price": -float(net) / quantity,
        } for n, (line, quantity, net, tax) in enumerate(lines)],
    }


def test_refunds_cannot_exceed_what_is_left() -> None:
    done = [woo_refund(801, "24.60", "Zwrot", [(311, 1, "20.00", "4.60")])]
    for item in done:
        check(REFUND, item, "refund example")
    with pytest.raises(om.RefundProblem, match=r"line 311 has 1 unit\(s\) left to refund, not 2"):
        om.refund_body(golden_order(), done, refund([ReturnLine(None, None, 2, line_id="311")]),
                       idempotency_key="k", api_refund=False)
    with pytest.raises(om.RefundProblem, match=r"refund of 80.00 PLN exceeds the 77.49 PLN left to refund"):
        om.refund_body(golden_order(), done, refund([], amount="80"), idempotency_key="k", api_refund=False)
    with pytest.raises(om.RefundProblem, match="refund in EUR but the order was paid in PLN"):
        om.refund_body(golden_order(), [], refund([], amount="1", currency="EUR"), idempotency_key="k",
                       api_refund=False)
    with pytest.raises(om.RefundProblem, match="the order has no line 999"):
        om.refund_body(golden_order(), [], refund([ReturnLine(None, None, 1, line_id="999")]), idempotency_key="k",
                       api_refund=False)
    with pytest.raises(om.RefundProblem, match="no order line left to refund for offer '93'"):
        om.refund_body(golden_order(), [woo_refund(802, "49.20", "", [(311, 2, "40.00", "9.20")])],
                       refund([ReturnLine("KUB-01", "93", 1)]), idempotency_key="k", api_refund=False)
    with pytest.raises(om.RefundProblem, match="nothing to refund"):
        om.refund_body(golden_order(), [], refund([]), idempotency_key="k", api_refund=False)


def test_finding_the_hubs_refund_by_its_key() -> None:
    refunds = [woo_refund(801, "5.00", "Rabat za opóźnienie", []),
               woo_refund(802, "24.60", "REFUND [hub:refund:sklep/R-1]", [(311, 1, "20.00", "4.60")])]
    found = om.find_refund(refunds, "refund:sklep/R-1")
    assert found is not None and found["id"] == 802
    assert om.find_refund(refunds, "refund:sklep/R-10") is None and om.find_refund(refunds, "refund:sklep/R") is None
    assert om.refund_result(refunds[1]).status == "RECORDED"
    assert om.refund_result({**refunds[1], "refunded_payment": True}).external_id == "802"
    assert [om.made_by_hub(r) for r in refunds] == [False, True]
    assert om.refunded_quantities(refunds) == {311: 1}
    # a key WordPress would mangle (tags, %-escapes) is marked by its hash
    digest = hashlib.sha256(b"refund:sklep/<b>%20").hexdigest()[:24]
    assert om.hub_mark("refund:sklep/<b>%20") == f"[hub:h-{digest}]"
    assert om.find_refund([{**refunds[0], "reason": f"REFUND {om.hub_mark('a b')}"}], "a b") is not None


def test_a_refund_made_by_hand_becomes_a_refunded_return() -> None:
    made = woo_refund(801, "35.26", "Uszkodzony kubek", [(311, 1, "20.00", "4.60"), (312, 1, "8.67", "1.99")])
    assert om.channel_return(made, "727", "sklep") == ChannelReturn(
        channel_account="sklep", external_id="801", order_external_id="727", status="REFUNDED",
        lines=[ReturnLine(sku="KUB-01", offer_id="93", quantity=1, line_id="311", amount_gross=Decimal("24.60")),
               ReturnLine(sku="KOSZ-M", offer_id="22/23", quantity=1, line_id="312", amount_gross=Decimal("10.66"))],
        reason="Uszkodzony kubek", created_at=datetime(2024, 6, 12, 7, 30, tzinfo=UTC),
        updated_at=datetime(2024, 6, 12, 7, 30, tzinfo=UTC), refunded=True)
    amount_only = om.channel_return(woo_refund(802, "5.00", "", []), "727", "sklep")
    assert (amount_only.lines, amount_only.reason) == ([], None)
