"""Modes other than install, dry runs, the CLI, and outcome events on the Event Grid custom topic."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest

from remediator.core.ids import parse_cluster_id
from remediator.core.outcomes import ActionStatus, OutcomeKind, WriteKind
from remediator.service.runtime import Runtime
from tests.fixtures.emulator import TEST_SUB
from tests.integration.reconciler.conftest import (
    FAST,
    ROOT_DIR,
    arm_writes,
    cluster_id,
    extension_state,
)
from tests.integration.reconciler.policy_task_estate import ASSIGNMENT, reset_with_policy3_assignment

pytestmark = pytest.mark.integration

AKS_OK = cluster_id("aks-ok")


def test_dry_run_reports_the_plan_and_writes_nothing(world):
    report = world.runtime.reconciler.reconcile(parse_cluster_id(AKS_OK), dry_run=True)
    assert report.dry_run and report.outcome.kind is OutcomeKind.WAIT
    assert [(a.kind, a.status) for a in report.actions] == [
        (WriteKind.CREATE_CONTAINER, ActionStatus.PLANNED),
        (WriteKind.CREATE_EXTENSION, ActionStatus.PLANNED),
    ]
    assert arm_writes(world) == []
    assert world.runtime.journal is not None and world.runtime.journal.latest(AKS_OK) is None


def test_audit_mode_reports_the_same_plan_and_writes_nothing(world):
    planned = world.runtime.reconciler.reconcile(parse_cluster_id(AKS_OK), dry_run=True)
    audit = world.with_config(remediation={"mode": "audit"})
    try:
        report = audit.reconciler.reconcile(parse_cluster_id(AKS_OK))
    finally:
        audit.close()
    assert report.mode == "audit"
    assert [(a.kind, a.target, a.status) for a in report.actions] == [
        (a.kind, a.target, a.status) for a in planned.actions
    ]
    assert report.outcome.kind is OutcomeKind.DONE and report.outcome.why.startswith("audit mode: would")
    assert arm_writes(world) == []
    assert audit.journal is not None and audit.journal.latest(AKS_OK) == report  # audits are journaled


def test_policy_task_mode_creates_one_task_and_the_policy_deploys(world, emulator, wait_until):
    reset_with_policy3_assignment(emulator)
    runtime = world.with_config(remediation={"mode": "policy-task", "policyAssignmentIds": [ASSIGNMENT]})
    try:
        first = runtime.reconciler.reconcile(parse_cluster_id(AKS_OK))
        assert first.outcome.kind is OutcomeKind.WAIT, first.outcome
        ((kind, status),) = [(a.kind, a.status) for a in first.actions]
        assert (kind, status) == (WriteKind.CREATE_REMEDIATION_TASK, ActionStatus.DONE)
        for _ in range(5):  # repeats find the task instead of piling up new ones
            again = runtime.reconciler.reconcile(parse_cluster_id(AKS_OK))
            assert again.outcome.kind in (OutcomeKind.WAIT, OutcomeKind.DONE)
            assert [a for a in again.actions if a.status is ActionStatus.DONE] == []
        puts = [c for c in arm_writes(world) if "/remediations/" in c["path"].lower()]
        assert len(puts) == 1
        assert puts[0]["path"].lower().startswith(AKS_OK.lower() + "/providers/microsoft.policyinsights/")
        wait_until(lambda: extension_state(world, AKS_OK) == "Succeeded", timeout_s=15)
        final = runtime.reconciler.reconcile(parse_cluster_id(AKS_OK))
        assert final.outcome.kind is OutcomeKind.DONE and "Azure Policy" in final.outcome.why
        # the reconciler itself never wrote the extension in this mode
        direct = [
            c
            for c in arm_writes(world, path_contains="/extensions/")
            if c["principal"] == puts[0]["principal"]
        ]
        assert direct == []
    finally:
        runtime.close()


def test_outcome_events_reach_the_custom_topic(world, emulator, wait_until):
    env = {
        **world.env,
        "REMEDIATOR_OUTCOME_TOPIC_ENDPOINT": emulator.base_url + "/api/events",
        "REMEDIATOR_OUTCOME_TOPIC_KEY": "emulator-topic-key",
    }
    emulator.admin.request("POST", "/eventgrid/reset")
    runtime = Runtime.from_env(env, client_options=FAST)
    try:
        runtime.reconciler.reconcile(parse_cluster_id(AKS_OK))
        runtime.reconciler.reconcile(parse_cluster_id(cluster_id("aks-untagged")))
        runtime.reconciler.reconcile(parse_cluster_id(cluster_id("aks-sp-b")))
        runtime.reconciler.reconcile(parse_cluster_id(AKS_OK), dry_run=True)  # publishes nothing
        wait_until(lambda: extension_state(world, AKS_OK) == "Succeeded", timeout_s=5)
        runtime.reconciler.reconcile(parse_cluster_id(AKS_OK))  # grants storage access: Installed
        runtime.reconciler.reconcile(parse_cluster_id(AKS_OK))  # nothing new: no event
    finally:
        runtime.close()
    received = emulator.admin.request("GET", "/eventgrid/topic/events")
    assert {e["schema"] for e in received["value"]} == {"EventGridSchema"}
    events = [e["event"] for e in received["value"]]
    got = [(e["eventType"], e["subject"].rsplit("/", 1)[-1]) for e in events]
    assert got == [
        ("AksBackupRemediator.InstallStarted", "aks-ok"),
        ("AksBackupRemediator.Skipped", "aks-untagged"),
        ("AksBackupRemediator.GaveUp", "aks-sp-b"),
        ("AksBackupRemediator.Installed", "aks-ok"),
    ]
    assert events[0]["data"]["outcome"]["kind"] == "wait"


def _cli(world, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, **world.env}
    env.pop("REMEDIATOR_CONFIG_FILE", None)
    return subprocess.run(
        [sys.executable, "-m", "remediator", "reconcile", "--config", str(world.config_path), *args],
        capture_output=True,
        text=True,
        cwd=ROOT_DIR,
        env=env,
        timeout=60,
    )


def test_cli_dry_run_prints_the_plan_and_writes_nothing(world):
    started = time.monotonic()
    result = _cli(world, "--cluster", AKS_OK, "--dry-run", "--output", "json")
    # was exit 3 ("wait") with the outcome "extension ... install started"; a dry run says what it WOULD do
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert [a["kind"] for a in report["actions"]] == ["create-container", "create-extension"]
    assert {a["status"] for a in report["actions"]} == {"planned"}
    assert report["wouldDo"] == report["actions"]
    why = report["outcome"]["why"]
    assert why.startswith("dry run, nothing written: would create blob container ")
    assert "then install the backup extension azure-aks-backup" in why and "started" not in why
    assert arm_writes(world) == []
    assert time.monotonic() - started < 30


def test_cli_reconcile_installs_and_renders_a_table(world):
    result = _cli(world, "--cluster", AKS_OK, "--output", "table")
    assert result.returncode == 3, result.stderr
    assert "create-extension" in result.stdout and "done" in result.stdout
    assert len(arm_writes(world, path_contains="/extensions/")) == 1
    skipped = _cli(world, "--cluster", cluster_id("aks-untagged"))
    assert skipped.returncode == 0 and json.loads(skipped.stdout)["outcome"]["kind"] == "skipped"
    gave_up = _cli(world, "--cluster", cluster_id("aks-win"))
    assert gave_up.returncode == 4 and "no-linux-amd64-pool" in gave_up.stdout


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (
            ["--cluster", "/subscriptions/x/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/v"],
            "--cluster",
        ),
        (["--cluster", "not-an-id"], "--cluster"),
    ],
)
def test_cli_bad_cluster_id_exits_2_naming_the_field_without_traceback(world, args, named):
    result = _cli(world, *args)
    assert result.returncode == 2
    assert named in result.stderr and "Traceback" not in result.stderr
    assert world.calls() == []


def test_cli_bad_config_exits_2_naming_the_file_and_field(world, tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"scope": {"subscriptions": [TEST_SUB]}, "storage": {"eastus": "nope"}}))
    env = {**os.environ, **world.env}
    result = subprocess.run(
        [sys.executable, "-m", "remediator", "reconcile", "--config", str(bad), "--cluster", AKS_OK],
        capture_output=True, text=True, cwd=ROOT_DIR, env=env, timeout=60,
    )  # fmt: skip
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert str(bad) in result.stderr and "storage" in result.stderr
    assert world.calls() == []
