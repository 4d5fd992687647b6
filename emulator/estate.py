"""Estates: the subscriptions, resource groups and resources the emulator starts with.

Loaded from JSON/YAML (:func:`load_estate_file`) or generated deterministically from a seed
(:func:`generate_estate`). Format (every list optional; unknown top-level keys are kept for plug-ins)::

    tenantId: <uuid>                      # default tenant for subscriptions that don't name one
    subscriptions:
      - subscriptionId: <uuid>
        displayName: prod-1
        # providers: a state string, or {registrationState, registerCompletes}
        providers: {Microsoft.KubernetesConfiguration: NotRegistered}
        resourceGroups: [{name: rg1, location: eastus, tags: {}}]
    clusters:          # a full ARM managedCluster body (id+type+properties) is stored as is; or shorthand:
      - id: /subscriptions/<sub>/resourceGroups/rg1/providers/Microsoft.ContainerService/managedClusters/aks1
        location: eastus
        tags: {Backup: "Yes"}
        provisioningState: Succeeded      # Creating clusters become Succeeded after readyInS (null = never)
        readyInS: 30
        powerState: Running               # or Stopped
        identity: SystemAssigned          # UserAssigned | None (service principal) | a full identity object
        pools: [{osType: Linux, osSKU: Ubuntu, vmSize: Standard_D4s_v5, count: 3}]
        diskCSIDriver: true
        snapshotController: true
    extensions:        # full body with id, or {clusterId, name, extensionType, provisioningState, ...}
    storageAccounts:   # full body, or {id, location, kind, sku, tags, allowBlobPublicAccess}
    containers:        # {id} or {storageAccountId, name}
    roleAssignments:   # full body with id (scope/providers/Microsoft.Authorization/roleAssignments/name)
    resources:         # any other ARM resource body with id (e.g. connectedClusters)

Subscriptions and resource groups referenced by resources but not declared are created (in the
resource's location) — the estate "says" they exist by putting something in them.
"""

from __future__ import annotations

import json
import logging
import random
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

from emulator.clock import iso
from emulator.lifecycle import schedule_cluster_completion
from emulator.model.bodies import (
    AKS_CLUSTER_TYPE,
    DEFAULT_K8S_VERSION,
    DEFAULT_TENANT,
    _ClusterIds,
    aks_cluster_id,
    container_body,
    extension_body,
    managed_cluster_body,
    network_defaults,
    resource_group_body,
    storage_account_body,
    with_load_balancer,
    with_provisioned_fields,
)
from emulator.model.ids import deterministic_uuid, fold, key_of, rg_id

if TYPE_CHECKING:
    from emulator.state import EmulatorState

logger = logging.getLogger(__name__)

REGIONS = ("eastus", "westeurope", "southeastasia", "australiaeast", "uksouth", "centralus")


def load_estate_file(path: Path | str) -> dict[str, Any]:
    """Read an estate from JSON or YAML (by extension: .yaml/.yml are YAML)."""
    path = Path(path)
    text = path.read_text(encoding="utf-8")
    if path.suffix.lower() in (".yaml", ".yml"):
        import yaml

        data = yaml.safe_load(text)
    else:
        data = json.loads(text)
    if not isinstance(data, dict):
        raise ValueError(f"{path}: an estate must be a mapping at the top level")
    return data


def _parse_id(resource_id: str) -> tuple[str, str | None]:
    parts = resource_id.strip("/").split("/")
    if len(parts) < 2 or parts[0].lower() != "subscriptions":
        raise ValueError(f"not a subscription-scoped ARM id: {resource_id!r}")
    rg = parts[3] if len(parts) >= 4 and parts[2].lower() == "resourcegroups" else None
    return parts[1], rg


def _ensure_scope(
    state: EmulatorState, resource_id: str, location: str, tenant: str
) -> tuple[str, str | None]:
    sub, rg = _parse_id(resource_id)
    if rg is not None and key_of(rg_id(sub, rg)) in state.resource_groups:
        return sub, rg
    if state.subscriptions.get(fold(sub)) is None:
        state.add_subscription(sub, tenant_id=tenant)
    if rg is not None and key_of(rg_id(sub, rg)) not in state.resource_groups:
        body = resource_group_body(sub, rg, location or "eastus", {})
        state.resource_groups[key_of(body["id"])] = body
    return sub, rg


