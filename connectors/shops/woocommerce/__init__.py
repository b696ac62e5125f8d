"""WooCommerce (REST API v3) connector: SalesChannel.

Config (``[connectors.NAME]``, kind = "woocommerce")::

    base_url = "https://sklep.example.pl"     # the shop's address, without /wp-json
    consumer_key = "ck_..."
    consumer_secret = { env = "WOO_SECRET" }  # REST API key with read/write access
    timeout = "60s"                            # optional: read/write timeout per request
    connect_timeout = "10s"                    # optional
    attempts = 3                               # optional: tries per request on 5xx/timeouts
    currency = "PLN"                           # optional: the shop's currency

The keys travel as HTTP Basic auth, so https is required except on loopback.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

import structlog
from pydantic import BaseModel, ConfigDict, Field, field_validator
from tenacity.wait import WaitBaseT

from hub.config import Duration, SecretValue
from hub.ports import Capability
from hub.registry import ConnectorSpec

from .channel import WooCommerceChannel
from .client import WooClient
from .schema import BATCH_LIMIT

KIND = "woocommerce"


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class WooCommerceOptions(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    base_url: str
    consumer_key: str = Field(min_length=1)
    consumer_secret: SecretValue
    timeout: Duration = 60.0
    connect_timeout: Duration = 10.0
    attempts: int = Field(3, ge=1, le=10)
    currency: str = Field("PLN", pattern=r"^[A-Z]{3}$")

    @field_validator("base_url")
    @classmethod
    def _shop_address(cls, url: str) -> str:
        parts = urlsplit(url.strip())
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("expected the shop's address, e.g. https://sklep.example.pl")
        if parts.query or parts.fragment:
            raise ValueError("the shop's address takes no query string or fragment")
        if "/wp-json" in parts.path:
            raise ValueError("give the shop's address without /wp-json (the connector adds /wp-json/wc/v3)")
        if parts.scheme == "http" and not _is_loopback(parts.hostname):
            raise ValueError("https is required: the consumer key and secret travel as HTTP Basic auth")
        return url.strip().rstrip("/")


def _service(services: Any, key: str) -> Any:
    if isinstance(services, Mapping):
        return services.get(key)
    return getattr(services, key, None)


def build_channel(
    name: str, options: WooCommerceOptions, services: Any, *, retry_wait: WaitBaseT | None = None,
) -> WooCommerceChannel:
    """The channel for one shop; tests pass ``retry_wait`` to retry without sleeping."""
    log = _service(services, "log") or structlog.get_logger("connectors.woocommerce").bind(connector=name)
    client = WooClient(
        name, options.base_url, options.consumer_key, options.consumer_secret,
        throttle=_service(services, "throttle"), log=log, transport=_service(services, "transport"),
        timeout=options.timeout, connect_timeout=options.connect_timeout, attempts=options.attempts,
        retry_wait=retry_wait,
    )
    return WooCommerceChannel(name, client, currency=options.currency, batch_size=BATCH_LIMIT)


def _factory(name: str, options: Any, services: Any) -> WooCommerceChannel:
    if not isinstance(options, WooCommerceOptions):
        options = WooCommerceOptions.model_validate(options)
    return build_channel(name, options, services)


def _demo() -> Any:
    """`hub demo`: the simulator seeded with the demo catalogue (imported only by the demo)."""
    from connectors.shops.woocommerce.demo import WooDemo

    return WooDemo()


SPEC = ConnectorSpec(
    kind=KIND,
    role="channel",
    description="WooCommerce shop (REST API v3): products and variations by SKU, batch stock and price",
    capabilities=frozenset({Capability.LISTINGS_READ, Capability.BATCH_STOCK, Capability.BATCH_PRICE}),
    factory=_factory,
    options_model=WooCommerceOptions,
    default_rate_limit_per_minute=300,
    push_batch_size=BATCH_LIMIT,
    extra={"demo": _demo},
)

__all__ = ["KIND", "SPEC", "WooCommerceChannel", "WooCommerceOptions", "build_channel"]
