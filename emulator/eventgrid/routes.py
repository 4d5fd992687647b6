"""Event Grid wiring: ARM writes → ResourceWrite/DeleteSuccess events, the custom topic, and the admin API.

Admin (all under /_emulator/eventgrid):
- `GET|PATCH /settings`: delivery knobs (timeFactor, duplicateProbability, reorderProbability, reorderDelayS,
  timeoutS, seed) and `writeEventsAt` ("accepted" | "completed" | "both") for long-running creates/updates.
- `GET|POST /subscriptions`, `DELETE /subscriptions/{name}`: event subscriptions ({name, endpointUrl?,
  filter{includedEventTypes, advancedFilters[{operatorType,key,values}], subjectBeginsWith, subjectEndsWith},
  retryPolicy}). Without endpointUrl events are collected in memory: `GET /subscriptions/{name}/events`.
- `GET /events` (every published system event), `GET /deliveries`, `GET /deadletters`,
  (settings also take `functionApps` {site id: base URL} and `oneSystemTopicPer`, for the ARM system topics
  of emulator/eventgrid/arm.py, whose event subscriptions are listed here too, keyed by their ARM id)
  `GET /topic/events` (what the custom topic received), `POST /reset`.
Custom topic: `POST /api/events` with `aeg-sas-key: <topicKey>` (default `emulator-topic-key`) or a bearer
token; Event Grid schema (`application/json`) or CloudEvents (`application/cloudevents-batch+json`).
"""

from __future__ import annotations

import json
import logging
import uuid
from typing import Any

from emulator.errors import ArmError
from emulator.eventgrid.arm import POLICY_TOPIC_TYPE, RESOURCES_TOPIC_TYPE, SystemTopics
from emulator.eventgrid.bus import EventBus
from emulator.model.ids import canonical_type
from emulator.routing import PluginContext, Request, Response, Router

logger = logging.getLogger(__name__)

EXTRAS_KEY = "eventgrid"
DEFAULT_TOPIC_KEY = "emulator-topic-key"
WRITE_MODES = ("accepted", "completed", "both")
LRO_TYPES = ("microsoft.containerservice/managedclusters", "microsoft.kubernetesconfiguration/extensions")


class EventGridPlugin:
    """The bus plus the settings that decide which ARM writes become events."""

    def __init__(self, ctx: PluginContext) -> None:
        self.ctx = ctx
        self.bus = EventBus()
        self.write_events_at = "completed"
        self.topic_key = DEFAULT_TOPIC_KEY
        self.system_topics = SystemTopics(ctx, self.bus, self._tenant)

    def reset(self) -> None:
        self.bus.reset()
        self.write_events_at = "completed"
        self.topic_key = DEFAULT_TOPIC_KEY
        self.system_topics.reset()  # the ARM event subscriptions the (re)loaded state holds deliver again

    def _tenant(self, subscription_id: str) -> str:
        sub = self.ctx.state.subscription(subscription_id) if subscription_id else None
        return str(sub.get("tenantId", "")) if sub else ""

    def on_state_change(self, operation: str, resource_id: str, resource: Any, principal: str | None) -> None:
        """State observer: ARM writes and deletes become Microsoft.Resources.* events."""
        if operation not in ("write", "provisioned", "deleted", "delete"):
            return
        if not isinstance(resource, dict):
            return
        rtype = canonical_type(str(resource.get("type", "")))
        lro = rtype.lower() in LRO_TYPES
        if operation == "delete":
            return  # the DELETE was accepted; the event fires when the resource is gone ("deleted")
        if operation == "write" and lro and self.write_events_at == "completed":
            return
        if operation == "provisioned":
            if not lro or self.write_events_at == "accepted":
                return
            if (resource.get("properties") or {}).get("provisioningState") != "Succeeded":
                return
        parts = resource_id.split("/")
        sub = parts[2] if len(parts) > 2 and parts[1].lower() == "subscriptions" else ""
        provider = rtype.split("/", 1)[0]
        verb = "delete" if operation == "deleted" else "write"
        event_type = (
            "Microsoft.Resources.ResourceDeleteSuccess"
            if verb == "delete"
            else ("Microsoft.Resources.ResourceWriteSuccess")
        )
        operation_name = f"{rtype}/{verb}"
        tenant = self._tenant(sub)
        who = principal or "00000000-0000-0000-0000-000000000000"
        data = {
            "authorization": {
                "scope": resource_id,
                "action": operation_name,
                "evidence": {"role": "Owner", "roleAssignmentScope": f"/subscriptions/{sub}"},
            },
            "claims": {
                "aud": "https://management.core.windows.net/",
                "iss": f"https://sts.windows.net/{tenant}/",
                "appid": who,
                "http://schemas.microsoft.com/identity/claims/objectidentifier": who,
                "http://schemas.microsoft.com/identity/claims/tenantid": tenant,
            },
            "correlationId": str(uuid.uuid4()),
            "resourceProvider": provider,
            "resourceUri": resource_id,
            "operationName": operation_name,
            "status": "Succeeded",
            "subscriptionId": sub,
            "tenantId": tenant,
        }
        self.bus.publish(
            event_type,
            resource_id,
            data,
            topic=f"/subscriptions/{sub}",
            data_version="2",
            topic_type=RESOURCES_TOPIC_TYPE,
        )

    def publish_policy_event(self, event_type: str, subject: str, data: dict[str, Any], topic: str) -> None:
        self.bus.publish(
            event_type, subject, data, topic=topic, data_version="1", topic_type=POLICY_TOPIC_TYPE
        )