def _is_full_body(item: dict[str, Any]) -> bool:
    return "id" in item and "type" in item and "properties" in item


def cluster_via_put_path(item: dict[str, Any], *, tenant: str) -> dict[str, Any]:
    """Shorthand → body through the same code a PUT uses (reference for :func:`cluster_from_shorthand`)."""
    rid = item.get("id") or (
        f"/subscriptions/{item['subscriptionId']}/resourceGroups/{item['resourceGroup']}/providers/"
        f"Microsoft.ContainerService/managedClusters/{item['name']}"
    )
    parts = rid.strip("/").split("/")
    sub, rg, name = parts[1], parts[3], parts[-1]
    identity = item.get("identity", "SystemAssigned")
    if isinstance(identity, str):
        if identity == "UserAssigned":
            uai = (
                f"/subscriptions/{sub}/resourceGroups/{rg}/providers/"
                f"Microsoft.ManagedIdentity/userAssignedIdentities/{name}-id"
            )
            identity = {"type": "UserAssigned", "userAssignedIdentities": {uai: {}}}
        elif identity == "None":
            identity = None
        else:
            identity = {"type": identity}
    props: dict[str, Any] = {
        "kubernetesVersion": item.get("kubernetesVersion", ""),
        "agentPoolProfiles": [dict(p) for p in item.get("pools") or [{}]],
        "powerState": {"code": item.get("powerState", "Running")},
        "storageProfile": {
            "diskCSIDriver": {"enabled": bool(item.get("diskCSIDriver", True))},
            "fileCSIDriver": {"enabled": True},
            "snapshotController": {"enabled": bool(item.get("snapshotController", True))},
        },
    }
    if identity is None:
        props["servicePrincipalProfile"] = {"clientId": deterministic_uuid("sp", rid)}
    request = {
        "location": item.get("location", "eastus"),
        "tags": item.get("tags") or {},
        "properties": props,
    }
    if identity is not None:
        request["identity"] = identity
    body = managed_cluster_body(
        request,
        subscription_id=sub,
        resource_group=rg,
        name=name,
        provisioning_state=item.get("provisioningState", "Succeeded"),
        tenant_id=tenant,
    )
    return body


_LINUX_IMAGE = "AKSUbuntu-2204gen2containerd-202501.01.0"
_WINDOWS_IMAGE = "AKSWindows-2022-containerd:20341.3.250101"


