"""Event Grid triggers: a cluster was written, or a policy state changed -> reconcile inline, or hand over.

- ``on_cluster_write``: a ``ResourceWriteSuccess`` for a managed cluster (created, updated, re-tagged).
- ``on_policy_state``: a NonCompliant policy state of a managed cluster, applied in ``data.timestamp`` order
  per (cluster, assignment); an older state than the last one seen is dropped as stale.

Events are untrusted input: a malformed one is logged and dropped (raising would make Event Grid retry it for
24 hours). Every decision is journaled: a reconcile journals itself; a dropped, ignored, stale or out-of-scope
event is journaled as ``skipped`` with the reason. The delivery policy is :mod:`.delivery`.

Before an event is acted on it must (issue 15, items 3 and 4):

* be nested no deeper than ``untrusted_json.DEFAULT_MAX_DEPTH``. The Functions worker decodes the payload
  itself (``azure.functions.eventgrid.EventGridEventInConverter.decode``: ``json.loads``) before this module
  runs; the host in front of it parses every delivery with Newtonsoft's ``JToken.Parse`` (Azure/
  azure-sdk-for-net ``Microsoft.Azure.WebJobs.Extensions.EventGrid/src/TriggerBinding/HttpRequestProcessor
  .cs``), whose reader stops at a depth of 64 since Json.NET 13.0.1, so what reaches the worker is far too
  shallow for a ``RecursionError``; what reaches this module is measured again without recursion;
* pass :func:`remediator.core.events.check_provenance` against the configured scope and tenant and the
  ``REMEDIATOR_EVENT_MAX_AGE_SECONDS`` / ``REMEDIATOR_EVENT_MAX_SKEW_SECONDS`` settings: topic, subject,
  ``data.resourceUri``, ``data.subscriptionId`` and ``data.tenantId`` agree, and the event is neither a
  replay nor from the future. A policy state is checked before it can move the durable policy-order mark.
"""

from __future__ import annotations

import logging
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from remediator.adapters.management_groups import ManagementGroupLookupError
from remediator.core.alerts import describe
from remediator.core.catalog import DEFAULT_POLICY_DEFINITIONS, PROTECT_POLICY_DEFINITIONS
from remediator.core.errors import UserInputError
from remediator.core.events import (
    ClusterWriteEvent,
    MalformedEventError,
    PolicyStateEvent,
    ProvenanceRules,
    check_provenance,
    parse_cluster_write,
    parse_policy_state,
)
from remediator.core.ids import ResourceId, parse_cluster_id
from remediator.core.outcomes import Outcome, ReconcileReport
from remediator.core.untrusted_json import JsonTooDeepError, check_value_depth
from remediator.core.work_item import Source
from remediator.service.ports import HandlerContext
from remediator.service.triggers.delivery import (
    HANDOVER_DELAY_S,
    IGNORED_EVENTS,
    MALFORMED_EVENTS,
    STALE_EVENTS,
    Delivery,
    journal_decision,
    reconcile_inline,
    scope_contains,
    wait_delay,
)

logger = logging.getLogger(__name__)

SCOPE_RETRY_S = 30.0
"""Delay of the work item that takes over an event whose management-group scope could not be looked up."""


@dataclass(frozen=True)
class EventResult:
    """What an event handler did with one event (for logs and tests)."""

    status: str
    """``ignored``, ``dropped`` (malformed), ``stale`` (policy order), ``out-of-scope``, ``reconciled`` or
    ``enqueued``."""
    detail: str = ""
    cluster_id: str | None = None
    report: ReconcileReport | None = None


def _scope_check(ctx: HandlerContext, delivery: Delivery, *, what: str) -> EventResult | None:
    """``None`` when the cluster is in scope; otherwise the result that leaves the event alone.

    When the management-group membership cannot be looked up now (Resource Graph failed), the event is not
    judged: a delayed work item takes it over, and the worker's reconcile decides the scope again (writing
    nothing while the lookup still fails).
    """
    cluster = delivery.cluster
    try:
        inside = scope_contains(ctx, cluster)
    except ManagementGroupLookupError as exc:
        logger.warning("%s for %s: scope undecided (%s); handing over to the work queue", what, cluster, exc)
        why = f"management-group membership unknown for now: {exc}"
        delivery.hand_over(ctx, reason=why, delay_s=wait_delay(ctx, Outcome.wait(SCOPE_RETRY_S, why)))
        return EventResult("enqueued", why, cluster.canonical)
    if inside:
        return None
    if inside is None:
        logger.warning(
            "%s for %s ignored: the scope lists management groups and their membership cannot be resolved"
            " per event; the timer sweep (Resource Graph) covers this cluster",
            what,
            cluster,
        )
        return EventResult(
            "out-of-scope", "management-group membership unknown; left to the sweep", cluster.canonical
        )
    logger.info("%s for %s ignored: the cluster is outside the configured scope", what, cluster)
    return EventResult("out-of-scope", "outside the configured scope", cluster.canonical)


