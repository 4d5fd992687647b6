"""The Resource Graph (KQL) queries behind the sweep, built from the config without ever splicing raw input.

A sweep over thousands of clusters must not cost one ARM call per cluster. Resource Graph answers "which
managed clusters in scope lack a Succeeded backup extension" in one paged query per batch of subscriptions
(``shared/reference/platform_facts.md`` §3.2). This module writes that query.

Config values that reach the KQL text (resource-group names, subscription ids, regions, include tag names,
policy definition names) are first checked against the character set their kind allows, then quoted with
:func:`kql_string`. A value that could change the query's meaning (a quote, a backslash, a control character,
or anything outside its kind's character set) raises :class:`UserInputError` naming the config field, so an
injection attempt is refused instead of being "escaped and hoped for". Subscriptions and management groups go
in the request body, never in the text.

The query stays inside the KQL subset both Resource Graph and the local emulator accept (``emulator/kql``):
one cross-table ``leftouter`` join, ``parse``, ``where``, ``extend``, ``project``. Resource Graph allows at
most one cross-table join per query (``shared/reference/platform_facts.md`` §3.2, from Microsoft's
query-language.md: "at most 3 join, 1 cross-table unless Resources<->ResourceContainers"), and the chain needs
three (the extension in ``kubernetesconfigurationresources``, the storage grant in ``authorizationresources``,
the backup instance in ``recoveryservicesresources``). So the clusters come from one query that joins their
backup extension (the only link every mode has), and the other links come from small side queries
(:func:`plan_fleet_inventory`), each read once per sweep and joined to the cluster rows in memory by the
inventory adapter: a left join on the cluster id (backup instances) or on the extension's principal (grants),
never a call per cluster.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Literal

from remediator.core.catalog import (
    CONTRIBUTOR,
    DATA_OPERATOR_FOR_MANAGED_DISKS,
    DISK_SNAPSHOT_CONTRIBUTOR,
    EXTENSION_TYPE,
    POLICY_1_DEFINITION,
    POLICY_2_DEFINITION,
    READER,
    STORAGE_BLOB_DATA_CONTRIBUTOR,
    STORAGE_BLOB_DATA_READER,
)
from remediator.core.config import RemediatorConfig
from remediator.core.errors import UserInputError
from remediator.core.plan.links import (
    CLUSTER_CONTRIBUTOR_ON_SNAPSHOT_GROUP,
    STORAGE_ACCESS_GRANTED,
    VAULT_BLOB_READER,
    VAULT_DATA_OPERATOR,
    VAULT_READER_ON_CLUSTER,
    VAULT_READER_ON_SNAPSHOT_GROUP,
    VAULT_SNAPSHOT_CONTRIBUTOR,
)
from remediator.core.protection import BACKUP_TAG, ProtectionOptions
from remediator.core.text import ignore_case_key

logger = logging.getLogger(__name__)

MAX_SUBSCRIPTIONS_PER_QUERY = 299
"""Resource Graph guidance: group subscriptions, fewer than 300 per query."""

DEFAULT_SUBSCRIPTIONS_PER_QUERY = 250

MAX_PAGE_ROWS = 1000
"""``$top`` ceiling of Resource Graph."""

INVENTORY_COLUMNS: tuple[str, ...] = (
    "id",
    "name",
    "resourceGroup",
    "subscriptionId",
    "location",
    "tags",
    "identity",
    "provisioningState",
    "powerState",
    "storageProfile",
    "agentPoolProfiles",
    "extensionName",
    "extensionState",
    "extensionPrincipalId",
)
"""Columns of every inventory row; ``id`` is projected so ``$skipToken`` paging works. Of the cluster's
``properties`` only what ``ClusterSnapshot`` reads is fetched (a real managedCluster's properties run to
kilobytes)."""

_GUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
_RESOURCE_GROUP = re.compile(r"^[-\w.()]{1,90}$")
_REGION = re.compile(r"^[a-z0-9]{1,64}$")
_POLICY_DEFINITION = re.compile(r"^[-\w.]{1,128}$")
# Tag names that appear unchanged inside Resource Graph's JSON rendering of ``tags`` (no quote, backslash or
# control character, ASCII only), so a substring test on ``tostring(tags)`` cannot miss them.
_PLAIN_TAG_NAME = re.compile(r"^[ -!#-&(-\[\]-~]{1,512}$")
_PLAIN_TAG_VALUE = re.compile(r"^[A-Za-z0-9 _.:@+=-]{1,256}$")
_DANGEROUS = re.compile(r"['\"\\`\x00-\x1f\x7f]")


def _refuse(value: str, *, kind: str, field: str) -> UserInputError:
    shown = value if len(value) <= 120 else value[:120] + "..."
    bad = _DANGEROUS.search(value)
    if bad is not None:
        why = (
            f"contains {bad.group()!r}, which could change the Resource Graph query (KQL injection);"
            f" quotes, backslashes and control characters are not allowed in a {kind}"
        )
    else:
        why = f"is not a valid {kind} (refused rather than placed in a Resource Graph query)"
    return UserInputError(f"{shown!r} {why}", field=field)


def checked(value: str, *, kind: str, pattern: re.Pattern[str], field: str) -> str:
    """``value`` if it matches its kind's character set, else a :class:`UserInputError` naming ``field``."""
    if not isinstance(value, str) or _DANGEROUS.search(value) or not pattern.match(value):
        raise _refuse(str(value), kind=kind, field=field)
    return value