def cluster_from_shorthand(item: dict[str, Any], *, tenant: str) -> dict[str, Any]:
    """Shorthand → full ARM body, built in one pass (the 100k-cluster load path).

    Produces exactly what :func:`cluster_via_put_path` produces (a test compares them over a generated
    estate); keep the two in step when either changes.
    """
    rid = item.get("id") or (
        f"/subscriptions/{item['subscriptionId']}/resourceGroups/{item['resourceGroup']}/providers/"
        f"Microsoft.ContainerService/managedClusters/{item['name']}"
    )
    parts = rid.strip("/").split("/")
    sub, rg, name = parts[1], parts[3], parts[-1]
    rid = aks_cluster_id(sub, rg, name)
    location = str(item.get("location", "eastus"))
    version = item.get("kubernetesVersion") or DEFAULT_K8S_VERSION
    state = item.get("provisioningState", "Succeeded")
    power_code = item.get("powerState", "Running")
    ids = _ClusterIds(rid)
    dns_prefix = f"{name[:30]}-{rg[:15]}-{sub[:6]}"
    suffix = ids.suffix
    node_rg = f"MC_{rg}_{name}_{location}"
    pools = []
    for pool in item.get("pools") or [{}]:
        os_type = pool.get("osType", "Linux")
        out = {
            "name": "nodepool1",
            "count": 3,
            "vmSize": "Standard_DS2_v2",
            "osType": os_type,
            "type": "VirtualMachineScaleSets",
            "mode": "System",
            "maxPods": 110,
            "osDiskSizeGB": 128,
            "osDiskType": "Managed",
            "kubeletDiskType": "OS",
            "nodeImageVersion": _WINDOWS_IMAGE if os_type == "Windows" else _LINUX_IMAGE,
        }
        if os_type == "Linux":
            out["osSKU"] = "Ubuntu"
        elif os_type == "Windows":
            out["osSKU"] = "Windows2022"
        out.update(pool)
        orchestrator = out.get("orchestratorVersion") or version
        out["orchestratorVersion"] = orchestrator
        out["currentOrchestratorVersion"] = orchestrator
        out["provisioningState"] = state
        out["powerState"] = {"code": power_code}
        pools.append(out)
    network = with_load_balancer(network_defaults(), sub, node_rg)
    props: dict[str, Any] = {
        "kubernetesVersion": version,
        "agentPoolProfiles": pools,
        "powerState": {"code": power_code},
        "storageProfile": {
            "diskCSIDriver": {"enabled": bool(item.get("diskCSIDriver", True))},
            "fileCSIDriver": {"enabled": True},
            "snapshotController": {"enabled": bool(item.get("snapshotController", True))},
        },
        "provisioningState": state,
        "currentKubernetesVersion": version,
        "dnsPrefix": dns_prefix,
        "fqdn": f"{dns_prefix}-{suffix}.hcp.{location}.azmk8s.io",
        "azurePortalFQDN": f"{dns_prefix}-{suffix}.portal.hcp.{location}.azmk8s.io",
        "nodeResourceGroup": node_rg,
        "enableRBAC": True,
        "maxAgentPools": 100,
        "securityProfile": {},
        "oidcIssuerProfile": {"enabled": False},
        "networkProfile": network,
    }
    identity_kind = item.get("identity", "SystemAssigned")
    identity: dict[str, Any] | None
    if isinstance(identity_kind, dict):
        return cluster_via_put_path(item, tenant=tenant)
    if identity_kind == "None":
        identity = None
        props["servicePrincipalProfile"] = {"clientId": deterministic_uuid("sp", item.get("id") or rid)}
    elif identity_kind == "UserAssigned":
        uai = (
            f"/subscriptions/{sub}/resourceGroups/{rg}/providers/"
            f"Microsoft.ManagedIdentity/userAssignedIdentities/{name}-id"
        )
        identity = {
            "type": "UserAssigned",
            "userAssignedIdentities": {
                uai: {
                    "principalId": deterministic_uuid("uai-principal", uai),
                    "clientId": deterministic_uuid("uai-client", uai),
                }
            },
        }
    elif identity_kind == "SystemAssigned":
        identity = {"type": "SystemAssigned", "principalId": ids.uuid(0), "tenantId": tenant}
    else:
        identity = {"type": identity_kind}
    if identity is not None:
        props["servicePrincipalProfile"] = {"clientId": "msi"}
    body: dict[str, Any] = {"id": rid, "name": name, "type": AKS_CLUSTER_TYPE, "location": location}
    tags = dict(item.get("tags") or {})
    if tags:
        body["tags"] = tags
    body["properties"] = props
    if identity is not None:
        body["identity"] = identity
    body["sku"] = {"name": "Base", "tier": "Free"}
    body["eTag"] = ids.etag_seed if state == "Succeeded" else ids.hex[112:120]
    return with_provisioned_fields(body) if state == "Succeeded" else body


def extension_from_shorthand(item: dict[str, Any], *, tenant: str, now_iso: str) -> dict[str, Any]:
    rid = item.get("id") or (
        f"{item['clusterId']}/providers/Microsoft.KubernetesConfiguration/extensions/{item['name']}"
    )
    props = {k: v for k, v in item.items() if k not in ("id", "clusterId", "name", "provisioningState")}
    return extension_body(
        rid,
        {"properties": props},
        provisioning_state=item.get("provisioningState", "Succeeded"),
        tenant_id=tenant,
        system_data={
            "createdBy": "estate",
            "createdByType": "Application",
            "createdAt": now_iso,
            "lastModifiedBy": "estate",
            "lastModifiedByType": "Application",
            "lastModifiedAt": now_iso,
        },
    )


