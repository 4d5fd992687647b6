"""Config validation: every rule from the issue, each failure naming the dotted field and the file."""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from remediator.cli.config_check import config_schema
from remediator.core.config import TAG_KEY_PATTERN, load_config, normalize_region, parse_config
from remediator.core.errors import UserInputError, UserInputErrors
from remediator.core.ids import parse_cluster_id

ROOT = Path(__file__).resolve().parents[2]
SUB = "3f2b8c1e-6d4a-4f7b-9c2e-8a1d5e7f0b24"
SUB2 = "9a7e4d21-0c3b-4e8f-a6d5-2b1c9f8e7d60"
SA = f"/subscriptions/{SUB}/resourceGroups/rg-backup/providers/Microsoft.Storage/storageAccounts/stbackup01"
ASSIGNMENT = f"/subscriptions/{SUB}/providers/Microsoft.Authorization/policyAssignments/aks-backup-dine"


def base() -> dict[str, Any]:
    return {
        "scope": {"subscriptions": [SUB]},
        "storage": {"East US": SA},
        "selection": {"include": [{"tag": "backup", "values": ["yes"]}], "exclude": [{"tag": "nobackup"}]},
    }


def test_minimal_config_defaults() -> None:
    config = parse_config({"scope": {"subscriptions": [SUB]}, "storage": {"eastus": SA}})
    assert config.selection.include is None
    assert config.selection.exclude == ()
    assert config.extension.name == "azure-aks-backup"
    assert config.extension.release_train == "stable"
    assert config.extension.auto_upgrade_minor_version is True
    assert config.extension.configuration_settings == {}
    assert config.remediation.mode == "install"
    assert config.remediation.grant_storage_access is True
    assert config.scope.regions is None


@pytest.mark.parametrize(
    ("spelling", "normalized"),
    [("East US", "eastus"), ("eastus", "eastus"), ("EAST US 2", "eastus2"), (" West  Europe ", "westeurope")],
)
def test_region_names_are_normalized(spelling: str, normalized: str) -> None:
    assert normalize_region(spelling) == normalized
    config = parse_config(
        {"scope": {"subscriptions": [SUB], "regions": [spelling]}, "storage": {spelling: SA}}
    )
    assert config.scope.regions == (normalized,)
    assert list(config.storage) == [normalized]
    assert (
        config.storage_for("East US" if normalized == "eastus" else normalized) == config.storage[normalized]
    )


def test_ids_are_parsed_and_compared_case_insensitively() -> None:
    data = base()
    data["scope"]["subscriptions"] = [SUB.upper()]
    data["storage"] = {"eastus": SA.lower()}
    config = parse_config(data)
    assert str(config.scope.subscriptions[0]) == f"/subscriptions/{SUB}"
    assert config.storage["eastus"] == parse_config(base()).storage["eastus"]


Mutation = Callable[[dict[str, Any]], None]


