"""Orders from every channel, exactly once; reservations so the last unit is never sold twice.

Intake (``accept``) runs in the transaction that also moves the channel's journal cursor:
- an order is unique per (channel, external id) in the database; the same order seen again
  with the same revision changes nothing, a new revision updates it;
- a bad order (a line whose SKU or offer the hub does not know, no delivery address or pickup
  point, an invalid NIP on an invoice request) is quarantined with the reason and reserves
  nothing; ``retry`` processes it again once the seller fixed the cause;
- a good order reserves its quantities at once, under a per-SKU lock, and never more than the
  stock: the order that would exceed it is flagged oversold instead. The affected SKUs are
  re-pushed to every channel by a high-priority job in the same transaction.

Reservations and the ERP's stock meet like this: a reservation is open from the order's
arrival until the ERP's own stock reflects the order, i.e. until the first ERP stock reading of
that SKU taken ``erp_stock_grace`` after the ERP accepted the order's sales document; then it is
consumed. Cancelling releases it, and an order the ERP had already booked gets a cancellation
document, so the ERP's stock takes the goods back. So a unit is subtracted once: by the
reservation before the ERP knows, by the ERP's stock after.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, NamedTuple

from sqlalchemy import func, select, text, update
from sqlalchemy.orm import Session
from stdnum.pl import nip as pl_nip

from hub import queue
from hub.automation import AutomationFile
from hub.catalog import mark_dirty
from hub.clock import utcnow
from hub.db import insert_for
from hub.logs import get_logger
from hub.models import (
    Listing,
    Order,
    OrderHistory,
    OrderLineRow,
    Product,
    Reservation,
    RuleRun,
    StockLevel,
)
from hub.order_status import StatusMap, TransitionError, can_move, check_move, path_to
from hub.ports import ChannelOrder

log = get_logger("hub.orders")

TO_ERP_KIND = "orders.to_erp"
ERP_CANCEL_KIND = "orders.erp_cancel"
PUSH_STATUS_KIND = "orders.push_status"
PLAN_KIND = "sync.plan"
MAX_RULE_DEPTH = 3


@dataclass
class OrderRules:
    automation: AutomationFile
    status_maps: Any  # hub.order_status.OrderStatusFile
    kinds: dict[str, str]  # connector name -> kind

    def status_map(self, channel: str) -> StatusMap:
        return self.status_maps.for_channel(channel, self.kinds.get(channel, ""))


@dataclass
class Accepted:
    order_id: int
    created: bool
    changed: bool
    events: list[str] = field(default_factory=list)


# --- validation ---------------------------------------------------------------------------


class LineRef(NamedTuple):
    """What identifies a line's product: the channel's signature and offer."""

    sku: str | None
    offer_id: str | None
    name: str



def _resolve_lines(session: Session, channel: str, co_lines: Sequence[Any]) -> tuple[list[str | None], list[str]]:
    """Each line's SKU: the signature if the catalogue knows it, else the offer's binding."""
    signatures = {line.sku for line in co_lines if line.sku}
    known = set(session.execute(select(Product.sku).where(Product.sku.in_(signatures))).scalars()) \
        if signatures else set()
    offers = {line.offer_id for line in co_lines if line.offer_id}
    bound = dict(session.execute(
        select(Listing.external_id, Listing.sku).where(Listing.channel == channel, Listing.external_id.in_(offers))
    ).all()) if offers else {}
    skus: list[str | None] = []
    problems: list[str] = []
    for no, line in enumerate(co_lines, start=1):
        sku = line.sku if line.sku in known else bound.get(line.offer_id) if line.offer_id else None
        skus.append(sku)
        if sku is None:
            what = f"SKU {line.sku!r}" if line.sku else f"offer {line.offer_id!r}"
            problems.append(f"line {no} ({line.name!r}): unknown {what}: add it to the ERP or bind the offer, "
                            "then run hub orders retry")
    return skus, problems


def validate(co: ChannelOrder) -> list[tuple[str, str]]:
    """Problems that are not about SKUs: (kind, reason)."""
    problems = []
    if co.delivery_address is None and co.pickup_point is None:
        problems.append(("missing_address", "no delivery address and no pickup point"))
    if co.invoice is not None:
        raw = co.invoice.nip or ""
        if not pl_nip.is_valid(raw):
            problems.append(("invalid_nip", f"invoice requested with NIP {raw!r}, which is not a valid Polish NIP"))
    return problems


def _jsonable(value: Any) -> Any:
    if value is None:
        return None
    data = asdict(value)
    return {k: str(v) if isinstance(v, Decimal) else v for k, v in data.items()}


def _delivery(co: ChannelOrder) -> dict[str, Any] | None:
    if co.delivery_address is None and co.pickup_point is None:
        return None
    return {"address": _jsonable(co.delivery_address),
            "pickup_point": None if co.pickup_point is None else {
                "id": co.pickup_point.id, "name": co.pickup_point.name,
                "address": _jsonable(co.pickup_point.address)}}


def _payment(co: ChannelOrder) -> dict[str, Any]:
    return _jsonable(co.payment)


def _invoice(co: ChannelOrder) -> dict[str, Any] | None:
    if co.invoice is None:
        return None
    return {"company": co.invoice.company, "nip": co.invoice.nip, "address": _jsonable(co.invoice.address)}


# --- reservations ---------------------------------------------------------------------------


def lock_skus(session: Session, skus: Iterable[str]) -> None:
    """Per-SKU locks, in one order (so two orders never deadlock), held to the end of the transaction.
    SQLite serializes writers already."""
    if session.get_bind().dialect.name != "postgresql":
        return
    for sku in sorted(set(skus)):
        session.execute(text("SELECT pg_advisory_xact_lock(hashtext(:k))"), {"k": f"hub.sku:{sku}"})


def available(session: Session, sku: str) -> int:
    stock = session.execute(select(func.coalesce(func.sum(StockLevel.quantity), 0))
                            .where(StockLevel.sku == sku)).scalar_one()
    reserved = session.execute(select(func.coalesce(func.sum(Reservation.quantity), 0))
                               .where(Reservation.sku == sku, Reservation.state == "open")).scalar_one()
    return int(stock) - int(reserved)


def reserve(session: Session, order: Order, lines: Sequence[OrderLineRow], now: datetime) -> list[str]:
    """Reserve every line or flag the order oversold; returns the oversold reasons."""
    wanted: dict[str, int] = defaultdict(int)
    for line in lines:
        if line.sku:
            wanted[line.sku] += line.quantity
    lock_skus(session, wanted)
    reasons = []
    ref = f"{order.channel}/{order.external_id}"
    for sku in sorted(wanted):
        free = available(session, sku)
        if wanted[sku] > free:
            reasons.append(f"{sku}: ordered {wanted[sku]}, only {max(free, 0)} left")
            continue
        stmt = insert_for(session)(Reservation).values(
            sku=sku, quantity=wanted[sku], order_ref=ref, order_id=order.id, state="open",
            created_at=now, updated_at=now)
        session.execute(stmt.on_conflict_do_nothing(index_elements=["order_ref", "sku"]))
    mark_dirty(session, wanted, now)
    _push_stock_now(session)
    return reasons


def release(session: Session, order: Order, now: datetime) -> int:
    rows = session.execute(
        update(Reservation).where(Reservation.order_id == order.id, Reservation.state == "open")
        .values(state="released", updated_at=now).returning(Reservation.sku)
    ).scalars().all()
    if rows:
        mark_dirty(session, rows, now)
        _push_stock_now(session)
    return len(rows)


def _push_stock_now(session: Session) -> None:
    """The changed SKUs' available-to-sell goes to every channel at once, ahead of routine work."""
    queue.enqueue_coalesced(session, PLAN_KIND, {"reason": "reservations"}, group="plan:reservations", priority=20)


