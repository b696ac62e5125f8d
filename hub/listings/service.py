"""The listings' job handlers: ERP poll, push, reconcile and plan, wired to connectors and rules."""

from __future__ import annotations

from collections.abc import Callable, Container
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import Engine, delete, select
from sqlalchemy.orm import Session

from hub import catalog
from hub.jobs.daemon import PrunePayload, add_pruner
from hub.jobs.handlers import JobContext
from hub.jobs.models import Job
from hub.kernel.clock import utcnow
from hub.kernel.ports.channel import ListingChange
from hub.listings.desired import apply_rules_change, recompute
from hub.listings.kinds import PLAN_KIND, POLL_KIND, PUSH_KIND, RECONCILE_KIND
from hub.listings.models import Listing, PriceHistory
from hub.listings.plan import PlannedPush, plan, serialize
from hub.listings.push import record_results
from hub.listings.reconcile import bind_waiting, reconcile
from hub.listings.rules import Rules
from hub.orders import consume_reflected
from hub.platform.db import transaction, within
from hub.platform.spool import Spool


class SyncService:
    """Wires connectors, rules and the database for the sync job handlers and CLI commands."""


    def __init__(self, connectors: Any, rules: Rules, erp_stock_grace: timedelta = timedelta(minutes=10)):
        self.connectors = connectors
        self.rules = rules
        self.erp_stock_grace = erp_stock_grace

    @property
    def engine(self) -> Engine:
        return self.connectors.engine

    def channels(self) -> list[str]:
        return self.connectors.names(role="channel")

    def erps(self) -> list[str]:
        return self.connectors.names(role="erp")

    def batch_size(self, channel: str) -> int:
        return self.connectors.spec(channel).push_batch_size

    def plan_all(self, session: Session, *, dry_run: bool = False, only: str | None = None) -> list[PlannedPush]:
        apply_rules_change(session, self.rules)
        recompute(session, self.rules)
        planned: list[PlannedPush] = []
        for channel in self.channels():
            if only is None or channel == only:
                planned += plan(session, self.rules, channel, batch_size=self.batch_size(channel), dry_run=dry_run)
        return planned

    def poll_erp(self, erp: str, *, full: bool = False, limit: int = 5000,
                 session: Session | None = None) -> catalog.IngestResult:
        """Read the ERP; new SKUs bind the offers that waited for them (so the plan that follows
        pushes them, not the next reconcile a quarter of an hour later)."""
        result = catalog.poll_erp(self.engine, self.connectors.get(erp), erp, full=full, limit=limit,
                                  on_stock_read=self._stock_read, session=session)
        if result.new:
            with within(self.engine, session) as s:
                result.bound = len(bind_waiting(s))
        return result

    def _stock_read(self, session: Session, skus: Container[str], now: datetime) -> None:
        """This reading of the ERP's stock reflects the orders the ERP booked a while ago: their
        reservations end, and the SKUs' available-to-sell is computed again."""
        ended = consume_reflected(session, skus, self.erp_stock_grace, now)
        if ended:
            catalog.mark_dirty(session, ended, now)

    # handlers

    def handle_poll(self, ctx: JobContext) -> dict[str, Any]:
        erp = ctx.payload["erp"]
        result = self.poll_erp(erp, full=bool(ctx.payload.get("full")))
        planned: list[PlannedPush] = []
        if result.changed or result.bound:
            with ctx.session() as session:
                planned = self.plan_all(session)
        return {"products": result.products, "changed": result.changed, "bound": result.bound,
                "rejected": result.rejected, "released": result.released, "pushes": len(planned)}

    def handle_push(self, ctx: JobContext) -> dict[str, Any]:
        channel = ctx.payload["channel"]
        items = ctx.payload["items"]
        port = self.connectors.get(channel)
        # only the listings still waiting for this job: a replay after a crash that came after the results
        # were committed (a lease that ran out before the job was marked done) must not send its old
        # values over a newer push
        with ctx.session() as session:
            planned_at = session.execute(select(Job.created_at).where(Job.id == ctx.job.id)).scalar()
            ids = [i["listing_id"] for i in items]
            ours = {listing_id for start in range(0, len(ids), 1000) for listing_id in session.execute(
                select(Listing.id).where(Listing.id.in_(ids[start:start + 1000]),
                                         Listing.inflight_job_id == ctx.job.id)).scalars()}
        recorded = len(items) - len(ours)
        items = [i for i in items if i["listing_id"] in ours]
        if not items:
            return {"ok": 0, "failed": 0, "recorded_already": recorded, "follow_up_pushes": 0}
        changes = [
            ListingChange(
                external_id=i["external_id"], sku=i["sku"], quantity=i.get("quantity"),
                price_gross=Decimal(i["price"]) if i.get("price") is not None else None, currency=i["currency"],
            )
            for i in items
        ]
        # what the channel shows is known from when this push was first sent: a retry after a crash
        # between the channel's answer and our commit finds the first attempt's commands applied then (a
        # sale since is explained by its order, not held as an unexplained one for minutes). Only after
        # an attempt that counted: one held for a login or deferred for quota gave its attempt back and
        # may have waited for hours; what it sent, if anything, is dated from now (the safe side: a sale
        # hold lasts longer, no sold unit goes back on sale)
        sent_at = utcnow()
        if ctx.job.attempts > 1 and ctx.job.first_started_at is not None:
            sent_at = min(sent_at, ctx.job.first_started_at)
        results = port.push(changes, idempotency_key=ctx.job.idempotency_key)
        with ctx.session() as session:
            serialize(session)
            ok, failed = record_results(session, ctx.job.id, channel, items, results, sent_at, planned_at)
            follow_up = plan(session, self.rules, channel, batch_size=self.batch_size(channel))
        if failed:
            ctx.log.warning("offers refused the change", ok=ok, failed=failed)
        return {"ok": ok, "failed": failed, "recorded_already": recorded, "follow_up_pushes": len(follow_up)}

    def handle_reconcile(self, ctx: JobContext) -> dict[str, Any]:
        channel = ctx.payload["channel"]
        port = self.connectors.get(channel)
        read_started = utcnow()
        # read whole before the transaction (no lock held while the vendor pages), onto disk: a
        # million offers in a list was a gigabyte
        with Spool.spool(port.listings()) as offers, ctx.session() as session:
            result = reconcile(session, channel, offers, read_started,
                               order_time_resolution=getattr(port, "order_time_resolution", timedelta(0)))
            planned = self.plan_all(session, only=channel)
        return {"seen": result.seen, "new_bindings": result.new_bindings, "drift": result.drift,
                "unmatched": result.unmatched, "deactivated": result.deactivated, "pushes": len(planned)}

    def handle_plan(self, ctx: JobContext) -> dict[str, Any]:
        with ctx.session() as session:
            planned = self.plan_all(session)
        return {"pushes": len(planned)}


# job kind -> the handler that runs it (hub.app.wiring registers them)
def prune_price_history(engine: Engine, keep: PrunePayload) -> dict[str, int]:
    """The price audit is kept ``keep_price_history_seconds`` (180 days by default), then goes."""
    cutoff = utcnow() - timedelta(seconds=keep.keep_price_history_seconds)
    with transaction(engine) as session:
        removed = session.execute(delete(PriceHistory).where(PriceHistory.at < cutoff)).rowcount or 0
    return {"price_history_removed": removed}


add_pruner(prune_price_history)


HANDLERS: dict[str, Callable[[SyncService, JobContext], dict[str, Any]]] = {
    POLL_KIND: SyncService.handle_poll,
    PUSH_KIND: SyncService.handle_push,
    RECONCILE_KIND: SyncService.handle_reconcile,
    PLAN_KIND: SyncService.handle_plan,
}
