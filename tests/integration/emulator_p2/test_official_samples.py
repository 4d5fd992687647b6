# ruff: noqa: E501
"""The official Policy Insights examples (azure-rest-api-specs) are accepted and reproduced by the emulator.

Requests are replayed with the sample's own parameters (ids swapped for the test estate's); responses must carry
every field of the sample's response (the emulator may add fields, never drop them).
"""

from __future__ import annotations

import json
import time

import pytest

from emulator.model.ids import key_of
from tests.fixtures.emulator import TEST_SUB
from tests.integration.emulator_p2.conftest import P3_ASSIGNMENT, arm, wait_for

pytestmark = pytest.mark.integration

CLUSTER = f"/subscriptions/{TEST_SUB}/resourceGroups/rg1/providers/Microsoft.ContainerService/managedClusters/tagged-a"
SAMPLES = [
    "PolicyStates_QuerySubscriptionScope.json",
    "PolicyStates_QueryResourceScope.json",
    "PolicyStates_FilterAndMultipleGroups.json",
    "PolicyStates_TriggerSubscriptionEvaluation.json",
    "Remediations_CreateResourceScope.json",
    "Remediations_CreateSubscriptionScope.json",
    "Remediations_GetResourceScope.json",
    "Remediations_ListDeploymentsResourceScope.json",
]


def test_every_policyinsights_sample_is_covered(azure_examples):
    assert sorted(p.name for p in (azure_examples / "policyinsights").glob("*.json")) == sorted(SAMPLES)


def load(azure_examples, name):
    return json.loads((azure_examples / "policyinsights" / name).read_text())


def assert_superset(actual: dict, expected: dict, where: str):
    missing = set(expected) - set(actual)
    assert not missing, f"{where}: missing {sorted(missing)}"


@pytest.mark.parametrize("name", SAMPLES[:3])
def test_policy_state_query_samples(policy_emulator, azure_examples, name):
    sample = load(azure_examples, name)
    params = sample["parameters"]
    query = {k: v for k, v in params.items() if k.startswith("$")}
    scope = CLUSTER if "resourceId" in params else f"/subscriptions/{TEST_SUB}"
    status, _, body = arm(
        policy_emulator,
        "POST",
        f"{scope}/providers/Microsoft.PolicyInsights/policyStates/{params['policyStatesResource']}/queryResults",
        api_version=params["api-version"],
        query=query,
    )
    assert status == 200, body
    expected = sample["responses"]["200"]["body"]
    assert_superset(
        body, {k: v for k, v in expected.items() if k != "@odata.nextLink" or "@odata.nextLink" in body}, name
    )
    assert body["value"], name
    for row in body["value"]:
        assert_superset(row, expected["value"][0], name)
    if "$apply" in query:
        counts = [row["NumNonCompliantResources"] for row in body["value"]]
        assert counts == sorted(counts, reverse=True)
        status, _, everything = arm(
            policy_emulator,
            "POST",
            f"/subscriptions/{TEST_SUB}/providers/Microsoft.PolicyInsights/policyStates/latest/queryResults",
            query={"$filter": "complianceState eq 'NonCompliant'"},
        )
        assert sum(counts) == len(everything["value"])
        assert set(body["value"][0]) == set(expected["value"][0])


def test_trigger_evaluation_sample(policy_emulator, azure_examples):
    sample = load(azure_examples, "PolicyStates_TriggerSubscriptionEvaluation.json")
    status, headers, _ = arm(
        policy_emulator,
        "POST",
        f"/subscriptions/{TEST_SUB}/providers/Microsoft.PolicyInsights/policyStates/latest/triggerEvaluation",
        api_version=sample["parameters"]["api-version"],
    )
    assert status == 202
    expected_headers = {k.lower() for k in sample["responses"]["202"]["headers"]} - {"code", "message"}
    assert expected_headers <= {k.lower() for k in headers}
    location = headers["Location"]
    assert "/providers/Microsoft.PolicyInsights/asyncOperationResults/" in location
    path = location.split(policy_emulator.base_url, 1)[1].split("?")[0]
    statuses = []
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        status, _, _ = arm(policy_emulator, "GET", path, api_version=sample["parameters"]["api-version"])
        statuses.append(status)
        if status == 200:
            break
        time.sleep(0.1)
    assert statuses[-1] == 200 and set(statuses) <= {200, 202}


