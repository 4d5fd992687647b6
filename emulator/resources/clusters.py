"""Managed clusters (Microsoft.ContainerService/managedClusters): GET, list, PUT, PATCH tags, DELETE,
start/stop, and the async-operation endpoints, with the Creating → Succeeded lifecycle on the state clock."""

from __future__ import annotations

import copy
import logging
import re
from typing import Any

from emulator.errors import ArmError, bad_request, invalid_body, not_found
from emulator.lifecycle import schedule_cluster_completion
from emulator.model.bodies import managed_cluster_body
from emulator.model.ids import fold
from emulator.resources.common import (
    CONTAINER_SERVICE,
    MANAGED_CLUSTERS_TYPE,
    cluster_id,
    lro_headers,
    new_operation,
    operation_status,
    require_registered,
    require_resource_group,
    require_subscription,
    state_of,
    status_response_headers,
)
from emulator.resources.paging import list_under
from emulator.routing import PluginContext, Request, Response, Router
from emulator.state import EmulatorState, key_of

logger = logging.getLogger(__name__)

BASE = (
    "/subscriptions/{subscriptionId}/resourceGroups/{resourceGroupName}/providers/Microsoft.ContainerService"
)
CLUSTER = BASE + "/managedClusters/{resourceName}"
TERMINAL = ("Succeeded", "Failed", "Canceled")
AKS_OPERATIONS_API = "2016-03-30"
"""The api-version AKS puts in its Azure-AsyncOperation URLs, whatever the request's (recorded)."""
_NAME = re.compile(r"^[a-zA-Z0-9]$|^[a-zA-Z0-9][-_a-zA-Z0-9]{0,61}[a-zA-Z0-9]$")
_IDENTITY_TYPES = ("SystemAssigned", "UserAssigned", "None")
_TAG_KEY_FORBIDDEN = set("<>%&\\?/")


def validate_tags(tags: Any) -> dict[str, str]:
    """Azure's tag rules: object of string→string, key ≤ 512 chars without < > % & \\ ? /, value ≤ 256."""
    if tags is None:
        return {}
    if not isinstance(tags, dict):
        raise invalid_body("The 'tags' property must be a JSON object of strings.")
    if len(tags) > 50:
        raise bad_request("InvalidTagCount", "A resource can have at most 50 tags.", target="tags")
    seen: dict[str, str] = {}
    for key, value in tags.items():
        if isinstance(key, str) and fold(key) in seen:
            # Tag names are case-insensitive in ARM, so one resource cannot carry both; the code is ours (A).
            raise bad_request(
                "InvalidTagNameCaseDuplicate",
                f"The tag names '{seen[fold(key)]}' and '{key}' differ only by case; tag names are "
                "case-insensitive.",
                target="tags",
            )
        seen[fold(str(key))] = str(key)
        if not isinstance(value, str):
            raise invalid_body(f"The value of tag '{key}' must be a string.")
        if not key or len(key) > 512 or _TAG_KEY_FORBIDDEN & set(key):
            raise bad_request(
                "InvalidTagNameCharacters",
                f"The tag name '{key}' has invalid characters '<,>,%,&,\\,?,/' "
                "or is longer than 512 characters.",
                target="tags",
            )
        if len(value) > 256:
            raise bad_request("InvalidTagValueLength", f"The value of tag '{key}' exceeds 256 characters.")
    return dict(tags)


def _params(request: Request) -> tuple[str, str, str]:
    p = request.params
    return p["subscriptionId"], p["resourceGroupName"], p["resourceName"]


def _operation_prefix(subscription_id: str, location: str) -> str:
    return f"/subscriptions/{subscription_id}/providers/{CONTAINER_SERVICE}/locations/{location}/operations"


def get_cluster_or_404(
    state: EmulatorState, subscription_id: str, resource_group: str, name: str
) -> dict[str, Any]:
    require_resource_group(state, subscription_id, resource_group)
    body = state.get("clusters", cluster_id(subscription_id, resource_group, name))
    if body is None:
        raise not_found(MANAGED_CLUSTERS_TYPE, name, resource_group)
    return body


def register(router: Router, ctx: PluginContext) -> None:
    router.add("GET", CLUSTER, get_cluster, operation="ManagedClusters_Get")
    router.add("PUT", CLUSTER, put_cluster, operation="ManagedClusters_CreateOrUpdate")
    router.add("PATCH", CLUSTER, patch_cluster, operation="ManagedClusters_UpdateTags")
    router.add("DELETE", CLUSTER, delete_cluster, operation="ManagedClusters_Delete")
    router.add(
        "POST", CLUSTER + "/stop", lambda r: power_action(r, "Stopped"), operation="ManagedClusters_Stop"
    )
    router.add(
        "POST", CLUSTER + "/start", lambda r: power_action(r, "Running"), operation="ManagedClusters_Start"
    )
    router.add("GET", BASE + "/managedClusters", list_by_rg, operation="ManagedClusters_ListByResourceGroup")
    router.add(
        "GET",
        "/subscriptions/{subscriptionId}/providers/Microsoft.ContainerService/managedClusters",
        list_by_subscription,
        operation="ManagedClusters_List",
    )
    router.add(
        "GET",
        "/subscriptions/{subscriptionId}/providers/Microsoft.ContainerService/locations/{location}/operations/{operationId}",
        get_operation,
        operation="ManagedClusters_OperationStatus",
    )
    router.add(
        "GET",
        "/subscriptions/{subscriptionId}/providers/Microsoft.ContainerService/locations/{location}/operationresults/{operationId}",
        get_operation_result,
        operation="ManagedClusters_OperationResult",
    )


