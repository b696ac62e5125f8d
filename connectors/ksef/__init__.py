"""KSeF connector (EInvoicing): FA(3) invoices sent to the Ministry of Finance's national e-invoicing system
(KSeF API 2.0) in online sessions, or in batch sessions for a backlog (``open_batch``/``finish_batch``), their
KSeF numbers and their UPOs.

Registered as the entry point ``hub.connectors:ksef``. Config::

    [connectors.ksef]
    kind = "ksef"
    nip = "5260250274"                    # the seller's NIP: the context the hub authenticates in
    token = { env = "KSEF_TOKEN" }        # a KSeF token with InvoiceWrite (KSeF application > Tokeny)
    # environment = "test"                # "test", "demo" or "production" (the default)
    # api_url = "http://127.0.0.1:8123"   # instead of the environment: the simulator on loopback
    # verification_timeout = "3s"         # invoice_status waits this long for KSeF's verdict
    # batch_part_bytes = 100000000        # a batch's archive is cut into parts this big (KSeF's limit)

    [invoicing]
    ksef = "ksef"

See ``options.KsefOptions`` for the rest. The vendor material is shared/specs/ksef/ (open-api.json and the
Ministry's documents), cited in each module; ``simulator`` is a KSeF built from it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from hub.kernel.ports.capability import Capability
from hub.platform.registry import ConnectorSpec

from .options import KsefOptions

if TYPE_CHECKING:
    from collections.abc import Callable
    from datetime import datetime

    from tenacity.wait import WaitBaseT

    from .einvoicing import KsefEInvoicing

KIND = "ksef"


def _service(services: Any, key: str) -> Any:
    if isinstance(services, Mapping):
        return services.get(key)
    return getattr(services, key, None)


def build_einvoicing(name: str, options: KsefOptions, services: Any, *, retry_wait: WaitBaseT | None = None,
                     sleep: Any = None, clock: Callable[[], datetime] | None = None) -> KsefEInvoicing:
    """The port for one seller's KSeF; tests pass ``retry_wait``, ``sleep`` and ``clock``."""
    import structlog

    from .client import KsefClient
    from .einvoicing import KsefEInvoicing

    log = _service(services, "log") or structlog.get_logger("connectors.ksef").bind(connector=name)
    extra: dict[str, Any] = {}
    if sleep is not None:
        extra["sleep"] = sleep
    if clock is not None:
        extra["clock"] = clock
    client = KsefClient(
        name, options.api_base, options.nip, options.token, throttle=_service(services, "throttle"), log=log,
        transport=_service(services, "transport"), timeout=options.request_timeout,
        connect_timeout=options.connect_timeout, attempts=options.attempts, retry_wait=retry_wait,
        auth_timeout=options.auth_timeout, auth_poll_interval=options.auth_poll_interval,
        refresh_margin=options.token_refresh_margin, **extra)
    return KsefEInvoicing(name, client, options, log=log, **({"sleep": sleep} if sleep is not None else {}))


def _factory(name: str, options: Any, services: Any) -> KsefEInvoicing:
    """Imported lazily: loading the entry point (every CLI start) must stay cheap."""
    if not isinstance(options, KsefOptions):
        options = KsefOptions.model_validate(options)
    return build_einvoicing(name, options, services)


def _demo() -> Any:
    """The demo's hook (imported on demand: the simulator is no part of a production start)."""
    from connectors.ksef.demo import KsefDemo

    return KsefDemo()


SPEC = ConnectorSpec(
    kind=KIND,
    role="einvoicing",
    description="KSeF (the Ministry of Finance's e-invoicing system, API 2.0): FA(3) invoices in online sessions, "
                "their KSeF numbers and UPOs, read back by their hash after a lost answer",
    capabilities=frozenset({Capability.EINVOICE_ONLINE, Capability.EINVOICE_BATCH}),
    factory=_factory,
    options_model=KsefOptions,
    # one bucket for every call; the tightest of KSeF's own limits that the hub meets often is 30 sends a
    # minute (and 180 an hour) in production, whose 429 and Retry-After block the bucket anyway
    default_rate_limit_per_minute=60,
    extra={"demo": _demo},
)

__all__ = ["KIND", "SPEC", "KsefOptions", "build_einvoicing"]
