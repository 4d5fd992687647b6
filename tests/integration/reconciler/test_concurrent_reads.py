"""The reads of one reconcile that do not depend on each other (extension list, storage account GET,
container GET) go out together after the cluster GET, preflight's reads of the subscription go out with the
cluster GET, and the independent writes (container and extension PUT) go out together; an error in any read
keeps its ARM mapping; the re-read after the write claim is made where it is still needed (re-installs), and
a failed re-read releases the claim (issue 17 F1)."""

from __future__ import annotations

import time

import pytest

from remediator.adapters.arm import ArmGateway
from remediator.core.ids import parse_cluster_id
from remediator.core.naming import cluster_key
from remediator.core.outcomes import ActionStatus, OutcomeKind, WriteKind
from remediator.service.reconcile import Reconciler
from tests.integration.reconciler.conftest import arm_writes, cluster_id

pytestmark = pytest.mark.integration

AKS_OK = cluster_id("aks-ok")
EXTENSIONS_LIST = "*/managedClusters/aks-ok/providers/Microsoft.KubernetesConfiguration/extensions"
READS = {"Extensions_List", "StorageAccounts_GetProperties", "BlobContainers_Get"}
"""The round after the cluster GET: the chain's reads that need its answer."""
AHEAD = {"Providers_Get"}
"""Preflight's reads of the cluster's subscription, which need only the cluster's id: they go out with the
cluster GET (and so does its policy data, from Resource Graph, outside ``/subscriptions/``)."""


def _interval(call: dict) -> tuple[float, float]:
    end = float(call["time"])
    return end - float(call["durationMs"]) / 1000, end


def test_independent_reads_and_writes_overlap_and_the_install_takes_two_rounds(world, emulator):
    emulator.admin.set_config(latencyMs=150, jitterMs=0)
    report = world.runtime.reconciler.reconcile(parse_cluster_id(AKS_OK))
    assert [(a.kind, a.status) for a in report.actions] == [
        (WriteKind.CREATE_CONTAINER, ActionStatus.DONE),
        (WriteKind.CREATE_EXTENSION, ActionStatus.DONE),
    ]
    calls = [c for c in world.calls() if c["path"].lower().startswith("/subscriptions/")]
    ops = [c["operation"] for c in calls]
    cluster_get = next(c for c in calls if c["operation"] == "ManagedClusters_Get")
    cluster_start, cluster_end = _interval(cluster_get)
    reads = [c for c in calls if c["operation"] in READS]
    assert sorted(c["operation"] for c in reads) == sorted(READS)
    intervals = [_interval(c) for c in reads]
    # all three were in flight at the same moment: the latest start precedes the earliest end
    assert max(start for start, _ in intervals) < min(end for _, end in intervals)
    assert all(start >= cluster_end - 0.01 for start, _ in intervals)  # after the cluster GET (it decides)
    # preflight's reads of the subscription were in flight together with the cluster GET, not after it
    ahead = [_interval(c) for c in calls if c["operation"] in AHEAD]
    assert len(ahead) == len(AHEAD)
    assert all(start < cluster_end and end > cluster_start for start, end in ahead)
    # nothing else before the writes: no second extension list after the claim
    first_write = next(i for i, c in enumerate(calls) if c["method"] == "PUT")
    assert len(calls[:first_write]) == 5
    assert ops.count("Extensions_List") == 1
    assert ops.count("Providers_Get") == 1  # read ahead, and taken by the round that asked for it
    # preflight's policy data (Resource Graph: the subscription's management-group ancestry and the
    # assignments at its own scopes together, then those at its groups) began with the cluster GET and was
    # in before the first write: two dependent rounds, not three
    graph = sorted(
        _interval(c)
        for c in world.calls()
        if c["path"].lower().startswith("/providers/microsoft.resourcegraph")
    )
    assert len(graph) == 3
    assert graph[0][0] < cluster_end  # started before the cluster's answer was in
    assert graph[1][0] < graph[0][1]  # the ancestry and the subscription's own assignments overlapped
    assert graph[2][0] >= min(end for _, end in graph[:2]) - 0.01  # the groups' assignments followed
    assert max(end for _, end in graph) <= _interval(calls[first_write])[0] + 0.01
    # the container PUT and the extension PUT were in flight together (neither waits for the other)
    puts = [_interval(c) for c in calls if c["method"] == "PUT"]
    assert len(puts) == 2 and max(start for start, _ in puts) < min(end for _, end in puts)


