"""An in-memory InPost ShipX speaking the REST subset the connector uses, with faults on demand.

A WSGI app: tests use it in-process through ``sim.transport()`` (httpx.WSGITransport plus the transport-level
faults); the demo and benchmarks serve it on loopback with ``serve()`` / ``stop()``. Every exchange is logged
(``sim.log``) so tests can read what was sent, how often, and what was answered.

Sources: shared/notes/carriers.md, section "InPost ShipX", and InPost's own pages (W = https://dokumentacja-inpost.
atlassian.net/wiki/spaces/PL/pages):
  W/28639247 ([1.23.0] API General Information: environments, headers)
  W/18153501/Creating+a+shipment+in+the+simplified+mode
  W/18153507/Shipment+sizes+and+services
  W/18153512/Shipment+search+and+sorting
  W/18153613/Offer+selection (a whole shipment object, as ShipX answers it)
  W/28639256 ([1.23.0] Shipment cancellation) and W/11731070 ([1.2.0] Anulowanie przesyłki)
  W/18153509 (Shipment label download)
  W/18153482/Dispatch+Order
  W/18153479 (Shipment Tracking), W/18153478 (Statuses)
  https://docs.inpost24.com/pages/viewpage.action?pageId=12091523 (the invalid_action error body)

What it follows, and where from ("pages/N" is W/N above; "(u)" marks what no InPost page we could read states):

- Auth: ``Authorization: Bearer <token>`` on every call but GET /v1/statuses ("Authorization for this resource is
  not required", pages/18153478). A wrong token: 401 (u: the error key).
- Errors: ``{"status", "error", "message", "details"}``, e.g. 400 ``invalid_action`` with
  ``details: {"action": "cancel", "shipment_status": "confirmed"}`` and the message "Action (cancel) can not be
  taken on shipment with status (confirmed). " (docs.inpost24.com/pages/viewpage.action?pageId=12091523);
  ``invalid_parameter`` for a bad ``lang`` with ``description`` in place of ``message`` (Statuses page);
  ``validation_failed`` with a details object per field (u: the exact keys inside details).
- POST /v1/organizations/{org}/shipments, simplified mode ("Creating a shipment in the simplified mode",
  pages/18153501): receiver required (courier: company_name or first+last name and an address; locker: phone and
  e-mail), sender optional, parcels 1..1000, custom_attributes.target_point required for a locker service,
  insurance required for inpost_courier_standard and the express services, reference 3..100 characters.
  Multi-parcel only for courier services; locker templates small/medium/large (+ xlarge for
  inpost_courier_c2c), dimensions in mm and weight in kg otherwise ("Shipment sizes and services",
  pages/18153507). The answer is the shipment in status ``created`` (201); it is asynchronous ("After creating a
  shipment an asynchronous offer, manifestation and offer purchase process will be started"): here it moves
  created -> offers_prepared -> offer_selected -> confirmed (with tracking numbers) as it is read (see
  ``confirm_after_reads``; ``hold_confirmation`` keeps it waiting).
- GET /v1/organizations/{org}/shipments ("Shipment search and sorting", pages/18153512): id, tracking_number,
  status, service, created_at_gteq/lteq, sort_by/sort_order, page/per_page; the list is
  ``{href, count, page, per_page, items}`` (the Organization page's list). A ``reference`` filter is not in the
  published list: ``filters_by_reference`` decides whether this ShipX honours it (default) or ignores it.
- GET /v1/shipments/{id}; DELETE /v1/shipments/{id}: 204 in created, offers_prepared or offer_selected (the PL
  page allows offer_selected too), else invalid_action ("Shipment cancellation", pages/28639256). A cancelled
  shipment stays, in status ``canceled`` (u: whether ShipX keeps or forgets it).
- GET /v1/shipments/{id}/label?format=pdf|zpl|epl&type=normal|A6|dpi300 ("Shipment label download",
  pages/18153509): only from confirmed on (else invalid_action); dpi300 only for zpl and the services listed
  there; courier services always answer A6; ``label_generation_failed`` on demand (``label_failures``).
- Dispatch orders ("Dispatch Order", pages/18153482): POST /v1/organizations/{org}/dispatch_orders with
  {shipments, address, name, phone, email, comment} answers the order in status ``new``; statuses new, sent,
  accepted, done, rejected, canceled. GET /v1/organizations/{org}/dispatch_orders (u: the list and its
  ``shipment_id`` filter; ``filters_by_shipment`` decides), GET and DELETE /v1/dispatch_orders/{id} (u: a
  cancel allowed only while ``new``). The answer carries ``comments`` as a list, as in InPost's example.
- GET /v1/tracking/{number} ("Shipment Tracking", pages/18153479): {tracking_number, service, status,
  created_at, updated_at, tracking_details (newest first: status, origin_status, agency, datetime),
  expected_flow}; an unknown number 404 ``resource_not_found`` (u).
- GET /v1/statuses?lang=en_GB|pl_PL: {items: [{name, title, description}]} (titles here are placeholders made
  from the names; the real API serves InPost's texts).
- Stricter than any page says (u), to catch a connector that sends sloppy data: a phone of nine digits (every
  InPost example has nine), a Polish post code as NN-NNN, and a dispatch order only for confirmed shipments.

Faults, drawn per request from a seeded generator (``faults``) or queued one by one (``inject``): a 5xx before
the change is applied, a 5xx after it was applied (a gateway that gave up), a timeout before the request reaches
ShipX, a response lost after ShipX applied the request, a slow answer (served mode: ShipX applies the request and
answers after ``delay_seconds``), slow asynchronous confirmation (``hold_confirmation``, ``confirm_after_reads``)
and a label not ready yet (``label_failures``).
"""