def kql_string(value: str) -> str:
    """A KQL single-quoted string literal whose content is exactly ``value``.

    Backslash and quote are escaped; control characters cannot be represented and are refused (callers check
    values before quoting them, so this is the second line of defence).
    """
    if re.search(r"[\x00-\x1f\x7f]", value):
        raise ValueError("control characters cannot appear in a KQL string literal")
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _in_list(values: Iterable[str]) -> str:
    return "(" + ", ".join(kql_string(v) for v in values) + ")"


@dataclass(frozen=True)
class ResourceGroupRef:
    """A resource group in scope, by subscription GUID and name (both checked)."""

    subscription_id: str
    name: str


@dataclass(frozen=True)
class InventoryRequest:
    """One Resource Graph query to run, paged, with its scope in the request body.

    Exactly one of ``subscriptions`` and ``management_groups`` is non-empty, as the API requires.
    """

    query: str
    subscriptions: tuple[str, ...] = ()
    management_groups: tuple[str, ...] = ()


@dataclass(frozen=True)
class InventoryPlan:
    """Everything the inventory adapter runs for one sweep."""

    requests: tuple[InventoryRequest, ...]
    management_groups: tuple[str, ...] = field(default=())
    """Configured management-group names (lower-cased): rows from a management-group request are in scope
    through one of these."""
    grants: tuple[InventoryRequest, ...] = ()
    """Side queries (``authorizationresources``): every assignment of the chain's roles at the chain's scopes
    (:func:`build_role_assignment_query`), joined to the rows by principal in memory."""
    backup_instances: tuple[InventoryRequest, ...] = ()
    """Side queries (``recoveryservicesresources``): every AKS backup instance in the scopes
    (:func:`build_backup_instance_query`), joined to the rows by cluster id in memory."""
    containers: tuple[InventoryRequest, ...] = ()
    """Side queries (``resourcecontainers``): subscription display names and management-group ancestry
    (:func:`build_subscription_query`)."""
    vaults: tuple[InventoryRequest, ...] = ()
    """Side queries (``resources``, protect mode): the region targets' backup vaults
    (:func:`build_vault_query`): their identities' principals, and whether they are ready."""
    vault_grants: VaultGrantPlan | None = None
    """Protect mode: the vault identities' assignments, planned once the vault query named their
    principals."""

    @property
    def side_requests(self) -> tuple[InventoryRequest, ...]:
        """Every side query known before any runs, in the order the adapter runs them (the vault grants
        follow the vaults)."""
        return (*self.vaults, *self.grants, *self.backup_instances, *self.containers)


def subscription_batches(subscriptions: Sequence[str], *, size: int) -> Iterator[tuple[str, ...]]:
    """Split subscriptions into batches of at most ``size`` (< 300, Resource Graph's guidance)."""
    if not 1 <= size <= MAX_SUBSCRIPTIONS_PER_QUERY:
        raise ValueError(f"batch size must be 1..{MAX_SUBSCRIPTIONS_PER_QUERY}, got {size}")
    for start in range(0, len(subscriptions), size):
        yield tuple(subscriptions[start : start + size])


@dataclass(frozen=True)
class IncludeTag:
    """One include rule as the prefilter sees it: the tag name and, optionally, its values."""

    name: str
    field: str
    """Config field of the name (``selection.include[0].tag``), for the error message."""
    values: tuple[str, ...] | None = None


def _value_chunk(value: str) -> str | None:
    """The longest literal run of a ``*`` pattern, if it is plain enough to find verbatim in rendered JSON."""
    chunk = max(value.split("*"), key=len)
    return chunk if chunk and _PLAIN_TAG_VALUE.match(chunk) else None


def _tag_prefilter(include_tags: Sequence[IncludeTag]) -> str | None:
    """A case-insensitive substring test on the rendered tags that every included cluster passes.

    Per include rule: the tag name occurs, and (when the rule lists values) one of its values' literal parts
    occurs. It only narrows the rows fetched; the core's rules decide. A rule whose name is not plain makes
    the whole prefilter ``None`` (its JSON rendering could differ and the test could miss a cluster); a rule
    with a value that is not plain keeps only its name test. Tag names are spliced, so a name that could
    alter the query is refused; values that are not plain are simply not used.
    """
    if not include_tags:
        return None
    for tag in include_tags:
        if _DANGEROUS.search(tag.name):
            raise _refuse(tag.name, kind="tag name", field=tag.field)
    if not all(_PLAIN_TAG_NAME.match(tag.name) for tag in include_tags):
        logger.debug("an include tag name is not plain ASCII; no Resource Graph tag prefilter")
        return None
    alternatives: list[str] = []
    for tag in include_tags:
        clause = f"tostring(tags) contains {kql_string(tag.name)}"
        chunks = [_value_chunk(v) for v in tag.values or ()]
        if tag.values is not None and all(chunks):
            unique = sorted({str(c).lower() for c in chunks})
            values = " or ".join(f"tostring(tags) contains {kql_string(c)}" for c in unique)
            clause = f"({clause} and ({values}))"
        if clause not in alternatives:
            alternatives.append(clause)
    return " or ".join(alternatives)