def _set(path: str, value: object) -> Mutation:
    def mutate(data: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        node: Any = data
        for part in parents:
            node = node[int(part)] if part.isdigit() else node.setdefault(part, {})
        if last.isdigit():
            node[int(last)] = value
        else:
            node[last] = value

    return mutate


@pytest.mark.parametrize(
    ("mutate", "field", "message"),
    [
        (_set("scope", {}), "scope", "empty: list at least one of managementGroups"),
        (_set("scope", {"excludeSubscriptions": [SUB]}), "scope", "never means 'everything'"),
        (_set("scope.subscriptions", ["prod"]), "scope.subscriptions[0]", "is not a subscription id"),
        (_set("scope.resourceGroups", ["rg-aks"]), "scope.resourceGroups[0]", "must start with '/'"),
        (_set("scope.managementGroups", ["a/b"]), "scope.managementGroups[0]", "management group"),
        (_set("scope.regions", []), "scope.regions", "omit it to allow every region"),
        (_set("scope.regions", ["East-US"]), "scope.regions[0]", "is not an Azure region name"),
        (_set("scope.subscription", [SUB]), "scope.subscription", "unknown field"),
        (_set("storage", {}), "storage", "empty: map at least one region"),
        (_set("storage", {"East US": SA, "eastus": SA}), "storage", "are the same region"),
        (_set("storage", {"eastus": "/subscriptions/x"}), "storage.eastus", "is not a GUID"),
        (_set("storage", {"eastus": f"/subscriptions/{SUB}"}), "storage.eastus", "storageAccounts"),
        (_set("storage", {"East US!": SA}), "storage['East US!'] (key)", "not an Azure region name"),
        (_set("selection.include.0.values", []), "selection.include[0].values", "empty list"),
        (_set("selection.include", []), "selection.include", "omit it to include every"),
        (_set("selection.include.0.values", [True]), "selection.include[0].values[0]", "quote it in YAML"),
        (_set("selection.include.0.tag", ""), "selection.include[0].tag", "must not be empty"),
        (_set("selection.include.0.tag", "k" * 513), "selection.include[0].tag", "at most 512"),
        (_set("selection.include.0.values", ["v" * 257]), "selection.include[0].values[0]", "at most 256"),
        (_set("selection.exclude.0.tag", "cost?center"), "selection.exclude[0].tag", "contains ?"),
        (_set("selection.exclude.0.tag", "a<b>"), "selection.exclude[0].tag", "contains < >"),
        (_set("selection.exclude.0.tag", "50%"), "selection.exclude[0].tag", "contains %"),
        (_set("selection.exclude.0.tag", "a&b"), "selection.exclude[0].tag", "contains &"),
        (_set("selection.exclude.0.tag", "a\\b"), "selection.exclude[0].tag", "contains \\"),
        (_set("selection.exclude.0.tag", "a/b"), "selection.exclude[0].tag", "contains /"),
        (_set("selection.exclude.0.value", ["x"]), "selection.exclude[0].value", "unknown field"),
        (_set("extension.name", "bad name"), "extension.name", "pattern"),
        (
            _set("extension.configurationSettings", {"configuration.backupStorageLocation.bucket": "x"}),
            "extension.configurationSettings",
            "set by the remediator",
        ),
        (
            _set("extension.configurationSettings", {"CREDENTIALS.TENANTID": "x"}),
            "extension.configurationSettings",
            "set by the remediator",
        ),
        (
            _set("extension.configurationSettings", {"blobContainer": "x"}),
            "extension.configurationSettings",
            "az CLI alias",
        ),
        (
            _set("extension.configurationSettings", {"memoryLimit": "1Gi"}),
            "extension.configurationSettings",
            "use 'resources.limits.memory'",
        ),
        (_set("extension.configurationSettings", {"a": 1}), "extension.configurationSettings.a", "string"),
        (_set("remediation.mode", "fix"), "remediation.mode", "'install', 'policy-task' or 'audit'"),
        (_set("remediation", {"mode": "policy-task"}), "remediation", "needs at least one"),
        (
            _set("remediation", {"mode": "policy-task", "policyAssignmentIds": [SA]}),
            "remediation.policyAssignmentIds[0]",
            "policyAssignments",
        ),
        (
            _set("remediation.grant_storage_access", False),
            "remediation.grant_storage_access",
            "unknown field",
        ),
    ],
)
def test_invalid_configs_name_the_field(mutate: Mutation, field: str, message: str) -> None:
    data = copy.deepcopy(base())
    mutate(data)
    with pytest.raises(UserInputError) as info:
        parse_config(data, source="cfg.yaml")
    assert info.value.field == field
    assert message in info.value.message
    assert info.value.source == "cfg.yaml"
    assert "\n" not in str(info.value)


def test_valid_edge_cases() -> None:
    data = base()
    data["selection"]["include"][0]["values"] = ["", "*", "a?b", "[x]"]
    data["selection"]["include"][0]["tag"] = "k" * 512
    data["selection"]["exclude"] = [{"tag": "team", "values": ["v" * 256]}]
    data["extension"] = {"configurationSettings": {"resources.limits.memory": "2Gi"}}
    data["remediation"] = {"mode": "policy-task", "policyAssignmentIds": [ASSIGNMENT]}
    data["$schema"] = "../docs/config.schema.json"
    config = parse_config(data)
    assert config.selection.include is not None
    assert config.selection.include[0].values == ("", "*", "a?b", "[x]")
    assert config.remediation.policy_assignment_ids[0].name == "aks-backup-dine"


def test_not_a_mapping() -> None:
    with pytest.raises(UserInputError, match="must be a mapping") as info:
        parse_config(["scope"], source="x.json")
    assert info.value.source == "x.json"


def test_every_error_is_reported_at_once() -> None:
    """Was: only the first error and a count. Now each error is one line naming its field."""
    with pytest.raises(UserInputErrors) as info:
        parse_config({"scope": {}, "storage": {}}, source="c.yaml")
    assert [(e.field, e.source) for e in info.value.errors] == [("scope", "c.yaml"), ("storage", "c.yaml")]
    assert info.value.lines() == [
        "c.yaml: scope: empty: list at least one of managementGroups, subscriptions, resourceGroups"
        " (an empty scope never means 'everything')",
        "c.yaml: storage: empty: map at least one region to a storage account id",
    ]
    assert str(info.value) == "\n".join(info.value.lines())
    # one-line consumers (HTTP bodies) keep the first error, with the count; the body lists every error
    assert info.value.field == "scope" and info.value.message.endswith("(and 1 more error)")
    body = info.value.to_json()
    assert [e["field"] for e in body["errors"]] == ["scope", "storage"]


class TestScopeContains:
    SUB_RG = "5e8d2a47-b1c9-4f36-8e0d-7c4a9b2f1e83"

    def cluster(self, sub: str, rg: str = "rg-aks") -> Any:
        return parse_cluster_id(
            f"/subscriptions/{sub}/resourcegroups/{rg}/providers/Microsoft.ContainerService/managedClusters/c"
        )

    def scope(self, **scope: Any) -> Any:
        return parse_config({"scope": scope, "storage": {"eastus": SA}}).scope

    def test_subscription(self) -> None:
        scope = self.scope(subscriptions=[SUB])
        assert scope.contains(self.cluster(SUB))
        assert not scope.contains(self.cluster(SUB2))

    def test_resource_group_is_case_insensitive(self) -> None:
        scope = self.scope(resourceGroups=[f"/subscriptions/{self.SUB_RG}/resourceGroups/RG-Shared"])
        assert scope.contains(self.cluster(self.SUB_RG, "rg-shared"))
        assert not scope.contains(self.cluster(self.SUB_RG, "rg-other"))

    def test_excluded_subscription_wins_over_everything(self) -> None:
        scope = self.scope(
            subscriptions=[SUB],
            managementGroups=["mg-prod"],
            resourceGroups=[f"/subscriptions/{SUB}/resourceGroups/rg-aks"],
            excludeSubscriptions=[SUB],
        )
        assert not scope.contains(self.cluster(SUB), management_groups_of=lambda _: ["mg-prod"])

    def test_management_groups_resolve_through_the_callable(self) -> None:
        scope = self.scope(managementGroups=["/providers/Microsoft.Management/managementGroups/MG-Prod"])
        seen: list[str] = []

        def ancestry(subscription: str) -> list[str]:
            seen.append(subscription)
            return (
                ["/providers/Microsoft.Management/managementGroups/mg-prod"]
                if subscription == SUB
                else ["root"]
            )

        assert scope.contains(self.cluster(SUB), management_groups_of=ancestry)
        assert not scope.contains(self.cluster(SUB2), management_groups_of=ancestry)
        assert seen == [SUB, SUB2]

    def test_listed_ids_compare_case_insensitively_whatever_casing_either_side_uses(self) -> None:
        upper, lower = SUB.upper(), SUB.lower()
        scope = self.scope(
            subscriptions=[f"/SUBSCRIPTIONS/{upper}"], excludeSubscriptions=[self.SUB_RG.upper()]
        )
        for _ in range(3):  # the normalized sets are built once and reused
            assert scope.contains(self.cluster(lower)) and scope.contains(self.cluster(upper))
            assert not scope.contains(self.cluster(self.SUB_RG.lower()))
        groups = self.scope(managementGroups=["MG-Prod"])
        assert groups.contains(self.cluster(SUB2), management_groups_of=lambda _: ["mg-prod"])
        assert not groups.contains(self.cluster(SUB2), management_groups_of=lambda _: ["mg-prod-2"])

    def test_management_groups_without_a_resolver_fail_loudly(self) -> None:
        scope = self.scope(managementGroups=["mg-prod"], subscriptions=[SUB])
        assert scope.contains(self.cluster(SUB))  # decided by the subscription, no lookup needed
        with pytest.raises(ValueError, match="management_groups_of"):
            scope.contains(self.cluster(SUB2))


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_load_yaml_and_json_agree(tmp_path: Path) -> None:
    as_json = write(tmp_path, "c.json", json.dumps(base()))
    as_yaml = write(
        tmp_path, "c.yaml", "scope:\n  subscriptions: [" + SUB + "]\nstorage:\n  East US: " + SA + "\n"
    )
    sniffed = write(
        tmp_path, "c.conf", json.dumps({"scope": {"subscriptions": [SUB]}, "storage": {"eastus": SA}})
    )
    assert load_config(as_json).storage == load_config(as_yaml).storage == load_config(sniffed).storage


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        ("c.yaml", "scope: [unclosed\n", "invalid YAML at line"),
        ("c.yaml", "scope: {}\nscope: {}\n", "duplicate key 'scope'"),
        ("c.json", '{"scope": {}, "scope": {}}', "duplicate key 'scope'"),
        ("c.json", '{"scope": ', "invalid JSON at line 1"),
        ("c.yaml", "", "must be a mapping, got NoneType"),
    ],
)
def test_load_config_syntax_errors(tmp_path: Path, name: str, text: str, message: str) -> None:
    path = write(tmp_path, name, text)
    with pytest.raises(UserInputError) as info:
        load_config(path)
    assert message in info.value.message
    assert info.value.source == str(path)


