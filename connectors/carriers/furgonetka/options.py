"""The connector's own keys under ``[connectors.NAME]`` (kind = "furgonetka").

Hosts: Furgonetka's own WordPress plugin (wordpress.org plugin "furgonetka" 1.9.7,
admin/class-furgonetka-admin.php: API_REST_URL / TEST_API_REST_URL) names https://api.furgonetka.pl and
https://api.sandbox.furgonetka.pl; the sandbox has its own accounts and OAuth applications.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from connectors.urls import check_base_url
from hub.platform.config import Duration, SecretValue

ENVIRONMENTS: dict[str, str] = {
    "production": "https://api.furgonetka.pl",
    "sandbox": "https://api.sandbox.furgonetka.pl",
}
# Furgonetka's carrier names ("service" in /account/services and on a package); the hub's delivery
# mapping names one of these as a shipment's service. (u) from Kwarcek's client (account/service-command/
# {dhl,dpd,fedex,gls,inpost,orlen,poczta,ups}) and commerce-link's FurgonetkaCarrierServices.
DEFAULT_SERVICES: tuple[str, ...] = ("inpost", "dpd", "poczta", "dhl", "ups", "gls", "fedex", "orlen")


class FurgonetkaOptions(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    environment: Literal["production", "sandbox"] = "production"
    api_url: str | None = None  # overrides the environment's host (e.g. the simulator)
    # the OAuth application (Furgonetka panel > Integracje > API) and the account it acts for
    client_id: str = Field(min_length=1)
    client_secret: SecretValue
    username: str = Field(min_length=1)  # the Furgonetka account's e-mail
    password: SecretValue
    # the service codes the delivery mapping may use; each must be a carrier the account has
    services: tuple[str, ...] = Field(DEFAULT_SERVICES, min_length=1)
    # service code -> the account's service_id, when the account has several contracts for one carrier
    # (otherwise the first /account/services entry of that carrier is used)
    service_ids: dict[str, int] = Field(default_factory=dict)
    timeout: Duration = 30.0
    connect_timeout: Duration = 10.0
    attempts: int = Field(3, ge=1, le=10)
    # order, pickup and cancel commands run asynchronously: how often book() asks within one job before
    # handing the job back to the queue, and how long it waits between the questions
    # (short: a worker thread runs its batch of jobs one after another, and a booking that waits holds the
    # batch's other jobs; the queue brings the job back soon instead)
    confirm_polls: int = Field(2, ge=1, le=60)
    confirm_interval: Duration = 0.5
    # finding a package by our reference or a tracking number pages through the newest packages: at most
    # this many pages of 100
    lookup_pages: int = Field(10, ge=1, le=200)
    # the access token is renewed this long before it expires
    token_margin: Duration = 300.0
    tracking_batch_size: int = Field(20, ge=1, le=100)

    @field_validator("api_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        return check_base_url(value, what="an http:// or https:// URL", example=ENVIRONMENTS["production"],
                              secret="the client secret, the account's password and the tokens travel there")

    @field_validator("services")
    @classmethod
    def _codes(cls, codes: tuple[str, ...]) -> tuple[str, ...]:
        cleaned = tuple(code.strip().lower() for code in codes)
        if any(not code for code in cleaned):
            raise ValueError("a service code cannot be empty")
        return cleaned

    @property
    def base_url(self) -> str:
        return self.api_url or ENVIRONMENTS[self.environment]