def consume_reflected(session: Session, skus: Iterable[str], grace: timedelta, now: datetime) -> int:
    """The ERP's stock for these SKUs was just read: reservations of orders the ERP accepted at least
    ``grace`` ago are now in the ERP's own numbers."""
    skus = sorted(set(skus))
    if not skus:
        return 0
    booked = select(Order.id).where(Order.erp_booked_at.is_not(None), Order.erp_booked_at <= now - grace)
    result = session.execute(
        update(Reservation)
        .where(Reservation.sku.in_(skus), Reservation.state == "open", Reservation.order_id.in_(booked))
        .values(state="consumed", updated_at=now)
    )
    return result.rowcount or 0


# --- status -------------------------------------------------------------------------------


def move(session: Session, order: Order, target: str, source: str, now: datetime, note: str | None = None,
         *, push: bool = True) -> None:
    """One allowed transition, recorded; the channel hears of it through a job (unless it told us)."""
    check_move(order.status, target)
    session.add(OrderHistory(order_id=order.id, from_status=order.status, to_status=target, source=source,
                             note=note, at=now))
    order.status = target
    order.updated_at = now
    if target == "cancelled":
        release(session, order, now)
        if order.erp_ref:  # already booked: the ERP reverses the sale and its stock takes the goods back
            queue.enqueue(session, ERP_CANCEL_KIND, {"order_id": order.id},
                          key=f"erp-cancel:{order.channel}/{order.external_id}")
    if push:
        queue.enqueue(session, PUSH_STATUS_KIND, {"order_id": order.id, "status": target},
                      key=f"status:{order.id}:{target}:{uuid.uuid4().hex[:8]}", connector=order.channel)


