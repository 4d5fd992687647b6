"""The emulator's Resource Graph KQL subset: semantics that the product's inventory queries rely on."""

from __future__ import annotations

import pytest

from emulator.kql import KqlError, KqlSyntaxError, UnsupportedKqlError, compile_query, rows_of

SUB = "00000000-0000-0000-0000-000000000001"


def cluster(
    name: str, *, rg: str = "rg1", location: str = "eastus", tags: dict | None = None, state="Succeeded"
):
    return {
        "id": f"/subscriptions/{SUB}/resourceGroups/{rg}/providers/Microsoft.ContainerService/"
        f"managedClusters/{name}",
        "name": name,
        "type": "microsoft.containerservice/managedclusters",
        "location": location,
        "resourceGroup": rg,
        "subscriptionId": SUB,
        "tags": tags or {},
        "properties": {"provisioningState": state, "powerState": {"code": "Running"}},
    }


def extension(cluster_row: dict, *, ext_type="microsoft.dataprotection.kubernetes", state="Succeeded"):
    return {
        "id": cluster_row["id"] + "/providers/Microsoft.KubernetesConfiguration/extensions/azure-aks-backup",
        "name": "azure-aks-backup",
        "type": "microsoft.kubernetesconfiguration/extensions",
        "location": cluster_row["location"],
        "resourceGroup": cluster_row["resourceGroup"],
        "subscriptionId": SUB,
        "properties": {"ExtensionType": ext_type, "ProvisioningState": state},
    }


A = cluster("aks-a", tags={"Backup": "Yes", "env": "prod"})
B = cluster("AKS-B", rg="RG2", location="westeurope", tags={"backup": "no"})
C = cluster("aks-c", state="Creating")
D = cluster("aks-d")
TABLES = {
    "resources": [A, B, C, D],
    "kubernetesconfigurationresources": [
        extension(A),
        extension(B, state="Failed"),
        extension(D, ext_type="microsoft.azuremonitor.containers"),
    ],
}

WITHOUT_BACKUP = """
resources
| where type =~ 'Microsoft.ContainerService/managedClusters'
| extend clusterId = tolower(id)
| project clusterId, name
| join kind=leftouter (
    KubernetesConfigurationResources
    | where type == 'microsoft.kubernetesconfiguration/extensions'
    | where properties.ExtensionType == 'microsoft.dataprotection.kubernetes'
    | where tostring(properties.ProvisioningState) == "Succeeded"
    | parse tolower(id) with clusterId '/providers/microsoft.kubernetesconfiguration/extensions' *
    | project clusterId
  ) on clusterId
| where clusterId1 == ''   // no Succeeded backup extension
| project clusterId, name
| order by name asc
"""


def run(query: str, tables=TABLES) -> list[dict]:
    return rows_of(compile_query(query), tables)


def test_leftouter_join_finds_clusters_without_succeeded_extension():
    rows = run(WITHOUT_BACKUP)
    assert [r["name"] for r in rows] == ["AKS-B", "aks-c", "aks-d"]
    assert rows[0]["clusterId"] == B["id"].lower()
    assert list(rows[0]) == ["clusterId", "name"]


def test_join_suffixes_duplicate_right_columns_and_fills_unmatched_with_empty_strings():
    rows = run(
        "resources | extend clusterId = tolower(id) | project clusterId, name "
        "| join kind=leftouter (kubernetesconfigurationresources "
        "| parse tolower(id) with clusterId '/providers/microsoft.kubernetesconfiguration/' * "
        "| project clusterId, name) on clusterId "
        "| order by name asc"
    )
    assert list(rows[0]) == ["clusterId", "name", "clusterId1", "name1"]
    by_name = {r["name"]: r for r in rows}
    assert by_name["aks-c"]["clusterId1"] == "" and by_name["aks-c"]["name1"] == ""
    assert by_name["aks-a"]["name1"] == "azure-aks-backup"


def test_inner_and_default_innerunique_join_drop_unmatched_rows():
    inner = run(
        "resources | extend cid = tolower(id) | join kind=inner (kubernetesconfigurationresources "
        "| parse tolower(id) with cid '/providers/microsoft.kubernetesconfiguration/' * | project cid) on cid"
    )
    assert sorted(r["name"] for r in inner) == ["AKS-B", "aks-a", "aks-d"]
    default = run(
        "resources | extend cid = tolower(id) | join (kubernetesconfigurationresources "
        "| parse tolower(id) with cid '/providers/microsoft.kubernetesconfiguration/' * | project cid) on cid"
    )
    assert len(default) == 3


def test_join_on_left_right_pair():
    rows = run(
        "resources | extend a = tolower(id) | project a | join kind=inner (kubernetesconfigurationresources "
        "| parse tolower(id) with b '/providers/microsoft.kubernetesconfiguration/' * | project b) "
        "on $left.a == $right.b"
    )
    assert len(rows) == 3 and all(r["a"] == r["b"] for r in rows)


