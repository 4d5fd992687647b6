"""Event Grid for the emulator: system events, event subscriptions and webhook delivery like Event Grid's.

The remediator is driven by ResourceWriteSuccess and PolicyState events, so the emulator must deliver them
the way Event Grid does: a JSON array per request with `aeg-event-type: Notification`, at least once, retried
on failure on the documented schedule (10 s, 30 s, 1 min, 5 min, 10 min, 30 min, 1 h, 3 h, 6 h, then 12 h;
time-compressed by `time_factor`), never retried for 400/401/403/413, dead-lettered when attempts or TTL run
out. Duplicates and reordering can be injected; every published event is also kept in memory for tests.
"""

from __future__ import annotations

import datetime as dt
import heapq
import itertools
import json
import logging
import random
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections import deque
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

logger = logging.getLogger(__name__)

RETRY_SCHEDULE_S = (10, 30, 60, 300, 600, 1800, 3600, 10800, 21600)
"""Documented Event Grid retry delays; after the last, every 12 h until the TTL."""
RETRY_LATER_S = 43200
NO_RETRY_STATUSES = frozenset({400, 401, 403, 413})
SUCCESS_STATUSES = frozenset({200, 201, 202, 203, 204})


def now_iso() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%f0Z")


def _lookup(event: Mapping[str, Any], key: str) -> Any:
    """Advanced-filter key (case-insensitive top level, `data.a.b` paths) → value or None."""
    value: Any = event
    for i, part in enumerate(key.split(".")):
        if not isinstance(value, Mapping):
            return None
        if i == 0:
            match = next((k for k in value if k.lower() == part.lower()), None)
            value = value.get(match) if match is not None else None
        else:
            value = value.get(part)
    return value


@dataclass
class AdvancedFilter:
    """One advanced filter (operatorType + key + values); string comparison is case-insensitive."""

    operator: str
    key: str
    values: list[Any] = field(default_factory=list)

    SUPPORTED = (
        "StringIn",
        "StringNotIn",
        "StringBeginsWith",
        "StringEndsWith",
        "StringContains",
        "IsNotNull",
        "IsNullOrUndefined",
    )

    def __post_init__(self) -> None:
        if self.operator not in self.SUPPORTED:
            raise ValueError(
                f"advanced filter operatorType '{self.operator}' is not supported {self.SUPPORTED}"
            )
        if len(self.values) > 25:
            raise ValueError("an advanced filter takes at most 25 values")

    def matches(self, event: Mapping[str, Any]) -> bool:
        value = _lookup(event, self.key)
        if self.operator == "IsNotNull":
            return value is not None
        if self.operator == "IsNullOrUndefined":
            return value is None
        if value is None:
            return self.operator == "StringNotIn"
        text = str(value).lower()
        wanted = [str(v).lower() for v in self.values]
        if self.operator == "StringIn":
            return text in wanted
        if self.operator == "StringNotIn":
            return text not in wanted
        if self.operator == "StringBeginsWith":
            return any(text.startswith(w) for w in wanted)
        if self.operator == "StringEndsWith":
            return any(text.endswith(w) for w in wanted)
        return any(w in text for w in wanted)

    def to_json(self) -> dict[str, Any]:
        return {"operatorType": self.operator, "key": self.key, "values": self.values}


