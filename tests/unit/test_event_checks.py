"""Event checks beyond shape (issue 15, item 4): policy states from the future, and provenance.

The events are the official Event Grid samples (``shared/azure-examples/eventgrid``) re-targeted at a cluster,
so the field layout is Azure's; the clock is injected.
"""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from remediator.core.config import Scope
from remediator.core.events import (
    DEFAULT_MAX_EVENT_AGE,
    ClusterWriteEvent,
    EventProvenanceError,
    MalformedEventError,
    PolicyStateEvent,
    ProvenanceRules,
    check_provenance,
    parse_cluster_write,
    parse_policy_state,
)

SUB = "3f2b8c1e-6d4a-4f7b-9c2e-8a1d5e7f0b24"
OTHER_SUB = "9a7e4d21-0c3b-4e8f-a6d5-2b1c9f8e7d60"
TENANT = "72f988bf-86f1-41af-91ab-2d7cd011db47"
CLUSTER = (
    f"/subscriptions/{SUB}/resourcegroups/rg-aks/providers/Microsoft.ContainerService/managedClusters/aks1"
)
ASSIGNMENT = f"/subscriptions/{SUB}/providers/Microsoft.Authorization/policyAssignments/aks-backup"
DINE_P3 = "/providers/Microsoft.Authorization/policyDefinitions/bdff5235-9f40-4a32-893f-38a03d5d607c"
NOW = datetime(2026, 12, 5, 12, 0, tzinfo=UTC)
SCOPE = Scope.model_validate({"subscriptions": [SUB]})


def clock() -> datetime:
    return NOW


def _iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def _sample(azure_examples: Path, name: str) -> dict[str, Any]:
    [event] = json.loads((azure_examples / "eventgrid" / name).read_text())
    assert isinstance(event, dict)
    return event


def write_event(azure_examples: Path, *, cloud: bool = False, at: datetime = NOW) -> dict[str, Any]:
    name = "resource_write_success_cloudevent.json" if cloud else "resource_write_success.json"
    text = json.dumps(_sample(azure_examples, name))
    text = text.replace("{subscription-id}", SUB).replace("{resource-group}", "rg-aks")
    text = text.replace("{tenant-id}", TENANT)
    event: dict[str, Any] = json.loads(text)
    event["subject"] = CLUSTER
    event["data"]["resourceUri"] = CLUSTER
    event["data"]["operationName"] = "Microsoft.ContainerService/managedClusters/write"
    event["time" if cloud else "eventTime"] = _iso(at)
    return event


def policy_event(
    azure_examples: Path, *, cloud: bool = False, at: datetime = NOW, timestamp: datetime | None = None
) -> dict[str, Any]:
    name = "policy_state_changed_cloudevent.json" if cloud else "policy_state_changed.json"
    text = json.dumps(_sample(azure_examples, name))
    for placeholder, value in {
        "/subscriptions/<SubscriptionID>/resourceGroups/<ResourceGroup>/providers/<ProviderNamespace>/"
        "<ResourceType>/<ResourceName>": CLUSTER,
        "<policy-assignment-scope>/providers/microsoft.authorization/policyassignments/"
        "<policy-assignment-name>": ASSIGNMENT,
        "<policy-definition-scope>/providers/microsoft.authorization/policydefinitions/"
        "<policy-definition-name>": DINE_P3,
        "<SubscriptionID>": SUB,
        "<subscription-id>": SUB,
    }.items():
        text = text.replace(placeholder, value)
    event: dict[str, Any] = json.loads(text)
    event["time" if cloud else "eventTime"] = _iso(at)
    event["data"]["timestamp"] = _iso(timestamp or at - timedelta(seconds=1))
    return event


def _parsed(event: dict[str, Any]) -> ClusterWriteEvent | PolicyStateEvent:
    parsed = (
        parse_cluster_write(event)
        if "resourceUri" in event["data"]
        else parse_policy_state(event, clock=clock)
    )
    assert isinstance(parsed, ClusterWriteEvent | PolicyStateEvent)
    return parsed


def _check(event: dict[str, Any], rules: ProvenanceRules | None = None) -> None:
    check_provenance(
        event, _parsed(event), rules=rules or ProvenanceRules(scope=SCOPE, tenant_id=TENANT), clock=clock
    )


# ------------------------------------------------------------------------ policy states from the future


@pytest.mark.parametrize("cloud", [False, True])
def test_a_policy_state_from_the_future_is_malformed_naming_data_timestamp(
    azure_examples: Path, cloud: bool
) -> None:
    """The 9999 poisoning: a state dated in the future would make every real later state look stale."""
    for timestamp in (datetime(9999, 12, 31, tzinfo=UTC), NOW + timedelta(minutes=6)):
        event = policy_event(azure_examples, cloud=cloud, timestamp=timestamp)
        with pytest.raises(MalformedEventError) as raised:
            parse_policy_state(event, clock=clock)
        assert raised.value.field == "data.timestamp" and "future" in raised.value.message


def test_clock_skew_within_the_allowance_is_accepted(azure_examples: Path) -> None:
    event = policy_event(azure_examples, timestamp=NOW + timedelta(minutes=4, seconds=59))
    parsed = parse_policy_state(event, clock=clock)
    assert isinstance(parsed, PolicyStateEvent) and parsed.event_time == NOW
    with pytest.raises(MalformedEventError):
        parse_policy_state(event, clock=clock, max_future_skew=timedelta(minutes=1))


def test_the_default_clock_is_the_real_one(azure_examples: Path) -> None:
    event = policy_event(azure_examples, timestamp=datetime.now(UTC) + timedelta(days=1))
    with pytest.raises(MalformedEventError, match="future"):
        parse_policy_state(event)
    assert isinstance(
        parse_policy_state(policy_event(azure_examples, at=datetime.now(UTC))), PolicyStateEvent
    )


