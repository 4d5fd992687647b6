"""What Resource Graph shows of each cluster's protection chain, what the sweep does about it, and the state a
person reads in the report.

The sweep and the report see every cluster through one inventory row: the cluster (decided by
:func:`remediator.core.decision.decide`), its backup extension, the role assignments of the chain's roles
(one :class:`GrantIndex` shared by every row), the backup vaults of the region targets and the backup
instances that name it (joined from side queries, see :mod:`remediator.core.inventory_query`).
This module, pure, turns those facts into:

- :func:`visible_links`: each link of the mode's chain that Resource Graph can see, satisfied or not, under
  the chain's own link names (``core/plan/links.py``). A cluster needs work when any is not (issue 17 F3: the
  extension alone is not enough);
- :func:`sweep_verdict`: what the sweep does with the cluster (enqueue, re-verify, leave blocked, deferred or
  protected elsewhere, nothing);
- :func:`assess`: the one state of the report (protected, installing, waiting, blocked, gave up, not started,
  not selected), with the next action in one line and, for a give-up, its journaled cause;
- :func:`decision_key`: what must change for the sweep to journal a cluster's decision again;
- :func:`reverification_due`: when a cluster whose visible links are all satisfied gets a reconcile anyway,
  because some links are invisible to Resource Graph (the backup container, the storage account's region;
  in protect mode the trusted-access binding, the backup policy, validation);
- :func:`matched_rule`: the tag rule that decided, as the tag and value a person wrote, not an index.

Protect mode's visible chain (issue 12 item 6, issue 17 F3), in the chain's order::

    protection-not-elsewhere          an instance in another vault: superseded (left alone, never enqueued)
    extension-installed, storage-access-granted                     (install mode's visible links)
    backup-vault-ready                the region's vault row (``resources``): Succeeded, with an identity
    vault-reader-on-cluster, vault-reader-on-snapshot-rg, vault-disk-snapshot-contributor,
    vault-disk-data-operator (vault tier: ``always``, or ``auto`` with the DisasterRecovery preset),
    vault-blob-reader-on-storage      the vault identity's assignments (``authorizationresources``)
    cluster-contributor-on-snapshot-rg  the cluster identity's Contributor on the snapshot resource group
    backup-instance-exists            an instance of the cluster in the region's vault (any name)
    protection-configured             that instance ProtectionConfigured (``recoveryservicesresources``)

A role link is satisfied by any assignment of its role to its principal at its scope or above (the rule of
``core/plan/roles.py``). Links Resource Graph cannot see (the trusted-access binding, the backup policy,
validateForBackup) are re-verified once a day.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum

from remediator.core.blockers import Blocker, BlockerKind
from remediator.core.catalog import (
    CONTRIBUTOR,
    DATA_OPERATOR_FOR_MANAGED_DISKS,
    DISK_SNAPSHOT_CONTRIBUTOR,
    READER,
    ROLE_NAMES,
    STORAGE_BLOB_DATA_CONTRIBUTOR,
    STORAGE_BLOB_DATA_READER,
)
from remediator.core.config import RemediatorConfig, Selection
from remediator.core.decision import Decision, Reason
from remediator.core.ids import ResourceId, parse_resource_id
from remediator.core.outcomes import ReconcileReport
from remediator.core.plan.links import (
    BACKUP_INSTANCE_EXISTS,
    BACKUP_VAULT_READY,
    CLUSTER_CONTRIBUTOR_ON_SNAPSHOT_GROUP,
    EXTENSION_INSTALLED,
    PROTECTION_CONFIGURED,
    PROTECTION_NOT_ELSEWHERE,
    STORAGE_ACCESS_GRANTED,
    VAULT_BLOB_READER,
    VAULT_DATA_OPERATOR,
    VAULT_READER_ON_CLUSTER,
    VAULT_READER_ON_SNAPSHOT_GROUP,
    VAULT_SNAPSHOT_CONTRIBUTOR,
)
from remediator.core.plan.observed import (
    FAILED_EXTENSION_STATES,
    FAILED_PROTECTION_STATES,
    IN_PROGRESS_EXTENSION_STATES,
    IN_PROGRESS_PROTECTION_STATES,
)
from remediator.core.protection import ClusterTargets, ProtectionOptions, targets_for
from remediator.core.report_document import Blocker as ReportBlocker
from remediator.core.report_document import ClusterRow, ClusterState, MatchedRule
from remediator.core.rules import value_matches
from remediator.core.text import fold_case, ignore_case_key

PROTECTION_CONFIGURED_STATE = "protectionconfigured"
CONFIGURING_STATES = IN_PROGRESS_PROTECTION_STATES | frozenset({"softdeleting", ""})
"""Backup-instance protection states that move by themselves (lower-cased; empty: just created), as the
chain's ``protection-configured`` link waits them out."""
LEFT_ALONE_STATES: Mapping[str, str] = {
    "protectionstopped": "protection was stopped on purpose; resume it or delete the instance",
    "backupschedulessuspended": "backups were suspended on purpose; resume them",
    "retentionschedulessuspended": "retention was suspended on purpose; resume it",
}
"""States a person chose (the chain's ``protection-configured`` blocks on them too): the sweep leaves such a
cluster alone and the report shows it blocked, naming the state."""

