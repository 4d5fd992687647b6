"""The small chaos run in ``make test`` (issue 17): the whole app (two local Functions runners, the
emulator, Azurite) under duplicate and reordered events, ARM faults and one host kill. It asserts the
correctness figures only — everything targeted converges, nothing is written to a cluster the rules do not
select (or that is blocked or stopped), nothing is created twice, nothing is lost, no claim of the killed
process outlives its lease — never times (those are ``python -m bench chaos``'s, docs/performance.md)."""

from __future__ import annotations

import pytest

from bench.chaos import ChaosOptions, run_pair
from remediator.adapters.leases import LEASE_S

pytestmark = pytest.mark.e2e


def test_a_small_chaos_run_converges_without_a_wrong_or_duplicate_write() -> None:
    options = ChaosOptions(
        clusters=30,
        instances=2,
        copies=4,
        reorder=0.3,
        faults=0.2,
        kill_every_s=12.0,
        max_kills=1,
        kill_after_converged=2,  # mid-run on any machine: a clock alone can come after the last target
        poll_s=1.0,  # the kill waits on convergence seen by this poll
        restart_after_s=2.0,
        timeout_s=150.0,
        max_wait_s=3,
        seed=5,
        arrival_rate_per_s=4.0,
    )
    entry = run_pair(options, baseline=False)
    run = entry["chaos"]
    assert entry["estate"]["targets"] >= 8 and entry["estate"]["unselected"] >= 8
    assert len(run["kills"]) == 1, run["kills"]
    assert run["kills"][0]["pendingTargets"] > 0, run["kills"]  # the kill happened mid-run
    assert run["events"]["copies"] == 4 * run["events"]["events"] > 0
    assert run["converged"] == run["targets"], run["lostClusters"]
    assert run["lost"] == 0
    assert run["writesToUnselected"] == 0
    assert run["writesToBlocked"] == 0 and run["writesToStopped"] == 0
    assert run["writesToCompliantAtStart"] == 0
    assert run["duplicateCreates"] == 0
    assert run["poison"] == {"journaled": 0, "leftInPoisonQueue": 0}
    assert run["claimsLeftHeld"] == 0
    dead = run["deadProcessClaims"]
    assert dead["longestHoldAfterDeathSeconds"] <= LEASE_S + 1, dead
    assert run["longestWaitOnDeadClaimSeconds"] <= LEASE_S + 5, run["longestWaitOnDeadClaimSeconds"]
    assert run["connectionPoolFull"] == 0
