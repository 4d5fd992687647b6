"""Deterministic, valid, per-cluster names: containers, role assignments, remediation tasks."""

import re
import uuid

import pytest
from hypothesis import given
from hypothesis import strategies as st

from remediator.core.naming import (
    backup_container_name,
    cluster_key,
    is_valid_container_name,
    remediation_task_name,
    role_assignment_name,
)

SUB = "00000000-0000-0000-0000-000000000001"
ROLE = "ba92f5b4-2d11-453d-a403-e96b0029c9fe"


def cluster_id(name: str, rg: str = "rg1") -> str:
    return (
        f"/subscriptions/{SUB}/resourceGroups/{rg}/providers/Microsoft.ContainerService/managedClusters/"
        + name
    )


AKS_NAME = st.from_regex(r"^[a-zA-Z0-9][-_a-zA-Z0-9]{0,61}[a-zA-Z0-9]$", fullmatch=True)
"""AKS cluster names: ^[a-zA-Z0-9][-_a-zA-Z0-9]{0,61}[a-zA-Z0-9]$ (uppercase and underscores allowed)."""


def test_uppercase_and_underscores_become_valid():
    name = backup_container_name("Prod_AKS__West", cluster_id("Prod_AKS__West"))
    assert is_valid_container_name(name)
    assert name.startswith("azure-aks-backup-prod-aks-west-")


def test_63_character_cluster_name_is_cut_to_63():
    long_name = "A" + "b_" * 30 + "Z1"
    assert len(long_name) == 63
    name = backup_container_name(long_name, cluster_id(long_name))
    assert len(name) <= 63
    assert is_valid_container_name(name)


def test_the_dine_name_is_invalid_for_such_clusters_but_ours_is_valid():
    dine = ("azure-aks-backup-" + "My_Cluster")[:63]
    assert not is_valid_container_name(dine)
    assert is_valid_container_name(backup_container_name("My_Cluster", cluster_id("My_Cluster")))


def test_same_name_in_two_resource_groups_gets_two_containers():
    assert backup_container_name("aks", cluster_id("aks", "rg1")) != backup_container_name(
        "aks", cluster_id("aks", "rg2")
    )


def test_id_casing_does_not_change_the_name():
    cid = cluster_id("aks")
    assert backup_container_name("aks", cid) == backup_container_name("aks", cid.upper())


@given(AKS_NAME)
def test_every_aks_name_gives_a_valid_container_name(name):
    result = backup_container_name(name, cluster_id(name))
    assert 3 <= len(result) <= 63
    assert re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)*", result)


@given(AKS_NAME, AKS_NAME)
def test_distinct_clusters_get_distinct_containers(a, b):
    if cluster_id(a).lower() != cluster_id(b).lower():
        assert backup_container_name(a, cluster_id(a)) != backup_container_name(b, cluster_id(b))


def test_role_assignment_name_is_a_stable_case_insensitive_guid():
    scope = f"/subscriptions/{SUB}/resourceGroups/rg/providers/Microsoft.Storage/storageAccounts/sa"
    role = f"/subscriptions/{SUB}/providers/Microsoft.Authorization/roleDefinitions/" + ROLE
    first = role_assignment_name(scope, "PRINCIPAL-1", role)
    assert uuid.UUID(first)
    assert first == role_assignment_name(scope.upper(), "principal-1", role.lower())
    assert first != role_assignment_name(scope, "principal-2", role)


def test_remediation_task_name_is_deterministic_per_cluster_and_assignment():
    a1 = f"/subscriptions/{SUB}/providers/Microsoft.Authorization/policyAssignments/a1"
    a2 = f"/subscriptions/{SUB}/providers/Microsoft.Authorization/policyAssignments/a2"
    assert remediation_task_name(cluster_id("x"), a1) == remediation_task_name(cluster_id("x").upper(), a1)
    assert remediation_task_name(cluster_id("x"), a1) != remediation_task_name(cluster_id("x"), a2)
    assert remediation_task_name(cluster_id("x"), a1) != remediation_task_name(cluster_id("y"), a1)


def test_remediation_task_name_generation_zero_is_the_name_before_generations_existed():
    # tasks created before generations existed must still be found: generation 0 keeps the old formula
    a1 = f"/subscriptions/{SUB}/providers/Microsoft.Authorization/policyAssignments/a1"
    namespace = uuid.UUID("6f1c9e1e-2b7a-5a53-9d0e-a1c4b0a7e5d2")
    old = "aks-backup-" + str(uuid.uuid5(namespace, f"remediation|{cluster_id('x').lower()}|{a1.lower()}"))
    assert remediation_task_name(cluster_id("x"), a1) == old
    assert remediation_task_name(cluster_id("x"), a1, generation=0) == old


@given(st.integers(0, 10_000), st.from_regex(r"[A-Za-z0-9][A-Za-z0-9_-]{0,62}", fullmatch=True))
def test_each_remediation_task_generation_has_its_own_valid_deterministic_name(generation, name):
    assignment = f"/subscriptions/{SUB}/providers/Microsoft.Authorization/policyAssignments/A"
    cid = cluster_id(name)
    task = remediation_task_name(cid, assignment, generation=generation)
    assert re.fullmatch(r"aks-backup-[0-9a-f-]{36}(-g[1-9][0-9]*)?", task)
    assert len(task) <= 80
    assert task == remediation_task_name(cid.upper(), assignment.lower(), generation=generation)
    assert task != remediation_task_name(cid, assignment, generation=generation + 1)
    assert task.startswith(remediation_task_name(cid, assignment))


def test_remediation_task_generation_cannot_be_negative():
    with pytest.raises(ValueError, match="generation"):
        remediation_task_name(cluster_id("x"), "a", generation=-1)


def test_cluster_key_is_table_safe_and_case_insensitive():
    key = cluster_key(cluster_id("Aks"))
    assert re.fullmatch(r"[0-9a-f]{64}", key)
    assert key == cluster_key(cluster_id("Aks").lower())
