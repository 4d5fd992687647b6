"""The sweep's plan phase over the shipped example clusters: what is enqueued, counted, paced and recorded.

The inventory and the queue are in-memory stand-ins for the product's own ports (no SDK is involved); the
Resource Graph side is covered against the emulator in tests/integration/sweep/.
"""

from __future__ import annotations

import dataclasses
import json
import threading
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from remediator.adapters.graph import InventoryRow, InventoryStats
from remediator.core.config import load_config
from remediator.core.coverage import DecisionIndex, RoleGrant
from remediator.core.ids import ResourceId
from remediator.core.inventory_query import InventoryPlan
from remediator.core.pacing import WritePacer
from remediator.service import sweep as sweep_module
from remediator.service.sweep import Sweeper

ROOT = Path(__file__).resolve().parents[2]
CLUSTERS = ROOT / "examples" / "clusters"


class ListInventory:
    def __init__(self, rows: list[InventoryRow]) -> None:
        self.rows = rows
        self.plans: list[InventoryPlan] = []

    def iter_rows(
        self, plan: InventoryPlan, *, stats: InventoryStats | None = None
    ) -> Iterator[InventoryRow]:
        self.plans.append(plan)
        for row in self.rows:
            if stats is not None:
                stats.rows += 1
            yield row

    def policy_summary(self, plan: InventoryPlan, query: str, *, stats: InventoryStats) -> dict[str, int]:
        return {"x/NonCompliant": 1}


class MemoryQueue:
    def __init__(self, *, fail_on: str | None = None) -> None:
        self.items: list[dict[str, Any]] = []
        self.fail_on = fail_on
        self.lock = threading.Lock()

    def enqueue_work(
        self,
        cluster_id: ResourceId,
        *,
        attempt: int,
        source: str,
        reason: str,
        correlation_id: str,
        delay_s: float,
    ) -> None:
        assert isinstance(cluster_id, ResourceId), "the port takes a parsed id"
        if self.fail_on and self.fail_on in cluster_id.canonical:
            raise OSError("queue down")
        with self.lock:
            self.items.append(
                {"clusterId": cluster_id.canonical, "source": source, "delay": delay_s, "cid": correlation_id}
            )


class Recorder:
    def __init__(self) -> None:
        self.summaries: list[Mapping[str, Any]] = []

    def record_sweep(self, summary: Mapping[str, Any]) -> None:
        self.summaries.append(summary)


def row(name: str, *, extension_state: str | None = None) -> InventoryRow:
    body = json.loads((CLUSTERS / f"{name}.json").read_text())
    return InventoryRow(
        cluster_id=body["id"],
        subscription_id=body["id"].split("/")[2],
        body=body,
        extension_name=None if extension_state is None else "azure-aks-backup",
        extension_state=extension_state,
    )


ALL = sorted(p.stem for p in CLUSTERS.glob("*.json"))


def sweeper(rows: list[InventoryRow], queue: MemoryQueue, **kwargs: Any) -> Sweeper:
    return Sweeper(
        config=load_config(ROOT / "examples" / "policy3-include-tag.yaml"),
        inventory=ListInventory(rows),
        work=queue,
        **kwargs,
    )


def test_only_selected_unblocked_clusters_are_enqueued_and_every_row_is_counted() -> None:
    queue, recorder = MemoryQueue(), Recorder()
    rows = [row(name, extension_state="Failed" if name == "ephemeral" else None) for name in ALL]
    summary = sweeper(rows, queue, recorders=(recorder,), batch_size=2, max_concurrency=2).run(dry_run=False)

    enqueued = sorted(item["clusterId"].lower() for item in queue.items)
    assert enqueued == sorted([row("tagged").cluster_id.lower(), row("ephemeral").cluster_id.lower()])
    assert summary.enqueued == 2
    assert summary.candidates == len(ALL)
    assert sum(summary.by_reason.values()) == len(ALL)
    assert summary.by_reason["selected"] == 5
    assert summary.blocked == 2  # service-principal, windows-only
    assert summary.deferred == 1  # stopped
    assert summary.by_blocker == {"no-managed-identity": 1, "no-linux-amd64-pool": 1, "cluster-stopped": 1}
    assert summary.by_extension_state["failed"] == 1
    assert {item["source"] for item in queue.items} == {"sweep"}
    assert {item["cid"] for item in queue.items} == {summary.correlation_id}
    assert recorder.summaries == [summary.to_json()]


