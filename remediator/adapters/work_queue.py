"""Durable work items on an Azure Storage queue, encoded the way the Functions host expects.

The Functions queue trigger base64-decodes message bodies by default, so messages are sent with
``TextBase64EncodePolicy``; a raw-text message would land in the poison queue. The work-item contract (its
JSON and its one parser) is :mod:`remediator.core.work_item`. The host's poison queue is ``<queue>-poison``.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from dataclasses import dataclass
from typing import Any

from azure.core.exceptions import HttpResponseError, ResourceExistsError, ResourceNotFoundError
from azure.storage.queue import QueueClient, TextBase64DecodePolicy, TextBase64EncodePolicy

from remediator.adapters.clients import STORAGE_OPTIONS
from remediator.core.errors import UserInputError
from remediator.core.ids import ResourceId
from remediator.core.settings import Settings
from remediator.core.work_item import Source, WorkItem

logger = logging.getLogger(__name__)

MAX_VISIBILITY_DELAY_S = 7 * 24 * 3600
"""A queue message can be hidden for at most 7 days."""


def poison_queue_name(queue: str) -> str:
    """The Functions host's poison queue for ``queue``."""
    return f"{queue}-poison"


@dataclass(frozen=True)
class SentMessage:
    """A message this process sent, with the pop receipt that lets it change or delete the message later
    (``send_message`` answers one; each update answers a new one)."""

    id: str
    pop_receipt: str


class WorkQueue:
    """The work queue (and its poison queue).

    :param queue: a ``QueueClient`` configured with the base64 message policies.
    """

    def __init__(self, queue: QueueClient) -> None:
        self.queue = queue
        self._ready = False
        self._lock = threading.Lock()

    @staticmethod
    def _client(settings: Settings, name: str, credential: Any) -> QueueClient:
        policies: dict[str, Any] = {
            "message_encode_policy": TextBase64EncodePolicy(),
            "message_decode_policy": TextBase64DecodePolicy(),
            **STORAGE_OPTIONS.queue_kwargs(),  # bounded retries and timeouts (see StorageClientOptions)
        }
        if settings.storage_connection_string:
            return QueueClient.from_connection_string(settings.storage_connection_string, name, **policies)
        if settings.queue_service_uri:
            if credential is None:
                raise ValueError("identity-based queue access needs the process's credential")
            return QueueClient(settings.queue_service_uri, name, credential=credential, **policies)
        raise UserInputError(
            "no storage configured for the work queue", field="AzureWebJobsStorage", source="app settings"
        )

    @classmethod
    def from_settings(cls, settings: Settings, *, credential: Any = None, poison: bool = False) -> WorkQueue:
        """The queue named by ``REMEDIATOR_WORK_QUEUE`` (or its poison queue) in the host storage account
        (connection string, or the queue service URI with ``credential``, the process's one credential)."""
        name = poison_queue_name(settings.work_queue) if poison else settings.work_queue
        return cls(cls._client(settings, name, credential))

    def ensure_queue(self, *, timeout_s: float | None = None) -> None:
        """Create the queue once per process (idempotent); ``timeout_s`` bounds the call with its retries."""
        if self._ready:
            return
        with self._lock:
            if self._ready:
                return
            call = STORAGE_OPTIONS.within(timeout_s) if timeout_s is not None else {}
            with contextlib.suppress(ResourceExistsError):
                self.queue.create_queue(**call)
            self._ready = True

    def enqueue(self, item: WorkItem, *, delay_s: float = 0.0, timeout_s: float | None = None) -> str:
        """Send the item, hidden for ``delay_s`` seconds (capped at 7 days); returns the message id.

        :keyword timeout_s: time left for this enqueue (an Event Grid invocation's remaining budget); retries
            and socket timeouts are shrunk to fit it. ``None``: the client's bounded defaults.
        """
        deadline = time.monotonic() + timeout_s if timeout_s is not None else None
        self.ensure_queue(timeout_s=timeout_s / 2 if timeout_s is not None else None)
        delay = int(max(0.0, min(float(delay_s), MAX_VISIBILITY_DELAY_S)))
        call = STORAGE_OPTIONS.within(deadline - time.monotonic()) if deadline is not None else {}
        message = self.queue.send_message(item.to_message(), visibility_timeout=delay or None, **call)
        logger.debug("enqueued %s (attempt %d, delay %d s)", item.cluster_id, item.attempt, delay)
        return str(message.id)

    def send(self, item: WorkItem, *, delay_s: float, timeout_s: float | None = None) -> SentMessage:
        """Send the item hidden for ``delay_s`` seconds and return what it takes to change it later."""
        deadline = time.monotonic() + timeout_s if timeout_s is not None else None
        self.ensure_queue(timeout_s=timeout_s / 2 if timeout_s is not None else None)
        delay = int(max(0.0, min(float(delay_s), MAX_VISIBILITY_DELAY_S)))
        call = STORAGE_OPTIONS.within(deadline - time.monotonic()) if deadline is not None else {}
        message = self.queue.send_message(item.to_message(), visibility_timeout=delay or None, **call)
        return SentMessage(str(message.id), str(message.pop_receipt))

    def reschedule(
        self, sent: SentMessage, *, delay_s: float, item: WorkItem | None = None
    ) -> SentMessage | None:
        """Hide a message this process sent for ``delay_s`` more seconds (and replace its body with ``item``);
        ``None`` when the message is gone or a worker already received it (its pop receipt changed)."""
        delay = int(max(0.0, min(float(delay_s), MAX_VISIBILITY_DELAY_S)))
        try:
            updated = self.queue.update_message(
                sent.id,
                pop_receipt=sent.pop_receipt,
                content=item.to_message() if item is not None else None,
                visibility_timeout=delay,
            )
        except ResourceNotFoundError:
            return None
        except HttpResponseError as exc:
            if exc.status_code in (400, 404):  # 400: pop receipt mismatch (a worker received it)
                return None
            raise
        return SentMessage(sent.id, str(updated.pop_receipt))

    def delete_sent(self, sent: SentMessage) -> bool:
        """Delete a message this process sent; ``False`` when it is gone or a worker received it."""
        try:
            self.queue.delete_message(sent.id, sent.pop_receipt)
        except ResourceNotFoundError:
            return False
        except HttpResponseError as exc:
            if exc.status_code in (400, 404):
                return False
            raise
        return True

    def enqueue_work(
        self,
        cluster_id: ResourceId,
        *,
        attempt: int,
        source: Source,
        reason: str,
        correlation_id: str,
        delay_s: float,
        timeout_s: float | None = None,
        progress_attempt: int = 0,
        satisfied_links: int = 0,
    ) -> None:
        """The handlers' port (``EnqueuesWork``): build the work item and enqueue it within ``timeout_s``."""
        item = WorkItem(
            cluster_id=cluster_id,
            attempt=attempt,
            source=source,
            reason=reason,
            correlation_id=correlation_id,
            progress_attempt=progress_attempt,
            satisfied_links=satisfied_links,
        )
        self.enqueue(item, delay_s=delay_s, timeout_s=timeout_s)
