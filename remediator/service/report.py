"""The compliance report use case: per subscription and region, how many in-scope clusters are selected,
protected, pending, failed or blocked.

It streams every in-scope cluster from Resource Graph (the sweep's query built with ``needs_work_only=False``:
protected and untagged clusters too), decides each with the same pure core as the reconciler, and counts.
``protected`` means the backup extension is Succeeded; ``blocked`` means a blocker only a human can lift
(the blocker's own policy, ``core.blockers``); ``pending`` is the rest of the selected clusters.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable
from typing import Any

from remediator.core.config import RemediatorConfig
from remediator.core.decision import Reason, decide
from remediator.core.errors import UserInputError
from remediator.core.inventory_query import InventoryPlan, plan_inventory
from remediator.core.snapshot import ClusterSnapshot
from remediator.service.ports import StreamsInventory

logger = logging.getLogger(__name__)

COUNTS = ("clusters", "selected", "protected", "pending", "failed", "blocked")


def report_plan(config: RemediatorConfig) -> InventoryPlan:
    """The inventory plan of the report: every in-scope cluster, not only those needing work, and no tag
    prefilter (untagged clusters count in ``clusters``)."""
    return plan_inventory(config, prefilter_tags=False, needs_work_only=False)


def _groups_of(groups: tuple[str, ...]) -> Callable[[str], tuple[str, ...]]:
    return lambda _subscription: groups


def compliance_report(config: RemediatorConfig, inventory: StreamsInventory) -> dict[str, Any]:
    """``{"summary": [{subscriptionId, region, clusters, selected, protected, pending, failed, blocked}],
    "totals": {...}}``, rows sorted by subscription and region."""
    rows: dict[tuple[str, str], Counter[str]] = {}
    seen: set[str] = set()
    for row in inventory.iter_rows(report_plan(config)):
        try:
            snapshot = ClusterSnapshot.from_arm(row.body, source="resource graph")
        except UserInputError as exc:
            logger.warning("report skips unreadable inventory row %s: %s", row.cluster_id, exc)
            continue
        decision = decide(snapshot, config, management_groups_of=_groups_of(row.management_groups))
        if snapshot.id.key in seen or decision.reason is Reason.OUT_OF_SCOPE:
            continue
        seen.add(snapshot.id.key)
        counts = rows.setdefault((snapshot.subscription_id, snapshot.location), Counter())
        counts["clusters"] += 1
        if not decision.selected:
            continue
        counts["selected"] += 1
        state = (row.extension_state or "").lower()
        if state == "succeeded":
            counts["protected"] += 1
        elif state == "failed":
            counts["failed"] += 1
        elif any(b.needs_human for b in decision.blockers):
            counts["blocked"] += 1
        else:
            counts["pending"] += 1
    summary: list[dict[str, Any]] = [
        {"subscriptionId": sub, "region": region, **{k: counts.get(k, 0) for k in COUNTS}}
        for (sub, region), counts in sorted(rows.items())
    ]
    totals = {k: sum(counts.get(k, 0) for counts in rows.values()) for k in COUNTS}
    return {"summary": summary, "totals": totals}
