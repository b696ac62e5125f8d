"""A unit sold on a channel is never offered again before its order is in: a channel quantity lower
than what the hub sent is a sale, not drift to overwrite. Once the order is imported the desired
quantity agrees; if no order explains it within the hold, it was drift and the plan corrects it."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, select, update

from hub.app.wiring import order_rules
from hub.catalog import DirtySku, mark_dirty
from hub.jobs.handlers import JobContext
from hub.jobs.models import Job
from hub.jobs.queue import ClaimedJob
from hub.kernel.clock import round_down, utcnow
from hub.kernel.ports.channel import ChangeResult
from hub.listings import service as service_module
from hub.listings.models import Listing
from hub.listings.plan import plan
from hub.listings.reconcile import reconcile
from hub.listings.rules import load_rules
from hub.listings.service import SyncService
from hub.orders import intake
from hub.orders.models import Order
from hub.platform.connectors import Connectors
from hub.platform.db import transaction
from hub.platform.logs import get_logger
from tests.listings.test_sync_flow import config, drain
from tests.support.fake_connectors import FakeChannel, FakeErp, make_order


def _quantities(planned: list) -> list[int]:  # type: ignore[type-arg]
    return [item["quantity"] for push in planned for item in push.items if "quantity" in item]


def _pushed(tmp_path: Path, db_url: str, engine: Engine, stock: int) -> tuple[Any, SyncService, FakeErp, FakeChannel]:
    """SKU A with ``stock`` in the ERP, bound to the shop's offer o1, and pushed: the shop shows ``stock``."""
    loaded = config(tmp_path, db_url)
    service = SyncService(Connectors(loaded, engine), load_rules(loaded))
    erp: FakeErp = service.connectors.get("erp")
    shop: FakeChannel = service.connectors.get("shop")
    erp.set("A", stock, "100.00", cost="50.00")
    shop.offers = {"o1": {"signature": "A", "quantity": 0, "price": Decimal("100.00")}}
    service.poll_erp("erp")
    with transaction(engine) as s:
        reconcile(s, "shop", shop.listings())
        service.plan_all(s)
    drain(engine, loaded)
    assert shop.offers["o1"]["quantity"] == stock
    return loaded, service, erp, shop


def test_a_sale_on_the_channel_is_held_until_its_order_is_in(fakes: None, db_url: str, engine: Engine,
                                                             tmp_path: Path) -> None:
    loaded, service, _, shop = _pushed(tmp_path, db_url, engine, 5)

    shop.offers["o1"]["quantity"] = 4  # the shop sold one; its order is not in the hub yet
    with transaction(engine) as s:
        result = reconcile(s, "shop", shop.listings())
        assert (result.sales_held, result.drift) == (1, 0)
        mark_dirty(s, {"A"}, utcnow())
        assert _quantities(service.plan_all(s)) == []  # 5 is not pushed back over the sale
    now = utcnow()
    with transaction(engine) as s:  # the order arrives and reserves the unit
        intake.accept(s, order_rules(loaded), make_order("shop", "S1", [("A", None, 1, "100.00")], placed_at=now))
        mark_dirty(s, {"A"}, now)
        assert _quantities(service.plan_all(s)) == []  # desired 4 = what the shop shows

    shop.offers["o1"]["quantity"] = 2  # someone changed the shop's stock by hand: no order will come
    with transaction(engine) as s:
        reconcile(s, "shop", shop.listings())
        mark_dirty(s, {"A"}, now)
        assert _quantities(service.plan_all(s)) == []
        s.execute(update(Listing).values(sale_hold_until=now - timedelta(seconds=1)))  # the hold ran out
        assert _quantities(service.plan_all(s)) == [4]  # it was drift: corrected


