"""Configuration: one TOML file, ``HUB_SECTION__KEY`` environment overrides, validated at start.

Every problem is reported with where the value came from (the file or the
environment variable), the dotted key and the offending value, so an operator
can fix it without reading code. Secrets are never required inline: a secret
field takes ``{ env = "NAME" }``, ``{ file = "/path" }`` or
``{ credential = "name" }`` (systemd's ``$CREDENTIALS_DIRECTORY``).
"""

from __future__ import annotations

import math
import os
import re
import tomllib
import types
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any, Literal, Union, get_args, get_origin

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import core_schema
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError
from stdnum.pl import nip as pl_nip

from hub.kernel.errors import ConfigError, EnvironmentFailure

DEFAULT_PATH = Path("hub.toml")
ENV_PREFIX = "HUB_"
ENV_NESTING = "__"

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, None: 1.0}
_DURATION_HINT = "expected a duration such as 30s, 5m or 1h"
MAX_DURATION = 366 * 86400.0  # longer is a mistake, and overflows the worker's timestamps


def _seconds_text(seconds: float) -> str:
    for unit in ("d", "h", "m", "s"):
        if seconds >= _UNIT_SECONDS[unit] and (seconds / _UNIT_SECONDS[unit]).is_integer():
            return f"{seconds / _UNIT_SECONDS[unit]:g}{unit}"
    return f"{seconds * 1000:g}ms"


def parse_duration(value: Any, *, minimum: float = 0.0) -> float:
    """Seconds from a number or a string such as ``500ms``, ``30s``, ``5m``, ``1h``: finite, greater
    than zero (and than ``minimum``), at most 366 days."""
    if isinstance(value, bool):
        raise ValueError(_DURATION_HINT)
    try:
        if isinstance(value, int | float):
            seconds = float(value)
        elif isinstance(value, str) and (match := _DURATION.match(value)):
            seconds = float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
        else:
            raise ValueError(_DURATION_HINT)
    except OverflowError:
        seconds = math.inf
    if math.isnan(seconds):
        raise ValueError(f"{_DURATION_HINT} (a number of seconds, not nan)")
    if seconds > MAX_DURATION:
        raise ValueError(f"{_DURATION_HINT}, at most {_seconds_text(MAX_DURATION)}")
    if seconds <= 0:
        raise ValueError("a duration must be greater than zero")
    if seconds < minimum:
        raise ValueError(f"{_DURATION_HINT}, at least {_seconds_text(minimum)}")
    return seconds


def _duration_at_least(minimum: float) -> Any:
    return Annotated[float, BeforeValidator(lambda value: parse_duration(value, minimum=minimum))]


Duration = Annotated[float, BeforeValidator(parse_duration)]
# a lease or a schedule under a second is a typo (ms for s): the worker would lose every job it claims
SecondsDuration = _duration_at_least(1.0)
# SQLite's busy timeout is whole milliseconds: less would silently become 0 (no waiting at all)
MillisecondsDuration = _duration_at_least(0.001)


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


# the URL schemes make_engine() connects with (postgresql is driven by psycopg 3)
DATABASE_DRIVERS = ("sqlite", "sqlite+pysqlite", "postgresql", "postgresql+psycopg")
_URL_HINT = "only sqlite:///PATH and postgresql://USER@HOST[:PORT]/DATABASE URLs are supported"


