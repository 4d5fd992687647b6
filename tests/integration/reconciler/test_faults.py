"""ARM faults injected by the emulator: each maps to the right outcome, and a storm of them converges to
exactly one write of each kind without touching unselected clusters."""

from __future__ import annotations

import time

import pytest

from remediator.adapters.clients import ClientOptions
from remediator.core.ids import parse_cluster_id
from remediator.core.naming import backup_container_name
from remediator.core.outcomes import ActionStatus, OutcomeKind, WriteKind
from remediator.core.pacing import WritePacer
from remediator.service.runtime import Runtime
from tests.integration.reconciler.conftest import STORAGE_EASTUS, arm_writes, cluster_id, extensions_of

pytestmark = pytest.mark.integration

AKS_OK = cluster_id("aks-ok")
EXT_PUT = "*/managedClusters/aks-ok/providers/Microsoft.KubernetesConfiguration/extensions/*"


def add_succeeded_extension(emulator, cid: str) -> str:
    emulator.admin.put_resources(
        {
            "extensions": [
                {
                    "clusterId": cid,
                    "name": "azure-aks-backup",
                    "extensionType": "microsoft.dataprotection.kubernetes",
                    "provisioningState": "Succeeded",
                }
            ]
        }
    )
    (ext,) = [
        e
        for e in emulator.admin.state(collections=["extensions"])["extensions"]
        if e["id"].lower().startswith(cid.lower() + "/")
    ]
    return str(ext["properties"]["aksAssignedIdentity"]["principalId"])


def test_short_retry_after_is_slept_by_the_sdk_within_the_call(world, emulator):
    emulator.admin.add_fault(
        method="PUT", path=EXT_PUT, status=429, code="TooManyRequests", retryAfterS=0.2, count=2
    )
    started = time.monotonic()
    report = world.runtime.reconciler.reconcile(parse_cluster_id(AKS_OK))
    assert report.actions[-1].status is ActionStatus.DONE, report.outcome
    assert time.monotonic() - started >= 0.4
    statuses = [c["status"] for c in arm_writes(world, path_contains="/extensions/")]
    assert statuses == [429, 429, 201]


def test_long_retry_after_becomes_a_wait_for_that_long_then_converges(world, emulator):
    clock = ManualClock()
    runtime = world.with_pacer(WritePacer(clock=clock, sleep=clock.sleep))
    emulator.admin.add_fault(method="PUT", path=EXT_PUT, status=429, code="TooManyRequests", retryAfterS=37)
    started = time.monotonic()
    report = runtime.reconciler.reconcile(parse_cluster_id(AKS_OK))
    # not slept in-process: well under the 37 s Retry-After (a generous margin for a loaded CI machine)
    assert time.monotonic() - started < 20
    assert report.outcome.kind is OutcomeKind.WAIT and "throttled" in report.outcome.why
    assert report.outcome.retry_after_s == 37.0
    assert (
        report.actions[-1].kind is WriteKind.CREATE_EXTENSION
        and report.actions[-1].status is ActionStatus.FAILED
    )
    assert len(arm_writes(world, path_contains="/extensions/")) == 1
    emulator.admin.clear_faults()
    # the pacer heard the 429: within its Retry-After a reconcile sends nothing and releases the claim
    clock.now += 30
    held = runtime.reconciler.reconcile(parse_cluster_id(AKS_OK))
    assert held.outcome.kind is OutcomeKind.WAIT and held.outcome.why.startswith("pacing"), held.outcome
    assert held.outcome.retry_after_s == pytest.approx(7.1, abs=0.2)  # 37 s + one token at 10/s, 30 s gone
    assert [(a.kind, a.status) for a in held.actions] == [(WriteKind.CREATE_EXTENSION, ActionStatus.DEFERRED)]
    assert len(arm_writes(world, path_contains="/extensions/")) == 1
    # once the Retry-After has passed, the next reconcile installs at once (the claim was released)
    clock.now += 8
    again = runtime.reconciler.reconcile(parse_cluster_id(AKS_OK))
    assert again.outcome.kind is OutcomeKind.WAIT, again.outcome
    assert [(a.kind, a.status) for a in again.actions] == [(WriteKind.CREATE_EXTENSION, ActionStatus.DONE)]
    runtime.close()


