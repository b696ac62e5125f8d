"""A shipment's parcels from its order: the goods' weight from the ERP plus the template's packaging,
and a locker size by the template's rules. A line whose product has no weight is a problem to fix in
the ERP, never a parcel declared at zero (the carrier would bill a surcharge, or refuse it at the depot)."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.orm import Session

from hub.catalog import Product
from hub.orders import Order, OrderLineRow
from hub.shipping.delivery_map import Template

GRAMS = Decimal("0.001")


@dataclass(frozen=True)
class PlannedParcel:
    weight_kg: Decimal
    length_cm: int | None
    width_cm: int | None
    height_cm: int | None
    template: str | None  # a locker size


class ParcelProblem(ValueError):
    """What stops the parcel from being weighed, in words for the order's problem."""


def goods_weight(session: Session, order: Order) -> Decimal:
    """The order's goods in kilograms: each goods line's product weight times its quantity."""
    quantities: dict[str, int] = defaultdict(int)
    unknown: list[str] = []
    for sku, name, quantity in session.execute(
            select(OrderLineRow.sku, OrderLineRow.name, OrderLineRow.quantity)
            .where(OrderLineRow.order_id == order.id, OrderLineRow.kind == "goods")
            .order_by(OrderLineRow.line_no)):
        if sku is None:
            unknown.append(name)
        else:
            quantities[sku] += quantity
    if unknown:
        raise ParcelProblem(f"line {unknown[0]!r} has no SKU, so no weight")
    if not quantities:
        raise ParcelProblem("the order has no goods to ship")
    weights = dict(session.execute(select(Product.sku, Product.weight_kg)
                                   .where(Product.sku.in_(sorted(quantities)))).all())
    missing = [sku for sku in sorted(quantities) if not weights.get(sku)]
    if missing:
        more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
        raise ParcelProblem(f"SKU {missing[0]} has no weight{more}")
    return sum((Decimal(weights[sku]) * qty for sku, qty in quantities.items()), Decimal("0"))


def plan_parcel(goods_kg: Decimal, template: Template) -> PlannedParcel:
    """One parcel: the goods plus packaging; for a locker template, the smallest size it fits."""
    weight = (goods_kg + template.packaging_kg).quantize(GRAMS)
    size = None
    if template.lockers:
        fits = [s.size for s in template.lockers if weight <= s.max_kg]
        if not fits:
            raise ParcelProblem(f"{weight} kg is over the largest locker size "
                                f"({template.lockers[-1].size}, {template.lockers[-1].max_kg} kg)")
        size = fits[0]
    return PlannedParcel(weight_kg=weight, length_cm=template.length_cm, width_cm=template.width_cm,
                         height_cm=template.height_cm, template=size)
