"""Which SKU a channel's offer sells: the binding reconciliation made (signature, then EAN)."""

from __future__ import annotations

from collections.abc import Collection

from sqlalchemy import func, select
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


def bound_offers(session: Session, channels: Collection[str]) -> int:
    """How many active offers of these channels are bound to a SKU (0 on a fresh database: nothing to
    compare until `hub sync --full` has read the channels)."""
    if not channels:
        return 0
    return session.execute(
        select(func.count()).select_from(Listing).where(Listing.channel.in_(list(channels)), Listing.sku.is_not(None),
                                                       Listing.active.is_(True))
    ).scalar_one()
