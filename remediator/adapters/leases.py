"""Keep short leases alive while their holder works: one daemon thread per process renews every tracked lease.

Why it exists: a durable claim (``claims.py``) or a chain's successor message (``chains.py``) stands for work
in progress in *this* process. If it lasted a long fixed time, a process that died mid-work would block the
cluster for all of it (issue 17: claims held 300 s by dead hosts). Instead each lease is short
(:data:`LEASE_S`) and renewed here every :data:`RENEW_EVERY_S` while its holder is alive; a dead process stops
renewing, so its leases run out within :data:`LEASE_S` and another instance takes over.

A renewal that fails (the lease was lost: someone took it over because renewals were late) is reported to the
lease's ``on_lost`` and the lease is no longer tracked; a renewal that raises (storage hiccup) is retried on
the next round (the lease still has ``LEASE_S - RENEW_EVERY_S`` seconds left).
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass

logger = logging.getLogger(__name__)

LEASE_S = 30.0
"""How long a claim or a running hop's successor stands without renewal (what a dead process costs others)."""

RENEW_EVERY_S = 8.0
"""How often a live holder renews its leases (a renewal may be late by up to ``LEASE_S - RENEW_EVERY_S``)."""


_HOST = socket.gethostname()
"""The host name, read once (a syscall every claim took on the event path)."""


def process_identity() -> str:
    """``<host>/<pid>``: who holds a lease, for diagnostics (and so a crashed process's leases are
    attributable).

    In Azure the host name is the Functions instance's; locally it tells the local runner's processes apart.
    The pid is read each time: a forked process is another holder.
    """
    return f"{_HOST}/{os.getpid()}"


def new_owner() -> str:
    """A fresh owner id for one lease: ``<host>/<pid>/<12 hex>``."""
    return f"{process_identity()}/{uuid.uuid4().hex[:12]}"


@dataclass
class _Tracked:
    renew: Callable[[], bool]
    on_lost: Callable[[], None] | None
    next_at: float


class LeaseRenewer:
    """Renews tracked leases on a daemon thread (started on first use).

    :keyword every_s: seconds between two renewals of one lease.
    :keyword clock: monotonic seconds (injected in tests).
    """

    def __init__(
        self, *, every_s: float = RENEW_EVERY_S, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.every_s = every_s
        self._clock = clock
        self._tracked: dict[object, _Tracked] = {}
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None

    def track(
        self, key: object, renew: Callable[[], bool], *, on_lost: Callable[[], None] | None = None
    ) -> None:
        """Renew ``key`` every ``every_s`` by calling ``renew()`` (``False`` = lost) until :meth:`untrack`."""
        with self._cond:
            self._tracked[key] = _Tracked(renew, on_lost, self._clock() + self.every_s)
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="lease-renewer", daemon=True)
                self._thread.start()
            self._cond.notify_all()

    def untrack(self, key: object) -> None:
        with self._cond:
            self._tracked.pop(key, None)

    @property
    def tracked(self) -> int:
        with self._cond:
            return len(self._tracked)

    def renew_due(self) -> None:
        """Renew every lease whose turn has come (the thread's loop body; tests call it directly)."""
        now = self._clock()
        with self._cond:
            due = [(key, t) for key, t in self._tracked.items() if t.next_at <= now]
        for key, tracked in due:
            try:
                kept = tracked.renew()
            except Exception:  # storage hiccup: the lease has time left, try again next round
                logger.warning("renewing lease %s failed; retrying", key, exc_info=True)
                with self._cond:
                    if self._tracked.get(key) is tracked:
                        tracked.next_at = self._clock() + min(2.0, self.every_s)
                continue
            with self._cond:
                if self._tracked.get(key) is not tracked:
                    continue
                if kept:
                    tracked.next_at = self._clock() + self.every_s
                    continue
                del self._tracked[key]
            logger.warning("lease %s was lost (taken over while this process held it)", key)
            if tracked.on_lost is not None:
                tracked.on_lost()

    def _run(self) -> None:
        while True:
            with self._cond:
                if self._tracked:
                    wait = max(0.05, min(t.next_at for t in self._tracked.values()) - self._clock())
                else:
                    wait = 60.0
                self._cond.wait(timeout=wait)
            self.renew_due()


RENEWER = LeaseRenewer()
"""The process's renewer (claims and chain hops share it)."""
