"""``config check FILE [--live]`` validates a config file; ``config schema`` prints its JSON Schema.

``config check`` is what an operator runs before deploying a config (and what CI can run on the repo's
configs). Offline it reports every mistake at once, one line each naming the field (region names are checked
against Azure's, with "did you mean"), and exits 2. ``--live`` then asks Azure whether the config describes
something that exists (:mod:`remediator.cli.config_live`). ``config schema`` regenerates
``docs/config.schema.json``.

For protect mode it also refuses a config that breaks Azure's placement rules (``core/placement.py``: every
error at once naming its field, exit 2; doubtful ones are warnings on stderr), and with ``--inventory FILE``
(the clusters, e.g. ``az aks list -o json`` or a Resource Graph result) it computes the role assignments the
chain needs per subscription (``core/role_demand.role_assignment_demand``, listed as ``roleAssignments``) and
refuses, before any write, a config that would push a subscription past Azure's 4000 (``--assignments FILE``:
what each subscription holds already).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from remediator.cli.common import PROG, command_parser, epilog
from remediator.cli.errors import ExitCode
from remediator.cli.output import emit
from remediator.core.config import RemediatorConfig, decode_document, load_config
from remediator.core.errors import UserInputError, UserInputErrors
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


def config_summary(path: str, config: RemediatorConfig) -> dict[str, Any]:
    """What ``config check`` prints for a valid config."""
    include = config.selection.include
    regions = sorted(config.targets)
    summary = (
        f"mode {config.remediation.mode}; "
        f"{'all in-scope clusters' if include is None else f'{len(include)} include rule(s)'}, "
        f"{len(config.selection.exclude)} exclude rule(s); targets for {', '.join(regions)}"
    )
    return {
        "file": path,
        "valid": True,
        "summary": summary,
        "mode": config.remediation.mode,
        "managementGroups": [str(ref.name) for ref in config.scope.management_groups],
        "subscriptions": [str(ref.subscription_id) for ref in config.scope.subscriptions],
        "resourceGroups": [str(ref) for ref in config.scope.resource_groups],
        "scopeRegions": None if config.scope.regions is None else list(config.scope.regions),
        "storageRegions": regions,
        "includeRules": None if include is None else len(include),
        "excludeRules": len(config.selection.exclude),
    }


def _summary_table(result: Any) -> Any:
    if not isinstance(result, dict) or "summary" not in result:
        return result
    return [{"File": result["file"], "Valid": result["valid"], "Summary": result["summary"]}]


def _read(path: str, *, what: str) -> object:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise UserInputError(f"cannot read the {what}: {exc}", source=path) from exc
    return decode_document(text, source=path)


def load_inventory(path: str) -> list[DemandCluster]:
    """Clusters from a JSON/YAML file: a list of cluster objects (``az aks list -o json``, ARM bodies) or a
    Resource Graph or ARM list answer (``{"data": [...]}``, ``{"value": [...]}``); each needs ``id`` and
    ``location``, ``tags`` and ``identity`` are used when present.

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


def check_placement(path: str, config: RemediatorConfig) -> None:
    """Protect mode's placement rules: warnings on stderr; errors raised, all at once.

    :raises UserInputError: one placement error (``UserInputErrors`` for several), naming the field.
    """
    problems = placement_problems(config)
    for problem in problems:
        if problem.severity != "error":
            print(f"warning: {path}: {problem.field}: {problem.message}", file=sys.stderr)
    errors = [
        UserInputError(p.message, field=p.field, source=path) for p in problems if p.severity == "error"
    ]
    if len(errors) == 1:
        raise errors[0]
    if errors:
        raise UserInputErrors(errors)


def demand_rows(demand: RoleAssignmentDemand, source: str) -> list[dict[str, Any]]:
    """Role assignments per subscription, worst first; warnings on stderr.

    :raises UserInputError: a subscription would go past Azure's limit (naming it).
    """
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
    return [
        {
            "subscription": row.subscription_id,
            "planned": row.planned,
            "existing": row.existing,
            "limit": row.limit,
            "headroom": row.headroom,
            "status": row.status,
        }
        for row in demand.worst_first()
    ]


