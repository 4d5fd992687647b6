# ruff: noqa: E501
"""Compliance of the four Backup built-ins, evaluated from their JSON, and the policy-state $filter parser."""

from __future__ import annotations

import json

import pytest

from emulator.clock import ManualClock
from emulator.policy.engine import PolicyEngine
from emulator.policy.odata import ODataFilterError, parse_filter
from emulator.policy.rules import (
    BUILTIN_DIR,
    UnsupportedPolicyError,
    evaluate_template,
    load_builtin_definitions,
)
from emulator.state import EmulatorState

SUB = "11111111-1111-1111-1111-111111111111"
SA = f"/subscriptions/{SUB}/resourceGroups/backup-rg/providers/Microsoft.Storage/storageAccounts/sabackupeastus"


def test_vendored_definitions_are_identical_to_the_shared_official_files(azure_examples):
    for path in sorted((azure_examples / "azure-policy").glob("*.json")):
        assert (BUILTIN_DIR / path.name).read_bytes() == path.read_bytes(), path.name
    assert len(load_builtin_definitions()) == 4


def cluster(name, *, location="eastus", tags=None, rg="rg1"):
    cid = f"/subscriptions/{SUB}/resourceGroups/{rg}/providers/Microsoft.ContainerService/managedClusters/{name}"
    return cid, {
        "id": cid,
        "name": name,
        "type": "Microsoft.ContainerService/managedClusters",
        "location": location,
        "tags": tags or {},
        "properties": {"provisioningState": "Succeeded"},
    }


def add_extension(state, cid, *, ext_type="microsoft.dataprotection.kubernetes", prov="Succeeded"):
    eid = f"{cid}/providers/Microsoft.KubernetesConfiguration/extensions/azure-aks-backup"
    state.extensions[eid.lower()] = {
        "id": eid,
        "name": "azure-aks-backup",
        "type": "Microsoft.KubernetesConfiguration/extensions",
        "properties": {"extensionType": ext_type, "provisioningState": prov},
    }


ESTATE = {
    "policyAssignments": [
        {"name": "p1", "scope": f"/subscriptions/{SUB}", "definition": "extension-audit"},
        {
            "name": "p2",
            "scope": f"/subscriptions/{SUB}",
            "definition": "0b0434ec-2bad-4229-965f-bb7ae5a71257",
        },
        {
            "name": "p3",
            "scope": f"/subscriptions/{SUB}",
            "definition": "/providers/Microsoft.Authorization/policyDefinitions/bdff5235-9f40-4a32-893f-38a03d5d607c",
            "parameters": {
                "location": {"value": "East US"},
                "storageAccountId": {"value": SA},
                "inclusionTagName": {"value": "Backup"},
                "inclusionTagValues": {"value": ["yes", "TRUE"]},
            },
        },
        {
            "name": "p4",
            "scope": f"/subscriptions/{SUB}/resourceGroups/rg1",
            "definition": "tag-exclude",
            "parameters": {
                "location": "eastus",
                "storageAccountId": SA,
                "exclusionTagName": "nobackup",
                "exclusionTagValues": ["true"],
            },
        },
    ]
}


@pytest.fixture
def world():
    state = EmulatorState(clock=ManualClock())
    events = []
    engine = PolicyEngine(state, emit=lambda t, s, d, topic: events.append((t, s, d, topic)))
    ids = {}
    for name, kwargs in {
        "tagged-ok": {"tags": {"BACKUP": "Yes"}},  # tag name and value differ in case: still included
        "tagged-failed-ext": {"tags": {"backup": "true"}},
        "tagged-west": {"tags": {"backup": "yes"}, "location": "westeurope"},
        "untagged": {},
        "excluded": {"tags": {"NoBackup": "True"}},
        "other-rg": {"rg": "rg2"},
        "monitor-only": {"tags": {"backup": "no"}},
    }.items():
        cid, body = cluster(name, **kwargs)
        state.clusters[cid.lower()] = body
        ids[name] = cid
    add_extension(state, ids["tagged-ok"])
    add_extension(state, ids["tagged-failed-ext"], prov="Failed")
    add_extension(state, ids["monitor-only"], ext_type="microsoft.azuremonitor.containers")
    engine.load(ESTATE)
    return state, engine, ids, events


