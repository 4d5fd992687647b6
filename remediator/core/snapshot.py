"""A typed, read-only view of an AKS managedCluster, built from the JSON of an ARM GET.

The decision only needs a dozen facts about a cluster; reading them out of a nested dict at every call site
would spread ``KeyError``s and default-guessing around the product. :meth:`ClusterSnapshot.from_arm` reads
them once, applies AKS's documented defaults for absent fields, and rejects a malformed body with a
:class:`UserInputError` naming the field (``properties.agentPoolProfiles[1].osType``).

Accepted shapes: the ARM REST body (``{"id", "name", "location", "tags", "identity", "properties": {...}}``,
as returned by ``GET .../managedClusters/{name}``, Resource Graph, or ``dict(model)`` of the SDK's hybrid
models) and the flattened ``az aks show -o json`` output (same keys, ``properties`` merged into the top
level).

Defaults for absent fields (documented in docs/rules.md):

* ``properties.storageProfile.diskCSIDriver.enabled`` and ``.snapshotController.enabled``: **true** (the AKS
  API says "The default value is true" for both).
* ``identity`` absent: no managed identity (a service-principal cluster).
* ``agentPoolProfiles[].osType`` absent: ``Linux`` (the AKS API default).
* ``properties.addonProfiles.azurepolicy.enabled`` absent: **false** (the Azure Policy add-on, Gatekeeper, is
  off unless enabled; the add-on key is matched case-insensitively).
* CPU architecture: AKS has no ``arch`` field. A pool is **arm64** when its ``vmSize`` has the Azure naming
  convention's ``p`` (Arm-based processor) feature letter after the vCPU count (``Standard_D2ps_v5``,
  ``Standard_E4pds_v6``); otherwise **amd64**. An explicit ``arch`` field (``amd64``/``arm64``), e.g. from a
  test snapshot, wins over the inference.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Literal

from remediator.core.config import normalize_region
from remediator.core.errors import UserInputError
from remediator.core.ids import MANAGED_CLUSTER_TYPE, InvalidResourceIdError, ResourceId, parse_cluster_id
from remediator.core.text import equal_ignoring_case

Arch = Literal["amd64", "arm64"]

_VM_SIZE = re.compile(r"^(?:standard|basic)_[a-z]+\d+(?:-\d+)?(?P<features>[a-z]*)(?:_|$)", re.IGNORECASE)
_ARCH_NAMES: Mapping[str, Arch] = {"amd64": "amd64", "x86_64": "amd64", "arm64": "arm64", "aarch64": "arm64"}
_IDENTITY_TYPES = {"systemassigned": "SystemAssigned", "userassigned": "UserAssigned", "none": "None"}
MANAGED_IDENTITY_TYPES = frozenset({"SystemAssigned", "UserAssigned"})


def infer_arch(vm_size: str | None) -> Arch:
    """``arm64`` if the VM size carries the ``p`` feature letter after its vCPU count, else ``amd64``.

    Azure VM size names are ``<tier>_<family><vCPUs>[-<constrained>]<feature letters>[_<accelerator>]_v<n>``;
    the lower-case feature letter ``p`` means an Arm-based processor (Ampere Altra, Cobalt 100). Family
    letters (``NP``, ``DS``) come before the digits and never count.
    """
    if not vm_size:
        return "amd64"
    match = _VM_SIZE.match(vm_size)
    if match is None:
        return "amd64"
    return "arm64" if "p" in match.group("features").lower() else "amd64"


@dataclass(frozen=True)
class NodePool:
    """One agent pool, as much as the backup extension cares about."""

    name: str
    os_type: str
    """``Linux`` or ``Windows``."""
    os_sku: str | None
    """``Ubuntu``, ``AzureLinux``, ``Windows2022``, ...; ``None`` if absent."""
    vm_size: str | None
    arch: Arch
    arch_inferred: bool
    """True when ``arch`` was inferred from ``vm_size`` (no explicit ``arch`` field)."""
    mode: str | None
    """``System`` or ``User``; ``None`` if absent."""

    @property
    def is_linux_amd64(self) -> bool:
        """Can run the backup extension: Linux on x86-64."""
        return self.os_type.lower() == "linux" and self.arch == "amd64"


@dataclass(frozen=True)
class ClusterSnapshot:
    """The facts about one managed cluster that the decision uses."""

    id: ResourceId
    name: str
    resource_group: str
    subscription_id: str
    location: str
    """Normalized region (``eastus``)."""
    tags: Mapping[str, str] = field(hash=False)
    """Read-only mapping; empty when the cluster has no tags."""
    provisioning_state: str | None
    """``properties.provisioningState`` (``Succeeded``, ``Updating``, ...); ``None`` if absent."""
    power_state: str | None
    """``properties.powerState.code`` (``Running``/``Stopped``); ``None`` if absent."""
    identity_type: str
    """``SystemAssigned``, ``UserAssigned`` or ``None`` (also when ``identity`` is absent)."""
    node_pools: tuple[NodePool, ...]
    disk_csi_enabled: bool
    snapshot_controller_enabled: bool
    azure_policy_enabled: bool = False
    identity_principal_id: str | None = None
    """The cluster's managed identity principal: ``identity.principalId`` (system-assigned), else the first
    ``identity.userAssignedIdentities[*].principalId`` (the order Microsoft's CLI uses,
    ``aks_helper.py`` ``_get_cluster_msi_principal_id``); ``None`` without one (or not in the body)."""
    """``properties.addonProfiles.azurepolicy.enabled``: the Azure Policy add-on (Gatekeeper) runs, so
    Kubernetes policy assignments are enforced in the cluster."""

    @property
    def has_managed_identity(self) -> bool:
        """Cluster extensions need a managed-identity cluster."""
        return self.identity_type in MANAGED_IDENTITY_TYPES

    @classmethod
    def from_arm(cls, body: object, *, source: str | None = None) -> ClusterSnapshot:
        """Parse a managedCluster GET body (or ``az aks show`` output).

        :param body: the decoded JSON.
        :keyword source: where the body came from (a file name), carried into errors.
        :raises UserInputError: naming the malformed field.
        """
        return _Reader(source).cluster(body)


class _Reader:
    """Field access with errors that name the path."""

    def __init__(self, source: str | None) -> None:
        self.source = source

    def fail(self, path: str, message: str) -> UserInputError:
        return UserInputError(message, field=path, source=self.source)

    def mapping(self, value: object, path: str, *, optional: bool = False) -> Mapping[str, Any]:
        if value is None and optional:
            return {}
        if not isinstance(value, Mapping):
            raise self.fail(path, f"expected an object, got {_kind(value)}")
        return value

    def string(self, value: object, path: str, *, optional: bool = False) -> str | None:
        if value is None and optional:
            return None
        if not isinstance(value, str) or not value:
            raise self.fail(path, f"expected a non-empty string, got {_kind(value)}")
        return value

    def boolean(self, value: object, path: str, *, default: bool) -> bool:
        if value is None:
            return default
        if not isinstance(value, bool):
            raise self.fail(path, f"expected true or false, got {_kind(value)}")
        return value

    def cluster(self, body: object) -> ClusterSnapshot:
        body = self.mapping(body, "(body)")
        properties_path = "properties"
        if "properties" in body:
            properties = self.mapping(body["properties"], "properties")
        else:  # `az aks show` flattens properties into the top level
            properties, properties_path = body, ""

        def at(name: str) -> str:
            return f"{properties_path}.{name}" if properties_path else name

        raw_id = self.string(body.get("id"), "id")
        try:
            cluster_id = parse_cluster_id(raw_id)
        except InvalidResourceIdError as exc:
            raise self.fail("id", exc.message) from exc
        resource_type = self.string(body.get("type"), "type", optional=True)
        if resource_type is not None and not equal_ignoring_case(resource_type, MANAGED_CLUSTER_TYPE):
            raise self.fail("type", f"expected {MANAGED_CLUSTER_TYPE}, got {resource_type!r}")
        name = self.string(body.get("name"), "name", optional=True) or str(cluster_id.name)
        if not equal_ignoring_case(name, str(cluster_id.name)):
            raise self.fail("name", f"{name!r} does not match the name in the id ({cluster_id.name!r})")
        location_raw = self.string(body.get("location"), "location")
        try:
            location = normalize_region(str(location_raw))
        except UserInputError as exc:
            raise self.fail("location", exc.message) from exc

        tags = self.mapping(body.get("tags"), "tags", optional=True)
        for key, value in tags.items():
            if not isinstance(value, str):
                raise self.fail(f"tags.{key}", f"tag values are strings, got {_kind(value)}")

        identity = self.mapping(body.get("identity"), "identity", optional=True)
        identity_raw = self.string(identity.get("type"), "identity.type", optional=True) or "None"
        identity_type = _IDENTITY_TYPES.get(identity_raw.lower(), identity_raw)

        power = self.mapping(properties.get("powerState"), at("powerState"), optional=True)
        storage = self.mapping(properties.get("storageProfile"), at("storageProfile"), optional=True)
        disk = self.mapping(storage.get("diskCSIDriver"), at("storageProfile.diskCSIDriver"), optional=True)
        snap = self.mapping(
            storage.get("snapshotController"), at("storageProfile.snapshotController"), optional=True
        )

        addons = self.mapping(properties.get("addonProfiles"), at("addonProfiles"), optional=True)
        policy_key = next((k for k in addons if k.lower() == "azurepolicy"), "azurepolicy")
        policy_addon = self.mapping(addons.get(policy_key), at(f"addonProfiles.{policy_key}"), optional=True)

        pools_raw = properties.get("agentPoolProfiles")
        if pools_raw is None:
            pools_raw = []
        if not isinstance(pools_raw, list):
            raise self.fail(at("agentPoolProfiles"), f"expected a list, got {_kind(pools_raw)}")
        pools = tuple(self.pool(pool, f"{at('agentPoolProfiles')}[{i}]") for i, pool in enumerate(pools_raw))

        return ClusterSnapshot(
            id=cluster_id,
            name=name,
            resource_group=str(cluster_id.resource_group),
            subscription_id=str(cluster_id.subscription_id),
            location=location,
            tags=MappingProxyType(dict(tags)),
            provisioning_state=self.string(
                properties.get("provisioningState"), at("provisioningState"), optional=True
            ),
            power_state=self.string(power.get("code"), at("powerState.code"), optional=True),
            identity_type=identity_type,
            node_pools=pools,
            disk_csi_enabled=self.boolean(
                disk.get("enabled"), at("storageProfile.diskCSIDriver.enabled"), default=True
            ),
            snapshot_controller_enabled=self.boolean(
                snap.get("enabled"), at("storageProfile.snapshotController.enabled"), default=True
            ),
            azure_policy_enabled=self.boolean(
                policy_addon.get("enabled"), at(f"addonProfiles.{policy_key}.enabled"), default=False
            ),
            identity_principal_id=_principal_of(identity),
        )

    def pool(self, raw: object, path: str) -> NodePool:
        pool = self.mapping(raw, path)
        vm_size = self.string(pool.get("vmSize"), f"{path}.vmSize", optional=True)
        explicit = self.string(pool.get("arch"), f"{path}.arch", optional=True)
        arch: Arch = infer_arch(vm_size)
        if explicit is not None:
            if explicit.lower() not in _ARCH_NAMES:
                raise self.fail(f"{path}.arch", f"expected amd64 or arm64, got {explicit!r}")
            arch = _ARCH_NAMES[explicit.lower()]
        os_sku_key = "osSKU" if "osSKU" in pool else "osSku"  # REST spells osSKU, az CLI osSku
        return NodePool(
            name=str(self.string(pool.get("name"), f"{path}.name")),
            os_type=self.string(pool.get("osType"), f"{path}.osType", optional=True) or "Linux",
            os_sku=self.string(pool.get(os_sku_key), f"{path}.{os_sku_key}", optional=True),
            vm_size=vm_size,
            arch=arch,
            arch_inferred=explicit is None,
            mode=self.string(pool.get("mode"), f"{path}.mode", optional=True),
        )


def _principal_of(identity: Mapping[str, Any]) -> str | None:
    """System-assigned principal, else the first user-assigned one (see ``identity_principal_id``)."""
    principal = identity.get("principalId")
    if isinstance(principal, str) and principal:
        return principal
    assigned = identity.get("userAssignedIdentities")
    if isinstance(assigned, Mapping):
        for value in assigned.values():
            found = value.get("principalId") if isinstance(value, Mapping) else None
            if isinstance(found, str) and found:
                return found
    return None


def _kind(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, str):
        return "an empty string" if not value else "a string"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, Mapping):
        return "an object"
    return type(value).__name__
