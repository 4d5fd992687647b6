"""Queue triggers against Azurite (or any Storage account), with the host's message handling.

The host's queue extension: bodies are base64 (``messageEncoding``), a message is invoked with its dequeue
count, deleted after a successful invocation, released again after ``visibilityTimeout`` when the invocation
fails, and moved to ``<queue>-poison`` once it has been dequeued ``maxDequeueCount`` times. Queue output
bindings are sent base64-encoded too. Polling backs off from 100 ms to ``maxPollingInterval`` while a queue
is empty.

Like the host's ``QueueListener`` (azure-webjobs-sdk, ``_visibilityTimeout = TimeSpan.FromMinutes(10)``), a
message is received hidden for 10 minutes and that lock is renewed while its function runs, so a host that
dies leaves its in-flight messages hidden for up to 10 minutes. A new batch is fetched as soon as fewer than
``newBatchThreshold`` messages are in flight (the host's parallelism is ``batchSize + newBatchThreshold``).
"""

from __future__ import annotations

import base64
import contextlib
import logging
import threading
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import requests
from azure.core.exceptions import ResourceExistsError
from azure.core.pipeline.transport import RequestsTransport
from azure.functions.queue import QueueMessage
from azure.storage.queue import QueueClient, QueueServiceClient
from azure.storage.queue import QueueMessage as StorageQueueMessage
from requests.adapters import HTTPAdapter

from tools.local_runner.host import FunctionIndex, RegisteredFunction
from tools.local_runner.settings import HostConfig

logger = logging.getLogger(__name__)

_MIN_POLL_S = 0.1
MESSAGE_LOCK_S = 600
"""How long a received message stays hidden while its function runs (renewed at half of it)."""


def _decode_body(content: str) -> bytes:
    return base64.b64decode(content.encode("ascii"), validate=True)


def _encode_body(value: Any) -> str:
    raw = value if isinstance(value, bytes) else str(value).encode("utf-8")
    return base64.b64encode(raw).decode("ascii")


class _MessageLock:
    """Keeps a received message hidden while its function runs (renewed at half of ``MESSAGE_LOCK_S``)."""

    def __init__(self, queue: QueueClient, message: StorageQueueMessage) -> None:
        self.queue = queue
        self.message = message
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._renew, daemon=True)
        self._thread.start()

    def _renew(self) -> None:
        while not self._done.wait(MESSAGE_LOCK_S / 2):
            try:
                updated = self.queue.update_message(
                    self.message.id, self.message.pop_receipt, visibility_timeout=MESSAGE_LOCK_S
                )
                self.message.pop_receipt = updated.pop_receipt
                self.message.next_visible_on = updated.next_visible_on
            except Exception:
                logger.warning("renewing the lock of message %s failed", self.message.id, exc_info=True)

    def stop(self) -> StorageQueueMessage:
        self._done.set()
        self._thread.join(timeout=30)  # a renewal in flight changes the pop receipt the caller needs
        return self.message


