"""Protect mode's pure facts: what "protected" needs for one cluster, and the ARM bodies and names that make
it.

Microsoft's own orchestrator, ``az dataprotection enable-backup trigger``
(Azure/azure-cli-extensions@src/dataprotection/azext_dataprotection/manual/aks/aks_helper.py, digested in
``shared/reference/protection_facts.md`` §1.3), is the model: the same vault, policy and resource-group names
and presets, the same backup-instance body (with ``dataSourceSetInfo``: without it the instance is created
and then fails with ``ScenarioPluginInvalidWorkflowDataRequest``, hashicorp/terraform-provider-azurerm#25345),
the same cluster identity rule (system-assigned, else the first user-assigned). Where the CLI draws a random
name (the trusted-access binding ``tarb-<16 hex>``, the instance ``<cluster>-<8 hex>``) the product draws a
deterministic one, so a repeated reconcile can never create a second.

:class:`ProtectionOptions` is the config flattened for the planner; :func:`targets_for` resolves one
cluster's vault, policy and snapshot resource group; the ``*_body`` functions build request bodies.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from remediator.core.config import RemediatorConfig, normalize_region
from remediator.core.ids import ResourceId, parse_resource_group_id
from remediator.core.text import ignore_case_key

logger = logging.getLogger(__name__)

AKS_DATASOURCE_TYPE = "Microsoft.ContainerService/managedClusters"
"""``datasourceType`` of an AKS backup instance and ``datasourceTypes`` of its policy."""
AKS_RESOURCE_TYPE = "Microsoft.ContainerService/managedclusters"
"""``resourceType`` as the CLI and the 2025-09-01 example write it (lower-case ``managedclusters``)."""
BACKUP_TAG = "AKSAzureBackup"
"""The tag the CLI puts on what it creates for a region (``AKSAzureBackup: <region>``); the product adds it to
its vault and snapshot resource groups so people recognise them."""
REDUNDANCY_REFUSED_CODE = "RedundancyConfigurationNotAvailableInRegion"
"""A vault PUT with a storage redundancy the region does not offer (the CLI falls back GRS -> ZRS -> LRS on
any create failure; the emulator answers this code, see emulator/README.md Part 3)."""
TRUSTED_ACCESS_LIMIT = 8
"""At most 8 trusted-access role bindings per cluster (MicrosoftDocs/azure-aks-docs@articles/aks/
trusted-access-feature.md; aks_backup_facts.md §2.4)."""

RoleScopeChoice = Literal["perCluster", "resourceGroup", "subscription"]
DataOperatorChoice = Literal["auto", "always", "never"]


# --------------------------------------------------------------------------------------------- options


@dataclass(frozen=True)
class RegionProtection:
    """One region's protection targets, resolved from ``regionTargets.<region>``.

    :param vault: the backup vault id (given, or where the preset creates it).
    :param vault_preset: how to create the vault (``None``: the vault is given and must exist).
    :param policy: the backup policy id.
    :param policy_strategy: the preset strategy (``None``: the policy is given and must exist).
    :param snapshot_group: a fixed snapshot resource group id, or ``None`` when ``snapshot_group_name`` is
        used in each cluster's subscription.
    :param snapshot_group_name: the snapshot resource group name in each cluster's subscription.
    """

    vault: ResourceId
    vault_preset: VaultPreset | None
    policy: ResourceId
    policy_strategy: str | None
    snapshot_group: ResourceId | None
    snapshot_group_name: str | None


@dataclass(frozen=True)
class VaultPreset:
    """How the product creates a vault (``BackupVaultPreset`` of the config, flattened)."""

    redundancy: tuple[str, ...]
    cross_region_restore: bool
    soft_delete_retention_days: int


@dataclass(frozen=True)
class BackupScope:
    """What a backup instance backs up (``protection`` of the config)."""

    included_namespaces: tuple[str, ...] = ()
    excluded_namespaces: tuple[str, ...] = ()
    include_cluster_scope_resources: bool = True
    snapshot_volumes: bool = True
    included_volume_types: tuple[str, ...] = ("AzureDisk",)
    label_selectors: tuple[str, ...] = ()


@dataclass(frozen=True)
class ProtectionOptions:
    """Protect mode's knobs, flattened from the config (pure; part of ``PlanningOptions``).

    :param regions: normalized region -> its targets.
    :param scope: what every backup instance backs up.
    :param role_scope: where the vault identity's Reader for a cluster is created.
    :param data_operator: when the vault identity gets Data Operator for Managed Disks.
    :param max_repairs: re-validate + sync attempts per backup-instance error episode.
    """

    regions: Mapping[str, RegionProtection] = field(default_factory=dict)
    scope: BackupScope = field(default_factory=BackupScope)
    role_scope: RoleScopeChoice = "perCluster"
    data_operator: DataOperatorChoice = "auto"
    max_repairs: int = 3

    @classmethod
    def from_config(cls, config: RemediatorConfig) -> ProtectionOptions:
        regions: dict[str, RegionProtection] = {}
        for region, targets in config.targets.items():
            vault_preset = targets.vault_preset
            policy_preset = targets.policy_preset
            group = targets.snapshot_resource_group
            regions[region] = RegionProtection(
                vault=targets.vault_id(region),
                vault_preset=None
                if vault_preset is None
                else VaultPreset(
                    redundancy=tuple(vault_preset.redundancy),
                    cross_region_restore=vault_preset.cross_region_restore,
                    soft_delete_retention_days=vault_preset.soft_delete_retention_days,
                ),
                policy=targets.policy_id(region),
                policy_strategy=None if policy_preset is None else policy_preset.strategy,
                snapshot_group=group if isinstance(group, ResourceId) else None,
                snapshot_group_name=targets.snapshot_group_name(region),
            )
        protection = config.protection
        return cls(
            regions=regions,
            scope=BackupScope(
                included_namespaces=tuple(protection.included_namespaces),
                excluded_namespaces=tuple(protection.excluded_namespaces),
                include_cluster_scope_resources=protection.include_cluster_scope_resources,
                snapshot_volumes=protection.snapshot_volumes,
                included_volume_types=tuple(protection.included_volume_types),
                label_selectors=tuple(protection.label_selectors),
            ),
            role_scope=config.remediation.role_assignment_scope,
            data_operator=protection.data_operator_for_managed_disks,
            max_repairs=config.remediation.max_repairs,
        )


@dataclass(frozen=True)
class ClusterTargets:
    """One cluster's vault, policy and snapshot resource group.

    :param region: the cluster's (normalized) region.
    :param vault: the region's backup vault.
    :param vault_preset: how to create the vault, or ``None`` (given).
    :param policy: the backup policy.
    :param policy_strategy: the preset, or ``None`` (given).
    :param snapshot_group: the snapshot resource group (in the cluster's subscription when named).
    :param snapshot_group_created: whether the product creates it when missing (named, not given).
    """

    region: str
    vault: ResourceId
    vault_preset: VaultPreset | None
    policy: ResourceId
    policy_strategy: str | None
    snapshot_group: ResourceId
    snapshot_group_created: bool


def targets_for(options: ProtectionOptions, cluster_id: ResourceId, region: str) -> ClusterTargets | None:
    """The cluster's targets, or ``None`` when its region has none (the decision does not select it then)."""
    region = normalize_region(region)
    found = options.regions.get(region)
    if found is None:
        return None
    if found.snapshot_group is not None:
        group, created = found.snapshot_group, False
    else:
        name = found.snapshot_group_name or f"{BACKUP_TAG}_{region}"
        group = parse_resource_group_id(f"/subscriptions/{cluster_id.subscription_id}/resourceGroups/{name}")
        created = True
    return ClusterTargets(
        region=region,
        vault=found.vault,
        vault_preset=found.vault_preset,
        policy=found.policy,
        policy_strategy=found.policy_strategy,
        snapshot_group=group,
        snapshot_group_created=created,
    )


# --------------------------------------------------------------------------------------------- names


def _hex(text: str, length: int) -> str:
    return hashlib.sha256(ignore_case_key(text.strip()).encode("utf-8")).hexdigest()[:length]


def trusted_access_binding_name(vault_id: ResourceId) -> str:
    """``tarb-<16 hex of the vault id>``: the CLI's form (``tarb-`` + 16 hex), but derived from the vault so
    every reconcile names the same binding (1-24 characters of ``[A-Za-z0-9-]``, the AKS rule)."""
    return "tarb-" + _hex(vault_id.canonical, 16)


def backup_instance_name(cluster_name: str, cluster_id: ResourceId) -> str:
    """``<cluster>-<8 hex of the cluster id>``: the CLI's form (``<cluster>-<8 hex>``), derived from the id
    instead of a random uuid so a retried PUT addresses the same instance."""
    return f"{cluster_name}-{_hex(cluster_id.canonical, 8)}"


def vault_name_default(region: str) -> str:
    """``AKSAzureBackup-<region>``: the CLI's vault name."""
    return f"{BACKUP_TAG}-{normalize_region(region)}"


# --------------------------------------------------------------------------------------------- bodies


def vault_body(location: str, redundancy: str, preset: VaultPreset) -> dict[str, Any]:
    """A backup vault PUT body as the CLI creates it (``_try_create_vault_with_storage_type``):
    system-assigned identity, one VaultStore storage setting, soft delete On with the retention days,
    cross-subscription restore Enabled, cross-region restore Enabled only with GeoRedundant storage (it needs
    a paired region and can never be disabled again). The CLI also sets immutability Unlocked; the product
    leaves immutability to the operator (it governs when recovery points may be deleted, a retention decision,
    not a prerequisite)."""
    features: dict[str, Any] = {"crossSubscriptionRestoreSettings": {"state": "Enabled"}}
    if redundancy == "GeoRedundant" and preset.cross_region_restore:
        features["crossRegionRestoreSettings"] = {"state": "Enabled"}
    return {
        "location": normalize_region(location),
        "tags": {BACKUP_TAG: normalize_region(location)},
        "identity": {"type": "SystemAssigned"},
        "properties": {
            "storageSettings": [{"datastoreType": "VaultStore", "type": redundancy}],
            "securitySettings": {
                "softDeleteSettings": {
                    "state": "On",
                    "retentionDurationInDays": float(preset.soft_delete_retention_days),
                }
            },
            "featureSettings": features,
            "monitoringSettings": {"azureMonitorAlertSettings": {"alertsForAllJobFailures": "Enabled"}},
        },
    }


def policy_body(strategy: str) -> dict[str, Any]:
    """The backup policy the CLI creates for a strategy (``aks_helper.py``
    ``_get_policy_config_for_strategy``): a daily incremental backup (``R/2024-01-01T00:00:00+00:00/P1D``,
    UTC) to the operational store, kept 7 (Week, DisasterRecovery) or 30 (Month) days; DisasterRecovery adds a
    vault-tier copy of the first backup of each day, kept 90 days."""
    operational = {"Week": "P7D", "Month": "P30D", "DisasterRecovery": "P7D"}.get(strategy)
    if operational is None:
        raise ValueError(f"unknown backup strategy {strategy!r} (Week, Month, DisasterRecovery)")
    vault_retention = "P90D" if strategy == "DisasterRecovery" else None

    def retention(name: str, store: str, duration: str, *, default: bool) -> dict[str, Any]:
        return {
            "isDefault": default,
            "lifecycles": [
                {
                    "deleteAfter": {"duration": duration, "objectType": "AbsoluteDeleteOption"},
                    "sourceDataStore": {"dataStoreType": store, "objectType": "DataStoreInfoBase"},
                    "targetDataStoreCopySettings": [],
                }
            ],
            "name": name,
            "objectType": "AzureRetentionRule",
        }

    rules: list[dict[str, Any]] = [retention("Default", "OperationalStore", operational, default=True)]
    tagging: list[dict[str, Any]] = [
        {"isDefault": True, "tagInfo": {"id": "Default_", "tagName": "Default"}, "taggingPriority": 99}
    ]
    if vault_retention:
        rules.append(retention("Vault", "VaultStore", vault_retention, default=False))
        tagging.append(
            {
                "isDefault": False,
                "tagInfo": {"id": "Vault_", "tagName": "Vault"},
                "taggingPriority": 50,
                "criteria": [
                    {"objectType": "ScheduleBasedBackupCriteria", "absoluteCriteria": ["FirstOfDay"]}
                ],
            }
        )
    rules.append(
        {
            "backupParameters": {"backupType": "Incremental", "objectType": "AzureBackupParams"},
            "dataStore": {"dataStoreType": "OperationalStore", "objectType": "DataStoreInfoBase"},
            "name": "BackupDaily",
            "objectType": "AzureBackupRule",
            "trigger": {
                "objectType": "ScheduleBasedTriggerContext",
                "schedule": {
                    "repeatingTimeIntervals": ["R/2024-01-01T00:00:00+00:00/P1D"],
                    "timeZone": "Coordinated Universal Time",
                },
                "taggingCriteria": tagging,
            },
        }
    )
    return {
        "properties": {
            "objectType": "BackupPolicy",
            "datasourceTypes": [AKS_DATASOURCE_TYPE],
            "policyRules": rules,
        }
    }


def policy_uses_vault_tier(policy_properties: Mapping[str, Any]) -> bool:
    """Whether a policy keeps (or copies) backups in the vault tier (a ``VaultStore`` lifecycle)."""
    for rule in policy_properties.get("policyRules") or ():
        if not isinstance(rule, Mapping):
            continue
        for life in rule.get("lifecycles") or ():
            if not isinstance(life, Mapping):
                continue
            stores = [life.get("sourceDataStore") or {}]
            stores += [
                (c or {}).get("dataStore") or {} for c in life.get("targetDataStoreCopySettings") or ()
            ]
            if any(str((s or {}).get("dataStoreType", "")).lower() == "vaultstore" for s in stores):
                return True
    return False


def resource_group_body(location: str) -> dict[str, Any]:
    """The snapshot resource group PUT body: the region, tagged as the CLI tags its backup resource group."""
    region = normalize_region(location)
    return {"location": region, "tags": {BACKUP_TAG: region}}


def backup_instance_body(
    *,
    cluster_id: ResourceId,
    cluster_name: str,
    location: str,
    policy: ResourceId,
    snapshot_group: ResourceId,
    scope: BackupScope,
) -> dict[str, Any]:
    """The backup instance PUT body (also the ``backupInstance`` of validateForBackup): the 2025-09-01 example
    (PutBackupInstance_KubernetesClusterBackupDatasourceParameters.json) with the CLI's values
    (``_get_backup_instance_payload``): ``friendlyName <cluster>\\fullbackup``, ``dataSourceInfo`` AND
    ``dataSourceSetInfo``, the policy, the operational store's snapshot resource group, and the backup scope.
    """
    info = {
        "datasourceType": AKS_DATASOURCE_TYPE,
        "resourceID": cluster_id.canonical,
        "resourceUri": cluster_id.canonical,
        "resourceName": cluster_name,
        "resourceType": AKS_RESOURCE_TYPE,
        "resourceLocation": normalize_region(location),
    }
    parameters: dict[str, Any] = {
        "objectType": "KubernetesClusterBackupDatasourceParameters",
        "snapshotVolumes": scope.snapshot_volumes,
        "includeClusterScopeResources": scope.include_cluster_scope_resources,
        "includedVolumeTypes": list(scope.included_volume_types),
    }
    if scope.included_namespaces:
        parameters["includedNamespaces"] = list(scope.included_namespaces)
    if scope.excluded_namespaces:
        parameters["excludedNamespaces"] = list(scope.excluded_namespaces)
    if scope.label_selectors:
        parameters["labelSelectors"] = list(scope.label_selectors)
    return {
        "properties": {
            "objectType": "BackupInstance",
            "friendlyName": f"{cluster_name}\\fullbackup",
            "dataSourceInfo": {**info, "objectType": "Datasource"},
            "dataSourceSetInfo": {**info, "objectType": "DatasourceSet"},
            "policyInfo": {
                "policyId": policy.canonical,
                "policyParameters": {
                    "backupDatasourceParametersList": [parameters],
                    "dataStoreParametersList": [
                        {
                            "objectType": "AzureOperationalStoreParameters",
                            "dataStoreType": "OperationalStore",
                            "resourceGroupId": snapshot_group.canonical,
                        }
                    ],
                },
            },
        }
    }
