"""The desired state computed in SQL (hub.listings.desired_sql) is exactly what ``decide`` and
``available_to_sell`` give, on both databases: random products, stock and reservations under rules of
every kind, the listings of each channel compared one by one with the pure functions."""

from __future__ import annotations

import random
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import Engine, select, text

from hub.catalog import DirtySku, Product, StockLevel
from hub.listings import desired, desired_sql
from hub.listings.desired import price_inputs, recompute
from hub.listings.models import Listing, PriceRefusal
from hub.listings.pricing import PricingFile, decide
from hub.listings.rules import Rules
from hub.listings.stock_rules import StockFile, available_to_sell
from hub.orders.models import Reservation
from hub.platform.db import transaction

NOW = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)
PRICE_RULES = {
    "plain": {},
    "marketplace": {"markup_pct": "10", "rounding": "0.99", "commission_pct": "12.3", "fixed_fee": "1.00",
                    "min_margin_pct": "10"},
    "discount": {"markup_pct": "-3.3333", "rounding": "step:0.05", "min_margin_pct": "5.5555"},
    "tens": {"rounding": "9.99", "commission_pct": "8", "fixed_fee": "0.50", "min_margin_pct": "150"},
    "off": {"enabled": False},
    "repricing": {"repricing": {"strategy": "beat", "beat_by": "0.01"}, "min_margin_pct": "3"},  # decide only
    "twin": {},  # plain's price rule and warehouses: one computed table serves both
}
STOCK_RULES = {
    "plain": {}, "marketplace": {"warehouses": ["MAIN", "B"], "safety_buffer": 2, "percent": 50, "max_quantity": 10},
    "discount": {"safety_buffer": 1}, "tens": {"warehouses": ["C"]}, "off": {"percent": 33}, "repricing": {},
    "twin": {"safety_buffer": 3, "percent": 80},
}


def _product(rng: random.Random, n: int) -> dict[str, Any]:
    price = rng.choice([Decimal(rng.randint(1, 2_000_000)) / 100, Decimal(rng.randint(1, 5000)) / 100,
                        Decimal("999999.99"), Decimal("1000000.00"), Decimal("0.01")])
    cost = rng.choice([None, Decimal(0), Decimal(rng.randint(1, 10**8)) / 10000,
                       (price * Decimal(rng.randint(10, 120)) / 100).quantize(Decimal("0.0001")),
                       Decimal("99999.9999"), Decimal("100000")])
    vat = rng.choice(["23", "8", "5", "0", "zw", "np"])
    return {"sku": f"S{n:04d}", "erp": "erp", "name": f"P{n}", "vat_rate": vat,
            "price_gross": price, "currency": rng.choice(["PLN"] * 9 + ["EUR"]), "cost_net": cost,
            "updated_at": NOW}


