"""DataProtection's own quota header, ``x-ms-ratelimit-remaining-subscription-resource-requests``.

The recordings show DataProtection answering with this header instead of ARM's ``…-reads`` / ``…-writes``
(vault PUT 98, vault GET 499, vault operation status 998, policy PUT / BI DELETE / operation result 199).
This module keeps one fixed-window counter per subscription × principal × class and, when ``enforce`` is on,
answers 429 once a class is exhausted. It is deliberately self-contained: when the generic quota/throttle
model ("emu", issue 13 item 4) lands, ``charge`` is the one call to replace.
"""

from __future__ import annotations

import logging
import math
import threading

from emulator.dataprotection.settings import QuotaKnobs
from emulator.errors import ArmError

logger = logging.getLogger(__name__)

HEADER = "x-ms-ratelimit-remaining-subscription-resource-requests"


class ResourceRequestQuota:
    """Fixed windows per (subscription, principal, class); ``charge`` returns the header to send."""

    def __init__(self, knobs: QuotaKnobs) -> None:
        self.knobs = knobs
        self._lock = threading.Lock()
        self._windows: dict[tuple[str, str, str], tuple[float, int]] = {}

    def reset(self, knobs: QuotaKnobs | None = None) -> None:
        with self._lock:
            self._windows.clear()
            if knobs is not None:
                self.knobs = knobs

    def charge(self, subscription: str, principal: str | None, kind: str, now: float) -> dict[str, str]:
        """Count one request of class ``kind``; the remaining-count header, or 429 when enforced and empty."""
        knobs = self.knobs
        if not knobs.header and not knobs.enforce:
            return {}
        limit = knobs.limits.get(kind, knobs.limits["write"])
        key = (subscription.lower(), principal or "anonymous", kind)
        with self._lock:
            start, used = self._windows.get(key, (now, 0))
            if now - start >= knobs.window_s:
                start, used = now, 0
            if knobs.enforce and used >= limit:
                wait = max(1, math.ceil(start + knobs.window_s - now))
                raise ArmError(
                    429,
                    "SubscriptionRequestsThrottled",
                    f"Number of requests for subscription '{subscription}' exceeded the DataProtection "
                    f"'{kind}' quota. Please try again after '{wait}' seconds.",
                    headers={"Retry-After": str(wait), HEADER: "0"},
                )
            used += 1
            self._windows[key] = (start, used)
        return {HEADER: str(max(0, limit - used))} if knobs.header else {}
