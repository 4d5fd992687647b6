"""A requirement: one link of the chain that keeps a selected cluster protected, self-describing.

A requirement states, in one place: its stable :attr:`~Requirement.key` (the link name journaled and
published, e.g. ``extension-installed``); which other links it :attr:`~Requirement.depends_on` (not a total
order: links that do not depend on each other are evaluated, and written, independently); the reads it needs
(:meth:`~Requirement.reads`); when it is satisfied, and otherwise the write that satisfies it, what blocks
it and its outcome wording (:meth:`~Requirement.evaluate`, which returns a :data:`Verdict`). The write
itself is a value from :mod:`remediator.core.plan.writes` carrying its kind, typed target, body inputs,
claim and write bucket.

A mode selects a :class:`Chain` (an ordered tuple of requirements, dependencies pointing backwards), and
:func:`remediator.core.plan.planner.plan` turns the verdicts into the reconcile's writes and outcome.

Requirements are satisfied by what Azure has, not by our name for it: the extension by its type under any
name, a role assignment by any assignment of that role to that principal at that scope or above.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from remediator.core.catalog import DEFAULT_EXTENSION_NAME
from remediator.core.config import RemediatorConfig
from remediator.core.decision import Decision
from remediator.core.ids import ResourceId
from remediator.core.naming import backup_container_name
from remediator.core.plan.observed import Observed, Read
from remediator.core.plan.writes import Write
from remediator.core.preflight import Finding
from remediator.core.protection import ProtectionOptions
from remediator.core.snapshot import ClusterSnapshot
from remediator.core.text import ignore_case_key

EXTENSION_POLL_SECONDS = 30.0
"""How long to wait before looking at an extension operation again (installs take minutes)."""

TASK_POLL_SECONDS = 60.0
"""How long to wait before looking at a running remediation task again."""


# --------------------------------------------------------------------------------------------- verdicts


@dataclass(frozen=True)
class Satisfied:
    """Azure has what the link asks for. ``why`` says what was found; ``findings`` what a human should know
    anyway (preflight warnings)."""

    why: str
    findings: tuple[Finding, ...] = ()


@dataclass(frozen=True)
class NotNeeded:
    """The link does not apply to this cluster now (e.g. the grant is disabled by config); counts as
    satisfied."""

    why: str


@dataclass(frozen=True)
class Missing:
    """Not satisfied, and ``write`` satisfies it.

    :param write: the write.
    :param why: what the write achieves, for the outcome (``container azure-aks-backup-x created``).
    :param wait_s: ``None`` when the link is satisfied as soon as the write is accepted (a container, a role
        assignment); else how long to wait before looking again (a long-running operation was started).
    """

    write: Write
    why: str
    wait_s: float | None = None


@dataclass(frozen=True)
class Waiting:
    """Not satisfied yet, and time will tell (an operation is in progress)."""

    retry_after_s: float
    why: str
    findings: tuple[Finding, ...] = ()


@dataclass(frozen=True)
class Blocked:
    """Not satisfied, and a human must act (named in ``why``; ``findings``: the preflight findings behind
    it, when preflight found it)."""

    why: str
    findings: tuple[Finding, ...] = ()


@dataclass(frozen=True)
class Superseded:
    """The link's goal is already met by something the product must leave alone (a backup instance of the
    cluster in another vault): the chain stops, nothing is written, and the reconcile ends ``done`` saying
    so. Counts as satisfied."""

    why: str


@dataclass(frozen=True)
class Deferred:
    """Not evaluated: the link it depends on (``on``) is not satisfied yet."""

    on: str


@dataclass(frozen=True)
class Unreadable:
    """Not evaluated: a read it needed failed with ``error`` (an ARM error, mapped by the service)."""

    read: Read[Any]
    error: BaseException


Verdict = Satisfied | NotNeeded | Missing | Waiting | Blocked | Deferred | Unreadable | Superseded


def is_satisfied(verdict: Verdict) -> bool:
    return isinstance(verdict, Satisfied | NotNeeded | Superseded)


LINK_STATES: tuple[str, ...] = (
    "satisfied",
    "not-needed",
    "missing",
    "waiting",
    "blocked",
    "deferred",
    "unreadable",
    "superseded",
)
"""Every state a link can report (:func:`state_of`)."""

SETTLED_STATES: frozenset[str] = frozenset({"satisfied", "not-needed", "superseded"})
"""The states of a link whose verdict :func:`is_satisfied` (nothing left to do for it)."""


def settled_links(links: Iterable[Mapping[str, str]]) -> int:
    """How many of a report's links (``ReconcileReport.links``) are settled: the chain's progress, which
    the work queue's attempt bound watches (``WorkItem.next_attempt``)."""
    return sum(1 for link in links if link.get("state") in SETTLED_STATES)


