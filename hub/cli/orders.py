"""CLI commands of the orders capability: orders, reservations, returns."""

from __future__ import annotations

import argparse
from typing import Any

from sqlalchemy import func, or_, select

from hub.catalog import Product
from hub.cli.context import connector_named, positive_int, runtime
from hub.cli.output import emit_json, table
from hub.cli.output import say as _say
from hub.jobs.models import Job
from hub.kernel.errors import NotFoundError
from hub.orders.models import (
    ORDER_STATES,
    RMA_STATES,
    Order,
    OrderHistory,
    OrderLineRow,
    Reservation,
    ReturnRow,
    RuleRun,
)
from hub.platform import db


def add_parsers(sub: Any, common: argparse.ArgumentParser, listing: argparse.ArgumentParser,
                parser_class: type[argparse.ArgumentParser]) -> None:
    orders = sub.add_parser("orders", parents=[common], help="orders from every channel")
    orders_sub = orders.add_subparsers(dest="orders_command", required=True, parser_class=parser_class,
                                       metavar="ACTION")
    ol = orders_sub.add_parser("list", parents=[common, listing], help="orders, newest first")
    ol.add_argument("--status", choices=ORDER_STATES)
    ol.add_argument("--channel", metavar="NAME")
    ol.add_argument("--problems", action="store_true", help="only quarantined and oversold orders")
    ol.add_argument("--limit", type=positive_int, default=50)
    ol.set_defaults(func=cmd_orders_list)
    show = orders_sub.add_parser("show", parents=[common, listing],
                                 help="lines, reservations, status history, rule runs, jobs")
    show.add_argument("id", type=positive_int)
    show.set_defaults(func=cmd_orders_show)
    rt = orders_sub.add_parser("retry", parents=[common, listing], help="process a quarantined order again")
    rt.add_argument("id", type=positive_int)
    rt.set_defaults(func=cmd_orders_retry)

    res = sub.add_parser("reservations", parents=[common, listing], help="open reservations, per SKU")
    res.add_argument("sku", nargs="?")
    res.set_defaults(func=cmd_reservations)

    returns = sub.add_parser("returns", parents=[common], help="buyers' returns (RMA)")
    returns_sub = returns.add_subparsers(dest="returns_command", required=True, parser_class=parser_class,
                                         metavar="ACTION")
    rl = returns_sub.add_parser("list", parents=[common, listing], help="returns, newest first")
    rl.add_argument("--status", choices=RMA_STATES)
    rl.set_defaults(func=cmd_returns_list)
    rs = returns_sub.add_parser("show", parents=[common, listing], help="one return")
    rs.add_argument("id", type=positive_int)
    rs.set_defaults(func=cmd_returns_show)
    ra = returns_sub.add_parser("accept", parents=[common, listing],
                                help="accept: restock in the ERP, refund through the channel")
    ra.add_argument("id", type=positive_int)
    ra.set_defaults(func=cmd_returns_accept)
    rj = returns_sub.add_parser("reject", parents=[common, listing], help="reject with a reason")
    rj.add_argument("id", type=positive_int)
    rj.add_argument("--reason", required=True)
    rj.set_defaults(func=cmd_returns_reject)
    rr = returns_sub.add_parser("refunded", parents=[common, listing],
                                help="record a refund the seller made by hand (the channel could not refund it)")
    rr.add_argument("id", type=positive_int)
    rr.add_argument("--ref", required=True, help="the transfer's reference")
    rr.set_defaults(func=cmd_returns_refunded)


def _iso(value: Any) -> Any:
    return value.isoformat() if value is not None else None


def _order_row(o: Order) -> dict[str, Any]:
    return {"id": o.id, "channel": o.channel, "order": o.external_id, "status": o.status,
            "total": o.total_gross, "currency": o.currency, "placed_at": _iso(o.placed_at),
            "problem": o.problem, "oversold": o.oversold, "erp_ref": o.erp_ref, "tags": o.tags}


