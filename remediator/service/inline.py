"""A bounded pool for reconciles that run inside a time-limited invocation (Event Grid, HTTP).

An Event Grid delivery times out after 30 s and an HTTP request after 230 s, so a reconcile run "inline"
gets a budget; what does not finish within it is handed over to the work queue. Python cannot stop a running
thread: a reconcile that outlives its caller's budget keeps running until it returns. That is safe (the
reconciler's writes are claimed and idempotent, and the work item that took over finds the state it left),
but such leftovers must not pile up outside any invocation. So the pool runs at most ``max_workers``
reconciles and never queues one behind them: when every worker is busy, :func:`run_inline` refuses at once
and the caller hands over to the queue; a call whose budget ran out is cancelled if it has not started.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from typing import TypeVar

T = TypeVar("T")

INLINE_WORKERS = 4
"""Reconciles that may run inline at once per worker process."""


class InlineUnavailable(Exception):
    """The call did not finish inline (its budget ran out, or every inline worker was busy): hand it over."""


class InlinePool:
    """A thread pool that accepts work only while a worker is free (no backlog).

    :keyword max_workers: reconciles running at once, at most.
    """

    def __init__(self, *, max_workers: int = INLINE_WORKERS) -> None:
        self.max_workers = max_workers
        self._executor = ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="inline-reconcile")
        self._slots = threading.BoundedSemaphore(max_workers)
        self._idle = threading.Condition()
        self._busy = 0

    @property
    def busy(self) -> int:
        """Calls running now (including ones whose caller already gave up on them)."""
        with self._idle:
            return self._busy

    def try_submit(self, call: Callable[[], T]) -> Future[T] | None:
        """Run ``call`` on a free worker; ``None`` (nothing queued) when every worker is busy."""
        if not self._slots.acquire(blocking=False):
            return None
        with self._idle:
            self._busy += 1
        try:
            future = self._executor.submit(call)
        except BaseException:
            self._done()
            raise
        future.add_done_callback(lambda _f: self._done())
        return future

    def _done(self) -> None:
        with self._idle:
            self._busy -= 1
            self._idle.notify_all()
        self._slots.release()

    def wait_idle(self, *, timeout_s: float) -> bool:
        """Wait until no call runs; ``False`` if some still do after ``timeout_s``."""
        with self._idle:
            return self._idle.wait_for(lambda: self._busy == 0, timeout=timeout_s)

    def shutdown(self) -> None:
        """Stop accepting work and wait for running calls."""
        self._executor.shutdown(wait=True)


POOL = InlinePool()
"""The process's inline pool (shared by the event handlers and ``POST /api/remediate {clusterId}``)."""


def run_inline(call: Callable[[], T], *, budget_s: float, pool: InlinePool | None = None) -> T:
    """``call()`` on the inline pool, waiting at most ``budget_s`` seconds.

    :raises InlineUnavailable: the budget is spent or ran out (the call is cancelled if it had not started; a
        running one finishes on its own, idempotently), or every inline worker is busy.
    :raises Exception: whatever ``call`` raised within the budget.
    """
    pool = pool or POOL
    if budget_s <= 0:
        raise InlineUnavailable("inline budget already spent")
    future = pool.try_submit(call)
    if future is None:
        raise InlineUnavailable(f"all {pool.max_workers} inline workers are busy")
    try:
        return future.result(timeout=budget_s)
    except FutureTimeout as exc:
        future.cancel()
        raise InlineUnavailable(f"inline budget of {budget_s:.0f} s exhausted") from exc
