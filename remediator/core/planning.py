"""The reconcile state machine, pure: observed state in, next step out.

The reconciler (``remediator.service.reconciler``) reads Azure, fills an :class:`ObservedState`, asks
:func:`plan_next_step` what to do, and then performs the step's writes in order (or only reports them, in
audit mode and dry runs). Keeping the decision logic here means every branch — blockers, extension states,
bounded re-installs, policy-task mode — is unit-tested without a network, and audit mode reports exactly the
plan install mode would execute.

In policy-task mode a remediation task runs once; when the newest task has ended and the cluster still lacks
the extension (non-compliant again, or the task failed) the next task gets the next generation in its name
(``naming.remediation_task_name``), so repeats find the running task instead of piling up new ones, and a
cluster is never stuck behind an old, ended task. Failed/Canceled tasks in a row are retried at most
``max_reinstalls`` times.

Re-installs are bounded per failure episode: a Failed extension is re-installed at most
``max_reinstalls`` times, counting only re-installs since the extension was last seen ``Succeeded``. Once an
install works the count starts again, so an old failure never makes a new one a give-up without an attempt.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Protocol

from remediator.core.naming import remediation_task_name
from remediator.core.outcomes import ActionKind, Outcome
from remediator.core.text import ignore_case_key

logger = logging.getLogger(__name__)

EXTENSION_POLL_SECONDS = 30.0
"""How long to wait before looking at an extension operation again (installs take minutes)."""

TASK_POLL_SECONDS = 60.0
"""How long to wait before looking at a running remediation task again."""

IN_PROGRESS_EXTENSION_STATES = frozenset({"creating", "updating", "deleting", "accepted", "running"})
FAILED_EXTENSION_STATES = frozenset({"failed", "canceled", "cancelled"})
RUNNING_TASK_STATES = frozenset({"accepted", "evaluating", "running", "cancelling", "inprogress"})
SUCCEEDED_TASK_STATES = frozenset({"succeeded", "complete", "completed"})
FAILED_TASK_STATES = frozenset({"failed", "canceled", "cancelled"})

MAX_TASK_GENERATIONS = 100
"""How many remediation-task generations :func:`latest_remediation_task` looks at before it stops (a
safety bound on reads; reaching it makes the planner give up)."""

WAIT_BLOCKERS: Mapping[str, str] = {
    "cluster-not-succeeded": "the cluster's provisioningState is not Succeeded",
    "cluster-stopped": "the cluster is not Running",
}
"""Blockers that clear by themselves: wait and look again."""

HUMAN_BLOCKERS: Mapping[str, str] = {
    "no-managed-identity": "service-principal cluster: cluster extensions need a managed identity",
    "disk-csi-driver-disabled": "the Azure Disk CSI driver is disabled (az aks update --enable-disk-driver)",
    "snapshot-controller-disabled": "the snapshot controller is disabled"
    " (az aks update --enable-snapshot-controller)",
    "no-linux-amd64-pool": "no Linux amd64 node pool: the backup extension runs only on Linux amd64 nodes",
}
"""Blockers that need a human; the reconciler gives up naming them."""


class Mode(StrEnum):
    """What the remediator does for a selected cluster (``remediation.mode`` in the config)."""

    INSTALL = "install"
    POLICY_TASK = "policy-task"
    AUDIT = "audit"


class DecisionLike(Protocol):
    """The parts of ``core.decision.Decision`` the planner reads."""

    @property
    def selected(self) -> bool: ...

    @property
    def reason(self) -> str: ...

    @property
    def blockers(self) -> Sequence[object]: ...


@dataclass(frozen=True)
class PlanningOptions:
    """The config knobs the planner needs, flattened from ``RemediatorConfig``.

    :param mode: install / policy-task / audit.
    :param grant_storage_access: grant the extension identity Storage Blob Data Contributor.
    :param max_reinstalls: how many times a Failed extension is re-installed before giving up, per failure
        episode: re-installs made before the extension was last seen ``Succeeded`` do not count (see
        :attr:`ObservedState.prior_reinstalls`). In policy-task mode, likewise how many Failed/Canceled
        remediation tasks in a row are followed by a new one.
    :param policy_assignment_ids: assignments of Policy 3/4 (for policy-task mode).
    :param extension_name: the name a new extension gets.
    """

    mode: Mode = Mode.INSTALL
    grant_storage_access: bool = True
    max_reinstalls: int = 2
    policy_assignment_ids: tuple[str, ...] = ()
    extension_name: str = "azure-aks-backup"


@dataclass(frozen=True)
class ExtensionView:
    """An extension of type ``microsoft.dataprotection.kubernetes`` found on the cluster (under any name)."""

    name: str
    provisioning_state: str
    principal_id: str | None = None
    error: str = ""


@dataclass(frozen=True)
class StorageView:
    """The regional storage account as ARM reports it."""

    id: str
    location: str
    blob_endpoint: str


@dataclass(frozen=True)
class TaskView:
    """The newest remediation task for this cluster and assignment (see :func:`latest_remediation_task`).

    :param name: the task's name (``naming.remediation_task_name`` of its generation).
    :param provisioning_state: as ARM reports it.
    :param generation: the generation in the name (0 for the first task).
    :param failed_before: Failed/Canceled tasks in a row directly before this one (older generations, up to
        the newest Succeeded one).
    """

    name: str
    provisioning_state: str
    generation: int = 0
    failed_before: int = 0

    @property
    def ended(self) -> bool:
        """Whether the task has ended (it never runs again; the next one needs the next generation)."""
        state = self.provisioning_state.lower()
        return state in SUCCEEDED_TASK_STATES or state in FAILED_TASK_STATES


@dataclass(frozen=True)
class ObservedState:
    """What the reconciler read. ``None`` fields were not read (or do not exist, per the field's note).

    :param cluster_location: the cluster's region.
    :param storage_account_id: the storage account the decision picked.
    :param storage: the storage account; ``None`` with ``storage_read`` = it does not exist.
    :param storage_read: whether the storage account was looked up.
    :param extension: the backup extension, ``None`` if absent (or not read).
    :param container_exists: whether the backup container exists (``None``: not read).
    :param grant_exists: whether the extension identity's role assignment exists (``None``: not read).
    :param task: the newest remediation task, ``None`` if there is none (:func:`latest_remediation_task`).
    :param prior_reinstalls: re-installs recorded in the journal for this cluster since the extension was
        last seen ``Succeeded`` (``Journal.count_reinstalls``): the bound resets once an install worked, so a
        cluster that used its re-installs long ago gets them again when its extension fails anew.
    :param assignment_id: the policy assignment covering the cluster (policy-task mode).
    """

    cluster_location: str = ""
    storage_account_id: str | None = None
    storage: StorageView | None = None
    storage_read: bool = False
    extension: ExtensionView | None = None
    container_exists: bool | None = None
    grant_exists: bool | None = None
    task: TaskView | None = None
    prior_reinstalls: int = 0
    assignment_id: str | None = None

    @property
    def next_task_generation(self) -> int:
        """The generation a remediation task created now gets: 0 without a task, else the newest + 1 (the
        planner asks for a task only when there is none or the newest has ended)."""
        return 0 if self.task is None else self.task.generation + 1


@dataclass(frozen=True)
class Write:
    """One write the step asks for.

    :param kind: what to write.
    :param detail: context for the report (e.g. the extension name or the principal).
    """

    kind: ActionKind
    detail: str = ""


@dataclass(frozen=True)
class Step:
    """The next step: the writes to make, in order, and the outcome if they all succeed.

    :param outcome: the outcome of this reconcile once the writes are done (or directly, without writes).
    :param writes: writes in order; empty for a pure wait/skip/give-up/done.
    """

    outcome: Outcome
    writes: tuple[Write, ...] = field(default_factory=tuple)

    @property
    def is_final(self) -> bool:
        return not self.writes


def normalize_location(location: str) -> str:
    """ARM location comparison form (``"West Europe"`` == ``"westeurope"``)."""
    return "".join(location.split()).lower()


def blocker_code(blocker: object) -> str:
    """The string code of a decision blocker (an enum, a string, or an object with ``code``)."""
    code = getattr(blocker, "code", None)
    if isinstance(code, str):
        return code
    value = getattr(blocker, "value", None)
    if isinstance(value, str):
        return value
    return str(blocker)


def gate(decision: DecisionLike) -> Step | None:
    """Skip, give up or wait because of the decision alone (no further reads needed), else ``None``.

    Human blockers win over transient ones: a stopped service-principal cluster needs a human either way.
    """
    if not decision.selected:
        return Step(Outcome.skipped(str(decision.reason)))
    codes = [blocker_code(b) for b in decision.blockers]
    human = [c for c in codes if c in HUMAN_BLOCKERS]
    if human:
        return Step(Outcome.gave_up("; ".join(f"{c}: {HUMAN_BLOCKERS[c]}" for c in human)))
    unknown = [c for c in codes if c not in WAIT_BLOCKERS]
    if unknown:
        return Step(Outcome.gave_up("blocked: " + ", ".join(unknown)))
    waiting = [c for c in codes if c in WAIT_BLOCKERS]
    if waiting:
        return Step(
            Outcome.wait(EXTENSION_POLL_SECONDS, "; ".join(f"{c}: {WAIT_BLOCKERS[c]}" for c in waiting))
        )
    return None


def _storage_problem(observed: ObservedState) -> Step | None:
    if observed.storage_account_id is None:
        return Step(Outcome.gave_up("no storage account configured for the cluster's region"))
    if not observed.storage_read:
        return None
    if observed.storage is None:
        return Step(Outcome.gave_up(f"storage-account-missing: {observed.storage_account_id} does not exist"))
    if not observed.storage.blob_endpoint:
        return Step(
            Outcome.gave_up(
                f"storage-account-no-blob-endpoint: {observed.storage_account_id} has no blob endpoint"
            )
        )
    if normalize_location(observed.storage.location) != normalize_location(observed.cluster_location):
        return Step(
            Outcome.gave_up(
                f"storage-account-wrong-region: {observed.storage_account_id} is in"
                f" {observed.storage.location}, the cluster in {observed.cluster_location};"
                " the backup container must be in the cluster's region"
            )
        )
    return None


def _install_step(observed: ObservedState, options: PlanningOptions) -> Step:
    storage = _storage_problem(observed)
    if storage is not None:
        return storage
    ext = observed.extension
    container = () if observed.container_exists else (Write(ActionKind.CREATE_CONTAINER),)
    if ext is None:
        return Step(
            Outcome.wait(EXTENSION_POLL_SECONDS, f"extension {options.extension_name} install started"),
            (*container, Write(ActionKind.CREATE_EXTENSION, options.extension_name)),
        )
    state = ext.provisioning_state.lower()
    if state == "succeeded":
        if not options.grant_storage_access:
            return Step(Outcome.done(f"extension {ext.name} Succeeded (storage grant disabled by config)"))
        if not ext.principal_id:
            return Step(
                Outcome.wait(EXTENSION_POLL_SECONDS, f"extension {ext.name} has no aksAssignedIdentity yet")
            )
        if observed.grant_exists:
            return Step(Outcome.done(f"extension {ext.name} Succeeded and its identity can write backups"))
        return Step(
            Outcome.done(f"extension {ext.name} Succeeded; storage access granted"),
            (Write(ActionKind.GRANT_STORAGE_ACCESS, ext.principal_id),),
        )
    if state in IN_PROGRESS_EXTENSION_STATES:
        return Step(Outcome.wait(EXTENSION_POLL_SECONDS, f"extension {ext.name} is {ext.provisioning_state}"))
    if state in FAILED_EXTENSION_STATES:
        if observed.prior_reinstalls >= options.max_reinstalls:
            detail = f": {ext.error}" if ext.error else ""
            return Step(
                Outcome.gave_up(
                    f"extension {ext.name} is {ext.provisioning_state} after {observed.prior_reinstalls}"
                    f" re-install(s) (limit {options.max_reinstalls}){detail}"
                )
            )
        return Step(
            Outcome.wait(
                EXTENSION_POLL_SECONDS,
                f"extension {ext.name} was {ext.provisioning_state}; re-install"
                f" {observed.prior_reinstalls + 1} of {options.max_reinstalls} started",
            ),
            (*container, Write(ActionKind.REINSTALL_EXTENSION, ext.name)),
        )
    return Step(
        Outcome.wait(
            EXTENSION_POLL_SECONDS, f"extension {ext.name} is in unknown state {ext.provisioning_state}"
        )
    )


def _policy_task_step(observed: ObservedState, options: PlanningOptions) -> Step:
    ext = observed.extension
    if ext is not None:
        state = ext.provisioning_state.lower()
        if state == "succeeded":
            return Step(Outcome.done(f"extension {ext.name} Succeeded (deployed through Azure Policy)"))
        if state in FAILED_EXTENSION_STATES:
            return Step(
                Outcome.gave_up(
                    f"extension {ext.name} is {ext.provisioning_state}; the DINE policy counts it as present"
                    " and will not redeploy it (use mode install, or delete the extension)"
                )
            )
        return Step(Outcome.wait(EXTENSION_POLL_SECONDS, f"extension {ext.name} is {ext.provisioning_state}"))
    if observed.assignment_id is None:
        return Step(
            Outcome.gave_up(
                "no configured policy assignment covers the cluster's subscription or resource group"
            )
        )
    task = observed.task
    create = (Write(ActionKind.CREATE_REMEDIATION_TASK, observed.assignment_id),)
    if task is None:
        return Step(Outcome.wait(TASK_POLL_SECONDS, "remediation task created"), create)
    state = task.provisioning_state.lower()
    if state in RUNNING_TASK_STATES:
        return Step(
            Outcome.wait(TASK_POLL_SECONDS, f"remediation task {task.name} is {task.provisioning_state}")
        )
    if not task.ended:
        return Step(Outcome.gave_up(f"remediation task {task.name} ended {task.provisioning_state}"))
    if task.generation + 1 >= MAX_TASK_GENERATIONS:
        return Step(
            Outcome.gave_up(
                f"remediation task {task.name} ended {task.provisioning_state} and is generation"
                f" {task.generation}; no further tasks are created (limit {MAX_TASK_GENERATIONS})"
            )
        )
    if state in FAILED_TASK_STATES:
        failed = task.failed_before + 1
        if failed > options.max_reinstalls:
            return Step(
                Outcome.gave_up(
                    f"remediation task {task.name} ended {task.provisioning_state}; {failed} task(s) in a row"
                    f" ended Failed/Canceled (limit {options.max_reinstalls} retries)"
                )
            )
        why = (
            f"remediation task {task.name} ended {task.provisioning_state}; task generation"
            f" {observed.next_task_generation} created (retry {failed} of {options.max_reinstalls})"
        )
        return Step(Outcome.wait(TASK_POLL_SECONDS, why), create)
    return Step(
        Outcome.wait(
            TASK_POLL_SECONDS,
            f"remediation task {task.name} {task.provisioning_state}, yet the cluster has no backup extension"
            f" (non-compliant again); task generation {observed.next_task_generation} created",
        ),
        create,
    )


def plan_next_step(observed: ObservedState, decision: DecisionLike, options: PlanningOptions) -> Step:
    """The next step for one cluster.

    Audit mode plans as install mode does (the reconciler reports the writes as planned and sends none).

    :param observed: what the reconciler read.
    :param decision: the core decision for the cluster.
    :param options: the config knobs.
    """
    gated = gate(decision)
    if gated is not None:
        return gated
    if options.mode is Mode.POLICY_TASK:
        return _policy_task_step(observed, options)
    return _install_step(observed, options)


def latest_remediation_task(
    cluster_id: str,
    assignment_id: str,
    provisioning_state_of: Callable[[str], str | None],
    *,
    limit: int = MAX_TASK_GENERATIONS,
) -> TaskView | None:
    """The newest remediation task of a cluster and assignment, walking generations 0, 1, 2, ... by name.

    A generation exists only after the one before it ended (the planner creates generation ``n + 1`` only
    when task ``n`` has ended and the cluster still lacks the extension), so the walk stops at the first name
    that does not exist. Along the way it counts the Failed/Canceled tasks in a row before the newest one,
    which bounds retries of a failing remediation.

    :param cluster_id: the cluster.
    :param assignment_id: the covering policy assignment.
    :param provisioning_state_of: reads one task by name: its provisioningState, or ``None`` if it does not
        exist (the reconciler passes a ``PolicyGateway`` GET).
    :keyword limit: the most generations read.
    """
    newest: TaskView | None = None
    failed_run = 0
    for generation in range(limit):
        name = remediation_task_name(cluster_id, assignment_id, generation=generation)
        state = provisioning_state_of(name)
        if state is None:
            break
        if newest is not None:
            newest_state = newest.provisioning_state.lower()
            failed_run = failed_run + 1 if newest_state in FAILED_TASK_STATES else 0
        newest = TaskView(name, state, generation=generation, failed_before=failed_run)
    return newest


def covering_assignment(cluster_id: str, assignment_ids: Sequence[str]) -> str | None:
    """The first policy assignment whose scope contains the cluster (subscription or resource-group scope).

    Policy 3/4 cannot be assigned at management-group scope (aks_backup_facts.md §4.1), so only assignments at
    the cluster's subscription, resource group or the cluster itself can cover it.
    """
    cluster = ignore_case_key(cluster_id).rstrip("/")
    marker = "/providers/microsoft.authorization/policyassignments/"
    for assignment in assignment_ids:
        lowered = ignore_case_key(assignment)
        if marker not in lowered:
            continue
        scope = lowered.split(marker, 1)[0].rstrip("/")
        if scope and (cluster == scope or cluster.startswith(scope + "/")):
            return assignment
    return None


def backoff_seconds(attempt: int, *, base: float = 5.0, cap: float = 600.0) -> float:
    """Exponential backoff for transient errors: ``base * 2**attempt`` seconds, capped."""
    return float(min(cap, base * (2 ** max(0, min(attempt, 30)))))
