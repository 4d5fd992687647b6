"""The sweep: find every in-scope cluster that needs work, decide, and enqueue it, at estate scale.

Events cover clusters as they change; the sweep catches everything events missed. It must stay cheap at ten
thousand clusters: the inventory comes from a handful of Resource Graph queries (streamed, never listed in
full), each row is decided by the same pure core the reconciler uses, and work items are enqueued in batches
by a bounded pool of threads, so memory and open connections stay flat however big the estate is.

Writes are paced here too. Every enqueued cluster will cost ARM writes (extension PUT in the cluster's
subscription; container PUT and role assignment in the storage account's subscription), so the sweep reserves
them in a :class:`~remediator.core.pacing.WritePacer` and turns the wait into the work item's visibility
delay: workers then meet ARM's write bucket (200 burst, 10/s per subscription) instead of a wall of 429s.

The summary (counts by decision reason, by extension state, by blocker) is journaled and published as an
``AksBackupRemediator.SweepCompleted`` outcome event, except in dry runs, which write nothing.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from remediator.adapters.graph import InventoryRow, InventoryStats
from remediator.core.blockers import BlockerKind
from remediator.core.config import RemediatorConfig
from remediator.core.decision import Reason, decide
from remediator.core.errors import UserInputError
from remediator.core.ids import ResourceId
from remediator.core.inventory_query import InventoryPlan, build_policy_summary_query, plan_inventory
from remediator.core.pacing import WritePacer
from remediator.core.snapshot import ClusterSnapshot
from remediator.service.ports import EnqueuesWork, RecordsSweeps, StreamsInventory

logger = logging.getLogger(__name__)


@dataclass
class SweepSummary:
    """What one sweep found and did. ``to_json`` is what the CLI prints and the journal stores."""

    correlation_id: str
    dry_run: bool
    mode: str
    started_at: str
    duration_s: float = 0.0
    candidates: int = 0
    """Rows the inventory returned: in-scope clusters (narrowed by include tags) without a Succeeded backup
    extension."""
    enqueued: int = 0
    would_enqueue: int = 0
    """Dry run or audit mode: clusters that would have been enqueued."""
    blocked: int = 0
    """Selected, but a blocker only a human can lift stops the install; not enqueued."""
    deferred: int = 0
    """Selected, but stopped; not enqueued, the next sweep looks again."""
    invalid: int = 0
    """Rows that could not be read as a cluster (logged, skipped)."""
    enqueue_failures: int = 0
    by_reason: Counter[str] = field(default_factory=Counter)
    by_extension_state: Counter[str] = field(default_factory=Counter)
    by_blocker: Counter[str] = field(default_factory=Counter)
    """Blockers of the selected clusters that were not enqueued."""
    max_delay_s: float = 0.0
    """Largest visibility delay given to a work item by write pacing."""
    inventory_queries: int = 0
    inventory_throttled: int = 0
    inventory_quota_waits: int = 0
    policy_states: dict[str, int] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """Every cluster that needed a work item got one."""
        return self.enqueue_failures == 0

    def to_json(self) -> dict[str, Any]:
        return {
            "correlationId": self.correlation_id,
            "dryRun": self.dry_run,
            "mode": self.mode,
            "startedAt": self.started_at,
            "durationSeconds": round(self.duration_s, 3),
            "candidates": self.candidates,
            "enqueued": self.enqueued,
            "wouldEnqueue": self.would_enqueue,
            "blocked": self.blocked,
            "deferred": self.deferred,
            "invalid": self.invalid,
            "enqueueFailures": self.enqueue_failures,
            "byReason": dict(sorted(self.by_reason.items())),
            "byExtensionState": dict(sorted(self.by_extension_state.items())),
            "byBlocker": dict(sorted(self.by_blocker.items())),
            "maxDelaySeconds": round(self.max_delay_s, 3),
            "inventory": {
                "queries": self.inventory_queries,
                "throttled": self.inventory_throttled,
                "quotaWaits": self.inventory_quota_waits,
            },
            "policyStates": dict(sorted(self.policy_states.items())),
        }


@dataclass(frozen=True)
class _Work:
    cluster_id: ResourceId
    delay_s: float
    reason: str


ProgressCallback = Callable[[int, int], None]
"""Called with (rows seen, work items enqueued so far) as the sweep advances."""


class Sweeper:
    """Enumerate, decide, enqueue.

    :keyword config: the remediator config.
    :keyword inventory: streams inventory rows (Resource Graph).
    :keyword work: the work queue.
    :keyword recorders: where the summary goes (journal, publisher); skipped in dry runs.
    :keyword pacer: write pacing shared with the process; ``None`` = no visibility delays.
    :keyword batch_size: work items per enqueue batch.
    :keyword max_concurrency: enqueue batches in flight at once.
    :keyword policy_states: also count Policy 1/2 compliance states (one extra small query per scope).
    :keyword prefilter_tags: let Resource Graph narrow rows by include tag names.
    """

    def __init__(
        self,
        *,
        config: RemediatorConfig,
        inventory: StreamsInventory,
        work: EnqueuesWork,
        recorders: tuple[RecordsSweeps, ...] = (),
        pacer: WritePacer | None = None,
        batch_size: int = 50,
        max_concurrency: int = 8,
        policy_states: bool = False,
        prefilter_tags: bool = True,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if batch_size < 1 or max_concurrency < 1:
            raise ValueError("batch_size and max_concurrency must be at least 1")
        self.config = config
        self.inventory = inventory
        self.work = work
        self.recorders = recorders
        self.pacer = pacer
        self.batch_size = batch_size
        self.max_concurrency = max_concurrency
        self.policy_states = policy_states
        self.prefilter_tags = prefilter_tags
        self._clock = clock

    def plan(self) -> InventoryPlan:
        """The Resource Graph requests for this config (raises ``UserInputError`` naming a bad field)."""
        return plan_inventory(self.config, prefilter_tags=self.prefilter_tags)

    def run(self, *, dry_run: bool, progress: ProgressCallback | None = None) -> SweepSummary:
        """Sweep once. Nothing is enqueued in a dry run or audit mode; the summary is recorded unless dry."""
        plan = self.plan()
        mode = self.config.remediation.mode
        summary = SweepSummary(
            correlation_id=f"sweep-{uuid.uuid4()}",
            dry_run=dry_run,
            mode=mode,
            started_at=datetime.now(UTC).isoformat(),
        )
        start = self._clock()
        stats = InventoryStats()
        enqueue = not dry_run and mode != "audit"
        seen = 0
        with _BatchEnqueuer(self.work, summary, max_concurrency=self.max_concurrency) as enqueuer:
            batch: list[_Work] = []
            for row in self.inventory.iter_rows(plan, stats=stats):
                seen += 1
                item = self._consider(row, summary)
                if item is not None:
                    if enqueue:
                        batch.append(item)
                        if len(batch) >= self.batch_size:
                            enqueuer.submit(batch)
                            batch = []
                    else:
                        summary.would_enqueue += 1
                if progress is not None and seen % 100 == 0:
                    progress(seen, enqueuer.done + len(batch))
            if batch:
                enqueuer.submit(batch)
        summary.candidates = seen
        if self.policy_states:
            summary.policy_states = self.inventory.policy_summary(
                plan, build_policy_summary_query(), stats=stats
            )
        summary.inventory_queries = stats.queries
        summary.inventory_throttled = stats.throttled
        summary.inventory_quota_waits = stats.quota_waits
        summary.duration_s = self._clock() - start
        if progress is not None:
            progress(seen, summary.enqueued)
        logger.info(
            "sweep %s: %d candidates, %d enqueued, %d blocked, %d deferred, %d failures in %.2f s",
            summary.correlation_id,
            summary.candidates,
            summary.enqueued,
            summary.blocked,
            summary.deferred,
            summary.enqueue_failures,
            summary.duration_s,
        )
        if not dry_run:
            for recorder in self.recorders:
                try:
                    recorder.record_sweep(summary.to_json())
                except Exception:  # a journal/publisher outage must not lose the enqueued work
                    logger.exception("could not record the sweep summary with %s", type(recorder).__name__)
        return summary

    def _consider(self, row: InventoryRow, summary: SweepSummary) -> _Work | None:
        """Decide one row; return the work item to enqueue, or ``None``."""
        try:
            snapshot = ClusterSnapshot.from_arm(row.body, source="resource graph")
        except UserInputError as exc:
            summary.invalid += 1
            logger.warning("skipping unreadable inventory row %s: %s", row.cluster_id, exc)
            return None
        groups = row.management_groups
        decision = decide(snapshot, self.config, management_groups_of=lambda _sub: groups)
        summary.by_reason[decision.reason.value] += 1
        extension_state = (row.extension_state or "missing").lower()
        summary.by_extension_state[extension_state] += 1
        if decision.reason is not Reason.SELECTED:
            return None
        # the blockers' own policy (core.blockers): a human one would make the reconcile give up, a
        # long-lived one (stopped) would wait through every attempt; both are left to the next sweep
        held = [b for b in decision.blockers if b.kind is BlockerKind.HUMAN]
        if held:
            summary.blocked += 1
            summary.by_blocker.update(b.value for b in held)
            return None
        later = [b for b in decision.blockers if b.kind is BlockerKind.LONG_LIVED]
        if later:
            summary.deferred += 1
            summary.by_blocker.update(b.value for b in later)
            return None
        delay = self._reserve_writes(snapshot, decision.storage_account_id)
        summary.max_delay_s = max(summary.max_delay_s, delay)
        return _Work(cluster_id=snapshot.id, delay_s=delay, reason=f"sweep:extension-{extension_state}")

    def _reserve_writes(self, snapshot: ClusterSnapshot, storage_account_id: ResourceId | None) -> float:
        """Reserve the ARM writes this cluster will cost; the longest wait becomes the visibility delay."""
        if self.pacer is None:
            return 0.0
        mode = self.config.remediation.mode
        delay = self.pacer.reserve(snapshot.subscription_id, 1)  # extension PUT / remediation task PUT
        if mode == "install" and storage_account_id is not None and storage_account_id.subscription_id:
            storage_writes = 2 if self.config.remediation.grant_storage_access else 1
            delay = max(delay, self.pacer.reserve(str(storage_account_id.subscription_id), storage_writes))
        return delay


class _BatchEnqueuer:
    """Runs enqueue batches on a bounded pool; at most ``2 * max_concurrency`` batches wait in memory."""

    def __init__(self, work: EnqueuesWork, summary: SweepSummary, *, max_concurrency: int) -> None:
        self._work = work
        self._summary = summary
        self._pool = ThreadPoolExecutor(max_workers=max_concurrency, thread_name_prefix="sweep-enqueue")
        self._slots = threading.BoundedSemaphore(2 * max_concurrency)
        self._lock = threading.Lock()
        self.done = 0

    def __enter__(self) -> _BatchEnqueuer:
        return self

    def __exit__(self, *exc: object) -> None:
        self._pool.shutdown(wait=True)

    def submit(self, batch: list[_Work]) -> None:
        self._slots.acquire()
        future = self._pool.submit(self._run, batch)
        future.add_done_callback(lambda _f: self._slots.release())

    def _run(self, batch: list[_Work]) -> None:
        summary = self._summary
        for item in batch:
            try:
                self._work.enqueue_work(
                    item.cluster_id,
                    attempt=0,
                    source="sweep",
                    reason=item.reason,
                    correlation_id=summary.correlation_id,
                    delay_s=item.delay_s,
                )
            except Exception:
                logger.exception("could not enqueue %s", item.cluster_id)
                with self._lock:
                    summary.enqueue_failures += 1
                continue
            with self._lock:
                summary.enqueued += 1
                self.done += 1
