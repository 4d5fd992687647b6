"""Short leases kept alive while their holder works (``adapters/leases.py``): what a dead process leaves
behind runs out within the lease (issue 17 item 3)."""

from __future__ import annotations

from remediator.adapters.leases import LEASE_S, RENEW_EVERY_S, LeaseRenewer, new_owner, process_identity


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_tracked_lease_is_renewed_on_schedule_until_untracked() -> None:
    clock = Clock()
    renewer = LeaseRenewer(every_s=5.0, clock=clock)
    renewals: list[float] = []
    renewer.track("claim", lambda: renewals.append(clock.now) is None)
    renewer.renew_due()
    assert renewals == []  # not due yet
    clock.now += 5.0
    renewer.renew_due()
    clock.now += 5.0
    renewer.renew_due()
    assert renewals == [105.0, 110.0]
    renewer.untrack("claim")
    clock.now += 5.0
    renewer.renew_due()
    assert renewals == [105.0, 110.0] and renewer.tracked == 0


def test_a_lost_lease_is_reported_once_and_a_failed_renewal_is_retried_soon() -> None:
    clock = Clock()
    renewer = LeaseRenewer(every_s=5.0, clock=clock)
    lost: list[str] = []
    answers = iter([RuntimeError("storage hiccup"), False])

    def renew() -> bool:
        answer = next(answers)
        if isinstance(answer, Exception):
            raise answer
        return answer

    renewer.track("hop", renew, on_lost=lambda: lost.append("hop"))
    clock.now += 5.0
    renewer.renew_due()  # raised: still tracked, retried within 2 s (the lease has time left)
    assert renewer.tracked == 1 and lost == []
    clock.now += 2.0
    renewer.renew_due()  # False: someone took it over
    assert lost == ["hop"] and renewer.tracked == 0


def test_renewals_come_well_inside_the_lease_and_owners_name_the_process() -> None:
    assert 2 * RENEW_EVERY_S < LEASE_S <= 60
    owner = new_owner()
    assert owner.startswith(process_identity() + "/") and len(owner.rsplit("/", 1)[-1]) == 12
