"""The orders capability against the simulator: polling by modification time, orders, status
updates, refunds exactly once, and refunds made in the shop reported as returns."""

from __future__ import annotations

import contextlib
from collections import Counter
from collections.abc import Callable
from datetime import timedelta
from decimal import Decimal

import httpx
import pytest
from tenacity import wait_none
from woocommerce_testkit import BASE_URL, KEY, SECRET, Wired, services

from connectors.shops.woocommerce import WooCommerceOptions, build_channel
from connectors.shops.woocommerce import order_mapping as om
from connectors.shops.woocommerce.channel import WooCommerceChannel
from connectors.shops.woocommerce.simulator import START, Faults, WooSimulator
from hub.kernel.errors import OrderChangedOnChannel, PermanentError, RetryableError
from hub.kernel.ports.channel import OrderEvent, RefundRequest, ReturnLine
from hub.platform.ratelimit import LocalRateLimiter, Throttle

Wire = Callable[..., Wired]


def shop(sim: WooSimulator) -> tuple[int, int, int]:
    """A mug (24.60 gross) and a shirt with two variations (49.20 gross)."""
    mug = sim.add_simple("KUB-01", 50, "24.60")
    shirt, (small, _medium) = sim.add_variable("KOSZ", [("KOSZ-S", 30, "49.20"), ("KOSZ-M", 30, "49.20")])
    return mug, shirt, small


def poll(channel: WooCommerceChannel, cursor: str | None) -> tuple[list[OrderEvent], str | None]:
    events, after = channel.order_events(cursor)
    return list(events), after


def poll_all(channel: WooCommerceChannel, cursor: str | None) -> tuple[list[OrderEvent], str | None]:
    """Poll until a call brings nothing new, as the scheduler would over a few minutes."""
    seen: list[OrderEvent] = []
    while True:
        events, cursor = poll(channel, cursor)
        if not events:
            return seen, cursor
        seen += events


class LoseAnswers(httpx.BaseTransport):
    """The shop applies the request, and the answers to the first ``count`` ``method`` requests whose
    path ends with ``suffix`` are lost."""

    def __init__(self, inner: httpx.BaseTransport, method: str, suffix: str, count: int):
        self.inner, self.method, self.suffix, self.left = inner, method, suffix, count

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = self.inner.handle_request(request)
        if request.method == self.method and request.url.path.endswith(self.suffix) and self.left > 0:
            self.left -= 1
            response.read()
            raise httpx.ReadTimeout("simulated: the shop applied it, the answer was lost", request=request)
        return response


# --- polling ------------------------------------------------------------------------------------


def test_the_first_poll_starts_at_the_latest_order_and_reports_nothing(sim: WooSimulator, wire: Wire) -> None:
    mug, _, _ = shop(sim)
    channel = wire().channel
    empty_events, empty_cursor = poll(channel, None)
    assert (empty_events, empty_cursor) == ([], "woo1|2000-01-01T00:00:00|")  # a shop without orders
    old = [sim.add_order([(mug, 1)]) for _ in range(3)]
    sim.advance(5)
    latest = sim.add_order([(mug, 2)])
    events, cursor = poll(channel, None)
    assert events == [] and cursor is not None and cursor.startswith(f"woo1|2024-06-11T10:00:05|{latest}=")
    assert poll(channel, cursor) == ([], cursor)  # nothing changed: nothing reported, the same cursor
    sim.advance()
    sim.set_status(old[0], "completed")
    fresh = sim.add_order([(mug, 1)])
    events, _ = poll(channel, cursor)
    assert [(e.external_id, e.kind) for e in events] == [(str(old[0]), "updated"), (str(fresh), "created")]
    # the poll from the empty shop's start sees every order
    assert {e.external_id for e in poll_all(channel, empty_cursor)[0]} == {str(o) for o in [*old, latest, fresh]}


