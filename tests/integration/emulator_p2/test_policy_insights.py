# ruff: noqa: E501
"""azure-mgmt-policyinsights, unchanged, against the emulator: policy states and remediation tasks."""

from __future__ import annotations

import time

import pytest
from azure.core.exceptions import HttpResponseError
from azure.mgmt.kubernetesconfiguration import SourceControlConfigurationClient
from azure.mgmt.policyinsights import PolicyInsightsClient
from azure.mgmt.policyinsights.models import QueryOptions, Remediation, RemediationFilters

from emulator.model.ids import key_of
from tests.fixtures.emulator import STORAGE_ID, TEST_SUB
from tests.integration.emulator_p2.conftest import P1_ASSIGNMENT, P3_ASSIGNMENT, policy_estate, wait_for

pytestmark = pytest.mark.integration

BASE = f"/subscriptions/{TEST_SUB}/resourceGroups/rg1/providers/Microsoft.ContainerService/managedClusters"


def states(client, **filters):
    clauses = " and ".join(f"{k} eq '{v}'" for k, v in filters.items())
    return list(
        client.policy_states.list_query_results_for_subscription(
            "latest", TEST_SUB, query_options=QueryOptions(filter=clauses or None)
        )
    )


def test_policy_state_queries_with_filters_at_three_scopes(policy_emulator, mgmt_client):
    client = mgmt_client(PolicyInsightsClient)
    p3 = states(client, policyAssignmentId=P3_ASSIGNMENT.upper())
    # In scope of the tag-include DINE: eastus (normalized), tag backup in ['yes'] case-insensitively.
    assert {s.resource_id.rsplit("/", 1)[-1]: s.compliance_state for s in p3} == {
        "aks1": "NonCompliant",
        "aks-stopped": "NonCompliant",
        "tagged-a": "NonCompliant",
        "tagged-b": "NonCompliant",
        "Tagged_Bad": "NonCompliant",
    }
    assert all(s.policy_definition_name == "bdff5235-9f40-4a32-893f-38a03d5d607c" for s in p3)
    both = states(client, complianceState="noncompliant", resourceId=f"{BASE}/TAGGED-A")
    assert {s.policy_assignment_id for s in both} == {P3_ASSIGNMENT, P1_ASSIGNMENT}
    either = list(
        client.policy_states.list_query_results_for_subscription(
            "latest",
            TEST_SUB,
            query_options=QueryOptions(
                filter=f"(resourceId eq '{BASE}/untagged' or resourceId eq '{BASE}/tagged-b') "
                f"and policyDefinitionName eq 'fda9cd0b-094c-4cd5-ac2a-5e06e5277c45'",
                top=5,
            ),
        )
    )
    assert sorted(s.resource_id.rsplit("/", 1)[-1] for s in either) == ["tagged-b", "untagged"]
    rg = list(client.policy_states.list_query_results_for_resource_group("latest", TEST_SUB, "rg1"))
    assert len(rg) == len(states(client))
    one = list(client.policy_states.list_query_results_for_resource("latest", f"{BASE}/tagged-a"))
    assert len(one) == 2
    with pytest.raises(HttpResponseError) as err:
        states(client, bogus="x")
    assert err.value.status_code == 400


def test_trigger_evaluation_202_then_200(policy_emulator, mgmt_client):
    client = mgmt_client(PolicyInsightsClient)
    poller = client.policy_states.begin_trigger_subscription_evaluation(TEST_SUB, polling_interval=0.05)
    poller.result(timeout=10)
    assert poller.status().lower() == "succeeded"
    log = policy_emulator.admin.calls()
    statuses = [
        c["status"] for c in log if "triggerEvaluation" in c["path"] or "asyncOperationResults" in c["path"]
    ]
    assert statuses[0] == 202 and statuses[-1] == 200


