"""What stops the extension from installing on a cluster, and the policy for each blocker, in one place.

Each :class:`Blocker` carries its own policy once: its :class:`BlockerKind` (does it need a human, clear by
itself soon, or last for days?) and a one-line remedy. The reconcile gate, the sweep and the report all read
it from here (before, three modules kept their own lists of "human" and "wait" blockers).

- ``HUMAN``: only a person can lift it (enable the CSI driver, add a Linux amd64 pool). A reconcile gives up
  naming the remedy; the sweep does not enqueue the cluster; the report counts it ``blocked``.
- ``TRANSIENT``: clears by itself within minutes (the cluster is still provisioning). A reconcile waits.
- ``LONG_LIVED``: may last for days and clears only when someone acts on the cluster for another reason (a
  stopped cluster). A reconcile waits; the sweep defers it to the next sweep instead of queueing a work item
  that would wait through all its attempts.

Two families of blockers share that policy: :class:`Blocker`, read from the cluster snapshot alone (the
decision gate), and :class:`FindingCode`, what preflight (:mod:`remediator.core.preflight`) finds around the
cluster before anything is written: policy assignments, Deployment Safeguards, storage, providers. A finding
carries its own remedy (it names the assignment and the parameter); its kind is its code's, from here.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from typing import Any


class BlockerKind(StrEnum):
    """How a blocker clears, and so what the product does about it."""

    HUMAN = "human"
    TRANSIENT = "transient"
    LONG_LIVED = "long-lived"


class Blocker(StrEnum):
    """Something in the cluster snapshot that stops (or will stop) the extension from installing."""

    CLUSTER_NOT_SUCCEEDED = "cluster-not-succeeded"
    """``provisioningState`` is not ``Succeeded`` (or is absent): ARM rejects or queues writes meanwhile."""
    CLUSTER_STOPPED = "cluster-stopped"
    """``powerState.code`` is ``Stopped``: no nodes to run the extension."""
    NO_MANAGED_IDENTITY = "no-managed-identity"
    """Service-principal cluster: cluster extensions need a managed identity."""
    DISK_CSI_DRIVER_DISABLED = "disk-csi-driver-disabled"
    """``storageProfile.diskCSIDriver.enabled`` is false: backup needs the Azure Disk CSI driver."""
    SNAPSHOT_CONTROLLER_DISABLED = "snapshot-controller-disabled"
    """``storageProfile.snapshotController.enabled`` is false: backup needs volume snapshots."""
    NO_LINUX_AMD64_POOL = "no-linux-amd64-pool"
    """No Linux x86-64 node pool: the extension runs on neither Windows nor Arm64 nodes."""

    @property
    def kind(self) -> BlockerKind:
        """How this blocker clears (see the module docstring)."""
        return _POLICY[self][0]

    @property
    def remedy(self) -> str:
        """One line for a human: what the blocker means and how it is lifted."""
        return _POLICY[self][1]

    @property
    def needs_human(self) -> bool:
        return self.kind is BlockerKind.HUMAN

    def describe(self) -> str:
        """``<code>: <remedy>``, the form outcomes and reports use."""
        return f"{self.value}: {self.remedy}"


_POLICY: dict[Blocker, tuple[BlockerKind, str]] = {
    Blocker.CLUSTER_NOT_SUCCEEDED: (
        BlockerKind.TRANSIENT,
        "the cluster's provisioningState is not Succeeded",
    ),
    Blocker.CLUSTER_STOPPED: (
        BlockerKind.LONG_LIVED,
        "the cluster is not Running (az aks start); it is looked at again when it changes or at the sweep",
    ),
    Blocker.NO_MANAGED_IDENTITY: (
        BlockerKind.HUMAN,
        "service-principal cluster: cluster extensions need a managed identity",
    ),
    Blocker.DISK_CSI_DRIVER_DISABLED: (
        BlockerKind.HUMAN,
        "the Azure Disk CSI driver is disabled (az aks update --enable-disk-driver)",
    ),
    Blocker.SNAPSHOT_CONTROLLER_DISABLED: (
        BlockerKind.HUMAN,
        "the snapshot controller is disabled (az aks update --enable-snapshot-controller)",
    ),
    Blocker.NO_LINUX_AMD64_POOL: (
        BlockerKind.HUMAN,
        "no Linux amd64 node pool: the backup extension runs only on Linux amd64 nodes",
    ),
}
"""The policy of every blocker; a test checks that none is missing."""


class FindingCode(StrEnum):
    """What preflight can find in the way of the backup extension. Each finding has a one-line remedy of its
    own; how it clears (:attr:`kind`) is the code's policy, kept here with the snapshot blockers'."""

    PROVIDER_NOT_REGISTERED = "provider-not-registered"
    REGION_NOT_SUPPORTED = "region-not-supported"
    VAULT_TIER_NOT_IN_REGION = "vault-tier-not-in-region"
    EXTENSION_DENIED_BY_POLICY = "extension-denied-by-policy"
    """An Azure-side assignment denies ``Microsoft.KubernetesConfiguration/extensions`` (ARM 403
    ``RequestDisallowedByPolicy`` on the PUT)."""
    POLICY_NOT_EVALUATED = "policy-not-evaluated"
    """An Azure-side Deny assignment applies to the scope but its rule could not be evaluated (warn), or the
    policy data could not be read (warn)."""
    GATEKEEPER_POLICY = "gatekeeper-policy"
    """A Kubernetes (Gatekeeper) assignment denies (block) or audits (warn) the extension's pods."""
    DEPLOYMENT_SAFEGUARDS = "deployment-safeguards"
    STORAGE_SHARED_KEY_DISABLED = "storage-shared-key-disabled"
    STORAGE_FIREWALL = "storage-firewall"
    SNAPSHOT_DISALLOWED_BY_POLICY = "snapshot-disallowed-by-policy"
    """Only from failure attribution: ``UserErrorPVSnapshotDisallowedByPolicy``."""

    @property
    def kind(self) -> BlockerKind:
        """How a blocking finding of this code clears (a provider still ``Registering``: see
        :func:`finding_kind`)."""
        return _FINDING_POLICY[self]

    @property
    def is_policy(self) -> bool:
        """An Azure Policy (Azure-side or Kubernetes) or Deployment Safeguards finding: the report's
        "blocked by policy" group."""
        return self in _POLICY_CODES