def test_a_read_older_than_the_acknowledgement_is_neither_a_sale_nor_drift(fakes: None, db_url: str, engine: Engine,
                                                                           tmp_path: Path) -> None:
    """A reconcile reads the channel (3), a push completes meanwhile (4 acknowledged), then the reconcile
    stores what it read: the older 3 must not hold the listing as a sale nor overwrite the ack."""
    loaded, service, erp, shop = _pushed(tmp_path, db_url, engine, 3)
    read_started = utcnow()
    offers = list(shop.listings())  # the shop shows 3
    erp.set("A", 4, "100.00", cost="50.00")  # a delivery, pushed while the reconcile is reading
    service.poll_erp("erp")
    with transaction(engine) as s:
        service.plan_all(s)
    drain(engine, loaded)
    assert shop.offers["o1"]["quantity"] == 4
    with transaction(engine) as s:
        result = reconcile(s, "shop", offers, read_started)
        assert (result.sales_held, result.drift) == (0, 0)
        row = s.query(Listing).one()
        assert (row.ack_quantity, row.sale_hold_until) == (4, None)
    erp.set("A", 9, "100.00", cost="50.00")  # the next delivery goes out at once
    service.poll_erp("erp")
    with transaction(engine) as s:
        assert _quantities(service.plan_all(s)) == [9]


def test_units_sold_stay_off_sale_until_their_orders_are_in_whatever_else_changes(
        fakes: None, db_url: str, engine: Engine, tmp_path: Path) -> None:
    """Two units sold in the shop, then a delivery in the ERP: the delivery goes out at once, less the two
    sold units whose orders are not in; each order that comes in takes over its unit (a reservation),
    and nothing is ever offered that the shop has sold."""
    loaded, service, erp, shop = _pushed(tmp_path, db_url, engine, 5)
    rules = order_rules(loaded)
    shop.offers["o1"]["quantity"] = 3  # two units sold, their orders not in yet
    with transaction(engine) as s:
        assert reconcile(s, "shop", shop.listings()).sales_held == 1
        row = s.query(Listing).one()
        assert (row.sale_hold_units, row.sale_hold_since is not None) == (2, True)
    erp.set("A", 9, "100.00", cost="50.00")  # a delivery meanwhile
    service.poll_erp("erp")
    with transaction(engine) as s:
        assert _quantities(service.plan_all(s)) == [7]  # 9, less the 2 sold units
    drain(engine, loaded)
    assert shop.offers["o1"]["quantity"] == 7
    for external_id in ("S1", "S2"):  # the orders come in: each reserves its unit, the shop stays at 7
        with transaction(engine) as s:
            intake.accept(s, rules, make_order("shop", external_id, [("A", None, 1, "100.00")], placed_at=utcnow()))
            mark_dirty(s, {"A"}, utcnow())
            assert _quantities(service.plan_all(s)) == []
    erp.set("A", 10, "100.00", cost="50.00")
    service.poll_erp("erp")
    with transaction(engine) as s:
        assert _quantities(service.plan_all(s)) == [8]  # 10 less the 2 reserved: the hold is explained


def test_an_order_placed_before_the_hold_explains_none_of_it(fakes: None, db_url: str, engine: Engine,
                                                             tmp_path: Path) -> None:
    """Sale A is held and its order comes in; after that hold, sale C is held. Order A, placed before the
    second hold began, must not count for sale C: C's unit stays off sale until C's order is in."""
    loaded, service, erp, shop = _pushed(tmp_path, db_url, engine, 5)
    rules = order_rules(loaded)
    sold_a = utcnow()
    shop.offers["o1"]["quantity"] = 4  # sale A
    with transaction(engine) as s:
        reconcile(s, "shop", shop.listings())
    with transaction(engine) as s:
        intake.accept(s, rules, make_order("shop", "A", [("A", None, 1, "100.00")], placed_at=sold_a))
        mark_dirty(s, {"A"}, utcnow())
        assert _quantities(service.plan_all(s)) == []  # 5 - 1 reserved = 4 = what the shop shows
        s.execute(update(Listing).values(sale_hold_until=utcnow() - timedelta(seconds=1)))  # that hold is over
    shop.offers["o1"]["quantity"] = 3  # sale C, its order not in
    with transaction(engine) as s:
        assert reconcile(s, "shop", shop.listings()).sales_held == 1
    erp.set("A", 8, "100.00", cost="50.00")  # a delivery
    service.poll_erp("erp")
    with transaction(engine) as s:
        assert _quantities(service.plan_all(s)) == [6]  # 8 - A's reservation - C's unsold-yet unit


