"""The words the product uses when it refuses a cluster id: one home, so HTTP and the command line agree.

``POST /api/remediate`` answers 403 for a cluster outside the configured scope; ``reconcile`` and ``explain
--cluster-id`` refuse the same cluster with an exit code. A person who meets both must read the same sentence,
so both take it from here (``service/triggers/http.py`` and ``remediator/cli``; a test keeps them equal). The
404 for a cluster that does not exist uses :func:`cluster_not_found_message`; the reconciler's own outcome
for it is :data:`CLUSTER_GONE_WHY` (done: an event for a deleted cluster needs nothing), which the HTTP
routes turn into that 404.
"""

from __future__ import annotations

import logging

from remediator.core.ids import ResourceId

logger = logging.getLogger(__name__)

OUT_OF_SCOPE_ERROR = "out-of-scope"
"""The ``error`` code of the HTTP 403 body."""

NOT_FOUND_ERROR = "not-found"
"""The ``error`` code of the HTTP 404 body."""

CLUSTER_GONE_WHY = "cluster not found (deleted); nothing to do"
"""The reconciler's ``done`` outcome when ARM has no such cluster (right for an event about a deleted
cluster; a person who named the cluster gets HTTP 404 or CLI exit 8 instead)."""


def out_of_scope_message(cluster: ResourceId) -> str:
    """Why a cluster is refused: it is outside the configured scope (HTTP 403, CLI exit 9)."""
    return (
        f"{cluster.canonical} is outside the configured scope (subscription {cluster.subscription_id}, "
        f"resource group {cluster.resource_group})"
    )


def cluster_not_found_message(cluster: ResourceId) -> str:
    """Why a cluster is refused: ARM has no managed cluster with this id (HTTP 404, CLI exit 8)."""
    return (
        f"{cluster.canonical} does not exist: ARM has no managed cluster with this id"
        " (check the subscription, resource group and cluster name)"
    )


__all__ = [
    "CLUSTER_GONE_WHY",
    "NOT_FOUND_ERROR",
    "OUT_OF_SCOPE_ERROR",
    "cluster_not_found_message",
    "out_of_scope_message",
]
