"""The vendor addresses connector options take (connectors.urls): WooCommerce's base_url, Allegro's
api_url and auth_url are refused at load unless the HTTP client can use them, and plain http goes
only to this machine."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from connectors.allegro.options import AllegroOptions
from connectors.shops.woocommerce import WooCommerceOptions
from connectors.urls import check_base_url, is_loopback

SHOP = {"consumer_key": "ck_x", "consumer_secret": "cs_x"}
ALLEGRO = {"client_id": "c", "client_secret": "s"}


def check(url: str) -> str:
    return check_base_url(url, what="the shop's address", example="https://sklep.example.pl", secret="keys go there")


@pytest.mark.parametrize(("url", "expected"), [
    ("https://sklep.example.pl/", "https://sklep.example.pl"),
    ("  https://sklep.example.pl/shop/ ", "https://sklep.example.pl/shop"),
    ("https://sklep.example.pl:8443", "https://sklep.example.pl:8443"),
    ("http://127.0.0.1:8080", "http://127.0.0.1:8080"),
    ("http://localhost:65535/", "http://localhost:65535"),
    ("http://[::1]:1", "http://[::1]:1"),
])
def test_good_addresses(url: str, expected: str) -> None:
    assert check(url) == expected


@pytest.mark.parametrize(("url", "message"), [
    ("http://127.0.0.1:abc", "the port must be a number from 1 to 65535"),
    ("http://127.0.0.1:99999", "the port must be a number from 1 to 65535"),
    ("https://sklep.example.pl:0", "the port must be a number from 1 to 65535"),
    ("https://sklep.example.pl:+443", "the port must be a number from 1 to 65535"),
    ("http://", "the address names no host"),
    ("https://:443", "the address names no host"),
    ("http://[::1", "not a valid address"),
    ("sklep.example.pl", "expected the shop's address, e.g. https://sklep.example.pl"),
    ("ftp://sklep.example.pl", "expected the shop's address"),
    ("https://sklep example.pl", "contains a space"),
    ("https://sklep.example.pl/?lang=pl", "no query string or fragment"),
    ("https://sklep.example.pl/#top", "no query string or fragment"),
    ("http://sklep.example.pl", "https is required: keys go there"),
    ("http://10.0.0.5:8080", "https is required"),
])
def test_bad_addresses(url: str, message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("?", r"\?").replace("+", r"\+")):
        check(url)


def test_loopback() -> None:
    assert is_loopback("localhost") and is_loopback("127.0.0.2") and is_loopback("::1")
    assert not is_loopback("10.0.0.1") and not is_loopback("localhost.example.pl") and not is_loopback("")


@pytest.mark.parametrize("url", ["http://127.0.0.1:abc", "http://127.0.0.1:99999", "http://"])
def test_woocommerce_refuses_an_address_the_client_cannot_use(url: str) -> None:
    with pytest.raises(ValidationError) as caught:
        WooCommerceOptions.model_validate({"base_url": url, **SHOP})
    (error,) = caught.value.errors()
    assert error["loc"] == ("base_url",)


def test_woocommerce_keeps_its_own_rules() -> None:
    with pytest.raises(ValidationError, match="https is required: the consumer key and secret"):
        WooCommerceOptions.model_validate({"base_url": "http://sklep.example.pl", **SHOP})
    with pytest.raises(ValidationError, match="without /wp-json"):
        WooCommerceOptions.model_validate({"base_url": "https://sklep.example.pl/wp-json/wc/v3", **SHOP})
    ok = WooCommerceOptions.model_validate({"base_url": "http://127.0.0.1:8080/", **SHOP})
    assert ok.base_url == "http://127.0.0.1:8080"


@pytest.mark.parametrize("key", ["api_url", "auth_url"])
@pytest.mark.parametrize(("url", "message"), [
    ("http://127.0.0.1:x", "the port must be a number from 1 to 65535"),
    ("http://127.0.0.1:70000", "the port must be a number from 1 to 65535"),
    ("http://", "the address names no host"),
    ("http://api.example.com", "https is required: the client secret and the OAuth tokens travel there"),
    ("api.allegro.pl", "expected an http:// or https:// URL"),
])
def test_allegro_refuses_bad_addresses(key: str, url: str, message: str) -> None:
    with pytest.raises(ValidationError) as caught:
        AllegroOptions.model_validate({key: url, **ALLEGRO})
    (error,) = caught.value.errors()
    assert error["loc"] == (key,) and message in error["msg"]


@pytest.mark.parametrize("values", [
    {"api_url": "https://api.allegro.pl.allegrosandbox.pl/", "auth_url": "https://allegro.pl.allegrosandbox.pl"},
    {"api_url": "http://127.0.0.1:9/", "auth_url": "http://localhost:9"},
])
def test_allegro_takes_https_anywhere_and_http_on_loopback(values: dict[str, Any]) -> None:
    options = AllegroOptions.model_validate({**values, **ALLEGRO})
    assert (options.api_base, options.auth_base) == (values["api_url"].rstrip("/"), values["auth_url"])
