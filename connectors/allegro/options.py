"""The connector's own keys under ``[connectors.NAME]`` (kind = "allegro")."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from connectors.urls import check_base_url
from hub.platform.config import Duration, SecretValue

ENVIRONMENTS: dict[str, tuple[str, str]] = {
    # environment: (REST API base, OAuth base) -- sandbox apps and tokens are separate from production
    "production": ("https://api.allegro.pl", "https://allegro.pl"),
    "sandbox": ("https://api.allegro.pl.allegrosandbox.pl", "https://allegro.pl.allegrosandbox.pl"),
}


class AllegroOptions(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    environment: Literal["production", "sandbox"] = "production"
    # override the environment's hosts, e.g. to point at the simulator
    api_url: str | None = None
    auth_url: str | None = None
    client_id: str = Field(min_length=1)
    client_secret: SecretValue
    # batch commands: how often to read a command's report, and how long one job waits for it
    command_poll_interval: Duration = 2.0
    command_timeout: Duration = 300.0
    request_timeout: Duration = 30.0
    # 5xx and timeouts: attempts per request (tenacity), first backoff
    http_attempts: int = Field(3, ge=1, le=10)
    retry_backoff: Duration = 0.5
    # a 429 blocks the client id for a minute (longer if we keep calling); used when no Retry-After
    rate_limit_block: Duration = 60.0
    # how old the known ended/inactive offer list may be before a push re-reads it
    status_max_age: Duration = 600.0
    # unsigned offers (no external.id) are bound by EAN, read from the offer's product: at most this
    # many lookups per listings read (the rest wait for the next read; 0 turns the lookups off), and
    # how long a looked-up EAN is trusted before it is read again
    ean_lookups_per_read: int = Field(2000, ge=0)
    ean_max_age: Duration = 86400.0
    # orders: a journal read naming at least this many orders lists the changed checkout forms (100 per
    # request) instead of reading each one (1 request per order); 0 reads each one. At 9,000 requests a
    # minute per client id, 10,000 single reads alone would take over a minute.
    order_prefetch_min: int = Field(10, ge=0)
    # most journal events one order_events() call returns (the rest come with the next poll), so one
    # intake transaction stays bounded after a long outage
    order_events_max: int = Field(50_000, ge=1000)
    # customer returns have no journal: every poll also re-reads the returns created this long ago or later,
    # for their status changes (and the first poll reads them as its start)
    returns_window: Duration = 30 * 86400.0

    @field_validator("api_url", "auth_url")
    @classmethod
    def _http_url(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is None:
            return None
        api, auth = ENVIRONMENTS["production"]
        return check_base_url(value, what="an http:// or https:// URL",
                              example=api if info.field_name == "api_url" else auth,
                              secret="the client secret and the OAuth tokens travel there")

    @property
    def api_base(self) -> str:
        return self.api_url or ENVIRONMENTS[self.environment][0]

    @property
    def auth_base(self) -> str:
        return self.auth_url or ENVIRONMENTS[self.environment][1]
