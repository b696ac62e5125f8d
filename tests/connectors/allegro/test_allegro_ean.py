"""Binding discovery by EAN: unsigned offers (no external.id) get their EAN from the offer's product.

Golden payloads for the pure extraction (each checked against swagger.yaml first), then the channel
on the simulator: who is looked up, how many requests it costs, the cache, and failures. Every
exchange goes through the OpenAPI-validating transport (conftest).
"""

from __future__ import annotations

import time
from typing import Any

import httpx

from connectors.allegro.mapping import OfferEan, ean_from_product, ean_from_product_offer, normalize_ean
from connectors.allegro.simulator import AllegroSimulator, LossyTransport, RequestRecord, product_id_for

EAN = "5901234123457"
EAN_2 = "4006381333931"
PRODUCT_ID = "c9e39cae-9cb6-11e9-a2a3-2a2ae2dbcce4"
PRODUCT_OFFER = "#/components/schemas/SaleProductOfferResponseV1"
PRODUCT = "#/components/schemas/SaleProductDto"


def product_offer(*products: dict[str, Any]) -> dict[str, Any]:
    """A GET /sale/product-offers/{offerId} answer as the vendor documents it (trimmed)."""
    return {
        "id": "12394584234",
        "name": "Kubek ceramiczny 300 ml biały",
        "productSet": list(products),
        "external": {"id": "AH-129834"},
        "sellingMode": {"format": "BUY_NOW", "price": {"amount": "49.99", "currency": "PLN"}},
        "stock": {"available": 4, "unit": "UNIT"},
        "publication": {"status": "ACTIVE"},
        "language": "pl-PL",
    }


def element(product_id: str | None = PRODUCT_ID, parameters: list[dict[str, Any]] | None = None,
            units: int | None = 1) -> dict[str, Any]:
    out: dict[str, Any] = {"product": {"id": product_id, "publication": {"status": "LISTED"},
                                       "parameters": parameters or [], "isAiCoCreated": False}}
    if units is not None:
        out["quantity"] = {"value": units}
    return out


BRAND = {"id": "248811", "name": "Marka", "values": ["Ćmielów"], "valuesIds": ["248811_1"]}
GTIN = {"id": "225693", "name": "EAN (GTIN)", "values": [EAN]}


def sale_product(*parameters: dict[str, Any]) -> dict[str, Any]:
    """A GET /sale/products/{productId} answer (SaleProductDto, trimmed)."""
    return {"id": PRODUCT_ID, "name": "Kubek ceramiczny", "category": {"id": "257931"},
            "parameters": list(parameters), "publication": {"status": "LISTED"}}


# --- mapping: golden payloads ----------------------------------------------------------------


def test_golden_payloads_are_spec_shaped(allegro_spec) -> None:
    payloads = [
        (PRODUCT_OFFER, product_offer(element(parameters=[BRAND, GTIN]))),
        (PRODUCT_OFFER, product_offer(element(parameters=[BRAND]), element(product_id=None, units=None))),
        (PRODUCT, sale_product({**BRAND, "options": {"identifiesProduct": False, "isGTIN": False}},
                               {"id": "225693", "name": "EAN (GTIN)", "values": [EAN_2, EAN],
                                "options": {"identifiesProduct": True, "isGTIN": True}})),
    ]
    for schema, payload in payloads:
        assert not allegro_spec.strict({"$ref": schema}, payload)


def test_ean_from_the_product_offers_gtin_parameter() -> None:
    assert ean_from_product_offer(product_offer(element(parameters=[BRAND, GTIN]))) == OfferEan(ean=EAN)
    spaced = {**GTIN, "values": ["not a gtin", f" {EAN} "]}  # first valid value, compact form
    assert ean_from_product_offer(product_offer(element(parameters=[spaced]))) == OfferEan(ean=EAN)
    no_units = product_offer(element(parameters=[GTIN], units=None))
    assert ean_from_product_offer(no_units) == OfferEan(ean=EAN)


