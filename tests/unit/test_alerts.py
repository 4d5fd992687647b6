"""Reports journaled (and alerted) once per change of state (issue 17 item 4, ``core.alerts``)."""

from __future__ import annotations

from typing import Any

import pytest

from remediator.core.alerts import alert_line, describe, give_up_cause, parks, repeat_line, state_key
from remediator.core.outcomes import Outcome, OutcomeKind, ReconcileReport

CLUSTER = "/subscriptions/s/resourceGroups/r/providers/Microsoft.ContainerService/managedClusters/c"


def report(outcome: Outcome, *blockers: str, links: tuple[dict[str, str], ...] = ()) -> ReconcileReport:
    decision: dict[str, Any] = {"clusterId": CLUSTER, "selected": True, "blockers": list(blockers)}
    return ReconcileReport(cluster_id=CLUSTER, decision=decision, outcome=outcome, links=links)


def test_a_wait_on_a_stopped_cluster_parks_a_wait_on_a_provisioning_one_does_not() -> None:
    assert parks(report(Outcome.wait(30, "stopped"), "cluster-stopped"))
    assert parks(report(Outcome.wait(30, "both"), "cluster-stopped", "cluster-not-succeeded"))
    assert not parks(report(Outcome.wait(30, "updating"), "cluster-not-succeeded"))
    assert not parks(report(Outcome.wait(30, "installing")))
    assert not parks(report(Outcome.gave_up("x"), "cluster-stopped"))
    assert not parks(report(Outcome.wait(30, "unknown code"), "some-future-blocker"))


@pytest.mark.parametrize(
    ("first", "second", "same"),
    [
        ("still waiting after 30 attempts (REMEDIATOR_MAX_ATTEMPTS): refills in 3.2 s",
         "still waiting after 31 attempts (REMEDIATOR_MAX_ATTEMPTS): refills in 9.9 s", True),
        ("ARM refused the request: PUT extension HTTP 400 A",
         "ARM refused the request: PUT x HTTP 400 B", True),
        ("ProviderNotRegistered: Microsoft.KubernetesConfiguration", "missing permission x: y", False),
    ],
)  # fmt: skip
def test_the_cause_of_a_give_up_ignores_numbers_and_the_inner_wording(
    first: str, second: str, same: bool
) -> None:
    a, b = give_up_cause(report(Outcome.gave_up(first))), give_up_cause(report(Outcome.gave_up(second)))
    assert (a == b) is same


def test_human_blockers_and_blocked_links_name_the_cause() -> None:
    blocked = report(Outcome.gave_up("x"), "no-managed-identity", "cluster-stopped")
    assert give_up_cause(blocked) == "blockers:no-managed-identity"
    link = report(Outcome.gave_up("y"), links=({"link": "storage-usable", "state": "blocked", "why": "y"},))
    assert give_up_cause(link) == "link:storage-usable"


def test_only_give_ups_and_parked_waits_are_journaled_once_per_state() -> None:
    assert (
        state_key(report(Outcome.gave_up("x"), "no-managed-identity"))
        == "gave_up|blockers:no-managed-identity"
    )
    assert state_key(report(Outcome.wait(30, "s"), "cluster-stopped")) == "parked|cluster-stopped"
    assert state_key(report(Outcome.wait(30, "installing"))) is None
    assert state_key(report(Outcome.done("ok"))) is None


def test_only_the_alert_line_says_gave_up() -> None:
    give_up = report(Outcome.gave_up("work item failed on every delivery"))
    assert "gave up on" in alert_line(give_up)
    for text in (repeat_line(give_up), *(describe(kind) for kind in OutcomeKind)):
        assert "gave up" not in text and "gave_up" not in text
