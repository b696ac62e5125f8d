"""CLI commands of the shipping capability: shipments, labels, pickups. Every carrier call goes through
the job queue (create and cancel queue a job); these commands read, record, and print."""

from __future__ import annotations

import argparse
import os
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select, update

from hub.app.wiring import delivery_map, order_rules
from hub.cli.context import connector_named, positive_int, runtime
from hub.cli.output import emit_json, table
from hub.cli.output import say as _say
from hub.jobs import queue
from hub.kernel.clock import utcnow
from hub.kernel.errors import HubError, NotFoundError
from hub.orders import Order
from hub.platform import db
from hub.shipping.create import ShippingProblem, create_shipment
from hub.shipping.kinds import CANCEL, CANCEL_PICKUP, PICKUPS
from hub.shipping.labels import LabelFileError, merge, read_checked
from hub.shipping.models import SHIPMENT_STATES, Pickup, Shipment, ShipmentHistory, ShipmentParcel
from hub.shipping.withdraw import cancelled

CANCELLABLE = ("draft", "failed", "booking", "booked", "label_ready")


def iso_day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a date as YYYY-MM-DD, got {text!r}") from None


def add_parsers(sub: Any, common: argparse.ArgumentParser, listing: argparse.ArgumentParser,
                parser_class: type[argparse.ArgumentParser]) -> None:
    shipments = sub.add_parser("shipments", parents=[common], help="shipments: booked parcels and their tracking")
    ssub = shipments.add_subparsers(dest="shipments_command", required=True, parser_class=parser_class,
                                    metavar="ACTION")
    sl = ssub.add_parser("list", parents=[common, listing], help="shipments, newest first")
    sl.add_argument("--date", type=iso_day, help="created on this day (the warehouse's time zone)")
    sl.add_argument("--carrier", metavar="NAME")
    sl.add_argument("--state", choices=SHIPMENT_STATES)
    sl.add_argument("--problems", action="store_true", help="only shipments with a problem")
    sl.add_argument("--limit", type=positive_int, default=100)
    sl.set_defaults(func=cmd_list)
    show = ssub.add_parser("show", parents=[common, listing], help="parcels, tracking numbers, history")
    show.add_argument("id", type=positive_int)
    show.set_defaults(func=cmd_show)
    create = ssub.add_parser("create", parents=[common, listing],
                             help="a shipment for an order (by the delivery mapping, or --carrier and --service)")
    create.add_argument("order", type=positive_int, help="the hub's order id")
    create.add_argument("--carrier", metavar="NAME")
    create.add_argument("--service", metavar="CODE")
    create.set_defaults(func=cmd_create)
    cancel = ssub.add_parser("cancel", parents=[common, listing], help="cancel with the carrier (queued)")
    cancel.add_argument("id", type=positive_int)
    cancel.add_argument("--withheld", action="store_true",
                        help="the carrier refused to cancel and the parcel stays in the warehouse: record it "
                             "cancelled in the hub without asking the carrier (a cancelled order is then recalled)")
    cancel.set_defaults(func=cmd_cancel)

    labels = sub.add_parser("labels", parents=[common], help="the packer's labels")
    lsub = labels.add_subparsers(dest="labels_command", required=True, parser_class=parser_class, metavar="ACTION")
    lp = lsub.add_parser("print", parents=[common, listing],
                         help="every label not printed yet, in one PDF (or one ZPL stream)")
    lp.add_argument("--date", type=iso_day, help="shipments created on this day (default: today)")
    lp.add_argument("--carrier", metavar="NAME")
    lp.add_argument("--all", action="store_true", help="also labels printed before")
    lp.add_argument("--format", choices=("pdf", "zpl"), default="pdf")
    lp.add_argument("--out", required=True, type=Path, metavar="FILE")
    lp.set_defaults(func=cmd_labels_print)

    pickups = sub.add_parser("pickups", parents=[common], help="courier pickups")
    psub = pickups.add_subparsers(dest="pickups_command", required=True, parser_class=parser_class,
                                  metavar="ACTION")
    pl = psub.add_parser("list", parents=[common, listing], help="pickups, newest first")
    pl.add_argument("--date", type=iso_day)
    pl.set_defaults(func=cmd_pickups_list)
    pb = psub.add_parser("book", parents=[common, listing],
                         help="book today's pickups now, before the cut-off (queued)")
    pb.add_argument("--carrier", metavar="NAME")
    pb.set_defaults(func=cmd_pickups_book)
    pc = psub.add_parser("cancel", parents=[common, listing], help="cancel a booked pickup (queued)")
    pc.add_argument("id", type=positive_int)
    pc.set_defaults(func=cmd_pickups_cancel)


