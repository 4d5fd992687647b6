"""Backup instances and validateForBackup through azure-mgmt-dataprotection: the happy path, every mapped
prerequisite failure code (at validation and at protection time), role propagation, one instance per
cluster across vaults, the backup-tick re-check, repairs (re-PUT, sync) and DELETE."""

from __future__ import annotations

import pytest
from azure.core.exceptions import HttpResponseError

from emulator.dataprotection.model import (
    ROLE_CONTRIBUTOR,
    ROLE_DISK_SNAPSHOT_CONTRIBUTOR,
    ROLE_READER,
    ROLE_STORAGE_BLOB_DATA_CONTRIBUTOR,
)
from tests.fixtures.emulator import CLUSTER_ID, TEST_SUB
from tests.integration.dataprotection.conftest import (
    EXTENSION_ID,
    EXTENSION_PRINCIPAL,
    FAST,
    SNAPSHOT_RG_ID,
    STORAGE,
    VAULT_ID,
    VAULT_RG,
    BackupWorld,
    bi_properties,
    wait_for,
)
from tests.integration.emulator.helpers import raw_https


def test_happy_path_validate_then_protect_reaches_protection_configured(world: BackupWorld) -> None:
    world.knobs(**FAST)
    world.ready()
    result = world.validate()
    assert result.object_type == "OperationJobExtendedInfo"

    bi = world.protect()
    assert bi.properties.provisioning_state == "Succeeded"  # the PUT's async operation is over ...
    assert bi.properties.current_protection_state in ("ConfiguringProtection", "ProtectionConfigured")
    configured = world.wait_state("ProtectionConfigured")  # ... and protection follows on its own
    assert configured.properties.protection_status.status == "ProtectionConfigured"
    assert configured.properties.protection_error_details is None

    routed = list(world.dp.backup_instances_extension_routing.list(CLUSTER_ID.lstrip("/")))
    assert [r.name for r in routed] == ["aks1-bi"]
    assert routed[0].id.lower().startswith(CLUSTER_ID.lower() + "/providers/microsoft.dataprotection/")
    assert routed[0].properties.current_protection_state == "ProtectionConfigured"
    assert routed[0].properties.policy_info.policy_id.lower().startswith(VAULT_ID.lower())


def test_put_answers_201_with_async_header_then_operation_succeeds(world: BackupWorld) -> None:
    world.knobs(**FAST)
    world.ready()
    emu = world.emu
    path = f"{VAULT_ID}/backupInstances/raw-bi?api-version=2026-06-01"
    status, headers, body = raw_https(
        emu.base_url, emu.ca_bundle, "PUT", path, {"properties": bi_properties()}
    )
    assert status == 201
    assert body["properties"]["provisioningState"] == "Provisioning"
    assert body["properties"]["currentProtectionState"] == "ConfiguringProtection"
    assert "/operationStatus/" in headers["azure-asyncoperation"]
    assert "retry-after-ms" in headers or "retry-after" in headers
    assert "x-ms-ratelimit-remaining-subscription-resource-requests" in headers
    status_path = headers["azure-asyncoperation"].split(emu.base_url, 1)[1]
    first = raw_https(emu.base_url, emu.ca_bundle, "GET", status_path)[2]
    assert first["status"] in ("Inprogress", "Succeeded")
    final = wait_for(
        lambda: raw_https(emu.base_url, emu.ca_bundle, "GET", status_path)[2]["status"] == "Succeeded"
    )
    assert final
    # a second PUT of the same instance is an update: 202 + Azure-AsyncOperation + Location
    status, headers, body = raw_https(
        emu.base_url, emu.ca_bundle, "PUT", path, {"properties": bi_properties()}
    )
    assert status == 202 and body is None
    assert "/operationResults/" in headers["location"]