def states(engine, assignment):
    return {
        r["resourceId"].rsplit("/", 1)[-1]: r["complianceState"]
        for r in engine.query(f"/subscriptions/{SUB}", lambda r: r["policyAssignmentName"] == assignment)
    }


def test_policy1_requires_succeeded_extension(world):
    _, engine, _, _ = world
    p1 = states(engine, "p1")
    assert p1 == {
        "tagged-ok": "Compliant",
        "tagged-failed-ext": "NonCompliant",
        "tagged-west": "NonCompliant",
        "untagged": "NonCompliant",
        "excluded": "NonCompliant",
        "other-rg": "NonCompliant",
        "monitor-only": "NonCompliant",
    }


def test_policy3_tag_in_values_case_insensitive_location_normalized_existence_by_type_only(world):
    _, engine, _, _ = world
    # tagged-west: other region; untagged/excluded/other-rg/monitor-only('no'): not in scope.
    assert states(engine, "p3") == {"tagged-ok": "Compliant", "tagged-failed-ext": "Compliant"}


def test_policy4_without_tag_in_rg_scope(world):
    _, engine, _, _ = world
    assert states(engine, "p4") == {
        "tagged-ok": "Compliant",
        "tagged-failed-ext": "Compliant",
        "untagged": "NonCompliant",
        "monitor-only": "NonCompliant",
    }


def test_policy2_backup_instance_and_events_on_change(world):
    state, engine, ids, events = world
    assert set(states(engine, "p2").values()) == {"NonCompliant"}
    assert events == []  # the initial evaluation at load is silent
    engine.add_backup_instance(ids["untagged"])
    assert states(engine, "p2")["untagged"] == "Compliant"
    changed = [e for e in events if e[0] == "Microsoft.PolicyInsights.PolicyStateChanged"]
    assert len(changed) == 1
    event_type, subject, data, topic = changed[0]
    assert subject == ids["untagged"] and topic == f"/subscriptions/{SUB}"
    assert data["complianceState"] == "Compliant"
    assert set(data) == {
        "timestamp",
        "policyAssignmentId",
        "policyDefinitionId",
        "policyDefinitionReferenceId",
        "complianceState",
        "subscriptionId",
        "complianceReasonCode",
    }


def test_cluster_write_and_delete_emit_created_and_deleted(world):
    state, engine, ids, events = world
    cid, body = cluster("new-one", tags={"backup": "YES"})
    state.clusters[cid.lower()] = body
    engine.evaluate_cluster(cid)
    created = [e for e in events if e[0].endswith("PolicyStateCreated") and e[1] == cid]
    assert len(created) == 4  # p1, p2, p3 (tagged) and p4 (rg1, not excluded)
    add_extension(state, cid)
    engine.evaluate_cluster(cid)
    assert states(engine, "p3")["new-one"] == "Compliant"
    del state.clusters[cid.lower()]
    engine.evaluate_cluster(cid)
    deleted = [e for e in events if e[0].endswith("PolicyStateDeleted") and e[1] == cid]
    assert len(deleted) == 4


def test_disabled_effect_produces_no_records(world):
    state, engine, _, _ = world
    engine.add_assignment(
        {
            "name": "off",
            "scope": f"/subscriptions/{SUB}",
            "definition": "extension-audit",
            "parameters": {"effect": "Disabled"},
        }
    )
    assert states(engine, "off") == {}


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ({"name": "x", "scope": f"/subscriptions/{SUB}", "definition": "nope"}, "definition"),
        ({"name": "x", "scope": f"/subscriptions/{SUB}", "definition": "tag-include"}, "location"),
        (
            {
                "name": "x",
                "scope": f"/subscriptions/{SUB}",
                "definition": "extension-audit",
                "parameters": {"effect": "Deny"},
            },
            "effect",
        ),
        ({"scope": f"/subscriptions/{SUB}", "definition": "extension-audit"}, "name"),
    ],
)
def test_bad_assignments_are_rejected(entry, message):
    engine = PolicyEngine(EmulatorState(clock=ManualClock()))
    with pytest.raises(ValueError, match=message):
        engine.load({"policyAssignments": [entry]})


