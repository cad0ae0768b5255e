"""The ``monai-bac`` command line: one sub-command per module of :mod:`monai_bac.commands`.

Each command module defines ``register(subparsers)`` (adds its parser and sets
``func=run``) and ``run(args) -> int``; nothing else lives here.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

#: sub-command modules, in the order ``--help`` lists them
COMMANDS = ("phantom", "correct_labels", "infer", "export", "report", "reproduce")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="monai-bac", description=__doc__.splitlines()[0])
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMANDS:
        importlib.import_module(f"monai_bac.commands.{name}").register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO, format="%(levelname)s %(message)s")
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
