"""What Azure Backup checks before (and while) it protects an AKS cluster, as the backup service sees it.

Used by validateForBackup, by the end of a backup instance's ConfiguringProtection and by each scheduled
"backup" tick. The backup side sees role assignments only after the propagation delay and trusted-access
bindings only once Succeeded and effective (``Visibility``); ARM reads see both at once. The checks run in a
fixed order and the first missing prerequisite decides the error code (codes and evidence: model.ERROR_CODES,
README Part 3).
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from typing import Any

from emulator.dataprotection.model import (
    BACKUP_EXTENSION_TYPE,
    BACKUP_OPERATOR_ROLE,
    LOCK_TYPE,
    ROLE_CONTRIBUTOR,
    ROLE_DATA_OPERATOR_MANAGED_DISKS,
    ROLE_DISK_SNAPSHOT_CONTRIBUTOR,
    ROLE_IMPLIED_BY,
    ROLE_NAMES,
    ROLE_READER,
    ROLE_STORAGE_BLOB_DATA_CONTRIBUTOR,
    ROLE_STORAGE_BLOB_DATA_READER,
    datasource_id,
    snapshot_rg_id,
)
from emulator.dataprotection.settings import DataProtectionSettings
from emulator.resources.authorization import role_definition_guid
from emulator.state import EmulatorState, key_of

logger = logging.getLogger(__name__)

VISIBLE, PENDING, MISSING = "visible", "pending", "missing"


@dataclass(frozen=True)
class Missing:
    """The first missing prerequisite: the error code and a detail message naming principal/role/scope."""

    code: str
    detail: str


class Visibility:
    """When the backup side starts to see a role assignment or a trusted-access binding (clock seconds).

    Keys absent here are visible (estate-declared objects are propagated already)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._visible_at: dict[str, float] = {}

    def clear(self) -> None:
        with self._lock:
            self._visible_at.clear()

    def set(self, resource_id: str, at: float) -> None:
        with self._lock:
            self._visible_at[key_of(resource_id)] = at

    def forget(self, resource_id: str) -> None:
        with self._lock:
            self._visible_at.pop(key_of(resource_id), None)

    def visible(self, resource_id: str, now: float) -> bool:
        with self._lock:
            at = self._visible_at.get(key_of(resource_id))
        return at is None or now >= at


def _covers(assignment_scope: str, target: str) -> bool:
    s, t = key_of(assignment_scope), key_of(target)
    return t == s or t.startswith(s + "/") or s == ""


def role_status(
    state: EmulatorState, visibility: Visibility, principal: str, role: str, scope: str, now: float
) -> str:
    """VISIBLE if an assignment of ``role`` (or a broader built-in) for ``principal`` at ``scope`` or above
    is propagated; PENDING if one exists but has not propagated; MISSING otherwise."""
    accepted = ROLE_IMPLIED_BY.get(role, frozenset({role}))
    best = MISSING
    with state.lock:
        assignments = list(state.role_assignments.values())
    for body in assignments:
        props = body.get("properties") or {}
        if str(props.get("principalId", "")).lower() != principal.lower():
            continue
        if role_definition_guid(str(props.get("roleDefinitionId", ""))) not in accepted:
            continue
        if not _covers(str(props.get("scope", "")), scope):
            continue
        if visibility.visible(str(body.get("id", "")), now):
            return VISIBLE
        best = PENDING
    return best


def cluster_principal(cluster: dict[str, Any]) -> str | None:
    """The cluster's managed identity principal: system-assigned, else the first user-assigned one (the
    order Microsoft's CLI orchestrator uses, protection_facts.md §1.3)."""
    identity = cluster.get("identity") or {}
    if identity.get("principalId"):
        return str(identity["principalId"])
    for value in (identity.get("userAssignedIdentities") or {}).values():
        if (value or {}).get("principalId"):
            return str(value["principalId"])
    return None


