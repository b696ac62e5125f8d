"""Orders from every channel, exactly once.

Intake runs in the transaction that also moves the channel's journal cursor:
- an order is unique per (channel, external id) in the database; the same order seen again
  with the same revision changes nothing, a new revision updates it;
- a bad order (a line whose SKU or offer the hub does not know, no delivery address or pickup
  point, an invalid NIP on an invoice request) is quarantined with the reason and reserves
  nothing; ``retry`` processes it again once the seller fixed the cause;
- a good order reserves its quantities at once (hub.orders.reservations), never more than the
  stock: the order that would exceed it is flagged oversold instead.

A chunk of new orders is stored and reserved set-based, in arrival order, so the oversold
decision is the one that taking them one by one would give; ``accept`` is a chunk of one.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any, NamedTuple

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from hub.catalog import Product
from hub.jobs.models import Job
from hub.kernel.clock import as_utc, utcnow
from hub.kernel.errors import HubError, NotFoundError
from hub.kernel.ports.channel import ChannelOrder
from hub.kernel.vat import HOME_COUNTRY
from hub.orders.actions import run_rules
from hub.orders.models import Order, OrderHistory, OrderLineRow, Reservation
from hub.orders.reservations import reserve, reserve_in_order
from hub.orders.rules import OrderRules
from hub.orders.sales_documents import nip_problem
from hub.orders.status import RANK, StatusMap, can_move, move, path_to, reopen, withdraw_shipments
from hub.platform.db import insert_for
from hub.platform.logs import get_logger

log = get_logger("hub.orders.intake")


@dataclass
class Accepted:
    order_id: int
    created: bool
    changed: bool
    events: list[str] = field(default_factory=list)


class LineRef(NamedTuple):
    """What identifies a line's product: the channel's signature and offer."""

    sku: str | None
    offer_id: str | None
    name: str


# --- what the hub stores of a channel order -------------------------------------------------


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


def _invoice(co: ChannelOrder) -> dict[str, Any] | None:
    if co.invoice is None:
        return None
    return {"company": co.invoice.company, "nip": co.invoice.nip, "address": _jsonable(co.invoice.address)}


def _channel_values(co: ChannelOrder) -> dict[str, Any]:
    """The columns a channel's revision of the order decides."""
    return {"revision": co.revision, "channel_status": co.status, "channel_updated_at": co.updated_at,
            "payment": _jsonable(co.payment), "delivery": _delivery(co), "delivery_method": co.delivery_method,
            "invoice": _invoice(co)}


def _new_row(co: ChannelOrder, now: datetime) -> dict[str, Any]:
    return {
        **_channel_values(co), "channel": co.channel_account, "external_id": co.external_id, "status": "new",
        "oversold": False, "buyer_email": co.buyer_email, "buyer_login": co.buyer_login, "currency": co.currency,
        "total_gross": co.payment.amount, "tags": [], "placed_at": co.created_at, "created_at": now,
        "updated_at": now,
    }


# --- problems ---------------------------------------------------------------------------------


def _unknown_line(no: int, line: LineRef) -> str:
    what = f"SKU {line.sku!r}" if line.sku else f"offer {line.offer_id!r}"
    return f"line {no} ({line.name!r}): unknown {what}: add it to the ERP or bind the offer, then run hub orders retry"


def _problems(has_delivery: bool, invoice_nip: str | None, invoice_country: str | None) -> list[tuple[str, str]]:
    problems = []
    if not has_delivery:
        problems.append(("missing_address", "no delivery address and no pickup point"))
    problems += _nip_problems(invoice_nip, invoice_country)
    return problems


def _nip_problems(nip: str | None, country: str | None) -> list[tuple[str, str]]:
    """The rule the sales document applies (a Polish NIP, or an EU VAT number of the buyer's state):
    an invoice without a NIP is a private buyer's, and fine."""
    problem = nip_problem(nip, (country or HOME_COUNTRY).upper()) if nip else None
    if problem is None:
        return []
    return [("invalid_nip", f"invoice requested with NIP {nip!r}, which is {problem}: correct it in the channel")]


