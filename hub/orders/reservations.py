"""Reservations: stock held for orders so the last unit is never sold twice."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Container, Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, func, or_, select, text, update
from sqlalchemy.orm import Session

from hub.catalog import StockLevel, stock_changed
from hub.orders.models import Order, OrderLineRow, Reservation
from hub.platform.db import insert_for

_CHUNK = 500


def lock_skus(session: Session, skus: Iterable[str]) -> None:
    """Per-SKU locks held to the end of the transaction, taken in one statement and in one order (so
    two orders never deadlock). SQLite serializes writers already."""
    keys = [f"hub.sku:{s}" for s in sorted(set(skus))]
    if session.get_bind().dialect.name != "postgresql" or not keys:
        return
    session.execute(text("SELECT pg_advisory_xact_lock(hashtext(k)) FROM unnest(CAST(:keys AS text[])) AS k "
                         "ORDER BY k"), {"keys": keys})


def reserved_by_sku(session: Session, skus: Sequence[str]) -> dict[str, int]:
    """Units held by open reservations, per SKU (SKUs without any are absent)."""
    return {
        sku: int(total)
        for sku, total in session.execute(
            select(Reservation.sku, func.sum(Reservation.quantity))
            .where(Reservation.sku.in_(skus), Reservation.state == "open")
            .group_by(Reservation.sku)
        ).all()
    }


def reserved_units_of(sku: Any) -> Any:
    """The units open reservations hold of ``sku`` (a column), as a correlated scalar subquery: what a
    set-based available-to-sell reads per SKU (hub.listings.desired_sql), the same sum as reserved_by_sku,
    0 when none."""
    return (select(func.coalesce(func.sum(Reservation.quantity), 0))
            .where(Reservation.sku == sku, Reservation.state == "open").scalar_subquery())


def free_stock(session: Session, skus: Sequence[str]) -> dict[str, int]:
    """Stock minus open reservations, per SKU: what a new order may still reserve. The one place
    this is computed (a channel's available-to-sell starts from the same reservations)."""
    stock = dict(session.execute(select(StockLevel.sku, func.sum(StockLevel.quantity))
                                 .where(StockLevel.sku.in_(skus)).group_by(StockLevel.sku)).all())
    held = reserved_by_sku(session, skus)
    return {sku: int(stock.get(sku) or 0) - held.get(sku, 0) for sku in skus}


def reserve_in_order(session: Session, wants: Sequence[tuple[Order, Mapping[str, int]]], now: datetime
                     ) -> dict[int, list[str]]:
    """Reserve each order's quantities, in the order given: arrival order decides who gets the last
    unit, and no reservation ever exceeds stock. Returns the oversold reasons of the orders that
    could not have all they asked for (what they could have of other SKUs is still reserved).

    Under the per-SKU locks; the changed SKUs' available-to-sell goes to every channel at once."""
    skus = sorted({sku for _, need in wants for sku in need})
    if not skus:
        return {}
    lock_skus(session, skus)
    free = free_stock(session, skus)
    rows: list[dict[str, object]] = []
    short: dict[int, list[str]] = {}
    for order, need in wants:
        for sku, quantity in sorted(need.items()):
            if quantity > free[sku]:
                short.setdefault(order.id, []).append(f"{sku}: ordered {quantity}, only {max(free[sku], 0)} left")
                continue
            free[sku] -= quantity
            rows.append({"sku": sku, "quantity": quantity, "order_id": order.id, "state": "open",
                         "order_ref": f"{order.channel}/{order.external_id}", "created_at": now, "updated_at": now})
    if rows:
        # a released hold of the same order and SKU is taken up again (an order retried after its
        # problem was fixed, or reopened by its channel): the unique key keeps one row per order and SKU,
        # and skipping it left the order holding nothing. An open or consumed one stays as it is (two
        # processes storing one new order: the loser changes nothing)
        insert = insert_for(session)(Reservation)
        session.execute(insert.on_conflict_do_update(
            index_elements=["order_ref", "sku"],
            set_={"state": "open", "quantity": insert.excluded.quantity, "order_id": insert.excluded.order_id,
                  "updated_at": insert.excluded.updated_at},
            where=Reservation.state == "released"), rows)
    stock_changed(session, skus, now, reason="reservations")
    return short


def quantities(lines: Iterable[OrderLineRow]) -> dict[str, int]:
    """Units per SKU of an order's lines (lines without a SKU hold nothing)."""
    need: dict[str, int] = defaultdict(int)
    for line in lines:
        if line.sku:
            need[line.sku] += line.quantity
    return dict(need)


def reserve(session: Session, order: Order, lines: Sequence[OrderLineRow], now: datetime) -> list[str]:
    """Reserve every line of one order or flag it oversold; returns the oversold reasons."""
    return reserve_in_order(session, [(order, quantities(lines))], now).get(order.id, [])


def release(session: Session, order: Order, now: datetime) -> int:
    rows = session.execute(
        update(Reservation).where(Reservation.order_id == order.id, Reservation.state == "open")
        .values(state="released", updated_at=now).returning(Reservation.sku)
    ).scalars().all()
    if rows:
        stock_changed(session, rows, now, reason="reservations")
    return len(rows)


def consume_reflected(session: Session, skus: Container[str], grace: timedelta, now: datetime) -> set[str]:
    """The ERP's stock for these SKUs was just read: reservations of orders the ERP accepted at least
    ``grace`` ago are now in the ERP's own numbers. Returns the SKUs whose reservations ended (only
    their available-to-sell changes: a file feed's batch is the whole catalogue, the ended
    reservations a handful, so ``skus`` is only asked about those: a snapshot's are in the database)."""
    if not skus:
        return set()
    # the candidates are the open reservations of booked orders: few, whatever the catalogue's size
    candidates = session.execute(
        select(Reservation.id, Reservation.sku).join(Order, Order.id == Reservation.order_id)
        .where(Reservation.state == "open", Order.erp_booked_at.is_not(None), Order.erp_booked_at <= now - grace)
    ).all()
    ids = [rid for rid, sku in candidates if sku in skus]
    ended: set[str] = set()
    for start in range(0, len(ids), _CHUNK):
        ended.update(session.execute(
            update(Reservation).where(Reservation.id.in_(ids[start:start + _CHUNK]), Reservation.state == "open")
            .values(state="consumed", updated_at=now).returning(Reservation.sku)
        ).scalars())
    return ended


def units_ordered_since(sku: Any, channel: Any, since: Any, earliest: Any = None) -> Any:
    """A scalar SQL expression: units of ``sku`` in the orders the hub has of ``channel`` that were
    placed there at or after ``since`` (columns of the caller's query, which it correlates to): the
    sales after a moment the hub knew the channel's quantity. They explain the units a listing's sale
    hold stands for (hub.listings.plan); an order placed before, imported later, explains none.

    ``earliest``: ``since`` rounded down to the channel's order-time resolution. An order stamped
    between the two may have been placed after ``since`` (a shop stamping to the second); it counts
    if the hub had not imported it by ``since`` (one it had was in what the hub knew)."""
    placed_after = Order.placed_at >= since
    if earliest is not None:
        placed_after = or_(placed_after, and_(Order.placed_at >= func.coalesce(earliest, since),
                                              Order.created_at >= since))
    return (select(func.coalesce(func.sum(OrderLineRow.quantity), 0))
            .select_from(OrderLineRow).join(Order, Order.id == OrderLineRow.order_id)
            .where(OrderLineRow.sku == sku, Order.channel == channel, placed_after)
            .scalar_subquery())
