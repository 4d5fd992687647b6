"""Bring one cluster to the wanted state: the same code behind events, the sweep, HTTP and the CLI.

read -> decide -> observe -> plan -> execute -> record:

1. **read** the cluster (one GET; nothing can be decided without it), while what needs only its id goes out
   with it: preflight's policy data and provider registrations of its subscription, and the claims and write
   tokens (shared write budget) a fresh cluster's writes would need, in the journal table;
2. **decide** with the pure core (``core.decision``) and gate on its blockers (``core.plan.planner.gate``);
3. **observe** what the mode's chain of requirements needs (``observe.py``: by dependency, concurrently,
   each read once);
4. **plan** (``core.plan``): preflight, at the head of every chain, blocks every write while something known
   (a policy assignment, Safeguards, storage, a provider) stands in the way; otherwise every unsatisfied link
   whose dependencies are satisfied contributes its write; ``done`` only when every link is satisfied (the
   findings go into the report, the journal and the outcome event);
5. **execute** (``execute.py``): claim -> re-check -> pace -> send the writes together; in audit mode and dry
   runs the writes are only reported as planned;
6. **record**: journal and publish the report (``JournalWriteError`` when a write went unrecorded).

It never waits for a long-running operation: it starts it and returns ``wait``; the caller (queue worker,
Event Grid handler) comes back later. ARM errors become outcomes in one place (``errors.py``).
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from remediator.adapters.arm import ArmError, ArmGateway
from remediator.adapters.claims import WriteClaims
from remediator.adapters.dataprotection import DataProtectionGateway
from remediator.adapters.journal import Journal
from remediator.adapters.leases import LEASE_S
from remediator.adapters.policy import PolicyGateway
from remediator.adapters.preflight_source import PreflightSource
from remediator.adapters.publisher import OutcomePublisher
from remediator.adapters.telemetry import NoTelemetry, Telemetry
from remediator.core.alerts import alert_line, describe, repeat_line
from remediator.core.config import RemediatorConfig
from remediator.core.decision import decide
from remediator.core.errors import UserInputError
from remediator.core.ids import ResourceId
from remediator.core.outcomes import Action, ActionStatus, Outcome, OutcomeKind, ReconcileReport
from remediator.core.pacing import Pacer
from remediator.core.plan import chain_for
from remediator.core.plan.observed import ExtensionRead, ExtensionView, Observed
from remediator.core.plan.planner import Link, Plan, gate, plan, settled_writes
from remediator.core.plan.requirement import Mode, PlanContext, PlanningOptions
from remediator.core.plan.writes import Write
from remediator.core.refusals import CLUSTER_GONE_WHY
from remediator.core.settings import Settings
from remediator.core.snapshot import ClusterSnapshot
from remediator.service.reconcile.errors import outcome_for_error
from remediator.service.reconcile.execute import (
    Execution,
    Executor,
    HeldClaims,
    PhaseTimings,
    TokensAhead,
    action_for,
)
from remediator.service.reconcile.gateways import ReconcileIO
from remediator.service.reconcile.observe import Observer, ReadsAhead

logger = logging.getLogger(__name__)

CLAIM_TTL_S = LEASE_S
"""The lease of a held write claim; it is renewed while the reconcile works, so a crashed holder blocks the
write at most this long (``adapters/leases.py``)."""

MAX_PACING_WAIT_S = 1.0
"""The longest write-pacing wait slept inside a reconcile; a longer one becomes a ``wait`` outcome."""

READ_WORKERS = 16
"""Threads for the concurrent reads, claims and writes of reconciles (the first of each group runs on the
caller's thread)."""

EARLY_WAVE_WORKERS = 8
"""Threads that send reconciles' early waves of writes (``planner.settled_writes``) while their reads finish;
a reconcile whose wave finds no free thread waits for one, it never skips the wave."""


def _now_iso(clock: Callable[[], float] = time.time) -> str:
    return datetime.fromtimestamp(clock(), UTC).isoformat().replace("+00:00", "Z")


def _in_chain_order(actions: list[Action], step: Plan) -> None:
    """Sort a reconcile's actions in the order of the plan's writes (chain order), however they were sent:
    in one wave or two, left to another reconcile or not."""
    order = {write.link: index for index, write in enumerate(step.writes)}
    actions.sort(key=lambda action: order.get(action.link, len(order)))


@dataclass
class _EarlyWave:
    """The writes a reconcile sent while some of its reads were outstanding (``planner.settled_writes``)."""

    writes: tuple[Write, ...] = ()
    future: Future[Execution] | None = None
    execution: Execution | None = None
    timings: PhaseTimings = field(default_factory=PhaseTimings)
    allowed: bool | None = None
    """Whether pacing lets the writes go in two waves (no pacer, or every fresh-cluster write's token drawn
    ahead); ``None`` until the first answer asks. ``False``: one wave, after the reads, all or nothing."""

    def join(self, run: _Run) -> None:
        """Wait for the wave (if one was sent); its actions and phase times go to ``run``."""
        if self.future is None or self.execution is not None:
            return
        self.execution = self.future.result()
        run.actions.extend(self.execution.actions)
        for phase, seconds in self.timings.items():
            run.timings[phase] = run.timings.get(phase, 0.0) + seconds


@dataclass
class _Run:
    """Mutable state of one reconcile, turned into a ReconcileReport at the end."""

    cluster_id: str
    mode: str
    dry_run: bool
    attempt: int
    correlation_id: str
    caller: str | None = None
    started_at: str = field(default_factory=_now_iso)
    decision: dict[str, Any] | None = None
    actions: list[Action] = field(default_factory=list)
    extension_state: str | None = None
    links: tuple[Link, ...] = ()
    findings: tuple[dict[str, Any], ...] = ()
    timings: PhaseTimings = field(default_factory=PhaseTimings)

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
            links=tuple(link.to_json() for link in self.links),
            caller=self.caller,
            findings=self.findings,
        )