def build_inventory_query(
    *,
    regions: Sequence[tuple[str, str]] = (),
    resource_groups: Sequence[tuple[ResourceGroupRef, str]] = (),
    whole_subscriptions: Sequence[tuple[str, str]] = (),
    exclude_subscriptions: Sequence[tuple[str, str]] = (),
    exclude_resource_groups: Sequence[tuple[ResourceGroupRef, str]] = (),
    include_tags: Sequence[IncludeTag] = (),
    needs_work_only: bool = True,
) -> str:
    """KQL: managed clusters in scope whose backup extension is missing or not Succeeded (every in-scope
    cluster with ``needs_work_only=False``, for the report).

    Every value comes paired with the config field it came from, for the error message.

    :keyword regions: allowed regions (normalised names); empty = every region.
    :keyword resource_groups: resource groups in scope. With ``whole_subscriptions`` they form an OR: a
        cluster passes if its subscription is whole or its resource group is listed. Both empty = no such
        filter (the request body's scope decides).
    :keyword whole_subscriptions: subscriptions fully in scope (only needed alongside ``resource_groups``).
    :keyword exclude_subscriptions: subscriptions never in scope.
    :keyword exclude_resource_groups: resource groups already covered by another request (no duplicate rows).
    :keyword include_tags: include rules; narrow rows to clusters that may match one.
    :keyword needs_work_only: keep only clusters whose extension is missing or not Succeeded (the sweep).
    :raises UserInputError: a value could alter the query; ``field`` names it.
    """
    clauses: list[str] = []
    subs = [
        checked(s, kind="subscription id", pattern=_GUID, field=f).lower() for s, f in whole_subscriptions
    ]
    groups = [_checked_group(g, f) for g, f in resource_groups]
    if groups:
        alternatives = [f"subscriptionId in~ {_in_list(subs)}"] if subs else []
        alternatives += [
            f"(subscriptionId =~ {kql_string(g.subscription_id)} and resourceGroup =~ {kql_string(g.name)})"
            for g in groups
        ]
        clauses.append(" or ".join(alternatives))
    excluded = [
        checked(s, kind="subscription id", pattern=_GUID, field=f).lower() for s, f in exclude_subscriptions
    ]
    if excluded:
        clauses.append(f"subscriptionId !in~ {_in_list(excluded)}")
    for group, where in exclude_resource_groups:
        g = _checked_group(group, where)
        same_group = (
            f"subscriptionId =~ {kql_string(g.subscription_id)} and resourceGroup =~ {kql_string(g.name)}"
        )
        clauses.append(f"not({same_group})")
    allowed = [checked(r, kind="region", pattern=_REGION, field=f) for r, f in regions]
    if allowed:
        clauses.append(f"location in~ {_in_list(allowed)}")
    tag_filter = _tag_prefilter(include_tags)
    if tag_filter:
        clauses.append(tag_filter)

    lines = ["resources", "| where type =~ 'microsoft.containerservice/managedclusters'"]
    lines += [f"| where {clause}" for clause in clauses]
    lines += [
        "| extend clusterId = tolower(id)",
        "| project id, clusterId, name, resourceGroup, subscriptionId, location, tags, identity,",
        "    provisioningState = tostring(properties.provisioningState), powerState = properties.powerState,",
        "    storageProfile = properties.storageProfile, agentPoolProfiles = properties.agentPoolProfiles",
        "| join kind=leftouter (",
        "    kubernetesconfigurationresources",
        "    | where type =~ 'microsoft.kubernetesconfiguration/extensions'",
        f"    | extend extensionType = {_either_casing('ExtensionType')}",
        f"    | where extensionType =~ {kql_string(EXTENSION_TYPE)}",
        "    | parse tolower(id) with clusterId '/providers/microsoft.kubernetesconfiguration/extensions/' *",
        "    | project clusterId, extensionName = name,",
        f"        extensionState = {_either_casing('ProvisioningState')},",
        f"        extensionPrincipalId = {_extension_principal()}",
        "  ) on clusterId",
        *(["| where extensionState !~ 'Succeeded'"] if needs_work_only else []),
        "| project " + ", ".join(INVENTORY_COLUMNS),
    ]
    return "\n".join(lines)


def _either_casing(pascal: str) -> str:
    """``properties.<Name>`` whichever casing the row uses.

    Microsoft's own Resource Graph samples read extension properties PascalCase (``properties.ExtensionType``)
    while the ARM body is camelCase; dynamic member access is case-sensitive, so take whichever is present.
    """
    camel = pascal[0].lower() + pascal[1:]
    return (
        f"iff(isnotempty(tostring(properties.{pascal})), tostring(properties.{pascal}),"
        f" tostring(properties.{camel}))"
    )