from __future__ import annotations

import json
import random
import re
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import parse_qs
from zoneinfo import ZoneInfo

import httpx

from connectors.simserver import LoopbackServer

WARSAW = ZoneInfo("Europe/Warsaw")
START = datetime(2024, 6, 11, 8, 0, 0, tzinfo=UTC)
BASE = "https://api-shipx-pl.easypack24.net"
SERVICES = ("inpost_locker_standard", "inpost_locker_allegro", "inpost_locker_pass_thru", "inpost_courier_standard",
            "inpost_courier_c2c", "inpost_courier_express_1000", "inpost_courier_express_1200",
            "inpost_courier_express_1700", "inpost_letter_allegro", "inpost_courier_allegro")
INSURANCE_REQUIRED = frozenset({"inpost_courier_standard", "inpost_courier_express_1000",
                                "inpost_courier_express_1200", "inpost_courier_express_1700"})
DPI300 = frozenset({"inpost_locker_standard", "inpost_locker_allegro", "inpost_locker_pass_thru",
                    "inpost_letter_allegro", "inpost_courier_allegro", "inpost_courier_c2c"})
LOCKER_TEMPLATES = {"small": (80, 380, 640), "medium": (190, 380, 640), "large": (410, 380, 640)}
C2C_TEMPLATES = {**LOCKER_TEMPLATES, "xlarge": (500, 500, 800)}
PRE_CONFIRMATION = ("created", "offers_prepared", "offer_selected")
CANCELLABLE = frozenset(PRE_CONFIRMATION)
DISPATCH_STATUSES = ("new", "sent", "accepted", "done", "rejected", "canceled")
STATUS_NAMES = ("created", "offers_prepared", "offer_selected", "confirmed", "dispatched_by_sender",
                "collected_from_sender", "taken_by_courier", "adopted_at_source_branch", "sent_from_source_branch",
                "adopted_at_sorting_center", "sent_from_sorting_center", "adopted_at_target_branch",
                "out_for_delivery", "ready_to_pickup", "pickup_reminder_sent", "pickup_time_expired", "avizo",
                "delivered", "returned_to_sender", "canceled", "undelivered")
FAULT_KINDS = ("5xx", "5xx_after", "timeout", "lost", "slow")

StartResponse = Callable[[str, list[tuple[str, str]]], Any]


@dataclass(frozen=True)
class Faults:
    """What goes wrong, drawn per request from the simulator's seeded generator."""

    error_rate: float = 0.0  # share of requests answered 5xx
    error_after_apply: float = 0.5  # of those, the share answered after the change was applied
    timeout_rate: float = 0.0  # transport: the request never reaches ShipX
    lost_response_rate: float = 0.0  # transport: ShipX applies the request, the response is lost
    delay_rate: float = 0.0  # served mode: ShipX applies the request, then answers late
    delay_seconds: float = 0.0


@dataclass
class _Planned:
    kind: str
    method: str | None
    path: re.Pattern[str] | None
    remaining: int
    seconds: float = 0.0

    def matches(self, method: str, path: str) -> bool:
        return (self.method is None or self.method == method) and (self.path is None or bool(self.path.search(path)))


@dataclass
class Exchange:
    """One request as ShipX saw it (status 0: it never got there)."""

    method: str
    path: str
    query: dict[str, str]
    body: Any
    status: int = 0
    response: Any = None
    fault: str | None = None
    applied: bool = False


class _Reply(Exception):
    def __init__(self, status: int, error: str, message: str, details: Any = None, *, key: str = "message"):
        super().__init__(message)
        self.status, self.error, self.message, self.details, self.key = status, error, message, details, key

    def body(self) -> dict[str, Any]:
        return {"status": self.status, "error": self.error, self.key: self.message, "details": self.details}


def _invalid(details: Mapping[str, Any]) -> _Reply:
    return _Reply(400, "validation_failed", "There are some validation errors. Check details object for more info.",
                  dict(details))


def _shipx_time(moment: datetime) -> str:
    return moment.astimezone(WARSAW).isoformat(timespec="milliseconds")


def _parse_time(value: str) -> datetime:
    """created_at_gteq: "ISO 8601 format or similar, or a timestamp"."""
    if re.fullmatch(r"\d+", value):
        return datetime.fromtimestamp(int(value), UTC)
    parsed = datetime.fromisoformat(value.replace(" ", "+").replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=WARSAW)


