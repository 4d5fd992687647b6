"""Remediation tasks: run the DINE deployment of Policy 3/4 on the non-compliant clusters of a scope.

The product creates remediation tasks and reads their progress; the emulator must really deploy what the
built-in DINE template deploys (extension `azure-aks-backup` with the template's configuration settings,
the blob container `take(concat('azure-aks-backup-', clusterName), 63)` and the Storage Blob Data Contributor
role assignment), so the product sees the same resources, the same failures (for example a cluster name that
is not a valid container name fails the nested deployment) and the same compliance flip as in Azure.

Progress is driven by the state clock (`state.schedule`): Accepted → Evaluating (targets chosen, at most
`parallelDeployments` running) → Succeeded / Failed; Cancel → Cancelling → Canceled. Extension PUTs consult
the fault rules for `PUT <extension id>` so injected failures hit remediation deployments like direct calls.
"""

from __future__ import annotations

import logging
import re
import threading
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from emulator.clock import iso
from emulator.model.ids import fold, key_of
from emulator.policy.engine import Assignment, PolicyEngine
from emulator.policy.rules import evaluate_template

logger = logging.getLogger(__name__)

EXTENSION_NAME = "azure-aks-backup"
EXTENSION_TYPE = "microsoft.dataprotection.kubernetes"
STORAGE_BLOB_DATA_CONTRIBUTOR = "ba92f5b4-2d11-453d-a403-e96b0029c9fe"
_CONTAINER_NAME = re.compile(r"^(?=.{3,63}$)[a-z0-9](?:[a-z0-9]|-(?=[a-z0-9]))*$")
TERMINAL = ("Succeeded", "Failed", "Canceled", "Complete")
REMEDIABLE_EFFECTS = frozenset({"deployifnotexists", "modify"})
STATUS_MESSAGE_SINCE = "2024-10-01"
"""Remediation answers carry statusMessage/resourceCount/parallelDeployments/failureThreshold from this
api-version on (Remediations_*.json at 2024-10-01 have them; a recorded 2021-10-01 answer has none)."""


@dataclass
class RemediationSettings:
    accept_s: float = 1.0
    """Accepted → Evaluating."""
    poll_s: float = 0.25
    """How often a running deployment checks its extension."""

    NAMES = {"acceptS": "accept_s", "pollS": "poll_s"}

    def update(self, data: Mapping[str, Any]) -> None:
        for key, value in data.items():
            if key not in self.NAMES or float(value) < 0:
                raise ValueError(f"bad remediation setting {key}={value!r}")
            setattr(self, self.NAMES[key], float(value))

    def to_json(self) -> dict[str, Any]:
        return {k: getattr(self, v) for k, v in self.NAMES.items()}


@dataclass
class Task:
    id: str
    name: str
    scope: str
    assignment: Assignment
    discovery_mode: str
    locations: list[str] | None
    resource_count: int
    parallel: int
    failure_threshold: float
    created: float
    principal: str | None
    correlation_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    state: str = "Accepted"
    updated: float = 0.0
    queue: list[str] = field(default_factory=list)
    deployments: dict[str, dict[str, Any]] = field(default_factory=dict)
    status_message: str = ""
    given: frozenset[str] = frozenset()
    """The optional properties the request set (answers echo them at any api-version)."""

    @property
    def key(self) -> str:
        return key_of(self.id)

    def counts(self) -> dict[str, int]:
        done = [d for d in self.deployments.values()]
        return {
            "totalDeployments": len(self.deployments) + len(self.queue),
            "successfulDeployments": sum(1 for d in done if d["status"] == "Succeeded"),
            "failedDeployments": sum(1 for d in done if d["status"] == "Failed"),
        }

    def to_json(self, api_version: str | None = None) -> dict[str, Any]:
        """The task as Policy Insights answers it at ``api_version`` (default: the newest shape).

        Ids come back lower-cased (recorded 2025 answer). ``statusMessage``, ``resourceCount``,
        ``parallelDeployments`` and ``failureThreshold`` are in the 2024-10-01 answers (official examples) but
        not in a 2021-10-01 answer to a request that did not set them (recorded): before 2024-10-01 they are
        echoed only when the request set them."""
        newest = api_version is None or api_version[:10] >= STATUS_MESSAGE_SINCE
        props: dict[str, Any] = {
            "policyAssignmentId": self.assignment.id.lower(),
            "provisioningState": self.state,
            "createdOn": iso(self.created),
            "lastUpdatedOn": iso(self.updated or self.created),
            "resourceDiscoveryMode": self.discovery_mode,
            "deploymentStatus": self.counts(),
        }
        if newest:
            props["statusMessage"] = self.status_message
        props["correlationId"] = self.correlation_id
        if newest or "resourceCount" in self.given:
            props["resourceCount"] = self.resource_count
        if newest or "parallelDeployments" in self.given:
            props["parallelDeployments"] = self.parallel
        if newest or "failureThreshold" in self.given:
            props["failureThreshold"] = {"percentage": self.failure_threshold}
        if self.locations is not None:
            props["filters"] = {"locations": self.locations}
        who = self.principal or "unknown"
        return {
            "id": self.id.lower(),
            "name": self.name,
            "type": "Microsoft.PolicyInsights/remediations",
            "properties": props,
            "systemData": {
                "createdBy": who,
                "createdByType": "Application",
                "createdAt": iso(self.created),
                "lastModifiedBy": who,
                "lastModifiedByType": "Application",
                "lastModifiedAt": iso(self.updated or self.created),
            },
        }


