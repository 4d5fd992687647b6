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

:class:`WritePacer` is **per process**: Functions instances do not share memory. Alone it keeps one
instance under ARM's bucket; N instances each pacing alone could send N times the bucket. So the runtime
backs it with a budget shared through the host storage account (``adapters/shared_pacing.py``, below). The
sweep plans with its own pacer (``Runtime.sweep_pacer``): its reservations stand for writes the workers will
make later, so sharing the workers' pacer would count every write twice.

**Every rate-limit header counts** (issue 13): ARM answers with
``x-ms-ratelimit-remaining-subscription-writes`` and its ``-global-``/``-tenant-`` siblings, Policy Insights
with ``x-ms-ratelimit-remaining-policy-insights-requests``, DataProtection with
``x-ms-ratelimit-remaining-subscription-resource-requests``, Resource Graph with
``-tenant-resource-requests``. :meth:`WritePacer.observe_headers` reads every ``x-ms-ratelimit-remaining-*``
header of a write's answer into an :class:`ObservedQuota` per scope and header, and remembers which resource
type's writes reported it. A later write of that type waits until *every* quota it draws from has a token
(the lowest one decides). A quota the documents size (:data:`KNOWN_QUOTAS`) refills at its documented rate;
one they do not (Policy Insights, DataProtection) refills at the rate its own reports show.

Across instances, the process pacer is backed by a shared budget in the host storage account
(``adapters/shared_pacing.py``): the subscription write bucket lives in one table row per subscription, so N
instances together spend one subscription's budget, not N of them (docs/operations.md).

The clock and sleep are injected so tests drive time by hand; nothing here does I/O.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from typing import Protocol

from remediator.core.text import ignore_case_key

logger = logging.getLogger(__name__)

ARM_WRITE_BURST = 200
"""Tokens in a full ARM subscription write bucket (per principal)."""

ARM_WRITE_REFILL_PER_S = 10.0
"""Tokens the ARM subscription write bucket regains per second."""

Clock = Callable[[], float]
Sleep = Callable[[float], None]

RATE_LIMIT_PREFIX = "x-ms-ratelimit-remaining-"
"""Every rate-limit header ARM and the resource providers send starts with this."""

WRITE_BUCKET_HEADER = "subscription-writes"
"""The header of the subscription write bucket the pacer models itself (fed to that bucket, not to a
quota)."""


@dataclass(frozen=True)
class QuotaSpec:
    """A quota's bucket: burst and refill per second (``learned``: no document sizes it; the refill is
    estimated from the quota's own reports)."""

    capacity: float
    refill_per_s: float
    learned: bool = False


KNOWN_QUOTAS: dict[str, QuotaSpec] = {
    # ARM's 2024 token buckets, per principal (platform_facts.md §3.1, request-limits-and-throttling)
    "subscription-writes": QuotaSpec(200, 10),
    "subscription-deletes": QuotaSpec(200, 10),
    "subscription-reads": QuotaSpec(250, 25),
    "tenant-writes": QuotaSpec(200, 10),
    "tenant-deletes": QuotaSpec(200, 10),
    "tenant-reads": QuotaSpec(250, 25),
    # the global bucket of a subscription is 15x the per-principal one, shared by every principal (same doc)
    "subscription-global-writes": QuotaSpec(3000, 150),
    "subscription-global-deletes": QuotaSpec(3000, 150),
    "subscription-global-reads": QuotaSpec(3750, 375),
    # Resource Graph: 15 queries per 5-second window (guidance-for-throttled-requests, platform_facts §3.2)
    "tenant-resource-requests": QuotaSpec(15, 3),
}
"""Quotas a document sizes, by header name without :data:`RATE_LIMIT_PREFIX`."""

UNKNOWN_REFILL_WINDOW_S = 60.0
"""A quota no document sizes is first assumed to refill its observed burst over this long; its own reports
then show the real rate (:class:`ObservedQuota`)."""

LEARNING_SPAN_S = 2.0
"""The shortest span between two reports a refill estimate is taken over."""

LEARNED_RESERVE = 1.0
"""Tokens of a learned quota never spent: a margin for the estimate's error (the server's figure is an
integer, and other callers draw too)."""


def rate_limit_remaining(headers: Mapping[str, str]) -> dict[str, float]:
    """Every ``x-ms-ratelimit-remaining-*`` header of an answer: header name (lower case, prefix removed) ->
    the remaining count. Unparseable values are skipped."""
    found: dict[str, float] = {}
    for name, value in headers.items():
        lowered = str(name).lower()
        if not lowered.startswith(RATE_LIMIT_PREFIX):
            continue
        try:
            found[lowered[len(RATE_LIMIT_PREFIX) :]] = float(value)
        except (TypeError, ValueError):
            continue
    return found


