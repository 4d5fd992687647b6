"""The naive sweep peers use, implemented fairly so the comparison means something.

Cloud Custodian's ``azure-periodic`` mode (``shared/reference/peers.md`` §1.2) is a full pull: list the
resources of every subscription, then look at each one. For "does this AKS cluster carry the backup
extension" that is:

1. ``managedClusters`` list per subscription (ARM, paged by ``nextLink``);
2. one ``extensions`` list per cluster (ARM GET), looking for extensionType
   ``microsoft.dataprotection.kubernetes`` under any name, as the policies do, and its identity;
3. the storage grant: one role-assignment list per storage account (every assignment at, above or below it),
   joined to the extension identities in memory (fairer than one list per cluster, which would meet the
   storage subscription's read bucket).

In protect mode it reads protect's visible chain the way a reconcile does, per cluster or per principal:

4. each region's vault (one GET: its identity's principal);
5. the vault identities' role assignments, one principal-filtered list per subscription (``principalId eq``:
   at, above and below the scope, as the chain's role links read them), and the snapshot resource group's
   assignments once per subscription and region (the clusters' Contributor);
6. one backup-instance list per cluster (``BackupInstancesExtensionRouting_List`` at the cluster, any vault).

To be fair it gets the same help ours gets: a thread pool (``concurrency`` workers, 16 by default) for both
steps, one shared keep-alive connection pool sized to the pool, the per-cluster GETs interleaved across
subscriptions (each subscription has its own ARM read bucket), and the same core ``decide`` and blocker
rules, so both sweeps must enqueue exactly the same clusters (the benchmark checks that).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from itertools import zip_longest
from typing import Any

import requests
from azure.core.pipeline.transport import RequestsTransport
from azure.mgmt.authorization import AuthorizationManagementClient
from azure.mgmt.containerservice import ContainerServiceClient
from azure.mgmt.kubernetesconfiguration import SourceControlConfigurationClient
from requests.adapters import HTTPAdapter

from bench.harness import BenchCredential
from remediator.core.blockers import BlockerKind
from remediator.core.catalog import EXTENSION_TYPE as BACKUP_EXTENSION_TYPE
from remediator.core.catalog import STORAGE_BLOB_DATA_CONTRIBUTOR
from remediator.core.config import RemediatorConfig
from remediator.core.decision import Reason, decide
from remediator.core.errors import UserInputError
from remediator.core.snapshot import ClusterSnapshot

logger = logging.getLogger(__name__)


def shared_transport(pool_size: int, *, ca_bundle: str) -> RequestsTransport:
    """One requests session whose pool keeps ``pool_size`` keep-alive connections (default is 10)."""
    session = requests.Session()
    adapter = HTTPAdapter(pool_connections=4, pool_maxsize=pool_size)
    session.mount("https://", adapter)
    return RequestsTransport(session=session, session_owner=False, connection_verify=ca_bundle)


def naive_sweep(
    config: RemediatorConfig,
    *,
    base_url: str,
    ca_bundle: str,
    concurrency: int = 16,
    principal: str = "bench-naive",
    enqueue: Callable[[str], None],
) -> dict[str, Any]:
    """List every cluster, GET every cluster's extensions, decide, enqueue. Returns counts."""
    credential = BenchCredential(principal)
    transport = shared_transport(concurrency, ca_bundle=ca_bundle)
    common: dict[str, Any] = {"base_url": base_url, "connection_verify": ca_bundle, "transport": transport}
    subscriptions = [str(s.subscription_id) for s in config.scope.subscriptions]
    excluded = {str(s.subscription_id) for s in config.scope.exclude_subscriptions}
    subscriptions = [s for s in subscriptions if s not in excluded]

    def list_clusters(sub: str) -> list[dict[str, Any]]:
        client = ContainerServiceClient(credential, sub, **common)
        return [c.as_dict() for c in client.managed_clusters.list()]

    ext_clients = {sub: SourceControlConfigurationClient(credential, sub, **common) for sub in subscriptions}

    def backup_state(body: dict[str, Any]) -> tuple[str, str] | None:
        parts = body["id"].split("/")
        sub, rg, name = parts[2], parts[4], parts[-1]
        for ext in ext_clients[sub].extensions.list(
            rg, "Microsoft.ContainerService", "managedClusters", name
        ):
            if (ext.extension_type or "").lower() == BACKUP_EXTENSION_TYPE:
                identity = ext.aks_assigned_identity
                return str(ext.provisioning_state or ""), str(getattr(identity, "principal_id", "") or "")
        return None

    def grants(account: str) -> tuple[str, set[str]]:
        """Principals holding Storage Blob Data Contributor at the account or above it."""
        client = AuthorizationManagementClient(credential, account.split("/")[2], **common)
        holders = set()
        for assignment in client.role_assignments.list_for_scope(account):
            scope = str(assignment.scope or "").lower()
            if str(assignment.role_definition_id or "").lower().endswith(STORAGE_BLOB_DATA_CONTRIBUTOR) and (
                account.lower() == scope or account.lower().startswith(scope + "/")
            ):
                holders.add(str(assignment.principal_id or "").lower())
        return account.lower(), holders

    counts: dict[str, int] = {"clusters": 0, "enqueued": 0, "invalid": 0}
    protect = str(config.remediation.mode) == "protect"
    with ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="naive") as pool:
        per_subscription = list(pool.map(list_clusters, subscriptions))
        # Interleave subscriptions: each has its own ARM read bucket (250 + 25/s), so working through them
        # one after another would make a 1,000-cluster subscription wait on its bucket alone.
        clusters = [c for group in zip_longest(*per_subscription) for c in group if c is not None]
        del per_subscription
        states = list(pool.map(backup_state, clusters))
        accounts = sorted({str(t.storage_account) for t in config.targets.values()})
        holders = dict(pool.map(grants, accounts))
        chain = _ProtectChain(config, credential, common, subscriptions, pool, clusters) if protect else None
    for body, found in zip(clusters, states, strict=True):
        counts["clusters"] += 1
        try:
            snapshot = ClusterSnapshot.from_arm(body, source="arm")
        except UserInputError:
            counts["invalid"] += 1
            continue
        decision = decide(snapshot, config)
        if decision.reason is not Reason.SELECTED:
            continue
        state, principal = found or ("", "")
        account = str(decision.storage_account_id or "").lower()
        if any(b.kind is not BlockerKind.TRANSIENT for b in decision.blockers):
            continue
        whole = state.lower() == "succeeded" and principal.lower() in holders.get(account, set())
        if chain is not None:
            verdict = chain.verdict(snapshot, account)
            if verdict == "elsewhere":
                continue
            whole = whole and verdict == "whole"
        if whole:
            continue
        enqueue(str(snapshot.id))
        counts["enqueued"] += 1
    return counts


