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
from emulator.policy.rules import (
    PolicyDefinition,
    evaluate_condition,
    load_builtin_definitions,
)

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
    definition: PolicyDefinition
    parameters: dict[str, Any]
    raw_parameters: dict[str, Any]

    @property
    def key(self) -> str:
        return key_of(self.id)

    @property
    def effect(self) -> str:
        return self.definition.effect(self.parameters)

    def covers(self, resource_id: str) -> bool:
        return key_of(resource_id).startswith(key_of(self.scope) + "/")

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "type": "Microsoft.Authorization/policyAssignments",
            "properties": {
                "scope": self.scope,
                "policyDefinitionId": self.definition.id,
                "parameters": {k: {"value": v} for k, v in self.parameters.items()},
                "enforcementMode": "Default",
            },
        }


def parse_assignments(
    entries: Iterable[Mapping[str, Any]], definitions: Mapping[str, PolicyDefinition]
) -> dict[str, Assignment]:
    """Estate `policyAssignments` → assignments. Each entry: {name, scope, definition, parameters}."""
    out: dict[str, Assignment] = {}
    for i, entry in enumerate(entries):
        where = f"policyAssignments[{i}]"
        try:
            name = str(entry["name"])
            scope = str(entry["scope"]).rstrip("/")
            definition_ref = str(entry["definition"]).lower()
        except KeyError as exc:
            raise ValueError(f"{where}: missing field {exc.args[0]!r}") from exc
        definition_ref = DEFINITION_ALIASES.get(definition_ref, definition_ref.rsplit("/", 1)[-1])
        definition = definitions.get(definition_ref)
        if definition is None:
            raise ValueError(
                f"{where}.definition: {entry['definition']!r} is not one of the four Backup built-ins "
                f"({', '.join(sorted(DEFINITION_ALIASES))} or their GUIDs)"
            )
        raw_params = dict(entry.get("parameters") or {})
        try:
            params = definition.resolve_parameters(raw_params)
        except ValueError as exc:
            raise ValueError(f"{where}.parameters: {exc}") from exc
        assignment_id = f"{scope}/providers/Microsoft.Authorization/policyAssignments/{name}"
        out[key_of(assignment_id)] = Assignment(assignment_id, name, scope, definition, params, raw_params)
    return out


class PolicyEngine:
    """Assignments, compliance records and their events, over an `EmulatorState`."""

    def __init__(self, state: Any, *, emit: Emit | None = None) -> None:
        self.state = state
        self.emit = emit
        self.lock = threading.RLock()
        self.definitions = load_builtin_definitions()
        self.assignments: dict[str, Assignment] = {}
        self.records: dict[tuple[str, str], dict[str, Any]] = {}
        """(assignment key, cluster key) → policy state record (the queryResults row)."""
        self.backup_instances: dict[str, set[str]] = {}
        """cluster key → ids of backup instances protecting it (estate `backupInstances` or admin API)."""
        self.evaluation_delay_s = 0.0

    # ---- estate ---------------------------------------------------------------------------------
    def load(self, estate: Mapping[str, Any]) -> None:
        with self.lock:
            self.assignments = parse_assignments(estate.get("policyAssignments") or [], self.definitions)
            self.records.clear()
            self.backup_instances.clear()
            for item in estate.get("backupInstances") or []:
                cluster_id = item if isinstance(item, str) else item["clusterId"]
                bi_id = item.get("id") if isinstance(item, Mapping) else None
                self.add_backup_instance(cluster_id, bi_id, evaluate=False)
            self.evaluate_all(emit=False)

    def add_assignment(self, entry: Mapping[str, Any]) -> Assignment:
        with self.lock:
            parsed = parse_assignments([entry], self.definitions)
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
        if assignment.effect.lower() == "disabled":
            return None
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
                    if not assignment.covers(ckey):
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
                if cluster is None or not assignment.covers(ckey):
                    self._apply(key, None, emit=emit)
                    continue
                state = self._compliance(assignment, cluster, exts, backups)
                self._apply(key, self._record(assignment, cluster, state) if state else None, emit=emit)

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
