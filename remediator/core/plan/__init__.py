"""The plan, pure: the chain of requirements a selected cluster must satisfy, and the next step.

``requirement`` (the abstraction, verdicts, context), ``observed`` (typed views and reads), ``writes`` (the
write values), one module per mode's chain (``install``, ``policy_task``; audit plans install), ``roles`` (the
generic role-assignment link), ``preflight_check`` (the link at the head of every chain) and ``planner``
(gate -> verdicts -> writes -> outcome). No I/O: the service layer reads (``service/reconcile/observe.py``)
and writes (``service/reconcile/execute.py``).
"""

from __future__ import annotations

from remediator.core.plan.install import INSTALL
from remediator.core.plan.policy_task import POLICY_TASK
from remediator.core.plan.preflight_check import PREFLIGHT_LINK
from remediator.core.plan.requirement import Chain, Mode


def with_preflight(chain: Chain) -> Chain:
    """``chain`` headed by the preflight link, which gates every other link (nothing is written while
    something known blocks the backup extension)."""
    return Chain(chain.name, (PREFLIGHT_LINK, *chain.requirements))


def chain_for(mode: Mode) -> Chain:
    """The chain a mode selects, headed by preflight (audit plans the install chain and writes nothing)."""
    return with_preflight(POLICY_TASK if mode is Mode.POLICY_TASK else INSTALL)
