"""Event Grid's delivery, as the chaos benchmark needs it: every event N times, some held back, retried.

Why it exists: the emulator's event bus delivers each event once (a duplicate with some probability) from a
pool of 8 threads, and it knows one endpoint per subscription. The chaos run needs every event delivered
exactly ``copies`` times (issue 17: four), 30 % of the copies held back so later events overtake them, spread
over several Functions instances behind one front end, and Event Grid's retry schedule when an instance dies
mid-delivery. So the emulator delivers each event once to this fan-out (which answers at once), and the
fan-out does what Event Grid does to the app:

- a copy is POSTed to ``/runtime/webhooks/eventgrid?functionName=<fn>`` of a live instance (round robin: the
  Functions front end's load balancing), with ``aeg-event-type: Notification`` and ``aeg-delivery-count``;
- 2xx is delivered; anything else (a 500, a refused or reset connection from a killed instance, no answer
  within 30 s) is retried after 10 s, 30 s, 1 min, 5 min, 10 min, 30 min, 1 h (Event Grid's documented
  schedule, platform_facts §1.8), up to 30 attempts;
- a held-back copy waits ``hold_s`` (uniform in a range) before its first attempt.

It runs in the benchmark process; the log of every attempt feeds the results (deliveries, retries).
"""

from __future__ import annotations

import heapq
import itertools
import json
import logging
import random
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

logger = logging.getLogger(__name__)

RETRY_SCHEDULE_S = (10.0, 30.0, 60.0, 300.0, 600.0, 1800.0, 3600.0)
MAX_ATTEMPTS = 30
DELIVERY_TIMEOUT_S = 30.0


@dataclass(order=True)
class _Copy:
    due: float
    seq: int
    function: str = field(compare=False)
    event: dict[str, Any] = field(compare=False)
    copy: int = field(compare=False)
    attempt: int = field(compare=False, default=0)
    held: bool = field(compare=False, default=False)


@dataclass
class FanoutStats:
    events: int = 0
    copies: int = 0
    held: int = 0
    delivered: int = 0
    failed_attempts: int = 0
    dead_lettered: int = 0
    by_status: dict[str, int] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "events": self.events,
            "copies": self.copies,
            "heldBack": self.held,
            "delivered": self.delivered,
            "failedAttempts": self.failed_attempts,
            "deadLettered": self.dead_lettered,
            "attemptsByStatus": dict(sorted(self.by_status.items())),
        }


class EventFanout:
    """The fan-out server (see the module docstring).

    :param pick: returns the base URL of a live instance, or ``None`` when none is up.
    :keyword copies: deliveries per event.
    :keyword reorder: share of copies held back.
    :keyword hold_s: (low, high) seconds a held-back copy waits.
    :keyword seed: the random source of the holds.
    :keyword workers: deliveries in flight at once.
    """

    def __init__(
        self,
        pick: Callable[[], str | None],
        *,
        copies: int = 4,
        reorder: float = 0.3,
        hold_s: tuple[float, float] = (1.0, 8.0),
        seed: int = 0,
        workers: int = 48,
    ) -> None:
        self.pick = pick
        self.copies = copies
        self.reorder = reorder
        self.hold_s = hold_s
        self._random = random.Random(seed)
        self._queue: list[_Copy] = []
        self._seq = itertools.count()
        self._cond = threading.Condition()
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="fanout")
        self._stopped = False
        self.stats = FanoutStats()
        self.in_flight = 0
        self.server: ThreadingHTTPServer | None = None
        self._threads: list[threading.Thread] = []

    # ---- receiving from the emulator ----------------------------------------------------------------
    def start(self) -> str:
        fanout = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                del format, args

            def do_POST(self) -> None:  # noqa: N802
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b"[]"
                function = self.path.rstrip("/").rsplit("/", 1)[-1]
                try:
                    events = json.loads(body)
                except ValueError:
                    events = []
                if self.headers.get("aeg-event-type", "").lower() == "notification":
                    for event in events if isinstance(events, list) else [events]:
                        fanout.publish(function, event)
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        serving = threading.Thread(target=self.server.serve_forever, name="fanout-http", daemon=True)
        scheduler = threading.Thread(target=self._run, name="fanout-scheduler", daemon=True)
        serving.start()
        scheduler.start()
        self._threads = [serving, scheduler]
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def publish(self, function: str, event: dict[str, Any]) -> None:
        now = time.monotonic()
        with self._cond:
            self.stats.events += 1
            for copy in range(self.copies):
                held = self.reorder > 0 and self._random.random() < self.reorder
                delay = self._random.uniform(*self.hold_s) if held else 0.0
                self.stats.copies += 1
                self.stats.held += int(held)
                heapq.heappush(
                    self._queue, _Copy(now + delay, next(self._seq), function, event, copy, 0, held)
                )
            self._cond.notify_all()

    # ---- delivering to the app ----------------------------------------------------------------------
    def _run(self) -> None:
        while True:
            with self._cond:
                if self._stopped:
                    return
                if not self._queue:
                    self._cond.wait(timeout=0.5)
                    continue
                wait = self._queue[0].due - time.monotonic()
                if wait > 0:
                    self._cond.wait(timeout=min(wait, 0.5))
                    continue
                item = heapq.heappop(self._queue)
                self.in_flight += 1
            self._pool.submit(self._attempt, item)

    def _attempt(self, item: _Copy) -> None:
        try:
            self._deliver(item)
        finally:
            with self._cond:
                self.in_flight -= 1
                self._cond.notify_all()

    def _deliver(self, item: _Copy) -> None:
        base = self.pick()
        status = "no-instance"
        if base is not None:
            request = urllib.request.Request(
                f"{base}/runtime/webhooks/eventgrid?functionName={item.function}",
                data=json.dumps([item.event]).encode(),
                method="POST",
                headers={
                    "Content-Type": "application/json",
                    "aeg-event-type": "Notification",
                    "aeg-subscription-name": f"CHAOS-{item.function.upper()}",
                    "aeg-delivery-count": str(item.attempt),
                    "aeg-data-version": str(item.event.get("dataVersion", "")),
                    "aeg-metadata-version": "1",
                },
            )
            try:
                with urllib.request.urlopen(request, timeout=DELIVERY_TIMEOUT_S) as response:  # noqa: S310
                    status = str(response.status)
            except urllib.error.HTTPError as exc:
                status = str(exc.code)
            except (urllib.error.URLError, OSError, TimeoutError) as exc:
                status = type(exc).__name__
        with self._cond:
            self.stats.by_status[status] = self.stats.by_status.get(status, 0) + 1
            if status.isdigit() and 200 <= int(status) < 300:
                self.stats.delivered += 1
                return
            self.stats.failed_attempts += 1
            attempt = item.attempt + 1
            if attempt >= MAX_ATTEMPTS:
                self.stats.dead_lettered += 1
                return
            delay = 1.0 if base is None else RETRY_SCHEDULE_S[min(attempt - 1, len(RETRY_SCHEDULE_S) - 1)]
            heapq.heappush(
                self._queue,
                _Copy(
                    time.monotonic() + delay, next(self._seq), item.function, item.event, item.copy, attempt
                ),
            )
            self._cond.notify_all()

    def pending(self) -> int:
        """Copies waiting (held back or for a retry) or in flight."""
        with self._cond:
            return len(self._queue) + self.in_flight

    def stop(self) -> None:
        with self._cond:
            self._stopped = True
            self._cond.notify_all()
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
        self._pool.shutdown(wait=False, cancel_futures=True)
