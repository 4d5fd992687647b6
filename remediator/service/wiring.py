"""Wiring that follows the scope: give every subscription below a managed management group the Event Grid
system topics and event subscriptions the deployment gives the subscriptions it lists.

Event wiring is per subscription, and a subscription can join a managed management group at any time; the
deployment only wires the subscriptions it was told about. So the timer runs this step after each sweep (it
already runs hourly with the scope resolved, and needs no deployer credentials; docs/deploy.md, "Wiring that
follows the scope", says why this and not a scheduled deployment):

1. list the subscriptions below ``scope.managementGroups`` (Resource Graph, fresh: this also refreshes the
   membership the event handlers' scope check uses in this process);
2. list their system topics (Resource Graph, ``microsoft.eventgrid/systemtopics``);
3. per subscription and per event subscription the product needs (:mod:`remediator.core.event_wiring`):
   reuse the system topic of that type whose source is the subscription, or create one (and its resource
   group) where the deployment would; then create the event subscription when the topic lacks it (GET first).

Each subscription is wired independently: a failure (a missing role, a policy denying the topic, Event Grid
refusing a second topic for the source) is recorded with its step and the next one is tried. The summary is
journaled (``Journal.record_wiring``) and logged; it never fails the sweep.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from remediator.core.event_wiring import (
    EventSubscriptionSpec,
    SystemTopic,
    WiringTarget,
    plan_topics,
    subscription_source,
)
from remediator.core.text import ignore_case_key

logger = logging.getLogger(__name__)


class ManagesEventGrid(Protocol):
    """Event Grid management (``adapters.event_grid.EventGridWiring``)."""

    def system_topics(self, subscription_ids: Iterable[str]) -> list[SystemTopic]: ...

    def has_event_subscription(
        self, subscription_id: str, resource_group: str, topic: str, name: str
    ) -> bool: ...

    def ensure_resource_group(self, subscription_id: str, name: str, *, location: str) -> None: ...

    def create_system_topic(
        self, subscription_id: str, resource_group: str, name: str, *, topic_type: str, source: str
    ) -> None: ...

    def create_event_subscription(
        self,
        subscription_id: str,
        resource_group: str,
        topic: str,
        spec: EventSubscriptionSpec,
        *,
        function_resource_id: str,
    ) -> None: ...


class RecordsWiring(Protocol):
    def record_wiring(self, summary: dict[str, Any]) -> None: ...


@dataclass
class WiringSummary:
    """What one wiring run found and did (``to_json`` is what the journal stores)."""

    correlation_id: str
    started_at: str
    subscriptions: int = 0
    """Subscriptions below the managed management groups."""
    already_wired: int = 0
    wired: list[str] = field(default_factory=list)
    """Subscriptions that got at least one topic or event subscription in this run, and are now complete."""
    topics_created: list[str] = field(default_factory=list)
    topics_reused: list[str] = field(default_factory=list)
    """Existing topics (the source's own, any name or group) that now carry one of our subscriptions."""
    event_subscriptions_created: list[str] = field(default_factory=list)
    failures: list[dict[str, str]] = field(default_factory=list)
    duration_s: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.failures

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": "event-wiring",
            "correlationId": self.correlation_id,
            "startedAt": self.started_at,
            "durationSeconds": round(self.duration_s, 3),
            "subscriptions": self.subscriptions,
            "alreadyWired": self.already_wired,
            "wired": list(self.wired),
            "topicsCreated": list(self.topics_created),
            "topicsReused": list(self.topics_reused),
            "eventSubscriptionsCreated": list(self.event_subscriptions_created),
            "failures": list(self.failures),
        }


