"""``sweep --config FILE [--dry-run] [--output json|table]``: one sweep from a terminal.

The same :class:`~remediator.service.sweep.Sweeper` the timer function runs, against Azure or the emulator
as the environment's settings say (``REMEDIATOR_ARM_ENDPOINT``, ``REMEDIATOR_CREDENTIAL``,
``AzureWebJobsStorage``; see ``docs/operations.md``), with ``--config`` replacing the configured config.
``--dry-run`` (or audit mode) reads Resource Graph and decides but enqueues and records nothing, so it needs
no storage. On a terminal a rich progress bar shows rows read and work items enqueued. Exit 0 when every
cluster needing work was enqueued, 1 when some enqueues failed, 2 on bad input.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from remediator.core.ids import ResourceId
from remediator.core.work_item import Source
from remediator.service.sweep import SweepSummary


class _NoQueue:
    """The work port for dry runs: the sweeper never calls it, and nothing needs storage."""

    def enqueue_work(
        self,
        cluster_id: ResourceId,
        *,
        attempt: int,
        source: Source,
        reason: str,
        correlation_id: str,
        delay_s: float,
        timeout_s: float | None = None,
    ) -> None:
        raise AssertionError("a dry run never enqueues")


def run_sweep(config_path: str, *, dry_run: bool, environ: dict[str, str], console: Console) -> SweepSummary:
    """Build the runtime from ``environ`` with ``config_path`` and run one sweep (progress on ``console``)."""
    from remediator.service.runtime import Runtime
    from remediator.service.sweep import Sweeper

    runtime = Runtime.from_env(environ, config_path=config_path)
    try:
        config = runtime.config
        writes = not dry_run and config.remediation.mode != "audit"
        sweeper = Sweeper(
            config=config,
            inventory=runtime.inventory,
            work=runtime.work_queue if writes else _NoQueue(),
            recorders=(runtime.recorder,) if writes else (),
            pacer=runtime.sweep_pacer,
        )
        sweeper.plan()  # refuse a bad config (e.g. a KQL injection attempt) before any progress output
        if not console.is_terminal:
            return sweeper.run(dry_run=dry_run)
        with Progress(
            SpinnerColumn(),
            TextColumn("[bold]sweep"),
            BarColumn(),
            TextColumn("{task.fields[rows]} clusters read, {task.fields[enqueued]} enqueued"),
            TimeElapsedColumn(),
            console=console,
            transient=True,
        ) as progress:
            task = progress.add_task("sweep", total=None, rows=0, enqueued=0)
            return sweeper.run(
                dry_run=dry_run,
                progress=lambda rows, enqueued: progress.update(task, rows=rows, enqueued=enqueued),
            )
    finally:
        runtime.close()


def render_table(summary: SweepSummary, console: Console) -> None:
    data = summary.to_json()
    table = Table(title=f"sweep {'(dry run)' if summary.dry_run else ''}".strip(), show_header=False)
    table.add_column("what", style="bold")
    table.add_column("count", justify="right")
    for key in (
        "candidates",
        "enqueued",
        "wouldEnqueue",
        "blocked",
        "deferred",
        "invalid",
        "enqueueFailures",
    ):
        table.add_row(key, str(data[key]))
    for group in ("byReason", "byExtensionState", "byBlocker", "policyStates"):
        for key, value in data[group].items():
            table.add_row(f"{group}.{key}", str(value))
    table.add_row("inventory queries", str(data["inventory"]["queries"]))
    table.add_row("seconds", f"{data['durationSeconds']:.2f}")
    console.print(table)


def _run(args: argparse.Namespace) -> int:
    progress_console = Console(stderr=True)
    summary = run_sweep(args.config, dry_run=args.dry_run, environ=dict(os.environ), console=progress_console)
    if args.output == "table":
        render_table(summary, Console())
    else:
        print(json.dumps(summary.to_json(), indent=2))
    sys.stdout.flush()
    return 0 if summary.ok else 1


def register(subparsers: Any) -> None:
    """Add ``sweep``."""
    parser = subparsers.add_parser(
        "sweep", help="find every in-scope cluster needing work (Resource Graph) and enqueue it"
    )
    parser.add_argument("--config", required=True, metavar="FILE", help="remediator config (YAML or JSON)")
    parser.add_argument(
        "--dry-run", action="store_true", help="decide and report; enqueue and record nothing"
    )
    parser.add_argument("--output", choices=("json", "table"), default="json", help="default: json")
    parser.set_defaults(handler=_run)
