"""Bicep and Terraform deploy the same thing: the same role definitions at the same kinds of scope under the
same conditions, the same event subscriptions and filters, the same app settings, alerts, audit assignments,
workbook queries and resource names. Both sides are parsed (pycep, checkov's HCL2 parser) and normalised
(tests/unit/infra/parity.py); each comparison is also shown to catch a one-sided change."""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

from tests.unit.infra import parity


def test_same_role_definitions_at_the_same_scopes(
    infra_templates: dict[Path, Any], terraform_files: dict[Path, Any]
) -> None:
    bicep = parity.bicep_grants(infra_templates)
    terraform = parity.tf_grants(terraform_files)
    assert bicep == terraform, (
        f"only Bicep: {sorted(bicep - terraform)}\nonly Terraform: {sorted(terraform - bicep)}"
    )
    roles = {role for role, _, _ in bicep}
    assert {
        "reader",
        "kubernetesExtensionContributor",
        "containerWriter",
        "storageBlobDataContributor",
    } <= roles
    assert len(bicep) >= 14, sorted(bicep)  # every grant was read on both sides


def test_role_parity_catches_a_grant_missing_on_one_side(
    infra_templates: dict[Path, Any], terraform_files: dict[Path, Any]
) -> None:
    trimmed = copy.deepcopy(terraform_files)
    for block in trimmed[Path("app.tf")]["resource"]:
        block.get("azurerm_role_assignment", {}).pop("telemetry", None)
    assert parity.bicep_grants(infra_templates) - parity.tf_grants(trimmed) == {
        ("monitoringMetricsPublisher", "application-insights", frozenset())
    }


def test_same_event_subscriptions_and_filters(
    infra_templates: dict[Path, Any], terraform_files: dict[Path, Any]
) -> None:
    bicep = parity.bicep_event_subscriptions(infra_templates)
    terraform = parity.tf_event_subscriptions(terraform_files)
    assert set(bicep) == {"on_cluster_write", "on_policy_state"}
    assert bicep == terraform


def test_filter_parity_catches_a_changed_filter(terraform_files: dict[Path, Any]) -> None:
    changed = copy.deepcopy(terraform_files)
    for block in changed[Path("events.tf")]["locals"]:
        if "cluster_writes_filter" in block:
            block["cluster_writes_filter"][0]["advancedFilters"][0]["values"].append(
                "Microsoft.ContainerService/managedClusters/agentPools/write"
            )
    assert parity.tf_event_subscriptions(changed) != parity.tf_event_subscriptions(terraform_files)


def test_same_app_settings(infra_templates: dict[Path, Any], terraform_files: dict[Path, Any]) -> None:
    bicep = parity.bicep_app_settings(infra_templates)
    terraform = parity.tf_app_settings(terraform_files)
    assert set(bicep) == set(terraform), set(bicep) ^ set(terraform)
    assert bicep == terraform  # literal values equal too (expressions compare as <expr>)
    assert bicep["AzureWebJobsStorage__credential"] == "managedidentity"


def _tf_locals(terraform_files: dict[Path, Any]) -> dict[str, Any]:
    return parity.tf_blocks(terraform_files, "locals")


def _normalise_query(text: str) -> str:
    text = text.replace("\\'", "'")
    for old, new in (
        ("${poisonFunctionName}", "<poison>"),
        ("${var.poison_function_name}", "<poison>"),
        ("${workQueueName}", "<queue>"),
        ("${local.work_queue_name}", "<queue>"),
    ):
        text = text.replace(old, new)
    return text


def test_same_alerts(infra_templates: dict[Path, Any], terraform_files: dict[Path, Any]) -> None:
    bicep_rules = {
        r["name"]: (r["severity"], _normalise_query(r["query"]))
        for r in infra_templates[Path("app/alerts.bicep")]["variables"]["rules"]["value"]
    }
    tf_rules = {
        name: (rule["severity"], _normalise_query(rule["query"]))
        for name, rule in parity._one(_tf_locals(terraform_files)["alert_rules"]).items()
    }
    assert bicep_rules == tf_rules


