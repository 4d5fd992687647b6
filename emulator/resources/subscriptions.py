"""Subscriptions, resource groups and resource-provider registration, as the estate declares them.

Provider registration follows what azure-mgmt-core's ARMAutoResourceProviderRegistrationPolicy does on a
409 MissingSubscriptionRegistration: POST ``.../providers/{ns}/register`` then poll GET ``.../providers/{ns}``
until ``registrationState == "Registered"``. An estate can make registration never complete, so the product's
guard against that endless poll can be tested.
"""

from __future__ import annotations

import logging
from typing import Any

from emulator.api_versions import ALLOWED
from emulator.errors import ArmError, resource_group_not_found
from emulator.model.bodies import resource_group_body as resource_group_body
from emulator.model.ids import fold
from emulator.resources.clusters import validate_tags
from emulator.resources.common import require_subscription, rg_id, state_of
from emulator.resources.paging import list_under, page
from emulator.routing import PluginContext, Request, Response, Router
from emulator.state import EmulatorState, key_of

logger = logging.getLogger(__name__)


def subscription_body(sub: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": f"/subscriptions/{sub['subscriptionId']}",
        "subscriptionId": sub["subscriptionId"],
        "tenantId": sub["tenantId"],
        "displayName": sub["displayName"],
        "state": sub["state"],
        "subscriptionPolicies": {
            "locationPlacementId": "Public_2014-09-01",
            "quotaId": "PayAsYouGo_2014-09-01",
            "spendingLimit": "Off",
        },
        "authorizationSource": "RoleBased",
    }


_LOCATIONS = ["East US", "West Europe", "West US 2", "North Europe", "Southeast Asia", "Australia East"]
PROVIDER_METADATA: dict[str, dict[str, Any]] = {
    "microsoft.kubernetesconfiguration": {
        # recorded: GET /subscriptions/{id}/providers/Microsoft.KubernetesConfiguration (k8s-extension)
        "authorizations": [
            {
                "applicationId": "c699bf69-fb1d-4eaf-999b-99e6b2ae4d85",
                "roleDefinitionId": "90155430-a360-410f-af5d-89dc284d85c6",
            }
        ],
        "resourceTypes": [
            ("extensions", "SystemAssignedResourceIdentity, SupportsExtension", "2022-07-01"),
            ("operations", "None", None),
        ],
    },
    "microsoft.containerservice": {
        "resourceTypes": [("managedClusters", "SupportsTags, SupportsLocation", None)],
    },
    "microsoft.storage": {"resourceTypes": [("storageAccounts", "SupportsTags, SupportsLocation", None)]},
    "microsoft.authorization": {"resourceTypes": [("roleAssignments", "SupportsExtension", None)]},
    "microsoft.policyinsights": {"resourceTypes": [("remediations", "SupportsExtension", None)]},
    "microsoft.resourcegraph": {"resourceTypes": [("resources", "None", None)]},
}
"""Provider metadata: the Kubernetes Configuration entry is the recorded one (authorizations, resource types,
capabilities, default api-version); the others list the types the emulator models (capabilities: our
assumption). apiVersions come from emulator.api_versions, so the metadata and the api-version check agree."""


def provider_body(subscription_id: str, reg: dict[str, Any]) -> dict[str, Any]:
    meta = PROVIDER_METADATA.get(fold(reg["namespace"]), {})
    versions = sorted(ALLOWED.get(fold(reg["namespace"]), ()), reverse=True)
    types = []
    for name, capabilities, default in meta.get("resourceTypes", []):
        item: dict[str, Any] = {
            "resourceType": name,
            "locations": [] if name == "operations" else list(_LOCATIONS),
            "apiVersions": versions,
        }
        if default is not None:
            item["defaultApiVersion"] = default
        item["capabilities"] = capabilities
        types.append(item)
    body: dict[str, Any] = {
        "id": f"/subscriptions/{subscription_id}/providers/{reg['namespace']}",
        "namespace": reg["namespace"],
    }
    if "authorizations" in meta:
        body["authorizations"] = [dict(a) for a in meta["authorizations"]]
    body["resourceTypes"] = types
    body["registrationState"] = reg["registrationState"]
    body["registrationPolicy"] = "RegistrationRequired"
    return body


