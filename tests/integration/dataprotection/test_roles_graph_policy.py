"""Role-assignment limit and the new built-in roles (azure-mgmt-authorization), Resource Graph's
``recoveryservicesresources`` rows (azure-mgmt-resourcegraph), and Policy 2 turning Compliant when a backup
instance exists (azure-mgmt-policyinsights)."""

from __future__ import annotations

import uuid

import pytest
from azure.core.exceptions import HttpResponseError
from azure.mgmt.policyinsights import PolicyInsightsClient
from azure.mgmt.resourcegraph import ResourceGraphClient
from azure.mgmt.resourcegraph.models import QueryRequest, QueryRequestOptions

from emulator.dataprotection.model import (
    ROLE_DATA_OPERATOR_MANAGED_DISKS,
    ROLE_DISK_SNAPSHOT_CONTRIBUTOR,
    ROLE_READER,
    ROLE_STORAGE_BLOB_DATA_READER,
)
from tests.fixtures.emulator import CLUSTER_ID, TEST_SUB
from tests.integration.dataprotection.conftest import FAST, SNAPSHOT_RG_ID, VAULT_RG, BackupWorld, wait_for

BACKUP_CONTRIBUTOR = "5e467623-bb1f-42f4-a55d-6e525e11384b"


def test_new_builtin_roles_are_known(world: BackupWorld) -> None:
    principal = str(uuid.uuid4())
    for role in (
        ROLE_DISK_SNAPSHOT_CONTRIBUTOR,
        ROLE_DATA_OPERATOR_MANAGED_DISKS,
        ROLE_STORAGE_BLOB_DATA_READER,
        BACKUP_CONTRIBUTOR,
    ):
        world.grant(principal, role, SNAPSHOT_RG_ID)
    listed = list(
        world.auth.role_assignments.list_for_scope(SNAPSHOT_RG_ID, filter=f"principalId eq '{principal}'")
    )
    assert len(listed) == 4
    assert (
        list(
            world.auth.role_assignments.list_for_scope(
                SNAPSHOT_RG_ID, filter=f"principalId eq '{uuid.uuid4()}'"
            )
        )
        == []
    )


def test_role_assignment_limit_per_subscription(world: BackupWorld) -> None:
    world.knobs(roleAssignmentLimit=3)
    principal = str(uuid.uuid4())
    for _ in range(3):
        world.grant(str(uuid.uuid4()), ROLE_READER, SNAPSHOT_RG_ID)
    with pytest.raises(HttpResponseError) as info:
        world.grant(principal, ROLE_READER, SNAPSHOT_RG_ID)
    assert info.value.status_code == 400 and info.value.error.code == "RoleAssignmentLimitExceeded"
    assert "No more role assignments can be created" in str(info.value)
    # deleting one frees a slot
    key = next(iter(world.granted))
    world.auth.role_assignments.delete_by_id(world.granted.pop(key))
    world.grant(principal, ROLE_READER, SNAPSHOT_RG_ID)
    view = world.emu.admin.request("GET", "/dataprotection")
    assert view["roleAssignmentCounts"][TEST_SUB] == 3


def test_limit_default_is_4000_and_counts_estate_assignments(world: BackupWorld) -> None:
    from tests.integration.dataprotection.conftest import backup_estate

    view = world.emu.admin.request("GET", "/dataprotection")
    assert view["settings"]["roleAssignmentLimit"] == 4000
    estate = backup_estate()
    estate["dataProtection"] = {
        "settings": {"roleAssignmentLimit": 2},
        "roleAssignments": [
            {"scope": SNAPSHOT_RG_ID, "principalId": str(uuid.uuid4()), "role": "Reader"},
            {"scope": f"/subscriptions/{TEST_SUB}", "principalId": str(uuid.uuid4()), "role": "Contributor"},
        ],
    }
    world.emu.reset(estate)
    with pytest.raises(HttpResponseError) as info:
        world.grant(str(uuid.uuid4()), ROLE_READER, CLUSTER_ID)
    assert info.value.error.code == "RoleAssignmentLimitExceeded"


def _graph(world: BackupWorld, query: str) -> list[dict]:
    client = ResourceGraphClient(world.emu.credential("sweeper"), **world.emu.client_kwargs())
    result = client.resources(
        QueryRequest(
            subscriptions=[TEST_SUB], query=query, options=QueryRequestOptions(result_format="objectArray")
        )
    )
    return list(result.data)


def test_resource_graph_recoveryservicesresources_rows(world: BackupWorld) -> None:
    world.knobs(**FAST)
    world.ready()
    world.protect()
    world.wait_state("ProtectionConfigured")
    rows = _graph(
        world,
        "recoveryservicesresources "
        "| where type =~ 'microsoft.dataprotection/backupvaults/backupinstances' "
        "| extend protectionState = tostring(properties.currentProtectionState) "
        "| extend datasourceId = tolower(tostring(properties.dataSourceInfo.resourceID)) "
        "| project id, name, resourceGroup, protectionState, datasourceId",
    )
    assert rows == [
        {
            "id": rows[0]["id"],
            "name": "aks1-bi",
            "resourceGroup": VAULT_RG,
            "protectionState": "ProtectionConfigured",
            "datasourceId": CLUSTER_ID.lower(),
        }
    ]
    # the sweep's join: clusters left-outer-joined with their backup instance's state
    joined = _graph(
        world,
        "resources | where type =~ 'microsoft.containerservice/managedclusters' "
        "| extend cid = tolower(id) | project cid, name "
        "| join kind=leftouter (recoveryservicesresources "
        "| where type =~ 'microsoft.dataprotection/backupvaults/backupinstances' "
        "| extend cid = tolower(tostring(properties.dataSourceInfo.resourceID)) "
        "| project cid, state = tostring(properties.currentProtectionState)) on cid "
        "| project name, state",
    )
    states = {r["name"]: r["state"] for r in joined}
    assert states["aks1"] == "ProtectionConfigured"
    assert states["aks-stopped"] == ""
    # backup policies, instances and bindings are not rows of `resources`; vaults are
    types = {r["type"] for r in _graph(world, "resources | project type")}
    assert "microsoft.dataprotection/backupvaults" in types
    assert not any(
        t.endswith(("/backupinstances", "/backuppolicies", "/trustedaccessrolebindings")) for t in types
    )


def _policy2(world: BackupWorld) -> str:
    client = PolicyInsightsClient(world.emu.credential("reader"), TEST_SUB, **world.emu.client_kwargs())
    records = client.policy_states.list_query_results_for_resource("latest", CLUSTER_ID, query_options=None)
    states = [
        r.compliance_state
        for r in records
        if r.policy_definition_id.lower().endswith("0b0434ec-2bad-4229-965f-bb7ae5a71257")
    ]
    assert len(states) == 1
    return str(states[0])


def test_policy_2_turns_compliant_with_a_backup_instance_and_back(world: BackupWorld) -> None:
    world.knobs(**FAST)
    assert _policy2(world) == "NonCompliant"
    world.ready(skip=("binding",))
    world.protect()  # any backup instance counts for the AuditIfNotExists rule, even one in error
    assert wait_for(lambda: _policy2(world) == "Compliant")
    world.dp.backup_instances.begin_delete(VAULT_RG, "vault-eastus", "aks1-bi").result()
    assert wait_for(lambda: _policy2(world) == "NonCompliant")