class EventWiring:
    """The wiring step.

    :keyword target: where missing topics go and which function app receives the events.
    :keyword subscriptions: the subscriptions below the managed management groups, freshly looked up.
    :keyword event_grid: Event Grid management.
    :keyword recorder: where the summary is journaled (``None`` = logged only).
    :keyword clock: monotonic seconds.
    """

    def __init__(
        self,
        *,
        target: WiringTarget,
        subscriptions: Callable[[], Iterable[str]],
        event_grid: ManagesEventGrid,
        recorder: RecordsWiring | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.target = target
        self._subscriptions = subscriptions
        self.event_grid = event_grid
        self.recorder = recorder
        self._clock = clock

    def run(self) -> WiringSummary:
        """Wire every subscription below the managed management groups that misses part of its wiring."""
        summary = WiringSummary(
            correlation_id=f"wiring-{uuid.uuid4()}", started_at=datetime.now(UTC).isoformat()
        )
        started = self._clock()
        try:
            subscriptions = sorted({ignore_case_key(s) for s in self._subscriptions()})
            summary.subscriptions = len(subscriptions)
            topics = self.event_grid.system_topics(subscriptions) if subscriptions else []
        except Exception as exc:  # Resource Graph down: nothing is known, nothing is written
            logger.exception("event wiring: could not list the subscriptions or their system topics")
            summary.failures.append({"subscription": "*", "step": "list", "error": _one_line(exc)})
        else:
            by_subscription: dict[str, list[SystemTopic]] = {}
            for topic in topics:
                by_subscription.setdefault(ignore_case_key(topic.subscription_id), []).append(topic)
            for subscription in subscriptions:
                self._wire(subscription, by_subscription.get(subscription, []), summary)
        summary.duration_s = self._clock() - started
        self._record(summary)
        return summary

    def _wire(self, subscription: str, existing: list[SystemTopic], summary: WiringSummary) -> None:
        changed = False
        group_ready = False
        for plan in plan_topics(subscription, existing, self.target):
            step = "system topic"
            try:
                if plan.create_topic:
                    if not group_ready:
                        step = "resource group"
                        self.event_grid.ensure_resource_group(
                            subscription, plan.resource_group, location=self.target.location
                        )
                        group_ready = True
                    step = "system topic"
                    self.event_grid.create_system_topic(
                        subscription,
                        plan.resource_group,
                        plan.topic_name,
                        topic_type=plan.spec.topic_type,
                        source=subscription_source(subscription),
                    )
                    summary.topics_created.append(
                        _topic_id(subscription, plan.resource_group, plan.topic_name)
                    )
                    changed = True
                    present = False
                else:
                    step = "event subscription lookup"
                    present = self.event_grid.has_event_subscription(
                        subscription, plan.resource_group, plan.topic_name, plan.spec.name
                    )
                if present:
                    continue
                step = "event subscription"
                self.event_grid.create_event_subscription(
                    subscription,
                    plan.resource_group,
                    plan.topic_name,
                    plan.spec,
                    function_resource_id=self.target.function_id(plan.spec),
                )
                topic_id = _topic_id(subscription, plan.resource_group, plan.topic_name)
                summary.event_subscriptions_created.append(f"{topic_id}/eventSubscriptions/{plan.spec.name}")
                if not plan.create_topic:
                    summary.topics_reused.append(topic_id)
                changed = True
            except Exception as exc:
                logger.error(
                    "event wiring of subscription %s failed at %s (%s on %s): %s",
                    subscription,
                    step,
                    plan.spec.name,
                    plan.topic_name,
                    _one_line(exc),
                )
                summary.failures.append(
                    {
                        "subscription": subscription,
                        "eventSubscription": plan.spec.name,
                        "step": step,
                        "error": _one_line(exc),
                    }
                )
        failed = any(f.get("subscription") == subscription for f in summary.failures)
        if changed and not failed:
            summary.wired.append(subscription)
        elif not changed and not failed:
            summary.already_wired += 1

    def _record(self, summary: WiringSummary) -> None:
        log = logger.warning if summary.failures else logger.info
        log(
            "event wiring %s: %d subscriptions, %d already wired, %d wired now, %d failures",
            summary.correlation_id,
            summary.subscriptions,
            summary.already_wired,
            len(summary.wired),
            len(summary.failures),
        )
        if self.recorder is None:
            return
        try:
            self.recorder.record_wiring(summary.to_json())
        except Exception:  # the wiring itself is done; a journal outage only loses its record
            logger.exception("could not journal the event wiring summary")


def _topic_id(subscription: str, resource_group: str, name: str) -> str:
    return (
        f"/subscriptions/{subscription}/resourceGroups/{resource_group}"
        f"/providers/Microsoft.EventGrid/systemTopics/{name}"
    )


def _one_line(exc: BaseException) -> str:
    return " ".join(f"{type(exc).__name__}: {exc}".split())[:500]


__all__ = ["EventWiring", "ManagesEventGrid", "WiringSummary"]
