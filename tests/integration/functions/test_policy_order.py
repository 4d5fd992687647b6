"""Policy-state ordering survives processes and races: a Table entity advanced under ETag concurrency
(Azurite).
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest
from azure.data.tables import TableClient

from remediator.adapters.policy_order import PARTITION, PolicyStateOrder
from tests.fixtures.azurite import Azurite

pytestmark = pytest.mark.integration

CLUSTER = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.ContainerService/managedClusters/aks1"
ASSIGNMENT = "/subscriptions/s/providers/Microsoft.Authorization/policyAssignments/p3"
T0 = datetime(2026, 11, 22, 3, 0, tzinfo=UTC)


@pytest.fixture
def table(azurite: Azurite) -> TableClient:
    client = TableClient.from_connection_string(azurite.connection_string, Azurite.unique_name("order"))
    client.create_table()
    return client


def test_older_states_are_stale_newer_and_equal_ones_pass(table: TableClient) -> None:
    order = PolicyStateOrder(table)
    assert order.advance(CLUSTER, ASSIGNMENT, T0)
    assert not order.advance(CLUSTER, ASSIGNMENT, T0 - timedelta(microseconds=1))
    assert order.advance(CLUSTER, ASSIGNMENT, T0)  # a redelivery of the same state is processed again
    assert order.advance(CLUSTER.upper(), ASSIGNMENT.lower(), T0 + timedelta(seconds=1))  # ids in any casing
    assert not PolicyStateOrder(table).advance(CLUSTER, ASSIGNMENT, T0)  # durable: another "process" agrees
    assert PolicyStateOrder(table).advance(CLUSTER, ASSIGNMENT + "-other", T0 - timedelta(days=1))
    [row] = [
        e for e in table.query_entities(f"PartitionKey eq '{PARTITION}'") if e["assignmentId"] == ASSIGNMENT
    ]
    assert datetime.fromisoformat(row["lastTimestamp"]) == T0 + timedelta(seconds=1)


def test_concurrent_advances_keep_the_newest(table: TableClient) -> None:
    stamps = [T0 + timedelta(seconds=i) for i in range(12)]
    results: dict[datetime, bool] = {}

    def advance(moment: datetime) -> None:
        results[moment] = PolicyStateOrder(table).advance(CLUSTER, ASSIGNMENT, moment)

    threads = [threading.Thread(target=advance, args=(m,)) for m in reversed(stamps)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results[stamps[-1]] is True
    [row] = list(table.query_entities(f"PartitionKey eq '{PARTITION}'"))
    assert datetime.fromisoformat(row["lastTimestamp"]) == stamps[-1]
    assert not PolicyStateOrder(table).advance(CLUSTER, ASSIGNMENT, stamps[-2])


def test_a_mark_from_the_future_is_replaced_not_obeyed(table: TableClient) -> None:
    """A mark stored from a 9999-dated event (before the parser refused them) would make every real state
    stale forever; it is treated as absent and overwritten by the next real state."""
    now = T0 + timedelta(hours=1)
    order = PolicyStateOrder(table, clock=lambda: now)
    assert order.advance(CLUSTER, ASSIGNMENT, datetime(9999, 12, 31, tzinfo=UTC))  # as the old code stored it
    assert order.advance(CLUSTER, ASSIGNMENT, T0)  # a real, current state is not stale
    [row] = list(table.query_entities(f"PartitionKey eq '{PARTITION}'"))
    assert datetime.fromisoformat(row["lastTimestamp"]) == T0
    assert not order.advance(CLUSTER, ASSIGNMENT, T0 - timedelta(seconds=1))  # ordering works again
    near_future = now + timedelta(minutes=4)  # within the clock-skew allowance: still a valid mark
    assert order.advance(CLUSTER, ASSIGNMENT, near_future)
    assert not order.advance(CLUSTER, ASSIGNMENT, T0 + timedelta(minutes=30))
