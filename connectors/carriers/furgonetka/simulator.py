"""An in-memory Furgonetka REST API (the subset the connector uses), with faults on demand.

A WSGI app: in-process through ``sim.transport()`` (httpx.WSGITransport plus the transport-level faults)
or served on a loopback port with ``serve()`` / ``stop()``. Furgonetka's own reference
(https://furgonetka.pl/api/rest) was not available; each behaviour names what it is built from:

- [plugin] Furgonetka's own WordPress plugin "furgonetka" 1.9.7, admin/class-furgonetka-admin.php:
  hosts api.furgonetka.pl / api.sandbox.furgonetka.pl, ``POST /oauth/token`` with the OAuth application
  as HTTP Basic and a form body, answering access_token, refresh_token, expires_in (a refresh_token grant
  rotates the pair), errors with a ``message``; ``Accept: application/vnd.furgonetka.v1+json``.
- [notes] /work/shared/notes/carriers.md "Brokers (REST)": the password grant with scope ``api``, the
  routes, client-generated command UUIDs polled with GET.
- [kwarcek] (u) Kwarcek/furgonetka-rest-api-php (API v1.0.23): package fields (pickup, sender, receiver,
  service_id, parcels{width, depth, height, weight, value, description}, type, user_reference_number,
  additional_services.cod{amount, express, iban, name}), GET /packages (list_type, limit, last_package_id),
  the order command's label {page_format a4/a6, file_format pdf/zpl/epl}, command reports {status,
  datetime_change, errors, uuid}.
- [commerce-link] (u) commerce-link/shipping-furgonetka (its tests quote sandbox answers of 2026-09):
  command statuses waiting/queueing/running/successful/partial_success/error; ``successfully_ordered_
  packages``; an unknown command UUID answered 400 naming ``commandNotExists``; pickup-date proposals
  {packages[{package_id, proposals[{date, min_time, max_time, available, hash}]}]} asked with ready_date and
  days_ahead, booked with the hash, reported as pickup_details[{pickup_id, package_ids}];
  cancel_command_details[{package_id, cancel_success, success_message_type, scheduled_cancel_date}]; the
  cancel of a package still in the basket refused with "Przesyłka znajduje się w koszyku."; tracking
  [{state, status, datetime}] with an offset; a label answered 204 without a body while not ready; a PDF
  label as application/pdf, ZPL as text/plain; package ids as JSON numbers, parcels[].package_no.
- [sim] the simulator's own choices where no material says (marked): the exact HTTP codes of validation
  errors (400 with errors[{path, message}]), the proposals it offers (weekdays, 09:00-12:00 and
  12:00-16:00), the wording of refusals it makes up, tracking numbers, one pickup per carrier.

Faults (``faults`` drawn from a seeded generator, or scripted per request with ``script``): 5xx before or
after the request was applied; timeouts before the request arrives; the answer lost after the vendor
applied the request; slow answers (served mode); malformed answers (an HTML page, an empty object); slow
asynchronous confirmation (a command answers ``running`` for ``confirm_polls`` GETs); a label not ready
(``label_pending_polls`` GETs answered 204); a carrier refusing an order (``refuse_order``).
"""

from __future__ import annotations

import base64
import binascii
import copy
import hashlib
import json
import random
import re
import threading
import time
import zlib
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import parse_qs
from zoneinfo import ZoneInfo

import httpx

from connectors.simserver import LoopbackServer

WARSAW = ZoneInfo("Europe/Warsaw")
MEDIA_TYPE = "application/vnd.furgonetka.v1+json"
TOKEN_LIFETIME = 2_592_000  # 30 days, as a sandbox answer of expires_in shows (u)
SERVICES = ("inpost", "dpd", "poczta", "dhl", "ups", "gls", "fedex", "orlen")
PACKAGE_TYPES = ("package", "dox", "pallet")  # [kwarcek] PackageRequest::PACKAGE_TYPE_*
LABEL_PAGES = ("a4", "a6")  # [kwarcek] Entity/Label.php
LABEL_FILES = ("pdf", "zpl", "epl")
COMMAND_KINDS = ("order-commands", "pickup-commands", "cancel-command")
WINDOWS = (("09:00", "12:00"), ("12:00", "16:00"))  # [sim]
PAGE_SIZES = {"a4": (595, 842), "a6": (298, 420)}  # PDF points
_POSTCODE = re.compile(r"^\d{2}-\d{3}$")
_IBAN_PL = re.compile(r"^(PL)?\d{26}$")
_UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
_REASONS = {200: "OK", 204: "No Content", 400: "Bad Request", 401: "Unauthorized", 404: "Not Found",
            406: "Not Acceptable", 500: "Internal Server Error", 502: "Bad Gateway", 503: "Service Unavailable"}