def _inbound_target(order: Order, co: ChannelOrder, status_map: StatusMap) -> str | None:
    target = status_map.inbound.get(co.status)
    if co.payment.status == "paid" and order.status == "new" and target in (None, "new"):
        target = "paid"
    if target == "paid" and co.payment.status != "paid" and co.payment.cash_on_delivery:
        # a shop marks a cash-on-delivery order "processing" before any money moved: it is not paid
        target = "processing"
    return target


# --- intake -------------------------------------------------------------------------------


def _facts(order: Order) -> dict[str, Any]:
    address = ((order.delivery or {}).get("address") or {})
    payment = order.payment or {}
    return {
        "channel": order.channel, "delivery_method": order.delivery_method,
        "payment_method": payment.get("method"), "cash_on_delivery": bool(payment.get("cash_on_delivery")),
        "country": address.get("country", "PL"), "amount": order.total_gross, "tags": list(order.tags or []),
        "invoice": order.invoice is not None,
    }


def run_rules(session: Session, rules: OrderRules, order: Order, event: str, now: datetime, depth: int = 0) -> None:
    if depth > MAX_RULE_DEPTH:
        return
    for rule in rules.automation.for_event(event):
        ok, _ = rule.when.matches(_facts(order))
        if not ok:
            continue
        done: list[str] = []
        failed = None
        for action in rule.do:
            try:
                follow = _act(session, order, action, rule.name, now)
                done.append(action.action)
            except (TransitionError, ValueError) as exc:
                failed = f"{action.action}: {exc}"
                done.append(f"{action.action} FAILED")
                if rule.on_failure == "stop":
                    break
                continue
            if follow:
                run_rules(session, rules, order, follow, now, depth + 1)
        outcome = "done" if failed is None else ("stopped" if rule.on_failure == "stop" else "failed")
        session.add(RuleRun(order_id=order.id, rule=rule.name, event=event, outcome=outcome,
                            detail="; ".join(done) + (f" ({failed})" if failed else ""), at=now))