REVERIFY_PERIOD_S = 24 * 3600.0
"""Every cluster whose visible links are satisfied is reconciled once per this period anyway, to re-check the
links Resource Graph cannot see."""
FIRST_WINDOW_S = 3600.0
"""The re-verification window of a sweep with no earlier sweep of the same scope on record (one hourly
sweep's worth), so a first deployment does not reconcile every compliant cluster at once."""


@dataclass(frozen=True)
class RoleGrant:
    """One role assignment Resource Graph holds: who, which role, where (ids as Azure stores them)."""

    principal_id: str
    role_guid: str
    scope: str


def _ancestry(scope_id: str) -> list[str]:
    """``scope_id`` and every scope above it, each as an :func:`ignore_case_key` (an assignment at any of
    them applies to ``scope_id``): every prefix at a ``/`` boundary, down to ``/subscriptions/<id>``."""
    parts = ignore_case_key(scope_id).rstrip("/").split("/")
    return ["/".join(parts[:end]) for end in range(len(parts), 2, -1)]


class GrantIndex:
    """Role assignments by principal and scope: ``holds(principal, role, scope)`` answers whether an
    assignment of the role to the principal exists at the scope or above it, in a handful of dictionary
    lookups. One index serves every row of a sweep (the rows share it; nothing is copied per cluster)."""

    __slots__ = ("_by_principal", "_count")

    def __init__(self, grants: Iterable[RoleGrant] = ()) -> None:
        self._by_principal: dict[str, dict[str, set[str]]] = {}
        self._count = 0
        for grant in grants:
            self.add(grant)

    def add(self, grant: RoleGrant) -> None:
        principal = grant.principal_id.lower()
        role = grant.role_guid.rsplit("/", 1)[-1].lower()
        scope = ignore_case_key(grant.scope).rstrip("/")
        if not principal or not role or not scope:
            return
        roles = self._by_principal.setdefault(principal, {}).setdefault(scope, set())
        if role not in roles:
            roles.add(role)
            self._count += 1

    def holds(self, principal_id: str, role_guid: str, scope_id: str) -> bool:
        """Whether ``principal_id`` has ``role_guid`` at ``scope_id`` or at a scope above it."""
        scopes = self._by_principal.get(principal_id.lower())
        if not scopes:
            return False
        role = role_guid.lower()
        return any(role in scopes.get(scope, ()) for scope in _ancestry(scope_id))

    def principals(self) -> frozenset[str]:
        return frozenset(self._by_principal)

    def __len__(self) -> int:
        return self._count

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, GrantIndex):
            return NotImplemented
        return self._by_principal == other._by_principal

    __hash__ = None  # type: ignore[assignment]


EMPTY_GRANTS = GrantIndex()


@dataclass(frozen=True)
class VaultFacts:
    """A backup vault as its ``resources`` row shows it."""

    id: str
    principal_id: str | None
    """Its system-assigned identity's principal (lower-cased), or ``None``."""
    provisioning_state: str = ""
    location: str = ""


@dataclass(frozen=True)
class BackupInstanceFacts:
    """One backup instance that names the cluster as its data source."""

    id: str
    protection_state: str
    error_code: str = ""

    @property
    def state(self) -> str:
        return self.protection_state.lower()

    @property
    def protected(self) -> bool:
        return self.state == PROTECTION_CONFIGURED_STATE

    @property
    def vault_key(self) -> str:
        """The vault it lives in (the id's prefix before ``/backupInstances/``), as an ignore-case key."""
        key = ignore_case_key(self.id)
        head, found, _ = key.partition("/backupinstances/")
        return head if found else ""

    @property
    def name(self) -> str:
        return self.id.rstrip("/").rsplit("/", 1)[-1]


@dataclass(frozen=True)
class ChainFacts:
    """What Resource Graph shows of one cluster's chain."""

    extension_name: str | None = None
    extension_state: str | None = None
    """The backup extension's provisioning state, or ``None`` when the cluster has none."""
    extension_principal_id: str | None = None
    grants: GrantIndex | tuple[RoleGrant, ...] = ()
    """Assignments of the chain's roles (a :class:`GrantIndex`; a tuple is indexed on construction)."""
    backup_instances: tuple[BackupInstanceFacts, ...] = ()
    backup_instances_known: bool = False
    """Whether the backup instances were read at all (an empty tuple then means: none exists)."""
    cluster_principal_id: str | None = None
    """The cluster's managed identity principal (``ClusterSnapshot.identity_principal_id``)."""
    cluster_location: str = ""
    """The cluster's region (protect mode's targets are per region)."""
    vaults: Mapping[str, VaultFacts] | None = None
    """The region targets' backup vaults by id key (:func:`ignore_case_key`); ``None`` when not read. A vault
    missing from a mapping that was read does not exist."""

    def __post_init__(self) -> None:
        if not isinstance(self.grants, GrantIndex):
            object.__setattr__(self, "grants", GrantIndex(self.grants))

    @property
    def grant_index(self) -> GrantIndex:
        grants = self.grants
        return grants if isinstance(grants, GrantIndex) else GrantIndex(grants)