def _invoice_country(address: Any) -> str | None:
    if address is None:
        return None
    return address.get("country") if isinstance(address, dict) else getattr(address, "country", None)


def validate(co: ChannelOrder) -> list[tuple[str, str]]:
    """Problems that are not about SKUs: (kind, reason)."""
    has_delivery = co.delivery_address is not None or co.pickup_point is not None
    invoice = co.invoice
    return _problems(has_delivery, None if invoice is None else invoice.nip,
                     None if invoice is None else _invoice_country(invoice.address))


def _quarantine(order: Order, problems: list[tuple[str, str]]) -> None:
    order.problem_kind = problems[0][0]
    order.problem = "; ".join(reason for _, reason in problems)


def _oversold(order: Order, reasons: list[str]) -> None:
    order.oversold = True
    order.problem_kind = "oversold"
    order.problem = "oversold: " + "; ".join(reasons)


# --- SKUs of the lines ------------------------------------------------------------------------


def _resolver(session: Session, rules: OrderRules, lines: Iterable[tuple[str, LineRef]]
              ) -> Callable[[str, LineRef], str | None]:
    """Each line's SKU: the signature if the catalogue knows it, else the offer's binding. One
    look-up of every signature and one per channel of its offers, however many orders."""
    lines = list(lines)
    signatures = {line.sku for _, line in lines if line.sku}
    known = set(session.execute(select(Product.sku).where(Product.sku.in_(signatures))).scalars()) \
        if signatures else set()
    offers: dict[str, set[str]] = defaultdict(set)
    for channel, line in lines:
        if line.offer_id:
            offers[channel].add(line.offer_id)
    bound = {(channel, offer): sku for channel, ids in offers.items()
             for offer, sku in rules.offer_skus(session, channel, ids).items()}

    def resolve(channel: str, line: LineRef) -> str | None:
        if line.sku in known:
            return line.sku
        return bound.get((channel, line.offer_id)) if line.offer_id else None

    return resolve


# --- intake -----------------------------------------------------------------------------------


def accept(session: Session, rules: OrderRules, co: ChannelOrder) -> Accepted:
    """Store one channel order (new or a new revision) and do what follows from it."""
    return accept_many(session, rules, [co])[0]


def accept_many(session: Session, rules: OrderRules, orders: Sequence[ChannelOrder]) -> list[Accepted]:
    """A journal's chunk: the latest revision of each order; orders the hub has already are updated,
    new ones stored, validated and reserved set-based in arrival order."""
    now = utcnow()
    latest: dict[tuple[str, str], ChannelOrder] = {}
    for co in orders:
        latest[(co.channel_account, co.external_id)] = co
    existing = _existing(session, latest)
    results = [_update(session, rules, existing[key], co, now) for key, co in latest.items() if key in existing]
    new = [co for key, co in latest.items() if key not in existing]
    if not new:
        return results
    inserted = _insert(session, new, now)
    stored = [(inserted[(co.channel_account, co.external_id)], co) for co in new
              if (co.channel_account, co.external_id) in inserted]
    wants = _store_lines_and_validate(session, rules, stored, now)
    by_id = {order.id: order for order, _ in stored}
    for order_id, reasons in reserve_in_order(session, wants, now).items():
        _oversold(by_id[order_id], reasons)
    results += [_announce(session, rules, order, co, now) for order, co in stored]
    # another process stored these between our look-up and our insert: theirs is the new order, ours a revision
    raced = [co for co in new if (co.channel_account, co.external_id) not in inserted]
    return results + [accept(session, rules, co) for co in raced]


def _existing(session: Session, keys: Iterable[tuple[str, str]]) -> dict[tuple[str, str], Order]:
    by_channel: dict[str, list[str]] = defaultdict(list)
    for channel, external_id in keys:
        by_channel[channel].append(external_id)
    found: dict[tuple[str, str], Order] = {}
    for channel, ids in by_channel.items():
        for order in session.execute(select(Order).where(Order.channel == channel,
                                                         Order.external_id.in_(ids))).scalars():
            found[(channel, order.external_id)] = order
    return found


