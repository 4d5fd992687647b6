"""Install mode end to end: real SDK clients over HTTPS against the emulator; journal and claims in
Azurite."""

from __future__ import annotations

import logging
import re
import threading

import pytest

from remediator.core.catalog import STORAGE_BLOB_DATA_CONTRIBUTOR
from remediator.core.ids import parse_cluster_id
from remediator.core.naming import backup_container_name, is_valid_container_name
from remediator.core.outcomes import ActionStatus, OutcomeKind, WriteKind
from remediator.service.runtime import Runtime
from tests.integration.reconciler.conftest import (
    FAST,
    LONG_NAME,
    STORAGE_EASTUS,
    World,
    arm_writes,
    cluster_id,
    extension_state,
    extensions_of,
)
from tests.unit.dine_template import dine_rendered_extension

pytestmark = pytest.mark.integration

AKS_OK = cluster_id("aks-ok")


def converge(world: World, cid: str, wait_until, *, runtime: Runtime | None = None, rounds: int = 40):
    """Reconcile until a final outcome, waiting for the emulator's extension lifecycle in between."""
    reconciler = (runtime or world.runtime).reconciler
    reports = []
    for _ in range(rounds):
        report = reconciler.reconcile(parse_cluster_id(cid))
        reports.append(report)
        if report.outcome.kind is not OutcomeKind.WAIT:
            return reports
        wait_until(
            lambda: extension_state(world, cid) not in ("Creating", "Updating", "Deleting"), timeout_s=5
        )
    raise AssertionError(f"no final outcome after {rounds} reconciles: {reports[-1].outcome}")


def test_fresh_cluster_gets_container_extension_and_grant(world, wait_until):
    first = world.runtime.reconciler.reconcile(parse_cluster_id(AKS_OK))
    assert first.outcome.kind is OutcomeKind.WAIT
    assert [(a.kind, a.status) for a in first.actions] == [
        (WriteKind.CREATE_CONTAINER, ActionStatus.DONE),
        (WriteKind.CREATE_EXTENSION, ActionStatus.DONE),
    ]
    reports = [first, *converge(world, AKS_OK, wait_until)]
    final = reports[-1]
    assert final.outcome.kind is OutcomeKind.DONE, final.outcome
    assert final.extension_state == "Succeeded"
    assert [(a.kind, a.status) for a in final.actions] == [(WriteKind.ASSIGN_ROLE, ActionStatus.DONE)]

    (ext,) = extensions_of(world, AKS_OK)
    assert ext["name"] == "azure-aks-backup"
    principal = ext["properties"]["aksAssignedIdentity"]["principalId"]
    container = backup_container_name("aks-ok", AKS_OK)
    assert any(c["id"].lower().endswith("/containers/" + container) for c in world.state("containers"))
    grants = [r for r in world.state("role_assignments") if r["properties"]["principalId"] == principal]
    assert len(grants) == 1
    assert grants[0]["properties"]["roleDefinitionId"].lower().endswith(STORAGE_BLOB_DATA_CONTRIBUTOR)
    assert grants[0]["id"].lower().startswith(STORAGE_EASTUS.lower() + "/providers/microsoft.authorization/")

    # converged: another reconcile writes nothing
    world.emulator.admin.clear_calls()
    again = world.runtime.reconciler.reconcile(parse_cluster_id(AKS_OK))
    assert again.outcome.kind is OutcomeKind.DONE and again.actions == ()
    assert arm_writes(world) == []

    journal = world.runtime.journal
    assert journal is not None and journal.latest(AKS_OK) == again
    assert [r.outcome.kind for r in journal.history(AKS_OK)][0] is OutcomeKind.DONE
    assert len(journal.history(AKS_OK)) == len(reports) + 1


def test_extension_body_is_the_dine_template_body(world, azure_examples):
    world.runtime.reconciler.reconcile(parse_cluster_id(AKS_OK))
    (ext,) = extensions_of(world, AKS_OK)
    policy = azure_examples / "azure-policy" / "Kubernetes_InstallAzureBackupExtensionWithTag_DINE.json"
    (account,) = [a for a in world.state("storage_accounts") if a["id"].lower() == STORAGE_EASTUS.lower()]
    blob = account["properties"]["primaryEndpoints"]["blob"]
    assert blob
    dine = dine_rendered_extension(
        policy,
        cluster_name="aks-ok",
        storage_account_id=STORAGE_EASTUS,
        tenant_id=world.env["REMEDIATOR_TENANT_ID"],
        blob_endpoint=blob,
    )
    props = ext["properties"]
    assert ext["name"] == dine["name"]
    assert props["extensionType"] == dine["properties"]["extensionType"]
    assert props["releaseTrain"] == dine["properties"]["releaseTrain"]
    assert (
        props["autoUpgradeMinorVersion"] is True and dine["properties"]["autoUpgradeMinorVersion"] == "true"
    )
    sent = dict(props["configurationSettings"])
    assert sent.pop("resources.limits.memory") == "2Gi"  # the config's extra setting
    expected = dict(dine["properties"]["configurationSettings"])
    bucket = "configuration.backupStorageLocation.bucket"
    assert sent.pop(bucket) == backup_container_name("aks-ok", AKS_OK)
    assert expected.pop(bucket) == "azure-aks-backup-aks-ok"
    assert sent == expected


