"""Normalised facts of the Bicep and the Terraform deployment, so tests can compare them as sets.

Each side is read from its parsed form (pycep JSON for Bicep, checkov's HCL2 parser for Terraform) and reduced
to the same vocabulary: a role grant is (role key in infra/roles.json or ``containerWriter``, the kind of
scope it is granted at, the conditions it depends on); an event subscription is (target function, event types,
advanced filters, delivery settings); app settings are name -> literal value (or ``<expr>``). The tables below
map each side's scope expressions to a scope kind; an expression in neither table FAILS the reading, so a new
grant cannot slip past the comparison unread.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from tests.unit.infra.model import interpolate, resources, role_reference

ROLE_ASSIGNMENT = "Microsoft.Authorization/roleAssignments"
EVENT_SUBSCRIPTION = "Microsoft.EventGrid/systemTopics/eventSubscriptions"
EXPR = "<expr>"

Grant = tuple[str, str, frozenset[str]]

# ---- Bicep ---------------------------------------------------------------------------------------------

BICEP_SCOPES: dict[tuple[str, str | None], str] = {
    ("access/scope-roles.bicep", None): "managed-subscription",
    ("access/scope-roles-rg.bicep", None): "managed-resource-group",
    ("access/control-plane-rg.bicep", None): "control-plane-resource-group",
    ("access/management-group-access.bicep", None): "management-group",
    ("access/storage-access.bicep", "storage"): "backup-storage-account",
    ("app/app-access.bicep", "storage"): "host-storage-account",
    ("app/app-access.bicep", "appInsights"): "application-insights",
    ("app/app-access.bicep", "outcomeTopic"): "outcome-topic",
    ("app/deadletter-access.bicep", "container"): "dead-letter-container",
}


def _bicep_condition(condition: Any) -> frozenset[str]:
    if condition is None:
        return frozenset()
    if isinstance(condition, str):
        return frozenset({condition})
    operator = condition.get("operator") if isinstance(condition, Mapping) else None
    if operator and operator["type"] == "equals":
        operands = operator["operands"]
        return frozenset({f"{operands['operand_1']}=={operands['operand_2']}"})
    raise AssertionError(f"unreadable Bicep condition {condition!r}")


def _module_conditions(templates: Mapping[Path, Mapping[str, Any]]) -> dict[Path, frozenset[str]]:
    """Conditions under which main.bicep deploys each module file."""
    found: dict[Path, frozenset[str]] = {}
    for module in (templates[Path("main.bicep")].get("modules") or {}).values():
        found[Path(module["detail"]["path"])] = _bicep_condition(module["config"].get("condition"))
    return found


CUSTOM_ROLES: dict[str, str] = {
    "containerWriterRoleGuid": "containerWriter",
    "eventWiringRoleId": "eventWiring",
}
"""Bicep parameter holding a custom role's GUID -> the role's key (the two custom roles, created once by an
administrator: docs/deploy.md, "Custom role")."""


def _mode_overrides(templates: Mapping[Path, Mapping[str, Any]]) -> dict[Path, frozenset[str]]:
    """Conditions main.bicep adds to a module's mode-dependent grants by passing it another ``mode``.

    ``mode: perResourceGroupWrites ? 'audit' : mode`` means the module's ``mode == ...`` grants exist only
    when ``perResourceGroupWrites`` is false ('audit' assigns Reader alone): the atom
    ``!perResourceGroupWrites``.
    """
    found: dict[Path, frozenset[str]] = {}
    for module in (templates[Path("main.bicep")].get("modules") or {}).values():
        config = module["config"]
        while (
            isinstance(config, Mapping)
            and "config" in config
            and ("loop_type" in config or "condition" in config)
        ):
            config = config["config"]
        mode = (config.get("params") or {}).get("mode")
        if mode is None or mode == "mode":
            continue
        operator = mode.get("operator") if isinstance(mode, Mapping) else None
        assert operator and operator["type"] == "conditional", f"unreadable mode parameter {mode!r}"
        operands = operator["operands"]
        assert operands["true_value"] == "audit" and operands["false_value"] == "mode", operands
        found[Path(module["detail"]["path"])] = frozenset({f"!{operands['condition']}"})
    return found


def bicep_grants(templates: Mapping[Path, Mapping[str, Any]]) -> set[Grant]:
    by_module = _module_conditions(templates)
    mode_overrides = _mode_overrides(templates)
    grants: set[Grant] = set()
    for assignment in resources(templates, ROLE_ASSIGNMENT):
        ref = role_reference(assignment)
        role = ref.built_in_key or CUSTOM_ROLES[str(ref.parameter)]
        scope_expr = assignment.config.get("scope")
        key = (assignment.file.as_posix(), scope_expr if isinstance(scope_expr, str) else None)
        assert key in BICEP_SCOPES, f"{assignment.file}:{assignment.symbol}: scope {scope_expr!r} not mapped"
        own = _bicep_condition(assignment.body["config"].get("condition"))
        conditions = own | by_module.get(assignment.file, frozenset())
        if any(c.startswith("mode==") for c in own):
            conditions |= mode_overrides.get(assignment.file, frozenset())
        grants.add((role, BICEP_SCOPES[key], conditions))
    return grants


BICEP_AUTH_EXPRESSIONS = {
    "entraClientId": "<client-id>",
    "api://${entraClientId}": "api://<client-id>",
    "${environment().authentication.loginEndpoint}${tenant().tenantId}/v2.0": "<login>/<tenant>/v2.0",
}


def bicep_auth_settings(templates: Mapping[Path, Mapping[str, Any]]) -> dict[str, Any]:
    """App Service authentication (``authsettingsV2``) as comparable facts, with the condition it hangs on."""
    (auth,) = [
        r
        for r in resources(templates, "Microsoft.Web/sites/config")
        if r.config.get("name") == "authsettingsV2"
    ]
    props = auth.properties
    validation = props["globalValidation"]
    aad = props["identityProviders"]["azureActiveDirectory"]

    def norm(value: str) -> str:
        return BICEP_AUTH_EXPRESSIONS.get(value, value)

    return {
        "when": str(auth.body["config"].get("condition")),
        "enabled": props["platform"]["enabled"] and aad["enabled"],
        "requireAuthentication": validation["requireAuthentication"],
        "unauthenticated": validation["unauthenticatedClientAction"],
        "excludedPaths": sorted(validation["excludedPaths"]),
        "clientId": norm(aad["registration"]["clientId"]),
        "issuer": norm(aad["registration"]["openIdIssuer"]),
        "audiences": sorted(norm(a) for a in aad["validation"]["allowedAudiences"]),
        "tokenStore": props["login"]["tokenStore"]["enabled"],
        "requireHttps": props["httpSettings"]["requireHttps"],
    }


def bicep_app_settings(templates: Mapping[Path, Mapping[str, Any]]) -> dict[str, str]:
    (site,) = resources(templates, "Microsoft.Web/sites")
    known = set(templates[site.file].get("parameters") or {}) | set(
        templates[site.file].get("variables") or {}
    )
    settings: dict[str, str] = {}
    for entry in site.properties["siteConfig"]["appSettings"]:
        value = entry["value"]
        literal = isinstance(value, str) and value not in known and "${" not in value
        settings[entry["name"]] = value if literal else EXPR
    return settings


def bicep_event_subscriptions(templates: Mapping[Path, Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    for sub in resources(templates, EVENT_SUBSCRIPTION):
        props = sub.properties
        template = templates[sub.file]
        resource_id = interpolate(str(props["destination"]["properties"]["resourceId"]), template)
        function = resource_id.rsplit("/", 1)[-1]
        retry = props["retryPolicy"]
        found[function] = {
            "name": sub.config["name"],
            "filter": props["filter"],
            "eventDeliverySchema": props["eventDeliverySchema"],
            "maxEventsPerBatch": props["destination"]["properties"]["maxEventsPerBatch"],
            "preferredBatchSizeInKilobytes": props["destination"]["properties"][
                "preferredBatchSizeInKilobytes"
            ],
            "maxDeliveryAttempts": template["parameters"][retry["maxDeliveryAttempts"]]["default"],
            "eventTimeToLiveInMinutes": template["parameters"][retry["eventTimeToLiveInMinutes"]]["default"],
            "deadLetterIdentity": props["deadLetterWithResourceIdentity"]["identity"]["type"],
            "deadLetterEndpoint": props["deadLetterWithResourceIdentity"]["deadLetterDestination"][
                "endpointType"
            ],
        }
    return found


# ---- Terraform -------------------------------------------------------------------------------------------


def _one(value: Any) -> Any:
    """checkov's HCL2 parser wraps attribute values in one-element lists."""
    return value[0] if isinstance(value, list) and len(value) == 1 else value


