"""Bring one cluster to the wanted state: the same code behind events, the sweep, HTTP and the CLI.

One reconcile reads the cluster, decides with the pure core (``core.decision``), observes what exists
(backup extension under any name, storage account, container, role assignment, remediation task), asks the
pure planner (``core.planning``) for the next step, and performs that step's writes — or, in audit mode and
dry runs, only reports them. It never waits for a long-running operation: it starts it and returns ``wait``,
and the caller (queue worker, Event Grid handler) comes back later.

Reads that do not depend on each other run concurrently: after the cluster GET (needed to decide), the
extension list, the storage account GET and (install mode) the container GET go out together, so an install
costs three dependent round trips before the extension PUT (cluster; the reads; the container PUT) instead of
one per call.

Exactly-once under concurrency: Function instances do not share memory, so before each write the reconciler
takes a durable claim in the journal table (an atomic insert, ``Journal.try_claim``). A claim is kept after a
successful write (it expires on its own) and released after a failed one, so a retry can proceed at once.
Re-installs, grants and remediation tasks re-read the state they are about to change after claiming (see
``_recheck`` for why a first install does not need to).

Writes are paced (``core.pacing.WritePacer``, one per process): before a step's writes the reconciler takes
one token per write from the right subscription's bucket (the storage account's for the container and the
role assignment, the cluster's for the extension and the remediation task). A short wait (up to
``max_pacing_wait_s``, 1 s) is slept; a longer one becomes a ``wait`` outcome and nothing is written,
because a Functions invocation must not block long. Dry runs, audit mode and unselected clusters write
nothing and take no tokens.

Errors from ARM become outcomes (``outcome_for_error``): 429 -> wait for Retry-After; 409 Conflict /
OperationNotAllowed -> wait; 5xx, timeouts, dropped connections -> wait with backoff; 403 -> gave_up naming
the missing permission; 409 MissingSubscriptionRegistration -> gave_up naming the provider namespace.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import wait as wait_for_futures
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from remediator.adapters.arm import (
    ArmError,
    ArmGateway,
    Conflict,
    ExtensionInfo,
    Forbidden,
    NotFound,
    ProviderNotRegistered,
    Throttled,
    Transient,
)
from remediator.adapters.journal import Claim, Journal
from remediator.adapters.policy import PolicyGateway
from remediator.adapters.publisher import OutcomePublisher
from remediator.core.config import RemediatorConfig
from remediator.core.decision import Decision, decide
from remediator.core.errors import UserInputError
from remediator.core.extension_body import (
    StorageTarget,
    backup_extension_body,
    storage_blob_data_contributor_id,
)
from remediator.core.ids import ResourceId, parse_cluster_id
from remediator.core.naming import backup_container_name, remediation_task_name, role_assignment_name
from remediator.core.outcomes import Action, ActionKind, ActionStatus, Outcome, ReconcileReport
from remediator.core.pacing import WritePacer
from remediator.core.planning import (
    FAILED_EXTENSION_STATES,
    ExtensionView,
    Mode,
    ObservedState,
    PlanningOptions,
    StorageView,
    TaskView,
    Write,
    backoff_seconds,
    covering_assignment,
    gate,
    latest_remediation_task,
    plan_next_step,
)
from remediator.core.settings import Settings
from remediator.core.snapshot import ClusterSnapshot

logger = logging.getLogger(__name__)

CLAIM_TTL_S = 300.0
"""How long a write claim holds when it is not released (a crashed holder blocks the write at most this
long)."""

CONFLICT_WAIT_S = 15.0
"""Base wait after a 409 conflict (another operation on the cluster is in progress)."""

MAX_PACING_WAIT_S = 1.0
"""The longest write-pacing wait slept inside a reconcile; a longer one becomes a ``wait`` outcome."""

READ_WORKERS = 16
"""Threads for the concurrent reads of reconciles (two per reconcile run on the pool, one on the caller)."""

_STORAGE_WRITES = frozenset({ActionKind.CREATE_CONTAINER, ActionKind.GRANT_STORAGE_ACCESS})
"""Writes that land in the storage account's subscription; the others land in the cluster's."""


def planning_options(config: RemediatorConfig) -> PlanningOptions:
    """The planner's knobs from the config."""
    return PlanningOptions(
        mode=Mode(config.remediation.mode),
        grant_storage_access=config.remediation.grant_storage_access,
        max_reinstalls=config.remediation.max_reinstalls,
        policy_assignment_ids=tuple(str(a) for a in config.remediation.policy_assignment_ids),
        extension_name=config.extension.name,
    )


