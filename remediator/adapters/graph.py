"""Resource Graph inventory: the in-scope clusters that need work, paged, streamed, within the user quota.

The sweep must not hold ten thousand clusters in memory nor spend its Resource Graph quota on 429s. This
adapter runs the requests that :func:`remediator.core.inventory_query.plan_inventory` plans, pages each one
with ``$skipToken`` (``$top`` up to 1000), and yields rows one at a time: at most the page being consumed and
the one being fetched are in memory.

Resource Graph allows about 15 queries per 5 s per user and reports what is left on every response
(``x-ms-user-quota-remaining``, ``x-ms-user-quota-resets-after``). :class:`QuotaGate` reads those headers
and waits for the window to reset *before* sending a query the quota cannot cover. azure-core does not retry
a POST 429 that lacks ``Retry-After`` (``shared/reference/platform_facts.md`` §4.1), so a 429 that still
happens (another process of the same principal spent the quota) is retried here, after the reset time, a
bounded number of times.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from azure.core.exceptions import HttpResponseError
from azure.mgmt.resourcegraph.models import QueryRequest, QueryRequestOptions

from remediator.core.inventory_query import MAX_PAGE_ROWS, InventoryPlan, InventoryRequest

logger = logging.getLogger(__name__)

QUOTA_REMAINING_HEADER = "x-ms-user-quota-remaining"
QUOTA_RESETS_AFTER_HEADER = "x-ms-user-quota-resets-after"
MANAGED_CLUSTER_TYPE = "Microsoft.ContainerService/managedClusters"

_RESETS_AFTER = re.compile(r"^(\d+):(\d{1,2}):(\d{1,2}(?:\.\d+)?)$")


class InventoryError(Exception):
    """Resource Graph refused or failed the inventory query (after the bounded 429 retries)."""


def parse_resets_after(value: str) -> float:
    """``hh:mm:ss`` (seconds may have a fraction) -> seconds. Raises ``ValueError`` on anything else."""
    match = _RESETS_AFTER.match(value.strip())
    if match is None:
        raise ValueError(f"not an hh:mm:ss duration: {value!r}")
    hours, minutes, seconds = match.groups()
    return int(hours) * 3600 + int(minutes) * 60 + float(seconds)


class QuotaGate:
    """Tracks the Resource Graph user quota from response headers and waits before it runs out.

    Thread-safe. ``reserve`` queries are kept back for other callers of the same principal (0 by default: the
    gate spends the quota down to zero, then waits for the reset).
    """

    def __init__(
        self,
        *,
        reserve: int = 0,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.reserve = reserve
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._remaining: int | None = None
        self._seen: int | None = None
        self._resets_at = 0.0
        self.waits = 0
        self.waited_s = 0.0

    def before_query(self) -> float:
        """Block until the quota covers one more query; return the seconds waited."""
        with self._lock:
            delay = 0.0
            if self._remaining is not None and self._remaining <= self.reserve:
                delay = max(0.0, self._resets_at - self._clock())
                # The window has reset (or will have, after the wait): the server will tell us the new figure.
                self._remaining = None
            elif self._remaining is not None:
                self._remaining -= 1
            if delay > 0:
                self.waits += 1
                self.waited_s += delay
        if delay > 0:
            logger.info("Resource Graph quota spent; waiting %.2f s for it to reset", delay)
            self._sleep(delay)
        return delay

    def observe(self, headers: Mapping[str, str]) -> None:
        """Record the quota a response reports (headers are looked up case-insensitively).

        ``resets-after`` comes in whole seconds, rounded one way or another, so each response only bounds the
        reset time: it is at most ``now + resets + 1 s`` (``now`` is after the server computed it). Within one
        window the gate keeps the tightest such bound, so it never sends early and, after a few responses,
        hardly waits late. A higher ``remaining`` than before means a new window: the bound starts afresh.
        """
        lowered = {k.lower(): v for k, v in headers.items()}
        remaining = lowered.get(QUOTA_REMAINING_HEADER)
        resets = lowered.get(QUOTA_RESETS_AFTER_HEADER)
        if remaining is None or resets is None:
            return
        try:
            remaining_n = int(remaining)
            resets_s = parse_resets_after(resets)
        except ValueError:
            logger.warning("ignoring malformed Resource Graph quota headers %r / %r", remaining, resets)
            return
        resolution = 0.01 if "." in resets else 1.0
        bound = self._clock() + resets_s + resolution
        with self._lock:
            new_window = self._seen is None or remaining_n > self._seen or self._clock() >= self._resets_at
            self._resets_at = bound if new_window else min(self._resets_at, bound)
            self._seen = remaining_n
            self._remaining = remaining_n

    def resets_in(self) -> float:
        """Seconds until the current window resets (0 if unknown or past)."""
        with self._lock:
            return max(0.0, self._resets_at - self._clock())


@dataclass
class InventoryStats:
    """What one inventory run cost; filled in as rows stream."""

    queries: int = 0
    """Resource Graph calls that returned a page (each costs one quota unit)."""
    rows: int = 0
    throttled: int = 0
    """429 responses received."""
    quota_waits: int = 0
    quota_wait_s: float = 0.0
    policy_states: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class InventoryRow:
    """One managed cluster that may need work, shaped for ``ClusterSnapshot.from_arm``."""

    cluster_id: str
    subscription_id: str
    body: Mapping[str, Any]
    """The cluster as an ARM GET body (id, name, type, location, tags, identity, properties)."""
    extension_name: str | None
    """Name of the cluster's backup extension (any name; found by extension type), or ``None``."""
    extension_state: str | None
    """Its provisioningState (never ``Succeeded``: those clusters are filtered out), or ``None``."""
    management_groups: tuple[str, ...] = ()
    """For rows found through a management-group request: the configured groups the cluster is under."""


