"""A small Allegro, in process: the REST resources and OAuth endpoints the connector uses.

A WSGI app with the spec's response shapes (swagger.yaml), offers in memory (each
optionally assigned to a catalogue product with an EAN, read through GET
/sale/product-offers/{offerId} and GET /sale/products/{productId}),
batch commands processed asynchronously (tasks NEW -> SUCCESS/FAIL after a
delay), single-use refresh tokens, and faults on demand, all deterministic for
a seed: a fraction of 5xx, 429 bursts that block the client id for a minute
(scaled by ``block_scale``; calling during the block lengthens it and is
counted as a violation), slow commands, per-offer task failures, revoked
tokens. ``LossyTransport`` adds timeouts, including the nasty kind where the
request is applied and the response is lost.

Orders, the order event journal, customer returns and refunds live in simulator_orders.py (mixed in).

Use it in process with ``httpx.WSGITransport(app=sim)`` or on a loopback port
with ``sim.serve()`` (returns the base URL; ``sim.stop()``).
"""

from __future__ import annotations

import base64
import json
import random
import re
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import parse_qsl

import httpx

from connectors.allegro.simulator_orders import OrdersSimulator
from connectors.allegro.simulator_shipping import ShippingSimulator
from connectors.simserver import LoopbackServer

PUBLIC = "application/vnd.allegro.public.v1+json"
BETA = "application/vnd.allegro.beta.v1+json"
DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
BLOCK_SECONDS = 60.0
MAX_OFFERS_PER_CRITERION = 1000

_KINDS = {
    "offer-price-change-commands": "price",
    "offer-quantity-change-commands": "quantity",
    "offer-publication-commands": "publication",
}
_PRODUCT_OFFER = re.compile(r"^/sale/product-offers/([^/]+)$")
_OPERATION = re.compile(r"^/sale/product-offers/([^/]+)/operations/([^/]+)$")
_PRODUCT = re.compile(r"^/sale/products/([^/]+)$")
GTIN_PARAMETER = {"id": "225693", "name": "EAN (GTIN)"}  # the catalogue's EAN parameter
PRODUCT_NAMESPACE = uuid.UUID("0b6c7f0e-3c1d-4a52-8f07-6d2b9e4a1c35")
_COMMAND = re.compile(r"^/sale/(offer-price-change-commands|offer-quantity-change-commands|"
                      r"offer-publication-commands)/([^/]+)(/tasks)?$")
_REASONS = {200: "OK", 201: "Created", 202: "Accepted", 204: "No Content", 303: "See Other", 400: "Bad Request",
            401: "Unauthorized", 404: "Not Found",
            405: "Method Not Allowed", 406: "Not Acceptable", 409: "Conflict", 415: "Unsupported Media Type",
            422: "Unprocessable Entity", 429: "Too Many Requests", 503: "Service Unavailable"}


