"""Resource-provider quotas: the request budgets some providers keep besides ARM's buckets, and their headers.

Recorded Azure traffic (``shared/recordings``) shows two, each on top of ARM's own headers:

- Policy Insights answers a remediation PUT with ``x-ms-ratelimit-remaining-policy-insights-requests: 149``
  (azure-cli__policyinsights__test_policy_insights_remediation.json, 2025) — a budget of about 150;
- DataProtection answers its vault/policy/instance calls with
  ``x-ms-ratelimit-remaining-subscription-resource-requests`` (values 98 to 998 in
  azure-cli-extensions__dataprotection__*.json, 2024-2025) instead of ARM's ``-writes``/``-reads``.

Each quota is a token bucket per (subscription, principal), like ARM's (emulator.throttle). Its header is sent
on every answer to a call that draws from it; with the quota's throttling switched off the bucket is not drawn
from and the header reports a full bucket less this call. Switched on, an empty bucket answers 429 with
``Retry-After`` (whole seconds) before the handler runs. Sizes, refill rates and the 429 code are our
assumptions (A): Microsoft documents neither quota; the knobs exist to test a client against them.

Which calls draw from which quota is declared where the routes are: a route module calls
``ctx.runtime.quotas.attach(name, operations=..., namespaces=..., methods=...)`` in ``register``. Knobs:
``PATCH /_emulator/config {"quotas": {"policyInsights": {"enabled": true, "burst": 150, "perSecond": 0.5}}}``.
"""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from emulator.clock import Clock
from emulator.model.ids import fold

logger = logging.getLogger(__name__)

POLICY_INSIGHTS = "policyInsights"
DATA_PROTECTION = "dataProtection"


@dataclass
class QuotaSpec:
    """One provider quota: its header, bucket size and refill, and whether it refuses calls (throttling)."""

    header: str
    burst: float
    per_second: float
    enabled: bool = False
    error_code: str = "TooManyRequests"

    def to_json(self) -> dict[str, Any]:
        return {
            "header": self.header,
            "enabled": self.enabled,
            "burst": self.burst,
            "perSecond": self.per_second,
            "errorCode": self.error_code,
        }

    def update(self, data: dict[str, Any]) -> None:
        unknown = set(data) - {"enabled", "burst", "perSecond", "errorCode", "header"}
        if unknown:
            raise ValueError(f"unknown quota fields: {sorted(unknown)}")
        if "header" in data and str(data["header"]).lower() != self.header.lower():
            raise ValueError("a quota's header cannot change")
        if "enabled" in data:
            self.enabled = bool(data["enabled"])
        if "burst" in data:
            if float(data["burst"]) < 1:
                raise ValueError("burst must be >= 1")
            self.burst = float(data["burst"])
        if "perSecond" in data:
            if float(data["perSecond"]) < 0:
                raise ValueError("perSecond must be >= 0")
            self.per_second = float(data["perSecond"])
        if "errorCode" in data:
            self.error_code = str(data["errorCode"])


def default_quotas() -> dict[str, QuotaSpec]:
    """The quotas the recordings show, at sizes near the recorded headers (refill rates assumed)."""
    return {
        POLICY_INSIGHTS: QuotaSpec("x-ms-ratelimit-remaining-policy-insights-requests", 150, 0.5),
        DATA_PROTECTION: QuotaSpec("x-ms-ratelimit-remaining-subscription-resource-requests", 200, 2.0),
    }


@dataclass(frozen=True)
class Attachment:
    quota: str
    operations: frozenset[str] = frozenset()
    namespaces: frozenset[str] = frozenset()
    """Folded provider namespaces (every operation of the namespace draws, unless ``operations`` is set)."""
    methods: frozenset[str] | None = None

    def matches(self, operation: str, namespace: str | None, method: str) -> bool:
        if self.methods is not None and method not in self.methods:
            return False
        if self.operations:
            return operation in self.operations
        return namespace is not None and namespace in self.namespaces


@dataclass(frozen=True)
class QuotaVerdict:
    allowed: bool
    headers: dict[str, str]
    quota: str = ""
    retry_after_s: int = 0
    error_code: str = ""


class _Bucket:
    __slots__ = ("tokens", "stamp")

    def __init__(self, tokens: float, stamp: float) -> None:
        self.tokens = tokens
        self.stamp = stamp


@dataclass
class ProviderQuotas:
    """Attachments (which calls draw) and buckets (what is left); the specs live in the config."""

    specs: dict[str, QuotaSpec]
    clock: Clock
    attachments: list[Attachment] = field(default_factory=list)
    _buckets: dict[tuple[str, str, str], _Bucket] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def attach(
        self,
        quota: str,
        *,
        operations: Iterable[str] = (),
        namespaces: Iterable[str] = (),
        methods: Iterable[str] | None = None,
    ) -> Attachment:
        """Calls of these route operations (or, without ``operations``, of these provider namespaces) draw
        from ``quota``; ``methods`` narrows either to some HTTP methods."""
        if quota not in self.specs:
            raise KeyError(f"unknown quota {quota!r} (known: {sorted(self.specs)})")
        attachment = Attachment(
            quota,
            frozenset(operations),
            frozenset(fold(n) for n in namespaces),
            None if methods is None else frozenset(m.upper() for m in methods),
        )
        if not attachment.operations and not attachment.namespaces:
            raise ValueError("attach needs operations or namespaces")
        self.attachments.append(attachment)
        return attachment

    def reset(self) -> None:
        with self._lock:
            self._buckets.clear()

    def check(
        self, *, operation: str, namespace: str | None, method: str, subscription: str, principal: str
    ) -> QuotaVerdict:
        """Draw one token from every quota the call is attached to; the headers to send, or a refusal."""
        names = sorted({a.quota for a in self.attachments if a.matches(operation, namespace, method.upper())})
        headers: dict[str, str] = {}
        now = self.clock.now()
        for name in names:
            spec = self.specs[name]
            if not spec.enabled:
                headers[spec.header] = str(max(0, int(spec.burst) - 1))
                continue
            with self._lock:
                key = (name, subscription, principal)
                bucket = self._buckets.get(key)
                if bucket is None:
                    bucket = self._buckets[key] = _Bucket(spec.burst, now)
                else:
                    bucket.tokens = min(spec.burst, bucket.tokens + (now - bucket.stamp) * spec.per_second)
                    bucket.stamp = now
                if bucket.tokens < 1:
                    wait = (1 - bucket.tokens) / spec.per_second if spec.per_second > 0 else 3600.0
                    headers[spec.header] = "0"
                    return QuotaVerdict(False, headers, name, max(1, math.ceil(wait)), spec.error_code)
                bucket.tokens -= 1
                headers[spec.header] = str(int(bucket.tokens))
        return QuotaVerdict(True, headers)
