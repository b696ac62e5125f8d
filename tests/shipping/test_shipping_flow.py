"""Shipping end to end with in-memory connectors, on SQLite and PostgreSQL: a paid order is booked by
the shipped automation rule with the mapped carrier, its label stored with its checksum, its tracking
number on the channel and the order shipped; tracking takes it to delivered; the day's pickup is
booked once; a shipment is cancelled or refused; a missing weight is a problem on the order."""

from __future__ import annotations

import hashlib
import time
from dataclasses import replace
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, func, select, update

from hub.cli.main import main
from hub.jobs.models import Job
from hub.jobs.queue import enqueue
from hub.kernel.ports.carrier import TrackingEvent
from hub.orders.models import Order, OrderHistory, Reservation
from hub.platform.config import load
from hub.platform.db import transaction
from hub.shipping.models import Pickup, Shipment, ShipmentHistory, ShipmentParcel
from tests.orders.test_orders_flow import Hub
from tests.support.fake_carrier import FakeCarrier, FakeTrackingChannel, WeightedErp
from tests.support.fake_connectors import INSTANCES, make_order

STATUS_MAP = """
[kinds.fake-channel.inbound]
READY_FOR_PROCESSING = "paid"
CANCELLED = "cancelled"
[kinds.fake-channel.outbound]
processing = "processing"
shipped = "sent"
"""

DELIVERY = """
[templates.box]
packaging_kg = "0.25"
length_cm = 30
width_cm = 20
height_cm = 10

[templates.locker]
packaging_kg = "0.10"
lockers = [{ size = "small", max_kg = "1" }, { size = "medium", max_kg = "5" }, { size = "large", max_kg = "25" }]

[default]
carrier = "courier-a"
service = "courier"
template = "box"

[[methods]]
channel = "shop"
method = "locker"
carrier = "lockers-b"
service = "locker"
template = "locker"
"""


def config(tmp_path: Path, url: str) -> Any:
    maps = tmp_path / "maps"
    maps.mkdir()
    (maps / "order_status.toml").write_text(STATUS_MAP)
    (maps / "delivery.toml").write_text(DELIVERY)
    path = tmp_path / "hub.toml"
    path.write_text(f"""
[mappings]
dir = "maps"
[database]
url = "{url}"
[worker]
concurrency = 2
poll_interval = "20ms"
backoff_initial = "50ms"
backoff_max = "100ms"
[shipping]
label_dir = "labels"
default_sender = "warehouse"
[shipping.senders.warehouse]
name = "Sklep Test"
street = "Magazynowa 5"
city = "Poznań"
postal_code = "60-001"
phone = "600700800"
email = "magazyn@example.pl"
bank_account = "PL61109010140000071219812874"
[connectors.erp]
kind = "fake-erp"
[connectors.shop]
kind = "fake-channel"
[connectors.courier-a]
kind = "fake-carrier"
[connectors.lockers-b]
kind = "fake-carrier"
""")
    return load(path, environ={})


def _world(tmp_path: Path, db_url: str, engine: Engine) -> tuple[Hub, WeightedErp, FakeTrackingChannel]:
    loaded = config(tmp_path, db_url)
    hub = Hub(engine, loaded)
    erp = INSTANCES.setdefault("erp", WeightedErp("erp"))
    shop = INSTANCES.setdefault("shop", FakeTrackingChannel("shop"))
    for name in ("courier-a", "lockers-b"):
        INSTANCES.setdefault(name, FakeCarrier(name))
    erp.set("A", 10, "100.00", cost="50.00")
    erp.set("B", 10, "20.00", cost="5.00")
    erp.weights = {"A": Decimal("1.200"), "B": None}
    shop.offers = {"s-A": {"signature": "A", "quantity": 0, "price": Decimal("100.00")},
                   "s-B": {"signature": "B", "quantity": 0, "price": Decimal("20.00")}}
    hub.pool.start()
    hub.run("erp.poll", {"erp": "erp"}, "poll-0", "erp")
    hub.run("sync.reconcile", {"channel": "shop"}, "reconcile-shop", "shop")
    hub.run("orders.poll", {"channel": "shop"}, "start-shop", "shop")
    return hub, erp, shop


