"""HTTP surface of Resource Graph: `POST /providers/Microsoft.ResourceGraph/resources` and its admin knobs.

Admin: `GET|PATCH /_emulator/graph` (quota {enabled, limit, windowSeconds, retryAfterHeader},
extensionPropertyCasing, queriesRun) and `POST /_emulator/graph/reset` (quota windows and page cache).
"""

from __future__ import annotations

import logging
from typing import Any

from emulator.errors import ArmError
from emulator.graph.service import GraphRequestError, GraphService, QuotaSettings
from emulator.routing import PluginContext, Request, Response, Router

logger = logging.getLogger(__name__)

EXTRAS_KEY = "graph"


def graph_for(ctx: PluginContext) -> GraphService:
    """The one GraphService of this emulator (created on first use, shared through ctx.extras)."""
    service = ctx.extras.get(EXTRAS_KEY)
    if service is None:
        from emulator.policy.routes import engine_for

        engine = engine_for(ctx)

        def records() -> list[dict[str, Any]]:
            with engine.lock:
                return list(engine.records.values())

        def management_groups() -> Any:
            return ctx.state.estate.get("managementGroups") or {}  # forms: emulator/graph/hierarchy.py

        service = GraphService(
            ctx.state,
            policy_records=records,
            policy_objects=engine.policy_rows,
            management_groups=management_groups,
        )
        ctx.extras[EXTRAS_KEY] = service
    assert isinstance(service, GraphService)
    return service


def register(router: Router, ctx: PluginContext) -> None:
    service = graph_for(ctx)

    def on_load(_state: Any, _estate: Any) -> None:
        service.reset()
        service.quota = QuotaSettings()  # knobs go back to defaults with every estate (re)load, like /reset
        service.extension_casing = "pascal"

    ctx.state.on_load(on_load)

    def resources(request: Request) -> Response:
        principal = request.principal or "anonymous"
        try:
            quota_headers = service.charge(principal)
            body = request.json_object()
            result = service.query(body, api_version=request.api_version)
        except GraphRequestError as exc:
            headers = dict(exc.headers)
            if exc.status != 429:
                headers.update(_quota_headers_after_charge(service, principal))
            raise ArmError(exc.status, exc.code, exc.message, headers=headers, details=exc.details) from exc
        return Response(200, quota_headers, result)

    router.add(
        "POST",
        "/providers/Microsoft.ResourceGraph/resources",
        resources,
        operation="ResourceGraph_Resources",
    )

    def admin_get(_request: Request) -> Response:
        return Response(200, {}, _admin_view(service))

    def admin_patch(request: Request) -> Response:
        data = request.json_object()
        try:
            for key, value in data.items():
                if key == "quota":
                    service.quota.update(value)
                elif key == "extensionPropertyCasing":
                    service.set_casing(str(value))
                else:
                    raise ValueError(f"unknown graph setting '{key}'")
        except (ValueError, TypeError) as exc:
            raise ArmError(400, "InvalidAdminRequest", str(exc)) from exc
        return Response(200, {}, _admin_view(service))

    def admin_reset(_request: Request) -> Response:
        service.reset()
        return Response(200, {}, _admin_view(service))

    router.add("GET", "/_emulator/graph", admin_get, operation="Admin_GraphGet", admin=True)
    router.add("PATCH", "/_emulator/graph", admin_patch, operation="Admin_GraphPatch", admin=True)
    router.add("POST", "/_emulator/graph/reset", admin_reset, operation="Admin_GraphReset", admin=True)


def _quota_headers_after_charge(service: GraphService, principal: str) -> dict[str, str]:
    from emulator.graph.service import _hhmmss, quota_headers

    if not service.quota.enabled:
        return quota_headers(max(0, service.quota.limit - 1), _hhmmss(service.quota.window_s))
    window = service._windows.get(principal)
    if window is None:
        return {}
    resets = window.start + service.quota.window_s - service.state.now()
    return quota_headers(max(0, service.quota.limit - window.used), _hhmmss(resets))


def _admin_view(service: GraphService) -> dict[str, Any]:
    return {
        "quota": service.quota.to_json(),
        "extensionPropertyCasing": service.extension_casing,
        "queriesRun": service.queries_run,
        "cachedResults": len(service._cache),
    }
