"""The stable names of the chain's links: journaled with every action and published in reports, so never
renamed. A link shared by several modes (``extension-installed``) has the same name in each."""

from __future__ import annotations

PREFLIGHT = "preflight"
"""The head of every chain: nothing known (policy, Safeguards, storage, providers) blocks the extension."""
STORAGE_USABLE = "storage-usable"
BACKUP_CONTAINER = "backup-container"
EXTENSION_INSTALLED = "extension-installed"
STORAGE_ACCESS_GRANTED = "storage-access-granted"

# protect mode (issue 12): the install links above, then these (core/plan/protect.py)
PROTECTION_NOT_ELSEWHERE = "protection-not-elsewhere"
BACKUP_VAULT_READY = "backup-vault-ready"
BACKUP_POLICY_READY = "backup-policy-ready"
SNAPSHOT_GROUP_READY = "snapshot-resource-group-ready"
VAULT_READER_ON_CLUSTER = "vault-reader-on-cluster"
VAULT_READER_ON_SNAPSHOT_GROUP = "vault-reader-on-snapshot-rg"
VAULT_SNAPSHOT_CONTRIBUTOR = "vault-disk-snapshot-contributor"
VAULT_DATA_OPERATOR = "vault-disk-data-operator"
VAULT_BLOB_READER = "vault-blob-reader-on-storage"
CLUSTER_CONTRIBUTOR_ON_SNAPSHOT_GROUP = "cluster-contributor-on-snapshot-rg"
TRUSTED_ACCESS_BOUND = "trusted-access-bound"
BACKUP_VALIDATED = "backup-validated"
BACKUP_INSTANCE_EXISTS = "backup-instance-exists"
PROTECTION_CONFIGURED = "protection-configured"