@pytest.mark.parametrize(
    ("path", "status", "code", "expect"),
    [
        ("*/storageAccounts/stbackupeastus", 503, "ServiceUnavailable", "transient"),
        (
            "*/managedClusters/aks-ok/providers/Microsoft.KubernetesConfiguration/extensions",
            403,
            "AuthorizationFailed",
            "missing permission",
        ),
    ],
)
def test_an_error_in_one_concurrent_read_keeps_its_mapping_and_writes_nothing(
    world, emulator, path, status, code, expect
):
    message = (
        "The client 'x' does not have authorization to perform action "
        "'Microsoft.KubernetesConfiguration/extensions/read' over scope 'y'."
        if status == 403
        else "injected"
    )
    emulator.admin.add_fault(
        method="GET", path=path, status=status, code=code, message=message, retryAfterS=60
    )
    report = world.runtime.reconciler.reconcile(parse_cluster_id(AKS_OK))
    assert expect in report.outcome.why, report.outcome
    if status == 403:
        assert report.outcome.kind is OutcomeKind.GAVE_UP
        assert "Microsoft.KubernetesConfiguration/extensions/read" in report.outcome.why
    else:
        assert report.outcome.kind is OutcomeKind.WAIT
    assert arm_writes(world) == []


def test_a_throttled_container_read_keeps_its_mapping_and_holds_back_only_the_container_put(world, emulator):
    """The container link cannot block nor supersede (``Requirement.vetoes``), so its failed read withholds
    its own write only: the extension PUT goes (the DINE deploys the container after the extension), and the
    outcome is the read's mapping, whichever answer came first."""
    emulator.admin.add_fault(
        method="GET",
        path="*/blobServices/default/containers/*",
        status=429,
        code="TooManyRequests",
        message="injected",
        retryAfterS=60,
    )
    report = world.runtime.reconciler.reconcile(parse_cluster_id(AKS_OK))
    assert report.outcome.kind is OutcomeKind.WAIT and "throttled" in report.outcome.why, report.outcome
    writes = arm_writes(world)
    assert [w["method"] for w in writes] == ["PUT"] and "/extensions/" in writes[0]["path"].lower()
    assert [(a.kind, a.status) for a in report.actions] == [(WriteKind.CREATE_EXTENSION, ActionStatus.DONE)]


def test_a_failed_container_read_is_ignored_when_no_install_needs_it(world, emulator):
    emulator.admin.put_resources(
        {
            "extensions": [
                {
                    "clusterId": AKS_OK,
                    "name": "azure-aks-backup",
                    "extensionType": "microsoft.dataprotection.kubernetes",
                    "provisioningState": "Succeeded",
                }
            ]
        }
    )
    emulator.admin.add_fault(
        method="GET",
        path="*/blobServices/default/containers/*",
        status=403,
        code="AuthorizationFailed",
        message="The client 'x' does not have authorization to perform action "
        "'Microsoft.Storage/storageAccounts/blobServices/containers/read' over scope 'y'.",
    )
    report = world.runtime.reconciler.reconcile(parse_cluster_id(AKS_OK))
    container_gets = [
        c["status"]
        for c in world.calls()
        if c["method"] == "GET" and "/blobservices/default/containers/" in c["path"].lower()
    ]
    assert container_gets == [403]  # read (concurrently, before the extension state was known) and refused
    assert report.outcome.kind is not OutcomeKind.GAVE_UP, report.outcome
    assert "containers/read" not in report.outcome.why
    assert report.extension_state == "Succeeded"