@dataclass(frozen=True)
class VisibleChain:
    """The links of a mode's chain that Resource Graph can check, and whether re-verification applies."""

    mode: str
    grant_role: str | None = None
    """The extension identity's role on the storage account, when the chain grants it."""
    backup_instance: bool = False
    """Whether the chain's goal is a backup instance (protect mode, or audit mode planning protect)."""
    reverify: bool = False
    """Whether the chain has links Resource Graph cannot see (install and protect modes)."""
    protection: ProtectionOptions | None = None
    """Protect mode's targets and options (vault, snapshot group, role scope, data operator)."""

    @classmethod
    def of(cls, config: RemediatorConfig) -> VisibleChain:
        mode = str(config.remediation.mode)
        planned = str(config.remediation.audit_plans) if mode == "audit" else mode
        writes_grant = planned in ("install", "protect") and config.remediation.grant_storage_access
        protect = planned == "protect"
        return cls(
            mode=mode,
            grant_role=STORAGE_BLOB_DATA_CONTRIBUTOR if writes_grant else None,
            backup_instance=protect,
            reverify=mode in ("install", "protect"),
            protection=ProtectionOptions.from_config(config) if protect else None,
        )


class LinkState(StrEnum):
    SATISFIED = "satisfied"
    MISSING = "missing"
    IN_PROGRESS = "in-progress"
    FAILED = "failed"
    DEFERRED = "deferred"
    """Cannot be judged before an earlier link is satisfied (the grant needs the extension's identity)."""
    SUPERSEDED = "superseded"
    """The goal is met by something to leave alone: another vault's backup instance protects the cluster."""
    BLOCKED = "blocked"
    """A person chose this state (protection stopped, backups suspended): nothing is written until they
    change it."""


@dataclass(frozen=True)
class LinkCheck:
    """One link as Resource Graph shows it."""

    link: str
    state: LinkState
    why: str

    @property
    def satisfied(self) -> bool:
        return self.state is LinkState.SATISFIED


def is_within(resource: str, scope: str) -> bool:
    """Whether ``resource`` is ``scope`` or below it, under Azure's case rule."""
    r, s = ignore_case_key(resource), ignore_case_key(scope).rstrip("/")
    return r == s or r.startswith(s + "/")


def _extension_check(facts: ChainFacts) -> LinkCheck:
    state = (facts.extension_state or "").lower()
    name = facts.extension_name or "backup extension"
    if facts.extension_state is None:
        return LinkCheck(EXTENSION_INSTALLED, LinkState.MISSING, "no backup extension")
    if state == "succeeded":
        return LinkCheck(EXTENSION_INSTALLED, LinkState.SATISFIED, f"extension {name} Succeeded")
    if state in IN_PROGRESS_EXTENSION_STATES:
        return LinkCheck(
            EXTENSION_INSTALLED, LinkState.IN_PROGRESS, f"extension {name} is {facts.extension_state}"
        )
    if state in FAILED_EXTENSION_STATES:
        return LinkCheck(
            EXTENSION_INSTALLED, LinkState.FAILED, f"extension {name} is {facts.extension_state}"
        )
    return LinkCheck(EXTENSION_INSTALLED, LinkState.MISSING, f"extension {name} is {facts.extension_state}")


def _shown(scope: ResourceId) -> str:
    return str(scope.name or scope.resource_group or scope.subscription_id or scope.canonical)


def _role_check(
    link: str,
    role_guid: str,
    principal: str | None,
    scope: ResourceId | None,
    facts: ChainFacts,
    *,
    who: str,
    deferred_why: str,
) -> LinkCheck:
    """A role link: ``principal`` holds ``role_guid`` at ``scope`` or above (``core/plan/roles.py``)."""
    role = ROLE_NAMES.get(role_guid, role_guid)
    if not principal:
        return LinkCheck(link, LinkState.DEFERRED, f"{role}: {deferred_why}")
    if scope is None:
        return LinkCheck(link, LinkState.MISSING, f"{role}: no target scope")
    if facts.grant_index.holds(principal, role_guid, scope.canonical):
        return LinkCheck(link, LinkState.SATISFIED, f"{who} has {role} on {_shown(scope)}")
    return LinkCheck(link, LinkState.MISSING, f"{who} lacks {role} on {_shown(scope)}")


