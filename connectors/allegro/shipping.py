"""Ship with Allegro ("Wysyłam z Allegro", ``/shipment-management``) as a Carrier, on the login of an
Allegro account the config already has.

Registered as the entry point ``hub.connectors:allegro-shipping``. Config::

    [connectors.allegro-shipping]
    kind = "allegro-shipping"
    account = "allegro-main"                 # the [connectors.NAME] of kind "allegro" whose login it uses
    client_id = "..."                        # that account's application (the same values)
    client_secret = { env = "ALLEGRO_CLIENT_SECRET" }
    # environment = "sandbox"                # or api_url / auth_url, as the account has them
    # services = ["c3066682-97a3-42fe-9eb5-3beeccab840c"]   # else read from GET delivery-services

The tokens are the account's own row in the token store (``hub allegro login allegro-main``): one pair,
refreshed in one place (TokenStore.valid under the account's lock), whichever connector notices first.
A connector's factory sees only its own options, so the application's client id and secret are named
again here: the refresh needs them, and the client id names the rate-limit bucket, which is the account's
(``allegro:<client_id>``, the vendor limits per client id).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from connectors.allegro.options import ENVIRONMENTS
from connectors.urls import check_base_url
from hub.kernel.ports.capability import Capability
from hub.platform.config import Duration, SecretValue
from hub.platform.registry import ConnectorSpec

if TYPE_CHECKING:
    from connectors.allegro.shipping_carrier import AllegroShippingCarrier

Language = Literal["pl-PL", "en-US", "uk-UA", "sk-SK", "cs-CZ", "hu-HU"]


class AllegroShippingOptions(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    # the Allegro connector (kind "allegro") whose login this uses: its tokens, by its name
    account: str = Field(min_length=1)
    environment: Literal["production", "sandbox"] = "production"
    api_url: str | None = None
    auth_url: str | None = None
    # the account's application: the refresh of the shared pair needs it, and it names the rate-limit bucket
    client_id: str = Field(min_length=1)
    client_secret: SecretValue
    # the delivery service codes (deliveryMethodId, or deliveryMethodId:credentialsId for the seller's own
    # carrier contract) this account books; None: read from GET /shipment-management/delivery-services,
    # which Allegro deprecated (to be removed in Q1 2027): list them here to stop depending on it
    services: list[str] | None = None
    # (length, width, height) in cm of a parcel that comes with a locker template only: Allegro needs every
    # package's dimensions, e.g. template_sizes = { small = [64, 38, 8], medium = [64, 38, 19] }
    template_sizes: dict[str, tuple[int, int, int]] = Field(default_factory=dict)
    # Accept-Language of every call: the language of Allegro's error messages (an enum: "pl" is invalid)
    language: Language = "pl-PL"
    # the tracking carrier of a waybill whose shipment's carrier was not learnt at booking (notes: parcels
    # shipped through Allegro are tracked under ALLEGRO)
    tracking_carrier: str = Field("ALLEGRO", min_length=1)
    # how long one book/cancel/pickup call waits for Allegro's asynchronous command before answering
    # "not confirmed yet" (the job queue calls again and it goes on polling the same command)
    # (short: a worker thread runs its batch of jobs one after another, and a booking that waits holds the
    # batch's other jobs; the queue brings the job back soon instead)
    confirm_timeout: Duration = 2.0
    poll_interval: Duration = 1.0  # between status reads when Allegro sends no Retry-After
    # waybill -> tracking carrier, learnt at booking, is kept this long
    waybill_memory: Duration = 180 * 86400.0
    request_timeout: Duration = 30.0
    http_attempts: int = Field(3, ge=1, le=10)
    retry_backoff: Duration = 0.5
    rate_limit_block: Duration = 60.0

    @field_validator("api_url", "auth_url")
    @classmethod
    def _http_url(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is None:
            return None
        api, auth = ENVIRONMENTS["production"]
        return check_base_url(value, what="an http:// or https:// URL",
                              example=api if info.field_name == "api_url" else auth,
                              secret="the client secret and the OAuth tokens travel there")

    @field_validator("services")
    @classmethod
    def _services(cls, value: list[str] | None) -> list[str] | None:
        if value is not None and any(not s.strip() or s.strip().startswith(":") for s in value):
            raise ValueError("each service is a deliveryMethodId, or deliveryMethodId:credentialsId")
        return None if value is None else [s.strip() for s in value]

    @field_validator("template_sizes")
    @classmethod
    def _sizes(cls, value: dict[str, tuple[int, int, int]]) -> dict[str, tuple[int, int, int]]:
        for template, sizes in value.items():
            if any(size <= 0 for size in sizes):
                raise ValueError(f"template {template!r}: length, width and height are whole cm above 0")
        return value

    @property
    def api_base(self) -> str:
        return self.api_url or ENVIRONMENTS[self.environment][0]

    @property
    def auth_base(self) -> str:
        return self.auth_url or ENVIRONMENTS[self.environment][1]


def _factory(name: str, options: AllegroShippingOptions, services: Any) -> AllegroShippingCarrier:
    """Imported lazily: loading the entry point (every CLI start) must stay cheap."""
    from connectors.allegro.shipping_carrier import AllegroShippingCarrier

    return AllegroShippingCarrier(name, options, services)


def _rate_limit_key(name: str, options: Mapping[str, Any]) -> str:
    """The account's bucket: Allegro limits per client id, whichever connector calls."""
    return f"allegro:{options.get('client_id') or name}"


SPEC = ConnectorSpec(
    kind="allegro-shipping",
    role="carrier",
    description="Ship with Allegro (Wysyłam z Allegro): shipments, labels, courier pickups and tracking through "
                "/shipment-management, on an Allegro account's login",
    capabilities=frozenset({Capability.LABEL_PDF, Capability.LABEL_ZPL, Capability.PICKUP, Capability.TRACKING,
                            Capability.CASH_ON_DELIVERY, Capability.PICKUP_POINTS,
                            Capability.LOOKUP_BY_REFERENCE}),
    factory=_factory,
    options_model=AllegroShippingOptions,
    default_rate_limit_per_minute=9000,
    extra={"rate_limit_key": _rate_limit_key},
)

__all__ = ["SPEC", "AllegroShippingOptions"]
