"""The one composition root: wires the product from app settings: settings -> config -> credential ->
clients -> gateways -> journal, claims -> queue -> publisher -> reconciler (and the sweeper and the handler
context built on them).

The Functions app, the CLI and the local runner all need the same graph of objects, built the same way, and
built lazily (a Function worker indexing the app must not touch the network; an HTTP ``explain`` call does
not need a queue). Every part is built on first use, once per process, under a lock: Function invocations
run on several threads. One credential per process is shared by every SDK client and every storage client
(queue, tables). Nothing else in the product builds adapters; the triggers see only the ports
(:mod:`remediator.service.ports`).
"""

from __future__ import annotations

import gc
import hashlib
import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

from remediator.adapters.arm import ArmGateway
from remediator.adapters.chains import ChainedWork, ChainStore
from remediator.adapters.claims import WriteClaims
from remediator.adapters.clients import AzureClients, ClientOptions, quiet_sdk_request_logs
from remediator.adapters.credentials import credential_from_settings
from remediator.adapters.dataprotection import DataProtectionGateway
from remediator.adapters.event_grid import EventGridWiring
from remediator.adapters.graph import ResourceGraphInventory
from remediator.adapters.journal import Journal
from remediator.adapters.management_groups import ManagementGroupResolver
from remediator.adapters.policy import PolicyGateway
from remediator.adapters.policy_order import PolicyStateOrder
from remediator.adapters.preflight_source import PreflightSource
from remediator.adapters.publisher import OutcomePublisher
from remediator.adapters.rate_limit import TableRateLimiter
from remediator.adapters.shared_pacing import SharedWritePacer
from remediator.adapters.telemetry import NoTelemetry, Telemetry, telemetry_from_environment
from remediator.adapters.work_queue import WorkQueue
from remediator.core.config import RemediatorConfig, decode_document, load_config, parse_config
from remediator.core.errors import UserInputError
from remediator.core.event_wiring import WiringTarget
from remediator.core.outcomes import ReconcileReport
from remediator.core.pacing import Pacer, WritePacer
from remediator.core.report_document import ConfigIdentity
from remediator.core.settings import CredentialKind, Settings, WriteBudget
from remediator.service.ports import HandlerContext, HealthCheck
from remediator.service.reconcile import Reconciler
from remediator.service.report import config_identity_in_memory
from remediator.service.sweep import Sweeper
from remediator.service.wiring import EventWiring

T = TypeVar("T")


class PolicyAssignmentNotRemediable(Exception):
    """Policy-task mode names an assignment a remediation task cannot act on (``/api/health`` reports it)."""


class OutcomeRecorder:
    """Journal + publisher behind one ``record`` (the handlers' ``RecordsOutcomes`` and the sweep's
    ``RecordsSweeps`` ports). Either part may be absent."""

    def __init__(self, journal: Journal | None, publisher: OutcomePublisher | None) -> None:
        self.journal = journal
        self.publisher = publisher

    def record(self, report: ReconcileReport) -> bool:
        first = self.journal.record(report) is not False if self.journal is not None else True
        if self.publisher is not None and first:
            self.publisher.publish(report)
        return first

    def record_sweep(self, summary: Mapping[str, Any]) -> None:
        if self.journal is not None:
            self.journal.record_sweep(summary)
        if self.publisher is not None:
            self.publisher.record_sweep(summary)


def load_config_from_settings(settings: Settings) -> RemediatorConfig:
    """The config named by ``REMEDIATOR_CONFIG_FILE`` or given inline in ``REMEDIATOR_CONFIG_JSON``.

    :raises UserInputError: unreadable or invalid config, naming the file (or variable) and field.
    """
    if settings.config_file:
        return load_config(settings.config_file)
    source = "REMEDIATOR_CONFIG_JSON"
    return parse_config(
        decode_document(settings.config_json or "", source=source, prefer_json=True), source=source
    )