def backup_extension(state: EmulatorState, cluster_id: str) -> dict[str, Any] | None:
    for body in state.children("extensions", cluster_id + "/providers/Microsoft.KubernetesConfiguration"):
        ext_type = str((body.get("properties") or {}).get("extensionType", "")).lower()
        if ext_type == BACKUP_EXTENSION_TYPE:
            return body
    return None


def storage_location(state: EmulatorState, extension: dict[str, Any]) -> tuple[str, str] | None:
    """(storage account id, container id) from the extension's backupStorageLocation settings, if both
    exist."""
    settings = (extension.get("properties") or {}).get("configurationSettings") or {}
    prefix = "configuration.backupStorageLocation."
    account = settings.get(prefix + "config.storageAccount")
    group = settings.get(prefix + "config.resourceGroup")
    sub = settings.get(prefix + "config.subscriptionId")
    bucket = settings.get(prefix + "bucket")
    if not (account and group and sub and bucket):
        return None
    account_id = (
        f"/subscriptions/{sub}/resourceGroups/{group}/providers/Microsoft.Storage/storageAccounts/{account}"
    )
    container_id = f"{account_id}/blobServices/default/containers/{bucket}"
    if state.get("storage_accounts", account_id) is None or state.get("containers", container_id) is None:
        return None
    return account_id, container_id


def binding_ready(
    state: EmulatorState, visibility: Visibility, cluster_id: str, vault_id: str, now: float
) -> bool:
    for body in state.children("resources", cluster_id + "/trustedAccessRoleBindings"):
        props = body.get("properties") or {}
        if key_of(str(props.get("sourceResourceId", ""))) != key_of(vault_id):
            continue
        roles = {str(r).lower() for r in props.get("roles") or []}
        if BACKUP_OPERATOR_ROLE.lower() not in roles:
            continue
        if props.get("provisioningState") == "Succeeded" and visibility.visible(str(body["id"]), now):
            return True
    return False


def locks_on(state: EmulatorState, scope: str) -> list[dict[str, Any]]:
    """CanNotDelete / ReadOnly locks at ``scope`` or above (locks are inherited)."""
    out = []
    with state.lock:
        bodies = list(state.resources.values())
    for body in bodies:
        if str(body.get("type", "")).lower() != LOCK_TYPE.lower():
            continue
        lock_scope = str(body["id"]).rsplit("/providers/Microsoft.Authorization/locks/", 1)[0]
        if _covers(lock_scope, scope):
            out.append(body)
    return out


