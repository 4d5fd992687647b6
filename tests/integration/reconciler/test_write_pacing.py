"""Worker write pacing against the emulator's ARM write bucket: with a tiny bucket on the emulator and a
matching tiny pacer in the runtime, a burst of installs in one subscription draws no 429 — the installs the
bucket cannot cover come back as ``wait`` outcomes that wrote nothing — and paths that write nothing (dry
run, audit mode, unselected clusters) take no tokens."""

from __future__ import annotations

import time

import pytest

from remediator.core.ids import parse_cluster_id
from remediator.core.outcomes import ActionStatus, OutcomeKind, WriteKind
from remediator.core.pacing import WritePacer
from tests.fixtures.emulator import CLUSTER_ID, TEST_SUB
from tests.integration.reconciler.conftest import LONG_NAME, arm_writes, cluster_id

pytestmark = pytest.mark.integration

BURST = 6
REFILL_PER_S = 0.5
HEADROOM = 2
"""The pacer keeps 2 of the emulator's 6 tokens back, as production keeps 10 of ARM's 200 (our bucket starts
refilling when we take a token, the emulator's when the write arrives)."""

INSTALLS = [
    cluster_id("aks-ok"),
    cluster_id("aks-ok-2"),
    cluster_id("Prod_AKS_Upper"),
    cluster_id(LONG_NAME),
    CLUSTER_ID,
]
"""Five healthy selected clusters in one subscription, storage account in the same subscription: each install
is two writes (container PUT, extension PUT) in TEST_SUB."""


def tiny_pacer() -> WritePacer:
    return WritePacer(capacity=BURST, refill_per_s=REFILL_PER_S, headroom=HEADROOM)


@pytest.fixture
def tiny_bucket(emulator):
    emulator.admin.set_config(
        throttle={"enabled": True, "writes": {"burst": BURST, "perSecond": REFILL_PER_S}}
    )


def test_installs_beyond_the_bucket_wait_instead_of_drawing_429s(world, emulator, tiny_bucket):
    pacer = tiny_pacer()
    runtime = world.with_pacer(pacer)
    reports = [runtime.reconciler.reconcile(parse_cluster_id(cid)) for cid in INSTALLS]

    statuses = [c["status"] for c in world.calls() if c["path"].lower().startswith("/subscriptions/")]
    assert 429 not in statuses
    written, paced = reports[:2], reports[2:]  # 4 usable tokens = two installs of two writes
    for report in written:
        assert [(a.kind, a.status) for a in report.actions] == [
            (WriteKind.CREATE_CONTAINER, ActionStatus.DONE),
            (WriteKind.CREATE_EXTENSION, ActionStatus.DONE),
        ], report
    for report in paced:
        assert report.outcome.kind is OutcomeKind.WAIT, report.outcome
        assert report.outcome.why.startswith("pacing ARM writes"), report.outcome.why
        assert TEST_SUB in report.outcome.why
        # two tokens at 0.5/s from an empty bucket: about 4 s, more than the 1 s slept inside a reconcile
        assert 3.0 < report.outcome.retry_after_s <= 4.0 + 0.5
        assert {a.status for a in report.actions} == {ActionStatus.DEFERRED}
    assert len(arm_writes(world)) == 4
    for cid in INSTALLS[2:]:
        name = cid.rsplit("/", 1)[1].lower()
        assert not arm_writes(world, path_contains=f"/managedclusters/{name}/"), cid
    runtime.close()


def test_a_short_pacing_wait_is_slept_inside_the_reconcile_and_arm_accepts_the_writes(
    world, emulator, tiny_bucket
):
    pacer = tiny_pacer()
    runtime = world.with_pacer(pacer)
    first, second, third = (runtime.reconciler.reconcile(parse_cluster_id(cid)) for cid in INSTALLS[:3])
    assert first.outcome.kind is second.outcome.kind is OutcomeKind.WAIT  # installs started
    assert third.outcome.why.startswith("pacing"), third.outcome
    # come back when the wait left is under the 1 s a reconcile may sleep
    time.sleep(third.outcome.retry_after_s - 0.8)
    started = time.monotonic()
    again = runtime.reconciler.reconcile(parse_cluster_id(INSTALLS[2]))
    assert [(a.kind, a.status) for a in again.actions] == [
        (WriteKind.CREATE_CONTAINER, ActionStatus.DONE),
        (WriteKind.CREATE_EXTENSION, ActionStatus.DONE),
    ], again
    assert time.monotonic() - started >= 0.5  # it did wait for the tokens
    statuses = [c["status"] for c in world.calls() if c["path"].lower().startswith("/subscriptions/")]
    assert 429 not in statuses
    assert len(arm_writes(world)) == 6
    runtime.close()


