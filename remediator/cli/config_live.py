"""``config check --live``: does the config describe an Azure that exists, and can the identity act on it?

Each check is one row ``{check, field, target, status, detail}``; ``status`` is ``ok``, ``failed`` (Azure
contradicts the config: fix the config or Azure) or ``unknown`` (the identity running the check may not read
it; the row says which permission would tell). The command exits 2 when any check failed, naming the
config field in each row, and 0 otherwise. A failure to ask Azure at all (authentication, an unreachable
endpoint, throttling) is the command's error, with its exit code (see ``--help``).

The checks, for the identity ``--principal-id`` (default: the signed-in identity):

* ``storage-account`` (``storage.<region>``): exists, is StorageV2 (general-purpose v2) and not Premium,
  and is in the region it is configured for (Azure Backup for AKS: "General-purpose v2 only, not Premium",
  "blob container in the same region as the cluster"; shared/reference/aks_backup_facts.md §2.3);
* ``provider`` (``scope.*``): Microsoft.ContainerService and (install mode) Microsoft.KubernetesConfiguration
  or (policy-task mode) Microsoft.PolicyInsights registered in each listed subscription (of
  ``scope.subscriptions`` and ``scope.resourceGroups``), Microsoft.Storage in each storage account's;
* ``role`` (``scope.*`` / ``storage.<region>``): the roles docs/deploy.md "Roles" grants the app identity:
  Reader everywhere in scope, Kubernetes Extension Contributor (install) or Resource Policy Contributor
  (policy-task) there; on each storage account (install mode) a role that can create the backup container
  (the deployment's custom "Container Writer", recognised as any non-built-in role assigned there, or a
  built-in role that includes container writes) and, with ``grantStorageAccess``, Role Based Access Control
  Administrator. A broader built-in role (Owner, Contributor, ...) counts where it includes the permission;
* ``management-group`` (``scope.managementGroups[i]``): resolves to at least one subscription the identity
  can read in Resource Graph;
* ``policy-assignment`` (``remediation.policyAssignmentIds[i]``, policy-task mode): the assignment exists and
  its effective effect can remediate (DeployIfNotExists or Modify; its definition read once): Azure accepts a
  remediation task for an Audit/AuditIfNotExists assignment and ends it Succeeded with zero deployments
  (``shared/recordings/azure-cli__policyinsights__test_policy_insights_remediation.json``), so such an
  assignment would never install anything (:func:`remediator.core.plan.policy_task.remediation_effect`).
"""

from __future__ import annotations

import argparse
import logging
import re
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import partial
from typing import Any

from remediator.cli.errors import ExitCode, classify
from remediator.cli.output import emit
from remediator.core.config import RemediatorConfig
from remediator.core.errors import UserInputError
from remediator.core.regions import AZURE_REGIONS

logger = logging.getLogger(__name__)

_GUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")

OK = "ok"
FAILED = "failed"
UNKNOWN = "unknown"

OWNER = "8e3af657-a8ff-443c-a75c-2fe8c4bcb635"
CONTRIBUTOR = "b24988ac-6180-42a0-ab88-20f7382dd24c"
READER = "acdd72a7-3385-48ef-bd42-f606fba81ae7"
USER_ACCESS_ADMINISTRATOR = "18d7d88d-d35e-4fb5-a5c3-7773c20a72d9"
RBAC_ADMINISTRATOR = "f58310d9-a9f6-439a-9e8d-f62e7b41a168"
KUBERNETES_EXTENSION_CONTRIBUTOR = "85cb6faf-e071-4c9b-8136-154b5a04f717"
RESOURCE_POLICY_CONTRIBUTOR = "36243c78-bf99-498c-9df9-86d9f8d28608"
STORAGE_ACCOUNT_CONTRIBUTOR = "17d1049b-9a84-46fb-8f53-869881c3d3ab"
STORAGE_BLOB_DATA_CONTRIBUTOR = "ba92f5b4-2d11-453d-a403-e96b0029c9fe"
STORAGE_BLOB_DATA_OWNER = "b7e6dc6d-f1e8-4753-8033-0f276bb0955b"
"""Built-in role definition GUIDs (the same in every tenant): infra/roles.json and Microsoft's built-in role
reference (learn.microsoft.com "Azure built-in roles")."""

