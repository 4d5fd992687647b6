"""The queue work-item contract and its one parser and serializer.

A ``wait`` outcome, an Event Grid event that ran out of its inline budget, an HTTP request handed over and the
sweep all become work items that the queue-triggered function picks up later. Producers and consumers share
this one typed form; the wire form (docs/architecture.md) is JSON::

    {"clusterId": str, "attempt": int, "source": "event"|"policy"|"sweep"|"http"|"queue",
     "reason": str, "correlationId": str, "enqueuedAt": ISO-8601 UTC,
     "progressAttempt"?: int, "satisfiedLinks"?: int, "chainId"?: str}

``attempt`` counts the queue hops of one chain of work items (every ``wait`` adds one); ``progressAttempt`` is
the hop at which the chain last made progress (a reconcile found more of its links satisfied than any before,
``satisfiedLinks``). ``REMEDIATOR_MAX_ATTEMPTS`` bounds the hops **without progress**
(:attr:`WorkItem.attempts_without_progress`), so a slow but healthy protect run (20-28 hops, each link's wait
bounded by its own budget) is not given up on the count, while a chain stuck on one link still is. Both keys
are absent (0) on a fresh item and on items made before they existed.

``chainId`` names the chain of work items the item belongs to (one chain per cluster at a time: see
:mod:`remediator.core.chains`); it is absent on items made before chains existed, which start a chain of
their own when they run.

A message is untrusted input (anyone who can write to the queue writes it): :meth:`WorkItem.from_json` rejects
a malformed one with a :class:`UserInputError` naming the field.
"""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal, cast, get_args

from remediator.core.errors import UserInputError
from remediator.core.ids import ResourceId, parse_cluster_id
from remediator.core.untrusted_json import UntrustedJsonError, parse_untrusted_json

Source = Literal["event", "policy", "sweep", "http", "queue"]
"""What produced a work item; ``queue`` is a re-enqueue by the worker itself (or an unknown producer)."""
SOURCES: frozenset[str] = frozenset(get_args(Source))

_ORIGIN = "work item"
_CHAIN_ID = re.compile(r"^[A-Za-z0-9-]{1,64}$")

MAX_MESSAGE_BYTES = 64 * 1024
"""A queue message holds at most 64 KiB (Azure Queue Storage); a decoded work item is far smaller."""
MAX_MESSAGE_DEPTH = 8
"""A work item is a flat object (depth 1); anything nested deeper than this is not one."""
MAX_LINKS = 1000
"""More links than any chain has: a larger ``satisfiedLinks`` is not a work item's."""


def _now() -> datetime:
    return datetime.now(UTC)


def iso_utc(moment: datetime) -> str:
    """``2026-01-02T03:04:05.123456Z``: ISO-8601 in UTC with a ``Z``."""
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _fail(field_name: str, message: str) -> UserInputError:
    return UserInputError(message, field=field_name, source=_ORIGIN)