def test_remediation_at_subscription_deploys_the_dine_and_flips_compliance(policy_emulator, mgmt_client):
    emulator = policy_emulator
    emulator.admin.request(
        "POST",
        "/eventgrid/subscriptions",
        {
            "name": "policy-events",
            "filter": {"includedEventTypes": ["Microsoft.PolicyInsights.PolicyStateChanged"]},
        },
    )
    client = mgmt_client(PolicyInsightsClient)
    created = client.remediations.create_or_update_at_subscription(
        "fix-all",
        Remediation(policy_assignment_id=P3_ASSIGNMENT, filters=RemediationFilters(locations=["East US"])),
    )
    assert created.provisioning_state == "Accepted"
    done = wait_for(
        lambda: (
            (r := client.remediations.get_at_subscription("fix-all")).provisioning_state
            in ("Succeeded", "Failed")
            and r
        )
    )
    # aks-stopped is not Running and Tagged_Bad is not a valid container name: both deployments fail like Azure.
    assert done.provisioning_state == "Failed"
    assert (done.deployment_status.total_deployments, done.deployment_status.successful_deployments) == (5, 3)
    deployments = {
        d.remediated_resource_id.rsplit("/", 1)[-1]: d
        for d in client.remediations.list_deployments_at_subscription("fix-all")
    }
    assert {k: d.status for k, d in deployments.items()} == {
        "aks1": "Succeeded",
        "tagged-a": "Succeeded",
        "tagged-b": "Succeeded",
        "aks-stopped": "Failed",
        "Tagged_Bad": "Failed",
    }
    assert deployments["Tagged_Bad"].error.code == "InvalidResourceName"

    ext_client = mgmt_client(SourceControlConfigurationClient)
    ext = ext_client.extensions.get(
        "rg1", "Microsoft.ContainerService", "managedClusters", "tagged-a", "azure-aks-backup"
    )
    assert (
        ext.extension_type == "microsoft.dataprotection.kubernetes" and ext.provisioning_state == "Succeeded"
    )
    settings = ext.configuration_settings
    assert settings["configuration.backupStorageLocation.bucket"] == "azure-aks-backup-tagged-a"
    assert settings["configuration.backupStorageLocation.config.storageAccount"] == "stbackupeastus"
    assert settings["configuration.backupStorageLocation.config.resourceGroup"] == "rg-backup"
    assert settings["configuration.backupStorageLocation.config.subscriptionId"] == TEST_SUB
    assert settings["configuration.backupStorageLocation.config.useAAD"] == "true"
    assert settings["configuration.backupStorageLocation.config.storageAccountURI"].startswith("https://")
    assert settings["credentials.tenantId"]
    snapshot = emulator.admin.state(collections=["containers", "role_assignments"])
    assert f"{STORAGE_ID}/blobServices/default/containers/azure-aks-backup-tagged-a".lower() in {
        c["id"].lower() for c in snapshot["containers"]
    }
    assert any(
        r["properties"]["principalId"] == ext.aks_assigned_identity.principal_id
        and r["properties"]["roleDefinitionId"].endswith("ba92f5b4-2d11-453d-a403-e96b0029c9fe")
        for r in snapshot["role_assignments"]
    )
    p3 = {
        s.resource_id.rsplit("/", 1)[-1]: s.compliance_state
        for s in states(client, policyAssignmentId=P3_ASSIGNMENT)
    }
    assert (
        p3
        == {
            "aks1": "Compliant",
            "tagged-a": "Compliant",
            "tagged-b": "Compliant",
            "aks-stopped": "NonCompliant",
            "Tagged_Bad": "Compliant",  # extension installed before the container step failed; DINE checks type only
        }
    )
    changed = emulator.admin.request("GET", "/eventgrid/subscriptions/policy-events/events")["value"]
    subjects = {
        e["subject"].rsplit("/", 1)[-1] for e in changed if e["data"]["complianceState"] == "Compliant"
    }
    assert {"aks1", "tagged-a", "tagged-b"} <= subjects
    assert all(
        e["eventType"] == "Microsoft.PolicyInsights.PolicyStateChanged" and e["dataVersion"] == "1"
        for e in changed
    )


