"""The report document contract: round trips, every validation error named with its path, the arithmetic
checks, and ``docs/report.schema.json`` kept in step with the dataclasses (agreeing with the validator)."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from remediator.core.errors import UserInputError
from remediator.core.report_document import (
    STATES,
    ClusterRow,
    ConfigIdentity,
    MatchedRule,
    ReportDocument,
    ReportDocumentError,
    RoleAssignmentHeadroom,
    StateCounts,
    build_document,
    consistency_problems,
    from_dict,
    from_json,
    json_schema,
    to_dict,
    to_json,
    validate,
)
from tools.report_schema import SCHEMA_PATH, schema_text
from tools.sample_report import sample_document

CONFIG = ConfigIdentity(source="remediator.yaml", sha256="ab" * 32, mode="install")
SUB = "00000000-0000-0000-0000-000000000001"
CLUSTER_TYPE = "Microsoft.ContainerService/managedClusters"


def cluster(name: str = "aks-1", **overrides: Any) -> ClusterRow:
    fields: dict[str, Any] = {
        "id": f"/subscriptions/{SUB}/resourceGroups/rg/providers/{CLUSTER_TYPE}/{name}",
        "name": name,
        "subscription_id": SUB,
        "resource_group": "rg",
        "region": "eastus",
        "selected": True,
        "reason": "selected",
        "state": "protected",
        "next_action": "None",
        "extension_state": "Succeeded",
        "matched_rule": MatchedRule(kind="include", tag="Backup", value="yes"),
    }
    fields.update(overrides)
    return ClusterRow(**fields)


def document(*clusters: ClusterRow) -> ReportDocument:
    return build_document(generated_at="2026-12-05T10:00:00Z", config=CONFIG, clusters=clusters)


def problems_of(data: object) -> tuple[str, ...]:
    with pytest.raises(ReportDocumentError) as caught:
        from_dict(data)
    return caught.value.problems


def test_sample_document_round_trips_through_json() -> None:
    doc = sample_document(clusters=120)
    assert from_json(to_json(doc)) == doc
    assert from_dict(json.loads(json.dumps(to_dict(doc)))) == doc


def test_json_keys_are_the_contracts_camel_case_names() -> None:
    data = to_dict(document(cluster()))
    assert list(data) == [
        "reportVersion",
        "generatedAt",
        "config",
        "totals",
        "groups",
        "clusters",
        "roleAssignmentHeadroom",  # optional, added to version 1 additively
    ]
    assert list(data["totals"]) == ["clusters", "selected", "extensionReady", "protected", "states"]
    assert list(data["totals"]["states"]) == list(STATES)
    assert list(data["groups"]) == ["bySubscription", "byRegion", "byManagementGroup", "byRule"]
    assert set(data["clusters"][0]) >= {
        "subscriptionId",
        "subscriptionName",
        "resourceGroup",
        "managementGroups",
        "matchedRule",
        "extensionState",
        "protectionState",
        "nextAction",
        "cause",
        "blockers",
    }


def test_optional_cluster_fields_may_be_missing() -> None:
    data = to_dict(document(cluster(extension_state=None, matched_rule=None)))
    row = data["clusters"][0]
    for key in (
        "subscriptionName",
        "managementGroups",
        "matchedRule",
        "extensionState",
        "protectionState",
        "blockers",
        "cause",
    ):
        del row[key]
    data["totals"]["extensionReady"] = 0
    data["groups"]["byRule"] = []
    parsed = from_dict(data)
    assert parsed.clusters[0].subscription_name is None
    assert parsed.clusters[0].blockers == ()
    assert parsed.clusters[0].management_groups == ()


def test_every_problem_is_reported_at_once_with_its_path() -> None:
    data = to_dict(document(cluster(), cluster("aks-2")))
    data["reportVersion"] = 2
    data["config"]["sha256"] = "not-a-hash"
    data["clusters"][0]["state"] = "pending"
    data["clusters"][1]["selected"] = "yes"
    data["clusters"][1]["colour"] = "blue"
    del data["totals"]["protected"]
    problems = problems_of(data)
    assert any(p.startswith("$.reportVersion: 2 is not one of 1") for p in problems)
    assert any(
        p.startswith("$.config.sha256: 'not-a-hash' is not 64 lower-case hex digits") for p in problems
    )
    assert any(p.startswith("$.clusters[0].state: 'pending' is not one of 'protected'") for p in problems)
    assert "$.clusters[1].selected: expected true or false, got a string" in problems
    assert any(p.startswith("$.clusters[1]: unknown field 'colour'") for p in problems)
    assert "$.totals.protected: missing" in problems
    assert len(problems) == 6


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (
            lambda d: d.__setitem__("generatedAt", "2026-12-05 10:00"),
            "$.generatedAt: '2026-12-05 10:00' is not an ISO",
        ),
        (
            lambda d: d.__setitem__("generatedAt", "2026-12-05T10:00:00"),
            "$.generatedAt: '2026-12-05T10:00:00' is not",
        ),
        (lambda d: d["totals"].__setitem__("clusters", -1), "$.totals.clusters: -1 is below the minimum 0"),
        (
            lambda d: d["totals"].__setitem__("clusters", True),
            "$.totals.clusters: expected an integer, got a boolean",
        ),
        (
            lambda d: d["totals"].__setitem__("clusters", 1.5),
            "$.totals.clusters: expected an integer, got a number",
        ),
        (lambda d: d.__setitem__("clusters", {}), "$.clusters: expected an array, got an object"),
        (
            lambda d: d["clusters"][0].__setitem__(
                "blockers", [{"code": "x", "kind": "soon", "remedy": "r"}]
            ),
            "$.clusters[0].blockers[0].kind: 'soon' is not one of 'human', 'transient', 'long-lived'",
        ),
        (
            lambda d: d["clusters"][0].__setitem__("matchedRule", {"kind": "include", "tag": "Backup"}),
            "$.clusters[0].matchedRule.value: missing",
        ),
        (lambda d: d["config"].__setitem__("mode", "yolo"), "$.config.mode: 'yolo' is not one of"),
    ],
)
def test_type_errors_name_the_field(mutate: Any, expected: str) -> None:
    data = to_dict(document(cluster()))
    mutate(data)
    problems = problems_of(data)
    assert any(p.startswith(expected) for p in problems), problems


def test_not_an_object_and_not_json() -> None:
    assert problems_of([]) == ("$: expected an object, got an array",)
    with pytest.raises(ReportDocumentError, match=r"\$: not JSON"):
        from_json("{nope", source="report.json")


def test_error_is_user_input_error_with_source_and_one_line() -> None:
    data = to_dict(document(cluster()))
    data["clusters"][0]["state"] = "pending"
    with pytest.raises(UserInputError) as caught:
        validate(data, source="report.json")
    message = str(caught.value)
    assert message.startswith("report.json: not a valid version 1 report document: $.clusters[0].state")
    assert "\n" not in message


def test_many_problems_are_summarised_in_the_message_but_all_kept() -> None:
    data = to_dict(document(*(cluster(f"aks-{i}") for i in range(8))))
    for row in data["clusters"]:
        row["state"] = "pending"
    with pytest.raises(ReportDocumentError) as caught:
        from_dict(data)
    assert len(caught.value.problems) == 8
    assert str(caught.value).endswith("(and 3 more)")


def test_build_document_is_consistent_and_groups_every_way() -> None:
    rows = (
        cluster("a", region="EastUS", management_groups=("mg-1", "mg-2"), subscription_name="Payments"),
        cluster("b", state="blocked", extension_state=None, region="westeurope", management_groups=("mg-1",)),
        cluster(
            "c",
            selected=False,
            reason="excluded-by-tag",
            state="notSelected",
            extension_state=None,
            matched_rule=MatchedRule(kind="exclude", tag="Backup", value="no"),
        ),
        cluster("d", state="installing", extension_state="Succeeded"),
    )
    doc = document(*rows)
    assert consistency_problems(doc) == []
    assert doc.totals.clusters == 4 and doc.totals.selected == 3
    assert doc.totals.extension_ready == 2  # a and d (d's storage grant is still missing: not protected)
    assert doc.totals.protected == 1
    assert [(g.key, g.label, g.total) for g in doc.groups.by_subscription] == [(SUB, "Payments", 4)]
    assert [(g.key, g.total) for g in doc.groups.by_region] == [("eastus", 3), ("westeurope", 1)]
    assert [(g.key, g.total) for g in doc.groups.by_management_group] == [("mg-1", 2), ("mg-2", 1)]
    assert [(g.key, g.label, g.total) for g in doc.groups.by_rule] == [
        ("Backup=no", "exclude Backup=no", 1),
        ("Backup=yes", "include Backup=yes", 3),
    ]


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (
            lambda d: d["totals"].__setitem__("clusters", 3),
            "$.totals.clusters: 3, but the document lists 2 clusters",
        ),
        (
            lambda d: d["totals"]["states"].__setitem__("protected", 2),
            "$.totals.states.protected: 2, but 1 clusters",
        ),
        (
            lambda d: d["totals"].__setitem__("selected", 1),
            "$.totals.selected: 1, but 2 clusters are selected",
        ),
        (
            lambda d: d["totals"].__setitem__("extensionReady", 2),
            "$.totals.extensionReady: 2, but 1 selected",
        ),
        (
            lambda d: d["totals"].__setitem__("protected", 0),
            "$.totals.protected: 0, but 1 clusters are protected",
        ),
        (
            lambda d: d["clusters"][0].__setitem__("selected", False),
            "$.clusters[0]: selected is false but state",
        ),
        (
            lambda d: d["groups"]["byRule"][0].__setitem__("total", 5),
            "$.groups.byRule[0].total: 5, but its states",
        ),
        (lambda d: d["groups"]["byRegion"].pop(), "$.groups.byRegion: no group for region 'westeurope'"),
        (
            lambda d: d["groups"]["bySubscription"][0]["states"].__setitem__("blocked", 0),
            "$.groups.bySubscription[0]: the counts of",
        ),
        (
            lambda d: d["groups"]["byManagementGroup"].append(
                copy.deepcopy(d["groups"]["byManagementGroup"][0])
            ),
            "$.groups.byManagementGroup[1].key: 'mg-1' appears twice",
        ),
    ],
)
def test_numbers_that_do_not_add_up_are_rejected(mutate: Any, expected: str) -> None:
    doc = document(
        cluster("a", management_groups=("mg-1",)),
        cluster("b", state="blocked", extension_state=None, region="westeurope"),
    )
    data = to_dict(doc)
    mutate(data)
    problems = problems_of(data)
    assert any(p.startswith(expected) for p in problems), problems


def test_state_counts_read_by_state_name() -> None:
    counts = StateCounts.tally(["gaveUp", "gaveUp", "notStarted"])
    assert counts["gaveUp"] == 2 and counts.gave_up == 2
    assert counts["notStarted"] == 1 and counts.total == 3
    assert dict(counts.items()) == {s: {"gaveUp": 2, "notStarted": 1}.get(s, 0) for s in STATES}


def test_committed_schema_is_current() -> None:
    committed = SCHEMA_PATH.read_text(encoding="utf-8")
    assert committed == schema_text(), "docs/report.schema.json is stale: run `python -m tools.report_schema`"


def test_schema_is_valid_draft_2020_12_and_accepts_a_real_document() -> None:
    schema = json_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    jsonschema.Draft202012Validator(schema).validate(to_dict(sample_document(clusters=60)))


@pytest.mark.parametrize(
    "mutate",
    [
        lambda d: d.__setitem__("reportVersion", 2),
        lambda d: d["clusters"][0].__setitem__("state", "pending"),
        lambda d: d["clusters"][0].__setitem__("extra", 1),
        lambda d: d["config"].__setitem__("sha256", "ABC"),
        lambda d: d["totals"].__setitem__("clusters", -1),
        lambda d: d["clusters"][0].pop("name"),
        lambda d: d["clusters"][0].__setitem__("blockers", [{"code": "x", "kind": "later", "remedy": ""}]),
        lambda d: d["clusters"][0].__setitem__("cause", 3),
    ],
)
def test_schema_rejects_what_the_validator_rejects(mutate: Any) -> None:
    data = to_dict(document(cluster()))
    mutate(data)
    with pytest.raises(ReportDocumentError):
        from_dict(data)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.Draft202012Validator(json_schema()).validate(data)


def test_schema_file_is_linked_from_the_docs() -> None:
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    assert "docs/report.schema.json" in readme


def headroom(**overrides: Any) -> RoleAssignmentHeadroom:
    fields: dict[str, Any] = {
        "subscription_id": "3f2b8c1e-6d4a-4f7b-9c2e-8a1d5e7f0b24",
        "subscription_name": "Payments Production",
        "existing": 3990,
        "needed": 25,
        "limit": 4000,
        "headroom": 10,
        "overflow": True,
    }
    fields.update(overrides)
    return RoleAssignmentHeadroom(**fields)


def test_role_assignment_headroom_is_optional_and_round_trips() -> None:
    plain = to_dict(document(cluster()))
    del plain["roleAssignmentHeadroom"]
    assert from_dict(plain).role_assignment_headroom == ()  # a version 1 document without it stays valid
    doc = build_document(
        generated_at="2026-12-05T10:00:00Z",
        config=CONFIG,
        clusters=[cluster()],
        role_assignment_headroom=[headroom()],
    )
    assert from_json(to_json(doc)) == doc
    assert to_dict(doc)["roleAssignmentHeadroom"][0]["overflow"] is True


def test_role_assignment_headroom_arithmetic_is_checked() -> None:
    data = to_dict(document(cluster()))
    data["roleAssignmentHeadroom"] = [
        {**to_dict_headroom(headroom()), "headroom": 11},
        {
            **to_dict_headroom(headroom(needed=5, overflow=False)),
            "subscriptionId": "0" * 8 + "-0000-0000-0000-" + "0" * 12,
        },
        {**to_dict_headroom(headroom(needed=5)), "subscriptionId": "0" * 8 + "-0000-0000-0000-" + "0" * 12},
    ]
    problems = problems_of(data)
    assert any("roleAssignmentHeadroom[0].headroom: 11" in p for p in problems)
    assert any("roleAssignmentHeadroom[2].subscriptionId" in p and "twice" in p for p in problems)
    assert any(
        "roleAssignmentHeadroom[2].overflow: true, but 5 needed against 10 headroom" in p for p in problems
    )
    assert not any("roleAssignmentHeadroom[1]" in p for p in problems)


def to_dict_headroom(item: RoleAssignmentHeadroom) -> dict[str, Any]:
    return to_dict(
        build_document(
            generated_at="2026-12-05T10:00:00Z", config=CONFIG, clusters=[], role_assignment_headroom=[item]
        )
    )["roleAssignmentHeadroom"][0]
