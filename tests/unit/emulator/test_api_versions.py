"""The api-version allow-lists: published versions (spec folders, SDKs, recordings) pass; others: ARM's 400.

The lists are data; these checks pin the additions made from Azure/azure-rest-api-specs' version folders
(emulator/api_versions.py, ``[spec folders]``) and the answers to a version that is not there."""

from __future__ import annotations

import pytest

from emulator.api_versions import ALLOWED, check_api_version
from emulator.errors import ArmError

SUB = "/subscriptions/00000000-0000-0000-0000-000000000000"
CLUSTER = f"{SUB}/resourceGroups/rg/providers/Microsoft.ContainerService/managedClusters/aks1"
ACCOUNT = f"{SUB}/resourceGroups/rg/providers/Microsoft.Storage/storageAccounts/sa"
VAULT = f"{SUB}/resourceGroups/rg/providers/Microsoft.DataProtection/backupVaults/v"


@pytest.mark.parametrize(
    ("path", "version"),
    [
        # AKS between the readme's package-2024-07 and the SDK's 2026-04-01 (stable and preview)
        (CLUSTER, "2024-08-01"),
        (CLUSTER, "2025-10-01"),
        (CLUSTER, "2026-03-01"),
        (CLUSTER, "2024-07-02-preview"),
        (CLUSTER, "2026-03-02-preview"),
        (f"{CLUSTER}/trustedAccessRoleBindings/b", "2026-08-02-preview"),
        # Storage before the SDK's versions
        (ACCOUNT, "2015-06-15"),
        (ACCOUNT, "2019-06-01"),
        (ACCOUNT, "2023-05-01"),
        (ACCOUNT, "2020-08-01-preview"),
        # the others the spec folders hold
        (VAULT, "2023-11-01"),
        (VAULT, "2024-02-01-preview"),
        (f"{CLUSTER}/providers/Microsoft.KubernetesConfiguration/extensions/e", "2024-11-01"),
        (f"{SUB}/providers/Microsoft.Authorization/policyAssignments/a", "2024-04-01"),
        (f"{SUB}/providers/Microsoft.PolicyInsights/policyStates/latest/queryResults", "2018-04-04"),
        ("/providers/Microsoft.ResourceGraph/resources", "2021-06-01-preview"),
        (f"{SUB}/resourcegroups/rg", "2025-04-01"),
    ],
)
def test_published_versions_are_accepted(path: str, version: str) -> None:
    check_api_version(path, version)  # no ArmError


def test_a_version_outside_the_lists_is_arms_400() -> None:
    with pytest.raises(ArmError) as err:
        # no aks/preview/2024-08-02-preview folder upstream (only in a fork); pulumi azure-native's list of
        # the AKS versions also goes 2024-07-02-preview, 2024-08-01, 2024-09-01
        check_api_version(CLUSTER, "2024-08-02-preview")
    assert err.value.status == 400 and err.value.code == "NoRegisteredProviderFound"
    with pytest.raises(ArmError) as err:
        check_api_version(ACCOUNT, "2018-03-01")  # only the 2018-03-01-preview folder exists
    assert err.value.code == "NoRegisteredProviderFound"


def test_every_listed_version_is_well_formed_and_aks_2025_is_complete() -> None:
    for namespace, versions in ALLOWED.items():
        for version in versions:
            assert len(version) >= 10 and version[4] == "-" and version[7] == "-", (namespace, version)
    aks = ALLOWED["microsoft.containerservice"]
    # every AKS stable monthly folder of 2025 the spec repository holds (no 2025-11/12 folders)
    assert {f"2025-{m:02d}-01" for m in range(1, 11)} <= aks