def test_a_sale_while_our_push_was_in_flight_is_explained_by_its_order(fakes: None, db_url: str, engine: Engine,
                                                                      tmp_path: Path) -> None:
    """The channel applied our push, a buyer bought, and only then did the push's answer reach us: the
    order was placed before the acknowledgement but after the push began (known_at), so it explains the
    hold and the next delivery goes out whole, not a unit short for the hold's five minutes."""
    loaded, service, erp, shop = _pushed(tmp_path, db_url, engine, 5)
    with transaction(engine) as s:
        row = s.query(Listing).one()
        assert row.known_at is not None and row.known_at <= row.acked_at
        placed = row.known_at + (row.acked_at - row.known_at) / 2
    shop.offers["o1"]["quantity"] = 4
    with transaction(engine) as s:
        assert reconcile(s, "shop", shop.listings()).sales_held == 1
        intake.accept(s, order_rules(loaded), make_order("shop", "S1", [("A", None, 1, "100.00")], placed_at=placed))
    erp.set("A", 9, "100.00", cost="50.00")
    service.poll_erp("erp")
    with transaction(engine) as s:
        assert _quantities(service.plan_all(s)) == [8]  # 9 less the reserved unit, none held back


def test_an_order_in_before_its_recompute_does_not_put_its_unit_back_on_sale(
        fakes: None, db_url: str, engine: Engine, tmp_path: Path) -> None:
    """A held sale's order comes in (reserving the unit, marking the SKU) and a push's follow-up plan runs
    before any recompute: the order explains the hold, but the desired quantity still counts its unit.
    Sending it would offer the sold unit again until the next plan (the cross-channel race showed
    Allegro at 1 for half a second): the marked SKU waits for its recompute instead."""
    loaded, service, _, shop = _pushed(tmp_path, db_url, engine, 5)
    shop.offers["o1"]["quantity"] = 4
    with transaction(engine) as s:
        assert reconcile(s, "shop", shop.listings()).sales_held == 1
    with transaction(engine) as s:
        intake.accept(s, order_rules(loaded), make_order("shop", "S1", [("A", None, 1, "100.00")], placed_at=utcnow()))
    with transaction(engine) as s:
        assert s.get(DirtySku, "A") is not None  # the order marked its SKU
        assert s.query(Listing).one().desired_quantity == 5  # not recomputed yet
        assert _quantities(plan(s, service.rules, "shop", batch_size=100)) == []
    with transaction(engine) as s:
        assert _quantities(service.plan_all(s)) == []  # recomputed: 4, what the shop shows
        assert s.query(Listing).one().desired_quantity == 4


