"""``sweep [--config FILE] [--dry-run] [-o ...] [--query ...]``: one sweep from a terminal.

The same :class:`~remediator.service.sweep.Sweeper` the timer function runs, against Azure or the emulator
as the environment's settings say (``REMEDIATOR_ARM_ENDPOINT``, ``REMEDIATOR_CREDENTIAL``,
``AzureWebJobsStorage``; see ``docs/operations.md``), with ``--config`` replacing the configured config.
``--dry-run`` (or audit mode) reads Resource Graph and decides but enqueues and records nothing, so it needs
no storage. On a terminal a rich progress bar (stderr) shows rows read and work items enqueued. Exit 0
when every cluster needing work was enqueued, 1 when some enqueues failed, 2 on bad input, 5-11 when Azure
could not be asked (see ``--help``).
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Mapping
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from remediator.cli.common import PROG, command_parser
from remediator.cli.errors import ExitCode
from remediator.cli.output import emit
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


def run_sweep(
    config_path: str | None, *, dry_run: bool, environ: dict[str, str], console: Console
) -> SweepSummary:
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


SUMMARY_COUNTS: tuple[str, ...] = (
    "candidates",
    "enqueued",
    "wouldEnqueue",
    "blocked",
    "deferred",
    "invalid",
    "enqueueFailures",
)
SUMMARY_GROUPS: tuple[str, ...] = ("byReason", "byExtensionState", "byBlocker", "policyStates")


def summary_rows(result: Any) -> Any:
    """``-o table`` for sweep: one row per count (the groups as ``byReason.<reason>`` rows)."""
    if not isinstance(result, Mapping) or "candidates" not in result:
        return result
    rows: list[dict[str, Any]] = [{"What": key, "Count": result.get(key, 0)} for key in SUMMARY_COUNTS]
    for group in SUMMARY_GROUPS:
        values = result.get(group)
        if isinstance(values, Mapping):
            rows.extend({"What": f"{group}.{key}", "Count": value} for key, value in values.items())
    inventory = result.get("inventory")
    if isinstance(inventory, Mapping):
        rows.append({"What": "inventory queries", "Count": inventory.get("queries", 0)})
    if "durationSeconds" in result:
        rows.append({"What": "seconds", "Count": round(float(result["durationSeconds"]), 2)})
    return rows


def _run(args: argparse.Namespace) -> int:
    progress_console = Console(stderr=True)
    summary = run_sweep(args.config, dry_run=args.dry_run, environ=dict(os.environ), console=progress_console)
    emit(summary.to_json(), args, table=summary_rows)
    return int(ExitCode.OK) if summary.ok else int(ExitCode.INCOMPLETE)


def register(subparsers: Any) -> None:
    """Add ``sweep``."""
    parser = command_parser(
        subparsers,
        "sweep",
        help="find every in-scope cluster needing work (Resource Graph) and enqueue it (--dry-run: count)",
        description=(
            "Run the timer's sweep once: ask Resource Graph for every in-scope cluster, decide for each, and"
            " enqueue the ones that need work (blocked and stopped clusters are counted, not enqueued)."
            " --dry-run (or audit mode) decides and reports but enqueues and records nothing, so it needs no"
            " storage settings."
        ),
        examples=(
            (
                "What needs work, by reason (reads only)",
                f"{PROG} sweep --config my-config.yaml --dry-run -o table",
            ),
            (
                "How many clusters would be enqueued",
                f"{PROG} sweep --config my-config.yaml --dry-run --query wouldEnqueue -o tsv",
            ),
            ("Enqueue the work (needs AzureWebJobsStorage)", f"{PROG} sweep --config my-config.yaml"),
        ),
    )
    parser.add_argument(
        "--config",
        metavar="FILE",
        help="remediator config (YAML or JSON); default: REMEDIATOR_CONFIG_FILE or REMEDIATOR_CONFIG_JSON",
    )
    parser.add_argument(
        "--dry-run", action="store_true", help="decide and report; enqueue and record nothing"
    )
    parser.set_defaults(handler=_run)
