"""The one id rule (issue 15, item 1) in the places part 1 left on ``str.lower()``: policy-assignment scopes
in the preflight, management-group names of its Resource Graph requests, policy-definition keys, role
assignments' principals, and the remediation-task assignment scope (whose index ``lower()`` would shift)."""

from __future__ import annotations

import pytest

from remediator.core.catalog import role_guid_of
from remediator.core.ids import parse_resource_id
from remediator.core.plan.observed import RoleAssignmentView
from remediator.core.plan.policy_task import assignment_scope
from remediator.core.plan.roles import covers as role_covers
from remediator.core.policy_catalog import definition_name, is_set_definition
from remediator.core.preflight import PolicyAssignment
from remediator.core.preflight import covers as policy_covers
from remediator.core.preflight_query import assignment_requests

SUB = "3f2b8c1e-6d4a-4f7b-9c2e-8a1d5e7f0b24"
KELVIN = "\u212a"
MC = "Microsoft.ContainerService/managedClusters"


def _assignment(scope: str) -> PolicyAssignment:
    return PolicyAssignment(
        id=f"{scope}/providers/Microsoft.Authorization/policyAssignments/deny-ext",
        name="deny-ext",
        scope=scope,
        definition_id="/providers/Microsoft.Authorization/policyDefinitions/x",
    )


def test_a_policy_assignment_on_the_ascii_group_does_not_cover_the_kelvin_group() -> None:
    ascii_group = f"/subscriptions/{SUB}/resourceGroups/rg-aks-prod"
    kelvin_cluster = f"/subscriptions/{SUB}/resourceGroups/rg-a{KELVIN}s-prod/providers/{MC}/aks"
    ascii_cluster = f"/subscriptions/{SUB}/resourceGroups/RG-AKS-PROD/providers/{MC}/aks"
    assert "rg-a\u212as-prod".lower() == "rg-aks-prod"  # the hazard: lower() folds the two together
    assert not policy_covers(_assignment(ascii_group), kelvin_cluster)
    assert policy_covers(_assignment(ascii_group), ascii_cluster)  # other ASCII casings still match


def test_management_group_names_are_compared_and_sent_by_azures_rule() -> None:
    scope = f"/providers/Microsoft.Management/managementGroups/mg-a{KELVIN}s"
    cluster = f"/subscriptions/{SUB}/resourceGroups/rg/providers/{MC}/aks"
    assert not policy_covers(_assignment(scope), cluster, ["mg-aks"])
    assert policy_covers(_assignment(scope), cluster, [f"MG-A{KELVIN}S"])
    requests = assignment_requests([SUB.upper()], ["mg-aks", f"mg-a{KELVIN}s", "MG-AKS"])
    groups = next(r.management_groups for r in requests if r.management_groups)
    assert sorted(groups) == sorted(["mg-aks", f"mg-a{KELVIN}s"])  # two groups, not one
    assert all(SUB in r.subscriptions for r in requests if r.subscriptions)


def test_definition_keys_keep_kelvin_names_apart() -> None:
    ascii_def = "/subscriptions/x/providers/Microsoft.Authorization/policyDefinitions/deny-aks-ext"
    kelvin_def = f"/subscriptions/x/providers/Microsoft.Authorization/policyDefinitions/deny-a{KELVIN}s-ext"
    assert definition_name(ascii_def) == "deny-aks-ext"
    assert definition_name(kelvin_def) != definition_name(ascii_def)
    assert is_set_definition("/providers/Microsoft.Authorization/POLICYSETDEFINITIONS/abc")
    assert (
        role_guid_of("/subscriptions/x/providers/Microsoft.Authorization/roleDefinitions/ABC-Def")
        == "abc-def"
    )


@pytest.mark.parametrize("group", ["rg-\u0130stanbul", f"rg-{KELVIN}{KELVIN}", "rg-plain"])
def test_the_assignment_scope_is_cut_at_the_right_place(group: str) -> None:
    """``"\u0130".lower()`` is two code points, so an index found in the lower-cased id cut the original id at
    the wrong place; the key maps one code point to one."""
    scope = f"/subscriptions/{SUB}/resourceGroups/{group}"
    assignment = parse_resource_id(f"{scope}/providers/Microsoft.Authorization/policyAssignments/a1")
    assert assignment_scope(assignment) == parse_resource_id(scope)
    assert assignment_scope(assignment).canonical == scope


def test_role_assignment_principals_and_roles_compare_by_azures_rule() -> None:
    scope = parse_resource_id(f"/subscriptions/{SUB}/resourceGroups/rg")
    view = RoleAssignmentView(
        scope=scope,
        principal_id="0C2B6F10-5D1E-4F3A-9B8C-7D6E5F4A3B21",
        role_guid="ba92f5b4-2d11-453d-a403-e96b0029c9fe",
    )
    assert role_covers(
        view,
        scope=scope,
        principal_id="0c2b6f10-5d1e-4f3a-9b8c-7d6e5f4a3b21",
        role_guid="BA92F5B4-2D11-453D-A403-E96B0029C9FE",
    )
