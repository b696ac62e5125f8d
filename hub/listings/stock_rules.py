"""Available-to-sell per channel: the rules of ``mappings/stock.toml`` and the pure function that applies them.

A channel must never offer more than the seller can ship, so what it shows is computed, in order::

    on hand  = sum of the ERP stock of the warehouses the channel draws from ("*" = all)
    free     = max(0, on hand - open reservations - safety buffer)
    share    = floor(free * percent / 100)
    quantity = min(share, max_quantity)          (no max_quantity: share)

A warehouse the ERP reports negative is summed as it is (it owes goods the others must cover),
so the result is the conservative one; only the total is floored at zero.

The file has ``[defaults]`` and ``[channels.NAME]`` tables (NAME = the connector's name) that
override the defaults key by key; ``max_quantity = "none"`` clears an inherited maximum.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Annotated, Any, NamedTuple

from pydantic import BaseModel, ConfigDict, Field, StrictInt, field_validator

from hub.platform.mappings import register_schema

ALL_WAREHOUSES = "*"

Buffer = Annotated[StrictInt, Field(ge=0)]
MaxQuantity = Annotated[StrictInt, Field(ge=0)]
Percent = Annotated[StrictInt, Field(ge=1, le=100)]


def _warehouses(value: list[str] | None) -> list[str] | None:
    if value is None:
        return None
    if not value:
        raise ValueError('list at least one warehouse, or ["*"] for all of them')
    if any(not name.strip() for name in value):
        raise ValueError("a warehouse name cannot be empty")
    if ALL_WAREHOUSES in value and len(value) > 1:
        raise ValueError('"*" means every warehouse and stands alone')
    if len(set(value)) != len(value):
        raise ValueError("a warehouse is listed twice")
    return value


class _Fields(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    @field_validator("max_quantity", mode="before", check_fields=False)
    @classmethod
    def _clear(cls, value: Any) -> Any:
        return None if value == "none" else value

    @field_validator("warehouses", check_fields=False)
    @classmethod
    def _check_warehouses(cls, value: list[str] | None) -> list[str] | None:
        return _warehouses(value)


class StockRule(_Fields):
    """One channel's complete rule (the defaults with the channel's overrides applied)."""

    warehouses: list[str] = Field(default_factory=lambda: [ALL_WAREHOUSES])
    safety_buffer: Buffer = 0
    max_quantity: MaxQuantity | None = None
    percent: Percent = 100


class StockRuleOverride(_Fields):
    """A ``[channels.NAME]`` table: only the keys it sets replace the defaults."""

    warehouses: list[str] | None = None
    safety_buffer: Buffer | None = None
    max_quantity: MaxQuantity | None = None
    percent: Percent | None = None


class StockFile(BaseModel):
    """Schema of ``mappings/stock.toml``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    defaults: StockRule = StockRule()
    channels: dict[str, StockRuleOverride] = Field(default_factory=dict)

    def rule_for(self, channel: str) -> StockRule:
        """The defaults overridden key by key by ``[channels.<channel>]`` (if there is one)."""
        override = self.channels.get(channel)
        if override is None:
            return self.defaults
        merged = self.defaults.model_dump()
        merged.update({key: getattr(override, key) for key in override.model_fields_set})
        return StockRule.model_validate(merged)


register_schema("stock.toml", StockFile)


class AtsStep(NamedTuple):
    label: str
    value: int
    explanation: str


@dataclass(frozen=True)
class AtsDecision:
    quantity: int
    steps: tuple[AtsStep, ...] = field(default=())


def available_to_sell(stock_by_warehouse: Mapping[str, int], reserved: int, rule: StockRule) -> AtsDecision:
    """The quantity a channel may offer for one SKU. Pure; ``reserved`` = the SKU's open reservations."""
    if reserved < 0:
        raise ValueError(f"open reservations cannot be negative ({reserved})")
    if ALL_WAREHOUSES in rule.warehouses:
        counted = dict(stock_by_warehouse)
        where = "every warehouse"
    else:
        counted = {name: stock_by_warehouse.get(name, 0) for name in rule.warehouses}
        where = ", ".join(rule.warehouses)
    on_hand = sum(counted.values())
    detail = " + ".join(f"{name} {qty}" for name, qty in sorted(counted.items())) or "no stock rows"
    steps = [AtsStep("on hand", on_hand, f"{where}: {detail}")]
    free = max(0, on_hand - reserved - rule.safety_buffer)
    steps.append(AtsStep("free", free, f"{on_hand} - reserved {reserved} - safety buffer {rule.safety_buffer}"
                         + (", floored at 0" if on_hand - reserved - rule.safety_buffer < 0 else "")))
    share = free * rule.percent // 100
    steps.append(AtsStep("share", share, f"{free} * {rule.percent}%, rounded down"))
    quantity = share if rule.max_quantity is None else min(share, rule.max_quantity)
    steps.append(AtsStep("quantity", quantity, "no maximum" if rule.max_quantity is None
                         else f"at most {rule.max_quantity}" + (" (capped)" if quantity < share else "")))
    return AtsDecision(quantity, tuple(steps))
