"""Azure Backup's error codes for an AKS backup instance, mapped to what the product does: one table, one
home.

A backup instance in ``ProtectionError`` or ``ConfiguringProtectionFailed`` (and a failed validateForBackup)
carries a code in ``protectionErrorDetails.code`` (``error.code``). Microsoft's CLI aborts on them; the
troubleshooting guide's fixes are mostly "re-assign the role", "reinstall the extension", "wait and retry"
(MicrosoftDocs/azure-docs@articles/backup/azure-kubernetes-service-backup-troubleshoot.md, digested in
``shared/reference/protection_facts.md`` §1.5). The product repairs what it can and names a human blocker for
the rest. Every row states its source with the evidence tag the emulator README uses (Part 3): **D**
documented by Microsoft, **E** observed in real output quoted publicly, **A** assumed.

How a :class:`Repair` is carried out (``core/plan/protect.py``): the chain's earlier links re-check their
prerequisite every reconcile, so a removed role, binding or extension is re-created by its own link first
(``regrant``, ``rebind``, ``reinstall`` only say which link the code points at); once every link ARM can see
is satisfied, the instance is re-synced (``resync``, with backoff after the last change while the role or
binding propagates), or re-PUT (``reput``). It is not re-validated: Azure Backup refuses validateForBackup for
a datasource that already has an instance (``UserErrorDppDatasourceAlreadyProtected``;
MicrosoftDocs/azure-docs@articles/backup/backup-azure-dataprotection-use-rest-api-backup-blobs.md,
validateForBackup), so the sync is the repair's check. A ``wait`` code means Azure needs time (role
propagation); ``human`` names what a person must do; ``elsewhere`` means another vault protects the cluster.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Repair(StrEnum):
    """What the product does about an error code."""

    REGRANT = "regrant"
    """A role assignment is missing or not yet effective: the role links re-create a missing one; then
    re-sync (propagation is waited for with backoff)."""
    REBIND = "rebind"
    """The trusted-access binding is missing or not yet effective: its link re-creates it; then re-sync."""
    REINSTALL = "reinstall"
    """The backup extension is missing, Failed or lost its identity: the extension link installs or
    re-installs it; then re-sync."""
    RESYNC = "resync"
    """Nothing for the chain to change: re-sync the instance."""
    REPUT = "reput"
    """The instance body was wrong (e.g. no ``dataSourceSetInfo``): PUT the product's body again."""
    WAIT = "wait"
    """Azure needs time (a role assignment is propagating): re-sync with backoff."""
    HUMAN = "human"
    """A person must act; the remedy names what."""
    ELSEWHERE = "elsewhere"
    """The cluster is protected by another vault: leave it alone."""


@dataclass(frozen=True)
class ErrorAction:
    """One row of the table.

    :param code: Azure Backup's error code.
    :param repair: what the product does.
    :param link: the chain link the code points at (for ``explain``), empty when none.
    :param remedy: for people: what the error means and what fixes it.
    :param source: where the code and its fix come from (with the D/E/A tag).
    """

    code: str
    repair: Repair
    link: str
    remedy: str
    source: str


_REST_WALKTHROUGH = (
    "D: MicrosoftDocs/azure-docs@articles/backup/backup-azure-dataprotection-use-rest-api-backup-blobs.md"
)
_TROUBLESHOOT = "D: MicrosoftDocs/azure-docs@articles/backup/azure-kubernetes-service-backup-troubleshoot.md"

