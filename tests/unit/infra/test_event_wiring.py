"""The Event Grid wiring in infra/: system topics per subscription, filtered event subscriptions that retry
and dead-letter, pointed at functions that exist in function_app.py."""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from tests.fixtures.iac import ROOT
from tests.unit.infra.model import Resource, interpolate, parameter_default, resources

EVENT_SUBSCRIPTION = "Microsoft.EventGrid/systemTopics/eventSubscriptions"
SYSTEM_TOPIC = "Microsoft.EventGrid/systemTopics"
FUNCTION_NAME = re.compile(r"@app\.function_name\(\s*(?:name\s*=\s*)?[\"']([A-Za-z_][A-Za-z0-9_]*)[\"']\s*\)")


def function_names() -> set[str]:
    return set(FUNCTION_NAME.findall((ROOT / "function_app.py").read_text()))


def subscriptions_by_function(templates: Mapping[Path, Mapping[str, Any]]) -> dict[str, Resource]:
    found: dict[str, Resource] = {}
    for sub in resources(templates, EVENT_SUBSCRIPTION):
        destination = sub.properties["destination"]
        assert destination["endpointType"] == "AzureFunction", (
            f"{sub.symbol}: use the AzureFunction endpoint type"
        )
        resource_id = interpolate(destination["properties"]["resourceId"], templates[sub.file])
        match = re.fullmatch(r"\$\{functionAppId\}/functions/([A-Za-z_][A-Za-z0-9_]*)", resource_id)
        assert match, f"{sub.symbol}: endpoint {resource_id!r} is not <site id>/functions/<name>"
        found[match.group(1)] = sub
    return found


def test_two_event_subscriptions_target_existing_functions(infra_templates: dict[Path, Any]) -> None:
    subs = subscriptions_by_function(infra_templates)
    assert set(subs) == {"on_cluster_write", "on_policy_state"}
    missing = set(subs) - function_names()
    assert not missing, f"function_app.py has no function named {sorted(missing)}"


def test_cluster_write_subscription_filter(infra_templates: dict[Path, Any]) -> None:
    sub = subscriptions_by_function(infra_templates)["on_cluster_write"]
    event_filter = sub.properties["filter"]
    assert event_filter["includedEventTypes"] == ["Microsoft.Resources.ResourceWriteSuccess"]
    assert event_filter["advancedFilters"] == [
        {
            "operatorType": "StringIn",
            "key": "data.operationName",
            "values": ["Microsoft.ContainerService/managedClusters/write"],
        }
    ]


def test_policy_state_subscription_filter(infra_templates: dict[Path, Any]) -> None:
    sub = subscriptions_by_function(infra_templates)["on_policy_state"]
    event_filter = sub.properties["filter"]
    assert sorted(event_filter["includedEventTypes"]) == [
        "Microsoft.PolicyInsights.PolicyStateChanged",
        "Microsoft.PolicyInsights.PolicyStateCreated",
    ]
    # Event Grid allows 25 advanced-filter values per subscription and 512 characters per value.
    values = [v for f in event_filter.get("advancedFilters", []) for v in f["values"]]
    assert len(values) <= 25 and all(len(v) <= 512 for v in values)


@pytest.mark.parametrize("function", ["on_cluster_write", "on_policy_state"])
def test_subscriptions_retry_and_dead_letter_with_identity(
    infra_templates: dict[Path, Any], function: str
) -> None:
    sub = subscriptions_by_function(infra_templates)[function]
    props = sub.properties
    template = infra_templates[sub.file]
    retry = props["retryPolicy"]
    attempts = parameter_default(template, retry["maxDeliveryAttempts"])
    ttl = parameter_default(template, retry["eventTimeToLiveInMinutes"])
    assert 1 <= attempts <= 30 and 1 <= ttl <= 1440
    # Shared keys are off on the storage account, so dead-lettering must use the topic's identity.
    assert "deadLetterDestination" not in props
    dead_letter = props["deadLetterWithResourceIdentity"]
    assert dead_letter["identity"]["type"] == "SystemAssigned"
    destination = dead_letter["deadLetterDestination"]
    assert destination["endpointType"] == "StorageBlob"
    assert destination["properties"]["blobContainerName"] == "deadLetterContainerName"
    assert props["eventDeliverySchema"] == "EventGridSchema"
    assert props["destination"]["properties"]["maxEventsPerBatch"] == 1