def test_remediation_at_resource_scope_and_fault_rule(policy_emulator, mgmt_client):
    client = mgmt_client(PolicyInsightsClient)
    target = f"{BASE}/tagged-b"
    policy_emulator.admin.add_fault(
        method="PUT", path="*/managedClusters/tagged-b/*/extensions/*", action="fail-provisioning", count=1
    )
    client.remediations.create_or_update_at_resource(
        target, "one", Remediation(policy_assignment_id=P3_ASSIGNMENT)
    )
    done = wait_for(
        lambda: (
            (r := client.remediations.get_at_resource(target, "one")).provisioning_state
            in ("Succeeded", "Failed")
            and r
        )
    )
    assert done.provisioning_state == "Failed"
    rows = list(client.remediations.list_deployments_at_resource(target, "one"))
    assert [(key_of(r.remediated_resource_id), r.status) for r in rows] == [(key_of(target), "Failed")]
    # Policy 3 counts a Failed extension as existing (existence by type only); Policy 1 does not.
    by_assignment = {
        s.policy_assignment_id: s.compliance_state
        for s in client.policy_states.list_query_results_for_resource("latest", target)
    }
    assert by_assignment == {P3_ASSIGNMENT: "Compliant", P1_ASSIGNMENT: "NonCompliant"}


def test_remediation_of_a_non_remediable_assignment_is_accepted_and_does_nothing(
    policy_emulator, mgmt_client
):
    """Azure accepts a task for an Audit/AuditIfNotExists assignment: 201, already Succeeded, zero deployments
    (recorded: azure-cli policyinsights cassette, 2025) - it does not refuse it."""
    client = mgmt_client(PolicyInsightsClient)
    extensions_before = set(policy_emulator.state.extensions)
    pipeline, task = client.remediations.create_or_update_at_subscription(
        "x",
        Remediation(policy_assignment_id=P1_ASSIGNMENT),
        cls=lambda pipeline, model, _h: (pipeline, model),
    )
    assert pipeline.http_response.status_code == 201
    assert task.provisioning_state == "Succeeded"
    counts = task.deployment_status
    assert (counts.total_deployments, counts.successful_deployments, counts.failed_deployments) == (0, 0, 0)
    assert list(client.remediations.list_deployments_at_subscription("x")) == []
    time.sleep(0.3)
    assert client.remediations.get_at_subscription("x").provisioning_state == "Succeeded"
    assert set(policy_emulator.state.extensions) == extensions_before  # nothing was installed


def test_remediation_errors(policy_emulator, mgmt_client):
    client = mgmt_client(PolicyInsightsClient)
    with pytest.raises(HttpResponseError) as err:
        client.remediations.create_or_update_at_subscription(
            "x", Remediation(policy_assignment_id=P3_ASSIGNMENT.replace("backup-with-tag", "nope"))
        )
    assert err.value.status_code == 404
    with pytest.raises(HttpResponseError) as err:
        client.remediations.get_at_subscription("missing")
    assert err.value.status_code == 404
    client.remediations.create_or_update_at_subscription("c", Remediation(policy_assignment_id=P3_ASSIGNMENT))
    cancelled = client.remediations.cancel_at_subscription("c")
    assert cancelled.provisioning_state in ("Cancelling", "Canceled")
    assert wait_for(lambda: client.remediations.get_at_subscription("c").provisioning_state == "Canceled")
    assert [r.name for r in client.remediations.list_for_subscription()] == ["c"]


