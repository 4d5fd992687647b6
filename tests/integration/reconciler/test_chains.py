"""One chain of work items per cluster (issue 17 F4 and crash-safe progress), with the real queue and table
clients on Azurite and the real SDK clients on the emulator."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from azure.core.exceptions import ResourceNotFoundError
from azure.storage.queue import QueueClient, TextBase64DecodePolicy

import remediator.adapters.chains as chains_module
from remediator.adapters.chains import ChainedWork, ChainStore
from remediator.core.chains import ChainMark
from remediator.core.ids import ResourceId, parse_cluster_id
from remediator.core.work_item import WorkItem
from remediator.service.ports import HandlerContext
from remediator.service.runtime import build_handler_context
from remediator.service.triggers import events as event_triggers
from remediator.service.triggers import queue as queue_triggers
from tests.fixtures.emulator import TEST_TENANT
from tests.fixtures.events import recent_event_time
from tests.integration.reconciler.conftest import arm_writes, cluster_id

pytestmark = pytest.mark.integration

AKS_OK = cluster_id("aks-ok")
CLUSTER_WRITE = "Microsoft.ContainerService/managedClusters/write"


def write_event(cid: str) -> dict[str, Any]:
    sub = cid.split("/")[2]
    return {
        "id": str(uuid.uuid4()),
        "topic": "/subscriptions/" + sub,
        "subject": cid,
        "eventType": "Microsoft.Resources.ResourceWriteSuccess",
        "eventTime": recent_event_time(),
        "dataVersion": "2",
        "metadataVersion": "1",
        "data": {
            "operationName": CLUSTER_WRITE,
            "resourceUri": cid,
            "resourceProvider": "Microsoft.ContainerService",
            "status": "Succeeded",
            "subscriptionId": sub,
            "tenantId": TEST_TENANT,
        },
    }


@pytest.fixture
def ctx(world: Any) -> Iterator[HandlerContext]:
    context = build_handler_context({**world.env, "REMEDIATOR_MAX_WAIT_SECONDS": "1"})
    yield context
    context.extras["runtime"].close()


def _queue(world: Any) -> QueueClient:
    return QueueClient.from_connection_string(
        world.env["AzureWebJobsStorage"],
        world.env["REMEDIATOR_WORK_QUEUE"],
        message_decode_policy=TextBase64DecodePolicy(),
    )


def drain(world: Any, ctx: HandlerContext, *, quiet_s: float = 4.0, timeout_s: float = 45.0) -> list[str]:
    """Run every work item that becomes visible, as the Functions host would, until none came for
    ``quiet_s``; the statuses, in order."""
    queue = _queue(world)
    statuses: list[str] = []
    deadline = time.monotonic() + timeout_s
    last = time.monotonic()
    while time.monotonic() - last < quiet_s and time.monotonic() < deadline:
        got = list(queue.receive_messages(max_messages=16, visibility_timeout=60))
        for message in got:
            result = queue_triggers.handle_work_item(
                message.content, dequeue_count=int(message.dequeue_count or 1), ctx=ctx
            )
            statuses.append(result.status)
            queue.delete_message(message.id, message.pop_receipt)
        if got:
            last = time.monotonic()
        else:
            time.sleep(0.2)
    return statuses


def test_four_deliveries_of_one_event_give_one_chain(world: Any, emulator: Any, ctx: HandlerContext) -> None:
    """F4: Event Grid delivers the event four times; the three that find the install in flight join its
    chain instead of starting chains of their own, so the cluster's work items end exactly once."""
    emulator.admin.set_config(extensionCreateS=4.0)
    event = write_event(AKS_OK)
    results = [event_triggers.handle_cluster_write_event(event, ctx=ctx) for _ in range(4)]
    assert [r.status for r in results] == ["enqueued"] * 4  # each one waits for the install
    statuses = drain(world, ctx)
    assert statuses.count("done") == 1, statuses  # one chain; before: four chains, four "done"s
    assert "requeued" in statuses
    assert len(arm_writes(world, path_contains="/extensions/")) == 1