BUILT_IN_ROLES = frozenset(
    {
        OWNER,
        CONTRIBUTOR,
        READER,
        USER_ACCESS_ADMINISTRATOR,
        RBAC_ADMINISTRATOR,
        KUBERNETES_EXTENSION_CONTRIBUTOR,
        RESOURCE_POLICY_CONTRIBUTOR,
        STORAGE_ACCOUNT_CONTRIBUTOR,
        STORAGE_BLOB_DATA_CONTRIBUTOR,
        STORAGE_BLOB_DATA_OWNER,
        "974c5e8b-45b9-4653-ba55-5f855dd0fb88",  # Storage Queue Data Contributor
        "0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3",  # Storage Table Data Contributor
        "3913510d-42f4-4e42-8a64-420c390055eb",  # Monitoring Metrics Publisher
        "d5a91429-5739-47e2-a06b-3470a27159e7",  # EventGrid Data Sender
    }
)


@dataclass(frozen=True)
class RoleNeed:
    """A role the identity needs, and the built-in roles that include it."""

    name: str
    satisfied_by: frozenset[str]
    custom_counts: bool = False
    """A non-built-in role assigned at the scope counts too (the deployment's custom container writer)."""


NEED_READER = RoleNeed("Reader", frozenset({READER, CONTRIBUTOR, OWNER}))
NEED_EXTENSIONS = RoleNeed(
    "Kubernetes Extension Contributor", frozenset({KUBERNETES_EXTENSION_CONTRIBUTOR, CONTRIBUTOR, OWNER})
)
NEED_REMEDIATIONS = RoleNeed(
    "Resource Policy Contributor", frozenset({RESOURCE_POLICY_CONTRIBUTOR, CONTRIBUTOR, OWNER})
)
NEED_CONTAINER_WRITER = RoleNeed(
    "a role that creates blob containers (AKS Backup Remediator Container Writer)",
    frozenset({STORAGE_ACCOUNT_CONTRIBUTOR, CONTRIBUTOR, OWNER}),
    custom_counts=True,
)
NEED_GRANTER = RoleNeed(
    "Role Based Access Control Administrator",
    frozenset({RBAC_ADMINISTRATOR, USER_ACCESS_ADMINISTRATOR, OWNER}),
)


def _row(check: str, field: str, target: str, status: str, detail: str) -> dict[str, str]:
    return {"check": check, "field": field, "target": target, "status": status, "detail": detail}


def _handled(exc: Exception) -> tuple[str, str] | None:
    """A read's failure as a check result (status, detail), or ``None`` when it is the command's failure
    (authentication, unreachable, throttled: no check can run, so ``main`` reports it)."""
    failure = classify(exc)
    if failure.code is ExitCode.FORBIDDEN:
        return UNKNOWN, f"the identity running the check may not read this ({failure.message})"
    if failure.code in (ExitCode.NOT_FOUND, ExitCode.AZURE_ERROR):
        return FAILED, failure.message
    return None


def _attempt(read: Callable[[], Any]) -> tuple[Any, tuple[str, str] | None]:
    try:
        return read(), None
    except Exception as exc:
        handled = _handled(exc)
        if handled is None:
            raise
        return None, handled


def _scopes(config: RemediatorConfig) -> list[tuple[str, str]]:
    """(config field, ARM scope) for every listed subscription and resource group."""
    scopes = [
        (f"scope.subscriptions[{i}]", f"/subscriptions/{ref.subscription_id}")
        for i, ref in enumerate(config.scope.subscriptions)
    ]
    scopes += [
        (f"scope.resourceGroups[{i}]", ref.canonical) for i, ref in enumerate(config.scope.resource_groups)
    ]
    return scopes


