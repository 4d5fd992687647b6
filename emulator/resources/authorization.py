"""Role assignments (Microsoft.Authorization/roleAssignments) at any scope: PUT, GET, DELETE,
list with $filter.

Documented ARM behaviour reproduced: the assignment name must be a GUID; PUT of the same name with the same
principal/role/scope is idempotent; a *different* name for an existing principal+role+scope is 409
``RoleAssignmentExists``; changing principal/scope/role of an existing name is 409
``RoleAssignmentUpdateNotPermitted``; DELETE returns the deleted assignment (200) or 204 if absent.
"""

from __future__ import annotations

import logging
import re

from emulator.clock import iso
from emulator.errors import ArmError, bad_request, invalid_body, not_found, resource_group_not_found
from emulator.model.ids import fold
from emulator.resources.common import require_subscription, state_of
from emulator.resources.paging import page
from emulator.routing import PluginContext, Request, Response, Router
from emulator.state import COLLECTIONS, EmulatorState, key_of

logger = logging.getLogger(__name__)

ROLE_ASSIGNMENTS = "{scope:path}/providers/Microsoft.Authorization/roleAssignments"
ROLE_ASSIGNMENT = ROLE_ASSIGNMENTS + "/{roleAssignmentName}"
TYPE = "Microsoft.Authorization/roleAssignments"
_GUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
_ROLE_DEF = re.compile(
    r"^(/subscriptions/[^/]+)?(/resourceGroups/[^/]+)?/providers/Microsoft\.Authorization/roleDefinitions/"
    r"(?P<guid>[0-9a-fA-F-]{36})$",
    re.IGNORECASE,
)
PRINCIPAL_TYPES = ("User", "Group", "ServicePrincipal", "ForeignGroup", "Device")
BUILTIN_ROLE_DEFINITIONS: dict[str, str] = {
    # Built-in role GUIDs (the same in every tenant) that the product, its infra and the DINE policies use;
    # see docs/architecture / infra role tables and aks_backup_facts.md §1.4, §2.2.
    "8e3af657-a8ff-443c-a75c-2fe8c4bcb635": "Owner",
    "b24988ac-6180-42a0-ab88-20f7382dd24c": "Contributor",
    "acdd72a7-3385-48ef-bd42-f606fba81ae7": "Reader",
    "18d7d88d-d35e-4fb5-a5c3-7773c20a72d9": "User Access Administrator",
    "f58310d9-a9f6-439a-9e8d-f62e7b41a168": "Role Based Access Control Administrator",
    "ba92f5b4-2d11-453d-a403-e96b0029c9fe": "Storage Blob Data Contributor",
    "b7e6dc6d-f1e8-4753-8033-0f276bb0955b": "Storage Blob Data Owner",
    "17d1049b-9a84-46fb-8f53-869881c3d3ab": "Storage Account Contributor",
    "974c5e8b-45b9-4653-ba55-5f855dd0fb88": "Storage Queue Data Contributor",
    "0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3": "Storage Table Data Contributor",
    "85cb6faf-e071-4c9b-8136-154b5a04f717": "Kubernetes Extension Contributor",
    "36243c78-bf99-498c-9df9-86d9f8d28608": "Resource Policy Contributor",
    "d5a91429-5739-47e2-a06b-3470a27159e7": "EventGrid Data Sender",
    "3913510d-42f4-4e42-8a64-420c390055eb": "Monitoring Metrics Publisher",
    # the role the official RoleAssignments_Create* examples assign (so they replay unchanged)
    "0b5fe924-9a61-425c-96af-cfe6e287ca2d": "(official example role)",
    # Azure Backup for AKS (protect mode, issue 12; protection_facts.md §1.4, §1.6), GUIDs from
    # MicrosoftDocs/azure-docs@articles/role-based-access-control/built-in-roles.md (ms.date 2026-04-09)
    "7efff54f-a5b4-42b5-a1c5-5411624893ce": "Disk Snapshot Contributor",
    "959f8984-c045-4866-89c7-12bf9737be2e": "Data Operator for Managed Disks",
    "2a2b9908-6ea1-4ae2-8e65-a410df84e7d1": "Storage Blob Data Reader",
    "3e5e47e6-65f7-47ef-90b5-e5dd4d455f24": "Disk Backup Reader",
    "b50d9833-a0cb-478e-945f-707fcc997c13": "Disk Restore Operator",
    "5e467623-bb1f-42f4-a55d-6e525e11384b": "Backup Contributor",
    "00c29273-979b-4161-815c-10b084fb9324": "Backup Operator",
    "a795c7a0-d4a2-40c1-ae25-d81f01202912": "Backup Reader",
}
"""Role definitions that exist in every emulated tenant; an estate adds custom ones with a top-level
``roleDefinitions: [guid, ...]`` list."""
PRECREATE_HOOK = "authorization.precreate"
"""``state.plugin_state`` key of an optional callable(subscription_id) run before a NEW assignment is stored;
it may raise ArmError (emulator/dataprotection: 400 RoleAssignmentLimitExceeded past the per-subscription
limit)."""
_FILTER_PRINCIPAL = re.compile(r"principalId\s+eq\s+'([^']+)'", re.IGNORECASE)
_FILTER_ASSIGNED_TO = re.compile(r"assignedTo\('([^']+)'\)", re.IGNORECASE)