def _break(world: BackupWorld, what: str) -> None:
    """Remove one prerequisite after ``world.ready()`` (or make one that is missing by construction)."""
    emu = world.emu
    if what == "extension-missing":
        raw_https(emu.base_url, emu.ca_bundle, "DELETE", EXTENSION_ID + "?api-version=2023-05-01")
        wait_for(lambda: emu.state.get("extensions", EXTENSION_ID) is None)
    elif what == "extension-failed":
        with emu.state.lock:
            body = dict(emu.state.extensions[EXTENSION_ID.lower()])
            body["properties"] = {**body["properties"], "provisioningState": "Failed"}
            emu.state.extensions[EXTENSION_ID.lower()] = body
    elif what == "extension-identity":
        with emu.state.lock:
            body = dict(emu.state.extensions[EXTENSION_ID.lower()])
            body["properties"] = {**body["properties"], "aksAssignedIdentity": None}
            emu.state.extensions[EXTENSION_ID.lower()] = body
    elif what == "container-missing":
        container = f"{STORAGE}/blobServices/default/containers/aks1-rg1"
        emu.state.remove("containers", container)
    elif what == "lock":
        path = f"{SNAPSHOT_RG_ID}/providers/Microsoft.Authorization/locks/keep?api-version=2020-05-01"
        status, _, _ = raw_https(
            emu.base_url, emu.ca_bundle, "PUT", path, {"properties": {"level": "CanNotDelete"}}
        )
        assert status == 201
    elif what == "binding-missing":
        world.cs.trusted_access_role_bindings.begin_delete("rg1", "aks1", "tarb-vault").result()
    else:
        principal, role, scope = {
            "vault-reader-cluster": (world.vault_principal(), ROLE_READER, CLUSTER_ID),
            "vault-reader-snapshot": (world.vault_principal(), ROLE_READER, SNAPSHOT_RG_ID),
            "vault-snapshot-contributor": (
                world.vault_principal(),
                ROLE_DISK_SNAPSHOT_CONTRIBUTOR,
                SNAPSHOT_RG_ID,
            ),
            "cluster-contributor-snapshot": (world.cluster_principal(), ROLE_CONTRIBUTOR, SNAPSHOT_RG_ID),
            "extension-blob-contributor": (EXTENSION_PRINCIPAL, ROLE_STORAGE_BLOB_DATA_CONTRIBUTOR, STORAGE),
        }[what]
        world.revoke(principal, role, scope)


BREAKS = [
    ("vault-reader-cluster", "KubernetesBackupListExtensionsError"),
    ("extension-missing", "UserErrorKubernetesBackupExtensionNotFoundError"),
    ("extension-failed", "UserErrorKubernetesBackupExtensionHasErrors"),
    ("extension-identity", "UserErrorKubernetesBackupExtensionIdentityNotFound"),
    ("container-missing", "UserErrorNoDefaultBackupStorageLocationFound"),
    ("extension-blob-contributor", "UserErrorExtensionMSIMissingPermissionsOnBackupStorageLocation"),
    ("binding-missing", "UserErrorTrustedAccessGatewayReturnedForbidden"),
    ("lock", "UserErrorSnapshotResourceGroupHasLocks"),
    ("vault-reader-snapshot", "UserErrorMissingRequiredPermissions"),
    ("vault-snapshot-contributor", "UserErrorMissingRequiredPermissions"),
    ("cluster-contributor-snapshot", "UserErrorMissingRequiredPermissions"),
]


@pytest.mark.parametrize(("what", "code"), BREAKS)
def test_validate_fails_with_the_documented_code(world: BackupWorld, what: str, code: str) -> None:
    world.knobs(**FAST)
    world.ready()
    _break(world, what)
    with pytest.raises(HttpResponseError) as info:
        world.validate()
    assert info.value.error is not None and info.value.error.code == code
    assert code in str(info.value)


@pytest.mark.parametrize(("what", "code"), BREAKS)
def test_protection_ends_in_protection_error_with_the_code(world: BackupWorld, what: str, code: str) -> None:
    world.knobs(**FAST)
    world.ready()
    _break(world, what)
    world.protect()  # the PUT itself succeeds: the resource is created (Terraform PR 25345)
    bi = world.wait_state("ProtectionError")
    assert bi.properties.protection_error_details.code == code
    assert bi.properties.protection_status.status == "ConfiguringProtectionFailed"
    assert bi.properties.protection_status.error_details.code == code


def test_missing_datasource_set_is_created_then_fails(world: BackupWorld) -> None:
    world.knobs(**FAST)
    world.ready()
    world.protect(props=bi_properties(set_info=False))
    bi = world.wait_state("ProtectionError")
    assert bi.properties.protection_error_details.code == "ScenarioPluginInvalidWorkflowDataRequest"


def test_initial_failure_state_knob(world: BackupWorld) -> None:
    world.knobs(**FAST, initialFailureState="ConfiguringProtectionFailed")
    world.ready(skip=("binding",))
    world.protect()
    bi = world.wait_state("ConfiguringProtectionFailed")
    assert bi.properties.protection_error_details.code == "UserErrorTrustedAccessGatewayReturnedForbidden"


