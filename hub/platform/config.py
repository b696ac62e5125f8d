"""Configuration: one TOML file, ``HUB_SECTION__KEY`` environment overrides, validated at start.

Every problem is reported with where the value came from (the file or the
environment variable), the dotted key and the offending value, so an operator
can fix it without reading code. Secrets are never required inline: a secret
field takes ``{ env = "NAME" }``, ``{ file = "/path" }`` or
``{ credential = "name" }`` (systemd's ``$CREDENTIALS_DIRECTORY``).
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import core_schema

from hub.kernel.errors import ConfigError

DEFAULT_PATH = Path("hub.toml")
ENV_PREFIX = "HUB_"
ENV_NESTING = "__"

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, None: 1.0}


def parse_duration(value: Any) -> float:
    """Seconds from a number or a string such as ``500ms``, ``30s``, ``5m``, ``1h``."""
    if isinstance(value, bool):
        raise ValueError("expected a duration such as 30s, 5m or 1h")
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str) and (match := _DURATION.match(value)):
        seconds = float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
    else:
        raise ValueError("expected a duration such as 30s, 5m or 1h")
    if seconds <= 0:
        raise ValueError("a duration must be greater than zero")
    return seconds


Duration = Annotated[float, BeforeValidator(parse_duration)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Secret:
    """A resolved secret; its repr never shows the value."""

    __slots__ = ("_value", "source")

    def __init__(self, value: str, source: str):
        self._value = value
        self.source = source

    def get(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return f"Secret(from {self.source})"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)

    @classmethod
    def __get_pydantic_core_schema__(cls, _source: Any, _handler: Any) -> core_schema.CoreSchema:
        return core_schema.with_info_plain_validator_function(
            lambda value, info: _resolve_secret(value, (info.context or {}).get("environ", os.environ))
        )


_known_secrets: set[str] = set()


def known_secret_values() -> frozenset[str]:
    """Every secret value resolved so far; the log redactor masks them wherever they appear."""
    return frozenset(_known_secrets)


def _resolve_secret(value: Any, environ: Mapping[str, str]) -> Secret:
    if isinstance(value, Secret):
        return value
    if isinstance(value, str):
        secret = Secret(value, "inline")
    elif isinstance(value, Mapping) and len(value) == 1:
        ((how, ref),) = value.items()
        if not isinstance(ref, str) or not ref:
            raise ValueError(f"secret reference {how} must be a non-empty string")
        if how == "env":
            if ref not in environ:
                raise ValueError(f"environment variable {ref} is not set")
            secret = Secret(environ[ref], f"env {ref}")
        elif how in ("file", "credential"):
            if how == "credential":
                directory = environ.get("CREDENTIALS_DIRECTORY")
                if not directory:
                    raise ValueError(
                        f"credential {ref!r} needs $CREDENTIALS_DIRECTORY (systemd LoadCredential=)"
                    )
                path = Path(directory) / ref
            else:
                path = Path(ref)
            try:
                secret = Secret(path.read_text(encoding="utf-8").strip(), f"{how} {path}")
            except OSError as exc:
                raise ValueError(f"cannot read secret file {path}: {exc.strerror}") from None
        else:
            raise ValueError("a secret is { env = NAME }, { file = PATH } or { credential = NAME }")
    else:
        raise ValueError("a secret is { env = NAME }, { file = PATH } or { credential = NAME }")
    if not secret.get():
        raise ValueError(f"secret from {secret.source} is empty")
    _known_secrets.add(secret.get())
    return secret


SecretValue = Secret


class DatabaseSettings(_Strict):
    url: str = "sqlite:///hub.db"
    pool_size: int = Field(5, ge=1, le=100)
    sqlite_busy_timeout: Duration = 30.0
    password: SecretValue | None = None

    @field_validator("url")
    @classmethod
    def _known_backend(cls, url: str) -> str:
        if not (url.startswith("sqlite") or url.startswith("postgresql")):
            raise ValueError("only sqlite:/// and postgresql:// URLs are supported")
        return url


class WorkerSettings(_Strict):
    concurrency: int = Field(4, ge=1, le=64)
    batch_size: int = Field(10, ge=1, le=1000)
    lease: Duration = 60.0
    poll_interval: Duration = 1.0
    max_attempts: int = Field(8, ge=1, le=1000)
    backoff_initial: Duration = 2.0
    backoff_max: Duration = 900.0
    shutdown_timeout: Duration = 30.0

    @model_validator(mode="after")
    def _backoff_order(self) -> WorkerSettings:
        if self.backoff_max < self.backoff_initial:
            raise ValueError("backoff_max must not be smaller than backoff_initial")
        return self


class SchedulerSettings(_Strict):
    enabled: bool = True
    leader_poll: Duration = 5.0


class ScheduleEntry(_Strict):
    job: str = Field(min_length=1)
    every: Duration
    payload: dict[str, Any] = Field(default_factory=dict)
    priority: int = 0
    enabled: bool = True


class LogSettings(_Strict):
    level: Literal["debug", "info", "warning", "error"] = "info"
    format: Literal["auto", "json", "console"] = "auto"


class MetricsSettings(_Strict):
    enabled: bool = False
    host: str = "127.0.0.1"
    port: int = Field(9464, ge=1, le=65535)

    @field_validator("host")
    @classmethod
    def _loopback_only(cls, host: str) -> str:
        if host not in ("127.0.0.1", "::1", "localhost"):
            raise ValueError("the metrics endpoint binds to localhost only (127.0.0.1, ::1 or localhost)")
        return host


class OrdersSettings(_Strict):
    # a reservation ends with the first ERP stock reading of its SKU taken this long after the ERP
    # accepted the order's sales document (the ERP's stock reflects the order by then)
    erp_stock_grace: Duration = 600.0


class MappingsSettings(_Strict):
    dir: Path | None = None


class ConnectorSettings(BaseModel):
    """The part of ``[connectors.NAME]`` the spine reads; the rest is the connector's own."""

    model_config = ConfigDict(extra="allow", frozen=True)

    kind: str = Field(min_length=1)
    enabled: bool = True
    rate_limit_per_minute: int | None = Field(None, ge=1)
    rate_limit_burst: int | None = Field(None, ge=1)
    rate_limit_key: str | None = None

    def options(self) -> dict[str, Any]:
        return dict(self.model_extra or {})


