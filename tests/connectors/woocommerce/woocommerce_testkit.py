"""Test kit for the WooCommerce connector: schema checks, a checking transport, wiring helpers."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import httpx
import jsonschema
import structlog
from jsonschema.exceptions import best_match

from connectors.shops.woocommerce import WooCommerceChannel
from connectors.shops.woocommerce.client import API_PREFIX
from connectors.shops.woocommerce.schema import schema_for
from hub.platform.config import ConnectorSettings
from hub.platform.connectors import Services
from hub.platform.ratelimit import LocalRateLimiter, Throttle

KEY, SECRET = "ck_3f1c0de", "cs_9b8a7e6d5c"
BASE_URL = "https://sklep.example.pl"


def check(schema: dict[str, Any], instance: Any, what: str) -> None:
    """Assert that ``instance`` fits ``schema``, naming the deepest offending field."""
    validator = jsonschema.Draft202012Validator(schema, format_checker=jsonschema.FormatChecker())
    worst = best_match(validator.iter_errors(instance))
    if worst is not None:
        where = "/".join(map(str, worst.absolute_path)) or "(root)"
        raise AssertionError(f"{what} breaks the schema at {where}: {worst.message}")


def check_request(request: httpx.Request) -> None:
    path = request.url.path.removeprefix(API_PREFIX)
    schemas = schema_for(request.method, path)
    assert schemas is not None, f"the connector called an endpoint without a schema: {request.method} {path}"
    if request.method == "GET":
        check(schemas[0], dict(request.url.params), f"query of GET {path}")
    else:
        check(schemas[0], json.loads(request.content), f"body of {request.method} {path}")


class CheckingTransport(httpx.BaseTransport):
    """Outermost transport: validates what the connector sends and keeps a copy."""

    def __init__(self, inner: httpx.BaseTransport):
        self.inner = inner
        self.sent: list[httpx.Request] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        check_request(request)
        self.sent.append(request)
        return self.inner.handle_request(request)


@dataclass
class Sleeps:
    """Stands in for time.sleep in the throttle: records instead of waiting."""

    calls: list[float] = field(default_factory=list)

    def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)


@dataclass
class Wired:
    channel: WooCommerceChannel
    transport: CheckingTransport
    throttle: Throttle
    sleeps: Sleeps
    limiter: LocalRateLimiter


def services(name: str, throttle: Throttle, transport: httpx.BaseTransport | None) -> Services:
    return Services(name=name, engine=None, tokens=None, throttle=throttle,  # type: ignore[arg-type]
                    settings=ConnectorSettings(kind="woocommerce"), transport=transport,
                    log=structlog.get_logger("connectors.woocommerce").bind(connector=name))
