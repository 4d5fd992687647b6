"""Journal, claims and the work queue against Azurite (real azure-data-tables / azure-storage-queue)."""

import base64
import json
import threading

import pytest
from azure.storage.queue import QueueClient

from remediator.adapters.claims import WriteClaims
from remediator.adapters.journal import Journal
from remediator.adapters.work_queue import WorkQueue, poison_queue_name
from remediator.core.ids import parse_cluster_id
from remediator.core.outcomes import Action, ActionStatus, Outcome, ReconcileReport, WriteKind
from remediator.core.settings import Settings
from remediator.core.work_item import WorkItem

pytestmark = pytest.mark.integration

CID = (
    "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rg1"
    "/providers/Microsoft.ContainerService/managedClusters/aks1"
)
CLUSTER = parse_cluster_id(CID)
CLUSTER_2 = parse_cluster_id(CID.replace("aks1", "aks2"))


def claims_store(azurite_env, clock=None):
    journal = Journal.from_settings(settings(azurite_env))
    journal.ensure_table()
    return WriteClaims(journal.table, clock=clock) if clock is not None else WriteClaims(journal.table)


def settings(azurite_env):
    return Settings.from_env({**azurite_env, "REMEDIATOR_TENANT_ID": "t", "REMEDIATOR_CONFIG_JSON": "{}"})


class FakeClock:
    def __init__(self, now=1_800_000_000.0):
        self.now = now

    def __call__(self):
        return self.now


def report(outcome, *actions):
    return ReconcileReport(cluster_id=CID, decision={"selected": True}, outcome=outcome, actions=actions)


def test_journal_records_latest_and_history_newest_first(azurite_env):
    clock = FakeClock()
    journal = Journal.from_settings(settings(azurite_env))
    journal.clock = clock
    assert journal.latest(CID) is None and journal.history(CID) == []
    first = report(
        Outcome.wait(30, "install started"), Action(WriteKind.CREATE_EXTENSION, "/e", ActionStatus.DONE)
    )
    second = report(Outcome.done("ok"), Action(WriteKind.ASSIGN_ROLE, "/r", ActionStatus.DONE))
    journal.record(first)
    clock.now += 1
    journal.record(second)
    assert journal.latest(CID) == second
    # any casing of the id finds the same partition
    assert journal.latest(CID.upper()) == second
    assert journal.history(CID) == [second, first]
    assert journal.history(CID, limit=1) == [second]


def test_reinstalls_are_counted_from_history(azurite_env):
    journal = Journal.from_settings(settings(azurite_env))
    reinstall = Action(WriteKind.REINSTALL_EXTENSION, "/e", ActionStatus.DONE)
    planned = Action(WriteKind.REINSTALL_EXTENSION, "/e", ActionStatus.PLANNED)
    journal.record(report(Outcome.wait(30, "again"), reinstall))
    journal.record(report(Outcome.wait(30, "plan"), planned))
    journal.record(report(Outcome.wait(30, "again"), reinstall))
    assert journal.count_reinstalls(CID) == 2
    assert journal.count_reinstalls(CID.replace("aks1", "aks2")) == 0


def test_claim_is_exclusive_until_released_or_expired(azurite_env):
    clock = FakeClock()
    claims = claims_store(azurite_env, clock)
    claim = claims.try_claim(CLUSTER, "install", ttl_s=60)
    assert claim is not None
    assert claims.holder(CLUSTER, "install") == claim.owner
    assert claims.try_claim(CLUSTER, "install", ttl_s=60) is None
    assert claims.try_claim(CLUSTER, "grant-x", ttl_s=60) is not None  # other actions are independent
    claims.release(claim)
    assert claims.holder(CLUSTER, "install") is None
    again = claims.try_claim(CLUSTER, "install", ttl_s=60)
    assert again is not None
    clock.now += 61  # expired: someone else may take it over, exactly once
    assert claims.holder(CLUSTER, "install") is None
    taken = claims.try_claim(CLUSTER, "install", ttl_s=60)
    assert taken is not None and claims.try_claim(CLUSTER, "install", ttl_s=60) is None
    claims.release(again)  # stale etag: the new holder keeps its claim
    assert claims.try_claim(CLUSTER, "install", ttl_s=60) is None


def test_concurrent_claims_have_exactly_one_winner(azurite_env):
    claims = claims_store(azurite_env)
    results = []
    barrier = threading.Barrier(8)

    def claim():
        barrier.wait()
        results.append(claims.try_claim(CLUSTER, "install", ttl_s=60))

    threads = [threading.Thread(target=claim) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(r is not None for r in results) == 1


def test_work_items_are_base64_json_like_the_functions_host(azurite, azurite_env):
    s = settings(azurite_env)
    queue = WorkQueue.from_settings(s)
    item = WorkItem(cluster_id=CLUSTER, attempt=2, source="event", reason="wait", correlation_id="c-1")
    queue.enqueue(item)
    raw = QueueClient.from_connection_string(azurite.connection_string, s.work_queue)
    (message,) = list(raw.receive_messages(max_messages=5))
    body = json.loads(base64.b64decode(message.content))
    assert body == item.to_json()
    assert set(body) == {"clusterId", "attempt", "source", "reason", "correlationId", "enqueuedAt"}
    assert WorkItem.from_json(body) == item  # the one parser reads what the one serializer wrote


def test_delayed_items_stay_hidden(azurite_env):
    queue = WorkQueue.from_settings(settings(azurite_env))
    queue.enqueue_work(CLUSTER, attempt=1, source="queue", reason="r", correlation_id="c", delay_s=60)
    queue.enqueue(WorkItem(cluster_id=CLUSTER_2))
    visible = [WorkItem.from_message(m.content) for m in queue.queue.receive_messages(max_messages=32)]
    assert [i.cluster_id for i in visible] == [CLUSTER_2]


def test_poison_queue_name_and_bad_items(azurite_env):
    s = settings(azurite_env)
    assert WorkQueue.from_settings(s, poison=True).queue.queue_name == poison_queue_name(s.work_queue)
    assert poison_queue_name("reconcile-work") == "reconcile-work-poison"
    from remediator.core.errors import UserInputError

    with pytest.raises(UserInputError) as err:
        WorkItem.from_message(json.dumps({"clusterId": CID, "attempt": -1}))
    assert err.value.field == "attempt"
    with pytest.raises(UserInputError) as err:
        WorkItem.from_message('{"clusterId": "x", "attempt": 1}')
    assert err.value.field == "clusterId"
