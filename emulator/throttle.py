"""ARM's 2024 throttling model: regional token buckets per subscription and principal, plus a global cap.

Documented (platform_facts.md §3.1, learn: request-limits-and-throttling): per subscription, per principal and
per operation type — reads 250 burst / 25 per s, writes 200 / 10 per s, deletes 200 / 10 per s — and a global
subscription limit of 15× the per-principal limit shared by all principals; tenant-level calls have the same
numbers per tenant. Over the limit: 429 with Retry-After (seconds). We model one region (the emulator's).

Headers: ARM reports what is left on every answer, throttled or not —
``x-ms-ratelimit-remaining-subscription-writes`` on writes, ``-deletes`` on deletes (recorded Azure traffic,
2021-2025) and, since the 2024 model, the global bucket as ``-global-reads|writes|deletes`` (recorded 2025).
With throttling switched off the buckets are not drawn from and the headers report a full bucket (less this
call), so a client reading them never slows down for a quota the emulator does not enforce.
"""

from __future__ import annotations

import logging
import math
import threading
from dataclasses import dataclass

from emulator.clock import Clock

logger = logging.getLogger(__name__)


@dataclass
class BucketSpec:
    burst: float
    per_second: float


@dataclass
class ThrottleSettings:
    """Sizes are adjustable at run time via the admin API (``/_emulator/config``)."""

    enabled: bool = False
    reads: BucketSpec = None  # type: ignore[assignment]
    writes: BucketSpec = None  # type: ignore[assignment]
    deletes: BucketSpec = None  # type: ignore[assignment]
    global_multiplier: float = 15.0

    def __post_init__(self) -> None:
        self.reads = self.reads or BucketSpec(250, 25)
        self.writes = self.writes or BucketSpec(200, 10)
        self.deletes = self.deletes or BucketSpec(200, 10)

    def spec(self, kind: str) -> BucketSpec:
        spec: BucketSpec = getattr(self, kind)
        return spec

    def to_json(self) -> dict[str, object]:
        return {
            "enabled": self.enabled,
            "reads": {"burst": self.reads.burst, "perSecond": self.reads.per_second},
            "writes": {"burst": self.writes.burst, "perSecond": self.writes.per_second},
            "deletes": {"burst": self.deletes.burst, "perSecond": self.deletes.per_second},
            "globalMultiplier": self.global_multiplier,
        }

    def update(self, data: dict[str, object]) -> None:
        if "enabled" in data:
            self.enabled = bool(data["enabled"])
        for kind in ("reads", "writes", "deletes"):
            value = data.get(kind)
            if isinstance(value, dict):
                spec = self.spec(kind)
                spec.burst = float(value.get("burst", spec.burst))
                spec.per_second = float(value.get("perSecond", spec.per_second))
        if "globalMultiplier" in data:
            self.global_multiplier = float(data["globalMultiplier"])  # type: ignore[arg-type]


class _Bucket:
    __slots__ = ("tokens", "stamp")

    def __init__(self, tokens: float, stamp: float) -> None:
        self.tokens = tokens
        self.stamp = stamp


@dataclass(frozen=True)
class Verdict:
    allowed: bool
    remaining: int
    retry_after_s: int
    global_remaining: int = 0


def operation_kind(method: str, path: str = "") -> str:
    """reads for GET/HEAD and for POST list actions (``.../listDeployments``: recorded with
    ``x-ms-ratelimit-remaining-subscription-global-reads``), deletes for DELETE, writes otherwise."""
    method = method.upper()
    if method in ("GET", "HEAD"):
        return "reads"
    if method == "POST" and path.rstrip("/").rsplit("/", 1)[-1][:4].lower() == "list":
        return "reads"
    if method == "DELETE":
        return "deletes"
    return "writes"


class Throttler:
    """Token buckets keyed by (scope, principal, kind) and (scope, kind) for the global cap."""

    def __init__(self, settings: ThrottleSettings, clock: Clock) -> None:
        self.settings = settings
        self.clock = clock
        self._lock = threading.Lock()
        self._buckets: dict[tuple[str, str, str], _Bucket] = {}

    def reset(self) -> None:
        with self._lock:
            self._buckets.clear()

    def _take(self, key: tuple[str, str, str], spec: BucketSpec, now: float) -> tuple[bool, float, float]:
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = self._buckets[key] = _Bucket(spec.burst, now)
        else:
            bucket.tokens = min(spec.burst, bucket.tokens + (now - bucket.stamp) * spec.per_second)
            bucket.stamp = now
        if bucket.tokens >= 1:
            bucket.tokens -= 1
            return True, bucket.tokens, 0.0
        wait = (1 - bucket.tokens) / spec.per_second if spec.per_second > 0 else 3600.0
        return False, bucket.tokens, wait

    def check(self, scope: str, principal: str, kind: str) -> Verdict:
        """Take one token from the principal's bucket and the scope's global bucket (both must allow).

        With throttling off nothing is taken: the verdict allows and reports full buckets less this call."""
        spec = self.settings.spec(kind)
        glob = BucketSpec(
            spec.burst * self.settings.global_multiplier, spec.per_second * self.settings.global_multiplier
        )
        if not self.settings.enabled:
            return Verdict(True, max(0, int(spec.burst) - 1), 0, max(0, int(glob.burst) - 1))
        now = self.clock.now()
        with self._lock:
            ok_p, left_p, wait_p = self._take((scope, principal, kind), spec, now)
            if not ok_p:
                return Verdict(False, 0, max(1, math.ceil(wait_p)))
            ok_g, left_g, wait_g = self._take((scope, "*", kind), glob, now)
            if not ok_g:
                # give the principal's token back: the request is not processed
                self._buckets[(scope, principal, kind)].tokens += 1
                return Verdict(False, 0, max(1, math.ceil(wait_g)))
            return Verdict(True, int(left_p), 0, int(left_g))
