"""Furgonetka (furgonetka.pl, a broker) connector: shipments with InPost, DPD, Poczta Polska, DHL, UPS,
GLS, FedEx or ORLEN Paczka through one REST API account (Carrier port).

Registered as the entry point ``hub.connectors:furgonetka``. Config::

    [connectors.furgonetka]
    kind = "furgonetka"
    client_id = "..."                               # the OAuth application (Furgonetka panel > API)
    client_secret = { env = "FURGONETKA_CLIENT_SECRET" }
    username = "sklep@example.pl"                   # the Furgonetka account it books for
    password = { env = "FURGONETKA_PASSWORD" }
    # environment = "sandbox"                       # api.sandbox.furgonetka.pl; or api_url = "..."
    # services = ["inpost", "dpd", "poczta"]        # the codes mappings/delivery.toml may use
    # service_ids = { dpd = 11906596 }              # a carrier with several contracts on the account

A shipment's ``service`` is Furgonetka's carrier name; the package is booked with that carrier's service
on the account (GET /account/services), and Booking.operator names the carrier that delivers it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from hub.kernel.ports.capability import Capability
from hub.platform.registry import ConnectorSpec

from .options import FurgonetkaOptions

if TYPE_CHECKING:
    from tenacity.wait import WaitBaseT

    from .carrier import FurgonetkaCarrier

KIND = "furgonetka"


def _service(services: Any, key: str) -> Any:
    if isinstance(services, Mapping):
        return services.get(key)
    return getattr(services, key, None)


def build_carrier(name: str, options: FurgonetkaOptions, services: Any, *, sleep: Callable[[float], None] | None = None,
                  retry_wait: WaitBaseT | None = None, clock: Callable[[], float] | None = None) -> FurgonetkaCarrier:
    """The carrier for one account; tests pass ``sleep``, ``retry_wait`` and ``clock`` to run without waiting."""
    import time

    import structlog

    from .carrier import FurgonetkaCarrier
    from .client import FurgonetkaClient

    log = _service(services, "log") or structlog.get_logger("connectors.furgonetka").bind(connector=name)
    client = FurgonetkaClient(
        name, options.base_url, client_id=options.client_id, client_secret=options.client_secret,
        username=options.username, password=options.password, throttle=_service(services, "throttle"), log=log,
        transport=_service(services, "transport"), timeout=options.timeout, connect_timeout=options.connect_timeout,
        attempts=options.attempts, retry_wait=retry_wait, token_margin=options.token_margin,
        clock=clock or time.time,
    )
    return FurgonetkaCarrier(name, client, options, log=log, memory=_service(services, "memory"),
                             sleep=sleep or time.sleep)


def _factory(name: str, options: Any, services: Any) -> FurgonetkaCarrier:
    """Imported lazily: loading the entry point (every CLI start) must stay cheap."""
    if not isinstance(options, FurgonetkaOptions):
        options = FurgonetkaOptions.model_validate(options)
    return build_carrier(name, options, services)


def _demo() -> Any:
    """`hub demo`: the simulator on loopback, booking DPD and InPost (imported only by the demo)."""
    from .demo import FurgonetkaDemo

    return FurgonetkaDemo()


SPEC = ConnectorSpec(
    kind=KIND,
    role="carrier",
    description="Furgonetka (broker, REST API): packages with InPost, DPD, Poczta Polska, DHL, UPS, GLS, FedEx, "
                "ORLEN Paczka; order commands, labels (PDF/ZPL), pickups, tracking, cash on delivery",
    capabilities=frozenset({
        Capability.LABEL_PDF, Capability.LABEL_ZPL, Capability.PICKUP, Capability.TRACKING,
        Capability.CASH_ON_DELIVERY, Capability.PICKUP_POINTS, Capability.LOOKUP_BY_REFERENCE,
    }),
    factory=_factory,
    options_model=FurgonetkaOptions,
    default_rate_limit_per_minute=120,
    extra={"demo": _demo},
)

__all__ = ["KIND", "SPEC", "FurgonetkaOptions", "build_carrier"]
