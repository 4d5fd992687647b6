"""Helpers every resource handler shares: ids, names, async-operation bookkeeping and existence checks."""

from __future__ import annotations

import logging
import uuid
from typing import Any

from emulator.clock import iso
from emulator.errors import ArmError, resource_group_not_found, retry_after, subscription_not_found

# ids and names live in emulator.model.ids; re-exported here for the handler modules
from emulator.model.ids import CONTAINER_SERVICE as CONTAINER_SERVICE
from emulator.model.ids import MANAGED_CLUSTERS_TYPE as MANAGED_CLUSTERS_TYPE
from emulator.model.ids import cluster_id as cluster_id
from emulator.model.ids import deterministic_uuid as deterministic_uuid
from emulator.model.ids import rg_id as rg_id
from emulator.routing import Request
from emulator.state import EmulatorState, key_of

logger = logging.getLogger(__name__)


def state_of(request: Request) -> EmulatorState:
    assert request.state is not None
    return request.state


def require_subscription(state: EmulatorState, subscription_id: str) -> dict[str, Any]:
    sub = state.subscription(subscription_id)
    if sub is None:
        raise subscription_not_found(subscription_id)
    return sub


def require_resource_group(state: EmulatorState, subscription_id: str, resource_group: str) -> dict[str, Any]:
    require_subscription(state, subscription_id)
    rg = state.get("resource_groups", rg_id(subscription_id, resource_group))
    if rg is None:
        raise resource_group_not_found(resource_group)
    return rg


def require_registered(state: EmulatorState, subscription_id: str, namespace: str) -> None:
    """ARM's 409 MissingSubscriptionRegistration (the message format azure-mgmt-core parses for
    auto-register)."""
    if state.provider_state(subscription_id, namespace) != "Registered":
        raise ArmError(
            409,
            "MissingSubscriptionRegistration",
            f"The subscription is not registered to use namespace '{namespace}'. "
            "See https://aka.ms/rps-not-found for how to register subscriptions.",
            details=[
                {
                    "code": "MissingSubscriptionRegistration",
                    "target": namespace,
                    "message": f"The subscription is not registered to use namespace '{namespace}'. "
                    "See https://aka.ms/rps-not-found for how to register subscriptions.",
                }
            ],
        )


def system_data(
    state: EmulatorState, principal: str | None, previous: dict[str, Any] | None = None
) -> dict[str, Any]:
    now = iso(state.now())
    created = (previous or {}).get("systemData") or {}
    return {
        "createdBy": created.get("createdBy", principal or "unknown"),
        "createdByType": created.get("createdByType", "Application"),
        "createdAt": created.get("createdAt", now),
        "lastModifiedBy": principal or "unknown",
        "lastModifiedByType": "Application",
        "lastModifiedAt": now,
    }


def new_operation(
    request: Request,
    *,
    resource_id: str,
    kind: str,
    status_url_prefix: str,
    api_version: str | None = None,
) -> tuple[str, str]:
    """Record an async operation; returns (operation id, absolute Azure-AsyncOperation URL). The URL carries
    ``api_version`` (default: the request's)."""
    state = state_of(request)
    op_id = str(uuid.uuid4())
    with state.lock:
        state.operations[op_id] = {
            "id": op_id,
            "resourceId": resource_id,
            "kind": kind,
            "startTime": state.now(),
            "principal": request.principal,
        }
    api = api_version or request.api_version or ""
    url = f"{request.base_url}{status_url_prefix}/{op_id}?api-version={api}"
    return op_id, url


def retry_after_header(request: Request) -> dict[str, str]:
    """Retry-After for LRO responses and in-progress status polls (see emulator.errors.retry_after)."""
    assert request.config is not None
    seconds = request.config.lro_retry_after_s
    return {} if seconds is None else retry_after(seconds)


def status_response_headers(request: Request, status: dict[str, Any]) -> dict[str, str]:
    return retry_after_header(request) if status.get("status") == "InProgress" else {}


def lro_headers(request: Request, async_url: str, *, location: bool = False) -> dict[str, str]:
    headers = {"Azure-AsyncOperation": async_url, **retry_after_header(request)}
    if location:
        headers["Location"] = async_url.replace("/operations/", "/operationresults/", 1)
    return headers


def operation_status(state: EmulatorState, op_id: str) -> dict[str, Any]:
    """The async operation's status from the state of the resource it acts on."""
    state.advance()
    with state.lock:
        op = state.operations.get(op_id)
        if op is None:
            raise ArmError(404, "OperationNotFound", f"The operation '{op_id}' could not be found.")
        body: dict[str, Any] | None = None
        for coll in ("clusters", "extensions", "resources"):
            body = state.collection(coll).get(key_of(op["resourceId"]))
            if body is not None:
                break
        # AKS answers {name, status, startTime[, endTime, error]} (recorded); other RPs add their own id
        out: dict[str, Any] = {"name": op_id, "startTime": iso(op["startTime"])}
        if op["kind"] == "delete":
            status = "InProgress" if body is not None else "Succeeded"
        elif body is None:
            status = "Canceled"
        else:
            prov = (body.get("properties") or {}).get("provisioningState", "Succeeded")
            status = prov if prov in ("Succeeded", "Failed", "Canceled") else "InProgress"
            if status == "Failed":
                err = state.meta.get(key_of(op["resourceId"]), {}).get("lastError") or {
                    "code": "ResourceOperationFailure",
                    "message": "The resource operation completed with terminal provisioning state 'Failed'.",
                }
                out["error"] = err
        out["status"] = status
        if status != "InProgress":
            out["endTime"] = iso(state.now())
        return out
