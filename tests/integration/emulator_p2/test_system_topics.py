"""Event Grid system topics and their event subscriptions as ARM resources (emulator/eventgrid/arm.py),
through the real ``azure-mgmt-eventgrid`` client, and the deliveries they gate: an event reaches a handler
only through an event subscription on a system topic of the event's type and source, only from its creation
on, and no longer once it (or its topic) is deleted.
"""

from __future__ import annotations

import http.server
import json
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError
from azure.mgmt.eventgrid import EventGridManagementClient
from azure.mgmt.eventgrid.models import (
    AzureFunctionEventSubscriptionDestination,
    EventSubscription,
    EventSubscriptionFilter,
    IdentityInfo,
    StringInAdvancedFilter,
    SystemTopic,
    WebHookEventSubscriptionDestination,
)

from tests.fixtures.emulator import OTHER_SUB, TEST_RG, TEST_SUB
from tests.integration.emulator_p2.conftest import wait_for
from tests.integration.emulator_p2.test_event_grid import update_tags

pytestmark = pytest.mark.integration

SITE = f"/subscriptions/{TEST_SUB}/resourceGroups/rg-app/providers/Microsoft.Web/sites/func-app"
WRITE_OP = "Microsoft.ContainerService/managedClusters/write"


@pytest.fixture
def eventgrid(mgmt_client: Any) -> Any:
    return mgmt_client(EventGridManagementClient, TEST_SUB)


