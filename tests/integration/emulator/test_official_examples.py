"""Every official REST example for the resource types the emulator models passes two checks through the real
SDK clients over HTTPS: its request body is accepted, and the emulator's response deserializes into the SDK
model and carries the example's fields (see helpers.assert_carries_example_fields)."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from azure.mgmt.authorization import AuthorizationManagementClient
from azure.mgmt.authorization.v2022_04_01.models import RoleAssignment
from azure.mgmt.containerservice import ContainerServiceClient
from azure.mgmt.containerservice.models import ManagedCluster, TrustedAccessRoleBinding
from azure.mgmt.kubernetesconfiguration import SourceControlConfigurationClient
from azure.mgmt.kubernetesconfiguration.models import Extension, OperationStatusResult

from emulator.server import Emulator
from tests.integration.emulator.helpers import (
    assert_carries_example_fields,
    load_example,
    model_dict,
    send_raw,
)

pytestmark = pytest.mark.integration

CONNECTED = (
    "/subscriptions/subId1/resourceGroups/rg1/providers/Microsoft.Kubernetes/connectedClusters/clusterName1"
)
EXT_BASE = CONNECTED + "/providers/Microsoft.KubernetesConfiguration/extensions"


def _connected_cluster_estate(extensions: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {
        "subscriptions": [
            {"subscriptionId": "subId1", "resourceGroups": [{"name": "rg1", "location": "eastus"}]}
        ],
        "resources": [
            {
                "id": CONNECTED,
                "name": "clusterName1",
                "type": "Microsoft.Kubernetes/connectedClusters",
                "location": "eastus",
                "properties": {"provisioningState": "Succeeded", "connectivityStatus": "Connected"},
            }
        ],
        "extensions": extensions or [],
    }


def _ext_client(emulator: Emulator) -> SourceControlConfigurationClient:
    return SourceControlConfigurationClient(emulator.credential(), "subId1", **emulator.client_kwargs())


def _wait_terminal(client: Any, url: str, api: str) -> dict[str, Any]:
    deadline = time.monotonic() + 10
    while True:
        status = send_raw(client, "GET", url, api).json()
        if status["status"] != "InProgress" or time.monotonic() > deadline:
            return status
        time.sleep(0.05)


# ----- containerservice -------------------------------------------------------------------------------


def check_managed_clusters_get(emulator: Emulator, example: dict[str, Any]) -> None:
    body = example["responses"]["200"]["body"]
    p = example["parameters"]
    emulator.reset({"clusters": [body]})
    client = ContainerServiceClient(emulator.credential(), p["subscriptionId"], **emulator.client_kwargs())
    got = client.managed_clusters.get(p["resourceGroupName"], p["resourceName"])
    assert got.as_dict() == model_dict(ManagedCluster, body)


def check_managed_clusters_list(emulator: Emulator, example: dict[str, Any]) -> None:
    values = example["responses"]["200"]["body"]["value"]
    emulator.reset({"clusters": values})
    client = ContainerServiceClient(
        emulator.credential(), example["parameters"]["subscriptionId"], **emulator.client_kwargs()
    )
    got = [c.as_dict() for c in client.managed_clusters.list()]
    assert got == [model_dict(ManagedCluster, v) for v in values]


def check_managed_clusters_create(emulator: Emulator, example: dict[str, Any]) -> None:
    p = example["parameters"]
    sub, rg, name = p["subscriptionId"], p["resourceGroupName"], p["resourceName"]
    emulator.reset(
        {"subscriptions": [{"subscriptionId": sub, "resourceGroups": [{"name": rg, "location": "eastus"}]}]}
    )
    client = ContainerServiceClient(emulator.credential(), sub, **emulator.client_kwargs())
    path = (
        f"/subscriptions/{sub}/resourceGroups/{rg}/providers/"
        f"Microsoft.ContainerService/managedClusters/{name}"
    )
    request_model = model_dict(ManagedCluster, p["parameters"])
    for expected_status in (201, 200):  # create, then the same PUT again is an update
        response = send_raw(client, "PUT", path, p["api-version"], p["parameters"])
        assert response.status_code == expected_status, response.text()
        assert response.headers["Azure-AsyncOperation"].startswith(emulator.base_url)
        ours = model_dict(ManagedCluster, response.json())
        example_body = model_dict(ManagedCluster, example["responses"][str(expected_status)]["body"])
        assert_carries_example_fields(ours, example_body, request_model)
        assert "secret" not in response.text() and "replacePassword" not in response.text()
        status = _wait_terminal(
            client, response.headers["Azure-AsyncOperation"].split(emulator.base_url)[1], p["api-version"]
        )
        assert status["status"] == "Succeeded"
    # and the SDK's own LRO call with the example's model polls to Succeeded
    poller = client.managed_clusters.begin_create_or_update(rg, name, ManagedCluster(p["parameters"]))
    assert poller.result().provisioning_state == "Succeeded"


def check_trusted_access(emulator: Emulator, example: dict[str, Any]) -> None:
    p = example["parameters"]
    sub, rg, name = p["subscriptionId"], p["resourceGroupName"], p["resourceName"]
    cluster = (
        f"/subscriptions/{sub}/resourceGroups/{rg}/providers/"
        f"Microsoft.ContainerService/managedClusters/{name}"
    )
    emulator.reset({"clusters": [{"id": cluster, "location": "eastus"}]})
    client = ContainerServiceClient(emulator.credential(), sub, **emulator.client_kwargs())
    path = f"{cluster}/trustedAccessRoleBindings/{p['trustedAccessRoleBindingName']}"
    # The example lists 200 and 201; real AKS answers a create with 200 (provisioningState Updating, no
    # async header: shared/recordings aks-preview test_aks_trustedaccess_rolebinding), so both the create
    # and the update are held to the example's 200 body.
    for _ in ("create", "update"):
        response = send_raw(client, "PUT", path, p["api-version"], p["trustedAccessRoleBinding"])
        assert response.status_code == 200, response.text()
        ours = model_dict(TrustedAccessRoleBinding, response.json())
        example_body = model_dict(TrustedAccessRoleBinding, example["responses"]["200"]["body"])
        request_model = model_dict(TrustedAccessRoleBinding, p["trustedAccessRoleBinding"])
        assert_carries_example_fields(ours, example_body, request_model)
    got = client.trusted_access_role_bindings.get(rg, name, p["trustedAccessRoleBindingName"])
    assert got.roles == p["trustedAccessRoleBinding"]["properties"]["roles"]


# ----- kubernetesconfiguration ------------------------------------------------------------------------


def check_create_extension(emulator: Emulator, example: dict[str, Any]) -> None:
    p = example["parameters"]
    emulator.reset(_connected_cluster_estate())
    client = _ext_client(emulator)
    response = send_raw(client, "PUT", f"{EXT_BASE}/{p['extensionName']}", p["api-version"], p["extension"])
    assert response.status_code == 201, response.text()
    assert "Azure-AsyncOperation" in response.headers
    assert "secretKeyValue01" not in response.text()  # protected settings are never returned
    request_model = model_dict(Extension, p["extension"])
    assert_carries_example_fields(
        model_dict(Extension, response.json()),
        model_dict(Extension, example["responses"]["201"]["body"]),
        request_model,
    )
    url = response.headers["Azure-AsyncOperation"].split(emulator.base_url)[1]
    assert _wait_terminal(client, url, p["api-version"])["status"] == "Succeeded"
    final = send_raw(client, "GET", f"{EXT_BASE}/{p['extensionName']}", p["api-version"])
    assert_carries_example_fields(
        model_dict(Extension, final.json()),
        model_dict(Extension, example["responses"]["200"]["body"]),
        request_model,
    )
    _assert_system_data_who_is_null_before_2025(client, p["extensionName"])


def _assert_system_data_who_is_null_before_2025(client: Any, name: str) -> None:
    """At the SDK's 2023-05-01 the RP leaves systemData's who-fields null (recorded Azure traffic, the
    k8s-extension cassette); the examples' 2025-03-01 fills them (emulator.model.bodies.extension_answer)."""
    got = client.extensions.get("rg1", "Microsoft.Kubernetes", "connectedClusters", "clusterName1", name)
    assert got.system_data is not None and got.system_data.created_at is not None
    assert (got.system_data.created_by, got.system_data.last_modified_by_type) == (None, None)


