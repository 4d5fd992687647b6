"""``explain --config FILE --cluster FILE [--live]``: the decision for one cluster, offline; with ``--live``
also every link of the mode's chain (state, why, next action) from a dry-run reconcile against ARM as the
environment names it (``REMEDIATOR_ARM_ENDPOINT`` ...; nothing is written, as ``POST /api/explain``).

The cluster file is the JSON of an ARM managedCluster GET (or ``az aks show -o json``). Nothing is called:
this is the pure decision core over two files, so an operator can see why a cluster is or is not selected
before deploying a config. Management-group ancestry is not in a cluster id; pass ``--management-groups FILE``
(a JSON object mapping subscription GUID to the names of the management groups above it) when the config
scopes by management group. When management groups decide the answer and the ancestry is unknown (no file, or
the cluster's subscription is not in it), ``explain`` refuses with exit code 2 rather than answer
``out-of-scope`` for a cluster the service would select.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from remediator.cli.reconcile import render_links
from remediator.core.config import RemediatorConfig, decode_document, load_config
from remediator.core.decision import Decision, decide
from remediator.core.errors import UserInputError
from remediator.core.outcomes import ReconcileReport
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


def explain(config_path: str, cluster_path: str, *, management_groups_path: str | None = None) -> Decision:
    """Load both files and decide; raises :class:`UserInputError` naming the file and field."""
    config = load_config(config_path)
    body = read_json_file(cluster_path, what="cluster file")
    if isinstance(body, Mapping) and "responses" in body and "id" not in body:
        raise UserInputError(
            "this is an Azure REST API example file, not a cluster body; pass its responses.200.body",
            field="responses",
            source=cluster_path,
        )
    snapshot = ClusterSnapshot.from_arm(body, source=cluster_path)
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


def _live(config_path: str, decision: Decision) -> ReconcileReport:
    """A dry-run reconcile of the cluster (reads only) for its links."""
    import os

    from remediator.service.runtime import Runtime  # SDK imports only when asked

    runtime = Runtime.from_env(os.environ, config_path=config_path)
    try:
        return runtime.reconciler.reconcile(decision.cluster_id, dry_run=True)
    finally:
        runtime.close()


def _run(args: argparse.Namespace) -> int:
    decision = explain(args.config, args.cluster, management_groups_path=args.management_groups)
    report = _live(args.config, decision) if args.live else None
    if args.output == "table":
        render_table(decision, Console())
        if report is not None:
            render_links(report, Console())
    else:
        data: dict[str, Any] = decision.to_json()
        if report is not None:
            data = {
                "decision": data,
                "links": [dict(link) for link in report.links],
                "outcome": report.outcome.to_json(),
            }
        print(json.dumps(data, indent=2))
    return 0


def register(subparsers: Any) -> None:
    """Add ``explain``."""
    parser = subparsers.add_parser("explain", help="decide for one cluster file against a config, offline")
    parser.add_argument("--config", required=True, metavar="FILE", help="remediator config (YAML or JSON)")
    parser.add_argument("--cluster", required=True, metavar="FILE", help="managedCluster GET body (JSON)")
    parser.add_argument("--output", choices=("json", "table"), default="json", help="default: json")
    parser.add_argument(
        "--live",
        action="store_true",
        help="also show every link of the chain (state, why, next) from a dry-run reconcile against ARM",
    )
    parser.add_argument(
        "--management-groups",
        metavar="FILE",
        help="JSON object: subscription GUID -> names of the management groups above it",
    )
    parser.set_defaults(handler=_run)