def _grant_check(
    role_guid: str, storage: ResourceId | None, facts: ChainFacts, extension: LinkCheck
) -> LinkCheck:
    role = ROLE_NAMES.get(role_guid, role_guid)
    if not extension.satisfied or not facts.extension_principal_id:
        return LinkCheck(
            STORAGE_ACCESS_GRANTED, LinkState.DEFERRED, f"{role}: needs the extension's identity"
        )
    if storage is None:
        return LinkCheck(
            STORAGE_ACCESS_GRANTED, LinkState.MISSING, f"{role}: no storage account for the region"
        )
    return _role_check(
        STORAGE_ACCESS_GRANTED,
        role_guid,
        facts.extension_principal_id,
        storage,
        facts,
        who="the extension identity",
        deferred_why="needs the extension's identity",
    )


def _backup_instance_check(facts: ChainFacts) -> LinkCheck:
    """Install mode's report column and a protect chain without region targets: any protecting instance."""
    if any(bi.protected for bi in facts.backup_instances):
        return LinkCheck(PROTECTION_CONFIGURED, LinkState.SATISFIED, "a backup instance protects it")
    if not facts.backup_instances:
        return LinkCheck(BACKUP_INSTANCE_EXISTS, LinkState.MISSING, "no backup instance")
    return _protection_state_check(facts.backup_instances[0])


def _protection_state_check(instance: BackupInstanceFacts) -> LinkCheck:
    state = instance.protection_state or "being created"
    name = instance.name
    if instance.protected:
        return LinkCheck(PROTECTION_CONFIGURED, LinkState.SATISFIED, f"backup instance {name} is {state}")
    if instance.state in LEFT_ALONE_STATES:
        return LinkCheck(
            PROTECTION_CONFIGURED,
            LinkState.BLOCKED,
            f"backup instance {name} is {state}: {LEFT_ALONE_STATES[instance.state]}",
        )
    if instance.state in CONFIGURING_STATES:
        return LinkCheck(PROTECTION_CONFIGURED, LinkState.IN_PROGRESS, f"backup instance {name} is {state}")
    code = f" ({instance.error_code})" if instance.error_code else ""
    kind = LinkState.FAILED if instance.state in FAILED_PROTECTION_STATES else LinkState.MISSING
    return LinkCheck(PROTECTION_CONFIGURED, kind, f"backup instance {name} is {state}{code}")


def vault_tier_visible(options: ProtectionOptions, targets: ClusterTargets) -> bool | None:
    """Whether the vault identity needs Data Operator for Managed Disks, as far as the config tells without
    reading the policy: ``always`` / ``never``; ``auto`` with a preset: the DisasterRecovery strategy (the one
    with a vault tier); ``auto`` with a given policy: ``None`` (unknown here; the reconcile reads the policy,
    and re-verification covers it)."""
    if options.data_operator != "auto":
        return options.data_operator == "always"
    if targets.policy_strategy is None:
        return None
    return targets.policy_strategy == "DisasterRecovery"


def reader_scope(options: ProtectionOptions, cluster: ResourceId) -> ResourceId:
    """Where the vault's Reader for a cluster lives (``remediation.roleAssignmentScope``; the chain's
    ``vault-reader-on-cluster``)."""
    if options.role_scope == "resourceGroup" and cluster.resource_group_id is not None:
        return parse_resource_id(cluster.resource_group_id)
    if options.role_scope == "subscription" and cluster.subscription_scope is not None:
        return parse_resource_id(cluster.subscription_scope)
    return cluster