def _number(value: Any) -> Decimal | None:
    """A positive decimal given as a JSON number or string."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return None
    try:
        number = Decimal(str(value))
    except InvalidOperation:
        return None
    return number if number.is_finite() and number > 0 else None


def _pdf(pages: list[list[str]], size: tuple[int, int]) -> bytes:
    """A small valid PDF, one page per parcel, its lines in Helvetica (readable by pypdf)."""
    width, height = size
    objects: list[bytes] = [b"<< /Type /Catalog /Pages 2 0 R >>", b"", b"<< /Type /Font /Subtype /Type1 "
                            b"/BaseFont /Helvetica >>"]
    kids = []
    for lines in pages:
        escaped = [line.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)") for line in lines]
        text = f"BT /F1 12 Tf 20 {height - 40} Td " + " ".join(f"({line}) Tj 0 -18 Td" for line in escaped) + " ET"
        stream = text.encode("latin-1", "replace")
        objects.append(b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream")
        content_no = len(objects)
        objects.append(b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 %d %d] /Contents %d 0 R "
                       b"/Resources << /Font << /F1 3 0 R >> >> >>" % (width, height, content_no))
        kids.append(len(objects))
    objects[1] = b"<< /Type /Pages /Kids [%s] /Count %d >>" % (b" ".join(b"%d 0 R" % k for k in kids), len(kids))
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for n, obj in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % n + obj + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % o for o in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    return bytes(out)


class ShipXSimulator:
    """One ShipX organization. Read its state from ``shipments``, ``dispatch_orders`` and ``tracking``."""

    def __init__(self, token: str = "shipx-test-token", organization_id: int = 4321, *, seed: int = 0,
                 services: Iterable[str] = SERVICES):
        self.token = token
        self.organization_id = organization_id
        self.services = frozenset(services)
        self.shipments: dict[int, dict[str, Any]] = {}
        self.dispatch_orders: dict[int, dict[str, Any]] = {}
        self.tracking: dict[str, list[dict[str, Any]]] = {}  # number -> tracking_details, newest first
        self.log: list[Exchange] = []
        self.faults = Faults()
        self.confirm_after_reads = 1  # the Nth GET /v1/shipments/{id} finds it confirmed (0: at once)
        self.hold_confirmation = False  # slow asynchronous confirmation: nothing gets confirmed
        self.filters_by_reference = True
        self.filters_by_shipment = True
        self.label_failures = 0  # label requests answered label_generation_failed before one succeeds
        self.clock = START
        self._reads: dict[int, int] = {}
        self._planned: list[_Planned] = []
        self._rng = random.Random(seed)
        self._lock = threading.RLock()
        self._next_shipment = 10_000_000
        self._next_parcel = 70_000_000
        self._next_order = 900
        self._next_address = 5000
        self._loopback = LoopbackServer(self, "shipx-simulator")

    # --- the test's handles ------------------------------------------------------------------------------

    def now(self) -> datetime:
        return self.clock

    def advance(self, seconds: float) -> None:
        self.clock += timedelta(seconds=seconds)

    def inject(self, kind: str, *, method: str | None = None, path: str | None = None, times: int = 1,
               seconds: float = 0.0) -> None:
        """Queue a fault for the next ``times`` requests matching ``method`` and the ``path`` regex."""
        if kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault {kind!r} (one of {', '.join(FAULT_KINDS)})")
        with self._lock:
            self._planned.append(_Planned(kind, method, re.compile(path) if path else None, times, seconds))

    def clear_faults(self) -> None:
        with self._lock:
            self.faults = Faults()
            self._planned.clear()

    def exchanges(self, method: str, path: str) -> list[Exchange]:
        """The logged exchanges whose method matches and whose path matches the regex."""
        pattern = re.compile(path)
        return [e for e in self.log if e.method == method and pattern.search(e.path)]

    def confirm(self, shipment_id: int) -> None:
        """ShipX finishes buying the offer now."""
        with self._lock:
            self._confirm(self.shipments[shipment_id])

    def add_shipment(self, body: Mapping[str, Any], *, confirmed: bool = True) -> int:
        """A shipment created elsewhere (Manager Paczek, another program), as POST .../shipments would create it."""
        with self._lock:
            _status, answer, _headers = self._create_shipment(body)
            if confirmed:
                self._confirm(self.shipments[answer["id"]])
            return int(answer["id"])

    def by_reference(self, reference: str) -> list[dict[str, Any]]:
        return [s for s in self.shipments.values() if s["reference"] == reference]

    def add_tracking(self, tracking_number: str, status: str, *, agency: str | None = None,
                     origin_status: str | None = None) -> None:
        """The logistic process moves the parcel on (at the simulator's clock)."""
        with self._lock:
            details = self.tracking.setdefault(tracking_number, [])
            details.insert(0, {"status": status, "origin_status": origin_status or status.upper()[:3],
                               "agency": agency, "datetime": _shipx_time(self.clock)})
            for shipment in self.shipments.values():
                if shipment["tracking_number"] == tracking_number:
                    shipment["status"] = status
                    shipment["updated_at"] = _shipx_time(self.clock)

    def set_dispatch_status(self, order_id: int, status: str) -> None:
        if status not in DISPATCH_STATUSES:
            raise ValueError(status)
        with self._lock:
            self.dispatch_orders[order_id]["status"] = status

    def transport(self) -> httpx.BaseTransport:
        return _SimTransport(self)

    def serve(self, host: str = "127.0.0.1", port: int = 0, *, latency: float = 0.0) -> str:
        return self._loopback.start(host, port, latency=latency)

    def stop(self) -> None:
        self._loopback.stop()

    # --- faults ------------------------------------------------------------------------------------------

    def _planned_fault(self, method: str, path: str, kinds: tuple[str, ...]) -> _Planned | None:
        with self._lock:
            for planned in self._planned:
                if planned.kind in kinds and planned.remaining > 0 and planned.matches(method, path):
                    planned.remaining -= 1
                    if planned.remaining == 0:
                        self._planned.remove(planned)
                    return planned
        return None

    def _transport_fault(self, method: str, path: str) -> str | None:
        planned = self._planned_fault(method, path, ("timeout", "lost"))
        if planned is not None:
            return planned.kind
        with self._lock:
            roll = self._rng.random()
        if roll < self.faults.timeout_rate:
            return "timeout"
        if roll < self.faults.timeout_rate + self.faults.lost_response_rate:
            return "lost"
        return None

    def _app_fault(self, method: str, path: str) -> tuple[str | None, float]:
        planned = self._planned_fault(method, path, ("5xx", "5xx_after", "slow"))
        if planned is not None:
            return planned.kind, planned.seconds or self.faults.delay_seconds
        with self._lock:
            roll, after, slow = self._rng.random(), self._rng.random(), self._rng.random()
        if roll < self.faults.error_rate:
            return ("5xx_after" if after < self.faults.error_after_apply else "5xx"), 0.0
        if slow < self.faults.delay_rate:
            return "slow", self.faults.delay_seconds
        return None, 0.0

    # --- WSGI --------------------------------------------------------------------------------------------

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        method = environ["REQUEST_METHOD"]
        path = environ.get("PATH_INFO", "")
        query = {k: v[-1] for k, v in parse_qs(environ.get("QUERY_STRING", ""), keep_blank_values=True).items()}
        length = int(environ.get("CONTENT_LENGTH") or 0)
        raw = environ["wsgi.input"].read(length) if length else b""
        try:
            body = json.loads(raw) if raw else None
        except json.JSONDecodeError:
            body = raw.decode("utf-8", "replace")
        exchange = Exchange(method, path, query, body)
        self.log.append(exchange)
        fault, delay = self._app_fault(method, path)
        exchange.fault = fault
        if fault == "5xx":
            exchange.status = 503
            exchange.response = {"status": 503, "error": "service_unavailable", "message": "Try again later"}
            return self._send(start_response, 503, exchange.response)
        try:
            self._authorize(environ, path)
            with self._lock:
                status, payload, headers = self._route(method, path, query, body)
            exchange.applied = method != "GET"
        except _Reply as reply:
            status, payload, headers = reply.status, reply.body(), []
        if fault == "5xx_after":
            exchange.status = 502
            exchange.response = "<html><body>502 Bad Gateway</body></html>"
            start_response("502 Bad Gateway", [("Content-Type", "text/html")])
            return [exchange.response.encode()]
        if fault == "slow" and delay > 0:
            time.sleep(delay)
        exchange.status = status
        exchange.response = payload
        return self._send(start_response, status, payload, headers)

    @staticmethod
    def _send(start_response: StartResponse, status: int, payload: Any,
              headers: list[tuple[str, str]] | None = None) -> list[bytes]:
        reason = {200: "OK", 201: "Created", 204: "No Content", 400: "Bad Request", 401: "Unauthorized",
                  403: "Forbidden", 404: "Not Found", 503: "Service Unavailable"}.get(status, "Status")
        if isinstance(payload, bytes):
            start_response(f"{status} {reason}", headers or [("Content-Type", "application/octet-stream")])
            return [payload]
        if status == 204:
            start_response(f"{status} {reason}", [])
            return [b""]
        data = json.dumps(payload).encode()
        start_response(f"{status} {reason}", [("Content-Type", "application/json"), *(headers or [])])
        return [data]

    def _authorize(self, environ: Mapping[str, Any], path: str) -> None:
        if path == "/v1/statuses":
            return
        if environ.get("HTTP_AUTHORIZATION") != f"Bearer {self.token}":
            raise _Reply(401, "unauthorized", "Access token is missing or invalid")

    def _route(self, method: str, path: str, query: dict[str, str], body: Any
               ) -> tuple[int, Any, list[tuple[str, str]]]:
        org = f"/v1/organizations/{self.organization_id}"
        match = re.fullmatch(r"/v1/organizations/(\d+)/(shipments|dispatch_orders)", path)
        if match and int(match.group(1)) != self.organization_id:
            raise _Reply(403, "access_forbidden", "You are not a member of this organization")
        routes: dict[tuple[str, str], Callable[[], tuple[int, Any, list[tuple[str, str]]]]] = {
            ("POST", f"{org}/shipments"): lambda: self._create_shipment(body),
            ("GET", f"{org}/shipments"): lambda: self._list_shipments(query),
            ("POST", f"{org}/dispatch_orders"): lambda: self._create_dispatch_order(body),
            ("GET", f"{org}/dispatch_orders"): lambda: self._list_dispatch_orders(query),
            ("GET", "/v1/statuses"): lambda: self._statuses(query),
        }
        if (method, path) in routes:
            return routes[(method, path)]()
        if any(p == path for _, p in routes):
            raise _Reply(405, "method_not_allowed", f"{method} is not allowed on {path}")
        if match := re.fullmatch(r"/v1/shipments/(\d+)(/label)?", path):
            shipment = self._shipment(int(match.group(1)))
            if match.group(2):
                if method == "GET":
                    return self._label(shipment, query)
            elif method == "GET":
                self._progress(shipment)
                return 200, self._shipment_json(shipment), []
            elif method == "DELETE":
                return self._cancel_shipment(shipment)
        if match := re.fullmatch(r"/v1/dispatch_orders/(\d+)", path):
            order = self.dispatch_orders.get(int(match.group(1)))
            if order is None:
                raise _Reply(404, "resource_not_found", "Dispatch order not found")
            if method == "GET":
                return 200, self._dispatch_json(order), []
            if method == "DELETE":
                return self._cancel_dispatch_order(order)
        if (match := re.fullmatch(r"/v1/tracking/([^/]+)", path)) and method == "GET":
            return self._track(match.group(1))
        raise _Reply(404, "not_found", f"No route {method} {path}")

    # --- shipments ---------------------------------------------------------------------------------------

    def _shipment(self, shipment_id: int) -> dict[str, Any]:
        shipment = self.shipments.get(shipment_id)
        if shipment is None:
            raise _Reply(404, "resource_not_found", f"Shipment ({shipment_id}) not found")
        return shipment

    def _validate_party(self, party: Any, where: str, errors: dict[str, Any], *, courier: bool,
                        locker: bool) -> None:
        if not isinstance(party, Mapping):
            errors[where] = ["required"]
            return
        problems: dict[str, Any] = {}
        if courier and not (party.get("company_name") or (party.get("first_name") and party.get("last_name"))):
            problems["name"] = ["company_name or first_name and last_name required"]
        if locker and where == "receiver":
            for key in ("phone", "email"):
                if not party.get(key):
                    problems[key] = ["required"]
        phone = party.get("phone")
        if phone is not None and not re.fullmatch(r"\d{9}", str(phone)):
            problems["phone"] = ["invalid_format"]
        address = party.get("address")
        if courier or address is not None:
            if not isinstance(address, Mapping):
                problems["address"] = ["required"]
            else:
                missing = {k: ["required"] for k in ("street", "city", "post_code", "country_code")
                           if not address.get(k)}
                if address.get("country_code") == "PL" and address.get("post_code") and not re.fullmatch(
                        r"\d{2}-\d{3}", str(address["post_code"])):
                    missing["post_code"] = ["invalid_format"]
                if missing:
                    problems["address"] = missing
        if problems:
            errors[where] = problems

    def _validate_parcel(self, parcel: Any, service: str) -> dict[str, Any]:
        if not isinstance(parcel, Mapping):
            return {"parcel": ["invalid"]}
        problems: dict[str, Any] = {}
        templates = C2C_TEMPLATES if service == "inpost_courier_c2c" else LOCKER_TEMPLATES
        weight = parcel.get("weight")
        if weight is not None:
            amount = _number(weight.get("amount")) if isinstance(weight, Mapping) else None
            if amount is None or not isinstance(weight, Mapping) or weight.get("unit", "kg") != "kg":
                problems["weight"] = ["invalid"]
            elif parcel.get("template") and amount > 25:
                problems["weight"] = ["too_heavy"]
        if service.startswith("inpost_locker") or (parcel.get("template") and service == "inpost_courier_c2c"):
            if parcel.get("template") not in templates:
                problems["template"] = ["invalid"]
            return problems
        dims = parcel.get("dimensions")
        if parcel.get("template"):
            problems["template"] = ["not_available_for_service"]
        elif not isinstance(dims, Mapping) or dims.get("unit", "mm") != "mm" or any(
                _number(dims.get(k)) is None for k in ("length", "width", "height")):
            problems["dimensions"] = ["invalid"]
        if weight is None:
            problems["weight"] = ["required"]
        return problems

    def _validate_money(self, value: Any, name: str, errors: dict[str, Any]) -> None:
        if not isinstance(value, Mapping) or _number(value.get("amount")) is None:
            errors[name] = {"amount": ["invalid"]}
        elif value.get("currency", "PLN") != "PLN":
            errors[name] = {"currency": ["invalid"]}

    def _create_shipment(self, body: Any) -> tuple[int, Any, list[tuple[str, str]]]:
        if not isinstance(body, Mapping):
            raise _invalid({"shipment": ["invalid"]})
        errors: dict[str, Any] = {}
        service = body.get("service")
        if not isinstance(service, str) or service not in self.services:
            raise _invalid({"service": ["invalid" if service else "required (offer mode is not simulated)"]})
        locker = service.startswith("inpost_locker")
        self._validate_party(body.get("receiver"), "receiver", errors, courier=not locker, locker=locker)
        if body.get("sender") is not None:
            self._validate_party(body["sender"], "sender", errors, courier=False, locker=False)
        parcels = body.get("parcels")
        if not isinstance(parcels, list) or not 1 <= len(parcels) <= 1000:
            errors["parcels"] = ["invalid_count"]
        elif locker and len(parcels) > 1:
            errors["parcels"] = ["multiple_parcels_not_allowed_for_service"]
        else:
            found = [self._validate_parcel(p, service) for p in parcels]
            if any(found):
                errors["parcels"] = found
        attributes = body.get("custom_attributes") or {}
        if locker and not (isinstance(attributes, Mapping) and attributes.get("target_point")):
            errors["custom_attributes"] = {"target_point": ["required"]}
        reference = body.get("reference")
        if reference is not None and not (isinstance(reference, str) and 3 <= len(reference) <= 100):
            errors["reference"] = ["invalid_length"]
        if body.get("cod") is not None:
            self._validate_money(body["cod"], "cod", errors)
        if body.get("insurance") is not None:
            self._validate_money(body["insurance"], "insurance", errors)
        elif service in INSURANCE_REQUIRED:
            errors["insurance"] = ["required"]
        if errors:
            raise _invalid(errors)
        sid = self._next_shipment = self._next_shipment + 1
        now = _shipx_time(self.clock)
        shipment = {
            "id": sid, "status": "created", "tracking_number": None, "service": service, "reference": reference,
            "is_return": False, "sending_method": attributes.get("sending_method"),
            "custom_attributes": dict(attributes), "cod": self._money(body.get("cod")),
            "insurance": self._money(body.get("insurance")), "sender": self._party(body.get("sender")),
            "receiver": self._party(body["receiver"]), "parcels": [self._parcel(p) for p in parcels],
            "offers": [], "selected_offer": None, "created_at": now, "updated_at": now, "_created": self.clock,
        }
        self.shipments[sid] = shipment
        self._reads[sid] = 0
        if self.confirm_after_reads == 0 and not self.hold_confirmation:
            answer = self._shipment_json(shipment)  # the POST answer still shows "created"
            self._confirm(shipment)
            return 201, answer, []
        return 201, self._shipment_json(shipment), []

    def _money(self, value: Any) -> dict[str, Any]:
        if not isinstance(value, Mapping):
            return {"amount": None, "currency": None}
        return {"amount": value["amount"], "currency": value.get("currency", "PLN")}

    def _party(self, value: Any) -> dict[str, Any] | None:
        if not isinstance(value, Mapping):
            return None
        self._next_address += 2
        address = dict(value.get("address") or {})
        out = {"id": self._next_address, "name": None, "company_name": None, "first_name": None, "last_name": None,
               "email": None, "phone": None, **{k: v for k, v in value.items() if k != "address"}}
        out["address"] = {"id": self._next_address + 1, "street": None, "building_number": None, "line1": None,
                          "line2": None, "city": None, "post_code": None, "country_code": None, **address}
        return out

    def _parcel(self, value: Mapping[str, Any]) -> dict[str, Any]:
        self._next_parcel += 1
        return {"id": self._next_parcel, "template": value.get("template"), "dimensions": value.get("dimensions"),
                "weight": value.get("weight"), "is_non_standard": bool(value.get("is_non_standard")),
                "tracking_number": None}

    def _progress(self, shipment: dict[str, Any]) -> None:
        """The asynchronous offer purchase moves on as the shipment is read."""
        if shipment["status"] not in PRE_CONFIRMATION or self.hold_confirmation:
            return
        sid = shipment["id"]
        self._reads[sid] = self._reads.get(sid, 0) + 1
        if self._reads[sid] >= self.confirm_after_reads:
            self._confirm(shipment)
        else:
            shipment["status"] = "offer_selected" if self._reads[sid] == self.confirm_after_reads - 1 \
                else "offers_prepared"

    def _tracking_number(self) -> str:
        return "6" + "".join(str(self._rng.randrange(10)) for _ in range(23))

    def _confirm(self, shipment: dict[str, Any]) -> None:
        if shipment["status"] not in PRE_CONFIRMATION:
            return
        for parcel in shipment["parcels"]:
            parcel["tracking_number"] = self._tracking_number()
        shipment["tracking_number"] = shipment["parcels"][0]["tracking_number"]
        shipment["status"] = "confirmed"
        shipment["selected_offer"] = {"id": shipment["id"] * 10, "status": "bought"}
        shipment["updated_at"] = _shipx_time(self.clock)
        for parcel in shipment["parcels"]:
            self.tracking[parcel["tracking_number"]] = [{"status": "confirmed", "origin_status": "PPN",
                                                         "agency": None, "datetime": _shipx_time(self.clock)}]

    def _shipment_json(self, shipment: Mapping[str, Any]) -> dict[str, Any]:
        out = {k: v for k, v in shipment.items() if not k.startswith("_")}
        out["href"] = f"{BASE}/v1/shipments/{shipment['id']}"
        return json.loads(json.dumps(out))

    def _paged(self, found: list[dict[str, Any]], query: Mapping[str, str], path: str,
               render: Callable[[dict[str, Any]], dict[str, Any]]) -> tuple[int, Any, list[tuple[str, str]]]:
        try:
            page = max(1, int(query.get("page", "1")))
            per_page = min(100, max(1, int(query.get("per_page", "25"))))
        except ValueError:
            raise _Reply(400, "invalid_parameter", "page and per_page must be numbers") from None
        key = query.get("sort_by", "id")
        if key not in ("id", "created_at", "status"):
            raise _Reply(400, "invalid_parameter", f"Provided unsupported value ({key}) to parameter (sort_by)")
        found.sort(key=lambda s: (s["_created"], s["id"]) if key == "created_at" else (s[key], s["id"]),
                   reverse=query.get("sort_order", "asc") == "desc")
        chunk = found[(page - 1) * per_page: page * per_page]
        return 200, {"href": f"{BASE}{path}", "count": len(found), "page": page, "per_page": per_page,
                     "items": [render(s) for s in chunk]}, []

    def _created_between(self, item: Mapping[str, Any], query: Mapping[str, str]) -> bool:
        try:
            if "created_at_gteq" in query and item["_created"] < _parse_time(query["created_at_gteq"]):
                return False
            if "created_at_lteq" in query and item["_created"] > _parse_time(query["created_at_lteq"]):
                return False
        except ValueError:
            raise _Reply(400, "invalid_parameter", "created_at_gteq/lteq: not a time") from None
        return True

    def _list_shipments(self, query: Mapping[str, str]) -> tuple[int, Any, list[tuple[str, str]]]:
        found = [s for s in self.shipments.values() if self._created_between(s, query)]
        if "id" in query:
            ids = {int(i) for i in query["id"].split(",") if i.isdigit()}
            found = [s for s in found if s["id"] in ids]
        for name in ("status", "service"):
            if name in query:
                wanted = set(query[name].split(","))
                found = [s for s in found if s[name] in wanted]
        if "tracking_number" in query:
            found = [s for s in found if s["tracking_number"] == query["tracking_number"]]
        if "reference" in query and self.filters_by_reference:
            found = [s for s in found if s["reference"] == query["reference"]]
        return self._paged(found, query, f"/v1/organizations/{self.organization_id}/shipments",
                           self._shipment_json)

    def _cancel_shipment(self, shipment: dict[str, Any]) -> tuple[int, Any, list[tuple[str, str]]]:
        status = shipment["status"]
        if status not in CANCELLABLE:
            raise _Reply(400, "invalid_action",
                         f"Action (cancel) can not be taken on shipment with status ({status}). ",
                         {"action": "cancel", "shipment_status": status})
        shipment["status"] = "canceled"
        shipment["updated_at"] = _shipx_time(self.clock)
        return 204, None, []

    def _label(self, shipment: dict[str, Any], query: Mapping[str, str]) -> tuple[int, Any, list[tuple[str, str]]]:
        fmt = query.get("format", "pdf").lower()
        kind = query.get("type", "normal")
        if fmt not in ("pdf", "zpl", "epl"):
            raise _Reply(400, "invalid_parameter", f"Provided unsupported value ({fmt}) to parameter (format)")
        if kind not in ("normal", "A6", "dpi300") or (kind == "dpi300" and (
                fmt != "zpl" or shipment["service"] not in DPI300)):
            raise _Reply(400, "invalid_parameter", f"Provided unsupported value ({kind}) to parameter (type)")
        status = shipment["status"]
        if status in PRE_CONFIRMATION or status == "canceled":
            raise _Reply(400, "invalid_action", f"Action (label) can not be taken on shipment with status ({status}). ",
                         {"action": "label", "shipment_status": status})
        if self.label_failures > 0:
            self.label_failures -= 1
            raise _Reply(400, "label_generation_failed", "Label could not be generated, try again", None)
        if not shipment["service"].startswith("inpost_locker") and kind == "normal":
            kind = "A6"  # "courier services, as there is no type normal, A6 will be returned"
        numbers = [p["tracking_number"] for p in shipment["parcels"]]
        if fmt == "pdf":
            size = (298, 420) if kind == "A6" else (595, 842)
            pages = [[f"InPost {shipment['service']}", f"Tracking {n}", f"Reference {shipment['reference']}",
                      f"Label {kind}"] for n in numbers]
            return 200, _pdf(pages, size), [("Content-Type", "application/pdf")]
        if fmt == "zpl":
            dpi = "300" if kind == "dpi300" else "203"
            text = "".join(f"^XA^FX dpi {dpi} ^FS^FO40,40^A0N,40,40^FD{n}^FS^FO40,100^A0N,30,30^FD"
                           f"{shipment['reference']}^FS^XZ\n" for n in numbers)
            return 200, text.encode(), [("Content-Type", "text/plain")]
        text = "".join(f'N\nA40,40,0,4,1,1,N,"{n}"\nP1\n' for n in numbers)
        return 200, text.encode(), [("Content-Type", "text/plain")]

    # --- dispatch orders ---------------------------------------------------------------------------------

    def _create_dispatch_order(self, body: Any) -> tuple[int, Any, list[tuple[str, str]]]:
        if not isinstance(body, Mapping):
            raise _invalid({"dispatch_order": ["invalid"]})
        errors: dict[str, Any] = {}
        ids = body.get("shipments")
        if not isinstance(ids, list) or not ids or not all(isinstance(i, int) for i in ids):
            errors["shipments"] = ["required"]
        else:
            unusable = (*CANCELLABLE, "canceled")
            wrong = [f"{i}: not_found" if i not in self.shipments else f"{i}: invalid_status"
                     for i in ids if i not in self.shipments or self.shipments[i]["status"] in unusable]
            if wrong:
                errors["shipments"] = wrong
        address = body.get("address")
        if not isinstance(address, Mapping):
            errors["address"] = ["required"]
        else:
            missing = {k: ["required"] for k in ("street", "building_number", "city", "post_code", "country_code")
                       if not address.get(k)}
            if missing:
                errors["address"] = missing
        for key in ("name", "phone"):
            if not body.get(key):
                errors[key] = ["required"]
        if errors:
            raise _invalid(errors)
        self._next_order += 1
        now = _shipx_time(self.clock)
        comments = []
        if body.get("comment"):
            comments.append({"id": self._next_order * 10, "comment": body["comment"], "created_at": now})
        order = {
            "id": self._next_order, "status": "new", "address": {"id": str(self._next_order + 3000), **address},
            "shipments": [{"href": f"{BASE}/v1/shipments/{i}", "id": i,
                           "tracking_number": self.shipments[i]["tracking_number"]} for i in ids],
            "name": body.get("name"), "phone": body.get("phone"), "email": body.get("email"),
            "comments": comments, "created_at": now, "updated_at": now, "_created": self.clock,
        }
        self.dispatch_orders[order["id"]] = order
        return 201, self._dispatch_json(order), []

    def _dispatch_json(self, order: Mapping[str, Any]) -> dict[str, Any]:
        out = {k: v for k, v in order.items() if not k.startswith("_")}
        out["href"] = f"{BASE}/v1/dispatch_orders/{order['id']}"
        return json.loads(json.dumps(out))

    def _list_dispatch_orders(self, query: Mapping[str, str]) -> tuple[int, Any, list[tuple[str, str]]]:
        found = [o for o in self.dispatch_orders.values() if self._created_between(o, query)]
        if "status" in query:
            wanted = set(query["status"].split(","))
            found = [o for o in found if o["status"] in wanted]
        if "shipment_id" in query and self.filters_by_shipment:
            sid = int(query["shipment_id"]) if query["shipment_id"].isdigit() else -1
            found = [o for o in found if any(s["id"] == sid for s in o["shipments"])]
        return self._paged(found, query, f"/v1/organizations/{self.organization_id}/dispatch_orders",
                           self._dispatch_json)

    def _cancel_dispatch_order(self, order: dict[str, Any]) -> tuple[int, Any, list[tuple[str, str]]]:
        if order["status"] != "new":
            raise _Reply(400, "invalid_action",
                         f"Action (cancel) can not be taken on dispatch order with status ({order['status']}). ",
                         {"action": "cancel", "dispatch_order_status": order["status"]})
        order["status"] = "canceled"
        order["updated_at"] = _shipx_time(self.clock)
        return 204, None, []

    # --- tracking and the status dictionary --------------------------------------------------------------

    def _track(self, number: str) -> tuple[int, Any, list[tuple[str, str]]]:
        details = self.tracking.get(number)
        if details is None:
            raise _Reply(404, "resource_not_found", f"Tracking ({number}) not found")
        shipment = next((s for s in self.shipments.values()
                         if any(p["tracking_number"] == number for p in s["parcels"])), None)
        return 200, {
            "tracking_number": number, "type": shipment["service"] if shipment else None,
            "service": shipment["service"] if shipment else None,
            "custom_attributes": dict(shipment["custom_attributes"]) if shipment else {},
            "status": details[0]["status"], "created_at": shipment["created_at"] if shipment else None,
            "updated_at": details[0]["datetime"], "tracking_details": [dict(d) for d in details],
            "expected_flow": [],
        }, []

    def _statuses(self, query: Mapping[str, str]) -> tuple[int, Any, list[tuple[str, str]]]:
        lang = query.get("lang", "pl_PL")
        if lang not in ("en_GB", "pl_PL"):
            raise _Reply(400, "invalid_parameter", f"Provided unsupported value ({lang}) to parameter (lang)",
                         key="description")
        items = [{"name": n, "title": f"[{lang}] {n.replace('_', ' ').capitalize()}", "description": ""}
                 for n in STATUS_NAMES]
        return 200, {"href": f"{BASE}/v1/statuses", "items": items}, []


class _SimTransport(httpx.BaseTransport):
    """httpx → the WSGI app, with the transport-level faults: a timeout before the request reaches ShipX, and a
    response lost after ShipX applied it (httpx.ReadTimeout after forwarding)."""

    def __init__(self, sim: ShipXSimulator):
        self._sim = sim
        self._inner = httpx.WSGITransport(app=sim)

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        method, path = request.method, request.url.path
        fault = self._sim._transport_fault(method, path)
        if fault == "timeout":
            self._sim.log.append(Exchange(method, path, dict(request.url.params), None, fault="timeout"))
            raise httpx.ConnectTimeout("simulated: ShipX did not answer", request=request)
        response = self._inner.handle_request(request)
        if fault == "lost":
            response.read()
            if self._sim.log:
                self._sim.log[-1].fault = "lost"
            raise httpx.ReadTimeout("simulated: the answer was lost after ShipX applied the request", request=request)
        return response


__all__ = ["Exchange", "Faults", "ShipXSimulator"]