def test_remediation_samples(policy_emulator, azure_examples):
    def replay(name, method, path, body=None):
        sample = load(azure_examples, name)
        status, _, got = arm(
            policy_emulator, method, path, body, api_version=sample["parameters"]["api-version"]
        )
        assert status in {int(s) for s in sample["responses"]}, (name, status, got)
        return sample, status, got

    create_res = load(azure_examples, "Remediations_CreateResourceScope.json")
    body = json.loads(
        json.dumps(create_res["parameters"]["parameters"]).replace(
            create_res["parameters"]["parameters"]["properties"]["policyAssignmentId"], P3_ASSIGNMENT
        )
    )
    sample, status, got = replay(
        "Remediations_CreateResourceScope.json",
        "PUT",
        f"{CLUSTER}/providers/Microsoft.PolicyInsights/remediations/storageRemediation",
        body,
    )
    assert status == 201
    expected = sample["responses"]["201"]["body"]
    assert_superset(got, expected, "create(resource)")
    assert_superset(got["properties"], expected["properties"], "create(resource).properties")
    assert_superset(got["systemData"], expected["systemData"], "create(resource).systemData")
    assert got["properties"]["provisioningState"] == "Accepted"

    sample, status, got = replay(
        "Remediations_CreateSubscriptionScope.json",
        "PUT",
        f"/subscriptions/{TEST_SUB}/providers/Microsoft.PolicyInsights/remediations/storageRemediation",
        body,
    )
    assert_superset(
        got["properties"], sample["responses"]["201"]["body"]["properties"], "create(subscription)"
    )

    path = f"{CLUSTER}/providers/Microsoft.PolicyInsights/remediations/storageRemediation"
    wait_for(lambda: arm(policy_emulator, "GET", path)[2]["properties"]["provisioningState"] == "Succeeded")
    sample, status, got = replay("Remediations_GetResourceScope.json", "GET", path)
    assert_superset(got["properties"], sample["responses"]["200"]["body"]["properties"], "get")
    assert got["properties"]["deploymentStatus"] == {
        "totalDeployments": 1,
        "successfulDeployments": 1,
        "failedDeployments": 0,
    }
    sample, status, got = replay(
        "Remediations_ListDeploymentsResourceScope.json", "POST", f"{path}/listDeployments"
    )
    assert len(got["value"]) == 1
    assert_superset(got["value"][0], sample["responses"]["200"]["body"]["value"][0], "listDeployments")
    # Policy answers ids in its own casing (the sample: /resourcegroups/, lower-cased provider): compare by key
    assert key_of(got["value"][0]["remediatedResourceId"]) == key_of(CLUSTER)
    assert got["value"][0]["status"] == "Succeeded"
    assert "/providers/Microsoft.Resources/deployments/" in got["value"][0]["deploymentId"]


@pytest.mark.parametrize("name", ["policy_state_changed.json", "policy_state_created.json"])
def test_emitted_policy_events_reproduce_the_official_samples(policy_emulator, azure_examples, name):
    sample = json.loads((azure_examples / "eventgrid" / name).read_text())[0]
    policy_emulator.admin.request("POST", "/eventgrid/subscriptions", {"name": "all"})
    policy_emulator.admin.request(
        "POST",
        "/policy/assignments",
        {"name": "backup-enabled", "scope": f"/subscriptions/{TEST_SUB}", "definition": "backup-audit"},
    )
    policy_emulator.admin.request("POST", "/policy/backupInstances", {"clusterId": CLUSTER})  # Policy 2 flips
    base = CLUSTER.rsplit("/", 1)[0]
    status, _, _ = arm(
        policy_emulator,
        "PUT",
        f"{base}/brand-new",
        {
            "location": "eastus",
            "identity": {"type": "SystemAssigned"},
            "properties": {
                "dnsPrefix": "bn",
                "agentPoolProfiles": [
                    {
                        "name": "np",
                        "count": 1,
                        "vmSize": "Standard_D2s_v5",
                        "mode": "System",
                        "osType": "Linux",
                    }
                ],
            },
        },
        api_version="2024-09-01",
    )
    assert status in (200, 201)
    events = policy_emulator.admin.request("GET", "/eventgrid/subscriptions/all/events")["value"]
    matching = [e for e in events if e["eventType"] == sample["eventType"]]
    assert matching, [e["eventType"] for e in events]
    for event in matching:
        assert set(event) == set(sample)
        assert set(event["data"]) == set(sample["data"])
        assert (
            event["topic"] == f"/subscriptions/{TEST_SUB}" and event["dataVersion"] == sample["dataVersion"]
        )
