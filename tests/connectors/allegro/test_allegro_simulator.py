"""The simulator's own behaviour (filters, media types, limits) and the HTTP layer's error handling."""

from __future__ import annotations

import httpx
import pytest

from connectors.allegro.simulator import AllegroSimulator, Faults, product_id_for
from hub.kernel.errors import RetryableError
from hub.platform.metrics import CONNECTOR_ERRORS

PUBLIC = "application/vnd.allegro.public.v1+json"


@pytest.fixture
def api(sim: AllegroSimulator, validated) -> httpx.Client:
    """A client whose every exchange is checked against the spec."""
    token = sim.issue_tokens()["access_token"]
    return httpx.Client(transport=validated(sim.transport()), base_url="http://sim",
                        headers={"Accept": PUBLIC, "Authorization": f"Bearer {token}"})


@pytest.fixture
def raw(sim: AllegroSimulator) -> httpx.Client:
    """A client for requests the spec forbids (to see the simulator refuse them like the vendor)."""
    token = sim.issue_tokens()["access_token"]
    return httpx.Client(transport=sim.transport(), base_url="http://sim",
                        headers={"Accept": PUBLIC, "Authorization": f"Bearer {token}"})


def test_offer_filters(api: httpx.Client, sim: AllegroSimulator) -> None:
    ids = sim.add_offers(5)
    sim.add_offer("1", external_id="ERP-1", status="ENDED")
    got = api.get("/sale/offers", params=[("external.id", "SKU-000002"), ("external.id", "ERP-1")]).json()
    assert [o["id"] for o in got["offers"]] == [ids[1], "1"] and got["totalCount"] == 2
    got = api.get("/sale/offers", params={"publication.status": "ENDED"}).json()
    assert [o["id"] for o in got["offers"]] == ["1"]
    got = api.get("/sale/offers", params=[("offer.id", ids[0]), ("offer.id", ids[4])]).json()
    assert [o["id"] for o in got["offers"]] == [ids[0], ids[4]]
    got = api.get("/sale/offers", params={"limit": 2, "offset": 4}).json()
    assert (got["count"], got["totalCount"], got["offers"][0]["id"]) == (2, 6, ids[4])
    assert got["offers"][1]["external"] == {"id": "ERP-1"}


def test_product_offers_and_products(api: httpx.Client, sim: AllegroSimulator) -> None:
    sim.add_offer("1", external_id="ERP-1", ean="5901234123457", quantity=3)
    sim.add_offer("2")
    one = api.get("/sale/product-offers/1").json()  # the spec-shaped answer is checked by the transport
    (element,) = one["productSet"]
    product = element["product"]
    assert product["id"] == product_id_for("5901234123457") and element["quantity"] == {"value": 1}
    assert product["parameters"] == [{"id": "225693", "name": "EAN (GTIN)", "values": ["5901234123457"]}]
    assert one["external"] == {"id": "ERP-1"} and one["stock"]["available"] == 3
    bare = api.get("/sale/product-offers/2").json()["productSet"][0]["product"]
    assert bare == {"id": None, "publication": {"status": "NOT_LISTED"}, "parameters": []}
    sim.gtin_in_product_offer = False
    assert api.get("/sale/product-offers/1").json()["productSet"][0]["product"]["parameters"] == []
    catalogue = api.get(f"/sale/products/{product['id']}").json()
    assert catalogue["parameters"][0]["values"] == ["5901234123457"]
    assert catalogue["parameters"][0]["options"]["isGTIN"] is True
    assert api.get("/sale/product-offers/3").status_code == 404
    assert api.get(f"/sale/products/{product_id_for('4006381333931')}").status_code == 404
    sim.remove_offer("1")
    assert api.get("/sale/product-offers/1").status_code == 404


def test_vendor_checks(api: httpx.Client, raw: httpx.Client, sim: AllegroSimulator) -> None:
    assert raw.get("/sale/offers", headers={"Accept": "application/json"}).status_code == 406
    assert raw.get("/sale/offers", params={"limit": 1001}).status_code == 400
    assert raw.get("/sale/offers", params=[("external.id", str(i)) for i in range(101)]).status_code == 400
    assert raw.get("/sale/offers", headers={"Authorization": "Bearer nope"}).status_code == 401
    body = {"modification": {"changeType": "FIXED", "value": 0},
            "offerCriteria": [{"type": "CONTAINS_OFFERS", "offers": [{"id": "1"}]}]}
    answer = api.put("/sale/offer-quantity-change-commands/c-1", json=body, headers={"Content-Type": PUBLIC})
    assert answer.status_code == 422 and "> 0" in answer.json()["errors"][0]["message"]
    body["modification"]["value"] = 3
    assert raw.put("/sale/offer-quantity-change-commands/c-1", json=body).status_code == 415
    too_many = {**body, "offerCriteria": [{"type": "CONTAINS_OFFERS", "offers": [{"id": str(i)} for i in range(1001)]}]}
    assert api.put("/sale/offer-quantity-change-commands/c-2", json=too_many,
                   headers={"Content-Type": PUBLIC}).status_code == 422
    assert api.put("/sale/offer-quantity-change-commands/c-1", json=body,
                   headers={"Content-Type": PUBLIC}).status_code == 201
    assert api.put("/sale/offer-quantity-change-commands/c-1", json=body,
                   headers={"Content-Type": PUBLIC}).status_code == 409
    report = api.get("/sale/offer-quantity-change-commands/c-1").json()
    assert report["taskCount"] == {"failed": 1, "success": 0, "total": 1}  # offer 1 does not exist
    tasks = api.get("/sale/offer-quantity-change-commands/c-1/tasks", params={"limit": 1000}).json()["tasks"]
    assert tasks[0]["status"] == "FAIL" and tasks[0]["errors"][0]["code"] == "OFFER_NOT_FOUND"
    assert api.get("/sale/offer-price-change-commands/c-1").status_code == 404