def provenance_rules(ctx: HandlerContext) -> ProvenanceRules:
    """What a trusted event looks like for this deployment: the configured scope and tenant, and the age and
    skew bounds of the app settings."""
    return ProvenanceRules(
        scope=ctx.config.scope,
        tenant_id=ctx.settings.tenant_id,
        max_age=timedelta(seconds=ctx.settings.event_max_age_seconds),
        max_future_skew=timedelta(seconds=ctx.settings.event_max_skew_seconds),
    )


def _shallow(event: object) -> None:
    """:raises MalformedEventError: the event is nested deeper than any event the product reads."""
    try:
        check_value_depth(event, source="event")
    except JsonTooDeepError as exc:
        raise MalformedEventError(exc.message, field="(event)", source="event") from exc


def _reconcile(ctx: HandlerContext, delivery: Delivery) -> EventResult:
    """Reconcile within the inline budget; anything unfinished (or unexpected) goes to the work queue."""
    cluster = delivery.cluster.canonical
    try:
        inline = reconcile_inline(ctx, delivery)
    except UserInputError as exc:
        logger.warning("event for %s refused by the reconciler: %s", cluster, exc)
        return EventResult("dropped", str(exc), cluster)
    except Exception as exc:  # unexpected: the queue worker (with its retries and poison queue) owns it
        logger.exception("inline reconcile of %s failed; handing over to the work queue", cluster)
        why = f"inline reconcile failed: {type(exc).__name__}: {exc}"
        delivery.hand_over(ctx, reason=why, delay_s=HANDOVER_DELAY_S)
        return EventResult("enqueued", why, cluster)
    if inline.handed_over is not None:
        return EventResult("enqueued", inline.why, cluster, inline.report)
    assert inline.report is not None
    elapsed = time.monotonic() - delivery.started
    outcome = inline.report.outcome
    kind = describe(outcome.kind)
    logger.info("reconciled %s inline in %.1f s: %s (%s)", cluster, elapsed, kind, outcome.why)
    return EventResult("reconciled", outcome.why, cluster, inline.report)


_DECISION_KEYS = {"dropped": MALFORMED_EVENTS, "ignored": IGNORED_EVENTS, "stale": STALE_EVENTS}


def _journaled(ctx: HandlerContext, event: dict[str, Any], what: str, result: EventResult) -> EventResult:
    """Journal an event decision that reached no reconcile (dropped, ignored, stale, out of scope): under the
    cluster id when it is out of scope, else under a synthetic key (``delivery.MALFORMED_EVENTS`` ...)."""
    if result.status == "out-of-scope" and result.cluster_id:
        key = result.cluster_id
    elif result.status in _DECISION_KEYS:
        key = _DECISION_KEYS[result.status]
    else:
        return result
    event_id = _event_id(event)
    about = f" for {result.cluster_id}" if result.cluster_id else ""
    why = f"{what} {event_id or '(no id)'}{about} {result.status}: {result.detail}"
    journal_decision(ctx, key, why[:1000], correlation_id=event_id or str(uuid.uuid4()))
    return result


def _event_id(event: dict[str, Any]) -> str:
    """The event's ``id`` for logs and the journal (whatever was sent, cut to 200 characters)."""
    raw = event.get("id") if isinstance(event, dict) else None
    return str(raw)[:200] if raw is not None and raw != "" else ""


def _deliver(
    ctx: HandlerContext,
    event: dict[str, Any],
    cluster: ResourceId,
    *,
    source: Source,
    what: str,
    started: float,
    event_time: datetime | None,
) -> EventResult:
    delivery = Delivery(
        cluster, source, _event_id(event) or str(uuid.uuid4()), started, event_time=event_time
    )
    outside = _scope_check(ctx, delivery, what=what)
    return outside if outside is not None else _reconcile(ctx, delivery)


