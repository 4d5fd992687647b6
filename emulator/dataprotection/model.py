"""Names, error codes and ARM bodies of Azure Backup for AKS (vaults, policies, backup instances).

One home for the facts the routes and the prerequisite checks share. Body shapes follow the recordings in
shared/recordings (vault PUT/GET, policy PUT, validateForBackup) and the official examples
(PutBackupInstance_KubernetesClusterBackupDatasourceParameters.json,
ListBackupInstancesExtensionRouting.json).
Every code is tagged in ``ERROR_CODES`` as documented (D), evidence from real output quoted publicly (E) or
assumed (A); emulator/README.md Part 3 lists the sources.
"""

from __future__ import annotations

import copy
import logging
from dataclasses import dataclass
from typing import Any

from emulator.resources.common import deterministic_uuid

logger = logging.getLogger(__name__)

DP = "Microsoft.DataProtection"
VAULT_TYPE = "Microsoft.DataProtection/backupVaults"
POLICY_TYPE = "Microsoft.DataProtection/backupVaults/backupPolicies"
BI_TYPE = "Microsoft.DataProtection/backupVaults/backupInstances"
LOCK_TYPE = "Microsoft.Authorization/locks"
AKS_DATASOURCE_TYPE = "Microsoft.ContainerService/managedClusters"
BACKUP_EXTENSION_TYPE = "microsoft.dataprotection.kubernetes"
BACKUP_OPERATOR_ROLE = "Microsoft.DataProtection/backupVaults/backup-operator"

# Built-in role definition GUIDs (the same in every tenant), [MicrosoftDocs/azure-docs@articles/
# role-based-access-control/built-in-roles.md, ms.date 2026-04-09] unless noted.
ROLE_OWNER = "8e3af657-a8ff-443c-a75c-2fe8c4bcb635"
ROLE_CONTRIBUTOR = "b24988ac-6180-42a0-ab88-20f7382dd24c"
ROLE_READER = "acdd72a7-3385-48ef-bd42-f606fba81ae7"
ROLE_DISK_SNAPSHOT_CONTRIBUTOR = "7efff54f-a5b4-42b5-a1c5-5411624893ce"
ROLE_DATA_OPERATOR_MANAGED_DISKS = "959f8984-c045-4866-89c7-12bf9737be2e"
ROLE_STORAGE_BLOB_DATA_READER = "2a2b9908-6ea1-4ae2-8e65-a410df84e7d1"
ROLE_STORAGE_BLOB_DATA_CONTRIBUTOR = "ba92f5b4-2d11-453d-a403-e96b0029c9fe"
ROLE_STORAGE_BLOB_DATA_OWNER = "b7e6dc6d-f1e8-4753-8033-0f276bb0955b"

ROLE_IMPLIED_BY: dict[str, frozenset[str]] = {
    # A role is satisfied by itself or a broader built-in (control-plane actions: Owner ⊇ Contributor ⊇
    # Reader/Disk Snapshot Contributor/Data Operator; data actions are not in Owner/Contributor, so the blob
    # data roles are only satisfied by blob data roles). Emulator simplification of RBAC evaluation.
    ROLE_READER: frozenset({ROLE_READER, ROLE_CONTRIBUTOR, ROLE_OWNER}),
    ROLE_CONTRIBUTOR: frozenset({ROLE_CONTRIBUTOR, ROLE_OWNER}),
    ROLE_DISK_SNAPSHOT_CONTRIBUTOR: frozenset({ROLE_DISK_SNAPSHOT_CONTRIBUTOR, ROLE_CONTRIBUTOR, ROLE_OWNER}),
    ROLE_DATA_OPERATOR_MANAGED_DISKS: frozenset(
        {ROLE_DATA_OPERATOR_MANAGED_DISKS, ROLE_CONTRIBUTOR, ROLE_OWNER}
    ),
    ROLE_STORAGE_BLOB_DATA_READER: frozenset(
        {ROLE_STORAGE_BLOB_DATA_READER, ROLE_STORAGE_BLOB_DATA_CONTRIBUTOR, ROLE_STORAGE_BLOB_DATA_OWNER}
    ),
    ROLE_STORAGE_BLOB_DATA_CONTRIBUTOR: frozenset(
        {ROLE_STORAGE_BLOB_DATA_CONTRIBUTOR, ROLE_STORAGE_BLOB_DATA_OWNER}
    ),
}

