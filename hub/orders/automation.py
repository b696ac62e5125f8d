"""Automation rules (mappings/automation.toml), as sellers know BaseLinker's automatic actions:
on an event, if conditions hold, run actions; each rule says whether a failed action stops it.

    [[rules]]
    name = "paid orders go to the ERP"
    on = ["order.paid"]
    when = { channel = ["marketplace"], min_amount = "100.00", country = ["PL"] }
    do = [{ action = "send_to_erp" }, { action = "set_status", status = "processing" }]
    on_failure = "stop"          # or "continue"

Every run of a rule is recorded on the order (hub orders show ID).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, field_validator, model_validator

from hub.orders.models import ORDER_STATES
from hub.platform.mappings import register_schema

EVENTS = (
    "order.created", "order.paid", "order.cancelled", "order.status_changed", "order.oversold",
    "order.problem", "return.accepted", "return.rejected",
    "shipment.booked", "shipment.shipped", "shipment.delivered", "shipment.exception",
)
ACTIONS = ("set_status", "send_to_erp", "add_tag", "remove_tag", "book_shipment", "issue_invoice")
# actions later capabilities add; a rule naming one now is refused at load with this message
LATER_ACTIONS: dict[str, str] = {}


Amount = Annotated[Decimal, Field(ge=0, le=Decimal(10) ** 9, decimal_places=2, allow_inf_nan=False)]


class Condition(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    channel: list[str] | None = None  # connector names: checked against the config (hub.app.references)
    delivery_method: list[str] | None = None
    payment_method: list[str] | None = None
    cash_on_delivery: StrictBool | None = None
    country: list[Annotated[str, Field(pattern=r"^[A-Z]{2}$")]] | None = None  # ISO 3166 codes: "PL", "DE"
    min_amount: Amount | None = None
    max_amount: Amount | None = None
    tags_any: list[str] | None = None
    tags_none: list[str] | None = None
    invoice: StrictBool | None = None  # the buyer asked for an invoice
    business: StrictBool | None = None  # the buyer gave a tax id (NIP, EU VAT number): a B2B order

    @field_validator("min_amount", "max_amount", mode="before")
    @classmethod
    def _no_float(cls, value: Any) -> Any:
        if isinstance(value, float):
            raise ValueError('write amounts as strings, e.g. "100.00"')
        return value

    @model_validator(mode="after")
    def _a_range_some_order_is_in(self) -> Condition:
        if self.min_amount is not None and self.max_amount is not None and self.min_amount > self.max_amount:
            raise ValueError(f"min_amount {self.min_amount} is over max_amount {self.max_amount}: no order matches")
        return self

    def matches(self, facts: dict[str, Any]) -> tuple[bool, str]:
        """Whether the order's facts satisfy every condition; the reason when not."""
        checks: list[tuple[str, bool]] = []
        if self.channel is not None:
            checks.append(("channel", facts["channel"] in self.channel))
        if self.delivery_method is not None:
            checks.append(("delivery_method", facts["delivery_method"] in self.delivery_method))
        if self.payment_method is not None:
            checks.append(("payment_method", facts["payment_method"] in self.payment_method))
        if self.cash_on_delivery is not None:
            checks.append(("cash_on_delivery", facts["cash_on_delivery"] == self.cash_on_delivery))
        if self.country is not None:
            checks.append(("country", facts["country"] in self.country))
        if self.business is not None:
            checks.append(("business", facts["business"] == self.business))
        if self.min_amount is not None:
            checks.append(("min_amount", facts["amount"] >= self.min_amount))
        if self.max_amount is not None:
            checks.append(("max_amount", facts["amount"] <= self.max_amount))
        if self.tags_any is not None:
            checks.append(("tags_any", bool(set(self.tags_any) & set(facts["tags"]))))
        if self.tags_none is not None:
            checks.append(("tags_none", not set(self.tags_none) & set(facts["tags"])))
        if self.invoice is not None:
            checks.append(("invoice", facts["invoice"] == self.invoice))
        for name, ok in checks:
            if not ok:
                return False, f"{name} does not match"
        return True, ""


class Action(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    action: str
    status: str | None = None
    tag: str | None = None
    # book_shipment: a carrier connector and its service instead of the delivery mapping's (both or neither)
    carrier: str | None = Field(None, min_length=1)
    service: str | None = Field(None, min_length=1)

    @model_validator(mode="after")
    def _arguments(self) -> Action:
        if self.action in LATER_ACTIONS:
            raise ValueError(f"action {self.action!r} comes with the {LATER_ACTIONS[self.action]} capability, "
                             "which this hub does not have yet")
        if self.action not in ACTIONS:
            raise ValueError(f"unknown action {self.action!r} (actions: {', '.join(ACTIONS)})")
        if self.action == "set_status" and self.status not in ORDER_STATES:
            raise ValueError(f"set_status needs status = one of {', '.join(ORDER_STATES)}")
        if self.action in ("add_tag", "remove_tag") and not self.tag:
            raise ValueError(f"{self.action} needs tag = \"...\"")
        if self.action == "book_shipment" and (self.carrier is None) != (self.service is None):
            raise ValueError("book_shipment takes carrier and service together (or neither: the delivery mapping)")
        takes = {"set_status": {"status"}, "add_tag": {"tag"}, "remove_tag": {"tag"},
                 "book_shipment": {"carrier", "service"}}.get(self.action, set())
        ignored = sorted(self.model_fields_set - {"action"} - takes)
        if ignored:
            raise ValueError(f"{self.action} takes no {', '.join(ignored)}")
        return self


class Rule(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    name: str = Field(min_length=1)
    on: list[Literal[EVENTS]] = Field(min_length=1)  # type: ignore[valid-type]
    when: Condition = Condition()
    do: list[Action] = Field(min_length=1)
    on_failure: Literal["stop", "continue"] = "stop"
    enabled: StrictBool = True


class AutomationFile(BaseModel):
    """Schema of ``mappings/automation.toml``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    rules: list[Rule] = Field(default_factory=list)

    @field_validator("rules")
    @classmethod
    def _unique_names(cls, rules: list[Rule]) -> list[Rule]:
        names = [r.name for r in rules]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"rule names must be unique: {', '.join(dupes)}")
        return rules

    def for_event(self, event: str) -> list[Rule]:
        return [r for r in self.rules if r.enabled and event in r.on]


register_schema("automation.toml", AutomationFile)


