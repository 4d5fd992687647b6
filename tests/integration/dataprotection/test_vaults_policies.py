"""Backup vaults and policies through azure-mgmt-dataprotection, held to the recorded vault/policy traffic:
vault PUT is long-running (201 + Azure-AsyncOperation, no Retry-After), identity gets a principalId,
redundancy can be refused per region (GRS → ZRS → LRS fallback), cross-region restore needs GRS, policies
are synchronous (200) and can't be modified."""

from __future__ import annotations

import pytest
from azure.core.exceptions import HttpResponseError

from emulator.dataprotection.model import policy_preset
from tests.fixtures.emulator import TEST_SUB
from tests.integration.dataprotection.conftest import VAULT, VAULT_ID, VAULT_RG, BackupWorld, wait_for
from tests.integration.emulator.helpers import raw_https

QUOTA = "x-ms-ratelimit-remaining-subscription-resource-requests"


def test_vault_put_is_long_running_with_a_system_identity(world: BackupWorld) -> None:
    world.knobs(vaultCreateS=2.0)
    emu = world.emu
    body = {
        "location": "eastus",
        "identity": {"type": "SystemAssigned"},
        "properties": {
            "securitySettings": {"softDeleteSettings": {"state": "Off", "retentionDurationInDays": 14.0}},
            "storageSettings": [{"datastoreType": "VaultStore", "type": "LocallyRedundant"}],
        },
    }
    status, headers, created = raw_https(
        emu.base_url, emu.ca_bundle, "PUT", f"{VAULT_ID}?api-version=2024-04-01", body
    )
    assert status == 201
    assert created["properties"]["provisioningState"] == "Provisioning"
    assert created["identity"]["principalId"] and created["identity"]["tenantId"]
    assert created["type"] == "Microsoft.DataProtection/backupVaults"
    assert "tags" not in created
    assert f"{VAULT_ID}/operationStatus/".lower() in headers["azure-asyncoperation"].lower()
    assert "retry-after" not in headers and "location" not in headers  # as recorded
    assert int(headers[QUOTA]) >= 0
    status_path = headers["azure-asyncoperation"].split(emu.base_url, 1)[1]
    first = raw_https(emu.base_url, emu.ca_bundle, "GET", status_path)[2]
    assert first["status"] == "Inprogress" and first["endTime"] == "0001-01-01T00:00:00Z"
    wait_for(lambda: raw_https(emu.base_url, emu.ca_bundle, "GET", status_path)[2]["status"] == "Succeeded")
    vault = world.dp.backup_vaults.get(VAULT_RG, VAULT)
    assert vault.properties.provisioning_state == "Succeeded"
    assert vault.identity.principal_id == created["identity"]["principalId"]


def test_sdk_lro_lists_and_soft_delete(world: BackupWorld) -> None:
    vault = world.create_vault(
        securitySettings={"softDeleteSettings": {"state": "On", "retentionDurationInDays": 14}}
    )
    assert vault.properties.provisioning_state == "Succeeded"
    assert vault.properties.security_settings.soft_delete_settings.state == "On"
    assert [v.name for v in world.dp.backup_vaults.get_in_resource_group(VAULT_RG)] == [VAULT]
    assert VAULT in [v.name for v in world.dp.backup_vaults.get_in_subscription()]
    with pytest.raises(HttpResponseError) as info:
        world.dp.backup_vaults.get(VAULT_RG, "nope")
    assert info.value.status_code == 404


def test_region_can_refuse_a_redundancy_for_the_grs_zrs_lrs_fallback(world: BackupWorld) -> None:
    world.knobs(unsupportedRedundancy={"East US": ["GeoRedundant"]})
    with pytest.raises(HttpResponseError) as info:
        world.create_vault(storage="GeoRedundant")
    assert info.value.status_code == 400
    assert info.value.error.code == "RedundancyConfigurationNotAvailableInRegion"
    assert world.create_vault(storage="ZoneRedundant").properties.storage_settings[0].type == "ZoneRedundant"


