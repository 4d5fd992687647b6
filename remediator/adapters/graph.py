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

The chain's other links come from side queries (grants, backup vaults, backup instances, subscription names;
see :func:`remediator.core.inventory_query.plan_fleet_inventory`). They are read first, concurrently with the
first page of clusters (the vault identities' grants right after the vaults, whose rows name the principals),
held in memory as small indexes (one :class:`~remediator.core.coverage.GrantIndex` by principal and scope,
vault -> its identity, cluster -> backup instances, subscription -> name), and joined to each cluster row as
it streams: a left join in memory, because Resource Graph allows one cross-table join per query. The grant
index and the vaults are shared by every row, not copied.

Pages are read as raw JSON when the client is an ``azure.core`` pipeline client (the runtime's
``AzureClients.resource_graph_pipeline()``, same policies as the SDK clients): the SDK's
``ResourceGraphClient.resources`` deserializes every cell of ``data`` (typed ``object``) through msrest, which
costs several times a plain ``json.loads`` of the page (measured: ~7x for a page of 1,000 cluster rows). An
SDK client is still accepted (tests, the management-group resolver).
"""

from __future__ import annotations

import json
import logging
import re
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from azure.core.exceptions import (
    ClientAuthenticationError,
    HttpResponseError,
    ResourceExistsError,
    ResourceNotFoundError,
    ResourceNotModifiedError,
    map_error,
)
from azure.core.rest import HttpRequest
from azure.mgmt.resourcegraph.models import QueryRequest, QueryRequestOptions

from remediator.core.coverage import (
    EMPTY_GRANTS,
    BackupInstanceFacts,
    ChainFacts,
    GrantIndex,
    RoleGrant,
    VaultFacts,
)
from remediator.core.inventory_query import MAX_PAGE_ROWS, InventoryPlan, InventoryRequest
from remediator.core.text import ignore_case_key

logger = logging.getLogger(__name__)

QUOTA_REMAINING_HEADER = "x-ms-user-quota-remaining"
QUOTA_RESETS_AFTER_HEADER = "x-ms-user-quota-resets-after"
MANAGED_CLUSTER_TYPE = "Microsoft.ContainerService/managedClusters"
RESOURCES_PATH = "/providers/Microsoft.ResourceGraph/resources"
_ERROR_MAP: dict[int, type[HttpResponseError]] = {
    401: ClientAuthenticationError,
    404: ResourceNotFoundError,
    409: ResourceExistsError,
    304: ResourceNotModifiedError,
}
"""As azure-mgmt-resourcegraph's ``resources`` operation maps statuses to azure-core errors."""
API_VERSION = "2021-03-01"
"""The api-version azure-mgmt-resourcegraph 8.0 sends (its default); the raw path sends the same."""

_RESETS_AFTER = re.compile(r"^(\d+):(\d{1,2}):(\d{1,2}(?:\.\d+)?)$")


class InventoryError(Exception):
    """Resource Graph refused or failed the inventory query (after the bounded 429 retries)."""


class ExpiredSkipToken(InventoryError):
    """A later page's ``$skipToken`` was refused as invalid or expired (400 ``InvalidSkipToken``): the query
    result it pointed into is gone, and the query must run again from its first page."""


MAX_QUERY_RESTARTS = 3
"""How often a paged query runs again from its first page after its ``$skipToken`` expired. A sweep that
consumes pages slowly (enqueueing thousands of clusters) can outlive a page token: at 10,000 clusters the
emulator's sweep lost its token after five minutes and left 137 clusters without a work item until the next
sweep (docs/performance.md, chaos). Rows already yielded (by ``id``) are skipped on the new run."""


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
    side_rows: int = 0
    """Rows of the side queries (grants, backup instances, subscriptions)."""
    subscription_names: dict[str, str] = field(default_factory=dict)
    """Subscription GUID (lower-cased) -> display name, from the subscription side query (also those without
    a cluster row: the subscriptions the grants live in)."""


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
    """Its provisioningState, or ``None``."""
    management_groups: tuple[str, ...] = ()
    """For rows found through a management-group request: the configured groups the cluster is under."""
    extension_principal_id: str | None = None
    """The extension identity's principal id (``aksAssignedIdentity.principalId``), or ``None``."""
    grants: GrantIndex | tuple[RoleGrant, ...] = ()
    """Assignments of the chain's roles (the grants side queries' index, shared by every row; a tuple in
    tests)."""
    backup_instances: tuple[BackupInstanceFacts, ...] = ()
    """Backup instances naming this cluster (from the backup-instance side query)."""
    backup_instances_known: bool = False
    """Whether the plan read backup instances (an empty tuple then means: none exists)."""
    subscription_name: str | None = None
    """The subscription's display name (from the subscription side query), or ``None``."""
    management_group_chain: tuple[str, ...] = ()
    """Every management group above the subscription, immediate parent first (subscription side query)."""
    vaults: Mapping[str, VaultFacts] | None = None
    """The region targets' backup vaults by id key (protect mode's vault side query), or ``None``."""

    def chain_facts(
        self, *, cluster_principal_id: str | None = None, cluster_location: str = ""
    ) -> ChainFacts:
        """What this row shows of the cluster's chain (``core.coverage``), with the cluster's identity
        principal and region as its snapshot reads them."""
        return ChainFacts(
            extension_name=self.extension_name,
            extension_state=self.extension_state,
            extension_principal_id=self.extension_principal_id,
            grants=self.grants,
            backup_instances=self.backup_instances,
            backup_instances_known=self.backup_instances_known,
            cluster_principal_id=cluster_principal_id,
            cluster_location=cluster_location,
            vaults=self.vaults,
        )


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
        extension_principal_id=(str(data.get("extensionPrincipalId") or "").lower() or None),
    )