def row_from_graph(data: Mapping[str, Any], *, management_groups: tuple[str, ...] = ()) -> InventoryRow:
    """Turn one ``objectArray`` row of the inventory query into an :class:`InventoryRow`."""
    body = {
        "id": data["id"],
        "name": data.get("name"),
        "type": MANAGED_CLUSTER_TYPE,
        "location": data.get("location"),
        "tags": data.get("tags") or {},
        "identity": data.get("identity"),
        "properties": {
            "provisioningState": data.get("provisioningState") or None,
            "powerState": data.get("powerState"),
            "storageProfile": data.get("storageProfile"),
            "agentPoolProfiles": data.get("agentPoolProfiles") or [],
        },
    }
    return InventoryRow(
        cluster_id=str(data["id"]),
        subscription_id=str(data.get("subscriptionId") or ""),
        body=body,
        extension_name=data.get("extensionName") or None,
        extension_state=data.get("extensionState") or None,
        management_groups=management_groups,
    )


class ResourceGraphInventory:
    """Runs inventory plans against one ``ResourceGraphClient``.

    :param client: an ``azure.mgmt.resourcegraph.ResourceGraphClient``.
    :keyword page_size: ``$top`` per page (1..1000).
    :keyword quota: the quota gate; share one per principal when several inventories run in one process.
    :keyword max_throttle_retries: 429s tolerated per page before giving up.
    :keyword prefetch: fetch the next page while the caller consumes the current one.
    """

    def __init__(
        self,
        client: Any,
        *,
        page_size: int = MAX_PAGE_ROWS,
        quota: QuotaGate | None = None,
        max_throttle_retries: int = 5,
        prefetch: bool = True,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if not 1 <= page_size <= MAX_PAGE_ROWS:
            raise ValueError(f"page_size must be 1..{MAX_PAGE_ROWS}, got {page_size}")
        self._client = client
        self.page_size = page_size
        self.quota = quota or QuotaGate(sleep=sleep)
        self.max_throttle_retries = max_throttle_retries
        self.prefetch = prefetch
        self._sleep = sleep

    def _query(
        self, request: InventoryRequest, skip_token: str | None, stats: InventoryStats, *, top: int | None
    ) -> tuple[list[Mapping[str, Any]], str | None]:
        body = QueryRequest(
            query=request.query,
            subscriptions=list(request.subscriptions) or None,
            management_groups=list(request.management_groups) or None,
            options=QueryRequestOptions(top=top, skip_token=skip_token, result_format="objectArray"),
        )
        for attempt in range(self.max_throttle_retries + 1):
            waited = self.quota.before_query()
            if waited:
                stats.quota_waits += 1
                stats.quota_wait_s += waited
            try:
                response, headers = self._client.resources(
                    body,
                    cls=lambda pipeline_response, deserialized, _: (
                        deserialized,
                        pipeline_response.http_response.headers,
                    ),
                )
            except HttpResponseError as exc:
                headers = _headers_of(exc)
                self.quota.observe(headers)
                if exc.status_code != 429 or attempt == self.max_throttle_retries:
                    raise InventoryError(f"Resource Graph query failed: {exc.message}") from exc
                stats.throttled += 1
                delay = _retry_after(headers) or self.quota.resets_in() or 1.0
                logger.warning("Resource Graph 429 (attempt %d); retrying in %.2f s", attempt + 1, delay)
                self._sleep(delay)
                continue
            self.quota.observe(headers)
            stats.queries += 1
            data = response.data or []
            if not isinstance(data, list):
                raise InventoryError("Resource Graph returned a non-objectArray result")
            return data, response.skip_token
        raise AssertionError("unreachable")

    def _pages(self, request: InventoryRequest, stats: InventoryStats) -> Iterator[list[Mapping[str, Any]]]:
        if not self.prefetch:
            token: str | None = None
            while True:
                rows, token = self._query(request, token, stats, top=self.page_size)
                yield rows
                if not token:
                    return
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="arg-prefetch") as pool:
            pending: Future[tuple[list[Mapping[str, Any]], str | None]] = pool.submit(
                self._query, request, None, stats, top=self.page_size
            )
            while True:
                rows, token = pending.result()
                if token:
                    pending = pool.submit(self._query, request, token, stats, top=self.page_size)
                yield rows
                del rows
                if not token:
                    return

    def iter_data(
        self, request: InventoryRequest, *, stats: InventoryStats | None = None
    ) -> Iterator[Mapping[str, Any]]:
        """Every raw ``objectArray`` row of one request (any query, not only the inventory's), paged with
        ``$skipToken`` under the quota gate and the bounded 429 retries. Raises :class:`InventoryError`."""
        stats = stats if stats is not None else InventoryStats()
        for page in self._pages(request, stats):
            stats.rows += len(page)
            yield from page

    def iter_rows(
        self, plan: InventoryPlan, *, stats: InventoryStats | None = None
    ) -> Iterator[InventoryRow]:
        """Every cluster row of every request in the plan, streamed page by page."""
        stats = stats if stats is not None else InventoryStats()
        for request in plan.requests:
            groups = plan.management_groups if request.management_groups else ()
            for page in self._pages(request, stats):
                for data in page:
                    stats.rows += 1
                    yield row_from_graph(data, management_groups=groups)
        stats.quota_waits = max(stats.quota_waits, self.quota.waits)

    def policy_summary(self, plan: InventoryPlan, query: str, *, stats: InventoryStats) -> dict[str, int]:
        """Run a ``summarize`` query in each of the plan's scopes; sum ``clusters`` per definition/state."""
        totals: dict[str, int] = {}
        for request in plan.requests:
            scoped = InventoryRequest(
                query=query, subscriptions=request.subscriptions, management_groups=request.management_groups
            )
            rows, _ = self._query(scoped, None, stats, top=None)
            for row in rows:
                key = f"{row.get('definition')}/{row.get('complianceState')}"
                totals[key] = totals.get(key, 0) + int(row.get("clusters") or 0)
        stats.policy_states = totals
        return totals


def _headers_of(exc: HttpResponseError) -> Mapping[str, str]:
    response: Any = exc.response
    return response.headers if response is not None else {}


def _retry_after(headers: Mapping[str, str]) -> float | None:
    for name, value in headers.items():
        if name.lower() == "retry-after":
            try:
                return float(value)
            except ValueError:
                return None
    return None
