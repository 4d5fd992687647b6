"""A per-caller rate limit that holds across Function instances: one token bucket per caller in Table Storage.

``POST /api/remediate {scope}`` sweeps a whole subscription or resource group through Resource Graph and
enqueues a work item per cluster needing work, so one caller repeating it can exhaust the tenant's Resource
Graph quota and flood the work queue. An in-process counter would not hold: Flex Consumption runs many
instances. So the bucket lives in the journal table (partition ``rate-limits``), one entity per caller and
limit, read and written with an ETag condition (the same optimistic concurrency as the policy-order marks and
the claims): two instances taking the last token at once cannot both win.

Bucket: capacity ``per_hour`` tokens, refilled at ``per_hour / 3600`` tokens a second, one token per request.
A caller that waited is answered with the seconds until the next token (HTTP 429 ``Retry-After``).
"""

from __future__ import annotations

import hashlib
import logging
import math
import time
from collections.abc import Callable

from azure.core import MatchConditions
from azure.core.exceptions import HttpResponseError, ResourceExistsError, ResourceNotFoundError
from azure.data.tables import TableClient, UpdateMode

logger = logging.getLogger(__name__)

PARTITION = "rate-limits"
"""Partition of the buckets (cluster partitions are 64 hex characters, so they cannot collide)."""
_MAX_TRIES = 8
CONTENDED_RETRY_AFTER_S = 1.0
"""Answered when the bucket could not be updated after ``_MAX_TRIES`` ETag conflicts: refuse, briefly."""


class TableRateLimiter:
    """Token buckets in a table (the ``LimitsRate`` port).

    :param table: the journal table.
    :keyword per_hour: requests one key may make per hour (also the burst).
    :keyword name: which limit (part of the row key), e.g. ``scope-remediation``.
    :keyword ensure_table: called before each use (idempotent).
    :keyword clock: seconds since the epoch (injected in tests).
    """

    def __init__(
        self,
        table: TableClient,
        *,
        per_hour: int,
        name: str,
        ensure_table: Callable[[], None] = lambda: None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if per_hour < 1:
            raise ValueError("per_hour must be at least 1")
        self.table = table
        self.capacity = float(per_hour)
        self.refill_per_s = per_hour / 3600.0
        self.name = name
        self.ensure_table = ensure_table
        self.clock = clock

    def _row_key(self, key: str) -> str:
        return f"{self.name}-{hashlib.sha256(key.encode('utf-8', 'surrogatepass')).hexdigest()[:40]}"

    def try_acquire(self, key: str) -> float | None:
        """Take one token for ``key``: ``None`` when allowed, else the seconds until a token is available.

        :raises HttpResponseError: the table failed for another reason than a lost race (the caller decides:
            the HTTP handler answers 503).
        """
        self.ensure_table()
        row = self._row_key(key)
        for _ in range(_MAX_TRIES):
            now = self.clock()
            try:
                current = self.table.get_entity(PARTITION, row)
            except ResourceNotFoundError:
                current = None
            if current is None:
                tokens = self.capacity
            else:
                stored = float(current.get("Tokens", self.capacity))
                updated = float(current.get("UpdatedAt", now))
                elapsed = max(0.0, now - updated)  # a clock behind the stored time refills nothing
                tokens = min(self.capacity, stored + elapsed * self.refill_per_s)
            if tokens < 1.0:
                wait = (1.0 - tokens) / self.refill_per_s
                logger.info("rate limit %s: %s must wait %.0f s", self.name, key, wait)
                return max(1.0, math.ceil(wait))
            entity = {
                "PartitionKey": PARTITION,
                "RowKey": row,
                "Tokens": tokens - 1.0,
                "UpdatedAt": now,
                "Key": key[:500],
                "Limit": self.name,
            }
            try:
                if current is None:
                    self.table.create_entity(entity)
                else:
                    self.table.update_entity(
                        entity,
                        mode=UpdateMode.REPLACE,
                        etag=current.metadata["etag"],
                        match_condition=MatchConditions.IfNotModified,
                    )
                return None
            except ResourceExistsError:
                continue  # another instance created it first: read it again
            except HttpResponseError as exc:
                if exc.status_code in (404, 412):
                    continue  # lost the race (changed or deleted meanwhile): read it again
                raise
        logger.warning("rate limit %s: %s contended %d times; refusing for now", self.name, key, _MAX_TRIES)
        return CONTENDED_RETRY_AFTER_S
