"""Read-only access to any resource an estate declares under ``resources`` (e.g. connectedClusters).

AKS trusted-access role bindings live in emulator/dataprotection/trusted_access.py (held to the recording).
"""

from __future__ import annotations

import logging

from emulator.errors import not_found
from emulator.resources.common import require_resource_group, state_of
from emulator.routing import PluginContext, Request, Response, Router

logger = logging.getLogger(__name__)

ANY_RESOURCE = (
    "/subscriptions/{subscriptionId}/resourceGroups/{resourceGroupName}/providers/{namespace}/{type}/{name}"
)


def register(router: Router, ctx: PluginContext) -> None:
    router.add("GET", ANY_RESOURCE, get_any, operation="Resources_Get")


def get_any(request: Request) -> Response:
    state = state_of(request)
    p = request.params
    require_resource_group(state, p["subscriptionId"], p["resourceGroupName"])
    body = state.get("resources", request.path)
    if body is None:
        raise not_found(f"{p['namespace']}/{p['type']}", p["name"], p["resourceGroupName"])
    return Response(200, {}, body)