def eventgrid_for(ctx: PluginContext) -> EventGridPlugin:
    plugin = ctx.extras.get(EXTRAS_KEY)
    if plugin is None:
        plugin = EventGridPlugin(ctx)
        ctx.extras[EXTRAS_KEY] = plugin
    assert isinstance(plugin, EventGridPlugin)
    return plugin


_REQUIRED_EG = ("id", "subject", "eventType", "eventTime", "data", "dataVersion")
_REQUIRED_CE = ("id", "source", "type", "specversion")


def _validate_topic_batch(events: Any, *, cloud: bool) -> list[dict[str, Any]]:
    if not isinstance(events, list):
        raise ArmError(400, "BadRequest", "The request body must be a JSON array of events.")
    if len(events) > 5000:
        raise ArmError(413, "RequestEntityTooLarge", "A batch may contain at most 5,000 events.")
    required = _REQUIRED_CE if cloud else _REQUIRED_EG
    for i, event in enumerate(events):
        if not isinstance(event, dict):
            raise ArmError(400, "BadRequest", f"Event at index {i} is not a JSON object.")
        missing = [k for k in required if k not in event]
        if missing:
            raise ArmError(
                400, "BadRequest", f"Event at index {i} is missing required property '{missing[0]}'."
            )
        if cloud and event["specversion"] != "1.0":
            raise ArmError(400, "BadRequest", f"Event at index {i}: specversion must be '1.0'.")
        if len(json.dumps(event)) > 1024 * 1024:
            raise ArmError(413, "RequestEntityTooLarge", f"Event at index {i} is larger than 1 MB.")
    return events