def _storage_field(config: RemediatorConfig, region: str) -> str:
    """Where the region's storage account is written in the file: ``regionTargets`` or its shorthand."""
    if config.region_targets is not None:
        return f"regionTargets.{region}.storageAccount"
    return f"storage.{region}"


def live_checks(config: RemediatorConfig, probe: Any, *, principal_id: str | None) -> list[dict[str, str]]:
    """Run every check against Azure through ``probe``
    (:class:`remediator.adapters.config_probe.ConfigProbe`)."""
    rows: list[dict[str, str]] = []
    mode = config.remediation.mode
    install = mode == "install"

    for region, account in sorted((r, t.storage_account) for r, t in config.targets.items()):
        field = _storage_field(config, region)
        facts, problem = _attempt(partial(probe.storage_account, account))
        if problem is not None:
            rows.append(_row("storage-account", field, account.canonical, *problem))
            continue
        if facts is None:
            rows.append(_row("storage-account", field, account.canonical, FAILED, "does not exist"))
            continue
        wrong: list[str] = []
        if facts.kind != "StorageV2":
            wrong.append(f"kind is {facts.kind or 'unknown'}, Azure Backup for AKS needs StorageV2")
        if facts.sku_tier.lower() == "premium" or facts.sku_name.lower().startswith("premium"):
            wrong.append(f"SKU {facts.sku_name} is Premium, Azure Backup for AKS needs Standard")
        located = "".join(facts.location.split()).lower()
        if located != region:
            wrong.append(f"it is in {located}, configured for {region} ({AZURE_REGIONS.get(region, region)})")
        detail = "; ".join(wrong) or f"StorageV2, {facts.sku_name}, in {located}"
        rows.append(_row("storage-account", field, account.canonical, FAILED if wrong else OK, detail))

    cluster_namespaces = ["Microsoft.ContainerService"]
    if install:
        cluster_namespaces.append("Microsoft.KubernetesConfiguration")
    if mode == "policy-task":
        cluster_namespaces.append("Microsoft.PolicyInsights")
    wanted: dict[tuple[str, str], str] = {}
    for field, scope in _scopes(config):
        for namespace in cluster_namespaces:
            wanted.setdefault((scope.split("/")[2].lower(), namespace), field)
    for region, account in sorted((r, t.storage_account) for r, t in config.targets.items()):
        wanted.setdefault(
            (str(account.subscription_id).lower(), "Microsoft.Storage"), _storage_field(config, region)
        )
    for (subscription, namespace), field in wanted.items():
        target = f"/subscriptions/{subscription}/providers/{namespace}"
        state, problem = _attempt(partial(probe.provider_state, subscription, namespace))
        if problem is not None:
            rows.append(_row("provider", field, target, *problem))
        elif state is None or state.lower() != "registered":
            rows.append(
                _row(
                    "provider",
                    field,
                    target,
                    FAILED,
                    f"{namespace} is {state or 'unknown to ARM'} in subscription {subscription}; register it:"
                    f" az provider register --namespace {namespace} --subscription {subscription}",
                )
            )
        else:
            rows.append(_row("provider", field, target, OK, "Registered"))

    for i, group in enumerate(config.scope.management_groups):
        field = f"scope.managementGroups[{i}]"
        subscriptions, problem = _attempt(partial(probe.management_group_subscriptions, str(group.name)))
        if problem is not None:
            rows.append(_row("management-group", field, group.canonical, *problem))
        elif not subscriptions:
            rows.append(
                _row(
                    "management-group",
                    field,
                    group.canonical,
                    FAILED,
                    "resolves to no subscription the identity can read (a wrong name, or no Reader there)",
                )
            )
        else:
            rows.append(
                _row("management-group", field, group.canonical, OK, f"{len(subscriptions)} subscription(s)")
            )

    if mode == "policy-task":
        for i, assignment in enumerate(config.remediation.policy_assignment_ids):
            field = f"remediation.policyAssignmentIds[{i}]"
            verdict, problem = _attempt(partial(probe.remediation_effect, assignment))
            if problem is not None:
                rows.append(_row("policy-assignment", field, assignment.canonical, *problem))
                continue
            status = {True: OK, False: FAILED, None: UNKNOWN}[verdict.remediable]
            rows.append(_row("policy-assignment", field, assignment.canonical, status, verdict.why))

    if principal_id is None:
        rows.append(
            _row(
                "role",
                "--principal-id",
                "",
                UNKNOWN,
                "the signed-in identity's object id is not in its token; pass --principal-id",
            )
        )
        return rows
    scope_needs: list[RoleNeed] = [NEED_READER]
    if install:
        scope_needs.append(NEED_EXTENSIONS)
    if mode == "policy-task":
        scope_needs.append(NEED_REMEDIATIONS)
    role_targets: list[tuple[str, str, Iterable[RoleNeed]]] = [
        (field, scope, scope_needs) for field, scope in _scopes(config)
    ]
    role_targets += [
        (f"scope.managementGroups[{i}]", group.canonical, scope_needs)
        for i, group in enumerate(config.scope.management_groups)
    ]
    if install:
        storage_needs = [NEED_CONTAINER_WRITER]
        if config.remediation.grant_storage_access:
            storage_needs.append(NEED_GRANTER)
        role_targets += [
            (_storage_field(config, region), account.canonical, storage_needs)
            for region, account in sorted((r, t.storage_account) for r, t in config.targets.items())
        ]
    for field, scope, needs in role_targets:
        assignments, problem = _attempt(partial(probe.role_assignments, scope, principal_id))
        for need in needs:
            target = f"{scope} ({need.name})"
            if problem is not None:
                rows.append(_row("role", field, target, *problem))
                continue
            held = {a.role_definition_guid for a in assignments}
            custom = need.custom_counts and any(guid not in BUILT_IN_ROLES for guid in held)
            if held & need.satisfied_by or custom:
                rows.append(_row("role", field, target, OK, f"principal {principal_id} holds it"))
            else:
                rows.append(
                    _row(
                        "role",
                        field,
                        target,
                        FAILED,
                        f"principal {principal_id} has no {need.name} at {scope} or above"
                        " (docs/deploy.md 'Roles'; a new assignment can take minutes to show)",
                    )
                )
    return rows


