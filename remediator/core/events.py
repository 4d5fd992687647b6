"""Event Grid payloads are untrusted input: parse them into typed values or reject them naming the field.

Two event families start a reconcile:

* ``Microsoft.Resources.ResourceWriteSuccess`` for a managed cluster (created, updated, re-tagged). Only the
  operation ``Microsoft.ContainerService/managedClusters/write`` counts; agent-pool writes, other resource
  types and other operations are :class:`IgnoredEvent`. A tag change made through the Tags API
  (``Microsoft.Resources/tags/write`` on ``<clusterId>/providers/Microsoft.Resources/tags/default``) also
  counts, because re-tagging a cluster is exactly what changes its selection.
* ``Microsoft.PolicyInsights.PolicyStateCreated`` / ``PolicyStateChanged`` (``PolicyStateDeleted`` is
  ignored).

Both the Event Grid schema (``eventType``, ``eventTime``, ``topic``, ``dataVersion``) and CloudEvents 1.0
(``specversion``, ``type``, ``time``, ``source``) are accepted; one call parses one event (a dict, not the
array). Envelope errors (missing ``id``, unparseable time, ``data`` not an object) raise
:class:`MalformedEventError` even for event types that would be ignored: a broken envelope is a sender bug
worth surfacing.

Events are untrusted: whoever can create an event subscription, or reach the endpoint, controls every field.
Two checks keep that noise out (issue 15, item 4):

* a policy state dated later than now plus :data:`DEFAULT_MAX_FUTURE_SKEW` is malformed (``data.timestamp``):
  one event dated 9999 would otherwise make every later real state for that cluster and assignment "stale"
  forever (the policy-order high-water mark only moves forward);
* :func:`check_provenance` (called by the trigger after parsing) rejects an event whose topic/source,
  ``data.subscriptionId``, ``data.tenantId``, subject and ``data.resourceUri`` do not agree with each other
  and with the configured scope and tenant, and an event older than :data:`DEFAULT_MAX_EVENT_AGE` (a replay)
  or dated in the future.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from remediator.core.config import Scope
from remediator.core.errors import UserInputError
from remediator.core.ids import InvalidResourceIdError, ResourceId, parse_cluster_id, parse_resource_id
from remediator.core.text import equal_ignoring_case, ignore_case_key

RESOURCE_WRITE_SUCCESS = "Microsoft.Resources.ResourceWriteSuccess"
POLICY_STATE_CREATED = "Microsoft.PolicyInsights.PolicyStateCreated"
POLICY_STATE_CHANGED = "Microsoft.PolicyInsights.PolicyStateChanged"
POLICY_STATE_DELETED = "Microsoft.PolicyInsights.PolicyStateDeleted"
CLUSTER_WRITE_OPERATION = "Microsoft.ContainerService/managedClusters/write"
TAGS_WRITE_OPERATION = "Microsoft.Resources/tags/write"
_TAGS_SUFFIX = "/providers/microsoft.resources/tags/default"

DEFAULT_MAX_FUTURE_SKEW = timedelta(minutes=5)
"""How far in the future an event or policy-state time may lie (clock skew between Azure and this host)."""
DEFAULT_MAX_EVENT_AGE = timedelta(hours=25)
"""The oldest event accepted. Event Grid retries a delivery for up to ``eventTimeToLiveInMinutes`` (1440 in
``infra/events/event-subscriptions.bicep``), so a legitimate event can be 24 hours old; anything older is a
replay (the sweep covers whatever a lost event would have triggered)."""


def utc_now() -> datetime:
    """The current time, timezone-aware (the default clock of the checks below)."""
    return datetime.now(UTC)


class MalformedEventError(UserInputError):
    """An Event Grid event is not what its type promises; ``field`` names the offending field."""


@dataclass(frozen=True)
class IgnoredEvent:
    """A well-formed event that does not concern the remediator."""

    event_id: str
    event_type: str
    reason: str
    """Why it was ignored, for the log."""


@dataclass(frozen=True)
class ClusterWriteEvent:
    """A managed cluster was written (created, updated, re-tagged): reconcile it."""

    cluster_id: ResourceId
    event_id: str
    event_time: datetime
    """Timezone-aware."""
    correlation_id: str | None
    """ARM correlation id of the write, for tracing."""
    operation: str
    """The ARM operation (``Microsoft.ContainerService/managedClusters/write`` or the Tags API write)."""


@dataclass(frozen=True)
class PolicyStateEvent:
    """A policy compliance state was created or changed for a resource."""

    resource_id: ResourceId
    """The evaluated resource (from ``subject``); may be any type, see :attr:`targets_cluster`."""
    compliance_state: str
    """``NonCompliant``, ``Compliant``, ..."""
    policy_assignment_id: ResourceId
    policy_definition_id: ResourceId
    timestamp: datetime
    """``data.timestamp``, timezone-aware: when the state was evaluated; order events by it."""
    event_id: str
    event_type: str
    event_time: datetime | None = None
    """The envelope's ``eventTime``/``time`` (when Event Grid published it), timezone-aware."""

    @property
    def targets_cluster(self) -> bool:
        """Whether the evaluated resource is a managed cluster."""
        return self.resource_id.is_type("Microsoft.ContainerService/managedClusters")

    @property
    def non_compliant(self) -> bool:
        """Compliance state is ``NonCompliant`` (any casing)."""
        return equal_ignoring_case(self.compliance_state, "NonCompliant")


