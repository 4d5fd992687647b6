"""Cluster extensions (Microsoft.KubernetesConfiguration/extensions) under a managed (or connected) cluster.

PUT and DELETE are long-running: 201/202 + ``Azure-AsyncOperation`` (+ ``Retry-After``) pointing at
``.../extensions/{name}/operations/{operationId}`` (the swagger's OperationStatus_Get), and the extension goes
Creating → Succeeded after ``extensionCreateS`` — or → Failed when a ``fail-provisioning`` fault rule matches
the PUT, or when the install cannot work on the cluster (no Linux amd64 node pool, or no managed identity:
see ``extension_support``).
``aksAssignedIdentity.principalId`` is set on create (the identity the backup extension's storage role
assignment is for). Preconditions are checked in ARM's order: subscription → provider registration (409
MissingSubscriptionRegistration) → resource group → parent cluster (404) → cluster state (409
OperationNotAllowed when not Succeeded or not Running — our assumption of the code; see README).
"""

from __future__ import annotations

import copy
import logging
from typing import Any

from emulator.errors import ArmError, bad_request, invalid_body, not_found
from emulator.model.bodies import DEFAULT_EXTENSION_VERSION as DEFAULT_EXTENSION_VERSION
from emulator.model.bodies import extension_answer, extension_create_answer
from emulator.model.bodies import extension_body as extension_body
from emulator.model.ids import EXTENSION_TYPE as EXTENSION_TYPE
from emulator.model.ids import fold
from emulator.resources.common import (
    lro_headers,
    new_operation,
    operation_status,
    require_registered,
    require_resource_group,
    require_subscription,
    state_of,
    status_response_headers,
    system_data,
)
from emulator.resources.extension_support import check_request, install_blocker
from emulator.resources.paging import page
from emulator.routing import PluginContext, Request, Response, Router
from emulator.state import KUBERNETES_CONFIGURATION, EmulatorState, key_of

logger = logging.getLogger(__name__)

CLUSTER = (
    "/subscriptions/{subscriptionId}/resourceGroups/{resourceGroupName}/providers/{clusterRp}"
    "/{clusterResourceName}/{clusterName}"
)
EXTENSIONS = CLUSTER + "/providers/Microsoft.KubernetesConfiguration/extensions"
EXTENSION = EXTENSIONS + "/{extensionName}"
TERMINAL = ("Succeeded", "Failed", "Canceled")
_SUPPORTED_PARENTS = {  # folded (namespace, type) pairs
    ("microsoft.containerservice", "managedclusters"),
    ("microsoft.kubernetes", "connectedclusters"),
    ("microsoft.hybridcontainerservice", "provisionedclusters"),
}
FORCE_DELETE_ANSWER: dict[str, Any] = {
    "version": "1.1",
    "content": {"headers": []},
    "statusCode": 200,
    "reasonPhrase": "OK",
    "headers": [],
    "trailingHeaders": [],
    "requestMessage": None,
    "isSuccessStatusCode": True,
}
"""What the RP answers to DELETE ...?forceDelete=true (azure-cli-extensions k8s-extension cassette, 2023)."""
_WRITABLE = {
    "extensionType",
    "autoUpgradeMinorVersion",
    "autoUpgradeMode",
    "releaseTrain",
    "version",
    "scope",
    "configurationSettings",
    "configurationProtectedSettings",
    "aksAssignedIdentity",
}


def _cluster_parent(request: Request) -> tuple[str, dict[str, Any]]:
    """Check the preconditions ARM checks before the RP sees the call; returns (cluster id, cluster body)."""
    state = state_of(request)
    p = request.params
    sub, rg = p["subscriptionId"], p["resourceGroupName"]
    require_subscription(state, sub)
    require_registered(state, sub, KUBERNETES_CONFIGURATION)
    require_resource_group(state, sub, rg)
    if (fold(p["clusterRp"]), fold(p["clusterResourceName"])) not in _SUPPORTED_PARENTS:
        raise bad_request(
            "InvalidParameter",
            f"Cluster resource provider '{p['clusterRp']}/{p['clusterResourceName']}' is not supported for "
            "extensions. Supported: Microsoft.ContainerService/managedClusters, "
            "Microsoft.Kubernetes/connectedClusters, Microsoft.HybridContainerService/provisionedClusters.",
        )
    cid = (
        f"/subscriptions/{sub}/resourceGroups/{rg}/providers/{p['clusterRp']}/"
        f"{p['clusterResourceName']}/{p['clusterName']}"
    )
    coll = "clusters" if fold(p["clusterResourceName"]) == "managedclusters" else "resources"
    body = state.get(coll, cid)
    if body is None:
        raise ArmError(
            404,
            "ParentResourceNotFound",
            f"Can not perform requested operation on nested resource. Parent resource '{p['clusterName']}' "
            "not found.",
        )
    return cid, body


