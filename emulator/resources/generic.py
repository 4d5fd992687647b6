"""Other ARM resources the examples and estates need: AKS trusted-access role bindings (a managedCluster
child)
and read-only access to any resource an estate declares under ``resources`` (e.g. connectedClusters)."""

from __future__ import annotations

import logging
from typing import Any

from emulator.errors import RpError, bad_request, invalid_body, not_found
from emulator.resources.clusters import get_cluster_or_404
from emulator.resources.common import require_resource_group, state_of
from emulator.resources.paging import page
from emulator.routing import PluginContext, Request, Response, Router
from emulator.state import key_of

logger = logging.getLogger(__name__)

CLUSTER = (
    "/subscriptions/{subscriptionId}/resourceGroups/{resourceGroupName}/providers/Microsoft.ContainerService"
    "/managedClusters/{resourceName}"
)
BINDINGS = CLUSTER + "/trustedAccessRoleBindings"
BINDING = BINDINGS + "/{bindingName}"
BINDING_TYPE = "Microsoft.ContainerService/managedClusters/trustedAccessRoleBindings"
ANY_RESOURCE = (
    "/subscriptions/{subscriptionId}/resourceGroups/{resourceGroupName}/providers/{namespace}/{type}/{name}"
)


def register(router: Router, ctx: PluginContext) -> None:
    router.add("PUT", BINDING, put_binding, operation="TrustedAccessRoleBindings_CreateOrUpdate")
    router.add("GET", BINDING, get_binding, operation="TrustedAccessRoleBindings_Get")
    router.add("DELETE", BINDING, delete_binding, operation="TrustedAccessRoleBindings_Delete")
    router.add("GET", BINDINGS, list_bindings, operation="TrustedAccessRoleBindings_List")
    router.add("GET", ANY_RESOURCE, get_any, operation="Resources_Get")


def _binding_id(request: Request) -> str:
    """The binding's id in the request's casing (AKS answers ``resourceGroups`` here, unlike the cluster's own
    id; recorded)."""
    p = request.params
    return (
        f"/subscriptions/{p['subscriptionId']}/resourceGroups/{p['resourceGroupName']}/providers/"
        f"Microsoft.ContainerService/managedClusters/{p['resourceName']}/trustedAccessRoleBindings/"
        f"{p['bindingName']}"
    )


def _cluster(request: Request) -> dict[str, Any]:
    p = request.params
    return get_cluster_or_404(
        state_of(request), p["subscriptionId"], p["resourceGroupName"], p["resourceName"]
    )


def put_binding(request: Request) -> Response:
    state = state_of(request)
    _cluster(request)  # 404 when the cluster is missing
    body = request.json_object()
    props = body.get("properties")
    if not isinstance(props, dict):
        raise invalid_body("The request must contain a 'properties' object.")
    roles = props.get("roles")
    source = props.get("sourceResourceId")
    if not isinstance(roles, list) or not roles or not all(isinstance(r, str) for r in roles):
        raise bad_request("InvalidParameter", "properties.roles must be a non-empty list of role names.")
    if not isinstance(source, str) or not source.lower().startswith("/subscriptions/"):
        raise bad_request("InvalidParameter", "properties.sourceResourceId must be an ARM resource id.")
    rid = _binding_id(request)
    with state.lock:
        existing = state.resources.get(key_of(rid))
        stored = {
            "id": rid,
            "name": request.params["bindingName"] if existing is None else existing["name"],
            "type": BINDING_TYPE,
            "properties": {
                "roles": list(roles),
                "sourceResourceId": source,
                "provisioningState": "Succeeded",
            },
        }
        state.put("resources", rid, stored, principal=request.principal, notify=False)
    state.notify("write", rid, stored, request.principal)
    return Response(200 if existing else 201, {}, stored)


def get_binding(request: Request) -> Response:
    _cluster(request)
    body = state_of(request).get("resources", _binding_id(request))
    if body is None:
        p = request.params
        raise RpError(
            404,
            "NotFound",
            f"Could not find the trusted access role binding {p['bindingName']} in subscription: "
            f"{p['subscriptionId']}, resourceGroup: {p['resourceGroupName']}, "
            f"clusterName: {p['resourceName']}.",
            subcode="GetTrustedAccessRoleBinding_NotFound",
        )
    return Response(200, {}, body)


def delete_binding(request: Request) -> Response:
    _cluster(request)
    gone = state_of(request).remove(
        "resources",
        _binding_id(request),
        principal=request.principal,
    )
    return Response(200 if gone else 204, {}, None)


def list_bindings(request: Request) -> Response:
    cluster = _cluster(request)
    items = list(state_of(request).children("resources", cluster["id"] + "/trustedAccessRoleBindings"))
    return Response(200, {}, page(request, items))


def get_any(request: Request) -> Response:
    state = state_of(request)
    p = request.params
    require_resource_group(state, p["subscriptionId"], p["resourceGroupName"])
    body = state.get("resources", request.path)
    if body is None:
        raise not_found(f"{p['namespace']}/{p['type']}", p["name"], p["resourceGroupName"])
    return Response(200, {}, body)