ROLE_NAMES = {
    ROLE_READER: "Reader",
    ROLE_CONTRIBUTOR: "Contributor",
    ROLE_DISK_SNAPSHOT_CONTRIBUTOR: "Disk Snapshot Contributor",
    ROLE_DATA_OPERATOR_MANAGED_DISKS: "Data Operator for Managed Disks",
    ROLE_STORAGE_BLOB_DATA_READER: "Storage Blob Data Reader",
    ROLE_STORAGE_BLOB_DATA_CONTRIBUTOR: "Storage Blob Data Contributor",
}


@dataclass(frozen=True)
class ErrorCode:
    code: str
    message: str
    recommended_action: str
    evidence: str
    """D (documented), E (observed in real output quoted publicly) or A (assumed) — README Part 3."""


ERROR_CODES: dict[str, ErrorCode] = {
    e.code: e
    for e in (
        ErrorCode(
            "UserErrorKubernetesBackupExtensionNotFoundError",
            "The backup extension is not installed in the cluster.",
            "Install the backup extension (microsoft.dataprotection.kubernetes) in the cluster.",
            "D",
        ),
        ErrorCode(
            "UserErrorKubernetesBackupExtensionHasErrors",
            "The backup extension installed in the cluster has errors.",
            "Delete the extension and install it again.",
            "D",
        ),
        ErrorCode(
            "UserErrorKubernetesBackupExtensionIdentityNotFound",
            "The backup extension's identity is missing.",
            "Delete the extension and install it again; a new identity is created with it.",
            "D",
        ),
        ErrorCode(
            "KubernetesBackupListExtensionsError",
            "The Backup vault could not list the extensions installed in the cluster.",
            "Assign the Reader role on the cluster to the Backup vault's managed identity.",
            "D",
        ),
        ErrorCode(
            "UserErrorNoDefaultBackupStorageLocationFound",
            "The backup storage location (storage account and blob container) was not found.",
            "Reinstall the backup extension with a correct storage account and blob container.",
            "D",
        ),
        ErrorCode(
            "UserErrorExtensionMSIMissingPermissionsOnBackupStorageLocation",
            "The backup extension's identity lacks permissions on the backup storage location.",
            "Assign Storage Blob Data Contributor on the storage account to the extension identity.",
            "D",
        ),
        ErrorCode(
            "UserErrorBackupStorageLocationNotReady",
            "The backup storage location is not ready: the extension identity's permissions have not "
            "propagated yet.",
            "Wait for the role assignment to propagate and retry the protection configuration.",
            "D",
        ),
        ErrorCode(
            "UserErrorTrustedAccessGatewayReturnedForbidden",
            "The Trusted Access role binding is missing/has gotten removed from the cluster.",
            "Create a trusted access role binding for the Backup vault with role "
            "Microsoft.DataProtection/backupVaults/backup-operator.",
            "E",
        ),
        ErrorCode(
            "UserErrorSnapshotResourceGroupHasLocks",
            "The snapshot resource group has a delete or read-only lock.",
            "Remove the lock from the snapshot resource group, or use a resource group without locks.",
            "D",
        ),
        ErrorCode(
            "UserErrorMissingRequiredPermissions",
            "Appropriate permissions to perform the operation is missing.",
            "Grant appropriate permissions to perform this operation as mentioned at "
            "https://aka.ms/UserErrorMissingRequiredPermissions and retry the operation.",
            "D",
        ),
        ErrorCode(
            "UserErrorDppDatasourceAlreadyProtected",
            "Datasource is already protected under the Backup vault {vault}.",
            "Delete the backup instance {instance} from the Backup vault {vault} to re-protect the "
            "datasource in any other vault.",
            "D",
        ),
        ErrorCode(
            "ScenarioPluginInvalidWorkflowDataRequest",
            "Fix protection error for the backup instance: the request misses the datasource set.",
            "Send dataSourceSetInfo with the backup instance.",
            "E",
        ),
        ErrorCode(
            "DppUserErrorVaultTierPolicyNotSupported",
            "The backup policy has a retention rule for the vault-standard datastore, which isn't supported "
            "for Backup vaults in this region.",
            "Remove the vault-standard retention rule and create an operational-tier policy.",
            "D",
        ),
        ErrorCode(
            "UserErrorSnapshotResourceGroupNotFound",
            "The snapshot resource group was not found.",
            "Create the snapshot resource group or choose an existing one.",
            "A",
        ),
        ErrorCode(
            "UserErrorDatasourceNotFound",
            "The datasource (the AKS cluster) was not found.",
            "Check that the cluster exists.",
            "A",
        ),
    )
}


