"""``explain --config FILE --cluster FILE``: the decision for one cluster, offline; ``--live``: against Azure.

The cluster file is the JSON of an ARM managedCluster GET (or ``az aks show -o json``). Nothing is called:
this is the pure decision core over two files, so an operator can see why a cluster is or is not selected
before deploying a config. Management-group ancestry is not in a cluster id; pass ``--management-groups FILE``
(a JSON object mapping subscription GUID to the names of the management groups above it) when the config
scopes by management group. When management groups decide the answer and the ancestry is unknown (no file, or
the cluster's subscription is not in it), ``explain`` refuses with exit code 2 rather than answer
``out-of-scope`` for a cluster the service would select.

``--policy-assignments FILE`` (the JSON of ``az policy assignment list --disable-scope-strict-match``: a
list of assignment bodies, or ``{"value": [...]}``) adds preflight's ``findings`` to the offline answer: each
Kubernetes (Gatekeeper) or resource-type Deny assignment that would block the backup extension, named, with
the exact parameter change (built-in definitions from the product's catalog; custom ones are not in the file,
so they are reported as not evaluated).

``--live`` reads Azure (or the emulator) as the environment's settings say (``REMEDIATOR_ARM_ENDPOINT``,
``REMEDIATOR_CREDENTIAL``, ...) and answers what ``POST /api/explain`` answers, from a dry-run reconcile that
writes nothing: ``--cluster`` is then the cluster's ARM id, and ``blockedBy`` names every blocking policy
assignment (or Safeguards, storage, provider) with its fix.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from remediator.core.config import RemediatorConfig, decode_document, load_config
from remediator.core.decision import Decision, decide
from remediator.core.errors import UserInputError
from remediator.core.ids import parse_cluster_id
from remediator.core.preflight import Finding, PolicyAssignment, PolicyData, PreflightInput, preflight
from remediator.core.snapshot import ClusterSnapshot
from remediator.core.text import ignore_case_key


def read_json_file(path: str, *, what: str) -> object:
    """Decode a JSON file; unreadable or invalid JSON is a :class:`UserInputError` naming the file."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise UserInputError(f"cannot read the {what}: {exc}", source=path) from exc
    return decode_document(text, source=path, prefer_json=True)


def load_management_groups(path: str) -> Mapping[str, Sequence[str]]:
    """Read ``{"<subscription guid>": ["mg-name", ...]}``; keys compared by Azure's case rule."""
    data = read_json_file(path, what="management group file")
    if not isinstance(data, Mapping):
        raise UserInputError(
            "expected an object of subscription id -> list of management groups", source=path
        )
    result: dict[str, Sequence[str]] = {}
    for subscription, groups in data.items():
        if not isinstance(groups, list) or not all(isinstance(group, str) for group in groups):
            raise UserInputError("expected a list of management group names", field=subscription, source=path)
        result[ignore_case_key(str(subscription))] = tuple(groups)
    return result


def read_cluster_file(cluster_path: str) -> ClusterSnapshot:
    """The cluster body in ``cluster_path``; raises :class:`UserInputError` naming the file and field."""
    body = read_json_file(cluster_path, what="cluster file")
    if isinstance(body, Mapping) and "responses" in body and "id" not in body:
        raise UserInputError(
            "this is an Azure REST API example file, not a cluster body; pass its responses.200.body",
            field="responses",
            source=cluster_path,
        )
    return ClusterSnapshot.from_arm(body, source=cluster_path)


def load_policy_assignments(path: str) -> PolicyData:
    """Assignment bodies from ``path`` (a list, or an object with ``value``), as preflight's policy data."""
    data = read_json_file(path, what="policy assignment file")
    items = data.get("value") if isinstance(data, Mapping) else data
    if not isinstance(items, list):
        raise UserInputError('expected a list of policy assignments (or {"value": [...]})', source=path)
    assignments = []
    for index, item in enumerate(items):
        if not isinstance(item, Mapping) or not isinstance(item.get("id"), str):
            raise UserInputError("expected a policy assignment with an id", field=f"[{index}]", source=path)
        try:
            assignments.append(PolicyAssignment.from_arm(item))
        except (TypeError, ValueError, AttributeError) as exc:
            raise UserInputError(f"not a policy assignment: {exc}", field=f"[{index}]", source=path) from exc
    return PolicyData(assignments=tuple(assignments))


def offline_findings(
    snapshot: ClusterSnapshot, policy: PolicyData, *, management_groups: Sequence[str] = ()
) -> tuple[Finding, ...]:
    """Preflight over the assignments alone (no Safeguards, storage or provider data offline)."""
    return preflight(
        PreflightInput(cluster=snapshot, management_groups=tuple(management_groups), policy=policy)
    )


def explain(config_path: str, cluster_path: str, *, management_groups_path: str | None = None) -> Decision:
    """Load both files and decide; raises :class:`UserInputError` naming the file and field."""
    config = load_config(config_path)
    snapshot = read_cluster_file(cluster_path)
    return decide(
        snapshot,
        config,
        management_groups_of=management_group_lookup(
            config, config_path=config_path, management_groups_path=management_groups_path
        ),
    )