def _insert(session: Session, new: Sequence[ChannelOrder], now: datetime) -> dict[tuple[str, str], Order]:
    """Insert-or-nothing on (channel, external id): under a race the unique key decides, and the loser
    inserts nothing. Parameter lists, not one VALUES clause: compiled once, sent in batches."""
    ids = {(ch, ext): oid for oid, ch, ext in session.execute(
        insert_for(session)(Order).on_conflict_do_nothing(index_elements=["channel", "external_id"])
        .returning(Order.id, Order.channel, Order.external_id), [_new_row(co, now) for co in new]).all()}
    orders = {o.id: o for o in session.execute(select(Order).where(Order.id.in_(list(ids.values())))).scalars()}
    return {key: orders[oid] for key, oid in ids.items()}


def _store_lines_and_validate(session: Session, rules: OrderRules, stored: Sequence[tuple[Order, ChannelOrder]],
                              now: datetime) -> list[tuple[Order, dict[str, int]]]:
    """Lines and the first history entry of each new order; quarantines the bad ones. Returns what
    each good order wants reserved, in arrival order (a cancelled one wants nothing)."""
    refs = [(order.channel, [LineRef(line.sku, line.offer_id, line.name) for line in co.lines
                             if line.kind == "goods"]) for order, co in stored]
    resolve = _resolver(session, rules, ((channel, ref) for channel, lines in refs for ref in lines))
    line_rows, history, wants = [], [], []
    for order, co in stored:
        need: dict[str, int] = defaultdict(int)
        unknown = []
        for no, line in enumerate(co.lines, start=1):
            ref = LineRef(line.sku, line.offer_id, line.name)
            goods = line.kind == "goods"  # a charge (delivery, a fee) has no SKU and reserves nothing
            sku = resolve(order.channel, ref) if goods else None
            line_rows.append({"order_id": order.id, "line_no": no, "line_id": line.line_id, "sku": sku,
                              "signature": line.sku, "offer_id": line.offer_id, "name": line.name,
                              "quantity": line.quantity, "unit_price_gross": line.unit_price_gross,
                              "vat_rate": line.vat_rate, "kind": line.kind})
            if not goods:
                continue
            if sku is None:
                unknown.append(("unknown_sku", _unknown_line(no, ref)))
            else:
                need[sku] += line.quantity
        history.append({"order_id": order.id, "from_status": None, "to_status": "new", "source": "channel",
                        "note": f"{co.channel_account} {co.status}", "at": now})
        problems = unknown + validate(co)
        if problems:
            _quarantine(order, problems)
        elif rules.status_map(order.channel).inbound.get(co.status) != "cancelled":
            wants.append((order, dict(need)))
    # an empty parameter list would be one INSERT ... DEFAULT VALUES (a not-null violation): a chunk
    # whose orders another process stored first, or orders without lines, insert nothing here
    if line_rows:
        session.execute(insert_for(session)(OrderLineRow), line_rows)
    if history:
        session.execute(insert_for(session)(OrderHistory), history)
    return wants


def _announce(session: Session, rules: OrderRules, order: Order, co: ChannelOrder, now: datetime) -> Accepted:
    """A new order's events: created, its problem, the channel's status; and the rules they trigger."""
    result = Accepted(order.id, created=True, changed=True, events=["order.created"])
    if order.problem:
        result.events.append("order.oversold" if order.oversold else "order.problem")
        log.warning("order oversold" if order.oversold else "order quarantined", channel=order.channel,
                    order=order.external_id, problem=order.problem)
    if co.status in rules.status_map(order.channel).inbound or co.payment.status == "paid":
        _apply_channel_status(session, rules, order, co, now, result)
    for event in result.events:
        run_rules(session, rules, order, event, now)
    return result


