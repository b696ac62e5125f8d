"""KSeF fixtures: the vendor's OpenAPI (open-api.json, loaded once), a transport that validates every request
the connector sends and every answer the simulator gives against it, a simulator, and the port wired to it."""

from __future__ import annotations

import json
import threading
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from ksef_testkit import API_URL, PROBLEM, SPEC_PATH, Wired, wire
from openapi_core import Config, OpenAPI
from openapi_core.deserializing.media_types.util import json_loads
from openapi_core.templating.responses.exceptions import ResponseNotFound

from connectors.ksef.simulator import KsefSimulator
from tests.support.openapi import OpenApiDoc, Req, Resp

SPEC_SERVER = "https://api-test.ksef.mf.gov.pl"  # servers[0] is .../v2: request paths keep their /v2
JSON_TYPES = ("application/json", "application/problem+json")


class Spec(OpenApiDoc):
    """open-api.json with openapi-core for requests and responses, plus what it does not check: properties the
    spec does not declare (KSeF's schemas set no additionalProperties), recursively through allOf."""

    def __init__(self, path: Path):
        raw: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
        api = OpenAPI.from_dict(raw, config=Config(
            spec_validator_cls=None,  # the vendor's file is what it is; validating 670 kB costs seconds
            extra_media_type_deserializers={"application/problem+json": json_loads},
        ))
        super().__init__(raw, api, "open-api.json", literal_first=True)

    def strict(self, schema: dict[str, Any], value: Any, where: str = "$") -> list[str]:
        parts = self._parts(schema, set())
        if value is None:
            return [] if any(p.get("nullable") for p in parts) or not any("type" in p for p in parts) else [
                f"{where}: null is not allowed"]
        errors: list[str] = []
        if isinstance(value, dict):
            props: dict[str, Any] = {}
            for part in parts:
                props.update(part.get("properties", {}))
            open_ended = any("additionalProperties" in p for p in parts)
            for key, item in value.items():
                if key in props:
                    errors += self.strict(props[key], item, f"{where}.{key}")
                elif not open_ended:
                    errors.append(f"{where}.{key}: not declared in the spec")
        elif isinstance(value, list):
            items = next((p["items"] for p in parts if "items" in p), None)
            if items is not None:
                for i, item in enumerate(value):
                    errors += self.strict(items, item, f"{where}[{i}]")
        return errors


class ValidatingTransport(httpx.BaseTransport):
    """Validates each request/response pair against open-api.json and fails the test on any mismatch. The
    pre-signed addresses (``/storage/...``: the UPO downloads, a batch's part uploads) are not API operations:
    open-api.json describes only the ``partUploadRequests`` that name them, not what they answer, so they
    pass unchecked but for what the spec does say of them: no bearer token ever travels there
    (sesja-wsadowa.md §5, the UPO's ``downloadUrl``), and a part goes with the headers KSeF named, not the
    API's. ``storage`` lists them."""

    def __init__(self, inner: httpx.BaseTransport, spec: Spec):
        self.inner = inner
        self.spec = spec
        self.checked: list[tuple[str, str, int]] = []
        self.storage: list[tuple[str, str, int]] = []
        self._lock = threading.Lock()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.path.startswith("/storage/"):
            assert "authorization" not in request.headers, f"{request.url.path}: no token travels to the storage"
            if request.method == "PUT":  # a part: exactly the headers partUploadRequests named, no API header
                assert "x-error-format" not in request.headers, "a part's upload carries the API's headers"
            response = self.inner.handle_request(request)
            with self._lock:
                self.storage.append((request.method, request.url.path, response.status_code))
            return response
        assert request.url.path.startswith("/v2/"), f"{request.url}: the API lives under /v2"
        self._check_request(request)
        response = self.inner.handle_request(request)
        response.read()
        self._check_response(request, response)
        with self._lock:
            self.checked.append((request.method, request.url.path, response.status_code))
        return response

    def _check_request(self, request: httpx.Request) -> None:
        path = request.url.path[3:]
        operation = self.spec.operation(request.method, path)
        assert request.headers.get("x-error-format") == "problem-details", "the client asks for problem details"
        if operation.get("security"):
            assert request.headers.get("authorization", "").startswith("Bearer "), f"{path} needs a bearer token"
        else:
            assert "authorization" not in request.headers, f"{path} is public: no token travels there"
        self.spec.api.validate_request(Req(request, SPEC_SERVER))
        if request.content:
            media = request.headers["content-type"].split(";")[0]
            schema = operation["requestBody"]["content"][media]["schema"]
            errors = self.spec.strict(schema, json.loads(request.content))
            assert not errors, f"{request.method} {path} body: {errors}"
        else:
            assert "content-type" not in request.headers, "Content-Type without a body"

    def _check_response(self, request: httpx.Request, response: httpx.Response) -> None:
        path = request.url.path[3:]
        status = response.status_code
        media = response.headers.get("content-type", "").split(";")[0]
        operation = self.spec.operation(request.method, path)
        declared = operation["responses"].get(str(status))
        if declared is None:
            # 5xx come from the gateway in front of every operation; the spec lists none
            assert status in (500, 502, 503, 504), f"undocumented status {status} for {request.method} {path}"
            assert media in JSON_TYPES, media
            return
        content = declared.get("content") or {}
        if not content:
            assert not response.content, f"{status} declares no body"
            return
        assert media in content, f"{request.method} {path} -> {status}: {media!r} is not one of {sorted(content)}"
        if media not in JSON_TYPES:  # the UPO: application/xml, a string; its hash header is checked
            meta_hash = response.headers.get("x-ms-meta-hash")
            assert meta_hash is None or len(meta_hash) == 44, meta_hash
            return
        try:
            self.spec.api.validate_response(Req(request, SPEC_SERVER), Resp(response))
        except ResponseNotFound as exc:  # pragma: no cover - declared above
            raise AssertionError(f"{request.method} {path} -> {status}") from exc
        errors = self.spec.strict(content[media]["schema"], json.loads(response.content))
        assert not errors, f"{request.method} {path} -> {status}: {errors}"

    def close(self) -> None:
        self.inner.close()


@pytest.fixture(scope="session")
def ksef_spec() -> Spec:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return Spec(SPEC_PATH)


@pytest.fixture
def sim() -> Iterator[KsefSimulator]:
    simulator = KsefSimulator()
    yield simulator
    simulator.stop()


@pytest.fixture
def validated(ksef_spec: Spec) -> Callable[[httpx.BaseTransport], ValidatingTransport]:
    """Wraps a transport so that every exchange through it is checked against the spec."""
    return lambda inner: ValidatingTransport(inner, ksef_spec)


@pytest.fixture
def api(sim: KsefSimulator, validated: Callable[[httpx.BaseTransport], ValidatingTransport]
        ) -> Iterator[httpx.Client]:
    """The simulator spoken to directly, every exchange checked against the spec."""
    with httpx.Client(base_url=API_URL, transport=validated(sim.transport()), headers=PROBLEM) as client:
        yield client


@pytest.fixture
def wired(sim: KsefSimulator, ksef_spec: Spec) -> Iterator[Callable[..., Wired]]:
    """The port on the simulator, every exchange validated (``w.checked`` lists them)."""
    built: list[Wired] = []

    def make(**options: Any) -> Wired:
        transport = ValidatingTransport(sim.transport(), ksef_spec)
        w = wire(sim, transport, **options)
        w.checked = transport.checked
        w.storage = transport.storage
        built.append(w)
        return w

    yield make
    for w in built:
        w.port.close()
