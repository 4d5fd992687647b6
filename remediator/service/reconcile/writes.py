"""How each kind of write is done: one :class:`WriteSpec` per :class:`~remediator.core.outcomes.WriteKind`.

The pure half of a write kind (typed target, claim name, the subscription whose write bucket it draws from,
body inputs) is its write type in :mod:`remediator.core.plan.writes`; this is the half that needs I/O:

- ``recheck``: re-read, after the claim is held, whether the write is still needed (a :class:`Recheck`), or
  why it need not be (:class:`NoRecheck` with the reason; an explicit choice, never a default);
- ``apply``: send the write and say what happened (:class:`Applied`: done, or exists already).

:data:`REGISTRY` maps every kind to its spec. :func:`registry_problems` lists what is missing (a kind
without a spec, a spec without a part, a write type that leaves a pure fact abstract); a unit test keeps it
empty, so adding a kind without a complete spec fails ``make test``.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from remediator.adapters.arm import ArmError
from remediator.core.catalog import TRUSTED_ACCESS_BACKUP_ROLE
from remediator.core.outcomes import ActionStatus, WriteKind
from remediator.core.plan.observed import (
    VALIDATED_INLINE,
    BackupInstancesRead,
    ExtensionRead,
    RoleAssignmentsRead,
    TrustedAccessBindingsRead,
)
from remediator.core.plan.roles import covers
from remediator.core.plan.writes import (
    WRITE_TYPES,
    AssignRole,
    BindTrustedAccess,
    CreateBackupInstance,
    CreateBackupPolicy,
    CreateBackupVault,
    CreateContainer,
    CreateRemediationTask,
    CreateResourceGroup,
    InstallExtension,
    ReinstallExtension,
    SyncBackupInstance,
    ValidateForBackup,
    Write,
)
from remediator.core.protection import REDUNDANCY_REFUSED_CODE
from remediator.service.reconcile.gateways import ReconcileIO
from remediator.service.reconcile.observe import (
    read_backup_instances,
    read_bindings,
    read_extension,
    read_role_assignments,
)

W = TypeVar("W", bound=Write)


@dataclass(frozen=True)
class Applied:
    """What one write did: ``DONE`` (sent and accepted) or ``EXISTS`` (already there); ``detail`` for the
    report."""

    status: ActionStatus
    detail: str


@dataclass(frozen=True)
class Recheck(Generic[W]):
    """Re-read after claiming. ``moved(io, write)`` returns why the write is no longer needed, or ``None``."""

    moved: Callable[[ReconcileIO, W], str | None]


@dataclass(frozen=True)
class NoRecheck:
    """No re-read after claiming, and why that is safe (required: the choice is explicit)."""

    reason: str


@dataclass(frozen=True)
class WriteSpec(Generic[W]):
    """How one kind of write is done. See the module docstring."""

    write_type: type[W]
    operation: str
    """For logs and errors: ``PUT extension``."""
    recheck: Recheck[W] | NoRecheck
    apply: Callable[[ReconcileIO, W], Applied]
    long_running: bool = False
    """ARM answers with a long-running operation (``begin_``): the write that takes longest to complete, so
    the executor sends it first, on the reconcile's own thread, when writes go out together."""

    @property
    def kind(self) -> WriteKind:
        return self.write_type.kind


# --------------------------------------------------------------------------------------------- container


def _apply_container(io: ReconcileIO, write: CreateContainer) -> Applied:
    created = io.arm.ensure_container(write.account, write.name)
    return Applied(ActionStatus.DONE if created else ActionStatus.EXISTS, write.name)


CONTAINER = WriteSpec(
    CreateContainer,
    "PUT container",
    NoRecheck("a container PUT is idempotent (a deterministic name; an existing one answers 200 or 409)"),
    _apply_container,
)

# --------------------------------------------------------------------------------------------- extension


def _apply_extension(io: ReconcileIO, write: InstallExtension) -> Applied:
    status = io.arm.begin_create_extension(write.cluster, write.name, write.body())
    return Applied(ActionStatus.DONE, f"{write.name}: HTTP {status}")