def _update(session: Session, rules: OrderRules, order: Order, co: ChannelOrder, now: datetime) -> Accepted:
    """A revision of an order the hub has: the channel's values, then its status."""
    if order.revision == co.revision and co.revision is not None:
        return Accepted(order.id, created=False, changed=False)
    known, told = as_utc(order.channel_updated_at), as_utc(co.updated_at)
    newer = known is None or (told is not None and told > known)  # not an old read arriving late
    for column, value in _channel_values(co).items():
        setattr(order, column, value)
    order.updated_at = now
    result = Accepted(order.id, created=False, changed=True)
    invoice = co.invoice
    changed_nip = _nip_problems(None if invoice is None else invoice.nip,
                                None if invoice is None else _invoice_country(invoice.address))
    if changed_nip and not order.problem:  # the buyer changed the invoice's NIP to one that is not one
        _quarantine(order, changed_nip)
        result.events.append("order.problem")
        log.warning("order quarantined", channel=order.channel, order=order.external_id, problem=order.problem)
    _apply_channel_status(session, rules, order, co, now, result, newer=newer)
    for event in result.events:
        run_rules(session, rules, order, event, now)
    return result


# --- the channel's status -------------------------------------------------------------------


def _inbound_target(order: Order, co: ChannelOrder, status_map: StatusMap) -> str | None:
    target = status_map.inbound.get(co.status)
    if co.payment.status == "paid" and order.status == "new" and target in (None, "new"):
        target = "paid"
    if target == "paid" and co.payment.status != "paid" and co.payment.cash_on_delivery:
        # a shop marks a cash-on-delivery order "processing" before any money moved: it is not paid
        target = "processing"
    return target


def _apply_channel_status(session: Session, rules: OrderRules, order: Order, co: ChannelOrder, now: datetime,
                          result: Accepted, *, newer: bool = False) -> None:
    """``newer``: this revision was made on the channel after the one the hub had (what may reopen a
    cancelled order; an old read arriving late must not)."""
    target = _inbound_target(order, co, rules.status_map(order.channel))
    if target is None or target == order.status:
        return
    if order.status == "cancelled" and not (newer and _reopened(session, order, co, now, result)):
        return
    if target == "cancelled":
        if can_move(order.status, "cancelled"):
            move(session, order, "cancelled", "channel", now, note=co.status, push=False)
            result.events.append("order.cancelled")
        elif order.status in ("shipped", "delivered"):
            # cancelled after the hub shipped it: hub.shipping stops the parcels it can and then recalls
            # the order, or puts a problem on it for the seller (a parcel on its way, none in the hub)
            withdraw_shipments(session, order)
        return
    steps = path_to(order.status, target)
    if not steps:
        return  # behind us or not reachable: an old event; never move backwards
    confirmed = RANK[target] > RANK["paid"] and not co.payment.cash_on_delivery
    if order.status == "new" and "paid" not in steps and confirmed:
        # a bank transfer the seller confirmed by processing or completing the order: it went through
        # "paid", whose rules (the ERP booking among them) must run once
        steps = ["paid", *path_to("paid", target)]
    for step in steps:
        move(session, order, step, "channel", now, note=co.status, push=False)
        if step == "paid":
            result.events.append("order.paid")
    result.events.append("order.status_changed")


def _undone_outside(session: Session, order: Order) -> str | None:
    """What of the order's first life reached another system (a sale in the ERP, a shipment asked for),
    or None. Their jobs are keyed once per order, so a second life would find them done."""
    if order.erp_ref is not None:
        return f"its sale {order.erp_ref} was booked in the ERP and reversed"
    keys = {f"erp-doc:{order.channel}/{order.external_id}": "its sale was sent to the ERP",
            f"ship:{order.channel}/{order.external_id}": "a shipment was created for it",
            f"invoice:{order.channel}/{order.external_id}": "an invoice was issued for it"}
    found = session.execute(select(Job.idempotency_key).where(Job.idempotency_key.in_(list(keys)))).scalars().first()
    return None if found is None else keys[found]