def test_reevaluate_compliance_and_location_filter(policy_emulator, mgmt_client):
    emulator = policy_emulator
    client = mgmt_client(PolicyInsightsClient)
    # Delay evaluation like Azure: a cluster tagged after load is not yet known to be NonCompliant.
    emulator.admin.request("PATCH", "/policy/settings", {"evaluationDelayS": 3600})
    emulator.admin.patch_cluster(f"{BASE}/untagged", tags={"backup": "yes"})
    assert "untagged" not in {
        s.resource_id.rsplit("/", 1)[-1] for s in states(client, policyAssignmentId=P3_ASSIGNMENT)
    }
    client.remediations.create_or_update_at_resource_group(
        "rg1",
        "west-only",
        Remediation(policy_assignment_id=P3_ASSIGNMENT, filters=RemediationFilters(locations=["westeurope"])),
    )
    done = wait_for(
        lambda: (
            (r := client.remediations.get_at_resource_group("rg1", "west-only")).provisioning_state
            == "Succeeded"
            and r
        )
    )
    assert done.deployment_status.total_deployments == 0  # tagged-west is out of the assignment's location
    client.remediations.create_or_update_at_resource_group(
        "rg1",
        "existing",
        Remediation(
            policy_assignment_id=P3_ASSIGNMENT,
            resource_discovery_mode="ExistingNonCompliant",
            filters=RemediationFilters(locations=["eastus"]),
        ),
    )
    existing = wait_for(
        lambda: (
            (r := client.remediations.get_at_resource_group("rg1", "existing")).provisioning_state
            in ("Succeeded", "Failed")
            and r
        )
    )
    targets = {
        d.remediated_resource_id.rsplit("/", 1)[-1]
        for d in client.remediations.list_deployments_at_resource_group("rg1", "existing")
    }
    assert "untagged" not in targets and existing.deployment_status.total_deployments == len(targets) == 5
    client.remediations.create_or_update_at_resource_group(
        "rg1",
        "reeval",
        Remediation(policy_assignment_id=P3_ASSIGNMENT, resource_discovery_mode="ReEvaluateCompliance"),
    )
    wait_for(
        lambda: (
            client.remediations.get_at_resource_group("rg1", "reeval").provisioning_state
            in ("Succeeded", "Failed")
        )
    )
    targets = {
        d.remediated_resource_id.rsplit("/", 1)[-1]
        for d in client.remediations.list_deployments_at_resource_group("rg1", "reeval")
    }
    assert targets == {"untagged", "aks-stopped"}  # aks-stopped is still NonCompliant (Stopped clusters fail)


def test_policy_states_in_resource_graph_policyresources(policy_emulator):
    from azure.mgmt.resourcegraph import ResourceGraphClient
    from azure.mgmt.resourcegraph.models import QueryRequest, QueryRequestOptions

    graph = ResourceGraphClient(policy_emulator.credential(), **policy_emulator.client_kwargs())
    result = graph.resources(
        QueryRequest(
            query="policyresources | where type =~ 'microsoft.policyinsights/policystates' "
            "| extend complianceState = tostring(properties.complianceState), resourceId = tostring(properties.resourceId), "
            "policyAssignmentId = tostring(properties.policyAssignmentId) "
            "| where complianceState =~ 'NonCompliant' and resourceId contains '/providers/microsoft.containerservice/managedclusters/' "
            "| summarize count() by policyAssignmentId | order by policyAssignmentId asc",
            subscriptions=[TEST_SUB],
            options=QueryRequestOptions(result_format="objectArray"),
        )
    )
    counts = {row["policyAssignmentId"]: row["count_"] for row in result.data}
    in_sub = [c for c in policy_estate()["clusters"] if c["id"].split("/")[2] == TEST_SUB]
    assert counts == {P1_ASSIGNMENT: len(in_sub), P3_ASSIGNMENT: 5}  # no cluster has a backup extension yet


