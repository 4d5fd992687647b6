"""Policy-task mode after a finished task: the cluster turns non-compliant again and gets a new task
(next generation), while repeats during a running task still create nothing."""

from __future__ import annotations

import pytest

from remediator.core.ids import parse_cluster_id
from remediator.core.naming import remediation_task_name
from remediator.core.outcomes import ActionStatus, OutcomeKind, WriteKind
from tests.fixtures.emulator import TEST_SUB
from tests.integration.reconciler.conftest import (
    arm_writes,
    cluster_id,
    extension_state,
)
from tests.integration.reconciler.policy_task_estate import ASSIGNMENT, reset_with_policy3_assignment

pytestmark = pytest.mark.integration

AKS_OK = cluster_id("aks-ok")


def remediation_puts(world):
    return [c for c in arm_writes(world) if "/remediations/" in c["path"].lower() and c["method"] == "PUT"]


def converge(runtime, world, wait_until):
    first = runtime.reconciler.reconcile(parse_cluster_id(AKS_OK))
    assert first.outcome.kind is OutcomeKind.WAIT, first.outcome
    assert [(a.kind, a.status) for a in first.actions] == [
        (WriteKind.CREATE_REMEDIATION_TASK, ActionStatus.DONE)
    ]
    for _ in range(3):  # repeats while the task runs create nothing
        again = runtime.reconciler.reconcile(parse_cluster_id(AKS_OK))
        assert [a for a in again.actions if a.status is ActionStatus.DONE] == []
    wait_until(lambda: extension_state(world, AKS_OK) == "Succeeded", timeout_s=15)
    final = runtime.reconciler.reconcile(parse_cluster_id(AKS_OK))
    assert final.outcome.kind is OutcomeKind.DONE, final.outcome


def test_non_compliant_again_after_a_succeeded_task_gets_the_next_generation(world, emulator, wait_until):
    reset_with_policy3_assignment(emulator)
    runtime = world.with_config(remediation={"mode": "policy-task", "policyAssignmentIds": [ASSIGNMENT]})
    try:
        converge(runtime, world, wait_until)
        # someone removes the extension: the cluster is NonCompliant again
        ext_client = runtime.clients.extensions(TEST_SUB)
        ext_client.extensions.begin_delete(
            "rg1", "Microsoft.ContainerService", "managedClusters", "aks-ok", "azure-aks-backup"
        ).result()
        assert extension_state(world, AKS_OK) is None
        converge(runtime, world, wait_until)
        names = [c["path"].rsplit("/", 1)[-1].split("?")[0].lower() for c in remediation_puts(world)]
        assert names == [
            remediation_task_name(AKS_OK, ASSIGNMENT).lower(),
            remediation_task_name(AKS_OK, ASSIGNMENT, generation=1).lower(),
        ]
    finally:
        runtime.close()
