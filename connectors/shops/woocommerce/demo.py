"""`hub demo` hook: the WooCommerce simulator on loopback, seeded with the demo catalogue."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from connectors.shops.woocommerce.simulator import WooSimulator


class WooDemo:
    name = "shop"
    returns = False  # the channel has buyers' returns (the demo accepts one)
    label = "WooCommerce shop (simulator)"
    # the shop's own pricing: 3% under the ERP price, prices ending in .90
    pricing = {"markup_pct": "-3", "rounding": "step:0.10", "min_margin_pct": "5"}

    def __init__(self) -> None:
        self.sim = WooSimulator(consumer_key="ck_demo", consumer_secret="cs_demo")
        # the shop's clock is the wall clock, as a real shop's is: its orders' dates are compared with
        # the hub's own times (a sale hold counts the orders placed since the hub's last push)
        self.sim.clock = datetime.now(UTC).replace(microsecond=0)
        self.ids: dict[str, int] = {}
        self._stop = threading.Event()
        self._ticker = threading.Thread(target=self._tick_loop, name="woo-demo-clock", daemon=True)

    def _tick(self) -> None:
        with self.sim._lock:
            self.sim.clock = max(self.sim.clock, datetime.now(UTC).replace(microsecond=0))

    def _tick_loop(self) -> None:
        while not self._stop.wait(0.2):
            self._tick()

    def start(self, catalogue: Sequence[Any]) -> dict[str, Any]:
        for item in catalogue:
            self.ids[item.sku] = self.sim.add_simple(item.sku, item.quantity, str(item.price), ean=item.ean or "")
        url = self.sim.serve()
        self._ticker.start()
        return {"base_url": url, "consumer_key": "ck_demo", "consumer_secret": "cs_demo"}

    def login(self, name: str, config_path: Any, engine: Any) -> None:
        """Consumer keys need no login."""

    def shows(self, sku: str) -> tuple[int | None, Decimal | None] | None:
        pid = self.ids.get(sku)
        if pid is None:
            return None
        product = self.sim.product(pid)
        price = product.get("price")  # what a buyer pays, as the channel's listings report it
        return product.get("stock_quantity"), Decimal(price) if price else None

    def place_order(self, sku: str, quantity: int, nip: str | None = None) -> str:
        """A buyer pays online (Przelewy24) for ``quantity`` of the SKU's product (a business gives its ``nip``
        for the invoice)."""
        self._tick()
        return str(self.sim.add_order([(self.ids[sku], quantity)], status="processing",
                                      transaction_id=f"p24-{len(self.ids)}", nip=nip,
                                      billing={"company": "Hurtownia Demo Sp. z o.o."} if nip else None))

    def order_status(self, external_id: str) -> str:
        return str(self.sim.order(int(external_id))["status"])

    def add_return(self, external_id: str, sku: str, quantity: int) -> str | None:
        """WooCommerce has no returns, only refunds: the demo shows returns on channels that have them."""
        return None

    def refunds(self) -> int:
        return sum(len(self.sim.order_refunds(oid)) for oid in list(self.sim.orders))

    def requests(self) -> int:
        return len(self.sim.log)

    def stop(self) -> None:
        self._stop.set()
        self.sim.stop()