def _extension_principal() -> str:
    """The extension identity's principal id (``properties.aksAssignedIdentity.principalId``) in whichever of
    the casings a row may use (the emulator and Microsoft's samples PascalCase the top-level property keys;
    nested keys are left as the ARM body writes them)."""
    paths = [
        "properties.AksAssignedIdentity.principalId",
        "properties.aksAssignedIdentity.principalId",
        "properties.AksAssignedIdentity.PrincipalId",
    ]
    expression = "tostring(properties.aksAssignedIdentity.PrincipalId)"
    for path in reversed(paths):
        expression = f"iff(isnotempty(tostring({path})), tostring({path}), {expression})"
    return expression


def _checked_group(group: ResourceGroupRef, where: str) -> ResourceGroupRef:
    return ResourceGroupRef(
        subscription_id=checked(
            group.subscription_id, kind="subscription id", pattern=_GUID, field=where
        ).lower(),
        name=checked(group.name, kind="resource group name", pattern=_RESOURCE_GROUP, field=where),
    )


def build_policy_summary_query(
    *, definitions: Sequence[str] = (POLICY_1_DEFINITION, POLICY_2_DEFINITION)
) -> str:
    """KQL: counts of managed-cluster policy states per definition and compliance state (one small page).

    A separate query rather than a second join: Resource Graph allows one cross-table join per query.
    """
    names = [
        checked(d, kind="policy definition name", pattern=_POLICY_DEFINITION, field="definitions")
        for d in definitions
    ]
    return "\n".join(
        [
            "policyresources",
            "| where type =~ 'microsoft.policyinsights/policystates'",
            "| where tostring(properties.resourceType) =~ 'microsoft.containerservice/managedclusters'",
            f"| where tostring(properties.policyDefinitionName) in~ {_in_list(names)}",
            "| extend definition = tolower(tostring(properties.policyDefinitionName)),"
            " complianceState = tostring(properties.complianceState)",
            "| summarize clusters = count() by definition, complianceState",
        ]
    )


def plan_inventory(
    config: RemediatorConfig,
    *,
    batch_size: int = DEFAULT_SUBSCRIPTIONS_PER_QUERY,
    prefilter_tags: bool = True,
    needs_work_only: bool = True,
) -> InventoryPlan:
    """The Resource Graph requests that together return every in-scope cluster needing work, once.

    * Listed subscriptions and the subscriptions of listed resource groups are queried in batches of
      ``batch_size`` subscriptions; where only some resource groups of a subscription are listed, the query
      keeps just those.
    * Listed management groups are queried in one management-group request that leaves out excluded
      subscriptions and everything the subscription requests already return.

    :keyword needs_work_only: ``False`` returns every in-scope cluster (the report), not only those that
        need work.
    :raises UserInputError: a config value could alter the query; ``field`` names it.
    """
    scope = config.scope
    excluded = {str(s.subscription_id) for s in scope.exclude_subscriptions}
    exclude_pairs = [
        (str(s.subscription_id), f"scope.excludeSubscriptions[{i}]")
        for i, s in enumerate(scope.exclude_subscriptions)
    ]
    whole: dict[str, str] = {}
    for i, sub in enumerate(scope.subscriptions):
        key = str(sub.subscription_id)
        if key not in excluded:
            whole.setdefault(key, f"scope.subscriptions[{i}]")
    partial: dict[str, list[tuple[ResourceGroupRef, str]]] = {}
    for i, group in enumerate(scope.resource_groups):
        key = str(group.subscription_id)
        if key in excluded or key in whole:
            continue
        ref = ResourceGroupRef(subscription_id=key, name=str(group.resource_group))
        partial.setdefault(key, []).append((ref, f"scope.resourceGroups[{i}]"))

    regions = [(r, f"scope.regions[{i}]") for i, r in enumerate(scope.regions or ())]
    include_tags: list[IncludeTag] = []
    if prefilter_tags and config.selection.include is not None:
        include_tags = [
            IncludeTag(name=rule.tag, field=f"selection.include[{i}].tag", values=rule.values)
            for i, rule in enumerate(config.selection.include)
        ]

    requests: list[InventoryRequest] = []
    ordered = list(whole) + [s for s in partial if s not in whole]
    for batch in subscription_batches(ordered, size=batch_size):
        batch_whole = [(s, whole[s]) for s in batch if s in whole]
        batch_groups = [pair for s in batch if s in partial for pair in partial[s]]
        query = build_inventory_query(
            regions=regions,
            resource_groups=batch_groups,
            whole_subscriptions=batch_whole if batch_groups else (),
            include_tags=include_tags,
            needs_work_only=needs_work_only,
        )
        requests.append(InventoryRequest(query=query, subscriptions=tuple(batch)))

    # Azure's case rule, not lower(): lower() would turn a KELVIN SIGN into 'k' and name another group
    management_groups = tuple(ignore_case_key(str(g.name)) for g in scope.management_groups)
    if management_groups:
        for i, name in enumerate(management_groups):
            checked(
                name,
                kind="management group name",
                pattern=_RESOURCE_GROUP,
                field=f"scope.managementGroups[{i}]",
            )
        already = [(s, f) for s, f in whole.items()]
        query = build_inventory_query(
            regions=regions,
            exclude_subscriptions=exclude_pairs + already,
            exclude_resource_groups=[pair for pairs in partial.values() for pair in pairs],
            include_tags=include_tags,
            needs_work_only=needs_work_only,
        )
        requests.append(InventoryRequest(query=query, management_groups=management_groups))
    else:
        # Still validate exclusions so a bad value is reported even when it is not spliced.
        for value, where in exclude_pairs:
            checked(value, kind="subscription id", pattern=_GUID, field=where)
    logger.debug("inventory plan: %d request(s)", len(requests))
    return InventoryPlan(requests=tuple(requests), management_groups=management_groups)


