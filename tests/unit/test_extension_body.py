"""The extension body equals what the built-in DINE template deploys (read from the official policy JSON)."""

import pytest

from remediator.core.catalog import DEFAULT_EXTENSION_NAME, EXTENSION_TYPE
from remediator.core.extension_body import backup_extension_body
from remediator.core.ids import parse_resource_id, parse_storage_account_id
from remediator.core.naming import backup_container_name
from tests.unit.dine_template import dine_rendered_extension

SA_ID = (
    "/subscriptions/11111111-1111-1111-1111-111111111111/resourceGroups/backup-rg"
    "/providers/Microsoft.Storage/storageAccounts/backupwesteu"
)
BLOB = "https://backupwesteu.blob.core.windows.net/"
TENANT = "72f988bf-86f1-41af-91ab-2d7cd011db47"


@pytest.fixture(
    params=[
        "Kubernetes_InstallAzureBackupExtensionWithTag_DINE.json",
        "Kubernetes_InstallAzureBackupExtensionWithoutTag_DINE.json",
    ]
)
def policy_file(request, azure_examples):
    return azure_examples / "azure-policy" / request.param


def test_body_equals_the_dine_template(policy_file):
    cluster_name = "aks-prod-1"
    cluster_id = "/subscriptions/s/resourceGroups/rg/providers/"
    f"Microsoft.ContainerService/managedClusters/{cluster_name}"
    dine = dine_rendered_extension(
        policy_file, cluster_name=cluster_name, storage_account_id=SA_ID, tenant_id=TENANT, blob_endpoint=BLOB
    )
    container = backup_container_name(cluster_name, cluster_id)
    ours = backup_extension_body(
        storage_account=parse_storage_account_id(SA_ID),
        container=container,
        tenant_id=TENANT,
        blob_endpoint=BLOB,
    )["properties"]

    assert dine["name"] == DEFAULT_EXTENSION_NAME
    dine_props = dine["properties"]
    assert ours["extensionType"] == dine_props["extensionType"] == EXTENSION_TYPE
    assert ours["releaseTrain"] == dine_props["releaseTrain"] == "stable"
    # The template writes the string "true"; ARM's boolean property receives true.
    assert ours["autoUpgradeMinorVersion"] is True and dine_props["autoUpgradeMinorVersion"] == "true"
    assert set(ours) == set(dine_props)
    dine_settings = dine_props["configurationSettings"]
    assert set(ours["configurationSettings"]) == set(dine_settings)
    bucket = "configuration.backupStorageLocation.bucket"
    for key, value in dine_settings.items():
        if key != bucket:
            assert ours["configurationSettings"][key] == value, key
    # The one deliberate difference: the container name keeps the DINE's name as prefix and adds a
    # cluster hash.
    assert dine_settings[bucket] == "azure-aks-backup-aks-prod-1"
    assert ours["configurationSettings"][bucket].startswith(dine_settings[bucket] + "-")


def test_extra_settings_are_added_but_cannot_override_dine_keys():
    target = parse_storage_account_id(SA_ID)
    body = backup_extension_body(
        storage_account=target,
        container="c-1",
        tenant_id=TENANT,
        blob_endpoint=BLOB,
        extra_settings={"resources.limits.memory": "2Gi"},
    )
    assert body["properties"]["configurationSettings"]["resources.limits.memory"] == "2Gi"
    with pytest.raises(ValueError, match="credentials.tenantId"):
        backup_extension_body(
            storage_account=target,
            container="c-1",
            tenant_id=TENANT,
            blob_endpoint=BLOB,
            extra_settings={"credentials.tenantId": "other"},
        )


@pytest.mark.parametrize(
    "bad",
    [
        "/subscriptions/11111111-1111-1111-1111-111111111111/resourceGroups/rg",
        SA_ID + "/blobServices/default",
        SA_ID.replace("Microsoft.Storage", "Microsoft.Compute"),
    ],
)
def test_the_body_refuses_an_id_that_is_not_a_storage_account(bad):
    with pytest.raises(ValueError, match="not a storage account id"):
        backup_extension_body(
            storage_account=parse_resource_id(bad), container="c-1", tenant_id=TENANT, blob_endpoint=BLOB
        )