def apply_estate(state: EmulatorState, estate: dict[str, Any]) -> None:
    """Fill ``state`` (already cleared, lock held by the caller) from ``estate``."""
    tenant = str(estate.get("tenantId") or DEFAULT_TENANT)
    now_iso = iso(state.now())
    for sub in estate.get("subscriptions") or []:
        sub_id = sub["subscriptionId"]
        state.add_subscription(
            sub_id,
            tenant_id=sub.get("tenantId", tenant),
            display_name=sub.get("displayName"),
            providers=sub.get("providers"),
            state=sub.get("state", "Enabled"),
        )
        for group in sub.get("resourceGroups") or []:
            body = resource_group_body(
                sub_id, group["name"], group.get("location", "eastus"), dict(group.get("tags") or {})
            )
            state.resource_groups[key_of(body["id"])] = body
    for item in estate.get("clusters") or []:
        location = item.get("location", "eastus")
        rid = item.get("id") or (
            f"/subscriptions/{item['subscriptionId']}/resourceGroups/{item['resourceGroup']}/providers/"
            f"Microsoft.ContainerService/managedClusters/{item['name']}"
        )
        sub, _ = _ensure_scope(state, rid, location, tenant)
        sub_tenant = state.subscriptions[fold(sub)]["tenantId"]
        body = dict(item) if _is_full_body(item) else cluster_from_shorthand(item, tenant=sub_tenant)
        state.clusters[key_of(rid)] = body
        ready = item.get("readyInS")
        prov = body.get("properties", {}).get("provisioningState")
        if prov in ("Creating", "Updating") and ready is not None:
            schedule_cluster_completion(state, rid, float(ready), principal=None)
    for item in estate.get("storageAccounts") or []:
        if _is_full_body(item):
            body = dict(item)
        else:
            sub, rg = _parse_id(item["id"])
            body = storage_account_body(
                subscription_id=sub,
                resource_group=rg or "",
                name=item["id"].rstrip("/").split("/")[-1],
                location=item.get("location", "eastus"),
                kind=item.get("kind", "StorageV2"),
                sku=item.get("sku", "Standard_LRS"),
                tags=item.get("tags"),
                allow_blob_public_access=bool(item.get("allowBlobPublicAccess", False)),
            )
        _ensure_scope(state, body["id"], body.get("location", "eastus"), tenant)
        state.storage_accounts[key_of(body["id"])] = body
    for item in estate.get("containers") or []:
        rid = item.get("id") or f"{item['storageAccountId']}/blobServices/default/containers/{item['name']}"
        state.containers[key_of(rid)] = container_body(rid, item.get("properties") or {}, now_iso)
    for item in estate.get("extensions") or []:
        sub, _ = _parse_id(item.get("id") or item["clusterId"])
        sub_tenant = (
            state.subscriptions[fold(sub)]["tenantId"] if fold(sub) in state.subscriptions else tenant
        )
        body = (
            dict(item)
            if _is_full_body(item)
            else extension_from_shorthand(item, tenant=sub_tenant, now_iso=now_iso)
        )
        state.extensions[key_of(body["id"])] = body
    for item in estate.get("roleAssignments") or []:
        state.role_assignments[key_of(item["id"])] = dict(item)
    for item in estate.get("resources") or []:
        _ensure_scope(state, item["id"], item.get("location", "eastus"), tenant)
        state.resources[key_of(item["id"])] = dict(item)


# ----- deterministic generation ------------------------------------------------------------------------