# --- side queries: the links of the chain the cluster query cannot join ------------------------------------

ROLE_ASSIGNMENT_TYPE = "microsoft.authorization/roleassignments"
"""Type of a role assignment row in ``authorizationresources`` (Microsoft's sample "Get role assignments with
key properties" reads ``properties.roleDefinitionId``, ``.principalType``, ``.principalId`` and ``.scope``:
MicrosoftDocs/azure-docs@articles/governance/includes/resource-graph/query/
authorization-resources-role-assignments-key-properties.md)."""
BACKUP_INSTANCE_TYPE = "microsoft.dataprotection/backupvaults/backupinstances"
"""Type of a backup instance row in ``recoveryservicesresources`` (Microsoft's CLI queries it and reads
``properties.currentProtectionState`` and ``properties.dataSourceInfo.resourceID``:
Azure/azure-cli-extensions@src/dataprotection/azext_dataprotection/manual/backupcenter_helper.py)."""
SUBSCRIPTION_TYPE = "microsoft.resources/subscriptions"
"""Type of a subscription row in ``resourcecontainers`` (``name`` is its display name,
``properties.managementGroupAncestorsChain`` its management groups, immediate parent first)."""

_SCOPE_ID = re.compile(r"^/[-\w.()/]{1,1024}$")


BACKUP_VAULT_TYPE = "microsoft.dataprotection/backupvaults"
"""Type of a backup vault row in ``resources``: a tracked resource, so its row carries the ARM body's
``identity`` (the system-assigned principal the vault's roles are granted to) and
``properties.provisioningState``."""

_SCOPE_ID = re.compile(r"^/[-\w.()/]{1,1024}$")


@dataclass(frozen=True)
class GrantFilter:
    """One clause of a role-assignment side query: assignments of ``roles`` that are

    - at one of ``scopes`` (exact ids, each paired with its config field; pass ancestors explicitly), or
    - at a resource group named one of ``group_names`` in any subscription, or at a subscription (the
      snapshot resource group named per cluster subscription, and the scope above it), or
    - held by one of ``principals`` (any scope: the backup vaults' identities).
    """

    roles: tuple[str, ...]
    scopes: tuple[tuple[str, str], ...] = ()
    group_names: tuple[tuple[str, str], ...] = ()
    principals: tuple[str, ...] = ()


def _grant_clause(grant: GrantFilter) -> str | None:
    guids = sorted(
        {checked(g, kind="role definition GUID", pattern=_GUID, field="roles").lower() for g in grant.roles}
    )
    if not guids:
        raise ValueError("at least one role is needed")
    unique: dict[str, str] = {}
    for scope, where in grant.scopes:
        value = checked(scope, kind="scope id", pattern=_SCOPE_ID, field=where)
        unique.setdefault(ignore_case_key(value), value)  # Azure's case rule, not lower() (see core/text)
    where_clauses = []
    if unique:
        where_clauses.append(f"scope in~ {_in_list(unique[key] for key in sorted(unique))}")
    names = sorted(
        {
            checked(n, kind="resource group name", pattern=_RESOURCE_GROUP, field=f)
            for n, f in grant.group_names
        }
    )
    if names:
        where_clauses += [f"scope endswith {kql_string('/resourceGroups/' + name)}" for name in names]
        # the subscription above each of them (management-group scopes are no subscription's rows)
        where_clauses.append("(scope !contains '/resourceGroups/' and scope !contains '/providers/')")
    principals = sorted(
        {checked(p, kind="principal id", pattern=_GUID, field="principals").lower() for p in grant.principals}
    )
    if principals:
        where_clauses.append(f"principalId in~ {_in_list(principals)}")
    if not where_clauses:
        return None
    role_test = " or ".join(f"roleDefinitionId endswith {kql_string('/' + g)}" for g in guids)
    return f"(({role_test}) and ({' or '.join(where_clauses)}))"


