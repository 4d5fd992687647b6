"""The Event Grid wiring of one managed subscription, as data: which system topics and event subscriptions it
needs, where they go, and what is missing.

Two places create this wiring and must create the same thing: the deployment (``infra/events/*.bicep``, and
``infra/terraform/events.tf``) for the subscriptions it lists, and the timer's wiring step
(``remediator/service/wiring.py``) for subscriptions that join a managed management group later. The event
subscriptions' filters, destinations and delivery settings are therefore declared here once for the product;
``tests/unit/infra/test_event_wiring.py`` holds them equal to the Bicep's (and the parity tests hold the
Bicep equal to the Terraform).

A subscription has at most one system topic per source and type (docs/deploy.md, "Subscriptions that already
have system topics"): an existing topic is reused, wherever it lives; a missing one is created in the events
resource group the deployment names. Pure: no SDK, no I/O.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from remediator.core.errors import UserInputError
from remediator.core.text import ignore_case_key

RESOURCES_TOPIC_TYPE = "Microsoft.Resources.Subscriptions"
POLICY_TOPIC_TYPE = "Microsoft.PolicyInsights.PolicyStates"
SYSTEM_TOPIC_LOCATION = "global"
"""System topics of global sources (subscriptions) live in ``global`` (MicrosoftDocs/azure-docs
articles/event-grid/system-topics.md, "Location")."""

SETTING = "REMEDIATOR_EVENT_WIRING"


@dataclass(frozen=True)
class EventSubscriptionSpec:
    """One event subscription the remediator needs on each managed subscription's system topic."""

    name: str
    topic_type: str
    function: str
    """The Event Grid triggered function it delivers to (``function_app.py``)."""
    included_event_types: tuple[str, ...]
    advanced_filter: tuple[str, str, tuple[str, ...]]
    """(operatorType, key, values): narrows delivery to managed clusters."""
    max_events_per_batch: int = 1
    preferred_batch_size_in_kilobytes: int = 64
    max_delivery_attempts: int = 30
    event_time_to_live_in_minutes: int = 1440
    event_delivery_schema: str = "EventGridSchema"

    def filter_json(self) -> dict[str, Any]:
        """The ``filter`` property as ARM (and the Bicep) writes it."""
        operator, key, values = self.advanced_filter
        return {
            "includedEventTypes": list(self.included_event_types),
            "advancedFilters": [{"operatorType": operator, "key": key, "values": list(values)}],
        }


CLUSTER_WRITES = EventSubscriptionSpec(
    name="aks-cluster-writes",
    topic_type=RESOURCES_TOPIC_TYPE,
    function="on_cluster_write",
    included_event_types=("Microsoft.Resources.ResourceWriteSuccess",),
    advanced_filter=("StringIn", "data.operationName", ("Microsoft.ContainerService/managedClusters/write",)),
)
POLICY_STATES = EventSubscriptionSpec(
    name="aks-policy-states",
    topic_type=POLICY_TOPIC_TYPE,
    function="on_policy_state",
    included_event_types=(
        "Microsoft.PolicyInsights.PolicyStateCreated",
        "Microsoft.PolicyInsights.PolicyStateChanged",
    ),
    advanced_filter=(
        "StringContains",
        "Subject",
        ("/providers/Microsoft.ContainerService/managedClusters/",),
    ),
)
EVENT_SUBSCRIPTIONS: tuple[EventSubscriptionSpec, ...] = (CLUSTER_WRITES, POLICY_STATES)
"""Cluster writes first: they are the fast path; policy events add nothing the sweep does not recover."""