def check_database_url(url: str) -> str:
    """The URL if the hub can keep its data there; else ValueError saying why."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise ValueError(f"not a database URL: {_URL_HINT}") from None
    except ValueError:
        raise ValueError("the port is not a number") from None
    if parsed.drivername not in DATABASE_DRIVERS:
        raise ValueError(f"unknown database driver {parsed.drivername!r} (the hub takes {', '.join(DATABASE_DRIVERS)})")
    if parsed.port is not None and not 1 <= parsed.port <= 65535:
        raise ValueError(f"port {parsed.port} is not between 1 and 65535")
    if parsed.get_backend_name() == "sqlite":
        if parsed.host or parsed.port is not None or parsed.username or parsed.password is not None:
            raise ValueError("a SQLite URL names a file, not a server: sqlite:///relative.db or sqlite:////abs/path.db")
        if not parsed.database or parsed.database == ":memory:" or parsed.query.get("mode") == "memory":
            raise ValueError("an in-memory SQLite database is lost when the command ends: "
                             "name a file, e.g. sqlite:///hub.db")
    return url


class DatabaseSettings(_Strict):
    url: str = "sqlite:///hub.db"
    pool_size: StrictInt = Field(5, ge=1, le=100)
    sqlite_busy_timeout: MillisecondsDuration = 30.0
    password: SecretValue | None = None

    @field_validator("url")
    @classmethod
    def _known_backend(cls, url: str) -> str:
        return check_database_url(url)

    @field_validator("password")
    @classmethod
    def _server_password(cls, password: Secret | None, info: ValidationInfo) -> Secret | None:
        url = info.data.get("url")
        if password is not None and url is not None and make_url(url).get_backend_name() == "sqlite":
            raise ValueError("a SQLite database takes no password (it is for a PostgreSQL url)")
        return password


class WorkerSettings(_Strict):
    concurrency: StrictInt = Field(4, ge=1, le=64)
    batch_size: StrictInt = Field(10, ge=1, le=1000)
    lease: SecondsDuration = 60.0
    poll_interval: Duration = 1.0
    max_attempts: StrictInt = Field(8, ge=1, le=1000)
    backoff_initial: Duration = 2.0
    backoff_max: Duration = 900.0
    shutdown_timeout: Duration = 30.0

    @model_validator(mode="after")
    def _backoff_order(self) -> WorkerSettings:
        if self.backoff_max < self.backoff_initial:
            raise ValueError("backoff_max must not be smaller than backoff_initial")
        return self


class SchedulerSettings(_Strict):
    enabled: StrictBool = True
    leader_poll: Duration = 5.0


class ScheduleEntry(_Strict):
    job: str = Field(min_length=1)
    every: SecondsDuration
    payload: dict[str, Any] = Field(default_factory=dict)
    # jobs.priority is an SQL INTEGER; the hub's own jobs use 0..20
    priority: StrictInt = Field(0, ge=-1000, le=1000)
    enabled: StrictBool = True


class LogSettings(_Strict):
    level: Literal["debug", "info", "warning", "error"] = "info"
    format: Literal["auto", "json", "console"] = "auto"


class MetricsSettings(_Strict):
    enabled: StrictBool = False
    host: str = "127.0.0.1"
    port: StrictInt = Field(9464, ge=1, le=65535)

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


HHMM = Annotated[str, Field(pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$")]


class SenderSettings(_Strict):
    """Where parcels leave from (a shop, a warehouse): the sender on every label and the pickup address."""

    name: str = Field(min_length=1)
    company: str | None = None
    street: str = Field(min_length=1)
    city: str = Field(min_length=1)
    postal_code: str = Field(pattern=r"^[0-9]{2}-?[0-9]{3}$")
    country: str = Field("PL", pattern=r"^[A-Z]{2}$")
    phone: str = Field(min_length=6)
    email: str = Field(pattern=r"^[^@\s]+@[^@\s]+$")
    # the account carriers pay collected cash-on-delivery money to (PL IBAN: PL + 26 digits)
    bank_account: str | None = Field(None, pattern=r"^PL[0-9]{26}$")


class ShippingSettings(_Strict):
    # label files, one per shipment, with their checksum in the database; a relative folder is taken from
    # the config file's folder (under systemd name one in the unit's StateDirectory or ReadWritePaths=)
    label_dir: Path = Path("labels")
    label_format: Literal["pdf", "zpl"] = "pdf"  # what the packer's printer takes
    senders: dict[str, SenderSettings] = Field(default_factory=dict)
    default_sender: str | None = None  # the key of senders to use when a delivery mapping names none
    timezone: str = "Europe/Warsaw"  # the carriers' and the warehouse's clock: pickup days and cut-off
    pickup_cutoff: HHMM = "13:00"  # the day's pickups are booked at this local time
    # carrier accounts whose courier comes every working day anyway: no pickup is booked for them
    standing_pickups: list[str] = Field(default_factory=list)
    tracking_every: SecondsDuration = 1800.0  # a parcel on the move is tracked this often
    tracking_quiet_every: SecondsDuration = 14400.0  # one that has not moved for a day, this often

    @model_validator(mode="after")
    def _default_sender_exists(self) -> ShippingSettings:
        if self.default_sender is not None and self.default_sender not in self.senders:
            raise ValueError(f"default_sender {self.default_sender!r} is not one of the senders "
                             f"({', '.join(sorted(self.senders)) or 'none configured'})")
        return self


class SellerSettings(_Strict):
    """The seller as every invoice names it (Podmiot1 of FA(3)): checked when the config loads."""

    name: str = Field(min_length=1, max_length=512)
    nip: str = Field(pattern=r"^[0-9]{10}$")  # 10 digits; its check digit is verified below
    street: str = Field(min_length=1)
    city: str = Field(min_length=1)
    postal_code: str = Field(pattern=r"^[0-9]{2}-[0-9]{3}$")
    country: str = Field("PL", pattern=r"^[A-Z]{2}$")
    email: str | None = Field(None, pattern=r"^[^@\s]+@[^@\s]+$")
    phone: str | None = Field(None, min_length=6, max_length=16)
    # the account buyers pay into (PL IBAN: PL + 26 digits); required for split payment (art. 108a)
    bank_account: str | None = Field(None, pattern=r"^PL[0-9]{26}$")
    place: str | None = None  # where invoices are issued (P_1M), e.g. "Warszawa"
    # what JPK_FA(4) asks of a Polish seller's address and tax office (hub invoices export --format jpk_fa)
    tax_office: str | None = Field(None, pattern=r"^[0-9]{4}$")  # KodUrzedu, e.g. "3021" (Poznań-Wilda)
    voivodeship: str | None = None  # województwo, e.g. "wielkopolskie"
    county: str | None = None  # powiat
    commune: str | None = None  # gmina
    building: str | None = None  # NrDomu: the street's name stays in street, the number here
    flat: str | None = None  # NrLokalu

    @field_validator("nip")
    @classmethod
    def _nip_check_digit(cls, nip: str) -> str:
        if not pl_nip.is_valid(nip):
            raise ValueError(f"{nip} is not a valid NIP (wrong check digit)")
        return nip


class SeriesSettings(_Strict):
    """A numbering series: ``{seq}`` is the number within the period; ``{MM}`` in the pattern makes the
    sequence start again every month, ``{YYYY}``/``{YY}`` (without ``{MM}``) every year, neither never."""

    pattern: str = Field(min_length=1, max_length=200)

    @field_validator("pattern")
    @classmethod
    def _has_seq(cls, pattern: str) -> str:
        fields = set(re.findall(r"{([^{}]*)}", pattern))
        unknown = fields - {"seq", "MM", "YYYY", "YY"}
        if unknown:
            raise ValueError(f"unknown field {{{sorted(unknown)[0]}}} (use {{seq}}, {{MM}}, {{YYYY}}, {{YY}})")
        if "seq" not in fields:
            raise ValueError("the pattern has no {seq}: numbers would repeat")
        if "MM" in fields and not fields & {"YYYY", "YY"}:
            raise ValueError("a monthly pattern needs the year too ({YYYY} or {YY}): numbers would repeat")
        return pattern


class OfflineCertificateSettings(_Strict):
    """The seller's KSeF certificate of type Offline (from KSeF's /certificates): it signs the second QR code
    (KOD II) an invoice issued in offline mode carries (kody-qr.md)."""

    certificate: str = Field(min_length=1)  # PEM file
    private_key: str = Field(min_length=1)  # PEM file: RSA 2048+ or EC P-256
    password_env: str | None = None  # the environment variable holding the key's password, if it has one
    context_type: Literal["Nip", "InternalId", "NipVatUe", "PeppolId"] = "Nip"
    context_id: str | None = None  # the login context's identifier; the seller's NIP when not given


class InvoicingSettings(_Strict):
    """Invoices: the seller, the numbering series, KSeF, and the VAT choices only the seller can make."""

    enabled: StrictBool = False
    seller: SellerSettings | None = None
    series: dict[str, SeriesSettings] = Field(default_factory=lambda: {
        "FV": SeriesSettings(pattern="FV/{seq}/{MM}/{YYYY}"), "FK": SeriesSettings(pattern="FK/{seq}/{MM}/{YYYY}")})
    invoice_series: str = "FV"  # VAT invoices
    correction_series: str = "FK"  # corrective invoices
    timezone: str = "Europe/Warsaw"  # invoice dates and numbering periods are the seller's calendar days
    ksef: str | None = None  # the KSeF connector's name; None: invoices are issued but not sent
    rates: str | None = None  # the exchange-rate connector (NBP); None: the only one configured
    # where the QR code on a PDF invoice leads (KSeF's verification page); KSeF's test environment:
    # "https://qr-test.ksef.mf.gov.pl", its demo: "https://qr-demo.ksef.mf.gov.pl"
    qr_host: str = Field("https://qr.ksef.mf.gov.pl", pattern=r"^https://[^/\s]+$")
    offline_certificate: OfflineCertificateSettings | None = None  # signs KOD II on offline invoices
    send_consumer_invoices: StrictBool = False  # B2C invoices to KSeF too (optional by law)
    consumer_window_days: StrictInt = Field(90, ge=1, le=366)  # how long a consumer may ask for an invoice
    payment_days: StrictInt = Field(14, ge=0, le=365)  # due date of an unpaid (bank transfer) invoice
    # the legal basis printed on exempt (zw) lines (P_19A: a provision of the act, e.g. "art. 113 ust. 1")
    exemption_basis: str | None = None
    # 0% for intra-EU supplies to a buyer with an EU VAT number (0 WDT) and for exports (0 EX): only when the
    # seller keeps the evidence the law asks for, so off unless the seller says so
    zero_rate_intra_eu: StrictBool = False
    zero_rate_export: StrictBool = False
    split_payment_threshold: Decimal = Decimal("15000.00")  # PLN gross (art. 108a ust. 1a)

    @model_validator(mode="after")
    def _series_exist(self) -> InvoicingSettings:
        for field_name in ("invoice_series", "correction_series"):
            name = getattr(self, field_name)
            if name not in self.series:
                raise ValueError(f"{field_name} {name!r} is not one of the series ({', '.join(sorted(self.series))})")
        if self.enabled and self.seller is None:
            raise ValueError("invoicing is enabled but [invoicing.seller] is missing")
        return self


class ConnectorSettings(BaseModel):
    """The part of ``[connectors.NAME]`` the spine reads; the rest is the connector's own."""

    model_config = ConfigDict(extra="allow", frozen=True)

    kind: str = Field(min_length=1)
    enabled: StrictBool = True
    rate_limit_per_minute: StrictInt | None = Field(None, ge=1)
    rate_limit_burst: StrictInt | None = Field(None, ge=1)
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
    shipping: ShippingSettings = ShippingSettings()
    invoicing: InvoicingSettings = InvoicingSettings()
    connectors: dict[str, ConnectorSettings] = Field(default_factory=dict)


