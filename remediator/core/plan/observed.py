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


# --------------------------------------------------------------------------------------------- protect views

IN_PROGRESS_ARM_STATES = frozenset(
    {"creating", "updating", "provisioning", "accepted", "running", "deleting"}
)
"""provisioningState values of an ARM resource whose operation is still running."""
IN_PROGRESS_PROTECTION_STATES = frozenset({"configuringprotection", "updatingprotection"})
"""currentProtectionState values while Azure Backup configures protection (``CurrentProtectionState``)."""
FAILED_PROTECTION_STATES = frozenset({"protectionerror", "configuringprotectionfailed"})
"""currentProtectionState values that carry an error code to act on."""


@dataclass(frozen=True)
class VaultView:
    """A backup vault as ARM reports it."""

    id: ResourceId
    location: str
    provisioning_state: str
    principal_id: str | None
    """The vault's system-assigned identity (the principal the vault's roles are for)."""
    redundancy: str | None = None

    @property
    def succeeded(self) -> bool:
        return self.provisioning_state.lower() == "succeeded"

    @property
    def in_progress(self) -> bool:
        return self.provisioning_state.lower() in IN_PROGRESS_ARM_STATES


@dataclass(frozen=True)
class BackupPolicyView:
    """A backup policy: its id and whether it keeps backups in the vault tier."""

    id: ResourceId
    uses_vault_tier: bool
    datasource_types: tuple[str, ...] = ()


@dataclass(frozen=True)
class ResourceGroupView:
    """A resource group (the snapshot resource group)."""

    id: ResourceId
    location: str


@dataclass(frozen=True)
class LockView:
    """A management lock at or above a scope (``CanNotDelete`` / ``ReadOnly``)."""

    id: str
    level: str


@dataclass(frozen=True)
class TrustedAccessBindingView:
    """One trusted-access role binding on a cluster."""

    name: str
    source_resource_id: str
    roles: tuple[str, ...]
    provisioning_state: str

    @property
    def state(self) -> str:
        return self.provisioning_state.lower()


@dataclass(frozen=True)
class BackupInstanceView:
    """A backup instance protecting the cluster (any vault), as the extension-routing list returns it.

    :param name: the instance name.
    :param vault: the vault it lives in (from ``policyInfo.policyId``), or ``None`` when unreadable.
    :param protection_state: ``currentProtectionState``.
    :param provisioning_state: ``provisioningState``.
    :param error_code: ``protectionErrorDetails.code`` (empty without an error).
    :param error_message: ``protectionErrorDetails.message``.
    :param policy: ``policyInfo.policyId``.
    :param snapshot_group: the operational store's ``resourceGroupId``.
    """

    name: str
    vault: ResourceId | None
    protection_state: str
    provisioning_state: str = ""
    error_code: str = ""
    error_message: str = ""
    policy: str = ""
    snapshot_group: str = ""

    @property
    def state(self) -> str:
        return self.protection_state.lower()

    @property
    def configured(self) -> bool:
        return self.state == "protectionconfigured"

    @property
    def configuring(self) -> bool:
        return self.state in IN_PROGRESS_PROTECTION_STATES

    @property
    def failed(self) -> bool:
        return self.state in FAILED_PROTECTION_STATES


VALIDATED_INLINE = "answered-inline"
"""The operation id journaled for a validateForBackup that answered 200 at once (the documented synchronous
answer ``{jobId, objectType: OperationJobExtendedInfo}``): it succeeded and there is nothing to poll."""


@dataclass(frozen=True)
class ValidationView:
    """The result of one validateForBackup operation."""

    operation_id: str
    status: str
    """``InProgress`` (any casing of the RP's ``Inprogress``), ``Succeeded`` or ``Failed``."""
    error_code: str = ""
    error_message: str = ""

    @property
    def done(self) -> bool:
        return self.status.lower() in ("succeeded", "failed", "canceled", "cancelled")

    @property
    def succeeded(self) -> bool:
        return self.status.lower() == "succeeded"


