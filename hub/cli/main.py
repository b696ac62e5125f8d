"""``hub``: the admin command line. One module per capability adds its commands; connectors and
the ``hub.commands`` entry points (the demo) add theirs.

Bad arguments, bad config and unknown ids end with a one-line message on
stderr and exit code 2, never a traceback.
"""

from __future__ import annotations

import argparse
import os
import sys
import traceback
from collections.abc import Sequence
from importlib.metadata import entry_points
from typing import Any

from sqlalchemy.exc import DBAPIError

from hub.cli import catalog, invoicing, jobs, listings, orders, platform, shipping
from hub.cli.context import EXIT_FAILURE, EXIT_USAGE, Parser
from hub.kernel.errors import ConfigError, EnvironmentFailure, HubError, PermanentError, RetryableError
from hub.platform import registry


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--config", default=argparse.SUPPRESS, metavar="PATH",
                        help="config file (default ./hub.toml, or $HUB_CONFIG)")
    common.add_argument("--verbose", action="store_true", default=argparse.SUPPRESS,
                        help="on a failure, also print the traceback (for a bug report)")
    listing = argparse.ArgumentParser(add_help=False)
    listing.add_argument("--json", action="store_true", help="machine-readable output")

    parser = Parser(prog="hub", description="Multichannel commerce hub: admin command line.", parents=[common])
    sub = parser.add_subparsers(dest="command", required=True, parser_class=Parser, metavar="COMMAND")
    for module in (platform, jobs, catalog, listings, orders, shipping, invoicing):
        module.add_parsers(sub, common, listing, Parser)

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
        return group.add_subparsers(dest=f"{name}_command", required=True, parser_class=Parser, metavar="ACTION")

    def add_command(self, name: str, help: str) -> Any:
        """A top-level command; its parser must set_defaults(func=...)."""
        return self._sub.add_parser(name, parents=[self._common], help=help)

    @property
    def common(self) -> argparse.ArgumentParser:
        return self._common


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command. Whatever goes wrong ends as one line on stderr, never a traceback (unless
    --verbose): exit 2 for bad input or arguments, 1 for a failure of the environment or a bug."""
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except BrokenPipeError:
        return _closed_pipe()
    except KeyboardInterrupt:
        return 130
    except BaseException as exc:
        if isinstance(exc, SystemExit):
            raise
        code, lines = explain(exc)
        try:
            if getattr(args, "verbose", False):
                traceback.print_exception(exc, file=sys.stderr)
            for line in lines:
                sys.stderr.write(f"hub: {line}\n")
        except BrokenPipeError:
            pass
        return code


def explain(exc: BaseException) -> tuple[int, list[str]]:
    """The exit code and the line(s) for a failure."""
    if isinstance(exc, ConfigError):
        return EXIT_USAGE, list(exc.problems)
    if isinstance(exc, EnvironmentFailure):
        return EXIT_FAILURE, [str(exc)]
    if isinstance(exc, HubError):
        return EXIT_USAGE, [str(exc)]
    if isinstance(exc, DBAPIError):
        reason = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc).splitlines()[0]
        if "file is not a database" in reason:
            return EXIT_USAGE, [f"database: {reason}: [database] url names a file that is not a SQLite database"]
        return EXIT_FAILURE, [f"database error: {reason}"]
    if isinstance(exc, RetryableError):
        return EXIT_FAILURE, [f"{exc}: try again later (hub status shows each connector's health)"]
    if isinstance(exc, PermanentError):
        return EXIT_FAILURE, [str(exc)]
    if isinstance(exc, IsADirectoryError | NotADirectoryError | FileExistsError | FileNotFoundError):
        return EXIT_USAGE, [f"{exc.filename}: {exc.strerror}"]
    if isinstance(exc, OSError):
        where = f"{exc.filename}: " if exc.filename else ""
        return EXIT_FAILURE, [f"{where}{exc.strerror or exc}"]
    if isinstance(exc, UnicodeDecodeError):
        return EXIT_USAGE, [f"text that is not {exc.encoding} (byte 0x{exc.object[exc.start]:02x} at offset "
                            f"{exc.start}): save it in the expected encoding"]
    return EXIT_FAILURE, [f"internal error: {type(exc).__name__}: {exc} (run again with --verbose and report the "
                          "traceback)"]


def _closed_pipe() -> int:
    """The reader went away (hub status | head -1): end quietly, without Python's complaint at exit."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
