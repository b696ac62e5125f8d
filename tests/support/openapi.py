"""What the connectors' validating transports share (tests/connectors/*/conftest.py): a vendor's OpenAPI
document read raw for the checks openapi-core does not make (operation lookup, $ref and allOf walking), and
httpx's request and response in the shapes openapi-core validates."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import parse_qsl

import httpx
from openapi_core.datatypes import RequestParameters
from werkzeug.datastructures import Headers, ImmutableMultiDict


class OpenApiDoc:
    """A vendor's document: ``raw`` as parsed, ``api`` openapi-core's view of it; ``label`` names it in a
    failure. ``literal_first``: a path with literal segments wins over a template that also matches it."""

    def __init__(self, raw: dict[str, Any], api: Any, label: str, *, literal_first: bool = False):
        self.raw = raw
        self.api = api
        self.label = label
        templates = sorted(raw["paths"], key=lambda p: (p.count("{"), -len(p))) if literal_first else list(raw["paths"])
        self._routes = [(re.compile("^" + re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(p)) + "$"), p)
                        for p in templates]

    def operation(self, method: str, path: str) -> dict[str, Any]:
        for pattern, template in self._routes:
            if pattern.match(path) and method.lower() in self.raw["paths"][template]:
                return self.raw["paths"][template][method.lower()]  # type: ignore[no-any-return]
        raise AssertionError(f"{method} {path} is not in {self.label}")

    def resolve(self, schema: dict[str, Any]) -> dict[str, Any]:
        while "$ref" in schema:
            node: Any = self.raw
            for part in schema["$ref"].lstrip("#/").split("/"):
                node = node[part]
            schema = node
        return schema

    def _parts(self, schema: dict[str, Any], seen: set[int]) -> list[dict[str, Any]]:
        """The schema and everything it takes through allOf, each once."""
        schema = self.resolve(schema)
        if id(schema) in seen:
            return []
        seen.add(id(schema))
        out = [schema]
        for sub in schema.get("allOf", []):
            out += self._parts(sub, seen)
        return out


class Req:
    """An httpx request as openapi-core reads it, against the spec's ``server``."""

    def __init__(self, request: httpx.Request, server: str):
        self.method = request.method.lower()
        self.host_url = server
        self.path = request.url.path
        self.body = request.content or None
        self.content_type = request.headers.get("content-type", "")
        self.parameters = RequestParameters(
            query=ImmutableMultiDict(parse_qsl(request.url.query.decode(), keep_blank_values=True)),
            header=Headers(list(request.headers.items())),
            cookie=ImmutableMultiDict(),
        )


class Resp:
    """An httpx response as openapi-core reads it."""

    def __init__(self, response: httpx.Response):
        self.status_code = response.status_code
        self.headers = Headers(list(response.headers.items()))
        self.data = response.content
        self.content_type = response.headers.get("content-type", "")
