"""The backup extension body, exactly as the built-in DeployIfNotExists policy deploys it.

Policies 3 and 4 (``Kubernetes_InstallAzureBackupExtensionWith[out]Tag_DINE.json``) deploy extension
``azure-aks-backup`` of type ``microsoft.dataprotection.kubernetes`` with release train ``stable``,
minor-version auto-upgrade, and seven configuration settings pointing the extension at a blob container in
the regional storage account (aks_backup_facts.md §1.4). Installing with the same body means a cluster
remediated by this product looks exactly like one remediated by the policy. The only deliberate difference
is the container name (see ``naming.backup_container_name``), because the DINE's name breaks on uppercase
letters and underscores. The constants live in :mod:`remediator.core.catalog`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from remediator.core.catalog import (
    DEFAULT_RELEASE_TRAIN,
    DINE_SETTING_KEYS,
    EXTENSION_TYPE,
    SETTING_BUCKET,
    SETTING_RESOURCE_GROUP,
    SETTING_STORAGE_ACCOUNT,
    SETTING_STORAGE_ACCOUNT_URI,
    SETTING_SUBSCRIPTION_ID,
    SETTING_TENANT_ID,
    SETTING_USE_AAD,
)
from remediator.core.ids import STORAGE_ACCOUNT_TYPE, ResourceId


def backup_extension_body(
    *,
    storage_account: ResourceId,
    container: str,
    tenant_id: str,
    blob_endpoint: str,
    release_train: str = DEFAULT_RELEASE_TRAIN,
    auto_upgrade_minor_version: bool = True,
    extra_settings: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """ARM JSON body (``{"properties": {...}}``) of the backup extension PUT, as the DINE template builds it.

    The DINE splits the storage account id into subscription, resource group and name
    (``split(storageAccountId, '/')[2|4|8]``); the parsed id gives the same parts.

    :keyword storage_account: the regional backup storage account.
    :keyword container: the blob container for this cluster.
    :keyword tenant_id: Entra tenant (``credentials.tenantId``).
    :keyword blob_endpoint: the account's ``primaryEndpoints.blob`` (``storageAccountURI``).
    :keyword release_train: release train (DINE default ``stable``).
    :keyword auto_upgrade_minor_version: DINE sets ``true``.
    :keyword extra_settings: additional configurationSettings from the config (e.g. resource limits); they may
        not override a DINE setting.
    :raises ValueError: ``storage_account`` is not a storage account id, or an extra setting collides with a
        DINE setting.
    """
    if (
        not storage_account.is_type(STORAGE_ACCOUNT_TYPE)
        or storage_account.resource_group is None
        or storage_account.subscription_id is None
        or storage_account.name is None
    ):
        raise ValueError(f"not a storage account id: {storage_account}")
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