def _shipment(engine: Engine, external_id: str) -> Shipment:
    with transaction(engine) as s:
        return s.execute(select(Shipment).join(Order, Order.id == Shipment.order_id)
                         .where(Order.external_id == external_id)).scalar_one()


def _order(engine: Engine, external_id: str) -> Order:
    with transaction(engine) as s:
        return s.execute(select(Order).where(Order.external_id == external_id)).scalar_one()


def test_a_paid_order_is_booked_labelled_tracked_and_delivered(shipping_fakes: None, db_url: str, engine: Engine,
                                                               tmp_path: Path) -> None:
    hub, _, shop = _world(tmp_path, db_url, engine)
    try:
        courier: FakeCarrier = INSTANCES["courier-a"]
        courier.pending_polls = 2  # the carrier confirms the booking only on the third ask
        courier.label_not_ready = 1
        shop.place(make_order("shop", "S1", [("A", "s-A", 2, "100.00")]))
        hub.run("orders.poll", {"channel": "shop"}, "poll-1", "shop")

        shipment = _shipment(engine, "S1")
        assert (shipment.carrier, shipment.service, shipment.state) == ("courier-a", "courier", "label_ready")
        assert len(courier.bookings) == 1 and len(courier.requests) == 3  # asked three times, booked once
        assert [r.first_call for r in courier.requests] == [True, False, False]  # a retry looks first
        request = courier.requests[0]
        assert request.reference == shipment.reference == f"HUB-{shipment.order_id}-1"
        assert request.parcels[0].weight_kg == Decimal("2.650")  # 2 x 1.2 kg + 0.25 kg packaging
        assert (request.parcels[0].length_cm, request.sender.city, request.receiver.name) == (30, "Poznań",
                                                                                               "Jan Kowalski")
        assert request.cod is None
        with transaction(engine) as s:
            number = s.execute(select(ShipmentParcel.tracking_number)
                               .where(ShipmentParcel.shipment_id == shipment.id)).scalar_one()
            states = [h.to_state for h in s.execute(select(ShipmentHistory).where(
                ShipmentHistory.shipment_id == shipment.id).order_by(ShipmentHistory.id)).scalars()]
        assert states == ["draft", "booking", "booked", "label_ready"]
        label = Path(shipment.label_path or "")
        assert label.parent.parent == tmp_path / "labels" and label.read_bytes().startswith(b"%PDF")
        assert hashlib.sha256(label.read_bytes()).hexdigest() == shipment.label_sha256

        # the tracking number is on the channel and the order shipped (and the channel told)
        assert [n.tracking_numbers for n in shop.notices] == [[number]]
        assert shop.notices[0].operator == "inpost" and not shop.notices[0].booked_by_channel
        assert _order(engine, "S1").status == "shipped"
        assert ("S1", "sent") in [(e, st) for e, st, _ in shop.statuses]

        # tracking: in transit, then delivered; an old event after that changes nothing
        t0 = shipment.created_at
        courier.events[number] = [TrackingEvent(number, "in_transit", t0, "ST1", "sorted in Poznań")]
        hub.run("shipping.track", {}, "track-1")
        assert _shipment(engine, "S1").state == "in_transit"
        courier.events[number].append(TrackingEvent(number, "delivered", t0.replace(hour=(t0.hour + 1) % 24)
                                                    if t0.hour < 23 else t0, "DL", "delivered"))
        with transaction(engine) as s:  # its turn has come again
            s.execute(Shipment.__table__.update().values(tracked_at=None))
        hub.run("shipping.track", {}, "track-2")
        done = _shipment(engine, "S1")
        assert (done.state, done.tracking_status) == ("delivered", "delivered")
        assert _order(engine, "S1").status == "delivered"
        with transaction(engine) as s:
            states = [h.to_state for h in s.execute(select(ShipmentHistory).where(
                ShipmentHistory.shipment_id == shipment.id).order_by(ShipmentHistory.id)).scalars()]
        assert states[-3:] == ["handed_over", "in_transit", "delivered"]  # handed over is implied, recorded
    finally:
        hub.pool.stop()