@dataclass
class EventSubscription:
    """A webhook (or in-memory collector) for system events."""

    name: str
    endpoint: str | None
    included_event_types: list[str] | None = None
    advanced_filters: list[AdvancedFilter] = field(default_factory=list)
    subject_begins_with: str = ""
    subject_ends_with: str = ""
    max_delivery_attempts: int = 30
    event_ttl_minutes: float = 1440
    collected: list[dict[str, Any]] = field(default_factory=list)
    key: str = ""
    """Index key in the bus: the lower-cased name for admin subscriptions, the folded ARM id for the event
    subscriptions of ARM system topics (emulator/eventgrid/arm.py)."""
    source: str | None = None
    """ARM event subscriptions only: the source of their system topic (``/subscriptions/<id>``); admin
    subscriptions (``None``) see every event, as before."""
    topic_type: str | None = None
    """ARM event subscriptions only: their system topic's type (``Microsoft.Resources.Subscriptions`` ...)."""

    def __post_init__(self) -> None:
        if not self.key:
            self.key = self.name.lower()

    def covers(self, event: Mapping[str, Any], topic_type: str | None) -> bool:
        """Whether an event published by ``topic_type`` at ``event['topic']`` reaches this subscription's
        topic: a subscription-scoped topic sees the events of its subscription, a resource-group topic those
        under its group (``Microsoft.Resources.ResourceGroups``); admin subscriptions see everything."""
        if self.source is None:
            return True
        mine, theirs = (self.topic_type or "").lower(), (topic_type or "").lower()
        if mine == "microsoft.resources.resourcegroups":
            prefix = self.source.lower().rstrip("/") + "/"
            return theirs == "microsoft.resources.subscriptions" and str(
                event.get("subject", "")
            ).lower().startswith(prefix)
        return mine == theirs and str(event.get("topic", "")).lower() == self.source.lower()

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> EventSubscription:
        name = data.get("name")
        if not isinstance(name, str) or not name:
            raise ValueError("name is required")
        endpoint = data.get("endpointUrl") or data.get("endpoint")
        if endpoint is not None and not str(endpoint).startswith(("http://", "https://")):
            raise ValueError("endpointUrl must be an http(s) URL (omit it to collect events in memory)")
        flt = data.get("filter") or {}
        included = flt.get("includedEventTypes", data.get("includedEventTypes"))
        advanced = [
            AdvancedFilter(str(f["operatorType"]), str(f["key"]), list(f.get("values") or []))
            for f in flt.get("advancedFilters", data.get("advancedFilters")) or []
        ]
        retry = data.get("retryPolicy") or {}
        attempts = int(retry.get("maxDeliveryAttempts", 30))
        ttl = float(retry.get("eventTimeToLiveInMinutes", 1440))
        if not 1 <= attempts <= 30:
            raise ValueError("retryPolicy.maxDeliveryAttempts must be within 1..30")
        if not 1 <= ttl <= 1440:
            raise ValueError("retryPolicy.eventTimeToLiveInMinutes must be within 1..1440")
        return cls(
            name=name,
            endpoint=str(endpoint) if endpoint else None,
            included_event_types=list(included) if included else None,
            advanced_filters=advanced,
            subject_begins_with=str(flt.get("subjectBeginsWith", "")),
            subject_ends_with=str(flt.get("subjectEndsWith", "")),
            max_delivery_attempts=attempts,
            event_ttl_minutes=ttl,
        )

    def wants(self, event: Mapping[str, Any]) -> bool:
        event_type = str(event.get("eventType", ""))
        if self.included_event_types and event_type.lower() not in {
            t.lower() for t in self.included_event_types
        }:
            return False
        subject = str(event.get("subject", "")).lower()
        if self.subject_begins_with and not subject.startswith(self.subject_begins_with.lower()):
            return False
        if self.subject_ends_with and not subject.endswith(self.subject_ends_with.lower()):
            return False
        return all(f.matches(event) for f in self.advanced_filters)

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "endpointUrl": self.endpoint,
            "filter": {
                "includedEventTypes": self.included_event_types,
                "subjectBeginsWith": self.subject_begins_with,
                "subjectEndsWith": self.subject_ends_with,
                "advancedFilters": [f.to_json() for f in self.advanced_filters],
            },
            "retryPolicy": {
                "maxDeliveryAttempts": self.max_delivery_attempts,
                "eventTimeToLiveInMinutes": self.event_ttl_minutes,
            },
            "collectedCount": len(self.collected),
        }


@dataclass
class DeliverySettings:
    time_factor: float = 1.0
    """Divide every retry delay by this (e.g. 1000: the 10 s first retry happens after 10 ms)."""
    duplicate_probability: float = 0.0
    reorder_probability: float = 0.0
    reorder_delay_s: float = 0.5
    """An event picked for reordering is held back this long (real seconds), so later events overtake it.
    With ``reorder_after_events`` set this is only the longest hold (for an event nothing follows)."""
    reorder_after_events: int = 0
    """If > 0, an event picked for reordering is held until this many later events to the same subscription
    have been delivered (the webhook answered), so it reaches the webhook after them however slowly they
    are published — reordering that does not depend on timing. 0: the hold is ``reorder_delay_s`` only."""
    timeout_s: float = 30.0
    seed: int = 0

    NAMES = {
        "timeFactor": "time_factor",
        "duplicateProbability": "duplicate_probability",
        "reorderProbability": "reorder_probability",
        "reorderDelayS": "reorder_delay_s",
        "reorderAfterEvents": "reorder_after_events",
        "timeoutS": "timeout_s",
        "seed": "seed",
    }

    def to_json(self) -> dict[str, Any]:
        return {k: getattr(self, v) for k, v in self.NAMES.items()}

    def update(self, data: Mapping[str, Any]) -> None:
        unknown = set(data) - set(self.NAMES)
        if unknown:
            raise ValueError(f"unknown delivery settings: {sorted(unknown)}")
        for key, value in data.items():
            number = float(value)
            if key in ("duplicateProbability", "reorderProbability") and not 0 <= number <= 1:
                raise ValueError(f"{key} must be within [0, 1]")
            if key == "timeFactor" and number <= 0:
                raise ValueError("timeFactor must be > 0")
            if key == "reorderAfterEvents" and (number < 0 or number != int(number)):
                raise ValueError("reorderAfterEvents must be a whole number >= 0")
            integral = key in ("seed", "reorderAfterEvents")
            setattr(self, self.NAMES[key], int(number) if integral else number)


