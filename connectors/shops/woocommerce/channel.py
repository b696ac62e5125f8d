"""The SalesChannel port over one WooCommerce shop.

WooCommerce has no idempotency keys, and needs none here: a push only sets
absolute stock and regular price, so when the queue calls ``push`` again with
the same key after a timeout or a 5xx (whether or not the first call landed),
re-sending the same batches converges on the same state.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from hub.errors import RetryableError
from hub.ports import ChangeResult, Listing, ListingChange

from . import mapping
from .client import WooClient, WooRequestError
from .schema import BATCH_LIMIT

PAGE_SIZE = 100  # the most a collection request may ask for


class WooCommerceChannel:
    """Listings and batch pushes for one shop; vendor details stay in client.py and mapping.py."""

    def __init__(self, name: str, client: WooClient, *, currency: str = "PLN", batch_size: int = BATCH_LIMIT):
        self.name = name
        self.client = client
        self.currency = currency
        self.batch_size = batch_size

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
            yield from (item for item in items if isinstance(item, Mapping))
            total_pages = headers.get("X-WP-TotalPages", "")
            last = page >= int(total_pages) if total_pages.isdigit() else len(items) < PAGE_SIZE
            if not items or last:
                return
            page += 1

    def listings(self) -> Iterator[Listing]:
        """Simple products and the variations of variable products; grouped and external
        products are skipped because they hold no stock of their own."""
        for product in self._pages("/products"):
            if mapping.is_variable(product):
                if product.get("variations") == []:
                    continue  # a variable product without variations: nothing to ask for
                for variation in self._pages(f"/products/{product['id']}/variations"):
                    yield mapping.variation_listing(product, variation, self.currency)
            elif mapping.has_own_stock(product):
                yield mapping.product_listing(product, self.currency)

    def push(self, changes: Sequence[ListingChange], *, idempotency_key: str) -> Sequence[ChangeResult]:
        """Send changes in batches of at most 100 per endpoint; one result per change, in order.

        ``idempotency_key`` is not sent anywhere: the writes are absolute, so a repeat is the
        idempotent retry. An error for the request as a whole (429, 5xx after retries, 401)
        propagates, and the queue calls again with the same changes.
        """
        plan = mapping.plan_push(changes, currency=self.currency, batch_size=self.batch_size)
        results: dict[int, ChangeResult] = {**plan.rejected, **plan.unchanged}
        for batch in plan.batches:
            response = self.client.post(batch.path, batch.body)
            results.update(mapping.batch_results(batch, response))
        return [results[i] for i in range(len(changes))]

