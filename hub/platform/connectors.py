"""Connector instances for one process, built once from the config and the registry.

A connector's factory gets ``(name, options, services)``: its validated
options and the spine's services (database, token store, rate-limit throttle,
log), plus an optional httpx transport that tests and the demo use to route
the connector's HTTP to an in-process simulator.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine

from hub.platform import registry
from hub.platform.config import ConnectorSettings, LoadedConfig
from hub.platform.credentials import TokenStore
from hub.platform.logs import get_logger
from hub.platform.memory import Memory
from hub.platform.ratelimit import RateLimiter, Throttle, make_rate_limiter, throttle_for


@dataclass(frozen=True)
class Services:
    name: str
    engine: Engine
    tokens: TokenStore
    throttle: Throttle
    settings: ConnectorSettings
    transport: Any | None  # httpx.BaseTransport routing to a simulator, or None for the real network
    log: Any
    memory: Memory | None = None  # what the connector learnt from its vendor, kept across restarts


class Connectors:
    def __init__(
        self,
        loaded: LoadedConfig,
        engine: Engine,
        *,
        transports: Mapping[str, Any] | None = None,
        limiter: RateLimiter | None = None,
    ):
        self.loaded = loaded
        self.engine = engine
        self.transports = dict(transports or {})
        self.limiter = limiter or make_rate_limiter(engine)
        self.tokens = TokenStore(engine)
        self._built: dict[str, Any] = {}
        self._lock = threading.Lock()

    def names(self, role: str | None = None) -> list[str]:
        out = []
        for name, conn in sorted(self.loaded.settings.connectors.items()):
            spec = registry.get(conn.kind)
            if conn.enabled and spec is not None and (role is None or spec.role == role):
                out.append(name)
        return out

    def spec(self, name: str) -> registry.ConnectorSpec:
        conn = self.loaded.settings.connectors[name]
        spec = registry.get(conn.kind)
        if spec is None:
            raise KeyError(f"connector {name}: unknown kind {conn.kind!r}")
        return spec

    def throttle(self, name: str) -> Throttle:
        conn = self.loaded.settings.connectors[name]
        spec = self.spec(name)
        key_fn = spec.extra.get("rate_limit_key")
        if conn.rate_limit_key is None and callable(key_fn):  # e.g. one bucket per vendor client id
            conn = conn.model_copy(update={"rate_limit_key": key_fn(name, conn.options())})
        return throttle_for(self.limiter, name, conn, spec.default_rate_limit_per_minute)

    def get(self, name: str) -> Any:
        with self._lock:
            if name not in self._built:
                conn = self.loaded.settings.connectors[name]
                spec = self.spec(name)
                services = Services(
                    name=name, engine=self.engine, tokens=self.tokens, throttle=self.throttle(name),
                    settings=conn, transport=self.transports.get(name),
                    log=get_logger(f"connectors.{conn.kind}").bind(connector=name),
                    memory=Memory(self.engine, name),
                )
                self._built[name] = spec.factory(name, registry.options_for(name, conn, self.loaded.environ), services)
            return self._built[name]

    def close(self) -> None:
        with self._lock:
            for instance in self._built.values():
                close = getattr(instance, "close", None)
                if callable(close):
                    close()
            self._built.clear()
