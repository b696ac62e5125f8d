"""``hub``: the admin command line. One module per capability adds its commands; connectors and
the ``hub.commands`` entry points (the demo) add theirs.

Bad arguments, bad config and unknown ids end with a one-line message on
stderr and exit code 2, never a traceback.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from importlib.metadata import entry_points
from typing import Any

from sqlalchemy.exc import OperationalError

from hub.cli import catalog, jobs, listings, orders, platform
from hub.cli.context import EXIT_USAGE, Parser
from hub.kernel.errors import ConfigError, HubError, NotFoundError
from hub.platform import registry


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--config", default=argparse.SUPPRESS, metavar="PATH",
                        help="config file (default ./hub.toml, or $HUB_CONFIG)")
    listing = argparse.ArgumentParser(add_help=False)
    listing.add_argument("--json", action="store_true", help="machine-readable output")

    parser = Parser(prog="hub", description="Multichannel commerce hub: admin command line.", parents=[common])
    sub = parser.add_subparsers(dest="command", required=True, parser_class=Parser, metavar="COMMAND")
    for module in (platform, jobs, catalog, listings, orders):
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
    args = build_parser().parse_args(argv)
    handler = args.func
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
