# ruff: noqa: E501
"""Resource Graph request handling in the emulator: scope, options, skip tokens, quota windows."""

from __future__ import annotations

import pytest

from emulator.clock import ManualClock
from emulator.estate import apply_estate
from emulator.graph.service import GraphRequestError, GraphService
from emulator.state import EmulatorState

SUB_A = "aaaaaaaa-0000-0000-0000-000000000000"
SUB_B = "bbbbbbbb-0000-0000-0000-000000000000"


@pytest.fixture
def service():
    clock = ManualClock()
    state = EmulatorState(clock=clock, estate_loader=apply_estate)
    clusters = []
    for sub in (SUB_A, SUB_B):
        for i in range(5):
            clusters.append(
                {
                    "id": f"/subscriptions/{sub}/resourceGroups/RG/providers/Microsoft.ContainerService/managedClusters/c{i}",
                    "location": "East US",
                }
            )
    state.load_estate(
        {
            "subscriptions": [{"subscriptionId": s} for s in (SUB_A, SUB_B)],
            "clusters": clusters,
            "managementGroups": {"mg1": [SUB_B]},
        }
    )
    svc = GraphService(state, management_groups=lambda: state.estate["managementGroups"])
    return svc, clock


def test_rows_look_like_resource_graph(service):
    svc, _ = service
    result = svc.query({"query": "resources | take 1", "options": {"resultFormat": "objectArray"}})
    row = result["data"][0]
    assert row["type"] == "microsoft.containerservice/managedclusters"
    assert row["location"] == "eastus" and row["resourceGroup"] == "rg"
    # the id as AKS returns it: /resourcegroups/ lower-cased, the group name's casing kept
    assert "/resourcegroups/RG/" in row["id"] and row["tenantId"]


def test_scope_by_subscriptions_or_management_groups(service):
    svc, _ = service
    assert svc.query({"query": "resources | count", "subscriptions": [SUB_A.upper()]})["data"]["rows"] == [
        [5]
    ]
    assert svc.query({"query": "resources | count", "managementGroups": ["MG1"]})["data"]["rows"] == [[5]]
    assert svc.query({"query": "resources | count"})["data"]["rows"] == [[10]]


@pytest.mark.parametrize(
    "body",
    [
        {"query": "resources", "subscriptions": [SUB_A], "managementGroups": ["mg1"]},
        {"query": "resources", "managementGroups": ["nope"]},
        {"query": "resources", "options": {"$top": 0}},
        {"query": "resources", "options": {"$top": 1001}},
        {"query": "resources", "options": {"$skipToken": "not-a-token"}},
        {"query": "resources", "options": {"$skipToken": "eyIkaWQiOiJ4IiwiJHNraXAiOjF9"}},
        {"query": "resources", "options": {"resultFormat": "csv"}},
        {"query": 42},
    ],
)
def test_bad_requests_are_400(service, body):
    svc, _ = service
    with pytest.raises(GraphRequestError) as err:
        svc.query(body)
    assert err.value.status == 400


def test_skip_and_skip_token_paging(service):
    svc, _ = service
    first = svc.query(
        {"query": "resources | project id, name | order by id asc", "options": {"$top": 4, "$skip": 1}}
    )
    assert first["count"] == 4 and first["totalRecords"] == 10
    second = svc.query(
        {"query": "ignored when a token is given", "options": {"$top": 4, "$skipToken": first["$skipToken"]}}
    )
    third = svc.query({"query": "x", "options": {"$top": 4, "$skipToken": second["$skipToken"]}})
    ids = [r[0] for page in (first, second, third) for r in page["data"]["rows"]]
    assert len(ids) == 9 and len(set(ids)) == 9 and "$skipToken" not in third
    assert svc.queries_run == 1


def test_quota_window_resets_after_five_seconds(service):
    svc, clock = service
    for expected in range(14, -1, -1):
        assert svc.charge("p")["x-ms-user-quota-remaining"] == str(expected)
    with pytest.raises(GraphRequestError) as err:
        svc.charge("p")
    assert err.value.status == 429 and "Retry-After" not in err.value.headers
    assert err.value.headers["x-ms-user-quota-resets-after"] == "00:00:05"
    svc.charge("q")  # another principal has its own quota
    clock.advance(5)
    assert svc.charge("p")["x-ms-user-quota-remaining"] == "14"
    svc.quota.update({"limit": 2, "retryAfterHeader": True})
    svc.charge("r")
    svc.charge("r")
    with pytest.raises(GraphRequestError) as err:
        svc.charge("r")
    assert err.value.headers["Retry-After"] == "5"
    svc.quota.update({"enabled": False})
    # switched off: never refused, and the headers (which Azure always sends) report a full window
    for _ in range(3):
        assert svc.charge("r") == {
            "x-ms-user-quota-remaining": "1",
            "x-ms-user-quota-resets-after": "00:00:05",
            "x-ms-ratelimit-remaining-tenant-resource-requests": "1",
        }


