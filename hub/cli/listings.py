"""CLI commands of the sync capability: sync, stock, prices, listings, erp."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from hub.catalog.models import Product, StockLevel
from hub.cli.context import connector_named, positive_int, runtime
from hub.cli.output import emit_json, table
from hub.cli.output import say as _say
from hub.jobs.models import Job
from hub.kernel.clock import utcnow
from hub.kernel.errors import (
    ConfigError,
    EnvironmentFailure,
    HubError,
    JobError,
    LoginNeeded,
    NotFoundError,
    RetryableError,
)
from hub.listings.bindings import bound_offers
from hub.listings.desired import mark_all_dirty
from hub.listings.models import Listing, PriceRefusal
from hub.listings.reconcile import reconcile
from hub.orders import reserved_by_sku
from hub.platform import db, registry
from hub.platform.config import LoadedConfig
from hub.platform.health import set_health
from hub.platform.spool import Spool


def add_parsers(sub: Any, common: argparse.ArgumentParser, listing: argparse.ArgumentParser,
                parser_class: type[argparse.ArgumentParser]) -> None:
    sync = sub.add_parser("sync", parents=[common, listing], help="read the ERP and push differences to channels")
    sync.add_argument("--full", action="store_true",
                      help="full ERP snapshot and a read of every channel's real listings (reconciliation)")
    sync.add_argument("--channel", metavar="NAME", help="only this channel")
    sync.add_argument("--dry-run", action="store_true", help="print the change set and send nothing")
    sync.add_argument("--timeout", type=positive_int, default=600, metavar="SECONDS",
                      help="seconds to wait for the pushes (default 600)")
    sync.set_defaults(func=cmd_sync)

    stock = sub.add_parser("stock", parents=[common], help="stock and available-to-sell")
    stock_sub = stock.add_subparsers(dest="stock_command", required=True, parser_class=parser_class, metavar="ACTION")
    show = stock_sub.add_parser("show", parents=[common, listing],
                                help="ERP stock, reservations, ATS per channel, acknowledged values")
    show.add_argument("sku")
    show.set_defaults(func=cmd_stock_show)

    prices = sub.add_parser("prices", parents=[common], help="pricing")
    prices_sub = prices.add_subparsers(dest="prices_command", required=True, parser_class=parser_class,
                                       metavar="ACTION")
    explain = prices_sub.add_parser("explain", parents=[common, listing], help="every step of a SKU's price")
    explain.add_argument("sku")
    explain.add_argument("--channel", metavar="NAME")
    explain.set_defaults(func=cmd_prices_explain)
    refused = prices_sub.add_parser("refused", parents=[common, listing], help="prices refused under the floor")
    refused.add_argument("--channel", metavar="NAME")
    refused.set_defaults(func=cmd_prices_refused)
    comp = prices_sub.add_parser("competitors", parents=[common, listing],
                                 help="import competitor prices from a CSV (channel, sku, price)")
    comp.add_argument("file", type=Path)
    comp.set_defaults(func=cmd_prices_competitors)

    listings = sub.add_parser("listings", parents=[common], help="channel listings")
    listings_sub = listings.add_subparsers(dest="listings_command", required=True, parser_class=parser_class,
                                           metavar="ACTION")
    unmatched = listings_sub.add_parser("unmatched", parents=[common, listing],
                                        help="offers without a SKU and SKUs without an offer")
    unmatched.add_argument("--channel", metavar="NAME")
    unmatched.set_defaults(func=cmd_listings_unmatched)



# --- shared ---------------------------------------------------------------------------


def _service(loaded: LoadedConfig, engine: Engine) -> Any:
    from hub.app.wiring import ProcessServices

    return ProcessServices(loaded).sync(engine)


def _channel_names(loaded: LoadedConfig, only: str | None) -> list[str]:
    names = [n for n, c in sorted(loaded.settings.connectors.items())
             if c.enabled and (spec := registry.get(c.kind)) is not None and spec.role == "channel"]
    if only is not None:
        if only not in names:
            raise HubError(f"no channel named {only!r} (configured channels: {', '.join(names) or 'none'})")
        return [only]
    return names


def _progress(done: int, total: int, label: str) -> None:
    if not sys.stdout.isatty() or total == 0:
        return
    width = 30
    filled = int(width * done / total)
    sys.stdout.write(f"\r{label} [{'#' * filled}{'.' * (width - filled)}] {done}/{total}")
    if done >= total:
        sys.stdout.write("\n")
    sys.stdout.flush()


def drain(engine: Engine, loaded: LoadedConfig, job_ids: list[int], timeout: float,
          progress: Callable[[int, int], None] | None = None) -> dict[str, int]:
    """Run the pushes now with an in-process worker pool; returns their final states."""
    from hub.app.wiring import build_handlers
    from hub.jobs.worker import WorkerPool

    pool = WorkerPool(engine, build_handlers(loaded), loaded.settings.worker)
    pool.start()
    deadline = time.monotonic() + timeout
    states: dict[str, int] = {}
    try:
        while True:
            with db.transaction(engine) as session:
                rows = session.execute(select(Job.id, Job.state).where(Job.id.in_(job_ids))).all()
            pending = [r for r in rows if r.state in ("pending", "running", "failed-retrying")]
            if progress:
                progress(len(rows) - len(pending), len(rows))
            if not pending or time.monotonic() > deadline:
                states = {}
                for r in rows:
                    states[r.state] = states.get(r.state, 0) + 1
                return states
            time.sleep(0.1)
    finally:
        pool.stop(timeout=10)


# --- commands -------------------------------------------------------------------------


class _Calls:
    """Calls to the ERPs and channels that `hub sync` makes itself (not through a job): each failure as
    the one line the CLI prints, and each outcome in the connector's health, as a job's outcome is
    under `hub run` (a dry run records nothing)."""

    def __init__(self, engine: Engine, *, record: bool) -> None:
        self.engine = engine
        self.record = record

    def __call__(self, what: str, name: str, call: Callable[[], Any]) -> Any:
        try:
            result = call()
        except JobError as exc:
            self._health(name, "login-needed" if isinstance(exc, LoginNeeded) else "failing", str(exc))
            transient = isinstance(exc, RetryableError) and not isinstance(exc, LoginNeeded)
            raise EnvironmentFailure(f"{what} {name}: {exc}"
                                     + (": try again later (hub status shows its health)" if transient else "")
                                     ) from exc
        self._health(name, "ok", None)
        return result

    def _health(self, name: str, status: str, error: str | None) -> None:
        if self.record:
            with db.transaction(self.engine) as session:
                set_health(session, name, status, error, utcnow())


@contextmanager
def _dry_run_session(engine: Engine, dry_run: bool) -> Iterator[Session | None]:
    """A dry run's one transaction, rolled back at the end: the ERP's records, the bindings, the
    dirty set and the cursors all stay as they were. A real run: None (each step commits its own)."""
    if not dry_run:
        yield None
        return
    session = db.session_factory(engine)()
    try:
        session.begin()
        yield session
    finally:
        session.rollback()
        session.close()


def cmd_sync(args: argparse.Namespace) -> int:
    loaded, engine = runtime(args)
    channels = _channel_names(loaded, args.channel)
    service = _service(loaded, engine)
    calls = _Calls(engine, record=not args.dry_run)
    report: dict[str, Any] = {"erp": {}, "reconcile": {}, "changes": [], "pushes": {}, "bound_offers": 0}
    # Every channel's offers are read before the hub writes anything: a dry run holds its writes in one
    # transaction, and on SQLite that would block the connectors' own bookkeeping (tokens, rate budget).
    # (spooled to disk: a million offers in a list was a gigabyte)
    offers = {channel: calls("channel", channel,
                             lambda port=service.connectors.get(channel): Spool.spool(port.listings()))
              for channel in (channels if args.full else [])}
    with _dry_run_session(engine, args.dry_run) as dry:
        for erp in service.erps():
            result = calls("ERP", erp, lambda erp=erp: service.poll_erp(erp, full=args.full, session=dry))
            report["erp"][erp] = {"products": result.products, "changed": result.changed,
                                  "rejected": result.rejected, "released": result.released, "zeroed": result.zeroed}
        for channel, seen in offers.items():
            with seen, db.within(engine, dry) as session:
                r = reconcile(session, channel, seen)
            report["reconcile"][channel] = {"seen": r.seen, "new_bindings": r.new_bindings, "drift": r.drift,
                                            "sales_held": r.sales_held,
                                            "unmatched": r.unmatched, "deactivated": r.deactivated}
        with db.within(engine, dry) as session:
            if args.full:
                mark_all_dirty(session)
            planned = []
            for channel in channels:
                planned += service.plan_all(session, dry_run=args.dry_run, only=channel)
            report["bound_offers"] = bound_offers(session, channels)
    for push in planned:
        for item in push.items:
            report["changes"].append({"channel": push.channel, "sku": item["sku"], "offer": item["external_id"],
                                      "quantity": item.get("quantity"), "price": item.get("price"),
                                      "old_price": item.get("old_price")})
    job_ids = [p.job_id for p in planned if p.job_id is not None]
    if job_ids:
        report["pushes"] = drain(engine, loaded, job_ids, args.timeout,
                                 progress=lambda d, t: _progress(d, t, "pushing"))
    if args.json:
        emit_json(report)
        return 0 if not report["pushes"].get("dead") else 1
    for erp, r in report["erp"].items():
        _say(f"erp {erp}: {r['products']} products read, {r['changed']} SKUs changed, "
             f"{r['rejected']} rows quarantined, {r['released']} left quarantine")
    for channel, r in report["reconcile"].items():
        _say(f"channel {channel}: {r['seen']} offers read, {r['new_bindings']} newly bound, {r['drift']} drifted, "
             f"{r['sales_held']} showing a sale not yet in the orders, "
             f"{r['unmatched']} unmatched")
    title = "change set (dry run, nothing sent, nothing stored)" if args.dry_run else "changes pushed"
    _say(f"{title}: {len(report['changes'])}")
    if not report["bound_offers"] and channels:
        _say("no channel offer is bound to a SKU yet, so there is nothing to compare: run `hub sync --full` "
             "(add --dry-run to preview it) to read every channel's offers and bind them by signature or EAN")
    else:
        table(report["changes"][:200], ["channel", "sku", "offer", "quantity", "old_price", "price"],
              empty="(no differences)")
    if len(report["changes"]) > 200:
        _say(f"... and {len(report['changes']) - 200} more (use --json for all)")
    if report["pushes"]:
        _say("push jobs: " + ", ".join(f"{s} {n}" for s, n in sorted(report["pushes"].items())))
    return 0 if not report["pushes"].get("dead") else 1


def cmd_stock_show(args: argparse.Namespace) -> int:
    from hub.listings.rules import load_rules
    from hub.listings.stock_rules import available_to_sell

    loaded, engine = runtime(args)
    rules = load_rules(loaded)
    with db.transaction(engine) as session:
        product = session.get(Product, args.sku)
        if product is None:
            raise NotFoundError(f"no SKU {args.sku!r} in the catalogue (see hub erp rejects if it was quarantined)")
        stock = {s.warehouse: s.quantity for s in session.execute(
            select(StockLevel).where(StockLevel.sku == args.sku)).scalars()}
        reserved = reserved_by_sku(session, [args.sku]).get(args.sku, 0)
        listings = session.execute(select(Listing).where(Listing.sku == args.sku).order_by(Listing.channel)).scalars()
        channels = []
        for listing in listings:
            ats = available_to_sell(stock, reserved, rules.stock_rule(listing.channel))
            channels.append({
                "channel": listing.channel, "offer": listing.external_id, "ats": ats.quantity,
                "desired": listing.desired_quantity, "acknowledged": listing.ack_quantity,
                "acknowledged_at": listing.acked_at.isoformat() if listing.acked_at else None,
                "in_flight_job": listing.inflight_job_id, "last_error": listing.last_error,
                "steps": [_step(s) for s in ats.steps],
            })
    data = {"sku": args.sku, "name": product.name, "stock": stock, "reserved": reserved, "channels": channels}
    if args.json:
        emit_json(data)
        return 0
    _say(f"{args.sku}  {product.name}")
    _say("ERP stock: " + (", ".join(f"{w} {q}" for w, q in sorted(stock.items())) or "none"))
    _say(f"open reservations: {reserved}")
    table(channels, ["channel", "offer", "ats", "desired", "acknowledged", "acknowledged_at", "in_flight_job",
                     "last_error"], empty="(no channel offers bound to this SKU)")
    return 0


def _step(step: Any) -> dict[str, Any]:
    if isinstance(step, dict):
        return step
    if isinstance(step, tuple | list):
        value = step[1] if len(step) > 1 else None
        return {"label": step[0], "value": None if value is None else str(value),
                "note": step[2] if len(step) > 2 else None}
    return {k: (str(v) if isinstance(v, Decimal) else v) for k, v in vars(step).items()}


def cmd_prices_explain(args: argparse.Namespace) -> int:
    from hub.listings.desired import price_inputs
    from hub.listings.models import CompetitorPrice
    from hub.listings.pricing import decide, format_explanation
    from hub.listings.rules import load_rules

    loaded, engine = runtime(args)
    rules = load_rules(loaded)
    channels = _channel_names(loaded, args.channel)
    if not channels:
        raise HubError(f"{loaded.source_label}: no channel connector is configured, so no price is decided: add "
                       "one under [connectors.NAME] (an allegro or woocommerce kind)")
    out = []
    with db.transaction(engine) as session:
        product = session.get(Product, args.sku)
        if product is None:
            raise NotFoundError(f"no SKU {args.sku!r} in the catalogue")
        for channel in channels:
            competitor = session.get(CompetitorPrice, (channel, args.sku))
            rule = rules.price_rule(channel)
            decision = decide(rule, price_inputs(product, competitor.price if competitor else None, channel))
            listing = session.execute(select(Listing).where(Listing.channel == channel, Listing.sku == args.sku)
                                      ).scalar_one_or_none()
            out.append((channel, rule, decision, listing))
    if args.json:
        emit_json([{"channel": c, "enabled": r.enabled, "price": d.price, "floor": d.floor, "refused": d.refused,
                    "reason": d.reason, "steps": [_step(s) for s in d.steps],
                    "acknowledged_price": listing.ack_price if listing else None} for c, r, d, listing in out])
        return 0
    for channel, rule, decision, listing in out:
        _say(f"== {args.sku} on {channel}" + ("" if rule.enabled else " (price pushes disabled: kill switch)"))
        _say(format_explanation(decision))
        if listing is not None:
            _say(f"channel shows: {listing.ack_price} (offer {listing.external_id})")
        else:
            _say("no offer bound to this SKU on this channel")
        _say()
    return 0


def cmd_prices_refused(args: argparse.Namespace) -> int:
    loaded, engine = runtime(args)
    with db.transaction(engine) as session:
        query = select(PriceRefusal).order_by(PriceRefusal.channel, PriceRefusal.sku)
        if args.channel:
            query = query.where(PriceRefusal.channel == connector_named(loaded, args.channel, "channel"))
        rows = [{"channel": r.channel, "sku": r.sku, "price": r.price, "floor": r.floor, "reason": r.reason,
                 "since": r.first_at.isoformat(), "last": r.last_at.isoformat()}
                for r in session.execute(query).scalars()]
    if args.json:
        emit_json(rows)
    else:
        table(rows, ["channel", "sku", "price", "floor", "reason", "since"], empty="(no refused prices)")
    return 0


def cmd_prices_competitors(args: argparse.Namespace) -> int:
    from hub.listings.competitors import import_csv

    loaded, engine = runtime(args)
    with db.transaction(engine) as session:
        result = import_csv(session, args.file, _channel_names(loaded, None))
    if args.json:
        emit_json({"imported": result.imported, "problems": result.problems})
    else:
        _say(f"imported {result.imported} competitor prices")
        for problem in result.problems:
            _say(f"  skipped: {problem}")
    if result.problems and not result.imported:
        raise ConfigError(result.problems)
    return 0


def cmd_listings_unmatched(args: argparse.Namespace) -> int:
    loaded, engine = runtime(args)
    channels = _channel_names(loaded, args.channel)
    offers: list[dict[str, Any]] = []
    skus: list[dict[str, Any]] = []
    with db.transaction(engine) as session:
        for channel in channels:
            for lst in session.execute(select(Listing).where(Listing.channel == channel, Listing.sku.is_(None),
                                                           Listing.active.is_(True))).scalars():
                offers.append({"channel": channel, "offer": lst.external_id, "signature": lst.signature, "ean": lst.ean,
                               "quantity": lst.seen_quantity, "price": lst.seen_price})
            bound = select(Listing.sku).where(Listing.channel == channel, Listing.sku.is_not(None))
            for p in session.execute(select(Product).where(Product.sku.not_in(bound)).order_by(Product.sku)
                                     .limit(10000)).scalars():
                skus.append({"channel": channel, "sku": p.sku, "ean": p.ean, "name": p.name})
    if args.json:
        emit_json({"offers_without_sku": offers, "skus_without_offer": skus})
        return 0
    _say(f"offers without a SKU ({len(offers)}):")
    table(offers, ["channel", "offer", "signature", "ean", "quantity", "price"])
    _say()
    _say(f"SKUs without an offer ({len(skus)}):")
    table(skus, ["channel", "sku", "ean", "name"])
    return 0