def user_facing_error(code: str, detail: str = "", **fmt: str) -> dict[str, Any]:
    """A DataProtection UserFacingError (the ``protectionErrorDetails`` / ``error`` shape the REST docs show:
    code, message, recommendedAction[], isRetryable, isUserError, target, details, innerError)."""
    known = ERROR_CODES.get(code)
    message = known.message.format(**fmt) if known else code
    action = known.recommended_action.format(**fmt) if known else ""
    out: dict[str, Any] = {
        "code": code,
        "message": message,
        "recommendedAction": [action] if action else [],
        "isRetryable": False,
        "isUserError": True,
        "target": "",
        "details": None,
        "innerError": None,
        "properties": {},
    }
    if detail:
        out["innerError"] = {"code": code, "additionalInfo": {"DetailedNonLocalisedMessage": detail}}
    return out


def cloud_error(code: str, detail: str = "", **fmt: str) -> dict[str, Any]:
    """The ``error`` object of a failed operation / a 400 (REST walkthrough: code, message, additionalInfo
    [{type: UserFacingError, info}], target)."""
    info = user_facing_error(code, detail, **fmt)
    return {
        "additionalInfo": [{"type": "UserFacingError", "info": info}],
        "code": code,
        "message": info["message"],
        "target": None,
    }


def split_id(resource_id: str) -> tuple[str, str, str]:
    """(subscription, resource group, last name) of an ARM id under a resource group."""
    parts = resource_id.strip("/").split("/")
    return parts[1], parts[3], parts[-1]


def vault_id_of(child_id: str) -> str:
    """The vault id a policy / backup instance id lives under (caller's casing)."""
    low = child_id.lower()
    idx = low.find("/backupvaults/")
    end = low.find("/", idx + len("/backupvaults/"))
    return child_id[: end if end > 0 else len(child_id)]


