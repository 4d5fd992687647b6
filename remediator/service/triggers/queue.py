"""Queue triggers: a durable work item -> one reconcile; a poisoned work item -> a journaled give-up.

The worker re-enqueues a ``wait`` with a delay and ``attempt + 1``; after ``REMEDIATOR_MAX_ATTEMPTS`` hops
without progress (no reconcile found more links settled: ``WorkItem.next_attempt``) it journals a give-up.
Anything it raises is retried by the Functions host and, after five dequeues, lands in the poison queue, whose
handler journals a give-up. Nothing is dropped silently. The work-item contract and its one parser are
:mod:`remediator.core.work_item`.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass

from remediator.core.errors import UserInputError
from remediator.core.outcomes import Outcome, OutcomeKind, ReconcileReport
from remediator.core.plan.requirement import settled_links
from remediator.core.work_item import WorkItem
from remediator.service.ports import HandlerContext
from remediator.service.triggers.delivery import now_iso, wait_delay

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class WorkItemResult:
    """What the queue worker did with one work item."""

    status: str
    """``done`` (final outcome), ``requeued`` (wait, attempt + 1) or ``gave-up`` (bound reached)."""
    report: ReconcileReport
    next_attempt: int | None = None


def handle_work_item(body: bytes | str, *, dequeue_count: int, ctx: HandlerContext) -> WorkItemResult:
    """``reconcile_worker``: run one reconcile for a work item.

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
    report = ctx.reconciler.reconcile(
        item.cluster_id, attempt=item.attempt, correlation_id=item.correlation_id, trigger="queue"
    )
    if report.outcome.kind is not OutcomeKind.WAIT:
        logger.info("work item %s (attempt %d): %s", item.cluster_id, item.attempt, report.outcome.kind)
        return WorkItemResult("done", report)
    follow_up = item.next_attempt(reason=report.outcome.why, satisfied_links=settled_links(report.links))
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
        )
        ctx.outcomes.record(gave_up)
        logger.warning(
            "gave up on %s after %d attempts without progress: %s",
            item.cluster_id,
            stalled,
            report.outcome.why,
        )
        return WorkItemResult("gave-up", gave_up)
    ctx.work.enqueue_work(
        follow_up.cluster_id,
        attempt=follow_up.attempt,
        source=follow_up.source,
        reason=follow_up.reason,
        correlation_id=follow_up.correlation_id,
        delay_s=wait_delay(ctx, report.outcome),
        progress_attempt=follow_up.progress_attempt,
        satisfied_links=follow_up.satisfied_links,
    )
    return WorkItemResult("requeued", report, follow_up.attempt)


def handle_poison_item(body: bytes | str, *, dequeue_count: int, ctx: HandlerContext) -> ReconcileReport:
    """``reconcile_poison``: a work item the host gave up on -> journal a give-up (and publish it)."""
    try:
        item = WorkItem.from_message(body)
        cluster_id, attempt, correlation = item.cluster_id.canonical, item.attempt, item.correlation_id
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
        started_at=now_iso(),
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
