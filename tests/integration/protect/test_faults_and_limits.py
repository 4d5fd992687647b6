"""Protect mode under a fault storm on its writes (emulator fault rules: 429, 500, 409, dropped connections)
converges with ONE create of each resource; AKS's 8 trusted-access bindings and Azure's role-assignment limit
are named blockers, never a silent failure."""

from __future__ import annotations

from collections import Counter

import pytest

from remediator.core.ids import parse_cluster_id
from remediator.core.outcomes import OutcomeKind
from tests.integration.protect.conftest import AKS, VAULT_ID, ProtectWorld, drive, estate

pytestmark = pytest.mark.integration

NEW_WRITES = (
    ("PUT", "*/backupVaults/*"),
    ("PUT", "*/backupPolicies/*"),
    ("PUT", "*/backupInstances/*"),
    ("POST", "*/validateForBackup*"),
    ("PUT", "*/trustedAccessRoleBindings/*"),
    ("PUT", "re:^/subscriptions/[^/]+/resourcegroups/[^/]+$"),
    ("PUT", "*/roleAssignments/*"),
)


def test_a_fault_storm_on_the_new_writes_converges_with_one_create_of_each(world: ProtectWorld):
    admin = world.emulator.admin
    for method, path in NEW_WRITES:
        # deterministic: the first write of each kind meets 429, 500, a dropped connection, then a 409
        # (the SDK retries the first three; the 409 becomes a wait) ...
        admin.add_fault(
            method=method, path=path, status=429, code="TooManyRequests", retryAfterS=0.05, count=1
        )
        admin.add_fault(method=method, path=path, status=500, code="InternalServerError", count=1)
        admin.add_fault(method=method, path=path, action="drop", count=1)
        admin.add_fault(method=method, path=path, status=409, code="Conflict", count=1)
        # ... and every later one a random share of the same
        admin.add_fault(
            method=method, path=path, status=429, code="TooManyRequests", retryAfterS=0.05, probability=0.2
        )
        admin.add_fault(method=method, path=path, status=500, code="InternalServerError", probability=0.15)
        admin.add_fault(method=method, path=path, action="drop", probability=0.1)
    reports = drive(world, AKS, rounds=200)
    assert reports[-1].outcome.kind is OutcomeKind.DONE, reports[-1].outcome
    assert world.state_of(AKS) == "ProtectionConfigured"
    deterministic = [rule for rule in admin.faults() if rule.get("count") == 1]
    assert len(deterministic) == 4 * len(NEW_WRITES)
    assert all(rule["fired"] == 1 for rule in deterministic)  # the storm did hit every kind of write
    admin.clear_faults()

    # one of each resource ...
    assert len(world.resources("microsoft.dataprotection/backupvaults")) == 1
    assert len(world.resources("backupvaults/backuppolicies")) == 1
    assert len(world.instances()) == 1
    assert len(world.resources("managedclusters/trustedaccessrolebindings")) == 1
    roles = Counter(
        (
            r["properties"]["principalId"],
            r["properties"]["roleDefinitionId"].rsplit("/", 1)[-1],
            r["properties"]["scope"].lower(),
        )
        for r in world.role_assignments()
    )
    assert roles and max(roles.values()) == 1
    # ... created once: exactly one accepted create per resource
    created = Counter(
        c["path"].split("?")[0].lower() for c in world.calls() if c["method"] == "PUT" and c["status"] == 201
    )
    assert created, "no create answered 201"
    assert max(created.values()) == 1, [p for p, n in created.items() if n > 1]
    for suffix in ("/backupvaults/aksazurebackup-eastus", "/resourcegroups/aksazurebackup_eastus"):
        assert sum(n for p, n in created.items() if p.endswith(suffix)) == 1
    assert sum(n for p, n in created.items() if "/backupinstances/" in p) == 1

    # and the converged cluster stays quiet
    world.emulator.admin.clear_calls()
    again = world.runtime.reconciler.reconcile(parse_cluster_id(AKS))
    assert again.outcome.kind is OutcomeKind.DONE and world.arm_writes() == []


def test_eight_foreign_bindings_are_a_named_blocker(world: ProtectWorld):
    data = estate()
    vaults = [f"{VAULT_ID}-other{i}" for i in range(8)]
    data["dataProtection"]["vaults"] = [{"id": v, "location": "eastus"} for v in vaults]
    data["trustedAccessRoleBindings"] = [
        {"clusterId": AKS, "name": f"other-{i}", "sourceResourceId": v} for i, v in enumerate(vaults)
    ]
    world.emulator.reset(data)
    reports = drive(world, AKS)
    final = reports[-1]
    assert final.outcome.kind is OutcomeKind.GAVE_UP
    assert final.outcome.why.startswith("trusted-access-limit:") and "other-0" in final.outcome.why
    assert world.arm_writes(path_contains="/trustedAccessRoleBindings/") == []


def test_the_role_assignment_limit_is_a_named_blocker(world: ProtectWorld):
    world.knobs(roleAssignmentLimit=0)
    reports = drive(world, AKS)
    final = reports[-1]
    assert final.outcome.kind is OutcomeKind.GAVE_UP
    assert (
        final.outcome.why.startswith("role-assignment-limit:") and "roleAssignmentScope" in final.outcome.why
    )
