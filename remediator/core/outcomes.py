"""The typed result of one reconcile, shared by the journal, HTTP, the CLI and outcome events.

A reconcile ends in exactly one of four outcomes (``done``, ``wait``, ``gave_up``, ``skipped``) and carries
the actions it took or, in audit mode and dry runs, would have taken. Every consumer (journal rows, HTTP
bodies, CLI output, Event Grid outcome events, the queue worker deciding whether to re-enqueue) reads this
one shape, so its JSON form is stable and round-trips.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class OutcomeKind(StrEnum):
    """How a reconcile ended."""

    DONE = "done"
    """The cluster is in the wanted state (or is gone); nothing more to do."""
    WAIT = "wait"
    """Progress needs time (an operation is running, ARM throttled us, a transient error): come back later."""
    GAVE_UP = "gave_up"
    """A human must act (a blocker, a missing permission, too many failed installs)."""
    SKIPPED = "skipped"
    """The cluster is not selected by the config; nothing was written."""


class WriteKind(StrEnum):
    """A kind of write the reconciler makes (or plans, in audit mode and dry runs). Each kind has one pure
    write type in :mod:`remediator.core.plan.writes` and one spec in ``service/reconcile/writes.py``."""

    CREATE_CONTAINER = "create-container"
    CREATE_EXTENSION = "create-extension"
    REINSTALL_EXTENSION = "reinstall-extension"
    ASSIGN_ROLE = "assign-role"
    """One role assignment (principal, role, scope); the storage grant and, in protect mode, the vault's."""
    CREATE_REMEDIATION_TASK = "create-remediation-task"


ActionKind = WriteKind
"""The former name of :class:`WriteKind`, kept while parallel branches still import it (delete after
the merge)."""

_LEGACY_KINDS = {"grant-storage-access": WriteKind.ASSIGN_ROLE}
"""Journal rows written before role assignments became one generic kind."""


class ActionStatus(StrEnum):
    """What happened to one action."""

    PLANNED = "planned"
    """Audit mode or dry run: the action would be taken; nothing was written."""
    DONE = "done"
    """The write was sent and accepted (for long operations: started)."""
    EXISTS = "exists"
    """The target already existed in the wanted shape; nothing new was created."""
    CLAIMED_ELSEWHERE = "claimed-elsewhere"
    """Another reconcile holds the claim for this write; it was not sent again."""
    FAILED = "failed"
    """The write was sent and refused; the outcome says why."""
    DEFERRED = "deferred"
    """Write pacing held the write back (the subscription's write bucket was empty); it was not sent."""


@dataclass(frozen=True)
class Action:
    """One write against Azure, planned or taken.

    :param kind: what kind of write.
    :param target: the ARM id the write addresses.
    :param status: what happened.
    :param detail: one line of context (an error code, an operation state), may be empty.
    :param link: the requirement (link of the chain) the write satisfies, e.g. ``extension-installed``.
    """

    kind: WriteKind
    target: str
    status: ActionStatus
    detail: str = ""
    link: str = ""

    def to_json(self) -> dict[str, str]:
        return {
            "kind": self.kind.value,
            "link": self.link,
            "target": self.target,
            "status": self.status.value,
            "detail": self.detail,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Action:
        kind = str(data["kind"])
        return cls(
            kind=_LEGACY_KINDS.get(kind) or WriteKind(kind),
            target=str(data["target"]),
            status=ActionStatus(data["status"]),
            detail=str(data.get("detail", "")),
            link=str(data.get("link", "")),
        )


@dataclass(frozen=True)
class Outcome:
    """How one reconcile ended. Build it with the class methods, not the constructor.

    :param kind: done / wait / gave_up / skipped.
    :param why: one human-readable line (the blocker, the error, the state waited for).
    :param retry_after_s: for ``wait`` only: seconds until it is worth trying again.
    """

    kind: OutcomeKind
    why: str
    retry_after_s: float | None = None

    @classmethod
    def done(cls, why: str) -> Outcome:
        return cls(OutcomeKind.DONE, why)

    @classmethod
    def wait(cls, retry_after_s: float, why: str) -> Outcome:
        if retry_after_s < 0:
            raise ValueError("retry_after_s must not be negative")
        return cls(OutcomeKind.WAIT, why, float(retry_after_s))

    @classmethod
    def gave_up(cls, why: str) -> Outcome:
        return cls(OutcomeKind.GAVE_UP, why)

    @classmethod
    def skipped(cls, reason: str) -> Outcome:
        return cls(OutcomeKind.SKIPPED, reason)

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind.value, "why": self.why, "retryAfterSeconds": self.retry_after_s}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Outcome:
        retry = data.get("retryAfterSeconds")
        return cls(OutcomeKind(data["kind"]), str(data["why"]), None if retry is None else float(retry))


