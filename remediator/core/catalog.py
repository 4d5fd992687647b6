"""Constants with one home: the Azure facts and default names the product keeps in exactly one place.

Before this module the extension type, the Policy 1-4 definition ids, the DINE's setting keys and the
role definition ids each had two or three homes (the decision, the planner, the inventory query, the
extension body, the event handlers). A fact that changes in Azure now changes here, once. Every constant
says where it comes from; ``shared/reference/aks_backup_facts.md`` is the project's digest of the sources.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from remediator.core.text import ignore_case_key

# --------------------------------------------------------------------------------------------- the extension

EXTENSION_TYPE = "microsoft.dataprotection.kubernetes"
"""``extensionType`` of the Azure Backup extension; it identifies the extension under ANY name (the DINE's
existence condition, aks_backup_facts.md §1.4). Compared case-insensitively."""

DEFAULT_EXTENSION_NAME = "azure-aks-backup"
"""The name the built-in DeployIfNotExists template gives the extension (and our default)."""

DEFAULT_RELEASE_TRAIN = "stable"
"""The DINE's release train."""

EXTENSION_NAMESPACE = "dataprotection-microsoft"
"""Kubernetes namespace the extension installs into (cluster-wide scope; aks_backup_facts.md §2)."""

CONTAINER_PREFIX = "azure-aks-backup-"
"""The DINE's backup container prefix (``take(concat('azure-aks-backup-', clusterName), 63)``), kept so that
operators recognise our containers (``naming.backup_container_name``)."""

# --------------------------------------------------------------------------------------------- the DINE body

SETTING_BUCKET = "configuration.backupStorageLocation.bucket"
SETTING_RESOURCE_GROUP = "configuration.backupStorageLocation.config.resourceGroup"
SETTING_SUBSCRIPTION_ID = "configuration.backupStorageLocation.config.subscriptionId"
SETTING_STORAGE_ACCOUNT = "configuration.backupStorageLocation.config.storageAccount"
SETTING_USE_AAD = "configuration.backupStorageLocation.config.useAAD"
SETTING_STORAGE_ACCOUNT_URI = "configuration.backupStorageLocation.config.storageAccountURI"
SETTING_TENANT_ID = "credentials.tenantId"

DINE_SETTING_KEYS: tuple[str, ...] = (
    SETTING_BUCKET,
    SETTING_RESOURCE_GROUP,
    SETTING_SUBSCRIPTION_ID,
    SETTING_STORAGE_ACCOUNT,
    SETTING_USE_AAD,
    SETTING_STORAGE_ACCOUNT_URI,
    SETTING_TENANT_ID,
)
"""The configurationSettings the built-in DeployIfNotExists template writes (aks_backup_facts.md §1.4). The
product writes them too, from the storage target and tenant; a config may not override them."""

CLI_ONLY_SETTING_ALIASES: Mapping[str, str] = MappingProxyType(
    {
        "blobcontainer": SETTING_BUCKET,
        "storageaccount": SETTING_STORAGE_ACCOUNT,
        "storageaccountresourcegroup": SETTING_RESOURCE_GROUP,
        "storageaccountsubscriptionid": SETTING_SUBSCRIPTION_ID,
        "useaad": SETTING_USE_AAD,
        "storageaccounturi": SETTING_STORAGE_ACCOUNT_URI,
        "cpulimit": "resources.limits.cpu",
        "memorylimit": "resources.limits.memory",
    }
)
"""Friendly keys only ``az k8s-extension create`` understands (aks_backup_facts.md §1.5); sent over REST
they would be ignored."""

# --------------------------------------------------------------------------------------------- Azure Policy

POLICY_1_DEFINITION = "fda9cd0b-094c-4cd5-ac2a-5e06e5277c45"
"""Built-in "Azure Backup Extension should be installed in AKS clusters" (AuditIfNotExists)."""
POLICY_2_DEFINITION = "0b0434ec-2bad-4229-965f-bb7ae5a71257"
"""Built-in "Azure Backup should be enabled for AKS clusters" (AuditIfNotExists)."""
POLICY_3_DEFINITION = "bdff5235-9f40-4a32-893f-38a03d5d607c"
"""Built-in "Install Azure Backup Extension in AKS clusters (Managed Cluster) with a given tag" (DINE)."""
POLICY_4_DEFINITION = "9a021087-bba6-42fd-b535-bba75297566b"
"""Built-in "Install Azure Backup Extension in AKS clusters (Managed Cluster) without a given tag" (DINE)."""

