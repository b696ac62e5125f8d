"""Prometheus metrics on localhost: queue depth by state, job durations, connector requests."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, start_http_server
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import Engine

from hub.config import MetricsSettings
from hub.models import JOB_STATES

REGISTRY = CollectorRegistry(auto_describe=True)

JOB_DURATION = Histogram(
    "hub_job_duration_seconds",
    "Time a job handler ran, by kind and outcome",
    ["kind", "outcome"],
    buckets=(0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300),
    registry=REGISTRY,
)
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


class QueueDepthCollector(Collector):
    """Reads queue depth from the database at scrape time (cached briefly)."""

    def __init__(self, engine: Engine, max_age: float = 5.0):
        self._engine = engine
        self._max_age = max_age
        self._lock = threading.Lock()
        self._cached: tuple[float, dict[str, int]] = (0.0, {})

    def collect(self) -> Iterator[Any]:
        from hub.queue import depth_by_state

        with self._lock:
            at, counts = self._cached
            if time.monotonic() - at > self._max_age:
                counts = depth_by_state(self._engine)
                self._cached = (time.monotonic(), counts)
        family = GaugeMetricFamily("hub_queue_jobs", "Jobs in the queue by state", labels=["state"])
        for state in JOB_STATES:
            family.add_metric([state], counts.get(state, 0))
        yield family


_started: dict[str, Any] = {}


def serve(settings: MetricsSettings, engine: Engine) -> Any:
    """Start the endpoint once per process; returns the server (or None when disabled)."""
    if not settings.enabled:
        return None
    if "collector" not in _started:
        collector = QueueDepthCollector(engine)
        REGISTRY.register(collector)
        _started["collector"] = collector
    else:
        _started["collector"]._engine = engine
    if "server" not in _started:
        _started["server"] = start_http_server(settings.port, addr=settings.host, registry=REGISTRY)
    return _started["server"]