def test_dry_run_audit_and_unselected_clusters_take_no_tokens(world, emulator, tiny_bucket):
    pacer = tiny_pacer()
    runtime = world.with_pacer(pacer)
    for cid in INSTALLS:
        report = runtime.reconciler.reconcile(parse_cluster_id(cid), dry_run=True)
        assert {a.status for a in report.actions} == {ActionStatus.PLANNED}
    assert (
        runtime.reconciler.reconcile(parse_cluster_id(cluster_id("aks-untagged"))).outcome.kind
        is OutcomeKind.SKIPPED
    )
    audit = world.with_config(pacer=pacer, remediation={"mode": "audit"})
    for cid in INSTALLS:
        report = audit.reconciler.reconcile(parse_cluster_id(cid))
        assert report.outcome.why.startswith("audit mode"), report.outcome
    assert pacer.available(TEST_SUB) == pytest.approx(BURST - HEADROOM)
    assert arm_writes(world) == []
    runtime.close()
    audit.close()


def test_a_429_on_a_write_holds_that_subscription_in_the_pacer(world, emulator):
    pacer = WritePacer()
    runtime = world.with_pacer(pacer)
    emulator.admin.add_fault(
        method="PUT",
        path="*/extensions/*",
        status=429,
        code="SubscriptionRequestsThrottled",  # ARM's own throttling (request-limits-and-throttling)
        retryAfterS=30,
        count=1,
    )
    report = runtime.reconciler.reconcile(parse_cluster_id(INSTALLS[0]))
    assert report.outcome.kind is OutcomeKind.WAIT and "throttled" in report.outcome.why
    # ARM's 30 s Retry-After is now the pacer's: the subscription is held, another one is not
    assert pacer.available(TEST_SUB) <= -30 * 10 + 1
    assert pacer.available("22222222-2222-2222-2222-222222222222") > 0
    held = runtime.reconciler.reconcile(parse_cluster_id(INSTALLS[1]))
    assert held.outcome.why.startswith("pacing"), held.outcome
    assert 25 < held.outcome.retry_after_s <= 30.5
    runtime.close()


def test_a_429_the_sdk_retried_inside_the_call_still_reaches_the_pacer(world, emulator):
    pacer = WritePacer()
    runtime = world.with_pacer(pacer)
    emulator.admin.add_fault(
        method="PUT",
        path="*/extensions/*",
        status=429,
        code="SubscriptionRequestsThrottled",
        retryAfterS=1,
        count=1,
    )
    report = runtime.reconciler.reconcile(parse_cluster_id(INSTALLS[0]))
    assert report.actions[-1].status is ActionStatus.DONE, report  # azure-core slept 1 s and retried
    statuses = [c["status"] for c in arm_writes(world, path_contains="/extensions/")]
    assert statuses == [429, 201]
    # the hidden 429 still told the pacer: it set the bucket to one second of refill in debt (-10), and the
    # second the SDK slept refilled about that much; without the hook it would hold 190 - 2 = 188 tokens
    assert pacer.available(TEST_SUB) < 10
    runtime.close()


def test_a_resource_providers_429s_hold_only_that_resource_types_writes(world, emulator):
    """A 429 that is not ARM's own throttling (a provider's ``TooManyRequests``) makes its reconcile
    wait; when several resources of the type are refused at once, every write of that type is held for the
    Retry-After, and the subscription's other writes are left alone."""
    pacer = WritePacer()
    runtime = world.with_pacer(pacer)
    emulator.admin.add_fault(
        method="PUT", path="*/extensions/*", status=429, code="TooManyRequests", retryAfterS=30, count=3
    )
    for cid in INSTALLS[:3]:
        report = runtime.reconciler.reconcile(parse_cluster_id(cid))
        assert report.outcome.kind is OutcomeKind.WAIT and "throttled" in report.outcome.why
    assert pacer.available(TEST_SUB) > 0  # the subscription's write bucket is not emptied
    extension = {TEST_SUB: ["microsoft.kubernetesconfiguration/extensions"]}
    container = {TEST_SUB: ["microsoft.storage/storageaccounts/blobservices/containers"]}
    held = pacer.try_acquire({TEST_SUB: 1}, max_wait_s=1.0, resource_types=extension)
    assert not held.granted and 25 < held.wait_s <= 30.5
    assert pacer.try_acquire({TEST_SUB: 1}, max_wait_s=1.0, resource_types=container).granted
    runtime.close()