def test_same_audit_assignments(infra_templates: dict[Path, Any], terraform_files: dict[Path, Any]) -> None:
    def bicep_audits(file: str, variable: str) -> set[tuple[str, str]]:
        found = set()
        for audit in infra_templates[Path(file)]["variables"][variable]["value"]:
            definition = audit["definition"]
            if isinstance(definition, dict):  # policies.<key> (loaded from infra/policies.json)
                definition = definition["operator"]["operands"]["operand_2"]
            found.add((audit["name"], str(definition).removesuffix("Id")))
        return found

    expected = {
        ("aks-backup-p1-audit", "extensionInstalledAudit"),
        ("aks-backup-p2-audit", "backupEnabledAudit"),
    }
    assert bicep_audits("access/audit-policies.bicep", "assignments") == expected
    assert bicep_audits("access/audit-policies-rg.bicep", "assignments") == expected
    assert bicep_audits("access/management-group-access.bicep", "audits") == expected
    main = infra_templates[Path("main.bicep")]["modules"]
    for symbol in ("subscriptionAudits", "resourceGroupAudits"):
        params = main[symbol]["config"]["config"]["params"]
        assert (
            params["extensionInstalledAuditId"]["operator"]["operands"]["operand_2"]
            == "extensionInstalledAudit"
        )
        assert params["backupEnabledAuditId"]["operator"]["operands"]["operand_2"] == "backupEnabledAudit"
    tf = parity._one(_tf_locals(terraform_files)["audits"])
    assert {name: str(a["definition"]) for name, a in tf.items()} == {
        "aks-backup-p1-audit": "${local.policies.extensionInstalledAudit}",
        "aks-backup-p2-audit": "${local.policies.backupEnabledAudit}",
    }
    resources = parity.tf_blocks(terraform_files, "resource")
    for scope in ("subscription", "resource_group", "management_group"):
        body = resources[f"azurerm_{scope}_policy_assignment.audit"]
        assert "AuditIfNotExists" in str(parity._one(body["parameters"]))
        assert "identity" not in body  # audits need no identity


def _bicep_name(expr: str) -> str:
    return expr.replace("${prefix}", "<prefix>").replace("${token}", "<token>")


def _tf_name(expr: str) -> str:
    return expr.replace("${local.prefix}", "<prefix>").replace("${local.token}", "<token>")


def test_same_resource_names(infra_templates: dict[Path, Any], terraform_files: dict[Path, Any]) -> None:
    main = infra_templates[Path("main.bicep")]
    modules = main["modules"]

    def module_param(symbol: str, param: str) -> str:
        return _bicep_name(str(modules[symbol]["config"]["params"][param]))

    bicep = {
        "identity": module_param("identity", "name"),
        "storage": module_param("storage", "name"),
        "workspace": module_param("monitoring", "logAnalyticsName"),
        "insights": module_param("monitoring", "applicationInsightsName"),
        "outcome-topic": module_param("outcomeTopic", "name"),
        "site": module_param("functionApp", "name"),
        "plan": module_param("functionApp", "planName"),
        "group": _bicep_name(main["resources"]["appGroup"]["config"]["name"]),
    }
    resources = parity.tf_blocks(terraform_files, "resource")
    locals_ = _tf_locals(terraform_files)

    def tf(address: str) -> str:
        name = str(parity._one(resources[address]["name"]))
        match = re.fullmatch(r"\$\{local\.(\w+)\}", name)
        return _tf_name(str(parity._one(locals_[match.group(1)])) if match else name)

    terraform = {
        "identity": tf("azurerm_user_assigned_identity.app"),
        "storage": tf("azurerm_storage_account.host"),
        "workspace": tf("azurerm_log_analytics_workspace.app"),
        "insights": tf("azurerm_application_insights.app"),
        "outcome-topic": tf("azurerm_eventgrid_topic.outcomes"),
        "site": tf("azurerm_function_app_flex_consumption.app"),
        "plan": tf("azurerm_service_plan.app"),
        "group": tf("azurerm_resource_group.app"),
    }
    assert bicep == terraform
    # the derived names come from the same deployment file on both sides
    assert main["variables"]["token"]["value"] == {
        "operator": {
            "type": "property_accessor",
            "operands": {"operand_1": "deployment", "operand_2": "nameToken"},
        }
    }
    assert str(parity._one(locals_["token"])) == "${local.deployment.nameToken}"
    for variable, local in (
        ("workQueueName", "work_queue_name"),
        ("journalTableName", "journal_table_name"),
        ("deadLetterContainerName", "dead_letter_container_name"),
        ("resourcesTopicName", "resources_topic_name"),
        ("policyTopicName", "policy_topic_name"),
        ("eventsResourceGroupName", "events_resource_group_name"),
    ):
        assert _bicep_name(main["variables"][variable]["value"]) == _tf_name(str(parity._one(locals_[local])))


