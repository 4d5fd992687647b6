"""What a reconcile read, as typed views, and the reads themselves as values.

A requirement says which facts it needs as :class:`Read` values (what to read, not how): the backup
extension of a cluster, a storage account, a container, the role assignments of a principal at a scope... The
service layer (``service/reconcile/observe.py``) has one reader per read type; it runs the reads the chain
asks for in rounds (a read whose inputs come from another read waits for it), concurrently within a round,
each distinct read once. Results land in :class:`Observed`, which the pure requirements evaluate.

Reads are frozen dataclasses, so two requirements that need the same fact ask for an equal value and the
fact is read once. Views carry typed ids (:class:`~remediator.core.ids.ResourceId`), never id strings.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar, cast

from remediator.core.catalog import SETTING_BUCKET, SETTING_STORAGE_ACCOUNT
from remediator.core.ids import ResourceId
from remediator.core.preflight import (
    PolicyAssignment,
    PolicyData,
    PolicyDefinition,
    Safeguards,
    StorageAccount,
)
from remediator.core.snapshot import ClusterSnapshot

T = TypeVar("T")

IN_PROGRESS_EXTENSION_STATES = frozenset({"creating", "updating", "deleting", "accepted", "running"})
FAILED_EXTENSION_STATES = frozenset({"failed", "canceled", "cancelled"})
RUNNING_TASK_STATES = frozenset({"accepted", "evaluating", "running", "cancelling", "inprogress"})
SUCCEEDED_TASK_STATES = frozenset({"succeeded", "complete", "completed"})
FAILED_TASK_STATES = frozenset({"failed", "canceled", "cancelled"})


# --------------------------------------------------------------------------------------------- views


@dataclass(frozen=True)
class ExtensionView:
    """The backup extension found on the cluster (by type, under any name)."""

    name: str
    provisioning_state: str
    principal_id: str | None = None
    """``aksAssignedIdentity.principalId``: the identity the storage grant is for."""
    error: str = ""
    settings: tuple[tuple[str, str], ...] = ()
    """Its ``configurationSettings`` (preflight checks them: Entra ID storage access, resource limits)."""

    @property
    def container(self) -> str | None:
        """The blob container it is configured with (``configuration.backupStorageLocation.bucket``)."""
        return dict(self.settings).get(SETTING_BUCKET) or None

    @property
    def storage_account(self) -> str | None:
        """The storage account name it is configured with (``...config.storageAccount``)."""
        return dict(self.settings).get(SETTING_STORAGE_ACCOUNT) or None

    @property
    def state(self) -> str:
        return self.provisioning_state.lower()

    @property
    def succeeded(self) -> bool:
        return self.state == "succeeded"

    @property
    def failed(self) -> bool:
        return self.state in FAILED_EXTENSION_STATES


@dataclass(frozen=True)
class StorageView:
    """The regional storage account as ARM reports it."""

    id: ResourceId
    location: str
    blob_endpoint: str
    access: StorageAccount | None = None
    """Shared-key access and firewall, as preflight reads them (``None``: not read)."""


@dataclass(frozen=True)
class RoleAssignmentView:
    """One role assignment as ARM lists it (any name: ours, the DINE's or a person's)."""

    scope: ResourceId
    principal_id: str
    role_guid: str
    """The role definition GUID, lower-cased (the id's scope prefix varies; the GUID does not)."""


@dataclass(frozen=True)
class TaskView:
    """The newest remediation task for this cluster and assignment (see ``policy_task.latest_task``).

    :param name: the task's name (``naming.remediation_task_name`` of its generation).
    :param provisioning_state: as ARM reports it.
    :param generation: the generation in the name (0 for the first task).
    :param failed_before: Failed/Canceled tasks in a row directly before this one.
    """

    name: str
    provisioning_state: str
    generation: int = 0
    failed_before: int = 0
    deployments: int | None = None
    """``deploymentStatus.totalDeployments`` (``None``: not reported). A task that ends ``Succeeded`` with
    zero deployments found nothing to remediate (recorded: Azure accepts a task for an Audit assignment and
    ends it so)."""

    @property
    def ended(self) -> bool:
        """Whether the task has ended (it never runs again; the next one needs the next generation)."""
        state = self.provisioning_state.lower()
        return state in SUCCEEDED_TASK_STATES or state in FAILED_TASK_STATES


@dataclass(frozen=True)
class PolicyView:
    """The policy assignments that can cover clusters of one subscription and the definitions behind them.

    :param data: assignments and definitions (``None``: could not be read, see ``error``).
    :param management_groups: names of every management group above the subscription.
    :param age_s: how old the data is (a per-process cache serves it; a blocking verdict is confirmed on
        fresh data).
    :param error: why it could not be read (a permission gap): preflight warns and goes on.
    """

    data: PolicyData | None
    management_groups: tuple[str, ...] = ()
    age_s: float = 0.0
    error: str = ""


@dataclass(frozen=True)
class SafeguardsView:
    """The cluster's Deployment Safeguards (``None``: it has none), or why they could not be read."""

    safeguards: Safeguards | None
    error: str = ""


@dataclass(frozen=True)
class ProvidersView:
    """Provider namespace -> ``registrationState`` in one subscription (``None``: not read, see ``error``)."""

    states: Mapping[str, str] | None
    error: str = ""


@dataclass(frozen=True)
class AssignmentView:
    """A policy assignment and the definition it assigns, for policy-task mode.

    :param assignment: ``None`` when it does not exist.
    :param definition: the policy definition (``None``: an initiative, or not readable: see ``error``).
    :param is_set: the assignment assigns an initiative (policy set).
    :param error: why the definition could not be read.
    """

    assignment: PolicyAssignment | None
    definition: PolicyDefinition | None = None
    is_set: bool = False
    error: str = ""


# --------------------------------------------------------------------------------------------- reads


@dataclass(frozen=True)
class Read(Generic[T]):
    """A fact a requirement needs, as a value (equal reads are read once). ``T`` is the type of the answer."""

    @property
    def label(self) -> str:
        """For logs and reports: the read's kind."""
        return type(self).__name__


@dataclass(frozen=True)
class ExtensionRead(Read["ExtensionView | None"]):
    """The backup extension of ``cluster`` (type ``microsoft.dataprotection.kubernetes``, any name), or
    ``None``."""

    cluster: ResourceId


@dataclass(frozen=True)
class StorageAccountRead(Read["StorageView | None"]):
    """The storage account (``None``: it does not exist)."""

    account: ResourceId


@dataclass(frozen=True)
class ContainerRead(Read[bool]):
    """Whether blob container ``name`` exists in ``account``."""

    account: ResourceId
    name: str


@dataclass(frozen=True)
class RoleAssignmentsRead(Read["tuple[RoleAssignmentView, ...]"]):
    """Every role assignment of ``principal_id`` that applies at ``scope`` (at it or above it)."""

    scope: ResourceId
    principal_id: str


@dataclass(frozen=True)
class ReinstallCountRead(Read[int]):
    """Re-installs journaled for the cluster since its extension was last seen Succeeded (0 without a
    journal)."""

    cluster: ResourceId


@dataclass(frozen=True)
class RemediationTaskRead(Read["TaskView | None"]):
    """The newest remediation task of the cluster for the assignment (walking generations), or ``None``."""

    cluster: ResourceId
    assignment: ResourceId


@dataclass(frozen=True)
class PolicyDataRead(Read[PolicyView]):
    """The policy assignments (and definitions) that can cover clusters of ``subscription`` (lower-cased
    GUID), read in bulk from Resource Graph and cached per process; ``fresh`` bypasses the cache."""

    subscription: str
    fresh: bool = False


@dataclass(frozen=True)
class SafeguardsRead(Read[SafeguardsView]):
    """``Microsoft.ContainerService/deploymentSafeguards/default`` of the cluster."""

    cluster: ResourceId


@dataclass(frozen=True)
class ProvidersRead(Read[ProvidersView]):
    """The registration state of ``namespaces`` in ``subscription``."""

    subscription: str
    namespaces: tuple[str, ...]


@dataclass(frozen=True)
class AssignmentRead(Read[AssignmentView]):
    """A policy assignment and its definition (the definition read once per process)."""

    assignment: ResourceId


# --------------------------------------------------------------------------------------------- results


class ReadFailed(Exception):
    """A requirement needed a read that failed; the failure (an ARM error) is ``error``."""

    def __init__(self, read: Read[Any], error: BaseException) -> None:
        super().__init__(f"{read.label} failed: {error}")
        self.read = read
        self.error = error


class NotRead(LookupError):
    """A requirement asked for a read it did not list in ``reads()`` (a bug in the requirement)."""


@dataclass
class Observed:
    """The cluster and the answers (or failures) of every read made for one reconcile."""

    cluster: ClusterSnapshot
    answers: dict[Read[Any], object] = field(default_factory=dict)
    failures: dict[Read[Any], BaseException] = field(default_factory=dict)

    def knows(self, read: Read[Any]) -> bool:
        """Whether ``read`` was made (answered or failed)."""
        return read in self.answers or read in self.failures

    def get(self, read: Read[T]) -> T:
        """The answer of ``read``.

        :raises ReadFailed: the read failed (the planner turns this into the reconcile's error outcome).
        :raises NotRead: the read was never made.
        """
        if read in self.failures:
            raise ReadFailed(read, self.failures[read])
        if read not in self.answers:
            raise NotRead(f"{read} was not read; list it in the requirement's reads()")
        return cast(T, self.answers[read])

    def peek(self, read: Read[T]) -> T | None:
        """The answer of ``read`` if it was made and succeeded, else ``None`` (for deciding further reads)."""
        return cast(T, self.answers[read]) if read in self.answers else None

    def record(self, read: Read[T], answer: T) -> None:
        self.answers[read] = answer

    def record_failure(self, read: Read[Any], error: BaseException) -> None:
        self.failures[read] = error
