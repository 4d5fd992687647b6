"""One executor for any chain's writes: claim -> re-check (where the spec asks) -> pace -> apply.

- **Claims** (``adapters/claims.py``) make each write exactly-once across Function instances. The claims a
  fresh cluster would need are taken while the reconcile reads (:meth:`HeldClaims.take_ahead`), so on the
  event path the claim is off the critical path. Each write is guarded by its own claim: the writes whose
  claims another reconcile holds are left to it, the others go ahead. A held claim is a short lease renewed
  while this reconcile works, so a process that dies holds nobody up for more than the lease (issue 17). A
  claim is released on every path where its write was not sent (:meth:`HeldClaims.release_unkept` runs in a
  ``finally``): a re-check says the state moved, a re-check fails (issue 17 F1), pacing defers, a write
  fails. After its write was sent a claim is *settled*: kept a while (``SETTLE_S``) so a reconcile whose
  reads predate the write cannot repeat it; a reconcile never writes on reads older than ``MAX_PLAN_AGE_S``.
  A claim taken over from a holder that stopped renewing mid-write makes the reconcile read again first (the
  holder may have written just before it died).
- **Re-checks** run together, only for specs that ask (``writes.py``).
- **Pacing** takes one token per write from its subscription's bucket, all or nothing; a short wait is
  slept, a longer one becomes a ``wait`` outcome with every write ``deferred``. When the bucket is shared
  through Table Storage, the tokens a fresh cluster's writes need are drawn while the reconcile reads
  (:class:`TokensAhead`, like the claims); the writes spend them, and the unspent ones are given back.
- **Writes** go out together (they are independent by construction: the planner only emits writes whose
  dependencies are satisfied), a long-running one first, on the reconcile's own thread. Every write's action
  is recorded; the first error, in chain order, is raised after all of them finished.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import wait as wait_for_futures
from dataclasses import dataclass, field
from functools import partial
from typing import Protocol, TypeVar, runtime_checkable

from remediator.adapters.arm import ArmError
from remediator.adapters.claims import MAX_PLAN_AGE_S, Claim, ClaimHolder, WriteClaims
from remediator.adapters.leases import new_owner
from remediator.core.ids import ResourceId
from remediator.core.outcomes import Action, ActionStatus, Outcome
from remediator.core.pacing import Pacer, PaceVerdict, resource_type_of
from remediator.core.plan.writes import Write
from remediator.core.text import ignore_case_key
from remediator.service.reconcile.gateways import ReconcileIO
from remediator.service.reconcile.writes import REGISTRY, Applied, Recheck, WriteSpec

logger = logging.getLogger(__name__)

T = TypeVar("T")

CLAIMED_ELSEWHERE_WAIT_S = 30.0
"""The longest wait when another reconcile holds a claim this one needs (it is shorter when the holder's
lease or settle time runs out sooner)."""

CLAIM_EXPIRY_MARGIN_S = 1.0
"""Added to a holder's remaining time, so the retry comes just after the claim runs out."""

TAKEN_OVER_WAIT_S = 1.0
"""The wait after taking over a claim whose holder died mid-write: the next reconcile reads the state anew."""

STALE_READS_WAIT_S = 1.0
"""The wait when a reconcile's reads are too old to write on (``MAX_PLAN_AGE_S``)."""

STATE_MOVED_WAIT_S = 5.0
"""How long to wait when a re-check after claiming found the write no longer needed."""


def action_for(write: Write, status: ActionStatus, detail: str) -> Action:
    """The report's record of a write."""
    return Action(write.kind, write.target.canonical, status, detail, write.link)


