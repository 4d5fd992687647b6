"""One chain of work items per cluster, across Function instances: the chain mark in Table Storage and the
queue operations that keep it true (the policy is :mod:`remediator.core.chains`).

The mark is the row ``chain`` in the cluster's partition of the journal table, written with ETags, so two
instances cannot both believe they own the chain. :class:`ChainedWork` is what the triggers and the sweep see:

- :meth:`ChainedWork.enqueue_work` (the ``EnqueuesWork`` port): a delivery's hand-over or the sweep's work
  item. It joins the live chain when :func:`~remediator.core.chains.joinable` says so (nothing is enqueued),
  otherwise it sends a new chain's first item and then marks it (send first: a mark never names an item that
  does not exist).
- :meth:`ChainedWork.begin` (the queue worker): the item runs only if the mark names it (otherwise it retires:
  ``None``). Before the reconcile, the chain's successor item is sent hidden for the lease and marked
  running; the renewer keeps it hidden while the hop runs. :class:`Hop` then reschedules the successor to the
  reconcile's wait (``next``), deletes it when the chain ends (``end``), or restores the mark for the host's
  retry of a failed invocation (``abort``).

Every scheduled item's guard copy is named in the mark (message id and pop receipt); :meth:`ChainedWork.begin`
deletes it when the item it guards begins, so a guard costs an invocation only when its original was lost.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from azure.core import MatchConditions
from azure.core.exceptions import HttpResponseError, ResourceExistsError, ResourceNotFoundError
from azure.data.tables import TableClient, UpdateMode

from remediator.adapters.leases import LEASE_S, RENEWER, LeaseRenewer
from remediator.adapters.work_queue import SentMessage, WorkQueue
from remediator.core.chains import GUARD_AFTER_S, ChainMark, joinable, new_chain_id
from remediator.core.ids import ResourceId
from remediator.core.naming import cluster_key
from remediator.core.work_item import Source, WorkItem

logger = logging.getLogger(__name__)

CHAIN_ROW = "chain"


@dataclass(frozen=True)
class StoredMark:
    """A chain mark as read, with the ETag that a conditional write must match."""

    mark: ChainMark
    etag: str


class ChainStore:
    """Chain marks in the journal table (row :data:`CHAIN_ROW` of each cluster's partition).

    :param table: the journal table's ``TableClient``.
    :keyword ensure_table: creates the table once per process.
    """

    def __init__(self, table: TableClient, *, ensure_table: Callable[[], None] = lambda: None) -> None:
        self.table = table
        self.ensure_table = ensure_table

    def read(self, cluster: ResourceId) -> StoredMark | None:
        self.ensure_table()
        try:
            row = self.table.get_entity(cluster_key(cluster.canonical), CHAIN_ROW)
        except ResourceNotFoundError:
            return None
        mark = ChainMark(
            chain_id=str(row.get("ChainId") or ""),
            attempt=int(row.get("Attempt") or 0),
            due_at=float(row.get("DueAt") or 0.0),
            running=bool(row.get("Running")),
            ended=bool(row.get("Ended")),
            guard=(str(row["GuardId"]), str(row["GuardReceipt"])) if row.get("GuardId") else None,
        )
        return StoredMark(mark, str(row.metadata["etag"]))

    def write(self, cluster: ResourceId, mark: ChainMark, *, etag: str | None) -> str | None:
        """Insert the mark (``etag=None``) or replace the one read with ``etag``; the new ETag, or ``None``
        when another writer got there first."""
        self.ensure_table()
        entity = {
            "PartitionKey": cluster_key(cluster.canonical),
            "RowKey": CHAIN_ROW,
            "ChainId": mark.chain_id,
            "Attempt": mark.attempt,
            "DueAt": mark.due_at,
            "Running": mark.running,
            "Ended": mark.ended,
            "GuardId": mark.guard[0] if mark.guard is not None else "",
            "GuardReceipt": mark.guard[1] if mark.guard is not None else "",
            "ClusterId": cluster.canonical,
        }
        try:
            if etag is None:
                meta = self.table.create_entity(entity)
            else:
                meta = self.table.update_entity(
                    entity, mode=UpdateMode.REPLACE, etag=etag, match_condition=MatchConditions.IfNotModified
                )
        except ResourceExistsError:
            return None
        except HttpResponseError as exc:
            if exc.status_code in (404, 409, 412):
                return None
            raise
        return str(meta.get("etag", ""))

    def delete(self, cluster: ResourceId, *, etag: str) -> bool:
        """Delete the mark if it is still the one read with ``etag``."""
        try:
            self.table.delete_entity(
                cluster_key(cluster.canonical),
                CHAIN_ROW,
                etag=etag,
                match_condition=MatchConditions.IfNotModified,
            )
        except HttpResponseError as exc:
            if exc.status_code in (404, 412):
                return False
            raise
        return True


class Hop:
    """One running hop of a chain: the worker reconciles; the successor item waits, hidden, renewed.

    Made by :meth:`ChainedWork.begin`; exactly one of :meth:`next`, :meth:`end` or :meth:`abort` ends it.
    """

    def __init__(
        self,
        work: ChainedWork,
        item: WorkItem,
        successor: WorkItem,
        sent: SentMessage,
        etag: str,
    ) -> None:
        self._work = work
        self.item = item
        self.successor = successor
        self._sent: SentMessage | None = sent
        self._etag = etag

    def _renew(self) -> bool:
        sent = self._sent
        if sent is None:
            return False
        renewed = self._work.queue.reschedule(sent, delay_s=LEASE_S)
        if renewed is None:
            return False
        self._sent = renewed
        return True

    def _stop(self) -> SentMessage | None:
        self._work.renewer.untrack(self)
        sent, self._sent = self._sent, None
        return sent

    def next(self, *, delay_s: float, reason: str, satisfied_links: int | None = None) -> bool:
        """The chain continues: the successor runs after ``delay_s`` (its guard copy
        ``GUARD_AFTER_S`` later). ``False`` when the chain was superseded meanwhile (the successor is
        deleted: the newer chain looks after the cluster). ``satisfied_links`` carries the chain's progress
        mark (:meth:`WorkItem.next_attempt`)."""
        sent = self._stop()
        work, cluster = self._work, self.item.cluster_id
        follow_up = self.item.next_attempt(reason=reason, satisfied_links=satisfied_links)
        guard = work.send_guard(follow_up, delay_s=delay_s)
        mark = ChainMark(
            self.successor.chain_id,
            follow_up.attempt,
            work.clock() + delay_s,
            False,
            guard=(guard.id, guard.pop_receipt) if guard is not None else None,
        )
        if (
            work.remark(cluster, mark, etag=self._etag, owner=(self.item.chain_id, self.successor.attempt))
            is None
        ):
            for message in (sent, guard):
                if message is not None:
                    work.queue.delete_sent(message)
            logger.info("chain %s of %s was superseded while it ran; it ends", mark.chain_id, cluster)
            return False
        if sent is None or work.queue.reschedule(sent, delay_s=delay_s, item=follow_up) is None:
            # the successor already surfaced (the hop outlived its lease) or is gone: send it again
            work.queue.send(follow_up, delay_s=delay_s)
        return True

    def end(self) -> None:
        """The chain ends (done, gave up, parked): delete the successor, and mark the chain ended (if the mark
        is still ours) so its guard copies retire."""
        sent = self._stop()
        if sent is not None:
            self._work.queue.delete_sent(sent)
        ended = ChainMark(self.item.chain_id, self.successor.attempt, self._work.clock(), False, ended=True)
        self._work.remark(
            self.item.cluster_id, ended, etag=self._etag, owner=(self.item.chain_id, self.successor.attempt)
        )

    def abort(self) -> None:
        """The invocation failed and the host will deliver ``item`` again: point the mark back at it and
        delete the successor. If the mark cannot be restored, the successor stays (it carries the chain
        on)."""
        sent = self._stop()
        mark = ChainMark(self.item.chain_id, self.item.attempt, self._work.clock() + LEASE_S, False)
        try:
            restored = self._work.remark(
                self.item.cluster_id,
                mark,
                etag=self._etag,
                owner=(self.item.chain_id, self.successor.attempt),
            )
        except Exception:
            logger.warning("restoring the chain mark of %s failed", self.item.cluster_id, exc_info=True)
            restored = None
        if restored is not None and sent is not None:
            self._work.queue.delete_sent(sent)


def legacy_chain_id(item: WorkItem) -> str:
    """The chain id of a work item made before chains (derived from its content, so every delivery of the same
    message adopts the same chain)."""
    key = f"{item.cluster_id.canonical}|{item.correlation_id}|{item.attempt}"
    return hashlib.sha256(key.encode("utf-8")).hexdigest()[:32]


def _guard_of(current: StoredMark | None, item: WorkItem) -> SentMessage | None:
    """The guard copy the mark names for exactly ``item`` (same chain and attempt), if any."""
    if current is None or current.mark.guard is None:
        return None
    if (current.mark.chain_id, current.mark.attempt) != (item.chain_id, item.attempt):
        return None
    return SentMessage(*current.mark.guard)


class ChainedWork:
    """Work items, one chain per cluster (see the module docstring).

    :param queue: the work queue.
    :param store: the chain marks.
    :keyword renewer: keeps running hops' successors hidden.
    :keyword clock: epoch seconds.
    """

    def __init__(
        self,
        queue: WorkQueue,
        store: ChainStore,
        *,
        renewer: LeaseRenewer | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.queue = queue
        self.store = store
        self.renewer = renewer if renewer is not None else RENEWER
        self.clock = clock
        self.joined = 0
        self.started = 0
        self.retired = 0
        self.withdrawn = 0

    def enqueue_work(
        self,
        cluster_id: ResourceId,
        *,
        attempt: int,
        source: Source,
        reason: str,
        correlation_id: str,
        delay_s: float,
        timeout_s: float | None = None,
        progress_attempt: int = 0,
        satisfied_links: int = 0,
    ) -> None:
        """A delivery's hand-over (or the sweep's item): join the live chain, or start one
        (``EnqueuesWork``; a new chain carries the given progress mark)."""
        deadline = time.monotonic() + timeout_s if timeout_s is not None else None
        current = self.store.read(cluster_id)
        now = self.clock()
        if current is not None and joinable(current.mark, now=now, delay_s=delay_s):
            self.joined += 1
            logger.info(
                "%s joins chain %s of %s (due in %.0f s): %s",
                source,
                current.mark.chain_id,
                cluster_id,
                current.mark.due_at - now,
                reason,
            )
            return
        item = WorkItem(
            cluster_id=cluster_id,
            attempt=attempt,
            source=source,
            reason=reason,
            correlation_id=correlation_id,
            chain_id=new_chain_id(),
            progress_attempt=min(progress_attempt, attempt),
            satisfied_links=satisfied_links,
        )
        left = None if deadline is None else max(deadline - time.monotonic(), 0.5)
        sent = self.queue.send(item, delay_s=delay_s, timeout_s=left)
        self.started += 1
        left = None if deadline is None else max(deadline - time.monotonic(), 0.5)
        guard = self.send_guard(item, delay_s=delay_s, timeout_s=left)
        mark = ChainMark(
            item.chain_id,
            attempt,
            now + delay_s,
            False,
            guard=(guard.id, guard.pop_receipt) if guard is not None else None,
        )
        if self.store.write(cluster_id, mark, etag=current.etag if current is not None else None) is None:
            # a concurrent delivery marked its own chain first (its item exists: it sends before marking):
            # ours is withdrawn (a worker that already received it runs or retires it by the mark)
            self._withdraw(sent, guard)
            logger.info("chain %s of %s lost the mark to a concurrent delivery", item.chain_id, cluster_id)
            return

    def send_guard(
        self, item: WorkItem, *, delay_s: float, timeout_s: float | None = None
    ) -> SentMessage | None:
        """Send ``item``'s guard copy, due :data:`GUARD_AFTER_S` after ``delay_s``; ``None`` when that
        failed (the item itself is queued; a missing guard only weakens crash cover)."""
        try:
            return self.queue.send(item, delay_s=delay_s + GUARD_AFTER_S, timeout_s=timeout_s)
        except Exception:
            logger.warning("the guard copy of chain %s of %s was not sent", item.chain_id, item.cluster_id)
            return None

    def _withdraw(self, *messages: SentMessage | None) -> None:
        """Delete messages this process sent that no chain needs, best effort: one that was already received
        (or a delete that fails) retires by the mark when it runs."""
        for message in messages:
            if message is None:
                continue
            try:
                if self.queue.delete_sent(message):
                    self.withdrawn += 1
            except Exception:
                logger.info(
                    "withdrawing message %s failed; it retires when it runs", message.id, exc_info=True
                )

    def remark(
        self, cluster: ResourceId, mark: ChainMark, *, etag: str | None, owner: tuple[str, int]
    ) -> str | None:
        """Write ``mark`` over the mark read with ``etag``, on behalf of the work item ``owner``
        (chain id, attempt). When another writer got there first, read again: if the mark still lets
        ``owner`` run (the other write was a delivery joining, a chain start racing our read, ...),
        write over the new one; otherwise ``None`` (``owner`` was superseded)."""
        for _ in range(4):
            written = self.store.write(cluster, mark, etag=etag)
            if written is not None:
                return written
            current = self.store.read(cluster)
            if current is not None and current.mark.superseded(*owner):
                return None
            etag = current.etag if current is not None else None
        return None

    def begin(self, item: WorkItem) -> Hop | None:
        """Start the hop for ``item``, or ``None`` when the item must retire (another chain, or an earlier hop
        of this one, holds the mark)."""
        current = self.store.read(item.cluster_id)
        if (
            not item.chain_id
        ):  # made before chains: adopt it as a chain of its own (the same id every delivery)
            item = dataclasses.replace(item, chain_id=legacy_chain_id(item))
        if current is not None and current.mark.superseded(item.chain_id, item.attempt):
            self.retired += 1
            logger.info(
                "work item %s/%d of %s retires: the chain mark names %s/%d",
                item.chain_id,
                item.attempt,
                item.cluster_id,
                current.mark.chain_id,
                current.mark.attempt,
            )
            return None
        successor = item.next_attempt(reason=f"successor of attempt {item.attempt} (its worker stopped)")
        sent = self.queue.send(successor, delay_s=LEASE_S)
        mark = ChainMark(item.chain_id, successor.attempt, self.clock() + LEASE_S, True)
        etag = self.remark(
            item.cluster_id,
            mark,
            etag=current.etag if current is not None else None,
            owner=(item.chain_id, item.attempt),
        )
        if etag is None:  # another chain (or a copy of this hop) took the mark just now: it wins
            self.queue.delete_sent(sent)
            self.retired += 1
            logger.info(
                "work item %s/%d of %s retires: the mark moved", item.chain_id, item.attempt, item.cluster_id
            )
            return None
        # this item's guard copy is not needed now that its hop began (if this item *is* the guard, its pop
        # receipt changed when the host received it, and the delete misses it)
        self._withdraw(_guard_of(current, item))
        hop = Hop(self, item, successor, sent, etag)
        self.renewer.track(hop, hop._renew)
        return hop
