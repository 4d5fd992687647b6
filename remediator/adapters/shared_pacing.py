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

Cost: two table operations per draw, and the instances' clocks must agree to within a second or so (they do:
NTP); a skew makes the shared bucket refill a little early or late, never faster than ``refill_per_s`` on
average.

**One row, many writers.** A row replaced under an ETag serves one read-draw-replace at a time: with every
instance's concurrent reconciles drawing one write each, the 2,000-cluster chaos run saw hundreds of draws
lose every try and end their reconcile with a "pacing" wait (a whole queue hop for nothing).
So each process draws for itself, not for each reconcile: one thread per subscription touches the row at a
time (the others wait for it, :attr:`SharedWritePacer._locks`), and while the bucket is more than half full a
draw takes up to :data:`DRAW_AHEAD` writes more than it needs, held by the process for
:data:`ALLOTMENT_S` (an **allotment**) and spent by its next reconciles without touching the row. What an
allotment still holds when it lapses goes back to the row with the process's next draw (netted into it), and
a 429 or a refusal drops it. So the row sees about one writer per instance, the writes drawn never exceed the
bucket (an allotment is drawn before it is spent), and what a dying process held is lost to the bucket for
at most the refill of :data:`DRAW_AHEAD` writes.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass

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
"""After a lost replace, the next try waits a random moment up to this, doubled per lost try (so the
instances' writers spread out instead of colliding again)."""

DRAW_AHEAD = 4.0
"""Writes a draw takes beyond what it needs while the bucket is more than half full (see the module
docstring)."""

ALLOTMENT_S = 1.0
"""How long a process spends writes it drew ahead before they go back to the row (netted into its next
draw)."""


