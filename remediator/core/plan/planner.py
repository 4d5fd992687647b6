"""From the chain's verdicts to one reconcile's writes and outcome, pure.

``plan`` = gate -> evaluate every link -> every unsatisfied link whose dependencies are satisfied contributes
its write (so independent writes go out together) -> ``done`` only when EVERY link is satisfied. A failed read
withholds every write when the link that needed it can veto (``Requirement.vetoes``), else only that link's
(the container GET's 429 does not hold the extension PUT back); the read's error is the outcome either way. A
gating link (``Requirement.gates``: preflight, at the head of every chain) is a dependency of every later
link, so while it is blocked or waiting nothing is written. Precedence when links disagree: a failed read the
chain needed (the service maps the ARM error) > a superseded link (``done``: the goal is met by something to
leave alone, e.g. another vault's backup instance; nothing is written) > a blocked link (``gave_up``: a human
must act first; nothing is written) > writes (``done`` if every unsatisfied link is satisfied by its write at
once, else ``wait``) > waiting links (``wait``) > ``done``.
"""

from __future__ import annotations

from dataclasses import dataclass

from remediator.core.blockers import BlockerKind
from remediator.core.decision import Decision
from remediator.core.outcomes import Outcome
from remediator.core.plan.observed import Observed, ReadFailed
from remediator.core.plan.requirement import (
    EXTENSION_POLL_SECONDS,
    Blocked,
    Chain,
    Deferred,
    Missing,
    NotNeeded,
    PlanContext,
    Satisfied,
    Superseded,
    Unreadable,
    Verdict,
    Waiting,
    is_satisfied,
    state_of,
)
from remediator.core.plan.writes import Write
from remediator.core.preflight import Finding


@dataclass(frozen=True)
class Link:
    """One requirement's verdict in a plan (``title``: what the link means, for ``explain``)."""

    key: str
    verdict: Verdict
    title: str = ""

    @property
    def state(self) -> str:
        return state_of(self.verdict)

    @property
    def next_action(self) -> str:
        """What happens next for this link, in one line (``explain``)."""
        verdict = self.verdict
        if isinstance(verdict, Missing):
            wait = f", then look again in {verdict.wait_s:g} s" if verdict.wait_s is not None else ""
            return f"{verdict.write.kind.value} {verdict.write.detail} ({verdict.write.target}){wait}"
        if isinstance(verdict, Waiting):
            return f"look again in {verdict.retry_after_s:g} s"
        if isinstance(verdict, Blocked):
            return "a person must act (see why); the next event or sweep looks again"
        if isinstance(verdict, Deferred):
            return f"evaluated once {verdict.on} is satisfied"
        if isinstance(verdict, Unreadable):
            return "read again on the next reconcile"
        if isinstance(verdict, Superseded):
            return "nothing: left alone"
        return "nothing"

    def to_json(self) -> dict[str, str]:
        verdict = self.verdict
        if isinstance(verdict, Deferred):
            why = f"waits for {verdict.on}"
        elif isinstance(verdict, Unreadable):
            why = f"{verdict.read.label} failed: {verdict.error}"
        else:
            why = verdict.why
        data = {"link": self.key, "state": self.state, "why": why, "next": self.next_action}
        if self.title:
            data["title"] = self.title
        return data


@dataclass(frozen=True)
class Plan:
    """The next step for one cluster.

    :param outcome: how the reconcile ends once ``writes`` are accepted (or directly, without writes).
    :param writes: the writes, in chain order; independent of each other (send them together).
    :param links: every link's verdict, in chain order (for explain and reports).
    :param error: a read the chain needed failed with this error; the caller maps it to the outcome.
    :param findings: what preflight found (blockers and warnings), for the report, journal and events.
    """

    outcome: Outcome
    writes: tuple[Write, ...] = ()
    links: tuple[Link, ...] = ()
    error: BaseException | None = None
    findings: tuple[Finding, ...] = ()


def gate(decision: Decision) -> Outcome | None:
    """Skip, give up or wait because of the decision alone (no further reads needed), else ``None``.

    The blockers' own policy decides (:mod:`remediator.core.blockers`); a human blocker wins over a transient
    one: a stopped service-principal cluster needs a human either way.
    """
    if not decision.selected:
        return Outcome.skipped(str(decision.reason))
    human = [b for b in decision.blockers if b.kind is BlockerKind.HUMAN]
    if human:
        return Outcome.gave_up("; ".join(b.describe() for b in human))
    waiting = [b for b in decision.blockers if b.kind is not BlockerKind.HUMAN]
    if waiting:
        return Outcome.wait(EXTENSION_POLL_SECONDS, "; ".join(b.describe() for b in waiting))
    return None


def _verdicts(
    chain: Chain, ctx: PlanContext, observed: Observed, *, partial: bool = False
) -> dict[str, Verdict | None]:
    """Every link's verdict, in chain order: a link whose dependency (or gating link) is unsatisfied is
    :class:`Deferred`, a failed read :class:`Unreadable`. With ``partial`` (some reads still outstanding), a
    link is ``None`` (*open*) while a read it lists is not known, and so is every link that depends on an open
    one; without it, no verdict is ``None``."""
    verdicts: dict[str, Verdict | None] = {}
    gates: list[str] = []
    for requirement in chain.requirements:
        needs = list(dict.fromkeys([*gates, *requirement.depends_on]))
        if requirement.gates:
            gates.append(requirement.key)
        known = {d: verdicts[d] for d in needs}
        unmet = [d for d, v in known.items() if v is not None and not is_satisfied(v)]
        verdict: Verdict | None
        if any(v is None for v in known.values()):
            verdict = None
        elif unmet:
            verdict = Deferred(unmet[0])
        elif partial and not all(observed.knows(read) for read in requirement.reads(ctx, observed)):
            verdict = None
        else:
            try:
                verdict = requirement.evaluate(ctx, observed)
            except ReadFailed as failed:
                verdict = Unreadable(failed.read, failed.error)
        verdicts[requirement.key] = verdict
    return verdicts