def test_locker_route_missing_weight_and_pickup_once(shipping_fakes: None, db_url: str, engine: Engine,
                                                     tmp_path: Path) -> None:
    hub, _, shop = _world(tmp_path, db_url, engine)
    try:
        lockers: FakeCarrier = INSTANCES["lockers-b"]
        locker_order = make_order("shop", "L1", [("A", "s-A", 1, "100.00")])
        from hub.kernel.ports.channel import PickupPoint
        shop.place(replace(locker_order, delivery_method="locker", pickup_point=PickupPoint("POZ01M")))
        shop.place(make_order("shop", "W1", [("B", "s-B", 1, "20.00")]))  # B has no weight in the ERP
        hub.run("orders.poll", {"channel": "shop"}, "poll-1", "shop")

        locker = _shipment(engine, "L1")
        assert (locker.carrier, locker.service, locker.pickup_point) == ("lockers-b", "locker", "POZ01M")
        assert lockers.requests[0].parcels[0].template == "medium"  # 1.1 kg: over small's 1 kg
        assert lockers.requests[0].pickup_point is not None and lockers.requests[0].pickup_point.id == "POZ01M"
        w1 = _order(engine, "W1")
        assert w1.problem_kind == "shipping" and "SKU B has no weight" in (w1.problem or "")
        with transaction(engine) as s:
            assert s.execute(select(func.count()).select_from(Shipment)
                             .join(Order, Order.id == Shipment.order_id)
                             .where(Order.external_id == "W1")).scalar_one() == 0  # never a 0 kg parcel

        # the day's pickup: booked once per carrier account, whoever asks twice
        hub.run("shipping.pickups", {"force": True}, "pickups-1")
        hub.run("shipping.pickups", {"force": True}, "pickups-2")
        with transaction(engine) as s:
            pickups = s.execute(select(Pickup)).scalars().all()
        assert [(p.carrier, p.state, p.parcels) for p in pickups] == [("lockers-b", "booked", 1)]
        assert len(lockers.pickups) == 1 and lockers.pickup_requests[0].bookings[0].reference == locker.reference
    finally:
        hub.pool.stop()


def test_cancel_before_handover_and_refused_after(shipping_fakes: None, db_url: str, engine: Engine,
                                                 tmp_path: Path) -> None:
    hub, _, shop = _world(tmp_path, db_url, engine)
    try:
        courier: FakeCarrier = INSTANCES["courier-a"]
        shop.place(make_order("shop", "C1", [("A", "s-A", 1, "100.00")]))
        shop.place(make_order("shop", "C2", [("A", "s-A", 1, "100.00")]))
        hub.run("orders.poll", {"channel": "shop"}, "poll-1", "shop")
        c1, c2 = _shipment(engine, "C1"), _shipment(engine, "C2")
        hub.run("shipping.cancel", {"shipment_id": c1.id, "source": "cli"}, "cancel-c1", "courier-a")
        assert _shipment(engine, "C1").state == "cancelled" and c1.reference in courier.cancelled
        courier.handed_over.add(c2.reference)
        hub.run("shipping.cancel", {"shipment_id": c2.id, "source": "cli"}, "cancel-c2", "courier-a")
        refused = _shipment(engine, "C2")
        assert refused.state == "label_ready" and "handed over to the courier" in (refused.problem or "")
    finally:
        hub.pool.stop()


def _cancel_on_the_channel(shop: FakeTrackingChannel, external_id: str) -> None:
    placed = shop.orders[external_id]
    shop.place(replace(placed, status="CANCELLED", revision="r2"), kind="updated")


