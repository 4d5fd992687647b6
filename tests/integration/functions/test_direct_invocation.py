"""Every function in function_app.py, invoked directly with the real ``azure.functions`` trigger types.

These tests pin the glue and the handler rules (budgets, hand-over, ordering, status codes) against a
recording handler context: the service ports are replaced, never the SDKs. The same functions run against the
emulator and Azurite in tests/e2e.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import azure.functions as func
import pytest
from azure.functions import meta
from azure.functions.eventgrid import EventGridEventInConverter
from azure.functions.queue import QueueMessage
from azure.functions.timer import TimerRequest

import function_app
from remediator.adapters.graph import InventoryRow
from remediator.core.config import RemediatorConfig, parse_config
from remediator.core.errors import UserInputError
from remediator.core.ids import ResourceId
from remediator.core.outcomes import Action, ActionStatus, Outcome, ReconcileReport, WriteKind
from remediator.core.report_document import validate
from remediator.core.report_render import MEDIA_TYPES
from remediator.core.report_render.html import CONTENT_SECURITY_POLICY
from remediator.core.settings import Settings
from remediator.service import inline
from remediator.service.inline import InlinePool
from remediator.service.ports import HandlerContext, HealthCheck
from remediator.service.sweep import Sweeper
from remediator.service.triggers.timer import SweepIncompleteError

SUB = "3f2b8c1e-6d4a-4f7b-9c2e-8a1d5e7f0b24"
OTHER_SUB = "9a7e4d21-0c3b-4e8f-a6d5-2b1c9f8e7d60"
CLUSTER = (
    f"/subscriptions/{SUB}/resourceGroups/rg-aks/providers/Microsoft.ContainerService/managedClusters/aks1"
)
FOREIGN = (
    f"/subscriptions/{OTHER_SUB}/resourceGroups/rg/providers/Microsoft.ContainerService/managedClusters/x"
)
STORAGE = (
    f"/subscriptions/{SUB}/resourceGroups/rg-backup/providers/Microsoft.Storage/storageAccounts/stbackup01"
)
CLUSTER_TYPE = "Microsoft.ContainerService/managedClusters"
P3 = "/providers/Microsoft.Authorization/policyDefinitions/bdff5235-9f40-4a32-893f-38a03d5d607c"
ASSIGNMENT = f"/subscriptions/{SUB}/providers/Microsoft.Authorization/policyAssignments/backup-p3"


def recent(*, minutes: float = 1) -> str:
    """An event time ``minutes`` ago, as Event Grid writes it (7 fractional digits): the handlers drop events
    older than REMEDIATOR_EVENT_MAX_AGE_SECONDS (25 h) as replays."""
    return (datetime.now(UTC) - timedelta(minutes=minutes)).strftime("%Y-%m-%dT%H:%M:%S.%f") + "0Z"


def topic_of(resource_id: str) -> str:
    """The system topic of a resource's subscription (``/subscriptions/<guid>``), as Azure sets it."""
    return "/".join(resource_id.split("/")[:3])


# --------------------------------------------------------------------------------------------- doubles


class ScriptedReconciler:
    def __init__(self) -> None:
        self.calls: list[tuple[str, bool, int]] = []
        self.correlations: list[str | None] = []
        self.callers: list[str | None] = []
        self.outcome: Outcome = Outcome.done("extension Succeeded")
        self.delay_s = 0.0
        self.hold: threading.Event | None = None
        """When set, every reconcile blocks until this event is set (a reconcile that outlives its budget)."""
        self.barrier: threading.Barrier | None = None
        """When set, every reconcile waits for the others at this barrier (proves they run concurrently)."""
        self.error: Exception | None = None
        self.took_ahead: list[bool] = []
        """Whether each reconcile took claims and write tokens while reading (events do, queued work not)."""
        self.links: tuple[dict[str, str], ...] = ()
        """The chain's links the next reports carry (their settled count is the chain's progress)."""

    def reconcile(
        self,
        cluster_id: ResourceId,
        *,
        dry_run: bool = False,
        attempt: int = 0,
        correlation_id: str | None = None,
        caller: str | None = None,
        trigger: str = "",
        event_time: datetime | None = None,
        take_ahead: bool = True,
    ) -> ReconcileReport:
        assert isinstance(cluster_id, ResourceId), "the port takes a parsed id"
        self.calls.append((cluster_id.canonical, dry_run, attempt))
        self.took_ahead.append(take_ahead)
        self.correlations.append(correlation_id)
        self.callers.append(caller)
        if self.delay_s:
            time.sleep(self.delay_s)
        if self.hold is not None:
            assert self.hold.wait(timeout=30), "the test never released the held reconcile"
        if self.barrier is not None:
            self.barrier.wait()
        if self.error is not None:
            raise self.error
        status = ActionStatus.PLANNED if dry_run else ActionStatus.DONE
        return ReconcileReport(
            cluster_id=cluster_id.canonical,
            decision={
                "clusterId": cluster_id.canonical,
                "selected": True,
                "reason": "selected",
                "blockers": ["x"],
            },
            outcome=self.outcome,
            actions=(Action(WriteKind.CREATE_EXTENSION, cluster_id.canonical + "/ext", status),),
            dry_run=dry_run,
            attempt=attempt,
            extension_state="Creating",
            correlation_id=correlation_id or "",
            caller=caller,
            links=self.links,
        )


