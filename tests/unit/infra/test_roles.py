"""Least privilege: every role assignment in infra/ resolves to a role we can name; none is Owner,
Contributor or User Access Administrator; the storage grant is delegated only for Storage Blob Data
Contributor; the custom role holds container permissions only."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from tests.fixtures.iac import INFRA
from tests.unit.infra.model import Resource, resources, role_reference

ROLE_ASSIGNMENT = "Microsoft.Authorization/roleAssignments"
OWNER = "8e3af657-a8ff-443c-a75c-2fe8c4bcb635"
CONTRIBUTOR = "b24988ac-6180-42a0-ab88-20f7382dd24c"
USER_ACCESS_ADMINISTRATOR = "18d7d88d-d35e-4fb5-a5c3-7773c20a72d9"
FORBIDDEN = {
    OWNER: "Owner",
    CONTRIBUTOR: "Contributor",
    USER_ACCESS_ADMINISTRATOR: "User Access Administrator",
}
GUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")

# The roles not from roles.json: the two custom roles (created once by an administrator), passed in as GUIDs.
CUSTOM_ROLE_PARAMETERS = {
    (Path("access/storage-access.bicep"), "containerWriterRoleGuid"),
    (Path("access/management-group-access.bicep"), "eventWiringRoleId"),
}


def built_in_roles() -> dict[str, str]:
    roles: dict[str, str] = json.loads((INFRA / "roles.json").read_text())
    return roles


def assignments(templates: dict[Path, Any]) -> list[Resource]:
    found = resources(templates, ROLE_ASSIGNMENT)
    assert len(found) >= 10, "role assignments not found; did the parser output change?"
    return found


def test_roles_json_holds_valid_guids_and_no_broad_role() -> None:
    roles = built_in_roles()
    assert all(GUID.match(guid) for guid in roles.values()), roles
    broad = {FORBIDDEN[g] for g in roles.values() if g in FORBIDDEN}
    assert not broad, f"roles.json lists {broad}"


def test_every_assignment_resolves_to_a_known_role(infra_templates: dict[Path, Any]) -> None:
    roles = built_in_roles()
    for assignment in assignments(infra_templates):
        ref = role_reference(assignment)
        if ref.built_in_key is not None:
            where = f"{assignment.file}:{assignment.symbol}"
            assert ref.built_in_key in roles, f"{where}: unknown roles.{ref.built_in_key}"
            assert roles[ref.built_in_key] not in FORBIDDEN
        else:
            assert (assignment.file, ref.parameter) in CUSTOM_ROLE_PARAMETERS, (assignment.file, ref)
        assert assignment.properties["principalType"] == "ServicePrincipal"


def test_no_broad_role_guid_anywhere_in_infra() -> None:
    for path in sorted(INFRA.rglob("*")):
        if path.is_file() and path.suffix in {".bicep", ".json", ".sh", ".ps1"}:
            text = path.read_text().lower()
            for guid, name in FORBIDDEN.items():
                assert guid not in text, f"{path.relative_to(INFRA)} mentions {name} ({guid})"


def test_mode_decides_extension_and_policy_roles(infra_templates: dict[Path, Any]) -> None:
    roles = built_in_roles()
    for assignment in assignments(infra_templates):
        key = role_reference(assignment).built_in_key
        condition = assignment.body["config"].get("condition")
        if key in {"kubernetesExtensionContributor", "resourcePolicyContributor"}:
            wanted = "install" if key == "kubernetesExtensionContributor" else "policy-task"
            assert condition == {
                "operator": {"type": "equals", "operands": {"operand_1": "mode", "operand_2": wanted}}
            }, f"{assignment.file}:{assignment.symbol}: {key} must be assigned only when mode == '{wanted}'"
    assert roles["resourcePolicyContributor"] == "36243c78-bf99-498c-9df9-86d9f8d28608"


def test_storage_grant_delegation_only_for_blob_data_contributor(infra_templates: dict[Path, Any]) -> None:
    roles = built_in_roles()
    delegations = [
        a
        for a in assignments(infra_templates)
        if role_reference(a).built_in_key == "roleBasedAccessControlAdministrator"
    ]
    assert len(delegations) == 1
    delegation = delegations[0]
    props = delegation.properties
    assert props["conditionVersion"] == "2.0"
    condition_var = props["condition"]
    template = infra_templates[delegation.file]
    condition_text = template["variables"][condition_var]["value"]
    # remediation.grantScope picks the grantable roles: Storage Blob Data Contributor alone (account, the
    # default), or with Storage Blob Delegator (container: the product scopes the data role to the backup
    # container and lets the extension mint user-delegation SAS keys on the account; docs/security.md).
    grantable = template["variables"]["grantableRoles"]["value"]["operator"]
    assert grantable["type"] == "conditional"
    assert grantable["operands"]["condition"]["operator"]["operands"] == {
        "operand_1": "grantScope",
        "operand_2": "container",
    }
    assert template["parameters"]["grantScope"]["default"] == "account"
    account_branch = grantable["operands"]["false_value"]["operator"]["operands"]
    assert account_branch == {"operand_1": "roles", "operand_2": "storageBlobDataContributor"}
    by_scope = {
        "account": roles["storageBlobDataContributor"],
        "container": re.sub(
            r"\$\{roles\.([A-Za-z]+)\}", lambda m: roles[m.group(1)], grantable["operands"]["true_value"]
        ),
    }
    assert by_scope["container"] == f"{roles['storageBlobDataContributor']}, {roles['storageBlobDelegator']}"
    assert roles["storageBlobDelegator"] == "db58b8e5-c6ad-4a2a-8342-4190687cbf4a"
    for grantable_guids in by_scope.values():
        text = condition_text.replace("${grantableRoles}", grantable_guids)
        # Both role-assignment actions are constrained, and only to the grantable roles.
        assert "ActionMatches{\\'Microsoft.Authorization/roleAssignments/write\\'}" in text
        assert "ActionMatches{\\'Microsoft.Authorization/roleAssignments/delete\\'}" in text
        allowed = re.findall(r"GuidEquals \{([^}]*)\}", text)
        assert allowed == [grantable_guids] * 2, allowed
    assert roles["storageBlobDataContributor"] == "ba92f5b4-2d11-453d-a403-e96b0029c9fe"
    assert "PrincipalType] ForAnyOfAnyValues:StringEqualsIgnoreCase {\\'ServicePrincipal\\'}" in text
    # Scoped to one storage account, not to a subscription.
    assert delegation.config["scope"] == "storage"


def _role_definitions(infra_templates: dict[Path, Any]) -> dict[str, Resource]:
    definitions = resources(infra_templates, "Microsoft.Authorization/roleDefinitions")
    by_file = {d.file.as_posix(): d for d in definitions}
    assert set(by_file) == {"access/container-writer-role.bicep", "access/event-wiring-role.bicep"}, by_file
    return by_file


def test_custom_role_is_container_write_only(infra_templates: dict[Path, Any]) -> None:
    permissions = _role_definitions(infra_templates)["access/container-writer-role.bicep"].properties[
        "permissions"
    ]
    actions = [a for p in permissions for a in p["actions"]]
    assert "Microsoft.Storage/storageAccounts/blobServices/containers/write" in actions
    for action in actions:
        assert "*" not in action and action.startswith("Microsoft.Storage/storageAccounts"), action
        assert not re.search(r"listkeys|regeneratekey|/delete$|/action$", action, re.IGNORECASE), action
    assert all(not p.get("dataActions") for p in permissions)


EVENT_WIRING_ACTIONS = {
    "Microsoft.Resources/subscriptions/resourceGroups/read",
    "Microsoft.Resources/subscriptions/resourceGroups/write",
    "Microsoft.EventGrid/systemTopics/read",
    "Microsoft.EventGrid/systemTopics/write",
    "Microsoft.EventGrid/systemTopics/eventSubscriptions/read",
    "Microsoft.EventGrid/systemTopics/eventSubscriptions/write",
}


def test_event_wiring_role_creates_system_topics_and_nothing_else(infra_templates: dict[Path, Any]) -> None:
    """The wiring step's custom role: exactly the writes remediator/adapters/event_grid.py sends (resource
    group, system topic, system-topic event subscription) and their reads; no wildcard, no delete, no data."""
    permissions = _role_definitions(infra_templates)["access/event-wiring-role.bicep"].properties[
        "permissions"
    ]
    assert {a for p in permissions for a in p["actions"]} == EVENT_WIRING_ACTIONS
    assert all(not p.get("dataActions") and not p.get("notActions") for p in permissions)


def test_wiring_grants_only_at_management_groups_and_only_when_asked(
    infra_templates: dict[Path, Any],
) -> None:
    """EventGrid EventSubscription Contributor (GUID from MicrosoftDocs/azure-docs
    articles/role-based-access-control/built-in-roles/integration.md) and the custom role are granted at the
    managed management groups only (the subscriptions that will join them are not known at deploy time), and
    only with wireNewSubscriptions."""
    roles = built_in_roles()
    assert roles["eventGridEventSubscriptionContributor"] == "428e0ff0-5e57-4d9c-a221-2c70d0e0a443"
    wiring = [
        a
        for a in assignments(infra_templates)
        if role_reference(a).built_in_key == "eventGridEventSubscriptionContributor"
        or role_reference(a).parameter == "eventWiringRoleId"
    ]
    assert len(wiring) == 2
    for assignment in wiring:
        assert assignment.file == Path("access/management-group-access.bicep")
        assert assignment.body["config"].get("condition") == "wireNewSubscriptions"
