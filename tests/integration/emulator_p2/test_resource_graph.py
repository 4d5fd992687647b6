# ruff: noqa: E501
"""azure-mgmt-resourcegraph, unchanged, against the emulator: paging, KQL subset, quota, official samples."""

from __future__ import annotations

import json

import pytest
from azure.core.exceptions import HttpResponseError
from azure.mgmt.resourcegraph import ResourceGraphClient
from azure.mgmt.resourcegraph.models import QueryRequest, QueryRequestOptions, QueryResponse

from tests.integration.emulator.helpers import send_raw

pytestmark = pytest.mark.integration

SUBS = [f"{i:08d}-aaaa-bbbb-cccc-000000000000" for i in range(5)]

WITHOUT_BACKUP = """
resources
| where type =~ 'microsoft.containerservice/managedclusters'
| extend clusterId = tolower(id)
| project id, clusterId, name, location
| join kind=leftouter (
    kubernetesconfigurationresources
    | where type =~ 'microsoft.kubernetesconfiguration/extensions'
    | where properties.ExtensionType =~ 'microsoft.dataprotection.kubernetes'
    | where tostring(properties.ProvisioningState) == 'Succeeded'
    | parse tolower(id) with clusterId '/providers/microsoft.kubernetesconfiguration/extensions/' *
    | project clusterId
  ) on clusterId
| where isempty(clusterId1)
| project id, name, location
"""


def big_estate(n: int) -> dict:
    clusters, extensions = [], []
    for i in range(n):
        sub = SUBS[i % len(SUBS)]
        cid = f"/subscriptions/{sub}/resourceGroups/rg{i % 7}/providers/Microsoft.ContainerService/managedClusters/aks-{i:05d}"
        clusters.append({"id": cid, "location": ["eastus", "westeurope"][i % 2], "tags": {"n": str(i)}})
        if i % 3 == 0:
            extensions.append(
                {
                    "clusterId": cid,
                    "name": "azure-aks-backup",
                    "extensionType": "microsoft.dataprotection.kubernetes",
                    "provisioningState": "Succeeded" if i % 2 else "Failed",
                }
            )
        elif i % 3 == 1:
            extensions.append(
                {"clusterId": cid, "name": "monitor", "extensionType": "microsoft.azuremonitor.containers"}
            )
    return {
        "subscriptions": [
            {"subscriptionId": s, "resourceGroups": [{"name": f"rg{j}"} for j in range(7)]} for s in SUBS
        ],
        "clusters": clusters,
        "extensions": extensions,
        "managementGroups": {"ProductionMG": SUBS[:2]},
    }


@pytest.fixture
def graph(emulator):
    emulator.reset(big_estate(2500))
    return ResourceGraphClient(emulator.credential(), **emulator.client_kwargs())


def page_all(client, query, **scope):
    rows, token, pages = [], None, 0
    while True:
        result = client.resources(
            QueryRequest(query=query, options=QueryRequestOptions(top=1000, skip_token=token), **scope)
        )
        rows.extend(result.data)
        pages += 1
        token = result.skip_token
        if not token:
            return rows, pages, result


def test_paging_through_2500_clusters_with_skip_tokens(graph, emulator):
    emulator.admin.request("PATCH", "/graph", {"quota": {"enabled": False}})
    rows, pages, last = page_all(
        graph,
        "resources | where type =~ 'Microsoft.ContainerService/managedClusters' | project id, name",
        subscriptions=SUBS,
    )
    assert pages == 3 and len(rows) == 2500 and last.total_records == 2500
    assert len({r["id"] for r in rows}) == 2500
    assert emulator.admin.request("GET", "/graph")["queriesRun"] == 1  # later pages come from the cache