def build_grant_query(filters: Sequence[GrantFilter]) -> str:
    """KQL: every role assignment that one of ``filters`` keeps (see :class:`GrantFilter`), as rows ``id,
    principalId, roleDefinitionId`` (both lower-cased: GUIDs) and ``scope`` (as Azure stores it; compare it
    by :func:`remediator.core.text.ignore_case_key`).

    The chain's role links are satisfied by an assignment at the scope or above it (``core/plan/roles.py``),
    so callers pass each target and its ancestors (resource group, subscription). An assignment made at a
    management group is not a row of a subscription-scoped query; a cluster that relies on one looks
    ungranted here and is re-checked by a reconcile, which lists assignments with ``principalId eq``
    (above-scope ones included) and finds it.
    """
    clauses = [c for c in (_grant_clause(f) for f in filters) if c is not None]
    if not clauses:
        raise ValueError("at least one scope, resource group name or principal is needed")
    return "\n".join(
        [
            "authorizationresources",
            f"| where type =~ {kql_string(ROLE_ASSIGNMENT_TYPE)}",
            "| extend roleDefinitionId = tolower(tostring(properties.roleDefinitionId)),",
            "    principalId = tolower(tostring(properties.principalId)),",
            "    scope = tostring(properties.scope)",
            f"| where {' or '.join(clauses)}",
            "| project id, principalId, roleDefinitionId, scope",
        ]
    )


def build_role_assignment_query(*, role_guids: Sequence[str], scopes: Sequence[tuple[str, str]]) -> str:
    """KQL: every assignment of one of ``role_guids`` whose scope is one of ``scopes`` (each paired with the
    config field it came from): :func:`build_grant_query` with one exact-scope filter."""
    if not scopes:
        raise ValueError("at least one scope is needed")
    return build_grant_query([GrantFilter(roles=tuple(role_guids), scopes=tuple(scopes))])


def build_backup_instance_query() -> str:
    """KQL: every backup instance protecting a managed cluster, as rows ``id, clusterId`` (lower-cased),
    ``protectionState`` and ``errorCode``."""
    return "\n".join(
        [
            "recoveryservicesresources",
            f"| where type =~ {kql_string(BACKUP_INSTANCE_TYPE)}",
            "| extend clusterId = tolower(tostring(properties.dataSourceInfo.resourceID))",
            "| where clusterId contains '/providers/microsoft.containerservice/managedclusters/'",
            "| project id, clusterId, protectionState = tostring(properties.currentProtectionState),",
            "    errorCode = tostring(properties.protectionErrorDetails.code)",
        ]
    )


def build_vault_query(vaults: Sequence[tuple[str, str]]) -> str:
    """KQL: the given backup vaults (``(id, config field)`` pairs) as rows ``id``, ``location``,
    ``principalId`` (the system-assigned identity's, lower-cased) and ``provisioningState``."""
    unique: dict[str, str] = {}
    for vault, where in vaults:
        value = checked(vault, kind="backup vault id", pattern=_SCOPE_ID, field=where)
        unique.setdefault(ignore_case_key(value), value)
    if not unique:
        raise ValueError("at least one vault is needed")
    return "\n".join(
        [
            "resources",
            f"| where type =~ {kql_string(BACKUP_VAULT_TYPE)}",
            f"| where id in~ {_in_list(unique[key] for key in sorted(unique))}",
            "| project id, location, principalId = tolower(tostring(identity.principalId)),",
            "    provisioningState = tostring(properties.provisioningState)",
        ]
    )


def build_subscription_query() -> str:
    """KQL: each subscription's display name and management-group ancestry (``resourcecontainers``)."""
    return "\n".join(
        [
            "resourcecontainers",
            f"| where type =~ {kql_string(SUBSCRIPTION_TYPE)}",
            "| project id, subscriptionId, name, managementGroups = properties.managementGroupAncestorsChain",
        ]
    )


def build_role_count_query() -> str:
    """KQL: how many role assignments each subscription holds (the per-subscription limit counts
    subscription, resource-group and resource scopes; a subscription-scoped query returns exactly those)."""
    return "\n".join(
        [
            "authorizationresources",
            f"| where type =~ {kql_string(ROLE_ASSIGNMENT_TYPE)}",
            "| summarize assignments = count() by subscriptionId",
        ]
    )


Principal = Literal["extension", "vault", "cluster"]


@dataclass(frozen=True)
class RoleLink:
    """A role the chain assigns: its link, role, whose identity holds it, and where.

    ``targets`` are the fixed scopes (``(scope id, config field)``: storage accounts, given snapshot
    resource groups); ``group_names`` the snapshot resource groups named in each cluster's subscription;
    ``per_cluster`` says the scope follows each cluster (the vault's Reader: the cluster, its resource group
    or its subscription, ``remediation.roleAssignmentScope``).
    """

    link: str
    role_guid: str
    principal: Principal
    targets: tuple[tuple[str, str], ...] = ()
    group_names: tuple[tuple[str, str], ...] = ()
    per_cluster: bool = False


def _planned_chain(config: RemediatorConfig) -> str:
    mode = str(config.remediation.mode)
    return str(config.remediation.audit_plans) if mode == "audit" else mode