def state_of(verdict: Verdict) -> str:
    """The link's state in one word, for reports: ``satisfied``, ``not-needed``, ``missing``, ``waiting``,
    ``blocked``, ``deferred``, ``unreadable``, ``superseded``."""
    return {
        Superseded: "superseded",
        Satisfied: "satisfied",
        NotNeeded: "not-needed",
        Missing: "missing",
        Waiting: "waiting",
        Blocked: "blocked",
        Deferred: "deferred",
        Unreadable: "unreadable",
    }[type(verdict)]


# --------------------------------------------------------------------------------------------- context


class Mode(StrEnum):
    """What the remediator does for a selected cluster (``remediation.mode`` in the config)."""

    INSTALL = "install"
    POLICY_TASK = "policy-task"
    AUDIT = "audit"
    PROTECT = "protect"


@dataclass(frozen=True)
class PlanningOptions:
    """The config knobs the requirements read, flattened from ``RemediatorConfig`` and the tenant.

    :param mode: install / policy-task / audit.
    :param grant_storage_access: grant the extension identity Storage Blob Data Contributor.
    :param max_reinstalls: how many times a Failed extension is re-installed before giving up, per failure
        episode (re-installs before the extension was last seen Succeeded do not count). In policy-task mode,
        likewise how many Failed/Canceled remediation tasks in a row are followed by a new one.
    :param policy_assignment_ids: assignments of Policy 3/4 (policy-task mode).
    :param extension_name: the name a new extension gets.
    :param release_train: the extension's release train.
    :param auto_upgrade_minor_version: the extension's minor-version auto-upgrade.
    :param extra_settings: extra configurationSettings.
    :param tenant_id: written to the extension as ``credentials.tenantId``.
    :param audit_plans: the chain audit mode plans (``install`` or ``protect``).
    :param protection: protect mode's targets and knobs (``core.protection``).
    :param storage_subscription: the subscription of every configured backup storage account when they all
        live in one (the container PUT's write bucket, known before the cluster's region is); ``None``:
        several, or none.
    """

    mode: Mode = Mode.INSTALL
    grant_storage_access: bool = True
    max_reinstalls: int = 2
    policy_assignment_ids: tuple[ResourceId, ...] = ()
    extension_name: str = DEFAULT_EXTENSION_NAME
    release_train: str = "stable"
    auto_upgrade_minor_version: bool = True
    extra_settings: tuple[tuple[str, str], ...] = ()
    tenant_id: str = ""
    audit_plans: Mode = Mode.INSTALL
    protection: ProtectionOptions = field(default_factory=ProtectionOptions)
    storage_subscription: str | None = None

    @classmethod
    def from_config(cls, config: RemediatorConfig, *, tenant_id: str) -> PlanningOptions:
        return cls(
            mode=Mode(config.remediation.mode),
            grant_storage_access=config.remediation.grant_storage_access,
            max_reinstalls=config.remediation.max_reinstalls,
            policy_assignment_ids=tuple(config.remediation.policy_assignment_ids),
            extension_name=config.extension.name,
            release_train=config.extension.release_train,
            auto_upgrade_minor_version=config.extension.auto_upgrade_minor_version,
            extra_settings=tuple(sorted(config.extension.configuration_settings.items())),
            tenant_id=tenant_id,
            audit_plans=Mode(config.remediation.audit_plans),
            protection=ProtectionOptions.from_config(config),
            storage_subscription=_one_subscription(
                str(t.storage_account.subscription_id) for t in config.targets.values()
            ),
        )

    @property
    def chain_mode(self) -> Mode:
        """The mode whose chain is planned: the mode itself, or for ``audit`` the chain it audits."""
        return self.audit_plans if self.mode is Mode.AUDIT else self.mode


def _one_subscription(subscriptions: Iterable[str]) -> str | None:
    """The one subscription all of ``subscriptions`` name (compared by Azure's case rule), else ``None``."""
    found = {ignore_case_key(s): s for s in subscriptions}
    return next(iter(found.values())) if len(found) == 1 else None


@dataclass(frozen=True)
class PlanContext:
    """What every requirement of one reconcile may consult besides the reads: the cluster, the decision and
    the options."""

    cluster: ClusterSnapshot
    decision: Decision
    options: PlanningOptions = field(default_factory=PlanningOptions)

    @property
    def cluster_id(self) -> ResourceId:
        return self.cluster.id

    @property
    def storage_account(self) -> ResourceId | None:
        """The backup storage account for the cluster's region (``None``: none configured)."""
        return self.decision.storage_account_id

    @property
    def container(self) -> str:
        """Our backup container name for this cluster (``naming.backup_container_name``)."""
        return backup_container_name(self.cluster.name, self.cluster.id.canonical)


# --------------------------------------------------------------------------------------------- requirement