@dataclass
class SideTables:
    """The side queries' answers, indexed for the in-memory join (a few hundred bytes per cluster)."""

    grants: GrantIndex = field(default_factory=GrantIndex)
    """The chain's roles' assignments, by principal and scope (every grants query, deduplicated)."""
    backup_instances: dict[str, list[BackupInstanceFacts]] = field(default_factory=dict)
    """Cluster key (``ignore_case_key``) -> backup instances naming it."""
    backup_instances_known: bool = False
    subscriptions: dict[str, tuple[str, tuple[str, ...]]] = field(default_factory=dict)
    """Subscription GUID (lower-cased) -> (display name, management groups above it)."""
    vaults: dict[str, VaultFacts] | None = None
    """Backup vault id key -> its row (``None``: the plan reads no vaults)."""
    _instance_ids: set[str] = field(default_factory=set)

    def add(self, kind: str, data: Mapping[str, Any]) -> None:
        if kind == "grants":
            principal = str(data.get("principalId") or "")
            role = str(data.get("roleDefinitionId") or "")
            scope = str(data.get("scope") or "")
            if principal and role and scope:
                self.grants.add(RoleGrant(principal, role, scope))
        elif kind == "backup_instances":
            cluster = str(data.get("clusterId") or "")
            instance = str(data.get("id") or "")
            if cluster and ignore_case_key(instance) not in self._instance_ids:  # requests may overlap
                self._instance_ids.add(ignore_case_key(instance))
                self.backup_instances.setdefault(ignore_case_key(cluster), []).append(
                    BackupInstanceFacts(
                        id=instance,
                        protection_state=str(data.get("protectionState") or ""),
                        error_code=str(data.get("errorCode") or ""),
                    )
                )
        elif kind == "vaults":
            vault = str(data.get("id") or "")
            if vault:
                if self.vaults is None:
                    self.vaults = {}
                self.vaults[ignore_case_key(vault)] = VaultFacts(
                    id=vault,
                    principal_id=str(data.get("principalId") or "").lower() or None,
                    provisioning_state=str(data.get("provisioningState") or ""),
                    location=str(data.get("location") or ""),
                )
        elif kind == "containers":
            sub = str(data.get("subscriptionId") or "").lower()
            chain = data.get("managementGroups") or []
            names = (
                tuple(str(g.get("name")) for g in chain if isinstance(g, Mapping) and g.get("name"))
                if isinstance(chain, list)
                else ()
            )
            if sub:
                self.subscriptions[sub] = (str(data.get("name") or sub), names)

    def join(self, row: InventoryRow) -> InventoryRow:
        """``row`` with the grants and vaults (shared), its backup instances, subscription name and
        management groups."""
        instances = (
            self.backup_instances.get(ignore_case_key(row.cluster_id)) if self.backup_instances else None
        )
        name, chain = self.subscriptions.get(row.subscription_id.lower(), (None, ()))
        return InventoryRow(
            cluster_id=row.cluster_id,
            subscription_id=row.subscription_id,
            body=row.body,
            extension_name=row.extension_name,
            extension_state=row.extension_state,
            management_groups=row.management_groups,
            extension_principal_id=row.extension_principal_id,
            grants=self.grants if len(self.grants) else EMPTY_GRANTS,
            backup_instances=tuple(instances) if instances else (),
            backup_instances_known=self.backup_instances_known,
            subscription_name=name,
            management_group_chain=chain,
            vaults=self.vaults,
        )