def management_group_lookup(
    config: RemediatorConfig, *, config_path: str, management_groups_path: str | None
) -> Callable[[str], Sequence[str]] | None:
    """Subscription -> management-group ancestry from ``--management-groups FILE``, for :func:`decide`.

    ``decide`` asks only when the scope lists management groups and neither ``excludeSubscriptions``,
    ``subscriptions`` nor ``resourceGroups`` already decided. Then an unknown ancestry is bad input, never an
    empty one: without the file, a :class:`UserInputError` naming ``scope.managementGroups`` in the config;
    with a file that lacks the subscription, one naming the subscription in that file (list it with ``[]`` if
    no management group is above it).
    """
    if not config.scope.management_groups:
        return None
    if management_groups_path is None:

        def no_file(subscription: str) -> Sequence[str]:
            raise UserInputError(
                f"management groups decide whether subscription {subscription} is in scope, and a cluster id"
                " does not say which groups are above it: pass --management-groups FILE"
                ' ({"<subscription guid>": ["mg-name", ...]})',
                field="scope.managementGroups",
                source=config_path,
            )

        return no_file
    ancestry = load_management_groups(management_groups_path)

    def from_file(subscription: str) -> Sequence[str]:
        groups = ancestry.get(ignore_case_key(subscription))
        if groups is None:
            raise UserInputError(
                "the cluster's subscription is not in the management group file, and management groups decide"
                " whether it is in scope; add it with the groups above it ([] for none)",
                field=subscription,
                source=management_groups_path,
            )
        return groups

    return from_file


def render_table(decision: Decision, console: Console) -> None:
    """The decision as a two-column table."""
    table = Table(show_header=False, title="decision")
    table.add_column("field", style="bold")
    table.add_column("value", overflow="fold")
    for key, value in decision.to_json().items():
        shown = ", ".join(value) if isinstance(value, list) else ("-" if value is None else str(value))
        table.add_row(key, shown or "-")
    console.print(table)


def render_findings(findings: Sequence[Mapping[str, Any]], console: Console) -> None:
    """Preflight findings as a table: what blocks first, each with its remedy."""
    if not findings:
        console.print("preflight: nothing known blocks the backup extension")
        return
    table = Table(title="preflight")
    for column in ("severity", "code", "assignment", "remedy"):
        table.add_column(column, overflow="fold")
    ordered = sorted(findings, key=lambda f: f.get("severity") != "block")
    for finding in ordered:
        evidence = finding.get("evidence") or {}
        table.add_row(
            str(finding.get("severity")),
            str(finding.get("code")),
            str(evidence.get("assignmentName") or "-"),
            str(finding.get("remedy")),
        )
    console.print(table)


def _live(args: argparse.Namespace) -> int:
    import os

    from remediator.core.explanation import explanation
    from remediator.service.runtime import Runtime  # SDK imports only when the command runs

    cluster = parse_cluster_id(args.cluster, field="--cluster")
    runtime = Runtime.from_env(os.environ, config_path=args.config)
    try:
        runtime.config  # noqa: B018 - load and validate the config before any ARM call
        report = runtime.reconciler.reconcile(cluster, dry_run=True)
    finally:
        runtime.close()
    answer = explanation(report)
    if args.output == "table":
        console = Console()
        summary = Table(show_header=False, title="explain")
        summary.add_column("field", style="bold")
        summary.add_column("value", overflow="fold")
        decision = answer["decision"] or {}
        for key in ("selected", "reason", "rule"):
            summary.add_row(key, str(decision.get(key, "-")))
        summary.add_row("extension", str(answer["extensionState"] or "-"))
        summary.add_row("outcome", f"{answer['outcome']['kind']}: {answer['outcome']['why']}")
        summary.add_row("blocked by policy", ", ".join(answer["blockedByPolicy"]) or "-")
        console.print(summary)
        render_findings(answer["findings"], console)
    else:
        print(json.dumps(answer, indent=2))
    return 0


def _run(args: argparse.Namespace) -> int:
    if args.live:
        if args.policy_assignments:
            raise UserInputError(
                "--live reads the assignments from Azure; drop it", field="--policy-assignments"
            )
        return _live(args)
    decision = explain(args.config, args.cluster, management_groups_path=args.management_groups)
    findings: list[dict[str, Any]] | None = None
    if args.policy_assignments:
        snapshot = read_cluster_file(args.cluster)
        groups: Sequence[str] = ()
        if args.management_groups:
            ancestry = load_management_groups(args.management_groups)
            groups = ancestry.get(ignore_case_key(snapshot.subscription_id), ())
        policy = load_policy_assignments(args.policy_assignments)
        findings = [f.to_json() for f in offline_findings(snapshot, policy, management_groups=groups)]
    if args.output == "table":
        console = Console()
        render_table(decision, console)
        if findings is not None:
            render_findings(findings, console)
    else:
        body: dict[str, Any] = decision.to_json()
        if findings is not None:
            body["findings"] = findings
        print(json.dumps(body, indent=2))
    return 0


def register(subparsers: Any) -> None:
    """Add ``explain``."""
    parser = subparsers.add_parser(
        "explain",
        help="decide for one cluster file against a config, offline (or, with --live, against Azure)",
    )
    parser.add_argument("--config", required=True, metavar="FILE", help="remediator config (YAML or JSON)")
    parser.add_argument(
        "--cluster",
        required=True,
        metavar="FILE|ID",
        help="managedCluster GET body (JSON); with --live, the cluster's ARM id",
    )
    parser.add_argument(
        "--live",
        action="store_true",
        help="read Azure as the environment says and explain from a dry-run reconcile (writes nothing)",
    )
    parser.add_argument(
        "--policy-assignments",
        metavar="FILE",
        help="JSON list of policy assignments (az policy assignment list): add preflight findings offline",
    )
    parser.add_argument("--output", choices=("json", "table"), default="json", help="default: json")
    parser.add_argument(
        "--management-groups",
        metavar="FILE",
        help="JSON object: subscription GUID -> names of the management groups above it",
    )
    parser.set_defaults(handler=_run)
