"""The Functions app end to end: local runner + ARM emulator (events delivered by its Event Grid) + Azurite.

Every test runs function_app.py in its own runner process with a fresh work queue and journal; SDK clients
talk HTTPS to the emulator. Nothing is mocked.
"""

from __future__ import annotations

import base64
import json
import threading
from typing import Any

import pytest
from azure.mgmt.containerservice import ContainerServiceClient
from azure.storage.queue import QueueClient

from tests.fixtures.emulator import CLUSTER_ID, OTHER_SUB, STORAGE_ID, TEST_RG, TEST_SUB
from tests.fixtures.events import recent_event_time
from tests.fixtures.runner import FunctionsApp

pytestmark = pytest.mark.e2e

WRITE_SUCCESS = "Microsoft.Resources.ResourceWriteSuccess"
CLUSTER_WRITE_FILTER = [
    {
        "operatorType": "StringIn",
        "key": "data.operationName",
        "values": ["Microsoft.ContainerService/managedClusters/write"],
    }
]
CREATING_ID = CLUSTER_ID.replace("aks1", "aks-creating")
OTHER_ID = CLUSTER_ID.replace(TEST_SUB, OTHER_SUB).replace("aks1", "aks-other")
ROLE_STORAGE_BLOB_DATA_CONTRIBUTOR = "ba92f5b4-2d11-453d-a403-e96b0029c9fe"


def new_cluster_id(name: str) -> str:
    return CLUSTER_ID.replace("aks1", name)