def vault_body(
    resource_id: str,
    request_body: dict[str, Any],
    *,
    tenant_id: str,
    provisioning_state: str,
    previous: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The vault as GET returns it (recording vault-get): location, identity with principalId, properties
    with provisioningState, storageSettings, isVaultProtectedByResourceGuard, securitySettings, secureScore,
    bcdrSecurityLevel, replicatedRegions; no tags key when there are none."""
    props_in = copy.deepcopy(request_body.get("properties") or {})
    storage = props_in.get("storageSettings") or []
    security = props_in.get("securitySettings")
    if security is None and previous is not None:
        security = previous["properties"].get("securitySettings")
    soft = ((security or {}).get("softDeleteSettings") or {}).get("state", "On")
    redundancy = next((s.get("type") for s in storage if isinstance(s, dict)), "LocallyRedundant")
    crr = (((props_in.get("featureSettings") or {}).get("crossRegionRestoreSettings")) or {}).get("state")
    props: dict[str, Any] = {
        "provisioningState": provisioning_state,
        "storageSettings": storage,
        "isVaultProtectedByResourceGuard": False,
        "securitySettings": security
        if security is not None
        else {"softDeleteSettings": {"state": "On", "retentionDurationInDays": 14.0}},
        # Assumed scoring: the recorded LRS vault with soft delete Off answered None/Poor; the official
        # example with soft delete on answered Adequate.
        "secureScore": "None" if str(soft).lower() == "off" else "Adequate",
        "bcdrSecurityLevel": "Good"
        if redundancy == "GeoRedundant" and crr == "Enabled"
        else ("Fair" if redundancy == "GeoRedundant" else "Poor"),
        "replicatedRegions": [],
    }
    for key in ("featureSettings", "monitoringSettings"):
        if key in props_in:
            props[key] = props_in[key]
        elif previous is not None and key in previous["properties"]:
            props[key] = previous["properties"][key]
    identity_in = request_body.get("identity")
    if identity_in is None and previous is not None:
        identity_in = previous.get("identity")
    body: dict[str, Any] = {
        "location": request_body.get("location") or (previous or {}).get("location"),
    }
    if identity_in and str(identity_in.get("type", "None")).lower() != "none":
        identity = {"type": identity_in.get("type", "SystemAssigned")}
        if "SystemAssigned" in identity["type"]:
            identity["principalId"] = (identity_in.get("principalId")) or deterministic_uuid(
                "vault-msi", resource_id
            )
            identity["tenantId"] = identity_in.get("tenantId") or tenant_id
        if identity_in.get("userAssignedIdentities"):
            identity["userAssignedIdentities"] = identity_in["userAssignedIdentities"]
        body["identity"] = identity
    body["properties"] = props
    _, _, name = split_id(resource_id)
    body.update({"id": resource_id, "name": name, "type": VAULT_TYPE})
    tags = request_body.get("tags") if "tags" in request_body else (previous or {}).get("tags")
    if tags:
        body["tags"] = tags
    return body


def policy_body(resource_id: str, request_body: dict[str, Any]) -> dict[str, Any]:
    """Policy as the recording's PUT answer: properties {policyRules, datasourceTypes, objectType} (the
    request's properties.name is not echoed), id, name, type."""
    props_in = copy.deepcopy(request_body.get("properties") or {})
    props = {
        "policyRules": props_in.get("policyRules") or [],
        "datasourceTypes": props_in.get("datasourceTypes") or [],
        "objectType": props_in.get("objectType", "BackupPolicy"),
    }
    _, _, name = split_id(resource_id)
    return {"properties": props, "id": resource_id, "name": name, "type": POLICY_TYPE}


def policy_preset(strategy: str) -> dict[str, Any]:
    """The policy body Microsoft's CLI generates for a strategy (protection_facts.md §1.2, aks_helper.py
    ``_get_policy_config_for_strategy``): Week (P7D), Month (P30D), DisasterRecovery (P7D + Vault P90D)."""
    op_days = {"week": "P7D", "month": "P30D", "disasterrecovery": "P7D"}.get(strategy.lower())
    if op_days is None:
        raise ValueError(f"unknown strategy '{strategy}' (Week, Month, DisasterRecovery)")
    tagging: list[dict[str, Any]] = [
        {"isDefault": True, "tagInfo": {"id": "Default_", "tagName": "Default"}, "taggingPriority": 99}
    ]
    rules: list[dict[str, Any]] = [
        {
            "name": "BackupDaily",
            "objectType": "AzureBackupRule",
            "backupParameters": {"objectType": "AzureBackupParams", "backupType": "Incremental"},
            "dataStore": {"dataStoreType": "OperationalStore", "objectType": "DataStoreInfoBase"},
            "trigger": {
                "objectType": "ScheduleBasedTriggerContext",
                "schedule": {
                    "repeatingTimeIntervals": ["R/2024-01-01T00:00:00+00:00/P1D"],
                    "timeZone": "Coordinated Universal Time",
                },
                "taggingCriteria": tagging,
            },
        },
        {
            "name": "Default",
            "objectType": "AzureRetentionRule",
            "isDefault": True,
            "lifecycles": [
                {
                    "deleteAfter": {"objectType": "AbsoluteDeleteOption", "duration": op_days},
                    "sourceDataStore": {
                        "dataStoreType": "OperationalStore",
                        "objectType": "DataStoreInfoBase",
                    },
                    "targetDataStoreCopySettings": [],
                }
            ],
        },
    ]
    if strategy.lower() == "disasterrecovery":
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
                "name": "Vault",
                "objectType": "AzureRetentionRule",
                "isDefault": False,
                "lifecycles": [
                    {
                        "deleteAfter": {"objectType": "AbsoluteDeleteOption", "duration": "P90D"},
                        "sourceDataStore": {"dataStoreType": "VaultStore", "objectType": "DataStoreInfoBase"},
                        "targetDataStoreCopySettings": [],
                    }
                ],
            }
        )
    return {
        "properties": {
            "objectType": "BackupPolicy",
            "datasourceTypes": [AKS_DATASOURCE_TYPE],
            "policyRules": rules,
        }
    }