def _open_reservations(engine: Engine, order_id: int) -> int:
    with transaction(engine) as s:
        return s.execute(select(func.count()).select_from(Reservation).where(
            Reservation.order_id == order_id, Reservation.state == "open")).scalar_one()


def test_an_order_cancelled_on_the_channel_after_shipping_is_recalled_or_flagged(
        shipping_fakes: None, db_url: str, engine: Engine, tmp_path: Path) -> None:
    """Found by the chaos run with shipments: a buyer cancelling after the hub sent the tracking number
    left the order shipped, its reservation open, its sale in the ERP and its parcel booked."""
    hub, erp, shop = _world(tmp_path, db_url, engine)
    try:
        courier: FakeCarrier = INSTANCES["courier-a"]
        shop.place(make_order("shop", "R1", [("A", "s-A", 1, "100.00")]))
        shop.place(make_order("shop", "R2", [("A", "s-A", 1, "100.00")]))
        hub.run("orders.poll", {"channel": "shop"}, "poll-1", "shop")
        r1, r2 = _shipment(engine, "R1"), _shipment(engine, "R2")
        assert {_order(engine, "R1").status, _order(engine, "R2").status} == {"shipped"}
        assert _order(engine, "R1").erp_ref is not None

        courier.handed_over.add(r2.reference)  # R2's parcel left with the courier
        _cancel_on_the_channel(shop, "R1")
        _cancel_on_the_channel(shop, "R2")
        hub.run("orders.poll", {"channel": "shop"}, "poll-2", "shop")

        # R1: its parcel stopped with the carrier, the order cancelled after all, its sale reversed
        assert _shipment(engine, "R1").state == "cancelled" and r1.reference in courier.cancelled
        recalled = _order(engine, "R1")
        assert recalled.status == "cancelled" and recalled.problem is None
        assert _open_reservations(engine, recalled.id) == 0
        assert len(erp.cancellations) == 1  # the sale reversed, once
        with transaction(engine) as s:
            moves = [(h.from_status, h.to_status, h.source) for h in s.execute(
                select(OrderHistory).where(OrderHistory.order_id == recalled.id,
                                           OrderHistory.from_status != OrderHistory.to_status)
                .order_by(OrderHistory.id)).scalars()]
        assert moves[-2:] == [("ready_to_ship", "shipped", "shipping"), ("shipped", "cancelled", "shipping")]
        assert ("R1", "cancelled") not in [(e, st) for e, st, _ in shop.statuses]  # the channel told us

        # R2: the carrier refuses (handed over): the order stays shipped with a problem naming the parcel
        flagged = _order(engine, "R2")
        assert flagged.status == "shipped" and r2.reference not in courier.cancelled
        assert flagged.problem_kind == "shipping" and r2.reference in (flagged.problem or "")
        assert "refused to cancel" in (flagged.problem or "") and f"cancel {r2.id} --withheld" in flagged.problem

        # the seller keeps the parcel and says so: the order is recalled like R1
        assert main(["--config", str(tmp_path / "hub.toml"), "shipments", "cancel", str(r2.id), "--withheld",
                     "--json"]) == 0
        hub.quiet()  # the sale's reversal is a job
        assert _shipment(engine, "R2").state == "cancelled"
        withheld = _order(engine, "R2")
        assert withheld.status == "cancelled" and withheld.problem is None  # the refusal is settled
        assert len(erp.cancellations) == 2 and r2.reference not in courier.cancelled

        # the channel reporting it again changes nothing: one withdrawal per order
        hub.run("orders.poll", {"channel": "shop"}, "poll-3", "shop")
        with transaction(engine) as s:
            keys = s.execute(select(Job.idempotency_key).where(Job.kind == "shipping.withdraw")
                             .order_by(Job.idempotency_key)).scalars().all()
        assert keys == ["ship-withdraw:shop/R1", "ship-withdraw:shop/R2"]
    finally:
        hub.pool.stop()


