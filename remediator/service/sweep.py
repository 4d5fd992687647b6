"""The sweep: find every in-scope cluster whose protection chain is not satisfied, decide, and enqueue it, at
estate scale; name every cluster it looked at; journal each decision once per change.

Events cover clusters as they change; the sweep catches everything events missed. It must stay cheap at ten
thousand clusters: the inventory comes from a handful of Resource Graph queries (streamed, never listed in
full; the chain's grants and backup instances joined from side queries), each row is decided by the same
pure core the reconciler uses, and work items are enqueued in batches by a bounded pool of threads, so memory
and open connections stay flat however big the estate is.

**Selection rule** (:func:`remediator.core.coverage.sweep_verdict`): a selected cluster without a blocker
that needs a person (or a long-lived one: stopped) is enqueued when any link of the mode's chain that
Resource Graph can see is not satisfied: the backup extension Succeeded, the extension identity's Storage Blob
Data Contributor on the region's storage account (install mode); in protect mode also the region's vault, the
vault identity's and the cluster identity's roles, the backup instance in the region's vault and its
ProtectionConfigured state (an instance in ProtectionError is enqueued at once). A cluster protected by
another vault's instance is left alone (``elsewhere``: never enqueued). A cluster whose visible links are all
satisfied is still enqueued once per :data:`~remediator.core.coverage.REVERIFY_PERIOD_S` (re-verification),
in a slot fixed by a hash of its id that falls between the previous sweep of the same scope and this one,
because some links are invisible to Resource Graph (the backup container and the storage account's region;
in protect mode the trusted-access binding, the backup policy and validation).

**Decision journal** (:class:`~remediator.service.ports.JournalsDecisions`): the sweep reads every cluster's
last decision key in one partition query, and journals a cluster (a history row in its own partition) only
when the key changed: blocked, deferred (stopped), not selected and satisfied clusters are journaled once per
change, never once per sweep; enqueued clusters are journaled by their reconcile.

Writes are paced here too. Every enqueued cluster will cost ARM writes (extension PUT in the cluster's
subscription; container PUT and role assignment in the storage account's subscription), so the sweep reserves
them in a :class:`~remediator.core.pacing.WritePacer` and turns the wait into the work item's visibility
delay: workers then meet ARM's write bucket (200 burst, 10/s per subscription) instead of a wall of 429s.

The summary (counts by decision reason, by extension state, by blocker, by link needing work) is journaled and
published as an ``AksBackupRemediator.SweepCompleted`` outcome event, except in dry runs, which write
nothing. With ``list_clusters`` the summary also names every cluster (the report's row plus what the sweep
did), for the CLI and ``POST /api/remediate {"scope"}``; the journaled summary never carries the list.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from remediator.adapters.graph import InventoryRow, InventoryStats
from remediator.core.config import RemediatorConfig
from remediator.core.coverage import (
    FIRST_WINDOW_S,
    JOURNALED_VERDICTS,
    REVERIFY_PERIOD_S,
    ChainFacts,
    DecisionIndex,
    JournaledDecision,
    SweepVerdict,
    VerdictKind,
    VisibleChain,
    assess,
    cluster_row,
    decision_key,
    reason_text,
    reverification_due,
    sweep_verdict,
)
from remediator.core.decision import Decision, decide
from remediator.core.errors import UserInputError
from remediator.core.ids import ResourceId
from remediator.core.inventory_query import InventoryPlan, build_policy_summary_query, plan_fleet_inventory
from remediator.core.naming import cluster_key
from remediator.core.outcomes import Outcome, ReconcileReport
from remediator.core.pacing import WritePacer
from remediator.core.plan.links import EXTENSION_INSTALLED
from remediator.core.report_document import cluster_to_dict
from remediator.core.snapshot import ClusterSnapshot
from remediator.service.ports import EnqueuesWork, JournalsDecisions, RecordsSweeps, StreamsInventory

logger = logging.getLogger(__name__)

ENQUEUE_RETRY_DELAYS_S = (0.5, 2.0)
"""Pauses before the retries of one work item's enqueue that failed (a storage hiccup: a connection reset, a
timeout). A work item the sweep cannot enqueue waits for the next sweep (an hour), which the 10,000-cluster
chaos baseline did for 4 clusters after one failed try each; a failure that outlasts the retries is still
counted and fails the sweep (``SweepIncompleteError``)."""

DECISION_BATCH = 100
"""Changed decisions journaled per call (the index rows go in one entity-group transaction)."""


@dataclass
class SweepSummary:
    """What one sweep found and did. ``to_json`` is what the CLI prints and the journal stores."""

    correlation_id: str
    dry_run: bool
    mode: str
    started_at: str
    duration_s: float = 0.0
    candidates: int = 0
    """Rows the inventory returned: in-scope clusters (narrowed by the include tags' prefilter)."""
    enqueued: int = 0
    would_enqueue: int = 0
    """Dry run or audit mode: clusters that would have been enqueued."""
    blocked: int = 0
    """Selected, but a blocker only a human can lift stops the install; not enqueued."""
    deferred: int = 0
    """Selected, but stopped; not enqueued, the next sweep looks again."""
    selected: int = 0
    """Clusters the tag rules select (all of them pass the include-tag prefilter)."""
    protected: int = 0
    """Selected clusters whose every visible link is satisfied and that no human blocker holds (the report's
    ``protected``, as far as Resource Graph shows it; telemetry's ``remediator.sweep.protected`` gauge)."""
    satisfied: int = 0
    """Selected, every link Resource Graph shows is satisfied, no re-verification due: nothing to do."""
    protected_elsewhere: int = 0
    """Protect mode: selected, and a backup instance in another vault protects it: left alone."""
    reverified: int = 0
    """Selected and satisfied, but its daily re-verification was due: enqueued (or would be)."""
    invalid: int = 0
    """Rows that could not be read as a cluster (logged, skipped)."""
    enqueue_failures: int = 0
    by_reason: Counter[str] = field(default_factory=Counter)
    by_extension_state: Counter[str] = field(default_factory=Counter)
    by_blocker: Counter[str] = field(default_factory=Counter)
    """Blockers of the selected clusters that were not enqueued."""
    by_need: Counter[str] = field(default_factory=Counter)
    """Enqueued clusters by the first link not satisfied (``storage-access-granted:missing``...)."""
    decisions_journaled: int = 0
    """Clusters whose decision changed since the last sweep, journaled now."""
    decision_journal_failures: int = 0
    max_delay_s: float = 0.0
    """Largest visibility delay given to a work item by write pacing."""
    inventory_queries: int = 0
    inventory_throttled: int = 0
    inventory_quota_waits: int = 0
    policy_states: dict[str, int] = field(default_factory=dict)
    clusters: list[dict[str, Any]] | None = None
    """With ``list_clusters``: every cluster looked at (the report's row, plus ``decision``: what the sweep
    did)."""

    @property
    def ok(self) -> bool:
        """Every cluster that needed a work item got one."""
        return self.enqueue_failures == 0

    def to_json(self, *, clusters: bool = False) -> dict[str, Any]:
        """The summary; ``clusters`` adds the per-cluster list (when the sweep collected one)."""
        data: dict[str, Any] = {
            "correlationId": self.correlation_id,
            "dryRun": self.dry_run,
            "mode": self.mode,
            "startedAt": self.started_at,
            "durationSeconds": round(self.duration_s, 3),
            "candidates": self.candidates,
            "selected": self.selected,
            "protected": self.protected,
            "enqueued": self.enqueued,
            "wouldEnqueue": self.would_enqueue,
            "blocked": self.blocked,
            "deferred": self.deferred,
            "satisfied": self.satisfied,
            "protectedElsewhere": self.protected_elsewhere,
            "reverified": self.reverified,
            "invalid": self.invalid,
            "enqueueFailures": self.enqueue_failures,
            "byReason": dict(sorted(self.by_reason.items())),
            "byExtensionState": dict(sorted(self.by_extension_state.items())),
            "byBlocker": dict(sorted(self.by_blocker.items())),
            "byNeed": dict(sorted(self.by_need.items())),
            "decisionsJournaled": self.decisions_journaled,
            "decisionJournalFailures": self.decision_journal_failures,
            "maxDelaySeconds": round(self.max_delay_s, 3),
            "inventory": {
                "queries": self.inventory_queries,
                "throttled": self.inventory_throttled,
                "quotaWaits": self.inventory_quota_waits,
            },
            "policyStates": dict(sorted(self.policy_states.items())),
        }
        if clusters and self.clusters is not None:
            data["clusters"] = self.clusters
        return data


@dataclass(frozen=True)
class _Work:
    cluster_id: ResourceId
    delay_s: float
    reason: str


ProgressCallback = Callable[[int, int], None]
"""Called with (rows seen, work items enqueued so far) as the sweep advances."""

SWEEP_DECISION_WORDS = {
    VerdictKind.NOT_SELECTED: "not-selected",
    VerdictKind.BLOCKED: "blocked",
    VerdictKind.DEFERRED: "deferred",
    VerdictKind.SATISFIED: "nothing-to-do",
    VerdictKind.ELSEWHERE: "protected-elsewhere",
}
"""What the sweep did, as its cluster list says it (enqueue / reverify read ``enqueued``, ``would-enqueue``
or ``enqueue-failed``)."""


def scope_digest(config: RemediatorConfig) -> str:
    """A short, stable name for a config's scope (the re-verification window is kept per scope: the timer
    sweep and an HTTP scope sweep of one subscription each have their own)."""
    canonical = config.scope.model_dump_json(by_alias=True)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:16]


