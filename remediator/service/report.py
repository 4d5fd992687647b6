"""The coverage report use case: every in-scope cluster named, in one state that does not overlap the others,
as the version 1 :class:`~remediator.core.report_document.ReportDocument`.

It streams every in-scope cluster from Resource Graph (no tag prefilter: untagged clusters are counted as not
selected) with its backup extension, the chain's grants and its backup instances joined from side queries,
and the subscriptions' display names and management groups; it reads the journal's newest outcome of every
cluster in bulk (one partition query: who gave up, and why); it decides each cluster with the same pure core
as the reconciler and gives it its state (:func:`remediator.core.coverage.assess`: protected, installing,
waiting, blocked, gave up, not started, not selected). ``extensionReady`` (Policy 1: the extension Succeeded)
and ``protected`` (the mode's whole visible chain; Policy 2 in protect mode: a backup instance protects it)
are counted separately. When the mode assigns roles, the report adds each role-assignment subscription's
headroom against Azure's limit (existing assignments counted by Resource Graph, and what the chain still
needs there). :func:`remediator.core.report_document.build_document` derives totals and groups, and its
validator holds the arithmetic.
"""

from __future__ import annotations

import hashlib
import logging
from collections import Counter
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from remediator.adapters.graph import InventoryStats
from remediator.core.config import RemediatorConfig
from remediator.core.coverage import (
    LatestOutcome,
    LinkState,
    VisibleChain,
    assess,
    blockers_needing_a_person,
    cluster_row,
    visible_links,
)
from remediator.core.decision import Reason, decide
from remediator.core.errors import UserInputError
from remediator.core.inventory_query import InventoryPlan, plan_fleet_inventory, plan_role_counts
from remediator.core.naming import cluster_key
from remediator.core.plan.links import STORAGE_ACCESS_GRANTED
from remediator.core.report_document import (
    ClusterRow,
    ConfigIdentity,
    ReportDocument,
    RoleAssignmentHeadroom,
    build_document,
)
from remediator.core.snapshot import ClusterSnapshot
from remediator.service.ports import QueriesInventory, ReadsOutcomes

logger = logging.getLogger(__name__)

ROLE_ASSIGNMENT_LIMIT = 4000
"""Azure's limit of role assignments per subscription (subscription, resource-group and resource scopes;
management-group scope not counted): MicrosoftDocs/azure-docs@articles/role-based-access-control/
troubleshoot-limits.md, as the emulator models it (emulator/README.md, "Role assignments")."""


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
    needed: Counter[str] = Counter()
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
        facts = row.chain_facts()
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
        storage = decision.storage_account_id
        if (
            chain.grant_role is not None
            and decision.selected
            and storage is not None
            and not blockers_needing_a_person(decision.blockers)
        ):
            grant = next(c for c in visible_links(decision, facts, chain) if c.link == STORAGE_ACCESS_GRANTED)
            if grant.state is not LinkState.SATISFIED:
                needed[str(storage.subscription_id)] += 1
    names.update(stats.subscription_names)
    headroom = _headroom(config, inventory, needed, names) if chain.grant_role is not None else []
    return build_document(
        generated_at=generated_at, config=identity, clusters=rows, role_assignment_headroom=headroom
    )


def _headroom(
    config: RemediatorConfig,
    inventory: QueriesInventory,
    needed: Counter[str],
    names: Mapping[str, str],
) -> list[RoleAssignmentHeadroom]:
    """Each subscription the chain assigns roles in (the storage accounts'): assignments counted by Resource
    Graph, what the chain still needs there, and the limit."""
    subscriptions = {str(t.storage_account.subscription_id).lower() for t in config.targets.values()}
    existing: Counter[str] = Counter()
    for request in plan_role_counts(subscriptions):
        for data in inventory.iter_data(request):
            existing[str(data.get("subscriptionId") or "").lower()] += int(data.get("assignments") or 0)
    out = []
    for sub in sorted(subscriptions):
        have = existing.get(sub, 0)
        room = ROLE_ASSIGNMENT_LIMIT - have
        need = needed.get(sub, 0)
        out.append(
            RoleAssignmentHeadroom(
                subscription_id=sub,
                subscription_name=names.get(sub),
                existing=have,
                needed=need,
                limit=ROLE_ASSIGNMENT_LIMIT,
                headroom=room,
                overflow=need > room,
            )
        )
    return out
