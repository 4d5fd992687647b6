"""Durable work items on an Azure Storage queue, encoded the way the Functions host expects.

A ``wait`` outcome, an Event Grid event that ran out of its inline budget, and the sweep all become work items
that the queue-triggered function picks up later. The Functions queue trigger base64-decodes message bodies by
default, so messages are sent with ``TextBase64EncodePolicy``; a raw-text message would land in the poison
queue. Work item JSON (architecture.md): ``{"clusterId", "attempt", "source", "reason", "correlationId",
"enqueuedAt"}``. The host's poison queue is ``<queue>-poison``.
"""

from __future__ import annotations

import contextlib
import json
import logging
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from azure.core.exceptions import ResourceExistsError
from azure.storage.queue import QueueClient, TextBase64DecodePolicy, TextBase64EncodePolicy

from remediator.adapters.clients import STORAGE_OPTIONS
from remediator.core.errors import UserInputError
from remediator.core.settings import Settings

logger = logging.getLogger(__name__)

Source = Literal["event", "policy", "sweep", "http", "queue"]
SOURCES: frozenset[str] = frozenset({"event", "policy", "sweep", "http", "queue"})
MAX_VISIBILITY_DELAY_S = 7 * 24 * 3600
"""A queue message can be hidden for at most 7 days."""


def poison_queue_name(queue: str) -> str:
    """The Functions host's poison queue for ``queue``."""
    return f"{queue}-poison"


def _now_iso() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


@dataclass(frozen=True)
class WorkItem:
    """One cluster to reconcile later.

    :param cluster_id: the cluster's ARM id.
    :param attempt: how many waits preceded this item (0 for a fresh item).
    :param source: what produced it: ``event``, ``policy``, ``sweep``, ``http`` or ``queue`` (a re-enqueue).
    :param reason: one line for humans (the wait's why, the event type).
    :param correlation_id: ties the item to the event / request / sweep that caused it.
    :param enqueued_at: ISO-8601 UTC.
    """

    cluster_id: str
    attempt: int = 0
    source: str = "queue"
    reason: str = ""
    correlation_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    enqueued_at: str = field(default_factory=_now_iso)

    def to_json(self) -> dict[str, Any]:
        return {
            "clusterId": self.cluster_id,
            "attempt": self.attempt,
            "source": self.source,
            "reason": self.reason,
            "correlationId": self.correlation_id,
            "enqueuedAt": self.enqueued_at,
        }

    @classmethod
    def from_json(cls, data: object) -> WorkItem:
        """Parse a decoded work item.

        :raises UserInputError: naming the field.
        """
        if not isinstance(data, dict):
            raise UserInputError("a work item must be a JSON object", field="body", source="work item")
        cluster_id = data.get("clusterId")
        if not isinstance(cluster_id, str) or not cluster_id.strip():
            raise UserInputError("must be a cluster id string", field="clusterId", source="work item")
        attempt = data.get("attempt", 0)
        if not isinstance(attempt, int) or isinstance(attempt, bool) or attempt < 0:
            raise UserInputError("must be a non-negative integer", field="attempt", source="work item")
        source = data.get("source", "queue")
        if source not in SOURCES:
            raise UserInputError(f"must be one of {sorted(SOURCES)}", field="source", source="work item")
        return cls(
            cluster_id=cluster_id,
            attempt=attempt,
            source=str(source),
            reason=str(data.get("reason", "")),
            correlation_id=str(data.get("correlationId") or uuid.uuid4()),
            enqueued_at=str(data.get("enqueuedAt") or _now_iso()),
        )

    @classmethod
    def from_message(cls, text: str | bytes) -> WorkItem:
        """Parse a message body (already base64-decoded, as the trigger hands it over)."""
        try:
            data = json.loads(text)
        except (ValueError, UnicodeDecodeError) as exc:
            raise UserInputError("message body is not JSON", field="body", source="work item") from exc
        return cls.from_json(data)


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
                from azure.identity import DefaultAzureCredential

                credential = DefaultAzureCredential(exclude_interactive_browser_credential=True)
            return QueueClient(settings.queue_service_uri, name, credential=credential, **policies)
        raise UserInputError(
            "no storage configured for the work queue", field="AzureWebJobsStorage", source="app settings"
        )

    @classmethod
    def from_settings(cls, settings: Settings, *, credential: Any = None, poison: bool = False) -> WorkQueue:
        """The queue named by ``REMEDIATOR_WORK_QUEUE`` (or its poison queue) in the host storage account."""
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
        message = self.queue.send_message(
            json.dumps(item.to_json(), separators=(",", ":")), visibility_timeout=delay or None, **call
        )
        logger.debug("enqueued %s (attempt %d, delay %d s)", item.cluster_id, item.attempt, delay)
        return str(message.id)

    def enqueue_work(
        self,
        cluster_id: str,
        *,
        attempt: int,
        source: str,
        reason: str,
        correlation_id: str,
        delay_s: float,
        timeout_s: float | None = None,
    ) -> None:
        """The handlers' port (``EnqueuesWork``): build the work item and enqueue it within ``timeout_s``."""
        item = WorkItem(
            cluster_id=cluster_id,
            attempt=attempt,
            source=source,
            reason=reason,
            correlation_id=correlation_id,
        )
        self.enqueue(item, delay_s=delay_s, timeout_s=timeout_s)

    def receive(self, *, max_messages: int = 32, visibility_timeout: int = 30) -> list[tuple[WorkItem, Any]]:
        """Receive visible items (for tools and tests; the Functions host does this in production)."""
        self.ensure_queue()
        out: list[tuple[WorkItem, Any]] = []
        for message in self.queue.receive_messages(
            max_messages=max_messages, visibility_timeout=visibility_timeout
        ):
            out.append((WorkItem.from_message(message.content), message))
            if len(out) >= max_messages:
                break
        return out