def test_query_without_succeeded_backup_extension_matches_the_estate(graph, emulator):
    emulator.admin.request("PATCH", "/graph", {"quota": {"enabled": False}})
    rows, _, _ = page_all(graph, WITHOUT_BACKUP, subscriptions=SUBS)
    estate = big_estate(2500)
    good = {
        e["clusterId"].lower()
        for e in estate["extensions"]
        if e["extensionType"] == "microsoft.dataprotection.kubernetes"
        and e.get("provisioningState") == "Succeeded"
    }
    expected = {c["id"].lower() for c in estate["clusters"]} - good
    assert {r["id"].lower() for r in rows} == expected
    assert len(expected) == 2500 - len(good) and len(good) > 100
    mg_rows, _, _ = page_all(graph, WITHOUT_BACKUP, management_groups=["productionmg"])
    assert {r["id"].lower() for r in mg_rows} == {i for i in expected if i.split("/")[2] in SUBS[:2]}


def test_no_skip_token_without_id_and_table_format(graph, emulator):
    result = graph.resources(
        QueryRequest(
            query="resources | project name", subscriptions=SUBS, options=QueryRequestOptions(top=10)
        )
    )
    assert result.skip_token is None and result.result_truncated == "true" and result.count == 10
    table = graph.resources(
        QueryRequest(
            query="resources | summarize count() by location | order by location asc",
            subscriptions=SUBS,
            options=QueryRequestOptions(result_format="table"),
        )
    )
    assert [c["name"] for c in table.data["columns"]] == ["location", "count_"]
    assert table.data["rows"] == [["eastus", 1250], ["westeurope", 1250]]


@pytest.mark.parametrize(
    "query",
    [
        "resources | mv-expand tags",
        "resources | extend x = bag_keys(tags)",
        "resourcechanges",
        "resources | where nosuch == 1",
    ],
)
def test_unsupported_or_invalid_kql_is_400_in_arm_error_shape(graph, query):
    with pytest.raises(HttpResponseError) as err:
        graph.resources(QueryRequest(query=query, subscriptions=SUBS))
    assert err.value.status_code == 400
    body = json.loads(err.value.response.text())
    assert body["error"]["code"] == "BadRequest"
    assert body["error"]["details"][0]["code"] == "InvalidQuery"


def test_quota_headers_and_429(graph, emulator):
    headers = []

    def run():
        return graph.resources(
            QueryRequest(query="resources | project id | take 1", subscriptions=SUBS),
            cls=lambda resp, des, _: (des, resp.http_response.headers),
        )

    for _ in range(15):
        headers.append(run()[1])
    assert [int(h["x-ms-user-quota-remaining"]) for h in headers] == list(range(14, -1, -1))
    assert headers[0]["x-ms-user-quota-resets-after"] in ("00:00:05", "00:00:04")
    with pytest.raises(HttpResponseError) as err:
        run()
    assert err.value.status_code == 429
    assert err.value.response.headers["x-ms-user-quota-remaining"] == "0"
    other = ResourceGraphClient(emulator.credential("someone-else"), **emulator.client_kwargs())
    assert other.resources(QueryRequest(query="resources | take 1", subscriptions=SUBS)).count == 1


def _sample_files(azure_examples):
    return sorted((azure_examples / "resourcegraph").glob("*.json"))