def test_an_order_cancelled_while_the_carrier_books_gets_no_label_and_its_parcel_is_cancelled(
        shipping_fakes: None, db_url: str, engine: Engine, tmp_path: Path) -> None:
    """The cancellation commits while the booking call is out: the withdrawal finds the shipment booking
    and leaves it; the booking's own commit sees the order cancelled and asks the carrier to cancel."""
    hub, _, shop = _world(tmp_path, db_url, engine)
    try:
        courier: FakeCarrier = INSTANCES["courier-a"]

        def cancelled_meanwhile(request: Any) -> None:
            courier.on_book = None
            _cancel_on_the_channel(shop, "B1")
            with transaction(engine) as s:
                enqueue(s, "orders.poll", {"channel": "shop"}, key="poll-cancel", connector="shop")
            deadline = time.monotonic() + 20
            while _order(engine, "B1").status != "cancelled" and time.monotonic() < deadline:
                time.sleep(0.02)

        courier.on_book = cancelled_meanwhile
        shop.place(make_order("shop", "B1", [("A", "s-A", 1, "100.00")]))
        hub.run("orders.poll", {"channel": "shop"}, "poll-1", "shop")

        shipment = _shipment(engine, "B1")
        assert len(courier.bookings) == 1 and shipment.reference in courier.cancelled
        assert shipment.state == "cancelled" and shipment.label_path is None and not courier.label_calls
        assert shop.notices == []  # no tracking number for a cancelled order
        order = _order(engine, "B1")
        assert order.status == "cancelled" and order.problem is None
        with transaction(engine) as s:
            states = [h.to_state for h in s.execute(select(ShipmentHistory).where(
                ShipmentHistory.shipment_id == shipment.id).order_by(ShipmentHistory.id)).scalars()]
        assert states == ["draft", "booking", "booked", "cancelled"]
    finally:
        hub.pool.stop()


def test_an_order_cancelled_before_its_booking_call_is_never_booked(
        shipping_fakes: None, db_url: str, engine: Engine, tmp_path: Path) -> None:
    hub, _, shop = _world(tmp_path, db_url, engine)
    try:
        courier: FakeCarrier = INSTANCES["courier-a"]
        courier.refuse = "the street does not exist"  # the first booking fails: the shipment is failed
        shop.place(make_order("shop", "F1", [("A", "s-A", 1, "100.00")]))
        hub.run("orders.poll", {"channel": "shop"}, "poll-1", "shop")
        assert _shipment(engine, "F1").state == "failed"
        _cancel_on_the_channel(shop, "F1")
        hub.run("orders.poll", {"channel": "shop"}, "poll-2", "shop")
        assert _shipment(engine, "F1").state == "cancelled" and courier.cancelled == set()
        assert _order(engine, "F1").status == "cancelled"
    finally:
        hub.pool.stop()


def test_a_refused_booking_fails_the_shipment_and_flags_the_order(shipping_fakes: None, db_url: str,
                                                                  engine: Engine, tmp_path: Path) -> None:
    hub, _, shop = _world(tmp_path, db_url, engine)
    try:
        INSTANCES["courier-a"].refuse = "receiver postal code 99-999 does not exist"
        shop.place(make_order("shop", "R1", [("A", "s-A", 1, "100.00")]))
        hub.run("orders.poll", {"channel": "shop"}, "poll-1", "shop")
        failed = _shipment(engine, "R1")
        assert failed.state == "failed" and "99-999 does not exist" in (failed.problem or "")
        assert "99-999 does not exist" in (_order(engine, "R1").problem or "")
        assert shop.notices == []
        from hub.app.status import status

        with transaction(engine) as s:
            shown = status(engine, s, hub.loaded)["shipments"]
        assert shown["problems"] == 1 and shown["with_problems"][0]["state"] == "failed"
    finally:
        hub.pool.stop()


