"""Every charge of an order reaches the ERP document: a delivery or fee line has no SKU, reserves
nothing and is never an "unknown SKU"; without the channel's VAT rate it follows the goods' rate (split
by their gross when they have several), and the document's total is what the buyer paid."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal
from pathlib import Path

from sqlalchemy import Engine, select

from hub.kernel.ports.channel import OrderLine
from hub.orders import intake
from hub.orders.documents import stored_order
from hub.orders.models import Order, Reservation
from hub.orders.sales_documents import sales_document, with_charge_rates
from hub.platform.db import transaction
from tests.orders.test_paid_by_shipping import _rules
from tests.support.fake_connectors import make_order

D = Decimal


def _line(gross: str, rate: str | None, kind: str = "goods", quantity: int = 1) -> OrderLine:
    return OrderLine(sku="A" if kind == "goods" else None, offer_id=None, name="x" if kind == "goods" else "Kurier",
                     quantity=quantity, unit_price_gross=D(gross), vat_rate=rate, kind=kind)  # type: ignore[arg-type]


def test_a_charge_follows_the_goods_rate_or_is_split_by_their_gross() -> None:
    one_rate = with_charge_rates([_line("100.00", "23"), _line("15.00", None, "shipping")])
    assert [(line.vat_rate, line.unit_price_gross) for line in one_rate] == [("23", D("100.00")), ("23", D("15.00"))]
    mixed = with_charge_rates([_line("30.00", "23", quantity=2), _line("40.00", "5"), _line("15.00", None, "shipping")])
    charges = [(line.vat_rate, line.unit_price_gross, line.name) for line in mixed if line.kind == "shipping"]
    assert charges == [("23", D("9.00"), "Kurier (VAT 23%)"), ("5", D("6.00"), "Kurier (VAT 5%)")]  # 60 : 40
    odd = with_charge_rates([_line("10.00", "23"), _line("10.00", "8"), _line("10.00", "5"),
                             _line("10.00", None, "fee")])
    assert sum(line.unit_price_gross for line in odd if line.kind == "fee") == D("10.00")  # the last part rounds
    given = with_charge_rates([_line("10.00", "5"), _line("15.00", "23", "shipping")])
    assert given[1].vat_rate == "23"  # the channel's own rate stands


def test_an_order_with_delivery_is_booked_with_it(order_fakes: None, db_url: str, engine: Engine,
                                                  tmp_path: Path) -> None:
    rules = _rules(tmp_path, db_url, engine)
    order = make_order("shop", "D1", [("A", None, 2, "50.00")])
    delivery = OrderLine(sku=None, offer_id=None, name="Kurier DPD", quantity=1, unit_price_gross=D("18.45"),
                         kind="shipping")
    order = replace(order, lines=[*order.lines, delivery],
                    payment=replace(order.payment, amount=D("118.45")))
    with transaction(engine) as s:
        accepted = intake.accept(s, rules, order)
    with transaction(engine) as s:
        stored = s.get(Order, accepted.order_id)
        assert stored.problem is None  # the delivery line is no unknown SKU
        assert [(r.sku, r.quantity) for r in s.execute(select(Reservation)).scalars()] == [("A", 2)]
        document = sales_document("shop/D1", stored_order(s, stored))
    assert document.gross == D("118.45") == order.payment.amount
    assert [(line.name, line.vat_rate, line.gross) for line in document.lines] == [
        ("item A", "23", D("100.00")), ("Kurier DPD", "23", D("18.45"))]
