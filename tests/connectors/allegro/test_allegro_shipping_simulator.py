"""The simulator's Ship with Allegro side refuses what the vendor's material says Allegro refuses, and
answers what the spec says it answers (spec-shaped answers are checked by the validating transport)."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from connectors.allegro.simulator import AllegroSimulator
from connectors.allegro.simulator_shipping import DPD_COURIER, INPOST_LOCKER

PUBLIC = "application/vnd.allegro.public.v1+json"
SM = "/shipment-management"
ADDRESS = {"name": "Anna", "street": "Prosta 1", "city": "Warszawa", "postalCode": "00-001", "countryCode": "PL",
           "email": "a@example.com", "phone": "500600700"}
BUYER = {**ADDRESS, "email": "x1+2@allegromail.pl"}
CM = {"value": 10, "unit": "CENTIMETER"}
PACKAGE = {"type": "PACKAGE", "length": CM, "width": CM, "height": CM, "weight": {"value": 1.5, "unit": "KILOGRAMS"}}
CID = "14e142cf-e8e0-48cc-bcf6-399b5fd90b32"  # the spec's example


def create_body(**changes: Any) -> dict[str, Any]:
    data = {"deliveryMethodId": DPD_COURIER.method_id, "sender": ADDRESS, "receiver": BUYER, "packages": [PACKAGE],
            "labelFormat": "PDF"}
    data.update(changes)
    return {"commandId": CID, "input": data}


@pytest.fixture
def api(sim: AllegroSimulator, validated: Any) -> httpx.Client:
    token = sim.issue_tokens()["access_token"]
    return httpx.Client(transport=validated(sim.transport()), base_url="http://sim",
                        headers={"Accept": PUBLIC, "Authorization": f"Bearer {token}"})


@pytest.fixture
def raw(sim: AllegroSimulator) -> httpx.Client:
    token = sim.issue_tokens()["access_token"]
    return httpx.Client(transport=sim.transport(), base_url="http://sim",
                        headers={"Accept": PUBLIC, "Authorization": f"Bearer {token}"})


def post(client: httpx.Client, path: str, body: Any, accept: str = PUBLIC) -> httpx.Response:
    return client.post(path, content=json.dumps(body).encode(), headers={"Content-Type": PUBLIC, "Accept": accept})


def test_create_is_asynchronous_and_the_command_id_is_the_clients(api: httpx.Client, sim: AllegroSimulator) -> None:
    sim.slow_confirmation(2)
    answer = post(api, f"{SM}/shipments/create-commands", create_body())
    assert answer.status_code == 200 and answer.headers["retry-after"] == "1"
    assert answer.json()["commandId"] == CID and sim.booked_shipments() == []  # a 200 is not a shipment
    statuses = [api.get(f"{SM}/shipments/create-commands/{CID}").json()["status"] for _ in range(3)]
    assert statuses == ["IN_PROGRESS", "IN_PROGRESS", "SUCCESS"]
    shipment_id = api.get(f"{SM}/shipments/create-commands/{CID}").json()["shipmentId"]
    dto = api.get(f"{SM}/shipments/{shipment_id}").json()
    assert dto["packages"][0]["waybill"] == sim.booked_shipments()[0].waybills[0] and dto["carrier"] == "DPD"
    assert "canceledDate" not in dto
    again = post(api, f"{SM}/shipments/create-commands", create_body())  # the same command id
    assert again.status_code == 400 and len(sim.booked_shipments()) == 1
    assert api.get(f"{SM}/shipments/create-commands/{'0' * 8}-0000-4000-8000-{'0' * 12}").status_code == 404
    generated = post(api, f"{SM}/shipments/create-commands", {"input": create_body()["input"]}).json()["commandId"]
    assert generated != CID  # "If empty, then system generate new one"


def test_validation_errors_show_only_in_the_status(api: httpx.Client, sim: AllegroSimulator) -> None:
    sim.slow_confirmation(0)
    body = create_body(deliveryMethodId=INPOST_LOCKER.method_id, receiver={**ADDRESS, "email": "jan@example.com"})
    assert post(api, f"{SM}/shipments/create-commands", body).status_code == 200
    status = api.get(f"{SM}/shipments/create-commands/{CID}").json()
    assert status["status"] == "ERROR" and {e["path"] for e in status["errors"]} == {"receiver.email",
                                                                                      "receiver.point"}
    assert sim.booked_shipments() == []


def test_refusals(raw: httpx.Client, sim: AllegroSimulator) -> None:
    string_weight = create_body(packages=[{**PACKAGE, "weight": {"value": "1.5", "unit": "KILOGRAMS"}}])
    answer = post(raw, f"{SM}/shipments/create-commands", string_weight)
    assert answer.status_code == 400 and "weight.value" in answer.json()["errors"][0]["message"]
    answer = raw.get(f"{SM}/delivery-services", headers={"Accept-Language": "pl"})  # notes: a bare pl is invalid
    assert answer.status_code == 400
    assert raw.get(f"{SM}/delivery-services", headers={"Accept-Language": "pl-PL"}).status_code == 200
    assert post(raw, f"{SM}/label", {"shipmentIds": ["x"]}).status_code == 406  # the label is a file
    no_proposal = {"input": {"shipmentIds": ["s"], "address": ADDRESS}}
    answer = post(raw, f"{SM}/pickups/create-commands", no_proposal)
    assert answer.status_code == 400 and "pickupDateProposalId" in answer.text
    assert raw.get("/order/carriers/NOPE/tracking", params={"waybill": "1"}).status_code == 400
    assert raw.get("/order/carriers/ALLEGRO/tracking", params=[("waybill", str(i)) for i in range(21)]
                   ).status_code == 400
    assert sim.booked_shipments() == [] and sim.shipping_commands() == []  # the 400 registered nothing


def test_one_label_request_does_not_mix_formats(api: httpx.Client, raw: httpx.Client, sim: AllegroSimulator) -> None:
    sim.slow_confirmation(0)
    ids = []
    for i, fmt in enumerate(("PDF", "ZPL")):
        cid = f"14e142cf-e8e0-48cc-bcf6-399b5fd90b3{i}"
        post(api, f"{SM}/shipments/create-commands", {**create_body(labelFormat=fmt), "commandId": cid})
        ids.append(api.get(f"{SM}/shipments/create-commands/{cid}").json()["shipmentId"])
    binary = "application/octet-stream"
    mixed = post(api, f"{SM}/label", {"shipmentIds": ids, "pageSize": "A6"}, accept=binary)
    assert mixed.status_code == 400
    zpl = post(raw, f"{SM}/label", {"shipmentIds": ids[1:]}, accept=binary)  # a file: the flow tests check it
    assert zpl.status_code == 200 and zpl.headers["content-type"] == "application/octet-stream"
    assert zpl.content.startswith(b"^XA")