_PROVIDER_SEGMENT = re.compile(r"/providers/", re.IGNORECASE)


def resource_type_of(path: str) -> str:
    """The resource type a request path (or id) addresses, lower case, names dropped:
    ``.../managedClusters/c/providers/Microsoft.KubernetesConfiguration/extensions/x`` ->
    ``microsoft.kubernetesconfiguration/extensions``; ``""`` when the path names no provider."""
    path = path.split("?", 1)[0]
    parts = _PROVIDER_SEGMENT.split(path)
    if len(parts) < 2:
        return ""
    segments = [s for s in parts[-1].split("/") if s]
    if not segments:
        return ""
    namespace, rest = segments[0], segments[1:]
    types = rest[0::2]  # type, name, subtype, name, ...
    return "/".join([namespace, *types]).lower()


class ObservedQuota:
    """One quota as its rate-limit header reports it: a token bucket lowered to every reported figure.

    Its refill is the documented one (:data:`KNOWN_QUOTAS`) or, for a quota no document sizes, estimated from
    its own reports. Every report is ``remaining`` after the call that carried it, so between two reports at
    least :data:`LEARNING_SPAN_S` apart the quota regained ``remaining_now - remaining_then + calls`` (the
    calls that reported in between, the later one included). While the quota never came near full in
    between, that is a sample of the refill (averaged); when it did, only a lower bound (which may raise the
    estimate, never lower it). Draws by other callers make samples lower, so the estimate errs slow. The
    first estimate refills the observed burst over :data:`UNKNOWN_REFILL_WINDOW_S`, and a learned quota keeps
    :data:`LEARNED_RESERVE` unspent.

    :param spec: burst and refill (a learned quota's burst is its highest report + 1).
    :keyword clock: monotonic seconds.
    """

    def __init__(self, spec: QuotaSpec, *, clock: Clock = time.monotonic) -> None:
        self.spec = spec
        self.bucket = TokenBucket(capacity=spec.capacity, refill_per_s=spec.refill_per_s, clock=clock)
        self._clock = clock
        self._reports: list[tuple[float, float, int, bool]] = []
        """(time, remaining, reports so far, near full) of recent reports, oldest first."""
        self._count = 0
        self.samples = 0

    @classmethod
    def for_header(cls, name: str, first_remaining: float, *, clock: Clock = time.monotonic) -> ObservedQuota:
        spec = KNOWN_QUOTAS.get(name)
        if spec is None:
            capacity = max(first_remaining + 1.0, 1.0)
            spec = QuotaSpec(capacity, capacity / UNKNOWN_REFILL_WINDOW_S, learned=True)
        return cls(spec, clock=clock)

    @property
    def refill_per_s(self) -> float:
        return self.bucket.refill_per_s

    @property
    def reserve(self) -> float:
        return LEARNED_RESERVE if self.spec.learned else 0.0

    def observe(self, remaining: float) -> None:
        """Lower the balance to the reported figure; for a learned quota, refine the refill estimate."""
        now = self._clock()
        self._count += 1
        if self.spec.learned:
            if remaining + 1 > self.bucket.capacity:
                self.bucket.capacity = remaining + 1
            near_full = remaining >= self.bucket.capacity - 2
            self._learn(now, remaining, near_full)
            self._reports.append((now, remaining, self._count, near_full))
            while len(self._reports) > 64 or (self._reports and now - self._reports[0][0] > 60.0):
                self._reports.pop(0)
        self.bucket.observe_remaining(remaining)

    def _learn(self, now: float, remaining: float, near_full: bool) -> None:
        base = None
        for report in reversed(self._reports):
            if now - report[0] >= LEARNING_SPAN_S:
                base = report
                break
        if base is None:
            return
        then, was, count_then, _ = base
        capped = near_full or any(r[3] for r in self._reports if r[0] >= then)
        regained = remaining - was + (self._count - count_then)
        sample = max(0.0, regained) / (now - then)
        rate = self.bucket.refill_per_s
        if capped:
            rate = max(rate, sample)  # the quota may have refilled faster than it could show
        elif self.samples == 0:
            rate = sample
        else:
            rate = 0.6 * rate + 0.4 * sample
        self.samples += 1
        self.bucket.refill_per_s = max(rate, self.bucket.capacity / 3600.0)

    def wait_time(self, n: float) -> float:
        return self.bucket.wait_time(min(n + self.reserve, self.bucket.capacity))

    def take(self, n: float) -> None:
        self.bucket.reserve(min(n, self.bucket.capacity))


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


