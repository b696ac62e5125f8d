"""A process that ingests a share of the orders, started by test_pg_reservations.py.

argv: database URL, go-file, orders JSON file, process number, process count.
It waits for the go-file so every process starts at the same moment.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the repository, for tests.support

from hub.app.wiring import order_rules
from hub.orders.intake import accept, accept_many
from hub.platform.config import load
from hub.platform.db import make_engine, transaction
from hub.platform.logs import configure
from tests.support.fake_connectors import make_order


def main() -> int:
    url, go, orders_file, number, count = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3]), int(sys.argv[4]), \
        int(sys.argv[5])
    from hub.platform.config import LogSettings

    configure(LogSettings(level="error"))
    config = orders_file.with_name("hub.toml")
    rules = order_rules(load(config, environ={}))
    engine = make_engine(url)
    orders = json.loads(orders_file.read_text())[number::count]
    print("ready", flush=True)
    while not go.exists():
        time.sleep(0.005)
    # odd processes take orders one by one, even ones in chunks (the journal's batch path): both race
    chunk = 1 if number % 2 else 3
    for start in range(0, len(orders), chunk):
        batch = [make_order(channel, external_id, [(sku, None, qty, "10.00") for sku, qty in lines])
                 for channel, external_id, lines in orders[start:start + chunk]]
        with transaction(engine) as session:
            accept_many(session, rules, batch) if chunk > 1 else accept(session, rules, batch[0])
    engine.dispose()
    print("done", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
