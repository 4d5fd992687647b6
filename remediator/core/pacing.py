"""Pace ARM writes to the subscription write bucket instead of learning the limit from 429s.

Since 2024 ARM throttles each subscription, per principal, with a token bucket: writes have a burst of 200
and refill at 10 per second (``shared/reference/platform_facts.md`` §3.1). A sweep that remediates
thousands of clusters would otherwise fire writes as fast as it can, eat 429s and sleep on ``Retry-After``,
wasting calls and delaying every other writer of the same principal. Modelling the bucket on our side lets us
spend exactly what ARM grants.

Two ways to spend tokens:

* ``acquire`` blocks (through an injected ``sleep``) until the tokens are there: for a worker writing now.
* ``reserve`` takes the tokens now, possibly into debt, and returns how long the caller must wait before using
  them: for the sweep, which turns the wait into a queue-message visibility delay instead of sleeping.
* ``try_acquire`` takes the tokens of several subscriptions at once, all or nothing, and sleeps only if the
  wait is short (``max_wait_s``); otherwise it takes nothing and says how long to come back after. For the
  worker (``service.reconciler``): a Functions invocation must not block long, so a long wait becomes a
  ``wait`` outcome and the work item comes back later.

The pacer is **per process**. Functions instances do not share memory, so each instance's pacer only knows its
own writes; what keeps the instances together under ARM's bucket is the sweep, whose visibility delays spread
the work items over time (and therefore over instances), plus the 429 feedback (``throttled``) every instance
gets from ARM itself. The sweep plans with its own pacer (``Runtime.sweep_pacer``): its reservations stand for
writes the workers will make later, so sharing the workers' pacer would count every write twice.

The clock and sleep are injected so tests drive time by hand; nothing here does I/O.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from remediator.core.text import ignore_case_key

logger = logging.getLogger(__name__)

ARM_WRITE_BURST = 200
"""Tokens in a full ARM subscription write bucket (per principal)."""

ARM_WRITE_REFILL_PER_S = 10.0
"""Tokens the ARM subscription write bucket regains per second."""

Clock = Callable[[], float]
Sleep = Callable[[float], None]


class TokenBucket:
    """A token bucket whose balance may go negative: a negative balance is time already promised to callers.

    Not thread-safe on its own; ``WritePacer`` serialises access.

    :keyword capacity: the most tokens the bucket holds (the burst).
    :keyword refill_per_s: tokens regained per second.
    :keyword clock: monotonic seconds; ``time.monotonic`` unless a test injects its own.
    """

    def __init__(self, *, capacity: float, refill_per_s: float, clock: Clock = time.monotonic) -> None:
        if capacity <= 0:
            raise ValueError("capacity must be positive")
        if refill_per_s <= 0:
            raise ValueError("refill_per_s must be positive")
        self.capacity = float(capacity)
        self.refill_per_s = float(refill_per_s)
        self._clock = clock
        self._tokens = float(capacity)
        self._stamp = clock()

    def _refill(self) -> None:
        now = self._clock()
        elapsed = max(0.0, now - self._stamp)
        self._stamp = now
        self._tokens = min(self.capacity, self._tokens + elapsed * self.refill_per_s)

    @property
    def tokens(self) -> float:
        """Tokens available now (negative while reservations are outstanding)."""
        self._refill()
        return self._tokens

    def wait_time(self, n: float = 1) -> float:
        """Seconds until ``n`` tokens would be available, without taking them."""
        self._check(n)
        self._refill()
        missing = n - self._tokens
        return max(0.0, missing / self.refill_per_s)

    def try_take(self, n: float = 1) -> bool:
        """Take ``n`` tokens if they are available now; otherwise take nothing."""
        self._check(n)
        self._refill()
        if self._tokens >= n:
            self._tokens -= n
            return True
        return False

    def reserve(self, n: float = 1) -> float:
        """Take ``n`` tokens now, into debt if need be; return the seconds until they are really covered."""
        self._check(n)
        self._refill()
        self._tokens -= n
        return max(0.0, -self._tokens / self.refill_per_s)

    def observe_remaining(self, remaining: float) -> None:
        """Lower the balance to the server's figure (``x-ms-ratelimit-remaining-subscription-writes``).

        Other writers of the same principal spend from the same server-side bucket; the server's figure is the
        truth. It is never used to raise the balance, because a stale header must not let us overspend.
        """
        self._refill()
        self._tokens = min(self._tokens, float(remaining))

    def penalize(self, seconds: float) -> None:
        """The server throttled us anyway: grant nothing new for ``seconds`` (its ``Retry-After``)."""
        self._refill()
        self._tokens = min(self._tokens, -max(0.0, seconds) * self.refill_per_s)

    def _check(self, n: float) -> None:
        if n <= 0 or n > self.capacity:
            raise ValueError(f"token count must be in (0, {self.capacity}], got {n}")


@dataclass(frozen=True)
class PaceVerdict:
    """What ``WritePacer.try_acquire`` decided.

    :param granted: the tokens were taken (and the short wait, if any, already slept).
    :param wait_s: seconds slept (granted) or seconds until the tokens would be there (not granted).
    :param subscription_id: the subscription whose bucket set the wait (``""`` when nothing was asked).
    """

    granted: bool
    wait_s: float
    subscription_id: str = ""


class WritePacer:
    """One ARM write bucket per subscription, shared by every thread of this process.

    :keyword capacity: burst per subscription (ARM: 200).
    :keyword refill_per_s: refill per subscription (ARM: 10 per second).
    :keyword headroom: tokens of the burst never spent. Our bucket starts refilling at our first write, ARM's
        when that write arrives (after connection set-up and latency), and other writers of the principal
        spend from ARM's bucket too; a small headroom (1 s of refill by default) absorbs both.
    :keyword clock: monotonic seconds.
    :keyword sleep: how ``acquire`` waits; ``time.sleep`` unless a test injects its own.
    """

    def __init__(
        self,
        *,
        capacity: float = ARM_WRITE_BURST,
        refill_per_s: float = ARM_WRITE_REFILL_PER_S,
        headroom: float = ARM_WRITE_REFILL_PER_S,
        clock: Clock = time.monotonic,
        sleep: Sleep = time.sleep,
    ) -> None:
        if not 0 <= headroom < capacity:
            raise ValueError("headroom must be in [0, capacity)")
        self.capacity = capacity - headroom
        self.refill_per_s = refill_per_s
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._buckets: dict[str, TokenBucket] = {}

    def _bucket(self, subscription_id: str) -> TokenBucket:
        key = ignore_case_key(subscription_id.strip())
        if not key:
            raise ValueError("subscription_id must not be empty")
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = TokenBucket(capacity=self.capacity, refill_per_s=self.refill_per_s, clock=self._clock)
            self._buckets[key] = bucket
        return bucket

    def reserve(self, subscription_id: str, n: float = 1) -> float:
        """Reserve ``n`` writes in ``subscription_id``; return the seconds to wait before issuing them."""
        with self._lock:
            return self._bucket(subscription_id).reserve(n)

    def acquire(self, subscription_id: str, n: float = 1) -> float:
        """Block until ``n`` writes may be issued in ``subscription_id``; return the seconds waited.

        The tokens are reserved under the lock, and the wait happens outside it, so threads writing to other
        subscriptions are never held up.
        """
        delay = self.reserve(subscription_id, n)
        if delay > 0:
            logger.debug("pacing %s write(s) in subscription %s for %.3f s", n, subscription_id, delay)
            self._sleep(delay)
        return delay

    def try_acquire(self, demand: Mapping[str, float], *, max_wait_s: float) -> PaceVerdict:
        """Take the writes of ``demand`` (subscription -> count) if they are there within ``max_wait_s``.

        All or nothing: if any subscription's tokens are further away than ``max_wait_s``, nothing is taken
        and the verdict says how long that subscription needs. Otherwise every subscription's tokens are taken
        under the lock and the (short) wait is slept outside it. Subscription ids compare case-insensitively.
        """
        merged: dict[str, float] = {}
        for subscription_id, n in demand.items():
            key = ignore_case_key(subscription_id.strip())
            merged[key] = merged.get(key, 0.0) + n
        if not merged:
            return PaceVerdict(granted=True, wait_s=0.0)
        with self._lock:
            waits = {key: self._bucket(key).wait_time(n) for key, n in merged.items()}
            worst_key = max(waits, key=lambda key: waits[key])
            worst = waits[worst_key]
            if worst > max_wait_s:
                return PaceVerdict(granted=False, wait_s=worst, subscription_id=worst_key)
            for key, n in merged.items():
                self._bucket(key).reserve(n)
        if worst > 0:
            logger.debug("pacing writes in subscription %s for %.3f s", worst_key, worst)
            self._sleep(worst)
        return PaceVerdict(granted=True, wait_s=worst, subscription_id=worst_key)

    def observe_remaining(self, subscription_id: str, remaining: float) -> None:
        """Feed back the server's ``x-ms-ratelimit-remaining-subscription-writes`` for ``subscription_id``."""
        with self._lock:
            self._bucket(subscription_id).observe_remaining(remaining)

    def throttled(self, subscription_id: str, retry_after_s: float) -> None:
        """ARM answered 429 in ``subscription_id``: hold later writes there until ``Retry-After`` passes."""
        logger.info(
            "write throttled in subscription %s; holding writes %.1f s", subscription_id, retry_after_s
        )
        with self._lock:
            self._bucket(subscription_id).penalize(retry_after_s)

    def available(self, subscription_id: str) -> float:
        """Tokens available now in ``subscription_id`` (negative while writes are promised)."""
        with self._lock:
            return self._bucket(subscription_id).tokens


def write_bucket_bound_s(
    writes_per_subscription: list[int],
    *,
    capacity: float = ARM_WRITE_BURST,
    refill_per_s: float = ARM_WRITE_REFILL_PER_S,
) -> float:
    """The least time ARM's write buckets allow for these writes, starting from full buckets.

    Subscriptions refill in parallel, so the slowest subscription sets the bound: ``(n - burst) / refill``.
    """
    worst = max(writes_per_subscription, default=0)
    return max(0.0, (worst - capacity) / refill_per_s)
