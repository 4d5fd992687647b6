"""The Resource Graph queries that read policy assignments and the definitions they use, for preflight.

Preflight needs every policy assignment that can cover a cluster and the rules behind them, for thousands of
clusters, without one ARM call per cluster. Resource Graph's ``policyresources`` table holds
``microsoft.authorization/policyassignments``, ``policydefinitions`` and ``policysetdefinitions`` rows with
the ARM ``properties`` (Microsoft's samples join assignments to definitions within the table:
https://learn.microsoft.com/azure/governance/policy/samples/resource-graph-samples), so one paged query per
batch of subscriptions returns the assignments, and one query per chunk of ids returns their definitions.

Scope: assignments at subscription, resource-group or resource scope come back for a ``subscriptions``-scoped
request; assignments made at a management group live outside every subscription and come back only for a
``managementGroups``-scoped request (as role assignments do: microsoft/mcp#3579 — for policy assignments an
INFERENCE), so the adapter runs both. Definition ids that reach a query are checked against the id shapes ARM
uses and quoted (:func:`remediator.core.inventory_query.kql_string`); anything else is refused.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Iterator, Sequence

from remediator.core.errors import UserInputError
from remediator.core.inventory_query import (
    DEFAULT_SUBSCRIPTIONS_PER_QUERY,
    InventoryRequest,
    checked,
    kql_string,
    subscription_batches,
)
from remediator.core.text import ignore_case_key

logger = logging.getLogger(__name__)

ASSIGNMENT_COLUMNS: tuple[str, ...] = (
    "id",
    "name",
    "subscriptionId",
    "scope",
    "policyDefinitionId",
    "enforcementMode",
    "notScopes",
    "parameters",
    "displayName",
)
"""Columns of an assignment row (``id`` projected for ``$skipToken`` paging); the adapter turns a row into a
:class:`remediator.core.preflight.PolicyAssignment` with ``PolicyAssignment.from_arm``."""

DEFINITION_COLUMNS: tuple[str, ...] = ("id", "name", "type", "properties")

DEFINITION_IDS_PER_QUERY = 100
"""Definition ids per ``in~`` list (keeps the query text well under Resource Graph's limits)."""

_GUID = r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
_DEFINITION_ID = re.compile(
    r"^(?:/providers/Microsoft\.Management/managementGroups/[-\w.()]{1,90}|/subscriptions/" + _GUID + r")?"
    r"/providers/Microsoft\.Authorization/policy(?:Set)?Definitions/[-\w.() ]{1,128}$",
    re.IGNORECASE,
)
_MANAGEMENT_GROUP = re.compile(r"^[-\w.()]{1,90}$")


def build_assignments_query() -> str:
    """KQL: every policy assignment visible in the request's scope, with what preflight reads."""
    return "\n".join(
        [
            "policyresources",
            "| where type =~ 'microsoft.authorization/policyassignments'",
            "| project id, name, subscriptionId, scope = tostring(properties.scope),",
            "    policyDefinitionId = tostring(properties.policyDefinitionId),",
            "    enforcementMode = tostring(properties.enforcementMode), notScopes = properties.notScopes,",
            "    parameters = properties.parameters, displayName = tostring(properties.displayName)",
        ]
    )


def build_definitions_query(definition_ids: Sequence[str]) -> str:
    """KQL: the policy definitions and set definitions with these ids (case-insensitive).

    :raises UserInputError: an id does not have a policy (set) definition id's shape.
    """
    if not definition_ids:
        raise ValueError("no definition ids")
    ids = [
        checked(i, kind="policy definition id", pattern=_DEFINITION_ID, field="policyDefinitionId")
        for i in definition_ids
    ]
    return "\n".join(
        [
            "policyresources",
            "| where type in~ ('microsoft.authorization/policydefinitions',"
            " 'microsoft.authorization/policysetdefinitions')",
            "| where id in~ (" + ", ".join(kql_string(i) for i in ids) + ")",
            "| project " + ", ".join(DEFINITION_COLUMNS),
        ]
    )


def assignment_requests(
    subscriptions: Sequence[str],
    management_groups: Sequence[str] = (),
    *,
    batch_size: int = DEFAULT_SUBSCRIPTIONS_PER_QUERY,
) -> tuple[InventoryRequest, ...]:
    """The paged requests that together return every assignment covering clusters in these subscriptions:
    one per batch of subscriptions, plus one scoped by the management groups (above the subscriptions)."""
    query = build_assignments_query()
    subs = sorted({ignore_case_key(s) for s in subscriptions})
    requests = [
        InventoryRequest(query=query, subscriptions=batch)
        for batch in subscription_batches(subs, size=batch_size)
    ]
    groups = sorted({ignore_case_key(_checked_group(g)) for g in management_groups})  # Azure's case rule
    if groups:
        mg_query = query.replace(
            "| project",
            "| where id startswith '/providers/Microsoft.Management/managementGroups/'\n| project",
            1,
        )
        requests.append(InventoryRequest(query=mg_query, management_groups=tuple(groups)))
    return tuple(requests)


def definition_requests(
    definition_ids: Iterable[str], scope: InventoryRequest, *, chunk: int = DEFINITION_IDS_PER_QUERY
) -> Iterator[InventoryRequest]:
    """Requests for these definition ids, in chunks, in ``scope``'s scope (subscriptions or groups)."""
    ids = sorted(set(definition_ids))
    for start in range(0, len(ids), chunk):
        yield InventoryRequest(
            query=build_definitions_query(ids[start : start + chunk]),
            subscriptions=scope.subscriptions,
            management_groups=scope.management_groups,
        )


def _checked_group(name: str) -> str:
    return checked(name, kind="management group name", pattern=_MANAGEMENT_GROUP, field="managementGroups")


def is_definition_id(value: str) -> bool:
    """Does ``value`` have the shape of a policy (set) definition id?"""
    try:
        checked(value, kind="policy definition id", pattern=_DEFINITION_ID, field="policyDefinitionId")
    except UserInputError:
        return False
    return True


def is_builtin(definition_id: str) -> bool:
    """Built-in definitions live at tenant scope: ``/providers/Microsoft.Authorization/...``."""
    return ignore_case_key(definition_id).startswith("/providers/microsoft.authorization/")


def build_addon_query() -> str:
    """KQL: the ids of managed clusters whose Azure Policy add-on (Gatekeeper) is enabled (the sweep's
    inventory does not project ``addonProfiles``; Gatekeeper findings block only where the add-on runs)."""
    return "\n".join(
        [
            "resources",
            "| where type =~ 'microsoft.containerservice/managedclusters'",
            "| where tostring(properties.addonProfiles.azurepolicy.enabled) =~ 'true'"
            " or tostring(properties.addonProfiles.azurePolicy.enabled) =~ 'true'",
            "| project id",
        ]
    )


def addon_requests(
    subscriptions: Sequence[str], *, batch_size: int = DEFAULT_SUBSCRIPTIONS_PER_QUERY
) -> tuple[InventoryRequest, ...]:
    """One add-on request per batch of subscriptions."""
    query = build_addon_query()
    subs = sorted({s.lower() for s in subscriptions})  # subscription GUIDs: ASCII
    return tuple(
        InventoryRequest(query=query, subscriptions=batch)
        for batch in subscription_batches(subs, size=batch_size)
    )
