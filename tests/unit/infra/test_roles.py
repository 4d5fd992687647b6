"""Least privilege: every role assignment in infra/ resolves to a role we can name; none is Owner,
Contributor or User Access Administrator; the storage grant is delegated only for Storage Blob Data
Contributor (+ Storage Blob Data Reader in protect mode); protect mode's role-assignment writer may grant
exactly the roles the protect chain assigns (infra/protect-roles.json), which appear nowhere else; the custom
roles hold container permissions only, and protect mode's writes only (no delete)."""

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

# The roles not from roles.json: the three custom roles (created once by an administrator), passed as GUIDs.
CUSTOM_ROLE_PARAMETERS = {
    (Path("access/storage-access.bicep"), "containerWriterRoleGuid"),
    (Path("access/scope-roles.bicep"), "protectWriterRoleGuid"),
    (Path("access/scope-roles-rg.bicep"), "protectWriterRoleGuid"),
    (Path("access/control-plane-rg.bicep"), "protectWriterRoleGuid"),
    (Path("access/management-group-access.bicep"), "protectWriterRoleGuid"),
    (Path("access/protect-vault-access.bicep"), "protectWriterRoleGuid"),
    (Path("access/management-group-access.bicep"), "eventWiringRoleId"),
}
PROTECT_ROLES = INFRA / "protect-roles.json"
"""Roles protect mode's role-assignment writer may GRANT to backup identities; the app never holds them."""


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
    """Owner and User Access Administrator appear nowhere; Contributor only in protect-roles.json, the list of
    roles protect mode may GRANT (the cluster identity's Contributor on the snapshot resource group), which
    test_protect_roles_are_only_granted_never_held shows is used only inside ABAC conditions."""
    for path in sorted(INFRA.rglob("*")):
        if path.is_file() and path.suffix in {".bicep", ".json", ".sh", ".ps1", ".tf"}:
            text = path.read_text().lower()
            for guid, name in FORBIDDEN.items():
                if path == PROTECT_ROLES and guid == CONTRIBUTOR:
                    continue
                assert guid not in text, f"{path.relative_to(INFRA)} mentions {name} ({guid})"


def test_protect_roles_are_exactly_what_the_chain_grants() -> None:
    from remediator.core import catalog

    protect_roles: dict[str, str] = json.loads(PROTECT_ROLES.read_text())
    assert set(protect_roles.values()) == {
        catalog.READER,
        catalog.DISK_SNAPSHOT_CONTRIBUTOR,
        catalog.DATA_OPERATOR_FOR_MANAGED_DISKS,
        catalog.CONTRIBUTOR,
        catalog.STORAGE_BLOB_DATA_READER,
    }
    assert not {OWNER, USER_ACCESS_ADMINISTRATOR} & set(protect_roles.values())


def test_protect_roles_are_only_granted_never_held(infra_templates: dict[Path, Any]) -> None:
    """protect-roles.json is loaded only to build ABAC conditions: no assignment's roleDefinitionId names it,
    and the Terraform mirror uses it only in the conditions' grantable lists."""
    for assignment in assignments(infra_templates):
        role_id = json.dumps(assignment.properties.get("roleDefinitionId"))
        assert "protectRoles" not in role_id, f"{assignment.file}:{assignment.symbol} holds a protect role"
    for template in infra_templates.values():
        for name, variable in (template.get("variables") or {}).items():
            if "protectRoles." in json.dumps(variable):
                assert name in ("protectGrantable", "grantableHere"), name
    tf = (INFRA / "terraform" / "access.tf").read_text()
    uses = [line.split("=", 1)[0].strip() for line in tf.splitlines() if "local.protect_roles." in line]
    assert uses and set(uses) <= {"protect_grantable", "grantable_here"}, uses


def test_mode_decides_extension_and_policy_roles(infra_templates: dict[Path, Any]) -> None:
    roles = built_in_roles()
    for assignment in assignments(infra_templates):
        key = role_reference(assignment).built_in_key
        condition = assignment.body["config"].get("condition")
        where = f"{assignment.file}:{assignment.symbol}"
        if key == "resourcePolicyContributor":
            assert condition == {
                "operator": {"type": "equals", "operands": {"operand_1": "mode", "operand_2": "policy-task"}}
            }, f"{where}: {key} must be assigned only when mode == 'policy-task'"
        if key == "kubernetesExtensionContributor":
            # install and protect mode install the extension themselves (a variable: pycep cannot parse ||)
            assert condition == "installsExtension", f"{where}: {key} must depend on installsExtension"
            variable = infra_templates[assignment.file]["variables"]["installsExtension"]["value"]
            assert variable["function"] == {
                "type": "contains",
                "parameters": {"container": ["install", "protect"], "item_to_find": "mode"},
            }, variable
        if role_reference(assignment).parameter == "protectWriterRoleGuid" and assignment.file.name != (
            "protect-vault-access.bicep"
        ):
            assert condition == {
                "operator": {"type": "equals", "operands": {"operand_1": "mode", "operand_2": "protect"}}
            }, f"{where}: the protect writer is assigned only in protect mode"
    assert roles["resourcePolicyContributor"] == "36243c78-bf99-498c-9df9-86d9f8d28608"