class Settings(_Strict):
    database: DatabaseSettings = DatabaseSettings()
    worker: WorkerSettings = WorkerSettings()
    scheduler: SchedulerSettings = SchedulerSettings()
    schedule: dict[str, ScheduleEntry] = Field(default_factory=dict)
    log: LogSettings = LogSettings()
    metrics: MetricsSettings = MetricsSettings()
    mappings: MappingsSettings = MappingsSettings()
    orders: OrdersSettings = OrdersSettings()
    connectors: dict[str, ConnectorSettings] = Field(default_factory=dict)


@dataclass(frozen=True)
class LoadedConfig:
    settings: Settings
    path: Path | None
    env_keys: dict[str, str]
    # the environment the config was read with: connector options resolve their secrets in it too
    environ: Mapping[str, str] = field(default_factory=dict, repr=False)

    @property
    def source_label(self) -> str:
        return str(self.path) if self.path else "built-in defaults"


def _env_overrides(environ: Mapping[str, str]) -> tuple[dict[str, Any], dict[str, str]]:
    """``HUB_WORKER__CONCURRENCY=8`` -> {"worker": {"concurrency": "8"}}; keys map back to variables."""
    data: dict[str, Any] = {}
    origin: dict[str, str] = {}
    for name, value in environ.items():
        if not name.startswith(ENV_PREFIX) or ENV_NESTING not in name:
            continue
        parts = [p.lower() for p in name[len(ENV_PREFIX):].split(ENV_NESTING)]
        if any(not p for p in parts):
            continue
        node = data
        for part in parts[:-1]:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                break
            node = child
        else:
            node[parts[-1]] = value
            origin[".".join(parts)] = name
    return data, origin


