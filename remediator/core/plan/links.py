"""The stable names of the chain's links: journaled with every action and published in reports, so never
renamed. A link shared by several modes (``extension-installed``) has the same name in each."""

from __future__ import annotations

PREFLIGHT = "preflight"
"""The head of every chain: nothing known (policy, Safeguards, storage, providers) blocks the extension."""
STORAGE_USABLE = "storage-usable"
BACKUP_CONTAINER = "backup-container"
EXTENSION_INSTALLED = "extension-installed"
STORAGE_ACCESS_GRANTED = "storage-access-granted"
