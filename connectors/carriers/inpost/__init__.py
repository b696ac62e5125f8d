"""InPost ShipX connector (Carrier): locker and courier shipments, labels, dispatch orders, tracking.

Registered as the entry point ``hub.connectors:inpost``. Config::

    [connectors.inpost]
    kind = "inpost"
    token = { env = "INPOST_TOKEN" }      # Manager Paczek > My account > API
    organization_id = 12345
    # environment = "sandbox"             # or api_url = "http://127.0.0.1:8123" (the simulator)
    # services = ["inpost_locker_standard", "inpost_courier_standard"]
    # pickup_window_start = 10:00:00      # ShipX has no pickup-window API: the window asked for
    # pickup_window_end = 16:00:00

See ``options.InPostOptions`` for the rest. The vendor material is shared/notes/carriers.md ("InPost ShipX")
and InPost's documentation pages cited in ``mapping`` and ``simulator``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from hub.kernel.ports.capability import Capability
from hub.platform.registry import ConnectorSpec

from .options import InPostOptions

if TYPE_CHECKING:
    from tenacity.wait import WaitBaseT

    from .carrier import InPostCarrier

KIND = "inpost"


def _service(services: Any, key: str) -> Any:
    if isinstance(services, Mapping):
        return services.get(key)
    return getattr(services, key, None)


def build_carrier(name: str, options: InPostOptions, services: Any, *, retry_wait: WaitBaseT | None = None,
                  sleep: Any = None, clock: Any = None) -> InPostCarrier:
    """The carrier for one ShipX organization; tests pass ``retry_wait``, ``sleep`` and ``clock``."""
    import structlog

    from .carrier import InPostCarrier
    from .client import ShipXClient

    log = _service(services, "log") or structlog.get_logger("connectors.inpost").bind(connector=name)
    client = ShipXClient(
        name, options.api_base, options.token, throttle=_service(services, "throttle"), log=log,
        transport=_service(services, "transport"), timeout=options.request_timeout,
        connect_timeout=options.connect_timeout, attempts=options.attempts, retry_wait=retry_wait)
    extra: dict[str, Any] = {}
    if sleep is not None:
        extra["sleep"] = sleep
    if clock is not None:
        extra["clock"] = clock
    return InPostCarrier(name, client, options, log=log, **extra)


def _factory(name: str, options: Any, services: Any) -> InPostCarrier:
    """Imported lazily: loading the entry point (every CLI start) must stay cheap."""
    if not isinstance(options, InPostOptions):
        options = InPostOptions.model_validate(options)
    return build_carrier(name, options, services)


def _demo() -> Any:
    """`hub demo`: the ShipX simulator on loopback (imported only by the demo)."""
    from .demo import InPostDemo

    return InPostDemo()


SPEC = ConnectorSpec(
    kind=KIND,
    role="carrier",
    description="InPost ShipX: locker and courier shipments (asynchronous confirmation), PDF/ZPL labels, "
                "dispatch orders (courier pickups), tracking, cash on delivery",
    capabilities=frozenset({
        Capability.LABEL_PDF, Capability.LABEL_ZPL, Capability.PICKUP, Capability.TRACKING,
        Capability.CASH_ON_DELIVERY, Capability.PICKUP_POINTS, Capability.LOOKUP_BY_REFERENCE,
    }),
    factory=_factory,
    options_model=InPostOptions,
    default_rate_limit_per_minute=300,
    extra={"demo": _demo},
)

__all__ = ["KIND", "SPEC", "InPostOptions", "build_carrier"]
