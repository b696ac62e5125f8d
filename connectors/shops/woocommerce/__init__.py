"""WooCommerce (REST API v3) connector: SalesChannel, OrderChannel and ReturnsChannel.

Config (``[connectors.NAME]``, kind = "woocommerce")::

    base_url = "https://sklep.example.pl"     # the shop's address, without /wp-json
    consumer_key = "ck_..."
    consumer_secret = { env = "WOO_SECRET" }  # REST API key with read/write access
    timeout = "60s"                            # optional: read/write timeout per request
    connect_timeout = "10s"                    # optional
    attempts = 3                               # optional: tries per request on 5xx/timeouts
    currency = "PLN"                           # optional: the shop's currency
    api_refund = false                         # optional: true lets the payment gateway send refunds back;
                                               # false only records them in the shop (the seller pays back)
    nip_meta_keys = ["_billing_nip", "nip"]    # optional: order meta keys holding the buyer's NIP, tried
                                               # in order (default: order_mapping.DEFAULT_NIP_META_KEYS)
    allow_shop_sales = false                   # optional: true when the seller runs promotions in the shop:
                                               # a price push then keeps a sale price set there; false
                                               # ends it (sale_price and its dates cleared), so buyers
                                               # pay the hub's price. With true, the hub sets and
                                               # reconciles the regular price, and a sale the seller
                                               # sets may go under the pricing floor: their choice.

The keys travel as HTTP Basic auth, so https is required except on loopback.
Orders are polled (``GET /orders?modified_after=...&orderby=modified``), which
needs a WooCommerce recent enough to know ``modified_after`` and
``orderby=modified``; order statuses are Woo's slugs (pending, processing,
on-hold, completed, cancelled, refunded, failed, and any a plugin adds).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

import structlog
from pydantic import BaseModel, ConfigDict, Field, StrictBool, field_validator
from tenacity.wait import WaitBaseT

from connectors.urls import check_base_url
from hub.kernel.money import currency_code
from hub.kernel.ports.capability import Capability
from hub.platform.config import Duration, SecretValue
from hub.platform.registry import ConnectorSpec

from .channel import WooCommerceChannel
from .client import WooClient
from .order_mapping import DEFAULT_NIP_META_KEYS
from .schema import BATCH_LIMIT

KIND = "woocommerce"


class WooCommerceOptions(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    base_url: str
    consumer_key: str = Field(min_length=1)
    consumer_secret: SecretValue
    timeout: Duration = 60.0
    connect_timeout: Duration = 10.0
    attempts: int = Field(3, ge=1, le=10)
    currency: str = "PLN"  # the shop's currency (WooCommerce > Settings > General), an ISO 4217 code
    api_refund: StrictBool = False
    nip_meta_keys: tuple[str, ...] = Field(DEFAULT_NIP_META_KEYS, min_length=1)
    allow_shop_sales: StrictBool = False

    @field_validator("currency")
    @classmethod
    def _iso_4217(cls, value: str) -> str:
        return currency_code(value)

    @field_validator("nip_meta_keys")
    @classmethod
    def _meta_keys(cls, keys: tuple[str, ...]) -> tuple[str, ...]:
        cleaned = tuple(key.strip() for key in keys)
        if any(not key for key in cleaned):
            raise ValueError("a NIP meta key cannot be empty")
        return cleaned

    @field_validator("base_url")
    @classmethod
    def _shop_address(cls, url: str) -> str:
        address = check_base_url(url, what="the shop's address", example="https://sklep.example.pl",
                                 secret="the consumer key and secret travel as HTTP Basic auth")
        if "/wp-json" in urlsplit(address).path:
            raise ValueError("give the shop's address without /wp-json (the connector adds /wp-json/wc/v3)")
        return address


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
    return WooCommerceChannel(name, client, currency=options.currency, batch_size=BATCH_LIMIT,
                              api_refund=options.api_refund, nip_meta_keys=options.nip_meta_keys,
                              allow_shop_sales=options.allow_shop_sales)


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
    description="WooCommerce shop (REST API v3): products and variations by SKU, batch stock and price; "
                "orders polled by modification time, order status, refunds",
    capabilities=frozenset({
        Capability.LISTINGS_READ, Capability.BATCH_STOCK, Capability.BATCH_PRICE,
        Capability.ORDERS, Capability.ORDER_STATUS, Capability.TRACKING_PUSH, Capability.RETURNS,
        Capability.REFUNDS,
    }),
    factory=_factory,
    options_model=WooCommerceOptions,
    default_rate_limit_per_minute=300,
    push_batch_size=BATCH_LIMIT,
    extra={"demo": _demo},
)

__all__ = ["KIND", "SPEC", "WooCommerceChannel", "WooCommerceOptions", "build_channel"]
