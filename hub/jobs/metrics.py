"""The queue's metrics: job durations and queue depth by state (read at scrape time)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

from prometheus_client import Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import Engine

from hub.jobs.models import JOB_STATES
from hub.jobs.queue import depth_by_state
from hub.platform.config import MetricsSettings
from hub.platform.metrics import REGISTRY, serve

JOB_DURATION = Histogram(
    "hub_job_duration_seconds",
    "Time a job handler ran, by kind and outcome",
    ["kind", "outcome"],
    buckets=(0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300),
    registry=REGISTRY,
)


class QueueDepthCollector(Collector):
    """Reads queue depth from the database at scrape time (cached briefly)."""

    def __init__(self, engine: Engine, max_age: float = 5.0):
        self._engine = engine
        self._max_age = max_age
        self._lock = threading.Lock()
        self._cached: tuple[float, dict[str, int]] = (0.0, {})

    def collect(self) -> Iterator[Any]:
        with self._lock:
            at, counts = self._cached
            if time.monotonic() - at > self._max_age:
                counts = depth_by_state(self._engine)
                self._cached = (time.monotonic(), counts)
        family = GaugeMetricFamily("hub_queue_jobs", "Jobs in the queue by state", labels=["state"])
        for state in JOB_STATES:
            family.add_metric([state], counts.get(state, 0))
        yield family


_collector: list[QueueDepthCollector] = []


def serve_with_queue_depth(settings: MetricsSettings, engine: Engine) -> Any:
    """The endpoint with the queue-depth gauge of this engine (registered once per process)."""
    if not settings.enabled:
        return None
    if not _collector:
        _collector.append(QueueDepthCollector(engine))
        REGISTRY.register(_collector[0])
    else:
        _collector[0]._engine = engine
    return serve(settings)