def test_only_the_product_id_when_the_offer_shows_no_gtin() -> None:
    assert ean_from_product_offer(product_offer(element(parameters=[BRAND]))) == OfferEan(product_id=PRODUCT_ID)
    bad_digit = {**GTIN, "values": ["5901234123458"]}
    assert ean_from_product_offer(product_offer(element(parameters=[bad_digit]))) == OfferEan(product_id=PRODUCT_ID)
    # "EAN (GTIN)" is recognised by id: another parameter's digits are not an EAN
    assert ean_from_product_offer(product_offer(element(parameters=[{**BRAND, "values": [EAN]}]))).ean is None


def test_no_ean_without_exactly_one_unit_of_one_product() -> None:
    assert ean_from_product_offer(product_offer()) == OfferEan()
    assert ean_from_product_offer({"id": "1"}) == OfferEan()
    assert ean_from_product_offer(product_offer(element(product_id=None))) == OfferEan()  # no product assigned
    a_set = product_offer(element(parameters=[GTIN]), element(product_id="other", parameters=[GTIN]))
    assert ean_from_product_offer(a_set) == OfferEan()
    assert ean_from_product_offer(product_offer(element(parameters=[GTIN], units=6))) == OfferEan()


def test_ean_from_the_products_gtin_flag() -> None:
    flagged = {"id": "245669", "name": "ISBN", "values": ["978-83-01-00000-1", EAN_2],
               "options": {"identifiesProduct": True, "isGTIN": True}}
    assert ean_from_product(sale_product(BRAND, flagged)) == EAN_2  # the ISBN's check digit is wrong
    assert ean_from_product(sale_product(BRAND, GTIN)) == EAN  # by id, flag or not
    assert ean_from_product(sale_product({**BRAND, "options": {"identifiesProduct": True}})) is None
    assert ean_from_product(sale_product()) is None
    assert ean_from_product({"id": PRODUCT_ID}) is None


def test_normalize_ean() -> None:
    assert normalize_ean("5901234123457") == "5901234123457"
    assert normalize_ean("590-1234-123457") == "5901234123457"
    assert normalize_ean("12345670") == "12345670"  # EAN-8
    assert normalize_ean("04006381333931") == "04006381333931"  # GTIN-14
    for bad in ("", "   ", "123", "5901234123458", "5.901234123457e12", None, 5901234123457):
        assert normalize_ean(bad) is None


# --- the channel -----------------------------------------------------------------------------


def lookups(sim: AllegroSimulator) -> list[str]:
    return [r.path for r in sim.requests if r.path.startswith(("/sale/product-offers/", "/sale/products/"))]


def is_offer_page(record: RequestRecord) -> bool:
    return record.path == "/sale/offers"


def test_unsigned_offer_gets_its_ean_and_signed_offers_cost_nothing(make_channel, sim: AllegroSimulator) -> None:
    signed = sim.add_offers(3)
    sim.add_offer("8000000001", external_id="SKU-X", ean=EAN_2)  # signed: its EAN is not needed
    sim.add_offer("9000000001", ean=EAN, status="ENDED")
    sim.add_offer("9000000002")  # unsigned, no product
    channel, validating = make_channel()
    by_id = {lst.external_id: lst for lst in channel.listings()}
    assert by_id["9000000001"].ean == EAN and by_id["9000000001"].sku is None
    assert by_id["9000000002"].ean is None
    assert all(by_id[o].ean is None for o in [*signed, "8000000001"])
    assert lookups(sim) == ["/sale/product-offers/9000000001", "/sale/product-offers/9000000002"]
    assert sim.request_count() == 1 + 2  # one page, one lookup per unsigned offer
    assert len(validating.checked) == len(sim.requests)  # every exchange validated against the spec


def test_only_signed_offers_need_one_request(make_channel, sim: AllegroSimulator) -> None:
    sim.add_offers(1500)
    channel, _ = make_channel()
    assert len(list(channel.listings())) == 1500
    assert sim.request_count() == sim.request_count(is_offer_page) == 2
    assert lookups(sim) == []


