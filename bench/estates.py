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

Protect mode (``bench_estate(..., mode="protect")``, :func:`add_protect_chain`): the region targets' vaults
exist (their identities in the ``resources`` rows); most granted clusters also carry protect's whole chain
(the vault's Reader on the cluster, the cluster identity's Contributor on its snapshot resource group, the
region's shared vault roles, a backup instance in the region's vault, ProtectionConfigured), and of those some
lack one role, some have their instance in ProtectionError, and some are protected by another vault instead
(left alone). :func:`expected_protect_work` computes the clusters the sweep must enqueue from the estate
directly.
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
from remediator.core.catalog import (
    CONTRIBUTOR,
    DISK_SNAPSHOT_CONTRIBUTOR,
    READER,
    STORAGE_BLOB_DATA_CONTRIBUTOR,
    STORAGE_BLOB_DATA_READER,
)
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


def _grant(scope: str, principal: str, role: str = STORAGE_BLOB_DATA_CONTRIBUTOR) -> dict[str, Any]:
    name = deterministic_uuid("bench-grant", scope, principal, role)
    sub = scope.split("/")[2]
    return {
        "id": f"{scope}/providers/Microsoft.Authorization/roleAssignments/{name}",
        "name": name,
        "type": "Microsoft.Authorization/roleAssignments",
        "properties": {
            "roleDefinitionId": (
                f"/subscriptions/{sub}/providers/Microsoft.Authorization/roleDefinitions/{role}"
            ),
            "principalId": principal,
            "principalType": "ServicePrincipal",
            "scope": scope,
        },
    }


