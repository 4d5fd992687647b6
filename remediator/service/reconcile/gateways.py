"""The I/O a reconcile's readers and write specs use, bundled (adapters, no wiring).

Readers (``observe.py``) and write specs (``writes.py``) take one :class:`ReconcileIO` instead of reaching for
the reconciler's attributes, so a new read or write kind needs nothing but its own function.
"""

from __future__ import annotations

from dataclasses import dataclass

from remediator.adapters.arm import ArmGateway
from remediator.adapters.journal import Journal
from remediator.adapters.policy import PolicyGateway
from remediator.adapters.preflight_source import PreflightSource


@dataclass(frozen=True)
class ReconcileIO:
    """ARM (``arm``), remediation tasks (``policy``, policy-task mode), the journal (re-install counts;
    ``None`` for journal-less CLI use) and what preflight reads (``preflight``: policy assignments,
    Safeguards, providers, cached per process)."""

    arm: ArmGateway
    policy: PolicyGateway | None = None
    journal: Journal | None = None
    preflight: PreflightSource | None = None