@pytest.mark.parametrize(("resolution", "imported_before_the_hold", "planned"), [
    (timedelta(seconds=1), False, [8]),  # stamped in the hold's second, new to the hub: may be the sale
    (timedelta(seconds=1), True, [7]),  # the hub had it when it last knew the quantity: not the sale
    (timedelta(0), False, [7]),  # a channel that stamps finely: placed before the hold, not the sale
])
def test_an_order_stamped_in_the_second_the_hold_began(fakes: None, db_url: str, engine: Engine, tmp_path: Path,
                                                       resolution: timedelta, imported_before_the_hold: bool,
                                                       planned: list[int]) -> None:
    """WooCommerce stamps orders to the second: a sale just after the hub's push (known_at, 12:00:00.5)
    shows as 12:00:00. Not counting it held its unit off sale for the hold's five minutes (the soak's
    shop offer a unit short); counting it is right unless the hub already had that order by then."""
    loaded, service, erp, shop = _pushed(tmp_path, db_url, engine, 5)
    known = round_down(utcnow() - timedelta(seconds=3), timedelta(seconds=1)) + timedelta(milliseconds=500)
    with transaction(engine) as s:
        s.execute(update(Listing).values(known_at=known))
    shop.offers["o1"]["quantity"] = 4
    with transaction(engine) as s:
        assert reconcile(s, "shop", shop.listings(), order_time_resolution=resolution).sales_held == 1
    with transaction(engine) as s:
        intake.accept(s, order_rules(loaded), make_order("shop", "S1", [("A", None, 1, "100.00")],
                                                         placed_at=known - timedelta(milliseconds=500)))
        if imported_before_the_hold:
            s.execute(update(Order).values(created_at=known - timedelta(milliseconds=100)))
    erp.set("A", 9, "100.00", cost="50.00")  # a delivery: 8 after S1's reservation
    service.poll_erp("erp")
    with transaction(engine) as s:
        assert _quantities(service.plan_all(s)) == planned  # 7 while the sale is unexplained


def test_an_offer_that_stopped_being_offered_with_its_units_is_no_sale(fakes: None, db_url: str, engine: Engine,
                                                                      tmp_path: Path) -> None:
    """A marketplace offer a buyer ended by taking its last unit, then our quantity of 5 applied to it: it
    shows 0 (not on sale) but keeps 5. That is not five units sold (a hold would keep them off sale for
    five minutes, as the chaos test saw): it is an offer to put on sale again, its stock intact."""
    from hub.kernel.ports.channel import Listing as Offer

    _, service, _, _ = _pushed(tmp_path, db_url, engine, 5)
    with transaction(engine) as s:
        result = reconcile(s, "shop", [Offer("o1", "A", None, 0, Decimal("100.00"), active=False, stock=5)])
        assert (result.sales_held, result.drift) == (0, 1)
        assert _quantities(service.plan_all(s)) == [5]  # on sale again, whole
    with transaction(engine) as s:  # ended by a sale of its last 2 units: those are held
        s.execute(update(Listing).values(ack_quantity=2, inflight_job_id=None))
        result = reconcile(s, "shop", [Offer("o1", "A", None, 0, Decimal("100.00"), active=False, stock=0)])
        assert result.sales_held == 1 and s.query(Listing).one().sale_hold_units == 2


def _push_planned(tmp_path: Path, db_url: str, engine: Engine, shown: int = 4, erp_says: int = 6
                  ) -> tuple[Any, SyncService, FakeErp, FakeChannel, Job]:
    """The shop shows ``shown`` (acknowledged); the ERP says ``erp_says``: the push job planned, not run."""
    loaded, service, erp, shop = _pushed(tmp_path, db_url, engine, shown)
    erp.set("A", erp_says, "100.00", cost="50.00")
    service.poll_erp("erp")
    with transaction(engine) as s:
        service.plan_all(s)
        job = s.execute(select(Job).where(Job.kind == "sync.push", Job.state == "pending")).scalar_one()
    return loaded, service, erp, shop, job


def _attempt(engine: Engine, job: Job, attempts: int, first_started_at: datetime) -> JobContext:
    """``job`` as a worker runs it: its attempt count, and when its first attempt began."""
    return JobContext(job=ClaimedJob(job.id, job.kind, job.payload, job.idempotency_key, job.connector, attempts,
                                     None, 0, "t", begun=True, first_started_at=first_started_at),
                      engine=engine, log=get_logger("test"))


