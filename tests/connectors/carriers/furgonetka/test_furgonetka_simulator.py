"""The simulator itself, spoken to directly: auth, headers, commands, validation, paging, labels."""

from __future__ import annotations

import httpx
import pytest
from furgonetka_testkit import CLIENT_ID, CLIENT_SECRET, PASSWORD, USERNAME, Clock

from connectors.carriers.furgonetka.simulator import Faults, FurgonetkaSimulator

MEDIA = "application/vnd.furgonetka.v1+json"
UUID = "0f8fad5b-d9cb-469f-a165-70867728950e"


def token(sim: FurgonetkaSimulator, **form: str) -> httpx.Response:
    with httpx.Client(transport=sim.transport(), base_url="https://api.sandbox.furgonetka.pl") as http:
        return http.post("/oauth/token", auth=(CLIENT_ID, CLIENT_SECRET),
                         data=form or {"grant_type": "password", "scope": "api", "username": USERNAME,
                                       "password": PASSWORD})


def api(sim: FurgonetkaSimulator) -> httpx.Client:
    access = token(sim).json()["access_token"]
    return httpx.Client(transport=sim.transport(), base_url="https://api.sandbox.furgonetka.pl",
                        headers={"Accept": MEDIA, "Authorization": f"Bearer {access}"})


ADDRESS = {"name": "A", "street": "Polna 1", "postcode": "82-300", "city": "Elbląg", "country_code": "PL"}
PARCEL = {"width": 10, "depth": 20, "height": 5, "weight": 1.25, "value": 0, "description": "x"}


def draft(http: httpx.Client, reference: str, **more: object) -> httpx.Response:
    return http.post("/packages", json={"pickup": ADDRESS, "receiver": ADDRESS, "service_id": 11906591,
                                        "parcels": [PARCEL], "user_reference_number": reference, **more})


def test_oauth_grants_rotation_and_refusals(sim: FurgonetkaSimulator, clock: Clock) -> None:
    first = token(sim).json()
    assert first["expires_in"] == 2592000 and first["token_type"] == "bearer"
    refreshed = token(sim, grant_type="refresh_token", refresh_token=first["refresh_token"])
    assert refreshed.status_code == 200
    reused = token(sim, grant_type="refresh_token", refresh_token=first["refresh_token"])
    assert (reused.status_code, reused.json()["error"]) == (400, "invalid_grant")  # rotated away
    wrong_scope = token(sim, grant_type="password", scope="all", username=USERNAME, password=PASSWORD)
    assert wrong_scope.json()["error"] == "invalid_scope"
    with httpx.Client(transport=sim.transport(), base_url="https://x") as http:
        bad_client = http.post("/oauth/token", auth=(CLIENT_ID, "nope"), data={"grant_type": "password"})
    assert (bad_client.status_code, bad_client.json()["error"]) == (401, "invalid_client")
    with api(sim) as http:
        assert http.get("/account/services").status_code == 200
        clock.advance(2592000)
        assert http.get("/account/services").status_code == 401  # expired
    with api(sim) as http:
        assert http.get("/account/services", headers={"Accept": "application/json"}).status_code == 406


def test_commands_are_idempotent_per_uuid_and_unknown_ones_are_named(sim: FurgonetkaSimulator) -> None:
    sim.faults = Faults(confirm_polls=2)
    with api(sim) as http:
        unknown = http.get(f"/order-commands/{UUID}")
        assert unknown.status_code == 400 and "commandNotExists" in unknown.text
        pid = draft(http, "R-1").json()["package_id"]
        body = {"packages": [{"id": pid}], "label": {"page_format": "a6", "file_format": "zpl"}}
        assert http.put(f"/order-commands/{UUID}", json=body).json() == {"uuid": UUID}
        assert http.put(f"/order-commands/{UUID}", json=body).json() == {"uuid": UUID}
        assert http.put("/order-commands/not-a-uuid", json=body).status_code == 400
        assert [http.get(f"/order-commands/{UUID}").json()["status"] for _ in range(4)] == [
            "running", "running", "successful", "successful"]
        report = http.get(f"/order-commands/{UUID}").json()
        assert report["successfully_ordered_packages"] == [pid] and report["errors"] == []
        assert len(sim.commands) == 1
        assert http.get(f"/packages/{pid}/label").headers["Content-Type"].startswith("text/plain")
        again = "1b4e28ba-2fa1-11d2-883f-0016d3cca427"
        http.put(f"/order-commands/{again}", json=body)
        for _ in range(3):
            late = http.get(f"/order-commands/{again}").json()
        assert late["status"] == "error" and late["errors"][0]["message"] == "Przesyłka została już zamówiona."


def test_validation_paging_and_labels(sim: FurgonetkaSimulator) -> None:
    with api(sim) as http:
        bad = draft(http, "R-0", receiver={**ADDRESS, "postcode": "82300"})
        assert (bad.status_code, bad.json()["errors"][0]["path"]) == (400, "receiver.postcode")
        assert draft(http, "R-0", parcels=[{**PARCEL, "width": 10.5}]).status_code == 400
        cod = {"cod": {"amount": 10.123, "iban": "PL61109010140000071219812874"}}
        assert draft(http, "R-0", additional_services=cod).json()["errors"][0]["path"] == \
            "additional_services.cod.amount"
        assert draft(http, "R-0", service_id=1).status_code == 400
        ids = [draft(http, f"R-{n}").json()["package_id"] for n in range(1, 6)]
        page = http.get("/packages", params={"limit": 2}).json()["packages"]
        assert [p["package_id"] for p in page] == ids[:-3:-1]
        more = http.get("/packages", params={"limit": 2, "last_package_id": page[-1]["package_id"]}).json()
        assert [p["package_id"] for p in more["packages"]] == [ids[2], ids[1]]
        assert http.get("/packages", params={"limit": 101}).status_code == 400
        assert http.get(f"/packages/{ids[0]}/label").status_code == 204  # a draft has no label
        assert http.get("/packages/1").status_code == 404
        proposals = http.post("/packages/pickup-date-proposals",
                              json={"packages": [{"id": ids[0]}], "ready_date": "2026-06-01", "days_ahead": 1})
        assert proposals.json()["errors"][0]["message"] == "Przesyłka znajduje się w koszyku."


def test_scripted_faults_hit_the_right_request_in_order(sim: FurgonetkaSimulator) -> None:
    sim.script("GET", "^/account/services$", "503", "lost", "502-after-apply")
    with api(sim) as http:
        assert http.get("/account/services").status_code == 503
        with pytest.raises(httpx.ReadTimeout):
            http.get("/account/services")
        assert http.get("/account/services").status_code == 502
        assert http.get("/account/services").status_code == 200
    assert [e.fault for e in sim.requests("GET", "services")] == ["503", "lost", "502-after-apply", None]
    with pytest.raises(ValueError, match="unknown fault"):
        sim.script("GET", "x", "boom")
