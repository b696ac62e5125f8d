"""Orders: the event journal, checkout-form mapping, reconciliation paging, fulfillment status, volume.

Every exchange with the simulator goes through ValidatingTransport (conftest): each request the
connector sends and each answer the simulator gives is checked against the vendor's swagger.yaml.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine
from sqlalchemy import event as sql_event

from connectors.allegro.order_mapping import (
    EVENT_TYPES,
    MAX_EVENTS_PAGE,
    MAX_FORMS_PAGE,
    channel_order,
    event_kind,
    order_event,
)
from connectors.allegro.simulator import AllegroSimulator
from hub.kernel.clock import utcnow
from hub.kernel.errors import OrderChangedOnChannel, PermanentError
from hub.kernel.ports.channel import ChannelOrder, InvoiceRequest, OrderChannel, OrderLine, Payment
from hub.kernel.types import Address, PickupPoint

# A CheckoutForm as GET /order/checkout-forms/{id} returns it: cash on delivery to a parcel locker,
# a company invoice, two lines (one offer without the seller's signature). Checked against the spec below.
GOLDEN_FORM: dict[str, Any] = {
    "id": "29738e61-7f6a-11e8-ac45-09db60ede9d6",
    "messageToSeller": "Proszę o staranne zapakowanie",
    "buyer": {"id": "23123123", "email": "pl1x2y3z+abc@allegromail.pl", "login": "User_Login", "firstName": "Jan",
              "lastName": "Kowalski", "guest": False, "phoneNumber": "123123123",
              "address": {"street": "Solna", "city": "Poznań", "postCode": "60-166", "countryCode": "PL"}},
    "payment": {"id": "0f8f1d13-7e9e-11e8-9b00-c5b0dfb78ea6", "type": "CASH_ON_DELIVERY", "provider": "OFFLINE"},
    "status": "READY_FOR_PROCESSING",
    "fulfillment": {"status": "NEW", "shipmentSummary": {"lineItemsSent": "NONE"}, "provider": {"id": "SELLER"}},
    "delivery": {
        "address": {"firstName": "Anna", "lastName": "Nowak", "street": "Grunwaldzka 182", "city": "Poznań",
                    "zipCode": "60-166", "countryCode": "PL", "phoneNumber": "600700800"},
        "method": {"id": "2488f7b7-5d1c-4d65-b85c-4cbcf253fd93", "name": "Allegro Paczkomaty InPost pobranie"},
        "pickupPoint": {"id": "POZ08A", "name": "Paczkomat POZ08A", "description": "Stacja paliw BP",
                        "address": {"street": "Grunwaldzka 108", "zipCode": "60-166", "city": "Poznań",
                                    "countryCode": "PL"}},
        "cost": {"amount": "12.99", "currency": "PLN"},
        "smart": False,
        "calculatedNumberOfPackages": 1,
    },
    "invoice": {"required": True, "address": {
        "street": "Marcinkowskiego 1", "city": "Poznań", "zipCode": "61-745", "countryCode": "PL",
        "company": {"name": "Udix Sp. z o.o.", "ids": [{"type": "PL_NIP", "value": "526-025-02-74"}],
                    "vatPayerStatus": "ACTIVE", "taxId": "5260250274"}}},
    "lineItems": [
        {"id": "62ae358b-8f65-4fc4-9c77-bedf604a2e2b",
         "offer": {"id": "7000000001", "name": "Czarne buty 41", "external": {"id": "SKU-BUTY-41"}},
         "quantity": 2, "originalPrice": {"amount": "129.99", "currency": "PLN"},
         "price": {"amount": "119.99", "currency": "PLN"}, "tax": {"rate": "23.00", "subject": "GOODS"},
         "boughtAt": "2024-03-01T09:15:00.123Z"},
        {"id": "8f1a2b3c-4d5e-4f60-8a71-92b3c4d5e6f7",
         "offer": {"id": "7000000002", "name": "Książka kucharska"},
         "quantity": 1, "originalPrice": {"amount": "39.90", "currency": "PLN"},
         "price": {"amount": "39.90", "currency": "PLN"}, "tax": {"rate": "5.00", "subject": "GOODS"},
         "boughtAt": "2024-03-01T09:15:01.456+01:00"},
    ],
    "surcharges": [],
    "marketplace": {"id": "allegro-pl"},
    "summary": {"totalToPay": {"amount": "292.87", "currency": "PLN"}},
    "updatedAt": "2024-03-01T09:20:30.789Z",
    "revision": "819b5836",
}


def test_checkout_form_golden_mapping(allegro_spec) -> None:
    assert not allegro_spec.strict({"$ref": "#/components/schemas/CheckoutForm"}, GOLDEN_FORM)
    order = channel_order("allegro-main", GOLDEN_FORM)
    assert order == ChannelOrder(
        channel_account="allegro-main",
        external_id="29738e61-7f6a-11e8-ac45-09db60ede9d6",
        revision="819b5836",
        status="READY_FOR_PROCESSING",
        lines=[
            OrderLine(sku="SKU-BUTY-41", offer_id="7000000001", name="Czarne buty 41", quantity=2,
                      unit_price_gross=Decimal("119.99"), vat_rate="23",
                      line_id="62ae358b-8f65-4fc4-9c77-bedf604a2e2b"),
            OrderLine(sku=None, offer_id="7000000002", name="Książka kucharska", quantity=1,
                      unit_price_gross=Decimal("39.90"), vat_rate="5",
                      line_id="8f1a2b3c-4d5e-4f60-8a71-92b3c4d5e6f7"),
            # delivery.cost, part of summary.totalToPay: the lines add up to what the buyer pays (292.87)
            OrderLine(sku=None, offer_id=None, name="Allegro Paczkomaty InPost pobranie", quantity=1,
                      unit_price_gross=Decimal("12.99"), kind="shipping"),
        ],
        buyer_email="pl1x2y3z+abc@allegromail.pl",
        buyer_login="User_Login",
        delivery_address=Address(name="Anna Nowak", street="Grunwaldzka 182", city="Poznań", postal_code="60-166",
                                 country="PL", phone="600700800", email="pl1x2y3z+abc@allegromail.pl"),
        pickup_point=PickupPoint(id="POZ08A", name="Paczkomat POZ08A", address=Address(
            name="Paczkomat POZ08A", street="Grunwaldzka 108", city="Poznań", postal_code="60-166", country="PL")),
        delivery_method="Allegro Paczkomaty InPost pobranie",
        payment=Payment(status="unpaid", amount=Decimal("292.87"), currency="PLN", method="CASH_ON_DELIVERY",
                        cash_on_delivery=True, payment_id="0f8f1d13-7e9e-11e8-9b00-c5b0dfb78ea6"),
        # the NIP exactly as the buyer typed it (PL_NIP id before the deprecated taxId): the hub validates it
        invoice=InvoiceRequest(company="Udix Sp. z o.o.", nip="526-025-02-74", address=Address(
            name="Udix Sp. z o.o.", street="Marcinkowskiego 1", city="Poznań", postal_code="61-745", country="PL",
            company="Udix Sp. z o.o.")),
        currency="PLN",
        # the earliest boughtAt, in UTC (the second line's +01:00 is 08:15:01 UTC)
        created_at=datetime(2024, 3, 1, 8, 15, 1, 456000, tzinfo=UTC),
        updated_at=datetime(2024, 3, 1, 9, 20, 30, 789000, tzinfo=UTC),
    )
    assert order.raw == GOLDEN_FORM
    assert all(t.tzinfo is UTC for t in (order.created_at, order.updated_at))


def test_payment_and_invoice_variants() -> None:
    paid = {**GOLDEN_FORM, "payment": {"id": "0f8f1d13-7e9e-11e8-9b00-c5b0dfb78ea6", "type": "ONLINE",
                                       "provider": "P24", "finishedAt": "2024-03-01T09:16:00.000Z",
                                       "paidAmount": {"amount": "292.87", "currency": "PLN"}}}
    assert channel_order("a", paid).payment.status == "paid"
    short = {**paid, "payment": {**paid["payment"], "paidAmount": {"amount": "100.00", "currency": "PLN"}}}
    assert channel_order("a", short).payment.status == "unpaid"  # a part of the total is not paid
    private = {**GOLDEN_FORM, "invoice": {"required": True, "address": {
        "street": "Solna 1", "city": "Poznań", "zipCode": "60-166", "countryCode": "PL",
        "naturalPerson": {"firstName": "Jan", "lastName": "Kowalski"}}}}
    assert channel_order("a", private).invoice is None  # no company, no NIP: not an invoice request
    legacy = {**GOLDEN_FORM, "invoice": {"required": True, "address": {
        **GOLDEN_FORM["invoice"]["address"], "company": {"name": "X", "vatPayerStatus": "ACTIVE",
                                                         "taxId": "PL5260250274"}}}}
    assert channel_order("a", legacy).invoice.nip == "PL5260250274"  # type: ignore[union-attr]
    courier = {**GOLDEN_FORM, "delivery": {k: v for k, v in GOLDEN_FORM["delivery"].items() if k != "pickupPoint"}}
    assert channel_order("a", courier).pickup_point is None


def test_event_kinds_and_mapping() -> None:
    assert [event_kind(t) for t in EVENT_TYPES] == ["created", "updated", "updated", "cancelled", "updated",
                                                    "cancelled", "updated"]
    assert event_kind("SOMETHING_NEW") == "updated"
    event = order_event({"id": "1532603898317497", "type": "READY_FOR_PROCESSING",
                         "occurredAt": "2018-10-12T12:12:32.321+02:00",
                         "order": {"checkoutForm": {"id": "88ae369b-8f65-4fc4-9c77-bedf604a2e2b",
                                                    "revision": "819b5836"}}})
    assert event is not None
    assert (event.cursor, event.kind, event.external_id, event.revision) == (
        "1532603898317497", "updated", "88ae369b-8f65-4fc4-9c77-bedf604a2e2b", "819b5836")
    assert event.occurred_at == datetime(2018, 10, 12, 10, 12, 32, 321000, tzinfo=UTC)
    assert order_event({"id": "1", "type": "BOUGHT", "occurredAt": "2018-10-12T10:12:32Z", "order": {}}) is None


# --- through the simulator -------------------------------------------------------------------------


def events_requests(sim: AllegroSimulator) -> list[Any]:
    return [r for r in sim.requests if r.path == "/order/events"]


def test_channel_is_an_order_channel(make_channel) -> None:
    channel, _ = make_channel()
    assert isinstance(channel, OrderChannel)


def test_first_cursor_is_the_journal_end_then_pages_until_short(make_channel, sim: AllegroSimulator) -> None:
    sim.add_offers(10)
    channel, validating = make_channel()
    assert channel.order_events(None) == ([], "")  # an empty journal: "" reads it from its beginning
    first = sim.place_order([("7000000001", 1)])
    events, cursor = channel.order_events("")
    assert [(e.kind, e.external_id) for e in events] == [("created", first), ("updated", first)]
    assert "from=" not in events_requests(sim)[-1].query

    sim.place_orders_bulk(700)  # 1,400 events before the hub starts
    events, start = channel.order_events(None)
    assert events == [] and start == str(sim.journal()[-1].id)  # the hub starts at the end
    ids = sim.place_orders_bulk(600)
    sim.reset_requests()
    events, cursor = channel.order_events(start)
    assert len(events) == 1200 and cursor == str(sim.journal()[-1].id) and cursor == events[-1].cursor
    assert [e.external_id for e in events[::2]] == ids and {e.kind for e in events[::2]} == {"created"}
    pages = events_requests(sim)
    assert len(pages) == 2  # 1,000 then 200 (< limit): done
    assert all("limit=1000" in p.query for p in pages)
    assert f"from={start}" in pages[0].query and f"from={events[999].cursor}" in pages[1].query
    assert all(f"type={t}" in pages[0].query for t in EVENT_TYPES)
    assert channel.order_events(cursor) == ([], cursor)  # nothing new: the same cursor back
    assert ("GET", "/order/event-stats", 200) in validating.checked


def test_revisions_and_cancellation_in_the_journal(make_channel, sim: AllegroSimulator) -> None:
    (offer_id,) = sim.add_offers(1)
    channel, _ = make_channel()
    _, cursor = channel.order_events(None)
    order_id = sim.place_order([(offer_id, 1)], paid=False)
    sim.pay_order(order_id)
    sim.cancel_order(order_id, auto=True)
    events, _ = channel.order_events(cursor)
    assert [e.kind for e in events] == ["created", "updated", "updated", "cancelled"]
    revisions = [e.revision for e in events]
    assert len(set(revisions)) == 4  # every change is a new revision
    order = channel.order(order_id)
    assert (order.status, order.revision) == ("CANCELLED", revisions[-1])
    assert order.payment.status == "paid"


def test_duplicates_and_out_of_order_events_are_returned_for_the_hub_to_dedupe(
    make_channel, sim: AllegroSimulator
) -> None:
    """The connector hands the journal over as it is (#2589 duplicates, #1133 out of order); the hub
    collapses events by checkout-form id and reads each order once (hub.orders.service.OrderService.handle_poll)."""
    sim.add_offers(2)
    channel, _ = make_channel()
    _, cursor = channel.order_events(None)
    twice = sim.place_order([("7000000001", 1)], duplicate=True)
    swapped = sim.place_order([("7000000002", 2)], out_of_order=True)
    events, cursor = channel.order_events(cursor)
    assert [(e.kind, e.external_id) for e in events] == [
        ("created", twice), ("updated", twice), ("updated", twice),  # READY_FOR_PROCESSING twice
        ("updated", swapped), ("created", swapped),  # READY_FOR_PROCESSING journalled before BOUGHT
    ]
    assert events[1].cursor != events[2].cursor and events[1].revision == events[2].revision
    latest = {e.external_id: e for e in events}  # what the hub does
    orders = [channel.order(external_id) for external_id in latest]
    assert [(o.external_id, o.status) for o in orders] == [(twice, "READY_FOR_PROCESSING"),
                                                           (swapped, "READY_FOR_PROCESSING")]
    assert orders[1].revision == sim.checkout_form(swapped)["revision"]


def test_order_from_the_simulator(make_channel, sim: AllegroSimulator) -> None:
    sim.add_offer("7000000001", external_id="SKU-1", price="19.99", name="Kubek")
    sim.add_offer("7000000002", external_id="SKU-2", price="5.00", name="Podstawka")
    channel, validating = make_channel()
    order_id = sim.place_order([("7000000001", 2), ("7000000002", 3, "4.50")], cod=True, invoice_nip="5260250274",
                               pickup_point="POZ08A", delivery_cost="9.99")
    order = channel.order(order_id)
    assert [(line.sku, line.offer_id, line.quantity, line.unit_price_gross) for line in order.lines] == [
        ("SKU-1", "7000000001", 2, Decimal("19.99")), ("SKU-2", "7000000002", 3, Decimal("4.50")),
        (None, None, 1, Decimal("9.99"))]  # the delivery the buyer paid
    assert sum(line.unit_price_gross * line.quantity for line in order.lines) == order.payment.amount
    assert order.payment == Payment(status="unpaid", amount=Decimal("63.47"), currency="PLN",
                                    method="CASH_ON_DELIVERY", cash_on_delivery=True,
                                    payment_id=sim.checkout_form(order_id)["payment"]["id"])
    assert order.pickup_point is not None and order.pickup_point.id == "POZ08A"
    assert order.invoice is not None and order.invoice.nip == "5260250274"
    assert order.status == "READY_FOR_PROCESSING" and order.created_at.tzinfo is UTC
    assert validating.checked[-1] == ("GET", f"/order/checkout-forms/{order_id}", 200)
    with pytest.raises(PermanentError, match="no order"):
        channel.order("00000000-0000-4000-8000-000000000000")


def test_orders_updated_since_pages_by_update_time(make_channel, sim: AllegroSimulator) -> None:
    sim.add_offers(5)
    ticks = iter(range(1_000_000))
    sim._wall = lambda: datetime(2024, 3, 1, tzinfo=UTC) + timedelta(milliseconds=next(ticks))  # every stamp later
    old = sim.place_orders_bulk(20)
    since = sim.checkout_form(old[-1])["updatedAt"]
    ids = sim.place_orders_bulk(230)
    channel, _ = make_channel()
    sim.reset_requests()
    seen = []
    for n, order in enumerate(channel.orders_updated_since(datetime.fromisoformat(since) + timedelta(milliseconds=1))):
        seen.append(order.external_id)
        if n == 5:
            sim.modify_order(ids[0])  # changes during the read: it moves to the end, nothing shifts
    assert seen[:len(ids)] == ids and seen[len(ids):] == [ids[0]]
    pages = [r for r in sim.requests if r.path == "/order/checkout-forms"]
    assert len(pages) == 3 and all("limit=100" in p.query and "sort=updatedAt" in p.query for p in pages)
    assert all("offset=" in p.query and "updatedAt.gte=" in p.query for p in pages)


def test_orders_updated_since_with_equal_update_times(make_channel, sim: AllegroSimulator) -> None:
    sim.add_offers(3)
    frozen = datetime(2024, 3, 1, 12, tzinfo=UTC)
    sim._wall = lambda: frozen  # the vendor's milliseconds collide: keys repeat, the offset skips
    ids = sim.place_orders_bulk(250)
    channel, _ = make_channel()
    assert [o.external_id for o in channel.orders_updated_since(frozen)] == ids
    assert [o.external_id for o in channel.orders_updated_since(frozen + timedelta(seconds=1))] == []


def test_fulfillment_stale_revision_is_refetched_and_retried(make_channel, sim: AllegroSimulator) -> None:
    (offer_id,) = sim.add_offers(1)
    channel, validating = make_channel()
    order_id = sim.place_order([(offer_id, 1)])
    held = channel.order(order_id).revision
    sim.modify_order(order_id)  # the buyer changed the address: the hub's revision is stale
    sim.reset_requests()
    new = channel.set_order_status(order_id, "PROCESSING", revision=held)
    form = sim.checkout_form(order_id)
    # set, but no revision back: that revision also holds the buyer's change, which the hub's intake must
    # still apply (it would skip a revision it holds as seen)
    assert form["fulfillment"]["status"] == "PROCESSING" and new is None
    assert [(r.method, r.status) for r in sim.requests] == [("PUT", 409), ("GET", 200), ("PUT", 204)]
    assert f"checkoutForm.revision={held}" in sim.requests[0].query
    assert sim.requests[0].body == b'{"status":"PROCESSING"}'
    assert ("PUT", f"/order/checkout-forms/{order_id}/fulfillment", 204) in validating.checked
    # the current revision goes through at once, and the revision after it is ours alone
    sim.reset_requests()
    current = form["revision"]
    assert channel.set_order_status(order_id, "SENT", revision=current) == sim.checkout_form(order_id)["revision"]
    assert [(r.method, r.status) for r in sim.requests] == [("PUT", 204), ("GET", 200)]


def test_fulfillment_never_goes_back_behind_what_the_form_shows(make_channel, sim: AllegroSimulator) -> None:
    (offer_id,) = sim.add_offers(1)
    channel, _ = make_channel()
    order_id = sim.place_order([(offer_id, 1)])
    held = channel.order(order_id).revision
    channel.set_order_status(order_id, "SENT", revision=held)  # a tracking number added: Allegro sets SENT
    sim.reset_requests()
    with pytest.raises(OrderChangedOnChannel, match="is SENT already; PROCESSING not sent"):
        channel.set_order_status(order_id, "PROCESSING", revision=held)  # a push queued before it
    assert [(r.method, r.status) for r in sim.requests] == [("PUT", 409), ("GET", 200)]
    assert sim.checkout_form(order_id)["fulfillment"]["status"] == "SENT"


def test_fulfillment_is_not_set_on_a_form_the_buyer_cancelled(make_channel, sim: AllegroSimulator) -> None:
    (offer_id,) = sim.add_offers(1)
    channel, _ = make_channel()
    order_id = sim.place_order([(offer_id, 1)])
    held = channel.order(order_id).revision
    sim.cancel_order(order_id)  # after the hub read it: its revision is stale
    sim.reset_requests()
    with pytest.raises(OrderChangedOnChannel, match="cancelled"):
        channel.set_order_status(order_id, "PROCESSING", revision=held)
    assert [(r.method, r.status) for r in sim.requests] == [("PUT", 409), ("GET", 200)]
    form = sim.checkout_form(order_id)
    assert form["status"] == "CANCELLED" and form["fulfillment"]["status"] == "NEW"


def test_fulfillment_lost_answer_and_refusals(make_channel, sim: AllegroSimulator) -> None:
    (offer_id,) = sim.add_offers(1)

    class LoseFirstPut(httpx.BaseTransport):
        def __init__(self, inner: httpx.BaseTransport):
            self.inner, self.lost = inner, False

        def handle_request(self, request: httpx.Request) -> httpx.Response:
            response = self.inner.handle_request(request)
            if request.method == "PUT" and not self.lost:
                self.lost = True
                raise httpx.ReadTimeout("answer lost", request=request)
            return response

    channel, _ = make_channel(wrap=LoseFirstPut)
    order_id = sim.place_order([(offer_id, 1)])
    held = sim.checkout_form(order_id)["revision"]
    # the PUT landed, its answer did not: the resend's revision is stale, and the form already shows it
    # (no revision back: the hub cannot know that nothing else changed the form meanwhile)
    assert channel.set_order_status(order_id, "READY_FOR_SHIPMENT", revision=held) is None
    assert sim.fulfillment_puts == 2 and sim.checkout_form(order_id)["fulfillment"]["status"] == "READY_FOR_SHIPMENT"
    with pytest.raises(PermanentError, match="RETURNED"):
        channel.set_order_status(order_id, "RETURNED", revision=None)  # only the vendor sets it
    sim.fulfillment_ops_limit = 1
    with pytest.raises(PermanentError, match="limit of operations"):
        channel.set_order_status(order_id, "SENT", revision=None)
    with pytest.raises(PermanentError, match="no order"):
        channel.set_order_status("00000000-0000-4000-8000-000000000000", "SENT", revision=None)


def test_prefetch_is_skipped_for_few_orders_and_off_when_disabled(make_channel, sim: AllegroSimulator) -> None:
    sim.add_offers(3)
    channel, _ = make_channel(order_prefetch_min=0)
    _, cursor = channel.order_events(None)
    ids = sim.place_orders_bulk(30)
    channel.order_events(cursor)
    sim.reset_requests()
    assert [channel.order(i).external_id for i in ids] == ids
    assert sim.request_count(lambda r: r.path.startswith("/order/checkout-forms/")) == 30
    assert sim.request_count(lambda r: r.path == "/order/checkout-forms") == 0


@contextmanager
def counted_statements(engine: Engine) -> Iterator[list[str]]:
    """The SQL statements sent through ``engine`` inside the block (each executemany counts once)."""
    statements: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        statements.append(statement)

    sql_event.listen(engine, "before_cursor_execute", record)
    try:
        yield statements
    finally:
        sql_event.remove(engine, "before_cursor_execute", record)


def test_10000_orders_from_the_journal(make_channel, sim: AllegroSimulator, engine: Engine) -> None:
    """The benchmark's shape: 10,000 orders placed, the journal read, every order mapped. The events come
    1000 a request and the forms 100 a request from the listing, so the vendor sees 121 requests, not
    10,000 (9,000 a minute max), and the database one token read per request, nothing per order.
    Counted, not timed: bench/orders.py measures the speed."""
    sim.add_offers(500)
    channel, _ = make_channel(validate=False)  # volume: not validated (test_prefetched_pages_are_spec_valid is)
    _, cursor = channel.order_events(None)
    ids = sim.place_orders_bulk(10_000, cod_every=7, pickup_every=3, invoice_every=11)
    sim.reset_requests()
    with counted_statements(engine) as statements:
        events, cursor = channel.order_events(cursor)
        latest = {e.external_id: e for e in events}
        orders = [channel.order(external_id) for external_id in latest]
    assert len(events) == 20_000 and [o.external_id for o in orders] == ids
    assert sum(o.payment.cash_on_delivery for o in orders) == len(range(0, 10_000, 7))
    journal_pages = sim.request_count(lambda r: r.path == "/order/events")
    form_pages = sim.request_count(lambda r: r.path == "/order/checkout-forms")
    requests = sim.request_count()
    print(f"\n10,000 orders: {journal_pages} journal pages + {form_pages} form pages = {requests} requests, "
          f"{len(statements)} SQL statements")
    assert journal_pages == 20_000 // MAX_EVENTS_PAGE + 1  # full pages, then the empty one that ends the read
    assert form_pages == 10_000 // MAX_FORMS_PAGE  # stops at the page holding the last order it needs
    assert sim.request_count(lambda r: r.path.startswith("/order/checkout-forms/")) == 0  # none read one by one
    assert requests == journal_pages + form_pages == 121
    # the database: the access token looked up once a request (on SQLite each in a BEGIN IMMEDIATE
    # transaction), never a statement per order
    queries = [s for s in statements if not s.startswith("BEGIN")]
    assert len(queries) == requests and len(statements) <= 2 * requests
    assert all(q.startswith("SELECT") and "FROM connector_tokens" in q for q in queries)


def test_prefetched_pages_are_spec_valid(make_channel, sim: AllegroSimulator) -> None:
    """The same path as the volume test, smaller, through the validating transport."""
    sim.add_offers(7)
    channel, validating = make_channel()
    _, cursor = channel.order_events(None)
    ids = sim.place_orders_bulk(150, cod_every=2, pickup_every=3, invoice_every=5)
    events, _ = channel.order_events(cursor)
    sim.reset_requests()
    orders = [channel.order(i) for i in {e.external_id: e for e in events}]
    assert [o.external_id for o in orders] == ids and sim.request_count() == 0
    assert ("GET", "/order/checkout-forms", 200) in validating.checked


def test_orders_updated_since_empty(make_channel, sim: AllegroSimulator) -> None:
    channel, _ = make_channel()
    assert list(channel.orders_updated_since(utcnow())) == []
