"""The seller's order rules (automation and status maps, from mappings/), and how intake learns
which SKU a channel's offer sells.

The offer bindings are the listings' (they bind offers to SKUs); orders do not import the listings,
so the composition root hands intake the listings' look-up as ``offer_skus``.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from hub.orders.automation import AutomationFile
from hub.orders.status import OrderStatusFile, StatusMap
from hub.platform.mappings import load_all

# (session, channel, offer ids) -> {offer id: SKU or None} for the offers the channel has bound
OfferSkus = Callable[[Session, str, Collection[str]], Mapping[str, str | None]]


@dataclass
class OrderRules:
    automation: AutomationFile
    status_maps: OrderStatusFile
    kinds: dict[str, str]  # connector name -> kind
    offer_skus: OfferSkus

    def status_map(self, channel: str) -> StatusMap:
        return self.status_maps.for_channel(channel, self.kinds.get(channel, ""))


def order_rules(loaded: Any, offer_skus: OfferSkus) -> OrderRules:
    files = load_all(loaded.settings.mappings.dir)
    kinds = {name: conn.kind for name, conn in loaded.settings.connectors.items()}
    return OrderRules(automation=files["automation.toml"].data,  # type: ignore[arg-type]
                      status_maps=files["order_status.toml"].data,  # type: ignore[arg-type]
                      kinds=kinds, offer_skus=offer_skus)
