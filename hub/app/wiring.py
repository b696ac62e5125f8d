"""The composition root: every capability's job handlers and services, built for one process.

The platform and the job queue know no capability; this module is where they meet. It builds
one set of connector instances per process (on the first job: the engine arrives with it),
the listings and orders services on top of them, and registers every job kind.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from sqlalchemy import Engine

from hub.invoicing.goods import InvoicingFile
from hub.invoicing.kinds import SCHEDULE_PAYLOADS as invoicing_payloads
from hub.invoicing.service import HANDLERS as invoicing_handlers
from hub.invoicing.service import MANY_HANDLERS as invoicing_many
from hub.invoicing.service import InvoicingService
from hub.jobs.daemon import PRUNE_KIND, PrunePayload, prune_jobs
from hub.jobs.handlers import HandlerRegistry
from hub.listings.bindings import offer_skus
from hub.listings.kinds import SCHEDULE_PAYLOADS as sync_payloads
from hub.listings.rules import load_rules
from hub.listings.service import HANDLERS as sync_handlers
from hub.listings.service import SyncService
from hub.orders import rules as order_rules_module
from hub.orders.kinds import SCHEDULE_PAYLOADS as order_payloads
from hub.orders.rules import OrderRules
from hub.orders.service import HANDLERS as order_handlers
from hub.orders.service import OrderService
from hub.platform import registry
from hub.platform.config import LoadedConfig
from hub.platform.connectors import Connectors
from hub.platform.logs import get_logger
from hub.platform.mappings import load_all
from hub.shipping.delivery_map import DeliveryFile
from hub.shipping.kinds import SCHEDULE_PAYLOADS as shipping_payloads
from hub.shipping.service import HANDLERS as shipping_handlers
from hub.shipping.service import ShippingService


def order_rules(loaded: LoadedConfig) -> OrderRules:
    """The seller's order rules, with the listings' offer bindings for intake."""
    return order_rules_module.order_rules(loaded, offer_skus)


def delivery_map(loaded: LoadedConfig) -> DeliveryFile:
    return load_all(loaded.settings.mappings.dir)["delivery.toml"].data  # type: ignore[return-value]


def invoicing_goods(loaded: LoadedConfig) -> InvoicingFile:
    return load_all(loaded.settings.mappings.dir)["invoicing.toml"].data  # type: ignore[return-value]


def invoice_exporter(loaded: LoadedConfig, engine: Engine, kind: str) -> Any:
    """The accounting export of ``kind`` (EDI++: "epp"): the connector the config names with that kind, else
    the installed kind with its defaults. A kind no installed connector provides is an error naming it."""
    from hub.kernel.errors import HubError

    spec = registry.get(kind)
    if spec is None or spec.role != "export":
        installed = sorted(k for k, s in registry.specs().items() if s.role == "export")
        raise HubError(f"no accounting export {kind!r} is installed (installed: {', '.join(installed) or 'none'})")
    configured = [n for n, c in loaded.settings.connectors.items() if c.kind == kind and c.enabled]
    if configured:
        return Connectors(loaded, engine).get(sorted(configured)[0])
    options = spec.options_model.model_validate({}) if spec.options_model is not None else None
    return spec.factory(kind, options, {})


log = get_logger(__name__)


class ProcessServices:
    """One SyncService and one OrderService per process, built on first use."""

    def __init__(self, loaded: LoadedConfig, transports: dict[str, Any] | None = None):
        self.loaded = loaded
        self.transports = transports or {}
        self._sync: SyncService | None = None
        self._orders: OrderService | None = None
        self._shipping: ShippingService | None = None
        self._invoicing: InvoicingService | None = None
        self._lock = threading.Lock()

    def sync(self, engine: Engine) -> SyncService:
        with self._lock:
            if self._sync is None:
                connectors = Connectors(self.loaded, engine, transports=self.transports)
                grace = timedelta(seconds=self.loaded.settings.orders.erp_stock_grace)
                self._sync = SyncService(connectors, load_rules(self.loaded), grace)
            return self._sync

    def orders(self, engine: Engine) -> OrderService:
        sync = self.sync(engine)
        with self._lock:
            if self._orders is None:
                self._orders = OrderService(sync.connectors, order_rules(self.loaded), sync.erp_stock_grace)
            return self._orders

    def shipping(self, engine: Engine) -> ShippingService:
        sync = self.sync(engine)
        with self._lock:
            if self._shipping is None:
                self._shipping = ShippingService(sync.connectors, order_rules(self.loaded),
                                                 delivery_map(self.loaded), self.loaded)
            return self._shipping

    def invoicing(self, engine: Engine) -> InvoicingService:
        sync = self.sync(engine)
        with self._lock:
            if self._invoicing is None:
                self._invoicing = InvoicingService(sync.connectors, self.loaded.settings.invoicing,
                                                   invoicing_goods(self.loaded))
            return self._invoicing

    def register(self, handlers: HandlerRegistry) -> None:
        for kind, sync_handler in sync_handlers.items():
            handlers.register(kind, lambda ctx, h=sync_handler: h(self.sync(ctx.engine), ctx),
                              sync_payloads[kind])
        for kind, order_handler in order_handlers.items():
            handlers.register(kind, lambda ctx, h=order_handler: h(self.orders(ctx.engine), ctx),
                              order_payloads[kind])
        for kind, shipping_handler in shipping_handlers.items():
            handlers.register(kind, lambda ctx, h=shipping_handler: h(self.shipping(ctx.engine), ctx),
                              shipping_payloads[kind])
        for kind, invoicing_handler in invoicing_handlers.items():
            many = invoicing_many.get(kind)
            handlers.register(kind, lambda ctx, h=invoicing_handler: h(self.invoicing(ctx.engine), ctx),
                              invoicing_payloads[kind],
                              many=None if many is None else
                              lambda ctxs, m=many: m(self.invoicing(ctxs[0].engine), ctxs))
        handlers.on_start(self.warm)

    def warm(self, engine: Engine) -> None:
        """The services and every enabled connector, built before the first job: a carrier's WSDL parsed
        by the first booking held its thread and the GIL while the others queued. A connector that cannot
        be built is left to its jobs, which fail with the reason as before."""
        try:
            connectors = self.shipping(engine).connectors
            self.orders(engine)
            self.invoicing(engine)
        except Exception as exc:
            log.warning("services not built at start; the first job will try", error=str(exc))
            return
        for name in connectors.names():
            try:
                connectors.get(name)
            except Exception as exc:
                log.warning("connector not built at start; its jobs will try", connector=name, error=str(exc))


def build_handlers(
    loaded: LoadedConfig,
    extra: Callable[[HandlerRegistry], None] | None = None,
    *,
    transports: dict[str, Any] | None = None,
) -> HandlerRegistry:
    """Built-in kinds, every capability's kinds, and what configured connectors contribute.

    ``transports`` routes connectors' HTTP to in-process simulators (tests, the demo).
    """
    handlers = HandlerRegistry()
    handlers.register(PRUNE_KIND, prune_jobs, PrunePayload)
    ProcessServices(loaded, transports).register(handlers)
    for name, conn in sorted(loaded.settings.connectors.items()):
        spec = registry.get(conn.kind)
        if conn.enabled and spec is not None and spec.handlers is not None:
            spec.handlers(name, registry.options_for(name, conn, loaded.environ), handlers)
    if extra is not None:
        extra(handlers)
    return handlers


