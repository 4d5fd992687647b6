"""What the Functions handlers need from the rest of the product, as narrow ports.

The handlers in :mod:`remediator.service.handlers` are framework-free and are exercised by direct-invocation
tests, the local runner and the CLI alike. They depend only on the small protocols below, so the wiring in
:mod:`remediator.service.runtime` (real SDK clients, Azurite or Azure Storage) can be swapped for recording
fakes in glue tests without touching the SDKs. :class:`HandlerContext` bundles one set of them.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from remediator.core.config import RemediatorConfig
from remediator.core.ids import ResourceId
from remediator.core.outcomes import Outcome, ReconcileReport
from remediator.core.settings import Settings
from remediator.service.sweep import StreamsInventory

logger = logging.getLogger(__name__)


class Reconciles(Protocol):
    """Bring one cluster to the wanted state (``Reconciler``)."""

    def reconcile(
        self,
        cluster_id: str,
        *,
        dry_run: bool = False,
        attempt: int = 0,
        correlation_id: str | None = None,
    ) -> ReconcileReport:
        """``correlation_id`` ties the journaled report to its cause (event id, work item, HTTP request)."""
        ...


class EnqueuesWork(Protocol):
    """Durable work items with a visibility delay (``WorkQueue``)."""

    def enqueue_work(
        self,
        cluster_id: str,
        *,
        attempt: int,
        source: str,
        reason: str,
        correlation_id: str,
        delay_s: float,
        timeout_s: float | None = None,
    ) -> None:
        """``timeout_s``: time left for the call (an Event Grid invocation's); ``None`` = client defaults."""
        ...


class RecordsOutcomes(Protocol):
    """The journal plus the optional outcome publisher: where a report goes when no reconcile wrote it."""

    def record(self, report: ReconcileReport) -> None: ...


class OrdersPolicyStates(Protocol):
    """Durable last-seen ``data.timestamp`` per (resource, assignment), kept with ETag concurrency."""

    def advance(self, resource_id: str, assignment_id: str, timestamp: datetime) -> bool:
        """Store ``timestamp``; ``False`` (stale, nothing stored) only when it is older than the stored one.

        An equal timestamp is accepted, so a redelivered event (Event Grid retries) is processed again.
        """
        ...


class Sweeps(Protocol):
    """The timer sweep (``Sweeper.run``): enumerate in-scope clusters and enqueue those needing work."""

    def run(self, *, dry_run: bool) -> Any: ...


@dataclass(frozen=True)
class HealthCheck:
    """One dependency probe for ``GET /api/health``: a name and a callable that raises when it is down."""

    name: str
    probe: Callable[[], object]


@dataclass
class HandlerContext:
    """Everything the handlers use, built once per worker process by the runtime wiring."""

    settings: Settings
    config: RemediatorConfig
    reconciler: Reconciles
    work: EnqueuesWork
    outcomes: RecordsOutcomes
    policy_order: OrdersPolicyStates
    inventory: StreamsInventory
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
    extras: dict[str, Any] = field(default_factory=dict)


MALFORMED_EVENTS = "(malformed event)"
IGNORED_EVENTS = "(ignored event)"
STALE_EVENTS = "(stale policy event)"
"""Journal keys for event decisions that concern no cluster of ours (the cluster, when known, is named in
the reason). Decisions about a cluster that never reaches a reconcile (out of scope) go under its id."""


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
        started_at=datetime.now(UTC).isoformat().replace("+00:00", "Z"),
        correlation_id=correlation_id,
    )
    try:
        (ctx.decisions or ctx.outcomes).record(report)
    except Exception as exc:  # best effort by design (see above)
        logger.warning("journaling the decision for %s failed: %s: %s", key, type(exc).__name__, exc)
    return report


def scope_contains(ctx: HandlerContext, cluster: ResourceId) -> bool | None:
    """Whether the configured scope contains the cluster; ``None`` when it cannot be known here.

    That is the case only for a context built without a ``management_groups_of`` resolver when the scope lists
    management groups and the cluster is not in a listed subscription or resource group (a cluster id does not
    carry its management-group ancestry). The runtime always wires a Resource Graph resolver
    (``remediator.adapters.management_groups``) for such scopes; its lookup failures propagate as
    ``ManagementGroupLookupError`` so the caller retries instead of guessing.
    """
    scope = ctx.config.scope
    try:
        return scope.contains(cluster, management_groups_of=ctx.management_groups_of)
    except ValueError:
        if scope.management_groups and ctx.management_groups_of is None:
            return None
        raise


def build_handler_context(environ: Mapping[str, str]) -> HandlerContext:
    """Wire the real adapters from app settings (the Functions app calls this once per worker process).

    The object graph is :class:`remediator.service.runtime.Runtime` (shared with the CLI); this adds the ARM
    reachability probe ``GET /api/health`` reports.

    :raises UserInputError: a setting or the config is invalid; the field is named.
    """
    from remediator.service.runtime import Runtime

    runtime = Runtime.from_env(environ)
    ctx = runtime.handler_context()
    if not isinstance(ctx, HandlerContext):
        raise TypeError(f"Runtime.handler_context returned {type(ctx).__name__}, not HandlerContext")

    def probe_arm() -> None:
        scope = runtime.config.scope
        refs = [*scope.subscriptions, *scope.resource_groups]
        for ref in refs[:1]:
            runtime.gateway.list_clusters(str(ref.subscription_id))

    ctx.health_checks = (*ctx.health_checks, HealthCheck("arm", probe_arm))
    return ctx
