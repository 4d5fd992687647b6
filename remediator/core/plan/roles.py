"""One generic requirement for a role assignment: (principal, role, scope).

Install mode uses it once (the extension identity's Storage Blob Data Contributor on the storage account);
protect mode instantiates it for each role the vault and cluster identities need. It is satisfied by what
Azure has, not by our name for it (issue 17 F2): any assignment of that role to that principal at the scope
or at a scope above it (a resource group, the subscription) counts, whoever made it (the built-in DINE, a
person). The assignment list is read once per (scope, principal), filtered by principal; a 409
``RoleAssignmentExists`` on the PUT also counts as present (``service/reconcile/writes.py``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from remediator.core.catalog import ROLE_NAMES
from remediator.core.ids import ResourceId
from remediator.core.plan.observed import Observed, Read, RoleAssignmentsRead, RoleAssignmentView
from remediator.core.plan.requirement import (
    Missing,
    NotNeeded,
    PlanContext,
    Requirement,
    Satisfied,
    Verdict,
    Waiting,
)
from remediator.core.plan.writes import AssignRole
from remediator.core.text import equal_ignoring_case, ignore_case_key


def is_within(resource: ResourceId, scope: ResourceId) -> bool:
    """Whether ``resource`` is ``scope`` or below it (an assignment at ``scope`` applies to it)."""
    return resource.key == scope.key or resource.key.startswith(scope.key + "/")


def covers(assignment: RoleAssignmentView, *, scope: ResourceId, principal_id: str, role_guid: str) -> bool:
    """Whether an existing assignment grants ``role_guid`` to ``principal_id`` at ``scope``."""
    return (
        equal_ignoring_case(assignment.principal_id, principal_id)
        and assignment.role_guid == ignore_case_key(role_guid)
        and is_within(scope, assignment.scope)
    )


class RoleAssigned(Requirement):
    """``principal`` has ``role`` at ``scope`` (or above).

    :param key: the link name.
    :param title: one line for humans.
    :param role_guid: the role definition GUID (``core.catalog``).
    :param scope: resolves the scope from the context and what was read (``None``: not known yet).
    :param principal: resolves the principal id (``None``: not known yet -> waiting).
    :param depends_on: links whose satisfaction the resolvers rely on.
    :param enabled: ``False`` makes the link not needed (a config switch), with ``disabled_why``.
    :param waiting_why: the wording while the principal is unknown.
    """

    def __init__(
        self,
        *,
        key: str,
        title: str,
        role_guid: str,
        scope: Callable[[PlanContext, Observed], ResourceId | None],
        principal: Callable[[PlanContext, Observed], str | None],
        depends_on: tuple[str, ...] = (),
        enabled: Callable[[PlanContext], bool] = lambda _ctx: True,
        disabled_why: str = "disabled by config",
        waiting_why: str = "the principal is not known yet",
        satisfied_why: str = "",
        retry_after_s: float = 30.0,
    ) -> None:
        self.key = key
        self.title = title
        self.role_guid = ignore_case_key(role_guid)
        self.depends_on = depends_on
        self._scope = scope
        self._principal = principal
        self._enabled = enabled
        self._disabled_why = disabled_why
        self._waiting_why = waiting_why
        self._satisfied_why = satisfied_why
        self._retry_after_s = retry_after_s

    @property
    def role_name(self) -> str:
        return ROLE_NAMES.get(self.role_guid, self.role_guid)

    def _target(self, ctx: PlanContext, observed: Observed) -> tuple[ResourceId, str] | None:
        scope = self._scope(ctx, observed)
        principal = self._principal(ctx, observed)
        return None if scope is None or not principal else (scope, principal)

    def reads(self, ctx: PlanContext, observed: Observed) -> Iterable[Read[Any]]:
        if not self._enabled(ctx):
            return ()
        target = self._target(ctx, observed)
        return () if target is None else (RoleAssignmentsRead(target[0], target[1]),)

    def evaluate(self, ctx: PlanContext, observed: Observed) -> Verdict:
        if not self._enabled(ctx):
            return NotNeeded(self._disabled_why)
        target = self._target(ctx, observed)
        if target is None:
            return Waiting(self._retry_after_s, self._waiting_why)
        scope, principal = target
        existing = observed.get(RoleAssignmentsRead(scope, principal))
        if any(covers(a, scope=scope, principal_id=principal, role_guid=self.role_guid) for a in existing):
            return Satisfied(self._satisfied_why or f"{principal} has {self.role_name} on {scope.name}")
        write = AssignRole(link=self.key, scope=scope, principal_id=principal, role_guid=self.role_guid)
        return Missing(write, f"{self.role_name} granted to {principal} on {scope.name}")
