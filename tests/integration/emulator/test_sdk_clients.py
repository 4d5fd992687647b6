"""The product's SDK clients work against the emulator unchanged except base_url, CA bundle and credential:
managed clusters, extensions (LRO to Succeeded, and the ARM failure modes), storage containers, role
assignments."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest
from azure.core.exceptions import HttpResponseError, ResourceExistsError, ResourceNotFoundError
from azure.mgmt.authorization import AuthorizationManagementClient
from azure.mgmt.containerservice import ContainerServiceClient
from azure.mgmt.containerservice.models import ManagedCluster
from azure.mgmt.kubernetesconfiguration import SourceControlConfigurationClient
from azure.mgmt.kubernetesconfiguration.models import Extension
from azure.mgmt.storage import StorageManagementClient

from emulator.server import Emulator
from tests.fixtures.emulator import (
    BACKUP_RG,
    CLUSTER_ID,
    OTHER_SUB,
    STORAGE_ID,
    TEST_ESTATE,
    TEST_RG,
    TEST_SUB,
)

pytestmark = pytest.mark.integration

MC = ("Microsoft.ContainerService", "managedClusters")
BACKUP = Extension(
    extension_type="microsoft.dataprotection.kubernetes",
    auto_upgrade_minor_version=True,
    release_train="stable",
    configuration_settings={"configuration.backupStorageLocation.bucket": "backup-aks1"},
    configuration_protected_settings={"secret": "never-returned"},
)
STORAGE_BLOB_DATA_CONTRIBUTOR = (
    f"/subscriptions/{TEST_SUB}/providers/Microsoft.Authorization/roleDefinitions/"
    "ba92f5b4-2d11-453d-a403-e96b0029c9fe"
)


# ----- managed clusters ---------------------------------------------------------------------------------


def test_cluster_get_and_lists(mgmt_client: Callable[..., Any]) -> None:
    client = mgmt_client(ContainerServiceClient)
    cluster = client.managed_clusters.get(TEST_RG, "aks1")
    assert cluster.provisioning_state == "Succeeded"
    assert cluster.power_state.code == "Running"
    assert cluster.identity.type == "SystemAssigned" and cluster.identity.principal_id
    assert cluster.tags == {"Backup": "Yes", "env": "Prod"}
    assert cluster.agent_pool_profiles[0].os_type == "Linux"
    assert cluster.storage_profile.disk_csi_driver.enabled is True
    assert cluster.storage_profile.snapshot_controller.enabled is True
    names = sorted(c.name for c in client.managed_clusters.list())
    assert names == ["aks-creating", "aks-sp", "aks-stopped", "aks1"]
    assert sorted(c.name for c in client.managed_clusters.list_by_resource_group(TEST_RG)) == names
    sp = client.managed_clusters.get(TEST_RG, "aks-sp")
    assert sp.identity is None and sp.service_principal_profile.client_id


def test_paths_are_case_insensitive(mgmt_client: Callable[..., Any], emulator: Emulator) -> None:
    from tests.integration.emulator.helpers import send_raw

    client = mgmt_client(ContainerServiceClient)
    path = (
        f"/SUBSCRIPTIONS/{TEST_SUB}/resourcegroups/RG1/providers/microsoft.containerservice/MANAGEDCLUSTERS/"
    )
    path += "aks1"
    response = send_raw(client, "GET", path, "2024-05-01")
    assert response.status_code == 200 and response.json()["name"] == "aks1"


def test_unknown_cluster_is_404_with_arm_envelope(mgmt_client: Callable[..., Any]) -> None:
    client = mgmt_client(ContainerServiceClient)
    with pytest.raises(ResourceNotFoundError) as info:
        client.managed_clusters.get(TEST_RG, "nope")
    assert info.value.error.code == "ResourceNotFound"
    with pytest.raises(ResourceNotFoundError) as info:
        client.managed_clusters.get("no-such-rg", "aks1")
    assert info.value.error.code == "ResourceGroupNotFound"


def test_cluster_create_lifecycle_retag_and_delete(
    mgmt_client: Callable[..., Any], emulator: Emulator
) -> None:
    client = mgmt_client(ContainerServiceClient)
    body = ManagedCluster(
        {
            "location": "eastus",
            "tags": {"Backup": "yes"},
            "identity": {"type": "SystemAssigned"},
            "properties": {
                "dnsPrefix": "new",
                "agentPoolProfiles": [
                    {"name": "sys", "count": 1, "vmSize": "Standard_D2s_v3", "mode": "System"}
                ],
            },
        }
    )
    poller = client.managed_clusters.begin_create_or_update(TEST_RG, "aks-new", body)
    assert client.managed_clusters.get(TEST_RG, "aks-new").provisioning_state == "Creating"
    created = poller.result()
    assert created.provisioning_state == "Succeeded"
    assert created.agent_pool_profiles[0].os_sku == "Ubuntu"
    retagged = client.managed_clusters.begin_update_tags(
        TEST_RG, "aks-new", {"tags": {"Backup": "no"}}
    ).result()
    assert retagged.tags == {"Backup": "no"} and retagged.provisioning_state == "Succeeded"
    client.managed_clusters.begin_delete(TEST_RG, "aks-new").result()
    with pytest.raises(ResourceNotFoundError):
        client.managed_clusters.get(TEST_RG, "aks-new")
    operations = [c["operation"] for c in emulator.admin.calls()]
    assert "ManagedClusters_OperationStatus" in operations


def test_cluster_put_rejects_malformed_bodies(mgmt_client: Callable[..., Any]) -> None:
    from tests.integration.emulator.helpers import send_raw

    client = mgmt_client(ContainerServiceClient)
    path = f"/subscriptions/{TEST_SUB}/resourceGroups/{TEST_RG}/providers/Microsoft.ContainerService/"
    path += "managedClusters/x1"
    cases = [
        (b"{not json", "InvalidRequestContent"),
        ([1, 2], "InvalidRequestContent"),
        ({"tags": {}}, "LocationRequired"),
        ({"location": "eastus", "identity": {"type": "Magic"}}, "InvalidParameter"),
        ({"location": "eastus", "tags": {"a/b": "x"}}, "InvalidTagNameCharacters"),
    ]
    for body, code in cases:
        if isinstance(body, bytes):
            from azure.core.rest import HttpRequest

            request = HttpRequest("PUT", f"{path}?api-version=2024-05-01", content=body)
            request.headers["Content-Type"] = "application/json"
            response = client.send_request(request)
        else:
            response = send_raw(client, "PUT", path, "2024-05-01", body)
        assert response.status_code == 400, (body, response.text())
        assert response.json()["error"]["code"] == code


def test_cluster_busy_rejects_second_write(mgmt_client: Callable[..., Any]) -> None:
    client = mgmt_client(ContainerServiceClient)
    with pytest.raises(HttpResponseError) as info:
        client.managed_clusters.begin_update_tags(TEST_RG, "aks-creating", {"tags": {"a": "b"}}).result()
    assert info.value.status_code == 409 and info.value.error.code == "OperationNotAllowed"


# ----- extensions -----------------------------------------------------------------------------------------


def test_extension_create_polls_to_succeeded(mgmt_client: Callable[..., Any], emulator: Emulator) -> None:
    client = mgmt_client(SourceControlConfigurationClient)
    started = time.monotonic()
    poller = client.extensions.begin_create(TEST_RG, *MC, "aks1", "azure-aks-backup", BACKUP)
    ext = poller.result()
    assert time.monotonic() - started < 5
    assert ext.provisioning_state == "Succeeded"
    assert ext.extension_type == "microsoft.dataprotection.kubernetes"
    assert ext.aks_assigned_identity.principal_id
    assert ext.configuration_settings == BACKUP.configuration_settings
    assert not ext.configuration_protected_settings
    listed = list(client.extensions.list(TEST_RG, *MC, "aks1"))
    assert [e.name for e in listed] == ["azure-aks-backup"]
    calls = [c for c in emulator.admin.calls() if c["operation"] == "OperationStatus_Get"]
    assert calls, "the SDK polled the Azure-AsyncOperation endpoint"
    client.extensions.begin_delete(TEST_RG, *MC, "aks1", "azure-aks-backup").result()
    assert list(client.extensions.list(TEST_RG, *MC, "aks1")) == []


@pytest.mark.parametrize("cluster", ["aks-stopped", "aks-creating"])
def test_extension_refused_on_cluster_not_running(mgmt_client: Callable[..., Any], cluster: str) -> None:
    client = mgmt_client(SourceControlConfigurationClient)
    with pytest.raises(HttpResponseError) as info:
        client.extensions.begin_create(TEST_RG, *MC, cluster, "azure-aks-backup", BACKUP).result()
    assert info.value.status_code == 409
    assert info.value.error.code == "OperationNotAllowed"


def test_extension_on_missing_cluster_is_404(mgmt_client: Callable[..., Any]) -> None:
    client = mgmt_client(SourceControlConfigurationClient)
    with pytest.raises(ResourceNotFoundError) as info:
        client.extensions.get(TEST_RG, *MC, "ghost", "azure-aks-backup")
    assert info.value.error.code == "ParentResourceNotFound"


def test_extension_fails_when_a_fault_rule_says_so(
    mgmt_client: Callable[..., Any], emulator: Emulator
) -> None:
    emulator.admin.add_fault(
        method="PUT",
        path="*/extensions/azure-aks-backup",
        action="fail-provisioning",
        code="ExtensionOperationFailed",
        message="helm install timed out",
        count=1,
    )
    client = mgmt_client(SourceControlConfigurationClient)
    with pytest.raises(HttpResponseError) as info:
        client.extensions.begin_create(TEST_RG, *MC, "aks1", "azure-aks-backup", BACKUP).result()
    assert "helm install timed out" in str(info.value)
    failed = client.extensions.get(TEST_RG, *MC, "aks1", "azure-aks-backup")
    assert failed.provisioning_state == "Failed"
    assert failed.error_info.code == "ExtensionOperationFailed"
    # the rule fired once; a retry succeeds
    assert client.extensions.begin_create(
        TEST_RG, *MC, "aks1", "azure-aks-backup", BACKUP
    ).result().provisioning_state == ("Succeeded")


def test_missing_registration_is_auto_registered_by_azure_mgmt_core(
    mgmt_client: Callable[..., Any], emulator: Emulator
) -> None:
    """azure-mgmt-core POSTs register and polls the provider (it sleeps 10 s between polls) then retries."""
    client = mgmt_client(SourceControlConfigurationClient, OTHER_SUB)
    assert list(client.extensions.list(TEST_RG, *MC, "aks-other")) == []
    ops = [c["operation"] for c in emulator.admin.calls()]
    assert ops[0] == "Extensions_List" and "Providers_Register" in ops and ops[-1] == "Extensions_List"
    statuses = [c["status"] for c in emulator.admin.calls() if c["operation"] == "Extensions_List"]
    assert statuses == [409, 200]


def test_registration_can_hang_in_registering(emulator: Emulator) -> None:
    """An estate can make registration never finish; raw ARM calls show what the SDK's endless poll sees."""
    from tests.integration.emulator.helpers import raw_https

    emulator.admin.set_provider(
        OTHER_SUB, "Microsoft.KubernetesConfiguration", "NotRegistered", register_completes=False
    )
    base = f"/subscriptions/{OTHER_SUB}/providers/Microsoft.KubernetesConfiguration"
    cluster = f"/subscriptions/{OTHER_SUB}/resourceGroups/{TEST_RG}/providers/Microsoft.ContainerService/"
    cluster += "managedClusters"
    ext_list = (
        f"{cluster}/aks-other/providers/Microsoft.KubernetesConfiguration/extensions?api-version=2023-05-01"
    )

    def call(method: str, path: str) -> tuple[int, dict[str, str], Any]:
        return raw_https(emulator.base_url, emulator.ca_bundle, method, path)

    status, _, body = call("GET", ext_list)
    assert status == 409 and body["error"]["code"] == "MissingSubscriptionRegistration"
    assert "'Microsoft.KubernetesConfiguration'" in body["error"]["message"]
    assert call("POST", base + "/register?api-version=2016-02-01")[2]["registrationState"] == "Registering"
    time.sleep(0.3)
    assert call("GET", base + "?api-version=2016-02-01")[2]["registrationState"] == "Registering"
    assert call("GET", ext_list)[0] == 409