def get_cluster(request: Request) -> Response:
    state = state_of(request)
    sub, rg, name = _params(request)
    return Response(200, {}, get_cluster_or_404(state, sub, rg, name))


def list_by_rg(request: Request) -> Response:
    state = state_of(request)
    sub, rg = request.params["subscriptionId"], request.params["resourceGroupName"]
    require_resource_group(state, sub, rg)
    prefix = key_of(
        f"/subscriptions/{sub}/resourceGroups/{rg}/providers/{CONTAINER_SERVICE}/managedClusters/"
    )
    return list_under(request, state.clusters, prefix)


def list_by_subscription(request: Request) -> Response:
    state = state_of(request)
    sub = request.params["subscriptionId"]
    require_subscription(state, sub)
    prefix = key_of(f"/subscriptions/{sub}") + "/"
    return list_under(request, state.clusters, prefix)


def put_cluster(request: Request) -> Response:
    state = state_of(request)
    assert request.config is not None
    sub, rg, name = _params(request)
    subscription = require_subscription(state, sub)
    require_registered(state, sub, CONTAINER_SERVICE)
    require_resource_group(state, sub, rg)
    if not _NAME.match(name):
        raise bad_request(
            "InvalidParameter",
            f"The value of parameter resourceName '{name}' is invalid: 1-63 letters, digits, '-' or '_', "
            "starting and ending with a letter or digit.",
            target="resourceName",
        )
    body = request.json_object()
    location = body.get("location")
    if not isinstance(location, str) or not location:
        raise bad_request("LocationRequired", "The location property is required for this definition.")
    props = body.get("properties", {})
    if not isinstance(props, dict):
        raise invalid_body("The 'properties' property must be a JSON object.")
    pools = props.get("agentPoolProfiles", [])
    if not isinstance(pools, list) or not all(isinstance(p, dict) for p in pools):
        raise invalid_body("The 'properties.agentPoolProfiles' property must be an array of objects.")
    identity = body.get("identity")
    if identity is not None:
        if not isinstance(identity, dict) or identity.get("type") not in _IDENTITY_TYPES:
            raise bad_request(
                "InvalidParameter",
                f"The identity type must be one of {', '.join(_IDENTITY_TYPES)}.",
                target="identity.type",
            )
        if identity["type"] == "UserAssigned" and not identity.get("userAssignedIdentities"):
            raise bad_request(
                "InvalidParameter",
                "identity.userAssignedIdentities must name one identity when the type is UserAssigned.",
                target="identity.userAssignedIdentities",
            )
    validate_tags(body.get("tags"))
    rid = cluster_id(sub, rg, name)
    with state.lock:
        previous = state.clusters.get(key_of(rid))
        if previous is not None:
            current = previous["properties"].get("provisioningState")
            if current not in TERMINAL:
                raise ArmError(
                    409,
                    "OperationNotAllowed",
                    "Operation is not allowed because there's an in progress "
                    f"{current.lower()} managed cluster "
                    f"operation on '{name}'. Please wait for it to finish before starting a new operation.",
                )
            if previous["location"].lower() != location.replace(" ", "").lower():
                raise bad_request(
                    "LocationChangeNotAllowed",
                    f"The location of managed cluster '{name}' cannot be changed from "
                    f"'{previous['location']}' to '{location}'.",
                )
        new_state = "Updating" if previous is not None else "Creating"
        stored = managed_cluster_body(
            body,
            subscription_id=sub,
            resource_group=rg,
            name=name,
            provisioning_state=new_state,
            tenant_id=subscription["tenantId"],
            previous=previous,
        )
        state.put("clusters", rid, stored, principal=request.principal, notify=False)
        _, url = new_operation(
            request,
            resource_id=rid,
            kind="update" if previous else "create",
            status_url_prefix=_operation_prefix(sub, stored["location"]),
            api_version=AKS_OPERATIONS_API,
        )
        delay = request.config.cluster_update_s if previous else request.config.cluster_create_s
        fail = (
            request.runtime.faults.pick("PUT", request.path, actions=("fail-provisioning",))
            if request.runtime
            else None
        )
        if fail is not None:
            state.meta.setdefault(key_of(rid), {})["lastError"] = {"code": fail.code, "message": fail.message}
        schedule_cluster_completion(
            state, rid, delay, final="Failed" if fail else "Succeeded", principal=request.principal
        )
    state.notify("write", rid, stored, request.principal)  # events name the id as requested
    return Response(200 if previous else 201, lro_headers(request, url), stored)


