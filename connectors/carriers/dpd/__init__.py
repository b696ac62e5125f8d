"""DPD Polska carrier connector (DPDServices, SOAP object interface, zeep on the vendored WSDL).

Registered as the entry point ``hub.connectors:dpd``. Config::

    [connectors.dpd]
    kind = "dpd"
    login = "..."
    password = { env = "DPD_PASSWORD" }
    master_fid = 1495                  # the client number (numkat) DPD gave the account
    # environment = "demo"             # DPD's demo services; or service_url = "http://127.0.0.1:PORT/..."
    # sender_fid = 1495                # the sender's FID, when it is not the master FID
    # payer_type = "SENDER"            # or "THIRD_PARTY" (thirdPartyFID = master_fid)
    # label_type = "BIC3"              # or "EXTENDED"; label_variant = "RUCH" etc.

Operations used: generatePackagesNumbersV4 (book), generateSpedLabelsV4 (labels, and finding a package by
our reference), generateProtocolV2 (``DpdCarrier.protocol``: the handover protocol), getCourierOrderAvailabilityV1
(pickup windows), packagesPickupCallV4 (INSERT / CANCEL a courier). No tracking (InfoServices is a separate,
unvendored WSDL) and no parcel cancellation (DPDServices has none). ``services.transport`` may be a
``requests`` adapter (the simulator's, in tests and the demo) mounted for the service address.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from connectors.carriers.dpd.options import DpdOptions
from hub.kernel.ports.capability import Capability
from hub.platform.registry import ConnectorSpec

if TYPE_CHECKING:
    from connectors.carriers.dpd.carrier import DpdCarrier

KIND = "dpd"


def _service(services: Any, key: str) -> Any:
    if isinstance(services, Mapping):
        return services.get(key)
    return getattr(services, key, None)


def build_carrier(name: str, options: DpdOptions, services: Any, *,
                  sleep: Callable[[float], None] | None = None) -> DpdCarrier:
    """The carrier for one DPD account; tests pass ``sleep`` to retry without waiting."""
    import time

    import structlog

    from connectors.carriers.dpd.carrier import DpdCarrier
    from connectors.carriers.dpd.client import DpdClient

    log = _service(services, "log") or structlog.get_logger("connectors.dpd").bind(connector=name)
    client = DpdClient(connector=name, address=options.address, login=options.login,
                       password=options.password.get(), master_fid=options.master_fid,
                       timeout=options.request_timeout, connect_timeout=options.connect_timeout,
                       attempts=options.attempts, throttle=_service(services, "throttle"), log=log,
                       adapter=_service(services, "transport"), sleep=sleep or time.sleep)
    return DpdCarrier(name, client, options, memory=_service(services, "memory"))


def _factory(name: str, options: Any, services: Any) -> DpdCarrier:
    """Imported lazily: loading the entry point (every CLI start) must not load zeep and the WSDL."""
    if not isinstance(options, DpdOptions):
        options = DpdOptions.model_validate(options)
    return build_carrier(name, options, services)


SPEC = ConnectorSpec(
    kind=KIND,
    role="carrier",
    description="DPD Polska (DPDServices SOAP): package numbers, PDF/ZPL labels, handover protocol, courier "
                "pickup; cash on delivery, delivery to DPD Pickup points; no tracking, no parcel cancellation",
    capabilities=frozenset({Capability.LABEL_PDF, Capability.LABEL_ZPL, Capability.PICKUP,
                            Capability.CASH_ON_DELIVERY, Capability.PICKUP_POINTS,
                            Capability.LOOKUP_BY_REFERENCE}),
    factory=_factory,
    options_model=DpdOptions,
    # DPD documents no request limit; a seller's day of parcels is a few hundred calls, so stay modest
    default_rate_limit_per_minute=120,
)

__all__ = ["KIND", "SPEC", "DpdOptions", "build_carrier"]