def test_dry_run_enqueues_and_records_nothing() -> None:
    queue, recorder = MemoryQueue(), Recorder()
    summary = sweeper([row(n) for n in ALL], queue, recorders=(recorder,)).run(dry_run=True)
    assert queue.items == []
    assert recorder.summaries == []
    assert summary.would_enqueue == 2 and summary.enqueued == 0


class FlakyQueue(MemoryQueue):
    """Refuses the first ``failures`` enqueues (a storage hiccup), then works."""

    def __init__(self, failures: int) -> None:
        super().__init__()
        self.failures = failures
        self.tries = 0

    def enqueue_work(self, cluster_id: ResourceId, **kwargs: Any) -> None:
        with self.lock:
            self.tries += 1
            refuse = self.tries <= self.failures
        if refuse:
            raise OSError("connection reset by peer")
        super().enqueue_work(cluster_id, **kwargs)


def test_an_enqueue_that_fails_once_is_tried_again(monkeypatch: pytest.MonkeyPatch) -> None:
    """A storage hiccup does not leave a cluster without work until the next sweep (an hour): the enqueue is
    tried again after a short pause; only a failure that outlasts the retries counts."""
    monkeypatch.setattr(sweep_module, "ENQUEUE_RETRY_DELAYS_S", (0.0, 0.0))
    queue = FlakyQueue(failures=2)
    summary = sweeper([row("tagged")], queue).run(dry_run=False)
    assert queue.tries == 3 and len(queue.items) == 1
    assert summary.enqueued == 1 and summary.enqueue_failures == 0 and summary.ok
    broken = FlakyQueue(failures=3)
    summary = sweeper([row("tagged")], broken).run(dry_run=False)
    assert broken.tries == 3 and summary.enqueue_failures == 1 and not summary.ok


def test_enqueue_failures_are_counted_not_raised(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sweep_module, "ENQUEUE_RETRY_DELAYS_S", (0.0, 0.0))
    queue = MemoryQueue(fail_on="aks-payments-eus-01")
    summary = sweeper([row("tagged"), row("ephemeral")], queue).run(dry_run=False)
    assert summary.enqueued == 1
    assert summary.enqueue_failures == 1
    assert not summary.ok


def test_pacing_turns_write_budget_into_visibility_delays() -> None:
    now = [0.0]
    pacer = WritePacer(capacity=4, refill_per_s=2, headroom=0, clock=lambda: now[0], sleep=lambda s: None)
    queue = MemoryQueue()
    rows = [row("tagged")] * 4
    sweeper(rows, queue, pacer=pacer, batch_size=1, max_concurrency=1).run(dry_run=False)
    # Each cluster costs 1 write in its subscription and 2 (container + grant) in the storage subscription,
    # which here is the same subscription: 3 tokens per cluster from a 4-token bucket refilling 2/s.
    assert sorted(item["delay"] for item in queue.items) == pytest.approx([0.0, 1.0, 2.5, 4.0])


def test_unreadable_rows_are_skipped_and_counted() -> None:
    broken = InventoryRow(
        cluster_id="/subscriptions/x",
        subscription_id="x",
        body={"id": "not-an-id", "location": "eastus"},
        extension_name=None,
        extension_state=None,
    )
    queue = MemoryQueue()
    summary = sweeper([broken, row("tagged")], queue).run(dry_run=False)
    assert summary.invalid == 1
    assert summary.enqueued == 1