def test_the_first_poll_ends_after_every_order_of_the_newest_second(sim: WooSimulator, wire: Wire) -> None:
    """Orders that exist when the hub first reads the shop are never imported, those of the newest second
    included; orders placed or changed after that are, even within that very second."""
    mug, _, _ = shop(sim)
    channel = wire().channel
    older = sim.add_order([(mug, 1)])
    sim.advance(3)
    crowd = [sim.add_order([(mug, 1)]) for _ in range(4)]
    sim.set_status(older, "completed")  # an old order changed in the newest second too
    sim.log.clear()
    events, cursor = poll(channel, None)
    assert events == [] and cursor is not None
    assert om.Position.decode(cursor).seen.keys() == {str(o) for o in [*crowd, older]}
    assert len(sim.log) == 1  # one request: the newest page holds the whole newest second
    _, returns_cursor = channel.returns(None)
    assert returns_cursor == cursor
    assert poll(channel, cursor) == ([], cursor)  # none of them is ever imported
    fresh = sim.add_order([(mug, 2)])  # placed in the same second, after the first read
    sim.set_status(crowd[0], "completed")
    events, cursor = poll(channel, cursor)
    assert [(e.external_id, e.kind) for e in events] == [(str(crowd[0]), "updated"), (str(fresh), "created")]
    assert poll(channel, cursor) == ([], cursor)


def test_the_first_poll_reads_a_newest_second_longer_than_a_page(sim: WooSimulator, wire: Wire) -> None:
    mug, _, _ = shop(sim)
    channel = wire().channel
    sim.add_order([(mug, 1)])
    sim.advance()
    crowd = [sim.add_order([(mug, 1)]) for _ in range(130)]  # all in the newest second
    sim.log.clear()
    events, cursor = poll(channel, None)
    assert events == [] and cursor is not None
    assert om.Position.decode(cursor) == om.Position(START + timedelta(seconds=1), {
        str(o): om.fingerprint(sim.order(o)) for o in crowd})
    # the newest page, then the poll's own walk through that second: two pages of 100 and 30
    assert [(e.query["order"], e.query.get("page")) for e in sim.log] == [("desc", None), ("asc", "1"),
                                                                          ("asc", "2")]
    assert poll(channel, cursor) == ([], cursor)
    fresh = sim.add_order([(mug, 1)])
    assert [e.external_id for e in poll(channel, cursor)[0]] == [str(fresh)]


def test_shared_seconds_and_paging_neither_skip_nor_repeat(sim: WooSimulator, wire: Wire) -> None:
    mug, shirt, small = shop(sim)
    channel = wire().channel
    _, cursor = poll(channel, None)
    placed: list[int] = []
    for n in range(140):  # 140 orders in one second: more than a page
        placed.append(sim.add_order([(mug, 1 + n % 3)]))
    for n in range(230):  # then a few orders per second
        if n % 7 == 0:
            sim.advance()
        placed.append(sim.add_order([((shirt, small), 1)]))
    sim.log.clear()
    events, cursor = poll(channel, cursor)
    assert [e.external_id for e in events] == [str(o) for o in placed]  # each once, in order
    assert all(e.kind == "created" for e in events)
    assert events[-1].cursor == cursor and all(e.revision and e.revision.startswith(
        e.occurred_at.strftime("%Y-%m-%dT%H:%M:%S/")) for e in events)
    # each page starts from the newest second read; the page that was all one second (the first 100
    # of the 140) is skipped as the new query's first page, so page 2 follows
    assert [(e.query["modified_after"], e.query["page"]) for e in sim.log] == [
        ("1999-12-31T23:59:59", "1"), ("2024-06-11T09:59:59", "2"), ("2024-06-11T10:00:08", "1"),
        ("2024-06-11T10:00:22", "1")]

    # more orders in the very second the last poll ended in: reported, the earlier ones not again
    later = [sim.add_order([(mug, 1)]) for _ in range(3)]
    events, cursor = poll(channel, cursor)
    assert [e.external_id for e in events] == [str(o) for o in later]
    assert poll(channel, cursor) == ([], cursor)


def test_a_change_within_the_same_second_is_reported_again(sim: WooSimulator, wire: Wire) -> None:
    mug, _, _ = shop(sim)
    channel = wire().channel
    _, cursor = poll(channel, None)
    sim.advance()
    order = sim.add_order([(mug, 1)], status="on-hold", payment_method="bacs")
    (first,), cursor = poll(channel, cursor)
    sim.set_status(order, "processing")  # the seller saw the transfer, still in the same second
    (second,), cursor = poll(channel, cursor)
    assert (first.external_id, second.external_id) == (str(order), str(order))
    assert first.occurred_at == second.occurred_at and first.revision != second.revision
    assert channel.order(str(order)).revision == second.revision
    assert poll(channel, cursor) == ([], cursor)