@dataclass
class _Allotment:
    tokens: float
    until: float


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
        self.draws = 0
        self.allotted = 0
        self._allotments: dict[str, _Allotment] = {}
        self._locks: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()

    def _lock(self, key: str) -> threading.Lock:
        with self._guard:
            return self._locks.setdefault(key, threading.Lock())

    # -- the shared rows ------------------------------------------------------------------------------------

    def _read(self, key: str) -> _Row:
        try:
            row = self.table.get_entity(PACING_PARTITION, key)
        except ResourceNotFoundError:
            return _Row(self.capacity, self._clock(), None)
        return _Row(
            float(row.get("Tokens", self.capacity)), float(row.get("Stamp", 0.0)), row.metadata["etag"]
        )

    def _refilled(self, row: _Row, now: float) -> float:
        return min(self.capacity, row.tokens + max(0.0, now - row.stamp) * self.refill_per_s)

    def _write(self, key: str, tokens: float, now: float, etag: str | None) -> bool:
        entity = {"PartitionKey": PACING_PARTITION, "RowKey": key, "Tokens": tokens, "Stamp": now}
        try:
            if etag is None:
                self.table.create_entity(entity)
            else:
                self.table.update_entity(
                    entity, mode=UpdateMode.REPLACE, etag=etag, match_condition=MatchConditions.IfNotModified
                )
        except ResourceExistsError:
            return False
        except HttpResponseError as exc:
            if exc.status_code in (404, 409, 412):
                return False
            raise
        return True

    def _update(self, key: str, change: Callable[[float], float | None]) -> float | None:
        """Read-modify-write the row: ``change(tokens now)`` returns the new balance, or ``None`` to leave it.
        Returns the new balance (``None``: left alone, or contended through every try)."""
        self.ensure_table()
        for lost in range(MAX_CONFLICT_RETRIES):
            row = self._read(key)
            now = self._clock()
            current = self._refilled(row, now)
            wanted = change(current)
            if wanted is None:
                return None
            if self._write(key, wanted, now, row.etag):
                return wanted
            self.conflicts += 1
            self._sleep(random.uniform(0.0, CONFLICT_BACKOFF_S * 2**lost))  # noqa: S311 - jitter, not crypto
        logger.warning("shared write bucket %s stayed contended through %d tries", key, MAX_CONFLICT_RETRIES)
        return None

    @staticmethod
    def _key(subscription_id: str) -> str:
        return "writes-" + ignore_case_key(subscription_id.strip())

    def _take(self, key: str, n: float, max_wait_s: float) -> float | None:
        """Take ``n`` writes: from this process's allotment, or drawn from the shared bucket if they are there
        within ``max_wait_s`` (see the module docstring); the wait, or ``None``."""
        with self._lock(key):
            now = self._clock()
            held = self._allotments.get(key)
            if held is not None and held.until > now and held.tokens >= n:
                held.tokens -= n
                self.allotted += 1
                return 0.0
            leftover = self._allotments.pop(key).tokens if held is not None else 0.0
            waited: list[float] = []
            ahead: list[float] = []

            def draw(tokens: float) -> float | None:
                # the lapsed allotment goes back to the row in the same replace (netted)
                available = min(self.capacity, tokens + leftover)
                wait = max(0.0, (n - available) / self.refill_per_s)
                waited[:] = [wait]
                if wait > max_wait_s:
                    return None
                extra = DRAW_AHEAD if available - n - DRAW_AHEAD >= self.capacity / 2 else 0.0
                ahead[:] = [extra]
                return available - n - extra

            try:
                drawn = self._update(key, draw)
            except BaseException:
                self._keep(key, leftover, now)
                raise
            if drawn is None:
                self._keep(key, leftover, now)  # refused or contended: the row did not take it back
                return None
            self.draws += 1
            if ahead and ahead[0] > 0:
                self._allotments[key] = _Allotment(ahead[0], now + ALLOTMENT_S)
            return waited[0]

    def _keep(self, key: str, leftover: float, now: float) -> None:
        """An allotment the row did not take back stays with the process (lapsed: netted into its next
        draw)."""
        if leftover > 0:
            self._allotments[key] = _Allotment(leftover, now)

    def _give_back(self, key: str, n: float) -> None:
        with self._lock(key):
            held = self._allotments.get(key)
            if held is not None:
                held.tokens += (
                    n  # back to the allotment it may have come from; the row gets it when it lapses
                )
                return
            self._allotments[key] = _Allotment(n, self._clock())

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
        wanted = {k: float(n) for k, n in demand.items() if n > 0}
        if not wanted:
            return PaceVerdict(granted=True, wait_s=0.0)
        quota_wait, quota_sub = self.local.quota_wait(wanted, resource_types)
        if quota_wait > max_wait_s:
            return PaceVerdict(granted=False, wait_s=quota_wait, subscription_id=quota_sub)
        taken: list[tuple[str, float]] = []
        worst, worst_sub = quota_wait, quota_sub
        for subscription_id, n in sorted(wanted.items()):
            key = self._key(subscription_id)
            wait = self._take(key, n, max_wait_s)
            if wait is None:
                for done_key, done_n in taken:
                    self._give_back(done_key, done_n)
                row = self._read(key)
                needed = max(CONTENDED_WAIT_S, (n - self._refilled(row, self._clock())) / self.refill_per_s)
                return PaceVerdict(granted=False, wait_s=needed, subscription_id=subscription_id)
            taken.append((key, n))
            if wait > worst:
                worst, worst_sub = wait, subscription_id
        self.local.take_quotas(wanted, resource_types)
        if worst > 0:
            self._sleep(worst)
        return PaceVerdict(granted=True, wait_s=worst, subscription_id=worst_sub)

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
        key = self._key(subscription_id)
        with self._lock(key):
            self._allotments.pop(key, None)  # ARM says the bucket is empty: spend nothing drawn ahead
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

    def held(self, subscription_id: str) -> float:
        """Writes this process drew ahead for the subscription and has not spent (lapsed or not)."""
        key = self._key(subscription_id)
        with self._lock(key):
            held = self._allotments.get(key)
            return held.tokens if held is not None else 0.0

    def available(self, subscription_id: str) -> float:
        """Tokens in the shared bucket now (negative while writes are promised)."""
        self.ensure_table()
        return self._refilled(self._read(self._key(subscription_id)), self._clock())
