"""How many role assignments the product's chain needs in each subscription, for a config and a cluster
inventory: pure, so ``config check``, the report's headroom column and tests compute it the same way.

Azure allows **4000** role assignments per subscription, counting subscription, resource-group and resource
scopes but not management-group scope ("Azure supports up to 4000 role assignments per subscription ... but
not at the management group scope", MicrosoftDocs/azure-docs@articles/role-based-access-control/
troubleshoot-limits.md; the limits include "Azure role assignments per Azure subscription 4,000",
MicrosoftDocs/azure-docs@includes/role-based-access-control/limits.md). Past it a new assignment is refused
with ``RoleAssignmentLimitExceeded`` (the reconcile then gives up naming it, ``service/reconcile/errors.py``).

Where each assignment lands (the scope is chosen by the chain, ``core/plan/install.py`` and
``core/plan/protect.py``; docs/rules.md "Role assignments and the 4000 limit"):

====================================================  ====================  =============================
assignment                                            scope                 subscription it counts in
====================================================  ====================  =============================
extension identity: Storage Blob Data Contributor     storage account       the storage account's
                                                      (or its container)
vault identity: Reader ("the cluster")                the cluster, its RG   the cluster's
                                                      or its subscription
                                                      (roleAssignmentScope)
vault identity: Reader, Disk Snapshot Contributor     snapshot RG           the snapshot RG's (= the
(+ Data Operator for Managed Disks, vault tier)                             cluster's when named)
vault identity: Storage Blob Data Reader              storage account       the storage account's
cluster identity: Contributor                         snapshot RG           the snapshot RG's
====================================================  ====================  =============================

Per cluster that is one assignment in the storage subscription and, in protect mode, two in the cluster's
subscription (Reader, Contributor) with ``perCluster``; the vault's snapshot-group and storage roles are
shared by every cluster of a subscription and region. Assignments are counted once per (scope, principal,
role): clusters sharing a user-assigned identity share their Contributor assignment when their principal is
known. Without ``present`` the count is an upper bound: assignments that already exist are counted again
unless ``existing`` says how many the subscription holds apart from the product's. With ``present`` (the
report: Resource Graph shows which of them exist) ``existing`` is the subscription's whole count and the
planned assignments already there are not counted twice.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

from remediator.core.catalog import (
    CONTRIBUTOR,
    DATA_OPERATOR_FOR_MANAGED_DISKS,
    DISK_SNAPSHOT_CONTRIBUTOR,
    READER,
    STORAGE_BLOB_DATA_CONTRIBUTOR,
    STORAGE_BLOB_DATA_READER,
)
from remediator.core.config import RemediatorConfig, normalize_region
from remediator.core.ids import ResourceId
from remediator.core.protection import ProtectionOptions, targets_for
from remediator.core.rules import match_selection

logger = logging.getLogger(__name__)

ROLE_ASSIGNMENT_LIMIT = 4000
"""Role assignments per subscription (see the module docstring for the sources)."""
WARN_SHARE = 0.9
"""A subscription whose projected count reaches this share of the limit is warned about."""


@dataclass(frozen=True)
class DemandCluster:
    """One cluster of the inventory (the fields the demand needs).

    :param id: the cluster id.
    :param location: its region.
    :param tags: its tags (selection rules apply).
    :param principal_id: its managed identity principal, when known (dedupes shared user-assigned ones).
    """

    id: ResourceId
    location: str
    tags: Mapping[str, str] = field(default_factory=dict)
    principal_id: str | None = None


@dataclass(frozen=True)
class SubscriptionDemand:
    """One subscription's role assignments: what the chain needs there, what exists, the limit.

    :param planned: every assignment the chain needs there (present or not).
    :param existing: the subscription's assignments (apart from the product's, unless ``present`` is known).
    :param present: of ``planned``, how many already exist (and so are part of ``existing``).
    """

    subscription_id: str
    planned: int
    existing: int | None
    limit: int = ROLE_ASSIGNMENT_LIMIT
    present: int = 0

    @property
    def missing(self) -> int:
        """Planned assignments still to be created."""
        return self.planned - self.present

    @property
    def projected(self) -> int:
        return self.missing + (self.existing or 0)

    @property
    def headroom(self) -> int:
        """Assignments left after the chain's (negative: overflow)."""
        return self.limit - self.projected

    @property
    def status(self) -> str:
        """``overflow`` (over the limit), ``warn`` (at or above ``WARN_SHARE`` of it) or ``ok``."""
        if self.projected > self.limit:
            return "overflow"
        if self.projected >= WARN_SHARE * self.limit:
            return "warn"
        return "ok"

    def to_json(self) -> dict[str, object]:
        return {
            "subscriptionId": self.subscription_id,
            "planned": self.planned,
            "present": self.present,
            "existing": self.existing,
            "limit": self.limit,
            "projected": self.projected,
            "headroom": self.headroom,
            "status": self.status,
        }


