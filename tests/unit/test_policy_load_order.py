"""A cold policy load (``PreflightSource.policy``) sends the assignments at the subscription's management
groups as soon as the ancestry is in, without waiting for the subscription's own assignments, which need no
ancestry and are read beside both: the load's dependent path is ``max(ancestry + group assignments, own
assignments)``, not ``max(ancestry, own assignments) + group assignments``."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping
from typing import Any

from remediator.adapters.preflight_source import PreflightSource
from remediator.core.inventory_query import InventoryRequest

SUB = "11111111-2222-3333-4444-555555555555"
ASSIGNMENT = (
    "/providers/Microsoft.Management/managementGroups/{}"
    "/providers/Microsoft.Authorization/policyAssignments/{}"
)


def _assignment(group: str, name: str) -> dict[str, Any]:
    return {
        "id": ASSIGNMENT.format(group, name),
        "name": name,
        "properties": {
            "policyDefinitionId": "",
            "scope": f"/providers/Microsoft.Management/managementGroups/{group}",
        },
    }


class _Graph:
    """Answers the policy load's three queries; the subscription's own assignments answer only once the
    groups' assignments were asked for (or after ``patience_s``, recording that they were not)."""

    def __init__(self, patience_s: float) -> None:
        self.patience_s = patience_s
        self.groups_asked = threading.Event()
        self.own_answered_after_groups_asked: bool | None = None
        self.order: list[str] = []
        self._lock = threading.Lock()

    def iter_data(self, request: InventoryRequest) -> Iterator[Mapping[str, Any]]:
        query = request.query.lower()
        if "resourcecontainers" in query:
            self._log("ancestry")
            yield {"subscriptionId": SUB, "chain": [{"name": "mg-child"}, {"name": "mg-root"}]}
        elif request.management_groups:
            self._log("group-assignments")
            self.groups_asked.set()
            yield _assignment("mg-root", "at-group")
        else:
            self._log("own-assignments")
            self.own_answered_after_groups_asked = self.groups_asked.wait(self.patience_s)
            self._log("own-assignments answered")
            return

    def _log(self, what: str) -> None:
        with self._lock:
            self.order.append(what)


class _Clients:
    def policy(self, _subscription: str) -> None:
        return None  # no built-in definition is read here (the assignment references none)


def test_group_assignments_follow_the_ancestry_without_waiting_for_the_subscriptions_own():
    graph = _Graph(patience_s=5.0)
    source = PreflightSource(clients=_Clients(), gateway=None, graph=graph)  # type: ignore[arg-type]
    view = source.policy(SUB)
    assert graph.own_answered_after_groups_asked is True, graph.order
    assert view.management_groups == ("mg-child", "mg-root")
    assert view.error == ""
    assert view.data is not None
    assert [a.id for a in view.data.assignments] == [ASSIGNMENT.format("mg-root", "at-group")]
    assert graph.order.index("group-assignments") < graph.order.index("own-assignments answered")
    assert source.policy_reads == 1
    # served from the cache afterwards: no second load
    source.policy(SUB)
    assert source.policy_reads == 1 and graph.order.count("ancestry") == 1