@dataclass(order=True)
class _Delivery:
    due: float
    seq: int
    subscription: str = field(compare=False)
    event: dict[str, Any] = field(compare=False)
    attempt: int = field(compare=False, default=0)
    first_publish: float = field(compare=False, default=0.0)
    duplicate: bool = field(compare=False, default=False)
    held_for: int = field(compare=False, default=0)
    """Held for reordering: later deliveries to its subscription still to wait for (0 = not held)."""
    reordered: bool = field(compare=False, default=False)
    origin: int = field(compare=False, default=-1)
    """``seq`` of the first delivery of this event to this subscription (publish order); -1 = ``seq``."""
    taken: bool = field(compare=False, default=False)
    """Already handed to a delivery thread (or superseded by its released copy): skip when popped."""


class EventBus:
    """System-event fan-out and delivery; one per emulator."""

    def __init__(self, *, max_log: int = 100_000) -> None:
        self.lock = threading.RLock()
        self.subscriptions: dict[str, EventSubscription] = {}
        self.settings = DeliverySettings()
        self.published: deque[dict[str, Any]] = deque(maxlen=max_log)
        self.deliveries: deque[dict[str, Any]] = deque(maxlen=max_log)
        """Log of delivery attempts: {subscription, eventId, attempt, status, time, duplicate}."""
        self.dead_letters: list[dict[str, Any]] = []
        self.topic_events: deque[dict[str, Any]] = deque(maxlen=max_log)
        """Events received on the custom topic (POST /api/events)."""
        self._queue: list[_Delivery] = []
        self._held: list[_Delivery] = []
        self._seq = itertools.count()
        self._cond = threading.Condition(self.lock)
        self._random = random.Random(0)
        self._pool = ThreadPoolExecutor(max_workers=8, thread_name_prefix="eg-delivery")
        self._stopped = False
        self._worker = threading.Thread(target=self._run, name="eg-scheduler", daemon=True)
        self._worker.start()

    # ---- configuration --------------------------------------------------------------------------
    def add_subscription(self, data: Mapping[str, Any]) -> EventSubscription:
        """Register a subscription; with `validateEndpoint: true` the webhook must pass the handshake."""
        sub = EventSubscription.from_json(data)
        if data.get("validateEndpoint") and sub.endpoint is not None:
            self.validate_endpoint(sub)
        return self.register(sub)

    def register(self, sub: EventSubscription) -> EventSubscription:
        """Add or replace a subscription under its key (events published from now on reach it)."""
        with self.lock:
            self.subscriptions[sub.key] = sub
        return sub

    def unregister(self, key: str) -> bool:
        """Remove the subscription under ``key``; its queued deliveries are dropped when they come due."""
        with self.lock:
            return self.subscriptions.pop(key, None) is not None

    def validate_endpoint(self, sub: EventSubscription) -> None:
        """Send Microsoft.EventGrid.SubscriptionValidationEvent (`aeg-event-type: SubscriptionValidation`) and
        require HTTP 200 with `{"validationResponse": <code>}`, as webhook-event-delivery.md documents."""
        assert sub.endpoint is not None
        code = str(uuid.uuid4())
        event = {
            "id": str(uuid.uuid4()),
            "topic": "/subscriptions/00000000-0000-0000-0000-000000000000",
            "subject": "",
            "data": {
                "validationCode": code,
                "validationUrl": f"https://127.0.0.1:553/eventsubscriptions/{sub.name}/validate?id={code}",
            },
            "eventType": "Microsoft.EventGrid.SubscriptionValidationEvent",
            "eventTime": now_iso(),
            "metadataVersion": "1",
            "dataVersion": "1",
        }
        request = urllib.request.Request(
            sub.endpoint,
            data=json.dumps([event]).encode(),
            method="POST",
            headers={
                "Content-Type": "application/json; charset=utf-8",
                "aeg-event-type": "SubscriptionValidation",
                "aeg-subscription-name": sub.name.upper(),
                "aeg-delivery-count": "0",
                "aeg-data-version": "1",
                "aeg-metadata-version": "1",
            },
        )
        try:
            with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310 - loopback
                status = response.status
                body = response.read()
        except urllib.error.HTTPError as exc:
            raise ValueError(f"webhook validation failed: HTTP {exc.code} from {sub.endpoint}") from exc
        except (urllib.error.URLError, OSError) as exc:
            raise ValueError(f"webhook validation failed: {sub.endpoint} unreachable ({exc})") from exc
        try:
            answer = json.loads(body) if body else {}
        except ValueError:
            answer = {}
        if status != 200 or not isinstance(answer, dict) or answer.get("validationResponse") != code:
            raise ValueError(
                f"webhook validation failed: expected HTTP 200 with validationResponse {code}, "
                f"got HTTP {status}"
            )

    def remove_subscription(self, name: str) -> bool:
        with self.lock:
            return self.subscriptions.pop(name.lower(), None) is not None

    def update_settings(self, data: Mapping[str, Any]) -> None:
        with self.lock:
            self.settings.update(data)
            if "seed" in data:
                self._random = random.Random(self.settings.seed)

    def reset(self) -> None:
        with self.lock:
            self.subscriptions.clear()
            self.published.clear()
            self.deliveries.clear()
            self.dead_letters.clear()
            self.topic_events.clear()
            self._queue.clear()
            self._held.clear()
            self.settings = DeliverySettings()
            self._random = random.Random(0)

    def stop(self) -> None:
        with self._cond:
            self._stopped = True
            self._cond.notify_all()
        self._pool.shutdown(wait=False, cancel_futures=True)

    # ---- publishing -----------------------------------------------------------------------------
    def publish(
        self,
        event_type: str,
        subject: str,
        data: dict[str, Any],
        *,
        topic: str,
        data_version: str = "",
        event_time: str | None = None,
        topic_type: str | None = None,
    ) -> dict[str, Any]:
        """Publish one system event (Event Grid schema) to every matching subscription.

        :keyword topic_type: the system-topic type that publishes it (``Microsoft.Resources.Subscriptions``,
            ``Microsoft.PolicyInsights.PolicyStates``): event subscriptions of ARM system topics receive only
            events of their topic's type and source (``EventSubscription.covers``)."""
        event = {
            "id": str(uuid.uuid4()),
            "topic": topic,
            "subject": subject,
            "eventType": event_type,
            "eventTime": event_time or now_iso(),
            "data": data,
            "dataVersion": data_version,
            "metadataVersion": "1",
        }
        now = time.monotonic()
        with self._cond:
            self.published.append(event)
            for sub in self.subscriptions.values():
                if not sub.covers(event, topic_type) or not sub.wants(event):
                    continue
                if sub.endpoint is None:
                    sub.collected.append(event)
                    continue
                delay = 0.0
                held_for = 0
                if (
                    self.settings.reorder_probability
                    and self._random.random() < self.settings.reorder_probability
                ):
                    delay = self.settings.reorder_delay_s
                    held_for = self.settings.reorder_after_events
                delivery = _Delivery(now + delay, next(self._seq), sub.key, event, 0, now)
                delivery.reordered = delay > 0 or held_for > 0
                delivery.held_for = held_for
                if held_for:
                    self._held.append(delivery)
                self._push(delivery)
                if (
                    self.settings.duplicate_probability
                    and self._random.random() < self.settings.duplicate_probability
                ):
                    self._push(_Delivery(now + delay, next(self._seq), sub.key, event, 0, now, True))
            self._cond.notify_all()
        return event

    def _push(self, delivery: _Delivery) -> None:
        heapq.heappush(self._queue, delivery)

    # ---- delivery -------------------------------------------------------------------------------
    def _run(self) -> None:
        while True:
            with self._cond:
                if self._stopped:
                    return
                if not self._queue:
                    self._cond.wait(timeout=1.0)
                    continue
                wait = self._queue[0].due - time.monotonic()
                if wait > 0:
                    self._cond.wait(timeout=min(wait, 1.0))
                    continue
                delivery = heapq.heappop(self._queue)
                if delivery.taken:
                    continue
                delivery.taken = True
                if delivery in self._held:  # held too long: nothing followed within reorder_delay_s
                    self._held.remove(delivery)
            try:
                self._pool.submit(self._attempt, delivery)
            except RuntimeError:
                return

    def _attempt(self, delivery: _Delivery) -> None:
        with self.lock:
            sub = self.subscriptions.get(delivery.subscription)
            settings = self.settings
        if sub is None or sub.endpoint is None:
            return
        attempt = delivery.attempt + 1
        body = json.dumps([delivery.event]).encode()
        request = urllib.request.Request(
            sub.endpoint,
            data=body,
            method="POST",
            headers={
                "Content-Type": "application/json; charset=utf-8",
                "aeg-event-type": "Notification",
                "aeg-subscription-name": sub.name.upper(),
                "aeg-delivery-count": str(delivery.attempt),
                "aeg-data-version": str(delivery.event.get("dataVersion", "")),
                "aeg-metadata-version": "1",
            },
        )
        status = 0
        error = ""
        try:
            with urllib.request.urlopen(request, timeout=settings.timeout_s) as response:  # noqa: S310 - loopback
                status = response.status
        except urllib.error.HTTPError as exc:
            status = exc.code
            error = f"HTTP {exc.code}"
        except (urllib.error.URLError, OSError, TimeoutError) as exc:
            error = f"{type(exc).__name__}: {exc}"
        record = {
            "subscription": sub.name,
            "eventId": delivery.event["id"],
            "eventType": delivery.event["eventType"],
            "attempt": attempt,
            "status": status,
            "error": error,
            "duplicate": delivery.duplicate,
            "reordered": delivery.reordered,
            "time": now_iso(),
        }
        with self._cond:
            self.deliveries.append(record)
            if not delivery.held_for and delivery.attempt == 0:
                self._release_held_before(delivery)
            if status in SUCCESS_STATUSES:
                return
            elapsed_real = time.monotonic() - delivery.first_publish
            ttl_real = sub.event_ttl_minutes * 60 / settings.time_factor
            reason = None
            if status in NO_RETRY_STATUSES:
                reason = f"DeliveryFailed: HTTP {status} is not retried"
            elif attempt >= sub.max_delivery_attempts:
                reason = "MaxDeliveryAttemptsExceeded"
            elif elapsed_real >= ttl_real:
                reason = "TimeToLiveExceeded"
            if reason is not None:
                self.dead_letters.append(
                    {
                        **delivery.event,
                        "deadLetterReason": reason,
                        "deliveryAttempts": attempt,
                        "lastDeliveryOutcome": error or f"HTTP {status}",
                        "publishTime": delivery.event["eventTime"],
                        "lastDeliveryAttemptTime": record["time"],
                        "subscription": sub.name,
                    }
                )
                return
            delay = RETRY_SCHEDULE_S[attempt - 1] if attempt - 1 < len(RETRY_SCHEDULE_S) else RETRY_LATER_S
            record["retryInS"] = delay  # the documented (uncompressed) delay before the next attempt
            due = time.monotonic() + delay / settings.time_factor
            self._push(
                _Delivery(
                    due,
                    next(self._seq),
                    delivery.subscription,
                    delivery.event,
                    attempt,
                    delivery.first_publish,
                    delivery.duplicate,
                )
            )
            self._cond.notify_all()

    def _release_held_before(self, delivered: _Delivery) -> None:
        """Count ``delivered`` for every event held ahead of it on the same subscription; release those whose
        count is reached (their released copy is due now, so it reaches the webhook after ``delivered``)."""
        published_at = delivered.origin if delivered.origin >= 0 else delivered.seq
        for held in list(self._held):
            if held.subscription != delivered.subscription or held.seq >= published_at or held.taken:
                continue
            held.held_for -= 1
            if held.held_for > 0:
                continue
            held.taken = True
            self._held.remove(held)
            release = _Delivery(
                time.monotonic(),
                next(self._seq),
                held.subscription,
                held.event,
                0,
                held.first_publish,
                held.duplicate,
            )
            release.reordered = True
            release.origin = held.seq
            self._push(release)
        self._cond.notify_all()

    def pending(self) -> int:
        with self.lock:
            return len(self._queue)