def test_role_propagation_delay_hides_new_assignments_from_backup_checks(world: BackupWorld) -> None:
    world.knobs(**{**FAST, "rolePropagationS": 4.0})
    world.ready()
    # ARM reads see the assignment at once ...
    names = [a.name for a in world.auth.role_assignments.list_for_scope(STORAGE, filter="atScope()")]
    assert names
    # ... the backup side does not: the storage role exists but has not propagated
    with pytest.raises(HttpResponseError) as info:
        world.validate()
    assert info.value.error.code in (
        "KubernetesBackupListExtensionsError",
        "UserErrorBackupStorageLocationNotReady",
    )
    wait_for(lambda: _validates(world), timeout=20)


def _validates(world: BackupWorld) -> bool:
    try:
        world.validate()
    except HttpResponseError:
        return False
    return True


def test_storage_role_not_yet_propagated_is_backup_storage_location_not_ready(world: BackupWorld) -> None:
    world.knobs(**FAST)
    world.ready(skip=("extension-blob-contributor",))
    world.knobs(rolePropagationS=30)
    world.grant(EXTENSION_PRINCIPAL, ROLE_STORAGE_BLOB_DATA_CONTRIBUTOR, STORAGE)
    with pytest.raises(HttpResponseError) as info:
        world.validate()
    assert info.value.error.code == "UserErrorBackupStorageLocationNotReady"


def test_binding_still_updating_is_not_seen(world: BackupWorld) -> None:
    world.knobs(**FAST)
    world.ready(skip=("binding",))
    world.knobs(trustedAccessUpdateS=30)
    poller = world.bind(wait=False)
    assert poller.status() != "Succeeded"
    with pytest.raises(HttpResponseError) as info:
        world.validate()
    assert info.value.error.code == "UserErrorTrustedAccessGatewayReturnedForbidden"


def test_binding_effect_delay(world: BackupWorld) -> None:
    world.knobs(**FAST)
    world.ready(skip=("binding",))
    world.knobs(trustedAccessEffectS=30)
    assert world.bind().provisioning_state == "Succeeded"
    with pytest.raises(HttpResponseError) as info:
        world.validate()
    assert info.value.error.code == "UserErrorTrustedAccessGatewayReturnedForbidden"


def test_one_instance_per_cluster_across_vaults(world: BackupWorld) -> None:
    world.knobs(**FAST)
    world.ready()
    world.protect()
    second = "vault-two"
    world.create_vault(second)
    world.create_policy(vault=second)
    props = bi_properties(
        policy_id=f"{VAULT_ID.rsplit('/', 1)[0]}/{second}/backupPolicies/AKSBackupPolicy-Week"
    )
    for call in (
        lambda: world.validate(props, vault=second),
        lambda: world.protect("dup", props, vault=second),
    ):
        with pytest.raises(HttpResponseError) as info:
            call()
        assert info.value.status_code == 400
        assert info.value.error.code == "UserErrorDppDatasourceAlreadyProtected"
        assert VAULT_ID.lower() in str(info.value).lower()
    assert [b.name for b in world.dp.backup_instances.list(VAULT_RG, second)] == []


def test_estate_declared_instance_blocks_another_vault(world: BackupWorld) -> None:
    from tests.integration.dataprotection.conftest import backup_estate

    estate = backup_estate()
    other_vault = (
        f"/subscriptions/{TEST_SUB}/resourceGroups/rg-other/providers/"
        "Microsoft.DataProtection/backupVaults/legacy"
    )
    estate["dataProtection"] = {
        "vaults": [{"id": other_vault, "location": "eastus"}],
        "policies": [{"vaultId": other_vault, "name": "p", "strategy": "Month"}],
        "backupInstances": [{"vaultId": other_vault, "clusterId": CLUSTER_ID, "policyName": "p"}],
    }
    world.emu.reset(estate)
    routed = list(world.dp.backup_instances_extension_routing.list(CLUSTER_ID.lstrip("/")))
    assert len(routed) == 1 and routed[0].properties.current_protection_state == "ProtectionConfigured"
    world.knobs(**FAST)
    world.ready()
    with pytest.raises(HttpResponseError) as info:
        world.protect()
    assert info.value.error.code == "UserErrorDppDatasourceAlreadyProtected"


def test_removed_prerequisite_turns_protection_error_on_next_backup_tick(world: BackupWorld) -> None:
    world.knobs(**FAST, backupTickS=0)
    world.ready()
    world.protect()
    world.wait_state("ProtectionConfigured")
    world.revoke(world.cluster_principal(), ROLE_CONTRIBUTOR, SNAPSHOT_RG_ID)
    assert world.instance().properties.current_protection_state == "ProtectionConfigured"  # until a backup
    world.emu.admin.request("POST", "/dataprotection/tick")
    bi = world.instance()
    assert bi.properties.current_protection_state == "ProtectionError"
    assert bi.properties.protection_error_details.code == "UserErrorMissingRequiredPermissions"