def _reinstall_moved(io: ReconcileIO, write: ReinstallExtension) -> str | None:
    """The claim is named after the journaled re-install count, which is read after the extension list, so a
    reconcile can hold a stale "Failed" next to a count that already includes another reconcile's
    re-install: re-read the extension before re-installing."""
    found = read_extension(io, ExtensionRead(write.cluster))
    if found is None:
        return f"extension {write.name} is gone"
    if not found.failed:
        return f"extension {found.name} is no longer Failed ({found.provisioning_state})"
    return None


INSTALL = WriteSpec(
    InstallExtension,
    "PUT extension",
    NoRecheck(
        "the install claim is an atomic insert, settled (kept) after a successful PUT for longer than any"
        " read a reconcile may write on, so a reconcile whose read predates another's PUT cannot take it; it"
        " is free again only after the holder's write failed (then repeating the identical PUT is right), or"
        " after a holder died mid-write, and then the executor makes the taker read again before writing"
    ),
    _apply_extension,
    long_running=True,
)

REINSTALL = WriteSpec(
    ReinstallExtension,
    "PUT extension (re-install)",
    Recheck(_reinstall_moved),
    _apply_extension,
    long_running=True,
)

# --------------------------------------------------------------------------------------------- role
# assignment


def _apply_role(io: ReconcileIO, write: AssignRole) -> Applied:
    created = io.arm.ensure_role_assignment(
        scope=write.scope,
        name=write.name,
        role_definition_id=write.role_definition_id,
        principal_id=write.principal_id,
    )
    return Applied(ActionStatus.DONE if created else ActionStatus.EXISTS, write.detail)


def _role_moved(io: ReconcileIO, write: AssignRole) -> str | None:
    existing = read_role_assignments(io, RoleAssignmentsRead(write.scope, write.principal_id))
    principal, role = write.principal_id, write.role_guid
    if any(covers(a, scope=write.scope, principal_id=principal, role_guid=role) for a in existing):
        return "the role assignment exists"
    return None


ROLE = WriteSpec(AssignRole, "PUT role assignment", Recheck(_role_moved), _apply_role)

# --------------------------------------------------------------------------------------------- remediation
# task


def _task_moved(io: ReconcileIO, write: CreateRemediationTask) -> str | None:
    if io.policy is None:
        raise ArmError("no policy gateway configured", operation="GET remediation")
    found = io.policy.get_remediation_at_resource(resource_id=write.cluster, name=write.name)
    return None if found is None else "the remediation task exists"


def _apply_task(io: ReconcileIO, write: CreateRemediationTask) -> Applied:
    if io.policy is None:
        raise ArmError("no policy gateway configured", operation="PUT remediation")
    info = io.policy.create_remediation_at_resource(
        resource_id=write.cluster, name=write.name, policy_assignment_id=write.assignment.canonical
    )
    return Applied(ActionStatus.DONE, f"{info.name}: {info.provisioning_state or 'created'}")


TASK = WriteSpec(CreateRemediationTask, "PUT remediation", Recheck(_task_moved), _apply_task)

# --------------------------------------------------------------------------------------------- protect mode


def _vault_moved(io: ReconcileIO, write: CreateBackupVault) -> str | None:
    found = io.require_protection("GET backup vault").get_vault(write.vault)
    return None if found is None else f"backup vault {write.vault.name} exists ({found.provisioning_state})"


def _apply_vault(io: ReconcileIO, write: CreateBackupVault) -> Applied:
    """PUT the vault with each redundancy in turn until the region accepts one (the CLI's GRS -> ZRS -> LRS):
    a refused redundancy answers 400 ``RedundancyConfigurationNotAvailableInRegion``."""
    gateway = io.require_protection("PUT backup vault")
    refused: list[str] = []
    for redundancy in write.preset.redundancy:
        try:
            sent = gateway.begin_create_vault(write.vault, write.body(redundancy))
        except ArmError as error:
            if error.code == REDUNDANCY_REFUSED_CODE:
                refused.append(redundancy)
                continue
            raise
        tried = f" ({', '.join(refused)} refused by the region)" if refused else ""
        return Applied(ActionStatus.DONE, f"{write.vault.name}: {redundancy}{tried}, HTTP {sent.status}")
    raise ArmError(
        f"the region refused every storage redundancy tried ({', '.join(refused)})",
        status=400,
        code=REDUNDANCY_REFUSED_CODE,
        operation="PUT backup vault",
    )


