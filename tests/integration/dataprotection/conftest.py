"""An AKS estate ready for Azure Backup and helpers that drive the emulator's DataProtection model through the
real SDK clients (azure-mgmt-dataprotection, -containerservice, -authorization)."""

from __future__ import annotations

import copy
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from azure.mgmt.authorization import AuthorizationManagementClient
from azure.mgmt.containerservice import ContainerServiceClient
from azure.mgmt.dataprotection import DataProtectionMgmtClient

from emulator.dataprotection.model import (
    ROLE_CONTRIBUTOR,
    ROLE_DISK_SNAPSHOT_CONTRIBUTOR,
    ROLE_READER,
    ROLE_STORAGE_BLOB_DATA_CONTRIBUTOR,
    ROLE_STORAGE_BLOB_DATA_READER,
    policy_preset,
)
from emulator.resources.common import deterministic_uuid
from emulator.server import Emulator
from tests.fixtures.emulator import CLUSTER_ID, TEST_ESTATE, TEST_SUB

BACKUP_RG = "rg-backup"
SNAPSHOT_RG = "rg-snap"
VAULT_RG = "rg-vault"
SNAPSHOT_RG_ID = f"/subscriptions/{TEST_SUB}/resourceGroups/{SNAPSHOT_RG}"
STORAGE = (
    f"/subscriptions/{TEST_SUB}/resourceGroups/{BACKUP_RG}/providers/Microsoft.Storage/storageAccounts/stbk"
)
CONTAINER = "aks1-rg1"
EXTENSION_ID = f"{CLUSTER_ID}/providers/Microsoft.KubernetesConfiguration/extensions/azure-aks-backup"
EXTENSION_PRINCIPAL = deterministic_uuid("extension-identity", EXTENSION_ID)
VAULT = "vault-eastus"
VAULT_ID = (
    f"/subscriptions/{TEST_SUB}/resourceGroups/{VAULT_RG}/providers/Microsoft.DataProtection/"
    f"backupVaults/{VAULT}"
)
POLICY = "AKSBackupPolicy-Week"
POLICY_ID = f"{VAULT_ID}/backupPolicies/{POLICY}"
BACKUP_OPERATOR = "Microsoft.DataProtection/backupVaults/backup-operator"
FAST = {
    "rolePropagationS": 0.0,
    "trustedAccessUpdateS": 0.05,
    "backupInstanceConfigureS": 0.1,
    "validateS": 0.05,
}


def backup_estate() -> dict[str, Any]:
    """TEST_ESTATE plus what the chain needs before any backup write: snapshot and vault resource groups,
    the storage account + container, and the backup extension configured for them."""
    estate = copy.deepcopy(TEST_ESTATE)
    estate["subscriptions"][0]["resourceGroups"] += [
        {"name": SNAPSHOT_RG, "location": "eastus"},
        {"name": VAULT_RG, "location": "eastus"},
    ]
    estate["storageAccounts"].append({"id": STORAGE, "location": "eastus"})
    estate["containers"] = [{"storageAccountId": STORAGE, "name": CONTAINER}]
    prefix = "configuration.backupStorageLocation."
    estate["extensions"] = [
        {
            "clusterId": CLUSTER_ID,
            "name": "azure-aks-backup",
            "extensionType": "microsoft.dataprotection.kubernetes",
            "configurationSettings": {
                prefix + "bucket": CONTAINER,
                prefix + "config.storageAccount": "stbk",
                prefix + "config.resourceGroup": BACKUP_RG,
                prefix + "config.subscriptionId": TEST_SUB,
                prefix + "config.useAAD": "true",
            },
        }
    ]
    estate["policyAssignments"] = [
        {"name": "aks-backup-enabled", "scope": f"/subscriptions/{TEST_SUB}", "definition": "backup-audit"}
    ]
    return estate


def bi_properties(
    cluster_id: str = CLUSTER_ID, *, policy_id: str = POLICY_ID, set_info: bool = True
) -> dict[str, Any]:
    """Backup-instance properties as Microsoft's CLI builds them (protection_facts.md §1.2/§1.3)."""
    name = cluster_id.rstrip("/").split("/")[-1]
    info = {
        "datasourceType": "Microsoft.ContainerService/managedClusters",
        "resourceID": cluster_id,
        "resourceUri": cluster_id,
        "resourceName": name,
        "resourceType": "Microsoft.ContainerService/managedclusters",
        "resourceLocation": "eastus",
    }
    props: dict[str, Any] = {
        "objectType": "BackupInstance",
        "friendlyName": f"{name}\\fullbackup",
        "dataSourceInfo": {**info, "objectType": "Datasource"},
        "policyInfo": {
            "policyId": policy_id,
            "policyParameters": {
                "backupDatasourceParametersList": [
                    {
                        "objectType": "KubernetesClusterBackupDatasourceParameters",
                        "includeClusterScopeResources": True,
                        "snapshotVolumes": True,
                        "includedVolumeTypes": ["AzureDisk"],
                    }
                ],
                "dataStoreParametersList": [
                    {
                        "objectType": "AzureOperationalStoreParameters",
                        "dataStoreType": "OperationalStore",
                        "resourceGroupId": SNAPSHOT_RG_ID,
                    }
                ],
            },
        },
    }
    if set_info:
        props["dataSourceSetInfo"] = {**info, "objectType": "DatasourceSet"}
    return props