def _protect_checks(decision: Decision, facts: ChainFacts, chain: VisibleChain) -> list[LinkCheck]:
    """Protect mode's links after the install ones (see the module docstring); the elsewhere link is put
    first by :func:`visible_links`."""
    options = chain.protection
    assert options is not None
    cluster = decision.cluster_id
    targets = targets_for(options, cluster, facts.cluster_location)
    if targets is None:
        return [_backup_instance_check(facts)]
    checks: list[LinkCheck] = []
    vault_principal: str | None = None
    if facts.vaults is not None:
        vault = facts.vaults.get(targets.vault.key)
        name = targets.vault.name
        state = (vault.provisioning_state if vault is not None else "").lower()
        if vault is None:
            checks.append(LinkCheck(BACKUP_VAULT_READY, LinkState.MISSING, f"no backup vault {name}"))
        elif state in ("", "succeeded") and vault.principal_id:
            vault_principal = vault.principal_id
            checks.append(
                LinkCheck(BACKUP_VAULT_READY, LinkState.SATISFIED, f"backup vault {name} Succeeded")
            )
        elif state in ("", "succeeded"):
            checks.append(
                LinkCheck(BACKUP_VAULT_READY, LinkState.MISSING, f"backup vault {name} has no identity")
            )
        elif state in ("failed", "canceled", "cancelled"):
            checks.append(
                LinkCheck(
                    BACKUP_VAULT_READY, LinkState.FAILED, f"backup vault {name} is {vault.provisioning_state}"
                )
            )
        else:
            checks.append(
                LinkCheck(
                    BACKUP_VAULT_READY,
                    LinkState.IN_PROGRESS,
                    f"backup vault {name} is {vault.provisioning_state}",
                )
            )
        group = targets.snapshot_group
        storage = decision.storage_account_id
        later = "needs the vault's identity"
        vault_roles: list[tuple[str, str, ResourceId | None]] = [
            (VAULT_READER_ON_CLUSTER, READER, reader_scope(options, cluster)),
            (VAULT_READER_ON_SNAPSHOT_GROUP, READER, group),
            (VAULT_SNAPSHOT_CONTRIBUTOR, DISK_SNAPSHOT_CONTRIBUTOR, group),
        ]
        if vault_tier_visible(options, targets):
            vault_roles.append((VAULT_DATA_OPERATOR, DATA_OPERATOR_FOR_MANAGED_DISKS, group))
        vault_roles.append((VAULT_BLOB_READER, STORAGE_BLOB_DATA_READER, storage))
        for link, role, scope in vault_roles:
            checks.append(
                _role_check(
                    link, role, vault_principal, scope, facts, who="the vault identity", deferred_why=later
                )
            )
    checks.append(
        _role_check(
            CLUSTER_CONTRIBUTOR_ON_SNAPSHOT_GROUP,
            CONTRIBUTOR,
            facts.cluster_principal_id,
            targets.snapshot_group,
            facts,
            who="the cluster identity",
            deferred_why="the cluster's identity principal is not known",
        )
    )
    if facts.backup_instances_known:
        ours = next((bi for bi in facts.backup_instances if bi.vault_key == targets.vault.key), None)
        if ours is None:
            checks.append(
                LinkCheck(
                    BACKUP_INSTANCE_EXISTS, LinkState.MISSING, f"no backup instance in {targets.vault.name}"
                )
            )
            checks.append(LinkCheck(PROTECTION_CONFIGURED, LinkState.DEFERRED, "needs a backup instance"))
        else:
            checks.append(
                LinkCheck(
                    BACKUP_INSTANCE_EXISTS,
                    LinkState.SATISFIED,
                    f"backup instance {ours.name} in {targets.vault.name}",
                )
            )
            checks.append(_protection_state_check(ours))
    return checks


def elsewhere(decision: Decision, facts: ChainFacts, chain: VisibleChain) -> BackupInstanceFacts | None:
    """The backup instance that protects the cluster in a vault other than its region's (protect mode), as
    the chain's ``protection-not-elsewhere`` sees it; ``None`` when there is none (or it cannot be told)."""
    options = chain.protection
    if options is None or not facts.backup_instances:
        return None
    targets = targets_for(options, decision.cluster_id, facts.cluster_location)
    if targets is None:
        return None
    return next((bi for bi in facts.backup_instances if bi.vault_key != targets.vault.key), None)


def visible_links(decision: Decision, facts: ChainFacts, chain: VisibleChain) -> tuple[LinkCheck, ...]:
    """The links Resource Graph can see for a selected cluster, in chain order."""
    extension = _extension_check(facts)
    checks: list[LinkCheck] = []
    if chain.protection is not None and facts.backup_instances_known:
        other = elsewhere(decision, facts, chain)
        if other is not None:
            vault = other.vault_key.rsplit("/", 1)[-1] or "another vault"
            state = other.protection_state or "unknown state"
            why = f"protected elsewhere: backup instance {other.name} in vault {vault} ({state}); left alone"
            return (LinkCheck(PROTECTION_NOT_ELSEWHERE, LinkState.SUPERSEDED, why),)
        checks.append(
            LinkCheck(PROTECTION_NOT_ELSEWHERE, LinkState.SATISFIED, "no backup instance in another vault")
        )
    checks.append(extension)
    if chain.grant_role is not None:
        checks.append(_grant_check(chain.grant_role, decision.storage_account_id, facts, extension))
    if chain.protection is not None:
        checks.extend(_protect_checks(decision, facts, chain))
    elif chain.backup_instance:
        checks.append(_backup_instance_check(facts))
    return tuple(checks)


def first_unsatisfied(checks: Sequence[LinkCheck]) -> LinkCheck | None:
    return next((check for check in checks if not check.satisfied), None)


# --- what the sweep does ----------------------------------------------------------------------------------