VAULT = WriteSpec(
    CreateBackupVault, "PUT backup vault", Recheck(_vault_moved), _apply_vault, long_running=True
)


def _policy_moved(io: ReconcileIO, write: CreateBackupPolicy) -> str | None:
    found = io.require_protection("GET backup policy").get_policy(write.policy)
    return None if found is None else f"backup policy {write.policy.name} exists"


def _apply_policy(io: ReconcileIO, write: CreateBackupPolicy) -> Applied:
    io.require_protection("PUT backup policy").create_policy(write.policy, write.body())
    return Applied(ActionStatus.DONE, write.detail)


POLICY = WriteSpec(CreateBackupPolicy, "PUT backup policy", Recheck(_policy_moved), _apply_policy)


def _group_moved(io: ReconcileIO, write: CreateResourceGroup) -> str | None:
    found = io.require_protection("GET resource group").get_resource_group(write.group)
    return None if found is None else f"resource group {write.group.resource_group} exists"


def _apply_group(io: ReconcileIO, write: CreateResourceGroup) -> Applied:
    created = io.require_protection("PUT resource group").create_resource_group(write.group, write.body())
    return Applied(ActionStatus.DONE if created else ActionStatus.EXISTS, write.detail)


RESOURCE_GROUP = WriteSpec(CreateResourceGroup, "PUT resource group", Recheck(_group_moved), _apply_group)


def _binding_moved(io: ReconcileIO, write: BindTrustedAccess) -> str | None:
    role = TRUSTED_ACCESS_BACKUP_ROLE.lower()
    for binding in read_bindings(io, TrustedAccessBindingsRead(write.cluster)):
        if binding.name.lower() != write.name.lower():
            continue
        if role in {r.lower() for r in binding.roles} and binding.state not in ("failed", "canceled"):
            return f"trusted-access binding {binding.name} exists ({binding.provisioning_state})"
    return None


def _apply_binding(io: ReconcileIO, write: BindTrustedAccess) -> Applied:
    sent = io.require_protection("PUT trusted access role binding").begin_bind_trusted_access(
        write.cluster, write.name, write.body()
    )
    return Applied(ActionStatus.DONE, f"{write.detail}: HTTP {sent.status}")


BINDING = WriteSpec(
    BindTrustedAccess,
    "PUT trusted access role binding",
    Recheck(_binding_moved),
    _apply_binding,
    long_running=True,
)


def _apply_validation(io: ReconcileIO, write: ValidateForBackup) -> Applied:
    """POST validateForBackup; the detail carries the operation id (``operation <id>``) the next reconcile
    reads (``core/plan/protect.py``: ``protection_history``). A 200 without an operation answered at once."""
    sent = io.require_protection("POST validateForBackup").begin_validate_for_backup(
        write.vault, write.body()
    )
    operation = sent.operation_id or (VALIDATED_INLINE if sent.status == 200 else "")
    if not operation:
        raise ArmError(
            f"validateForBackup answered HTTP {sent.status} without an Azure-AsyncOperation header",
            status=sent.status,
            operation="POST validateForBackup",
        )
    return Applied(ActionStatus.DONE, f"operation {operation}")


VALIDATE = WriteSpec(
    ValidateForBackup,
    "POST validateForBackup",
    NoRecheck(
        "the claim validate-<n> is numbered from the journal's validations since the last change and kept"
        " after the POST, so two reconciles cannot send the same validation; a validation writes nothing"
    ),
    _apply_validation,
    long_running=True,
)


