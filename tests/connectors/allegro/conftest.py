"""Allegro fixtures: the vendor's OpenAPI spec (loaded once), a transport that validates every
request the connector sends and every answer the simulator gives, and a channel wired to a simulator."""

from __future__ import annotations

import base64
import json
import threading
import warnings
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import httpx
import pytest
import yaml
from openapi_core import Config, OpenAPI
from openapi_core.templating.responses.exceptions import ResponseNotFound
from sqlalchemy import Engine

from connectors.allegro.channel import AllegroChannel
from connectors.allegro.options import AllegroOptions
from connectors.allegro.simulator import AllegroSimulator
from hub.kernel.clock import utcnow
from hub.platform.config import ConnectorSettings
from hub.platform.connectors import Services
from hub.platform.credentials import TokenSet, TokenStore
from hub.platform.logs import get_logger
from hub.platform.memory import Memory
from hub.platform.ratelimit import LocalRateLimiter, Throttle
from tests.support.openapi import OpenApiDoc, Req, Resp

SPEC_PATH = Path(__file__).resolve().parents[4] / "shared" / "specs" / "allegro" / "swagger.yaml"
PUBLIC = "application/vnd.allegro.public.v1+json"
BETA = "application/vnd.allegro.beta.v1+json"
SPEC_SERVER = "https://api.allegro.pl"  # servers: https://api.{environment}; simulator URLs map onto it
FORM = "application/x-www-form-urlencoded"


