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
from remediator.core.outcomes import ActionStatus, WriteKind
from remediator.core.plan.observed import ExtensionRead, RoleAssignmentsRead
from remediator.core.plan.roles import covers
from remediator.core.plan.writes import (
    WRITE_TYPES,
    AssignRole,
    CreateContainer,
    CreateRemediationTask,
    InstallExtension,
    ReinstallExtension,
    Write,
)
from remediator.service.reconcile.gateways import ReconcileIO
from remediator.service.reconcile.observe import read_extension, read_role_assignments

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
)

REINSTALL = WriteSpec(
    ReinstallExtension, "PUT extension (re-install)", Recheck(_reinstall_moved), _apply_extension
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

# --------------------------------------------------------------------------------------------- registry

REGISTRY: Mapping[WriteKind, WriteSpec[Any]] = {
    spec.kind: spec for spec in (CONTAINER, INSTALL, REINSTALL, ROLE, TASK)
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