def _instance_moved(io: ReconcileIO, write: CreateBackupInstance) -> str | None:
    if write.repair:  # a repair re-PUTs the existing instance on purpose
        return None
    for instance in read_backup_instances(io, BackupInstancesRead(write.cluster)):
        if instance.vault is not None and instance.vault == write.vault:
            return f"backup instance {instance.name} exists ({instance.protection_state})"
    return None


def _apply_instance(io: ReconcileIO, write: CreateBackupInstance) -> Applied:
    sent = io.require_protection("PUT backup instance").begin_create_backup_instance(
        write.vault, write.name, write.body()
    )
    return Applied(ActionStatus.DONE, f"{write.detail}: HTTP {sent.status}")


INSTANCE = WriteSpec(
    CreateBackupInstance,
    "PUT backup instance",
    Recheck(_instance_moved),
    _apply_instance,
    long_running=True,
)


def _sync_moved(io: ReconcileIO, write: SyncBackupInstance) -> str | None:
    for instance in read_backup_instances(io, BackupInstancesRead(write.cluster)):
        if instance.name.lower() == write.name.lower() and not instance.failed:
            return f"backup instance {instance.name} is {instance.protection_state}"
    return None


def _apply_sync(io: ReconcileIO, write: SyncBackupInstance) -> Applied:
    sent = io.require_protection("POST backup instance sync").begin_sync_backup_instance(
        write.vault, write.name
    )
    return Applied(ActionStatus.DONE, f"{write.detail}: HTTP {sent.status}")


SYNC = WriteSpec(
    SyncBackupInstance, "POST backup instance sync", Recheck(_sync_moved), _apply_sync, long_running=True
)

# --------------------------------------------------------------------------------------------- registry

REGISTRY: Mapping[WriteKind, WriteSpec[Any]] = {
    spec.kind: spec
    for spec in (
        CONTAINER,
        INSTALL,
        REINSTALL,
        ROLE,
        TASK,
        VAULT,
        POLICY,
        RESOURCE_GROUP,
        BINDING,
        VALIDATE,
        INSTANCE,
        SYNC,
    )
}
"""Every write kind's spec."""

_PURE_FACTS = ("target", "claim", "bucket_subscription", "detail")


def registry_problems(
    registry: Mapping[WriteKind, WriteSpec[Any]] = REGISTRY,
    write_types: Mapping[WriteKind, type[Write]] = WRITE_TYPES,
    kinds: tuple[WriteKind, ...] = tuple(WriteKind),
) -> list[str]:
    """What keeps the registry from being complete; ``[]`` when every kind has every part."""
    problems: list[str] = []
    for kind in kinds:
        write_type = write_types.get(kind)
        if write_type is None:
            problems.append(f"{kind}: no write type in core.plan.writes.WRITE_TYPES")
        elif write_type.kind is not kind:
            problems.append(
                f"{kind}: WRITE_TYPES maps it to {write_type.__name__}, whose kind is {write_type.kind}"
            )
        elif inspect.isabstract(write_type):
            missing = sorted(getattr(write_type, "__abstractmethods__", ()))
            problems.append(f"{kind}: {write_type.__name__} leaves {', '.join(missing)} undefined")
        else:
            for fact in _PURE_FACTS:
                if not isinstance(inspect.getattr_static(write_type, fact, None), property):
                    problems.append(f"{kind}: {write_type.__name__}.{fact} is not a property")
        spec = registry.get(kind)
        if spec is None:
            problems.append(f"{kind}: no WriteSpec in REGISTRY")
            continue
        if write_type is not None and spec.write_type is not write_type:
            problems.append(f"{kind}: the spec is for {spec.write_type.__name__}, not {write_type.__name__}")
        if not spec.operation:
            problems.append(f"{kind}: the spec names no operation")
        if not callable(spec.apply):
            problems.append(f"{kind}: the spec has no apply")
        recheck = spec.recheck
        if isinstance(recheck, NoRecheck):
            if not recheck.reason.strip():
                problems.append(f"{kind}: NoRecheck without a reason")
        elif not (isinstance(recheck, Recheck) and callable(recheck.moved)):
            problems.append(f"{kind}: the spec neither re-checks nor says why it need not (NoRecheck)")
    return problems
