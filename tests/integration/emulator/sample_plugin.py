"""A route module used by test_server.py to prove the plug-in hook: ``register(router, ctx)``."""

from __future__ import annotations

from typing import Any

from emulator.routing import PluginContext, Request, Response, Router

SEEN: list[tuple[str, str, str | None]] = []


def register(router: Router, ctx: PluginContext) -> None:
    def hello(request: Request) -> Response:
        return Response(200, {}, {"scope": request.params["scope"], "principal": request.principal})

    router.add("GET", "{scope:path}/providers/Contoso.Sample/hello", hello, operation="Sample_Hello")

    def on_write(
        operation: str, resource_id: str, resource: dict[str, Any] | None, principal: str | None
    ) -> None:
        SEEN.append((operation, resource_id, principal))

    ctx.state.subscribe(on_write)
    ctx.state.on_load(lambda state, estate: state.plugin_state.__setitem__("sample", estate.get("sample")))