def _act(session: Session, order: Order, action: Any, rule: str, now: datetime) -> str | None:
    if action.action == "set_status":
        if order.status == action.status:
            return None
        steps = path_to(order.status, action.status) or [action.status]
        for step in steps:
            move(session, order, step, f"rule:{rule}"[:30], now)
        return "order.status_changed"
    if action.action == "send_to_erp":
        if order.problem:
            raise ValueError(f"the order is quarantined ({order.problem_kind}); fix it first")
        queue.enqueue(session, TO_ERP_KIND, {"order_id": order.id}, key=f"erp-doc:{order.channel}/{order.external_id}")
        return None
    if action.action == "add_tag":
        if action.tag not in (order.tags or []):
            order.tags = [*(order.tags or []), action.tag]
        return None
    if action.action == "remove_tag":
        order.tags = [t for t in (order.tags or []) if t != action.tag]
        return None
    raise ValueError(f"unknown action {action.action}")


def accept(session: Session, rules: OrderRules, co: ChannelOrder) -> Accepted:
    """Store one channel order (new or a new revision) and do what follows from it."""
    now = utcnow()
    existing = session.execute(select(Order).where(
        Order.channel == co.channel_account, Order.external_id == co.external_id)).scalar_one_or_none()
    if existing is None:
        values = {
            "channel": co.channel_account, "external_id": co.external_id, "revision": co.revision, "status": "new",
            "channel_status": co.status, "oversold": False, "buyer_email": co.buyer_email,
            "buyer_login": co.buyer_login, "delivery_method": co.delivery_method, "delivery": _delivery(co),
            "payment": _payment(co), "invoice": _invoice(co), "currency": co.currency,
            "total_gross": co.payment.amount, "tags": [], "placed_at": co.created_at,
            "channel_updated_at": co.updated_at, "created_at": now, "updated_at": now,
        }
        # the unique key decides under races: a concurrent intake of the same order inserts nothing
        stmt = insert_for(session)(Order).values(**values).on_conflict_do_nothing(
            index_elements=["channel", "external_id"]).returning(Order.id)
        new_id = session.execute(stmt).scalar()
        if new_id is None:
            return accept(session, rules, co)
        order = session.get(Order, new_id)
        assert order is not None
        lines = _store_lines(session, order, co)
        session.add(OrderHistory(order_id=order.id, from_status=None, to_status="new", source="channel",
                                 note=f"{co.channel_account} {co.status}", at=now))
        result = Accepted(order.id, created=True, changed=True, events=["order.created"])
        _validate_and_reserve(session, rules, order, co, lines, now, result)
        if co.status in rules.status_map(order.channel).inbound or co.payment.status == "paid":
            _apply_channel_status(session, rules, order, co, now, result)
        for event in result.events:
            run_rules(session, rules, order, event, now)
        return result

    order = existing
    if order.revision == co.revision and co.revision is not None:
        return Accepted(order.id, created=False, changed=False)
    order.revision = co.revision
    order.channel_status = co.status
    order.channel_updated_at = co.updated_at
    order.payment = _payment(co)
    order.delivery = _delivery(co)
    order.delivery_method = co.delivery_method
    order.invoice = _invoice(co)
    order.updated_at = now
    result = Accepted(order.id, created=False, changed=True)
    _apply_channel_status(session, rules, order, co, now, result)
    for event in result.events:
        run_rules(session, rules, order, event, now)
    return result


def _store_lines(session: Session, order: Order, co: ChannelOrder) -> list[OrderLineRow]:
    skus, _ = _resolve_lines(session, order.channel, co.lines)
    rows = []
    for no, (line, sku) in enumerate(zip(co.lines, skus, strict=True), start=1):
        row = OrderLineRow(order_id=order.id, line_no=no, line_id=line.line_id, sku=sku, signature=line.sku,
                           offer_id=line.offer_id, name=line.name, quantity=line.quantity,
                           unit_price_gross=line.unit_price_gross, vat_rate=line.vat_rate)
        session.add(row)
        rows.append(row)
    session.flush()
    return rows