class RecordingQueue:
    def __init__(self) -> None:
        self.items: list[dict[str, Any]] = []
        self.correlations: list[str] = []
        self.timeouts: list[float | None] = []
        self.reasons: list[str] = []
        self.progress: list[tuple[int, int]] = []
        self.fail = False

    def enqueue_work(
        self,
        cluster_id: ResourceId,
        *,
        attempt: int,
        source: str,
        reason: str,
        correlation_id: str,
        delay_s: float,
        timeout_s: float | None = None,
        progress_attempt: int = 0,
        satisfied_links: int = 0,
    ) -> None:
        self.timeouts.append(timeout_s)
        self.progress.append((progress_attempt, satisfied_links))
        if self.fail:
            raise ConnectionError("queue unreachable")
        assert isinstance(cluster_id, ResourceId), "the port takes a parsed id"
        self.items.append(
            {"clusterId": cluster_id.canonical, "attempt": attempt, "source": source, "delay": delay_s}
        )
        self.correlations.append(correlation_id)
        self.reasons.append(reason)


class RecordingOutcomes:
    def __init__(self) -> None:
        self.reports: list[ReconcileReport] = []

    def record(self, report: ReconcileReport) -> None:
        self.reports.append(report)


class MemoryPolicyOrder:
    def __init__(self) -> None:
        self.seen: dict[tuple[str, str], datetime] = {}

    def advance(self, resource_id: str, assignment_id: str, timestamp: datetime) -> bool:
        key = (resource_id, assignment_id)
        if key in self.seen and timestamp < self.seen[key]:
            return False
        self.seen[key] = timestamp
        return True


class FakeSummary:
    def __init__(self, **counts: Any) -> None:
        self.counts = counts

    @property
    def ok(self) -> bool:
        return not self.counts.get("enqueueFailures")

    def to_json(self, *, clusters: bool = False) -> dict[str, Any]:
        listed = {"clusters": [{"id": CLUSTER, "decision": "enqueued"}]} if clusters else {}
        return {"correlationId": "sweep-1", **self.counts, **listed}


class RecordingSweeper:
    def __init__(self, config: RemediatorConfig | None = None) -> None:
        self.config = config
        self.runs: list[bool] = []
        self.listed = False

    def run(self, *, dry_run: bool, list_clusters: bool = False) -> FakeSummary:
        self.runs.append(dry_run)
        self.listed = list_clusters
        return FakeSummary(candidates=3, enqueued=0 if dry_run else 2, wouldEnqueue=2 if dry_run else 0)


class ListedInventory:
    def __init__(self, rows: list[InventoryRow]) -> None:
        self.rows = rows

    def iter_rows(self, plan: Any, *, stats: Any = None) -> Iterator[InventoryRow]:
        assert all("extensionState !~ 'Succeeded'" not in r.query for r in plan.requests)
        return iter(self.rows)

    def policy_summary(self, plan: Any, query: str, *, stats: Any) -> dict[str, int]:
        return {}

    def iter_data(self, request: Any, *, stats: Any = None) -> Iterator[dict[str, Any]]:
        assert "summarize assignments = count() by subscriptionId" in request.query
        return iter([{"subscriptionId": SUB, "assignments": 17}])


def _row(
    name: str,
    *,
    tags: dict[str, str],
    state: str | None,
    sub: str = SUB,
    location: str = "eastus",
    identity: str = "SystemAssigned",
) -> Any:
    cid = f"/subscriptions/{sub}/resourceGroups/rg-aks/providers/{CLUSTER_TYPE}/{name}"
    body = {
        "id": cid,
        "name": name,
        "type": "Microsoft.ContainerService/managedClusters",
        "location": location,
        "tags": tags,
        "identity": {"type": identity},
        "properties": {
            "provisioningState": "Succeeded",
            "powerState": {"code": "Running"},
            "storageProfile": {"diskCSIDriver": {"enabled": True}, "snapshotController": {"enabled": True}},
            "agentPoolProfiles": [
                {"name": "sys", "osType": "Linux", "vmSize": "Standard_D4s_v5", "mode": "System"}
            ],
        },
    }
    return InventoryRow(
        cluster_id=cid, subscription_id=sub, body=body, extension_name=None, extension_state=state
    )


CONFIG = {
    "scope": {"subscriptions": [SUB]},
    "storage": {"eastus": STORAGE},
    "selection": {"include": [{"tag": "aks-backup", "values": ["enabled"]}]},
}


def settings(*, inline_budget_s: float = 2.0) -> Settings:
    return Settings.from_env(
        {
            "REMEDIATOR_TENANT_ID": "00000000-0000-0000-0000-000000000001",
            "REMEDIATOR_CONFIG_JSON": json.dumps(CONFIG),
            "REMEDIATOR_INLINE_BUDGET_SECONDS": str(inline_budget_s),
            "REMEDIATOR_MAX_ATTEMPTS": "3",
            "REMEDIATOR_MAX_WAIT_SECONDS": "120",
        }
    )


@pytest.fixture(autouse=True)
def pool(monkeypatch: pytest.MonkeyPatch) -> Iterator[InlinePool]:
    """A fresh inline pool per test, drained at the end: no test inherits another's running reconciles."""
    fresh = InlinePool(max_workers=4)
    monkeypatch.setattr(inline, "POOL", fresh)
    yield fresh
    fresh.shutdown()


@pytest.fixture
def ctx(monkeypatch: pytest.MonkeyPatch) -> Iterator[HandlerContext]:
    made: list[RecordingSweeper] = []

    def make_sweeper(config: RemediatorConfig) -> RecordingSweeper:
        made.append(RecordingSweeper(config))
        return made[-1]

    context = HandlerContext(
        settings=settings(),
        config=parse_config(CONFIG),
        reconciler=ScriptedReconciler(),
        work=RecordingQueue(),
        outcomes=RecordingOutcomes(),
        policy_order=MemoryPolicyOrder(),
        inventory=ListedInventory(
            [
                _row("a", tags={"aks-backup": "enabled"}, state="Succeeded"),
                _row("b", tags={"aks-backup": "enabled"}, state=None),
                _row("c", tags={"aks-backup": "enabled"}, state="Failed"),
                _row("d", tags={}, state=None),
                _row("f", tags={"aks-backup": "enabled"}, state=None, identity="None"),
                _row("e", tags={"aks-backup": "enabled"}, state="Creating", location="westus2"),
            ]
        ),
        sweeper=RecordingSweeper(),
        make_sweeper=make_sweeper,
        health_checks=(HealthCheck("arm", lambda: None),),
    )
    context.extras["made_sweepers"] = made
    monkeypatch.setattr(function_app, "context", lambda: context)
    yield context
    if isinstance(context.reconciler, ScriptedReconciler) and context.reconciler.hold is not None:
        context.reconciler.hold.set()  # let held reconciles finish so the pool drains