TRANSPORT_FAULTS = ("timeout", "lost")
FAULT_HEADER = "X-Simulated-Fault"
APP_FAULTS = ("503", "502-after-apply", "slow", "html", "empty")

StartResponse = Callable[[str, list[tuple[str, str]]], Any]


@dataclass(frozen=True)
class Faults:
    """What goes wrong, drawn per request from the seeded generator (scripted faults come first)."""

    error_rate: float = 0.0  # share of requests answered 5xx
    error_after_apply: float = 0.5  # of those, the share answered 502 after the request was applied
    timeout_rate: float = 0.0  # transport: the request never arrives
    lost_response_rate: float = 0.0  # transport: applied, then the answer is lost (httpx.ReadTimeout)
    delay_rate: float = 0.0  # applied, then answered ``delay_seconds`` late (a client timeout loses it)
    delay_seconds: float = 0.0
    confirm_polls: int = 1  # GETs of a new command answered "running" before it ends
    label_pending_polls: int = 0  # label GETs answered 204 after the order, before the label exists


@dataclass
class Exchange:
    """One request as the simulator saw it (status 0: it never arrived)."""

    method: str
    path: str
    query: dict[str, str]
    body: Any
    status: int = 0
    response: Any = None
    fault: str | None = None


class _Reply(Exception):
    def __init__(self, status: int, message: str, path: str | None = None, code: str | None = None):
        super().__init__(message)
        self.status, self.message, self.path, self.code = status, message, path, code

    def body(self) -> dict[str, Any]:
        error: dict[str, Any] = {"message": self.message}
        if self.path:
            error["path"] = self.path
        if self.code:
            error["code"] = self.code
        return {"errors": [error]}


@dataclass
class _Command:
    kind: str
    uuid: str
    body: dict[str, Any]
    polls_left: int
    status: str = "waiting"
    errors: list[dict[str, Any]] = field(default_factory=list)
    result: dict[str, Any] = field(default_factory=dict)
    changed: str | None = None