@dataclass(frozen=True)
class WiringTarget:
    """Where the wiring step puts what it creates (app setting ``REMEDIATOR_EVENT_WIRING``, JSON, written by
    the deployment): the Functions app the events go to, the events resource group of each subscription,
    its location, and the names of the two system topics when they have to be created."""

    function_app_id: str
    resource_group: str
    location: str
    topic_names: Mapping[str, str]
    """Topic type -> name of the topic to create when the subscription has none of that type."""

    @classmethod
    def parse(cls, text: str, *, source: str = SETTING) -> WiringTarget:
        """Parse the setting's JSON.

        :raises UserInputError: not JSON, or a field missing or malformed (named).
        """
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise UserInputError(f"not JSON: {exc}", field=SETTING, source=source) from None
        if not isinstance(data, Mapping):
            raise UserInputError("must be a JSON object", field=SETTING, source=source)

        def text_field(name: str) -> str:
            value = data.get(name)
            if not isinstance(value, str) or not value.strip():
                raise UserInputError("required: a non-empty string", field=f"{SETTING}.{name}", source=source)
            return value.strip()

        function_app_id = text_field("functionAppId")
        parts = [p for p in function_app_id.split("/") if p]
        if len(parts) != 8 or ignore_case_key("/".join(parts[4:7])) != ignore_case_key(
            "providers/Microsoft.Web/sites"
        ):
            raise UserInputError(
                f"{function_app_id!r} is not a Microsoft.Web/sites resource id",
                field=f"{SETTING}.functionAppId",
                source=source,
            )
        return cls(
            function_app_id=function_app_id,
            resource_group=text_field("resourceGroup"),
            location=text_field("location"),
            topic_names={
                RESOURCES_TOPIC_TYPE: text_field("resourcesTopic"),
                POLICY_TOPIC_TYPE: text_field("policyTopic"),
            },
        )

    def function_id(self, spec: EventSubscriptionSpec) -> str:
        """The ``AzureFunction`` destination's resource id: ``<site id>/functions/<name>``."""
        return f"{self.function_app_id}/functions/{spec.function}"


@dataclass(frozen=True)
class SystemTopic:
    """A system topic as Resource Graph lists it (``resources``, ``microsoft.eventgrid/systemtopics``)."""

    subscription_id: str
    resource_group: str
    name: str
    topic_type: str
    source: str


@dataclass(frozen=True)
class TopicPlan:
    """Which system topic carries one event subscription, and whether it has to be created first."""

    spec: EventSubscriptionSpec
    subscription_id: str
    resource_group: str
    topic_name: str
    create_topic: bool


def subscription_source(subscription_id: str) -> str:
    return f"/subscriptions/{subscription_id}"


def plan_topics(
    subscription_id: str, existing: Iterable[SystemTopic], target: WiringTarget
) -> tuple[TopicPlan, ...]:
    """For each event subscription the remediator needs in ``subscription_id``: the system topic of its type
    whose source is the subscription, reused where it exists (in whatever resource group), else to be
    created in the target's events resource group under the target's name."""
    source = ignore_case_key(subscription_source(subscription_id))
    by_type: dict[str, SystemTopic] = {}
    for topic in existing:
        if ignore_case_key(topic.source) == source:
            by_type.setdefault(ignore_case_key(topic.topic_type), topic)
    plans: list[TopicPlan] = []
    for spec in EVENT_SUBSCRIPTIONS:
        found = by_type.get(ignore_case_key(spec.topic_type))
        if found is not None:
            plans.append(
                TopicPlan(spec, subscription_id, found.resource_group, found.name, create_topic=False)
            )
        else:
            name = target.topic_names[spec.topic_type]
            plans.append(TopicPlan(spec, subscription_id, target.resource_group, name, create_topic=True))
    return tuple(plans)


__all__ = [
    "CLUSTER_WRITES",
    "EVENT_SUBSCRIPTIONS",
    "POLICY_STATES",
    "POLICY_TOPIC_TYPE",
    "RESOURCES_TOPIC_TYPE",
    "SETTING",
    "SYSTEM_TOPIC_LOCATION",
    "EventSubscriptionSpec",
    "SystemTopic",
    "TopicPlan",
    "WiringTarget",
    "plan_topics",
    "subscription_source",
]
