"""ARM JSON bodies for managed clusters, extensions, storage accounts, containers and resource groups,
filled in the way the services do.

Used by the PUT handlers (request → stored response body) and by the estate loader/generator (shorthand →
full body), so a resource looks the same however it came to exist. Bottom layer: imports only
:mod:`emulator.model.ids`. Server-computed fields follow the official
examples (ManagedClustersCreate_Update.json / ManagedClustersGet.json): id, name, type, fqdn,
nodeResourceGroup,
currentKubernetesVersion, agent pool defaults, networkProfile defaults, identity principal ids; secrets
(servicePrincipalProfile.secret, windowsProfile.adminPassword) are never returned.
"""

from __future__ import annotations

import copy
import hashlib
import logging
from typing import Any

from emulator.model.ids import (
    CONTAINER_TYPE,
    EXTENSION_TYPE,
    MANAGED_CLUSTERS_TYPE,
    RESOURCE_GROUP_TYPE,
    deterministic_uuid,
    fold,
    rg_id,
    seed_of,
)

logger = logging.getLogger(__name__)

DEFAULT_K8S_VERSION = "1.30.6"
DEFAULT_TENANT = "72f988bf-86f1-41af-91ab-2d7cd011db47"


def network_defaults() -> dict[str, Any]:
    """A fresh dict each call (a literal is far cheaper than deepcopy on the 100k-cluster load path)."""
    return {
        "networkPlugin": "kubenet",
        "podCidr": "10.244.0.0/16",
        "serviceCidr": "10.0.0.0/16",
        "dnsServiceIP": "10.0.0.10",
        "outboundType": "loadBalancer",
        "loadBalancerSku": "standard",
        "podCidrs": ["10.244.0.0/16"],
        "serviceCidrs": ["10.0.0.0/16"],
        "ipFamilies": ["IPv4"],
    }


class _ClusterIds:
    """Every derived id of one cluster from a single sha512 of its id (the 100k-cluster load path)."""

    __slots__ = ("hex",)

    def __init__(self, resource_id: str) -> None:
        self.hex = hashlib.sha512(seed_of(resource_id).encode()).hexdigest()

    def uuid(self, index: int) -> str:
        h = self.hex[index * 32 : index * 32 + 32]
        return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{'89ab'[int(h[16], 16) & 3]}{h[17:20]}-{h[20:32]}"

    @property
    def suffix(self) -> str:
        return self.hex[96:104]

    @property
    def etag_seed(self) -> str:
        return self.hex[104:112]


def _agent_pool(pool: dict[str, Any], *, version: str, provisioning_state: str, power: str) -> dict[str, Any]:
    out = dict(pool)
    out.setdefault("name", "nodepool1")
    out.setdefault("count", 3)
    out.setdefault("vmSize", "Standard_DS2_v2")
    out.setdefault("osType", "Linux")
    if out["osType"] == "Linux":
        out.setdefault("osSKU", "Ubuntu")
    elif out["osType"] == "Windows":
        out.setdefault("osSKU", "Windows2022")
    out.setdefault("type", "VirtualMachineScaleSets")
    out.setdefault("mode", "System")
    out.setdefault("maxPods", 110)
    if not out.get("osDiskSizeGB"):
        out["osDiskSizeGB"] = 128  # a request's 0 means "the default" (recorded: 0 -> 128)
    out.setdefault("osDiskType", "Managed")
    out.setdefault("kubeletDiskType", "OS")
    if out.get("nodeTaints") == []:
        del out["nodeTaints"]
    if out.get("scaleSetPriority") in (None, "Regular"):
        # spot settings are answered only for Spot pools (recorded: a Regular pool's request values vanish)
        for key in ("scaleSetPriority", "scaleSetEvictionPolicy", "spotMaxPrice"):
            out.pop(key, None)
    if not out.get("orchestratorVersion"):
        out["orchestratorVersion"] = version
    out["currentOrchestratorVersion"] = out["orchestratorVersion"]
    out.setdefault(
        "nodeImageVersion",
        "AKSWindows-2022-containerd:20341.3.250101"
        if out["osType"] == "Windows"
        else "AKSUbuntu-2204gen2containerd-202501.01.0",
    )
    out["provisioningState"] = provisioning_state
    out["powerState"] = {"code": power}
    return out


