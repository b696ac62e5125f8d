"""A connector kind for the daemon's tests, ``test-shop``: job kinds with known outcomes.

Registered in the test process by the root conftest, and in the ``hub`` processes the tests start
by ``tests/support/hub_cli.py``: never through an entry point, so no real config can select it.
"""

from __future__ import annotations

import time
from typing import Any

from pydantic import BaseModel, ConfigDict

from hub.jobs.handlers import HandlerRegistry, JobContext
from hub.kernel.clock import utcnow
from hub.kernel.errors import PermanentError
from hub.kernel.ports.capability import Capability
from hub.platform import registry

KIND = "test-shop"


class _NoOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")


def _handlers(_name: str, _options: Any, handlers: HandlerRegistry) -> None:
    if "test.push_stock" in handlers:  # several test-shop connectors share one set of handlers
        return

    @handlers.handler("test.push_stock")
    def push_stock(ctx: JobContext) -> dict[str, Any]:
        throttle = ctx.throttle()
        waited = throttle.wait() if throttle else 0.0
        time.sleep(0.01)  # the remote call
        return {"sku": ctx.payload["sku"], "quantity": ctx.payload["quantity"], "throttled_s": round(waited, 3)}

    @handlers.handler("test.poison")
    def poison(ctx: JobContext) -> None:
        raise PermanentError(f"offer {ctx.payload['offer']} does not exist on the channel (404); not retrying")

    @handlers.handler("test.heartbeat")
    def heartbeat(ctx: JobContext) -> dict[str, str]:
        return {"at": utcnow().isoformat()}


SPEC = registry.ConnectorSpec(
    kind=KIND, role="channel", description="in-process test channel",
    capabilities=frozenset({Capability.BATCH_STOCK}), factory=lambda *_: None,
    options_model=_NoOptions, default_rate_limit_per_minute=600, handlers=_handlers,
)


def register() -> None:
    registry.register(SPEC)
