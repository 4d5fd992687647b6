"""The shared write budget off the event path's critical path (issue 11 item 3), on Azurite's real table:
a reconcile takes its writes' tokens while it reads, its writes spend them, and whatever no write spent comes
back; a process's remembered row never spends a token twice when another instance changed the row."""

from __future__ import annotations

import time

import pytest

from remediator.adapters.shared_pacing import PACING_PARTITION, SharedWritePacer
from remediator.core.ids import parse_cluster_id
from remediator.core.outcomes import ActionStatus, OutcomeKind, WriteKind
from remediator.core.pacing import WritePacer
from tests.fixtures.emulator import TEST_SUB
from tests.integration.reconciler.conftest import cluster_id

pytestmark = pytest.mark.integration

OTHER_SUB = "00000000-0000-0000-0000-0000000000bb"
NOW = 1_000_000.0


def _pacer(world, *, refill_per_s: float = 1e-9, clock=None) -> SharedWritePacer:
    """A shared pacer on the world's journal table whose clock stands still unless one is given (no refill
    during a test)."""
    journal = world.runtime.journal
    return SharedWritePacer(
        journal.table,
        WritePacer(),
        refill_per_s=refill_per_s,
        ensure_table=journal.ensure_table,
        clock=clock or (lambda: NOW),
    )


def test_tokens_drawn_ahead_are_spent_or_given_back(world):
    pacer = _pacer(world)
    full = pacer.available(TEST_SUB)
    drawn = pacer.draw_ahead({TEST_SUB: 1.0, OTHER_SUB: 1.0})
    assert drawn == {TEST_SUB: 1.0, OTHER_SUB: 1.0}
    assert pacer.available(TEST_SUB) == full - 1 and pacer.available(OTHER_SUB) == full - 1
    verdict, unspent = pacer.try_acquire_prepaid({TEST_SUB: 1.0}, drawn, max_wait_s=1.0)
    assert verdict.granted and unspent == {OTHER_SUB: 1.0}
    assert pacer.available(TEST_SUB) == full - 1  # the write spent the token drawn ahead: no second draw
    pacer.give_back(unspent)
    assert pacer.available(OTHER_SUB) == full


def test_a_draw_ahead_takes_nothing_it_would_have_to_wait_for(world):
    pacer = _pacer(world)
    full = pacer.available(TEST_SUB)
    assert pacer.draw_ahead({TEST_SUB: full + 1}) == {}  # more than the bucket holds: drawn when sent
    assert pacer.available(TEST_SUB) == full


def test_a_remembered_row_another_instance_changed_is_read_again(world):
    mine, theirs = _pacer(world), _pacer(world)
    full = mine.available(TEST_SUB)
    assert mine.draw_ahead({TEST_SUB: 1.0}) == {TEST_SUB: 1.0}  # remembers the row it wrote
    assert theirs.draw_ahead({TEST_SUB: 2.0}) == {TEST_SUB: 2.0}  # the row moves on without it
    assert mine.draw_ahead({TEST_SUB: 1.0}) == {TEST_SUB: 1.0}  # its ETag is stale: read afresh, not lost
    assert mine.available(TEST_SUB) == full - 4


def test_a_fresh_install_spends_one_token_per_write_and_a_gated_cluster_none(world):
    pacer = _pacer(world)
    runtime = world.with_pacer(pacer)  # type: ignore[arg-type]
    full = pacer.available(TEST_SUB)  # the cluster's and the storage account's subscription
    report = runtime.reconciler.reconcile(parse_cluster_id(cluster_id("aks-ok")))
    assert [(a.kind, a.status) for a in report.actions] == [
        (WriteKind.CREATE_CONTAINER, ActionStatus.DONE),
        (WriteKind.CREATE_EXTENSION, ActionStatus.DONE),
    ]
    assert pacer.available(TEST_SUB) == full - 2
    stopped = runtime.reconciler.reconcile(parse_cluster_id(cluster_id("aks-stopped-b")))
    assert stopped.outcome.kind is not OutcomeKind.DONE and stopped.actions == ()
    assert pacer.available(TEST_SUB) == full - 2  # drawn with the cluster GET, given back when gated
    again = runtime.reconciler.reconcile(parse_cluster_id(cluster_id("aks-ok")))  # install under way
    assert [a.kind for a in again.actions if a.status is ActionStatus.DONE] == []
    assert pacer.available(TEST_SUB) == full - 2  # nothing written: every token drawn ahead came back
    runtime.close()


def test_the_tokens_are_drawn_while_the_cluster_get_is_in_flight(world, emulator):
    emulator.admin.set_config(latencyMs=150, jitterMs=0)
    pacer = _pacer(world, clock=time.time)  # the row's Stamp is the wall-clock time of the draw
    runtime = world.with_pacer(pacer)  # type: ignore[arg-type]
    report = runtime.reconciler.reconcile(parse_cluster_id(cluster_id("aks-ok")))
    assert [a.status for a in report.actions] == [ActionStatus.DONE, ActionStatus.DONE]
    get = next(c for c in world.calls() if c["operation"] == "ManagedClusters_Get")
    get_end = float(get["time"])
    get_start = get_end - float(get["durationMs"]) / 1000
    row = runtime.journal.table.get_entity(PACING_PARTITION, "writes-" + TEST_SUB.lower())
    # the writes spent the tokens drawn ahead (the row was not written again), and that draw was made
    # before the cluster's answer was in: no table round trip between the reads and the PUTs
    assert float(row["Stamp"]) < get_end
    assert float(row["Stamp"]) > get_start - 1.0
    puts = [c for c in world.writes() if c["method"] == "PUT" and c["path"].startswith("/subscriptions/")]
    assert len(puts) == 2
    first_put = min(float(c["time"]) - float(c["durationMs"]) / 1000 for c in puts)
    assert float(row["Stamp"]) < first_put
    runtime.close()
