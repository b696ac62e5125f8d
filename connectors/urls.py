"""The address of a vendor's API as a connector option takes it (WooCommerce's base_url, Allegro's
api_url and auth_url): checked when the config is loaded, so a typo is one config line, not an
``InvalidURL`` from the HTTP client in the middle of a sync."""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

import httpx


def is_loopback(host: str) -> bool:
    """``localhost`` or a loopback address (127.0.0.0/8, ::1): the only hosts plain http may go to."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_base_url(value: str, *, what: str, example: str, secret: str) -> str:
    """``value`` without surrounding blanks and trailing ``/``, or ValueError saying what is wrong:
    not http or https, no host, a port outside 1..65535, a query string or fragment, anything the
    HTTP client refuses, or plain http to a host other than loopback (``secret`` says what would
    travel in clear text there). ``what`` names the address and ``example`` is a good one, both shown
    when the value is not an address at all."""
    url = value.strip()
    if any(c.isspace() or ord(c) < 32 or ord(c) == 127 for c in url):
        raise ValueError("the address contains a space or a control character")
    try:
        parts = urlsplit(url)
    except ValueError as exc:  # e.g. "Invalid IPv6 URL"
        raise ValueError(f"not a valid address ({exc}), e.g. {example}") from None
    if parts.scheme not in ("http", "https"):
        raise ValueError(f"expected {what}, e.g. {example}")
    if not parts.hostname:
        raise ValueError(f"the address names no host, e.g. {example}")
    try:
        port = parts.port
    except ValueError:  # not a number, or over 65535
        port = 0
    if port == 0:
        raise ValueError("the port must be a number from 1 to 65535 (or none: 443 for https, 80 for http)")
    if parts.query or parts.fragment:
        raise ValueError("the address takes no query string or fragment")
    try:
        httpx.URL(url)
    except httpx.InvalidURL as exc:
        raise ValueError(f"not a valid address ({exc}), e.g. {example}") from None
    if parts.scheme == "http" and not is_loopback(parts.hostname):
        raise ValueError(f"https is required: {secret} (plain http only to this machine: 127.0.0.1, localhost)")
    return url.rstrip("/")
