"""What Resource Graph shows of each cluster's protection chain, what the sweep does about it, and the state a
person reads in the report.

The sweep and the report see every cluster through one inventory row: the cluster (decided by
:func:`remediator.core.decision.decide`), its backup extension, the role assignments its identities hold and
the backup instances that name it (joined from side queries, see :mod:`remediator.core.inventory_query`).
This module, pure, turns those facts into:

- :func:`visible_links`: each link of the mode's chain that Resource Graph can see, satisfied or not. A
  cluster needs work when any is not (issue 17 F3: the extension alone is not enough);
- :func:`sweep_verdict`: what the sweep does with the cluster (enqueue, re-verify, leave blocked or deferred,
  nothing);
- :func:`assess`: the one state of the report (protected, installing, waiting, blocked, gave up, not started,
  not selected), with the next action in one line and, for a give-up, its journaled cause;
- :func:`decision_key`: what must change for the sweep to journal a cluster's decision again;
- :func:`reverification_due`: when a cluster whose visible links are all satisfied gets a reconcile anyway,
  because some links are invisible to Resource Graph (the backup container, the storage account's region;
  in protect mode the trusted-access binding);
- :func:`matched_rule`: the tag rule that decided, as the tag and value a person wrote, not an index.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum

from remediator.core.blockers import Blocker, BlockerKind
from remediator.core.catalog import ROLE_NAMES, STORAGE_BLOB_DATA_CONTRIBUTOR
from remediator.core.config import RemediatorConfig, Selection
from remediator.core.decision import Decision, Reason
from remediator.core.ids import ResourceId
from remediator.core.outcomes import ReconcileReport
from remediator.core.plan.links import EXTENSION_INSTALLED, STORAGE_ACCESS_GRANTED
from remediator.core.plan.observed import FAILED_EXTENSION_STATES, IN_PROGRESS_EXTENSION_STATES
from remediator.core.report_document import Blocker as ReportBlocker
from remediator.core.report_document import ClusterRow, ClusterState, MatchedRule
from remediator.core.rules import value_matches
from remediator.core.text import fold_case, ignore_case_key

BACKUP_INSTANCE_PROTECTED = "backup-instance-protected"
"""The protect-mode link Resource Graph shows: a backup instance protecting the cluster,
``currentProtectionState`` ProtectionConfigured (built-in Policy 2 semantics)."""

PROTECTION_CONFIGURED = "protectionconfigured"
CONFIGURING_STATES = frozenset({"configuringprotection", "protectionstopped", "softdeleting"})
"""Backup-instance protection states that move by themselves (lower-cased)."""

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


@dataclass(frozen=True)
class BackupInstanceFacts:
    """One backup instance that names the cluster as its data source."""

    id: str
    protection_state: str
    error_code: str = ""

    @property
    def protected(self) -> bool:
        return self.protection_state.lower() == PROTECTION_CONFIGURED


@dataclass(frozen=True)
class ChainFacts:
    """What Resource Graph shows of one cluster's chain."""

    extension_name: str | None = None
    extension_state: str | None = None
    """The backup extension's provisioning state, or ``None`` when the cluster has none."""
    extension_principal_id: str | None = None
    grants: tuple[RoleGrant, ...] = ()
    """Assignments of the chain's roles held by this cluster's identities."""
    backup_instances: tuple[BackupInstanceFacts, ...] = ()
    backup_instances_known: bool = False
    """Whether the backup instances were read at all (an empty tuple then means: none exists)."""


@dataclass(frozen=True)
class VisibleChain:
    """The links of a mode's chain that Resource Graph can check, and whether re-verification applies."""

    mode: str
    grant_role: str | None = None
    """The extension identity's role on the storage account, when the chain grants it."""
    backup_instance: bool = False
    reverify: bool = False
    """Whether the chain has links Resource Graph cannot see (install and protect modes)."""

    @classmethod
    def of(cls, config: RemediatorConfig) -> VisibleChain:
        mode = str(config.remediation.mode)
        writes_grant = mode in ("install", "audit", "protect") and config.remediation.grant_storage_access
        return cls(
            mode=mode,
            grant_role=STORAGE_BLOB_DATA_CONTRIBUTOR if writes_grant else None,
            backup_instance=mode == "protect",
            reverify=mode in ("install", "protect"),
        )


