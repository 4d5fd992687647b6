"""Queue triggers: a durable work item -> one reconcile; a poisoned work item -> a journaled give-up.

Work items of one cluster form one chain (issue 17 F4; policy in :mod:`remediator.core.chains`, storage in
``adapters/chains.py``): an item runs only if the cluster's chain mark names it, otherwise it **retires**
(another chain, or a later hop of its own, looks after the cluster). Before the reconcile the chain's
successor is already enqueued, hidden and renewed while the reconcile runs, so a worker that dies mid-hop
costs the chain at most the lease, not the host's 10-minute message lock.

After the reconcile: a ``wait`` continues the chain with ``attempt + 1`` after the wait's delay; after
``REMEDIATOR_MAX_ATTEMPTS`` hops without progress (no reconcile found more links settled:
``WorkItem.next_attempt``) it journals a give-up instead. A wait that only a change of the cluster's state
ends (a long-lived blocker: a stopped cluster, ``core.alerts.parks``) ends the chain: the cluster comes back
with its next event or the sweep. Anything the handler raises is retried by the Functions host and, after
five dequeues, lands in the poison queue, whose handler journals a give-up. Nothing is dropped silently. The
work-item contract and its one parser are :mod:`remediator.core.work_item`.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass

from remediator.core.alerts import alert_line, describe, parks, repeat_line
from remediator.core.errors import UserInputError
from remediator.core.outcomes import Outcome, OutcomeKind, ReconcileReport
from remediator.core.plan.requirement import settled_links
from remediator.core.work_item import WorkItem
from remediator.service.ports import HandlerContext, Hop
from remediator.service.triggers.delivery import now_iso, wait_delay

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class WorkItemResult:
    """What the queue worker did with one work item."""

    status: str
    """``done`` (final outcome), ``requeued`` (wait, attempt + 1), ``parked`` (a long-lived blocker: the chain
    ends), ``gave-up`` (bound reached), ``retired`` (another chain looks after the cluster; no reconcile) or
    ``superseded`` (a newer chain took over while this one ran)."""
    report: ReconcileReport | None
    next_attempt: int | None = None


def record_give_up(ctx: HandlerContext, report: ReconcileReport) -> bool:
    """Journal (and publish) a give-up the triggers made; log the alert line only when it is the first of
    its cause for the cluster. Returns whether it was."""
    first = ctx.outcomes.record(report)
    if first is False:
        logger.info(repeat_line(report))
        return False
    logger.warning(alert_line(report))
    return True


def handle_work_item(body: bytes | str, *, dequeue_count: int, ctx: HandlerContext) -> WorkItemResult:
    """``reconcile_worker``: run one reconcile for a work item (see the module docstring).

    :raises UserInputError: a malformed message (the host retries it, then the poison handler journals it).
    :raises Exception: an unexpected failure; the host retries and finally moves it to the poison queue.
    """
    item = WorkItem.from_message(body)
    if dequeue_count > 1:
        logger.warning(
            "work item for %s is on delivery %d (earlier ones failed; the host poisons it after 5)",
            item.cluster_id,
            dequeue_count,
        )
    hop: Hop | None = None
    if ctx.chains is not None:
        hop = ctx.chains.begin(item)
        if hop is None:
            logger.info(
                "work item for %s (attempt %d) retires: another chain looks after it",
                item.cluster_id,
                item.attempt,
            )
            return WorkItemResult("retired", None)
    try:
        report = ctx.reconciler.reconcile(
            item.cluster_id,
            attempt=item.attempt,
            correlation_id=item.correlation_id,
            trigger="queue",
            take_ahead=False,  # queued work is not latency-bound; most of it writes nothing
        )
    except BaseException:
        if hop is not None:
            hop.abort()
        raise
    if report.outcome.kind is not OutcomeKind.WAIT or parks(report):
        if hop is not None:
            hop.end()
        status = "parked" if report.outcome.kind is OutcomeKind.WAIT else "done"
        logger.info(
            "work item %s (attempt %d): %s%s",
            item.cluster_id,
            item.attempt,
            describe(report.outcome.kind),
            " (parked until the cluster changes or the sweep)" if status == "parked" else "",
        )
        return WorkItemResult(status, report)
    satisfied = settled_links(report.links)
    follow_up = item.next_attempt(reason=report.outcome.why, satisfied_links=satisfied)
    if follow_up.attempts_without_progress >= ctx.settings.max_attempts:
        stalled = follow_up.attempts_without_progress
        gave_up = ReconcileReport(
            cluster_id=report.cluster_id,
            decision=report.decision,
            outcome=Outcome.gave_up(
                f"still waiting after {stalled} attempts without progress"
                f"{f' ({follow_up.attempt} in all)' if follow_up.attempt != stalled else ''}"
                f" (REMEDIATOR_MAX_ATTEMPTS): {report.outcome.why}"
            ),
            actions=(),
            mode=report.mode,
            attempt=item.attempt,
            extension_state=report.extension_state,
            started_at=now_iso(),
            correlation_id=item.correlation_id,
            links=report.links,
        )
        if hop is not None:
            hop.end()
        record_give_up(ctx, gave_up)
        return WorkItemResult("gave-up", gave_up)
    delay = wait_delay(ctx, report.outcome)
    if hop is not None:
        if not hop.next(delay_s=delay, reason=follow_up.reason, satisfied_links=satisfied):
            return WorkItemResult("superseded", report)
        return WorkItemResult("requeued", report, follow_up.attempt)
    ctx.work.enqueue_work(
        follow_up.cluster_id,
        attempt=follow_up.attempt,
        source=follow_up.source,
        reason=follow_up.reason,
        correlation_id=follow_up.correlation_id,
        progress_attempt=follow_up.progress_attempt,
        satisfied_links=follow_up.satisfied_links,
        delay_s=delay,
    )
    return WorkItemResult("requeued", report, follow_up.attempt)


def handle_poison_item(body: bytes | str, *, dequeue_count: int, ctx: HandlerContext) -> ReconcileReport:
    """``reconcile_poison``: a work item the host gave up on -> journal a give-up (and publish it).

    The host deletes the poison message once this returns, so the give-up carries the whole message (the
    work item's JSON, or the raw body of an unreadable one) in its ``why``: the journal is where an operator
    finds it (docs/operations.md, runbook).
    """
    raw = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
    try:
        item = WorkItem.from_message(body)
        cluster_id, attempt, correlation = item.cluster_id.canonical, item.attempt, item.correlation_id
        why = (
            "work item failed on every delivery and was moved to the poison queue; the message was"
            f" {raw[:600]}"
        )
    except UserInputError as exc:
        cluster_id, attempt, correlation = "(unreadable work item)", 0, str(uuid.uuid4())
        why = f"malformed work item moved to the poison queue ({exc}): {raw[:600]!r}"
    report = ReconcileReport(
        cluster_id=cluster_id,
        decision=None,
        outcome=Outcome.gave_up(why),
        mode=ctx.config.remediation.mode,
        attempt=attempt,
        started_at=now_iso(),
        correlation_id=correlation,
    )
    logger.info("poison work item for %s (poison delivery %d)", cluster_id, dequeue_count)
    record_give_up(ctx, report)
    return report