def _validate_and_reserve(session: Session, rules: OrderRules, order: Order, co: ChannelOrder | None,
                          lines: list[OrderLineRow], now: datetime, result: Accepted) -> None:
    problems: list[tuple[str, str]] = []
    unknown = [f"line {line.line_no} ({line.name!r}): unknown "
               + (f"SKU {line.signature!r}" if line.signature else f"offer {line.offer_id!r}")
               + ": add it to the ERP or bind the offer, then run hub orders retry"
               for line in lines if line.sku is None]
    problems += [("unknown_sku", u) for u in unknown]
    if co is not None:
        problems += validate(co)
    else:
        problems += _validate_stored(order)
    if problems:
        order.problem_kind = problems[0][0]
        order.problem = "; ".join(reason for _, reason in problems)
        result.events.append("order.problem")
        log.warning("order quarantined", channel=order.channel, order=order.external_id, problem=order.problem)
        return
    order.problem = order.problem_kind = None
    if order.status == "cancelled" or (co is not None and rules.status_map(order.channel).inbound.get(co.status)
                                       == "cancelled"):
        return
    reasons = reserve(session, order, lines, now)
    if reasons:
        order.oversold = True
        order.problem_kind = "oversold"
        order.problem = "oversold: " + "; ".join(reasons)
        result.events.append("order.oversold")
        log.warning("order oversold", channel=order.channel, order=order.external_id, detail=order.problem)


def _validate_stored(order: Order) -> list[tuple[str, str]]:
    problems = []
    if order.delivery is None:
        problems.append(("missing_address", "no delivery address and no pickup point"))
    if order.invoice is not None and not pl_nip.is_valid(order.invoice.get("nip") or ""):
        problems.append(("invalid_nip", f"invoice requested with NIP {order.invoice.get('nip')!r}, "
                                        "which is not a valid Polish NIP"))
    return problems


def _apply_channel_status(session: Session, rules: OrderRules, order: Order, co: ChannelOrder, now: datetime,
                          result: Accepted) -> None:
    target = _inbound_target(order, co, rules.status_map(order.channel))
    if target is None or target == order.status:
        return
    if target == "cancelled":
        if can_move(order.status, "cancelled"):
            move(session, order, "cancelled", "channel", now, note=co.status, push=False)
            result.events.append("order.cancelled")
        return
    steps = path_to(order.status, target)
    if not steps:
        return  # behind us or not reachable: an old event; never move backwards
    for step in steps:
        move(session, order, step, "channel", now, note=co.status, push=False)
        if step == "paid":
            result.events.append("order.paid")
    result.events.append("order.status_changed")


def retry(session: Session, rules: OrderRules, order_id: int) -> Accepted:
    """Process a quarantined order again after the seller fixed the cause."""
    from hub.errors import HubError, NotFoundError

    order = session.get(Order, order_id)
    if order is None:
        raise NotFoundError(f"no order with id {order_id}")
    if order.problem is None:
        raise HubError(f"order {order_id} has no problem to retry")
    now = utcnow()
    lines = list(session.execute(select(OrderLineRow).where(OrderLineRow.order_id == order.id)
                                 .order_by(OrderLineRow.line_no)).scalars())
    refs = [LineRef(line.signature, line.offer_id, line.name) for line in lines]
    skus, _ = _resolve_lines(session, order.channel, refs)
    for line, sku in zip(lines, skus, strict=True):
        line.sku = sku
    session.flush()
    if order.oversold:
        session.execute(update(Reservation).where(Reservation.order_id == order.id, Reservation.state == "open")
                        .values(state="released", updated_at=now))
        order.oversold = False
    result = Accepted(order.id, created=False, changed=True)
    _validate_and_reserve(session, rules, order, None, lines, now, result)
    if order.problem is None:
        session.add(OrderHistory(order_id=order.id, from_status=order.status, to_status=order.status,
                                 source="operator", note="retried: problem resolved", at=now))
        events = ["order.created"] + (["order.paid"] if order.status == "paid" else [])
        for event in events:
            run_rules(session, rules, order, event, now)
    return result