TAG_KEYS = ("Backup", "backup", "BACKUP", "env", "Environment", "team", "CostCenter", "owner")
TAG_VALUES = {
    "backup": ("Yes", "yes", "TRUE", "no", "No", "daily", "*"),
    "env": ("prod", "Prod", "PROD", "dev", "test", "staging"),
    "environment": ("Production", "production", "Dev", "QA"),
    "team": ("payments", "Payments", "search", "data-platform", "ml"),
    "costcenter": ("cc-100", "CC-200", "cc-300"),
    "owner": ("alice@example.com", "Bob", "platform-team"),
}


def generate_estate(
    *,
    subscriptions: int = 2,
    clusters_per_subscription: int = 10,
    seed: int = 1,
    regions: tuple[str, ...] = REGIONS[:3],
    resource_groups_per_subscription: int = 3,
    share_creating: float = 0.05,
    share_stopped: float = 0.05,
    share_service_principal: float = 0.05,
    share_windows_only: float = 0.03,
    share_arm64_only: float = 0.04,
    share_user_assigned: float = 0.2,
    share_untagged: float = 0.1,
    share_with_backup_extension: float = 0.0,
    creating_ready_in_s: float | None = 30.0,
    tenant_id: str = DEFAULT_TENANT,
    storage_subscription: int = 0,
) -> dict[str, Any]:
    """N subscriptions × M clusters over ``regions``, reproducible from ``seed``.

    Tags mix key and value casings; shares of clusters are Creating, Stopped, service-principal (no managed
    identity), Windows-only or Arm64-only (every pool an Arm64 VM size such as ``Standard_D4ps_v5``; drawn
    from a second generator seeded from ``seed`` so the other draws do not depend on this share). One backup
    storage account per region lives in subscription ``storage_subscription`` (resource group ``rg-backup``).
    """
    import gc

    gc_was_enabled = gc.isenabled()
    gc.disable()  # millions of acyclic dicts; see EmulatorState.load_estate
    try:
        return _generate(
            subscriptions=subscriptions,
            clusters_per_subscription=clusters_per_subscription,
            seed=seed,
            regions=regions,
            resource_groups_per_subscription=resource_groups_per_subscription,
            share_creating=share_creating,
            share_stopped=share_stopped,
            share_service_principal=share_service_principal,
            share_windows_only=share_windows_only,
            share_arm64_only=share_arm64_only,
            share_user_assigned=share_user_assigned,
            share_untagged=share_untagged,
            share_with_backup_extension=share_with_backup_extension,
            creating_ready_in_s=creating_ready_in_s,
            tenant_id=tenant_id,
            storage_subscription=storage_subscription,
        )
    finally:
        if gc_was_enabled:
            gc.enable()


