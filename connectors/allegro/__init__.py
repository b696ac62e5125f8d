"""Allegro marketplace connector: offers, batch price and stock (SalesChannel); orders from the event
journal, fulfillment status (OrderChannel); customer returns and refunds (ReturnsChannel); device-flow login.

Registered as the entry point ``hub.connectors:allegro``. Config::

    [connectors.allegro-main]
    kind = "allegro"
    client_id = "..."
    client_secret = { env = "ALLEGRO_CLIENT_SECRET" }
    # environment = "sandbox"        # or api_url / auth_url, e.g. the simulator

Every account of one client id shares one rate-limit bucket (the vendor limits
per client id). Log an account in with ``hub allegro login NAME``.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from connectors.allegro.options import AllegroOptions
from hub.kernel.ports.capability import Capability
from hub.platform.registry import ConnectorSpec

if TYPE_CHECKING:
    from connectors.allegro.channel import AllegroChannel


def _factory(name: str, options: AllegroOptions, services: Any) -> AllegroChannel:
    """Imported lazily: loading the entry point (every CLI start) must stay cheap."""
    from connectors.allegro.channel import AllegroChannel

    return AllegroChannel(name, options, services)


def _rate_limit_key(_name: str, options: Mapping[str, Any]) -> str:
    return f"allegro:{options['client_id']}"


def _cmd_login(args: argparse.Namespace) -> int:
    """`hub allegro login ACCOUNT`: the device flow, then the pair is saved for the daemon."""
    from connectors.allegro.auth import AllegroAuth, describe_device
    from connectors.allegro.client import AllegroHttp
    from hub.cli.context import runtime
    from hub.kernel.errors import HubError
    from hub.platform import registry
    from hub.platform.connectors import Connectors
    from hub.platform.credentials import TokenStore
    from hub.platform.logs import get_logger

    loaded, engine = runtime(args)
    conn = loaded.settings.connectors.get(args.account)
    if conn is None or conn.kind != SPEC.kind:
        allegro = sorted(n for n, c in loaded.settings.connectors.items() if c.kind == SPEC.kind)
        raise HubError(f"{args.account!r} is not an Allegro connector in {loaded.source_label} "
                       f"(Allegro connectors: {', '.join(allegro) or 'none'})")
    options: AllegroOptions = registry.options_for(args.account, conn, loaded.environ)
    log = get_logger("connectors.allegro").bind(connector=args.account)
    http = AllegroHttp(connector=args.account, throttle=Connectors(loaded, engine).throttle(args.account), log=log,
                       timeout=options.request_timeout, attempts=options.http_attempts, backoff=options.retry_backoff,
                       block_seconds=options.rate_limit_block)
    try:
        auth = AllegroAuth(account=args.account, http=http, tokens=TokenStore(engine), auth_base=options.auth_base,
                           client_id=options.client_id, client_secret=options.client_secret.get())
        device = auth.start_device_flow()
        sys.stdout.write(describe_device(device) + "\nWaiting for the confirmation...\n")
        sys.stdout.flush()
        try:
            tokens = auth.login(device)
        except Exception as exc:
            if isinstance(exc, HubError):
                raise
            raise HubError(f"login failed: {exc}") from exc
    finally:
        http.close()
    sys.stdout.write(f"Logged in: {args.account} (access token valid until "
                     f"{tokens.expires_at:%Y-%m-%d %H:%M} UTC; it is refreshed automatically)\n")
    return 0


def _demo() -> Any:
    """`hub demo`: the simulator seeded with the demo catalogue (imported only by the demo)."""
    from connectors.allegro.demo import AllegroDemo

    return AllegroDemo()


def _cli(cli: Any) -> None:
    group = cli.add_group("allegro", help="Allegro accounts")
    login = group.add_parser("login", parents=[cli.common],
                             help="log an account in (device flow: open a link, confirm a code)")
    login.add_argument("account", metavar="ACCOUNT", help="the connector name, [connectors.ACCOUNT] in the config")
    login.set_defaults(func=_cmd_login)


SPEC = ConnectorSpec(
    kind="allegro",
    role="channel",
    description="Allegro marketplace: offers, batch price and stock commands, orders from the event journal, "
                "fulfillment status, customer returns and refunds (REST API, OAuth2 device flow)",
    capabilities=frozenset({Capability.LISTINGS_READ, Capability.BATCH_STOCK, Capability.BATCH_PRICE,
                            Capability.ORDERS, Capability.ORDER_STATUS, Capability.TRACKING_PUSH,
                            Capability.RETURNS, Capability.REFUNDS}),
    factory=_factory,
    options_model=AllegroOptions,
    default_rate_limit_per_minute=9000,
    # One push job carries up to 10,000 changes: a command sets ONE value for up to 1,000 offers, so
    # the channel groups the whole set by target value before cutting it into commands of 1,000.
    push_batch_size=10_000,
    cli=_cli,
    extra={"rate_limit_key": _rate_limit_key, "demo": _demo},
)

__all__ = ["SPEC", "AllegroOptions"]