# --- many new orders at once (a journal's chunk) ----------------------------------------------


def _resolver(session: Session, orders: Sequence[ChannelOrder]) -> Any:
    """One look-up of every signature and offer of the chunk, instead of two queries per order."""
    signatures = {line.sku for co in orders for line in co.lines if line.sku}
    known = set(session.execute(select(Product.sku).where(Product.sku.in_(signatures))).scalars()) \
        if signatures else set()
    bound: dict[tuple[str, str], str | None] = {}
    for channel in {co.channel_account for co in orders}:
        offers = {line.offer_id for co in orders if co.channel_account == channel for line in co.lines
                  if line.offer_id}
        if offers:
            for external_id, sku in session.execute(select(Listing.external_id, Listing.sku).where(
                    Listing.channel == channel, Listing.external_id.in_(offers))).all():
                bound[(channel, external_id)] = sku

    def resolve(channel: str, line: Any) -> str | None:
        if line.sku in known:
            return line.sku
        return bound.get((channel, line.offer_id)) if line.offer_id else None

    return resolve


def _lock_sku_set(session: Session, skus: Sequence[str]) -> None:
    """The per-SKU locks of lock_skus, taken in one statement (sorted: no deadlocks)."""
    if session.get_bind().dialect.name != "postgresql" or not skus:
        return
    session.execute(text("SELECT pg_advisory_xact_lock(hashtext(k)) FROM unnest(CAST(:keys AS text[])) AS k "
                         "ORDER BY k"), {"keys": [f"hub.sku:{s}" for s in sorted(set(skus))]})


def _free_stock(session: Session, skus: Sequence[str]) -> dict[str, int]:
    stock = dict(session.execute(select(StockLevel.sku, func.sum(StockLevel.quantity))
                                 .where(StockLevel.sku.in_(skus)).group_by(StockLevel.sku)).all())
    held = dict(session.execute(select(Reservation.sku, func.sum(Reservation.quantity))
                                .where(Reservation.sku.in_(skus), Reservation.state == "open")
                                .group_by(Reservation.sku)).all())
    return {sku: int(stock.get(sku) or 0) - int(held.get(sku) or 0) for sku in skus}