# ----- storage and role assignments ---------------------------------------------------------------------


def test_storage_account_and_containers(mgmt_client: Callable[..., Any]) -> None:
    client = mgmt_client(StorageManagementClient)
    account = client.storage_accounts.get_properties(BACKUP_RG, "stbackupeastus")
    assert account.location == "eastus" and account.kind == "StorageV2"
    assert account.primary_endpoints.blob == "https://stbackupeastus.blob.core.windows.net/"
    created = client.blob_containers.create(BACKUP_RG, "stbackupeastus", "backup-aks1-0a1b2c3d", {})
    assert created.name == "backup-aks1-0a1b2c3d"
    again = client.blob_containers.create(BACKUP_RG, "stbackupeastus", "backup-aks1-0a1b2c3d", {})
    assert again.id == created.id
    got = client.blob_containers.get(BACKUP_RG, "stbackupeastus", "backup-aks1-0a1b2c3d")
    assert got.public_access == "None"
    with pytest.raises(ResourceNotFoundError):
        client.blob_containers.get(BACKUP_RG, "stbackupeastus", "nothere")


@pytest.mark.parametrize(
    "name, ok",
    [
        ("abc", True),
        ("a" * 63, True),
        ("a-1-b", True),
        ("ab", False),
        ("a" * 64, False),
        ("Abc", False),
        ("a--b", False),
        ("-ab", False),
        ("ab-", False),
        ("a_b", False),
    ],
)
def test_container_name_rules(mgmt_client: Callable[..., Any], name: str, ok: bool) -> None:
    client = mgmt_client(StorageManagementClient)
    if ok:
        assert client.blob_containers.create(BACKUP_RG, "stbackupeastus", name, {}).name == name
    else:
        with pytest.raises(HttpResponseError) as info:
            client.blob_containers.create(BACKUP_RG, "stbackupeastus", name, {})
        assert info.value.status_code == 400 and info.value.error.code == "ContainerOperationFailure"


