"""Protect mode at fleet scale: the sweep and the report see protect's whole chain through Resource Graph
(issue 12 items 5-6, issue 17 F3 for protect), through the real product runtime (the raw Resource Graph
pipeline, real SDK clients for every change a person or Azure makes) against the emulator and Azurite.

Every protected cluster here was protected by the product's own chain (``drive``), so the sweep's view is
checked against what the chain really creates (the same roles, scopes, principals and instance), not
against hand-made rows. Then one link is broken the way a person or Azure breaks it:

- the backup instance deleted: extension, grant and roles in place, no instance -> enqueued
  (``backup-instance-exists``) and not counted protected;
- a vault role removed -> enqueued, naming the role's link (Resource Graph shows it, no per-cluster GET);
- the instance in ProtectionError (a deleted trusted-access binding, found by the next scheduled backup) ->
  enqueued at once (``protection-configured``); before that error the binding alone is invisible to Resource
  Graph, and the daily re-verification re-creates it;
- another vault's instance -> not enqueued, reported as protected elsewhere (``protectedBy``);
- the report's role-assignment headroom counts protect's assignments in every subscription they land in.
"""

from __future__ import annotations

import time
from typing import Any

import pytest
from azure.mgmt.containerservice import ContainerServiceClient
from azure.mgmt.dataprotection import DataProtectionMgmtClient

from remediator.core.catalog import READER
from remediator.core.ids import parse_cluster_id
from remediator.core.outcomes import OutcomeKind
from remediator.core.report_document import ConfigIdentity, ReportDocument, from_json, to_json
from remediator.service.report import build_report
from remediator.service.sweep import Sweeper, SweepSummary
from tests.fixtures.emulator import BACKUP_RG, CLUSTER_ID, OTHER_SUB, TEST_SUB
from tests.integration.protect.conftest import AKS, AKS_2, AKS_UAI, ProtectWorld, drive, link_state
from tests.integration.protect.test_protect import (
    _client,
    _protect,
    _protected_elsewhere,
    _remove_role,
    _tick,
    _vault_principal,
    _wait_for,
)

pytestmark = pytest.mark.integration

IDENTITY = ConfigIdentity(source="protect.json", sha256="cd" * 32, mode="protect")
STOPPED = CLUSTER_ID.replace("aks1", "aks-stopped")


class Queue:
    """The sweep's work sink (the ``EnqueuesWork`` port): cluster id (lower-cased) -> reason."""

    def __init__(self) -> None:
        self.items: dict[str, str] = {}

    def enqueue_work(self, cluster_id: Any, *, reason: str, **_: Any) -> None:
        self.items[cluster_id.canonical.lower()] = reason


def sweep(world: ProtectWorld, **kwargs: Any) -> tuple[SweepSummary, dict[str, str]]:
    queue = Queue()
    runtime = world.runtime
    summary = Sweeper(config=runtime.config, inventory=runtime.inventory, work=queue, **kwargs).run(
        dry_run=False, list_clusters=True
    )
    return summary, queue.items


def report(world: ProtectWorld, runtime: Any = None) -> ReportDocument:
    runtime = runtime or world.runtime
    document = build_report(runtime.config, inventory=runtime.inventory, identity=IDENTITY)
    assert from_json(to_json(document)) == document  # the validator holds the arithmetic
    return document


def state(document: ReportDocument, cid: str) -> str:
    return next(c.state for c in document.clusters if c.id.lower() == cid.lower())


def test_a_protected_cluster_is_left_alone_and_counted_protected(world: ProtectWorld) -> None:
    summary, queued = sweep(world)
    assert queued[AKS.lower()] == "sweep:extension-installed-missing"
    assert summary.protected == 0
    _protect(world)
    summary, queued = sweep(world)
    assert AKS.lower() not in queued, queued.get(AKS.lower())
    assert {AKS_2.lower(), AKS_UAI.lower()} <= set(queued)
    assert summary.protected == 1
    listed = {c["id"].lower(): c for c in summary.clusters or []}
    assert listed[AKS.lower()]["decision"] == "nothing-to-do"
    document = report(world)
    assert state(document, AKS) == "protected" and state(document, AKS_2) == "notStarted"
    assert document.totals.protected == 1
    row = next(c for c in document.clusters if c.id.lower() == AKS.lower())
    assert row.protection_state == "ProtectionConfigured" and row.protected_by is None


def test_extension_and_grant_without_a_backup_instance_is_enqueued_and_not_protected(
    world: ProtectWorld,
) -> None:
    _protect(world)
    (instance,) = world.instances()
    dp = _client(world, DataProtectionMgmtClient)
    dp.backup_instances.begin_delete(BACKUP_RG, "AKSAzureBackup-eastus", instance["name"]).result()
    _wait_for(lambda: not world.instances())
    summary, queued = sweep(world)
    assert queued[AKS.lower()] == "sweep:backup-instance-exists-missing"
    assert summary.by_need["backup-instance-exists:missing"] == 1
    document = report(world)
    row = next(c for c in document.clusters if c.id.lower() == AKS.lower())
    assert row.extension_state == "Succeeded" and row.state == "notStarted"
    assert "backup-instance-exists" in row.next_action
    assert document.totals.protected == 0 and document.totals.extension_ready >= 1


