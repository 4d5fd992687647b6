"""What the Functions handlers need from the rest of the product, as narrow ports.

The handlers in :mod:`remediator.service.handlers` are framework-free and are exercised by direct-invocation
tests, the local runner and the CLI alike. They depend only on the small protocols below, so the wiring in
:mod:`remediator.service.runtime` (real SDK clients, Azurite or Azure Storage) can be swapped for recording
fakes in glue tests without touching the SDKs. :class:`HandlerContext` bundles one set of them.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from remediator.adapters.arm import ArmGateway
from remediator.adapters.clients import AzureClients
from remediator.adapters.graph import ResourceGraphInventory
from remediator.adapters.journal import Journal
from remediator.adapters.policy import PolicyGateway
from remediator.adapters.policy_order import PolicyStateOrder
from remediator.adapters.publisher import OutcomePublisher
from remediator.adapters.work_queue import WorkQueue
from remediator.core.config import RemediatorConfig, load_config, parse_config
from remediator.core.errors import UserInputError
from remediator.core.outcomes import ReconcileReport
from remediator.core.settings import Settings
from remediator.service.reconciler import Reconciler
from remediator.service.sweep import StreamsInventory, Sweeper

logger = logging.getLogger(__name__)


class Reconciles(Protocol):
    """Bring one cluster to the wanted state (``Reconciler``)."""

    def reconcile(self, cluster_id: str, *, dry_run: bool = False, attempt: int = 0) -> ReconcileReport: ...


class EnqueuesWork(Protocol):
    """Durable work items with a visibility delay (``WorkQueue``)."""

    def enqueue_work(
        self, cluster_id: str, *, attempt: int, source: str, reason: str, correlation_id: str, delay_s: float
    ) -> None: ...


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
    """Subscription GUID -> its management-group ancestry; needed when the scope lists management groups."""
    extras: dict[str, Any] = field(default_factory=dict)


class JournaledOutcomes:
    """``RecordsOutcomes`` for reports no reconcile wrote (give-ups, poison): journal, then publish.

    A journal failure propagates, so the trigger retries instead of losing the give-up.
    """

    def __init__(self, journal: Journal, publisher: OutcomePublisher | None) -> None:
        self.journal = journal
        self.publisher = publisher

    def record(self, report: ReconcileReport) -> None:
        self.journal.record(report)
        if self.publisher is not None:
            self.publisher.publish(report)


def load_remediator_config(settings: Settings) -> RemediatorConfig:
    """The config named by ``REMEDIATOR_CONFIG_FILE`` or given inline in ``REMEDIATOR_CONFIG_JSON``."""
    if settings.config_file is not None:
        return load_config(settings.config_file)
    try:
        data = json.loads(settings.config_json or "")
    except ValueError as exc:
        raise UserInputError(
            f"not valid JSON: {exc}", field="REMEDIATOR_CONFIG_JSON", source="app settings"
        ) from exc
    return parse_config(data, source="REMEDIATOR_CONFIG_JSON")


def build_handler_context(environ: Mapping[str, str]) -> HandlerContext:
    """Wire the real adapters from app settings (the Functions app calls this once per worker process).

    Builds no network connection: SDK clients connect on first use, so a bad setting is reported here and an
    unreachable dependency by the call (or by ``GET /api/health``).

    :raises UserInputError: a setting or the config is invalid; the field is named.
    """
    settings = Settings.from_env(environ)
    config = load_remediator_config(settings)
    if not settings.storage_configured():
        raise UserInputError(
            "no storage configured (a connection string, or the identity-based service URIs)",
            field="AzureWebJobsStorage",
            source="app settings",
        )
    clients = AzureClients.from_settings(settings)
    gateway = ArmGateway(clients)
    journal = Journal.from_settings(settings)
    publisher = OutcomePublisher.from_settings(settings, clients)
    work = WorkQueue.from_settings(settings)
    inventory = ResourceGraphInventory(clients.resource_graph())
    reconciler = Reconciler(gateway, config, settings, journal, publisher, policy=PolicyGateway(clients))

    def make_sweeper(sweep_config: RemediatorConfig) -> Sweeper:
        return Sweeper(config=sweep_config, inventory=inventory, work=work, recorders=(publisher,))

    def probe_arm() -> None:
        scopes = [*config.scope.subscriptions, *config.scope.resource_groups]
        for ref in scopes[:1]:
            gateway.list_clusters(str(ref.subscription_id))

    return HandlerContext(
        settings=settings,
        config=config,
        reconciler=reconciler,
        work=work,
        outcomes=JournaledOutcomes(journal, publisher),
        policy_order=PolicyStateOrder(journal.table, before=journal.ensure_table),
        inventory=inventory,
        sweeper=make_sweeper(config),
        make_sweeper=make_sweeper,
        health_checks=(
            HealthCheck("arm", probe_arm),
            HealthCheck("work-queue", work.ensure_queue),
            HealthCheck("journal", journal.ensure_table),
        ),
    )