@dataclass(frozen=True)
class LoadedConfig:
    settings: Settings
    path: Path | None
    env_keys: dict[str, str]
    # the environment the config was read with: connector options resolve their secrets in it too
    environ: Mapping[str, str] = field(default_factory=dict, repr=False)
    # what the file said, before the environment's overrides: tells which of them a problem lies in
    file_data: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @property
    def source_label(self) -> str:
        return str(self.path) if self.path else "built-in defaults"

    @property
    def label_dir(self) -> Path:
        """[shipping] label_dir, a relative one taken from the config file's folder."""
        folder = self.settings.shipping.label_dir
        if folder.is_absolute():
            return folder
        return (self.path.parent if self.path is not None else Path.cwd()) / folder

    def source_of(self, key: str) -> str:
        """Where the value at a dotted key (``connectors.erp.settle``) came from, for a problem's line:
        ``environment HUB_...`` when an override set it (or a table above it, or a key under it), else
        the config file."""
        return _source(tuple(key.split(".")), self.file_data, self.env_keys, self.source_label)


def _scalar_types(annotation: Any) -> set[Any]:
    """The plain types an annotation stands for: ``Annotated[int, ...] | None`` -> {int, NoneType}."""
    origin = get_origin(annotation)
    if origin is Annotated:
        return _scalar_types(get_args(annotation)[0])
    if origin is Union or origin is types.UnionType:
        return set().union(*(_scalar_types(arg) for arg in get_args(annotation)))
    return {annotation}


