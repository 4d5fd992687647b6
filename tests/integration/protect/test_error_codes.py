"""Every error code of the error -> action table (core/protection_errors.py) gets its action or its blocker,
through the real SDK clients: a backup instance of the cluster in the region's vault is found in
ProtectionError with the code, and the product repairs it in place (re-sync, or re-PUT for a wrong body),
leaves it alone (another vault's protection), or gives up naming what a person must do, writing nothing to the
instance."""

from __future__ import annotations

import pytest

from remediator.core.ids import parse_cluster_id
from remediator.core.outcomes import ActionStatus, OutcomeKind, WriteKind
from remediator.core.protection_errors import ERROR_ACTIONS, Repair
from tests.integration.emulator.helpers import raw_https
from tests.integration.protect.conftest import (
    AKS,
    SNAPSHOT_RG_ID,
    VAULT_ID,
    ProtectWorld,
    drive,
    estate,
    link_state,
)

pytestmark = pytest.mark.integration

INSTANCE = "aks-p1-legacy"


def _full_instance(code: str) -> dict:
    """A full instance body (the estate shorthand cannot format every code's message)."""
    info = {
        "datasourceType": "Microsoft.ContainerService/managedClusters",
        "resourceID": AKS,
        "resourceUri": AKS,
        "resourceName": "aks-p1",
        "resourceType": "Microsoft.ContainerService/managedclusters",
        "resourceLocation": "eastus",
    }
    error = {"code": code, "message": f"{code} (test)", "recommendedAction": [], "isRetryable": False}
    return {
        "id": f"{VAULT_ID}/backupInstances/{INSTANCE}",
        "name": INSTANCE,
        "type": "Microsoft.DataProtection/backupVaults/backupInstances",
        "properties": {
            "objectType": "BackupInstance",
            "friendlyName": "aks-p1\\fullbackup",
            "dataSourceInfo": {**info, "objectType": "Datasource"},
            "dataSourceSetInfo": {**info, "objectType": "DatasourceSet"},
            "policyInfo": {
                "policyId": f"{VAULT_ID}/backupPolicies/AKSBackupPolicy-Week",
                "policyParameters": {
                    "dataStoreParametersList": [
                        {
                            "objectType": "AzureOperationalStoreParameters",
                            "dataStoreType": "OperationalStore",
                            "resourceGroupId": SNAPSHOT_RG_ID,
                        }
                    ]
                },
            },
            "provisioningState": "Succeeded",
            "currentProtectionState": "ProtectionError",
            "protectionStatus": {"status": "ConfiguringProtectionFailed", "errorDetails": error},
            "protectionErrorDetails": error,
        },
    }


def _with_instance_in_error(world: ProtectWorld, code: str) -> None:
    """The region's vault, its policy and an instance of the cluster in ProtectionError with ``code`` (made by
    someone else earlier, e.g. the CLI), everything else missing."""
    data = estate()
    data["subscriptions"][0]["resourceGroups"].append({"name": "AKSAzureBackup_eastus", "location": "eastus"})
    data["dataProtection"].update(
        {
            "vaults": [{"id": VAULT_ID, "location": "eastus", "storageType": "LocallyRedundant"}],
            "policies": [{"vaultId": VAULT_ID, "name": "AKSBackupPolicy-Week", "strategy": "Week"}],
            "backupInstances": [_full_instance(code)],
        }
    )
    world.emulator.reset(data)
    world.emulator.admin.clear_calls()


def _sent(reports, kind: WriteKind) -> list:
    return [a for r in reports for a in r.actions if a.kind is kind and a.status is ActionStatus.DONE]


LOCKS = "UserErrorSnapshotResourceGroupHasLocks"
"""A human code whose cause the product can see (the group's locks): with no lock left it is repaired; with
one it is the named blocker (test_a_lock_on_the_snapshot_group_...)."""
REPAIRED = [
    *sorted(c.code for c in ERROR_ACTIONS.values() if c.repair not in (Repair.HUMAN, Repair.ELSEWHERE)),
    LOCKS,
]
HUMAN = sorted(c.code for c in ERROR_ACTIONS.values() if c.repair is Repair.HUMAN and c.code != LOCKS)
ELSEWHERE = sorted(c.code for c in ERROR_ACTIONS.values() if c.repair is Repair.ELSEWHERE)