class QueueTriggerPoller:
    """One polling loop per queue-triggered function."""

    def __init__(
        self,
        *,
        index: FunctionIndex,
        function: RegisteredFunction,
        environ: Mapping[str, str],
        config: HostConfig,
        max_poll_s: float | None = None,
    ) -> None:
        self.index = index
        self.function = function
        self.environ = environ
        self.config = config
        self.queue_name = str(function.trigger["queueName"])
        self.threshold = config.new_batch_threshold or max(1, config.batch_size // 2)
        self.service = self.service_for(str(function.trigger.get("connection") or "AzureWebJobsStorage"))
        self.queue = self.service.get_queue_client(self.queue_name)
        self.poison = self.service.get_queue_client(f"{self.queue_name}-poison")
        self.max_poll_s = min(max_poll_s or 1e9, config.max_polling_interval.total_seconds()) or _MIN_POLL_S
        self._stop = threading.Event()
        self._pool = ThreadPoolExecutor(max_workers=config.batch_size + self.threshold)
        self._running = 0
        self._running_lock = threading.Condition()
        self._thread = threading.Thread(target=self._loop, name=f"queue-{self.queue_name}", daemon=True)

    def service_for(self, connection: str) -> QueueServiceClient:
        conn = self.environ.get(connection)
        if not conn:
            raise KeyError(
                f"queue trigger {self.function.name}: connection setting {connection!r} is not set"
            )
        # one connection per invocation in flight (batchSize + newBatchThreshold) plus the poller's own:
        # the default pool of 10 overflowed ("Connection pool is full") with 24 invocations deleting their
        # messages
        session = requests.Session()
        adapter = HTTPAdapter(pool_maxsize=self.config.batch_size + self.threshold + 8)
        session.mount("http://", adapter)
        session.mount("https://", adapter)
        return QueueServiceClient.from_connection_string(
            conn, transport=RequestsTransport(session=session, session_owner=True)
        )

    def start(self) -> None:
        for client in (self.queue, self.poison):
            with contextlib.suppress(ResourceExistsError):
                client.create_queue()
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        with self._running_lock:
            self._running_lock.notify_all()
        self._thread.join(timeout=5)
        self._pool.shutdown(wait=True, cancel_futures=True)

    def _loop(self) -> None:
        delay = _MIN_POLL_S
        while not self._stop.is_set():
            with self._running_lock:  # like the host: fetch again once fewer than newBatchThreshold run
                self._running_lock.wait_for(
                    lambda: self._running < self.threshold or self._stop.is_set(), timeout=1.0
                )
                if self._running >= self.threshold:
                    continue
            try:
                batch = list(
                    self.queue.receive_messages(
                        messages_per_page=self.config.batch_size,
                        max_messages=self.config.batch_size,
                        visibility_timeout=MESSAGE_LOCK_S,
                    )
                )
            except Exception:
                logger.exception("polling %s failed", self.queue_name)
                batch = []
            if not batch:
                self._stop.wait(delay)
                delay = min(delay * 2, self.max_poll_s)
                continue
            delay = _MIN_POLL_S
            with self._running_lock:
                self._running += len(batch)
            for message in batch:
                self._pool.submit(self._run_one, message)

    def _run_one(self, message: StorageQueueMessage) -> None:
        try:
            self._process(message)
        except Exception:
            logger.exception("handling message %s of %s failed", message.id, self.queue_name)
        finally:
            with self._running_lock:
                self._running -= 1
                self._running_lock.notify_all()

    def _process(self, message: StorageQueueMessage) -> None:
        count = int(message.dequeue_count or 0)
        if count > self.config.max_dequeue_count:
            self._move_to_poison(message, why=f"dequeue count {count} already above the maximum")
            return
        try:
            body = _decode_body(message.content)
        except ValueError:
            logger.error(
                "message %s in %s is not base64; the host cannot decode it", message.id, self.queue_name
            )
            self._failed(message, count)
            return
        trigger = QueueMessage(  # type: ignore[no-untyped-call]
            id=message.id,
            body=body,
            dequeue_count=count,
            expiration_time=message.expires_on,
            insertion_time=message.inserted_on,
            time_next_visible=message.next_visible_on,
            pop_receipt=message.pop_receipt,
        )
        lock = _MessageLock(self.queue, message)
        try:
            _, outputs = self.index.invoke(self.function, trigger, reason="New queue message detected")
        except Exception:
            self._failed(lock.stop(), count)
            return
        message = lock.stop()
        self.send_outputs(outputs)
        self.queue.delete_message(message.id, message.pop_receipt)

    def _failed(self, message: StorageQueueMessage, count: int) -> None:
        if count >= self.config.max_dequeue_count:
            self._move_to_poison(message, why=f"failed {count} times")
        else:
            self.queue.update_message(
                message.id,
                message.pop_receipt,
                visibility_timeout=int(self.config.visibility_timeout.total_seconds()),
            )

    def _move_to_poison(self, message: StorageQueueMessage, *, why: str) -> None:
        logger.warning(
            "moving message %s from %s to %s (%s)", message.id, self.queue_name, self.poison.queue_name, why
        )
        self.poison.send_message(message.content)
        self.queue.delete_message(message.id, message.pop_receipt)

    def send_outputs(self, outputs: list[tuple[Mapping[str, Any], Any]]) -> None:
        for binding, value in outputs:
            if binding["type"] != "queue":
                logger.warning("output binding type %s is not supported by the local runner", binding["type"])
                continue
            client: QueueClient = self.service_for(
                str(binding.get("connection") or "AzureWebJobsStorage")
            ).get_queue_client(str(binding["queueName"]))
            with contextlib.suppress(ResourceExistsError):
                client.create_queue()
            for item in value if isinstance(value, list) else [value]:
                client.send_message(_encode_body(item))