def cmd_orders_list(args: argparse.Namespace) -> int:
    loaded, engine = runtime(args)
    with db.transaction(engine) as session:
        query = select(Order).order_by(Order.id.desc()).limit(args.limit)
        if args.status:
            query = query.where(Order.status == args.status)
        if args.channel:
            query = query.where(Order.channel == connector_named(loaded, args.channel, "channel"))
        if args.problems:
            query = query.where(or_(Order.problem.is_not(None), Order.oversold.is_(True)))
        rows = [_order_row(o) for o in session.execute(query).scalars()]
    if args.json:
        emit_json(rows)
    else:
        table(rows, ["id", "channel", "order", "status", "total", "placed_at", "erp_ref", "problem"],
              empty="(no orders)")
    return 0


def order_detail(session: Any, order_id: int) -> dict[str, Any]:
    order = session.get(Order, order_id)
    if order is None:
        raise NotFoundError(f"no order with id {order_id}")
    lines = session.execute(select(OrderLineRow).where(OrderLineRow.order_id == order_id)
                            .order_by(OrderLineRow.line_no)).scalars()
    reservations = session.execute(select(Reservation).where(Reservation.order_id == order_id)).scalars()
    history = session.execute(select(OrderHistory).where(OrderHistory.order_id == order_id)
                              .order_by(OrderHistory.id)).scalars()
    runs = session.execute(select(RuleRun).where(RuleRun.order_id == order_id).order_by(RuleRun.id)).scalars()
    ref = f"{order.channel}/{order.external_id}"
    jobs = session.execute(select(Job).where(or_(
        Job.payload["order_id"].as_integer() == order_id, Job.idempotency_key.like(f"%{ref}%"))
    ).order_by(Job.id)).scalars()
    return {
        **_order_row(order),
        "revision": order.revision, "channel_status": order.channel_status, "buyer_email": order.buyer_email,
        "delivery_method": order.delivery_method, "delivery": order.delivery, "payment": order.payment,
        "invoice": order.invoice, "erp_booked_at": _iso(order.erp_booked_at),
        "lines": [{"line": x.line_no, "sku": x.sku, "signature": x.signature, "offer": x.offer_id, "name": x.name,
                   "quantity": x.quantity, "unit_price": x.unit_price_gross, "vat": x.vat_rate} for x in lines],
        "reservations": [{"sku": r.sku, "quantity": r.quantity, "state": r.state, "since": _iso(r.created_at)}
                         for r in reservations],
        "history": [{"at": _iso(h.at), "from": h.from_status, "to": h.to_status, "source": h.source,
                     "note": h.note} for h in history],
        "rule_runs": [{"at": _iso(r.at), "rule": r.rule, "event": r.event, "outcome": r.outcome,
                       "detail": r.detail} for r in runs],
        "jobs": [{"id": j.id, "kind": j.kind, "state": j.state, "attempts": j.attempts,
                  "last_error": j.last_error} for j in jobs],
    }


def cmd_orders_show(args: argparse.Namespace) -> int:
    _, engine = runtime(args)
    with db.transaction(engine) as session:
        data = order_detail(session, args.id)
    if args.json:
        emit_json(data)
        return 0
    _say(f"order {data['id']}: {data['channel']} {data['order']}  status {data['status']}  "
         f"{data['total']} {data['currency']}  placed {data['placed_at']}")
    if data["problem"]:
        _say(f"PROBLEM: {data['problem']}")
    _say(f"buyer {data['buyer_email']}  delivery {data['delivery_method']}  ERP document {data['erp_ref'] or '-'}")
    for title, key, cols in (
        ("lines", "lines", ["line", "sku", "offer", "name", "quantity", "unit_price", "vat"]),
        ("reservations", "reservations", ["sku", "quantity", "state", "since"]),
        ("status history", "history", ["at", "from", "to", "source", "note"]),
        ("rule runs", "rule_runs", ["at", "rule", "event", "outcome", "detail"]),
        ("jobs", "jobs", ["id", "kind", "state", "attempts", "last_error"]),
    ):
        _say(f"\n{title}:")
        table(data[key], cols)
    return 0


def cmd_orders_retry(args: argparse.Namespace) -> int:
    from hub.app.wiring import order_rules
    from hub.orders.intake import retry

    loaded, engine = runtime(args)
    with db.transaction(engine) as session:
        retry(session, order_rules(loaded), args.id)
        order = session.get(Order, args.id)
        problem = order.problem if order else None
    if args.json:
        emit_json({"id": args.id, "problem": problem})
    elif problem:
        _say(f"order {args.id} is still quarantined: {problem}")
    else:
        _say(f"order {args.id} processed: reserved, rules run (see hub orders show {args.id})")
    return 0 if problem is None else 1