def _require_cluster_ready(cluster: dict[str, Any], name: str) -> None:
    props = cluster.get("properties") or {}
    prov = props.get("provisioningState", "Succeeded")
    power = (props.get("powerState") or {}).get("code", "Running")
    if prov != "Succeeded" or power != "Running":
        raise ArmError(
            409,
            "OperationNotAllowed",
            f"Operation is not allowed: the cluster '{name}' is in provisioningState '{prov}' and powerState "
            f"'{power}'; extensions can only be changed on a Succeeded, Running cluster.",
        )


def _install_blocker(
    request: Request, cluster: dict[str, Any], extension: dict[str, Any]
) -> dict[str, Any] | None:
    """Why the install on this cluster ends Failed (extension_support), or ``None``; managed clusters only."""
    if fold(request.params["clusterResourceName"]) != "managedclusters":
        return None
    return install_blocker(
        cluster, request.params["extensionName"], state=state_of(request), extension=extension
    )


def _status_prefix(request: Request) -> str:
    return f"{request.path.rstrip('/')}/operations"


def _schedule(
    state: EmulatorState,
    rid: str,
    delay: float,
    *,
    final: str,
    principal: str | None,
    error: dict[str, Any] | None,
) -> None:
    token = state.new_lifecycle_token(rid)

    def transition() -> list[tuple[str, str, Any, Any]]:
        body = state.extensions.get(key_of(rid))
        if body is None:
            return []
        new = copy.copy(body)
        props = dict(body["properties"])
        props["provisioningState"] = final
        if final == "Succeeded":
            props["currentVersion"] = props.get("version") or "1.0.0"
            props.pop("errorInfo", None)
        else:
            props["errorInfo"] = error
            props["statuses"] = [
                {
                    "code": "InstallationFailed",
                    "displayStatus": "Failed",
                    "level": "Error",
                    "message": (error or {}).get("message", "Extension installation failed."),
                    "time": None,
                }
            ]
        new["properties"] = props
        state.extensions[key_of(rid)] = new
        return [("provisioned", new["id"], new, principal)]

    state.schedule(state.now() + delay, rid, token, transition)


def register(router: Router, ctx: PluginContext) -> None:
    router.add("GET", EXTENSION, get_extension, operation="Extensions_Get")
    router.add("PUT", EXTENSION, put_extension, operation="Extensions_Create")
    router.add("PATCH", EXTENSION, patch_extension, operation="Extensions_Update")
    router.add("DELETE", EXTENSION, delete_extension, operation="Extensions_Delete")
    router.add("GET", EXTENSIONS, list_extensions, operation="Extensions_List")
    router.add("GET", EXTENSION + "/operations/{operationId}", get_operation, operation="OperationStatus_Get")


def _ext_id(request: Request, cluster_id: str) -> str:
    return f"{cluster_id}/providers/{KUBERNETES_CONFIGURATION}/extensions/{request.params['extensionName']}"


def get_extension(request: Request) -> Response:
    state = state_of(request)
    cid, _ = _cluster_parent(request)
    body = state.get("extensions", _ext_id(request, cid))
    if body is None:
        raise not_found(EXTENSION_TYPE, request.params["extensionName"], request.params["resourceGroupName"])
    return Response(200, {}, extension_answer(body, request.api_version))


