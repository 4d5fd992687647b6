"""ARM write pacing shared by every Functions instance: the subscription write bucket in Table Storage.

Why it exists (issue 17 item 6): :class:`~remediator.core.pacing.WritePacer` lives in one process. N
scaled-out instances each pacing to ARM's bucket (200 burst, 10 writes/s per subscription and principal)
together send up to N times that, and ARM answers the rest with 429s. Here the bucket of each subscription is
one row of the journal table (partition :data:`PACING_PARTITION`): ``Tokens`` at ``Stamp`` (epoch seconds).
Taking writes is a read, a refill to now, a draw, and an ETag-conditional replace (retried on a conflict), so
the instances together spend one budget. A 429 any instance receives empties the shared row for the
``Retry-After``, so every instance holds back.

What stays per process (the local :class:`~remediator.core.pacing.WritePacer`): the quotas learned from
rate-limit headers (Policy Insights, DataProtection, the global and tenant buckets: their headers report the
server's figure, which already counts every instance's calls) and the sweep's planning pacer.

Cost: at most two table operations per paced write (a reconcile's writes in one subscription are taken
together), one when the row is as this process last saw it (its ETag is remembered), and fewer under load:
the draws and give-backs that a process's threads ask for while one of them is updating a row wait for it
and then go out together, as one read-modify-write of the row (a group commit: :meth:`_settle`), so the
threads never collide with each other and never queue one table round trip each behind a slow table (the
10,000-cluster chaos baseline spent 44 % of its reconcile time in pacing, p50 2 s, when every thread took
its turn on the row alone). Only instances collide, and a collision is tried again after a random pause; the
instances' clocks must agree to within a second or so (they do: NTP); a skew makes the shared bucket refill
a little early or late, never faster than ``refill_per_s`` on average.

Off the critical path (issue 11 item 3): a reconcile that may install takes its writes' tokens while it
reads (:meth:`SharedWritePacer.draw_ahead`, started with its claims by the reconciler); the writes spend them
(:meth:`SharedWritePacer.try_acquire_prepaid`, which draws only a shortfall, and checks the local observed
quotas and 429 holds at write time as always), and tokens no write spent are given back
(:meth:`SharedWritePacer.give_back`). A token is taken a read's latency early, never spent twice, and the
shared bucket never holds more than it would without the draw ahead.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field

from azure.core import MatchConditions
from azure.core.exceptions import HttpResponseError, ResourceExistsError, ResourceNotFoundError
from azure.data.tables import TableClient, UpdateMode

from remediator.core.pacing import (
    ARM_WRITE_BURST,
    ARM_WRITE_REFILL_PER_S,
    WRITE_BUCKET_HEADER,
    PaceVerdict,
    WritePacer,
    rate_limit_remaining,
    throttle_scope,
)
from remediator.core.text import ignore_case_key

logger = logging.getLogger(__name__)

PACING_PARTITION = "pacing"
"""Partition of the shared write buckets in the journal table (cluster partitions are 64 hex characters)."""

MAX_CONFLICT_RETRIES = 8
"""Tries of one read-draw-replace before the take is given up as contended (the caller then waits a
little)."""

CONTENDED_WAIT_S = 1.0
"""The wait reported when the shared row stayed contended through every try."""

CONFLICT_BACKOFF_S = 0.01
"""After the n-th conflict a try waits a random 0..n x this long first: instances that collided on the row
spread out instead of colliding again at once (the fault-free 2,000-cluster chaos run saw ~550 takes give up
as contended, each costing its reconcile a 1 s wait and a re-queue)."""


@dataclass
class _Ask:
    """One thread's draw (``n`` > 0, granted if the tokens are there within ``max_wait_s``) or give-back
    (``n`` < 0), waiting for the group commit that carries it."""

    n: float
    max_wait_s: float
    done: threading.Event = field(default_factory=threading.Event)
    lead: bool = False
    """Set when it is woken to carry the asks queued behind the previous commit, its own among them."""
    wait: float | None = None
    """The wait the draw was granted with (``None``: refused, or contended through every try)."""
    error: BaseException | None = None


@dataclass(frozen=True)
class _Row:
    tokens: float
    stamp: float
    etag: str | None


class SharedWritePacer:
    """A :class:`~remediator.core.pacing.Pacer` whose write buckets are shared through Table Storage.

    :param table: the journal table's ``TableClient``.
    :param local: this process's pacer (observed quotas and local 429 penalties; its own write buckets are
        not used for the decision).
    :keyword capacity: the shared burst per subscription (ARM's 200 less ``headroom``).
    :keyword refill_per_s: the shared refill per subscription (ARM: 10 per second).
    :keyword headroom: tokens of the burst never spent (as :class:`WritePacer`'s).
    :keyword ensure_table: creates the table once per process.
    :keyword clock: epoch seconds (shared across instances).
    :keyword sleep: how a short wait is slept.
    """

    def __init__(
        self,
        table: TableClient,
        local: WritePacer,
        *,
        capacity: float = ARM_WRITE_BURST,
        refill_per_s: float = ARM_WRITE_REFILL_PER_S,
        headroom: float = ARM_WRITE_REFILL_PER_S,
        ensure_table: Callable[[], None] = lambda: None,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.table = table
        self.local = local
        self.capacity = capacity - headroom
        self.refill_per_s = refill_per_s
        self.ensure_table = ensure_table
        self._clock = clock
        self._sleep = sleep
        self.conflicts = 0
        self._known: dict[str, _Row] = {}
        self._known_lock = threading.Lock()
        self._row_locks: dict[str, threading.Lock] = {}
        self._asks: dict[str, list[_Ask]] = {}
        self._leading: set[str] = set()

    # -- the shared rows ------------------------------------------------------------------------------------

    def _read(self, key: str) -> _Row:
        try:
            row = self.table.get_entity(PACING_PARTITION, key)
        except ResourceNotFoundError:
            return _Row(self.capacity, self._clock(), None)
        found = _Row(
            float(row.get("Tokens", self.capacity)), float(row.get("Stamp", 0.0)), row.metadata["etag"]
        )
        self._remember(key, found)
        return found

    def _remember(self, key: str, row: _Row | None) -> None:
        with self._known_lock:
            if row is None:
                self._known.pop(key, None)
            else:
                self._known[key] = row

    def _last_known(self, key: str) -> _Row | None:
        with self._known_lock:
            return self._known.get(key)

    def _refilled(self, row: _Row, now: float) -> float:
        return min(self.capacity, row.tokens + max(0.0, now - row.stamp) * self.refill_per_s)

    def _write(self, key: str, tokens: float, now: float, etag: str | None) -> bool:
        entity = {"PartitionKey": PACING_PARTITION, "RowKey": key, "Tokens": tokens, "Stamp": now}
        try:
            if etag is None:
                meta = self.table.create_entity(entity)
            else:
                meta = self.table.update_entity(
                    entity, mode=UpdateMode.REPLACE, etag=etag, match_condition=MatchConditions.IfNotModified
                )
        except ResourceExistsError:
            self._remember(key, None)
            return False
        except HttpResponseError as exc:
            if exc.status_code in (404, 409, 412):
                self._remember(key, None)
                return False
            raise
        new_etag = meta.get("etag") if isinstance(meta, Mapping) else None
        self._remember(key, _Row(tokens, now, str(new_etag)) if new_etag else None)
        return True

    def _update(self, key: str, change: Callable[[float], float | None]) -> float | None:
        """Read-modify-write the row: ``change(tokens now)`` returns the new balance, or ``None`` to leave it.
        Returns the new balance (``None``: left alone, or contended through every try).

        The first try starts from the row this process last wrote or read, when it has one (one table round
        trip instead of two: the write is conditional on that row's ETag, so a row someone else changed since
        fails the write and is read afresh); a ``None`` from ``change`` on a remembered row is confirmed on a
        fresh read before it is believed.

        The threads of this process take turns on a row (one lock per row), so they never collide with each
        other and each starts from the row the previous one wrote; only instances collide, and the loser tries
        again after a random pause (:data:`CONFLICT_BACKOFF_S`)."""
        self.ensure_table()
        with self._known_lock:
            row_lock = self._row_locks.setdefault(key, threading.Lock())
        with row_lock:
            return self._update_row(key, change)

    def _update_row(self, key: str, change: Callable[[float], float | None]) -> float | None:
        remembered = self._last_known(key)
        tries = 0
        while tries < MAX_CONFLICT_RETRIES:
            row = remembered if remembered is not None else self._read(key)
            now = self._clock()
            current = self._refilled(row, now)
            wanted = change(current)
            if wanted is None:
                if remembered is not None:
                    remembered = None  # maybe stale (another instance gave tokens back): read, decide again
                    continue
                return None
            if self._write(key, wanted, now, row.etag):
                return wanted
            if remembered is None:
                self.conflicts += 1
                tries += 1
                self._sleep(random.uniform(0.0, CONFLICT_BACKOFF_S * tries))  # noqa: S311 - jitter only
            remembered = None
        logger.warning("shared write bucket %s stayed contended through %d tries", key, MAX_CONFLICT_RETRIES)
        return None

    @staticmethod
    def _key(subscription_id: str) -> str:
        return "writes-" + ignore_case_key(subscription_id.strip())

    def _take(self, key: str, n: float, max_wait_s: float) -> float | None:
        """Draw ``n`` from the shared bucket if they are there within ``max_wait_s``; the wait, or
        ``None``."""
        return self._settle(key, _Ask(n, max_wait_s))

    def _give_back(self, key: str, n: float) -> None:
        self._settle(key, _Ask(-n, 0.0))

    def _settle(self, key: str, ask: _Ask) -> float | None:
        """Carry ``ask`` in the next read-modify-write of the row (a group commit).

        The first thread to ask leads: it takes every ask queued for the row (its own among them) into one
        update. Threads that ask meanwhile queue; when the leader's update is done it wakes the first of
        them to lead the next one, with all the asks queued by then. Each ask gets its own verdict, as if
        the asks had been taken one after another in the order they came."""
        with self._known_lock:
            self._asks.setdefault(key, []).append(ask)
            ask.lead = key not in self._leading
            self._leading.add(key)
        if not ask.lead:
            ask.done.wait()
        if ask.lead:
            with self._known_lock:
                batch = self._asks.pop(key, [])
            try:
                self._commit(key, batch)
            except BaseException as exc:  # every ask of the batch raises it, in its own thread
                for each in batch:
                    each.error = exc
            finally:
                with self._known_lock:
                    queued = self._asks.get(key)
                    if queued:
                        queued[0].lead = True  # the next commit's leader
                        queued[0].done.set()
                    else:
                        self._leading.discard(key)
                for each in batch:
                    each.done.set()
        if ask.error is not None:
            raise ask.error
        return ask.wait

    def _commit(self, key: str, batch: list[_Ask]) -> None:
        """One read-modify-write of the row for every ask of ``batch``, in order: a give-back is added (up
        to the capacity), a draw is granted when its tokens are there within its ``max_wait_s``."""
        granted: dict[int, float] = {}

        def change(tokens: float) -> float | None:
            granted.clear()
            balance = tokens
            for i, ask in enumerate(batch):
                if ask.n <= 0:
                    balance = min(self.capacity, balance - ask.n)
                    granted[i] = 0.0
                    continue
                wait = max(0.0, (ask.n - balance) / self.refill_per_s)
                if wait <= ask.max_wait_s:
                    balance -= ask.n
                    granted[i] = wait
            return balance if granted else None

        committed = self._update(key, change) is not None
        for i, ask in enumerate(batch):
            ask.wait = granted.get(i) if committed else None

    # -- the Pacer protocol ---------------------------------------------------------------------------------

    def try_acquire(
        self,
        demand: Mapping[str, float],
        *,
        max_wait_s: float,
        resource_types: Mapping[str, Collection[str]] | None = None,
    ) -> PaceVerdict:
        """Take the writes of ``demand`` from the shared buckets (and the local observed quotas), all or
        nothing; sleep a wait up to ``max_wait_s``; otherwise take nothing and say how long to come back."""
        verdict, _unspent = self.try_acquire_prepaid(
            demand, {}, max_wait_s=max_wait_s, resource_types=resource_types
        )
        return verdict

    def draw_ahead(self, demand: Mapping[str, float]) -> dict[str, float]:
        """Take ``demand``'s tokens now, for writes a reconcile may send once its reads are in (it reads
        meanwhile, so the table round trips are off its critical path): per subscription, all of its tokens
        if the shared bucket holds them now, else none (the write then draws, and waits, as usual). Returns
        what was drawn, by subscription, to be spent by :meth:`try_acquire_prepaid` or returned by
        :meth:`give_back`. A storage error leaves that subscription undrawn (logged)."""
        drawn: dict[str, float] = {}
        for subscription_id, n in sorted(demand.items()):
            if n <= 0:
                continue
            try:
                if self._take(self._key(subscription_id), float(n), 0.0) is not None:
                    drawn[subscription_id] = float(n)
            except Exception:  # the write draws at write time instead
                logger.debug("drawing write tokens ahead for %s failed", subscription_id, exc_info=True)
        return drawn

    def give_back(self, drawn: Mapping[str, float]) -> None:
        """Return tokens drawn ahead and not spent (best effort: a token not returned only makes the shared
        bucket a little more careful until it refills)."""
        for subscription_id, n in sorted(drawn.items()):
            if n <= 0:
                continue
            try:
                self._give_back(self._key(subscription_id), float(n))
            except Exception:
                logger.warning(
                    "returning %.0f write token(s) of %s failed", n, subscription_id, exc_info=True
                )

    def try_acquire_prepaid(
        self,
        demand: Mapping[str, float],
        prepaid: Mapping[str, float],
        *,
        max_wait_s: float,
        resource_types: Mapping[str, Collection[str]] | None = None,
    ) -> tuple[PaceVerdict, dict[str, float]]:
        """:meth:`try_acquire`, spending tokens drawn ahead (``prepaid``, from :meth:`draw_ahead`) first and
        drawing only the shortfall. Returns the verdict and the prepaid tokens left unspent (all of them when
        the verdict is not granted), which the caller gives back."""
        wanted = {k: float(n) for k, n in demand.items() if n > 0}
        left = {ignore_case_key(k): float(n) for k, n in prepaid.items() if n > 0}
        if not wanted:
            return PaceVerdict(granted=True, wait_s=0.0), left
        quota_wait, quota_sub = self.local.quota_wait(wanted, resource_types)
        if quota_wait > max_wait_s:
            return PaceVerdict(granted=False, wait_s=quota_wait, subscription_id=quota_sub), left
        spent: dict[str, float] = {}
        taken: list[tuple[str, float]] = []
        worst, worst_sub = quota_wait, quota_sub
        for subscription_id, n in sorted(wanted.items()):
            folded = ignore_case_key(subscription_id)
            covered = min(n, left.get(folded, 0.0) - spent.get(folded, 0.0))
            if covered > 0:
                spent[folded] = spent.get(folded, 0.0) + covered
            shortfall = n - max(covered, 0.0)
            if shortfall <= 0:
                continue
            key = self._key(subscription_id)
            wait = self._take(key, shortfall, max_wait_s)
            if wait is None:
                for done_key, done_n in taken:
                    self._give_back(done_key, done_n)
                row = self._read(key)
                needed = max(
                    CONTENDED_WAIT_S, (shortfall - self._refilled(row, self._clock())) / self.refill_per_s
                )
                return PaceVerdict(granted=False, wait_s=needed, subscription_id=subscription_id), left
            taken.append((key, shortfall))
            if wait > worst:
                worst, worst_sub = wait, subscription_id
        self.local.take_quotas(wanted, resource_types)
        unspent = {k: n - spent.get(k, 0.0) for k, n in left.items() if n - spent.get(k, 0.0) > 0}
        if worst > 0:
            self._sleep(worst)
        return PaceVerdict(granted=True, wait_s=worst, subscription_id=worst_sub), unspent

    def throttled(
        self,
        subscription_id: str,
        retry_after_s: float,
        *,
        resource_type: str = "",
        code: str = "",
        target: str = "",
    ) -> None:
        """A 429 from ARM's own throttling empties the shared bucket for ``Retry-After`` (every instance holds
        back); a resource provider's 429 holds that resource type's writes in this process
        (:func:`~remediator.core.pacing.throttle_scope`)."""
        self.local.throttled(
            subscription_id, retry_after_s, resource_type=resource_type, code=code, target=target
        )
        if throttle_scope(code, resource_type):
            return
        debt = -max(0.0, retry_after_s) * self.refill_per_s
        try:
            self._update(self._key(subscription_id), lambda tokens: debt if tokens > debt else None)
        except Exception:  # feedback is best effort; the local penalty holds this instance anyway
            logger.warning("recording a 429 in the shared write bucket failed", exc_info=True)

    def observe_headers(
        self,
        subscription_id: str,
        resource_type: str,
        headers: Mapping[str, str],
        *,
        refused: bool = False,
    ) -> None:
        """Observed quotas stay local; ARM's own figure for the write bucket lowers the shared row when it is
        clearly below it (other writers of the principal, or a bucket that refilled slower than modelled)."""
        self.local.observe_headers(subscription_id, resource_type, headers, refused=refused)
        remaining = rate_limit_remaining(headers).get(WRITE_BUCKET_HEADER)
        if remaining is None or remaining > self.capacity / 2:
            return
        try:
            self._update(
                self._key(subscription_id),
                lambda tokens: remaining if remaining < tokens - 2 else None,
            )
        except Exception:
            logger.debug("lowering the shared write bucket failed", exc_info=True)

    def available(self, subscription_id: str) -> float:
        """Tokens in the shared bucket now (negative while writes are promised)."""
        self.ensure_table()
        return self._refilled(self._read(self._key(subscription_id)), self._clock())
