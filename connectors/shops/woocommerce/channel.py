"""The SalesChannel, OrderChannel and ReturnsChannel ports over one WooCommerce shop.

WooCommerce has no idempotency keys, and needs none for listings: a push only
sets absolute stock and regular price (and an empty sale price and sale dates,
mapping.py), so when the queue calls ``push`` again
with the same key after a timeout or a 5xx (whether or not the first call
landed), re-sending the same batches converges on the same state. A status
update is absolute too. A refund is not: ``refund`` marks the refund's reason
with the key and looks for it before creating one (see ``refund``).

Orders have no journal either: ``order_events`` polls ``GET /orders`` ordered
by ``date_modified_gmt`` from a ``Position`` (order_mapping.py). Offset paging
over a list that changes while it is read skips entries (an order modified
meanwhile moves to the end and the rest shift forward), so every page after
the first starts again from the newest second already read ("re-anchoring");
only when a whole page shares that second does the poll ask for the next
page of the same query.

Tracking numbers go to the buyer as a customer note (the shop e-mails it) and into the order's meta
(order_mapping.TRACKING_META_KEY). Neither write carries a key, so ``add_tracking`` reads the order's
customer notes and meta first and writes only what they do not show; the note is posted once per
attempt (no in-call retry: a second note is a second e-mail), and a lost answer is found by the next call.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from hub.kernel.errors import OrderChangedOnChannel, PermanentError, RefundNotPossible, RetryableError
from hub.kernel.ports.channel import (
    ChangeResult,
    ChannelOrder,
    ChannelReturn,
    Listing,
    ListingChange,
    OrderEvent,
    RefundRequest,
    RefundResult,
    TrackingNotice,
)

from . import mapping
from . import order_mapping as om
from .client import WooClient, WooRequestError, WooUnavailable
from .schema import BATCH_LIMIT

PAGE_SIZE = 100  # the most a collection request may ask for
POLL_PAGES = 20  # GET /orders requests one order_events or returns call makes at most; the next call goes on
EMPTY_SHOP = datetime(2000, 1, 1, tzinfo=UTC)  # the start position of a shop without orders
_ONE_SECOND = timedelta(seconds=1)


class WooCommerceChannel:
    """Listings, batch pushes, orders and refunds for one shop; vendor details stay in client.py,
    mapping.py and order_mapping.py."""

    # date_created_gmt is ISO 8601 to the second: an order in the same second as the hub's last push may
    # have come after it (hub.listings.reconcile counts it towards a sale hold)
    order_time_resolution = timedelta(seconds=1)

    def __init__(
        self, name: str, client: WooClient, *, currency: str = "PLN", batch_size: int = BATCH_LIMIT,
        api_refund: bool = False, nip_meta_keys: Sequence[str] = om.DEFAULT_NIP_META_KEYS,
        poll_pages: int = POLL_PAGES, reuse_seconds: float = 60.0, allow_shop_sales: bool = False,
    ):
        self.name = name
        self.client = client
        self.currency = currency
        self.batch_size = batch_size
        self.api_refund = api_refund
        self.nip_meta_keys = tuple(nip_meta_keys)
        self.poll_pages = poll_pages
        self.reuse_seconds = reuse_seconds
        self.allow_shop_sales = allow_shop_sales  # True: a push leaves the seller's sale prices in the shop
        # orders the last poll read, so the hub's order() right after it needs no request of its own
        self._polled: dict[str, tuple[float, Mapping[str, Any]]] = {}

    def close(self) -> None:
        self.client.close()

    def _pages(self, path: str) -> Iterator[Mapping[str, Any]]:
        """Every object of a collection, ordered by id so pages stay stable while the shop changes.

        X-WP-TotalPages says when to stop; should a proxy strip it, a short page does.
        """
        page = 1
        while True:
            query = {"per_page": PAGE_SIZE, "page": page, "orderby": "id", "order": "asc"}
            try:
                items, headers = self.client.get(path, query)
            except WooRequestError as exc:
                if page > 1 and exc.code == "rest_post_invalid_page_number":
                    return  # the last page was exactly full and the header was missing
                raise
            if not isinstance(items, list):
                raise RetryableError(f"WooCommerce GET {path}: expected a JSON list, got {type(items).__name__}")
            for item in items:
                if not isinstance(item, Mapping):
                    raise mapping.UnreadableAnswer(f"WooCommerce GET {path}: an item of the list is not an object: "
                                                    f"{str(item)[:100]!r}")
                yield item
            total_pages = headers.get("X-WP-TotalPages", "")
            last = page >= int(total_pages) if total_pages.isdigit() else len(items) < PAGE_SIZE
            if not items or last:
                return
            page += 1

    def listings(self) -> Iterator[Listing]:
        """Simple products and the variations of variable products; grouped and external
        products are skipped because they hold no stock of their own. The price is what a
        buyer pays now (a sale price while one is on), mapping.buyer_price."""
        for product in self._pages("/products"):
            if mapping.is_variable(product):
                if product.get("variations") == []:
                    continue  # a variable product without variations: nothing to ask for
                for variation in self._pages(f"/products/{mapping.product_id(product)}/variations"):
                    yield mapping.variation_listing(product, variation, self.currency,
                                                    allow_shop_sales=self.allow_shop_sales)
            elif mapping.has_own_stock(product):
                yield mapping.product_listing(product, self.currency, allow_shop_sales=self.allow_shop_sales)

    def push(self, changes: Sequence[ListingChange], *, idempotency_key: str) -> Sequence[ChangeResult]:
        """Send changes in batches of at most 100 per endpoint; one result per change, in order.

        ``idempotency_key`` is not sent anywhere: the writes are absolute, so a repeat is the
        idempotent retry. An error for the request as a whole (429, 5xx after retries, 401)
        propagates, and the queue calls again with the same changes.
        """
        plan = mapping.plan_push(changes, currency=self.currency, batch_size=self.batch_size,
                                 allow_shop_sales=self.allow_shop_sales)
        results: dict[int, ChangeResult] = {**plan.rejected, **plan.unchanged}
        for batch in plan.batches:
            response = self.client.post(batch.path, batch.body)
            results.update(mapping.batch_results(batch, response))
        return [results[i] for i in range(len(changes))]

    # --- orders -----------------------------------------------------------------------------

    def _orders_page(self, anchor: datetime, page: int) -> tuple[list[Mapping[str, Any]], bool]:
        """One page of orders modified at or after ``anchor``, oldest change first; and whether more follow.

        ``modified_after`` is exclusive, so the query starts a second earlier: orders sharing the
        anchor's second come back, and the position decides which of them are new.
        """
        query: dict[str, str | int] = {
            "modified_after": om.format_gmt(anchor - _ONE_SECOND), "dates_are_gmt": "true",
            "orderby": "modified", "order": "asc", "per_page": PAGE_SIZE, "page": page,
        }
        try:
            items, headers = self.client.get("/orders", query)
        except WooRequestError as exc:
            if page > 1 and exc.code == "rest_post_invalid_page_number":
                return [], False
            raise
        if not isinstance(items, list):
            raise RetryableError(f"WooCommerce GET /orders: expected a JSON list, got {type(items).__name__}")
        total_pages = headers.get("X-WP-TotalPages", "")
        more = page < int(total_pages) if total_pages.isdigit() else len(items) >= PAGE_SIZE
        return [item for item in items if isinstance(item, Mapping)], more and bool(items)

    def _walk(self, start: om.Position, max_pages: int | None) -> Iterator[tuple[Mapping[str, Any], om.Position]]:
        """Orders changed after ``start``, each with the position just past it."""
        position = start
        anchor, page, requests = start.at, 1, 0
        while max_pages is None or requests < max_pages:
            items, more = self._orders_page(anchor, page)
            requests += 1
            for order in items:
                moment = om.parse_gmt(order.get("date_modified_gmt"))
                if moment is None or not om.parse_id(order.get("id")):
                    continue  # cannot be placed in the sequence; reconciliation by id is all that is left
                order_id, print_ = str(order["id"]), om.fingerprint(order, self.nip_meta_keys)
                if not position.is_new(moment, order_id, print_):
                    continue
                position = position.after(moment, order_id, print_)
                yield order, position
            if not more:
                return
            if position.at > anchor:
                # re-anchor: offsets from here cannot have shifted; a page that was all in its
                # last second would come back whole as the new query's first page, so skip it
                in_last_second = sum(1 for order in items if order.get("date_modified_gmt") == om.format_gmt(
                    position.at))
                anchor, page = position.at, 2 if in_last_second >= PAGE_SIZE else 1
            else:
                page += 1  # a whole page in one second: the same query's next page

    def _latest(self) -> om.Position:
        """Where the shop's order list ends now, by the shop's own clock (so skew cannot skip): the newest
        ``date_modified_gmt`` with every order modified in that second marked seen, so that no order that
        exists already is ever reported, and every order created or changed from now on is.

        The newest page (``orderby=modified&order=desc``) holds the newest second and, unless that whole
        page shares it, every order of that second: one request. A full page in one second is read to
        its end by the poll's own walk from that second.
        """
        items, _headers = self.client.get("/orders", {"orderby": "modified", "order": "desc", "per_page": PAGE_SIZE,
                                                      "dates_are_gmt": "true"})
        if not isinstance(items, list):
            raise RetryableError(f"WooCommerce GET /orders: expected a JSON list, got {type(items).__name__}")
        placed = [(moment, order) for order in items if isinstance(order, Mapping)
                  and (moment := om.parse_gmt(order.get("date_modified_gmt"))) is not None
                  and om.parse_id(order.get("id"))]
        if not placed:
            return om.Position(EMPTY_SHOP)
        newest = max(moment for moment, _order in placed)
        if len(items) >= PAGE_SIZE and min(moment for moment, _order in placed) == newest:
            position = om.Position(newest)
            for _order, reached in self._walk(om.Position(newest), None):
                position = reached
            return position
        return om.Position(newest, {str(order["id"]): om.fingerprint(order, self.nip_meta_keys)
                                    for moment, order in placed if moment == newest})

    def _position(self, cursor: str) -> om.Position:
        try:
            return om.Position.decode(cursor)
        except ValueError as exc:
            raise PermanentError(f"{self.name}: {exc}; reset the stored cursor to start from the shop's "
                                 "latest order") from exc

    def order_events(self, cursor: str | None) -> tuple[Sequence[OrderEvent], str | None]:
        """Orders changed since ``cursor``, oldest change first, at most ``poll_pages`` pages per call.

        ``None`` starts after every order the shop has now (``_latest``) and reports nothing: orders
        that existed before the hub first read the shop are not imported.
        Checkout drafts move the position on but are not orders, so they make no event.
        """
        if cursor is None:
            return [], self._latest().encode()
        start = self._position(cursor)
        position = start
        events: list[OrderEvent] = []
        polled: dict[str, tuple[float, Mapping[str, Any]]] = {}
        now = time.monotonic()
        for order, position in self._walk(start, self.poll_pages):
            if not om.is_order(order):
                continue
            order_id = str(order["id"])
            events.append(OrderEvent(
                cursor=position.encode(), kind=om.event_kind(order, start), external_id=order_id,
                occurred_at=position.at, revision=om.revision(order, self.nip_meta_keys)))
            polled[order_id] = (now, order)
        self._polled = polled
        return events, position.encode()

    def _order_id(self, external_id: str) -> int:
        woo_id = om.parse_id(external_id)
        if not woo_id:
            raise PermanentError(f"{external_id!r} is not a WooCommerce order id")
        return woo_id

    def _get_order(self, woo_id: int) -> Mapping[str, Any]:
        data, _headers = self.client.get(f"/orders/{woo_id}")
        if not isinstance(data, Mapping):
            raise RetryableError(f"WooCommerce GET /orders/{woo_id}: expected a JSON object")
        return data

    def _map(self, order: Mapping[str, Any]) -> ChannelOrder:
        try:
            return om.channel_order(order, self.name, self.nip_meta_keys)
        except ValueError as exc:
            raise PermanentError(str(exc)) from exc

    def order(self, external_id: str) -> ChannelOrder:
        """The order; right after a poll, the copy the poll read (no request)."""
        polled = self._polled.pop(external_id, None)
        if polled is not None and time.monotonic() - polled[0] <= self.reuse_seconds:
            return self._map(polled[1])
        return self._map(self._get_order(self._order_id(external_id)))

    def orders_updated_since(self, since: datetime) -> Iterator[ChannelOrder]:
        """Every order modified at or after ``since`` (to the second), oldest change first."""
        for order, _position in self._walk(om.Position(om.whole_second(since)), None):
            if om.is_order(order):
                yield self._map(order)

    def set_order_status(self, external_id: str, status: str, *, revision: str | None) -> str | None:
        """``PUT /orders/{id}`` with the status alone; returns the order's new revision (``None`` when
        the order had changed since ``revision``).

        Woo has no optimistic locking, and a status is an absolute value, so ``revision`` is not
        needed: a repeat after a lost response finds the status set and sends no second e-mail
        (Woo only mails on a transition). The order is read first: one the shop has cancelled,
        refunded or failed meanwhile is not reopened (``OrderChangedOnChannel``: the hub reads it).
        """
        slug = om.status_slug(status)
        if slug is None:
            raise PermanentError(f"{status!r} is not a WooCommerce order status")
        woo_id = self._order_id(external_id)
        before = self._get_order(woo_id)
        shown = before.get("status")
        if shown in om.CLOSED_BY_SHOP and shown != slug:
            raise OrderChangedOnChannel(f"WooCommerce order {woo_id} is {shown}; {slug} not sent")
        if shown == "completed" and slug != shown and slug not in om.CLOSED_BY_SHOP:
            # completed in the shop (by the seller, or a later push): an earlier status would reopen it
            raise OrderChangedOnChannel(f"WooCommerce order {woo_id} is completed already; {slug} not sent")
        unchanged = revision is not None and om.revision(before, self.nip_meta_keys) == revision
        answer = self.client.put(f"/orders/{woo_id}", {"status": slug})
        if not isinstance(answer, Mapping):
            raise RetryableError(f"WooCommerce PUT /orders/{woo_id}: expected a JSON object")
        if answer.get("status") != slug:
            raise PermanentError(f"WooCommerce order {woo_id} kept status {answer.get('status')!r} after "
                                 f"setting {slug!r} (a plugin may forbid the transition)")
        # the revision after our PUT, only when the order held nothing newer than the hub's revision:
        # otherwise the hub keeps its own, and its intake applies the shop's change
        return om.revision(answer, self.nip_meta_keys) if unchanged else None

    # --- tracking numbers ------------------------------------------------------------------------

    def add_tracking(self, notice: TrackingNotice, *, idempotency_key: str) -> None:
        """A customer note naming the carrier and the numbers the order's customer notes do not show yet, then
        the order meta with every number. A number the seller wrote in a customer note by hand counts as
        shown; a private note does not (the buyer cannot see it).

        WooCommerce has no shipping of its own that would attach a parcel by itself, so ``booked_by_channel``
        changes nothing here: whatever the order does not show is added.
        """
        woo_id = self._order_id(notice.order_external_id)
        try:
            numbers = om.tracking_numbers(notice.tracking_numbers)
        except ValueError as exc:
            raise PermanentError(f"WooCommerce order {woo_id}: {exc}") from exc
        path = f"/orders/{woo_id}/notes"
        notes, _headers = self.client.get(path, {"type": "customer"})
        if not isinstance(notes, list):
            raise RetryableError(f"WooCommerce GET {path}: expected a JSON list, got {type(notes).__name__}")
        shown = om.numbers_in_notes(notes, numbers)
        order = self._get_order(woo_id)
        unnoted = [n for n in numbers if om.tracking_key(n) not in shown]
        if unnoted:
            answer = self.client.post(path, om.tracking_note(notice.operator, unnoted), retry=False)
            if not isinstance(answer, Mapping) or not om.parse_id(answer.get("id")):
                raise RetryableError(f"WooCommerce POST {path}: no note in the answer")
        update = om.tracking_meta_update(om.tracking_meta(order), notice.operator, numbers)
        if update is not None:
            answer = self.client.put(f"/orders/{woo_id}", update)
            if not isinstance(answer, Mapping):
                raise RetryableError(f"WooCommerce PUT /orders/{woo_id}: expected a JSON object")
        self.client.log.info("woocommerce.tracking", order=woo_id, noted=unnoted, shown=len(numbers) - len(unnoted),
                             meta_written=update is not None, key=idempotency_key)

    # --- returns and refunds -------------------------------------------------------------------

    def _refunds(self, woo_id: int) -> list[Mapping[str, Any]]:
        return list(self._pages(f"/orders/{woo_id}/refunds"))

    def returns(self, cursor: str | None) -> tuple[Sequence[ChannelReturn], str | None]:
        """Refunds made in the shop by hand, as returns that are refunded already.

        Woo has refunds, not returns. Creating one stamps its order's ``date_modified``, so
        this walks orders changed since ``cursor`` (its own position, like ``order_events``)
        and lists the refunds of those that have any. Every refund of such an order is
        reported each time the order changes, as a refund cannot be told apart by date
        reliably (the gateway call between saving the refund and the order can take seconds);
        the hub keys returns by refund id, so a repeat changes nothing. Refunds the hub made
        (reason marked ``[hub:...]``) are left out: the hub has them already.
        """
        if cursor is None:
            return [], self._latest().encode()
        start = position = self._position(cursor)
        found: dict[str, ChannelReturn] = {}
        for order, reached in self._walk(start, self.poll_pages):
            position = reached
            if not om.has_refunds_by_hand(order) or not om.is_order(order):
                continue  # the order's refund summary names each refund with its reason
            for refund in self._refunds(int(order["id"])):
                if om.made_by_hub(refund) or not om.parse_id(refund.get("id")):
                    continue
                try:
                    found[str(refund["id"])] = om.channel_return(refund, str(order["id"]), self.name)
                except ValueError as exc:
                    raise PermanentError(str(exc)) from exc
        return list(found.values()), position.encode()

    def reject_return(self, external_id: str, reason: str) -> None:
        raise PermanentError(f"WooCommerce refund {external_id} cannot be rejected: the shop has no returns to "
                             "reject, and a refund it shows is money already given back (reverse it in the shop "
                             "if it was a mistake)")

    def refund(self, request: RefundRequest, *, idempotency_key: str) -> RefundResult:
        """Create the refund once per ``idempotency_key``.

        The reason ends with ``[hub:KEY]``; the order's refunds are listed first and one
        carrying the mark is returned instead of refunding twice. The create itself is sent
        once (no in-call retry): after a timeout or a 5xx the queue calls again, and the
        listing finds the refund if it landed. The money goes back through the payment
        gateway only with ``api_refund = true``; otherwise the shop records the refund and
        the seller pays it back (RefundResult status RECORDED).

        An order paid with a method that cannot refund through the API (om.refunds_through_api:
        bank transfer, cheque, cash on delivery, or no gateway) raises RefundNotPossible, a
        PermanentError, without sending anything: the seller returns the money by hand and marks the
        return refunded. Recording it in the shop with ``api_refund = false`` instead would tell the hub
        that money went back which nobody sent; that is right only when the hub's request says the money
        is returned outside the gateway, and RefundRequest carries no such statement. The same error
        follows when the shop itself answers that the gateway could not refund (500
        woocommerce_rest_cannot_create_order_refund to ``api_refund = true``: WooCommerce then deletes the
        refund it had saved, so a retry finds nothing and creates nothing twice).
        """
        woo_id = self._order_id(request.order_external_id)
        refunds = self._refunds(woo_id)
        if (done := om.find_refund(refunds, idempotency_key)) is not None:
            return om.refund_result(done)
        order = self._get_order(woo_id)
        try:
            body = om.refund_body(order, refunds, request, idempotency_key=idempotency_key,
                                  api_refund=self.api_refund)
        except om.RefundProblem as exc:
            raise PermanentError(f"WooCommerce order {woo_id}: {exc}") from exc
        if not om.refunds_through_api(order):
            raise RefundNotPossible(om.refund_by_hand(order, body, idempotency_key))
        try:
            answer = self.client.post(f"/orders/{woo_id}/refunds", body, retry=False)
        except WooUnavailable as exc:
            if exc.code == "woocommerce_rest_cannot_create_order_refund":
                # WordPress answered: the amount was refused or the gateway declined, and Woo deleted the refund
                if body["api_refund"]:  # the amount was checked above: the gateway did not give the money back
                    raise RefundNotPossible(om.refund_by_hand(order, body, idempotency_key,
                                                              str(exc.__cause__ or exc))) from exc
                raise PermanentError(f"WooCommerce refused the refund for order {woo_id}: {exc}") from exc
            raise
        if not isinstance(answer, Mapping) or not om.parse_id(answer.get("id")):
            raise RetryableError(f"WooCommerce POST /orders/{woo_id}/refunds: no refund in the answer")
        return om.refund_result(answer)