def _iso(value: Any) -> Any:
    return value.isoformat() if value is not None else None


def _day_bounds(loaded: Any, day: date) -> tuple[datetime, datetime]:
    zone = ZoneInfo(loaded.settings.shipping.timezone)
    start = datetime.combine(day, time(0), zone).astimezone(UTC)
    return start, datetime.combine(day + timedelta(days=1), time(0), zone).astimezone(UTC)


def _row(s: Shipment, numbers: list[str]) -> dict[str, Any]:
    return {"id": s.id, "order_id": s.order_id, "reference": s.reference, "carrier": s.carrier,
            "service": s.service, "state": s.state, "tracking": numbers, "operator": s.operator,
            "tracking_status": s.tracking_status, "label": s.label_path, "printed": _iso(s.label_printed_at),
            "pickup_id": s.pickup_id, "problem": s.problem, "created_at": _iso(s.created_at)}


def _numbers(session: Any, ids: list[int]) -> dict[int, list[str]]:
    found: dict[int, list[str]] = {i: [] for i in ids}
    for shipment_id, number in session.execute(
            select(ShipmentParcel.shipment_id, ShipmentParcel.tracking_number)
            .where(ShipmentParcel.shipment_id.in_(ids)).order_by(ShipmentParcel.seq)):
        if number:
            found[shipment_id].append(number)
    return found


def cmd_list(args: argparse.Namespace) -> int:
    loaded, engine = runtime(args)
    query = select(Shipment).order_by(Shipment.id.desc()).limit(args.limit)
    if args.date:
        start, end = _day_bounds(loaded, args.date)
        query = query.where(Shipment.created_at >= start, Shipment.created_at < end)
    if args.carrier:
        query = query.where(Shipment.carrier == connector_named(loaded, args.carrier, "carrier"))
    if args.state:
        query = query.where(Shipment.state == args.state)
    if args.problems:
        query = query.where(Shipment.problem.is_not(None))
    with db.transaction(engine) as session:
        shipments = list(session.execute(query).scalars())
        numbers = _numbers(session, [s.id for s in shipments])
        rows = [_row(s, numbers[s.id]) for s in shipments]
    if args.json:
        emit_json(rows)
    else:
        table([{**r, "tracking": " ".join(r["tracking"])} for r in rows],
              ["id", "order_id", "carrier", "service", "state", "tracking", "created_at", "problem"],
              empty="(no shipments)")
    return 0


def _shipment(session: Any, shipment_id: int) -> Shipment:
    shipment = session.get(Shipment, shipment_id)
    if shipment is None:
        raise NotFoundError(f"no shipment with id {shipment_id}")
    return shipment