class ModifyAfterFirstPage(httpx.BaseTransport):
    """Lets the seller edit an order while the poll is between its first and second page."""

    def __init__(self, inner: httpx.BaseTransport, sim: WooSimulator, order: int):
        self.inner, self.sim, self.order, self.done = inner, sim, order, False

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = self.inner.handle_request(request)
        if not self.done and request.url.path.endswith("/orders") and "modified_after" in request.url.params:
            self.done = True
            self.sim.advance(3600)
            self.sim.set_status(self.order, "completed")
        return response


def test_an_order_modified_while_the_poll_pages_is_not_skipped(sim: WooSimulator, wire: Wire) -> None:
    mug, _, _ = shop(sim)
    _, cursor = poll(wire().channel, None)
    placed = []
    for _ in range(250):
        sim.advance()
        placed.append(sim.add_order([(mug, 1)]))
    # the edited order leaves page 1 for the end, and every later order moves one place forward:
    # paging on with page=2 of the same query would never see the order that slid onto page 1
    channel = wire(transport=ModifyAfterFirstPage(sim.transport(), sim, placed[4])).channel
    events, _ = poll_all(channel, cursor)
    counts = Counter(e.external_id for e in events)
    assert set(counts) == {str(o) for o in placed}
    assert counts[str(placed[4])] == 2 and sum(counts.values()) == 251
    assert events[-1].external_id == str(placed[4]) and events[-1].revision == channel.order(str(placed[4])).revision


def test_polls_stop_after_their_page_budget_and_go_on_next_time(sim: WooSimulator, wire: Wire) -> None:
    mug, _, _ = shop(sim)
    channel = wire().channel
    channel.poll_pages = 2
    _, cursor = poll(channel, None)
    for _ in range(450):
        sim.advance()
        sim.add_order([(mug, 1)])
    sizes = []
    while True:
        events, cursor = poll(channel, cursor)
        if not events:
            break
        sizes.append(len(events))
    assert sizes == [199, 198, 53] and sum(sizes) == 450  # each re-anchored page repeats the last second's order


def test_orders_updated_since_pages_through_and_skips_checkout_drafts(sim: WooSimulator, wire: Wire) -> None:
    mug, shirt, small = shop(sim)
    early = sim.add_order([(mug, 1)])
    sim.advance(60)
    since = sim.clock + timedelta(milliseconds=400)  # within the second: the whole second counts
    recent = [sim.add_order([((shirt, small), 1)]) for _ in range(130)]
    sim.add_order([(mug, 1)], status="checkout-draft")  # a cart the block checkout saved
    sim.advance()
    sim.set_status(early, "completed")
    orders = list(wire().channel.orders_updated_since(since))
    assert [o.external_id for o in orders] == [str(o) for o in [*recent, early]]
    assert orders[0].lines[0].offer_id == f"{shirt}/{small}" and orders[-1].status == "completed"


def test_order_reuses_what_the_poll_read_and_fetches_otherwise(sim: WooSimulator, wire: Wire) -> None:
    mug, _, _ = shop(sim)
    wired = wire()
    _, cursor = poll(wired.channel, None)
    sim.advance()
    order = sim.add_order([(mug, 2)], nip="5260001246", billing={"company": "ACME sp. z o.o."})
    (event,), _ = poll(wired.channel, cursor)
    sent = len(wired.transport.sent)
    first = wired.channel.order(event.external_id)
    assert len(wired.transport.sent) == sent  # the hub asks right after the poll: no request
    assert first.revision == event.revision and first.invoice is not None and first.invoice.nip == "5260001246"
    assert first.lines[0].unit_price_gross == Decimal("24.60") and first.payment.status == "paid"
    again = wired.channel.order(event.external_id)
    assert again == first and sim.requests("GET", rf"^/orders/{order}$")  # used once, then fetched
    with pytest.raises(PermanentError, match="woocommerce_rest_shop_order_invalid_id"):
        wired.channel.order("999999")
    with pytest.raises(PermanentError, match="not a WooCommerce order id"):
        wired.channel.order("#1001")


def test_a_broken_cursor_is_permanent(sim: WooSimulator, wire: Wire) -> None:
    with pytest.raises(PermanentError, match=r"not a WooCommerce order cursor.*reset the stored cursor"):
        wire().channel.order_events("17")
    assert sim.log == []


# --- status --------------------------------------------------------------------------------------