def config_identity_of(settings: Settings, config: RemediatorConfig) -> ConfigIdentity:
    """Where the config came from and the SHA-256 of its bytes (the file's, or ``REMEDIATOR_CONFIG_JSON``'s
    UTF-8); a config given in memory (tests) is hashed in its canonical JSON form."""
    mode = str(config.remediation.mode)
    if settings.config_file:
        try:
            data = Path(settings.config_file).read_bytes()
        except OSError as exc:
            raise UserInputError(f"cannot read the config file: {exc}", source=settings.config_file) from exc
        return ConfigIdentity(
            source=settings.config_file,
            sha256=hashlib.sha256(data).hexdigest(),
            mode=mode,  # type: ignore[arg-type]
        )
    if settings.config_json:
        digest = hashlib.sha256(settings.config_json.encode("utf-8")).hexdigest()
        return ConfigIdentity(source="REMEDIATOR_CONFIG_JSON", sha256=digest, mode=mode)  # type: ignore[arg-type]
    return config_identity_in_memory(config)


class Runtime:
    """The product's object graph for one process, built lazily.

    :param settings: app settings.
    :keyword config: the config (default: loaded from the settings on first use).
    :keyword client_options: SDK retry/timeout knobs (tests shrink the backoff).
    :keyword credential: override the credential the settings imply (tests with several principals).
    :keyword pacer: the ARM write pacer of the workers (default: ARM's bucket, 200 burst + 10/s; tests pass a
        tiny one).
    :keyword clock: seconds since the epoch for the reconciler's and the journal's timestamps (default the
        system clock; a benchmark on the emulator's manual clock and fast tests inject their own).
    :keyword telemetry: spans and metrics (default: none; :meth:`from_env` configures Azure Monitor when
        ``APPLICATIONINSIGHTS_CONNECTION_STRING`` is set; tests pass in-memory exporters).
    """

    def __init__(
        self,
        settings: Settings,
        *,
        config: RemediatorConfig | None = None,
        client_options: ClientOptions | None = None,
        credential: Any = None,
        pacer: Pacer | None = None,
        clock: Callable[[], float] | None = None,
        telemetry: Telemetry | None = None,
    ) -> None:
        self.settings = settings
        self._clock = clock
        self.telemetry: Telemetry = telemetry if telemetry is not None else NoTelemetry()
        self._config = config
        self._client_options = client_options
        self._credential = credential
        self._parts: dict[str, Any] = {} if pacer is None else {"pacer": pacer}
        self._lock = threading.RLock()

    @classmethod
    def from_env(
        cls,
        environ: Mapping[str, str],
        *,
        config_path: str | None = None,
        client_options: ClientOptions | None = None,
    ) -> Runtime:
        """Settings from ``environ``; ``config_path`` (the CLI's ``--config``) overrides the config source.
        Telemetry from ``environ`` too (``adapters.telemetry.telemetry_from_environment``: nothing is imported
        without a connection string)."""
        env = dict(environ)
        if config_path is not None:
            env.pop("REMEDIATOR_CONFIG_JSON", None)
            env["REMEDIATOR_CONFIG_FILE"] = config_path
        settings = Settings.from_env(env)
        quiet_sdk_request_logs()
        return cls(settings, client_options=client_options, telemetry=telemetry_from_environment(env))

    def _part(self, name: str, build: Callable[[], T]) -> T:
        with self._lock:
            if name not in self._parts:
                self._parts[name] = build()
            part: T = self._parts[name]
            return part

    # -- parts ----------------------------------------------------------------------------------------------

    @property
    def config(self) -> RemediatorConfig:
        if self._config is None:
            self._config = self._part("config", lambda: load_config_from_settings(self.settings))
        return self._config

    @property
    def config_identity(self) -> ConfigIdentity:
        """Where the config came from and its SHA-256 (the report names it)."""
        if self._config is not None and "config" not in self._parts:
            return self._part(
                "config_identity",
                lambda: config_identity_of(
                    self.settings.model_copy(update={"config_file": None, "config_json": None}), self.config
                ),
            )
        return self._part("config_identity", lambda: config_identity_of(self.settings, self.config))

    @property
    def credential(self) -> Any:
        """The process's one credential (managed identity in Azure, the emulator's test token locally), shared
        by every SDK client and every identity-based storage client; built on first use."""
        return self._part("credential", lambda: self._credential or credential_from_settings(self.settings))

    def _storage_credential(self) -> Any:
        """The credential for storage clients: none with a connection string (Azurite, local runs)."""
        if self.settings.storage_connection_string:
            return None
        return None if self.settings.credential is CredentialKind.EMULATOR else self.credential

    @property
    def clients(self) -> AzureClients:
        return self._part(
            "clients",
            lambda: AzureClients.from_settings(
                self.settings, options=self._client_options, credential=self.credential
            ),
        )

    @property
    def gateway(self) -> ArmGateway:
        return self._part("gateway", lambda: ArmGateway(self.clients, pacer=self.pacer))

    @property
    def policy(self) -> PolicyGateway:
        return self._part("policy", lambda: PolicyGateway(self.clients, pacer=self.pacer))

    @property
    def protection(self) -> DataProtectionGateway:
        """Azure Backup, trusted access and snapshot resource groups (protect mode)."""
        return self._part("protection", lambda: DataProtectionGateway(self.clients, pacer=self.pacer))

    @property
    def journal(self) -> Journal | None:
        """The journal, or ``None`` when no storage is configured (CLI use against Azure without storage)."""
        return self._part(
            "journal",
            lambda: (
                Journal.from_settings(
                    self.settings, credential=self._storage_credential(), **self._clock_kwargs()
                )
                if self.settings.storage_configured()
                else None
            ),
        )

    @property
    def claims(self) -> WriteClaims | None:
        """Durable write claims in the journal table (``None`` without storage, like the journal)."""

        def build() -> WriteClaims | None:
            journal = self.journal
            return None if journal is None else WriteClaims(journal.table, ensure_table=journal.ensure_table)

        return self._part("claims", build)

    @property
    def work_queue(self) -> WorkQueue:
        return self._part(
            "work_queue",
            lambda: WorkQueue.from_settings(self.settings, credential=self._storage_credential()),
        )

    @property
    def chained_work(self) -> ChainedWork:
        """Work items, one chain per cluster (``adapters/chains.py``): what the triggers and the sweep enqueue
        through, and what the queue worker begins its hops with."""

        def build() -> ChainedWork:
            journal = self.journal
            if journal is None:
                raise UserInputError(
                    "no storage configured", field="AzureWebJobsStorage", source="app settings"
                )
            return ChainedWork(self.work_queue, ChainStore(journal.table, ensure_table=journal.ensure_table))

        return self._part("chained_work", build)

    @property
    def poison_queue(self) -> WorkQueue:
        return self._part(
            "poison_queue",
            lambda: WorkQueue.from_settings(
                self.settings, credential=self._storage_credential(), poison=True
            ),
        )

    @property
    def publisher(self) -> OutcomePublisher:
        return self._part("publisher", lambda: OutcomePublisher.from_settings(self.settings, self.clients))

    @property
    def recorder(self) -> OutcomeRecorder:
        return self._part("recorder", lambda: OutcomeRecorder(self.journal, self.publisher))

    @property
    def reconciler(self) -> Reconciler:
        return self._part(
            "reconciler",
            lambda: Reconciler(
                self.gateway,
                self.config,
                self.settings,
                self.journal,
                self.publisher,
                policy=self.policy,
                claims=self.claims,
                management_groups_of=self.management_groups_of,
                pacer=self.pacer,
                protection=self.protection,
                preflight=self.preflight,
                telemetry=self.telemetry,
                **self._clock_kwargs(),
            ),
        )

    def _clock_kwargs(self) -> dict[str, Any]:
        return {} if self._clock is None else {"clock": self._clock}

    @property
    def preflight(self) -> PreflightSource:
        """What preflight reads (policy assignments, Safeguards, providers, storage), cached per process and
        shared by the reconciler, the sweep (``preflight.sweep(subscriptions)``) and ``config check``."""

        def build() -> PreflightSource:
            graph = ResourceGraphInventory(
                self.clients.resource_graph(),
                quota=self.inventory.quota,  # one quota gate per principal
                prefetch=False,
                max_throttle_retries=2,
            )
            return PreflightSource(
                self.clients, self.gateway, graph=graph, ttl_s=self.settings.preflight_cache_seconds
            )

        return self._part("preflight", build)

    @property
    def management_groups_of(self) -> ManagementGroupResolver | None:
        """Subscription -> the configured management groups above it (Resource Graph, cached), or ``None``
        when the scope lists no management groups (then nothing needs it and Resource Graph is not asked)."""
        groups = self.config.scope.management_groups
        if not groups:
            return None

        def build() -> ManagementGroupResolver:
            graph = ResourceGraphInventory(
                self.clients.resource_graph(),
                quota=self.inventory.quota,  # one quota gate per principal
                prefetch=False,
                max_throttle_retries=2,
            )
            return ManagementGroupResolver(graph, (str(g.name) for g in groups))

        return self._part("management_groups_of", build)

    @property
    def wiring(self) -> EventWiring | None:
        """The timer's event-wiring step, or ``None`` without ``REMEDIATOR_EVENT_WIRING`` or without
        management groups in the scope (only their subscriptions are wired at run time; the deployment wires
        the ones it lists).

        :raises UserInputError: the setting is malformed (the field is named).
        """
        text = (self.settings.event_wiring or "").strip()
        resolver = self.management_groups_of
        if not text or resolver is None:
            return None
        target = WiringTarget.parse(text)

        def build() -> EventWiring:
            return EventWiring(
                target=target,
                subscriptions=lambda: resolver.subscriptions(fresh=True),
                event_grid=EventGridWiring(self.clients, self.inventory),
                recorder=self.journal,
            )

        return self._part("wiring", build)

    @property
    def policy_order(self) -> PolicyStateOrder:
        """Durable policy-state ordering in the journal table."""

        def build() -> PolicyStateOrder:
            journal = self.journal
            if journal is None:
                raise UserInputError(
                    "no storage configured", field="AzureWebJobsStorage", source="app settings"
                )
            journal.ensure_table()
            return PolicyStateOrder(journal.table)

        return self._part("policy_order", build)

    @property
    def scope_rate_limit(self) -> TableRateLimiter | None:
        """The per-caller limit of ``POST /api/remediate {scope}`` in the journal table (``None`` without
        storage)."""

        def build() -> TableRateLimiter | None:
            journal = self.journal
            if journal is None:
                return None
            return TableRateLimiter(
                journal.table,
                per_hour=self.settings.scope_remediations_per_hour,
                name="scope-remediation",
                ensure_table=journal.ensure_table,
            )

        return self._part("scope_rate_limit", build)

    @property
    def inventory(self) -> ResourceGraphInventory:
        """Resource Graph inventory."""
        return self._part("inventory", lambda: ResourceGraphInventory(self.clients.resource_graph_pipeline()))

    def make_sweeper(self, config: RemediatorConfig) -> Sweeper:
        """A sweeper for ``config`` over this runtime's inventory, queue and recorders."""
        return Sweeper(
            config=config,
            inventory=self.inventory,
            work=self.chained_work if self.journal is not None else self.work_queue,
            recorders=(self.recorder,),
            decisions=self.journal,
            pacer=self.sweep_pacer,
        )

    @property
    def pacer(self) -> Pacer:
        """The ARM write pacer of this process's writes (reconciler, gateways): the write buckets shared by
        every Functions instance through the journal table (``adapters/shared_pacing.py``), unless
        ``REMEDIATOR_WRITE_BUDGET=process`` or no storage is configured (then per process)."""

        def build() -> Pacer:
            journal = self.journal
            if self.settings.write_budget is WriteBudget.PROCESS or journal is None:
                return WritePacer()
            return SharedWritePacer(journal.table, WritePacer(), ensure_table=journal.ensure_table)

        return self._part("pacer", build)

    @property
    def sweep_pacer(self) -> WritePacer:
        """The sweep's planning pacer: its reservations stand for writes workers make later (turned into
        visibility delays), so it is kept apart from :attr:`pacer`, which counts the writes themselves."""
        return self._part("sweep_pacer", WritePacer)

    @property
    def sweeper(self) -> Sweeper:
        """The timer sweep (``remediator.service.sweep.Sweeper``) for the configured scope."""
        return self._part("sweeper", lambda: self.make_sweeper(self.config))

    def handler_context(self) -> HandlerContext:
        """The ``HandlerContext`` the triggers use (config, journal and queue probes for ``/api/health``)."""
        checks: list[HealthCheck] = [HealthCheck("config", lambda: self.config)]
        if self.config.remediation.mode == "policy-task":
            checks.append(HealthCheck("policy-assignments", self._probe_policy_assignments))
        if self.settings.storage_configured():
            checks.append(HealthCheck("journal", self._probe_journal))
            checks.append(HealthCheck("work-queue", lambda: self.work_queue.ensure_queue()))
        chains = self.chained_work if self.journal is not None else None
        context = HandlerContext(
            settings=self.settings,
            config=self.config,
            reconciler=self.reconciler,
            work=chains if chains is not None else self.work_queue,
            chains=chains,
            outcomes=self.recorder,
            policy_order=self.policy_order,
            inventory=self.inventory,
            sweeper=self.sweeper,
            make_sweeper=self.make_sweeper,
            health_checks=tuple(checks),
            management_groups_of=self.management_groups_of,
            wiring=self.wiring,
            decisions=self.journal if self.journal is not None else OutcomeRecorder(None, None),
            outcomes_index=self.journal,
            config_identity=self.config_identity,
            scope_rate_limit=self.scope_rate_limit,
            telemetry=self.telemetry,
            extras={"runtime": self},
        )
        freeze_long_lived_objects()
        return context

    def _probe_policy_assignments(self) -> None:
        """Policy-task mode: every configured assignment can remediate (its effect is DeployIfNotExists or
        Modify); raises naming the first that cannot (Azure would end its tasks with zero deployments)."""
        judged = self.preflight.remediation_effects(self.config.remediation.policy_assignment_ids)
        refused = [verdict.why for verdict in judged if verdict.remediable is False]
        if refused:
            raise PolicyAssignmentNotRemediable("; ".join(refused))

    def _probe_journal(self) -> None:
        if self.journal is not None:
            self.journal.ensure_table()

    def close(self) -> None:
        """Close the SDK clients built so far."""
        clients = self._parts.get("clients")
        if clients is not None:
            clients.close()


