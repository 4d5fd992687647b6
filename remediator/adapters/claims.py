"""Durable write claims in Table Storage: exactly-once writes across Function instances, safe when one dies.

Function instances share no memory, so an in-process lock cannot stop two of them from sending the same write.
Before a write the reconciler inserts ``claim-<name>`` into the cluster's partition of the journal table.
Insert is atomic in Table Storage, so exactly one concurrent caller wins. Release is an ETag-conditional
delete (a claim someone else took over is left alone).

A claim has two states (issue 17, "crash-safe claims"):

- **held** while its reconcile works: a short lease (:data:`~remediator.adapters.leases.LEASE_S`, 30 s)
  renewed by the process's :class:`~remediator.adapters.leases.LeaseRenewer` every 8 s. A process that dies
  stops renewing, so its claim runs out within 30 s and another instance takes it over (ETag-conditional
  replace of the expired row) instead of waiting out a long TTL. A takeover of a *held* claim is flagged
  (:attr:`Claim.taken_over_from`): the dead holder may have sent its write just before dying, so the taker
  must read the state again before writing.
- **sent** once its write was sent: kept for :data:`SETTLE_S` so that a reconcile whose reads predate the
  write cannot repeat it (the executor refuses to write on reads older than :data:`MAX_PLAN_AGE_S`, which is
  shorter). Taking over an expired *sent* claim needs no re-read: the write happened long enough ago for any
  usable read to have seen it.

The claim names and when a claim is kept or released are the reconcile's business
(``service/reconcile/execute.py``).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from azure.core import MatchConditions
from azure.core.exceptions import HttpResponseError, ResourceExistsError, ResourceNotFoundError
from azure.data.tables import TableClient, UpdateMode

from remediator.adapters.leases import LEASE_S, RENEWER, LeaseRenewer, new_owner
from remediator.core.ids import ResourceId
from remediator.core.naming import cluster_key

logger = logging.getLogger(__name__)

CLAIM_PREFIX = "claim-"

HELD = "held"
"""A claim whose write is in progress (renewed)."""
SENT = "sent"
"""A claim whose write was sent (kept for :data:`SETTLE_S`, not renewed)."""

SETTLE_S = 60.0
"""How long a claim still stands after its write was sent."""

MAX_PLAN_AGE_S = 45.0
"""A reconcile whose reads are older than this does not write (it reads again): shorter than
:data:`SETTLE_S`, so a write that happened after those reads is still claimed when the reconcile tries."""


@dataclass(eq=False)
class Claim:
    """A claim this process holds (or held). ``etag`` and ``expires_at`` move with each renewal.

    :param taken_over_from: the owner of a *held* claim that ran out before this one took it over (it may
        have written just before it stopped); ``None`` for a fresh claim or an expired *sent* one.
    """

    name: str
    partition_key: str
    row_key: str
    owner: str
    etag: str
    expires_at: float
    taken_over_from: str | None = None
    lost: bool = False
    """A renewal found the claim taken over (this process stalled past its lease): do not write under it."""
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)


@dataclass(frozen=True)
class ClaimHolder:
    """Who holds a claim now: owner (``<host>/<pid>/<id>``), when it runs out (epoch s), and its state."""

    owner: str
    expires_at: float
    state: str


class WriteClaims:
    """Claims in the journal table.

    :param table: the journal table's ``TableClient`` (the table exists: ``Journal.ensure_table``).
    :keyword ensure_table: called before each claim (idempotent; creates the table once per process).
    :keyword clock: seconds since the epoch (injected in tests).
    :keyword renewer: renews held claims (the process's one :data:`~remediator.adapters.leases.RENEWER`).
    """

    def __init__(
        self,
        table: TableClient,
        *,
        ensure_table: Callable[[], None] = lambda: None,
        clock: Callable[[], float] = time.time,
        renewer: LeaseRenewer | None = None,
    ) -> None:
        self.table = table
        self.ensure_table = ensure_table
        self.clock = clock
        self.renewer = renewer if renewer is not None else RENEWER

    def try_claim(
        self, cluster_id: ResourceId, name: str, *, ttl_s: float = LEASE_S, owner: str | None = None
    ) -> Claim | None:
        """Atomically claim ``name`` on the cluster (state *held*, lease ``ttl_s``); ``None`` if someone else
        holds it. The claim is NOT renewed until :meth:`hold` is called.

        :param cluster_id: the cluster.
        :param name: what is claimed (``install``, ``role-<guid>``, ...); ``[a-z0-9-]``.
        :keyword ttl_s: the lease.
        :keyword owner: who claims (diagnostics); :func:`~remediator.adapters.leases.new_owner` by default.
        """
        self.ensure_table()
        pk = cluster_key(cluster_id.canonical)
        rk = CLAIM_PREFIX + name
        owner = owner or new_owner()
        for _ in range(3):  # a row deleted between our insert and our read: insert again
            now = self.clock()
            entity = {
                "PartitionKey": pk,
                "RowKey": rk,
                "Owner": owner,
                "ExpiresAt": now + ttl_s,
                "State": HELD,
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
                continue
            expires = float(current.get("ExpiresAt", 0.0))
            if str(current.get("Owner") or "") == owner and expires > now:  # ours (an earlier try won)
                return Claim(name, pk, rk, owner, str(current.metadata["etag"]), expires)
            if expires > now:
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
            previous = str(current.get("Owner") or "")
            # a claim written before claims had states was held for its whole TTL: treat it as held
            mid_write = str(current.get("State") or HELD) == HELD
            logger.info(
                "took over expired claim %s on %s from %s (%s)",
                name,
                cluster_id,
                previous,
                "it stopped renewing mid-write" if mid_write else "its write was sent long ago",
            )
            return Claim(
                name,
                pk,
                rk,
                owner,
                str(meta.get("etag", "")),
                now + ttl_s,
                taken_over_from=previous if mid_write else None,
            )
        return None

    def hold(self, claim: Claim) -> None:
        """Keep ``claim`` alive (renew its lease) until it is settled or released."""
        self.renewer.track(claim, lambda: self.renew(claim), on_lost=lambda: setattr(claim, "lost", True))

    def renew(self, claim: Claim, *, ttl_s: float = LEASE_S) -> bool:
        """Extend a held claim's lease; ``False`` if it was lost (taken over or deleted)."""
        with claim.lock:
            if claim.lost:
                return False
            expires = self.clock() + ttl_s
            try:
                meta = self.table.update_entity(
                    {
                        "PartitionKey": claim.partition_key,
                        "RowKey": claim.row_key,
                        "ExpiresAt": expires,
                    },
                    mode=UpdateMode.MERGE,
                    etag=claim.etag,
                    match_condition=MatchConditions.IfNotModified,
                )
            except HttpResponseError as exc:
                if exc.status_code in (404, 412):
                    claim.lost = True
                    return False
                raise
            claim.etag = str(meta.get("etag", claim.etag))
            claim.expires_at = expires
            return True

    def settle(self, claim: Claim, *, hold_s: float = SETTLE_S) -> None:
        """The claim's write was sent: stop renewing, and keep it (state *sent*) for ``hold_s`` seconds."""
        self.renewer.untrack(claim)
        with claim.lock:
            if claim.lost:
                return
            expires = self.clock() + hold_s
            try:
                meta = self.table.update_entity(
                    {
                        "PartitionKey": claim.partition_key,
                        "RowKey": claim.row_key,
                        "ExpiresAt": expires,
                        "State": SENT,
                        "SentAt": self.clock(),
                    },
                    mode=UpdateMode.MERGE,
                    etag=claim.etag,
                    match_condition=MatchConditions.IfNotModified,
                )
            except HttpResponseError as exc:
                if exc.status_code not in (404, 412):
                    raise
                claim.lost = True
                return
            claim.etag = str(meta.get("etag", claim.etag))
            claim.expires_at = expires

    def release(self, claim: Claim) -> None:
        """Stop renewing, and delete the claim if it is still ours (ETag match); a lost claim is left
        alone."""
        self.renewer.untrack(claim)
        with claim.lock:
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

    def holder_info(self, cluster_id: ResourceId, name: str) -> ClaimHolder | None:
        """Who holds ``name`` on the cluster now (an unexpired claim), or ``None``."""
        self.ensure_table()
        try:
            current = self.table.get_entity(cluster_key(cluster_id.canonical), CLAIM_PREFIX + name)
        except ResourceNotFoundError:
            return None
        expires = float(current.get("ExpiresAt", 0.0))
        if expires <= self.clock():
            return None
        return ClaimHolder(str(current.get("Owner") or ""), expires, str(current.get("State") or HELD))

    def holder(self, cluster_id: ResourceId, name: str) -> str | None:
        """Who holds ``name`` on the cluster now (an unexpired claim's owner), or ``None``."""
        info = self.holder_info(cluster_id, name)
        return None if info is None else info.owner