def cmd_show(args: argparse.Namespace) -> int:
    _, engine = runtime(args)
    with db.transaction(engine) as session:
        s = _shipment(session, args.id)
        parcels = session.execute(select(ShipmentParcel).where(ShipmentParcel.shipment_id == s.id)
                                  .order_by(ShipmentParcel.seq)).scalars()
        history = session.execute(select(ShipmentHistory).where(ShipmentHistory.shipment_id == s.id)
                                  .order_by(ShipmentHistory.id)).scalars()
        data = {**_row(s, _numbers(session, [s.id])[s.id]), "sender": s.sender, "receiver": s.receiver,
                "pickup_point": s.pickup_point, "cod": None if s.cod_amount is None else
                f"{s.cod_amount} {s.cod_currency}", "external_id": s.external_id,
                "label_sha256": s.label_sha256,
                "parcels": [{"seq": p.seq, "weight_kg": p.weight_kg, "size": p.template,
                             "dimensions_cm": [p.length_cm, p.width_cm, p.height_cm],
                             "tracking": p.tracking_number} for p in parcels],
                "history": [{"at": _iso(h.at), "from": h.from_state, "to": h.to_state, "source": h.source,
                             "note": h.note} for h in history]}
    if args.json:
        emit_json(data)
        return 0
    _say(f"shipment {data['id']} ({data['reference']}) for order {data['order_id']}: {data['carrier']} "
         f"{data['service']}  {data['state']}")
    for key in ("tracking", "operator", "external_id", "pickup_point", "cod", "label", "printed", "problem"):
        if data[key]:
            _say(f"  {key}: {' '.join(data[key]) if isinstance(data[key], list) else data[key]}")
    for p in data["parcels"]:
        _say(f"  parcel {p['seq']}: {p['weight_kg']} kg {p['size'] or ''} {p['tracking'] or ''}".rstrip())
    for h in data["history"]:
        _say(f"  {h['at']}  {h['from'] or '-'} -> {h['to']}  ({h['source']}){'  ' + h['note'] if h['note'] else ''}")
    return 0


def cmd_create(args: argparse.Namespace) -> int:
    loaded, engine = runtime(args)
    if (args.carrier is None) != (args.service is None):
        raise HubError("--carrier and --service go together (or neither: mappings/delivery.toml decides)")
    if args.carrier is not None:
        connector_named(loaded, args.carrier, "carrier")
    with db.transaction(engine) as session:
        order = session.get(Order, args.order)
        if order is None:
            raise NotFoundError(f"no order with id {args.order}")
        if order.status in ("cancelled", "returned"):
            raise HubError(f"order {order.id} is {order.status}: nothing to ship")
        try:
            shipment = create_shipment(session, order, delivery_map(loaded), loaded.settings.shipping, "cli",
                                       utcnow(), carrier=args.carrier, service=args.service)
        except ShippingProblem as exc:
            raise HubError(f"order {order.id}: {exc}") from None
        if shipment is None:
            raise HubError(f"order {order.id}: another process created its shipment at the same moment; "
                           "hub shipments list shows it")
        data = {"id": shipment.id, "reference": shipment.reference, "carrier": shipment.carrier,
                "service": shipment.service, "state": shipment.state}
    if args.json:
        emit_json(data)
    else:
        _say(f"shipment {data['id']} ({data['reference']}): {data['carrier']} {data['service']}, booking queued")
    return 0


def cmd_cancel(args: argparse.Namespace) -> int:
    loaded, engine = runtime(args)
    if args.withheld:
        return _withheld(args, loaded, engine)
    with db.transaction(engine) as session:
        s = _shipment(session, args.id)
        if s.state not in CANCELLABLE:
            raise HubError(f"shipment {s.id} is {s.state}: only a shipment not yet handed over can be cancelled")
        job = queue.enqueue(session, CANCEL, {"shipment_id": s.id, "source": "cli"},
                            key=f"ship-cancel:{s.reference}", connector=s.carrier)
        data = {"id": s.id, "reference": s.reference, "job": job.id}
    if args.json:
        emit_json(data)
    else:
        _say(f"shipment {data['id']}: cancel queued (job {data['job']}); hub shipments show {data['id']} tells")
    return 0


def _withheld(args: argparse.Namespace, loaded: Any, engine: Any) -> int:
    """The seller keeps a parcel the carrier would not cancel (InPost after confirming, DPD ever): the hub
    records it cancelled, so it leaves the labels, the pickups and the protocol, and its order is settled."""
    now = utcnow()
    with db.transaction(engine) as session:
        s = _shipment(session, args.id)
        if s.state not in ("booked", "label_ready"):
            raise HubError(f"shipment {s.id} is {s.state}: --withheld records a booked parcel the carrier refused "
                           "to cancel (booked or label_ready)")
        outcome = cancelled(session, order_rules(loaded), s, "cli", now,
                            "withheld: the carrier refused to cancel, the parcel stays in the warehouse")
        order = session.get(Order, s.order_id)
        assert order is not None
        data = {"id": s.id, "reference": s.reference, "state": s.state, "order": order.id,
                "order_status": order.status, "order_outcome": outcome}
    if args.json:
        emit_json(data)
    else:
        _say(f"shipment {data['id']} ({data['reference']}): cancelled in the hub (withheld); order {data['order']} "
             f"is {data['order_status']}")
    return 0