def test_storage_grant_delegation_only_for_blob_data_contributor(infra_templates: dict[Path, Any]) -> None:
    roles = built_in_roles()
    delegations = [
        a
        for a in assignments(infra_templates)
        if role_reference(a).built_in_key == "roleBasedAccessControlAdministrator"
        and a.file == Path("access/storage-access.bicep")
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
    # protect mode adds the vault identity's Storage Blob Data Reader, nothing else
    here = template["variables"]["grantableHere"]["value"]["operator"]
    assert here["operands"]["condition"] == "protect" and here["operands"]["false_value"] == "grantableRoles"
    assert here["operands"]["true_value"] == "${grantableRoles}, ${protectRoles.storageBlobDataReader}"
    assert template["parameters"]["protect"]["default"] is False
    reader = json.loads(PROTECT_ROLES.read_text())["storageBlobDataReader"]
    assert reader == "2a2b9908-6ea1-4ae2-8e65-a410df84e7d1"
    by_scope |= {f"{k} (protect)": f"{v}, {reader}" for k, v in list(by_scope.items())}
    for grantable_guids in by_scope.values():
        text = condition_text.replace("${grantableHere}", grantable_guids)
        # Both role-assignment actions are constrained, and only to the grantable roles.
        assert "ActionMatches{\\'Microsoft.Authorization/roleAssignments/write\\'}" in text
        assert "ActionMatches{\\'Microsoft.Authorization/roleAssignments/delete\\'}" in text
        allowed = re.findall(r"GuidEquals \{([^}]*)\}", text)
        assert allowed == [grantable_guids] * 2, allowed
    assert roles["storageBlobDataContributor"] == "ba92f5b4-2d11-453d-a403-e96b0029c9fe"
    assert "PrincipalType] ForAnyOfAnyValues:StringEqualsIgnoreCase {\\'ServicePrincipal\\'}" in text
    # Scoped to one storage account, not to a subscription.
    assert delegation.config["scope"] == "storage"


def test_protect_delegation_grants_exactly_the_chains_roles_to_service_principals(
    infra_templates: dict[Path, Any],
) -> None:
    protect_roles = json.loads(PROTECT_ROLES.read_text())
    wanted = [
        protect_roles[k]
        for k in ("reader", "diskSnapshotContributor", "dataOperatorForManagedDisks", "contributor")
    ]
    delegations = [
        a
        for a in assignments(infra_templates)
        if role_reference(a).built_in_key == "roleBasedAccessControlAdministrator"
        and a.file != Path("access/storage-access.bicep")
    ]
    assert {a.file.name for a in delegations} == {
        "scope-roles.bicep",
        "scope-roles-rg.bicep",
        "control-plane-rg.bicep",
        "management-group-access.bicep",
    }
    for delegation in delegations:
        template = infra_templates[delegation.file]
        assert delegation.body["config"]["condition"] == {
            "operator": {"type": "equals", "operands": {"operand_1": "mode", "operand_2": "protect"}}
        }
        assert delegation.properties["conditionVersion"] == "2.0"
        grantable = template["variables"]["protectGrantable"]["value"]
        guids = re.sub(r"\$\{protectRoles\.([A-Za-z]+)\}", lambda m: protect_roles[m.group(1)], grantable)
        assert guids.split(", ") == wanted
        text = template["variables"][delegation.properties["condition"]]["value"]
        assert re.findall(r"GuidEquals \{(\$\{[A-Za-z]+\})\}", text) == ["${protectGrantable}"] * 2
        assert "PrincipalType] ForAnyOfAnyValues:StringEqualsIgnoreCase {\\'ServicePrincipal\\'}" in text
        assert "roleAssignments/delete" in text and "roleAssignments/write" in text


def _role_definitions(infra_templates: dict[Path, Any]) -> dict[str, Resource]:
    definitions = resources(infra_templates, "Microsoft.Authorization/roleDefinitions")
    by_file = {d.file.as_posix(): d for d in definitions}
    assert set(by_file) == {
        "access/container-writer-role.bicep",
        "access/event-wiring-role.bicep",
        "access/protect-writer-role.bicep",
    }, by_file
    return by_file


def test_protect_writer_role_is_the_chains_writes_only(infra_templates: dict[Path, Any]) -> None:
    permissions = _role_definitions(infra_templates)["access/protect-writer-role.bicep"].properties[
        "permissions"
    ]
    actions = sorted(a for p in permissions for a in p["actions"])
    assert actions == sorted(
        [
            "Microsoft.DataProtection/backupVaults/write",
            "Microsoft.DataProtection/backupVaults/backupPolicies/write",
            "Microsoft.DataProtection/backupVaults/backupInstances/write",
            "Microsoft.DataProtection/backupVaults/backupInstances/sync/action",
            "Microsoft.DataProtection/backupVaults/validateForBackup/action",
            "Microsoft.ContainerService/managedClusters/trustedAccessRoleBindings/write",
            "Microsoft.Resources/subscriptions/resourceGroups/write",
        ]
    )
    assert all("*" not in a and not a.endswith("/delete") for a in actions)
    assert all(not p.get("dataActions") for p in permissions)


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
