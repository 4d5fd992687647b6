"""The narrow ports the triggers and use cases depend on: protocols, and the bundle of them a handler gets.

No wiring here (that is :mod:`remediator.service.runtime`, the one composition root) and no behaviour: the
triggers (:mod:`remediator.service.triggers`), the report and the sweep take these protocols, so direct-
invocation tests, the local runner and the CLI can pass recording fakes without touching an SDK.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from remediator.adapters.graph import InventoryRow, InventoryStats
from remediator.adapters.telemetry import NoTelemetry, Telemetry
from remediator.core.config import RemediatorConfig
from remediator.core.coverage import DecisionIndex, JournaledDecision, LatestOutcome
from remediator.core.ids import ResourceId
from remediator.core.inventory_query import InventoryPlan, InventoryRequest
from remediator.core.outcomes import ReconcileReport
from remediator.core.report_document import ConfigIdentity
from remediator.core.settings import Settings
from remediator.core.work_item import Source, WorkItem


class Reconciles(Protocol):
    """Bring one cluster to the wanted state (``service.reconcile.Reconciler``)."""

    def reconcile(
        self,
        cluster_id: ResourceId,
        *,
        dry_run: bool = False,
        attempt: int = 0,
        correlation_id: str | None = None,
        caller: str | None = None,
        trigger: str = "",
        event_time: datetime | None = None,
        take_ahead: bool = True,
    ) -> ReconcileReport:
        """``correlation_id`` ties the journaled report to its cause (event id, work item, HTTP request);
        ``caller`` is who asked, when an HTTP request did (journaled with the report); ``trigger`` (the
        work-item source) and ``event_time`` (the Event Grid event's) are for telemetry; ``take_ahead``:
        take a fresh cluster's claims and write tokens while reading (``False`` for queued work)."""
        ...


class EnqueuesWork(Protocol):
    """Durable work items with a visibility delay (``adapters.work_queue.WorkQueue``)."""

    def enqueue_work(
        self,
        cluster_id: ResourceId,
        *,
        attempt: int,
        source: Source,
        reason: str,
        correlation_id: str,
        delay_s: float,
        timeout_s: float | None = None,
        progress_attempt: int = 0,
        satisfied_links: int = 0,
    ) -> None:
        """``timeout_s``: time left for the call (an Event Grid invocation's); ``None`` = client defaults.
        ``progress_attempt`` and ``satisfied_links``: the chain's progress mark (a worker's follow-up carries
        it; see ``remediator.core.work_item``)."""
        ...


class Hop(Protocol):
    """One running hop of a cluster's chain of work items (``adapters.chains.Hop``)."""

    def next(self, *, delay_s: float, reason: str, satisfied_links: int | None = None) -> bool:
        """Continue the chain after ``delay_s`` (carrying the progress mark, ``WorkItem.next_attempt``);
        ``False``: a newer chain took over (nothing to do)."""
        ...

    def end(self) -> None:
        """The chain ends (done, gave up, parked)."""
        ...

    def abort(self) -> None:
        """The invocation fails; the host delivers the same work item again."""
        ...


class RunsChains(Protocol):
    """One chain of work items per cluster (``adapters.chains.ChainedWork``; policy: ``core.chains``)."""

    def begin(self, item: WorkItem) -> Hop | None:
        """Start the hop of ``item``; ``None``: the item retires (another chain looks after the cluster)."""
        ...


class RecordsOutcomes(Protocol):
    """Where a report goes when no reconcile recorded it: the journal, and the optional publisher."""

    def record(self, report: ReconcileReport) -> bool | None:
        """``False``: the report repeats the state the journal holds (``core.alerts``) and was neither
        journaled again nor published; ``True`` or ``None``: recorded."""
        ...


class RecordsSweeps(Protocol):
    """Where a sweep summary goes: the journal and/or the outcome publisher."""

    def record_sweep(self, summary: Mapping[str, Any]) -> None: ...


class OrdersPolicyStates(Protocol):
    """Durable last-seen ``data.timestamp`` per (resource, assignment), kept with ETag concurrency."""

    def advance(self, resource_id: str, assignment_id: str, timestamp: datetime) -> bool:
        """Store ``timestamp``; ``False`` (stale, nothing stored) only when it is older than the stored one.

        An equal timestamp is accepted, so a redelivered event (Event Grid retries) is processed again.
        """
        ...


class StreamsInventory(Protocol):
    """Streams inventory rows for a plan (``adapters.graph.ResourceGraphInventory``): each cluster joined with
    the plan's side queries (grants, backup instances, subscription names)."""

    def iter_rows(
        self, plan: InventoryPlan, *, stats: InventoryStats | None = None
    ) -> Iterator[InventoryRow]: ...

    def policy_summary(self, plan: InventoryPlan, query: str, *, stats: InventoryStats) -> dict[str, int]: ...


class QueriesInventory(StreamsInventory, Protocol):
    """Also runs any one Resource Graph request (the report's role-assignment counts)."""

    def iter_data(
        self, request: InventoryRequest, *, stats: InventoryStats | None = None
    ) -> Iterator[Mapping[str, Any]]: ...


class JournalsDecisions(Protocol):
    """The sweep's compact decision journal (``adapters.journal.Journal``): last decisions read in bulk,
    changed ones journaled, the re-verification window remembered per scope."""

    def decision_index(self, scope: str) -> DecisionIndex: ...

    def record_decisions(self, decisions: Sequence[JournaledDecision]) -> None: ...

    def record_sweep_window(self, scope: str, started_at: float) -> None: ...


class ReadsOutcomes(Protocol):
    """Every cluster's newest journaled outcome, in bulk (``adapters.journal.Journal.latest_outcomes``),
    keyed by ``core.naming.cluster_key``."""

    def latest_outcomes(self) -> Mapping[str, LatestOutcome]: ...


class LimitsRate(Protocol):
    """A per-caller rate limit shared by every instance (``adapters.rate_limit.TableRateLimiter``)."""

    def try_acquire(self, key: str) -> float | None:
        """Take one request for ``key``: ``None`` when allowed, else the seconds until one is
        (Retry-After)."""
        ...


class Sweeps(Protocol):
    """The timer sweep (``service.sweep.Sweeper.run``): enumerate in-scope clusters and enqueue those needing
    work; ``list_clusters`` also names every cluster it saw (the HTTP scope remediation, the CLI)."""

    def run(self, *, dry_run: bool, list_clusters: bool = False) -> Any: ...


class WiresEvents(Protocol):
    """The wiring step the timer runs after each sweep (``service.wiring.EventWiring.run``): Event Grid
    wiring for subscriptions that joined a managed management group."""

    def run(self) -> Any: ...


@dataclass(frozen=True)
class HealthCheck:
    """One dependency probe for ``GET /api/health``: a name and a callable that raises when it is down."""

    name: str
    probe: Callable[[], object]


@dataclass
class HandlerContext:
    """Everything the triggers use, built once per worker process by the composition root."""

    settings: Settings
    config: RemediatorConfig
    reconciler: Reconciles
    work: EnqueuesWork
    outcomes: RecordsOutcomes
    policy_order: OrdersPolicyStates
    inventory: QueriesInventory
    """Resource Graph inventory (the report streams every in-scope cluster through it)."""
    sweeper: Sweeps
    make_sweeper: Callable[[RemediatorConfig], Sweeps]
    """A sweeper for another config (``POST /api/remediate {scope}`` narrows the scope and sweeps it)."""
    health_checks: tuple[HealthCheck, ...] = ()
    management_groups_of: Callable[[str], Iterable[str]] | None = None
    """Subscription GUID -> the configured management groups above it; set by the runtime when the scope lists
    management groups (``ManagementGroupResolver``, Resource Graph, cached)."""
    decisions: RecordsOutcomes | None = None
    """Where decisions that reconciled nothing are journaled (dropped, ignored, stale and out-of-scope events,
    HTTP 403s): the journal alone, without an outcome event. ``None``: ``outcomes``."""
    outcomes_index: ReadsOutcomes | None = None
    """Every cluster's newest journaled outcome, in bulk (the report's gave-up state); ``None`` without a
    journal."""
    config_identity: ConfigIdentity | None = None
    """Where the config came from and its SHA-256 (the report names it)."""
    chains: RunsChains | None = None
    """The queue worker's chains (``work`` is then the same object's ``enqueue_work``, which joins chains).
    ``None``: plain work items, each wait re-enqueued (tests with recording ports)."""
    scope_rate_limit: LimitsRate | None = None
    """The per-caller limit of ``POST /api/remediate {scope}`` (``None``: unlimited, e.g. without storage)."""
    wiring: WiresEvents | None = None
    """Set by the runtime when ``REMEDIATOR_EVENT_WIRING`` is set and the scope lists management groups."""
    telemetry: Telemetry = field(default_factory=NoTelemetry)
    """Spans and metrics (``adapters.telemetry``); the timer records each sweep's gauges through it. The
    reconciler holds the same object for the per-reconcile span."""
    extras: dict[str, Any] = field(default_factory=dict)
