"""structlog set-up: JSON lines off a terminal, console on one; secrets never reach the log.

Redaction runs last before rendering, on our own events and on every stdlib
logger (httpx, zeep, SQLAlchemy, APScheduler), after exceptions are formatted,
so a token inside a URL, a nested payload, a header or a traceback is masked.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Mapping
from typing import IO, Any

import structlog

from hub.platform.config import LogSettings, known_secret_values

MASK = "***"

SENSITIVE_KEY = re.compile(
    r"(pass(word|wd)?|secret|token|authori[sz]ation|api[_-]?key|cookie|credential|private[_-]?key"
    r"|client[_-]?secret|refresh|session[_-]?id|signature|dsn)",
    re.IGNORECASE,
)
# user:password@ in URLs (also postgresql://user:pw@host)
_URL_USERINFO = re.compile(r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.\-]*://)(?P<user>[^/\s:@]*):(?P<pw>[^/\s@]+)@")
# ?access_token=...&client_secret=... in URLs and form bodies
_QUERY_SECRET = re.compile(
    r"(?P<key>(?:access_token|refresh_token|id_token|token|client_secret|password|passwd|api_key|apikey|"
    r"secret|code|device_code|signature|key)=)(?P<value>[^&\s\"']+)",
    re.IGNORECASE,
)
_AUTH_HEADER = re.compile(r"\b(?P<scheme>Bearer|Basic|Token|Digest)\s+(?P<cred>[A-Za-z0-9._~+/=\-]{4,})", re.IGNORECASE)
# "password": "x" / password='x' inside reprs and JSON text
_INLINE_PAIR = re.compile(
    r"(?P<key>[\"']?(?:[a-z_]*(?:password|passwd|secret|token|api_key|apikey|authorization))[\"']?\s*[:=]\s*)"
    r"(?P<q>[\"']?)(?P<value>[^\"',&\s}\]]+)(?P=q)",
    re.IGNORECASE,
)


# shorter "secrets" (a test's "secret", a demo's "cs") would mask ordinary words everywhere; real
# tokens, keys and passwords are longer, and their usual shapes are masked by the patterns below
MIN_SECRET_LENGTH = 8


def redact_text(value: str, secrets: frozenset[str] | None = None) -> str:
    for secret in secrets if secrets is not None else known_secret_values():
        if len(secret) >= MIN_SECRET_LENGTH and secret in value:
            value = value.replace(secret, MASK)
    value = _URL_USERINFO.sub(lambda m: f"{m['scheme']}{m['user']}:{MASK}@", value)
    value = _QUERY_SECRET.sub(lambda m: f"{m['key']}{MASK}", value)
    value = _AUTH_HEADER.sub(lambda m: f"{m['scheme']} {MASK}", value)
    value = _INLINE_PAIR.sub(lambda m: f"{m['key']}{m['q']}{MASK}{m['q']}", value)
    return value


def redact(value: Any, secrets: frozenset[str] | None = None, _depth: int = 0) -> Any:
    """Mask sensitive keys and secret-looking substrings in any nested structure."""
    if secrets is None:
        secrets = known_secret_values()
    if _depth > 20:
        return MASK
    if isinstance(value, str):
        return redact_text(value, secrets)
    if isinstance(value, Mapping):
        out = {}
        for k, v in value.items():
            if isinstance(k, str) and SENSITIVE_KEY.search(k) and v is not None and not isinstance(v, bool):
                out[k] = MASK
            else:
                out[k] = redact(v, secrets, _depth + 1)
        return out
    if isinstance(value, list | tuple | set | frozenset):
        return [redact(v, secrets, _depth + 1) for v in value]
    if isinstance(value, bytes):
        return redact_text(value.decode("utf-8", "replace"), secrets)
    if isinstance(value, int | float | bool) or value is None:
        return value
    return redact_text(str(value), secrets)


def _redact_processor(_logger: Any, _name: str, event: dict[str, Any]) -> dict[str, Any]:
    secrets = known_secret_values()
    return {
        k: (v if k in ("timestamp", "level", "logger") else redact({k: v}, secrets)[k])
        for k, v in event.items()
    }


def _shared_processors() -> list[Any]:
    return [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.stdlib.PositionalArgumentsFormatter(),
    ]


def configure(settings: LogSettings, stream: IO[str] | None = None) -> None:
    stream = stream or sys.stderr
    fmt = settings.format
    if fmt == "auto":
        fmt = "console" if getattr(stream, "isatty", lambda: False)() else "json"
    renderer: Any = (
        structlog.dev.ConsoleRenderer(colors=True, exception_formatter=structlog.dev.plain_traceback)
        if fmt == "console"
        else structlog.processors.JSONRenderer(default=str)
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=_shared_processors(),
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            _redact_processor,
            renderer,
        ],
    )
    handler = logging.StreamHandler(stream)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(settings.level.upper())
    # third-party chatter stays at warning unless we debug
    noisy_level = logging.DEBUG if settings.level == "debug" else logging.WARNING
    for name in ("sqlalchemy", "apscheduler", "httpx", "httpcore", "zeep", "urllib3", "alembic"):
        logging.getLogger(name).setLevel(max(noisy_level, root.level))
    structlog.configure(
        processors=[*_shared_processors(), structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=False,
    )


def get_logger(name: str = "hub") -> Any:
    return structlog.get_logger(name)