def register(router: Router, ctx: PluginContext) -> None:
    router.add("GET", "/subscriptions", list_subscriptions, operation="Subscriptions_List")
    router.add("GET", "/subscriptions/{subscriptionId}", get_subscription, operation="Subscriptions_Get")
    router.add(
        "GET", "/subscriptions/{subscriptionId}/resourcegroups", list_groups, operation="ResourceGroups_List"
    )
    rg = "/subscriptions/{subscriptionId}/resourcegroups/{resourceGroupName}"
    router.add("GET", rg, get_group, operation="ResourceGroups_Get")
    router.add("HEAD", rg, head_group, operation="ResourceGroups_CheckExistence")
    router.add("PUT", rg, put_group, operation="ResourceGroups_CreateOrUpdate")
    providers = "/subscriptions/{subscriptionId}/providers"
    router.add("GET", providers, list_providers, operation="Providers_List")
    router.add("GET", providers + "/{namespace}", get_provider, operation="Providers_Get")
    router.add("POST", providers + "/{namespace}/register", register_provider, operation="Providers_Register")
    router.add(
        "POST", providers + "/{namespace}/unregister", unregister_provider, operation="Providers_Unregister"
    )


def list_subscriptions(request: Request) -> Response:
    state = state_of(request)
    with state.lock:
        subs = [subscription_body(s) for s in state.subscriptions.values()]
    return Response(200, {}, page(request, subs))


def get_subscription(request: Request) -> Response:
    sub = require_subscription(state_of(request), request.params["subscriptionId"])
    return Response(200, {}, subscription_body(sub))


def list_groups(request: Request) -> Response:
    state = state_of(request)
    sub = request.params["subscriptionId"]
    require_subscription(state, sub)
    prefix = key_of(f"/subscriptions/{sub}/resourceGroups/")
    return list_under(request, state.resource_groups, prefix)


def _group(request: Request) -> dict[str, Any]:
    state = state_of(request)
    sub, name = request.params["subscriptionId"], request.params["resourceGroupName"]
    require_subscription(state, sub)
    body = state.get("resource_groups", rg_id(sub, name))
    if body is None:
        raise resource_group_not_found(name)
    return body


def get_group(request: Request) -> Response:
    return Response(200, {}, _group(request))


def head_group(request: Request) -> Response:
    try:
        _group(request)
    except ArmError:
        return Response(404, {}, None)
    return Response(204, {}, None)


def put_group(request: Request) -> Response:
    state = state_of(request)
    sub, name = request.params["subscriptionId"], request.params["resourceGroupName"]
    require_subscription(state, sub)
    body = request.json_object()
    location = body.get("location")
    if not isinstance(location, str) or not location:
        raise ArmError(400, "LocationRequired", "The location property is required for this definition.")
    existing = state.get("resource_groups", rg_id(sub, name))
    stored = resource_group_body(
        sub, existing["name"] if existing else name, location, validate_tags(body.get("tags"))
    )
    state.put("resource_groups", stored["id"], stored, principal=request.principal)
    return Response(200 if existing else 201, {}, stored)


def list_providers(request: Request) -> Response:
    state = state_of(request)
    sub = request.params["subscriptionId"]
    subscription = require_subscription(state, sub)
    with state.lock:
        items = [provider_body(sub, reg) for reg in subscription["providers"].values()]
    return Response(200, {}, page(request, items))


def _registration(state: EmulatorState, subscription_id: str, namespace: str) -> dict[str, Any]:
    subscription = require_subscription(state, subscription_id)
    with state.lock:
        reg = subscription["providers"].get(fold(namespace))
        if reg is None:
            raise ArmError(
                404,
                "InvalidResourceNamespace",
                f"The resource namespace '{namespace}' is invalid.",
            )
        return reg


def get_provider(request: Request) -> Response:
    state = state_of(request)
    sub = request.params["subscriptionId"]
    reg = _registration(state, sub, request.params["namespace"])
    return Response(200, {}, provider_body(sub, reg))


def register_provider(request: Request) -> Response:
    state = state_of(request)
    assert request.config is not None
    sub = request.params["subscriptionId"]
    reg = _registration(state, sub, request.params["namespace"])
    rid = f"/subscriptions/{sub}/providers/{reg['namespace']}"
    with state.lock:
        if reg["registrationState"] != "Registered":
            reg["registrationState"] = "Registering"
            if reg["completes"]:
                token = state.new_lifecycle_token(rid)

                def done() -> list[tuple[str, str, Any, Any]]:
                    reg["registrationState"] = "Registered"
                    return [("provisioned", rid, provider_body(sub, reg), request.principal)]

                state.schedule(state.now() + request.config.provider_register_s, rid, token, done)
        body = provider_body(sub, reg)
    state.notify("action", rid, body, request.principal)
    return Response(200, {}, body)


def unregister_provider(request: Request) -> Response:
    state = state_of(request)
    sub = request.params["subscriptionId"]
    reg = _registration(state, sub, request.params["namespace"])
    with state.lock:
        reg["registrationState"] = "NotRegistered"
        state.new_lifecycle_token(f"/subscriptions/{sub}/providers/{reg['namespace']}")
        body = provider_body(sub, reg)
    return Response(200, {}, body)