class VerdictKind(StrEnum):
    NOT_SELECTED = "not-selected"
    BLOCKED = "blocked"
    """A blocker only a human can lift: not enqueued."""
    DEFERRED = "deferred"
    """A long-lived blocker (stopped): not enqueued; an event or a later sweep brings it back."""
    ENQUEUE = "enqueue"
    """A visible link is not satisfied."""
    REVERIFY = "reverify"
    """Every visible link is satisfied, and its periodic re-verification is due."""
    SATISFIED = "satisfied"
    ELSEWHERE = "elsewhere"
    """Protect mode: a backup instance in another vault protects the cluster. Left alone: never enqueued (the
    chain would write nothing either), not re-verified; it comes back when that instance is gone."""


JOURNALED_VERDICTS = frozenset(
    {
        VerdictKind.NOT_SELECTED,
        VerdictKind.BLOCKED,
        VerdictKind.DEFERRED,
        VerdictKind.SATISFIED,
        VerdictKind.ELSEWHERE,
    }
)
"""Verdicts the sweep journals per cluster (when they change): nothing else records them. Enqueued and
re-verified clusters are journaled by their reconcile."""


@dataclass(frozen=True)
class SweepVerdict:
    kind: VerdictKind
    checks: tuple[LinkCheck, ...] = ()
    blockers: tuple[Blocker, ...] = ()
    """The blockers that hold it (blocked, deferred); a blocked verdict without one is held by a link a person
    set (``need`` names it: protection stopped on purpose)."""
    need: LinkCheck | None = field(default=None, init=False, compare=False)
    """The first visible link not satisfied (``None`` when all are, or the cluster is not selected)."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "need", first_unsatisfied(self.checks))

    @property
    def reason(self) -> str:
        """The work item's reason: ``sweep:<link>-<state>`` or ``sweep:reverify``."""
        need = self.need
        if self.kind is VerdictKind.REVERIFY or need is None:
            return "sweep:reverify"
        return f"sweep:{need.link}-{need.state.value}"


def sweep_verdict(
    decision: Decision, facts: ChainFacts, chain: VisibleChain, *, reverify_due: bool = False
) -> SweepVerdict:
    """What the sweep does with one cluster (the selection rule, ``docs/architecture.md`` "The sweep").

    Not selected -> nothing. A human blocker -> blocked; a long-lived one (stopped) -> deferred: neither is
    enqueued, whatever the links say (a reconcile could not change anything). Protect mode: a backup
    instance in another vault -> elsewhere (left alone); a link a person set (protection stopped) ->
    blocked. Otherwise a visible link not satisfied -> enqueue (a backup instance in ProtectionError at once,
    like any unsatisfied link); all satisfied -> re-verify when due, else nothing. A transient blocker
    (provisioning) does not hold the work item back: the reconcile waits it out.
    """
    if decision.reason is not Reason.SELECTED:
        return SweepVerdict(VerdictKind.NOT_SELECTED)
    human = tuple(b for b in decision.blockers if b.kind is BlockerKind.HUMAN)
    if human:
        return SweepVerdict(VerdictKind.BLOCKED, blockers=human)
    later = tuple(b for b in decision.blockers if b.kind is BlockerKind.LONG_LIVED)
    if later:
        return SweepVerdict(VerdictKind.DEFERRED, blockers=later)
    checks = visible_links(decision, facts, chain)
    if any(c.state is LinkState.SUPERSEDED for c in checks):
        return SweepVerdict(VerdictKind.ELSEWHERE, checks=checks)
    if any(c.state is LinkState.BLOCKED for c in checks):
        return SweepVerdict(VerdictKind.BLOCKED, checks=checks)
    if first_unsatisfied(checks) is not None:
        return SweepVerdict(VerdictKind.ENQUEUE, checks=checks)
    if reverify_due and chain.reverify:
        return SweepVerdict(VerdictKind.REVERIFY, checks=checks)
    return SweepVerdict(VerdictKind.SATISFIED, checks=checks)


def decision_key(decision: Decision, verdict: SweepVerdict) -> str:
    """What must change for the sweep to journal the cluster's decision again: the verdict, the decision's
    reason and rule, the blockers, and the first link not satisfied (16 hex digits of a SHA-256)."""
    need = verdict.need
    kind = VerdictKind.SATISFIED if verdict.kind is VerdictKind.REVERIFY else verdict.kind
    parts = (
        kind.value,
        decision.reason.value,
        decision.rule or "",
        ",".join(b.value for b in decision.blockers),
        "" if need is None else f"{need.link}:{need.state.value}",
    )
    return hashlib.sha256("|".join(parts).encode("utf-8")).hexdigest()[:16]


