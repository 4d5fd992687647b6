"""Event parsing: official samples in both schemas, cluster/tag writes, policy states, malformed input."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from remediator.core.catalog import DEFAULT_POLICY_DEFINITIONS, POLICY_DEFINITION_IDS
from remediator.core.errors import UserInputError
from remediator.core.events import (
    ClusterWriteEvent,
    IgnoredEvent,
    MalformedEventError,
    PolicyStateEvent,
    parse_cluster_write,
    parse_policy_state,
    parse_time,
)

SUB = "3f2b8c1e-6d4a-4f7b-9c2e-8a1d5e7f0b24"
CLUSTER = (
    f"/subscriptions/{SUB}/resourcegroups/rg-aks/providers/Microsoft.ContainerService/managedClusters/aks1"
)
DINE_P3 = "/providers/Microsoft.Authorization/policyDefinitions/bdff5235-9f40-4a32-893f-38a03d5d607c"
ASSIGNMENT = f"/subscriptions/{SUB}/providers/Microsoft.Authorization/policyAssignments/aks-backup"


def sample(azure_examples: Path, name: str) -> dict[str, Any]:
    events = json.loads((azure_examples / "eventgrid" / name).read_text())
    assert isinstance(events, list) and len(events) == 1
    event: dict[str, Any] = events[0]
    return event


def as_cluster_write(event: dict[str, Any], *, resource: str = CLUSTER) -> dict[str, Any]:
    """The official sample re-targeted at a cluster (the samples write storage accounts and topics)."""
    event = copy.deepcopy(event)
    event["subject"] = resource
    event["data"]["resourceUri"] = resource
    event["data"]["operationName"] = "Microsoft.ContainerService/managedClusters/write"
    return event


@pytest.mark.parametrize(
    "name",
    [
        "resource_write_success.json",
        "resource_write_success_cloudevent.json",
        "ResourceWriteSuccessEvent.json",
    ],
)
def test_official_write_samples_for_other_resources_are_ignored(azure_examples: Path, name: str) -> None:
    result = parse_cluster_write(sample(azure_examples, name))
    assert isinstance(result, IgnoredEvent)
    assert "is not Microsoft.ContainerService/managedClusters/write" in result.reason


@pytest.mark.parametrize("name", ["resource_write_success.json", "resource_write_success_cloudevent.json"])
def test_official_write_samples_retargeted_at_a_cluster(azure_examples: Path, name: str) -> None:
    event = as_cluster_write(sample(azure_examples, name))
    result = parse_cluster_write(event)
    assert isinstance(result, ClusterWriteEvent)
    assert result.cluster_id.key == CLUSTER.lower()
    assert result.event_id == "4db48cba-50a2-455a-93b4-de41a3b5b7f6"
    assert result.event_time == datetime(2018, 7, 19, 18, 38, 4, 611735, tzinfo=UTC)
    assert result.correlation_id == "{ID}"


def test_operation_name_is_case_insensitive_and_subject_is_the_fallback(azure_examples: Path) -> None:
    event = as_cluster_write(sample(azure_examples, "resource_write_success.json"))
    event["data"]["operationName"] = "MICROSOFT.CONTAINERSERVICE/MANAGEDCLUSTERS/WRITE"
    del event["data"]["resourceUri"]
    result = parse_cluster_write(event)
    assert isinstance(result, ClusterWriteEvent)
    assert result.cluster_id.name == "aks1"


@pytest.mark.parametrize(
    ("operation", "resource"),
    [
        ("Microsoft.ContainerService/managedClusters/agentPools/write", f"{CLUSTER}/agentPools/np1"),
        ("Microsoft.ContainerService/managedClusters/delete", CLUSTER),
        ("Microsoft.KubernetesConfiguration/extensions/write", f"{CLUSTER}/providers/x.y/extensions/e"),
        (
            "Microsoft.Resources/tags/write",
            f"/subscriptions/{SUB}/resourceGroups/rg/providers/Microsoft.Resources/tags/default",
        ),
    ],
)
def test_other_operations_are_ignored(azure_examples: Path, operation: str, resource: str) -> None:
    event = as_cluster_write(sample(azure_examples, "resource_write_success.json"), resource=resource)
    event["data"]["operationName"] = operation
    assert isinstance(parse_cluster_write(event), IgnoredEvent)


def test_tags_api_write_on_a_cluster_counts(azure_examples: Path) -> None:
    uri = f"{CLUSTER}/providers/Microsoft.Resources/tags/default"
    event = as_cluster_write(sample(azure_examples, "resource_write_success.json"), resource=uri)
    event["data"]["operationName"] = "Microsoft.Resources/tags/write"
    result = parse_cluster_write(event)
    assert isinstance(result, ClusterWriteEvent)
    assert result.cluster_id.key == CLUSTER.lower()
    assert result.operation == "Microsoft.Resources/tags/write"


def test_other_event_types_are_ignored(azure_examples: Path) -> None:
    assert isinstance(parse_cluster_write(sample(azure_examples, "policy_state_created.json")), IgnoredEvent)
    assert isinstance(
        parse_cluster_write(sample(azure_examples, "subscription_validation_event.json")), IgnoredEvent
    )
    assert isinstance(parse_policy_state(sample(azure_examples, "resource_write_success.json")), IgnoredEvent)


def fill_policy_placeholders(event: dict[str, Any]) -> dict[str, Any]:
    """The official policy samples use <placeholders>; put real ids in their place."""
    text = json.dumps(event)
    for placeholder, value in {
        "/subscriptions/<SubscriptionID>/resourceGroups/<ResourceGroup>/providers/<ProviderNamespace>/"
        "<ResourceType>/<ResourceName>": CLUSTER,
        "<policy-assignment-scope>/providers/microsoft.authorization/policyassignments/"
        "<policy-assignment-name>": ASSIGNMENT,
        "<policy-definition-scope>/providers/microsoft.authorization/policydefinitions/"
        "<policy-definition-name>": DINE_P3.lower(),
        "<SubscriptionID>": SUB,
        "<subscription-id>": SUB,
    }.items():
        text = text.replace(placeholder, value)
    filled: dict[str, Any] = json.loads(text)
    return filled


@pytest.mark.parametrize(
    "name",
    [
        "policy_state_created.json",
        "policy_state_changed.json",
        "policy_state_created_cloudevent.json",
        "policy_state_changed_cloudevent.json",
    ],
)
def test_official_policy_samples(azure_examples: Path, name: str) -> None:
    raw = sample(azure_examples, name)
    with pytest.raises(MalformedEventError) as info:  # as published, the subject is a <placeholder>
        parse_policy_state(raw)
    assert info.value.field == "subject"

    result = parse_policy_state(fill_policy_placeholders(raw))
    assert isinstance(result, PolicyStateEvent)
    assert result.resource_id.key == CLUSTER.lower()
    assert result.targets_cluster
    assert result.compliance_state == "NonCompliant" and result.non_compliant
    assert result.policy_assignment_id.name == "aks-backup"
    assert result.policy_definition_id.key in DEFAULT_POLICY_DEFINITIONS  # Policy 3: acted on
    assert result.timestamp == datetime(2021, 3, 27, 18, 37, 42, 449695, tzinfo=UTC)
    assert result.event_id == "5829794FCB5075FCF585476619577B5A5A30E52C84842CBD4E2AD73996714C4C"


def test_policy_state_deleted_is_ignored(azure_examples: Path) -> None:
    event = fill_policy_placeholders(sample(azure_examples, "policy_state_changed.json"))
    event["eventType"] = "Microsoft.PolicyInsights.PolicyStateDeleted"
    assert isinstance(parse_policy_state(event), IgnoredEvent)


def test_backup_policy_ids() -> None:
    """The policies acted on by default: Policy 1, 3 and 4 (Policy 2 is about backup instances)."""
    assert len(POLICY_DEFINITION_IDS) == 4
    acted_on = {POLICY_DEFINITION_IDS[role].lower() for role in POLICY_DEFINITION_IDS} - {
        POLICY_DEFINITION_IDS["backup-enabled-audit"].lower()
    }
    assert acted_on == DEFAULT_POLICY_DEFINITIONS
    assert "/providers/microsoft.authorization/policydefinitions/some-other" not in DEFAULT_POLICY_DEFINITIONS


@pytest.mark.parametrize(
    ("mutate", "field"),
    [
        (lambda e: e.pop("id"), "id"),
        (lambda e: e.__setitem__("id", ""), "id"),
        (lambda e: e.pop("eventType"), "eventType"),
        (lambda e: e.__setitem__("eventTime", "yesterday"), "eventTime"),
        (lambda e: e.__setitem__("eventTime", "2021-03-27T18:37:42"), "eventTime"),  # no timezone
        (lambda e: e.__setitem__("data", "text"), "data"),
        (lambda e: e.__setitem__("subject", 7), "subject"),
        (lambda e: e["data"].pop("operationName"), "data.operationName"),
        (lambda e: e["data"].__setitem__("resourceUri", "/subscriptions/x"), "data.resourceUri"),
        (
            lambda e: e["data"].__setitem__("resourceUri", f"/subscriptions/{SUB}/resourceGroups/rg"),
            "data.resourceUri",
        ),
        (lambda e: (e["data"].pop("resourceUri"), e.__setitem__("subject", "nope")), "subject"),
        (lambda e: (e["data"].pop("resourceUri"), e.pop("subject")), "data.resourceUri"),
        (lambda e: e["data"].__setitem__("correlationId", 5), "data.correlationId"),
    ],
)
def test_malformed_cluster_write_names_the_field(azure_examples: Path, mutate: Any, field: str) -> None:
    event = as_cluster_write(sample(azure_examples, "resource_write_success.json"))
    mutate(event)
    with pytest.raises(MalformedEventError) as info:
        parse_cluster_write(event)
    assert info.value.field == field
    assert isinstance(info.value, UserInputError)


@pytest.mark.parametrize(
    ("mutate", "field"),
    [
        (lambda e: e.pop("time"), "time"),
        (lambda e: e.pop("type"), "type"),
        (lambda e: e.__setitem__("specversion", "0.3"), "specversion"),
        (lambda e: e["data"].pop("complianceState"), "data.complianceState"),
        (lambda e: e["data"].__setitem__("policyAssignmentId", "x"), "data.policyAssignmentId"),
        (lambda e: e["data"].__setitem__("policyDefinitionId", None), "data.policyDefinitionId"),
        (lambda e: e["data"].__setitem__("timestamp", "2021-13-01T00:00:00Z"), "data.timestamp"),
        (lambda e: e.pop("subject"), "subject"),
    ],
)
def test_malformed_policy_state_names_the_field(azure_examples: Path, mutate: Any, field: str) -> None:
    event = fill_policy_placeholders(sample(azure_examples, "policy_state_changed_cloudevent.json"))
    mutate(event)
    with pytest.raises(MalformedEventError) as info:
        parse_policy_state(event)
    assert info.value.field == field


@pytest.mark.parametrize("event", [None, [], "event", 1])
def test_non_object_events(event: object) -> None:
    with pytest.raises(MalformedEventError, match="JSON object"):
        parse_cluster_write(event)
    with pytest.raises(MalformedEventError, match="JSON object"):
        parse_policy_state(event)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2021-03-27T18:37:42.4496956Z", datetime(2021, 3, 27, 18, 37, 42, 449695, tzinfo=UTC)),
        ("2021-03-27T18:37:42Z", datetime(2021, 3, 27, 18, 37, 42, tzinfo=UTC)),
        (
            "2021-03-27T20:37:42.1+02:00",
            datetime(2021, 3, 27, 20, 37, 42, 100000, tzinfo=timezone(timedelta(hours=2))),
        ),
    ],
)
def test_parse_time(text: str, expected: datetime) -> None:
    parsed = parse_time(text, field="t")
    assert parsed == expected
    assert parsed.tzinfo is not None


def test_policy_timestamps_order_events(azure_examples: Path) -> None:
    older = fill_policy_placeholders(sample(azure_examples, "policy_state_created.json"))
    newer = copy.deepcopy(older)
    newer["data"]["timestamp"] = "2021-03-27T18:37:43.0000001Z"
    a, b = parse_policy_state(older), parse_policy_state(newer)
    assert isinstance(a, PolicyStateEvent) and isinstance(b, PolicyStateEvent)
    assert sorted([b, a], key=lambda event: event.timestamp) == [a, b]