class JournalWriteError(RuntimeError):
    """A reconcile wrote to the cluster but its report could not be journaled (retry the reconcile)."""


class Reconciler:
    """Reconciles clusters against the config.

    :param gateway: ARM reads and writes.
    :param config: the remediator config.
    :param settings: app settings (tenant id, wait bounds).
    :param journal: decision/outcome history; ``None`` only for journal-less CLI use (then re-installs are
        not counted).
    :param publisher: outcome events; ``None`` = none.
    :keyword policy: remediation-task gateway (mode ``policy-task``).
    :keyword claims: durable write claims; ``None`` = none (journal-less CLI use).
    :keyword management_groups_of: subscription -> management-group ancestry, when the scope lists groups.
    :keyword claim_ttl_s: claim lifetime.
    :keyword pacer: the process's ARM write pacer; ``None`` = writes are not paced.
    :keyword max_pacing_wait_s: the longest pacing wait slept in a reconcile (longer: ``wait`` outcome).
    :keyword protection: Azure Backup and trusted-access gateway (mode ``protect``).
    :keyword clock: seconds since the epoch, for ``started_at`` (the journal's protect-mode history compares
        it with the journal's clock; a benchmark on the emulator's manual clock injects both).
    :keyword preflight: what preflight reads, cached per process (share the runtime's with the sweep);
        default: one of this reconciler's own over the gateway's clients.
    :keyword telemetry: spans and metrics of every reconcile (``adapters.telemetry``); the default records
        nothing. Every trigger reconciles through :meth:`reconcile`, so this is the one call site.
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
        claims: WriteClaims | None = None,
        management_groups_of: Callable[[str], Iterable[str]] | None = None,
        claim_ttl_s: float = CLAIM_TTL_S,
        pacer: Pacer | None = None,
        max_pacing_wait_s: float = MAX_PACING_WAIT_S,
        protection: DataProtectionGateway | None = None,
        clock: Callable[[], float] = time.time,
        preflight: PreflightSource | None = None,
        telemetry: Telemetry | None = None,
    ) -> None:
        self.gateway = gateway
        self.telemetry: Telemetry = telemetry if telemetry is not None else NoTelemetry()
        self.config = config
        self.settings = settings
        self.journal = journal
        self.publisher = publisher
        self.claims = claims
        self.management_groups_of = management_groups_of
        self.claim_ttl_s = claim_ttl_s
        self.clock = clock
        self.options = PlanningOptions.from_config(config, tenant_id=settings.tenant_id)
        self.chain = chain_for(self.options.chain_mode)
        self._pool_instance: ThreadPoolExecutor | None = None
        self._early_pool_instance: ThreadPoolExecutor | None = None
        self._pool_lock = threading.Lock()
        self.preflight = preflight or PreflightSource(gateway.clients, gateway)
        io = ReconcileIO(
            arm=gateway, policy=policy, journal=journal, protection=protection, preflight=self.preflight
        )
        self.observer = Observer(io, self._pool)
        self.executor = Executor(
            io,
            self._pool,
            pacer=pacer,
            max_pacing_wait_s=max_pacing_wait_s,
            max_wait_s=float(settings.max_wait_seconds),
        )

    def _pool(self) -> ThreadPoolExecutor:
        with self._pool_lock:
            if self._pool_instance is None:
                self._pool_instance = ThreadPoolExecutor(
                    max_workers=READ_WORKERS, thread_name_prefix="reconcile-io"
                )
            return self._pool_instance

    def _early_pool(self) -> ThreadPoolExecutor:
        """Threads for early waves of writes: apart from the reads' pool, which a wave's own concurrent writes
        use (a task of a pool waiting on tasks queued in that same pool could starve it)."""
        with self._pool_lock:
            if self._early_pool_instance is None:
                self._early_pool_instance = ThreadPoolExecutor(
                    max_workers=EARLY_WAVE_WORKERS, thread_name_prefix="reconcile-early"
                )
            return self._early_pool_instance

    # -- entry point ----------------------------------------------------------------------------------------

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
        """Reconcile one cluster and return the report (journaled and published unless ``dry_run``).

        :param cluster_id: the managed cluster (parsed at the edge: event, work item, HTTP body, CLI).
        :keyword dry_run: compute and report the plan; write nothing (not even to the journal).
        :keyword attempt: how many waits preceded this reconcile (drives backoff).
        :keyword correlation_id: ties the report to its cause; a fresh uuid by default.
        :keyword caller: who asked (an HTTP request's ``Caller.label``); journaled with the report.
        :keyword trigger: what started it (the work-item source: ``event``, ``policy``, ``queue``, ``http``,
            ``cli``), for telemetry only.
        :keyword event_time: the triggering Event Grid event's time, for the event->write latency.
        :keyword take_ahead: take a fresh cluster's write claims and write tokens while reading (the event
            path, where the table round trips would otherwise delay the first write). ``False`` for queued
            work (mostly follow-ups that write nothing): the claims and tokens are taken when a write is
            planned, so a reconcile that writes nothing costs the journal table's shared write-budget rows
            nothing (the chaos run's instances contended on them).
        :raises JournalWriteError: it wrote to the cluster but could not journal that (see ``_record``).
        """
        with self.telemetry.reconcile_span(
            cluster_id.canonical, trigger=trigger, event_time=event_time
        ) as span:
            started = time.monotonic()
            report, timings = self._reconcile_once(
                cluster_id,
                dry_run=dry_run,
                attempt=attempt,
                correlation_id=correlation_id,
                caller=caller,
                take_ahead=take_ahead,
            )
            span.finish(report.to_json())
            first = True
            if not dry_run:
                journal_started = time.monotonic()
                first = self._record(report)
                timings.add("journal", journal_started)
            if dry_run or report.outcome.kind is not OutcomeKind.GAVE_UP:  # a give-up is logged once recorded
                logger.info(
                    "reconcile %s: %s (%s) in %s",
                    cluster_id,
                    describe(report.outcome.kind),
                    report.outcome.why,
                    timings.describe(time.monotonic() - started),
                )
            if not dry_run:
                # a give-up's alert line, once per cluster and cause (core.alerts); a repeat is logged quietly
                if report.outcome.kind is OutcomeKind.GAVE_UP and first:
                    logger.warning(alert_line(report))
                elif report.outcome.kind is OutcomeKind.GAVE_UP:
                    logger.info(repeat_line(report))
        return report

    def _reconcile_once(
        self,
        cluster_id: ResourceId,
        *,
        dry_run: bool,
        attempt: int,
        correlation_id: str | None,
        caller: str | None = None,
        take_ahead: bool = True,
    ) -> tuple[ReconcileReport, PhaseTimings]:
        run = _Run(
            cluster_id=cluster_id.canonical,
            mode=self.options.mode.value,
            dry_run=dry_run,
            attempt=attempt,
            correlation_id=correlation_id or str(uuid.uuid4()),
            started_at=_now_iso(self.clock),
            caller=caller,
        )
        try:
            outcome = self._reconcile(cluster_id, run, take_ahead=take_ahead)
        except ArmError as error:
            max_wait_s = float(self.settings.max_wait_seconds)
            outcome = outcome_for_error(error, attempt=attempt, max_wait_s=max_wait_s)
            logger.info("reconcile %s: %s -> %s", cluster_id, error, describe(outcome.kind))
        return run.report(outcome), run.timings

    def _record(self, report: ReconcileReport) -> bool:
        """Journal (and publish) the report; ``False`` when it repeats a state the journal already holds (a
        give-up with the same cause, a parked wait: ``core.alerts``), which is then neither journaled again
        nor published, so its alert fires once.

        :raises JournalWriteError: the journal write failed after this reconcile wrote to the cluster. The
            write must not go unrecorded (the re-install bound counts journaled re-installs), so the caller
            retries: the queue host re-delivers the work item, an event hands over to the queue; the
            reconciler's writes are idempotent. A report that wrote nothing is journaled best effort.
        """
        first = True
        if self.journal is not None:
            try:
                first = self.journal.record(report) is not False
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
        if self.publisher is not None and first:
            self.publisher.publish(report)
        return first

    # -- the steps ------------------------------------------------------------------------------------------

    def _reconcile(self, cid: ResourceId, run: _Run, *, take_ahead: bool = True) -> Outcome:
        planned_only = run.dry_run or self.options.mode is Mode.AUDIT
        # what needs only the cluster's id goes out with the cluster GET, whose wait it fills: preflight's
        # subscription reads, the claims and write tokens of a fresh cluster's writes (in the journal table);
        # not for a cluster its id already puts out of scope (nothing but its GET is read for it)
        ahead = ReadsAhead({})
        held = HeldClaims(None if planned_only else self.claims, cid, ttl_s=self.claim_ttl_s)
        tokens = TokensAhead(None if planned_only else self.executor.pacer)
        try:
            if self._in_scope_by_id(cid):
                ahead = self.observer.start(self.chain.reads_ahead(cid, self.options))
                if take_ahead:
                    held.take_ahead(self.chain.claims_ahead(cid, self.options), self._pool())
                    tokens.take_ahead(self.chain.buckets_ahead(cid, self.options), self._pool())
            return self._read_and_reconcile(cid, run, held, tokens, ahead, planned_only=planned_only)
        finally:
            started = time.monotonic()
            held.release_unkept()
            tokens.give_back_unspent()
            run.timings.add("release", started)

    def _in_scope_by_id(self, cid: ResourceId) -> bool:
        """Whether the cluster's id leaves it in the configured scope (``True`` when only its management-group
        ancestry could tell, which is not looked up before the cluster GET)."""
        try:
            return self.config.scope.contains(cid)
        except ValueError:
            return True

    def _read_and_reconcile(
        self,
        cid: ResourceId,
        run: _Run,
        held: HeldClaims,
        tokens: TokensAhead,
        ahead: ReadsAhead,
        *,
        planned_only: bool,
    ) -> Outcome:
        started = time.monotonic()
        body = self.gateway.get_cluster(cid)
        run.timings.add("cluster", started)
        if body is None:
            return Outcome.done(CLUSTER_GONE_WHY)
        try:
            snapshot = ClusterSnapshot.from_arm(body, source="ARM managedCluster GET")
        except UserInputError as exc:
            return Outcome.gave_up(f"the cluster body from ARM is not readable: {exc}")
        if snapshot.id != cid:
            # Every write below targets the id ARM returned (snapshot.id), and only after it is shown to be
            # the one requested under Azure's rule (ResourceId.__eq__: OrdinalIgnoreCase). A GET that answers
            # with another resource (rg-a\u212as-prod for rg-aks-prod, a proxy or emulator bug) gets no write.
            logger.warning("reconcile %s: the GET answered %s; nothing written", cid, snapshot.id)
            return Outcome.gave_up(
                f"the cluster GET for {cid.canonical} answered with another resource,"
                f" {snapshot.id.canonical}; nothing written"
            )
        decision = decide(snapshot, self.config, management_groups_of=self.management_groups_of)
        run.decision = decision.to_json()
        ctx = PlanContext(snapshot, decision, self.options)
        # the claims are keyed by the requested id, which is snapshot.id under Azure's rule (checked above)
        return self._plan_and_execute(ctx, run, held, tokens, ahead, planned_only=planned_only)

    def _plan_and_execute(
        self,
        ctx: PlanContext,
        run: _Run,
        held: HeldClaims,
        tokens: TokensAhead,
        ahead: ReadsAhead,
        *,
        planned_only: bool,
    ) -> Outcome:
        gated = gate(ctx.decision)
        if gated is not None:
            return gated  # skipped, blocked or waiting on the decision alone: nothing more is read
        early = _EarlyWave()

        def send_settled(observed: Observed) -> None:
            # once per reconcile: the writes no outstanding read can change go now (issue 11), when pacing
            # cannot split the plan's writes (all or nothing): no pacer, or the tokens of every write a fresh
            # cluster gets were drawn ahead (the event path); decided once
            if early.writes:
                return
            if early.allowed is None:
                early.allowed = self.executor.pacer is None or tokens.covers(
                    self.chain.buckets_ahead(ctx.cluster_id, self.options)
                )
            if not early.allowed:
                return
            writes = settled_writes(self.chain, ctx, observed)
            if writes:
                # sent beside the reads still out, so the rest of the plan's writes need not wait for these
                early.writes = writes
                early.future = self._early_pool().submit(
                    self.executor.execute, writes, held, tokens, timings=early.timings
                )

        try:
            started = time.monotonic()
            observed = self.observer.observe(
                self.chain, ctx, ahead=ahead, on_answer=None if planned_only else send_settled
            )
            run.timings.add("reads", started)
            extension: ExtensionView | None = observed.peek(ExtensionRead(ctx.cluster_id))
            run.extension_state = extension.provisioning_state if extension is not None else None
            step = plan(self.chain, ctx, observed)
            if ctx.storage_account is not None and any(link.state == "blocked" for link in step.links):
                # a blocker is cleared by a fix the next reconcile must see: read the account afresh
                self.gateway.forget_storage_account(ctx.storage_account)
            run.links = step.links
            run.findings = tuple(finding.to_json() for finding in step.findings)
            if planned_only and step.writes:
                outcome = self._planned(step, run)
            elif step.writes or early.writes:
                outcome = self._execute(step, early, held, tokens, run)
            else:
                outcome = step.outcome
        finally:
            early.join(run)  # no claim is released while a write under it may still be going out
        if step.error is not None:
            # a read the chain needed failed: its mapping is the outcome (when only a link that cannot veto
            # failed to read, the other links' writes went first)
            raise step.error
        return outcome

    def _planned(self, step: Plan, run: _Run) -> Outcome:
        """Audit mode and dry runs: the writes are reported as planned, nothing is sent."""
        for write in step.writes:
            run.actions.append(action_for(write, ActionStatus.PLANNED, write.detail))
        if self.options.mode is Mode.AUDIT and not run.dry_run:
            kinds = ", ".join(w.kind.value for w in step.writes)
            return Outcome.done(f"audit mode: would {kinds}; nothing written ({step.outcome.why})")
        return step.outcome

    def _execute(
        self, step: Plan, early: _EarlyWave, held: HeldClaims, tokens: TokensAhead, run: _Run
    ) -> Outcome:
        """Send the plan's writes not sent early (while the early wave may still be going out), then the
        outcome of both waves as one execution's, actions in chain order."""
        rest = [write for write in step.writes if write not in early.writes]
        execution = Execution()
        if rest:
            execution = self.executor.execute(rest, held, tokens, timings=run.timings)
            run.actions.extend(execution.actions)
        early.join(run)
        if early.execution is not None:
            execution = early.execution.then(execution)
        _in_chain_order(run.actions, step)
        return self._outcome_of(step, execution)

    def _outcome_of(self, step: Plan, execution: Execution) -> Outcome:
        if execution.error is not None:
            raise execution.error
        if execution.outcome is not None:
            return execution.outcome
        elsewhere = execution.elsewhere
        if elsewhere is None:
            return step.outcome
        # another reconcile sends a share of the writes: not done, and back when its claim runs out if sooner
        if step.outcome.kind is OutcomeKind.WAIT and (step.outcome.retry_after_s or 0.0) <= (
            elsewhere.retry_after_s or 0.0
        ):
            return step.outcome
        return elsewhere


__all__ = ["CLAIM_TTL_S", "JournalWriteError", "Reconciler"]
