"""Generated estates and matching remediator configs for the benchmarks, with the expected answer.

The expected set of clusters needing work is computed from the estate itself (the same generator the emulator
loads), through the core's decision, without any ARM or Resource Graph call: that is what both sweeps are
checked against.

"Needing work" is the whole visible chain of install mode (issue 17 F3): a selected cluster without a blocker
that holds it back needs work when its backup extension is not Succeeded or its extension identity lacks
Storage Blob Data Contributor on its region's storage account (at the account, its resource group or its
subscription). The generated estate gives most clusters that already carry the extension their grant (at the
account, the resource group or the subscription in turn) and leaves a share without it, and gives some of the
granted ones a backup instance (the rows of ``recoveryservicesresources`` the sweep joins).
"""

from __future__ import annotations

import json
import logging
import random
from pathlib import Path
from typing import Any

from emulator.estate import cluster_from_shorthand, generate_estate
from emulator.model.ids import deterministic_uuid
from remediator.core.blockers import BlockerKind
from remediator.core.catalog import STORAGE_BLOB_DATA_CONTRIBUTOR
from remediator.core.config import parse_config
from remediator.core.decision import Reason, decide
from remediator.core.snapshot import ClusterSnapshot

logger = logging.getLogger(__name__)

BENCH_SELECTION: dict[str, Any] = {
    "include": [{"tag": "backup", "values": ["yes", "true", "daily"]}],
    "exclude": [{"tag": "env", "values": ["dev", "test"]}],
}
"""Policy-3-like selection over the generator's tag mix (keys Backup/backup/BACKUP, mixed-case values)."""

BACKUP_TYPE = "microsoft.dataprotection.kubernetes"
VAULT_TYPE = "Microsoft.DataProtection/backupVaults"
UNGRANTED_SHARE = 0.1
"""Share of the clusters with a Succeeded extension whose identity lacks the storage grant."""
BACKUP_INSTANCE_SHARE = 0.5
"""Share of the granted clusters that also have a backup instance (ProtectionConfigured)."""


def extension_principal(cluster_id: str, name: str) -> str:
    """The principal the emulator gives an extension's identity (``emulator.model.bodies.extension_body``)."""
    return deterministic_uuid(
        "extension-identity", f"{cluster_id}/providers/Microsoft.KubernetesConfiguration/extensions/{name}"
    )


def _grant(scope: str, principal: str) -> dict[str, Any]:
    name = deterministic_uuid("bench-grant", scope, principal)
    sub = scope.split("/")[2]
    return {
        "id": f"{scope}/providers/Microsoft.Authorization/roleAssignments/{name}",
        "name": name,
        "type": "Microsoft.Authorization/roleAssignments",
        "properties": {
            "roleDefinitionId": (
                f"/subscriptions/{sub}/providers/Microsoft.Authorization/roleDefinitions/"
                f"{STORAGE_BLOB_DATA_CONTRIBUTOR}"
            ),
            "principalId": principal,
            "principalType": "ServicePrincipal",
            "scope": scope,
        },
    }


def _backup_instance(vault: str, cluster_id: str, index: int) -> dict[str, Any]:
    name = f"bi-{index:06d}"
    return {
        "id": f"{vault}/backupInstances/{name}",
        "name": name,
        "type": "Microsoft.DataProtection/backupVaults/backupInstances",
        "properties": {
            "dataSourceInfo": {
                "resourceID": cluster_id,
                "datasourceType": "Microsoft.ContainerService/managedClusters",
            },
            "currentProtectionState": "ProtectionConfigured",
        },
    }


def add_chain(estate: dict[str, Any], *, seed: int) -> None:
    """Storage grants for most Succeeded backup extensions and backup instances for some of those."""
    rng = random.Random(f"chain-{seed}")
    storage = {account["location"]: account["id"] for account in estate["storageAccounts"]}
    location = {c["id"]: c["location"] for c in estate["clusters"]}
    assignments = estate.setdefault("roleAssignments", [])
    resources = estate.setdefault("resources", [])
    for i, ext in enumerate(estate["extensions"]):
        if (
            ext["extensionType"].lower() != BACKUP_TYPE
            or ext.get("provisioningState", "Succeeded") != "Succeeded"
        ):
            continue
        if rng.random() < UNGRANTED_SHARE:
            continue
        account = storage[location[ext["clusterId"]]]
        scope = [account, "/".join(account.split("/")[:5]), "/".join(account.split("/")[:3])][i % 3]
        assignments.append(_grant(scope, extension_principal(ext["clusterId"], ext["name"])))
        if rng.random() < BACKUP_INSTANCE_SHARE:
            sub = ext["clusterId"].split("/")[2]
            vault = f"/subscriptions/{sub}/resourceGroups/rg-aks-00/providers/{VAULT_TYPE}/bv"
            resources.append(_backup_instance(vault, ext["clusterId"], i))


