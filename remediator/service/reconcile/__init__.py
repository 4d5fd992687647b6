"""Reconcile one cluster: read -> decide -> observe -> plan -> execute -> record.

``reconciler`` (the use case), ``observe`` (reads by dependency), ``writes`` (one spec per write kind and
the registry), ``execute`` (claim -> re-check -> pace -> apply), ``errors`` (ARM error -> outcome, once),
``gateways`` (the adapters the readers and specs use).
"""

from __future__ import annotations

from remediator.service.reconcile.errors import outcome_for_error
from remediator.service.reconcile.reconciler import CLAIM_TTL_S, JournalWriteError, Reconciler

__all__ = ["CLAIM_TTL_S", "JournalWriteError", "Reconciler", "outcome_for_error"]
