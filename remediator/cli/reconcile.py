"""``reconcile --cluster ID [--dry-run | --wait]``: one reconcile from a terminal.

The same ``Reconciler`` the Functions app runs, against Azure or the local emulator as the environment says
(``REMEDIATOR_ARM_ENDPOINT``, ``REMEDIATOR_CREDENTIAL``, ``REMEDIATOR_CA_BUNDLE``, ``REMEDIATOR_TENANT_ID``;
see docs/operations.md). ``--config`` overrides ``REMEDIATOR_CONFIG_FILE`` / ``REMEDIATOR_CONFIG_JSON``.
The report is journaled (and published) when storage (``AzureWebJobsStorage``) is configured, except with
``--dry-run``, which reads only and writes nothing anywhere.

Before reconciling, the id is checked as the HTTP API checks it (:func:`remediator.cli.live.require_cluster`):
outside the scope -> exit 9, unknown to ARM -> exit 8, each with the HTTP 403/404 sentence.

``--dry-run`` says what a reconcile *would* do, read from the planned actions (the reconciler's own outcome
describes the state after the writes, e.g. "install started", which is not what a dry run did), and exits 0.
``--wait`` reconciles again after each ``wait`` outcome (sleeping its ``retryAfter``, at most ``--poll``
seconds) until the cluster is done, not selected, or blocked by a named blocker, or ``--timeout`` passes.

Exit codes: 0 done, skipped or planned (dry run); 2 bad input; 3 wait; 4 gave up; 5-11 see ``--help``.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from remediator.cli.common import PROG, command_parser
from remediator.cli.errors import ExitCode
from remediator.cli.output import emit
from remediator.core.ids import parse_cluster_id
from remediator.core.outcomes import Action, ActionKind, OutcomeKind, ReconcileReport

logger = logging.getLogger(__name__)

EXIT_WAIT = int(ExitCode.WAIT)
EXIT_GAVE_UP = int(ExitCode.GAVE_UP)

EXIT_CODES: dict[OutcomeKind, int] = {
    OutcomeKind.DONE: int(ExitCode.OK),
    OutcomeKind.SKIPPED: int(ExitCode.OK),
    OutcomeKind.WAIT: EXIT_WAIT,
    OutcomeKind.GAVE_UP: EXIT_GAVE_UP,
}

DEFAULT_TIMEOUT_S = 900.0
"""``--wait`` gives up waiting after this long (an extension install takes minutes)."""

DEFAULT_POLL_S = 30.0
"""``--wait`` sleeps at most this long between reconciles."""


def _last_segment(resource_id: str, marker: str) -> str:
    lowered = resource_id.lower()
    at = lowered.rfind(marker.lower())
    if at < 0:
        return resource_id.rsplit("/", 1)[-1]
    return resource_id[at + len(marker) :].split("/", 1)[0]


def describe_action(action: Action) -> str:
    """What one planned write would do, in words."""
    target = action.target
    if action.kind is ActionKind.CREATE_CONTAINER:
        container = target.rsplit("/", 1)[-1]
        account = _last_segment(target, "/storageAccounts/")
        return f"create blob container {container} in storage account {account}"
    if action.kind is ActionKind.CREATE_EXTENSION:
        return f"install the backup extension {action.detail}"
    if action.kind is ActionKind.REINSTALL_EXTENSION:
        return f"re-install the failed backup extension {action.detail}"
    if action.kind is ActionKind.ASSIGN_ROLE:
        # detail: "<role name> for <principal id>"; target: <scope>/providers/Microsoft.Authorization/...
        scope = target.split("/providers/Microsoft.Authorization/roleAssignments/", 1)[0]
        role, _, principal = action.detail.partition(" for ")
        return f"grant {role} on {scope} to {principal or 'the identity'}"
    if action.kind is ActionKind.CREATE_REMEDIATION_TASK:
        return f"create an Azure Policy remediation task for assignment {action.detail}"
    return f"{action.kind.value} {target}"


def dry_run_summary(report: ReconcileReport) -> str:
    """One sentence saying what the reconcile would do, from its planned actions (or why it would not)."""
    if report.actions:
        steps = "; then ".join(describe_action(action) for action in report.actions)
        return f"dry run, nothing written: would {steps}"
    why = report.outcome.why
    kind = report.outcome.kind
    if kind is OutcomeKind.DONE:
        return f"dry run: nothing to do ({why})"
    if kind is OutcomeKind.SKIPPED:
        return f"dry run: nothing to do, the cluster is not selected ({why})"
    if kind is OutcomeKind.WAIT:
        return f"dry run: nothing to do yet, a reconcile would wait ({why})"
    return f"dry run: nothing it can do, a human must act ({why})"


def report_json(report: ReconcileReport) -> dict[str, Any]:
    """The report as the command prints it: a dry run's outcome says what it *would* do, and lists it."""
    data = report.to_json()
    if report.dry_run:
        data["outcome"] = {**data["outcome"], "why": dry_run_summary(report)}
        data["wouldDo"] = [action.to_json() for action in report.actions]
    return data