def tf_blocks(parsed: Mapping[Path, Mapping[str, Any]], kind: str) -> dict[str, Any]:
    """All ``locals`` merged, or all resources as ``type.name`` -> body."""
    found: dict[str, Any] = {}
    for file, content in parsed.items():
        assert "error" not in content, f"{file}: {content['error']}"
        for block in content.get(kind) or ():
            if kind == "locals":
                found.update(block)
            else:
                for type_, named in block.items():
                    for name, body in named.items():
                        found[f"{type_}.{name}"] = body
    return found


TF_SCOPES: dict[str, str] = {
    "${azurerm_storage_account.host.id}": "host-storage-account",
    "${azurerm_application_insights.app.id}": "application-insights",
    "${azurerm_eventgrid_topic.outcomes.id}": "outcome-topic",
    "${azurerm_storage_account.host.id}/blobServices/default/containers/"
    "${azurerm_storage_container.dead_letter.name}": "dead-letter-container",
}
TF_FOR_EACH_SCOPES: dict[str, tuple[str, frozenset[str]]] = {
    "${local.install_storage_accounts}": ("backup-storage-account", frozenset({"mode==install"})),
    "${local.grant_storage_accounts}": (
        "backup-storage-account",
        frozenset({"mode==install", "grantStorageAccess"}),
    ),
    "${local.event_wiring_management_groups}": ("management-group", frozenset({"wireNewSubscriptions"})),
}
TF_MANAGED_SCOPE_KINDS = {
    "sub/": "managed-subscription",
    "rg/": "managed-resource-group",
    "mg/": "management-group",
}


