"""What every command starts from: its config and database, and the argument types they share."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import NoReturn

from sqlalchemy import Engine, make_url

from hub.kernel.errors import ConfigError, HubError
from hub.platform import db, registry
from hub.platform.config import LoadedConfig, load
from hub.platform.logs import configure as configure_logging

EXIT_USAGE = 2
EXIT_FAILURE = 1
MAX_ID = 2**63 - 1  # ids are 64-bit integers in the database


class Parser(argparse.ArgumentParser):
    """Bad arguments: one line and exit code 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: {message} (see {self.prog} --help)\n")


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a number greater than 0, got {text!r}")
    if value > MAX_ID:
        raise argparse.ArgumentTypeError(f"expected a number up to {MAX_ID}, got {text!r}")
    return value


def load_config(args: argparse.Namespace) -> LoadedConfig:
    return load(getattr(args, "config", None))


def runtime(args: argparse.Namespace) -> tuple[LoadedConfig, Engine]:
    """Config (validated, connectors included) and a migrated database, for connector commands."""
    loaded = load_config(args)
    problems = registry.validate_connectors(loaded)
    if problems:
        raise ConfigError(problems)
    command_logging(loaded, args)
    return loaded, engine_for(loaded)


def command_logging(loaded: LoadedConfig, args: argparse.Namespace) -> None:
    """A one-shot command prints what it did, and a failure as one line; the log's warnings (which that
    line repeats) reach stderr only with --verbose. The daemon, `hub run`, logs at the configured level."""
    settings = loaded.settings.log
    if not getattr(args, "verbose", False) and _LEVELS.index(settings.level) < _LEVELS.index("error"):
        settings = settings.model_copy(update={"level": "error"})
    configure_logging(settings)


_LEVELS = ("debug", "info", "warning", "error")


def sqlite_folder(loaded: LoadedConfig) -> Path | None:
    """The folder of a SQLite database file (None for PostgreSQL or an in-memory database)."""
    url = make_url(loaded.settings.database.url)
    if url.get_backend_name() != "sqlite" or not url.database or url.database == ":memory:":
        return None
    return Path(url.database).expanduser().parent


def engine_for(loaded: LoadedConfig, *, migrated: bool = True) -> Engine:
    folder = sqlite_folder(loaded)
    if folder is not None and not folder.is_dir():
        raise HubError(f"{loaded.source_label}: database.url = {loaded.settings.database.url!r}: the folder {folder} "
                       "does not exist (hub init creates it and the database)")
    engine = db.make_engine(loaded.settings.database)
    if migrated:
        db.require_migrated(engine)
    return engine


def connector_named(loaded: LoadedConfig, name: str, role: str) -> str:
    """A --channel or --erp filter must name a configured connector of that role (exit 2 otherwise)."""
    names = registry.names_with_role(loaded, role)
    if name not in names:
        what = {"channel": "channel", "erp": "ERP", "carrier": "carrier"}.get(role, role)
        raise HubError(f"no {what} named {name!r} in the config (configured: {', '.join(names) or 'none'})")
    return name
