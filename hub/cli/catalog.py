"""``hub erp rejects``: the catalogue's quarantine of ERP records."""

from __future__ import annotations

import argparse
from typing import Any

from sqlalchemy import select

from hub.catalog.models import ErpReject
from hub.cli.context import connector_named, runtime
from hub.cli.output import emit_json, table
from hub.platform import db


def add_parsers(sub: Any, common: argparse.ArgumentParser, listing: argparse.ArgumentParser,
                parser_class: type[argparse.ArgumentParser]) -> None:
    erp = sub.add_parser("erp", parents=[common], help="ERP feed")
    erp_sub = erp.add_subparsers(dest="erp_command", required=True, parser_class=parser_class, metavar="ACTION")
    rejects = erp_sub.add_parser("rejects", parents=[common, listing], help="quarantined ERP records")
    rejects.add_argument("--erp", metavar="NAME")
    rejects.set_defaults(func=cmd_erp_rejects)


def cmd_erp_rejects(args: argparse.Namespace) -> int:
    loaded, engine = runtime(args)
    with db.transaction(engine) as session:
        query = select(ErpReject).order_by(ErpReject.erp, ErpReject.record_key, ErpReject.field)
        if args.erp:
            query = query.where(ErpReject.erp == connector_named(loaded, args.erp, "erp"))
        rows = [{"erp": r.erp, "record": r.source, "sku": r.sku, "field": r.field, "value": r.value,
                 "reason": r.reason, "since": r.first_seen.isoformat()}
                for r in session.execute(query).scalars()]
    if args.json:
        emit_json(rows)
    else:
        table(rows, ["erp", "record", "sku", "field", "value", "reason"], empty="(no quarantined records)")
    return 0

