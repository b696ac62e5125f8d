"""``hub run``, ``hub status`` and ``hub jobs``: the daemon and the job queue."""

from __future__ import annotations

import argparse
from typing import Any

from hub.cli.context import engine_for, load_config, positive_int
from hub.cli.output import emit_json, table
from hub.cli.output import say as _say
from hub.cli.platform import check_all
from hub.jobs import queue
from hub.jobs.models import JOB_STATES
from hub.kernel.errors import HubError
from hub.platform import db
from hub.platform.logs import configure as configure_logging


def add_parsers(sub: Any, common: argparse.ArgumentParser, listing: argparse.ArgumentParser,
                parser_class: type[argparse.ArgumentParser]) -> None:
    run = sub.add_parser("run", parents=[common], help="run the daemon (workers and schedule)")
    run.add_argument("--once", action="store_true",
                     help="run every periodic job once, drain the queue and exit (1 if a job went dead)")
    run.add_argument("--migrate", action="store_true", help="migrate the database first")
    run.add_argument("--timeout", type=positive_int, default=600, metavar="SECONDS",
                     help="with --once: give up draining after this long (default 600)")
    run.set_defaults(func=cmd_run)

    status = sub.add_parser("status", parents=[common, listing],
                            help="queue depth, dead jobs, ERP quarantine, periodic jobs and connector health")
    status.set_defaults(func=cmd_status)

    jobs = sub.add_parser("jobs", parents=[common], help="inspect and steer the job queue")
    jobs_sub = jobs.add_subparsers(dest="jobs_command", required=True, parser_class=parser_class, metavar="ACTION")
    jobs.set_defaults(func=cmd_jobs)
    jl = jobs_sub.add_parser("list", parents=[common, listing], help="list jobs, newest first")
    jl.add_argument("--state", choices=JOB_STATES)
    jl.add_argument("--kind")
    jl.add_argument("--limit", type=positive_int, default=50)
    js = jobs_sub.add_parser("show", parents=[common, listing], help="one job with its error history")
    js.add_argument("id", type=positive_int)
    jr = jobs_sub.add_parser("retry", parents=[common, listing], help="run a dead, retrying or cancelled job now")
    target = jr.add_mutually_exclusive_group(required=True)
    target.add_argument("id", type=positive_int, nargs="?")
    target.add_argument("--dead", action="store_true", help="every dead job")
    jr.add_argument("--kind", help="with --dead: only jobs of this kind")
    jc = jobs_sub.add_parser("cancel", parents=[common, listing], help="cancel a job that is not running")
    jc.add_argument("id", type=positive_int)


def cmd_run(args: argparse.Namespace) -> int:
    from hub.jobs.daemon import Daemon
    from hub.platform.malloc import limit_arenas

    limit_arenas()  # before any worker thread: RSS stays flat across whole-catalogue jobs (hub.platform.malloc)
    loaded = load_config(args)
    configure_logging(loaded.settings.log)
    _, handlers = check_all(loaded)
    engine = engine_for(loaded, migrated=False)
    if args.migrate:
        db.upgrade(engine)
    db.require_migrated(engine)
    daemon = Daemon(loaded, engine, handlers)
    if args.once:
        code = daemon.run_once(timeout=args.timeout)
        _say("run --once: " + "; ".join(daemon.last_run.lines()))
        return code
    return daemon.serve()