def bench_estate(
    *, clusters: int, subscriptions: int, seed: int = 7, protected_share: float = 0.25
) -> dict[str, Any]:
    """``clusters`` spread over ``subscriptions``; ``protected_share`` already carry a Succeeded extension
    (most of them granted, some with a backup instance: :func:`add_chain`)."""
    if clusters % subscriptions:
        raise ValueError("clusters must be a multiple of subscriptions")
    estate = generate_estate(
        subscriptions=subscriptions,
        clusters_per_subscription=clusters // subscriptions,
        seed=seed,
        share_with_backup_extension=protected_share,
        # Creating clusters stay Creating: with the generator's default (Succeeded 30 s after the load),
        # 5 % of a 100k estate turns Succeeded at once in the middle of a measurement, and the emulator's
        # CPU goes to those 5,000 lifecycle writes instead of the queries being measured (the set of
        # clusters needing work is the same either way: a Creating cluster is enqueued, its blocker is
        # transient)
        creating_ready_in_s=None,
    )
    add_chain(estate, seed=seed)
    return estate


def bench_config(estate: dict[str, Any], *, selection: dict[str, Any] | None = None) -> dict[str, Any]:
    """A config covering every subscription of the estate, with its storage accounts and a tag selection."""
    storage = {acct["location"]: acct["id"] for acct in estate["storageAccounts"]}
    return {
        "scope": {"subscriptions": [s["subscriptionId"] for s in estate["subscriptions"]]},
        "storage": storage,
        "selection": selection if selection is not None else BENCH_SELECTION,
    }


def write_config(config: dict[str, Any], path: Path) -> Path:
    path.write_text(json.dumps(config, indent=1), encoding="utf-8")
    return path


def granted_clusters(estate: dict[str, Any]) -> set[str]:
    """Ids (lower) of clusters whose backup extension identity holds the storage grant for its region."""
    storage = {acct["location"]: acct["id"].lower() for acct in estate["storageAccounts"]}
    holders: dict[str, set[str]] = {}
    for assignment in estate.get("roleAssignments", []):
        props = assignment["properties"]
        if props["roleDefinitionId"].lower().endswith(STORAGE_BLOB_DATA_CONTRIBUTOR):
            holders.setdefault(props["principalId"], set()).add(props["scope"].lower())
    location = {c["id"]: c["location"] for c in estate["clusters"]}
    out: set[str] = set()
    for ext in estate.get("extensions", []):
        if ext["extensionType"].lower() != BACKUP_TYPE:
            continue
        account = storage[location[ext["clusterId"]]]
        scopes = holders.get(extension_principal(ext["clusterId"], ext["name"]), set())
        if any(account == s or account.startswith(s + "/") for s in scopes):
            out.add(ext["clusterId"].lower())
    return out


def expected_work(estate: dict[str, Any], config: dict[str, Any]) -> list[str]:
    """Ids of the clusters a sweep must enqueue: selected, not held by a blocker, and the extension not
    Succeeded or its identity not granted."""
    parsed = parse_config(config, source="bench")
    succeeded = {
        ext["clusterId"].lower()
        for ext in estate.get("extensions", [])
        if ext.get("extensionType", "").lower() == BACKUP_TYPE
        and ext.get("provisioningState", "Succeeded").lower() == "succeeded"
    }
    granted = granted_clusters(estate)
    out: list[str] = []
    tenant = estate.get("tenantId", "")
    for item in estate["clusters"]:
        key = item["id"].lower()
        if key in succeeded and key in granted:
            continue
        snapshot = ClusterSnapshot.from_arm(cluster_from_shorthand(item, tenant=tenant))
        decision = decide(snapshot, parsed)
        if decision.reason is not Reason.SELECTED:
            continue
        if any(b.kind is not BlockerKind.TRANSIENT for b in decision.blockers):
            continue
        out.append(str(snapshot.id))
    return out


def in_scope_unprotected(estate: dict[str, Any]) -> int:
    """Clusters without a Succeeded backup extension (what the leftouter-join query alone would return)."""
    protected = {e["clusterId"].lower() for e in estate.get("extensions", [])}
    return sum(1 for c in estate["clusters"] if c["id"].lower() not in protected)


def granted_without_work(estate: dict[str, Any]) -> int:
    """Clusters whose extension is Succeeded and granted (the ones the old query would never have shown)."""
    return len(granted_clusters(estate))