class FurgonetkaSimulator:
    """One Furgonetka account behind one OAuth application."""

    def __init__(self, client_id: str = "app-test", client_secret: str = "app-secret",
                 username: str = "sklep@example.pl", password: str = "haslo-123", *, seed: int = 0,
                 clock: Callable[[], float] = time.time, token_lifetime: int = TOKEN_LIFETIME,
                 services: Iterable[str] = SERVICES):
        self.client_id, self.client_secret = client_id, client_secret
        self.username, self.password = username, password
        self.clock = clock
        self.token_lifetime = token_lifetime
        self.services = [{"id": 11906590 + n, "service": s, "name": f"{s.upper()} (umowa Furgonetki)"}
                         for n, s in enumerate(services)]
        self.packages: dict[int, dict[str, Any]] = {}
        self.tracking: dict[int, list[dict[str, Any]]] = {}
        self.commands: dict[tuple[str, str], _Command] = {}
        self.access_tokens: dict[str, float] = {}  # token -> expiry on clock
        self.refresh_tokens: set[str] = set()
        self.grants: list[str] = []  # grant types issued, in order
        self.log: list[Exchange] = []
        self.faults = Faults()
        self.refused_orders: dict[str, str] = {}  # user_reference_number -> why the carrier refuses it
        self.unavailable_days: set[date] = set()
        # the pickup windows it proposes (HH:MM pairs) and whether on Saturdays and Sundays too [sim]
        self.pickup_hours: tuple[tuple[str, str], ...] = WINDOWS
        self.weekend_pickups = False
        self._label_pending: dict[int, int] = {}
        self._script: list[tuple[str, re.Pattern[str], str]] = []
        self._rng = random.Random(seed)
        self._next_package = 21480000
        self._next_token = 0
        self._next_pickup = 5000
        self._lock = threading.RLock()
        self._loopback = LoopbackServer(self, "furgonetka-simulator")

    # --- test controls ---------------------------------------------------------------------

    def script(self, method: str, path: str, *faults: str) -> None:
        """The next requests matching ``method`` and the regular expression ``path`` meet these faults, one
        each, in order: "503", "502-after-apply", "slow", "timeout", "lost", "html" (a 200 with an HTML page),
        "empty" (a 200 with ``{}``); "html" and "empty" apply nothing."""
        for fault in faults:
            if fault not in APP_FAULTS + TRANSPORT_FAULTS:
                raise ValueError(f"unknown fault {fault!r}")
        with self._lock:
            self._script += [(method.upper(), re.compile(path), fault) for fault in faults]

    def clear_faults(self) -> None:
        with self._lock:
            self.faults = Faults()
            self._script.clear()

    def refuse_order(self, reference: str, message: str) -> None:
        """The carrier refuses to order the package holding this reference [sim]."""
        with self._lock:
            self.refused_orders[reference] = message

    def advance_package(self, package_id: int, state: str, status: str | None = None) -> None:
        """The carrier moves the package on (collected, delivered, collect-problem, ...)."""
        with self._lock:
            self.packages[package_id]["state"] = state
            self._event(package_id, state, status or state)

    def expire_tokens(self) -> None:
        """Every access token stops working (revoked early); refresh tokens stay valid."""
        with self._lock:
            self.access_tokens.clear()

    def package(self, package_id: int) -> dict[str, Any]:
        with self._lock:
            return copy.deepcopy(self.packages[package_id])

    def with_reference(self, reference: str) -> list[dict[str, Any]]:
        with self._lock:
            return [copy.deepcopy(p) for p in self.packages.values() if p["user_reference_number"] == reference]

    def command(self, kind: str, command: str) -> _Command | None:
        with self._lock:
            return self.commands.get((kind, command))

    def requests(self, method: str | None = None, path: str | None = None) -> list[Exchange]:
        """Logged exchanges, filtered by method and a regular expression on the path."""
        with self._lock:
            return [e for e in self.log if (method is None or e.method == method)
                    and (path is None or re.search(path, e.path))]

    def transport(self) -> LossyTransport:
        return LossyTransport(httpx.WSGITransport(app=self), self)

    def serve(self, host: str = "127.0.0.1", *, latency: float = 0.0) -> str:
        return self._loopback.start(host, latency=latency)

    def stop(self) -> None:
        self._loopback.stop()

    # --- faults -----------------------------------------------------------------------------

    def _draw(self, rate: float) -> bool:
        with self._lock:
            return rate > 0 and self._rng.random() < rate

    def _scripted(self, method: str, path: str, kinds: tuple[str, ...]) -> str | None:
        """Take the next scripted fault for this request, if it is one of ``kinds``."""
        with self._lock:
            for n, (m, pattern, fault) in enumerate(self._script):
                if m == method and pattern.search(path):
                    if fault not in kinds:
                        return None
                    del self._script[n]
                    return fault
        return None

    def _record_timeout(self, request: httpx.Request) -> None:
        with self._lock:
            self.log.append(Exchange(request.method, request.url.path, dict(request.url.params), None,
                                     fault="timeout"))

    def _record_lost(self) -> None:
        with self._lock:
            if self.log:
                self.log[-1].fault = "lost"

    # --- WSGI -------------------------------------------------------------------------------

    def __call__(self, environ: Mapping[str, Any], start_response: StartResponse) -> Iterator[bytes]:
        method = environ["REQUEST_METHOD"].upper()
        path = environ.get("PATH_INFO", "") or "/"
        query = {k: v[-1] for k, v in parse_qs(environ.get("QUERY_STRING", ""), keep_blank_values=True).items()}
        raw = _read_body(environ)
        exchange = Exchange(method, path, query, raw.decode("utf-8", "replace") if raw else None)
        with self._lock:
            self.log.append(exchange)
        status, payload, headers = self._handle(exchange, environ, raw)
        exchange.status, exchange.response = status, payload
        if isinstance(payload, bytes):
            data = payload
        else:
            data = b"" if payload is None else json.dumps(payload, ensure_ascii=False).encode()
            headers = [("Content-Type", "application/json; charset=utf-8"), *headers]
        start_response(f"{status} {_REASONS.get(status, 'Status')}", [("Content-Length", str(len(data))), *headers])
        return iter([data])

    def _handle(self, exchange: Exchange, environ: Mapping[str, Any],
                raw: bytes) -> tuple[int, Any, list[tuple[str, str]]]:
        header = environ.get("HTTP_" + FAULT_HEADER.upper().replace("-", "_"))
        if header is not None:  # in-process: the transport took the request's scripted fault
            scripted = None if header == "none" else header
        else:  # served: only the app's faults can be scripted
            scripted = self._scripted(exchange.method, exchange.path, APP_FAULTS)
        failing = scripted in ("503", "502-after-apply") or self._draw(self.faults.error_rate)
        after = scripted == "502-after-apply" or (
            failing and scripted is None and self._draw(self.faults.error_after_apply))
        if scripted in ("html", "empty"):  # a proxy's page, or an answer missing its fields; nothing applied
            exchange.fault = scripted
            if scripted == "html":
                return 200, b"<html><body>Przerwa techniczna</body></html>", [("Content-Type", "text/html")]
            return 200, {}, []
        if failing and not after:
            exchange.fault = "503"
            return 503, {"errors": [{"message": "Service temporarily unavailable."}]}, []
        try:
            if exchange.path == "/oauth/token":
                result = self._token(environ, raw)
            else:
                self._authorize(environ)
                result = self._route(exchange, raw)
        except _Reply as reply:
            result = reply.status, reply.body(), []
        if after:
            exchange.fault = "502-after-apply"
            return 502, {"errors": [{"message": "Bad gateway."}]}, []
        if scripted == "slow" or self._draw(self.faults.delay_rate):
            exchange.fault = "slow"
            time.sleep(self.faults.delay_seconds)
        return result

    # --- auth [plugin] [notes] --------------------------------------------------------------

    def _token(self, environ: Mapping[str, Any], raw: bytes) -> tuple[int, Any, list[tuple[str, str]]]:
        header = environ.get("HTTP_AUTHORIZATION", "")
        client = secret = None
        if header.lower().startswith("basic "):
            try:
                client, _, secret = base64.b64decode(header[6:].strip()).decode().partition(":")
            except (binascii.Error, UnicodeDecodeError):
                client = None
        if (client, secret) != (self.client_id, self.client_secret):
            return 401, {"error": "invalid_client", "message": "Client authentication failed."}, []
        form = {k: v[-1] for k, v in parse_qs(raw.decode("utf-8", "replace")).items()}
        grant = form.get("grant_type")
        with self._lock:
            if grant == "password":
                if form.get("scope") != "api":
                    return 400, {"error": "invalid_scope", "message": "The requested scope is invalid."}, []
                if (form.get("username"), form.get("password")) != (self.username, self.password):
                    return 400, {"error": "invalid_grant", "message": "Invalid username and password combination."}, []
            elif grant == "refresh_token":
                if form.get("refresh_token") not in self.refresh_tokens:
                    return 400, {"error": "invalid_grant", "message": "Invalid refresh token."}, []
                self.refresh_tokens.discard(form["refresh_token"])  # rotated [plugin: refresh_token() saves the new]
            else:
                return 400, {"error": "unsupported_grant_type", "message": "The grant type is not supported."}, []
            self._next_token += 1
            access, refresh = f"at-{self._next_token:06d}", f"rt-{self._next_token:06d}"
            self.access_tokens[access] = self.clock() + self.token_lifetime
            self.refresh_tokens.add(refresh)
            self.grants.append(grant)
        return 200, {"token_type": "bearer", "expires_in": self.token_lifetime, "access_token": access,
                     "refresh_token": refresh, "scope": "api"}, []

    def _authorize(self, environ: Mapping[str, Any]) -> None:
        if MEDIA_TYPE not in environ.get("HTTP_ACCEPT", ""):
            raise _Reply(406, f"Use Accept: {MEDIA_TYPE}.")  # [sim] the code; the header is [plugin]
        header = environ.get("HTTP_AUTHORIZATION", "")
        token = header[7:].strip() if header.lower().startswith("bearer ") else ""
        with self._lock:
            expiry = self.access_tokens.get(token)
            if expiry is None or expiry <= self.clock():
                raise _Reply(401, "Access token is invalid or expired.", code="unauthorized")

    # --- routes -----------------------------------------------------------------------------

    def _route(self, exchange: Exchange, raw: bytes) -> tuple[int, Any, list[tuple[str, str]]]:
        method, path = exchange.method, exchange.path
        body: Any = None
        if raw:
            try:
                body = json.loads(raw, parse_float=Decimal)
            except ValueError:
                raise _Reply(400, "Invalid JSON body.") from None
        if method == "GET" and path == "/account/services":
            return 200, {"services": copy.deepcopy(self.services)}, []
        if path == "/packages":
            if method == "POST":
                return 200, self._create_package(body), []
            if method == "GET":
                return 200, self._list_packages(exchange.query), []
        if method == "POST" and path == "/packages/pickup-date-proposals":
            return 200, self._proposals(body), []
        if m := re.fullmatch(r"/packages/(\d+)(/label|/tracking)?", path):
            pid = int(m.group(1))
            with self._lock:
                if pid not in self.packages:
                    raise _Reply(404, "Package not found.", path=f"/packages/id/{pid}")
            if method == "GET" and m.group(2) is None:
                return 200, self.package(pid), []
            if method == "GET" and m.group(2) == "/tracking":
                with self._lock:  # newest first [sim]: the connector sorts
                    return 200, {"tracking": copy.deepcopy(self.tracking.get(pid, []))[::-1]}, []
            if method == "GET" and m.group(2) == "/label":
                return self._label(pid, exchange.query)
        if m := re.fullmatch(r"/(order-commands|pickup-commands|cancel-command)/([^/]+)", path):
            kind, command = m.group(1), m.group(2)
            if method == "PUT":
                return 200, self._put_command(kind, command, body), []
            if method == "GET":
                return 200, self._report(kind, command), []
        raise _Reply(404, "No route found.")

    # --- packages [kwarcek] ---------------------------------------------------------------------

    def _create_package(self, body: Any) -> dict[str, Any]:
        if not isinstance(body, Mapping):
            raise _Reply(400, "The package must be a JSON object.")
        pickup = _address(body.get("pickup"), "pickup")
        receiver = _address(body.get("receiver"), "receiver")
        sender = _address(body["sender"], "sender") if body.get("sender") else pickup
        service = next((s for s in self.services if s["id"] == body.get("service_id")), None)
        if service is None:
            raise _Reply(400, "Unknown service_id for this account.", path="service_id")
        kind = body.get("type", "package")
        if kind not in PACKAGE_TYPES:
            raise _Reply(400, f"type must be one of {', '.join(PACKAGE_TYPES)}.", path="type")
        reference = body.get("user_reference_number")
        if reference is not None and (not isinstance(reference, str) or len(reference) > 100):  # [sim] the limit
            raise _Reply(400, "user_reference_number must be a text of at most 100 characters.",
                         path="user_reference_number")
        parcels = body.get("parcels")
        if not isinstance(parcels, list) or not parcels:
            raise _Reply(400, "At least one parcel is required.", path="parcels")
        checked = [_parcel(p, f"parcels[{i}]") for i, p in enumerate(parcels)]
        services = body.get("additional_services") or {}
        if not isinstance(services, Mapping):
            raise _Reply(400, "additional_services must be an object.", path="additional_services")
        if services.get("cod") is not None:
            _cod(services["cod"])
        with self._lock:
            self._next_package += 1
            pid = self._next_package
            package = {
                "package_id": pid, "pickup": pickup, "sender": sender, "receiver": receiver,
                "user_reference_number": reference, "service": service["service"], "service_id": service["id"],
                "type": kind, "state": "waiting", "parcels": checked,
                "additional_services": _plain(services), "pickup_number": None,
                "pickup_available": False, "cancel_available": False, "datetime_add": self._local_now(),
                "datetime_order": None,
            }
            self.packages[pid] = package
            return copy.deepcopy(package)

    def _list_packages(self, query: Mapping[str, str]) -> dict[str, Any]:
        list_type = query.get("list_type", "all")
        if list_type not in ("all", "sent", "waiting"):
            raise _Reply(400, "list_type must be all, sent or waiting.", path="list_type")
        try:
            limit = int(query.get("limit", "100"))
            last = int(query["last_package_id"]) if query.get("last_package_id") else None
        except ValueError:
            raise _Reply(400, "limit and last_package_id must be numbers.") from None
        if not 1 <= limit <= 100:  # [sim] the maximum
            raise _Reply(400, "limit must be between 1 and 100.", path="limit")
        with self._lock:
            chosen = [p for pid, p in sorted(self.packages.items(), reverse=True)
                      if (last is None or pid < last)
                      and (list_type == "all" or (p["state"] == "waiting") == (list_type == "waiting"))]
            return {"packages": copy.deepcopy(chosen[:limit])}

    # --- commands [notes] [commerce-link] -------------------------------------------------------

    def _put_command(self, kind: str, command: str, body: Any) -> dict[str, Any]:
        if not _UUID.match(command):
            raise _Reply(400, "The command id must be a UUID.", path="uuid")
        if not isinstance(body, Mapping) or not isinstance(body.get("packages"), list) or not body["packages"]:
            raise _Reply(400, "packages is required.", path="packages")
        ids = [p.get("id") if isinstance(p, Mapping) else None for p in body["packages"]]
        if any(not isinstance(i, int) for i in ids):
            raise _Reply(400, "packages[].id must be a package id.", path="packages")
        if kind == "order-commands" and body.get("label") is not None:
            label = body["label"]
            if not isinstance(label, Mapping) or label.get("page_format") not in LABEL_PAGES \
                    or label.get("file_format") not in LABEL_FILES:
                raise _Reply(400, "label needs page_format a4|a6 and file_format pdf|zpl|epl.", path="label")
        if kind == "pickup-commands":
            date_ = body.get("pickup_date")
            if not isinstance(date_, Mapping) or not all(date_.get(k) for k in ("date", "min_time", "max_time")):
                raise _Reply(400, "pickup_date needs date, min_time and max_time.", path="pickup_date")
        with self._lock:
            if (kind, command) not in self.commands:  # the same UUID again changes nothing
                self.commands[(kind, command)] = _Command(kind, command, copy.deepcopy(dict(body)),
                                                          polls_left=self.faults.confirm_polls)
            return {"uuid": command}

    def _report(self, kind: str, command: str) -> dict[str, Any]:
        with self._lock:
            found = self.commands.get((kind, command))
            if found is None:
                raise _Reply(400, "Command does not exist.", code="commandNotExists")
            if found.status not in ("successful", "partial_success", "error"):
                if found.polls_left > 0:
                    found.polls_left -= 1
                    found.status = "running"
                else:
                    getattr(self, "_run_" + kind.replace("-", "_"))(found)
                found.changed = self._local_now()
            report = {"status": found.status, "datetime_change": found.changed,
                      "errors": copy.deepcopy(found.errors), "uuid": found.uuid}
            report.update(copy.deepcopy(found.result))
            return report

    def _finish(self, command: _Command, done: int, total: int) -> None:
        command.status = "successful" if done == total else "partial_success" if done else "error"

    def _run_order_commands(self, command: _Command) -> None:
        label = command.body.get("label") or {"page_format": "a4", "file_format": "pdf"}
        ordered = []
        for pid in (p["id"] for p in command.body["packages"]):
            package = self.packages.get(pid)
            if package is None:
                command.errors.append({"path": f"/packages/id/{pid}", "message": "Package not found."})
                continue
            if package["state"] != "waiting":  # [sim] wording
                command.errors.append({"path": f"/packages/id/{pid}", "message": "Przesyłka została już zamówiona."})
                continue
            refusal = self.refused_orders.get(package["user_reference_number"] or "")
            if refusal:
                command.errors.append({"path": f"/packages/id/{pid}", "message": refusal})
                continue
            package["state"] = "ordered"
            package["datetime_order"] = self._local_now()
            package["pickup_available"] = package["cancel_available"] = True
            package["label"] = dict(label)
            for n, parcel in enumerate(package["parcels"], start=1):
                parcel["package_no"] = _tracking_number(package["service"], pid, n)
            self._label_pending[pid] = self.faults.label_pending_polls
            self._event(pid, "ordered", "Przesyłka zamówiona")
            ordered.append(pid)
        command.result = {"successfully_ordered_packages": ordered}
        self._finish(command, len(ordered), len(command.body["packages"]))

    def _run_pickup_commands(self, command: _Command) -> None:
        wanted = command.body["pickup_date"]
        by_service: dict[str, list[int]] = {}
        for pid in (p["id"] for p in command.body["packages"]):
            package = self.packages.get(pid)
            if package is None or package["state"] != "ordered" or package["pickup_number"]:
                command.errors.append({"path": f"/packages/id/{pid}",
                                       "message": "Nie można zamówić podjazdu kuriera dla tej przesyłki."})  # [sim]
                continue
            offered = {p["hash"] for p in self._offer(package, date.fromisoformat(wanted["date"]), 0)
                       if p["available"]}
            if wanted.get("hash") not in offered:
                command.errors.append({"path": "pickup_date", "message": "Wybrany termin odbioru jest niedostępny."})
                continue
            by_service.setdefault(package["service"], []).append(pid)
        details = []
        for ids in by_service.values():  # one pickup per carrier [sim]
            self._next_pickup += 1
            pickup_id = f"PU{self._next_pickup}"
            for pid in ids:
                self.packages[pid]["pickup_number"] = pickup_id
                self.packages[pid]["pickup_available"] = False
            details.append({"pickup_id": pickup_id, "package_ids": ids})
        command.result = {"pickup_details": details}
        self._finish(command, sum(len(d["package_ids"]) for d in details), len(command.body["packages"]))

    def _run_cancel_command(self, command: _Command) -> None:
        details = []
        for pid in (p["id"] for p in command.body["packages"]):
            package = self.packages.get(pid)
            state = package["state"] if package else None
            ok = state in ("ordered", "collect-problem")  # [commerce-link] the cancelable states
            if ok:
                package["state"] = "canceled"
                package["cancel_available"] = package["pickup_available"] = False
                self._event(pid, "canceled", "Przesyłka anulowana")
            elif state == "waiting":
                command.errors.append({"path": f"/packages/id/{pid}", "message": "Przesyłka znajduje się w koszyku."})
            elif state == "canceled":
                command.errors.append({"path": f"/packages/id/{pid}", "message": "Przesyłka jest już anulowana."})
            else:  # [sim] wording
                command.errors.append({"path": f"/packages/id/{pid}",
                                       "message": "Przesyłka została już nadana i nie może zostać anulowana."})
            details.append({"package_id": pid, "cancel_success": ok, "success_message_type": "success" if ok else None,
                            "scheduled_cancel_date": ""})
        command.result = {"cancel_command_details": details}
        self._finish(command, sum(d["cancel_success"] for d in details), len(details))

    # --- labels, pickups, tracking --------------------------------------------------------

    def _label(self, pid: int, query: Mapping[str, str]) -> tuple[int, Any, list[tuple[str, str]]]:
        with self._lock:
            package = self.packages[pid]
            if package["state"] == "waiting" or self._label_pending.get(pid, 0) > 0:
                if package["state"] != "waiting":
                    self._label_pending[pid] -= 1
                return 204, None, []
            settings = package.get("label") or {"page_format": "a4", "file_format": "pdf"}
            file_format = query.get("file_format", settings["file_format"])
            page_format = query.get("page_format", settings["page_format"])
            numbers = [p["package_no"] for p in package["parcels"]]
            service, receiver = package["service"], package["receiver"]
        if file_format not in LABEL_FILES or page_format not in LABEL_PAGES:
            raise _Reply(400, "file_format must be pdf|zpl|epl and page_format a4|a6.")
        if file_format == "pdf":
            pages = [[f"furgonetka simulator label {pid} {page_format} {n}", f"{service.upper()} {n}",
                      f"{receiver['name']}", f"{receiver['postcode']} {receiver['city']}"] for n in numbers]
            return 200, label_pdf(pages, PAGE_SIZES[page_format]), [("Content-Type", "application/pdf")]
        zpl = "".join(f"^XA^FO40,40^A0N,40,40^FD{n}^FS^FO40,100^BCN,120^FD{n}^FS^XZ\n" for n in numbers)
        if file_format == "epl":
            zpl = "".join(f'N\nB40,40,0,1,2,6,120,B,"{n}"\nP1\n' for n in numbers)
        return 200, zpl.encode(), [("Content-Type", "text/plain; charset=utf-8")]

    def _offer(self, package: Mapping[str, Any], ready: date, days_ahead: int) -> list[dict[str, Any]]:
        out = []
        for offset in range(days_ahead + 1):
            day = ready + timedelta(days=offset)
            if day.weekday() >= 5 and not self.weekend_pickups:
                continue
            for start, end in self.pickup_hours:
                digest = hashlib.sha1(f"{package['service']}|{day}|{start}|{end}".encode()).hexdigest()[:16]
                out.append({"date": day.isoformat(), "min_time": start, "max_time": end,
                            "available": day not in self.unavailable_days, "hash": digest})
        return out

    def _proposals(self, body: Any) -> dict[str, Any]:
        if not isinstance(body, Mapping) or not isinstance(body.get("packages"), list) or not body["packages"]:
            raise _Reply(400, "packages is required.", path="packages")
        try:
            ready = date.fromisoformat(str(body.get("ready_date")))
            days_ahead = int(body.get("days_ahead", 0))
        except (TypeError, ValueError):
            raise _Reply(400, "ready_date must be YYYY-MM-DD and days_ahead a number.", path="ready_date") from None
        out = []
        with self._lock:
            for entry in body["packages"]:
                pid = entry.get("id") if isinstance(entry, Mapping) else None
                package = self.packages.get(pid) if isinstance(pid, int) else None
                if package is None:
                    raise _Reply(400, "Package not found.", path=f"/packages/id/{pid}")
                if package["state"] == "waiting":
                    raise _Reply(400, "Przesyłka znajduje się w koszyku.", path=f"/packages/id/{pid}")
                out.append({"package_id": pid, "proposals": self._offer(package, ready, max(0, days_ahead))})
        return {"packages": out}

    def _event(self, pid: int, state: str, status: str) -> None:
        self.tracking.setdefault(pid, []).append({"state": state, "status": status, "datetime": self._local_now()})

    def _local_now(self) -> str:
        """Warsaw local time with its offset, to the second [commerce-link: yyyy-MM-dd'T'HH:mm:ssXXX]."""
        return datetime.fromtimestamp(self.clock(), UTC).astimezone(WARSAW).replace(microsecond=0).isoformat()