def report_rows(result: Any) -> Any:
    """``-o table`` for reconcile: one row for the cluster, the actions in one column."""
    if not isinstance(result, Mapping) or "clusterId" not in result:
        return result
    decision: Mapping[str, Any] = result.get("decision") or {}
    outcome: Mapping[str, Any] = result.get("outcome") or {}
    actions: Sequence[Mapping[str, Any]] = result.get("actions") or []
    return [
        {
            "Cluster": parse_cluster_id(result["clusterId"]).name,
            "Mode": str(result.get("mode", "")) + (" (dry run)" if result.get("dryRun") else ""),
            "Reason": decision.get("reason", ""),
            "Extension": result.get("extensionState") or "",
            "Outcome": outcome.get("kind", ""),
            "Why": outcome.get("why", ""),
            "Actions": ", ".join(f"{a.get('kind')} {a.get('status')}" for a in actions),
        }
    ]


def reconcile_until_settled(
    reconcile: Callable[[], ReconcileReport],
    *,
    timeout_s: float,
    poll_s: float,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
    progress: Callable[[str], None] | None = None,
) -> tuple[ReconcileReport, bool]:
    """Reconcile until the outcome is final or ``timeout_s`` passes; returns the last report and whether
    the wait timed out. Between reconciles it sleeps the outcome's ``retryAfter`` (at most ``poll_s``)."""
    deadline = clock() + timeout_s
    report = reconcile()
    while report.outcome.kind is OutcomeKind.WAIT:
        remaining = deadline - clock()
        if remaining <= 0:
            return report, True
        pause = min(report.outcome.retry_after_s or poll_s, poll_s, remaining)
        if progress is not None:
            progress(f"waiting {pause:.0f} s: {report.outcome.why}")
        sleep(pause)
        report = reconcile()
    return report, False


def _run(args: argparse.Namespace) -> int:
    from remediator.cli.live import open_runtime, require_cluster

    cluster = parse_cluster_id(args.cluster, field="--cluster")
    with open_runtime(args) as runtime:
        require_cluster(runtime, cluster)
        if args.wait:
            report, timed_out = reconcile_until_settled(
                lambda: runtime.reconciler.reconcile(cluster, trigger="cli"),
                timeout_s=args.timeout,
                poll_s=args.poll,
                progress=lambda line: print(line, file=sys.stderr, flush=True),
            )
            if timed_out:
                logger.warning("still waiting after %g s: %s", args.timeout, report.outcome.why)
        else:
            report = runtime.reconciler.reconcile(cluster, dry_run=args.dry_run, trigger="cli")
    emit(report_json(report), args, table=report_rows)
    if report.dry_run:
        return int(ExitCode.OK)
    return EXIT_CODES[report.outcome.kind]


def register(subparsers: Any) -> None:
    """Add ``reconcile``."""
    parser = command_parser(
        subparsers,
        "reconcile",
        help="bring one cluster to the wanted state (--dry-run: say what it would do; --wait: until done)",
        description=(
            "Reconcile one cluster as the Functions app does: read it, decide, observe the backup extension,"
            " storage and grants, and take the next step (or, with --dry-run, say what it would do and write"
            " nothing). The cluster must be in the config's scope and exist, or the command refuses it (exit"
            " 9 / 8, with the words of the HTTP API's 403 / 404). Settings come from the environment (see"
            " docs/operations.md, 'Running the CLI from a laptop')."
        ),
        examples=(
            (
                "What would it do? (reads only, exit 0)",
                f"{PROG} reconcile --config my-config.yaml --dry-run --cluster"
                " /subscriptions/<sub>/resourceGroups/<rg>/providers/Microsoft.ContainerService"
                "/managedClusters/<name>",
            ),
            (
                "Install and wait until the extension is Succeeded and its identity can write backups",
                f"{PROG} reconcile --config my-config.yaml --cluster <cluster-id> --wait --timeout 1200",
            ),
            (
                "Just the outcome",
                f"{PROG} reconcile --config my-config.yaml --cluster <cluster-id> --query outcome -o table",
            ),
        ),
    )
    parser.add_argument(
        "--config",
        metavar="FILE",
        help="remediator config (YAML or JSON); default: REMEDIATOR_CONFIG_FILE or REMEDIATOR_CONFIG_JSON",
    )
    parser.add_argument(
        "--cluster",
        "--cluster-id",
        dest="cluster",
        required=True,
        metavar="ID",
        help="managed cluster ARM id",
    )
    how = parser.add_mutually_exclusive_group()
    how.add_argument("--dry-run", action="store_true", help="read and plan only; write nothing; exit 0")
    how.add_argument(
        "--wait",
        action="store_true",
        help="reconcile again after each 'wait' until done, skipped or gave up (or --timeout)",
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=DEFAULT_TIMEOUT_S,
        metavar="SECONDS",
        help=f"with --wait: stop waiting after this long (default {DEFAULT_TIMEOUT_S:g}; then exit 3)",
    )
    parser.add_argument(
        "--poll",
        type=float,
        default=DEFAULT_POLL_S,
        metavar="SECONDS",
        help=f"with --wait: the longest pause between reconciles (default {DEFAULT_POLL_S:g})",
    )
    parser.set_defaults(handler=_run)