def test_load_config_reports_field_and_file(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "c.yaml",
        f"scope:\n  subscriptions: [{SUB}]\nstorage:\n  eastus: {SA}\nselection:\n  include:\n"
        "    - tag: backup\n      values: []\n",
    )
    with pytest.raises(UserInputError) as info:
        load_config(path)
    assert str(info.value).startswith(f"{path}: selection.include[0].values: ")


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(UserInputError, match="cannot read the config file"):
        load_config(tmp_path / "absent.yaml")


@pytest.mark.parametrize(
    "name", ["policy3-include-tag.yaml", "policy4-exclude-tag.yaml", "multi-region.yaml"]
)
def test_shipped_examples_are_valid(name: str) -> None:
    config = load_config(ROOT / "examples" / name)
    assert config.targets and all(t.storage_account for t in config.targets.values())


def test_policy_equivalents_have_one_region_subscription_and_account() -> None:
    for name in ("policy3-include-tag.yaml", "policy4-exclude-tag.yaml"):
        config = load_config(ROOT / "examples" / name)
        assert len(config.scope.subscriptions) == 1
        assert config.scope.regions == ("eastus",)
        assert len(config.targets) == 1
    assert load_config(ROOT / "examples" / "policy4-exclude-tag.yaml").selection.include is None