ERROR_ACTIONS: dict[str, ErrorAction] = {
    row.code.lower(): row
    for row in (
        ErrorAction(
            "UserErrorKubernetesBackupExtensionNotFoundError",
            Repair.REINSTALL,
            "extension-installed",
            "the backup extension is not installed in the cluster; install it",
            _TROUBLESHOOT,
        ),
        ErrorAction(
            "UserErrorKubernetesBackupExtensionHasErrors",
            Repair.REINSTALL,
            "extension-installed",
            "the backup extension has errors; delete and install it again",
            _TROUBLESHOOT,
        ),
        ErrorAction(
            "UserErrorKubernetesBackupExtensionIdentityNotFound",
            Repair.REINSTALL,
            "extension-installed",
            "the backup extension lost its identity; reinstall it (a new identity comes with it)",
            _TROUBLESHOOT,
        ),
        ErrorAction(
            "UserErrorKubernetesBackupExtensionUnhealthy",
            Repair.REGRANT,
            "storage-access-granted",
            "the extension identity cannot use the storage account; grant Storage Blob Data Contributor",
            "E: hashicorp/terraform-provider-azurerm#25345 (seen for a missing extension-identity role)",
        ),
        ErrorAction(
            "KubernetesBackupListExtensionsError",
            Repair.REGRANT,
            "vault-reader-on-cluster",
            "the backup vault cannot list the cluster's extensions; it needs Reader on the cluster",
            _TROUBLESHOOT,
        ),
        ErrorAction(
            "UserErrorNoDefaultBackupStorageLocationFound",
            Repair.REINSTALL,
            "backup-container",
            "the extension's storage account or blob container does not exist; reinstall the extension with"
            " an existing storage account and container",
            _TROUBLESHOOT,
        ),
        ErrorAction(
            "UserErrorBackupStorageLocationNotFound",
            Repair.REINSTALL,
            "backup-container",
            "the extension's backup storage location was not found; reinstall with the correct storage"
            " account",
            _TROUBLESHOOT,
        ),
        ErrorAction(
            "UserErrorExtensionMSIMissingPermissionsOnBackupStorageLocation",
            Repair.REGRANT,
            "storage-access-granted",
            "the extension identity lacks Storage Blob Data Contributor on the storage account",
            _TROUBLESHOOT,
        ),
        ErrorAction(
            "UserErrorBackupStorageLocationNotReady",
            Repair.WAIT,
            "storage-access-granted",
            "the extension identity's storage role has not propagated yet (the guide: wait and retry)",
            _TROUBLESHOOT,
        ),
        ErrorAction(
            "UserErrorTrustedAccessGatewayReturnedForbidden",
            Repair.REBIND,
            "trusted-access-bound",
            "the trusted-access role binding for the vault is missing or not effective yet",
            "E: validate-for-backup output quoted in leonormes/zetteleon (2026-04-29); emulator README"
            " Part 3",
        ),
        ErrorAction(
            "UserErrorMissingRequiredPermissions",
            Repair.REGRANT,
            "",
            "a role the vault or cluster identity needs is missing or not propagated yet",
            _REST_WALKTHROUGH,
        ),
        ErrorAction(
            "UserErrorSnapshotResourceGroupNotFound",
            Repair.RESYNC,
            "snapshot-resource-group-ready",
            "the snapshot resource group does not exist; create it",
            "A: emulator README Part 3 (the disk backup analogue UserErrorSnapshotRGNotFound is D:"
            " MicrosoftDocs/azure-docs@articles/backup/disk-backup-troubleshoot.md)",
        ),
        ErrorAction(
            "UserErrorSnapshotResourceGroupHasLocks",
            Repair.HUMAN,
            "snapshot-resource-group-ready",
            "the snapshot resource group has a delete or read-only lock; remove the lock (or choose another"
            " resource group)",
            _TROUBLESHOOT,
        ),
        ErrorAction(
            "UserErrorPVSnapshotDisallowedByPolicy",
            Repair.HUMAN,
            "",
            "an Azure Policy blocks CSI volume snapshots in the cluster; exempt the backup or change the"
            " policy",
            _TROUBLESHOOT,
        ),
        ErrorAction(
            "UserErrorBackupPluginPodRestartedDuringBackup",
            Repair.HUMAN,
            "extension-installed",
            "the backup plugin pod ran out of memory; raise extension.configurationSettings"
            " resources.limits.memory (e.g. 4400Mi)",
            _TROUBLESHOOT,
        ),
        ErrorAction(
            "DppUserErrorVaultTierPolicyNotSupported",
            Repair.HUMAN,
            "backup-policy-ready",
            "the region has no vault tier; use an operational-tier policy (strategy Week or Month)",
            _TROUBLESHOOT,
        ),
        ErrorAction(
            "ScenarioPluginInvalidWorkflowDataRequest",
            Repair.REPUT,
            "backup-instance-exists",
            "the backup instance was created without dataSourceSetInfo; PUT it again with it",
            "E: hashicorp/terraform-provider-azurerm#25294 / PR 25345",
        ),
        ErrorAction(
            "UserErrorDppDatasourceAlreadyProtected",
            Repair.ELSEWHERE,
            "protection-not-elsewhere",
            "the cluster is already protected by a backup instance in another vault",
            _REST_WALKTHROUGH,
        ),
        ErrorAction(
            "UserErrorDatasourceNotFound",
            Repair.RESYNC,
            "",
            "the cluster was not found by Azure Backup",
            "A: emulator README Part 3",
        ),
    )
}
"""Error code (lower-cased) -> what the product does. Codes compare case-insensitively."""

UNKNOWN = ErrorAction(
    "", Repair.RESYNC, "", "an error Azure Backup reported that the product does not know", ""
)
"""The row for a code not in the table: re-validate and re-sync within the repair budget, then give up naming
the code."""

PROPAGATION_REPAIRS = frozenset({Repair.REGRANT, Repair.REBIND, Repair.WAIT})
"""Repairs whose cause, once every link ARM can see is satisfied, is propagation (roles take minutes to
reach Azure Backup; a new binding up to 5 minutes): a failed validation with one of these is waited for with
backoff instead of counted as a failed repair."""


def action_for(code: str | None) -> ErrorAction:
    """The row for ``code`` (any casing); :data:`UNKNOWN` (with the code filled in) for codes not listed."""
    if not code:
        return UNKNOWN
    found = ERROR_ACTIONS.get(code.lower())
    if found is not None:
        return found
    return ErrorAction(code, UNKNOWN.repair, "", UNKNOWN.remedy, "")
