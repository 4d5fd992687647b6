"""The management-group resolver: membership per configured group, cached with a TTL (fake clock), failures
never turned into an answer."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Mapping
from typing import Any

import pytest
from azure.core.exceptions import ServiceRequestError

from remediator.adapters.arm import Transient
from remediator.adapters.graph import InventoryError
from remediator.adapters.management_groups import (
    MEMBERSHIP_TTL_S,
    SUBSCRIPTIONS_QUERY,
    ManagementGroupLookupError,
    ManagementGroupResolver,
)
from remediator.core.inventory_query import InventoryRequest

SUB_A = "aaaaaaaa-0000-0000-0000-000000000000"
SUB_B = "bbbbbbbb-0000-0000-0000-000000000000"
SUB_C = "cccccccc-0000-0000-0000-000000000000"


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class FakeGraph:
    """Answers the subscriptions query per management group from a dict; records every request."""

    def __init__(self, members: dict[str, list[str]]) -> None:
        self.members = members
        self.requests: list[InventoryRequest] = []
        self.fail: Exception | None = None
        self.fail_groups: dict[str, Exception] = {}
        self.delay_s = 0.0

    def iter_data(self, request: InventoryRequest) -> Iterator[Mapping[str, Any]]:
        self.requests.append(request)
        if self.delay_s:
            time.sleep(self.delay_s)
        if self.fail is not None:
            raise self.fail
        (group,) = request.management_groups
        if group in self.fail_groups:
            raise self.fail_groups[group]
        for sub in self.members[group]:
            yield {"id": f"/subscriptions/{sub}", "subscriptionId": sub}


@pytest.fixture
def graph() -> FakeGraph:
    return FakeGraph({"mg-platform": [SUB_A, SUB_B.upper()], "mg-prod": [SUB_B]})


def test_answers_the_configured_groups_containing_the_subscription(graph: FakeGraph) -> None:
    resolver = ManagementGroupResolver(graph, ["MG-Platform", "mg-prod"], clock=FakeClock())
    assert resolver.management_groups_of(SUB_A) == ("mg-platform",)
    assert resolver(SUB_B.upper()) == ("mg-platform", "mg-prod")
    assert resolver(f"/subscriptions/{SUB_B}") == ("mg-platform", "mg-prod")
    assert resolver(SUB_C) == ()
    # one scoped query per group, the documented one, and only once for all those lookups
    assert [r.management_groups for r in graph.requests] == [("mg-platform",), ("mg-prod",)]
    assert all(r.query == SUBSCRIPTIONS_QUERY and r.subscriptions == () for r in graph.requests)


def test_membership_is_cached_until_the_ttl_runs_out(graph: FakeGraph) -> None:
    clock = FakeClock()
    resolver = ManagementGroupResolver(graph, ["mg-prod"], clock=clock)
    assert resolver(SUB_A) == ()
    graph.members["mg-prod"].append(SUB_A)  # the subscription moves into the group
    clock.now += MEMBERSHIP_TTL_S - 1
    assert resolver(SUB_A) == () and resolver.refreshes == 1
    clock.now += 1
    assert resolver(SUB_A) == ("mg-prod",) and resolver.refreshes == 2
    resolver.invalidate()
    assert resolver(SUB_A) == ("mg-prod",) and resolver.refreshes == 3


@pytest.mark.parametrize(
    "error", [InventoryError("Resource Graph query failed: boom"), ServiceRequestError("connection reset")]
)
def test_a_failure_raises_a_transient_error_and_is_not_cached_as_an_answer(
    graph: FakeGraph, error: Exception
) -> None:
    clock = FakeClock()
    resolver = ManagementGroupResolver(graph, ["mg-platform"], clock=clock, failure_hold_s=5.0)
    graph.fail = error
    with pytest.raises(ManagementGroupLookupError) as info:
        resolver(SUB_A)
    assert isinstance(info.value, Transient) and info.value.__cause__ is error
    assert "mg-platform" in str(info.value)
    # within the hold, the same error without another query
    clock.now += 4.9
    with pytest.raises(ManagementGroupLookupError):
        resolver(SUB_A)
    assert len(graph.requests) == 1
    # after it, Resource Graph is asked again; once it answers, so does the resolver
    graph.fail = None
    clock.now += 0.2
    assert resolver(SUB_A) == ("mg-platform",) and len(graph.requests) == 2


def test_an_expired_membership_is_not_used_when_the_refresh_fails(graph: FakeGraph) -> None:
    clock = FakeClock()
    resolver = ManagementGroupResolver(graph, ["mg-platform"], clock=clock)
    assert resolver(SUB_A) == ("mg-platform",)
    clock.now += MEMBERSHIP_TTL_S
    graph.fail = InventoryError("Resource Graph query failed: 500")
    with pytest.raises(ManagementGroupLookupError):
        resolver(SUB_A)


def test_a_failing_group_fails_the_whole_lookup(graph: FakeGraph) -> None:
    """An answer of "in none of the groups" needs every group's membership; none is guessed."""
    graph.fail_groups["mg-missing"] = InventoryError("Management group 'mg-missing' was not found")
    resolver = ManagementGroupResolver(graph, ["mg-platform", "mg-missing"], clock=FakeClock())
    with pytest.raises(ManagementGroupLookupError, match="mg-missing"):
        resolver(SUB_C)
    with pytest.raises(ManagementGroupLookupError):
        resolver(SUB_A)  # in mg-platform, but the lookup as a whole failed: no partial answers


def test_concurrent_lookups_share_one_refresh(graph: FakeGraph) -> None:
    graph.delay_s = 0.05
    resolver = ManagementGroupResolver(graph, ["mg-platform"])
    results: list[tuple[str, ...]] = []
    threads = [threading.Thread(target=lambda: results.append(resolver(SUB_B))) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [("mg-platform",)] * 8
    assert len(graph.requests) == 1 and resolver.refreshes == 1
