"""Typed, error-mapped calls for protect mode: Azure Backup (backup vaults, policies, instances, validation),
AKS trusted-access role bindings, and the snapshot resource group and its locks.

Follows the house's SDK rules (``adapters/arm.py``): long-running operations are ``begin_*`` and are sent with
``polling=False`` (the reconciler never waits for one: it reads the resource's state, or the operation's
status, in a later reconcile); options are keyword-only; every azure-core exception is raised as an
:class:`~remediator.adapters.arm.ArmError` subclass chained from it; answers are small dataclasses built from
the wire JSON, never SDK models.

Clients: ``azure-mgmt-dataprotection`` 2.2.0 (``DataProtectionMgmtClient``, api-version 2026-06-01) and
``azure-mgmt-containerservice`` (``trusted_access_role_bindings``). Resource groups and management locks have
no client in this product's dependencies (``azure-mgmt-resource`` is not one), so those four calls go through
the DataProtection client's public ``send_request`` (azure-core's documented escape hatch,
https://aka.ms/azsdk/dpcodegen/python/send_request) with Microsoft.Resources api-version 2021-04-01 and
Microsoft.Authorization/locks 2020-05-01, both published versions.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from azure.core.rest import HttpRequest

from remediator.adapters.arm import NotFound, call_arm, throttle_feedback
from remediator.adapters.clients import AzureClients
from remediator.core.ids import ResourceId, parse_resource_id
from remediator.core.pacing import Pacer

logger = logging.getLogger(__name__)

RESOURCE_GROUPS_API = "2021-04-01"
"""Microsoft.Resources api-version for resource groups (a published version; azure-mgmt-resource's default
for years)."""
LOCKS_API = "2020-05-01"
"""Microsoft.Authorization/locks api-version (the ManagementLockClient's)."""


@dataclass(frozen=True)
class VaultInfo:
    """A backup vault: location, provisioning state, system identity principal, storage redundancy."""

    id: str
    location: str
    provisioning_state: str
    principal_id: str | None
    redundancy: str | None


@dataclass(frozen=True)
class PolicyInfo:
    """A backup policy: its datasource types and whether any lifecycle uses the vault store."""

    id: str
    datasource_types: tuple[str, ...]
    properties: Mapping[str, Any]


@dataclass(frozen=True)
class ResourceGroupInfo:
    id: str
    location: str


@dataclass(frozen=True)
class LockInfo:
    id: str
    level: str


@dataclass(frozen=True)
class BindingInfo:
    """A trusted-access role binding as AKS lists it."""

    name: str
    source_resource_id: str
    roles: tuple[str, ...]
    provisioning_state: str


@dataclass(frozen=True)
class BackupInstanceInfo:
    """A backup instance as extension routing lists it (id in routing form; the vault comes from the
    policy id)."""

    name: str
    vault_id: str | None
    protection_state: str
    provisioning_state: str
    error_code: str
    error_message: str
    policy_id: str
    snapshot_group_id: str


@dataclass(frozen=True)
class OperationInfo:
    """A DataProtection async operation's status (``Inprogress`` / ``Succeeded`` / ``Failed``) and error."""

    id: str
    status: str
    error_code: str
    error_message: str


@dataclass(frozen=True)
class Sent:
    """What an async write's first answer said: the HTTP status and the ``Azure-AsyncOperation`` URL."""

    status: int
    async_operation: str

    @property
    def operation_id(self) -> str:
        """The operation id at the end of the ``Azure-AsyncOperation`` URL (``…/operationStatus/{id}``)."""
        path = self.async_operation.split("?", 1)[0].rstrip("/")
        return path.rsplit("/", 1)[-1] if "/operationstatus/" in path.lower() else ""


def _text(value: Any) -> str:
    """An SDK field as text: enum members by their wire value, ``None`` as ``""``."""
    if value is None:
        return ""
    return str(getattr(value, "value", value))


def _json(body: Mapping[str, Any]) -> bytes:
    return json.dumps(body, separators=(",", ":")).encode("utf-8")


def _wire(model: Any) -> dict[str, Any]:
    """An SDK model (or dict) as its wire JSON (camelCase keys)."""
    if isinstance(model, Mapping):
        return dict(model)
    as_dict = getattr(model, "as_dict", None)
    return dict(as_dict()) if callable(as_dict) else {}


def _get(data: Any, *path: str) -> Any:
    for key in path:
        if not isinstance(data, Mapping):
            return None
        data = data.get(key)
    return data


def _vault_of_policy(policy_id: str) -> str | None:
    low = policy_id.lower()
    index = low.find("/backuppolicies/")
    return policy_id[:index] if index > 0 else None


def _sub(resource: ResourceId) -> str:
    if resource.subscription_id is None:
        raise ValueError(f"{resource} has no subscription")
    return resource.subscription_id


class _Capture:
    """A ``raw_response_hook`` keeping the last answer's status and headers (and telling the pacer about
    429s)."""

    def __init__(self, chained: Callable[[Any], None] | None) -> None:
        self.status = 0
        self.headers: dict[str, str] = {}
        self._chained = chained

    def __call__(self, pipeline_response: Any) -> None:
        response = pipeline_response.http_response
        self.status = int(response.status_code)
        self.headers = {str(k).lower(): str(v) for k, v in response.headers.items()}
        if self._chained is not None:
            self._chained(pipeline_response)

    def sent(self) -> Sent:
        return Sent(self.status, self.headers.get("azure-asyncoperation", ""))


class DataProtectionGateway:
    """Protect mode's ARM reads and writes, error-mapped (see the module docstring).

    :param clients: the SDK client factory.
    :keyword pacer: the process's write pacer, told about every 429 a write receives; ``None`` = none.
    """

    def __init__(self, clients: AzureClients, *, pacer: Pacer | None = None) -> None:
        self.clients = clients
        self.pacer = pacer

    def _capture(self, subscription_id: str) -> _Capture:
        feedback = throttle_feedback(self.pacer, subscription_id).get("raw_response_hook")
        return _Capture(feedback)

    # -- vaults --------------------------------------------------------------------------------------------

    def get_vault(self, vault: ResourceId) -> VaultInfo | None:
        """The vault, or ``None`` if it does not exist."""
        client = self.clients.data_protection(_sub(vault))
        try:
            found = call_arm(
                "GET backup vault",
                lambda: client.backup_vaults.get(str(vault.resource_group), str(vault.name)),
            )
        except NotFound:
            return None
        body = _wire(found)
        storage = _get(body, "properties", "storageSettings") or []
        redundancy = next(
            (str(s.get("type")) for s in storage if isinstance(s, Mapping) and s.get("type")), None
        )
        return VaultInfo(
            id=str(body.get("id") or vault.canonical),
            location=str(body.get("location") or ""),
            provisioning_state=str(_get(body, "properties", "provisioningState") or ""),
            principal_id=_get(body, "identity", "principalId") or None,
            redundancy=redundancy,
        )

    def begin_create_vault(self, vault: ResourceId, body: Mapping[str, Any]) -> Sent:
        """Send the vault PUT (long-running; not waited for)."""
        subscription = _sub(vault)
        client = self.clients.data_protection(subscription)
        capture = self._capture(subscription)
        call_arm(
            "PUT backup vault",
            lambda: client.backup_vaults.begin_create_or_update(
                str(vault.resource_group),
                str(vault.name),
                _json(body),
                content_type="application/json",
                polling=False,
                raw_response_hook=capture,
            ),
        )
        return capture.sent()

    # -- policies ------------------------------------------------------------------------------------------

    def get_policy(self, policy: ResourceId) -> PolicyInfo | None:
        """The backup policy, or ``None`` if it (or its vault) does not exist."""
        vault = parse_resource_id(str(_vault_of_policy(policy.canonical)))
        client = self.clients.data_protection(_sub(policy))
        try:
            found = call_arm(
                "GET backup policy",
                lambda: client.backup_policies.get(
                    str(policy.resource_group), str(vault.name), str(policy.name)
                ),
            )
        except NotFound:
            return None
        body = _wire(found)
        props = body.get("properties") or {}
        return PolicyInfo(
            id=str(body.get("id") or policy.canonical),
            datasource_types=tuple(str(t) for t in props.get("datasourceTypes") or ()),
            properties=props,
        )

    def create_policy(self, policy: ResourceId, body: Mapping[str, Any]) -> None:
        """PUT the backup policy (synchronous)."""
        vault = parse_resource_id(str(_vault_of_policy(policy.canonical)))
        subscription = _sub(policy)
        client = self.clients.data_protection(subscription)
        call_arm(
            "PUT backup policy",
            lambda: client.backup_policies.create_or_update(
                str(policy.resource_group),
                str(vault.name),
                str(policy.name),
                _json(body),
                content_type="application/json",
                **throttle_feedback(self.pacer, subscription),
            ),
        )

    # -- resource groups and locks (send_request: no azure-mgmt-resource here) ------------------------------

    def _send(self, subscription: str, operation: str, request: HttpRequest) -> Any:
        client = self.clients.data_protection(subscription)

        def run() -> Any:
            response = client.send_request(request, **throttle_feedback(self.pacer, subscription))
            response.raise_for_status()
            return response

        return call_arm(operation, run)

    def get_resource_group(self, group: ResourceId) -> ResourceGroupInfo | None:
        """The resource group, or ``None`` if it does not exist."""
        request = HttpRequest("GET", f"{group.canonical}?api-version={RESOURCE_GROUPS_API}")
        try:
            response = self._send(_sub(group), "GET resource group", request)
        except NotFound:
            return None
        body = response.json()
        return ResourceGroupInfo(
            id=str(body.get("id") or group.canonical), location=str(body.get("location"))
        )

    def create_resource_group(self, group: ResourceId, body: Mapping[str, Any]) -> bool:
        """PUT the resource group; ``True`` if this call created it."""
        request = HttpRequest("PUT", f"{group.canonical}?api-version={RESOURCE_GROUPS_API}", json=dict(body))
        response = self._send(_sub(group), "PUT resource group", request)
        return int(response.status_code) == 201

    def list_locks(self, scope: ResourceId) -> list[LockInfo]:
        """Management locks at or above ``scope`` (the list at a scope includes inherited ones)."""
        request = HttpRequest(
            "GET", f"{scope.canonical}/providers/Microsoft.Authorization/locks?api-version={LOCKS_API}"
        )
        response = self._send(_sub(scope), "LIST locks", request)
        return [
            LockInfo(id=str(item.get("id", "")), level=str(_get(item, "properties", "level") or ""))
            for item in response.json().get("value") or ()
            if isinstance(item, Mapping)
        ]

    # -- trusted access ------------------------------------------------------------------------------------

    def list_trusted_access_bindings(self, cluster: ResourceId) -> list[BindingInfo]:
        """Every trusted-access role binding on the cluster."""
        client = self.clients.container_service(_sub(cluster))

        def run() -> list[BindingInfo]:
            return [
                BindingInfo(
                    name=_text(b.name),
                    source_resource_id=_text(b.source_resource_id),
                    roles=tuple(_text(r) for r in b.roles or ()),
                    provisioning_state=_text(b.provisioning_state),
                )
                for b in client.trusted_access_role_bindings.list(
                    str(cluster.resource_group), str(cluster.name)
                )
            ]

        return call_arm("LIST trusted access role bindings", run)

    def begin_bind_trusted_access(self, cluster: ResourceId, name: str, body: Mapping[str, Any]) -> Sent:
        """Send the binding PUT (AKS answers 200 ``Updating``; not waited for)."""
        subscription = _sub(cluster)
        client = self.clients.container_service(subscription)
        capture = self._capture(subscription)
        call_arm(
            "PUT trusted access role binding",
            lambda: client.trusted_access_role_bindings.begin_create_or_update(
                str(cluster.resource_group),
                str(cluster.name),
                name,
                _json(body),
                content_type="application/json",
                polling=False,
                raw_response_hook=capture,
            ),
        )
        return capture.sent()

    # -- backup instances ------------------------------------------------------------------------------------

    def list_backup_instances(self, resource: ResourceId) -> list[BackupInstanceInfo]:
        """Every backup instance protecting ``resource`` in any vault (extension routing, as the CLI's
        ``_check_existing_backup_instance``)."""
        client = self.clients.data_protection(_sub(resource))

        def run() -> list[BackupInstanceInfo]:
            found: list[BackupInstanceInfo] = []
            for item in client.backup_instances_extension_routing.list(resource.canonical.lstrip("/")):
                body = _wire(item)
                props = body.get("properties") or {}
                policy_id = str(_get(props, "policyInfo", "policyId") or "")
                error = props.get("protectionErrorDetails") or _get(props, "protectionStatus", "errorDetails")
                stores = _get(props, "policyInfo", "policyParameters", "dataStoreParametersList") or []
                snapshot = next(
                    (
                        str(s.get("resourceGroupId"))
                        for s in stores
                        if isinstance(s, Mapping) and s.get("resourceGroupId")
                    ),
                    "",
                )
                found.append(
                    BackupInstanceInfo(
                        name=str(body.get("name") or ""),
                        vault_id=_vault_of_policy(policy_id),
                        protection_state=str(props.get("currentProtectionState") or ""),
                        provisioning_state=str(props.get("provisioningState") or ""),
                        error_code=str(_get(error, "code") or ""),
                        error_message=str(_get(error, "message") or ""),
                        policy_id=policy_id,
                        snapshot_group_id=snapshot,
                    )
                )
            return found

        return call_arm("LIST backup instances (extension routing)", run)

    def begin_validate_for_backup(self, vault: ResourceId, instance_body: Mapping[str, Any]) -> Sent:
        """Send validateForBackup for the instance body (202 + ``Azure-AsyncOperation``; not waited for: the
        returned :attr:`Sent.operation_id` is read with :meth:`get_operation` later)."""
        subscription = _sub(vault)
        client = self.clients.data_protection(subscription)
        capture = self._capture(subscription)
        parameters = {"backupInstance": dict(instance_body.get("properties") or {})}
        call_arm(
            "POST validateForBackup",
            lambda: client.backup_instances.begin_validate_for_backup(
                str(vault.resource_group),
                str(vault.name),
                _json(parameters),
                content_type="application/json",
                polling=False,
                raw_response_hook=capture,
            ),
        )
        return capture.sent()

    def get_operation(self, vault: ResourceId, operation_id: str) -> OperationInfo | None:
        """The status of a vault-context async operation (``{vault}/operationStatus/{id}``), or ``None`` when
        Azure no longer knows it."""
        client = self.clients.data_protection(_sub(vault))
        try:
            found = call_arm(
                "GET operation status",
                lambda: client.operation_status_backup_vault_context.get(
                    str(vault.resource_group), str(vault.name), operation_id
                ),
            )
        except NotFound:
            return None
        body = _wire(found)
        error = body.get("error") or {}
        code = str(_get(error, "code") or "")
        message = str(_get(error, "message") or "")
        info = (
            next((a.get("info") for a in error.get("additionalInfo") or () if isinstance(a, Mapping)), None)
            if isinstance(error, Mapping)
            else None
        )
        if isinstance(info, Mapping):  # the UserFacingError carries the specific code and message
            code = str(info.get("code") or code)
            message = str(info.get("message") or message)
        return OperationInfo(
            id=operation_id, status=str(body.get("status") or ""), error_code=code, error_message=message
        )

    def begin_create_backup_instance(self, vault: ResourceId, name: str, body: Mapping[str, Any]) -> Sent:
        """Send the backup instance PUT (long-running; protection is configured after it)."""
        subscription = _sub(vault)
        client = self.clients.data_protection(subscription)
        capture = self._capture(subscription)
        call_arm(
            "PUT backup instance",
            lambda: client.backup_instances.begin_create_or_update(
                str(vault.resource_group),
                str(vault.name),
                name,
                _json(body),
                content_type="application/json",
                polling=False,
                raw_response_hook=capture,
            ),
        )
        return capture.sent()

    def begin_sync_backup_instance(self, vault: ResourceId, name: str) -> Sent:
        """Send ``POST …/backupInstances/{name}/sync`` (re-runs protection configuration; not waited for)."""
        subscription = _sub(vault)
        client = self.clients.data_protection(subscription)
        capture = self._capture(subscription)
        call_arm(
            "POST backup instance sync",
            lambda: client.backup_instances.begin_sync_backup_instance(
                str(vault.resource_group),
                str(vault.name),
                name,
                _json({"syncType": "Default"}),
                content_type="application/json",
                polling=False,
                raw_response_hook=capture,
            ),
        )
        return capture.sent()


__all__ = [
    "BackupInstanceInfo",
    "BindingInfo",
    "DataProtectionGateway",
    "LockInfo",
    "OperationInfo",
    "PolicyInfo",
    "ResourceGroupInfo",
    "Sent",
    "VaultInfo",
]