def cmd_reservations(args: argparse.Namespace) -> int:
    _, engine = runtime(args)
    with db.transaction(engine) as session:
        if args.sku and session.get(Product, args.sku) is None:
            raise NotFoundError(f"no SKU {args.sku!r} in the catalogue (see hub erp rejects if it was quarantined)")
        query = (select(Reservation.sku, func.sum(Reservation.quantity), func.count())
                 .where(Reservation.state == "open").group_by(Reservation.sku).order_by(Reservation.sku))
        if args.sku:
            query = query.where(Reservation.sku == args.sku)
        totals = [{"sku": sku, "reserved": int(q), "orders": n} for sku, q, n in session.execute(query).all()]
        detail = []
        if args.sku:
            detail = [{"order": r.order_ref, "quantity": r.quantity, "state": r.state, "since": _iso(r.created_at)}
                      for r in session.execute(select(Reservation).where(Reservation.sku == args.sku)
                                               .order_by(Reservation.id)).scalars()]
    if args.json:
        emit_json({"open": totals, "reservations": detail})
        return 0
    table(totals, ["sku", "reserved", "orders"], empty="(no open reservations)")
    if detail:
        _say()
        table(detail, ["order", "quantity", "state", "since"])
    return 0


def _return_row(r: ReturnRow) -> dict[str, Any]:
    return {"id": r.id, "channel": r.channel, "return": r.external_id, "order": r.order_external_id,
            "status": r.status, "channel_status": r.channel_status, "reason": r.reason,
            "refund": r.refund_amount, "refund_ref": r.refund_ref, "restock_ref": r.restock_ref,
            "rejection": r.rejection_reason, "lines": r.lines, "created_at": _iso(r.created_at)}


def cmd_returns_list(args: argparse.Namespace) -> int:
    _, engine = runtime(args)
    with db.transaction(engine) as session:
        query = select(ReturnRow).order_by(ReturnRow.id.desc())
        if args.status:
            query = query.where(ReturnRow.status == args.status)
        rows = [_return_row(r) for r in session.execute(query).scalars()]
    if args.json:
        emit_json(rows)
    else:
        table(rows, ["id", "channel", "return", "order", "status", "reason", "refund"], empty="(no returns)")
    return 0


def cmd_returns_show(args: argparse.Namespace) -> int:
    _, engine = runtime(args)
    with db.transaction(engine) as session:
        rma = session.get(ReturnRow, args.id)
        if rma is None:
            raise NotFoundError(f"no return with id {args.id}")
        data = _return_row(rma)
    if args.json:
        emit_json(data)
        return 0
    for key in ("id", "channel", "return", "order", "status", "channel_status", "reason", "refund", "refund_ref",
                "restock_ref", "rejection", "created_at"):
        _say(f"{key + ':':16}{'-' if data[key] is None else data[key]}")
    _say("lines:")
    table(data["lines"], ["sku", "offer_id", "quantity", "line_id"])
    return 0


def cmd_returns_accept(args: argparse.Namespace) -> int:
    from hub.app.wiring import order_rules
    from hub.orders.returns import accept_return

    loaded, engine = runtime(args)
    with db.transaction(engine) as session:
        rma = accept_return(session, order_rules(loaded), args.id)
        data = _return_row(rma)
    if args.json:
        emit_json(data)
    else:
        _say(f"return {args.id} accepted: restock and a refund of {data['refund']} are queued (hub run sends them)")
    return 0


def cmd_returns_reject(args: argparse.Namespace) -> int:
    from hub.orders.returns import reject_return

    _, engine = runtime(args)
    with db.transaction(engine) as session:
        reject_return(session, args.id, args.reason)
    if args.json:
        emit_json({"id": args.id, "rejected": True, "reason": args.reason})
    else:
        _say(f"return {args.id}: the rejection is queued (hub run sends it)")
    return 0


def cmd_returns_refunded(args: argparse.Namespace) -> int:
    from hub.orders.returns import record_refund_by_hand

    _, engine = runtime(args)
    with db.transaction(engine) as session:
        data = _return_row(record_refund_by_hand(session, args.id, args.ref))
    if args.json:
        emit_json(data)
    else:
        _say(f"return {args.id}: refunded by hand ({args.ref.strip()})")
    return 0
