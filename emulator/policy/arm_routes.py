"""ARM surface of Azure Policy in the emulator: assignments, definitions, and AKS Deployment Safeguards.

Routes (all through the real SDK shapes of azure-mgmt-resource-policy 1.0.0, api-version 2026-06-01):
- ``PUT|GET|DELETE {scope}/providers/Microsoft.Authorization/policyAssignments/{name}`` at a management group,
  subscription, resource group or resource (D: PolicyAssignments_Create/Get/Delete); ``GET
  /subscriptions/{sub}/providers/Microsoft.Authorization/policyAssignments`` (PolicyAssignments_List: the
  subscription's, its resource groups' and the management groups' above it, D).
- ``GET /providers/Microsoft.Authorization/policyDefinitions/{name}`` and ``policySetDefinitions/{name}``:
  the vendored built-ins (D shape); ``PUT|GET`` custom definitions and initiatives at a subscription or a
  management group.
- ``PUT|GET|DELETE {clusterId}/providers/Microsoft.ContainerService/deploymentSafeguards/default`` (D shape:
  properties ``level`` Warn|Enforce, ``excludedNamespaces``, ``podSecurityStandardsLevel``, read-only
  ``systemExcludedNamespaces`` and ``provisioningState``). A: the PUT answers synchronously (200/201,
  Succeeded), needs the cluster's Azure Policy add-on (400 ``AzurePolicyAddonNotEnabled``, A code), and
  ``systemExcludedNamespaces`` is ``kube-system, gatekeeper-system, azure-arc`` (whether AKS lists
  ``dataprotection-microsoft`` there is UNCONFIRMED; we assume not).
Estate keys: ``policyDefinitions: [{id, properties}]`` (custom), ``deploymentSafeguards: [{clusterId, level,
excludedNamespaces}]``; assignments as before (``policyAssignments``, now with ``notScopes``,
``enforcementMode``, ``displayName`` and any vendored or custom definition).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from emulator.errors import ArmError, bad_request, invalid_body
from emulator.model.hierarchy import ManagementGroupTree
from emulator.model.ids import key_of
from emulator.policy.admission import gatekeeper_denial, request_denial
from emulator.policy.catalog import PolicySetDefinition
from emulator.policy.engine import PolicyEngine, cluster_key_of
from emulator.resources.extension_support import INSTALL_CHECKS, REQUEST_CHECKS
from emulator.routing import PluginContext, Request, Response, Router

logger = logging.getLogger(__name__)

AUTH = "/providers/Microsoft.Authorization"
MG = "/providers/Microsoft.Management/managementGroups/{managementGroupId}"
SAFEGUARDS = (
    "/subscriptions/{subscriptionId}/resourceGroups/{resourceGroupName}/providers/Microsoft.ContainerService"
    "/managedClusters/{clusterName}/providers/Microsoft.ContainerService/deploymentSafeguards/{safeguardsName}"
)
SYSTEM_EXCLUDED = ["kube-system", "gatekeeper-system", "azure-arc"]


def _scope(request: Request) -> str:
    if "managementGroupId" in request.params:
        return f"/providers/Microsoft.Management/managementGroups/{request.params['managementGroupId']}"
    return "/" + request.params["scope"].strip("/")


def _kind(request: Request) -> str:
    kind = request.params["kind"].lower()
    if kind not in ("policydefinitions", "policysetdefinitions"):
        raise ArmError(404, "NotFound", f"No route for Microsoft.Authorization/{request.params['kind']}.")
    return kind


def definition_json(definition: Any) -> dict[str, Any]:
    raw = dict(definition.raw)
    raw.setdefault(
        "type",
        "Microsoft.Authorization/policySetDefinitions"
        if isinstance(definition, PolicySetDefinition)
        else "Microsoft.Authorization/policyDefinitions",
    )
    return raw


def safeguards_body(
    cluster_id: str, data: Mapping[str, Any], previous: Mapping[str, Any] | None
) -> dict[str, Any]:
    props = data.get("properties") if isinstance(data.get("properties"), Mapping) else data
    assert isinstance(props, Mapping)
    level = props.get("level")
    if not isinstance(level, str) or level.lower() not in ("warn", "enforce"):
        raise bad_request(
            "InvalidParameter", "properties.level must be Warn or Enforce.", target="properties.level"
        )
    excluded = props.get("excludedNamespaces") or []
    if not isinstance(excluded, list) or not all(isinstance(n, str) for n in excluded):
        raise bad_request("InvalidParameter", "properties.excludedNamespaces must be a list of strings.")
    out_props: dict[str, Any] = {
        "level": "Enforce" if level.lower() == "enforce" else "Warn",
        "excludedNamespaces": list(excluded),
        "systemExcludedNamespaces": list(SYSTEM_EXCLUDED),
        "provisioningState": "Succeeded",
    }
    if props.get("podSecurityStandardsLevel"):
        out_props["podSecurityStandardsLevel"] = str(props["podSecurityStandardsLevel"])
    elif previous and (previous.get("properties") or {}).get("podSecurityStandardsLevel"):
        out_props["podSecurityStandardsLevel"] = previous["properties"]["podSecurityStandardsLevel"]
    return {
        "id": f"{cluster_id}/providers/Microsoft.ContainerService/deploymentSafeguards/default",
        "name": "default",
        "type": "Microsoft.ContainerService/deploymentSafeguards",
        "properties": out_props,
    }


def _addon_enabled(cluster: Mapping[str, Any]) -> bool:
    addons = (cluster.get("properties") or {}).get("addonProfiles") or {}
    addon = next((v for k, v in addons.items() if k.lower() == "azurepolicy"), None) or {}
    return bool(addon.get("enabled"))


def register(router: Router, ctx: PluginContext, engine: PolicyEngine) -> None:
    """Add the policy ARM routes and the extension admission checks for ``engine``."""
    state = ctx.state

    def tree() -> ManagementGroupTree:
        with state.lock:
            tenants = {k: str(v.get("tenantId", "")) for k, v in state.subscriptions.items()}
        return ManagementGroupTree.from_estate(state.estate.get("managementGroups") or {}, tenants=tenants)

    def groups_of(subscription_id: str) -> list[str]:
        current = tree()
        return [g["name"] for g in current.ancestors_chain(subscription_id)]

    engine.groups_of = groups_of

    def install_checks() -> None:
        state.plugin_state[INSTALL_CHECKS] = [lambda cluster, ext: gatekeeper_denial(engine, cluster, ext)]

        def deny(ext: dict[str, Any]) -> None:
            denied = request_denial(engine, ext)
            if denied is not None:
                raise denied

        state.plugin_state[REQUEST_CHECKS] = [deny]

    def on_load(_state: Any, estate: dict[str, Any]) -> None:
        install_checks()
        engine.safeguards.clear()
        for i, item in enumerate(estate.get("deploymentSafeguards") or []):
            cid = str(item.get("clusterId") or "")
            key = cluster_key_of(cid)
            if key is None:
                raise ValueError(f"deploymentSafeguards[{i}].clusterId: {cid!r} is not a managed cluster id")
            engine.safeguards[key] = safeguards_body(cid, item, None)

    state.on_load(on_load)
    install_checks()
    if state.estate:
        on_load(state, state.estate)

    def on_change(operation: str, resource_id: str, _resource: Any, _principal: str | None) -> None:
        if operation == "deleted" and cluster_key_of(resource_id) == resource_id.lower().rstrip("/"):
            engine.safeguards.pop(resource_id.lower().rstrip("/"), None)

    state.subscribe(on_change)

    # ---- policy assignments -----------------------------------------------------------------------------
    def put_assignment(request: Request) -> Response:
        scope = _scope(request)
        name = request.params["name"]
        body = request.json_object()
        props = body.get("properties")
        if not isinstance(props, Mapping):
            raise invalid_body("The request must contain a 'properties' object.")
        entry = {
            "name": name,
            "scope": scope,
            "definition": props.get("policyDefinitionId") or "",
            "parameters": props.get("parameters") or {},
            "notScopes": props.get("notScopes") or [],
            "enforcementMode": props.get("enforcementMode") or "Default",
            "displayName": props.get("displayName") or "",
        }
        if not entry["definition"]:
            raise bad_request("InvalidRequestContent", "properties.policyDefinitionId is required.")
        existed = f"{scope}{AUTH}/policyAssignments/{name}".lower() in engine.assignments
        try:
            assignment = engine.add_assignment(entry)
        except ValueError as exc:
            code = (
                "PolicyDefinitionNotFound"
                if "not a known policy definition" in str(exc)
                else "InvalidPolicyParameters"
            )
            raise ArmError(404 if code == "PolicyDefinitionNotFound" else 400, code, str(exc)) from exc
        del existed  # PolicyAssignments_Create answers 201 for a create and for an update (spec: 201 only)
        return Response(201, {}, assignment.to_json())

    def get_assignment(request: Request) -> Response:
        key = f"{_scope(request)}{AUTH}/policyAssignments/{request.params['name']}".lower()
        assignment = engine.assignments.get(key)
        if assignment is None:
            raise ArmError(
                404,
                "PolicyAssignmentNotFound",
                f"The policy assignment '{request.params['name']}' is not found.",
            )
        return Response(200, {}, assignment.to_json())

    def delete_assignment(request: Request) -> Response:
        key = f"{_scope(request)}{AUTH}/policyAssignments/{request.params['name']}".lower()
        with engine.lock:
            assignment = engine.assignments.pop(key, None)
        if assignment is None:
            return Response(204, {}, None)
        engine.evaluate_all(emit=True, assignments=[assignment])
        return Response(200, {}, assignment.to_json())

    def list_for_subscription(request: Request) -> Response:
        sub = request.params["subscriptionId"].lower()
        prefix = f"/subscriptions/{sub}"
        groups = {g.lower() for g in groups_of(sub)}
        out = []
        for a in sorted(list(engine.assignments.values()), key=lambda a: a.key):
            scope = a.scope.lower()
            mg = scope.split("/providers/microsoft.management/managementgroups/", 1)
            if scope == prefix or scope.startswith(prefix + "/") or (len(mg) == 2 and mg[1] in groups):
                out.append(a.to_json())
        return Response(200, {}, {"value": out, "nextLink": None})

    assignment_path = "/{scope:path}" + AUTH + "/policyAssignments/{name}"
    for path in (assignment_path, MG + AUTH + "/policyAssignments/{name}"):  # the second beats MG definitions
        router.add("PUT", path, put_assignment, operation="PolicyAssignments_Create")
        router.add("GET", path, get_assignment, operation="PolicyAssignments_Get")
        router.add("DELETE", path, delete_assignment, operation="PolicyAssignments_Delete")
    router.add(
        "GET",
        "/subscriptions/{subscriptionId}" + AUTH + "/policyAssignments",
        list_for_subscription,
        operation="PolicyAssignments_List",
    )

    # ---- definitions ----------------------------------------------------------------------------------
    def get_builtin(request: Request) -> Response:
        kind = _kind(request)
        name = request.params["name"].lower()
        found = (engine.set_definitions if kind == "policysetdefinitions" else engine.definitions).get(name)
        if found is None:
            raise ArmError(
                404,
                "PolicyDefinitionNotFound",
                f"The policy definition '{request.params['name']}' could not be found.",
            )
        return Response(200, {}, definition_json(found))

    def custom_id(request: Request) -> str:
        base = (
            f"/subscriptions/{request.params['subscriptionId']}"
            if "subscriptionId" in request.params
            else f"/providers/Microsoft.Management/managementGroups/{request.params['managementGroupId']}"
        )
        kind = "policySetDefinitions" if _kind(request) == "policysetdefinitions" else "policyDefinitions"
        return f"{base}{AUTH}/{kind}/{request.params['name']}"

    def put_custom(request: Request) -> Response:
        did = custom_id(request)
        existed = did.lower() in engine.custom_definitions
        try:
            parsed = engine.put_custom_definition(did, request.json_object())
        except (ValueError, KeyError) as exc:
            raise ArmError(400, "InvalidPolicyRule", str(exc)) from exc
        return Response(200 if existed else 201, {}, definition_json(parsed))

    def get_custom(request: Request) -> Response:
        found = engine.custom_definitions.get(key_of(custom_id(request)))
        if found is None:
            raise ArmError(
                404,
                "PolicyDefinitionNotFound",
                f"The policy definition '{request.params['name']}' could not be found.",
            )
        return Response(200, {}, definition_json(found))

    router.add("GET", AUTH + "/{kind}/{name}", get_builtin, operation="PolicyDefinitions_GetBuiltIn")
    for prefix in ("/subscriptions/{subscriptionId}", MG):
        router.add(
            "PUT", prefix + AUTH + "/{kind}/{name}", put_custom, operation="PolicyDefinitions_CreateOrUpdate"
        )
        router.add("GET", prefix + AUTH + "/{kind}/{name}", get_custom, operation="PolicyDefinitions_Get")

    # ---- deployment safeguards ------------------------------------------------------------------------
    def cluster_of(request: Request) -> tuple[str, dict[str, Any]]:
        p = request.params
        if p["safeguardsName"].lower() != "default":
            raise bad_request(
                "InvalidResourceName", "The Deployment Safeguards resource must be named 'default'."
            )
        cid = (
            f"/subscriptions/{p['subscriptionId']}/resourceGroups/{p['resourceGroupName']}/providers/"
            f"Microsoft.ContainerService/managedClusters/{p['clusterName']}"
        )
        cluster = state.get("clusters", cid)
        if cluster is None:
            raise ArmError(404, "ParentResourceNotFound", f"Parent resource '{p['clusterName']}' not found.")
        return cid, cluster

    def put_safeguards(request: Request) -> Response:
        cid, cluster = cluster_of(request)
        if not _addon_enabled(cluster):
            raise bad_request(
                "AzurePolicyAddonNotEnabled",
                "Deployment Safeguards need the Azure Policy add-on: enable addonProfiles.azurepolicy first.",
            )
        key = cid.lower()
        previous = engine.safeguards.get(key)
        engine.safeguards[key] = safeguards_body(cid, request.json_object(), previous)
        return Response(200 if previous else 201, {}, engine.safeguards[key])

    def get_safeguards(request: Request) -> Response:
        cid, _ = cluster_of(request)
        body = engine.safeguards.get(cid.lower())
        if body is None:
            raise ArmError(404, "NotFound", "Deployment Safeguards are not enabled on this cluster.")
        return Response(200, {}, body)

    def delete_safeguards(request: Request) -> Response:
        cid, _ = cluster_of(request)
        return Response(200 if engine.safeguards.pop(cid.lower(), None) else 204, {}, None)

    router.add("PUT", SAFEGUARDS, put_safeguards, operation="DeploymentSafeguards_Create")
    router.add("GET", SAFEGUARDS, get_safeguards, operation="DeploymentSafeguards_Get")
    router.add("DELETE", SAFEGUARDS, delete_safeguards, operation="DeploymentSafeguards_Delete")