class Spec(OpenApiDoc):
    """swagger.yaml with openapi-core for requests and responses, plus the checks it does not make:
    discriminator mappings, undeclared properties, the Accept header."""

    def __init__(self, path: Path):
        with path.open("rb") as fh:
            raw: dict[str, Any] = yaml.load(fh, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
        loads = json.loads
        api = OpenAPI.from_dict(raw, config=Config(
            spec_validator_cls=None,  # the vendor's file is what it is; validating 1.4 MB costs seconds
            extra_media_type_deserializers={PUBLIC: loads, BETA: loads},
        ))
        super().__init__(raw, api, "swagger.yaml")

    def strict(self, schema: dict[str, Any], value: Any, where: str = "$") -> list[str]:
        """Undeclared properties, discriminator targets, types and enums, recursively."""
        seen: set[int] = set()
        parts = self._parts(schema, seen)
        errors: list[str] = []
        for part in list(parts):
            disc = part.get("discriminator")
            if disc and isinstance(value, dict):
                target = disc.get("mapping", {}).get(value.get(disc["propertyName"]))
                if target is None:
                    errors.append(f"{where}.{disc['propertyName']}: {value.get(disc['propertyName'])!r} is not one "
                                  f"of {sorted(disc.get('mapping', {}))}")
                else:
                    parts += self._parts({"$ref": target}, seen)
        types = {p["type"] for p in parts if "type" in p}
        nullable = any(p.get("nullable") for p in parts)
        if value is None:
            return errors if nullable or not types else [*errors, f"{where}: null is not allowed"]
        checks = {"string": str, "integer": int, "number": (int, float), "boolean": bool, "object": dict,
                  "array": list}
        for t in types:
            ok = isinstance(value, checks[t]) and not (t in ("integer", "number") and isinstance(value, bool))
            if not ok:
                errors.append(f"{where}: {value!r} is not of type {t}")
        for part in parts:
            if "enum" in part and value not in part["enum"]:
                errors.append(f"{where}: {value!r} is not one of {part['enum']}")
            if "minimum" in part and isinstance(value, int | float) and value < part["minimum"]:
                errors.append(f"{where}: {value!r} is below {part['minimum']}")
        if isinstance(value, dict):
            props: dict[str, Any] = {}
            for part in parts:
                props.update(part.get("properties", {}))
            open_ended = any("additionalProperties" in p for p in parts)
            for key, item in value.items():
                if key in props:
                    errors += self.strict(props[key], item, f"{where}.{key}")
                elif props and not open_ended:
                    errors.append(f"{where}.{key}: not declared in the spec")
        elif isinstance(value, list):
            items = next((p["items"] for p in parts if "items" in p), None)
            if items is not None:
                for i, item in enumerate(value):
                    errors += self.strict(items, item, f"{where}[{i}]")
        return errors


class ValidatingTransport(httpx.BaseTransport):
    """Validates each request/response pair against swagger.yaml (OAuth, which the spec does not
    describe, against RFC 6749/8628 and the vendor's documented form) and fails the test on any mismatch."""

    def __init__(self, inner: httpx.BaseTransport, spec: Spec):
        self.inner = inner
        self.spec = spec
        self.checked: list[tuple[str, str, int]] = []
        self._lock = threading.Lock()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.path.startswith("/auth/oauth/"):
            self._check_oauth(request)
            response = self.inner.handle_request(request)
            response.read()
            assert response.headers["content-type"].startswith("application/json"), response.headers
            json.loads(response.content)
        else:
            self._check_request(request)
            response = self.inner.handle_request(request)
            response.read()
            self._check_response(request, response)
        with self._lock:
            self.checked.append((request.method, request.url.path, response.status_code))
        return response

    def _check_oauth(self, request: httpx.Request) -> None:
        assert request.method == "POST", request
        auth = request.headers.get("authorization", "")
        assert auth.startswith("Basic ") and ":" in base64.b64decode(auth[6:]).decode(), "OAuth needs HTTP Basic"
        assert request.headers.get("content-type", "").startswith(FORM), request.headers
        form = dict(parse_qsl(request.content.decode()))
        if request.url.path == "/auth/oauth/device":
            assert set(form) == {"client_id"}, form
        else:
            assert request.url.path == "/auth/oauth/token", request.url
            grant = form.get("grant_type")
            expected = {"refresh_token": {"grant_type", "refresh_token"},
                        "urn:ietf:params:oauth:grant-type:device_code": {"grant_type", "device_code"}}
            assert grant in expected and set(form) == expected[grant], form

    def _check_request(self, request: httpx.Request) -> None:
        operation = self.spec.operation(request.method, request.url.path)
        accept = request.headers.get("accept")
        documented = {m for r in operation["responses"].values() for m in (r.get("content") or {})}
        assert accept in documented, f"Accept {accept!r} for {request.method} {request.url.path}; spec: {documented}"
        assert request.headers.get("authorization", "").startswith("Bearer "), "API calls need a bearer token"
        self.spec.api.validate_request(Req(request, SPEC_SERVER))
        if request.content:
            media = request.headers["content-type"]
            schema = operation["requestBody"]["content"][media]["schema"]
            errors = self.spec.strict(schema, json.loads(request.content))
            assert not errors, f"{request.method} {request.url.path} body: {errors}"
        else:
            assert "content-type" not in request.headers, "Content-Type without a body"

    @staticmethod
    def _errata(request: httpx.Request, response: httpx.Response) -> bytes:
        """The body to validate: the answer, except where swagger.yaml is known to be wrong.

        CheckoutForms.count and .totalCount declare ``minimum: 1``, yet an empty result (no order changed
        since updatedAt.gte) has 0 of each: the rest of an empty answer is still checked."""
        if request.method == "GET" and request.url.path == "/order/checkout-forms" and response.status_code == 200:
            body = json.loads(response.content)
            if body.get("checkoutForms") == [] and body.get("count") == 0 and body.get("totalCount") == 0:
                return json.dumps({**body, "count": 1, "totalCount": 1}).encode()
        return response.content

    def _check_response(self, request: httpx.Request, response: httpx.Response) -> None:
        status = response.status_code
        assert response.headers.get("trace-id"), "the simulator answers with a trace-id like the vendor"
        checked = Resp(response)
        checked.data = self._errata(request, response)
        try:
            self.spec.api.validate_response(Req(request, SPEC_SERVER), checked)
        except ResponseNotFound:
            # 401/429/5xx come from the gateway in front of every resource; the spec lists them per operation
            assert status in (401, 429, 500, 502, 503, 504), f"undocumented status {status} for {request.url}"
            body = json.loads(response.content)
            assert "errors" in body or "error" in body, body
            if "errors" in body:
                assert not self.spec.strict({"$ref": "#/components/schemas/ErrorsHolder"}, body)
            return
        operation = self.spec.operation(request.method, request.url.path)
        declared = operation["responses"].get(str(status)) or {}
        content = declared.get("content") or {}
        if content and response.content:
            media = response.headers["content-type"]
            errors = self.spec.strict(content[media]["schema"], json.loads(checked.data))
            assert not errors, f"{request.method} {request.url.path} -> {status}: {errors}"
        elif response.content:  # e.g. 404/409: no schema in the spec; the vendor's error body
            assert not self.spec.strict({"$ref": "#/components/schemas/ErrorsHolder"}, json.loads(response.content))

    def close(self) -> None:
        self.inner.close()


@pytest.fixture(scope="session")
def allegro_spec() -> Spec:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return Spec(SPEC_PATH)


@pytest.fixture(autouse=True)
def _quiet_openapi_security_warning() -> Iterator[None]:
    # openapi-core warns that it cannot check oauth2 schemes; the bearer header is checked above
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Unsupported scheme type")
        yield


@pytest.fixture
def sim() -> Iterator[AllegroSimulator]:
    simulator = AllegroSimulator(seed=7, command_delay=0.0)
    yield simulator
    simulator.stop()


def make_services(engine: Engine, name: str, transport: httpx.BaseTransport | None,
                  limiter: LocalRateLimiter | None = None, key: str | None = None) -> Services:
    throttle = Throttle(limiter or LocalRateLimiter(), key or f"allegro:{name}", per_minute=9000.0, burst=150.0)
    return Services(name=name, engine=engine, tokens=TokenStore(engine), throttle=throttle,
                    settings=ConnectorSettings(kind="allegro"), transport=transport,
                    log=get_logger("connectors.allegro").bind(connector=name), memory=Memory(engine, name))


def options(**overrides: Any) -> AllegroOptions:
    values: dict[str, Any] = {
        "api_url": "https://allegro.sim", "auth_url": "https://allegro.sim", "client_id": "hub-client",
        "client_secret": "hub-secret", "command_poll_interval": 0.01, "command_timeout": 5, "retry_backoff": 0.001,
        "rate_limit_block": 60,
    }
    values.update(overrides)
    return AllegroOptions.model_validate(values)


def login(sim: AllegroSimulator, tokens: TokenStore, name: str, ttl: int | None = None) -> TokenSet:
    pair = sim.issue_tokens(ttl=ttl)
    token_set = TokenSet(pair["access_token"], pair["refresh_token"], utcnow() + timedelta(seconds=pair["expires_in"]),
                         pair["scope"])
    tokens.save(name, token_set)
    return token_set


ChannelFactory = Callable[..., tuple[AllegroChannel, ValidatingTransport]]


@pytest.fixture
def make_channel(engine: Engine, sim: AllegroSimulator, allegro_spec: Spec) -> Iterator[ChannelFactory]:
    """A logged-in channel on the simulator; every exchange is validated against the spec."""
    built: list[AllegroChannel] = []

    def build(name: str = "allegro-main", *, wrap: Callable[[httpx.BaseTransport], httpx.BaseTransport] | None = None,
              logged_in: bool = True, token_ttl: int | None = None, limiter: LocalRateLimiter | None = None,
              key: str | None = None, validate: bool = True,
              **overrides: Any) -> tuple[AllegroChannel, ValidatingTransport]:
        inner: httpx.BaseTransport = sim.transport()
        validating = ValidatingTransport(inner, allegro_spec)
        # validate=False only for volume tests, whose smaller twins are validated
        transport: httpx.BaseTransport = validating if validate else inner
        transport = wrap(transport) if wrap else transport
        services = make_services(engine, name, transport, limiter, key)
        if logged_in:
            login(sim, services.tokens, name, token_ttl)
        channel = AllegroChannel(name, options(**overrides), services)
        built.append(channel)
        return channel, validating

    yield build
    for channel in built:
        channel.close()


@pytest.fixture
def validated(allegro_spec: Spec) -> Callable[[httpx.BaseTransport], ValidatingTransport]:
    """Wraps a transport so that every exchange through it is checked against the spec."""
    return lambda inner: ValidatingTransport(inner, allegro_spec)