def list_extensions(request: Request) -> Response:
    """Every page carries ``nextLink`` (``null`` on the last), as the RP answers (recorded, and ListExtensions
    .json)."""
    state = state_of(request)
    cid, _ = _cluster_parent(request)
    prefix = key_of(f"{cid}/providers/{KUBERNETES_CONFIGURATION}/extensions") + "/"
    with state.lock:
        items = [
            extension_answer(body, request.api_version)
            for key, body in state.extensions.items()
            if key.startswith(prefix)
        ]
    out = page(request, items)
    out.setdefault("nextLink", None)
    return Response(200, {}, out)


def _validate_properties(props: Any, *, create: bool) -> dict[str, Any]:
    if not isinstance(props, dict):
        raise invalid_body("The 'properties' property must be a JSON object.")
    ext_type = props.get("extensionType")
    if create and (not isinstance(ext_type, str) or not ext_type.strip()):
        raise bad_request(
            "InvalidParameter", "properties.extensionType is required.", target="properties.extensionType"
        )
    for key in ("configurationSettings", "configurationProtectedSettings"):
        value = props.get(key)
        if value is not None and (
            not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values())
        ):
            raise bad_request(
                "InvalidParameter", f"properties.{key} must map strings to strings.", target=key
            )
    if "autoUpgradeMinorVersion" in props and not isinstance(props["autoUpgradeMinorVersion"], bool):
        raise invalid_body("properties.autoUpgradeMinorVersion must be a boolean.")
    if props.get("autoUpgradeMinorVersion") is True and props.get("version"):
        raise bad_request(
            "InvalidParameter",
            "properties.version can only be set when autoUpgradeMinorVersion is false.",
            target="properties.version",
        )
    return props


def put_extension(request: Request) -> Response:
    state = state_of(request)
    assert request.config is not None
    cid, cluster = _cluster_parent(request)
    body = request.json_object()
    props = _validate_properties(body.get("properties", {}), create=True)
    rid = _ext_id(request, cid)
    sub = request.params["subscriptionId"]
    tenant = require_subscription(state, sub)["tenantId"]
    # ARM-side Deny policies refuse the PUT itself (403), before the RP sees it; outside the state lock
    check_request(
        state,
        {"id": rid, "name": request.params["extensionName"], "type": EXTENSION_TYPE, "properties": props},
    )
    with state.lock:
        _require_cluster_ready(cluster, request.params["clusterName"])
        previous = state.extensions.get(key_of(rid))
        if previous is not None:
            current = previous["properties"].get("provisioningState")
            if current not in TERMINAL:
                raise ArmError(
                    409,
                    "Conflict",
                    f"Extension '{previous['name']}' has an operation in progress ({current}); "
                    "retry when it ends.",
                )
            old_type = str(previous["properties"].get("extensionType", ""))
            if old_type.lower() != str(props["extensionType"]).lower():
                raise bad_request(
                    "InvalidParameter",
                    f"properties.extensionType cannot change from '{old_type}' "
                    f"to '{props['extensionType']}'.",
                )
        stored = extension_body(
            rid,
            body,
            provisioning_state="Updating" if previous else "Creating",
            tenant_id=tenant,
            system_data=system_data(state, request.principal, previous),
            previous=previous,
        )
        if previous is not None:
            stored["properties"]["aksAssignedIdentity"] = previous["properties"].get(
                "aksAssignedIdentity", stored["properties"]["aksAssignedIdentity"]
            )
        state.put("extensions", rid, stored, principal=request.principal, notify=False)
        _, url = new_operation(
            request, resource_id=rid, kind="create", status_url_prefix=_status_prefix(request)
        )
        fault = (
            request.runtime.faults.pick("PUT", request.path, actions=("fail-provisioning",))
            if request.runtime
            else None
        )
        error = (
            {"code": fault.code, "message": fault.message}
            if fault
            else _install_blocker(request, cluster, stored)
        )
        if error:
            state.meta.setdefault(key_of(rid), {})["lastError"] = error
        _schedule(
            state,
            rid,
            request.config.extension_create_s,
            final="Failed" if error else "Succeeded",
            principal=request.principal,
            error=error,
        )
    state.notify("write", stored["id"], stored, request.principal)
    headers = lro_headers(request, url)
    headers["x-ms-async-operation-timeout"] = "PT48H"
    # the RP also answers with Location: the extension's own URL (recorded, on its regional endpoint)
    headers["Location"] = f"{request.base_url}{request.path}"
    answer = extension_create_answer(extension_answer(stored, request.api_version))
    return Response(200 if previous else 201, headers, answer)