class EventType(StrEnum):
    """Event types of the outcome events published to the Event Grid custom topic."""

    INSTALLED = "AksBackupRemediator.Installed"
    INSTALL_STARTED = "AksBackupRemediator.InstallStarted"
    REMEDIATION_TASK_CREATED = "AksBackupRemediator.RemediationTaskCreated"
    SKIPPED = "AksBackupRemediator.Skipped"
    GAVE_UP = "AksBackupRemediator.GaveUp"
    SWEEP_COMPLETED = "AksBackupRemediator.SweepCompleted"


@dataclass(frozen=True)
class ReconcileReport:
    """Everything one reconcile decided, did and concluded.

    :param cluster_id: the cluster's ARM id as given.
    :param decision: the core decision as JSON (``Decision.to_json()``); ``None`` when the cluster was not
    found.
    :param outcome: how the reconcile ended.
    :param actions: the writes taken (or planned, when ``dry_run`` or mode ``audit``), in order.
    :param mode: the remediation mode in force (``install``, ``policy-task``, ``audit``).
    :param dry_run: whether writes were suppressed by the caller.
    :param attempt: how many times this cluster's work item was retried before this reconcile.
    :param extension_state: provisioningState of the backup extension observed, if any.
    :param started_at: ISO-8601 UTC time the reconcile started (set by the service).
    :param correlation_id: ties the report to the work item / event / request that caused it.
    :param links: the chain's links and their states.
    :param caller: who asked for it, when an HTTP request did (``core.caller.Caller.label``); ``None`` for
        events, the queue and the sweep.
    :param findings: what preflight found (``Finding.to_json()``: code, severity, kind, remedy, evidence),
        blockers and warnings alike.
    """

    cluster_id: str
    decision: Mapping[str, Any] | None
    outcome: Outcome
    actions: Sequence[Action] = field(default_factory=tuple)
    mode: str = "install"
    dry_run: bool = False
    attempt: int = 0
    extension_state: str | None = None
    started_at: str = ""
    correlation_id: str = ""
    links: Sequence[Mapping[str, str]] = field(default_factory=tuple)
    """Every link of the mode's chain with its state (``{"link", "state", "why"}``), when the chain was
    evaluated (not for a skipped or gated cluster)."""
    caller: str | None = None
    findings: Sequence[Mapping[str, Any]] = field(default_factory=tuple)
    """Preflight findings (blockers and warnings), when the chain was evaluated."""

    @property
    def wrote(self) -> bool:
        """Whether any write was actually sent (planned actions do not count)."""
        return any(a.status in (ActionStatus.DONE, ActionStatus.FAILED) for a in self.actions)

    def event_type(self) -> EventType | None:
        """The outcome event this report warrants, or ``None`` (plain waits and quiet dones publish nothing).

        ``Installed`` needs the extension Succeeded; ``InstallStarted`` an extension create (or re-install)
        sent by this reconcile; ``RemediationTaskCreated`` a task created by this reconcile.
        """
        if self.dry_run or self.mode == "audit":
            return None
        kind = self.outcome.kind
        if kind is OutcomeKind.SKIPPED:
            return EventType.SKIPPED
        if kind is OutcomeKind.GAVE_UP:
            return EventType.GAVE_UP
        sent = {a.kind for a in self.actions if a.status is ActionStatus.DONE}
        if WriteKind.CREATE_REMEDIATION_TASK in sent:
            return EventType.REMEDIATION_TASK_CREATED
        if sent & {WriteKind.CREATE_EXTENSION, WriteKind.REINSTALL_EXTENSION}:
            return EventType.INSTALL_STARTED
        if kind is OutcomeKind.DONE and self.extension_state == "Succeeded" and sent:
            return EventType.INSTALLED
        return None

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "clusterId": self.cluster_id,
            "decision": dict(self.decision) if self.decision is not None else None,
            "outcome": self.outcome.to_json(),
            "actions": [a.to_json() for a in self.actions],
            "mode": self.mode,
            "dryRun": self.dry_run,
            "attempt": self.attempt,
            "extensionState": self.extension_state,
            "startedAt": self.started_at,
            "correlationId": self.correlation_id,
            "links": [dict(link) for link in self.links],
            "findings": [dict(finding) for finding in self.findings],
        }
        if self.caller is not None:  # additive: reports without a caller keep their earlier shape
            body["caller"] = self.caller
        return body

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ReconcileReport:
        decision = data.get("decision")
        return cls(
            cluster_id=str(data["clusterId"]),
            decision=dict(decision) if isinstance(decision, Mapping) else None,
            outcome=Outcome.from_json(data["outcome"]),
            actions=tuple(Action.from_json(a) for a in data.get("actions", ())),
            mode=str(data.get("mode", "install")),
            dry_run=bool(data.get("dryRun", False)),
            attempt=int(data.get("attempt", 0)),
            extension_state=data.get("extensionState"),
            started_at=str(data.get("startedAt", "")),
            correlation_id=str(data.get("correlationId", "")),
            links=tuple(
                {str(k): str(v) for k, v in link.items()}
                for link in data.get("links", ())
                if isinstance(link, Mapping)
            ),
            caller=str(data["caller"]) if data.get("caller") is not None else None,
            findings=tuple(dict(f) for f in data.get("findings", ()) if isinstance(f, Mapping)),
        )
