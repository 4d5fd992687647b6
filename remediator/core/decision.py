"""For one cluster: must it carry the backup extension, why, and what would stop an install.

Pure and deterministic: the same snapshot and config always give the same :class:`Decision` (no clock, no
I/O). The checks run in a fixed order and the first that fails names the reason:

1. ``out-of-scope``: the cluster id is outside ``scope`` (subscriptions, resource groups, management groups,
   minus ``excludeSubscriptions``);
2. ``region-not-allowed``: ``scope.regions`` is set and does not list the cluster's region;
3. ``excluded-by-tag``: an exclude entry matches (exclude wins over include);
4. ``not-included``: there is an include list and no entry matches;
5. ``no-storage-for-region``: the cluster would be selected, but ``storage`` has no account for its region;
6. ``selected``.

Tag rules run before the storage lookup so that a cluster nobody asked to protect is reported as
``not-included``, not as a storage gap. Readiness blockers are reported for every cluster, selected or not;
they never change ``selected``; what each one means for a reconcile is the blocker's own policy
(:mod:`remediator.core.blockers`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from remediator.core.blockers import Blocker
from remediator.core.config import RemediatorConfig
from remediator.core.ids import ResourceId
from remediator.core.rules import TagHit, match_selection
from remediator.core.snapshot import ClusterSnapshot

logger = logging.getLogger(__name__)


class Reason(StrEnum):
    """Why a cluster is or is not selected."""

    OUT_OF_SCOPE = "out-of-scope"
    REGION_NOT_ALLOWED = "region-not-allowed"
    NO_STORAGE_FOR_REGION = "no-storage-for-region"
    NOT_INCLUDED = "not-included"
    EXCLUDED_BY_TAG = "excluded-by-tag"
    SELECTED = "selected"


def blockers_of(snapshot: ClusterSnapshot) -> tuple[Blocker, ...]:
    """Readiness blockers seen in the snapshot, in :class:`Blocker` declaration order."""
    found: list[Blocker] = []
    if (snapshot.provisioning_state or "").lower() != "succeeded":
        found.append(Blocker.CLUSTER_NOT_SUCCEEDED)
    if (snapshot.power_state or "").lower() == "stopped":
        found.append(Blocker.CLUSTER_STOPPED)
    if not snapshot.has_managed_identity:
        found.append(Blocker.NO_MANAGED_IDENTITY)
    if not snapshot.disk_csi_enabled:
        found.append(Blocker.DISK_CSI_DRIVER_DISABLED)
    if not snapshot.snapshot_controller_enabled:
        found.append(Blocker.SNAPSHOT_CONTROLLER_DISABLED)
    if not any(pool.is_linux_amd64 for pool in snapshot.node_pools):
        found.append(Blocker.NO_LINUX_AMD64_POOL)
    return tuple(found)


@dataclass(frozen=True)
class Decision:
    """The answer for one cluster."""

    cluster_id: ResourceId
    selected: bool
    """Must the cluster carry the backup extension?"""
    reason: Reason
    rule: str | None
    """The tag rule that decided (``include[0]``, ``exclude[1]``), or ``None``. See ``matched`` for the tag
    and value."""
    storage_account_id: ResourceId | None
    """The backup storage account for the cluster's region; ``None`` when out of scope, region not allowed, or
    no account is configured for the region."""
    blockers: tuple[Blocker, ...]
    matched: TagHit | None = None
    """The tag and value behind ``rule`` (``include Backup=yes``), as a person reads it; ``None`` exactly when
    ``rule`` is."""

    def to_json(self) -> dict[str, Any]:
        """The decision as one JSON object with exactly the keys ``clusterId, selected, reason, rule,
        storageAccountId, blockers, matchedRule`` (``matchedRule``: ``{kind, tag, value, pattern}`` or
        null)."""
        return {
            "clusterId": str(self.cluster_id),
            "selected": self.selected,
            "reason": self.reason.value,
            "rule": self.rule,
            "storageAccountId": None if self.storage_account_id is None else str(self.storage_account_id),
            "blockers": [blocker.value for blocker in self.blockers],
            "matchedRule": None if self.matched is None else self.matched.to_json(),
        }


def decide(
    snapshot: ClusterSnapshot,
    config: RemediatorConfig,
    *,
    management_groups_of: Callable[[str], Iterable[str]] | None = None,
) -> Decision:
    """Decide whether the cluster must carry the backup extension.

    :param snapshot: the cluster.
    :param config: the remediator config.
    :keyword management_groups_of: subscription GUID -> management groups above it; needed only when
        ``scope.managementGroups`` is configured (see :meth:`Scope.contains`).
    """
    blockers = blockers_of(snapshot)

    def result(
        reason: Reason,
        *,
        rule: str | None = None,
        storage: ResourceId | None = None,
        matched: TagHit | None = None,
    ) -> Decision:
        decision = Decision(
            cluster_id=snapshot.id,
            selected=reason is Reason.SELECTED,
            reason=reason,
            rule=rule,
            storage_account_id=storage,
            blockers=blockers,
            matched=matched,
        )
        logger.debug("decision %s: %s (%s)", snapshot.id.key, reason.value, rule)
        return decision

    if not config.scope.contains(snapshot.id, management_groups_of=management_groups_of):
        return result(Reason.OUT_OF_SCOPE)
    if config.scope.regions is not None and snapshot.location not in config.scope.regions:
        return result(Reason.REGION_NOT_ALLOWED)
    storage = config.storage_for(snapshot.location)
    match = match_selection(snapshot.tags, config.selection)
    if match.excluded:
        return result(Reason.EXCLUDED_BY_TAG, rule=match.rule, storage=storage, matched=match.hit)
    if not match.included:
        return result(Reason.NOT_INCLUDED, storage=storage)
    if storage is None:
        return result(Reason.NO_STORAGE_FOR_REGION, rule=match.rule, matched=match.hit)
    return result(Reason.SELECTED, rule=match.rule, storage=storage, matched=match.hit)