class Requirement(ABC):
    """One link of a chain. Subclasses set :attr:`key`, :attr:`title` and :attr:`depends_on` and implement
    :meth:`reads` and :meth:`evaluate`."""

    key: str
    """Stable link name (``[a-z-]``), journaled and published with actions; never rename one."""
    title: str
    """One line for humans: what the link means (``the backup extension is installed and Succeeded``)."""
    depends_on: tuple[str, ...] = ()
    """Keys of earlier links that must be satisfied before this one is evaluated (and its write sent)."""
    gates: bool = False
    """Every later link of the chain depends on this one (preflight: nothing is written while it is not
    satisfied), whatever their own ``depends_on`` say."""
    vetoes: bool = True
    """Its verdict can stop every other link's write (it can be :class:`Blocked` or :class:`Superseded`), so
    no write goes out before its reads are in (``planner.settled_writes``). ``False`` only for a link whose
    :meth:`evaluate` never blocks nor supersedes."""

    @abstractmethod
    def reads(self, ctx: PlanContext, observed: Observed) -> Iterable[Read[Any]]:
        """The reads this link needs, as early as their inputs are known (``observed`` holds what was read
        so far; a read that needs another read's answer is listed once that answer is there). A read whose
        answer turns out not to matter costs a call, not a round trip."""

    @abstractmethod
    def evaluate(self, ctx: PlanContext, observed: Observed) -> Verdict:
        """The link's verdict (:class:`Satisfied`, :class:`NotNeeded`, :class:`Missing`, :class:`Waiting` or
        :class:`Blocked`). Reading a failed read raises ``ReadFailed``, which the planner reports."""

    def claim_ahead(self, cluster: ResourceId, options: PlanningOptions) -> str | None:
        """The claim this link's write takes on a cluster where nothing exists yet, so the reconciler can
        take it together with the cluster GET (off the critical path); ``None``: no such guess."""
        return None

    def bucket_ahead(self, cluster: ResourceId, options: PlanningOptions) -> str | None:
        """The subscription whose ARM write bucket this link's write draws from on a cluster where nothing
        exists yet (its ``Write.bucket_subscription``), when the cluster's id and the options tell it, so the
        reconciler can take the write token together with the cluster GET, like :meth:`claim_ahead`;
        ``None``: no such guess (the write draws its token when it is sent)."""
        return None

    def reads_ahead(self, cluster: ResourceId, options: PlanningOptions) -> Iterable[Read[Any]]:
        """Reads this link needs that depend on nothing but the cluster's id and the options (preflight's
        policy data and provider registrations of the cluster's subscription), so the reconciler can start
        them together with the cluster GET. Each must equal a read :meth:`reads` lists for that cluster
        before anything was read (a test checks it), or it is read twice."""
        return ()


@dataclass(frozen=True)
class Chain:
    """An ordered list of requirements selected by a mode. Dependencies must point to earlier links, so the
    list order is an evaluation order and there are no cycles."""

    name: str
    requirements: tuple[Requirement, ...]
    deferred_wait_s: float = EXTENSION_POLL_SECONDS
    """How long to wait when writes were accepted at once and links that depend on them are deferred (look
    again soon: the next links can go now)."""

    def __post_init__(self) -> None:
        seen: set[str] = set()
        for requirement in self.requirements:
            if requirement.key in seen:
                raise ValueError(f"chain {self.name}: link {requirement.key!r} appears twice")
            unknown = [d for d in requirement.depends_on if d not in seen]
            if unknown:
                raise ValueError(
                    f"chain {self.name}: link {requirement.key!r} depends on {unknown}, which are not earlier"
                )
            seen.add(requirement.key)

    @property
    def keys(self) -> tuple[str, ...]:
        return tuple(r.key for r in self.requirements)

    def reads(self, ctx: PlanContext, observed: Observed) -> list[Read[Any]]:
        """Every read the links need now, deduplicated, minus those already made."""
        wanted: dict[Read[Any], None] = {}
        for requirement in self.requirements:
            for read in requirement.reads(ctx, observed):
                if not observed.knows(read):
                    wanted[read] = None
        return list(wanted)

    def claims_ahead(self, cluster: ResourceId, options: PlanningOptions) -> tuple[str, ...]:
        """The claims a reconcile may take while it reads (see :meth:`Requirement.claim_ahead`)."""
        found = (r.claim_ahead(cluster, options) for r in self.requirements)
        return tuple(dict.fromkeys(c for c in found if c is not None))

    def buckets_ahead(self, cluster: ResourceId, options: PlanningOptions) -> dict[str, float]:
        """Subscription -> write tokens a reconcile may take while it reads (one per link whose
        :meth:`Requirement.bucket_ahead` names a subscription: the writes a fresh cluster gets)."""
        demand: dict[str, float] = {}
        for requirement in self.requirements:
            subscription = requirement.bucket_ahead(cluster, options)
            if subscription is not None:
                demand[subscription] = demand.get(subscription, 0.0) + 1.0
        return demand

    def reads_ahead(self, cluster: ResourceId, options: PlanningOptions) -> list[Read[Any]]:
        """Every read the links can name from the cluster's id alone (:meth:`Requirement.reads_ahead`),
        deduplicated, in chain order."""
        wanted: dict[Read[Any], None] = {}
        for requirement in self.requirements:
            for read in requirement.reads_ahead(cluster, options):
                wanted[read] = None
        return list(wanted)
