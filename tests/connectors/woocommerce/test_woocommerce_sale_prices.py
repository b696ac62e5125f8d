"""Sale prices set by hand in the shop, against the simulator: the listings report what a buyer pays, and a
price push ends the seller's sale so the buyer pays the hub's price, unless the seller runs shop-side
promotions (``allow_shop_sales``)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from decimal import Decimal

from sqlalchemy import Engine
from woocommerce_testkit import Wired

from connectors.shops.woocommerce.simulator import START, WooSimulator
from hub.kernel.clock import utcnow
from hub.kernel.ports.channel import ListingChange
from hub.listings.models import Listing
from hub.listings.reconcile import reconcile
from hub.platform.db import transaction

Wire = Callable[..., Wired]


def prices(wired: Wired) -> dict[str, Decimal | None]:
    return {listing.external_id: listing.price_gross for listing in wired.channel.listings()}


def test_listings_report_the_price_a_buyer_pays_during_a_sale(sim: WooSimulator, wire: Wire) -> None:
    mug = sim.add_simple("KUB-01", 5, "100.00")
    shirt, (small, medium) = sim.add_variable("KOSZ", [("KOSZ-S", 3, "49.00"), ("KOSZ-M", 3, "49.00")])
    later = sim.add_simple("TALERZ", 5, "30.00")
    sim.set_sale(mug, "79.00")  # the seller's promotion, under the hub's price (and maybe its floor)
    sim.set_sale(shirt, "39.00", small)
    sim.set_sale(later, "20.00", start=START + timedelta(days=1))  # scheduled: not on yet
    assert prices(wire()) == {str(mug): Decimal("79.00"), f"{shirt}/{small}": Decimal("39.00"),
                              f"{shirt}/{medium}": Decimal("49.00"), str(later): Decimal("30.00")}
    sim.advance(2 * 86400)  # the scheduled sale is on now
    assert prices(wire())[str(later)] == Decimal("20.00")


def test_a_price_push_ends_the_sale_so_the_buyer_pays_the_hubs_price(sim: WooSimulator, wire: Wire) -> None:
    mug = sim.add_simple("KUB-01", 5, "100.00")
    shirt, (small,) = sim.add_variable("KOSZ", [("KOSZ-S", 3, "49.00")])
    plate = sim.add_simple("TALERZ", 5, "30.00")
    sim.set_sale(mug, "79.00")
    sim.set_sale(shirt, "39.00", small, start=START - timedelta(days=1), end=START + timedelta(days=7))
    sim.set_sale(plate, "20.00", start=START + timedelta(days=1))  # a sale to come ends too
    wired = wire()
    changes = [ListingChange(str(mug), "KUB-01", quantity=4, price_gross=Decimal("100.00")),
               ListingChange(f"{shirt}/{small}", "KOSZ-S", price_gross=Decimal("49.00")),
               ListingChange(str(plate), "TALERZ", price_gross=Decimal("30.00"))]
    results = wired.channel.push(changes, idempotency_key="push:sale")
    assert [(r.external_id, r.ok, r.error) for r in results] == [(c.external_id, True, None) for c in changes]
    for shown in (sim.product(mug), sim.variation(shirt, small), sim.product(plate)):
        assert (shown["sale_price"], shown["on_sale"], shown["date_on_sale_from"], shown["date_on_sale_to_gmt"]) == (
            "", False, None, None)
    assert (sim.product(mug)["price"], sim.variation(shirt, small)["price"]) == ("100.00", "49.00")
    assert prices(wired) == {str(mug): Decimal("100.00"), f"{shirt}/{small}": Decimal("49.00"),
                             str(plate): Decimal("30.00")}
    sim.advance(2 * 86400)
    assert sim.product(plate)["price"] == "30.00"  # the scheduled sale is gone, not just postponed
    # a stock-only change leaves prices and sales alone
    sim.set_sale(mug, "79.00")
    (stock,) = wired.channel.push([ListingChange(str(mug), "KUB-01", quantity=2)], idempotency_key="push:stock")
    assert stock.ok and "sale_price" not in sim.log[-1].body["update"][0]
    assert (sim.product(mug)["stock_quantity"], sim.product(mug)["price"]) == (2, "79.00")


def test_with_shop_sales_allowed_the_sale_stays_and_the_listing_shows_it(sim: WooSimulator, wire: Wire) -> None:
    mug = sim.add_simple("KUB-01", 5, "90.00")
    sim.set_sale(mug, "79.00")
    wired = wire(allow_shop_sales=True)
    assert wired.channel.allow_shop_sales is True
    (result,) = wired.channel.push([ListingChange(str(mug), "KUB-01", price_gross=Decimal("100.00"))],
                                   idempotency_key="push:promo")
    assert result.ok  # the hub's price is the regular price; the seller's sale runs on
    assert sim.log[-1].body == {"update": [{"id": mug, "regular_price": "100.00"}]}
    shown = sim.product(mug)
    assert (shown["regular_price"], shown["sale_price"], shown["price"]) == ("100.00", "79.00", "79.00")
    # the listing reports what buyers pay, so the hub sees the sale price (and can hold it against its floor)
    assert prices(wired) == {str(mug): Decimal("79.00")}


def test_a_shop_sale_the_seller_allows_is_neither_drift_nor_a_push(sim: WooSimulator, wire: Wire,
                                                                   engine: Engine) -> None:
    """With allow_shop_sales the listing carries the regular price the hub sets apart from what a buyer
    pays: the reconcile acknowledges the regular price (no drift, so no push of the same price on every
    reconcile) and keeps the sale price as seen."""
    mug = sim.add_simple("KUB-01", 5, "100.00")
    shirt, (small,) = sim.add_variable("KOSZ", [("KOSZ-S", 3, "49.00")])
    sim.set_sale(mug, "79.00")
    sim.set_sale(shirt, "39.00", small)
    offers = {o.external_id: o for o in wire(allow_shop_sales=True).channel.listings()}
    assert {k: (o.price_gross, o.list_price) for k, o in offers.items()} == {
        str(mug): (Decimal("79.00"), Decimal("100.00")), f"{shirt}/{small}": (Decimal("39.00"), Decimal("49.00"))}
    assert {o.list_price for o in wire().channel.listings()} == {None}  # sales ended by a push: one price
    now = utcnow()
    with transaction(engine) as s:
        s.add(Listing(channel="shop", external_id=str(mug), active=True, currency="PLN", error_retryable=False,
                      ack_quantity=5, ack_price=Decimal("100.00"), acked_at=now - timedelta(minutes=1),
                      updated_at=now))
    with transaction(engine) as s:
        result = reconcile(s, "shop", [offers[str(mug)]], utcnow())
        assert (result.drift, result.sales_held) == (0, 0)
        row = s.query(Listing).filter_by(external_id=str(mug)).one()
        assert (row.ack_price, row.seen_price) == (Decimal("100.00"), Decimal("79.00"))
