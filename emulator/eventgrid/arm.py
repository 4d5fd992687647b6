"""Event Grid system topics and their event subscriptions as ARM resources, and the deliveries they gate.

In Azure an event reaches a handler only through an event subscription on a system topic whose source is
the publisher (a subscription, for ``Microsoft.Resources.Subscriptions`` and
``Microsoft.PolicyInsights.PolicyStates`` topics). The product creates that wiring itself for subscriptions
that join a managed management group (``remediator/service/wiring.py``), so the emulator serves the same
ARM operations the ``azure-mgmt-eventgrid`` client sends, with the shapes of the official REST examples
(Azure/azure-rest-api-specs, ``specification/eventgrid/resource-manager/Microsoft.EventGrid/stable/2022-06-15/
examples``: ``SystemTopics_Get.json``, ``SystemTopicEventSubscriptions_CreateOrUpdate.json``,
``SystemTopicEventSubscriptions_Get.json``), and delivers an event to such a subscription only while the
subscription and its topic exist, only from their creation on, and only for events of the topic's type and
source. Event subscriptions registered through the admin API (``/_emulator/eventgrid/subscriptions``) keep
receiving every event, as before.

Routes (operation ids of the Event Grid swagger):

- ``SystemTopics_CreateOrUpdate|Get|Delete|ListByResourceGroup|ListBySubscription``
- ``SystemTopicEventSubscriptions_CreateOrUpdate|Get|Delete|List``

Behaviours and their evidence (**D** documented, **E** observed publicly, **A** assumed):

- A PUT answers 201 (new) or 200 (existing) with ``provisioningState: Succeeded`` and no async header, as the
  official ``SystemTopicEventSubscriptions_CreateOrUpdate`` example's 201 shows (D); the SDK's ARM poller
  finishes on that body. System topics answer the same way (A: no official create example in 2022-06-15).
- The topic lives in the subscription of its source: "System topics can't be created apart from their
  corresponding data source on different subscriptions" (E: Microsoft's answer on MicrosoftDocs/azure-docs
  issue #85317) -> 400 ``InvalidRequest``.
- One system topic per source: "There is an existing tracked system topic for the given source
  /subscriptions/<id>. Only one system topic is allowed per source." (E: the error quoted in
  MicrosoftDocs/azure-docs PR #97986). Whether that is per source or per source *and topic type* is not
  settled by any source found (docs/deploy.md); the knob ``oneSystemTopicPer`` picks ``sourceAndType``
  (default, what the deployment's two topics per subscription assume) or ``source`` (the strict reading).
- An event subscription on a missing topic: 404 ``ParentResourceNotFound`` "Can not perform requested
  operation on nested resource. Parent resource '<name>' not found." (E: pulumi/docs issue #5774).
- ``AzureFunction`` destinations name the function by resource id; Event Grid checks the function when the
  subscription is created (D: azure-cli issue #10879, Event Grid's answer). Here the site must be mapped to a
  base URL first (``PATCH /_emulator/eventgrid/settings {"functionApps": {"<site id>": "<url>"}}``), else
  400 ``InvalidRequest`` (A: wording ours); events go to
  ``<url>/runtime/webhooks/eventgrid?functionName=<f>``, the Functions host's Event Grid webhook. A
  ``WebHook`` destination's ``endpointUrl`` is answered as ``endpointBaseUrl`` (D: the official example).
- Deleting a topic deletes its event subscriptions (A).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Mapping
from typing import Any

from emulator.errors import ArmError, not_found, resource_group_not_found
from emulator.eventgrid.bus import AdvancedFilter, EventBus, EventSubscription
from emulator.model.ids import deterministic_uuid, fold, key_of, rg_id
from emulator.resources.paging import page
from emulator.routing import PluginContext, Request, Response, Router

logger = logging.getLogger(__name__)

TOPIC_TYPE = "Microsoft.EventGrid/systemTopics"
EVENT_SUBSCRIPTION_TYPE = "Microsoft.EventGrid/systemTopics/eventSubscriptions"
RESOURCES_TOPIC_TYPE = "Microsoft.Resources.Subscriptions"
RESOURCE_GROUPS_TOPIC_TYPE = "Microsoft.Resources.ResourceGroups"
POLICY_TOPIC_TYPE = "Microsoft.PolicyInsights.PolicyStates"
ONE_TOPIC_PER = ("sourceAndType", "source")
FUNCTION_WEBHOOK = "{base}/runtime/webhooks/eventgrid?functionName={function}"

_TOPIC = (
    "/subscriptions/{subscriptionId}/resourceGroups/{resourceGroupName}"
    "/providers/Microsoft.EventGrid/systemTopics"
)
_EVENT_SUBSCRIPTIONS = _TOPIC + "/{systemTopicName}/eventSubscriptions"


class SystemTopics:
    """The ARM side (bodies in ``state.resources``) and the delivery index it keeps in the bus."""

    def __init__(self, ctx: PluginContext, bus: EventBus, tenant_of: Callable[[str], str]) -> None:
        self.ctx = ctx
        self.bus = bus
        self.tenant_of = tenant_of
        self.function_apps: dict[str, str] = {}
        """Site resource id (folded) -> base URL the Functions host listens on."""
        self.one_topic_per = "sourceAndType"

    def reset(self) -> None:
        self.function_apps = {}
        self.one_topic_per = "sourceAndType"
        self.rebuild()

    # ---- the delivery index --------------------------------------------------------------------------
    def rebuild(self) -> None:
        """Re-register every event subscription the state holds (after an estate load or an admin reset)."""
        state = self.ctx.state
        with state.lock:
            bodies = [
                b
                for b in state.resources.values()
                if fold(str(b.get("type", ""))) == fold(EVENT_SUBSCRIPTION_TYPE)
            ]
        for body in bodies:
            topic = state.get("resources", str(body["properties"]["topic"]))
            if topic is not None:
                try:
                    self.bus.register(self._delivery(body, topic))
                except ArmError as exc:  # e.g. a function app not mapped after a reset
                    logger.warning("event subscription %s not delivering: %s", body["id"], exc.message)

    def _delivery(self, body: Mapping[str, Any], topic: Mapping[str, Any]) -> EventSubscription:
        props = body["properties"]
        flt = props.get("filter") or {}
        retry = props.get("retryPolicy") or {}
        return EventSubscription(
            name=str(body["name"]),
            endpoint=self._endpoint(props["destination"], stored=True),
            included_event_types=list(flt.get("includedEventTypes") or []) or None,
            advanced_filters=[
                AdvancedFilter(str(f["operatorType"]), str(f["key"]), list(f.get("values") or []))
                for f in flt.get("advancedFilters") or []
            ],
            subject_begins_with=str(flt.get("subjectBeginsWith") or ""),
            subject_ends_with=str(flt.get("subjectEndsWith") or ""),
            max_delivery_attempts=int(retry.get("maxDeliveryAttempts", 30)),
            event_ttl_minutes=float(retry.get("eventTimeToLiveInMinutes", 1440)),
            key=key_of(str(body["id"])),
            source=str(topic["properties"]["source"]),
            topic_type=str(topic["properties"]["topicType"]),
        )

    def _endpoint(self, destination: Mapping[str, Any], *, stored: bool = False) -> str:
        kind = str(destination.get("endpointType", ""))
        props = destination.get("properties") or {}
        if fold(kind) == fold("WebHook"):
            url = props.get("endpointBaseUrl" if stored else "endpointUrl") or props.get("endpointUrl")
            if not isinstance(url, str) or not url.startswith(("http://", "https://")):
                raise ArmError(
                    400,
                    "InvalidRequest",
                    "Invalid event subscription request: Supplied URL is invalid. It cannot be null or empty"
                    " and should be a proper HTTPS URL like https://www.example.com.",
                )
            return url
        if fold(kind) == fold("AzureFunction"):
            resource_id = str(props.get("resourceId") or "")
            site, sep, function = resource_id.rpartition("/functions/")
            base = self.function_apps.get(fold(site)) if sep else None
            if not function or base is None:
                raise ArmError(
                    400,
                    "InvalidRequest",
                    f"The Azure Function '{resource_id}' could not be found or is not an Event Grid"
                    " triggered function (emulator: map its site with PATCH /_emulator/eventgrid/settings"
                    " functionApps).",
                )
            return FUNCTION_WEBHOOK.format(base=base.rstrip("/"), function=function)
        raise ArmError(
            400,
            "InvalidRequest",
            f"endpointType '{kind}' is not supported by the emulator (WebHook, AzureFunction).",
        )

    # ---- system topics -----------------------------------------------------------------------------
    def put_topic(self, request: Request) -> Response:
        state = self.ctx.state
        p = request.params
        sub, group, name = p["subscriptionId"], p["resourceGroupName"], p["systemTopicName"]
        rg = state.get("resource_groups", rg_id(sub, group))
        if rg is None:
            raise resource_group_not_found(group)
        body = request.json_object()
        location = body.get("location")
        props = body.get("properties") or {}
        source, topic_type = props.get("source"), props.get("topicType")
        if not isinstance(location, str) or not location:
            raise ArmError(400, "LocationRequired", "The location property is required for this definition.")
        if not isinstance(source, str) or not source or not isinstance(topic_type, str) or not topic_type:
            raise ArmError(400, "InvalidRequest", "properties.source and properties.topicType are required.")
        source_parts = source.split("/")
        if len(source_parts) < 3 or fold(source_parts[2]) != fold(sub):
            raise ArmError(
                400,
                "InvalidRequest",
                f"The source {source} of a system topic must be in the topic's subscription {sub}.",
            )
        topic_id = f"{rg['id']}/providers/Microsoft.EventGrid/systemTopics/{name}"
        with state.lock:
            existing = state.resources.get(key_of(topic_id))
            for other in self._topics():
                if key_of(other["id"]) == key_of(topic_id):
                    continue
                same_source = fold(other["properties"]["source"]) == fold(source)
                same_type = fold(other["properties"]["topicType"]) == fold(topic_type)
                if same_source and (same_type or self.one_topic_per == "source"):
                    raise ArmError(
                        400,
                        "InvalidRequest",
                        f"There is an existing tracked system topic for the given source {source}. Only one"
                        " system topic is allowed per source.",
                    )
            if existing is not None and (
                fold(existing["properties"]["source"]) != fold(source)
                or fold(existing["properties"]["topicType"]) != fold(topic_type)
            ):
                raise ArmError(
                    400, "InvalidRequest", "The source and topicType of a system topic cannot change."
                )
            stored: dict[str, Any] = {
                "properties": {
                    "provisioningState": "Succeeded",
                    "source": source,
                    "topicType": topic_type,
                    "metricResourceId": deterministic_uuid("metric", topic_id),
                },
                "location": location,
                "tags": body.get("tags"),
                "id": topic_id,
                "name": name,
                "type": TOPIC_TYPE,
            }
            identity = body.get("identity") or {}
            if fold(str(identity.get("type", "None"))) == fold("SystemAssigned"):
                kept = (existing or {}).get("identity") or {}
                stored["identity"] = {
                    "type": "SystemAssigned",
                    "principalId": kept.get("principalId") or str(uuid.uuid4()),
                    "tenantId": self.tenant_of(sub),
                }
            state.put("resources", topic_id, stored, principal=request.principal, notify=False)
        state.notify("write", topic_id, stored, request.principal)
        return Response(200 if existing else 201, {}, stored)

    def _topics(self) -> list[dict[str, Any]]:
        state = self.ctx.state
        with state.lock:
            return [b for b in state.resources.values() if fold(str(b.get("type", ""))) == fold(TOPIC_TYPE)]

    def _topic(self, request: Request) -> dict[str, Any]:
        p = request.params
        state = self.ctx.state
        if state.get("resource_groups", rg_id(p["subscriptionId"], p["resourceGroupName"])) is None:
            raise resource_group_not_found(p["resourceGroupName"])
        topic_id = (
            f"/subscriptions/{p['subscriptionId']}/resourceGroups/{p['resourceGroupName']}"
            f"/providers/Microsoft.EventGrid/systemTopics/{p['systemTopicName']}"
        )
        body = state.get("resources", topic_id)
        if body is None:
            raise not_found(TOPIC_TYPE, p["systemTopicName"], p["resourceGroupName"])
        return body

    def get_topic(self, request: Request) -> Response:
        return Response(200, {}, self._topic(request))

    def delete_topic(self, request: Request) -> Response:
        try:
            topic = self._topic(request)
        except ArmError as exc:
            if exc.code == "ResourceNotFound":
                return Response(204, {}, None)
            raise
        state = self.ctx.state
        for child in list(state.children("resources", topic["id"])):
            self.bus.unregister(key_of(child["id"]))
            state.remove("resources", child["id"], principal=request.principal)
        state.remove("resources", topic["id"], principal=request.principal)
        return Response(200, {}, None)

    def list_topics(self, request: Request) -> Response:
        p = request.params
        prefix = f"/subscriptions/{p['subscriptionId']}/"
        if "resourceGroupName" in p:
            prefix += f"resourcegroups/{p['resourceGroupName']}/"
        items = [t for t in self._topics() if key_of(t["id"]).startswith(key_of(prefix))]
        return Response(200, {}, page(request, items))

    # ---- event subscriptions -----------------------------------------------------------------------
    def _parent(self, request: Request) -> dict[str, Any]:
        try:
            return self._topic(request)
        except ArmError as exc:
            if exc.code != "ResourceNotFound":
                raise
            raise ArmError(
                404,
                "ParentResourceNotFound",
                "Can not perform requested operation on nested resource. Parent resource"
                f" '{request.params['systemTopicName']}' not found.",
            ) from exc

    def put_event_subscription(self, request: Request) -> Response:
        topic = self._parent(request)
        name = request.params["eventSubscriptionName"]
        body = request.json_object()
        props = dict(body.get("properties") or {})
        destination = props.get("destination")
        if not isinstance(destination, Mapping):
            raise ArmError(400, "InvalidRequest", "properties.destination is required.")
        self._endpoint(destination)  # validates, and checks a function destination exists
        flt = dict(props.get("filter") or {})
        try:
            for f in flt.get("advancedFilters") or []:
                AdvancedFilter(str(f["operatorType"]), str(f["key"]), list(f.get("values") or []))
        except (KeyError, TypeError, ValueError) as exc:
            raise ArmError(400, "InvalidRequest", f"Invalid advanced filter: {exc}") from exc
        retry = {
            "maxDeliveryAttempts": 30,
            "eventTimeToLiveInMinutes": 1440,
            **(props.get("retryPolicy") or {}),
        }
        if (
            not 1 <= int(retry["maxDeliveryAttempts"]) <= 30
            or not 1 <= int(retry["eventTimeToLiveInMinutes"]) <= 1440
        ):
            raise ArmError(
                400, "InvalidRequest", "retryPolicy is out of range (attempts 1-30, TTL 1-1440 minutes)."
            )
        answered = dict(destination)
        dest_props = dict(destination.get("properties") or {})
        if fold(str(destination.get("endpointType"))) == fold("WebHook"):
            dest_props = {"endpointBaseUrl": str(dest_props.get("endpointUrl", "")).split("?", 1)[0]}
        answered["properties"] = dest_props
        rid = f"{topic['id']}/eventSubscriptions/{name}"
        stored = {
            "properties": {
                "destination": answered,
                "filter": flt,
                "labels": props.get("labels"),
                "eventDeliverySchema": props.get("eventDeliverySchema") or "EventGridSchema",
                "retryPolicy": retry,
                **(
                    {"deadLetterWithResourceIdentity": props["deadLetterWithResourceIdentity"]}
                    if props.get("deadLetterWithResourceIdentity")
                    else {}
                ),
                **(
                    {"deadLetterDestination": props["deadLetterDestination"]}
                    if props.get("deadLetterDestination")
                    else {}
                ),
                "provisioningState": "Succeeded",
                "topic": topic["id"],
            },
            "id": rid,
            "name": name,
            "type": EVENT_SUBSCRIPTION_TYPE,
        }
        state = self.ctx.state
        existing = state.get("resources", rid)
        delivery = self._delivery(
            {**stored, "properties": {**stored["properties"], "destination": destination}}, topic
        )
        state.put("resources", rid, stored, principal=request.principal, notify=False)
        self.bus.register(delivery)
        state.notify("write", rid, stored, request.principal)
        return Response(200 if existing else 201, {}, stored)

    def _event_subscription(self, request: Request) -> dict[str, Any]:
        topic = self._parent(request)
        rid = f"{topic['id']}/eventSubscriptions/{request.params['eventSubscriptionName']}"
        body = self.ctx.state.get("resources", rid)
        if body is None:
            raise not_found(EVENT_SUBSCRIPTION_TYPE, request.params["eventSubscriptionName"])
        return body

    def get_event_subscription(self, request: Request) -> Response:
        return Response(200, {}, self._event_subscription(request))

    def delete_event_subscription(self, request: Request) -> Response:
        try:
            body = self._event_subscription(request)
        except ArmError as exc:
            if exc.code == "ResourceNotFound":
                return Response(204, {}, None)
            raise
        self.bus.unregister(key_of(body["id"]))
        self.ctx.state.remove("resources", body["id"], principal=request.principal)
        return Response(200, {}, None)

    def list_event_subscriptions(self, request: Request) -> Response:
        topic = self._parent(request)
        items = list(self.ctx.state.children("resources", topic["id"]))
        return Response(200, {}, page(request, items))

    # ---- settings (admin) --------------------------------------------------------------------------
    def update_settings(self, data: dict[str, Any]) -> None:
        """Pop and apply ``functionApps`` and ``oneSystemTopicPer`` from an admin settings PATCH."""
        apps = data.pop("functionApps", None)
        per = data.pop("oneSystemTopicPer", None)
        if per is not None and per not in ONE_TOPIC_PER:
            raise ValueError(f"oneSystemTopicPer must be one of {ONE_TOPIC_PER}")
        if apps is not None:
            if not isinstance(apps, Mapping) or not all(
                isinstance(v, str) and v.startswith(("http://", "https://")) for v in apps.values()
            ):
                raise ValueError("functionApps maps a site resource id to an http(s) base URL")
            self.function_apps.update({fold(str(k)): str(v) for k, v in apps.items()})
        if per is not None:
            self.one_topic_per = str(per)

    def settings(self) -> dict[str, Any]:
        return {"functionApps": dict(self.function_apps), "oneSystemTopicPer": self.one_topic_per}

    def register(self, router: Router) -> None:
        topic = _TOPIC + "/{systemTopicName}"
        subscription = _EVENT_SUBSCRIPTIONS + "/{eventSubscriptionName}"
        for method, path, handler, op in (
            ("PUT", topic, self.put_topic, "SystemTopics_CreateOrUpdate"),
            ("GET", topic, self.get_topic, "SystemTopics_Get"),
            ("DELETE", topic, self.delete_topic, "SystemTopics_Delete"),
            ("GET", _TOPIC, self.list_topics, "SystemTopics_ListByResourceGroup"),
            (
                "GET",
                "/subscriptions/{subscriptionId}/providers/Microsoft.EventGrid/systemTopics",
                self.list_topics,
                "SystemTopics_ListBySubscription",
            ),
            (
                "PUT",
                subscription,
                self.put_event_subscription,
                "SystemTopicEventSubscriptions_CreateOrUpdate",
            ),
            ("GET", subscription, self.get_event_subscription, "SystemTopicEventSubscriptions_Get"),
            ("DELETE", subscription, self.delete_event_subscription, "SystemTopicEventSubscriptions_Delete"),
            (
                "GET",
                _EVENT_SUBSCRIPTIONS,
                self.list_event_subscriptions,
                "SystemTopicEventSubscriptions_List",
            ),
        ):
            router.add(method, path, handler, operation=op)


__all__ = ["POLICY_TOPIC_TYPE", "RESOURCES_TOPIC_TYPE", "SystemTopics"]
