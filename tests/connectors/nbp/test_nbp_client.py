"""The requests NBP receives (golden: the exact URL and headers), what each of NBP's answers becomes, the
options, and the registry's factory."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import date
from decimal import Decimal
from typing import Any

import httpx
import pytest
import structlog
from nbp_testkit import API_URL, rates_on, throttle
from pydantic import ValidationError

from connectors.http import RequestRefused
from connectors.nbp import KIND, SPEC, NbpOptions
from connectors.nbp.client import NbpUnavailable
from connectors.nbp.mapping import NbpFormatError
from hub.kernel.errors import PermanentError, RetryableError
from hub.kernel.ports.capability import Capability
from hub.kernel.ports.invoicing import ExchangeRateSource, PublishedRate

Handler = Callable[[httpx.Request], httpx.Response]
NO_DATA = "404 NotFound - Not Found - Brak danych"
# the digest's capture of rates/a/usd/2026-09-28/2026-09-30 (OpenUrzednik's fixture rates-a-range.json)
USD_RANGE = ('{"table":"A","currency":"dolar amerykański","code":"USD","rates":['
             '{"no":"188/A/NBP/2026","effectiveDate":"2026-09-28","mid":3.8478},'
             '{"no":"189/A/NBP/2026","effectiveDate":"2026-09-29","mid":3.8537},'
             '{"no":"190/A/NBP/2026","effectiveDate":"2026-09-30","mid":3.8449}]}')


def text(status: int, body: str) -> httpx.Response:
    return httpx.Response(status, content=body.encode(), headers={"Content-Type": "text/plain; charset=utf-8"})


def recording(*answers: httpx.Response) -> tuple[list[httpx.Request], Handler]:
    seen: list[httpx.Request] = []
    queue = list(answers)

    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return queue.pop(0) if len(queue) > 1 else queue[0]

    return seen, handle


def test_the_request_is_nbps_single_currency_series_of_the_days_before() -> None:
    seen, handle = recording(httpx.Response(200, content=USD_RANGE.encode()))
    rate = rates_on(httpx.MockTransport(handle)).rate_before("usd", date(2026, 10, 1))
    (request,) = seen
    assert request.method == "GET"
    assert str(request.url) == f"{API_URL}/exchangerates/rates/a/usd/2026-09-17/2026-09-30/?format=json"
    assert request.headers["Accept"] == "application/json"
    assert request.headers["Host"] == "nbp.test"
    assert "Authorization" not in request.headers and request.content == b""
    assert rate == PublishedRate("USD", date(2026, 9, 30), Decimal("3.8449"), "190/A/NBP/2026")


def test_the_api_url_may_end_with_a_slash_and_table_b_is_asked_for_in_its_letter() -> None:
    seen, handle = recording(text(404, NO_DATA))
    rates = rates_on(httpx.MockTransport(handle), api_url="https://nbp.test/api/", table="B", lookback_days=10,
                     widened_days=10)
    with pytest.raises(PermanentError):
        rates.rate_before("AFN", date(2026, 3, 2))
    assert [str(r.url) for r in seen] == [f"{API_URL}/exchangerates/rates/b/afn/2026-02-20/2026-03-01/?format=json"]


def test_brak_danych_widens_the_window_once_then_says_no_rate_was_published() -> None:
    seen, handle = recording(text(404, NO_DATA))
    with pytest.raises(PermanentError) as caught:
        rates_on(httpx.MockTransport(handle)).rate_before("EUR", date(2026, 3, 2))
    assert [r.url.path for r in seen] == ["/api/exchangerates/rates/a/eur/2026-02-16/2026-03-01/",
                                          "/api/exchangerates/rates/a/eur/2026-01-30/2026-03-01/"]
    assert str(caught.value) == "NBP published no rate for EUR in table A in the 31 days before 2026-03-02"
    assert not isinstance(caught.value, RetryableError)


def test_a_400_names_the_request_and_nbps_words() -> None:
    seen, handle = recording(text(400, "400 BadRequest - Błędny zakres dat / Invalid date range"))
    with pytest.raises(RequestRefused) as caught:
        rates_on(httpx.MockTransport(handle)).rate_before("EUR", date(2026, 3, 2))
    assert len(seen) == 1  # never retried
    assert str(caught.value) == ("NBP GET /exchangerates/rates/a/eur/2026-02-16/2026-03-01/?format=json: HTTP 400 "
                                 "(400 BadRequest - Błędny zakres dat / Invalid date range)")
    assert isinstance(caught.value, PermanentError) and caught.value.status == 400


def test_a_404_that_is_not_nbps_no_data_points_at_the_api_url() -> None:
    _seen, handle = recording(httpx.Response(404, html="<html><body>Not Found</body></html>"))
    with pytest.raises(PermanentError, match=r"HTTP 404 .* is not NBP's 'Brak danych': check the connector's api_url"):
        rates_on(httpx.MockTransport(handle)).rate_before("EUR", date(2026, 3, 2))


def test_a_404_whose_reason_phrase_says_brak_danych_is_no_data_too() -> None:
    seen, handle = recording(httpx.Response(404, extensions={"reason_phrase": b"Not Found - Brak danych"}))
    with pytest.raises(PermanentError, match="NBP published no rate"):
        rates_on(httpx.MockTransport(handle)).rate_before("EUR", date(2026, 3, 2))
    assert len(seen) == 2


def test_5xx_is_retried_then_unavailable_naming_the_call() -> None:
    seen, handle = recording(text(503, "Service Unavailable"))
    with pytest.raises(NbpUnavailable) as caught:
        rates_on(httpx.MockTransport(handle), attempts=3).rate_before("EUR", date(2026, 3, 2))
    assert len(seen) == 3
    assert isinstance(caught.value, RetryableError) and caught.value.status == 503
    assert str(caught.value) == ("NBP GET /exchangerates/rates/a/eur/2026-02-16/2026-03-01/: HTTP 503 "
                                 "(Service Unavailable) (after 3 attempts)")


def test_a_redirect_is_a_configuration_problem() -> None:
    _seen, handle = recording(httpx.Response(301, headers={"Location": "https://elsewhere.example/api"}))
    with pytest.raises(PermanentError, match=r"redirected to 'https://elsewhere\.example/api'; check the connector's"):
        rates_on(httpx.MockTransport(handle)).rate_before("EUR", date(2026, 3, 2))


def test_an_answer_that_is_not_json_is_retryable_and_names_the_call() -> None:
    _seen, handle = recording(httpx.Response(200, html="<html>captive portal</html>"))
    with pytest.raises(NbpFormatError, match=r"^NBP GET /exchangerates/rates/a/eur/.*: NBP answered something that"):
        rates_on(httpx.MockTransport(handle)).rate_before("EUR", date(2026, 3, 2))


def test_another_currencys_rates_are_refused() -> None:
    _seen, handle = recording(httpx.Response(200, content=USD_RANGE.encode()))
    with pytest.raises(NbpFormatError, match="NBP answered the rates of USD when asked for EUR"):
        rates_on(httpx.MockTransport(handle)).rate_before("EUR", date(2026, 10, 1))


def test_pln_and_what_is_no_code_are_refused_without_a_request() -> None:
    seen, handle = recording(httpx.Response(200, content=USD_RANGE.encode()))
    rates = rates_on(httpx.MockTransport(handle))
    with pytest.raises(PermanentError, match="PLN needs no exchange rate"):
        rates.rate_before("pln", date(2026, 10, 1))
    with pytest.raises(PermanentError, match="'EURO' is not a currency code"):
        rates.rate_before("EURO", date(2026, 10, 1))
    with pytest.raises(PermanentError, match="its rates begin on 2002-01-02"):
        rates.rate_before("USD", date(2001, 12, 31))
    assert seen == []


@pytest.mark.parametrize(("extra", "message"), [
    ({"api_url": "http://api.nbp.pl/api"}, "https is required: NBP answers over https only"),
    ({"api_url": "ftp://api.nbp.pl"}, "expected an http:// or https:// URL"),
    ({"table": "C"}, "Input should be 'A' or 'B'"),
    ({"lookback_days": 0}, "greater than or equal to 1"),
    ({"widened_days": 94}, "less than or equal to 93"),
    ({"lookback_days": 20, "widened_days": 14}, "widened_days (14) must be at least lookback_days (20)"),
    ({"attempts": "3"}, "valid integer"),
    ({"request_timeout": "soon"}, "duration"),
    ({"token": "x"}, "Extra inputs are not permitted"),
])
def test_options_refuse_what_cannot_work(extra: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message.replace("(", r"\(").replace(")", r"\)")):
        NbpOptions.model_validate(extra)


def test_options_defaults() -> None:
    options = NbpOptions()
    assert options.api_url == "https://api.nbp.pl/api" and options.table == "A"
    assert (options.lookback_days, options.widened_days, options.attempts) == (14, 31, 3)
    assert NbpOptions(api_url="http://127.0.0.1:8125/api/").api_url == "http://127.0.0.1:8125/api"
    assert NbpOptions(request_timeout="500ms").request_timeout == 0.5


def test_the_registry_builds_the_port_from_config_keys() -> None:
    assert (SPEC.kind, KIND, SPEC.role) == ("nbp", "nbp", "rates")
    assert SPEC.capabilities == frozenset({Capability.EXCHANGE_RATES}) and SPEC.options_model is NbpOptions
    seen, handle = recording(httpx.Response(200, content=USD_RANGE.encode()))
    rates = SPEC.factory("nbp-main", {"api_url": API_URL, "lookback_days": 7},
                         {"throttle": throttle(), "transport": httpx.MockTransport(handle),
                          "log": structlog.get_logger()})
    assert isinstance(rates, ExchangeRateSource) and rates.name == "nbp-main"
    assert rates.rate_before("USD", date(2026, 10, 1)).table_no == "190/A/NBP/2026"
    assert seen[0].url.path == "/api/exchangerates/rates/a/usd/2026-09-24/2026-09-30/"


def test_no_float_reaches_the_rate() -> None:
    body = json.loads(USD_RANGE)  # what response.json() would give: floats
    assert isinstance(body["rates"][0]["mid"], float)
    seen, handle = recording(httpx.Response(200, content=USD_RANGE.replace("3.8449", "3.8440").encode()))
    rate = rates_on(httpx.MockTransport(handle)).rate_before("USD", date(2026, 10, 1))
    assert str(rate.mid) == "3.8440" and len(seen) == 1  # the trailing zero NBP wrote is kept