class HeldClaims:
    """The claims one reconcile holds (or is taking), by name.

    Held claims are renewed by the process's lease renewer while the reconcile works; a claim whose write was
    sent is *settled* (kept a while, no longer renewed), every other one is released
    (:meth:`release_unkept`, in the reconciler's ``finally``).

    :param claims: the claim store; ``None``: no claims (journal-less CLI use).
    :param cluster: the cluster.
    :param ttl_s: the lease of a held claim.
    :keyword clock: monotonic seconds (the age of the reconcile's reads is measured from construction, which
        the reconciler does before it reads).
    """

    def __init__(
        self,
        claims: WriteClaims | None,
        cluster: ResourceId,
        *,
        ttl_s: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._claims = claims
        self._cluster = cluster
        self._ttl_s = ttl_s
        self._clock = clock
        self.started = clock()
        self._pending: dict[str, Future[Claim | None]] = {}
        self._held: dict[str, Claim] = {}
        self._kept: set[str] = set()
        self._owners: dict[str, str] = {}
        self._lock = threading.Lock()

    def _key(self, name: str, scope: ResourceId | None) -> str:
        """Claims in the cluster's partition are keyed by name; a claim on a shared resource (``scope``, e.g.
        a region's backup vault) by scope and name."""
        return name if scope is None or scope == self._cluster else f"{scope.key}|{name}"

    @property
    def enabled(self) -> bool:
        return self._claims is not None

    def age(self) -> float:
        """Seconds since this reconcile began reading."""
        return self._clock() - self.started

    def _try(self, name: str, scope: ResourceId | None = None) -> Claim | None:
        assert self._claims is not None
        with self._lock:  # one owner per claim and reconcile, so a retry recognises its own row
            owner = self._owners.setdefault(self._key(name, scope), new_owner())
        on = self._cluster if scope is None else scope
        claim = self._claims.try_claim(on, name, ttl_s=self._ttl_s, owner=owner)
        if claim is not None:
            self._claims.hold(claim)
        return claim

    def take_ahead(self, names: Sequence[str], pool: ThreadPoolExecutor) -> None:
        """Start taking ``names`` in the background (the reconcile reads meanwhile)."""
        if self._claims is None:
            return
        for name in names:
            self._pending[name] = pool.submit(self._try, name)

    def take(self, name: str, scope: ResourceId | None = None) -> bool:
        """Hold ``name`` (on ``scope``, default the cluster): the claim taken ahead if it was won, else one
        try now. ``False``: held elsewhere."""
        claims = self._claims
        if claims is None:
            return True
        key = self._key(name, scope)
        if key in self._held:
            return True
        pending = self._pending.pop(key, None)
        claim: Claim | None = None
        if pending is not None:
            try:
                claim = pending.result()
            except Exception:  # taken ahead and failed (storage hiccup): try once more, now, and let it raise
                logger.debug(
                    "claim %s on %s taken ahead failed; trying again", name, self._cluster, exc_info=True
                )
        if claim is None:
            claim = self._try(name, scope)
        if claim is None:
            return False
        with self._lock:
            self._held[key] = claim
        return True

    def taken_over(self) -> dict[str, str]:
        """Held claims taken over from a holder that stopped renewing mid-write: claim key -> that holder."""
        with self._lock:  # an early wave of writes may be taking its claims meanwhile
            held = list(self._held.items())
        return {key: claim.taken_over_from for key, claim in held if claim.taken_over_from is not None}

    def lost(self) -> list[str]:
        """Held claims a renewal found taken over (this process stalled past the lease)."""
        with self._lock:
            held = list(self._held.items())
        return [key for key, claim in held if claim.lost]

    def holder(self, name: str, scope: ResourceId | None = None) -> ClaimHolder | None:
        """Who holds ``name`` (on ``scope``, default the cluster) elsewhere now (``None``: nobody, or no
        claims)."""
        if self._claims is None:
            return None
        on = self._cluster if scope is None else scope
        try:
            return self._claims.holder_info(on, name)
        except Exception:  # diagnostics only
            logger.debug("reading the holder of %s on %s failed", name, on, exc_info=True)
            return None

    def keep(self, name: str, scope: ResourceId | None = None) -> None:
        """Keep ``name`` (on ``scope``) after the reconcile (its write was sent): it is settled, then expires
        on its own."""
        self._kept.add(self._key(name, scope))

    def release_unkept(self) -> None:
        """Settle every claim whose write was sent; release every other one held (or still being taken)."""
        claims = self._claims
        if claims is None:
            return
        for name, pending in list(self._pending.items()):
            try:
                claim = pending.result()
            except Exception:
                logger.debug("claim %s taken ahead failed", name, exc_info=True)
                continue
            if claim is not None:
                self._held[name] = claim
        self._pending.clear()
        for name, claim in list(self._held.items()):
            try:
                if name in self._kept:
                    claims.settle(claim)
                else:
                    claims.release(claim)
            except Exception:  # the lease runs out on its own; never mask the reconcile's own outcome
                claims.renewer.untrack(claim)
                logger.warning("settling/releasing claim %s on %s failed", name, self._cluster, exc_info=True)
            del self._held[name]


@runtime_checkable
class DrawsAhead(Protocol):
    """A pacer whose write tokens cost I/O to take (the shared budget in Table Storage,
    ``adapters/shared_pacing.SharedWritePacer``), so a reconcile takes them while it reads."""

    def draw_ahead(self, demand: Mapping[str, float]) -> dict[str, float]: ...

    def give_back(self, drawn: Mapping[str, float]) -> None: ...

    def try_acquire_prepaid(
        self,
        demand: Mapping[str, float],
        prepaid: Mapping[str, float],
        *,
        max_wait_s: float,
        resource_types: Mapping[str, Collection[str]] | None = None,
    ) -> tuple[PaceVerdict, dict[str, float]]: ...


class TokensAhead:
    """The write tokens one reconcile took while it read (its writes' table round trips off the critical
    path, as its claims are: :class:`HeldClaims`).

    Tokens are drawn only from a pacer that :class:`DrawsAhead`; the writes spend them
    (:meth:`Executor.execute`), and whatever no write spent is given back (:meth:`give_back_unspent`, in the
    reconciler's ``finally``).
    """

    def __init__(self, pacer: Pacer | None) -> None:
        self._pacer = pacer if isinstance(pacer, DrawsAhead) else None
        self._pending: Future[dict[str, float]] | None = None
        self._unspent: dict[str, float] = {}
        # an early wave of writes spends beside the reconcile's own thread; re-entrant: _collect under it
        self._lock = threading.RLock()

    def take_ahead(self, demand: Mapping[str, float], pool: ThreadPoolExecutor) -> None:
        """Start drawing ``demand`` (subscription -> tokens) in the background."""
        pacer = self._pacer
        if pacer is None or not demand or self._pending is not None:
            return
        self._pending = pool.submit(pacer.draw_ahead, dict(demand))

    def _collect(self) -> dict[str, float]:
        """What was drawn ahead and is not spent yet (waits for the draw to finish)."""
        with self._lock:
            pending, self._pending = self._pending, None
            if pending is not None:
                try:
                    for subscription, n in pending.result().items():
                        self._unspent[subscription] = self._unspent.get(subscription, 0.0) + n
                except Exception:  # draw_ahead catches storage errors itself; anything else: at write time
                    logger.debug("drawing write tokens ahead failed", exc_info=True)
            return dict(self._unspent)

    def covers(self, demand: Mapping[str, float]) -> bool:
        """Whether the tokens drawn ahead and not spent hold ``demand`` (subscription -> tokens); waits for
        the draw to finish. ``False`` when nothing could be drawn ahead (a pacer that does not draw ahead)."""
        if self._pacer is None:
            return False
        unspent = {ignore_case_key(k): n for k, n in self._collect().items()}
        return all(unspent.get(ignore_case_key(k), 0.0) >= n for k, n in demand.items())

    def acquire(
        self,
        pacer: Pacer,
        demand: Mapping[str, float],
        *,
        max_wait_s: float,
        resource_types: Mapping[str, Collection[str]],
    ) -> PaceVerdict:
        """``pacer.try_acquire`` for ``demand``, spending the tokens drawn ahead first."""
        if self._pacer is None or pacer is not self._pacer:
            return pacer.try_acquire(demand, max_wait_s=max_wait_s, resource_types=resource_types)
        with self._lock:
            prepaid = self._collect()
            verdict, self._unspent = self._pacer.try_acquire_prepaid(
                demand, prepaid, max_wait_s=max_wait_s, resource_types=resource_types
            )
        return verdict

    def give_back_unspent(self) -> None:
        """Return every token drawn ahead that no write spent."""
        with self._lock:
            unspent = self._collect()
            self._unspent = {}
        if unspent and self._pacer is not None:
            self._pacer.give_back(unspent)


class PhaseTimings(dict[str, float]):
    """Seconds one reconcile spent per phase (cluster GET, reads, claims, re-checks, pacing, writes, release,
    journal), in the order the phases were first entered: its log line says where a slow reconcile's time
    went."""

    def add(self, phase: str, since: float) -> None:
        """Count the time from ``since`` (``time.monotonic()``) to now under ``phase``."""
        self[phase] = self.get(phase, 0.0) + time.monotonic() - since

    def describe(self, total_s: float) -> str:
        """``2.31 s (cluster 0.10, reads 1.80, writes 0.30, journal 0.05)``."""
        spent = ", ".join(f"{phase} {seconds:.2f}" for phase, seconds in self.items())
        return f"{total_s:.2f} s ({spent})" if spent else f"{total_s:.2f} s"


@dataclass
class Execution:
    """What the executor did: the actions, and the outcome if it differs from the plan's (a wait because of
    a claim, a moved state or pacing). ``error``: the first failed write's error (the caller maps it)."""

    actions: list[Action] = field(default_factory=list)
    outcome: Outcome | None = None
    error: ArmError | None = None
    elsewhere: Outcome | None = None
    """Some writes went ahead while another reconcile holds the claims of the others: the wait for those."""

    def _only_elsewhere(self) -> bool:
        """Every write of this execution is another reconcile's to send (its outcome is that claim's wait)."""
        return bool(self.actions) and all(a.status is ActionStatus.CLAIMED_ELSEWHERE for a in self.actions)

    def then(self, later: Execution) -> Execution:
        """This execution (the writes settled early, ``planner.settled_writes``) followed by ``later`` (the
        rest of the plan's writes), reported as one: every action; the first error; an outcome of either
        (a stale read, a taken-over or lost claim, pacing, a moved state) wins; writes left to another
        reconcile make the outcome that claim's wait when nothing else was sent, else ``elsewhere``."""
        both = (self, later)
        merged = Execution(actions=[*self.actions, *later.actions], error=self.error or later.error)
        own = [e.outcome for e in both if e.outcome is not None and not e._only_elsewhere()]
        if own:
            merged.outcome = own[0]
            return merged
        waits = [e.outcome if e._only_elsewhere() else e.elsewhere for e in both]
        claimed = [w for w in waits if w is not None]
        if not claimed:
            return merged
        if all(e._only_elsewhere() for e in both if e.actions):
            merged.outcome = claimed[0]
        else:
            merged.elsewhere = min(claimed, key=lambda w: w.retry_after_s or 0.0)
        return merged


class Executor:
    """Runs writes for the reconciler.

    :param io: the adapters.
    :param pool: threads for concurrent re-checks and writes (the first runs on the caller's thread).
    :keyword pacer: the process's ARM write pacer; ``None`` = writes are not paced.
    :keyword max_pacing_wait_s: the longest pacing wait slept (longer: a ``wait`` outcome).
    :keyword max_wait_s: the longest wait an outcome asks for.
    :keyword registry: the write specs (tests pass their own).
    """

    def __init__(
        self,
        io: ReconcileIO,
        pool: Callable[[], ThreadPoolExecutor],
        *,
        pacer: Pacer | None = None,
        max_pacing_wait_s: float = 1.0,
        max_wait_s: float = 600.0,
        registry: dict[object, WriteSpec[Write]] | None = None,
    ) -> None:
        self.io = io
        self._pool = pool
        self.pacer = pacer
        self.max_pacing_wait_s = max_pacing_wait_s
        self.max_wait_s = max_wait_s
        self.registry = registry if registry is not None else REGISTRY

    def _spec(self, write: Write) -> WriteSpec[Write]:
        return self.registry[write.kind]

    def execute(
        self,
        writes: Sequence[Write],
        held: HeldClaims,
        tokens: TokensAhead | None = None,
        *,
        timings: PhaseTimings | None = None,
    ) -> Execution:
        """Claim, re-check, pace and send ``writes`` (see the module docstring). Claims not kept are left for
        the caller's :meth:`HeldClaims.release_unkept`, write tokens drawn ahead (``tokens``) and not spent
        for its :meth:`TokensAhead.give_back_unspent`; the phases' times are added to ``timings``."""
        result = Execution()
        timings = timings if timings is not None else PhaseTimings()
        claims = list(dict.fromkeys((w.claim, w.claim_scope) for w in writes))
        if held.enabled and held.age() > MAX_PLAN_AGE_S:
            for write in writes:
                result.actions.append(action_for(write, ActionStatus.DEFERRED, "reads too old"))
            result.outcome = Outcome.wait(
                STALE_READS_WAIT_S,
                f"the reads are {held.age():.0f} s old (more than {MAX_PLAN_AGE_S:.0f} s); reading again"
                " before writing",
            )
            return result
        started = time.monotonic()
        elsewhere = [(name, scope) for name, scope in claims if not held.take(name, scope)]
        timings.add("claims", started)
        if elsewhere:
            claim_wait = self._claimed_elsewhere(writes, elsewhere, held, result)
            writes = [w for w in writes if (w.claim, w.claim_scope) not in elsewhere]
            claims = [c for c in claims if c not in elsewhere]
            if not writes:  # every write is another reconcile's to send
                result.outcome = claim_wait
                return result
            # The writes under claims this reconcile holds go ahead: they are independent of the others by
            # construction, so two reconciles that each won some of a cluster's claims (taken ahead, at the
            # same moment) send one share each instead of both standing down (issue 17).
            result.elsewhere = claim_wait
        taken_over = held.taken_over()
        if taken_over:
            name, previous = next(iter(taken_over.items()))
            for write in writes:
                result.actions.append(action_for(write, ActionStatus.DEFERRED, f"{write.claim} taken over"))
            result.outcome = Outcome.wait(
                TAKEN_OVER_WAIT_S,
                f"took over the {name} claim from {previous}, which stopped renewing it mid-write;"
                " reading the state again before writing",
            )
            return result
        started = time.monotonic()
        moved = self._recheck(writes)
        timings.add("rechecks", started)
        if moved is not None:
            result.outcome = Outcome.wait(STATE_MOVED_WAIT_S, f"state changed while claiming: {moved}")
            return result
        started = time.monotonic()
        deferred = self._pace(writes, tokens)
        timings.add("pacing", started)
        if deferred is not None:
            for write in writes:
                result.actions.append(action_for(write, ActionStatus.DEFERRED, deferred.why))
            result.outcome = deferred
            return result
        lost = held.lost()
        if lost:
            for write in writes:
                result.actions.append(action_for(write, ActionStatus.DEFERRED, f"{write.claim} lost"))
            result.outcome = Outcome.wait(
                TAKEN_OVER_WAIT_S,
                f"the {lost[0]} claim was taken over while this reconcile stalled; nothing written",
            )
            return result
        started = time.monotonic()
        outcomes = self._apply(writes)
        timings.add("writes", started)
        # A claim is kept when a write under it was sent and asks for it (keep_claim), whatever happened to
        # the other writes under it; every other claim is released by the caller (no write was sent under it,
        # or its write is safe to repeat at once).
        kept: set[tuple[str, ResourceId | None]] = set()
        for write, (applied, error) in zip(writes, outcomes, strict=True):
            if error is not None:
                result.actions.append(action_for(write, ActionStatus.FAILED, str(error)))
                if result.error is None:
                    result.error = error
                continue
            assert applied is not None
            result.actions.append(action_for(write, applied.status, applied.detail))
            if write.keep_claim:
                kept.add((write.claim, write.claim_scope))
        for name, scope in claims:
            if (name, scope) in kept:
                held.keep(name, scope)
        return result

    def _claimed_elsewhere(
        self,
        writes: Sequence[Write],
        elsewhere: Sequence[tuple[str, ResourceId | None]],
        held: HeldClaims,
        result: Execution,
    ) -> Outcome:
        """Record the writes whose claims another reconcile holds; the wait until that claim runs out."""
        holder = held.holder(*elsewhere[0])
        wait = CLAIMED_ELSEWHERE_WAIT_S
        by = ""
        if holder is not None:
            left = holder.expires_at - time.time()
            wait = min(CLAIMED_ELSEWHERE_WAIT_S, max(1.0, left + CLAIM_EXPIRY_MARGIN_S))
            by = f" by {holder.owner} ({holder.state}, {max(0.0, left):.0f} s left)"
        for write in writes:
            if (write.claim, write.claim_scope) in elsewhere:
                result.actions.append(
                    action_for(write, ActionStatus.CLAIMED_ELSEWHERE, f"{write.claim} held{by}")
                )
        name, scope = elsewhere[0]
        on = "this cluster" if scope is None else str(scope.name)
        return Outcome.wait(
            min(wait, self.max_wait_s), f"another reconcile holds the {name} claim for {on}{by}"
        )

    def _apply(self, writes: Sequence[Write]) -> list[tuple[Applied | None, ArmError | None]]:
        """Send ``writes`` together; each result or ARM error, in the writes' order. A long-running write goes
        first, on this thread (no hand-off to the pool before it leaves: it takes longest to complete)."""
        order = sorted(range(len(writes)), key=lambda i: not self._spec(writes[i]).long_running)
        sent = self._together([partial(self._spec(writes[i]).apply, self.io, writes[i]) for i in order])
        results: list[tuple[Applied | None, ArmError | None]] = [(None, None)] * len(writes)
        for position, index in enumerate(order):
            results[index] = sent[position]
        return results

    def _recheck(self, writes: Sequence[Write]) -> str | None:
        """Why a write is no longer needed (first in chain order), or ``None``. An ARM error propagates."""
        checks: list[Callable[[], str | None]] = []
        for write in writes:
            recheck = self._spec(write).recheck
            if isinstance(recheck, Recheck):
                checks.append(partial(recheck.moved, self.io, write))
        results = self._together(checks)
        for _, error in results:
            if error is not None:
                raise error
        return next((moved for moved, _ in results if moved), None)

    def _pace(self, writes: Sequence[Write], tokens: TokensAhead | None = None) -> Outcome | None:
        """One write token per write from its subscription's bucket, all or nothing (spending the tokens
        drawn ahead first); ``None`` = go ahead."""
        if self.pacer is None:
            return None
        demand: dict[str, float] = {}
        types: dict[str, set[str]] = {}
        for write in writes:
            demand[write.bucket_subscription] = demand.get(write.bucket_subscription, 0.0) + 1.0
            answers = types.setdefault(write.bucket_subscription, set())
            answers.add(resource_type_of(write.target.canonical))  # the quotas of its resource type
            answers.add(ignore_case_key(write.target.canonical))  # a provider's hold on this one resource
        if tokens is not None:
            verdict = tokens.acquire(
                self.pacer, demand, max_wait_s=self.max_pacing_wait_s, resource_types=types
            )
        else:
            verdict = self.pacer.try_acquire(demand, max_wait_s=self.max_pacing_wait_s, resource_types=types)
        if verdict.granted:
            return None
        why = (
            f"pacing ARM writes: subscription {verdict.subscription_id}'s write bucket refills in"
            f" {verdict.wait_s:.1f} s; nothing written"
        )
        return Outcome.wait(min(max(verdict.wait_s, self.max_pacing_wait_s), self.max_wait_s), why)

    def _together(self, calls: Sequence[Callable[[], T]]) -> list[tuple[T | None, ArmError | None]]:
        """Run calls concurrently (the first on this thread); each result or its ARM error, in order. Any
        other exception propagates once every call finished."""
        if not calls:
            return []
        futures: list[Future[T]] = [self._pool().submit(call) for call in calls[1:]]
        results: list[tuple[T | None, ArmError | None]] = []
        unexpected: list[BaseException] = []
        try:
            results.append((calls[0](), None))
        except ArmError as error:
            results.append((None, error))
        except Exception as error:
            results.append((None, None))
            unexpected.append(error)
        wait_for_futures(futures)
        for future in futures:
            failure = future.exception()
            if failure is None:
                results.append((future.result(), None))
            elif isinstance(failure, ArmError):
                results.append((None, failure))
            else:
                results.append((None, None))
                unexpected.append(failure)
        if unexpected:
            raise unexpected[0]
        return results


__all__ = [
    "Applied",
    "DrawsAhead",
    "Execution",
    "Executor",
    "HeldClaims",
    "PhaseTimings",
    "TokensAhead",
    "action_for",
]