def reverification_due(
    cluster_key: str, *, window: tuple[float, float], period_s: float = REVERIFY_PERIOD_S
) -> bool:
    """Whether the cluster's re-verification slot falls in ``window`` = (previous sweep's start, this sweep's
    start], in epoch seconds.

    Each cluster has a fixed phase in the period, from a hash of its key, so re-verifications spread evenly
    over the period and consecutive windows (sweeps of the same scope) give each cluster exactly one slot per
    period, however irregular the sweeps. A window of a whole period or more covers everyone once.
    """
    start, end = window
    if end <= start:
        return False
    if end - start >= period_s:
        return True
    phase = (int(hashlib.sha256(cluster_key.encode("utf-8")).hexdigest()[:12], 16) % 1_000_000) / 1_000_000
    offset = phase * period_s
    latest_slot = math.floor((end - offset) / period_s) * period_s + offset
    return latest_slot > start


@dataclass(frozen=True)
class DecisionIndex:
    """The sweep's last decisions (the journal's ``sweep-decisions`` partition, read in bulk)."""

    keys: Mapping[str, str] = field(default_factory=dict)
    """Cluster partition key (``core.naming.cluster_key``) -> the :func:`decision_key` last journaled."""
    last_sweep_at: float | None = None
    """When the last sweep of this scope started (epoch seconds), or ``None``."""


@dataclass(frozen=True)
class JournaledDecision:
    """One changed sweep decision to journal: the new key, and the history row (``None``: index only, for
    decisions a reconcile journals itself)."""

    cluster_id: str
    cluster_key: str
    key: str
    report: ReconcileReport | None = None


# --- the report's state ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class LatestOutcome:
    """The newest journaled outcome of a cluster (the journal's outcome index, read in bulk)."""

    kind: str
    """``done``, ``wait``, ``gave_up`` or ``skipped``."""
    why: str
    recorded_at: float = 0.0


@dataclass(frozen=True)
class Assessment:
    """The report's view of one cluster."""

    state: ClusterState
    next_action: str
    cause: str | None = None
    checks: tuple[LinkCheck, ...] = field(default=())
    elsewhere: BackupInstanceFacts | None = None
    """Protect mode: the backup instance in another vault that protects the cluster (left alone)."""


_REASON_TEXT: Mapping[Reason, str] = {
    Reason.OUT_OF_SCOPE: "outside the configured scope",
    Reason.REGION_NOT_ALLOWED: "its region is not in scope.regions",
    Reason.NO_STORAGE_FOR_REGION: "selected by its tags, but no storage account is configured for its region",
    Reason.NOT_INCLUDED: "no include rule matches its tags",
    Reason.EXCLUDED_BY_TAG: "an exclude rule matches its tags",
    Reason.SELECTED: "selected",
}


def reason_text(reason: Reason) -> str:
    """One line for a person: why the cluster is (not) selected."""
    return _REASON_TEXT[reason]


def _one_line(text: str, limit: int = 300) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."


def assess(
    decision: Decision,
    facts: ChainFacts,
    chain: VisibleChain,
    *,
    latest: LatestOutcome | None = None,
) -> Assessment:
    """The one state a person reads for the cluster (``core/report_document.py``, ``STATES``), first match:

    1. not selected -> ``notSelected``;
    2. a human blocker -> ``blocked`` (its remedy is the next action);
    3. protect mode, protected elsewhere (a backup instance in another vault): ``protected`` when that
       instance is ProtectionConfigured, else ``blocked`` (its owner must repair it; the product never
       writes to another vault's instance); a link a person set (protection stopped) -> ``blocked``;
    4. every visible link satisfied -> ``protected``;
    5. a long-lived or transient blocker (stopped, provisioning) -> ``waiting``;
    6. the journal's latest outcome is a give-up -> ``gaveUp`` with its cause;
    7. Resource Graph shows a link moving (extension installing, backup instance configuring), or the
       journal's latest outcome is ``done`` (Resource Graph lags seconds to minutes) -> ``installing``;
    8. the journal's latest outcome is ``wait`` -> ``waiting`` (the work queue retries; its why is the cause);
    9. otherwise -> ``notStarted``.
    """
    if decision.reason is not Reason.SELECTED:
        return Assessment("notSelected", f"none: {reason_text(decision.reason)}")
    human = [b for b in decision.blockers if b.kind is BlockerKind.HUMAN]
    if human:
        return Assessment("blocked", f"a person must act: {human[0].remedy}")
    checks = visible_links(decision, facts, chain)
    other = elsewhere(decision, facts, chain) if checks[0].state is LinkState.SUPERSEDED else None
    if other is not None:
        if other.protected:
            return Assessment(
                "protected",
                f"none: {checks[0].why}, never written by the remediator",
                checks=checks,
                elsewhere=other,
            )
        return Assessment(
            "blocked",
            f"a person must act: {checks[0].why}; its owner must repair it (the remediator never writes to"
            " another vault's backup instance)",
            checks=checks,
            elsewhere=other,
        )
    held = next((c for c in checks if c.state is LinkState.BLOCKED), None)
    if held is not None:
        return Assessment("blocked", f"a person must act: {held.why}", checks=checks)
    need = first_unsatisfied(checks)
    if need is None:
        later = (
            " (and reconciled once a day to re-check what Resource Graph cannot see)"
            if chain.reverify
            else ""
        )
        return Assessment("protected", f"none; every sweep re-checks it{later}", checks=checks)
    waiting = [b for b in decision.blockers if b.kind is not BlockerKind.HUMAN]
    if waiting:
        blocker = waiting[0]
        if blocker.kind is BlockerKind.LONG_LIVED:
            action = f"waits: {blocker.remedy}"
        else:
            action = f"waits until it clears ({blocker.remedy}); the reconcile retries"
        return Assessment("waiting", action, checks=checks)
    if latest is not None and latest.kind == "gave_up":
        return Assessment(
            "gaveUp",
            "a person must fix the cause; the next sweep (or `reconcile`) then retries",
            cause=_one_line(latest.why),
            checks=checks,
        )
    if chain.mode == "audit":
        return Assessment(
            "notStarted", f"audit mode writes nothing; would fix {need.link}: {need.why}", checks=checks
        )
    if need.state is LinkState.IN_PROGRESS or (latest is not None and latest.kind == "done"):
        return Assessment(
            "installing", f"{need.link}: {need.why}; the work queue checks again", checks=checks
        )
    if latest is not None and latest.kind == "wait":
        return Assessment(
            "waiting", f"the work queue retries {need.link}: {_one_line(latest.why)}", checks=checks
        )
    return Assessment("notStarted", f"the next sweep enqueues it ({need.link}: {need.why})", checks=checks)


