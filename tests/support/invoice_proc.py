"""A process that issues invoices as fast as it can, started by tests/invoicing/test_numbering_pg.py.

argv: database URL, go-file, process number, how many invoices. It waits for the go-file so every process
starts at the same moment. After every 7th invoice an invalid document is stored (its problem, no number),
and after every 11th one a transaction rolls back after its number was taken (the number must come back).
An even process stores one invoice per transaction (store); an odd one in lots of five (store_many, as the
job queue's lots of invoicing.issue jobs), the invalid ones inside the lot and the rolled-back ones a
whole lot."""

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
from hub.invoicing.issue import Draft, seller_of, store, store_many
from hub.platform.db import make_engine, transaction
from tests.invoicing.support import settings


class RolledBack(Exception):
    pass


def _draft(config: Any, origin: str, name: str) -> Draft:
    return Draft(origin=origin, kind="VAT", series="FV", business=True,
                 buyer={"name": "Firma", "nip": "7740001454", "country": "PL"}, seller=seller_of(config),
                 issue_date=date(2026, 12, 2), sale_date=date(2026, 12, 2), currency="PLN", basis="gross",
                 lines=[LineIn(name, Decimal(1), Decimal("12.30"), "23")],
                 payment={"form": "transfer", "paid_at": "2026-12-02"})


def _issue(engine: Any, config: Any, origin: str, name: str, now: datetime, *, roll_back: bool = False) -> None:
    with transaction(engine) as session:
        store(session, config, _draft(config, origin, name), now=now, send=False)
        if roll_back:
            raise RolledBack


def _issue_lot(engine: Any, config: Any, drafts: list[Draft], now: datetime, *, roll_back: bool = False) -> None:
    with transaction(engine) as session:
        store_many(session, config, [(draft, False) for draft in drafts], now=now)
        if roll_back:
            raise RolledBack


def _lots(engine: Any, config: Any, number: int, count: int, now: datetime) -> None:
    for start in range(0, count, 5):
        lot = []
        for n in range(start, min(start + 5, count)):
            lot.append(_draft(config, f"bench:{number}:{n}", f"Towar {n}"))
            if n % 7 == 3:
                lot.append(_draft(config, f"bad:{number}:{n}", "x" * 600))
        _issue_lot(engine, config, lot, now)
        if any(n % 11 == 5 for n in range(start, start + 5)):
            with contextlib.suppress(RolledBack):
                _issue_lot(engine, config, [_draft(config, f"rolled-back:{number}:{start}:{k}", "Towar")
                                            for k in range(3)], now, roll_back=True)


def main() -> int:
    url, go, number, count = sys.argv[1], Path(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
    engine = make_engine(url)
    config = settings()
    now = datetime(2026, 12, 2, 10, 0, tzinfo=UTC)
    print("ready", flush=True)
    while not go.exists():
        time.sleep(0.005)
    if number % 2:
        _lots(engine, config, number, count, now)
        print("done", flush=True)
        return 0
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