def check_get_extension(emulator: Emulator, example: dict[str, Any]) -> None:
    body = example["responses"]["200"]["body"]
    emulator.reset(_connected_cluster_estate([body]))
    p = example["parameters"]
    client = _ext_client(emulator)
    got = send_raw(client, "GET", f"{EXT_BASE}/{p['extensionName']}", p["api-version"])
    assert model_dict(Extension, got.json()) == model_dict(Extension, body)
    _assert_system_data_who_is_null_before_2025(client, p["extensionName"])


def check_list_extensions(emulator: Emulator, example: dict[str, Any]) -> None:
    values = example["responses"]["200"]["body"]["value"]
    emulator.reset(_connected_cluster_estate(values))
    p = example["parameters"]
    client = _ext_client(emulator)
    got = send_raw(client, "GET", EXT_BASE, p["api-version"]).json()
    assert got["nextLink"] is None
    assert [model_dict(Extension, e) for e in got["value"]] == [model_dict(Extension, v) for v in values]
    listed = client.extensions.list(
        p["resourceGroupName"], p["clusterRp"], p["clusterResourceName"], p["clusterName"]
    )
    assert [e.name for e in listed] == [v["name"] for v in values]


def check_delete_extension(emulator: Emulator, example: dict[str, Any]) -> None:
    p = example["parameters"]
    ext = {"clusterId": CONNECTED, "name": p["extensionName"], "extensionType": "azuremonitor-containers"}
    emulator.reset(_connected_cluster_estate([ext]))
    client = _ext_client(emulator)
    response = send_raw(client, "DELETE", f"{EXT_BASE}/{p['extensionName']}", p["api-version"])
    assert response.status_code == 202
    assert set(example["responses"]["202"]["headers"]) <= set(response.headers)
    url = response.headers["Azure-AsyncOperation"].split(emulator.base_url)[1]
    assert _wait_terminal(client, url, p["api-version"])["status"] == "Succeeded"
    again = send_raw(client, "DELETE", f"{EXT_BASE}/{p['extensionName']}", p["api-version"])
    assert again.status_code == 204  # example lists 200/204 for "nothing (left) to delete"
    # the SDK's LRO delete works too
    emulator.reset(_connected_cluster_estate([ext]))
    client.extensions.begin_delete(
        "rg1", "Microsoft.Kubernetes", "connectedClusters", "clusterName1", p["extensionName"]
    ).result()
    listed = client.extensions.list("rg1", "Microsoft.Kubernetes", "connectedClusters", "clusterName1")
    assert list(listed) == []


