"""``hub``: init, run, config check, status, jobs, demo.

Bad arguments, bad config and unknown ids end with a one-line message on
stderr and exit code 2, never a traceback.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from importlib.metadata import entry_points
from typing import Any, NoReturn

from sqlalchemy import Engine
from sqlalchemy.exc import OperationalError

from hub.cli.output import emit_json, table
from hub.cli.output import say as _say
from hub.jobs import queue
from hub.jobs.models import JOB_STATES
from hub.kernel.errors import ConfigError, HubError, NotFoundError
from hub.platform import db, registry
from hub.platform.config import LoadedConfig, load, redacted_url
from hub.platform.logs import configure as configure_logging

EXIT_USAGE = 2


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: {message} (see {self.prog} --help)\n")


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a number greater than 0, got {text!r}")
    return value


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--config", default=argparse.SUPPRESS, metavar="PATH",
                        help="config file (default ./hub.toml, or $HUB_CONFIG)")
    listing = argparse.ArgumentParser(add_help=False)
    listing.add_argument("--json", action="store_true", help="machine-readable output")

    parser = _Parser(prog="hub", description="Multichannel commerce hub: admin command line.",
                     parents=[common])
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser, metavar="COMMAND")

    sub.add_parser("init", parents=[common], help="create or migrate the database")

    run = sub.add_parser("run", parents=[common], help="run the daemon (workers and schedule)")
    run.add_argument("--once", action="store_true",
                     help="run every periodic job once, drain the queue and exit (1 if a job went dead)")
    run.add_argument("--migrate", action="store_true", help="migrate the database first")
    run.add_argument("--timeout", type=_positive_int, default=600, metavar="SECONDS",
                     help="with --once: give up draining after this long (default 600)")

    config = sub.add_parser("config", parents=[common], help="configuration")
    config_sub = config.add_subparsers(dest="config_command", required=True, parser_class=_Parser,
                                       metavar="ACTION")
    config_sub.add_parser("check", parents=[common, listing],
                          help="validate the config and every mappings file and print a summary")

    sub.add_parser("status", parents=[common, listing],
                   help="queue depth, dead jobs, periodic jobs and connector health")

    jobs = sub.add_parser("jobs", parents=[common], help="inspect and steer the job queue")
    jobs_sub = jobs.add_subparsers(dest="jobs_command", required=True, parser_class=_Parser, metavar="ACTION")
    jl = jobs_sub.add_parser("list", parents=[common, listing], help="list jobs, newest first")
    jl.add_argument("--state", choices=JOB_STATES)
    jl.add_argument("--kind")
    jl.add_argument("--limit", type=_positive_int, default=50)
    js = jobs_sub.add_parser("show", parents=[common, listing], help="one job with its error history")
    js.add_argument("id", type=_positive_int)
    jr = jobs_sub.add_parser("retry", parents=[common, listing], help="run a dead, retrying or cancelled job now")
    target = jr.add_mutually_exclusive_group(required=True)
    target.add_argument("id", type=_positive_int, nargs="?")
    target.add_argument("--dead", action="store_true", help="every dead job")
    jr.add_argument("--kind", help="with --dead: only jobs of this kind")
    jc = jobs_sub.add_parser("cancel", parents=[common, listing], help="cancel a job that is not running")
    jc.add_argument("id", type=_positive_int)

    from hub.cli.listings import add_parsers as add_sync_parsers

    add_sync_parsers(sub, common, listing, _Parser)
    from hub.cli.orders import add_parsers as add_order_parsers

    add_order_parsers(sub, common, listing, _Parser)

    hook = CommandHook(sub, common)
    for spec in sorted(registry.specs().values(), key=lambda s: s.kind):
        if spec.cli is not None:
            spec.cli(hook)
    for ep in sorted(entry_points(group=COMMANDS_GROUP), key=lambda e: e.name):
        ep.load()(hook)
    return parser


COMMANDS_GROUP = "hub.commands"  # entry points adding commands (the demo) without hub/ importing them


class CommandHook:
    """What a connector's ``cli`` hook and a ``hub.commands`` entry point get: a way to add commands."""

    def __init__(self, sub: Any, common: argparse.ArgumentParser):
        self._sub = sub
        self._common = common

    def add_group(self, name: str, help: str) -> Any:
        """Returns a subparsers object; each action's parser must set_defaults(func=...)."""
        group = self._sub.add_parser(name, parents=[self._common], help=help)
        return group.add_subparsers(dest=f"{name}_command", required=True, parser_class=_Parser, metavar="ACTION")

    def add_command(self, name: str, help: str) -> Any:
        """A top-level command; its parser must set_defaults(func=...)."""
        return self._sub.add_parser(name, parents=[self._common], help=help)

    @property
    def common(self) -> argparse.ArgumentParser:
        return self._common


# --- helpers ----------------------------------------------------------------------


def _load(args: argparse.Namespace) -> LoadedConfig:
    return load(getattr(args, "config", None))


def runtime(args: argparse.Namespace) -> tuple[LoadedConfig, Engine]:
    """Config (validated, connectors included) and a migrated database, for connector commands."""
    loaded = _load(args)
    problems = registry.validate_connectors(loaded)
    if problems:
        raise ConfigError(problems)
    configure_logging(loaded.settings.log)
    return loaded, _engine(loaded)


def _engine(loaded: LoadedConfig, *, migrated: bool = True) -> Engine:
    engine = db.make_engine(loaded.settings.database)
    if migrated:
        db.require_migrated(engine)
    return engine


# --- commands ------------------------------------------------------------------------


