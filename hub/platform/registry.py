"""Connector registry: a config ``kind`` -> the connector that implements it.

Connectors announce themselves as entry points in the group ``hub.connectors``
(name = kind, value = a ConnectorSpec object), so the spine never imports
connectors/. Tests and embedders may also ``register`` a spec directly.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ValidationError

from hub.kernel.ports.capability import Capability
from hub.platform.config import ConnectorSettings, LoadedConfig, redacted_url

ENTRY_POINT_GROUP = "hub.connectors"
Role = Literal["erp", "channel", "carrier", "rates", "einvoicing", "export"]


@dataclass(frozen=True)
class ConnectorSpec:
    kind: str
    role: Role
    description: str
    capabilities: frozenset[Capability]
    # builds the port implementation from (connector name, validated options, runtime services)
    factory: Callable[[str, Any, Mapping[str, Any]], Any]
    # the connector's own keys under [connectors.NAME], validated at start-up
    options_model: type[BaseModel] | None = None
    default_rate_limit_per_minute: int = 600
    # adds the connector's own job kinds to a hub.jobs.handlers.HandlerRegistry (typed loosely: the
    # platform does not import the job queue)
    handlers: Callable[[str, Any, Any], None] | None = None
    # adds the connector's own admin commands (e.g. a login command for its accounts) to the CLI;
    # each subparser sets func=callable(args) -> exit code
    cli: Callable[[Any], None] | None = None
    # the folders the connector writes into, from its options (an ERP outbox, a label folder): under
    # systemd's ProtectSystem=strict each must be listed in ReadWritePaths=, and `hub config check` says so
    written_paths: Callable[[Any], list[Path]] | None = None
    # the files or folders the connector reads, by option key (an ERP feed): `hub config check` warns
    # when one does not exist or cannot be read
    read_paths: Callable[[Any], dict[str, Path]] | None = None
    # most listing changes one push job carries (the vendor's batch limit)
    push_batch_size: int = 100
    extra: dict[str, Any] = field(default_factory=dict)


_registered: dict[str, ConnectorSpec] = {}
_broken: dict[str, str] = {}
_loaded_entry_points = False


def register(spec: ConnectorSpec) -> None:
    _registered[spec.kind] = spec


def unregister(kind: str) -> None:
    _registered.pop(kind, None)


def _load_entry_points() -> None:
    global _loaded_entry_points
    if _loaded_entry_points:
        return
    _loaded_entry_points = True
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        # one broken connector must not take the others down: it is reported when configured
        try:
            spec = ep.load()
        except Exception as exc:
            _broken[ep.name] = f"{type(exc).__name__}: {exc}"
            continue
        if not isinstance(spec, ConnectorSpec):
            _broken[ep.name] = f"entry point {ep.value} is not a hub.platform.registry.ConnectorSpec"
            continue
        _registered.setdefault(ep.name, spec)


def specs() -> dict[str, ConnectorSpec]:
    _load_entry_points()
    return dict(_registered)


def get(kind: str) -> ConnectorSpec | None:
    return specs().get(kind)


def validate_connectors(loaded: LoadedConfig) -> list[str]:
    """Problems with [connectors.*] sections, each naming file, key and value."""
    label = loaded.source_label
    known = specs()
    problems: list[str] = []
    for name, conn in sorted(loaded.settings.connectors.items()):
        spec = known.get(conn.kind)
        if spec is None and conn.kind in _broken:
            problems.append(f"{label}: connectors.{name}.kind = {conn.kind!r}: the connector failed to load: "
                            f"{_broken[conn.kind]}")
            continue
        if spec is None:
            installed = ", ".join(sorted(known)) or "none installed"
            problems.append(f"{label}: connectors.{name}.kind = {conn.kind!r}: unknown connector kind ({installed})")
            continue
        problems.extend(_validate_options(loaded, name, conn, spec))
    return problems


def _validate_options(loaded: LoadedConfig, name: str, conn: ConnectorSettings, spec: ConnectorSpec) -> list[str]:
    """Each problem names where the value came from (the file, or the environment variable that set it)."""
    options = conn.options()
    if spec.options_model is None:
        return [f"{loaded.source_of(f'connectors.{name}.{key}')}: connectors.{name}.{key} = {value!r}: unknown key"
                for key, value in options.items()]
    try:
        spec.options_model.model_validate(options, context={"environ": loaded.environ})
    except ValidationError as exc:
        out = []
        for err in exc.errors():
            key = ".".join(str(p) for p in err["loc"])
            source = loaded.source_of(f"connectors.{name}.{key}")
            msg = "unknown key" if err["type"] == "extra_forbidden" else str(err["msg"]).removeprefix("Value error, ")
            if err["type"] == "missing":
                out.append(f"{source}: connectors.{name}.{key}: missing (required)")
            else:
                value = "<hidden>" if any(s in key for s in ("secret", "password", "token")) else repr(
                    _masked(err["input"]))
                out.append(f"{source}: connectors.{name}.{key} = {value}: {msg}")
        return out
    return []


def _masked(value: Any) -> Any:
    """A URL's inline password as ***, so a refused database URL never prints it."""
    if isinstance(value, str) and "://" in value and "@" in value:
        return redacted_url(value)
    return value


