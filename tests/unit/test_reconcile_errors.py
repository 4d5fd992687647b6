"""ARM errors map to outcomes in one place; the backoff grows and is capped; old journal rows still parse."""

from __future__ import annotations

import pytest

from remediator.adapters.arm import ArmError, Conflict, Forbidden, ProviderNotRegistered, Throttled, Transient
from remediator.core.outcomes import Action, ActionStatus, OutcomeKind, WriteKind
from remediator.service.reconcile.errors import backoff_seconds, outcome_for_error


def test_backoff_grows_and_is_capped():
    assert backoff_seconds(0) == 5 and backoff_seconds(1) == 10 and backoff_seconds(20) == 600


@pytest.mark.parametrize(
    ("error", "kind", "named"),
    [
        (Throttled("slow down", retry_after_s=37), OutcomeKind.WAIT, "throttled"),
        (Conflict("busy", code="OperationNotAllowed"), OutcomeKind.WAIT, "OperationNotAllowed"),
        (Transient("503"), OutcomeKind.WAIT, "transient"),
        (
            Forbidden("no", action="Microsoft.X/write"),
            OutcomeKind.GAVE_UP,
            "missing permission Microsoft.X/write",
        ),
        (ProviderNotRegistered("no", namespace="Microsoft.Y"), OutcomeKind.GAVE_UP, "Microsoft.Y"),
        (ArmError("bad request", status=400), OutcomeKind.GAVE_UP, "refused"),
    ],
)
def test_each_arm_error_has_one_outcome(error, kind, named):
    outcome = outcome_for_error(error, attempt=0)
    assert outcome.kind is kind and named in outcome.why
    if isinstance(error, Throttled):
        assert outcome.retry_after_s == 37


def test_journal_rows_with_the_former_grant_kind_still_parse():
    old = {"kind": "grant-storage-access", "target": "/x", "status": "done", "detail": "d"}
    action = Action.from_json(old)
    assert action.kind is WriteKind.ASSIGN_ROLE and action.status is ActionStatus.DONE and action.link == ""
    new = Action(WriteKind.ASSIGN_ROLE, "/x", ActionStatus.DONE, "d", "storage-access-granted")
    assert Action.from_json(new.to_json()) == new