@dataclass(frozen=True)
class RoleAssignmentDemand:
    """The demand of a whole inventory."""

    by_subscription: Mapping[str, SubscriptionDemand]
    clusters: int
    """Selected clusters counted."""

    def worst_first(self) -> list[SubscriptionDemand]:
        return sorted(self.by_subscription.values(), key=lambda d: (d.headroom, d.subscription_id))

    @property
    def overflowing(self) -> list[SubscriptionDemand]:
        return [d for d in self.worst_first() if d.status == "overflow"]

    @property
    def warned(self) -> list[SubscriptionDemand]:
        return [d for d in self.worst_first() if d.status == "warn"]


def _selected(
    config: RemediatorConfig,
    cluster: DemandCluster,
    management_groups_of: Callable[[str], Iterable[str]] | None,
) -> bool:
    """Scope, region allow-list, tag rules and region targets (the decision without readiness blockers, which
    do not change what the chain will eventually need). With management groups in the scope and no lookup,
    an in-scope cluster is assumed (an upper bound)."""
    scope = config.scope
    try:
        in_scope = scope.contains(cluster.id, management_groups_of=management_groups_of)
    except ValueError:  # management groups decide and no lookup was given: count it (upper bound)
        in_scope = cluster.id.subscription_scope is not None and not any(
            ref.key == (cluster.id.subscription_scope or "").lower() for ref in scope.exclude_subscriptions
        )
    if not in_scope:
        return False
    region = normalize_region(cluster.location)
    if scope.regions is not None and region not in scope.regions:
        return False
    if config.targets_for(region) is None:
        return False
    match = match_selection(cluster.tags, config.selection)
    return match.included and not match.excluded


@dataclass(frozen=True)
class PlannedAssignment:
    """One assignment the chain needs: where it counts, its scope and principal (keys: placeholders where
    the inventory cannot know them), its role, and what :func:`role_assignment_demand`'s ``present`` needs
    to look it up (the real scope id when there is one, the role GUID, the principal's kind and vault)."""

    subscription: str
    scope: str
    principal: str
    role: str
    role_guid: str
    scope_id: str | None
    """The scope's id (``None``: a placeholder scope, e.g. a container not yet named)."""
    principal_kind: str
    """``extension``, ``vault`` or ``cluster``."""
    vault_id: str | None = None
    """For a vault identity's assignment: the vault."""

    @property
    def key(self) -> tuple[str, str, str, str]:
        return (self.subscription, self.scope, self.principal, self.role)