ARM_THROTTLE_CODES = frozenset({"subscriptionrequeststhrottled", "tenantrequeststhrottled"})
"""The codes of ARM's own token-bucket throttling (request-limits-and-throttling, platform_facts §3.1)."""

RP_THROTTLE_PREFIX = "rp-throttle:"
"""The observed-quota key of a resource provider's 429 for one resource type."""

RP_ESCALATE_AFTER = 3
"""Different resources of one type refused by their provider within the window before every write of the type
is held (one refusal may be that resource's own state; several at once are the provider's quota)."""

RP_ESCALATE_WINDOW_S = 10.0
"""The window of :data:`RP_ESCALATE_AFTER`."""

RP_ESCALATE_SHARE = 0.5
"""...and at least this share of the type's write answers in the window were refusals: a provider out of quota
refuses nearly everything, a provider with a hiccup (or a resource in a bad state) a few."""


def throttle_scope(code: str, resource_type: str) -> str:
    """Whose writes a 429 holds: ``""`` = every write of the subscription (ARM's own throttling, or no code
    to tell), else the resource type whose provider refused."""
    if not code or code.lower() in ARM_THROTTLE_CODES or not resource_type:
        return ""
    return resource_type.lower()


_TENANT = "(tenant)"
"""The scope key of ``tenant-*`` quotas (one per tenant, i.e. per process: the product serves one tenant)."""


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
        self._quotas: dict[tuple[str, str], ObservedQuota] = {}
        self._drawn_by: dict[tuple[str, str], set[str]] = {}
        """(scope, header) -> the resource types whose write answers reported that quota."""
        self._refusals: dict[tuple[str, str], list[tuple[float, str]]] = {}
        """(subscription, resource type) -> recent provider 429s: (when, which resource)."""
        self._answers: dict[tuple[str, str], list[tuple[float, bool]]] = {}
        """(subscription, resource type) -> recent write answers: (when, refused)."""

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

    def try_acquire(
        self,
        demand: Mapping[str, float],
        *,
        max_wait_s: float,
        resource_types: Mapping[str, Collection[str]] | None = None,
    ) -> PaceVerdict:
        """Take the writes of ``demand`` (subscription -> count) if they are there within ``max_wait_s``.

        All or nothing: if any subscription's tokens are further away than ``max_wait_s``, nothing is taken
        and the verdict says how long that subscription needs. Otherwise every subscription's tokens are taken
        under the lock and the (short) wait is slept outside it. Subscription ids compare case-insensitively.

        :keyword resource_types: subscription -> the resource types written there (and the written resources'
            ids, for holds of one resource); each write also draws one token from every observed quota
            (:meth:`observe_headers`) that answers for its type, and the slowest of them decides the wait.
        """
        merged: dict[str, float] = {}
        for subscription_id, n in demand.items():
            key = ignore_case_key(subscription_id.strip())
            merged[key] = merged.get(key, 0.0) + n
        if not merged:
            return PaceVerdict(granted=True, wait_s=0.0)
        with self._lock:
            waits = {key: self._bucket(key).wait_time(n) for key, n in merged.items()}
            draws = self._quota_draws(merged, resource_types)
            for key, quota_wait in self._quota_waits(merged, draws).items():
                waits[key] = max(waits.get(key, 0.0), quota_wait)
            worst_key = max(waits, key=lambda key: waits[key])
            worst = waits[worst_key]
            if worst > max_wait_s:
                return PaceVerdict(granted=False, wait_s=worst, subscription_id=worst_key)
            for key, n in merged.items():
                self._bucket(key).reserve(n)
            for (scope, header), n in draws.items():
                self._quotas[(scope, header)].take(n)
        if worst > 0:
            logger.debug("pacing writes in subscription %s for %.3f s", worst_key, worst)
            self._sleep(worst)
        return PaceVerdict(granted=True, wait_s=worst, subscription_id=worst_key)

    def _quota_waits(
        self, merged: Mapping[str, float], draws: Mapping[tuple[str, str], float]
    ) -> dict[str, float]:
        """Subscription -> the longest wait of the observed quotas its writes draw (under the lock)."""
        waits: dict[str, float] = {}
        for (scope, header), n in draws.items():
            quota_wait = self._quotas[(scope, header)].wait_time(n)
            label = scope if scope != _TENANT else next(iter(merged))
            waits[label] = max(waits.get(label, 0.0), quota_wait)
        return waits

    def quota_wait(
        self, demand: Mapping[str, float], resource_types: Mapping[str, Collection[str]] | None
    ) -> tuple[float, str]:
        """The wait the observed quotas alone impose on ``demand`` (not the write buckets), and the
        subscription that sets it; nothing is taken."""
        merged = {ignore_case_key(k.strip()): float(n) for k, n in demand.items()}
        with self._lock:
            waits = self._quota_waits(merged, self._quota_draws(merged, resource_types))
        if not waits:
            return 0.0, ""
        worst = max(waits, key=lambda key: waits[key])
        return waits[worst], worst

    def take_quotas(
        self, demand: Mapping[str, float], resource_types: Mapping[str, Collection[str]] | None
    ) -> None:
        """Draw ``demand`` from the observed quotas its writes answer to (not from the write buckets)."""
        merged = {ignore_case_key(k.strip()): float(n) for k, n in demand.items()}
        with self._lock:
            for (scope, header), n in self._quota_draws(merged, resource_types).items():
                self._quotas[(scope, header)].take(n)

    def _quota_draws(
        self, merged: Mapping[str, float], resource_types: Mapping[str, Collection[str]] | None
    ) -> dict[tuple[str, str], float]:
        """(scope, header) -> tokens the writes draw from observed quotas (under the lock)."""
        draws: dict[tuple[str, str], float] = {}
        if not resource_types:
            return draws
        for subscription_id, types in resource_types.items():
            key = ignore_case_key(subscription_id.strip())
            if key not in merged:
                continue
            wanted = {t.lower() for t in types}
            for (scope, header), drawn_by in self._drawn_by.items():
                if scope not in (key, _TENANT) or not (drawn_by & wanted):
                    continue
                draws[(scope, header)] = draws.get((scope, header), 0.0) + merged[key]
        return draws

    def observe_headers(
        self,
        subscription_id: str,
        resource_type: str,
        headers: Mapping[str, str],
        *,
        refused: bool = False,
    ) -> None:
        """Read every ``x-ms-ratelimit-remaining-*`` header of a write's answer (see the module docstring).

        ``subscription-writes`` lowers the subscription's write bucket; every other header lowers (or starts)
        its :class:`ObservedQuota`, scoped to the tenant for ``tenant-*`` headers and to the subscription
        otherwise, and is remembered as drawn by ``resource_type``'s writes. Every answer is also counted
        (``refused``: it was a 429), so :meth:`throttled` can tell a provider that refuses most writes of a
        type from one that refused a few.
        """
        remaining = rate_limit_remaining(headers)
        sub = ignore_case_key(subscription_id.strip())
        kind = resource_type.lower()
        if kind:
            now = self._clock()
            with self._lock:
                answers = self._answers.setdefault((sub, kind), [])
                answers.append((now, refused))
                if len(answers) > 256 or now - answers[0][0] > RP_ESCALATE_WINDOW_S:
                    answers[:] = [a for a in answers if now - a[0] <= RP_ESCALATE_WINDOW_S][-256:]
        if not remaining:
            return
        with self._lock:
            for header, value in remaining.items():
                if header == WRITE_BUCKET_HEADER:
                    self._bucket(sub).observe_remaining(value)
                    continue
                scope = _TENANT if header.startswith("tenant-") else sub
                quota = self._quotas.get((scope, header))
                if quota is None:
                    quota = ObservedQuota.for_header(header, value, clock=self._clock)
                    self._quotas[(scope, header)] = quota
                quota.observe(value)
                self._drawn_by.setdefault((scope, header), set()).add(kind)

    def quota(self, subscription_id: str, header: str) -> ObservedQuota | None:
        """The observed quota ``header`` of the subscription (or of the tenant for ``tenant-*``), if seen."""
        scope = _TENANT if header.startswith("tenant-") else ignore_case_key(subscription_id.strip())
        with self._lock:
            return self._quotas.get((scope, header))

    def observe_remaining(self, subscription_id: str, remaining: float) -> None:
        """Feed back the server's ``x-ms-ratelimit-remaining-subscription-writes`` for ``subscription_id``."""
        with self._lock:
            self._bucket(subscription_id).observe_remaining(remaining)

    def throttled(
        self,
        subscription_id: str,
        retry_after_s: float,
        *,
        resource_type: str = "",
        code: str = "",
        target: str = "",
    ) -> None:
        """A write got 429 in ``subscription_id``: hold later writes until ``Retry-After`` passes.

        Which writes are held follows the limit that was hit (:func:`throttle_scope`): ARM's own throttling
        (``SubscriptionRequestsThrottled``, or a 429 that names no code) holds every write of the
        subscription. A resource provider's 429 (``TooManyRequests`` from Policy Insights, Storage, ...) holds
        writes to the refused resource (``target``, its id or request path) only, until
        :data:`RP_ESCALATE_AFTER` different resources of ``resource_type`` were refused within the window:
        while they were at least :data:`RP_ESCALATE_SHARE` of the type's answers: then the provider's own
        quota for the type ran out, and every write of that type is held. A write answers to its resource type
        and to its own id (``resource_types`` of :meth:`try_acquire`).
        """
        scoped = throttle_scope(code, resource_type)
        with self._lock:
            if not scoped:
                logger.info(
                    "write throttled in subscription %s (%s); holding every write %.1f s",
                    subscription_id,
                    code or "no code",
                    retry_after_s,
                )
                self._bucket(subscription_id).penalize(retry_after_s)
                return
            sub = ignore_case_key(subscription_id.strip())
            now = self._clock()
            refused = ignore_case_key(target.strip()) if target else ""
            recent = self._refusals.setdefault((sub, scoped), [])
            recent[:] = [(at, who) for at, who in recent if now - at <= RP_ESCALATE_WINDOW_S]
            recent.append((now, refused or f"(unnamed {len(recent)})"))
            self._prune_holds()
            answers = [a for a in self._answers.get((sub, scoped), []) if now - a[0] <= RP_ESCALATE_WINDOW_S]
            refusals = sum(1 for _, was_refused in answers if was_refused) or len(recent)
            share = refusals / max(len(answers), refusals)
            if len({who for _, who in recent}) < RP_ESCALATE_AFTER or share < RP_ESCALATE_SHARE:
                logger.info(
                    "write to %s throttled by its provider (%s); holding it %.1f s",
                    target or scoped,
                    code,
                    retry_after_s,
                )
                if refused:
                    self._hold(sub, refused, retry_after_s)
                return
            logger.info(
                "writes of %s throttled by their provider in subscription %s (%s, %d resources); holding"
                " them %.1f s",
                scoped,
                subscription_id,
                code,
                len(recent),
                retry_after_s,
            )
            self._hold(sub, scoped, retry_after_s)

    def _hold(self, sub: str, key: str, retry_after_s: float) -> None:
        """Hold writes that answer to ``key`` (a resource type or one resource's id) for ``retry_after_s``
        (under the lock)."""
        quota_key = (sub, f"{RP_THROTTLE_PREFIX}{key}")
        quota = self._quotas.get(quota_key)
        if quota is None:
            quota = ObservedQuota(QuotaSpec(1.0, 1.0), clock=self._clock)
            self._quotas[quota_key] = quota
            self._drawn_by[quota_key] = {key}
        quota.bucket.penalize(max(0.0, retry_after_s - 1.0))  # its one token is back after Retry-After

    def _prune_holds(self) -> None:
        """Forget holds that ran out (one per refused resource would otherwise pile up; under the lock)."""
        if len(self._quotas) < 256:
            return
        for key in [k for k, q in self._quotas.items() if k[1].startswith(RP_THROTTLE_PREFIX)]:
            if self._quotas[key].bucket.tokens >= 1.0:
                del self._quotas[key]
                self._drawn_by.pop(key, None)

    def available(self, subscription_id: str) -> float:
        """Tokens available now in ``subscription_id`` (negative while writes are promised)."""
        with self._lock:
            return self._bucket(subscription_id).tokens


class Pacer(Protocol):
    """What the executor and the gateways need of a pacer: :class:`WritePacer` (per process) or the shared
    budget in the host storage account (``adapters/shared_pacing.SharedWritePacer``)."""

    def try_acquire(
        self,
        demand: Mapping[str, float],
        *,
        max_wait_s: float,
        resource_types: Mapping[str, Collection[str]] | None = None,
    ) -> PaceVerdict: ...

    def throttled(
        self,
        subscription_id: str,
        retry_after_s: float,
        *,
        resource_type: str = "",
        code: str = "",
        target: str = "",
    ) -> None: ...

    def observe_headers(
        self,
        subscription_id: str,
        resource_type: str,
        headers: Mapping[str, str],
        *,
        refused: bool = False,
    ) -> None: ...


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
