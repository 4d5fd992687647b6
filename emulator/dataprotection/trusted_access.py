"""AKS trusted-access role bindings (``managedClusters/{c}/trustedAccessRoleBindings/{name}``), as recorded.

The recording (aks-preview test_aks_trustedaccess_rolebinding) is the truth: create and update answer 200
with ``provisioningState: Updating`` and no async header, then Succeeded (``trustedAccessUpdateS`` later);
DELETE answers 200 with no body; a missing binding is AKS's own top-level ``{code, message, subcode}`` 404.
Roles must exist for the source resource's type (AKS refuses "non-exist role: …"); at most 8 bindings per
cluster (AKS doc). The backup side sees a binding only once it is Succeeded and ``trustedAccessEffectS`` has
passed (the AKS add-on manager's cycle), tracked in the service's ``Visibility``.
"""

from __future__ import annotations

import copy
import logging
import re
from typing import Any

from emulator.dataprotection.model import BACKUP_OPERATOR_ROLE
from emulator.dataprotection.service import DataProtectionService
from emulator.dataprotection.settings import MAX_TRUSTED_ACCESS_BINDINGS
from emulator.errors import ArmError, bad_request, invalid_body
from emulator.resources.clusters import get_cluster_or_404
from emulator.resources.common import lro_headers, new_operation, state_of
from emulator.routing import Request, Response, Router
from emulator.state import key_of

logger = logging.getLogger(__name__)

CLUSTER = (
    "/subscriptions/{subscriptionId}/resourceGroups/{resourceGroupName}/providers/Microsoft.ContainerService"
    "/managedClusters/{resourceName}"
)
BINDINGS = CLUSTER + "/trustedAccessRoleBindings"
BINDING = BINDINGS + "/{bindingName}"
BINDING_TYPE = "Microsoft.ContainerService/managedClusters/trustedAccessRoleBindings"
LRO_DELETE_FROM = "2023-09-01"
"""First api-version treated as long-running DELETE (the 2022 recording answers 200;
azure-mgmt-containerservice 41.x at 2026-08-01 accepts only 202/204). The exact switch-over version is an
assumption."""
_NAME = re.compile(r"^[A-Za-z0-9-]{1,24}$")
"""Binding names: 1–24 characters of ``^([A-Za-z0-9-])+$`` (REST reference, aks_backup_facts.md §2.4)."""

KNOWN_ROLES: frozenset[str] = frozenset(
    r.lower()
    for r in (
        BACKUP_OPERATOR_ROLE,  # Azure Backup for AKS (aks_backup_facts.md §2.4)
        # Azure Machine Learning roles of the official example (TrustedAccessRoleBindings_CreateOrUpdate)
        # and of azure-cli PR 28171 (the public role its test switched to)
        "Microsoft.MachineLearningServices/workspaces/reader",
        "Microsoft.MachineLearningServices/workspaces/writer",
        "Microsoft.MachineLearningServices/workspaces/mlworkload",
        # the internal roles the 2022 recording bound (accepted then; "non-exist" for others later)
        "Microsoft.Compute/virtualMachineScaleSets/test-node-reader",
        "Microsoft.Compute/virtualMachineScaleSets/test-admin",
    )
)
"""Trusted-access roles the emulated AKS knows; ``trustedAccessRoles`` in the estate adds more."""


def _source_type(source_id: str) -> str | None:
    """``Namespace/type`` of an ARM resource id (``…/providers/{ns}/{type}/{name}``)."""
    parts = source_id.strip("/").split("/")
    low = [p.lower() for p in parts]
    if "providers" not in low:
        return None
    i = len(low) - 1 - low[::-1].index("providers")
    if len(parts) < i + 4:
        return None
    return f"{parts[i + 1]}/{parts[i + 2]}".lower()


def _region(cluster: dict[str, Any]) -> str:
    return str(cluster.get("location") or "eastus").lower().replace(" ", "")