def _covers(scopes: set[str], target: str) -> bool:
    target = target.lower()
    return any(target == scope or target.startswith(scope + "/") for scope in scopes)


class _ProtectChain:
    """Protect mode's visible links, read per cluster and per principal (module docstring, steps 4-6)."""

    def __init__(
        self,
        config: RemediatorConfig,
        credential: Any,
        common: dict[str, Any],
        subscriptions: list[str],
        pool: ThreadPoolExecutor,
        clusters: list[dict[str, Any]],
    ) -> None:
        from azure.mgmt.dataprotection import DataProtectionMgmtClient

        from remediator.core.protection import ProtectionOptions

        self.options = ProtectionOptions.from_config(config)
        regions = self.options.regions

        def vault_principal(vault: Any) -> tuple[str, str]:
            client = DataProtectionMgmtClient(credential, vault.subscription_id, **common)
            body = client.backup_vaults.get(vault.resource_group, vault.name)
            return vault.key, str(getattr(body.identity, "principal_id", "") or "").lower()

        self.vaults = dict(pool.map(vault_principal, [t.vault for t in regions.values()]))
        scopes = sorted(
            set(subscriptions) | {str(t.storage_account.subscription_id) for t in config.targets.values()}
        )
        jobs = [(sub, p) for sub in scopes for p in sorted(set(self.vaults.values())) if p]

        def vault_roles(job: tuple[str, str]) -> list[tuple[str, str]]:
            sub, principal = job
            client = AuthorizationManagementClient(credential, sub, **common)
            return [
                (str(a.role_definition_id or "").rsplit("/", 1)[-1].lower(), str(a.scope or "").lower())
                for a in client.role_assignments.list_for_scope(
                    f"/subscriptions/{sub}", filter=f"principalId eq '{principal}'"
                )
            ]

        self.vault_roles: dict[str, set[tuple[str, str]]] = {}
        for (_sub, principal), found in zip(jobs, pool.map(vault_roles, jobs), strict=True):
            self.vault_roles.setdefault(principal, set()).update(found)
        groups = sorted(
            {
                (sub, target.snapshot_group_name or f"AKSAzureBackup_{region}")
                for sub in subscriptions
                for region, target in regions.items()
            }
        )

        def group_roles(job: tuple[str, str]) -> tuple[str, list[tuple[str, str, str]]]:
            sub, name = job
            group = f"/subscriptions/{sub}/resourceGroups/{name}"
            client = AuthorizationManagementClient(credential, sub, **common)
            return group.lower(), [
                (
                    str(a.principal_id or "").lower(),
                    str(a.role_definition_id or "").rsplit("/", 1)[-1].lower(),
                    str(a.scope or "").lower(),
                )
                for a in client.role_assignments.list_for_scope(group)
            ]

        self.group_roles = dict(pool.map(group_roles, groups))
        dp = {sub: DataProtectionMgmtClient(credential, sub, **common) for sub in subscriptions}

        def instances(body: dict[str, Any]) -> tuple[str, list[tuple[str, str]]]:
            sub = body["id"].split("/")[2]
            found = []
            for instance in dp[sub].backup_instances_extension_routing.list(body["id"]):
                policy = str(getattr(instance.properties.policy_info, "policy_id", "") or "").lower()
                vault = policy.split("/backuppolicies/")[0]
                state = getattr(instance.properties, "current_protection_state", "") or ""
                state = str(getattr(state, "value", state))  # the SDK's enum, or a string it does not know
                found.append((vault, state))
            return body["id"].lower(), found

        self.instances = dict(pool.map(instances, clusters))

    def verdict(self, snapshot: ClusterSnapshot, account: str) -> str:
        """``elsewhere`` (another vault's instance), ``whole`` (every visible protect link) or ``broken``."""
        from remediator.core.catalog import (
            CONTRIBUTOR,
            DISK_SNAPSHOT_CONTRIBUTOR,
            READER,
            STORAGE_BLOB_DATA_READER,
        )
        from remediator.core.protection import targets_for

        targets = targets_for(self.options, snapshot.id, snapshot.location)
        if targets is None:
            return "broken"
        found = self.instances.get(snapshot.id.key, [])
        if any(vault != targets.vault.key for vault, _ in found):
            return "elsewhere"
        principal = self.vaults.get(targets.vault.key, "")
        held = self.vault_roles.get(principal, set())
        group = targets.snapshot_group.key

        def vault_has(role: str, target: str) -> bool:
            return _covers({scope for r, scope in held if r == role}, target)

        cluster_principal = (snapshot.identity_principal_id or "").lower()
        contributor = _covers(
            {s for p, r, s in self.group_roles.get(group, []) if p == cluster_principal and r == CONTRIBUTOR},
            group,
        )
        whole = (
            bool(principal)
            and vault_has(READER, snapshot.id.key)
            and vault_has(READER, group)
            and vault_has(DISK_SNAPSHOT_CONTRIBUTOR, group)
            and vault_has(STORAGE_BLOB_DATA_READER, account)
            and contributor
            and any(state.lower() == "protectionconfigured" for _, state in found)
        )
        return "whole" if whole else "broken"