def test_set_order_status_puts_the_status_and_returns_the_new_revision(sim: WooSimulator, wire: Wire) -> None:
    mug, _, _ = shop(sim)
    channel = wire().channel
    _, cursor = poll(channel, None)
    sim.advance()
    order = sim.add_order([(mug, 1)])
    _, cursor = poll(channel, cursor)
    sim.advance(30)
    held = channel.order(str(order)).revision
    revision = channel.set_order_status(str(order), "wc-completed", revision=held)
    put = sim.requests("PUT")[-1]
    assert (put.path, put.body) == (f"/orders/{order}", {"status": "completed"})
    assert sim.order(order)["status"] == "completed" and sim.order(order)["date_completed_gmt"] is not None
    (event,), cursor = poll(channel, cursor)  # the hub then sees its own change with the revision it stored
    assert event.revision == revision != held and event.kind == "updated"
    # an earlier status never reopens an order completed in the shop (by the seller or a later push)
    sim.advance(30)
    with pytest.raises(OrderChangedOnChannel, match="completed already; processing not sent"):
        channel.set_order_status(str(order), "processing", revision=revision)
    assert sim.order(order)["status"] == "completed"
    # a revision the shop has moved past: set, but no revision back, so the intake applies the shop's change
    order = sim.add_order([(mug, 1)], status="on-hold")
    assert channel.set_order_status(str(order), "processing", revision="stale/whatever") is None
    assert sim.order(order)["status"] == "processing"

    sim.register_status("shipped")
    channel.set_order_status(str(order), "shipped", revision=None)
    with pytest.raises(PermanentError, match="rest_invalid_param"):
        channel.set_order_status(str(order), "sent-to-moon", revision=None)
    with pytest.raises(PermanentError, match="is not a WooCommerce order status"):
        channel.set_order_status(str(order), "Wysłane!", revision=None)
    assert sim.order(order)["status"] == "shipped"


def test_a_status_is_not_put_over_an_order_the_shop_closed(sim: WooSimulator, wire: Wire) -> None:
    mug, _, _ = shop(sim)
    channel = wire().channel
    for closed in sorted(om.CLOSED_BY_SHOP - {"trash"}):  # a trashed order answers 404 here
        order = sim.add_order([(mug, 1)])
        held = channel.order(str(order)).revision
        sim.set_status(order, closed)  # the buyer or the seller closed it after the hub read it
        with pytest.raises(OrderChangedOnChannel, match=f"is {closed}; processing not sent"):
            channel.set_order_status(str(order), "processing", revision=held)
        assert sim.order(order)["status"] == closed
    assert sim.requests("PUT") == []


def test_a_status_put_whose_answer_is_lost_is_sent_again(sim: WooSimulator, wire: Wire) -> None:
    mug, _, _ = shop(sim)
    order = sim.add_order([(mug, 1)])
    sim.advance()
    channel = wire(transport=LoseAnswers(sim.transport(), "PUT", f"/orders/{order}", 1)).channel
    held = channel.order(str(order)).revision
    revision = channel.set_order_status(str(order), "completed", revision=held)  # absolute: retried in the call
    assert [e.body for e in sim.requests("PUT")] == [{"status": "completed"}] * 2
    assert sim.order(order)["status"] == "completed" and revision == om.revision(sim.order(order))


# --- refunds -------------------------------------------------------------------------------------


def request(order: int, lines: list[ReturnLine], amount: str = "0") -> RefundRequest:
    return RefundRequest(order_external_id=str(order), payment_id=None, lines=lines, amount=Decimal(amount),
                         currency="PLN", reason="REFUND")


def test_a_refund_is_recorded_with_its_lines_and_marked_with_the_key(sim: WooSimulator, wire: Wire) -> None:
    mug, shirt, small = shop(sim)
    order = sim.add_order([(mug, 2), ((shirt, small), 1)], prices_include_tax=False)  # 24.60 and 49.20 net
    items = sim.order(order)["line_items"]
    result = wire().channel.refund(request(order, [ReturnLine("KOSZ-S", f"{shirt}/{small}", 1)]),
                                   idempotency_key="refund:sklep/R-7")
    assert result.status == "RECORDED"  # api_refund is off: the seller sends the money back
    post = sim.requests("POST", "/refunds$")[0]
    assert post.body == {"amount": "60.52", "reason": "REFUND [hub:refund:sklep/R-7]", "api_refund": False,
                         "api_restock": False, "line_items": [{"id": items[1]["id"], "quantity": 1,
                                                               "refund_total": "49.20", "refund_tax": [
                                                                   {"id": 1, "refund_total": "11.32"}]}]}
    (made,) = sim.order_refunds(order)
    assert (str(made["id"]), made["amount"], made["line_items"][0]["quantity"]) == (result.external_id, "60.52", -1)
    assert sim.order(order)["status"] == "processing"  # partly refunded
    assert [e.path for e in sim.log] == [f"/orders/{order}/refunds", f"/orders/{order}", f"/orders/{order}/refunds"]


