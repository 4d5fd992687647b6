"""Method + path-pattern routing with ARM's case rules, and the hook other emulator modules plug into.

ARM paths are case-insensitive in their literal segments (``resourcegroups`` == ``resourceGroups``,
provider namespaces too); names captured from the path keep the caller's casing.

Plug-in contract (how part 2 adds Policy Insights, Resource Graph, Event Grid without editing this package's
handlers): a module exposing ``register(router: Router, ctx: PluginContext) -> None``. The server loads
:data:`CORE_ROUTE_MODULES` and then every ``emulator.<subpackage>.routes`` module it finds, in name order
(see :func:`discover_route_modules`), plus any module names passed to ``Emulator.start(plugins=...)``.

Patterns: ``/subscriptions/{subscriptionId}/resourceGroups/{resourceGroupName}`` — ``{name}`` matches one
segment; ``{name:path}`` matches one or more segments (for "any scope" routes such as role assignments).
When several patterns match, the one with more literal segments wins; ties go to the first registered.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import logging
import pkgutil
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl

from emulator.errors import ArmError, invalid_body

if TYPE_CHECKING:
    from emulator.config import EmulatorConfig
    from emulator.state import EmulatorState

logger = logging.getLogger(__name__)

CORE_ROUTE_MODULES: tuple[str, ...] = (
    "emulator.resources.subscriptions",
    "emulator.resources.clusters",
    "emulator.resources.extensions",
    "emulator.resources.storage",
    "emulator.resources.authorization",
    "emulator.resources.generic",
    "emulator.admin",
)
"""Route modules that make up the ARM core (this issue). Plug-ins are discovered, not listed here."""


class CaseInsensitiveDict(dict[str, str]):
    """Query parameters / headers looked up without regard to case (``api-version`` == ``Api-Version``)."""

    def __init__(self, items: Iterable[tuple[str, str]] = ()) -> None:
        super().__init__()
        self._lower: dict[str, str] = {}
        for key, value in items:
            self[key] = value

    def __setitem__(self, key: str, value: str) -> None:
        old = self._lower.get(key.lower())
        if old is not None and old != key:
            super().__delitem__(old)
        self._lower[key.lower()] = key
        super().__setitem__(key, value)

    def get(self, key: str, default: Any = None) -> Any:  # type: ignore[override]
        real = self._lower.get(key.lower())
        return super().get(real, default) if real is not None else default

    def __getitem__(self, key: str) -> str:
        real = self._lower.get(key.lower())
        if real is None:
            raise KeyError(key)
        return super().__getitem__(real)

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and key.lower() in self._lower


@dataclass
class Request:
    """One parsed HTTP request as handlers see it."""

    method: str
    path: str
    """Percent-decoded path without the query string."""
    query: CaseInsensitiveDict
    headers: CaseInsensitiveDict
    body: bytes
    principal: str | None
    base_url: str
    """``https://127.0.0.1:PORT`` — for building Azure-AsyncOperation / Location URLs."""
    params: dict[str, str] = field(default_factory=dict)
    """Values captured by the route pattern, in the caller's casing."""
    state: EmulatorState | None = None
    config: EmulatorConfig | None = None
    route: Route | None = None
    runtime: Any = None
    """emulator.server.Runtime (fault rules for ``fail-provisioning``, call log, throttler)."""

    @property
    def api_version(self) -> str | None:
        return self.query.get("api-version")

    def json(self, *, required: bool = True) -> Any:
        """The body as JSON; malformed or (when required) missing JSON raises ARM's 400
        InvalidRequestContent."""
        if not self.body.strip():
            if required:
                raise invalid_body(
                    "The request content was invalid and could not be deserialized: empty body."
                )
            return None
        try:
            return json.loads(self.body)
        except (ValueError, UnicodeDecodeError) as exc:
            raise invalid_body(
                f"The request content was invalid and could not be deserialized: '{exc}'."
            ) from exc

    def json_object(self, *, required: bool = True) -> dict[str, Any]:
        """The body as a JSON object (ARM bodies are objects); anything else is 400 InvalidRequestContent."""
        data = self.json(required=required)
        if data is None:
            return {}
        if not isinstance(data, dict):
            raise invalid_body(
                f"The request content was invalid and could not be deserialized: expected a JSON object, "
                f"got {type(data).__name__}."
            )
        return data


@dataclass
class Response:
    """What a handler returns: status, headers, and a JSON-able body (or bytes, or None for no body)."""

    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: Any = None


Handler = Callable[[Request], "Response | tuple[int, dict[str, str], Any]"]

_PARAM = re.compile(r"\{(\w+)(?::(path))?\}")


