# ruff: noqa: E501
"""Event Grid in the emulator: system events to a webhook, delivery semantics, and the custom topic."""

from __future__ import annotations

import http.server
import json
import ssl
import threading
import urllib.request

import pytest
from azure.core.credentials import AzureKeyCredential
from azure.core.messaging import CloudEvent
from azure.eventgrid import EventGridEvent, EventGridPublisherClient

from tests.fixtures.emulator import TEST_SUB
from tests.integration.emulator_p2.conftest import wait_for

pytestmark = pytest.mark.integration

OP = "Microsoft.ContainerService/managedClusters/write"


class Webhook:
    """A tiny local HTTP endpoint that records requests and answers with scripted statuses."""

    def __init__(self, statuses=(), answer_validation=True):
        self.answer_validation = answer_validation
        self.requests = []
        self.statuses = list(statuses)
        hook = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                hook.requests.append(({k.lower(): v for k, v in self.headers.items()}, json.loads(body)))
                events = json.loads(body)
                if self.headers.get("aeg-event-type") == "SubscriptionValidation" and hook.answer_validation:
                    reply = json.dumps({"validationResponse": events[0]["data"]["validationCode"]}).encode()
                    self.send_response(200)
                    self.send_header("Content-Length", str(len(reply)))
                    self.end_headers()
                    self.wfile.write(reply)
                    return
                status = hook.statuses.pop(0) if hook.statuses else 200
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/runtime/webhooks/eventgrid?functionName=on_arm_event"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def events(self):
        return [e for _, body in self.requests for e in body]

    def close(self):
        self.server.shutdown()


@pytest.fixture
def webhook():
    hooks = []

    def make(statuses=(), answer_validation=True):
        hook = Webhook(statuses, answer_validation)
        hooks.append(hook)
        return hook

    yield make
    for hook in hooks:
        hook.close()


def subscribe(emulator, url, **extra):
    emulator.admin.request(
        "POST",
        "/eventgrid/subscriptions",
        {
            "name": "aks-writes",
            "endpointUrl": url,
            "filter": {
                "includedEventTypes": ["Microsoft.Resources.ResourceWriteSuccess"],
                "advancedFilters": [
                    {"operatorType": "StringIn", "key": "data.operationName", "values": [OP.lower()]}
                ],
            },
            **extra,
        },
    )