def options_for(name: str, conn: ConnectorSettings, environ: Mapping[str, str] | None = None) -> Any:
    spec = get(conn.kind)
    if spec is None or spec.options_model is None:
        return conn.options()
    context = {"environ": environ} if environ is not None else None
    return spec.options_model.model_validate(conn.options(), context=context)


def names_with_role(loaded: LoadedConfig, role: str) -> list[str]:
    """The connectors the config defines whose kind has this role (enabled or not), sorted."""
    return sorted(n for n, c in loaded.settings.connectors.items()
                  if (spec := get(c.kind)) is not None and spec.role == role)


def _enabled_options(loaded: LoadedConfig) -> Iterator[tuple[str, ConnectorSpec, Any]]:
    """(name, spec, options) of each enabled connector whose options are valid (the others are left to
    validate_connectors)."""
    for name, conn in sorted(loaded.settings.connectors.items()):
        spec = get(conn.kind)
        if not conn.enabled or spec is None:
            continue
        try:
            yield name, spec, options_for(name, conn, loaded.environ)
        except ValueError:
            continue


def written_paths(loaded: LoadedConfig) -> dict[str, list[Path]]:
    """Per enabled connector, the folders it writes into."""
    out: dict[str, list[Path]] = {}
    for name, spec, options in _enabled_options(loaded):
        paths = spec.written_paths(options) if spec.written_paths is not None else []
        if paths:
            out[name] = paths
    return out


def path_warnings(loaded: LoadedConfig) -> list[str]:
    """What on this machine keeps a connector from working: a path it reads that is missing or
    unreadable, a folder it writes into that is missing or not writable. Warnings, not errors: the ERP
    export may simply not have run yet, and the daemon retries (its health says so meanwhile)."""
    out: list[str] = []
    for name, spec, options in _enabled_options(loaded):
        reads = spec.read_paths(options) if spec.read_paths is not None else {}
        for key, path in reads.items():
            problem = _unreadable(path)
            if problem:
                out.append(f"{loaded.source_label}: connectors.{name}.{key} = {str(path)!r}: {problem}")
        for path in spec.written_paths(options) if spec.written_paths is not None else []:
            problem = _unwritable(path)
            if problem:
                out.append(f"{loaded.source_label}: connector {name} writes into {str(path)!r}: {problem}")
    return out


def _unreadable(path: Path) -> str | None:
    if not path.exists():
        return "no such file or folder (has the export run? is the path right?)"
    if path.is_dir():
        if not os.access(path, os.R_OK | os.X_OK):
            return "the folder cannot be read by this user: give the hub's user read access"
    elif not os.access(path, os.R_OK):
        return "the file cannot be read by this user: give the hub's user read access"
    return None


def _unwritable(path: Path) -> str | None:
    if not path.is_dir():
        return "no such folder: create it (the hub does not create folders another program reads)"
    if not os.access(path, os.W_OK | os.X_OK):
        return "this user cannot write into it: give the hub's user write access"
    return None