def test_role_assignments_idempotent_and_conflicting(mgmt_client: Callable[..., Any]) -> None:
    client = mgmt_client(AuthorizationManagementClient)
    params = {
        "role_definition_id": STORAGE_BLOB_DATA_CONTRIBUTOR,
        "principal_id": "4f0c1c7b-7d25-4c4f-9d44-3d3b3c1f0e11",
        "principal_type": "ServicePrincipal",
    }
    name = "2b1f3e0a-98c1-4b5e-8d1b-0f6a1e2d3c4b"
    first = client.role_assignments.create(STORAGE_ID, name, params)
    second = client.role_assignments.create(STORAGE_ID, name, params)
    assert first.id == second.id and first.scope == STORAGE_ID
    with pytest.raises(ResourceExistsError) as info:
        client.role_assignments.create(STORAGE_ID, "9c1f3e0a-98c1-4b5e-8d1b-0f6a1e2d3c4b", params)
    assert info.value.error.code == "RoleAssignmentExists"
    with pytest.raises(ResourceExistsError) as info:
        client.role_assignments.create(
            STORAGE_ID, name, {**params, "principal_id": "5f0c1c7b-7d25-4c4f-9d44-3d3b3c1f0e11"}
        )
    assert info.value.error.code == "RoleAssignmentUpdateNotPermitted"
    with pytest.raises(HttpResponseError) as info:
        client.role_assignments.create(STORAGE_ID, "not-a-guid", params)
    assert info.value.error.code == "InvalidRoleAssignmentId"
    principal_filter = f"principalId eq '{params['principal_id']}'"
    assert [r.name for r in client.role_assignments.list_for_scope(STORAGE_ID, filter=principal_filter)] == [
        name
    ]
    assert client.role_assignments.get(STORAGE_ID, name).principal_id == params["principal_id"]
    client.role_assignments.delete(STORAGE_ID, name)
    with pytest.raises(ResourceNotFoundError):
        client.role_assignments.get(STORAGE_ID, name)


