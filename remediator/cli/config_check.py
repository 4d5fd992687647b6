"""``config check FILE`` validates a config file; ``config schema`` prints its JSON Schema.

``config check`` is what an operator runs before deploying a config (and what CI can run on the repo's
configs); ``config schema`` regenerates ``docs/config.schema.json``. For protect mode it also refuses a config
that breaks Azure's placement rules (``core/placement.py``: errors name the field, exit 2; doubtful ones are
warnings on stderr), and with ``--inventory FILE`` (the clusters, e.g. ``az aks list -o json`` or a Resource
Graph result) it computes the role assignments the chain needs per subscription
(``core/role_demand.role_assignment_demand``) and refuses, before any write, a config that would push a
subscription past Azure's 4000 (``--assignments FILE``: what each subscription holds already).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from remediator.core.config import RemediatorConfig, decode_document, load_config
from remediator.core.errors import UserInputError
from remediator.core.ids import InvalidResourceIdError, parse_cluster_id
from remediator.core.placement import placement_problems
from remediator.core.role_demand import DemandCluster, RoleAssignmentDemand, role_assignment_demand


def config_schema() -> dict[str, Any]:
    """The JSON Schema of the config file (camelCase field names, docstrings as descriptions)."""
    schema = RemediatorConfig.model_json_schema(by_alias=True, mode="validation")
    _one_line_descriptions(schema)
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "aks-backup-remediator config"
    return schema


def _one_line_descriptions(node: object) -> None:
    """Docstrings wrap at the source's line length; schema descriptions read better as one line each."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "description" and isinstance(value, str):
                node[key] = " ".join(value.split())
            else:
                _one_line_descriptions(value)
    elif isinstance(node, list):
        for item in node:
            _one_line_descriptions(item)


def _read(path: str, *, what: str) -> object:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise UserInputError(f"cannot read the {what}: {exc}", source=path) from exc
    return decode_document(text, source=path)


def load_inventory(path: str) -> list[DemandCluster]:
    """Clusters from a JSON/YAML file: a list of cluster objects (``az aks list -o json``, ARM bodies) or a
    Resource Graph answer (``{"data": [...]}``); each needs ``id`` and ``location``, ``tags`` and ``identity``
    are used when present.

    :raises UserInputError: naming the file and the entry.
    """
    data = _read(path, what="inventory file")
    if isinstance(data, Mapping):
        data = data.get("data", data.get("value"))
    if not isinstance(data, list):
        raise UserInputError("expected a list of clusters (or {data: [...]})", source=path)
    clusters: list[DemandCluster] = []
    for index, item in enumerate(data):
        field = f"[{index}]"
        if not isinstance(item, Mapping):
            raise UserInputError("expected an object", field=field, source=path)
        try:
            cluster_id = parse_cluster_id(item.get("id"), field=f"{field}.id")
        except InvalidResourceIdError as exc:
            raise UserInputError(exc.message, field=f"{field}.id", source=path) from exc
        location = item.get("location")
        if not isinstance(location, str) or not location:
            raise UserInputError("location is required", field=f"{field}.location", source=path)
        tags = item.get("tags") or {}
        if not isinstance(tags, Mapping):
            raise UserInputError("tags must be an object", field=f"{field}.tags", source=path)
        identity = item.get("identity") if isinstance(item.get("identity"), Mapping) else {}
        principal = identity.get("principalId") if isinstance(identity, Mapping) else None
        clusters.append(
            DemandCluster(
                id=cluster_id,
                location=location,
                tags={str(k): str(v) for k, v in tags.items()},
                principal_id=str(principal) if principal else None,
            )
        )
    return clusters


def load_assignment_counts(path: str) -> dict[str, int]:
    """``{"<subscription guid>": <role assignments it holds>}``."""
    data = _read(path, what="assignments file")
    if not isinstance(data, Mapping):
        raise UserInputError("expected an object of subscription id -> count", source=path)
    counts: dict[str, int] = {}
    for subscription, count in data.items():
        if not isinstance(count, int) or isinstance(count, bool) or count < 0:
            raise UserInputError("expected a non-negative integer", field=str(subscription), source=path)
        counts[str(subscription).lower().removeprefix("/subscriptions/")] = count
    return counts


def _report_demand(demand: RoleAssignmentDemand, source: str) -> None:
    for row in demand.worst_first():
        existing = "?" if row.existing is None else str(row.existing)
        print(
            f"role assignments: subscription {row.subscription_id}: {row.planned} needed + {existing}"
            " existing"
            f" of {row.limit} (headroom {row.headroom}, {row.status})"
        )
    for row in demand.warned:
        print(
            f"warning: subscription {row.subscription_id} would hold {row.projected} of {row.limit} role"
            " assignments; consider remediation.roleAssignmentScope resourceGroup or subscription",
            file=sys.stderr,
        )
    if demand.overflowing:
        row = demand.overflowing[0]
        raise UserInputError(
            f"subscription {row.subscription_id} would need {row.projected} role assignments, over Azure's"
            f" {row.limit} per subscription (troubleshoot-limits.md); set remediation.roleAssignmentScope to"
            " resourceGroup or subscription, or narrow the selection (docs/rules.md)",
            field=f"subscription {row.subscription_id}",
            source=source,
        )


def _check(args: argparse.Namespace) -> int:
    config = load_config(args.file)
    problems = placement_problems(config)
    for problem in problems:
        if problem.severity != "error":
            print(f"warning: {args.file}: {problem.field}: {problem.message}", file=sys.stderr)
    errors = [p for p in problems if p.severity == "error"]
    if errors:
        extra = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        raise UserInputError(errors[0].message + extra, field=errors[0].field, source=args.file)
    include = config.selection.include
    regions = ", ".join(sorted(config.targets))
    if args.inventory:
        counts = load_assignment_counts(args.assignments) if args.assignments else None
        demand = role_assignment_demand(config, load_inventory(args.inventory), existing=counts)
        print(f"inventory: {demand.clusters} selected cluster(s)")
        _report_demand(demand, args.inventory)
    print(
        f"ok: {args.file}: mode {config.remediation.mode}; "
        f"{'all in-scope clusters' if include is None else f'{len(include)} include rule(s)'}, "
        f"{len(config.selection.exclude)} exclude rule(s); targets for {regions}"
    )
    return 0


def _schema(args: argparse.Namespace) -> int:
    print(json.dumps(config_schema(), indent=2, sort_keys=False))
    return 0


def register(subparsers: Any) -> None:
    """Add ``config check`` and ``config schema``."""
    parser = subparsers.add_parser("config", help="validate a config file or print its JSON Schema")
    commands = parser.add_subparsers(dest="config_command", required=True, metavar="ACTION")
    check = commands.add_parser(
        "check", help="validate a config file (YAML or JSON); exit 2 naming the field"
    )
    check.add_argument("file", metavar="FILE")
    check.add_argument(
        "--inventory",
        metavar="FILE",
        help="clusters (az aks list -o json, or a Resource Graph answer): check the role assignments the"
        " chain needs per subscription against Azure's 4000",
    )
    check.add_argument(
        "--assignments",
        metavar="FILE",
        help='JSON {"<subscription>": <role assignments it holds now>} (with --inventory)',
    )
    check.set_defaults(handler=_check)
    schema = commands.add_parser("schema", help="print the config JSON Schema (docs/config.schema.json)")
    schema.set_defaults(handler=_schema)