def test_a_removed_vault_role_is_seen_by_the_sweep_and_repaired_by_its_work_item(world: ProtectWorld) -> None:
    _protect(world)
    _remove_role(world, _vault_principal(world), READER, AKS)
    world.emulator.admin.clear_calls()
    summary, queued = sweep(world)
    assert queued[AKS.lower()] == "sweep:vault-reader-on-cluster-missing"
    per_cluster_gets = [
        c
        for c in world.calls()
        if c["method"].upper() == "GET" and "/managedclusters/aks-p1" in c["path"].lower()
    ]
    assert per_cluster_gets == []  # Resource Graph showed it: no per-cluster read
    assert state(report(world), AKS) != "protected"
    reports = drive(world, AKS)  # the work item's reconcile
    assert link_state(reports[0], "vault-reader-on-cluster") == "missing"
    assert reports[-1].outcome.kind is OutcomeKind.DONE
    _, queued = sweep(world)
    assert AKS.lower() not in queued


def test_an_instance_in_protection_error_is_enqueued_at_once(world: ProtectWorld) -> None:
    _protect(world)
    cs = _client(world, ContainerServiceClient)
    (binding,) = list(cs.trusted_access_role_bindings.list("rg1", "aks-p1"))
    cs.trusted_access_role_bindings.begin_delete("rg1", "aks-p1", binding.name).result()
    _, queued = sweep(world)
    assert AKS.lower() not in queued  # the binding is invisible to Resource Graph (re-verification's job)
    _tick(world)  # the next scheduled backup finds the binding gone
    assert world.state_of(AKS) == "ProtectionError"
    summary, queued = sweep(world)
    assert queued[AKS.lower()] == "sweep:protection-configured-failed"
    assert summary.by_need["protection-configured:failed"] == 1
    row = next(c for c in report(world).clusters if c.id.lower() == AKS.lower())
    assert row.state != "protected" and row.protection_state == "ProtectionError"


def test_reverification_re_creates_a_binding_resource_graph_cannot_see(world: ProtectWorld) -> None:
    _protect(world)
    cs = _client(world, ContainerServiceClient)
    (binding,) = list(cs.trusted_access_role_bindings.list("rg1", "aks-p1"))
    cs.trusted_access_role_bindings.begin_delete("rg1", "aks-p1", binding.name).result()
    journal = world.runtime.journal
    assert journal is not None
    now = time.time()
    # a first sweep of this scope re-verifies the last hour; a period of a minute puts every slot in it
    _, queued = sweep(world, decisions=journal, wall_clock=lambda: now, reverify_period_s=60.0)
    assert queued[AKS.lower()] == "sweep:reverify"
    reports = drive(world, AKS)
    assert link_state(reports[0], "trusted-access-bound") == "missing"
    assert reports[-1].outcome.kind is OutcomeKind.DONE
    (again,) = list(cs.trusted_access_role_bindings.list("rg1", "aks-p1"))
    assert again.name == binding.name


def test_a_cluster_protected_by_another_vault_is_never_enqueued_and_reported_elsewhere(
    world: ProtectWorld,
) -> None:
    _protected_elsewhere(world)
    world.emulator.admin.clear_calls()
    summary, queued = sweep(world)
    assert AKS.lower() not in queued
    assert summary.protected_elsewhere == 1 and summary.protected == 1
    listed = {c["id"].lower(): c for c in summary.clusters or []}
    assert listed[AKS.lower()]["decision"] == "protected-elsewhere"
    document = report(world)
    row = next(c for c in document.clusters if c.id.lower() == AKS.lower())
    assert row.state == "protected" and row.protection_state == "ProtectionConfigured"
    assert row.protected_by is not None and row.protected_by.lower().endswith(
        "/backupvaults/someone-elses-vault/backupinstances/theirs-bi"
    )
    assert "protected elsewhere" in row.next_action
    assert world.arm_writes() == []  # neither the sweep nor the report writes
    # a work item for it anyway (an event): the chain agrees, zero writes
    assert world.runtime.reconciler.reconcile(parse_cluster_id(AKS)).actions == ()
    assert world.arm_writes() == []


def _headroom(document: ReportDocument) -> dict[str, tuple[int, int]]:
    return {h.subscription_id: (h.existing, h.needed) for h in document.role_assignment_headroom}


SELECTED = 5
"""aks1, aks-stopped (it will need its roles once running), aks-p1, aks-p2, aks-uai (conftest.estate)."""


def test_the_headroom_counts_protects_assignments(world: ProtectWorld) -> None:
    # per cluster: the extension's Storage Blob Data Contributor, the vault's Reader on the cluster and the
    # cluster identity's Contributor on the snapshot group; shared by the region: the vault's Reader and
    # Disk Snapshot Contributor on the snapshot group and Storage Blob Data Reader on the account
    before = _headroom(report(world))
    assert before == {TEST_SUB: (0, 3 * SELECTED + 3)}
    _protect(world)
    created = len(world.role_assignments())
    assert created == 6  # the chain created exactly the six assignments aks-p1 needs
    after = _headroom(report(world))
    assert after == {TEST_SUB: (6, 3 * SELECTED + 3 - 6)}
    install = world.with_config(remediation={"mode": "install"})
    assert _headroom(report(world, install)) == {TEST_SUB: (6, SELECTED - 1)}  # only the extensions' grants


def test_the_headroom_has_a_row_for_every_subscription_protects_roles_land_in(world: ProtectWorld) -> None:
    storage = (
        f"/subscriptions/{OTHER_SUB}/resourceGroups/rg-backup/providers/Microsoft.Storage/storageAccounts/"
        "stotherbackup"
    )
    runtime = world.with_config(storage={"eastus": storage})
    headroom = _headroom(report(world, runtime))
    # the storage subscription: every extension's grant and the vault's Blob Data Reader; the clusters'
    # subscription (the snapshot groups' too): the vault's Reader per cluster, each cluster's Contributor,
    # the vault's two snapshot-group roles
    assert headroom == {OTHER_SUB: (0, SELECTED + 1), TEST_SUB: (0, 2 * SELECTED + 2)}
