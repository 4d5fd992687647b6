"""Management locks (``{scope}/providers/Microsoft.Authorization/locks/{name}``): PUT, GET, DELETE, list.

Modelled for one reason: Azure Backup refuses a snapshot resource group with a delete or read-only lock
(``UserErrorSnapshotResourceGroupHasLocks``, troubleshoot doc), and the product must be able to see the lock
it names as a human blocker. Body shape of ManagementLocks (id, name, type, properties{level, notes,
owners}); levels CanNotDelete and ReadOnly. Locks do not block other emulated writes (not modelled).
"""

from __future__ import annotations

import logging
from typing import Any

from emulator.dataprotection.model import LOCK_TYPE
from emulator.errors import ArmError, bad_request, invalid_body
from emulator.resources.common import require_resource_group, require_subscription, state_of
from emulator.routing import Request, Response, Router
from emulator.state import key_of

logger = logging.getLogger(__name__)

LOCKS = "{scope:path}/providers/Microsoft.Authorization/locks"
LOCK = LOCKS + "/{lockName}"
LEVELS = ("CanNotDelete", "ReadOnly")


def lock_body(scope: str, name: str, level: str, notes: str | None = None) -> dict[str, Any]:
    return {
        "id": f"{scope.rstrip('/')}/providers/Microsoft.Authorization/locks/{name}",
        "name": name,
        "type": LOCK_TYPE,
        "properties": {"level": level, "notes": notes, "owners": None},
    }


def _scope(request: Request) -> str:
    scope = "/" + request.params["scope"].strip("/")
    parts = scope.strip("/").split("/")
    state = state_of(request)
    if len(parts) < 2 or parts[0].lower() != "subscriptions":
        raise bad_request("InvalidScope", f"The scope '{scope}' is not valid for a management lock.")
    if len(parts) >= 4 and parts[2].lower() == "resourcegroups":
        require_resource_group(state, parts[1], parts[3])
    else:
        require_subscription(state, parts[1])
    return scope


def register(router: Router) -> None:
    def put_lock(request: Request) -> Response:
        state = state_of(request)
        scope = _scope(request)
        body = request.json_object()
        props = body.get("properties")
        if not isinstance(props, dict):
            raise invalid_body("The request must contain a 'properties' object.")
        level = props.get("level")
        if level not in LEVELS:
            raise bad_request("InvalidLockLevel", f"properties.level must be one of {LEVELS}.")
        stored = lock_body(scope, request.params["lockName"], str(level), props.get("notes"))
        existed = state.get("resources", stored["id"]) is not None
        state.put("resources", stored["id"], stored, principal=request.principal)
        return Response(200 if existed else 201, {}, stored)

    def get_lock(request: Request) -> Response:
        state = state_of(request)
        rid = f"{_scope(request)}/providers/Microsoft.Authorization/locks/{request.params['lockName']}"
        body = state.get("resources", rid)
        if body is None:
            raise ArmError(
                404, "LockNotFound", f"The lock '{request.params['lockName']}' could not be found."
            )
        return Response(200, {}, body)

    def delete_lock(request: Request) -> Response:
        state = state_of(request)
        rid = f"{_scope(request)}/providers/Microsoft.Authorization/locks/{request.params['lockName']}"
        gone = state.remove("resources", rid, principal=request.principal)
        return Response(200 if gone else 204, {}, None)

    def list_locks(request: Request) -> Response:
        """At the scope and above (what applies to it), like ``ManagementLocks_ListAtResourceGroupLevel``."""
        state = state_of(request)
        scope = key_of(_scope(request))
        with state.lock:
            items = [
                b
                for b in state.resources.values()
                if str(b.get("type", "")).lower() == LOCK_TYPE.lower()
                and (
                    scope
                    == (
                        owner := key_of(str(b["id"])).rsplit("/providers/microsoft.authorization/locks/", 1)[
                            0
                        ]
                    )
                    or scope.startswith(owner + "/")
                )
            ]
        return Response(200, {}, {"value": items})

    router.add("PUT", LOCK, put_lock, operation="ManagementLocks_CreateOrUpdateByScope")
    router.add("GET", LOCK, get_lock, operation="ManagementLocks_GetByScope")
    router.add("DELETE", LOCK, delete_lock, operation="ManagementLocks_DeleteByScope")
    router.add("GET", LOCKS, list_locks, operation="ManagementLocks_ListByScope")