def policy_uses_vault_store(policy_props: dict[str, Any]) -> bool:
    for rule in policy_props.get("policyRules") or []:
        for life in rule.get("lifecycles") or []:
            stores = [life.get("sourceDataStore") or {}] + [
                (c or {}).get("dataStore") or {} for c in life.get("targetDataStoreCopySettings") or []
            ]
            if any(str(s.get("dataStoreType", "")).lower() == "vaultstore" for s in stores):
                return True
    return False


def datasource_id(bi_props: dict[str, Any]) -> str:
    info = bi_props.get("dataSourceInfo") or {}
    return str(info.get("resourceID") or info.get("resourceUri") or "")


def snapshot_rg_id(bi_props: dict[str, Any]) -> str:
    params = (bi_props.get("policyInfo") or {}).get("policyParameters") or {}
    for store in params.get("dataStoreParametersList") or []:
        if isinstance(store, dict) and store.get("resourceGroupId"):
            return str(store["resourceGroupId"])
    return ""


def backup_instance_body(
    resource_id: str,
    props_in: dict[str, Any],
    *,
    provisioning_state: str,
    protection_state: str,
    error: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The backup instance as GET returns it (the Kubernetes PutBackupInstance example and
    ListBackupInstancesExtensionRouting.json): the request's properties echoed, plus provisioningState,
    currentProtectionState, protectionStatus{status[, errorDetails]}, protectionErrorDetails on error."""
    props = copy.deepcopy(props_in)
    for key in ("provisioningState", "currentProtectionState", "protectionStatus", "protectionErrorDetails"):
        props.pop(key, None)
    props.setdefault("objectType", "BackupInstance")
    policy_info = props.get("policyInfo")
    if isinstance(policy_info, dict):
        policy_info.setdefault("policyVersion", "")
    props["provisioningState"] = provisioning_state
    props["currentProtectionState"] = protection_state
    status = {
        "ConfiguringProtection": "ConfiguringProtection",
        "ProtectionConfigured": "ProtectionConfigured",
        "ProtectionError": "ConfiguringProtectionFailed",
        "ConfiguringProtectionFailed": "ConfiguringProtectionFailed",
        "ProtectionStopped": "ProtectionStopped",
    }.get(protection_state, protection_state)
    props["protectionStatus"] = {"status": status}
    if error is not None:
        props["protectionStatus"]["errorDetails"] = error
        props["protectionErrorDetails"] = error
    _, _, name = split_id(resource_id)
    return {"id": resource_id, "name": name, "type": BI_TYPE, "properties": props}


def routing_view(body: dict[str, Any]) -> dict[str, Any]:
    """The extension-routing form of an instance: its id under the datasource
    (ListBackupInstancesExtensionRouting.json)."""
    out = copy.deepcopy(body)
    ds = datasource_id(body.get("properties") or {})
    out["id"] = f"{ds}/providers/{DP}/backupInstances/{body['name']}"
    return out
