"""``reconcile``: a dry run says what it would do (never "install started"); ``--wait`` repeats until the
outcome is final or the timeout passes, sleeping each ``retryAfter`` (capped by ``--poll``)."""

from __future__ import annotations

from remediator.cli.reconcile import dry_run_summary, reconcile_until_settled, report_json
from remediator.core.outcomes import Action, ActionKind, ActionStatus, Outcome, ReconcileReport

CLUSTER = (
    "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rg/providers/"
    "Microsoft.ContainerService/managedClusters/aks-1"
)
ACCOUNT = (
    "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rg/providers/"
    "Microsoft.Storage/storageAccounts/stbackup"
)


def report(outcome: Outcome, *actions: Action, dry_run: bool = True) -> ReconcileReport:
    return ReconcileReport(
        cluster_id=CLUSTER, decision=None, outcome=outcome, actions=actions, dry_run=dry_run
    )


def test_planned_actions_are_said_in_words() -> None:
    planned = report(
        Outcome.wait(30, "extension azure-aks-backup install started"),
        Action(
            ActionKind.CREATE_CONTAINER,
            f"{ACCOUNT}/blobServices/default/containers/azure-aks-backup-aks-1",
            ActionStatus.PLANNED,
        ),
        Action(ActionKind.CREATE_EXTENSION, CLUSTER + "/x", ActionStatus.PLANNED, "azure-aks-backup"),
    )
    text = dry_run_summary(planned)
    assert text == (
        "dry run, nothing written: would create blob container azure-aks-backup-aks-1 in storage account"
        " stbackup; then install the backup extension azure-aks-backup"
    )
    body = report_json(planned)
    assert body["outcome"]["why"] == text and "started" not in body["outcome"]["why"]
    assert body["outcome"]["kind"] == "wait"  # what a real reconcile would end with
    assert body["wouldDo"] == [a.to_json() for a in planned.actions]


def test_without_actions_it_says_why_nothing_would_be_done() -> None:
    assert dry_run_summary(report(Outcome.done("extension Succeeded"))).startswith("dry run: nothing to do (")
    assert "not selected" in dry_run_summary(report(Outcome.skipped("not-included")))
    assert "would wait (cluster-stopped" in dry_run_summary(report(Outcome.wait(30, "cluster-stopped: x")))
    assert "a human must act (no-linux" in dry_run_summary(report(Outcome.gave_up("no-linux-amd64-pool: x")))
    real = report(Outcome.wait(30, "extension x install started"), dry_run=False)
    assert report_json(real) == real.to_json()  # a real reconcile's report is printed as it is


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def test_wait_sleeps_retry_after_capped_by_poll_until_final() -> None:
    outcomes = iter([Outcome.wait(30, "installing"), Outcome.wait(2, "installing"), Outcome.done("ok")])
    time = FakeClock()
    lines: list[str] = []
    last, timed_out = reconcile_until_settled(
        lambda: report(next(outcomes), dry_run=False),
        timeout_s=100,
        poll_s=5,
        sleep=time.sleep,
        clock=time.clock,
        progress=lines.append,
    )
    assert (last.outcome.kind.value, timed_out) == ("done", False)
    assert time.sleeps == [5, 2]
    assert lines == ["waiting 5 s: installing", "waiting 2 s: installing"]


def test_wait_gives_up_waiting_at_the_timeout() -> None:
    time = FakeClock()
    calls = []

    def still_waiting() -> ReconcileReport:
        calls.append(1)
        return report(Outcome.wait(30, "cluster-stopped"), dry_run=False)

    last, timed_out = reconcile_until_settled(
        still_waiting, timeout_s=12, poll_s=5, sleep=time.sleep, clock=time.clock
    )
    assert timed_out and last.outcome.kind.value == "wait"
    assert time.sleeps == [5, 5, 2] and len(calls) == 4 and time.now == 12