class Sweeper:
    """Enumerate, decide, enqueue, journal changed decisions.

    :keyword config: the remediator config.
    :keyword inventory: streams inventory rows (Resource Graph).
    :keyword work: the work queue.
    :keyword recorders: where the summary goes (journal, publisher); skipped in dry runs.
    :keyword decisions: the compact decision journal; ``None`` = decisions are not journaled and nothing is
        re-verified (the CLI without storage).
    :keyword pacer: write pacing shared with the process; ``None`` = no visibility delays.
    :keyword batch_size: work items per enqueue batch.
    :keyword max_concurrency: enqueue batches in flight at once.
    :keyword policy_states: also count Policy 1/2 compliance states (one extra small query per scope).
    :keyword prefilter_tags: let Resource Graph narrow rows by include tag names.
    :keyword wall_clock: epoch seconds (the re-verification window), injected in tests.
    :keyword reverify_period_s: how often a cluster whose visible links are satisfied is reconciled anyway.
    :keyword backup_instances: read the backup instances (default: in protect mode, where they are a link;
        the benchmark turns it on to measure the join).
    """

    def __init__(
        self,
        *,
        config: RemediatorConfig,
        inventory: StreamsInventory,
        work: EnqueuesWork,
        recorders: tuple[RecordsSweeps, ...] = (),
        decisions: JournalsDecisions | None = None,
        pacer: WritePacer | None = None,
        batch_size: int = 50,
        max_concurrency: int = 8,
        policy_states: bool = False,
        prefilter_tags: bool = True,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
        reverify_period_s: float = REVERIFY_PERIOD_S,
        backup_instances: bool | None = None,
    ) -> None:
        if batch_size < 1 or max_concurrency < 1:
            raise ValueError("batch_size and max_concurrency must be at least 1")
        self.config = config
        self.inventory = inventory
        self.work = work
        self.recorders = recorders
        self.decisions = decisions
        self.pacer = pacer
        self.batch_size = batch_size
        self.max_concurrency = max_concurrency
        self.policy_states = policy_states
        self.prefilter_tags = prefilter_tags
        self._clock = clock
        self._wall_clock = wall_clock
        self.reverify_period_s = reverify_period_s
        self.backup_instances = backup_instances
        self.chain = VisibleChain.of(config)

    def plan(self, *, names: bool = False) -> InventoryPlan:
        """The Resource Graph requests for this config (raises ``UserInputError`` naming a bad field);
        ``names`` adds the subscription-name side query (for the cluster list)."""
        return plan_fleet_inventory(
            self.config,
            prefilter_tags=self.prefilter_tags,
            backup_instances=self.backup_instances,
            containers=names,
        )

    def run(
        self, *, dry_run: bool, progress: ProgressCallback | None = None, list_clusters: bool = False
    ) -> SweepSummary:
        """Sweep once. Nothing is enqueued in a dry run or audit mode; nothing is recorded or journaled in a
        dry run. ``list_clusters`` names every cluster in the summary (``to_json(clusters=True)``)."""
        plan = self.plan(names=list_clusters)
        mode = self.config.remediation.mode
        started_epoch = self._wall_clock()
        summary = SweepSummary(
            correlation_id=f"sweep-{uuid.uuid4()}",
            dry_run=dry_run,
            mode=mode,
            started_at=datetime.fromtimestamp(started_epoch, UTC).isoformat(),
            clusters=[] if list_clusters else None,
        )
        start = self._clock()
        stats = InventoryStats()
        enqueue = not dry_run and mode != "audit"
        scope = scope_digest(self.config)
        index, window = self._decision_index(scope, started_epoch, dry_run=dry_run, summary=summary)
        journal = _DecisionWriter(self.decisions, summary) if (self.decisions and not dry_run) else None
        seen = 0
        with _BatchEnqueuer(self.work, summary, max_concurrency=self.max_concurrency) as enqueuer:
            batch: list[_Work] = []
            try:
                for row in self.inventory.iter_rows(plan, stats=stats):
                    seen += 1
                    considered = self._consider(row, summary, window=window)
                    if considered is None:
                        continue
                    decision, snapshot, verdict = considered
                    item: _Work | None = None
                    if verdict.kind in (VerdictKind.ENQUEUE, VerdictKind.REVERIFY):
                        item = _Work(
                            cluster_id=snapshot.id,
                            delay_s=self._reserve_writes(snapshot, decision, verdict) if enqueue else 0.0,
                            reason=verdict.reason,
                        )
                        summary.max_delay_s = max(summary.max_delay_s, item.delay_s)
                        if enqueue:
                            batch.append(item)
                            if len(batch) >= self.batch_size:
                                enqueuer.submit(batch)
                                batch = []
                        else:
                            summary.would_enqueue += 1
                    if journal is not None:
                        self._journal(journal, index, decision, snapshot, row, verdict, summary)
                    if summary.clusters is not None:
                        summary.clusters.append(self._listed(decision, snapshot, row, verdict, enqueue))
                    if progress is not None and seen % 100 == 0:
                        progress(seen, enqueuer.done + len(batch))
                if batch:
                    enqueuer.submit(batch)
            finally:
                if journal is not None:
                    journal.close()
        summary.candidates = seen
        if summary.clusters is not None:
            failed = enqueuer.failed_ids
            for listed in summary.clusters:
                if listed["decision"].startswith("enqueued") and listed["id"] in failed:
                    listed["decision"] = "enqueue-failed"
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
            "sweep %s: %d candidates, %d enqueued (%d re-verifications), %d blocked, %d deferred,"
            " %d decisions journaled, %d failures in %.2f s",
            summary.correlation_id,
            summary.candidates,
            summary.enqueued,
            summary.reverified,
            summary.blocked,
            summary.deferred,
            summary.decisions_journaled,
            summary.enqueue_failures,
            summary.duration_s,
        )
        if not dry_run:
            if self.decisions is not None:
                try:
                    self.decisions.record_sweep_window(scope, started_epoch)
                except Exception:  # the next sweep re-verifies a wider window; nothing is lost
                    logger.exception("could not record the sweep's re-verification window")
            for recorder in self.recorders:
                try:
                    recorder.record_sweep(summary.to_json())
                except Exception:  # a journal/publisher outage must not lose the enqueued work
                    logger.exception("could not record the sweep summary with %s", type(recorder).__name__)
        return summary

    def _decision_index(
        self, scope: str, started_epoch: float, *, dry_run: bool, summary: SweepSummary
    ) -> tuple[DecisionIndex, tuple[float, float] | None]:
        """The last decisions and this sweep's re-verification window (none in a dry run or without a
        journal: nothing is re-verified then)."""
        if dry_run or self.decisions is None:
            return DecisionIndex(), None
        try:
            index = self.decisions.decision_index(scope)
        except Exception:  # journal every decision once more rather than lose the sweep
            logger.exception("could not read the sweep's decision index; every decision is journaled again")
            summary.decision_journal_failures += 1
            return DecisionIndex(), None
        previous = index.last_sweep_at or (started_epoch - FIRST_WINDOW_S)
        return index, (min(previous, started_epoch), started_epoch)

    def _consider(
        self, row: InventoryRow, summary: SweepSummary, *, window: tuple[float, float] | None
    ) -> tuple[Decision, ClusterSnapshot, SweepVerdict] | None:
        """Decide one row and count it; ``None`` for an unreadable row."""
        try:
            snapshot = ClusterSnapshot.from_arm(row.body, source="resource graph")
        except UserInputError as exc:
            summary.invalid += 1
            logger.warning("skipping unreadable inventory row %s: %s", row.cluster_id, exc)
            return None
        groups = row.management_groups
        decision = decide(snapshot, self.config, management_groups_of=lambda _sub: groups)
        summary.by_reason[decision.reason.value] += 1
        summary.by_extension_state[(row.extension_state or "missing").lower()] += 1
        due = window is not None and reverification_due(
            cluster_key(snapshot.id.canonical), window=window, period_s=self.reverify_period_s
        )
        facts = _facts(row, snapshot)
        verdict = sweep_verdict(decision, facts, self.chain, reverify_due=due)
        if decision.selected:
            summary.selected += 1
            if verdict.kind in (VerdictKind.SATISFIED, VerdictKind.REVERIFY) or (
                verdict.kind in (VerdictKind.DEFERRED, VerdictKind.ELSEWHERE)
                and assess(decision, facts, self.chain).state == "protected"
            ):
                summary.protected += 1
        if verdict.kind is VerdictKind.BLOCKED:
            summary.blocked += 1
            summary.by_blocker.update(b.value for b in verdict.blockers)
        elif verdict.kind is VerdictKind.DEFERRED:
            summary.deferred += 1
            summary.by_blocker.update(b.value for b in verdict.blockers)
        elif verdict.kind is VerdictKind.SATISFIED:
            summary.satisfied += 1
        elif verdict.kind is VerdictKind.ELSEWHERE:
            summary.protected_elsewhere += 1
        elif verdict.kind is VerdictKind.REVERIFY:
            summary.reverified += 1
        elif verdict.kind is VerdictKind.ENQUEUE and verdict.need is not None:
            summary.by_need[f"{verdict.need.link}:{verdict.need.state.value}"] += 1
        return decision, snapshot, verdict

    def _journal(
        self,
        journal: _DecisionWriter,
        index: DecisionIndex,
        decision: Decision,
        snapshot: ClusterSnapshot,
        row: InventoryRow,
        verdict: SweepVerdict,
        summary: SweepSummary,
    ) -> None:
        """Journal the decision if its key changed since the last sweep that journaled it."""
        key = decision_key(decision, verdict)
        ck = cluster_key(snapshot.id.canonical)
        if index.keys.get(ck) == key:
            return
        report = None
        if verdict.kind in JOURNALED_VERDICTS:
            report = self._decision_report(decision, row, verdict, summary)
        journal.add(
            JournaledDecision(cluster_id=snapshot.id.canonical, cluster_key=ck, key=key, report=report)
        )

    def _decision_report(
        self, decision: Decision, row: InventoryRow, verdict: SweepVerdict, summary: SweepSummary
    ) -> ReconcileReport:
        """The history row of a decision the sweep made (what a reconcile would have concluded, read from
        Resource Graph instead of ARM)."""
        if verdict.kind is VerdictKind.NOT_SELECTED:
            outcome = Outcome.skipped(f"{decision.reason.value}: {reason_text(decision.reason)}")
        elif verdict.kind is VerdictKind.BLOCKED:
            held = verdict.need.why if verdict.need is not None else "a person must act"
            outcome = Outcome.gave_up("; ".join(b.describe() for b in verdict.blockers) or held)
        elif verdict.kind is VerdictKind.DEFERRED:
            outcome = Outcome.wait(3600.0, "; ".join(b.describe() for b in verdict.blockers))
        elif verdict.kind is VerdictKind.ELSEWHERE:
            outcome = Outcome.done(f"sweep: {verdict.need.why if verdict.need else 'protected elsewhere'}")
        else:
            outcome = Outcome.done("sweep: every link Resource Graph shows is satisfied")
        return ReconcileReport(
            cluster_id=decision.cluster_id.canonical,
            decision=decision.to_json(),
            outcome=outcome,
            mode=self.config.remediation.mode,
            extension_state=row.extension_state,
            started_at=summary.started_at,
            correlation_id=summary.correlation_id,
            links=tuple({"link": c.link, "state": c.state.value, "why": c.why} for c in verdict.checks),
        )

    def _listed(
        self,
        decision: Decision,
        snapshot: ClusterSnapshot,
        row: InventoryRow,
        verdict: SweepVerdict,
        enqueue: bool,
    ) -> dict[str, Any]:
        facts = _facts(row, snapshot)
        listed = cluster_to_dict(
            cluster_row(
                decision,
                name=snapshot.name,
                resource_group=snapshot.resource_group,
                region=snapshot.location,
                tags=snapshot.tags,
                selection=self.config.selection,
                facts=facts,
                assessment=assess(decision, facts, self.chain),
                subscription_name=row.subscription_name,
                management_groups=row.management_group_chain or row.management_groups,
            )
        )
        if verdict.kind in (VerdictKind.ENQUEUE, VerdictKind.REVERIFY):
            word = "enqueued" if enqueue else "would-enqueue"
            listed["decision"] = word if verdict.kind is VerdictKind.ENQUEUE else f"{word} (re-verify)"
            listed["workReason"] = verdict.reason
        else:
            listed["decision"] = SWEEP_DECISION_WORDS[verdict.kind]
        return listed

    def _reserve_writes(self, snapshot: ClusterSnapshot, decision: Decision, verdict: SweepVerdict) -> float:
        """Reserve the ARM writes this cluster will cost; the longest wait becomes the visibility delay."""
        if self.pacer is None or verdict.kind is VerdictKind.REVERIFY:
            return 0.0
        mode = self.config.remediation.mode
        need = verdict.need
        storage = decision.storage_account_id
        delay = 0.0
        if need is None or need.link == EXTENSION_INSTALLED:
            delay = self.pacer.reserve(snapshot.subscription_id, 1)  # extension PUT / remediation task PUT
            storage_writes = 2 if self.config.remediation.grant_storage_access else 1  # container, grant
        else:
            storage_writes = 1  # the grant
        if mode in ("install", "protect") and storage is not None and storage.subscription_id:
            delay = max(delay, self.pacer.reserve(str(storage.subscription_id), storage_writes))
        return delay