def test_clean_remediation_fixes_every_noncompliant_cluster_in_scope(emulator, mgmt_client):
    """Issue 4's must-show on a clean run: the task ends Succeeded, every cluster that was NonCompliant in its
    scope carries a Succeeded backup extension, P3 (and P1) flip to Compliant, PolicyStateChanged is emitted."""
    estate = policy_estate()
    estate["clusters"] = [
        c for c in estate["clusters"] if c["id"].rsplit("/", 1)[-1] not in ("aks-stopped", "Tagged_Bad")
    ]
    emulator.reset(estate)
    emulator.admin.request("PATCH", "/policy/settings", {"remediation": {"acceptS": 0.05, "pollS": 0.05}})
    emulator.admin.request(
        "POST",
        "/eventgrid/subscriptions",
        {
            "name": "policy-events",
            "filter": {"includedEventTypes": ["Microsoft.PolicyInsights.PolicyStateChanged"]},
        },
    )
    client = mgmt_client(PolicyInsightsClient)
    before = {
        s.resource_id
        for s in states(client, policyAssignmentId=P3_ASSIGNMENT, complianceState="NonCompliant")
    }
    assert {r.rsplit("/", 1)[-1] for r in before} == {"aks1", "tagged-a", "tagged-b"}
    client.remediations.create_or_update_at_subscription(
        "fix-clean", Remediation(policy_assignment_id=P3_ASSIGNMENT)
    )
    done = wait_for(
        lambda: (
            (r := client.remediations.get_at_subscription("fix-clean")).provisioning_state
            in ("Succeeded", "Failed")
            and r
        )
    )
    assert done.provisioning_state == "Succeeded"
    assert (
        done.deployment_status.total_deployments
        == done.deployment_status.successful_deployments
        == len(before)
    )
    assert done.deployment_status.failed_deployments == 0
    deployed = {
        d.remediated_resource_id.lower()
        for d in client.remediations.list_deployments_at_subscription("fix-clean")
    }
    assert deployed == {r.lower() for r in before}
    ext_client = mgmt_client(SourceControlConfigurationClient)
    for cluster_id in before:
        parts = cluster_id.split("/")
        ext = ext_client.extensions.get(
            parts[4], "Microsoft.ContainerService", "managedClusters", parts[-1], "azure-aks-backup"
        )
        assert ext.extension_type == "microsoft.dataprotection.kubernetes"
        assert ext.provisioning_state == "Succeeded"
    assert not states(client, policyAssignmentId=P3_ASSIGNMENT, complianceState="NonCompliant")
    for assignment in (P3_ASSIGNMENT, P1_ASSIGNMENT):
        now = {s.resource_id: s.compliance_state for s in states(client, policyAssignmentId=assignment)}
        assert {now[r] for r in before} == {"Compliant"}, assignment

    def compliant_events():
        events = emulator.admin.request("GET", "/eventgrid/subscriptions/policy-events/events")["value"]
        subjects = {
            e["subject"].lower()
            for e in events
            if e["data"]["complianceState"] == "Compliant"
            and e["data"]["policyAssignmentId"].lower() == P3_ASSIGNMENT.lower()
        }
        return events if subjects == {r.lower() for r in before} else None

    changed = wait_for(compliant_events)
    assert all(e["eventType"] == "Microsoft.PolicyInsights.PolicyStateChanged" for e in changed)


def test_remediation_deployment_fails_on_an_arm64_only_cluster(policy_emulator, mgmt_client):
    """The DINE deployment hits the same install rule as a direct PUT: no Linux amd64 pool → Failed."""
    arm_id = f"{BASE}/tagged-arm"
    policy_emulator.admin.put_resources(
        {
            "clusters": [
                {
                    "id": arm_id,
                    "location": "eastus",
                    "tags": {"backup": "yes"},
                    "pools": [{"osType": "Linux", "vmSize": "Standard_D4ps_v5"}],
                }
            ]
        }
    )
    client = mgmt_client(PolicyInsightsClient)
    client.remediations.create_or_update_at_resource(
        arm_id, "fix-arm", Remediation(policy_assignment_id=P3_ASSIGNMENT)
    )
    done = wait_for(
        lambda: (
            (r := client.remediations.get_at_resource(arm_id, "fix-arm")).provisioning_state
            in ("Succeeded", "Failed")
            and r
        )
    )
    assert done.provisioning_state == "Failed"
    (deployment,) = client.remediations.list_deployments_at_resource(arm_id, "fix-arm")
    assert deployment.status == "Failed" and deployment.error.code == "ExtensionOperationFailed"
    assert "no Linux amd64 node pool" in deployment.error.message
