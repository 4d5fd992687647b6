"""Outcomes and reports: constructors, JSON round trip, which outcome event a report warrants."""

import pytest

from remediator.core.outcomes import (
    Action,
    ActionStatus,
    EventType,
    Outcome,
    OutcomeKind,
    ReconcileReport,
    WriteKind,
)

CID = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.ContainerService/managedClusters/aks"


def report(outcome, *actions, **kw):
    return ReconcileReport(
        cluster_id=CID, decision={"selected": True}, outcome=outcome, actions=actions, **kw
    )


def test_constructors():
    assert Outcome.wait(5, "x") == Outcome(OutcomeKind.WAIT, "x", 5.0)
    assert Outcome.done("d").kind is OutcomeKind.DONE and Outcome.done("d").retry_after_s is None
    with pytest.raises(ValueError):
        Outcome.wait(-1, "no")


def test_report_json_round_trip():
    r = report(
        Outcome.wait(30, "install started"),
        Action(WriteKind.CREATE_CONTAINER, "/c", ActionStatus.DONE),
        Action(WriteKind.CREATE_EXTENSION, "/e", ActionStatus.DONE, "201"),
        attempt=3,
        extension_state=None,
        correlation_id="abc",
        findings=({"code": "gatekeeper-policy", "severity": "block", "remedy": "add ...", "evidence": {}},),
    )
    assert ReconcileReport.from_json(r.to_json()) == r
    assert r.to_json()["findings"][0]["code"] == "gatekeeper-policy"
    legacy = {k: v for k, v in r.to_json().items() if k != "findings"}  # journal rows from before findings
    assert ReconcileReport.from_json(legacy).findings == ()
    assert r.to_json()["outcome"] == {"kind": "wait", "why": "install started", "retryAfterSeconds": 30.0}


@pytest.mark.parametrize(
    ("outcome", "actions", "state", "expected"),
    [
        (Outcome.skipped("not-included"), (), None, EventType.SKIPPED),
        (Outcome.gave_up("no-managed-identity"), (), None, EventType.GAVE_UP),
        (
            Outcome.wait(30, "started"),
            ((WriteKind.CREATE_EXTENSION, ActionStatus.DONE),),
            None,
            EventType.INSTALL_STARTED,
        ),
        (
            Outcome.wait(30, "again"),
            ((WriteKind.REINSTALL_EXTENSION, ActionStatus.DONE),),
            "Failed",
            EventType.INSTALL_STARTED,
        ),
        (
            Outcome.wait(60, "task"),
            ((WriteKind.CREATE_REMEDIATION_TASK, ActionStatus.DONE),),
            None,
            EventType.REMEDIATION_TASK_CREATED,
        ),
        (
            Outcome.done("ok"),
            ((WriteKind.ASSIGN_ROLE, ActionStatus.DONE),),
            "Succeeded",
            EventType.INSTALLED,
        ),
        (Outcome.done("ok"), ((WriteKind.ASSIGN_ROLE, ActionStatus.EXISTS),), "Succeeded", None),
        (Outcome.done("ok"), (), "Succeeded", None),
        (Outcome.wait(30, "creating"), (), "Creating", None),
        (
            Outcome.wait(30, "claimed"),
            ((WriteKind.CREATE_EXTENSION, ActionStatus.CLAIMED_ELSEWHERE),),
            None,
            None,
        ),
    ],
)
def test_event_type(outcome, actions, state, expected):
    r = report(outcome, *(Action(k, "/t", s) for k, s in actions), extension_state=state)
    assert r.event_type() == expected


def test_dry_run_and_audit_publish_nothing():
    planned = Action(WriteKind.CREATE_EXTENSION, "/e", ActionStatus.PLANNED)
    assert report(Outcome.skipped("x"), dry_run=True).event_type() is None
    assert report(Outcome.gave_up("x"), mode="audit").event_type() is None
    assert not report(Outcome.wait(1, "x"), planned).wrote
