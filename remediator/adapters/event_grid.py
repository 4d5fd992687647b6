"""Event Grid management for the wiring step: find system topics, create the missing topic and event
subscriptions, make sure their resource group exists.

Why an adapter: the wiring step (``remediator/service/wiring.py``) decides from the pure plan in
:mod:`remediator.core.event_wiring`; this module is the only place that talks to Event Grid's management
API (``azure-mgmt-eventgrid``) and Resource Graph for it. Everything it writes is what
``infra/events/system-topics.bicep`` and ``infra/events/event-subscriptions.bicep`` write, minus
dead-lettering (the topic identity's grant on the dead-letter container needs role administration the app
does not have; docs/deploy.md, "Wiring that follows the scope").

Reads need Reader (granted at the managed management groups). Writes need, at those groups, EventGrid
EventSubscription Contributor (``Microsoft.EventGrid/eventSubscriptions/write`` on the source subscription,
the check Event Grid makes for a system-topic subscription) and the custom "Event Wiring" role
(``Microsoft.EventGrid/systemTopics/write``, ``.../systemTopics/eventSubscriptions/write``,
``Microsoft.Resources/subscriptions/resourceGroups/write``); docs/deploy.md, "Roles". Errors are
:class:`remediator.adapters.arm.ArmError` (chained from azure-core's).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from azure.core.rest import HttpRequest

from remediator.adapters.arm import NotFound, call_arm
from remediator.adapters.clients import AzureClients
from remediator.core.event_wiring import SYSTEM_TOPIC_LOCATION, EventSubscriptionSpec, SystemTopic
from remediator.core.inventory_query import (
    MAX_SUBSCRIPTIONS_PER_QUERY,
    InventoryRequest,
    subscription_batches,
)

logger = logging.getLogger(__name__)

SYSTEM_TOPICS_QUERY = (
    "resources\n"
    "| where type =~ 'microsoft.eventgrid/systemtopics'\n"
    "| project id, name, resourceGroup, subscriptionId,"
    " topicType = tostring(properties.topicType), source = tostring(properties.source)"
)
"""System topics are tracked resources in Resource Graph's ``resources`` table (type
``microsoft.eventgrid/systemtopics``; MicrosoftDocs/azure-docs
articles/governance/resource-graph/reference/supported-tables-resources.md). Their event subscriptions are not
listed there, so those are read through ARM."""

RESOURCE_GROUPS_API_VERSION = "2021-04-01"
"""ResourceGroups_CreateOrUpdate (no ``azure-mgmt-resource`` dependency for one PUT)."""


class EventGridWiring:
    """Event Grid system topics and event subscriptions through ARM.

    :param clients: SDK clients (``AzureClients.event_grid``).
    :param graph: runs Resource Graph requests (a ``ResourceGraphInventory``).
    """

    def __init__(self, clients: AzureClients, graph: Any) -> None:
        self._clients = clients
        self._graph = graph

    def system_topics(self, subscription_ids: Iterable[str]) -> list[SystemTopic]:
        """Every system topic in the subscriptions (one paged Resource Graph query per 300 subscriptions).

        :raises InventoryError: Resource Graph failed (``adapters.graph``)."""
        topics: list[SystemTopic] = []
        subscriptions = sorted(set(subscription_ids))
        for batch in subscription_batches(subscriptions, size=MAX_SUBSCRIPTIONS_PER_QUERY):
            for row in self._graph.iter_data(
                InventoryRequest(query=SYSTEM_TOPICS_QUERY, subscriptions=batch)
            ):
                topics.append(
                    SystemTopic(
                        subscription_id=str(row.get("subscriptionId") or ""),
                        resource_group=str(row.get("resourceGroup") or ""),
                        name=str(row.get("name") or ""),
                        topic_type=str(row.get("topicType") or ""),
                        source=str(row.get("source") or ""),
                    )
                )
        return topics

    def has_event_subscription(
        self, subscription_id: str, resource_group: str, topic: str, name: str
    ) -> bool:
        """Whether the system topic has an event subscription of that name (GET; 404 -> ``False``)."""
        client = self._clients.event_grid(subscription_id)
        try:
            call_arm(
                "GET event subscription",
                lambda: client.system_topic_event_subscriptions.get(resource_group, topic, name),
            )
        except NotFound:
            return False
        return True

    def ensure_resource_group(self, subscription_id: str, name: str, *, location: str) -> None:
        """Create the resource group unless it exists (``HEAD`` first: an existing one is left as is), through
        the client's own pipeline (``_send_request``: the generated clients' raw-request entry point)."""
        client = self._clients.event_grid(subscription_id)
        url = f"/subscriptions/{subscription_id}/resourcegroups/{name}"
        params = {"api-version": RESOURCE_GROUPS_API_VERSION}

        def head() -> int:
            return int(client._send_request(HttpRequest("HEAD", url, params=params)).status_code)

        if call_arm("HEAD resource group", head) == 204:
            return

        def put() -> None:
            response = client._send_request(
                HttpRequest(
                    "PUT",
                    url,
                    params=params,
                    json={"location": location, "tags": {"app": "aks-backup-remediator"}},
                )
            )
            response.raise_for_status()

        call_arm("PUT resource group", put)
        logger.info("event wiring: created resource group %s in subscription %s", name, subscription_id)

    def create_system_topic(
        self, subscription_id: str, resource_group: str, name: str, *, topic_type: str, source: str
    ) -> None:
        """Create a system topic with a system-assigned identity (as ``system-topics.bicep``), location
        ``global``; waits for the operation."""
        from azure.mgmt.eventgrid.models import IdentityInfo
        from azure.mgmt.eventgrid.models import SystemTopic as SystemTopicModel

        client = self._clients.event_grid(subscription_id)
        body = SystemTopicModel(
            location=SYSTEM_TOPIC_LOCATION,
            identity=IdentityInfo(type="SystemAssigned"),
            source=source,
            topic_type=topic_type,
            tags={"app": "aks-backup-remediator"},
        )
        call_arm(
            "PUT system topic",
            lambda: client.system_topics.begin_create_or_update(resource_group, name, body).result(),
        )
        logger.info("event wiring: created system topic %s (%s) for %s", name, topic_type, source)

    def create_event_subscription(
        self,
        subscription_id: str,
        resource_group: str,
        topic: str,
        spec: EventSubscriptionSpec,
        *,
        function_resource_id: str,
    ) -> None:
        """Create the event subscription ``spec`` on the topic, delivering to the function (AzureFunction
        endpoint, by resource id: no key is handled), with the spec's filter, batching and retry policy;
        waits for the operation."""
        from azure.mgmt.eventgrid.models import (
            AzureFunctionEventSubscriptionDestination,
            EventSubscription,
            EventSubscriptionFilter,
            RetryPolicy,
            StringContainsAdvancedFilter,
            StringInAdvancedFilter,
        )

        operator, key, values = spec.advanced_filter
        filters = {"StringIn": StringInAdvancedFilter, "StringContains": StringContainsAdvancedFilter}
        body = EventSubscription(
            destination=AzureFunctionEventSubscriptionDestination(
                resource_id=function_resource_id,
                max_events_per_batch=spec.max_events_per_batch,
                preferred_batch_size_in_kilobytes=spec.preferred_batch_size_in_kilobytes,
            ),
            filter=EventSubscriptionFilter(
                included_event_types=list(spec.included_event_types),
                advanced_filters=[filters[operator](key=key, values=list(values))],
            ),
            event_delivery_schema=spec.event_delivery_schema,
            retry_policy=RetryPolicy(
                max_delivery_attempts=spec.max_delivery_attempts,
                event_time_to_live_in_minutes=spec.event_time_to_live_in_minutes,
            ),
        )
        client = self._clients.event_grid(subscription_id)
        call_arm(
            "PUT event subscription",
            lambda: client.system_topic_event_subscriptions.begin_create_or_update(
                resource_group, topic, spec.name, body
            ).result(),
        )
        logger.info(
            "event wiring: created event subscription %s on %s/%s -> %s",
            spec.name,
            resource_group,
            topic,
            function_resource_id,
        )


__all__ = ["SYSTEM_TOPICS_QUERY", "EventGridWiring"]
