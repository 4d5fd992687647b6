"""Clusters the reconciler must not write to: unselected, not ready, blocked, bad storage, missing
provider."""

from __future__ import annotations

import pytest

from remediator.core.ids import parse_cluster_id
from remediator.core.outcomes import OutcomeKind
from tests.fixtures.emulator import OTHER_SUB
from tests.integration.reconciler.conftest import arm_writes, cluster_id

pytestmark = pytest.mark.integration


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("aks-untagged", "not-included"),
        ("aks-excluded", "excluded-by-tag"),
        ("aks-other", "out-of-scope"),
    ],
)
def test_unselected_cluster_is_skipped_with_zero_writes(world, name, reason):
    cid = cluster_id(name, sub=OTHER_SUB) if name == "aks-other" else cluster_id(name)
    report = world.runtime.reconciler.reconcile(parse_cluster_id(cid))
    assert report.outcome.kind is OutcomeKind.SKIPPED
    assert report.outcome.why == reason and report.decision is not None
    assert report.decision["selected"] is False and report.actions == ()
    assert arm_writes(world) == []
    reads = sorted(c["operation"] for c in world.calls() if c["path"].startswith("/subscriptions/"))
    if name == "aks-other":
        assert reads == ["ManagedClusters_Get"]  # its id puts it out of scope: nothing is read ahead
        return
    # the cluster, and its subscription's preflight reads, which go out with the cluster GET (before the
    # tags are known) and are cached for every cluster of the subscription: a second unselected cluster there
    # costs its GET alone
    assert reads == ["ManagedClusters_Get", "Providers_Get"]
    seen = len(world.calls())
    other = "aks-excluded" if name == "aks-untagged" else "aks-untagged"
    assert world.runtime.reconciler.reconcile(parse_cluster_id(cluster_id(other))).actions == ()
    later = [c["operation"] for c in world.calls()[seen:] if c["path"].startswith("/subscriptions/")]
    assert later == ["ManagedClusters_Get"]
    assert arm_writes(world) == []


@pytest.mark.parametrize(
    ("name", "blocker"),
    [("aks-stopped-b", "cluster-stopped"), ("aks-updating", "cluster-not-succeeded")],
)
def test_cluster_not_ready_waits(world, name, blocker):
    report = world.runtime.reconciler.reconcile(parse_cluster_id(cluster_id(name)))
    assert report.outcome.kind is OutcomeKind.WAIT and blocker in report.outcome.why
    assert report.outcome.retry_after_s and report.outcome.retry_after_s > 0
    assert arm_writes(world) == []


@pytest.mark.parametrize(
    ("name", "named"),
    [
        ("aks-sp-b", "service-principal"),
        ("aks-nocsi", "disk-csi-driver-disabled"),
        ("aks-nosnap", "snapshot-controller-disabled"),
        ("aks-win", "no-linux-amd64-pool"),
        ("aks-arm", "no-linux-amd64-pool"),
    ],
)
def test_blockers_needing_a_human_give_up_naming_the_blocker(world, name, named):
    report = world.runtime.reconciler.reconcile(parse_cluster_id(cluster_id(name)))
    assert report.outcome.kind is OutcomeKind.GAVE_UP and named in report.outcome.why
    assert arm_writes(world) == []


@pytest.mark.parametrize(
    ("name", "named"),
    [("aks-weu", "storage-account-wrong-region"), ("aks-cus", "storage-account-missing")],
)
def test_storage_problems_give_up_naming_the_account(world, name, named):
    report = world.runtime.reconciler.reconcile(parse_cluster_id(cluster_id(name)))
    assert report.outcome.kind is OutcomeKind.GAVE_UP and named in report.outcome.why
    assert "/storageAccounts/" in report.outcome.why
    assert arm_writes(world) == []


def test_deleted_cluster_is_done(world):
    report = world.runtime.reconciler.reconcile(parse_cluster_id(cluster_id("aks-never-existed")))
    assert report.outcome.kind is OutcomeKind.DONE and "not found" in report.outcome.why
    assert report.decision is None and arm_writes(world) == []


def test_missing_provider_registration_gives_up_and_never_registers(world, emulator):
    cid = cluster_id("aks-unreg", sub=OTHER_SUB)
    emulator.admin.put_resources({"clusters": [{"id": cid, "location": "eastus", "tags": {"backup": "yes"}}]})
    runtime = world.with_config(scope={"subscriptions": [OTHER_SUB]})
    emulator.admin.clear_calls()
    try:
        report = runtime.reconciler.reconcile(parse_cluster_id(cid))
    finally:
        runtime.close()
    assert report.outcome.kind is OutcomeKind.GAVE_UP, report.outcome
    # preflight finds it before any write (it used to surface as ProviderNotRegistered on the refused PUT)
    assert "provider-not-registered" in report.outcome.why
    assert "az provider register --namespace Microsoft.KubernetesConfiguration" in report.outcome.why
    # azure-mgmt-core's auto-registration policy would POST .../providers/<ns>/register and poll forever
    assert not [c for c in world.calls() if c["path"].lower().endswith("/register")]
    assert arm_writes(world) == []


def test_malformed_cluster_id_is_rejected_before_any_call(world):
    """Ids are parsed once, at the edge (work item, event, HTTP body, CLI): the reconciler only ever gets a
    parsed cluster id, and a malformed one never reaches it."""
    import json

    from remediator.core.errors import UserInputError
    from remediator.service.runtime import build_handler_context
    from remediator.service.triggers.queue import handle_work_item

    ctx = build_handler_context(world.env)
    body = json.dumps({"clusterId": "/subscriptions/x/resourceGroups/rg/providers/Microsoft.Compute/vms/v"})
    try:
        with pytest.raises(UserInputError) as err:
            handle_work_item(body, dequeue_count=1, ctx=ctx)
    finally:
        ctx.extras["runtime"].close()
    assert err.value.field == "clusterId"
    assert world.calls() == []
