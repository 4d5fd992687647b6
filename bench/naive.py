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
    with ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="naive") as pool:
        per_subscription = list(pool.map(list_clusters, subscriptions))
        # Interleave subscriptions: each has its own ARM read bucket (250 + 25/s), so working through them
        # one after another would make a 1,000-cluster subscription wait on its bucket alone.
        clusters = [c for group in zip_longest(*per_subscription) for c in group if c is not None]
        del per_subscription
        states = list(pool.map(backup_state, clusters))
        accounts = sorted({str(t.storage_account) for t in config.targets.values()})
        holders = dict(pool.map(grants, accounts))
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
        if state.lower() == "succeeded" and principal.lower() in holders.get(account, set()):
            continue
        if any(b.kind is not BlockerKind.TRANSIENT for b in decision.blockers):
            continue
        enqueue(str(snapshot.id))
        counts["enqueued"] += 1
    return counts
