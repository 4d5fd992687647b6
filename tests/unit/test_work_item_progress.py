"""The attempt bound counts queue hops without progress (``REMEDIATOR_MAX_ATTEMPTS``,
``remediator.core.work_item``): a link newly settled starts the count again, so a slow but healthy protect run
is not given up on the hop count, while a chain stuck on one link still is, and every chain ends."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from remediator.core.errors import UserInputError
from remediator.core.ids import parse_cluster_id
from remediator.core.plan.requirement import LINK_STATES, SETTLED_STATES, settled_links
from remediator.core.work_item import WorkItem

CLUSTER = (
    "/subscriptions/00000000-0000-0000-0000-000000000001/resourceGroups/rg/providers/"
    "Microsoft.ContainerService/managedClusters/aks"
)


def item(**fields: object) -> WorkItem:
    return WorkItem(cluster_id=parse_cluster_id(CLUSTER), **fields)  # type: ignore[arg-type]


def test_a_newly_settled_link_is_progress_and_restarts_the_count() -> None:
    first = item().next_attempt(reason="vault creating", satisfied_links=3)
    assert (first.attempt, first.progress_attempt, first.satisfied_links) == (1, 1, 3)
    assert first.attempts_without_progress == 0
    same = first.next_attempt(reason="vault creating", satisfied_links=3)
    assert (same.attempt, same.progress_attempt, same.attempts_without_progress) == (2, 1, 1)
    fewer = same.next_attempt(reason="a role was removed meanwhile", satisfied_links=2)
    assert fewer.attempts_without_progress == 2 and fewer.satisfied_links == 3  # the mark only rises
    back = fewer.next_attempt(reason="the role is back", satisfied_links=3)
    assert back.attempts_without_progress == 3  # coming back to the mark is not progress twice
    more = back.next_attempt(reason="validating", satisfied_links=4)
    assert (more.attempt, more.progress_attempt, more.attempts_without_progress) == (5, 5, 0)


def test_without_a_link_count_the_count_is_todays() -> None:
    follow_up = item(attempt=7).next_attempt(reason="wait")
    assert (follow_up.attempt, follow_up.progress_attempt, follow_up.attempts_without_progress) == (8, 0, 8)


def test_the_progress_mark_travels_on_the_wire_and_old_messages_read_as_before() -> None:
    carried = item(attempt=9, progress_attempt=6, satisfied_links=11)
    wire = json.loads(carried.to_message())
    assert (wire["progressAttempt"], wire["satisfiedLinks"]) == (6, 11)
    assert WorkItem.from_message(carried.to_message()) == carried
    old = WorkItem.from_json({"clusterId": CLUSTER, "attempt": 4})
    assert (old.progress_attempt, old.satisfied_links, old.attempts_without_progress) == (0, 0, 4)
    assert "progressAttempt" not in json.loads(old.to_message())  # a fresh item's wire form is unchanged


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("progressAttempt", 5),  # after the attempt itself
        ("progressAttempt", -1),
        ("progressAttempt", True),
        ("progressAttempt", "2"),
        ("satisfiedLinks", -3),
        ("satisfiedLinks", 10**6),
        ("satisfiedLinks", [1]),
    ],
)
def test_a_malformed_progress_mark_names_its_field(field: str, value: object) -> None:
    with pytest.raises(UserInputError) as err:
        WorkItem.from_json({"clusterId": CLUSTER, "attempt": 4, field: value})
    assert err.value.field == field


def test_settled_links_are_the_satisfied_ones() -> None:
    assert set(LINK_STATES) >= SETTLED_STATES
    links = [{"link": f"l{i}", "state": state} for i, state in enumerate(LINK_STATES)]
    assert settled_links(links) == 3  # satisfied, not-needed, superseded


@settings(max_examples=200, deadline=None)
@given(
    links=st.integers(min_value=1, max_value=20),
    bound=st.integers(min_value=1, max_value=40),
    counts=st.lists(st.integers(min_value=0, max_value=20), min_size=1, max_size=2000),
)
def test_every_chain_ends_within_links_plus_one_bounds(links: int, bound: int, counts: list[int]) -> None:
    """Whatever each hop finds settled, the bound on hops without progress ends the chain within
    ``(links + 1) * bound`` hops: the mark only rises, and at most ``links`` times."""
    current = item()
    for hop, seen in enumerate(counts, start=1):
        current = current.next_attempt(reason="wait", satisfied_links=min(seen, links))
        if current.attempts_without_progress >= bound:
            assert hop <= (links + 1) * bound
            return
    assert len(counts) <= (links + 1) * bound
