"""The timer trigger: the periodic sweep (``service/sweep.py``) that catches everything events missed, then
the event wiring of subscriptions that joined a managed management group (``service/wiring.py``)."""

from __future__ import annotations

import logging
from typing import Any

from remediator.service.ports import HandlerContext

logger = logging.getLogger(__name__)


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
    try:
        ctx.telemetry.swept(summary.to_json())  # gauges: selected, protected, blocked, gave up (as reported)
    except Exception:  # telemetry must never fail the sweep
        logger.exception("recording the sweep's gauges failed")
    if ctx.wiring is not None:  # subscriptions that joined a managed management group get their events
        try:
            ctx.wiring.run()
        except Exception:  # the step records its own failures; anything else must not fail the sweep
            logger.exception("event wiring failed")
    if not summary.ok:
        counts = summary.to_json()
        raise SweepIncompleteError(
            f"sweep {counts.get('correlationId')}: {counts.get('enqueueFailures')} work items could not be"
            " enqueued (summary recorded; the next sweep enqueues them again)"
        )
    return summary