class ResourceGraphInventory:
    """Runs inventory plans against one Resource Graph client.

    :param client: an ``azure.core`` pipeline client on the ARM endpoint (pages read as raw JSON; the
        runtime passes ``AzureClients.resource_graph_pipeline()``), or a ``ResourceGraphClient``.
    :keyword page_size: ``$top`` per page (1..1000).
    :keyword quota: the quota gate; share one per principal when several inventories run in one process.
    :keyword max_throttle_retries: 429s tolerated per page before giving up.
    :keyword prefetch: fetch the next page while the caller consumes the current one.
    :keyword page_hook: called with each raw page's bytes (raw client only; the sweep benchmark's floor
        decodes the same bytes).
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
        page_hook: Callable[[bytes], None] | None = None,
    ) -> None:
        if not 1 <= page_size <= MAX_PAGE_ROWS:
            raise ValueError(f"page_size must be 1..{MAX_PAGE_ROWS}, got {page_size}")
        self._client = client
        self._raw = not hasattr(client, "resources") and hasattr(client, "send_request")
        self.page_size = page_size
        self.quota = quota or QuotaGate(sleep=sleep)
        self.max_throttle_retries = max_throttle_retries
        self.prefetch = prefetch
        self.page_hook = page_hook
        self._sleep = sleep

    def _send(
        self, request: InventoryRequest, skip_token: str | None, *, top: int | None
    ) -> tuple[list[Mapping[str, Any]], str | None, Mapping[str, str]]:
        """One page: ``(rows, next skip token, response headers)``; raises ``HttpResponseError``."""
        if not self._raw:
            body = QueryRequest(
                query=request.query,
                subscriptions=list(request.subscriptions) or None,
                management_groups=list(request.management_groups) or None,
                options=QueryRequestOptions(top=top, skip_token=skip_token, result_format="objectArray"),
            )
            response, headers = self._client.resources(
                body,
                cls=lambda pipeline_response, deserialized, _: (
                    deserialized,
                    pipeline_response.http_response.headers,
                ),
            )
            return response.data, response.skip_token, headers
        options: dict[str, Any] = {"resultFormat": "objectArray"}
        if top is not None:
            options["$top"] = top
        if skip_token:
            options["$skipToken"] = skip_token
        payload: dict[str, Any] = {"query": request.query, "options": options}
        if request.subscriptions:
            payload["subscriptions"] = list(request.subscriptions)
        if request.management_groups:
            payload["managementGroups"] = list(request.management_groups)
        http_request = HttpRequest(
            "POST",
            self._client.format_url(RESOURCES_PATH),
            params={"api-version": API_VERSION},
            json=payload,
        )
        # stream=True: the pipeline's ContentDecodePolicy leaves the body alone; it is decoded once, here
        http_response = self._client.send_request(http_request, stream=True)
        try:
            raw = http_response.read()
        finally:
            http_response.close()
        if http_response.status_code != 200:
            # the same error types the SDK's operation raises (its error_map), so callers classify alike
            map_error(status_code=http_response.status_code, response=http_response, error_map=_ERROR_MAP)
            raise HttpResponseError(response=http_response)
        if self.page_hook is not None:
            self.page_hook(raw)
        decoded = json.loads(raw)
        if not isinstance(decoded, dict):
            raise InventoryError("Resource Graph returned a body that is not a JSON object")
        data: Any = decoded.get("data")
        token: Any = decoded.get("$skipToken") or None
        return data, token, http_response.headers

    def _query(
        self, request: InventoryRequest, skip_token: str | None, stats: InventoryStats, *, top: int | None
    ) -> tuple[list[Mapping[str, Any]], str | None]:
        for attempt in range(self.max_throttle_retries + 1):
            waited = self.quota.before_query()
            if waited:
                stats.quota_waits += 1
                stats.quota_wait_s += waited
            try:
                data, token, headers = self._send(request, skip_token, top=top)
            except HttpResponseError as exc:
                headers = _headers_of(exc)
                self.quota.observe(headers)
                if exc.status_code == 400 and skip_token and "skiptoken" in str(exc.message).lower():
                    raise ExpiredSkipToken(f"Resource Graph query failed: {exc.message}") from exc
                if exc.status_code != 429 or attempt == self.max_throttle_retries:
                    raise InventoryError(f"Resource Graph query failed: {exc.message}") from exc
                stats.throttled += 1
                delay = _retry_after(headers) or self.quota.resets_in() or 1.0
                logger.warning("Resource Graph 429 (attempt %d); retrying in %.2f s", attempt + 1, delay)
                self._sleep(delay)
                continue
            self.quota.observe(headers)
            stats.queries += 1
            data = data or []
            if not isinstance(data, list):
                raise InventoryError("Resource Graph returned a non-objectArray result")
            return data, token
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

    def _resumable_pages(
        self, request: InventoryRequest, stats: InventoryStats
    ) -> Iterator[list[Mapping[str, Any]]]:
        """:meth:`_pages`, run again from the first page when a ``$skipToken`` expired
        (:data:`MAX_QUERY_RESTARTS`), without the rows already yielded (by ``id``)."""
        seen: set[str] = set()
        for restart in range(MAX_QUERY_RESTARTS + 1):
            try:
                for page in self._pages(request, stats):
                    fresh = [row for row in page if _row_id(row) not in seen] if restart else page
                    seen.update(key for key in map(_row_id, fresh) if key)
                    yield fresh
                return
            except ExpiredSkipToken:
                if restart == MAX_QUERY_RESTARTS:
                    raise
                logger.warning(
                    "Resource Graph page token expired after %d rows; running the query again (restart %d)",
                    len(seen),
                    restart + 1,
                )

    def iter_data(
        self, request: InventoryRequest, *, stats: InventoryStats | None = None
    ) -> Iterator[Mapping[str, Any]]:
        """Every raw ``objectArray`` row of one request (any query, not only the inventory's), paged with
        ``$skipToken`` under the quota gate and the bounded 429 retries. Raises :class:`InventoryError`."""
        stats = stats if stats is not None else InventoryStats()
        for page in self._resumable_pages(request, stats):
            stats.rows += len(page)
            yield from page

    def side_tables(self, plan: InventoryPlan, *, stats: InventoryStats | None = None) -> SideTables:
        """Run the plan's side queries (concurrently, each paged) and index their rows; the vault identities'
        grants go out as soon as the vault rows named their principals."""
        stats = stats if stats is not None else InventoryStats()
        tables = SideTables(
            backup_instances_known=bool(plan.backup_instances), vaults={} if plan.vaults else None
        )
        first = [("vaults", r) for r in plan.vaults]
        jobs = [("grants", r) for r in plan.grants]
        jobs += [("backup_instances", r) for r in plan.backup_instances]
        jobs += [("containers", r) for r in plan.containers]
        if not jobs and not first:
            return tables
        lock = threading.Lock()

        def run(kind: str, request: InventoryRequest) -> None:
            local = InventoryStats()
            rows = list(self.iter_data(request, stats=local))
            with lock:
                for data in rows:
                    tables.add(kind, data)
                stats.queries += local.queries
                stats.throttled += local.throttled
                stats.quota_waits += local.quota_waits
                stats.side_rows += len(rows)

        with ThreadPoolExecutor(max_workers=4, thread_name_prefix="arg-side") as pool:
            vault_futures = [pool.submit(run, kind, request) for kind, request in first]
            futures = [pool.submit(run, kind, request) for kind, request in jobs]
            for future in vault_futures:
                future.result()
            if plan.vault_grants is not None:
                principals = [v.principal_id for v in (tables.vaults or {}).values() if v.principal_id]
                futures += [pool.submit(run, "grants", r) for r in plan.vault_grants.requests(principals)]
            for future in futures:
                future.result()
        return tables

    def iter_rows(
        self, plan: InventoryPlan, *, stats: InventoryStats | None = None
    ) -> Iterator[InventoryRow]:
        """Every cluster row of every request in the plan, streamed page by page, each joined with the side
        queries' answers (read first, concurrently with the first page of clusters)."""
        stats = stats if stats is not None else InventoryStats()
        side: Future[SideTables] | None = None
        pool: ThreadPoolExecutor | None = None
        if plan.side_requests:
            pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="arg-side-tables")
            side = pool.submit(self.side_tables, plan, stats=stats)
        try:
            tables: SideTables | None = None
            for request in plan.requests:
                groups = plan.management_groups if request.management_groups else ()
                for page in self._resumable_pages(request, stats):
                    if side is not None and tables is None:
                        tables = side.result()
                        stats.subscription_names.update(
                            {sub: name for sub, (name, _) in tables.subscriptions.items()}
                        )
                    for data in page:
                        stats.rows += 1
                        row = row_from_graph(data, management_groups=groups)
                        yield row if tables is None else tables.join(row)
            if side is not None and tables is None:
                side.result()  # surface a side-query failure even when no cluster row came back
        finally:
            if pool is not None:
                pool.shutdown(wait=True, cancel_futures=True)
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


def _row_id(row: Mapping[str, Any]) -> str:
    """A row's ``id`` (case-insensitive), ``""`` when it has none (such a query gets no ``$skipToken``)."""
    return str(row.get("id") or "").lower()


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