@pytest.mark.parametrize("seed", [1, 2])
def test_sql_and_decide_agree_on_every_listing(engine: Engine, seed: int) -> None:
    rng = random.Random(seed)
    rules = Rules(PricingFile(channels={c: r for c, r in PRICE_RULES.items()}),
                  StockFile(channels={c: r for c, r in STOCK_RULES.items()}))
    products = [_product(rng, n) for n in range(250)]
    with transaction(engine) as s:
        s.execute(Product.__table__.insert(), products)
        stock = [{"sku": p["sku"], "warehouse": w, "quantity": rng.randint(0, 40), "updated_at": NOW}
                 for p in products for w in rng.sample(["MAIN", "B", "C"], rng.randint(0, 3))]
        if stock:
            s.execute(StockLevel.__table__.insert(), stock)
        s.execute(Reservation.__table__.insert(), [
            {"sku": p["sku"], "quantity": rng.randint(1, 6), "order_ref": f"o{i}",
             "state": rng.choice(["open", "released"]), "created_at": NOW, "updated_at": NOW}
            for i, p in enumerate(rng.sample(products, 80))])
        listings = [{"channel": c, "external_id": f"{c}-{p['sku']}", "sku": p["sku"], "active": True,
                     "desired_price": rng.choice([None, Decimal("1.23")]), "currency": "PLN",
                     "error_retryable": False, "updated_at": NOW} for c in PRICE_RULES for p in products]
        listings.append({"channel": "plain", "external_id": "gone", "sku": "NOT-IN-CATALOGUE", "active": True,
                         "desired_price": Decimal("5.00"), "currency": "PLN", "error_retryable": False,
                         "updated_at": NOW})
        s.execute(Listing.__table__.insert(), listings)
        s.execute(DirtySku.__table__.insert(), [{"sku": p["sku"], "since": NOW} for p in products]
                  + [{"sku": "NOT-IN-CATALOGUE", "since": NOW}])
        before = {(r.channel, r.sku): r.desired_price for r in s.execute(select(Listing)).scalars()}

    by_decide: list[str] = []
    original = desired._recompute_chunk

    def counted(session: Any, rules_: Any, skus: list[str], *args: Any, **kwargs: Any) -> None:
        by_decide.extend(f"{kwargs.get('channel')}/{sku}" for sku in skus)
        original(session, rules_, skus, *args, **kwargs)

    computed: list[str] = []
    compute = desired_sql.compute

    def compute_counted(session: Any, price_rule: Any, stock_rule: Any, dirty: Any) -> int:
        computed.append(desired_sql.computed_for(price_rule, stock_rule)[0] or "off")
        return compute(session, price_rule, stock_rule, dirty)

    with pytest.MonkeyPatch.context() as patch, transaction(engine) as s:
        patch.setattr(desired, "_recompute_chunk", counted)
        patch.setattr(desired_sql, "compute", compute_counted)
        result = recompute(s, rules)
    assert result.skus == 251
    assert len(computed) == 5 == len(set(computed))  # plain and twin shared one; repricing is decide's

    with transaction(engine) as s:
        got = {(r.channel, r.sku): (r.desired_quantity, r.desired_price) for r in s.execute(select(Listing)).scalars()}
        refused = {(r.channel, r.sku): (r.price, r.floor) for r in s.execute(select(PriceRefusal)).scalars()}
        held: dict[str, int] = {}
        for r in s.execute(select(Reservation).where(Reservation.state == "open")).scalars():
            held[r.sku] = held.get(r.sku, 0) + r.quantity
        stock_of: dict[str, dict[str, int]] = {}
        for r in s.execute(select(StockLevel)).scalars():
            stock_of.setdefault(r.sku, {})[r.warehouse] = r.quantity
        rows = {p.sku: p for p in s.execute(select(Product)).scalars()}
    wrong = []
    for (channel, sku), (quantity, price) in sorted(got.items()):
        product = rows.get(sku)
        if product is None:
            assert (quantity, price) == (0, before[(channel, sku)])
            continue
        want_quantity = available_to_sell(stock_of.get(sku, {}), held.get(sku, 0), rules.stock_rule(channel)).quantity
        decision = decide(rules.price_rule(channel), price_inputs(product, None, channel))
        want_price = decision.price if decision.price is not None else before[(channel, sku)]
        if (quantity, price) != (want_quantity, want_price):
            wrong.append((channel, sku, quantity, price, want_quantity, want_price, decision.reason))
        if decision.refused:
            assert refused.get((channel, sku)) == (decision.proposed, decision.floor), (channel, sku)
        else:
            assert (channel, sku) not in refused
    assert wrong == []
    # SQL did the work where the rule allows it: decide saw the rule SQL does not express (repricing)
    # and, of the other channels, only a SKU gone from the catalogue and the rows SQL leaves to it
    # (refused by the floor, not in PLN, out of its bounds)
    assert {key.split("/")[0] for key in by_decide} >= {"repricing"}
    for key in by_decide:
        channel, sku = key.split("/")
        if channel == "repricing":
            continue
        product = rows.get(sku)
        left = product is None or (channel != "off" and (
            decide(rules.price_rule(channel), price_inputs(product, None, channel)).refused
            or product.currency != "PLN" or product.price_gross >= 10**6
            or (product.cost_net is not None and product.cost_net >= 10**5)))
        assert left, key
    for channel in ("plain", "marketplace", "discount", "tens", "off", "twin"):  # and SQL priced the others
        assert sum(1 for key in by_decide if key.startswith(f"{channel}/")) < len(products) * 3 // 4, channel