def chain_role_links(config: RemediatorConfig) -> tuple[RoleLink, ...]:
    """The role links of the config's chain that Resource Graph can check (under the chain's link names,
    ``core/plan/links.py``):

    - install and audit mode (with ``remediation.grantStorageAccess``): the extension identity's Storage Blob
      Data Contributor on every region's storage account;
    - protect mode (and audit mode planning it), also: the vault identity's Reader on each cluster (per
      cluster), Reader and Disk Snapshot Contributor (and Data Operator for Managed Disks where a region's
      vault tier needs it) on the snapshot resource groups, Storage Blob Data Reader on the storage accounts;
      the cluster identity's Contributor on the snapshot resource groups.
    """
    planned = _planned_chain(config)
    links: list[RoleLink] = []
    field_of = "regionTargets" if config.region_targets is not None else "storage"
    storage = tuple(
        (str(target.storage_account), f"{field_of}.{region}")
        for region, target in sorted(config.targets.items())
    )
    if planned in ("install", "protect") and config.remediation.grant_storage_access:
        links.append(RoleLink(STORAGE_ACCESS_GRANTED, STORAGE_BLOB_DATA_CONTRIBUTOR, "extension", storage))
    if planned != "protect":
        return tuple(links)
    options = ProtectionOptions.from_config(config)
    groups: list[tuple[str, str]] = []
    names: list[tuple[str, str]] = []
    vault_tier = False
    for region, target in sorted(options.regions.items()):
        where = f"regionTargets.{region}.snapshotResourceGroup"
        if target.snapshot_group is not None:
            groups.append((target.snapshot_group.canonical, where))
        else:
            names.append((target.snapshot_group_name or f"{BACKUP_TAG}_{region}", where))
        vault_tier = (
            vault_tier
            or options.data_operator == "always"
            or (options.data_operator == "auto" and target.policy_strategy == "DisasterRecovery")
        )
    group_roles = [
        (VAULT_READER_ON_SNAPSHOT_GROUP, READER),
        (VAULT_SNAPSHOT_CONTRIBUTOR, DISK_SNAPSHOT_CONTRIBUTOR),
    ]
    if vault_tier:
        group_roles.append((VAULT_DATA_OPERATOR, DATA_OPERATOR_FOR_MANAGED_DISKS))
    links.append(RoleLink(VAULT_READER_ON_CLUSTER, READER, "vault", per_cluster=True))
    links += [RoleLink(link, role, "vault", tuple(groups), tuple(names)) for link, role in group_roles]
    links.append(RoleLink(VAULT_BLOB_READER, STORAGE_BLOB_DATA_READER, "vault", storage))
    links.append(
        RoleLink(CLUSTER_CONTRIBUTOR_ON_SNAPSHOT_GROUP, CONTRIBUTOR, "cluster", tuple(groups), tuple(names))
    )
    return tuple(links)


def _with_ancestors(scope_id: str) -> list[str]:
    """The scope and every scope above it up to its subscription (resource group, subscription)."""
    parts = scope_id.rstrip("/").split("/")
    out = [scope_id]
    if len(parts) > 5 and parts[3].lower() == "resourcegroups":
        out.append("/".join(parts[:5]))
    if len(parts) > 3 and parts[1].lower() == "subscriptions":
        out.append("/".join(parts[:3]))
    return out


def _mirror(requests: Sequence[InventoryRequest], query: str) -> tuple[InventoryRequest, ...]:
    return tuple(
        InventoryRequest(query=query, subscriptions=r.subscriptions, management_groups=r.management_groups)
        for r in requests
    )


def _subscriptions_of(scope_ids: Iterable[str]) -> list[str]:
    subs = set()
    for scope in scope_ids:
        parts = scope.split("/")
        if len(parts) > 2 and parts[1].lower() == "subscriptions":
            subs.add(parts[2].lower())
    return sorted(subs)


def _beyond(requests: Sequence[InventoryRequest], subscriptions: Iterable[str]) -> list[str]:
    """``subscriptions`` that no subscription-scoped request of ``requests`` already covers (a request by
    management group may cover them too, but which it covers is not known here: they are kept)."""
    covered = {s.lower() for r in requests for s in r.subscriptions}
    return sorted({s.lower() for s in subscriptions} - covered)


def _batched(query: str, subscriptions: Sequence[str], *, size: int) -> tuple[InventoryRequest, ...]:
    return tuple(
        InventoryRequest(query=query, subscriptions=batch)
        for batch in subscription_batches(subscriptions, size=size)
    )


@dataclass(frozen=True)
class VaultGrantPlan:
    """The vault identities' role assignments: a side query that needs the vaults' principals, which the
    vault query (``InventoryPlan.vaults``) returns; :meth:`requests` builds it once they are known (principal
    ids are checked as GUIDs before they reach the query text)."""

    roles: tuple[str, ...]
    base: tuple[InventoryRequest, ...]
    """The cluster scopes (the vault's Reader on each cluster, snapshot groups named per subscription)."""
    subscriptions: tuple[str, ...]
    """The fixed scopes' subscriptions (storage accounts, given snapshot groups)."""
    batch_size: int = DEFAULT_SUBSCRIPTIONS_PER_QUERY

    def requests(self, principals: Iterable[str]) -> tuple[InventoryRequest, ...]:
        found = sorted({p.lower() for p in principals if p and _GUID.match(p)})
        if not found:
            return ()
        query = build_grant_query([GrantFilter(roles=self.roles, principals=tuple(found))])
        extra = _beyond(self.base, self.subscriptions)
        return _mirror(self.base, query) + _batched(query, extra, size=self.batch_size)