class LinkState(StrEnum):
    SATISFIED = "satisfied"
    MISSING = "missing"
    IN_PROGRESS = "in-progress"
    FAILED = "failed"
    DEFERRED = "deferred"
    """Cannot be judged before an earlier link is satisfied (the grant needs the extension's identity)."""


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
    principal = facts.extension_principal_id.lower()
    for grant in facts.grants:
        if (
            grant.principal_id.lower() == principal
            and grant.role_guid.lower() == role_guid
            and is_within(storage.canonical, grant.scope)
        ):
            return LinkCheck(STORAGE_ACCESS_GRANTED, LinkState.SATISFIED, f"{role} on {storage.name}")
    return LinkCheck(
        STORAGE_ACCESS_GRANTED, LinkState.MISSING, f"the extension identity lacks {role} on {storage.name}"
    )


def _backup_instance_check(facts: ChainFacts) -> LinkCheck:
    if any(bi.protected for bi in facts.backup_instances):
        return LinkCheck(BACKUP_INSTANCE_PROTECTED, LinkState.SATISFIED, "a backup instance protects it")
    if not facts.backup_instances:
        return LinkCheck(BACKUP_INSTANCE_PROTECTED, LinkState.MISSING, "no backup instance")
    first = facts.backup_instances[0]
    state = first.protection_state or "unknown"
    if state.lower() in CONFIGURING_STATES:
        return LinkCheck(BACKUP_INSTANCE_PROTECTED, LinkState.IN_PROGRESS, f"backup instance is {state}")
    code = f" ({first.error_code})" if first.error_code else ""
    return LinkCheck(BACKUP_INSTANCE_PROTECTED, LinkState.FAILED, f"backup instance is {state}{code}")


def visible_links(decision: Decision, facts: ChainFacts, chain: VisibleChain) -> tuple[LinkCheck, ...]:
    """The links Resource Graph can see for a selected cluster, in chain order."""
    extension = _extension_check(facts)
    checks = [extension]
    if chain.grant_role is not None:
        checks.append(_grant_check(chain.grant_role, decision.storage_account_id, facts, extension))
    if chain.backup_instance:
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


JOURNALED_VERDICTS = frozenset(
    {VerdictKind.NOT_SELECTED, VerdictKind.BLOCKED, VerdictKind.DEFERRED, VerdictKind.SATISFIED}
)
"""Verdicts the sweep journals per cluster (when they change): nothing else records them. Enqueued and
re-verified clusters are journaled by their reconcile."""


@dataclass(frozen=True)
class SweepVerdict:
    kind: VerdictKind
    checks: tuple[LinkCheck, ...] = ()
    blockers: tuple[Blocker, ...] = ()
    """The blockers that hold it (blocked, deferred)."""
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
    enqueued, whatever the links say (a reconcile could not change anything). Otherwise a visible link not
    satisfied -> enqueue; all satisfied -> re-verify when due, else nothing. A transient blocker
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
    3. every visible link satisfied -> ``protected``;
    4. a long-lived or transient blocker (stopped, provisioning) -> ``waiting``;
    5. the journal's latest outcome is a give-up -> ``gaveUp`` with its cause;
    6. Resource Graph shows a link moving (extension installing, backup instance configuring), or the
       journal's latest outcome is ``done`` (Resource Graph lags seconds to minutes) -> ``installing``;
    7. the journal's latest outcome is ``wait`` -> ``waiting`` (the work queue retries; its why is the cause);
    8. otherwise -> ``notStarted``.
    """
    if decision.reason is not Reason.SELECTED:
        return Assessment("notSelected", f"none: {reason_text(decision.reason)}")
    human = [b for b in decision.blockers if b.kind is BlockerKind.HUMAN]
    if human:
        return Assessment("blocked", f"a person must act: {human[0].remedy}")
    checks = visible_links(decision, facts, chain)
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
        blockers=tuple(
            ReportBlocker(code=b.value, kind=b.kind.value, remedy=b.remedy) for b in decision.blockers
        ),
        cause=assessment.cause,
    )