def outcome_for_error(error: ArmError, *, attempt: int, max_wait_s: float = 600.0) -> Outcome:
    """The outcome an ARM error warrants (see the module docstring)."""
    if isinstance(error, Throttled):
        return Outcome.wait(min(max(error.retry_after_s, 1.0), max_wait_s), f"throttled by ARM: {error}")
    if isinstance(error, ProviderNotRegistered):
        return Outcome.gave_up(
            f"ProviderNotRegistered: the subscription has not registered {error.namespace}"
            f" (az provider register --namespace {error.namespace}): {error.message}"
        )
    if isinstance(error, Forbidden):
        permission = error.action or "unknown action (ARM did not name it)"
        return Outcome.gave_up(f"missing permission {permission}: {error}")
    if isinstance(error, Conflict):
        wait = backoff_seconds(attempt, base=CONFLICT_WAIT_S, cap=max_wait_s)
        return Outcome.wait(wait, f"conflict ({error.code or 'Conflict'}), will retry: {error}")
    if isinstance(error, Transient | NotFound):
        return Outcome.wait(
            backoff_seconds(attempt, cap=max_wait_s), f"transient ARM error, will retry: {error}"
        )
    return Outcome.gave_up(f"ARM refused the request: {error}")


def _now_iso() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


@dataclass
class _Run:
    """Mutable state of one reconcile, turned into a ReconcileReport at the end."""

    cluster_id: str
    mode: str
    dry_run: bool
    attempt: int
    correlation_id: str
    started_at: str = field(default_factory=_now_iso)
    decision: dict[str, Any] | None = None
    actions: list[Action] = field(default_factory=list)
    extension_state: str | None = None

    def report(self, outcome: Outcome) -> ReconcileReport:
        return ReconcileReport(
            cluster_id=self.cluster_id,
            decision=self.decision,
            outcome=outcome,
            actions=tuple(self.actions),
            mode=self.mode,
            dry_run=self.dry_run,
            attempt=self.attempt,
            extension_state=self.extension_state,
            started_at=self.started_at,
            correlation_id=self.correlation_id,
        )


class JournalWriteError(RuntimeError):
    """A reconcile wrote to the cluster but its report could not be journaled (retry the reconcile)."""


class _ClaimedElsewhere(Exception):
    """Another reconcile holds the claim for a write."""


class _StateMoved(Exception):
    """After claiming, the re-read state no longer needs the write."""


def _extension_view(ext: ExtensionInfo | None) -> ExtensionView | None:
    if ext is None:
        return None
    return ExtensionView(
        name=ext.name,
        provisioning_state=ext.provisioning_state,
        principal_id=ext.principal_id,
        error=ext.error,
    )


