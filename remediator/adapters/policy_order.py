"""The last policy-state timestamp seen per (cluster, assignment), kept durably in the journal table.

Event Grid does not deliver in order, and Azure Policy may send several states for one resource in a burst.
The policy-state handler must not let an older state override a newer one, across retries and across Function
instances, so the newest ``data.timestamp`` per (resource, assignment) lives in one Table entity (partition
``policy-order`` of the journal table), inserted atomically and advanced with an ETag-conditional update.

The mark only moves forward, so a stored timestamp from the future would make every real state after it stale.
The parser refuses such states (``core.events.parse_policy_state``); a mark stored before it did (or written
by a host with a wrong clock) is treated as absent and overwritten, so one bad event cannot block a cluster
forever.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from azure.core import MatchConditions
from azure.core.exceptions import HttpResponseError, ResourceExistsError, ResourceNotFoundError
from azure.data.tables import TableClient, UpdateMode

from remediator.core.events import DEFAULT_MAX_FUTURE_SKEW, utc_now
from remediator.core.text import ignore_case_key

logger = logging.getLogger(__name__)

PARTITION = "policy-order"
_MAX_TRIES = 8


def _row_key(resource_id: str, assignment_id: str) -> str:
    """sha256 of both ids under Azure's case rule (``ignore_case_key``; ``lower()`` for ASCII ids, so rows
    stored before the rule keep their keys)."""
    key = f"{ignore_case_key(resource_id)}|{ignore_case_key(assignment_id)}"
    return hashlib.sha256(key.encode()).hexdigest()


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat()


class PolicyStateOrder:
    """Durable per-(resource, assignment) high-water mark of ``data.timestamp``.

    :param table: the journal table client.
    :keyword before: called before each ``advance`` (the journal's idempotent ``ensure_table``).
    :keyword clock: the current time, aware (injected in tests).
    :keyword max_future_skew: a stored mark later than ``clock()`` plus this is from the future: ignored.
    """

    def __init__(
        self,
        table: TableClient,
        *,
        before: Callable[[], None] | None = None,
        clock: Callable[[], datetime] = utc_now,
        max_future_skew: timedelta = DEFAULT_MAX_FUTURE_SKEW,
    ) -> None:
        self.table = table
        self.before = before
        self.clock = clock
        self.max_future_skew = max_future_skew

    def advance(self, resource_id: str, assignment_id: str, timestamp: datetime) -> bool:
        """Store ``timestamp`` unless the stored one is newer.

        :returns: ``False`` when the stored timestamp is newer (the event is stale); ``True`` otherwise, also
            for an equal timestamp, so a redelivered event is processed again.
        :raises RuntimeError: the entity kept changing under us (more than a handful of concurrent writers).
        """
        if timestamp.tzinfo is None:
            raise ValueError("timestamp must be timezone-aware")
        if self.before is not None:
            self.before()
        row = _row_key(resource_id, assignment_id)
        wanted = _iso(timestamp)
        for _ in range(_MAX_TRIES):
            try:
                entity = self.table.get_entity(PARTITION, row)
            except ResourceNotFoundError:
                try:
                    self.table.create_entity(
                        {
                            "PartitionKey": PARTITION,
                            "RowKey": row,
                            "lastTimestamp": wanted,
                            "resourceId": resource_id,
                            "assignmentId": assignment_id,
                        }
                    )
                    return True
                except ResourceExistsError:
                    continue  # another instance inserted first: compare against its value
            stored = datetime.fromisoformat(str(entity["lastTimestamp"]))
            if stored > self.clock() + self.max_future_skew:
                logger.warning(
                    "policy-order mark %s for %s lies in the future; replacing it with %s",
                    stored.isoformat(),
                    resource_id,
                    wanted,
                )
            elif timestamp < stored:
                logger.debug("policy state %s for %s is older than %s", wanted, resource_id, stored)
                return False
            elif timestamp == stored:
                return True
            try:
                self.table.update_entity(
                    {"PartitionKey": PARTITION, "RowKey": row, "lastTimestamp": wanted},
                    mode=UpdateMode.MERGE,
                    etag=entity.metadata["etag"],
                    match_condition=MatchConditions.IfNotModified,
                )
                return True
            except HttpResponseError as exc:
                if exc.status_code != 412:
                    raise
        raise RuntimeError(f"policy-order entity for {resource_id} kept changing ({_MAX_TRIES} tries)")
