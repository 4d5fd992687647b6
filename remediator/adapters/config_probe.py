"""Reads that tell whether a config describes an Azure that exists, for ``config check --live``.

A config can be valid and still wrong about Azure: a storage account that was never created, or created as
Premium or in another region; a resource provider not registered; the app's identity without its roles; a
management group name that resolves to nothing. The product would find out one cluster at a time, as
``gave_up`` reports. This adapter reads those facts up front, with the same SDK clients and pipeline as the
rest of the product (so the emulator and Azure differ only in endpoint and credential):

* storage accounts: ``StorageManagementClient.storage_accounts.get_properties`` (kind, SKU, location);
* provider registration: ``GET /subscriptions/{id}/providers/{namespace}`` (api-version 2021-04-01) through
  azure-mgmt-core's ``ARMPipelineClient`` with the product's ARM policies (the product has no
  azure-mgmt-resource dependency for this one read);
* role assignments of a principal: ``AuthorizationManagementClient.role_assignments.list_for_scope`` with
  ``$filter=principalId eq '<id>'`` (ARM returns the assignments at, above and below the scope);
* management groups: the subscriptions Resource Graph returns for a query scoped by the group;
* the signed-in principal: the ``oid`` claim of an ARM token from the configured credential;
* a policy assignment and its definition (policy-task mode), through the product's own preflight reads
  (:class:`remediator.adapters.preflight_source.PreflightSource`), judged by
  :func:`remediator.core.plan.policy_task.remediation_effect`.

Errors are mapped like every ARM call (:func:`remediator.adapters.arm.call_arm`): the caller decides what a
403 (cannot tell) or a 404 (missing) means for each check.
"""

from __future__ import annotations

import base64
import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from azure.core.rest import HttpRequest
from azure.mgmt.core import ARMPipelineClient

from remediator.adapters.arm import ArmGateway, NotFound, call_arm
from remediator.adapters.clients import AzureClients, arm_pipeline_policies
from remediator.adapters.graph import ResourceGraphInventory
from remediator.core.ids import ResourceId
from remediator.core.inventory_query import InventoryRequest
from remediator.core.plan.policy_task import RemediationEffect

logger = logging.getLogger(__name__)

PROVIDERS_API_VERSION = "2021-04-01"
"""api-version of ``GET /subscriptions/{id}/providers/{namespace}`` (Microsoft.Resources)."""

SUBSCRIPTIONS_OF_GROUP_QUERY = (
    "resourcecontainers\n| where type =~ 'microsoft.resources/subscriptions'\n| project subscriptionId"
)


@dataclass(frozen=True)
class StorageAccountFacts:
    """What ``config check --live`` needs to know about one storage account."""

    id: str
    kind: str
    sku_name: str
    sku_tier: str
    location: str


@dataclass(frozen=True)
class RoleAssignmentFacts:
    """One role assignment of the principal: where, and which role (its definition GUID, lower case)."""

    scope: str
    role_definition_guid: str


def _get(obj: Any, *path: str) -> Any:
    for key in path:
        if obj is None:
            return None
        obj = getattr(obj, key, None) if not isinstance(obj, dict) else obj.get(key)
    return obj


def _text(value: Any) -> str:
    """An SDK enum member (``Kind.STORAGE_V2``) or string as its wire value (``StorageV2``)."""
    if value is None:
        return ""
    return str(getattr(value, "value", value))


def _oid_of(token: str) -> str | None:
    """The ``oid`` claim of a JWT (not verified: it only names who we are)."""
    try:
        payload = token.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (IndexError, ValueError):
        return None
    oid = claims.get("oid") if isinstance(claims, dict) else None
    return str(oid) if oid else None