def test_cross_region_restore_only_with_grs_and_never_disabled(world: BackupWorld) -> None:
    crr = {"crossRegionRestoreSettings": {"state": "Enabled"}}
    with pytest.raises(HttpResponseError) as info:
        world.create_vault("lrs-crr", storage="LocallyRedundant", featureSettings=crr)
    assert info.value.status_code == 400 and info.value.error.code == "BMSUserErrorInvalidInput"
    vault = world.create_vault("grs-crr", storage="GeoRedundant", featureSettings=crr)
    assert vault.properties.feature_settings.cross_region_restore_settings.state == "Enabled"
    with pytest.raises(HttpResponseError) as info:
        world.create_vault(
            "grs-crr",
            storage="GeoRedundant",
            featureSettings={"crossRegionRestoreSettings": {"state": "Disabled"}},
        )
    assert info.value.status_code == 400


def test_vault_validation(world: BackupWorld) -> None:
    emu = world.emu
    path = f"{VAULT_ID}?api-version=2026-06-01"
    for body, code in (
        (
            {
                "properties": {
                    "storageSettings": [{"datastoreType": "VaultStore", "type": "LocallyRedundant"}]
                }
            },
            "LocationRequired",
        ),
        ({"location": "eastus", "properties": {"storageSettings": []}}, "BMSUserErrorInvalidInput"),
        (
            {
                "location": "eastus",
                "properties": {"storageSettings": [{"datastoreType": "VaultStore", "type": "X"}]},
            },
            "BMSUserErrorInvalidInput",
        ),
    ):
        status, _, answer = raw_https(emu.base_url, emu.ca_bundle, "PUT", path, body)
        assert (status, answer["error"]["code"]) == (400, code)
    status, _, answer = raw_https(
        emu.base_url, emu.ca_bundle, "PUT", f"{VAULT_ID}?api-version=2099-01-01", {}
    )
    assert status == 400 and answer["error"]["code"] == "NoRegisteredProviderFound"


def test_unregistered_provider_is_refused(world: BackupWorld) -> None:
    from tests.integration.dataprotection.conftest import backup_estate

    estate = backup_estate()
    estate["subscriptions"][0]["providers"] = {"Microsoft.DataProtection": "NotRegistered"}
    world.emu.reset(estate)
    emu = world.emu
    body = {
        "location": "eastus",
        "properties": {"storageSettings": [{"datastoreType": "VaultStore", "type": "LocallyRedundant"}]},
    }
    status, _, answer = raw_https(
        emu.base_url, emu.ca_bundle, "PUT", f"{VAULT_ID}?api-version=2026-06-01", body
    )
    assert status == 409 and answer["error"]["code"] == "MissingSubscriptionRegistration"


@pytest.mark.parametrize("strategy", ["Week", "Month", "DisasterRecovery"])
def test_cli_policy_presets_are_synchronous_and_immutable(world: BackupWorld, strategy: str) -> None:
    world.create_vault()
    emu = world.emu
    path = f"{VAULT_ID}/backupPolicies/p-{strategy}?api-version=2026-06-01"
    status, headers, body = raw_https(emu.base_url, emu.ca_bundle, "PUT", path, policy_preset(strategy))
    assert status == 200 and QUOTA in headers and "azure-asyncoperation" not in headers
    assert body["properties"]["datasourceTypes"] == ["Microsoft.ContainerService/managedClusters"]
    got = world.dp.backup_policies.get(VAULT_RG, VAULT, f"p-{strategy}")
    assert got.properties.object_type == "BackupPolicy"
    assert f"p-{strategy}" in [p.name for p in world.dp.backup_policies.list(VAULT_RG, VAULT)]
    # the same body again is fine; a changed body is not (support matrix: policies can't be modified)
    assert raw_https(emu.base_url, emu.ca_bundle, "PUT", path, policy_preset(strategy))[0] == 200
    changed = policy_preset(strategy)
    changed["properties"]["policyRules"][1]["lifecycles"][0]["deleteAfter"]["duration"] = "P3D"
    status, _, answer = raw_https(emu.base_url, emu.ca_bundle, "PUT", path, changed)
    assert status == 400 and answer["error"]["code"] == "BMSUserErrorInvalidInput"