TF_PER_GROUP_FILTER = (
    'if !local.per_resource_group_writes || !startswith(pair[0],"sub/") || pair[1] == "reader"'
)
"""The filter of ``local.scope_role_pairs`` that keeps write roles off listed subscriptions in the
per-resource-group variant (main.bicep: ``mode: perResourceGroupWrites ? 'audit' : mode``), as checkov's HCL2
parser renders it (no space after a comma, parentheses dropped: so the filter is written without any)."""
TF_CONDITION_NAMES = {"local.per_resource_group_writes": "perResourceGroupWrites"}


def _tf_control_plane_roles(locals_: Mapping[str, Any]) -> list[tuple[str, frozenset[str]]]:
    text = str(_one(locals_["control_plane_roles"]))
    roles: list[tuple[str, frozenset[str]]] = []
    for match in re.finditer(r"(?:local\.mode == \"([a-z-]+)\" \? )?\['([A-Za-z]+)'\]", text):
        roles.append(
            (match.group(2), frozenset({f"mode=={match.group(1)}"}) if match.group(1) else frozenset())
        )
    assert roles, f"control_plane_roles not readable: {text}"
    return roles


def tf_grants(parsed: Mapping[Path, Mapping[str, Any]]) -> set[Grant]:
    locals_ = tf_blocks(parsed, "locals")
    grants: set[Grant] = set()
    for address, body in tf_blocks(parsed, "resource").items():
        if not address.startswith("azurerm_role_assignment."):
            continue
        role_expr = str(_one(body["role_definition_id"]))
        scope_expr = str(_one(body["scope"]))
        for_each = str(_one(body.get("for_each", "")))
        if (
            "local.role_ids[each.value.role]" in role_expr
            and for_each == "${local.control_plane_group_pairs}"
        ):
            # the per-resource-group variant: the write roles at each control-plane resource group
            pairs = str(_one(locals_["control_plane_group_pairs"]))
            assert 'role if role != "reader"' in pairs, pairs
            for role, conditions in _tf_control_plane_roles(locals_):
                if role != "reader":
                    grants.add((role, "control-plane-resource-group", conditions))
            continue
        if "local.role_ids[each.value.role]" in role_expr:
            # control-plane roles at every managed scope (local.scope_role_pairs)
            assert for_each == "${local.scope_role_pairs}", address
            managed = str(_one(locals_["managed_scopes"]))
            kinds = [kind for prefix, kind in TF_MANAGED_SCOPE_KINDS.items() if f'"{prefix}' in managed]
            assert len(kinds) == 3, managed
            pairs = str(_one(locals_["scope_role_pairs"]))
            variant = TF_PER_GROUP_FILTER in pairs
            for role, conditions in _tf_control_plane_roles(locals_):
                for kind in kinds:
                    extra = frozenset()
                    if variant and kind == "managed-subscription" and role != "reader":
                        extra = frozenset({f"!{TF_CONDITION_NAMES['local.per_resource_group_writes']}"})
                    grants.add((role, kind, conditions | extra))
            continue
        match = re.search(r"local\.(?:roles|role_ids)\.([A-Za-z]+)", role_expr)
        custom = {"containerWriterRoleId": "containerWriter", "event_wiring_role_id": "eventWiring"}
        role = match.group(1) if match else next((k for e, k in custom.items() if e in role_expr), None)
        assert role, f"{address}: role not readable from {role_expr}"
        if for_each in TF_FOR_EACH_SCOPES:
            kind, conditions = TF_FOR_EACH_SCOPES[for_each]
        else:
            assert scope_expr in TF_SCOPES, f"{address}: scope {scope_expr!r} not mapped"
            kind, conditions = TF_SCOPES[scope_expr], frozenset()
        grants.add((role, kind, conditions))
    return grants


