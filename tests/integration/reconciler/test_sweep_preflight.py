"""The sweep's preflight snapshot against the emulator: policy data read once per sweep, no per-cluster
Resource Graph fan-out, the add-on state found by one query although the sweep's rows do not carry it, and
``findings_for`` / ``blocked_by_policy`` per cluster for the sweep's per-cluster list and the report's
"blocked by policy" group."""

from __future__ import annotations

from typing import Any

import pytest
from azure.mgmt.resource.policy import PolicyClient

from emulator.estate import cluster_from_shorthand
from remediator.core.ids import parse_cluster_id, parse_storage_account_id
from remediator.core.inventory_query import plan_inventory
from remediator.core.snapshot import ClusterSnapshot
from tests.fixtures.emulator import TEST_SUB, TEST_TENANT
from tests.integration.reconciler.conftest import STORAGE_EASTUS, cluster_id

pytestmark = pytest.mark.integration

AKS_GK = cluster_id("aks-gk")
IMAGES = "/providers/Microsoft.Authorization/policyDefinitions/febd0533-8e55-448f-b837-bd0e06f16469"
ARG_PATH = "/providers/microsoft.resourcegraph/resources"


def graph_calls(world: Any) -> int:
    return len([c for c in world.calls() if c["path"].lower().startswith(ARG_PATH)])


@pytest.fixture
def fleet(world, emulator):
    body = cluster_from_shorthand(
        {"id": AKS_GK, "location": "eastus", "tags": {"backup": "yes"}}, tenant=TEST_TENANT
    )
    body["properties"]["addonProfiles"] = {"azurepolicy": {"enabled": True, "config": None}}
    emulator.admin.put_resources({"clusters": [body]})
    policy = PolicyClient(emulator.credential(), TEST_SUB, **emulator.client_kwargs())
    policy.policy_assignments.create(
        f"/subscriptions/{TEST_SUB}",
        "only-acr",
        {
            "properties": {
                "policyDefinitionId": IMAGES,
                "parameters": {"allowedContainerImagesRegex": {"value": "^myacr/.+$"}},
            }
        },
    )
    emulator.admin.clear_calls()
    return world


def test_one_snapshot_per_sweep_names_the_blocking_assignment_without_per_cluster_queries(fleet):
    world = fleet
    runtime = world.runtime
    rows = list(runtime.inventory.iter_rows(plan_inventory(runtime.config, needs_work_only=False)))
    snapshots = [ClusterSnapshot.from_arm(row.body) for row in rows]
    assert len(snapshots) > 10 and not any(s.azure_policy_enabled for s in snapshots)  # rows lack the add-on
    before = graph_calls(world)
    snapshot = runtime.preflight.sweep([TEST_SUB])
    per_sweep = graph_calls(world) - before
    assert 1 <= per_sweep <= 4  # ancestry, assignments, add-on ids (definitions: the catalog's built-ins)
    assert AKS_GK.lower() in snapshot.addon_clusters
    account = parse_storage_account_id(STORAGE_EASTUS)
    blocked: dict[str, tuple[str, ...]] = {}
    for cluster in snapshots:
        storage = account if cluster.location == "eastus" else None
        blocked[cluster.id.key] = snapshot.blocked_by_policy(cluster, storage_account=storage)
    assert graph_calls(world) - before == per_sweep, "findings_for sends no Resource Graph query"
    assert blocked[parse_cluster_id(AKS_GK).key] == ("only-acr",)
    others = [names for key, names in blocked.items() if key != parse_cluster_id(AKS_GK).key]
    assert others and all(names == () for names in others)  # the Deny only warns where the add-on is off
    gk = next(s for s in snapshots if s.id.key == parse_cluster_id(AKS_GK).key)
    (finding,) = [f for f in snapshot.findings_for(gk) if f.blocks]
    assert "allowedContainerImagesRegex" in finding.remedy and "only-acr" in finding.remedy
    # the snapshot primed the per-process cache: a reconcile right after reads no policy data again
    runtime.reconciler.reconcile(parse_cluster_id(AKS_GK))
    assert graph_calls(world) - before == per_sweep


def test_a_cluster_of_a_subscription_the_snapshot_did_not_list_is_read_once_for_its_subscription(fleet):
    world = fleet
    runtime = world.runtime
    gk = ClusterSnapshot.from_arm(runtime.gateway.get_cluster(parse_cluster_id(AKS_GK)) or {})
    gk_row = ClusterSnapshot.from_arm({**gk_body(gk), "properties": {}})  # a sweep row: no add-on column
    snapshot = runtime.preflight.sweep([])  # a management-group scope names no subscription up front
    before = graph_calls(world)
    assert snapshot.blocked_by_policy(gk_row) == ("only-acr",)
    first = graph_calls(world) - before
    assert first >= 1  # the subscription's add-on query (its policy data may come from the process cache)
    assert snapshot.blocked_by_policy(gk_row) == ("only-acr",)
    assert graph_calls(world) - before == first  # once per subscription, not per cluster


def gk_body(cluster: ClusterSnapshot) -> dict[str, Any]:
    return {"id": cluster.id.canonical, "location": cluster.location, "tags": dict(cluster.tags)}