def _check(args: argparse.Namespace) -> int:
    config = load_config(args.file)  # every offline mistake, all at once: main() prints one line each
    check_placement(args.file, config)
    roles: dict[str, Any] | None = None
    if args.inventory:
        counts = load_assignment_counts(args.assignments) if args.assignments else None
        demand = role_assignment_demand(config, load_inventory(args.inventory), existing=counts)
        roles = {"selectedClusters": demand.clusters, "roleAssignments": demand_rows(demand, args.inventory)}
    elif args.assignments:
        raise UserInputError("--assignments needs --inventory", field="--assignments")
    if args.live:
        from remediator.cli.config_live import run_live_check

        return run_live_check(args, config)
    summary = config_summary(args.file, config)
    if roles is not None:
        summary.update(roles)
    emit(summary, args, table=_summary_table)
    return int(ExitCode.OK)


def _schema(args: argparse.Namespace) -> int:
    emit(config_schema(), args)
    return int(ExitCode.OK)


def register(subparsers: Any) -> None:
    """Add ``config check`` and ``config schema``."""
    parser = subparsers.add_parser(
        "config",
        help="validate a config file (offline or against Azure) or print its JSON Schema",
        description="Validate a remediator config file, or print its JSON Schema. ACTION --help for more.",
        epilog=epilog(
            (
                ("Validate a config", f"{PROG} config check my-config.yaml"),
                ("Validate it against Azure as well", f"{PROG} config check my-config.yaml --live -o table"),
                ("Print the JSON Schema", f"{PROG} config schema"),
            )
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="config_command", required=True, metavar="ACTION")
    check = command_parser(
        commands,
        "check",
        help="validate a config file (YAML or JSON): every error at once, exit 2 naming each field",
        description=(
            "Validate a config file offline: every mistake is reported at once, one line each, naming the"
            " field; region names are checked against Azure's (with 'did you mean'); a storage region outside"
            " scope.regions, or a region in scope.regions without storage, is an error. Exit 2 when anything"
            " is wrong. With --live, also ask Azure (needs a signed-in identity: az login): each storage"
            " account exists with the right kind and region, the resource providers are registered, the"
            " identity holds its roles (as far as it can read them), the management groups resolve. In"
            " protect mode, placement rules are checked too, and --inventory counts the role assignments the"
            " chain needs per subscription (exit 2 past Azure's 4000)."
        ),
        examples=(
            ("Validate a config before deploying it", f"{PROG} config check examples/multi-region.yaml"),
            ("Only the exit code (for CI)", f"{PROG} config check my-config.yaml -o none"),
            (
                "Check it against Azure too, for the Function app's identity",
                f"{PROG} config check my-config.yaml --live --principal-id <app-identity-object-id>",
            ),
            (
                "Only the failed live checks, as a table",
                f"{PROG} config check my-config.yaml --live --query \"[?status!='ok']\" -o table",
            ),
            (
                "Protect mode: role assignments per subscription for clusters.json (az aks list -o json)",
                f"{PROG} config check examples/protect.yaml --inventory clusters.json --query roleAssignments"
                " -o table",
            ),
        ),
    )
    check.add_argument("file", metavar="FILE", help="the config file (YAML or JSON)")
    check.add_argument(
        "--live",
        action="store_true",
        help="also check the config against Azure (reads only; uses the settings of the other commands)",
    )
    check.add_argument(
        "--principal-id",
        metavar="GUID",
        help="with --live: the identity whose roles to check (default: the signed-in identity's object id)",
    )
    check.add_argument(
        "--inventory",
        metavar="FILE",
        help="clusters (az aks list -o json, or a Resource Graph answer): count the role assignments the"
        " chain needs per subscription against Azure's 4000",
    )
    check.add_argument(
        "--assignments",
        metavar="FILE",
        help='JSON {"<subscription>": <role assignments it holds now>} (with --inventory)',
    )
    check.set_defaults(handler=_check)
    schema = command_parser(
        commands,
        "schema",
        help="print the config JSON Schema (docs/config.schema.json)",
        description="Print the JSON Schema of the config file (what docs/config.schema.json holds).",
        examples=(
            ("Regenerate the published schema", f"{PROG} config schema > docs/config.schema.json"),
            (
                "The allowed remediation modes",
                f"{PROG} config schema --query '\"$defs\".RemediationConfig.properties.mode.enum' -o tsv",
            ),
        ),
    )
    schema.set_defaults(handler=_schema)