def test_a_worker_that_dies_mid_hop_is_replaced_within_the_lease(
    world: Any, ctx: HandlerContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Crash-safe progress: the hop's successor is queued before the reconcile runs; a worker that dies
    stops renewing it, so it surfaces after the lease and the chain goes on; the dead worker's own message,
    redelivered by the host ten minutes later, retires."""
    monkeypatch.setattr(chains_module, "LEASE_S", 2.0)
    chains = ctx.chains
    assert isinstance(chains, ChainedWork)
    cluster = parse_cluster_id(AKS_OK)
    ctx.work.enqueue_work(cluster, attempt=0, source="event", reason="r", correlation_id="c", delay_s=0)
    queue = _queue(world)
    (message,) = list(queue.receive_messages(max_messages=1, visibility_timeout=600))  # the host's lock
    item = WorkItem.from_message(message.content)
    hop = chains.begin(item)
    assert hop is not None
    chains.renewer.untrack(hop)  # the worker died: nothing renews the successor, nothing ends the hop
    time.sleep(2.5)
    (successor,) = list(queue.receive_messages(max_messages=5, visibility_timeout=60))
    follow = WorkItem.from_message(successor.content)
    assert (follow.chain_id, follow.attempt) == (item.chain_id, 1)
    result = queue_triggers.handle_work_item(successor.content, dequeue_count=1, ctx=ctx)
    assert result.status in ("requeued", "done") and result.report is not None
    late = queue_triggers.handle_work_item(message.content, dequeue_count=2, ctx=ctx)
    assert late.status == "retired" and late.report is None


class _RacingStore(ChainStore):
    """A delivery marks its chain between a worker's read of the mark and the worker's write."""

    def __init__(self, table: Any, mark: ChainMark) -> None:
        super().__init__(table)
        self.pending: ChainMark | None = mark

    def write(self, cluster: ResourceId, mark: ChainMark, *, etag: str | None) -> str | None:
        if self.pending is not None:
            racing, self.pending = self.pending, None
            assert super().write(cluster, racing, etag=None) is not None
        return super().write(cluster, mark, etag=etag)


def test_a_worker_that_begins_before_the_delivery_marked_its_chain_still_runs(
    world: Any, ctx: HandlerContext
) -> None:
    """The delivery sends its item, then marks it; a worker that begins the item in between must not retire
    it (that stranded a cluster in the first chaos run)."""
    runtime = ctx.extras["runtime"]
    cluster = parse_cluster_id(AKS_OK)
    item = WorkItem(cluster_id=cluster, source="sweep", chain_id="c0ffee")
    store = _RacingStore(runtime.journal.table, ChainMark("c0ffee", 0, time.time(), False))
    chains = ChainedWork(runtime.work_queue, store)
    hop = chains.begin(item)
    assert hop is not None
    current = store.read(cluster)
    assert current is not None and (current.mark.chain_id, current.mark.attempt) == ("c0ffee", 1)
    assert current.mark.running
    hop.end()
    ended = store.read(cluster)
    assert ended is not None and ended.mark.ended
    # the guard copy of the ended chain retires
    assert chains.begin(WorkItem(cluster_id=cluster, attempt=1, source="sweep", chain_id="c0ffee")) is None


def test_a_hop_that_continues_queues_its_successor_and_a_guard(world: Any, ctx: HandlerContext) -> None:
    """Every scheduled item has a guard copy for a host that dies before the item's hop begins; the copy
    that comes second retires."""
    chains = ctx.chains
    assert isinstance(chains, ChainedWork)
    cluster = parse_cluster_id(AKS_OK)
    hop = chains.begin(WorkItem(cluster_id=cluster, source="sweep", chain_id="feed"))
    assert hop is not None and hop.next(delay_s=0, reason="again")
    first = chains.begin(WorkItem(cluster_id=cluster, attempt=1, source="sweep", chain_id="feed"))
    assert first is not None  # the successor begins the next hop ...
    guard = chains.begin(WorkItem(cluster_id=cluster, attempt=1, source="sweep", chain_id="feed"))
    assert guard is None  # ... and its guard copy retires
    first.end()


def test_a_continued_hop_carries_the_chains_progress_mark(world: Any, ctx: HandlerContext) -> None:
    """REMEDIATOR_MAX_ATTEMPTS counts hops without progress: the successor a hop queues carries the mark
    (``progressAttempt``, ``satisfiedLinks``), so a chained protect run is not given up on the raw count."""
    chains = ctx.chains
    assert isinstance(chains, ChainedWork)
    cluster = parse_cluster_id(AKS_OK)
    queue = _queue(world)
    item = WorkItem(cluster_id=cluster, attempt=4, source="sweep", chain_id="beef", satisfied_links=2)
    hop = chains.begin(item)
    assert hop is not None and hop.next(delay_s=0, reason="again", satisfied_links=3)
    sent = [WorkItem.from_message(m.content) for m in queue.receive_messages(max_messages=32)]
    follow_ups = [s for s in sent if s.chain_id == "beef" and s.attempt == 5]
    assert follow_ups, sent
    assert {(f.progress_attempt, f.satisfied_links) for f in follow_ups} == {(5, 3)}
    assert all(f.attempts_without_progress == 0 for f in follow_ups)


def test_an_item_that_begins_withdraws_its_guard_copy(world: Any, ctx: HandlerContext) -> None:
    """The mark names the guard copy of the item it lets run; the hop that begins the item deletes the guard
    before it surfaces, so a healthy chain costs one invocation per hop (before: every guard surfaced a
    minute later and retired, half the chaos run's worker invocations)."""
    chains = ctx.chains
    assert isinstance(chains, ChainedWork)
    cluster = parse_cluster_id(AKS_OK)
    hop = chains.begin(WorkItem(cluster_id=cluster, source="sweep", chain_id="0dd"))
    assert hop is not None and hop.next(delay_s=0, reason="again")
    marked = chains.store.read(cluster)
    assert marked is not None and marked.mark.guard is not None
    guard_id, guard_receipt = marked.mark.guard
    queue = _queue(world)
    following = chains.begin(WorkItem(cluster_id=cluster, attempt=1, source="sweep", chain_id="0dd"))
    assert following is not None
    assert chains.withdrawn == 1
    with pytest.raises(ResourceNotFoundError):  # gone (were it there, its own receipt would update it)
        queue.update_message(guard_id, pop_receipt=guard_receipt, visibility_timeout=60)
    following.end()


def test_a_guard_whose_item_sits_on_a_dead_host_runs_the_hop(
    world: Any, ctx: HandlerContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Crash cover stays: a host that received the item and died holds it for ten minutes; the guard copy
    surfaces and runs the hop (its own withdrawal misses it: the host's receive changed its pop receipt)."""
    monkeypatch.setattr(chains_module, "GUARD_AFTER_S", 1.0)
    chains = ctx.chains
    assert isinstance(chains, ChainedWork)
    cluster = parse_cluster_id(AKS_OK)
    ctx.work.enqueue_work(cluster, attempt=0, source="event", reason="r", correlation_id="c", delay_s=0)
    queue = _queue(world)
    (held,) = list(queue.receive_messages(max_messages=1, visibility_timeout=600))  # the dead host's lock
    time.sleep(1.5)
    (guard,) = list(queue.receive_messages(max_messages=5, visibility_timeout=60))
    assert WorkItem.from_message(guard.content) == WorkItem.from_message(held.content)
    result = queue_triggers.handle_work_item(guard.content, dequeue_count=1, ctx=ctx)
    assert result.status in ("requeued", "done") and result.report is not None
    late = queue_triggers.handle_work_item(held.content, dequeue_count=2, ctx=ctx)
    assert late.status == "retired"


def test_a_delivery_that_loses_the_mark_withdraws_its_items(world: Any, ctx: HandlerContext) -> None:
    """Two deliveries start chains at once; the one whose mark write loses deletes its item and guard instead
    of leaving them to surface and retire."""
    runtime = ctx.extras["runtime"]
    cluster = parse_cluster_id(AKS_OK)
    store = _RacingStore(runtime.journal.table, ChainMark("c0ffee", 0, time.time() + 30, False))
    chains = ChainedWork(runtime.work_queue, store)
    chains.enqueue_work(cluster, attempt=0, source="event", reason="r", correlation_id="c", delay_s=0)
    assert chains.started == 1 and chains.withdrawn == 2
    assert list(_queue(world).receive_messages(max_messages=16, visibility_timeout=1)) == []
    current = store.read(cluster)
    assert current is not None and current.mark.chain_id == "c0ffee"