def test_progress_reports_rows_and_enqueued() -> None:
    seen: list[tuple[int, int]] = []
    sweeper([row("tagged")] * 250, MemoryQueue()).run(
        dry_run=False, progress=lambda r, e: seen.append((r, e))
    )
    assert [r for r, _ in seen] == [100, 200, 250]
    assert seen[-1] == (250, 250)


def test_regression_f3_a_cluster_with_the_extension_but_no_grant_is_enqueued() -> None:
    """Issue 17 F3: the sweep used to keep only clusters whose extension was not Succeeded."""
    config = load_config(ROOT / "examples" / "policy3-include-tag.yaml")
    storage = str(config.storage_for("eastus"))
    principal = "7d9c0a44-1e4f-4c59-9d11-0f5b9c1a2b3c"
    base = row("tagged", extension_state="Succeeded")
    ungranted = dataclasses.replace(base, extension_principal_id=principal)
    granted = dataclasses.replace(
        ungranted, grants=(RoleGrant(principal, "ba92f5b4-2d11-453d-a403-e96b0029c9fe", storage),)
    )
    queue = MemoryQueue()
    summary = sweeper([ungranted], queue).run(dry_run=False)
    assert [item["clusterId"].lower() for item in queue.items] == [base.cluster_id.lower()]
    assert summary.by_need == {"storage-access-granted:missing": 1}
    assert (summary.selected, summary.protected) == (1, 0)
    queue = MemoryQueue()
    summary = sweeper([granted], queue).run(dry_run=False)
    assert queue.items == [] and summary.satisfied == 1
    assert (summary.selected, summary.protected) == (1, 1)


class MemoryDecisions:
    def __init__(self) -> None:
        self.keys: dict[str, str] = {}
        self.journaled: list[Any] = []
        self.windows: list[float] = []

    def decision_index(self, scope: str) -> DecisionIndex:
        return DecisionIndex(keys=dict(self.keys), last_sweep_at=self.windows[-1] if self.windows else None)

    def record_decisions(self, decisions: Any) -> None:
        for decision in decisions:
            self.keys[decision.cluster_key] = decision.key
            if decision.report is not None:
                self.journaled.append(decision.report)

    def record_sweep_window(self, scope: str, started_at: float) -> None:
        self.windows.append(started_at)


def test_decisions_are_journaled_when_they_change_and_dry_runs_journal_nothing() -> None:
    rows = [row(name) for name in ALL]
    journal = MemoryDecisions()
    sweeper(rows, MemoryQueue(), decisions=journal).run(dry_run=True)
    assert journal.journaled == [] and journal.windows == []
    first = sweeper(rows, MemoryQueue(), decisions=journal).run(dry_run=False)
    outcomes = {r.cluster_id.rsplit("/", 1)[-1]: r.outcome.kind.value for r in journal.journaled}
    assert first.decisions_journaled == len(outcomes) == len(ALL) - 2  # the two enqueued ones are not
    assert set(outcomes.values()) == {"skipped", "gave_up", "wait"}
    second = sweeper(rows, MemoryQueue(), decisions=journal).run(dry_run=False)
    assert second.decisions_journaled == 0 and len(journal.windows) == 2


def test_the_cluster_list_names_every_row_and_marks_failed_enqueues() -> None:
    queue = MemoryQueue(fail_on="aks-payments-eus-01")
    summary = sweeper([row(name) for name in ALL], queue).run(dry_run=False, list_clusters=True)
    listed = {c["name"]: c for c in summary.to_json(clusters=True)["clusters"]}
    assert len(listed) == len(ALL) == summary.candidates
    assert [c["decision"] for c in listed.values()].count("enqueue-failed") == 1
    assert [c["decision"] for c in listed.values()].count("enqueued") == 1
    assert {c["decision"] for c in listed.values()} >= {"blocked", "deferred", "not-selected"}
    assert all(c["nextAction"] and c["region"] and c["resourceGroup"] for c in listed.values())