def test_system_topics_cover_both_sources_with_an_identity(infra_templates: dict[Path, Any]) -> None:
    topics = resources(infra_templates, SYSTEM_TOPIC)
    assert sorted(t.properties["topicType"] for t in topics) == [
        "Microsoft.PolicyInsights.PolicyStates",
        "Microsoft.Resources.Subscriptions",
    ]
    for topic in topics:
        assert topic.config["location"] == "global"
        assert topic.config["identity"]["type"] == "SystemAssigned"
        source = topic.properties["source"]
        assert source["function"]["type"] == "subscription" and source["function"]["property_name"] == "id"


def test_event_subscriptions_are_not_in_the_provision_template(infra_templates: dict[Path, Any]) -> None:
    # Created after code deploy (events.bicep, azd postdeploy), never by main.bicep's module tree.
    main_modules = _module_files(infra_templates, Path("main.bicep"))
    event_files = {sub.file for sub in resources(infra_templates, EVENT_SUBSCRIPTION)}
    assert event_files and not (event_files & main_modules)
    assert event_files <= _module_files(infra_templates, Path("events.bicep"))


def _module_files(templates: Mapping[Path, Mapping[str, Any]], root: Path) -> set[Path]:
    """root and every module file it reaches, transitively."""
    seen: set[Path] = set()
    stack = [root]
    while stack:
        current = stack.pop()
        if current in seen:
            continue
        seen.add(current)
        for module in (templates[current].get("modules") or {}).values():
            target = (current.parent / module["detail"]["path"]).as_posix()
            stack.append(Path(_normalise(target)))
    return seen


def _normalise(path: str) -> str:
    parts: list[str] = []
    for part in path.split("/"):
        if part == "..":
            parts.pop()
        elif part not in ("", "."):
            parts.append(part)
    return "/".join(parts)


def test_poison_alert_watches_the_function_bound_to_the_poison_queue(
    infra_templates: dict[Path, Any],
) -> None:
    watched = parameter_default(infra_templates[Path("main.bicep")], "poisonFunctionName")
    source = (ROOT / "function_app.py").read_text()
    # The decorator block of each function: from its @app.function_name to the def.
    blocks = re.findall(r"@app\.function_name\(\s*[\"'](\w+)[\"']\s*\)(.*?)\ndef ", source, flags=re.DOTALL)
    poison = [name for name, block in blocks if re.search(r"queue_name=[\"'][^\"']*-poison[\"']", block)]
    assert poison == [watched]


def test_outcome_topic_schema_matches_the_publisher(infra_templates: dict[Path, Any]) -> None:
    publisher = (ROOT / "remediator" / "adapters" / "publisher.py").read_text()
    sends = {
        "EventGridSchema": bool(re.search(r"\bEventGridEvent\(", publisher)),
        "CloudEventSchemaV1_0": bool(re.search(r"\bCloudEvent\(", publisher)),
    }
    assert sum(sends.values()) == 1, f"publisher.py should build exactly one event type: {sends}"
    expected = next(schema for schema, used in sends.items() if used)
    assert parameter_default(infra_templates[Path("main.bicep")], "outcomeTopicInputSchema") == expected
    assert parameter_default(infra_templates[Path("app/outcome-topic.bicep")], "inputSchema") == expected


def test_the_wiring_step_creates_what_the_bicep_creates(infra_templates: dict[Path, Any]) -> None:
    """remediator/core/event_wiring.py declares the event subscriptions the timer's wiring step creates for
    subscriptions that join a managed management group; they must be the Bicep's, field for field (the
    Terraform's are held to the Bicep's by test_parity.py). Dead-lettering is the one deliberate difference
    (docs/deploy.md, "Wiring that follows the scope")."""
    from remediator.core.event_wiring import EVENT_SUBSCRIPTIONS
    from tests.unit.infra.parity import bicep_event_subscriptions

    bicep = bicep_event_subscriptions(infra_templates)
    assert {spec.function for spec in EVENT_SUBSCRIPTIONS} == set(bicep)
    for spec in EVENT_SUBSCRIPTIONS:
        deployed = bicep[spec.function]
        assert spec.name == deployed["name"]
        assert spec.filter_json() == deployed["filter"]
        assert spec.event_delivery_schema == deployed["eventDeliverySchema"]
        assert spec.max_events_per_batch == deployed["maxEventsPerBatch"]
        assert spec.preferred_batch_size_in_kilobytes == deployed["preferredBatchSizeInKilobytes"]
        assert spec.max_delivery_attempts == deployed["maxDeliveryAttempts"]
        assert spec.event_time_to_live_in_minutes == deployed["eventTimeToLiveInMinutes"]
    topics = {r.properties["topicType"] for r in resources(infra_templates, SYSTEM_TOPIC)}
    assert {spec.topic_type for spec in EVENT_SUBSCRIPTIONS} == topics