def test_a_worker_dying_after_the_carriers_answer_books_once(shipping_fakes: None, db_url: str, engine: Engine,
                                                             tmp_path: Path, monkeypatch: Any) -> None:
    """The carrier booked the parcel and answered; the worker dies before our commit (here: the commit
    fails once, which rolls back exactly what a kill would lose). The job runs again and the carrier,
    asked by our reference, hands back the first booking: one booking, one label, one tracking push."""
    import hub.shipping.service as service_module

    real_record = service_module.record_booking
    died: list[str] = []

    def dying_record(session: Any, sid: int, booking: Any, now: Any, seqs: Any) -> Any:
        recorded = real_record(session, sid, booking, now, seqs)
        if not died:  # recorded, not committed: the kill loses exactly this
            died.append(booking.reference)
            raise RuntimeError("worker killed between the carrier's answer and the commit")
        return recorded

    monkeypatch.setattr(service_module, "record_booking", dying_record)
    hub, _, shop = _world(tmp_path, db_url, engine)
    try:
        courier: FakeCarrier = INSTANCES["courier-a"]
        shop.place(make_order("shop", "K1", [("A", "s-A", 1, "100.00")]))
        hub.run("orders.poll", {"channel": "shop"}, "poll-1", "shop")
        shipment = _shipment(engine, "K1")
        assert died == [shipment.reference]
        assert len(courier.requests) == 2 and len(courier.bookings) == 1  # asked twice, booked once
        assert [r.first_call for r in courier.requests] == [True, False]
        assert shipment.state == "label_ready" and shipment.external_id == "courier-a-1"
        assert len(list((tmp_path / "labels").rglob("*.pdf"))) == 1
        assert len(shop.notices) == 1
    finally:
        hub.pool.stop()


def test_tracking_for_an_order_of_a_channel_no_longer_configured_is_one_clear_dead_job(
        shipping_fakes: None, db_url: str, engine: Engine, tmp_path: Path) -> None:
    """The order came from a channel since removed from the config: its push cannot be sent. One
    attempt, dead with a line naming the order and the channel (not a KeyError retried to the end)."""
    hub, _, shop = _world(tmp_path, db_url, engine)
    try:
        shop.place(make_order("shop", "G1", [("A", "s-A", 1, "100.00")]))
        hub.run("orders.poll", {"channel": "shop"}, "poll-1", "shop")
        shipment = _shipment(engine, "G1")
        with transaction(engine) as s:
            s.execute(update(Order).where(Order.id == shipment.order_id).values(channel="old-shop"))
            s.execute(update(Shipment).where(Shipment.id == shipment.id).values(tracking_pushed_at=None))
        hub.run("shipping.push_tracking", {"shipment_id": shipment.id}, "push-again")
        job = _job(engine, "push-again")
        assert (job.state, job.attempts) == ("dead", 1)
        assert job.last_error == ("order G1 came from channel 'old-shop', which is not configured or is disabled "
                                  "(channels: shop): its tracking numbers were not sent; `hub jobs retry` once "
                                  "the channel is back")
    finally:
        hub.pool.stop()


def _job(engine: Engine, key: str) -> Job:
    with transaction(engine) as s:
        return s.execute(select(Job).where(Job.idempotency_key == key)).scalar_one()


def _label_job(engine: Engine, reference: str) -> Job:
    return _job(engine, f"ship-label:{reference}")


def test_the_label_comes_with_the_booking_and_its_job_never_runs(shipping_fakes: None, db_url: str,
                                                                 engine: Engine, tmp_path: Path) -> None:
    hub, _, shop = _world(tmp_path, db_url, engine)
    try:
        courier: FakeCarrier = INSTANCES["courier-a"]
        shop.place(make_order("shop", "L1", [("A", "s-A", 1, "100.00")]))
        hub.run("orders.poll", {"channel": "shop"}, "poll-1", "shop")
        shipment = _shipment(engine, "L1")
        assert shipment.state == "label_ready" and courier.label_calls == [shipment.reference]
        job = _label_job(engine, shipment.reference)
        assert (job.state, job.attempts, job.result["with_the_booking"]) == ("done", 0, True)
        assert job.result["sha256"] == shipment.label_sha256
    finally:
        hub.pool.stop()


