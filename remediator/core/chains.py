"""One chain of work items per cluster: when a delivery joins the chain in flight, when a work item retires.

Issue 17 F4: Event Grid delivers an event several times (and the sweep, HTTP and policy events add their own
deliveries); before chains, each delivery that ended in ``wait`` started its own retry chain, so a cluster
could carry four chains of 40 attempts each. Now every cluster has at most one live chain, named by a
**chain mark** (a row next to the cluster's journal rows, written with ETags by ``adapters/chains.py``):

- ``chain_id`` and ``attempt``: the one work item allowed to run next (every work item carries its chain id
  and attempt; an item that is not the mark's retires without reconciling);
- ``due_at``: when that item becomes visible in the queue;
- ``running``: a worker is reconciling the chain's previous item right now;
- ``ended``: the chain ended (done, gave up, parked); its leftover items retire, a delivery starts anew.

A delivery that would hand a cluster over to the queue **joins** the chain instead when the chain's next
reconcile is certain to start after the delivery's own reconcile ended and no later than the delivery wants
(:func:`joinable`): the chain is asleep (not running) and due between ``now - JOIN_GRACE_S`` and
``now + delay + JOIN_SLACK_S``. Otherwise the delivery starts a chain of its own and marks it; the old chain's
items retire when they see the mark. A running chain is never joined: its reconcile may have read the
cluster before the delivery's news and may then sleep long.

Crash safety (issue 17 item 3): a worker that starts a hop first enqueues the chain's *successor* item, hidden
for :data:`~remediator.adapters.leases.LEASE_S` and renewed while the hop runs, and marks it; if the worker
dies, the successor appears within the lease and carries the chain on (the dead worker's own message, which
the Functions host hides for 10 minutes, retires when it reappears). Every scheduled item also has a
**guard**: a copy due :data:`GUARD_AFTER_S` later, for a host that received the item and died before its hop
began (the host's lock would hide it for 10 minutes); whichever copy begins first runs, the other retires.
The mark names the guard's message (``guard``: its id and pop receipt), so the hop that begins the item
deletes the guard before it surfaces: a healthy chain costs the queue one invocation per hop, not two (the
chaos run's workers spent half their invocations retiring guards, which delayed every hop behind them). A
guard already received (its original sat on a dead host) keeps running: its pop receipt changed, so the
delete misses it.
A delivery that finds a chain running on a dead worker does not join it either, so the next delivery always
gets the cluster's next requirement done.

Pure: no I/O; times are epoch seconds passed in.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

JOIN_GRACE_S = 15.0
"""A chain due this long ago still counts as about to run (its item is visible and waits for a worker); a
longer-overdue item may sit on a dead worker, so a delivery starts its own chain."""

JOIN_SLACK_S = 2.0
"""A delivery joins a chain due at most this much later than the delivery itself would come back."""

GUARD_AFTER_S = 60.0
"""A scheduled item's guard copy is due this much after it (longer than a healthy host takes to begin a
visible item; short against the host's 10-minute lock)."""


@dataclass(frozen=True)
class ChainMark:
    """The cluster's live chain: which item runs next (``chain_id``, ``attempt``), when it is due (epoch s),
    and whether a worker is running the hop before it."""

    chain_id: str
    attempt: int
    due_at: float
    running: bool
    ended: bool = False
    guard: tuple[str, str] | None = None
    """The guard copy of the item the mark names: (message id, pop receipt), for its deletion when the item
    begins; ``None`` when there is none (a running hop's successor, an ended chain, a mark made before)."""

    def names(self, chain_id: str, attempt: int) -> bool:
        """Whether the work item ``(chain_id, attempt)`` is the one this mark lets run."""
        return not self.ended and chain_id == self.chain_id and attempt >= self.attempt

    def superseded(self, chain_id: str, attempt: int) -> bool:
        """Whether the work item ``(chain_id, attempt)`` must retire (another chain, or an earlier hop)."""
        return not self.names(chain_id, attempt)


def joinable(mark: ChainMark | None, *, now: float, delay_s: float) -> bool:
    """Whether a delivery that wants the cluster looked at ``delay_s`` from ``now`` can rely on ``mark``'s
    chain instead of enqueueing a work item of its own (see the module docstring)."""
    if mark is None or mark.running or mark.ended:
        return False
    return now - JOIN_GRACE_S <= mark.due_at <= now + max(0.0, delay_s) + JOIN_SLACK_S


def new_chain_id() -> str:
    """A fresh chain id (32 hex digits)."""
    return uuid.uuid4().hex