def check(
    state: EmulatorState,
    settings: DataProtectionSettings,
    visibility: Visibility,
    *,
    vault: dict[str, Any],
    bi_props: dict[str, Any],
    now: float,
) -> Missing | None:
    """The first prerequisite the backup service would find missing for this instance, or None."""
    vault_id = str(vault["id"])
    cluster_id = datasource_id(bi_props)
    if not bi_props.get("dataSourceSetInfo"):
        return Missing("ScenarioPluginInvalidWorkflowDataRequest", "dataSourceSetInfo is missing.")
    cluster = state.get("clusters", cluster_id)
    if cluster is None:
        return Missing("UserErrorDatasourceNotFound", f"Cluster '{cluster_id}' was not found.")
    vault_principal = str(((vault.get("identity") or {}).get("principalId")) or "")
    if not vault_principal:
        return Missing(
            "UserErrorMissingRequiredPermissions",
            f"The Backup vault '{vault_id}' has no system-assigned managed identity.",
        )

    def lacking(principal: str, role: str, scope: str) -> str | None:
        status = role_status(state, visibility, principal, role, scope, now)
        if status == VISIBLE:
            return None
        return (
            f"The client '{principal}' with object id '{principal}' does not have the role "
            f"'{ROLE_NAMES.get(role, role)}' over scope '{scope}'"
            + (" (the role assignment has not propagated yet)." if status == PENDING else ".")
        )

    why = lacking(vault_principal, ROLE_READER, cluster_id)
    if why:
        return Missing("KubernetesBackupListExtensionsError", why)
    extension = backup_extension(state, cluster_id)
    if extension is None:
        return Missing(
            "UserErrorKubernetesBackupExtensionNotFoundError",
            f"No extension of type {BACKUP_EXTENSION_TYPE} on '{cluster_id}'.",
        )
    ext_props = extension.get("properties") or {}
    if ext_props.get("provisioningState") != "Succeeded":
        return Missing(
            "UserErrorKubernetesBackupExtensionHasErrors",
            f"Extension '{extension['id']}' is {ext_props.get('provisioningState')}.",
        )
    ext_principal = str(((ext_props.get("aksAssignedIdentity") or {}).get("principalId")) or "")
    if not ext_principal:
        return Missing(
            "UserErrorKubernetesBackupExtensionIdentityNotFound",
            f"Extension '{extension['id']}' has no aksAssignedIdentity.",
        )
    location = storage_location(state, extension)
    if location is None:
        return Missing(
            "UserErrorNoDefaultBackupStorageLocationFound",
            f"The storage account or blob container configured on '{extension['id']}' does not exist.",
        )
    account_id = location[0]
    status = role_status(
        state, visibility, ext_principal, ROLE_STORAGE_BLOB_DATA_CONTRIBUTOR, account_id, now
    )
    if status == MISSING:
        return Missing(
            "UserErrorExtensionMSIMissingPermissionsOnBackupStorageLocation",
            f"Extension identity '{ext_principal}' lacks Storage Blob Data Contributor on '{account_id}'.",
        )
    if status == PENDING:
        return Missing(
            "UserErrorBackupStorageLocationNotReady",
            f"Storage Blob Data Contributor for '{ext_principal}' on '{account_id}' has not propagated yet.",
        )
    if not binding_ready(state, visibility, cluster_id, vault_id, now):
        return Missing(
            "UserErrorTrustedAccessGatewayReturnedForbidden",
            f"No effective trusted access role binding with source '{vault_id}' and role "
            f"{BACKUP_OPERATOR_ROLE} on '{cluster_id}'.",
        )
    snapshot_rg = snapshot_rg_id(bi_props)
    if not snapshot_rg or state.get("resource_groups", snapshot_rg) is None:
        return Missing(
            "UserErrorSnapshotResourceGroupNotFound",
            f"The snapshot resource group '{snapshot_rg}' was not found.",
        )
    locks = locks_on(state, snapshot_rg)
    if locks:
        return Missing(
            "UserErrorSnapshotResourceGroupHasLocks",
            f"Lock '{locks[0]['id']}' ({(locks[0].get('properties') or {}).get('level')}) applies to "
            f"'{snapshot_rg}'.",
        )
    vault_roles = [ROLE_READER, ROLE_DISK_SNAPSHOT_CONTRIBUTOR]
    if settings.require_data_operator_for_managed_disks:
        vault_roles.append(ROLE_DATA_OPERATOR_MANAGED_DISKS)
    for role in vault_roles:
        why = lacking(vault_principal, role, snapshot_rg)
        if why:
            return Missing("UserErrorMissingRequiredPermissions", why)
    if settings.require_vault_storage_reader:
        why = lacking(vault_principal, ROLE_STORAGE_BLOB_DATA_READER, account_id)
        if why:
            return Missing("UserErrorMissingRequiredPermissions", why)
    cluster_msi = cluster_principal(cluster)
    if cluster_msi is None:
        return Missing(
            "UserErrorMissingRequiredPermissions", f"Cluster '{cluster_id}' has no managed identity."
        )
    why = lacking(cluster_msi, ROLE_CONTRIBUTOR, snapshot_rg)
    if why:
        return Missing("UserErrorMissingRequiredPermissions", why)
    return None