def role_definition_guid(role_definition_id: str) -> str:
    m = _ROLE_DEF.match(role_definition_id)
    return m.group("guid").lower() if m else role_definition_id.lower()  # GUIDs: ASCII hex


def _role_definition_exists(state: EmulatorState, guid: str) -> bool:
    if guid in BUILTIN_ROLE_DEFINITIONS:
        return True
    custom = (getattr(state, "estate", None) or {}).get("roleDefinitions") or []
    return guid in {role_definition_guid(str(c)) for c in custom}


def _check_scope(state: EmulatorState, scope: str) -> None:
    """The scope must exist: subscription, resource group, and (for modelled resource types) the resource."""
    parts = scope.strip("/").split("/")
    if len(parts) < 2 or fold(parts[0]) != "subscriptions":
        if fold(scope.strip("/")).startswith("providers/microsoft.management/managementgroups/"):
            return
        raise bad_request("InvalidScope", f"The scope '{scope}' is not valid for a role assignment.")
    require_subscription(state, parts[1])
    if (
        len(parts) >= 4
        and fold(parts[2]) == "resourcegroups"
        and state.get("resource_groups", "/" + "/".join(parts[:4])) is None
    ):
        raise resource_group_not_found(parts[3])
    if len(parts) >= 8 and fold(parts[4]) == "providers":
        key = key_of(scope)
        with state.lock:
            known = any(key in state.collection(c) for c in COLLECTIONS)
        if not known and (fold(parts[5]), fold(parts[6])) in {
            ("microsoft.storage", "storageaccounts"),
            ("microsoft.containerservice", "managedclusters"),
        }:
            raise not_found(f"{parts[5]}/{parts[6]}", parts[-1], parts[3])


def register(router: Router, ctx: PluginContext) -> None:
    router.add("PUT", ROLE_ASSIGNMENT, put_assignment, operation="RoleAssignments_Create")
    router.add("GET", ROLE_ASSIGNMENT, get_assignment, operation="RoleAssignments_Get")
    router.add("DELETE", ROLE_ASSIGNMENT, delete_assignment, operation="RoleAssignments_Delete")
    router.add("GET", ROLE_ASSIGNMENTS, list_assignments, operation="RoleAssignments_ListForScope")


def _scope(request: Request) -> str:
    return "/" + request.params["scope"].strip("/")


