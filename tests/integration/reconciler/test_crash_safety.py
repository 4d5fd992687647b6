"""Crash-safe claims, chains cut between two writes, long-lived blockers that do not cycle, give-ups alerted
once, the poison runbook (issue 17 items 3-5), against the emulator and Azurite."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from typing import Any

import pytest

from remediator.adapters.claims import SETTLE_S
from remediator.adapters.leases import LeaseRenewer
from remediator.core.ids import parse_cluster_id
from remediator.core.naming import cluster_key
from remediator.core.outcomes import ActionStatus, OutcomeKind, WriteKind
from remediator.core.work_item import WorkItem
from remediator.service.ports import HandlerContext
from remediator.service.runtime import build_handler_context
from remediator.service.triggers import events as event_triggers
from remediator.service.triggers import queue as queue_triggers
from tests.integration.reconciler.conftest import arm_writes, cluster_id, extension_state
from tests.integration.reconciler.test_chains import write_event

pytestmark = pytest.mark.integration

AKS_OK = cluster_id("aks-ok")
STOPPED = cluster_id("aks-stopped-b")
NO_IDENTITY = cluster_id("aks-sp-b")


@pytest.fixture
def ctx(world: Any) -> Iterator[HandlerContext]:
    context = build_handler_context(world.env)
    yield context
    context.extras["runtime"].close()


def _history(world: Any, cid: str) -> list[Any]:
    return world.runtime.journal.history(cid)


def test_a_dead_holders_claim_stalls_a_cluster_no_longer_than_its_lease(world: Any) -> None:
    """A process died holding the install claim (it never renews it): the next reconcile sends the write
    whose claim it holds (the container's) and waits for the extension only for what is left of the lease,
    naming the holder; then it takes the claim over, reads the state again (the dead holder may have written
    just before it died) and only then sends the extension, once."""
    claims = world.runtime.claims
    cluster = parse_cluster_id(AKS_OK)
    assert claims.try_claim(cluster, "install", ttl_s=3.0, owner="deadhost/4242/abcdef") is not None
    blocked = world.runtime.reconciler.reconcile(cluster)
    assert blocked.outcome.kind is OutcomeKind.WAIT and blocked.outcome.retry_after_s is not None
    assert blocked.outcome.retry_after_s <= 4.0  # the lease's remainder, not a 300 s TTL
    assert [(a.kind, a.status) for a in blocked.actions] == [  # chain order
        (WriteKind.CREATE_CONTAINER, ActionStatus.DONE),
        (WriteKind.CREATE_EXTENSION, ActionStatus.CLAIMED_ELSEWHERE),
    ]
    assert "deadhost/4242/abcdef" in blocked.actions[1].detail
    assert arm_writes(world, path_contains="/extensions/") == []
    time.sleep(3.2)
    taken = world.runtime.reconciler.reconcile(cluster)
    assert "took over the install claim from deadhost/4242/abcdef" in taken.outcome.why
    assert arm_writes(world, path_contains="/extensions/") == []
    done = world.runtime.reconciler.reconcile(cluster)
    assert [(a.kind, a.status) for a in done.actions] == [(WriteKind.CREATE_EXTENSION, ActionStatus.DONE)]
    assert len(arm_writes(world, path_contains="/extensions/")) == 1


def test_a_held_claim_lives_while_renewed_and_a_sent_one_settles(world: Any) -> None:
    claims = world.runtime.claims
    renewer = LeaseRenewer(every_s=0.3)
    claims.renewer = renewer
    cluster = parse_cluster_id(AKS_OK)
    claim = claims.try_claim(cluster, "install", ttl_s=1.0)
    assert claim is not None
    claims.hold(claim)
    time.sleep(1.8)  # beyond the lease: renewed meanwhile
    assert claims.holder(cluster, "install") == claim.owner and not claim.lost
    claims.settle(claim)
    info = claims.holder_info(cluster, "install")
    assert info is not None and info.state == "sent" and info.expires_at - time.time() > SETTLE_S - 5
    assert renewer.tracked == 0
    claims.release(claim)
    assert claims.holder(cluster, "install") is None


def test_a_chain_cut_between_two_writes_gets_its_next_requirement_from_the_next_delivery(
    world: Any, emulator: Any, wait_until: Any
) -> None:
    """The container PUT fails while the extension PUT sent with it succeeds; the next reconcile creates the
    container (the extension is configured with it) instead of calling the cluster done without it."""
    emulator.admin.add_fault(
        method="PUT", path="*/containers/*", status=500, code="InternalServerError", count=4
    )  # azure-core retries 3 times: the call fails
    cluster = parse_cluster_id(AKS_OK)
    cut = world.runtime.reconciler.reconcile(cluster)
    assert {(a.kind, a.status) for a in cut.actions} == {
        (WriteKind.CREATE_CONTAINER, ActionStatus.FAILED),
        (WriteKind.CREATE_EXTENSION, ActionStatus.DONE),
    }
    wait_until(lambda: extension_state(world, AKS_OK) == "Succeeded")
    nxt = world.runtime.reconciler.reconcile(cluster)
    assert (WriteKind.CREATE_CONTAINER, ActionStatus.DONE) in {(a.kind, a.status) for a in nxt.actions}
    containers = [c["id"].lower() for c in world.state("containers")]
    assert any("azure-aks-backup-aks-ok-" in c for c in containers)


def test_a_stopped_cluster_is_journaled_once_and_not_retried(world: Any, ctx: HandlerContext) -> None:
    """A long-lived blocker: each event reconciles, nothing is handed over to the queue, the journal gets one
    row (repeats only count), and a work item for it ends its chain."""
    results = [event_triggers.handle_cluster_write_event(write_event(STOPPED), ctx=ctx) for _ in range(3)]
    assert [r.status for r in results] == ["reconciled"] * 3
    queue = ctx.extras["runtime"].work_queue
    queue.ensure_queue()
    assert queue.queue.get_queue_properties().approximate_message_count == 0
    assert len(_history(world, STOPPED)) == 1
    latest = world.runtime.journal.table.get_entity(cluster_key(STOPPED), "latest")
    assert latest["Repeats"] == 2
    item = WorkItem(cluster_id=parse_cluster_id(STOPPED), source="sweep")
    result = queue_triggers.handle_work_item(item.to_message(), dequeue_count=1, ctx=ctx)
    assert result.status == "parked"
    assert queue.queue.get_queue_properties().approximate_message_count == 0
    assert len(_history(world, STOPPED)) == 1


def test_a_cluster_a_human_must_fix_raises_its_give_up_alert_once(
    world: Any, emulator: Any, ctx: HandlerContext, caplog: pytest.LogCaptureFixture
) -> None:
    """Repeated deliveries, and a transient ARM error in between (a wait), raise no second alert; the cluster
    being fixed (any other outcome) would arm it again."""
    cluster = parse_cluster_id(NO_IDENTITY)
    with caplog.at_level(logging.INFO, logger="remediator"):
        for _ in range(3):
            event_triggers.handle_cluster_write_event(write_event(NO_IDENTITY), ctx=ctx)
        emulator.admin.add_fault(
            method="GET",
            path="*/managedClusters/aks-sp-b",
            status=429,
            code="TooManyRequests",
            retryAfterS=30,
            count=1,
        )
        assert world.runtime.reconciler.reconcile(cluster).outcome.kind is OutcomeKind.WAIT
        assert world.runtime.reconciler.reconcile(cluster).outcome.kind is OutcomeKind.GAVE_UP
    alerts = [r for r in caplog.records if "gave up" in r.getMessage() or "gave_up" in r.getMessage()]
    assert len(alerts) == 1 and alerts[0].levelno == logging.WARNING
    assert "blockers:no-managed-identity" in alerts[0].getMessage()
    assert [r.outcome.kind for r in _history(world, NO_IDENTITY)] == [OutcomeKind.WAIT, OutcomeKind.GAVE_UP]


def test_the_poison_handler_journals_the_whole_message_before_the_host_deletes_it(
    world: Any, ctx: HandlerContext
) -> None:
    """The runbook: a poison message is consumed by reconcile_poison; the journal keeps what it said."""
    item = WorkItem(
        cluster_id=parse_cluster_id(AKS_OK), attempt=7, source="event", correlation_id="poisoned-1"
    )
    report = queue_triggers.handle_poison_item(item.to_message().encode(), dequeue_count=1, ctx=ctx)
    assert report.outcome.kind is OutcomeKind.GAVE_UP
    latest = world.runtime.journal.latest(AKS_OK)
    assert latest is not None and '"correlationId":"poisoned-1"' in latest.outcome.why
    assert '"attempt":7' in latest.outcome.why


def test_the_storage_account_is_read_once_a_minute_not_once_a_reconcile(world: Any) -> None:
    """Every reconcile in a region reads the same storage account, in the storage subscription whose read
    bucket they all share: a found account is remembered for a minute (a blocked link forgets it, so a fix is
    seen at once: tests/integration/reconciler/test_preflight_blockers.py)."""
    for name in ("aks-ok", "aks-ok-2", "Prod_AKS_Upper"):
        world.runtime.reconciler.reconcile(parse_cluster_id(cluster_id(name)))
    gets = [c for c in world.calls() if c["operation"] == "StorageAccounts_GetProperties"]
    assert len(gets) == 1