@pytest.mark.parametrize(
    ("where", "expected"),
    [
        ("name == 'aks-a'", ["aks-a"]),
        ("name == 'AKS-A'", []),
        ("name =~ 'AKS-A'", ["aks-a"]),
        ("name != 'aks-a'", ["AKS-B", "aks-c", "aks-d"]),
        ("name !~ 'aks-b'", ["aks-a", "aks-c", "aks-d"]),
        ("name in ('aks-a', 'aks-b')", ["aks-a"]),
        ("name in~ ('aks-a', 'aks-b')", ["AKS-B", "aks-a"]),
        ("name !in~ ('aks-a', 'aks-b')", ["aks-c", "aks-d"]),
        ("name !in ('aks-a')", ["AKS-B", "aks-c", "aks-d"]),
        ("id has 'rg2'", ["AKS-B"]),
        ("id has 'rg'", []),
        ("id contains 'rg'", ["AKS-B", "aks-a", "aks-c", "aks-d"]),
        ("id !contains 'RG2'", ["aks-a", "aks-c", "aks-d"]),
        ("name startswith 'AKS'", ["AKS-B", "aks-a", "aks-c", "aks-d"]),
        ("name !startswith 'aks-a'", ["AKS-B", "aks-c", "aks-d"]),
        ("name endswith '-D'", ["aks-d"]),
        ("tags['Backup'] =~ 'yes'", ["aks-a"]),
        ("tags['backup'] =~ 'yes'", []),
        ("tags.Backup == 'Yes' and tags.env == 'prod'", ["aks-a"]),
        ("isempty(tags.Backup)", ["AKS-B", "aks-c", "aks-d"]),
        ("isnotempty(tags['backup']) or location == 'westeurope'", ["AKS-B"]),
        ("not(properties.provisioningState == 'Succeeded')", ["aks-c"]),
        ("properties.powerState.code == 'Running' and not(name == 'aks-d')", ["AKS-B", "aks-a", "aks-c"]),
        ("isempty(properties.missing.deeper)", ["AKS-B", "aks-a", "aks-c", "aks-d"]),
        ("properties.missing == ''", []),
        ("toupper(location) == 'WESTEUROPE'", ["AKS-B"]),
        ("resourceGroup =~ 'rg2' or (location == 'eastus' and name == 'aks-c')", ["AKS-B", "aks-c"]),
    ],
)
def test_where_operators(where, expected):
    rows = run(f"resources | where {where} | project name | order by name asc")
    assert [r["name"] for r in rows] == expected


def test_string_literals_with_escapes():
    tables = {"resources": [cluster("a"), cluster("b", tags={"q": 'it\'s "x" \\ y'})]}
    assert [
        r["name"] for r in run("resources | where tags.q == 'it\\'s \"x\" \\\\ y' | project name", tables)
    ] == ["b"]
    assert [
        r["name"] for r in run('resources | where tags.q == "it\'s \\"x\\" \\\\ y" | project name', tables)
    ] == ["b"]
    verbatim = {"resources": [cluster("v", tags={"p": "c:\\temp\\x"})]}
    assert [
        r["name"] for r in run("resources | where tags.p == @'c:\\temp\\x' | project name", verbatim)
    ] == ["v"]


def test_project_auto_names_and_dynamic_paths():
    rows = run(
        "resources | where name == 'aks-a' | project name, properties.provisioningState, tostring(tags.env)"
    )
    assert rows == [{"name": "aks-a", "properties_provisioningState": "Succeeded", "tags_env": "prod"}]


def test_summarize_count_by_order_and_take():
    rows = run("resources | summarize count() by location | order by count_ desc")
    assert rows == [{"location": "eastus", "count_": 3}, {"location": "westeurope", "count_": 1}]
    named = run("resources | summarize n = count() by loc = tolower(location) | order by loc asc | take 1")
    assert named == [{"loc": "eastus", "n": 3}]
    total = run("resources | where name == 'none' | summarize count()")
    assert total == [{"count_": 0}]
    by_path = run(
        "resources | summarize count() by tostring(properties.provisioningState) | order by count_ asc"
    )
    assert by_path[0] == {"properties_provisioningState": "Creating", "count_": 1}


def test_order_default_is_descending_and_limit():
    rows = run("resources | project name | order by name | limit 2")
    assert [r["name"] for r in rows] == ["aks-d", "aks-c"]


def test_parse_without_match_gives_empty_string_and_row_is_kept():
    rows = run("resources | parse name with 'zzz' rest | project name, rest")
    assert len(rows) == 4 and all(r["rest"] == "" for r in rows)
    rows = run(
        "resources | where name == 'aks-a' | parse id with '/subscriptions/' sub '/resourceGroups/' rg '/' *"
    )
    assert rows[0]["sub"] == SUB and rows[0]["rg"] == "rg1"


def test_table_names_are_case_insensitive_and_count_operator():
    assert run("Resources | count") == [{"Count": 4}]
    assert run("RESOURCES | distinct location | order by location asc") == [
        {"location": "eastus"},
        {"location": "westeurope"},
    ]


@pytest.mark.parametrize(
    ("query", "construct"),
    [
        ("resources | mv-expand tags", "mv-expand"),
        ("resources | project-away tags", "project-away"),
        ("resources | union resources", "union"),
        ("resources | top 5 by name", "top"),
        ("resources | extend x = bag_keys(tags)", "bag_keys()"),
        ("resources | join kind=fullouter (resources) on id", "join kind=fullouter"),
        ("resourcechanges | project id", "resourcechanges"),
        ("resources | summarize dcount(name) by location", "dcount"),
    ],
)
def test_unsupported_constructs_are_named(query, construct):
    with pytest.raises(UnsupportedKqlError) as err:
        compile_query(query)
    assert construct in str(err.value)


@pytest.mark.parametrize(
    "query",
    [
        "resources | where",
        "resources | where name = 'x'",
        "resources | where name == 'unterminated",
        "resources | project nosuchcolumn",
        "resources | where properties == ",
        "",
    ],
)
def test_bad_queries_raise(query):
    with pytest.raises(KqlError):
        compile_query(query)


def test_unknown_column_is_an_error_not_empty_rows():
    with pytest.raises(KqlError, match="clusterId"):
        compile_query("resources | where clusterId == ''")


def test_syntax_error_mentions_position():
    with pytest.raises(KqlSyntaxError, match="line 1"):
        compile_query("resources | where name == 'a' 'b'")
