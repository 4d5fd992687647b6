"""The backup extension body, exactly as the built-in DeployIfNotExists policy deploys it.

Policies 3 and 4 (``Kubernetes_InstallAzureBackupExtensionWith[out]Tag_DINE.json``) deploy extension
``azure-aks-backup`` of type ``microsoft.dataprotection.kubernetes`` with release train ``stable``,
minor-version auto-upgrade, and seven configuration settings pointing the extension at a blob container in
the regional storage account (aks_backup_facts.md §1.4). Installing with the same body means a cluster
remediated by this product looks exactly like one remediated by the policy. The only deliberate difference
is the container name (see ``naming.backup_container_name``), because the DINE's name breaks on uppercase
letters and underscores.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from remediator.core.text import ignore_case_key

logger = logging.getLogger(__name__)

EXTENSION_TYPE = "microsoft.dataprotection.kubernetes"
"""The extensionType that identifies the backup extension under any name (the DINE's existence condition)."""

DEFAULT_EXTENSION_NAME = "azure-aks-backup"
DEFAULT_RELEASE_TRAIN = "stable"

STORAGE_BLOB_DATA_CONTRIBUTOR = "ba92f5b4-2d11-453d-a403-e96b0029c9fe"
"""Role definition GUID the extension identity needs on the storage account."""

SETTING_BUCKET = "configuration.backupStorageLocation.bucket"
SETTING_RESOURCE_GROUP = "configuration.backupStorageLocation.config.resourceGroup"
SETTING_SUBSCRIPTION_ID = "configuration.backupStorageLocation.config.subscriptionId"
SETTING_STORAGE_ACCOUNT = "configuration.backupStorageLocation.config.storageAccount"
SETTING_USE_AAD = "configuration.backupStorageLocation.config.useAAD"
SETTING_STORAGE_ACCOUNT_URI = "configuration.backupStorageLocation.config.storageAccountURI"
SETTING_TENANT_ID = "credentials.tenantId"

DINE_SETTING_KEYS = frozenset(
    {
        SETTING_BUCKET,
        SETTING_RESOURCE_GROUP,
        SETTING_SUBSCRIPTION_ID,
        SETTING_STORAGE_ACCOUNT,
        SETTING_USE_AAD,
        SETTING_STORAGE_ACCOUNT_URI,
        SETTING_TENANT_ID,
    }
)
"""The configuration settings the DINE template writes; extra settings from the config may not override
them."""


@dataclass(frozen=True)
class StorageTarget:
    """The parts of the storage account id the extension settings need.

    :param subscription_id: subscription of the storage account.
    :param resource_group: resource group of the storage account.
    :param name: storage account name.
    """

    subscription_id: str
    resource_group: str
    name: str

    @classmethod
    def from_id(cls, storage_account_id: str) -> StorageTarget:
        """Split a storage account id the way the DINE does (segments 2, 4 and 8 of ``id.split('/')``).

        :raises ValueError: the id does not have the storage account shape.
        """
        parts = storage_account_id.split("/")
        if (
            len(parts) != 9
            or ignore_case_key(parts[1]) != "subscriptions"
            or ignore_case_key(parts[3]) != "resourcegroups"
            or ignore_case_key(parts[5]) != "providers"
            or ignore_case_key(parts[6]) != "microsoft.storage"
            or ignore_case_key(parts[7]) != "storageaccounts"
            or not all(parts[i] for i in (2, 4, 8))
        ):
            raise ValueError(f"not a storage account id: {storage_account_id!r}")
        return cls(subscription_id=parts[2], resource_group=parts[4], name=parts[8])


def backup_extension_body(
    *,
    storage_account: StorageTarget,
    container: str,
    tenant_id: str,
    blob_endpoint: str,
    release_train: str = DEFAULT_RELEASE_TRAIN,
    auto_upgrade_minor_version: bool = True,
    extra_settings: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """ARM JSON body (``{"properties": {...}}``) of the backup extension PUT, as the DINE template builds it.

    :keyword storage_account: the regional backup storage account.
    :keyword container: the blob container for this cluster.
    :keyword tenant_id: Entra tenant (``credentials.tenantId``).
    :keyword blob_endpoint: the account's ``primaryEndpoints.blob`` (``storageAccountURI``).
    :keyword release_train: release train (DINE default ``stable``).
    :keyword auto_upgrade_minor_version: DINE sets ``true``.
    :keyword extra_settings: additional configurationSettings from the config (e.g. resource limits); they may
        not override a DINE setting.
    :raises ValueError: an extra setting collides with a DINE setting.
    """
    settings: dict[str, str] = {
        SETTING_BUCKET: container,
        SETTING_RESOURCE_GROUP: storage_account.resource_group,
        SETTING_SUBSCRIPTION_ID: storage_account.subscription_id,
        SETTING_STORAGE_ACCOUNT: storage_account.name,
        SETTING_TENANT_ID: tenant_id,
        SETTING_USE_AAD: "true",
        SETTING_STORAGE_ACCOUNT_URI: blob_endpoint,
    }
    for key, value in (extra_settings or {}).items():
        if key in DINE_SETTING_KEYS:
            raise ValueError(f"extension setting {key!r} is set by the DINE body and may not be overridden")
        settings[key] = str(value)
    return {
        "properties": {
            "extensionType": EXTENSION_TYPE,
            "autoUpgradeMinorVersion": auto_upgrade_minor_version,
            "releaseTrain": release_train,
            "configurationSettings": settings,
        }
    }


def storage_blob_data_contributor_id(subscription_id: str) -> str:
    """Full role definition id of Storage Blob Data Contributor in ``subscription_id`` (the DINE's
    ``subscriptionResourceId('Microsoft.Authorization/roleDefinitions', ...)``)."""
    return (
        f"/subscriptions/{subscription_id}/providers/Microsoft.Authorization/roleDefinitions/"
        f"{STORAGE_BLOB_DATA_CONTRIBUTOR}"
    )
