"""Everything preflight reads from Azure, cached per process, and the sweep's once-per-sweep snapshot.

The preflight link at the head of every chain (``core/plan/preflight_check.py``) needs, for each reconcile,
the policy assignments that can cover the cluster. Reading them per cluster would cost a Resource Graph query
per event, so :class:`PreflightSource` reads them per subscription (assignments at the subscription, its
resource groups and resources, and at every management group above it, through
:class:`~remediator.adapters.policy_assignments.PolicyAssignmentReader`) and serves them from a per-process
cache for :data:`POLICY_TTL_S` (a miss costs two dependent rounds of queries: the ancestry together with the
assignments at the subscription's own scopes, then those at its management groups; then the definitions they
reference, if any); the link asks for a fresh read before it blocks on data older than a few
seconds, so an operator's fix is seen at once. Provider registrations are cached only once ``Registered``;
policy definitions (what an assignment's effect is, for policy-task mode) are read once per process.
Deployment Safeguards has no Resource Graph table, so it is one GET per reconcile, and only for clusters whose
Azure Policy add-on is on.

A refusal that waiting will not fix (401/403/400/404: the identity lacks Reader where the assignments live)
becomes a view with ``error`` set: preflight reports it as a warning and the install goes ahead. Throttling
and server errors propagate (the reconcile waits).

:meth:`PreflightSource.sweep` builds a :class:`SweepPreflight` for one sweep: the policy data of every
subscription in scope and their management-group ancestry in a handful of queries, the set of clusters whose
Azure Policy add-on is on in one query per batch of subscriptions (the sweep's inventory does not carry that
column), then :meth:`SweepPreflight.findings_for` per cluster without further Resource Graph calls (storage
accounts and provider registrations once each; Safeguards once per add-on cluster asked about).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import wait as wait_for_futures
from dataclasses import replace
from typing import Any

from azure.core.exceptions import AzureError, HttpResponseError, ResourceNotFoundError

from remediator.adapters.arm import ArmError, ArmGateway, map_arm_error
from remediator.adapters.clients import AzureClients
from remediator.adapters.graph import ResourceGraphInventory
from remediator.adapters.policy_assignments import (
    PolicyAssignmentReader,
    RunsGraphRequests,
    read_providers,
    read_safeguards_at,
)
from remediator.core.catalog import DEFAULT_EXTENSION_NAME, EXTENSION_NAMESPACE, SETTING_USE_AAD
from remediator.core.ids import ResourceId
from remediator.core.plan.observed import (
    AssignmentView,
    PolicyView,
    ProvidersView,
    SafeguardsView,
)
from remediator.core.plan.policy_task import RemediationEffect, remediation_effect
from remediator.core.plan.preflight_check import REQUIRED_PROVIDERS
from remediator.core.policy_catalog import is_set_definition
from remediator.core.preflight import (
    Finding,
    PolicyAssignment,
    PolicyData,
    PolicyDefinition,
    PreflightInput,
    Safeguards,
    StorageAccount,
    blocked_by_policy,
    preflight,
    unread,
)
from remediator.core.preflight_query import addon_requests, assignment_requests
from remediator.core.snapshot import ClusterSnapshot

logger = logging.getLogger(__name__)

POLICY_TTL_S = 300.0
"""How long policy data, management-group ancestry and assignments are served from the per-process cache
(a blocking verdict is confirmed on fresh data: ``preflight_check.CONFIRM_AGE_S``)."""

_ANY_SUBSCRIPTION = "00000000-0000-0000-0000-000000000000"
"""``PolicyClient`` needs a subscription; tenant-level calls (built-ins, ids with a scope) ignore it."""

PERMANENT_STATUSES = frozenset({400, 401, 403, 404})
"""Refusals that waiting will not fix: the read is reported as a warning instead of failing the reconcile."""


def refusal(exc: BaseException) -> str | None:
    """The message of a refusal in ``exc``'s cause chain whose status is permanent (see
    :data:`PERMANENT_STATUSES`), else ``None`` (throttling, server errors, timeouts: retry later)."""
    seen: BaseException | None = exc
    while seen is not None:
        status = getattr(seen, "status", None)
        if status is None:
            status = getattr(seen, "status_code", None)
        if isinstance(status, int):
            return str(seen) if status in PERMANENT_STATUSES else None
        seen = seen.__cause__ or seen.__context__
    return None


def _raw(pipeline_response: Any, _deserialized: Any, _headers: Any) -> Any:
    return pipeline_response.http_response.json()


class _Cache:
    """Time-bounded values by key, one loader at a time per key (concurrent reconciles share a read)."""

    def __init__(self, ttl_s: float, clock: Callable[[], float]) -> None:
        self.ttl_s = ttl_s
        self._clock = clock
        self._values: dict[Any, tuple[float, Any]] = {}
        self._locks: dict[Any, threading.Lock] = {}
        self._lock = threading.Lock()

    def get(self, key: Any, load: Callable[[], Any], *, fresh: bool = False) -> tuple[Any, float]:
        """The value and its age in seconds; loaded when absent, expired or ``fresh`` is asked."""
        with self._lock:
            key_lock = self._locks.setdefault(key, threading.Lock())
        with key_lock:
            now = self._clock()
            held = self._values.get(key)
            if held is not None and not fresh and now - held[0] <= self.ttl_s:
                return held[1], now - held[0]
            value = load()
            self._values[key] = (self._clock(), value)
            return value, 0.0

    def peek(self, key: Any) -> tuple[bool, Any]:
        """``(True, value)`` when a value younger than the TTL is held, else ``(False, None)``."""
        with self._lock:
            held = self._values.get(key)
        if held is None or self._clock() - held[0] > self.ttl_s:
            return False, None
        return True, held[1]

    def put(self, key: Any, value: Any) -> None:
        with self._lock:
            self._values[key] = (self._clock(), value)

    def drop(self, key: Any) -> None:
        with self._lock:
            self._values.pop(key, None)


class PreflightSource:
    """The reads behind preflight, cached per process (one instance per process; thread-safe).

    :param clients: the SDK client factory (policy, container-service and Resource Graph clients).
    :param gateway: the ARM gateway (storage accounts).
    :keyword graph: runs Resource Graph requests; default: a ``ResourceGraphInventory`` over the clients'
        Resource Graph client (no prefetch, two 429 retries).
    :keyword ttl_s: cache lifetime of policy data, ancestry and assignments.
    """

    def __init__(
        self,
        clients: AzureClients,
        gateway: ArmGateway,
        *,
        graph: RunsGraphRequests | None = None,
        ttl_s: float = POLICY_TTL_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._clients = clients
        self._gateway = gateway
        self._graph = graph
        self._reader: PolicyAssignmentReader | None = None
        self._reader_lock = threading.Lock()
        self._policy = _Cache(ttl_s, clock)
        self._ancestry = _Cache(ttl_s, clock)
        self._assignments = _Cache(ttl_s, clock)
        self._providers = _Cache(ttl_s, clock)
        self._definitions: dict[str, PolicyDefinition | None] = {}
        self._definitions_lock = threading.Lock()
        self._pool_instance: ThreadPoolExecutor | None = None
        self.policy_reads = 0
        """Policy-data reads that went to Resource Graph (cache misses), for tests and logs."""

    # -- policy data ------------------------------------------------------------------------------------

    def reader(self, subscription: str) -> PolicyAssignmentReader:
        """The policy reader (built once; its ``PolicyClient`` reads tenant-level built-ins for any
        subscription)."""
        with self._reader_lock:
            if self._reader is None:
                graph = self._graph or ResourceGraphInventory(
                    self._clients.resource_graph(), prefetch=False, max_throttle_retries=2
                )
                self._reader = PolicyAssignmentReader(graph, policy_client=self._clients.policy(subscription))
            return self._reader

    @property
    def graph_queries(self) -> int:
        """Resource Graph queries preflight has sent so far (each page counts once per request)."""
        with self._reader_lock:
            return 0 if self._reader is None else self._reader.queries

    def ancestors(self, subscriptions: Sequence[str]) -> dict[str, tuple[str, ...]]:
        """Subscription (lower case) -> every management group above it (cached)."""
        subs = sorted({s.lower() for s in subscriptions})
        out: dict[str, tuple[str, ...]] = {}
        missing: list[str] = []
        for sub in subs:
            hit, held = self._ancestry.peek(sub)
            if hit:
                out[sub] = held
            else:
                missing.append(sub)
        if missing:
            found = self.reader(missing[0]).management_group_ancestors(missing)
            for sub in missing:
                out[sub] = found.get(sub, ())
                self._ancestry.put(sub, out[sub])
        return out

    def policy(self, subscription: str, *, fresh: bool = False) -> PolicyView:
        """The policy data that can cover clusters of ``subscription`` (cached; ``fresh`` re-reads).

        :raises ArmError: throttled or failing Resource Graph (retry later).
        """
        sub = subscription.lower()

        def load() -> tuple[PolicyData | None, tuple[str, ...], str]:
            self.policy_reads += 1
            try:
                groups, data = self._read_policy(sub)
            except (ArmError, AzureError) as exc:
                why = refusal(exc)
                if why is None:
                    raise
                logger.warning("policy data of subscription %s not readable: %s", sub, why)
                return None, (), why
            return data, groups, ""

        (data, groups, error), age = self._policy.get(sub, load, fresh=fresh)
        if error:
            self._policy.drop(sub)  # a permission gap may be fixed any time: ask again next reconcile
        return PolicyView(data, groups, age, error)

    def _read_policy(self, sub: str) -> tuple[tuple[str, ...], PolicyData]:
        """The subscription's management-group ancestry and policy data, in two dependent rounds rather than
        three: the assignments at the subscription's own scopes need no ancestry, so they are read beside
        the ancestry and the assignments at the groups it names (which follow the ancestry at once, not
        the slower of the ancestry and the subscription's own assignments); then the definitions they
        reference."""
        reader = self.reader(sub)
        own = assignment_requests([sub])
        pending = self._pool().submit(reader.assignments, own)
        try:
            groups = self.ancestors([sub]).get(sub, ())
            at_groups = reader.assignments(assignment_requests([], groups))
        finally:
            wait_for_futures([pending])  # never leave the other query running behind an error
        found = pending.result()
        for key, assignment in at_groups.items():
            found.setdefault(key, assignment)
        return groups, reader.complete(found, scope=own[0] if own else None)

    def _pool(self) -> ThreadPoolExecutor:
        with self._reader_lock:
            if self._pool_instance is None:
                self._pool_instance = ThreadPoolExecutor(max_workers=4, thread_name_prefix="preflight")
            return self._pool_instance

    def prime(
        self, subscriptions: Iterable[str], data: PolicyData, groups: Mapping[str, tuple[str, ...]]
    ) -> None:
        """Store data read for several subscriptions at once (the sweep's) as each one's cached data (the
        findings filter assignments by scope, so a superset is as good)."""
        for sub in subscriptions:
            self._policy.put(sub.lower(), (data, groups.get(sub.lower(), ()), ""))

    # -- providers, Safeguards -------------------------------------------------------------------------

    def providers(self, subscription: str, namespaces: Sequence[str]) -> ProvidersView:
        """Registration states (cached once every namespace is ``Registered``)."""
        key = (subscription.lower(), tuple(sorted(namespaces)))
        client = self._clients.container_service(subscription)
        try:
            states, _age = self._providers.get(
                key, lambda: read_providers(client, subscription, list(namespaces))
            )
        except ArmError as exc:
            why = refusal(exc)
            if why is None:
                raise
            return ProvidersView(None, why)
        if any(str(v).lower() != "registered" for v in states.values()):
            self._providers.drop(key)  # a registration in progress is looked at again next time
        return ProvidersView(dict(states))

    def safeguards(self, cluster: ResourceId) -> SafeguardsView:
        """The cluster's Deployment Safeguards (one GET; ask only for clusters with the add-on on)."""
        client = self._clients.container_service(str(cluster.subscription_id))
        try:
            found: Safeguards | None = read_safeguards_at(client, cluster.canonical)
        except ArmError as exc:
            why = refusal(exc)
            if why is None:
                raise
            return SafeguardsView(None, why)
        return SafeguardsView(found)

    # -- policy-task mode ------------------------------------------------------------------------------

    def assignment(self, assignment_id: ResourceId) -> AssignmentView:
        """The assignment (cached for the TTL) and its definition (read once per process).

        :raises ArmError: throttled or failing ARM (retry later).
        """
        key = assignment_id.key

        def load() -> PolicyAssignment | None:
            client = self._clients.policy(str(assignment_id.subscription_id or _ANY_SUBSCRIPTION))
            try:
                body = client.policy_assignments.get_by_id(assignment_id.canonical.lstrip("/"), cls=_raw)
            except ResourceNotFoundError:
                return None
            except AzureError as exc:
                raise map_arm_error(exc, operation="PolicyAssignments_GetById") from exc
            return PolicyAssignment.from_arm(body)

        assignment, _age = self._assignments.get(key, load)
        if assignment is None:
            self._assignments.drop(key)
            return AssignmentView(None)
        if is_set_definition(assignment.definition_id):
            return AssignmentView(assignment, None, is_set=True)
        try:
            definition = self.definition(assignment.definition_id, subscription=assignment_id.subscription_id)
        except ArmError as exc:
            why = refusal(exc)
            if why is None:
                raise
            return AssignmentView(assignment, None, error=why)
        if definition is None:
            return AssignmentView(assignment, None, error=f"{assignment.definition_id} not found")
        return AssignmentView(assignment, definition)

    def remediation_effects(self, assignment_ids: Sequence[ResourceId]) -> list[RemediationEffect]:
        """Policy-task mode's check of each configured assignment, in order (``config check --live``,
        ``/api/health``): can a remediation task for it deploy anything?

        :raises ArmError: throttled or failing ARM.
        """
        return [remediation_effect(a, self.assignment(a)) for a in assignment_ids]

    def definition(self, definition_id: str, *, subscription: str | None = None) -> PolicyDefinition | None:
        """A policy definition by id (built-in, subscription or management group), read once per process."""
        key = definition_id.lower()
        with self._definitions_lock:
            if key in self._definitions:
                return self._definitions[key]
        client = self._clients.policy(subscription or _ANY_SUBSCRIPTION)
        name = definition_id.rstrip("/").rsplit("/", 1)[-1]
        lowered = definition_id.lower()
        mg_prefix = "/providers/microsoft.management/managementgroups/"
        try:
            if lowered.startswith("/providers/microsoft.authorization/"):
                body = client.policy_definitions.get_built_in(name, cls=_raw)
            elif lowered.startswith(mg_prefix):
                group = definition_id[len(mg_prefix) :].split("/", 1)[0]
                body = client.policy_definitions.get_at_management_group(group, name, cls=_raw)
            else:
                sub = definition_id.split("/")[2]
                body = self._clients.policy(sub).policy_definitions.get(name, cls=_raw)
        except ResourceNotFoundError:
            body = None
        except HttpResponseError as exc:
            raise map_arm_error(exc, operation="PolicyDefinitions_Get") from exc
        except AzureError as exc:
            raise map_arm_error(exc, operation="PolicyDefinitions_Get") from exc
        found = None if body is None else PolicyDefinition.from_arm(body)
        with self._definitions_lock:
            self._definitions[key] = found
        return found

    # -- the sweep -------------------------------------------------------------------------------------

    def sweep(self, subscriptions: Sequence[str]) -> SweepPreflight:
        """One sweep's snapshot: policy data and ancestry of every subscription, and the clusters whose
        Azure Policy add-on is on, read once (see the module docstring).

        :raises ArmError: throttled or failing Resource Graph (the sweep decides what to do).
        """
        subs = sorted({s.lower() for s in subscriptions})
        error = ""
        data: PolicyData | None = None
        ancestry: dict[str, tuple[str, ...]] = {}
        addon: frozenset[str] = frozenset()
        if subs:
            try:
                ancestry = self.ancestors(subs)
                groups = sorted({g for chain in ancestry.values() for g in chain})
                reader = self.reader(subs[0])
                data = reader.read(subscriptions=subs, management_groups=groups)
                addon = frozenset(
                    str(row.get("id") or "").lower()
                    for request in addon_requests(subs)
                    for row in reader.rows(request)
                )
            except (ArmError, AzureError) as exc:
                why = refusal(exc)
                if why is None:
                    raise
                error = why
        if data is not None:
            self.prime(subs, data, ancestry)
        return SweepPreflight(self, data, ancestry, addon, error=error)


class SweepPreflight:
    """Preflight for the clusters of one sweep from data read once (:meth:`PreflightSource.sweep`).

    ``findings_for`` reads nothing from Resource Graph for the subscriptions the snapshot was built for; it
    reads each storage account and each subscription's provider registrations once, and Deployment Safeguards
    once per cluster with the add-on on. A cluster of another subscription (a management-group scope lists no
    subscriptions up front) costs one policy read and one add-on query for its subscription, once. Read
    failures become warnings (the sweep never stops on them).
    """

    def __init__(
        self,
        source: PreflightSource,
        data: PolicyData | None,
        ancestry: Mapping[str, tuple[str, ...]],
        addon_clusters: frozenset[str],
        *,
        error: str = "",
    ) -> None:
        self._source = source
        self.data = data
        self.ancestry = dict(ancestry)
        self.addon_clusters = addon_clusters
        self.error = error
        self._storage: dict[str, StorageAccount | None | str] = {}
        self._providers: dict[str, ProvidersView | str] = {}
        self._safeguards: dict[str, SafeguardsView | str] = {}
        self._others: dict[str, tuple[PolicyData | None, tuple[str, ...], frozenset[str], str] | str] = {}
        self._lock = threading.Lock()

    def _policy_of(self, sub: str) -> tuple[PolicyData | None, tuple[str, ...], frozenset[str], str]:
        """Policy data, ancestry, add-on cluster ids and read error for the cluster's subscription."""
        if sub in self.ancestry or self.error:  # read with the snapshot (or the snapshot could not read)
            return self.data, self.ancestry.get(sub, ()), self.addon_clusters, self.error

        def load() -> tuple[PolicyData | None, tuple[str, ...], frozenset[str], str]:
            view = self._source.policy(sub)
            reader = self._source.reader(sub)
            addon = frozenset(
                str(row.get("id") or "").lower()
                for request in addon_requests([sub])
                for row in reader.rows(request)
            )
            return view.data, view.management_groups, addon, view.error

        found = self._once(self._others, sub, load)
        if isinstance(found, str):
            return None, (), frozenset(), found
        data, groups, addon, error = found
        return data, groups, addon, error

    def _once(self, memo: dict[str, Any], key: str, load: Callable[[], Any]) -> Any:
        with self._lock:
            if key in memo:
                return memo[key]
        try:
            value = load()
        except (ArmError, AzureError) as exc:
            value = f"{type(exc).__name__}: {exc}"
        with self._lock:
            memo[key] = value
        return value

    def findings_for(
        self,
        cluster: ClusterSnapshot,
        *,
        storage_account: ResourceId | None = None,
        extension_settings: Mapping[str, str] | None = None,
        extension_name: str | None = None,
    ) -> tuple[Finding, ...]:
        """Every preflight finding for one cluster of the sweep (blockers and warnings).

        :param cluster: the cluster (a sweep row's snapshot; the add-on state is taken from the snapshot or
            from this sweep's add-on query).
        :keyword storage_account: the region's backup storage account (``Decision.storage_account_id``).
        :keyword extension_settings: the settings the extension would get (default: Entra ID storage access,
            as the product's and the DINE's body set).
        """
        sub = cluster.subscription_id.lower()
        data, groups, addon_clusters, error = self._policy_of(sub)
        addon = cluster.azure_policy_enabled or cluster.id.key in addon_clusters
        snapshot = cluster if addon == cluster.azure_policy_enabled else _with_addon(cluster)
        extra: list[Finding] = []
        if error:
            extra.append(_warn_unread("the policy assignments", error))
        providers = self._once(self._providers, sub, lambda: self._source.providers(sub, REQUIRED_PROVIDERS))
        states: Mapping[str, str] | None = None
        if isinstance(providers, ProvidersView) and providers.states is not None:
            states = providers.states
        else:
            extra.append(
                _warn_unread("the provider registrations", str(getattr(providers, "error", providers)))
            )
        safeguards: Safeguards | None = None
        if addon:
            view = self._once(self._safeguards, cluster.id.key, lambda: self._source.safeguards(cluster.id))
            if isinstance(view, SafeguardsView) and not view.error:
                safeguards = view.safeguards
            else:
                extra.append(_warn_unread("Deployment Safeguards", str(getattr(view, "error", view))))
        storage: StorageAccount | None = None
        if storage_account is not None:
            found = self._once(
                self._storage, storage_account.key, lambda: _storage(self._source, storage_account)
            )
            if isinstance(found, str):
                extra.append(_warn_unread(f"storage account {storage_account.name}", found))
            else:
                storage = found
        inp = PreflightInput(
            cluster=snapshot,
            management_groups=groups,
            policy=data,
            safeguards=safeguards,
            storage=storage,
            extension_settings=dict(extension_settings or {SETTING_USE_AAD: "true"}),
            extension_name=extension_name or DEFAULT_EXTENSION_NAME,
            extension_namespace=EXTENSION_NAMESPACE,
            providers=states,
        )
        return (*preflight(inp), *extra)

    def blocked_by_policy(self, cluster: ClusterSnapshot, **kwargs: Any) -> tuple[str, ...]:
        """The assignment names whose blocking findings stop the install on ``cluster`` (empty: none)."""
        return blocked_by_policy(self.findings_for(cluster, **kwargs))


def _storage(source: PreflightSource, account: ResourceId) -> StorageAccount | None:
    info = source._gateway.get_storage_account(account)  # noqa: SLF001 - the source's own gateway
    return None if info is None else info.access


def _with_addon(cluster: ClusterSnapshot) -> ClusterSnapshot:
    return replace(cluster, azure_policy_enabled=True)


def _warn_unread(what: str, error: str) -> Finding:
    return unread(what, error)