@dataclass(frozen=True)
class _Envelope:
    event_id: str
    event_type: str
    event_time: datetime
    subject: str | None
    data: Mapping[str, Any]


def _fail(field: str, message: str) -> MalformedEventError:
    return MalformedEventError(message, field=field, source="event")


def _string(container: Mapping[str, Any], key: str, path: str, *, optional: bool = False) -> str | None:
    value = container.get(key)
    if value is None and optional:
        return None
    if not isinstance(value, str) or not value.strip():
        raise _fail(path, "missing or not a non-empty string")
    return value


def parse_time(value: object, *, field: str) -> datetime:
    """Parse an ISO 8601 timestamp with a timezone (``Z`` or offset; up to 7 fractional digits as Event Grid
    sends them) into an aware datetime.

    :raises MalformedEventError: not a string, not ISO 8601, or no timezone.
    """
    if not isinstance(value, str):
        raise _fail(field, "missing or not a string")
    text = value.strip()
    if "." in text:  # Python parses at most 6 fractional digits; Event Grid sends 7
        head, _, tail = text.partition(".")
        digits = len(tail) - len(tail.lstrip("0123456789"))
        text = head + "." + tail[: min(digits, 6)] + tail[digits:]
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError as exc:
        raise _fail(field, f"{value!r} is not an ISO 8601 timestamp") from exc
    if parsed.tzinfo is None:
        raise _fail(field, f"{value!r} has no timezone")
    return parsed


def _envelope(event: object) -> _Envelope:
    if not isinstance(event, Mapping):
        raise _fail("(event)", f"an event is a JSON object, got {type(event).__name__}")
    cloud = "specversion" in event
    if cloud and event.get("specversion") != "1.0":
        raise _fail("specversion", f"only CloudEvents 1.0 is supported, got {event.get('specversion')!r}")
    type_key, time_key = ("type", "time") if cloud else ("eventType", "eventTime")
    event_id = str(_string(event, "id", "id"))
    event_type = str(_string(event, type_key, type_key))
    event_time = parse_time(event.get(time_key), field=time_key)
    subject = event.get("subject")
    if subject == "":  # the subscription validation event sends an empty subject
        subject = None
    if subject is not None and not isinstance(subject, str):
        raise _fail("subject", f"expected a string, got {type(subject).__name__}")
    data = event.get("data")
    if data is None:
        data = {}
    if not isinstance(data, Mapping):
        raise _fail("data", f"expected an object, got {type(data).__name__}")
    return _Envelope(event_id, event_type, event_time, subject, data)


def _cluster_from_tags_uri(uri: str) -> ResourceId | None:
    if not ignore_case_key(uri).endswith(_TAGS_SUFFIX):  # one code point per code point: the slice holds
        return None
    try:
        return parse_cluster_id(uri[: -len(_TAGS_SUFFIX)])
    except InvalidResourceIdError:
        return None