_FINDING_POLICY: dict[FindingCode, BlockerKind] = {
    # a person registers the provider (a registration already in progress is transient: finding_kind)
    FindingCode.PROVIDER_NOT_REGISTERED: BlockerKind.HUMAN,
    # a platform fact that does not clear by waiting: the operator narrows the scope or the backup policy
    FindingCode.REGION_NOT_SUPPORTED: BlockerKind.HUMAN,
    FindingCode.VAULT_TIER_NOT_IN_REGION: BlockerKind.HUMAN,
    FindingCode.EXTENSION_DENIED_BY_POLICY: BlockerKind.HUMAN,
    FindingCode.POLICY_NOT_EVALUATED: BlockerKind.HUMAN,
    FindingCode.GATEKEEPER_POLICY: BlockerKind.HUMAN,
    FindingCode.DEPLOYMENT_SAFEGUARDS: BlockerKind.HUMAN,
    FindingCode.STORAGE_SHARED_KEY_DISABLED: BlockerKind.HUMAN,
    FindingCode.STORAGE_FIREWALL: BlockerKind.HUMAN,
    FindingCode.SNAPSHOT_DISALLOWED_BY_POLICY: BlockerKind.HUMAN,
}
"""The policy of every preflight code; a test checks that none is missing."""

_POLICY_CODES = frozenset(
    {
        FindingCode.EXTENSION_DENIED_BY_POLICY,
        FindingCode.GATEKEEPER_POLICY,
        FindingCode.DEPLOYMENT_SAFEGUARDS,
        FindingCode.SNAPSHOT_DISALLOWED_BY_POLICY,
    }
)


def finding_kind(code: FindingCode, evidence: Mapping[str, Any]) -> BlockerKind:
    """The kind of one finding: its code's, except a provider whose registration is in progress
    (``evidence["transient"]``), which clears by itself within minutes."""
    if code is FindingCode.PROVIDER_NOT_REGISTERED and evidence.get("transient") is True:
        return BlockerKind.TRANSIENT
    return code.kind
