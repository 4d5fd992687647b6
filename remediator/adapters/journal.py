"""Decision/action/outcome history in Azure Table Storage.

Every reconcile is recorded, so an operator can ask "what did the remediator do to this cluster, and why" and
the reconciler can count its own earlier re-installs of a Failed extension. Table layout (architecture.md):
table ``remediatorjournal``; PartitionKey = sha256 of the cluster id under Azure's case rule
(``core.naming.cluster_key``: the lower-cased id for ASCII ids; ids contain ``/``, which Table keys forbid);
history rows ``h-<inverted ms timestamp>-<short uuid>`` (newest first in key order); one ``latest`` row per
cluster.

Two index partitions let the sweep and the report read what they need about every cluster in one partition
query each, never one read per cluster:

- ``latest-outcomes``: RowKey = the cluster's partition key; the newest outcome (kind, why, time), upserted by
  :meth:`Journal.record` after each report. The report reads it in bulk (:meth:`Journal.latest_outcomes`) to
  tell a cluster that gave up (with the cause) from one not started.
- ``sweep-decisions``: RowKey = the cluster's partition key; the sweep's last decision key
  (``core.coverage.decision_key``). The sweep reads it in bulk at its start (:meth:`Journal.decision_index`)
  and journals a cluster's decision (a history row, never the ``latest`` row) only when its key changed
  (:meth:`Journal.record_decisions`), so a stopped or blocked cluster is journaled once per change, not once
  per sweep. Rows ``~window-<scope digest>`` hold each sweep scope's last start (the re-verification window).

Write claims live in the same table and partitions (``remediator.adapters.claims``).
"""

from __future__ import annotations

import contextlib
import json
import logging
import threading
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from azure.core import MatchConditions
from azure.core.exceptions import (
    HttpResponseError,
    ResourceExistsError,
    ResourceModifiedError,
    ResourceNotFoundError,
)
from azure.data.tables import TableClient, TableTransactionError, UpdateMode

from remediator.adapters.clients import STORAGE_OPTIONS
from remediator.core.alerts import state_key
from remediator.core.coverage import DecisionIndex, JournaledDecision, LatestOutcome
from remediator.core.errors import UserInputError
from remediator.core.naming import cluster_key
from remediator.core.outcomes import ActionStatus, OutcomeKind, ReconcileReport, WriteKind
from remediator.core.settings import Settings

logger = logging.getLogger(__name__)

LATEST_ROW = "latest"
HISTORY_PREFIX = "h-"
SWEEP_PARTITION = "sweeps"
"""Partition of sweep summaries (cluster partitions are 64 hex characters, so they cannot collide)."""
OUTCOMES_PARTITION = "latest-outcomes"
"""Index partition: the newest outcome of every cluster, RowKey = the cluster's partition key."""
DECISIONS_PARTITION = "sweep-decisions"
"""Index partition: the sweep's last decision key of every cluster, RowKey = the cluster's partition key."""
WINDOW_ROW_PREFIX = "~window-"
"""RowKey prefix (in :data:`DECISIONS_PARTITION`) of each sweep scope's last start; ``~`` sorts after hex."""
BATCH_LIMIT = 100
"""Operations per entity-group transaction (Table storage's limit)."""
WIRING_PARTITION = "wiring"
"""Partition of event-wiring summaries (``remediator/service/wiring.py``), laid out like the sweeps'."""
_INVERT_BASE_MS = 10**13


def history_row_key(now_s: float) -> str:
    """RowKey of a history row: newer rows sort first."""
    return f"{HISTORY_PREFIX}{_INVERT_BASE_MS - int(now_s * 1000):013d}-{uuid.uuid4().hex[:8]}"