class Reconciler:
    """Reconciles clusters against the config.

    :param gateway: ARM reads and writes.
    :param config: the remediator config.
    :param settings: app settings (tenant id, wait bounds).
    :param journal: decision/outcome history and write claims; ``None`` only for journal-less CLI use (then
        claims are skipped and re-installs are not counted).
    :param publisher: outcome events; ``None`` = none.
    :keyword policy: remediation-task gateway (mode ``policy-task``).
    :keyword management_groups_of: subscription -> management-group ancestry, when the scope lists groups.
    :keyword claim_ttl_s: claim lifetime.
    :keyword pacer: the process's ARM write pacer; ``None`` = writes are not paced.
    :keyword max_pacing_wait_s: the longest pacing wait slept in a reconcile (longer: ``wait`` outcome).
    """

    def __init__(
        self,
        gateway: ArmGateway,
        config: RemediatorConfig,
        settings: Settings,
        journal: Journal | None,
        publisher: OutcomePublisher | None,
        *,
        policy: PolicyGateway | None = None,
        management_groups_of: Callable[[str], Iterable[str]] | None = None,
        claim_ttl_s: float = CLAIM_TTL_S,
        pacer: WritePacer | None = None,
        max_pacing_wait_s: float = MAX_PACING_WAIT_S,
    ) -> None:
        self.gateway = gateway
        self.config = config
        self.settings = settings
        self.journal = journal
        self.publisher = publisher
        self.policy = policy
        self.management_groups_of = management_groups_of
        self.claim_ttl_s = claim_ttl_s
        self.pacer = pacer
        self.max_pacing_wait_s = max_pacing_wait_s
        self.options = planning_options(config)
        self._read_pool: ThreadPoolExecutor | None = None
        self._read_pool_lock = threading.Lock()

    # -- entry point ----------------------------------------------------------------------------------------

    def reconcile(
        self,
        cluster_id: str | ResourceId,
        *,
        dry_run: bool = False,
        attempt: int = 0,
        correlation_id: str | None = None,
    ) -> ReconcileReport:
        """Reconcile one cluster and return the report (journaled and published unless ``dry_run``).

        :param cluster_id: the managed cluster's ARM id (any casing).
        :keyword dry_run: compute and report the plan; write nothing (not even to the journal).
        :keyword attempt: how many waits preceded this reconcile (drives backoff).
        :keyword correlation_id: ties the report to its cause; a fresh uuid by default.
        :raises UserInputError: the id is not a managed cluster id (nothing was read or written).
        :raises JournalWriteError: it wrote to the cluster but could not journal that (see ``_record``).
        """
        cid = (
            cluster_id
            if isinstance(cluster_id, ResourceId)
            else parse_cluster_id(cluster_id, field="clusterId")
        )
        run = _Run(
            cluster_id=cid.canonical,
            mode=self.options.mode.value,
            dry_run=dry_run,
            attempt=attempt,
            correlation_id=correlation_id or str(uuid.uuid4()),
        )
        try:
            outcome = self._reconcile(cid, run)
        except ArmError as error:
            outcome = outcome_for_error(
                error, attempt=attempt, max_wait_s=float(self.settings.max_wait_seconds)
            )
            logger.info("reconcile %s: %s -> %s", cid.canonical, error, outcome.kind.value)
        report = run.report(outcome)
        logger.info("reconcile %s: %s (%s)", cid.canonical, outcome.kind.value, outcome.why)
        if not dry_run:
            self._record(report)
        return report

    def _record(self, report: ReconcileReport) -> None:
        """Journal (and publish) the report.

        :raises JournalWriteError: the journal write failed after this reconcile wrote to the cluster. The
            write must not go unrecorded (the re-install bound counts journaled re-installs), so the caller
            retries: the queue host re-delivers the work item, an event hands over to the queue; the
            reconciler's writes are idempotent. A report that wrote nothing is journaled best effort.
        """
        if self.journal is not None:
            try:
                self.journal.record(report)
            except Exception as exc:
                wrote = [a for a in report.actions if a.status is ActionStatus.DONE]
                if wrote:
                    kinds = ", ".join(a.kind.value for a in wrote)
                    raise JournalWriteError(
                        f"journaling the reconcile of {report.cluster_id} failed after it wrote ({kinds}):"
                        f" {type(exc).__name__}: {exc}"
                    ) from exc
                logger.warning(
                    "journaling the reconcile of %s failed (it wrote nothing): %s: %s",
                    report.cluster_id,
                    type(exc).__name__,
                    exc,
                )
        if self.publisher is not None:
            self.publisher.publish(report)

    # -- the steps ------------------------------------------------------------------------------------------

    def _reconcile(self, cid: ResourceId, run: _Run) -> Outcome:
        body = self.gateway.get_cluster(cid)
        if body is None:
            return Outcome.done("cluster not found (deleted); nothing to do")
        try:
            snapshot = ClusterSnapshot.from_arm(body, source="ARM managedCluster GET")
        except UserInputError as exc:
            return Outcome.gave_up(f"the cluster body from ARM is not readable: {exc}")
        decision = decide(snapshot, self.config, management_groups_of=self.management_groups_of)
        run.decision = decision.to_json()
        gated = gate(decision)
        if gated is not None:
            return gated.outcome
        observed = self._observe(cid, snapshot, decision, run)
        step = plan_next_step(observed, decision, self.options)
        if not step.writes:
            return step.outcome
        planned_only = run.dry_run or self.options.mode is Mode.AUDIT
        context = _WriteContext(cid, snapshot, decision, observed)
        if planned_only:
            for write in step.writes:
                run.actions.append(
                    Action(write.kind, context.target(write), ActionStatus.PLANNED, write.detail)
                )
            if self.options.mode is Mode.AUDIT and not run.dry_run:
                kinds = ", ".join(w.kind.value for w in step.writes)
                return Outcome.done(f"audit mode: would {kinds}; nothing written ({step.outcome.why})")
            return step.outcome
        return self._perform(step.writes, step.outcome, context, run)

    def _observe(
        self, cid: ResourceId, snapshot: ClusterSnapshot, decision: Decision, run: _Run
    ) -> ObservedState:
        storage_id = decision.storage_account_id
        if self.options.mode is Mode.POLICY_TASK:
            ext = _extension_view(self.gateway.find_backup_extension(cid))
            run.extension_state = ext.provisioning_state if ext else None
            assignment = covering_assignment(cid.canonical, self.options.policy_assignment_ids)
            task: TaskView | None = None
            if ext is None and assignment is not None and self.policy is not None:
                policy = self.policy

                def task_state(name: str) -> str | None:
                    info = policy.get_remediation_at_resource(resource_id=cid, name=name)
                    return None if info is None else info.provisioning_state

                task = latest_remediation_task(cid.canonical, assignment, task_state)
            return ObservedState(
                cluster_location=snapshot.location,
                storage_account_id=str(storage_id) if storage_id else None,
                extension=ext,
                task=task,
                assignment_id=assignment,
            )
        storage: StorageView | None = None
        container_exists: bool | None = None
        grant_exists: bool | None = None
        prior = 0
        if storage_id is None:
            ext = _extension_view(self.gateway.find_backup_extension(cid))
            run.extension_state = ext.provisioning_state if ext else None
        else:
            container = backup_container_name(snapshot.name, cid.canonical)
            sa_id = storage_id

            def read_container() -> bool | ArmError:
                # read before we know whether an install needs it: its error only counts if it does
                try:
                    return self.gateway.container_exists(sa_id, container)
                except ArmError as exc:
                    return exc

            # Independent reads, together: the container is read before we know whether an install is
            # needed (one extra read for a compliant cluster) so that an install waits one round, not two.
            found, info_sa, container_found = self._read_together(
                lambda: self.gateway.find_backup_extension(cid),
                lambda: self.gateway.get_storage_account(sa_id),
                read_container,
            )
            ext = _extension_view(found)
            run.extension_state = ext.provisioning_state if ext else None
            storage = StorageView(info_sa.id, info_sa.location, info_sa.blob_endpoint) if info_sa else None
            state = ext.provisioning_state.lower() if ext else ""
            needs_install = ext is None or state in FAILED_EXTENSION_STATES
            if storage is not None and needs_install:
                if isinstance(container_found, ArmError):
                    raise container_found
                container_exists = container_found
            if (
                ext is not None
                and state == "succeeded"
                and ext.principal_id
                and self.options.grant_storage_access
                and storage is not None
            ):
                grant_exists = self.gateway.role_assignment_exists(
                    str(storage_id), self._grant_name(str(storage_id), ext.principal_id)
                )
            if ext is not None and state in FAILED_EXTENSION_STATES and self.journal is not None:
                prior = self.journal.count_reinstalls(cid.canonical)
        return ObservedState(
            cluster_location=snapshot.location,
            storage_account_id=str(storage_id) if storage_id else None,
            storage=storage,
            storage_read=storage_id is not None,
            extension=ext,
            container_exists=container_exists,
            grant_exists=grant_exists,
            prior_reinstalls=prior,
        )

    def _read_together(
        self, first: Callable[[], ExtensionInfo | None], *rest: Callable[[], Any]
    ) -> tuple[Any, ...]:
        """Run independent reads concurrently (``first`` on this thread, the rest on the read pool) and
        return their results in order. Every read finishes before this returns; if any failed, the first
        failure in argument order is raised as it was (an ``ArmError`` chained from the SDK's exception)."""
        pool = self._pool()
        futures: list[Future[Any]] = [pool.submit(call) for call in rest]
        results: list[Any] = []
        errors: list[BaseException] = []
        try:
            results.append(first())
        except Exception as exc:
            errors.append(exc)
        wait_for_futures(futures)
        for future in futures:
            error = future.exception()
            if error is not None:
                errors.append(error)
            else:
                results.append(future.result())
        if errors:
            raise errors[0]
        return tuple(results)

    def _pool(self) -> ThreadPoolExecutor:
        with self._read_pool_lock:
            if self._read_pool is None:
                self._read_pool = ThreadPoolExecutor(
                    max_workers=READ_WORKERS, thread_name_prefix="reconcile-read"
                )
            return self._read_pool

    @staticmethod
    def _grant_name(storage_id: str, principal_id: str) -> str:
        role = storage_blob_data_contributor_id(storage_id.split("/")[2])
        return role_assignment_name(storage_id, principal_id, role)

    # -- writes ---------------------------------------------------------------------------------------------

    def _perform(self, writes: tuple[Write, ...], outcome: Outcome, ctx: _WriteContext, run: _Run) -> Outcome:
        claim_name = self._claim_name(writes, ctx)
        claim: Claim | None = None
        if self.journal is not None:
            claim = self.journal.try_claim(ctx.cid.canonical, claim_name, ttl_s=self.claim_ttl_s)
            if claim is None:
                run.actions.append(
                    Action(writes[0].kind, ctx.target(writes[0]), ActionStatus.CLAIMED_ELSEWHERE, claim_name)
                )
                return Outcome.wait(
                    min(30.0, float(self.settings.max_wait_seconds)),
                    f"another reconcile holds the {claim_name} claim for this cluster",
                )
            try:
                self._recheck(writes[0], ctx)
            except _StateMoved as moved:
                self.journal.release(claim)
                return Outcome.wait(5.0, f"state changed while claiming: {moved}")
        deferred = self._pace(writes, ctx, run)
        if deferred is not None:
            if claim is not None and self.journal is not None:
                self.journal.release(claim)
            return deferred
        current: Write | None = None
        try:
            for write in writes:
                current = write
                status = self._write(write, ctx)
                run.actions.append(Action(write.kind, ctx.target(write), status, ctx.last_detail))
        except ArmError as error:
            if current is not None:
                run.actions.append(Action(current.kind, ctx.target(current), ActionStatus.FAILED, str(error)))
            if claim is not None and self.journal is not None:
                self.journal.release(claim)
            raise
        return outcome

    def _claim_name(self, writes: tuple[Write, ...], ctx: _WriteContext) -> str:
        kinds = {w.kind for w in writes}
        if ActionKind.REINSTALL_EXTENSION in kinds:
            return f"reinstall-{ctx.observed.prior_reinstalls + 1}"
        if ActionKind.CREATE_EXTENSION in kinds or ActionKind.CREATE_CONTAINER in kinds:
            return "install"
        if ActionKind.GRANT_STORAGE_ACCESS in kinds:
            return "grant-" + writes[0].detail.lower()
        return f"remediation-task-g{ctx.observed.next_task_generation}"

    def _pace(self, writes: tuple[Write, ...], ctx: _WriteContext, run: _Run) -> Outcome | None:
        """Take one write token per write from the right subscription's bucket, all or nothing.

        ``None`` = go ahead (a short wait, if any, was slept); otherwise the ``wait`` outcome to return, with
        every write recorded as deferred and nothing written.
        """
        if self.pacer is None:
            return None
        demand: dict[str, float] = {}
        for write in writes:
            target = ctx.require_storage_id() if write.kind in _STORAGE_WRITES else ctx.cid
            subscription_id = str(target.subscription_id)
            demand[subscription_id] = demand.get(subscription_id, 0.0) + 1.0
        verdict = self.pacer.try_acquire(demand, max_wait_s=self.max_pacing_wait_s)
        if verdict.granted:
            return None
        why = (
            f"pacing ARM writes: subscription {verdict.subscription_id}'s write bucket refills in"
            f" {verdict.wait_s:.1f} s; nothing written"
        )
        for write in writes:
            run.actions.append(Action(write.kind, ctx.target(write), ActionStatus.DEFERRED, why))
        retry_after = min(max(verdict.wait_s, self.max_pacing_wait_s), float(self.settings.max_wait_seconds))
        return Outcome.wait(retry_after, why)

    def _recheck(self, first: Write, ctx: _WriteContext) -> None:
        """Re-read what the first write is about to change, now that we hold the claim.

        A first install (no backup extension observed) is not re-read: the ``install`` claim is an atomic
        insert that is kept for its TTL after a successful write, so a reconcile whose read predates another
        reconcile's extension PUT cannot take it; it is only free again after the holder's write failed, and
        then repeating the install is right (the PUT bodies are identical; a PUT that in fact reached ARM
        before its response was lost is answered idempotently or with a 409 conflict, which becomes ``wait``).

        A re-install is re-read: its claim is named after the journaled re-install count, which is read
        after the extension list, so a reconcile can hold a stale "Failed" next to a count that already
        includes another reconcile's re-install, claim the next number and re-install a second time. Grants
        and remediation tasks keep their re-read too (cheap, off the event path).
        """
        if first.kind in (ActionKind.CREATE_CONTAINER, ActionKind.CREATE_EXTENSION) and (
            ctx.observed.extension is None
        ):
            return
        if first.kind in (
            ActionKind.CREATE_CONTAINER,
            ActionKind.CREATE_EXTENSION,
            ActionKind.REINSTALL_EXTENSION,
        ):
            ext = self.gateway.find_backup_extension(ctx.cid)
            before = ctx.observed.extension
            if before is None and ext is not None:
                raise _StateMoved(f"extension {ext.name} appeared ({ext.provisioning_state})")
            if before is not None and (
                ext is None or ext.provisioning_state.lower() not in FAILED_EXTENSION_STATES
            ):
                raise _StateMoved(f"extension {before.name} is no longer {before.provisioning_state}")
        elif first.kind is ActionKind.GRANT_STORAGE_ACCESS:
            if self.gateway.role_assignment_exists(str(ctx.storage_id), ctx.grant_name(first.detail)):
                raise _StateMoved("the role assignment exists")
        elif (
            first.kind is ActionKind.CREATE_REMEDIATION_TASK
            and self.policy is not None
            and self.policy.get_remediation_at_resource(resource_id=ctx.cid, name=ctx.task_name()) is not None
        ):
            raise _StateMoved("the remediation task exists")

    def _write(self, write: Write, ctx: _WriteContext) -> ActionStatus:
        ctx.last_detail = write.detail
        if write.kind is ActionKind.CREATE_CONTAINER:
            created = self.gateway.ensure_container(ctx.require_storage_id(), ctx.container)
            return ActionStatus.DONE if created else ActionStatus.EXISTS
        if write.kind in (ActionKind.CREATE_EXTENSION, ActionKind.REINSTALL_EXTENSION):
            storage = ctx.observed.storage
            if storage is None:
                raise ArmError("storage account not observed", operation="PUT extension")
            body = backup_extension_body(
                storage_account=StorageTarget.from_id(str(ctx.require_storage_id())),
                container=ctx.container,
                tenant_id=self.settings.tenant_id,
                blob_endpoint=storage.blob_endpoint,
                release_train=self.config.extension.release_train,
                auto_upgrade_minor_version=self.config.extension.auto_upgrade_minor_version,
                extra_settings=self.config.extension.configuration_settings,
            )
            status = self.gateway.begin_create_extension(ctx.cid, write.detail, body)
            ctx.last_detail = f"{write.detail}: HTTP {status}"
            return ActionStatus.DONE
        if write.kind is ActionKind.GRANT_STORAGE_ACCESS:
            storage_id = str(ctx.require_storage_id())
            created = self.gateway.ensure_role_assignment(
                scope=storage_id,
                name=ctx.grant_name(write.detail),
                role_definition_id=storage_blob_data_contributor_id(storage_id.split("/")[2]),
                principal_id=write.detail,
            )
            ctx.last_detail = f"Storage Blob Data Contributor for {write.detail}"
            return ActionStatus.DONE if created else ActionStatus.EXISTS
        if write.kind is ActionKind.CREATE_REMEDIATION_TASK:
            if self.policy is None:
                raise ArmError("no policy gateway configured", operation="PUT remediation")
            info = self.policy.create_remediation_at_resource(
                resource_id=ctx.cid, name=ctx.task_name(), policy_assignment_id=write.detail
            )
            ctx.last_detail = f"{info.name}: {info.provisioning_state or 'created'}"
            return ActionStatus.DONE
        raise AssertionError(f"unknown write {write.kind}")


