"""The re-install bound is per failure episode: it resets once the extension has been seen Succeeded.

``remediation.maxReinstalls`` limits how often one failure is retried. Re-installs recorded before the
extension last reached ``Succeeded`` belong to an earlier episode and must not count, or a cluster that
used its re-installs long ago would be given up on without any attempt when its extension fails again.
The journal is real (Azurite), the reconciler talks HTTPS to the emulator.
"""

from __future__ import annotations

import pytest

from remediator.adapters.journal import Journal
from remediator.core.ids import parse_cluster_id
from remediator.core.outcomes import Action, ActionStatus, Outcome, OutcomeKind, ReconcileReport, WriteKind
from remediator.core.settings import Settings
from tests.integration.reconciler.conftest import World, arm_writes, cluster_id

pytestmark = pytest.mark.integration

AKS_OK = cluster_id("aks-ok")
EXTENSION_TARGET = AKS_OK + "/providers/Microsoft.KubernetesConfiguration/extensions/azure-aks-backup"
LONG_AGO = 1_700_000_000.0
"""Seconds since the epoch of the first "old" history row (November 2023): claims of that time expired."""


class SteppingClock:
    """A clock that moves one second per reading, so history rows keep the order they were written in."""

    def __init__(self, start: float) -> None:
        self.now = start

    def __call__(self) -> float:
        self.now += 1.0
        return self.now


def report(outcome: Outcome, *actions: Action, state: str | None, cid: str = AKS_OK) -> ReconcileReport:
    return ReconcileReport(
        cluster_id=cid,
        decision={"selected": True},
        outcome=outcome,
        actions=actions,
        extension_state=state,
    )


REINSTALL = Action(WriteKind.REINSTALL_EXTENSION, EXTENSION_TARGET, ActionStatus.DONE, "azure-aks-backup")


def old_episode() -> list[ReconcileReport]:
    """An earlier failure: two re-installs, a give-up, then the extension recovered and was reported done."""
    return [
        report(Outcome.wait(30, "re-install 1 of 2 started"), REINSTALL, state="Failed"),
        report(Outcome.wait(30, "re-install 2 of 2 started"), REINSTALL, state="Failed"),
        report(Outcome.gave_up("extension is Failed after 2 re-install(s) (limit 2)"), state="Failed"),
        report(Outcome.done("extension azure-aks-backup Succeeded"), state="Succeeded"),
    ]


def journal_for(world: World, *, start: float) -> Journal:
    journal = Journal.from_settings(Settings.from_env(world.env))
    journal.clock = SteppingClock(start)
    return journal


def test_count_restarts_after_the_extension_was_seen_succeeded(world: World) -> None:
    journal = journal_for(world, start=LONG_AGO)
    for old in old_episode():
        journal.record(old)
    assert journal.count_reinstalls(AKS_OK) == 0
    journal.record(report(Outcome.wait(30, "re-install 1 of 2 started"), REINSTALL, state="Failed"))
    assert journal.count_reinstalls(AKS_OK) == 1
    # a planned (dry-run) re-install is not a re-install; a later Failed observation does not reset
    planned = Action(WriteKind.REINSTALL_EXTENSION, EXTENSION_TARGET, ActionStatus.PLANNED)
    journal.record(report(Outcome.wait(30, "dry run"), planned, state="Failed"))
    journal.record(report(Outcome.wait(30, "re-install 2 of 2 started"), REINSTALL, state="Failed"))
    assert journal.count_reinstalls(AKS_OK) == 2
    # any id casing reads the same partition
    assert journal.count_reinstalls(AKS_OK.upper()) == 2


def test_without_a_succeeded_observation_every_reinstall_counts(world: World) -> None:
    journal = journal_for(world, start=LONG_AGO)
    journal.record(report(Outcome.wait(30, "install started"), state=None))
    journal.record(report(Outcome.wait(30, "re-install 1 started"), REINSTALL, state="Failed"))
    journal.record(report(Outcome.wait(30, "extension is Creating"), state="Creating"))
    journal.record(report(Outcome.wait(30, "re-install 2 started"), REINSTALL, state="Failed"))
    assert journal.count_reinstalls(AKS_OK) == 2


def test_cluster_whose_old_reinstalls_are_used_up_is_reinstalled_on_a_new_failure(
    world: World, emulator
) -> None:
    history = journal_for(world, start=LONG_AGO)
    for old in old_episode():
        history.record(old)
    emulator.admin.put_resources(
        {
            "extensions": [
                {
                    "clusterId": AKS_OK,
                    "name": "azure-aks-backup",
                    "extensionType": "microsoft.dataprotection.kubernetes",
                    "provisioningState": "Failed",
                }
            ]
        }
    )
    world.emulator.admin.clear_calls()

    fresh = world.runtime.reconciler.reconcile(parse_cluster_id(AKS_OK))

    assert fresh.outcome.kind is OutcomeKind.WAIT, fresh.outcome
    assert "re-install 1 of 2" in fresh.outcome.why
    assert [(a.kind, a.status) for a in fresh.actions if a.kind is WriteKind.REINSTALL_EXTENSION] == [
        (WriteKind.REINSTALL_EXTENSION, ActionStatus.DONE)
    ]
    writes = arm_writes(world, path_contains="/extensions/azure-aks-backup")
    assert [c["method"] for c in writes] == ["PUT"]
