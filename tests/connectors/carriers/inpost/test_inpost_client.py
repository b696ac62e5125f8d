"""Bad answers become one-line RetryableError/PermanentError naming the carrier, the call and the field; the
options refuse what cannot work; the registry builds the carrier from a config's keys."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest
import structlog
from inpost_testkit import API_URL, locker_request
from pydantic import ValidationError
from tenacity import wait_none

from connectors.carriers.inpost import SPEC, InPostOptions, build_carrier
from connectors.carriers.inpost.client import flatten_details
from connectors.carriers.inpost.mapping import ShipXFormatError
from hub.kernel.errors import PermanentError, RetryableError
from hub.kernel.ports.carrier import Booking
from hub.platform.ratelimit import LocalRateLimiter, Throttle

Handler = Callable[[httpx.Request], httpx.Response]
EMPTY_LIST = {"href": "x", "count": 0, "page": 1, "per_page": 100, "items": []}


def carrier_on(handler: Handler, **options: Any) -> Any:
    validated = InPostOptions.model_validate({"api_url": API_URL, "token": "t0ken", "organization_id": 7,
                                              "confirm_polls": 0, **options})
    throttle = Throttle(LocalRateLimiter(), "inpost:mock", 60_000.0, 1000.0, sleep=lambda s: None)
    services = {"throttle": throttle, "transport": httpx.MockTransport(handler), "log": structlog.get_logger()}
    return build_carrier("inpost-mock", validated, services, retry_wait=wait_none(), sleep=lambda s: None)


def answers(post: httpx.Response) -> Handler:
    def handle(request: httpx.Request) -> httpx.Response:
        assert request.headers["Authorization"] == "Bearer t0ken"
        if request.method == "GET":
            return httpx.Response(200, json=EMPTY_LIST)
        return post

    return handle


def test_an_html_page_instead_of_json_is_retryable_and_names_the_call() -> None:
    carrier = carrier_on(answers(httpx.Response(201, text="<html>maintenance</html>")))
    with pytest.raises(RetryableError, match=r"^InPost ShipX POST /v1/organizations/7/shipments: HTTP 201 without a "
                                             r"JSON body$"):
        carrier.book(locker_request())


def test_a_created_shipment_without_an_id_names_the_field() -> None:
    carrier = carrier_on(answers(httpx.Response(201, json={"status": "created"})))
    with pytest.raises(ShipXFormatError, match=r"POST /v1/organizations/7/shipments: the answer has no 'id'"):
        carrier.book(locker_request())


def test_a_list_without_items_names_the_field() -> None:
    carrier = carrier_on(lambda request: httpx.Response(200, json={"count": 3, "items": "three"}))
    with pytest.raises(ShipXFormatError, match=r"GET /v1/organizations/7/shipments: 'items' is 'three'"):
        carrier.book(locker_request())


def test_a_shipment_with_a_mistyped_status_names_the_field() -> None:
    carrier = carrier_on(answers(httpx.Response(201, json={"id": 5, "status": 3})))
    with pytest.raises(ShipXFormatError, match=r"'status' is 3"):
        carrier.book(locker_request())


def test_a_label_that_is_not_a_pdf_is_retryable() -> None:
    carrier = carrier_on(lambda request: httpx.Response(200, json={"ok": True}))
    with pytest.raises(ShipXFormatError, match=r"GET /v1/shipments/5/label: the answer is not a PDF"):
        carrier.label(Booking("R-1", "5", [], "inpost"), "pdf", "A6")


def test_error_bodies_with_description_and_nested_details_read_as_one_line() -> None:
    body = {"status": 400, "error": "validation_failed", "description": "Invalid data",
            "details": {"receiver": {"phone": ["invalid_format"]}, "parcels": [{"template": ["invalid"]}]}}
    carrier = carrier_on(answers(httpx.Response(400, json=body)))
    with pytest.raises(PermanentError) as caught:
        carrier.book(locker_request())
    assert str(caught.value) == (
        "InPost book ORD-1001: ShipX refused the shipment: InPost ShipX POST /v1/organizations/7/shipments: HTTP 400: "
        "validation_failed: Invalid data (receiver.phone: invalid_format; parcels[0].template: invalid)")
    assert "\n" not in str(caught.value)


def test_a_5xx_page_is_retried_then_named() -> None:
    calls = []

    def handle(request: httpx.Request) -> httpx.Response:
        calls.append(request.url.path)
        return httpx.Response(502, text="<html>Bad Gateway</html>")

    with pytest.raises(RetryableError, match=r"^InPost ShipX GET /v1/organizations/7/shipments: HTTP 502: "
                                             r"<html>Bad Gateway</html> \(after 3 attempts\)$"):
        carrier_on(handle, attempts=3).book(locker_request())
    assert len(calls) == 3


def test_a_redirect_is_a_configuration_problem() -> None:
    carrier = carrier_on(lambda request: httpx.Response(301, headers={"Location": "https://elsewhere"}))
    with pytest.raises(PermanentError, match="redirected to 'https://elsewhere'; check the connector's api_url"):
        carrier.book(locker_request())


def test_flatten_details() -> None:
    assert flatten_details({"a": {"b": ["x", "y"]}, "c": [{"d": ["z"]}], "e": "w"}) == [
        "a.b: x, y", "c[0].d: z", "e: w"]
    assert flatten_details(None) == []


def test_shipx_receives_the_organization_and_json_body() -> None:
    seen: list[httpx.Request] = []

    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if request.method == "GET":
            return httpx.Response(200, json=EMPTY_LIST)
        return httpx.Response(201, json={"id": 9, "status": "created"})

    with pytest.raises(RetryableError, match="not confirmed yet"):
        carrier_on(handle).book(locker_request())
    assert [(r.method, r.url.path) for r in seen] == [("GET", "/v1/organizations/7/shipments"),
                                                      ("POST", "/v1/organizations/7/shipments")]
    assert seen[1].headers["Content-Type"] == "application/json"
    assert json.loads(seen[1].content)["reference"] == "ORD-1001"


BASE = {"token": "t", "organization_id": 1}


@pytest.mark.parametrize(("extra", "message"), [
    ({"api_url": "http://shipx.example.pl"}, "https is required"),
    ({"organization_id": 0}, "greater than or equal to 1"),
    ({"pickup_window_start": "16:00", "pickup_window_end": "10:00"}, "must be later than"),
    ({"pickup_weekdays": [0, 7]}, r"0 \(Monday\) to 6 \(Sunday\)"),
    ({"zpl_dpi300": "yes"}, "valid boolean"),
    ({"sending_method": "drone"}, "dispatch_order"),
    ({"unknown": 1}, "Extra inputs are not permitted"),
])
def test_options_refuse_what_cannot_work(extra: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        InPostOptions.model_validate({**BASE, **extra})


def test_options_defaults_and_environments() -> None:
    options = InPostOptions.model_validate(BASE)
    assert options.api_base == "https://api-shipx-pl.easypack24.net"
    assert InPostOptions.model_validate({**BASE, "environment": "sandbox"}).api_base == \
        "https://sandbox-api-shipx-pl.easypack24.net"
    assert InPostOptions.model_validate({**BASE, "api_url": "http://127.0.0.1:8123/"}).api_base == \
        "http://127.0.0.1:8123"


def test_the_registry_builds_the_carrier_from_config_keys() -> None:
    throttle = Throttle(LocalRateLimiter(), "inpost:spec", 600.0, 10.0)
    carrier = SPEC.factory("inpost-main", {**BASE, "services": ["inpost_locker_standard"], "tracking_batch_size": 5},
                           {"throttle": throttle, "transport": httpx.MockTransport(lambda r: httpx.Response(500)),
                            "log": structlog.get_logger()})
    assert carrier.name == "inpost-main" and carrier.tracking_batch_size == 5
    assert carrier.services() == ["inpost_locker_standard"]