def test_vault_tier_policy_refused_where_the_region_has_no_vault_tier(world: BackupWorld) -> None:
    body = {
        "location": "polandcentral",
        "identity": {"type": "SystemAssigned"},
        "properties": {"storageSettings": [{"datastoreType": "VaultStore", "type": "LocallyRedundant"}]},
    }
    world.dp.backup_vaults.begin_create_or_update(VAULT_RG, "vault-pl", body).result()
    with pytest.raises(HttpResponseError) as info:
        world.dp.backup_policies.create_or_update(
            VAULT_RG, "vault-pl", "dr", policy_preset("DisasterRecovery")
        )
    assert info.value.error.code == "DppUserErrorVaultTierPolicyNotSupported"
    assert (
        world.dp.backup_policies.create_or_update(VAULT_RG, "vault-pl", "wk", policy_preset("Week")).name
        == "wk"
    )


def test_policy_validation_and_delete(world: BackupWorld) -> None:
    world.create_vault()
    emu = world.emu
    path = f"{VAULT_ID}/backupPolicies/bad?api-version=2026-06-01"
    bad = {
        "properties": {
            "objectType": "BackupPolicy",
            "datasourceTypes": ["Microsoft.ContainerService/managedClusters"],
            "policyRules": [],
        }
    }
    status, _, answer = raw_https(emu.base_url, emu.ca_bundle, "PUT", path, bad)
    assert status == 400 and answer["error"]["code"] == "BMSUserErrorInvalidInput"
    world.create_policy()
    world.dp.backup_policies.delete(VAULT_RG, VAULT, "AKSBackupPolicy-Week")
    assert list(world.dp.backup_policies.list(VAULT_RG, VAULT)) == []
    assert f"/subscriptions/{TEST_SUB}" in VAULT_ID


def test_quota_header_counts_down_and_can_be_enforced(world: BackupWorld) -> None:
    """DataProtection's quota is the generic provider quota ``dataProtection`` (emulator.quotas): its header
    on every vault/policy/instance call, counting down and refusing with 429 once switched on."""
    world.create_vault()
    emu = world.emu
    path = f"{VAULT_ID}?api-version=2026-06-01"
    off = [raw_https(emu.base_url, emu.ca_bundle, "GET", path) for _ in range(3)]
    assert all(status == 200 and int(headers[QUOTA]) > 0 for status, headers, _ in off)  # off: never refused
    emu.admin.set_config(quotas={"dataProtection": {"enabled": True, "burst": 3, "perSecond": 0.001}})
    counted = [int(raw_https(emu.base_url, emu.ca_bundle, "GET", path)[1][QUOTA]) for _ in range(3)]
    assert counted == [2, 1, 0]
    status, headers, body = raw_https(emu.base_url, emu.ca_bundle, "GET", path)
    code = emu.admin.config()["quotas"]["dataProtection"]["errorCode"]
    assert status == 429 and body["error"]["code"] == code
    assert int(headers["retry-after"]) >= 1 and headers[QUOTA] == "0"
    # the knob moved to the provider quota: the old dataProtection knob is refused, naming the new place
    with pytest.raises(Exception, match="quotas"):
        world.knobs(quota={"enforce": True})


def test_profiles_and_knob_validation(world: BackupWorld) -> None:
    view = world.knobs(profile="realistic", validateS=5)
    assert view["settings"]["rolePropagationS"] == 120.0
    assert view["settings"]["validateS"] == 5.0  # later keys override the profile
    for bad in ({"nope": 1}, {"validateS": -1}, {"initialFailureState": "Broken"}, {"profile": "fast"}):
        with pytest.raises(Exception) as info:
            world.knobs(**bad)
        assert "400" in str(info.value)
    # an estate reload puts every knob back
    from tests.integration.dataprotection.conftest import backup_estate

    world.emu.reset(backup_estate())
    assert world.emu.admin.request("GET", "/dataprotection")["settings"]["rolePropagationS"] == 0.2