def test_a_second_read_repeats_no_lookup(make_channel, sim: AllegroSimulator) -> None:
    sim.add_offers(2)
    sim.add_offer("9000000001", ean=EAN)
    sim.add_offer("9000000002")
    channel, validating = make_channel()
    first = list(channel.listings())
    sim.reset_requests()
    second = list(channel.listings())
    assert second == first and second[2].ean == EAN
    assert lookups(sim) == [] and sim.request_count() == 1  # the page only; "no product" is remembered too
    assert validating.checked[-1] == ("GET", "/sale/offers", 200)


def test_a_restarted_process_remembers_what_an_earlier_one_learnt(make_channel, sim: AllegroSimulator) -> None:
    """The EANs are kept in the database: a new process (a restart, a second hub) asks nothing again,
    and what is no longer needed (an offer signed or gone) leaves the store too."""
    sim.add_offer("9000000001", ean=EAN)
    sim.add_offer("9000000002")  # no product: "none" is remembered as well
    first, _ = make_channel()
    assert [lst.ean for lst in first.listings()] == [EAN, None]
    sim.reset_requests()
    restarted, _ = make_channel()  # the same account, a new process's instance
    assert [lst.ean for lst in restarted.listings()] == [EAN, None]
    assert lookups(sim) == []
    sim.remove_offer("9000000002")
    assert [lst.ean for lst in restarted.listings()] == [EAN]
    assert set(restarted._memory.recall("offer-ean")) == {"9000000001"}


def test_ean_from_the_product_when_the_offer_names_only_its_product(make_channel, sim: AllegroSimulator) -> None:
    sim.gtin_in_product_offer = False
    sim.add_offer("9000000001", ean=EAN)
    sim.add_offer("9000000002")  # no product: nothing more to read
    channel, validating = make_channel()
    assert [lst.ean for lst in channel.listings()] == [EAN, None]
    assert lookups(sim) == ["/sale/product-offers/9000000001", f"/sale/products/{product_id_for(EAN)}",
                            "/sale/product-offers/9000000002"]
    assert [status for *_, status in validating.checked] == [200] * 4
    sim.reset_requests()
    assert [lst.ean for lst in channel.listings()] == [EAN, None] and lookups(sim) == []


def test_old_eans_are_read_again_and_new_unsigned_offers_looked_up(make_channel, sim: AllegroSimulator) -> None:
    sim.add_offer("9000000001", ean=EAN)
    channel, _ = make_channel(ean_max_age="1ms")
    assert [lst.ean for lst in channel.listings()] == [EAN]
    sim.set_ean("9000000001", EAN_2)  # the seller assigned another product
    time.sleep(0.005)  # what the first read learnt is now too old
    sim.add_offer("9000000002", ean=EAN)
    assert [lst.ean for lst in channel.listings()] == [EAN_2, EAN]
    assert lookups(sim) == ["/sale/product-offers/9000000001"] * 2 + ["/sale/product-offers/9000000002"]

    cached, _ = make_channel("allegro-two")
    assert [lst.ean for lst in cached.listings()] == [EAN_2, EAN]
    sim.reset_requests()
    sim.add_offer("9000000003", ean=EAN_2)
    assert [lst.ean for lst in cached.listings()] == [EAN_2, EAN, EAN_2]
    assert lookups(sim) == ["/sale/product-offers/9000000003"]  # only the new one


def test_lookups_per_read_are_capped_and_the_rest_wait(make_channel, sim: AllegroSimulator) -> None:
    for i in range(1, 4):
        sim.add_offer(f"900000000{i}", ean=EAN)
    channel, _ = make_channel(ean_lookups_per_read=2)
    assert [lst.ean for lst in channel.listings()] == [EAN, EAN, None]
    assert [lst.ean for lst in channel.listings()] == [EAN, EAN, EAN]
    assert len(lookups(sim)) == 3

    off, _ = make_channel("allegro-off", ean_lookups_per_read=0)
    sim.reset_requests()
    assert [lst.ean for lst in off.listings()] == [None, None, None] and lookups(sim) == []