class _RaceAfterRead(ArmGateway):
    """The real gateway (real SDK calls to the emulator); after its first extension list, another reconcile's
    re-install lands (the emulator's extension turns Creating), as when a read goes stale before the claim."""

    def __init__(self, clients, emulator, cid: str) -> None:
        super().__init__(clients)
        self.emulator = emulator
        self.cid = cid
        self.lists = 0

    def find_backup_extension(self, cluster_id):
        found = super().find_backup_extension(cluster_id)
        self.lists += 1
        if self.lists == 1:
            self.emulator.admin.put_resources({"extensions": [_backup_extension(self.cid, "Creating")]})
        return found


def _backup_extension(cid: str, state: str) -> dict:
    return {
        "clusterId": cid,
        "name": "azure-aks-backup",
        "extensionType": "microsoft.dataprotection.kubernetes",
        "provisioningState": state,
    }


def test_a_reinstall_still_rereads_after_claiming_and_a_stale_failed_read_writes_nothing(world, emulator):
    emulator.admin.put_resources({"extensions": [_backup_extension(AKS_OK, "Failed")]})
    runtime = world.runtime
    gateway = _RaceAfterRead(runtime.clients, emulator, AKS_OK)
    reconciler = Reconciler(
        gateway, runtime.config, runtime.settings, runtime.journal, None, claims=runtime.claims
    )
    report = reconciler.reconcile(parse_cluster_id(AKS_OK))
    assert gateway.lists == 2  # the observation, then the re-read after the claim
    assert report.outcome.kind is OutcomeKind.WAIT, report.outcome
    assert report.outcome.why.startswith("state changed while claiming"), report.outcome.why
    assert arm_writes(world, path_contains="/extensions/") == []


def _claims_held(world, cid: str) -> list[str]:
    """Unexpired claim rows of the cluster in the journal table (read straight from the table)."""
    journal = world.runtime.journal
    rows = journal.table.query_entities(
        "PartitionKey eq @pk and RowKey ge @lo and RowKey lt @hi",
        parameters={"pk": cluster_key(cid), "lo": "claim-", "hi": "claim."},
    )
    return [row["RowKey"] for row in rows if float(row["ExpiresAt"]) > time.time()]


def test_a_throttled_reread_after_claiming_releases_the_claim(world, emulator, monkeypatch):
    """Issue 17 F1: an ARM error from the re-read after claiming (a 429 whose Retry-After the SDK does not
    sleep in-call) used to leave the claim held for its whole TTL, so every later reconcile waited."""
    emulator.admin.put_resources({"extensions": [_backup_extension(AKS_OK, "Failed")]})
    gateway = world.runtime.gateway
    real = gateway.find_backup_extension
    lists: list[int] = []

    def find_then_throttle(cluster_id):
        lists.append(1)
        found = real(cluster_id)
        if len(lists) == 1:  # the observation passes; the re-read after claiming gets a long 429
            emulator.admin.add_fault(method="GET", path=EXTENSIONS_LIST, status=429, retryAfterS=60)
        return found

    monkeypatch.setattr(gateway, "find_backup_extension", find_then_throttle)
    report = world.runtime.reconciler.reconcile(parse_cluster_id(AKS_OK))
    assert len(lists) == 2, "the re-install re-reads after claiming"
    assert report.outcome.kind is OutcomeKind.WAIT and "throttled" in report.outcome.why, report.outcome
    assert "LIST extensions" in report.outcome.why  # the re-read, not a write
    assert arm_writes(world) == []
    assert _claims_held(world, AKS_OK) == []  # released: nothing was written
    emulator.admin.clear_faults()
    again = world.runtime.reconciler.reconcile(parse_cluster_id(AKS_OK))  # at once, not after the claim's TTL
    assert (WriteKind.REINSTALL_EXTENSION, ActionStatus.DONE) in [(a.kind, a.status) for a in again.actions]
    assert [c["method"] for c in arm_writes(world, path_contains="/extensions/")] == ["PUT"]