def test_the_tracking_numbers_go_with_the_booking_and_their_job_never_runs(shipping_fakes: None, db_url: str,
                                                                          engine: Engine, tmp_path: Path) -> None:
    hub, _, shop = _world(tmp_path, db_url, engine)
    try:
        shop.place(make_order("shop", "T1", [("A", "s-A", 1, "100.00")]))
        hub.run("orders.poll", {"channel": "shop"}, "poll-1", "shop")
        shipment = _shipment(engine, "T1")
        key = f"ship-tracking:{shipment.reference}"
        assert shipment.tracking_pushed_at is not None and shop.tracking_keys == [key]
        assert len(shop.notices) == 1 and _order(engine, "T1").status == "shipped"
        job = _job(engine, key)
        assert (job.state, job.attempts, job.result["with_the_booking"]) == ("done", 0, True)
    finally:
        hub.pool.stop()


def test_a_channel_down_at_the_booking_gets_the_tracking_numbers_from_their_job_at_once(
        shipping_fakes: None, db_url: str, engine: Engine, tmp_path: Path) -> None:
    hub, _, shop = _world(tmp_path, db_url, engine)
    try:
        shop.tracking_failures = 1
        shop.place(make_order("shop", "T2", [("A", "s-A", 1, "100.00")]))
        started = time.monotonic()
        hub.run("orders.poll", {"channel": "shop"}, "poll-1", "shop")
        shipment = _shipment(engine, "T2")
        key = f"ship-tracking:{shipment.reference}"
        assert shipment.tracking_pushed_at is not None and shop.tracking_keys == [key, key]  # one key: no twin
        assert time.monotonic() - started < 30  # made due at once, not after the safety net's minute
        job = _job(engine, key)
        assert (job.state, job.attempts) == ("done", 1) and "with_the_booking" not in job.result
        assert len(shop.notices) == 1 and _order(engine, "T2").status == "shipped"
    finally:
        hub.pool.stop()


def test_a_worker_dying_before_the_label_leaves_it_to_the_label_job(shipping_fakes: None, db_url: str,
                                                                     engine: Engine, tmp_path: Path,
                                                                     monkeypatch: Any) -> None:
    """Booked and committed, then the worker dies before the label: the label job, queued with the
    booking to run a little later, fetches it. One booking, one label."""
    import hub.shipping.service as service_module

    died: list[str] = []

    def dies(self: Any, ctx: Any, carrier: Any, booking: Any, *args: Any) -> None:
        died.append(booking.reference)
        raise RuntimeError("worker killed after the booking's commit")

    monkeypatch.setattr(service_module, "LABEL_SAFETY_NET", timedelta(milliseconds=300))
    monkeypatch.setattr(service_module.ShippingService, "_label_at_once", dies)
    hub, _, shop = _world(tmp_path, db_url, engine)
    try:
        courier: FakeCarrier = INSTANCES["courier-a"]
        shop.place(make_order("shop", "L2", [("A", "s-A", 1, "100.00")]))
        hub.run("orders.poll", {"channel": "shop"}, "poll-1", "shop")
        shipment = _shipment(engine, "L2")
        assert died == [shipment.reference] and len(courier.bookings) == 1
        assert shipment.state == "label_ready" and courier.label_calls == [shipment.reference]
        job = _label_job(engine, shipment.reference)
        assert (job.state, job.attempts) == ("done", 1) and "with_the_booking" not in job.result
        assert len(list((tmp_path / "labels").rglob("*.pdf"))) == 1
    finally:
        hub.pool.stop()