@pytest.mark.parametrize("name", ["Prod_AKS_Upper", LONG_NAME])
def test_container_name_is_valid_for_uppercase_underscore_and_63_chars(world, name):
    cid = cluster_id(name)
    report = world.runtime.reconciler.reconcile(parse_cluster_id(cid))
    assert report.outcome.kind is OutcomeKind.WAIT, report.outcome
    container = backup_container_name(name, cid)
    assert is_valid_container_name(container) and len(container) <= 63
    # the emulator enforces Azure's container naming rules: the PUT succeeded
    (put,) = arm_writes(world, path_contains="/containers/")
    assert put["status"] in (200, 201) and put["path"].endswith("/" + container)
    (ext,) = extensions_of(world, cid)
    assert (
        ext["properties"]["configurationSettings"]["configuration.backupStorageLocation.bucket"] == container
    )


def test_existing_extension_under_another_name_is_reused(world, emulator, wait_until):
    emulator.admin.put_resources(
        {
            "extensions": [
                {
                    "clusterId": AKS_OK,
                    "name": "my-own-backup",
                    "extensionType": "microsoft.dataprotection.kubernetes",
                    "provisioningState": "Succeeded",
                }
            ]
        }
    )
    world.emulator.admin.clear_calls()
    report = world.runtime.reconciler.reconcile(parse_cluster_id(AKS_OK))
    assert report.outcome.kind is OutcomeKind.DONE, report.outcome
    assert [a.kind for a in report.actions] == [WriteKind.ASSIGN_ROLE]
    assert arm_writes(world, path_contains="/extensions/") == []
    assert [e["name"] for e in extensions_of(world, AKS_OK)] == ["my-own-backup"]


@pytest.mark.parametrize("state", ["Creating", "Updating", "Deleting"])
def test_extension_in_progress_waits_without_writes(world, emulator, state):
    emulator.admin.put_resources(
        {
            "extensions": [
                {
                    "clusterId": AKS_OK,
                    "name": "azure-aks-backup",
                    "extensionType": "microsoft.dataprotection.kubernetes",
                    "provisioningState": state,
                }
            ]
        }
    )
    world.emulator.admin.clear_calls()
    report = world.runtime.reconciler.reconcile(parse_cluster_id(AKS_OK))
    assert report.outcome.kind is OutcomeKind.WAIT and state in report.outcome.why
    assert arm_writes(world) == []


def test_failed_extension_is_reinstalled_a_bounded_number_of_times(world, emulator, wait_until):
    emulator.admin.add_fault(
        method="PUT", path="*/managedClusters/aks-ok/*/extensions/*", action="fail-provisioning"
    )
    kinds = []
    final = None
    for _ in range(12):
        report = world.runtime.reconciler.reconcile(parse_cluster_id(AKS_OK))
        kinds.extend(a.kind for a in report.actions if a.status is ActionStatus.DONE)
        if report.outcome.kind is not OutcomeKind.WAIT:
            final = report
            break
        wait_until(lambda: extension_state(world, AKS_OK) == "Failed", timeout_s=5)
    assert final is not None and final.outcome.kind is OutcomeKind.GAVE_UP, final
    assert "after 2 re-install(s)" in final.outcome.why
    assert kinds.count(WriteKind.CREATE_EXTENSION) == 1
    assert kinds.count(WriteKind.REINSTALL_EXTENSION) == 2
    puts = arm_writes(world, path_contains="/extensions/azure-aks-backup")
    assert len([c for c in puts if c["method"] == "PUT"]) == 3
    # giving up is final: a later reconcile still gives up and sends nothing
    world.emulator.admin.clear_calls()
    assert world.runtime.reconciler.reconcile(parse_cluster_id(AKS_OK)).outcome.kind is OutcomeKind.GAVE_UP
    assert arm_writes(world) == []


def _counts(world: World, cid: str, name: str) -> tuple[int, int, int]:
    writes = arm_writes(world)
    container = backup_container_name(name, cid)
    ext_creates = [
        c for c in writes if c["method"] == "PUT" and c["path"].lower().startswith(cid.lower() + "/")
    ]
    containers = [c for c in writes if c["method"] == "PUT" and c["path"].endswith("/" + container)]
    grants = [c for c in writes if c["method"] == "PUT" and "/roleassignments/" in c["path"].lower()]
    return len(ext_creates), len(containers), len(grants)