def _identity(
    identity: dict[str, Any] | None, resource_id: str, tenant_id: str, ids: _ClusterIds
) -> dict[str, Any] | None:
    if not identity:
        return None
    out = dict(identity)
    kind = str(out.get("type", "None"))
    if kind == "SystemAssigned":
        out.setdefault("principalId", ids.uuid(0))
        out.setdefault("tenantId", tenant_id)
    elif kind == "UserAssigned":
        uais = out.get("userAssignedIdentities") or {}
        out["userAssignedIdentities"] = {
            uai_id: {
                "principalId": (value or {}).get("principalId")
                or deterministic_uuid("uai-principal", uai_id),
                "clientId": (value or {}).get("clientId") or deterministic_uuid("uai-client", uai_id),
            }
            for uai_id, value in uais.items()
        }
    return out


def aks_cluster_id(subscription_id: str, resource_group: str, name: str) -> str:
    """A managed cluster's id as AKS returns it: ``/resourcegroups/`` lower-cased (recorded, 2022 PUT and list
    answers; AKS keeps the other segments' casing)."""
    return (
        f"/subscriptions/{subscription_id}/resourcegroups/{resource_group}/providers/"
        f"{MANAGED_CLUSTERS_TYPE.split('/')[0]}/managedClusters/{name}"
    )


AKS_CLUSTER_TYPE = "Microsoft.ContainerService/ManagedClusters"
"""The ``type`` AKS answers (recorded; the official examples write managedClusters)."""


def with_load_balancer(
    network: dict[str, Any], subscription_id: str, node_resource_group: str
) -> dict[str, Any]:
    """``network`` with the load balancer profile AKS answers: a standard load balancer with outbound type
    loadBalancer gets one managed outbound IP unless told otherwise (recorded 2022 answers), and the
    profile carries ``effectiveOutboundIPs``, ``allocatedOutboundPorts`` and ``idleTimeoutInMinutes`` from
    the create answer on (the official 2026 ManagedClustersCreate_Update.json 201 has all three; the 2022
    answers lacked the last two: a documented deviation)."""
    lb = network.get("loadBalancerProfile")
    if lb is None:
        if str(network.get("loadBalancerSku", "")).lower() != "standard":
            return network
        if network.get("outboundType") != "loadBalancer":
            return network
        lb = {"managedOutboundIPs": {"count": 1}}
    lb = dict(lb)
    if "effectiveOutboundIPs" not in lb:
        public = (lb.get("outboundIPs") or {}).get("publicIPs")
        if public:
            lb["effectiveOutboundIPs"] = [{"id": ip["id"]} for ip in public]
        else:
            managed = (lb.get("managedOutboundIPs") or {}).get("count")
            lb["effectiveOutboundIPs"] = [
                {
                    "id": f"/subscriptions/{subscription_id}/resourceGroups/{node_resource_group}/providers/"
                    f"Microsoft.Network/publicIPAddresses/mgdoutboundip{i + 1}"
                }
                for i in range(int(managed or 1))
            ]
    lb.setdefault("allocatedOutboundPorts", 0)
    lb.setdefault("idleTimeoutInMinutes", 30)
    return {**network, "loadBalancerProfile": lb}


def with_provisioned_fields(body: dict[str, Any]) -> dict[str, Any]:
    """``body`` once AKS has provisioned it: the kubelet identity (``identityProfile``). A create answer
    (Creating) lacks it, the cluster once Succeeded has it (recorded 2022 PUT answer and list; the official
    2026 create example's 201 lacks it too). One already there (given, or provisioned before) stays."""
    props = dict(body.get("properties") or {})
    parts = str(body["id"]).strip("/").split("/")
    subscription_id, name = parts[1], parts[-1]
    node_rg = props.get("nodeResourceGroup") or ""
    ids = _ClusterIds(body["id"])
    identity = body.get("identity") or {}
    if identity.get("type") in ("SystemAssigned", "UserAssigned") and "identityProfile" not in props:
        props["identityProfile"] = {
            "kubeletidentity": {
                "resourceId": f"/subscriptions/{subscription_id}/resourceGroups/{node_rg}/"
                f"providers/Microsoft.ManagedIdentity/userAssignedIdentities/{name}-agentpool",
                "clientId": ids.uuid(1),
                "objectId": ids.uuid(2),
            }
        }
    return {**body, "properties": props}