class LossyTransport(httpx.BaseTransport):
    """Wraps the app's transport: a request may time out before it arrives, or arrive, be applied, and have
    its answer lost (httpx.ReadTimeout after forwarding)."""

    def __init__(self, inner: httpx.BaseTransport, sim: FurgonetkaSimulator):
        self.inner = inner
        self.sim = sim

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        sim = self.sim
        # one scripted fault per request, whichever layer it belongs to; the app's travels in a header
        fault = sim._scripted(request.method, request.url.path, APP_FAULTS + TRANSPORT_FAULTS)
        if fault == "timeout" or (fault is None and sim._draw(sim.faults.timeout_rate)):
            sim._record_timeout(request)
            raise httpx.ConnectTimeout("simulated: Furgonetka did not accept the connection in time", request=request)
        request.headers[FAULT_HEADER] = fault if fault in APP_FAULTS else "none"
        response = self.inner.handle_request(request)
        if fault == "lost" or (fault is None and sim._draw(sim.faults.lost_response_rate)):
            response.read()
            response.close()
            sim._record_lost()
            raise httpx.ReadTimeout("simulated: Furgonetka applied the request but the answer was lost",
                                    request=request)
        return response

    def close(self) -> None:
        self.inner.close()


# --- validation helpers [kwarcek] field names; the rules are [sim] -------------------------------