def test_the_gateway_refunds_only_when_configured_and_able(sim: WooSimulator, wire: Wire) -> None:
    mug, _, _ = shop(sim)
    online = sim.add_order([(mug, 1)], payment_method="przelewy24", transaction_id="P24-1")
    cod = sim.add_order([(mug, 1)], payment_method="cod")
    channel = wire().channel
    channel.api_refund = True
    full = channel.refund(request(online, [], amount="43.05"), idempotency_key="refund:a")
    assert full.status == "REFUNDED" and sim.order(online)["status"] == "refunded"
    with pytest.raises(PermanentError, match="does not support automatic refunds"):
        channel.refund(request(cod, [], amount="10"), idempotency_key="refund:b")
    assert sim.order_refunds(cod) == []
    assert len(sim.requests("POST")) == 1  # cash on delivery cannot refund through the API: nothing is sent


def test_a_refund_beyond_what_is_left_is_refused_before_sending(sim: WooSimulator, wire: Wire) -> None:
    mug, _, _ = shop(sim)
    order = sim.add_order([(mug, 1)])  # 24.60 + 18.45 shipping
    sim.refund_by_hand(order, "30.00", "Rabat")
    with pytest.raises(PermanentError, match=r"exceeds the 13\.05 PLN left to refund"):
        wire().channel.refund(request(order, [], amount="20"), idempotency_key="refund:c")
    assert sim.requests("POST") == []


def test_a_refund_whose_answer_is_lost_is_found_not_made_twice(sim: WooSimulator, wire: Wire) -> None:
    mug, _, _ = shop(sim)
    order = sim.add_order([(mug, 3)])
    channel = wire(transport=LoseAnswers(sim.transport(), "POST", "/refunds", 1)).channel
    refund = request(order, [ReturnLine("KUB-01", str(mug), 1)])
    with pytest.raises(RetryableError, match="not retried: the request may have landed"):
        channel.refund(refund, idempotency_key="refund:sklep/R-9")
    assert len(sim.order_refunds(order)) == 1 and len(sim.requests("POST")) == 1  # one attempt, no in-call retry
    result = channel.refund(refund, idempotency_key="refund:sklep/R-9")  # the queue's retry
    assert result.external_id == str(sim.order_refunds(order)[0]["id"])
    assert len(sim.order_refunds(order)) == 1 and len(sim.requests("POST")) == 1
    other = channel.refund(refund, idempotency_key="refund:sklep/R-10")  # another return of the same line
    assert other.external_id != result.external_id and len(sim.order_refunds(order)) == 2


def test_refunds_happen_once_per_key_under_every_fault(sim: WooSimulator, wire: Wire) -> None:
    mug, shirt, small = shop(sim)
    orders = [sim.add_order([(mug, 2), ((shirt, small), 1)]) for _ in range(25)]
    sim.faults = Faults(error_rate=0.25, error_after_apply=0.5, burst_rate=0.03, timeout_rate=0.05,
                        lost_response_rate=0.1)
    channel = wire().channel
    results = {}
    for order in orders:
        for _ in range(50):  # the queue: again with the same key after every RetryableError
            try:
                results[order] = channel.refund(request(order, [ReturnLine("KUB-01", str(mug), 1)]),
                                                idempotency_key=f"refund:sklep/{order}")
                break
            except RetryableError:
                continue
    sim.clear_faults()
    assert set(results) == set(orders)
    for order in orders:
        (made,) = sim.order_refunds(order)
        assert str(made["id"]) == results[order].external_id and made["amount"] == "24.60"
    faults = Counter(e.fault for e in sim.requests("POST", "/refunds$") if e.fault)
    assert {"502-after-apply", "lost_response"} <= set(faults)  # creates that landed without an answer


# --- returns -------------------------------------------------------------------------------------


