"""`hub demo` hook: the Allegro simulator on loopback, seeded with the demo catalogue, and the
device-flow login an operator runs with `hub allegro login ACCOUNT`."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

from connectors.allegro.simulator import AllegroSimulator

CLIENT_ID = "demo-client"
CLIENT_SECRET = "demo-secret"  # the simulator's; a real account uses { credential = "..." }


class AllegroDemo:
    name = "allegro-main"
    returns = True  # the channel has buyers' returns (the demo accepts one)
    label = "Allegro (simulator)"
    # the marketplace's commission and fee per unit, prices ending in .99, a 5% margin floor
    pricing = {"commission_pct": "10", "fixed_fee": "1.00", "rounding": "0.99", "min_margin_pct": "5"}

    def __init__(self) -> None:
        self.sim = AllegroSimulator(clients={CLIENT_ID: CLIENT_SECRET}, device_interval=1, auto_approve_after=1,
                                    command_delay=0.05)
        self.offer_ids: dict[str, str] = {}

    def start(self, catalogue: Sequence[Any]) -> dict[str, Any]:
        for i, item in enumerate(catalogue, start=1):
            offer_id = str(17_000_000_000 + i)
            self.sim.add_offer(offer_id, external_id=item.sku, quantity=item.quantity, price=item.price,
                               status="ACTIVE" if item.quantity else "ENDED", name=f"Oferta {item.sku}")
            self.offer_ids[item.sku] = offer_id
        url = self.sim.serve()
        return {"api_url": url, "auth_url": url, "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET,
                "command_poll_interval": "100ms"}

    def login(self, name: str, config_path: Path, engine: Any) -> None:
        """What `hub allegro login NAME` does: device code, confirmation, token pair stored."""
        from connectors.allegro.auth import AllegroAuth, describe_device
        from connectors.allegro.client import AllegroHttp
        from hub.platform import registry
        from hub.platform.config import load
        from hub.platform.connectors import Connectors
        from hub.platform.credentials import TokenStore
        from hub.platform.logs import get_logger

        loaded = load(config_path, environ={})
        conn = loaded.settings.connectors[name]
        options = registry.options_for(name, conn, loaded.environ)
        http = AllegroHttp(connector=name, throttle=Connectors(loaded, engine).throttle(name),
                           log=get_logger("connectors.allegro").bind(connector=name), timeout=10, attempts=3,
                           backoff=0.2, block_seconds=60)
        try:
            auth = AllegroAuth(account=name, http=http, tokens=TokenStore(engine), auth_base=options.auth_base,
                               client_id=options.client_id, client_secret=options.client_secret.get())
            device = auth.start_device_flow()
            first = describe_device(device).splitlines()[0]
            sys.stdout.write(f"   hub allegro login {name}: {first} (the simulator confirms it)\n")
            tokens = auth.login(device)
        finally:
            http.close()
        sys.stdout.write(f"   logged in; token pair stored, valid until {tokens.expires_at:%H:%M} UTC\n")

    def shows(self, sku: str) -> tuple[int | None, Decimal | None] | None:
        offer_id = self.offer_ids.get(sku)
        if offer_id is None:
            return None
        offer = self.sim.offer(offer_id)
        quantity = offer.quantity if offer.status == "ACTIVE" else 0
        return quantity, offer.price

    def place_order(self, sku: str, quantity: int, nip: str | None = None) -> str:
        """A buyer buys and pays online for ``quantity`` of the SKU's offer (a business asks for an invoice to
        its ``nip``)."""
        return self.sim.place_order([(self.offer_ids[sku], quantity)], buyer_login="kupujacy_demo", invoice_nip=nip)

    def order_status(self, external_id: str) -> str:
        form = self.sim.checkout_form(external_id)
        return str((form.get("fulfillment") or {}).get("status") or form.get("status"))

    def add_return(self, external_id: str, sku: str, quantity: int) -> str | None:
        """The buyer declares a return, and the parcel arrives at the seller."""
        return_id = self.sim.add_return(external_id, [(self.offer_ids[sku], quantity)], status="DELIVERED")
        return str(return_id)

    def refunds(self) -> int:
        return len(self.sim.refunds())

    def requests(self) -> int:
        return len(self.sim.requests)

    def stop(self) -> None:
        self.sim.stop()
