"""What ``python -m bench chaos`` measures from the journal and the instances' logs (``bench/chaos.py``)."""

from __future__ import annotations

import math
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.chaos import _round, dead_claim_waits, live_held_claims, scan_logs
from bench.harness import percentile

CLUSTER = "/subscriptions/s/resourcegroups/rg/providers/microsoft.containerservice/managedclusters/aks"
T0 = 1_800_000_000.0


def _report(at: float, holder_pid: str | None) -> dict[str, Any]:
    actions = []
    if holder_pid is not None:
        actions.append(
            {
                "status": "claimed-elsewhere",
                "detail": f"install held by vm/{holder_pid}/abc123 (held, 20 s left)",
            }
        )
    return {
        "clusterId": CLUSTER,
        "startedAt": datetime.fromtimestamp(at, UTC).isoformat().replace("+00:00", "Z"),
        "actions": actions,
    }


def test_a_wait_counts_as_on_a_dead_claim_only_once_its_holder_died() -> None:
    """Refused at T0 by process 41 while it lived, then again at T0+40 after its kill at T0+30; the next
    reconcile that was not refused started at T0+50: 10 s on a dead process's claim (not 50 s, which the
    any-time measure still reports)."""
    history = [_report(T0, "41"), _report(T0 + 40, "41"), _report(T0 + 50, None)]
    killed = {"41": {"pid": 41, "wall": T0 + 30}}
    assert dead_claim_waits(history, killed, {}) == {"longest": 10.0, "clusters": 1}
    assert dead_claim_waits(history, killed, {}, after_death=False)["longest"] == 50.0
    alive = {"41": {"pid": 41, "wall": T0 + 60}}  # killed only after the cluster moved on
    assert dead_claim_waits(history, alive, {}) == {"longest": 0.0, "clusters": 0}


def test_a_retired_work_item_is_counted_once(tmp_path: Path) -> None:
    """The chain adapter and the queue trigger each log a line for one retired item: one retire."""
    log = tmp_path / "runner-0-1.log"
    log.write_text(
        "2026-12-05 14:00:00,000 INFO remediator.adapters.chains: work item c/0 of X retires: the chain mark"
        " names c/1\n"
        "2026-12-05 14:00:00,001 INFO remediator.service.triggers.queue: work item for X (attempt 0) retires:"
        " another chain looks after it\n",
        encoding="utf-8",
    )
    assert scan_logs([log])["chains"] == {"retired": 1}


def test_a_target_that_never_converged_is_later_than_every_percentile_it_decides() -> None:
    """A run cut short by its timeout reports no p99 when more than 1 % never converged (before, the
    percentiles were taken over the converged targets only, so a cut run looked fast)."""
    needed = [float(i) for i in range(1, 97)]
    never = [math.inf] * 4
    assert _round(percentile(never + needed, 50)) == 50.0
    assert _round(percentile(never + needed, 99)) is None


def test_claims_left_held_count_live_holders_only() -> None:
    """A killed process's held claim stands until its lease runs out (measured as deadProcessClaims); a live
    process's held claim at the end is work in progress or a leak, and is counted."""
    later = time.time() + 20
    rows = [
        {"Owner": "vm/111/abc", "State": "held", "ExpiresAt": later},  # killed holder
        {"Owner": "vm/222/def", "State": "held", "ExpiresAt": later},  # live holder
        {"Owner": "vm/222/ghi", "State": "sent", "ExpiresAt": later},  # write sent: settled, not held
        {"Owner": "vm/222/jkl", "State": "held", "ExpiresAt": time.time() - 1},  # lease ran out
    ]
    assert live_held_claims(rows, {"111": {"pid": 111, "wall": 0.0}}) == 1
