"""Which SKU a channel's offer sells: the binding reconciliation made (signature, then EAN)."""

from __future__ import annotations

from collections.abc import Collection

from sqlalchemy import select
from sqlalchemy.orm import Session

from hub.listings.models import Listing


def offer_skus(session: Session, channel: str, offer_ids: Collection[str]) -> dict[str, str | None]:
    """The channel's offers among ``offer_ids`` that the hub knows, with their SKU (None: not bound)."""
    if not offer_ids:
        return {}
    return dict(session.execute(  # type: ignore[arg-type]
        select(Listing.external_id, Listing.sku).where(Listing.channel == channel,
                                                       Listing.external_id.in_(list(offer_ids)))
    ).all())
