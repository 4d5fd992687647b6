"""The delivery policy every trigger shares: the inline budget, the hand-over to the work queue, the wait
clamp, the scope check and the journaling of decisions that reconciled nothing.

- An Event Grid delivery times out after 30 s (and is redelivered on an exception); an HTTP request after
  230 s. So a trigger reconciles inline only within ``REMEDIATOR_INLINE_BUDGET_SECONDS`` (counted from the
  start of the invocation), on the bounded inline pool (:mod:`remediator.service.inline`).
- What does not finish inline (a ``wait`` outcome, an exhausted budget, a full pool, an unexpected error)
  is handed over to the work queue as a delayed work item, sized to what is left of the delivery timeout; a
  trigger raises only when that hand-over cannot be enqueued (then the trigger's own retry takes over).
- Every wait becomes a visibility delay clamped to ``[1 s, REMEDIATOR_MAX_WAIT_SECONDS]``.
- A hand-over goes through the work port, which keeps one chain of work items per cluster (issue 17 F4,
  ``core.chains``): it joins the chain in flight when that chain will look at the cluster after this
  delivery and no later than it wants, and starts a chain otherwise.
- A wait that only a change of the cluster's state ends (a long-lived blocker, ``core.alerts.parks``: a
  stopped cluster) is not handed over: the cluster's next event, or the sweep, brings it back.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from remediator.core.alerts import parks
from remediator.core.ids import ResourceId
from remediator.core.outcomes import Outcome, OutcomeKind, ReconcileReport
from remediator.core.work_item import Source
from remediator.service.inline import InlineUnavailable, run_inline
from remediator.service.ports import HandlerContext

logger = logging.getLogger(__name__)

HANDOVER_DELAY_S = 5.0
"""Delay of the work item that takes over when the inline budget ran out or the inline pool was full (an
inline reconcile that outlived its budget still finishes; the reconciler's writes are idempotent)."""
EVENT_DELIVERY_TIMEOUT_S = 30.0
"""Event Grid waits this long for a webhook (Functions) delivery before it counts it failed and retries."""
DELIVERY_MARGIN_S = 3.0
"""Kept free of the delivery timeout for the Functions host's own overhead."""
MIN_ENQUEUE_BUDGET_S = 1.0
"""The hand-over enqueue gets at least this long, even when the budget was spent."""
DEFAULT_WAIT_S = 30.0
"""The delay of a wait that names none."""

MALFORMED_EVENTS = "(malformed event)"
IGNORED_EVENTS = "(ignored event)"
STALE_EVENTS = "(stale policy event)"
"""Journal keys for event decisions that concern no cluster of ours (the cluster, when known, is named in
the reason). Decisions about a cluster that never reaches a reconcile (out of scope) go under its id."""


def now_iso() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


def wait_delay(ctx: HandlerContext, outcome: Outcome) -> float:
    """A wait's visibility delay, clamped to ``[1 s, REMEDIATOR_MAX_WAIT_SECONDS]``."""
    wanted = outcome.retry_after_s if outcome.retry_after_s is not None else DEFAULT_WAIT_S
    return float(min(max(wanted, 1.0), ctx.settings.max_wait_seconds))


def enqueue_budget(started: float) -> float:
    """Seconds left for a hand-over enqueue before Event Grid's delivery timeout (minus a margin)."""
    left = EVENT_DELIVERY_TIMEOUT_S - DELIVERY_MARGIN_S - (time.monotonic() - started)
    return max(left, MIN_ENQUEUE_BUDGET_S)


@dataclass(frozen=True)
class Delivery:
    """One trigger invocation: what it is about, where it came from, and when it started.

    :param cluster: the cluster.
    :param source: the work-item source a hand-over gets.
    :param correlation_id: the cause's id (event id, request id).
    :param started: ``time.monotonic()`` at the start of the invocation.
    :param bounded: whether the hand-over enqueue must fit the Event Grid delivery timeout.
    :param event_time: the triggering Event Grid event's time (telemetry: event->write latency).
    """

    cluster: ResourceId
    source: Source
    correlation_id: str
    started: float
    bounded: bool = True
    event_time: datetime | None = None

    def hand_over(self, ctx: HandlerContext, *, reason: str, delay_s: float) -> None:
        """Enqueue a work item (attempt 0) within what is left of the delivery; an error here propagates so
        the trigger's own retry takes over."""
        ctx.work.enqueue_work(
            self.cluster,
            attempt=0,
            source=self.source,
            reason=reason,
            correlation_id=self.correlation_id,
            delay_s=delay_s,
            timeout_s=enqueue_budget(self.started) if self.bounded else None,
        )
        logger.info(
            "work item for %s enqueued (delay %.0f s, source %s): %s",
            self.cluster,
            delay_s,
            self.source,
            reason,
        )


@dataclass(frozen=True)
class Inline:
    """The result of :func:`reconcile_inline`: the report (``None`` when handed over before it finished), and
    the delay of the hand-over (``None`` when nothing was enqueued)."""

    report: ReconcileReport | None
    handed_over: float | None
    why: str


def reconcile_inline(
    ctx: HandlerContext,
    delivery: Delivery,
    *,
    dry_run: bool = False,
    hand_over_waits: bool = True,
    on_unavailable: Callable[[str], None] | None = None,
) -> Inline:
    """Reconcile within the inline budget; hand anything unfinished over to the work queue.

    :keyword dry_run: write nothing (a dry run never hands over: ``on_unavailable`` decides instead).
    :keyword hand_over_waits: a ``wait`` outcome becomes a delayed work item.
    :raises Exception: the reconcile's ``UserInputError`` (bad id), or the hand-over's enqueue error.
    """
    budget = ctx.settings.inline_budget_seconds - (time.monotonic() - delivery.started)
    try:
        report = run_inline(
            lambda: ctx.reconciler.reconcile(
                delivery.cluster,
                dry_run=dry_run,
                correlation_id=delivery.correlation_id,
                trigger=delivery.source,
                event_time=delivery.event_time,
            ),
            budget_s=budget,
        )
    except InlineUnavailable as exc:
        why = str(exc)
        if dry_run or on_unavailable is not None:
            if on_unavailable is not None:
                on_unavailable(why)
            return Inline(None, None, why)
        delivery.hand_over(ctx, reason=why, delay_s=HANDOVER_DELAY_S)
        return Inline(None, HANDOVER_DELAY_S, why)
    if report.outcome.kind is OutcomeKind.WAIT and parks(report):
        return Inline(report, None, report.outcome.why)
    if report.outcome.kind is OutcomeKind.WAIT and hand_over_waits and not dry_run:
        delay = wait_delay(ctx, report.outcome)
        delivery.hand_over(ctx, reason=report.outcome.why, delay_s=delay)
        return Inline(report, delay, report.outcome.why)
    return Inline(report, None, report.outcome.why)


def scope_contains(ctx: HandlerContext, cluster: ResourceId) -> bool | None:
    """Whether the configured scope contains the cluster (or, for a subscription or resource-group id, every
    cluster below it); ``None`` when it cannot be known here.

    That is the case only for a context built without a ``management_groups_of`` resolver when the scope
    lists management groups and the id is not in a listed subscription or resource group (an id does not
    carry its management-group ancestry). The runtime always wires a Resource Graph resolver for such scopes;
    its lookup failures propagate as ``ManagementGroupLookupError`` so the caller retries instead of guessing.
    """
    scope = ctx.config.scope
    try:
        if cluster.provider is None:
            return scope.contains_scope(cluster, management_groups_of=ctx.management_groups_of)
        return scope.contains(cluster, management_groups_of=ctx.management_groups_of)
    except ValueError:
        if scope.management_groups and ctx.management_groups_of is None:
            return None
        raise


def journal_decision(
    ctx: HandlerContext, key: str, why: str, *, correlation_id: str, attempt: int = 0
) -> ReconcileReport:
    """Journal a decision that wrote nothing and reconciled nothing (``skipped`` with the reason).

    Best effort: a journal failure is logged at WARNING and does not fail the caller (such a decision changed
    nothing; failing would only make Event Grid redeliver a malformed event for 24 hours).
    """
    report = ReconcileReport(
        cluster_id=key,
        decision=None,
        outcome=Outcome.skipped(why),
        mode=ctx.config.remediation.mode,
        attempt=attempt,
        started_at=now_iso(),
        correlation_id=correlation_id,
    )
    try:
        (ctx.decisions or ctx.outcomes).record(report)
    except Exception as exc:  # best effort by design (see above)
        logger.warning("journaling the decision for %s failed: %s: %s", key, type(exc).__name__, exc)
    return report