def _iso(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{at.microsecond // 1000:03d}Z"


def _error(code: str, message: str, path: str | None = None) -> dict[str, Any]:
    return {"errors": [{"code": code, "message": message, "details": None, "path": path,
                        "userMessage": message}]}


@dataclass
class SimOffer:
    id: str
    external_id: str | None
    quantity: int
    price: Decimal
    currency: str = "PLN"
    status: str = "ACTIVE"
    name: str = ""
    ean: str | None = None  # the GTIN of the offer's product (None: no product assigned)

    @property
    def product_id(self) -> str | None:
        """The catalogue product the offer is assigned to: one per EAN, as in the vendor's catalogue."""
        return None if self.ean is None else product_id_for(self.ean)

    def dto(self) -> dict[str, Any]:
        """An OfferListingDto (the subset the spec's GET /sale/offers returns that matters here)."""
        out: dict[str, Any] = {
            "id": self.id,
            "name": self.name or f"Offer {self.id}",
            "sellingMode": {"format": "BUY_NOW", "price": {"amount": f"{self.price:.2f}", "currency": self.currency}},
            "stock": {"available": self.quantity, "sold": 0},
            "publication": {"status": self.status},
        }
        if self.external_id is not None:
            out["external"] = {"id": self.external_id}
        return out

    def product_offer(self, *, with_gtin: bool = True) -> dict[str, Any]:
        """A SaleProductOfferResponseV1 (GET /sale/product-offers/{offerId}): one product, whose
        parameters carry its "EAN (GTIN)" unless ``with_gtin`` is off (then only the product id)."""
        product: dict[str, Any] = {"id": None, "publication": {"status": "NOT_LISTED"}, "parameters": []}
        if self.ean is not None:
            product = {"id": self.product_id, "publication": {"status": "LISTED"},
                       "parameters": [{**GTIN_PARAMETER, "values": [self.ean]}] if with_gtin else []}
        out: dict[str, Any] = {
            "id": self.id,
            "name": self.name or f"Offer {self.id}",
            "productSet": [{"quantity": {"value": 1}, "product": product}],
            "sellingMode": {"format": "BUY_NOW", "price": {"amount": f"{self.price:.2f}", "currency": self.currency}},
            "stock": {"available": self.quantity, "unit": "UNIT"},
            "publication": {"status": self.status},
            "language": "pl-PL",
        }
        if self.external_id is not None:
            out["external"] = {"id": self.external_id}
        return out


def product_id_for(ean: str) -> str:
    return str(uuid.uuid5(PRODUCT_NAMESPACE, ean))


def product_dto(product_id: str, ean: str) -> dict[str, Any]:
    """A SaleProductDto (GET /sale/products/{productId}) whose GTIN parameter is flagged isGTIN."""
    return {
        "id": product_id,
        "name": f"Product {ean}",
        "category": {"id": "257931"},
        "parameters": [{**GTIN_PARAMETER, "values": [ean], "options": {"identifiesProduct": True, "isGTIN": True}}],
        "publication": {"status": "LISTED"},
    }


@dataclass
class SimCommand:
    kind: str
    id: str
    body: dict[str, Any]
    offer_ids: list[str]
    created_at: datetime
    ready_at: float
    tasks: dict[str, dict[str, Any]] | None = None  # filled when processed
    completed_at: datetime | None = None
    applied: int = 0  # how many times its effect was applied (must be 1)


@dataclass
class _Token:
    client_id: str
    account: str
    expires_at: float
    revoked: bool = False


@dataclass
class _Device:
    client_id: str
    user_code: str
    expires_at: float
    polls: int = 0
    state: str = "pending"  # pending | approved | denied | used


@dataclass
class Faults:
    """Fault injection for the REST resources (never the OAuth endpoints)."""

    error_5xx_rate: float = 0.0  # answered 503 and NOT applied
    burst_429_rate: float = 0.0  # chance that a request starts a 429 block of the client id
    slow_command_rate: float = 0.0  # chance a command takes ``slow_command_delay`` longer
    slow_command_delay: float = 0.0
    patch_async_rate: float = 0.0  # chance a PATCH of an offer answers 202 and finishes ``patch_async_delay`` later
    patch_async_delay: float = 0.0


@dataclass
class RequestRecord:
    method: str
    path: str
    query: str
    status: int
    body: bytes = field(repr=False, default=b"")


def media_type_for(path: str) -> str:
    """Customer returns are beta resources: they speak (and demand) the beta media type (#4780)."""
    return BETA if path.startswith("/order/customer-returns") else PUBLIC


class AllegroSimulator(OrdersSimulator, ShippingSimulator):
    def __init__(
        self,
        *,
        seed: int = 0,
        clients: dict[str, str] | None = None,
        command_delay: float = 0.0,
        block_scale: float = 1.0,
        retry_after_header: bool = False,
        token_ttl: int = 43199,
        device_interval: int = 5,
        device_ttl: int = 3600,
        auto_approve_after: int | None = None,
        faults: Faults | None = None,
        gtin_in_product_offer: bool = True,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], datetime] = lambda: datetime.now(UTC),
    ):
        # whether GET /sale/product-offers/{offerId} shows the product's GTIN parameter, or only the
        # product id (then the EAN is on GET /sale/products/{productId})
        self.gtin_in_product_offer = gtin_in_product_offer
        self.clients = dict(clients or {"hub-client": "hub-secret"})
        self.command_delay = command_delay
        self.block_scale = block_scale
        self.retry_after_header = retry_after_header
        self.token_ttl = token_ttl
        self.device_interval = device_interval
        self.device_ttl = device_ttl
        self.auto_approve_after = auto_approve_after
        self.faults = faults or Faults()
        self._clock = clock
        self._rng = random.Random(seed)  # fault decisions, one draw per REST request in arrival order
        self._ids = random.Random(seed + 1)  # tokens, codes and trace ids, so they never shift the faults
        self._lock = threading.RLock()
        self._offers: dict[str, SimOffer] = {}
        self._in_order: list[SimOffer] | None = None  # every offer in order, kept while none is added or removed
        self._edits: dict[str, tuple[float, str]] = {}  # offer id -> (an async edit's end, its operation id)
        self.patches = 0  # PATCH /sale/product-offers applied
        self._products: dict[str, str] = {}  # product id -> EAN, for every EAN ever assigned
        self._commands: dict[tuple[str, str], SimCommand] = {}
        self._order: list[SimCommand] = []
        self._access: dict[str, _Token] = {}
        self._refresh: dict[str, _Token] = {}
        self._devices: dict[str, _Device] = {}
        self._fail_offers: dict[str, tuple[str, str, frozenset[str]]] = {}
        self._blocked_until: dict[str, float] = {}
        self._pending_bursts: Counter[str] = Counter()
        self.requests: list[RequestRecord] = []
        self.put_attempts: Counter[tuple[str, str]] = Counter()
        self.block_violations = 0
        self.rate_limited = 0
        self.refreshes = 0
        self._loopback = LoopbackServer(self, "allegro-simulator")
        self._init_orders(seed, wall)
        self._init_shipping(seed)  # Ship with Allegro and parcel tracking: simulator_shipping.py

    # --- seeding and reading back ------------------------------------------------------

    def add_offer(self, offer_id: str, *, external_id: str | None = None, quantity: int = 1,
                  price: Decimal | str = "10.00", currency: str = "PLN", status: str = "ACTIVE",
                  name: str = "", ean: str | None = None) -> None:
        with self._lock:
            self._in_order = None
            self._offers[offer_id] = SimOffer(offer_id, external_id, quantity, Decimal(str(price)), currency,
                                              status, name)
            self.set_ean(offer_id, ean)

    def remove_offer(self, offer_id: str) -> None:
        """The seller deleted the offer (a draft, say): it is gone from every resource."""
        with self._lock:
            self._offers.pop(offer_id, None)
            self._in_order = None

    def set_ean(self, offer_id: str, ean: str | None) -> None:
        """Assign the offer to the catalogue product with this EAN (None: to no product)."""
        with self._lock:
            offer = self._offers[offer_id]
            offer.ean = ean
            if ean is not None:
                self._products[product_id_for(ean)] = ean

    def add_offers(self, count: int, *, start: int = 1, quantity: int = 1, price: str = "10.00",
                   status: str = "ACTIVE") -> list[str]:
        ids = [str(7_000_000_000 + i) for i in range(start, start + count)]
        for i, offer_id in enumerate(ids, start):
            self.add_offer(offer_id, external_id=f"SKU-{i:06d}", quantity=quantity, price=price, status=status)
        return ids

    def offer(self, offer_id: str) -> SimOffer:
        """The offer as it is now (after every command that is due)."""
        with self._lock:
            self._process_due()
            return replace(self._offers[offer_id])

    def sell(self, offer_id: str, quantity: int = 1) -> None:
        """A buyer buys; the vendor ends an offer whose stock reaches 0."""
        with self._lock:
            offer = self._offers[offer_id]
            offer.quantity = max(0, offer.quantity - quantity)
            if offer.quantity == 0:
                offer.status = "ENDED"

    def fail_offer(self, offer_id: str, *, code: str = "VALIDATION_ERROR",
                   message: str = "The offer cannot be modified.", kinds: Iterable[str] = ("price", "quantity",
                                                                                           "publication")) -> None:
        """Every task for this offer (of the given command kinds) ends FAIL with this error."""
        with self._lock:
            self._fail_offers[offer_id] = (code, message, frozenset(kinds))

    def commands(self) -> list[SimCommand]:
        with self._lock:
            self._process_due()
            return list(self._order)

    def process_all(self) -> None:
        """Finish every command now (tests that do not want to wait)."""
        with self._lock:
            for command in self._order:
                command.ready_at = min(command.ready_at, self._clock())
            self._process_due()

    def reset_requests(self) -> None:
        with self._lock:
            self.requests.clear()

    def request_count(self, predicate: Callable[[RequestRecord], bool] | None = None) -> int:
        with self._lock:
            return sum(1 for r in self.requests if predicate is None or predicate(r))

    # --- tokens ------------------------------------------------------------------------

    def issue_tokens(self, client_id: str | None = None, account: str = "seller",
                     ttl: int | None = None) -> dict[str, Any]:
        """A token pair as the token endpoint would give it (tests seed the TokenStore with it)."""
        with self._lock:
            return self._issue(client_id or next(iter(self.clients)), account, ttl)

    def _issue(self, client_id: str, account: str, ttl: int | None = None) -> dict[str, Any]:
        ttl = self.token_ttl if ttl is None else ttl
        access, refresh = self._token(), self._token()
        self._access[access] = _Token(client_id, account, self._clock() + ttl)
        self._refresh[refresh] = _Token(client_id, account, float("inf"))
        return {"access_token": access, "token_type": "bearer", "refresh_token": refresh, "expires_in": ttl,
                "scope": "allegro:api:sale:offers:read allegro:api:sale:offers:write", "allegro_api": True,
                "jti": str(uuid.UUID(int=self._ids.getrandbits(128)))}

    def _token(self) -> str:
        return base64.urlsafe_b64encode(self._ids.randbytes(24)).decode().rstrip("=")

    def revoke(self, account: str | None = None) -> None:
        """The user logged out everywhere (or changed the password): every token dies."""
        with self._lock:
            for token in [*self._access.values(), *self._refresh.values()]:
                if account is None or token.account == account:
                    token.revoked = True

    def expire_access_tokens(self) -> None:
        with self._lock:
            for token in self._access.values():
                token.expires_at = self._clock() - 1

    def approve(self, user_code: str | None = None, *, deny: bool = False) -> None:
        with self._lock:
            for device in self._devices.values():
                if device.state == "pending" and (user_code is None or device.user_code == user_code):
                    device.state = "denied" if deny else "approved"

    # --- faults --------------------------------------------------------------------------

    def start_429_burst(self, client_id: str | None = None) -> None:
        """The client id went over its limit: its next request gets 429 and starts a (scaled) one-minute block."""
        with self._lock:
            self._pending_bursts[client_id or next(iter(self.clients))] += 1

    @property
    def block_seconds(self) -> float:
        return BLOCK_SECONDS * self.block_scale

    # --- serving -------------------------------------------------------------------------

    def transport(self) -> httpx.WSGITransport:
        return httpx.WSGITransport(app=self)

    def serve(self, host: str = "127.0.0.1", port: int = 0) -> str:
        """Serve on a loopback port in a background thread; returns the base URL."""
        return self._loopback.start(host, port)

    def stop(self) -> None:
        self._loopback.stop()

    # --- WSGI --------------------------------------------------------------------------------

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterator[bytes]:
        method = environ["REQUEST_METHOD"].upper()
        path = environ.get("PATH_INFO") or "/"
        query = environ.get("QUERY_STRING") or ""
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length) if length else b""
        headers = {k[5:].replace("_", "-").lower(): v for k, v in environ.items() if k.startswith("HTTP_")}
        if environ.get("CONTENT_TYPE"):
            headers["content-type"] = environ["CONTENT_TYPE"]
        with self._lock:
            self._process_due()
            if path.startswith("/auth/oauth/"):
                status, payload, extra = self._oauth(method, path, query, body, headers)
                media = "application/json"
            else:
                status, payload, extra = self._api(method, path, query, body, headers)
                media = media_type_for(path)
            self.requests.append(RequestRecord(method, path, query, status, body))
            trace_id = str(uuid.UUID(int=self._ids.getrandbits(128)))
        data = b"" if payload is None else payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        media = "application/octet-stream" if isinstance(payload, bytes) else media  # a label or a protocol
        response_headers = [("Content-Length", str(len(data))), ("trace-id", trace_id), *extra]
        if data:
            response_headers.insert(0, ("Content-Type", media))
        start_response(f"{status} {_REASONS.get(status, 'Status')}", response_headers)
        return iter([data])

    # --- OAuth ---------------------------------------------------------------------------------

    def _client(self, headers: dict[str, str]) -> str | None:
        auth = headers.get("authorization", "")
        if not auth.startswith("Basic "):
            return None
        try:
            client_id, _, secret = base64.b64decode(auth[6:]).decode().partition(":")
        except ValueError:
            return None
        return client_id if self.clients.get(client_id) == secret else None

    def _oauth(self, method: str, path: str, query: str, body: bytes,
               headers: dict[str, str]) -> tuple[int, Any, list[tuple[str, str]]]:
        if method != "POST":
            return 405, {"error": "invalid_request"}, []
        client_id = self._client(headers)
        if client_id is None:
            return 401, {"error": "unauthorized", "error_description": "Bad credentials"}, []
        form = dict(parse_qsl(query))
        if body:
            form.update(parse_qsl(body.decode()))
        now = self._clock()
        if path == "/auth/oauth/device":
            if form.get("client_id") != client_id:
                return 400, {"error": "invalid_request", "error_description": "client_id mismatch"}, []
            code = self._token()
            user_code = "".join(self._ids.choice("abcdefghjkmnpqrstuvwxyz23456789") for _ in range(9))
            self._devices[code] = _Device(client_id, user_code, now + self.device_ttl)
            return 200, {"device_code": code, "expires_in": str(self.device_ttl), "user_code": user_code,
                         "interval": str(self.device_interval),
                         "verification_uri": "https://allegro.pl/skojarz-aplikacje",
                         "verification_uri_complete": f"https://allegro.pl/skojarz-aplikacje?code={user_code}"}, []
        if path != "/auth/oauth/token":
            return 404, {"error": "not_found"}, []
        grant = form.get("grant_type")
        if grant == DEVICE_GRANT:
            device = self._devices.get(form.get("device_code", ""))
            if device is None or device.client_id != client_id or device.state == "used":
                return 400, {"error": "invalid_grant", "error_description": "Invalid device code"}, []
            if now > device.expires_at:
                return 400, {"error": "expired_token"}, []
            device.polls += 1
            if device.state == "pending" and self.auto_approve_after is not None \
                    and device.polls > self.auto_approve_after:
                device.state = "approved"
            if device.state == "denied":
                return 400, {"error": "access_denied"}, []
            if device.state == "pending":
                return 400, {"error": "authorization_pending"}, []
            device.state = "used"
            return 200, self._issue(client_id, "seller"), []
        if grant == "refresh_token":
            token = self._refresh.pop(form.get("refresh_token", ""), None)  # single-use
            if token is None or token.revoked or token.client_id != client_id:
                return 400, {"error": "invalid_grant", "error_description": "Invalid refresh token"}, []
            self.refreshes += 1
            return 200, self._issue(client_id, token.account), []
        return 400, {"error": "unsupported_grant_type"}, []

    # --- REST ------------------------------------------------------------------------------------

    def _api(self, method: str, path: str, query: str, body: bytes,
             headers: dict[str, str]) -> tuple[int, Any, list[tuple[str, str]]]:
        auth = headers.get("authorization", "")
        token = self._access.get(auth[7:]) if auth.startswith("Bearer ") else None
        if token is None or token.revoked or token.expires_at <= self._clock():
            return 401, {"error": "invalid_token", "error_description": "Access token expired or revoked"}, []
        now = self._clock()
        blocked_until = self._blocked_until.get(token.client_id, 0.0)
        if now < blocked_until:
            self.block_violations += 1  # calling during the block lengthens it
            return self._too_many(token.client_id, now)
        if self._pending_bursts[token.client_id] > 0:
            self._pending_bursts[token.client_id] -= 1
            return self._too_many(token.client_id, now)
        if self.faults.burst_429_rate and self._rng.random() < self.faults.burst_429_rate:
            return self._too_many(token.client_id, now)
        if self.faults.error_5xx_rate and self._rng.random() < self.faults.error_5xx_rate:
            return 503, _error("ServiceUnavailableException", "Service temporarily unavailable"), []
        if (answer := self._shipping_api(method, path, query, body, headers)) is not None:
            return answer  # Ship with Allegro checks its own media types (the label is a file)
        media = media_type_for(path)
        if media not in headers.get("accept", ""):
            return 406, _error("NotAcceptableException",
                               "Not acceptable representation requested. Please check 'Accept' request header"), []
        if body and headers.get("content-type", "").split(";")[0].strip() != media:
            return 415, _error("UnsupportedMediaTypeException", "Unsupported media type"), []
        params = parse_qsl(query, keep_blank_values=True)
        if (answer := self._orders_api(method, path, params, body)) is not None:
            return answer
        if path == "/sale/offers" and method == "GET":
            return self._search_offers(params)
        if (operation := _OPERATION.match(path)) is not None and method == "GET":
            return self._operation(operation.group(1), operation.group(2))
        if (found := _PRODUCT_OFFER.match(path)) is not None and method == "PATCH":
            return self._patch_offer(found.group(1), body)
        if (found := _PRODUCT_OFFER.match(path) or _PRODUCT.match(path)) is not None:
            if method != "GET":
                return 405, _error("MethodNotAllowedException", "Method not allowed"), []
            if found.re is _PRODUCT_OFFER:
                offer = self._offers.get(found.group(1))
                if offer is None:
                    return 404, _error("NotFoundException", f"Offer {found.group(1)} not found"), []
                return 200, offer.product_offer(with_gtin=self.gtin_in_product_offer), []
            ean = self._products.get(found.group(1))
            if ean is None:
                return 404, _error("NotFoundException", f"Product {found.group(1)} not found"), []
            return 200, product_dto(found.group(1), ean), []
        match = _COMMAND.match(path)
        if match is None:
            return 404, _error("NotFoundException", f"No resource {path}"), []
        kind, command_id, tasks = _KINDS[match.group(1)], match.group(2), match.group(3)
        if tasks and method == "GET":
            return self._tasks(kind, command_id, params)
        if not tasks and method == "GET":
            command = self._commands.get((kind, command_id))
            if command is None:
                return 404, _error("NotFoundException", "Command not found"), []
            return 200, self._report(command), []
        if not tasks and method == "PUT":
            return self._put_command(kind, command_id, body)
        return 405, _error("MethodNotAllowedException", "Method not allowed"), []

    def _patch_offer(self, offer_id: str, raw: bytes) -> tuple[int, Any, list[tuple[str, str]]]:
        """PATCH /sale/product-offers/{offerId} (editProductOffers), the fields the hub sends: the
        price (sellingMode.price) and the stock (stock.available). 200 with the offer when done; with
        ``patch_async_rate``, 202 and a Location to poll (GET .../operations/{operationId}); 409 while
        an earlier edit of the offer is still processing."""
        offer = self._offers.get(offer_id)
        if offer is None:
            return 404, _error("NotFoundException", f"Offer {offer_id} not found"), []
        try:
            body = json.loads(raw)
        except ValueError:
            return 400, _error("VALIDATION_ERROR", "Malformed JSON"), []
        problem, price, currency, quantity = _patch_values(body)
        if problem:
            return 422, _error("VALIDATION_ERROR", problem), []
        pending = self._edits.get(offer_id)
        if pending is not None and pending[0] > self._clock():
            return 409, _error("OfferEditInProgressException",
                               "The previous edition of the offer is still being processed"), []
        if price is not None:
            offer.price, offer.currency = price, currency or offer.currency
        if quantity is not None:
            offer.quantity = quantity
        self.patches += 1
        if self.faults.patch_async_rate and self._rng.random() < self.faults.patch_async_rate:
            operation_id = str(uuid.UUID(int=self._ids.getrandbits(128)))
            self._edits[offer_id] = (self._clock() + self.faults.patch_async_delay, operation_id)
            location = f"/sale/product-offers/{offer_id}/operations/{operation_id}"
            return 202, offer.product_offer(with_gtin=self.gtin_in_product_offer), [
                ("Location", location), ("Retry-After", "1")]
        return 200, offer.product_offer(with_gtin=self.gtin_in_product_offer), []

    def _operation(self, offer_id: str, operation_id: str) -> tuple[int, Any, list[tuple[str, str]]]:
        pending = self._edits.get(offer_id)
        if pending is None or pending[1] != operation_id:
            return 404, _error("NotFoundException", f"Operation {operation_id} not found"), []
        if pending[0] > self._clock():  # a SaleProductOfferStatusResponse
            return 202, {"offer": {"id": offer_id}, "operation": {"id": operation_id, "status": "IN_PROGRESS"}}, [
                ("Retry-After", "1")]
        return 303, None, [("Location", f"/sale/product-offers/{offer_id}")]  # the spec gives 303 no body

    def _too_many(self, client_id: str, now: float) -> tuple[int, Any, list[tuple[str, str]]]:
        self.rate_limited += 1
        self._blocked_until[client_id] = now + self.block_seconds
        extra = [("Retry-After", f"{self.block_seconds:g}")] if self.retry_after_header else []
        return 429, _error("TooManyRequestsException", "Too many requests"), extra

    def _search_offers(self, params: list[tuple[str, str]]) -> tuple[int, Any, list[tuple[str, str]]]:
        values: dict[str, list[str]] = {}
        for key, value in params:
            values.setdefault(key, []).append(value)
        try:
            limit = int(values.get("limit", ["20"])[-1])
            offset = int(values.get("offset", ["0"])[-1])
        except ValueError:
            return 400, _error("VALIDATION_ERROR", "limit and offset must be integers"), []
        if not 1 <= limit <= 1000 or not 0 <= offset <= 9_999_999 or offset + limit > 10_000_000:
            return 400, _error("VALIDATION_ERROR", "limit must be 1..1000 and offset 0..9999999"), []
        external = values.get("external.id", [])
        if len(external) > 100 or any(len(e) > 100 for e in external):
            return 400, _error("VALIDATION_ERROR", "external.id: at most 100 values of 100 characters"), []
        statuses = set(values.get("publication.status", []))
        if statuses - {"INACTIVE", "ACTIVE", "ACTIVATING", "ENDED"}:
            return 400, _error("VALIDATION_ERROR", "unknown publication.status"), []
        ids = set(values.get("offer.id", []))
        if ids or external or statuses:
            found = [o for o in self._offers.values()
                     if (not ids or o.id in ids) and (not external or o.external_id in external)
                     and (not statuses or o.status in statuses)]
        else:  # every offer, page by page: the list is kept between pages (a million offers, a thousand pages)
            if self._in_order is None:
                self._in_order = list(self._offers.values())
            found = self._in_order
        page = found[offset:offset + limit]
        return 200, {"offers": [o.dto() for o in page], "count": len(page), "totalCount": len(found)}, []

    def _put_command(self, kind: str, command_id: str, raw: bytes) -> tuple[int, Any, list[tuple[str, str]]]:
        self.put_attempts[(kind, command_id)] += 1
        if (kind, command_id) in self._commands:
            return 409, _error("CommandAlreadyExistsException", "Command id was already used"), []
        try:
            body = json.loads(raw)
        except ValueError:
            return 400, _error("VALIDATION_ERROR", "Malformed JSON"), []
        problem = _check_command(kind, body)
        if problem:
            return 422, _error("VALIDATION_ERROR", problem), []
        offer_ids = [o["id"] for c in body["offerCriteria"] for o in c["offers"]]
        delay = self.command_delay
        if self.faults.slow_command_rate and self._rng.random() < self.faults.slow_command_rate:
            delay += self.faults.slow_command_delay
        command = SimCommand(kind, command_id, body, offer_ids, datetime.now(UTC), self._clock() + delay)
        self._commands[(kind, command_id)] = command
        self._order.append(command)
        report = self._report(command)
        report["taskCount"] = {"failed": 0, "success": 0, "total": 0}  # as the vendor: nothing scheduled yet
        return 201, report, []

    def _report(self, command: SimCommand) -> dict[str, Any]:
        tasks = command.tasks or {}
        failed = sum(1 for t in tasks.values() if t["status"] == "FAIL")
        return {
            "id": command.id,
            "createdAt": _iso(command.created_at),
            "completedAt": _iso(command.completed_at) if command.completed_at else None,
            "taskCount": {"failed": failed, "success": len(tasks) - failed if tasks else 0,
                          "total": len(command.offer_ids)},
        }

    def _tasks(self, kind: str, command_id: str, params: list[tuple[str, str]]) -> tuple[int, Any, Any]:
        command = self._commands.get((kind, command_id))
        if command is None:
            return 404, _error("NotFoundException", "Command not found"), []
        values = dict(params)
        try:
            limit, offset = int(values.get("limit", "100")), int(values.get("offset", "0"))
        except ValueError:
            return 422, _error("VALIDATION_ERROR", "limit and offset must be integers"), []
        if not 1 <= limit <= 1000 or not 0 <= offset <= 999:
            return 422, _error("VALIDATION_ERROR", "limit must be 1..1000 and offset 0..999"), []
        tasks = [command.tasks[o] if command.tasks else {"offer": {"id": o}, "status": "NEW", "errors": []}
                 for o in command.offer_ids]
        return 200, {"tasks": tasks[offset:offset + limit]}, []

    # --- command processing ----------------------------------------------------------------------

    def _process_due(self) -> None:
        now = self._clock()
        for command in self._order:
            if command.tasks is None and command.ready_at <= now:
                self._apply(command)

    def _apply(self, command: SimCommand) -> None:
        command.applied += 1
        command.tasks = {}
        for offer_id in command.offer_ids:
            error = self._apply_one(command, offer_id)
            task: dict[str, Any] = {"offer": {"id": offer_id}, "status": "SUCCESS", "errors": []}
            if error:
                code, message = error
                task.update(status="FAIL", message=message, errors=_error(code, message)["errors"])
            command.tasks[offer_id] = task
        command.completed_at = datetime.now(UTC)

    def _apply_one(self, command: SimCommand, offer_id: str) -> tuple[str, str] | None:
        offer = self._offers.get(offer_id)
        if offer is None:
            return "OFFER_NOT_FOUND", "The offer does not exist."
        flagged = self._fail_offers.get(offer_id)
        if flagged and command.kind in flagged[2]:
            return flagged[0], flagged[1]
        modification = command.body.get("modification") or {}
        if command.kind == "price":
            price = modification["price"]
            offer.price, offer.currency = Decimal(price["amount"]), price["currency"]
        elif command.kind == "quantity":
            value = int(modification["value"])
            new = value if modification["changeType"] == "FIXED" else offer.quantity + value
            if new < 0:
                return "INVALID_QUANTITY", "The quantity cannot be negative."
            offer.quantity = new
        else:
            action = command.body["publication"]["action"]
            if action == "END":
                if offer.status == "INACTIVE":
                    return "OFFER_NOT_ACTIVE", "A draft offer cannot be ended."
                offer.status = "ENDED"
            else:
                if offer.quantity <= 0:
                    return "INVALID_QUANTITY", "An offer with no stock cannot be activated."
                offer.status = "ACTIVE"
        return None