def test_template_functions_used_by_the_dine():
    params = {"storageAccountId": SA}
    assert evaluate_template(
        "[first(skip(split(parameters('storageAccountId'), '/'), 8))]", params, None
    ) == ("sabackupeastus")
    assert evaluate_template(
        "[first(skip(split(parameters('storageAccountId'), '/'), 4))]", params, None
    ) == ("backup-rg")
    with pytest.raises(UnsupportedPolicyError):
        evaluate_template("[subscription().tenantId]", params, None)


RECORDS = [
    {
        "resourceId": "/subscriptions/S/resourceGroups/RG/providers/X/y/A",
        "complianceState": "NonCompliant",
        "policyAssignmentId": "/subscriptions/S/providers/Microsoft.Authorization/policyAssignments/P3",
        "policyDefinitionName": "bdff5235-9f40-4a32-893f-38a03d5d607c",
    },
    {
        "resourceId": "/subscriptions/S/resourceGroups/RG/providers/X/y/B",
        "complianceState": "Compliant",
        "policyAssignmentId": "/subscriptions/S/providers/Microsoft.Authorization/policyAssignments/P3",
        "policyDefinitionName": "bdff5235-9f40-4a32-893f-38a03d5d607c",
    },
    {
        "resourceId": "/subscriptions/S/resourceGroups/RG/providers/X/y/B",
        "complianceState": "NonCompliant",
        "policyAssignmentId": "/subscriptions/S/providers/Microsoft.Authorization/policyAssignments/P1",
        "policyDefinitionName": "fda9cd0b-094c-4cd5-ac2a-5e06e5277c45",
    },
]
FIELDS = {"resourceId", "complianceState", "policyAssignmentId", "policyDefinitionName"}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (None, [0, 1, 2]),
        ("complianceState eq 'NonCompliant'", [0, 2]),
        ("ComplianceState EQ 'noncompliant'", [0, 2]),
        ("resourceId eq '/SUBSCRIPTIONS/s/resourcegroups/rg/providers/x/y/b'", [1, 2]),
        (
            "complianceState eq 'NonCompliant' and policyDefinitionName eq 'BDFF5235-9f40-4a32-893f-38a03d5d607c'",
            [0],
        ),
        (
            "(policyAssignmentId eq '/subscriptions/S/providers/Microsoft.Authorization/policyAssignments/p1' "
            "or complianceState eq 'Compliant') and resourceId eq '/subscriptions/S/resourceGroups/RG/providers/X/y/B'",
            [1, 2],
        ),
        ("complianceState ne 'Compliant'", [0, 2]),
        ("not (complianceState eq 'Compliant')", [0, 2]),
        ("resourceId eq 'it''s'", []),
    ],
)
def test_odata_filter(text, expected):
    predicate = parse_filter(text, fields=FIELDS)
    assert [i for i, r in enumerate(RECORDS) if predicate(r)] == expected


@pytest.mark.parametrize(
    "text",
    [
        "complianceState gt 'a'",
        "contains(resourceId, 'x')",
        "bogusField eq 'x'",
        "complianceState eq",
        "(complianceState eq 'x'",
        "complianceState eq 'x' xor resourceId eq 'y'",
    ],
)
def test_odata_filter_rejects_what_it_cannot_apply(text):
    with pytest.raises(ODataFilterError):
        parse_filter(text, fields=FIELDS)


def test_policy_definition_json_parameters_drive_evaluation():
    raw = json.loads((BUILTIN_DIR / "Kubernetes_InstallAzureBackupExtensionWithTag_DINE.json").read_text())
    assert raw["properties"]["parameters"]["inclusionTagValues"]["type"] == "Array"
