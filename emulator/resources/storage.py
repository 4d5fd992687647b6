"""Storage accounts (GET, list) and blob containers through ARM (``blobServices/default/containers``).

Container names follow Azure's documented rules: 3–63 characters; lowercase letters, digits and hyphens;
starting and ending with a letter or digit; no consecutive hyphens. A violation is 400
``ContainerOperationFailure``
— the code the storage RP returns for an invalid name (documented error text: "The specified resource name
contains invalid characters." / "...length is not within the permissible limits").
"""

from __future__ import annotations

import logging
import re
from typing import Any

from emulator.clock import iso
from emulator.errors import ArmError, bad_request, invalid_body, not_found
from emulator.model.bodies import container_body as container_body
from emulator.model.ids import CONTAINER_TYPE as CONTAINER_TYPE
from emulator.resources.common import (
    require_registered,
    require_resource_group,
    require_subscription,
    state_of,
)
from emulator.resources.paging import list_under, page
from emulator.routing import PluginContext, Request, Response, Router
from emulator.state import key_of

logger = logging.getLogger(__name__)

ACCOUNT = (
    "/subscriptions/{subscriptionId}/resourceGroups/{resourceGroupName}/providers/Microsoft.Storage"
    "/storageAccounts/{accountName}"
)
CONTAINERS = ACCOUNT + "/blobServices/default/containers"
CONTAINER = CONTAINERS + "/{containerName}"
_CONTAINER_NAME = re.compile(r"^[a-z0-9](?!.*--)[a-z0-9-]{1,61}[a-z0-9]$")
_PUBLIC_ACCESS = ("None", "Container", "Blob")
_CREATE_ANSWER_OMITS = ("etag", "leaseStatus", "leaseState", "lastModifiedTime", "legalHold")
"""The container create answer lacks these; a GET has them (recorded, azure-cli storage cassette 2021)."""


def container_name_error(name: str) -> str | None:
    """Why ``name`` is not a valid blob container name, or None if it is (``$root``/``$web`` are allowed)."""
    if name in ("$root", "$web", "$logs"):
        return None
    if not 3 <= len(name) <= 63:
        return f"Container name '{name}' must be between 3 and 63 characters long."
    if not _CONTAINER_NAME.match(name):
        return (
            f"Container name '{name}' is invalid: use only lowercase letters, digits and single hyphens, "
            "starting and ending with a letter or digit."
        )
    return None


def register(router: Router, ctx: PluginContext) -> None:
    router.add("GET", ACCOUNT, get_account, operation="StorageAccounts_GetProperties")
    router.add(
        "GET",
        "/subscriptions/{subscriptionId}/resourceGroups/{resourceGroupName}/providers/Microsoft.Storage/storageAccounts",
        list_accounts_rg,
        operation="StorageAccounts_ListByResourceGroup",
    )
    router.add(
        "GET",
        "/subscriptions/{subscriptionId}/providers/Microsoft.Storage/storageAccounts",
        list_accounts_sub,
        operation="StorageAccounts_List",
    )
    router.add("GET", CONTAINER, get_container, operation="BlobContainers_Get")
    router.add("PUT", CONTAINER, put_container, operation="BlobContainers_Create")
    router.add("PATCH", CONTAINER, patch_container, operation="BlobContainers_Update")
    router.add("DELETE", CONTAINER, delete_container, operation="BlobContainers_Delete")
    router.add("GET", CONTAINERS, list_containers, operation="BlobContainers_List")


def _account(request: Request) -> dict[str, Any]:
    state = state_of(request)
    p = request.params
    require_resource_group(state, p["subscriptionId"], p["resourceGroupName"])
    rid = (
        f"/subscriptions/{p['subscriptionId']}/resourceGroups/{p['resourceGroupName']}/providers/"
        f"Microsoft.Storage/storageAccounts/{p['accountName']}"
    )
    body = state.get("storage_accounts", rid)
    if body is None:
        raise not_found("Microsoft.Storage/storageAccounts", p["accountName"], p["resourceGroupName"])
    return body


def get_account(request: Request) -> Response:
    return Response(200, {}, _account(request))


def list_accounts_rg(request: Request) -> Response:
    state = state_of(request)
    p = request.params
    require_resource_group(state, p["subscriptionId"], p["resourceGroupName"])
    prefix = key_of(f"/subscriptions/{p['subscriptionId']}/resourceGroups/{p['resourceGroupName']}/")
    return list_under(request, state.storage_accounts, prefix)