def test_extension_fails_on_windows_only_cluster(mgmt_client: Callable[..., Any], emulator: Emulator) -> None:
    windows = f"/subscriptions/{TEST_SUB}/resourceGroups/{TEST_RG}/providers/Microsoft.ContainerService/"
    windows += "managedClusters/aks-win"
    emulator.admin.put_resources(
        {
            "clusters": [
                {"id": windows, "location": "eastus", "pools": [{"osType": "Windows", "name": "npwin"}]}
            ]
        }
    )
    client = mgmt_client(SourceControlConfigurationClient)
    with pytest.raises(HttpResponseError) as info:
        client.extensions.begin_create(TEST_RG, *MC, "aks-win", "azure-aks-backup", BACKUP).result()
    assert "no Linux amd64 node pool" in str(info.value)
    assert client.extensions.get(TEST_RG, *MC, "aks-win", "azure-aks-backup").provisioning_state == "Failed"


@pytest.mark.parametrize(
    ("pools", "identity", "outcome"),
    [
        ([{"osType": "Linux", "vmSize": "Standard_D4ps_v5"}], "SystemAssigned", "no Linux amd64 node pool"),
        (
            [{"osType": "Linux", "vmSize": "Standard_D4ps_v5"}, {"osType": "Windows", "name": "npwin"}],
            "SystemAssigned",
            "no Linux amd64 node pool",
        ),
        (
            [{"osType": "Linux", "vmSize": "Standard_D4s_v5", "arch": "arm64"}],
            "UserAssigned",
            "no Linux amd64",
        ),
        ([{"osType": "Linux", "vmSize": "Standard_D4ps_v5", "arch": "amd64"}], "SystemAssigned", "Succeeded"),
        (
            [
                {"osType": "Linux", "vmSize": "Standard_D4ps_v5"},
                {"osType": "Linux", "vmSize": "Standard_D4s_v5"},
            ],
            "SystemAssigned",
            "Succeeded",
        ),
        ([{"osType": "Linux", "vmSize": "Standard_D4s_v5"}], "None", "service principal"),
    ],
)
def test_extension_install_follows_the_blocking_rules(
    mgmt_client: Callable[..., Any], emulator: Emulator, pools: list[Any], identity: str, outcome: str
) -> None:
    """Arm64-only and service-principal clusters end Failed like the real Helm install; explicit arch wins."""
    cid = f"/subscriptions/{TEST_SUB}/resourceGroups/{TEST_RG}/providers/Microsoft.ContainerService/"
    cid += "managedClusters/aks-x"
    emulator.admin.put_resources(
        {"clusters": [{"id": cid, "location": "eastus", "identity": identity, "pools": pools}]}
    )
    client = mgmt_client(SourceControlConfigurationClient)
    if outcome == "Succeeded":
        done = client.extensions.begin_create(TEST_RG, *MC, "aks-x", "azure-aks-backup", BACKUP).result()
        assert done.provisioning_state == "Succeeded"
        return
    with pytest.raises(HttpResponseError) as info:
        client.extensions.begin_create(TEST_RG, *MC, "aks-x", "azure-aks-backup", BACKUP).result()
    assert outcome in str(info.value)
    got = client.extensions.get(TEST_RG, *MC, "aks-x", "azure-aks-backup")
    assert got.provisioning_state == "Failed"
    assert got.error_info.code == "ExtensionOperationFailed" and outcome in got.error_info.message
    assert got.statuses[0].level == "Error" and outcome in got.statuses[0].message


