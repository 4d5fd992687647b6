"""Trusted-access role bindings through azure-mgmt-containerservice, held to the recording: create/update
answer 200 with provisioningState Updating and no async header, Succeeded later; AKS's top-level 404 body;
valid roles only; at most 8 per cluster."""

from __future__ import annotations

import pytest
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError

from tests.fixtures.emulator import CLUSTER_ID
from tests.integration.dataprotection.conftest import BACKUP_OPERATOR, VAULT_ID, BackupWorld, wait_for
from tests.integration.emulator.helpers import raw_https

API = "2026-08-01"


def _put(world: BackupWorld, name: str, body: dict) -> tuple[int, dict, dict]:
    emu = world.emu
    path = f"{CLUSTER_ID}/trustedAccessRoleBindings/{name}?api-version={API}"
    return raw_https(emu.base_url, emu.ca_bundle, "PUT", path, body)


def test_create_answers_200_updating_without_async_header_then_succeeds(world: BackupWorld) -> None:
    world.knobs(trustedAccessUpdateS=2.0)
    body = {"properties": {"sourceResourceId": VAULT_ID, "roles": [BACKUP_OPERATOR]}}
    status, headers, answer = _put(world, "tarb-1", body)
    assert status == 200
    assert answer["properties"]["provisioningState"] == "Updating"
    assert "azure-asyncoperation" not in headers and "location" not in headers
    got = world.cs.trusted_access_role_bindings.get("rg1", "aks1", "tarb-1")
    assert got.provisioning_state == "Updating"
    wait_for(
        lambda: (
            world.cs.trusted_access_role_bindings.get("rg1", "aks1", "tarb-1").provisioning_state
            == "Succeeded"
        )
    )
    # an update (roles changed) is Updating again
    status, _, answer = _put(world, "tarb-1", body)
    assert status == 200 and answer["properties"]["provisioningState"] == "Updating"


def test_sdk_poller_waits_for_succeeded(world: BackupWorld) -> None:
    world.knobs(trustedAccessUpdateS=0.2)
    binding = world.bind("tarb-sdk")
    assert binding.provisioning_state == "Succeeded"
    assert binding.source_resource_id == VAULT_ID and binding.roles == [BACKUP_OPERATOR]
    assert [b.name for b in world.cs.trusted_access_role_bindings.list("rg1", "aks1")] == ["tarb-sdk"]
    world.cs.trusted_access_role_bindings.begin_delete("rg1", "aks1", "tarb-sdk").result()
    assert list(world.cs.trusted_access_role_bindings.list("rg1", "aks1")) == []


def test_missing_binding_404_has_the_aks_body(world: BackupWorld) -> None:
    emu = world.emu
    status, _, body = raw_https(
        emu.base_url, emu.ca_bundle, "GET", f"{CLUSTER_ID}/trustedAccessRoleBindings/nope?api-version={API}"
    )
    assert status == 404
    assert set(body) == {"code", "message", "subcode"}
    assert body["subcode"] == "GetTrustedAccessRoleBinding_NotFound"
    with pytest.raises(ResourceNotFoundError):
        world.cs.trusted_access_role_bindings.get("rg1", "aks1", "nope")


def test_recorded_api_version_deletes_with_200(world: BackupWorld) -> None:
    emu = world.emu
    body = {"properties": {"sourceResourceId": VAULT_ID, "roles": [BACKUP_OPERATOR]}}
    path = f"{CLUSTER_ID}/trustedAccessRoleBindings/old?api-version=2022-11-02-preview"
    assert raw_https(emu.base_url, emu.ca_bundle, "PUT", path, body)[0] == 200
    assert raw_https(emu.base_url, emu.ca_bundle, "DELETE", path)[:1] == (200,)
    status, headers, _ = raw_https(
        emu.base_url, emu.ca_bundle, "DELETE", path.replace("2022-11-02-preview", API)
    )
    assert status == 204


@pytest.mark.parametrize(
    ("roles", "source", "fragment"),
    [
        (["Microsoft.DataProtection/backupVaults/no-such-role"], VAULT_ID, "non-exist role"),
        (
            [BACKUP_OPERATOR],
            VAULT_ID.replace("Microsoft.DataProtection/backupVaults", "Microsoft.RecoveryServices/vaults"),
            "can't be bound",
        ),
        ([], VAULT_ID, "non-empty"),
    ],
)
def test_invalid_roles_are_refused(world: BackupWorld, roles: list[str], source: str, fragment: str) -> None:
    status, _, body = _put(world, "bad", {"properties": {"sourceResourceId": source, "roles": roles}})
    assert status == 400 and body["error"]["code"] == "InvalidParameter"
    assert fragment in body["error"]["message"]


def test_binding_name_rules(world: BackupWorld) -> None:
    body = {"properties": {"sourceResourceId": VAULT_ID, "roles": [BACKUP_OPERATOR]}}
    assert _put(world, "x" * 25, body)[0] == 400
    assert _put(world, "under_score", body)[0] == 400
    assert _put(world, "x" * 24, body)[0] == 200


def test_at_most_eight_bindings_per_cluster(world: BackupWorld) -> None:
    for i in range(8):
        source = VAULT_ID.replace("vault-eastus", f"vault-{i}")
        assert (
            _put(world, f"b{i}", {"properties": {"sourceResourceId": source, "roles": [BACKUP_OPERATOR]}})[0]
            == 200
        )
    status, _, body = _put(
        world, "b8", {"properties": {"sourceResourceId": VAULT_ID, "roles": [BACKUP_OPERATOR]}}
    )
    assert status == 400 and "at most 8" in body["error"]["message"]
    # updating one of the eight is still allowed
    assert (
        _put(world, "b0", {"properties": {"sourceResourceId": VAULT_ID, "roles": [BACKUP_OPERATOR]}})[0]
        == 200
    )


def test_cluster_must_exist(world: BackupWorld) -> None:
    with pytest.raises(HttpResponseError) as info:
        world.cs.trusted_access_role_bindings.get("rg1", "no-cluster", "x")
    assert info.value.status_code == 404