def test_commands_stay_new_until_their_delay(api: httpx.Client, sim: AllegroSimulator) -> None:
    (offer_id,) = sim.add_offers(1)
    sim.command_delay = 3600
    body = {"publication": {"action": "END"}, "offerCriteria": [{"type": "CONTAINS_OFFERS",
                                                                 "offers": [{"id": offer_id}]}]}
    api.put("/sale/offer-publication-commands/p-1", json=body, headers={"Content-Type": PUBLIC})
    tasks = api.get("/sale/offer-publication-commands/p-1/tasks").json()["tasks"]
    assert [t["status"] for t in tasks] == ["NEW"] and sim.offer(offer_id).status == "ACTIVE"
    sim.process_all()
    assert sim.offer(offer_id).status == "ENDED"
    assert api.get("/sale/offer-publication-commands/p-1").json()["completedAt"]


def test_5xx_is_retried_then_retryable(make_channel, sim: AllegroSimulator) -> None:
    sim.faults = Faults(error_5xx_rate=1.0)
    channel, _ = make_channel(http_attempts=3)
    before = CONNECTOR_ERRORS.labels(channel.name, "5xx")._value.get()
    with pytest.raises(RetryableError, match="503"):
        list(channel.listings())
    assert [r.status for r in sim.requests] == [503, 503, 503]
    assert CONNECTOR_ERRORS.labels(channel.name, "5xx")._value.get() - before == 3


def test_429_honours_retry_after(make_channel, sim: AllegroSimulator) -> None:
    sim.retry_after_header = True
    sim.block_scale = 0.001
    sim.start_429_burst()
    channel, _ = make_channel()
    with pytest.raises(RetryableError) as caught:
        list(channel.listings())
    assert caught.value.retry_after == pytest.approx(0.06)
    assert list(channel.listings()) == [] and sim.block_violations == 0


def test_the_validator_catches_what_the_spec_forbids(sim: AllegroSimulator, validated) -> None:
    token = sim.issue_tokens()["access_token"]
    client = httpx.Client(transport=validated(sim.transport()), base_url="http://sim",
                          headers={"Accept": PUBLIC, "Authorization": f"Bearer {token}", "Content-Type": PUBLIC})
    criteria = [{"type": "CONTAINS_OFFERS", "offers": [{"id": "1"}]}]
    bad_bodies = [
        {"modification": {"type": "FIXED_PRICE", "price": {"amount": 12.3, "currency": "PLN"}},
         "offerCriteria": criteria},  # amount must be a string (checked through the discriminator)
        {"modification": {"type": "FIXED", "price": {"amount": "1.00", "currency": "PLN"}}, "offerCriteria": criteria},
        {"modification": {"type": "FIXED_PRICE", "price": {"amount": "1.00", "currency": "PLN"}},
         "offerCriteria": criteria, "commandId": "x"},  # undeclared property
    ]
    for body in bad_bodies:
        with pytest.raises(Exception, match=r"amount|FIXED|not declared|not valid"):
            client.put("/sale/offer-price-change-commands/c", json=body)
    with pytest.raises(Exception, match=r"limit|1000"):
        client.get("/sale/offers", params={"limit": 1001})
    with pytest.raises(AssertionError, match="Accept"):
        client.get("/sale/offers", headers={"Accept": "application/json"})
    assert sim.request_count() == 0  # nothing invalid reached the simulator


def test_a_purchase_takes_its_units_off_the_offer_and_the_last_one_ends_it(sim: AllegroSimulator) -> None:
    sim.add_offer("7000000001", quantity=3)
    sim.place_order([("7000000001", 2)])
    assert (sim.offer("7000000001").quantity, sim.offer("7000000001").status) == (1, "ACTIVE")
    sim.place_order([("7000000001", 1)], paid=False)  # bought, not paid yet: the unit is taken all the same
    assert (sim.offer("7000000001").quantity, sim.offer("7000000001").status) == (0, "ENDED")