class ConfigProbe:
    """The reads of ``config check --live``.

    :param clients: the SDK client factory (endpoint, credential, CA bundle, retries).
    :param graph: Resource Graph, for management groups.
    """

    def __init__(self, clients: AzureClients, graph: ResourceGraphInventory) -> None:
        self.clients = clients
        self.graph = graph
        self._pipeline: ARMPipelineClient[Any, Any] | None = None
        self._preflight: Any = None

    def signed_in_principal(self) -> str | None:
        """The object id of the identity the credential signs in as (``oid`` of an ARM token), if it says."""
        token = self.clients.credential.get_token(self.clients.scope)
        return _oid_of(token.token)

    def storage_account(self, account: ResourceId) -> StorageAccountFacts | None:
        """Kind, SKU and location of the account, or ``None`` if it does not exist."""
        client = self.clients.storage(str(account.subscription_id))
        try:
            found = call_arm(
                "GET storage account",
                lambda: client.storage_accounts.get_properties(
                    str(account.resource_group), str(account.name)
                ),
            )
        except NotFound:
            return None
        return StorageAccountFacts(
            id=str(found.id or account),
            kind=_text(found.kind),
            sku_name=_text(_get(found, "sku", "name")),
            sku_tier=_text(_get(found, "sku", "tier")),
            location=_text(found.location),
        )

    def _arm(self) -> ARMPipelineClient[Any, Any]:
        if self._pipeline is None:
            kwargs = self.clients.transport_kwargs()
            self._pipeline = ARMPipelineClient(
                base_url=self.clients.arm_endpoint,
                policies=arm_pipeline_policies(
                    self.clients.credential,
                    scope=self.clients.scope,
                    max_retry_after_s=self.clients.options.max_retry_after_s,
                    **kwargs,
                ),
                **kwargs,
            )
        return self._pipeline

    def provider_state(self, subscription_id: str, namespace: str) -> str | None:
        """The namespace's ``registrationState`` in the subscription (``Registered``, ``NotRegistered``, ...),
        or ``None`` when ARM does not know the namespace."""
        pipeline = self._arm()
        request = HttpRequest(
            "GET",
            f"{self.clients.arm_endpoint}/subscriptions/{subscription_id}/providers/{namespace}",
            params={"api-version": PROVIDERS_API_VERSION},
        )

        def run() -> Any:
            response = pipeline.send_request(request)
            response.raise_for_status()
            return response.json()

        try:
            body = call_arm("GET provider", run)
        except NotFound:
            return None
        state = body.get("registrationState") if isinstance(body, dict) else None
        return str(state) if state else None

    def role_assignments(self, scope: str, principal_id: str) -> list[RoleAssignmentFacts]:
        """The principal's role assignments that apply at ``scope`` (at it or above it)."""
        subscription = scope.split("/")[2] if scope.lower().startswith("/subscriptions/") else ""
        client = self.clients.authorization(subscription or "00000000-0000-0000-0000-000000000000")

        def run() -> list[RoleAssignmentFacts]:
            found: list[RoleAssignmentFacts] = []
            for assignment in client.role_assignments.list_for_scope(
                scope.lstrip("/"), filter=f"principalId eq '{principal_id}'"
            ):
                found.append(
                    RoleAssignmentFacts(
                        scope=str(_get(assignment, "scope") or ""),
                        role_definition_guid=str(_get(assignment, "role_definition_id") or "")
                        .rsplit("/", 1)[-1]
                        .lower(),
                    )
                )
            return found

        key = scope.rstrip("/").lower()
        return [
            assignment
            for assignment in call_arm("LIST role assignments", run)
            if key == assignment.scope.rstrip("/").lower()
            or key.startswith(assignment.scope.rstrip("/").lower() + "/")
            or assignment.scope.strip("/") == ""
        ]

    def management_group_subscriptions(self, name: str) -> list[str]:
        """The subscriptions below the management group that the identity can read (Resource Graph)."""
        rows: Iterator[Any] = self.graph.iter_data(
            InventoryRequest(query=SUBSCRIPTIONS_OF_GROUP_QUERY, management_groups=(name,))
        )
        return sorted(
            {str(row.get("subscriptionId", "")).lower() for row in rows if row.get("subscriptionId")}
        )

    def remediation_effect(self, assignment: ResourceId) -> RemediationEffect:
        """Can a remediation task for this policy assignment deploy anything (policy-task mode)?

        :raises remediator.adapters.arm.ArmError: the assignment or its definition could not be read.
        """
        from remediator.adapters.preflight_source import PreflightSource

        if self._preflight is None:
            self._preflight = PreflightSource(self.clients, ArmGateway(self.clients), graph=self.graph)
        verdicts: list[RemediationEffect] = self._preflight.remediation_effects([assignment])
        return verdicts[0]

    def close(self) -> None:
        if self._pipeline is not None:
            self._pipeline.close()


__all__ = ["ConfigProbe", "RoleAssignmentFacts", "StorageAccountFacts"]
