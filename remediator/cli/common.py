"""What every subcommand's parser has: examples and the exit codes in ``--help``, the global options, and
(for commands that print data) ``-o/--output`` and ``--query``.

One helper builds each subcommand's parser so that no command can ship without examples in its help, and so
that ``--debug``, ``--verbose``, ``-o`` and ``--query`` are accepted after the subcommand as well as before
it, as in az (``aks-backup-remediator explain ... -o table``).
"""

from __future__ import annotations

import argparse
import logging
import textwrap
from collections.abc import Sequence
from typing import Any

from remediator.cli.errors import exit_code_table
from remediator.cli.output import add_output_arguments

logger = logging.getLogger(__name__)

PROG = "aks-backup-remediator"
"""The console script's name (``python -m remediator`` is the same program)."""


def add_global_arguments(parser: argparse.ArgumentParser, *, suppress_defaults: bool = False) -> None:
    """``--debug`` and ``-v/--verbose``. On subcommands their defaults are suppressed, so that a flag given
    before the subcommand is not reset by the subcommand's own default."""
    group = parser.add_argument_group("global arguments")
    default: Any = argparse.SUPPRESS if suppress_defaults else False
    group.add_argument(
        "--debug",
        action="store_true",
        default=default,
        help="log debug messages and show the traceback of any error (stderr)",
    )
    group.add_argument(
        "-v", "--verbose", action="store_true", default=default, help="log progress messages (stderr)"
    )


HELP_WIDTH = 100
"""Help paragraphs are wrapped at this width (the epilog keeps its own layout)."""


def paragraph(text: str) -> str:
    """``text`` wrapped for ``--help`` (descriptions are shown raw, so that epilogs keep their layout)."""
    return textwrap.fill(" ".join(text.split()), width=HELP_WIDTH)


def epilog(examples: Sequence[tuple[str, str]], *, exit_codes: bool = True) -> str:
    """``--help`` text after the options: the examples (what, command) and the exit code table."""
    lines = ["examples:"]
    for what, command in examples:
        lines.append(f"  {what}")
        lines.append(f"    {command}")
        lines.append("")
    if exit_codes:
        lines.append("exit codes:")
        lines.append(exit_code_table())
    return "\n".join(lines).rstrip() + "\n"


def command_parser(
    subparsers: Any,
    name: str,
    *,
    help: str,
    description: str,
    examples: Sequence[tuple[str, str]],
    prints_data: bool = True,
    output_default: str = "json",
) -> argparse.ArgumentParser:
    """A subcommand parser with a description, examples and exit codes in its help, the global arguments,
    and, when it prints data, ``-o/--output`` and ``--query``.

    :param subparsers: the parent's ``add_subparsers()`` object.
    :param name: the subcommand's name.
    :keyword help: one line for the parent's command list.
    :keyword description: a paragraph at the top of ``--help``.
    :keyword examples: (what it does, the command line) pairs; at least one.
    :keyword prints_data: add ``-o/--output`` and ``--query``.
    """
    if not examples:
        raise ValueError(f"the {name} command needs at least one example in its --help")
    parser: argparse.ArgumentParser = subparsers.add_parser(
        name,
        help=help,
        description=paragraph(description),
        epilog=epilog(examples),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    if prints_data:
        add_output_arguments(parser, default=output_default)
    add_global_arguments(parser, suppress_defaults=True)
    return parser


__all__ = ["HELP_WIDTH", "PROG", "add_global_arguments", "command_parser", "epilog", "paragraph"]
