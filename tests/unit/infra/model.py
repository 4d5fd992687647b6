"""Read facts out of pycep's JSON form of the Bicep templates: resources by type, app settings, role ids.

pycep renders a Bicep expression as nested ``{"function": ...}`` / ``{"operator": ...}`` objects and a literal
(or a bare identifier) as a plain value. These helpers only follow the shapes infra/ uses and fail loudly on
anything else, so a template change that escapes them breaks a test instead of passing silently.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Set
from dataclasses import dataclass
from pathlib import Path
from typing import Any

BINDING_EXPRESSION = re.compile(r"%([A-Za-z_][A-Za-z0-9_]*)%")
"""``%NAME%`` in a binding argument: the Functions host resolves it from the app settings."""


@dataclass(frozen=True)
class Resource:
    """One resource declaration: the file, the symbolic name and pycep's body."""

    file: Path
    symbol: str
    type: str
    body: Mapping[str, Any]

    @property
    def config(self) -> Mapping[str, Any]:
        """The resource body; pycep wraps ``[for ...]`` loops and ``if`` conditions around it."""
        config: Any = self.body["config"]
        while (
            isinstance(config, Mapping)
            and ("loop_type" in config or "condition" in config)
            and "config" in config
        ):
            config = config["config"]
        assert isinstance(config, Mapping), f"{self.file}:{self.symbol}: unexpected body shape"
        return config

    @property
    def properties(self) -> Mapping[str, Any]:
        props = self.config.get("properties", {})
        assert isinstance(props, Mapping), f"{self.file}:{self.symbol}: properties is not an object"
        return props


def resources(templates: Mapping[Path, Mapping[str, Any]], type_: str) -> list[Resource]:
    """Every non-``existing`` resource of one type, over all templates."""
    found = []
    for file, template in templates.items():
        for symbol, body in (template.get("resources") or {}).items():
            if body.get("type") == type_ and not body.get("existing"):
                found.append(Resource(file=file, symbol=symbol, type=type_, body=body))
    return found


def parameter_default(template: Mapping[str, Any], name: str) -> Any:
    """The default value of a template parameter."""
    return template["parameters"][name]["default"]


def interpolate(value: str, template: Mapping[str, Any]) -> str:
    """Replace ``${param}`` with the parameter's default where it has one (other placeholders stay)."""

    def substitute(match: re.Match[str]) -> str:
        name = match.group(1)
        param = (template.get("parameters") or {}).get(name)
        default = param.get("default") if param else None
        return default if isinstance(default, str) else match.group(0)

    return re.sub(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}", substitute, value)


# ---- app settings --------------------------------------------------------------------------------


def app_setting_names(templates: Mapping[Path, Mapping[str, Any]]) -> set[str]:
    """Names of every app setting a ``Microsoft.Web/sites`` resource sets (``siteConfig.appSettings``)."""
    sites = resources(templates, "Microsoft.Web/sites")
    assert sites, "no Microsoft.Web/sites resource in infra/"
    names: set[str] = set()
    for site in sites:
        settings = site.properties["siteConfig"]["appSettings"]
        assert isinstance(settings, list), f"{site.file}: appSettings must be a literal list to be checkable"
        for entry in settings:
            name = entry["name"]
            assert isinstance(name, str) and "${" not in name, (
                f"{site.file}: computed app setting name {name!r}"
            )
            names.add(name)
    return names


def binding_setting_names(function_app_source: str) -> set[str]:
    """App settings the Functions host resolves for ``%NAME%`` binding expressions in function_app.py."""
    return set(BINDING_EXPRESSION.findall(function_app_source))


@dataclass(frozen=True)
class SettingsDrift:
    """Differences between what the code reads and what the template sets."""

    missing_in_template: frozenset[str]
    """Read by the code (or required by the platform), needed in Azure, not set by the template."""
    unknown_in_template: frozenset[str]
    """Set by the template, read by neither the code nor the platform."""
    local_only_in_template: frozenset[str]
    """Declared local-only (e.g. a connection string with a key), yet set by the template."""

    @property
    def clean(self) -> bool:
        return not (self.missing_in_template or self.unknown_in_template or self.local_only_in_template)


def settings_drift(
    *,
    template_names: Set[str],
    env_names: Iterable[str],
    binding_names: Set[str],
    local_only: Set[str],
    platform: Set[str],
    platform_required: Set[str] = frozenset(),
) -> SettingsDrift:
    """Compare the template's app settings with what the product and the platform read.

    :param platform: settings the host or the Azure SDK read (allowed in the template).
    :param platform_required: the subset of ``platform`` the Azure deployment cannot run without
        (identity-based host storage, the user-assigned identity, Entra-authenticated telemetry); a missing
        one is drift.
    """
    unknown_platform = set(platform_required) - set(platform)
    assert not unknown_platform, f"required platform settings not in the platform list: {unknown_platform}"
    code_names = set(env_names) | set(binding_names)
    required = (code_names - set(local_only)) | set(platform_required)
    allowed = code_names | set(platform)
    return SettingsDrift(
        missing_in_template=frozenset(required - template_names),
        unknown_in_template=frozenset(template_names - allowed),
        local_only_in_template=frozenset(template_names & set(local_only)),
    )


# ---- role assignments --------------------------------------------------------------------------------

_ROLE_ID_FUNCTIONS = {"subscription_resource_id", "tenant_resource_id"}


@dataclass(frozen=True)
class RoleRef:
    """What a role assignment's roleDefinitionId points at."""

    built_in_key: str | None
    """Key in infra/roles.json (``roles.<key>``)."""
    parameter: str | None
    """A template parameter holding a role GUID (the custom role, passed in by the parent template)."""


def role_reference(assignment: Resource) -> RoleRef:
    """Resolve ``roleDefinitionId: subscriptionResourceId('...roleDefinitions', roles.<key> | <param>)``."""
    expr = assignment.properties["roleDefinitionId"]
    function = expr.get("function") if isinstance(expr, Mapping) else None
    assert function and function["type"] in _ROLE_ID_FUNCTIONS, (
        f"{assignment.file}:{assignment.symbol}: roleDefinitionId must be"
        f" subscriptionResourceId/tenantResourceId('Microsoft.Authorization/roleDefinitions', ...): {expr!r}"
    )
    params = function["parameters"]
    assert params["resource_type"] == "Microsoft.Authorization/roleDefinitions"
    name = params["resource_name_1"]
    if isinstance(name, Mapping):
        operator = name["operator"]
        assert operator["type"] == "property_accessor" and operator["operands"]["operand_1"] == "roles", (
            f"{assignment.file}:{assignment.symbol}: role must come from infra/roles.json, got {name!r}"
        )
        return RoleRef(built_in_key=operator["operands"]["operand_2"], parameter=None)
    assert isinstance(name, str), (
        f"{assignment.file}:{assignment.symbol}: unexpected role expression {name!r}"
    )
    return RoleRef(built_in_key=None, parameter=name)
