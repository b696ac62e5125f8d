"""The spool keeps a stream on disk and gives it back whole, as often as asked."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

import pytest

from hub.platform import spool
from hub.platform.spool import Spool


@dataclass(frozen=True)
class Offer:
    external_id: str
    price: Decimal


def test_records_come_back_in_order_every_time(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(spool, "PAGE", 3)
    offers = [Offer(str(i), Decimal(i) / 100) for i in range(10)]
    with Spool.spool(iter(offers)) as kept:
        assert len(kept) == 10
        assert list(kept) == offers and list(kept) == offers


def test_a_read_that_fails_leaves_no_file() -> None:
    def broken():  # type: ignore[no-untyped-def]
        yield Offer("1", Decimal(1))
        raise ConnectionError("the channel went away")

    with pytest.raises(ConnectionError):
        Spool.spool(broken())
