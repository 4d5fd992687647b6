"""Remediation-task creation paced by the Policy Insights quota (issue 13): the pacer reads
``x-ms-ratelimit-remaining-policy-insights-requests`` from every task PUT and stops before the provider
refuses, where a pacer blind to that header draws 429s (emulator provider quotas on)."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

import pytest

from remediator.core.ids import parse_cluster_id
from remediator.core.outcomes import ActionStatus, WriteKind
from remediator.core.pacing import WritePacer
from tests.fixtures.emulator import TEST_SUB
from tests.integration.reconciler.conftest import ESTATE, STORAGE_EASTUS, arm_writes, cluster_id
from tests.integration.reconciler.policy_task_estate import ASSIGNMENT

pytestmark = pytest.mark.integration

CLUSTERS = [cluster_id(f"aks-pi-{i:02d}") for i in range(10)]
QUOTA = {"enabled": True, "burst": 6, "perSecond": 1.0}
"""Small enough that ten task PUTs in a row run past it."""


class HeaderBlindPacer(WritePacer):
    """The pacer before issue 13: it paced the ARM write bucket and never read a provider's quota header."""

    def observe_headers(
        self, subscription_id: str, resource_type: str, headers: Mapping[str, str], *, refused: bool = False
    ) -> None:
        del subscription_id, resource_type, headers, refused


def _estate() -> dict[str, Any]:
    clusters = [{"id": cid, "location": "eastus", "tags": {"backup": "yes"}} for cid in CLUSTERS]
    return {
        **ESTATE,
        "clusters": [*ESTATE["clusters"], *clusters],
        "policyAssignments": [
            {
                "name": "aks-backup-p3",
                "scope": f"/subscriptions/{TEST_SUB}",
                "definition": "tag-include",
                "parameters": {
                    "effect": "DeployIfNotExists",
                    "location": "eastus",
                    "storageAccountId": STORAGE_EASTUS,
                    "inclusionTagName": "backup",
                    "inclusionTagValues": ["yes"],
                },
            }
        ],
    }


def _create_tasks(
    world: Any, emulator: Any, pacer: WritePacer, *, until_done: bool, timeout_s: float = 90.0
) -> list[int]:
    """Reconcile every cluster as fast as the reconciles come back (once each, or until each has its task);
    the statuses of every task PUT ARM received."""
    emulator.reset(_estate())
    emulator.admin.request("PATCH", "/policy/settings", {"remediation": {"acceptS": 0.1, "pollS": 0.05}})
    emulator.admin.set_config(quotas={"policyInsights": QUOTA})
    emulator.admin.clear_calls()
    runtime = world.with_config(
        pacer=pacer, remediation={"mode": "policy-task", "policyAssignmentIds": [ASSIGNMENT]}
    )
    pending = set(CLUSTERS)
    deadline = time.monotonic() + timeout_s
    try:
        while pending and time.monotonic() < deadline:
            for cid in sorted(pending):
                report = runtime.reconciler.reconcile(parse_cluster_id(cid))
                if any(
                    a.kind is WriteKind.CREATE_REMEDIATION_TASK and a.status is ActionStatus.DONE
                    for a in report.actions
                ):
                    pending.discard(cid)
            if not until_done:
                break
            time.sleep(0.2)
    finally:
        runtime.close()
    assert not until_done or not pending, f"{len(pending)} clusters still without a task"
    return [
        int(c["status"])
        for c in arm_writes(world)
        if "/remediations/" in c["path"].lower() and c["method"] == "PUT"
    ]


def test_task_creation_paced_by_the_policy_insights_quota_draws_no_429(world: Any, emulator: Any) -> None:
    unpaced = _create_tasks(world, emulator, HeaderBlindPacer(), until_done=False)
    assert unpaced.count(429) >= 1, unpaced  # the provider refused what the blind pacer sent
    paced = _create_tasks(world, emulator, WritePacer(), until_done=True)
    assert paced.count(429) == 0, paced
    assert sorted(s for s in paced if s < 300) == sorted(s for s in paced)  # every PUT accepted
    assert len(paced) == len(CLUSTERS)