def _backup_instance(
    vault: str, cluster_id: str, index: int, state: str = "ProtectionConfigured"
) -> dict[str, Any]:
    name = f"bi-{index:06d}"
    properties: dict[str, Any] = {
        "dataSourceInfo": {
            "resourceID": cluster_id,
            "datasourceType": "Microsoft.ContainerService/managedClusters",
        },
        "currentProtectionState": state,
        "policyInfo": {"policyId": f"{vault}/backupPolicies/AKSBackupPolicy-Week"},
    }
    if state == "ProtectionError":
        properties["protectionErrorDetails"] = {"code": "UserErrorMissingBackupVaultPermissions"}
    return {
        "id": f"{vault}/backupInstances/{name}",
        "name": name,
        "type": "Microsoft.DataProtection/backupVaults/backupInstances",
        "properties": properties,
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


PROTECT_SHARE = 0.6
"""Protect mode: share of the granted clusters that carry protect's whole chain (before the breakages)."""
PROTECT_BROKEN = (
    ("vault-reader-on-cluster", 0.04),
    ("cluster-contributor-on-snapshot-rg", 0.04),
    ("protection-error", 0.04),
    ("elsewhere", 0.03),
)
"""Protect mode: of the whole chains, what is broken and how often (a role missing, the instance in
ProtectionError, the cluster protected by another vault instead)."""


def _targets(config: dict[str, Any]) -> dict[str, tuple[str, str]]:
    """Region -> (vault id, snapshot resource group name) of a protect config (``core.protection``)."""
    from remediator.core.protection import ProtectionOptions

    options = ProtectionOptions.from_config(parse_config(config, source="bench"))
    return {
        region: (target.vault.canonical, target.snapshot_group_name or f"AKSAzureBackup_{region}")
        for region, target in options.regions.items()
    }


def vault_principal(vault_id: str) -> str:
    return deterministic_uuid("bench-vault", vault_id.lower())


def _cluster_principal(item: dict[str, Any], tenant: str) -> str | None:
    return ClusterSnapshot.from_arm(cluster_from_shorthand(item, tenant=tenant)).identity_principal_id


def add_protect_chain(estate: dict[str, Any], config: dict[str, Any], *, seed: int) -> None:
    """Protect mode's chain over :func:`add_chain`'s (see the module docstring). The backup instances
    :func:`add_chain` made (in a vault no config names) are replaced."""
    rng = random.Random(f"protect-{seed}")
    targets = _targets(config)
    tenant = estate.get("tenantId", "")
    storage = {account["location"]: account["id"] for account in estate["storageAccounts"]}
    estate["resources"] = []
    assignments = estate["roleAssignments"]
    estate["dataProtection"] = {
        "vaults": [
            {"id": vault, "location": region, "principalId": vault_principal(vault)}
            for region, (vault, _) in sorted(targets.items())
        ]
    }
    for region, (vault, _) in sorted(targets.items()):
        assignments.append(_grant(storage[region], vault_principal(vault), STORAGE_BLOB_DATA_READER))
    granted = granted_clusters(estate)
    shared: set[tuple[str, str]] = set()
    for i, item in enumerate(estate["clusters"]):
        cid = item["id"]
        if cid.lower() not in granted or rng.random() >= PROTECT_SHARE:
            continue
        principal = _cluster_principal(item, tenant)
        region = item["location"]
        vault, group_name = targets[region]
        sub = cid.split("/")[2]
        group = f"/subscriptions/{sub}/resourceGroups/{group_name}"
        vp = vault_principal(vault)
        roll = rng.random()
        broken = None
        for name, share in PROTECT_BROKEN:
            if roll < share:
                broken = name
                break
            roll -= share
        if broken == "elsewhere":
            other = f"/subscriptions/{sub}/resourceGroups/rg-aks-00/providers/{VAULT_TYPE}/bv-elsewhere"
            estate["resources"].append(_backup_instance(other, cid, i))
            continue
        if (sub, region) not in shared:
            shared.add((sub, region))
            assignments.append(_grant(group, vp, READER))
            assignments.append(_grant(group, vp, DISK_SNAPSHOT_CONTRIBUTOR))
        if broken != "vault-reader-on-cluster":
            assignments.append(_grant(cid, vp, READER))
        if broken != "cluster-contributor-on-snapshot-rg" and principal:
            assignments.append(_grant(group, principal, CONTRIBUTOR))
        state = "ProtectionError" if broken == "protection-error" else "ProtectionConfigured"
        estate["resources"].append(_backup_instance(vault, cid, i, state))


def bench_estate(
    *,
    clusters: int,
    subscriptions: int,
    seed: int = 7,
    protected_share: float = 0.25,
    mode: str = "install",
) -> dict[str, Any]:
    """``clusters`` spread over ``subscriptions``; ``protected_share`` already carry a Succeeded extension
    (most of them granted, some with a backup instance: :func:`add_chain`; in protect mode, protect's chain
    instead: :func:`add_protect_chain`)."""
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
    if mode == "protect":
        add_protect_chain(estate, bench_config(estate, mode="protect"), seed=seed)
    return estate


def bench_config(
    estate: dict[str, Any], *, selection: dict[str, Any] | None = None, mode: str = "install"
) -> dict[str, Any]:
    """A config covering every subscription of the estate, with its storage accounts and a tag selection
    (protect mode: the CLI's default vault, policy and snapshot resource group per region)."""
    storage = {acct["location"]: acct["id"] for acct in estate["storageAccounts"]}
    config: dict[str, Any] = {
        "scope": {"subscriptions": [s["subscriptionId"] for s in estate["subscriptions"]]},
        "storage": storage,
        "selection": selection if selection is not None else BENCH_SELECTION,
    }
    if mode == "protect":
        config["remediation"] = {"mode": "protect"}
    return config


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


def _holders(estate: dict[str, Any]) -> dict[tuple[str, str], set[str]]:
    """(principal, role GUID) -> scopes (lower-cased) where the estate's assignments grant it."""
    out: dict[tuple[str, str], set[str]] = {}
    for assignment in estate.get("roleAssignments", []):
        props = assignment["properties"]
        role = props["roleDefinitionId"].rsplit("/", 1)[-1].lower()
        out.setdefault((props["principalId"].lower(), role), set()).add(props["scope"].lower())
    return out


def _holds(holders: dict[tuple[str, str], set[str]], principal: str, role: str, target: str) -> bool:
    target = target.lower()
    return any(
        target == scope or target.startswith(scope + "/")
        for scope in holders.get((principal.lower(), role), ())
    )


def expected_protect_work(estate: dict[str, Any], config: dict[str, Any]) -> list[str]:
    """Protect mode: ids of the clusters a sweep must enqueue, from the estate directly: selected, not held by
    a blocker, not protected by another vault, and not every visible link of protect's chain in place
    (extension Succeeded and granted, the vault's roles on the cluster, the snapshot group and the account,
    the cluster identity's Contributor on the group, an instance in the region's vault ProtectionConfigured;
    the DisasterRecovery policy is not used here, so Data Operator is not needed)."""
    parsed = parse_config(config, source="bench")
    targets = _targets(config)
    tenant = estate.get("tenantId", "")
    succeeded = {
        ext["clusterId"].lower()
        for ext in estate.get("extensions", [])
        if ext.get("extensionType", "").lower() == BACKUP_TYPE
        and ext.get("provisioningState", "Succeeded").lower() == "succeeded"
    }
    granted = granted_clusters(estate)
    holders = _holders(estate)
    instances: dict[str, list[tuple[str, str]]] = {}
    for body in estate.get("resources", []):
        if body.get("type", "").lower() != f"{VAULT_TYPE}/backupInstances".lower():
            continue
        props = body["properties"]
        vault = body["id"].lower().split("/backupinstances/")[0]
        instances.setdefault(props["dataSourceInfo"]["resourceID"].lower(), []).append(
            (vault, props["currentProtectionState"])
        )
    storage = {acct["location"]: acct["id"] for acct in estate["storageAccounts"]}
    out: list[str] = []
    for item in estate["clusters"]:
        key = item["id"].lower()
        snapshot = ClusterSnapshot.from_arm(cluster_from_shorthand(item, tenant=tenant))
        decision = decide(snapshot, parsed)
        if decision.reason is not Reason.SELECTED:
            continue
        if any(b.kind is not BlockerKind.TRANSIENT for b in decision.blockers):
            continue
        vault, group_name = targets[snapshot.location]
        found = instances.get(key, [])
        if any(v != vault.lower() for v, _ in found):
            continue  # protected elsewhere: left alone
        group = f"/subscriptions/{snapshot.subscription_id}/resourceGroups/{group_name}"
        vp = vault_principal(vault)
        account = storage[snapshot.location]
        principal = snapshot.identity_principal_id or ""
        whole = (
            key in succeeded
            and key in granted
            and _holds(holders, vp, READER, item["id"])
            and _holds(holders, vp, READER, group)
            and _holds(holders, vp, DISK_SNAPSHOT_CONTRIBUTOR, group)
            and _holds(holders, vp, STORAGE_BLOB_DATA_READER, account)
            and _holds(holders, principal, CONTRIBUTOR, group)
            and any(state == "ProtectionConfigured" for _, state in found)
        )
        if not whole:
            out.append(str(snapshot.id))
    return out
