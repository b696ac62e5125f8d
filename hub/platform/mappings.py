"""Mappings: declarative TOML a seller edits without touching code.

The hub ships defaults (the repo's mappings/, installed as hub/_mappings). A
directory named in the config (``[mappings] dir``) overrides them file by
file: a ``pricing.toml`` there replaces the shipped one. Each file has a
schema; ``load_all`` validates every file and reports file, key and value.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from hub.kernel.errors import ConfigError

SHIPPED_DIR = Path(__file__).resolve().parents[1] / "_mappings"


# file name -> schema. Each capability registers its own files where it defines their schema
# (listings: pricing.toml, stock.toml; orders: automation.toml, order_status.toml; a connector its
# own): the platform knows no capability.
# (The Polish VAT codes are law, not a seller's setting: hub.kernel.vat holds them, no mappings file.)
SCHEMAS: dict[str, type[BaseModel]] = {}


def register_schema(filename: str, model: type[BaseModel]) -> None:
    SCHEMAS[filename] = model


@dataclass(frozen=True)
class MappingFile:
    name: str
    path: Path
    overridden: bool
    data: BaseModel


def _locate(override_dir: Path | None) -> tuple[dict[str, tuple[Path, bool]], list[str]]:
    found: dict[str, tuple[Path, bool]] = {}
    problems: list[str] = []
    for path in sorted(SHIPPED_DIR.glob("*.toml")):
        found[path.name] = (path, False)
    if override_dir is not None:
        if not override_dir.is_dir():
            problems.append(f"mappings.dir = {str(override_dir)!r}: not a directory")
        else:
            for path in sorted(override_dir.glob("*.toml")):
                if path.name not in SCHEMAS:
                    known = ", ".join(sorted(SCHEMAS))
                    problems.append(f"{path}: unknown mappings file (known: {known})")
                    continue
                found[path.name] = (path, True)
    return found, problems


def _value_at(data: Any, loc: tuple[Any, ...]) -> Any:
    for part in loc:
        in_list = isinstance(data, list) and isinstance(part, int) and 0 <= part < len(data)
        if (isinstance(data, dict) and part in data) or in_list:
            data = data[part]
        else:
            return None
    return data


def validate_file(path: Path, schema: type[BaseModel]) -> tuple[BaseModel | None, list[str]]:
    """Read and validate one TOML file against a schema; each problem names the file, key and value.

    Also for TOML files a connector option points to (e.g. the sql ERP's queries file).
    """
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        return None, [f"{path}: invalid TOML: {exc}"]
    except UnicodeDecodeError as exc:
        return None, [f"{path}: not UTF-8 text (byte 0x{exc.object[exc.start]:02x} at offset {exc.start}): save the "
                      "file as UTF-8"]
    except OSError as exc:
        return None, [f"{path}: cannot read: {exc.strerror or exc}"]
    try:
        return schema.model_validate(raw), []
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            key = ".".join(str(p) for p in err["loc"]) or "(top level)"
            msg = "unknown key" if err["type"] == "extra_forbidden" else str(err["msg"]).removeprefix(
                "Value error, ")
            if err["type"] == "missing":
                problems.append(f"{path}: {key}: missing (required)")
            elif not err["loc"]:  # a rule across keys: the message names them
                problems.append(f"{path}: {msg}")
            else:
                problems.append(f"{path}: {key} = {_value_at(raw, err['loc'])!r}: {msg}")
        return None, problems


def load_all(override_dir: Path | None) -> dict[str, MappingFile]:
    """Load and validate every mappings file; raise ConfigError with all problems."""
    found, problems = _locate(override_dir)
    loaded: dict[str, MappingFile] = {}
    for name, (path, overridden) in sorted(found.items()):
        schema = SCHEMAS.get(name)
        if schema is None:
            continue  # a shipped file for a capability this build does not have
        data, file_problems = validate_file(path, schema)
        problems.extend(file_problems)
        if data is not None:
            loaded[name] = MappingFile(name, path, overridden, data)
    if problems:
        raise ConfigError(problems)
    return loaded
