# ruff: noqa: E501
"""Preflight against the local Azure, with the real SDK clients: each blocker is detected from emulator data,
the emulator refuses the install the same way Azure does (Gatekeeper denial → Failed; Azure-side Deny → 403),
the failure is attributed to the finding, and after the operator's fix there is no finding and the install
succeeds. A Warn/Audit assignment is reported and does not block (and the install goes through)."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from azure.core.exceptions import HttpResponseError
from azure.core.rest import HttpRequest
from azure.mgmt.containerservice import ContainerServiceClient
from azure.mgmt.kubernetesconfiguration import SourceControlConfigurationClient
from azure.mgmt.resource.policy import PolicyClient
from azure.mgmt.resourcegraph import ResourceGraphClient
from azure.mgmt.storage import StorageManagementClient

from emulator.bodies import storage_account_body
from emulator.estate import cluster_from_shorthand
from remediator.adapters.graph import ResourceGraphInventory
from remediator.adapters.policy_assignments import PolicyAssignmentReader, read_providers, read_safeguards
from remediator.core.extension_body import backup_extension_body
from remediator.core.ids import parse_storage_account_id
from remediator.core.preflight import (
    FindingCode,
    PreflightInput,
    Severity,
    StorageAccount,
    attribute_failure,
    blocking,
    preflight,
)
from remediator.core.snapshot import ClusterSnapshot
from tests.fixtures.emulator import (
    CLUSTER_ID,
    OTHER_SUB,
    STORAGE_ID,
    TEST_ESTATE,
    TEST_RG,
    TEST_SUB,
    TEST_TENANT,
)

pytestmark = pytest.mark.integration

IMAGES = "/providers/Microsoft.Authorization/policyDefinitions/febd0533-8e55-448f-b837-bd0e06f16469"
AUTOMOUNT = "/providers/Microsoft.Authorization/policyDefinitions/423dd1ba-798e-40e4-9c4d-b6902674b423"
SAFEGUARDS_SET = (
    "/providers/Microsoft.Authorization/policySetDefinitions/c047ea8e-9c78-49b2-958b-37e56d291a44"
)
NOT_ALLOWED = "/providers/Microsoft.Authorization/policyDefinitions/6c112d4e-5bc7-47ae-a041-ea2d9dccd749"
EXT_TYPE = "Microsoft.KubernetesConfiguration/extensions"
SUB_SCOPE = f"/subscriptions/{TEST_SUB}"
MG_SCOPE = "/providers/Microsoft.Management/managementGroups/corp"


def estate(*, addon: bool = True, storage: dict[str, Any] | None = None) -> dict[str, Any]:
    out = copy.deepcopy(TEST_ESTATE)
    body = cluster_from_shorthand(
        {"id": CLUSTER_ID, "location": "eastus", "tags": {"Backup": "Yes"}}, tenant=TEST_TENANT
    )
    body["properties"]["addonProfiles"] = {"azurepolicy": {"enabled": addon, "config": None}}
    out["clusters"] = [body, *out["clusters"][1:]]
    out["managementGroups"] = {"corp": [TEST_SUB]}
    if storage is not None:
        out["storageAccounts"] = [storage]
    return out


@pytest.fixture
def clients(emulator, mgmt_client):
    emulator.reset(estate=estate())
    return {
        "policy": mgmt_client(PolicyClient),
        "graph": ResourceGraphClient(emulator.credential(), **emulator.client_kwargs()),
        "aks": mgmt_client(ContainerServiceClient),
        "ext": mgmt_client(SourceControlConfigurationClient),
        "storage": mgmt_client(StorageManagementClient),
    }


def snapshot(clients) -> ClusterSnapshot:
    body = clients["aks"].managed_clusters.get(
        TEST_RG, "aks1", cls=lambda pipeline_response, _d, _h: pipeline_response.http_response.json()
    )
    return ClusterSnapshot.from_arm(body)


def run_preflight(clients, **extra: Any):
    reader = PolicyAssignmentReader(
        ResourceGraphInventory(clients["graph"], prefetch=False), policy_client=clients["policy"]
    )
    ancestors = reader.management_group_ancestors([TEST_SUB])
    groups = ancestors.get(TEST_SUB, ())
    policy = reader.read(subscriptions=[TEST_SUB], management_groups=groups)
    cluster = snapshot(clients)
    inp = PreflightInput(
        cluster=cluster,
        management_groups=groups,
        policy=policy,
        safeguards=read_safeguards(clients["aks"], cluster),
        extension_settings=extra.pop(
            "extension_settings", {"configuration.backupStorageLocation.config.useAAD": "true"}
        ),
        **extra,
    )
    return preflight(inp), reader


def install(clients) -> tuple[str, str | None]:
    """PUT the backup extension as the product does; return (final provisioningState, error message)."""
    body = backup_extension_body(
        storage_account=parse_storage_account_id(STORAGE_ID),
        container="aks1-rg1",
        tenant_id=TEST_TENANT,
        blob_endpoint="https://stbackupeastus.blob.core.windows.net/",
    )
    poller = clients["ext"].extensions.begin_create(
        TEST_RG,
        "Microsoft.ContainerService",
        "managedClusters",
        "aks1",
        "azure-aks-backup",
        body,
        polling_interval=0.01,
    )
    try:
        poller.result()
    except HttpResponseError as exc:  # the LRO ends Failed
        return "Failed", str(exc)
    ext = clients["ext"].extensions.get(
        TEST_RG, "Microsoft.ContainerService", "managedClusters", "aks1", "azure-aks-backup"
    )
    message = ext.error_info.message if ext.error_info else None
    return ext.provisioning_state, message


def assign(clients, name: str, definition: str, scope: str = SUB_SCOPE, **params: Any) -> None:
    clients["policy"].policy_assignments.create(
        scope,
        name,
        {
            "properties": {
                "policyDefinitionId": definition,
                "parameters": {k: {"value": v} for k, v in params.items()},
            }
        },
    )


def test_allowed_images_deny_is_found_blocks_the_install_and_clears_after_the_fix(clients):
    assign(clients, "only-acr", IMAGES, allowedContainerImagesRegex=r"^myacr\.azurecr\.io/.+$")
    findings, reader = run_preflight(clients)
    (finding,) = blocking(findings)
    assert finding.code is FindingCode.GATEKEEPER_POLICY
    assert finding.evidence["assignmentName"] == "only-acr"
    assert "allowedContainerImagesRegex" in finding.remedy and "only-acr" in finding.remedy
    assert reader.builtin_reads == 0  # a catalog definition: nothing read beyond the assignments

    state, message = install(clients)
    assert state == "Failed"
    assert (
        'admission webhook "validation.gatekeeper.sh" denied the request: [azurepolicy-k8sazurev2containerallowedimag-'
        in message
    )
    assert attribute_failure(message, findings) == finding

    assign(clients, "only-acr", IMAGES, allowedContainerImagesRegex=finding.evidence["suggested"])
    findings, _ = run_preflight(clients)
    assert findings == ()
    assert install(clients) == ("Succeeded", None)


# the initiative's parameters without a default must be given, as ARM requires (AKS_Safeguards.json)
SAFEGUARDS_REQUIRED = {"allowedUsers": [], "allowedGroups": [], "labels": [], "reservedTaints": []}


def test_safeguards_initiative_at_a_management_group_is_found_through_the_group_scope(clients):
    assign(
        clients,
        "safeguards",
        SAFEGUARDS_SET,
        MG_SCOPE,
        effect="Deny",
        allowedContainerImagesRegex=r"^myacr\.azurecr\.io/.+$",
        **SAFEGUARDS_REQUIRED,
    )
    findings, _ = run_preflight(clients)
    params = {f.evidence["parameter"] for f in blocking(findings)}
    assert params == {"allowedContainerImagesRegex", "excludedNamespaces"}
    assert all(f.evidence["assignmentScope"] == MG_SCOPE for f in findings)
    state, message = install(clients)
    assert state == "Failed" and attribute_failure(message, findings) in findings

    assign(
        clients,
        "safeguards",
        SAFEGUARDS_SET,
        MG_SCOPE,
        effect="Deny",
        allowedContainerImagesRegex=".*",
        excludedNamespaces=["kube-system", "gatekeeper-system", "azure-arc", "dataprotection-microsoft"],
        **SAFEGUARDS_REQUIRED,
    )
    assert run_preflight(clients)[0] == ()
    assert install(clients)[0] == "Succeeded"


def test_an_audit_assignment_is_reported_and_does_not_block(clients):
    assign(clients, "automount-audit", AUTOMOUNT)  # default effect Audit
    findings, _ = run_preflight(clients)
    (finding,) = findings
    assert finding.severity is Severity.WARN and blocking(findings) == ()
    assert install(clients)[0] == "Succeeded"


def test_deny_with_the_addon_off_only_warns_and_the_install_succeeds(emulator, clients):
    emulator.reset(estate=estate(addon=False))
    assign(clients, "only-acr", IMAGES, allowedContainerImagesRegex="^x$")
    findings, _ = run_preflight(clients)
    assert [f.severity for f in findings] == [Severity.WARN]
    assert install(clients)[0] == "Succeeded"


def safeguards(clients, method: str, body: dict[str, Any] | None = None):
    url = f"{CLUSTER_ID}/providers/Microsoft.ContainerService/deploymentSafeguards/default?api-version=2025-07-01"
    response = clients["aks"].send_request(HttpRequest(method, url, json=body))
    response.raise_for_status()
    return response


def test_deployment_safeguards_enforce_blocks_warn_warns_and_excluding_the_namespace_fixes_it(clients):
    safeguards(clients, "PUT", {"properties": {"level": "Enforce", "excludedNamespaces": ["team-a"]}})
    findings, _ = run_preflight(clients)
    (finding,) = findings
    assert finding.code is FindingCode.DEPLOYMENT_SAFEGUARDS and finding.blocks
    assert finding.remedy.endswith("--excluded-ns team-a dataprotection-microsoft")
    state, message = install(clients)
    assert state == "Failed" and attribute_failure(message, findings) == finding

    safeguards(clients, "PUT", {"properties": {"level": "Warn"}})
    assert [f.severity for f in run_preflight(clients)[0]] == [Severity.WARN]

    safeguards(
        clients,
        "PUT",
        {"properties": {"level": "Enforce", "excludedNamespaces": finding.evidence["suggested"]}},
    )
    assert run_preflight(clients)[0] == ()
    assert install(clients)[0] == "Succeeded"


def test_azure_side_deny_on_extensions_is_found_refuses_the_put_and_clears_after_the_fix(clients):
    assign(
        clients, "no-extensions", NOT_ALLOWED, listOfResourceTypesNotAllowed=[EXT_TYPE, "Microsoft.Web/sites"]
    )
    findings, reader = run_preflight(clients)
    (finding,) = findings
    assert finding.code is FindingCode.EXTENSION_DENIED_BY_POLICY and finding.blocks
    assert finding.evidence["suggested"] == ["Microsoft.Web/sites"]
    assert reader.builtin_reads == 1  # the built-in definition came from PolicyClient (not in Resource Graph)

    with pytest.raises(HttpResponseError) as denied:
        install(clients)
    assert denied.value.status_code == 403 and "RequestDisallowedByPolicy" in str(denied.value)
    assert attribute_failure(str(denied.value), findings) == finding

    assign(clients, "no-extensions", NOT_ALLOWED, listOfResourceTypesNotAllowed=finding.evidence["suggested"])
    assert run_preflight(clients)[0] == ()
    assert install(clients)[0] == "Succeeded"


def test_a_custom_deny_definition_is_read_from_resource_graph_and_evaluated(clients):
    rule = {
        "if": {
            "allOf": [
                {"field": "type", "equals": EXT_TYPE},
                {"field": f"{EXT_TYPE}/extensionType", "equals": "microsoft.dataprotection.kubernetes"},
            ]
        },
        "then": {"effect": "deny"},
    }
    clients["policy"].policy_definitions.create_or_update(
        "deny-backup-ext",
        {"properties": {"mode": "All", "displayName": "No backup extension", "policyRule": rule}},
    )
    assign(
        clients,
        "no-backup",
        f"{SUB_SCOPE}/providers/Microsoft.Authorization/policyDefinitions/deny-backup-ext",
    )
    findings, reader = run_preflight(clients)
    (finding,) = findings
    assert (
        finding.code is FindingCode.EXTENSION_DENIED_BY_POLICY
        and "az policy exemption create" in finding.remedy
    )
    assert reader.builtin_reads == 0
    with pytest.raises(HttpResponseError):
        install(clients)


def test_storage_without_shared_keys_and_behind_a_firewall_is_found(emulator, clients):
    body = storage_account_body(
        subscription_id=TEST_SUB,
        resource_group="rg-backup",
        name="stbackupeastus",
        location="eastus",
        kind="StorageV2",
        sku="Standard_LRS",
        tags=None,
    )
    body["properties"]["allowSharedKeyAccess"] = False
    body["properties"]["networkAcls"] = {
        "defaultAction": "Deny",
        "bypass": "None",
        "virtualNetworkRules": [],
        "ipRules": [],
    }
    emulator.reset(estate=estate(storage=body))
    account = StorageAccount.from_arm(
        dict(clients["storage"].storage_accounts.get_properties("rg-backup", "stbackupeastus"))
    )
    findings, _ = run_preflight(clients, storage=account, extension_settings={})
    assert [f.code for f in blocking(findings)] == [
        FindingCode.STORAGE_SHARED_KEY_DISABLED,
        FindingCode.STORAGE_FIREWALL,
    ]
    findings, _ = run_preflight(
        clients,
        storage=account,
        extension_settings={"configuration.backupStorageLocation.config.useAAD": "true"},
    )
    assert [f.code for f in findings] == [FindingCode.STORAGE_FIREWALL]


def test_unregistered_provider_is_found(mgmt_client, clients):
    providers = read_providers(
        clients["aks"], OTHER_SUB, ["Microsoft.KubernetesConfiguration", "Microsoft.DataProtection"]
    )
    assert providers["Microsoft.KubernetesConfiguration"] == "NotRegistered"
    findings, _ = run_preflight(clients, providers=providers, protecting=True)
    assert {f.evidence["provider"] for f in findings if f.code is FindingCode.PROVIDER_NOT_REGISTERED} >= {
        "Microsoft.KubernetesConfiguration"
    }
