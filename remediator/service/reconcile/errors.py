"""ARM error -> reconcile outcome, once, for every read and write of a reconcile.

429 -> wait for Retry-After; 409 Conflict / OperationNotAllowed -> wait with backoff; 5xx, timeouts, dropped
connections, 404 -> wait with backoff; 403 -> gave_up naming the missing permission; 409
MissingSubscriptionRegistration -> gave_up naming the provider namespace; 400 RoleAssignmentLimitExceeded ->
gave_up naming the limit and the way out; anything else -> gave_up.
"""

from __future__ import annotations

from remediator.adapters.arm import (
    ArmError,
    Conflict,
    Forbidden,
    NotFound,
    ProviderNotRegistered,
    Throttled,
    Transient,
)
from remediator.core.outcomes import Outcome

ROLE_ASSIGNMENT_LIMIT_CODE = "RoleAssignmentLimitExceeded"
"""ARM's code when a subscription already holds the maximum number of role assignments."""

CONFLICT_WAIT_S = 15.0
"""Base wait after a 409 conflict (another operation on the cluster is in progress)."""

TRANSIENT_MAX_DOUBLINGS = 3
"""Transient errors back off 5, 10, 20, 40 s, then stay at 40 s. ``attempt`` counts every hop of the cluster's
chain, polls included, so an uncapped exponent made the third error of a healthy install wait minutes (the
issue 17 chaos run); a dependency that keeps failing is bounded by ``REMEDIATOR_MAX_ATTEMPTS`` instead."""

CONFLICT_MAX_DOUBLINGS = 2
"""Conflicts back off 15, 30, 60 s, then stay at 60 s (same reason)."""


def backoff_seconds(attempt: int, *, base: float = 5.0, cap: float = 600.0) -> float:
    """Exponential backoff for transient errors: ``base * 2**attempt`` seconds, capped."""
    return float(min(cap, base * (2 ** max(0, min(attempt, 30)))))


def outcome_for_error(error: ArmError, *, attempt: int, max_wait_s: float = 600.0) -> Outcome:
    """The outcome an ARM error warrants (see the module docstring)."""
    if isinstance(error, Throttled):
        return Outcome.wait(min(max(error.retry_after_s, 1.0), max_wait_s), f"throttled by ARM: {error}")
    if isinstance(error, ProviderNotRegistered):
        return Outcome.gave_up(
            f"ProviderNotRegistered: the subscription has not registered {error.namespace}"
            f" (az provider register --namespace {error.namespace}): {error.message}"
        )
    if error.code == ROLE_ASSIGNMENT_LIMIT_CODE:
        return Outcome.gave_up(
            f"role-assignment-limit: {error.operation or 'a role assignment'} was refused because the"
            " subscription has Azure's maximum of role assignments (4000 per subscription, management-group"
            " assignments not counted; MicrosoftDocs/azure-docs@articles/role-based-access-control/"
            "troubleshoot-limits.md); remove unused assignments or set remediation.roleAssignmentScope to"
            f" resourceGroup or subscription (docs/rules.md): {error.message}"
        )
    if isinstance(error, Forbidden):
        permission = error.action or "unknown action (ARM did not name it)"
        return Outcome.gave_up(f"missing permission {permission}: {error}")
    if isinstance(error, Conflict):
        wait = backoff_seconds(min(attempt, CONFLICT_MAX_DOUBLINGS), base=CONFLICT_WAIT_S, cap=max_wait_s)
        return Outcome.wait(wait, f"conflict ({error.code or 'Conflict'}), will retry: {error}")
    if isinstance(error, Transient | NotFound):
        return Outcome.wait(
            backoff_seconds(min(attempt, TRANSIENT_MAX_DOUBLINGS), cap=max_wait_s),
            f"transient ARM error, will retry: {error}",
        )
    return Outcome.gave_up(f"ARM refused the request: {error}")
