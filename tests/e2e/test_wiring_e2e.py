"""Wiring that follows the scope, end to end: a subscription joins the managed management group while the app
runs; the timer's wiring step gives it its system topics and event subscriptions; the first cluster created
there is remediated from the Event Grid event those deliver. No redeploy: the app settings never change.

function_app.py runs under the local runner; the emulator's Event Grid delivers only through event
subscriptions of system topics that exist (emulator/eventgrid/arm.py) and reaches the runner as the
``AzureFunction`` destination's function (the site is mapped to the runner's URL, as Event Grid resolves a
function by its resource id). Nothing is mocked.
"""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from azure.mgmt.containerservice import ContainerServiceClient
from azure.mgmt.eventgrid import EventGridManagementClient
from azure.mgmt.eventgrid.models import (
    AzureFunctionEventSubscriptionDestination,
    EventSubscription,
    EventSubscriptionFilter,
    StringInAdvancedFilter,
    SystemTopic,
)

from tests.fixtures.emulator import STORAGE_ID, TEST_ESTATE, TEST_SUB
from tests.fixtures.runner import FunctionsApp

pytestmark = pytest.mark.e2e

NEW_SUB = "77777777-7777-7777-7777-777777777777"
SITE = f"/subscriptions/{TEST_SUB}/resourceGroups/rg-aksbr-e2e/providers/Microsoft.Web/sites/func-aksbr-e2e"
EVENTS_RG = "rg-aksbr-e2e-events"
WIRING = {
    "functionAppId": SITE,
    "resourceGroup": EVENTS_RG,
    "location": "eastus",
    "resourcesTopic": "evgt-aksbr-e2e-arm",
    "policyTopic": "evgt-aksbr-e2e-policy",
}
CLUSTER_WRITES = "aks-cluster-writes"
WRITE_OP = "Microsoft.ContainerService/managedClusters/write"


def _deployed_wiring_of_the_test_subscription(app: FunctionsApp) -> None:
    """What the deployment (main.bicep + events.bicep) made for the subscription it knew about."""
    client = EventGridManagementClient(app.emulator.credential(), TEST_SUB, **app.emulator.client_kwargs())
    app.emulator.admin.request(
        "POST",
        "/resources",
        {
            "subscriptions": [
                {"subscriptionId": TEST_SUB, "resourceGroups": [{"name": EVENTS_RG, "location": "eastus"}]}
            ]
        },
    )
    for name, topic_type, event_subscription, function in (
        ("evgt-aksbr-e2e-arm", "Microsoft.Resources.Subscriptions", CLUSTER_WRITES, "on_cluster_write"),
        (
            "evgt-aksbr-e2e-policy",
            "Microsoft.PolicyInsights.PolicyStates",
            "aks-policy-states",
            "on_policy_state",
        ),
    ):
        client.system_topics.begin_create_or_update(
            EVENTS_RG,
            name,
            SystemTopic(location="global", source=f"/subscriptions/{TEST_SUB}", topic_type=topic_type),
        ).result()
        client.system_topic_event_subscriptions.begin_create_or_update(
            EVENTS_RG,
            name,
            event_subscription,
            EventSubscription(
                destination=AzureFunctionEventSubscriptionDestination(
                    resource_id=f"{SITE}/functions/{function}"
                ),
                filter=EventSubscriptionFilter(
                    included_event_types=["Microsoft.Resources.ResourceWriteSuccess"],
                    advanced_filters=[StringInAdvancedFilter(key="data.operationName", values=[WRITE_OP])],
                )
                if function == "on_cluster_write"
                else None,
            ),
        ).result()


def _create_cluster(app: FunctionsApp, subscription: str, group: str, name: str) -> str:
    client = ContainerServiceClient(app.emulator.credential(), subscription, **app.emulator.client_kwargs())
    body = {
        "location": "eastus",
        "tags": {"backup": "yes"},
        "identity": {"type": "SystemAssigned"},
        "properties": {
            "dnsPrefix": name,
            "agentPoolProfiles": [
                {
                    "name": "system",
                    "count": 1,
                    "vmSize": "Standard_D4s_v5",
                    "osType": "Linux",
                    "mode": "System",
                }
            ],
        },
    }
    created = client.managed_clusters.begin_create_or_update(group, name, body, polling_interval=0).result()
    return str(created.id)