# --- the matched rule -------------------------------------------------------------------------------------


def matched_rule(tags: Mapping[str, str], selection: Selection, rule: str | None) -> MatchedRule | None:
    """The rule named ``include[i]`` / ``exclude[i]`` as a person wrote it: its tag, and the value pattern
    the cluster's tag matched (``*`` when the rule lists no values). ``None`` when no rule decided."""
    if not rule or "[" not in rule:
        return None
    kind, _, index = rule.partition("[")
    entries = selection.include if kind == "include" else selection.exclude if kind == "exclude" else None
    try:
        entry = (entries or ())[int(index.rstrip("]"))]
    except (ValueError, IndexError):
        return None
    if entry.values is None:
        return MatchedRule(kind="include" if kind == "include" else "exclude", tag=entry.tag, value="*")
    name = fold_case(entry.tag)
    values = [value for key, value in tags.items() if fold_case(key) == name]
    pattern = next((p for p in entry.values for v in values if value_matches(p, v)), entry.values[0])
    return MatchedRule(kind="include" if kind == "include" else "exclude", tag=entry.tag, value=pattern)


def blockers_needing_a_person(blockers: Iterable[Blocker]) -> tuple[Blocker, ...]:
    return tuple(b for b in blockers if b.kind is BlockerKind.HUMAN)


def cluster_row(
    decision: Decision,
    *,
    name: str,
    resource_group: str,
    region: str,
    tags: Mapping[str, str],
    selection: Selection,
    facts: ChainFacts,
    assessment: Assessment,
    subscription_name: str | None = None,
    management_groups: Sequence[str] = (),
) -> ClusterRow:
    """The report's row for one cluster (also what the sweep lists)."""
    cluster_id = decision.cluster_id
    protected = next((bi for bi in facts.backup_instances if bi.protected), None)
    instance = protected or (facts.backup_instances[0] if facts.backup_instances else None)
    if assessment.elsewhere is not None:
        instance = assessment.elsewhere
    blockers = [ReportBlocker(code=b.value, kind=b.kind.value, remedy=b.remedy) for b in decision.blockers]
    if assessment.state == "blocked":
        blockers += [
            ReportBlocker(code=_LINK_BLOCKERS[c.state], kind="human", remedy=c.why)
            for c in assessment.checks
            if c.state in _LINK_BLOCKERS
        ]
    return ClusterRow(
        id=cluster_id.canonical,
        name=name,
        subscription_id=str(cluster_id.subscription_id),
        resource_group=resource_group,
        region=region,
        selected=decision.selected,
        reason=decision.reason.value,
        state=assessment.state,
        next_action=assessment.next_action,
        subscription_name=subscription_name,
        management_groups=tuple(dict.fromkeys(management_groups)),
        matched_rule=matched_rule(tags, selection, decision.rule),
        extension_state=facts.extension_state,
        protection_state=None if instance is None else (instance.protection_state or None),
        blockers=tuple(blockers),
        cause=assessment.cause,
        protected_by=None if assessment.elsewhere is None else assessment.elsewhere.id,
    )


_LINK_BLOCKERS: Mapping[LinkState, str] = {
    LinkState.SUPERSEDED: "protected-elsewhere",
    LinkState.BLOCKED: "protection-held",
}
"""The report's blocker code for a link that holds a cluster for a person (``blocked`` rows)."""