def test_a_catalogue_sql_covers_whole_never_asks_decide(engine: Engine) -> None:
    """Every dirty SKU computed in SQL (PLN, within bounds, above the floor): no listing is looked for
    to decide, on any channel."""
    rules = Rules(PricingFile(defaults={"markup_pct": "10", "min_margin_pct": "5"}), StockFile())
    with transaction(engine) as s:
        s.execute(Product.__table__.insert(), [
            {"sku": f"S{n:04d}", "erp": "erp", "name": f"P{n}", "vat_rate": "23", "price_gross": Decimal(10 + n),
             "currency": "PLN", "cost_net": Decimal(n % 5), "updated_at": NOW} for n in range(150)])
        s.execute(StockLevel.__table__.insert(), [
            {"sku": f"S{n:04d}", "warehouse": "MAIN", "quantity": n % 7, "updated_at": NOW} for n in range(150)])
        s.execute(Listing.__table__.insert(), [
            {"channel": c, "external_id": f"{c}-{n}", "sku": f"S{n:04d}", "active": True, "currency": "PLN",
             "error_retryable": False, "updated_at": NOW} for c in ("a", "b") for n in range(150)])
        s.execute(DirtySku.__table__.insert(), [{"sku": f"S{n:04d}", "since": NOW} for n in range(150)])
    asked: list[Any] = []
    with pytest.MonkeyPatch.context() as patch, transaction(engine) as s:
        patch.setattr(desired, "_decide_rest", lambda *args: asked.append(args))
        result = recompute(s, rules)
    assert (result.skus, result.listings_changed, asked) == (150, 300, [])
    with transaction(engine) as s:
        got = {(r.sku, r.desired_quantity, r.desired_price)
               for r in s.execute(select(Listing).where(Listing.channel == "b")).scalars()}
    assert ("S0012", 5, Decimal("24.20")) in got and len(got) == 150


@pytest.mark.postgres
def test_a_whole_catalogue_recompute_never_holds_up_an_erp_read_and_loses_no_mark(pg_url: str) -> None:
    """Two processes on one PostgreSQL: while a recompute of the whole catalogue runs, an ERP read marks
    a SKU dirty again (its upsert moves ``since``). The mark is written at once (a lock timeout of one
    second would end it otherwise), and it survives the recompute's delete of the marks it consumed."""
    import threading

    from hub.catalog import mark_dirty
    from hub.platform.db import make_engine

    engine = make_engine(pg_url)
    rules = Rules(PricingFile(defaults={"markup_pct": "10"}), StockFile())
    skus = [f"S{n:04d}" for n in range(150)]
    with transaction(engine) as s:
        s.execute(Product.__table__.insert(), [
            {"sku": sku, "erp": "erp", "name": sku, "vat_rate": "23", "price_gross": Decimal(10), "currency": "PLN",
             "cost_net": Decimal(1), "updated_at": NOW} for sku in skus])
        s.execute(Listing.__table__.insert(), [
            {"channel": "shop", "external_id": sku, "sku": sku, "active": True, "currency": "PLN",
             "error_retryable": False, "updated_at": NOW} for sku in skus])
        s.execute(DirtySku.__table__.insert(), [{"sku": sku, "since": NOW} for sku in skus])
    marked_meanwhile: list[Any] = []
    compute = desired_sql.compute

    def erp_read_during(session: Any, *args: Any) -> int:
        covered = compute(session, *args)

        def erp_read() -> None:
            try:
                with transaction(engine) as other:
                    other.execute(text("SET LOCAL lock_timeout = '1s'"))
                    mark_dirty(other, ["S0007"], datetime.now(UTC))
                marked_meanwhile.append("ok")
            except Exception as exc:  # reported by the assertion below
                marked_meanwhile.append(exc)

        reader = threading.Thread(target=erp_read)
        reader.start()
        reader.join(10)
        return covered

    try:
        with pytest.MonkeyPatch.context() as patch, transaction(engine) as s:
            patch.setattr(desired_sql, "compute", erp_read_during)
            assert recompute(s, rules).skus == 150
        assert marked_meanwhile == ["ok"]
        with transaction(engine) as s:
            assert list(s.execute(select(DirtySku.sku)).scalars()) == ["S0007"]  # its mark stayed; the rest went
    finally:
        engine.dispose()
