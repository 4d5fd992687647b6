"""Generated estates and matching remediator configs for the benchmarks, with the expected answer.

The expected set of clusters needing work is computed from the estate itself (the same generator the emulator
loads), through the core's decision, without any ARM or Resource Graph call: that is what both sweeps are
checked against.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from emulator.estate import cluster_from_shorthand, generate_estate
from remediator.core.blockers import BlockerKind
from remediator.core.config import parse_config
from remediator.core.decision import Reason, decide
from remediator.core.snapshot import ClusterSnapshot

logger = logging.getLogger(__name__)

BENCH_SELECTION: dict[str, Any] = {
    "include": [{"tag": "backup", "values": ["yes", "true", "daily"]}],
    "exclude": [{"tag": "env", "values": ["dev", "test"]}],
}
"""Policy-3-like selection over the generator's tag mix (keys Backup/backup/BACKUP, mixed-case values)."""


def bench_estate(
    *, clusters: int, subscriptions: int, seed: int = 7, protected_share: float = 0.25
) -> dict[str, Any]:
    """``clusters`` spread over ``subscriptions``; ``protected_share`` already carry a Succeeded extension."""
    if clusters % subscriptions:
        raise ValueError("clusters must be a multiple of subscriptions")
    return generate_estate(
        subscriptions=subscriptions,
        clusters_per_subscription=clusters // subscriptions,
        seed=seed,
        share_with_backup_extension=protected_share,
    )


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


def expected_work(estate: dict[str, Any], config: dict[str, Any]) -> list[str]:
    """Ids of the clusters a sweep must enqueue: selected, no Succeeded backup extension, not blocked."""
    parsed = parse_config(config, source="bench")
    protected = {
        ext["clusterId"].lower()
        for ext in estate.get("extensions", [])
        if ext.get("extensionType", "").lower() == "microsoft.dataprotection.kubernetes"
        and ext.get("provisioningState", "Succeeded").lower() == "succeeded"
    }
    out: list[str] = []
    tenant = estate.get("tenantId", "")
    for item in estate["clusters"]:
        if item["id"].lower() in protected:
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
