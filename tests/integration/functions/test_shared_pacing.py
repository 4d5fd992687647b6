"""The write budget shared by every instance (``adapters/shared_pacing.py``) on a real Table (Azurite): many
instances' concurrent reconciles drawing from one subscription's row."""

from __future__ import annotations

import threading

import pytest
from azure.data.tables import TableClient

from remediator.adapters.shared_pacing import (
    ALLOTMENT_S,
    DRAW_AHEAD,
    PACING_PARTITION,
    SharedWritePacer,
)
from remediator.core.pacing import WritePacer
from tests.fixtures.azurite import Azurite

pytestmark = pytest.mark.integration

SUBSCRIPTION = "4dad2986-ce83-4960-aa06-e9ab85a0bcc1"
NOW = 1_800_000_000.0
INSTANCES = 4
CONCURRENCY = 8
"""Reconciles in flight per instance (the chaos run's hosts run about that many at once)."""
TAKES = 3


@pytest.fixture
def table(azurite: Azurite) -> TableClient:
    client = TableClient.from_connection_string(azurite.connection_string, Azurite.unique_name("pacing"))
    client.create_table()
    return client


class Clock:
    """Epoch seconds that stand still unless moved (no refill during a test)."""

    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> float:
        return self.now


def _row_tokens(table: TableClient) -> float:
    return float(table.get_entity(PACING_PARTITION, "writes-" + SUBSCRIPTION)["Tokens"])


def test_concurrent_takes_are_granted_and_each_write_is_counted_once(table: TableClient) -> None:
    """Four instances with eight reconciles each take one write three times, all at once: none is refused as
    contended (before: eight back-to-back tries per reconcile on one row, and the chaos run's reconciles
    lost hundreds of draws, each a queue hop), the row is touched far less than once per write, and what
    the row lost is exactly what was taken plus what the instances still hold."""
    clock = Clock()
    pacers = [SharedWritePacer(table, WritePacer(), clock=clock) for _ in range(INSTANCES)]
    granted: list[bool] = []
    lock = threading.Lock()
    start = threading.Barrier(INSTANCES * CONCURRENCY)

    def reconciles(pacer: SharedWritePacer) -> None:
        start.wait()
        for _ in range(TAKES):
            verdict = pacer.try_acquire({SUBSCRIPTION: 1.0}, max_wait_s=1.0)
            with lock:
                granted.append(verdict.granted)

    threads = [
        threading.Thread(target=reconciles, args=(pacer,)) for pacer in pacers for _ in range(CONCURRENCY)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(granted) == INSTANCES * CONCURRENCY * TAKES
    assert all(granted), f"{granted.count(False)} takes refused"
    held = sum(p.held(SUBSCRIPTION) for p in pacers)
    assert _row_tokens(table) + held == pytest.approx(pacers[0].capacity - len(granted))
    assert sum(p.draws for p in pacers) <= len(granted) / 2  # most takes came from an allotment


def test_an_allotment_lapses_back_into_the_row(table: TableClient) -> None:
    """Writes drawn ahead and not spent within ALLOTMENT_S go back to the bucket with the next draw."""
    clock = Clock()
    pacer = SharedWritePacer(table, WritePacer(), clock=clock)
    assert pacer.try_acquire({SUBSCRIPTION: 1.0}, max_wait_s=0.0).granted
    assert pacer.held(SUBSCRIPTION) == DRAW_AHEAD
    assert _row_tokens(table) == pacer.capacity - 1 - DRAW_AHEAD
    assert pacer.try_acquire({SUBSCRIPTION: 1.0}, max_wait_s=0.0).granted  # from the allotment
    assert pacer.draws == 1 and _row_tokens(table) == pacer.capacity - 1 - DRAW_AHEAD
    clock.now += ALLOTMENT_S + 0.5  # lapsed (the clock stands still for the refill: the row says NOW)
    assert pacer.try_acquire({SUBSCRIPTION: 1.0}, max_wait_s=0.0).granted
    # the row refilled, got the lapsed DRAW_AHEAD - 1 back, and gave this write and a new allotment
    refilled = min(pacer.capacity, pacer.capacity - 1 - DRAW_AHEAD + (ALLOTMENT_S + 0.5) * pacer.refill_per_s)
    expected = min(pacer.capacity, refilled + DRAW_AHEAD - 1) - 1 - DRAW_AHEAD
    assert _row_tokens(table) == pytest.approx(expected)


def test_a_low_bucket_draws_nothing_ahead_and_a_429_drops_the_allotment(table: TableClient) -> None:
    """Below half full, a draw takes exactly what it needs (nothing is held back from other instances); a
    429 from ARM's own throttling empties the row and drops what this process held."""
    clock = Clock()
    pacer = SharedWritePacer(table, WritePacer(), clock=clock)
    assert pacer.try_acquire({SUBSCRIPTION: 1.0}, max_wait_s=0.0).granted
    assert pacer.held(SUBSCRIPTION) == DRAW_AHEAD
    pacer.throttled(SUBSCRIPTION, 2.0, code="SubscriptionRequestsThrottled")
    assert pacer.held(SUBSCRIPTION) == 0.0
    assert _row_tokens(table) < 0
    clock.now += 2.0 + pacer.capacity / (2 * pacer.refill_per_s)  # refilled to under half
    assert pacer.try_acquire({SUBSCRIPTION: 1.0}, max_wait_s=0.0).granted
    assert pacer.held(SUBSCRIPTION) == 0.0