def test_a_failed_container_put_keeps_the_claim_of_the_extension_put_sent_beside_it(world, emulator):
    """Issue 17's chaos run: the container PUT (429) and the extension PUT (201) went out together, the
    container's failure released the install claim they shared, and a reconcile whose reads predated the
    extension PUT took the claim and installed a second time. The claim of a write that was sent is kept;
    the container PUT takes none (repeating it changes nothing), so it is sent again at once."""
    clock = ManualClock()
    runtime = world.with_pacer(WritePacer(clock=clock, sleep=clock.sleep))
    emulator.admin.add_fault(
        method="PUT", path="*/containers/*", status=429, code="TooManyRequests", retryAfterS=37
    )
    cluster = parse_cluster_id(AKS_OK)
    first = runtime.reconciler.reconcile(cluster)
    assert [(a.kind, a.status) for a in first.actions] == [
        (WriteKind.CREATE_CONTAINER, ActionStatus.FAILED),
        (WriteKind.CREATE_EXTENSION, ActionStatus.DONE),
    ], first.actions
    holder = runtime.claims.holder_info(cluster, "install")
    assert holder is not None and holder.state == "sent"  # a reconcile with older reads cannot take it
    emulator.admin.clear_faults()
    clock.now += 38  # past the container's Retry-After
    second = runtime.reconciler.reconcile(cluster)
    assert (WriteKind.CREATE_CONTAINER, ActionStatus.DONE) in [(a.kind, a.status) for a in second.actions]
    assert not any(a.status is ActionStatus.CLAIMED_ELSEWHERE for a in second.actions), second.actions
    assert len(arm_writes(world, path_contains="/extensions/")) == 1
    runtime.close()


