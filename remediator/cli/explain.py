"""``explain``: why a cluster is (or is not) selected, and by which tag and value.

Offline (``--cluster FILE``, or ``--cluster -`` for stdin): the pure decision core over a config and cluster
JSON, so an operator can see why a cluster is or is not selected before deploying a config. The JSON is one
ARM managedCluster GET body or ``az aks show -o json`` output, or a list of them (``az aks list -o json``, or
an ARM list response ``{"value": [...]}``): one decision per cluster, in order. Nothing is called.
Management-group ancestry is not in a cluster id; pass ``--management-groups FILE`` (a JSON object mapping
subscription GUID to the names of the management groups above it) when the config scopes by management group.
When management groups decide the answer and the ancestry is unknown (no file, or the cluster's subscription
is not in it), ``explain`` refuses with exit code 2 rather than answer ``out-of-scope`` for a cluster the
service would select.

Live (``--cluster-id ID``): the same answer as ``POST /api/explain``, from Azure: the cluster is read, the
scope resolved (management groups too), the backup extension's state observed, and what a reconcile would do
is planned without writing (a dry run), with preflight's answer: ``blockedBy`` (each blocking policy
assignment, Safeguards, storage or provider finding with the parameter and the exact fix),
``blockedByPolicy``, ``warnings`` and ``findings`` (:func:`remediator.core.explanation.explanation`). A
cluster outside the scope or unknown to ARM is refused with the HTTP 403/404 sentence (exit 9/8).

Offline, ``--policy-assignments FILE`` (the JSON of ``az policy assignment list``: a list of assignment
bodies, or ``{"value": [...]}``) adds preflight's ``findings`` to each decision: every Kubernetes
(Gatekeeper) or resource-type Deny assignment that would block the backup extension, named, with the exact
parameter change (built-in definitions from the product's catalog; a custom one is not in the file and is
reported as not evaluated). Safeguards, storage and providers need Azure (``--cluster-id``).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from remediator.cli.common import PROG, command_parser
from remediator.cli.errors import ExitCode
from remediator.cli.output import emit
from remediator.core.config import RemediatorConfig, decode_document, load_config
from remediator.core.decision import Decision, decide
from remediator.core.errors import UserInputError
from remediator.core.ids import parse_cluster_id
from remediator.core.preflight import Finding, PolicyAssignment, PolicyData, PreflightInput, preflight
from remediator.core.snapshot import ClusterSnapshot
from remediator.core.text import ignore_case_key

STDIN = "-"
"""``--cluster -`` reads the cluster JSON from standard input."""


def read_json_file(path: str, *, what: str) -> object:
    """Decode a JSON file (``-``: standard input); unreadable or invalid JSON is a :class:`UserInputError`
    naming the file."""
    source = "stdin" if path == STDIN else path
    try:
        text = sys.stdin.read() if path == STDIN else Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise UserInputError(f"cannot read the {what}: {exc}", source=source) from exc
    if not text.strip():
        raise UserInputError(f"the {what} is empty", source=source)
    return decode_document(text, source=source, prefer_json=True)


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


def cluster_bodies(data: object, *, source: str) -> tuple[list[tuple[str, object]], bool]:
    """The cluster bodies in a decoded file, each with the source to name in errors, and whether the file
    held a list (then ``explain`` answers with a list too)."""
    if isinstance(data, Mapping) and "responses" in data and "id" not in data:
        raise UserInputError(
            "this is an Azure REST API example file, not a cluster body; pass its responses.200.body",
            field="responses",
            source=source,
        )
    if isinstance(data, Mapping) and isinstance(data.get("value"), list) and "id" not in data:
        return [(f"{source}: value[{i}]", body) for i, body in enumerate(data["value"])], True
    if isinstance(data, list):
        if not data:
            raise UserInputError("the list of clusters is empty", source=source)
        return [(f"{source}: [{i}]", body) for i, body in enumerate(data)], True
    return [(source, data)], False


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
    inp = PreflightInput(cluster=snapshot, management_groups=tuple(management_groups), policy=policy)
    return preflight(inp)


def explain_all(
    config: RemediatorConfig,
    data: object,
    *,
    source: str,
    config_path: str,
    management_groups_path: str | None = None,
) -> tuple[list[Decision], bool]:
    """Decide for every cluster in a decoded cluster file; raises :class:`UserInputError` naming the file
    (and list index) and field."""
    bodies, is_list = cluster_bodies(data, source=source)
    lookup = management_group_lookup(
        config, config_path=config_path, management_groups_path=management_groups_path
    )
    decisions = [
        decide(ClusterSnapshot.from_arm(body, source=where), config, management_groups_of=lookup)
        for where, body in bodies
    ]
    return decisions, is_list


def explain(config_path: str, cluster_path: str, *, management_groups_path: str | None = None) -> Decision:
    """Load both files and decide for the one cluster.

    :raises UserInputError: naming the file and field.
    """
    config = load_config(config_path)
    source = "stdin" if cluster_path == STDIN else cluster_path
    data = read_json_file(cluster_path, what="cluster file")
    decisions, is_list = explain_all(
        config, data, source=source, config_path=config_path, management_groups_path=management_groups_path
    )
    if is_list:
        raise UserInputError("expected one cluster, got a list", source=source)
    return decisions[0]


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


def _matched(decision: Mapping[str, Any]) -> str:
    hit = decision.get("matchedRule")
    if not isinstance(hit, Mapping):
        return ""
    pattern = hit.get("pattern")
    shown = f"{hit.get('kind')} {hit.get('tag')}={hit.get('value')}"
    return shown if pattern is None or pattern == hit.get("value") else f"{shown} ({pattern})"


def decision_rows(result: Any) -> Any:
    """``-o table`` for explain: one row per cluster with the matched tag and value."""
    items = result if isinstance(result, list) else [result]
    rows = []
    for item in items:
        if not isinstance(item, Mapping) or "clusterId" not in item:
            return result
        cluster = parse_cluster_id(item["clusterId"])
        storage = item.get("storageAccountId")
        row: dict[str, Any] = {
            "Cluster": cluster.name,
            "ResourceGroup": cluster.resource_group,
            "Selected": item.get("selected"),
            "Reason": item.get("reason"),
            "MatchedRule": _matched(item),
            "Storage": str(storage).rsplit("/", 1)[-1] if storage else "",
            "Blockers": ", ".join(item.get("blockers") or []),
        }
        if "extensionState" in item:
            row["Extension"] = item.get("extensionState") or ""
            row["WouldDo"] = ", ".join(a.get("kind", "") for a in item.get("wouldDo") or [])
        if "findings" in item:
            blocking = [f for f in item.get("findings") or [] if f.get("severity") == "block"]
            row["BlockedBy"] = ", ".join(
                str((f.get("evidence") or {}).get("assignmentName") or f.get("code")) for f in blocking
            )
        rows.append(row)
    return rows


def _config_path(args: argparse.Namespace) -> str:
    path: str | None = args.config or os.environ.get("REMEDIATOR_CONFIG_FILE")
    if not path:
        raise UserInputError("pass --config FILE (or set REMEDIATOR_CONFIG_FILE)", field="--config")
    return path


def _run_offline(args: argparse.Namespace) -> int:
    config_path = _config_path(args)
    config = load_config(config_path)
    source = "stdin" if args.cluster == STDIN else args.cluster
    data = read_json_file(args.cluster, what="cluster file")
    decisions, is_list = explain_all(
        config,
        data,
        source=source,
        config_path=config_path,
        management_groups_path=args.management_groups,
    )
    answers = [d.to_json() for d in decisions]
    if args.policy_assignments is not None:
        policy = load_policy_assignments(args.policy_assignments)
        ancestry = load_management_groups(args.management_groups) if args.management_groups else {}
        bodies, _ = cluster_bodies(data, source=source)
        for answer, (where, body) in zip(answers, bodies, strict=True):
            snapshot = ClusterSnapshot.from_arm(body, source=where)
            groups = ancestry.get(ignore_case_key(snapshot.subscription_id), ())
            answer["findings"] = [
                f.to_json() for f in offline_findings(snapshot, policy, management_groups=groups)
            ]
    result: Any = answers if is_list else answers[0]
    emit(result, args, table=decision_rows)
    return int(ExitCode.OK)


def _run_live(args: argparse.Namespace) -> int:
    from remediator.cli.live import open_runtime, require_cluster
    from remediator.core.explanation import explanation

    cluster = parse_cluster_id(args.cluster_id, field="--cluster-id")
    with open_runtime(args) as runtime:
        require_cluster(runtime, cluster)
        report = runtime.reconciler.reconcile(cluster, dry_run=True)
    decision: dict[str, Any] = dict(report.decision or {"clusterId": cluster.canonical})
    decision["extensionState"] = report.extension_state
    decision["wouldDo"] = [action.to_json() for action in report.actions]
    decision["outcome"] = report.outcome.to_json()
    answer = explanation(report)  # preflight: what blocks, with the exact fix, and what only warns
    for key in ("blockedBy", "blockedByPolicy", "warnings", "links", "findings"):
        decision[key] = answer[key]
    emit(decision, args, table=decision_rows)
    return int(ExitCode.OK)


def _run(args: argparse.Namespace) -> int:
    if args.cluster_id is not None:
        if args.management_groups is not None:
            raise UserInputError(
                "--management-groups is for --cluster FILE; --cluster-id resolves management groups in Azure",
                field="--management-groups",
            )
        if args.policy_assignments is not None:
            raise UserInputError(
                "--policy-assignments is for --cluster FILE; --cluster-id reads the assignments from Azure",
                field="--policy-assignments",
            )
        return _run_live(args)
    return _run_offline(args)


def register(subparsers: Any) -> None:
    """Add ``explain``."""
    parser = command_parser(
        subparsers,
        "explain",
        help="why a cluster is or is not selected (the tag and value that decided), offline or live",
        description=(
            "Show the decision for clusters against a config: selected or not, the reason, the tag and value"
            " that decided (matchedRule), the storage account and the readiness blockers. --cluster FILE (or"
            " - for stdin) decides offline over cluster JSON: one cluster, or a list (az aks list -o json)."
            " --cluster-id ID asks Azure, like POST /api/explain: it also shows the backup extension's state"
            " and what a reconcile would do (nothing is written)."
        ),
        examples=(
            (
                "Explain one cluster file",
                f"{PROG} explain --config examples/multi-region.yaml --cluster examples/clusters/tagged.json"
                " --management-groups examples/management-groups.json",
            ),
            (
                "Explain every cluster of a subscription, as a table",
                f"az aks list -o json | {PROG} explain --config my-config.yaml --cluster - -o table",
            ),
            (
                "Names of the clusters the config would not select",
                f"az aks list -o json | {PROG} explain --config my-config.yaml --cluster -"
                ' --query "[?!selected].clusterId" -o tsv',
            ),
            (
                "Ask Azure about one cluster (reads only)",
                f"{PROG} explain --config my-config.yaml --cluster-id <cluster-id>",
            ),
            (
                "What policy assignments would block, offline (the file: az policy assignment list"
                " --disable-scope-strict-match -o json)",
                f"{PROG} explain --config my-config.yaml --cluster cluster.json"
                " --policy-assignments assignments.json",
            ),
        ),
    )
    parser.add_argument(
        "--config",
        metavar="FILE",
        help="remediator config (YAML or JSON); default: $REMEDIATOR_CONFIG_FILE",
    )
    clusters = parser.add_argument_group("the clusters (one of)")
    source = clusters.add_mutually_exclusive_group(required=True)
    source.add_argument(
        "--cluster",
        metavar="FILE",
        help="cluster JSON: an ARM GET body, az aks show/list -o json output, or a list; - reads stdin",
    )
    source.add_argument(
        "--cluster-id",
        metavar="ID",
        help="a managed cluster's ARM id: read it from Azure (settings as for reconcile)",
    )
    parser.add_argument(
        "--management-groups",
        metavar="FILE",
        help="with --cluster: JSON object of subscription GUID -> names of the management groups above it",
    )
    parser.add_argument(
        "--policy-assignments",
        metavar="FILE",
        help="with --cluster: policy assignments JSON (az policy assignment list): add preflight's findings",
    )
    parser.set_defaults(handler=_run)