def parse_cluster_write(event: object) -> ClusterWriteEvent | IgnoredEvent:
    """Parse one ResourceWriteSuccess event.

    :returns: :class:`ClusterWriteEvent` for a managed cluster write, :class:`IgnoredEvent` otherwise.
    :raises MalformedEventError: naming the field.
    """
    envelope = _envelope(event)
    if not equal_ignoring_case(envelope.event_type, RESOURCE_WRITE_SUCCESS):
        return IgnoredEvent(
            envelope.event_id, envelope.event_type, f"event type is not {RESOURCE_WRITE_SUCCESS}"
        )
    operation = str(_string(envelope.data, "operationName", "data.operationName"))
    resource_uri = _string(envelope.data, "resourceUri", "data.resourceUri", optional=True)
    correlation_id = _string(envelope.data, "correlationId", "data.correlationId", optional=True)

    if equal_ignoring_case(operation, TAGS_WRITE_OPERATION):
        target = resource_uri or envelope.subject or ""
        cluster = _cluster_from_tags_uri(target)
        if cluster is None:
            return IgnoredEvent(
                envelope.event_id, envelope.event_type, "tags write on something other than a cluster"
            )
        return ClusterWriteEvent(cluster, envelope.event_id, envelope.event_time, correlation_id, operation)

    if not equal_ignoring_case(operation, CLUSTER_WRITE_OPERATION):
        return IgnoredEvent(
            envelope.event_id,
            envelope.event_type,
            f"operation {operation!r} is not {CLUSTER_WRITE_OPERATION}",
        )
    field, raw = ("data.resourceUri", resource_uri) if resource_uri else ("subject", envelope.subject)
    if raw is None:
        raise _fail("data.resourceUri", "missing: neither data.resourceUri nor subject names the cluster")
    try:
        cluster_id = parse_cluster_id(raw)
    except InvalidResourceIdError as exc:
        raise _fail(field, exc.message) from exc
    return ClusterWriteEvent(cluster_id, envelope.event_id, envelope.event_time, correlation_id, operation)


def parse_policy_state(
    event: object,
    *,
    clock: Callable[[], datetime] = utc_now,
    max_future_skew: timedelta = DEFAULT_MAX_FUTURE_SKEW,
) -> PolicyStateEvent | IgnoredEvent:
    """Parse one PolicyInsights state event.

    :keyword clock: the current time (aware); injected in tests.
    :keyword max_future_skew: how far past ``clock()`` ``data.timestamp`` may lie.
    :returns: :class:`PolicyStateEvent` for Created/Changed, :class:`IgnoredEvent` for Deleted and other
        types.
    :raises MalformedEventError: naming the field; ``data.timestamp`` when it lies in the future.
    """
    envelope = _envelope(event)
    wanted = (POLICY_STATE_CREATED, POLICY_STATE_CHANGED)
    if not any(equal_ignoring_case(envelope.event_type, event_type) for event_type in wanted):
        return IgnoredEvent(
            envelope.event_id, envelope.event_type, "not a PolicyStateCreated or PolicyStateChanged event"
        )

    def resource(raw: object, field: str) -> ResourceId:
        try:
            return parse_resource_id(raw)
        except InvalidResourceIdError as exc:
            raise _fail(field, exc.message) from exc

    if envelope.subject is None:
        raise _fail("subject", "missing: the subject names the evaluated resource")
    timestamp = parse_time(envelope.data.get("timestamp"), field="data.timestamp")
    latest = clock() + max_future_skew
    if timestamp > latest:
        raise _fail(
            "data.timestamp",
            f"{envelope.data.get('timestamp')!r} lies in the future (later than {latest.isoformat()}):"
            " a state from the future would make every real state after it look stale",
        )
    return PolicyStateEvent(
        resource_id=resource(envelope.subject, "subject"),
        compliance_state=str(_string(envelope.data, "complianceState", "data.complianceState")),
        policy_assignment_id=resource(
            _string(envelope.data, "policyAssignmentId", "data.policyAssignmentId"), "data.policyAssignmentId"
        ),
        policy_definition_id=resource(
            _string(envelope.data, "policyDefinitionId", "data.policyDefinitionId"), "data.policyDefinitionId"
        ),
        timestamp=timestamp,
        event_id=envelope.event_id,
        event_type=envelope.event_type,
        event_time=envelope.event_time,
    )


# ------------------------------------------------------------------------------------------- provenance


class EventProvenanceError(MalformedEventError):
    """An event's origin fields disagree with each other or with the configured scope, or it is a replay (too
    old) or from the future; ``field`` names the field that does not fit."""


@dataclass(frozen=True)
class ProvenanceRules:
    """What a trusted event looks like, from the deployment's configuration."""

    scope: Scope | None = None
    """The configured scope; the topic's subscription must be one it can contain. ``None``: not checked."""
    tenant_id: str | None = None
    """The tenant the remediator serves; ``data.tenantId``, when the event carries one, must equal it.
    ``None``: not checked."""
    max_age: timedelta = DEFAULT_MAX_EVENT_AGE
    """The oldest ``eventTime``/``time`` accepted (older: a replay)."""
    max_future_skew: timedelta = DEFAULT_MAX_FUTURE_SKEW
    """How far past now ``eventTime``/``time`` may lie."""


def _subscription_of(raw: object, field: str) -> str:
    """The subscription GUID an id-valued field names (``/subscriptions/<guid>[/...]``)."""
    try:
        parsed = parse_resource_id(raw, field=field)
    except InvalidResourceIdError as exc:
        raise EventProvenanceError(exc.message, field=field, source="event") from exc
    if parsed.subscription_id is None:
        raise EventProvenanceError(f"{raw!r} names no subscription", field=field, source="event")
    return parsed.subscription_id