class Journal:
    """The journal table of one storage account (also the policy-order table; bounded retries and timeouts
    from ``StorageClientOptions``).

    :param table: a ``TableClient`` for the journal table.
    :keyword clock: seconds since the epoch (injected in tests).
    """

    def __init__(self, table: TableClient, *, clock: Callable[[], float] = time.time) -> None:
        self.table = table
        self.clock = clock
        self._ready = False
        self._lock = threading.Lock()

    @classmethod
    def from_settings(
        cls, settings: Settings, *, credential: Any = None, clock: Callable[[], float] = time.time
    ) -> Journal:
        """The journal named by ``REMEDIATOR_JOURNAL_TABLE`` in the host storage account (connection string,
        or ``AzureWebJobsStorage__tableServiceUri`` with ``credential``, the process's one credential).
        ``clock`` as for the constructor."""
        if settings.storage_connection_string:
            table = TableClient.from_connection_string(
                settings.storage_connection_string, settings.journal_table, **STORAGE_OPTIONS.table_kwargs()
            )
        elif settings.table_service_uri:
            if credential is None:
                raise ValueError("identity-based table access needs the process's credential")
            table = TableClient(
                settings.table_service_uri,
                settings.journal_table,
                credential=credential,
                **STORAGE_OPTIONS.table_kwargs(),
            )
        else:
            raise UserInputError(
                "no storage configured for the journal",
                field="AzureWebJobsStorage",
                source="app settings",
            )
        return cls(table, clock=clock)

    def ensure_table(self) -> None:
        """Create the table once per process (idempotent)."""
        if self._ready:
            return
        with self._lock:
            if self._ready:
                return
            with contextlib.suppress(ResourceExistsError):
                self.table.create_table()
            self._ready = True

    # -- history ---------------------------------------------------------------------------------------------

    def _entity(self, report: ReconcileReport) -> dict[str, Any]:
        reinstalls = sum(
            1
            for a in report.actions
            if a.kind is WriteKind.REINSTALL_EXTENSION and a.status is ActionStatus.DONE
        )
        entity: dict[str, Any] = {
            "PartitionKey": cluster_key(report.cluster_id),
            "ClusterId": report.cluster_id,
            "Outcome": report.outcome.kind.value,
            "Why": report.outcome.why[:1000],
            "Mode": report.mode,
            "DryRun": report.dry_run,
            "Attempt": report.attempt,
            "Reinstalls": reinstalls,
            "RecordedAt": self.clock(),
            "Report": json.dumps(report.to_json(), separators=(",", ":")),
        }
        if report.caller is not None:  # HTTP-triggered: who asked (core.caller)
            entity["Caller"] = report.caller[:500]
        return entity

    def record(self, report: ReconcileReport) -> bool:
        """Append the report to the cluster's history and make it the ``latest`` row (then index it in
        ``latest-outcomes``, best effort: the history is the truth, the index serves the report); ``True``
        when it was journaled as a new state (always, except for a repeat below).

        A report in a state journaled once per change (``core.alerts.state_key``: a give-up with the same
        cause, a parked wait on the same long-lived blocker) that repeats the state last journaled is not
        appended: the latest row's ``Repeats`` and ``LastSeenAt`` move instead, and ``False`` is returned, so
        the caller raises no second alert. Plain waits in between (an ARM error, pacing) keep that state;
        any other outcome (done, skipped) ends it. The latest row is written with an ETag condition for those
        reports, so concurrent repeats cannot both count as first.
        """
        self.ensure_table()
        entity = self._entity(report)
        recorded = self._record_latest(report, entity)
        if recorded:
            self._index_outcome(report, entity)
        return recorded

    def _record_latest(self, report: ReconcileReport, entity: dict[str, Any]) -> bool:
        pk = entity["PartitionKey"]
        key = state_key(report)
        if key is None:
            # one entity-group transaction (same partition): the history row and the latest row land together.
            # A plain wait (an install running, an ARM error, pacing) merges into the latest row, keeping the
            # state journaled once before it (a give-up, a parked blocker): a transient wait does not change
            # what a human must do, so it must not arm that alert again. Any other outcome replaces the row.
            merge = report.outcome.kind is OutcomeKind.WAIT
            latest_row = {**entity, "RowKey": LATEST_ROW}
            if not merge:
                latest_row.update(StateKey="", Repeats=0)
            mode = UpdateMode.MERGE if merge else UpdateMode.REPLACE
            self.table.submit_transaction(
                [
                    ("create", {**entity, "RowKey": history_row_key(self.clock())}),
                    ("upsert", latest_row, {"mode": mode}),
                ]
            )
            return True
        entity.update(StateKey=key, Repeats=0)
        for _ in range(5):
            try:
                latest = self.table.get_entity(pk, LATEST_ROW)
            except ResourceNotFoundError:
                latest = None
            try:
                if latest is not None and str(latest.get("StateKey") or "") == key:
                    self.table.update_entity(
                        {
                            "PartitionKey": pk,
                            "RowKey": LATEST_ROW,
                            "Repeats": int(latest.get("Repeats") or 0) + 1,
                            "LastSeenAt": self.clock(),
                        },
                        mode=UpdateMode.MERGE,
                        etag=latest.metadata["etag"],
                        match_condition=MatchConditions.IfNotModified,
                    )
                    return False
                latest_op: tuple[Any, ...] = (
                    ("create", {**entity, "RowKey": LATEST_ROW})
                    if latest is None
                    else (
                        "update",
                        {**entity, "RowKey": LATEST_ROW},
                        {
                            "mode": UpdateMode.REPLACE,
                            "etag": latest.metadata["etag"],
                            "match_condition": MatchConditions.IfNotModified,
                        },
                    )
                )
                self.table.submit_transaction(
                    [("create", {**entity, "RowKey": history_row_key(self.clock())}), latest_op]
                )
                return True
            except (TableTransactionError, ResourceExistsError, ResourceModifiedError):
                continue  # another reconcile wrote the latest row meanwhile: read it again
            except HttpResponseError as exc:
                if exc.status_code not in (409, 412):
                    raise
                continue
        # still contended after five tries: journal it (an extra history row beats a lost one)
        self.table.submit_transaction(
            [
                ("create", {**entity, "RowKey": history_row_key(self.clock())}),
                ("upsert", {**entity, "RowKey": LATEST_ROW}, {"mode": UpdateMode.REPLACE}),
            ]
        )
        return True

    def _index_outcome(self, report: ReconcileReport, entity: dict[str, Any]) -> None:
        try:
            self.table.upsert_entity(
                {
                    "PartitionKey": OUTCOMES_PARTITION,
                    "RowKey": entity["PartitionKey"],
                    "ClusterId": report.cluster_id,
                    "Outcome": entity["Outcome"],
                    "Why": entity["Why"],
                    "RecordedAt": entity["RecordedAt"],
                },
                mode=UpdateMode.REPLACE,
            )
        except Exception as exc:  # the index is a cache of what was just recorded
            logger.warning(
                "indexing the outcome of %s failed: %s: %s", report.cluster_id, type(exc).__name__, exc
            )

    # -- indexes read in bulk --------------------------------------------------------------------------------

    def _partition(self, partition: str, select: list[str]) -> Any:
        self.ensure_table()
        return self.table.query_entities(
            "PartitionKey eq @pk", parameters={"pk": partition}, select=select, results_per_page=1000
        )

    def latest_outcomes(self) -> dict[str, LatestOutcome]:
        """Cluster partition key -> its newest outcome, for every cluster ever recorded (one partition
        query, paged by 1,000)."""
        out: dict[str, LatestOutcome] = {}
        for entity in self._partition(OUTCOMES_PARTITION, ["RowKey", "Outcome", "Why", "RecordedAt"]):
            out[str(entity["RowKey"])] = LatestOutcome(
                kind=str(entity.get("Outcome") or ""),
                why=str(entity.get("Why") or ""),
                recorded_at=float(entity.get("RecordedAt") or 0.0),
            )
        return out

    def decision_index(self, scope: str) -> DecisionIndex:
        """The sweep's last decision key of every cluster, and when the sweep of ``scope`` (a digest naming
        the swept scope) last started (one partition query)."""
        keys: dict[str, str] = {}
        last: float | None = None
        window = WINDOW_ROW_PREFIX + scope
        for entity in self._partition(DECISIONS_PARTITION, ["RowKey", "Key", "StartedAt"]):
            row_key = str(entity["RowKey"])
            if row_key == window:
                last = float(entity.get("StartedAt") or 0.0) or None
            elif not row_key.startswith(WINDOW_ROW_PREFIX):
                keys[row_key] = str(entity.get("Key") or "")
        return DecisionIndex(keys=keys, last_sweep_at=last)

    def record_decisions(self, decisions: Sequence[JournaledDecision]) -> None:
        """Journal sweep decisions: a history row in each cluster's partition (for those with a report; the
        ``latest`` row is left to reconciles), then the new keys in the index, 100 per transaction."""
        self.ensure_table()
        for decision in decisions:
            if decision.report is not None:
                entity = self._entity(decision.report)
                self.table.create_entity({**entity, "RowKey": history_row_key(self.clock())})
        rows = [
            {
                "PartitionKey": DECISIONS_PARTITION,
                "RowKey": decision.cluster_key,
                "ClusterId": decision.cluster_id,
                "Key": decision.key,
                "RecordedAt": self.clock(),
            }
            for decision in decisions
        ]
        for start in range(0, len(rows), BATCH_LIMIT):
            self.table.submit_transaction(
                [("upsert", row, {"mode": UpdateMode.REPLACE}) for row in rows[start : start + BATCH_LIMIT]]
            )

    def record_sweep_window(self, scope: str, started_at: float) -> None:
        """Remember when the sweep of ``scope`` started (the next one re-verifies the slots in between)."""
        self.ensure_table()
        self.table.upsert_entity(
            {
                "PartitionKey": DECISIONS_PARTITION,
                "RowKey": WINDOW_ROW_PREFIX + scope,
                "StartedAt": started_at,
            },
            mode=UpdateMode.REPLACE,
        )

    def record_sweep(self, summary: Mapping[str, Any]) -> None:
        """Append a sweep summary to partition ``sweeps`` (newest first) and make it the ``latest`` sweep."""
        self.ensure_table()
        entity: dict[str, Any] = {
            "PartitionKey": SWEEP_PARTITION,
            "RecordedAt": self.clock(),
            "Summary": json.dumps(dict(summary), separators=(",", ":"), default=str),
        }
        self.table.create_entity({**entity, "RowKey": history_row_key(self.clock())})
        self.table.upsert_entity({**entity, "RowKey": LATEST_ROW}, mode=UpdateMode.REPLACE)

    def record_wiring(self, summary: Mapping[str, Any]) -> None:
        """Append an event-wiring summary to partition ``wiring`` (newest first) as the ``latest``."""
        self.ensure_table()
        entity: dict[str, Any] = {
            "PartitionKey": WIRING_PARTITION,
            "RecordedAt": self.clock(),
            "Summary": json.dumps(dict(summary), separators=(",", ":"), default=str),
        }
        self.table.create_entity({**entity, "RowKey": history_row_key(self.clock())})
        self.table.upsert_entity({**entity, "RowKey": LATEST_ROW}, mode=UpdateMode.REPLACE)

    def latest_wiring(self) -> dict[str, Any] | None:
        """The most recent event-wiring summary, or ``None``."""
        self.ensure_table()
        try:
            entity = self.table.get_entity(WIRING_PARTITION, LATEST_ROW)
        except ResourceNotFoundError:
            return None
        summary: dict[str, Any] = json.loads(entity["Summary"])
        return summary

    def latest_sweep(self) -> dict[str, Any] | None:
        """The most recent sweep summary, or ``None``."""
        self.ensure_table()
        try:
            entity = self.table.get_entity(SWEEP_PARTITION, LATEST_ROW)
        except ResourceNotFoundError:
            return None
        summary: dict[str, Any] = json.loads(entity["Summary"])
        return summary

    def latest(self, cluster_id: str) -> ReconcileReport | None:
        """The most recent report for the cluster, or ``None``."""
        self.ensure_table()
        try:
            entity = self.table.get_entity(cluster_key(cluster_id), LATEST_ROW)
        except ResourceNotFoundError:
            return None
        return ReconcileReport.from_json(json.loads(entity["Report"]))

    def _history_entities(self, cluster_id: str, *, select: list[str] | None = None) -> Any:
        self.ensure_table()
        return self.table.query_entities(
            "PartitionKey eq @pk and RowKey ge @lo and RowKey lt @hi",
            parameters={"pk": cluster_key(cluster_id), "lo": HISTORY_PREFIX, "hi": HISTORY_PREFIX[:-1] + "."},
            select=select,
        )

    def history(self, cluster_id: str, *, limit: int = 100) -> list[ReconcileReport]:
        """The cluster's reports, newest first (at most ``limit``)."""
        reports: list[ReconcileReport] = []
        for entity in self._history_entities(cluster_id, select=["Report"]):
            reports.append(ReconcileReport.from_json(json.loads(entity["Report"])))
            if len(reports) >= limit:
                break
        return reports

    def count_reinstalls(self, cluster_id: str) -> int:
        """How many times the reconciler has re-installed a Failed extension on this cluster since the
        extension was last seen ``Succeeded``.

        The bound on re-installs (``remediation.maxReinstalls``) is per failure episode, not per cluster
        lifetime: history is read newest first and the count stops at the newest report that observed the
        extension ``Succeeded`` (every ``done``/``Installed`` report does). Without that reset a cluster that
        used its re-installs long ago would be given up on, without an attempt, the next time its extension
        fails.
        """
        count = 0
        for row in self._history_entities(cluster_id, select=["Reinstalls", "Report"]):
            try:
                state = json.loads(row.get("Report") or "{}").get("extensionState")
            except (ValueError, AttributeError):
                state = None
            if isinstance(state, str) and state.lower() == "succeeded":
                break
            count += int(row.get("Reinstalls", 0) or 0)
        return count