def list_accounts_sub(request: Request) -> Response:
    state = state_of(request)
    sub = request.params["subscriptionId"]
    require_subscription(state, sub)
    prefix = key_of(f"/subscriptions/{sub}") + "/"
    return list_under(request, state.storage_accounts, prefix)


def _container_id(account: dict[str, Any], name: str) -> str:
    return f"{account['id']}/blobServices/default/containers/{name}"


def get_container(request: Request) -> Response:
    account = _account(request)
    body = state_of(request).get("containers", _container_id(account, request.params["containerName"]))
    if body is None:
        raise ArmError(
            404,
            "ContainerNotFound",
            f"The specified container '{request.params['containerName']}' does not exist.",
        )
    return Response(200, {}, body)


def _validate_container_request(request: Request) -> dict[str, Any]:
    name = request.params["containerName"]
    problem = container_name_error(name)
    if problem:
        raise bad_request("ContainerOperationFailure", problem, target="containerName")
    body = request.json_object(required=False)
    props = body.get("properties", {})
    if not isinstance(props, dict):
        raise invalid_body("The 'properties' property must be a JSON object.")
    if props.get("publicAccess") is not None:
        # any casing is accepted and answered in the enum's casing (recorded: "blob" -> "Blob")
        canonical = {v.lower(): v for v in _PUBLIC_ACCESS}.get(str(props["publicAccess"]).lower())
        if canonical is None:
            raise bad_request("InvalidParameter", f"publicAccess must be one of {_PUBLIC_ACCESS}.")
        props = {**props, "publicAccess": canonical}
    if props.get("metadata") is not None and not isinstance(props["metadata"], dict):
        raise invalid_body("properties.metadata must be a JSON object.")
    return props


def put_container(request: Request) -> Response:
    state = state_of(request)
    require_registered(state, request.params["subscriptionId"], "Microsoft.Storage")
    account = _account(request)
    props = _validate_container_request(request)
    if props.get("publicAccess") not in (None, "None") and not account["properties"].get(
        "allowBlobPublicAccess"
    ):
        raise ArmError(
            409,
            "PublicAccessNotPermitted",
            "Public access is not permitted on this storage account.",
        )
    rid = _container_id(account, request.params["containerName"])
    with state.lock:
        existing = state.containers.get(key_of(rid))
        if existing is not None:
            # Assumption: a PUT on an existing container returns it unchanged (200); retries are idempotent.
            return Response(200, {}, existing)
        stored = container_body(rid, props, iso(state.now()))
        state.put("containers", rid, stored, principal=request.principal, notify=False)
    state.notify("write", rid, stored, request.principal)
    answer = {k: v for k, v in stored.items() if k not in _CREATE_ANSWER_OMITS}
    answer["properties"] = {k: v for k, v in stored["properties"].items() if k not in _CREATE_ANSWER_OMITS}
    return Response(201, {}, answer)


def patch_container(request: Request) -> Response:
    state = state_of(request)
    account = _account(request)
    props = _validate_container_request(request)
    rid = _container_id(account, request.params["containerName"])
    with state.lock:
        existing = state.containers.get(key_of(rid))
        if existing is None:
            raise ArmError(404, "ContainerNotFound", "The specified container does not exist.")
        merged = {**existing["properties"], **props, "lastModifiedTime": iso(state.now())}
        stored = {**existing, "properties": merged}
        state.put("containers", rid, stored, principal=request.principal, notify=False)
    state.notify("write", rid, stored, request.principal)
    return Response(200, {}, stored)


def delete_container(request: Request) -> Response:
    state = state_of(request)
    account = _account(request)
    rid = _container_id(account, request.params["containerName"])
    gone = state.remove("containers", rid, principal=request.principal)
    return Response(200 if gone else 204, {}, None)


def list_containers(request: Request) -> Response:
    state = state_of(request)
    account = _account(request)
    prefix = key_of(account["id"] + "/blobServices/default/containers") + "/"
    with state.lock:
        items = [
            {k: v for k, v in b.items()} for key, b in state.containers.items() if key.startswith(prefix)
        ]
    return Response(200, {}, page(request, items))