def _patch_values(body: Any) -> tuple[str | None, Decimal | None, str | None, int | None]:
    """(problem, price, currency, quantity) of a SaleProductOfferPatchRequestV1's sellingMode.price
    (amount: a string, currency) and stock.available; other fields are not the simulator's."""
    if not isinstance(body, dict):
        return "the body must be an object", None, None, None
    price = currency = quantity = None
    selling = body.get("sellingMode")
    if selling is not None:
        amount = (selling.get("price") or {}).get("amount") if isinstance(selling, dict) else None
        currency = (selling.get("price") or {}).get("currency") if isinstance(selling, dict) else None
        if not isinstance(amount, str):
            return "sellingMode.price.amount must be a string", None, None, None
        try:
            price = Decimal(amount)
        except InvalidOperation:
            return f"sellingMode.price.amount {amount!r} is not a number", None, None, None
        if not price.is_finite() or price <= 0 or price != price.quantize(Decimal("0.01")):
            return f"sellingMode.price.amount {amount!r} is not a price", None, None, None
        if currency is not None and currency != "PLN":
            return f"sellingMode.price.currency {currency!r} is not the marketplace's", None, None, None
    stock = body.get("stock")
    if stock is not None:
        available = stock.get("available") if isinstance(stock, dict) else None
        if not isinstance(available, int) or isinstance(available, bool) or available < 0:
            return "stock.available must be a whole number >= 0", None, None, None
        quantity = available
    if price is None and quantity is None:
        return "nothing to change (sellingMode.price or stock.available)", None, None, None
    return None, price, currency, quantity


