"""Prometheus metrics on localhost: the registry, connector requests and errors, the endpoint."""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry, Counter, start_http_server

from hub.platform.config import MetricsSettings

REGISTRY = CollectorRegistry(auto_describe=True)


CONNECTOR_REQUESTS = Counter(
    "hub_connector_requests_total",
    "Requests a connector sent, by connector and outcome (HTTP status class or error)",
    ["connector", "outcome"],
    registry=REGISTRY,
)


CONNECTOR_ERRORS = Counter(
    "hub_connector_errors_total",
    "Connector errors, by connector and kind (timeout, 429, 5xx, 4xx, auth)",
    ["connector", "error"],
    registry=REGISTRY,
)


def connector_request(connector: str, outcome: str, error: str | None = None) -> None:
    """Connectors report each request here (outcome e.g. 2xx, 4xx, 5xx, timeout)."""
    CONNECTOR_REQUESTS.labels(connector, outcome).inc()
    if error:
        CONNECTOR_ERRORS.labels(connector, error).inc()


_started: dict[str, Any] = {}


def serve(settings: MetricsSettings) -> Any:
    """Start the endpoint once per process; returns the server (or None when disabled)."""
    if not settings.enabled:
        return None
    if "server" not in _started:
        _started["server"] = start_http_server(settings.port, addr=settings.host, registry=REGISTRY)
    return _started["server"]
