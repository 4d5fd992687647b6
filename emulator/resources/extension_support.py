"""Which managed clusters the backup extension's Helm install can succeed on.

The extension's pods are Linux x86-64 images, and cluster extensions need the cluster's managed identity, so
the emulator must fail an install the real service would fail — otherwise a product bug that installs on a
blocked cluster would pass every test. The rules (see emulator/README.md, "Extensions"):

* no managed identity (``identity`` absent or ``None``: a service-principal cluster) → Failed. Microsoft
  documents that cluster extensions don't work with service-principal clusters (AKS cluster-extensions page,
  AKS Backup support matrix); the failure's shape is our assumption.
* no Linux amd64 node pool (Windows-only, Arm64-only, or Windows + Arm64) → Failed. Microsoft documents
  "Ubuntu or Azure Linux only; not Windows; not Arm64" (AKS Backup support matrix); that the install (rather
  than the backup) fails, and the Helm-timeout message, are our assumption.
* disk CSI driver / snapshot controller disabled → the install still Succeeds (assumption: the chart does not
  need them to install; backups would fail later). The product treats such clusters as blocked anyway.

The architecture rule is the one the product uses (``remediator.core.snapshot.infer_arch``), reimplemented
here because the emulator must not import the product; a unit test cross-checks both on a table of VM sizes.
"""

from __future__ import annotations

import logging
import re
from typing import Any

logger = logging.getLogger(__name__)

# <tier>_<family letters><vCPUs>[-<constrained vCPUs>]<feature letters>[_...]: the feature letter "p" means an
# Arm-based processor (Standard_D4ps_v5, Standard_E8pds_v6); family letters (NP, DS) never count.
_VM_SIZE = re.compile(r"^(?:standard|basic)_[a-z]+\d+(?:-\d+)?(?P<features>[a-z]*)(?:_|$)", re.IGNORECASE)
_ARCH_NAMES = {"amd64": "amd64", "x86_64": "amd64", "arm64": "arm64", "aarch64": "arm64"}
_MANAGED_IDENTITY_TYPES = {"systemassigned", "userassigned"}
EXTENSION_FAILED_CODE = "ExtensionOperationFailed"


def vm_size_arch(vm_size: str | None) -> str:
    """``arm64`` when the VM size has the ``p`` feature letter after its vCPU count, else ``amd64``."""
    if not vm_size:
        return "amd64"
    match = _VM_SIZE.match(vm_size)
    if match is None:
        return "amd64"
    return "arm64" if "p" in match.group("features").lower() else "amd64"


def pool_arch(pool: dict[str, Any]) -> str:
    """A pool's CPU architecture: an explicit ``arch`` field (amd64/x86_64/arm64/aarch64) wins over the VM
    size; an unknown ``arch`` value falls back to the VM size."""
    explicit = pool.get("arch")
    if isinstance(explicit, str) and explicit.lower() in _ARCH_NAMES:
        return _ARCH_NAMES[explicit.lower()]
    return vm_size_arch(pool.get("vmSize"))


def has_linux_amd64_pool(cluster: dict[str, Any]) -> bool:
    pools = (cluster.get("properties") or {}).get("agentPoolProfiles") or []
    return any(str(p.get("osType") or "Linux").lower() == "linux" and pool_arch(p) == "amd64" for p in pools)


def has_managed_identity(cluster: dict[str, Any]) -> bool:
    identity = cluster.get("identity") or {}
    return str(identity.get("type") or "None").lower() in _MANAGED_IDENTITY_TYPES


def _helm_failure(release: str, reason: str) -> str:
    return (
        f"Error: {{failed to install chart from path [] for release [{release}]: err [release {release} "
        "failed, and has been uninstalled due to atomic being set: timed out waiting for the condition]} "
        f"occurred while doing the operation : {{Installing the extension}} on the config ({reason})"
    )


INSTALL_CHECKS = "extensionInstallChecks"
"""``state.plugin_state`` key: callables ``(cluster, extension body) -> errorInfo | None`` that plug-ins (the
policy engine's Gatekeeper model) add; consulted after the rules above."""
REQUEST_CHECKS = "extensionRequestChecks"
"""``state.plugin_state`` key: callables ``(extension body) -> None`` that raise an ``ArmError`` to refuse the
PUT itself (ARM-side Deny policies)."""


def check_request(state: Any, extension: dict[str, Any]) -> None:
    """Run the plug-ins' request checks on an extension PUT (raise to refuse it)."""
    for check in list(state.plugin_state.get(REQUEST_CHECKS, ())):
        check(extension)


def install_blocker(
    cluster: dict[str, Any],
    extension_name: str,
    *,
    state: Any = None,
    extension: dict[str, Any] | None = None,
) -> dict[str, Any] | None:
    """The ``errorInfo`` an install on ``cluster`` ends with, or ``None`` if it can succeed. With ``state``
    and
    the ``extension`` body, the plug-ins' install checks run too."""
    props = cluster.get("properties") or {}
    if not has_managed_identity(cluster):
        return {
            "code": EXTENSION_FAILED_CODE,
            "message": (
                "Cluster extensions are not supported on clusters that use a service principal; the cluster "
                "must use a managed identity (SystemAssigned or UserAssigned)."
            ),
        }
    pools = props.get("agentPoolProfiles")
    if pools and not has_linux_amd64_pool(cluster):
        return {
            "code": EXTENSION_FAILED_CODE,
            "message": _helm_failure(
                extension_name,
                "the extension's pods could not be scheduled: the cluster has no Linux amd64 node pool",
            ),
        }
    if state is not None and extension is not None:
        for check in list(state.plugin_state.get(INSTALL_CHECKS, ())):
            error = check(cluster, extension)
            if error:
                return dict(error)
    return None
