"""Policy-task mode against the emulator as real Azure behaves (issue 13 item 3, must-show).

Azure accepts a remediation task for an assignment whose effect cannot remediate and ends it ``Succeeded``
with zero deployments (recorded: ``shared/recordings/azure-cli__policyinsights__test_policy_insights_
remediation.json``); the emulator now does the same. So:

- a policy-task configuration naming an Audit(IfNotExists) assignment is refused: by the reconcile (a human
  blocker naming the assignment, no task created), by ``config check --live`` (exit 2 naming the entry) and by
  ``/api/health`` (503 naming it);
- a task that ends ``Succeeded`` with zero deployments while the cluster still lacks the extension (here a
  DeployIfNotExists assignment whose inclusion tag does not match the cluster) turns into ONE give-up, and no
  second task, however often the cluster is reconciled again.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

import pytest

from remediator.core.caller import Caller, Role
from remediator.core.ids import parse_cluster_id
from remediator.core.outcomes import ActionStatus, OutcomeKind, WriteKind
from remediator.service.runtime import Runtime
from remediator.service.triggers.http import handle_health
from tests.fixtures.emulator import TEST_SUB
from tests.integration.reconciler.conftest import ESTATE, ROOT_DIR, STORAGE_EASTUS, arm_writes, cluster_id

pytestmark = pytest.mark.integration

AKS_OK = cluster_id("aks-ok")
AUDIT = f"/subscriptions/{TEST_SUB}/providers/Microsoft.Authorization/policyAssignments/p3-audit"
OTHER_TAG = f"/subscriptions/{TEST_SUB}/providers/Microsoft.Authorization/policyAssignments/p3-gold"


def _policy3(name: str, **overrides: Any) -> dict[str, Any]:
    return {
        "name": name,
        "scope": f"/subscriptions/{TEST_SUB}",
        "definition": "tag-include",
        "parameters": {
            "effect": "DeployIfNotExists",
            "location": "eastus",
            "storageAccountId": STORAGE_EASTUS,
            "inclusionTagName": "backup",
            "inclusionTagValues": ["yes"],
            **overrides,
        },
    }


@pytest.fixture
def estate(emulator):
    emulator.reset(
        {
            **ESTATE,
            "policyAssignments": [
                _policy3("p3-audit", effect="AuditIfNotExists"),
                _policy3("p3-gold", inclusionTagValues=["gold"]),
            ],
        }
    )
    emulator.admin.request("PATCH", "/policy/settings", {"remediation": {"acceptS": 0.1, "pollS": 0.05}})
    emulator.admin.clear_calls()
    return emulator


def remediation_puts(world) -> list[dict[str, Any]]:
    return [c for c in arm_writes(world) if "/remediations/" in c["path"].lower() and c["method"] == "PUT"]


def policy_task_runtime(world, assignment: str) -> Runtime:
    return world.with_config(remediation={"mode": "policy-task", "policyAssignmentIds": [assignment]})


def test_a_policy_task_configuration_naming_an_audit_assignment_is_refused(world, estate):
    runtime = policy_task_runtime(world, AUDIT)
    try:
        report = runtime.reconciler.reconcile(parse_cluster_id(AKS_OK))
        assert report.outcome.kind is OutcomeKind.GAVE_UP, report.outcome
        assert "assignment-not-remediable" in report.outcome.why and "p3-audit" in report.outcome.why
        assert "AuditIfNotExists" in report.outcome.why
        assert remediation_puts(world) == [] and arm_writes(world) == []
        # the same in /api/health: 503, the probe names the assignment
        operator = Caller("function-key", "0123456789ab", None, frozenset({Role.OPERATOR.value}))
        health = handle_health(build_context=runtime.handler_context, caller_of_request=lambda _ctx: operator)
        assert health.status == 503
        (probe,) = [c for c in health.body["dependencies"] if c["name"] == "policy-assignments"]
        assert probe["ok"] is False and "p3-audit" in probe["error"] and "AuditIfNotExists" in probe["error"]
    finally:
        runtime.close()


def _config_check(world, assignment: str) -> subprocess.CompletedProcess[str]:
    config = json.loads(world.config_path.read_text())
    config["remediation"] = {"mode": "policy-task", "policyAssignmentIds": [assignment]}
    path = world.config_path.with_name("policy-task.json")
    path.write_text(json.dumps(config))
    env = {k: v for k, v in world.env.items() if k != "REMEDIATOR_CONFIG_FILE"}
    return subprocess.run(
        [sys.executable, "-m", "remediator", "config", "check", str(path), "--live", "-o", "json"],
        cwd=ROOT_DIR,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _policy_rows(done: subprocess.CompletedProcess[str]) -> list[dict[str, str]]:
    return [row for row in json.loads(done.stdout) if row["check"] == "policy-assignment"]


def test_config_check_live_refuses_the_audit_assignment_naming_the_entry(world, estate):
    refused = _config_check(world, AUDIT)
    assert refused.returncode == 2, (refused.stdout, refused.stderr)
    (row,) = _policy_rows(refused)
    assert row["status"] == "failed" and row["field"] == "remediation.policyAssignmentIds[0]"
    assert "p3-audit" in row["detail"] and "AuditIfNotExists" in row["detail"]
    assert "remediation.policyAssignmentIds[0]" in refused.stderr and "p3-audit" in refused.stderr
    assert "Traceback" not in refused.stderr
    accepted = _config_check(world, OTHER_TAG)
    (row,) = _policy_rows(accepted)
    assert row["status"] == "ok" and "DeployIfNotExists" in row["detail"]
    assert "remediation.policyAssignmentIds" not in accepted.stderr  # the other live checks may fail here
    assert arm_writes(world) == []


def test_a_succeeded_task_with_zero_deployments_is_one_give_up_not_a_second_task(world, estate, wait_until):
    runtime = policy_task_runtime(world, OTHER_TAG)
    try:
        first = runtime.reconciler.reconcile(parse_cluster_id(AKS_OK))
        assert [(a.kind, a.status) for a in first.actions] == [
            (WriteKind.CREATE_REMEDIATION_TASK, ActionStatus.DONE)
        ]
        # the task re-evaluates the cluster, finds it compliant by the assignment's own rule (tag backup=gold
        # is not there), deploys nothing and ends Succeeded: as Azure does
        task_id = f"{AKS_OK}/providers/Microsoft.PolicyInsights/remediations/"
        client = runtime.clients.policy_insights(TEST_SUB)

        def ended() -> bool:
            tasks = list(client.remediations.list_for_resource(AKS_OK.lstrip("/")))
            return bool(tasks) and all(t.provisioning_state == "Succeeded" for t in tasks)

        wait_until(ended, timeout_s=15)
        (task,) = list(client.remediations.list_for_resource(AKS_OK.lstrip("/")))
        assert task.deployment_status.total_deployments == 0 and task.id.lower().startswith(task_id.lower())
        gave_up = runtime.reconciler.reconcile(parse_cluster_id(AKS_OK))
        assert gave_up.outcome.kind is OutcomeKind.GAVE_UP, gave_up.outcome
        assert "zero deployments" in gave_up.outcome.why and "p3-gold" in gave_up.outcome.why
        assert gave_up.actions == ()
        for _ in range(3):  # later events or sweeps: the same give-up, never a second task
            again = runtime.reconciler.reconcile(parse_cluster_id(AKS_OK))
            assert again.outcome.kind is OutcomeKind.GAVE_UP and again.actions == ()
        assert len(remediation_puts(world)) == 1
        history = runtime.journal.history(AKS_OK)
        assert sum(1 for r in history for a in r.actions if a.kind is WriteKind.CREATE_REMEDIATION_TASK) == 1
    finally:
        runtime.close()
