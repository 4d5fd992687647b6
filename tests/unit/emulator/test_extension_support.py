"""The emulator's install-blocking rules: the VM-size → architecture rule is the product's (cross-checked on a
table, without the emulator importing the product), explicit ``arch`` wins, and which clusters fail."""

from __future__ import annotations

from typing import Any

import pytest

from emulator.resources.extension_support import install_blocker, pool_arch, vm_size_arch
from remediator.core.snapshot import infer_arch

VM_SIZES = [
    "Standard_D2ps_v5",
    "Standard_D4ps_v5",
    "Standard_D4pds_v5",
    "Standard_D16plds_v5",
    "Standard_E8pds_v6",
    "Standard_B2pls_v2",
    "standard_d2ps_v5",
    "Standard_E4-2ps_v5",
    "Standard_D2s_v5",
    "Standard_D4s_v5",
    "Standard_D8s_v5",
    "Standard_D2s_v3",
    "Standard_DS1_v2",
    "Standard_DS2_v2",
    "Standard_D2as_v5",
    "Standard_NP10s",
    "Standard_NC24ads_A100_v4",
    "Standard_E4-2ds_v5",
    "Basic_A0",
    "something-else",
    "",
    None,
]


@pytest.mark.parametrize("vm_size", VM_SIZES)
def test_vm_size_rule_matches_the_product(vm_size: str | None) -> None:
    assert vm_size_arch(vm_size) == infer_arch(vm_size)


def test_table_covers_both_architectures() -> None:
    assert {vm_size_arch(v) for v in VM_SIZES} == {"amd64", "arm64"}


@pytest.mark.parametrize(
    ("pool", "arch"),
    [
        ({"vmSize": "Standard_D4ps_v5", "arch": "amd64"}, "amd64"),
        ({"vmSize": "Standard_D4s_v5", "arch": "ARM64"}, "arm64"),
        ({"vmSize": "Standard_D4s_v5", "arch": "aarch64"}, "arm64"),
        ({"vmSize": "Standard_D4ps_v5"}, "arm64"),
    ],
)
def test_explicit_arch_wins(pool: dict[str, Any], arch: str) -> None:
    assert pool_arch(pool) == arch


def _cluster(
    *pools: dict[str, Any], identity: str | None = "SystemAssigned", csi: bool = True
) -> dict[str, Any]:
    return {
        "identity": {"type": identity} if identity else None,
        "properties": {
            "agentPoolProfiles": list(pools),
            "storageProfile": {"diskCSIDriver": {"enabled": csi}, "snapshotController": {"enabled": csi}},
        },
    }


LINUX_AMD = {"osType": "Linux", "vmSize": "Standard_D4s_v5"}
LINUX_ARM = {"osType": "Linux", "vmSize": "Standard_D4ps_v5"}
WINDOWS = {"osType": "Windows", "vmSize": "Standard_D4s_v5"}


@pytest.mark.parametrize(
    ("cluster", "blocked_by"),
    [
        (_cluster(LINUX_AMD), None),
        (_cluster(LINUX_ARM, LINUX_AMD), None),
        (_cluster(WINDOWS, LINUX_AMD), None),
        (_cluster(LINUX_AMD, identity="UserAssigned"), None),
        (_cluster(LINUX_AMD, csi=False), None),  # assumption: the chart installs; backups would fail later
        (_cluster(LINUX_ARM), "no Linux amd64 node pool"),
        (_cluster(LINUX_ARM, WINDOWS), "no Linux amd64 node pool"),
        (_cluster(WINDOWS), "no Linux amd64 node pool"),
        (_cluster({**LINUX_AMD, "arch": "arm64"}), "no Linux amd64 node pool"),
        (_cluster(LINUX_AMD, identity=None), "service principal"),
        (_cluster(LINUX_AMD, identity="None"), "service principal"),
    ],
)
def test_install_blocker(cluster: dict[str, Any], blocked_by: str | None) -> None:
    error = install_blocker(cluster, "azure-aks-backup")
    if blocked_by is None:
        assert error is None
    else:
        assert error is not None and error["code"] == "ExtensionOperationFailed"
        assert blocked_by in error["message"]