def patch_cluster(request: Request) -> Response:
    state = state_of(request)
    assert request.config is not None
    sub, rg, name = _params(request)
    body = request.json_object()
    unknown = set(body) - {"tags"}
    if unknown:
        raise bad_request(
            "InvalidParameter", f"Only 'tags' can be patched on a managed cluster; got {sorted(unknown)}."
        )
    tags = validate_tags(body.get("tags"))
    rid = cluster_id(sub, rg, name)
    with state.lock:
        previous = get_cluster_or_404(state, sub, rg, name)
        current = previous["properties"].get("provisioningState")
        if current not in TERMINAL:
            raise ArmError(
                409,
                "OperationNotAllowed",
                "Operation is not allowed because there's an in progress "
                f"{str(current).lower()} operation on '{name}'.",
            )
        new = copy.copy(previous)
        new["tags"] = tags
        new["properties"] = {**previous["properties"], "provisioningState": "Updating"}
        state.put("clusters", rid, new, principal=request.principal, notify=False)
        _, url = new_operation(
            request,
            resource_id=rid,
            kind="update",
            status_url_prefix=_operation_prefix(sub, new["location"]),
            api_version=AKS_OPERATIONS_API,
        )
        schedule_cluster_completion(state, rid, request.config.cluster_update_s, principal=request.principal)
    state.notify("write", rid, new, request.principal)
    return Response(200, lro_headers(request, url), new)


def delete_cluster(request: Request) -> Response:
    state = state_of(request)
    assert request.config is not None
    sub, rg, name = _params(request)
    require_resource_group(state, sub, rg)
    rid = cluster_id(sub, rg, name)
    with state.lock:
        previous = state.clusters.get(key_of(rid))
        if previous is None:
            return Response(204, {}, None)
        new = copy.copy(previous)
        new["properties"] = {**previous["properties"], "provisioningState": "Deleting"}
        state.put("clusters", rid, new, principal=request.principal, notify=False)
        _, url = new_operation(
            request,
            resource_id=rid,
            kind="delete",
            status_url_prefix=_operation_prefix(sub, new["location"]),
            api_version=AKS_OPERATIONS_API,
        )
        token = state.new_lifecycle_token(rid)
        principal = request.principal

        def remove() -> list[tuple[str, str, Any, Any]]:
            removed = state.clusters.pop(key_of(rid), None)
            out: list[tuple[str, str, Any, Any]] = []
            prefix = key_of(rid) + "/"
            for coll in ("extensions", "role_assignments", "resources"):
                items = state.collection(coll)
                for key in [k for k in items if k.startswith(prefix)]:
                    child = items.pop(key)
                    out.append(("deleted", child["id"], child, principal))
            if removed is not None:
                out.append(("deleted", rid, removed, principal))
            return out

        state.schedule(state.now() + request.config.cluster_delete_s, rid, token, remove)
    state.notify("delete", rid, new, request.principal)
    return Response(202, lro_headers(request, url, location=True), None)


def power_action(request: Request, power: str) -> Response:
    state = state_of(request)
    assert request.config is not None
    sub, rg, name = _params(request)
    rid = cluster_id(sub, rg, name)
    with state.lock:
        previous = get_cluster_or_404(state, sub, rg, name)
        current = previous["properties"].get("provisioningState")
        if current not in TERMINAL:
            raise ArmError(
                409, "OperationNotAllowed", f"Operation is not allowed while the cluster is {current}."
            )
        new = copy.copy(previous)
        new["properties"] = {
            **previous["properties"],
            "provisioningState": "Stopping" if power == "Stopped" else "Starting",
        }
        state.put("clusters", rid, new, principal=request.principal, notify=False)
        _, url = new_operation(
            request,
            resource_id=rid,
            kind="update",
            status_url_prefix=_operation_prefix(sub, new["location"]),
            api_version=AKS_OPERATIONS_API,
        )
        schedule_cluster_completion(
            state, rid, request.config.cluster_update_s, principal=request.principal, power=power
        )
    state.notify("action", rid, new, request.principal)
    return Response(202, lro_headers(request, url, location=True), None)


def get_operation(request: Request) -> Response:
    status = operation_status(state_of(request), request.params["operationId"])
    return Response(200, status_response_headers(request, status), status)


def get_operation_result(request: Request) -> Response:
    status = operation_status(state_of(request), request.params["operationId"])
    if status["status"] == "InProgress":
        assert request.config is not None
        return Response(
            202, {"Location": f"{request.base_url}{request.path}?api-version={request.api_version}"}, None
        )
    return Response(204, {}, None)