def _calls(ctx: HandlerContext) -> list[tuple[str, bool, int]]:
    reconciler = ctx.reconciler
    assert isinstance(reconciler, ScriptedReconciler)
    return reconciler.calls


def _queued(ctx: HandlerContext) -> list[dict[str, Any]]:
    assert isinstance(ctx.work, RecordingQueue)
    return ctx.work.items


def _recorded(ctx: HandlerContext) -> list[ReconcileReport]:
    assert isinstance(ctx.outcomes, RecordingOutcomes)
    return ctx.outcomes.reports


# --------------------------------------------------------------------------------------------- Event Grid


def write_event(
    *, operation: str = "Microsoft.ContainerService/managedClusters/write", uri: str = CLUSTER
) -> Any:
    """A ResourceWriteSuccess decoded by the library's own converter, exactly as the worker would pass it."""
    raw = {
        "id": "evt-1",
        "topic": topic_of(uri),
        "subject": uri,
        "eventType": "Microsoft.Resources.ResourceWriteSuccess",
        "eventTime": recent(),
        "dataVersion": "2",
        "data": {
            "operationName": operation,
            "resourceUri": uri,
            "status": "Succeeded",
            "correlationId": "c-1",
        },
    }
    return EventGridEventInConverter.decode(meta.Datum(json.dumps(raw), "json"), trigger_metadata=None)


def test_cluster_write_reconciles_inline(ctx: HandlerContext) -> None:
    event = write_event()
    assert isinstance(event, func.EventGridEvent)
    function_app.on_cluster_write(event)
    assert _calls(ctx) == [(CLUSTER, False, 0)]
    assert _queued(ctx) == []
    assert isinstance(ctx.reconciler, ScriptedReconciler)
    assert ctx.reconciler.took_ahead == [True]  # the event path takes them while it reads


def test_the_cause_s_id_is_the_reconcile_s_correlation_id(ctx: HandlerContext) -> None:
    assert isinstance(ctx.reconciler, ScriptedReconciler) and isinstance(ctx.work, RecordingQueue)
    function_app.on_cluster_write(write_event())  # event id evt-1
    function_app.reconcile_worker(message(item()))  # correlationId c
    ctx.reconciler.outcome = Outcome.wait(30, "Creating")
    resp = function_app.remediate(http("POST", "remediate", {"clusterId": CLUSTER}))
    request_id = json.loads(resp.get_body())["correlationId"]
    assert request_id.startswith("http-")
    assert ctx.reconciler.correlations == ["evt-1", "c", request_id]
    assert ctx.work.correlations == [request_id]  # the follow-up carries the request's id


def test_cluster_write_operation_compared_case_insensitively(ctx: HandlerContext) -> None:
    function_app.on_cluster_write(write_event(operation="microsoft.containerservice/MANAGEDCLUSTERS/write"))
    assert len(_calls(ctx)) == 1


def test_agent_pool_and_other_writes_are_ignored(ctx: HandlerContext) -> None:
    function_app.on_cluster_write(
        write_event(
            operation="Microsoft.ContainerService/managedClusters/agentPools/write",
            uri=CLUSTER + "/agentPools/np1",
        )
    )
    function_app.on_cluster_write(
        write_event(operation="Microsoft.Storage/storageAccounts/write", uri=STORAGE)
    )
    assert _calls(ctx) == [] and _queued(ctx) == []
    # journaled as decisions, with the reason
    assert [(r.cluster_id, r.outcome.kind.value, r.correlation_id) for r in _recorded(ctx)] == [
        ("(ignored event)", "skipped", "evt-1"),
        ("(ignored event)", "skipped", "evt-1"),
    ]
    assert all("ignored" in r.outcome.why for r in _recorded(ctx))


def test_a_wait_outcome_becomes_a_delayed_work_item(ctx: HandlerContext) -> None:
    assert isinstance(ctx.reconciler, ScriptedReconciler)
    ctx.reconciler.outcome = Outcome.wait(900, "cluster is Creating")
    function_app.on_cluster_write(write_event())
    assert _queued(ctx) == [{"clusterId": CLUSTER, "attempt": 0, "source": "event", "delay": 120.0}]


def test_an_exhausted_budget_hands_over_to_the_queue(ctx: HandlerContext, pool: InlinePool) -> None:
    assert isinstance(ctx.reconciler, ScriptedReconciler) and isinstance(ctx.work, RecordingQueue)
    ctx.reconciler.hold = threading.Event()  # the reconcile outlives the 2 s budget
    function_app.on_cluster_write(write_event())
    # returned (and handed over) while the reconcile was still running, not after it
    assert not ctx.reconciler.hold.is_set() and pool.busy == 1
    assert [item["clusterId"] for item in _queued(ctx)] == [CLUSTER]
    # the enqueue is sized to what is left of Event Grid's 30 s delivery timeout
    [timeout] = ctx.work.timeouts
    assert timeout is not None and 1.0 <= timeout <= 30 - 3 - 2
    ctx.reconciler.hold.set()
    assert pool.wait_idle(timeout_s=10)


