"""Reads by dependency: what the chain needs, in rounds, concurrently within a round, each read once.

Reads that need only the cluster's *id* (preflight's policy data and provider registrations of its
subscription: :meth:`~remediator.core.plan.requirement.Requirement.reads_ahead`) are started by the reconciler
together with the cluster GET (:meth:`Observer.start`) and taken by the round that asks for them. Round 1 is
everything the links can ask for from the cluster and the config alone (the backup extension, the
storage account, the container, and preflight's policy data, provider registrations and Safeguards); a later
round is what needed an earlier answer (the role assignments of the
extension's identity, the re-install count of a Failed extension, the newest remediation task). Equal reads
are made once (reads are values). Each read type has one reader in :data:`READERS`; an ARM error is recorded
against its read (only a link that needs the answer turns it into the outcome), anything else propagates.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor, as_completed
from concurrent.futures import wait as wait_for_futures
from dataclasses import replace
from typing import Any

from remediator.adapters.arm import ArmError, ExtensionInfo
from remediator.adapters.preflight_source import PreflightSource
from remediator.core.catalog import role_guid_of
from remediator.core.ids import InvalidResourceIdError, ResourceId, parse_resource_id
from remediator.core.plan.observed import (
    VALIDATED_INLINE,
    AssignmentRead,
    AssignmentView,
    BackupInstancesRead,
    BackupInstanceView,
    BackupPolicyRead,
    BackupPolicyView,
    BackupVaultRead,
    ContainerRead,
    ExtensionRead,
    ExtensionView,
    LocksRead,
    LockView,
    Observed,
    PolicyDataRead,
    PolicyView,
    ProtectionHistory,
    ProtectionHistoryRead,
    ProvidersRead,
    ProvidersView,
    Read,
    ReinstallCountRead,
    RemediationTaskRead,
    ResourceGroupRead,
    ResourceGroupView,
    RoleAssignmentsRead,
    RoleAssignmentView,
    SafeguardsRead,
    SafeguardsView,
    StorageAccountRead,
    StorageView,
    TaskView,
    TrustedAccessBindingsRead,
    TrustedAccessBindingView,
    ValidationRead,
    ValidationView,
    VaultView,
)
from remediator.core.plan.policy_task import latest_remediation_task
from remediator.core.plan.protect import HISTORY_LIMIT, protection_history
from remediator.core.plan.requirement import Chain, PlanContext
from remediator.core.protection import policy_uses_vault_tier
from remediator.service.reconcile.gateways import ReconcileIO

logger = logging.getLogger(__name__)

MAX_ROUNDS = 4
"""Dependent read rounds a chain may need (install needs 2, policy-task 2, protect 3); a bound against a link
that keeps asking for new reads."""

Reader = Callable[[ReconcileIO, Any], object]


def _extension_view(found: ExtensionInfo | None) -> ExtensionView | None:
    if found is None:
        return None
    return ExtensionView(
        found.name, found.provisioning_state, found.principal_id, found.error, found.settings
    )


def read_extension(io: ReconcileIO, read: ExtensionRead) -> ExtensionView | None:
    return _extension_view(io.arm.find_backup_extension(read.cluster))


def read_storage_account(io: ReconcileIO, read: StorageAccountRead) -> StorageView | None:
    found = io.arm.get_storage_account(read.account)
    if found is None:
        return None
    return StorageView(read.account, found.location, found.blob_endpoint, found.access)


def read_container(io: ReconcileIO, read: ContainerRead) -> bool:
    return io.arm.container_exists(read.account, read.name)


def read_role_assignments(io: ReconcileIO, read: RoleAssignmentsRead) -> tuple[RoleAssignmentView, ...]:
    views: list[RoleAssignmentView] = []
    for item in io.arm.list_role_assignments(read.scope, principal_id=read.principal_id):
        try:
            scope = parse_resource_id(item.scope)
        except InvalidResourceIdError:  # a management-group or root scope we cannot compare: not ours
            logger.debug("role assignment %s has a scope we do not model: %s", item.id, item.scope)
            continue
        views.append(RoleAssignmentView(scope, item.principal_id, role_guid_of(item.role_definition_id)))
    return tuple(views)


def read_reinstall_count(io: ReconcileIO, read: ReinstallCountRead) -> int:
    return 0 if io.journal is None else io.journal.count_reinstalls(read.cluster.canonical)


def read_remediation_task(io: ReconcileIO, read: RemediationTaskRead) -> TaskView | None:
    policy = io.policy
    if policy is None:
        raise ArmError("no policy gateway configured", operation="GET remediation")

    deployments: dict[str, int | None] = {}

    def state_of(name: str) -> str | None:
        info = policy.get_remediation_at_resource(resource_id=read.cluster, name=name)
        if info is None:
            return None
        deployments[name] = info.total_deployments
        return info.provisioning_state

    newest = latest_remediation_task(read.cluster, read.assignment, state_of)
    if newest is None:
        return None
    return replace(newest, deployments=deployments.get(newest.name))


def _preflight(io: ReconcileIO) -> PreflightSource:
    if io.preflight is None:
        raise ArmError("no preflight source configured", operation="preflight")
    return io.preflight


def read_policy_data(io: ReconcileIO, read: PolicyDataRead) -> PolicyView:
    return _preflight(io).policy(read.subscription, fresh=read.fresh)


def read_safeguards(io: ReconcileIO, read: SafeguardsRead) -> SafeguardsView:
    return _preflight(io).safeguards(read.cluster)


def read_providers(io: ReconcileIO, read: ProvidersRead) -> ProvidersView:
    return _preflight(io).providers(read.subscription, read.namespaces)


def read_assignment(io: ReconcileIO, read: AssignmentRead) -> AssignmentView:
    return _preflight(io).assignment(read.assignment)


# --------------------------------------------------------------------------------------------- protect mode


def read_vault(io: ReconcileIO, read: BackupVaultRead) -> VaultView | None:
    found = io.require_protection("GET backup vault").get_vault(read.vault)
    if found is None:
        return None
    return VaultView(
        read.vault, found.location, found.provisioning_state, found.principal_id, found.redundancy
    )


def read_policy(io: ReconcileIO, read: BackupPolicyRead) -> BackupPolicyView | None:
    found = io.require_protection("GET backup policy").get_policy(read.policy)
    if found is None:
        return None
    return BackupPolicyView(read.policy, policy_uses_vault_tier(found.properties), found.datasource_types)


def read_resource_group(io: ReconcileIO, read: ResourceGroupRead) -> ResourceGroupView | None:
    found = io.require_protection("GET resource group").get_resource_group(read.group)
    return None if found is None else ResourceGroupView(read.group, found.location)


def read_locks(io: ReconcileIO, read: LocksRead) -> tuple[LockView, ...]:
    return tuple(
        LockView(lock.id, lock.level) for lock in io.require_protection("LIST locks").list_locks(read.scope)
    )


def read_bindings(io: ReconcileIO, read: TrustedAccessBindingsRead) -> tuple[TrustedAccessBindingView, ...]:
    found = io.require_protection("LIST trusted access role bindings").list_trusted_access_bindings(
        read.cluster
    )
    return tuple(
        TrustedAccessBindingView(b.name, b.source_resource_id, b.roles, b.provisioning_state) for b in found
    )


def _vault_id(value: str | None) -> ResourceId | None:
    if not value:
        return None
    try:
        return parse_resource_id(value)
    except InvalidResourceIdError:
        return None


def read_backup_instances(io: ReconcileIO, read: BackupInstancesRead) -> tuple[BackupInstanceView, ...]:
    found = io.require_protection("LIST backup instances").list_backup_instances(read.cluster)
    return tuple(
        BackupInstanceView(
            name=item.name,
            vault=_vault_id(item.vault_id),
            protection_state=item.protection_state,
            provisioning_state=item.provisioning_state,
            error_code=item.error_code,
            error_message=item.error_message,
            policy=item.policy_id,
            snapshot_group=item.snapshot_group_id,
        )
        for item in found
    )


def read_protection_history(io: ReconcileIO, read: ProtectionHistoryRead) -> ProtectionHistory:
    journal = io.journal
    if journal is None:
        return ProtectionHistory(journaled=False)
    reports = journal.history(read.cluster.canonical, limit=HISTORY_LIMIT)
    return protection_history(reports, now=journal.clock())


def read_validation(io: ReconcileIO, read: ValidationRead) -> ValidationView | None:
    if read.operation_id == VALIDATED_INLINE:
        return ValidationView(read.operation_id, "Succeeded")
    found = io.require_protection("GET operation status").get_operation(read.vault, read.operation_id)
    if found is None:
        return None
    return ValidationView(found.id, found.status, found.error_code, found.error_message)


READERS: dict[type[Read[Any]], Reader] = {
    ExtensionRead: read_extension,
    StorageAccountRead: read_storage_account,
    ContainerRead: read_container,
    RoleAssignmentsRead: read_role_assignments,
    ReinstallCountRead: read_reinstall_count,
    RemediationTaskRead: read_remediation_task,
    BackupVaultRead: read_vault,
    BackupPolicyRead: read_policy,
    ResourceGroupRead: read_resource_group,
    LocksRead: read_locks,
    TrustedAccessBindingsRead: read_bindings,
    BackupInstancesRead: read_backup_instances,
    ProtectionHistoryRead: read_protection_history,
    ValidationRead: read_validation,
    PolicyDataRead: read_policy_data,
    SafeguardsRead: read_safeguards,
    ProvidersRead: read_providers,
    AssignmentRead: read_assignment,
}
"""One reader per read type (a test checks every read type in ``core.plan.observed`` has one)."""


class ReadsAhead:
    """Reads started before the reconcile knew it needed them (:meth:`Observer.start`), by read.

    A read ahead that no round asks for (the cluster was not found, or not selected) is left to finish on its
    own: its answer lands in the per-process caches behind it (``PreflightSource``), and any error is
    dropped with it.
    """

    def __init__(self, futures: dict[Read[Any], Future[object]]) -> None:
        self._futures = dict(futures)

    def take(self, reads: Iterable[Read[Any]]) -> dict[Read[Any], Future[object]]:
        """The futures of those of ``reads`` that were started ahead (each handed out once)."""
        return {read: self._futures.pop(read) for read in reads if read in self._futures}


def _outstanding(futures: Iterable[Future[object]]) -> bool:
    """Whether a read of the round is still in flight (an answer already in is recorded, not waited for)."""
    return not all(future.done() for future in futures)


class Observer:
    """Runs the reads a chain asks for.

    :param io: the adapters.
    :param pool: threads for the concurrent reads (the first read of a round runs on the caller's thread).
    """

    def __init__(self, io: ReconcileIO, pool: Callable[[], ThreadPoolExecutor]) -> None:
        self.io = io
        self._pool = pool

    def start(self, reads: Iterable[Read[Any]]) -> ReadsAhead:
        """Start ``reads`` on the pool now (the reconciler's reads ahead: they go out together with the
        cluster GET); :meth:`observe` takes their answers instead of reading again."""
        pool = self._pool()
        return ReadsAhead({read: pool.submit(self.read, read) for read in reads})

    def observe(
        self,
        chain: Chain,
        ctx: PlanContext,
        *,
        ahead: ReadsAhead | None = None,
        on_answer: Callable[[Observed], None] | None = None,
    ) -> Observed:
        """Every read the chain needs, round after round, until no link asks for more (a read started
        ahead is waited for, not made again). ``on_answer`` is called with what is known so far after each
        answer that leaves others of its round still in flight (the reconciler sends the writes already
        settled: ``planner.settled_writes``); on this thread, so nothing is recorded meanwhile. Not when
        the others have answered too (they are recorded at once): the plan then has everything, and its
        writes leave from the reconcile's own thread, the long-running one first, without a hand-off."""
        observed = Observed(ctx.cluster)
        for _ in range(MAX_ROUNDS):
            reads = chain.reads(ctx, observed)
            if not reads:
                return observed
            self._round(reads, observed, ahead, on_answer)
        leftover = chain.reads(ctx, observed)
        if leftover:
            raise RuntimeError(
                f"chain {chain.name} still asks for reads after {MAX_ROUNDS} rounds: {leftover}"
            )
        return observed

    def read(self, read: Read[Any]) -> object:
        """One read, now (the write specs' re-checks use this)."""
        return READERS[type(read)](self.io, read)

    def _round(
        self,
        reads: list[Read[Any]],
        observed: Observed,
        ahead: ReadsAhead | None = None,
        on_answer: Callable[[Observed], None] | None = None,
    ) -> None:
        started = ahead.take(reads) if ahead is not None else {}
        futures: dict[Future[object], Read[Any]] = {future: read for read, future in started.items()}
        fresh = [read for read in reads if read not in started]
        unexpected: list[BaseException] = []
        try:
            if fresh:
                first, rest = fresh[0], fresh[1:]
                if rest:
                    pool = self._pool()
                    futures.update({pool.submit(self.read, read): read for read in rest})
                try:
                    observed.record(first, self.read(first))
                except ArmError as error:
                    observed.record_failure(first, error)
                except Exception as error:  # not an ARM answer: surface it after the round
                    unexpected.append(error)
                if on_answer is not None and not unexpected and _outstanding(futures):
                    on_answer(observed)
            for future in as_completed(futures):
                read = futures[future]
                failure = future.exception()
                if failure is None:
                    observed.record(read, future.result())
                elif isinstance(failure, ArmError):
                    observed.record_failure(read, failure)
                else:
                    unexpected.append(failure)
                if on_answer is not None and not unexpected and _outstanding(futures):
                    on_answer(observed)
        finally:
            wait_for_futures(futures)  # none is left running, whatever was raised
        if unexpected:
            raise unexpected[0]