_freeze_lock = threading.Lock()
_frozen = False


def freeze_long_lived_objects() -> None:
    """Once per process, when its handler context is built: collect, then move every object alive (the
    imported SDK modules, the wired clients, config and caches) to the permanent generation (``gc.freeze``).

    Why: a full (generation 2) collection walks every tracked object; in a wired worker most of them live as
    long as the process. Measured by ``bench events``: the 1.7-1.9x outlier event of most runs coincided with
    a full collection of 37-54 ms (``docs/performance.md``). Frozen objects are still freed when their count
    drops to zero; only the cyclic collector skips them. Later calls (a second runtime in one process, as in
    tests) do nothing, so nothing built afterwards is pinned.
    """
    global _frozen
    with _freeze_lock:
        if _frozen:
            return
        _frozen = True
    gc.collect()
    gc.freeze()


def build_handler_context(environ: Mapping[str, str]) -> HandlerContext:
    """Wire the real adapters from app settings (the Functions app calls this once per worker process), plus
    the ARM reachability probe ``GET /api/health`` reports.

    :raises UserInputError: a setting or the config is invalid; the field is named.
    """
    runtime = Runtime.from_env(environ)
    ctx = runtime.handler_context()

    def probe_arm() -> None:
        scope = runtime.config.scope
        refs = [*scope.subscriptions, *scope.resource_groups]
        for ref in refs[:1]:
            runtime.gateway.list_clusters(str(ref.subscription_id))

    ctx.health_checks = (*ctx.health_checks, HealthCheck("arm", probe_arm))
    return ctx