def test_committed_json_schema_is_current() -> None:
    committed = json.loads((ROOT / "docs" / "config.schema.json").read_text(encoding="utf-8"))
    assert committed == config_schema(), (
        "docs/config.schema.json is stale: run `python -m remediator config schema > docs/config.schema.json`"
    )


def test_json_schema_uses_camel_case_and_docstrings() -> None:
    schema = config_schema()
    scope = schema["$defs"]["Scope"]["properties"]
    assert set(scope) == {
        "managementGroups",
        "subscriptions",
        "excludeSubscriptions",
        "resourceGroups",
        "regions",
    }
    assert "ancestry" in scope["managementGroups"]["description"]
    assert schema["$defs"]["Scope"]["additionalProperties"] is False


# --- null (a bare YAML key, or every entry under it commented out) never widens the selection ---

NULL_FIELDS: list[tuple[str, str, str]] = [
    # (path to set to None, field named in the error, what the message says omitting the key means)
    ("selection.include", "selection.include", "include every in-scope cluster"),
    ("selection.include.0.values", "selection.include[0].values", "match any value"),
    ("scope.regions", "scope.regions", "allow every region"),
    ("selection.exclude", "selection.exclude", "exclude nothing"),
    ("selection.exclude.0.values", "selection.exclude[0].values", "match any value"),
    ("selection", "selection", "select every in-scope cluster"),
    ("scope.managementGroups", "scope.managementGroups", "remove the key"),
    ("scope.subscriptions", "scope.subscriptions", "remove the key"),
    ("scope.excludeSubscriptions", "scope.excludeSubscriptions", "exclude no subscription"),
    ("scope.resourceGroups", "scope.resourceGroups", "remove the key"),
    ("scope", "scope", "required"),
    ("storage", "storage", "remove the key and use regionTargets"),
    ("selection.include.0.tag", "selection.include[0].tag", "required"),
    ("extension", "extension", "remove the key"),
    ("extension.configurationSettings", "extension.configurationSettings", "remove the key"),
    ("extension.name", "extension.name", "'azure-aks-backup'"),
    ("remediation", "remediation", "remove the key"),
    ("remediation.policyAssignmentIds", "remediation.policyAssignmentIds", "remove the key"),
    ("remediation.mode", "remediation.mode", "'install'"),
    ("remediation.grantStorageAccess", "remediation.grantStorageAccess", "true"),
]


