"""Resource ids compare as Azure compares them (.NET OrdinalIgnoreCase), not by Python's ``str.lower()``.

``rg-a\u212as-prod`` (U+212A KELVIN SIGN) is a different resource group from ``rg-aks-prod`` in Azure,
although ``"\u212a".lower() == "k"``. Through the real SDK clients: the two groups' clusters are different
resources, a write to one never touches the other, lists and scopes hold only their own, and a policy
assignment or a role assignment scoped to the ASCII group does not reach the Kelvin group's cluster.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from azure.core.exceptions import ResourceNotFoundError
from azure.mgmt.authorization import AuthorizationManagementClient
from azure.mgmt.authorization.models import RoleAssignmentCreateParameters
from azure.mgmt.containerservice import ContainerServiceClient
from azure.mgmt.policyinsights import PolicyInsightsClient
from azure.mgmt.policyinsights.models import QueryOptions

from emulator.server import Emulator
from tests.fixtures.emulator import TEST_ESTATE, TEST_SUB

pytestmark = pytest.mark.integration

MC = "Microsoft.ContainerService/managedClusters"
ASCII_RG = "rg-aks-prod"
KELVIN_RG = "rg-a\u212as-prod"
PRINCIPAL = "0c2b6f10-5d1e-4f3a-9b8c-7d6e5f4a3b21"
READER = (
    f"/subscriptions/{TEST_SUB}/providers/Microsoft.Authorization/roleDefinitions/"
    "acdd72a7-3385-48ef-bd42-f606fba81ae7"
)


def _cluster_id(rg: str) -> str:
    return f"/subscriptions/{TEST_SUB}/resourceGroups/{rg}/providers/{MC}/aks"


def _estate() -> dict[str, Any]:
    estate = dict(TEST_ESTATE)
    estate["clusters"] = [
        {"id": _cluster_id(ASCII_RG), "location": "eastus", "tags": {"owner": "ascii"}},
        {"id": _cluster_id(KELVIN_RG), "location": "westeurope", "tags": {"owner": "kelvin"}},
    ]
    estate["policyAssignments"] = [
        {
            "name": "ext-audit-ascii-rg",
            "scope": f"/subscriptions/{TEST_SUB}/resourceGroups/{ASCII_RG}",
            "definition": "extension-audit",
        }
    ]
    return estate


def test_the_kelvin_group_is_another_resource_group(
    emulator: Emulator, mgmt_client: Callable[..., Any]
) -> None:
    emulator.reset(estate=_estate())
    aks = mgmt_client(ContainerServiceClient)
    ascii_cluster = aks.managed_clusters.get(ASCII_RG, "aks")
    kelvin_cluster = aks.managed_clusters.get(KELVIN_RG, "aks")
    assert (ascii_cluster.tags, ascii_cluster.location) == ({"owner": "ascii"}, "eastus")
    assert (kelvin_cluster.tags, kelvin_cluster.location) == ({"owner": "kelvin"}, "westeurope")
    assert ascii_cluster.identity.principal_id != kelvin_cluster.identity.principal_id
    assert [c.id for c in aks.managed_clusters.list_by_resource_group(ASCII_RG.upper())] == [ascii_cluster.id]
    assert [c.id for c in aks.managed_clusters.list_by_resource_group(KELVIN_RG)] == [kelvin_cluster.id]

    # a write through the ASCII spelling (any ASCII casing) changes that cluster only
    aks.managed_clusters.begin_update_tags(ASCII_RG.upper(), "AKS", {"tags": {"owner": "changed"}}).result()
    assert aks.managed_clusters.get(ASCII_RG, "aks").tags == {"owner": "changed"}
    assert aks.managed_clusters.get(KELVIN_RG, "aks").tags == {"owner": "kelvin"}

    # deleting the Kelvin group's cluster leaves the ASCII one
    aks.managed_clusters.begin_delete(KELVIN_RG, "aks").result()
    with pytest.raises(ResourceNotFoundError):
        aks.managed_clusters.get(KELVIN_RG, "aks")
    assert aks.managed_clusters.get(ASCII_RG, "aks").tags == {"owner": "changed"}


def test_scopes_spelled_in_ascii_do_not_reach_the_kelvin_group(
    emulator: Emulator, mgmt_client: Callable[..., Any]
) -> None:
    emulator.reset(estate=_estate())
    ascii_scope = f"/subscriptions/{TEST_SUB}/resourceGroups/{ASCII_RG}"

    # Policy: the assignment at the ASCII group evaluates the ASCII group's cluster only
    states = mgmt_client(PolicyInsightsClient).policy_states.list_query_results_for_subscription(
        "latest", TEST_SUB, query_options=QueryOptions(filter="policyAssignmentName eq 'ext-audit-ascii-rg'")
    )
    assert [s.resource_id.lower() for s in states] == [_cluster_id(ASCII_RG).lower()]

    # RBAC: an assignment at the ASCII group is not listed at the Kelvin group's cluster, and back
    auth = mgmt_client(AuthorizationManagementClient)
    auth.role_assignments.create(
        ascii_scope,
        "6f3bd5a6-2a8b-4d3e-9a57-6a2c0d2f0001",
        RoleAssignmentCreateParameters(role_definition_id=READER, principal_id=PRINCIPAL),
    )
    at_kelvin = [a.principal_id for a in auth.role_assignments.list_for_scope(_cluster_id(KELVIN_RG))]
    at_ascii = [a.principal_id for a in auth.role_assignments.list_for_scope(_cluster_id(ASCII_RG))]
    assert PRINCIPAL not in at_kelvin
    assert PRINCIPAL in at_ascii
