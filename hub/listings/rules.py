"""The seller's pricing and stock rules per channel, as loaded from mappings/."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

from hub.listings.pricing import PricingFile
from hub.listings.stock_rules import StockFile
from hub.platform.mappings import load_all


@dataclass
class Rules:
    """The seller's pricing and stock rules, per channel (from mappings/).

    Merging a channel's overrides into the defaults builds a model; recompute asks once per
    listing, so each channel's merged rule is built once."""

    pricing: PricingFile
    stock: StockFile
    _price_rules: dict[str, Any] = field(default_factory=dict, repr=False)
    _stock_rules: dict[str, Any] = field(default_factory=dict, repr=False)

    def fingerprint(self) -> str:
        text = self.pricing.model_dump_json() + self.stock.model_dump_json()
        return hashlib.sha256(text.encode()).hexdigest()

    def price_rule(self, channel: str) -> Any:
        if channel not in self._price_rules:
            self._price_rules[channel] = self.pricing.rule_for(channel)
        return self._price_rules[channel]

    def stock_rule(self, channel: str) -> Any:
        if channel not in self._stock_rules:
            self._stock_rules[channel] = self.stock.rule_for(channel)
        return self._stock_rules[channel]


def load_rules(loaded: Any) -> Rules:
    files = load_all(loaded.settings.mappings.dir)
    return Rules(pricing=files["pricing.toml"].data, stock=files["stock.toml"].data)  # type: ignore[arg-type]
