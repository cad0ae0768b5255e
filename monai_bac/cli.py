"""monai-bac: phantom data, label correction, CPU inference, export, reports and the paper's experiment.

One sub-command per module of ``monai_bac.commands``: each module defines
``register(subparsers)`` (adds its parser and sets ``func=run``) and ``run(args) -> int``.
Their docstrings double as ``--help`` text; :func:`plain` strips the reStructuredText markup
from every description and help string, so the terminal shows no ``:mod:`` or double back-quotes.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import re
import sys

_ROLE = re.compile(r":(?:mod|func|class|meth|attr|data|obj|exc|ref|doc|py:\w+):`~?([^`<]*?)(?:\s*<[^`]*>)?`")
_LITERAL = re.compile(r"``([^`]*)``")
_BLOCK = re.compile(r"(\S)::$", re.MULTILINE)  # "text::" introducing a literal block -> "text:"

#: sub-command modules, in the order ``--help`` lists them
COMMANDS = ("phantom", "correct_labels", "infer", "export", "report", "reproduce", "present")


def plain(text: str | None) -> str | None:
    """``text`` without reStructuredText markup: roles (``:mod:`a.b``` -> ``a.b``, ``~`` keeps the last
    name), double back-quotes, and the ``::`` that opens a literal block."""
    if not text:
        return text
    text = _ROLE.sub(lambda m: m.group(1).rsplit(".", 1)[-1] if m.group(0).count("`~") else m.group(1), text)
    return _BLOCK.sub(r"\1:", _LITERAL.sub(r"\1", text))


def _strip_markup(parser: argparse.ArgumentParser) -> None:
    """Apply :func:`plain` to a parser's description, epilog and every help string, sub-commands included."""
    parser.description, parser.epilog = plain(parser.description), plain(parser.epilog)
    for action in parser._actions:
        action.help = plain(action.help)
        if isinstance(action, argparse._SubParsersAction):
            for choice in action._choices_actions:
                choice.help = plain(choice.help)
            for sub in action.choices.values():
                _strip_markup(sub)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="monai-bac", description=__doc__.splitlines()[0])
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMANDS:
        importlib.import_module(f"monai_bac.commands.{name}").register(sub)
    _strip_markup(parser)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO, format="%(levelname)s %(message)s")
    logging.getLogger("highdicom").setLevel(logging.DEBUG if args.verbose else logging.WARNING)
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