def _reject(field: str, message: str) -> EventProvenanceError:
    return EventProvenanceError(message, field=field, source="event")


def subscription_may_be_in_scope(scope: Scope, subscription_id: str) -> bool:
    """Whether any cluster of the subscription can be in ``scope``: it is listed, holds a listed resource
    group, or management groups are configured (their membership is an I/O lookup, left to the handler's
    per-cluster scope check); and it is not excluded."""
    key = ignore_case_key(f"/subscriptions/{subscription_id}")
    if any(ref.key == key for ref in scope.exclude_subscriptions):
        return False
    if any(ref.key == key for ref in scope.subscriptions):
        return True
    if any(
        ref.subscription_scope is not None and ignore_case_key(ref.subscription_scope) == key
        for ref in scope.resource_groups
    ):
        return True
    return bool(scope.management_groups)


def check_provenance(
    event: Mapping[str, Any],
    parsed: ClusterWriteEvent | PolicyStateEvent,
    *,
    rules: ProvenanceRules,
    clock: Callable[[], datetime] = utc_now,
) -> None:
    """Reject an event whose origin does not add up; called by the trigger after :func:`parse_cluster_write`
    or :func:`parse_policy_state` returned an event to act on.

    Checked, in order (each failure names its field):

    * ``eventTime``/``time``: not older than ``rules.max_age`` (a replay) and not later than now plus
      ``rules.max_future_skew``;
    * ``topic`` (Event Grid schema) or ``source`` (CloudEvents): present, an ARM id naming a subscription
      (system topics are ``/subscriptions/<guid>``), and that subscription is the resource's;
    * ``data.subscriptionId``, when present: the resource's subscription;
    * ``data.tenantId``, when present and ``rules.tenant_id`` is set: that tenant;
    * ``subject`` and ``data.resourceUri``, when both are present: the same resource under Azure's case rule;
    * the subscription may be in ``rules.scope`` (:func:`subscription_may_be_in_scope`).

    :raises EventProvenanceError: (a :class:`MalformedEventError`) naming the field.
    """
    cloud = "specversion" in event
    time_field, topic_field = ("time", "source") if cloud else ("eventTime", "topic")
    now = clock()
    event_time = (
        parsed.event_time
        if parsed.event_time is not None
        else parse_time(event.get(time_field), field=time_field)
    )
    if event_time < now - rules.max_age:
        raise _reject(
            time_field,
            f"{event.get(time_field)!r} is older than {rules.max_age} (a replay; events that old are not"
            " delivered by Event Grid's retries)",
        )
    if event_time > now + rules.max_future_skew:
        raise _reject(time_field, f"{event.get(time_field)!r} lies in the future")

    resource = parsed.cluster_id if isinstance(parsed, ClusterWriteEvent) else parsed.resource_id
    subscription = resource.subscription_id
    if subscription is None:
        raise _reject("subject", f"{resource} names no subscription")
    if event.get(topic_field) is None:
        raise _reject(topic_field, "missing: the topic names the subscription the event comes from")
    if _subscription_of(event.get(topic_field), topic_field) != subscription:
        raise _reject(topic_field, f"{event.get(topic_field)!r} is not the subscription of {resource}")

    data = event.get("data")
    data = data if isinstance(data, Mapping) else {}
    data_subscription = data.get("subscriptionId")
    if data_subscription is not None and not (
        isinstance(data_subscription, str) and ignore_case_key(data_subscription.strip()) == subscription
    ):
        raise _reject("data.subscriptionId", f"{data_subscription!r} is not the subscription of {resource}")
    data_tenant = data.get("tenantId")
    if (
        data_tenant is not None
        and rules.tenant_id is not None
        and not (
            isinstance(data_tenant, str) and equal_ignoring_case(data_tenant.strip(), rules.tenant_id.strip())
        )
    ):
        raise _reject("data.tenantId", f"{data_tenant!r} is not the configured tenant")

    subject, resource_uri = event.get("subject"), data.get("resourceUri")
    if subject and resource_uri:
        try:
            same = parse_resource_id(subject) == parse_resource_id(resource_uri)
        except InvalidResourceIdError as exc:
            raise _reject("subject", exc.message) from exc
        if not same:
            raise _reject("subject", f"{subject!r} is not data.resourceUri {resource_uri!r}")

    if rules.scope is not None and not subscription_may_be_in_scope(rules.scope, subscription):
        raise _reject(topic_field, f"subscription {subscription} is not in the configured scope")
