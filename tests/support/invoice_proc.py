"""A process that issues invoices as fast as it can, started by tests/invoicing/test_numbering_pg.py.

argv: database URL, go-file, process number, how many invoices. It waits for the go-file so every process
starts at the same moment. After every 7th invoice an invalid document is stored (its problem, no number),
and after every 11th one a transaction rolls back after its number was taken (the number must come back)."""

from __future__ import annotations

import contextlib
import sys
import time
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the repository, for tests.support

from hub.invoicing.amounts import LineIn
from hub.invoicing.issue import Draft, seller_of, store
from hub.platform.db import make_engine, transaction
from tests.invoicing.support import settings


class RolledBack(Exception):
    pass


def _issue(engine: Any, config: Any, origin: str, name: str, now: datetime, *, roll_back: bool = False) -> None:
    draft = Draft(origin=origin, kind="VAT", series="FV", business=True,
                  buyer={"name": "Firma", "nip": "7740001454", "country": "PL"}, seller=seller_of(config),
                  issue_date=date(2026, 12, 2), sale_date=date(2026, 12, 2), currency="PLN", basis="gross",
                  lines=[LineIn(name, Decimal(1), Decimal("12.30"), "23")],
                  payment={"form": "transfer", "paid_at": "2026-12-02"})
    with transaction(engine) as session:
        store(session, config, draft, now=now, send=False)
        if roll_back:
            raise RolledBack


def main() -> int:
    url, go, number, count = sys.argv[1], Path(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
    engine = make_engine(url)
    config = settings()
    now = datetime(2026, 12, 2, 10, 0, tzinfo=UTC)
    print("ready", flush=True)
    while not go.exists():
        time.sleep(0.005)
    for n in range(count):
        _issue(engine, config, f"bench:{number}:{n}", f"Towar {n}", now)
        if n % 7 == 3:  # P_7 holds 512 characters: the schema refuses it, stored with no number
            _issue(engine, config, f"bad:{number}:{n}", "x" * 600, now)
        if n % 11 == 5:  # a number taken, then the transaction rolls back: the number comes back
            with contextlib.suppress(RolledBack):
                _issue(engine, config, f"rolled-back:{number}:{n}", f"Towar {n}", now, roll_back=True)
    print("done", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