def _with_null(path: str) -> dict[str, Any]:
    data = copy.deepcopy(base())
    data["selection"]["exclude"] = [{"tag": "nobackup", "values": ["yes"]}]
    data["scope"]["managementGroups"] = ["mg-prod"]
    data["extension"] = {"name": "azure-aks-backup"}
    data["remediation"] = {"mode": "install", "grantStorageAccess": True}
    _set(path, None)(data)
    return data


@pytest.mark.parametrize(("path", "field", "hint"), NULL_FIELDS, ids=[row[0] for row in NULL_FIELDS])
def test_null_is_rejected_naming_the_field(path: str, field: str, hint: str) -> None:
    with pytest.raises(UserInputError) as info:
        parse_config(_with_null(path), source="cfg.yaml")
    assert info.value.field == field
    assert info.value.message.startswith("empty (null"), info.value.message
    assert hint in info.value.message
    assert "\n" not in str(info.value)


def test_commented_out_include_entries_are_an_error_not_everything(tmp_path: Path) -> None:
    """The audit case: every include entry commented out used to mean 'every in-scope cluster'."""
    path = write(
        tmp_path,
        "c.yaml",
        f"scope:\n  subscriptions: [{SUB}]\nstorage:\n  eastus: {SA}\nselection:\n  include:\n"
        "    # - tag: aks-backup\n    #   values: [enabled]\n",
    )
    with pytest.raises(UserInputError) as info:
        load_config(path)
    assert str(info.value).startswith(f"{path}: selection.include: empty (null")


# --- the published JSON Schema carries the rules the validator enforces ---


def _walk(node: object) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    if isinstance(node, dict):
        found.append(node)
        for value in node.values():
            found.extend(_walk(value))
    elif isinstance(node, list):
        for value in node:
            found.extend(_walk(value))
    return found


def test_json_schema_never_allows_null() -> None:
    nodes = _walk(config_schema())
    assert not [
        n
        for n in nodes
        if n.get("type") == "null" or (isinstance(n.get("type"), list) and "null" in n["type"])
    ]
    assert not [n for n in nodes if "default" in n and n["default"] is None]


def test_json_schema_carries_tag_limits_and_min_items() -> None:
    schema = config_schema()
    defs = schema["$defs"]
    tag = defs["TagRule"]["properties"]["tag"]
    assert (tag["minLength"], tag["maxLength"]) == (1, 512)
    assert tag["pattern"] == TAG_KEY_PATTERN
    values = defs["TagRule"]["properties"]["values"]
    assert values["type"] == "array" and values["minItems"] == 1
    assert values["items"] == {"type": "string", "maxLength": 256}
    include = defs["Selection"]["properties"]["include"]
    assert include["type"] == "array" and include["minItems"] == 1
    regions = defs["Scope"]["properties"]["regions"]
    assert regions["type"] == "array" and regions["minItems"] == 1
    assert schema["properties"]["storage"]["minProperties"] == 1
    assert schema["properties"]["regionTargets"]["minProperties"] == 1
    assert {tuple(branch["required"]) for branch in schema["oneOf"]} == {("storage",), ("regionTargets",)}
    assert {tuple(branch["required"]) for branch in defs["Scope"]["anyOf"]} == {
        ("managementGroups",),
        ("subscriptions",),
        ("resourceGroups",),
    }
    assert defs["RemediationConfig"]["if"] == {
        "properties": {"mode": {"const": "policy-task"}},
        "required": ["mode"],
    }
    assert defs["RemediationConfig"]["then"]["required"] == ["policyAssignmentIds"]


