"""NBP (Narodowy Bank Polski) exchange rates (ExchangeRateSource): the average rate of table A of the last
day before a tax point, as art. 31a ust. 1 of the VAT act asks.

Registered as the entry point ``hub.connectors:nbp``. Config::

    [connectors.nbp]
    kind = "nbp"
    # api_url = "https://api.nbp.pl/api"   # or the simulator on loopback: "http://127.0.0.1:8125/api"
    # table = "A"                          # "B": the less traded currencies (published on Wednesdays)
    # lookback_days = 14                   # the days before the tax point asked for first
    # widened_days = 31                    # asked for once when those hold no table at all
    # request_timeout = "15s"
    # attempts = 3

NBP's API needs no account or key. See ``options.NbpOptions`` for the rest; the vendor material is the digest
of api.nbp.pl cited in ``client``, ``mapping`` and ``simulator``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any

from hub.kernel.ports.capability import Capability
from hub.platform.registry import ConnectorSpec

from .options import NbpOptions

if TYPE_CHECKING:
    from tenacity.wait import WaitBaseT

    from .rates import NbpRates

KIND = "nbp"
DEFAULT_RATE_LIMIT_PER_MINUTE = 120  # NBP documents no limit; a hub asks once per currency and day


def _service(services: Any, key: str) -> Any:
    if isinstance(services, Mapping):
        return services.get(key)
    return getattr(services, key, None)


def build_rates(name: str, options: NbpOptions, services: Any, *, retry_wait: WaitBaseT | None = None,
                sleep: Callable[[float], None] | None = None,
                clock: Callable[[], datetime] | None = None) -> NbpRates:
    """The rates of one NBP connector; ``services`` gives the throttle, log and transport (a simulator's);
    tests pass ``retry_wait``, ``sleep`` and ``clock`` (aware datetimes)."""
    import structlog

    from hub.platform.ratelimit import LocalRateLimiter, Throttle

    from .client import NbpClient
    from .rates import NbpRates

    log = _service(services, "log") or structlog.get_logger("connectors.nbp").bind(connector=name)
    throttle = _service(services, "throttle") or Throttle(
        LocalRateLimiter(), f"{KIND}:{name}", float(DEFAULT_RATE_LIMIT_PER_MINUTE), 2.0)
    client = NbpClient(
        name, options.api_url, throttle=throttle, log=log, transport=_service(services, "transport"),
        timeout=options.request_timeout, connect_timeout=options.connect_timeout, attempts=options.attempts,
        retry_wait=retry_wait, sleep=sleep)
    extra: dict[str, Any] = {"clock": clock} if clock is not None else {}
    return NbpRates(name, client, options, log=log, **extra)


def _factory(name: str, options: Any, services: Any) -> NbpRates:
    """Imported lazily: loading the entry point (every CLI start) must stay cheap."""
    if not isinstance(options, NbpOptions):
        options = NbpOptions.model_validate(options)
    return build_rates(name, options, services)


def _demo() -> Any:
    """The demo's hook (imported on demand: the simulator is no part of a production start)."""
    from connectors.nbp.demo import NbpDemo

    return NbpDemo()


SPEC = ConnectorSpec(
    kind=KIND,
    role="rates",
    description="NBP exchange rates: the table A average rate of the last working day before a tax point "
                "(art. 31a of the VAT act)",
    capabilities=frozenset({Capability.EXCHANGE_RATES}),
    factory=_factory,
    options_model=NbpOptions,
    default_rate_limit_per_minute=DEFAULT_RATE_LIMIT_PER_MINUTE,
    extra={"demo": _demo},
)

__all__ = ["KIND", "SPEC", "NbpOptions", "build_rates"]