def arm(emulator, method, path, body):
    """A plain HTTPS ARM call (the containerservice SDK's LRO is exercised by the ARM-core tests)."""
    context = ssl.create_default_context(cafile=str(emulator.ca_bundle))
    request = urllib.request.Request(
        f"{emulator.base_url}{path}?api-version=2024-09-01",
        data=json.dumps(body).encode(),
        method=method,
        headers={"Authorization": "Bearer test-principal", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, context=context, timeout=10) as response:
        return json.loads(response.read())


def cluster_path(name):
    return f"/subscriptions/{TEST_SUB}/resourceGroups/rg1/providers/Microsoft.ContainerService/managedClusters/{name}"


def create_cluster(emulator, name):
    body = {
        "location": "eastus",
        "tags": {"backup": "yes"},
        "identity": {"type": "SystemAssigned"},
        "properties": {
            "dnsPrefix": name,
            "agentPoolProfiles": [
                {"name": "np", "count": 1, "vmSize": "Standard_D2s_v5", "mode": "System", "osType": "Linux"}
            ],
        },
    }
    created = arm(emulator, "PUT", cluster_path(name), body)
    wait_for(
        lambda: (
            emulator.state.get("clusters", created["id"])["properties"]["provisioningState"] == "Succeeded"
        )
    )
    return created


def update_tags(emulator, name, tags):
    arm(emulator, "PATCH", cluster_path(name), {"tags": tags})
    wait_for(
        lambda: (
            emulator.state.get("clusters", cluster_path(name))["properties"]["provisioningState"]
            == "Succeeded"
        )
    )


def test_cluster_create_event_reaches_webhook_with_event_grid_shape(emulator, webhook, azure_examples):
    hook = webhook()
    subscribe(emulator, hook.url)
    cluster = create_cluster(emulator, "evt-aks")
    wait_for(lambda: hook.requests)
    headers, body = hook.requests[0]
    assert headers["aeg-event-type"] == "Notification"
    assert headers["content-type"].startswith("application/json")
    assert isinstance(body, list) and len(body) == 1
    event = body[0]
    sample = json.loads((azure_examples / "eventgrid" / "resource_write_success.json").read_text())[0]
    assert set(event) == set(sample)
    assert set(sample["data"]) <= set(event["data"])
    assert event["eventType"] == "Microsoft.Resources.ResourceWriteSuccess"
    # the event names the resource as the request did (AKS's own answer lower-cases /resourcegroups/)
    assert event["subject"] == cluster_path("evt-aks") and event["data"]["resourceUri"] == cluster_path(
        "evt-aks"
    )
    assert event["subject"].lower() == cluster["id"].lower()
    assert event["data"]["operationName"] == OP and event["data"]["status"] == "Succeeded"
    assert event["topic"] == f"/subscriptions/{TEST_SUB}" and event["data"]["subscriptionId"] == TEST_SUB
    # default: one event per create, when provisioning completed
    assert len(hook.events()) == 1


def test_write_event_timing_modes_and_filter(emulator, webhook):
    hook = webhook()
    subscribe(emulator, hook.url)
    emulator.admin.request("PATCH", "/eventgrid/settings", {"writeEventsAt": "both"})
    create_cluster(emulator, "evt-both")
    wait_for(lambda: len(hook.events()) >= 2)
    update_tags(emulator, "evt-both", {"a": "b"})
    wait_for(lambda: len(hook.events()) >= 4)
    published = emulator.admin.request("GET", "/eventgrid/events")["value"]
    assert all(e["data"]["operationName"] == OP for e in hook.events())
    assert len(published) >= len(hook.events())  # extension/other writes would be published but filtered out


def test_duplicates_reordering_retries_and_dead_letters(emulator, webhook):
    hook = webhook(statuses=[500])
    subscribe(emulator, hook.url)
    emulator.admin.request("PATCH", "/eventgrid/settings", {"timeFactor": 1000, "writeEventsAt": "accepted"})
    create_cluster(emulator, "evt-retry")
    wait_for(lambda: len(hook.requests) >= 2)
    assert [h["aeg-delivery-count"] for h, _ in hook.requests[:2]] == ["0", "1"]
    assert hook.requests[0][1][0]["id"] == hook.requests[1][1][0]["id"]

    dup = webhook()
    emulator.admin.request("DELETE", "/eventgrid/subscriptions/aks-writes")
    subscribe(emulator, dup.url)
    emulator.admin.request("PATCH", "/eventgrid/settings", {"duplicateProbability": 1.0})
    create_cluster(emulator, "evt-dup")
    wait_for(lambda: len(dup.events()) >= 2)
    assert len({e["id"] for e in dup.events()}) == 1

    order = webhook()
    emulator.admin.request("DELETE", "/eventgrid/subscriptions/aks-writes")
    subscribe(emulator, order.url)
    emulator.admin.request(
        "PATCH",
        "/eventgrid/settings",
        # a held event waits for the next event's delivery (not for a time), so the order cannot depend on
        # how fast the PATCHes complete; 60 s is only the longest hold
        {
            "duplicateProbability": 0,
            "reorderProbability": 0.5,
            "reorderAfterEvents": 1,
            "reorderDelayS": 60,
            "seed": 7,
        },
    )
    for i in range(8):
        update_tags(emulator, "evt-dup", {"i": str(i)})
    emulator.admin.request("PATCH", "/eventgrid/settings", {"reorderProbability": 0})
    update_tags(emulator, "evt-dup", {"i": "flush"})  # never held: releases a held last event
    wait_for(lambda: len(order.events()) >= 9)
    published = [
        e["id"]
        for e in emulator.admin.request("GET", "/eventgrid/events")["value"]
        if e["subject"].endswith("evt-dup")
    ][-9:]
    received = [e["id"] for e in order.events()]
    assert sorted(received) == sorted(published) and received != published
    held = {
        d["eventId"]
        for d in emulator.admin.request("GET", "/eventgrid/deliveries")["value"]
        if d["reordered"]
    }
    assert held and held < set(published[:8])
    for event_id in held:  # each held event reached the webhook after the next event that was not held
        after = next(e for e in published[published.index(event_id) + 1 :] if e not in held)
        assert received.index(event_id) > received.index(after)

    dead = webhook(statuses=[400])
    emulator.admin.request("DELETE", "/eventgrid/subscriptions/aks-writes")
    subscribe(emulator, dead.url)
    emulator.admin.request("PATCH", "/eventgrid/settings", {"reorderProbability": 0})
    create_cluster(emulator, "evt-dead")
    letters = wait_for(lambda: emulator.admin.request("GET", "/eventgrid/deadletters")["value"])
    assert letters[0]["deadLetterReason"].startswith("DeliveryFailed") and letters[0]["deliveryAttempts"] == 1
    assert len(dead.requests) == 1


# azure-eventgrid 4.22.1 drops constructor kwargs (connection_verify, transport, ...) for basic topics
# (azure/eventgrid/_patch.py builds the legacy client from endpoint+credential only), so the CA bundle is
# passed per call, which the legacy send() forwards to the pipeline.


def test_custom_topic_accepts_the_publisher_client(emulator):
    endpoint = f"{emulator.base_url}/api/events"
    verify = {}
    EventGridPublisherClient(endpoint, AzureKeyCredential("emulator-topic-key"), **verify).send(
        [
            EventGridEvent(
                subject="/x", event_type="AksBackupRemediator.Installed", data={"a": 1}, data_version="1.0"
            )
        ],
        connection_verify=str(emulator.ca_bundle),
    )
    EventGridPublisherClient(endpoint, emulator.credential(), **verify).send(
        [CloudEvent(source="/remediator", type="AksBackupRemediator.Skipped", data={"b": 2})],
        connection_verify=str(emulator.ca_bundle),
    )
    received = emulator.admin.request("GET", "/eventgrid/topic/events")["value"]
    assert [r["schema"] for r in received] == ["EventGridSchema", "CloudEventV1_0"]
    assert received[0]["event"]["eventType"] == "AksBackupRemediator.Installed"
    assert received[1]["event"]["type"] == "AksBackupRemediator.Skipped"
    from azure.core.exceptions import HttpResponseError

    with pytest.raises(HttpResponseError) as err:
        EventGridPublisherClient(endpoint, AzureKeyCredential("wrong"), **verify).send(
            [EventGridEvent(subject="/x", event_type="t", data={}, data_version="1")],
            connection_verify=str(emulator.ca_bundle),
        )
    assert err.value.status_code == 401


@pytest.mark.parametrize(
    "name",
    [
        "policy_state_changed.json",
        "policy_state_created.json",
        "resource_write_success.json",
        "ResourceWriteSuccessEvent.json",
        "policy_state_changed_cloudevent.json",
        "policy_state_created_cloudevent.json",
        "resource_write_success_cloudevent.json",
    ],
)
def test_official_event_samples_are_accepted_by_the_custom_topic(emulator, azure_examples, name):
    payload = json.loads((azure_examples / "eventgrid" / name).read_text())
    events = payload if isinstance(payload, list) else [payload]
    client = EventGridPublisherClient(f"{emulator.base_url}/api/events", emulator.credential())
    client.send(events, connection_verify=str(emulator.ca_bundle))
    received = emulator.admin.request("GET", "/eventgrid/topic/events")["value"]
    assert len(received) == len(events)
    cloud = "specversion" in events[0]
    assert {r["schema"] for r in received} == {"CloudEventV1_0" if cloud else "EventGridSchema"}
    assert received[0]["event"]["id"] == events[0]["id"]


def test_subscription_validation_handshake(emulator, webhook, azure_examples):
    sample = json.loads((azure_examples / "eventgrid" / "subscription_validation_event.json").read_text())[0]
    good = webhook()
    emulator.admin.request(
        "POST",
        "/eventgrid/subscriptions",
        {"name": "checked", "endpointUrl": good.url, "validateEndpoint": True},
    )
    headers, body = good.requests[0]
    assert headers["aeg-event-type"] == "SubscriptionValidation"
    assert set(body[0]) == set(sample) and set(body[0]["data"]) == set(sample["data"])
    assert body[0]["eventType"] == sample["eventType"]
    bad = webhook(answer_validation=False)
    from emulator.admin_client import AdminError

    with pytest.raises(AdminError) as err:
        emulator.admin.request(
            "POST",
            "/eventgrid/subscriptions",
            {"name": "unchecked", "endpointUrl": bad.url, "validateEndpoint": True},
        )
    assert err.value.status == 400
    names = [s["name"] for s in emulator.admin.request("GET", "/eventgrid/subscriptions")["value"]]
    assert names == ["checked"]


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        ({"aeg-sas-key": "emulator-topic-key"}, 200),
        ({"aeg-sas-key": "wrong-key"}, 401),
        ({}, 401),
    ],
)
def test_custom_topic_with_only_a_sas_key(emulator, headers, status):
    """No bearer token: the right aeg-sas-key is enough (200); a wrong key or none at all is 401."""
    event = {
        "id": "sas-1",
        "subject": "s",
        "eventType": "Contoso.Test",
        "eventTime": "2026-01-01T00:00:00Z",
        "data": {},
        "dataVersion": "1",
    }
    context = ssl.create_default_context(cafile=str(emulator.ca_bundle))
    request = urllib.request.Request(
        f"{emulator.base_url}/api/events?api-version=2018-01-01",
        data=json.dumps([event]).encode(),
        method="POST",
        headers={"Content-Type": "application/json", **headers},
    )
    try:
        with urllib.request.urlopen(request, context=context) as response:  # noqa: S310 - loopback
            got = response.status
    except urllib.error.HTTPError as exc:
        got = exc.code
    assert got == status
    received = emulator.admin.request("GET", "/eventgrid/topic/events")["value"]
    assert [e["event"]["id"] for e in received] == (["sas-1"] if status == 200 else [])