@dataclass(frozen=True)
class WorkItem:
    """One cluster to reconcile later.

    :param cluster_id: the managed cluster.
    :param attempt: how many waits preceded this item (0 for a fresh item).
    :param source: what produced it.
    :param reason: one line for humans (the wait's why, the event type).
    :param correlation_id: ties the item to the event / request / sweep that caused it.
    :param enqueued_at: when the producer made it (UTC).
    :param progress_attempt: the attempt at which the chain last made progress (``<= attempt``).
    :param satisfied_links: the most links a reconcile of the chain has found settled so far.
    :param chain_id: the chain of work items it belongs to (``""``: none yet).
    """

    cluster_id: ResourceId
    attempt: int = 0
    source: Source = "queue"
    reason: str = ""
    correlation_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    enqueued_at: datetime = field(default_factory=_now)
    progress_attempt: int = 0
    satisfied_links: int = 0
    chain_id: str = ""

    @property
    def attempts_without_progress(self) -> int:
        """Hops since the chain last made progress: what ``REMEDIATOR_MAX_ATTEMPTS`` bounds."""
        return self.attempt - self.progress_attempt

    def to_json(self) -> dict[str, Any]:
        """The wire form (see the module docstring)."""
        data: dict[str, Any] = {
            "clusterId": self.cluster_id.canonical,
            "attempt": self.attempt,
            "source": self.source,
            "reason": self.reason,
            "correlationId": self.correlation_id,
            "enqueuedAt": iso_utc(self.enqueued_at),
        }
        if self.progress_attempt:
            data["progressAttempt"] = self.progress_attempt
        if self.satisfied_links:
            data["satisfiedLinks"] = self.satisfied_links
        if self.chain_id:
            data["chainId"] = self.chain_id
        return data

    def to_message(self) -> str:
        """The message body (compact JSON; the queue client base64-encodes it for the Functions host)."""
        return json.dumps(self.to_json(), separators=(",", ":"))

    def next_attempt(self, *, reason: str, satisfied_links: int | None = None) -> WorkItem:
        """The follow-up after a ``wait``: same cluster, source, correlation and chain, ``attempt + 1``.

        ``satisfied_links`` is how many links the wait's reconcile found settled
        (:func:`remediator.core.plan.requirement.settled_links`). More than any reconcile of the chain found
        before is progress: the follow-up's :attr:`attempts_without_progress` starts again from 0. The mark
        only rises (a link that comes and goes is not progress twice), so a chain of ``n`` links ends within
        ``(n + 1) * REMEDIATOR_MAX_ATTEMPTS`` hops whatever happens."""
        attempt = self.attempt + 1
        progressed = satisfied_links is not None and satisfied_links > self.satisfied_links
        return WorkItem(
            cluster_id=self.cluster_id,
            attempt=attempt,
            source=self.source,
            reason=reason,
            correlation_id=self.correlation_id,
            progress_attempt=attempt if progressed else self.progress_attempt,
            satisfied_links=satisfied_links
            if progressed and satisfied_links is not None
            else self.satisfied_links,
            chain_id=self.chain_id,
        )

    @classmethod
    def from_json(cls, data: object) -> WorkItem:
        """Parse a decoded work item.

        :raises UserInputError: naming the field (``clusterId``, ``attempt``, ``source``, ``enqueuedAt``).
        """
        if not isinstance(data, dict):
            raise _fail("body", "a work item must be a JSON object")
        cluster = parse_cluster_id(data.get("clusterId"), field="clusterId")
        attempt = data.get("attempt", 0)
        if not isinstance(attempt, int) or isinstance(attempt, bool) or attempt < 0:
            raise _fail("attempt", "must be a non-negative integer")
        source = data.get("source") or "queue"
        if not isinstance(source, str) or source not in SOURCES:  # a list is unhashable: check the type first
            raise _fail("source", f"must be one of {sorted(SOURCES)}")
        progress = data.get("progressAttempt", 0)
        if not isinstance(progress, int) or isinstance(progress, bool) or not 0 <= progress <= attempt:
            raise _fail("progressAttempt", "must be an integer from 0 to attempt")
        links = data.get("satisfiedLinks", 0)
        if not isinstance(links, int) or isinstance(links, bool) or not 0 <= links <= MAX_LINKS:
            raise _fail("satisfiedLinks", f"must be an integer from 0 to {MAX_LINKS}")
        chain_id = data.get("chainId") or ""
        if not isinstance(chain_id, str) or (chain_id and not _CHAIN_ID.match(chain_id)):
            raise _fail("chainId", "must be up to 64 letters, digits and hyphens")
        return cls(
            cluster_id=cluster,
            attempt=attempt,
            source=cast(Source, source),
            reason=str(data.get("reason") or ""),
            correlation_id=str(data.get("correlationId") or uuid.uuid4()),
            enqueued_at=_parse_time(data.get("enqueuedAt")),
            progress_attempt=progress,
            satisfied_links=links,
            chain_id=chain_id,
        )

    @classmethod
    def from_message(cls, body: str | bytes) -> WorkItem:
        """Parse a message body (already base64-decoded, as the trigger hands it over).

        The body is untrusted: it is parsed with a size and a nesting limit
        (:func:`remediator.core.untrusted_json.parse_untrusted_json`), so a message nested 10^5 levels deep
        is a malformed work item, not a ``RecursionError``.

        :raises UserInputError: not JSON, over the limits, or a malformed field.
        """
        try:
            data = parse_untrusted_json(
                body, max_bytes=MAX_MESSAGE_BYTES, max_depth=MAX_MESSAGE_DEPTH, source=_ORIGIN
            )
        except UntrustedJsonError as exc:
            raise _fail("body", f"message body is not a work item: {exc.message}") from exc
        return cls.from_json(data)


def _parse_time(value: object) -> datetime:
    if value is None or value == "":
        return _now()
    if not isinstance(value, str):
        raise _fail("enqueuedAt", "must be an ISO-8601 timestamp string")
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as exc:
        raise _fail("enqueuedAt", f"{value!r} is not an ISO-8601 timestamp") from exc
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)
