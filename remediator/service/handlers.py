"""Framework-free handlers behind every Azure Function: events, queue items, poison items and the timer.

``function_app.py`` only decodes a trigger into plain Python values, calls one function here and encodes the
result, so the behaviour below is testable without the Functions host and reused by the local runner. The HTTP
API lives in :mod:`remediator.service.http_api` and is re-exported here.

Delivery rules these handlers implement (see docs/operations.md):

- Event Grid waits 30 s and redelivers on an exception, so an event handler reconciles inline only within
  ``REMEDIATOR_INLINE_BUDGET_SECONDS`` (counted from the start of the invocation), on the bounded inline pool
  (:mod:`remediator.service.inline`); a ``wait`` outcome, an exhausted budget, a full inline pool or an
  unexpected error becomes a delayed work item. It raises only when that work item cannot be enqueued (the
  enqueue is sized to what is left of the 30 s). Malformed events are logged
  and dropped (raising would make Event Grid retry them for 24 hours).
- The queue worker re-enqueues a ``wait`` with a delay and ``attempt + 1``; at ``REMEDIATOR_MAX_ATTEMPTS`` it
  journals a give-up. Anything it raises is retried by the host and, after five dequeues, lands in the
  poison queue, whose handler journals a give-up. Nothing is dropped silently.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from remediator.adapters.management_groups import ManagementGroupLookupError
from remediator.core.errors import UserInputError
from remediator.core.events import (
    POLICY_DEFINITION_IDS,
    ClusterWriteEvent,
    MalformedEventError,
    PolicyStateEvent,
    parse_cluster_write,
    parse_policy_state,
)
from remediator.core.ids import ResourceId, parse_cluster_id
from remediator.core.outcomes import Outcome, OutcomeKind, ReconcileReport
from remediator.service.app_context import (
    IGNORED_EVENTS,
    MALFORMED_EVENTS,
    STALE_EVENTS,
    HandlerContext,
    journal_decision,
    scope_contains,
)
from remediator.service.http_api import (
    HttpResult,
    handle_health,
    handle_http_explain,
    handle_http_remediate,
    handle_http_report,
)
from remediator.service.inline import InlineUnavailable, run_inline

logger = logging.getLogger(__name__)

__all__ = [
    "EventResult",
    "HttpResult",
    "SweepIncompleteError",
    "WorkItemResult",
    "handle_cluster_write_event",
    "handle_health",
    "handle_http_explain",
    "handle_http_remediate",
    "handle_http_report",
    "handle_poison_item",
    "handle_policy_state_event",
    "handle_sweep",
    "handle_work_item",
]

DEFAULT_POLICY_DEFINITIONS: frozenset[str] = frozenset(
    POLICY_DEFINITION_IDS[role].lower()
    for role in ("extension-installed-audit", "install-with-tag-dine", "install-without-tag-dine")
)
"""Built-in definitions whose NonCompliant states are acted on when no assignments are configured."""

_HANDOVER_DELAY_S = 5.0
"""Delay of the work item that takes over when the inline budget ran out or the inline pool was full (an
inline reconcile that outlived its budget still finishes; the reconciler's writes are idempotent)."""
EVENT_DELIVERY_TIMEOUT_S = 30.0
"""Event Grid waits this long for a webhook (Functions) delivery before it counts it failed and retries."""
DELIVERY_MARGIN_S = 3.0
"""Kept free of the delivery timeout for the Functions host's own overhead."""
MIN_ENQUEUE_BUDGET_S = 1.0
"""The hand-over enqueue gets at least this long, even when the budget was spent."""
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


@dataclass(frozen=True)
class WorkItemResult:
    """What the queue worker did with one work item."""

    status: str
    """``done`` (final outcome), ``requeued`` (wait, attempt + 1) or ``gave-up`` (bound reached)."""
    report: ReconcileReport
    next_attempt: int | None = None


# --------------------------------------------------------------------------------------------- helpers


def _now_iso() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


def _scope_check(
    ctx: HandlerContext,
    cluster: ResourceId,
    *,
    what: str,
    source: str,
    correlation_id: str,
    started: float,
) -> EventResult | None:
    """``None`` when the cluster is in scope; otherwise the result that leaves the event alone.

    When the management-group membership cannot be looked up now (Resource Graph failed), the event is not
    judged: a delayed work item takes it over, and the worker's reconcile decides the scope again (writing
    nothing while the lookup still fails). It raises only when that work item cannot be enqueued.
    """
    try:
        inside = scope_contains(ctx, cluster)
    except ManagementGroupLookupError as exc:
        logger.warning("%s for %s: scope undecided (%s); handing over to the work queue", what, cluster, exc)
        why = f"management-group membership unknown for now: {exc}"
        _hand_over(
            ctx,
            cluster.canonical,
            source=source,
            reason=why,
            correlation_id=correlation_id,
            delay_s=_wait_delay(ctx, Outcome.wait(SCOPE_RETRY_S, why)),
            started=started,
        )
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


def _wait_delay(ctx: HandlerContext, outcome: Outcome) -> float:
    wanted = outcome.retry_after_s if outcome.retry_after_s is not None else 30.0
    return float(min(max(wanted, 1.0), ctx.settings.max_wait_seconds))


def _enqueue_budget(started: float) -> float:
    """Seconds left for the hand-over enqueue before Event Grid's delivery timeout (minus a margin)."""
    left = EVENT_DELIVERY_TIMEOUT_S - DELIVERY_MARGIN_S - (time.monotonic() - started)
    return max(left, MIN_ENQUEUE_BUDGET_S)


def _hand_over(
    ctx: HandlerContext,
    cluster_id: str,
    *,
    source: str,
    reason: str,
    correlation_id: str,
    delay_s: float,
    started: float,
) -> None:
    """Enqueue a work item within what is left of the Event Grid delivery timeout since ``started``; an
    error here (or running out of that time) propagates so the trigger's own retry takes over."""
    ctx.work.enqueue_work(
        cluster_id,
        attempt=0,
        source=source,
        reason=reason,
        correlation_id=correlation_id,
        delay_s=delay_s,
        timeout_s=_enqueue_budget(started),
    )
    logger.info(
        "work item for %s enqueued (delay %.0f s, source %s): %s", cluster_id, delay_s, source, reason
    )


def _reconcile_inline(
    ctx: HandlerContext, cluster_id: str, *, source: str, correlation_id: str, started: float
) -> EventResult:
    """Reconcile within the inline budget; hand anything unfinished over to the work queue."""
    budget = ctx.settings.inline_budget_seconds - (time.monotonic() - started)
    try:
        report = run_inline(
            lambda: ctx.reconciler.reconcile(cluster_id, correlation_id=correlation_id), budget_s=budget
        )
    except InlineUnavailable as exc:
        why = str(exc)
        _hand_over(
            ctx,
            cluster_id,
            source=source,
            reason=why,
            correlation_id=correlation_id,
            delay_s=_HANDOVER_DELAY_S,
            started=started,
        )
        return EventResult("enqueued", why, cluster_id)
    except UserInputError as exc:
        logger.warning("event for %s refused by the reconciler: %s", cluster_id, exc)
        return EventResult("dropped", str(exc), cluster_id)
    except Exception as exc:  # unexpected: let the queue worker (with its retries and poison queue) own it
        logger.exception("inline reconcile of %s failed; handing over to the work queue", cluster_id)
        why = f"inline reconcile failed: {type(exc).__name__}: {exc}"
        _hand_over(
            ctx,
            cluster_id,
            source=source,
            reason=why,
            correlation_id=correlation_id,
            delay_s=_HANDOVER_DELAY_S,
            started=started,
        )
        return EventResult("enqueued", why, cluster_id)
    elapsed = time.monotonic() - started
    if report.outcome.kind is OutcomeKind.WAIT:
        delay = _wait_delay(ctx, report.outcome)
        _hand_over(
            ctx,
            cluster_id,
            source=source,
            reason=report.outcome.why,
            correlation_id=correlation_id,
            delay_s=delay,
            started=started,
        )
        return EventResult("enqueued", report.outcome.why, cluster_id, report)
    logger.info(
        "reconciled %s inline in %.1f s: %s (%s)",
        cluster_id,
        elapsed,
        report.outcome.kind,
        report.outcome.why,
    )
    return EventResult("reconciled", report.outcome.why, cluster_id, report)


# --------------------------------------------------------------------------------------------- Event Grid


_DECISION_KEYS = {"dropped": MALFORMED_EVENTS, "ignored": IGNORED_EVENTS, "stale": STALE_EVENTS}


def _journaled(ctx: HandlerContext, event: dict[str, Any], what: str, result: EventResult) -> EventResult:
    """Journal an event decision that reached no reconcile (dropped, ignored, stale, out of scope): under the
    cluster id when it is out of scope, else under a synthetic key (``app_context.MALFORMED_EVENTS`` ...)."""
    if result.status == "out-of-scope" and result.cluster_id:
        key = result.cluster_id
    elif result.status in _DECISION_KEYS:
        key = _DECISION_KEYS[result.status]
    else:
        return result
    event_id = str(event.get("id") or "")
    about = f" for {result.cluster_id}" if result.cluster_id else ""
    why = f"{what} {event_id or '(no id)'}{about} {result.status}: {result.detail}"
    journal_decision(ctx, key, why[:1000], correlation_id=event_id or str(uuid.uuid4()))
    return result


def handle_cluster_write_event(event: dict[str, Any], *, ctx: HandlerContext) -> EventResult:
    """``on_cluster_write``: a ``ResourceWriteSuccess`` for a managed cluster -> reconcile it.

    Every decision is journaled: a reconcile journals itself; a dropped, ignored or out-of-scope event is
    journaled as ``skipped`` with the reason (see :func:`_journaled`).

    :param event: one Event Grid event as JSON (Event Grid schema keys: ``id``, ``eventType``, ``subject``,
        ``data`` ...).
    :raises Exception: only when the follow-up work item cannot be enqueued (Event Grid then redelivers).
    """
    return _journaled(ctx, event, "cluster-write event", _cluster_write(event, ctx=ctx))


def _cluster_write(event: dict[str, Any], *, ctx: HandlerContext) -> EventResult:
    started = time.monotonic()
    try:
        parsed = parse_cluster_write(event)
    except MalformedEventError as exc:
        logger.error("malformed cluster-write event %s dropped: %s", event.get("id"), exc)
        return EventResult("dropped", str(exc))
    if not isinstance(parsed, ClusterWriteEvent):
        logger.debug("event %s ignored: %s", parsed.event_id, parsed.reason)
        return EventResult("ignored", parsed.reason)
    cluster = parsed.cluster_id
    correlation = str(event.get("id") or uuid.uuid4())
    outside = _scope_check(
        ctx, cluster, what="cluster-write event", source="event", correlation_id=correlation, started=started
    )
    if outside is not None:
        return outside
    return _reconcile_inline(
        ctx, cluster.canonical, source="event", correlation_id=correlation, started=started
    )


def _assignment_wanted(ctx: HandlerContext, parsed: PolicyStateEvent) -> bool:
    configured = ctx.config.remediation.policy_assignment_ids
    if configured:
        return parsed.policy_assignment_id in configured
    return parsed.policy_definition_id.key in DEFAULT_POLICY_DEFINITIONS


def handle_policy_state_event(event: dict[str, Any], *, ctx: HandlerContext) -> EventResult:
    """``on_policy_state``: a NonCompliant policy state of a managed cluster -> reconcile (or a task).

    Events are applied in ``data.timestamp`` order per (cluster, assignment): an older state than the last one
    seen is dropped as stale, even when it arrives later. Decisions that reach no reconcile are journaled as
    for cluster-write events.
    """
    return _journaled(ctx, event, "policy event", _policy_state(event, ctx=ctx))


def _policy_state(event: dict[str, Any], *, ctx: HandlerContext) -> EventResult:
    started = time.monotonic()
    try:
        parsed = parse_policy_state(event)
    except MalformedEventError as exc:
        logger.error("malformed policy-state event %s dropped: %s", event.get("id"), exc)
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
        cluster = parse_cluster_id(parsed.resource_id.canonical, field="subject")
    except UserInputError as exc:
        logger.error("policy event %s dropped: %s", parsed.event_id, exc)
        return EventResult("dropped", str(exc))
    if not ctx.policy_order.advance(cluster.key, parsed.policy_assignment_id.key, parsed.timestamp):
        logger.info(
            "policy state of %s at %s is older than one already seen; dropped", cluster, parsed.timestamp
        )
        return EventResult("stale", f"older than the last seen state ({parsed.timestamp})", cluster.canonical)
    if not parsed.non_compliant:
        return EventResult("ignored", "compliant", cluster.canonical)
    correlation = str(event.get("id") or uuid.uuid4())
    outside = _scope_check(
        ctx, cluster, what="policy event", source="policy", correlation_id=correlation, started=started
    )
    if outside is not None:
        return outside
    return _reconcile_inline(
        ctx, cluster.canonical, source="policy", correlation_id=correlation, started=started
    )


# --------------------------------------------------------------------------------------------- queue


@dataclass(frozen=True)
class WorkItemFields:
    """A decoded work item (the contract in docs/architecture.md)."""

    cluster_id: str
    attempt: int
    source: str
    reason: str
    correlation_id: str


def parse_work_item(body: bytes | str) -> WorkItemFields:
    """Decode a work item message body.

    :raises UserInputError: the body is not a work item; the field is named.
    """
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise UserInputError("message body is not JSON", field="body", source="work item") from exc
    if not isinstance(data, dict):
        raise UserInputError("message body is not a JSON object", field="body", source="work item")
    cluster = parse_cluster_id(data.get("clusterId"), field="clusterId")
    attempt = data.get("attempt", 0)
    if not isinstance(attempt, int) or isinstance(attempt, bool) or attempt < 0:
        raise UserInputError("must be a non-negative integer", field="attempt", source="work item")
    return WorkItemFields(
        cluster_id=cluster.canonical,
        attempt=attempt,
        source=str(data.get("source", "")),
        reason=str(data.get("reason", "")),
        correlation_id=str(data.get("correlationId") or uuid.uuid4()),
    )


def handle_work_item(body: bytes | str, *, dequeue_count: int, ctx: HandlerContext) -> WorkItemResult:
    """``reconcile_worker``: run one reconcile for a work item.

    :raises UserInputError: a malformed message (the host retries it, then the poison handler journals it).
    :raises Exception: an unexpected failure; the host retries and finally moves it to the poison queue.
    """
    item = parse_work_item(body)
    if dequeue_count > 1:
        logger.warning(
            "work item for %s is on delivery %d (earlier ones failed; the host poisons it after 5)",
            item.cluster_id,
            dequeue_count,
        )
    report = ctx.reconciler.reconcile(
        item.cluster_id, attempt=item.attempt, correlation_id=item.correlation_id
    )
    if report.outcome.kind is not OutcomeKind.WAIT:
        logger.info("work item %s (attempt %d): %s", item.cluster_id, item.attempt, report.outcome.kind)
        return WorkItemResult("done", report)
    next_attempt = item.attempt + 1
    if next_attempt >= ctx.settings.max_attempts:
        gave_up = ReconcileReport(
            cluster_id=report.cluster_id,
            decision=report.decision,
            outcome=Outcome.gave_up(
                f"still waiting after {next_attempt} attempts (REMEDIATOR_MAX_ATTEMPTS): {report.outcome.why}"
            ),
            actions=(),
            mode=report.mode,
            attempt=item.attempt,
            extension_state=report.extension_state,
            started_at=_now_iso(),
            correlation_id=item.correlation_id,
        )
        ctx.outcomes.record(gave_up)
        logger.warning(
            "gave up on %s after %d attempts: %s", item.cluster_id, next_attempt, report.outcome.why
        )
        return WorkItemResult("gave-up", gave_up)
    ctx.work.enqueue_work(
        item.cluster_id,
        attempt=next_attempt,
        source=item.source or "queue",
        reason=report.outcome.why,
        correlation_id=item.correlation_id,
        delay_s=_wait_delay(ctx, report.outcome),
    )
    return WorkItemResult("requeued", report, next_attempt)


def handle_poison_item(body: bytes | str, *, dequeue_count: int, ctx: HandlerContext) -> ReconcileReport:
    """``reconcile_poison``: a work item the host gave up on -> journal a give-up (and publish it)."""
    try:
        item = parse_work_item(body)
        cluster_id, attempt, correlation = item.cluster_id, item.attempt, item.correlation_id
        why = "work item failed on every delivery and was moved to the poison queue"
    except UserInputError as exc:
        raw = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
        cluster_id, attempt, correlation = "(unreadable work item)", 0, str(uuid.uuid4())
        why = f"malformed work item moved to the poison queue ({exc}): {raw[:300]!r}"
    report = ReconcileReport(
        cluster_id=cluster_id,
        decision=None,
        outcome=Outcome.gave_up(why),
        mode=ctx.config.remediation.mode,
        attempt=attempt,
        started_at=_now_iso(),
        correlation_id=correlation,
    )
    ctx.outcomes.record(report)
    logger.error(
        "poison work item for %s journaled as gave_up (poison delivery %d): %s",
        cluster_id,
        dequeue_count,
        why,
    )
    return report


# --------------------------------------------------------------------------------------------- timer


class SweepIncompleteError(RuntimeError):
    """The sweep could not enqueue every cluster that needs work (raised after its summary was recorded)."""


def handle_sweep(*, past_due: bool, ctx: HandlerContext) -> Any:
    """``sweep``: enumerate in-scope clusters and enqueue those needing work (the Sweeper does it).

    :raises SweepIncompleteError: some work items could not be enqueued. The summary is already recorded
        (journal, ``SweepCompleted``); raising makes the invocation fail, so the Functions failure alert fires
        instead of the loss passing as a success. The next sweep enqueues those clusters again.
    """
    if past_due:
        logger.warning("sweep timer is past due; running now")
    summary = ctx.sweeper.run(dry_run=False)
    logger.info("sweep finished: %s", summary)
    if not summary.ok:
        counts = summary.to_json()
        raise SweepIncompleteError(
            f"sweep {counts.get('correlationId')}: {counts.get('enqueueFailures')} work items could not be"
            " enqueued (summary recorded; the next sweep enqueues them again)"
        )
    return summary