def _cluster(request: Request) -> dict[str, Any]:
    p = request.params
    return get_cluster_or_404(
        state_of(request), p["subscriptionId"], p["resourceGroupName"], p["resourceName"]
    )


class AksNotFound(ArmError):
    """AKS answers a missing sub-resource with its own top-level ``{code, message, subcode}`` body
    (recording tarb-get-404), not ARM's ``{"error": {...}}``."""

    def __init__(self, message: str, subcode: str) -> None:
        super().__init__(404, "NotFound", message)
        self.subcode = subcode

    def body(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.message, "subcode": self.subcode}


def _not_found(request: Request) -> ArmError:
    p = request.params
    return AksNotFound(
        f"Could not find the trusted access role binding {p['bindingName']} in subscription: "
        f"{p['subscriptionId']}, resourceGroup: {p['resourceGroupName']}, clusterName: {p['resourceName']}.",
        "GetTrustedAccessRoleBinding_NotFound",
    )


def _invalid_roles(detail: str) -> ArmError:
    return bad_request(
        "InvalidParameter",
        f"The value of parameter properties.roles is invalid. Error details: {detail}, please refer to "
        "http://aka.ms/aks/ta/role to list available roles. Please see https://aka.ms/aks-naming-rules for "
        "more details.",
        target="properties.roles",
    )


