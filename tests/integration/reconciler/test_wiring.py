"""The wiring step (remediator/service/wiring.py) through the real runtime against the emulator: Resource
Graph finds the subscriptions below the managed management group and their system topics; the real
``azure-mgmt-eventgrid`` client creates what is missing, reuses what exists, and the journal keeps the
summary. (The end-to-end proof with an event and a remediated cluster: tests/e2e/test_wiring_e2e.py.)
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from azure.mgmt.eventgrid import EventGridManagementClient
from azure.mgmt.eventgrid.models import IdentityInfo, SystemTopic

from remediator.core.event_wiring import CLUSTER_WRITES, POLICY_STATES
from remediator.core.settings import Settings
from remediator.service.runtime import Runtime
from remediator.service.wiring import EventWiring
from tests.integration.reconciler.conftest import CONFIG, ESTATE, FAST, World, cluster_id

pytestmark = pytest.mark.integration

NEW_SUB = "44444444-4444-4444-4444-444444444444"
OTHER_MG_SUB = "55555555-5555-5555-5555-555555555555"
OUT_SUB = "66666666-6666-6666-6666-666666666666"
SITE = (
    "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rg-aksbr-t"
    "/providers/Microsoft.Web/sites/func-aksbr-t"
)
WIRING = {
    "functionAppId": SITE,
    "resourceGroup": "rg-aksbr-t-events",
    "location": "eastus",
    "resourcesTopic": "evgt-aksbr-t-arm",
    "policyTopic": "evgt-aksbr-t-policy",
}

WIRING_ESTATE: dict[str, Any] = {
    **ESTATE,
    "subscriptions": [
        *ESTATE["subscriptions"],
        {"subscriptionId": NEW_SUB, "resourceGroups": [{"name": "rg-new", "location": "eastus"}]},
        {"subscriptionId": OTHER_MG_SUB, "resourceGroups": [{"name": "rg-team", "location": "eastus"}]},
        {"subscriptionId": OUT_SUB, "resourceGroups": [{"name": "rg-out", "location": "eastus"}]},
    ],
    "managementGroups": {
        "mg-platform": {"subscriptions": [NEW_SUB]},
        "mg-team": {"subscriptions": [OTHER_MG_SUB], "parent": "mg-platform"},
        "mg-sandbox": {"subscriptions": [OUT_SUB]},
    },
}


@pytest.fixture
def wiring_runtime(world: World, tmp_path: Path) -> Iterator[Runtime]:
    world.emulator.reset(WIRING_ESTATE)
    world.emulator.admin.request(
        "PATCH", "/eventgrid/settings", {"functionApps": {SITE: "http://127.0.0.1:9"}}
    )
    config = {**CONFIG, "scope": {"managementGroups": ["mg-platform"]}}
    path = tmp_path / "mg-config.json"
    path.write_text(json.dumps(config), encoding="utf-8")
    env = {k: v for k, v in world.env.items() if k != "REMEDIATOR_CONFIG_JSON"}
    settings = Settings.from_env(
        {**env, "REMEDIATOR_CONFIG_FILE": str(path), "REMEDIATOR_EVENT_WIRING": json.dumps(WIRING)}
    )
    runtime = Runtime(settings, client_options=FAST)
    yield runtime
    runtime.close()


def _eventgrid(world: World, subscription: str) -> Any:
    return EventGridManagementClient(
        world.emulator.credential(), subscription, **world.emulator.client_kwargs()
    )


def _wiring(runtime: Runtime) -> EventWiring:
    wiring = runtime.wiring
    assert isinstance(wiring, EventWiring)
    return wiring


def test_a_subscription_below_the_group_gets_both_topics_and_event_subscriptions(
    world: World, wiring_runtime: Runtime
) -> None:
    summary = _wiring(wiring_runtime).run()
    assert summary.ok, summary.failures
    assert summary.subscriptions == 2  # NEW_SUB and the nested group's OTHER_MG_SUB; OUT_SUB is not in scope
    assert sorted(summary.wired) == [NEW_SUB, OTHER_MG_SUB]
    client = _eventgrid(world, NEW_SUB)
    arm = client.system_topics.get("rg-aksbr-t-events", "evgt-aksbr-t-arm")
    policy = client.system_topics.get("rg-aksbr-t-events", "evgt-aksbr-t-policy")
    assert (arm.topic_type, arm.source) == ("Microsoft.Resources.Subscriptions", f"/subscriptions/{NEW_SUB}")
    assert (policy.topic_type, policy.location) == ("Microsoft.PolicyInsights.PolicyStates", "global")
    assert arm.identity.type == "SystemAssigned"  # as system-topics.bicep: a later deployment can dead-letter
    writes = client.system_topic_event_subscriptions.get(
        "rg-aksbr-t-events", "evgt-aksbr-t-arm", CLUSTER_WRITES.name
    )
    assert writes.destination.endpoint_type == "AzureFunction"
    assert writes.destination.resource_id == f"{SITE}/functions/on_cluster_write"
    assert writes.destination.max_events_per_batch == 1
    assert writes.filter.included_event_types == ["Microsoft.Resources.ResourceWriteSuccess"]
    assert writes.filter.advanced_filters[0].values == ["Microsoft.ContainerService/managedClusters/write"]
    assert (writes.retry_policy.max_delivery_attempts, writes.retry_policy.event_time_to_live_in_minutes) == (
        30,
        1440,
    )
    states = client.system_topic_event_subscriptions.get(
        "rg-aksbr-t-events", "evgt-aksbr-t-policy", POLICY_STATES.name
    )
    assert states.destination.resource_id == f"{SITE}/functions/on_policy_state"
    with pytest.raises(Exception):  # noqa: B017 - nothing outside the managed group is touched
        _eventgrid(world, OUT_SUB).system_topics.get("rg-aksbr-t-events", "evgt-aksbr-t-arm")
    # journaled, and a second run changes nothing (GETs only)
    assert wiring_runtime.journal is not None
    latest = wiring_runtime.journal.latest_wiring()
    assert latest is not None and sorted(latest["wired"]) == [NEW_SUB, OTHER_MG_SUB]
    world.emulator.admin.clear_calls()
    again = _wiring(wiring_runtime).run()
    assert again.ok and again.wired == [] and again.already_wired == 2
    writes_sent = [
        c
        for c in world.emulator.admin.calls()
        if c["method"] in ("PUT", "PATCH", "DELETE") and c["path"].startswith("/subscriptions/")
    ]
    assert writes_sent == []


def test_an_existing_topic_for_the_source_is_reused(world: World, wiring_runtime: Runtime) -> None:
    team = _eventgrid(world, OTHER_MG_SUB)
    team.system_topics.begin_create_or_update(
        "rg-team",
        "team-arm-topic",
        SystemTopic(
            location="global",
            source=f"/subscriptions/{OTHER_MG_SUB}",
            topic_type="Microsoft.Resources.Subscriptions",
            identity=IdentityInfo(type="SystemAssigned"),
        ),
    ).result()
    summary = _wiring(wiring_runtime).run()
    assert summary.ok, summary.failures
    reused = (
        f"/subscriptions/{OTHER_MG_SUB}/resourceGroups/rg-team/providers/Microsoft.EventGrid/systemTopics"
        "/team-arm-topic"
    )
    assert summary.topics_reused == [reused]
    assert (
        team.system_topic_event_subscriptions.get(
            "rg-team", "team-arm-topic", CLUSTER_WRITES.name
        ).topic.lower()
        == reused.lower()
    )
    names = sorted(t.name for t in team.system_topics.list_by_subscription())
    assert names == ["evgt-aksbr-t-policy", "team-arm-topic"]  # no second Resources topic for the source


def test_failures_are_recorded_per_subscription_and_the_rest_is_wired(
    world: World, wiring_runtime: Runtime
) -> None:
    # the strict reading of "one system topic per source": the team's topic blocks our policy topic there
    world.emulator.admin.request("PATCH", "/eventgrid/settings", {"oneSystemTopicPer": "source"})
    _eventgrid(world, OTHER_MG_SUB).system_topics.begin_create_or_update(
        "rg-team",
        "team-arm-topic",
        SystemTopic(
            location="global",
            source=f"/subscriptions/{OTHER_MG_SUB}",
            topic_type="Microsoft.Resources.Subscriptions",
        ),
    ).result()
    summary = _wiring(wiring_runtime).run()
    # every subscription gets one failure: its second (policy) topic, refused for the source it shares
    assert sorted(f["subscription"] for f in summary.failures) == [NEW_SUB, OTHER_MG_SUB]
    for failure in summary.failures:
        assert failure["step"] == "system topic" and failure["eventSubscription"] == POLICY_STATES.name
        assert "Only one system topic is allowed per source" in failure["error"]
    assert summary.wired == []  # both incomplete
    # ... but the fast path (cluster writes) is wired on the team's existing topic
    assert any(
        e.endswith(f"team-arm-topic/eventSubscriptions/{CLUSTER_WRITES.name}")
        for e in summary.event_subscriptions_created
    )
    assert wiring_runtime.journal is not None
    journaled = wiring_runtime.journal.latest_wiring()
    assert journaled is not None and journaled["failures"]


def test_no_setting_or_no_management_group_means_no_step(world: World, wiring_runtime: Runtime) -> None:
    assert world.runtime.wiring is None  # subscription scope (conftest CONFIG)
    assert world.runtime.handler_context().wiring is None
    assert wiring_runtime.handler_context().wiring is wiring_runtime.wiring
    assert cluster_id("aks-ok")  # the estate's clusters are untouched by the step
