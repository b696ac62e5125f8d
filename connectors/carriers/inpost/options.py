"""The connector's own keys under ``[connectors.NAME]`` (kind = "inpost").

The token and the organization id come from InPost's Manager Paczek (My account > API); the sandbox has
its own manager (sandbox-manager.paczkomaty.pl) and its own tokens (shared/notes/carriers.md, "InPost ShipX").
"""

from __future__ import annotations

from datetime import time
from decimal import Decimal
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, field_validator, model_validator

from connectors.urls import check_base_url
from hub.platform.config import Duration, SecretValue

ENVIRONMENTS: dict[str, str] = {
    # https://dokumentacja-inpost.atlassian.net/wiki/spaces/PL/pages/28639247 ("API General Information")
    "production": "https://api-shipx-pl.easypack24.net",
    "sandbox": "https://sandbox-api-shipx-pl.easypack24.net",
}

# The services a seller typically books (the "Shipment sizes and services" page lists them); an account
# that has others lists its own in ``services``.
DEFAULT_SERVICES: tuple[str, ...] = (
    "inpost_locker_standard",
    "inpost_courier_standard",
    "inpost_courier_c2c",
    "inpost_courier_express_1000",
    "inpost_courier_express_1200",
    "inpost_courier_express_1700",
)
# "The attribute [insurance] is required for the following services: inpost_courier_standard,
# inpost_courier_express_1000, inpost_courier_express_1200 ..." (Creating a shipment in the simplified mode)
INSURANCE_REQUIRED: tuple[str, ...] = (
    "inpost_courier_standard",
    "inpost_courier_express_1000",
    "inpost_courier_express_1200",
    "inpost_courier_express_1700",
)
_DAY_NAMES = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
WEEKDAYS = {**{name[:3]: n for n, name in enumerate(_DAY_NAMES)}, **{name: n for n, name in enumerate(_DAY_NAMES)}}
# custom_attributes.sending_method values ShipX knows; dispatch_order = a courier collects (our pickups)
SendingMethod = Literal["dispatch_order", "parcel_locker", "pok", "courier_pok", "branch", "any_point", "pop"]


class InPostOptions(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    environment: Literal["production", "sandbox"] = "production"
    api_url: str | None = None  # overrides the environment's address, e.g. the simulator on loopback
    token: SecretValue  # the ShipX API token (a Bearer token)
    organization_id: StrictInt = Field(ge=1)
    # the service codes mappings/delivery.toml may use (those the organization has under contract)
    services: tuple[str, ...] = Field(DEFAULT_SERVICES, min_length=1)
    insurance_required_services: tuple[str, ...] = INSURANCE_REQUIRED
    # declared value sent for those services when the request carries none (None: such a request is refused)
    default_insurance: Decimal | None = Field(None, gt=0)
    sending_method: SendingMethod = "dispatch_order"
    dropoff_point: str | None = None  # the locker the seller drops parcels into (sending_method parcel_locker)
    zpl_dpi300: StrictBool = False  # ZPL labels at 300 dpi (type=dpi300; locker and C2C services only)
    request_timeout: Duration = 30.0
    connect_timeout: Duration = 10.0
    attempts: StrictInt = Field(3, ge=1, le=10)  # tries per idempotent request on 5xx/timeouts
    # ShipX confirms a shipment asynchronously: book() reads it this many times, this far apart, then hands
    # the job back to the queue (RetryableError) to come back after ``confirm_retry_after``
    # (short: a worker thread runs its batch of jobs one after another, and a booking that waits holds the
    # batch's other jobs; the queue brings the job back soon instead)
    confirm_polls: StrictInt = Field(2, ge=0, le=60)
    confirm_poll_interval: Duration = 0.5
    confirm_retry_after: Duration = 3.0
    # finding a shipment or a dispatch order by our reference: how far back, and how many pages of 100
    lookup_days: StrictInt = Field(30, ge=1, le=365)
    lookup_max_pages: StrictInt = Field(10, ge=1, le=100)
    # ShipX has no pickup-window API: the window a courier is asked for is configured here (local time)
    pickup_window_start: time = time(10, 0)
    pickup_window_end: time = time(16, 0)
    # Monday = 0, or the days' names: ["mon", "tue", "wed", "thu", "fri"]
    pickup_weekdays: tuple[StrictInt, ...] = (0, 1, 2, 3, 4)
    pickup_same_day_cutoff: time = time(12, 0)  # after this, today offers no window
    pickup_skip_holidays: StrictBool = True  # Polish public holidays offer no window
    # the contact a dispatch order names when the pickup address has none
    pickup_contact_phone: str | None = None
    pickup_contact_email: str | None = None
    tracking_batch_size: StrictInt = Field(1, ge=1, le=50)  # numbers per track() call (one request each)
    status_language: Literal["pl_PL", "en_GB"] = "pl_PL"  # of the status titles shown with tracking events

    @field_validator("api_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        return check_base_url(value, what="an http:// or https:// URL", example=ENVIRONMENTS["production"],
                              secret="the API token travels there")

    @field_validator("pickup_weekdays", mode="before")
    @classmethod
    def _weekday_names(cls, days: object) -> object:
        """"mon".."sun" or the whole English names (any case) stand for 0..6."""
        if not isinstance(days, list | tuple):
            return days
        out: list[object] = []
        for day in days:
            if isinstance(day, str):
                name = day.strip().lower()
                if name not in WEEKDAYS:
                    raise ValueError(f"{day!r} is not a weekday: mon, tue, wed, thu, fri, sat, sun (or 0 to 6)")
                day = WEEKDAYS[name]
            out.append(day)
        return out

    @field_validator("pickup_weekdays")
    @classmethod
    def _weekdays(cls, days: tuple[int, ...]) -> tuple[int, ...]:
        if any(not 0 <= d <= 6 for d in days):
            raise ValueError("weekdays are 0 (Monday) to 6 (Sunday)")
        return tuple(sorted(set(days)))

    @model_validator(mode="after")
    def _window_order(self) -> InPostOptions:
        if self.pickup_window_end <= self.pickup_window_start:
            raise ValueError("pickup_window_end must be later than pickup_window_start")
        return self

    @property
    def api_base(self) -> str:
        return self.api_url or ENVIRONMENTS[self.environment]
