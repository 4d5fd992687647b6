"""Estates: deterministic generation with the required mixes, loading from YAML, and a matching remediator
config that the product's own config parser accepts."""

from __future__ import annotations

import collections
import json
from pathlib import Path

import pytest
import yaml
from azure.mgmt.containerservice import ContainerServiceClient

from emulator.estate import generate_estate, load_estate_file
from emulator.remediator_config import remediator_config_for
from emulator.resources.extension_support import vm_size_arch
from emulator.server import Emulator
from remediator.core.config import parse_config

pytestmark = pytest.mark.integration


def test_same_seed_same_estate_other_seed_differs() -> None:
    a = generate_estate(subscriptions=3, clusters_per_subscription=20, seed=42)
    b = generate_estate(subscriptions=3, clusters_per_subscription=20, seed=42)
    c = generate_estate(subscriptions=3, clusters_per_subscription=20, seed=43)
    assert json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)
    assert json.dumps(a, sort_keys=True) != json.dumps(c, sort_keys=True)


def test_generated_mix() -> None:
    estate = generate_estate(subscriptions=4, clusters_per_subscription=500, seed=3)
    clusters = estate["clusters"]
    assert len(clusters) == 2000 and len({c["id"].lower() for c in clusters}) == 2000
    share = collections.Counter()
    for c in clusters:
        share["creating"] += c["provisioningState"] == "Creating"
        share["stopped"] += c["powerState"] == "Stopped"
        share["sp"] += c["identity"] == "None"
        share["windows"] += all(p["osType"] == "Windows" for p in c["pools"])
        share["arm64"] += all(vm_size_arch(p.get("vmSize")) == "arm64" for p in c["pools"])
        share["untagged"] += not c["tags"]
    for kind, expected in {
        "creating": 0.05,
        "stopped": 0.05,
        "sp": 0.05,
        "windows": 0.03,
        "arm64": 0.04,
        "untagged": 0.1,
    }.items():
        assert abs(share[kind] / 2000 - expected) < 0.02, (kind, share[kind])
    # ARM tag names are case-insensitive: no cluster carries two casings of one key
    assert all(len({k.lower() for k in c["tags"]}) == len(c["tags"]) for c in clusters)
    keys = {k for c in clusters for k in c["tags"]}
    assert {"Backup", "backup", "BACKUP"} <= keys
    values = {v for c in clusters for k, v in c["tags"].items() if k.lower() == "backup"}
    assert {"Yes", "yes"} <= values
    regions = {c["location"] for c in clusters}
    assert len(regions) == 3
    assert sorted(a["location"] for a in estate["storageAccounts"]) == sorted(regions)


def test_arm64_only_is_a_small_explicit_share() -> None:
    """Arm64-only clusters are blocked like Windows-only ones, so they are a small share (was 204 of 600)."""
    estate = generate_estate(subscriptions=6, clusters_per_subscription=100, seed=7)
    arm = [c for c in estate["clusters"] if all(vm_size_arch(p.get("vmSize")) == "arm64" for p in c["pools"])]
    assert 0.02 * 600 <= len(arm) <= 0.06 * 600, len(arm)
    none = generate_estate(subscriptions=6, clusters_per_subscription=100, seed=7, share_arm64_only=0.0)
    assert not any(vm_size_arch(p.get("vmSize")) == "arm64" for c in none["clusters"] for p in c["pools"])
    # the Arm64 draw comes from its own generator: the other draws are the same with or without it
    assert [c["tags"] for c in none["clusters"]] == [c["tags"] for c in estate["clusters"]]


def test_generated_estate_serves_the_mix(emulator: Emulator) -> None:
    estate = generate_estate(subscriptions=1, clusters_per_subscription=200, seed=9)
    emulator.reset(estate)
    sub = estate["subscriptions"][0]["subscriptionId"]
    client = ContainerServiceClient(emulator.credential(), sub, **emulator.client_kwargs())
    listed = {c.id.lower(): c for c in client.managed_clusters.list()}
    assert len(listed) == 200
    for item in estate["clusters"]:
        got = listed[item["id"].lower()]
        assert got.provisioning_state == item["provisioningState"]
        assert got.power_state.code == item["powerState"]
        assert (got.identity is None) == (item["identity"] == "None")
        assert (got.tags or {}) == item["tags"]  # no tags: AKS answers without the key
        assert [p.os_type for p in got.agent_pool_profiles] == [p["osType"] for p in item["pools"]]