def cmd_status(args: argparse.Namespace) -> int:
    from hub.app.status import status

    loaded = load_config(args)
    engine = engine_for(loaded)
    with db.transaction(engine) as session:
        data = status(engine, session, loaded)
    if args.json:
        emit_json(data)
        return 0
    q = data["queue"]
    _say("queue:  " + "  ".join(f"{state} {count}" for state, count in q.items()))
    o = data["orders"]
    _say(f"orders with problems: {o['problems']} ({o['oversold']} oversold) - hub orders list --problems")
    sh = data["shipments"]
    _say(f"shipments with problems: {sh['problems']}, failed pickups: {sh['failed_pickups']}"
         " - hub shipments list --problems, hub pickups list")
    for s in sh["with_problems"]:
        _say(f"  shipment {s['id']} (order {s['order_id']}, {s['carrier']}, {s['state']}): {s['problem']}")
    inv = data["invoices"]
    _say(f"invoices with problems: {inv['problems']}, rejected by KSeF: {inv['rejected']}, waiting for KSeF: "
         f"{inv['waiting_for_ksef']} - hub invoices list --state problem|rejected")
    for i in inv["with_problems"]:
        _say(f"  invoice {i['id']} {i['number'] or '(no number)'} (order {i['order_id']}, {i['state']}): "
             f"{i['problem']}")
    if inv["offline_waiting"]:
        _say(f"offline invoices not yet in KSeF: {sum(d['invoices'] for d in inv['offline_waiting'])} - hub invoices "
             "list --offline")
        for due in inv["offline_waiting"]:
            when = f"by {due['deadline']}" if due["deadline"] else "by the working day after the KSeF outage ends"
            _say(f"  {due['invoices']} due in KSeF {when}" + (" - OVERDUE" if due["overdue"] else ""))
    quarantine = data["erp_quarantine"]
    _say("ERP quarantine: " + (", ".join(f"{q['erp']} {q['records']} record(s) since {q['since']}"
                                         for q in quarantine) + " - hub erp rejects" if quarantine else "none"))
    _say()
    _say(f"dead jobs ({len(data['dead_jobs'])} shown):")
    table(data["dead_jobs"], ["id", "kind", "attempts", "updated_at", "last_error"])
    _say()
    _say("periodic jobs:")
    table(data["schedule"], ["name", "job", "every_seconds", "last_fired_at", "last_job_state", "last_success_at",
                             "last_failure_at", "last_failure"], empty="(none configured)")
    _say()
    _say("connectors:")
    table(data["connectors"], ["name", "kind", "health", "last_ok_at", "last_error_at", "last_error"],
          empty="(none configured)")
    return 0


def cmd_jobs(args: argparse.Namespace) -> int:
    from hub.app.status import job_detail, list_jobs

    loaded = load_config(args)
    engine = engine_for(loaded)
    action = args.jobs_command
    with db.transaction(engine) as session:
        if action == "list":
            rows = list_jobs(session, state=args.state, kind=args.kind, limit=args.limit)
            if args.json:
                emit_json(rows)
            else:
                table(rows, ["id", "kind", "state", "attempts", "run_at", "last_error"], empty="(no jobs)")
            return 0
        if action == "show":
            detail = job_detail(session, args.id)
            if args.json:
                emit_json(detail)
                return 0
            for key in ("id", "kind", "state", "attempts", "max_attempts", "connector", "priority",
                        "idempotency_key", "run_at", "created_at", "started_at", "finished_at",
                        "lease_owner", "lease_expires_at", "last_error"):
                _say(f"{key + ':':18}{'-' if detail[key] is None else detail[key]}")
            _say("payload:")
            emit_json(detail["payload"])
            if detail["result"] is not None:
                _say("result:")
                emit_json(detail["result"])
            _say(f"error history ({len(detail['errors'])}):")
            table(detail["errors"], ["attempt", "outcome", "at", "worker", "error"], max_width=100)
            return 0
        if action == "retry":
            if args.kind is not None and not args.dead:
                raise HubError(f"--kind {args.kind} goes with --dead (every dead job of a kind); to retry job "
                               f"{args.id} leave --kind out")
            if args.dead:
                ids = queue.retry_dead(session, args.kind)
            else:
                job_detail(session, args.id)  # NotFoundError for an unknown id
                ids = queue.retry(session, [args.id])
                if not ids:
                    state = job_detail(session, args.id)["state"]
                    raise HubError(f"job {args.id} is {state}; only dead, failed-retrying or cancelled jobs "
                                   "can be retried")
            if args.json:
                emit_json({"retried": ids})
            else:
                _say(f"queued again: {len(ids)} job(s)" + (f" ({', '.join(map(str, ids))})" if ids else ""))
            return 0
        if action == "cancel":
            job_detail(session, args.id)
            if not queue.cancel(session, args.id):
                state = job_detail(session, args.id)["state"]
                raise HubError(f"job {args.id} is {state}; only pending, failed-retrying or dead jobs "
                               "can be cancelled")
            if args.json:
                emit_json({"cancelled": args.id})
            else:
                _say(f"job {args.id} cancelled")
            return 0
    raise AssertionError(action)