def _check_command(kind: str, body: Any) -> str | None:
    """The checks the vendor makes when it registers a command (422 otherwise)."""
    if not isinstance(body, dict):
        return "the body must be an object"
    criteria = body.get("offerCriteria")
    if not isinstance(criteria, list) or not criteria:
        return "offerCriteria: at least one criterion is required"
    for criterion in criteria:
        offers = criterion.get("offers") if isinstance(criterion, dict) else None
        if criterion.get("type") != "CONTAINS_OFFERS" or not isinstance(offers, list) or not offers:
            return "offerCriteria: type CONTAINS_OFFERS with offers is required"
        if len(offers) > MAX_OFFERS_PER_CRITERION:
            return f"offerCriteria: at most {MAX_OFFERS_PER_CRITERION} offers per criterion"
        if not all(isinstance(o, dict) and isinstance(o.get("id"), str) for o in offers):
            return "offerCriteria.offers: each offer needs a string id"
    modification = body.get("modification")
    if kind == "price":
        if not isinstance(modification, dict) or modification.get("type") != "FIXED_PRICE":
            return "modification: only FIXED_PRICE is simulated"
        price = modification.get("price") or {}
        try:
            amount = Decimal(price.get("amount"))
        except (InvalidOperation, TypeError):
            return "modification.price.amount must be a decimal string"
        if not isinstance(price.get("amount"), str) or amount <= 0 or not isinstance(price.get("currency"), str):
            return "modification.price: amount > 0 as a string and a currency are required"
    elif kind == "quantity":
        if not isinstance(modification, dict) or modification.get("changeType") not in ("FIXED", "GAIN"):
            return "modification.changeType must be FIXED or GAIN"
        value = modification.get("value")
        if not isinstance(value, int) or isinstance(value, bool):
            return "modification.value must be an integer"
        if modification["changeType"] == "FIXED" and value <= 0:
            return "modification.value: for changeType FIXED a new stock quantity > 0"
    else:
        action = (body.get("publication") or {}).get("action")
        if action not in ("ACTIVATE", "END"):
            return "publication.action must be ACTIVATE or END"
    return None