def managed_cluster_body(
    request_body: dict[str, Any],
    *,
    subscription_id: str,
    resource_group: str,
    name: str,
    provisioning_state: str,
    tenant_id: str = DEFAULT_TENANT,
    previous: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The stored/returned body of a managed cluster created or replaced with ``request_body``.

    Shaped after AKS's answers in recorded traffic (2022) and the official examples (2026): server defaults
    (oidcIssuerProfile, securityProfile, servicePrincipalProfile ``msi`` for managed identity, pool disk
    types, a standard load balancer's managed outbound IP), request values echoed except those AKS drops
    (empty nodeTaints, a Regular pool's spot settings), no ``tags`` key without tags, and the fields that
    exist only once provisioned (:func:`with_provisioned_fields`) only when Succeeded."""
    rid = aks_cluster_id(subscription_id, resource_group, name)
    if previous is not None:
        rid = previous["id"]
    # The caller owns request_body (freshly parsed JSON or an estate entry): no defensive deep copy, which
    # dominated the cost of loading 100k clusters. Bodies are never mutated in place afterwards.
    props_in = dict(request_body.get("properties") or {})
    location = str(request_body.get("location", ""))
    version = props_in.get("kubernetesVersion") or DEFAULT_K8S_VERSION
    power = (
        ((props_in.get("powerState") or {}).get("code"))
        or ((previous or {}).get("properties", {}).get("powerState", {}).get("code"))
        or "Running"
    )
    dns_prefix = props_in.get("dnsPrefix") or f"{name[:30]}-{resource_group[:15]}-{subscription_id[:6]}"
    ids = _ClusterIds(rid)
    suffix = ids.suffix
    props = props_in
    props["provisioningState"] = provisioning_state
    props["powerState"] = {"code": power}
    props["kubernetesVersion"] = version
    props["currentKubernetesVersion"] = version
    props["dnsPrefix"] = dns_prefix
    props.setdefault("fqdn", f"{dns_prefix}-{suffix}.hcp.{location}.azmk8s.io")
    props.setdefault("azurePortalFQDN", f"{dns_prefix}-{suffix}.portal.hcp.{location}.azmk8s.io")
    props.setdefault("nodeResourceGroup", f"MC_{resource_group}_{name}_{location}")
    props.setdefault("enableRBAC", True)
    props.setdefault("maxAgentPools", 100)
    props.setdefault("securityProfile", {})
    props.setdefault("oidcIssuerProfile", {"enabled": False})
    pools = props.get("agentPoolProfiles") or [{}]
    props["agentPoolProfiles"] = [
        _agent_pool(p, version=version, provisioning_state=provisioning_state, power=power) for p in pools
    ]
    network = {**network_defaults(), **(props.get("networkProfile") or {})}
    props["networkProfile"] = with_load_balancer(network, subscription_id, props["nodeResourceGroup"])
    storage = dict(props.get("storageProfile") or {})
    storage.setdefault("diskCSIDriver", {"enabled": True})
    storage.setdefault("fileCSIDriver", {"enabled": True})
    storage.setdefault("snapshotController", {"enabled": True})
    props["storageProfile"] = storage
    sp = props.get("servicePrincipalProfile")
    if isinstance(sp, dict):
        sp = props["servicePrincipalProfile"] = {k: v for k, v in sp.items() if k != "secret"}
    win = props.get("windowsProfile")
    if isinstance(win, dict):
        props["windowsProfile"] = {k: v for k, v in win.items() if k != "adminPassword"}
    identity = _identity(request_body.get("identity"), rid, tenant_id, ids)
    if not sp:
        props["servicePrincipalProfile"] = {"clientId": "msi"}
    if previous is not None:
        kubelet = (previous.get("properties") or {}).get("identityProfile")
        if kubelet is not None:
            props.setdefault("identityProfile", kubelet)
    body: dict[str, Any] = {
        "id": rid,
        "name": name if previous is None else previous["name"],
        "type": AKS_CLUSTER_TYPE,
        "location": location,
    }
    tags = dict(request_body.get("tags") or {})
    if tags:
        body["tags"] = tags
    body["properties"] = props
    if identity is not None:
        body["identity"] = identity
    if request_body.get("sku") is not None:
        body["sku"] = request_body["sku"]
    else:
        body["sku"] = {"name": "Base", "tier": "Free"}
    if request_body.get("extendedLocation") is not None:
        body["extendedLocation"] = request_body["extendedLocation"]
    # a different eTag per write kind is enough for the emulator (ARM's eTag is opaque)
    body["eTag"] = ids.etag_seed if provisioning_state == "Succeeded" else ids.hex[112:120]
    return with_provisioned_fields(body) if provisioning_state == "Succeeded" else body


def storage_account_body(
    *,
    subscription_id: str,
    resource_group: str,
    name: str,
    location: str,
    kind: str = "StorageV2",
    sku: str = "Standard_LRS",
    tags: dict[str, str] | None = None,
    allow_blob_public_access: bool = False,
) -> dict[str, Any]:
    """A storage account as the Storage RP answers it (fields of the recorded 2021 list answer, plus the
    settings a current account is created with: TLS 1.2 minimum, no anonymous blob access)."""
    created = "2026-01-01T00:00:00.0000000Z"
    rid = (
        f"/subscriptions/{subscription_id}/resourceGroups/{resource_group}/providers/"
        f"Microsoft.Storage/storageAccounts/{name}"
    )
    return {
        "id": rid,
        "name": name,
        "type": "Microsoft.Storage/storageAccounts",
        "location": location,
        "kind": kind,
        "sku": {"name": sku, "tier": "Premium" if sku.startswith("Premium") else "Standard"},
        "tags": dict(tags or {}),
        "properties": {
            "provisioningState": "Succeeded",
            "primaryLocation": location,
            "statusOfPrimary": "available",
            "supportsHttpsTrafficOnly": True,
            "minimumTlsVersion": "TLS1_2",
            "allowBlobPublicAccess": allow_blob_public_access,
            "accessTier": "Hot",
            "creationTime": created,
            "keyCreationTime": {"key1": created, "key2": created},
            "privateEndpointConnections": [],
            "networkAcls": {
                "bypass": "AzureServices",
                "virtualNetworkRules": [],
                "ipRules": [],
                "defaultAction": "Allow",
            },
            "primaryEndpoints": {
                "blob": f"https://{name}.blob.core.windows.net/",
                "queue": f"https://{name}.queue.core.windows.net/",
                "table": f"https://{name}.table.core.windows.net/",
                "file": f"https://{name}.file.core.windows.net/",
                "dfs": f"https://{name}.dfs.core.windows.net/",
                "web": f"https://{name}.z13.web.core.windows.net/",
            },
            "encryption": {
                "keySource": "Microsoft.Storage",
                "services": {
                    "blob": {"enabled": True, "keyType": "Account", "lastEnabledTime": created},
                    "file": {"enabled": True, "keyType": "Account", "lastEnabledTime": created},
                },
            },
        },
    }


DEFAULT_EXTENSION_VERSION = "1.0.0"


def default_release_namespace(extension_type: str) -> str:
    return (
        "dataprotection-microsoft"
        if extension_type.lower() == "microsoft.dataprotection.kubernetes"
        else "kube-system"
    )


def extension_body(
    resource_id: str,
    request_body: dict[str, Any],
    *,
    provisioning_state: str,
    tenant_id: str,
    system_data: dict[str, Any],
    previous: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Stored/returned body, as the Kubernetes Configuration RP answers (recorded 2023-05-01 traffic):
    ``configurationProtectedSettings`` is always there and always ``{}`` (secrets are never returned);
    ``errorInfo`` appears only once an install failed; ``aksAssignedIdentity`` is the extension's identity on
    an AKS cluster and ``null`` on other parents (Arc); ``currentVersion`` is the pinned version once the RP
    has taken the request (the create answer itself says ``null``, see :func:`extension_create_answer`)."""
    props_in = copy.deepcopy(request_body.get("properties") or {})
    props_in.pop("configurationProtectedSettings", None)
    name = resource_id.rstrip("/").split("/")[-1]
    ext_type = props_in.get("extensionType") or (previous or {}).get("properties", {}).get("extensionType")
    auto = props_in.get("autoUpgradeMinorVersion", True)
    version = props_in.get("version")
    if version is None and auto is False:
        # Assumption: with auto-upgrade off and no version given, the RP pins the release train's current
        # version (CreateExtension.json answers version "0.1.4" to a request without one).
        version = (previous or {}).get("properties", {}).get("version") or DEFAULT_EXTENSION_VERSION
    release_train = props_in.get("releaseTrain") or "Stable"
    on_aks = "/providers/microsoft.containerservice/managedclusters/" in fold(resource_id)
    scope = props_in.get("scope") or {
        "cluster": {"releaseNamespace": default_release_namespace(str(ext_type))}
    }
    props: dict[str, Any] = {
        "extensionType": ext_type,
        "autoUpgradeMinorVersion": auto,
        "releaseTrain": release_train,
        "version": version,
        "scope": scope,
        "configurationSettings": props_in.get("configurationSettings") or {},
        "configurationProtectedSettings": {},
        "provisioningState": provisioning_state,
        "currentVersion": version if provisioning_state != "Succeeded" else (version or "1.0.0"),
        "statuses": [],
        "isSystemExtension": False,
        "aksAssignedIdentity": (
            {
                "principalId": deterministic_uuid("extension-identity", resource_id),
                "tenantId": tenant_id,
                "type": "SystemAssigned",
            }
            if on_aks
            else None
        ),
    }
    if "autoUpgradeMode" in props_in:
        props["autoUpgradeMode"] = props_in["autoUpgradeMode"]
    body: dict[str, Any] = {
        "id": resource_id,
        "name": name if previous is None else previous["name"],
        "type": EXTENSION_TYPE,
        "systemData": system_data,
        "properties": props,
    }
    if request_body.get("identity") is not None:
        body["identity"] = copy.deepcopy(request_body["identity"])
    if request_body.get("plan") is not None:
        body["plan"] = copy.deepcopy(request_body["plan"])
    return body


def extension_create_answer(stored: dict[str, Any]) -> dict[str, Any]:
    """The answer to the PUT that created or replaced ``stored``: the RP has not resolved the version yet, so
    ``currentVersion`` is ``null`` (recorded: null in the PUT answer, "1.6.0" in a GET a second later)."""
    return {**stored, "properties": {**stored["properties"], "currentVersion": None}}


SYSTEM_DATA_FILLED_SINCE = "2025-03-01"
"""Kubernetes Configuration answers at 2023-05-01 leave systemData's createdBy/createdByType/lastModifiedBy/
lastModifiedByType null (recorded); the 2025-03-01 examples fill them. Where between the two the RP started to
fill them is not known: we take the first version with evidence of it."""


def extension_answer(stored: dict[str, Any], api_version: str | None) -> dict[str, Any]:
    """``stored`` as answered at ``api_version`` (see :data:`SYSTEM_DATA_FILLED_SINCE`)."""
    if api_version is None or api_version[:10] >= SYSTEM_DATA_FILLED_SINCE or "systemData" not in stored:
        return stored
    who = ("createdBy", "createdByType", "lastModifiedBy", "lastModifiedByType")
    return {**stored, "systemData": {k: (None if k in who else v) for k, v in stored["systemData"].items()}}


def container_body(resource_id: str, properties: dict[str, Any], now_iso: str) -> dict[str, Any]:
    name = resource_id.rstrip("/").split("/")[-1]
    props = {
        "publicAccess": properties.get("publicAccess", "None"),
        "metadata": properties.get("metadata") or {},
        "defaultEncryptionScope": properties.get("defaultEncryptionScope", "$account-encryption-key"),
        "denyEncryptionScopeOverride": properties.get("denyEncryptionScopeOverride", False),
        "hasImmutabilityPolicy": False,
        "hasLegalHold": False,
        "legalHold": {"hasLegalHold": False, "tags": []},
        "leaseStatus": "Unlocked",
        "leaseState": "Available",
        "lastModifiedTime": now_iso,
        "deleted": False,
        "remainingRetentionDays": 0,
    }
    return {
        "id": resource_id,
        "name": name,
        "type": CONTAINER_TYPE,
        "etag": '"0x8D' + hashlib.sha256((resource_id + now_iso).encode()).hexdigest()[:12].upper() + '"',
        "properties": props,
    }


def resource_group_body(
    subscription_id: str, name: str, location: str, tags: dict[str, str]
) -> dict[str, Any]:
    return {
        "id": rg_id(subscription_id, name),
        "name": name,
        "type": RESOURCE_GROUP_TYPE,
        "location": location,
        "tags": tags,
        "properties": {"provisioningState": "Succeeded"},
    }
