"""Resource Graph tables built from the emulator state.

Resource Graph is the product's inventory; its rows must look like ARG's: `type` lower-cased, `id` in ARM
casing, `resourceGroup` / `subscriptionId` / `tenantId` columns, dynamic `properties` and `tags`.
`resourcecontainers` has one row per subscription (type `microsoft.resources/subscriptions`, with
`properties.managementGroupAncestorsChain`) and per resource group. `kubernetesconfigurationresources`
carries the extensions of managed clusters with PascalCase top-level property keys
(`properties.ExtensionType`, `properties.ProvisioningState`), as Microsoft's own Resource Graph samples query
them; `extension_casing` switches to the ARM body's camelCase or exposes both (README.md).
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

from emulator.model.hierarchy import ManagementGroupTree
from emulator.model.ids import fold

logger = logging.getLogger(__name__)

Row = dict[str, Any]
EXTENSION_CASINGS = ("pascal", "camel", "both")
RECOVERY_SERVICES_TYPES = frozenset({"microsoft.dataprotection/backupvaults/backupinstances"})
"""Types Resource Graph serves from ``recoveryservicesresources`` (Microsoft's CLI queries
``RecoveryServicesResources | where type =~ 'microsoft.dataprotection/backupvaults/backupinstances'``
and reads
``properties.currentProtectionState`` / ``properties.dataSourceInfo.resourceID``:
Azure/azure-cli-extensions@src/dataprotection/azext_dataprotection/manual/backupcenter_helper.py)."""
NOT_IN_RESOURCES = RECOVERY_SERVICES_TYPES | frozenset(
    {
        # proxy/child resources ARG does not list in `resources` (assumption, emulator/README.md Part 3)
        "microsoft.dataprotection/backupvaults/backuppolicies",
        "microsoft.containerservice/managedclusters/trustedaccessrolebindings",
        "microsoft.authorization/locks",
        # Event Grid event subscriptions are proxy resources: the Resource Graph type list names
        # microsoft.eventgrid/systemtopics in `resources`, not their event subscriptions
        # (MicrosoftDocs/azure-docs: governance/resource-graph/reference/supported-tables-resources.md)
        "microsoft.eventgrid/systemtopics/eventsubscriptions",
    }
)


def _split_id(resource_id: str) -> tuple[str, str]:
    parts = resource_id.split("/")
    sub = parts[2] if len(parts) > 2 and fold(parts[1]) == "subscriptions" else ""
    rg = parts[4] if len(parts) > 4 and fold(parts[3]) == "resourcegroups" else ""
    return sub, rg


def arm_row(body: Mapping[str, Any], tenants: Mapping[str, str]) -> Row:
    """One `resources`-style row from an ARM resource body."""
    rid = str(body.get("id", ""))
    sub, rg = _split_id(rid)
    return {
        "id": rid,
        "name": body.get("name") or "",
        "type": str(body.get("type", "")).lower(),
        "tenantId": tenants.get(fold(sub), ""),
        "kind": body.get("kind", "") or "",
        "location": str(body.get("location", "") or "").lower().replace(" ", ""),
        "resourceGroup": rg.lower(),
        "subscriptionId": sub,
        "managedBy": body.get("managedBy", "") or "",
        "sku": body.get("sku"),
        "plan": body.get("plan"),
        "properties": body.get("properties"),
        "tags": body.get("tags") or {},
        "identity": body.get("identity"),
        "zones": body.get("zones"),
        "extendedLocation": body.get("extendedLocation"),
    }


def _pascal(props: Mapping[str, Any] | None, casing: str) -> Any:
    if not isinstance(props, Mapping) or casing == "camel":
        return props
    pascal = {(k[:1].upper() + k[1:]): v for k, v in props.items()}
    scope = pascal.get("Scope")
    if isinstance(scope, Mapping):
        # Microsoft's own Arc data services CLI queries `properties.Scope.cluster.ReleaseNamespace`: the scope
        # kind keeps its case, the setting inside is PascalCase. Configuration settings keys are user data.
        pascal["Scope"] = {
            kind: {(k[:1].upper() + k[1:]): v for k, v in inner.items()}
            if isinstance(inner, Mapping)
            else inner
            for kind, inner in scope.items()
        }
    if casing == "pascal":
        return pascal
    merged = dict(props)
    merged.update(pascal)
    return merged


class GraphTables:
    """Callable table source for emulator.kql: `tables(name)` yields rows limited to the subscriptions."""

    normalized_rows = True
    """Rows carry exactly the schema's columns and no null strings (the compiler skips re-normalizing)."""

    def __init__(
        self,
        state: Any,
        *,
        subscriptions: set[str] | None,
        extension_casing: str = "pascal",
        policy_records: Callable[[], Iterable[Mapping[str, Any]]] | None = None,
        row_cache: dict[str, tuple[Any, Row]] | None = None,
        group_tree: Callable[[], ManagementGroupTree] | None = None,
        policy_objects: Callable[[], Iterable[Mapping[str, Any]]] | None = None,
        management_groups: set[str] | None = None,
    ) -> None:
        self.state = state
        self.subscriptions = {fold(s) for s in subscriptions} if subscriptions is not None else None
        self.extension_casing = extension_casing
        self.policy_records = policy_records
        self.group_tree = group_tree
        self.policy_objects = policy_objects
        self.management_groups = {g.lower() for g in management_groups} if management_groups else None
        """The request's managementGroups: rows that live at a management group (policy assignments made
        there) are returned only to a query scoped by that group or one above it, or to a tenant query."""
        self.row_cache = row_cache if row_cache is not None else {}
        """key → (body object, row): bodies are replaced on write (copy-on-write), so identity means fresh."""
        with state.lock:
            self.tenants = {k: v.get("tenantId", "") for k, v in state.subscriptions.items()}

    def _in_scope(self, key: str) -> bool:
        if self.subscriptions is None:
            return True
        parts = key.split("/", 3)
        return len(parts) > 2 and parts[2] in self.subscriptions

    def _bodies(self, *collections: str) -> list[tuple[str, Mapping[str, Any]]]:
        with self.state.lock:
            return [
                (key, body)
                for name in collections
                for key, body in self.state.collection(name).items()
                if self._in_scope(key)
            ]

    def _row(self, key: str, body: Mapping[str, Any], *, extension: bool) -> Row:
        cached = self.row_cache.get(key)
        if cached is not None and cached[0] is body:
            return cached[1]
        row = arm_row(body, self.tenants)
        if extension:
            row["properties"] = _pascal(body.get("properties"), self.extension_casing)
        self.row_cache[key] = (body, row)
        return row

    def __call__(self, table: str) -> Iterator[Row]:
        if table == "resources":
            for key, body in self._bodies("clusters", "storage_accounts"):
                yield self._row(key, body, extension=False)
            for key, body in self._bodies("resources"):
                if str(body.get("type", "")).lower() not in NOT_IN_RESOURCES:
                    yield self._row(key, body, extension=False)
        elif table == "recoveryservicesresources":
            for key, body in self._bodies("resources"):
                if str(body.get("type", "")).lower() in RECOVERY_SERVICES_TYPES:
                    yield self._row(key, body, extension=False)
        elif table == "kubernetesconfigurationresources":
            for key, body in self._bodies("extensions"):
                yield self._row(key, body, extension=True)
        elif table == "resourcecontainers":
            yield from self._containers()
        elif table == "policyresources":
            yield from self._policy_objects()
            if self.policy_records is None:
                return
            for record in self.policy_records():
                sub = fold(str(record.get("subscriptionId", "")))
                if self.subscriptions is not None and sub not in self.subscriptions:
                    continue
                digest = hashlib.sha1(
                    (record["resourceId"].lower() + "|" + record["policyAssignmentId"].lower()).encode()
                ).hexdigest()
                rid = f"{record['resourceId']}/providers/Microsoft.PolicyInsights/policyStates/{digest}"
                yield {
                    "id": rid,
                    "name": rid.rsplit("/", 1)[-1],
                    "type": "microsoft.policyinsights/policystates",
                    "tenantId": self.tenants.get(sub, ""),
                    "kind": "",
                    "location": str(record.get("resourceLocation", "")).lower(),
                    "resourceGroup": str(record.get("resourceGroup", "")).lower(),
                    "subscriptionId": record.get("subscriptionId", ""),
                    "managedBy": "",
                    "sku": None,
                    "plan": None,
                    "properties": dict(record),
                    "tags": {},
                    "identity": None,
                    "zones": None,
                    "extendedLocation": None,
                }

    def _policy_objects(self) -> Iterator[Row]:
        """Assignment and custom-definition rows (emulator.policy.engine.PolicyEngine.policy_rows)."""
        if self.policy_objects is None:
            return
        mg_marker = "/providers/microsoft.management/managementgroups/"
        tree = self.group_tree() if self.group_tree is not None and self.management_groups else None
        for row in self.policy_objects():
            rid = str(row.get("id", "")).lower()
            if rid.startswith(mg_marker):
                if self.subscriptions is None:
                    yield dict(row)
                elif tree is not None and self.management_groups is not None:
                    group = rid[len(mg_marker) :].split("/", 1)[0]
                    if tree.group_and_ancestors(group) & self.management_groups:
                        yield dict(row)
                continue
            sub = str(row.get("subscriptionId", "")).lower()
            if self.subscriptions is None or sub in self.subscriptions:
                yield dict(row)

    def _containers(self) -> Iterator[Row]:
        """``resourcecontainers``: subscriptions (with management-group ancestry), then resource groups."""
        tree = self.group_tree() if self.group_tree is not None else ManagementGroupTree.from_estate({})
        with self.state.lock:
            subscriptions = [dict(v) for k, v in self.state.subscriptions.items() if self._sub_in_scope(k)]
            groups = [(key, body) for key, body in self.state.resource_groups.items() if self._in_scope(key)]
        for sub in subscriptions:
            sid = str(sub.get("subscriptionId", ""))
            yield {
                "id": f"/subscriptions/{sid}",
                "name": sub.get("displayName") or sid,
                "type": "microsoft.resources/subscriptions",
                "tenantId": sub.get("tenantId", "") or "",
                "kind": "",
                "location": "",
                "resourceGroup": "",
                "subscriptionId": sid,
                "managedBy": "",
                "sku": None,
                "plan": None,
                "properties": {
                    "state": sub.get("state") or "Enabled",
                    "managementGroupAncestorsChain": tree.ancestors_chain(sid),
                },
                "tags": sub.get("tags") or {},
                "identity": None,
                "zones": None,
                "extendedLocation": None,
            }
        for _key, body in groups:
            row = arm_row(body, self.tenants)
            row["type"] = "microsoft.resources/subscriptions/resourcegroups"
            yield row

    def _sub_in_scope(self, key: str) -> bool:
        return self.subscriptions is None or fold(key) in self.subscriptions