def handle_cluster_write_event(event: dict[str, Any], *, ctx: HandlerContext) -> EventResult:
    """``on_cluster_write``: a ``ResourceWriteSuccess`` for a managed cluster -> reconcile it.

    :param event: one Event Grid event as JSON (Event Grid schema keys: ``id``, ``eventType``, ``subject``,
        ``data`` ...), or CloudEvents 1.0.
    :raises Exception: only when the follow-up work item cannot be enqueued (Event Grid then redelivers).
    """
    return _journaled(ctx, event, "cluster-write event", _cluster_write(event, ctx=ctx))


def _cluster_write(event: dict[str, Any], *, ctx: HandlerContext) -> EventResult:
    started = time.monotonic()
    try:
        _shallow(event)
        parsed = parse_cluster_write(event)
    except MalformedEventError as exc:
        logger.error("malformed cluster-write event %s dropped: %s", _event_id(event), exc)
        return EventResult("dropped", str(exc))
    if not isinstance(parsed, ClusterWriteEvent):
        logger.debug("event %s ignored: %s", parsed.event_id, parsed.reason)
        return EventResult("ignored", parsed.reason)
    try:
        check_provenance(event, parsed, rules=provenance_rules(ctx))
    except MalformedEventError as exc:
        logger.error("cluster-write event %s dropped (provenance): %s", parsed.event_id, exc)
        return EventResult("dropped", str(exc), parsed.cluster_id.canonical)
    return _deliver(
        ctx,
        event,
        parsed.cluster_id,
        source="event",
        what="cluster-write event",
        started=started,
        event_time=parsed.event_time,
    )


def _assignment_wanted(ctx: HandlerContext, parsed: PolicyStateEvent) -> bool:
    configured = ctx.config.remediation.policy_assignment_ids
    if configured:
        return parsed.policy_assignment_id in configured
    remediation = ctx.config.remediation
    protects = remediation.mode == "protect" or (
        remediation.mode == "audit" and remediation.audit_plans == "protect"
    )
    wanted = PROTECT_POLICY_DEFINITIONS if protects else DEFAULT_POLICY_DEFINITIONS
    return parsed.policy_definition_id.key in wanted


def handle_policy_state_event(event: dict[str, Any], *, ctx: HandlerContext) -> EventResult:
    """``on_policy_state``: a NonCompliant policy state of a managed cluster -> reconcile (or a task).

    Events are applied in ``data.timestamp`` order per (cluster, assignment): an older state than the last one
    seen is dropped as stale, even when it arrives later.
    """
    return _journaled(ctx, event, "policy event", _policy_state(event, ctx=ctx))


def _policy_state(event: dict[str, Any], *, ctx: HandlerContext) -> EventResult:
    started = time.monotonic()
    rules = provenance_rules(ctx)
    try:
        _shallow(event)
        parsed = parse_policy_state(event, max_future_skew=rules.max_future_skew)
    except MalformedEventError as exc:
        logger.error("malformed policy-state event %s dropped: %s", _event_id(event), exc)
        return EventResult("dropped", str(exc))
    if not isinstance(parsed, PolicyStateEvent):
        logger.debug("policy event %s ignored: %s", parsed.event_id, parsed.reason)
        return EventResult("ignored", parsed.reason)
    if not parsed.targets_cluster:
        logger.debug(
            "policy event %s ignored: %s is not a managed cluster", parsed.event_id, parsed.resource_id
        )
        return EventResult("ignored", "not a managed cluster")
    if not _assignment_wanted(ctx, parsed):
        logger.debug("policy event %s ignored: assignment not configured", parsed.event_id)
        return EventResult("ignored", "assignment not configured")
    try:
        cluster = parse_cluster_id(parsed.resource_id.canonical, field="subject")  # narrow to a cluster id
    except UserInputError as exc:
        logger.error("policy event %s dropped: %s", parsed.event_id, exc)
        return EventResult("dropped", str(exc))
    try:
        check_provenance(event, parsed, rules=rules)  # before it may move the durable policy-order mark
    except MalformedEventError as exc:
        logger.error("policy event %s dropped (provenance): %s", parsed.event_id, exc)
        return EventResult("dropped", str(exc), cluster.canonical)
    if not ctx.policy_order.advance(cluster.key, parsed.policy_assignment_id.key, parsed.timestamp):
        logger.info(
            "policy state of %s at %s is older than one already seen; dropped", cluster, parsed.timestamp
        )
        return EventResult("stale", f"older than the last seen state ({parsed.timestamp})", cluster.canonical)
    if not parsed.non_compliant:
        return EventResult("ignored", "compliant", cluster.canonical)
    return _deliver(
        ctx,
        event,
        cluster,
        source="policy",
        what="policy event",
        started=started,
        event_time=parsed.event_time or parsed.timestamp,
    )