@pytest.mark.parametrize(
    "key",
    [
        "backup",
        "a b",
        "ÄÖÜ-ß",
        "x" * 512,
        "",
        "a/b",
        "a\\b",
        "50%",
        "a?",
        "<",
        ">",
        "&",
        "x" * 513,
        "ok\u00e9:k",
    ],
)
def test_schema_tag_rules_agree_with_the_validator(key: str) -> None:
    """The schema's pattern and lengths accept exactly the tag names the validator accepts."""
    tag = config_schema()["$defs"]["TagRule"]["properties"]["tag"]
    by_schema = (
        tag["minLength"] <= len(key) <= tag["maxLength"] and re.fullmatch(tag["pattern"], key) is not None
    )
    data = base()
    data["selection"]["include"][0]["tag"] = key
    try:
        parse_config(data)
        by_validator = True
    except UserInputError:
        by_validator = False
    assert by_schema is by_validator


@pytest.mark.parametrize(
    ("mutate", "field"),
    [
        (_set("selection.include.0.values", ["v" * 257]), "selection.include[0].values[0]"),
        (_set("selection.include.0.tag", "a/b"), "selection.include[0].tag"),
        (_set("selection.include.0.tag", "k" * 513), "selection.include[0].tag"),
        (_set("selection.include", [5]), "selection.include[0]"),
        (_set("scope.regions", ["East-US"]), "scope.regions[0]"),
        (_set("storage", {"eastus": "/subscriptions/x"}), "storage.eastus"),
    ],
)
def test_one_bad_item_is_one_error(mutate: Mutation, field: str) -> None:
    """A list's minItems is not reported as a second error when one of its items is invalid."""
    data = copy.deepcopy(base())
    mutate(data)
    with pytest.raises(UserInputError) as info:
        parse_config(data)
    assert info.value.field == field
    assert "more error" not in info.value.message


# --------------------------------------------------------------------------------------------- region targets


def test_region_targets_and_the_storage_shorthand_mean_the_same():
    long_form = parse_config(
        {"scope": {"subscriptions": [SUB]}, "regionTargets": {"East US": {"storageAccount": SA}}}
    )
    shorthand = parse_config({"scope": {"subscriptions": [SUB]}, "storage": {"eastus": SA}})
    assert long_form.targets == shorthand.targets
    assert (
        long_form.storage_for("eastus")
        == shorthand.storage_for("East US")
        == long_form.targets_for("eastus").storage_account
    )
    assert long_form.storage is None and long_form.storage_for("westus") is None


@pytest.mark.parametrize(
    ("data", "field", "message"),
    [
        (
            {"storage": {"eastus": SA}, "regionTargets": {"eastus": {"storageAccount": SA}}},
            "storage",
            "not both",
        ),
        ({}, "regionTargets", "required"),
        ({"regionTargets": {}}, "regionTargets", "empty"),
        ({"regionTargets": {"eastus": {}}}, "regionTargets.eastus.storageAccount", "required"),
        (
            {"regionTargets": {"eastus": {"storageAccount": SA, "storage": SA}}},
            "regionTargets.eastus.storage",
            "unknown field",
        ),
        (
            {"regionTargets": {"East US": {"storageAccount": SA}, "eastus": {"storageAccount": SA}}},
            "regionTargets",
            "same region",
        ),
        (
            {"regionTargets": {"eastus": {"storageAccount": "/subscriptions/x"}}},
            "regionTargets.eastus.storageAccount",
            "GUID",
        ),
    ],
)
def test_region_targets_errors_name_the_field(data, field, message):
    with pytest.raises(UserInputError) as info:
        parse_config({"scope": {"subscriptions": [SUB]}, **data})
    assert info.value.field == field and message in info.value.message, info.value


def test_grant_scope_defaults_to_account_and_accepts_container_only() -> None:
    """remediation.grantScope: where the extension identity's Storage Blob Data Contributor lands."""
    assert parse_config(base()).remediation.grant_scope == "account"
    data = copy.deepcopy(base())
    data["remediation"] = {"grantScope": "container"}
    assert parse_config(data).remediation.grant_scope == "container"
    for wrong in ("Container", "subscription", "", None, True):
        data["remediation"] = {"grantScope": wrong}
        with pytest.raises(UserInputError) as info:
            parse_config(data, source="cfg.yaml")
        assert info.value.field == "remediation.grantScope", (wrong, info.value)