def put_assignment(request: Request) -> Response:
    state = state_of(request)
    scope = _scope(request)
    name = request.params["roleAssignmentName"]
    if not _GUID.match(name):
        raise bad_request(
            "InvalidRoleAssignmentId",
            f"The role assignment ID '{name}' is not valid. The role assignment ID must be a GUID.",
        )
    body = request.json_object()
    props = body.get("properties")
    if not isinstance(props, dict):
        raise invalid_body("The request must contain a 'properties' object.")
    role = props.get("roleDefinitionId")
    principal = props.get("principalId")
    if not isinstance(role, str) or not _ROLE_DEF.match(role):
        raise bad_request(
            "InvalidRoleDefinitionId",
            f"The role definition ID '{role}' is not valid.",
            target="properties.roleDefinitionId",
        )
    guid = role_definition_guid(role)
    if not _role_definition_exists(state, guid):
        raise bad_request(
            "RoleDefinitionDoesNotExist",
            f"The specified role definition with ID '{guid}' does not exist.",
            target="properties.roleDefinitionId",
        )
    if not isinstance(principal, str) or not _GUID.match(principal):
        raise bad_request(
            "InvalidPrincipalId",
            "A valid principal ID must be provided for role assignment.",
            target="properties.principalId",
        )
    ptype = props.get("principalType")
    if ptype is not None and ptype not in PRINCIPAL_TYPES:
        raise bad_request("InvalidPrincipalType", f"principalType must be one of {PRINCIPAL_TYPES}.")
    _check_scope(state, scope)
    rid = f"{scope}/providers/Microsoft.Authorization/roleAssignments/{name}"
    with state.lock:
        existing = state.role_assignments.get(key_of(rid))
        if existing is not None:
            ep = existing["properties"]
            same = (
                fold(ep["principalId"]) == fold(principal)
                and role_definition_guid(ep["roleDefinitionId"]) == guid
                and key_of(ep["scope"]) == key_of(scope)
            )
            if not same:
                raise ArmError(
                    409,
                    "RoleAssignmentUpdateNotPermitted",
                    "Tenant ID, application ID, principal ID, and scope are not allowed to be updated.",
                )
            return Response(200, {}, existing)
        for other in state.role_assignments.values():
            op = other["properties"]
            if (
                fold(op["principalId"]) == fold(principal)
                and role_definition_guid(op["roleDefinitionId"]) == guid
                and key_of(op["scope"]) == key_of(scope)
            ):
                raise ArmError(409, "RoleAssignmentExists", "The role assignment already exists.")
        precreate = state.plugin_state.get(PRECREATE_HOOK)
        if precreate is not None and scope.strip("/").lower().startswith("subscriptions/"):
            precreate(scope.strip("/").split("/")[1])
        now = iso(state.now())
        stored = {
            "id": rid,
            "name": name,
            "type": TYPE,
            "properties": {
                "roleDefinitionId": role,
                "principalId": principal,
                "principalType": ptype or "ServicePrincipal",
                "scope": scope,
                "condition": props.get("condition"),
                "conditionVersion": props.get("conditionVersion"),
                "description": props.get("description"),
                "delegatedManagedIdentityResourceId": props.get("delegatedManagedIdentityResourceId"),
                "createdOn": now,
                "updatedOn": now,
                "createdBy": request.principal,
                "updatedBy": request.principal,
            },
        }
        state.put("role_assignments", rid, stored, principal=request.principal, notify=False)
    state.notify("write", rid, stored, request.principal)
    # The create answer has createdBy null (ARM fills it in afterwards; recorded, azure-cli role cassette
    # 2023) while updatedBy is already set; later reads carry both.
    answer = {**stored, "properties": {**stored["properties"], "createdBy": None}}
    return Response(201, {}, answer)


def get_assignment(request: Request) -> Response:
    state = state_of(request)
    scope = _scope(request)
    rid = f"{scope}/providers/Microsoft.Authorization/roleAssignments/{request.params['roleAssignmentName']}"
    body = state.get("role_assignments", rid)
    if body is None:
        raise ArmError(
            404,
            "RoleAssignmentNotFound",
            f"The role assignment '{request.params['roleAssignmentName']}' is not found.",
        )
    return Response(200, {}, body)


def delete_assignment(request: Request) -> Response:
    state = state_of(request)
    scope = _scope(request)
    rid = f"{scope}/providers/Microsoft.Authorization/roleAssignments/{request.params['roleAssignmentName']}"
    gone = state.remove("role_assignments", rid, principal=request.principal)
    if gone is None:
        return Response(204, {}, None)
    return Response(200, {}, gone)


def list_assignments(request: Request) -> Response:
    """At, above and below the scope; ``atScope()`` keeps at/above; ``principalId eq`` / ``assignedTo``
    filter by principal."""
    state = state_of(request)
    scope = key_of(_scope(request))
    flt = request.query.get("$filter") or ""
    at_scope = "atscope()" in flt.lower()
    principal = _FILTER_PRINCIPAL.search(flt) or _FILTER_ASSIGNED_TO.search(flt)
    with state.lock:
        items = []
        for body in state.role_assignments.values():
            s = key_of(body["properties"]["scope"])
            above_or_at = scope == s or scope.startswith(s + "/")
            below = s.startswith(scope + "/")
            if not (above_or_at or (below and not at_scope)):
                continue
            if principal and fold(body["properties"]["principalId"]) != fold(principal.group(1)):
                continue
            items.append(body)
    return Response(200, {}, page(request, items))