def _address(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, Mapping):
        raise _Reply(400, f"{where} is required.", path=where)
    for key in ("name", "street", "postcode", "city", "country_code"):
        if not isinstance(value.get(key), str) or not value[key].strip():
            raise _Reply(400, f"{where}.{key} is required.", path=f"{where}.{key}")
    if value["country_code"] == "PL" and not _POSTCODE.match(value["postcode"]):
        raise _Reply(400, "Nieprawidłowy kod pocztowy.", path=f"{where}.postcode")
    return {k: value.get(k) for k in ("name", "company", "street", "postcode", "city", "country_code", "email",
                                      "phone", "point")}


def _number(value: Any, where: str, *, integer: bool = False) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, int | Decimal):
        raise _Reply(400, f"{where} must be a number.", path=where)
    if integer and not isinstance(value, int):
        raise _Reply(400, f"{where} must be a whole number.", path=where)
    return Decimal(value)


def _parcel(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, Mapping):
        raise _Reply(400, f"{where} must be an object.", path=where)
    for key in ("width", "depth", "height"):
        if _number(value.get(key), f"{where}.{key}", integer=True) <= 0:
            raise _Reply(400, f"{where}.{key} must be positive.", path=f"{where}.{key}")
    if _number(value.get("weight"), f"{where}.weight") <= 0:
        raise _Reply(400, f"{where}.weight must be positive.", path=f"{where}.weight")
    if value.get("value") is not None:
        _money(value["value"], f"{where}.value")
    out = {k: value.get(k) for k in ("width", "depth", "height", "weight", "value", "description")}
    out["package_no"] = None
    return _plain(out)


