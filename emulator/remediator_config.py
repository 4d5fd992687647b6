"""A remediator config that matches an estate (every subscription in scope, one storage target per region,
a Policy-3-like tag selection), so demos and benchmarks start from a consistent pair.

The output follows ``remediator.core.config`` (camelCase JSON); the test suite validates it with the
product's own ``parse_config``.
"""

from __future__ import annotations

import logging
from typing import Any

logger = logging.getLogger(__name__)

DEFAULT_SELECTION: dict[str, Any] = {
    "include": [{"tag": "backup", "values": ["yes", "true", "daily"]}],
    "exclude": [{"tag": "env", "values": ["dev", "test"]}],
}
"""Matches the generator's tag mix (keys Backup/backup/BACKUP, values in mixed case)."""


def remediator_config_for(
    estate: dict[str, Any],
    *,
    selection: dict[str, Any] | None = None,
    mode: str = "install",
    regions: list[str] | None = None,
) -> dict[str, Any]:
    """Config JSON for ``estate``: scope = its subscriptions, storage = its account per region."""
    storage: dict[str, str] = {}
    for account in estate.get("storageAccounts") or []:
        storage.setdefault(str(account.get("location", "eastus")).replace(" ", "").lower(), account["id"])
    scope: dict[str, Any] = {
        "subscriptions": [s["subscriptionId"] for s in estate.get("subscriptions") or []]
    }
    if regions:
        scope["regions"] = regions
    return {
        "scope": scope,
        "storage": storage,
        "selection": selection if selection is not None else DEFAULT_SELECTION,
        "extension": {"name": "azure-aks-backup", "releaseTrain": "stable", "autoUpgradeMinorVersion": True},
        "remediation": {"mode": mode, "grantStorageAccess": True},
    }
