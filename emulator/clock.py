"""Injectable time, so lifecycles (Creating → Succeeded) and token buckets are deterministic in tests."""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from typing import Protocol

logger = logging.getLogger(__name__)


class Clock(Protocol):
    def now(self) -> float:
        """Seconds since the epoch (float)."""
        ...


class SystemClock:
    """Wall-clock time."""

    def now(self) -> float:
        return time.time()


class ManualClock:
    """A clock that only moves when told to (``advance``); thread-safe."""

    def __init__(self, start: float = 1_798_761_600.0) -> None:  # 2027-01-01T00:00:00Z
        self._now = start
        self._lock = threading.Lock()

    def now(self) -> float:
        with self._lock:
            return self._now

    def advance(self, seconds: float) -> float:
        with self._lock:
            self._now += seconds
            return self._now


def iso(ts: float) -> str:
    """ARM timestamp format (UTC, seconds precision with fraction, trailing Z)."""
    return dt.datetime.fromtimestamp(ts, dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