def test_paging_with_next_link(emulator: Emulator) -> None:
    estate = generate_estate(subscriptions=1, clusters_per_subscription=250, seed=5)
    emulator.reset(estate)
    emulator.admin.set_config(listPageSize=100)
    client = ContainerServiceClient(
        emulator.credential(), estate["subscriptions"][0]["subscriptionId"], **emulator.client_kwargs()
    )
    assert len({c.id for c in client.managed_clusters.list()}) == 250
    assert [c["operation"] for c in emulator.admin.calls()].count("ManagedClusters_List") == 3


def test_estate_from_yaml(tmp_path: Path, emulator: Emulator) -> None:
    estate = {
        "subscriptions": [
            {
                "subscriptionId": "22222222-2222-2222-2222-222222222222",
                "providers": {"Microsoft.KubernetesConfiguration": "NotRegistered"},
                "resourceGroups": [{"name": "rg-a", "location": "westeurope"}],
            }
        ],
        "clusters": [
            {
                "id": "/subscriptions/22222222-2222-2222-2222-222222222222/resourceGroups/rg-a/providers/"
                "Microsoft.ContainerService/managedClusters/yaml1",
                "location": "westeurope",
                "tags": {"Backup": "Yes"},
                "identity": "UserAssigned",
                "pools": [{"osType": "Linux", "osSKU": "AzureLinux", "vmSize": "Standard_D4ps_v5"}],
                "snapshotController": False,
            }
        ],
    }
    path = tmp_path / "estate.yaml"
    path.write_text(yaml.safe_dump(estate), encoding="utf-8")
    emulator.reset(load_estate_file(path))
    client = ContainerServiceClient(
        emulator.credential(), "22222222-2222-2222-2222-222222222222", **emulator.client_kwargs()
    )
    got = client.managed_clusters.get("rg-a", "yaml1")
    assert got.identity.type == "UserAssigned"
    assert got.storage_profile.snapshot_controller.enabled is False
    assert got.agent_pool_profiles[0].os_sku == "AzureLinux"
    assert emulator.state.provider_state(
        "22222222-2222-2222-2222-222222222222", "Microsoft.KubernetesConfiguration"
    ) == ("NotRegistered")


def test_matching_remediator_config_is_valid() -> None:
    estate = generate_estate(subscriptions=3, clusters_per_subscription=5, seed=1)
    config = parse_config(remediator_config_for(estate), source="generated")
    assert len(config.scope.subscriptions) == 3
    assert len(config.storage) == 3


def test_fast_shorthand_builder_matches_the_put_path() -> None:
    from emulator.estate import cluster_from_shorthand, cluster_via_put_path

    estate = generate_estate(subscriptions=2, clusters_per_subscription=300, seed=13)
    extra = {
        "id": estate["clusters"][0]["id"].replace("aks-000-00000", "aks-extra"),
        "location": "uksouth",
        "kubernetesVersion": "1.29.2",
        "diskCSIDriver": False,
        "snapshotController": False,
        "powerState": "Stopped",
        "provisioningState": "Updating",
        "pools": [
            {"name": "lin", "osType": "Linux", "osSKU": "AzureLinux", "orchestratorVersion": "1.29.0"},
            {"name": "win", "osType": "Windows", "count": 1},
        ],
    }
    kinds = set()
    for item in [*estate["clusters"], extra]:
        fast = cluster_from_shorthand(item, tenant="t-1")
        assert fast == cluster_via_put_path(item, tenant="t-1"), item["id"]
        kinds.add(item.get("identity", "SystemAssigned"))
    assert kinds == {"SystemAssigned", "UserAssigned", "None"}