def test_a_label_not_ready_with_the_booking_is_fetched_by_its_job_at_once(shipping_fakes: None, db_url: str,
                                                                          engine: Engine, tmp_path: Path) -> None:
    hub, _, shop = _world(tmp_path, db_url, engine)
    try:
        courier: FakeCarrier = INSTANCES["courier-a"]
        courier.label_not_ready = 1
        shop.place(make_order("shop", "L3", [("A", "s-A", 1, "100.00")]))
        started = time.monotonic()
        hub.run("orders.poll", {"channel": "shop"}, "poll-1", "shop")
        shipment = _shipment(engine, "L3")
        assert shipment.state == "label_ready" and courier.label_calls == [shipment.reference] * 2
        assert time.monotonic() - started < 30  # made due at once, not after the safety net's minute
        assert _label_job(engine, shipment.reference).attempts == 1
    finally:
        hub.pool.stop()


def test_a_parcel_cancelled_while_its_tracking_is_read_puts_no_problem_on_its_order(
        shipping_fakes: None, db_url: str, engine: Engine, tmp_path: Path, monkeypatch: Any) -> None:
    """Chaos with shipments: the tracking run picked a parcel, the carrier then reported it cancelled
    ("Przesyłka anulowana", an exception), and the withdrawal's cancel committed before the run did: the
    recalled order was left with a shipping problem about a parcel the hub itself had cancelled."""
    hub, _, shop = _world(tmp_path, db_url, engine)
    try:
        courier: FakeCarrier = INSTANCES["courier-a"]
        shop.place(make_order("shop", "X1", [("A", "s-A", 1, "100.00")]))
        hub.run("orders.poll", {"channel": "shop"}, "poll-1", "shop")
        shipment = _shipment(engine, "X1")
        number = courier.bookings[shipment.reference].parcels[0].tracking_number
        real_track = courier.track

        def cancelled_meanwhile(numbers: Any) -> Any:
            with transaction(engine) as s:  # the cancel job commits while the carrier answers
                s.execute(Shipment.__table__.update().where(Shipment.id == shipment.id).values(state="cancelled"))
            courier.events[number] = [TrackingEvent(number, "exception", shipment.created_at, "CX",
                                                    "Przesyłka anulowana")]
            return real_track(numbers)

        monkeypatch.setattr(courier, "track", cancelled_meanwhile)
        hub.run("shipping.track", {}, "track-x")
        assert (_shipment(engine, "X1").problem, _order(engine, "X1").problem) == (None, None)
    finally:
        hub.pool.stop()


def test_a_tracking_run_stops_when_its_time_is_up_and_the_next_goes_on(shipping_fakes: None, db_url: str,
                                                                       engine: Engine, tmp_path: Path,
                                                                       monkeypatch: Any) -> None:
    """A periodic job that asks for minutes is killed with its worker again and again (chaos: a tracking
    job died after 10 attempts): each run asks for its share of time, at least one batch per carrier."""
    from hub.shipping import service

    hub, _, shop = _world(tmp_path, db_url, engine)
    try:
        monkeypatch.setattr(service, "TRACK_RUN_SECONDS", 0.0)
        for n in range(3):
            shop.place(make_order("shop", f"T{n}", [("A", "s-A", 1, "100.00")]))
        hub.run("orders.poll", {"channel": "shop"}, "poll-1", "shop")
        hub.run("shipping.track", {}, "track-1")
        first = _job(engine, "track-1").result
        assert first == {"asked": 2, "moved": 0, "time_up": ["courier-a"]}  # one batch of courier-a's two
        hub.run("shipping.track", {}, "track-2")
        assert _job(engine, "track-2").result["asked"] == 1  # the one left: the first two are not due yet
        with transaction(engine) as s:
            assert s.execute(select(func.count()).select_from(Shipment)
                             .where(Shipment.tracked_at.is_(None))).scalar_one() == 0
    finally:
        hub.pool.stop()
