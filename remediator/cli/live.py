"""The commands that talk to Azure build the product's runtime here and check a cluster id before using it.

``reconcile`` and ``explain --cluster-id`` name one cluster. Before either reconciles, the id is checked the
way the HTTP API checks it: outside the configured scope is refused with the HTTP 403's sentence (exit 9) and
nothing is read from the cluster; an id ARM does not know is refused with the HTTP 404's sentence (exit 8),
instead of the reconciler's quiet "cluster not found (deleted); nothing to do", which is right for an event
about a deleted cluster but wrong for a person who mistyped a name. Failures of the calls themselves
(authentication, an unreachable endpoint, throttling) propagate to ``main``'s error policy.
"""

from __future__ import annotations

import argparse
import logging
import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import TYPE_CHECKING

from remediator.cli.errors import CliFailure, ExitCode
from remediator.core.ids import ResourceId
from remediator.core.refusals import cluster_not_found_message, out_of_scope_message

if TYPE_CHECKING:
    from remediator.service.runtime import Runtime

logger = logging.getLogger(__name__)


@contextmanager
def open_runtime(args: argparse.Namespace, environ: Mapping[str, str] | None = None) -> Iterator[Runtime]:
    """The product's runtime from the environment (``--config`` replaces the configured config), with the
    config loaded and validated before any call to Azure; closed on exit."""
    from remediator.service.runtime import Runtime  # SDK imports only when a command talks to Azure

    runtime = Runtime.from_env(dict(os.environ if environ is None else environ), config_path=args.config)
    try:
        runtime.config  # noqa: B018 - load and validate the config before any ARM call
        yield runtime
    finally:
        runtime.close()


def require_cluster(runtime: Runtime, cluster: ResourceId) -> None:
    """Refuse a cluster outside the scope (exit 9) or unknown to ARM (exit 8), as HTTP answers 403/404.

    The scope is checked first and needs no call for subscriptions and resource groups (management groups are
    resolved through Resource Graph, as the service does). Then one GET of the cluster.
    """
    scope = runtime.config.scope
    if not scope.contains(cluster, management_groups_of=runtime.management_groups_of):
        raise CliFailure(ExitCode.OUT_OF_SCOPE, out_of_scope_message(cluster))
    if runtime.gateway.get_cluster(cluster) is None:
        raise CliFailure(ExitCode.NOT_FOUND, cluster_not_found_message(cluster))


__all__ = ["open_runtime", "require_cluster"]