def wait_for(predicate: Callable[[], Any], *, timeout: float = 20.0, interval: float = 0.05) -> Any:
    """Poll until truthy (guards against hangs only; the emulator's knobs decide the real timing)."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError("condition not met within timeout")
        time.sleep(interval)


@dataclass
class BackupWorld:
    """The emulator plus real SDK clients, with the chain's steps as one-liners."""

    emu: Emulator
    dp: DataProtectionMgmtClient
    cs: ContainerServiceClient
    auth: AuthorizationManagementClient
    granted: dict[str, str] = field(default_factory=dict)

    def knobs(self, **settings: Any) -> dict[str, Any]:
        result: dict[str, Any] = self.emu.admin.request("PATCH", "/dataprotection", settings)
        return result

    def create_vault(self, name: str = VAULT, *, storage: str = "LocallyRedundant", **props: Any) -> Any:
        body = {
            "location": "eastus",
            "identity": {"type": "SystemAssigned"},
            "properties": {"storageSettings": [{"datastoreType": "VaultStore", "type": storage}], **props},
        }
        return self.dp.backup_vaults.begin_create_or_update(VAULT_RG, name, body).result()

    def create_policy(self, strategy: str = "Week", name: str = POLICY, vault: str = VAULT) -> Any:
        return self.dp.backup_policies.create_or_update(VAULT_RG, vault, name, policy_preset(strategy))

    def grant(self, principal: str, role: str, scope: str) -> str:
        name = str(uuid.uuid4())
        self.auth.role_assignments.create(
            scope,
            name,
            {
                "properties": {
                    "roleDefinitionId": f"/subscriptions/{TEST_SUB}/providers/Microsoft.Authorization/"
                    f"roleDefinitions/{role}",
                    "principalId": principal,
                    "principalType": "ServicePrincipal",
                }
            },
        )
        assignment_id = f"{scope}/providers/Microsoft.Authorization/roleAssignments/{name}"
        self.granted[f"{principal}|{role}|{scope}".lower()] = assignment_id
        return assignment_id

    def revoke(self, principal: str, role: str, scope: str) -> None:
        assignment_id = self.granted.pop(f"{principal}|{role}|{scope}".lower())
        self.auth.role_assignments.delete_by_id(assignment_id)

    def vault_principal(self, name: str = VAULT) -> str:
        return str(self.dp.backup_vaults.get(VAULT_RG, name).identity.principal_id)

    def cluster_principal(self) -> str:
        return str(self.cs.managed_clusters.get("rg1", "aks1").identity.principal_id)

    def grant_chain(self, *, skip: tuple[str, ...] = (), vault: str = VAULT) -> None:
        """Every role assignment of the chain (issue 12 item 2), except the ones named in ``skip``."""
        vp = self.vault_principal(vault)
        grants = {
            "vault-reader-cluster": (vp, ROLE_READER, CLUSTER_ID),
            "vault-reader-snapshot": (vp, ROLE_READER, SNAPSHOT_RG_ID),
            "vault-snapshot-contributor": (vp, ROLE_DISK_SNAPSHOT_CONTRIBUTOR, SNAPSHOT_RG_ID),
            "vault-blob-reader": (vp, ROLE_STORAGE_BLOB_DATA_READER, STORAGE),
            "cluster-contributor-snapshot": (self.cluster_principal(), ROLE_CONTRIBUTOR, SNAPSHOT_RG_ID),
            "extension-blob-contributor": (EXTENSION_PRINCIPAL, ROLE_STORAGE_BLOB_DATA_CONTRIBUTOR, STORAGE),
        }
        for key, (principal, role, scope) in grants.items():
            if key not in skip:
                self.grant(principal, role, scope)

    def bind(self, name: str = "tarb-vault", *, vault_id: str = VAULT_ID, wait: bool = True) -> Any:
        poller = self.cs.trusted_access_role_bindings.begin_create_or_update(
            "rg1", "aks1", name, {"properties": {"sourceResourceId": vault_id, "roles": [BACKUP_OPERATOR]}}
        )
        return poller.result() if wait else poller

    def ready(self, *, skip: tuple[str, ...] = ()) -> None:
        """Vault, policy, roles and binding: everything a backup instance needs (minus ``skip``)."""
        self.create_vault()
        self.create_policy()
        self.grant_chain(skip=skip)
        if "binding" not in skip:
            self.bind()

    def validate(self, props: dict[str, Any] | None = None, vault: str = VAULT) -> Any:
        poller = self.dp.backup_instances.begin_validate_for_backup(
            VAULT_RG, vault, {"backupInstance": props or bi_properties()}
        )
        return poller.result()

    def protect(self, name: str = "aks1-bi", props: dict[str, Any] | None = None, vault: str = VAULT) -> Any:
        return self.dp.backup_instances.begin_create_or_update(
            VAULT_RG, vault, name, {"properties": props or bi_properties()}
        ).result()

    def instance(self, name: str = "aks1-bi", vault: str = VAULT) -> Any:
        return self.dp.backup_instances.get(VAULT_RG, vault, name)

    def wait_state(self, wanted: str, name: str = "aks1-bi", vault: str = VAULT) -> Any:
        def reached() -> Any:
            bi = self.instance(name, vault)
            return bi if bi.properties.current_protection_state == wanted else None

        return wait_for(reached)


@pytest.fixture
def world(emulator: Emulator) -> Iterator[BackupWorld]:
    emulator.reset(backup_estate())
    kwargs = {**emulator.client_kwargs(), "polling_interval": 0.02}
    credential = emulator.credential("protect-operator")
    yield BackupWorld(
        emu=emulator,
        dp=DataProtectionMgmtClient(credential, TEST_SUB, **kwargs),
        cs=ContainerServiceClient(credential, TEST_SUB, **kwargs),
        auth=AuthorizationManagementClient(credential, TEST_SUB, **kwargs),
    )
