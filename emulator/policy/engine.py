"""Policy compliance for the emulator: assignments of the four Backup built-ins, evaluated over the state.

The product reads compliance (queryResults), reacts to PolicyState events and creates remediation tasks;
all three need compliance that follows the definitions (emulator/policy/rules.py) and changes when the
estate changes. Evaluation runs on estate load (silently), after every write to a managed cluster, an
extension or a backup instance (optionally after a delay, like Azure's evaluation lag), and on
triggerEvaluation. Every change of a record emits PolicyStateCreated / Changed / Deleted through `emit`.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from emulator.model.ids import key_of
from emulator.policy.catalog import PolicySetDefinition, definition_from_json, load_definitions, set_from_json
from emulator.policy.rules import PolicyDefinition, evaluate_condition

logger = logging.getLogger(__name__)

CLUSTER_TYPE = "microsoft.containerservice/managedclusters"
EXTENSIONS_SEGMENT = "/providers/microsoft.kubernetesconfiguration/extensions/"
BACKUP_INSTANCE_TYPE = "microsoft.dataprotection/backupvaults/backupinstances"

Emit = Callable[[str, str, dict[str, Any], str], None]
"""emit(eventType, subject, data, topic)."""

DEFINITION_ALIASES = {
    "extension-audit": "fda9cd0b-094c-4cd5-ac2a-5e06e5277c45",
    "backup-audit": "0b0434ec-2bad-4229-965f-bb7ae5a71257",
    "tag-include": "bdff5235-9f40-4a32-893f-38a03d5d607c",
    "tag-exclude": "9a021087-bba6-42fd-b535-bba75297566b",
}
"""Short names the estate may use instead of the definition GUIDs."""

MG_PREFIX = "/providers/microsoft.management/managementgroups/"
COMPLIANCE_RELATED_TYPES = (
    "microsoft.kubernetesconfiguration/extensions",
    "microsoft.dataprotection/backupinstances",
)
"""Definitions whose compliance the engine models (the four Backup built-ins); others (Kubernetes, Deny) are
assignable and enforced at admission/request time but produce no policy-state records."""

AnyDefinition = PolicyDefinition | PolicySetDefinition


def iso(ts: float) -> str:
    return dt.datetime.fromtimestamp(ts, tz=dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%f0Z")


def cluster_key_of(resource_id: str) -> str | None:
    """``key_of`` the managed cluster a resource belongs to (the cluster itself, or its extension)."""
    key = key_of(resource_id)
    marker = "/providers/microsoft.containerservice/managedclusters/"
    idx = key.find(marker)
    if idx < 0:
        return None
    rest = key[idx + len(marker) :]
    name = rest.split("/", 1)[0]
    return key[: idx + len(marker)] + name


@dataclass
class Assignment:
    """A policy assignment declared by the estate."""

    id: str
    name: str
    scope: str
    definition: AnyDefinition
    parameters: dict[str, Any]
    raw_parameters: dict[str, Any]
    not_scopes: tuple[str, ...] = ()
    enforcement_mode: str = "Default"
    display_name: str = ""

    @property
    def key(self) -> str:
        return key_of(self.id)

    @property
    def effect(self) -> str:
        return self.definition.effect(self.parameters)

    @property
    def enforced(self) -> bool:
        return self.enforcement_mode.lower() != "donotenforce"

    def covers(self, resource_id: str, groups_of: Callable[[str], Iterable[str]] | None = None) -> bool:
        """The scope contains ``resource_id`` (a management-group scope through ``groups_of(subscription)``)
        and no notScope does."""
        return _under(self.scope, resource_id, groups_of) and not any(
            _under(n, resource_id, groups_of) for n in self.not_scopes
        )

    def to_json(self) -> dict[str, Any]:
        props: dict[str, Any] = {
            "scope": self.scope,
            "notScopes": list(self.not_scopes),
            "policyDefinitionId": self.definition.id,
            "parameters": {k: {"value": v} for k, v in self.raw_parameters_plain().items()},
            "enforcementMode": self.enforcement_mode,
        }
        if self.display_name:
            props["displayName"] = self.display_name
        return {
            "id": self.id,
            "name": self.name,
            "type": "Microsoft.Authorization/policyAssignments",
            "properties": props,
        }

    def raw_parameters_plain(self) -> dict[str, Any]:
        """The parameters the assignment was given (ARM returns those, not the definition defaults) —
        for the Backup built-ins the resolved values, as before."""
        if isinstance(self.definition, PolicyDefinition) and _models_compliance(self.definition):
            return dict(self.parameters)
        return {
            k: (v["value"] if isinstance(v, Mapping) and "value" in v else v)
            for k, v in self.raw_parameters.items()
        }


def _under(scope: str, resource_id: str, groups_of: Callable[[str], Iterable[str]] | None) -> bool:
    scope_key = key_of(scope.rstrip("/"))
    rid = key_of(resource_id.rstrip("/"))
    if scope_key.startswith(MG_PREFIX):
        if groups_of is None:
            return False
        parts = rid.split("/")
        sub = parts[2] if len(parts) > 2 and parts[1] == "subscriptions" else ""
        return bool(sub) and scope_key[len(MG_PREFIX) :] in {g.lower() for g in groups_of(sub)}
    return rid == scope_key or rid.startswith(scope_key + "/")


def _policy_row(rid: str, name: str, kind: str, properties: Mapping[str, Any]) -> dict[str, Any]:
    parts = rid.split("/")
    sub = parts[2] if len(parts) > 2 and parts[1].lower() == "subscriptions" else ""
    rg = parts[4] if len(parts) > 4 and parts[3].lower() == "resourcegroups" else ""
    return {
        "id": rid,
        "name": name,
        "type": kind,
        "tenantId": "",
        "kind": "",
        "location": "",
        "resourceGroup": rg.lower(),
        "subscriptionId": sub,
        "managedBy": "",
        "sku": None,
        "plan": None,
        "properties": dict(properties),
        "tags": {},
        "identity": None,
        "zones": None,
        "extendedLocation": None,
    }


def _models_compliance(definition: AnyDefinition) -> bool:
    if not isinstance(definition, PolicyDefinition):
        return False
    return str(definition.details.get("type", "")).lower() in COMPLIANCE_RELATED_TYPES


def parse_assignments(
    entries: Iterable[Mapping[str, Any]], lookup: Callable[[str], AnyDefinition | None]
) -> dict[str, Assignment]:
    """Estate `policyAssignments` → assignments. Each entry: {name, scope, definition, parameters} and
    optionally notScopes, enforcementMode, displayName. ``definition``: an alias, a GUID, or a full
    (set) definition id — built-in or custom."""
    out: dict[str, Assignment] = {}
    for i, entry in enumerate(entries):
        where = f"policyAssignments[{i}]"
        try:
            name = str(entry["name"])
            scope = str(entry["scope"]).rstrip("/")
            definition_ref = str(entry["definition"])
        except KeyError as exc:
            raise ValueError(f"{where}: missing field {exc.args[0]!r}") from exc
        definition = lookup(definition_ref)
        if definition is None:
            raise ValueError(
                f"{where}.definition: {entry['definition']!r} is not a known policy definition "
                f"({', '.join(sorted(DEFINITION_ALIASES))}, a vendored built-in's GUID or id, or a custom "
                "definition's id)"
            )
        raw_params = dict(entry.get("parameters") or {})
        try:
            params = definition.resolve_parameters(raw_params)
        except ValueError as exc:
            raise ValueError(f"{where}.parameters: {exc}") from exc
        mode = str(entry.get("enforcementMode") or "Default")
        if mode.lower() not in ("default", "donotenforce"):
            raise ValueError(f"{where}.enforcementMode: {mode!r} is not Default or DoNotEnforce")
        not_scopes = entry.get("notScopes") or []
        if not isinstance(not_scopes, list) or not all(isinstance(n, str) for n in not_scopes):
            raise ValueError(f"{where}.notScopes: expected a list of scope ids")
        assignment_id = f"{scope}/providers/Microsoft.Authorization/policyAssignments/{name}"
        out[key_of(assignment_id)] = Assignment(
            assignment_id,
            name,
            scope,
            definition,
            params,
            raw_params,
            not_scopes=tuple(n.rstrip("/") for n in not_scopes),
            enforcement_mode="DoNotEnforce" if mode.lower() == "donotenforce" else "Default",
            display_name=str(entry.get("displayName") or ""),
        )
    return out


class PolicyEngine:
    """Assignments, compliance records and their events, over an `EmulatorState`."""

    def __init__(self, state: Any, *, emit: Emit | None = None) -> None:
        self.state = state
        self.emit = emit
        self.lock = threading.RLock()
        self.definitions, self.set_definitions = load_definitions()
        self.custom_definitions: dict[str, AnyDefinition] = {}
        """Custom definitions and initiatives PUT at a subscription or management group, by lower-cased id."""
        self.groups_of: Callable[[str], Iterable[str]] = lambda _sub: ()
        """Subscription → management groups above it (set by the plug-in from the estate's tree)."""
        self.assignments: dict[str, Assignment] = {}
        self.safeguards: dict[str, dict[str, Any]] = {}
        """Cluster key → its ``deploymentSafeguards/default`` body (emulator/policy/safeguards.py)."""
        self.records: dict[tuple[str, str], dict[str, Any]] = {}
        """(assignment key, cluster key) → policy state record (the queryResults row)."""
        self.backup_instances: dict[str, set[str]] = {}
        """cluster key → ids of backup instances protecting it (estate `backupInstances` or admin API)."""
        self.evaluation_delay_s = 0.0

    # ---- estate ---------------------------------------------------------------------------------
    def lookup(self, ref: str) -> AnyDefinition | None:
        """A definition or initiative by alias, GUID, built-in id or custom id."""
        key = key_of(ref.rstrip("/"))
        key = DEFINITION_ALIASES.get(key, key)
        if key in self.custom_definitions:
            return self.custom_definitions[key]
        name = key.rsplit("/", 1)[-1]
        if "/policysetdefinitions/" in key:
            return self.set_definitions.get(name) if key.startswith("/providers/") else None
        if "/" in key and not key.startswith("/providers/"):
            return None
        return self.definitions.get(name) or (self.set_definitions.get(name) if "/" not in key else None)

    def put_custom_definition(self, definition_id: str, body: Mapping[str, Any]) -> AnyDefinition:
        name = definition_id.rstrip("/").rsplit("/", 1)[-1]
        raw = {
            "id": definition_id,
            "name": name,
            "type": "",
            "properties": dict(body.get("properties") or {}),
        }
        raw["properties"].setdefault("policyType", "Custom")
        parsed: AnyDefinition
        if "/policysetdefinitions/" in definition_id.lower():
            raw["type"] = "Microsoft.Authorization/policySetDefinitions"
            parsed = set_from_json(raw)
        else:
            raw["type"] = "Microsoft.Authorization/policyDefinitions"
            if "policyRule" not in raw["properties"]:
                raise ValueError("properties.policyRule is required")
            parsed = definition_from_json(raw)
        with self.lock:
            self.custom_definitions[key_of(definition_id.rstrip("/"))] = parsed
        return parsed

    def load(self, estate: Mapping[str, Any]) -> None:
        with self.lock:
            self.custom_definitions.clear()
            for i, item in enumerate(estate.get("policyDefinitions") or []):
                try:
                    self.put_custom_definition(str(item["id"]), item)
                except (KeyError, ValueError) as exc:
                    raise ValueError(f"policyDefinitions[{i}]: {exc}") from exc
            self.assignments = parse_assignments(estate.get("policyAssignments") or [], self.lookup)
            self.records.clear()
            self.backup_instances.clear()
            for item in estate.get("backupInstances") or []:
                cluster_id = item if isinstance(item, str) else item["clusterId"]
                bi_id = item.get("id") if isinstance(item, Mapping) else None
                self.add_backup_instance(cluster_id, bi_id, evaluate=False)
            self.evaluate_all(emit=False)

    def add_assignment(self, entry: Mapping[str, Any]) -> Assignment:
        with self.lock:
            parsed = parse_assignments([entry], self.lookup)
            self.assignments.update(parsed)
            assignment = next(iter(parsed.values()))
            self.evaluate_all(emit=True, assignments=[assignment])
            return assignment

    def add_backup_instance(self, cluster_id: str, bi_id: str | None = None, *, evaluate: bool = True) -> str:
        key = key_of(cluster_id)
        bi_id = bi_id or f"{cluster_id}/providers/Microsoft.DataProtection/backupInstances/emulated"
        with self.lock:
            self.backup_instances.setdefault(key, set()).add(bi_id)
        if evaluate:
            self.evaluate_cluster(cluster_id)
        return bi_id

    def remove_backup_instances(self, cluster_id: str) -> None:
        with self.lock:
            self.backup_instances.pop(key_of(cluster_id), None)
        self.evaluate_cluster(cluster_id)

    # ---- evaluation -----------------------------------------------------------------------------
    def _extensions_by_cluster(self) -> dict[str, list[dict[str, Any]]]:
        index: dict[str, list[dict[str, Any]]] = {}
        with self.state.lock:
            items = list(self.state.extensions.items())
        for key, body in items:
            idx = key.find(EXTENSIONS_SEGMENT)
            if idx > 0:
                index.setdefault(key[:idx], []).append(body)
        return index

    def _backup_index(self) -> dict[str, int]:
        counts = {k: len(v) for k, v in self.backup_instances.items() if v}
        with self.state.lock:
            others = list(self.state.resources.values())
        for body in others:
            if str(body.get("type", "")).lower() != BACKUP_INSTANCE_TYPE:
                continue
            props = body.get("properties") or {}
            info = props.get("dataSourceInfo") or {}
            target = key_of(str(info.get("resourceID") or info.get("resourceUri") or ""))
            if target:
                counts[target] = counts.get(target, 0) + 1
        return counts

    def _compliance(
        self,
        assignment: Assignment,
        cluster: Mapping[str, Any],
        extensions: list[dict[str, Any]],
        backups: int,
    ) -> str | None:
        """'Compliant' / 'NonCompliant', or None when the assignment does not apply to the cluster."""
        if not _models_compliance(assignment.definition):
            return None
        if assignment.effect.lower() == "disabled":
            return None
        assert isinstance(assignment.definition, PolicyDefinition)
        rule = assignment.definition.rule
        if not evaluate_condition(rule["if"], cluster, assignment.parameters):
            return None
        details = assignment.definition.details
        related_type = str(details.get("type", "")).lower()
        if related_type == "microsoft.kubernetesconfiguration/extensions":
            related = extensions
        elif related_type == "microsoft.dataprotection/backupinstances":
            return "Compliant" if backups > 0 else "NonCompliant"
        else:
            raise ValueError(f"related resource type {details.get('type')!r} is not modelled")
        condition = details.get("existenceCondition")
        for resource in related:
            if condition is None or evaluate_condition(condition, resource, assignment.parameters):
                return "Compliant"
        return "NonCompliant"

    def _record(self, assignment: Assignment, cluster: Mapping[str, Any], compliance: str) -> dict[str, Any]:
        cluster_id = str(cluster["id"])
        parts = cluster_id.split("/")
        definition = assignment.definition
        return {
            "@odata.id": None,
            "timestamp": iso(self.state.now()),
            "resourceId": cluster_id,
            "policyAssignmentId": assignment.id,
            "policyDefinitionId": definition.id,
            "effectiveParameters": "",
            "isCompliant": compliance == "Compliant",
            "subscriptionId": parts[2] if len(parts) > 2 else "",
            "resourceType": "Microsoft.ContainerService/managedClusters",
            "resourceLocation": cluster.get("location", ""),
            "resourceGroup": parts[4] if len(parts) > 4 else "",
            "resourceTags": json.dumps(cluster.get("tags") or {}),
            "policyAssignmentName": assignment.name,
            "policyAssignmentOwner": "tbd",
            "policyAssignmentParameters": json.dumps(
                {k: {"value": v} for k, v in assignment.parameters.items()}
            ),
            "policyAssignmentScope": assignment.scope,
            "policyDefinitionName": definition.name,
            "policyDefinitionAction": assignment.effect.lower(),
            "policyDefinitionCategory": definition.category,
            "policySetDefinitionId": "",
            "policySetDefinitionName": "",
            "policySetDefinitionOwner": "",
            "policySetDefinitionCategory": "",
            "policySetDefinitionParameters": "",
            "managementGroupIds": "",
            "policyDefinitionReferenceId": "",
            "complianceState": compliance,
            "policyDefinitionGroupNames": [],
            "policyDefinitionVersion": definition.version,
            "policySetDefinitionVersion": "",
            "policyAssignmentVersion": "",
        }

    def _apply(self, key: tuple[str, str], new: dict[str, Any] | None, *, emit: bool) -> None:
        old = self.records.get(key)
        if new is None:
            if old is not None:
                del self.records[key]
                if emit:
                    self._emit("Microsoft.PolicyInsights.PolicyStateDeleted", old)
            return
        if old is not None and old["complianceState"] == new["complianceState"]:
            return  # unchanged: keep the older record (and its timestamp); no event
        self.records[key] = new
        if emit:
            kind = "Created" if old is None else "Changed"
            self._emit(f"Microsoft.PolicyInsights.PolicyState{kind}", new)

    def _emit(self, event_type: str, record: Mapping[str, Any]) -> None:
        if self.emit is None:
            return
        data = {
            "timestamp": record["timestamp"],
            "policyAssignmentId": record["policyAssignmentId"],
            "policyDefinitionId": record["policyDefinitionId"],
            "policyDefinitionReferenceId": "",
            "complianceState": record["complianceState"],
            "subscriptionId": record["subscriptionId"],
            "complianceReasonCode": "",
        }
        topic = f"/subscriptions/{record['subscriptionId']}"
        try:
            self.emit(event_type, record["resourceId"], data, topic)
        except Exception:
            logger.exception("emitting %s failed", event_type)

    def evaluate_all(
        self,
        *,
        emit: bool = True,
        scope: str | None = None,
        assignments: Iterable[Assignment] | None = None,
    ) -> int:
        """Evaluate every cluster (in `scope`) against every (given) assignment; returns records touched."""
        ext_index = self._extensions_by_cluster()
        with self.lock:
            backups = self._backup_index()
            chosen = list(assignments) if assignments is not None else list(self.assignments.values())
            scope_key = key_of(scope) + "/" if scope else None
            with self.state.lock:
                clusters = list(self.state.clusters.items())
            seen: set[tuple[str, str]] = set()
            for ckey, cluster in clusters:
                if scope_key and not ckey.startswith(scope_key):
                    continue
                exts = ext_index.get(ckey, [])
                for assignment in chosen:
                    if not assignment.covers(ckey, self.groups_of):
                        continue
                    key = (assignment.key, ckey)
                    seen.add(key)
                    state = self._compliance(assignment, cluster, exts, backups.get(ckey, 0))
                    self._apply(key, self._record(assignment, cluster, state) if state else None, emit=emit)
            chosen_keys = {a.key for a in chosen}
            for key in [k for k in self.records if k[0] in chosen_keys and k not in seen]:
                if scope_key and not key[1].startswith(scope_key):
                    continue
                self._apply(key, None, emit=emit)
            return len(seen)

    def evaluate_cluster(self, cluster_id: str, *, emit: bool = True) -> None:
        """Re-evaluate one cluster against every assignment (the cluster may have been deleted)."""
        ckey = cluster_key_of(cluster_id) or key_of(cluster_id)
        cluster = self.state.get("clusters", ckey)
        exts = list(self.state.children("extensions", ckey)) if cluster is not None else []
        with self.lock:
            backups = self._backup_index().get(ckey, 0)
            for assignment in self.assignments.values():
                key = (assignment.key, ckey)
                if cluster is None or not assignment.covers(ckey, self.groups_of):
                    self._apply(key, None, emit=emit)
                    continue
                state = self._compliance(assignment, cluster, exts, backups)
                self._apply(key, self._record(assignment, cluster, state) if state else None, emit=emit)

    # ---- Resource Graph rows ----------------------------------------------------------------------
    def policy_rows(self) -> list[dict[str, Any]]:
        """``policyresources`` rows for assignments and custom (set) definitions, ARG-shaped: ``type``
        lower-cased, ``subscriptionId``/``resourceGroup`` from the id (empty at management-group scope).
        Built-in definitions have no rows (A: whether Resource Graph returns built-ins to a
        subscription-scoped
        query is not documented; the product reads them by GET then)."""
        rows: list[dict[str, Any]] = []
        for assignment in sorted(list(self.assignments.values()), key=lambda a: a.key):
            body = assignment.to_json()
            rows.append(
                _policy_row(
                    assignment.id,
                    assignment.name,
                    "microsoft.authorization/policyassignments",
                    body["properties"],
                )
            )
        for _did, definition in sorted(list(self.custom_definitions.items())):
            kind = (
                "microsoft.authorization/policysetdefinitions"
                if isinstance(definition, PolicySetDefinition)
                else "microsoft.authorization/policydefinitions"
            )
            rows.append(
                _policy_row(
                    definition.id, definition.name, kind, dict(definition.raw.get("properties") or {})
                )
            )
        return rows

    # ---- queries --------------------------------------------------------------------------------
    def query(self, scope: str, predicate: Callable[[Mapping[str, Any]], bool]) -> list[dict[str, Any]]:
        """Latest records for resources under `scope` (a subscription, resource group or resource id)."""
        scope_key = key_of(scope)
        with self.lock:
            rows = [
                r
                for (akey, ckey), r in self.records.items()
                if (ckey == scope_key or ckey.startswith(scope_key + "/")) and predicate(r)
            ]
        rows.sort(key=lambda r: (key_of(r["resourceId"]), key_of(r["policyAssignmentId"])))
        return rows

    def non_compliant(self, assignment: Assignment, scope: str) -> list[str]:
        scope_key = key_of(scope)
        with self.lock:
            return sorted(
                r["resourceId"]
                for (akey, ckey), r in self.records.items()
                if akey == assignment.key
                and (ckey == scope_key or ckey.startswith(scope_key + "/"))
                and r["complianceState"] == "NonCompliant"
            )
