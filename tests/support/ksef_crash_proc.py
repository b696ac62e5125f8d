"""A worker that sends issued invoices to KSeF and dies (os._exit(9)) right after KSeF answered the Nth send,
before the hub commits anything of it: started by tests/invoicing/test_invoicing_flow.py.

argv: the config file, N."""

from __future__ import annotations

import os
import sys
import threading
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the repository, for tests.support

from hub.app.wiring import ProcessServices
from hub.jobs.queue import ClaimedJob
from hub.platform.config import load
from hub.platform.db import make_engine


class Ctx:
    def __init__(self, engine: object) -> None:
        self.engine = engine
        self.job = ClaimedJob(10_000, "invoicing.send", {}, "crash", None, 1, None, 0, "t")
        self.stopping = threading.Event()
        self.payload: dict[str, object] = {}


def main() -> int:
    loaded = load(Path(sys.argv[1]), environ={})
    die_after = int(sys.argv[2])
    engine = make_engine(loaded.settings.database.url)
    service = ProcessServices(loaded).invoicing(engine)
    port = service.ksef()
    send = port.send
    answered = [0]

    def send_then_die(session: str, invoice: object) -> str:
        reference = send(session, invoice)  # type: ignore[arg-type]
        answered[0] += 1
        if answered[0] == die_after:
            os._exit(9)  # KSeF has it; the hub has not recorded it
        return reference

    port.send = send_then_die  # type: ignore[method-assign]
    service.handle_send(Ctx(engine))  # type: ignore[arg-type]
    return 0


if __name__ == "__main__":
    sys.exit(main())