def _extension(app: FunctionsApp, cluster: str) -> dict[str, Any] | None:
    ext = app.extension_of(cluster)
    return ext if ext is not None and ext["properties"].get("provisioningState") == "Succeeded" else None


def test_a_subscription_joining_the_group_is_wired_and_its_first_cluster_remediated_from_an_event(
    functions_app_factory: Any,
) -> None:
    estate = copy.deepcopy(TEST_ESTATE)
    estate["managementGroups"] = {"mg-platform": {"subscriptions": [TEST_SUB]}}
    config = {
        "scope": {"managementGroups": ["mg-platform"]},
        "storage": {"eastus": STORAGE_ID},
        "selection": {"include": [{"tag": "backup", "values": ["yes"]}]},
    }
    app: FunctionsApp = functions_app_factory(
        REMEDIATOR_CONFIG_JSON=json.dumps(config), REMEDIATOR_EVENT_WIRING=json.dumps(WIRING)
    )
    emulator = app.emulator
    emulator.reset(estate)
    emulator.admin.request("PATCH", "/eventgrid/settings", {"functionApps": {SITE: app.runner.url}})
    _deployed_wiring_of_the_test_subscription(app)

    # a subscription joins the managed management group; nothing is redeployed
    emulator.admin.request(
        "POST",
        "/resources",
        {
            "subscriptions": [
                {"subscriptionId": NEW_SUB, "resourceGroups": [{"name": "rg-new", "location": "eastus"}]}
            ],
            "managementGroups": {"mg-platform": {"subscriptions": [NEW_SUB]}},
        },
    )
    # before the wiring step, a cluster write there reaches no function (no system topic for that source)
    early = _create_cluster(app, NEW_SUB, "rg-new", "aks-early")
    early_events = {e["id"] for e in _events_for(emulator, early)}
    assert early_events  # ARM emitted the write ...
    deliveries = emulator.admin.request("GET", "/eventgrid/deliveries")["value"]
    assert not [d for d in deliveries if d["eventId"] in early_events]  # ... but nothing delivered it

    # the hourly timer: sweep, then wiring
    assert app.runner.run_timer("sweep").status == 202
    summary = app.runner.wait_for(
        lambda: _wiring_summary(app), timeout_s=30, what="a journaled wiring summary"
    )
    assert summary["wired"] == [NEW_SUB], summary
    assert summary["failures"] == []
    assert summary["alreadyWired"] == 1  # the deployed subscription is left alone
    client = EventGridManagementClient(emulator.credential(), NEW_SUB, **emulator.client_kwargs())
    topic = client.system_topics.get(EVENTS_RG, "evgt-aksbr-e2e-arm")
    assert topic.source == f"/subscriptions/{NEW_SUB}"
    writes = client.system_topic_event_subscriptions.get(EVENTS_RG, "evgt-aksbr-e2e-arm", CLUSTER_WRITES)
    assert writes.destination.resource_id == f"{SITE}/functions/on_cluster_write"

    # the first cluster created in the new subscription after the wiring: remediated from its event
    cluster = _create_cluster(app, NEW_SUB, "rg-new", "aks-first")
    ext = app.runner.wait_for(lambda: _extension(app, cluster), timeout_s=45, what="the extension Succeeded")
    assert ext["properties"]["extensionType"] == "microsoft.dataprotection.kubernetes"
    (event,) = [e for e in _events_for(emulator, cluster)]
    delivered = [
        d
        for d in emulator.admin.request("GET", "/eventgrid/deliveries")["value"]
        if d["eventId"] == event["id"]
    ]
    assert delivered and delivered[0]["subscription"] == CLUSTER_WRITES
    assert 200 <= delivered[0]["status"] < 300
    invocations = [i for i in app.runner.invocations("on_cluster_write") if i["succeeded"]]
    assert invocations, "Event Grid delivered the write to on_cluster_write"
    # the install was the event's doing: its reconcile is journaled under the event's id
    assert event["id"] in {report.correlation_id for report in app.journal().history(cluster)}


def _events_for(emulator: Any, cluster: str) -> list[dict[str, Any]]:
    return [
        e
        for e in emulator.admin.request("GET", "/eventgrid/events")["value"]
        if e["subject"].lower() == cluster.lower()
        and e["eventType"] == "Microsoft.Resources.ResourceWriteSuccess"
    ]


def _wiring_summary(app: FunctionsApp) -> dict[str, Any] | None:
    return app.journal().latest_wiring()