def test_same_workbook_queries(infra_templates: dict[Path, Any], terraform_files: dict[Path, Any]) -> None:
    workbook = infra_templates[Path("app/workbook.bicep")]
    queries = workbook["variables"]["queries"]["value"]
    bicep_files = {key.strip("'") for key in queries}
    resources = parity.tf_blocks(terraform_files, "resource")
    data_json = str(parity._one(resources["azurerm_application_insights_workbook.remediator"]["data_json"]))
    assert 'file("${path.module}/../workbook/${item.query}")' in data_json.replace("'", '"')
    assert "local.workbook.items" in data_json
    layout = {
        item["query"]
        for item in __import__("json").loads(
            (Path(__file__).resolve().parents[3] / "infra" / "workbook" / "items.json").read_text()
        )["items"]
    }
    assert bicep_files == layout  # Bicep loads every query the layout names (Terraform loops over the layout)


def test_the_per_resource_group_variant_is_the_same_on_both_sides(
    infra_templates: dict[Path, Any], terraform_files: dict[Path, Any]
) -> None:
    """docs/deploy.md "Narrower control-plane roles": with deployment.controlPlaneResourceGroups, the listed
    subscriptions keep Reader only and the mode's write role goes to each listed resource group."""
    bicep = parity.bicep_grants(infra_templates)
    terraform = parity.tf_grants(terraform_files)
    for role, mode in (
        ("kubernetesExtensionContributor", "install"),
        ("resourcePolicyContributor", "policy-task"),
    ):
        variant = (role, "control-plane-resource-group", frozenset({f"mode=={mode}"}))
        subscription = (role, "managed-subscription", frozenset({f"mode=={mode}", "!perResourceGroupWrites"}))
        assert variant in bicep and variant in terraform
        assert subscription in bicep and subscription in terraform
    assert ("reader", "managed-subscription", frozenset()) in bicep & terraform  # Reader stays everywhere
    assert not any(role == "reader" and kind == "control-plane-resource-group" for role, kind, _ in terraform)


def test_variant_parity_catches_a_one_sided_change(terraform_files: dict[Path, Any]) -> None:
    changed = copy.deepcopy(terraform_files)
    for block in changed[Path("access.tf")]["locals"]:
        if "scope_role_pairs" in block:
            block["scope_role_pairs"] = [
                str(block["scope_role_pairs"][0]).replace(parity.TF_PER_GROUP_FILTER, "")
            ]
    before, after = parity.tf_grants(terraform_files), parity.tf_grants(changed)
    assert before != after
    assert ("kubernetesExtensionContributor", "managed-subscription", frozenset({"mode==install"})) in after


def test_same_app_service_authentication(
    infra_templates: dict[Path, Any], terraform_files: dict[Path, Any]
) -> None:
    bicep = parity.bicep_auth_settings(infra_templates)
    terraform = parity.tf_auth_settings(terraform_files)
    assert bicep == terraform
    assert bicep["when"] == "entraAuth" and bicep["requireAuthentication"] is True
    assert bicep["unauthenticated"] == "Return401" and bicep["tokenStore"] is False
    # Event Grid's deliveries carry no Entra token: the webhook path must stay reachable with the system key
    assert "/runtime/webhooks/EventGrid" in bicep["excludedPaths"]
    assert bicep["audiences"] == ["<client-id>", "api://<client-id>"]
    settings = parity.bicep_app_settings(infra_templates)
    assert settings["REMEDIATOR_HTTP_AUTH"] == parity.tf_app_settings(terraform_files)["REMEDIATOR_HTTP_AUTH"]


def test_authentication_parity_catches_a_one_sided_change(terraform_files: dict[Path, Any]) -> None:
    changed = copy.deepcopy(terraform_files)
    for block in changed[Path("app.tf")]["resource"]:
        app = block.get("azurerm_function_app_flex_consumption", {}).get("app")
        if app is None:
            continue
        for dynamic in app["dynamic"]:
            if "auth_settings_v2" in dynamic:
                dynamic["auth_settings_v2"]["content"][0]["excluded_paths"] = [["/api/health"]]
    assert parity.tf_auth_settings(changed) != parity.tf_auth_settings(terraform_files)
