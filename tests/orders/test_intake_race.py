"""Two order polls racing on one chunk: when another process stores every new order between our
look-up and our insert, our insert stores nothing and the orders are taken as revisions of theirs,
never an INSERT of an empty list of lines (a not-null violation, retried forever)."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select

from hub.app.wiring import order_rules
from hub.orders import intake
from hub.orders.models import Order, OrderLineRow
from hub.platform.db import transaction
from tests.orders.test_orders_flow import config
from tests.support.fake_connectors import make_order


def test_a_chunk_another_process_stored_first(order_fakes: None, db_url: str, engine: Engine, tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    rules = order_rules(config(tmp_path, db_url))
    orders = [make_order("shop", f"S{n}", [(None, "s-X", 1, "10.00")]) for n in range(3)]
    with transaction(engine) as s:  # "the other process"
        intake.accept_many(s, rules, orders)
    real, calls = intake._existing, []

    def looked_too_early(session, keys):  # type: ignore[no-untyped-def]
        calls.append(1)
        return {} if len(calls) == 1 else real(session, keys)  # our first look came before it committed

    monkeypatch.setattr(intake, "_existing", looked_too_early)
    with transaction(engine) as s:
        results = intake.accept_many(s, rules, orders)
    assert len(results) == 3
    with transaction(engine) as s:
        assert s.execute(select(func.count()).select_from(Order)).scalar_one() == 3
        assert s.execute(select(func.count()).select_from(OrderLineRow)).scalar_one() == 3
