"""What a push job learned: per offer, the acknowledged quantity and price, or the error."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import and_, update
from sqlalchemy.orm import Session

from hub.kernel.clock import utcnow
from hub.listings.models import Listing, PriceHistory


def record_results(session: Session, job_id: int, channel: str, items: Sequence[dict[str, Any]],
                   results: Iterable[Any], sent_at: datetime | None = None,
                   planned_at: datetime | None = None) -> tuple[int, int]:
    """``sent_at``: when the push began (before the channel applied it): the listing's ``known_at``.
    ``planned_at``: when the job's values were planned (its creation). A refusal is of those values:
    it is dated from then, so a desired state computed after them is not taken as refused too (a push
    retried after a crash, refused half a minute later, had blocked the newer quantity for good)."""
    now = utcnow()
    by_external = {r.external_id: r for r in results}
    ok = failed = 0
    for item in items:
        mine = and_(Listing.id == item["listing_id"], Listing.inflight_job_id == job_id)
        result = by_external.get(item["external_id"])
        if result is not None and result.ok:
            values: dict[str, Any] = {"acked_at": now, "last_error": None, "last_error_at": None,
                                      "error_retryable": False, "inflight_job_id": None, "updated_at": now}
            if "quantity" in item:
                values["ack_quantity"] = item["quantity"]
                values["known_at"] = sent_at or now
            if "price" in item:
                values["ack_price"] = Decimal(item["price"])
                session.add(PriceHistory(
                    channel=channel, sku=item["sku"], external_id=item["external_id"],
                    old_price=None if item.get("old_price") is None else Decimal(item["old_price"]),
                    new_price=Decimal(item["price"]), job_id=job_id, at=now,
                ))
            ok += 1
        else:
            error = result.error if result is not None else "the channel returned no result for this offer"
            retryable = result.retryable if result is not None else True
            # a retryable failure pauses the listing from now (hub.listings.plan); a refusal blocks only
            # the desired state it was planned from
            at = now if retryable or planned_at is None else min(planned_at, now)
            values = {"last_error": error, "last_error_at": at, "error_retryable": retryable,
                      "inflight_job_id": None, "updated_at": now}
            failed += 1
        session.execute(update(Listing).where(mine).values(**values))
    return ok, failed
