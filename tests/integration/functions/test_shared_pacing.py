"""The write budget shared by every instance (``adapters/shared_pacing.py``) on a real Table (Azurite): many
instances' concurrent reconciles drawing from one subscription's row."""

from __future__ import annotations

import threading

import pytest
from azure.data.tables import TableClient

from remediator.adapters import shared_pacing
from remediator.adapters.shared_pacing import PACING_PARTITION, SharedWritePacer
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


def _contend(table: TableClient) -> list[bool]:
    """Every instance's reconciles take one write each, all at once, on a frozen clock (no refill, so the
    row must end exactly ``taken`` lower)."""
    pacers = [SharedWritePacer(table, WritePacer(), clock=lambda: NOW) for _ in range(INSTANCES)]
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
    return granted


def test_concurrent_takes_are_all_granted_and_the_row_counts_each_once(table: TableClient) -> None:
    """96 takes against a bucket of 190: none is refused. Before, eight back-to-back tries let contenders
    collide in lockstep, and a refused take cost the cluster a whole queue hop (the chaos run's "pacing"
    waits); the random, growing pause between tries spreads them."""
    granted = _contend(table)
    assert len(granted) == INSTANCES * CONCURRENCY * TAKES
    assert all(granted), f"{granted.count(False)} takes refused as contended"
    row = table.get_entity(PACING_PARTITION, "writes-" + SUBSCRIPTION)
    capacity = SharedWritePacer(table, WritePacer()).capacity
    assert float(row["Tokens"]) == pytest.approx(capacity - len(granted))  # each take counted exactly once


def test_back_to_back_tries_are_what_loses_under_contention(
    table: TableClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same load with the old policy (eight tries, no pause between them) refuses takes: the pause is
    what the first test measures, not luck."""
    monkeypatch.setattr(shared_pacing, "MAX_CONFLICT_RETRIES", 8)
    monkeypatch.setattr(shared_pacing, "CONFLICT_BACKOFF_S", 0.0)
    granted = _contend(table)
    row = table.get_entity(PACING_PARTITION, "writes-" + SUBSCRIPTION)
    capacity = SharedWritePacer(table, WritePacer()).capacity
    assert float(row["Tokens"]) == pytest.approx(capacity - granted.count(True))  # never an overspend
    assert granted.count(False) > 0
