"""``reconcile --config FILE --cluster ID [--dry-run] [--output json|table]``: one reconcile from a terminal.

The same ``Reconciler`` the Functions app runs, against Azure or the local emulator as the environment says
(``REMEDIATOR_ARM_ENDPOINT``, ``REMEDIATOR_CREDENTIAL``, ``REMEDIATOR_CA_BUNDLE``, ``REMEDIATOR_TENANT_ID``;
see docs/operations.md). ``--config`` overrides ``REMEDIATOR_CONFIG_FILE`` / ``REMEDIATOR_CONFIG_JSON``.
The report is journaled (and published) when storage (``AzureWebJobsStorage``) is configured, except with
``--dry-run``, which reads only and writes nothing anywhere.

Exit codes: 0 done or skipped, 2 bad input (the field is named), 3 wait (come back later), 4 gave up.
"""

from __future__ import annotations

import argparse
import json
import os
from typing import Any

from rich.console import Console
from rich.table import Table

from remediator.core.ids import parse_cluster_id
from remediator.core.outcomes import OutcomeKind, ReconcileReport

EXIT_WAIT = 3
EXIT_GAVE_UP = 4

EXIT_CODES: dict[OutcomeKind, int] = {
    OutcomeKind.DONE: 0,
    OutcomeKind.SKIPPED: 0,
    OutcomeKind.WAIT: EXIT_WAIT,
    OutcomeKind.GAVE_UP: EXIT_GAVE_UP,
}


def render_table(report: ReconcileReport, console: Console) -> None:
    """The outcome, then the actions, as tables."""
    summary = Table(show_header=False, title="reconcile")
    summary.add_column("field", style="bold")
    summary.add_column("value", overflow="fold")
    summary.add_row("cluster", report.cluster_id)
    summary.add_row("mode", report.mode + (" (dry run)" if report.dry_run else ""))
    decision = report.decision or {}
    summary.add_row("selected", str(decision.get("selected", "-")))
    summary.add_row("reason", str(decision.get("reason", "-")))
    summary.add_row("extension", report.extension_state or "-")
    summary.add_row("outcome", report.outcome.kind.value)
    summary.add_row("why", report.outcome.why)
    if report.outcome.retry_after_s is not None:
        summary.add_row("retry after", f"{report.outcome.retry_after_s:g} s")
    console.print(summary)
    if report.actions:
        actions = Table(title="actions")
        for column in ("kind", "status", "target", "detail"):
            actions.add_column(column, overflow="fold")
        for action in report.actions:
            actions.add_row(action.kind.value, action.status.value, action.target, action.detail)
        console.print(actions)


def _run(args: argparse.Namespace) -> int:
    cluster = parse_cluster_id(args.cluster, field="--cluster")
    from remediator.service.runtime import Runtime  # SDK imports only when the command runs

    runtime = Runtime.from_env(os.environ, config_path=args.config)
    try:
        runtime.config  # noqa: B018 - load and validate the config before any ARM call
        report = runtime.reconciler.reconcile(cluster, dry_run=args.dry_run, trigger="cli")
    finally:
        runtime.close()
    if args.output == "table":
        render_table(report, Console())
    else:
        print(json.dumps(report.to_json(), indent=2))
    return EXIT_CODES[report.outcome.kind]


def register(subparsers: Any) -> None:
    """Add ``reconcile``."""
    parser = subparsers.add_parser(
        "reconcile",
        help="bring one cluster to the wanted state (or, with --dry-run, show the plan)",
        description="Exit codes: 0 done/skipped, 2 bad input, 3 wait, 4 gave up.",
    )
    parser.add_argument("--config", required=True, metavar="FILE", help="remediator config (YAML or JSON)")
    parser.add_argument("--cluster", required=True, metavar="ID", help="managed cluster ARM id")
    parser.add_argument("--dry-run", action="store_true", help="read and plan only; write nothing")
    parser.add_argument("--output", choices=("json", "table"), default="json", help="default: json")
    parser.set_defaults(handler=_run)
