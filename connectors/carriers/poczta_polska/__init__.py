"""Poczta Polska: Elektroniczny Nadawca (EN WebAPI, SOAP) as a Carrier.

Registered as the entry point ``hub.connectors:poczta-polska``. Config::

    [connectors.poczta]
    kind = "poczta-polska"
    login = "..."                         # the EN WebAPI login (HTTP Basic)
    password = { env = "EN_PASSWORD" }
    # environment = "test"               # en-testwebapi (a separate test account), or service_url = "..."
    urzad_nadania = 263165               # the posting office (getUrzedyNadania) for the day's close
    # bufor_id = 12345                   # a fixed buffer; default: the active buffer described bufor_opis
    # services = ["pocztex_kurier", "paczka_pocztowa"]
    # pickup_windows = ["09:00-12:00"]   # EN has no call listing pickup windows

Services: pocztex_kurier (pocztex2021KurierType, several parcels as subPrzesylka, cash on delivery,
pickup points), pocztex_na_dzis (pocztex2021NaDzisType), paczka_pocztowa (paczkaPocztowaType, one parcel,
no COD), przesylka_pobraniowa (przesylkaPobraniowaType, one parcel with COD). Not tracking: see carrier.py.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from hub.kernel.ports.capability import Capability
from hub.platform.registry import ConnectorSpec

from .options import PocztaPolskaOptions

if TYPE_CHECKING:
    from .carrier import PocztaPolskaCarrier

KIND = "poczta-polska"


def _service(services: Any, key: str) -> Any:
    if isinstance(services, Mapping):
        return services.get(key)
    return getattr(services, key, None)


def build_carrier(name: str, options: PocztaPolskaOptions, services: Any, *,
                  sleep: Callable[[float], None] = time.sleep, now: Callable[[], Any] | None = None,
                  ) -> PocztaPolskaCarrier:
    """The carrier for one EN account. ``services.transport`` may be a requests adapter (zeep speaks
    requests) routing to a simulator; tests pass ``sleep`` and ``now``."""
    from requests.adapters import BaseAdapter

    from .carrier import PocztaPolskaCarrier
    from .client import ENClient

    adapter = _service(services, "transport")
    if adapter is not None and not isinstance(adapter, BaseAdapter):
        raise TypeError(f"{name}: the poczta-polska connector takes a requests adapter as its transport "
                        f"(zeep speaks requests), not {type(adapter).__name__}")
    client = ENClient(name, options.url, options.login, options.password.get(), timeout=options.timeout,
                      connect_timeout=options.connect_timeout, attempts=options.attempts,
                      throttle=_service(services, "throttle"), log=_service(services, "log"), adapter=adapter,
                      sleep=sleep)
    if now is None:
        return PocztaPolskaCarrier(name, client, options)
    return PocztaPolskaCarrier(name, client, options, now=now)


def _factory(name: str, options: Any, services: Any) -> PocztaPolskaCarrier:
    """Imported lazily: loading the entry point (every CLI start) must not parse the WSDL."""
    if not isinstance(options, PocztaPolskaOptions):
        options = PocztaPolskaOptions.model_validate(options)
    return build_carrier(name, options, services)


def _demo() -> Any:
    """`hub demo`: the EN simulator on loopback (imported only by the demo)."""
    from .demo import PocztaPolskaDemo

    return PocztaPolskaDemo()


SPEC = ConnectorSpec(
    kind=KIND,
    role="carrier",
    description="Poczta Polska Elektroniczny Nadawca (SOAP): Pocztex and parcels into a buffer by our guid, "
                "PDF/ZPL labels, cancel before the day's close (sendEnvelope), courier orders",
    # no TRACKING: EN has no tracking call (the Sledzenie service's WSDL is not vendored). Lookup by
    # reference: through the guid derived from it (getEnvelopeBufor, getEnvelopeContentShort)
    capabilities=frozenset({Capability.LABEL_PDF, Capability.LABEL_ZPL, Capability.PICKUP,
                            Capability.CASH_ON_DELIVERY, Capability.PICKUP_POINTS,
                            Capability.LOOKUP_BY_REFERENCE}),
    factory=_factory,
    options_model=PocztaPolskaOptions,
    default_rate_limit_per_minute=300,  # EN publishes no limit; each booking is about four calls
    extra={"demo": _demo},
)

__all__ = ["KIND", "SPEC", "PocztaPolskaOptions", "build_carrier"]