def cmd_labels_print(args: argparse.Namespace) -> int:
    loaded, engine = runtime(args)
    zone = ZoneInfo(loaded.settings.shipping.timezone)
    day = args.date or utcnow().astimezone(zone).date()
    start, end = _day_bounds(loaded, day)
    query = (select(Shipment.id, Shipment.label_path, Shipment.label_sha256).where(
        Shipment.label_sha256.is_not(None), Shipment.label_format == args.format,
        Shipment.state.not_in(("cancelled", "failed")),
        Shipment.created_at >= start, Shipment.created_at < end).order_by(Shipment.carrier, Shipment.id))
    if args.carrier:
        query = query.where(Shipment.carrier == connector_named(loaded, args.carrier, "carrier"))
    if not args.all:
        query = query.where(Shipment.label_printed_at.is_(None))
    with db.transaction(engine) as session:
        rows = session.execute(query).all()
    if not rows:
        raise HubError(f"no {args.format} labels to print for {day}" + ("" if args.all else
                                                                      " (all printed: --all prints them again)"))
    try:
        content = merge([read_checked(path, digest) for _, path, digest in rows], args.format)
    except LabelFileError as exc:
        raise HubError(str(exc)) from None
    temporary = args.out.with_name(args.out.name + ".part")
    temporary.write_bytes(content)
    os.replace(temporary, args.out)
    with db.transaction(engine) as session:
        session.execute(update(Shipment).where(Shipment.id.in_([r[0] for r in rows]),
                                               Shipment.label_printed_at.is_(None))
                        .values(label_printed_at=utcnow()))
    data = {"labels": len(rows), "file": str(args.out), "format": args.format, "date": day.isoformat()}
    if args.json:
        emit_json(data)
    else:
        _say(f"{len(rows)} labels of {day} in {args.out}")
    return 0


def cmd_pickups_list(args: argparse.Namespace) -> int:
    _, engine = runtime(args)
    query = select(Pickup).order_by(Pickup.id.desc()).limit(200)
    if args.date:
        query = query.where(Pickup.day == args.date)
    with db.transaction(engine) as session:
        rows = [{"id": p.id, "carrier": p.carrier, "day": p.day.isoformat(), "state": p.state,
                 "window": f"{p.window_start}-{p.window_end}" if p.window_start else None,
                 "parcels": p.parcels, "external_id": p.external_id, "problem": p.problem}
                for p in session.execute(query).scalars()]
    if args.json:
        emit_json(rows)
    else:
        table(rows, ["id", "carrier", "day", "state", "window", "parcels", "external_id", "problem"],
              empty="(no pickups)")
    return 0


def cmd_pickups_book(args: argparse.Namespace) -> int:
    loaded, engine = runtime(args)
    payload: dict[str, Any] = {"force": True}
    if args.carrier:
        payload["carrier"] = connector_named(loaded, args.carrier, "carrier")
    with db.transaction(engine) as session:
        job = queue.enqueue(session, PICKUPS, payload, key=f"pickups-now:{utcnow().isoformat()}")
    if args.json:
        emit_json({"job": job.id})
    else:
        _say(f"today's pickups queued (job {job.id}); hub pickups list shows them")
    return 0


def cmd_pickups_cancel(args: argparse.Namespace) -> int:
    _, engine = runtime(args)
    with db.transaction(engine) as session:
        pickup = session.get(Pickup, args.id)
        if pickup is None:
            raise NotFoundError(f"no pickup with id {args.id}")
        if pickup.state != "booked":
            raise HubError(f"pickup {pickup.id} is {pickup.state}: only a booked pickup can be cancelled")
        job = queue.enqueue(session, CANCEL_PICKUP, {"pickup_id": pickup.id}, key=f"pickup-cancel:{pickup.reference}",
                            connector=pickup.carrier)
    if args.json:
        emit_json({"id": args.id, "job": job.id})
    else:
        _say(f"pickup {args.id}: cancel queued (job {job.id})")
    return 0