def test_role_assignment_with_unknown_role_definition_is_400(
    mgmt_client: Callable[..., Any], emulator: Emulator
) -> None:
    client = mgmt_client(AuthorizationManagementClient)
    unknown = STORAGE_BLOB_DATA_CONTRIBUTOR.replace(
        "ba92f5b4-2d11-453d-a403-e96b0029c9fe", "1" * 8 + "-1111-1111-1111-" + "1" * 12
    )
    params = {"role_definition_id": unknown, "principal_id": "4f0c1c7b-7d25-4c4f-9d44-3d3b3c1f0e11"}
    with pytest.raises(HttpResponseError) as info:
        client.role_assignments.create(STORAGE_ID, "2b1f3e0a-98c1-4b5e-8d1b-0f6a1e2d3c4b", params)
    assert info.value.status_code == 400 and info.value.error.code == "RoleDefinitionDoesNotExist"
    # built-in roles exist; an estate can declare custom ones
    reader = STORAGE_BLOB_DATA_CONTRIBUTOR.replace(
        "ba92f5b4-2d11-453d-a403-e96b0029c9fe", "acdd72a7-3385-48ef-bd42-f606fba81ae7"
    )
    client.role_assignments.create(
        STORAGE_ID, "3b1f3e0a-98c1-4b5e-8d1b-0f6a1e2d3c4b", {**params, "role_definition_id": reader}
    )
    emulator.reset({**TEST_ESTATE, "roleDefinitions": ["11111111-1111-1111-1111-111111111111"]})
    assert client.role_assignments.create(STORAGE_ID, "2b1f3e0a-98c1-4b5e-8d1b-0f6a1e2d3c4b", params).name