_DEFINITIONS = "/providers/Microsoft.Authorization/policyDefinitions/"
POLICY_DEFINITION_IDS: Mapping[str, str] = MappingProxyType(
    {
        "extension-installed-audit": _DEFINITIONS + POLICY_1_DEFINITION,
        "backup-enabled-audit": _DEFINITIONS + POLICY_2_DEFINITION,
        "install-with-tag-dine": _DEFINITIONS + POLICY_3_DEFINITION,
        "install-without-tag-dine": _DEFINITIONS + POLICY_4_DEFINITION,
    }
)
"""The four built-in AKS backup policy definitions (aks_backup_facts.md §1), by role."""

DEFAULT_POLICY_DEFINITIONS: frozenset[str] = frozenset(
    ignore_case_key(POLICY_DEFINITION_IDS[role])
    for role in ("extension-installed-audit", "install-with-tag-dine", "install-without-tag-dine")
)
"""Definitions (ids as ``ignore_case_key``, i.e. lower-cased: they are ASCII) whose NonCompliant states are
acted on when the config names no assignments: Policy 1 and the two DINEs (Policy 2 is about backup
instances, which install mode does not make)."""

# --------------------------------------------------------------------------------------------- roles
# Built-in role definition GUIDs are the same in every tenant. Sources: Microsoft's built-in roles reference
# (learn.microsoft.com/azure/role-based-access-control/built-in-roles) as carried by the Azure Verified
# Modules' builtInRoleNames maps (Azure/bicep-registry-modules, e.g. avm/res/compute/disk/main.bicep), and
# the emulator's BUILTIN_ROLE_DEFINITIONS. Protect mode (issue 12) assigns the vault identity the last five.

STORAGE_BLOB_DATA_CONTRIBUTOR = "ba92f5b4-2d11-453d-a403-e96b0029c9fe"
"""What the extension identity needs on the backup storage account (the DINE's grant)."""
READER = "acdd72a7-3385-48ef-bd42-f606fba81ae7"
"""Vault identity on the cluster and the snapshot resource group (protect mode)."""
DISK_SNAPSHOT_CONTRIBUTOR = "7efff54f-a5b4-42b5-a1c5-5411624893ce"
"""Vault identity on the snapshot resource group (protect mode)."""
DATA_OPERATOR_FOR_MANAGED_DISKS = "959f8984-c045-4866-89c7-12bf9737be2e"
"""Vault identity on the snapshot resource group where the sources require it (protect mode)."""
CONTRIBUTOR = "b24988ac-6180-42a0-ab88-20f7382dd24c"
"""Cluster identity on the snapshot resource group (protect mode)."""
STORAGE_BLOB_DATA_READER = "2a2b9908-6ea1-4ae2-8e65-a410df84e7d1"
"""Vault identity on the backup storage account (protect mode; the CLI's choice)."""

ROLE_NAMES: Mapping[str, str] = MappingProxyType(
    {
        STORAGE_BLOB_DATA_CONTRIBUTOR: "Storage Blob Data Contributor",
        READER: "Reader",
        DISK_SNAPSHOT_CONTRIBUTOR: "Disk Snapshot Contributor",
        DATA_OPERATOR_FOR_MANAGED_DISKS: "Data Operator for Managed Disks",
        CONTRIBUTOR: "Contributor",
        STORAGE_BLOB_DATA_READER: "Storage Blob Data Reader",
    }
)
"""Role GUID -> display name, for reports."""

TRUSTED_ACCESS_BACKUP_ROLE = "Microsoft.DataProtection/backupVaults/backup-operator"
"""The trusted-access role a backup vault gets on the cluster (protection_facts.md §1; protect mode)."""


def role_definition_id(subscription_id: str, role_guid: str) -> str:
    """Full id of a built-in role definition as the DINE writes it
    (``subscriptionResourceId('Microsoft.Authorization/roleDefinitions', guid)``)."""
    return f"/subscriptions/{subscription_id}/providers/Microsoft.Authorization/roleDefinitions/{role_guid}"


def role_guid_of(role_definition: str) -> str:
    """The GUID at the end of a role definition id (any scope prefix, any casing), lower-cased
    (``ignore_case_key``)."""
    return ignore_case_key(role_definition.rstrip("/").rsplit("/", 1)[-1])
