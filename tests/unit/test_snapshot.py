"""ClusterSnapshot.from_arm: official AKS examples, shipped examples, defaults, malformed bodies."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from remediator.core.errors import UserInputError
from remediator.core.snapshot import ClusterSnapshot, infer_arch
from tests.unit.official_examples import official_cluster_bodies

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE_CLUSTERS = sorted((ROOT / "examples" / "clusters").glob("*.json"))


def test_official_examples_parse(azure_examples: Path) -> None:
    bodies = list(official_cluster_bodies(azure_examples))
    assert len(bodies) >= 4
    for label, body in bodies:
        snapshot = ClusterSnapshot.from_arm(body, source=label)
        assert snapshot.id.is_type("Microsoft.ContainerService/managedClusters"), label
        assert snapshot.name == "clustername1"
        assert snapshot.subscription_id == "00000000-0000-0000-0000-000000000000"
        assert snapshot.location == "location1"
        assert [pool.name for pool in snapshot.node_pools] == ["nodepool1"]
        assert snapshot.node_pools[0].is_linux_amd64


def test_official_get_example_details(azure_examples: Path) -> None:
    label, body = next(official_cluster_bodies(azure_examples))
    snapshot = ClusterSnapshot.from_arm(body, source=label)
    assert dict(snapshot.tags) == {"archv2": "", "tier": "production"}
    assert snapshot.provisioning_state == "Succeeded"
    assert snapshot.power_state is None
    assert snapshot.identity_type == "None"  # servicePrincipalProfile, no identity block
    assert not snapshot.has_managed_identity
    assert (
        snapshot.disk_csi_enabled and snapshot.snapshot_controller_enabled
    )  # storageProfile absent: defaults
    assert snapshot.node_pools[0].vm_size == "Standard_DS1_v2"


def test_official_create_example_is_user_assigned(azure_examples: Path) -> None:
    bodies = dict(official_cluster_bodies(azure_examples))
    assert (
        ClusterSnapshot.from_arm(bodies["ManagedClustersCreate_Update 200"]).identity_type == "UserAssigned"
    )
    assert (
        ClusterSnapshot.from_arm(bodies["ManagedClustersCreate_Update 201"]).provisioning_state == "Creating"
    )


@pytest.mark.parametrize("path", EXAMPLE_CLUSTERS, ids=lambda p: p.name)
def test_shipped_examples_parse(path: Path) -> None:
    snapshot = ClusterSnapshot.from_arm(json.loads(path.read_text()), source=str(path))
    assert snapshot.id.key.startswith("/subscriptions/")
    assert snapshot.node_pools


def load_example(name: str) -> dict[str, Any]:
    body: dict[str, Any] = json.loads((ROOT / "examples" / "clusters" / name).read_text())
    return body


def test_shipped_example_facts() -> None:
    arm = ClusterSnapshot.from_arm(load_example("arm64-only.json"))
    assert [pool.arch for pool in arm.node_pools] == ["arm64", "arm64"]
    assert all(pool.arch_inferred for pool in arm.node_pools)
    windows = ClusterSnapshot.from_arm(load_example("windows-only.json"))
    assert [(p.os_type, p.arch, p.os_sku) for p in windows.node_pools] == [
        ("Linux", "arm64", "AzureLinux"),
        ("Windows", "amd64", "Windows2022"),
    ]
    assert ClusterSnapshot.from_arm(load_example("stopped.json")).power_state == "Stopped"
    csi = ClusterSnapshot.from_arm(load_example("csi-disabled.json"))
    assert (csi.disk_csi_enabled, csi.snapshot_controller_enabled) == (False, False)
    untagged = ClusterSnapshot.from_arm(load_example("untagged.json"))
    assert untagged.location == "eastus"  # "East US" normalized
    assert dict(untagged.tags) == {}


def test_az_cli_flattened_output_is_accepted() -> None:
    body = load_example("csi-disabled.json")
    flattened = {**{k: v for k, v in body.items() if k != "properties"}, **body["properties"]}
    for pool in flattened["agentPoolProfiles"]:
        pool["osSku"] = pool.pop("osSKU")
    assert ClusterSnapshot.from_arm(flattened) == ClusterSnapshot.from_arm(body)


def test_snapshot_is_read_only() -> None:
    snapshot = ClusterSnapshot.from_arm(load_example("tagged.json"))
    with pytest.raises(TypeError):
        snapshot.tags["x"] = "y"  # type: ignore[index]


@pytest.mark.parametrize(
    ("vm_size", "arch"),
    [
        ("Standard_D2ps_v5", "arm64"),
        ("Standard_D4pds_v5", "arm64"),
        ("Standard_D16plds_v5", "arm64"),
        ("Standard_E8pds_v6", "arm64"),
        ("Standard_B2pls_v2", "arm64"),
        ("standard_d2ps_v5", "arm64"),
        ("Standard_D2s_v5", "amd64"),
        ("Standard_DS1_v2", "amd64"),
        ("Standard_D2as_v5", "amd64"),
        ("Standard_NP10s", "amd64"),  # FPGA family "NP": family letters never count
        ("Standard_NC24ads_A100_v4", "amd64"),
        ("Standard_E4-2ds_v5", "amd64"),
        ("Standard_E4-2ps_v5", "arm64"),
        ("Basic_A0", "amd64"),
        ("something-else", "amd64"),
        (None, "amd64"),
        ("", "amd64"),
    ],
)
def test_arch_inference_from_vm_size(vm_size: str | None, arch: str) -> None:
    assert infer_arch(vm_size) == arch


@pytest.mark.parametrize(("explicit", "arch"), [("arm64", "arm64"), ("AMD64", "amd64"), ("aarch64", "arm64")])
def test_explicit_arch_wins(explicit: str, arch: str) -> None:
    body = load_example("tagged.json")
    body["properties"]["agentPoolProfiles"][0]["arch"] = explicit
    pool = ClusterSnapshot.from_arm(body).node_pools[0]
    assert (pool.arch, pool.arch_inferred) == (arch, False)


def test_defaults_for_absent_fields() -> None:
    body = load_example("tagged.json")
    del body["properties"]["storageProfile"]
    del body["properties"]["powerState"]
    del body["identity"]
    del body["tags"]
    del body["properties"]["agentPoolProfiles"][0]["osType"]
    snapshot = ClusterSnapshot.from_arm(body)
    assert (snapshot.disk_csi_enabled, snapshot.snapshot_controller_enabled) == (True, True)
    assert snapshot.power_state is None
    assert snapshot.identity_type == "None"
    assert dict(snapshot.tags) == {}
    assert snapshot.node_pools[0].os_type == "Linux"


def _mutate(path: str, value: object) -> Any:
    def apply(body: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        node: Any = body
        for part in parents:
            node = node[int(part)] if part.isdigit() else node[part]
        if value is _DELETE:
            del node[last]
        elif last.isdigit():
            node[int(last)] = value
        else:
            node[last] = value

    return apply


_DELETE = object()


@pytest.mark.parametrize(
    ("path", "value", "field", "message"),
    [
        ("id", _DELETE, "id", "non-empty string"),
        ("id", "/subscriptions/x", "id", "is not a GUID"),
        (
            "id",
            "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rg",
            "id",
            "is not a Microsoft",
        ),
        ("type", "Microsoft.Compute/virtualMachines", "type", "expected Microsoft.ContainerService"),
        ("name", "other-name", "name", "does not match"),
        ("location", _DELETE, "location", "non-empty string"),
        ("location", "East-US", "location", "not an Azure region"),
        ("tags", ["a"], "tags", "expected an object"),
        ("tags", {"env": 1}, "tags.env", "tag values are strings"),
        ("identity", "SystemAssigned", "identity", "expected an object"),
        ("properties", [], "properties", "expected an object"),
        ("properties.provisioningState", 3, "properties.provisioningState", "non-empty string"),
        ("properties.powerState", {"code": ""}, "properties.powerState.code", "an empty string"),
        ("properties.agentPoolProfiles", {}, "properties.agentPoolProfiles", "expected a list"),
        ("properties.agentPoolProfiles.0", "pool", "properties.agentPoolProfiles[0]", "expected an object"),
        ("properties.agentPoolProfiles.0.name", _DELETE, "properties.agentPoolProfiles[0].name", "non-empty"),
        (
            "properties.agentPoolProfiles.0.osType",
            True,
            "properties.agentPoolProfiles[0].osType",
            "a boolean",
        ),
        (
            "properties.agentPoolProfiles.0.arch",
            "riscv",
            "properties.agentPoolProfiles[0].arch",
            "amd64 or arm64",
        ),
        (
            "properties.storageProfile.diskCSIDriver",
            {"enabled": "yes"},
            "properties.storageProfile.diskCSIDriver.enabled",
            "true or false",
        ),
        (
            "properties.storageProfile.snapshotController",
            [],
            "properties.storageProfile.snapshotController",
            "expected an object",
        ),
    ],
)
def test_malformed_bodies_name_the_field(path: str, value: object, field: str, message: str) -> None:
    body = copy.deepcopy(load_example("tagged.json"))
    _mutate(path, value)(body)
    with pytest.raises(UserInputError) as info:
        ClusterSnapshot.from_arm(body, source="cluster.json")
    assert info.value.field == field
    assert message in info.value.message
    assert info.value.source == "cluster.json"


@pytest.mark.parametrize("body", [None, [], "cluster", 3])
def test_non_object_body(body: object) -> None:
    with pytest.raises(UserInputError, match="expected an object"):
        ClusterSnapshot.from_arm(body)