def tf_app_settings(parsed: Mapping[Path, Mapping[str, Any]]) -> dict[str, str]:
    resources_ = tf_blocks(parsed, "resource")
    app = resources_["azurerm_function_app_flex_consumption.app"]
    settings = {
        name: (value if isinstance(value, str) and "${" not in value else EXPR)
        for name, value in _one(app["app_settings"]).items()
    }
    site_config = _one(app["site_config"])
    # azurerm owns APPLICATIONINSIGHTS_CONNECTION_STRING through this argument (provider docs).
    if "application_insights_connection_string" in site_config:
        settings["APPLICATIONINSIGHTS_CONNECTION_STRING"] = EXPR
    return settings


def tf_event_subscriptions(parsed: Mapping[Path, Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    locals_ = tf_blocks(parsed, "locals")
    found: dict[str, dict[str, Any]] = {}
    for address, body in tf_blocks(parsed, "resource").items():
        if _one(body.get("type")) != "Microsoft.EventGrid/systemTopics/eventSubscriptions@2022-06-15":
            continue
        props = _one(body["body"])["properties"]
        destination = props["destination"]
        function = str(destination["properties"]["resourceId"]).rsplit("/", 1)[-1]
        filter_name = re.fullmatch(r"\$\{local\.(\w+)\}", props["filter"]).group(1)  # type: ignore[union-attr]
        retry = _one(locals_["retry_policy"])
        dead_letter = _one(locals_["dead_letter"])
        found[function] = {
            "name": _one(body["name"]),
            "filter": _one(locals_[filter_name]),
            "eventDeliverySchema": props["eventDeliverySchema"],
            "maxEventsPerBatch": destination["properties"]["maxEventsPerBatch"],
            "preferredBatchSizeInKilobytes": destination["properties"]["preferredBatchSizeInKilobytes"],
            "maxDeliveryAttempts": retry["maxDeliveryAttempts"],
            "eventTimeToLiveInMinutes": retry["eventTimeToLiveInMinutes"],
            "deadLetterIdentity": dead_letter["identity"]["type"],
            "deadLetterEndpoint": dead_letter["deadLetterDestination"]["endpointType"],
        }
        assert address in ("azapi_resource.cluster_writes", "azapi_resource.policy_states"), address
    return found


TF_AUTH_EXPRESSIONS = {
    "${auth_settings_v2.value}": "<client-id>",
    "api://${auth_settings_v2.value}": "api://<client-id>",
    "https://login.microsoftonline.com/${data.azurerm_client_config.current.tenant_id}/v2.0": (
        "<login>/<tenant>/v2.0"
    ),
}
TF_AUTH_CONDITIONS = {
    "${local.entra_client_id != \"\" ? ['${local.entra_client_id}'] : []}": "entraAuth",
}


def tf_auth_settings(parsed: Mapping[Path, Mapping[str, Any]]) -> dict[str, Any]:
    """The Flex app's ``auth_settings_v2`` (a dynamic block), as :func:`bicep_auth_settings` gives them."""
    app = tf_blocks(parsed, "resource")["azurerm_function_app_flex_consumption.app"]
    (dynamic,) = [d["auth_settings_v2"] for d in app.get("dynamic") or () if "auth_settings_v2" in d]
    content = _one(dynamic["content"])
    aad = _one(content["active_directory_v2"])
    login = _one(content["login"])

    def norm(value: Any) -> str:
        return TF_AUTH_EXPRESSIONS.get(str(value), str(value))

    for_each = str(_one(dynamic["for_each"]))
    assert for_each in TF_AUTH_CONDITIONS, for_each
    return {
        "when": TF_AUTH_CONDITIONS[for_each],
        "enabled": bool(_one(content["auth_enabled"])),
        "requireAuthentication": bool(_one(content["require_authentication"])),
        "unauthenticated": _one(content["unauthenticated_action"]),
        "excludedPaths": sorted(_one(content["excluded_paths"])),
        "clientId": norm(_one(aad["client_id"])),
        "issuer": norm(_one(aad["tenant_auth_endpoint"])),
        "audiences": sorted(norm(a) for a in _one(aad["allowed_audiences"])),
        "tokenStore": bool(_one(login["token_store_enabled"])),
        "requireHttps": bool(_one(content["require_https"])),
    }