def test_official_resource_graph_samples_are_accepted(emulator, azure_examples):
    emulator.admin.request("PATCH", "/graph", {"quota": {"enabled": False}})
    sample_sub = "cfbbd179-59d2-4052-aa06-9270a38aa9d6"
    emulator.reset(
        {
            "subscriptions": [{"subscriptionId": sample_sub, "resourceGroups": [{"name": "RG1"}]}],
            "clusters": [
                {
                    "id": f"/subscriptions/{sample_sub}/resourceGroups/RG1/providers/Microsoft.ContainerService/managedClusters/test-{i}",
                    "location": "eastus",
                }
                for i in range(5)
            ],
            "managementGroups": {
                "ProductionMG": [sample_sub],
                "e927f598-c1d4-4f72-8541-95d83a6a4ac8": [sample_sub],
            },
        }
    )
    emulator.admin.request("PATCH", "/graph", {"quota": {"enabled": False}})
    client = ResourceGraphClient(emulator.credential(), **emulator.client_kwargs())
    first_token = None
    for path in _sample_files(azure_examples):
        sample = json.loads(path.read_text())
        request = dict(sample["parameters"]["query"])
        options = request.pop("options", {})
        expected = sample["responses"]["200"]["body"]
        if "$skipToken" in options:
            options = {**options, "$skipToken": first_token}
        # the sample's own body and api-version, options exactly as given (none in ResourcesBasicQuery: the
        # server's default resultFormat for that api-version decides the shape)
        body = {**request, **({"options": options} if options else {})}
        response = send_raw(
            client,
            "POST",
            "/providers/Microsoft.ResourceGraph/resources",
            sample["parameters"]["api-version"],
            body,
        )
        assert response.status_code == 200, (path.name, response.text())
        assert isinstance(response.json()["data"], list) == isinstance(expected["data"], list), path.name
        result = QueryResponse.deserialize(response.json())
        assert set(expected) - {"$skipToken"} <= set(result.as_dict(keep_readonly=True)) | {
            "totalRecords",
            "resultTruncated",
        }, path.name
        assert result.result_truncated == "false", path.name
        if expected["data"]:
            expected_columns = set(expected["data"][0])
            if "properties_storageProfile_osDisk_osType" in expected_columns:
                # KQL names count() "count_" (the spec sample shows "count"); the derived path column matches.
                expected_columns = expected_columns - {"count"} | {"count_"}
            for row in result.data:
                assert set(row) == expected_columns, path.name
        if "$top" in options:
            assert result.count == 3 and result.skip_token
            first_token = result.skip_token


@pytest.mark.parametrize(
    ("api_version", "shape"),
    [
        ("2019-04-01", "table"),
        ("2021-03-01", "objectArray"),
        ("2022-10-01", "objectArray"),
        ("2024-04-01", "objectArray"),
    ],
)
def test_default_result_format_follows_the_api_version(graph, emulator, api_version, shape):
    """No options: Microsoft's ResourcesBasicQuery examples answer a table at 2019-04-01 and an object array
    from 2021-03-01 on; an explicit resultFormat always wins."""
    emulator.admin.request("PATCH", "/graph", {"quota": {"enabled": False}})
    client = ResourceGraphClient(emulator.credential(), **emulator.client_kwargs())
    body = {"subscriptions": SUBS, "query": "resources | project id, name | take 2"}
    data = send_raw(client, "POST", "/providers/Microsoft.ResourceGraph/resources", api_version, body).json()[
        "data"
    ]
    if shape == "table":
        assert [c["name"] for c in data["columns"]] == ["id", "name"] and len(data["rows"]) == 2
    else:
        assert isinstance(data, list) and set(data[0]) == {"id", "name"}
    flipped = "objectArray" if shape == "table" else "table"
    body["options"] = {"resultFormat": flipped}
    data = send_raw(client, "POST", "/providers/Microsoft.ResourceGraph/resources", api_version, body).json()[
        "data"
    ]
    assert isinstance(data, list) == (flipped == "objectArray")


def test_the_products_inventory_queries_run_in_the_subset(graph, emulator):
    """Contract with remediator.core.inventory_query: its KQL compiles here and returns the estate's answer."""
    from remediator.core.inventory_query import build_inventory_query, build_policy_summary_query

    emulator.admin.request("PATCH", "/graph", {"quota": {"enabled": False}})
    rows, _, _ = page_all(
        graph, build_inventory_query(regions=[("eastus", "scope.regions[0]")]), subscriptions=SUBS
    )
    estate = big_estate(2500)
    good = {
        e["clusterId"].lower()
        for e in estate["extensions"]
        if e["extensionType"] == "microsoft.dataprotection.kubernetes"
        and e.get("provisioningState") == "Succeeded"
    }
    expected = {c["id"].lower() for c in estate["clusters"] if c["location"] == "eastus"} - good
    assert {r["id"].lower() for r in rows} == expected
    failed = {e["clusterId"].lower() for e in estate["extensions"] if e.get("provisioningState") == "Failed"}
    assert (
        failed & expected
        and {r["id"].lower() for r in rows if r["extensionState"] == "Failed"} == failed & expected
    )
    summary = graph.resources(
        QueryRequest(
            query=build_policy_summary_query(),
            subscriptions=SUBS,
            options=QueryRequestOptions(result_format="objectArray"),
        )
    )
    assert summary.data == []  # no policy assignments in this estate