def _money(value: Any, where: str) -> Decimal:
    amount = _number(value, where)
    try:
        if amount < 0 or amount != amount.quantize(Decimal("0.01")):
            raise _Reply(400, f"{where} must be an amount with at most two decimals.", path=where)
    except InvalidOperation:
        raise _Reply(400, f"{where} is not an amount.", path=where) from None
    return amount


def _cod(value: Any) -> None:
    where = "additional_services.cod"
    if not isinstance(value, Mapping):
        raise _Reply(400, f"{where} must be an object.", path=where)
    if _money(value.get("amount"), f"{where}.amount") <= 0:
        raise _Reply(400, f"{where}.amount must be positive.", path=f"{where}.amount")
    if not isinstance(value.get("iban"), str) or not _IBAN_PL.match(value["iban"]):
        raise _Reply(400, "Nieprawidłowy numer konta do zwrotu pobrania.", path=f"{where}.iban")


def _plain(value: Any) -> Any:
    """Decimals from the request back to JSON numbers for the answers."""
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def label_pdf(pages: list[list[str]], size: tuple[int, int] = PAGE_SIZES["a4"]) -> bytes:
    """A small valid PDF (pypdf reads it): one page of ``size`` points per entry, its lines in Helvetica."""
    objects: list[bytes] = [b"<< /Type /Catalog /Pages 2 0 R >>", b"",
                            b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>"]
    kids = []
    for lines in pages:
        text = f"BT /F1 10 Tf 20 {size[1] - 30} Td 14 TL " + " ".join(
            "(" + line.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)") + ") '" for line in lines) + " ET"
        stream = text.encode("latin-1", "replace")
        objects.append(b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream")
        content = len(objects)
        objects.append(b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 %d %d] /Resources << /Font << /F1 3 0 R >> >> "
                       b"/Contents %d 0 R >>" % (size[0], size[1], content))
        kids.append(len(objects))
    objects[1] = b"<< /Type /Pages /Kids [%s] /Count %d >>" % (b" ".join(b"%d 0 R" % k for k in kids), len(kids))
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    for offset in offsets:
        out += b"%010d 00000 n \n" % offset
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    return bytes(out)


def _tracking_number(service: str, pid: int, n: int) -> str:
    """[sim] numbers only, unique per parcel."""
    return f"{zlib.crc32(service.encode()) % 90 + 10}{pid:010d}{n:02d}"


def _read_body(environ: Mapping[str, Any]) -> bytes:
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    return environ["wsgi.input"].read(length) if length > 0 else b""


__all__ = ["Exchange", "Faults", "FurgonetkaSimulator", "LossyTransport", "label_pdf"]