def evaluate(chain: Chain, ctx: PlanContext, observed: Observed) -> tuple[Link, ...]:
    """Every link's verdict, in chain order (a link whose dependency is unsatisfied is :class:`Deferred`)."""
    verdicts = _verdicts(chain, ctx, observed)
    links: list[Link] = []
    for requirement in chain.requirements:
        verdict = verdicts[requirement.key]
        assert verdict is not None  # every read is in: no link is open
        links.append(Link(requirement.key, verdict, requirement.title))
    return tuple(links)


def settled_writes(chain: Chain, ctx: PlanContext, observed: Observed) -> tuple[Write, ...]:
    """The writes :func:`plan` will emit whatever the reads not made yet answer, so they can be sent before
    those answers are in (issue 11: the extension PUT does not wait for the container GET of its round).

    A link is *open* while a read it lists is not known, and so is every link that depends on (or is gated
    by) an open one. Nothing is settled while :func:`plan` could still withhold every write: a known verdict
    that stops them (a failed read of a link that can veto, a blocked or superseded link), or an open link
    that could (:attr:`Requirement.vetoes`). A link that cannot veto only withholds its own write (and its
    dependents') when its read fails, in :func:`plan` as here, so what is sent does not depend on which
    answer came first.
    """
    if gate(ctx.decision) is not None:
        return ()
    verdicts = _verdicts(chain, ctx, observed, partial=True)
    for requirement in chain.requirements:
        verdict = verdicts[requirement.key]
        if isinstance(verdict, Blocked | Superseded):
            return ()
        if requirement.vetoes and (verdict is None or isinstance(verdict, Unreadable)):
            return ()
    return tuple(v.write for v in verdicts.values() if isinstance(v, Missing))


def _read_failed(failed: Unreadable) -> Outcome:
    """The plan's outcome when a read the chain needed failed (the service maps ``failed.error`` instead)."""
    return Outcome.wait(EXTENSION_POLL_SECONDS, f"{failed.read.label} failed: {failed.error}")


def findings_of(links: tuple[Link, ...]) -> tuple[Finding, ...]:
    """Every finding the links' verdicts carry, in chain order."""
    found: list[Finding] = []
    for link in links:
        found.extend(getattr(link.verdict, "findings", ()))
    return tuple(found)


def plan(chain: Chain, ctx: PlanContext, observed: Observed) -> Plan:
    """The next step for one cluster (see the module docstring for the precedence)."""
    gated = gate(ctx.decision)
    if gated is not None:
        return Plan(gated)
    links = evaluate(chain, ctx, observed)
    findings = findings_of(links)
    verdicts = [link.verdict for link in links]
    vetoing = {r.key for r in chain.requirements if r.vetoes}
    unreadable = [(link.key, link.verdict) for link in links if isinstance(link.verdict, Unreadable)]
    failed = unreadable[0][1] if unreadable else None
    if failed is not None and any(key in vetoing for key, _ in unreadable):
        return Plan(_read_failed(failed), links=links, error=failed.error, findings=findings)
    superseded = [v for v in verdicts if isinstance(v, Superseded)]
    if superseded:  # the goal is met by something to leave alone: nothing is written
        return Plan(Outcome.done(superseded[0].why), links=links, findings=findings)
    blocked = [v for v in verdicts if isinstance(v, Blocked)]
    if blocked:
        return Plan(Outcome.gave_up(blocked[0].why), links=links, findings=findings)
    missing = [v for v in verdicts if isinstance(v, Missing)]
    waiting = [v for v in verdicts if isinstance(v, Waiting)]
    settled = [v.why for v in verdicts if isinstance(v, Satisfied | NotNeeded)]
    writes = tuple(v.write for v in missing)
    waits = [(v.wait_s, v.why) for v in missing if v.wait_s is not None]
    waits += [(v.retry_after_s, v.why) for v in waiting]
    deferred = any(isinstance(v, Deferred) for v in verdicts)
    if failed is not None:
        # only links that cannot veto failed to read: the other links' writes go; the error is the outcome
        return Plan(_read_failed(failed), writes=writes, links=links, error=failed.error, findings=findings)
    if waits:
        retry = min(seconds for seconds, _ in waits)
        why = "; ".join(why for _, why in waits)
        return Plan(Outcome.wait(retry, why), writes=writes, links=links, findings=findings)
    if deferred:  # a dependency is missing and will be written now; look again soon
        why = "; ".join(v.why for v in missing) or "waiting for a dependency"
        return Plan(Outcome.wait(chain.deferred_wait_s, why), writes=writes, links=links, findings=findings)
    done = Outcome.done("; ".join([*settled, *(v.why for v in missing)]))
    return Plan(done, writes=writes, links=links, findings=findings)
