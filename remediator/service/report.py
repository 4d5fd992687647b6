"""The coverage report use case: every in-scope cluster named, in one state that does not overlap the others,
as the version 1 :class:`~remediator.core.report_document.ReportDocument`.

It streams every in-scope cluster from Resource Graph (no tag prefilter: untagged clusters are counted as not
selected) with its backup extension, the chain's grants and its backup instances joined from side queries,
and the subscriptions' display names and management groups; it reads the journal's newest outcome of every
cluster in bulk (one partition query: who gave up, and why); it decides each cluster with the same pure core
as the reconciler and gives it its state (:func:`remediator.core.coverage.assess`: protected, installing,
waiting, blocked, gave up, not started, not selected). ``extensionReady`` (Policy 1: the extension Succeeded)
and ``protected`` (the mode's whole visible chain; in protect mode a backup instance ProtectionConfigured in
the region's vault with every role Resource Graph shows, or one in another vault, left alone and named in
``protectedBy``) are counted separately. When the mode assigns roles, the report adds the role-assignment
headroom of every subscription the chain assigns roles in (:func:`remediator.core.role_demand
.role_assignment_demand`: the storage accounts', and in protect mode the clusters' and the snapshot resource
groups'): existing assignments counted by Resource Graph, what the chain still has to create there, the
limit. :func:`remediator.core.report_document.build_document` derives totals and groups, and its validator
holds the arithmetic.
"""

from __future__ import annotations

import hashlib
import logging
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from remediator.adapters.graph import InventoryStats
from remediator.core.config import RemediatorConfig
from remediator.core.coverage import (
    ChainFacts,
    LatestOutcome,
    VisibleChain,
    assess,
    blockers_needing_a_person,
    cluster_row,
)
from remediator.core.decision import Reason, decide
from remediator.core.errors import UserInputError
from remediator.core.inventory_query import InventoryPlan, plan_fleet_inventory, plan_role_counts
from remediator.core.naming import cluster_key
from remediator.core.report_document import (
    ClusterRow,
    ConfigIdentity,
    ReportDocument,
    RoleAssignmentHeadroom,
    build_document,
)
from remediator.core.role_demand import (
    ROLE_ASSIGNMENT_LIMIT,
    DemandCluster,
    PlannedAssignment,
    SubscriptionDemand,
    role_assignment_demand,
)
from remediator.core.snapshot import ClusterSnapshot
from remediator.core.text import ignore_case_key
from remediator.service.ports import QueriesInventory, ReadsOutcomes

logger = logging.getLogger(__name__)


def config_identity_in_memory(config: RemediatorConfig) -> ConfigIdentity:
    """The identity of a config known only as an object (no file, no setting): the SHA-256 of its canonical
    JSON (aliases, no nulls), source ``(in memory)``."""
    canonical = config.model_dump_json(by_alias=True, exclude_none=True)
    mode: Any = str(config.remediation.mode)
    return ConfigIdentity(
        source="(in memory)", sha256=hashlib.sha256(canonical.encode("utf-8")).hexdigest(), mode=mode
    )


def _groups_of(groups: tuple[str, ...]) -> Callable[[str], tuple[str, ...]]:
    return lambda _subscription: groups


def report_plan(config: RemediatorConfig) -> InventoryPlan:
    """The inventory plan of the report: every in-scope cluster (no tag prefilter: untagged clusters count as
    not selected), with the chain's side queries, backup instances in every mode (the protection column) and
    subscription names."""
    return plan_fleet_inventory(config, prefilter_tags=False, backup_instances=True, containers=True)