class Webhook:
    """A local HTTP endpoint recording (path, headers, events) of every POST; answers 200."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, dict[str, str], list[dict[str, Any]]]] = []
        hook = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                hook.requests.append(
                    (self.path, {k.lower(): v for k, v in self.headers.items()}, json.loads(body))
                )
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def events(self) -> list[dict[str, Any]]:
        return [event for _path, _headers, body in self.requests for event in body]

    def close(self) -> None:
        self.server.shutdown()


@pytest.fixture
def hook() -> Iterator[Webhook]:
    webhook = Webhook()
    yield webhook
    webhook.close()


def _topic(
    client: Any, name: str, topic_type: str = "Microsoft.Resources.Subscriptions", **extra: Any
) -> Any:
    return client.system_topics.begin_create_or_update(
        TEST_RG,
        name,
        SystemTopic(location="global", source=f"/subscriptions/{TEST_SUB}", topic_type=topic_type, **extra),
    ).result()


def _cluster_writes(url: str) -> EventSubscription:
    return EventSubscription(
        destination=WebHookEventSubscriptionDestination(endpoint_url=url),
        filter=EventSubscriptionFilter(
            included_event_types=["Microsoft.Resources.ResourceWriteSuccess"],
            advanced_filters=[StringInAdvancedFilter(key="data.operationName", values=[WRITE_OP])],
        ),
    )


def test_topic_and_event_subscription_have_the_official_shapes(eventgrid: Any, hook: Webhook) -> None:
    topic = _topic(eventgrid, "evgt-arm", identity=IdentityInfo(type="SystemAssigned"))
    assert topic.provisioning_state == "Succeeded" and topic.topic_type == "Microsoft.Resources.Subscriptions"
    assert topic.id.endswith(f"/resourceGroups/{TEST_RG}/providers/Microsoft.EventGrid/systemTopics/evgt-arm")
    assert topic.identity.type == "SystemAssigned" and topic.identity.principal_id  # for dead-lettering
    assert topic.metric_resource_id  # as SystemTopics_Get.json
    created = eventgrid.system_topic_event_subscriptions.begin_create_or_update(
        TEST_RG, "evgt-arm", "aks-cluster-writes", _cluster_writes(hook.url + "/hook?code=secret")
    ).result()
    assert created.provisioning_state == "Succeeded" and created.topic == topic.id
    # the URL is answered as endpointBaseUrl, without its query (SystemTopicEventSubscriptions_CreateOrUpdate)
    assert created.destination.endpoint_base_url == hook.url + "/hook"
    assert (
        created.retry_policy.max_delivery_attempts == 30
        and created.event_delivery_schema == "EventGridSchema"
    )
    got = eventgrid.system_topic_event_subscriptions.get(TEST_RG, "evgt-arm", "aks-cluster-writes")
    assert got.filter.advanced_filters[0].values == [WRITE_OP]
    assert [
        s.name for s in eventgrid.system_topic_event_subscriptions.list_by_system_topic(TEST_RG, "evgt-arm")
    ] == ["aks-cluster-writes"]
    assert [t.name for t in eventgrid.system_topics.list_by_subscription()] == ["evgt-arm"]
    assert [t.name for t in eventgrid.system_topics.list_by_resource_group(TEST_RG)] == ["evgt-arm"]


def test_events_flow_only_while_the_wiring_exists(emulator: Any, eventgrid: Any, hook: Webhook) -> None:
    update_tags(emulator, "aks1", {"before": "wiring"})  # nothing subscribed yet: nobody hears it
    _topic(eventgrid, "evgt-arm")
    eventgrid.system_topic_event_subscriptions.begin_create_or_update(
        TEST_RG, "evgt-arm", "aks-cluster-writes", _cluster_writes(hook.url)
    ).result()
    update_tags(emulator, "aks1", {"after": "wiring"})
    wait_for(lambda: hook.events())
    time.sleep(0.3)
    (event,) = hook.events()
    assert event["eventType"] == "Microsoft.Resources.ResourceWriteSuccess"
    assert event["topic"] == f"/subscriptions/{TEST_SUB}"
    assert event["subject"].endswith("/managedClusters/aks1")
    # a write in another subscription is another source: not delivered on this topic
    other = f"/subscriptions/{OTHER_SUB}/resourceGroups/{TEST_RG}/providers/Microsoft.ContainerService"
    emulator.admin.request(
        "PATCH", "/clusters", {"id": f"{other}/managedClusters/aks-other", "tags": {"x": "y"}}
    )
    time.sleep(0.3)
    assert len(hook.events()) == 1
    # deleting the topic deletes its event subscription and stops the flow
    eventgrid.system_topics.begin_delete(TEST_RG, "evgt-arm").result()
    with pytest.raises(ResourceNotFoundError):
        eventgrid.system_topic_event_subscriptions.get(TEST_RG, "evgt-arm", "aks-cluster-writes")
    update_tags(emulator, "aks1", {"topic": "deleted"})
    time.sleep(0.5)
    assert len(hook.events()) == 1


def test_a_policy_topic_hears_policy_events_not_resource_writes(
    emulator: Any, eventgrid: Any, hook: Webhook
) -> None:
    _topic(eventgrid, "evgt-policy", "Microsoft.PolicyInsights.PolicyStates")
    eventgrid.system_topic_event_subscriptions.begin_create_or_update(
        TEST_RG,
        "evgt-policy",
        "everything",
        EventSubscription(destination=WebHookEventSubscriptionDestination(endpoint_url=hook.url)),
    ).result()
    update_tags(emulator, "aks1", {"a": "b"})  # a ResourceWriteSuccess: the wrong topic type
    emulator.ctx.extras["eventgrid"].publish_policy_event(  # what the policy engine calls (policy/engine.py)
        "Microsoft.PolicyInsights.PolicyStateCreated",
        f"/subscriptions/{TEST_SUB}/resourceGroups/{TEST_RG}/providers/Microsoft.ContainerService/managedClusters/aks1",
        {"complianceState": "NonCompliant"},
        f"/subscriptions/{TEST_SUB}",
    )
    wait_for(lambda: hook.events())
    time.sleep(0.3)
    assert [e["eventType"] for e in hook.events()] == ["Microsoft.PolicyInsights.PolicyStateCreated"]


def test_azure_function_destinations_need_a_known_function_app(
    emulator: Any, eventgrid: Any, hook: Webhook
) -> None:
    _topic(eventgrid, "evgt-arm")
    destination = AzureFunctionEventSubscriptionDestination(
        resource_id=f"{SITE}/functions/on_cluster_write",
        max_events_per_batch=1,
        preferred_batch_size_in_kilobytes=64,
    )
    subscription = EventSubscription(destination=destination)
    with pytest.raises(HttpResponseError) as refused:
        eventgrid.system_topic_event_subscriptions.begin_create_or_update(
            TEST_RG, "evgt-arm", "f", subscription
        ).result()
    assert refused.value.status_code == 400
    emulator.admin.request("PATCH", "/eventgrid/settings", {"functionApps": {SITE: hook.url}})
    created = eventgrid.system_topic_event_subscriptions.begin_create_or_update(
        TEST_RG, "evgt-arm", "f", subscription
    ).result()
    assert created.destination.resource_id == f"{SITE}/functions/on_cluster_write"
    update_tags(emulator, "aks1", {"to": "function"})
    wait_for(lambda: hook.requests)
    path, headers, _body = hook.requests[0]
    assert headers["aeg-event-type"] == "Notification"
    assert path == "/runtime/webhooks/eventgrid?functionName=on_cluster_write"


def test_one_system_topic_per_source_and_type_and_the_strict_reading(emulator: Any, eventgrid: Any) -> None:
    _topic(eventgrid, "evgt-arm")
    with pytest.raises(HttpResponseError) as twice:
        _topic(eventgrid, "another-arm")  # same source, same type
    assert "Only one system topic is allowed per source" in str(twice.value)
    _topic(
        eventgrid, "evgt-policy", "Microsoft.PolicyInsights.PolicyStates"
    )  # same source, other type: default
    emulator.admin.request("PATCH", "/eventgrid/settings", {"oneSystemTopicPer": "source"})
    eventgrid.system_topics.begin_delete(TEST_RG, "evgt-policy").result()
    with pytest.raises(HttpResponseError) as strict:
        _topic(eventgrid, "evgt-policy", "Microsoft.PolicyInsights.PolicyStates")
    assert strict.value.status_code == 400


def test_parent_must_exist_and_the_topic_lives_in_its_source_subscription(
    eventgrid: Any, hook: Webhook
) -> None:
    with pytest.raises(HttpResponseError) as orphan:
        eventgrid.system_topic_event_subscriptions.begin_create_or_update(
            TEST_RG, "missing", "s", _cluster_writes(hook.url)
        ).result()
    assert orphan.value.status_code == 404 and "ParentResourceNotFound" in str(orphan.value)
    with pytest.raises(HttpResponseError) as elsewhere:
        eventgrid.system_topics.begin_create_or_update(
            TEST_RG,
            "evgt-other",
            SystemTopic(
                location="global",
                source=f"/subscriptions/{OTHER_SUB}",
                topic_type="Microsoft.Resources.Subscriptions",
            ),
        ).result()
    assert elsewhere.value.status_code == 400
    with pytest.raises(ResourceNotFoundError):
        eventgrid.system_topics.get("rg-none", "evgt-arm")