def _reopened(session: Session, order: Order, co: ChannelOrder, now: datetime, result: Accepted) -> bool:
    """A cancelled order the channel took up again (a payment arriving after the cancellation: a
    shop completes it). New again, its goods reserved (or oversold) as when it arrived, so no
    unit is sold twice; then the channel's status is followed. If its cancellation had undone anything
    outside the hub, it stays cancelled with a problem for the seller. True when reopened."""
    undone = _undone_outside(session, order)
    if undone is not None:
        order.problem_kind = "reopened"
        order.problem = (f"the channel reopened this order ({co.status}) after the hub cancelled it, and {undone}: "
                         "cancel it on the channel again and settle with the buyer, or have the buyer order anew")
        result.events.append("order.problem")
        log.warning("cancelled order reopened on its channel", channel=order.channel, order=order.external_id,
                    problem=order.problem)
        return False
    reopen(session, order, "channel", now, note=f"reopened: {co.status}")
    if order.problem_kind == "oversold":  # its first life's shortage: judged again below
        order.oversold = False
        order.problem = order.problem_kind = None
    if order.problem is None:
        lines = session.execute(select(OrderLineRow).where(OrderLineRow.order_id == order.id,
                                                           OrderLineRow.kind == "goods")).scalars().all()
        reasons = reserve(session, order, lines, now)
        if reasons:
            _oversold(order, reasons)
            result.events.append("order.oversold")
            log.warning("order oversold", channel=order.channel, order=order.external_id, problem=order.problem)
    log.info("cancelled order reopened on its channel", channel=order.channel, order=order.external_id,
             status=co.status)
    return True


# --- the operator's retry -------------------------------------------------------------------


def retry(session: Session, rules: OrderRules, order_id: int) -> Accepted:
    """Process a quarantined order again after the seller fixed the cause."""
    order = session.get(Order, order_id)
    if order is None:
        raise NotFoundError(f"no order with id {order_id}")
    if order.problem is None:
        raise HubError(f"order {order_id} has no problem to retry")
    now = utcnow()
    lines = list(session.execute(select(OrderLineRow).where(OrderLineRow.order_id == order.id,
                                                            OrderLineRow.kind == "goods")
                                 .order_by(OrderLineRow.line_no)).scalars())
    refs = [LineRef(line.signature, line.offer_id, line.name) for line in lines]
    resolve = _resolver(session, rules, ((order.channel, ref) for ref in refs))
    for line, ref in zip(lines, refs, strict=True):
        line.sku = resolve(order.channel, ref)
    session.flush()
    if order.oversold:
        session.execute(update(Reservation).where(Reservation.order_id == order.id, Reservation.state == "open")
                        .values(state="released", updated_at=now))
        order.oversold = False
    result = Accepted(order.id, created=False, changed=True)
    problems = [("unknown_sku", _unknown_line(line.line_no, ref)) for line, ref in zip(lines, refs, strict=True)
                if line.sku is None]
    invoice = order.invoice or {}
    problems += _problems(order.delivery is not None, invoice.get("nip"), _invoice_country(invoice.get("address")))
    if problems:
        _quarantine(order, problems)
        result.events.append("order.problem")
        log.warning("order quarantined", channel=order.channel, order=order.external_id, problem=order.problem)
        return result
    order.problem = order.problem_kind = None
    if order.status != "cancelled":
        reasons = reserve(session, order, lines, now)
        if reasons:
            _oversold(order, reasons)
            result.events.append("order.oversold")
            log.warning("order oversold", channel=order.channel, order=order.external_id, problem=order.problem)
            return result
    session.add(OrderHistory(order_id=order.id, from_status=order.status, to_status=order.status,
                             source="operator", note="retried: problem resolved", at=now))
    for event in ["order.created"] + (["order.paid"] if order.status == "paid" else []):
        run_rules(session, rules, order, event, now)
    return result
