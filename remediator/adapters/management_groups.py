"""Which configured management groups contain a subscription, from Resource Graph, cached.

A cluster id names its subscription but not the management groups above it, so ``scope.managementGroups``
cannot be decided from an event, a work item or an HTTP body alone. The sweep gets the answer with its rows
(its Resource Graph query is scoped by the groups); everything else asks :class:`ManagementGroupResolver`.

For each configured group it lists the subscriptions Resource Graph returns for
``resourcecontainers | where type =~ 'microsoft.resources/subscriptions'`` scoped by that group (a
management-group scope covers every subscription below it, at any depth), paged with ``$skipToken`` through
:meth:`remediator.adapters.graph.ResourceGraphInventory.iter_data` (same quota gate and 429 handling as the
sweep). The membership of all groups is kept for :data:`MEMBERSHIP_TTL_S`; a subscription moved into a group
is therefore seen by events at most that long after the move (the sweep sees it on its next run).

Errors are never guessed into an answer: when Resource Graph fails, :class:`ManagementGroupLookupError` (an
:class:`remediator.adapters.arm.Transient`) is raised, so a reconcile returns ``wait`` and writes nothing,
and an event or HTTP request is retried later instead of being judged out of scope.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any, Protocol

from azure.core.exceptions import AzureError

from remediator.adapters.arm import Transient
from remediator.adapters.graph import InventoryError
from remediator.core.inventory_query import InventoryRequest
from remediator.core.text import ignore_case_key

logger = logging.getLogger(__name__)

MEMBERSHIP_TTL_S = 600.0
"""How long the subscriptions of the configured management groups are trusted before Resource Graph is
asked again."""

FAILURE_HOLD_S = 5.0
"""After a failed lookup, callers within this many seconds get the same error without another query (a
burst of events during an outage must not spend the Resource Graph quota)."""

SUBSCRIPTIONS_QUERY = (
    "resourcecontainers\n| where type =~ 'microsoft.resources/subscriptions'\n| project id, subscriptionId"
)


class RunsGraphRequests(Protocol):
    """One Resource Graph request, every row, paged (``ResourceGraphInventory.iter_data``)."""

    def iter_data(self, request: InventoryRequest) -> Iterator[Mapping[str, Any]]: ...


class ManagementGroupLookupError(Transient):
    """Resource Graph could not tell which management groups contain a subscription; retry later."""


def _subscription_guid(value: str) -> str:
    text = ignore_case_key(value.strip())
    prefix = "/subscriptions/"
    return text[len(prefix) :].strip("/") if text.startswith(prefix) else text


class ManagementGroupResolver:
    """``management_groups_of(subscription_id)`` for :meth:`remediator.core.config.Scope.contains`.

    Thread-safe: one refresh at a time; callers during a refresh wait for its result.

    :param graph: runs Resource Graph requests (a ``ResourceGraphInventory``).
    :param groups: the configured management-group names (``scope.managementGroups``).
    :keyword ttl_s: membership lifetime.
    :keyword failure_hold_s: how long a failure is answered from memory.
    :keyword clock: monotonic seconds (tests pass a fake).
    """

    def __init__(
        self,
        graph: RunsGraphRequests,
        groups: Iterable[str],
        *,
        ttl_s: float = MEMBERSHIP_TTL_S,
        failure_hold_s: float = FAILURE_HOLD_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._graph = graph
        self.groups = tuple(dict.fromkeys(ignore_case_key(str(g)) for g in groups))
        self.ttl_s = ttl_s
        self.failure_hold_s = failure_hold_s
        self._clock = clock
        self._lock = threading.Lock()
        self._members: dict[str, frozenset[str]] | None = None
        self._fetched_at = 0.0
        self._failure: tuple[float, ManagementGroupLookupError] | None = None
        self.refreshes = 0
        """Resource Graph refreshes attempted (each runs one paged query per group)."""

    def __call__(self, subscription_id: str) -> tuple[str, ...]:
        return self.management_groups_of(subscription_id)

    def management_groups_of(self, subscription_id: str) -> tuple[str, ...]:
        """The configured groups containing the subscription, directly or below; ``()`` = none of them.

        :raises ManagementGroupLookupError: Resource Graph failed; nothing is known.
        """
        subscription = _subscription_guid(subscription_id)
        members = self._membership()
        return tuple(group for group in self.groups if subscription in members[group])

    def subscriptions(self, *, fresh: bool = False) -> frozenset[str]:
        """Every subscription below the configured groups (lower-cased GUIDs); ``fresh`` queries Resource
        Graph now instead of trusting the cached membership (the wiring step; it refreshes the cache that the
        event handlers' scope check reads, too).

        :raises ManagementGroupLookupError: Resource Graph failed.
        """
        if fresh:
            self.invalidate()
        members = self._membership()
        return frozenset().union(*members.values()) if members else frozenset()

    def invalidate(self) -> None:
        """Forget the cached membership (the next lookup queries Resource Graph)."""
        with self._lock:
            self._members = None
            self._failure = None

    def _membership(self) -> dict[str, frozenset[str]]:
        with self._lock:
            now = self._clock()
            if self._members is not None and now - self._fetched_at < self.ttl_s:
                return self._members
            if self._failure is not None and now - self._failure[0] < self.failure_hold_s:
                raise self._failure[1]
            self.refreshes += 1
            try:
                members = {group: self._fetch(group) for group in self.groups}
            except ManagementGroupLookupError as error:
                self._failure = (self._clock(), error)
                raise
            self._members = members
            self._fetched_at = self._clock()
            self._failure = None
            logger.info(
                "management-group membership refreshed: %s",
                ", ".join(f"{g}: {len(s)} subscriptions" for g, s in members.items()),
            )
            return members

    def _fetch(self, group: str) -> frozenset[str]:
        request = InventoryRequest(query=SUBSCRIPTIONS_QUERY, management_groups=(group,))
        try:
            return frozenset(
                _subscription_guid(str(row.get("subscriptionId") or row.get("id") or ""))
                for row in self._graph.iter_data(request)
            )
        except (InventoryError, AzureError) as exc:
            logger.warning("Resource Graph lookup of management group %s failed: %s", group, exc)
            raise ManagementGroupLookupError(
                f"could not list the subscriptions of management group {group} in Resource Graph: {exc}",
                operation="Resource Graph query",
            ) from exc