def check_operation_status(emulator: Emulator, example: dict[str, Any]) -> None:
    p = example["parameters"]
    emulator.reset(_connected_cluster_estate())
    client = _ext_client(emulator)
    created = send_raw(
        client,
        "PUT",
        f"{EXT_BASE}/{p['extensionName']}",
        p["api-version"],
        {"properties": {"extensionType": "x.y"}},
    )
    url = created.headers["Azure-AsyncOperation"].split(emulator.base_url)[1]
    status = _wait_terminal(client, url, p["api-version"])
    ours = model_dict(OperationStatusResult, status)
    example_body = model_dict(OperationStatusResult, example["responses"]["200"]["body"])
    assert_carries_example_fields(ours, example_body)
    assert ours["status"] == "Succeeded"
    assert ours["id"].lower().startswith(f"{EXT_BASE}/{p['extensionName']}/operations/".lower())


def check_patch_extension(emulator: Emulator, example: dict[str, Any]) -> None:
    p = example["parameters"]
    ext = {
        "clusterId": CONNECTED,
        "name": p["extensionName"],
        "extensionType": "azuremonitor-containers",
        "autoUpgradeMinorVersion": False,
        "releaseTrain": "Stable",
    }
    emulator.reset(_connected_cluster_estate([ext]))
    client = _ext_client(emulator)
    path = f"{EXT_BASE}/{p['extensionName']}"
    response = send_raw(client, "PATCH", path, p["api-version"], p["patchExtension"])
    assert response.status_code == 202, response.text()
    assert {"Azure-AsyncOperation", "x-ms-async-operation-timeout"} <= set(response.headers)
    request_model = model_dict(Extension, p["patchExtension"])
    assert_carries_example_fields(
        model_dict(Extension, response.json()),
        model_dict(Extension, example["responses"]["202"]["body"]),
        request_model,
    )
    url = response.headers["Azure-AsyncOperation"].split(emulator.base_url)[1]
    assert _wait_terminal(client, url, p["api-version"])["status"] == "Succeeded"
    unchanged = send_raw(client, "PATCH", path, p["api-version"], p["patchExtension"])
    assert unchanged.status_code == 200  # "Extension properties from not updating any property values."
    assert_carries_example_fields(
        model_dict(Extension, unchanged.json()),
        model_dict(Extension, example["responses"]["200"]["body"]),
        request_model,
    )