def patch_extension(request: Request) -> Response:
    state = state_of(request)
    assert request.config is not None
    cid, cluster = _cluster_parent(request)
    body = request.json_object()
    props = _validate_properties(body.get("properties", {}), create=False)
    unknown = set(props) - _WRITABLE
    if unknown or "extensionType" in props:
        raise bad_request(
            "InvalidParameter",
            f"These properties cannot be patched: {sorted(unknown | ({'extensionType'} & set(props)))}.",
        )
    rid = _ext_id(request, cid)
    with state.lock:
        previous = state.extensions.get(key_of(rid))
        if previous is None:
            raise not_found(
                EXTENSION_TYPE, request.params["extensionName"], request.params["resourceGroupName"]
            )
        _require_cluster_ready(cluster, request.params["clusterName"])
        merged_props = {k: v for k, v in previous["properties"].items()}
        for key, value in props.items():
            if key == "configurationProtectedSettings":
                continue
            if key == "configurationSettings":
                merged_props[key] = {**(merged_props.get(key) or {}), **(value or {})}
            else:
                merged_props[key] = value
        changed = merged_props != previous["properties"]
        if not changed:
            return Response(200, {}, extension_answer(previous, request.api_version))
        new = copy.copy(previous)
        merged_props["provisioningState"] = "Updating"
        new["properties"] = merged_props
        new["systemData"] = system_data(state, request.principal, previous)
        state.put("extensions", rid, new, principal=request.principal, notify=False)
        _, url = new_operation(
            request, resource_id=rid, kind="update", status_url_prefix=_status_prefix(request)
        )
        _schedule(
            state,
            rid,
            request.config.extension_create_s,
            final="Succeeded",
            principal=request.principal,
            error=None,
        )
    state.notify("write", new["id"], new, request.principal)
    headers = lro_headers(request, url)
    headers["x-ms-async-operation-timeout"] = "PT48H"
    return Response(202, headers, extension_answer(new, request.api_version))


def delete_extension(request: Request) -> Response:
    state = state_of(request)
    assert request.config is not None
    cid, _ = _cluster_parent(request)
    rid = _ext_id(request, cid)
    force = str(request.query.get("forceDelete") or "").lower() == "true"
    with state.lock:
        previous = state.extensions.get(key_of(rid))
        if previous is None:
            return Response(204, {}, None)
        if force:
            # forceDelete=true: gone at once, 200 with the RP's serialized HTTP response message as the body
            # (recorded verbatim in shape: a DELETE of an extension still Creating)
            state.new_lifecycle_token(rid)
            gone = state.extensions.pop(key_of(rid))
    if force:
        state.notify("delete", gone["id"], gone, request.principal)
        state.notify("deleted", gone["id"], gone, request.principal)
        return Response(200, {}, FORCE_DELETE_ANSWER)
    with state.lock:
        previous = state.extensions.get(key_of(rid))
        if previous is None:
            return Response(204, {}, None)
        new = copy.copy(previous)
        new["properties"] = {**previous["properties"], "provisioningState": "Deleting"}
        state.put("extensions", rid, new, principal=request.principal, notify=False)
        _, url = new_operation(
            request, resource_id=rid, kind="delete", status_url_prefix=_status_prefix(request)
        )
        token = state.new_lifecycle_token(rid)
        principal = request.principal

        def remove() -> list[tuple[str, str, Any, Any]]:
            gone = state.extensions.pop(key_of(rid), None)
            return [("deleted", gone["id"], gone, principal)] if gone else []

        state.schedule(state.now() + request.config.extension_delete_s, rid, token, remove)
    state.notify("delete", new["id"], new, request.principal)
    return Response(202, lro_headers(request, url), None)


def get_operation(request: Request) -> Response:
    state = state_of(request)
    _cluster_parent(request)
    status = operation_status(state, request.params["operationId"])
    status["id"] = request.path
    status.setdefault("properties", {})
    status.setdefault("error", None)
    return Response(200, status_response_headers(request, status), status)