@pytest.mark.parametrize("tags", [{"Backup": "yes", "backup": "no"}, {"env": "a", "ENV": "a"}])
def test_tags_differing_only_by_case_are_400(mgmt_client: Callable[..., Any], tags: dict[str, str]) -> None:
    client = mgmt_client(ContainerServiceClient)
    with pytest.raises(HttpResponseError) as info:
        client.managed_clusters.begin_update_tags(TEST_RG, "aks1", {"tags": tags}).result()
    assert info.value.status_code == 400 and info.value.error.code == "InvalidTagNameCaseDuplicate"
    cluster = client.managed_clusters.get(TEST_RG, "aks1")
    cluster.tags = tags
    with pytest.raises(HttpResponseError) as info:
        client.managed_clusters.begin_create_or_update(TEST_RG, "aks1", cluster).result()
    assert info.value.status_code == 400 and info.value.error.code == "InvalidTagNameCaseDuplicate"
    assert client.managed_clusters.get(TEST_RG, "aks1").tags == {"Backup": "Yes", "env": "Prod"}


def test_a_rewrite_rule_replaces_fields_of_the_real_answer(
    mgmt_client: Callable[..., Any], emulator: Emulator
) -> None:
    """Fault action ``rewrite``: the call runs normally and the answer names something else (for clients that
    must check the id they get back, issue 15 item 5); ``count`` bounds it like any rule."""
    other = CLUSTER_ID.replace(f"/{TEST_RG}/", "/rg-other/")
    rule = emulator.admin.add_fault(
        method="GET", path=CLUSTER_ID, action="rewrite", set={"id": other}, count=1
    )
    aks = mgmt_client(ContainerServiceClient)
    assert aks.managed_clusters.get(TEST_RG, "aks1").id == other
    assert aks.managed_clusters.get(TEST_RG, "aks1").id.lower() == CLUSTER_ID.lower()  # count spent
    assert emulator.admin.faults()[0]["fired"] == 1 and rule["set"] == {"id": other}
    with pytest.raises(Exception, match="set"):
        emulator.admin.add_fault(method="GET", path="*", action="respond", set={"id": "x"})