def _generate(
    *,
    subscriptions: int,
    clusters_per_subscription: int,
    seed: int,
    regions: tuple[str, ...],
    resource_groups_per_subscription: int,
    share_creating: float,
    share_stopped: float,
    share_service_principal: float,
    share_windows_only: float,
    share_arm64_only: float,
    share_user_assigned: float,
    share_untagged: float,
    share_with_backup_extension: float,
    creating_ready_in_s: float | None,
    tenant_id: str,
    storage_subscription: int,
) -> dict[str, Any]:
    rng = random.Random(seed)
    arm_rng = random.Random(f"arm64-{seed}")
    subs = [str(uuid.UUID(int=rng.getrandbits(128), version=4)) for _ in range(subscriptions)]
    estate: dict[str, Any] = {
        "tenantId": tenant_id,
        "generator": {
            "seed": seed,
            "subscriptions": subscriptions,
            "clustersPerSubscription": clusters_per_subscription,
            "regions": list(regions),
        },
        "subscriptions": [],
        "clusters": [],
        "storageAccounts": [],
        "extensions": [],
    }
    for i, sub in enumerate(subs):
        groups = [
            {"name": f"rg-aks-{j:02d}", "location": regions[(i + j) % len(regions)], "tags": {}}
            for j in range(resource_groups_per_subscription)
        ]
        if i == storage_subscription:
            groups.append({"name": "rg-backup", "location": regions[0], "tags": {}})
        estate["subscriptions"].append(
            {"subscriptionId": sub, "displayName": f"sub-{i:03d}", "resourceGroups": groups}
        )
        for j in range(clusters_per_subscription):
            rg = groups[j % resource_groups_per_subscription]["name"]
            name = f"aks-{i:03d}-{j:05d}"
            roll = rng.random
            tags: dict[str, str] = {}
            if roll() >= share_untagged:
                for _ in range(rng.randint(1, 3)):
                    key = rng.choice(TAG_KEYS)
                    # tag names are case-insensitive: a second casing of a key overwrites the first's value
                    key = next((k for k in tags if k.lower() == key.lower()), key)
                    tags[key] = rng.choice(TAG_VALUES[key.lower()])
            r = roll()
            prov, power = "Succeeded", "Running"
            if r < share_creating:
                prov = "Creating"
            elif r < share_creating + share_stopped:
                power = "Stopped"
            r = roll()
            identity = "SystemAssigned"
            if r < share_service_principal:
                identity = "None"
            elif r < share_service_principal + share_user_assigned:
                identity = "UserAssigned"
            if roll() < share_windows_only:
                pools = [{"name": "npwin", "osType": "Windows", "vmSize": "Standard_D4s_v5", "count": 2}]
            else:
                pools = [
                    {
                        "name": "system",
                        "osType": "Linux",
                        "osSKU": rng.choice(("Ubuntu", "AzureLinux")),
                        "vmSize": rng.choice(("Standard_D4s_v5", "Standard_D2s_v3", "Standard_D8s_v5")),
                        "count": 3,
                    }
                ]
            if arm_rng.random() < share_arm64_only and pools[0]["osType"] == "Linux":
                pools[0]["vmSize"] = "Standard_D4ps_v5"
            item: dict[str, Any] = {
                "id": (
                    f"/subscriptions/{sub}/resourceGroups/{rg}/providers/"
                    f"Microsoft.ContainerService/managedClusters/{name}"
                ),
                "location": regions[(i * 7 + j) % len(regions)],
                "tags": tags,
                "provisioningState": prov,
                "powerState": power,
                "identity": identity,
                "pools": pools,
            }
            if prov == "Creating":
                item["readyInS"] = creating_ready_in_s
            estate["clusters"].append(item)
            if share_with_backup_extension and roll() < share_with_backup_extension:
                estate["extensions"].append(
                    {
                        "clusterId": item["id"],
                        "name": "azure-aks-backup",
                        "extensionType": "microsoft.dataprotection.kubernetes",
                        "provisioningState": "Succeeded",
                    }
                )
    storage_sub = subs[storage_subscription] if subs else None
    if storage_sub is not None:
        for region in regions:
            name = f"stbackup{region[:12]}{seed % 1000:03d}"[:24]
            estate["storageAccounts"].append(
                {
                    "id": (
                        f"/subscriptions/{storage_sub}/resourceGroups/rg-backup/providers/"
                        f"Microsoft.Storage/storageAccounts/{name}"
                    ),
                    "location": region,
                }
            )
    return estate


def parse_generate_spec(spec: list[str]) -> dict[str, Any]:
    """``["subscriptions=100", "clusters=100", "seed=7", "regions=eastus,westeurope"]`` → generate_estate
    kwargs."""
    aliases = {"clusters": "clusters_per_subscription", "subs": "subscriptions"}
    out: dict[str, Any] = {}
    for item in spec:
        for part in item.split():
            key, sep, value = part.partition("=")
            if not sep:
                raise ValueError(f"expected key=value in --generate, got {part!r}")
            name = aliases.get(key, key).replace("-", "_")
            if name == "regions":
                out[name] = tuple(v.strip() for v in value.split(",") if v.strip())
            elif name in (
                "subscriptions",
                "clusters_per_subscription",
                "seed",
                "resource_groups_per_subscription",
                "storage_subscription",
            ):
                out[name] = int(value)
            elif name == "tenant_id":
                out[name] = value
            elif name == "creating_ready_in_s":
                out[name] = None if value.lower() in ("none", "null", "never") else float(value)
            else:
                out[name] = float(value)
    return out