def _facts(row: InventoryRow, snapshot: ClusterSnapshot) -> ChainFacts:
    """The row's chain facts, with the cluster's identity principal and region as its snapshot reads them."""
    return row.chain_facts(
        cluster_principal_id=snapshot.identity_principal_id, cluster_location=snapshot.location
    )


class _BatchEnqueuer:
    """Runs enqueue batches on a bounded pool; at most ``2 * max_concurrency`` batches wait in memory."""

    def __init__(
        self,
        work: EnqueuesWork,
        summary: SweepSummary,
        *,
        max_concurrency: int,
        retry_delays_s: tuple[float, ...] | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._work = work
        self._summary = summary
        self._retry_delays_s = ENQUEUE_RETRY_DELAYS_S if retry_delays_s is None else retry_delays_s
        self._sleep = sleep
        self._pool = ThreadPoolExecutor(max_workers=max_concurrency, thread_name_prefix="sweep-enqueue")
        self._slots = threading.BoundedSemaphore(2 * max_concurrency)
        self._lock = threading.Lock()
        self.done = 0
        self.failed_ids: set[str] = set()

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
                self._enqueue(item)
            except Exception:
                logger.exception("could not enqueue %s", item.cluster_id)
                with self._lock:
                    summary.enqueue_failures += 1
                    self.failed_ids.add(item.cluster_id.canonical)
                continue
            with self._lock:
                summary.enqueued += 1
                self.done += 1

    def _enqueue(self, item: _Work) -> None:
        """One work item, tried again after :data:`ENQUEUE_RETRY_DELAYS_S` (the last error propagates)."""
        for retry, pause in enumerate((*self._retry_delays_s, None)):
            try:
                self._work.enqueue_work(
                    item.cluster_id,
                    attempt=0,
                    source="sweep",
                    reason=item.reason,
                    correlation_id=self._summary.correlation_id,
                    delay_s=item.delay_s,
                )
                return
            except Exception as exc:
                if pause is None:
                    raise
                logger.warning(
                    "enqueueing %s failed (%s: %s); retry %d in %.1f s",
                    item.cluster_id,
                    type(exc).__name__,
                    exc,
                    retry + 1,
                    pause,
                )
                self._sleep(pause)


class _DecisionWriter:
    """Journals changed decisions in batches on a small pool (history rows are one write each, in the
    clusters' own partitions); a failed batch is counted and logged, never raised: the enqueued work matters
    more, and the next sweep journals those decisions again (their keys were not updated)."""

    def __init__(
        self, journal: JournalsDecisions, summary: SweepSummary, *, max_concurrency: int = 4
    ) -> None:
        self._journal = journal
        self._summary = summary
        self._pool = ThreadPoolExecutor(max_workers=max_concurrency, thread_name_prefix="sweep-journal")
        self._slots = threading.BoundedSemaphore(2 * max_concurrency)
        self._lock = threading.Lock()
        self._batch: list[JournaledDecision] = []
        self._futures: list[Future[None]] = []

    def add(self, decision: JournaledDecision) -> None:
        self._batch.append(decision)
        if len(self._batch) >= DECISION_BATCH:
            self._flush()

    def _flush(self) -> None:
        batch, self._batch = self._batch, []
        if not batch:
            return
        self._slots.acquire()
        future = self._pool.submit(self._write, batch)
        future.add_done_callback(lambda _f: self._slots.release())

    def _write(self, batch: list[JournaledDecision]) -> None:
        try:
            self._journal.record_decisions(batch)
        except Exception:
            logger.exception("could not journal %d sweep decisions", len(batch))
            with self._lock:
                self._summary.decision_journal_failures += 1
            return
        with self._lock:
            self._summary.decisions_journaled += sum(1 for d in batch if d.report is not None)

    def close(self) -> None:
        self._flush()
        self._pool.shutdown(wait=True)