def test_signed_or_deleted_offers_leave_the_cache(make_channel, sim: AllegroSimulator) -> None:
    sim.add_offer("9000000001", ean=EAN)
    sim.add_offer("9000000002", ean=EAN_2)
    channel, _ = make_channel()
    list(channel.listings())
    sim.remove_offer("9000000001")
    sim.add_offer("9000000002", external_id="SKU-2", ean=EAN_2)  # the seller signed it
    assert [(lst.sku, lst.ean) for lst in channel.listings()] == [("SKU-2", None)]
    assert channel._eans == {}
    sim.add_offer("9000000002", external_id=None, ean=EAN_2)  # and unsigned it again: read afresh
    sim.reset_requests()
    assert [lst.ean for lst in channel.listings()] == [EAN_2]
    assert lookups(sim) == ["/sale/product-offers/9000000002"]


def test_an_offer_deleted_during_the_read_is_left_without_ean(make_channel, sim: AllegroSimulator) -> None:
    sim.add_offer("9000000001", ean=EAN)
    sim.add_offer("9000000002", ean=EAN_2)

    def wrap(inner: httpx.BaseTransport) -> httpx.BaseTransport:
        class DeleteAfterPage(httpx.BaseTransport):
            def handle_request(self, request: httpx.Request) -> httpx.Response:
                response = inner.handle_request(request)
                if request.url.path == "/sale/offers":
                    sim.remove_offer("9000000001")
                return response
        return DeleteAfterPage()

    channel, validating = make_channel(wrap=wrap)
    assert [lst.ean for lst in channel.listings()] == [None, EAN_2]
    assert ("GET", "/sale/product-offers/9000000001", 404) in validating.checked
    assert set(channel._eans) == {"9000000002"}  # nothing remembered for the deleted offer


def test_a_failing_lookup_never_fails_the_read(make_channel, sim: AllegroSimulator) -> None:
    sim.add_offers(2)
    sim.add_offer("9000000001", ean=EAN)
    sim.add_offer("9000000002", ean=EAN_2)
    broken = {"on": True}

    def wrap(inner: httpx.BaseTransport) -> httpx.BaseTransport:
        return LossyTransport(inner, timeout_rate=1.0,
                              applies_to=lambda r: broken["on"] and r.url.path.startswith("/sale/product-offers/"))

    channel, _ = make_channel(wrap=wrap, http_attempts=2)
    listings = list(channel.listings())
    assert [lst.ean for lst in listings] == [None] * 4
    assert [lst.sku for lst in listings[:2]] == ["SKU-000001", "SKU-000002"]
    assert sim.request_count() == 1  # the timed-out lookup stopped the others; nothing reached the vendor
    broken["on"] = False
    assert [lst.ean for lst in channel.listings()] == [None, None, EAN, EAN_2]  # the next read looks them up


def test_a_throttled_lookup_stops_the_lookups(make_channel, sim: AllegroSimulator) -> None:
    sim.add_offer("9000000001", ean=EAN)
    sim.add_offer("9000000002", ean=EAN_2)
    sim.block_scale = 0.001

    def wrap(inner: httpx.BaseTransport) -> httpx.BaseTransport:
        class BurstBeforeLookup(httpx.BaseTransport):
            def handle_request(self, request: httpx.Request) -> httpx.Response:
                if request.url.path == "/sale/product-offers/9000000001":
                    sim.start_429_burst()
                return inner.handle_request(request)
        return BurstBeforeLookup()

    channel, validating = make_channel(wrap=wrap, rate_limit_block=0.06)
    assert [lst.ean for lst in channel.listings()] == [None, None]
    assert [status for *_, status in validating.checked] == [200, 429]
    assert sim.block_violations == 0