def test_a_full_inline_pool_hands_over_at_once_and_runs_no_backlog(
    ctx: HandlerContext, pool: InlinePool
) -> None:
    assert isinstance(ctx.reconciler, ScriptedReconciler)
    ctx.reconciler.hold = threading.Event()  # every reconcile outlives the 2 s budget
    threads = [
        threading.Thread(target=function_app.on_cluster_write, args=(write_event(),)) for _ in range(8)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    # every invocation returned with its event handed over; at most 4 reconciles run outside them
    assert len(_queued(ctx)) == 8 and len(_calls(ctx)) == 4 and pool.busy == 4
    # the four that found the pool full were handed over at once, not after waiting out their budget
    assert isinstance(ctx.work, RecordingQueue)
    assert sorted("busy" in r for r in ctx.work.reasons) == [False] * 4 + [True] * 4
    ctx.reconciler.hold.set()
    assert pool.wait_idle(timeout_s=10)
    assert len(_calls(ctx)) == 4  # nothing was queued behind the busy workers


def test_raises_only_when_the_hand_over_cannot_be_enqueued(ctx: HandlerContext) -> None:
    assert isinstance(ctx.reconciler, ScriptedReconciler) and isinstance(ctx.work, RecordingQueue)
    ctx.reconciler.outcome = Outcome.wait(10, "Creating")
    ctx.work.fail = True
    with pytest.raises(ConnectionError):
        function_app.on_cluster_write(write_event())
    ctx.reconciler.outcome = Outcome.done("ok")
    function_app.on_cluster_write(write_event())  # a final outcome needs no queue: no raise


def test_an_unexpected_reconcile_error_is_handed_over_not_raised(ctx: HandlerContext) -> None:
    assert isinstance(ctx.reconciler, ScriptedReconciler)
    ctx.reconciler.error = RuntimeError("boom")
    function_app.on_cluster_write(write_event())
    assert len(_queued(ctx)) == 1


@pytest.mark.parametrize(
    "raw",
    [
        {
            "id": "m1",
            "eventType": "Microsoft.Resources.ResourceWriteSuccess",
            "eventTime": "2026-11-22T00:00:00Z",
            "subject": "x",
            "dataVersion": "2",
            "data": {
                "operationName": "Microsoft.ContainerService/managedClusters/write",
                "resourceUri": "not-an-id",
            },
        },
        {
            "id": "m2",
            "eventType": "Microsoft.Resources.ResourceWriteSuccess",
            "eventTime": "2026-11-22T00:00:00Z",
            "subject": CLUSTER,
            "dataVersion": "2",
            "data": "not an object",
        },
        {
            "id": "m3",
            "eventType": "Microsoft.Resources.ResourceWriteSuccess",
            "eventTime": "2026-11-22T00:00:00Z",
            "subject": CLUSTER,
            "dataVersion": "2",
            "data": {"resourceUri": CLUSTER},
        },
    ],
    ids=["bad-resource-uri", "data-not-object", "no-operation"],
)
def test_malformed_events_are_dropped_without_a_write_or_a_retry(
    ctx: HandlerContext, raw: dict[str, Any]
) -> None:
    event = EventGridEventInConverter.decode(meta.Datum(json.dumps(raw), "json"), trigger_metadata=None)
    function_app.on_cluster_write(event)  # returns: Event Grid must not redeliver it forever
    assert _calls(ctx) == [] and _queued(ctx) == []
    [journaled] = _recorded(ctx)  # the drop is journaled with the reason
    assert journaled.cluster_id == "(malformed event)" and journaled.outcome.kind.value == "skipped"
    assert journaled.correlation_id == raw["id"] and "dropped" in journaled.outcome.why


def test_a_journal_outage_does_not_fail_a_dropped_event(ctx: HandlerContext) -> None:
    class Down:
        def record(self, report: ReconcileReport) -> None:
            raise ConnectionError("table storage unreachable")

    ctx.decisions = Down()
    bad = write_event(uri="not-an-id")
    function_app.on_cluster_write(bad)  # best effort: no raise, so no 24 h of redeliveries
    assert _calls(ctx) == [] and _recorded(ctx) == []


def test_cloud_events_schema_is_accepted(ctx: HandlerContext) -> None:
    raw = {
        "specversion": "1.0",
        "id": "ce-1",
        "source": f"/subscriptions/{SUB}",
        "type": "Microsoft.Resources.ResourceWriteSuccess",
        "time": recent(),
        "subject": CLUSTER,
        "data": {"operationName": "Microsoft.ContainerService/managedClusters/write", "resourceUri": CLUSTER},
    }
    event = EventGridEventInConverter.decode(meta.Datum(json.dumps(raw), "json"), trigger_metadata=None)
    assert isinstance(event, func.CloudEvent)
    function_app.on_cluster_write(event)
    assert _calls(ctx) == [(CLUSTER, False, 0)]


def test_out_of_scope_cluster_is_left_alone(ctx: HandlerContext) -> None:
    # the subscription holds a listed resource group, so its events are wanted; this cluster is not in it
    group = f"/subscriptions/{SUB}/resourceGroups/rg-x"
    ctx.config = parse_config({**CONFIG, "scope": {"resourceGroups": [group]}})
    function_app.on_cluster_write(write_event())
    assert _calls(ctx) == []
    [journaled] = _recorded(ctx)  # under the cluster's own id
    assert journaled.cluster_id == CLUSTER and "outside the configured scope" in journaled.outcome.why


def test_an_event_from_a_subscription_outside_the_scope_is_dropped(ctx: HandlerContext) -> None:
    """Provenance (issue 15, item 4): the topic's subscription must be one the scope can contain."""
    function_app.on_cluster_write(write_event(uri=FOREIGN))
    assert _calls(ctx) == [] and _queued(ctx) == []
    [journaled] = _recorded(ctx)
    assert journaled.cluster_id == "(malformed event)" and FOREIGN in journaled.outcome.why
    assert f"subscription {OTHER_SUB} is not in the configured scope" in journaled.outcome.why


def policy_event(
    *, state: str = "NonCompliant", timestamp: str, subject: str = CLUSTER, definition: str = P3
) -> Any:
    return func.EventGridEvent(
        id=f"p-{timestamp}",
        topic=topic_of(subject),
        subject=subject,
        event_type="Microsoft.PolicyInsights.PolicyStateChanged",
        event_time=datetime.now(UTC) - timedelta(minutes=1),
        data_version="1",
        data={
            "timestamp": timestamp,
            "policyAssignmentId": ASSIGNMENT,
            "policyDefinitionId": definition,
            "policyDefinitionReferenceId": "",
            "complianceState": state,
            "subscriptionId": topic_of(subject).rsplit("/", 1)[-1],
            "complianceReasonCode": "",
        },
    )


def test_policy_noncompliant_reconciles(ctx: HandlerContext) -> None:
    function_app.on_policy_state(policy_event(timestamp="2026-11-22T03:00:00Z"))
    assert _calls(ctx) == [(CLUSTER, False, 0)]


def test_policy_states_apply_in_timestamp_order(ctx: HandlerContext) -> None:
    function_app.on_policy_state(policy_event(state="Compliant", timestamp="2026-11-22T03:00:00Z"))
    function_app.on_policy_state(policy_event(timestamp="2026-11-22T02:59:59Z"))  # older, arrives later
    assert _calls(ctx) == []
    compliant, stale = _recorded(ctx)
    assert compliant.cluster_id == "(ignored event)" and CLUSTER in compliant.outcome.why
    assert stale.cluster_id == "(stale policy event)" and "older than" in stale.outcome.why
    assert stale.correlation_id == "p-2026-11-22T02:59:59Z"
    function_app.on_policy_state(policy_event(timestamp="2026-11-22T03:00:01Z"))
    assert len(_calls(ctx)) == 1


def test_policy_events_for_other_resources_or_policies_are_ignored(ctx: HandlerContext) -> None:
    function_app.on_policy_state(policy_event(timestamp="2026-11-22T03:00:00Z", subject=STORAGE))
    other = "/providers/Microsoft.Authorization/policyDefinitions/11111111-2222-3333-4444-555555555555"
    function_app.on_policy_state(policy_event(timestamp="2026-11-22T03:00:00Z", definition=other))
    function_app.on_policy_state(policy_event(timestamp="2026-11-22T03:00:00Z", subject=FOREIGN))
    assert _calls(ctx) == []


# --------------------------------------------------------------------------------------------- queues


def message(body: Any, *, dequeue_count: int = 1) -> QueueMessage:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return QueueMessage(id="m", body=raw, dequeue_count=dequeue_count, pop_receipt="pr")


def item(attempt: int = 0) -> dict[str, Any]:
    return {"clusterId": CLUSTER, "attempt": attempt, "source": "event", "reason": "r", "correlationId": "c"}


def test_worker_reconciles_a_work_item(ctx: HandlerContext) -> None:
    function_app.reconcile_worker(message(item()))
    assert _calls(ctx) == [(CLUSTER, False, 0)] and _queued(ctx) == []


def test_worker_requeues_a_wait_with_the_next_attempt(ctx: HandlerContext) -> None:
    assert isinstance(ctx.reconciler, ScriptedReconciler)
    ctx.reconciler.outcome = Outcome.wait(15, "extension Creating")
    function_app.reconcile_worker(message(item(attempt=1)))
    assert _calls(ctx) == [(CLUSTER, False, 1)]
    assert _queued(ctx) == [{"clusterId": CLUSTER, "attempt": 2, "source": "event", "delay": 15.0}]
    assert _recorded(ctx) == []
    assert ctx.reconciler.took_ahead == [False]  # queued work takes claims and tokens when it writes


def test_worker_journals_the_give_up_at_the_bound(ctx: HandlerContext) -> None:
    assert isinstance(ctx.reconciler, ScriptedReconciler)
    ctx.reconciler.outcome = Outcome.wait(15, "extension Creating")
    function_app.reconcile_worker(message(item(attempt=2)))  # max attempts 3
    assert _queued(ctx) == []
    [report] = _recorded(ctx)
    assert report.outcome.kind.value == "gave_up" and "3 attempts" in report.outcome.why
    assert report.cluster_id == CLUSTER


def _links(settled: int, waiting: int = 1) -> tuple[dict[str, str], ...]:
    return tuple({"link": f"s{i}", "state": "satisfied"} for i in range(settled)) + tuple(
        {"link": f"w{i}", "state": "waiting"} for i in range(waiting)
    )


def test_worker_counts_the_bound_in_hops_without_progress(ctx: HandlerContext) -> None:
    """REMEDIATOR_MAX_ATTEMPTS (3 here) bounds hops without progress: a wait that settled a new link starts
    the count again; a chain stuck on one link gives up at the bound."""
    assert isinstance(ctx.reconciler, ScriptedReconciler) and isinstance(ctx.work, RecordingQueue)
    ctx.reconciler.outcome = Outcome.wait(15, "validating")
    ctx.reconciler.links = _links(5)
    progressed = {**item(attempt=2), "progressAttempt": 1, "satisfiedLinks": 4}
    function_app.reconcile_worker(message(progressed))  # the old rule gave up here (attempt 3 of 3)
    assert _queued(ctx) == [{"clusterId": CLUSTER, "attempt": 3, "source": "event", "delay": 15.0}]
    assert ctx.work.progress == [(3, 5)] and _recorded(ctx) == []
    stalled = {**item(attempt=4), "progressAttempt": 3, "satisfiedLinks": 5}
    function_app.reconcile_worker(message(stalled))  # 5 - 3 = 2 hops without progress: requeued
    assert ctx.work.progress == [(3, 5), (3, 5)] and _recorded(ctx) == []
    function_app.reconcile_worker(message({**stalled, "attempt": 5}))  # 6 - 3 = 3: the bound
    [report] = _recorded(ctx)
    assert report.outcome.kind.value == "gave_up"
    assert "3 attempts without progress (6 in all)" in report.outcome.why
    assert len(_queued(ctx)) == 2


def test_worker_raises_on_a_malformed_item_so_the_host_retries_then_poisons(ctx: HandlerContext) -> None:
    with pytest.raises(UserInputError) as err:
        function_app.reconcile_worker(message({"clusterId": "nope"}))
    assert err.value.field == "clusterId"
    assert _calls(ctx) == []


def test_poison_items_are_journaled_as_gave_up(ctx: HandlerContext) -> None:
    function_app.reconcile_poison(message(item(attempt=4), dequeue_count=1))
    function_app.reconcile_poison(message(b"\x00not json"))
    first, second = _recorded(ctx)
    assert first.cluster_id == CLUSTER and first.outcome.kind.value == "gave_up"
    assert "poison" in first.outcome.why and first.attempt == 4
    assert second.cluster_id == "(unreadable work item)" and "malformed" in second.outcome.why


# --------------------------------------------------------------------------------------------- timer


def test_sweep_timer_runs_the_sweeper(ctx: HandlerContext) -> None:
    function_app.sweep(TimerRequest(past_due=True))
    assert isinstance(ctx.sweeper, RecordingSweeper) and ctx.sweeper.runs == [False]


class SweepInventory(ListedInventory):
    """The same rows, for the sweep's own (needs-work) plan."""

    def iter_rows(self, plan: Any, *, stats: Any = None) -> Iterator[InventoryRow]:
        return iter(self.rows)


class RecordingSweepRecorder:
    def __init__(self) -> None:
        self.summaries: list[dict[str, Any]] = []

    def record_sweep(self, summary: Any) -> None:
        self.summaries.append(dict(summary))


def real_sweeper(ctx: HandlerContext, config: RemediatorConfig, *recorders: Any) -> Sweeper:
    """The product's Sweeper over the listed rows and the recording (possibly failing) queue."""
    assert isinstance(ctx.inventory, ListedInventory)
    return Sweeper(
        config=config, inventory=SweepInventory(ctx.inventory.rows), work=ctx.work, recorders=recorders
    )


def test_sweep_timer_fails_after_recording_when_work_items_could_not_be_enqueued(
    ctx: HandlerContext,
) -> None:
    assert isinstance(ctx.work, RecordingQueue)
    recorder = RecordingSweepRecorder()
    ctx.sweeper = real_sweeper(ctx, ctx.config, recorder)
    ctx.work.fail = True
    with pytest.raises(SweepIncompleteError, match="3 work items could not be enqueued"):
        function_app.sweep(TimerRequest(past_due=False))
    [summary] = recorder.summaries  # recorded before the invocation failed
    assert summary["enqueueFailures"] == 3 and summary["enqueued"] == 0
    ctx.work.fail = False
    function_app.sweep(TimerRequest(past_due=False))  # every enqueue worked: no raise
    assert recorder.summaries[-1]["enqueued"] == 3 and len(_queued(ctx)) == 3


# --------------------------------------------------------------------------------------------- HTTP


KEY = "a-function-key-the-host-checked"
"""Sent as x-functions-key by the operator requests below (in Azure the host checks it before the handler)."""


def http(
    method: str, route: str, body: Any = None, *, headers: dict[str, str] | None = None, **params: str
) -> func.HttpRequest:
    raw = body if isinstance(body, bytes) else (b"" if body is None else json.dumps(body).encode())
    return func.HttpRequest(
        method=method, url=f"http://localhost/api/{route}", params=params, body=raw, headers=headers or {}
    )


def keyed(method: str, route: str, body: Any = None, **params: str) -> func.HttpRequest:
    """A request carrying a function key (the caller is then function-key:<fingerprint>, an operator)."""
    return http(method, route, body, headers={"x-functions-key": KEY}, **params)


def test_remediate_a_cluster_inline(ctx: HandlerContext) -> None:
    resp = function_app.remediate(http("POST", "remediate", {"clusterId": CLUSTER}))
    assert resp.status_code == 200 and resp.mimetype == "application/json"
    body = json.loads(resp.get_body())
    assert body["clusterId"] == CLUSTER and body["outcome"]["kind"] == "done" and body["dryRun"] is False
    assert _calls(ctx) == [(CLUSTER, False, 0)]


def test_remediate_dry_run(ctx: HandlerContext) -> None:
    resp = function_app.remediate(http("POST", "remediate", {"clusterId": CLUSTER}, dryRun="true"))
    assert resp.status_code == 200 and json.loads(resp.get_body())["actions"][0]["status"] == "planned"
    assert _calls(ctx) == [(CLUSTER, True, 0)]


def test_remediate_a_waiting_cluster_enqueues_a_follow_up(ctx: HandlerContext) -> None:
    assert isinstance(ctx.reconciler, ScriptedReconciler)
    ctx.reconciler.outcome = Outcome.wait(30, "Creating")
    resp = function_app.remediate(http("POST", "remediate", {"clusterId": CLUSTER}))
    assert resp.status_code == 202 and json.loads(resp.get_body())["followUp"]["enqueued"] is True
    assert [i["source"] for i in _queued(ctx)] == ["http"]


def test_remediate_a_cluster_is_bounded_by_the_inline_budget(ctx: HandlerContext, pool: InlinePool) -> None:
    assert isinstance(ctx.reconciler, ScriptedReconciler) and isinstance(ctx.work, RecordingQueue)
    ctx.reconciler.hold = threading.Event()  # the reconcile outlives the 2 s budget
    resp = function_app.remediate(http("POST", "remediate", {"clusterId": CLUSTER}))
    body = json.loads(resp.get_body())
    # answered (and handed over) while the reconcile was still running, not after it
    assert not ctx.reconciler.hold.is_set() and pool.busy == 1
    assert resp.status_code == 202 and body["followUp"]["enqueued"] is True
    assert [(i["clusterId"], i["source"]) for i in _queued(ctx)] == [(CLUSTER, "http")]
    assert ctx.work.correlations == [body["correlationId"]]
    dry = function_app.remediate(http("POST", "remediate", {"clusterId": CLUSTER}, dryRun="true"))
    assert dry.status_code == 503 and json.loads(dry.get_body())["retryAfterSeconds"] > 0
    assert len(_queued(ctx)) == 1  # a dry run is never handed over (it must not write)
    ctx.reconciler.hold.set()
    assert pool.wait_idle(timeout_s=10)


@pytest.mark.parametrize(
    ("body", "params", "field"),
    [
        (b"{not json", {}, "body"),
        ([1, 2], {}, "body"),
        ({}, {}, "clusterId"),
        ({"clusterId": "aks1"}, {}, "clusterId"),
        ({"clusterId": CLUSTER, "scope": f"/subscriptions/{SUB}"}, {}, "clusterId"),
        ({"clusterId": CLUSTER}, {"dryRun": "maybe"}, "dryRun"),
        ({"scope": "/subscriptions/not-a-guid"}, {}, "scope"),
        ({"scope": CLUSTER}, {}, "scope"),
    ],
)
def test_remediate_rejects_bad_input_naming_the_field(
    ctx: HandlerContext, body: Any, params: dict[str, str], field: str
) -> None:
    resp = function_app.remediate(http("POST", "remediate", body, **params))
    assert resp.status_code == 400
    assert json.loads(resp.get_body())["field"] == field
    assert _calls(ctx) == [] and _queued(ctx) == []


@pytest.mark.parametrize(
    "body",
    [
        {"clusterId": FOREIGN},
        {"scope": f"/subscriptions/{OTHER_SUB}"},
        {"scope": f"/subscriptions/{OTHER_SUB}/resourceGroups/rg"},
    ],
)
def test_out_of_scope_requests_are_forbidden_without_a_write(
    ctx: HandlerContext, body: dict[str, str]
) -> None:
    resp = function_app.remediate(http("POST", "remediate", body))
    assert resp.status_code == 403
    payload = json.loads(resp.get_body())
    assert payload["error"] == "out-of-scope" and OTHER_SUB in payload["message"]
    assert _calls(ctx) == [] and _queued(ctx) == [] and ctx.extras["made_sweepers"] == []
    [journaled] = _recorded(ctx)  # the refusal is journaled under the id the request named
    assert journaled.cluster_id == next(iter(body.values())) and "403" in journaled.outcome.why
    assert journaled.correlation_id == payload["correlationId"]


def test_remediate_a_scope_sweeps_it_narrowed(ctx: HandlerContext) -> None:
    group = f"/subscriptions/{SUB}/resourceGroups/rg-aks"
    resp = function_app.remediate(http("POST", "remediate", {"scope": group}))
    assert resp.status_code == 202
    body = json.loads(resp.get_body())
    assert body["scope"] == group and body["enqueued"] == 2 and body["candidates"] == 3
    [sweeper] = ctx.extras["made_sweepers"]
    assert [str(g) for g in sweeper.config.scope.resource_groups] == [group]
    assert sweeper.config.scope.subscriptions == () and sweeper.runs == [False]
    assert sweeper.listed and body["clusters"] == [{"id": CLUSTER, "decision": "enqueued"}]  # every one named
    dry = function_app.remediate(http("POST", "remediate", {"scope": f"/subscriptions/{SUB}"}, dryRun="true"))
    assert dry.status_code == 200 and json.loads(dry.get_body())["wouldEnqueue"] == 2


def test_remediate_a_scope_answers_503_when_nothing_could_be_enqueued(ctx: HandlerContext) -> None:
    assert isinstance(ctx.work, RecordingQueue)
    ctx.make_sweeper = lambda config: real_sweeper(ctx, config)
    ctx.work.fail = True
    resp = function_app.remediate(http("POST", "remediate", {"scope": f"/subscriptions/{SUB}"}))
    body = json.loads(resp.get_body())
    assert resp.status_code == 503, body
    assert body["enqueueFailures"] == 3 and body["enqueued"] == 0 and body["error"] == "enqueue-failed"
    assert body["retryAfterSeconds"] > 0
    ctx.work.fail = False
    resp = function_app.remediate(http("POST", "remediate", {"scope": f"/subscriptions/{SUB}"}))
    body = json.loads(resp.get_body())
    assert resp.status_code == 202 and body["enqueued"] == 3 and body["enqueueFailures"] == 0


def test_explain(ctx: HandlerContext) -> None:
    resp = function_app.explain(http("POST", "explain", {"clusterId": CLUSTER}))
    assert resp.status_code == 200
    body = json.loads(resp.get_body())
    assert body["decision"]["selected"] is True and body["blockers"] == ["x"]
    assert body["extensionState"] == "Creating" and body["wouldDo"][0]["status"] == "planned"
    assert _calls(ctx) == [(CLUSTER, True, 0)]
    assert function_app.explain(http("POST", "explain", {"clusterId": FOREIGN})).status_code == 403
    assert function_app.explain(http("POST", "explain", {"cluster": CLUSTER})).status_code == 400


def test_report_names_every_cluster_in_one_state(ctx: HandlerContext) -> None:
    """Replaces the per-region counts test: the same six clusters, now each named in one state. The cluster
    whose extension is Succeeded has no grant in this inventory, so it is extension-ready but not protected
    (issue 17 F3); the Failed one is not started (the journal holds no give-up for it)."""
    resp = function_app.report(http("GET", "report"))
    assert resp.status_code == 200 and resp.mimetype == "application/json"
    body = json.loads(resp.get_body())
    validate(body)
    states = {c["name"]: c["state"] for c in body["clusters"]}
    assert states == {
        "a": "notStarted",
        "b": "notStarted",
        "c": "notStarted",
        "d": "notSelected",
        "e": "notSelected",  # westus2 has no storage account
        "f": "blocked",
    }
    totals = body["totals"]
    assert (totals["clusters"], totals["selected"], totals["extensionReady"], totals["protected"]) == (
        6,
        4,
        1,
        0,
    )
    assert [(g["key"], g["total"]) for g in body["groups"]["byRegion"]] == [("eastus", 5), ("westus2", 1)]
    assert body["config"]["source"] == "(in memory)" and len(body["config"]["sha256"]) == 64
    [headroom] = body["roleAssignmentHeadroom"]
    assert (headroom["existing"], headroom["needed"], headroom["limit"]) == (17, 3, 4000)


@pytest.mark.parametrize("fmt", ["table", "csv", "html"])
def test_report_formats(ctx: HandlerContext, fmt: str) -> None:
    resp = function_app.report(http("GET", "report", format=fmt))
    assert resp.status_code == 200
    assert resp.headers["Content-Type"] == MEDIA_TYPES[fmt]  # exactly, parameters included
    text = resp.get_body().decode("utf-8")
    assert "f" in text and ("no-managed-identity" in text)
    if fmt == "html":
        assert resp.headers["Content-Security-Policy"] == CONTENT_SECURITY_POLICY
        assert "default-src 'none'" in resp.headers["Content-Security-Policy"]
    else:
        assert "Content-Security-Policy" not in resp.headers


def test_report_refuses_an_unknown_format_naming_the_field(ctx: HandlerContext) -> None:
    resp = function_app.report(http("GET", "report", format="pdf"))
    assert resp.status_code == 400
    body = json.loads(resp.get_body())
    assert body["field"] == "format" and "pdf" in body["message"]


def test_health(ctx: HandlerContext) -> None:
    resp = function_app.health(http("GET", "health"))
    assert resp.status_code == 200 and json.loads(resp.get_body())["status"] == "healthy"

    def down() -> None:
        raise ConnectionError("queue unreachable")

    ctx.health_checks = (*ctx.health_checks, HealthCheck("queue", down))
    resp = function_app.health(keyed("GET", "health"))  # an operator sees the probe's error
    body = json.loads(resp.get_body())
    assert resp.status_code == 503 and body["dependencies"][1] == {
        "name": "queue",
        "ok": False,
        "error": "ConnectionError: queue unreachable",
    }
    # anyone else sees the verdict, not the exception text (issue 15, item 7)
    resp = function_app.health(http("GET", "health"))
    body = json.loads(resp.get_body())
    assert resp.status_code == 503 and body["dependencies"][1] == {"name": "queue", "ok": False}
    assert "unreachable" not in resp.get_body().decode()


def test_invalid_settings_answer_503_naming_the_setting_to_an_operator_only(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def broken() -> HandlerContext:
        raise UserInputError(
            "no such file", field="REMEDIATOR_CONFIG_FILE", source="/home/site/secret/config.yaml"
        )

    monkeypatch.setattr(function_app, "context", broken)
    for resp in (
        function_app.health(keyed("GET", "health")),
        function_app.remediate(keyed("POST", "remediate", {"clusterId": CLUSTER})),
    ):
        assert resp.status_code == 503
        assert json.loads(resp.get_body())["field"] == "REMEDIATOR_CONFIG_FILE"
    for resp in (
        function_app.health(http("GET", "health")),
        function_app.remediate(http("POST", "remediate", {"clusterId": CLUSTER})),
    ):
        assert resp.status_code == 503
        text = resp.get_body().decode()
        assert "REMEDIATOR_CONFIG_FILE" not in text and "secret" not in text, text
    for request in (
        keyed("POST", "remediate", {"clusterId": CLUSTER}),
        http("POST", "remediate", {"clusterId": CLUSTER}),
    ):
        body = json.loads(function_app.remediate(request).get_body())
        assert body["error"] == "configuration"  # not the error's own "invalid-input": the request was fine


def test_the_inline_pool_does_not_block_concurrent_events(ctx: HandlerContext) -> None:
    assert isinstance(ctx.reconciler, ScriptedReconciler)
    ctx.settings = settings(inline_budget_s=20)
    # Each reconcile waits at a barrier for the other two: it is passed only if all three run at once
    # (serialised, the first would wait out the barrier's timeout, fail, and be handed over).
    ctx.reconciler.barrier = threading.Barrier(3, timeout=15)
    threads = [
        threading.Thread(target=function_app.on_cluster_write, args=(write_event(),)) for _ in range(3)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(_calls(ctx)) == 3 and _queued(ctx) == []


def test_management_group_scope_without_a_resolver_is_left_to_the_sweep(ctx: HandlerContext) -> None:
    ctx.config = parse_config(
        {**CONFIG, "scope": {"managementGroups": ["mg-platform"], "subscriptions": [SUB]}}
    )
    function_app.on_cluster_write(write_event(uri=FOREIGN))  # not in a listed subscription: ancestry unknown
    assert _calls(ctx) == [] and _queued(ctx) == []
    resp = function_app.remediate(http("POST", "remediate", {"clusterId": FOREIGN}))
    assert resp.status_code == 403 and "management-group" in json.loads(resp.get_body())["message"]
    function_app.on_cluster_write(write_event())  # in a listed subscription: decided without the ancestry
    assert _calls(ctx) == [(CLUSTER, False, 0)]


def test_management_group_scope_with_a_resolver(ctx: HandlerContext) -> None:
    ctx.config = parse_config({**CONFIG, "scope": {"managementGroups": ["mg-platform"]}})
    ctx.management_groups_of = lambda sub: ["mg-platform"] if sub == OTHER_SUB else ["mg-sandbox"]
    function_app.on_cluster_write(write_event(uri=FOREIGN))
    function_app.on_cluster_write(write_event())
    assert _calls(ctx) == [(FOREIGN, False, 0)]
    assert function_app.remediate(http("POST", "remediate", {"clusterId": CLUSTER})).status_code == 403