@dataclass(frozen=True)
class JournaledValidation:
    """The newest validateForBackup this product sent for the cluster (from the journal)."""

    operation_id: str
    vault: ResourceId
    started_at: float


@dataclass(frozen=True)
class LinkEpisode:
    """How long a link has been unsatisfied: the run of newest journal reports in which it was not satisfied.

    :param since: when the first report of the run started (epoch seconds).
    :param reports: how many reports the run holds.
    """

    since: float
    reports: int


@dataclass(frozen=True)
class ProtectionHistory:
    """What the journal says about this cluster's protection, for retry budgets and repairs (see
    ``core/plan/protect.py``: :func:`~remediator.core.plan.protect.protection_history` builds it).

    :param journaled: ``False`` when there is no journal (then nothing can be followed between reconciles).
    :param now: the journal's clock when it was read (epoch seconds).
    :param validation: the newest validation sent, if any.
    :param last_change_at: when the newest write other than a validation was sent (a validation older than
        this checked an older state), or ``None``.
    :param validations_since_change: validations sent since ``last_change_at``.
    :param repairs: instance re-syncs / re-PUTs sent since protection was last seen configured.
    :param configured_at: when protection was last seen configured (``None``: never, in the history read).
    :param episodes: link -> its current unsatisfied run.
    """

    journaled: bool = False
    now: float = 0.0
    validation: JournaledValidation | None = None
    last_change_at: float | None = None
    validations_since_change: int = 0
    repairs: int = 0
    configured_at: float | None = None
    episodes: dict[str, LinkEpisode] = field(default_factory=dict)

    @property
    def change_stamp(self) -> int:
        """``last_change_at`` in milliseconds (0 without one): names a validation's claim."""
        return int((self.last_change_at or 0.0) * 1000)

    @property
    def repair_stamp(self) -> int:
        """``configured_at`` in milliseconds (0 without one): names a repair's claim."""
        return int((self.configured_at or 0.0) * 1000)

    @property
    def fresh_validation(self) -> JournaledValidation | None:
        """The newest validation if it was sent after every other change (else it checked an older state)."""
        found = self.validation
        if found is None:
            return None
        if self.last_change_at is not None and found.started_at < self.last_change_at:
            return None
        return found


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
class BackupVaultRead(Read["VaultView | None"]):
    """The backup vault (``None``: it does not exist)."""

    vault: ResourceId


@dataclass(frozen=True)
class BackupPolicyRead(Read["BackupPolicyView | None"]):
    """The backup policy (``None``: it does not exist)."""

    policy: ResourceId


@dataclass(frozen=True)
class ResourceGroupRead(Read["ResourceGroupView | None"]):
    """A resource group (``None``: it does not exist)."""

    group: ResourceId


@dataclass(frozen=True)
class LocksRead(Read["tuple[LockView, ...]"]):
    """The management locks at or above ``scope`` (read only to name them in a blocker)."""

    scope: ResourceId


@dataclass(frozen=True)
class TrustedAccessBindingsRead(Read["tuple[TrustedAccessBindingView, ...]"]):
    """Every trusted-access role binding on the cluster."""

    cluster: ResourceId


@dataclass(frozen=True)
class BackupInstancesRead(Read["tuple[BackupInstanceView, ...]"]):
    """Every backup instance protecting the cluster, in any vault (extension routing:
    ``GET {cluster}/providers/Microsoft.DataProtection/backupInstances``, as Microsoft's CLI checks)."""

    cluster: ResourceId


@dataclass(frozen=True)
class ProtectionHistoryRead(Read["ProtectionHistory"]):
    """The journal's account of the cluster's protection (budgets, the validation to follow, repairs)."""

    cluster: ResourceId


@dataclass(frozen=True)
class ValidationRead(Read["ValidationView | None"]):
    """The status of validateForBackup operation ``operation_id`` in ``vault`` (``None``: Azure no longer
    knows it)."""

    vault: ResourceId
    operation_id: str


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
