"""The ``python -m remediator`` command line: one parser, one subcommand per module, one error policy.

Each subcommand lives in its own module exposing ``register(subparsers)``, which adds its parser and sets
``handler`` (``Callable[[argparse.Namespace], int]``) as a default. ``main`` turns every
:class:`~remediator.core.errors.UserInputError` into a one-line message on stderr and exit code 2, never a
traceback.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from types import ModuleType

from remediator import __version__
from remediator.cli import config_check, explain, reconcile, sweep
from remediator.core.errors import UserInputError

EXIT_OK = 0
EXIT_BAD_INPUT = 2

SUBCOMMANDS: tuple[ModuleType, ...] = (
    config_check,
    explain,
    reconcile,
    sweep,
    # reconcile, sweep: import the module above and list it here.
)
"""Modules that each expose ``register(subparsers)``."""


def build_parser() -> argparse.ArgumentParser:
    """The full parser with every registered subcommand."""
    parser = argparse.ArgumentParser(
        prog="python -m remediator",
        description="Keeps the Azure Backup extension on every AKS cluster that the tag rules select.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug messages to stderr")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in SUBCOMMANDS:
        module.register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code (0 ok, 2 bad input; argparse usage errors also exit 2)."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING, stream=sys.stderr)
    try:
        code: int = args.handler(args)
    except UserInputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    return code