def _merge(base: dict[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = _merge(dict(merged[key]), value)
        else:
            merged[key] = value
    return merged


def _lookup(data: Any, loc: tuple[Any, ...]) -> tuple[bool, Any]:
    node = data
    for part in loc:
        in_list = isinstance(node, list) and isinstance(part, int) and part < len(node)
        if (isinstance(node, Mapping) and part in node) or in_list:
            node = node[part]
        else:
            return False, None
    return True, node


def _describe(err: Mapping[str, Any], data: Mapping[str, Any], file_label: str, env_keys: Mapping[str, str]) -> str:
    loc = tuple(p for p in err["loc"] if not (isinstance(p, str) and p.startswith(("function-", "lax-"))))
    # pydantic names union/validator branches in loc; keep only real keys
    loc = tuple(p for p in loc if p not in ("str", "int", "float", "bool", "dict[str,any]"))
    key = ".".join(str(p) for p in loc) or "(top level)"
    source = file_label
    for i in range(len(loc), 0, -1):
        env = env_keys.get(".".join(str(p) for p in loc[:i]))
        if env:
            source = f"environment {env}"
            break
    message = str(err["msg"]).removeprefix("Value error, ")
    if err["type"] == "extra_forbidden":
        message = "unknown key"
    if err["type"] == "missing":
        return f"{source}: {key}: missing (required)"
    found, value = _lookup(data, loc)
    if not found:
        value = err.get("input")
    if "secret" in key.lower() or "password" in key.lower() or "token" in key.lower():
        shown = "<hidden>" if isinstance(value, str) else repr(value)
    else:
        shown = repr(value)
    return f"{source}: {key} = {shown}: {message}"


def load(path: str | os.PathLike[str] | None = None, environ: Mapping[str, str] | None = None) -> LoadedConfig:
    """Read, merge and validate; raise ConfigError listing every problem."""
    environ = os.environ if environ is None else environ
    explicit = path is not None or bool(environ.get("HUB_CONFIG"))
    cfg_path = Path(path if path is not None else environ.get("HUB_CONFIG") or DEFAULT_PATH)
    file_data: dict[str, Any] = {}
    resolved: Path | None = None
    if cfg_path.exists():
        resolved = cfg_path.resolve()
        try:
            with cfg_path.open("rb") as fh:
                file_data = tomllib.load(fh)
        except UnicodeDecodeError as exc:
            raise ConfigError([f"{cfg_path}: not UTF-8 text (byte 0x{exc.object[exc.start]:02x} at offset "
                               f"{exc.start}): save the file as UTF-8"]) from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError([f"{cfg_path}: invalid TOML: {exc}"]) from None
        except OSError as exc:
            raise ConfigError([f"{cfg_path}: cannot read: {exc.strerror}"]) from None
    elif explicit:
        raise ConfigError([f"{cfg_path}: config file not found"])

    env_data, env_keys = _env_overrides(environ)
    data = _merge(file_data, env_data)
    mappings_dir = (data.get("mappings") or {}).get("dir") if isinstance(data.get("mappings"), dict) else None
    if isinstance(mappings_dir, str) and resolved is not None and not Path(mappings_dir).is_absolute():
        data["mappings"] = {**data["mappings"], "dir": str(resolved.parent / mappings_dir)}
    file_label = str(cfg_path) if resolved else "defaults"
    try:
        settings = Settings.model_validate(data, context={"environ": environ})
    except ValidationError as exc:
        problems = [_describe(e, data, file_label, env_keys) for e in exc.errors()]
        raise ConfigError(problems) from None
    problems = [
        f"{file_label}: schedule.{name}.job = {entry.job!r}: job kinds are lower-case words joined by dots"
        for name, entry in settings.schedule.items()
        if not re.fullmatch(r"[a-z0-9_]+(\.[a-z0-9_]+)*", entry.job)
    ]
    if problems:
        raise ConfigError(problems)
    return LoadedConfig(settings=settings, path=resolved, env_keys=env_keys, environ=dict(environ))


def redacted_url(url: str) -> str:
    """A database URL fit for printing: the password is masked."""
    return re.sub(r"(://[^:/@]+):[^@]*@", r"\1:***@", url)
