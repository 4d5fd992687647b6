# ruff: noqa: E501
"""Resource Graph queries for preflight: fixed text, quoted ids, refused injections, the management-group request."""

from __future__ import annotations

import pytest

from emulator.kql import compile_query
from remediator.core.errors import UserInputError
from remediator.core.inventory_query import InventoryRequest
from remediator.core.preflight_query import (
    assignment_requests,
    build_assignments_query,
    build_definitions_query,
    definition_requests,
    is_builtin,
    is_definition_id,
)

SUB = "11111111-1111-1111-1111-111111111111"
BUILTIN = "/providers/Microsoft.Authorization/policyDefinitions/6c112d4e-5bc7-47ae-a041-ea2d9dccd749"
CUSTOM = f"/subscriptions/{SUB}/providers/Microsoft.Authorization/policyDefinitions/deny-backup-ext"
MG_SET = "/providers/Microsoft.Management/managementGroups/corp/providers/Microsoft.Authorization/policySetDefinitions/x"


def test_queries_compile_in_the_emulator_kql_subset():
    compile_query(build_assignments_query())
    compile_query(build_definitions_query([BUILTIN, CUSTOM, MG_SET]))
    for request in assignment_requests([SUB], ["corp"]):
        compile_query(request.query)


def test_assignment_requests_batch_subscriptions_and_add_one_group_scoped_request():
    subs = [f"{i:08d}-0000-0000-0000-000000000000" for i in range(5)]
    requests = assignment_requests(subs, ["corp", "Corp", "root"], batch_size=2)
    assert [len(r.subscriptions) for r in requests[:-1]] == [2, 2, 1]
    assert requests[-1].management_groups == ("corp", "root")
    assert "managementGroups/" in requests[-1].query
    assert assignment_requests(subs, [])[-1].subscriptions  # no group request without groups


@pytest.mark.parametrize(
    "bad",
    [
        "/providers/Microsoft.Authorization/policyDefinitions/x') | union resources //",
        "/subscriptions/not-a-guid/providers/Microsoft.Authorization/policyDefinitions/x",
        "/providers/Microsoft.Storage/storageAccounts/x",
    ],
)
def test_definition_ids_that_could_change_the_query_are_refused(bad):
    with pytest.raises(UserInputError):
        build_definitions_query([bad])
    assert not is_definition_id(bad)


def test_definition_requests_chunk_and_keep_the_scope():
    scope = InventoryRequest(query="", subscriptions=(SUB,))
    ids = [f"/providers/Microsoft.Authorization/policyDefinitions/d{i}" for i in range(5)]
    requests = list(definition_requests(ids, scope, chunk=2))
    assert len(requests) == 3 and all(r.subscriptions == (SUB,) for r in requests)
    assert "'/providers/Microsoft.Authorization/policyDefinitions/d0'" in requests[0].query
    assert is_builtin(BUILTIN) and not is_builtin(CUSTOM)
