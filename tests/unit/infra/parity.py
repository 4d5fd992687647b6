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


def bicep_grants(templates: Mapping[Path, Mapping[str, Any]]) -> set[Grant]:
    by_module = _module_conditions(templates)
    grants: set[Grant] = set()
    for assignment in resources(templates, ROLE_ASSIGNMENT):
        ref = role_reference(assignment)
        role = ref.built_in_key or CUSTOM_ROLES[str(ref.parameter)]
        scope_expr = assignment.config.get("scope")
        key = (assignment.file.as_posix(), scope_expr if isinstance(scope_expr, str) else None)
        assert key in BICEP_SCOPES, f"{assignment.file}:{assignment.symbol}: scope {scope_expr!r} not mapped"
        conditions = _bicep_condition(assignment.body["config"].get("condition")) | by_module.get(
            assignment.file, frozenset()
        )
        grants.add((role, BICEP_SCOPES[key], conditions))
    return grants


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
        if "local.role_ids[each.value.role]" in role_expr:
            # control-plane roles at every managed scope (local.scope_role_pairs)
            assert for_each == "${local.scope_role_pairs}", address
            managed = str(_one(locals_["managed_scopes"]))
            kinds = [kind for prefix, kind in TF_MANAGED_SCOPE_KINDS.items() if f'"{prefix}' in managed]
            assert len(kinds) == 3, managed
            for role, conditions in _tf_control_plane_roles(locals_):
                for kind in kinds:
                    grants.add((role, kind, conditions))
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
