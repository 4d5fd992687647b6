"""Typed, error-mapped ARM calls used by the reconciler.

The reconciler must decide from an error what to do next (wait, give up, treat as done), so every azure-core
exception is mapped here to one :class:`ArmError` subclass, chained from the original:

- 429 -> :class:`Throttled` (``retry_after_s`` from ``Retry-After``),
- 409 ``MissingSubscriptionRegistration`` -> :class:`ProviderNotRegistered` (the namespace),
- other 409s -> :class:`Conflict` (the ARM error code, e.g. ``OperationNotAllowed``),
- 403 -> :class:`Forbidden` (the action from the message, when ARM names it),
- 404 -> :class:`NotFound`,
- 5xx, timeouts and dropped connections -> :class:`Transient`,
- anything else (400, 401, ...) -> :class:`ArmError` itself.

Reads return plain values (dicts and small dataclasses), never SDK models, so the service layer does not
depend on SDK model shapes.

Writes report every 429 they receive — including the ones azure-core retries inside the call and the caller
never sees — to the process's :class:`~remediator.core.pacing.WritePacer` (``throttled``), so later writes in
that subscription hold back for ``Retry-After``. Taking tokens before a write is the reconciler's job: only it
can turn a long wait into a ``wait`` outcome.
"""

from __future__ import annotations

import io
import json
import logging
import re
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import urlsplit

from azure.core.exceptions import (
    AzureError,
    HttpResponseError,
    ServiceRequestError,
    ServiceResponseError,
)

from remediator.adapters.clients import AzureClients
from remediator.core.catalog import EXTENSION_TYPE
from remediator.core.ids import ResourceId
from remediator.core.pacing import Pacer, resource_type_of
from remediator.core.preflight import StorageAccount
from remediator.core.text import equal_ignoring_case

T = TypeVar("T")

logger = logging.getLogger(__name__)

CLUSTER_RP = "Microsoft.ContainerService"
CLUSTER_RESOURCE = "managedClusters"
DEFAULT_RETRY_AFTER_S = 10.0
STORAGE_ACCOUNT_TTL_S = 60.0
"""How long a storage account found is remembered (:meth:`ArmGateway.get_storage_account`)."""

_NAMESPACE_RE = re.compile(r"namespace '([^']+)'", re.IGNORECASE)
_ACTION_RE = re.compile(r"perform action '([^']+)'", re.IGNORECASE)


