"""Read what preflight needs from Azure: policy assignments and definitions in bulk, Safeguards per cluster.

Preflight (``remediator.core.preflight``) needs the policy assignments that can cover a fleet's clusters and
the definitions behind them. :class:`PolicyAssignmentReader` reads them from Resource Graph's
``policyresources`` in one paged query per batch of subscriptions plus one scoped by the management groups
above them (``remediator.core.preflight_query``) — no per-cluster call — then the definitions and initiatives
those assignments reference, in chunks of ids, repeating once for the members of initiatives. A built-in
definition Resource Graph does not return is read with ``PolicyClient.policy_definitions.get_built_in`` /
``policy_set_definitions.get_built_in`` (azure-mgmt-resource-policy; tenant-level, any Reader may read
built-ins), cached for the life of the reader. Definitions already in the product's catalog are not read.

Deployment Safeguards (``Microsoft.ContainerService/deploymentSafeguards/default``, an extension resource of
the cluster) has no Resource Graph table that we could find, and the SDK has no operation for it yet, so
:func:`read_safeguards` GETs it through the container-service client's pipeline, one call per cluster, and
only for clusters whose Azure Policy add-on is enabled (Safeguards need the add-on: AKS
deployment-safeguards doc, "Prerequisites").
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, Protocol

from azure.core.exceptions import AzureError, HttpResponseError, ResourceNotFoundError
from azure.core.rest import HttpRequest

from remediator.adapters.arm import Transient, map_arm_error
from remediator.adapters.graph import InventoryError
from remediator.core.inventory_query import InventoryRequest
from remediator.core.policy_catalog import (
    INITIATIVES,
    KUBERNETES_DEFINITIONS,
    definition_name,
    is_set_definition,
)
from remediator.core.preflight import (
    PolicyAssignment,
    PolicyData,
    PolicyDefinition,
    PolicySetDefinition,
    Safeguards,
)
from remediator.core.preflight_query import (
    assignment_requests,
    definition_requests,
    is_builtin,
    is_definition_id,
)
from remediator.core.snapshot import ClusterSnapshot
from remediator.core.text import ignore_case_key

logger = logging.getLogger(__name__)

SAFEGUARDS_API_VERSION = "2025-07-01"
"""Newest stable api-version of Microsoft.ContainerService/deploymentSafeguards
[https://learn.microsoft.com/azure/templates/microsoft.containerservice/deploymentsafeguards]."""

DEFINITION_ROUNDS = 2
"""Assignments → their definitions/initiatives → the initiatives' member definitions."""


class RunsGraphRequests(Protocol):
    """One Resource Graph request, every row, paged (``ResourceGraphInventory.iter_data``)."""

    def iter_data(self, request: InventoryRequest) -> Iterator[Mapping[str, Any]]: ...


class PolicyReadError(Transient):
    """Resource Graph or ARM could not return the policy data; retry later (nothing was judged)."""


class PolicyAssignmentReader:
    """Reads :class:`PolicyData` for a set of subscriptions.

    :param graph: runs Resource Graph requests (a ``ResourceGraphInventory``: quota gate, paging, 429s).
    :keyword policy_client: an ``azure.mgmt.resource.policy.PolicyClient`` for built-ins Resource Graph does
    not
        return; ``None``: such definitions stay unread (preflight reports them as not evaluated).
    """

    def __init__(self, graph: RunsGraphRequests, *, policy_client: Any = None) -> None:
        self._graph = graph
        self._policy = policy_client
        self._builtin_cache: dict[str, PolicyDefinition | PolicySetDefinition | None] = {}
        self.queries = 0
        self._queries_lock = threading.Lock()
        self.builtin_reads = 0

    def rows(self, request: InventoryRequest) -> Iterator[Mapping[str, Any]]:
        """Every row of one Resource Graph request (counted in ``queries``).

        :raises PolicyReadError: Resource Graph failed (chained from the SDK error).
        """
        return self._rows(request)

    def _rows(self, request: InventoryRequest) -> Iterator[Mapping[str, Any]]:
        with self._queries_lock:  # requests of one read may run on two threads (PreflightSource.policy)
            self.queries += 1
        try:
            yield from self._graph.iter_data(request)
        except InventoryError as exc:
            raise PolicyReadError(
                f"reading policy data from Resource Graph failed: {exc}", operation="policy"
            ) from exc

    def read(self, *, subscriptions: Sequence[str], management_groups: Sequence[str] = ()) -> PolicyData:
        """Every assignment visible in these subscriptions and management groups, and the definitions they
        reference (minus the catalog's built-ins)."""
        requests = assignment_requests(subscriptions, management_groups)
        return self.complete(self.assignments(requests), scope=requests[0] if requests else None)

    def assignments(self, requests: Sequence[InventoryRequest]) -> dict[str, PolicyAssignment]:
        """The assignments these requests return (``assignment_requests``), by id (Azure's case rule; the
        first answer of an id wins)."""
        assignments: dict[str, PolicyAssignment] = {}
        for request in requests:
            for row in self._rows(request):
                assignment = PolicyAssignment.from_arm(row)
                assignments.setdefault(ignore_case_key(assignment.id), assignment)
        return assignments

    def complete(
        self, assignments: Mapping[str, PolicyAssignment], *, scope: InventoryRequest | None
    ) -> PolicyData:
        """:class:`PolicyData` of these assignments and the definitions they reference, read in ``scope``'s
        scope (the first assignment request's)."""
        data = PolicyData(
            assignments=tuple(sorted(assignments.values(), key=lambda a: ignore_case_key(a.id)))
        )
        scope = scope if scope is not None else InventoryRequest(query="")
        for _ in range(DEFINITION_ROUNDS):
            wanted = {i for i in data.referenced_ids() if is_definition_id(i)}
            if not wanted:
                break
            data = self._add_definitions(data, wanted, scope)
        logger.info(
            "policy data: %d assignment(s), %d definition(s), %d initiative(s) in %d query(ies)",
            len(data.assignments),
            len(data.definitions),
            len(data.set_definitions),
            self.queries,
        )
        return data

    def _add_definitions(self, data: PolicyData, wanted: set[str], scope: InventoryRequest) -> PolicyData:
        definitions = dict(data.definitions)
        sets = dict(data.set_definitions)
        if scope.subscriptions or scope.management_groups:
            for request in definition_requests(wanted, scope):
                for row in self._rows(request):
                    self._store(row, definitions, sets)
        for missing in sorted(wanted - set(definitions) - set(sets)):
            if is_builtin(missing):
                found = self._builtin(missing)
                if isinstance(found, PolicySetDefinition):
                    sets[missing] = found
                elif found is not None:
                    definitions[missing] = found
        return PolicyData(assignments=data.assignments, definitions=definitions, set_definitions=sets)

    @staticmethod
    def _store(
        row: Mapping[str, Any],
        definitions: dict[str, PolicyDefinition],
        sets: dict[str, PolicySetDefinition],
    ) -> None:
        rid = ignore_case_key(str(row.get("id") or ""))
        if str(row.get("type") or "").lower().endswith("policysetdefinitions"):
            sets[rid] = PolicySetDefinition.from_arm(row)
        else:
            definitions[rid] = PolicyDefinition.from_arm(row)

    def _builtin(self, definition_id: str) -> PolicyDefinition | PolicySetDefinition | None:
        key = ignore_case_key(definition_id)
        if key in self._builtin_cache:
            return self._builtin_cache[key]
        name = definition_name(key)
        if self._policy is None or name in KUBERNETES_DEFINITIONS or name in INITIATIVES:
            return None
        self.builtin_reads += 1
        try:
            if is_set_definition(key):
                body = self._policy.policy_set_definitions.get_built_in(name)
            else:
                body = self._policy.policy_definitions.get_built_in(name)
        except ResourceNotFoundError:
            self._builtin_cache[key] = None
            return None
        except AzureError as exc:
            raise map_arm_error(exc, operation="PolicyDefinitions_GetBuiltIn") from exc
        raw = body.as_dict() if hasattr(body, "as_dict") else dict(body)
        parsed: PolicyDefinition | PolicySetDefinition = (
            PolicySetDefinition.from_arm(_camel(raw))
            if is_set_definition(key)
            else PolicyDefinition.from_arm(_camel(raw))
        )
        self._builtin_cache[key] = parsed
        return parsed

    def management_group_ancestors(self, subscriptions: Sequence[str]) -> dict[str, tuple[str, ...]]:
        """Subscription GUID (lower case) → names of every management group above it, from
        ``resourcecontainers`` ``properties.managementGroupAncestorsChain`` (nearest first)."""
        query = "\n".join(
            [
                "resourcecontainers",
                "| where type =~ 'microsoft.resources/subscriptions'",
                "| project id, subscriptionId, chain = properties.managementGroupAncestorsChain",
            ]
        )
        out: dict[str, tuple[str, ...]] = {}
        subs = sorted({s.lower() for s in subscriptions})
        for start in range(0, len(subs), 250):
            request = InventoryRequest(query=query, subscriptions=tuple(subs[start : start + 250]))
            for row in self._rows(request):
                chain = row.get("chain") or []
                out[str(row.get("subscriptionId") or "").lower()] = tuple(
                    str(g.get("name")) for g in chain if isinstance(g, Mapping) and g.get("name")
                )
        return out


def _camel(raw: Mapping[str, Any]) -> dict[str, Any]:
    """The SDK model's ``as_dict()`` of a definition as the ARM JSON shape ``from_arm`` reads."""
    if "properties" in raw:
        return dict(raw)
    keys = {
        "policy_rule": "policyRule",
        "display_name": "displayName",
        "policy_definitions": "policyDefinitions",
        "policy_type": "policyType",
    }
    props = {keys.get(k, k): v for k, v in raw.items() if k not in ("id", "name", "type")}
    members = props.get("policyDefinitions")
    if isinstance(members, list):
        props["policyDefinitions"] = [
            {
                "policyDefinitionId": m.get("policy_definition_id") or m.get("policyDefinitionId"),
                "policyDefinitionReferenceId": m.get("policy_definition_reference_id")
                or m.get("policyDefinitionReferenceId"),
                "parameters": m.get("parameters") or {},
            }
            for m in members
        ]
    return {"id": raw.get("id"), "name": raw.get("name"), "type": raw.get("type"), "properties": props}


def read_safeguards(
    container_service_client: Any, cluster: ClusterSnapshot, *, api_version: str = SAFEGUARDS_API_VERSION
) -> Safeguards | None:
    """The cluster's Deployment Safeguards, or ``None`` when it has none (404) or the add-on is off.

    :param container_service_client: an ``azure.mgmt.containerservice.ContainerServiceClient`` (its pipeline
        carries the credential, retries and the test ``base_url``).
    :raises remediator.adapters.arm.ArmError: any other failure (mapped from azure-core).
    """
    if not cluster.azure_policy_enabled:
        return None
    return read_safeguards_at(container_service_client, str(cluster.id), api_version=api_version)


def read_safeguards_at(
    container_service_client: Any, cluster_id: str, *, api_version: str = SAFEGUARDS_API_VERSION
) -> Safeguards | None:
    """The Deployment Safeguards of the cluster ``cluster_id`` (one GET), or ``None`` when it has none.

    :raises remediator.adapters.arm.ArmError: any failure but a 404 (mapped from azure-core).
    """
    path = f"{cluster_id}/providers/Microsoft.ContainerService/deploymentSafeguards/default"
    url = f"{path}?api-version={api_version}"
    try:
        response = container_service_client.send_request(HttpRequest("GET", url))
        if response.status_code == 404:
            return None
        response.raise_for_status()
    except HttpResponseError as exc:
        if exc.status_code == 404:
            return None
        raise map_arm_error(exc, operation="DeploymentSafeguards_Get") from exc
    except AzureError as exc:
        raise map_arm_error(exc, operation="DeploymentSafeguards_Get") from exc
    return Safeguards.from_arm(response.json())


PROVIDERS_API_VERSION = "2021-04-01"


def read_providers(
    arm_client: Any,
    subscription_id: str,
    namespaces: Sequence[str],
    *,
    api_version: str = PROVIDERS_API_VERSION,
) -> dict[str, str]:
    """Namespace → ``registrationState`` in one subscription: one GET per namespace, per subscription (not per
    cluster), through any management client's pipeline (``Providers_Get``). A 404 reads as ``NotRegistered``.

    :raises remediator.adapters.arm.ArmError: any other failure (mapped from azure-core).
    """
    states: dict[str, str] = {}
    for namespace in namespaces:
        url = f"/subscriptions/{subscription_id}/providers/{namespace}?api-version={api_version}"
        try:
            response = arm_client.send_request(HttpRequest("GET", url))
            if response.status_code == 404:
                states[namespace] = "NotRegistered"
                continue
            response.raise_for_status()
        except AzureError as exc:
            raise map_arm_error(exc, operation="Providers_Get") from exc
        states[namespace] = str(response.json().get("registrationState") or "NotRegistered")
    return states
