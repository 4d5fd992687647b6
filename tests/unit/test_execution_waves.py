"""Two waves of one plan's writes (the settled ones sent early, then the rest) report as one would."""

from __future__ import annotations

from remediator.adapters.arm import ArmError
from remediator.core.outcomes import Action, ActionStatus, Outcome, WriteKind
from remediator.service.reconcile.execute import Execution


def action(status: ActionStatus, link: str = "extension-installed") -> Action:
    return Action(WriteKind.CREATE_EXTENSION, "/x", status, "", link)


SENT = Execution(actions=[action(ActionStatus.DONE)])
CLAIM_WAIT = Outcome.wait(12, "another reconcile holds the container claim")


def test_both_sent_keep_every_action_and_no_outcome_of_their_own():
    later = Execution(actions=[action(ActionStatus.DONE, "backup-container")])
    merged = SENT.then(later)
    assert merged.actions == [*SENT.actions, *later.actions]
    assert merged.outcome is None and merged.elsewhere is None and merged.error is None


def test_the_first_error_wins():
    first, second = ArmError("a", operation="PUT"), ArmError("b", operation="PUT")
    merged = Execution(error=first).then(Execution(error=second))
    assert merged.error is first
    assert Execution().then(Execution(error=second)).error is second


def test_a_wave_left_to_another_reconcile_after_one_was_sent_is_elsewhere_not_the_outcome():
    left = [action(ActionStatus.CLAIMED_ELSEWHERE, "backup-container")]
    elsewhere = Execution(actions=left, outcome=CLAIM_WAIT)
    merged = SENT.then(elsewhere)
    assert merged.outcome is None and merged.elsewhere == CLAIM_WAIT
    # both waves another's: the claim's wait is the outcome, as one execution of both would say
    both = elsewhere.then(Execution(actions=[action(ActionStatus.CLAIMED_ELSEWHERE)], outcome=CLAIM_WAIT))
    assert both.outcome == CLAIM_WAIT and both.elsewhere is None


def test_an_outcome_of_its_own_wins_over_a_claim_elsewhere():
    paced = Outcome.wait(3, "pacing ARM writes")
    deferred = Execution(actions=[action(ActionStatus.DEFERRED, "backup-container")], outcome=paced)
    elsewhere = Execution(actions=[action(ActionStatus.CLAIMED_ELSEWHERE)], outcome=CLAIM_WAIT)
    assert elsewhere.then(deferred).outcome == paced
    assert SENT.then(deferred).outcome == paced