def build_report(
    config: RemediatorConfig,
    *,
    inventory: QueriesInventory,
    identity: ConfigIdentity,
    outcomes: ReadsOutcomes | None = None,
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> ReportDocument:
    """The coverage report (see the module docstring). Without ``outcomes`` (no journal) no cluster can be
    shown as given up: those show as waiting or not started.

    :raises UserInputError: a config value could alter a query (``field`` names it).
    :raises remediator.adapters.graph.InventoryError: Resource Graph failed.
    """
    plan = report_plan(config)
    generated_at = now().astimezone(UTC).isoformat().replace("+00:00", "Z")
    latest: Mapping[str, LatestOutcome] = outcomes.latest_outcomes() if outcomes is not None else {}
    chain = VisibleChain.of(config)
    rows: list[ClusterRow] = []
    seen: set[str] = set()
    demand = _DemandInputs()
    names: dict[str, str] = {}
    stats = InventoryStats()
    for row in inventory.iter_rows(plan, stats=stats):
        try:
            snapshot = ClusterSnapshot.from_arm(row.body, source="resource graph")
        except UserInputError as exc:
            logger.warning("report skips unreadable inventory row %s: %s", row.cluster_id, exc)
            continue
        decision = decide(snapshot, config, management_groups_of=_groups_of(row.management_groups))
        if snapshot.id.key in seen or decision.reason is Reason.OUT_OF_SCOPE:
            continue
        seen.add(snapshot.id.key)
        if row.subscription_name:
            names[snapshot.subscription_id.lower()] = row.subscription_name
        facts = row.chain_facts(
            cluster_principal_id=snapshot.identity_principal_id, cluster_location=snapshot.location
        )
        assessment = assess(decision, facts, chain, latest=latest.get(cluster_key(snapshot.id.canonical)))
        rows.append(
            cluster_row(
                decision,
                name=snapshot.name,
                resource_group=snapshot.resource_group,
                region=snapshot.location,
                tags=snapshot.tags,
                selection=config.selection,
                facts=facts,
                assessment=assessment,
                subscription_name=row.subscription_name,
                management_groups=row.management_group_chain or row.management_groups,
            )
        )
        if (
            chain.grant_role is not None or chain.protection is not None
        ) and assessment.elsewhere is None:  # the chain assigns nothing for a cluster protected elsewhere
            demand.add(snapshot, decision.selected, blockers_needing_a_person(decision.blockers), facts, row)
    names.update(stats.subscription_names)
    headroom = (
        _headroom(config, inventory, demand, names)
        if chain.grant_role is not None or chain.protection is not None
        else []
    )
    return build_document(
        generated_at=generated_at, config=identity, clusters=rows, role_assignment_headroom=headroom
    )


class _DemandInputs:
    """What the headroom needs from the rows: the selected clusters a reconcile can help (no blocker only a
    person can lift, not protected elsewhere), as role demand sees them, with what Resource Graph shows of
    each cluster's identities and the vaults."""

    def __init__(self) -> None:
        self.clusters: list[DemandCluster] = []
        self.facts: dict[str, ChainFacts] = {}
        self.groups: dict[str, tuple[str, ...]] = {}

    def add(
        self,
        snapshot: ClusterSnapshot,
        selected: bool,
        human: tuple[object, ...],
        facts: ChainFacts,
        row: Any,
    ) -> None:
        self.groups.setdefault(snapshot.subscription_id.lower(), tuple(row.management_groups))
        if not selected or human:
            return
        self.clusters.append(
            DemandCluster(
                id=snapshot.id,
                location=snapshot.location,
                tags=snapshot.tags,
                principal_id=snapshot.identity_principal_id,
            )
        )
        self.facts[snapshot.id.key] = facts

    def present(self, cluster: DemandCluster, planned: PlannedAssignment) -> bool:
        """Whether Resource Graph shows the planned assignment (its role to its principal at its scope or
        above): the principal resolved from the cluster's row (extension, cluster identity) or the vault's."""
        facts = self.facts.get(cluster.id.key)
        if facts is None or planned.scope_id is None:
            return False
        principal: str | None
        if planned.principal_kind == "extension":
            principal = facts.extension_principal_id
        elif planned.principal_kind == "cluster":
            principal = facts.cluster_principal_id
        else:
            vault = (facts.vaults or {}).get(ignore_case_key(planned.vault_id or ""))
            principal = vault.principal_id if vault is not None else None
        return bool(principal) and facts.grant_index.holds(
            str(principal), planned.role_guid, planned.scope_id
        )


def _headroom(
    config: RemediatorConfig,
    inventory: QueriesInventory,
    inputs: _DemandInputs,
    names: Mapping[str, str],
) -> list[RoleAssignmentHeadroom]:
    """Every subscription the chain assigns roles in (:func:`role_assignment_demand`: the storage accounts',
    and in protect mode the clusters' and the snapshot resource groups'): the assignments Resource Graph
    counts there, what the chain still has to create (planned, less what Resource Graph shows already
    exists), and the limit."""
    groups = inputs.groups
    demand = role_assignment_demand(
        config,
        inputs.clusters,
        limit=ROLE_ASSIGNMENT_LIMIT,
        management_groups_of=lambda sub: groups.get(sub.lower(), ()),
        present=inputs.present,
    )
    subscriptions = set(demand.by_subscription) | {
        str(t.storage_account.subscription_id).lower() for t in config.targets.values()
    }
    existing: Counter[str] = Counter()
    for request in plan_role_counts(subscriptions):
        for data in inventory.iter_data(request):
            existing[str(data.get("subscriptionId") or "").lower()] += int(data.get("assignments") or 0)
    out = []
    for sub in sorted(subscriptions):
        planned = demand.by_subscription.get(sub) or SubscriptionDemand(sub, 0, None)
        row = replace(planned, existing=existing.get(sub, 0), limit=ROLE_ASSIGNMENT_LIMIT)
        have = existing.get(sub, 0)
        out.append(
            RoleAssignmentHeadroom(
                subscription_id=sub,
                subscription_name=names.get(sub),
                existing=have,
                needed=row.missing,
                limit=row.limit,
                headroom=row.limit - have,
                overflow=row.status == "overflow",
            )
        )
    return out
