"""The replay suite's comparison can fail: every kind of difference it claims to catch is caught, and the
leniencies it documents (opaque values, map keys, optional list-item fields, extra quota headers) are
exact."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.integration.emulator.replay import (
    Deviation,
    Interaction,
    Recording,
    compare,
    compare_headers,
    compare_shape,
    estate_for,
    load_allowed_deviations,
    parse_arm_path,
)


def places(expected: object, actual: object, **kw: object) -> list[str]:
    return [where for where, _ in compare_shape(expected, actual, **kw)]  # type: ignore[arg-type]


def test_keys_and_types() -> None:
    recorded = {"id": "x", "properties": {"a": 1, "b": None, "c": {"d": True}}}
    assert places(recorded, {"id": "y", "properties": {"a": 2.5, "b": None, "c": {"d": False}}}) == []
    assert places(recorded, {"id": "y", "properties": {"a": 1, "c": {"d": True}}}) == ["properties.b"]
    assert places(recorded, {"id": "y", "extra": 1, "properties": {"a": 1, "b": None, "c": {"d": True}}}) == [
        "extra"
    ]
    assert places(recorded, {"id": 1, "properties": {"a": "1", "b": "x", "c": []}}) == [
        "id",
        "properties.a",
        "properties.b",
        "properties.c",
    ]
    assert places(None, {}) == ["<body>"] and places({}, None) == ["<body>"]


def test_lists_take_every_recorded_item_as_the_template() -> None:
    recorded = {"value": [{"a": 1, "opt": "x"}, {"a": 2, "other": None}]}
    assert places(recorded, {"value": [{"a": 3}, {"a": 4, "opt": "y", "other": None}]}) == []
    assert places(recorded, {"value": [{"a": 3, "new": 1}]}) == ["value[].new"]
    assert places(recorded, {"value": [{"opt": "x"}]}) == ["value[].a"]
    assert places(recorded, {"value": []}) == ["value"]
    assert places({"value": []}, {"value": [{"a": 1}]}) == ["value"]
    assert places({"value": []}, {"value": []}) == []


def test_one_place_with_several_recorded_arrays_matches_an_empty_one_only_when_one_of_them_is_empty() -> None:
    # the recorded policy PUT: one lifecycle copies to the vault tier, another has an empty copy list, a
    # third has none; the template of lifecycles[] holds all three
    recorded = {"l": [{"copy": [{"to": "VaultStore"}]}, {"copy": []}, {}]}
    assert places(recorded, {"l": [{"copy": []}, {"copy": [{"to": "x"}]}, {}]}) == []
    assert places({"l": [{"copy": [{"to": "VaultStore"}]}]}, {"l": [{"copy": []}]}) == ["l[].copy"]
    assert places({"l": [{"copy": []}, {"copy": []}]}, {"l": [{"copy": [{"to": "x"}]}]}) == ["l[].copy"]
    assert places(recorded, {"l": [{"copy": [{"other": 1}]}]}) == ["l[].copy[].to", "l[].copy[].other"]


def test_opaque_and_map_paths() -> None:
    recorded = {"props": {"x": 1}, "tags": {"k1": "v"}}
    assert places(recorded, {"props": {"y": []}, "tags": {"k1": "v"}}, opaque=["props"]) == []
    assert places(recorded, {"props": [], "tags": {"k1": "v"}}, opaque=["props"]) == ["props"]
    assert places(recorded, {"props": {"x": 1}, "tags": {"other": "v"}}, map_paths=["tags"]) == []
    assert places(recorded, {"props": {"x": 1}, "tags": {"k1": 5}}, map_paths=["tags"]) == ["tags.k1"]
    assert places(recorded, {"props": {"x": 1}}, map_paths=["tags"]) == []  # either side may lack a map


def test_headers_that_matter() -> None:
    recorded = {"azure-asyncoperation": "https://a", "x-ms-ratelimit-remaining-subscription-writes": "1199"}
    sent = {
        "Azure-AsyncOperation": "https://127.0.0.1/op",
        "x-ms-ratelimit-remaining-subscription-writes": "7",
        "x-ms-ratelimit-remaining-subscription-global-writes": "100",  # more quota headers: allowed
        "x-ms-request-id": "r",
    }
    assert compare_headers(recorded, sent) == []
    assert [w for w, _ in compare_headers(recorded, {})] == [
        "header:azure-asyncoperation",
        "header:x-ms-ratelimit-remaining-subscription-writes",
    ]
    extra = {**sent, "Location": "https://x", "Retry-After": "1", "retry-after-ms": "50"}
    assert [w for w, _ in compare_headers(recorded, extra)] == [
        "header:location",
        "header:retry-after",
        "header:retry-after-ms",
    ]
    bad = {**sent, "x-ms-ratelimit-remaining-subscription-writes": "lots", "Azure-AsyncOperation": "/rel"}
    assert len(compare_headers(recorded, bad)) == 2


def test_the_checks_the_focused_dataprotection_replay_made() -> None:
    """Ported from the removed tests/integration/dataprotection/test_recordings_replay.py (its comparator's
    own test): each kind of difference it caught, the generic comparison catches too."""
    assert places({"a": 1, "b": {"c": "x"}}, {"a": 1, "b": {"c": "y"}}) == []
    assert places({"a": 1}, {"a": "1"}) == ["a"]
    assert places({"a": 1}, {}) == ["a"]
    assert places({}, {"tags": {}}) == ["tags"]
    assert places({"v": [{"x": 1}]}, {"v": []}) == ["v"]
    # stricter than the focused replay, which let a recorded null match anything: null is a type of its own
    assert places({"n": None}, {"n": {"anything": 1}}) == ["n"]
    assert [w for w, _ in compare_headers({"azure-asyncoperation": "https://u"}, {})] == [
        "header:azure-asyncoperation"
    ]
    assert [w for w, _ in compare_headers({}, {"retry-after-ms": "50"})] == ["header:retry-after-ms"]
    quota = "x-ms-ratelimit-remaining-subscription-resource-requests"
    assert [w for w, _ in compare_headers({quota: "199"}, {})] == [f"header:{quota}"]


def test_an_operation_status_value_is_compared() -> None:
    recorded = {"id": "op", "name": "op", "status": "Inprogress", "startTime": "t", "endTime": "t"}
    running = Interaction("rec", "op", "GET", "/op", None, 200, {}, recorded, {})
    assert compare(running, 200, {}, dict(recorded)) == []
    assert compare(running, 200, {}, {**recorded, "status": "Succeeded"}) == [
        Deviation("rec", "op", "value:status", "recorded 'Inprogress', emulator 'Succeeded'")
    ]
    # the spelling counts (DataProtection's recorded "Inprogress" is not ARM's "InProgress")
    assert [d.where for d in compare(running, 200, {}, {**recorded, "status": "InProgress"})] == [
        "value:status"
    ]
    opaque = Interaction("rec", "op", "GET", "/op", None, 200, {}, recorded, {"opaque": ["status"]})
    assert compare(opaque, 200, {}, {**recorded, "status": "Succeeded"}) == []
    # a resource body without a top-level status (a remediation, a vault) has no such value
    resource = Interaction("rec", "r", "GET", "/r", None, 200, {}, {"properties": {"status": "x"}}, {})
    assert compare(resource, 200, {}, {"properties": {"status": "y"}}) == []


def test_compare_names_the_interaction() -> None:
    interaction = Interaction("rec", "i1", "GET", "/x", None, 200, {}, {"a": 1}, {})
    assert compare(interaction, 200, {}, {"a": 2}) == []
    assert compare(interaction, 404, {}, {"a": 1}) == [
        Deviation("rec", "i1", "status", "recorded 200, emulator 404")
    ]


def test_the_allow_list_table(tmp_path: Path) -> None:
    readme = tmp_path / "README.md"
    readme.write_text(
        "# x\n### Documented deviations from recorded Azure traffic\ntext\n\n"
        "| recording | interactions | where | reason |\n|---|---|---|---|\n"
        "| rec | i1, i2 | a.b, `c` | because |\n\n## next\n| r | i | w | not this table |\n"
    )
    [row] = load_allowed_deviations(readme)
    assert row.covers(Deviation("rec", "i2", "c", "…")) and row.covers(Deviation("rec", "i1", "a.b", "…"))
    assert not row.covers(Deviation("rec", "i3", "c", "…")) and not row.covers(
        Deviation("other", "i1", "c", "")
    )
    readme.write_text(
        "### Documented deviations from recorded Azure traffic\n"
        "| recording | interactions | where | reason |\n|---|---|---|---|\n| rec | i1 | a |  |\n"
    )
    with pytest.raises(ValueError):
        load_allowed_deviations(readme)


def test_paths_name_their_resource() -> None:
    ext = (
        "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Kubernetes/connectedClusters/c/providers/"
        "Microsoft.KubernetesConfiguration/extensions/e"
    )
    parsed = parse_arm_path(ext)
    assert parsed.targets_resource and parsed.resource_id == ext
    assert parsed.resource_type == "Microsoft.KubernetesConfiguration/extensions"
    listing = parse_arm_path(ext.rsplit("/", 1)[0])
    assert not listing.targets_resource and listing.resource_id.endswith("connectedClusters/c")
    op = parse_arm_path("/subscriptions/s/providers/Microsoft.ContainerService/locations/x/operations/1")
    assert op.resource_id is None and not op.targets_resource
    assert parse_arm_path("/providers/Microsoft.ResourceGraph/resources").resource_id is None


def test_the_estate_holds_what_the_traffic_needs_and_not_what_it_creates() -> None:
    sub = "00000000-0000-0000-0000-000000000000"
    parent = f"/subscriptions/{sub}/resourceGroups/rg/providers/Microsoft.Kubernetes/connectedClusters/c"
    ext = f"{parent}/providers/Microsoft.KubernetesConfiguration/extensions/e"
    account = f"/subscriptions/{sub}/resourceGroups/other/providers/Microsoft.Storage/storageAccounts/sa"
    recording = Recording(
        "r",
        {},
        (
            Interaction("r", "put", "PUT", f"{ext}?api-version=1", {}, 201, {}, {"location": "westus"}, {}),
            Interaction(
                "r",
                "list",
                "GET",
                f"{parent}/providers/Microsoft.KubernetesConfiguration/extensions",
                None,
                200,
                {},
                {
                    "value": [
                        {"id": account, "type": "Microsoft.Storage/storageAccounts", "properties": {"x": 1}}
                    ]
                },
                {},
            ),
        ),
    )
    estate = estate_for([recording], default_subscription=sub)
    assert [r["id"] for r in estate["resources"]] == [parent]  # the parent, not the created extension
    assert estate["storageAccounts"] == [
        {"id": account, "type": "Microsoft.Storage/storageAccounts", "properties": {"x": 1}}
    ]  # a whole recorded body, as recorded
    [subscription] = estate["subscriptions"]
    assert {g["name"] for g in subscription["resourceGroups"]} == {"rg", "other"}
    assert "extensions" not in estate


def test_dataprotection_resources_go_to_their_estate_keys_and_a_204_delete_means_absent() -> None:
    sub = "00000000-0000-0000-0000-000000000000"
    vault = f"/subscriptions/{sub}/resourceGroups/dpp/providers/Microsoft.DataProtection/backupVaults/v"
    recording = Recording(
        "dp",
        {},
        (
            Interaction(
                "dp", "bi-delete", "DELETE", f"{vault}/backupInstances/gone", None, 204, {}, None, {}
            ),
            Interaction("dp", "policy-get", "GET", f"{vault}/backupPolicies/p", None, 200, {}, None, {}),
            Interaction("dp", "validate", "POST", f"{vault}/validateForBackup", {}, 202, {}, None, {}),
        ),
    )
    estate = estate_for([recording], default_subscription=sub)
    block = estate["dataProtection"]
    assert block["vaults"] == [{"id": vault, "location": "eastus"}]
    assert block["policies"] == [{"id": f"{vault}/backupPolicies/p", "vaultId": vault, "strategy": "Week"}]
    assert "backupInstances" not in block and "resources" not in estate  # the 204 DELETE: it was absent
    assert block["settings"] == {"profile": "realistic"}  # ESTATE_SETTINGS: Azure's pace

    kept = Recording(
        "dp",
        {},
        (Interaction("dp", "bi-get", "GET", f"{vault}/backupInstances/bi", None, 200, {}, None, {}),),
    )
    with pytest.raises(ValueError, match="ESTATE_EXTRAS"):  # an instance needs its cluster and policy
        estate_for([kept], default_subscription=sub)