def _field_annotation(parts: list[str]) -> Any:
    """The annotation of the setting at ``parts`` (None for a table, an unknown key or a connector's
    own option, which its connector validates)."""
    model: type[BaseModel] = Settings
    i = 0
    while i < len(parts):
        info = model.model_fields.get(parts[i])
        if info is None:
            return None
        annotation = info.annotation
        i += 1
        if get_origin(annotation) is dict:  # [schedule.NAME], [connectors.NAME]: a name, then the entry's keys
            if i == len(parts):
                return None
            annotation = get_args(annotation)[1]
            i += 1
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            model = annotation
            continue
        return annotation if i == len(parts) else None
    return None


def _env_value(parts: list[str], raw: str) -> Any:
    """An override arrives as text; a boolean or integer setting reads it as TOML would (``8``,
    ``true``), so ``HUB_WORKER__CONCURRENCY=8`` is the number 8. Every other setting (a duration,
    a URL, a secret, a connector's option) keeps the text."""
    if not _scalar_types(_field_annotation(parts)) & {bool, int}:
        return raw
    if "\n" in raw or "\r" in raw:
        return raw
    try:
        parsed = tomllib.loads(f"v = {raw}")
    except tomllib.TOMLDecodeError:
        return raw
    value = parsed.get("v")
    return value if len(parsed) == 1 and isinstance(value, bool | int | float) else raw