@dataclass
class Route:
    """A compiled pattern bound to a handler."""

    method: str
    pattern: str
    handler: Handler
    operation: str
    """Operation name used in counters and the call log (swagger operationId style, e.g.
    ManagedClusters_Get)."""
    admin: bool
    """Admin routes skip latency, throttling, fault rules and the call log."""
    regex: re.Pattern[str]
    literal_segments: int

    def match(self, path: str) -> dict[str, str] | None:
        m = self.regex.fullmatch(path)
        return m.groupdict() if m else None


def compile_pattern(pattern: str) -> tuple[re.Pattern[str], int]:
    """Pattern → case-insensitive regex (captured names keep their case) and its count of literal segments."""
    out = []
    pos = 0
    for m in _PARAM.finditer(pattern):
        out.append(re.escape(pattern[pos : m.start()]))
        out.append(f"(?P<{m.group(1)}>.+?)" if m.group(2) else f"(?P<{m.group(1)}>[^/]+)")
        pos = m.end()
    out.append(re.escape(pattern[pos:]))
    literal = sum(1 for seg in pattern.strip("/").split("/") if seg and not _PARAM.search(seg))
    return re.compile("".join(out) + "/?", re.IGNORECASE | re.ASCII), literal


class Router:
    """Holds routes; ``router.add(method, pattern, handler)`` or ``@router.route(method, pattern)``."""

    def __init__(self) -> None:
        self.routes: list[Route] = []

    def add(
        self,
        method: str,
        pattern: str,
        handler: Handler,
        *,
        operation: str | None = None,
        admin: bool = False,
    ) -> Route:
        regex, literal = compile_pattern(pattern)
        route = Route(
            method=method.upper(),
            pattern=pattern,
            handler=handler,
            operation=operation or f"{method.upper()} {pattern}",
            admin=admin,
            regex=regex,
            literal_segments=literal,
        )
        self.routes.append(route)
        return route

    def route(
        self, method: str, pattern: str, *, operation: str | None = None, admin: bool = False
    ) -> Callable[[Handler], Handler]:
        def decorator(handler: Handler) -> Handler:
            self.add(method, pattern, handler, operation=operation, admin=admin)
            return handler

        return decorator

    def resolve(self, method: str, path: str) -> tuple[Route, dict[str, str]] | None:
        """Best route for method+path; raises ArmError 405 if only other methods match; None if nothing
        does."""
        best: tuple[Route, dict[str, str]] | None = None
        other_methods = False
        for route in self.routes:
            params = route.match(path)
            if params is None:
                continue
            if route.method != method.upper():
                other_methods = True
                continue
            if best is None or route.literal_segments > best[0].literal_segments:
                best = (route, params)
        if best is None and other_methods:
            raise ArmError(
                405,
                "MethodNotAllowed",
                f"The requested resource does not support http method '{method.upper()}'.",
            )
        return best


@dataclass
class PluginContext:
    """What a route module's ``register`` receives besides the router."""

    state: EmulatorState
    config: EmulatorConfig
    base_url: Callable[[], str]
    """The server's base URL (known once the port is bound)."""
    runtime: Any = None
    """emulator.server.Runtime: ``.faults`` (FaultRules), ``.throttler``, ``.calls`` (CallLog),
    ``.config``."""
    extras: dict[str, Any] = field(default_factory=dict)
    """Free-form slot for plug-ins to share objects (e.g. an event bus)."""


def discover_route_modules(extra: Iterable[str] = (), *, discover: bool = True) -> list[str]:
    """Core route modules, then ``emulator.<subpackage>.routes`` for every subpackage that has one, then
    extra."""
    package_dir = str(Path(__file__).resolve().parent)  # this module's own package: emulator/
    names = list(CORE_ROUTE_MODULES)
    for info in [] if not discover else sorted(pkgutil.iter_modules([package_dir]), key=lambda i: i.name):
        if not info.ispkg or info.name == "resources":
            continue
        candidate = f"emulator.{info.name}.routes"
        try:
            spec = importlib.util.find_spec(candidate)
        except ModuleNotFoundError:
            spec = None
        if spec is not None:
            names.append(candidate)
    for name in extra:
        if name not in names:
            names.append(name)
    return names


def load_routes(router: Router, ctx: PluginContext, module_names: Iterable[str]) -> None:
    for name in module_names:
        module = importlib.import_module(name)
        register = getattr(module, "register", None)
        if register is None:
            raise RuntimeError(f"route module {name} has no register(router, ctx)")
        register(router, ctx)
        logger.debug("loaded routes from %s", name)


def as_response(result: Response | tuple[int, Mapping[str, str], Any]) -> Response:
    if isinstance(result, Response):
        return result
    status, headers, body = result
    return Response(status, dict(headers), body)


def parse_query(raw: str) -> CaseInsensitiveDict:
    return CaseInsensitiveDict(parse_qsl(raw, keep_blank_values=True))