def test_extension_rows_use_resource_graph_casing():
    state = EmulatorState(clock=ManualClock(), estate_loader=apply_estate)
    cid = f"/subscriptions/{SUB_A}/resourceGroups/rg/providers/Microsoft.ContainerService/managedClusters/c"
    state.load_estate(
        {
            "subscriptions": [{"subscriptionId": SUB_A}],
            "clusters": [{"id": cid, "location": "eastus"}],
            "extensions": [
                {
                    "clusterId": cid,
                    "name": "azure-aks-backup",
                    "extensionType": "microsoft.dataprotection.kubernetes",
                    "configurationSettings": {"configuration.backupStorageLocation.bucket": "b"},
                }
            ],
        }
    )
    svc = GraphService(state)
    query = (
        "kubernetesconfigurationresources | project id, t = tostring(properties.ExtensionType), "
        "s = tostring(properties.ProvisioningState), ns = tostring(properties.Scope.cluster.ReleaseNamespace), "
        "camel = tostring(properties.extensionType), "
        "bucket = tostring(properties.ConfigurationSettings['configuration.backupStorageLocation.bucket'])"
    )
    row = svc.query({"query": query, "options": {"resultFormat": "objectArray"}})["data"][0]
    assert row["t"] == "microsoft.dataprotection.kubernetes" and row["s"] == "Succeeded"
    assert row["ns"] and row["camel"] == "" and row["bucket"] == "b"
    svc.set_casing("both")
    row = svc.query({"query": query, "options": {"resultFormat": "objectArray"}})["data"][0]
    assert row["camel"] == "microsoft.dataprotection.kubernetes"


def test_role_assignments_are_rows_of_authorizationresources():
    clock = ManualClock()
    state = EmulatorState(clock=clock, estate_loader=apply_estate)
    rg_scope = f"/subscriptions/{SUB_A}/resourceGroups/RG"
    mg_scope = "/providers/Microsoft.Management/managementGroups/mg1"

    def assignment(scope, name, principal):
        return {
            "id": f"{scope}/providers/Microsoft.Authorization/roleAssignments/{name}",
            "name": name,
            "type": "Microsoft.Authorization/roleAssignments",
            "properties": {
                "roleDefinitionId": f"/subscriptions/{SUB_A}/providers/Microsoft.Authorization/roleDefinitions/ba92f5b4-2d11-453d-a403-e96b0029c9fe",
                "principalId": principal,
                "principalType": "ServicePrincipal",
                "scope": scope,
            },
        }

    state.load_estate(
        {
            "subscriptions": [
                {"subscriptionId": s, "resourceGroups": [{"name": "RG"}]} for s in (SUB_A, SUB_B)
            ],
            "roleAssignments": [
                assignment(rg_scope, "11111111-1111-1111-1111-111111111111", "p1"),
                assignment(mg_scope, "22222222-2222-2222-2222-222222222222", "p2"),
            ],
        }
    )
    svc = GraphService(state, management_groups=lambda: {"mg1": [SUB_A]})
    query = (
        "authorizationresources | where type =~ 'microsoft.authorization/roleassignments'"
        " | project id, subscriptionId, resourceGroup, principalId = tostring(properties.principalId),"
        " scope = tostring(properties.scope)"
    )
    scoped = svc.query({"query": query, "subscriptions": [SUB_A], "options": {"resultFormat": "objectArray"}})
    assert [
        (r["subscriptionId"], r["resourceGroup"], r["principalId"], r["scope"]) for r in scoped["data"]
    ] == [(SUB_A, "rg", "p1", rg_scope)]
    # an assignment made at a management group belongs to no subscription: only a tenant-wide query sees it
    tenant = svc.query({"query": query, "options": {"resultFormat": "objectArray"}})
    assert sorted(r["principalId"] for r in tenant["data"]) == ["p1", "p2"]
    assert (
        svc.query({"query": query, "subscriptions": [SUB_B], "options": {"resultFormat": "objectArray"}})[
            "data"
        ]
        == []
    )
