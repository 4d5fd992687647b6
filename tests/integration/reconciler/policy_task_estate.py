"""The estate for policy-task mode tests: the reconciler estate plus a Policy 3 assignment in TEST_SUB."""

from __future__ import annotations

from typing import Any

from tests.fixtures.emulator import TEST_SUB
from tests.integration.reconciler.conftest import ESTATE, STORAGE_EASTUS

ASSIGNMENT = f"/subscriptions/{TEST_SUB}/providers/Microsoft.Authorization/policyAssignments/aks-backup-p3"


def reset_with_policy3_assignment(emulator: Any) -> None:
    """Reset the emulator to the estate with a Policy 3 (include tag backup=yes) assignment and fast tasks."""
    emulator.reset(
        {
            **ESTATE,
            "policyAssignments": [
                {
                    "name": "aks-backup-p3",
                    "scope": f"/subscriptions/{TEST_SUB}",
                    "definition": "tag-include",
                    "parameters": {
                        "effect": "DeployIfNotExists",
                        "location": "eastus",
                        "storageAccountId": STORAGE_EASTUS,
                        "inclusionTagName": "backup",
                        "inclusionTagValues": ["yes"],
                    },
                }
            ],
        }
    )
    emulator.admin.request("PATCH", "/policy/settings", {"remediation": {"acceptS": 0.1, "pollS": 0.05}})
    emulator.admin.clear_calls()