class ArmError(Exception):
    """An ARM call failed. ``status`` is the HTTP status (``None`` without a response), ``code`` ARM's code.

    :param message: one line.
    :keyword status: HTTP status.
    :keyword code: ARM error code.
    :keyword operation: what was being done (``PUT extension``), for messages.
    """

    def __init__(
        self, message: str, *, status: int | None = None, code: str = "", operation: str = ""
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.code = code
        self.operation = operation

    def __str__(self) -> str:
        parts = [p for p in (self.operation, f"HTTP {self.status}" if self.status else "", self.code) if p]
        return f"{' '.join(parts)}: {self.message}" if parts else self.message


class NotFound(ArmError):
    """404: the resource does not exist."""


class Throttled(ArmError):
    """429: ARM throttled the caller; ``retry_after_s`` says when to come back."""

    def __init__(self, message: str, *, retry_after_s: float, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.retry_after_s = retry_after_s


class Conflict(ArmError):
    """409 (other than a missing provider registration): another operation is in progress, or the like."""


class ProviderNotRegistered(ArmError):
    """409 ``MissingSubscriptionRegistration``: the subscription has not registered ``namespace``."""

    def __init__(self, message: str, *, namespace: str, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.namespace = namespace


class Forbidden(ArmError):
    """403: the caller lacks a permission; ``action`` names it when ARM says which."""

    def __init__(self, message: str, *, action: str | None, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.action = action


class Transient(ArmError):
    """5xx, a timeout or a dropped connection: worth retrying later."""


def _retry_after(headers: Mapping[str, str] | None) -> float:
    if not headers:
        return DEFAULT_RETRY_AFTER_S
    for name in ("Retry-After", "retry-after", "x-ms-retry-after-ms", "retry-after-ms"):
        value = headers.get(name)
        if value is None:
            continue
        try:
            seconds = float(value)
        except ValueError:
            continue
        return seconds / 1000.0 if name.endswith("-ms") else seconds
    return DEFAULT_RETRY_AFTER_S


def _error_code_and_message(exc: HttpResponseError) -> tuple[str, str]:
    code = ""
    message = ""
    error = getattr(exc, "error", None)
    if error is not None:
        code = str(getattr(error, "code", "") or "")
        message = str(getattr(error, "message", "") or "")
    if not code and exc.response is not None:
        try:
            body = json.loads(exc.response.text())
        except (ValueError, TypeError):
            body = None
        if isinstance(body, Mapping) and isinstance(body.get("error"), Mapping):
            code = str(body["error"].get("code", ""))
            message = message or str(body["error"].get("message", ""))
    return code, message or str(exc.message or exc)


def map_arm_error(exc: AzureError, *, operation: str) -> ArmError:
    """The :class:`ArmError` for an azure-core exception (the caller raises it ``from exc``)."""
    if isinstance(exc, HttpResponseError) and exc.status_code is not None:
        status = int(exc.status_code)
        code, message = _error_code_and_message(exc)
        headers = getattr(exc.response, "headers", None)
        common: dict[str, Any] = {"status": status, "code": code, "operation": operation}
        if status == 404:
            return NotFound(message, **common)
        if status == 429:
            return Throttled(message, retry_after_s=_retry_after(headers), **common)
        if status == 409 and code == "MissingSubscriptionRegistration":
            match = _NAMESPACE_RE.search(message)
            namespace = match.group(1) if match else "unknown"
            return ProviderNotRegistered(message, namespace=namespace, **common)
        if status == 409:
            return Conflict(message, **common)
        if status == 403:
            match = _ACTION_RE.search(message)
            return Forbidden(message, action=match.group(1) if match else None, **common)
        if status >= 500 or status == 408:
            return Transient(message, **common)
        return ArmError(message, **common)
    if isinstance(exc, ServiceRequestError | ServiceResponseError):
        return Transient(f"{type(exc).__name__}: {exc}", operation=operation)
    return Transient(f"{type(exc).__name__}: {exc}", operation=operation)


def call_arm(operation: str, fn: Callable[[], T]) -> T:
    """Run one SDK call, mapping azure-core exceptions to :class:`ArmError` (chained)."""
    try:
        return fn()
    except AzureError as exc:
        raise map_arm_error(exc, operation=operation) from exc


@dataclass(frozen=True)
class ExtensionInfo:
    """One cluster extension as listed."""

    id: str
    name: str
    extension_type: str
    provisioning_state: str
    principal_id: str | None
    error: str
    settings: tuple[tuple[str, str], ...] = ()
    """``configurationSettings`` (sorted pairs)."""


@dataclass(frozen=True)
class RoleAssignmentInfo:
    """One role assignment as listed (ids as ARM sent them)."""

    id: str
    scope: str
    principal_id: str
    role_definition_id: str


@dataclass(frozen=True)
class StorageAccountInfo:
    """The storage account facts the reconciler needs (``access``: shared-key and firewall settings, for
    preflight)."""

    id: str
    location: str
    blob_endpoint: str
    access: StorageAccount | None = None


def _json_io(body: Mapping[str, Any]) -> io.BytesIO:
    return io.BytesIO(json.dumps(body, separators=(",", ":")).encode("utf-8"))


def _get(obj: Any, *path: str) -> Any:
    for key in path:
        if obj is None:
            return None
        value = getattr(obj, key, None)
        if value is None and isinstance(obj, Mapping):
            value = obj.get(key)
        obj = value
    return obj


def _scope_path(resource_id: str) -> str:
    """SDK operations that take a scope put it after a ``/`` themselves."""
    return resource_id.lstrip("/")


def _code_of(response: Any) -> str:
    """The ARM error code of an answer (``""`` when its body names none)."""
    try:
        body = json.loads(response.text())
    except (ValueError, TypeError, AttributeError):
        return ""
    error = body.get("error") if isinstance(body, Mapping) else None
    return str(error.get("code") or "") if isinstance(error, Mapping) else ""


def throttle_feedback(pacer: Pacer | None, subscription_id: str) -> dict[str, Any]:
    """Per-call SDK keyword arguments that feed ``pacer`` every answer a write receives in ``subscription_id``
    (azure-core calls the hook once per attempt, retries included): every ``x-ms-ratelimit-remaining-*``
    header (``observe_headers``, keyed by the resource type written) and every 429 (``throttled``);
    ``{}`` without a pacer."""
    if pacer is None:
        return {}

    def hook(pipeline_response: Any) -> None:
        response = pipeline_response.http_response
        kind = path = ""
        try:
            path = urlsplit(str(pipeline_response.http_request.url)).path
            kind = resource_type_of(path)
            pacer.observe_headers(
                subscription_id, kind, response.headers, refused=response.status_code == 429
            )
        except Exception:  # feedback must never fail the call itself
            logger.debug("reading the rate-limit headers failed", exc_info=True)
        if response.status_code == 429:
            pacer.throttled(
                subscription_id,
                _retry_after(response.headers),
                resource_type=kind,
                code=_code_of(response),
                target=path,
            )

    return {"raw_response_hook": hook}


class ArmGateway:
    """The ARM reads and writes of one reconcile, error-mapped.

    :param clients: the SDK client factory.
    :keyword pacer: the process's write pacer, told about every 429 a write receives; ``None`` = none.
    """

    def __init__(
        self,
        clients: AzureClients,
        *,
        pacer: Pacer | None = None,
        storage_account_ttl_s: float = STORAGE_ACCOUNT_TTL_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.clients = clients
        self.pacer = pacer
        self.storage_account_ttl_s = storage_account_ttl_s
        self._clock = clock
        self._accounts: dict[str, tuple[float, StorageAccountInfo]] = {}
        self._accounts_lock = threading.Lock()

    # -- managed clusters ------------------------------------------------------------------------------------

    def get_cluster(self, cluster_id: ResourceId) -> dict[str, Any] | None:
        """The managedCluster GET body (ARM JSON), or ``None`` if the cluster does not exist."""
        client = self.clients.container_service(_sub(cluster_id))
        try:
            body = call_arm(
                "GET cluster",
                lambda: client.managed_clusters.get(
                    str(cluster_id.resource_group),
                    str(cluster_id.name),
                    # stream=True: the SDK hands the body over undecoded instead of building its model of
                    # the cluster first (several ms of CPU between the cluster GET and the reads that wait
                    # for it, on the event path), and it is decoded once, here
                    stream=True,
                    cls=lambda pipeline_response, deserialized, headers: json.loads(
                        pipeline_response.http_response.read()
                    ),
                ),
            )
        except NotFound:
            return None
        return dict(body)

    def list_clusters(self, subscription_id: str) -> list[dict[str, Any]]:
        """Every managedCluster in a subscription (ARM JSON)."""
        client = self.clients.container_service(subscription_id)
        return call_arm("LIST clusters", lambda: [m.as_dict() for m in client.managed_clusters.list()])

    # -- extensions ------------------------------------------------------------------------------------------

    def list_extensions(self, cluster_id: ResourceId) -> list[ExtensionInfo]:
        """Every extension on the cluster."""
        client = self.clients.extensions(_sub(cluster_id))

        def run() -> list[ExtensionInfo]:
            found: list[ExtensionInfo] = []
            for ext in client.extensions.list(
                str(cluster_id.resource_group), CLUSTER_RP, CLUSTER_RESOURCE, str(cluster_id.name)
            ):
                error_info = getattr(ext, "error_info", None)
                settings = getattr(ext, "configuration_settings", None) or {}
                found.append(
                    ExtensionInfo(
                        id=str(ext.id or ""),
                        name=str(ext.name or ""),
                        extension_type=str(ext.extension_type or ""),
                        provisioning_state=str(ext.provisioning_state or ""),
                        principal_id=_get(ext, "aks_assigned_identity", "principal_id"),
                        error=str(_get(error_info, "message") or ""),
                        settings=tuple(sorted((str(k), str(v)) for k, v in dict(settings).items())),
                    )
                )
            return found

        return call_arm("LIST extensions", run)

    def find_backup_extension(self, cluster_id: ResourceId) -> ExtensionInfo | None:
        """The extension of type ``microsoft.dataprotection.kubernetes`` under any name (the DINE's existence
        condition), or ``None``."""
        for ext in self.list_extensions(cluster_id):
            if equal_ignoring_case(ext.extension_type, EXTENSION_TYPE):
                return ext
        return None

    def begin_create_extension(self, cluster_id: ResourceId, name: str, body: Mapping[str, Any]) -> int:
        """Send the extension PUT with exactly ``body`` and return its HTTP status; does not wait for the LRO
        (``polling=False``): the caller comes back later and reads the extension state."""
        client = self.clients.extensions(_sub(cluster_id))

        def run() -> int:
            status: list[int] = []
            client.extensions.begin_create(
                str(cluster_id.resource_group),
                CLUSTER_RP,
                CLUSTER_RESOURCE,
                str(cluster_id.name),
                name,
                _json_io(body),
                content_type="application/json",
                polling=False,
                cls=lambda pipeline_response, deserialized, headers: status.append(
                    pipeline_response.http_response.status_code
                ),
                **throttle_feedback(self.pacer, _sub(cluster_id)),
            ).result()
            return status[0] if status else 0

        return call_arm("PUT extension", run)

    # -- storage ---------------------------------------------------------------------------------------------

    def get_storage_account(self, storage_account_id: ResourceId) -> StorageAccountInfo | None:
        """Location, ``primaryEndpoints.blob`` and access of the account, or ``None`` if it does not exist.

        An account found is remembered for ``storage_account_ttl_s`` (1 minute): every reconcile of every
        cluster in a region reads the same account, and all of them live in the storage subscription, whose
        read bucket (250 + 25/s per principal) every reconcile shares — it throttled the issue 17 chaos run's
        fault-free baseline. A missing account is never remembered, and a reconcile that finds a blocked link
        :meth:`forget_storage_account` s it, so a fix (a firewall opened, shared keys allowed) is seen by the
        next reconcile; a change for the worse is seen within the minute.
        """
        key = storage_account_id.key
        with self._accounts_lock:
            cached = self._accounts.get(key)
        if cached is not None and self._clock() - cached[0] < self.storage_account_ttl_s:
            return cached[1]
        read_at = self._clock()
        client = self.clients.storage(_sub(storage_account_id))
        try:
            account = call_arm(
                "GET storage account",
                lambda: client.storage_accounts.get_properties(
                    str(storage_account_id.resource_group), str(storage_account_id.name)
                ),
            )
        except NotFound:
            return None
        info = StorageAccountInfo(
            id=str(account.id or storage_account_id),
            location=str(account.location or ""),
            blob_endpoint=str(_get(account, "primary_endpoints", "blob") or ""),
            access=_storage_access(account, str(account.id or storage_account_id)),
        )
        with self._accounts_lock:
            self._accounts[key] = (read_at, info)
        return info

    def forget_storage_account(self, storage_account_id: ResourceId) -> None:
        """Read the account afresh next time (see :meth:`get_storage_account`)."""
        with self._accounts_lock:
            self._accounts.pop(storage_account_id.key, None)

    def container_exists(self, storage_account_id: ResourceId, container: str) -> bool:
        """Whether the blob container exists (a GET; 404 is ``False``)."""
        client = self.clients.storage(_sub(storage_account_id))
        try:
            call_arm(
                "GET container",
                lambda: client.blob_containers.get(
                    str(storage_account_id.resource_group), str(storage_account_id.name), container
                ),
            )
        except NotFound:
            return False
        return True

    def ensure_container(self, storage_account_id: ResourceId, container: str) -> bool:
        """Create the blob container; ``True`` if this call created it, ``False`` if it already existed."""
        client = self.clients.storage(_sub(storage_account_id))
        try:
            call_arm(
                "PUT container",
                lambda: client.blob_containers.create(
                    str(storage_account_id.resource_group),
                    str(storage_account_id.name),
                    container,
                    _json_io({"properties": {}}),
                    content_type="application/json",
                    **throttle_feedback(self.pacer, _sub(storage_account_id)),
                ),
            )
        except Conflict as exc:
            if exc.code == "ContainerAlreadyExists":
                return False
            raise
        return True

    # -- role assignments ------------------------------------------------------------------------------------

    def list_role_assignments(self, scope: ResourceId, *, principal_id: str) -> list[RoleAssignmentInfo]:
        """The principal's role assignments that ARM lists for ``scope`` (``$filter=principalId eq``: at,
        above and below the scope; the caller keeps those at or above it)."""
        client = self.clients.authorization(_sub(scope))

        def run() -> list[RoleAssignmentInfo]:
            found: list[RoleAssignmentInfo] = []
            for item in client.role_assignments.list_for_scope(
                _scope_path(scope.canonical), filter=f"principalId eq '{principal_id}'"
            ):
                found.append(
                    RoleAssignmentInfo(
                        id=str(item.id or ""),
                        scope=str(item.scope or ""),
                        principal_id=str(item.principal_id or ""),
                        role_definition_id=str(item.role_definition_id or ""),
                    )
                )
            return found

        return call_arm("LIST role assignments", run)

    def ensure_role_assignment(
        self, *, scope: ResourceId, name: str, role_definition_id: str, principal_id: str
    ) -> bool:
        """PUT the role assignment; ``True`` if created, ``False`` if it (or the same grant under another
        name, 409 ``RoleAssignmentExists``) already existed."""
        subscription_id = _sub(scope)
        client = self.clients.authorization(subscription_id)
        body = {
            "properties": {
                "roleDefinitionId": role_definition_id,
                "principalId": principal_id,
                "principalType": "ServicePrincipal",
            }
        }
        try:
            call_arm(
                "PUT role assignment",
                lambda: client.role_assignments.create(
                    _scope_path(scope.canonical),
                    name,
                    _json_io(body),
                    content_type="application/json",
                    **throttle_feedback(self.pacer, subscription_id),
                ),
            )
        except Conflict as exc:
            if exc.code == "RoleAssignmentExists":
                return False
            raise
        return True


def _enum_text(value: Any) -> str:
    """An SDK enum (``class X(str, Enum)``: ``str()`` gives ``X.MEMBER``) or plain string, as its value."""
    return "" if value is None else str(getattr(value, "value", value))


def _storage_access(account: Any, account_id: str) -> StorageAccount:
    """Shared-key access and the firewall of an SDK ``StorageAccount`` model, as preflight reads them."""
    rules = _get(account, "network_rule_set")
    body = {
        "id": account_id,
        "properties": {
            "allowSharedKeyAccess": _get(account, "allow_shared_key_access"),
            "networkAcls": {
                "defaultAction": _enum_text(_get(rules, "default_action")) or "Allow",
                "bypass": _enum_text(_get(rules, "bypass")),
                "resourceAccessRules": [
                    {"resourceId": str(_get(rule, "resource_id") or "")}
                    for rule in (_get(rules, "resource_access_rules") or [])
                ],
            },
        },
    }
    return StorageAccount.from_arm(body)


def _sub(resource_id: ResourceId) -> str:
    if resource_id.subscription_id is None:
        raise ValueError(f"{resource_id} has no subscription")
    return resource_id.subscription_id


__all__ = [
    "ArmError",
    "ArmGateway",
    "Conflict",
    "ExtensionInfo",
    "Forbidden",
    "NotFound",
    "ProviderNotRegistered",
    "RoleAssignmentInfo",
    "StorageAccountInfo",
    "Throttled",
    "Transient",
    "call_arm",
    "map_arm_error",
    "throttle_feedback",
]