def create_cluster(app: FunctionsApp, name: str, *, tags: dict[str, str]) -> None:
    """PUT a new managed cluster through the real SDK (the emulator completes it and emits the event)."""
    client = ContainerServiceClient(app.emulator.credential(), TEST_SUB, **app.emulator.client_kwargs())
    body = {
        "location": "eastus",
        "tags": tags,
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
    client.managed_clusters.begin_create_or_update(TEST_RG, name, body, polling_interval=0).result()


def write_event(cluster_id: str, *, event_id: str = "evt-1") -> dict[str, Any]:
    return {
        "id": event_id,
        "topic": f"/subscriptions/{TEST_SUB}",
        "subject": cluster_id,
        "eventType": WRITE_SUCCESS,
        "eventTime": recent_event_time(),
        "dataVersion": "2",
        "metadataVersion": "1",
        "data": {
            "operationName": "Microsoft.ContainerService/managedClusters/write",
            "resourceUri": cluster_id,
            "resourceProvider": "Microsoft.ContainerService",
            "status": "Succeeded",
            "subscriptionId": TEST_SUB,
        },
    }


def extension_succeeded(app: FunctionsApp, cluster_id: str) -> dict[str, Any] | None:
    ext = app.extension_of(cluster_id)
    return ext if ext and ext["properties"]["provisioningState"] == "Succeeded" else None


def _done(journal: Any, cluster_id: str) -> bool:
    latest = journal.latest(cluster_id)
    return latest is not None and latest.outcome.kind.value == "done"


def grant_of(app: FunctionsApp, principal_id: str) -> list[dict[str, Any]]:
    return [
        r
        for r in app.state("role_assignments")
        if r["properties"]["principalId"].lower() == principal_id.lower()
        and r["properties"]["scope"].lower() == STORAGE_ID.lower()
        and r["properties"]["roleDefinitionId"].lower().endswith(ROLE_STORAGE_BLOB_DATA_CONTRIBUTOR)
    ]


def test_a_new_cluster_event_installs_the_extension_and_grants_storage_access(
    functions_app: FunctionsApp,
) -> None:
    app = functions_app
    app.subscribe("on_cluster_write", event_types=[WRITE_SUCCESS], advanced_filters=CLUSTER_WRITE_FILTER)
    cluster = new_cluster_id("aks-new")
    create_cluster(app, "aks-new", tags={"env": "prod"})

    ext = app.runner.wait_for(
        lambda: extension_succeeded(app, cluster), timeout_s=30, what="extension Succeeded"
    )
    assert ext["properties"]["extensionType"] == "microsoft.dataprotection.kubernetes"
    principal = ext["properties"]["aksAssignedIdentity"]["principalId"]
    app.runner.wait_for(lambda: grant_of(app, principal), timeout_s=20, what="the storage role assignment")

    delivered = [i for i in app.runner.invocations("on_cluster_write") if i["succeeded"]]
    assert delivered, "the emulator's Event Grid delivered the write event to the webhook"
    app.runner.wait_for(lambda: _done(app.journal(), cluster), timeout_s=20, what="a journaled done")


def test_the_same_event_delivered_three_times_creates_once(functions_app: FunctionsApp) -> None:
    app = functions_app
    cluster = new_cluster_id("aks-dup")
    create_cluster(app, "aks-dup", tags={})  # no subscription registered: we deliver the event ourselves
    event = write_event(cluster, event_id="dup-1")
    statuses: list[int] = []

    def deliver() -> None:
        statuses.append(app.runner.post_events("on_cluster_write", [event]).status)

    threads = [threading.Thread(target=deliver) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert statuses == [202, 202, 202]
    app.runner.wait_for(lambda: extension_succeeded(app, cluster), timeout_s=30, what="extension Succeeded")
    creates = [w for w in app.writes("/extensions/") if w["method"] == "PUT" and w["status"] in (200, 201)]
    assert len(creates) == 1, creates
    assert len(app.runner.invocations("on_cluster_write")) == 3


def test_an_event_for_a_creating_cluster_is_deferred_then_completed(functions_app: FunctionsApp) -> None:
    app = functions_app
    assert app.runner.post_events("on_cluster_write", [write_event(CREATING_ID)]).status == 202

    journal = app.journal()
    waited = app.runner.wait_for(lambda: journal.latest(CREATING_ID), timeout_s=15, what="a journaled wait")
    assert waited.outcome.kind.value == "wait"
    assert app.extension_of(CREATING_ID) is None and app.writes("/extensions/") == []
    app.runner.wait_for(
        lambda: len(app.runner.invocations("reconcile_worker")) >= 2, timeout_s=15, what="the worker retrying"
    )
    assert app.extension_of(CREATING_ID) is None

    app.emulator.admin.patch_cluster(CREATING_ID, provisioningState="Succeeded")
    app.runner.wait_for(
        lambda: extension_succeeded(app, CREATING_ID), timeout_s=30, what="extension Succeeded"
    )
    app.runner.wait_for(lambda: _done(journal, CREATING_ID), timeout_s=20, what="a journaled done")


def test_a_malformed_event_is_dropped_without_a_write(functions_app: FunctionsApp) -> None:
    app = functions_app
    broken = write_event(CLUSTER_ID)
    broken["data"]["resourceUri"] = "/subscriptions/not-a-guid/clusters/x"
    resp = app.runner.post_events("on_cluster_write", [broken])
    assert resp.status == 202  # dropped, so Event Grid does not redeliver it for 24 hours
    [invocation] = app.runner.invocations("on_cluster_write")
    assert invocation["succeeded"]
    assert app.writes() == []
    journal = app.journal()
    assert journal.latest(CLUSTER_ID) is None  # the cluster's own record is not touched
    dropped = journal.latest("(malformed event)")  # the drop is journaled, with the reason
    assert dropped is not None and dropped.outcome.kind.value == "skipped"
    assert "resourceUri" in dropped.outcome.why and dropped.correlation_id == broken["id"]


def test_out_of_scope_http_request_is_forbidden_without_a_write(functions_app: FunctionsApp) -> None:
    app = functions_app
    resp = app.runner.call("POST", "remediate", body={"clusterId": OTHER_ID})
    assert resp.status == 403 and OTHER_SUB in resp.json()["message"]
    resp = app.runner.call("POST", "remediate", body={"scope": f"/subscriptions/{OTHER_SUB}"})
    assert resp.status == 403
    assert app.runner.call("POST", "remediate", body={"clusterId": OTHER_ID}, key=None).status == 401
    assert app.writes() == []
    refused = app.journal().latest(OTHER_ID)  # the 403 is journaled under the cluster it named
    assert refused is not None and refused.outcome.kind.value == "skipped" and "403" in refused.outcome.why


def test_http_remediate_dry_run_then_for_real(functions_app: FunctionsApp) -> None:
    app = functions_app
    dry = app.runner.call("POST", "remediate?dryRun=true", body={"clusterId": CLUSTER_ID})
    assert dry.status == 200 and dry.json()["dryRun"] is True
    assert app.writes() == []
    real = app.runner.call("POST", "remediate", body={"clusterId": CLUSTER_ID})
    assert real.status in (200, 202), real.body
    app.runner.wait_for(
        lambda: extension_succeeded(app, CLUSTER_ID), timeout_s=30, what="extension Succeeded"
    )
    health = app.runner.call("GET", "health")
    assert health.status == 200, health.body


def test_the_poison_path_is_journaled(functions_app: FunctionsApp) -> None:
    app = functions_app
    queue = QueueClient.from_connection_string(
        app.env["AzureWebJobsStorage"], app.env["REMEDIATOR_WORK_QUEUE"]
    )
    body = json.dumps({"clusterId": "not-a-cluster-id", "attempt": 0, "source": "test"})
    queue.send_message(base64.b64encode(body.encode()).decode())

    journal = app.journal()
    report = app.runner.wait_for(
        lambda: journal.latest("(unreadable work item)"),
        timeout_s=30,
        what="the poison give-up in the journal",
    )
    assert report.outcome.kind.value == "gave_up" and "not-a-cluster-id" in report.outcome.why
    worker = app.runner.invocations("reconcile_worker")
    assert len(worker) == 5 and not any(i["succeeded"] for i in worker)
    assert [i["succeeded"] for i in app.runner.invocations("reconcile_poison")] == [True]
    assert app.writes() == []


def test_the_sweep_timer_remediates_and_the_report_counts(functions_app: FunctionsApp) -> None:
    app = functions_app
    assert app.runner.run_timer("sweep").status == 202
    summary = app.journal().latest_sweep()
    assert summary is not None and summary["enqueued"] >= 1 and summary["blocked"] == 1  # aks-sp: no identity
    app.runner.wait_for(
        lambda: extension_succeeded(app, CLUSTER_ID), timeout_s=30, what="extension Succeeded"
    )
    resp = app.runner.call("GET", "report")
    assert resp.status == 200
    totals = resp.json()["totals"]
    assert totals["clusters"] == 4  # the test subscription's clusters; aks-other is out of scope
    assert totals["selected"] == 4 and totals["protected"] == 1 and totals["blocked"] == 1
    assert totals["pending"] == 2  # aks-stopped and aks-creating


def test_a_policy_noncompliant_event_gets_the_cluster_remediated(functions_app: FunctionsApp) -> None:
    app = functions_app
    app.subscribe(
        "on_policy_state",
        event_types=[
            "Microsoft.PolicyInsights.PolicyStateCreated",
            "Microsoft.PolicyInsights.PolicyStateChanged",
        ],
    )
    app.emulator.admin.request(
        "POST",
        "/policy/assignments",
        {"name": "backup-audit", "scope": f"/subscriptions/{TEST_SUB}", "definition": "extension-audit"},
    )
    app.runner.wait_for(
        lambda: extension_succeeded(app, CLUSTER_ID), timeout_s=30, what="extension Succeeded"
    )
    invocations = app.runner.invocations("on_policy_state")
    assert invocations and all(i["succeeded"] for i in invocations)


def test_the_give_up_at_the_attempt_bound_is_journaled(functions_app_factory: Any) -> None:
    app = functions_app_factory(REMEDIATOR_MAX_ATTEMPTS="3")
    assert app.runner.post_events("on_cluster_write", [write_event(CREATING_ID)]).status == 202
    journal = app.journal()
    report = app.runner.wait_for(
        lambda: (r := journal.latest(CREATING_ID)) is not None and r.outcome.kind.value == "gave_up" and r,
        timeout_s=20,
        what="the journaled give-up",
    )
    assert "3 attempts" in report.outcome.why and "REMEDIATOR_MAX_ATTEMPTS" in report.outcome.why
    assert [i["succeeded"] for i in app.runner.invocations("reconcile_worker")] == [True, True, True]
    assert app.writes() == []