# ----- authorization ----------------------------------------------------------------------------------


def check_role_assignment_create(emulator: Emulator, example: dict[str, Any]) -> None:
    p = example["parameters"]
    scope = "/" + p["scope"].strip("/")
    sub, rg = scope.split("/")[2], scope.split("/")[4]
    emulator.reset(
        {"subscriptions": [{"subscriptionId": sub, "resourceGroups": [{"name": rg, "location": "eastus"}]}]}
    )
    client = AuthorizationManagementClient(emulator.credential(), sub, **emulator.client_kwargs())
    path = f"{scope}/providers/Microsoft.Authorization/roleAssignments/{p['roleAssignmentName']}"
    request_model = model_dict(RoleAssignment, p["parameters"])
    for expected_status in (201, 200):  # create, then the identical PUT is idempotent
        response = send_raw(client, "PUT", path, p["api-version"], p["parameters"])
        assert response.status_code == expected_status, response.text()
        assert_carries_example_fields(
            model_dict(RoleAssignment, response.json()),
            model_dict(RoleAssignment, example["responses"][str(expected_status)]["body"]),
            request_model,
        )
    got = client.role_assignments.get(scope, p["roleAssignmentName"])
    assert got.principal_id == p["parameters"]["properties"]["principalId"]
    assert got.scope.lower() == scope.lower()


CHECKS: dict[str, Callable[[Emulator, dict[str, Any]], None]] = {
    "containerservice/ManagedClustersGet.json": check_managed_clusters_get,
    "containerservice/ManagedClustersList.json": check_managed_clusters_list,
    "containerservice/ManagedClustersCreate_Update.json": check_managed_clusters_create,
    "containerservice/TrustedAccessRoleBindings_CreateOrUpdate.json": check_trusted_access,
    "kubernetesconfiguration/CreateExtension.json": check_create_extension,
    "kubernetesconfiguration/GetExtension.json": check_get_extension,
    "kubernetesconfiguration/ListExtensions.json": check_list_extensions,
    "kubernetesconfiguration/DeleteExtension.json": check_delete_extension,
    "kubernetesconfiguration/GetExtensionAsyncOperationStatus.json": check_operation_status,
    "kubernetesconfiguration/PatchExtension.json": check_patch_extension,
    "authorization/RoleAssignments_CreateForResource.json": check_role_assignment_create,
    "authorization/RoleAssignments_CreateForResourceGroup.json": check_role_assignment_create,
}


def test_every_example_file_has_a_check(azure_examples: Path) -> None:
    """A new example file in these folders fails here until it gets a check (the swagger isn't an example)."""
    found = {
        f"{folder}/{path.name}"
        for folder in ("containerservice", "kubernetesconfiguration", "authorization")
        for path in (azure_examples / folder).glob("*.json")
        if "responses" in load_example(azure_examples, f"{folder}/{path.name}")
    }
    assert found == set(CHECKS)


@pytest.mark.parametrize("relative", sorted(CHECKS))
def test_official_example(relative: str, emulator: Emulator, azure_examples: Path) -> None:
    CHECKS[relative](emulator, load_example(azure_examples, relative))
