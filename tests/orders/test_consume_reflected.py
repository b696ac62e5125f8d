"""An ERP reading ends the reservations it now reflects, and only the SKUs whose reservations ended are
planned again: a file feed's batch is the whole catalogue, and re-pricing all of it on every reading
once reservations start to be consumed made the daemon fall behind for good."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from types import SimpleNamespace

from sqlalchemy import Engine, select

from hub.catalog.models import DirtySku
from hub.kernel.clock import utcnow
from hub.listings.service import SyncService
from hub.orders import consume_reflected
from hub.orders.models import Order, Reservation
from hub.platform.db import transaction

GRACE = timedelta(minutes=10)


def _order(session, ref: str, booked_ago: timedelta | None) -> int:  # type: ignore[no-untyped-def]
    now = utcnow()
    order = Order(channel="shop", external_id=ref, status="paid", payment={}, currency="PLN",
                  total_gross=Decimal("10.00"), placed_at=now, channel_updated_at=now, created_at=now,
                  updated_at=now, erp_booked_at=None if booked_ago is None else now - booked_ago)
    session.add(order)
    session.flush()
    return order.id


def test_only_the_skus_whose_reservations_ended_are_marked(engine: Engine) -> None:
    now = utcnow()
    with transaction(engine) as s:
        booked_long_ago = _order(s, "O1", timedelta(hours=1))
        booked_just_now = _order(s, "O2", timedelta(minutes=1))
        not_booked = _order(s, "O3", None)
        for sku, order_id in (("A", booked_long_ago), ("B", booked_just_now), ("C", not_booked)):
            s.add(Reservation(sku=sku, quantity=1, order_ref=str(order_id), order_id=order_id, state="open",
                              created_at=now, updated_at=now))
    catalogue = {f"SKU-{n}" for n in range(3000)} | {"A", "B", "C"}
    with transaction(engine) as s:
        SyncService._stock_read(SimpleNamespace(erp_stock_grace=GRACE), s, catalogue, now)  # type: ignore[arg-type]
    with transaction(engine) as s:
        assert sorted(s.execute(select(DirtySku.sku)).scalars()) == ["A"]
        states = dict(s.execute(select(Reservation.sku, Reservation.state)).all())
    assert states == {"A": "consumed", "B": "open", "C": "open"}
    with transaction(engine) as s:  # read again: nothing more ends
        assert consume_reflected(s, catalogue, GRACE, now) == set()
