"""Orders as the ERP books them: the stored order in the port's type."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from hub.catalog import Product
from hub.kernel.ports.channel import ChannelOrder, InvoiceRequest, OrderLine, Payment
from hub.kernel.types import Address, PickupPoint
from hub.orders.models import Order, OrderLineRow


def _address(data: dict[str, Any] | None) -> Address | None:
    return Address(**data) if data else None


def stored_order(session: Session, order: Order) -> ChannelOrder:
    """The order as the hub holds it, in the port's type (for the ERP document)."""
    lines = list(session.execute(select(OrderLineRow).where(OrderLineRow.order_id == order.id)
                                 .order_by(OrderLineRow.line_no)).scalars())
    # a channel that does not say the VAT rate of a line: the ERP catalogue's rate for the SKU
    vat = dict(session.execute(select(Product.sku, Product.vat_rate).where(
        Product.sku.in_([line.sku for line in lines if line.sku]))).all())
    delivery = order.delivery or {}
    pickup = delivery.get("pickup_point")
    payment = dict(order.payment)
    payment["amount"] = Decimal(str(payment["amount"]))
    invoice = order.invoice
    return ChannelOrder(
        channel_account=order.channel, external_id=order.external_id, revision=order.revision or "",
        status=order.channel_status or "", buyer_email=order.buyer_email, buyer_login=order.buyer_login,
        lines=[OrderLine(sku=line.sku, offer_id=line.offer_id, name=line.name, quantity=line.quantity,
                         unit_price_gross=line.unit_price_gross, vat_rate=line.vat_rate or vat.get(line.sku),
                         line_id=line.line_id, kind=line.kind)  # type: ignore[arg-type]
               for line in lines],
        delivery_address=_address(delivery.get("address")),
        pickup_point=PickupPoint(pickup["id"], pickup.get("name"), _address(pickup.get("address")))
        if pickup else None,
        delivery_method=order.delivery_method, payment=Payment(**payment),
        invoice=InvoiceRequest(invoice["company"], invoice["nip"], _address(invoice.get("address")))  # type: ignore[arg-type]
        if invoice else None,
        currency=order.currency, created_at=order.placed_at, updated_at=order.channel_updated_at,
    )