def _env_overrides(environ: Mapping[str, str]) -> tuple[dict[str, Any], dict[str, str], list[str]]:
    """``HUB_WORKER__CONCURRENCY=8`` -> {"worker": {"concurrency": 8}}; keys map back to variables.
    The third item lists the variables that cannot be applied (an empty part, two for one key)."""
    data: dict[str, Any] = {}
    origin: dict[str, str] = {}
    problems: list[str] = []
    for name in sorted(environ):
        if not name.startswith(ENV_PREFIX) or ENV_NESTING not in name:
            continue
        parts = [p.lower() for p in name[len(ENV_PREFIX):].split(ENV_NESTING)]
        if any(not p for p in parts):
            problems.append(f"environment {name}: not a config key: an override is HUB_SECTION__KEY "
                            "(parts joined by two underscores, none empty)")
            continue
        key = ".".join(parts)
        clash = next((other for k, other in origin.items()
                      if k == key or k.startswith(f"{key}.") or key.startswith(f"{k}.")), None)
        if clash is not None:
            problems.append(f"environment {name}: {key}: clashes with {clash} (a key takes one value, "
                            "which is either a value or a table)")
            continue
        node = data
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = _env_value(parts, environ[name])
        origin[key] = name
    return data, origin, problems


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


def _source(loc: tuple[Any, ...], file_data: Mapping[str, Any], env_keys: Mapping[str, str], file_label: str) -> str:
    """Who set the value at ``loc``: an override at or above it; overrides under it (with the file too
    when the file's table is still there); overrides beside a missing key of a table only they made;
    else the file."""
    keys = [str(p) for p in loc]
    for i in range(len(keys), 0, -1):
        env = env_keys.get(".".join(keys[:i]))
        if env:
            return f"environment {env}"
    for i in range(len(keys), 0, -1):
        prefix = ".".join(keys[:i])
        under = sorted(env for key, env in env_keys.items() if key.startswith(f"{prefix}."))
        if not under:
            continue
        found, in_file = _lookup(file_data, tuple(keys[:i]))
        names = f"environment {', '.join(under)}"
        if i == len(keys):  # the value itself holds overrides
            return f"{file_label} and {names}" if found and isinstance(in_file, Mapping) else names
        return file_label if found else names  # a key of a table the overrides alone made
    return file_label


