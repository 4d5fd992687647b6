"""Durable write claims in Table Storage: exactly-once writes across Function instances.

Function instances share no memory, so an in-process lock cannot stop two of them from sending the same write.
Before a write the reconciler inserts ``claim-<name>`` into the cluster's partition of the journal table.
Insert is atomic in Table Storage, so exactly one concurrent caller wins; an expired claim is taken over with
an ETag-conditional replace, so a crashed holder blocks the write at most for the claim's TTL. Release is an
ETag-conditional delete (a claim someone else took over is left alone).

The claim names and when a claim is kept or released are the reconcile's business
(``service/reconcile/execute.py``): a claim is released on every path where its write was not sent, and kept
after a successful write until it expires.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from azure.core import MatchConditions
from azure.core.exceptions import HttpResponseError, ResourceExistsError, ResourceNotFoundError
from azure.data.tables import TableClient, UpdateMode

from remediator.core.ids import ResourceId
from remediator.core.naming import cluster_key

logger = logging.getLogger(__name__)

CLAIM_PREFIX = "claim-"


@dataclass(frozen=True)
class Claim:
    """A held claim: release it with :meth:`WriteClaims.release` when its write was not sent (or failed)."""

    name: str
    partition_key: str
    row_key: str
    owner: str
    etag: str
    expires_at: float


class WriteClaims:
    """Claims in the journal table.

    :param table: the journal table's ``TableClient`` (the table exists: ``Journal.ensure_table``).
    :keyword ensure_table: called before each claim (idempotent; creates the table once per process).
    :keyword clock: seconds since the epoch (injected in tests).
    """

    def __init__(
        self,
        table: TableClient,
        *,
        ensure_table: Callable[[], None] = lambda: None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.table = table
        self.ensure_table = ensure_table
        self.clock = clock

    def try_claim(
        self, cluster_id: ResourceId, name: str, *, ttl_s: float, owner: str | None = None
    ) -> Claim | None:
        """Atomically claim ``name`` on the cluster for ``ttl_s`` seconds; ``None`` if someone else holds it.

        :param cluster_id: the cluster.
        :param name: what is claimed (``install``, ``role-<guid>``, ...); ``[a-z0-9-]``.
        :keyword ttl_s: how long the claim holds if never released.
        :keyword owner: who claims (for diagnostics); a fresh uuid by default.
        """
        self.ensure_table()
        pk = cluster_key(cluster_id.canonical)
        rk = CLAIM_PREFIX + name
        owner = owner or uuid.uuid4().hex
        now = self.clock()
        entity = {
            "PartitionKey": pk,
            "RowKey": rk,
            "Owner": owner,
            "ExpiresAt": now + ttl_s,
            "ClusterId": cluster_id.canonical,
        }
        try:
            meta = self.table.create_entity(entity)
            return Claim(name, pk, rk, owner, str(meta.get("etag", "")), now + ttl_s)
        except ResourceExistsError:
            pass
        try:
            current = self.table.get_entity(pk, rk)
        except ResourceNotFoundError:
            return self.try_claim(cluster_id, name, ttl_s=ttl_s, owner=owner)
        if float(current.get("ExpiresAt", 0.0)) > now:
            logger.info("claim %s on %s held by %s", name, cluster_id, current.get("Owner"))
            return None
        try:
            meta = self.table.update_entity(
                entity,
                mode=UpdateMode.REPLACE,
                etag=current.metadata["etag"],
                match_condition=MatchConditions.IfNotModified,
            )
        except HttpResponseError as exc:
            if exc.status_code in (404, 412):
                return None
            raise
        logger.info("took over expired claim %s on %s", name, cluster_id)
        return Claim(name, pk, rk, owner, str(meta.get("etag", "")), now + ttl_s)

    def release(self, claim: Claim) -> None:
        """Delete the claim if it is still ours (ETag match); a lost claim is left alone."""
        try:
            self.table.delete_entity(
                claim.partition_key,
                claim.row_key,
                etag=claim.etag,
                match_condition=MatchConditions.IfNotModified,
            )
        except HttpResponseError as exc:
            if exc.status_code not in (404, 412):
                raise

    def holder(self, cluster_id: ResourceId, name: str) -> str | None:
        """Who holds ``name`` on the cluster now (an unexpired claim's owner), or ``None``."""
        self.ensure_table()
        try:
            current = self.table.get_entity(cluster_key(cluster_id.canonical), CLAIM_PREFIX + name)
        except ResourceNotFoundError:
            return None
        return str(current.get("Owner")) if float(current.get("ExpiresAt", 0.0)) > self.clock() else None