class _WriteContext:
    """Names and ids the writes of one step share."""

    def __init__(
        self, cid: ResourceId, snapshot: ClusterSnapshot, decision: Decision, observed: ObservedState
    ):
        self.cid = cid
        self.snapshot = snapshot
        self.decision = decision
        self.observed = observed
        self.storage_id = decision.storage_account_id
        self.container = backup_container_name(snapshot.name, cid.canonical)
        self.last_detail = ""

    def require_storage_id(self) -> ResourceId:
        if self.storage_id is None:
            raise ArmError("no storage account for the cluster's region", operation="write")
        return self.storage_id

    def grant_name(self, principal_id: str) -> str:
        return Reconciler._grant_name(str(self.require_storage_id()), principal_id)

    def task_name(self) -> str:
        return remediation_task_name(
            self.cid.canonical,
            self.observed.assignment_id or "",
            generation=self.observed.next_task_generation,
        )

    def target(self, write: Write) -> str:
        storage = str(self.storage_id) if self.storage_id else ""
        if write.kind is ActionKind.CREATE_CONTAINER:
            return f"{storage}/blobServices/default/containers/{self.container}"
        if write.kind in (ActionKind.CREATE_EXTENSION, ActionKind.REINSTALL_EXTENSION):
            return (
                f"{self.cid.canonical}/providers/Microsoft.KubernetesConfiguration/extensions/{write.detail}"
            )
        if write.kind is ActionKind.GRANT_STORAGE_ACCESS:
            name = self.grant_name(write.detail) if self.storage_id else ""
            return f"{storage}/providers/Microsoft.Authorization/roleAssignments/{name}"
        return f"{self.cid.canonical}/providers/Microsoft.PolicyInsights/remediations/{self.task_name()}"


__all__ = ["CLAIM_TTL_S", "JournalWriteError", "Reconciler", "outcome_for_error", "planning_options"]