def test_the_extension_put_does_not_wait_for_the_container_get_of_its_round(world, emulator):
    """Issue 11: the container is no dependency of the extension (the DINE template deploys it in a nested
    deployment that dependsOn the extension), so a slow container GET, read in the extension list's round,
    does not hold the extension PUT back; the container PUT follows once its GET answered."""
    emulator.admin.add_fault(method="GET", path="*/containers/*", action="delay", delayMs=1500, count=1)
    emulator.admin.clear_calls()
    report = world.runtime.reconciler.reconcile(parse_cluster_id(AKS_OK))
    calls = emulator.admin.calls()
    container_get = next(c for c in calls if c["operation"] == "BlobContainers_Get")
    extension_put = next(c for c in calls if c["operation"] == "Extensions_Create")
    container_put = next(c for c in calls if c["operation"] == "BlobContainers_Create")
    assert extension_put["time"] - extension_put["durationMs"] / 1000 < container_get["time"]
    assert container_put["seq"] > container_get["seq"]
    assert report.outcome.kind is OutcomeKind.WAIT, report.outcome
    assert [(a.kind, a.status) for a in report.actions] == [  # chain order, as when sent in one wave
        (WriteKind.CREATE_CONTAINER, ActionStatus.DONE),
        (WriteKind.CREATE_EXTENSION, ActionStatus.DONE),
    ]


def test_ten_sequential_reconciles_write_once(world, wait_until):
    for _ in range(10):
        world.runtime.reconciler.reconcile(parse_cluster_id(AKS_OK))
    wait_until(lambda: extension_state(world, AKS_OK) == "Succeeded", timeout_s=5)
    for _ in range(10):
        world.runtime.reconciler.reconcile(parse_cluster_id(AKS_OK))
    assert world.runtime.reconciler.reconcile(parse_cluster_id(AKS_OK)).outcome.kind is OutcomeKind.DONE
    assert _counts(world, AKS_OK, "aks-ok") == (1, 1, 1)
    assert len(extensions_of(world, AKS_OK)) == 1


def test_reconciles_that_each_won_one_of_a_clusters_claims_each_send_their_share(world, wait_until):
    """Two reconciles of a fresh cluster took its claims ahead at the same moment and each won one (the CI
    failure of 0d9feda: both stood down and nothing was written until a follow-up). Each claim guards its own
    write, so the one holding ``install`` sends the extension while ``container`` is another's to send."""
    cid = cluster_id("aks-ok-2")
    cluster = parse_cluster_id(cid)
    other = world.runtime.claims.try_claim(cluster, "container", ttl_s=30.0, owner="otherhost/1/abc")
    assert other is not None
    first = world.runtime.reconciler.reconcile(cluster)
    assert [(a.kind, a.status) for a in first.actions] == [
        (WriteKind.CREATE_CONTAINER, ActionStatus.CLAIMED_ELSEWHERE),
        (WriteKind.CREATE_EXTENSION, ActionStatus.DONE),
    ]
    assert first.outcome.kind is OutcomeKind.WAIT
    world.runtime.claims.release(other)
    converge(world, cid, wait_until)
    assert _counts(world, cid, "aks-ok-2") == (1, 1, 1)


def test_five_concurrent_reconciles_from_separate_instances_write_once(world, wait_until):
    """Five runtimes = five Function instances sharing nothing but Azure and the journal table."""
    cid = cluster_id("aks-ok-2")
    runtimes = [Runtime.from_env(world.env, client_options=FAST) for _ in range(5)]

    def burst():
        barrier = threading.Barrier(len(runtimes))
        errors = []

        def run(rt):
            try:
                barrier.wait()
                rt.reconciler.reconcile(parse_cluster_id(cid))
            except Exception as exc:  # surfaced below
                errors.append(exc)

        threads = [threading.Thread(target=run, args=(rt,)) for rt in runtimes]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert errors == []

    try:
        burst()
        wait_until(lambda: extension_state(world, cid) == "Succeeded", timeout_s=5)
        burst()
        burst()
        assert world.runtime.reconciler.reconcile(parse_cluster_id(cid)).outcome.kind is OutcomeKind.DONE
        assert _counts(world, cid, "aks-ok-2") == (1, 1, 1)
        assert len(extensions_of(world, cid)) == 1
    finally:
        for rt in runtimes:
            rt.close()


def test_the_reconcile_log_line_says_where_the_time_went(world, caplog):
    """An operator reading a slow reconcile's line sees its phases (the chaos runs' multi-second reconciles
    were diagnosed from these): the cluster GET, the reads, the claims and the writes, the release of what
    was not spent, and the journal."""
    with caplog.at_level(logging.INFO, logger="remediator.service.reconcile.reconciler"):
        world.runtime.reconciler.reconcile(parse_cluster_id(AKS_OK))
    (line,) = [r.getMessage() for r in caplog.records if r.getMessage().startswith("reconcile ")]
    match = re.search(r" in (\d+\.\d\d) s \((.*)\)$", line)
    assert match is not None, line
    phases = dict(part.split(" ") for part in match.group(2).split(", "))
    assert {"cluster", "reads", "claims", "pacing", "writes", "release", "journal"} <= set(phases), line
    assert sum(float(v) for v in phases.values()) <= float(match.group(1)) + 0.01
