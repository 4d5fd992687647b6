"""Resource Graph `resourcecontainers` and nested management-group scope in the emulator."""

from __future__ import annotations

from typing import Any

import pytest

from emulator.clock import ManualClock
from emulator.estate import apply_estate
from emulator.graph.service import GraphRequestError, GraphService
from emulator.state import EmulatorState

TENANT = "tttttttt-0000-0000-0000-000000000000"
SUB_A = "aaaaaaaa-0000-0000-0000-000000000000"
SUB_B = "bbbbbbbb-0000-0000-0000-000000000000"
SUB_C = "cccccccc-0000-0000-0000-000000000000"
SUBS_QUERY = (
    "resourcecontainers | where type =~ 'microsoft.resources/subscriptions'"
    " | project id, subscriptionId, name, chain = properties.managementGroupAncestorsChain"
)


def _service(groups: Any) -> GraphService:
    state = EmulatorState(clock=ManualClock(), estate_loader=apply_estate)
    state.load_estate(
        {
            "tenantId": TENANT,
            "subscriptions": [
                {
                    "subscriptionId": s,
                    "displayName": f"sub-{s[0]}",
                    "resourceGroups": [{"name": "RG1", "location": "East US"}],
                }
                for s in (SUB_A, SUB_B, SUB_C)
            ],
            "managementGroups": groups,
        }
    )
    return GraphService(state, management_groups=lambda: state.estate["managementGroups"])


NESTED = {
    "mg-platform": {"subscriptions": [SUB_A], "displayName": "Platform"},
    "mg-prod": {"subscriptions": [SUB_B], "parent": "mg-platform"},
}


def _subs(svc: GraphService, **scope: Any) -> dict[str, Any]:
    body = {"query": SUBS_QUERY, "options": {"resultFormat": "objectArray"}, **scope}
    return {row["subscriptionId"]: row for row in svc.query(body)["data"]}


def test_one_row_per_subscription_with_its_ancestry() -> None:
    rows = _subs(_service(NESTED))
    assert set(rows) == {SUB_A, SUB_B, SUB_C}
    assert rows[SUB_B]["id"] == f"/subscriptions/{SUB_B}" and rows[SUB_B]["name"] == "sub-b"
    assert [g["name"] for g in rows[SUB_B]["chain"]] == ["mg-prod", "mg-platform", TENANT]
    assert rows[SUB_A]["chain"][0] == {"name": "mg-platform", "displayName": "Platform"}
    assert rows[SUB_C]["chain"] == [{"name": TENANT, "displayName": "Tenant Root Group"}]


def test_management_group_scope_includes_descendant_subscriptions() -> None:
    svc = _service(NESTED)
    assert set(_subs(svc, managementGroups=["MG-Platform"])) == {SUB_A, SUB_B}
    assert set(_subs(svc, managementGroups=["mg-prod"])) == {SUB_B}
    assert set(_subs(svc, managementGroups=[TENANT])) == {SUB_A, SUB_B, SUB_C}
    assert set(_subs(svc, subscriptions=[SUB_C.upper()])) == {SUB_C}
    # the same scope applies to the resources tables
    count = svc.query({"query": "resourcecontainers | count", "managementGroups": ["mg-prod"]})
    assert count["data"]["rows"] == [[2]]  # the subscription and its resource group


def test_resource_groups_are_containers_too() -> None:
    svc = _service(NESTED)
    body = {
        "query": "resourcecontainers | where type =~ 'microsoft.resources/subscriptions/resourcegroups'",
        "subscriptions": [SUB_A],
        "options": {"resultFormat": "objectArray"},
    }
    (row,) = svc.query(body)["data"]
    assert row["id"].lower() == f"/subscriptions/{SUB_A}/resourcegroups/rg1"
    assert row["resourceGroup"] == "rg1" and row["location"] == "eastus"


def test_list_and_flat_forms_are_read_alike() -> None:
    flat = _subs(_service({"mg-x": [SUB_A, SUB_B]}), managementGroups=["mg-x"])
    listed = _subs(_service([{"name": "mg-x", "subscriptions": [SUB_A, SUB_B]}]), managementGroups=["mg-x"])
    assert set(flat) == set(listed) == {SUB_A, SUB_B}


def test_unknown_group_and_bad_parent_are_refused() -> None:
    with pytest.raises(GraphRequestError) as info:
        _subs(_service(NESTED), managementGroups=["mg-nope"])
    assert info.value.status == 400 and info.value.details[0]["code"] == "ManagementGroupNotFound"
    with pytest.raises(ValueError, match="parent"):
        _subs(_service({"mg-a": {"subscriptions": [SUB_A], "parent": "missing"}}))