def cmd_init(args: argparse.Namespace) -> int:
    loaded = _load(args)
    configure_logging(loaded.settings.log)
    engine = _engine(loaded, migrated=False)
    before = db.schema_state(engine)
    db.upgrade(engine)
    after = db.schema_state(engine)
    where = redacted_url(loaded.settings.database.url)
    if before.current == after.current:
        _say(f"database {where} is up to date (revision {after.current})")
    else:
        _say(f"database {where} migrated from {before.current or 'empty'} to {after.current}")
    return 0


def _check_all(loaded: LoadedConfig) -> tuple[Any, Any]:
    from hub.app.wiring import build_handlers
    from hub.jobs.daemon import schedule_problems
    from hub.platform.mappings import load_all

    problems = registry.validate_connectors(loaded)
    mappings: dict[str, Any] = {}
    try:
        mappings = load_all(loaded.settings.mappings.dir)
    except ConfigError as exc:
        problems.extend(exc.problems)
    handlers = None
    if not problems:
        handlers = build_handlers(loaded)
        problems.extend(schedule_problems(loaded, handlers))
    if problems:
        raise ConfigError(problems)
    return mappings, handlers


def cmd_config_check(args: argparse.Namespace) -> int:
    loaded = _load(args)
    mappings, handlers = _check_all(loaded)
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
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    from hub.jobs.daemon import Daemon

    loaded = _load(args)
    configure_logging(loaded.settings.log)
    _, handlers = _check_all(loaded)
    engine = _engine(loaded, migrated=False)
    if args.migrate:
        db.upgrade(engine)
    db.require_migrated(engine)
    daemon = Daemon(loaded, engine, handlers)
    if args.once:
        return daemon.run_once(timeout=args.timeout)
    return daemon.serve()


def cmd_status(args: argparse.Namespace) -> int:
    from hub.app.status import status

    loaded = _load(args)
    engine = _engine(loaded)
    with db.transaction(engine) as session:
        data = status(engine, session, loaded)
    if args.json:
        emit_json(data)
        return 0
    q = data["queue"]
    _say("queue:  " + "  ".join(f"{state} {count}" for state, count in q.items()))
    o = data["orders"]
    _say(f"orders with problems: {o['problems']} ({o['oversold']} oversold) - hub orders list --problems")
    _say()
    _say(f"dead jobs ({len(data['dead_jobs'])} shown):")
    table(data["dead_jobs"], ["id", "kind", "attempts", "updated_at", "last_error"])
    _say()
    _say("periodic jobs:")
    table(data["schedule"], ["name", "job", "every_seconds", "last_fired_at", "last_job_id", "last_job_state"],
          empty="(none configured)")
    _say()
    _say("connectors:")
    table(data["connectors"], ["name", "kind", "health", "last_ok_at", "last_error_at", "last_error"],
          empty="(none configured)")
    return 0


def cmd_jobs(args: argparse.Namespace) -> int:
    from hub.app.status import job_detail, list_jobs

    loaded = _load(args)
    engine = _engine(loaded)
    action = args.jobs_command
    with db.transaction(engine) as session:
        if action == "list":
            rows = list_jobs(session, state=args.state, kind=args.kind, limit=args.limit)
            if args.json:
                emit_json(rows)
            else:
                table(rows, ["id", "kind", "state", "attempts", "run_at", "last_error"], empty="(no jobs)")
            return 0
        if action == "show":
            detail = job_detail(session, args.id)
            if args.json:
                emit_json(detail)
                return 0
            for key in ("id", "kind", "state", "attempts", "max_attempts", "connector", "priority",
                        "idempotency_key", "run_at", "created_at", "started_at", "finished_at",
                        "lease_owner", "lease_expires_at", "last_error"):
                _say(f"{key + ':':18}{'-' if detail[key] is None else detail[key]}")
            _say("payload:")
            emit_json(detail["payload"])
            if detail["result"] is not None:
                _say("result:")
                emit_json(detail["result"])
            _say(f"error history ({len(detail['errors'])}):")
            table(detail["errors"], ["attempt", "outcome", "at", "worker", "error"], max_width=100)
            return 0
        if action == "retry":
            if args.dead:
                ids = queue.retry_dead(session, args.kind)
            else:
                job_detail(session, args.id)  # NotFoundError for an unknown id
                ids = queue.retry(session, [args.id])
                if not ids:
                    state = job_detail(session, args.id)["state"]
                    raise HubError(f"job {args.id} is {state}; only dead, failed-retrying or cancelled jobs "
                                   "can be retried")
            if args.json:
                emit_json({"retried": ids})
            else:
                _say(f"queued again: {len(ids)} job(s)" + (f" ({', '.join(map(str, ids))})" if ids else ""))
            return 0
        if action == "cancel":
            job_detail(session, args.id)
            if not queue.cancel(session, args.id):
                state = job_detail(session, args.id)["state"]
                raise HubError(f"job {args.id} is {state}; only pending, failed-retrying or dead jobs "
                               "can be cancelled")
            if args.json:
                emit_json({"cancelled": args.id})
            else:
                _say(f"job {args.id} cancelled")
            return 0
    raise AssertionError(action)


COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {
    "init": cmd_init,
    "run": cmd_run,
    "status": cmd_status,
    "jobs": cmd_jobs,
}


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if getattr(args, "func", None) is not None:
        handler = args.func
    elif args.command == "config":
        handler = cmd_config_check
    else:
        handler = COMMANDS[args.command]
    try:
        return handler(args)
    except ConfigError as exc:
        for problem in exc.problems:
            sys.stderr.write(f"hub: {problem}\n")
        return EXIT_USAGE
    except NotFoundError as exc:
        sys.stderr.write(f"hub: {exc}\n")
        return EXIT_USAGE
    except HubError as exc:
        sys.stderr.write(f"hub: {exc}\n")
        return EXIT_USAGE
    except OperationalError as exc:
        reason = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
        sys.stderr.write(f"hub: database error: {reason}\n")
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