def register(router: Router, ctx: PluginContext) -> None:
    plugin = eventgrid_for(ctx)
    ctx.state.subscribe(plugin.on_state_change)
    ctx.state.on_load(lambda _state, _estate: plugin.reset())
    plugin.system_topics.register(router)
    bus = plugin.bus

    def topic_events(request: Request) -> Response:
        key = request.headers.get("aeg-sas-key")
        token = request.headers.get("aeg-sas-token")
        bearer = str(request.headers.get("Authorization") or "").lower().startswith("bearer ")
        if key is not None:
            if key != plugin.topic_key:
                raise ArmError(401, "Unauthorized", "The request authorization key is not authorized.")
        elif token is None and not bearer:
            raise ArmError(
                401,
                "Unauthorized",
                "The request does not contain an aeg-sas-key, aeg-sas-token or bearer token.",
            )
        content_type = str(request.headers.get("Content-Type") or "").lower()
        cloud = content_type.startswith("application/cloudevents-batch+json") or content_type.startswith(
            "application/cloudevents+json"
        )
        events = request.json()
        if content_type.startswith("application/cloudevents+json") and isinstance(events, dict):
            events = [events]
        for event in _validate_topic_batch(events, cloud=cloud):
            bus.topic_events.append(
                {"schema": "CloudEventV1_0" if cloud else "EventGridSchema", "event": event}
            )
        return Response(200, {}, None)

    router.add("POST", "/api/events", topic_events, operation="EventGridTopic_Publish")

    def admin(fn: Any) -> Any:
        def wrapped(request: Request) -> Response:
            try:
                return fn(request)
            except (ValueError, TypeError, KeyError) as exc:
                raise ArmError(400, "InvalidAdminRequest", str(exc)) from exc

        return wrapped

    base = "/_emulator/eventgrid"

    def get_settings(_r: Request) -> Response:
        return Response(
            200,
            {},
            {
                **bus.settings.to_json(),
                "writeEventsAt": plugin.write_events_at,
                "topicKey": plugin.topic_key,
                **plugin.system_topics.settings(),
            },
        )

    def patch_settings(request: Request) -> Response:
        data = dict(request.json_object())
        plugin.system_topics.update_settings(data)
        mode = data.pop("writeEventsAt", None)
        key = data.pop("topicKey", None)
        if mode is not None and mode not in WRITE_MODES:
            raise ValueError(f"writeEventsAt must be one of {WRITE_MODES}")
        bus.update_settings(data)
        if mode is not None:
            plugin.write_events_at = mode
        if key is not None:
            plugin.topic_key = str(key)
        return get_settings(request)

    def list_subs(_r: Request) -> Response:
        with bus.lock:
            return Response(200, {}, {"value": [s.to_json() for s in bus.subscriptions.values()]})

    def add_sub(request: Request) -> Response:
        sub = bus.add_subscription(request.json_object())
        return Response(201, {}, sub.to_json())

    def delete_sub(request: Request) -> Response:
        if not bus.remove_subscription(request.params["name"]):
            raise ArmError(404, "NotFound", f"event subscription '{request.params['name']}' not found")
        return Response(204, {}, None)

    def sub_events(request: Request) -> Response:
        with bus.lock:
            sub = bus.subscriptions.get(request.params["name"].lower())
            if sub is None:
                raise ArmError(404, "NotFound", f"event subscription '{request.params['name']}' not found")
            return Response(200, {}, {"value": list(sub.collected)})

    def events(_r: Request) -> Response:
        with bus.lock:
            return Response(200, {}, {"value": list(bus.published)})

    def deliveries(_r: Request) -> Response:
        with bus.lock:
            return Response(200, {}, {"value": list(bus.deliveries), "pending": len(bus._queue)})

    def deadletters(_r: Request) -> Response:
        with bus.lock:
            return Response(200, {}, {"value": list(bus.dead_letters)})

    def received(_r: Request) -> Response:
        with bus.lock:
            return Response(200, {}, {"value": list(bus.topic_events)})

    def reset(_r: Request) -> Response:
        plugin.reset()
        return Response(200, {}, {"status": "reset"})

    for method, path, fn, op in (
        ("GET", f"{base}/settings", get_settings, "Admin_EventGridSettingsGet"),
        ("PATCH", f"{base}/settings", patch_settings, "Admin_EventGridSettingsPatch"),
        ("GET", f"{base}/subscriptions", list_subs, "Admin_EventGridSubscriptionsList"),
        ("POST", f"{base}/subscriptions", add_sub, "Admin_EventGridSubscriptionsAdd"),
        ("DELETE", f"{base}/subscriptions/{{name}}", delete_sub, "Admin_EventGridSubscriptionsDelete"),
        ("GET", f"{base}/subscriptions/{{name}}/events", sub_events, "Admin_EventGridCollected"),
        ("GET", f"{base}/events", events, "Admin_EventGridEvents"),
        ("GET", f"{base}/deliveries", deliveries, "Admin_EventGridDeliveries"),
        ("GET", f"{base}/deadletters", deadletters, "Admin_EventGridDeadLetters"),
        ("GET", f"{base}/topic/events", received, "Admin_EventGridTopicEvents"),
        ("POST", f"{base}/reset", reset, "Admin_EventGridReset"),
    ):
        router.add(method, path, admin(fn), operation=op, admin=True)