def test_returns_are_refunds_made_in_the_shop(sim: WooSimulator, wire: Wire) -> None:
    mug, shirt, small = shop(sim)
    channel = wire().channel
    assert channel.returns(None) == ([], "woo1|2000-01-01T00:00:00|")
    first = sim.add_order([(mug, 2), ((shirt, small), 1)])
    second = sim.add_order([(mug, 1)])
    sim.add_order([(mug, 1)])  # no refunds: its refunds are never listed
    _, cursor = channel.returns(None)
    sim.advance()
    channel.refund(request(first, [ReturnLine("KUB-01", str(mug), 1)]), idempotency_key="refund:sklep/R-1")
    by_hand = sim.refund_by_hand(first, "49.20", "Uszkodzona koszulka", [(sim.order(first)["line_items"][1]["id"], 1)])
    sim.advance()
    sim.set_status(second, "refunded")  # Woo makes the refund of what is left
    sim.log.clear()
    returns, cursor = channel.returns(cursor)
    assert [(r.external_id, r.order_external_id, r.status, r.refunded, r.reason) for r in returns] == [
        (str(by_hand), str(first), "REFUNDED", True, "Uszkodzona koszulka"),
        (str(sim.order_refunds(second)[0]["id"]), str(second), "REFUNDED", True, "Order fully refunded."),
    ]
    assert [(line.offer_id, line.quantity, line.amount_gross) for line in returns[0].lines] == [
        (f"{shirt}/{small}", 1, Decimal("49.20"))]
    assert {e.path for e in sim.log} == {"/orders", f"/orders/{first}/refunds", f"/orders/{second}/refunds"}
    assert channel.returns(cursor) == ([], cursor)
    sim.advance()
    sim.set_status(first, "completed")  # a refunded order changes again: its refunds are reported again
    again, _ = channel.returns(cursor)
    assert [r.external_id for r in again] == [str(by_hand)]


def test_a_refund_cannot_be_rejected(wire: Wire) -> None:
    with pytest.raises(PermanentError, match="cannot be rejected"):
        wire().channel.reject_return("801", "no receipt")


# --- faults ----------------------------------------------------------------------------------------


def test_polling_under_faults_ends_with_every_order_seen(sim: WooSimulator, wire: Wire) -> None:
    mug, shirt, small = shop(sim)
    sim.faults = Faults(error_rate=0.2, burst_rate=0.04, burst_length=3, retry_after=2, timeout_rate=0.05,
                        lost_response_rate=0.05)
    channel = wire().channel
    cursor: str | None = None
    while cursor is None:
        with contextlib.suppress(RetryableError):
            _, cursor = channel.order_events(None)
    latest: dict[str, str | None] = {}
    failures = 0
    placed: list[int] = []
    for round_ in range(40):
        for n in range(round_ % 9):  # bursts sharing a second, changes to older orders, seconds going by
            placed.append(sim.add_order([(mug, 1)] if n % 2 else [((shirt, small), 2)]))
        if placed and round_ % 3 == 0:
            sim.set_status(placed[(round_ * 7) % len(placed)], "completed")
        if round_ % 4 == 0:
            sim.advance()
        try:
            events, cursor = channel.order_events(cursor)
        except RetryableError:
            failures += 1  # the queue keeps the old cursor and calls again later
            continue
        for event in events:
            latest[event.external_id] = event.revision
    sim.clear_faults()
    events, cursor = channel.order_events(cursor)
    for event in events:
        latest[event.external_id] = event.revision
    expected = {str(o): f"{sim.order(o)['date_modified_gmt']}/" for o in placed}
    assert set(latest) == set(expected)
    assert all((latest[o] or "").startswith(prefix) for o, prefix in expected.items())
    assert all(channel.order(o).revision == latest[o] for o in list(expected)[:20])
    assert failures > 0 and {"503", "429"} <= {e.fault for e in sim.log}


def test_options_reach_the_channel(sim: WooSimulator) -> None:
    options = WooCommerceOptions.model_validate({"base_url": BASE_URL, "consumer_key": KEY, "consumer_secret": SECRET,
                                                 "api_refund": True, "nip_meta_keys": ["vat_id"]})
    throttle = Throttle(LocalRateLimiter(), "woocommerce:opt", 300.0, 5.0, sleep=lambda _s: None)
    channel = build_channel("opt", options, services("opt", throttle, sim.transport()), retry_wait=wait_none())
    mug = sim.add_simple("KUB-01", 5, "24.60")
    order = sim.add_order([(mug, 1)], meta={"vat_id": "526-000-12-46"}, billing={"company": "ACME"})
    co = channel.order(str(order))
    assert channel.api_refund and co.invoice is not None and (co.invoice.company, co.invoice.nip) == ("ACME",
                                                                                                       "5260001246")
    assert channel.refund(request(order, [], amount="5.00"), idempotency_key="k").status == "REFUNDED"
