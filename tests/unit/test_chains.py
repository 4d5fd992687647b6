"""One chain of work items per cluster (issue 17 F4): when a delivery joins the chain in flight, when a work
item runs and when it retires (``core.chains``, pure)."""

from __future__ import annotations

import pytest

from remediator.core.chains import GUARD_AFTER_S, JOIN_GRACE_S, JOIN_SLACK_S, ChainMark, joinable

NOW = 1_800_000_000.0


def mark(*, due: float, running: bool = False, ended: bool = False, attempt: int = 3) -> ChainMark:
    return ChainMark("chain-a", attempt, NOW + due, running, ended)


@pytest.mark.parametrize(
    ("due", "delay", "expected"),
    [
        (10.0, 30.0, True),  # asleep, due before the delivery would come back: join
        (30.0 + JOIN_SLACK_S, 30.0, True),  # a little later is still fine
        (30.0 + JOIN_SLACK_S + 1, 30.0, False),  # later than the delivery wants: start a chain of its own
        (-JOIN_GRACE_S + 1, 5.0, True),  # due a moment ago: its item is visible and about to run
        (-JOIN_GRACE_S - 1, 5.0, False),  # long overdue: it may sit on a dead host
    ],
)
def test_a_delivery_joins_a_sleeping_chain_due_no_later_than_it_wants(
    due: float, delay: float, expected: bool
) -> None:
    assert joinable(mark(due=due), now=NOW, delay_s=delay) is expected


def test_a_running_or_ended_chain_or_none_is_never_joined() -> None:
    assert not joinable(None, now=NOW, delay_s=30)
    # a running hop may have read the cluster before the delivery's news and then sleep long
    assert not joinable(mark(due=5, running=True), now=NOW, delay_s=30)
    assert not joinable(mark(due=5, ended=True), now=NOW, delay_s=30)


def test_the_mark_lets_exactly_its_chain_run_from_its_attempt_on() -> None:
    current = mark(due=0, attempt=3)
    assert current.names("chain-a", 3) and current.names("chain-a", 4)
    assert current.superseded("chain-a", 2)  # an earlier hop (a guard copy, a host's late redelivery)
    assert current.superseded("chain-b", 3)  # another chain took the cluster over
    ended = mark(due=0, attempt=3, ended=True)
    assert ended.superseded("chain-a", 3)  # the guard copy of an ended chain retires


def test_the_guard_comes_well_before_the_hosts_ten_minute_lock() -> None:
    assert JOIN_GRACE_S < GUARD_AFTER_S < 600