@pytest.mark.parametrize("code", REPAIRED)
def test_a_repairable_code_is_repaired_in_place(world: ProtectWorld, code: str):
    _with_instance_in_error(world, code)
    reports = drive(world, AKS)
    final = reports[-1]
    assert final.outcome.kind is OutcomeKind.DONE, (final.outcome, final.links)
    assert world.state_of(AKS) == "ProtectionConfigured"
    (instance,) = world.instances()
    assert instance["name"] == INSTANCE  # the existing instance is repaired, never a second one
    repairs = [a for r in reports for a in r.actions if a.link == "protection-configured"]
    assert repairs and all(a.status is ActionStatus.DONE for a in repairs)
    if ERROR_ACTIONS[code.lower()].repair is Repair.REPUT:
        assert {a.kind for a in repairs} == {WriteKind.CREATE_BACKUP_INSTANCE}
    else:
        assert {a.kind for a in repairs} == {WriteKind.SYNC_BACKUP_INSTANCE}
        assert code in repairs[0].detail
    assert _sent(reports, WriteKind.VALIDATE_FOR_BACKUP) == []  # refused for a protected datasource


@pytest.mark.parametrize("code", HUMAN)
def test_a_human_code_is_a_named_blocker_and_the_instance_is_left_alone(world: ProtectWorld, code: str):
    _with_instance_in_error(world, code)
    reports = drive(world, AKS)
    final = reports[-1]
    assert final.outcome.kind is OutcomeKind.GAVE_UP, final.outcome
    expected = ERROR_ACTIONS[code.lower()].remedy
    assert final.outcome.why.startswith(f"{code}: {expected}"), final.outcome.why
    assert link_state(final, "protection-configured") == "blocked"
    assert world.arm_writes(path_contains="/backupInstances/") == []
    assert world.state_of(AKS) == "ProtectionError"


@pytest.mark.parametrize("code", ELSEWHERE)
def test_an_already_protected_code_is_left_alone(world: ProtectWorld, code: str):
    _with_instance_in_error(world, code)
    reports = drive(world, AKS)
    final = reports[-1]
    assert final.outcome.kind is OutcomeKind.DONE and "protected elsewhere" in final.outcome.why
    assert world.arm_writes(path_contains="/backupInstances/") == []


def test_a_lock_on_the_snapshot_group_names_the_lock_and_is_repaired_once_removed(world: ProtectWorld):
    reports = drive(world, AKS)
    assert reports[-1].outcome.kind is OutcomeKind.DONE
    emu = world.emulator
    lock = f"{SNAPSHOT_RG_ID}/providers/Microsoft.Authorization/locks/keep-snapshots?api-version=2020-05-01"
    status, _, _ = raw_https(
        emu.base_url, emu.ca_bundle, "PUT", lock, {"properties": {"level": "CanNotDelete"}}
    )
    assert status in (200, 201)
    emu.admin.request("POST", "/dataprotection/tick", {})
    blocked = world.runtime.reconciler.reconcile(parse_cluster_id(AKS))
    assert blocked.outcome.kind is OutcomeKind.GAVE_UP
    why = blocked.outcome.why
    assert (
        why.startswith("UserErrorSnapshotResourceGroupHasLocks")
        and "remove lock keep-snapshots (CanNotDelete)" in why
    )
    assert "AKSAzureBackup_eastus" in why and blocked.actions == ()
    # a person removes the lock: the next event or sweep repairs the instance
    status, _, _ = raw_https(emu.base_url, emu.ca_bundle, "DELETE", lock)
    assert status in (200, 204)
    reports = drive(world, AKS)
    assert reports[-1].outcome.kind is OutcomeKind.DONE and world.state_of(AKS) == "ProtectionConfigured"
    assert _sent(reports, WriteKind.SYNC_BACKUP_INSTANCE)
