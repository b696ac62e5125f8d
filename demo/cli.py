"""``hub demo`` joins the CLI through the ``hub.commands`` entry point: hub/ never imports the demo."""

from __future__ import annotations

import argparse
from typing import Any


def add_command(cli: Any) -> None:
    parser = cli.add_command("demo", help="run the demo on an embedded database")
    parser.add_argument("--dir", metavar="PATH", help="keep the demo's database and files here")
    parser.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    from demo.run import run_demo

    return run_demo(directory=args.dir)