def accept_many(session: Session, rules: OrderRules, orders: Sequence[ChannelOrder]) -> list[Accepted]:
    """``accept`` for a chunk: new orders are stored and reserved set-based, in arrival order (so the
    oversold decision is the same as one by one); orders the hub has already go through ``accept``."""
    now = utcnow()
    latest: dict[tuple[str, str], ChannelOrder] = {}
    for co in orders:
        latest[(co.channel_account, co.external_id)] = co
    known: set[tuple[str, str]] = set()
    for channel in {k[0] for k in latest}:
        ids = [k[1] for k in latest if k[0] == channel]
        known |= {(channel, e) for e in session.execute(select(Order.external_id).where(
            Order.channel == channel, Order.external_id.in_(ids))).scalars()}
    new = [co for key, co in latest.items() if key not in known]
    results = [accept(session, rules, co) for key, co in latest.items() if key in known]
    if not new:
        return results
    rows = [{
        "channel": co.channel_account, "external_id": co.external_id, "revision": co.revision, "status": "new",
        "channel_status": co.status, "oversold": False, "buyer_email": co.buyer_email, "buyer_login": co.buyer_login,
        "delivery_method": co.delivery_method, "delivery": _delivery(co), "payment": _payment(co),
        "invoice": _invoice(co), "currency": co.currency, "total_gross": co.payment.amount, "tags": [],
        "placed_at": co.created_at, "channel_updated_at": co.updated_at, "created_at": now, "updated_at": now,
    } for co in new]
    # parameter lists, not one VALUES clause: the statement is compiled once and sent in batches
    inserted = {(ch, ext): oid for oid, ch, ext in session.execute(
        insert_for(session)(Order).on_conflict_do_nothing(index_elements=["channel", "external_id"])
        .returning(Order.id, Order.channel, Order.external_id), rows).all()}
    raced = [co for co in new if (co.channel_account, co.external_id) not in inserted]
    new = [co for co in new if (co.channel_account, co.external_id) in inserted]
    by_id = {o.id: o for o in session.execute(select(Order).where(Order.id.in_(list(inserted.values())))).scalars()}
    resolve = _resolver(session, new)
    line_rows, history, wanted = [], [], {}
    for co in new:
        order_id = inserted[(co.channel_account, co.external_id)]
        need: dict[str, int] = defaultdict(int)
        unknown = []
        for no, line in enumerate(co.lines, start=1):
            sku = resolve(co.channel_account, line)
            line_rows.append({"order_id": order_id, "line_no": no, "line_id": line.line_id, "sku": sku,
                              "signature": line.sku, "offer_id": line.offer_id, "name": line.name,
                              "quantity": line.quantity, "unit_price_gross": line.unit_price_gross,
                              "vat_rate": line.vat_rate})
            if sku is None:
                what = f"SKU {line.sku!r}" if line.sku else f"offer {line.offer_id!r}"
                unknown.append(f"line {no} ({line.name!r}): unknown {what}: add it to the ERP or bind the offer, "
                               "then run hub orders retry")
            else:
                need[sku] += line.quantity
        history.append({"order_id": order_id, "from_status": None, "to_status": "new", "source": "channel",
                        "note": f"{co.channel_account} {co.status}", "at": now})
        problems = [("unknown_sku", u) for u in unknown] + validate(co)
        order = by_id[order_id]
        if problems:
            order.problem_kind = problems[0][0]
            order.problem = "; ".join(reason for _, reason in problems)
        elif rules.status_map(order.channel).inbound.get(co.status) != "cancelled":
            wanted[order_id] = need
    session.execute(insert_for(session)(OrderLineRow), line_rows)
    session.execute(insert_for(session)(OrderHistory), history)
    skus = sorted({sku for need in wanted.values() for sku in need})
    if skus:
        _lock_sku_set(session, skus)
        free = _free_stock(session, skus)
        reservations = []
        for co in new:  # arrival order decides who gets the last unit
            order_id = inserted[(co.channel_account, co.external_id)]
            if order_id not in wanted:
                continue
            order = by_id[order_id]
            short = []
            for sku, quantity in sorted(wanted[order_id].items()):
                if quantity > free[sku]:
                    short.append(f"{sku}: ordered {quantity}, only {max(free[sku], 0)} left")
                    continue
                free[sku] -= quantity
                reservations.append({"sku": sku, "quantity": quantity, "order_id": order_id, "state": "open",
                                     "order_ref": f"{order.channel}/{order.external_id}", "created_at": now,
                                     "updated_at": now})
            if short:
                order.oversold = True
                order.problem_kind = "oversold"
                order.problem = "oversold: " + "; ".join(short)
        if reservations:
            session.execute(insert_for(session)(Reservation).on_conflict_do_nothing(
                index_elements=["order_ref", "sku"]), reservations)
        mark_dirty(session, skus, now)
        _push_stock_now(session)
    for co in new:
        order = by_id[inserted[(co.channel_account, co.external_id)]]
        result = Accepted(order.id, created=True, changed=True, events=["order.created"])
        if order.problem:
            result.events.append("order.oversold" if order.oversold else "order.problem")
            log.warning("order quarantined" if not order.oversold else "order oversold", channel=order.channel,
                        order=order.external_id, problem=order.problem)
        if co.status in rules.status_map(order.channel).inbound or co.payment.status == "paid":
            _apply_channel_status(session, rules, order, co, now, result)
        for event in result.events:
            run_rules(session, rules, order, event, now)
        results.append(result)
    results += [accept(session, rules, co) for co in raced]
    return results
