"""Management-group scopes on the event, queue and HTTP paths: the runtime's Resource Graph resolver (real
azure-mgmt-resourcegraph client against the emulator) decides which subscriptions are in scope.

Estate: ``mg-platform`` > ``mg-prod`` > subscription ``MG_SUB`` (in scope only through the nested group);
``OUT_SUB`` sits under the Tenant Root Group only. The config lists ``mg-platform`` and no subscription.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from azure.storage.queue import QueueClient

from remediator.adapters.management_groups import ManagementGroupResolver
from remediator.core.ids import parse_cluster_id
from remediator.core.outcomes import OutcomeKind
from remediator.service.runtime import Runtime
from remediator.service.triggers import events as event_triggers
from remediator.service.triggers import http as http_triggers
from tests.fixtures.events import recent_event_time
from tests.integration.reconciler.conftest import (
    ESTATE,
    World,
    arm_writes,
    cluster_id,
    extension_state,
    extensions_of,
)

pytestmark = pytest.mark.integration

MG_SUB = "22222222-2222-2222-2222-222222222222"
OUT_SUB = "33333333-3333-3333-3333-333333333333"
MG_CLUSTER = cluster_id("aks-mg", sub=MG_SUB, rg="rg-mg")
OUT_CLUSTER = cluster_id("aks-out", sub=OUT_SUB, rg="rg-out")
ARG_PATH = "/providers/Microsoft.ResourceGraph/resources"

MG_ESTATE: dict[str, Any] = {
    **ESTATE,
    "subscriptions": [
        *ESTATE["subscriptions"],
        {"subscriptionId": MG_SUB, "resourceGroups": [{"name": "rg-mg", "location": "eastus"}]},
        {"subscriptionId": OUT_SUB, "resourceGroups": [{"name": "rg-out", "location": "eastus"}]},
    ],
    "clusters": [
        *ESTATE["clusters"],
        {"id": MG_CLUSTER, "location": "eastus", "tags": {"backup": "yes"}},
        {"id": OUT_CLUSTER, "location": "eastus", "tags": {"backup": "yes"}},
    ],
    "managementGroups": {
        "mg-platform": {"subscriptions": [], "displayName": "Platform"},
        "mg-prod": {"subscriptions": [MG_SUB], "parent": "mg-platform"},
        "mg-sandbox": {"subscriptions": [OUT_SUB]},
    },
}


@pytest.fixture
def mg_runtime(world: World) -> Any:
    world.emulator.reset(MG_ESTATE)
    runtime = world.with_config(scope={"subscriptions": [], "managementGroups": ["mg-platform"]})
    world.emulator.admin.clear_calls()
    yield runtime
    runtime.close()


def _graph_calls(world: World) -> list[dict[str, Any]]:
    return [c for c in world.calls() if c["path"].lower().startswith(ARG_PATH.lower())]


def _queued(world: World) -> int:
    """Work items handed over (each chain's item is queued with a guard copy, ``core.chains``; both count
    as one)."""
    return _messages(world) // 2


def _messages(world: World) -> int:
    queue = QueueClient.from_connection_string(
        world.env["AzureWebJobsStorage"], world.env["REMEDIATOR_WORK_QUEUE"]
    )
    try:
        return int(queue.get_queue_properties().approximate_message_count)
    except Exception:  # the queue was never created: nothing enqueued
        return 0


def _fail_resource_graph(world: World) -> None:
    world.emulator.admin.add_fault(
        method="POST", path=ARG_PATH, status=500, code="InternalServerError", message="ARG is down"
    )


def test_runtime_wires_the_resolver_only_for_management_group_scopes(
    world: World, mg_runtime: Runtime
) -> None:
    assert isinstance(mg_runtime.management_groups_of, ManagementGroupResolver)
    assert mg_runtime.reconciler.management_groups_of is mg_runtime.management_groups_of
    assert mg_runtime.handler_context().management_groups_of is mg_runtime.management_groups_of
    assert world.runtime.management_groups_of is None  # subscription scope: no resolver, no scope query
    world.runtime.reconciler.reconcile(parse_cluster_id(cluster_id("aks-ok")))
    assert world.runtime.reconciler.management_groups_of is None
    # every Resource Graph call was preflight's (policy assignments and ancestry), none a scope lookup
    assert len(_graph_calls(world)) == world.runtime.preflight.graph_queries > 0


def test_cluster_in_a_nested_group_is_reconciled(world: World, mg_runtime: Runtime) -> None:
    report = mg_runtime.reconciler.reconcile(parse_cluster_id(MG_CLUSTER))
    assert report.decision is not None and report.decision["selected"] is True
    assert report.outcome.kind is OutcomeKind.WAIT  # extension install started (long-running)
    assert extensions_of(world, MG_CLUSTER), "extension created"
    assert len(arm_writes(world, path_contains="/extensions/")) == 1
    graph = _graph_calls(world)
    # one scoped query for the one configured group; the others are preflight's (policy assignments)
    assert len(graph) - mg_runtime.preflight.graph_queries == 1
    # later reconciles use the cached membership (and preflight's cached policy data)
    mg_runtime.reconciler.reconcile(parse_cluster_id(MG_CLUSTER))
    assert len(_graph_calls(world)) == len(graph)


def test_cluster_outside_the_group_is_skipped_without_writes(world: World, mg_runtime: Runtime) -> None:
    report = mg_runtime.reconciler.reconcile(parse_cluster_id(OUT_CLUSTER))
    assert report.outcome.kind is OutcomeKind.SKIPPED and report.outcome.why == "out-of-scope"
    assert report.decision is not None and report.decision["reason"] == "out-of-scope"
    assert arm_writes(world) == [] and extensions_of(world, OUT_CLUSTER) == []


def test_resource_graph_failure_waits_and_writes_nothing(world: World, mg_runtime: Runtime) -> None:
    _fail_resource_graph(world)
    report = mg_runtime.reconciler.reconcile(parse_cluster_id(MG_CLUSTER))
    assert report.outcome.kind is OutcomeKind.WAIT
    assert "management group mg-platform" in report.outcome.why
    assert arm_writes(world) == [] and extensions_of(world, MG_CLUSTER) == []
    # the outage ends: once the failure is forgotten (FAILURE_HOLD_S; forced here), a reconcile installs
    world.emulator.admin.clear_faults()
    resolver = mg_runtime.management_groups_of
    assert resolver is not None
    resolver.invalidate()
    assert (
        mg_runtime.reconciler.reconcile(parse_cluster_id(MG_CLUSTER), attempt=1).outcome.kind
        is OutcomeKind.WAIT
    )
    assert extensions_of(world, MG_CLUSTER)


def _remediate(ctx: Any, cid: str) -> http_triggers.HttpResult:
    return http_triggers.handle_http_remediate(json.dumps({"clusterId": cid}).encode(), {}, ctx=ctx)


def test_http_remediate_follows_management_group_membership(world: World, mg_runtime: Runtime) -> None:
    ctx = mg_runtime.handler_context()
    result = _remediate(ctx, MG_CLUSTER)
    assert result.status == 202 and result.body["outcome"]["kind"] == "wait"
    assert extension_state(world, MG_CLUSTER) is not None
    refused = _remediate(ctx, OUT_CLUSTER)
    assert refused.status == 403 and refused.body["error"] == "out-of-scope"
    assert extensions_of(world, OUT_CLUSTER) == []
    # a subscription scope below the group is allowed; one outside it is not
    sub_scope = http_triggers.handle_http_remediate(
        json.dumps({"scope": f"/subscriptions/{MG_SUB}"}).encode(), {"dryRun": "true"}, ctx=ctx
    )
    assert sub_scope.status == 200
    other = http_triggers.handle_http_remediate(
        json.dumps({"scope": f"/subscriptions/{OUT_SUB}"}).encode(), {"dryRun": "true"}, ctx=ctx
    )
    assert other.status == 403


def test_http_answers_503_and_writes_nothing_when_resource_graph_fails(
    world: World, mg_runtime: Runtime
) -> None:
    _fail_resource_graph(world)
    ctx = mg_runtime.handler_context()
    result = _remediate(ctx, MG_CLUSTER)
    assert result.status == 503 and result.body["error"] == "scope-unresolved"
    assert result.body["retryAfterSeconds"] > 0
    explain = http_triggers.handle_http_explain(json.dumps({"clusterId": MG_CLUSTER}).encode(), ctx=ctx)
    assert explain.status == 503
    assert arm_writes(world) == [] and _queued(world) == 0


def _write_event(cid: str) -> dict[str, Any]:
    return {
        "id": "evt-mg-1",
        "topic": f"/subscriptions/{cid.split('/')[2]}",
        "subject": cid,
        "eventType": "Microsoft.Resources.ResourceWriteSuccess",
        "eventTime": recent_event_time(),
        "dataVersion": "2",
        "data": {
            "operationName": "Microsoft.ContainerService/managedClusters/write",
            "resourceUri": cid,
            "status": "Succeeded",
            "correlationId": "c-mg",
        },
    }


def test_cluster_write_event_is_handled_in_seconds(world: World, mg_runtime: Runtime) -> None:
    ctx = mg_runtime.handler_context()
    result = event_triggers.handle_cluster_write_event(_write_event(MG_CLUSTER), ctx=ctx)
    assert result.status == "enqueued" and result.report is not None  # install started; follow-up queued
    assert len(arm_writes(world, path_contains="/extensions/")) == 1
    outside = event_triggers.handle_cluster_write_event(_write_event(OUT_CLUSTER), ctx=ctx)
    assert outside.status == "out-of-scope"
    assert extensions_of(world, OUT_CLUSTER) == [] and _queued(world) == 1


def test_event_during_a_resource_graph_outage_is_handed_to_the_queue(
    world: World, mg_runtime: Runtime
) -> None:
    _fail_resource_graph(world)
    ctx = mg_runtime.handler_context()
    result = event_triggers.handle_cluster_write_event(_write_event(MG_CLUSTER), ctx=ctx)
    assert result.status == "enqueued" and "management-group membership unknown" in result.detail
    assert arm_writes(world) == [] and _queued(world) == 1