class LossyTransport(httpx.BaseTransport):
    """Timeouts between the connector and the vendor, deterministic for a seed.

    ``lost_response_rate``: the request reaches the vendor and is applied, but the answer is lost
    (httpx.ReadTimeout after forwarding): the case that makes blind retries send things twice.
    ``timeout_rate``: the request never arrives (httpx.ConnectTimeout).
    A 429 answer is never lost (see handle_request).
    """

    def __init__(self, inner: httpx.BaseTransport, *, lost_response_rate: float = 0.0, timeout_rate: float = 0.0,
                 seed: int = 0, applies_to: Callable[[httpx.Request], bool] | None = None):
        self.inner = inner
        self.lost_response_rate = lost_response_rate
        self.timeout_rate = timeout_rate
        self._rng = random.Random(seed)
        self._lock = threading.Lock()
        self._applies_to = applies_to or (lambda request: not request.url.path.startswith("/auth/"))
        self.lost = 0
        self.timed_out = 0

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if self._applies_to(request):
            with self._lock:
                roll = self._rng.random()
            if roll < self.timeout_rate:
                self.timed_out += 1
                raise httpx.ConnectTimeout("simulated connect timeout", request=request)
            if roll < self.timeout_rate + self.lost_response_rate:
                response = self.inner.handle_request(request)
                response.read()
                if response.status_code == 429:
                    # a lost 429 would make any client call into a block it cannot know about; the
                    # tests assert that no call lands in a known block, so 429s always arrive
                    return response
                response.close()
                self.lost += 1
                raise httpx.ReadTimeout("simulated read timeout (the request was applied)", request=request)
        return self.inner.handle_request(request)

    def close(self) -> None:
        self.inner.close()