def test_a_push_retried_after_a_crash_knows_the_channel_from_its_first_sending(
        fakes: None, db_url: str, engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The channel applied our push (6) and the process died before recording it; a buyer bought 2
    meanwhile and more stock came in, and the retry finds the push applied. Its acknowledgement must date
    what the hub knows from the first sending: the order placed since explains the 2 units the channel
    lacks, and 6 goes out at once, not after a five-minute hold (the chaos run's "shows 4, wanted 6")."""
    loaded, service, erp, shop, job = _push_planned(tmp_path, db_url, engine)
    first = utcnow()

    def killed(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("killed between the channel's answer and our commit")

    with monkeypatch.context() as patch:
        patch.setattr(service_module, "record_results", killed)
        with pytest.raises(RuntimeError):
            service.handle_push(_attempt(engine, job, 1, first))
    assert shop.offers["o1"]["quantity"] == 6  # the channel applied it
    shop.offers["o1"]["quantity"] = 4  # a buyer took 2
    with transaction(engine) as s:
        intake.accept(s, order_rules(loaded), make_order("shop", "S1", [("A", None, 2, "100.00")], placed_at=utcnow()))
    erp.set("A", 8, "100.00", cost="50.00")  # and a delivery: 8 less the 2 reserved, 6 wanted again
    service.poll_erp("erp")
    service.handle_push(_attempt(engine, job, 2, first))  # the retry: the channel has it already, nothing is sent
    with transaction(engine) as s:
        reconcile(s, "shop", shop.listings())  # 4 shown, 6 acknowledged: a sale of 2, explained by S1
        assert _quantities(service.plan_all(s)) == [6]
    drain(engine, loaded)
    assert shop.offers["o1"]["quantity"] == 6


def test_a_push_whose_earlier_attempts_gave_theirs_back_knows_the_channel_from_now(
        fakes: None, db_url: str, engine: Engine, tmp_path: Path) -> None:
    """A push held for a login (or deferred for quota) an hour ago gave its attempt back: its first
    run sends now, and what the channel shows is known from now, not from an hour ago (orders of the
    hour would otherwise explain a later sale hold away)."""
    _, service, _, _, job = _push_planned(tmp_path, db_url, engine)
    before = utcnow()
    service.handle_push(_attempt(engine, job, 1, before - timedelta(hours=1)))
    with transaction(engine) as s:
        row = s.query(Listing).one()
        assert row.ack_quantity == 6 and row.known_at >= before


@pytest.mark.parametrize("desired_moved", [True, False])
def test_a_refusal_blocks_only_the_values_it_was_planned_from(
        fakes: None, db_url: str, engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        desired_moved: bool) -> None:
    """A push of 1 is planned; the ERP then says 9 (desired moves) while the push is in flight; the
    channel refuses the 1 for good (Allegro: an ended offer cannot be activated without stock). The
    refusal is of the 1: the follow-up plan sends 9 (the chaos run's "shows 0, wanted 9" stayed so for
    good). A refusal of the desired state still current keeps blocking it."""
    loaded, service, erp, shop, job = _push_planned(tmp_path, db_url, engine, 2, 1)
    if desired_moved:
        erp.set("A", 9, "100.00", cost="50.00")
        service.poll_erp("erp")
        with transaction(engine) as s:
            assert _quantities(service.plan_all(s)) == []  # the push of 1 is in flight
            assert s.query(Listing).one().desired_quantity == 9
    monkeypatch.setattr(shop, "push", lambda changes, idempotency_key: [
        ChangeResult(c.external_id, ok=False, error="INVALID_QUANTITY: refused", retryable=False) for c in changes])
    result = service.handle_push(_attempt(engine, job, 1, utcnow()))
    assert result["failed"] == 1
    monkeypatch.undo()
    with transaction(engine) as s:
        row = s.query(Listing).one()
        assert (row.last_error, row.error_retryable) == ("INVALID_QUANTITY: refused", False)
        pending = s.execute(select(Job).where(Job.kind == "sync.push", Job.state == "pending",
                                              Job.id != job.id)).scalars().all()  # the follow-up plan's
    assert [item["quantity"] for j in pending for item in j.payload["items"]] == ([9] if desired_moved else [])
    drain(engine, loaded)
    assert shop.offers["o1"]["quantity"] == (9 if desired_moved else 2)