def _describe(err: Mapping[str, Any], data: Mapping[str, Any], file_data: Mapping[str, Any], file_label: str,
              env_keys: Mapping[str, str]) -> str:
    loc = tuple(p for p in err["loc"] if not (isinstance(p, str) and p.startswith(("function-", "lax-"))))
    # pydantic names union/validator branches in loc; keep only real keys
    loc = tuple(p for p in loc if p not in ("str", "int", "float", "bool", "dict[str,any]"))
    key = ".".join(str(p) for p in loc) or "(top level)"
    source = _source(loc, file_data, env_keys, file_label)
    message = str(err["msg"]).removeprefix("Value error, ")
    if err["type"] == "extra_forbidden":
        message = "unknown key"
    elif err["type"] == "bool_type":
        message = "expected true or false (a TOML boolean, unquoted)"
    elif err["type"] == "int_type":
        message = "expected a whole number (a TOML integer, unquoted)"
    if err["type"] == "missing":
        return f"{source}: {key}: missing (required)"
    found, value = _lookup(data, loc)
    if not found:
        value = err.get("input")
    if "secret" in key.lower() or "password" in key.lower() or "token" in key.lower():
        shown = "<hidden>" if isinstance(value, str) else repr(value)
    elif key == "database.url" and isinstance(value, str):
        shown = repr(redacted_url(value))  # a URL may carry the password
    else:
        shown = repr(value)
    return f"{source}: {key} = {shown}: {message}"


_BOM = "\ufeff".encode()  # Notepad starts its UTF-8 with one


def _read(cfg_path: Path, explicit: bool) -> dict[str, Any] | None:
    """The file's tables; None when there is no file and none was asked for. A file the hub may not
    read is the environment's failure (exit 1); a missing, non-UTF-8 or non-TOML one is bad input."""
    try:
        raw = cfg_path.read_bytes()
    except (FileNotFoundError, NotADirectoryError):
        if explicit:
            raise ConfigError([f"{cfg_path}: config file not found"]) from None
        return None
    except IsADirectoryError as exc:
        raise ConfigError([f"{cfg_path}: cannot read: {exc.strerror}"]) from None
    except OSError as exc:
        raise EnvironmentFailure(f"{cfg_path}: cannot read: {exc.strerror or exc}") from None
    bom = len(_BOM) if raw.startswith(_BOM) else 0
    try:
        text = raw[bom:].decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError([f"{cfg_path}: not UTF-8 text (byte 0x{exc.object[exc.start]:02x} at offset "
                           f"{exc.start + bom}): save the file as UTF-8"]) from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError([f"{cfg_path}: invalid TOML: {exc}"]) from None



def load(path: str | os.PathLike[str] | None = None, environ: Mapping[str, str] | None = None) -> LoadedConfig:
    """Read, merge and validate; raise ConfigError listing every problem (EnvironmentFailure when the
    file exists but cannot be read)."""
    environ = os.environ if environ is None else environ
    explicit = path is not None or bool(environ.get("HUB_CONFIG"))
    cfg_path = Path(path if path is not None else environ.get("HUB_CONFIG") or DEFAULT_PATH)
    read = _read(cfg_path, explicit)
    resolved = cfg_path.resolve() if read is not None else None
    file_data: dict[str, Any] = read or {}

    env_data, env_keys, env_problems = _env_overrides(environ)
    if env_problems:
        raise ConfigError(env_problems)
    data = _merge(file_data, env_data)
    mappings_dir = (data.get("mappings") or {}).get("dir") if isinstance(data.get("mappings"), dict) else None
    if isinstance(mappings_dir, str) and resolved is not None and not Path(mappings_dir).is_absolute():
        data["mappings"] = {**data["mappings"], "dir": str(resolved.parent / mappings_dir)}
    file_label = str(cfg_path) if resolved else "defaults"
    try:
        settings = Settings.model_validate(data, context={"environ": environ})
    except ValidationError as exc:
        problems = [_describe(e, data, file_data, file_label, env_keys) for e in exc.errors()]
        raise ConfigError(problems) from None
    problems = [
        f"{_source(('schedule', name, 'job'), file_data, env_keys, file_label)}: schedule.{name}.job = "
        f"{entry.job!r}: job kinds are lower-case words joined by dots"
        for name, entry in settings.schedule.items()
        if not re.fullmatch(r"[a-z0-9_]+(\.[a-z0-9_]+)*", entry.job)
    ]
    if problems:
        raise ConfigError(problems)
    return LoadedConfig(settings=settings, path=resolved, env_keys=env_keys, environ=dict(environ),
                        file_data=file_data)


def redacted_url(url: str) -> str:
    """A database URL fit for printing: the password is masked."""
    return re.sub(r"(://[^:/@]+):[^@]*@", r"\1:***@", url)