def test_scheduled_tick_rechecks_on_its_own(world: BackupWorld) -> None:
    world.knobs(**FAST, backupTickS=0.2)
    world.ready()
    world.protect()
    world.wait_state("ProtectionConfigured")
    world.cs.trusted_access_role_bindings.begin_delete("rg1", "aks1", "tarb-vault").result()
    bi = world.wait_state("ProtectionError")
    assert bi.properties.protection_error_details.code == "UserErrorTrustedAccessGatewayReturnedForbidden"


def test_recheck_knob_off_keeps_instance_protected(world: BackupWorld) -> None:
    world.knobs(**FAST, backupTickS=0, recheckOnBackup=False)
    world.ready()
    world.protect()
    world.wait_state("ProtectionConfigured")
    world.cs.trusted_access_role_bindings.begin_delete("rg1", "aks1", "tarb-vault").result()
    world.emu.admin.request("POST", "/dataprotection/tick")
    assert world.instance().properties.current_protection_state == "ProtectionConfigured"


def test_repair_by_re_put_and_by_sync(world: BackupWorld) -> None:
    world.knobs(**FAST, backupTickS=0)
    world.ready(skip=("binding",))
    world.protect()
    world.wait_state("ProtectionError")
    world.bind()
    world.emu.admin.request("POST", "/dataprotection/tick")
    assert world.instance().properties.current_protection_state == "ProtectionError"  # no self-healing
    world.protect()  # re-PUT = the repair
    world.wait_state("ProtectionConfigured")
    world.cs.trusted_access_role_bindings.begin_delete("rg1", "aks1", "tarb-vault").result()
    world.emu.admin.request("POST", "/dataprotection/tick")
    world.wait_state("ProtectionError")
    world.bind()
    world.dp.backup_instances.begin_sync_backup_instance(
        VAULT_RG, "vault-eastus", "aks1-bi", {"syncType": "Default"}
    ).result()
    world.wait_state("ProtectionConfigured")


def test_recover_on_backup_knob(world: BackupWorld) -> None:
    world.knobs(**FAST, backupTickS=0, recoverOnBackup=True)
    world.ready(skip=("binding",))
    world.protect()
    world.wait_state("ProtectionError")
    world.bind()
    world.emu.admin.request("POST", "/dataprotection/tick")
    assert world.instance().properties.current_protection_state == "ProtectionConfigured"


def test_delete_is_a_long_running_operation_and_204_when_absent(world: BackupWorld) -> None:
    world.knobs(**FAST)
    world.ready()
    world.protect()
    world.dp.backup_instances.begin_delete(VAULT_RG, "vault-eastus", "aks1-bi").result()
    assert list(world.dp.backup_instances.list(VAULT_RG, "vault-eastus")) == []
    assert list(world.dp.backup_instances_extension_routing.list(CLUSTER_ID.lstrip("/"))) == []
    emu = world.emu
    path = f"{VAULT_ID}/backupInstances/aks1-bi?api-version=2024-04-01"
    status, headers, body = raw_https(emu.base_url, emu.ca_bundle, "DELETE", path)
    assert (status, body) == (204, None)
    assert "azure-asyncoperation" not in headers


def test_vault_and_cluster_must_share_a_region(world: BackupWorld) -> None:
    world.knobs(**FAST)
    body = {
        "location": "westeurope",
        "identity": {"type": "SystemAssigned"},
        "properties": {"storageSettings": [{"datastoreType": "VaultStore", "type": "LocallyRedundant"}]},
    }
    world.dp.backup_vaults.begin_create_or_update(VAULT_RG, "vault-west", body).result()
    world.create_policy(vault="vault-west")
    props = bi_properties(
        policy_id=f"{VAULT_ID.rsplit('/', 1)[0]}/vault-west/backupPolicies/AKSBackupPolicy-Week"
    )
    with pytest.raises(HttpResponseError) as info:
        world.protect("west", props, vault="vault-west")
    assert info.value.status_code == 400 and info.value.error.code == "BMSUserErrorInvalidInput"


def test_policy_must_exist_in_the_vault(world: BackupWorld) -> None:
    world.knobs(**FAST)
    world.create_vault()
    with pytest.raises(HttpResponseError) as info:
        world.protect()
    assert info.value.status_code == 400 and info.value.error.code == "BMSUserErrorInvalidInput"
