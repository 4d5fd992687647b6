"""``report [--config FILE] [-o json|table|csv|html|...] [--query ...] [--file OUT]``: the coverage report
from a terminal.

The same use case as ``GET /api/report`` (:func:`remediator.service.report.build_report`): every in-scope
cluster from Resource Graph, named, in one state, with the journal's give-ups when storage is configured
(``AzureWebJobsStorage``; without it no cluster can be shown as given up). The report's own formats are
``json`` (the version 1 document, ``docs/report.schema.json``), ``table`` (aligned text, section by section),
``csv`` (one row per cluster) and ``html`` (one self-contained page); ``jsonc``, ``yaml``, ``tsv`` and
``none`` work on the document's JSON as for every command, and ``--query`` (JMESPath) applies to the JSON
before formatting (``-o table`` with ``--query`` is az's generic table). ``--file OUT`` writes the output to
``OUT`` (UTF-8) and prints the file's path.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

from remediator.cli.common import PROG, command_parser
from remediator.cli.errors import ExitCode
from remediator.cli.output import OUTPUT_FORMATS, compile_query
from remediator.cli.output import render as render_json_result
from remediator.core.errors import UserInputError
from remediator.core.report_document import ReportDocument, to_dict, to_json
from remediator.core.report_render import render as render_report

REPORT_FORMATS: tuple[str, ...] = ("json", "table", "csv", "html")
"""The report's own renderings (``remediator.core.report_render``)."""
CHOICES: tuple[str, ...] = tuple(dict.fromkeys((*REPORT_FORMATS, *OUTPUT_FORMATS)))


def build(config_path: str | None, *, environ: dict[str, str]) -> ReportDocument:
    """Build the runtime from ``environ`` with ``config_path`` and produce the report document."""
    from remediator.service.report import build_report
    from remediator.service.runtime import Runtime

    runtime = Runtime.from_env(environ, config_path=config_path)
    try:
        return build_report(
            runtime.config,
            inventory=runtime.inventory,
            identity=runtime.config_identity,
            outcomes=runtime.journal,
        )
    finally:
        runtime.close()


def text_of(document: ReportDocument, args: argparse.Namespace) -> str:
    """What the command prints (or writes to ``--file``) for ``document``."""
    output = args.output
    query = args.query
    if query is not None and output in ("csv", "html"):
        raise UserInputError(
            f"--query applies to the document's JSON; -o {output} renders the whole report", field="--query"
        )
    if query is None and output in REPORT_FORMATS:
        return to_json(document) if output == "json" else render_report(document, output)
    return render_json_result(to_dict(document), output=output, query=query)


def _run(args: argparse.Namespace) -> int:
    document = build(args.config, environ=dict(os.environ))
    text = text_of(document, args)
    if args.file is None:
        print(text, end="" if text.endswith("\n") or not text else "\n")
        return int(ExitCode.OK)
    path = Path(args.file)
    try:
        path.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise UserInputError(f"cannot write {path}: {exc.strerror or exc}", field="--file") from exc
    print(path)
    return int(ExitCode.OK)


def register(subparsers: Any) -> None:
    """Add ``report``."""
    parser = command_parser(
        subparsers,
        "report",
        help="the coverage report: every in-scope cluster, named, in one state (json, table, csv or html)",
        description=(
            "Read every in-scope cluster from Resource Graph (with its extension, storage grant and backup"
            " instances) and the journal's give-ups, and report each cluster in one state: protected,"
            " installing, waiting, blocked, gave up, not started or not selected, with its matched rule,"
            " blockers and next action; counted by subscription, region, management group and rule."
            " Extension-ready (Policy 1) and protected (the whole chain) are counted apart."
        ),
        examples=(
            ("The report as a table in the terminal", f"{PROG} report --config my-config.yaml -o table"),
            (
                "A page a manager can open (self-contained, fetches nothing)",
                f"{PROG} report --config my-config.yaml -o html --file coverage.html",
            ),
            ("One row per cluster for a spreadsheet", f"{PROG} report --config my-config.yaml -o csv"),
            (
                "The clusters that need a human, and why",
                f"{PROG} report --config my-config.yaml -o tsv"
                " --query \"clusters[?state=='blocked' || state=='gaveUp'].[name, state, nextAction]\"",
            ),
        ),
        prints_data=False,
    )
    group = parser.add_argument_group("output arguments")
    group.add_argument(
        "-o",
        "--output",
        choices=CHOICES,
        default="json",
        type=str.lower,
        help="json (default; the version 1 document), table, csv, html, or jsonc/yaml/tsv/none as in az",
    )
    group.add_argument(
        "--query",
        metavar="JMESPATH",
        type=compile_query,
        help="JMESPath query applied to the document's JSON before formatting (not with csv or html)",
    )
    group.add_argument("--file", metavar="OUT", help="write the output to OUT (UTF-8) and print its path")
    parser.add_argument(
        "--config",
        metavar="FILE",
        help="remediator config (YAML or JSON); default: REMEDIATOR_CONFIG_FILE or REMEDIATOR_CONFIG_JSON",
    )
    parser.set_defaults(handler=_run)