# ------------------------------------------------------------------------------------------ provenance


@pytest.mark.parametrize("cloud", [False, True])
def test_official_samples_retargeted_at_an_in_scope_cluster_pass(azure_examples: Path, cloud: bool) -> None:
    _check(write_event(azure_examples, cloud=cloud))
    _check(policy_event(azure_examples, cloud=cloud))


def _with(event: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    event = copy.deepcopy(event)
    target = event
    *parents, leaf = path.split(".")
    for key in parents:
        target = target[key]
    if value is _DROP:
        del target[leaf]
    else:
        target[leaf] = value
    return event


_DROP = object()
OTHER_CLUSTER = CLUSTER.replace("aks1", "aks2")


@pytest.mark.parametrize(
    ("path", "value", "field"),
    [
        ("subject", OTHER_CLUSTER, "subject"),  # subject disagrees with data.resourceUri
        ("topic", f"/subscriptions/{OTHER_SUB}", "topic"),
        ("topic", _DROP, "topic"),
        ("topic", "not-an-id", "topic"),
        ("topic", "/providers/Microsoft.Management/managementGroups/mg1", "topic"),
        ("data.subscriptionId", OTHER_SUB, "data.subscriptionId"),
        ("data.subscriptionId", 7, "data.subscriptionId"),
        ("data.tenantId", "00000000-0000-0000-0000-000000000000", "data.tenantId"),
        ("eventTime", _iso(NOW - DEFAULT_MAX_EVENT_AGE - timedelta(seconds=1)), "eventTime"),
        ("eventTime", _iso(NOW + timedelta(minutes=6)), "eventTime"),
    ],
)
def test_cluster_write_provenance_mismatches_are_rejected_naming_the_field(
    azure_examples: Path, path: str, value: Any, field: str
) -> None:
    event = _with(write_event(azure_examples), path, value)
    with pytest.raises(EventProvenanceError) as raised:
        _check(event)
    assert raised.value.field == field
    assert isinstance(
        raised.value, MalformedEventError
    )  # the trigger already drops these without a traceback


@pytest.mark.parametrize(
    ("path", "value", "field"),
    [
        ("source", f"/subscriptions/{OTHER_SUB}/resourceGroups/rg-aks", "source"),
        ("source", _DROP, "source"),
        ("time", _iso(NOW - timedelta(days=30)), "time"),
    ],
)
def test_cloud_event_provenance_uses_source_and_time(
    azure_examples: Path, path: str, value: Any, field: str
) -> None:
    event = _with(write_event(azure_examples, cloud=True), path, value)
    with pytest.raises(EventProvenanceError) as raised:
        _check(event)
    assert raised.value.field == field


@pytest.mark.parametrize(
    ("path", "value", "field"),
    [
        ("topic", f"/subscriptions/{OTHER_SUB}", "topic"),
        ("data.subscriptionId", OTHER_SUB, "data.subscriptionId"),
        ("eventTime", _iso(NOW - timedelta(days=400)), "eventTime"),
    ],
)
def test_policy_state_provenance_mismatches_are_rejected(
    azure_examples: Path, path: str, value: Any, field: str
) -> None:
    event = _with(policy_event(azure_examples, at=NOW - timedelta(minutes=1)), path, value)
    parsed = parse_policy_state(event, clock=clock)
    assert isinstance(parsed, PolicyStateEvent)
    with pytest.raises(EventProvenanceError) as raised:
        check_provenance(event, parsed, rules=ProvenanceRules(scope=SCOPE), clock=clock)
    assert raised.value.field == field


def test_subject_and_resource_uri_compare_by_azures_case_rule(azure_examples: Path) -> None:
    _check(
        _with(
            write_event(azure_examples), "subject", CLUSTER.upper().replace("SUBSCRIPTIONS", "subscriptions")
        )
    )
    spoof = CLUSTER.replace("rg-aks", "rg-a\u212as")
    with pytest.raises(EventProvenanceError, match="resourceUri"):
        _check(_with(write_event(azure_examples), "subject", spoof))


def test_scope_and_tenant(azure_examples: Path) -> None:
    event = write_event(azure_examples)
    elsewhere = Scope.model_validate({"subscriptions": [OTHER_SUB]})
    with pytest.raises(EventProvenanceError, match="not in the configured scope"):
        _check(event, ProvenanceRules(scope=elsewhere))
    excluded = Scope.model_validate({"managementGroups": ["mg1"], "excludeSubscriptions": [SUB]})
    with pytest.raises(EventProvenanceError, match="not in the configured scope"):
        _check(event, ProvenanceRules(scope=excluded))
    by_group = Scope.model_validate({"resourceGroups": [f"/subscriptions/{SUB.upper()}/resourceGroups/rg-x"]})
    _check(event, ProvenanceRules(scope=by_group))
    _check(
        event, ProvenanceRules(scope=Scope.model_validate({"managementGroups": ["mg1"]}))
    )  # left to the handler
    _check(event, ProvenanceRules())  # nothing configured: only the fields' agreement and the age are checked
    _check(
        _with(event, "data.tenantId", "00000000-0000-0000-0000-000000000000"), ProvenanceRules(scope=SCOPE)
    )
    _check(_with(event, "data.tenantId", TENANT.upper()), ProvenanceRules(tenant_id=TENANT))


def test_max_age_is_configurable(azure_examples: Path) -> None:
    event = write_event(azure_examples, at=NOW - timedelta(hours=2))
    _check(event)
    with pytest.raises(EventProvenanceError, match="replay"):
        _check(event, ProvenanceRules(max_age=timedelta(hours=1)))
