"""The plan, pure: the chain of requirements a selected cluster must satisfy, and the next step.

``requirement`` (the abstraction, verdicts, context), ``observed`` (typed views and reads), ``writes`` (the
write values), one module per mode's chain (``install``, ``policy_task``, ``protect``; audit plans install or
protect), ``roles`` (the
generic role-assignment link) and ``planner`` (gate -> verdicts -> writes -> outcome). No I/O: the service
layer reads (``service/reconcile/observe.py``) and writes (``service/reconcile/execute.py``).
"""

from __future__ import annotations

from remediator.core.plan.install import INSTALL
from remediator.core.plan.policy_task import POLICY_TASK
from remediator.core.plan.protect import PROTECT
from remediator.core.plan.requirement import Chain, Mode


def chain_for(mode: Mode) -> Chain:
    """The chain a mode selects (audit plans the chain ``remediation.auditPlans`` names, via
    ``PlanningOptions.chain_mode``, and writes nothing)."""
    if mode is Mode.POLICY_TASK:
        return POLICY_TASK
    if mode is Mode.PROTECT:
        return PROTECT
    return INSTALL