def check_rows(result: Any) -> Any:
    """``-o table`` for the live check: one row per check, as it is."""
    if not isinstance(result, list):
        return result
    return [
        {
            "Check": row.get("check"),
            "Field": row.get("field"),
            "Status": row.get("status"),
            "Detail": row.get("detail"),
        }
        for row in result
        if isinstance(row, dict)
    ]


def run_live_check(args: argparse.Namespace, config: RemediatorConfig) -> int:
    """``config check FILE --live``: build the clients from the environment and run :func:`live_checks`."""
    import os

    from remediator.adapters.clients import AzureClients
    from remediator.adapters.config_probe import ConfigProbe
    from remediator.adapters.graph import ResourceGraphInventory
    from remediator.core.settings import Settings

    if args.principal_id is not None and not _GUID.match(args.principal_id):
        raise UserInputError("must be an object id (a GUID)", field="--principal-id")
    environ = {k: v for k, v in os.environ.items() if k != "REMEDIATOR_CONFIG_JSON"}
    environ["REMEDIATOR_CONFIG_FILE"] = args.file
    settings = Settings.from_env(environ)
    clients = AzureClients.from_settings(settings)
    probe = ConfigProbe(clients, ResourceGraphInventory(clients.resource_graph()))
    try:
        principal = args.principal_id or probe.signed_in_principal()
        rows = live_checks(config, probe, principal_id=principal)
    finally:
        probe.close()
        clients.close()
    emit(rows, args, table=check_rows)
    failed = [row for row in rows if row["status"] == FAILED]
    for row in failed:  # like the offline check: one line per problem on stderr, naming the field
        print(f"error: {args.file}: {row['field']}: {row['target']}: {row['detail']}", file=sys.stderr)
    return int(ExitCode.BAD_INPUT) if failed else int(ExitCode.OK)


__all__ = ["check_rows", "live_checks", "run_live_check"]