def register(router: Router, service: DataProtectionService) -> None:
    state = service.state

    def known_roles() -> frozenset[str]:
        extra = state.estate.get("trustedAccessRoles") or []
        return KNOWN_ROLES | {str(r).lower() for r in extra}

    def put_binding(request: Request) -> Response:
        cluster = _cluster(request)
        name = request.params["bindingName"]
        if not _NAME.match(name):
            raise bad_request(
                "InvalidParameter",
                f"The value of parameter trustedAccessRoleBindingName '{name}' is invalid: 1-24 "
                "characters of letters, digits and '-'.",
            )
        body = request.json_object()
        props = body.get("properties")
        if not isinstance(props, dict):
            raise invalid_body("The request must contain a 'properties' object.")
        roles = props.get("roles")
        source = props.get("sourceResourceId")
        if not isinstance(roles, list) or not roles or not all(isinstance(r, str) for r in roles):
            raise bad_request(
                "InvalidParameter", "properties.roles must be a non-empty list of role names.", target="roles"
            )
        if not isinstance(source, str) or _source_type(source) is None:
            raise bad_request(
                "InvalidParameter",
                "properties.sourceResourceId must be an ARM resource id.",
                target="properties.sourceResourceId",
            )
        source_type = _source_type(source)
        catalogue = known_roles()
        for role in roles:
            if role.lower() not in catalogue:
                raise _invalid_roles(f"non-exist role: {role}")
            if role.lower().rsplit("/", 1)[0] != source_type:
                raise _invalid_roles(f"role {role} can't be bound to a source resource of type {source_type}")
        rid = f"{cluster['id']}/trustedAccessRoleBindings/{name}"
        with state.lock:
            existing = state.resources.get(key_of(rid))
            if existing is None:
                count = sum(
                    1 for _ in state.children("resources", cluster["id"] + "/trustedAccessRoleBindings")
                )
                if count >= MAX_TRUSTED_ACCESS_BINDINGS:
                    raise bad_request(
                        "InvalidParameter",
                        f"A managed cluster can have at most {MAX_TRUSTED_ACCESS_BINDINGS} trusted access "
                        f"role bindings; cluster '{request.params['resourceName']}' has {count}.",
                    )
            stored = {
                "id": rid,
                "name": name if existing is None else existing["name"],
                "type": BINDING_TYPE,
                "properties": {
                    "provisioningState": "Updating",
                    "sourceResourceId": source,
                    "roles": list(roles),
                },
            }
            state.put("resources", rid, stored, principal=request.principal, notify=False)
            # the backup side stops seeing the binding until the update took effect again (assumption)
            service.visibility.set(rid, float("inf"))
            token = state.new_lifecycle_token(rid)
            principal = request.principal

            def succeeded() -> list[tuple[str, str, Any, Any]]:
                current = state.resources.get(key_of(rid))
                if current is None:
                    return []
                new = copy.deepcopy(current)
                new["properties"]["provisioningState"] = "Succeeded"
                state.resources[key_of(rid)] = new
                service.visibility.set(rid, state.now() + service.settings.trusted_access_effect_s)
                return [("provisioned", rid, new, principal)]

            state.schedule(state.now() + service.settings.trusted_access_update_s, rid, token, succeeded)
        state.notify("write", rid, stored, request.principal)
        return Response(200, {}, stored)

    def get_binding(request: Request) -> Response:
        cluster = _cluster(request)
        body = state.get(
            "resources", f"{cluster['id']}/trustedAccessRoleBindings/{request.params['bindingName']}"
        )
        if body is None:
            raise _not_found(request)
        return Response(200, {}, body)

    def delete_binding(request: Request) -> Response:
        """Recorded at 2022-11-02-preview: 200, no body. Newer api-versions make DELETE long-running
        (the SDK accepts only 202/204): 202 + Azure-AsyncOperation + Location, gone after
        ``trustedAccessUpdateS`` (assumption for the timing)."""
        cluster = _cluster(request)
        rid = f"{cluster['id']}/trustedAccessRoleBindings/{request.params['bindingName']}"
        service.visibility.forget(rid)
        if (request.api_version or "")[:10] < LRO_DELETE_FROM:
            gone = state.remove("resources", rid, principal=request.principal)
            return Response(200 if gone else 204, {}, None)
        with state.lock:
            previous = state.resources.get(key_of(rid))
            if previous is None:
                return Response(204, {}, None)
            new = copy.deepcopy(previous)
            new["properties"]["provisioningState"] = "Deleting"
            state.put("resources", rid, new, principal=request.principal, notify=False)
            _, url = new_operation(
                request,
                resource_id=rid,
                kind="delete",
                status_url_prefix=f"/subscriptions/{request.params['subscriptionId']}/providers/"
                f"Microsoft.ContainerService/locations/{_region(cluster)}/operations",
            )
            token = state.new_lifecycle_token(rid)
            principal = request.principal

            def remove() -> list[tuple[str, str, Any, Any]]:
                gone = state.resources.pop(key_of(rid), None)
                return [("deleted", rid, gone, principal)] if gone is not None else []

            state.schedule(state.now() + service.settings.trusted_access_update_s, rid, token, remove)
        state.notify("delete", rid, new, request.principal)
        return Response(202, lro_headers(request, url, location=True), None)

    def list_bindings(request: Request) -> Response:
        cluster = _cluster(request)
        items = list(state.children("resources", cluster["id"] + "/trustedAccessRoleBindings"))
        return Response(200, {}, {"value": items})

    router.add("PUT", BINDING, put_binding, operation="TrustedAccessRoleBindings_CreateOrUpdate")
    router.add("GET", BINDING, get_binding, operation="TrustedAccessRoleBindings_Get")
    router.add("DELETE", BINDING, delete_binding, operation="TrustedAccessRoleBindings_Delete")
    router.add("GET", BINDINGS, list_bindings, operation="TrustedAccessRoleBindings_List")


def binding_body(cluster_id: str, item: dict[str, Any]) -> dict[str, Any]:
    """Estate shorthand ``{clusterId, name, sourceResourceId, roles?, provisioningState?}`` → body."""
    rid = f"{cluster_id}/trustedAccessRoleBindings/{item['name']}"
    return {
        "id": rid,
        "name": item["name"],
        "type": BINDING_TYPE,
        "properties": {
            "provisioningState": item.get("provisioningState", "Succeeded"),
            "sourceResourceId": item["sourceResourceId"],
            "roles": list(item.get("roles") or [BACKUP_OPERATOR_ROLE]),
        },
    }