class ManualClock:
    """A pacer clock that moves only when a test moves it (``sleep`` advances it too)."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def test_409_operation_not_allowed_waits(world, emulator):
    emulator.admin.add_fault(
        method="PUT",
        path=EXT_PUT,
        status=409,
        code="OperationNotAllowed",
        message="Another operation (Updating) is in progress, please wait for it to finish.",
        count=1,
    )
    report = world.runtime.reconciler.reconcile(parse_cluster_id(AKS_OK))
    assert report.outcome.kind is OutcomeKind.WAIT and "OperationNotAllowed" in report.outcome.why
    assert (
        world.runtime.reconciler.reconcile(parse_cluster_id(AKS_OK)).actions[-1].status is ActionStatus.DONE
    )


def test_500s_beyond_sdk_retries_wait_with_backoff(world, emulator):
    emulator.admin.add_fault(
        method="GET", path="*/managedClusters/aks-ok", status=503, code="ServiceUnavailable"
    )
    first = world.runtime.reconciler.reconcile(parse_cluster_id(AKS_OK), attempt=0)
    later = world.runtime.reconciler.reconcile(parse_cluster_id(AKS_OK), attempt=3)
    assert first.outcome.kind is OutcomeKind.WAIT and "transient" in first.outcome.why
    assert later.outcome.retry_after_s > first.outcome.retry_after_s
    assert arm_writes(world) == []


def test_dropped_connections_are_retried_by_the_sdk(world, emulator):
    emulator.admin.add_fault(method="PUT", path=EXT_PUT, action="drop", count=2)
    report = world.runtime.reconciler.reconcile(parse_cluster_id(AKS_OK))
    assert report.outcome.kind is OutcomeKind.WAIT
    assert report.actions[-1].status is ActionStatus.DONE
    assert len(extensions_of(world, AKS_OK)) == 1


def test_dropped_connections_beyond_sdk_retries_wait(world, emulator):
    emulator.admin.add_fault(method="GET", path="*/managedClusters/aks-ok", action="drop")
    report = world.runtime.reconciler.reconcile(parse_cluster_id(AKS_OK))
    assert report.outcome.kind is OutcomeKind.WAIT and "transient" in report.outcome.why


def test_403_gives_up_naming_the_missing_permission(world, emulator):
    add_succeeded_extension(emulator, AKS_OK)
    emulator.admin.add_fault(
        method="PUT",
        path="*/providers/Microsoft.Authorization/roleAssignments/*",
        status=403,
        code="AuthorizationFailed",
        message=(
            "The client 'x' with object id 'y' does not have authorization to perform action "
            f"'Microsoft.Authorization/roleAssignments/write' over scope '{STORAGE_EASTUS}'"
            " or the scope is invalid."
        ),
    )
    report = world.runtime.reconciler.reconcile(parse_cluster_id(AKS_OK))
    assert report.outcome.kind is OutcomeKind.GAVE_UP
    assert "missing permission Microsoft.Authorization/roleAssignments/write" in report.outcome.why


def test_role_assignment_under_another_name_satisfies_the_grant(world, emulator):
    """Issue 17 F2: a grant made under another name (the built-in DINE's, a person's) is seen, so nothing
    is written (it used to be PUT every reconcile, answered 409, and held the claim for its TTL)."""
    principal = add_succeeded_extension(emulator, AKS_OK)
    role = (
        f"/subscriptions/{STORAGE_EASTUS.split('/')[2]}/providers/Microsoft.Authorization/roleDefinitions/"
        "ba92f5b4-2d11-453d-a403-e96b0029c9fe"
    )
    emulator.admin.put_resources(
        {
            "roleAssignments": [
                {
                    "id": f"{STORAGE_EASTUS}/providers/Microsoft.Authorization/roleAssignments/"
                    "0b5f5d1e-0000-4000-8000-000000000001",
                    "type": "Microsoft.Authorization/roleAssignments",
                    "name": "0b5f5d1e-0000-4000-8000-000000000001",
                    "properties": {
                        "roleDefinitionId": role,
                        "principalId": principal,
                        "principalType": "ServicePrincipal",
                        "scope": STORAGE_EASTUS,
                    },
                }
            ]
        }
    )
    report = world.runtime.reconciler.reconcile(parse_cluster_id(AKS_OK))
    assert report.outcome.kind is OutcomeKind.DONE, report.outcome
    assert report.actions == ()
    assert arm_writes(world, path_contains="/roleassignments/") == []
    links = {link["link"]: link["state"] for link in report.links}
    assert links["storage-access-granted"] == "satisfied"


def test_role_assignment_exists_answer_means_present(world, emulator):
    """A 409 RoleAssignmentExists (an equal grant the list did not show yet) counts as present."""
    add_succeeded_extension(emulator, AKS_OK)
    emulator.admin.add_fault(
        method="PUT",
        path="*/providers/Microsoft.Authorization/roleAssignments/*",
        status=409,
        code="RoleAssignmentExists",
        message="The role assignment already exists.",
    )
    report = world.runtime.reconciler.reconcile(parse_cluster_id(AKS_OK))
    assert report.outcome.kind is OutcomeKind.DONE, report.outcome
    (grant,) = report.actions
    assert grant.kind is WriteKind.ASSIGN_ROLE and grant.status is ActionStatus.EXISTS
    assert grant.link == "storage-access-granted"
    assert [c["status"] for c in arm_writes(world, path_contains="/roleassignments/")] == [409]


SELECTED = ["aks-ok", "aks-ok-2", "Prod_AKS_Upper"]
UNSELECTED = ["aks-untagged", "aks-excluded"]


def test_fault_storm_converges_to_one_write_each_and_spares_unselected_clusters(world, emulator):
    faults = [
        {"path": "/subscriptions/*", "status": 500, "code": "InternalServerError", "probability": 0.25},
        {"path": "/subscriptions/*", "action": "drop", "probability": 0.1},
        {"method": "PUT", "path": "*/extensions/*", "status": 429, "retryAfterS": 0.01, "count": 6},
        {"method": "PUT", "path": "*/extensions/*", "status": 409, "code": "OperationNotAllowed", "count": 2},
        {"method": "PUT", "path": "*/containers/*", "status": 503, "code": "ServiceUnavailable", "count": 5},
        {"method": "PUT", "path": "*/roleAssignments/*", "status": 500, "count": 5},
    ]
    for fault in faults:
        emulator.admin.add_fault(**fault)
    ids = {name: cluster_id(name) for name in SELECTED + UNSELECTED}
    final: dict[str, OutcomeKind] = {}
    outcomes_seen: set[str] = set()
    deadline = time.monotonic() + 40
    while len(final) < len(ids) and time.monotonic() < deadline:
        for name, cid in ids.items():
            if name in final:
                continue
            report = world.runtime.reconciler.reconcile(parse_cluster_id(cid))
            outcomes_seen.add(report.outcome.why.split(":")[0])
            if report.outcome.kind is not OutcomeKind.WAIT:
                final[name] = report.outcome.kind
        time.sleep(0.1)
    assert final == {
        **{name: OutcomeKind.DONE for name in SELECTED},
        **{name: OutcomeKind.SKIPPED for name in UNSELECTED},
    }, outcomes_seen
    assert any("transient" in why or "throttled" in why or "conflict" in why for why in outcomes_seen)
    emulator.admin.clear_faults()
    writes = arm_writes(world)
    for name in SELECTED:
        cid = ids[name]
        assert len(extensions_of(world, cid)) == 1
        created = [
            c for c in writes if c["path"].lower().startswith(cid.lower() + "/") and c["status"] == 201
        ]
        assert len(created) == 1, (name, created)
        container = backup_container_name(name, cid)
        assert len([c for c in world.state("containers") if c["id"].lower().endswith("/" + container)]) == 1
    principals = {
        extensions_of(world, ids[n])[0]["properties"]["aksAssignedIdentity"]["principalId"] for n in SELECTED
    }
    grants = [r for r in world.state("role_assignments") if r["properties"]["principalId"] in principals]
    assert len(grants) == len(SELECTED)
    for name in UNSELECTED:
        assert [c for c in writes if "/managedclusters/" + name.lower() in c["path"].lower()] == []


def test_read_timeouts_become_a_wait(world, emulator):
    emulator.admin.add_fault(
        method="GET", path="*/managedClusters/aks-ok", action="delay", delayMs=1500, count=2
    )
    impatient = Runtime.from_env(world.env, client_options=ClientOptions(retry_total=1, read_timeout=0.3))
    try:
        started = time.monotonic()
        report = impatient.reconciler.reconcile(parse_cluster_id(AKS_OK))
    finally:
        impatient.close()
    assert report.outcome.kind is OutcomeKind.WAIT and "transient" in report.outcome.why
    assert "ServiceResponseError" in report.outcome.why or "timed out" in report.outcome.why.lower()
    # the outcome above is the proof that the read timed out; this only guards against a hang
    assert time.monotonic() - started < 20
    assert arm_writes(world) == []
