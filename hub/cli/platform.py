"""``hub init`` and ``hub config check``: the database schema and the whole configuration."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from hub.cli.context import command_logging, engine_for, load_config, sqlite_folder
from hub.cli.output import emit_json
from hub.cli.output import say as _say
from hub.kernel.errors import ConfigError
from hub.platform import db, registry
from hub.platform.config import LoadedConfig, redacted_url


def add_parsers(sub: Any, common: argparse.ArgumentParser, listing: argparse.ArgumentParser,
                parser_class: type[argparse.ArgumentParser]) -> None:
    sub.add_parser("init", parents=[common], help="create or migrate the database").set_defaults(func=cmd_init)
    config = sub.add_parser("config", parents=[common], help="configuration")
    config_sub = config.add_subparsers(dest="config_command", required=True, parser_class=parser_class,
                                       metavar="ACTION")
    config_sub.add_parser("check", parents=[common, listing],
                          help="validate the config and every mappings file and print a summary"
                          ).set_defaults(func=cmd_config_check)


def cmd_init(args: argparse.Namespace) -> int:
    loaded = load_config(args)
    command_logging(loaded, args)
    folder = sqlite_folder(loaded)
    if folder is not None and not folder.is_dir():
        folder.mkdir(parents=True)
        _say(f"created the database folder {folder}")
    engine = engine_for(loaded, migrated=False)
    before = db.schema_state(engine)
    db.upgrade(engine)
    after = db.schema_state(engine)
    where = redacted_url(loaded.settings.database.url)
    if before.current == after.current:
        _say(f"database {where} is up to date (revision {after.current})")
    else:
        _say(f"database {where} migrated from {before.current or 'empty'} to {after.current}")
    return 0


def check_all(loaded: LoadedConfig) -> tuple[Any, Any]:
    from hub.app.references import unknown_connectors
    from hub.app.wiring import build_handlers
    from hub.jobs.daemon import schedule_problems
    from hub.platform.mappings import load_all

    problems = registry.validate_connectors(loaded)
    mappings: dict[str, Any] = {}
    try:
        mappings = load_all(loaded.settings.mappings.dir)
    except ConfigError as exc:
        problems.extend(exc.problems)
    if not problems:
        problems.extend(unknown_connectors(loaded, mappings))
    handlers = None
    if not problems:
        handlers = build_handlers(loaded)
        problems.extend(schedule_problems(loaded, handlers))
    if problems:
        raise ConfigError(problems)
    return mappings, handlers


def _writes_to(loaded: LoadedConfig) -> dict[str, list[str]]:
    """Every folder the config makes the hub write into: the connectors' (an ERP outbox), and the
    shipping labels when a carrier is configured."""
    writes = {name: [str(p) for p in paths] for name, paths in registry.written_paths(loaded).items()}
    if registry.names_with_role(loaded, "carrier"):
        writes["shipping labels"] = [str(loaded.label_dir)]
    return writes


def cmd_config_check(args: argparse.Namespace) -> int:
    loaded = load_config(args)
    mappings, handlers = check_all(loaded)
    s = loaded.settings
    summary = {
        "config": str(loaded.path) if loaded.path else None,
        "environment_overrides": sorted(loaded.env_keys.values()),
        "database": redacted_url(s.database.url),
        "worker": s.worker.model_dump(),
        "scheduler": s.scheduler.model_dump(),
        "schedule": {n: {"job": e.job, "every_seconds": e.every, "enabled": e.enabled}
                     for n, e in sorted(s.schedule.items())},
        "connectors": {n: {"kind": c.kind, "enabled": c.enabled} for n, c in sorted(s.connectors.items())},
        "mappings": {n: {"path": str(m.path), "overridden": m.overridden} for n, m in sorted(mappings.items())},
        "job_kinds": sorted(handlers.kinds()),
        "metrics": f"http://{s.metrics.host}:{s.metrics.port}/metrics" if s.metrics.enabled else None,
        "writes_to": _writes_to(loaded),
        "warnings": registry.path_warnings(loaded),
    }
    if args.json:
        emit_json(summary)
        return 0
    _say(f"config: {loaded.source_label} is valid")
    if loaded.env_keys:
        _say(f"  environment overrides: {', '.join(sorted(loaded.env_keys.values()))}")
    _say(f"database: {summary['database']}")
    w = s.worker
    _say(f"workers: {w.concurrency} threads, batch {w.batch_size}, lease {w.lease:g}s, "
         f"max attempts {w.max_attempts}, backoff {w.backoff_initial:g}s..{w.backoff_max:g}s")
    _say(f"schedule ({len(s.schedule)}):")
    for name, e in sorted(s.schedule.items()):
        _say(f"  {name}: {e.job} every {e.every:g}s{'' if e.enabled else ' (disabled)'}")
    _say(f"connectors ({len(s.connectors)}):")
    for name, c in sorted(s.connectors.items()):
        _say(f"  {name}: {c.kind}{'' if c.enabled else ' (disabled)'}")
    _say(f"mappings ({len(mappings)}):")
    for name, m in sorted(mappings.items()):
        _say(f"  {name}: {m.path}{' (override)' if m.overridden else ''}")
    _say(f"metrics: {summary['metrics'] or 'off'}")
    writes = summary["writes_to"]
    _say("writes to (under systemd, list each in ReadWritePaths=): "
         + ("; ".join(f"{name}: {', '.join(paths)}" for name, paths in writes.items()) or "only the database"))
    for warning in summary["warnings"]:  # the config is valid; this machine is not ready for it yet
        print(f"warning: {warning}", file=sys.stderr)
    return 0