def planned_assignments(config: RemediatorConfig, cluster: DemandCluster) -> list[PlannedAssignment]:
    """Every assignment the chain needs for one selected cluster. Principals the inventory cannot know (the
    extension's, a vault's) get a stable placeholder."""
    region = normalize_region(cluster.location)
    targets = config.targets_for(region)
    if targets is None:
        return []
    mode = config.remediation.mode
    chain = config.remediation.audit_plans if mode == "audit" else mode
    account = targets.storage_account
    extension = f"extension-of:{cluster.id.key}"
    grant_scope = account.key
    grant_scope_id: str | None = account.canonical
    if config.remediation.grant_scope == "container":
        grant_scope = f"{account.key}/container-of:{cluster.id.key}"
        grant_scope_id = None
    storage_sub = str(account.subscription_id)
    out = [
        PlannedAssignment(
            storage_sub,
            grant_scope,
            extension,
            "storage-blob-data-contributor",
            STORAGE_BLOB_DATA_CONTRIBUTOR,
            grant_scope_id,
            "extension",
        )
    ]
    if chain != "protect":
        return out
    options = ProtectionOptions.from_config(config)
    found = targets_for(options, cluster.id, region)
    if found is None:
        return out
    vault = f"vault:{found.vault.key}"
    vault_id = found.vault.canonical
    sub = str(cluster.id.subscription_id)
    choice = config.remediation.role_assignment_scope
    if choice == "subscription":
        reader_id = str(cluster.id.subscription_scope)
    elif choice == "resourceGroup":
        reader_id = str(cluster.id.resource_group_id)
    else:
        reader_id = cluster.id.canonical
    group = found.snapshot_group
    group_sub = str(group.subscription_id)
    cluster_principal = (
        f"principal:{cluster.principal_id.lower()}"
        if cluster.principal_id
        else f"identity-of:{cluster.id.key}"
    )

    def of_vault(subscription: str, scope: ResourceId | str, role: str, guid: str) -> PlannedAssignment:
        scope_id = scope if isinstance(scope, str) else scope.canonical
        key = scope_id.lower() if isinstance(scope, str) else scope.key
        return PlannedAssignment(subscription, key, vault, role, guid, scope_id, "vault", vault_id)

    out += [
        of_vault(sub, reader_id, "reader", READER),
        of_vault(group_sub, group, "reader", READER),
        of_vault(group_sub, group, "disk-snapshot-contributor", DISK_SNAPSHOT_CONTRIBUTOR),
        of_vault(storage_sub, account, "storage-blob-data-reader", STORAGE_BLOB_DATA_READER),
        PlannedAssignment(
            group_sub, group.key, cluster_principal, "contributor", CONTRIBUTOR, group.canonical, "cluster"
        ),
    ]
    operator = config.protection.data_operator_for_managed_disks
    policy = targets.policy_preset
    vault_tier = operator == "always" or (
        operator == "auto" and policy is not None and policy.strategy == "DisasterRecovery"
    )
    if vault_tier:
        out.append(
            of_vault(group_sub, group, "data-operator-for-managed-disks", DATA_OPERATOR_FOR_MANAGED_DISKS)
        )
    return out


def role_assignment_demand(
    config: RemediatorConfig,
    clusters: Iterable[DemandCluster],
    *,
    existing: Mapping[str, int] | None = None,
    limit: int = ROLE_ASSIGNMENT_LIMIT,
    management_groups_of: Callable[[str], Iterable[str]] | None = None,
    present: Callable[[DemandCluster, PlannedAssignment], bool] | None = None,
) -> RoleAssignmentDemand:
    """The role assignments the chain of ``config`` needs per subscription for ``clusters`` (the selected
    ones), against Azure's per-subscription limit.

    :param config: the remediator config (its mode, targets, ``roleAssignmentScope``, grant scope).
    :param clusters: the inventory (every cluster; the selection rules pick).
    :keyword existing: subscription id -> role assignments it holds besides the product's (e.g. from Resource
        Graph's ``authorizationresources``); subscriptions missing here count as 0 existing.
    :keyword limit: the per-subscription limit (4000).
    :keyword management_groups_of: subscription -> its management groups, when the scope lists groups.
    :keyword present: whether a planned assignment already exists (asked once per distinct assignment);
        ``existing`` then counts every assignment of the subscription, the product's included.
    """
    keys: dict[str, set[tuple[str, str, str]]] = {}
    found: dict[str, set[tuple[str, str, str]]] = {}
    selected = 0
    for cluster in clusters:
        if not _selected(config, cluster, management_groups_of):
            continue
        selected += 1
        for planned in planned_assignments(config, cluster):
            key = (planned.scope, planned.principal, planned.role)
            known = keys.setdefault(planned.subscription, set())
            if key in known:
                continue
            known.add(key)
            if present is not None and present(cluster, planned):
                found.setdefault(planned.subscription, set()).add(key)
    counts = {sub.lower(): n for sub, n in (existing or {}).items()}
    subscriptions = set(keys) | {sub for sub in counts if sub in keys}
    by_subscription = {
        sub: SubscriptionDemand(
            subscription_id=sub,
            planned=len(keys.get(sub, ())),
            existing=counts.get(sub) if existing is not None else None,
            limit=limit,
            present=len(found.get(sub, ())),
        )
        for sub in sorted(subscriptions)
    }
    return RoleAssignmentDemand(by_subscription=by_subscription, clusters=selected)
