"""The command line (``aks-backup-remediator``, or ``python -m remediator``): one parser, one subcommand per
module, one error policy.

Each subcommand lives in its own module exposing ``register(subparsers)``, which adds its parser (through
:func:`remediator.cli.common.command_parser`, so it has examples, exit codes, ``-o`` and ``--query``) and sets
``handler`` (``Callable[[argparse.Namespace], int]``) as a default. ``main`` is the one error policy: any
exception a handler raises becomes one line per error on stderr and the documented exit code
(:mod:`remediator.cli.errors`), never a traceback unless ``--debug`` asks for one.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import traceback
from collections.abc import Sequence
from types import ModuleType

from remediator import __version__
from remediator.cli import config_check, explain, reconcile, report, sweep
from remediator.cli.common import PROG, add_global_arguments, epilog, paragraph
from remediator.cli.errors import ExitCode, error_lines

logger = logging.getLogger(__name__)

EXIT_OK = int(ExitCode.OK)
EXIT_BAD_INPUT = int(ExitCode.BAD_INPUT)

SUBCOMMANDS: tuple[ModuleType, ...] = (
    config_check,
    explain,
    reconcile,
    report,
    sweep,
)
"""Modules that each expose ``register(subparsers)``."""

EXAMPLES: tuple[tuple[str, str], ...] = (
    ("Check a config file before deploying it", f"{PROG} config check examples/multi-region.yaml"),
    (
        "Why is (or isn't) each of my clusters selected?",
        f"az aks list -o json | {PROG} explain --config my-config.yaml --cluster - -o table",
    ),
    (
        "What would the remediator do to one cluster? (reads only)",
        f"{PROG} reconcile --config my-config.yaml --dry-run --cluster <cluster-id>",
    ),
    ("Which clusters need work, by reason?", f"{PROG} sweep --config my-config.yaml --dry-run -o table"),
    ("The coverage report as a page", f"{PROG} report --config my-config.yaml -o html --file coverage.html"),
)


def program_name(argv0: str | None = None) -> str:
    """``python -m remediator`` when run as a module, else the name it was started by (the console script)."""
    name = os.path.basename(argv0 if argv0 is not None else (sys.argv[0] if sys.argv else ""))
    if not name or name in {"__main__.py", "-c"}:
        return "python -m remediator"
    return name


def build_parser() -> argparse.ArgumentParser:
    """The full parser with every registered subcommand."""
    parser = argparse.ArgumentParser(
        prog=program_name(),
        description=paragraph(
            "Brings every AKS cluster the tag rules select to Azure Backup: the backup extension and its"
            " storage grant (install mode), the whole backup chain (protect mode), or Azure Policy remediation"
            " tasks (policy-task mode); audit mode only reports. Every command"
            " that prints data takes -o/--output json|jsonc|table|tsv|yaml|none and --query JMESPATH, as az"
            " does. Run COMMAND --help for its options and examples."
        ),
        epilog=epilog(EXAMPLES),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    add_global_arguments(parser)
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in SUBCOMMANDS:
        module.register(subparsers)
    return parser


def _configure_logging(args: argparse.Namespace) -> None:
    level = logging.DEBUG if args.debug else logging.INFO if args.verbose else logging.WARNING
    logging.basicConfig(level=level, stream=sys.stderr, format="%(levelname)s %(name)s: %(message)s")
    if not args.debug:
        # azure-core logs every request at INFO and every retry at WARNING; with --verbose the product's own
        # progress is what a person wants to read.
        logging.getLogger("azure").setLevel(logging.ERROR)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line and return the exit code (see :class:`remediator.cli.errors.ExitCode`).

    Usage errors and ``--help`` exit through argparse (2 and 0). Every exception a command raises is
    reported as one line per error on stderr, with its exit code; ``--debug`` adds the traceback.
    """
    args = build_parser().parse_args(argv)
    _configure_logging(args)
    try:
        code: int = args.handler(args)
    except (SystemExit, GeneratorExit):
        raise
    except BaseException as exc:  # the one error policy: every failure is one line and a code
        exit_code, lines = error_lines(exc)
        if args.debug:
            traceback.print_exception(exc, file=sys.stderr)
        for line in lines:
            print(line, file=sys.stderr)
        logger.debug("exit %d (%s)", exit_code.value, exit_code.name)
        return int(exit_code)
    return code


def console_main() -> None:
    """The ``aks-backup-remediator`` console script."""
    raise SystemExit(main())


__all__ = ["EXIT_BAD_INPUT", "EXIT_OK", "SUBCOMMANDS", "build_parser", "console_main", "main"]