def plan_role_counts(
    subscriptions: Iterable[str], *, batch_size: int = DEFAULT_SUBSCRIPTIONS_PER_QUERY
) -> tuple[InventoryRequest, ...]:
    """Requests counting role assignments per subscription, in batches of < 300 subscriptions."""
    subs = sorted(
        {
            checked(s, kind="subscription id", pattern=_GUID, field="subscriptions").lower()
            for s in subscriptions
        }
    )
    query = build_role_count_query()
    return tuple(
        InventoryRequest(query=query, subscriptions=batch)
        for batch in subscription_batches(subs, size=batch_size)
    )


def plan_fleet_inventory(
    config: RemediatorConfig,
    *,
    prefilter_tags: bool = True,
    backup_instances: bool | None = None,
    containers: bool = False,
    batch_size: int = DEFAULT_SUBSCRIPTIONS_PER_QUERY,
) -> InventoryPlan:
    """Every in-scope cluster with its backup extension (whatever its state), plus the side queries for the
    rest of the chain:

    - the grants of the chain's roles held by the extension's and the clusters' identities
      (:func:`chain_role_links`: at the fixed targets and their ancestors; at the snapshot resource groups
      named per subscription);
    - in protect mode, the region targets' backup vaults (``resources``) and, once their principals are
      known, every assignment of the chain's roles held by a vault identity (:class:`VaultGrantPlan`);
    - the backup instances (default: in protect mode), in the clusters' scopes and in the vaults'
      subscriptions (an instance lives in its vault's subscription, not the cluster's);
    - with ``containers``, subscription names and management groups (of the clusters' subscriptions and of
      those the grants live in).

    The sweep and the report use this; the rows are not narrowed to clusters needing work, because a cluster
    whose extension is Succeeded may still lack a role or its backup instance (issue 17 F3).

    :raises UserInputError: a config value could alter a query; ``field`` names it.
    """
    base = plan_inventory(config, batch_size=batch_size, prefilter_tags=prefilter_tags, needs_work_only=False)
    links = chain_role_links(config)
    filters: list[GrantFilter] = []
    fixed: dict[str, tuple[str, str]] = {}
    per_subscription = False
    for link in links:
        if link.principal == "vault":
            continue
        scopes: dict[str, tuple[str, str]] = {}
        for target, where in link.targets:
            for scope in _with_ancestors(target):
                scopes.setdefault(ignore_case_key(scope), (scope, where))
        fixed.update(scopes)
        per_subscription = per_subscription or bool(link.group_names)
        filters.append(
            GrantFilter(roles=(link.role_guid,), scopes=tuple(scopes.values()), group_names=link.group_names)
        )
    fixed_subscriptions = _subscriptions_of(fixed)
    grants: tuple[InventoryRequest, ...] = ()
    if filters:
        query = build_grant_query(filters)
        if per_subscription:
            extra = _beyond(base.requests, fixed_subscriptions)
            grants = _mirror(base.requests, query) + _batched(query, extra, size=batch_size)
        else:
            grants = _batched(query, fixed_subscriptions, size=batch_size)
    protect = _planned_chain(config) == "protect"
    vaults: tuple[InventoryRequest, ...] = ()
    vault_grants: VaultGrantPlan | None = None
    vault_subscriptions: list[str] = []
    if protect and config.targets:
        options = ProtectionOptions.from_config(config)
        vault_ids = [
            (target.vault.canonical, f"regionTargets.{region}.backupVault")
            for region, target in sorted(options.regions.items())
        ]
        vault_subscriptions = _subscriptions_of(v for v, _ in vault_ids)
        vaults = _batched(build_vault_query(vault_ids), vault_subscriptions, size=batch_size)
        vault_links = [link for link in links if link.principal == "vault"]
        vault_fixed = {
            ignore_case_key(s): s for link in vault_links for t, _ in link.targets for s in _with_ancestors(t)
        }
        vault_grants = VaultGrantPlan(
            roles=tuple(sorted({link.role_guid for link in vault_links})),
            base=base.requests,
            subscriptions=tuple(_subscriptions_of(vault_fixed.values())),
            batch_size=batch_size,
        )
    if backup_instances is None:
        backup_instances = protect
    instance_query = build_backup_instance_query()
    instances = (
        _mirror(base.requests, instance_query)
        + _batched(instance_query, _beyond(base.requests, vault_subscriptions), size=batch_size)
        if backup_instances
        else ()
    )
    names = build_subscription_query()
    role_subscriptions = sorted(
        set(fixed_subscriptions) | set(vault_grants.subscriptions if vault_grants is not None else ())
    )
    return InventoryPlan(
        requests=base.requests,
        management_groups=base.management_groups,
        grants=grants,
        backup_instances=instances,
        containers=_mirror(base.requests, names)
        + _batched(names, _beyond(base.requests, role_subscriptions), size=batch_size)
        if containers
        else (),
        vaults=vaults,
        vault_grants=vault_grants,
    )