class RemediationError(ValueError):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


def _norm_location(value: str) -> str:
    return value.replace(" ", "").lower()


class RemediationManager:
    """Tasks by id, their deployments, and the DINE deployer."""

    def __init__(self, state: Any, engine: PolicyEngine, *, runtime: Any = None, config: Any = None) -> None:
        self.state = state
        self.engine = engine
        self.runtime = runtime
        self.config = config
        self.settings = RemediationSettings()
        self.tasks: dict[str, Task] = {}
        self.lock = threading.RLock()

    def reset(self) -> None:
        with self.lock:
            self.tasks.clear()

    # ---- API ------------------------------------------------------------------------------------
    def create(
        self, scope: str, name: str, body: Mapping[str, Any], principal: str | None
    ) -> tuple[Task, bool]:
        props = body.get("properties")
        if not isinstance(props, Mapping):
            raise RemediationError(400, "InvalidRequestContent", "The 'properties' object is required.")
        assignment_id = props.get("policyAssignmentId")
        if not isinstance(assignment_id, str) or not assignment_id:
            raise RemediationError(400, "InvalidRequestContent", "properties.policyAssignmentId is required.")
        assignment = self.engine.assignments.get(key_of(assignment_id))
        if assignment is None:
            raise RemediationError(
                404, "PolicyAssignmentNotFound", f"The policy assignment '{assignment_id}' is not found."
            )
        scope_key = key_of(scope)
        assign_scope = key_of(assignment.scope)
        if not (
            scope_key == assign_scope
            or scope_key.startswith(assign_scope + "/")
            or assign_scope.startswith(scope_key + "/")
        ):
            raise RemediationError(
                400,
                "InvalidRemediationScope",
                f"The remediation scope '{scope}' does not overlap the assignment scope "
                f"'{assignment.scope}'.",
            )
        mode = props.get("resourceDiscoveryMode") or "ExistingNonCompliant"
        if mode not in ("ExistingNonCompliant", "ReEvaluateCompliance"):
            raise RemediationError(
                400, "InvalidRequestContent", f"resourceDiscoveryMode '{mode}' is invalid."
            )
        filters = props.get("filters") or {}
        locations = filters.get("locations")
        if locations is not None and (
            not isinstance(locations, list) or not all(isinstance(x, str) for x in locations)
        ):
            raise RemediationError(
                400, "InvalidRequestContent", "filters.locations must be an array of strings."
            )
        if filters.get("resourceIds") is not None:
            raise RemediationError(
                400,
                "InvalidRequestContent",
                "filters.resourceIds is not supported by the emulator's remediation API "
                "(api-version 2024-10-01 feature not modelled)",
            )
        parallel = int(props.get("parallelDeployments") or 10)
        count = int(props.get("resourceCount") or 500)
        if not 1 <= parallel <= 30:
            raise RemediationError(400, "InvalidRequestContent", "parallelDeployments must be within 1..30.")
        if not 1 <= count <= 50000:
            raise RemediationError(400, "InvalidRequestContent", "resourceCount must be within 1..50000.")
        threshold = float((props.get("failureThreshold") or {}).get("percentage", 1.0))
        task_id = f"{scope.rstrip('/')}/providers/Microsoft.PolicyInsights/remediations/{name}"
        if not task_id.startswith("/"):
            task_id = "/" + task_id
        now = self.state.now()
        task = Task(
            task_id, name, scope, assignment, mode, locations, count, parallel, threshold, now, principal
        )
        optional = ("resourceCount", "parallelDeployments", "failureThreshold")
        task.given = frozenset(k for k in optional if props.get(k) is not None)
        remediable = fold(assignment.effect) in REMEDIABLE_EFFECTS
        if not remediable:
            # Azure accepts a task for an assignment whose effect cannot remediate (Audit, AuditIfNotExists,
            # ...): 201, already Succeeded, zero deployments (recorded: test_policy_insights_remediation).
            task.state = "Succeeded"
            task.updated = now
        with self.lock:
            existed = task.key in self.tasks
            old = self.tasks.get(task.key)
            if old is not None and old.state not in TERMINAL:
                return old, False
            self.tasks[task.key] = task
        if remediable:
            self._schedule(task, now + self.settings.accept_s, self._start)
        return task, not existed

    def get(self, task_id: str) -> Task | None:
        self.state.advance()
        with self.lock:
            return self.tasks.get(key_of(task_id))

    def list(self, scope: str) -> list[Task]:
        self.state.advance()
        prefix = key_of(scope) + "/providers/microsoft.policyinsights/remediations/"
        with self.lock:
            return [t for k, t in self.tasks.items() if k.startswith(prefix)]

    def cancel(self, task_id: str) -> Task | None:
        task = self.get(task_id)
        if task is None:
            return None
        with self.lock:
            if task.state in TERMINAL:
                raise RemediationError(
                    400,
                    "InvalidCancelRequest",
                    f"The remediation is already in a terminal state ({task.state}).",
                )
            task.state = "Cancelling"
            task.queue.clear()
            task.updated = self.state.now()
        self._maybe_finish(task)
        return task

    def delete(self, task_id: str) -> Task | None:
        with self.lock:
            return self.tasks.pop(key_of(task_id), None)

    # ---- progress -------------------------------------------------------------------------------
    def _schedule(self, task: Task, due: float, step: Any, target: str | None = None) -> None:
        token_key = f"remediation:{task.key}:{target or ''}"
        token = self.state.new_lifecycle_token(token_key)

        def transition() -> list[tuple[str, str, Any, Any]]:
            try:
                return step(task, target) or []
            except Exception:
                logger.exception("remediation step failed for %s", task.id)
                return []

        self.state.schedule(due, token_key, token, transition)

    def _start(self, task: Task, _target: str | None) -> list[Any]:
        with self.lock:
            if task.state != "Accepted":
                return []
            assignment = task.assignment
            if task.discovery_mode == "ReEvaluateCompliance":
                self.engine.evaluate_all(emit=True, scope=assignment.scope, assignments=[assignment])
            scope = task.scope if task.scope.startswith("/") else "/" + task.scope
            targets = self.engine.non_compliant(assignment, scope)
            if task.locations is not None:
                wanted = {_norm_location(x) for x in task.locations}
                targets = [t for t in targets if _norm_location(self._location(t)) in wanted]
            task.queue = targets[: task.resource_count]
            task.state = "Evaluating"
            task.updated = self.state.now()
        self._fill(task)
        self._maybe_finish(task)
        return []

    def _location(self, cluster_id: str) -> str:
        body = self.state.get("clusters", cluster_id)
        return str(body.get("location", "")) if body else ""

    def _fill(self, task: Task) -> None:
        while True:
            with self.lock:
                running = sum(1 for d in task.deployments.values() if d["status"] == "Running")
                if task.state != "Evaluating" or running >= task.parallel or not task.queue:
                    return
                target = task.queue.pop(0)
                record = self._new_deployment(task, target)
                task.deployments[key_of(target)] = record
            self._deploy(task, target, record)

    def _new_deployment(self, task: Task, target: str) -> dict[str, Any]:
        parts = target.split("/")
        now = iso(self.state.now())
        return {
            "remediatedResourceId": target,
            "deploymentId": f"/subscriptions/{parts[2]}/resourceGroups/{parts[4]}/providers/"
            f"Microsoft.Resources/deployments/{uuid.uuid4()}",
            "status": "Running",
            "resourceLocation": self._location(target),
            "error": None,
            "createdOn": now,
            "lastUpdatedOn": now,
        }

    def _fail(self, task: Task, record: dict[str, Any], code: str, message: str) -> None:
        with self.lock:
            record["status"] = "Failed"
            record["error"] = {"code": code, "message": message}
            record["lastUpdatedOn"] = iso(self.state.now())
            task.updated = self.state.now()

    def _deploy(self, task: Task, target: str, record: dict[str, Any]) -> None:
        """Resource A of the DINE template: the extension (nested deployment follows when it succeeds)."""
        cluster = self.state.get("clusters", target)
        if cluster is None:
            self._fail(task, record, "ResourceNotFound", f"The managed cluster '{target}' was not found.")
            return self._after(task)
        parts = target.split("/")
        sub = parts[2]
        if self.state.provider_state(sub, "Microsoft.KubernetesConfiguration") != "Registered":
            self._fail(
                task,
                record,
                "MissingSubscriptionRegistration",
                "The subscription is not registered to use namespace 'Microsoft.KubernetesConfiguration'.",
            )
            return self._after(task)
        from emulator.errors import ArmError
        from emulator.resources.extensions import _require_cluster_ready

        try:
            _require_cluster_ready(cluster, str(cluster.get("name", "")))
        except ArmError as exc:  # the same 409 a direct extension PUT gets
            self._fail(task, record, exc.code, exc.message)
            return self._after(task)
        ext_id = f"{cluster['id']}/providers/Microsoft.KubernetesConfiguration/extensions/{EXTENSION_NAME}"
        fault = None
        if self.runtime is not None and getattr(self.runtime, "faults", None) is not None:
            fault = self.runtime.faults.pick("PUT", ext_id, actions=("respond", "drop", "fail-provisioning"))
        existing = self.state.get("extensions", ext_id)
        if existing is not None:
            old_type = str((existing.get("properties") or {}).get("extensionType", ""))
            if old_type.lower() != EXTENSION_TYPE:
                self._fail(
                    task,
                    record,
                    "InvalidParameter",
                    f"properties.extensionType cannot change from '{old_type}' to '{EXTENSION_TYPE}'.",
                )
                return self._after(task)
        if fault is not None and fault.action in ("respond", "drop"):
            self._fail(
                task, record, fault.code if fault.action == "respond" else "ConnectionDropped", fault.message
            )
            return self._after(task)
        params = task.assignment.parameters
        sa_id = str(params["storageAccountId"])
        sa_parts = sa_id.split("/")
        storage = self.state.get("storage_accounts", sa_id)
        if storage is None:
            self._fail(task, record, "ResourceNotFound", f"The storage account '{sa_id}' was not found.")
            return self._after(task)
        cluster_name = str(cluster["name"])
        container = ("azure-aks-backup-" + cluster_name)[:63]
        tenant = (self.state.subscription(sub) or {}).get("tenantId", "")
        blob = ((storage.get("properties") or {}).get("primaryEndpoints") or {}).get("blob", "")
        settings = {
            "configuration.backupStorageLocation.bucket": container,
            "configuration.backupStorageLocation.config.resourceGroup": evaluate_template(
                "[first(skip(split(parameters('storageAccountId'), '/'), 4))]", params, None
            ),
            "configuration.backupStorageLocation.config.subscriptionId": sa_parts[2],
            "configuration.backupStorageLocation.config.storageAccount": sa_parts[8],
            "credentials.tenantId": tenant,
            "configuration.backupStorageLocation.config.useAAD": "true",
            "configuration.backupStorageLocation.config.storageAccountURI": blob,
        }
        from emulator.resources.extensions import extension_body

        now_iso = iso(self.state.now())
        who = task.assignment.id
        body = extension_body(
            ext_id,
            {
                "properties": {
                    "extensionType": EXTENSION_TYPE,
                    "autoUpgradeMinorVersion": True,
                    "releaseTrain": "stable",
                    "configurationSettings": settings,
                }
            },
            provisioning_state="Creating",
            tenant_id=tenant,
            system_data={
                "createdBy": who,
                "createdByType": "Application",
                "createdAt": now_iso,
                "lastModifiedBy": who,
                "lastModifiedByType": "Application",
                "lastModifiedAt": now_iso,
            },
        )
        self.state.put("extensions", ext_id, body, principal=task.principal)
        from emulator.resources.extension_support import install_blocker
        from emulator.resources.extensions import _schedule as schedule_extension_completion

        error = (
            {"code": fault.code, "message": fault.message}
            if fault is not None and fault.action == "fail-provisioning"
            else install_blocker(cluster, EXTENSION_NAME, state=self.state, extension=body)
        )
        delay = float(getattr(self.config, "extension_create_s", 1.0)) if self.config is not None else 1.0
        schedule_extension_completion(
            self.state,
            ext_id,
            delay,
            final="Failed" if error else "Succeeded",
            principal=task.principal,
            error=error,
        )
        self._schedule(task, self.state.now() + delay, self._check, target)

    def _check(self, task: Task, target: str | None) -> list[Any]:
        assert target is not None
        record = task.deployments[key_of(target)]
        ext_id = f"{target}/providers/Microsoft.KubernetesConfiguration/extensions/{EXTENSION_NAME}"
        ext = self.state.get("extensions", ext_id)
        state = ((ext or {}).get("properties") or {}).get("provisioningState")
        if state in ("Creating", "Updating"):
            self._schedule(task, self.state.now() + self.settings.poll_s, self._check, target)
            return []
        if state != "Succeeded":
            info = ((ext or {}).get("properties") or {}).get("errorInfo") or {}
            self._fail(
                task,
                record,
                info.get("code", "ExtensionOperationFailed"),
                info.get("message", f"The extension ended in state {state}."),
            )
            self._after(task)
            return []
        self._nested(task, target, record, ext or {})
        self._after(task)
        return []

    def _nested(self, task: Task, target: str, record: dict[str, Any], ext: Mapping[str, Any]) -> None:
        """Resource B of the DINE template: container + Storage Blob Data Contributor role assignment."""
        params = task.assignment.parameters
        sa_id = str(params["storageAccountId"])
        cluster_name = target.rstrip("/").split("/")[-1]
        container = ("azure-aks-backup-" + cluster_name)[:63]
        if not _CONTAINER_NAME.match(container):
            self._fail(
                task,
                record,
                "InvalidResourceName",
                f"Container name '{container}' is invalid: 3-63 lowercase letters, digits and single "
                "hyphens, starting and ending with a letter or digit.",
            )
            return
        from emulator.resources.common import deterministic_uuid
        from emulator.resources.storage import container_body

        container_id = f"{sa_id}/blobServices/default/containers/{container}"
        if self.state.get("containers", container_id) is None:
            self.state.put(
                "containers",
                container_id,
                container_body(container_id, {}, iso(self.state.now())),
                principal=task.principal,
            )
        principal_id = ((ext.get("properties") or {}).get("aksAssignedIdentity") or {}).get("principalId")
        sub = sa_id.split("/")[2]
        role_def = f"/subscriptions/{sub}/providers/Microsoft.Authorization/roleDefinitions/" + (
            STORAGE_BLOB_DATA_CONTRIBUTOR
        )
        name = deterministic_uuid(sa_id, target, role_def)
        ra_id = f"{sa_id}/providers/Microsoft.Authorization/roleAssignments/{name}"
        with self.state.lock:
            clash = [
                b
                for b in self.state.role_assignments.values()
                if key_of(str((b.get("properties") or {}).get("scope", ""))) == key_of(sa_id)
                and str((b.get("properties") or {}).get("principalId", "")) == principal_id
                and str((b.get("properties") or {}).get("roleDefinitionId", ""))
                .lower()
                .endswith(STORAGE_BLOB_DATA_CONTRIBUTOR)
                and key_of(str(b.get("id", ""))) != key_of(ra_id)
            ]
        if clash:
            self._fail(task, record, "RoleAssignmentExists", "The role assignment already exists.")
            return
        now_iso = iso(self.state.now())
        body = {
            "id": ra_id,
            "name": name,
            "type": "Microsoft.Authorization/roleAssignments",
            "properties": {
                "roleDefinitionId": role_def,
                "principalId": principal_id,
                "principalType": "ServicePrincipal",
                "scope": sa_id,
                "condition": None,
                "conditionVersion": None,
                "createdOn": now_iso,
                "updatedOn": now_iso,
                "createdBy": task.principal,
                "updatedBy": task.principal,
                "delegatedManagedIdentityResourceId": None,
                "description": None,
            },
        }
        self.state.put("role_assignments", ra_id, body, principal=task.principal)
        with self.lock:
            record["status"] = "Succeeded"
            record["lastUpdatedOn"] = now_iso
            task.updated = self.state.now()

    def _after(self, task: Task) -> None:
        self._fill(task)
        self._maybe_finish(task)

    def _maybe_finish(self, task: Task) -> None:
        with self.lock:
            running = any(d["status"] == "Running" for d in task.deployments.values())
            if running or task.queue:
                return
            if task.state == "Cancelling":
                task.state = "Canceled"
            elif task.state == "Evaluating":
                counts = task.counts()
                if counts["failedDeployments"]:
                    task.state = "Failed"
                else:
                    task.state = "Succeeded"
                task.status_message = (
                    f"{counts['successfulDeployments']} of {counts['totalDeployments']} deployments succeeded"
                )
            task.updated = self.state.now()
