"""``mappings/delivery.toml``: which carrier account, service and parcel template ships an order, by
the channel's delivery method. Validated at load; carrier and channel names are checked against the
config (hub.app.references) and services against the carrier (hub.shipping.service, at start).

    [templates.box]
    packaging_kg = "0.30"                  # added to the goods' weight
    length_cm = 30
    width_cm = 20
    height_cm = 15

    [templates.locker]
    packaging_kg = "0.10"
    # the first size whose weight limit the parcel fits (sizes as the carrier connector names them)
    lockers = [{ size = "small", max_kg = "5" }, { size = "medium", max_kg = "15" }, { size = "large", max_kg = "25" }]

    [default]
    carrier = "courier-main"               # a carrier connector's name in hub.toml
    service = "courier_standard"           # one of that carrier's services
    template = "box"

    [[methods]]
    channel = "marketplace-main"           # a channel connector's name
    method = "Parcel locker"               # the channel's delivery method, as its connector reports it
    carrier = "courier-main"
    service = "locker_standard"
    template = "locker"
"""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from hub.platform.mappings import register_schema

Kg = Annotated[Decimal, Field(ge=0, le=1000, decimal_places=3, allow_inf_nan=False)]
Cm = Annotated[int, Field(ge=1, le=500, strict=True)]


def _no_float(value: Any) -> Any:
    if isinstance(value, float):
        raise ValueError('write weights as strings, e.g. "0.30"')
    return value


class LockerSize(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    size: str = Field(pattern=r"^(small|medium|large)$")
    max_kg: Kg

    _floats = field_validator("max_kg", mode="before")(_no_float)


class Template(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    packaging_kg: Kg = Decimal("0")
    length_cm: Cm | None = None
    width_cm: Cm | None = None
    height_cm: Cm | None = None
    lockers: list[LockerSize] = Field(default_factory=list)
    sender: str | None = None  # a [shipping.senders] key: this template's parcels leave from there

    _floats = field_validator("packaging_kg", mode="before")(_no_float)

    @model_validator(mode="after")
    def _ascending(self) -> Template:
        limits = [s.max_kg for s in self.lockers]
        if limits != sorted(limits):
            raise ValueError("lockers go from the smallest size to the largest (max_kg ascending)")
        return self


class Route(BaseModel):
    """Where one kind of order goes: a carrier account, its service and a parcel template."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    carrier: str = Field(min_length=1)
    service: str = Field(min_length=1)
    template: str = Field(min_length=1)
    sender: str | None = None  # overrides the template's and the default sender


class Method(Route):
    channel: str = Field(min_length=1)
    method: str = Field(min_length=1)


class DeliveryFile(BaseModel):
    """Schema of ``mappings/delivery.toml``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    templates: dict[str, Template] = Field(default_factory=dict)
    default: Route | None = None
    methods: list[Method] = Field(default_factory=list)

    @model_validator(mode="after")
    def _templates_exist(self) -> DeliveryFile:
        for where, route in self.routes():
            if route.template not in self.templates:
                raise ValueError(f"{where}.template = {route.template!r}: no such template "
                                 f"(templates: {', '.join(sorted(self.templates)) or 'none'})")
        seen: set[tuple[str, str]] = set()
        for i, m in enumerate(self.methods):
            if (m.channel, m.method) in seen:
                raise ValueError(f"methods.{i}: {m.channel} / {m.method!r} is mapped twice")
            seen.add((m.channel, m.method))
        return self

    @property
    def configured(self) -> bool:
        return self.default is not None or bool(self.methods)

    def route_for(self, channel: str, delivery_method: str | None) -> Route | None:
        for m in self.methods:
            if m.channel == channel and m.method == delivery_method:
                return m
        return self.default

    def routes(self) -> list[tuple[str, Route]]:
        """Every route with where it is written (for the checks against the config and the carriers)."""
        found: list[tuple[str, Route]] = [(f"methods.{i}", m) for i, m in enumerate(self.methods)]
        return ([("default", self.default)] if self.default is not None else []) + found


register_schema("delivery.toml", DeliveryFile)
